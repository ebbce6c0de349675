-- spec/engine_spec.lua: which engine a connection runs on, and how
-- junction.open chooses it (a path, a postgresql:// URL, or a table naming
-- the engine). PostgreSQL itself is tested in spec/postgres_spec.lua.
local H = require "spec.helper"
local junction = H.junction

local function exists(path)
  local f = io.open(path, "rb")
  if f then f:close() end
  return f ~= nil
end

describe("db:engine", function()
  it("says which engine the connection runs on, also once closed", function()
    local db = H.open()
    assert.equal(H.engine, db:engine())
    db:close()
    assert.equal(H.engine, db:engine())   -- still answers once closed
  end)

  it("raises for something that is no connection", function()
    local db = H.open()
    assert.has_error(function() db.engine({}) end,
      "db:engine: bad self (connection expected, got table)")
    db:close()
  end)
end)

describe("junction.open with a PostgreSQL URL", function()
  it("never opens a SQLite file named after the URL", function()
    -- a port nothing listens on: a build with libpq fails to connect, one
    -- without says so; neither creates a file
    for _, url in ipairs { "postgresql://nobody@127.0.0.1:1/none", "postgres://nobody@127.0.0.1:1/none" } do
      local db, msg, code = junction.open(url)
      assert.is_nil(db)
      assert.is_string(msg)
      assert.equal(14, code)   -- SQLITE_CANTOPEN
      -- the server's refusal, or the build's lack of libpq: never SQLite's file error
      assert.is_nil(msg:find("unable to open database file", 1, true))
      assert.is_truthy(msg:find("junction was built without PostgreSQL (libpq)", 1, true) or
                       msg:find("127.0.0.1", 1, true))
      assert.is_false(exists(url))
      assert.is_false(exists("postgresql:"))
      assert.is_false(exists("postgres:"))
    end
  end)

  it("refuses SQLite-only options on PostgreSQL, naming the option", function()
    for _, opt in ipairs { "busy_timeout", "foreign_keys", "journal_mode", "synchronous", "temp_store" } do
      local opts = { [opt] = opt == "foreign_keys" and true or opt == "busy_timeout" and 10
                     or opt == "journal_mode" and "wal" or opt == "synchronous" and "full" or "memory" }
      assert.has_error(function() junction.open("postgresql://nobody@127.0.0.1:1/none", opts) end,
        "junction.open: bad option '" .. opt .. "' (SQLite only: PostgreSQL has no such setting)")
    end
  end)
end)

describe("junction.open with a table", function()
  it("opens SQLite from { engine = 'sqlite', path = ... } with its options", function()
    local db = assert(junction.open { engine = "sqlite", path = ":memory:", foreign_keys = false })
    assert.equal("sqlite", db:engine())
    local fk = db:query("PRAGMA foreign_keys")[1].foreign_keys
    assert.equal(0, fk)
    db:close()
  end)

  it("raises for a missing or unknown engine, or the other engine's target key", function()
    assert.has_error(function() junction.open { path = ":memory:" } end,
      "junction.open: bad option 'engine' (\"sqlite\" or \"postgres\" expected, got nil)")
    assert.has_error(function() junction.open { engine = "mysql", path = ":memory:" } end,
      "junction.open: bad option 'engine' (\"sqlite\" or \"postgres\" expected, got 'mysql')")
    assert.has_error(function() junction.open { engine = "sqlite", conninfo = "x" } end,
      "junction.open: bad option 'conninfo' (engine 'sqlite' takes 'path')")
    assert.has_error(function() junction.open { engine = "postgres", path = "x" } end,
      "junction.open: bad option 'path' (engine 'postgres' takes 'conninfo')")
    assert.has_error(function() junction.open { engine = "postgres" } end,
      "junction.open: bad option 'conninfo' (string expected, got nil)")
    assert.has_error(function() junction.open { engine = "sqlite", path = ":memory:", nope = 1 } end,
      "junction.open: bad option 'nope' (unknown key)")
    assert.has_error(function() junction.open({ engine = "sqlite", path = ":memory:" }, {}) end,
      "junction.open: bad argument #2 (the options go in the table of argument #1)")
  end)

  it("refuses SQLite-only options in a postgres table", function()
    assert.has_error(function()
      junction.open { engine = "postgres", conninfo = "host=/nonexistent", journal_mode = "wal" }
    end, "junction.open: bad option 'journal_mode' (SQLite only: PostgreSQL has no such setting)")
  end)

  it("reads the table raw: no metamethod runs", function()
    local t = setmetatable({ engine = "sqlite", path = ":memory:" }, {
      __index = function() error("metamethod ran") end,
      __pairs = function() error("metamethod ran") end,
    })
    local db = assert(junction.open(t))
    db:close()
  end)
end)
