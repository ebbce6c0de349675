#!/usr/bin/env lua5.4
--[[
bench/blog.lua -- the blog workload (bench/WORKLOAD.md) on junction's public
API, written the way a user writes the loop, so that its figures can be read
as ratios to bench/raw_blog.c.

  lua5.4 bench/blog.lua [--schema ddl|sync] [--schema-only] DBPATH [P G K]
                                                    (defaults ddl, 20000 200 5)

DBPATH may also be a PostgreSQL URL (postgresql://user@host:port/db): the
same workload through junction's PostgreSQL engine, against
bench/raw_blog_pg.c (bench/run.sh --pg); the ddl schema is then the
workload's DDL written for PostgreSQL, as raw_blog_pg makes it.

The models are the seed's, loaded from examples/models/ with
junction.loadModels. The tables:

  --schema ddl   (default) the workload's DDL text, run with db:exec (one
                 UNIQUE index on tag_post_genre);
  --schema sync  what db:sync() makes from the models: a user's schema
                 (docs/API.md, "Models": the UNIQUE group and the extra index
                 on the foreign key it does not lead with).

--schema-only makes the tables and stops: bench/run.sh gives the database it
leaves to `raw_blog --schema-from`, so that raw C runs on the same tables and
indexes. DBPATH must be a new database file: bench/run.sh deletes DBPATH,
DBPATH-wal and DBPATH-shm first; a database that has the tables is refused.
Stdout holds exactly eight lines, one per phase:

  <phase> <calls> <seconds> <calls/s> <checksum>

The loop is what a user writes: the instances create returned are kept and
used (genres by number, posts by number), each call gets a new list of genre
instances, every result is checked with assert (failures come back as nil,
message, code: docs/API.md).

Clock: CLOCK_MONOTONIC, through lua-posix (posix.time.clock_gettime) or,
where lua-posix has no build for this Lua (Debian 12 has none for 5.4),
through lua-system's monotime(), which reads the same clock. os.clock()
(CPU time only) is the last resort, with a warning on stderr.

Set JUNCTION_BENCH_MARK=1 to write each phase line unbuffered, which
bench/callgrind.sh uses to cut its profile at phase boundaries.

JUNCTION_BENCH_GC=incremental|generational|stop sets Lua's collector before
the first phase (collectgarbage(mode); "generational" needs Lua 5.4; "stop"
never collects): for finding how much of a phase's growth with P is the
collector walking the instances the program keeps (docs/PERFORMANCE.md,
"Scaling"). Unset: the runtime's default (incremental).
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
                      "time): figures are not comparable with raw_blog\n")
      now = os.clock
    end
  end
end

-- ---------------------------------------------------------------------------
-- Command line
-- ---------------------------------------------------------------------------

local function usage(msg)
  if msg then io.stderr:write("blog.lua: ", msg, "\n") end
  io.stderr:write("usage: lua bench/blog.lua [--schema ddl|sync] [--schema-only] DBPATH [P G K]",
                  "   (defaults ddl, 20000 200 5)\n")
  os.exit(2)
end

local function count_arg(s, what)
  local v = tonumber(s)
  if not (s:match("^%d+$") and v and v >= 1 and v <= 100000000) then
    usage(what .. " must be a positive integer, got \"" .. s .. "\"")
  end
  return math.floor(v)
end

local schema, schema_only = "ddl", false
local args = {}
do
  local k = 1
  while k <= #arg do
    local a = arg[k]
    if a == "--schema" then
      schema = arg[k + 1]
      if schema ~= "ddl" and schema ~= "sync" then usage("--schema must be ddl or sync") end
      k = k + 2
    elseif a == "--schema-only" then
      schema_only = true
      k = k + 1
    elseif a:sub(1, 2) == "--" then
      usage("unknown option " .. a)
    else
      args[#args + 1] = a
      k = k + 1
    end
  end
end
if #args ~= 1 and #args ~= 4 then usage() end
local DBPATH = args[1]
local P = args[2] and count_arg(args[2], "P") or 20000
local G = args[3] and count_arg(args[3], "G") or 200
local K = args[4] and count_arg(args[4], "K") or 5
if 13 * K > G then
  usage(("ids() needs 13*K <= G to give K distinct genres (K=%d, G=%d)"):format(K, G))
end

-- ---------------------------------------------------------------------------
-- Connection, the seed's models, the tables
-- ---------------------------------------------------------------------------

local junction = require "junction"

local pg = DBPATH:match("^postgres") ~= nil
local db
if pg then
  db = assert(junction.open(DBPATH))
else
  db = assert(junction.open(DBPATH, { journal_mode = "wal", synchronous = "normal" }))
end

if pg then
  local rows = assert(db:query(
    "SELECT tablename AS name FROM pg_catalog.pg_tables WHERE schemaname = current_schema()" ..
    " AND tablename IN ('post', 'genre', 'tag_post_genre')"))
  if #rows > 0 then
    io.stderr:write("blog.lua: ", DBPATH, ": table '", rows[1].name,
                    "' already exists (the database must not hold the tables)\n")
    os.exit(1)
  end
else
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

local here = arg[0]:match("^(.*)[/\\]") or "."   -- bench/, wherever the run starts
local models = junction.loadModels(db, here .. "/../examples/models")
local Post, Genre, TagPostGenre = models.Post, models.Genre, models.TagPostGenre
assert(Post and Genre and TagPostGenre, "examples/models/ lacks Post, Genre or TagPostGenre")

if schema == "sync" then
  assert(db:sync())
elseif pg then
  -- The workload's DDL written for PostgreSQL, as bench/raw_blog_pg.c makes it.
  assert(db:exec([[
CREATE TABLE post (post_id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
  text text NOT NULL, created_at text NOT NULL, updated_at text NOT NULL);
CREATE TABLE genre (genre_id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
  name varchar(60) NOT NULL UNIQUE, created_at text NOT NULL, updated_at text NOT NULL);
CREATE TABLE tag_post_genre (tag_post_genre_id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
  post_id bigint NOT NULL REFERENCES post(post_id) ON DELETE CASCADE ON UPDATE CASCADE,
  genre_id bigint NOT NULL REFERENCES genre(genre_id) ON DELETE CASCADE ON UPDATE CASCADE,
  created_at text NOT NULL, updated_at text NOT NULL,
  UNIQUE (post_id, genre_id));]]))
else
  -- The workload's DDL, to the letter.
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
end
if schema_only then
  assert(db:close())
  os.exit(0)
end

-- ---------------------------------------------------------------------------
-- Reporting and timing
-- ---------------------------------------------------------------------------

local gc_mode = os.getenv("JUNCTION_BENCH_GC")
if gc_mode and gc_mode ~= "" then
  if gc_mode ~= "incremental" and gc_mode ~= "generational" and gc_mode ~= "stop" then
    usage("JUNCTION_BENCH_GC must be incremental, generational or stop")
  end
  if gc_mode == "generational" and _VERSION ~= "Lua 5.4" then
    usage("JUNCTION_BENCH_GC=generational needs Lua 5.4")
  end
  collectgarbage("collect")
  if gc_mode == "stop" then collectgarbage("stop")
  elseif _VERSION == "Lua 5.4" then collectgarbage(gc_mode) end
end

local marked = os.getenv("JUNCTION_BENCH_MARK") == "1"
local function report(phase, calls, seconds, checksum)
  io.stdout:write(("%s %d %.6f %.1f %d\n"):format(phase, calls, seconds, calls / seconds, checksum))
  if marked then io.stdout:flush() end
end

-- Runs fn inside db:transaction, timed from before BEGIN to after COMMIT.
local function timed(fn)
  local t0 = now()
  assert(db:transaction(fn))
  return now() - t0
end

-- The junction rows, for the checksum of the write phases (after the clock).
local function link_count()
  return assert(TagPostGenre:count())
end

-- ---------------------------------------------------------------------------
-- The eight phases
-- ---------------------------------------------------------------------------

local genres = {}   -- genres[n]: the instance Genre:create returned for "genre-<n>"
local posts = {}    -- posts[i]: the instance Post:create returned for "post <i>"

-- The genres of post i in round s: genre numbers ((i*7 + j*13 + s) mod G) + 1,
-- j = 0..K-1, as a new list of instances.
local function genres_for(i, s)
  local list = {}
  for j = 0, K - 1 do
    list[j + 1] = genres[(i * 7 + j * 13 + s) % G + 1]
  end
  return list
end

-- 1. insert_genres: G creates; checksum = sum of the new ids.
do
  local sum = 0
  local seconds = timed(function()
    for n = 1, G do
      local genre = assert(Genre:create { name = "genre-" .. n })
      genres[n] = genre
      sum = sum + genre.genre_id
    end
  end)
  report("insert_genres", G, seconds, sum)
end

-- 2. insert_posts: P creates; checksum = sum of the new ids.
do
  local sum = 0
  local seconds = timed(function()
    for i = 1, P do
      local post = assert(Post:create { text = "post " .. i })
      posts[i] = post
      sum = sum + post.post_id
    end
  end)
  report("insert_posts", P, seconds, sum)
end

-- 3. set_initial: setGenres per post; checksum = junction rows.
do
  local seconds = timed(function()
    for i = 1, P do
      assert(posts[i]:setGenres(genres_for(i, 0)))
    end
  end)
  report("set_initial", P, seconds, link_count())
end

-- 4. get_all: getGenres() per post, every field of every genre read;
--    checksum = sum of genre_id.
do
  local sum, chars = 0, 0
  local seconds = timed(function()
    for i = 1, P do
      for _, genre in ipairs(assert(posts[i]:getGenres())) do
        sum = sum + genre.genre_id
        chars = chars + #genre.name + #genre.created_at + #genre.updated_at
      end
    end
  end)
  assert(chars > 0, "get_all: no text read")
  report("get_all", P, seconds, sum)
end

-- 5. set_shift: setGenres per post, 3 genres kept, 2 replaced; checksum = junction rows.
do
  local seconds = timed(function()
    for i = 1, P do
      assert(posts[i]:setGenres(genres_for(i, 26)))
    end
  end)
  report("set_shift", P, seconds, link_count())
end

-- 6. eager: ONE findAll with include; checksum = (sum of post_id*genre_id) mod 2^31.
do
  local MOD_2_31 = 2147483648
  local sum, nposts, links = 0, 0, 0
  local seconds = timed(function()
    for _, post in ipairs(assert(Post:findAll { include = { "Genres" } })) do
      local pid = post.post_id
      for _, genre in ipairs(post.Genres) do
        sum = (sum + pid * genre.genre_id) % MOD_2_31
        links = links + 1
      end
      nposts = nposts + 1
    end
  end)
  if nposts ~= P or links ~= P * K then
    error(("eager: got %d posts and %d links, expected %d and %d"):format(nposts, links, P, P * K))
  end
  report("eager", 1, seconds, sum)
end

-- 7. count_has: countGenres() and hasGenre(the first genre set in phase 5)
--    per post; checksum = sum of counts + number of true answers.
do
  local sum = 0
  local seconds = timed(function()
    for i = 1, P do
      local post = posts[i]
      sum = sum + assert(post:countGenres())
      local has, err = post:hasGenre(genres[(i * 7 + 26) % G + 1])
      if has == nil then error(err) end
      if has then sum = sum + 1 end
    end
  end)
  report("count_has", 2 * P, seconds, sum)
end

-- 8. remove_all: removeGenres(the genres phase 5 set, not fetched);
--    checksum = junction rows left (0).
do
  local seconds = timed(function()
    for i = 1, P do
      assert(posts[i]:removeGenres(genres_for(i, 26)))
    end
  end)
  report("remove_all", P, seconds, link_count())
end

assert(db:close())
