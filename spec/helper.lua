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

-- A fresh in-memory connection (opts passed through).
function H.open(opts)
  local db, msg, code = junction.open(":memory:", opts)
  assert(db, "junction.open failed: " .. tostring(msg) .. " (" .. tostring(code) .. ")")
  return db
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
