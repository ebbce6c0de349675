-- Transactions end exactly once, on every path: an abandoned one is rolled
-- back and never joined, nil, err rolls back, junction's own COMMIT and
-- ROLLBACK do not depend on user callbacks, options are checked.
local H = require "spec.helper"
local junction = H.junction

local is_puc51 = _VERSION == "Lua 5.1" and not H.is_jit

local function gc()
  collectgarbage()
  collectgarbage()
end

-- A database (a file, or a PostgreSQL schema) with the table t(v), opened
-- by two connections: the second one sees only what the first committed.
local function two_connections()
  local path = H.place()
  local opts = not H.is_pg and { busy_timeout = 0 } or nil
  local a = H.open_at(path, opts)
  assert(a:exec("CREATE TABLE t(v INTEGER UNIQUE)"))
  local b = H.open_at(path, opts)
  return a, b, path
end

local function values(db)
  local out = {}
  for i, r in ipairs(assert(db:query("SELECT v FROM t ORDER BY v"))) do out[i] = r.v end
  return out
end

local function no_transaction_open(db)
  assert.is_true(db:exec("BEGIN; COMMIT;"), "no transaction left open")
end

describe("an abandoned transaction", function()
  local a, b, path
  before_each(function() a, b, path = two_connections() end)
  after_each(function()
    a:close()
    b:close()
    H.drop_place(path)
  end)

  -- A coroutine that wrote inside db:transaction and yielded there.
  local function suspended_writer(db, v)
    local co = coroutine.create(function()
      return db:transaction(function()
        assert(db:query("INSERT INTO t VALUES (?)", v))
        coroutine.yield("inside")
        return "finished"
      end)
    end)
    assert.same({ true, "inside" }, { coroutine.resume(co) })
    return co
  end

  it("is rolled back when its dropped coroutine is collected, and later writes are durable", function()
    suspended_writer(a, 1)
    gc()
    assert(a:query("INSERT INTO t VALUES (2)"))      -- acknowledged: committed
    assert.same({ 2 }, values(a))
    assert.same({ 2 }, values(b), "another connection sees the write")
    no_transaction_open(a)
  end)

  it("is found by the next statement even before any collection", function()
    suspended_writer(a, 1)                           -- dropped, not collected yet
    assert(a:query("INSERT INTO t VALUES (2)"))
    assert.same({ 2 }, values(b))
  end)

  it("is rolled back when its coroutine is closed (coroutine.close)", function()
    if not coroutine.close then return end           -- Lua 5.4
    local co = suspended_writer(a, 1)
    assert.is_true(coroutine.close(co))
    assert(a:query("INSERT INTO t VALUES (2)"))
    assert.same({ 2 }, values(b))
    local ok, _, code = a:transaction(function() return a:query("INSERT INTO t VALUES (3)") end)
    assert.truthy(ok)
    assert.is_nil(code)
    assert.same({ 2, 3 }, values(b))
  end)

  it("is rolled back when its owner died with the transaction open", function()
    -- A hook raises on the call that would end the transaction: the
    -- coroutine dies with its db:transaction call gone and nothing ended.
    local tx = a._tx
    local calls = 0
    local co = coroutine.create(function()
      return a:transaction(function()
        assert(a:query("INSERT INTO t VALUES (1)"))
        return "done"
      end)
    end)
    debug.sethook(co, function()
      if debug.getinfo(2, "f").func == tx then
        calls = calls + 1
        if calls == 2 then error("killed on the way out") end
      end
    end, "c")
    local ok, err = coroutine.resume(co)
    assert.is_false(ok)
    assert.matches("killed on the way out", err)
    assert.equal("dead", coroutine.status(co))
    assert(a:query("INSERT INTO t VALUES (2)"))
    assert.same({ 2 }, values(b))
    no_transaction_open(a)
  end)

  it("refuses other coroutines while its live owner has yielded, then lets the owner finish", function()
    local co = suspended_writer(a, 1)
    local r, msg, code = a:query("INSERT INTO t VALUES (2)")
    assert.is_nil(r)
    assert.equal(5, code)
    assert.matches("yielded", msg)
    assert.same({ true, "finished" }, { coroutine.resume(co) })
    assert.same({ 1 }, values(b))
  end)
end)

