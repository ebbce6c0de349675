-- spec/accessors_spec.lua: per-field get and set functions and VIRTUAL fields
-- (docs/API.md "Getters, setters and VIRTUAL fields").
local H = require "spec.helper"
local T = H.T
local junction = H.junction

local function user_model(db, extra)
  local fields = {
    id = { type = T.INTEGER, primaryKey = true, autoIncrement = true },
    first = { type = T.TEXT, get = function(u) return (u:getDataValue("first") or ""):upper() end },
    last = { type = T.TEXT },
    email = { type = T.TEXT, set = function(u, v) u:setDataValue("email", v and v:lower()) end },
    full = { type = T.VIRTUAL,
             get = function(u) return u.first .. " " .. tostring(u.last) end,
             set = function(u, v)
               local a, b = v:match("^(%S+) (%S+)$")
               u.first, u.last = a, b
             end },
    note = { type = T.VIRTUAL },
  }
  for k, v in pairs(extra or {}) do fields[k] = v end
  local U = db:define("User", { tableName = "users", timestamps = false, fields = fields })
  assert(db:sync())
  return U
end

describe("get and set functions", function()
  local db, U
  before_each(function() db = H.open(); U = user_model(db) end)
  after_each(function() db:close() end)

  it("a get shapes what a field reads; getDataValue reads what is held", function()
    local u = assert(U:create{ first = "ada", last = "lovelace" })
    assert.equal("ADA", u.first)
    assert.equal("ada", u:getDataValue("first"))
    assert.equal("ada", db:query("SELECT first FROM users")[1].first)
    local r = assert(U:findByPk(u.id))
    assert.equal("ADA", r.first)
    assert.is_true(r == u)
  end)

  it("a set runs on create, on assignment and in update", function()
    local u = assert(U:create{ email = "A@B.C" })
    assert.equal("a@b.c", u.email)
    assert.equal("a@b.c", db:query("SELECT email FROM users")[1].email)
    u.email = "X@Y.Z"
    assert.same({ "email" }, u:changed())
    assert(u:save())
    assert.equal("x@y.z", assert(U:findByPk(u.id)).email)
    assert(u:update{ email = "Q@Q.Q" })
    assert.equal("q@q.q", assert(U:findByPk(u.id)).email)
  end)

  it("toTable gives what the gets give, VIRTUAL fields included", function()
    local u = assert(U:create{ full = "ada lovelace" })
    local t = u:toTable()
    assert.equal("ADA", t.first)
    assert.equal("ADA lovelace", t.full)
    assert.truthy(u:toJSON():find('"full":"ADA lovelace"', 1, true))
  end)

  it("a get that raises or yields is an error naming the field, not a crash", function()
    local db2 = H.open()
    local B = db2:define("B", { tableName = "b", timestamps = false, fields = {
      id = { type = T.INTEGER, primaryKey = true },
      boom = { type = T.VIRTUAL, get = function() error("boom") end },
      y = { type = T.VIRTUAL, get = function() coroutine.yield(1) end },
      s = { type = T.TEXT, set = function() error("nope") end },
    }})
    assert(db2:sync())
    local b = assert(B:create{ id = 1 })
    local ok, err = pcall(function() return b.boom end)
    assert.is_false(ok)
    assert.truthy(err:find("B.boom: its get function failed: ", 1, true), err)
    assert.truthy(err:find("boom", 1, true))
    local co = coroutine.create(function() return b.y end)
    ok, err = coroutine.resume(co)
    assert.is_false(ok)
    assert.truthy(err:find("B.y: its get function failed", 1, true), err)
    assert.truthy(err:find("must not yield", 1, true), err)
    ok, err = pcall(function() b.s = "x" end)
    assert.is_false(ok)
    assert.truthy(err:find("B.s: its set function failed", 1, true), err)
    -- a create whose set raises writes nothing
    ok = pcall(B.create, B, { id = 2, s = "x" })
    assert.is_false(ok)
    assert.equal(1, db2:query("SELECT count(*) AS n FROM b")[1].n)
    -- and the instance still works
    assert.equal(1, assert(B:findByPk(1)).id)
    db2:close()
  end)

  it("a get that closes the connection is refused cleanly; the connection stays usable", function()
    local db2 = H.open()
    local C = db2:define("C", { tableName = "c", timestamps = false, fields = {
      id = { type = T.INTEGER, primaryKey = true },
      v = { type = T.VIRTUAL, get = function() db2:close(); return 7 end },
    }})
    assert(db2:sync())
    local c = assert(C:create{ id = 1 })
    local ok, err = pcall(function() return c.v end)
    assert.is_false(ok)
    assert.truthy(err:find("C.v: its get function failed", 1, true), err)
    assert.equal(1, assert(C:findByPk(1)).id)
    db2:close()
  end)

  it("work with validators and hooks: update and create go through the set", function()
    local db2 = H.open()
    local V = db2:define("V", { tableName = "v", fields = {
      id = { type = T.INTEGER, primaryKey = true },
      first = { type = T.TEXT, validate = { notEmpty = true } }, last = { type = T.TEXT },
      full = { type = T.VIRTUAL, get = function(u) return u.first .. " " .. u.last end,
               set = function(u, v) u.first, u.last = v:match("^(%S*) (%S+)$") end },
    }, hooks = { beforeSave = function(u) u.last = u.last:upper() end } })
    assert(db2:sync())
    local u = assert(V:create{ id = 1, full = "ada lovelace" })
    assert.equal("ada LOVELACE", u.full)
    assert(u:update{ full = "alan turing" })
    assert.equal("alan TURING", assert(V:findByPk(1)).full)
    local ok, _, code = u:update{ full = " nobody" }
    assert.is_nil(ok)
    assert.equal(junction.VALIDATION, code)
    assert.equal("alan TURING", assert(V:findByPk(1)).full)
    db2:close()
  end)

  it("refuses a get or set that is no function", function()
    assert.has_error(function()
      db:define("X", { tableName = "x", fields = { a = { type = T.TEXT, get = 1 } } })
    end, "db:define: X.a: bad option 'get' (function expected, got number)")
    assert.has_error(function()
      db:define("X", { tableName = "x", fields = { a = { type = T.TEXT, set = "f" } } })
    end, "db:define: X.a: bad option 'set' (function expected, got string)")
  end)
end)

