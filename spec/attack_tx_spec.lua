-- spec/attack_tx_spec.lua: the transaction journal under attack.  An
-- instance written in a transaction the connection rolls back by itself (its
-- coroutine dropped or closed while suspended inside it, the connection
-- closed inside it) gets its state back as after any rollback; a dropped
-- connection is not kept alive by the instances in its journals; the hooks
-- of an instance whose create was rolled back are a create's.
-- (test/reliability/journal.lua searches this class at random.)
local H = require "spec.helper"
local junction = H.junction
local core = require "junction.core"
local T = H.T

-- Run fn(db) inside db:transaction in a coroutine that yields there, and
-- drop the coroutine with the transaction open (collected).
local function abandon(db, fn)
  local co = coroutine.create(function()
    db:transaction(function()
      fn(db)
      coroutine.yield()
    end)
  end)
  assert(coroutine.resume(co))
  assert.equal("suspended", coroutine.status(co))
  co = nil   -- luacheck: ignore 311
  collectgarbage()
  collectgarbage()
end

local function alive(weak)
  if rawget(_G, "jit") then jit.flush() end   -- a trace's constants are roots: drop them
  collectgarbage()
  collectgarbage()
  return next(weak) ~= nil
end

-- Run fn in a coroutine of its own that finishes: nothing of it stays on a
-- stack the collector reads (LuaJIT reads a frame's dead slots, and a trace
-- may keep values of a function it inlined).
local function run_apart(fn)
  if rawget(_G, "jit") then jit.off(fn, true) end
  local co = coroutine.create(fn)
  assert(coroutine.resume(co))
  assert.equal("dead", coroutine.status(co))
end

describe("an instance written in a transaction whose coroutine was dropped", function()
  local db, m
  before_each(function()
    db = H.open()
    m = H.blog(db)
  end)
  after_each(function() db:close() end)

  it("is unsaved again after a create, and its next save inserts it", function()
    local p
    abandon(db, function() p = assert(m.Post:create { text = "lost" }) end)
    assert.equal(0, m.Post:count())       -- the connection rolled it back
    assert.is_nil(p.post_id)
    assert.same({ "text" }, p:changed())
    assert(p:save())
    assert.equal(1, m.Post:count())
    assert.equal("lost", m.Post:findByPk(p.post_id).text)
  end)

  it("gets its state back before its next save decides between INSERT and UPDATE", function()
    local p
    abandon(db, function() p = assert(m.Post:create { text = "lost" }) end)
    -- no statement ran since: the save itself finds the transaction abandoned
    assert(p:save())
    assert.equal(1, m.Post:count())
  end)

  it("is not destroyed after a destroy, and has an update's fields changed again", function()
    local p = assert(m.Post:create { text = "a" })
    local q = assert(m.Post:create { text = "b" })
    abandon(db, function()
      assert(p:update { text = "a2" })
      assert(q:destroy())
    end)
    assert.is_false(core._destroyed(q))
    assert.same({ "text" }, p:changed())
    assert.equal("a", m.Post:findByPk(p.post_id).text)
    assert(q:update { text = "b2" })
    assert(p:save())
    assert.equal("a2", m.Post:findByPk(p.post_id).text)
    assert.equal("b2", m.Post:findByPk(q.post_id).text)
  end)

  if coroutine.close then
    it("is unsaved again when the coroutine was closed rather than dropped", function()
      local p
      local co = coroutine.create(function()
        db:transaction(function()
          p = assert(m.Post:create { text = "closed" })
          coroutine.yield()
        end)
      end)
      assert(coroutine.resume(co))
      assert(coroutine.close(co))
      assert.equal(0, m.Post:count())
      assert.is_nil(p.post_id)
      assert(p:save())
      assert.equal(1, m.Post:count())
    end)
  end

  it("follows the outer rollback when a nested level at the same depth ran after it", function()
    local p = assert(m.Post:create { text = "a" })
    local q = assert(m.Post:create { text = "b" })
    local ok = db:transaction(function()
      abandon(db, function() assert(p:update { text = "lost" }) end)
      assert(db:transaction(function()   -- a new level where the abandoned one was
        assert(q:update { text = "q2" })
        return true
      end))
      junction.abort("no")
    end)
    assert.is_nil(ok)
    assert.same({ "text" }, p:changed())
    assert.same({ "text" }, q:changed())
    assert(p:save())
    assert.equal("lost", m.Post:findByPk(p.post_id).text)
  end)

  it("follows the outer rollback when it is written there after the abandoned level", function()
    local p = assert(m.Post:create { text = "a" })
    db:transaction(function()
      abandon(db, function() assert(m.Post:create { text = "other" }) end)
      assert(p:update { text = "outer" })   -- its note belongs to the outer level
      junction.abort("no")
    end)
    assert.same({ "text" }, p:changed())
    assert.equal("a", m.Post:findByPk(p.post_id).text)
    assert.equal(1, m.Post:count())
    assert(p:save())
    assert.equal("outer", m.Post:findByPk(p.post_id).text)
  end)
end)

describe("a connection with instances in its transaction journals", function()
  local sqlite_it = H.sqlite_only(it, pending)

  sqlite_it("is collected when dropped with an abandoned transaction, releasing its write lock", function()
    local path = H.tmpname()
    local weak = setmetatable({}, { __mode = "k" })
    run_apart(function()
      local db = assert(junction.open(path))
      local m = H.blog(db)
      weak[db] = true
      abandon(db, function() assert(m.Post:create { text = "lost" }) end)
    end)
    assert.is_false(alive(weak))
    local db2 = assert(junction.open(path))
    local m2 = H.blog(db2)
    db2:setTimeout(2000)
    assert(m2.Post:create { text = "other" })   -- "database is locked" while the first one lived
    assert.equal(1, m2.Post:count())
    db2:close()
    H.rmdb(path)
  end)

  it("is collected after db:close() inside db:transaction", function()
    local weak = setmetatable({}, { __mode = "k" })
    run_apart(function()
      local db = H.open()
      local m = H.blog(db)
      weak[db] = true
      assert.has_error(function()
        db:transaction(function()
          assert(m.Post:create { text = "x" })
          db:close()
        end)
      end, "db:transaction: attempt to use a closed connection")
    end)
    assert.is_false(alive(weak))
  end)
end)

