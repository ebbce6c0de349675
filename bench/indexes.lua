#!/usr/bin/env lua5.4
--[[
bench/indexes.lua -- what the junction table's second index costs and buys:
the blog's link writes and reads from the post's side (bench/WORKLOAD.md's
set_initial, get_all, set_shift, count_has, remove_all) and the reads and
cascades from the genre's side (genre:getPosts(), genre:countPosts(),
Genre:destroy cascading to the links), on three index sets of tag_post_genre:

  sync   what db:sync() makes from examples/models/: UNIQUE (genre_id, post_id)
         and an index on (post_id, genre_id) (both directions);
  lean   the same models with the user's override: TagPostGenre's fields in
         declaration order (post_id first: UNIQUE (post_id, genre_id)) and
         foreignKeyIndexes = false (no second index);
  ddl    the workload's DDL text (UNIQUE (post_id, genre_id) only).

  lua5.4 bench/indexes.lua --schema sync|lean|ddl DBPATH [P G K]   (defaults 20000 200 5)

Prints first a line "# indexes (schema): ..." naming tag_post_genre's indexes
as SQLite has them, then "<phase> <calls> <seconds> <calls/s> <checksum>" per
phase (insert: the G genres and P posts, then the measured ones), each line
one write, flushed: bench/indexes.sh cuts callgrind profiles there.
DBPATH must be a new database.
]]

local now
do
  local ok, ptime = pcall(require, "posix.time")
  if ok and ptime.clock_gettime and ptime.CLOCK_MONOTONIC then
    local clock_gettime, MONO = ptime.clock_gettime, ptime.CLOCK_MONOTONIC
    now = function() local ts = clock_gettime(MONO) return ts.tv_sec + ts.tv_nsec * 1e-9 end
  else
    local ok2, system = pcall(require, "system")
    now = ok2 and system.monotime or os.clock
  end
end

local schema = arg[1] == "--schema" and arg[2] or nil
if schema ~= "sync" and schema ~= "lean" and schema ~= "ddl" or not arg[3] then
  io.stderr:write("usage: lua bench/indexes.lua --schema sync|lean|ddl DBPATH [P G K]\n")
  os.exit(2)
end
local DBPATH = arg[3]
local P = tonumber(arg[4] or 20000)
local G = tonumber(arg[5] or 200)
local K = tonumber(arg[6] or 5)
assert(13 * K <= G, "13*K <= G is needed")

local junction = require "junction"
local db = assert(junction.open(DBPATH, { journal_mode = "wal", synchronous = "normal" }))
local here = arg[0]:match("^(.*)[/\\]") or "."
local models_dir = here .. "/../examples/models"

local models
if schema == "lean" then
  -- examples/models/, TagPostGenre declared again with the override
  local real_define = db.define
  local proxy = setmetatable({
    define = function(_, name, spec)
      if name == "TagPostGenre" then
        spec.foreignKeyIndexes = false
        local f = spec.fields
        spec.fields = {
          { "tag_post_genre_id", f.tag_post_genre_id },
          { "post_id", f.post_id },
          { "genre_id", f.genre_id },
        }
      end
      return real_define(db, name, spec)
    end,
  }, { __index = function(_, k)
         local v = db[k]
         if type(v) == "function" then return function(_, ...) return v(db, ...) end end
         return v
       end })
  models = junction.loadModels(proxy, models_dir)
else
  models = junction.loadModels(db, models_dir)
end
local Post, Genre, TagPostGenre = models.Post, models.Genre, models.TagPostGenre

