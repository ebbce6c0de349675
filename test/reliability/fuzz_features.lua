--[==[
fuzz_features.lua -- the model features, called with hostile arguments while
user callbacks misbehave.

  lua fuzz_features.lua SEED CALLS [CHECK_EVERY]

fuzz.lua searches the seed's three models; this searches what a model can
declare on top of them and the methods that come with it: a paranoid model
(soft delete) with a default scope, named and function scopes, hooks,
validators, JSON / ENUM / UUID / DATEONLY / BIGINT / REAL / BOOLEAN fields,
get and set functions and a VIRTUAL field, defaultValue functions, class and
instance methods, a hasMany and a hasOne (the C path and the Lua one), and
the methods: scope, unscoped, restore, increment, decrement, sum, max, min,
avg, upsert, bulkCreate with ignoreDuplicates / updateOnDuplicate,
findAndCountAll, paginated (by page and by keyset), rejectOnEmpty,
isSoftDeleted, validate, getDataValue / setDataValue, toTable, toJSON,
fromJSON, junction.copy.

Arguments come from nil, booleans, NaN, +-inf, -0, 2^53+1, 2^63, huge and
NUL-holding strings, deep and cyclic tables, tables whose metamethods raise
or call back, functions, coroutines, instances and models of a closed
connection. Every user callback (hooks, validators, get/set, defaultValue,
the log function) now and then raises (a string or a table), yields, closes
the connection, re-enters it (a read; hooks also write), or returns a
refusal.

Checks, each call:
  * no crash (run under ASan+UBSan by run.sh);
  * a raise is a string naming the model, the method or the field (or it is
    the error our own callback raised);
  * nil first, when more values come back, is nil, string, number;
  * a write that raised or returned nil, message, code changed nothing
    (a digest of every table);
  * a where built only of equalities (field = value, in lists, and/or
    branches, values that a nil may leave out) never touches the sentinel
    row, whose values no generator ever produces: an empty where that came
    through a scope, soft delete, restore, increment or upsert path and
    touched every row shows up here;
  * junction.copy either copies every row or leaves the destination empty.
Every CHECK_EVERY calls and at the end: integrity_check, foreign_key_check.

Prints "ok - fuzz_features seed=S calls=N ..." or FAIL lines; exits 0 or 1.
]==]

-- luacheck: max line length 140

local here = (arg and arg[0] or ""):match("^(.*)/[^/]*$") or "."
package.path = here .. "/?.lua;" .. package.path

local rel = require "rel"
local junction = require "junction"
local T = junction.types
local fmt = string.format
local unpack = rawget(table, "unpack") or unpack

local SEED = tonumber(arg[1]) or 1
local CALLS = tonumber(arg[2]) or 10000
local CHECK_EVERY = tonumber(arg[3]) or 500
local TMPDIR = (os.getenv("RELIABILITY_TMP") or "/tmp") .. "/junction-fuzzf-" .. SEED
os.execute("rm -rf " .. rel.shq(TMPDIR) .. " && mkdir -p " .. rel.shq(TMPDIR))
local TRACE = os.getenv("FUZZ_TRACE")
  or (os.getenv("RELIABILITY_LOGS") and (os.getenv("RELIABILITY_LOGS") .. "/fuzz_features-" .. SEED .. ".trace"))
  or (TMPDIR .. ".trace")

local rng = rel.prng(SEED, 77)

-- near the ends of 64 bits (increment and decrement must not wrap or turn REAL)
local BIG_INTS = { 1, -1, 4611686018427387904, -4611686018427387904 }
if math.maxinteger then
  BIG_INTS = { math.maxinteger, math.maxinteger - 1, math.mininteger, math.mininteger + 1, 4611686018427387904 }
end
local trace = assert(io.open(TRACE, "w"))
trace:setvbuf("line")

local failures, failure_keys = {}, {}
local stats = { calls = 0, returned = 0, raised = 0, failed = 0, checks = 0, worlds = 0, in_coroutine = 0,
                sentinel_checked = 0, copies = 0, callbacks = 0 }

