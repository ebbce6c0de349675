--[==[
crash.lua -- SIGKILL in the middle of writes loses nothing and mixes nothing.

  lua crash.lua [ROUNDS [SEED]]          the parent (default 200 rounds)
  lua crash.lua --child DB JOURNAL SEED ROUND   (started by the parent)

The parent makes a WAL file database with the seed's models, 12 posts and 24
genres. Each round it starts a child process that runs random write
transactions for ever: db:transaction with 1 to 3 of setGenres/addGenres on
random posts (some transactions raise on purpose and must roll back), or a
lone setGenres/addGenres outside any transaction. Before each one the child
appends "B <id> <commit|raise> <post>=<op><set>;..." to a journal file and
after it returns "C <id>" (or "R <id>" after a deliberate rollback), flushed
and fsync'd. The parent waits until the child is writing, sleeps a random
0-60 ms, kills it with SIGKILL and then checks, through a new junction
connection:

  * PRAGMA integrity_check is "ok", foreign_key_check is empty, the journal
    mode is still WAL;
  * every post's set of genres is exactly the state after all the journal's
    committed transactions, or that state plus the whole of the one
    transaction in flight (never a part of it, never a rolled-back one,
    never one of the committed ones missing).

The state found becomes the starting state of the next round. Prints
"ok - crash rounds=N ..." or "FAIL - ..." with the round, the journal tail
and the difference; exits 0 or 1.
]==]

local here = (arg and arg[0] or ""):match("^(.*)/[^/]*$") or "."
package.path = here .. "/?.lua;" .. package.path

local rel = require "rel"
local junction = require "junction"
local fmt = string.format

local NPOSTS, NGENRES = 12, 24

-- ---------------------------------------------------------------------------
-- Child
-- ---------------------------------------------------------------------------