describe("VIRTUAL fields", function()
  local db, U
  before_each(function() db = H.open(); U = user_model(db) end)
  after_each(function() db:close() end)

  it("have no column and are never stored", function()
    for _, c in ipairs(H.columns(db, "users")) do
      assert.is_true(c.name ~= "full" and c.name ~= "note", c.name)
    end
    local u = assert(U:create{ full = "ada lovelace", note = "hi" })
    assert.equal("ADA lovelace", u.full)
    assert.equal("hi", u.note)
    assert.equal("lovelace", db:query("SELECT last FROM users")[1].last)
    local r = assert(U:findByPk(u.id))
    assert.equal("ADA lovelace", r.full)
    assert.is_nil(r.note)
    r.note = "kept on the instance"
    assert.equal("kept on the instance", r.note)
    assert.is_false(r:changed())
  end)

  it("are refused in where, in Model:update and with column options", function()
    assert.has_error(function() U:findAll{ where = { full = "x" } } end)
    assert.has_error(function() U:update({ note = "x" }, { where = { id = 1 } }) end)
    assert.has_error(function()
      db:define("V", { tableName = "v", fields = { id = { type = T.INTEGER, primaryKey = true },
                                                   x = { type = T.VIRTUAL, allowNull = false } } })
    end, "db:define: V.x: bad option 'allowNull' (a VIRTUAL field is never stored: it takes get and set only)")
    assert.has_error(function()
      db:define("W", { tableName = "w", fields = { id = { type = T.INTEGER, primaryKey = true },
                                                   save = { type = T.VIRTUAL } } })
    end)
  end)

  it("work in the array-of-pairs form of fields", function()
    local P = db:define("P", { tableName = "p", timestamps = false, fields = {
      { "id", { type = T.INTEGER, primaryKey = true } },
      { "twice", { type = T.VIRTUAL, get = function(p) return p.id * 2 end } },
    }})
    assert(db:sync())
    assert.equal(6, assert(P:create{ id = 3 }).twice)
  end)

  it("a model without them is defined as before", function()
    local m = H.blog(db)
    local p = assert(m.Post:create{ text = "x" })
    assert.has_error(function() return p.nothing end)
    assert.equal("x", p:getDataValue("text"))
    p:setDataValue("text", "y")
    assert.equal("y", p.text)
    assert.same({ "text" }, p:changed())
    assert.has_error(function() p:getDataValue("nothing") end,
      "Post:getDataValue: bad field 'nothing' (no such field in Post)")
  end)
end)

describe("a VIRTUAL type value", function()
  it("is refused by the core's own define, which never sees one from junction", function()
    local db = H.open()
    assert.equal("VIRTUAL", junction.types.VIRTUAL.name)
    db:close()
  end)
end)
