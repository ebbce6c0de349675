-- An attribute apart from its column (field = "column"): Lua code says the
-- attribute, SQL the column, on both engines.
local H = require "spec.helper"
local junction = H.junction
local T = H.T

-- The column names of a table, as the database has them (raw SQL).
local function columns(db, tbl)
  local rows
  if H.is_pg then
    rows = assert(db:query("SELECT column_name AS name FROM information_schema.columns " ..
                           "WHERE table_schema = current_schema() AND table_name = ? ORDER BY ordinal_position", tbl))
  else
    rows = assert(db:query("SELECT name FROM pragma_table_info(?) ORDER BY cid", tbl))
  end
  local out = {}
  for i, r in ipairs(rows) do out[i] = r.name end
  table.sort(out)
  return out
end

-- A user model whose key and two attributes sit on snake_case columns.
local function users(db, extra)
  local spec = {
    tableName = "users",
    fields = {
      userId = { type = T.INTEGER, primaryKey = true, field = "user_id" },
      firstName = { type = T.STRING(40), field = "first_name", allowNull = false },
      score = { type = T.INTEGER, field = "the_score", defaultValue = 0 },
      createdAt = { type = T.DATE, field = "created_at" },
      updatedAt = { type = T.DATE, field = "updated_at" },
    },
  }
  for k, v in pairs(extra or {}) do spec[k] = v end
  return db:define("User", spec)
end