local function child(dbpath, journal, seed, round)
  local rng = rel.prng(seed, 1000 + round)
  local db = assert(junction.open(dbpath, {
    journal_mode = "wal", busy_timeout = 10000,
    synchronous = round % 2 == 0 and "full" or "normal",
  }))
  local Post = rel.seed_models(db, junction)
  local posts = {}
  for pid = 1, NPOSTS do posts[pid] = assert(Post:findByPk(pid)) end
  local j = assert(io.open(journal, "a"))
  local function log(s)
    j:write(s, "\n")
    rel.fsync(j)
  end
  log("READY")
  local txid = 0
  while true do
    txid = txid + 1
    local nops = rng:int(1, 3)
    local lone = nops == 1 and rng:chance(0.4)
    local raise = not lone and rng:chance(0.2)
    local ops, texts = {}, {}
    for i = 1, nops do
      local pid = rng:int(1, NPOSTS)
      local r = rng:int(1, 100)
      local kind = r <= 70 and "set" or r <= 90 and "add" or "cg"
      if kind == "cg" then
        -- post:createGenre: a new genre and its link, both or neither.
        local name = fmt("cg-%d-%d-%d", round, txid, i)
        ops[i] = { pid = pid, kind = kind, name = name }
        texts[i] = fmt("%d=cg%s", pid, name)
      else
        local set, list = {}, {}
        for _ = 1, rng:int(0, 7) do
          local g = rng:int(1, NGENRES)
          list[#list + 1] = g           -- duplicates included on purpose
          set[g] = true
        end
        ops[i] = { pid = pid, kind = kind, list = list }
        texts[i] = fmt("%d=%s%s", pid, kind, rel.set_str(set))
      end
    end
    log(fmt("B %d %s %s", txid, raise and "raise" or "commit", table.concat(texts, ";")))
    local function apply()
      for _, op in ipairs(ops) do
        local p = posts[op.pid]
        local ok, msg, code
        if op.kind == "set" then ok, msg, code = p:setGenres(op.list)
        elseif op.kind == "add" then ok, msg, code = p:addGenres(op.list)
        else ok, msg, code = p:createGenre { name = op.name } end
        if not ok then
          log(fmt("E %d %s %s", txid, tostring(code), tostring(msg)))
          os.exit(3)
        end
      end
      if raise then error("deliberate rollback", 0) end
    end
    if lone then
      apply()
      log("C " .. txid)
    else
      local ok, err = pcall(db.transaction, db, apply)
      if ok then
        log("C " .. txid)
      elseif raise and err == "deliberate rollback" then
        log("R " .. txid)
      else
        log(fmt("E %d raise %s", txid, tostring(err)))
        os.exit(4)
      end
    end
  end
end

if arg[1] == "--child" then
  child(arg[2], arg[3], tonumber(arg[4]), tonumber(arg[5]))
  os.exit(0)
end

-- ---------------------------------------------------------------------------
-- Parent
-- ---------------------------------------------------------------------------

local ROUNDS = tonumber(arg[1]) or 200
local SEED = tonumber(arg[2]) or 1
local TMPDIR = os.getenv("RELIABILITY_TMP") or "/tmp"
local LUA = arg[-1] or "lua5.4"
local SCRIPT = arg[0]

local dir = fmt("%s/junction-crash-%d", TMPDIR, SEED)
os.execute("rm -rf " .. rel.shq(dir) .. " && mkdir -p " .. rel.shq(dir))
local dbpath = dir .. "/blog.sqlite3"

local function fail(msg)
  print("FAIL - crash: " .. msg)
  local log = rel.read_lines(dir .. "/child.log")
  if #log > 0 then
    print("# the child's output (last lines):")
    for i = math.max(1, #log - 15), #log do print("#   " .. log[i]) end
  end
  os.exit(1)
end

do
  local db = assert(junction.open(dbpath, { journal_mode = "wal" }))
  local Post, Genre = rel.seed_models(db, junction)
  assert(db:sync())
  assert(db:transaction(function()
    for i = 1, NPOSTS do assert(Post:create { text = "post " .. i }) end
    for i = 1, NGENRES do assert(Genre:create { name = "genre " .. i }) end
  end))
  assert(db:close())
end

-- Reads the database's links: post -> set; checks integrity on the way.
local function read_state(round)
  local db, msg = junction.open(dbpath, { busy_timeout = 10000 })
  if not db then fail(fmt("round %d: cannot reopen the database: %s", round, tostring(msg))) end
  local r = db:query("PRAGMA integrity_check")
  if not r or not r[1] or r[1].integrity_check ~= "ok" then
    local t = {}
    for _, row in ipairs(r or {}) do for _, v in pairs(row) do t[#t + 1] = tostring(v) end end
    fail(fmt("round %d: integrity_check: %s", round, table.concat(t, "; ")))
  end
  r = db:query("PRAGMA foreign_key_check")
  if not r or #r > 0 then fail(fmt("round %d: foreign_key_check not empty (%s)", round, tostring(r and #r))) end
  r = db:query("PRAGMA journal_mode")
  if not r or r[1].journal_mode ~= "wal" then
    fail(fmt("round %d: journal_mode is %s", round, tostring(r and r[1] and r[1].journal_mode)))
  end
  r = db:query("SELECT count(*) AS n FROM post")
  if not r or r[1].n ~= NPOSTS then fail(fmt("round %d: %s posts", round, tostring(r and r[1].n))) end
  r = db:query("SELECT count(*) AS n FROM genre WHERE name NOT LIKE 'cg-%'")
  if not r or r[1].n ~= NGENRES then fail(fmt("round %d: %s genres", round, tostring(r and r[1].n))) end
  local names = {}
  for _, row in ipairs(assert(db:query("SELECT genre_id, name FROM genre WHERE name LIKE 'cg-%'"))) do
    names[row.name] = row.genre_id
  end
  local state = {}
  for pid = 1, NPOSTS do state[pid] = {} end
  r = assert(db:query("SELECT post_id, genre_id FROM tag_post_genre"))
  for _, row in ipairs(r) do state[row.post_id][row.genre_id] = true end
  db:close()
  return state, names
end

local function copy_state(s)
  local c = {}
  for pid, set in pairs(s) do
    c[pid] = {}
    for g in pairs(set) do c[pid][g] = true end
  end
  return c
end

-- Applies a journaled transaction to state; names maps the names of genres
-- made by createGenre to their ids (as found in the database). Returns the
-- list of genre names the transaction creates.
local function apply_tx(state, text, names)
  local created = {}
  for item in text:gmatch("[^;]+") do
    local pid, kind, rest = item:match("^(%d+)=(cg)(.*)$")
    if not pid then pid, kind, rest = item:match("^(%d+)=(%a%a%a)(.*)$") end
    pid = tonumber(pid)
    if kind == "cg" then
      created[#created + 1] = rest
      state[pid][names[rest] or ("missing " .. rest)] = true
    else
      if kind == "set" then state[pid] = {} end
      for g in pairs(rel.str_set(rest)) do state[pid][g] = true end
    end
  end
  return created
end

local function same(a, b)
  for pid = 1, NPOSTS do
    if rel.set_str(a[pid]) ~= rel.set_str(b[pid]) then return false, pid end
  end
  return true
end

local function state_str(s, pids)
  local t = {}
  for _, pid in ipairs(pids) do t[#t + 1] = fmt("%d={%s}", pid, rel.set_str(s[pid])) end
  return table.concat(t, " ")
end

local t0 = rel.now()
local state, known_names = read_state(0)
local rng = rel.prng(SEED, 7)
local totals = { committed = 0, rolledback = 0, inflight_applied = 0, inflight_absent = 0, nojournal = 0 }

for round = 1, ROUNDS do
  local journal = fmt("%s/journal-%d.txt", dir, round)
  os.remove(journal)
  local cmd = fmt("exec %s %s --child %s %s %d %d", LUA, rel.shq(SCRIPT), rel.shq(dbpath),
    rel.shq(journal), SEED, round)
  local pid = rel.spawn(cmd, dir .. "/child.log")
  -- Wait until the child is running its writes, then a random moment.
  local tw = rel.now()
  while true do
    local f = io.open(journal, "r")
    local first = f and f:read("*l")
    if f then f:close() end
    if first == "READY" then break end
    if not rel.alive(pid) then
      f = io.open(journal, "r")
      first = f and f:read("*l")
      if f then f:close() end
      fail(fmt("round %d: the child died by itself %s (see %s/child.log)", round,
        first == "READY" and "just after starting its writes" or "before writing", dir))
    end
    if rel.now() - tw > 20 then fail(fmt("round %d: the child did not start in 20 s", round)) end
    rel.sleep(0.001)
  end
  rel.sleep(rng:int(0, 60) / 1000)
  if not rel.alive(pid) then
    fail(fmt("round %d: the child exited by itself (see %s/child.log and %s)", round, dir, journal))
  end
  rel.kill(pid, "KILL")
  if not rel.wait_gone(pid, 20) then fail(fmt("round %d: child %d survived SIGKILL", round, pid)) end

  local lines = rel.read_lines(journal)
  local found, names = read_state(round)
  local expected = copy_state(state)
  local explained = {}     -- createGenre names of committed transactions
  for name in pairs(known_names) do explained[name] = true end
  local inflight, inflight_raise
  local ncommits = 0
  local begun = {}
  for _, line in ipairs(lines) do
    local tag, id, rest = line:match("^(%a+) (%d+) ?(.*)$")
    if tag == "B" then
      local mode, text = rest:match("^(%a+) (.*)$")
      begun[id] = text
      inflight, inflight_raise = text, mode == "raise"
    elseif tag == "C" then
      for _, n in ipairs(apply_tx(expected, begun[id], names)) do explained[n] = true end
      inflight = nil
      ncommits = ncommits + 1
    elseif tag == "R" then
      inflight = nil
      totals.rolledback = totals.rolledback + 1
    elseif tag == "E" then
      fail(fmt("round %d: the child saw a failure: %s", round, line))
    end
  end
  totals.committed = totals.committed + ncommits
  -- Genres of the in-flight transaction: all there with it, or none.
  local inflight_names = {}
  if inflight then
    for name in inflight:gmatch("=cg([^;]+)") do inflight_names[#inflight_names + 1] = name end
  end
  local ok = same(found, expected)
  if ok then
    if inflight then totals.inflight_absent = totals.inflight_absent + 1 end
    for _, n in ipairs(inflight_names) do
      if names[n] then ok = false end
    end
  end
  if not ok then
    local with = copy_state(expected)
    if inflight and not inflight_raise then
      apply_tx(with, inflight, names)
      ok = same(found, with)
      for _, n in ipairs(inflight_names) do
        if not names[n] then ok = false end
        explained[n] = true
      end
    end
    if ok then
      totals.inflight_applied = totals.inflight_applied + 1
    else
      local _, bad = same(found, expected)
      local pids = {}
      for p = 1, NPOSTS do pids[#pids + 1] = p end
      if bad then
        print(fmt("FAIL - crash round %d: post %d is {%s}; committed state says {%s}; in flight: %s",
          round, bad, rel.set_str(found[bad]), rel.set_str(expected[bad]),
          tostring(inflight) .. (inflight_raise and " (raises)" or "")))
      else
        local there = {}
        for _, n in ipairs(inflight_names) do there[#there + 1] = n .. (names[n] and " exists" or " absent") end
        print(fmt("FAIL - crash round %d: the in-flight transaction is half there: links as if not applied, "
          .. "but its createGenre genres: %s; in flight: %s", round, table.concat(there, ", "), tostring(inflight)))
      end
      print("# found:     " .. state_str(found, pids))
      print("# committed: " .. state_str(expected, pids))
      if inflight then print("# +inflight: " .. state_str(with, pids)) end
      print("# journal tail:")
      for i = math.max(1, #lines - 6), #lines do print("#   " .. lines[i]) end
      os.exit(1)
    end
  end
  -- No genre made by createGenre may exist without its transaction.
  for name in pairs(names) do
    if not explained[name] then
      print(fmt("FAIL - crash round %d: genre %q exists but its createGenre was rolled back or never "
        .. "committed (journal: %s)", round, name, journal))
      os.exit(1)
    end
  end
  if ncommits == 0 then totals.nojournal = totals.nojournal + 1 end
  state, known_names = found, names
end

os.execute("rm -rf " .. rel.shq(dir))
print(fmt("ok - crash rounds=%d committed=%d rolled_back=%d in_flight_applied=%d in_flight_absent=%d "
  .. "rounds_without_commit=%d time=%.1fs (%s)", ROUNDS, totals.committed, totals.rolledback,
  totals.inflight_applied, totals.inflight_absent, totals.nojournal, rel.now() - t0, _VERSION))
