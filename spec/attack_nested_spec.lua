-- spec/attack_nested_spec.lua: nested creation (Model:create(values, {
-- include = ... })) under attack: values in a shape that would make fewer
-- rows than written, a default scope that hides the new row, a rollback of
-- the transaction around it, option tables with metamethods.
local H = require "spec.helper"
local junction = H.junction
local core = require "junction.core"
local T = H.T

local function world(db, user_scope)
  local User = db:define("User", {
    defaultScope = user_scope,
    fields = { id = { type = T.INTEGER, primaryKey = true, autoIncrement = true },
               name = { type = T.TEXT }, active = { type = T.BOOLEAN, defaultValue = true } },
  })
  local Item = db:define("Item", {
    fields = { id = { type = T.INTEGER, primaryKey = true, autoIncrement = true },
               userId = { type = T.INTEGER }, title = { type = T.TEXT } },
  })
  assert(db:associate { User = { { hasMany = "Item", foreignKey = "userId", as = "Items" } } })
  assert(db:sync())
  return User, Item
end

describe("nested creation", function()
  local db
  before_each(function() db = H.open() end)
  after_each(function() db:close() end)

  it("raises for a hasMany given one table of values instead of a list, writing nothing", function()
    local User, Item = world(db)
    assert.has_error(function()
      User:create({ name = "a", Items = { title = "x" } }, { include = { "Items" } })
    end, "User:create: bad value for Items (a list of tables of values expected)")
    assert.equal(0, User:count())
    assert.equal(0, Item:count())
  end)

  it("raises for a list with a key that is not an index, writing nothing", function()
    local User, Item = world(db)
    assert.has_error(function()
      User:create({ name = "b", Items = { { title = "y" }, extra = { title = "z" } } }, { include = { "Items" } })
    end, "User:create: bad value for Items (a list of tables of values expected)")
    assert.equal(0, User:count())
    assert.equal(0, Item:count())
  end)

  it("returns the new row when the model's default scope would hide it", function()
    local User, Item = world(db, { where = { active = true } })
    local u, msg = User:create({ name = "c", active = false, Items = { { title = "w" } } }, { include = { "Items" } })
    assert.is_nil(msg)
    assert.truthy(u)
    assert.equal("c", u.name)
    assert.equal(1, #u.Items)
    assert.equal(1, User:unscoped():count())
    assert.equal(1, Item:count())
  end)

  it("returns instances that are unsaved again when the transaction around it rolls back", function()
    local User, Item = world(db)
    local u
    local ok = db:transaction(function()
      u = assert(User:create({ name = "d", Items = { { title = "i1" }, { title = "i2" } } },
                             { include = { "Items" } }))
      assert.equal(2, #u.Items)
      junction.abort("no")
    end)
    assert.is_nil(ok)
    assert.equal(0, User:count())
    assert.is_nil(u.id)
    assert.is_false(core._saved(u))
    for _, item in ipairs(u.Items) do
      assert.is_nil(item.id)
      assert.is_false(core._saved(item))
    end
    assert(u:save())                          -- inserts, as after any rolled back create
    assert.equal(1, User:count())
    assert(u.Items[1]:update { userId = u.id })
    assert.equal(1, Item:count())
  end)

  it("reads its options and include list without running their metamethods", function()
    local User = world(db)
    local function boom() error("a metamethod ran") end
    local include = setmetatable({ "Items" }, { __index = boom, __len = boom })
    local opts = setmetatable({ include = include }, { __index = boom })
    local u = assert(User:create({ name = "e", Items = { { title = "t" } } }, opts))
    assert.equal(1, #u.Items)
  end)
end)
