-- The wire transport: junction's C half compiles every statement, Lua moves
-- the bytes (csrc/jn_wire.c, lua/junction/wire.lua, lua/junction/pgwire.lua;
-- docs/POSTGRES.md "The wire transport").  The blog runs through
-- junction.pgwire on the private server of make test-pg; the attacks run
-- through transports written here, with no server.
local H = require "spec.helper"
local junction = H.junction

local pg_it = H.pg_only(it, pending)
local wire_ok, wire_why = true, nil
if H.is_pg then
  local T, why = H.wire_transport()
  if T then T:close() else wire_ok, wire_why = false, why end
end
local wire_it = wire_ok and pg_it or function(name) return pending(name .. " [" .. wire_why .. "]") end

describe("the blog through the wire transport (junction.pgwire)", function()
  wire_it("defines, syncs, writes, links, reads, includes, rolls back and reports a unique violation", function()
    local db, T = H.open_wire()
    local trips = 0
    local run = T.run
    T.run = function(self, ...) trips = trips + 1; return run(self, ...) end
    local m = H.blog(db)
    local Post, Genre = m.Post, m.Genre
    local g = H.genres(Genre, { "rock", "jazz", "pop", "folk" })
    local post = assert(Post:create { text = "over the wire" })
    assert.is_truthy(post.post_id)
    assert.truthy(post:setGenres { g[1], g[2] })
    assert.same({ "jazz", "rock" }, H.ids(post:getGenres(), "name"))
    assert.truthy(post:addGenres { g[3] })
    assert.equal(3, post:countGenres())
    assert.is_true(post:hasGenres { g[1], g[3] })
    assert.truthy(post:removeGenres { g[1] })
    assert.same({ "jazz", "pop" }, H.ids(post:getGenres(), "name"))
    local posts = assert(Post:findAll { include = { "Genres" } })
    assert.equal(1, #posts)
    assert.same({ "jazz", "pop" }, H.ids(posts[1].Genres, "name"))
    -- a transaction that rolls back leaves nothing, on the server or the instance
    local ok, msg = db:transaction(function()
      assert(Post:create { text = "gone" })
      post.text = "changed"
      assert(post:save())
      junction.abort("no")
    end)
    assert.is_nil(ok)
    assert.equal("no", msg)
    assert.equal(1, Post:count())
    assert.equal("over the wire", Post:findByPk(post.post_id).text)
    -- a unique violation: code 2067 with the SQLSTATE
    local dup, dmsg, code, details = Genre:create { name = "rock" }
    assert.is_nil(dup)
    assert.matches("duplicate key", dmsg)
    assert.equal(2067, code)
    assert.equal("23505", details.sqlstate)
    -- and the connection is usable after it, outside and inside a transaction
    assert.equal(4, Genre:count())
    assert.equal("kept", db:transaction(function()
      assert.is_nil((Genre:create { name = "rock" }))
      assert(Genre:create { name = "blues" })
      return "kept"
    end))
    assert.equal(5, Genre:count())
    assert.is_true(trips > 0)
    db:close()
  end)

  wire_it("runs a defaultValue function and the timestamps once per call, whatever the round trips", function()
    local db = H.open_wire()
    local calls = 0
    local Note = db:define("Note", { fields = {
      body = { type = H.T.TEXT, defaultValue = function() calls = calls + 1; return "n" .. calls end },
    } })
    assert(db:sync())
    local n = assert(db:transaction(function() return Note:create {} end))
    assert.equal(1, calls)
    assert.equal("n1", n.body)
    assert.equal(n.createdAt, n.updatedAt)
    assert.equal("n1", Note:findByPk(n.id).body)
    db:close()
  end)

  wire_it("runs a hook and a validator once per call", function()
    local db = H.open_wire()
    local hooks, checks = 0, 0
    local Item = db:define("Item", {
      fields = { name = { type = H.T.TEXT, validate = { custom = function() checks = checks + 1; return true end } } },
      hooks = { beforeCreate = function() hooks = hooks + 1 end },
    })
    assert(db:sync())
    assert(db:transaction(function() return Item:create { name = "x" } end))
    assert.equal(1, hooks)
    assert.equal(1, checks)
    db:close()
  end)

  wire_it("rolls back on the server a transaction whose coroutine was dropped, before the next statement", function()
    local db = H.open_wire()
    local m = H.blog(db)
    local p = assert(m.Post:create { text = "a" })
    local co = coroutine.create(function()
      db:transaction(function()
        assert(p:update { text = "a2" })
        coroutine.yield()
      end)
    end)
    assert(coroutine.resume(co))
    co = nil   -- luacheck: ignore 311
    H.gc()
    -- a look at the instance's state that no call drives sends nothing (it cannot) ...
    assert.is_boolean(require("junction.core")._destroyed(p))
    -- ... and the next statement runs after the ROLLBACK, outside the dropped transaction
    assert.equal("a", m.Post:findByPk(p.post_id).text)
    assert(m.Post:create { text = "after" })
    -- the session is in no transaction that wrote (the dropped one had: its UPDATE)
    local rows = assert(db:query("SELECT txid_current_if_assigned()::text AS x"))
    assert.is_nil(rows[1].x)
    db:close()
  end)

  wire_it("db:query, db:exec and db:transaction's savepoints", function()
    local db = H.open_wire()
    assert(db:exec("CREATE TABLE t (a bigint, b text, c bytea); CREATE INDEX t_a ON t (a)"))
    assert(db:query("INSERT INTO t VALUES (?, ?, ?)", 1, "x", "\0\1\255"))
    local rows = assert(db:query("SELECT a, b, c FROM t WHERE a = ?", 1))
    assert.equal(1, #rows)
    assert.equal("x", rows[1].b)
    assert.equal("\0\1\255", rows[1].c)
    assert.equal(1, rows[1].a)
    assert(db:transaction(function()
      db:query("INSERT INTO t VALUES (2, 'y', NULL)")
      local ok = db:transaction(function()
        db:query("INSERT INTO t VALUES (3, 'z', NULL)")
        junction.abort("inner")
      end)
      assert.is_nil(ok)
      return true
    end))
    assert.same({ 1, 2 }, H.ids(db:query("SELECT a FROM t"), "a"))
    db:close()
  end)
end)

-- {====== Attacks: transports written here, no server needed

-- A transport answering each statement with fn(sql, params, n).
local function fake(fn)
  local T = { n = 0, seen = {} }
  function T.run(self, sql, params)
    self.n = self.n + 1
    self.seen[self.n] = sql
    return fn(sql, params, self.n)
  end
  return T
end

local ok_reply = { status = "I", columns = { "n" }, types = { 20 }, rows = { { "7" } } }

describe("the wire transport when the transport misbehaves", function()
  it("a transport that raises: the call fails with code 10 and the connection says it is lost", function()
    local db = assert(junction.open { engine = "postgres", transport = fake(function() error("socket gone") end) })
    local ok, msg, code = db:query("SELECT 1 AS n")
    assert.is_nil(ok)
    assert.matches("socket gone", msg)
    assert.equal(10, code)
    local again, _, code2 = db:query("SELECT 1 AS n")
    assert.is_nil(again)
    assert.equal(10, code2)
    db:close()
  end)

  it("a reply that is garbage is refused without a crash", function()
    for _, bad in ipairs { "text", 42, { columns = "x" }, { columns = { 1 } }, { columns = { "a" }, rows = { "r" } },
                           { columns = { "a" }, rows = { { {} } } }, { error = "x" },
                           { rows = { { "1" } } } } do
      local db = assert(junction.open { engine = "postgres", transport = fake(function() return bad end) })
      local ok, msg, code = db:query("SELECT 1 AS n")
      assert.is_nil(ok)
      assert.is_string(msg)
      assert.equal(10, code)
      db:close()
    end
  end)

  it("a re-run that meets another statement than the reply answered fails, reading nothing", function()
    local db = assert(junction.open { engine = "postgres", transport = fake(function() return ok_reply end) })
    local raw
    for i = 1, 10 do
      local name, v = debug.getupvalue(db.query, i)
      if name == "f" then raw = v end
    end
    assert.is_function(raw)
    db:_wire("begin")
    assert.has_error(function() raw(db, "SELECT 1 AS n") end)
    assert.is_table(db:_wire("pending"))
    assert.is_true(db:_wire("answer", ok_reply))
    db:_wire("rewind")
    local ok, msg = raw(db, "SELECT 2 AS n")
    assert.is_nil(ok)
    assert.matches("another statement than the reply answered", msg, 1, true)
    db:_wire("end")
    db:close()
  end)

  it("a transport that yields in a coroutine: the call resumes where it stopped", function()
    local T = { run = function(_, sql)
      local r = coroutine.yield(sql)
      return r
    end }
    local db = assert(junction.open { engine = "postgres", transport = T })
    local co = coroutine.create(function() return db:query("SELECT ? AS n", 7) end)
    local ok, sql = coroutine.resume(co)
    assert.is_true(ok)
    assert.equal("SELECT $1 AS n", sql)
    -- meanwhile, another call on the connection is refused, clearly
    assert.has_error(function() db:query("SELECT 2 AS n") end,
      "junction: the connection is waiting for the server's reply to another call "
      .. "(one call at a time on a connection with a transport)")
    local ok2, rows = coroutine.resume(co, ok_reply)
    assert.is_true(ok2)
    assert.equal(7, rows[1].n)
    db:close()
  end)

  it("an error reply mid-transaction fails the statement and keeps the transaction", function()
    local status = "I"
    local T = fake(function(sql)
      if sql:find("^BEGIN") then status = "T"
      elseif sql:find("^COMMIT") or sql:find("^ROLLBACK$") then status = "I" end
      if sql:find("boom") then return { status = status, error = { sqlstate = "23505", message = "dup" } } end
      return { status = status, columns = { "n" }, types = { 20 }, rows = { { "1" } } }
    end)
    local db = assert(junction.open { engine = "postgres", transport = T })
    local r = db:transaction(function()
      local ok, msg, code, details = db:query("SELECT 'boom' AS n")
      assert.is_nil(ok)
      assert.equal("dup", msg)
      assert.equal(2067, code)
      assert.equal("23505", details.sqlstate)
      return "went on"
    end)
    assert.equal("went on", r)
    local sent = table.concat(T.seen, ";")
    assert.matches("BEGIN;SAVEPOINT jn_st;SELECT 'boom' AS n;ROLLBACK TO SAVEPOINT jn_st;"
      .. "RELEASE SAVEPOINT jn_st;COMMIT", sent, 1, true)
    db:close()
  end)

  it("a transport that fails mid-transaction leaves no transaction open", function()
    local n = 0
    local T = fake(function(sql)
      n = n + 1
      if n == 3 then return nil, "reset by peer" end
      return { status = sql:find("^BEGIN") and "T" or "T", columns = { "n" }, types = { 20 }, rows = { { "1" } } }
    end)
    local db = assert(junction.open { engine = "postgres", transport = T })
    local ok, msg, code = db:transaction(function()
      local r, m, c = db:query("SELECT 1 AS n")
      assert.is_nil(r)
      junction.abort(m, c)
    end)
    assert.is_nil(ok)
    assert.matches("reset by peer", msg)
    assert.equal(10, code)
    -- nothing believes a transaction is open: a new one is refused as lost, not nested
    local again, _, code2 = db:transaction(function() return true end)
    assert.is_nil(again)
    assert.equal(10, code2)
    assert.equal(3, T.n)   -- BEGIN, SAVEPOINT, the SELECT that failed: no ROLLBACK sent after
    db:close()
  end)

  it("a callback that re-enters the connection while its call waits runs inside that call", function()
    local T = fake(function(sql)
      if sql:find("INSERT") then
        return { status = "I", columns = { "id" }, types = { 20 }, rows = { { "5" } }, changes = 1 }
      end
      return ok_reply
    end)
    local db = assert(junction.open { engine = "postgres", transport = T })
    local calls = 0
    local Row = db:define("Row", { fields = { v = { type = H.T.INTEGER, defaultValue = function()
      calls = calls + 1
      return db:query("SELECT 7 AS n")[1].n
    end } } })
    local r = assert(Row:create {})
    assert.equal(7, r.v)
    assert.equal(5, r.id)
    -- called again once per statement it ran itself (its first run stopped
    -- there, and a stopped callback has no result to record); every
    -- statement went to the server once
    assert.equal(2, calls)
    assert.equal(2, T.n)
    db:close()
  end)

  it("refuses a transport without a run method, and conninfo beside a transport", function()
    assert.has_error(function() junction.open { engine = "postgres", transport = {} } end)
    assert.has_error(function() junction.open { engine = "postgres", transport = 5 } end)
    assert.has_error(function()
      junction.open { engine = "postgres", transport = fake(function() end), conninfo = "x" }
    end)
  end)
end)

-- }======