describe("a transaction function that returns nil, err", function()
  local db
  before_each(function()
    db = H.open()
    assert(db:exec("CREATE TABLE t(v INTEGER UNIQUE)"))
  end)
  after_each(function() db:close() end)

  it("rolls back and comes out as nil, err, code", function()
    local ok, msg, code = db:transaction(function()
      assert(db:query("INSERT INTO t VALUES (1)"))
      return nil, "not today", 42
    end)
    assert.is_nil(ok)
    assert.equal("not today", msg)
    assert.equal(42, code)
    assert.same({}, values(db))
    no_transaction_open(db)
  end)

  it("rolls back a failed association call passed on Lua-style", function()
    local m = H.blog(db)
    H.genres(m.Genre, { "a", "b" })
    local post = assert(m.Post:create { text = "p" })
    assert(post:setGenres { 2 })
    local ok, msg, code = db:transaction(function()
      assert(m.Post:create { text = "second" })
      local done, err, ecode = post:setGenres { 1, 99 }
      if not done then return nil, err, ecode end
      return true
    end)
    assert.is_nil(ok)
    assert.is_string(msg)
    assert.is_number(code)
    assert.equal(1, m.Post:count())
    assert.same({ 2 }, H.ids(post:getGenres(), "genre_id"))
  end)

  it("rolls back only its own savepoint when nested", function()
    assert(db:transaction(function()
      assert(db:query("INSERT INTO t VALUES (1)"))
      local ok, msg = db:transaction(function()
        assert(db:query("INSERT INTO t VALUES (2)"))
        return nil, "inner failed"
      end)
      assert.is_nil(ok)
      assert.equal("inner failed", msg)
      return true
    end))
    assert.same({ 1 }, values(db))
  end)

  it("still commits for nil alone, false, err, or nothing", function()
    assert.is_nil(db:transaction(function() assert(db:query("INSERT INTO t VALUES (1)")); return nil end))
    assert.is_false(db:transaction(function() assert(db:query("INSERT INTO t VALUES (2)")); return false, "x" end))
    assert.same({ 1, 2 }, values(db))
  end)
end)

