-- test/concurrency/set_genres.lua: one of the processes that set the same
-- posts' genres at once on PostgreSQL (spec/pg_concurrency_spec.lua starts
-- two; by hand, from the repository root after `make build`:
--
--   lua5.4 test/concurrency/set_genres.lua URL WORKER ITERATIONS LUA_PATH LUA_CPATH [paranoid]
--
-- URL names a database where the blog's tables and posts exist; with
-- "paranoid", the junction model is paranoid, whose methods are Lua). Worker w
-- sets each post's genres, ITERATIONS times over, to its own lists, cycling,
-- and after each set reads them back: what it reads must be one of the
-- lists of some worker (never a mix of two), and no call may fail. Prints
-- "ok N" (N sets done), or "FAIL ..." and exits 1.
--
-- Loaded with no arguments it returns the lists, for the spec to check the
-- final sets against.
local LISTS = {
  { { 1, 2, 3 }, { 4, 5 }, { 1, 6, 7, 8 }, {}, { 2, 9, 10 } },
  { { 2, 3, 4 }, { 5, 6, 7 }, { 8 }, { 1, 3, 5, 7 }, { 9, 10, 1, 2 } },
}

local url, worker, iterations, path, cpath, variant = ...
if url == nil then return LISTS end
package.path, package.cpath = path, cpath
worker, iterations = tonumber(worker), tonumber(iterations)

local junction = require "junction"

-- the set that a list names, as a string ("1,2,3"), sorted
local function key(list)
  local copy = {}
  for i, v in ipairs(list) do copy[i] = tonumber(v) end
  table.sort(copy)
  return table.concat(copy, ",")
end

local known = {}
for _, lists in ipairs(LISTS) do
  for _, list in ipairs(lists) do known[key(list)] = true end
end

local function fail(...)
  io.write("FAIL worker ", tostring(worker), ": ", table.concat({ ... }, " "), "\n")
  os.exit(1)
end

local db, msg = junction.open(url)
if not db then fail("open:", tostring(msg)) end
local assocs = {}
-- what the model files see as db: with "paranoid", TagPostGenre is paranoid
local shim = setmetatable({}, { __index = function(_, k)
  local v = db[k]
  if type(v) == "function" then return function(_, ...) return v(db, ...) end end
  return v
end })
function shim.define(_, name, spec)
  if name == "TagPostGenre" and variant == "paranoid" then
    local copy = {}
    for k, v in pairs(spec) do copy[k] = v end
    copy.paranoid = true
    spec = copy
  end
  return db:define(name, spec)
end
for _, file in ipairs { "post", "genre", "tag_post_genre" } do
  local define = assert(loadfile("examples/models/" .. file .. ".lua"))()
  local model, list = define(shim, junction.types)
  assocs[model.name] = list
end
assert(db:associate(assocs))
local posts = assert(db:model("Post"):findAll())
table.sort(posts, function(a, b) return a.post_id < b.post_id end)

local lists, n = LISTS[worker], 0
for i = 1, iterations do
  for p, post in ipairs(posts) do
    local list = lists[(i + p + worker) % #lists + 1]
    local ok, m, code, details = post:setGenres(list)
    if not ok then
      fail("setGenres:", tostring(m), tostring(code), tostring(details and details.sqlstate))
    end
    n = n + 1
    local got, gm = post:getGenres()
    if not got then fail("getGenres:", tostring(gm)) end
    local ids = {}
    for k, g in ipairs(got) do ids[k] = g.genre_id end
    if not known[key(ids)] then fail("post", tostring(post.post_id), "has genres", key(ids), "(no one's list)") end
  end
end
db:close()
io.write("ok ", n, "\n")
