-- spec/schema_option_spec.lua: a model's `schema` option (Sequelize's
-- `define(..., { schema = "archive" })`). On PostgreSQL the table is
-- "archive"."users" in every statement junction makes; on SQLite the schema
-- prefixes the table's one name, "archive.users" (docs/API.md "Schemas"), so
-- that the same declarations run on both. The schema names come from
-- H.schema (one per run on PostgreSQL).
local H = require "spec.helper"
local junction = H.junction
local T = junction.types

-- the names of a list of instances, sorted
local function names(list)
  local out = {}
  for i, x in ipairs(list) do out[i] = x.name end
  table.sort(out)
  return out
end

local function users(db, name, schema, extra)
  local fields = { id = { type = T.INTEGER, primaryKey = true, autoIncrement = true },
                   name = { type = T.STRING(60) } }
  for k, v in pairs(extra or {}) do fields[k] = v end
  return db:define(name, { tableName = "users", schema = schema, fields = fields })
end

describe("the schema option", function()
  local db
  after_each(function() if db then db:close() end db = nil end)

  describe("at define", function()
    before_each(function() db = H.open() end)

    local function refused(schema, message)
      local ok, err = pcall(db.define, db, "User", { schema = schema, fields = { name = { type = T.TEXT } } })
      assert.is_false(ok)
      assert.truthy(tostring(err):find(message, 1, true), tostring(err))
      assert.is_nil(db:model("User"))   -- nothing half-defined stays behind
    end

    it("refuses a schema that is no identifier, naming the option", function()
      refused(42, "db:define: User: bad option 'schema' (string expected, got number)")
      refused(true, "bad option 'schema' (string expected, got boolean)")
      refused(setmetatable({}, { __tostring = function() return "archive" end }),
              "bad option 'schema' (string expected, got table)")
      refused("", "bad option 'schema' (bad identifier ''")
      refused("arch.ive", "bad option 'schema' (bad identifier 'arch.ive'")
      refused('arch"ive', "bad option 'schema' (bad identifier 'arch\"ive'")
      refused("arch ive", "bad option 'schema' (bad identifier")
      refused("1archive", "bad option 'schema' (bad identifier")
    end)

    it("refuses a schema longer than PostgreSQL's 63 bytes, on both engines", function()
      refused(string.rep("s", 64), "bad option 'schema' (at most 63 bytes, PostgreSQL's limit: '" ..
              string.rep("s", 64) .. "' has 64)")
      assert(db:define("User", { schema = string.rep("s", 63), fields = { name = { type = T.TEXT } } }))
    end)

    it("lets two models have one table name in two schemas, not in one", function()
      local a, b = H.schema(db, "one"), H.schema(db, "two")
      users(db, "UserA", a)
      users(db, "UserB", b)
      users(db, "UserC")   -- and the connection's own
      local ok, err = pcall(users, db, "UserD", a)
      assert.is_false(ok)
      assert.truthy(tostring(err):find("db:define: UserD: table '", 1, true), tostring(err))
      assert.truthy(tostring(err):find("is already the table of model UserA", 1, true), tostring(err))
    end)

    it("is in the model's description", function()
      local a = H.schema(db, "one")
      local info = users(db, "UserA", a):_info()
      assert.equal("users", info.tableName)
      assert.equal(a, info.schema)
      assert.equal(H.is_pg and ('"' .. a .. '"."users"') or ('"' .. a .. '.users"'), info.qtable)
      assert.is_nil(users(db, "UserC"):_info().schema)
      assert.equal('"users"', db:model("UserC"):_info().qtable)
    end)
  end)

  it("keeps the rows of two models named alike in two schemas apart", function()
    db = H.open()
    local a, b = H.schema(db, "one"), H.schema(db, "two")
    local A, B, C = users(db, "UserA", a), users(db, "UserB", b), users(db, "UserC")
    assert(db:sync())
    assert(A:create { name = "in a" })
    assert(B:create { name = "in b" })
    assert(B:create { id = 7, name = "b, key given" })
    assert(B:create { name = "b, after" })   -- the key's generator moved past 7 (PostgreSQL)
    assert(C:create { name = "own" })
    assert.same({ "in a" }, names(assert(A:findAll {})))
    assert.same({ "b, after", "b, key given", "in b" }, names(assert(B:findAll {})))
    assert.same({ "own" }, names(assert(C:findAll {})))
    assert(B:update({ name = "renamed" }, { where = { id = 7 } }))
    assert.equal(0, assert(A:count { where = { name = "renamed" } }))
    assert(A:destroy { where = { id = 1 } })
    assert.equal(0, assert(A:count()))
    assert.equal(3, assert(B:count()))
    assert.equal(1, assert(C:count()))
  end)

  describe("associations and include across schemas", function()
    local A, P, G, a
    before_each(function()
      db = H.open()
      local one, two = H.schema(db, "one"), H.schema(db, "two")
      A = users(db, "UserA", one)
      users(db, "UserB", two)
      P = db:define("Post", { tableName = "posts", schema = two, fields = {
        id = { type = T.INTEGER, primaryKey = true, autoIncrement = true },
        user_id = { type = T.INTEGER, references = { model = "UserA", key = "id" } } } })
      G = db:define("Tag", { tableName = "users", fields = {   -- the own schema's "users"
        id = { type = T.INTEGER, primaryKey = true, autoIncrement = true },
        label = { type = T.TEXT } } })
      assert(db:associate {
        UserA = { { hasMany = "Post", foreignKey = "user_id" } },
        Post = { { belongsTo = "UserA", foreignKey = "user_id" },
                 { belongsToMany = "Tag", through = "post_tags" } },
      })
      assert(db:sync())
      a = assert(A:create { name = "a" })
    end)

    it("include, required or not, joins the tables of other schemas", function()
      local p = assert(P:create { user_id = a.id })
      assert(p:addTag(assert(G:create { label = "x" })))
      local found = assert(A:findAll { include = { "Posts" }, where = { name = "a" } })
      assert.equal(1, #found[1].Posts)
      found = assert(P:findAll { include = { { association = "Tags", required = true }, "UserA" } })
      assert.equal(1, #found)
      assert.equal("x", found[1].Tags[1].label)
      assert.equal("a", found[1].UserA.name)
      assert.equal(1, assert(A:count { include = { { association = "Posts", required = true } } }))
      assert(p:setTags {})
      assert.equal(0, #assert(P:findAll { include = { { association = "Tags", required = true } } }))
    end)

    it("the association methods write the schema's tables", function()
      local p = assert(a:createPost {})
      local t = assert(G:create { label = "t" })
      assert(p:addTag(t))
      assert.is_true(assert(p:hasTag(t)))
      assert.equal(1, assert(p:countTags()))
      assert.equal("a", assert(p:getUserA()).name)
      assert.equal(1, #assert(a:getPosts()))
      assert(p:removeTag(t))
      assert.equal(0, assert(p:countTags()))
      assert.equal(db:model("post_tags"):_info().schema, P:_info().schema)   -- the source's
    end)

    it("a foreign key REFERENCES the table in its schema", function()
      local ok, msg = P:create { user_id = 999 }
      assert.is_nil(ok)
      assert.truthy(tostring(msg):find("FOREIGN KEY", 1, true) or tostring(msg):find("foreign key", 1, true),
                    tostring(msg))
    end)
  end)

  describe("db:sync", function()
    it("creates the schema, and compares the tables in it on the next sync", function()
      local log = {}
      db = H.open { log = function(sql) log[#log + 1] = sql end }
      local s = H.schema(db, "archive")
      users(db, "User", s)
      assert(db:sync())
      local all = table.concat(log, "\n")
      if H.is_pg then
        assert.truthy(all:find('CREATE SCHEMA IF NOT EXISTS "' .. s .. '"', 1, true), all)
        assert.truthy(all:find('CREATE TABLE "' .. s .. '"."users"', 1, true), all)
      else   -- SQLite has one namespace: no CREATE SCHEMA, the schema prefixes the name
        assert.is_nil(all:find("CREATE SCHEMA", 1, true))
        assert.truthy(all:find('CREATE TABLE "' .. s .. '.users"', 1, true), all)
      end
      local n = #log
      assert(db:sync())    -- finds the table in its schema: nothing to create, nothing differs
      for i = n + 1, #log do assert.is_nil(log[i]:find("CREATE TABLE", 1, true), log[i]) end
    end)

    it("reads the catalog of the schema's table, not another of that name", function()
      db = H.open()
      local s = H.schema(db, "archive")
      users(db, "Own")                  -- "users" in the connection's own schema: two columns
      assert(db:sync())
      -- a second set of models on the same database: the schema's "users" with one more column
      local spec = { tableName = "users", schema = s, fields = {
        id = { type = T.INTEGER, primaryKey = true, autoIncrement = true },
        name = { type = T.STRING(60) }, extra = { type = T.TEXT } } }
      db:define("Archived", spec)
      assert(db:sync())                 -- creates the schema's table, with extra
      assert(db:model("Archived"):create { name = "n", extra = "e" })
      assert.equal(0, assert(db:model("Own"):count()))
      assert.equal(1, assert(db:model("Archived"):count()))
      assert(db:sync())                 -- and compares it: the same, no problem
    end)

    it("force drops and recreates the schema's tables", function()
      db = H.open()
      local s = H.schema(db, "archive")
      local U = users(db, "User", s)
      assert(db:sync())
      assert(U:create { name = "gone" })
      assert(db:sync { force = true })
      assert.equal(0, assert(U:count()))
    end)
  end)

  it("junction.erd reads the column types of the table in its schema", function()
    db = H.open()
    local s = H.schema(db, "archive")
    users(db, "User", s)
    assert(db:sync())
    local dot = junction.erd(db)
    -- the types the database reports (PostgreSQL's information_schema in lower case)
    assert.truthy(dot:find(H.is_pg and "name varchar(60)" or "name VARCHAR(60)", 1, true), dot)
    assert.truthy(dot:find(s .. ".users", 1, true), dot)
  end)

  it("the migrations' table helpers take Sequelize's { tableName = ..., schema = ... }", function()
    db = H.open()
    local s = H.schema(db, "archive")
    local t = { tableName = "users", schema = s }
    local steps = { { name = "1", up = function(schema)
      schema:createTable(t, { { "id", { type = T.INTEGER, primaryKey = true, autoIncrement = true } },
                              { "name", { type = T.STRING(60) } },
                              { "createdAt", { type = T.DATE, allowNull = false } },
                              { "updatedAt", { type = T.DATE, allowNull = false } } })
      schema:addColumn(t, "note", { type = T.TEXT })
      schema:renameColumn(t, "note", "remark")
      schema:changeColumn(t, "remark", { type = T.STRING(80) })
      schema:addIndex(t, { "name" })
      schema:removeColumn(t, "remark")
      schema:renameTable(t, { tableName = "people", schema = s })
      schema:renameTable({ tableName = "people", schema = s }, "users")   -- stays in the schema
    end } }
    assert(junction.migrate(db, steps))
    local U = users(db, "User", s)
    -- the table is where the model's statements look for it, before any sync
    assert.equal(0, assert(db:query("SELECT count(*) AS n FROM " .. U:_info().qtable))[1].n)
    local ok, details = db:sync()   -- the table the migration made in the schema is the model's
    assert.is_true(ok, details and details.problems and table.concat(details.problems, "; "))
    assert(U:create { name = "x" })
    assert.equal(1, assert(U:count()))
    steps[2] = { name = "2", up = function(schema) schema:dropTable(t) end }
    assert(junction.migrate(db, steps))
    assert.is_nil(U:count())        -- the table is gone
    -- a rename out of the table's schema is refused on both engines
    local done, err = pcall(junction.migrate, db, { steps[1], steps[2], { name = "3", up = function(schema)
      schema:createTable(t, { id = { type = T.INTEGER, primaryKey = true } })
      schema:renameTable(t, { tableName = "users" })
    end } })
    assert.is_false(done)
    assert.truthy(tostring(err):find("a rename stays in the table's schema", 1, true), tostring(err))
    -- a bad table argument raises, naming it
    assert.has_error(function() junction.migrate(db, { steps[1], steps[2], { name = "3", up = function(schema)
      schema:dropTable { tableName = "users", schema = 42 }
    end } }) end)
  end)

  it("junction.copy carries a SQLite file's schema tables into their schema", function()
    db = H.open()                                   -- the destination: PostgreSQL, or SQLite
    local s = H.schema(db, "archive")
    local src = assert(junction.open(":memory:"))   -- the source: a SQLite file's tables
    local function models(conn)
      users(conn, "User", s)
      conn:define("Post", { tableName = "posts", schema = s, fields = {
        id = { type = T.INTEGER, primaryKey = true, autoIncrement = true },
        user_id = { type = T.INTEGER, references = { model = "User", key = "id" } } } })
      users(conn, "Own")                            -- "users" outside the schema
      assert(conn:sync())
    end
    models(src)
    models(db)
    local u = assert(src:model("User"):create { name = "in archive" })
    assert(src:model("Post"):create { user_id = u.id })
    assert(src:model("Own"):create { name = "own 1" })
    assert(src:model("Own"):create { name = "own 2" })
    local counts = assert(junction.copy(src, db))
    assert.equal(1, counts[s .. ".users"])
    assert.equal(1, counts[s .. ".posts"])
    assert.equal(2, counts.users)
    assert.same({ "in archive" }, names(assert(db:model("User"):findAll {})))
    assert.same({ "own 1", "own 2" }, names(assert(db:model("Own"):findAll {})))
    -- the key counter moved past the copied keys
    local u2 = assert(db:model("User"):create { name = "after" })
    assert.is_true(u2.id > u.id)
    src:close()
  end)

  it("names the schema in every statement about the table (none forgets it)", function()
    local log = {}
    db = H.open { log = function(sql) log[#log + 1] = sql end }
    local s = H.schema(db, "archive")
    local U = users(db, "User", s)
    local P = db:define("Post", { tableName = "posts", schema = s, fields = {
      id = { type = T.INTEGER, primaryKey = true, autoIncrement = true },
      title = { type = T.TEXT } } })
    db:define("Tag", { tableName = "tags", schema = s, fields = {
      id = { type = T.INTEGER, primaryKey = true, autoIncrement = true } } })
    assert(db:associate {
      User = { { hasMany = "Post" } },
      Post = { { belongsTo = "User" }, { belongsToMany = "Tag", through = "post_tags" } },
    })
    assert(db:sync { force = true })
    local u = assert(U:create { name = "u" })
    local p = assert(u:createPost { title = "t" })
    assert(p:setTags { assert(db:model("Tag"):create {}) })
    assert(U:findAll { include = { { association = "Posts", include = { "Tags" } } } })
    assert(P:findAll { where = { title = "t" }, include = { { association = "User", required = true } } })
    assert(u:update { name = "v" })
    assert(u:reload())
    assert(P:update({ title = "w" }, { where = { id = p.id } }))
    assert(p:getTags())
    assert(p:setTags {})
    assert(U:count())
    assert(p:destroy())
    assert(db:sync())
    local checked = 0
    for _, sql in ipairs(log) do
      for _, t in ipairs { "users", "posts", "tags", "post_tags" } do
        -- the table quoted alone ("users" not after a "." of a qualified name)
        local bare = sql:find('[^.]"' .. t .. '"') or sql:find('^"' .. t .. '"')
        local q = H.is_pg and ('"' .. s .. '"."' .. t .. '"') or ('"' .. s .. '.' .. t .. '"')
        local qualified = sql:find(q, 1, true)
        if qualified then checked = checked + 1 end
        assert.is_nil(bare, "a statement names " .. t .. " without its schema: " .. sql)
      end
    end
    assert.truthy(checked > 20, "only " .. checked .. " statements named the tables")
  end)
end)
