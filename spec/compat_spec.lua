-- spec/compat_spec.lua: runtime compatibility and state isolation (DESIGN.md
-- "Runtimes"; docs/API.md "Integers"; STYLE.md "Tests").
local H = require "spec.helper"
local junction = H.junction
local T = H.T

describe("state isolation", function()
  it("require 'junction' adds nothing to _G", function()
    local saved = {}
    for k, v in pairs(package.loaded) do
      if type(k) == "string" and k:match("^junction") then saved[k] = v; package.loaded[k] = nil end
    end
    local before = {}
    for k in pairs(_G) do before[k] = true end
    local j = require "junction"
    local added = {}
    for k in pairs(_G) do if not before[k] then added[#added + 1] = tostring(k) end end
    for k, v in pairs(saved) do package.loaded[k] = v end
    assert.is_table(j)
    assert.same({}, added)
    assert.is_nil(rawget(_G, "junction"))
  end)

  it("require 'junction' from a fresh interpreter adds nothing to _G", function()
    local exe = H.is_jit and "luajit" or ("lua" .. _VERSION:match("%d+%.%d+"))
    local script = [[
      local before = {} for k in pairs(_G) do before[k] = true end
      require "junction"
      for k in pairs(_G) do if not before[k] then io.write(tostring(k), " ") end end
      io.write("END")
    ]]
    local file = os.tmpname()
    H.writefile(file, script)
    local f = io.popen(("LUA_CPATH='%s' LUA_PATH='%s' %s '%s' 2>&1"):format(package.cpath, package.path, exe, file))
    local out = f:read("*a")
    f:close()
    os.remove(file)
    assert.equal("END", out)
  end)

  it("two connections do not share models", function()
    local a, b = H.open(), H.open()
    local PA = a:define("Post", { timestamps = false, fields = { title = { type = T.TEXT } } })
    assert.is_nil(b:model("Post"))
    local PB = b:define("Post", { timestamps = false, fields = { body = { type = T.TEXT }, n = { type = T.INTEGER } } })
    assert(a:sync())
    assert(b:sync())
    assert.are_not.equal(PA, PB)
    assert(PA:create { title = "in a" })
    assert(PB:create { body = "in b", n = 1 })
    assert(PB:create { body = "in b", n = 2 })
    assert.equal(1, PA:count())
    assert.equal(2, PB:count())
    H.raises(function() PA:create { body = "x" } end)
    H.raises(function() PB:create { title = "x" } end)
    assert.equal(PA, a:model("Post"))
    assert.equal(PB, b:model("Post"))
    a:close()
    assert.equal(2, PB:count())
    b:close()
  end)

  it("two connections with different associations stay apart", function()
    local a, b = H.open(), H.open()
    local ma = H.blog(a)
    H.define_blog(b)
    assert(b:sync())
    assert.is_function(ma.Post:build { text = "x" }.setGenres)
    local pb = b:model("Post"):build { text = "x" }
    H.raises(function() return pb.setGenres end)
    a:close()
    b:close()
  end)

  it("a model defined inside a coroutine that has died is still usable", function()
    local log, entries = H.recorder()
    local co = coroutine.create(function()
      local db = H.open { log = function(sql, params) log(sql, params) end }
      local m = H.blog(db)
      H.genres(m.Genre)
      local p = assert(m.Post:create { text = "from a coroutine" })
      assert(p:setGenres { 1 })
      coroutine.yield()
      return db, m
    end)
    assert(coroutine.resume(co))
    local ok, db, m = coroutine.resume(co)
    assert.is_true(ok)
    assert.equal("dead", coroutine.status(co))
    co = nil -- luacheck: ignore 311
    collectgarbage()
    collectgarbage()
    local n0 = #entries
    local p = assert(m.Post:create { text = "after death" })
    assert(p:setGenres { 1, 2 })
    assert.same({ 1, 2 }, H.ids(p:getGenres(), "genre_id"))
    assert.equal(2, m.Post:count())
    local posts = m.Post:findAll { include = { "Genres" } }
    assert.equal(2, #posts)
    assert.is_true(db:transaction(function() assert(m.Genre:create { name = "late" }) end))
    assert.is_true(#entries > n0, "the log function still runs")
    db:close()
  end)

  it("a connection opened in one coroutine is used from another", function()
    local db
    local co1 = coroutine.wrap(function() db = H.open(); return true end)
    co1()
    local m
    local co2 = coroutine.wrap(function() m = H.blog(db); return assert(m.Post:create { text = "x" }) end)
    assert(co2())
    assert.equal(1, m.Post:count())
    db:close()
  end)

  it("db:transaction's function may yield (the transaction is yield-safe)", function()
    local db = H.open()
    local m = H.blog(db)
    local co = coroutine.create(function()
      return db:transaction(function()
        assert(m.Post:create { text = "before yield" })
        coroutine.yield("paused")
        assert(m.Post:create { text = "after yield" })
        return "committed"
      end)
    end)
    local ok, v = coroutine.resume(co)
    assert.is_true(ok, tostring(v))
    assert.equal("paused", v)
    local ok2, v2 = coroutine.resume(co)
    assert.is_true(ok2, tostring(v2))
    assert.equal("committed", v2)
    assert.equal(2, m.Post:count())
    db:close()
  end)

  it("instances compare equal on every runtime (shared __eq)", function()
    local db = H.open()
    local m = H.blog(db)
    assert(m.Post:create { text = "x" })
    local a, b = m.Post:findByPk(1), m.Post:findAll()[1]
    assert.is_true(a == b)
    assert.is_false(a ~= b)
    db:close()
  end)
end)

describe("integers", function()
  local db, W
  before_each(function()
    db = H.open()
    W = db:define("W", { tableName = "w", timestamps = false, fields = {
      id = { type = T.INTEGER, primaryKey = true }, v = { type = T.INTEGER } } })
    assert(db:sync())
  end)
  after_each(function() db:close() end)

  if H.has_int then
    it("are exact over 64 bits on 5.3/5.4 (2^53 + 1 as a key)", function()
      local big = math.tointeger(2 ^ 53) + 1                 -- 9007199254740993
      assert.equal(9007199254740993, big)
      local w = assert(W:create { id = big, v = math.maxinteger })
      assert.equal(big, w.id)
      local back = assert(W:findByPk(big))
      assert.equal("integer", math.type(back.id))
      assert.equal(big, back.id)
      assert.equal(math.maxinteger, back.v)
      assert.is_nil(W:findByPk(big - 1))
      assert.equal(1, W:count { where = { id = { gt = big - 1 } } })
      -- a parameter whose type the SQL does not say is text on PostgreSQL (docs/POSTGRES.md)
      local cast = H.is_pg and "::bigint" or ""
      local r = db:query("SELECT ?" .. cast .. " AS a, ?" .. cast .. " AS b, 9007199254740993 AS c",
                         math.mininteger, big)[1]
      assert.equal(math.mininteger, r.a)
      assert.equal(big, r.b)
      assert.equal(big, r.c)
      assert.equal("9007199254740993", tostring(r.c))
    end)

    it("64-bit bounds survive short and long in lists", function()
      assert(W:create { id = math.maxinteger, v = 1 })
      assert(W:create { id = math.mininteger, v = 2 })
      assert(W:create { id = math.tointeger(2 ^ 53) + 1, v = 3 })
      for _, pad in ipairs { 0, 3000 } do
        local list = {}
        for i = 1, pad do list[i] = i end
        list[#list + 1] = math.maxinteger
        list[#list + 1] = math.mininteger
        list[#list + 1] = math.tointeger(2 ^ 53) + 1
        list[#list + 1] = math.tointeger(2 ^ 53)           -- a miss next to a hit
        assert.equal(3, W:count { where = { id = { ["in"] = list } } }, "pad " .. pad)
        assert.equal(0, W:count { where = { id = { notIn = list } } }, "pad " .. pad)
      end
    end)

    it("integral floats are accepted as keys and keys come back as integers", function()
      local m = H.blog(H.open())
      H.genres(m.Genre, { "a", "b", "c" })
      local p = assert(m.Post:create { text = "x" })
      assert(p:setGenres { 1.0, 2.0 })
      assert.is_true(p:hasGenre(2.0))
      local g = assert(m.Genre:findByPk(3.0))
      assert.equal("integer", math.type(g.genre_id))
      assert.equal(2, m.Genre:count { where = { genre_id = { 1.0, 3.0 } } })
      for _, x in ipairs(p:getGenres()) do assert.equal("integer", math.type(x.genre_id)) end
      local row = assert(db:query("SELECT ? + 0 AS v", 2.0))[1]
      assert.equal(2, row.v)
    end)

    it("linking by a large key works", function()
      local m = H.blog(H.open())
      local big = math.tointeger(2 ^ 53) + 1
      assert(m.Genre:create { genre_id = big, name = "big" })
      local p = assert(m.Post:create { text = "x" })
      assert(p:setGenres { big })
      assert.equal(big, p:getGenres()[1].genre_id)
    end)
  else
    it("come back as numbers up to 2^53 and as exact strings beyond on 5.1/LuaJIT", function()
      local r = db:query("SELECT 9007199254740992 AS a, 9007199254740993 AS b, -9007199254740993 AS c, 42 AS d")[1]
      assert.equal("number", type(r.a))
      assert.equal(2 ^ 53, r.a)
      assert.equal("9007199254740993", r.b)
      assert.equal("-9007199254740993", r.c)
      assert.equal(42, r.d)
      assert.equal("number", type(r.d))
    end)

    it("accept such a string wherever a key is", function()
      assert(db:exec("INSERT INTO w(id, v) VALUES (9007199254740993, 9223372036854775807)"))
      local back = assert(W:findByPk("9007199254740993"))
      assert.equal("9007199254740993", back.id)
      assert.equal("9223372036854775807", back.v)
      assert.is_nil(W:findByPk("9007199254740995"))
      assert.equal(1, W:count { where = { id = { "9007199254740993" } } })
      local w = assert(W:create { id = "9007199254740995", v = 1 })
      assert.equal("9007199254740995", w.id)
      assert.equal(1, db:query("SELECT count(*) AS n FROM w WHERE id = 9007199254740995")[1].n)
      local m = H.blog(H.open())
      assert(m.Genre:create { genre_id = "9007199254740993", name = "big" })
      local p = assert(m.Post:create { text = "x" })
      assert(p:setGenres { "9007199254740993" })
      assert.equal("9007199254740993", p:getGenres()[1].genre_id)
    end)
  end
end)

describe("large keys through associations and include", function()
  it("link, get and eager-load rows whose keys exceed 2^53", function()
    local db = H.open()
    local m = H.blog(db)
    assert(db:exec([[
      INSERT INTO post(post_id, text, created_at, updated_at) VALUES (9007199254740993, 'big', 'x', 'x');
      INSERT INTO genre(genre_id, name, created_at, updated_at) VALUES (9007199254740995, 'huge', 'x', 'x');
      INSERT INTO genre(genre_id, name, created_at, updated_at) VALUES (9007199254740997, 'vast', 'x', 'x');
    ]]))
    local big_post = H.has_int and (math.tointeger(2 ^ 53) + 1) or "9007199254740993"
    local p = assert(m.Post:findByPk(big_post))
    local genres = m.Genre:findAll { order = "genre_id" }
    assert.equal(2, #genres)
    assert(p:setGenres(genres))
    assert.equal(2, p:countGenres())
    assert.equal(tostring(genres[2].genre_id), tostring(p:getGenres { order = "genre_id" }[2].genre_id))
    assert.equal(2, db:query("SELECT count(*) AS n FROM tag_post_genre WHERE post_id = 9007199254740993"
      .. " AND genre_id IN (9007199254740995, 9007199254740997)")[1].n)
    local posts = m.Post:findAll { include = { "Genres" } }
    assert.equal(1, #posts)
    assert.equal(2, #posts[1].Genres)
    local g = assert(m.Genre:findByPk(genres[1].genre_id, { include = { "Posts" } }))
    assert.equal(1, #g.Posts)
    assert.equal(tostring(p.post_id), tostring(g.Posts[1].post_id))
    local links = m.TagPostGenre:findAll { include = { "Post", "Genre" } }
    assert.equal(2, #links)
    for _, l in ipairs(links) do
      assert.equal(p, l.Post)
      assert.is_not_nil(l.Genre)
    end
    db:close()
  end)
end)

describe("<close>", function()
  local run = (_VERSION == "Lua 5.4" and not H.is_jit) and it or pending
  run("closes a connection at the end of its scope on Lua 5.4", function()
    local chunk = assert(load([[
      local junction = ...
      local escaped
      do
        local db <close> = assert(junction.open(":memory:"))
        assert(db:query("SELECT 1"))
        escaped = db
      end
      return escaped
    ]]))
    local db = chunk(junction)
    local ok, err = pcall(function() return db:query("SELECT 1") end)
    assert.is_false(ok)
    assert.matches("attempt to use a closed connection", tostring(err), 1, true)
    assert.has_no.errors(function() db:close() end)
  end)
end)
