--[==[
model_check.lua -- model-based check of the seed's many-to-many association.

  lua model_check.lua SEED STEPS [EPISODE_LEN]

Runs STEPS random operations on the seed's Post, Genre and TagPostGenre
(DESIGN.md): setGenres, addGenre(s), removeGenre(s), hasGenre(s),
countGenres, getGenres, post:createGenre, Post/Genre create and destroy
(cascades), transactions that commit and transactions that raise (rolled
back), nested transactions (savepoints), failing keys (genres that do not
exist: nil, message, code and nothing changed), duplicates in lists, Genre
instances mixed with keys, stale instances of destroyed rows, snake_case
aliases. After every operation the database is compared with a plain-Lua
model: for each post its set of genre ids, the posts, the genres and their
names.

The run is cut into episodes of EPISODE_LEN steps (default 300), each on a
fresh database (every fourth one a WAL file database, the others
":memory:"), each generated from its own PRNG stream (SEED, episode), so a
failure can be replayed and shrunk within its episode. On a mismatch the
script prints the seed, episode and step, shrinks the episode to a short
failing sequence (dropping operations, unwrapping transactions, dropping list
items), prints it as a standalone Lua script and exits 1.

On top of that it searches for whole classes of defect (MC_CLASSES, see
below and docs/RELIABILITY.md): empty where tables, lists that are not
sequences, values a field cannot hold, instances that must equal a reload,
destroyed instances, log functions that re-enter, close or raise, argument
tables with metamethods, abandoned yielded transactions, and transactions
whose function returns nil, err. A fourth model, Note (a field of every
type, Post hasMany Note), serves them.

With RELIABILITY_PG set to a postgresql:// URL (bash .ci/pg.sh run sets
JUNCTION_TEST_PG; run.sh passes it on), every episode runs on PostgreSQL
instead, in a schema of its own that is dropped after it; the "file"
episodes check through a second connection to that schema.

Prints "ok - model_check seed=S steps=N ..." and exits 0 when all went well.
]==]

local here = (arg and arg[0] or ""):match("^(.*)/[^/]*$") or "."
package.path = here .. "/?.lua;" .. package.path

local rel = require "rel"
local junction = require "junction"

local SEED = tonumber(arg[1]) or 1
local STEPS = tonumber(arg[2]) or 2000
local EPISODE = tonumber(arg[3]) or 300
local TMPDIR = os.getenv("RELIABILITY_TMP") or "/tmp"
local PG = os.getenv("RELIABILITY_PG")
if PG == "" then PG = nil end

local unpack = rawget(table, "unpack") or unpack
-- PUC Lua 5.1 cannot yield across pcall (ours, around db:transaction).
local CAN_YIELD_ACROSS_PCALL = _VERSION ~= "Lua 5.1" or rawget(_G, "jit") ~= nil
local fmt = string.format

-- ---------------------------------------------------------------------------
-- Classes of defect (docs/RELIABILITY.md, "Classes"): each is a kind of
-- operation (or a variant of one) whose expectation is the contract of
-- DESIGN.md: misuse raises and changes nothing, a bad value returns
-- nil, message, code and changes nothing, the database equals the model.
-- MC_CLASSES=all (or a comma list, or "none") replaces the default list,
-- which holds the classes that pass on main.
-- ---------------------------------------------------------------------------

local ALL_CLASSES = { "empty_where", "empty_where_include", "nonarray", "nonarray_model", "wrongtype", "roundtrip",
  "destroyed", "vanished",
  "reenter_log", "log_args", "raising_log", "mm_options", "abandon", "tx_nil_err" }
local DEFAULT_CLASSES = "empty_where,nonarray,nonarray_model,wrongtype,roundtrip,destroyed,vanished,"
  .. "empty_where_include,reenter_log,log_args,raising_log,mm_options,abandon,tx_nil_err"