describe("transactions end exactly once", function()
  local a, b, path
  before_each(function() a, b, path = two_connections() end)
  after_each(function()
    a:close()
    b:close()
    H.drop_place(path)
  end)

  it("a nested transaction left suspended in a coroutine the outer one stopped iterating "
     .. "is rolled back, not taken for the outer", function()
    local gen, late, late_msg, late_code
    local r = a:transaction(function()
      assert(a:query("INSERT INTO t VALUES (1)"))
      gen = coroutine.wrap(function()
        return a:transaction(function()
          assert(a:query("INSERT INTO t VALUES (2)"))
          coroutine.yield("first")
          late, late_msg, late_code = a:query("INSERT INTO t VALUES (3)")
          return "inner done"
        end)
      end)
      assert.equal("first", gen())                 -- stops early
      -- while the inner one is suspended, the outer's writes would land in it
      local w, _, code = a:query("INSERT INTO t VALUES (4)")
      assert.is_nil(w)
      assert.equal(5, code)
      return "outer done"
    end)
    assert.equal("outer done", r)
    assert.same({ 1 }, values(b), "the outer committed, the unfinished inner did not")
    no_transaction_open(a)
    -- resumed later, the inner one writes nothing outside any transaction
    local ok, msg, code = gen()
    assert.is_nil(ok)
    assert.is_string(msg)
    assert.equal(4, code)
    assert.is_nil(late)
    assert.equal(4, late_code)
    assert.is_string(late_msg)
    assert.same({ 1 }, values(b))
    assert(a:query("INSERT INTO t VALUES (5)"))    -- and the connection works
    assert.same({ 1, 5 }, values(b))
  end)

  it("a function that yields where its caller cannot yield leaves no transaction open", function()
    -- under a C function (string.gsub's callback) no runtime can yield
    local co = coroutine.create(function()
      return pcall(string.gsub, "x", "x", function()
        return a:transaction(function()
          assert(a:query("INSERT INTO t VALUES (1)"))
          coroutine.yield()
        end)
      end)
    end)
    local ok, pok, perr = coroutine.resume(co)
    assert.is_true(ok)
    assert.is_false(pok)
    assert.matches("yield", tostring(perr))
    assert.same({}, values(b))
    no_transaction_open(a)
  end)

  it("a function that yields under the caller's pcall ends its transaction on every runtime", function()
    local co = coroutine.create(function()
      return pcall(a.transaction, a, function()
        assert(a:query("INSERT INTO t VALUES (1)"))
        coroutine.yield("y")
        return "done"
      end)
    end)
    local res = { coroutine.resume(co) }
    if is_puc51 then
      -- PUC 5.1 cannot yield across pcall: the transaction is rolled back
      assert.same(true, res[1])
      assert.same(false, res[2])
      assert.matches("yield", tostring(res[3]))
      assert.same({}, values(b))
    else
      assert.same({ true, "y" }, res)
      assert.same({ true, true, "done" }, { coroutine.resume(co) })
      assert.same({ 1 }, values(b))
    end
    assert.equal("dead", coroutine.status(co))
    no_transaction_open(a)
  end)

  it("a log function that raises does not stop junction's own COMMIT or ROLLBACK", function()
    local path2 = H.place()
    local armed = false
    local db = H.open_at(path2, { log = function(sql)
      if armed and (sql:find("COMMIT") or sql:find("ROLLBACK") or sql:find("RELEASE")
                    or sql:find("SAVEPOINT") or sql:find("BEGIN")) then
        error("log refuses " .. sql)
      end
    end })
    local m = H.blog(db)
    H.genres(m.Genre, { "a", "b" })
    local post = assert(m.Post:create { text = "p" })
    assert(post:setGenres { 2 })
    armed = true
    -- a failed setGenres inside a transaction is undone whole, and the rest commits
    assert.equal("kept", db:transaction(function()
      assert(m.Post:create { text = "second" })
      local ok = post:setGenres { 1, 99 }
      assert.is_nil(ok)
      return "kept"
    end))
    assert.same({ 2 }, H.ids(post:getGenres(), "genre_id"))
    assert.equal(2, m.Post:count())
    -- a raise inside is rolled back, a nested savepoint too
    assert.is_false(pcall(db.transaction, db, function()
      assert(m.Post:create { text = "third" })
      pcall(db.transaction, db, function() error("inner") end)
      error("outer")
    end))
    assert.equal(2, m.Post:count())
    armed = false
    no_transaction_open(db)
    db:close()
    local other = H.open_at(path2)
    assert.equal(2, other:query("SELECT count(*) AS n FROM post")[1].n)
    other:close()
    H.drop_place(path2)
  end)
end)

describe("db:transaction options", function()
  local db
  before_each(function() db = H.open() end)
  after_each(function() db:close() end)

  it("raise for an unknown key such as isolationLevel", function()
    local ok, err = pcall(db.transaction, db, { isolationLevel = "SERIALIZABLE" }, function() end)
    assert.is_false(ok)
    assert.matches("db:transaction: bad option 'isolationLevel' %(unknown key%)", err)
    ok, err = pcall(db.transaction, db, { [1] = "immediate" }, function() end)
    assert.is_false(ok)
    assert.matches("bad option 'number' %(unknown key%)", err)
  end)

  it("are read without their metamethods", function()
    local opts = setmetatable({}, { __index = function() error("read through __index") end })
    assert.is_true(db:transaction(opts, function() end))
    opts = setmetatable({ mode = "deferred" }, { __pairs = function() error("iterated with __pairs") end })
    assert.is_true(db:transaction(opts, function() end))
  end)
end)

describe("a failure's details", function()
  it("come out of db:transaction through junction.abort and the association methods", function()
    local db = H.open()
    local m = H.blog(db)
    H.genres(m.Genre, { "a" })
    local post = assert(m.Post:create { text = "p" })
    local ok, msg, code, details = db:transaction(function()
      junction.abort("stop", 7, { why = "because" })
    end)
    assert.is_nil(ok)
    assert.equal("stop", msg)
    assert.equal(7, code)
    assert.same({ why = "because" }, details)
    ok, msg, code, details = db:transaction(function()
      local r, m2, c2, d2 = post:setGenres { 1, 99 }
      if not r then return nil, m2, c2, d2 end
    end)
    assert.is_nil(ok)
    assert.equal(787, code)
    assert.same({ 99 }, details.missing)
    assert.truthy(msg:find("99", 1, true))
    db:close()
  end)
end)
