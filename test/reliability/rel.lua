--[==[
rel.lua -- shared helpers of the reliability suite (test/reliability/).

  prng(seed)          a seeded generator, identical on Lua 5.1, 5.2, 5.3, 5.4
                      and LuaJIT (L'Ecuyer's combined LCG, products < 2^53,
                      no bit operators, no math.random)
  seed_models(db)     defines the seed's Post, Genre, TagPostGenre and their
                      associations from examples/models/ (junction.loadModels)
  now(), sleep(s)     a monotonic clock and a sleep (lua-posix, else lua-system,
                      else the shell)
  spawn(cmd, out)     starts `cmd` in the background, returns its pid
  kill(pid, sig)      sends a signal ("KILL", "TERM", 0)
  alive(pid)          the process exists and is not a zombie
  wait_gone(pid, t)   waits up to t seconds for pid to be gone or a zombie
  shq(s)              quotes s for the shell
  read_lines(path)    the lines of a file (an empty table when missing)
  rm_db(path)         removes path, path-wal, path-shm, path-journal

Everything here is plain Lua in the 5.1/5.4 common subset.
]==]

local M = {}

local floor = math.floor

-- ---------------------------------------------------------------------------
-- PRNG
-- ---------------------------------------------------------------------------

local M1, A1 = 2147483563, 40014
local M2, A2 = 2147483399, 40692

local Prng = {}
Prng.__index = Prng

-- One 31-bit output in [0, M1 - 1).
function Prng:next()
  local s1 = (self.s1 * A1) % M1
  local s2 = (self.s2 * A2) % M2
  self.s1, self.s2 = s1, s2
  local z = (s1 - s2) % (M1 - 1)
  return z
end

-- An integer in [lo, hi] (both inclusive).
function Prng:int(lo, hi)
  if hi <= lo then return lo end
  return lo + self:next() % (hi - lo + 1)
end

-- true with probability p (0..1), resolved to 1/10000.
function Prng:chance(p)
  return self:next() % 10000 < p * 10000
end

