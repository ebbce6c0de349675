--[==[
journal.lua -- model-based check that an instance never claims a write its
transaction took back (docs/API.md, "Instances follow the rollback").

  lua journal.lua SEED STEPS [EPISODE_LEN]

A pool of instances of three models (Item: an AUTOINCREMENT key; Keyed: a
key the program gives; Hooked: beforeCreate and beforeUpdate hooks, so its
writes go through lua/junction/hooks.lua) is written at random: build,
create, upsert (a new key, or the key of a saved instance: the instance
upsert returns takes the row over), assign a field, save, update, destroy,
reload, inside db:transaction
levels nested up to three deep that commit, raise (a string or a table),
call junction.abort or return nil, err, and inside transactions run in a
coroutine that yields after each call and is then dropped (collected) or
closed with the transaction still open (abandoned: the connection rolls it
back), and in a transaction of a coroutine inside one of another coroutine
that is dropped (both rolled back: the database must be as before them).
The same instance is written at several levels.

After every top-level step, outside any transaction, each instance must
tell the truth about the database:
  - saved: its row is there, and every field it does not list in changed()
    holds the instance's value;
  - not saved (built, or its create rolled back): an AUTOINCREMENT key is
    nil again, and no row has a key the program gave;
  - destroyed: no row has its given key;
  - every row belongs to a saved instance (a rolled back destroy is not
    destroyed).
The hooks check that beforeCreate runs only for an instance without a row
and beforeUpdate only for one with a row. At the end of each episode every
instance is saved, and then the database must hold exactly their values.

Episodes of EPISODE_LEN steps (default 60) each use a fresh ":memory:"
database and their own PRNG stream (SEED, episode). On a failure the
episode's steps are printed (a trace to replay) and the exit status is 1.
Prints "ok - journal seed=S steps=N ..." when all went well.
]==]

local here = (arg and arg[0] or ""):match("^(.*)/[^/]*$") or "."
package.path = here .. "/?.lua;" .. package.path

local rel = require "rel"
local junction = require "junction"
local core = require "junction.core"
local T = junction.types
local fmt = string.format

local SEED = tonumber(arg[1]) or 1
local STEPS = tonumber(arg[2]) or 3000
local EPISODE = tonumber(arg[3]) or 60
local NSLOTS = 6
local MAXDEPTH = 3
local CAN_CLOSE = coroutine.close ~= nil

