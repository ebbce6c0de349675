--[==[
fuzz.lua -- every public function and method, called with generated arguments.

  lua fuzz.lua SEED CALLS [CHECK_EVERY]

Calls junction.open, the junction.types/inflect helpers, every connection
method (define, associate, sync, exec, query, transaction, close, model,
changes, lastInsertId), every Model method, every instance method, field
reads and writes, and every generated association method (camelCase and
snake_case), with arguments drawn from: nil, booleans, NaN, +-inf, 2^53+1,
2^63, math.huge, integer limits, empty/huge strings, strings with NUL bytes
and SQL fragments, deep and cyclic tables, tables whose metamethods raise,
io.stdout, functions (that return, raise, raise a table, yield, close the
connection, call back into junction), coroutines, closed connections,
unsaved/destroyed instances, and instances and models of another connection.
Wrong `self` values are passed to methods too, and now and then __gc is
called by hand. A tenth of the calls run inside a coroutine. The world's
connection has a `log` function that, for some calls, raises, yields or
closes the connection in the middle of a statement.

Each call must either return or raise:
  * a raise must be a string (or the exact value our callback raised) that
    names something: the method, the model, the field, or "closed connection";
  * nil, when more values come back, must be followed by a message string and
    a number code; a bare nil only where the API allows it;
  * a write method (create, save, setGenres, ...) that raised or returned
    nil, message, code must have written nothing (a digest of the three seed
    tables is compared before and after).
Every CHECK_EVERY calls (default 500) and at the end: integrity_check,
foreign_key_check empty, every junction row refers to an existing post and
genre, the seed tables still exist. Each call is written to a trace file
first (fuzz-SEED.trace) so that a crash can be located.

Prints "ok - fuzz seed=S calls=N ..." or FAIL lines; exits 0 or 1.
]==]

local here = (arg and arg[0] or ""):match("^(.*)/[^/]*$") or "."
package.path = here .. "/?.lua;" .. package.path

local rel = require "rel"
local junction = require "junction"
local fmt = string.format
local unpack = rawget(table, "unpack") or unpack

local SEED = tonumber(arg[1]) or 1
local CALLS = tonumber(arg[2]) or 10000
local CHECK_EVERY = tonumber(arg[3]) or 500
local TMPDIR = (os.getenv("RELIABILITY_TMP") or "/tmp") .. "/junction-fuzz-" .. SEED
os.execute("rm -rf " .. rel.shq(TMPDIR) .. " && mkdir -p " .. rel.shq(TMPDIR))
local TRACE = os.getenv("FUZZ_TRACE")
  or (os.getenv("RELIABILITY_LOGS") and (os.getenv("RELIABILITY_LOGS") .. "/fuzz-" .. SEED .. ".trace"))
  or (TMPDIR .. ".trace")

-- FUZZ_EXCLUDE=a,b leaves out features while a known bug is being chased
-- (close: callbacks that close the connection; date: the DATE fields;
-- gc: __gc by hand; yield:
-- callbacks that yield; coroutine: calls inside coroutines). CI sets none.
local EXCLUDE = {}
for w in (os.getenv("FUZZ_EXCLUDE") or ""):gmatch("[%w_]+") do EXCLUDE[w] = true end

