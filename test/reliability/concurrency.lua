--[==[
concurrency.lua -- several processes writing one WAL database lose nothing.

  lua concurrency.lua [WORKERS [OPS [SEED]]]    (default 4 workers, 400 ops each)
  lua concurrency.lua --worker DB LOG SEED W OPS GO   (started by the parent)

The parent makes a WAL database with the seed's models, 24 genres, 4 posts
owned by each worker and 4 shared posts. The workers start together (they
wait for a "go" file) and run, with busy_timeout = 10000:

  * setGenres on their own posts (only the owner writes them), followed now
    and then by getGenres, which must give back exactly what was just set;
  * addGenres on the shared posts (everyone adds, nobody removes);
  * Genre:findOrCreate on a dozen names all workers ask for (each name must
    end up once, and every worker must get the same id for it);
  * transactions that do both at once, some of which raise on purpose and
    must roll back.

Each worker logs every operation after it has returned ("S post set",
"A post set", a transaction's lines between "T" and "C"/"R"), and every
failure ("E code message"). The parent then checks: every worker finished;
no operation failed (a SQLITE_BUSY/LOCKED surfaced through busy_timeout is
counted and fails the check); each owned post holds its owner's last set;
each shared post holds exactly the union of all committed adds; integrity
and foreign keys hold.
]==]

local here = (arg and arg[0] or ""):match("^(.*)/[^/]*$") or "."
package.path = here .. "/?.lua;" .. package.path

local rel = require "rel"
local junction = require "junction"
local fmt = string.format

local NGENRES, OWN, NSHARED = 24, 4, 4

local function owned_post(w, i) return NSHARED + (w - 1) * OWN + i end

-- ---------------------------------------------------------------------------
-- Worker
-- ---------------------------------------------------------------------------

local function worker(dbpath, logpath, seed, w, nops, go)
  local rng = rel.prng(seed, 500 + w)
  local db = assert(junction.open(dbpath, { busy_timeout = 10000, journal_mode = "wal",
                                            synchronous = "normal" }))
  local Post, Genre = rel.seed_models(db, junction)
  local log = assert(io.open(logpath, "w"))
  local posts = {}
  local function post(pid)
    if not posts[pid] then posts[pid] = assert(Post:findByPk(pid)) end
    return posts[pid]
  end
  for i = 1, OWN do post(owned_post(w, i)) end
  for i = 1, NSHARED do post(i) end
  while not io.open(go, "r") do rel.sleep(0.001) end
  local function genres()
    local list, set = {}, {}
    for _ = 1, rng:int(0, 6) do
      local g = rng:int(1, NGENRES)
      list[#list + 1] = g
      set[g] = true
    end
    return list, rel.set_str(set)
  end
  local function failed(what, msg, code)
    log:write(fmt("E %s %s %s\n", tostring(code), what, tostring(msg)))
    log:flush()
  end
  for _ = 1, nops do
    local r = rng:int(1, 100)
    if r <= 50 then
      local pid = owned_post(w, rng:int(1, OWN))
      local list, s = genres()
      local ok, msg, code = post(pid):setGenres(list)
      if ok then
        log:write(fmt("S %d %s\n", pid, s))
        if rng:chance(0.3) then
          local got, m2, c2 = post(pid):getGenres()
          if not got then
            failed("getGenres", m2, c2)
          else
            local gs = {}
            for _, g in ipairs(got) do gs[g.genre_id] = true end
            if rel.set_str(gs) ~= s then
              log:write(fmt("X read-your-writes: post %d set {%s} read {%s}\n", pid, s, rel.set_str(gs)))
            end
          end
        end
      else
        failed("setGenres", msg, code)
      end
    elseif r <= 55 then
      -- findOrCreate races: every worker asks for the same few names.
      local name = fmt("race-%d", rng:int(1, 12))
      local g, created_or_msg, code = Genre:findOrCreate { where = { name = name } }
      if g then
        log:write(fmt("F %s %s\n", name, tostring(g.genre_id)))
      else
        failed("findOrCreate", created_or_msg, code)
      end
    elseif r <= 85 then
      local pid = rng:int(1, NSHARED)
      local list, s = genres()
      local ok, msg, code = post(pid):addGenres(list)
      if ok then log:write(fmt("A %d %s\n", pid, s)) else failed("addGenres", msg, code) end
    else
      local raise = rng:chance(0.25)
      local done = {}
      local ok, err = pcall(db.transaction, db, function()
        for _ = 1, rng:int(1, 3) do
          local list, s = genres()
          local pid, ok1, msg, code
          if rng:chance(0.5) then
            pid = owned_post(w, rng:int(1, OWN))
            ok1, msg, code = post(pid):setGenres(list)
            done[#done + 1] = fmt("S %d %s", pid, s)
          else
            pid = rng:int(1, NSHARED)
            ok1, msg, code = post(pid):addGenres(list)
            done[#done + 1] = fmt("A %d %s", pid, s)
          end
          if not ok1 then error({ code = code, msg = msg }) end
        end
        if raise then error("deliberate rollback", 0) end
      end)
      if ok then
        for _, l in ipairs(done) do log:write(l, "\n") end
      elseif raise and err == "deliberate rollback" then
        log:write("R\n")
      elseif type(err) == "table" then
        failed("transaction body", err.msg, err.code)
      else
        failed("transaction", err, "raise")
      end
    end
  end
  log:write("DONE\n")
  log:close()
  db:close()
end

if arg[1] == "--worker" then
  worker(arg[2], arg[3], tonumber(arg[4]), tonumber(arg[5]), tonumber(arg[6]), arg[7])
  os.exit(0)
end

-- ---------------------------------------------------------------------------
-- Parent
-- ---------------------------------------------------------------------------

local WORKERS = tonumber(arg[1]) or 4
local OPS = tonumber(arg[2]) or 400
local SEED = tonumber(arg[3]) or 1
local TMPDIR = os.getenv("RELIABILITY_TMP") or "/tmp"
local LUA = arg[-1] or "lua5.4"

local dir = fmt("%s/junction-conc-%d", TMPDIR, SEED)
os.execute("rm -rf " .. rel.shq(dir) .. " && mkdir -p " .. rel.shq(dir))
local dbpath = dir .. "/blog.sqlite3"
local go = dir .. "/go"

local function fail(msg)
  print("FAIL - concurrency: " .. msg)
  os.exit(1)
end

do
  local db = assert(junction.open(dbpath, { journal_mode = "wal" }))
  local Post, Genre = rel.seed_models(db, junction)
  assert(db:sync())
  assert(db:transaction(function()
    for i = 1, NSHARED + WORKERS * OWN do assert(Post:create { text = "post " .. i }) end
    for i = 1, NGENRES do assert(Genre:create { name = "genre " .. i }) end
  end))
  assert(db:close())
end

local t0 = rel.now()
local pids = {}
for w = 1, WORKERS do
  local cmd = fmt("exec %s %s --worker %s %s %d %d %d %s", LUA, rel.shq(arg[0]), rel.shq(dbpath),
    rel.shq(fmt("%s/worker-%d.log", dir, w)), SEED, w, OPS, rel.shq(go))
  pids[w] = rel.spawn(cmd, fmt("%s/worker-%d.err", dir, w))
end
rel.sleep(0.3)
io.open(go, "w"):close()
for w = 1, WORKERS do
  if not rel.wait_gone(pids[w], 300) then
    rel.kill(pids[w], "KILL")
    fail(fmt("worker %d did not finish in 300 s", w))
  end
end
local elapsed = rel.now() - t0

local owner_last, shared = {}, {}
for i = 1, NSHARED do shared[i] = {} end
local nbusy, nerr, nops, nrollback, nryw = 0, 0, 0, 0, 0
local race_ids, nrace, nfoc = {}, 0, 0
local errors = {}
for w = 1, WORKERS do
  local lines = rel.read_lines(fmt("%s/worker-%d.log", dir, w))
  if lines[#lines] ~= "DONE" then
    local err = table.concat(rel.read_lines(fmt("%s/worker-%d.err", dir, w)), " | ")
    fail(fmt("worker %d did not finish its log (last line %q; stderr: %s)", w, tostring(lines[#lines]), err))
  end
  for _, l in ipairs(lines) do
    local tag, a, b = l:match("^(%a) ?(%S*) ?(.*)$")
    if tag == "S" then
      owner_last[tonumber(a)] = b
      nops = nops + 1
    elseif tag == "A" then
      for g in pairs(rel.str_set(b)) do shared[tonumber(a)][g] = true end
      nops = nops + 1
    elseif tag == "F" then
      local id = tonumber(b)
      if race_ids[a] and race_ids[a] ~= id then
        nrace = nrace + 1
        if #errors < 5 then errors[#errors + 1] = fmt("worker %d: findOrCreate %s gave id %s, another worker got %s",
          w, a, tostring(id), tostring(race_ids[a])) end
      end
      race_ids[a] = id
      nfoc = nfoc + 1
    elseif tag == "R" then
      nrollback = nrollback + 1
    elseif tag == "E" then
      nerr = nerr + 1
      local code = tonumber(a)
      if code and (code % 256 == 5 or code % 256 == 6) then nbusy = nbusy + 1 end
      if #errors < 5 then errors[#errors + 1] = fmt("worker %d: %s", w, l) end
    elseif tag == "X" then
      nryw = nryw + 1
      if #errors < 5 then errors[#errors + 1] = fmt("worker %d: %s", w, l) end
    end
  end
end

local db = assert(junction.open(dbpath))
local r = assert(db:query("PRAGMA integrity_check"))
if r[1].integrity_check ~= "ok" then fail("integrity_check: " .. tostring(r[1].integrity_check)) end
r = assert(db:query("PRAGMA foreign_key_check"))
if #r > 0 then fail("foreign_key_check is not empty") end
local state = {}
for _, row in ipairs(assert(db:query("SELECT post_id, genre_id FROM tag_post_genre"))) do
  state[row.post_id] = state[row.post_id] or {}
  state[row.post_id][row.genre_id] = true
end
local bad = {}
for _, row in ipairs(assert(db:query("SELECT name, count(*) AS n, min(genre_id) AS id FROM genre "
    .. "WHERE name LIKE 'race-%' GROUP BY name"))) do
  if row.n ~= 1 then bad[#bad + 1] = fmt("genre %s exists %d times", row.name, row.n) end
  if race_ids[row.name] and race_ids[row.name] ~= row.id then
    bad[#bad + 1] = fmt("findOrCreate %s gave id %s, the table has %s", row.name, tostring(race_ids[row.name]), row.id)
  end
end
db:close()

for w = 1, WORKERS do
  for i = 1, OWN do
    local pid = owned_post(w, i)
    local want = owner_last[pid] or ""
    local got = rel.set_str(state[pid] or {})
    if got ~= want then bad[#bad + 1] = fmt("owned post %d is {%s}, its owner last set {%s}", pid, got, want) end
  end
end
for i = 1, NSHARED do
  local want, got = rel.set_str(shared[i]), rel.set_str(state[i] or {})
  if got ~= want then bad[#bad + 1] = fmt("shared post %d is {%s}, the union of adds is {%s}", i, got, want) end
end

if nerr > 0 or nryw > 0 or #bad > 0 or nrace > 0 then
  print(fmt("FAIL - concurrency workers=%d ops=%d: %d failures (%d BUSY/LOCKED), %d stale reads, %d wrong rows, "
    .. "%d findOrCreate disagreements", WORKERS, OPS, nerr, nbusy, nryw, #bad, nrace))
  for _, e in ipairs(errors) do print("#   " .. e) end
  for i = 1, math.min(#bad, 8) do print("#   " .. bad[i]) end
  print("# logs kept in " .. dir)
  os.exit(1)
end
os.execute("rm -rf " .. rel.shq(dir))
print(fmt("ok - concurrency workers=%d ops/worker=%d logged_writes=%d findOrCreate=%d rollbacks=%d busy=0 "
  .. "time=%.1fs (%s)", WORKERS, OPS, nops, nfoc, nrollback, elapsed, _VERSION))
