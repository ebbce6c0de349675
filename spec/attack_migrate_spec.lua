-- spec/attack_migrate_spec.lua: migrations that misbehave half way leave
-- the connection as they found it.
local H = require "spec.helper"
local junction = H.junction
local T = H.T

local sqlite_describe = H.sqlite_only(describe, pending)

sqlite_describe("a migration on SQLite", function()
  local db
  before_each(function() db = H.open() end)
  after_each(function() db:close() end)

  local function fk() return db:query("PRAGMA foreign_keys")[1].foreign_keys end

  it("may not yield: it raises, is rolled back, and foreign keys stay on", function()
    local migrations = { { name = "001_a", up = function(schema)
      schema:createTable("a", { id = { type = T.INTEGER, primaryKey = true } })
      coroutine.yield()
    end } }
    local co = coroutine.create(function() return junction.migrate(db, migrations) end)
    local ok, err = coroutine.resume(co)
    -- before, the migration yielded here with foreign keys off; a dropped
    -- coroutine then left them off on the connection for good
    assert.is_false(ok)
    assert.matches("001_a: a migration may not yield on SQLite", err, 1, true)
    assert.equal(1, fk())
    assert.is_nil(junction.migrationStatus(db, migrations)[1].applied_at)
    assert.is_nil(db:query("SELECT name FROM sqlite_master WHERE name = 'a'")[1])
  end)

  it("that raises a table, or calls junction.abort, leaves foreign keys on", function()
    assert.has_error(function()
      junction.migrate(db, { { name = "002", up = function() error({ "not a string" }) end } })
    end)
    assert.equal(1, fk())
    local ok, msg, code = junction.migrate(db, { { name = "003", up = function() junction.abort("no", 9) end } })
    assert.is_nil(ok)
    assert.equal("no", msg)
    assert.equal(9, code)
    assert.equal(1, fk())
  end)
end)