local function violation(kind, text, example)
  local key = kind .. ":" .. text:gsub("%d+", "N"):gsub("0x%x+", "P"):sub(1, 160)
  if failure_keys[key] then failure_keys[key].n = failure_keys[key].n + 1; return end
  local v = { kind = kind, text = example and (text .. "  <- " .. example) or text, n = 1, call = stats.calls }
  failure_keys[key] = v
  failures[#failures + 1] = v
end

local function pack(...) return { n = select("#", ...), ... } end

-- {====== callbacks

local SENT_TABLE = setmetatable({}, { __tostring = function() return "fuzz table error" end })
local function is_ours(e)
  if rawequal(e, SENT_TABLE) then return true end
  return type(e) == "string" and e:find("fuzz", 1, true) ~= nil
end

local W = {}
local cb_mode = nil      -- what the next callback does (once), set per call

-- Called at the top of every user callback; returns false, message when the
-- callback is to refuse (a hook's nil, message; a validator's false).
local function act(kind)
  local m = cb_mode
  if m == nil then return true end
  if m == "refuse" and kind ~= "hook" and kind ~= "validator" then return true end
  if m == "write" and kind ~= "hook" then return true end
  cb_mode = nil
  stats.callbacks = stats.callbacks + 1
  if m == "raise" then error("fuzz " .. kind .. " raise", 0)
  elseif m == "raise_table" then error(SENT_TABLE)
  elseif m == "yield" then
    local ok, e = pcall(coroutine.yield, "fuzz-yield")
    if not ok then error("fuzz yield failed: " .. tostring(e), 0) end
  elseif m == "close" then
    if W.db then W.closed_by_callback = true; W.db:close() end
  elseif m == "read" then
    pcall(W.Item.findAll, W.Item, { include = { "Notes" } })
    pcall(W.Item.count, W.Item)
  elseif m == "write" then
    pcall(W.Note.create, W.Note, { body = "from a hook" })
  elseif m == "gc" then
    collectgarbage()
  elseif m == "mutate" then
    -- what junction binds must be its own: rewrite the fields of every
    -- instance (a title is the source key of Tags), then collect
    for _, it in ipairs(W.items) do
      pcall(function() it.title = "m" .. rng:int(1, 99); it.views = rng:int(1, 9); it.meta = { x = rng:int(1, 9) } end)
    end
    for _, n in ipairs(W.notes) do pcall(function() n.body = string.rep("q", rng:int(1, 40)) end) end
    collectgarbage()
    collectgarbage()
  elseif m == "refuse" then
    return false, "fuzz refused"
  end
  return true
end

local function hook(name)
  return function()
    local ok, msg = act("hook")
    if not ok then return nil, msg .. " in " .. name end
  end
end

local function log_fn()
  if cb_mode == "write" or cb_mode == "refuse" then return end
  act("log")
end

-- }======

-- {====== the world

local sentinel   -- (defined with the checks)

local SENTINEL = { uid = "5e5e5e5e-5e5e-4e5e-8e5e-5e5e5e5e5e5e", id = 1000000, title = "SENTINEL-ROW", views = 7777777,
                   big = 4242424242, score = 0.125,
                   kind = "b", day = "2001-02-03", published = true }

local function define(db)
  local Item = db:define("Item", {
    tableName = "item", paranoid = true,
    fields = {
      id = { type = T.INTEGER, primaryKey = true, autoIncrement = true },
      title = { type = T.STRING(40), unique = true,
                validate = { custom = function() local ok, m = act("validator"); if ok then return true end
                                                   return false, m end } },
      views = { type = T.INTEGER, allowNull = false, defaultValue = 0, validate = { min = -1e12 } },
      published = { type = T.BOOLEAN, allowNull = false, defaultValue = true },
      meta = { type = T.JSON },
      kind = { type = T.ENUM("a", "b"), allowNull = false, defaultValue = "a" },
      day = { type = T.DATEONLY },
      uid = { type = T.UUID, defaultValue = junction.UUIDV4 },
      big = { type = T.BIGINT },
      score = { type = T.REAL },
    },
    defaultScope = { where = { published = true } },
    scopes = {
      popular = { where = { views = { gte = 100 } }, order = { { "views", "DESC" } } },
      byTitle = function(x) return { where = { title = x } } end,
      top = function(n) return { order = { { "views", "DESC" } }, limit = n } end,
      raw = function(x) return x end,
    },
    hooks = {
      beforeValidate = hook("beforeValidate"), beforeCreate = hook("beforeCreate"),
      afterCreate = hook("afterCreate"), beforeSave = hook("beforeSave"), afterSave = hook("afterSave"),
      beforeUpdate = hook("beforeUpdate"), beforeDestroy = hook("beforeDestroy"),
      afterDestroy = hook("afterDestroy"), beforeBulkCreate = hook("beforeBulkCreate"),
      afterBulkCreate = hook("afterBulkCreate"),
    },
  })
  -- the hasMany target in C: no hooks, no validators; get/set/VIRTUAL and a defaultValue function
  local Note = db:define("Note", {
    tableName = "note",
    fields = {
      id = { type = T.INTEGER, primaryKey = true, autoIncrement = true },
      item_id = { type = T.INTEGER },
      body = { type = T.TEXT,
               get = function(n) act("get"); return n:getDataValue("body") end,
               set = function(n, v) act("set"); n:setDataValue("body", v) end },
      tag = { type = T.TEXT, defaultValue = function() act("defaultValue"); return "t" end },
      shout = { type = T.VIRTUAL, get = function(n) act("get"); return tostring(n:getDataValue("body")):upper() end },
    },
  })
  -- the hasOne target with a validator: its set goes through Model:update in Lua
  local Badge = db:define("Badge", {
    tableName = "badge",
    fields = {
      id = { type = T.INTEGER, primaryKey = true, autoIncrement = true },
      item_id = { type = T.INTEGER },
      label = { type = T.TEXT, validate = { len = { 0, 30 } } },
    },
  })
  -- a hasMany by a sourceKey that is no primary key (text, and it may change)
  db:define("Tag", { tableName = "tag", fields = { item_title = { type = T.STRING(40) }, word = { type = T.TEXT } } })
  db:associate {
    Item = { { hasMany = "Note", foreignKey = "item_id", as = "Notes", onDelete = "cascade" },
             { hasMany = "Tag", foreignKey = "item_title", sourceKey = "title", as = "Tags" },
             { hasOne = "Badge", foreignKey = "item_id", as = "Badge", onDelete = "cascade" } },
    Note = { { belongsTo = "Item", foreignKey = "item_id", as = "Item" } },
  }
  function Item:fzPopular(n) return self:findAll { where = { views = { gte = n } } } end
  function Item.instance:fzLabel() return tostring(self.title) .. "/" .. tostring(self.views) end
  return Item, Note, Badge
end

local POOL_TITLES = { "t1", "t2", "t3", "t4", "t5", "t6", "t7", "t8", "x", "y" }

local function populate(w)
  return pcall(function()
    for i = 1, 8 do
      local it = w.Item:create { title = "t" .. i, views = i * 40, published = i % 3 ~= 0, kind = i % 2 == 0 and "a" or "b",
                                 meta = { n = i, tags = junction.array { "a" } }, big = BIG_INTS[i % #BIG_INTS + 1] }
      if it then
        w.items[#w.items + 1] = it
        local n = w.Note:create { item_id = it.id, body = "note " .. i }
        if n then w.notes[#w.notes + 1] = n end
        local b = w.Badge:create { item_id = it.id, label = "badge " .. i }
        if b then w.badges[#w.badges + 1] = b end
      end
    end
    for i = 1, 10 do assert(w.db:query("INSERT INTO tag (item_title, word, createdAt, updatedAt) VALUES (?, ?, 'x', 'x')",
      "t" .. (i % 5 + 1), "w" .. i)) end
    for i = 1, 4 do
      local n = w.Note:create { body = "free " .. i }
      if n then w.notes[#w.notes + 1] = n end
    end
  end)
end

-- the sentinel row, its note and badge: written by raw SQL, never loaded as
-- instances; put back (as it was) after a write that may legitimately change it
local function put_sentinel(db)
  for _, t in ipairs { "note", "badge", "item" } do assert(db:query("DELETE FROM " .. t .. " WHERE id = ?", SENTINEL.id)) end
  assert(db:query("INSERT INTO item (id, title, views, published, kind, day, big, score, meta, uid, createdAt, updatedAt) " ..
    "VALUES (?, ?, ?, 1, ?, ?, ?, ?, '{\"s\":1}', ?, '2001-01-01 00:00:00.000', '2001-01-01 00:00:00.000')",
    SENTINEL.id, SENTINEL.title, SENTINEL.views, SENTINEL.kind, SENTINEL.day, SENTINEL.big, SENTINEL.score, SENTINEL.uid))
  assert(db:query("INSERT INTO note (id, item_id, body, tag, createdAt, updatedAt) VALUES (?, ?, 'SENTINEL-NOTE', 's', " ..
    "'2001-01-01 00:00:00.000', '2001-01-01 00:00:00.000')", SENTINEL.id, SENTINEL.id))
  assert(db:query("INSERT INTO badge (id, item_id, label, createdAt, updatedAt) VALUES (?, ?, 'SENTINEL-BADGE', " ..
    "'2001-01-01 00:00:00.000', '2001-01-01 00:00:00.000')", SENTINEL.id, SENTINEL.id))
end

local world_n = 0
local function new_world()
  if W.db then pcall(W.db.close, W.db) end
  world_n = world_n + 1
  stats.worlds = stats.worlds + 1
  local path = fmt("%s/world-%d.sqlite3", TMPDIR, world_n)
  rel.rm_db(path)
  if world_n > 2 then rel.rm_db(fmt("%s/world-%d.sqlite3", TMPDIR, world_n - 2)) end
  local w = { path = path, items = {}, notes = {}, badges = {} }
  w.db = assert(junction.open(path, { journal_mode = "wal", synchronous = "off", log = log_fn }))
  w.Item, w.Note, w.Badge = define(w.db)
  assert(w.db:sync())
  W = w
  put_sentinel(w.db)
  populate(w)
  w.sentinel = sentinel()
  -- a closed connection with the same models and an instance of it
  local c = { db = assert(junction.open(":memory:")) }
  c.Item, c.Note, c.Badge = define(c.db)
  assert(c.db:sync())
  c.item = c.Item:create { title = "closed" }
  c.db:close()
  w.closed = c
  w.built = w.Item:build { title = "built" }
  return w
end

-- }======

-- {====== values

local NUMS = { 0, 1, -1, 2, 3, 7, 42, 0.5, -0.0, 1 / 0, -1 / 0, 0 / 0, 2 ^ 31, 2 ^ 53, 2 ^ 53 + 2, 2 ^ 63, -2 ^ 63,
  2 ^ 64, 1e308, 5e-324, 1e15 + 0.3, 100, 1e300 }
if math.maxinteger then
  NUMS[#NUMS + 1] = math.maxinteger
  NUMS[#NUMS + 1] = math.mininteger
  NUMS[#NUMS + 1] = (load("return 9007199254740993"))()
end
local HUGE = string.rep("a", 1000000)
local STRS = { "", "x", "t1", "t2", "t3", "a", "b", "title", "views", "meta", "kind", "day", "uid", "big", "score",
  "published", "deletedAt", "id", "body", "shout", "tag", "Notes", "Badge", "Item", "where", "all", "force",
  "paranoid", "truncate", "ignoreDuplicates", "updateOnDuplicate", "conflictFields", "rejectOnEmpty", "keyset",
  "per_page", "popular", "byTitle", "top", "raw", "defaultScope", "2020-01-01", "2020-02-30", "1970-01-01",
  "00000000-0000-0000-0000-000000000000", "ZZZZZZZZ-0000-0000-0000-000000000000", "[1,2]", '{"a":1}', "null",
  "\0", "a\0b", "\255\254", "\237\160\128", "'; DROP TABLE item; --", "\"", "%", "_", "1", "-1", "1.5", "nan",
  "views DESC", "__index", "__gc", "save", "destroy", "restore", "fzLabel" }

local DEEP = {}
do local cur = DEEP; for _ = 1, 300 do local nx = {}; cur[1], cur.where = nx, nx; cur = nx end end
local CYCLIC = {}
CYCLIC[1], CYCLIC.where, CYCLIC.meta, CYCLIC.all = CYCLIC, CYCLIC, CYCLIC, CYCLIC
local RAISING = setmetatable({}, {
  __index = function() error("fuzz __index raise", 0) end,
  __newindex = function() error("fuzz __newindex raise", 0) end,
  __len = function() error("fuzz __len raise", 0) end,
  __pairs = function() error("fuzz __pairs raise", 0) end,
  __tostring = function() error("fuzz __tostring raise", 0) end,
  __eq = function() error("fuzz __eq raise", 0) end,
})
-- a table that says it is { all = true } (or has a where) only through __index
local LYING = setmetatable({}, { __index = function(_, k)
  if k == "all" or k == "force" or k == "paranoid" then return true end
  if k == "where" then return { id = 1 } end
end, __pairs = function() return next, { all = true }, nil end, __len = function() return 3 end })
local BIG_LIST = {}
for i = 1, 3000 do BIG_LIST[i] = i end
local SHARED = { [DEEP] = true, [CYCLIC] = true, [RAISING] = true, [LYING] = true, [BIG_LIST] = true }

local DEAD_CO = coroutine.create(function() end)
coroutine.resume(DEAD_CO)

local FUNCS = {
  function() return 1 end,
  function(...) return ... end,
  function() error("fuzz function raise", 0) end,
  function() error(SENT_TABLE) end,
  function() return nil, "fuzz", 1 end,
  function() local ok, e = pcall(coroutine.yield, "fuzz-yield"); if not ok then error("fuzz yield failed: " .. tostring(e), 0) end end,
  function() if W.db then W.closed_by_callback = true; W.db:close() end end,
  function() return W.Item and W.Item:count() end,
}

local gen_value

local function pick_instance()
  local w = W
  local r = rng:int(1, 12)
  if r <= 5 and #w.items > 0 then return w.items[rng:int(1, #w.items)] end
  if r <= 7 and #w.notes > 0 then return w.notes[rng:int(1, #w.notes)] end
  if r <= 8 and #w.badges > 0 then return w.badges[rng:int(1, #w.badges)] end
  if r == 9 then return w.built end
  if r == 10 then return w.closed.item end
  return w.items[1]
end

local function pick_model()
  local w = W
  return rng:pick { w.Item, w.Item, w.Note, w.Badge, w.closed.Item, io.stdout, {} }
end

local function gen_table(depth)
  local r = rng:int(1, 18)
  if r == 1 then return {} end
  if r == 2 then return DEEP end
  if r == 3 then return CYCLIC end
  if r == 4 then return RAISING end
  if r == 5 then return LYING end
  if r == 6 and rng:chance(0.2) then return BIG_LIST end
  if r == 7 then return junction.array() end
  if r <= 11 then
    local t = {}
    for i = 1, rng:int(0, 5) do t[i] = rng:chance(0.5) and rng:int(1, 30) or gen_value(depth + 1) end
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
  if r <= 9 then return rng:chance(0.01) and HUGE or rng:pick(STRS) end
  if r == 10 then return rng:int(1, 30) end
  if r <= 13 then return gen_table(depth) end
  if r == 14 then return junction.null end
  if r <= 16 then return pick_instance() end
  if r == 17 then return pick_model() end
  if r == 18 then return rng:pick(FUNCS) end
  if r == 19 then return rng:chance(0.5) and coroutine.create(function() end) or DEAD_CO end
  return rng:pick { W.db, W.closed.db, io.stdout }
end

-- mm: a plain table given a metatable whose reading metamethods call back
local function mm_table(t)
  local f = rng:pick(FUNCS)
  return setmetatable(t, {
    __index = function() pcall(f); return nil end,
    __len = function() pcall(f); return 3 end,
    __pairs = function(x) pcall(f); return next, x, nil end,
  })
end

local ITEM_FIELDS = { "id", "title", "views", "published", "meta", "kind", "day", "uid", "big", "score", "deletedAt",
  "createdAt", "updatedAt" }
local OPS = { "eq", "ne", "gt", "gte", "lt", "lte", "in", "notIn", "like", "notLike", "between", "notBetween",
  "isNull", "_in", "bogus", "not" }

-- A value a generator may give an equality: never one of the sentinel's.
local function safe_value()
  local r = rng:int(1, 8)
  if r == 1 then return nil end                     -- what { id = params.id } looks like
  if r <= 3 then return rng:int(1, 40) end
  if r <= 5 then return rng:pick(POOL_TITLES) end
  if r == 6 then return rng:pick { "a", "zz", "2020-01-01", 0.5, -3 } end
  if r == 7 then return junction.null end
  return rng:chance(0.5)
end

-- A where of equalities only (values never the sentinel's): it can never
-- match the sentinel row; one that comes out empty must raise.
local function safe_where(depth)
  depth = depth or 0
  local w = {}
  for _ = 1, rng:int(0, 3) do
    local k = rng:int(1, 8)
    local f = rng:pick(ITEM_FIELDS)
    if f == "deletedAt" or f == "createdAt" or f == "updatedAt" or f == "published" then f = "id" end
    if k <= 4 then w[f] = safe_value()
    elseif k == 5 then
      local l = {}
      for i = 1, rng:int(0, 4) do l[i] = safe_value() end   -- (a nil leaves a hole: a misuse error)
      w[f] = l
    elseif k == 6 then w[f] = { eq = safe_value() }
    elseif k == 7 and depth < 2 then w[rng:pick { "and", "_and", "or", "_or" }] = { safe_where(depth + 1), safe_where(depth + 1) }
    else w[f] = { ["in"] = { safe_value(), safe_value() } } end
  end
  return w
end

local function wild_where(depth)
  depth = depth or 0
  if rng:chance(0.1) or depth > 2 then return gen_value(3) end
  local w = {}
  for _ = 1, rng:int(1, 3) do
    local k = rng:int(1, 7)
    local f = rng:chance(0.9) and rng:pick(ITEM_FIELDS) or rng:pick(STRS)
    if k <= 3 then w[f] = gen_value(2)
    elseif k <= 5 then w[f] = { [rng:pick(OPS)] = rng:chance(0.5) and gen_value(2) or { gen_value(3), gen_value(3) } }
    elseif k == 6 then w[rng:pick { "and", "or", "_or" }] = { wild_where(depth + 1), wild_where(depth + 1) }
    else w[rng:pick { "not", "_not" }] = wild_where(depth + 1) end
  end
  if rng:chance(0.1) then return mm_table(w) end
  return w
end

-- Options for a bulk write: returns opts, safe (the sentinel may not change)
local function write_opts(extra)
  local r = rng:int(1, 20)
  local o, safe
  if r <= 12 then o, safe = { where = safe_where() }, true
  elseif r <= 15 then o, safe = { where = wild_where() }, false
  elseif r == 16 then o, safe = { all = true }, false
  elseif r == 17 then o, safe = LYING, true
  elseif r == 18 then o, safe = gen_value(1), true
  else o, safe = {}, true end
  if type(o) == "table" and not SHARED[o] and getmetatable(o) == nil then
    for _ = 1, rng:int(0, 2) do
      local k = rng:pick(extra or { "force", "paranoid", "bogus", "truncate", "limit" })
      if k == "truncate" then safe = false end
      o[k] = rng:chance(0.7) and true or gen_value(2)
    end
    if rng:chance(0.05) then o = mm_table(o) end
  end
  return o, safe
end

local function read_opts()
  if rng:chance(0.1) then return gen_value(1) end
  local o = {}
  for _ = 1, rng:int(0, 3) do
    local k = rng:pick { "where", "where", "order", "limit", "offset", "attributes", "include", "paranoid",
      "rejectOnEmpty", "bogus" }
    if k == "where" then o.where = rng:chance(0.5) and safe_where() or wild_where()
    elseif k == "order" then o.order = rng:pick { "views", "title DESC", { { "views", "DESC" } }, gen_value(2) }
    elseif k == "attributes" then o.attributes = { rng:pick(ITEM_FIELDS), gen_value(3) }
    elseif k == "include" then o.include = rng:pick { { "Notes" }, { "Badge" }, { Notes = { where = wild_where(1) } },
      { W.Note }, gen_value(2) }
    else o[k] = rng:chance(0.5) and rng:pick { true, false, 2, 0, -1 } or gen_value(2) end
  end
  if rng:chance(0.08) then return mm_table(o) end
  return o
end

local function gen_values(model_name)
  if rng:chance(0.12) then return gen_value(1) end
  local v = {}
  local fields = model_name == "Note" and { "body", "tag", "shout", "item_id", "id" }
    or model_name == "Badge" and { "label", "item_id", "id" } or ITEM_FIELDS
  for _ = 1, rng:int(0, 4) do
    local k = rng:chance(0.9) and rng:pick(fields) or rng:pick(STRS)
    local x = rng:int(1, 5)
    if k == "id" or k == "item_id" then v[k] = rng:chance(0.7) and rng:int(1, 60) or gen_value(2)
    elseif x <= 3 and k == "title" then v[k] = rng:pick(POOL_TITLES) .. (rng:chance(0.5) and rng:int(1, 999) or "")
    elseif x <= 3 and k == "views" then v[k] = rng:int(-5, 500)
    elseif x <= 3 and k == "big" then v[k] = rng:pick(BIG_INTS)
    elseif x <= 3 and k == "kind" then v[k] = rng:pick { "a", "b", "c" }
    elseif x <= 3 and k == "meta" then v[k] = rng:pick { { a = 1 }, junction.array { 1, 2 }, "text", 3, DEEP, CYCLIC }
    else v[k] = gen_value(2) end
  end
  if rng:chance(0.05) then return mm_table(v) end
  return v
end

local function gen_list()
  local r = rng:int(1, 10)
  if r == 1 then return gen_value(1) end
  if r == 2 then return BIG_LIST end
  local l = {}
  for i = 1, rng:int(0, 5) do
    local x = rng:int(1, 4)
    if x <= 2 and #W.notes > 0 then l[i] = W.notes[rng:int(1, #W.notes)]
    elseif x == 3 then l[i] = rng:int(1, 60)
    else l[i] = gen_value(2) end
  end
  if rng:chance(0.1) then return mm_table(l) end
  return l
end

-- }======

-- {====== targets

local function snake(s) return (s:gsub("(%u)", function(c) return "_" .. c:lower() end)) end

-- A target returns label, fn, args, n, meta; meta.write: a write on the world;
-- meta.safe: the sentinel may not change; meta.nilok: a bare nil is an answer.
local targets = {}
local function TG(weight, fn) for _ = 1, weight do targets[#targets + 1] = fn end end

local function call_method(recv, name, args, meta)
  meta.names = meta.names or {}
  meta.names[#meta.names + 1] = name
  if rng:chance(0.2) then name = snake(name) end
  meta.names[#meta.names + 1] = name
  local a = { recv }
  for i = 1, args.n or #args do a[i + 1] = args[i] end
  if rng:chance(0.05) then a[1] = gen_value(1) end
  return name, function(self, ...)
    local f = recv[name]
    if type(f) ~= "function" then error(fmt("fuzz: %s is a %s", name, type(f)), 0) end
    return f(self, ...)
  end, a, (args.n or #args) + 1, meta
end

-- a model, or a scoped one
local function scoped_item()
  local w = W
  local r = rng:int(1, 12)
  if r <= 4 then return w.Item, "Item" end
  if r == 5 then return w.Item:unscoped(), "Item" end
  if r == 6 then return w.Item:scope("popular"), "Item" end
  if r == 7 then
    local ok, m = pcall(w.Item.scope, w.Item, "byTitle", rng:pick(POOL_TITLES))
    return ok and m or w.Item, "Item"
  end
  if r == 8 then
    local ok, m = pcall(w.Item.scope, w.Item, "defaultScope", { "top", rng:int(1, 5) })
    return ok and m or w.Item, "Item"
  end
  if r == 9 then return w.Note, "Note" end
  if r == 10 then return w.Badge, "Badge" end
  if r == 11 then return w.closed.Item, "Item" end
  return w.Item, "Item"
end

local NAMES = { "Item", "Note", "Badge" }

-- Model:scope itself, with anything
TG(2, function()
  local args = rng:pick {
    { "popular", n = 1 }, { "byTitle", gen_value(1), n = 2 }, { "top", gen_value(1), n = 2 },
    { "raw", gen_value(1), n = 2 }, { "raw", { where = wild_where() }, n = 2 }, { "nope", n = 1 },
    { gen_value(1), n = 1 }, { "defaultScope", { "top", gen_value(2) }, n = 2 }, { n = 0 },
    { { "byTitle" }, n = 1 }, { "byTitle", nil, n = 2 },
  }
  return call_method(W.Item, "scope", args, { names = { "scope", "Item" } })
end)

TG(3, function()
  local m, mn = scoped_item()
  return call_method(m, "create", { gen_values(mn), n = 1 }, { write = true, names = { mn } })
end)
TG(1, function()
  local m, mn = scoped_item()
  return "build+save", function(model, v)
    local inst = model:build(v)
    return inst:save()
  end, { m, gen_values(mn) }, 2, { write = true, names = { mn, "build", "save" } }
end)
TG(3, function()
  local m, mn = scoped_item()
  local l = {}
  for i = 1, rng:int(0, 4) do l[i] = gen_values(mn) end
  if rng:chance(0.1) then l = gen_value(1) end
  local o = rng:pick { nil, { ignoreDuplicates = true }, { updateOnDuplicate = { "views" } },
    { updateOnDuplicate = { rng:pick(ITEM_FIELDS), gen_value(3) } }, { conflictFields = { "title" }, ignoreDuplicates = true },
    { conflictFields = { gen_value(2) }, updateOnDuplicate = { "views" } }, { bogus = 1 }, gen_value(1) }
  return call_method(m, "bulkCreate", { l, o, n = 2 }, { write = true, names = { mn } })
end)
TG(3, function()
  local m, mn = scoped_item()
  local o = rng:pick { nil, { conflictFields = { "title" } }, { conflictFields = { "id" } },
    { conflictFields = { gen_value(2) } }, { conflictFields = {} }, gen_value(1) }
  return call_method(m, "upsert", { gen_values(mn), o, n = 2 }, { write = true, names = { mn } })
end)
for _, name in ipairs { "findAll", "findOne", "count", "findAndCountAll" } do
  TG(2, function()
    local m, mn = scoped_item()
    return call_method(m, name, { read_opts(), n = 1 }, { names = { mn }, nilok = name == "findOne" })
  end)
end
TG(2, function()
  local m, mn = scoped_item()
  return call_method(m, "findByPk", { rng:pick { 1, 2, SENTINEL.id, "3", 0 / 0, 2 ^ 63, gen_value(1) }, read_opts(), n = 2 },
    { names = { mn }, nilok = true })
end)
TG(2, function()
  local m, mn = scoped_item()
  local o = rng:chance(0.8) and { where = rng:chance(0.7) and safe_where() or wild_where(), defaults = gen_values(mn) }
    or read_opts()
  return call_method(m, "findOrCreate", { o, n = 1 }, { write = true, names = { mn } })
end)
TG(4, function()
  local m, mn = scoped_item()
  local o, safe = write_opts()
  return call_method(m, "update", { gen_values(mn), o, n = 2 }, { write = true, safe = safe, names = { mn } })
end)
TG(4, function()
  local m, mn = scoped_item()
  local o, safe = write_opts()
  return call_method(m, "destroy", { o, n = 1 }, { write = true, safe = safe, names = { mn } })
end)
TG(3, function()
  local m, mn = scoped_item()
  local o, safe = write_opts()
  return call_method(m, "restore", { o, n = 1 }, { write = true, safe = safe, names = { mn, "restore" } })
end)
TG(4, function()
  local m, mn = scoped_item()
  local o, safe = write_opts()
  local name = rng:pick { "increment", "decrement" }
  local f = rng:pick { "views", "big", "score", "title", "published", rng:pick(STRS), gen_value(2) }
  local args
  local r = rng:int(1, 4)
  if r == 1 then args = { f, rng:pick { 1, -1, 2.5, 0 / 0, 1 / 0, 2 ^ 63, "1", rng:pick(BIG_INTS), gen_value(2) }, o, n = 3 }
  elseif r == 2 then args = { f, o, n = 2 }
  elseif r == 3 then args = { { [rng:pick { "views", "big", "score", "title" }] = rng:pick { 1, 3, 0.5, gen_value(2) } }, o, n = 2 }
  else args = { gen_value(1), o, n = 2 } end
  return call_method(m, name, args, { write = true, safe = safe, names = { mn, name } })
end)
TG(3, function()
  local m, mn = scoped_item()
  local name = rng:pick { "sum", "max", "min", "avg" }
  return call_method(m, name, { rng:pick { "views", "big", "score", "title", "day", gen_value(2) }, read_opts(), n = 2 },
    { names = { mn, name }, nilok = true })
end)
TG(2, function()
  local m, mn = scoped_item()
  local o = read_opts()
  if type(o) == "table" and not SHARED[o] and getmetatable(o) == nil then
    o.where = nil
    o.rejectOnEmpty = nil
    if rng:chance(0.7) then o.per_page = rng:pick { 1, 2, 5, 0, -1, 1.5, 2 ^ 63, gen_value(2) } end
    if rng:chance(0.4) then o.keyset = rng:pick { true, "views", { "views", "DESC" }, "nope", gen_value(2) }; o.order = nil end
  end
  local how = rng:int(1, 5)
  local arg = rng:pick { 1, 2, 3, 0, -1, nil, "2", 1.5, 0 / 0, gen_value(2) }
  return "paginated", function(model, opts)
    local pages = model:paginated(opts)
    if how == 1 then return pages:getPage(arg)
    elseif how == 2 then return pages:totalItems()
    elseif how == 3 then return pages:numPages()
    elseif how == 4 then
      local n = 0
      for _ in pages:eachItem() do n = n + 1; if n > 200 then break end end
      return n
    end
    local items, after = pages:getPage()
    if items and after ~= nil then return pages:getPage(after) end
    return items
  end, { m, o }, 2, { names = { mn, "paginated", "per_page", "keyset", "page", "getPage" }, nilok = true }
end)
TG(1, function()
  local m = rng:pick { W.Item, W.Note }
  return "class method", function(model, x) return model.fzPopular and model:fzPopular(x) or model:count() end,
    { m, gen_value(1) }, 2, { names = { "Item", "Note", "views" } }
end)

-- instances
local INST = {
  { "save", nil, true }, { "reload" }, { "toTable" }, { "toJSON" }, { "validate" }, { "isSoftDeleted" },
  { "restore", nil, true }, { "changed", function() return { gen_value(2), n = rng:int(0, 1) } end },
  { "update", function() return { gen_values("Item"), n = 1 } end, true },
  { "destroy", function()
      return { rng:pick { nil, { force = true }, { force = false }, { bogus = 1 }, LYING, gen_value(1) }, n = 1 }
    end, true },
  { "increment", function()
      return { rng:pick { "views", "big", "title", gen_value(2) }, rng:pick { 1, -2, 0 / 0, gen_value(2) }, n = 2 }
    end, true },
  { "decrement", function() return { { views = rng:pick { 1, 2.5, gen_value(2) } }, n = 1 } end, true },
  { "getDataValue", function() return { rng:pick { "title", "body", "shout", gen_value(2) }, n = 1 } end },
  { "setDataValue", function() return { rng:pick { "title", "body", "views", gen_value(2) }, gen_value(2), n = 2 } end },
  { "fzLabel" },
}
TG(14, function()
  local m = rng:pick(INST)
  local inst = pick_instance()
  if inst == nil then return "no instance", function() return true end, {}, 0, {} end
  local args = m[2] and m[2]() or { n = 0 }
  return call_method(inst, m[1], args, { write = m[3] and not rawequal(inst, W.built), names = NAMES, nilok = true })
end)
TG(5, function()
  local inst = pick_instance()
  if inst == nil then return "no instance", function() return true end, {}, 0, {} end
  local k = rng:pick { "title", "views", "meta", "body", "shout", "tag", "kind", "day", "uid", "big", "label",
                       "deletedAt", rng:pick(STRS), gen_value(2) }
  if rng:chance(0.5) then
    return "inst[k] = v", function(i, key, v) i[key] = v end, { inst, k, gen_value(2) }, 3,
      { names = { "Item", "Note", "Badge", type(k) == "string" and k or "?" } }
  end
  return "inst[k]", function(i, key) return i[key] end, { inst, k }, 2,
    { names = { "Item", "Note", "Badge", type(k) == "string" and k or "?" }, nilok = true }
end)

-- associations: hasMany Notes (C), hasOne Badge (Lua, a validator), belongsTo Item
local ASSOC = {
  { "getNotes", function() return { read_opts(), n = 1 } end },
  { "setNotes", function() return { gen_list(), n = 1 } end, true },
  { "addNote", function() return { rng:chance(0.5) and pick_instance() or gen_value(1), n = 1 } end, true },
  { "addNotes", function() return { gen_list(), n = 1 } end, true },
  { "removeNote", function() return { rng:chance(0.5) and pick_instance() or gen_value(1), n = 1 } end, true },
  { "removeNotes", function() return { gen_list(), n = 1 } end, true },
  { "hasNote", function() return { gen_value(1), n = 1 } end },
  { "hasNotes", function() return { gen_list(), n = 1 } end },
  { "countNotes", function() return { read_opts(), n = 1 } end },
  { "createNote", function() return { gen_values("Note"), n = 1 } end, true },
  { "setTags", function() return { gen_list(), n = 1 } end, true },
  { "addTags", function() return { gen_list(), n = 1 } end, true },
  { "removeTag", function() return { rng:int(1, 12), n = 1 } end, true },
  { "hasTags", function() return { gen_list(), n = 1 } end },
  { "countTags", function() return { read_opts(), n = 1 } end },
  { "getTags", function() return { read_opts(), n = 1 } end },
  { "getBadge", function() return { n = 0 } end },
  { "setBadge", function() return { rng:chance(0.5) and pick_instance() or gen_value(1), n = 1 } end, true },
  { "createBadge", function() return { gen_values("Badge"), n = 1 } end, true },
}
TG(12, function()
  local a = rng:pick(ASSOC)
  local inst = (#W.items > 0 and rng:chance(0.85)) and W.items[rng:int(1, #W.items)] or pick_instance()
  if inst == nil then return "no instance", function() return true end, {}, 0, {} end
  return call_method(inst, a[1], a[2](), { write = a[3] and not rawequal(inst, W.built), names = NAMES, nilok = true })
end)
TG(2, function()
  local n = #W.notes > 0 and W.notes[rng:int(1, #W.notes)]
  if not n then return "no note", function() return true end, {}, 0, {} end
  local name = rng:pick { "getItem", "setItem", "createItem" }
  local args = name == "getItem" and { n = 0 } or name == "setItem" and { rng:chance(0.5) and pick_instance() or gen_value(1), n = 1 }
    or { gen_values("Item"), n = 1 }
  return call_method(n, name, args, { write = name ~= "getItem", names = NAMES, nilok = true })
end)

-- JSON
TG(2, function()
  local r = rng:int(1, 4)
  if r == 1 then
    local x = rng:chance(0.5) and pick_instance() or gen_value(2)
    return "junction.toJSON", junction.toJSON, { x }, 1, { names = { "toJSON", "JSON", "Item", "Note", "Badge" } }
  elseif r == 2 then
    local ok, t = pcall(junction.toJSON, gen_value(3))
    local s = ok and type(t) == "string" and t or "[1,2]"
    local cut = rng:int(0, #s)
    s = s:sub(1, cut) .. rng:pick { "", "[", "{", '"', "\\u0000", "\\ud800", "1e999", "-", "\0", "\255", ",", "]" } .. s:sub(cut + 1)
    return "junction.fromJSON", junction.fromJSON, { s }, 1, { names = { "fromJSON", "JSON" } }
  elseif r == 3 then
    return "list:toJSON", function(m) local l = m:findAll { limit = 5 }; if not l then return l end return l:toJSON() end,
      { rng:pick { W.Item, W.Note } }, 1, { names = NAMES }
  end
  return "junction.array", junction.array, { gen_value(2) }, 1, { names = { "junction.array" } }
end)

-- junction.copy into a fresh destination (sometimes one whose log raises or
-- closes it, or one that has rows already), or with hostile arguments
TG(1, function()
  local r = rng:int(1, 6)
  if r == 1 then
    return "junction.copy", junction.copy, { rng:pick { W.db, W.closed.db, gen_value(1) }, gen_value(1), gen_value(1) }, 3,
      { names = { "copy" } }
  end
  return "junction.copy fresh", function()
    stats.copies = stats.copies + 1
    local mode, nlog = rng:pick { "none", "none", "raise", "close", "rows" }, 0
    local limit = rng:int(1, 40)
    local to
    to = assert(junction.open(":memory:", { log = function()
      nlog = nlog + 1
      if nlog == limit then
        if mode == "raise" then error("fuzz copy log raise", 0) elseif mode == "close" then to:close() end
      end
    end }))
    define(to)
    assert(to:sync())
    if mode == "rows" then assert(to:exec("INSERT INTO badge (label, createdAt, updatedAt) VALUES ('x', 'a', 'a')")) end
    local res = pack(pcall(junction.copy, W.db, to, rng:chance(0.2) and { tables = { "item", "note" } } or nil))
    local function count(db, t)
      local ok, rows = pcall(db.query, db, "SELECT count(*) AS n FROM " .. t)
      if ok and type(rows) == "table" and rows[1] then return rows[1].n end
      return nil
    end
    local ok_to = pcall(to.changes, to)
    if ok_to then
      for _, t in ipairs { "item", "note", "badge" } do
        local n = count(to, t)
        local src = count(W.db, t)
        local good = res[1] and res[2]
        if n == nil or src == nil then   -- luacheck: ignore 542
          -- (a callback closed or holds one of them: nothing to compare)
        elseif good and good[t] ~= nil and n ~= src then
          violation("copy", fmt("copy said it copied %s rows of %s; the destination has %s, the source %s",
            tostring(good[t]), t, tostring(n), tostring(src)))
        elseif not good and n ~= (t == "badge" and mode == "rows" and 1 or 0) then
          violation("copy", fmt("a copy that failed (%s) left %s rows in %s", tostring(res[2] or res[3]), tostring(n), t))
        end
      end
      to:close()
    end
    if not res[1] then error(res[2], 0) end
    return unpack(res, 2, res.n)
  end, {}, 0, { names = { "copy" } }
end)

-- }======

-- {====== checks

local function digest()
  if not W.db or W.closed_by_callback then return nil end
  local ok, r = pcall(W.db.query, W.db,
    "SELECT (SELECT count(*) || '/' || total(id) || '/' || total(views) || '/' || group_concat(title) || '/' || " ..
    "group_concat(coalesce(deletedAt, '-')) || '/' || group_concat(updatedAt) || '/' || total(big) || '/' || " ..
    "group_concat(coalesce(meta, '-')) FROM item) AS i, " ..
    "(SELECT count(*) || '/' || total(coalesce(item_id, -1)) || '/' || group_concat(coalesce(body, '-')) FROM note) AS n, " ..
    "(SELECT count(*) || '/' || total(coalesce(item_id, -1)) || '/' || group_concat(coalesce(label, '-')) FROM badge) AS b, " ..
    "(SELECT count(*) || '/' || group_concat(coalesce(item_title, '-')) FROM tag) AS t")
  if not ok or type(r) ~= "table" or not r[1] then return nil end
  return tostring(r[1].i) .. "|" .. tostring(r[1].n) .. "|" .. tostring(r[1].b) .. "|" .. tostring(r[1].t)
end

function sentinel()
  if not W.db or W.closed_by_callback then return nil end
  local ok, r = pcall(W.db.query, W.db,
    "SELECT (SELECT id || '/' || title || '/' || views || '/' || published || '/' || kind || '/' || day || '/' || " ..
    "big || '/' || score || '/' || coalesce(deletedAt, '-') || '/' || updatedAt || '/' || meta FROM item WHERE id = ?) AS i, " ..
    "(SELECT coalesce(item_id, '-') || '/' || body || '/' || updatedAt FROM note WHERE id = ?) AS n, " ..
    "(SELECT coalesce(item_id, '-') || '/' || label || '/' || updatedAt FROM badge WHERE id = ?) AS b",
    SENTINEL.id, SENTINEL.id, SENTINEL.id)
  if not ok or type(r) ~= "table" or not r[1] then return nil end
  return tostring(r[1].i) .. "|" .. tostring(r[1].n) .. "|" .. tostring(r[1].b)
end

local function check_invariants(where_)
  stats.checks = stats.checks + 1
  local db, msg = junction.open(W.path, { busy_timeout = 2000 })
  if not db then violation("invariant", where_ .. ": cannot open the world database: " .. tostring(msg)); return end
  local r = db:query("PRAGMA integrity_check")
  if not r or (r[1] and r[1].integrity_check ~= "ok") then
    violation("invariant", where_ .. ": integrity_check: " .. tostring(r and r[1] and r[1].integrity_check))
  end
  r = db:query("PRAGMA foreign_key_check")
  if r and #r > 0 then violation("invariant", where_ .. ": foreign_key_check has " .. #r .. " rows") end
  -- every value junction wrote is of its field's type: no INTEGER column
  -- holding a REAL (an increment past 64 bits), no invalid JSON
  r = db:query("SELECT count(*) AS n FROM item WHERE typeof(views) NOT IN ('integer') OR typeof(big) NOT IN ('integer', 'null') " ..
    "OR typeof(id) <> 'integer' OR (meta IS NOT NULL AND NOT json_valid(meta))")
  if r and r[1].n ~= 0 then violation("invariant", where_ .. ": " .. r[1].n .. " item rows hold a value not of their field's type") end
  db:close()
end

local function short(v)
  local t = type(v)
  if t == "string" then
    if #v > 40 then return fmt("<string %d bytes>", #v) end
    return (fmt("%q", v):gsub("\n", "n"))
  elseif t == "number" then return fmt("%.17g", v)
  elseif t == "userdata" then
    local ok, s = pcall(tostring, v)
    return ok and ("<" .. tostring(s):sub(1, 40) .. ">") or "<userdata>"
  elseif t == "table" then
    if rawequal(v, CYCLIC) then return "<cyclic>" end
    if rawequal(v, DEEP) then return "<deep>" end
    if rawequal(v, RAISING) then return "<raising-mt>" end
    if rawequal(v, LYING) then return "<lying-mt>" end
    local parts, n = {}, 0
    for k, x in next, v do
      n = n + 1
      if n > 6 then parts[#parts + 1] = "..."; break end
      parts[#parts + 1] = (type(k) == "string" and k or "[" .. short(k) .. "]") .. "=" ..
        (type(x) == "table" and (rawequal(x, v) and "<self>" or "<table>") or short(x))
    end
    return "{" .. table.concat(parts, ", ") .. "}" .. (getmetatable(v) and "+mt" or "")
  end
  return "<" .. t .. ">"
end

local function describe(label, args, n)
  local t = {}
  for i = 1, n do t[i] = short(args[i]) end
  return label .. "(" .. table.concat(t, ", ") .. ")"
end

local function names_something(msg, meta)
  if msg:find("closed connection", 1, true) then return true end
  -- a callback's own misuse of the connection (db:close inside a hook) names that call
  if msg:find("^db:%a+: ") then return true end
  for _, nm in ipairs(NAMES) do if msg:find(nm, 1, true) then return true end end
  local low = msg:lower()
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
        violation("fail-shape", fmt("%s returned nil, %s, %s (want nil, string, number)", desc, short(res[3]), short(res[4])))
      end
      return "fail"
    end
    if res.n >= 2 and res[2] == nil and not meta.nilok and not label:find("^inst") then
      violation("bare-nil", desc .. " returned a bare nil")
    end
    return "ok"
  end
  stats.raised = stats.raised + 1
  local e = res[2]
  if is_ours(e) then return "raise" end
  if type(e) ~= "string" then
    violation("raise-type", desc .. " raised a " .. type(e) .. ": " .. short(e))
  elseif #e == 0 then
    violation("raise-empty", desc .. " raised an empty message")
  else
    local body = e:gsub("^[^\n]-junction/[%w_]+%.lua:%d+: ", "")
    if body:find("closed connection", 1, true) then return "raise" end
    if body:find("^attempt to ") or body:find("^table index is ") or body:find("C stack overflow", 1, true)
        or body:find("stack overflow", 1, true) or body:find("^bad argument #%d+ to '[%w_?]+'") then
      violation("raise-internal", e:sub(1, 200), desc)
    elseif not names_something(body, meta) then
      violation("raise-unnamed", e:sub(1, 200), desc)
    end
  end
  return "raise"
end

-- }======

-- {====== main loop

local t0 = rel.now()
new_world()
local CB_MODES = { "raise", "raise_table", "yield", "close", "read", "write", "gc", "refuse", "refuse", "write",
  "mutate", "mutate" }

for i = 1, CALLS do
  stats.calls = i
  if W.closed_by_callback or (i % 4000 == 0) then
    check_invariants("before world " .. (stats.worlds + 1))
    new_world()
  end
  if #W.items < 3 then W.items, W.notes, W.badges = {}, {}, {}; populate(W) end
  local ok_gen, label, fn, args, n, meta = pcall(rng:pick(targets))
  if not ok_gen then
    violation("harness", "argument generation raised: " .. tostring(label))
  else
    meta = meta or {}
    local mode = rng:chance(0.15) and rng:pick(CB_MODES) or nil
    local desc = describe(label, args, n)
    trace:write(i, " ", desc, mode and (" [callback " .. mode .. "]") or "", "\n")
    local before = meta.write and digest() or nil
    local sent = meta.write and meta.safe and sentinel() or nil
    cb_mode = mode
    local res
    if rng:chance(0.1) then
      stats.in_coroutine = stats.in_coroutine + 1
      local co = coroutine.create(function() return fn(unpack(args, 1, n)) end)
      for _ = 1, 5 do
        res = pack(coroutine.resume(co))
        if coroutine.status(co) == "dead" then break end
      end
      if coroutine.status(co) ~= "dead" then res = pack(false, "fuzz: coroutine still suspended") end
    else
      res = pack(pcall(fn, unpack(args, 1, n)))
    end
    cb_mode = nil
    local outcome = classify(label, meta, desc, res)
    if meta.write and before and (outcome == "fail" or outcome == "raise") and not W.closed_by_callback then
      local after = digest()
      if after and after ~= before then
        violation("half-write", fmt("%s %s but changed the data: %s -> %s", desc,
          outcome == "fail" and ("returned nil, " .. short(res[3]) .. ", " .. short(res[4]))
          or ("raised " .. short(res[2])), before, after))
      end
    end
    if meta.write and not meta.safe and not W.closed_by_callback and W.db and sentinel() ~= W.sentinel then
      pcall(put_sentinel, W.db)   -- (a where that may match it changed it: put it back as it was)
    end
    if sent and not W.closed_by_callback then
      stats.sentinel_checked = stats.sentinel_checked + 1
      local now = sentinel()
      if now and now ~= sent then
        violation("sentinel", fmt("%s (%s) changed the sentinel row, which its where cannot match: %s -> %s", desc,
          outcome, sent, now))
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
if #failures > 0 then
  table.sort(failures, function(a, b) return a.call < b.call end)
  for k, v in ipairs(failures) do
    if k > 40 then print(fmt("# ... and %d more distinct violations", #failures - 40)); break end
    print(fmt("# [%s] x%d first at call %d: %s", v.kind, v.n, v.call, v.text))
  end
  print(fmt("FAIL - fuzz_features seed=%d calls=%d: %d distinct violations (trace: %s)", SEED, CALLS, #failures, TRACE))
  os.execute("rm -rf " .. rel.shq(TMPDIR))
  os.exit(1, true)
end
os.execute("rm -rf " .. rel.shq(TMPDIR))
os.remove(TRACE)
print(fmt("ok - fuzz_features seed=%d calls=%d returned=%d (of which nil,msg,code %d) raised=%d sentinel_checks=%d " ..
  "copies=%d callbacks=%d invariant_checks=%d worlds=%d in_coroutine=%d time=%.1fs (%s)", SEED, CALLS, stats.returned,
  stats.failed, stats.raised, stats.sentinel_checked, stats.copies, stats.callbacks, stats.checks, stats.worlds,
  stats.in_coroutine, dt, _VERSION))
os.exit(0, true)

-- }======
