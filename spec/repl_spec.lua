-- spec/repl_spec.lua: examples/repl.lua, the interactive start, loaded in a sandbox.
-- Checks that it leaves its globals, prints its hint, and that the printed forms
-- of the connection, the models and the instances read well.

-- examples/repl.lua, found from this spec file's own place
local spec_dir = debug.getinfo(1, "S").source:match("^@(.*)[/\\]") or "spec"
local repl_path = spec_dir .. "/../examples/repl.lua"

-- Run repl.lua in a fresh environment whose globals fall back to _G.
-- Returns the environment and everything it printed.
local function load_repl()
  local printed = {}
  local env = setmetatable({}, { __index = _G })
  env.print = function(...)
    local parts = {}
    for i = 1, select("#", ...) do parts[i] = tostring((select(i, ...))) end
    printed[#printed + 1] = table.concat(parts, "\t")
  end
  env._G = env
  local chunk
  if rawget(_G, "setfenv") then                       -- Lua 5.1, LuaJIT
    chunk = assert(loadfile(repl_path))
    setfenv(chunk, env)
  else
    chunk = assert(loadfile(repl_path, "t", env))
  end
  chunk()
  return env, table.concat(printed, "\n")
end

-- every value reachable from t is plain (no userdata, no functions)
local function is_plain(t, seen)
  seen = seen or {}
  if seen[t] then return true end
  seen[t] = true
  for k, v in pairs(t) do
    local tk, tv = type(k), type(v)
    if tk ~= "string" and tk ~= "number" then return false end
    if tv == "table" then
      if not is_plain(v, seen) then return false end
    elseif tv ~= "string" and tv ~= "number" and tv ~= "boolean" then
      return false
    end
  end
  return true
end

describe("examples/repl.lua (" .. (rawget(_G, "jit") and jit.version or _VERSION) .. ")", function()
  local env, output

  setup(function()
    env, output = load_repl()
  end)

  teardown(function()
    if env and env.db then env.db:close() end
  end)

  it("leaves the globals in its environment, not in _G", function()
    for _, name in ipairs { "junction", "db", "Post", "Genre", "TagPostGenre", "post", "show" } do
      assert.is_not_nil(rawget(env, name), name)
    end
    assert.is_nil(rawget(_G, "Post"))
    assert.is_nil(rawget(_G, "post"))
  end)

  it("prints a short hint naming the globals and something to try", function()
    assert.matches("in%-memory blog", output)
    assert.matches("Globals: junction, db, Post, Genre, TagPostGenre, post, show", output, 1, true)
    assert.matches("post:getGenres()", output, 1, true)
    assert.matches("junction%.Connection: :memory:", output)
    local lines = select(2, output:gsub("\n", "\n")) + 1
    assert.is_true(lines <= 20, "hint has " .. lines .. " lines")
  end)

  it("has the seed's data: 4 genres, 3 posts, post with 3 genres", function()
    assert.are.equal(4, env.Genre:count())
    assert.are.equal(3, env.Post:count())
    assert.are.equal(3, env.post:countGenres())
    assert.are.equal(5, env.TagPostGenre:count())
  end)

  it("tostring(db) names the file, the state and the models", function()
    assert.are.equal("junction.Connection: :memory: (open, 3 models)", tostring(env.db))
  end)

  it("tostring(Model) names the model, its key and its fields", function()
    local s = tostring(env.Post)
    assert.matches("Post", s, 1, true)
    assert.matches("post_id", s, 1, true)
    assert.matches("text", s, 1, true)
    s = tostring(env.Genre)
    assert.matches("Genre", s, 1, true)
    assert.matches("genre_id", s, 1, true)
    assert.matches("name", s, 1, true)
    s = tostring(env.TagPostGenre)
    for _, f in ipairs { "TagPostGenre", "tag_post_genre_id", "post_id", "genre_id" } do
      assert.matches(f, s, 1, true)
    end
    assert.is_nil(s:find("table: 0x", 1, true))
    assert.is_nil(s:find("userdata: 0x", 1, true))
  end)

  it("tostring(instance) shows the model and its fields", function()
    local s = tostring(env.post)
    assert.matches("^Post{", s)
    assert.matches("post_id=1", s, 1, true)
    assert.matches('text="Junction models in Lua"', s, 1, true)
    assert.matches("created_at=", s, 1, true)
    assert.matches("}$", s)
    local g = env.post:getGenres({ order = "genre_id" })[1]
    s = tostring(g)
    assert.matches("^Genre{", s)
    assert.matches("genre_id=1", s, 1, true)
    assert.matches('name="orm"', s, 1, true)
  end)

  it("tostring of an unsaved instance and of a closed connection still reads", function()
    local b = env.Post:build { text = "draft" }
    assert.matches('^Post{.*text="draft"', tostring(b))
    local junction = env.junction
    local other = assert(junction.open(":memory:"))
    assert.matches("^junction%.Connection: :memory: %(open", tostring(other))
    other:close()
    assert.matches("^junction%.Connection: :memory: %(closed", tostring(other))
  end)

  it("post:toTable() is plain data with the included Genres", function()
    local p = env.Post:findByPk(1, { include = { "Genres" } })
    local t = p:toTable()
    assert.is_true(is_plain(t))
    assert.are.equal(1, t.post_id)
    assert.are.equal("Junction models in Lua", t.text)
    assert.are.equal(3, #t.Genres)
  end)

  it("post:toTable() round-trips through cjson", function()
    local ok, cjson = pcall(require, "cjson")
    if not ok then
      pending("lua-cjson is not installed for " .. _VERSION)
      return
    end
    local p = env.Post:findByPk(1, { include = { "Genres" } })
    local t = p:toTable()
    local back = cjson.decode(cjson.encode(t))
    assert.are.same(t, back)
    table.sort(back.Genres, function(a, b) return a.genre_id < b.genre_id end)
    assert.are.equal("orm", back.Genres[1].name)
  end)

  it("show() prints a list of instances one per line", function()
    local lines = {}
    local saved = env.print
    env.print = function(s) lines[#lines + 1] = s end
    env.show(env.post:getGenres({ order = "genre_id" }))
    env.print = saved
    lines = table.concat(lines, "\n")
    local rows = {}
    for line in lines:gmatch("[^\n]+") do rows[#rows + 1] = line end
    assert.are.equal(4, #rows)
    assert.matches('^%[1%] Genre{genre_id=1, name="orm"', rows[1])
    assert.matches('^%[3%] Genre{', rows[3])
    assert.are.equal("(3 rows)", rows[4])
  end)
end)

describe("tostring of what a read returns", function()
  it("tells a person what an array of instances, a loaded association and an empty result hold", function()
    local H = require "spec.helper"
    local db = H.open()
    local m = H.blog(db)
    H.genres(m.Genre, { "a", "b", "c", "d", "e", "f" })
    local post = assert(m.Post:create { text = "p" })
    assert(post:setGenres { 1, 2 })
    local all = m.Genre:findAll()
    assert.matches('^%[Genre{genre_id=1, name="a".-, %.%.%.%] %(6 rows%)$', tostring(all))
    assert.matches('^%[Genre{genre_id=1.-Genre{genre_id=2.-%] %(2 rows%)$', tostring(post:getGenres()))
    local loaded = m.Post:findAll { include = { "Genres" } }[1].Genres
    assert.matches("%(2 rows%)$", tostring(loaded))
    assert.equal("[] (0 rows)", tostring(m.Post:findAll { where = { text = "none" } }))
    assert.matches('^%[Post{post_id=1, text="p".-%] %(1 row%)$', tostring(m.Post:findAll()))
    -- still plain arrays
    assert.equal(6, #all)
    table.sort(all, function(x, y) return x.genre_id > y.genre_id end)
    assert.equal(6, all[1].genre_id)
    db:close()
    assert.matches("^Genre{genre_id=6", tostring(all[1]))
  end)
end)