local CLASSES, OP_CLASSES = {}, {}
do
  local spec = os.getenv("MC_CLASSES") or DEFAULT_CLASSES
  if spec == "all" then spec = table.concat(ALL_CLASSES, ",") end
  for w in spec:gmatch("[%w_]+") do
    local known = w == "none"
    for _, c in ipairs(ALL_CLASSES) do if c == w then known = true end end
    if not known then error("MC_CLASSES: unknown class '" .. w .. "'", 0) end
    if w ~= "none" and not CLASSES[w] then
      CLASSES[w] = true
      if w ~= "tx_nil_err" then OP_CLASSES[#OP_CLASSES + 1] = w end
    end
  end
end

-- ---------------------------------------------------------------------------
-- Operation generation (state-independent: references are resolved against
-- the model when the operation runs, so dropping operations keeps the rest
-- meaningful)
-- ---------------------------------------------------------------------------

local OP_WEIGHTS = {
  { "createPost", 6 }, { "createGenre", 7 }, { "destroyPost", 2 }, { "destroyGenre", 2 },
  { "set", 14 }, { "add1", 6 }, { "addN", 8 }, { "rem1", 5 }, { "remN", 6 },
  { "has1", 4 }, { "hasN", 4 }, { "count", 4 }, { "get", 4 }, { "createG", 4 },
  { "tx", 6 }, { "stale", 1 }, { "inv", 12 }, { "include", 2 },
}
if #OP_CLASSES > 0 then OP_WEIGHTS[#OP_WEIGHTS + 1] = { "cls", 2 * #OP_CLASSES } end
-- The operations a class wraps (log and metamethod classes): what they do
-- is checked as usual.
local REENTER_INNER = { set = true, add1 = true, addN = true, rem1 = true, remN = true, has1 = true,
  hasN = true, count = true, get = true, createG = true, createPost = true, createGenre = true,
  destroyPost = true, destroyGenre = true, include = true, inv = true }
local MM_INNER = { set = true, addN = true, remN = true, hasN = true, count = true, get = true,
  include = true }
local INV_SUBS = { { "set", 4 }, { "addN", 3 }, { "add1", 2 }, { "remN", 2 }, { "rem1", 2 },
  { "hasN", 1 }, { "has1", 1 }, { "count", 1 }, { "get", 1 } }

local ITEM_WEIGHTS = { { "key", 10 }, { "inst", 6 }, { "missing", 1 }, { "dead", 1 } }

local function gen_item(rng)
  return { t = rng:weighted(ITEM_WEIGHTS), r = rng:next() }
end

local function gen_items(rng)
  local n = rng:weighted { { 0, 1 }, { 1, 3 }, { 2, 4 }, { 3, 4 }, { 5, 3 }, { 9, 1 } }
  local items = {}
  for i = 1, n do
    -- Duplicates: now and then repeat an earlier item.
    if i > 1 and rng:chance(0.15) then
      local prev = items[rng:int(1, i - 1)]
      items[i] = { t = prev.t, r = prev.r }
    else
      items[i] = gen_item(rng)
    end
  end
  return items
end

local gen_op

local function gen_ops(rng, budget, depth)
  local ops, used = {}, 0
  while used < budget do
    local op, n = gen_op(rng, depth, budget - used)
    ops[#ops + 1] = op
    used = used + n
  end
  return ops, used
end

local next_id = 0

-- Returns the op and the number of steps it accounts for.
function gen_op(rng, depth, budget)
  next_id = next_id + 1
  local kind = rng:weighted(OP_WEIGHTS)
  local op = { k = kind, id = next_id, p = rng:next(), r = rng:next(),
               snake = rng:chance(0.2), via = rng:chance(0.5) and "inst" or "model" }
  if kind == "tx" and (depth >= 2 or budget < 3) then
    op.k, kind = "set", "set"
  end
  if kind == "cls" then
    local choice = {}
    for _, c in ipairs(OP_CLASSES) do
      if c ~= "abandon" or (depth == 0 and budget >= 3) then choice[#choice + 1] = c end
    end
    if depth >= 2 or #choice == 0 then
      op.k, kind = "set", "set"
    else
      op.cls = rng:pick(choice)
      op.v = rng:int(0, 999999)
      if op.cls == "reenter_log" or op.cls == "log_args" or op.cls == "raising_log" or op.cls == "mm_options" then
        local allowed = op.cls == "mm_options" and MM_INNER or REENTER_INNER
        local inner
        repeat inner = gen_op(rng, 2, 1) until allowed[inner.k]
        if inner.k == "inv" and op.cls == "mm_options" then inner.sub = "set" end
        op.inner = inner
        if op.cls == "mm_options" then op.act = rng:pick { "plain", "raise", "close", "query" }
        elseif op.cls == "reenter_log" then op.act = rng:pick { "query", "mutate" }
        elseif op.cls == "log_args" then op.act = "mutate_args"
        else op.act = rng:pick { "raise", "raise", "raise_tx", "close" } end
        op.at = rng:int(1, 4)
      elseif op.cls == "abandon" then
        op.close = rng:chance(0.5)
        local body, used = gen_ops(rng, rng:int(1, math.min(4, budget - 1)), depth + 1)
        op.body = body
        return op, used + 1
      end
      return op, 1
    end
  end
  if kind == "set" or kind == "addN" or kind == "remN" or kind == "hasN" then
    op.items = gen_items(rng)
  elseif kind == "add1" or kind == "rem1" or kind == "has1" then
    op.items = { gen_item(rng) }
  elseif kind == "createGenre" or kind == "createG" then
    op.dup = rng:chance(0.15)
  elseif kind == "inv" then
    op.sub = rng:weighted(INV_SUBS)
    op.items = (op.sub == "add1" or op.sub == "rem1" or op.sub == "has1") and { gen_item(rng) } or gen_items(rng)
  elseif kind == "include" then
    op.variant = rng:int(1, 3)
  elseif kind == "count" then
    op.where = rng:chance(0.5) and gen_items(rng) or nil
  elseif kind == "get" then
    op.variant = rng:int(1, 3)
    op.limit = rng:int(0, 4)
  elseif kind == "tx" then
    op.raise = rng:chance(0.35)
    op.retnil = CLASSES.tx_nil_err and not op.raise and rng:chance(0.3)
    op.retcode = op.retnil and rng:chance(0.5) and 77 or nil
    op.co = rng:chance(0.25)
    op.mode = rng:pick { false, false, "deferred", "exclusive", "immediate" }
    local body, used = gen_ops(rng, rng:int(1, math.min(6, budget - 1)), depth + 1)
    op.body = body
    return op, used + 1
  end
  return op, 1
end

local function gen_episode(seed, episode, len)
  local rng = rel.prng(seed, episode)
  next_id = 0
  return (gen_ops(rng, len, 0))
end

-- ---------------------------------------------------------------------------
-- Running an episode
-- ---------------------------------------------------------------------------

local function copy_model(m)
  local c = { posts = {}, genres = {}, dead_posts = {}, dead_genres = {} }
  for pid, set in pairs(m.posts) do
    local s = {}
    for g in pairs(set) do s[g] = true end
    c.posts[pid] = s
  end
  for g, name in pairs(m.genres) do c.genres[g] = name end
  for k, v in pairs(m.dead_posts) do c.dead_posts[k] = v end
  for k, v in pairs(m.dead_genres) do c.dead_genres[k] = v end
  c.notes = {}
  for k, v in pairs(m.notes or {}) do c.notes[k] = v end
  return c
end

local function sorted_keys(t)
  local k = {}
  for x in pairs(t) do k[#k + 1] = x end
  table.sort(k)
  return k
end

local function show(v)
  if type(v) == "string" then return fmt("%q", v) end
  return tostring(v)
end

local function show_ret(...)
  local n = select("#", ...)
  local t = {}
  for i = 1, n do t[i] = show((select(i, ...))) end
  return n == 0 and "(nothing)" or table.concat(t, ", ")
end

local FAIL = {}   -- marker metatable of failure objects raised through pcall
local EPISODE_END = {}   -- raised when a class closed the connection: the episode ends there

-- Runs ops on a fresh database; returns nil when everything matched, or a
-- failure { label, msg, step } ; `lines` collects the calls as Lua text.
local function run_episode(ops, use_file, lines)
  local path = ":memory:"
  local schema
  if PG then   -- a schema of its own, dropped at the end of the episode
    schema = fmt("mc_%d_%d", SEED, math.floor(rel.now() * 1000) % 100000000)
    local admin = assert(junction.open(PG))
    assert(admin:exec('DROP SCHEMA IF EXISTS "' .. schema .. '" CASCADE; CREATE SCHEMA "' .. schema .. '"'))
    admin:close()
    path = PG .. (PG:find("?", 1, true) and "&" or "?") .. "options=-csearch_path%3D" .. schema
  elseif use_file then
    path = fmt("%s/junction-mc-%d-%d.sqlite3", TMPDIR, SEED, math.floor(rel.now() * 1000) % 1000000)
    rel.rm_db(path)
  end
  -- The log function of the reenter_log class: inert until an operation
  -- arms it (logst.act), then at the logst.at-th statement it re-enters
  -- junction, closes the connection, raises, or rewrites its params.
  local db, Post, Genre, Note
  local logst = { n = 0 }
  local LOG_RAISE = setmetatable({}, { __tostring = function() return "model_check log raise" end })
  local function log_fn(_, params)
    local act = logst.act
    if not act then return end
    logst.n = logst.n + 1
    if logst.n < logst.at then return end
    logst.act, logst.fired = nil, true
    if act == "raise" or act == "raise_tx" then
      error(LOG_RAISE, 0)
    elseif act == "close" then
      db:close()                      -- a refused close raises, which is fine too
      logst.closed = true
    elseif act == "mutate" then
      -- the params it is given: junction's own copy
      if type(params) == "table" then
        for i = 1, #params + 1 do params[i] = string.rep("m", 64) .. i end
      end
      collectgarbage()
    elseif act == "mutate_args" then
      -- the caller's own argument tables (a key list, a values table):
      -- junction must have read them before it runs any user code
      for _, t in ipairs(logst.args or {}) do
        if type(t) == "table" then
          for k, v in next, t do
            if type(v) ~= "table" then rawset(t, k, type(k) == "number" and 3000000 + k or string.rep("m", 70)) end
          end
        end
      end
      collectgarbage()
    elseif act == "query" then
      local long = {}
      for i = 1, 40 do long[i] = 2000000 + i end
      -- (association calls with key lists, short and long, on an instance
      -- fetched before: they bind keys while the outer call holds its own)
      local p = logst.other
      if p then
        pcall(p.hasGenres, p, long)
        pcall(p.removeGenres, p, long)   -- writes that change nothing: no such genres
        pcall(p.removeGenres, p, { 2000001, 2000002 })
        pcall(p.getGenres, p)
        pcall(p.getNotes, p)
      end
      pcall(Post.count, Post)
      pcall(Post.findAll, Post, { include = { "Genres" } })
      collectgarbage()
    end
  end

  local oopts = use_file and not PG and { journal_mode = "wal", synchronous = "off" } or {}
  if CLASSES.reenter_log or CLASSES.log_args or CLASSES.raising_log then oopts.log = log_fn end
  db = assert(junction.open(path, oopts))
  Post, Genre = rel.seed_models(db, junction)
  -- A fourth model for the classes: a field of every type (n_str on the column n_string), and a hasMany.
  local T = junction.types
  Note = db:define("Note", {
    tableName = "note", underscored = true,
    fields = {
      note_id = { type = T.INTEGER, primaryKey = true, autoIncrement = true },
      post_id = { type = T.INTEGER, references = { model = "post", key = "post_id" }, onDelete = "set null" },
      n_int = { type = T.INTEGER }, n_text = { type = T.TEXT }, n_str = { type = T.STRING(20), field = "n_string" },
      n_real = { type = T.REAL }, n_bool = { type = T.BOOLEAN }, n_date = { type = T.DATE },
      n_blob = { type = T.BLOB },
    },
  })
  db:associate {
    Post = { { hasMany = "Note", foreignKey = "post_id", as = "Notes" } },
    Note = { { belongsTo = "Post", foreignKey = "post_id", as = "Post" } },
  }
  assert(db:sync())

  local model = { posts = {}, genres = {}, dead_posts = {}, dead_genres = {}, notes = {} }
  local P, G = {}, {}           -- instances by id
  local step = 0
  local failure
  local emit = lines and function(s) lines[#lines + 1] = s end or function() end
  local indent = ""

  local function fail(label, msg)
    failure = failure or { label = label, msg = msg, step = step }
    error(setmetatable({ label = label, msg = msg }, FAIL), 0)
  end

  local function is_fail(ok, msg, code)
    return ok == nil and type(msg) == "string" and type(code) == "number"
  end

  local function expect_fail(what, ...)
    local n, ok, msg, code = select("#", ...), ...
    if not is_fail(ok, msg, code) or n ~= 3 then
      fail("return", fmt("%s: expected nil, message, code; got %s", what, show_ret(...)))
    end
    if code % 256 ~= 19 then
      fail("return", fmt("%s: expected a constraint code (19, 787, 2067 ...), got %s (%s)", what, show(code), msg))
    end
  end

  local function expect_value(what, want, ...)
    local got = ...
    if got ~= want then
      fail("return", fmt("%s: expected %s, got %s", what, show(want), show_ret(...)))
    end
  end

  local function verify(what, conn)
    local db = conn or db   -- luacheck: ignore 431
    local rows, err = db:query("SELECT post_id, genre_id FROM tag_post_genre")
    if not rows then fail("query", what .. ": db:query failed: " .. tostring(err)) end
    local actual = {}
    for _, r in ipairs(rows) do
      local s = actual[r.post_id]
      if not s then s = {}; actual[r.post_id] = s end
      if s[r.genre_id] then fail("links", fmt("%s: duplicate link %s:%s", what, r.post_id, r.genre_id)) end
      s[r.genre_id] = true
    end
    for pid, set in pairs(model.posts) do
      local a, e = rel.set_str(actual[pid] or {}), rel.set_str(set)
      if a ~= e then
        fail("links", fmt("%s: post %d has genres {%s}, model says {%s}", what, pid, a, e))
      end
    end
    for pid in pairs(actual) do
      if not model.posts[pid] then
        fail("links", fmt("%s: links of post %s, which the model says does not exist", what, tostring(pid)))
      end
    end
    local prows = assert(db:query("SELECT post_id FROM post"))
    local pset = {}
    for _, r in ipairs(prows) do pset[r.post_id] = true end
    if rel.set_str(pset) ~= rel.set_str(model.posts) then
      fail("posts", fmt("%s: posts {%s}, model {%s}", what, rel.set_str(pset), rel.set_str(model.posts)))
    end
    local grows = assert(db:query("SELECT genre_id, name FROM genre"))
    local gset = {}
    for _, r in ipairs(grows) do
      gset[r.genre_id] = true
      if model.genres[r.genre_id] ~= r.name then
        fail("genres", fmt("%s: genre %s named %s, model says %s", what, tostring(r.genre_id),
          show(r.name), show(model.genres[r.genre_id])))
      end
    end
    if rel.set_str(gset) ~= rel.set_str(model.genres) then
      fail("genres", fmt("%s: genres {%s}, model {%s}", what, rel.set_str(gset), rel.set_str(model.genres)))
    end
    local nrows = assert(db:query("SELECT note_id, post_id FROM note"))
    local nset = {}
    for _, r in ipairs(nrows) do
      nset[r.note_id] = true
      if model.notes[r.note_id] ~= (r.post_id or false) then
        fail("notes", fmt("%s: note %s has post_id %s, model says %s", what, tostring(r.note_id),
          show(r.post_id), show(model.notes[r.note_id])))
      end
    end
    if rel.set_str(nset) ~= rel.set_str(model.notes) then
      fail("notes", fmt("%s: notes {%s}, model {%s}", what, rel.set_str(nset), rel.set_str(model.notes)))
    end
  end

  -- Every column of every row (what verify does not model: post texts,
  -- timestamps, note values), for the operations that must change nothing.
  local function digest()
    if PG then   -- the same, in PostgreSQL's words, in key order
      local q = "quote_nullable"
      local r = assert(db:query(fmt("SELECT (SELECT string_agg(post_id || %s(text) || %s(updated_at), '|' "
        .. "ORDER BY post_id) FROM post) AS p, (SELECT string_agg(genre_id || %s(name) || %s(updated_at), '|' "
        .. "ORDER BY genre_id) FROM genre) AS g, (SELECT string_agg(note_id || %s(post_id) || %s(n_int) || "
        .. "%s(n_text) || %s(n_string) || %s(n_real) || %s(n_bool) || %s(n_date) || %s(n_blob), '|' "
        .. "ORDER BY note_id) FROM note) AS n, (SELECT string_agg(post_id || ':' || genre_id || "
        .. "%s(updated_at), '|' ORDER BY post_id, genre_id) FROM tag_post_genre) AS t",
        q, q, q, q, q, q, q, q, q, q, q, q, q)))
      local d = r[1]
      return tostring(d.p) .. "#" .. tostring(d.g) .. "#" .. tostring(d.n) .. "#" .. tostring(d.t)
    end
    local r = assert(db:query("SELECT (SELECT group_concat(post_id || quote(text) || quote(updated_at), '|') "
      .. "FROM post) AS p, (SELECT group_concat(genre_id || quote(name) || quote(updated_at), '|') FROM genre) AS g, "
      .. "(SELECT group_concat(note_id || quote(post_id) || quote(n_int) || quote(n_text) || quote(n_string) || "
      .. "quote(n_real) || quote(n_bool) || quote(n_date) || quote(n_blob), '|') FROM note) AS n, "
      .. "(SELECT group_concat(post_id || ':' || genre_id || quote(updated_at), '|') FROM tag_post_genre) AS t"))
    local d = r[1]
    return tostring(d.p) .. "#" .. tostring(d.g) .. "#" .. tostring(d.n) .. "#" .. tostring(d.t)
  end

  -- Reference resolution -------------------------------------------------

  local function pick_post(r)
    local ids = sorted_keys(model.posts)
    if #ids == 0 then return nil end
    return ids[1 + r % #ids]
  end

  local function pick_genre(r)
    local ids = sorted_keys(model.genres)
    if #ids == 0 then return nil end
    return ids[1 + r % #ids]
  end

  local function post_inst(pid)
    if not P[pid] then
      P[pid] = Post:findByPk(pid)
      if not P[pid] then fail("lookup", "Post:findByPk(" .. pid .. ") found nothing") end
      emit(fmt("%sP[%d] = Post:findByPk(%d)", indent, pid, pid))
    end
    return P[pid], fmt("P[%d]", pid)
  end

  local function genre_inst(gid)
    if not G[gid] then
      G[gid] = Genre:findByPk(gid)
      if not G[gid] then fail("lookup", "Genre:findByPk(" .. gid .. ") found nothing") end
      emit(fmt("%sG[%d] = Genre:findByPk(%d)", indent, gid, gid))
    end
    return G[gid], fmt("G[%d]", gid)
  end

  -- items -> list of Lua values, their text, the ids, whether one is missing
  -- items -> values (genres, or posts when side == "post"), their text, ids,
  -- whether one is missing, whether one is a stale instance
  local function resolve_items(items, side)
    local pick, inst, dead_set, cache, letter = pick_genre, genre_inst, model.dead_genres, G, "G"
    if side == "post" then
      pick, inst, dead_set, cache, letter = pick_post, post_inst, model.dead_posts, P, "P"
    end
    local vals, texts, ids, missing, stale = {}, {}, {}, false, false
    for i, it in ipairs(items) do
      local t, gid = it.t, nil
      if t == "key" or t == "inst" then
        gid = pick(it.r)
        if not gid then t = "missing" end
      end
      if t == "dead" then
        local dead = sorted_keys(dead_set)
        if #dead == 0 then
          t = "missing"
        else
          gid = dead[1 + it.r % #dead]
          missing = true
          if cache[gid] and it.r % 2 == 0 then
            vals[i], texts[i] = cache[gid], fmt("%s[%d]", letter, gid)
            stale = true
          else
            vals[i], texts[i] = gid, tostring(gid)
          end
        end
      end
      if t == "missing" then
        gid = 1000000 + it.r % 1000
        missing = true
        vals[i], texts[i] = gid, tostring(gid)
      elseif t == "key" then
        vals[i], texts[i] = gid, tostring(gid)
      elseif t == "inst" then
        vals[i], texts[i] = inst(gid)
      end
      ids[i] = gid
    end
    return vals, "{" .. table.concat(texts, ", ") .. "}", ids, missing, stale
  end

  local function name_of(method, snake)
    if not snake then return method end
    return (method:gsub("(%u)", function(c) return "_" .. c:lower() end))
  end

  -- The mm_options class: argument tables get a metatable whose
  -- metamethods record that junction called them (it must read arguments
  -- raw), then raise, close the connection or query through junction.
  local mm_act, mm_hit = nil, nil
  local function mm_fn(name)
    return function(_, k)
      mm_hit = mm_hit or (name == "__index" or name == "__newindex") and fmt("%s (key %s)", name, show(k)) or name
      local a = mm_act
      if a == "raise" then error("model_check " .. name .. " raise", 0)
      elseif a == "close" then pcall(db.close, db)
      elseif a == "query" then pcall(Post.count, Post); collectgarbage()
      end
      return nil
    end
  end
  local MM = { __index = mm_fn("__index"), __newindex = mm_fn("__newindex"), __len = mm_fn("__len"),
               __pairs = mm_fn("__pairs"), __ipairs = mm_fn("__ipairs"), __call = mm_fn("__call") }
  local function mmw(t)
    if mm_act and type(t) == "table" then return setmetatable(t, MM) end
    return t
  end
  local function mm_check(what)
    if mm_hit then
      local h = mm_hit
      mm_hit, mm_act = nil, nil
      fail("metamethod", fmt("%s: junction called %s of an argument table (arguments must be read raw)", what, h))
    end
  end

  local function call(obj, method, snake, ...)
    local name = name_of(method, snake)
    local f = obj[name]
    if type(f) ~= "function" then fail("method", fmt("%s is not a function but %s", name, type(f))) end
    if logst.armed then logst.act, logst.armed = logst.armed, nil end
    if logst.act then
      logst.args = { ... }
      local t = {}
      for i = 1, select("#", ...) do
        local a = select(i, ...)
        if type(a) == "table" then
          local u = {}
          for j, x in ipairs(a) do u[j] = show(x) end
          a = "{" .. table.concat(u, ", ") .. "}"
        else
          a = show(a)
        end
        t[i] = a
      end
      logst.call = fmt("%s:%s(%s)", tostring(obj):match("^[^{]*"), name, table.concat(t, ", "))
    end
    local function ret(ok, ...)
      logst.act = nil
      if logst.fired and logst.ack == nil then
        local a, b, c = ...
        logst.ack = ok and not (a == nil and type(b) == "string" and type(c) == "number")
      end
      mm_check(name)
      return name, ok, ...
    end
    return ret(pcall(f, obj, ...))
  end

  -- A raise out of a call that should have worked or failed by return.
  local function check_no_raise(what, ok, ...)
    if not ok then
      local e = ...
      if getmetatable(e) == FAIL then error(e, 0) end
      fail("raise", fmt("%s raised: %s", what, tostring(e)))
    end
    return ...
  end

  local exec_op

  local co_depth = 0     -- > 0 inside a transaction run in a coroutine
  local no_yield = 0     -- > 0 under our own pcall on PUC 5.1 (no yield across it)

  local function exec_ops(ops_)
    for _, op in ipairs(ops_) do
      exec_op(op)
      -- A transaction's function may yield (OpenResty): do so between calls.
      if co_depth > 0 and no_yield == 0 then coroutine.yield("tick") end
    end
  end

  -- {====== the classes of defect (see CLASSES above)

  -- pcall's results as "raise", err / "fail", msg, code / "ok", values
  local function outcome(ok, ...)
    if not ok then
      local e = ...
      if getmetatable(e) == FAIL then error(e, 0) end
      return "raise", e
    end
    local a, b, c = ...
    if a == nil and type(b) == "string" and type(c) == "number" then return "fail", b, c end
    return "ok", ...
  end

  local function expect_raise(what, word, ...)
    local kind, e = outcome(...)
    if kind ~= "raise" then
      fail("misuse", fmt("%s: expected a raised misuse error, got %s", what, show_ret(select(2, ...))))
    end
    if type(e) ~= "string" then fail("misuse", fmt("%s: raised a %s, not a message", what, type(e))) end
    if word and not e:lower():find(word:lower(), 1, true) then
      fail("misuse", fmt("%s: the message does not say %q: %s", what, word, e))
    end
    return e
  end

  local function unchanged(what, before)
    local after = digest()
    if after ~= before then fail("changed", fmt("%s changed the data:\n#   %s\n# ->%s", what, before, after)) end
    verify(what)
  end

  local function end_of_tx_rollback(snap)
    model.posts, model.genres, model.notes = snap.posts, snap.genres, snap.notes
    model.dead_posts, model.dead_genres = snap.dead_posts, snap.dead_genres
    for id in pairs(P) do if not model.dead_posts[id] then P[id] = nil end end
    for id in pairs(G) do if not model.dead_genres[id] then G[id] = nil end end
  end

  local function a_note()
    local ids = sorted_keys(model.notes)
    if #ids > 0 then return ids[1] end
    local n = Note:create { n_int = 1, n_text = "t" }
    if not n then fail("return", "Note:create{n_int = 1, n_text = \"t\"} failed") end
    model.notes[n.note_id] = false
    emit(fmt("%sNote:create{n_int = 1, n_text = \"t\"}", indent))
    return n.note_id
  end

  -- Each gives a where that is empty, or has a branch that is, for a
  -- model whose key is k (a live key value v), and its text.
  local EMPTY_WHERES = {
    function() return {}, "{}" end,
    function(k) return { [k] = nil }, fmt("{ %s = nil }", k) end,
    function() return { ["and"] = {} }, "{ [\"and\"] = {} }" end,
    function() return { ["or"] = { {} } }, "{ [\"or\"] = { {} } }" end,
    function() return { ["not"] = {} }, "{ [\"not\"] = {} }" end,
    function(k, v) return { ["or"] = { { [k] = v }, { [k] = nil } } },
      fmt("{ [\"or\"] = { { %s = %s }, { %s = nil } } }", k, tostring(v), k) end,
    function(k, v) return { [k] = v, ["and"] = { {} } }, fmt("{ %s = %s, [\"and\"] = { {} } }", k, tostring(v)) end,
    function() return { ["not"] = { ["or"] = {} } }, "{ [\"not\"] = { [\"or\"] = {} } }" end,
    function(k) return { [k] = {} }, fmt("{ %s = {} }", k) end,
  }

  -- "Every row" said explicitly (all = true), and its misuses: both a
  -- where and all, or neither.
  local function cls_every_row(op, v)
    local before = digest()
    if v == 0 then
      local n = 0
      for _ in pairs(model.genres) do n = n + 1 end
      local line = "Genre:destroy{ all = true }"
      local kind, got = outcome(pcall(Genre.destroy, Genre, { all = true }))
      if kind ~= "ok" or got ~= n then fail("all", fmt("%s: expected %d, got %s %s", line, n, kind, show(got))) end
      for gid in pairs(model.genres) do model.dead_genres[gid] = true end
      model.genres = {}
      for _, set in pairs(model.posts) do for g in pairs(set) do set[g] = nil end end
      verify(line)
      emit(fmt("%s%s  --> %d", indent, line, n))
    elseif v == 1 then
      local n = 0
      for _ in pairs(model.posts) do n = n + 1 end
      local text = "every " .. op.id
      local line = fmt("Post:update({ text = %q }, { all = true })", text)
      local kind, got = outcome(pcall(Post.update, Post, { text = text }, { all = true }))
      if kind ~= "ok" or got ~= n then fail("all", fmt("%s: expected %d, got %s %s", line, n, kind, show(got))) end
      local r = assert(db:query("SELECT count(*) AS n FROM post WHERE text = ?", text))
      if r[1].n ~= n then fail("all", fmt("%s: %d rows hold the text, want %d", line, r[1].n, n)) end
      verify(line)
      emit(fmt("%s%s  --> %d", indent, line, n))
    else
      local pid = pick_post(op.p) or 1
      local calls = {
        { fmt("Post:destroy{ where = { post_id = %d }, all = true }", pid),
          function() return pcall(Post.destroy, Post, { where = { post_id = pid }, all = true }) end },
        { fmt("Post:update({ text = \"x\" }, { where = { post_id = %d }, all = true })", pid),
          function() return pcall(Post.update, Post, { text = "x" }, { where = { post_id = pid }, all = true }) end },
        { "Genre:destroy{}", function() return pcall(Genre.destroy, Genre, {}) end },
        { "Genre:update({ name = \"x\" }, {})", function() return pcall(Genre.update, Genre, { name = "x" }, {}) end },
        { "Post:destroy()", function() return pcall(Post.destroy, Post) end },
      }
      local c = calls[1 + op.r % #calls]
      expect_raise(c[1], nil, c[2]())
      unchanged(c[1], before)
      emit(fmt("%s%s  --> raises, nothing changed", indent, c[1]))
    end
  end

  local function cls_empty_where(op)
    if op.cls == "empty_where" and op.v % 25 < 4 then return cls_every_row(op, op.v % 25) end
    local mk = EMPTY_WHERES[1 + op.v % #EMPTY_WHERES]
    local pid, gid = pick_post(op.p), pick_genre(op.r)
    local targets = {
      { "Post:findOne", "post_id", function(x) return pcall(Post.findOne, Post, { where = x }) end },
      { "Post:findAll", "post_id", function(x) return pcall(Post.findAll, Post, { where = x }) end },
      { "Genre:count", "genre_id", function(x) return pcall(Genre.count, Genre, { where = x }) end },
      { "Post:update", "post_id", function(x) return pcall(Post.update, Post, { text = "all" }, { where = x }) end },
      { "Genre:update", "genre_id", function(x)
          return pcall(Genre.update, Genre, { name = "all" }, { where = x }) end },
      { "Post:destroy", "post_id", function(x) return pcall(Post.destroy, Post, { where = x }) end },
      { "Genre:destroy", "genre_id", function(x) return pcall(Genre.destroy, Genre, { where = x }) end },
      { "Note:update", "note_id", function(x) return pcall(Note.update, Note, { n_int = 0 }, { where = x }) end },
    }
    local include = { "Post:findAll{include}", "genre_id", function(x)
      return pcall(Post.findAll, Post, { include = { { association = "Genres", where = x } } }) end }
    if pid then
      local p = post_inst(pid)
      targets[#targets + 1] = { "post:getGenres", "genre_id", function(x)
          return pcall(p.getGenres, p, { where = x }) end }
      targets[#targets + 1] = { "post:countGenres", "genre_id", function(x)
          return pcall(p.countGenres, p, { where = x }) end }
      targets[#targets + 1] = { "post:getNotes", "note_id", function(x) return pcall(p.getNotes, p, { where = x }) end }
      targets[#targets + 1] = { "post:countNotes", "note_id", function(x)
          return pcall(p.countNotes, p, { where = x }) end }
    end
    if gid then
      local g = genre_inst(gid)
      targets[#targets + 1] = { "genre:getPosts", "post_id", function(x)
          return pcall(g.getPosts, g, { where = x }) end }
    end
    local t = targets[1 + op.p % #targets]
    if op.cls == "empty_where_include" then t = include end
    local w, wtext = mk(t[2], 1)
    local line = fmt("%s{ where = %s }", t[1], wtext)
    local before = digest()
    expect_raise(line, "where", t[3](w))
    unchanged(line, before)
    emit(fmt("%s%s  --> raises (an empty where), nothing changed", indent, line))
  end

  local NONARRAYS = {
    { "{ name = \"a\" }", function() return { name = "a" } end },
    { "{ [2] = a, [3] = b }", function(a, b) return { [2] = a, [3] = b } end },
    { "{ a, b, x = 1 }", function(a, b) return { a, b, x = 1 } end },
    { "{ [1] = a, [3] = b }", function(a, b) return { [1] = a, [3] = b } end },
    { "{ [1.5] = a }", function(a) return { [1.5] = a } end },
    { "{ [0] = a, b }", function(a, b) return { [0] = a, b } end },
    { "nil", function() return nil end },
  }

  local function cls_nonarray(op)
    local l = NONARRAYS[1 + op.v % #NONARRAYS]
    local pid, gid = pick_post(op.p), pick_genre(op.r)
    if not pid or not gid then step = step - 1; return end
    local p, ptext = post_inst(pid)
    local g, gtext = genre_inst(gid)
    local nid = a_note()
    local gids, pids = sorted_keys(model.genres), sorted_keys(model.posts)
    local ga, gb = gids[1], gids[#gids]
    local pa, pb = pids[1], pids[#pids]
    local targets = {
      { ptext, p, "setGenres", ga, gb }, { ptext, p, "addGenres", ga, gb },
      { ptext, p, "removeGenres", ga, gb }, { ptext, p, "hasGenres", ga, gb },
      { gtext, g, "setPosts", pa, pb }, { gtext, g, "addPosts", pa, pb },
      { gtext, g, "removePosts", pa, pb }, { gtext, g, "hasPosts", pa, pb },
      { ptext, p, "setNotes", nid, nid }, { ptext, p, "addNotes", nid, nid },
      { ptext, p, "removeNotes", nid, nid }, { ptext, p, "hasNotes", nid, nid },
    }
    local t = targets[1 + op.p % #targets]
    if op.cls == "nonarray_model" then
      t = { "Genre", Genre, "bulkCreate", { name = "bulk a" .. op.id }, { name = "bulk b" .. op.id } }
    end
    local line = fmt("%s:%s(%s)", t[1], t[3], l[1])
    local before = digest()
    expect_raise(line, t[3]:gsub("^%l+", ""):sub(1, -2), pcall(t[2][t[3]], t[2], l[2](t[4], t[5])))
    unchanged(line, before)
    emit(fmt("%s%s  --> raises (not a list), nothing changed", indent, line))
  end

  local BAD_VALUES = {
    n_int = { { "\"many\"", "many" }, { "7.5", 7.5 }, { "math.huge", math.huge }, { "-math.huge", -math.huge },
              { "0/0", 0 / 0 }, { "true", true }, { "\"views + 1\"", "views + 1" }, { "\"12abc\"", "12abc" } },
    n_bool = { { "\"yes\"", "yes" }, { "0.5", 0.5 }, { "\"no\"", "no" } },
    n_text = { { "true", true } },
    n_str = { { "true", true } },
    n_real = { { "\"abc\"", "abc" }, { "true", true }, { "0/0", 0 / 0 } },
    n_date = { { "\"not a date\"", "not a date" }, { "true", true }, { "\"yesterday\"", "yesterday" } },
    n_blob = { { "true", true } },
  }
  local BAD_FIELDS = { "n_int", "n_bool", "n_text", "n_str", "n_real", "n_date", "n_blob", "post.text", "genre.name" }

  local function cls_wrongtype(op)
    local f = BAD_FIELDS[1 + op.v % #BAD_FIELDS]
    local vals = BAD_VALUES[f] or { { "true", true }, { "false", false } }
    local bv = vals[1 + op.r % #vals]
    local vtext, v = bv[1], bv[2]
    local nid = a_note()
    local before = digest()
    local via = op.p % 8
    local line, res
    if f == "post.text" or f == "genre.name" then
      local pid = pick_post(op.p)
      via = via % 4
      if via == 0 then
        line = fmt("Post:create{ text = %s }", vtext)
        res = { pcall(Post.create, Post, { text = v }) }
      elseif via == 1 then
        line = fmt("Genre:create{ name = %s }", vtext)
        res = { pcall(Genre.create, Genre, { name = v }) }
      elseif via == 2 and pid then
        local p, ptext = post_inst(pid)
        line = fmt("%s:createGenre{ name = %s }", ptext, vtext)
        res = { pcall(p.createGenre, p, { name = v }) }
      else
        line = fmt("Post:update({ text = %s }, { where = { post_id = %d } })", vtext, pid or 1)
        res = { pcall(Post.update, Post, { text = v }, { where = { post_id = pid or 1 } }) }
      end
    elseif via == 0 or via == 1 then
      local other = f == "n_int" and "n_str" or "n_int"
      line = fmt("Note:create{ %s = %s, %s = 1 }", f, vtext, other)
      res = { pcall(Note.create, Note, { [f] = v, [other] = other == "n_int" and 1 or "1" }) }
    elseif via == 2 then
      line = fmt("Note:update({ %s = %s }, { where = { note_id = %d } })", f, vtext, nid)
      res = { pcall(Note.update, Note, { [f] = v }, { where = { note_id = nid } }) }
    elseif via == 3 then
      local n = assert(Note:findByPk(nid))
      line = fmt("Note:findByPk(%d):update{ %s = %s }", nid, f, vtext)
      res = { pcall(n.update, n, { [f] = v }) }
    elseif via == 4 then
      local n = assert(Note:findByPk(nid))
      line = fmt("n = Note:findByPk(%d); n.%s = %s; n:save()", nid, f, vtext)
      local okset, e = pcall(function() n[f] = v end)
      if okset then res = { pcall(n.save, n) } else res = { false, e } end
    elseif via == 5 then
      line = fmt("Note:bulkCreate{ { n_int = 1 }, { %s = %s } }", f, vtext)
      res = { pcall(Note.bulkCreate, Note, { { n_int = 1 }, { [f] = v } }) }
    elseif via == 6 then
      local wf = f == "n_text" and "n_str" or "n_text"
      line = fmt("Note:findOrCreate{ where = { %s = \"foc%d\" }, defaults = { %s = %s } }", wf, op.id, f, vtext)
      res = { pcall(Note.findOrCreate, Note, { where = { [wf] = "foc" .. op.id }, defaults = { [f] = v } }) }
    else
      local pid = pick_post(op.p)
      if not pid then step = step - 1; return end
      local p, ptext = post_inst(pid)
      line = fmt("%s:createNote{ %s = %s }", ptext, f, vtext)
      res = { pcall(p.createNote, p, { [f] = v }) }
    end
    local kind = outcome(unpack(res, 1, 5))
    -- (an assignment that raises before save is fine: the value never got in)
    if kind ~= "fail" and not (via == 4 and kind == "raise" and not f:find("%.")) then
      fail("value", fmt("%s: expected nil, message, code (a value the field cannot hold), got %s%s", line,
        kind == "raise" and "a raise: " or "", show_ret(unpack(res, 2, 5))))
    end
    unchanged(line, before)
    emit(fmt("%s%s  --> nil, message, code; nothing changed", indent, line))
  end

  -- A value of every type that each field holds; create, save and update
  -- give back the instance a reload would.
  local GOOD = {
    n_int = { 0, 5, -3, 2 ^ 40, 7.0 }, n_text = { "t", "", "a\0b" }, n_str = { "s" },
    n_real = { 1.5, 2, -0.25 }, n_bool = { true, false }, n_date = { "2026-01-02 03:04:05", 1e9, 86400 },
    n_blob = { "\0\1\2", "" },
  }
  -- PostgreSQL's text holds no NUL: such text is a returned failure there (spec/values_spec.lua)
  if PG then GOOD.n_text[3] = "a\tb" end
  local function same(a, b)
    return type(a) == type(b) and (a == b) and tostring(a) == tostring(b)
  end

  local function cls_roundtrip(op)
    local values, texts = {}, {}
    local r = op.v
    for _, f in ipairs { "n_int", "n_text", "n_str", "n_real", "n_bool", "n_date", "n_blob" } do
      if r % 3 ~= 0 then
        local c = GOOD[f]
        values[f] = c[1 + r % #c]
        texts[#texts + 1] = f .. " = " .. show(values[f])
      end
      r = math.floor(r / 3)
    end
    local line = "Note:create{ " .. table.concat(texts, ", ") .. " }"
    local kind, n = outcome(pcall(Note.create, Note, values))
    if kind ~= "ok" or type(n) ~= "userdata" then
      fail("roundtrip", fmt("%s: expected an instance, got %s: %s", line, kind, tostring(n)))
    end
    model.notes[n.note_id] = false
    local function compare(what, inst)
      local fresh = Note:findByPk(inst.note_id)
      if not fresh then fail("roundtrip", what .. ": the row is not there") end
      for _, f in ipairs { "note_id", "n_int", "n_text", "n_str", "n_real", "n_bool", "n_date", "n_blob" } do
        if not same(inst[f], fresh[f]) then
          fail("roundtrip", fmt("%s: the instance holds %s = %s (%s), a reload gives %s (%s)", what, f,
            show(inst[f]), type(inst[f]), show(fresh[f]), type(fresh[f])))
        end
      end
    end
    compare(line, n)
    -- and after update (of the fields not set at create)
    local upd, utexts = {}, {}
    for f, c in pairs(GOOD) do
      if values[f] == nil then upd[f] = c[1 + op.r % #c]; utexts[#utexts + 1] = f .. " = " .. show(upd[f]) end
    end
    table.sort(utexts)
    if next(upd) then
      local uline = line .. ":update{ " .. table.concat(utexts, ", ") .. " }"
      local k2, n2 = outcome(pcall(n.update, n, upd))
      if k2 ~= "ok" then fail("roundtrip", fmt("%s: expected the instance, got %s", uline, k2)) end
      compare(uline, n2)
      compare(uline .. " (the instance itself)", n)
    end
    verify(line)
    emit(fmt("%s%s  --> the instance equals a reload", indent, line))
  end

  local function cls_destroyed(op)
    local isPost = op.v % 2 == 0
    local id
    if isPost then id = pick_post(op.p) else id = pick_genre(op.r) end
    if not id then step = step - 1; return end
    local inst, text
    if isPost then inst, text = post_inst(id) else inst, text = genre_inst(id) end
    local key, Model, field = isPost and "post_id" or "genre_id", isPost and Post or Genre, isPost and "text" or "name"
    -- (vanished: the row is deleted through the model, the instance is not told)
    local by_model = op.cls == "vanished"
    local dline
    if by_model then
      dline = fmt("%s:destroy{ where = { %s = %d } }", isPost and "Post" or "Genre", key, id)
      expect_value(dline, 1, Model:destroy { where = { [key] = id } })
    else
      dline = text .. ":destroy()"
      expect_value(dline, true, inst:destroy())
    end
    if isPost then
      model.posts[id], model.dead_posts[id] = nil, true
      for nid, p in pairs(model.notes) do if p == id then model.notes[nid] = false end end
    else
      model.genres[id], model.dead_genres[id] = nil, true
      for _, set in pairs(model.posts) do set[id] = nil end
    end
    verify(dline)
    local live_g, live_p = pick_genre(op.r), pick_post(op.p)
    local acts = {
      { "save()", function() return inst:save() end },
      { field .. " = \"back\"; save()", function() inst[field] = "back" .. op.id; return inst:save() end },
      { "update{ " .. field .. " = \"back\" }", function() return inst:update { [field] = "back" .. op.id } end },
      { "reload()", function() return inst:reload() end },
      { "destroy()", function() return inst:destroy() end },
    }
    if isPost and live_g then
      acts[#acts + 1] = { "setGenres{" .. live_g .. "}", function() return inst:setGenres { live_g } end }
      acts[#acts + 1] = { "addGenre(" .. live_g .. ")", function() return inst:addGenre(live_g) end }
      acts[#acts + 1] = { "createNote{}", function() return inst:createNote { n_int = 1 } end }
    elseif not isPost and live_p then
      acts[#acts + 1] = { "addPost(" .. live_p .. ")", function() return inst:addPost(live_p) end }
    end
    local a = acts[1 + op.r % #acts]
    local line = fmt("%s; %s:%s", dline, text, a[1])
    local before = digest()
    local res = { pcall(a[2]) }
    local kind = outcome(unpack(res, 1, 5))
    if kind == "ok" then
      -- Only a second destroy may answer true (nothing to do); nothing else
      -- on a row that is gone may be acknowledged.
      if not (a[1] == "destroy()" and res[2] == true) then
        fail("destroyed", fmt("%s: acknowledged on a destroyed row: %s", line, show_ret(unpack(res, 2, 4))))
      end
    end
    unchanged(line, before)
    if not by_model then
      local okt, s = pcall(tostring, inst)
      if not okt or not tostring(s):find("destroyed", 1, true) then
        fail("destroyed", fmt("%s: tostring does not say destroyed: %s", dline, tostring(s)))
      end
    end
    emit(fmt("%s%s  --> raises or nil, msg, code; nothing changed", indent, line))
  end

  -- Runs the inner operation with the log armed; see log_fn.
  local function cls_reenter_log(op)
    local inner, act = op.inner, op.act
    emit(fmt("%s-- the log function will %s at the %d%s statement of the next call", indent, act, op.at,
      op.at == 1 and "st" or op.at == 2 and "nd" or op.at == 3 and "rd" or "th"))
    logst.n, logst.at, logst.fired, logst.closed, logst.ack = 0, op.at, false, false, nil
    local opid = pick_post(op.r)
    logst.other = opid and (post_inst(opid)) or nil
    if act == "query" or act == "mutate" or act == "mutate_args" then
      -- Re-entering (reads, and a write that changes nothing) or rewriting
      -- the params table must not change what the call does.
      logst.armed = act
      exec_op(inner)
      logst.armed, logst.act = nil, nil
      return
    end
    local snap = copy_model(model)
    local saved_step = step
    local ok, e
    if act == "raise_tx" then
      -- armed for the whole transaction: BEGIN, the call's statements, COMMIT
      logst.act = act
      ok, e = pcall(db.transaction, db, function() exec_op(inner) end)
      logst.act = nil
    else
      logst.armed = act
      ok, e = pcall(exec_op, inner)
      logst.armed, logst.act = nil, nil
    end
    if not logst.fired then
      if not ok then error(e, 0) end
      return
    end
    step = saved_step + 1
    emit(fmt("%s-- the call: %s", indent, tostring(logst.call)))
    if not ok and logst.ack then error(e, 0) end   -- acknowledged, then wrong: a real failure
    if not ok then
      -- The call was refused or raised (the log's error or the close):
      -- nothing of it may have been written.
      failure = nil
      end_of_tx_rollback(snap)
    end
    if logst.closed then
      if use_file then
        local db2 = assert(junction.open(path))
        verify("after the log function closed the connection (through a new connection)", db2)
        db2:close()
      end
      error(EPISODE_END, 0)
    end
    verify(fmt("after a call whose log function did %s (%s)", act, ok and "acknowledged" or "refused"))
  end

  -- A transaction in a coroutine that yields inside it and is then dropped
  -- (collected) or closed: its writes are gone, the connection is free.
  local function cls_abandon(op)
    local snap = copy_model(model)
    local how = (op.close and coroutine.close) and "closed" or "dropped"
    emit(fmt("%sco = coroutine.create(function() db:transaction(function() -- yields after each call; %s",
      indent, how))
    co_depth = co_depth + 1
    local co = coroutine.create(function()
      return db:transaction(function() exec_ops(op.body) end)
    end)
    local k = 1 + op.v % #op.body
    local r
    for _ = 1, k do
      r = { coroutine.resume(co) }
      if not r[1] then co_depth = co_depth - 1; error(r[2], 0) end
      if coroutine.status(co) == "dead" then break end
    end
    co_depth = co_depth - 1
    if coroutine.status(co) == "dead" then
      -- it ran to the end (fewer yields than expected): a plain commit
      emit(indent .. "end) end)")
      verify("a transaction that ran to its end")
      return
    end
    if how == "closed" then coroutine.close(co) end
    co = nil      -- luacheck: ignore 311
    collectgarbage()
    collectgarbage()
    emit(fmt("%send) end); coroutine.resume(co) x%d; %s; collectgarbage()", indent, k,
      how == "closed" and "coroutine.close(co)" or "co = nil"))
    end_of_tx_rollback(snap)
    verify("after a transaction whose coroutine yielded and was " .. how)
    -- A write after it is acknowledged only when it committed.
    local line = "Post:create{ text = \"after\" }"
    local kind, p = outcome(pcall(Post.create, Post, { text = "after" }))
    if kind ~= "ok" then
      fail("abandon", fmt("%s after a transaction whose coroutine was %s: %s %s", line, how, kind, tostring(p)))
    end
    model.posts[p.post_id] = {}
    P[p.post_id] = p
    verify(line)
    if use_file then
      local db2 = assert(junction.open(path))
      verify(line .. " (through a new connection: committed)", db2)
      db2:close()
    end
  end

  local function exec_cls(op)
    step = step + 1
    local c = op.cls
    if c == "empty_where" or c == "empty_where_include" then cls_empty_where(op)
    elseif c == "nonarray" or c == "nonarray_model" then cls_nonarray(op)
    elseif c == "wrongtype" then cls_wrongtype(op)
    elseif c == "roundtrip" then cls_roundtrip(op)
    elseif c == "destroyed" or c == "vanished" then cls_destroyed(op)
    elseif c == "reenter_log" or c == "log_args" or c == "raising_log" then step = step - 1; cls_reenter_log(op)
    elseif c == "mm_options" then
      step = step - 1
      mm_act, mm_hit = op.act, nil
      local ok, e = pcall(exec_op, op.inner)
      mm_act = nil
      if not ok then error(e, 0) end
    elseif c == "abandon" then cls_abandon(op)
    end
  end

  -- }======

  function exec_op(op)
    if op.k == "cls" then return exec_cls(op) end
    step = step + 1
    local k = op.k
    local before = lines and #lines or 0
    local line, expect_text

    if k == "createPost" then
      local text = "p" .. op.id
      line = fmt("local p = Post:create{text = %q}", text)
      local _, ok, inst, msg, code = call(Post, "create", false, { text = text })
      inst = check_no_raise(line, ok, inst, msg, code)
      if type(inst) ~= "userdata" then fail("return", line .. ": expected an instance, got " .. show_ret(inst, msg,
          code)) end
      local pid = inst.post_id
      if type(pid) ~= "number" or model.posts[pid] or model.dead_posts[pid] then
        -- AUTOINCREMENT: a deleted id is never handed out again (unless its
        -- creation was rolled back, which dead_posts does not record).
        fail("autoinc", fmt("%s: new post_id %s is not fresh", line, show(pid)))
      end
      P[pid] = inst
      model.posts[pid] = {}
      line = fmt("P[%d] = Post:create{text = %q}", pid, text)

    elseif k == "createGenre" or k == "createG" then
      local name = "g" .. op.id
      local dupof
      if op.dup then
        local gid = pick_genre(op.r)
        if gid then name, dupof = model.genres[gid], gid end
      end
      local pid, ptext
      if k == "createG" then
        pid = pick_post(op.p)
        if not pid then step = step - 1; return end
        local _
        _, ptext = post_inst(pid)
      end
      local r
      if k == "createGenre" then
        line = fmt("Genre:create{name = %q}", name)
        r = { call(Genre, "create", op.snake, { name = name }) }
      else
        line = fmt("%s:%s{name = %q}", ptext, name_of("createGenre", op.snake), name)
        r = { call(P[pid], "createGenre", op.snake, { name = name }) }
      end
      check_no_raise(line, unpack(r, 2, 5))
      if dupof then
        expect_fail(line, unpack(r, 3, 5))
        expect_text = "nil, msg, 2067 (unique name)"
      else
        local inst = r[3]
        if type(inst) ~= "userdata" then fail("return", line .. ": expected an instance, got " .. show_ret(unpack(r,
            3, 5))) end
        local gid = inst.genre_id
        if type(gid) ~= "number" or model.genres[gid] or model.dead_genres[gid] then
          fail("autoinc", fmt("%s: new genre_id %s is not fresh", line, show(gid)))
        end
        if inst.name ~= name then fail("return", fmt("%s: instance name %s", line, show(inst.name))) end
        G[gid] = inst
        model.genres[gid] = name
        if pid then model.posts[pid][gid] = true end
        line = fmt("G[%d] = %s", gid, line)
      end

    elseif k == "destroyPost" or k == "destroyGenre" then
      local isPost = k == "destroyPost"
      local id
      if isPost then id = pick_post(op.p) else id = pick_genre(op.r) end
      if not id then step = step - 1; return end
      local Model, key, tab = isPost and Post or Genre, isPost and "post_id" or "genre_id", isPost and P or G
      if op.via == "inst" then
        local inst, text
        if isPost then inst, text = post_inst(id) else inst, text = genre_inst(id) end
        line = fmt("%s:destroy()", text)
        local _, ok, a, b, c = call(inst, "destroy", false)
        a = check_no_raise(line, ok, a, b, c)
        expect_value(line, true, a, b, c)
        expect_text = "true"
      else
        line = fmt("%s:destroy{where = {%s = %d}}", isPost and "Post" or "Genre", key, id)
        local _, ok, a, b, c = call(Model, "destroy", false, { where = { [key] = id } })
        a = check_no_raise(line, ok, a, b, c)
        expect_value(line, 1, a, b, c)
        expect_text = "1"
      end
      if isPost then
        model.posts[id] = nil
        model.dead_posts[id] = true
      else
        model.genres[id] = nil
        model.dead_genres[id] = true
        for _, set in pairs(model.posts) do set[id] = nil end
      end
      local _ = tab

    elseif k == "set" or k == "addN" or k == "add1" or k == "remN" or k == "rem1"
        or k == "hasN" or k == "has1" then
      local pid = pick_post(op.p)
      if not pid then step = step - 1; return end
      local pinst, ptext = post_inst(pid)
      local vals, vtext, ids, missing, stale = resolve_items(op.items)
      local method = ({ set = "setGenres", addN = "addGenres", add1 = "addGenre",
                        remN = "removeGenres", rem1 = "removeGenre",
                        hasN = "hasGenres", has1 = "hasGenre" })[k]
      local single = k == "add1" or k == "rem1" or k == "has1"
      local arg1 = single and vals[1] or mmw(vals)
      local atext = single and vtext:sub(2, -2) or vtext
      line = fmt("%s:%s(%s)", ptext, name_of(method, op.snake), atext)
      local _, ok, a, b, c = call(pinst, method, op.snake, arg1)
      if stale and not ok and type(a) == "string" and getmetatable(a) ~= FAIL then
        -- An instance whose row was destroyed may be refused as misuse.
        ok, a, b, c = true, nil, "raised: " .. a, 19
        if k ~= "set" and k ~= "addN" and k ~= "add1" then
          emit(fmt("%s%s  --> raised (stale instance): %s", indent, line, b))
          verify(line)
          return
        end
      end
      a = check_no_raise(line, ok, a, b, c)
      local set = model.posts[pid]
      if k == "set" or k == "addN" or k == "add1" then
        if missing then
          expect_fail(line, a, b, c)
          expect_text = "nil, msg, 787 (no such genre), nothing changed"
        else
          expect_value(line, true, a, b, c)
          expect_text = "true"
          if k == "set" then
            set = {}
            model.posts[pid] = set
          end
          for _, g in ipairs(ids) do set[g] = true end
        end
      elseif k == "remN" or k == "rem1" then
        expect_value(line, true, a, b, c)
        expect_text = "true"
        for _, g in ipairs(ids) do set[g] = nil end
      else
        local want = true
        for _, g in ipairs(ids) do if not set[g] then want = false end end
        expect_value(line, want, a, b, c)
        expect_text = tostring(want)
      end

    elseif k == "inv" then
      -- The same association from the Genre side: genre:setPosts etc.
      local gid = pick_genre(op.r)
      if not gid then step = step - 1; return end
      local ginst, gtext = genre_inst(gid)
      local sub = op.sub
      local method = ({ set = "setPosts", addN = "addPosts", add1 = "addPost", remN = "removePosts",
                        rem1 = "removePost", hasN = "hasPosts", has1 = "hasPost", count = "countPosts",
                        get = "getPosts" })[sub]
      local vals, vtext, ids, missing, stale = resolve_items(op.items, "post")
      local single = sub == "add1" or sub == "rem1" or sub == "has1"
      local arg1 = single and vals[1] or mmw(vals)
      local atext = single and vtext:sub(2, -2) or vtext
      if sub == "count" or sub == "get" then arg1, atext = nil, "" end
      line = fmt("%s:%s(%s)", gtext, name_of(method, op.snake), atext)
      local _, ok, a, b, c = call(ginst, method, op.snake, arg1)
      if stale and not ok and type(a) == "string" and getmetatable(a) ~= FAIL then
        ok, a, b, c = true, nil, "raised: " .. a, 19
        if sub ~= "set" and sub ~= "addN" and sub ~= "add1" then
          emit(fmt("%s%s  --> raised (stale instance): %s", indent, line, b))
          verify(line)
          return
        end
      end
      a = check_no_raise(line, ok, a, b, c)
      -- the posts that have this genre, according to the model
      local linked = {}
      for pid, set in pairs(model.posts) do if set[gid] then linked[pid] = true end end
      if sub == "set" or sub == "addN" or sub == "add1" then
        if missing then
          expect_fail(line, a, b, c)
          expect_text = "nil, msg, 787 (no such post), nothing changed"
        else
          expect_value(line, true, a, b, c)
          expect_text = "true"
          if sub == "set" then
            for pid in pairs(linked) do model.posts[pid][gid] = nil end
          end
          for _, pid in ipairs(ids) do model.posts[pid][gid] = true end
        end
      elseif sub == "remN" or sub == "rem1" then
        expect_value(line, true, a, b, c)
        expect_text = "true"
        for _, pid in ipairs(ids) do if model.posts[pid] then model.posts[pid][gid] = nil end end
      elseif sub == "hasN" or sub == "has1" then
        local want = true
        for _, pid in ipairs(ids) do if not linked[pid] then want = false end end
        expect_value(line, want, a, b, c)
        expect_text = tostring(want)
      elseif sub == "count" then
        local want = 0
        for _ in pairs(linked) do want = want + 1 end
        expect_value(line, want, a, b, c)
        expect_text = tostring(want)
      else
        if type(a) ~= "table" then fail("return", line .. ": expected an array, got " .. show_ret(a, b, c)) end
        local got = {}
        for i, p in ipairs(a) do got[i] = p.post_id end
        table.sort(got)
        local gs, ws = table.concat(got, ","), rel.set_str(linked)
        if gs ~= ws then fail("return", fmt("%s: got post ids {%s}, model {%s}", line, gs, ws)) end
        expect_text = "{" .. ws .. "}"
      end

    elseif k == "include" then
      -- Eager loading must show the same links.
      local variant = op.variant
      local call_text, res
      if logst.armed then logst.act, logst.armed = logst.armed, nil end
      if variant == 1 then
        call_text = 'Post:findAll{include = {"Genres"}}'
        res = { pcall(Post.findAll, Post, mmw { include = mmw { "Genres" } }) }
      elseif variant == 2 then
        call_text = 'Post:findAll{include = {{association = "Genres", required = true}}}'
        res = { pcall(Post.findAll, Post, mmw { include = mmw { mmw { association = "Genres", required = true } } }) }
      else
        call_text = 'Genre:findAll{include = {Posts = {include = {"Genres"}}}}'
        res = { pcall(Genre.findAll, Genre, mmw { include = mmw { Posts = mmw { include = { "Genres" } } } }) }
      end
      mm_check(call_text)
      line = call_text
      logst.act = nil
      local list = check_no_raise(line, res[1], res[2], res[3], res[4])
      if type(list) ~= "table" then fail("return", line .. ": expected an array, got " .. show_ret(unpack(res, 2,
          4))) end
      local seen = {}
      local function check_post(p, where_)
        local pid = p.post_id
        local gl = p.Genres
        if type(gl) ~= "table" then fail("return", fmt("%s: post %s has .Genres = %s", where_, show(pid), show(gl))) end
        local got = {}
        for _, g in ipairs(gl) do got[g.genre_id] = true end
        local a_, e_ = rel.set_str(got), rel.set_str(model.posts[pid] or {})
        if a_ ~= e_ then fail("return", fmt("%s: post %s .Genres {%s}, model {%s}", where_, show(pid), a_, e_)) end
      end
      if variant <= 2 then
        for _, p in ipairs(list) do
          seen[p.post_id] = true
          check_post(p, line)
        end
        for pid, set in pairs(model.posts) do
          if not seen[pid] and (variant == 1 or next(set) ~= nil) then
            fail("return", fmt("%s: post %d missing from the result", line, pid))
          end
          if seen[pid] and variant == 2 and next(set) == nil then
            fail("return", fmt("%s: post %d has no genre but came back with required = true", line, pid))
          end
        end
        if #list ~= (function() local n = 0 for _ in pairs(seen) do n = n + 1 end return n end)() then
          fail("return", line .. ": a post came back twice")
        end
      else
        for _, g in ipairs(list) do
          local posts = g.Posts
          if type(posts) ~= "table" then fail("return", fmt("%s: genre %s has .Posts = %s", line, show(g.genre_id),
              show(posts))) end
          local got = {}
          for _, p in ipairs(posts) do
            got[p.post_id] = true
            check_post(p, line .. " (nested)")
          end
          local want = {}
          for pid, set in pairs(model.posts) do if set[g.genre_id] then want[pid] = true end end
          if rel.set_str(got) ~= rel.set_str(want) then
            fail("return", fmt("%s: genre %s .Posts {%s}, model {%s}", line, show(g.genre_id), rel.set_str(got),
                rel.set_str(want)))
          end
        end
      end
      expect_text = "matches the model"

    elseif k == "count" then
      local pid = pick_post(op.p)
      if not pid then step = step - 1; return end
      local pinst, ptext = post_inst(pid)
      local set, want, opts, otext = model.posts[pid], 0, nil, ""
      if op.where then
        local ids = {}
        local seen = {}
        for _, it in ipairs(op.where) do
          local gid = pick_genre(it.r) or (1000000 + it.r % 1000)
          ids[#ids + 1] = gid
          if set[gid] and not seen[gid] then want = want + 1 end
          seen[gid] = true
        end
        opts = mmw { where = mmw { genre_id = mmw { ["in"] = mmw { unpack(ids) } } } }
        local t = {}
        for i, g in ipairs(ids) do t[i] = tostring(g) end
        otext = fmt("{where = {genre_id = {[\"in\"] = {%s}}}}", table.concat(t, ", "))
      else
        for _ in pairs(set) do want = want + 1 end
      end
      line = fmt("%s:%s(%s)", ptext, name_of("countGenres", op.snake), otext)
      local _, ok, a, b, c = call(pinst, "countGenres", op.snake, opts)
      a = check_no_raise(line, ok, a, b, c)
      expect_value(line, want, a, b, c)
      expect_text = tostring(want)

    elseif k == "get" then
      local pid = pick_post(op.p)
      if not pid then step = step - 1; return end
      local pinst, ptext = post_inst(pid)
      local set = model.posts[pid]
      local want = sorted_keys(set)
      local opts, otext, ordered
      if op.variant == 2 then
        opts = mmw { order = "genre_id DESC", limit = op.limit }
        otext = fmt("{order = \"genre_id DESC\", limit = %d}", op.limit)
        local w = {}
        for i = #want, math.max(1, #want - op.limit + 1), -1 do w[#w + 1] = want[i] end
        want, ordered = w, true
      elseif op.variant == 3 then
        opts = mmw { order = mmw { { "genre_id", "ASC" } }, offset = op.limit, limit = 100 }
        otext = fmt("{order = {{\"genre_id\", \"ASC\"}}, offset = %d, limit = 100}", op.limit)
        local w = {}
        for i = op.limit + 1, #want do w[#w + 1] = want[i] end
        want, ordered = w, true
      else
        otext = ""
      end
      line = fmt("%s:%s(%s)", ptext, name_of("getGenres", op.snake), otext)
      local _, ok, a, b, c = call(pinst, "getGenres", op.snake, opts)
      a = check_no_raise(line, ok, a, b, c)
      if type(a) ~= "table" then fail("return", line .. ": expected an array, got " .. show_ret(a, b, c)) end
      local got = {}
      for i, g in ipairs(a) do
        got[i] = g.genre_id
        if g.name ~= model.genres[g.genre_id] then
          fail("return", fmt("%s: genre %s has name %s, model %s", line, show(g.genre_id), show(g.name),
            show(model.genres[g.genre_id])))
        end
      end
      if not ordered then table.sort(got) end
      local gs, ws = table.concat(got, ","), table.concat(want, ",")
      if gs ~= ws then fail("return", fmt("%s: got genre ids {%s}, model {%s}", line, gs, ws)) end
      expect_text = "{" .. ws .. "}"

    elseif k == "stale" then
      -- A post instance whose row is gone: setGenres must not link to it.
      local dead = sorted_keys(model.dead_posts)
      local gid = pick_genre(op.r)
      local pid = dead[1 + op.p % math.max(1, #dead)]
      if not pid or not P[pid] or not gid then step = step - 1; return end
      line = fmt("P[%d]:setGenres{%d} -- post %d was destroyed", pid, gid, pid)
      local _, ok, a, b, c = call(P[pid], "setGenres", false, { gid })
      if ok then
        expect_fail(line, a, b, c)
      elseif getmetatable(a) == FAIL then
        error(a, 0)
      elseif type(a) ~= "string" then
        fail("raise", line .. ": raised a non-string " .. show(a))
      end
      expect_text = "a raise or nil, msg, code; nothing changed"

    elseif k == "tx" then
      local snap = copy_model(model)
      local SENTINEL = { "rollback sentinel" }
      local call_text = op.mode and fmt("db:transaction({mode = %q}, function()", op.mode)
        or "db:transaction(function()"
      emit(indent .. "pcall(" .. call_text:gsub("^db:transaction%(", "db.transaction, db, ", 1))
      local saved_indent = indent
      indent = indent .. "  "
      local fn = function(d)
        if d ~= db then fail("return", "transaction callback got " .. show(d) .. " instead of db") end
        exec_ops(op.body)
        if op.raise then
          emit(indent .. "error(\"rollback\")")
          error(SENTINEL, 0)
        end
        if op.retnil then
          emit(indent .. "return nil, \"model_check says no\"" .. (op.retcode and ", 77" or ""))
          return nil, "model_check says no", op.retcode
        end
        return "committed", 2
      end
      local ok, a, b, c
      local function do_call()
        if op.mode then return pcall(db.transaction, db, { mode = op.mode }, fn) end
        return pcall(db.transaction, db, fn)
      end
      if op.co and CAN_YIELD_ACROSS_PCALL and co_depth == 0 then
        -- The whole transaction in a coroutine that yields after every call;
        -- the driver resumes it at once (one coroutine: no interleaving).
        emit(indent .. "-- (this transaction runs in a coroutine that yields after each call)")
        co_depth = co_depth + 1
        local co = coroutine.create(do_call)
        local r = { coroutine.resume(co) }
        while r[1] and coroutine.status(co) ~= "dead" do r = { coroutine.resume(co) } end
        co_depth = co_depth - 1
        if not r[1] then
          ok, a = false, r[2]
        else
          ok, a, b, c = r[2], r[3], r[4], r[5]
        end
      else
        if not CAN_YIELD_ACROSS_PCALL then no_yield = no_yield + 1 end
        ok, a, b, c = do_call()
        if not CAN_YIELD_ACROSS_PCALL then no_yield = no_yield - 1 end
      end
      indent = saved_indent
      emit(indent .. "end)")
      if failure then error(setmetatable(failure, FAIL), 0) end
      local what = fmt("transaction (%s, %d ops, %s)", op.mode or "default",
        #op.body, op.raise and "raises" or op.retnil and "returns nil, err" or "returns")
      if not ok and a == EPISODE_END then error(a, 0) end
      if op.retnil and not op.raise then
        if not ok then
          if getmetatable(a) == FAIL then error(a, 0) end
          fail("raise", what .. " raised: " .. tostring(a))
        end
        -- (API.md: db:transaction then returns nil, msg, code: what fn returned)
        if a ~= nil or b ~= "model_check says no" or c ~= op.retcode then
          fail("return", what .. ": returned " .. show_ret(a, b, c) .. " instead of nil, \"model_check says no\", "
            .. tostring(op.retcode) .. " (rolled back)")
        end
      end
      if op.raise or op.retnil then
        if op.raise and ok then fail("return", what .. ": returned instead of re-raising") end
        if op.raise and a ~= SENTINEL then
          fail("return", what .. ": re-raised " .. show(a) .. " instead of the callback's error")
        end
        model.posts, model.genres, model.notes = snap.posts, snap.genres, snap.notes
        -- Ids created inside the rolled-back transaction may come again.
        model.dead_posts, model.dead_genres = snap.dead_posts, snap.dead_genres
        -- Instances are not transactional: drop every cached instance of a
        -- live row (they are fetched again), keep the stale ones.
        for id in pairs(P) do if not model.dead_posts[id] then P[id] = nil end end
        for id in pairs(G) do if not model.dead_genres[id] then G[id] = nil end end
      else
        if not ok then
          if getmetatable(a) == FAIL then error(a, 0) end
          fail("raise", what .. " raised: " .. tostring(a))
        end
        if a ~= "committed" or b ~= 2 then
          fail("return", what .. ": returned " .. show_ret(a, b) .. " instead of the callback's values")
        end
      end
      verify("after " .. what)
      return
    end

    if line then
      local lt = {}
      for pid in pairs(model.posts) do
        for g in pairs(model.posts[pid]) do lt[#lt + 1] = fmt("%d:%d", pid, g) end
      end
      table.sort(lt)
      emit(fmt("%s%s  --> %s; expected links: %q", indent, line, expect_text or "ok", table.concat(lt, " ")))
    end
    verify(line or k)
    local _ = before
  end

  local ok, err = pcall(exec_ops, ops)
  if not ok and err == EPISODE_END and not failure then ok = true end
  if not ok and not failure then
    failure = { label = "raise", msg = "harness: " .. tostring(err), step = step }
  end
  if failure then emit("-- FAILS HERE: " .. failure.msg) end
  pcall(db.close, db)
  if schema then
    local admin = assert(junction.open(PG))
    admin:exec('DROP SCHEMA IF EXISTS "' .. schema .. '" CASCADE')
    admin:close()
  elseif use_file then
    rel.rm_db(path)
  end
  return failure, step
end

-- ---------------------------------------------------------------------------
-- Shrinking
-- ---------------------------------------------------------------------------

local function count_ops(ops)
  local n = 0
  for _, op in ipairs(ops) do
    n = n + 1
    if op.body then n = n + count_ops(op.body) end
  end
  return n
end

local function deep_copy(t)
  if type(t) ~= "table" then return t end
  local c = {}
  for k, v in pairs(t) do c[k] = deep_copy(v) end
  return c
end

-- All the lists of operations inside ops (ops itself, then tx bodies).
local function op_lists(ops, acc)
  acc = acc or {}
  acc[#acc + 1] = ops
  for _, op in ipairs(ops) do
    if op.body then op_lists(op.body, acc) end
  end
  return acc
end

local function shrink(ops, use_file, label)
  local runs = 0
  local function still_fails(cand)
    runs = runs + 1
    local f = run_episode(cand, use_file)
    return f and f.label == label
  end
  local best = deep_copy(ops)
  local progress = true
  while progress and runs < 3000 do
    progress = false
    -- Remove chunks from every list, big chunks first.
    local lists = op_lists(best)
    for li = 1, #lists do
      local list = op_lists(best)[li]
      if not list then break end
      local chunk = math.max(1, math.floor(#list / 2))
      while chunk >= 1 and runs < 3000 do
        local i = 1
        while i <= #list and runs < 3000 do
          local removed = {}
          for j = 1, chunk do removed[j] = table.remove(list, i) end
          if #list > 0 or li > 1 then
            if still_fails(best) then
              progress = true
            else
              for j = chunk, 1, -1 do if removed[j] then table.insert(list, i, removed[j]) end end
              i = i + chunk
            end
          else
            for j = chunk, 1, -1 do if removed[j] then table.insert(list, i, removed[j]) end end
            i = i + chunk
          end
        end
        if chunk == 1 then break end
        chunk = math.floor(chunk / 2)
      end
    end
    -- Unwrap transactions; drop their raise/mode.
    for _, list in ipairs(op_lists(best)) do
      for i = 1, #list do
        local op = list[i]
        if op and op.body and runs < 3000 then
          local saved = list[i]
          table.remove(list, i)
          for j = #saved.body, 1, -1 do table.insert(list, i, saved.body[j]) end
          if still_fails(best) then
            progress = true
            break
          end
          for _ = 1, #saved.body do table.remove(list, i) end
          table.insert(list, i, saved)
          if saved.mode then
            local m = saved.mode
            saved.mode = false
            if still_fails(best) then progress = true else saved.mode = m end
          end
        end
      end
    end
    -- Drop list items; turn instances into keys.
    for _, list in ipairs(op_lists(best)) do
      for _, op in ipairs(list) do
        if op.items then
          local i = 1
          while i <= #op.items and runs < 3000 do
            local it = table.remove(op.items, i)
            if #op.items > 0 and still_fails(best) then
              progress = true
            else
              table.insert(op.items, i, it)
              if it.t == "inst" then
                it.t = "key"
                if still_fails(best) then progress = true else it.t = "inst" end
              end
              i = i + 1
            end
          end
        end
        if op.snake then
          op.snake = false
          if not still_fails(best) then op.snake = true end
        end
      end
    end
  end
  return best, runs
end

-- ---------------------------------------------------------------------------
-- Main
-- ---------------------------------------------------------------------------

local t0 = rel.now()
local total, episode = 0, 0
local counts = {}
while total < STEPS do
  episode = episode + 1
  local len = EPISODE
  local ops = gen_episode(SEED, episode, math.max(len, 1))
  for _, op in ipairs(op_lists(ops)) do
    for _, o in ipairs(op) do
      local key = o.k == "cls" and o.cls or o.retnil and "tx_nil_err" or o.k
      counts[key] = (counts[key] or 0) + 1
    end
  end
  local use_file = episode % 4 == 0
  local failure, steps = run_episode(ops, use_file)
  total = total + steps
  if failure then
    print(fmt("FAIL - model_check seed=%d episode=%d step=%d (%s): %s", SEED, episode, failure.step,
      failure.label, failure.msg))
    print(fmt("# replay: lua model_check.lua %d %d %d  (episode %d, %s database)", SEED, STEPS, EPISODE,
      episode, use_file and "WAL file" or ":memory:"))
    local small, runs = shrink(ops, use_file, failure.label)
    local lines = {}
    local f2 = run_episode(small, use_file, lines)
    print(fmt("# shrunk from %d to %d operations in %d replays; failure: %s", count_ops(ops),
      count_ops(small), runs, f2 and f2.msg or "(did not reproduce!)"))
    print("# ---- reproduction " .. string.rep("-", 50))
    io.write(rel.SEED_SOURCE)
    print("local P, G = {}, {}")
    for _, l in ipairs(lines) do print(l) end
    print("print(links())  -- compare with the last 'expected links'")
    print("# " .. string.rep("-", 68))
    os.exit(1)
  end
end
local dt = rel.now() - t0
local kinds = {}
for _, k in ipairs(sorted_keys(counts)) do kinds[#kinds + 1] = k .. "=" .. counts[k] end
local on = {}
for _, c in ipairs(ALL_CLASSES) do if CLASSES[c] then on[#on + 1] = c end end
print(fmt("ok - model_check seed=%d steps=%d episodes=%d time=%.1fs (%s%s) classes=%s [%s]", SEED, total, episode,
  dt, _VERSION .. (jit and " LuaJIT" or ""), PG and ", PostgreSQL" or "",
  #on > 0 and table.concat(on, ",") or "none", table.concat(kinds, " ")))
