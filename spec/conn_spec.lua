-- spec/conn_spec.lua: junction.open and its options, exec, query, transactions,
-- close, reopen, tostring (docs/API.md "Module" and "Connection").
local H = require "spec.helper"
local sqlite_it = H.sqlite_only(it, pending)
local sqlite_describe = H.sqlite_only(describe, pending)
local pg_it = H.pg_only(it, pending)
local junction = H.junction

local function pragma(db, name)
  local rows = assert(db:query("PRAGMA " .. name))
  local row = rows[1]
  local _, v = next(row)
  return v
end

describe("junction module", function()
  it("exposes version strings and the types", function()
    assert.is_string(junction.version)
    assert.is_string(junction.sqlite_version)
    assert.matches("^3%.%d+%.%d+", junction.sqlite_version)
    for _, t in ipairs { "INTEGER", "TEXT", "REAL", "BLOB", "BOOLEAN", "DATE" } do
      assert.is_not_nil(junction.types[t], t)
    end
    local s60 = junction.types.STRING(60)        -- STRING is callable
    assert.is_not_nil(s60)
    assert.is_function(junction.loadModels)
  end)

  sqlite_it("reports the linked SQLite version", function()
    local db = H.open()
    local v = db:query("SELECT sqlite_version() AS v")[1].v
    assert.equal(v, junction.sqlite_version)
    db:close()
  end)

  it("inflects singular, plural and snake case", function()
    local I = junction.inflect
    assert.equal("Genre", I.singular("Genres"))
    assert.equal("Category", I.singular("Categories"))
    assert.equal("Box", I.singular("Boxes"))
    assert.equal("Genres", I.plural("Genre"))
    assert.equal("Categories", I.plural("Category"))
    assert.equal("Boxes", I.plural("Box"))
    assert.equal("tag_post_genre", I.snake("TagPostGenre"))
    assert.equal("post", I.snake("Post"))
  end)
end)