describe("a model with hooks, after a create its transaction rolled back", function()
  it("runs the create hooks, not the update hooks, on the next save", function()
    local db = H.open()
    local ran = {}
    local Note = db:define("Note", {
      fields = { id = { type = T.INTEGER, primaryKey = true, autoIncrement = true },
                 body = { type = T.TEXT } },
      hooks = {
        beforeCreate = function() ran[#ran + 1] = "beforeCreate" return true end,
        afterCreate = function() ran[#ran + 1] = "afterCreate" return true end,
        beforeUpdate = function() ran[#ran + 1] = "beforeUpdate" return true end,
        afterUpdate = function() ran[#ran + 1] = "afterUpdate" return true end,
      },
    })
    assert(db:sync())
    local n
    assert.is_nil(db:transaction(function()
      n = assert(Note:create { body = "a" })
      junction.abort("no")
    end))
    ran = {}
    assert(n:save())
    assert.same({ "beforeCreate", "afterCreate" }, ran)
    assert.equal("a", Note:findByPk(n.id).body)
    db:close()
  end)
end)

describe("the instance an upsert returns inside a transaction that rolls back", function()
  local db, m
  before_each(function()
    db = H.open()
    m = H.blog(db)
  end)
  after_each(function() db:close() end)

  it("is unsaved again when the upsert inserted its row", function()
    local g
    db:transaction(function()
      g = assert(m.Genre:upsert { name = "new" })
      junction.abort("no")
    end)
    assert.equal(0, m.Genre:count())
    assert.is_nil(g.genre_id)
    assert.is_false(core._saved(g))
    assert(g:save())
    assert.equal("new", m.Genre:findByPk(g.genre_id).name)
  end)

  it("has the fields it wrote changed again when the upsert updated a row", function()
    local g = assert(m.Genre:create { name = "old" })
    local r
    db:transaction(function()
      r = assert(m.Genre:upsert { genre_id = g.genre_id, name = "upserted" })
      junction.abort("no")
    end)
    assert.equal("old", m.Genre:findByPk(g.genre_id).name)
    assert.equal("upserted", r.name)
    assert.truthy(r:changed("name"))
    assert(r:save())
    assert.equal("upserted", m.Genre:findByPk(g.genre_id).name)
  end)

  it("follows the rollback for each row of bulkCreate with updateOnDuplicate", function()
    local g = assert(m.Genre:create { name = "old" })
    local out
    db:transaction(function()
      out = assert(m.Genre:bulkCreate({ { genre_id = g.genre_id, name = "dup" }, { name = "fresh" } },
                                      { updateOnDuplicate = { "name" } }))
      junction.abort("no")
    end)
    assert.equal(1, m.Genre:count())
    assert.truthy(out[1]:changed("name"))
    assert.is_false(core._saved(out[2]))
    assert(out[1]:save())
    assert(out[2]:save())
    assert.equal("dup", m.Genre:findByPk(g.genre_id).name)
    assert.equal(2, m.Genre:count())
  end)
end)

describe("an instance incremented inside a transaction that rolls back", function()
  it("has the counted field changed again, so its next save writes it", function()
    local db = H.open()
    local C = db:define("Counter", {
      timestamps = false,
      fields = { id = { type = T.INTEGER, primaryKey = true }, n = { type = T.INTEGER }, s = { type = T.TEXT } },
    })
    assert(db:sync())
    local c = assert(C:create { id = 1, n = 0, s = "a" })
    db:transaction(function()
      assert(c:increment("n", 5))
      assert(c:increment { n = 1 })
      junction.abort("no")
    end)
    assert.equal(0, C:findByPk(1).n)
    assert.equal(6, c.n)
    assert.same({ "n" }, c:changed())   -- before: false, and the save below wrote nothing
    assert(c:save())
    assert.equal(6, C:findByPk(1).n)
    db:close()
  end)
end)

describe("a callback that opens a transaction in the middle of an atomic call", function()
  -- The call's first transaction check answers for its statements only while
  -- the transaction frames stay as they were: a defaultValue function run by
  -- setGenres that leaves a coroutine suspended inside db:transaction makes
  -- the call's next statement a statement of that coroutine's transaction.
  -- (SQLite: on PostgreSQL the call's rollback to its savepoint also ends the
  -- coroutine's later savepoint, whose release then aborts the transaction.)
  H.sqlite_only(it, pending)("has the call's writes refused, and nothing written", function()
    local db = H.open()
    local co
    local m = H.blog(db, { weight = { type = T.INTEGER, defaultValue = function()
      if not co then
        co = coroutine.create(function() db:transaction(function() coroutine.yield() end) end)
        assert(coroutine.resume(co))
      end
      return 1
    end } })
    H.genres(m.Genre)
    local post = assert(m.Post:create { text = "p" })
    assert(db:transaction(function()
      local ok, msg = post:setGenres { 1, 2 }
      assert.is_nil(ok)
      H.mentions(msg, "has yielded")
      assert(coroutine.resume(co))
      assert.equal("dead", coroutine.status(co))
      assert.equal(0, post:countGenres())
    end))
    assert.equal(0, #assert(db:query("SELECT * FROM tag_post_genre")))
    db:close()
  end)
end)
