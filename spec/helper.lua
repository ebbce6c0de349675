-- spec/helper.lua: shared fixtures for the junction specs.
--
--   local H = require "spec.helper"
--   local db = H.open()                 -- a fresh ":memory:" connection
--   local m  = H.blog(db)               -- the seed's three models + associations, synced
--
-- Nothing here keeps state between tests: every helper builds what it returns.
local junction = require "junction"

local H = {}
H.junction = junction
H.T = junction.types

H.has_int = math.type ~= nil              -- Lua 5.3 / 5.4
H.is_jit = rawget(_G, "jit") ~= nil

-- The engine the suite runs on: JUNCTION_TEST_PG=<postgresql:// URL> runs
-- every spec that uses H.open on that server (make test-pg), else SQLite.
H.pg_url = os.getenv("JUNCTION_TEST_PG")
if H.pg_url == "" then H.pg_url = nil end
H.engine = H.pg_url and "postgres" or "sqlite"
H.is_pg = H.pg_url ~= nil

-- Raw SQL in specs that differs by engine (column types for db:exec's DDL).
H.sql = H.is_pg and { blob = "BYTEA", real = "DOUBLE PRECISION" }
                 or { blob = "BLOB", real = "REAL" }

-- The SQL of a column's storage class by SQLite's names (integer, real,
-- text, blob), on either engine: H.typeof("d") in a db:query.
function H.typeof(col)
  if not H.is_pg then return "typeof(" .. col .. ")" end
  return "(CASE pg_typeof(" .. col .. ")::text WHEN 'bigint' THEN 'integer' WHEN 'integer' THEN 'integer' " ..
         "WHEN 'smallint' THEN 'integer' WHEN 'double precision' THEN 'real' WHEN 'bytea' THEN 'blob' " ..
         "WHEN 'character varying' THEN 'text' ELSE pg_typeof(" .. col .. ")::text END)"
end

-- {====== PostgreSQL namespaces
-- Every H.open on PostgreSQL gets a schema of its own (created by a second,
-- "admin" connection, named after that connection's backend pid so that two
-- runs on one server never meet) and a search_path naming only it, so a spec
-- sees an empty database as it does with ":memory:". The schemas go (DROP
-- SCHEMA ... CASCADE) when their connection has been collected or closed,
-- at the end of each spec file, and at exit. Connections are bounded: past
-- PG_LIVE open ones, a collection closes those the specs dropped.
local PG_LIVE = 24
local pg = { admin = nil, prefix = nil, n = 0, spaces = {} }

local function pg_admin()
  if pg.admin then return pg.admin end
  local db, msg = junction.open(H.pg_url)
  assert(db, "JUNCTION_TEST_PG: cannot connect: " .. tostring(msg))
  local rows = assert(db:query("SELECT pg_backend_pid() AS pid"))
  assert(db:exec("SET lock_timeout = '5s'; SET client_min_messages = warning"))
  pg.admin, pg.prefix = db, "jt" .. tostring(rows[1].pid)
  return db
end

local function is_closed(db)
  return tostring(db):find("(closed", 1, true) ~= nil
end

-- Drops the schemas whose connection is gone (all = true: closes every
-- connection first).
local function pg_sweep(all)
  local keep = {}
  for _, space in ipairs(pg.spaces) do
    local db = space.holder[1]
    if db and all and not is_closed(db) then pcall(db.close, db) end
    if (db == nil and not space.place) or (db and is_closed(db)) or all then
      local ok, err = pg.admin:exec('DROP SCHEMA IF EXISTS "' .. space.name .. '" CASCADE')
      if not ok then io.stderr:write("spec/helper.lua: DROP SCHEMA ", space.name, ": ", tostring(err), "\n") end
    else
      keep[#keep + 1] = space
    end
  end
  pg.spaces = keep
end

-- A fresh schema; returns its name and the URL whose search_path is it.
local function pg_space()
  local admin = pg_admin()
  if #pg.spaces >= PG_LIVE then
    H.gc()
    pg_sweep(false)
  end
  pg.n = pg.n + 1
  local name = pg.prefix .. "_" .. pg.n
  assert(admin:exec('CREATE SCHEMA "' .. name .. '"'))
  local sep = H.pg_url:find("?", 1, true) and "&" or "?"
  -- a lock wait the SQLite suite would answer with SQLITE_BUSY fails after
  -- 5 s here (code 5) instead of hanging the suite
  return name, H.pg_url .. sep .. "options=-csearch_path%3D" .. name .. "%20-clock_timeout%3D5000"
end

local function pg_track(name, db)
  pg.spaces[#pg.spaces + 1] = { name = name, place = db == nil,
                                holder = setmetatable({ db }, { __mode = "v" }) }
end

-- every connection closed, every schema dropped, the admin connection closed
local function pg_end()
  if not pg.admin then return end
  pcall(pg_sweep, true)
  pcall(pg.admin.close, pg.admin)
  pg.admin = nil
end

if H.is_pg then
  -- busted's events when the helper runs under busted: each spec file's
  -- connections close and their schemas go when the file ends
  local ok, busted = pcall(require, "busted")
  if ok and type(busted) == "table" and busted.subscribe then
    busted.subscribe({ "file", "end" }, function()
      pg_end()
      return nil, true
    end)
  end
  -- and whatever is left, when the Lua state closes
  H._pg_atexit = setmetatable({}, { __gc = pg_end })
  if newproxy then   -- Lua 5.1 / LuaJIT: tables have no __gc
    local proxy = newproxy(true)
    getmetatable(proxy).__gc = getmetatable(H._pg_atexit).__gc
    H._pg_atexit = proxy
  end
end
-- }======

-- A fresh, empty database: a ":memory:" connection, or on PostgreSQL a
-- connection to a schema of its own (opts passed through).
function H.open(opts)
  local target = ":memory:"
  local name
  if H.is_pg then name, target = pg_space() end
  local db, msg, code = junction.open(target, opts)
  assert(db, "junction.open failed: " .. tostring(msg) .. " (" .. tostring(code) .. ")")
  if name then pg_track(name, db) end
  return db
end

-- A place two connections can open: a file name on SQLite, a schema's URL on
-- PostgreSQL. H.open_at(place, opts) opens it; H.drop_place(place) removes it.
function H.place()
  if not H.is_pg then return H.tmpname() end
  local name, url = pg_space()
  pg_track(name, nil)
  return url
end

function H.open_at(place, opts)
  local db, msg, code = junction.open(place, opts)
  assert(db, "junction.open failed: " .. tostring(msg) .. " (" .. tostring(code) .. ")")
  return db
end

function H.drop_place(place)
  if not H.is_pg then return H.rmdb(place) end
end

-- it (or describe) for what only SQLite has: PRAGMAs, SQLite's SQL text or
-- codes, files, ":memory:", WAL, busy timeouts. On PostgreSQL the block is
-- reported pending under its own name, which says why:
--   local sqlite_it = H.sqlite_only(it, pending)
--   sqlite_it("PRAGMA foreign_keys is on in every connection", function() ... end)
function H.sqlite_only(block, pending)
  assert(type(block) == "function" and type(pending) == "function",
    "H.sqlite_only(it or describe, pending)")
  if not H.is_pg then return block end
  return function(name)
    return pending(name .. " [SQLite only]")
  end
end

-- it (or describe) for what only PostgreSQL has; pending on SQLite, and
-- when JUNCTION_TEST_PG is not set (make test-pg sets it).
function H.pg_only(block, pending)
  assert(type(block) == "function" and type(pending) == "function",
    "H.pg_only(it or describe, pending)")
  if H.is_pg then return block end
  return function(name)
    return pending(name .. " [PostgreSQL only: set JUNCTION_TEST_PG]")
  end
end

-- A temporary file name that does not exist yet, and its cleanup.
function H.tmpname()
  local p = os.tmpname()
  os.remove(p)
  return p .. ".sqlite3"
end

function H.rmdb(path)
  for _, suffix in ipairs { "", "-wal", "-shm", "-journal" } do os.remove(path .. suffix) end
end

-- The seed's three models, from their one definition in examples/models/
-- (one file per model, each returning function(db, types) -> model,
-- associations).  extra_junction_fields: optional table of extra fields for
-- TagPostGenre (e.g. weight), added to its declaration as it is defined.
-- Returns Post, Genre, TagPostGenre and the associations the files declare.
local SEED = { "post", "genre", "tag_post_genre" }

function H.define_blog(db, extra_junction_fields)
  -- what the model files see as db: define adds the extra junction fields
  local shim = setmetatable({}, { __index = function(_, k)
    local v = db[k]
    if type(v) == "function" then return function(_, ...) return v(db, ...) end end
    return v
  end })
  function shim.define(_, name, spec)
    if name == "TagPostGenre" and extra_junction_fields then
      local fields = {}
      for k, v in pairs(spec.fields) do fields[k] = v end
      for k, v in pairs(extra_junction_fields) do fields[k] = v end
      local copy = {}
      for k, v in pairs(spec) do copy[k] = v end
      copy.fields = fields
      spec = copy
    end
    return db:define(name, spec)
  end
  local models, assocs = {}, {}
  for i, file in ipairs(SEED) do
    local define = assert(loadfile("examples/models/" .. file .. ".lua"))()
    local model, list = define(shim, junction.types)
    models[i] = model
    assocs[model.name] = list
  end
  return models[1], models[2], models[3], assocs
end

-- Defines, associates and syncs the blog; returns { Post=, Genre=, TagPostGenre= }.
function H.blog(db, extra_junction_fields)
  local Post, Genre, TagPostGenre, assocs = H.define_blog(db, extra_junction_fields)
  assert(db:associate(assocs) == true)
  assert(db:sync())
  return { Post = Post, Genre = Genre, TagPostGenre = TagPostGenre }
end

-- Creates genres named by the list; returns the instances (ids 1..n on a fresh db).
function H.genres(Genre, names)
  local out = {}
  for i, name in ipairs(names or { "rock", "jazz", "pop", "folk", "metal" }) do
    out[i] = assert(Genre:create { name = name })
  end
  return out
end

-- Sorted array of the values of field `key` over a list of instances or rows.
-- Values are normalised with tonumber when they look numeric, so 5.1 and 5.4 compare alike.
function H.ids(list, key)
  local out = {}
  for i, x in ipairs(list) do
    local v = x[key]
    out[i] = tonumber(v) or v
  end
  table.sort(out, function(a, b)
    if type(a) == type(b) then return a < b end
    return type(a) < type(b)
  end)
  return out
end

-- A log recorder: returns opts-compatible log function and the array of { sql=, params= }.
function H.recorder()
  local entries = {}
  local function log(sql, params)
    local copy = {}
    if type(params) == "table" then
      for i, v in pairs(params) do copy[i] = v end
    end
    entries[#entries + 1] = { sql = sql, params = copy }
  end
  return log, entries
end

-- Entries whose SQL matches a Lua pattern (case-insensitive match on the upper-cased text).
function H.matching(entries, pattern, from)
  local out = {}
  for i = (from or 1), #entries do
    if entries[i].sql:upper():find(pattern:upper()) then out[#out + 1] = entries[i] end
  end
  return out
end

-- Is there a table or an index of that name (on either engine)?
function H.exists(db, name)
  local rows
  if db:engine() == "postgres" then
    rows = assert(db:query("SELECT 1 AS x FROM pg_class WHERE relname = ? " ..
                           "AND relnamespace = current_schema()::regnamespace", name))
  else
    rows = assert(db:query("SELECT 1 AS x FROM sqlite_master WHERE name = ?", name))
  end
  return rows[1] ~= nil
end

-- The table an index is on, or nil (on either engine).
function H.index_table(db, name)
  local rows
  if db:engine() == "postgres" then
    rows = assert(db:query("SELECT tablename AS t FROM pg_indexes WHERE schemaname = current_schema() " ..
                           "AND indexname = ?", name))
  else
    rows = assert(db:query("SELECT tbl_name AS t FROM sqlite_master WHERE type = 'index' AND name = ?", name))
  end
  return rows[1] and rows[1].t
end

-- The set of the database's tables (name -> true), on either engine.
function H.tables(db)
  local sql = db:engine() == "postgres"
    and "SELECT table_name AS name FROM information_schema.tables WHERE table_schema = current_schema()"
    or "SELECT name FROM sqlite_master WHERE type = 'table'"
  local out = {}
  for _, r in ipairs(assert(db:query(sql))) do out[r.name] = true end
  return out
end

-- A table's columns in order, as { name = ..., notnull = 1 or 0 }.
function H.columns(db, tbl)
  local sql = db:engine() == "postgres"
    and "SELECT column_name AS name, CASE WHEN is_nullable = 'NO' THEN 1 ELSE 0 END AS notnull " ..
        "FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = ? " ..
        "ORDER BY ordinal_position"
    or "SELECT name, \"notnull\" FROM pragma_table_info(?) ORDER BY cid"
  return assert(db:query(sql, tbl))
end

-- A table's foreign keys: column -> { on_update = "CASCADE", on_delete = "NO ACTION", ... }.
local pg_actions = { a = "NO ACTION", r = "RESTRICT", c = "CASCADE", n = "SET NULL", d = "SET DEFAULT" }
function H.foreign_keys(db, tbl)
  local out = {}
  if db:engine() == "postgres" then
    for _, r in ipairs(assert(db:query(
        "SELECT a.attname AS col, c.confupdtype AS u, c.confdeltype AS d FROM pg_constraint c " ..
        "JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = ANY (c.conkey) " ..
        "WHERE c.contype = 'f' " ..
        "AND c.conrelid = (quote_ident(current_schema()) || '.' || quote_ident(?::text))::regclass",
        tbl))) do
      out[r.col] = { on_update = pg_actions[r.u], on_delete = pg_actions[r.d] }
    end
  else
    for _, r in ipairs(assert(db:query("SELECT \"from\" AS col, on_update, on_delete FROM pragma_foreign_key_list(?)",
                                       tbl))) do
      out[r.col] = { on_update = r.on_update, on_delete = r.on_delete }
    end
  end
  return out
end

-- The CREATE statement of a table or index from sqlite_master.
function H.ddl(db, name)
  local rows = assert(db:query("SELECT sql FROM sqlite_master WHERE name = ?", name))
  return rows[1] and rows[1].sql
end

-- Busy-waits (CPU) for at least `seconds` of wall time measured by os.time/os.clock.
function H.sleep(seconds)
  local t0 = os.clock()
  local w0 = os.time()
  while os.clock() - t0 < seconds and os.time() - w0 < seconds + 1 do end
end

-- Runs fn and returns the error message (as a string); fails the test if fn does not raise.
function H.raises(fn, ...)
  local ok, err = pcall(fn, ...)
  assert(not ok, "expected an error, got success")
  return tostring(err)
end

-- Asserts that msg contains every plain substring in the list.
function H.mentions(msg, ...)
  for _, s in ipairs { ... } do
    if not msg:find(s, 1, true) then
      error(("error message %q does not mention %q"):format(msg, s), 2)
    end
  end
end

-- Number of keys in a table.
function H.nkeys(t)
  local n = 0
  for _ in pairs(t) do n = n + 1 end
  return n
end

-- Overwrites stale stack slots (5.1 and LuaJIT mark whole frames), then collects twice.
local function scrub()
  local a1,a2,a3,a4,a5,a6,a7,a8,a9,a10,a11,a12,a13,a14,a15,a16,a17,a18,a19,a20,a21,a22,a23,a24,a25,a26,a27,a28,a29,a30,a31,a32,a33,a34,a35,a36,a37,a38,a39,a40,a41,a42,a43,a44,a45,a46,a47,a48,a49,a50,a51,a52,a53,a54,a55,a56,a57,a58,a59,a60 -- luacheck: ignore
  return a1
end
function H.gc()
  scrub()
  collectgarbage()
  collectgarbage()
end

-- A unique temp directory (created) and a recursive cleanup.
function H.tmpdir()
  local p = os.tmpname()
  os.remove(p)
  assert(os.execute("mkdir -p '" .. p .. "'"))
  return p
end

function H.rmdir(p)
  if p and p:match("^/tmp/") then os.execute("rm -rf '" .. p .. "'") end
end

function H.writefile(path, text)
  local f = assert(io.open(path, "wb"))
  f:write(text)
  f:close()
end

return H
