-- junction.wire: the Lua half of a connection whose bytes a transport moves
-- (junction.open{ engine = "postgres", transport = T }; docs/POSTGRES.md,
-- "The wire transport").
--
-- The C half of every method runs against an engine that records its
-- statements instead of sending them (csrc/jn_wire.c).  When a statement
-- needs the server's reply the C call stops; this file sends the statement
-- through T:run(sql, params), hands the reply to C and runs the same C call
-- again from its start, the statements answered so far answered from the
-- replies, until the call finishes.  The loop is Lua, so T:run may yield (an
-- OpenResty cosocket).  Only the C functions are wrapped: the hooks and
-- validators written in Lua (hooks.lua) run around them, once per call.
local M = {}

local unpack = table.unpack or unpack   -- luacheck: ignore 143
local pack = table.pack or function(...) return { n = select("#", ...), ... } end

local core        -- set by setup
local opened = 0  -- connections with a transport opened in this Lua state

-- The call each connection is running now: { inc = true while its C half
-- runs }.  Weak keys: a dropped connection takes its entry with it.
local inflight = setmetatable({}, { __mode = "k" })

local IOERR = 10  -- junction's code of a lost connection (SQLITE_IOERR)

local function is_c(f)
  return type(f) == "function" and debug.getinfo(f, "S").what == "C"
end

-- Re-raise a failure of pcall(f, ...) as f would have raised it called from
-- our caller: a message without a position gets our caller's (level 2 seen
-- from the wrapper that calls this with its own level).
local function position(err, level)
  if type(err) == "string" and not err:find("^[^:\n]+:%d+: ") then error(err, level + 1) end
  error(err, 0)
end

-- Send the pending statement p through the transport T.  Inside a
-- transaction a statement runs in a savepoint of its own (as the libpq engine
-- does), so that its failure fails only itself.  Returns the reply, or nil
-- and why the transport failed.
local function send(T, p)
  local params = p.params
  if p.simple then params = nil end
  if not (p.guard and p.status == "T") then return T:run(p.sql, params) end
  if T.runsaved then return T:runsaved(p.sql, params) end   -- one round trip (junction.pgwire)
  local r, err = T:run("SAVEPOINT jn_st")
  if type(r) ~= "table" then return nil, err end
  if r.error then return r end
  local reply, rerr = T:run(p.sql, params)
  if type(reply) ~= "table" then return nil, rerr end
  if reply.error then
    r, err = T:run("ROLLBACK TO SAVEPOINT jn_st")
    if type(r) ~= "table" then return nil, err end
  end
  r, err = T:run("RELEASE SAVEPOINT jn_st")
  if type(r) ~= "table" then return nil, err end
  reply.status = r.status or "T"
  return reply
end

-- PUC Lua 5.1 cannot yield across pcall: there the transport runs in a
-- coroutine of its own, each of its yields passed out to our caller and the
-- answer back in (as db:transaction does, lua/junction/init.lua).
local yield_in_coroutine = _VERSION == "Lua 5.1" and not rawget(_G, "jit")

local resume_all  -- init.lua's: resume a coroutine, passing its yields out (set by setup)

local function protected(T, p)
  if not yield_in_coroutine then return pcall(send, T, p) end
  return resume_all(coroutine.create(send), T, p)
end

-- The transport failed: the session is given up (the server rolls back
-- what it had open), the call ends with nil, message, IOERR.
local function lost(db, why)
  db:_wire("lose", why)
  db:_wire("end")
  inflight[db] = nil
  return nil, why, IOERR, { sqlstate = "08006" }
end

-- Run f(...) (a C function of junction) on the connection db until it
-- finishes, a statement at a time.
local function drive(db, f, ...)
  local state = inflight[db]
  if state then
    -- a callback run by the C half (a defaultValue function): its statements
    -- join the running call's replies
    if state.inc then return f(...) end
    error("junction: the connection is waiting for the server's reply to another call "
          .. "(one call at a time on a connection with a transport)", 3)
  end
  local T = db:_wire("transport")
  state = { inc = false }
  inflight[db] = state
  db:_wire("begin")
  while true do
    state.inc = true
    local r = pack(pcall(f, ...))
    state.inc = false
    local p = db:_wire("pending")
    if not p then
      db:_wire("end")
      inflight[db] = nil
      if not r[1] then position(r[2], 2) end
      return unpack(r, 2, r.n)
    end
    local ok, reply, err = protected(T, p)
    if not ok then return lost(db, "the wire transport raised: " .. tostring(reply)) end
    if type(reply) ~= "table" then
      return lost(db, "the wire transport failed: " .. tostring(err or reply))
    end
    local taken, why = db:_wire("answer", reply)
    if not taken then return lost(db, "the wire transport's reply is refused: " .. tostring(why)) end
    db:_wire("rewind")
  end
