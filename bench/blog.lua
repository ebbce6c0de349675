#!/usr/bin/env lua5.4
--[[
bench/blog.lua -- the blog workload (../shared/bench/WORKLOAD.md) on junction's
public API, so that its figures can be read as ratios to raw_c_blog.c.

  lua5.4 bench/blog.lua DBPATH [P G K]        (defaults 20000 200 5)

DBPATH must be a new database file: the runner (bench/run.sh) deletes DBPATH,
DBPATH-wal and DBPATH-shm first. Stdout holds exactly the eight lines of
WORKLOAD.md decision 12:

  <phase> <calls> <seconds> <calls/s> <checksum>

As WORKLOAD.md decision 1 says, the tables are created from the workload's
DDL text (db:exec, untimed), not by db:sync(): junction's sync would add an
index on tag_post_genre(post_id, genre_id) beside the UNIQUE (the seed's
fields have no order in a Lua table), and every link written would then
maintain two indexes where raw_c_blog maintains one. The models are the
seed's, defined over those tables. A database that already has the tables
is refused.

Clock: CLOCK_MONOTONIC, through lua-posix (posix.time.clock_gettime) or,
where lua-posix has no build for this Lua (Debian 12 has none for 5.4),
through lua-system's monotime(), which reads the same clock. os.clock()
(CPU time only) is the last resort, with a warning on stderr.

Every junction call's result is checked: database failures come back as
nil, message, code (docs/API.md), and any of them stops the run.

Set JUNCTION_BENCH_MARK=1 to write each phase line unbuffered, which
bench/callgrind.sh uses to cut its profile at phase boundaries.
]]

-- ---------------------------------------------------------------------------
-- Clock
-- ---------------------------------------------------------------------------

local now
do
  local ok, ptime = pcall(require, "posix.time")
  if ok and ptime.clock_gettime and ptime.CLOCK_MONOTONIC then
    local clock_gettime, MONO = ptime.clock_gettime, ptime.CLOCK_MONOTONIC
    now = function()
      local ts = clock_gettime(MONO)
      return ts.tv_sec + ts.tv_nsec * 1e-9
    end
  else
    local ok2, system = pcall(require, "system")
    if ok2 and system.monotime then
      now = system.monotime
    else
      io.stderr:write("blog.lua: warning: neither lua-posix nor lua-system is ",
                      "available; timing with os.clock() (CPU time, not wall ",
                      "time): figures are not comparable with raw_c_blog\n")
      now = os.clock
    end
  end
end

-- ---------------------------------------------------------------------------
-- Command line
-- ---------------------------------------------------------------------------

local function usage(msg)
  if msg then io.stderr:write("blog.lua: ", msg, "\n") end
  io.stderr:write("usage: lua bench/blog.lua DBPATH [P G K]   (defaults 20000 200 5)\n")
  os.exit(2)
end

local function count_arg(s, what)
  local v = tonumber(s)
  if not (s:match("^%d+$") and v and v >= 1 and v <= 100000000) then
    usage(what .. " must be a positive integer, got \"" .. s .. "\"")
  end
  return math.floor(v)
end

if #arg ~= 1 and #arg ~= 4 then usage() end
local DBPATH = arg[1]
local P = arg[2] and count_arg(arg[2], "P") or 20000
local G = arg[3] and count_arg(arg[3], "G") or 200
local K = arg[4] and count_arg(arg[4], "K") or 5
if 13 * K > G then
  usage(("ids() needs 13*K <= G to give K distinct genres (K=%d, G=%d)"):format(K, G))
end

-- ---------------------------------------------------------------------------
-- Connection and the seed's models (DESIGN.md, "The seed, transcribed")
-- ---------------------------------------------------------------------------

local junction = require "junction"
local T = junction.types

local db = assert(junction.open(DBPATH, { journal_mode = "wal", synchronous = "normal" }))