local trace, failed = {}, nil
local stats = { tx = 0, rolledback = 0, abandoned = 0, calls = 0 }
local function emit(depth, s) trace[#trace + 1] = string.rep("  ", depth) .. s end
local function fail(msg)
  if not failed then failed = msg end
end

-- {====== the models and the database

-- slots: the instances the steps pick from; all: every instance an episode
-- made (a slot's old instance may come back: a rolled back destroy)
local db, models, slots, all, nextkey

local function define()
  db = assert(junction.open(":memory:"))
  local Item = db:define("Item", {
    timestamps = false,
    fields = { id = { type = T.INTEGER, primaryKey = true, autoIncrement = true },
               a = { type = T.TEXT }, b = { type = T.INTEGER } },
  })
  local Keyed = db:define("Keyed", {
    timestamps = false,
    fields = { k = { type = T.INTEGER, primaryKey = true }, v = { type = T.TEXT } },
  })
  local function row_of(id)
    local rows = assert(db:query("SELECT id FROM hooked WHERE id = ?", id))
    return rows[1]
  end
  local Hooked = db:define("Hooked", {
    tableName = "hooked", timestamps = false,
    fields = { id = { type = T.INTEGER, primaryKey = true, autoIncrement = true },
               a = { type = T.TEXT } },
    hooks = {
      beforeCreate = function(inst)
        if inst.id ~= nil and row_of(inst.id) then
          fail(fmt("beforeCreate ran for Hooked %s, whose row is there", tostring(inst.id)))
        end
        return true
      end,
      beforeUpdate = function(inst)
        if inst.id == nil or not row_of(inst.id) then
          fail(fmt("beforeUpdate ran for Hooked %s, which has no row (a create rolled back?)",
                   tostring(inst.id)))
        end
        return true
      end,
    },
  })
  assert(db:sync())
  models = {
    { model = Item, name = "Item", pk = "id", given = false, fields = { "id", "a", "b" }, tbl = "items" },
    { model = Keyed, name = "Keyed", pk = "k", given = true, fields = { "k", "v" }, tbl = "keyeds" },
    { model = Hooked, name = "Hooked", pk = "id", given = false, fields = { "id", "a" }, tbl = "hooked" },
  }
  for _, d in ipairs(models) do d.tbl = d.model:_info().tableName or d.tbl end
  slots, all, nextkey = {}, {}, 1
end

-- The row of d's table with that key, or nil.
local function row(d, key)
  local rows = assert(db:query(fmt("SELECT * FROM %s WHERE %s = ?", d.tbl, d.pk), key))
  return rows[1]
end

-- }======

-- {====== the invariant

local function changed_set(x)
  local s = {}
  for _, f in ipairs(x:changed() or {}) do s[f] = true end
  return s
end

local function check(where)
  local claimed = {}
  for i = 1, #all do
    local s = all[i]
    if not s.retired then
      local d, x = s.d, s.inst
      -- (asked first: an abandoned transaction is rolled back, and its
      -- instances with it, before anything reads their state)
      local destroyed, saved = core._destroyed(x), core._saved(x)
      local key = x[d.pk]
      local what = fmt("%s (instance %d, %s %s)", where, i, d.name, tostring(key))
      if destroyed then
        if d.given and row(d, key) then fail(what .. ": destroyed, but its row is there") end
      elseif saved then
        local r = key ~= nil and row(d, key)
        if not r then
          fail(what .. ": claims a row that is not there")
        else
          claimed[d.name .. "/" .. tostring(key)] = true
          local ch = changed_set(x)
          for _, f in ipairs(d.fields) do
            if not ch[f] and r[f] ~= x[f] then
              fail(fmt("%s: field %s is %s, the row holds %s, and changed() does not list it",
                       what, f, tostring(x[f]), tostring(r[f])))
            end
          end
        end
      elseif d.given then
        if row(d, key) then fail(what .. ": not saved, but a row has its key") end
      elseif key ~= nil then
        fail(what .. ": not saved, but has the key an INSERT gave it")
      end
    end
  end
  for _, d in ipairs(models) do
    for _, r in ipairs(assert(db:query(fmt("SELECT %s FROM %s", d.pk, d.tbl)))) do
      if not claimed[d.name .. "/" .. tostring(r[d.pk])] then
        fail(fmt("%s: the row %s %s belongs to no saved instance", where, d.name, tostring(r[d.pk])))
      end
    end
  end
end

-- Save every live instance; then the database holds exactly their values.
local function check_final()
  for i = 1, #all do
    local s = all[i]
    if not s.retired and not core._destroyed(s.inst) then
      local ok, msg = s.inst:save()
      if not ok then fail(fmt("the final save of instance %d failed: %s", i, tostring(msg))) end
    end
  end
  check("after saving every instance")
  for i = 1, #all do
    local s = all[i]
    if not s.retired and not core._destroyed(s.inst) and s.inst:changed() then
      fail(fmt("instance %d: still changed after its save", i))
    end
  end
end

-- }======

-- {====== the steps

local rng
local run_ops   -- forward
local cur_step  -- the top-level step running (an instance's touched: the last step that wrote it)

local function value(d, f)
  if f == "b" then return rng:int(0, 9) end
  return rng:pick({ "p", "q", "r", "s" }) .. (d.name == "Keyed" and "k" or "")
end

local function values(d, given)
  local t = {}
  for _, f in ipairs(d.fields) do
    if f ~= d.pk then t[f] = value(d, f) end
  end
  if given then t[d.pk] = nextkey; nextkey = nextkey + 1 end
  return t
end

local function show(t)
  local parts = {}
  for k, v in pairs(t) do parts[#parts + 1] = fmt("%s = %q", k, tostring(v)) end
  table.sort(parts)
  return "{ " .. table.concat(parts, ", ") .. " }"
end

-- A slot may get a new instance when nobody could lose a row by it.
local function replaceable(s)
  return s == nil or core._destroyed(s.inst) or not core._saved(s.inst)
end

-- One call on the pool at depth (0: outside any transaction).
local function op_call(depth)
  local i = rng:int(1, NSLOTS)
  local s = slots[i]
  local kind
  stats.calls = stats.calls + 1
  if replaceable(s) and (s == nil or rng:chance(0.3)) then
    kind = rng:pick({ "build", "create", "create", "upsert" })
  elseif s.d.given and s.touched < cur_step and core._saved(s.inst) and rng:chance(0.15) then
    -- (only over a row no open transaction wrote: the instance an upsert
    -- returns reads the row as it is then, and a rollback of a write before
    -- it that was not its own leaves it as read; docs/API.md says so)
    kind = "upsert_over"
  else
    kind = rng:pick({ "set", "save", "save", "update", "update", "destroy", "reload" })
  end
  if kind == "upsert" or kind == "upsert_over" then
    -- Keyed:upsert of a new key (an INSERT), or of the key of the slot's
    -- saved instance (an UPDATE of its row: the upserted instance takes the
    -- row over, the old one is retired from the checks, stale by design)
    local d = models[2]
    local v = values(d, kind == "upsert")
    if kind == "upsert_over" then v[d.pk] = s.inst[d.pk] end
    emit(depth, fmt("slot[%d] = %s:upsert(%s)", i, d.name, show(v)))
    local x, msg = d.model:upsert(v)
    if x then
      if kind == "upsert_over" then s.retired = true end
      slots[i] = { d = d, inst = x, touched = cur_step }
      all[#all + 1] = slots[i]
      emit(depth, fmt("  --> instance %d", #all))
    else
      emit(depth, "  --> " .. tostring(msg))
    end
    return
  end
  if kind == "build" or kind == "create" then
    local d = models[rng:int(1, #models)]
    local v = values(d, d.given)
    emit(depth, fmt("slot[%d] = %s:%s(%s)", i, d.name, kind, show(v)))
    local x, msg
    if kind == "build" then x = d.model:build(v) else x, msg = d.model:create(v) end
    if x then
      slots[i] = { d = d, inst = x, touched = cur_step }
      all[#all + 1] = slots[i]
      emit(depth, fmt("  --> instance %d", #all))
    else
      emit(depth, "  --> " .. tostring(msg))
    end
    return
  end
  local d, x = s.d, s.inst
  local f = d.fields[rng:int(2, #d.fields)]
  if kind == "set" then
    local v = value(d, f)
    emit(depth, fmt("slot[%d].%s = %q", i, f, tostring(v)))
    x[f] = v
    return
  end
  local args = {}
  if kind == "update" then args[1] = { [f] = value(d, f) } end
  if kind ~= "reload" then s.touched = cur_step end
  emit(depth, fmt("slot[%d]:%s(%s)", i, kind, args[1] and show(args[1]) or ""))
  local ok, r, msg = pcall(x[kind], x, args[1])
  if not ok or not r then emit(depth, "  --> " .. tostring(ok and msg or r)) end
end

local ENDS = { "commit", "commit", "raise", "raise_table", "abort", "retnil" }

-- db:transaction around a body of calls, ended at random.
local function op_tx(depth)
  local n, how = rng:int(1, 4), rng:pick(ENDS)
  stats.tx = stats.tx + 1
  if how ~= "commit" then stats.rolledback = stats.rolledback + 1 end
  emit(depth, fmt("db:transaction(function()   -- %d calls, then %s", n, how))
  local ok, a, b = pcall(db.transaction, db, function()
    run_ops(depth + 1, n)
    if how == "raise" then error("journal says no", 0) end
    if how == "raise_table" then error({ "journal says no" }, 0) end
    if how == "abort" then junction.abort("journal aborts", 7) end
    if how == "retnil" then return nil, "journal returns nil", 8 end
    return true
  end)
  emit(depth, fmt("end)  --> %s %s %s", tostring(ok), tostring(a), tostring(b)))
end

-- db:transaction in a coroutine that yields after each call, resumed k times
-- and then dropped or closed with the transaction open.
local function op_abandon(depth)
  local n = rng:int(1, 4)
  local k = rng:int(1, n)
  local close = CAN_CLOSE and rng:chance(0.5)
  stats.abandoned = stats.abandoned + 1
  emit(depth, fmt("co = coroutine.create(function() db:transaction(function()   -- %d calls, " ..
    "yielding after each; resumed %d times, then %s", n, k, close and "closed" or "dropped"))
  local co = coroutine.create(function()
    return db:transaction(function()
      for _ = 1, n do
        run_ops(depth + 1, 1, true)
        coroutine.yield()
      end
      return true
    end)
  end)
  for _ = 1, k do
    local ok, err = coroutine.resume(co)
    if not ok then emit(depth, "  --> the coroutine raised: " .. tostring(err)) end
    if coroutine.status(co) == "dead" then break end
  end
  if close and coroutine.status(co) == "suspended" then coroutine.close(co) end
  co = nil   -- luacheck: ignore 311
  collectgarbage()
  collectgarbage()
  emit(depth, "end) end)")
end

-- Every row of every table, as one string.
local function dump()
  local parts = {}
  for _, d in ipairs(models) do
    for _, r in ipairs(assert(db:query(fmt("SELECT * FROM %s ORDER BY %s", d.tbl, d.pk)))) do
      local cols = {}
      for _, f in ipairs(d.fields) do cols[#cols + 1] = tostring(r[f]) end
      parts[#parts + 1] = d.name .. "(" .. table.concat(cols, ",") .. ")"
    end
  end
  return table.concat(parts, " ")
end

-- Start coroutine `outer`'s transaction, which runs calls and resumes inner
-- (whose own transaction then yields inside it), and yields too.  Made in a
-- function of its own, so that no stack slot keeps outer once it is dropped.
local function start_outer(depth, inner, weak)
  local outer = coroutine.create(function()
    return db:transaction(function()
      run_ops(depth + 1, rng:int(0, 2), true)
      local ok, err = coroutine.resume(inner)
      if not ok then emit(depth, "  --> the inner coroutine raised: " .. tostring(err)) end
      coroutine.yield()
      return true
    end)
  end)
  weak[1] = outer
  local ok, err = coroutine.resume(outer)
  if not ok then emit(depth, "  --> the outer coroutine raised: " .. tostring(err)) end
end

-- Outside any transaction: coroutine outer's transaction holds coroutine
-- inner's, both suspended; outer is dropped (collected) and inner resumed,
-- runs more calls and ends as op_tx's do.  Nothing of either may be kept:
-- the connection rolls back outer's transaction and inner's with it, and
-- refuses inner's later calls (they would commit one by one).
local function op_dropped_outer(depth)
  local before = dump()
  local n1, n2, how = rng:int(0, 2), rng:int(1, 3), rng:pick(ENDS)
  local weak = setmetatable({}, { __mode = "v" })
  stats.abandoned = stats.abandoned + 1
  emit(depth, fmt("outer and inner coroutines' transactions, inner in outer: %d calls, yield; " ..
    "outer dropped; %d calls, then %s", n1, n2, how))
  local inner = coroutine.create(function()
    return db:transaction(function()
      run_ops(depth + 2, n1, true)
      coroutine.yield()
      run_ops(depth + 2, n2, true)
      if how == "raise" then error("journal says no", 0) end
      if how == "raise_table" then error({ "journal says no" }, 0) end
      if how == "abort" then junction.abort("journal aborts", 7) end
      if how == "retnil" then return nil, "journal returns nil", 8 end
      return true
    end)
  end)
  start_outer(depth, inner, weak)
  if rawget(_G, "jit") then jit.flush() end
  collectgarbage()
  collectgarbage()
  if weak[1] ~= nil then         -- still reachable (a slot the collector reads): let it finish
    emit(depth, "  (outer was not collected: resumed to its end instead)")
    coroutine.resume(weak[1])
    if coroutine.status(inner) == "suspended" then coroutine.resume(inner) end
    return
  end
  local ok, a, b = coroutine.resume(inner)
  emit(depth, fmt("end)  --> %s %s %s", tostring(ok), tostring(a), tostring(b)))
  local after = dump()
  if after ~= before then
    fail(fmt("the transactions of a dropped coroutine and of the one inside it kept writes:\n" ..
             "#   before: %s\n#   after:  %s", before, after))
  end
end

function run_ops(depth, n, no_nest)
  for _ = 1, n do
    local r = rng:next() % 100
    if not no_nest and depth < MAXDEPTH and r < 18 then
      op_tx(depth)
    elseif not no_nest and depth < MAXDEPTH and r < 24 then
      op_abandon(depth)
    elseif not no_nest and depth == 0 and r < 28 then
      op_dropped_outer(depth)
    else
      op_call(depth)
    end
  end
end

-- }======

local steps, episodes = 0, 0
while steps < STEPS do
  episodes = episodes + 1
  rng = rel.prng(SEED, episodes)
  trace = {}
  define()
  for step = 1, EPISODE do
    cur_step = steps + 1
    run_ops(0, 1)
    steps = steps + 1
    check(fmt("after step %d", step))
    if failed then break end
  end
  if not failed then check_final() end
  if failed then
    print(fmt("# seed %d, episode %d: the steps:", SEED, episodes))
    for _, line in ipairs(trace) do print("#   " .. line) end
    print(fmt("FAIL - journal seed=%d episode=%d: %s", SEED, episodes, failed))
    os.exit(1)
  end
  db:close()
end
print(fmt("ok - journal seed=%d steps=%d episodes=%d: %d calls, %d transactions (%d rolled back), " ..
          "%d abandoned (%s)", SEED, steps, episodes, stats.calls, stats.tx, stats.rolledback,
          stats.abandoned, _VERSION))