end

-- f (a C method of junction) as the method of an object of a connection
-- with a transport: run through drive.
local function wrap_wired(f)
  return function(self, ...)
    local db = core._wireof(self)
    if db == nil then
      local r = pack(pcall(f, self, ...))
      if r[1] then return unpack(r, 2, r.n) end
      position(r[2], 2)
    end
    return drive(db, f, self, ...)
  end
end
M.wrap = wrap_wired

-- The C methods junction's Lua modules keep (hooks.lua, scopes.lua,
-- upsert.lua: their _raw tables), wrapped once a connection with a transport
-- is opened: before that, nothing changes for SQLite or libpq.
local function wrap_kept()
  for _, name in ipairs { "junction.hooks", "junction.scopes", "junction.upsert" } do
    local raw = package.loaded[name] and package.loaded[name]._raw
    if type(raw) == "table" then
      for k, v in pairs(raw) do
        if is_c(v) then raw[k] = wrap_wired(v) end
      end
    end
  end
end

-- A model of a connection with a transport: its class methods (its own
-- table, which Model.__index consults first) and its instance methods (the
-- lookup Model:_method replaces in) wrapped; what Lua put there (hooks,
-- scopes) stays, its C calls wrapped by wrap_kept.
local function wire_model(model, add)
  local own = model:_own()
  for name, fn in pairs(core.Model) do
    if is_c(fn) and rawget(own, name) == nil then own[name] = wrap_wired(fn) end
  end
  for name, fn in pairs(core.Instance) do
    if is_c(fn) then
      local ok, cur = pcall(add, model, name, fn, true)
      if ok then add(model, name, is_c(cur) and wrap_wired(cur) or cur, true) end
    end
  end
end

-- Connection methods that run no statement and work on a closed connection.
local unwrapped = { _wire = true, isOpen = true, engine = true }

function M.setup(_, c, resume)
  core = c
  resume_all = resume
  local add = core.Model._method
  -- the methods Lua gives instances later (associations): C ones wrapped
  core.Model._method = function(model, name, fn, replace)
    if core._wireof(model) ~= nil then fn = is_c(fn) and wrap_wired(fn) or fn end
    return add(model, name, fn, replace)
  end
  -- belongsToMany's methods are C closures db:_associate installs itself
  local W = core.WireConnection
  W._associate = function(db, source, kind, target, opts)
    local a = core.Connection._associate(db, source, kind, target, opts)
    if type(opts) == "table" and type(opts.names) == "table" then
      for name in pairs(opts.names) do
        local old = add(source, name, function() end, true)
        add(source, name, is_c(old) and wrap_wired(old) or old, true)
      end
    end
    return a
  end
  W.define = function(db, ...)
    local r = pack(core.Connection.define(db, ...))
    if core.type(r[1]) == "model" then wire_model(r[1], add) end
    return unpack(r, 1, r.n)
  end
  -- closing the connection closes its transport (when it has a close)
  W.close = function(db, ...)
    if core._wireof(db) == nil then return core.Connection.close(db, ...) end   -- closed, or not one
    if inflight[db] and not inflight[db].inc then
      error("db:close: the connection is waiting for the server's reply to a call", 2)
    end
    local T = db:_wire("transport")
    local r = pack(core.Connection.close(db, ...))
    if r[1] and T ~= nil then
      local ok, fn = pcall(function() return T.close end)
      if ok and type(fn) == "function" then pcall(fn, T) end
    end
    return unpack(r, 1, r.n)
  end
  -- every other method: the connection's, its C ones wrapped (on first use)
  setmetatable(W, { __index = function(t, k)
    local v = core.Connection[k]
    if is_c(v) and not unwrapped[k] then v = wrap_wired(v) end
    if v ~= nil then rawset(t, k, v) end
    return v
  end })
  -- opening one (junction.open{ engine = "postgres", transport = T }) calls this
  if core._wirehook then
    core._wirehook(function()
      if opened == 0 then wrap_kept() end
      opened = opened + 1
    end)
  end
end

return M