describe("junction.open", function()
  sqlite_it("opens :memory: and returns a connection", function()
    local db = junction.open(":memory:")
    assert.is_userdata(db)
    assert.is_true(db:close())
  end)

  sqlite_it("returns nil, message, code for a path that cannot be opened", function()
    local db, msg, code = junction.open("/nonexistent-dir-junction/x/y.sqlite3")
    assert.is_nil(db)
    assert.is_string(msg)
    assert.is_number(code)
  end)

  sqlite_it("defaults busy_timeout to 5000 and foreign_keys to on", function()
    local db = H.open()
    assert.equal(5000, pragma(db, "busy_timeout"))
    assert.equal(1, pragma(db, "foreign_keys"))
    db:close()
  end)

  sqlite_it("applies busy_timeout", function()
    local db = H.open { busy_timeout = 1234 }
    assert.equal(1234, pragma(db, "busy_timeout"))
    db:close()
  end)

  sqlite_it("applies foreign_keys = false", function()
    local db = H.open { foreign_keys = false }
    assert.equal(0, pragma(db, "foreign_keys"))
    -- and it is really off: a dangling reference is accepted
    assert(db:exec("CREATE TABLE p(id INTEGER PRIMARY KEY); CREATE TABLE c(p_id INTEGER REFERENCES p(id))"))
    assert.is_true(db:exec("INSERT INTO c(p_id) VALUES (42)"))
    db:close()
  end)

  it("enforces foreign keys by default", function()
    local db = H.open()
    assert(db:exec("CREATE TABLE p(id INTEGER PRIMARY KEY); CREATE TABLE c(p_id INTEGER REFERENCES p(id))"))
    local ok, msg, code = db:exec("INSERT INTO c(p_id) VALUES (42)")
    assert.is_nil(ok)
    assert.is_string(msg)
    assert.equal(787, code)
    db:close()
  end)

  sqlite_it("applies journal_mode and synchronous on a file database", function()
    local path = H.tmpname()
    local db = assert(junction.open(path, { journal_mode = "wal", synchronous = "normal" }))
    assert.equal("wal", pragma(db, "journal_mode"))
    assert.equal(1, pragma(db, "synchronous"))
    db:close()
    H.rmdb(path)
  end)

  it("calls log(sql, params) before each statement with the bound values", function()
    local log, entries = H.recorder()
    local db = H.open { log = log }
    local before = #entries
    -- typed: PostgreSQL cannot add two parameters of no known type
    local rows = assert(db:query("SELECT CAST(? AS INTEGER) + CAST(? AS INTEGER) AS s, ? AS t", 1, 2, "x"))
    assert.equal(3, rows[1].s)
    local hits = H.matching(entries, "SELECT CAST%(%? AS INTEGER%) %+ CAST%(%?", before + 1)
    assert.equal(1, #hits)
    assert.same({ 1, 2, "x" }, hits[1].params)
    db:close()
  end)

  it("logs model statements with their parameters", function()
    local log, entries = H.recorder()
    local db = H.open { log = log }
    local m = H.blog(db)
    local n0 = #entries
    assert(m.Post:create { text = "logged text" })
    local inserts = H.matching(entries, "^%s*INSERT", n0 + 1)
    assert.equal(1, #inserts)
    local found = false
    for _, v in pairs(inserts[1].params) do if v == "logged text" then found = true end end
    assert.is_true(found, "the INSERT's params carry the bound text")
    assert.matches("post", inserts[1].sql)
    db:close()
  end)

  -- On PostgreSQL setGenres is one WITH statement binding the keys as one
  -- JSON array (docs/POSTGRES.md), so there are no positions to log.
  sqlite_it("logs the keys an association binds, position by position", function()
    local log, entries = H.recorder()
    local db = H.open { log = log }
    local m = H.blog(db)
    for i = 1, 3 do assert(m.Genre:create { name = "g" .. i }) end
    local post = assert(m.Post:create { text = "p" })
    local n0 = #entries
    assert(post:setGenres { 1, 3 })
    local inserts = H.matching(entries, "^%s*INSERT", n0 + 1)
    assert.equal(1, #inserts)
    local p = inserts[1].params
    -- (post_id, genre_id, stamp, stamp): ?1 = post, ?2 = 1, ?4 = 3, ?3 and ?5 the stamps
    assert.equal(post.post_id, p[1])
    assert.equal(1, p[2])
    assert.equal(3, p[4])
    assert.is_string(p[3])
    assert.matches("^%d%d%d%d%-%d%d%-%d%d ", p[3])
    db:close()
  end)

  it("raises on an unknown option or a bad option type", function()
    H.mentions(H.raises(junction.open, ":memory:", { busy_timout = 10 }), "busy_timout")
    H.raises(junction.open, ":memory:", { log = "not a function" })
    H.raises(junction.open, {})
  end)
end)

describe("db:exec", function()
  it("runs several statements and returns true", function()
    local db = H.open()
    assert.is_true(db:exec([[
      CREATE TABLE t(a INTEGER, b TEXT);
      INSERT INTO t VALUES (1, 'one');
      INSERT INTO t VALUES (2, 'two');
    ]]))
    assert.equal(2, db:query("SELECT count(*) AS n FROM t")[1].n)
    db:close()
  end)

  it("returns nil, message, code on a syntax error", function()
    local db = H.open()
    local ok, msg, code = db:exec("CREATE TABLEX t(a)")
    assert.is_nil(ok)
    assert.matches("syntax", msg)
    assert.equal(1, code)
    db:close()
  end)

  it("returns the extended code on a constraint failure", function()
    local db = H.open()
    assert(db:exec("CREATE TABLE t(a INTEGER UNIQUE)"))
    assert(db:exec("INSERT INTO t VALUES (1)"))
    local ok, msg, code = db:exec("INSERT INTO t VALUES (1)")
    assert.is_nil(ok)
    assert.matches(H.is_pg and "unique constraint" or "UNIQUE", msg)
    assert.equal(2067, code)
    db:close()
  end)
end)

describe("db:query", function()
  local db
  before_each(function()
    db = H.open()
    assert(db:exec("CREATE TABLE t(id INTEGER PRIMARY KEY, s TEXT, r REAL, b " .. H.sql.blob .. ", n INTEGER)"))
  end)
  after_each(function() db:close() end)

  it("returns an array of rows keyed by column, NULL as nil", function()
    assert(db:exec("INSERT INTO t(id, s, r, n) VALUES (1, 'a', 1.5, NULL), (2, 'b', 2.5, 7)"))
    local rows = assert(db:query("SELECT id, s, r, n FROM t ORDER BY id"))
    assert.equal(2, #rows)
    assert.same({ id = 1, s = "a", r = 1.5 }, rows[1])
    assert.same({ id = 2, s = "b", r = 2.5, n = 7 }, rows[2])
  end)

  it("returns an empty array when there are no rows", function()
    local rows = db:query("SELECT * FROM t")
    assert.same({}, rows)
  end)

  it("binds ? parameters from the varargs, including nil in the middle", function()
    assert(db:query("INSERT INTO t(id, s, n) VALUES (?, ?, ?)", 5, nil, 9))
    local row = db:query("SELECT s, n FROM t WHERE id = ?", 5)[1]
    assert.is_nil(row.s)
    assert.equal(9, row.n)
  end)

  it("never splices values: hostile text is stored verbatim", function()
    local evil = "x'); DROP TABLE t; --"
    assert(db:query("INSERT INTO t(id, s) VALUES (?, ?)", 1, evil))
    assert.equal(evil, db:query("SELECT s FROM t WHERE id = 1")[1].s)
    assert.equal(1, db:query("SELECT count(*) AS n FROM t")[1].n)   -- t is still there
  end)

  -- SQLite only: PostgreSQL's text holds no NUL (values_spec, "text PostgreSQL cannot hold")
  sqlite_it("round-trips text with NUL bytes and binary blobs", function()
    local s = "a\0b\0c"
    local bytes = {}
    for i = 0, 255 do bytes[#bytes + 1] = string.char(i) end
    local blob = table.concat(bytes)
    assert(db:query("INSERT INTO t(id, s, b) VALUES (1, ?, ?)", s, blob))
    local row = db:query("SELECT s, b, length(CAST(b AS BLOB)) AS lb FROM t")[1]
    assert.equal(s, row.s)
    assert.equal(blob, row.b)
    assert.equal(256, row.lb)
  end)

  it("returns nil, message, code for bad SQL", function()
    local ok, msg, code = db:query("SELEC 1")
    assert.is_nil(ok)
    assert.is_string(msg)
    assert.is_number(code)
  end)

  it("raises when sql is not a string", function()
    H.raises(function() db:query({}) end)
  end)
end)

describe("db:changes and db:lastInsertId", function()
  it("report the last write", function()
    local db = H.open()
    assert(db:exec("CREATE TABLE t(id " .. H.sql.pk .. ", v INTEGER)"))
    assert(db:query("INSERT INTO t(v) VALUES (?)", 10))
    assert.equal(1, db:lastInsertId())
    assert(db:query("INSERT INTO t(v) VALUES (?), (?)", 11, 12))
    assert.equal(3, db:last_insert_id())
    assert(db:query("UPDATE t SET v = v + 1"))
    assert.equal(3, db:changes())
    db:close()
  end)
end)

describe("db:transaction", function()
  local db
  local function count()
    return db:query("SELECT count(*) AS n FROM t")[1].n
  end
  local function values()
    local out = {}
    for i, r in ipairs(db:query("SELECT v FROM t ORDER BY v")) do out[i] = r.v end
    return out
  end
  before_each(function()
    db = H.open()
    assert(db:exec("CREATE TABLE t(v INTEGER UNIQUE)"))
  end)
  after_each(function() db:close() end)

  it("commits when fn returns and passes the connection to fn", function()
    local seen
    local r = db:transaction(function(tdb)
      seen = tdb
      assert(tdb:query("INSERT INTO t VALUES (1)"))
    end)
    assert.is_true(r)
    assert.equal(db, seen)
    assert.equal(1, count())
  end)

  it("gives back what fn returned", function()
    assert.equal(42, db:transaction(function() return 42 end))
    local a, b = db:transaction(function() return "x", "y" end)
    assert.equal("x", a)
    assert.equal("y", b)
  end)

  it("rolls back and re-raises when fn raises", function()
    local ok, err = pcall(db.transaction, db, function()
      assert(db:query("INSERT INTO t VALUES (1)"))
      error("boom")
    end)
    assert.is_false(ok)
    assert.matches("boom", tostring(err))
    assert.equal(0, count())
  end)

  it("re-raises the very error value (tables included)", function()
    local e = { reason = "custom" }
    local ok, err = pcall(db.transaction, db, function()
      assert(db:query("INSERT INTO t VALUES (1)"))
      error(e)
    end)
    assert.is_false(ok)
    assert.equal(e, err)
    assert.equal(0, count())
  end)

  it("nests as savepoints: an inner failure undoes only the inner part", function()
    db:transaction(function()
      assert(db:query("INSERT INTO t VALUES (1)"))
      local ok = pcall(db.transaction, db, function()
        assert(db:query("INSERT INTO t VALUES (2)"))
        error("inner")
      end)
      assert.is_false(ok)
      assert(db:query("INSERT INTO t VALUES (3)"))
    end)
    assert.same({ 1, 3 }, values())
  end)

  it("an outer failure undoes a committed inner savepoint", function()
    pcall(db.transaction, db, function()
      db:transaction(function() assert(db:query("INSERT INTO t VALUES (2)")) end)
      error("outer")
    end)
    assert.equal(0, count())
  end)

  it("supports three levels of nesting", function()
    local r = db:transaction(function()
      assert(db:query("INSERT INTO t VALUES (1)"))
      return db:transaction(function()
        assert(db:query("INSERT INTO t VALUES (2)"))
        pcall(db.transaction, db, function()
          assert(db:query("INSERT INTO t VALUES (3)"))
          error("level 3")
        end)
        return db:transaction(function()
          assert(db:query("INSERT INTO t VALUES (4)"))
          return "deep"
        end)
      end)
    end)
    assert.equal("deep", r)
    assert.same({ 1, 2, 4 }, values())
  end)

  it("accepts opts.mode deferred and exclusive, and raises on another mode", function()
    assert.is_true(db:transaction({ mode = "deferred" }, function() assert(db:query("INSERT INTO t VALUES (1)")) end))
    assert.is_true(db:transaction({ mode = "exclusive" }, function() assert(db:query("INSERT INTO t VALUES (2)")) end))
    assert.equal(2, count())
    H.raises(function() db:transaction({ mode = "sometimes" }, function() end) end)
  end)

  it("raises when fn is not a function", function()
    H.raises(function() db:transaction(42) end)
    H.raises(function() db:transaction() end)
  end)

  it("leaves the connection usable after a rollback", function()
    pcall(db.transaction, db, function() error("x") end)
    assert.is_true(db:transaction(function() assert(db:query("INSERT INTO t VALUES (9)")) end))
    assert.same({ 9 }, values())
  end)

  it("rolls back model writes too", function()
    local m = H.blog(db)
    pcall(db.transaction, db, function()
      assert(m.Post:create { text = "a" })
      assert(m.Genre:create { name = "g" })
      error("undo")
    end)
    assert.equal(0, m.Post:count())
    assert.equal(0, m.Genre:count())
  end)

  it("returns nil, message, code when COMMIT fails, and rolls back", function()
    assert(db:exec([[
      CREATE TABLE p(id INTEGER PRIMARY KEY);
      CREATE TABLE c(p_id INTEGER REFERENCES p(id) DEFERRABLE INITIALLY DEFERRED);
    ]]))
    local ok, msg, code = db:transaction(function()
      assert(db:query("INSERT INTO c(p_id) VALUES (99)"))   -- violation found at COMMIT
      assert(db:query("INSERT INTO t VALUES (5)"))
    end)
    assert.is_nil(ok)
    assert.is_string(msg)
    assert.is_number(code)
    assert.equal(19, code % 256)
    assert.equal(0, db:query("SELECT count(*) AS n FROM c")[1].n)
    assert.equal(0, count())
    -- and no transaction is left open
    assert.is_true(db:transaction(function() assert(db:query("INSERT INTO t VALUES (6)")) end))
    assert.same({ 6 }, values())
  end)
end)

describe("db:transaction when SQLite rolls back or coroutines share the connection", function()
  local db, m
  before_each(function()
    db = H.open()
    m = H.blog(db)
  end)
  after_each(function() db:close() end)

  local function posts() return db:query("SELECT count(*) AS n FROM post")[1].n end

  sqlite_it("after SQLite's own rollback (a full table), nothing more commits and the call fails", function()
    -- AUTOINCREMENT exhausted: the next genre is SQLITE_FULL, which rolls back the transaction
    assert(m.Genre:create { genre_id = "9223372036854775807", name = "last" })   -- exact on 5.1 too
    local before = posts()
    local ok, msg, code = db:transaction(function()
      assert(m.Post:create { text = "a" })
      local g, gmsg, gcode = m.Genre:create { name = "one too many" }
      assert.is_nil(g)
      assert.equal(13, gcode % 256, gmsg)
      local p, pmsg, pcode = m.Post:create { text = "b" }   -- must not autocommit
      assert.is_nil(p)
      assert.equal(4, pcode, pmsg)
      return "done"
    end)
    assert.is_nil(ok)
    assert.is_string(msg)
    assert.equal(4, code)
    assert.equal(before, posts())
    assert(m.Post:create { text = "after" })   -- the connection works again
    assert.equal(before + 1, posts())
  end)

  it("refuses another coroutine's statements while the owner has yielded", function()
    local before = posts()
    local owner = coroutine.create(function()
      return db:transaction(function()
        assert(m.Post:create { text = "from the owner" })
        coroutine.yield("inside")
        error("roll back")
      end)
    end)
    assert.equal("inside", select(2, coroutine.resume(owner)))
    -- another coroutine (here the main one) meanwhile
    local p, msg, code = m.Post:create { text = "would vanish with the rollback" }
    assert.is_nil(p)
    assert.equal(5, code)
    assert.matches("yielded", msg)
    local ok2, _, code2 = db:transaction(function() return true end)
    assert.is_nil(ok2)
    assert.equal(5, code2)
    local resumed, err = coroutine.resume(owner)
    assert.is_false(resumed)
    assert.matches("roll back", err)
    assert.equal(before, posts())
    assert(m.Post:create { text = "now" })     -- free again
  end)

  it("lets a nested transaction's function yield too, on every runtime", function()
    local before = posts()
    local co = coroutine.create(function()
      return db:transaction(function()
        assert(m.Post:create { text = "outer" })
        return db:transaction(function()
          assert(m.Post:create { text = "inner" })
          coroutine.yield("inner yielded")
          return "done"
        end)
      end)
    end)
    assert.same({ true, "inner yielded" }, { coroutine.resume(co) })
    local p, _, code = m.Post:create { text = "meanwhile" }
    assert.is_nil(p)
    assert.equal(5, code)
    assert.same({ true, "done" }, { coroutine.resume(co) })
    assert.equal(before + 2, posts())
  end)

  it("lets a coroutine the transaction's function resumes use it", function()
    local before = posts()
    assert(db:transaction(function()
      local co = coroutine.wrap(function() return m.Post:create { text = "child" } end)
      assert(co())
      return true
    end))
    assert.equal(before + 1, posts())
  end)
end)

sqlite_describe("junction.open's temp_store", function()
  it("is memory by default and can be chosen", function()
    local db = H.open()
    assert.equal(2, db:query("PRAGMA temp_store")[1].temp_store)
    db:close()
    db = assert(junction.open(":memory:", { temp_store = "file" }))
    assert.equal(1, db:query("PRAGMA temp_store")[1].temp_store)
    db:close()
    H.raises(junction.open, ":memory:", { temp_store = "disk" })
  end)
end)

describe("db:close", function()
  it("returns true, and a second call does nothing", function()
    local db = H.open()
    assert.is_true(db:close())
    assert.has_no.errors(function() db:close() end)
  end)

  it("makes any other use raise 'attempt to use a closed connection'", function()
    local db = H.open()
    local m = H.blog(db)
    local post = assert(m.Post:create { text = "x" })
    db:close()
    local uses = {
      function() db:query("SELECT 1") end,
      function() db:exec("SELECT 1") end,
      function() db:define("X", { fields = { a = { type = H.T.TEXT } } }) end,
      function() db:sync() end,
      function() db:transaction(function() end) end,
      function() m.Post:findAll() end,
      function() m.Post:create { text = "y" } end,
      function() post:save() end,
      function() post:getGenres() end,
    }
    for i, use in ipairs(uses) do
      local ok, err = pcall(use)
      assert.is_false(ok, "use #" .. i .. " did not raise")
      assert.matches("attempt to use a closed connection", tostring(err), 1, true)
    end
  end)

  sqlite_it("commits nothing half-open: closing after writes keeps them in a file db", function()
    local path = H.tmpname()
    local db = assert(junction.open(path))
    local m = H.blog(db)
    assert(m.Post:create { text = "persisted" })
    assert(m.Genre:create { name = "rock" })
    assert(m.Post:findByPk(1):setGenres { 1 })
    assert.is_true(db:close())

    local db2 = assert(junction.open(path))
    local rows = assert(db2:query("SELECT text FROM post"))
    assert.same({ { text = "persisted" } }, rows)
    local m2 = H.blog(db2)
    local post = assert(m2.Post:findByPk(1))
    assert.equal("persisted", post.text)
    assert.same({ 1 }, H.ids(post:getGenres(), "genre_id"))
    db2:close()
    H.rmdb(path)
  end)
end)

describe("tostring(db)", function()
  sqlite_it("names the path (:memory:), the state and the number of models", function()
    local db = H.open()
    assert.equal("junction.Connection: :memory: (open, 0 models)", tostring(db))
    H.define_blog(db)
    assert.equal("junction.Connection: :memory: (open, 3 models)", tostring(db))
    db:close()
    local ok, s = pcall(tostring, db)
    if ok then assert.is_nil(s:find("(open", 1, true)) end
  end)

  sqlite_it("shows a file path", function()
    local path = H.tmpname()
    local db = assert(junction.open(path))
    assert.matches(path, tostring(db), 1, true)
    db:close()
    H.rmdb(path)
  end)
end)

describe("db:model", function()
  it("finds a model by name, or nil", function()
    local db = H.open()
    local m = H.blog(db)
    assert.equal(m.Post, db:model("Post"))
    assert.equal(m.TagPostGenre, db:model("TagPostGenre"))
    assert.is_nil(db:model("Nope"))
    db:close()
  end)
end)

sqlite_describe("junction.open checks its options first and creates no SQLite file", function()
  local function exists(path)
    local f = io.open(path, "rb")
    if f then f:close() return true end
    return false
  end

  it("raises for a bad option value and creates no file", function()
    local bad = {
      { journal_mode = "bogus" },
      { foreign_keys = true, journal_mode = "bogus" },
      { synchronous = "sometimes" },
      { temp_store = "disk" },
      { busy_timeout = 2 ^ 31 },
      { timeout = -1 },
      { foreign_keys = "yes" },
      { log = 42 },
    }
    for i, opts in ipairs(bad) do
      local path = H.tmpname()
      local ok = pcall(junction.open, path, opts)
      assert.is_false(ok, "options #" .. i .. " were accepted")
      assert.is_false(exists(path), "options #" .. i .. " created " .. path)
      H.rmdb(path)
    end
  end)

  it("reads the options table without its metamethods", function()
    local called = false
    local opts = setmetatable({}, { __index = function(_, k)
      called = true
      if k == "journal_mode" then return "off" end
      error("__index ran for " .. tostring(k))
    end })
    local db = assert(junction.open(":memory:", opts))
    assert.is_false(called)
    assert.equal(5000, pragma(db, "busy_timeout"))
    assert.is_true(db:close())
  end)

  sqlite_it("refuses a path with a NUL byte instead of opening a shorter one", function()
    local path = H.tmpname()
    H.mentions(H.raises(junction.open, path .. "\0.bak"), "junction.open", "NUL")
    assert.is_false(exists(path))
  end)
end)

describe("junction.open's option ranges", function()
  it("refuses a busy_timeout or timeout that is not a whole number of ms in the C int range", function()
    for _, name in ipairs { "busy_timeout", "timeout" } do
      for _, v in ipairs { 2 ^ 31, 1e100, math.huge, -1, 1.5, 0 / 0, "100" } do
        local msg = H.raises(junction.open, ":memory:", { [name] = v })
        H.mentions(msg, "junction.open", "'" .. name .. "'")
      end
    end
    H.mentions(H.raises(junction.open, ":memory:", { busy_timeout = 2 ^ 31 }), "2147483647")
  end)

  sqlite_it("accepts busy_timeout up to the largest C int, and 0 for no wait", function()
    local db = H.open { busy_timeout = 2147483647 }
    assert.equal(2147483647, pragma(db, "busy_timeout"))
    db:close()
    db = H.open { busy_timeout = 0 }
    assert.equal(0, pragma(db, "busy_timeout"))
    db:close()
  end)

  sqlite_it("refuses journal_mode off and memory, which a crash would turn into a corrupt file", function()
    for _, mode in ipairs { "off", "memory", "OFF" } do
      local msg = H.raises(junction.open, ":memory:", { journal_mode = mode })
      H.mentions(msg, "junction.open", "journal_mode", "corrupt", "wal")
    end
    for _, mode in ipairs { "delete", "truncate", "persist", "wal" } do
      local path = H.tmpname()
      local db = assert(junction.open(path, { journal_mode = mode }))
      assert.equal(mode, pragma(db, "journal_mode"))
      db:close()
      H.rmdb(path)
    end
  end)

  sqlite_it("wants strings for the pragma options and a boolean for foreign_keys", function()
    H.mentions(H.raises(junction.open, ":memory:", { synchronous = 1 }), "synchronous", "string expected")
    H.mentions(H.raises(junction.open, ":memory:", { journal_mode = true }), "journal_mode", "string expected")
    H.mentions(H.raises(junction.open, ":memory:", { foreign_keys = 0 }), "foreign_keys", "boolean expected")
    local db = H.open { synchronous = "FULL" }
    assert.equal(2, pragma(db, "synchronous"))
    db:close()
  end)
end)

describe("a column the table lacks", function()
  it("is an error naming it, never a string of its own name", function()
    local db = H.open()
    assert(db:exec("CREATE TABLE note(id " .. H.sql.pk .. ", body TEXT)"))
    assert(db:exec("INSERT INTO note(body) VALUES ('a'), ('b')"))
    local Note = db:define("Note", { tableName = "note", timestamps = false, fields = {
      id = { type = H.T.INTEGER, primaryKey = true, autoIncrement = true },
      body = { type = H.T.TEXT },
      title = { type = H.T.TEXT },          -- added to the model, not to the table
    } })
    local rows, msg, code = Note:findAll()
    assert.is_nil(rows)
    assert.matches("title", msg)
    assert.equal(1, code)
    rows, msg = Note:findAll { where = { title = "title" } }
    assert.is_nil(rows)
    assert.matches("title", msg)
    rows, msg = db:query('SELECT "nope" AS x FROM note')
    assert.is_nil(rows)
    assert.matches("nope", msg)
    db:close()
  end)

  it("in DDL too: a double-quoted word in a CHECK is a name, not a string", function()
    local db = H.open()
    local ok, msg = db:exec('CREATE TABLE t(a TEXT, b TEXT CHECK (b <> "zzz"))')
    if ok then   -- SQLite accepts the DDL and refuses the write
      ok, msg = db:exec("INSERT INTO t VALUES ('x', 'y')")
    end
    assert.is_nil(ok)
    assert.matches("zzz", msg)
    db:close()
  end)
end)

describe("junction.open's timeout", function()
  local runaway = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) AS n FROM c"

  it("interrupts a runaway statement with nil, message, 9", function()
    local db = H.open { timeout = 50 }
    local t0 = os.time()
    local rows, msg, code = db:query(runaway)
    assert.is_nil(rows)
    assert.equal(9, code)
    H.mentions(msg, "interrupted", "50 ms")
    assert.is_true(os.time() - t0 < 5)
    -- the connection is fine afterwards, and short statements run
    assert.equal(3, db:query("SELECT 1 + 2 AS s")[1].s)
    local ok, emsg, ecode = db:exec("CREATE TABLE t AS " .. runaway)
    assert.is_nil(ok)
    assert.equal(9, ecode, emsg)
    db:close()
  end)

  sqlite_it("interrupts a model read too (a slow SQLite trigger)", function()
    local db = H.open { timeout = 50 }
    local m = H.blog(db)
    assert(db:exec("CREATE TRIGGER slow BEFORE INSERT ON post BEGIN SELECT count(*) FROM (" ..
      "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT x FROM c); END"))
    local p, msg, code = m.Post:create { text = "never" }
    assert.is_nil(p)
    assert.equal(9, code, msg)
    assert.equal(0, m.Post:count())
    db:close()
  end)

  it("inside db:transaction, an interrupted read fails only itself", function()
    local db = H.open { timeout = 50 }
    assert(db:exec("CREATE TABLE t(v INTEGER)"))
    local r = db:transaction(function()
      assert(db:query("INSERT INTO t VALUES (1)"))
      local rows, _, code = db:query(runaway)
      assert.is_nil(rows)
      assert.equal(9, code)
      assert(db:query("INSERT INTO t VALUES (2)"))
      return "kept"
    end)
    assert.equal("kept", r)
    assert.equal(2, db:query("SELECT count(*) AS n FROM t")[1].n)
    db:close()
  end)

  -- SQLite only: SQLite's interrupt rolls the whole transaction back; on PostgreSQL the
  -- statement ran in a savepoint of its own (the next spec)
  sqlite_it("inside db:transaction, an interrupted write rolls the transaction back and it fails", function()
    local db = H.open { timeout = 50 }
    assert(db:exec("CREATE TABLE t(v INTEGER)"))
    local ok, msg, code = db:transaction(function()
      assert(db:query("INSERT INTO t VALUES (1)"))
      local rows, _, wcode = db:query("INSERT INTO t SELECT x FROM " ..
        "(WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT x FROM c)")
      assert.is_nil(rows)
      assert.equal(9, wcode)
      local again, _, acode = db:query("INSERT INTO t VALUES (2)")   -- must not autocommit
      assert.is_nil(again)
      assert.equal(4, acode)
      return "done"
    end)
    assert.is_nil(ok)
    assert.is_string(msg)
    assert.equal(4, code)
    assert.equal(0, db:query("SELECT count(*) AS n FROM t")[1].n)
    assert.is_true(db:transaction(function() assert(db:query("INSERT INTO t VALUES (3)")) end))
    db:close()
  end)

  pg_it("inside db:transaction, an interrupted write fails only itself on PostgreSQL", function()
    local db = H.open { timeout = 50 }
    assert(db:exec("CREATE TABLE t(v INTEGER)"))
    local r = db:transaction(function()
      assert(db:query("INSERT INTO t VALUES (1)"))
      local rows, msg, wcode, details = db:query("INSERT INTO t SELECT x FROM " ..
        "(WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT x FROM c) AS s")
      assert.is_nil(rows)
      assert.equal(9, wcode)
      H.mentions(msg, "interrupted", "50 ms")
      assert.equal("57014", details.sqlstate)
      assert(db:query("INSERT INTO t VALUES (2)"))
      return "kept"
    end)
    assert.equal("kept", r)
    assert.same({ { v = 1 }, { v = 2 } }, db:query("SELECT v FROM t ORDER BY v"))
    db:close()
  end)

  sqlite_it("counts from each statement's start, not from the idle time (SQLite re-reading its schema file)", function()
    -- 250 ms: reading the schema again takes well under that even under valgrind, and the
    -- connection stays idle longer than that between its statements
    local path = H.tmpname()
    local db = assert(junction.open(path, { timeout = 250 }))
    local ddl = {}
    for i = 1, 400 do ddl[i] = "CREATE TABLE a" .. i .. "(x, y, z);" end   -- a long schema to read
    assert(db:exec(table.concat(ddl)))
    H.sleep(0.3)
    local other = assert(junction.open(path))
    assert(other:exec("CREATE TABLE b(y)"))     -- db reads the schema again on its next statement
    other:close()
    H.sleep(0.3)
    assert.same({}, assert(db:query("SELECT * FROM b")))
    assert.same({}, assert(db:query("SELECT * FROM a400")))
    db:close()
    H.rmdb(path)
  end)

  it("db:setTimeout changes it and returns the one it replaces; 0 removes it", function()
    local db = H.open()
    assert.equal(0, db:setTimeout(30))
    local rows, _, code = db:query(runaway)
    assert.is_nil(rows)
    assert.equal(9, code)
    assert.equal(30, db:set_timeout(0))
    assert.equal(0, db:setTimeout(40))
    H.mentions(H.raises(db.setTimeout, db, -1), "db:setTimeout")
    H.mentions(H.raises(db.setTimeout, db, 2 ^ 31), "db:setTimeout")
    H.mentions(H.raises(db.setTimeout, db), "db:setTimeout")
    db:close()
    H.mentions(H.raises(db.setTimeout, db, 10), "db:setTimeout", "closed connection")
  end)
end)

describe("closing the connection while a call runs", function()
  local db, m
  before_each(function()
    db = nil
  end)
  after_each(function() if db then db:close() end end)

  local function with_log(fn)
    local armed = false
    db = H.open { log = function() if armed then armed = false; fn() end end }
    m = H.blog(db)
    H.genres(m.Genre, { "a", "b", "c" })
    return function() armed = true end
  end

  it("db:close from the log function raises misuse and the connection stays open", function()
    local arm = with_log(function() db:close() end)
    arm()
    H.mentions(H.raises(m.Post.findAll, m.Post), "db:close", "in use")
    assert.equal(3, m.Genre:count())
    arm()
    H.mentions(H.raises(m.Post.create, m.Post, { text = "p" }), "db:close", "in use")
    assert.equal(0, m.Post:count())
    local post = assert(m.Post:create { text = "p" })
    arm()
    H.raises(post.setGenres, post, { 1, 2 })
    assert.equal(0, #assert(post:getGenres()))
    assert(post:setGenres { 1, 2 })
    assert.equal(2, #assert(post:getGenres()))
  end)

  it("a close the log function catches leaves the call to finish", function()
    local caught
    local arm = with_log(function() caught = { pcall(db.close, db) } end)
    arm()
    assert.equal(3, #assert(m.Genre:findAll()))
    assert.is_false(caught[1])
    assert.is_true(db:close())
    db = nil
  end)

  it("__gc called by hand from the log function does not close it", function()
    local arm = with_log(function() getmetatable(db).__gc(db) end)
    arm()
    assert.equal(3, #assert(m.Genre:findAll()))
    assert.matches("(open,", tostring(db), 1, true)
    assert.equal(3, m.Genre:count())
  end)

  it("__close called from a defaultValue function raises misuse", function()
    if not getmetatable(H.open()).__close then return end   -- Lua 5.4 only
    db = H.open()
    local W = db:define("W", { timestamps = false, fields = {
      v = { type = H.T.TEXT, defaultValue = function()
        getmetatable(db).__close(db)
        return "d"
      end } } })
    assert(db:sync())
    H.mentions(H.raises(W.create, W, {}), "__close", "in use")
    assert.equal(0, W:count())
    assert(W:create { v = "given" })
  end)

  it("db:close from a defaultValue function raises misuse", function()
    db = H.open()
    local W = db:define("W", { timestamps = false, fields = {
      v = { type = H.T.TEXT, defaultValue = function() db:close() return "d" end } } })
    assert(db:sync())
    H.mentions(H.raises(W.bulkCreate, W, { {}, {} }), "db:close", "in use")
    assert.equal(0, W:count())
  end)
end)

describe("the connection's metamethods", function()
  it("check their argument", function()
    local db = H.open()
    local mt = getmetatable(db)
    local Post = H.blog(db).Post
    for _, name in ipairs { "__tostring", "__gc", "__close" } do
      if mt[name] then
        for _, bad in ipairs { Post, io.stdout, {}, "x" } do
          H.mentions(H.raises(mt[name], bad), name, "connection expected")
        end
      end
    end
    H.mentions(H.raises(db.close, Post), "db:close", "connection expected", "model")
    db:close()
  end)
end)

describe("the closed-connection error", function()
  it("names the model and method, or db and the method", function()
    local db = H.open()
    local m = H.blog(db)
    local post = assert(m.Post:create { text = "x" })
    db:close()
    local cases = {
      { function() m.Post:findAll() end, "Post:findAll" },
      { function() m.Post:count() end, "Post:count" },
      { function() m.Genre:create { name = "g" } end, "Genre:create" },
      { function() post:save() end, "Post:save" },
      { function() post:getGenres() end, "Post:getGenres" },
      { function() post:setGenres { 1 } end, "Post:setGenres" },
      { function() db:query("SELECT 1") end, "db:query" },
      { function() db:exec("SELECT 1") end, "db:exec" },
      { function() db:sync() end, "db:sync" },
      { function() db:transaction(function() end) end, "db:transaction" },
    }
    for _, case in ipairs(cases) do
      H.mentions(H.raises(case[1]), case[2] .. ": attempt to use a closed connection")
    end
  end)
end)

describe("the closed-connection error of association methods written in Lua", function()
  it("names the source model and the method", function()
    local db = H.open()
    local T = H.T
    local A = db:define("Author", { fields = { id = { type = T.INTEGER, primaryKey = true, autoIncrement = true } } })
    local B = db:define("Book", { fields = {
      id = { type = T.INTEGER, primaryKey = true, autoIncrement = true },
      author_id = { type = T.INTEGER } } })
    db:associate {
      Author = { { hasMany = "Book", foreignKey = "author_id" } },
      Book = { { belongsTo = "Author", foreignKey = "author_id" } },
    }
    assert(db:sync())
    local a = assert(A:create {})
    local b = assert(B:create { author_id = a.id })
    db:close()
    H.mentions(H.raises(a.getBooks, a), "Author:getBooks: attempt to use a closed connection")
    H.mentions(H.raises(a.countBooks, a), "Author:countBooks: attempt to use a closed connection")
    H.mentions(H.raises(a.setBooks, a, { 1 }), "Author:setBooks: attempt to use a closed connection")
    H.mentions(H.raises(b.getAuthor, b), "Book:getAuthor: attempt to use a closed connection")
    H.mentions(H.raises(b.setAuthor, b, 1), "Book:setAuthor: attempt to use a closed connection")
  end)
end)

describe("the raw way out refuses what it would drop", function()
  it("db:query raises on a second statement instead of never running it", function()
    local db = H.open()
    assert(db:exec("CREATE TABLE t(id " .. H.sql.pk .. ", v TEXT); INSERT INTO t(v) VALUES ('a'), ('b')"))
    H.mentions(H.raises(db.query, db, "UPDATE t SET v = 'x' WHERE id = 1; UPDATE t SET v = 'y' WHERE id = 2"),
               "db:query", "more than one statement")
    assert.same({ { v = "a" }, { v = "b" } }, db:query("SELECT v FROM t ORDER BY id"))
    assert.same({ { x = 1 } }, db:query("SELECT 1 AS x;  -- a comment after it is fine"))
    db:close()
  end)

  it("db:exec raises when given values instead of ignoring them", function()
    local db = H.open()
    assert(db:exec("CREATE TABLE t(id " .. H.sql.pk .. ", v TEXT); INSERT INTO t(v) VALUES ('a')"))
    H.mentions(H.raises(db.exec, db, "UPDATE t SET v = ? WHERE id = 1", "z"), "db:exec", "takes no values")
    assert.same({ { v = "a" } }, db:query("SELECT v FROM t"))
    db:close()
  end)
end)
