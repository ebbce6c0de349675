-- bench/heap.lua -- the Lua heap a read's result holds (docs/PERFORMANCE.md "Rows").
--
--   LUA_PATH="lua/?.lua;lua/?/init.lua;;" LUA_CPATH="build/5.4/?.so" lua5.4 bench/heap.lua DB [P]
--
-- On a new database DB it makes the seed's tables (examples/models/, db:sync) with P posts
-- (default 20000), 200 genres and 5 genres a post; on an existing one it reads what is there.
-- Then it reads every post with `include = { "Genres" }` (eager's call) and without, and prints
-- the heap each result holds after a full collection (collectgarbage("count") with the result
-- kept, less the heap without it), in all and per post.
local junction = require "junction"

local path = arg[1] or error("usage: bench/heap.lua DB [P]")
local P = tonumber(arg[2] or "20000")
local fresh = io.open(path) == nil
local db = assert(junction.open(path))
local here = arg[0]:match("^(.*)[/\\]") or "."
local models = junction.loadModels(db, here .. "/../examples/models")
local Post, Genre = models.Post, models.Genre

if fresh then
  assert(db:sync())
  assert(db:transaction(function()
    for g = 1, 200 do assert(Genre:create { name = "genre-" .. g }) end
    for i = 1, P do
      local p = assert(Post:create { text = "post " .. i })
      local ids = {}
      for k = 1, 5 do ids[k] = (i * 7 + k * 31) % 200 + 1 end   -- 5 distinct genres
      assert(p:setGenres(ids))
    end
  end))
end

local function heap()
  collectgarbage()
  collectgarbage()
  return collectgarbage("count")
end

-- the heap the result of read() holds, in KiB, and its length
local function held(read)
  local before = heap()
  local result = read()
  local with = heap()
  local n = #result
  result = nil   -- luacheck: ignore (dropped before the next read)
  return with - before, n
end

local runtime = _VERSION .. (rawget(_G, "jit") and " (LuaJIT)" or "")
local kib, n = held(function() return assert(Post:findAll { include = { "Genres" } }) end)
print(("%s: findAll with include: %d posts, %.0f KiB, %.1f bytes a post"):format(
  runtime, n, kib, kib * 1024 / n))
kib, n = held(function() return assert(Post:findAll {}) end)
print(("%s: findAll without include: %d posts, %.0f KiB, %.1f bytes a post"):format(
  runtime, n, kib, kib * 1024 / n))
db:close()