-- Decision 1: a program fails if the tables already exist.
do
  local rows = assert(db:query(
    "SELECT name FROM sqlite_master WHERE type = 'table' AND name IN ('post', 'genre', 'tag_post_genre')"))
  if #rows > 0 then
    io.stderr:write("blog.lua: ", DBPATH, ": table '", rows[1].name,
                    "' already exists (DBPATH must be a new database)\n")
    os.exit(1)
  end
  local mode = assert(db:query("PRAGMA journal_mode"))
  local fk = assert(db:query("PRAGMA foreign_keys"))
  local sync = assert(db:query("PRAGMA synchronous"))
  assert(mode[1] and mode[1].journal_mode == "wal", "journal_mode is not wal")
  assert(fk[1] and fk[1].foreign_keys == 1, "foreign_keys is not on")
  assert(sync[1] and sync[1].synchronous == 1, "synchronous is not normal")
end

local Post = db:define("Post", {
  tableName = "post", timestamps = true, underscored = true,
  fields = {
    post_id = { type = T.INTEGER, allowNull = false, autoIncrement = true, primaryKey = true },
    text    = { type = T.TEXT, allowNull = false },
  },
})

local Genre = db:define("Genre", {
  tableName = "genre", timestamps = true, underscored = true,
  fields = {
    genre_id = { type = T.INTEGER, allowNull = false, autoIncrement = true, primaryKey = true },
    name     = { type = T.STRING(60), allowNull = false, unique = true },
  },
})

local TagPostGenre = db:define("TagPostGenre", {
  tableName = "tag_post_genre", timestamps = true, underscored = true,
  fields = {
    tag_post_genre_id = { type = T.INTEGER, primaryKey = true, autoIncrement = true },
    post_id  = { type = T.INTEGER, references = { model = "post",  key = "post_id" },
                 onDelete = "cascade", onUpdate = "cascade", unique = "unique-genre-per-post" },
    genre_id = { type = T.INTEGER, references = { model = "genre", key = "genre_id" },
                 onDelete = "cascade", onUpdate = "cascade", unique = "unique-genre-per-post" },
  },
})

assert(db:associate {
  TagPostGenre = {
    { belongsTo = "Post",  foreignKey = "post_id",  targetKey = "post_id",  as = "Post" },
    { belongsTo = "Genre", foreignKey = "genre_id", targetKey = "genre_id", as = "Genre" },
  },
  Post  = { { belongsToMany = "Genre", through = "TagPostGenre", foreignKey = "post_id",  as = "Genres" } },
  Genre = { { belongsToMany = "Post",  through = "TagPostGenre", foreignKey = "genre_id", as = "Posts" } },
})

-- The schema of WORKLOAD.md, to the letter (untimed; fails if the tables exist).
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

-- ---------------------------------------------------------------------------
-- Workload helpers
-- ---------------------------------------------------------------------------

local MOD_2_31 = 2147483648

local genre_id = {}   -- genre_id[n]: key of genre n ("genre-<n>"), from its instance
local posts = {}      -- posts[i]: the instance Post:create returned for "post <i>"

-- ids(i, s) = { ((i*7 + j*13 + s) mod G) + 1 : j = 0..K-1 }, mapped to the
-- keys the genres got. One scratch table, refilled per call (raw C does the
-- same with one buffer); junction does not keep the list it is given.
local want = {}
local function ids(i, s)
  for j = 0, K - 1 do
    want[j + 1] = genre_id[(i * 7 + j * 13 + s) % G + 1]
  end
  return want
end

-- Checks a junction result: database failures are nil, message, code.
local function check(what, v, msg, code)
  if v == nil then
    error(("%s failed: %s (code %s)"):format(what, tostring(msg), tostring(code)), 2)
  end
  return v
end

local function link_count()   -- junction rows; taken after a phase's clock stops
  return check("TagPostGenre:count", TagPostGenre:count())
end

local marked = os.getenv("JUNCTION_BENCH_MARK") == "1"
local function report(phase, calls, seconds, checksum)
  io.stdout:write(("%s %d %.6f %.1f %d\n"):format(phase, calls, seconds, calls / seconds, checksum))
  if marked then io.stdout:flush() end
end

-- Runs fn inside db:transaction, timed from before BEGIN to after COMMIT.
local function timed(phase, fn)
  local t0 = now()
  local ok, msg, code = db:transaction(fn)
  local seconds = now() - t0
  check(phase .. ": db:transaction", ok, msg, code)
  return seconds