if schema == "ddl" then
  assert(db:exec([[
CREATE TABLE post (
  post_id INTEGER PRIMARY KEY AUTOINCREMENT, text TEXT NOT NULL,
  created_at TEXT NOT NULL, updated_at TEXT NOT NULL);
CREATE TABLE genre (
  genre_id INTEGER PRIMARY KEY AUTOINCREMENT, name VARCHAR(60) NOT NULL UNIQUE,
  created_at TEXT NOT NULL, updated_at TEXT NOT NULL);
CREATE TABLE tag_post_genre (
  tag_post_genre_id INTEGER PRIMARY KEY AUTOINCREMENT,
  post_id  INTEGER NOT NULL REFERENCES post(post_id)   ON DELETE CASCADE ON UPDATE CASCADE,
  genre_id INTEGER NOT NULL REFERENCES genre(genre_id) ON DELETE CASCADE ON UPDATE CASCADE,
  created_at TEXT NOT NULL, updated_at TEXT NOT NULL,
  UNIQUE (post_id, genre_id));]]))
else
  assert(db:sync())
end

do
  local out = {}
  for _, ix in ipairs(assert(db:query("PRAGMA index_list(tag_post_genre)"))) do
    local cols = {}
    for _, c in ipairs(assert(db:query("PRAGMA index_info(\"" .. ix.name .. "\")"))) do
      cols[#cols + 1] = c.name
    end
    out[#out + 1] = (ix.unique == 1 and "UNIQUE " or "INDEX ") .. "(" .. table.concat(cols, ", ") .. ")"
  end
  table.sort(out)
  io.stdout:write("# indexes (" .. schema .. "): " .. table.concat(out, "; ") .. "\n")
  io.stdout:flush()
end

local function report(phase, calls, seconds, checksum)
  io.stdout:write(("%s %d %.6f %.1f %d\n"):format(phase, calls, seconds, calls / seconds, checksum))
  io.stdout:flush()
end
local function timed(fn)
  local t0 = now()
  assert(db:transaction(fn))
  return now() - t0
end

local genres, posts = {}, {}
local function genres_for(i, s)
  local list = {}
  for j = 0, K - 1 do list[j + 1] = genres[(i * 7 + j * 13 + s) % G + 1] end
  return list
end

report("insert", G + P, timed(function()
  for n = 1, G do genres[n] = assert(Genre:create { name = "genre-" .. n }) end
  for i = 1, P do posts[i] = assert(Post:create { text = "post " .. i }) end
end), assert(Post:count()))

report("set_initial", P, timed(function()
  for i = 1, P do assert(posts[i]:setGenres(genres_for(i, 0))) end
end), assert(TagPostGenre:count()))

do
  local sum = 0
  local s = timed(function()
    for i = 1, P do
      for _, g in ipairs(assert(posts[i]:getGenres())) do sum = sum + g.genre_id end
    end
  end)
  report("get_all", P, s, sum)
end

report("set_shift", P, timed(function()
  for i = 1, P do assert(posts[i]:setGenres(genres_for(i, 26))) end
end), assert(TagPostGenre:count()))

do
  local sum = 0
  local s = timed(function()
    for n = 1, G do
      for _, p in ipairs(assert(genres[n]:getPosts())) do sum = sum + p.post_id end
    end
  end)
  report("get_posts", G, s, sum)
end

do
  local sum = 0
  local s = timed(function()
    for n = 1, G do sum = sum + assert(genres[n]:countPosts()) end
  end)
  report("count_posts", G, s, sum)
end

do
  local sum = 0
  local s = timed(function()
    for i = 1, P do
      sum = sum + assert(posts[i]:countGenres())
      if assert(posts[i]:hasGenre(genres[(i * 7 + 26) % G + 1])) then sum = sum + 1 end
    end
  end)
  report("count_has", 2 * P, s, sum)
end

-- destroy every tenth genre: ON DELETE CASCADE finds its links by genre_id
do
  local n = 0
  local s = timed(function()
    for k = 10, G, 10 do assert(genres[k]:destroy()) n = n + 1 end
  end)
  report("destroy_genre", n, s, assert(TagPostGenre:count()))
end

report("remove_all", P, timed(function()
  for i = 1, P do assert(posts[i]:removeGenres(genres_for(i, 26))) end
end), assert(TagPostGenre:count()))

assert(db:close())