-- One element of array t.
function Prng:pick(t)
  return t[1 + self:next() % #t]
end

-- A key chosen by weight from { name = weight, ... } given as an array of
-- { name, weight } pairs (arrays keep the choice deterministic).
function Prng:weighted(pairs_)
  local total = 0
  for i = 1, #pairs_ do total = total + pairs_[i][2] end
  local r = self:next() % total
  for i = 1, #pairs_ do
    r = r - pairs_[i][2]
    if r < 0 then return pairs_[i][1] end
  end
  return pairs_[#pairs_][1]
end

function M.prng(seed, stream)
  seed = floor(tonumber(seed) or 1)
  stream = floor(tonumber(stream) or 0)
  local self = setmetatable({}, Prng)
  self.s1 = 1 + (seed * 7919 + stream * 104729) % (M1 - 1)
  self.s2 = 1 + (seed * 6563 + stream * 15485863 + 12345) % (M2 - 1)
  -- Warm up so close seeds diverge.
  for _ = 1, 8 do self:next() end
  return self
end

-- ---------------------------------------------------------------------------
-- The seed's models (DESIGN.md, "The seed, transcribed")
-- ---------------------------------------------------------------------------

-- The repository's root, from this file's own path, made absolute so that a
-- printed reproduction runs from any directory.
local function repo_root()
  local src = debug.getinfo(1, "S").source:match("^@(.*)$") or "rel.lua"
  local dir = src:match("^(.*)/[^/]*$") or "."   -- this file's directory
  if dir:sub(1, 1) ~= "/" then dir = (os.getenv("PWD") or ".") .. "/" .. dir end
  return dir .. "/../.."
end
M.MODELS_DIR = repo_root() .. "/examples/models"

-- The seed's models from their one definition, examples/models/ (the files
-- the specs, the benchmark and examples/blog.lua load too).
function M.seed_models(db, junction)
  junction = junction or require "junction"
  local models = junction.loadModels(db, M.MODELS_DIR)
  return models.Post, models.Genre, models.TagPostGenre
end

-- The Lua source of seed_models, for printing standalone reproductions.
M.SEED_SOURCE = [[
local junction = require "junction"
local db = assert(junction.open(":memory:"))
local models = junction.loadModels(db, "]] .. M.MODELS_DIR .. [[")
local Post, Genre = models.Post, models.Genre
assert(db:sync())
local function links() -- "post:genre,..." of every link, sorted
  local t = {}
  for _, r in ipairs(assert(db:query("SELECT post_id, genre_id FROM tag_post_genre ORDER BY 1, 2"))) do
    t[#t + 1] = r.post_id .. ":" .. r.genre_id
  end
  return table.concat(t, " ")
end
]]

-- ---------------------------------------------------------------------------
-- Time and processes
-- ---------------------------------------------------------------------------

local has_posix, punistd = pcall(require, "posix.unistd")
local psignal = has_posix and require "posix.signal" or nil
local ptime = has_posix and require "posix.time" or nil
local has_system, system = pcall(require, "system")

M.has_posix = has_posix

if has_posix and ptime.clock_gettime then
  local cg, MONO = ptime.clock_gettime, ptime.CLOCK_MONOTONIC
  function M.now() local ts = cg(MONO); return ts.tv_sec + ts.tv_nsec * 1e-9 end
elseif has_system then
  M.now = system.monotime
else
  M.now = os.time
end

if has_system then
  function M.sleep(s) if s > 0 then system.sleep(s) end end
elseif has_posix then
  function M.sleep(s)
    if s > 0 then
      local sec = floor(s)
      ptime.nanosleep({ tv_sec = sec, tv_nsec = floor((s - sec) * 1e9) })
    end
  end
else
  function M.sleep(s) os.execute(string.format("sleep %.3f", s)) end
end

function M.shq(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

-- Starts `cmd` (a shell command line) in the background with stdout and
-- stderr appended to `out`; returns its pid. The process is a child of a
-- shell that exits at once, so it is reaped by init, never by us.
function M.spawn(cmd, out)
  -- `cmd` must be a simple command, so that $! is the pid of the program.
  local p = assert(io.popen(cmd .. " >>" .. M.shq(out or "/dev/null")
    .. " 2>&1 </dev/null & echo $!"))
  local pid = tonumber(p:read("*l"))
  p:close()
  assert(pid, "spawn failed: " .. cmd)
  return pid
end

function M.kill(pid, sig)
  sig = sig or "KILL"
  if psignal then
    local n = sig == 0 and 0 or psignal["SIG" .. sig]
    return psignal.kill(pid, n) == 0
  end
  local ok = os.execute("kill -" .. (sig == 0 and "0" or sig) .. " " .. pid .. " 2>/dev/null")
  return ok == true or ok == 0
end

-- The process's state letter from /proc, or nil when gone.
local function proc_state(pid)
  local f = io.open("/proc/" .. pid .. "/stat", "r")
  if not f then return nil end
  local s = f:read("*l") or ""
  f:close()
  return s:match("^%d+ %b() (%a)")
end

function M.alive(pid)
  local st = proc_state(pid)
  return st ~= nil and st ~= "Z" and st ~= "X"
end

function M.wait_gone(pid, timeout)
  local t0 = M.now()
  while M.alive(pid) do
    if M.now() - t0 > (timeout or 30) then return false end
    M.sleep(0.002)
  end
  return true
end

function M.read_lines(path)
  local t = {}
  local f = io.open(path, "r")
  if not f then return t end
  for line in f:lines() do t[#t + 1] = line end
  f:close()
  return t
end

function M.rm_db(path)
  for _, suf in ipairs { "", "-wal", "-shm", "-journal" } do os.remove(path .. suf) end
end

-- fsync of an open Lua file, where lua-posix can do it; a flush otherwise
-- (enough against SIGKILL: write(2) has reached the kernel).
local pstdio = has_posix and require "posix.stdio" or nil
function M.fsync(fh)
  fh:flush()
  if pstdio and punistd.fsync then
    local fd = pstdio.fileno(fh)
    if fd then punistd.fsync(fd) end
  end
end

-- A set of integers as a canonical sorted string "1,4,9".
function M.set_str(set)
  local t = {}
  for k in pairs(set) do t[#t + 1] = k end
  table.sort(t)
  return table.concat(t, ",")
end

function M.str_set(s)
  local set = {}
  for n in (s or ""):gmatch("%d+") do set[tonumber(n)] = true end
  return set
end

return M
