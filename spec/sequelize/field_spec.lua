-- spec/sequelize/field_spec.lua: the cases of Sequelize v6's
-- test/integration/associations/belongs-to-many.test.js and
-- test/integration/include/findOne.test.js that need an attribute on a
-- column of another name (field), ported to junction.  Each `it` carries the
-- Sequelize test's title; docs/SEQUELIZE.md lists how they are translated.
local S = require "spec.sequelize.support"
local T = S.T

-- The column names of a table, sorted (raw SQL: columns, not attributes).
local function columns(db, tbl)
  local out = {}
  for _, r in ipairs(require("spec.helper").columns(db, tbl)) do out[#out + 1] = r.name end
  table.sort(out)
  return out
end

-- A UUID key made by junction (Sequelize's DataTypes.UUIDV4 default).
local function uuid_key(column)
  return { type = T.UUID, allowNull = false, primaryKey = true, defaultValue = S.junction.UUIDV4, field = column }
end

describe("BelongsToMany (field)", function()
  local db
  after_each(function() if db then db:close() end db = nil end)

  it("supports primary key attributes with different field and attribute names", function()
    db = S.open()
    local User = S.define(db, "User", { userSecondId = uuid_key("user_id") }, { tableName = "tbl_user" })
    local Group = S.define(db, "Group", { groupSecondId = uuid_key("group_id") }, { tableName = "tbl_group" })
    S.define(db, "User_has_Group", {}, { tableName = "tbl_user_has_group" })
    assert(db:associate {
      User = { { belongsToMany = "Group", through = "User_has_Group" } },
      Group = { { belongsToMany = "User", through = "User_has_Group" } },
    })
    assert(db:sync())
    -- the keys junction adds are attributes on columns of their own names
    assert.same({ "createdAt", "updatedAt", "user_id" }, columns(db, "tbl_user"))
    assert.same({ "createdAt", "groupGroupSecondId", "id", "updatedAt", "userUserSecondId" },
                columns(db, "tbl_user_has_group"))
    local user0, group = assert(User:create {}), assert(Group:create {})
    assert(user0:addGroup(group))
    -- the junction's row on an include: its attributes asked for (docs/API.md "Eager loading")
    local inc = { Groups = { through = { attributes = { "userUserSecondId", "groupGroupSecondId" } } } }
    local user = assert(User:findOne { include = inc })
    local users = assert(User:findAll { include = inc })
    assert.equal(1, #user.Groups)
    -- Sequelize v6 names the added keys UserUserSecondId, GroupGroupSecondId; junction
    -- (as Sequelize 7) userUserSecondId, groupGroupSecondId
    assert.equal(user.userSecondId, user.Groups[1].User_has_Group.userUserSecondId)
    assert.equal(user.Groups[1].groupSecondId, user.Groups[1].User_has_Group.groupGroupSecondId)
    assert.equal(1, #users)
    assert.same(user:toTable(), users[1]:toTable())
  end)

  -- Users and groups keyed by UUIDs on user_id/group_id, each with a second
  -- unique UUID (userSecondId on user_second_id, groupSecondId on group_second_id).
  local function second_keys()
    local User = S.define(db, "User", {
      id = uuid_key("user_id"),
      userSecondId = { type = T.UUID, allowNull = false, defaultValue = S.junction.UUIDV4, field = "user_second_id",
                       unique = true },
    }, { tableName = "tbl_user" })
    local Group = S.define(db, "Group", {
      id = uuid_key("group_id"),
      groupSecondId = { type = T.UUID, allowNull = false, defaultValue = S.junction.UUIDV4, field = "group_second_id",
                        unique = true },
    }, { tableName = "tbl_group" })
    return User, Group
  end

  -- Two users, two groups, user i in group i; then both findAll with the
  -- include, each link holding the second keys (fk and ok name the junction's keys).
  local function check_second_links(User, Group, through, fk, ok)
    assert(db:sync())
    local u1, u2 = assert(User:create {}), assert(User:create {})
    local g1, g2 = assert(Group:create {}), assert(Group:create {})
    assert(u1:addGroup(g1))
    assert(u2:addGroup(g2))
    local attrs = { through = { attributes = { fk, ok } } }
    local users = assert(User:findAll { include = { Groups = attrs } })
    local groups = assert(Group:findAll { include = { Users = attrs } })
    assert.equal(2, #users)
    for _, u in ipairs(users) do
      assert.equal(1, #u.Groups)
      local link = u.Groups[1][through]
      assert.is_truthy(link[fk])
      assert.equal(u.userSecondId, link[fk])
      assert.equal(u.Groups[1].groupSecondId, link[ok])
    end
    assert.equal(2, #groups)
    for _, g in ipairs(groups) do
      assert.equal(1, #g.Users)
      local link = g.Users[1][through]
      assert.equal(g.groupSecondId, link[ok])
      assert.equal(g.Users[1].userSecondId, link[fk])
    end
  end

  it("supports non primary key attributes for joins (custom through model)", function()
    db = S.open()
    local User, Group = second_keys()
    -- Sequelize's index on the columns UserUserSecondId, GroupGroupSecondId: the keys
    -- junction adds through a declared model are unique together already
    S.define(db, "User_has_Group", {}, { tableName = "tbl_user_has_group" })
    assert(db:associate {
      User = { { belongsToMany = "Group", through = "User_has_Group", sourceKey = "userSecondId" } },
      Group = { { belongsToMany = "User", through = "User_has_Group", sourceKey = "groupSecondId" } },
    })
    check_second_links(User, Group, "User_has_Group", "userUserSecondId", "groupGroupSecondId")
  end)

  it("supports non primary key attributes for joins (custom foreignKey)", function()
    db = S.open()
    local User, Group = second_keys()
    assert(db:associate {
      User = { { belongsToMany = "Group", through = "usergroups", foreignKey = "userId2", sourceKey = "userSecondId" } },
      Group = { { belongsToMany = "User", through = "usergroups", foreignKey = "groupId2", sourceKey = "groupSecondId" } },
    })
    check_second_links(User, Group, "usergroups", "userId2", "groupId2")
  end)

  it("supports non primary key attributes for joins (custom foreignKey, custom through model)", function()
    db = S.open()
    local User, Group = second_keys()
    S.define(db, "User_has_Group", {}, { tableName = "tbl_user_has_group" })
    assert(db:associate {
      User = { { belongsToMany = "Group", through = "User_has_Group", foreignKey = "userId2",
                 sourceKey = "userSecondId" } },
      Group = { { belongsToMany = "User", through = "User_has_Group", foreignKey = "groupId2",
                  sourceKey = "groupSecondId" } },
    })
    check_second_links(User, Group, "User_has_Group", "userId2", "groupId2")
  end)

  it("supports primary key attributes with different field names where parent include is required", function()
    db = S.open()
    local User = S.define(db, "User", { id = uuid_key("user_id") }, { tableName = "tbl_user" })
    local Company = S.define(db, "Company", { id = uuid_key("company_id") }, { tableName = "tbl_company" })
    local Group = S.define(db, "Group", { id = uuid_key("group_id") }, { tableName = "tbl_group" })
    S.define(db, "Company_has_Group", {}, { tableName = "tbl_company_has_group" })
    assert(db:associate {
      User = { { belongsTo = "Company" } },
      Company = { { hasMany = "User" }, { belongsToMany = "Group", through = "Company_has_Group" } },
      Group = { { belongsToMany = "Company", through = "Company_has_Group" } },
    })
    assert(db:sync())
    local user, group, company = assert(User:create {}), assert(Group:create {}), assert(Company:create {})
    assert(user:setCompany(company))
    assert(company:addGroup(group))
    local inc = { Company = { include = { "Groups" } } }
    local req = { Company = { required = true, include = { "Groups" } } }
    local a = assert(User:findOne { include = inc })
    local b = assert(User:findAll { include = inc })
    local c = assert(User:findOne { include = req })
    local d = assert(User:findAll { include = req })
    -- Sequelize checks that the four queries run; each finds the user, its company and group
    for _, u in ipairs { a, b[1], c, d[1] } do
      assert.equal(user.id, u.id)
      assert.equal(company.id, u.Company.id)
      assert.equal(group.id, u.Company.Groups[1].id)
    end
  end)

  it("works when taking a column directly from the object", function()
    db = S.open()
    S.define(db, "project", {})
    local User = S.define(db, "user", { uid = { type = T.INTEGER, primaryKey = true } })
    assert(db:associate {
      user = { { belongsToMany = "project", through = "UserProjects", foreignKey = { name = "user_id" } } },
    })
    local a = User:getAssociation("projects")
    local decl
    for _, d in ipairs(a.through:_info().declarations) do
      if d.name == "user_id" then decl = d end
    end
    assert.is_truthy(decl)
    assert.equal(User.tableName, decl.ref_model)
    assert.equal("uid", decl.ref_key)
    -- Sequelize also takes defaultValue = 42 there: junction's added keys take name,
    -- field and allowNull (declare the field on a junction model for the rest)
    assert.has_error(function()
      db:associate { project = { { belongsToMany = "user", through = "UserProjects", as = "Members",
                                   foreignKey = { name = "project_id", defaultValue = 42 } } } }
    end, "db:associate: project: belongsToMany 'user': bad option 'foreignKey.defaultValue' (a key is " ..
         "{ name = ..., field = ..., allowNull = ... })")
  end)
end)

describe("Include (field)", function()
  local db
  after_each(function() if db then db:close() end db = nil end)

  it("should include a model with a where clause when the PK field name and attribute name are different", function()
    db = S.open()
    local User = S.define(db, "User", { id = { type = T.UUID, defaultValue = S.junction.UUIDV4, field = "main_id",
                                               primaryKey = true } })
    local Task = S.define(db, "Task", { searchString = T.STRING(255) })
    assert(db:associate {
      User = { { hasMany = "Task", foreignKey = "userId" } },
      Task = { { belongsTo = "User", foreignKey = "userId" } },
    })
    assert(db:sync())
    local user0 = assert(User:create {})
    assert(Task:bulkCreate { { userId = user0.id, searchString = "one" }, { userId = user0.id, searchString = "two" } })
    local user = assert(User:findOne { include = { Tasks = { where = { searchString = "one" } } } })
    assert.equal(1, #user.Tasks)
  end)

  it("should include a model with a through.where and required true clause when the PK field name and attribute " ..
     "name are different", function()
    db = S.open()
    S.define(db, "a", {})
    S.define(db, "b", {})
    -- Sequelize's a_b has name as its primary key (on name_id); junction keeps one key per
    -- model, the id it adds (docs/SEQUELIZE.md), so name is a plain attribute here
    S.define(db, "a_b", { name = { type = T.STRING(40), field = "name_id" } })
    local A, B = db:model("a"), db:model("b")
    assert(db:associate {
      a = { { belongsToMany = "b", through = "a_b" } },
      b = { { belongsToMany = "a", through = "a_b" } },
    })
    assert(db:sync())
    local a0, b = assert(A:create {}), assert(B:create {})
    assert(a0:addB(b, { through = { name = "Foobar" } }))
    local a = A:findOne { include = { bs = { through = { where = { name = "Foobar" } }, required = true } } }
    assert.is_truthy(a)
    assert.equal(1, #a.bs)
  end)
end)
