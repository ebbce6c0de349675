-- spec/gc_spec.lua: lifecycle under the garbage collector (STYLE.md "Tests":
-- use after close, collectgarbage twice, reopen the same file, close with live
-- statements).
local H = require "spec.helper"
local sqlite_it = H.sqlite_only(it, pending)
local junction = H.junction

local gc = H.gc

describe("garbage collection", function()
  local path
  before_each(function() path = H.place() end)
  after_each(function() H.drop_place(path) end)

  it("instances are collected once dropped, also after close", function()
    local weak = setmetatable({}, { __mode = "v" })
    local function make()
      local db = H.open()
      local m = H.blog(db)
      H.genres(m.Genre)
      local p = assert(m.Post:create { text = "x" })
      assert(p:setGenres { 1, 2 })
      weak.post = p
      weak.list = m.Post:findAll { include = { "Genres" } }
      weak.genre = weak.list[1].Genres[1]
      weak.db = db
      weak.model = m.Post
      db:close()
    end
    make()
    gc()
    assert.is_nil(weak.post)
    assert.is_nil(weak.genre)
    assert.is_nil(weak.list)
    assert.is_nil(weak.model)
    assert.is_nil(weak.db)
  end)

  it("a model defined after others were collected resolves its own names", function()
    local function make(db, name, field)
      local M = db:define(name, { fields = { id = { type = junction.types.INTEGER, primaryKey = true },
                                             [field] = { type = junction.types.TEXT } } })
      assert(db:sync())
      return M
    end
    local function gone()
      local db = H.open()
      local A = make(db, "Temp", "first")
      assert.equal("a", (assert(A:create { first = "a" })).first)
      db:close()
    end
    gone()
    gone()
    gc()
    local db = H.open()
    local B = make(db, "Other", "second")
    local C = make(db, "Third", "third")
    local b = assert(B:create { second = "b" })
    local c = assert(C:create { third = "c" })
    assert.equal("b", b.second)
    assert.equal("c", c.third)
    assert.equal(b, (B:findByPk(b.id)))
    H.raises(function() return b.first end)
    H.raises(function() return b.third end)
    db:close()
  end)

  it("instances outliving their closed connection do not crash", function()
    local db = H.open()
    local m = H.blog(db)
    local p = assert(m.Post:create { text = "kept" })
    local list = m.Post:findAll()
    db:close()
    db, m = nil, nil -- luacheck: ignore 311
    gc()
    -- reading may work or raise 'closed', but must not crash
    local ok, v = pcall(function() return p.text end)
    if ok then assert.equal("kept", v) end
    pcall(tostring, p)
    local ok2, err = pcall(function() return p:save() end)
    if not ok2 then assert.matches("closed", tostring(err)) end
    assert.equal(1, #list)
    p, list = nil, nil -- luacheck: ignore 311
    gc()
  end)

  sqlite_it("a dropped connection is closed by the collector; the file reopens with its data", function()
    local weak = setmetatable({}, { __mode = "v" })
    local function make()
      local db = assert(junction.open(path))
      local m = H.blog(db)
      assert(m.Post:create { text = "survives gc" })
      H.genres(m.Genre, { "a" })
      assert(m.Post:findByPk(1):setGenres { 1 })
      weak.db = db
    end
    make()
    gc()
    assert.is_nil(weak.db, "the connection was collected")
    local db = assert(junction.open(path, { busy_timeout = 0 }))
    -- the old handle released its lock: a write transaction is possible at once
    assert.is_true(db:exec("BEGIN IMMEDIATE; COMMIT;"))
    local m = H.blog(db)
    assert.equal("survives gc", m.Post:findByPk(1).text)
    assert.same({ 1 }, H.ids(m.Post:findByPk(1):getGenres(), "genre_id"))
    db:close()
  end)

  it("a connection dropped mid-transaction is rolled back by the collector", function()
    local function make()
      local db = H.open_at(path)
      local m = H.blog(db)
      assert(m.Post:create { text = "committed" })
      assert(db:exec("BEGIN"))
      assert(m.Post:create { text = "never committed" })
    end
    make()
    gc()
    local db = H.open_at(path, not H.is_pg and { busy_timeout = 0 } or nil)
    local rows = db:query("SELECT text FROM post ORDER BY post_id")
    assert.same({ { text = "committed" } }, rows)
    db:close()
  end)

  it("a kept instance keeps its model and connection usable", function()
    local weak = setmetatable({}, { __mode = "v" })
    local post, Model
    local function make()
      local db = H.open()
      local m = H.blog(db)
      H.genres(m.Genre, { "a", "b" })
      post = assert(m.Post:create { text = "kept" })
      Model = m.Genre
      weak.db = db
    end
    make()
    gc()
    assert.is_not_nil(weak.db, "the connection is anchored by its models and instances")
    post.text = "changed"
    assert(post:save())
    assert(post:reload())
    assert.equal("changed", post.text)
    assert(post:setGenres { 1, 2 })
    assert.equal(2, post:countGenres())
    assert.equal(2, Model:count())
    gc()
    assert(Model:create { name = "c" })
    weak.db:close()
  end)

  sqlite_it("close with live cached statements returns true and releases the file", function()
    local db = assert(junction.open(path))
    local m = H.blog(db)
    H.genres(m.Genre)
    local p = assert(m.Post:create { text = "x" })
    for i = 1, 50 do
      assert(p:setGenres { 1 + i % 5, 1 + (i + 1) % 5 })
      m.Post:findAll { where = { text = { like = "%" .. i } } }
      m.Genre:count { where = { genre_id = { gt = i % 5 } } }
      assert(db:query("SELECT ? AS v", i))
      p:getGenres { order = "name", limit = i }
    end
    assert.is_true(db:close())
    local db2 = assert(junction.open(path, { busy_timeout = 0 }))
    assert.is_true(db2:exec("BEGIN EXCLUSIVE; COMMIT;"))
    db2:close()
  end)

  it("close inside a transaction callback leaves things consistent", function()
    local db = H.open_at(path)
    local m = H.blog(db)
    assert(m.Post:create { text = "before" })
    pcall(db.transaction, db, function()
      assert(m.Post:create { text = "inside" })
      db:close()
    end)
    gc()
    local db2 = H.open_at(path)
    local texts = H.ids(db2:query("SELECT text FROM post"), "text")
    assert.is_true(texts[1] == "before")
    db2:close()
  end)

  sqlite_it("many connections opened and dropped do not leak file handles", function()
    local function one(i)
      local db = assert(junction.open(path))
      assert(db:query("SELECT ?", i))
    end
    for i = 1, 300 do
      one(i)
      if i % 50 == 0 then gc() end
    end
    gc()
    local db = assert(junction.open(path, { busy_timeout = 0 }))
    assert.is_true(db:exec("BEGIN EXCLUSIVE; COMMIT;"))
    db:close()
  end)

  it("models and instances outlive a collected log function's scope", function()
    local db
    do
      local n = 0
      db = H.open { log = function() n = n + 1 end }
    end
    gc()
    local m = H.blog(db)
    assert(m.Post:create { text = "x" })
    gc()
    assert.equal(1, m.Post:count())
    db:close()
    gc()
  end)
end)

describe("garbage a call leaves", function()
  -- Lua heap bytes that n calls of f leave, per call, with the collector stopped.
  local function bytes_per_call(f, n)
    collectgarbage()
    collectgarbage("stop")
    local before = collectgarbage("count")
    for _ = 1, n do f() end
    local after = collectgarbage("count")
    collectgarbage("restart")
    return (after - before) * 1024 / n
  end

  sqlite_it("an atomic association write makes no closure per call: removeGenres of two leaves what "
    .. "hasGenres of two does", function()
    local db = H.open()
    local m = H.blog(db)
    local g = H.genres(m.Genre)
    local post = assert(m.Post:create { text = "x" })
    local list = { g[1], g[2] }
    assert(post:removeGenres(list))
    assert(post:hasGenres(list) ~= nil)
    -- both read the list into one key array of two; removeGenres runs its body
    -- under the atomic call, which used to make a closure for it every call
    local removes = bytes_per_call(function() assert(post:removeGenres(list)) end, 500)
    local hases = bytes_per_call(function() assert(post:hasGenres(list) ~= nil) end, 500)
    db:close()
    assert.is_true(removes < hases + 8, ("removeGenres left %.1f bytes a call, hasGenres %.1f"):format(removes, hases))
  end)

  sqlite_it("a short key list is read on the C stack: removeGenres, addGenres and hasGenres of five "
    .. "allocate no key array", function()
    local db = H.open()
    local m = H.blog(db)
    local g = H.genres(m.Genre)
    local post = assert(m.Post:create { text = "x" })
    local list = { g[1], g[2], g[3], g[4], 5 }   -- instances and a key
    assert(post:removeGenres(list))
    -- a key array of five is 160 bytes and more: each method allocated one a call
    for name, call in pairs {
      removeGenres = function() assert(post:removeGenres(list)) end,
      addGenres = function() assert(post:addGenres(list)) end,
      hasGenres = function() assert(post:hasGenres(list) ~= nil) end,
    } do
      for _ = 1, 200 do call() end   -- LuaJIT compiles its traces here, not in the count
      local b = bytes_per_call(call, 500)
      assert.is_true(b < 48, ("%s left %.1f bytes a call"):format(name, b))
    end
    -- a text key for an INTEGER field moves the keys off the stack (it needs an
    -- anchor) and is still no row: nothing linked, nothing found
    assert.is_true(post:setGenres { g[1], g[2], g[3], g[4] })
    assert.is_false(post:hasGenres { g[1], "x" })
    assert.is_true(post:removeGenres { g[1], "x" })
    assert.equal(3, post:countGenres())
    db:close()
  end)
end)

describe("a finalizer that closes the connection during a call", function()
  -- finalizers with a __gc: tables from Lua 5.2 on, newproxy on 5.1 and LuaJIT
  local newproxy = rawget(_G, "newproxy")
  local function with_gc(fn)
    if newproxy then
      local u = newproxy(true)
      getmetatable(u).__gc = fn
      return u
    end
    return setmetatable({}, { __gc = fn })
  end

  local function fill(db)
    local m = H.blog(db)
    assert(db:exec([[INSERT INTO post(text, created_at, updated_at)
      WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 500)
      SELECT 'post number ' || x, '2024-01-01 00:00:00', '2024-01-01 00:00:00' FROM c]]))
    return m
  end

  -- Rounds of Post:findAll on a fresh connection, the collector running all
  -- the time (pause 0) and finalizers always waiting for it (each one that
  -- runs outside a call makes another); on_gc(db) runs in each finalizer
  -- that runs during a call.  Returns how many did.  A round whose finalizer
  -- ran just before the call began (and closed the connection: fine then)
  -- counts for nothing.
  local function rounds(on_gc)
    local during, calling, db = 0, false, nil
    local function arm()
      with_gc(function()
        if calling then during = during + 1; on_gc(db) else arm() end
      end)
    end
    local pause = collectgarbage("setpause", 0)
    for _ = 1, 50 do arm() end
    for _ = 1, 100 do
      db = H.open()
      local m = fill(db)
      for _ = 1, 20 do arm() end
      local ok, rows = pcall(function()
        calling = true
        return m.Post.findAll(m.Post)
      end)
      calling = false
      if ok then
        assert.equal(500, #rows)
        -- a finalizer may also run after the core's call has returned and
        -- before `calling` is reset (in Lua code of the method's wrapper):
        -- a close there is allowed and succeeds
        if not tostring(db):find("(closed,", 1, true) then
          assert.matches("(open,", tostring(db), 1, true)
          assert.equal(500, m.Post:count())
          assert.is_true(db:close())
        end
        if during > 0 then break end
      else
        assert.matches("Post:findAll: attempt to use a closed connection", tostring(rows))
      end
    end
    collectgarbage("setpause", pause)
    calling = true   -- the finalizers left over do nothing
    return during
  end

  it("is refused while the call runs, and the call finishes with every row", function()
    local refused = 0
    local during = rounds(function(db)
      local ok, err = pcall(db.close, db)
      if not ok then
        refused = refused + 1
        assert(tostring(err):find("db:close: the connection may be in use", 1, true), err)
      end
    end)
    assert.is_true(during > 0, "no finalizer ran during a call")
    assert.is_true(refused > 0, "no close was refused")
  end)

  it("calling __gc by hand on the live connection does nothing until the call returns", function()
    local during = rounds(function(db) getmetatable(db).__gc(db) end)
    assert.is_true(during > 0, "no finalizer ran during a call")
  end)
end)