-- Classes of call added on top of the above (docs/RELIABILITY.md, "Classes"):
--   mt_wrong      every metamethod of every junction type, called by hand with
--                 a first argument of another type (and other wrong ones)
--   mm_args       option tables, where clauses and key lists that carry a
--                 metatable whose __index/__len/__pairs/__newindex raise,
--                 close the connection or call back into junction
--   forged_types  field types that are forged tables, or a real type whose
--                 code was changed for the duration of one define
-- FUZZ_CLASSES=all (or a comma list, or "none") replaces the default list,
-- which holds the classes that pass on main.
--   log_mutate    the world's log function, in the middle of a call, rewrites
--                 the call's argument tables and the fields of its instances
--                 (and of the world's), then collects garbage
local ALL_FUZZ_CLASSES = { "mt_wrong", "mm_args", "forged_types", "log_mutate" }
local CLASS = {}
do
  local spec = os.getenv("FUZZ_CLASSES") or "mt_wrong,mm_args,forged_types,log_mutate"
  if spec == "all" then spec = table.concat(ALL_FUZZ_CLASSES, ",") end
  for w in spec:gmatch("[%w_]+") do
    local known = w == "none"
    for _, c in ipairs(ALL_FUZZ_CLASSES) do if c == w then known = true end end
    if not known then error("FUZZ_CLASSES: unknown class '" .. w .. "'", 0) end
    CLASS[w] = w ~= "none" or nil
  end
end

local rng = rel.prng(SEED, 99)
local trace = assert(io.open(TRACE, "w"))
trace:setvbuf("line")

local failures, failure_keys = {}, {}
local stats = { calls = 0, returned = 0, raised = 0, failed = 0, checks = 0, worlds = 0,
                in_coroutine = 0, gc = 0 }

local notes, note_keys = {}, {}
local function note(kind, text, example)
  local key = kind .. ":" .. text:gsub("%d+", "N"):sub(1, 100)
  if note_keys[key] then note_keys[key].n = note_keys[key].n + 1; return end
  local v = { kind = kind, text = text .. "  <- " .. example, n = 1, call = stats.calls }
  note_keys[key] = v
  notes[#notes + 1] = v
end

local function violation(kind, text, example)
  local key = kind .. ":" .. text:gsub("%d+", "N"):gsub("0x%x+", "P"):gsub("got [%w%.*]+", "got T"):sub(1, 160)
  if failure_keys[key] then
    failure_keys[key].n = failure_keys[key].n + 1
    return
  end
  local v = { kind = kind, text = example and (text .. "  <- " .. example) or text, n = 1, call = stats.calls }
  failure_keys[key] = v
  failures[#failures + 1] = v
end

-- ---------------------------------------------------------------------------
-- Sentinels raised by our own callbacks
-- ---------------------------------------------------------------------------

local SENT_TABLE = setmetatable({}, { __tostring = function() return "fuzz table error" end })
local function is_ours(e)
  if rawequal(e, SENT_TABLE) then return true end
  return type(e) == "string" and e:find("fuzz", 1, true) ~= nil
end

-- ---------------------------------------------------------------------------
-- The world: a WAL database with the seed's models, another connection, a
-- closed connection
-- ---------------------------------------------------------------------------

local W = {}                -- current world
local SHARED = {}           -- tables every call may get: never rewritten
local log_mode = nil        -- what the world's log function does now

local function log_fn()
  local m = log_mode
  if m == nil then return end
  log_mode = nil            -- once per call
  if m == "raise" then error("fuzz log raise", 0)
  elseif m == "raise_table" then error(SENT_TABLE)
  elseif m == "yield" then
    if EXCLUDE.yield then return end
    local ok, e = pcall(coroutine.yield, "fuzz-yield")
    if not ok then error("fuzz yield failed: " .. tostring(e), 0) end
  elseif m == "close" then
    if EXCLUDE.close then return end
    W.closed_by_callback = true
    W.db:close()
  elseif m == "reenter" then
    local r = { pcall(W.Post.count, W.Post) }
    local _ = r
  elseif m == "mutate" then
    -- What junction binds must not be what a callback can change or free.
    for _, a in ipairs(W.cur_args or {}) do
      if type(a) == "table" and not SHARED[a] then
        for k, v in next, a do
          if type(v) ~= "table" then rawset(a, k, rng:pick { "mutated " .. tostring(k), 0 / 0, 2 ^ 63, false }) end
        end
      elseif junction.type and junction.type(a) == "instance" then
        for _, f in ipairs { "text", "name", "post_id", "genre_id" } do
          pcall(function() a[f] = string.rep("z", 100) end)
        end
      end
    end
    for _, p in ipairs(W.posts) do pcall(function() p.text = "mutated" .. rng:next() end) end
    collectgarbage()
  end
end

local function populate(w)
  local ok = pcall(function()
    for i = 1, 8 do
      local p = w.Post:create { text = "post " .. i }
      if p then w.posts[#w.posts + 1] = p end
    end
    for i = 1, 10 do
      local g = w.Genre:create { name = fmt("genre %d.%d", stats.calls, i) }
      if g then w.genres[#w.genres + 1] = g end
    end
    for _, p in ipairs(w.posts) do
      p:setGenres { w.genres[1 + rng:next() % #w.genres], w.genres[1 + rng:next() % #w.genres].genre_id }
    end
  end)
  return ok
end

local world_n = 0
local function new_world()
  if W.db then pcall(W.db.close, W.db) end
  if W.other then pcall(W.other.db.close, W.other.db) end
  world_n = world_n + 1
  stats.worlds = stats.worlds + 1
  local path = fmt("%s/world-%d.sqlite3", TMPDIR, world_n)
  rel.rm_db(path)
  if world_n > 2 then rel.rm_db(fmt("%s/world-%d.sqlite3", TMPDIR, world_n - 2)) end
  local w = { path = path, posts = {}, genres = {} }
  w.db = assert(junction.open(path, { journal_mode = "wal", synchronous = "off", log = log_fn }))
  w.Post, w.Genre, w.TPG = rel.seed_models(w.db, junction)
  assert(w.db:sync())
  W = w
  populate(w)
  -- Another connection with its own models and instances.
  local o = { db = assert(junction.open(":memory:")) }
  o.Post, o.Genre, o.TPG = rel.seed_models(o.db, junction)
  assert(o.db:sync())
  o.post = o.Post:create { text = "other" }
  o.genre = o.Genre:create { name = "other" }
  w.other = o
  -- A closed connection, its models and an instance.
  local c = { db = assert(junction.open(":memory:")) }
  c.Post, c.Genre = rel.seed_models(c.db, junction)
  assert(c.db:sync())
  c.post = c.Post:create { text = "closed" }
  c.db:close()
  w.closed = c
  -- Odd instances.
  w.built = w.Post:build { text = "built" }
  local d = w.Post:create { text = "destroyed" }
  if d then d:destroy() end
  w.destroyed = d
  w.tpg = w.TPG:findOne {}
  return w
end

-- ---------------------------------------------------------------------------
-- Values
-- ---------------------------------------------------------------------------

local INJECT = {
  "'; DROP TABLE post; --", "\"; DROP TABLE genre; --", "1 OR 1=1", "' OR '1'='1",
  "x') OR ('1'='1", "); DELETE FROM tag_post_genre; --", "`", "[post]", "?", "?1", ":name",
  "@x", "$x", "NULL", "%", "_", "\\", "' UNION SELECT name FROM sqlite_master --",
  "/*", "*/", "--", "1; PRAGMA foreign_keys=OFF", "json_each", "[]",
}

local NUMS = { 0, 1, -1, 2, 3, 7, 42, 0.5, -0.0, 1 / 0, -1 / 0, 0 / 0, 2 ^ 31, 2 ^ 32, 2 ^ 53,
  2 ^ 53 + 2, 2 ^ 63, -2 ^ 63, 2 ^ 64, 1e308, -1e308, 5e-324, math.huge, -math.huge, 1e15 + 0.3 }
if math.maxinteger then
  NUMS[#NUMS + 1] = math.maxinteger
  NUMS[#NUMS + 1] = math.mininteger
  NUMS[#NUMS + 1] = (load("return 9007199254740993"))()   -- 2^53 + 1, an integer
  NUMS[#NUMS + 1] = math.maxinteger - 1
end

local HUGE = string.rep("a", 1000000)
local BIG = string.rep("xyz'\"", 1000)

local STRS = {
  "", "x", "text", "name", "post_id", "genre_id", "created_at", "updated_at", "tag_post_genre_id",
  "Genres", "Genre", "Post", "Posts", "TagPostGenre", "where", "order", "limit", "offset",
  "attributes", "include", "through", "mode", "force", "in", "notIn", "like", "between", "and",
  "or", "not", "eq", "ne", "_in", "isNull", "1", "-1", "1.5", "nan", "DESC", "genre_id DESC",
  "text ASC", "name; DROP TABLE post", "\0", "a\0b", "text\0", "\255\254\0\1", ":memory:",
  "deferred", "exclusive", "immediate", "wal", "off", "cascade", "post", "genre", "tag_post_genre",
  "sqlite_master", "rowid", "oid", "_rowid_", "__index", "__gc", "save", "destroy",
}
for _, s in ipairs(INJECT) do STRS[#STRS + 1] = s end

local gen_value

local function deep_table(n)
  local t = {}
  local cur = t
  for _ = 1, n do
    local nx = {}
    cur[1], cur.where, cur["and"] = nx, nx, { nx }
    cur = nx
  end
  return t
end
local DEEP_MED, DEEP_BIG = deep_table(300), deep_table(100000)
local CYCLIC = {}
CYCLIC[1], CYCLIC.where, CYCLIC["and"], CYCLIC.include, CYCLIC.text = CYCLIC, CYCLIC, { CYCLIC }, CYCLIC, CYCLIC
-- includes shaped right (each level a real association: Post's Genres,
-- Genre's Posts) nested past any limit, and one inside itself
local function include_chain(n)
  local top = { association = "Genres" }
  local cur = top
  for i = 2, n do
    local nx = { association = i % 2 == 0 and "Posts" or "Genres" }
    cur.include = { nx }
    cur = nx
  end
  return { top }
end
local DEEP_INCLUDE = include_chain(100000)
local CYCLIC_INCLUDE = { association = "Genres", include = { { association = "Posts" } } }
CYCLIC_INCLUDE.include[1].include = { CYCLIC_INCLUDE }
CYCLIC_INCLUDE = { CYCLIC_INCLUDE }
local CYCLIC_WHERE = { text = {} }
CYCLIC_WHERE.text["in"] = CYCLIC_WHERE.text
CYCLIC_WHERE["or"] = { CYCLIC_WHERE }
local RAISING = setmetatable({}, {
  __index = function() error("fuzz __index raise", 0) end,
  __newindex = function() error("fuzz __newindex raise", 0) end,
  __len = function() error("fuzz __len raise", 0) end,
  __pairs = function() error("fuzz __pairs raise", 0) end,
  __tostring = function() error("fuzz __tostring raise", 0) end,
  __eq = function() error("fuzz __eq raise", 0) end,
})
local LEN_LIES = setmetatable({ 1, 2 }, { __len = function() return 1e9 end })
local BIG_ARRAY = {}
for i = 1, 5000 do BIG_ARRAY[i] = i end
for _, t in ipairs { DEEP_MED, DEEP_BIG, CYCLIC, CYCLIC_WHERE, RAISING, LEN_LIES, BIG_ARRAY, DEEP_INCLUDE,
                     CYCLIC_INCLUDE } do
  SHARED[t] = true
end
for _, t in pairs(junction.types) do if type(t) == "table" then SHARED[t] = true end end

-- mm_args: t with a metatable whose reading metamethods call back: raise,
-- close the world's connection, query through junction, or collect garbage.
local function mm_table(t)
  local act = rng:pick { "raise", "close", "query", "collect", "none" }
  local function f()
    if act == "raise" then error("fuzz metamethod raise", 0)
    elseif act == "close" then
      if W.db and not EXCLUDE.close then W.closed_by_callback = true; W.db:close() end
    elseif act == "query" then
      if W.Post then pcall(W.Post.findAll, W.Post, { include = { "Genres" } }) end
      if W.db then pcall(W.db.query, W.db, "SELECT * FROM tag_post_genre") end
    elseif act == "collect" then collectgarbage()
    end
  end
  return setmetatable(t, {
    __index = function() f(); return nil end,
    __newindex = function(x, k, v) f(); rawset(x, k, v) end,
    __len = function() f(); return 3 end,
    __pairs = function(x) f(); return next, x, nil end,
  })
end

local DEAD_CO = coroutine.create(function() end)
coroutine.resume(DEAD_CO)

local FUNCS = {
  function() return 1 end,
  function(...) return ... end,
  function() error("fuzz function raise", 0) end,
  function() error(SENT_TABLE) end,
  function() return nil, "fuzz", 1 end,
  function()
    if EXCLUDE.yield then return true end
    local ok, e = pcall(coroutine.yield, "fuzz-yield")
    if not ok then error("fuzz yield failed: " .. tostring(e), 0) end
    return true
  end,
  function() if W.db and not EXCLUDE.close then W.closed_by_callback = true; W.db:close() end end,
  function() return W.Post and W.Post:count() end,
  function() return W.db and W.db:transaction(function() return W.Post:count() end) end,
  function() collectgarbage() end,
}

local function pick_instance()
  local w = W
  local r = rng:int(1, 12)
  if r <= 4 and #w.posts > 0 then return w.posts[rng:int(1, #w.posts)] end
  if r <= 7 and #w.genres > 0 then return w.genres[rng:int(1, #w.genres)] end
  if r == 8 then return w.built end
  if r == 9 then return w.destroyed end
  if r == 10 then return rng:chance(0.5) and w.other.post or w.other.genre end
  if r == 11 then return w.closed.post end
  return w.tpg
end

local function pick_userdata()
  local w = W
  return rng:pick {
    io.stdout, w.db, w.other.db, w.closed.db, w.Post, w.Genre, w.TPG, w.other.Post,
    w.closed.Post, pick_instance(), pick_instance(), pick_instance(),
  }
end

local function gen_table(depth)
  local r = rng:int(1, 22)
  if r == 1 then return {} end
  if r == 2 then return DEEP_MED end
  if r == 3 and rng:chance(0.2) then return DEEP_BIG end
  if r == 4 then return CYCLIC end
  if r == 5 then return RAISING end
  if r == 6 then return LEN_LIES end
  if r == 7 and rng:chance(0.1) then return BIG_ARRAY end
  if r == 8 then return CYCLIC_WHERE end
  if r <= 12 then
    local t = {}
    for i = 1, rng:int(0, 6) do
      local x = rng:int(1, 6)
      if x <= 3 and #W.genres > 0 then t[i] = W.genres[rng:int(1, #W.genres)].genre_id
      elseif x == 4 and #W.genres > 0 then t[i] = W.genres[rng:int(1, #W.genres)]
      else t[i] = gen_value(depth + 1) end
    end
    return t
  end
  local t = {}
  for _ = 1, rng:int(0, 4) do
    local k = rng:chance(0.7) and rng:pick(STRS) or gen_value(depth + 1)
    if k ~= nil and rawequal(k, k) then t[k] = gen_value(depth + 1) end
  end
  return t
end

function gen_value(depth)
  depth = depth or 0
  local r = rng:int(1, 20)
  if depth > 3 then r = rng:int(1, 8) end
  if r == 1 then return nil end
  if r == 2 then return rng:chance(0.5) end
  if r <= 5 then return rng:pick(NUMS) end
  if r <= 9 then
    if rng:chance(0.01) then return HUGE end
    if rng:chance(0.02) then return BIG end
    return rng:pick(STRS)
  end
  if r <= 10 then return rng:int(1, 30) end
  if r <= 14 then return gen_table(depth) end
  if r <= 17 then return pick_userdata() end
  if r == 18 then return rng:pick(FUNCS) end
  if r == 19 then return rng:chance(0.5) and coroutine.create(function() end) or DEAD_CO end
  return pick_instance()
end

-- Plausible option tables and where clauses, with random parts.
local FIELDS = { "post_id", "text", "created_at", "updated_at", "genre_id", "name" }
if EXCLUDE.date then FIELDS = { "post_id", "text", "genre_id", "name" } end
local OPS = { "eq", "ne", "gt", "gte", "lt", "lte", "in", "notIn", "like", "notLike", "between",
  "notBetween", "isNull", "_in", "bogus" }

local gen_where, gen_where_plain
function gen_where(depth)
  local w = gen_where_plain(depth)
  if CLASS.mm_args and type(w) == "table" and getmetatable(w) == nil and rng:chance(0.15) then
    return mm_table(w)
  end
  return w
end
function gen_where_plain(depth)
  depth = depth or 0
  local r = rng:int(1, 10)
  if r == 1 or depth > 3 then return gen_value(3) end
  local w = {}
  for _ = 1, rng:int(1, 3) do
    local k = rng:int(1, 8)
    if k <= 4 then
      local key = rng:chance(0.9) and rng:pick(FIELDS) or gen_value(3)
      if key == nil or not rawequal(key, key) then key = "nan" end
      w[key] = gen_value(2)
    elseif k <= 6 then
      w[rng:pick(FIELDS)] = { [rng:pick(OPS)] = rng:chance(0.5) and gen_value(2) or { gen_value(3), gen_value(3) } }
    elseif k == 7 then
      w[rng:pick { "and", "or", "_and", "_or" }] = { gen_where(depth + 1), gen_where(depth + 1) }
    else
      w[rng:pick { "not", "_not" }] = gen_where(depth + 1)
    end
  end
  return w
end

local OPT_KEYS = { "where", "order", "limit", "offset", "attributes", "include", "through",
  "joinTableAttributes", "defaults", "force", "mode", "required", "bogus" }

local function gen_opts()
  if rng:chance(0.15) then return gen_value(1) end
  local o = {}
  for _ = 1, rng:int(0, 3) do
    local k = rng:pick(OPT_KEYS)
    if k == "where" then o.where = gen_where()
    elseif k == "order" then
      o.order = rng:pick { "name", "genre_id DESC", "text", { { "post_id", "DESC" }, "text" }, gen_value(2) }
    elseif k == "attributes" then o.attributes = { rng:pick(FIELDS), gen_value(3) }
    elseif k == "include" then
      o.include = rng:pick { { "Genres" }, { "Posts" }, { Genres = { include = { "Posts" } } },
                             { { association = "Genres", where = gen_where(2) } }, gen_value(2),
                             DEEP_INCLUDE, CYCLIC_INCLUDE }
    else o[k] = gen_value(2) end
  end
  if CLASS.mm_args and rng:chance(0.15) then return mm_table(o) end
  return o
end

local function gen_values()
  if rng:chance(0.2) then return gen_value(1) end
  local v = {}
  for _ = 1, rng:int(0, 3) do
    local k = rng:chance(0.85) and rng:pick(FIELDS) or gen_value(3)
    if k ~= nil and rawequal(k, k) then
      v[k] = rng:chance(0.6) and rng:pick { "fuzz text", "x", 1, rng:int(1, 20) } or gen_value(2)
    end
  end
  return v
end

local function gen_list()
  if rng:chance(0.2) then return gen_value(1) end
  local t = gen_table(1)
  if CLASS.mm_args and type(t) == "table" and getmetatable(t) == nil and rng:chance(0.2) then
    return mm_table(t)
  end
  return t
end

-- ---------------------------------------------------------------------------
-- Targets
-- ---------------------------------------------------------------------------

local function snake(s) return (s:gsub("(%u)", function(c) return "_" .. c:lower() end)) end

local function getf(t, k) return t[k] end
local function pack(...) return { n = select("#", ...), ... } end
local function setf(t, k, v) t[k] = v end

-- A target returns: label, function, args (array), n, meta
-- meta: names = strings one of which a raised message must contain;
--       nilok = a bare nil is a valid result; write = a write on W.db (digest checked)
local targets = {}
local function T(weight, fn) for _ = 1, weight do targets[#targets + 1] = fn end end

local callers = {}
local function field_caller(name)
  local c = callers[name]
  if not c then
    if name:match("^[%a_][%w_]*$") then
      c = assert((loadstring or load)("local good = ...; return function(...) return good." .. name .. "(...) end"))
    else
      c = function(good) return function(...) return good[name](...) end end
    end
    callers[name] = c
  end
  return c
end

local function method_call(recv_good, method, args_fn, meta, self_override)
  local name = rng:chance(0.25) and snake(method) or method
  local f
  local okf, err = pcall(getf, recv_good, name)
  if not okf then return "index " .. name, function() error(err, 0) end, {}, 0, meta end
  f = err
  local self = recv_good
  if self_override ~= nil then self = self_override
  elseif rng:chance(0.08) then self = gen_value(1) end
  local args = args_fn and args_fn() or {}
  local n = args.n or #args
  if rng:chance(0.1) then n = n + 1; args[n] = gen_value(1) end
  local a = { self }
  for i = 1, n do a[i + 1] = args[i] end
  meta = meta or {}
  meta.names = meta.names or {}
  meta.names[#meta.names + 1] = method
  meta.names[#meta.names + 1] = snake(method)
  if type(f) ~= "function" then
    return name, function() error(fmt("fuzz: %s is a %s, not a function", name, type(f)), 0) end, {}, 0, meta
  end
  -- Called as `good.name(self, ...)`, the form a user writes, so that an
  -- argument error can name the method (through pcall(f, ...) Lua has no
  -- name for the function and luaL_argerror says '?').
  return name, field_caller(name)(recv_good), a, n + 1, meta
end

local function model_of(x)
  local w = W
  return rng:pick { w.Post, w.Post, w.Genre, w.Genre, w.TPG, w.other.Post, w.closed.Post, x }
end

-- Module level
T(2, function()
  local paths = { ":memory:", "", W.path, TMPDIR .. "/open-" .. rng:int(1, 5) .. ".sqlite3",
                  TMPDIR .. "/no/such/dir/x.sqlite3", TMPDIR .. "/a\0b", gen_value(2) }
  local opts
  if rng:chance(0.7) then
    opts = {}
    for _ = 1, rng:int(0, 3) do
      local k = rng:pick { "busy_timeout", "foreign_keys", "journal_mode", "synchronous", "log", "bogus",
        "timeout", "temp_store" }
      opts[k] = rng:chance(0.5) and rng:pick { 0, 100, -1, 2 ^ 31, 1.5, true, false, "wal", "delete", "normal",
        "off", "full", "memory", "wal; DROP TABLE post", "'; DROP TABLE genre; --", "extra",
        FUNCS[3], FUNCS[1] } or gen_value(2)
    end
  else
    opts = gen_value(1)
  end
  local path = rng:pick(paths)
  -- A generated string is a file name: keep it inside our directory (a
  -- fuzz string such as "/*" or "post" must not become a file elsewhere).
  -- (a number would be turned into a file name by Lua's coercion too)
  if type(path) == "number" then path = tostring(path) end
  if type(path) == "string" and path ~= "" and path ~= ":memory:" and path:sub(1, #TMPDIR) ~= TMPDIR then
    path = TMPDIR .. "/f-" .. path:gsub("[/%.]", "_")
  end
  return "junction.open", function(p, o)
    local db, msg, code = junction.open(p, o)
    if db and type(db) == "userdata" and rng:chance(0.7) then db:close() end
    return db, msg, code
  end, { path, opts }, 2, { names = { "open", "junction" } }
end)
T(1, function()
  local fns = {
    { "types.STRING", junction.types.STRING }, { "inflect.singular", junction.inflect and junction.inflect.singular },
    { "inflect.plural", junction.inflect and junction.inflect.plural },
    { "inflect.snake", junction.inflect and junction.inflect.snake },
  }
  local f = rng:pick(fns)
  if not f[2] then return "missing " .. f[1], function() return true end, {}, 0, {} end
  local tbl = f[1]:match("^(%a+)%.") == "types" and junction.types or junction.inflect
  return f[1], field_caller(f[1]:match("%.(.*)$"))(tbl), { gen_value(1) }, 1, { names = { f[1]:match("%.(.*)$"),
      "STRING", "inflect" } }
end)
-- The JSON codec: toJSON of any value, fromJSON of JSON-looking text cut
-- and spliced at random, junction.json and junction.array with anything.
local JSON_BITS = { "{", "}", "[", "]", ",", ":", '"', "\\", "\\u", "d83d", "dc00", "0", "-",
  "1e", "999999999999999999999", ".5", "true", "false", "null", " ", "\n", "\0", "\255", "a", "[[[[[[[[" }
local function json_text()
  if rng:chance(0.3) then
    local ok, t = pcall(junction.toJSON, gen_value(3))
    if ok and type(t) == "string" then
      local cut = rng:int(0, #t)
      return t:sub(1, cut) .. rng:pick(JSON_BITS) .. t:sub(cut + 1)
    end
  end
  local parts = {}
  for i = 1, rng:int(0, 30) do parts[i] = rng:pick(JSON_BITS) end
  return table.concat(parts)
end
T(2, function()
  local which = rng:int(1, 4)
  if which == 1 then
    return "junction.toJSON", junction.toJSON, { gen_value(3) }, 1, { names = { "toJSON", "JSON" } }
  elseif which == 2 then
    return "junction.fromJSON", junction.fromJSON, { rng:chance(0.9) and json_text() or gen_value(1) }, 1,
      { names = { "fromJSON", "JSON" } }
  elseif which == 3 then
    return "junction.json", junction.json,
      { rng:pick { "meta", "text", gen_value(1) }, rng:pick { "$.a", "$[0]", "$..", json_text(), gen_value(1) } },
      2, { names = { "junction.json" } }
  end
  return "junction.array", junction.array, { gen_value(2) }, 1, { names = { "junction.array" } }
end)
T(1, function()
  local f = junction.loadModels or junction.load_models
  if not f then return "no loadModels", function() return true end, {}, 0, {} end
  local dir = rng:pick { TMPDIR .. "/nonexistent", 42, {}, nil, TMPDIR .. "/a\0b", "" }
  local db = rng:pick { W.db, W.closed.db, gen_value(1) }
  return "junction.loadModels", f, { db, dir }, 2, { names = { "loadModels", "load_models", "models" } }
end)

-- Connection methods
local function conn() return rng:pick { W.db, W.db, W.db, W.other.db, W.closed.db } end

T(3, function()
  local spec
  if rng:chance(0.5) then
    local fields = {}
    for _ = 1, rng:int(0, 3) do
      local fname = rng:chance(0.7) and ("f" .. rng:int(1, 5)) or gen_value(2)
      if fname ~= nil and rawequal(fname, fname) then
        fields[fname] = rng:chance(0.7) and {
          type = rng:pick { junction.types.INTEGER, junction.types.TEXT, junction.types.BLOB, gen_value(2),
            CLASS.forged_types and { code = rng:pick { 99, -1, 2 ^ 31, 1e300, 0 / 0, 6.5, "x" },
              sql = rng:pick { "INTEGER", "TEXT", "x\"); DROP TABLE post; --" }, length = rng:pick { 0, -1, 1e12 } }
              or junction.types.TEXT },
          primaryKey = rng:chance(0.2) or nil, allowNull = rng:chance(0.5),
          unique = rng:pick { nil, true, "u1", gen_value(3) },
          defaultValue = rng:pick { nil, 1, "d", FUNCS[1], FUNCS[3], gen_value(3) },
          references = rng:chance(0.2) and { model = rng:pick { "post", "Genre", "nope", gen_value(3) },
                                               key = rng:pick { "post_id", "genre_id", gen_value(3) } } or nil,
          onDelete = rng:pick { nil, "cascade", "set null", "'; DROP TABLE post; --", gen_value(3) },
        } or gen_value(2)
      end
    end
    spec = { tableName = rng:pick { nil, "fz_" .. rng:int(1, 50), "post", "x\"y", "'; DROP TABLE post; --",
        gen_value(2) },
             timestamps = rng:pick { nil, true, false, gen_value(2) },
             underscored = rng:pick { nil, true, gen_value(2) }, fields = fields }
    if rng:chance(0.1) then spec.bogus = 1 end
  else
    spec = gen_value(1)
  end
  local name = rng:pick { "Fz" .. rng:int(1, 50), "Post", "Genre", "", "a b", "Fz\0", gen_value(2) }
  if CLASS.forged_types and rng:chance(0.1) then
    -- A real type whose code is changed (when it can be) during one define.
    local tname = rng:pick { "INTEGER", "TEXT", "BOOLEAN", "DATE", "REAL", "BLOB" }
    local ty = junction.types[tname]
    local forged = rng:pick { 99, -1, 2 ^ 40, 0 / 0, "x" }
    local fname = "f" .. rng:int(1, 5)
    name = "Fz" .. rng:int(1, 50)
    return "define with " .. tname .. ".code = " .. tostring(forged), function(c, n, sp)
      local ok, old = pcall(function() return ty.code end)
      local set = ok and pcall(function() ty.code = forged end)
      local r = pack(pcall(function() return c:define(n, sp) end))
      if set then pcall(function() ty.code = old end) end
      if not r[1] then error(r[2], 0) end
      return unpack(r, 2, r.n)
    end, { conn(), name, { fields = { [fname] = { type = ty } } } }, 3, { names = { "define", "type" } }
  end
  return method_call(conn(), "define", function() return { name, spec, n = 2 } end,
    { names = { "define" } })
end)
T(2, function()
  local tbl
  if rng:chance(0.6) then
    local kinds = { "belongsTo", "hasOne", "hasMany", "belongsToMany", "bogus" }
    local a = { [rng:pick(kinds)] = rng:pick { "Post", "Genre", "TagPostGenre", "Nope", gen_value(2) } }
    for _ = 1, rng:int(0, 3) do
      a[rng:pick { "as", "foreignKey", "otherKey", "sourceKey", "targetKey", "through", "onDelete", "bogus" }] =
        rng:pick { "Genres", "post_id", "genre_id", "TagPostGenre", { singular = "X", plural = "Xs" }, gen_value(2) }
    end
    tbl = { [rng:pick { "Post", "Genre", "TagPostGenre", "Nope", "Fz1" }] = rng:chance(0.8) and { a } or a }
  else
    tbl = gen_value(1)
  end
  return method_call(conn(), "associate", function() return { tbl, n = 1 } end, { names = { "associate" } })
end)
T(1, function()
  local o = rng:pick { nil, {}, { force = false }, { force = rng:chance(0.05) }, gen_value(1) }
  return method_call(conn(), "sync", function() return { o, n = 1 } end, { names = { "sync" } })
end)
local SQL_EXEC = { "SELECT 1", "", ";", "SELEC", "SELECT 1;\0SELECT 2", "BEGIN", "COMMIT", "ROLLBACK",
  "SAVEPOINT fz", "RELEASE fz", "ROLLBACK TO fz", "PRAGMA integrity_check",
  "CREATE TABLE IF NOT EXISTS fz(x)", "INSERT INTO fz VALUES (1); INSERT INTO fz VALUES ('a')",
  "INSERT INTO nope VALUES (1)", "SELECT * FROM post; SELECT * FROM genre", "-- comment only",
  "SELECT '" .. BIG .. "'", "SELECT zeroblob(100000)" }
T(3, function()
  local sql = rng:chance(0.85) and rng:pick(SQL_EXEC) or gen_value(2)
  if type(sql) == "string" and (sql:find("DROP", 1, true) or sql:find("DELETE", 1, true)
      or sql:find("PRAGMA foreign", 1, true)) then sql = "SELECT 1" end
  return method_call(conn(), "exec", function() return { sql, n = 1 } end, { names = { "exec" } })
end)
local SQL_QUERY = { "SELECT ? AS v", "SELECT ?, ?", "SELECT * FROM post WHERE post_id = ?",
  "SELECT ?1 AS a, ?2 AS b, :c AS c", "INSERT INTO fz VALUES (?)", "SELECT * FROM genre WHERE name = ?",
  "SELECT", "SELECT 1; SELECT 2", "", "SELECT * FROM tag_post_genre", "SELECT x'00ff' AS b",
  "SELECT 9223372036854775807 AS m, -9223372036854775808 AS n, 1e999 AS inf", "SELECT NULL AS z" }
T(4, function()
  local sql = rng:chance(0.9) and rng:pick(SQL_QUERY) or gen_value(2)
  return method_call(conn(), "query", function()
    local a = { sql }
    local n = rng:int(0, 4)
    for i = 1, n do a[i + 1] = gen_value(1) end
    a.n = n + 1
    return a
  end, { names = { "query" } })
end)
T(3, function()
  local fn = rng:chance(0.6) and rng:pick(FUNCS) or gen_value(1)
  return method_call(conn(), "transaction", function()
    if rng:chance(0.3) then
      return { rng:pick { { mode = "deferred" }, { mode = "exclusive" }, { mode = "bogus" },
          { mode = gen_value(3) }, gen_value(2) }, fn, n = 2 }
    end
    return { fn, n = 1 }
  end, { names = { "transaction" } })
end)
T(1, function()
  local m = rng:pick { "model", "changes", "lastInsertId", "close" }
  local c = conn()
  if m == "close" then
    if rng:chance(0.7) then c = rng:pick { W.other.db, W.closed.db, gen_value(1) } end
    if rawequal(c, W.db) then W.closed_by_callback = true end
  end
  -- The method is taken from a real connection; c is passed as self.
  return method_call(W.other.db, m, function() return { rng:pick { "Post", "Nope", gen_value(2) }, n = rng:int(0,
      1) } end,
    { names = { m, "model", "Connection" }, nilok = m == "model" }, c == nil and false or c)
end)
T(1, function()
  local x = rng:chance(0.5) and conn() or pick_instance()
  return "tostring", tostring, { x }, 1, { names = { "tostring" } }
end)
T(1, function()
  -- __gc (and __close) called by hand, then the object is used again later.
  local x = rng:pick { W.other.db, W.closed.db, W.built, W.destroyed, W.other.post, W.closed.post, W.tpg }
  local mt = getmetatable(x)
  local g = type(mt) == "table" and rawget(mt, rng:chance(0.7) and "__gc" or "__close")
  if type(g) ~= "function" or EXCLUDE.gc then return "no __gc", function() return true end, {}, 0, {} end
  stats.gc = stats.gc + 1
  return "__gc by hand", g, { x }, 1, { names = { "gc", "close" } }
end)

-- Model methods
local MODEL_METHODS = {
  { "create", function() return { gen_values(), n = 1 } end, true },
  { "build", function() return { gen_values(), n = 1 } end },
  { "bulkCreate", function()
      local l = {}
      for i = 1, rng:int(0, 4) do l[i] = gen_values() end
      return { rng:chance(0.85) and l or gen_value(1), n = 1 }
    end, true },
  { "findByPk", function() return { rng:pick { 1, 2, 3, 1000, "1", 1.5, 2 ^ 63, 0 / 0, gen_value(2) }, gen_opts(),
      n = 2 } end, false, true },
  { "findOne", function() return { gen_opts(), n = 1 } end, false, true },
  { "findAll", function() return { gen_opts(), n = 1 } end },
  { "count", function() return { gen_opts(), n = 1 } end },
  { "findOrCreate", function() return { rng:chance(0.8) and { where = gen_where(),
      defaults = gen_values() } or gen_opts(), n = 1 } end, true },
  { "update", function() return { gen_values(), rng:chance(0.8) and { where = gen_where() } or gen_opts(),
      n = 2 } end, true },
  { "destroy", function() return { rng:chance(0.8) and { where = gen_where() } or gen_opts(), n = 1 } end, true },
}
T(22, function()
  local m = rng:pick(MODEL_METHODS)
  local model = model_of(W.Post)
  return method_call(model, m[1], m[2], { names = { "Post", "Genre", "TagPostGenre", "Model" },
    write = m[3] and (rawequal(model, W.Post) or rawequal(model, W.Genre) or rawequal(model, W.TPG)), nilok = m[4] })
end)
T(2, function()
  local model = model_of(W.Post)
  local k = rng:chance(0.5) and rng:pick { "name", "tableName", "findAll", "nope", "Genres" } or gen_value(2)
  if rng:chance(0.3) then
    local k2 = rng:chance(0.7) and ("fz_" .. rng:int(1, 9)) or gen_value(2)
    if type(k2) == "string" and not k2:find("^fz_") then k2 = "fz_" .. k2 end
    return "Model[k] = v", setf, { model, k2, gen_value(2) }, 3, { names = { "Model", "Post", "Genre" } }
  end
  return "Model[k]", getf, { model, k }, 2, { names = { "Model", "Post", "Genre", "TagPostGenre" }, nilok = true }
end)

-- Instance methods
local INST_METHODS = {
  { "save", nil, true }, { "update", function() return { gen_values(), n = 1 } end, true },
  { "reload" }, { "destroy", nil, true }, { "toTable" }, { "changed", function() return { gen_value(2),
      n = rng:int(0, 1) } end },
}
T(14, function()
  local m = rng:pick(INST_METHODS)
  local inst = pick_instance()
  local meta = { write = m[3] and inst ~= nil and not rawequal(inst, W.built), names = { "Post", "Genre",
      "TagPostGenre" } }
  if inst == nil then return "no instance", function() return true end, {}, 0, {} end
  return method_call(inst, m[1], m[2], meta)
end)
T(6, function()
  local inst = pick_instance()
  if inst == nil then return "no instance", function() return true end, {}, 0, {} end
  local k = rng:chance(0.6) and rng:pick(FIELDS) or gen_value(2)
  if rng:chance(0.4) then
    return "inst[k] = v", setf, { inst, k, gen_value(2) }, 3, { names = { "Post", "Genre", "TagPostGenre",
        type(k) == "string" and k or "?" } }
  end
  return "inst[k]", getf, { inst, k }, 2, { names = { "Post", "Genre", "TagPostGenre",
      type(k) == "string" and k or "?" }, nilok = true }
end)
T(1, function()
  local a, b = pick_instance(), rng:chance(0.5) and pick_instance() or gen_value(1)
  return "inst == x", function(x, y) return x == y end, { a, b }, 2, { names = { "eq" } }
end)

-- Association methods
local ASSOC = {
  { "get%s", function() return { gen_opts(), n = 1 } end, false, "pl" },
  { "set%s", function() return { gen_list(), rng:chance(0.8) and nil or gen_opts(), n = 2 } end, true, "pl" },
  { "add%s", function() return { gen_value(1), rng:chance(0.8) and nil or gen_opts(), n = 2 } end, true, "sg" },
  { "add%s", function() return { gen_list(), n = 1 } end, true, "pl" },
  { "remove%s", function() return { gen_value(1), n = 1 } end, true, "sg" },
  { "remove%s", function() return { gen_list(), n = 1 } end, true, "pl" },
  { "has%s", function() return { gen_value(1), n = 1 } end, false, "sg" },
  { "has%s", function() return { gen_list(), n = 1 } end, false, "pl" },
  { "count%s", function() return { gen_opts(), n = 1 } end, false, "pl" },
  { "create%s", function() return { gen_values(), rng:chance(0.8) and nil or gen_opts(), n = 2 } end, true, "sg" },
}
T(30, function()
  local a = rng:pick(ASSOC)
  local inst, sg, pl
  local r = rng:int(1, 10)
  if r <= 6 and #W.posts > 0 then inst, sg, pl = W.posts[rng:int(1, #W.posts)], "Genre", "Genres"
  elseif r <= 8 and #W.genres > 0 then inst, sg, pl = W.genres[rng:int(1, #W.genres)], "Post", "Posts"
  elseif r == 9 then inst, sg, pl = rng:pick { W.built, W.destroyed, W.closed.post, W.other.post }, "Genre", "Genres"
  else inst, sg, pl = W.posts[1] or W.built, "Genre", "Genres" end
  if not inst then return "no instance", function() return true end, {}, 0, {} end
  local method = fmt(a[1], a[4] == "pl" and pl or sg)
  return method_call(inst, method, a[2], { write = a[3] and not rawequal(inst, W.built), names = { "Post", "Genre" } })
end)
T(3, function()
  local tpg = W.tpg
  if not tpg then return "no tpg", function() return true end, {}, 0, {} end
  local m = rng:pick { "getPost", "setPost", "createPost", "getGenre", "setGenre", "createGenre" }
  return method_call(tpg, m, function()
    if m:find("^set") then return { rng:chance(0.5) and pick_instance() or gen_value(1), n = 1 } end
    if m:find("^create") then return { gen_values(), n = 1 } end
    return { n = 0 }
  end, { write = not m:find("^get"), nilok = m:find("^get") ~= nil, names = { "TagPostGenre", "Post", "Genre" } })
end)

-- mt_wrong: every metamethod of every junction type, with wrong arguments.
if CLASS.mt_wrong then
  T(4, function()
    local w = W
    local objs = { w.db, w.other.db, w.closed.db, w.Post, w.TPG, w.closed.Post, pick_instance(), pick_instance(),
                   junction.null, junction.types.INTEGER, junction.types.DATE }
    local okS, str = pcall(junction.types.STRING, 10)
    if okS then objs[#objs + 1] = str end
    local x = rng:pick(objs)
    local mt = x ~= nil and getmetatable(x)
    if type(mt) ~= "table" then return "no metatable", function() return true end, {}, 0, {} end
    local names = {}
    for k, v in next, mt do
      if type(k) == "string" and type(v) == "function" and not (k == "__gc" and EXCLUDE.gc) then
        names[#names + 1] = k
      end
    end
    if #names == 0 then return "no metamethod", function() return true end, {}, 0, {} end
    table.sort(names)
    local k = rng:pick(names)
    local kind = junction.type and junction.type(x)
    local wrong
    for _ = 1, 10 do
      wrong = rng:pick { {}, RAISING, "x", 1, 0 / 0, true, io.stdout, DEAD_CO, w.db, w.closed.db, w.Post,
        w.closed.Post, pick_instance(), junction.null, junction.types.TEXT, rng:pick(FUNCS), nil }
      if wrong == nil or not junction.type or junction.type(wrong) ~= kind or rawequal(wrong, junction.null) then
        if not rawequal(wrong, x) and not (type(wrong) == "userdata" and getmetatable(wrong) == mt) then break end
      end
    end
    if junction.type and wrong ~= nil and junction.type(wrong) == kind and kind ~= nil then wrong = {} end
    local a = { wrong, gen_value(1), gen_value(1) }
    if rng:chance(0.3) then a[1], a[2] = x, wrong end     -- (__eq and friends: wrong second operand)
    if k == "__gc" or k == "__close" then
      -- a finalizer given the wrong object must not close or free it
      a[1] = wrong
    end
    local target = mt[k]
    local dbs = { w.db, w.other.db }
    return "metamethod " .. k .. " of " .. tostring(kind or type(x)), function(...)
      local open_before = {}
      for i, d in ipairs(dbs) do open_before[i] = pcall(d.changes, d) end
      local r = pack(pcall(target, ...))
      for i, d in ipairs(dbs) do
        if open_before[i] and not pcall(d.changes, d) and not (i == 1 and W.closed_by_callback) then
          violation("metamethod", fmt("%s of a %s, given a wrong argument, closed a connection", k,
            tostring(kind or type(x))))
          if i == 1 then W.closed_by_callback = true end
        end
      end
      if not r[1] then error(r[2], 0) end
      return unpack(r, 2, r.n)
    end, a, 3, { names = { k, "Connection", "Model", "Instance", "connection", "model", "instance", "junction",
      "null", "type", "expected" }, nilok = true }
  end)
end

-- ---------------------------------------------------------------------------
-- Checks
-- ---------------------------------------------------------------------------

local function digest()
  if not W.db or W.closed_by_callback then return nil end
  local saved = log_mode
  log_mode = nil
  local ok, r = pcall(W.db.query, W.db,
    "SELECT (SELECT count(*) || '/' || total(post_id) || '/' || total(length(text)) || '/' || "
    .. "group_concat(updated_at) FROM post) AS p, (SELECT count(*) || '/' || total(genre_id) || '/' || "
    .. "group_concat(name) FROM genre) AS g, (SELECT count(*) || '/' || total(post_id * 1000003 + genre_id) "
    .. "FROM tag_post_genre) AS t")
  log_mode = saved
  if not ok or type(r) ~= "table" or not r[1] then return nil end
  return tostring(r[1].p) .. "|" .. tostring(r[1].g) .. "|" .. tostring(r[1].t)
end

local function check_invariants(where_)
  stats.checks = stats.checks + 1
  local db, msg = junction.open(W.path, { busy_timeout = 2000 })
  if not db then
    violation("invariant", where_ .. ": cannot open the world database: " .. tostring(msg))
    return
  end
  local function q(sql)
    local r, m = db:query(sql)
    if not r then violation("invariant", where_ .. ": " .. sql .. ": " .. tostring(m)) end
    return r or {}
  end
  local r = q("PRAGMA integrity_check")
  if r[1] and r[1].integrity_check ~= "ok" then
    violation("invariant", where_ .. ": integrity_check: " .. tostring(r[1].integrity_check))
  end
  r = q("PRAGMA foreign_key_check")
  if #r > 0 then violation("invariant", where_ .. ": foreign_key_check has " .. #r .. " rows") end
  r = q("SELECT name FROM sqlite_master WHERE type = 'table' AND name IN ('post', 'genre', 'tag_post_genre')")
  if #r ~= 3 then violation("invariant", where_ .. ": the seed tables are not all there (" .. #r .. ")") end
  if #r == 3 then
    r = q("SELECT count(*) AS n FROM tag_post_genre t WHERE (t.post_id IS NOT NULL AND NOT EXISTS "
      .. "(SELECT 1 FROM post p WHERE p.post_id = t.post_id)) OR (t.genre_id IS NOT NULL AND NOT EXISTS "
      .. "(SELECT 1 FROM genre g WHERE g.genre_id = t.genre_id))")
    if r[1] and r[1].n ~= 0 then violation("invariant", where_ .. ": " .. r[1].n .. " dangling junction rows") end
    r = q("SELECT count(*) AS n FROM (SELECT post_id, genre_id FROM tag_post_genre WHERE post_id IS NOT NULL "
      .. "AND genre_id IS NOT NULL GROUP BY 1, 2 HAVING count(*) > 1)")
    if r[1] and r[1].n ~= 0 then violation("invariant", where_ .. ": duplicate links") end
  end
  db:close()
  if W.db and not W.closed_by_callback then
    local ok, fk = pcall(W.db.query, W.db, "PRAGMA foreign_keys")
    if ok and type(fk) == "table" and fk[1] and fk[1].foreign_keys ~= 1 then
      violation("invariant", where_ .. ": foreign_keys was turned off on the world connection")
    end
  end
end

local function short(v)
  local t = type(v)
  if t == "string" then
    if #v > 40 then return fmt("<string %d bytes>", #v) end
    return fmt("%q", v):gsub("\n", "n")
  elseif t == "number" then
    return fmt("%.17g", v)
  elseif t == "userdata" then
    local ok, s = pcall(tostring, v)
    return ok and ("<" .. tostring(s):sub(1, 40) .. ">") or "<userdata>"
  elseif t == "table" then
    if rawequal(v, CYCLIC) or rawequal(v, CYCLIC_WHERE) then return "<cyclic>" end
    if rawequal(v, DEEP_MED) or rawequal(v, DEEP_BIG) or rawequal(v, DEEP_INCLUDE) then return "<deep>" end
    if rawequal(v, CYCLIC_INCLUDE) then return "<cyclic>" end
    if rawequal(v, RAISING) then return "<raising-mt>" end
    local n = 0
    for _ in next, v do n = n + 1; if n > 20 then break end end
    return "<table " .. n .. ">"
  end
  return "<" .. t .. ">"
end

local function describe(label, args, n)
  local t = {}
  for i = 1, n do t[i] = short(args[i]) end
  return label .. "(" .. table.concat(t, ", ") .. ")"
end

local MODEL_NAMES = { "Post", "Genre", "TagPostGenre", "Fz" }
local function names_something(msg, meta)
  if msg:find("closed connection", 1, true) then return true end
  local low = msg:lower()
  for _, nm in ipairs(MODEL_NAMES) do
    if msg:find(nm, 1, true) then return true end
  end
  for _, nm in ipairs(meta.names or {}) do
    if type(nm) == "string" and #nm > 0 and low:find(nm:lower(), 1, true) then return true end
  end
  return false
end

local function classify(label, meta, desc, res)
  if res[1] then
    stats.returned = stats.returned + 1
    if res.n >= 3 and res[2] == nil and (res[3] ~= nil or res[4] ~= nil) then
      stats.failed = stats.failed + 1
      if type(res[3]) ~= "string" or type(res[4]) ~= "number" then
        violation("fail-shape", fmt("%s returned nil, %s, %s (want nil, string, number)", desc,
          short(res[3]), short(res[4])))
      end
      return "fail"
    end
    if res.n >= 2 and res[2] == nil and not meta.nilok and label ~= "inst[k] = v" and label ~= "Model[k] = v"
        and label ~= "__gc by hand" and not label:find("^[Mm]odel") then
      -- Bare nil: only findByPk/findOne/getPost/model/field reads may give it.
      local l = label:lower()
      if not (l:find("findbypk") or l:find("find_by_pk") or l:find("findone") or l:find("find_one")
          or l:find("transaction") or l:find("^get") or l:find("close")) then
        violation("bare-nil", desc .. " returned a bare nil")
      end
    end
    return "ok"
  end
  stats.raised = stats.raised + 1
  local e = res[2]
  if is_ours(e) then return "ours" end
  if type(e) ~= "string" then
    violation("raise-type", desc .. " raised a " .. type(e) .. ": " .. short(e))
  elseif #e == 0 then
    violation("raise-empty", desc .. " raised an empty message")
  else
    local body = e:gsub("^[^\n]-junction/[%w_]+%.lua:%d+: ", "")
    if body:find("closed connection", 1, true) then
      if body ~= e then note("raise-position", e:sub(1, 200), desc) end
    elseif body:find("^attempt to ") or body:find("^table index is ") or body:find("C stack overflow", 1, true)
        or body:find("^bad argument #%d+ to '[%w_?]+'") and not names_something(body:gsub("to '[%w_?]+'", ""),
            meta) then
      -- A Lua runtime error (or an argument check of an internal function)
      -- from inside junction: misuse that nothing checked.
      violation("raise-internal", e:sub(1, 200), desc)
    elseif not names_something(body, meta) then
      violation("raise-unnamed", e:sub(1, 200), desc)
    elseif body ~= e then
      -- A good message, but raised with error(msg) at level 1, so its
      -- position is inside junction rather than at the caller (STYLE.md).
      note("raise-position", e:sub(1, 200), desc)
    end
  end
  return "raise"
end

-- ---------------------------------------------------------------------------
-- Main loop
-- ---------------------------------------------------------------------------

local t0 = rel.now()
new_world()
local LOG_MODES = { "raise", "raise_table", "yield", "close", "reenter" }
if CLASS.log_mutate then LOG_MODES[#LOG_MODES + 1] = "mutate"; LOG_MODES[#LOG_MODES + 1] = "mutate" end

for i = 1, CALLS do
  stats.calls = i
  if W.closed_by_callback or (i % 5000 == 0) then
    check_invariants("before world " .. (stats.worlds + 1))
    new_world()
  end
  if #W.posts < 3 or #W.genres < 3 then
    W.posts, W.genres = {}, {}
    populate(W)
  end
  local ok_gen, label, fn, args, n, meta = pcall(rng:pick(targets))
  if not ok_gen then
    violation("harness", "argument generation raised: " .. tostring(label))
  else
    meta = meta or {}
    if rng:chance(0.05) then log_mode = rng:pick(LOG_MODES) end
    local desc = describe(label, args, n)
    trace:write(i, " ", desc, log_mode and (" [log " .. log_mode .. "]") or "", "\n")
    local before = meta.write and digest() or nil
    W.cur_args = args
    local res
    if rng:chance(0.1) and not EXCLUDE.coroutine then
      stats.in_coroutine = stats.in_coroutine + 1
      local co = coroutine.create(function() return fn(unpack(args, 1, n)) end)
      for _ = 1, 5 do
        res = pack(coroutine.resume(co))
        if coroutine.status(co) == "dead" then break end
      end
      if coroutine.status(co) ~= "dead" then
        res = pack(false, "fuzz: coroutine still suspended")
      end
    else
      res = pack(pcall(fn, unpack(args, 1, n)))
    end
    log_mode = nil
    local outcome = classify(label, meta, desc, res)
    if label == "exec" and res[1] and res[2] == true and rawequal(args[1], W.db) then
      local sql = args[2]
      if sql == "BEGIN" or sql == "SAVEPOINT fz" then W.raw_tx = true
      elseif sql == "COMMIT" or sql == "ROLLBACK" then W.raw_tx = false end
    end
    -- In a transaction opened by raw SQL, SQLITE_FULL/IOERR/NOMEM/BUSY make
    -- SQLite roll back the whole of it by itself: not junction's write.
    local autorollback = W.raw_tx and outcome == "fail" and type(res[4]) == "number"
      and ({ [5] = true, [7] = true, [10] = true, [13] = true })[res[4] % 256]
    if autorollback then W.raw_tx = false end
    if meta.write and before and (outcome == "fail" or outcome == "raise") and not W.closed_by_callback
        and not autorollback then
      local after = digest()
      if after and after ~= before then
        violation("half-write", fmt("%s %s but changed the data: %s -> %s", desc,
          outcome == "fail" and ("returned nil, " .. short(res[3]) .. ", " .. short(res[4]))
          or ("raised " .. short(res[2])), before, after))
      end
    end
  end
  if i % CHECK_EVERY == 0 then check_invariants("after call " .. i) end
  if i % 997 == 0 then collectgarbage() end
end
check_invariants("at the end")
pcall(W.db.close, W.db)
collectgarbage()
collectgarbage()
trace:close()

local dt = rel.now() - t0
for k, v in ipairs(notes) do
  if k > 15 then print(fmt("# note: ... and %d more", #notes - 15)); break end
  print(fmt("# note [%s] x%d first at call %d: %s", v.kind, v.n, v.call, v.text))
end
if #failures > 0 then
  table.sort(failures, function(a, b) return a.call < b.call end)
  for k, v in ipairs(failures) do
    if k > 40 then print(fmt("# ... and %d more distinct violations", #failures - 40)); break end
    print(fmt("# [%s] x%d first at call %d: %s", v.kind, v.n, v.call, v.text))
  end
  print(fmt("FAIL - fuzz seed=%d calls=%d: %d distinct violations (trace: %s)", SEED, CALLS, #failures, TRACE))
  os.execute("rm -rf " .. rel.shq(TMPDIR))
  os.exit(1, true)   -- close the state: every __gc runs, and LeakSanitizer sees real leaks only
end
os.execute("rm -rf " .. rel.shq(TMPDIR))
os.remove(TRACE)
print(fmt("ok - fuzz seed=%d calls=%d returned=%d (of which nil,msg,code %d) raised=%d invariant_checks=%d "
  .. "worlds=%d in_coroutine=%d gc_by_hand=%d time=%.1fs (%s)", SEED, CALLS, stats.returned, stats.failed,
  stats.raised, stats.checks, stats.worlds, stats.in_coroutine, stats.gc, dt, _VERSION))
os.exit(0, true)