end

-- ---------------------------------------------------------------------------
-- The eight phases
-- ---------------------------------------------------------------------------

-- 1. insert_genres: G creates; checksum = sum of the new ids.
do
  local sum = 0
  local seconds = timed("insert_genres", function()
    for n = 1, G do
      local g = check("Genre:create", Genre:create { name = "genre-" .. n })
      genre_id[n] = g.genre_id
      sum = sum + g.genre_id
    end
  end)
  report("insert_genres", G, seconds, sum)
end

-- 2. insert_posts: P creates; checksum = sum of the new ids.
do
  local sum = 0
  local seconds = timed("insert_posts", function()
    for i = 1, P do
      local p = check("Post:create", Post:create { text = "post " .. i })
      posts[i] = p
      sum = sum + p.post_id
    end
  end)
  report("insert_posts", P, seconds, sum)
end

-- 3. set_initial: setGenres(ids(i, 0)); checksum = junction rows.
do
  local seconds = timed("set_initial", function()
    for i = 1, P do
      check("post:setGenres", posts[i]:setGenres(ids(i, 0)))
    end
  end)
  report("set_initial", P, seconds, link_count())
end

-- 4. get_all: getGenres() per post, every field of every genre read;
--    checksum = sum of genre_id.
do
  local sum = 0
  local seconds = timed("get_all", function()
    for i = 1, P do
      local list = check("post:getGenres", posts[i]:getGenres())
      for k = 1, #list do
        local g = list[k]
        local id, name, created, updated = g.genre_id, g.name, g.created_at, g.updated_at
        assert(type(name) == "string" and type(created) == "string" and type(updated) == "string",
               "get_all: a genre field did not come back as text")
        sum = sum + id
      end
    end
  end)
  report("get_all", P, seconds, sum)
end

-- 5. set_shift: setGenres(ids(i, 26)); checksum = junction rows.
do
  local seconds = timed("set_shift", function()
    for i = 1, P do
      check("post:setGenres", posts[i]:setGenres(ids(i, 26)))
    end
  end)
  report("set_shift", P, seconds, link_count())
end

-- 6. eager: ONE findAll with include; checksum = (sum of post_id*genre_id) mod 2^31.
do
  local sum, nposts, links = 0, 0, 0
  local seconds = timed("eager", function()
    local all = check("Post:findAll", Post:findAll { include = { "Genres" } })
    nposts = #all
    for k = 1, nposts do
      local p = all[k]
      local pid, gs = p.post_id, p.Genres
      assert(gs, "eager: post.Genres is nil after include")
      for m = 1, #gs do
        sum = (sum + pid * gs[m].genre_id) % MOD_2_31
      end
      links = links + #gs
    end
    -- released inside the clock (decision 4): `all` is unreachable once this returns
  end)
  if nposts ~= P or links ~= P * K then
    error(("eager: got %d posts and %d links, expected %d and %d"):format(nposts, links, P, P * K))
  end
  report("eager", 1, seconds, sum)
end

-- 7. count_has: countGenres() and hasGenre(first id of ids(i, 26)) per post;
--    checksum = sum of counts + number of true answers.
do
  local sum = 0
  local seconds = timed("count_has", function()
    for i = 1, P do
      local p = posts[i]
      sum = sum + check("post:countGenres", p:countGenres())
      local has = check("post:hasGenre", p:hasGenre(genre_id[(i * 7 + 26) % G + 1]))
      assert(type(has) == "boolean", "count_has: hasGenre did not return a boolean")
      if has then sum = sum + 1 end
    end
  end)
  report("count_has", 2 * P, seconds, sum)
end

-- 8. remove_all: removeGenres(ids(i, 26)), the ids phase 5 set (not fetched);
--    checksum = junction rows left (0).
do
  local seconds = timed("remove_all", function()
    for i = 1, P do
      check("post:removeGenres", posts[i]:removeGenres(ids(i, 26)))
    end
  end)
  report("remove_all", P, seconds, link_count())
end

check("db:close", db:close())