describe("field: an attribute on a column of another name", function()
  it("db:define checks the column: an identifier, and no two attributes on one column", function()
    local db = H.open()
    assert.has_error(function()
      db:define("A", { fields = { a = { type = T.TEXT, field = "no way" } } })
    end, "db:define: A.a: bad option 'field' (bad identifier 'no way': a letter or _, then letters, digits " ..
         "and _, at most 64)")
    assert.has_error(function()
      db:define("B", { fields = { a = { type = T.TEXT, field = 3 } } })
    end, "db:define: B.a: bad option 'field' (string expected, got number)")
    assert.has_error(function()
      db:define("C", { fields = { a = { type = T.TEXT, field = "x" }, b = { type = T.TEXT, field = "X" } } })
    end, "db:define: C: attributes 'a' and 'b' are both on the column 'X'")
    assert.has_error(function()   -- an attribute on another attribute's column
      db:define("D", { fields = { a = { type = T.TEXT, field = "b" }, b = { type = T.TEXT } } })
    end, "db:define: D: attributes 'a' and 'b' are both on the column 'b'")
    assert.has_error(function()   -- on the column of a timestamp
      db:define("E", { fields = { a = { type = T.TEXT, field = "createdAt" } } })
    end, "db:define: E: attributes 'a' and 'createdAt' are both on the column 'createdAt'")
    assert.has_error(function()   -- on the column of the id junction adds
      db:define("F", { fields = { a = { type = T.TEXT, field = "id" } } })
    end, "db:define: F: attributes 'id' and 'a' are both on the column 'id'")
    -- none of them was defined
    for _, n in ipairs { "A", "B", "C", "D", "E", "F" } do assert.is_nil(db:model(n)) end
  end)

  it("db:sync makes the columns, and the model reads and writes them by attribute", function()
    local db = H.open()
    local User = users(db)
    assert(db:sync())
    assert.same({ "created_at", "first_name", "the_score", "updated_at", "user_id" }, columns(db, "users"))
    local u = assert(User:create { firstName = "ann", score = 3 })
    assert.equal(1, u.userId)
    assert.equal("ann", u.firstName)
    assert.is_string(u.createdAt)
    local t = u:toTable()
    assert.equal("ann", t.firstName)
    assert.is_nil(t.first_name)
    -- the row as the database holds it: raw SQL says the columns
    local raw = assert(db:query("SELECT user_id, first_name, the_score FROM users"))
    assert.same({ { user_id = 1, first_name = "ann", the_score = 3 } }, raw)
    assert.equal("ann", User:findByPk(1).firstName)
    assert.equal(1, User:findOne { where = { firstName = "ann" } }.userId)
    u.score = 7
    assert(u:save())
    assert.equal(7, db:query("SELECT the_score FROM users")[1].the_score)
    assert(u:update { firstName = "bea" })
    assert(u:reload())
    assert.equal("bea", u.firstName)
    assert.equal(1, User:update({ score = 9 }, { where = { firstName = "bea" } }))
    assert.equal(9, User:findByPk(1).score)
    assert(u:destroy())
    assert.equal(0, User:count())
  end)

  it("where, order, attributes, group, having, count and junction.col say the attribute", function()
    local db = H.open()
    local User = users(db)
    assert(db:sync())
    for i, n in ipairs { "cy", "al", "bo", "al" } do assert(User:create { firstName = n, score = i }) end
    local rows = User:findAll { where = { firstName = { ne = "cy" } }, order = { { "firstName", "DESC" }, "score" } }
    local got = {}
    for i, r in ipairs(rows) do got[i] = r.firstName .. r.score end
    assert.same({ "bo3", "al2", "al4" }, got)
    rows = User:findAll { attributes = { "firstName" }, where = { score = { gt = 2 } }, order = { "score" } }
    assert.equal("bo", rows[1].firstName)
    assert.equal(3, rows[1].userId)   -- the key is read too
    rows = User:findAll { attributes = { { "firstName", "who" }, { junction.fn("max", junction.col("score")), "top" } },
                          group = "firstName", having = { top = { gt = 1 } }, order = { "firstName" } }
    assert.equal(2, #rows)
    assert.equal("al", rows[1].who)
    assert.equal(4, rows[1].top)
    rows = User:findAll { where = { [junction.fn("upper", junction.col("firstName"))] = "BO" } }
    assert.equal(1, #rows)
    rows = User:findAll { order = { { junction.col("score"), "DESC" } }, limit = 1 }
    assert.equal(4, rows[1].score)
    assert.equal(2, User:count { where = { firstName = "al" } })
    assert.equal(4, User:count())
    assert.equal(10, User:sum("score"))
    assert.equal(4, User:max("score"))
    assert.equal("al", User:min("firstName"))
    local n, list = User:findAndCountAll { where = { firstName = "al" }, limit = 1 }
    if type(n) == "table" then n, list = n.count, n.rows end
    assert.equal(2, n)
    assert.equal(1, #list)
  end)

  it("increment and decrement change the column of the attribute", function()
    local db = H.open()
    local User = users(db)
    assert(db:sync())
    local u = assert(User:create { firstName = "ann", score = 1 })
    assert.equal(1, User:increment("score", 5, { where = { firstName = "ann" } }))
    assert.equal(6, db:query("SELECT the_score FROM users")[1].the_score)
    assert(u:decrement("score", 2))
    assert.equal(4, u.score)
  end)

  it("upsert and bulkCreate name the conflict target and the update by attribute", function()
    local db = H.open()
    local Tag = db:define("Tag", { timestamps = false, fields = {
      tagName = { type = T.TEXT, unique = true, field = "tag_name" },
      hits = { type = T.INTEGER, field = "hit_count" },
    } })
    assert(db:sync())
    assert.equal(1, Tag:upsert({ tagName = "orm", hits = 1 }).id)
    local t = Tag:upsert { tagName = "orm", hits = 5 }
    assert.equal(5, t.hits)
    assert.equal(1, t.id)
    t = Tag:upsert({ tagName = "orm", hits = 6 }, { conflictFields = { "tagName" } })
    assert.equal(6, t.hits)
    local rows = assert(Tag:bulkCreate({ { tagName = "orm", hits = 9 }, { tagName = "lua", hits = 2 } },
                                       { updateOnDuplicate = { "hits" } }))
    assert.equal(2, #rows)
    assert.equal(9, rows[1].hits)
    assert.same({ { tag_name = "orm", hit_count = 9 }, { tag_name = "lua", hit_count = 2 } },
                db:query("SELECT tag_name, hit_count FROM " .. '"Tag"' .. " ORDER BY id"))
  end)

  it("db:sync compares an existing table by column, and indexes and references say the columns", function()
    local db = H.open()
    local Team = db:define("Team", { timestamps = false, fields = {
      teamId = { type = T.INTEGER, primaryKey = true, field = "team_id" },
      label = { type = T.TEXT, field = "team_label", unique = true },
    } })
    local Player = db:define("Player", { timestamps = false, fields = {
      teamRef = { type = T.INTEGER, field = "team_ref", references = { model = "Team", key = "teamId" } },
      nick = { type = T.TEXT, field = "nick_name" },
    }, indexes = { { fields = { "nick", "teamRef" } } } })
    assert(db:sync())
    assert.same({ "id", "nick_name", "team_ref" }, columns(db, "Player"))
    assert(Team:create { teamId = 7, label = "x" })
    assert(Player:create { teamRef = 7, nick = "n" })
    -- the reference is enforced on the column
    local ok, msg = Player:create { teamRef = 8, nick = "m" }
    assert.is_nil(ok)
    assert.is_string(msg)
    if not H.is_pg then
      -- the table matches its model: nothing to say
      assert.same(true, db:sync())
      local ix = db:query("SELECT name FROM pragma_index_list('Player') WHERE origin = 'c' ORDER BY name")
      assert.same({ { name = "Player.nick_name.team_ref" }, { name = "Player.team_ref" } }, ix)
      -- a model whose attribute has no column of its name in the table: told by column
      local db2 = H.open()
      assert(db2:exec('CREATE TABLE "Thing" (id INTEGER PRIMARY KEY, thingName TEXT)'))
      db2:define("Thing", { timestamps = false, fields = { thingName = { type = T.TEXT, field = "thing_name" } } })
      local r, m, _, details = db2:sync()
      assert.is_nil(r)
      assert.matches("table Thing lacks column thing_name", m, 1, true)
      assert.same({ "Thing: table Thing has column thingName, which the model lacks" }, details.warnings)
    end
  end)

  it("db:query stays raw: it reads columns by their names", function()
    local db = H.open()
    local User = users(db)
    assert(db:sync())
    assert(User:create { firstName = "ann" })
    local rows = assert(db:query("SELECT * FROM users"))
    assert.equal("ann", rows[1].first_name)
    assert.is_nil(rows[1].firstName)
  end)

  it("a model without field keeps its columns: the attribute names", function()
    local db = H.open()
    local P = db:define("P", { fields = { title = { type = T.TEXT } } })
    assert(db:sync())
    assert.same({ "createdAt", "id", "title", "updatedAt" }, columns(db, "P"))
    assert.equal("title", P:_info().columns.title)
  end)

  it("a paranoid model keeps deletedAt on the column its field names", function()
    local db = H.open()
    local Note = db:define("Note", { paranoid = true, timestamps = false, fields = {
      body = { type = T.TEXT },
      deletedAt = { type = T.DATE, field = "deleted_at" },
    } })
    assert(db:sync())
    local n = assert(Note:create { body = "a" })
    assert(Note:create { body = "b" })
    assert(n:destroy())
    assert.equal(1, Note:count())
    assert.equal(2, Note:count { paranoid = false })
    local raw = db:query("SELECT body FROM " .. '"Note"' .. " WHERE deleted_at IS NOT NULL")
    assert.same({ { body = "a" } }, raw)
    assert(n:restore())
    assert.equal(2, Note:count())
  end)

  it("scopes and hooks see attributes", function()
    local db = H.open()
    local seen
    local User = users(db, {
      scopes = { high = { where = { score = { gte = 5 } }, order = { "firstName" } } },
      hooks = { beforeCreate = function(u) seen = u.firstName; u.score = (u.score or 0) + 1 end },
    })
    assert(db:sync())
    assert(User:create { firstName = "ann", score = 4 })
    assert(User:create { firstName = "bo", score = 1 })
    assert.equal("bo", seen)
    local rows = User:scope("high"):findAll()
    assert.equal(1, #rows)
    assert.equal("ann", rows[1].firstName)
  end)
end)

-- Users and projects on snake_case columns, linked through a junction model
-- whose keys are attributes on columns of other names; tasks of a user.
local function team(db)
  local User = db:define("User", { tableName = "users", timestamps = false, fields = {
    userId = { type = T.INTEGER, primaryKey = true, field = "user_id" },
    userName = { type = T.TEXT, field = "user_name" },
  } })
  local Project = db:define("Project", { tableName = "projects", fields = {
    projectId = { type = T.INTEGER, primaryKey = true, field = "project_id" },
    title = { type = T.TEXT, field = "project_title" },
    createdAt = { type = T.DATE, field = "created_at" },
    updatedAt = { type = T.DATE, field = "updated_at" },
  } })
  local UserProject = db:define("UserProject", { tableName = "user_projects", fields = {
    userId = { type = T.INTEGER, field = "user_id", unique = "up",
               references = { model = "users", key = "userId" }, onDelete = "cascade" },
    projectId = { type = T.INTEGER, field = "project_id", unique = "up",
                  references = { model = "projects", key = "projectId" }, onDelete = "cascade" },
    role = { type = T.TEXT, field = "the_role" },
  } })
  local Task = db:define("Task", { tableName = "tasks", timestamps = false, fields = {
    taskId = { type = T.INTEGER, primaryKey = true, field = "task_id" },
    label = { type = T.TEXT, field = "task_label" },
    ownerId = { type = T.INTEGER, field = "owner_id", references = { model = "users", key = "userId" } },
  } })
  local Profile = db:define("Profile", { timestamps = false, fields = {
    bio = { type = T.TEXT },
    personId = { type = T.INTEGER, field = "person_id", references = { model = "users", key = "userId" } },
  } })
  assert(db:associate {
    User = {
      { belongsToMany = "Project", through = "UserProject", foreignKey = "userId", otherKey = "projectId",
        as = "Projects" },
      { hasMany = "Task", foreignKey = "ownerId", as = "Tasks" },
      { hasOne = "Profile", foreignKey = "personId", as = "Profile" },
    },
    Project = {
      { belongsToMany = "User", through = "UserProject", foreignKey = "projectId", otherKey = "userId", as = "Users" },
    },
    Task = { { belongsTo = "User", foreignKey = "ownerId", as = "Owner" } },
  })
  assert(db:sync())
  return User, Project, UserProject, Task, Profile
end

local function names(list, key)
  local out = {}
  for i, x in ipairs(list) do out[i] = x[key] end
  return out
end

describe("field: associations and includes over columns of other names", function()
  it("belongsToMany's methods read and write the junction's columns", function()
    local db = H.open()
    local User, Project, UserProject = team(db)
    local u = assert(User:create { userName = "ann" })
    local p1 = assert(Project:create { title = "a" })
    local p2 = assert(Project:create { title = "b" })
    local p3 = assert(Project:create { title = "c" })
    assert(u:setProjects { p1, p2 })
    assert.same({ "a", "b" }, names(u:getProjects { order = { "title" } }, "title"))
    assert(u:addProject(p3, { through = { role = "lead" } }))
    assert.equal(3, u:countProjects())
    assert.is_true(u:hasProject(p3))
    assert.is_true(u:hasProjects { p1, p3 })
    local got = u:getProjects { where = { title = "c" } }
    assert.equal("lead", got[1].UserProject.role)
    got = u:getProjects { through = { where = { role = "lead" } } }
    assert.same({ "c" }, names(got, "title"))
    assert(u:removeProject(p1))
    assert.same({ "b", "c" }, names(u:getProjects { order = { { "title", "ASC" } } }, "title"))
    local p4 = assert(u:createProject { title = "d" })
    assert.equal(4, p4.projectId)
    assert.same({ 2, 3, 4 }, names(UserProject:findAll { order = { "projectId" } }, "projectId"))
    assert.same({ { user_id = 1, project_id = 2, the_role = nil }, { user_id = 1, project_id = 3, the_role = "lead" },
                  { user_id = 1, project_id = 4, the_role = nil } },
                db:query("SELECT user_id, project_id, the_role FROM user_projects ORDER BY project_id"))
    assert(u:setProjects { p2 })
    assert.same({ "ann" }, names(p2:getUsers(), "userName"))
    assert.equal(0, p3:countUsers())
  end)

  it("hasMany, hasOne and belongsTo read and write the foreign key's column", function()
    local db = H.open()
    local User, _, _, Task, Profile = team(db)
    local u = assert(User:create { userName = "ann" })
    local v = assert(User:create { userName = "bo" })
    local t1 = assert(Task:create { label = "x" })
    local t2 = assert(Task:create { label = "y" })
    assert(u:setTasks { t1, t2 })
    assert.same({ "x", "y" }, names(u:getTasks { order = { "label" } }, "label"))
    assert.equal(2, u:countTasks())
    assert.is_true(u:hasTask(t1))
    assert(u:removeTask(t1))
    assert.equal(1, u:countTasks())
    assert(v:addTask(t1))
    local t3 = assert(u:createTask { label = "z" })
    assert.equal(1, t3.ownerId)
    assert.same({ { task_label = "x", owner_id = 2 }, { task_label = "y", owner_id = 1 },
                  { task_label = "z", owner_id = 1 } },
                db:query("SELECT task_label, owner_id FROM tasks ORDER BY task_id"))
    local t = Task:findByPk(1)
    assert.equal("bo", t:getOwner().userName)
    assert(t:setOwner(u))
    assert.equal(1, Task:findByPk(1).ownerId)
    local made = assert(t:createOwner { userName = "cy" })
    assert.equal(made.userId, Task:findByPk(1).ownerId)
    local pr = assert(Profile:create { bio = "hi" })
    assert(u:setProfile(pr))
    assert.equal("hi", u:getProfile().bio)
    assert.equal(1, db:query('SELECT person_id FROM "Profile"')[1].person_id)
  end)

  it("include joins by the columns: required, where, through, order by an included column", function()
    local db = H.open()
    local User, Project, _, Task = team(db)
    local ann = assert(User:create { userName = "ann" })
    local bo = assert(User:create { userName = "bo" })
    assert(User:create { userName = "cy" })
    local pa = assert(Project:create { title = "pa" })
    local pb = assert(Project:create { title = "pb" })
    assert(ann:setProjects { pa, pb })
    assert(bo:addProject(pb, { through = { role = "lead" } }))
    assert(Task:create { label = "t1", ownerId = ann.userId })
    assert(Task:create { label = "t2", ownerId = bo.userId })
    local rows = User:findAll { include = { "Projects", "Tasks" }, order = { "userId" } }
    assert.equal(3, #rows)
    assert.same({ "pa", "pb" }, names(rows[1].Projects, "title"))
    assert.equal("t2", rows[2].Tasks[1].label)
    assert.same({}, rows[3].Projects)
    rows = User:findAll { include = { Projects = { required = true, where = { title = "pb" } } },
                          order = { "userName" } }
    assert.same({ "ann", "bo" }, names(rows, "userName"))
    rows = User:findAll { include = { Projects = { through = { where = { role = "lead" } }, required = true } } }
    assert.same({ "bo" }, names(rows, "userName"))
    assert.equal("lead", rows[1].Projects[1].UserProject.role)
    rows = User:findAll { include = { "Projects" }, order = { { junction.col("Projects.title"), "DESC" }, "userId" } }
    assert.same({ "ann", "bo", "cy" }, names(rows, "userName"))
    rows = User:findAll { where = { [junction.col("Projects.title")] = "pa" } }
    assert.same({ "ann" }, names(rows, "userName"))
    rows = Task:findAll { include = { "Owner" }, order = { "taskId" } }
    assert.same({ "ann", "bo" }, { rows[1].Owner.userName, rows[2].Owner.userName })
    rows = Project:findAll { include = { Users = { required = true } }, order = { "projectId" } }
    assert.same({ "pa", "pb" }, names(rows, "title"))
    assert.equal(2, #rows[2].Users)
    local res = Project:findAndCountAll { include = { Users = { where = { userName = "bo" } } } }
    local n = type(res) == "table" and res.count or res
    assert.equal(1, n)
    local one = User:findOne { where = { userId = ann.userId }, include = { Projects = { attributes = { "title" } } } }
    assert.same({ "pa", "pb" }, names(one.Projects, "title"))
  end)
end)

describe("field: foreignKey = { name = ..., field = ... }", function()
  local function two(db)
    db:define("Owner", { timestamps = false, fields = { name = { type = T.TEXT } } })
    db:define("Pet", { timestamps = false, fields = { name = { type = T.TEXT } } })
    return db:model("Owner"), db:model("Pet")
  end

  it("a key junction adds gets the attribute name and the column", function()
    local db = H.open()
    local Owner, Pet = two(db)
    assert(db:associate {
      Owner = { { hasMany = "Pet", foreignKey = { name = "ownerId", field = "owner_id" }, as = "Pets" } },
      Pet = { { belongsTo = "Owner", foreignKey = { name = "ownerId", field = "owner_id" } } },
    })
    assert(db:sync())
    assert.equal("owner_id", Pet:_info().columns.ownerId)
    local o = assert(Owner:create { name = "ann" })
    local p = assert(o:createPet { name = "rex" })
    assert.equal(o.id, p.ownerId)
    assert.equal(o.id, db:query('SELECT owner_id FROM "Pet"')[1].owner_id)
    assert.equal("ann", p:getOwner().name)
    assert.equal("rex", Owner:findAll { include = { "Pets" } }[1].Pets[1].name)
  end)

  it("belongsToMany's foreignKey and otherKey objects make the junction's columns, both ways", function()
    local db = H.open()
    local Owner, Pet = two(db)
    assert(db:associate {
      Owner = { { belongsToMany = "Pet", through = "owner_pets", as = "Pets", inverse = { as = "Owners" },
                  foreignKey = { name = "ownerId", field = "owner_ref" },
                  otherKey = { name = "petId", field = "pet_ref" } } },
    })
    assert(db:sync())
    local cols = db:model("owner_pets"):_info().columns
    assert.equal("owner_ref", cols.ownerId)
    assert.equal("pet_ref", cols.petId)
    local o = assert(Owner:create { name = "ann" })
    local p = assert(Pet:create { name = "rex" })
    assert(o:addPet(p))
    assert.equal("ann", p:getOwners()[1].name)
    assert.same({ { owner_ref = o.id, pet_ref = p.id } }, db:query("SELECT owner_ref, pet_ref FROM owner_pets"))
  end)

  it("field alone keeps the name junction gives the key", function()
    local db = H.open()
    local _, Pet = two(db)
    assert(db:associate { Pet = { { belongsTo = "Owner", foreignKey = { field = "owner_ref" } } } })
    assert.equal("owner_ref", Pet:_info().columns.ownerId)
  end)

  it("a declared key on another column, or a key object with other options, is a misuse", function()
    local db = H.open()
    db:define("Owner", { timestamps = false, fields = { name = { type = T.TEXT } } })
    db:define("Pet", { timestamps = false, fields = {
      ownerId = { type = T.INTEGER, field = "oid", references = { model = "Owner" } } } })
    assert.has_error(function()
      db:associate { Pet = { { belongsTo = "Owner", foreignKey = { name = "ownerId", field = "owner_id" } } } }
    end, "db:associate: Pet belongsTo Owner: bad option 'foreignKey' (field 'owner_id', but Pet.ownerId is on " ..
         "the column 'oid')")
    assert.has_error(function()
      db:associate { Pet = { { belongsTo = "Owner", as = "Boss",
                               foreignKey = { name = "bossId", defaultValue = 1 } } } }
    end, "db:associate: Pet: belongsTo 'Owner': bad option 'foreignKey.defaultValue' (a key is { name = ..., " ..
         "field = ..., allowNull = ... })")
    assert.has_error(function()
      db:associate { Pet = { { belongsTo = "Owner", as = "Boss", foreignKey = { name = 7 } } } }
    end, "db:associate: Pet: belongsTo 'Owner': bad option 'foreignKey.name' (string expected, got number)")
    -- the declared key on its own column works
    assert(db:associate { Pet = { { belongsTo = "Owner", foreignKey = { name = "ownerId", field = "oid" } } } })
  end)
end)

describe("field: the rest of the model's methods", function()
  it("findOrCreate, bulkCreate, destroy by where, validators and accessors use attributes", function()
    local db = H.open()
    local Item = db:define("Item", { timestamps = false, fields = {
      itemCode = { type = T.TEXT, field = "item_code", unique = true,
                   validate = { len = { 2, 10 } } },
      qty = { type = T.INTEGER, field = "quantity",
              get = function(self) return (self:getDataValue("qty") or 0) * 1 end },
    } })
    assert(db:sync())
    local it1, made = Item:findOrCreate { where = { itemCode = "ab" }, defaults = { qty = 2 } }
    assert.is_truthy(it1)
    assert.is_true(made)
    local again, made2 = Item:findOrCreate { where = { itemCode = "ab" }, defaults = { qty = 9 } }
    assert.equal(it1.id, again.id)
    assert.is_false(made2)
    assert(Item:bulkCreate { { itemCode = "cd", qty = 1 }, { itemCode = "ef", qty = 5 } })
    assert.equal(3, Item:count())
    local bad, msg = Item:create { itemCode = "x" }
    assert.is_nil(bad)
    assert.matches("itemCode", msg, 1, true)
    assert.equal(5, Item:findOne { where = { itemCode = "ef" } }.qty)
    assert.equal(1, Item:destroy { where = { qty = { lt = 2 } } })
    assert.same({ { item_code = "ab", quantity = 2 }, { item_code = "ef", quantity = 5 } },
                db:query('SELECT item_code, quantity FROM "Item" ORDER BY item_code'))
  end)

  it("paginated pages by an attribute on a column of another name", function()
    local db = H.open()
    local Row = db:define("Row", { timestamps = false, fields = {
      rowKey = { type = T.INTEGER, primaryKey = true, field = "row_key" },
      rank = { type = T.INTEGER, field = "row_rank", unique = true },
    } })
    assert(db:sync())
    for i = 1, 5 do assert(Row:create { rank = 10 * i }) end
    local pages = Row:paginated { per_page = 2, keyset = true }
    local items, after = pages:getPage()
    assert.same({ 1, 2 }, { items[1].rowKey, items[2].rowKey })
    items = pages:getPage(after)
    assert.same({ 3, 4 }, { items[1].rowKey, items[2].rowKey })
    pages = Row:paginated { per_page = 2, keyset = { "rank", "DESC" } }
    items = pages:getPage()
    assert.same({ 50, 40 }, { items[1].rank, items[2].rank })
  end)

  it("junction.copy copies the columns, and junction.erd shows each attribute's column", function()
    local src = H.open()
    local function model(db)
      local M = db:define("Thing", { timestamps = false, fields = {
        thingName = { type = T.TEXT, field = "thing_name" } } })
      assert(db:sync())
      return M
    end
    local A = model(src)
    assert(A:create { thingName = "a" })
    assert(A:create { thingName = "b" })
    local dst = H.open()
    local B = model(dst)
    assert.same({ Thing = 2 }, assert(junction.copy(src, dst)))
    assert.same({ "a", "b" }, { B:findByPk(1).thingName, B:findByPk(2).thingName })
    local dot = junction.erd(src)
    assert.matches("thingName (thing_name)", dot, 1, true)
  end)
end)
