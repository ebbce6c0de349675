-- junction.pgwire: PostgreSQL's frontend/backend protocol (version 3) in
-- plain Lua, the transport of junction.open{ engine = "postgres",
-- transport = ... } (docs/POSTGRES.md, "The wire transport").  It speaks
-- over any socket of LuaSocket's shape (connect, send, receive(n), close),
-- which is also ngx.socket.tcp()'s: in OpenResty the same file runs on a
-- cosocket and yields the request instead of blocking the worker.
--
--   local pgwire = require "junction.pgwire"
--   local T = assert(pgwire.connect{ host = "127.0.0.1", port = 5432,
--                                    user = "app", database = "blog" })
--   local db = junction.open{ engine = "postgres", transport = T }
--
-- T:run(sql, params) runs one statement with the extended query protocol
-- (Parse, Bind, Describe, Execute, Sync: one round trip; params a table of
-- strings or nil, params.n their count), or with params nil a script as a
-- simple query.  It returns the reply junction reads:
--   { columns = { names }, types = { type OIDs }, rows = { { text or nil, ... } },
--     changes = rows an INSERT/UPDATE/DELETE touched, status = "I" | "T" | "E" }
-- or { error = { sqlstate =, message = }, status = ... }; nil, message when the
-- socket fails.  Integers are written with arithmetic: no bit library.
local M = {}
local Conn = {}
Conn.__index = Conn

local char, byte, floor, concat = string.char, string.byte, math.floor, table.concat

local function i32(n)
  n = n % 4294967296
  return char(floor(n / 16777216) % 256, floor(n / 65536) % 256, floor(n / 256) % 256, n % 256)
end

local function i16(n)
  n = n % 65536
  return char(floor(n / 256), n % 256)
end

local function r32(s, i)
  local a, b, c, d = byte(s, i, i + 3)
  local n = ((a * 256 + b) * 256 + c) * 256 + d
  if n >= 2147483648 then n = n - 4294967296 end
  return n
end

local function r16(s, i)
  local a, b = byte(s, i, i + 1)
  return a * 256 + b
end

-- A message: its type byte and its body, length in front.
local function msg(t, body)
  return t .. i32(#body + 4) .. body
end

-- Read one message: type, body; or nil, error.
function Conn:read()
  local h, err = self.sock:receive(5)
  if not h then return nil, err end
  local len = r32(h, 2) - 4
  if len < 0 or len > 1073741824 then return nil, "bad message length" end
  local body = ""
  if len > 0 then
    body, err = self.sock:receive(len)
    if not body then return nil, err end
  end
  return h:sub(1, 1), body
end

-- The fields of an ErrorResponse (or NoticeResponse): code letter -> text.
local function fields(body)
  local f, i = {}, 1
  while i <= #body and body:sub(i, i) ~= "\0" do
    local code = body:sub(i, i)
    local z = body:find("\0", i + 1, true)
    if not z then break end
    f[code] = body:sub(i + 1, z - 1)
    i = z + 1
  end
  return f
end

local function row_description(body, reply)
  local n, i = r16(body, 1), 3
  reply.columns, reply.types = {}, {}
  for k = 1, n do
    local z = body:find("\0", i, true)
    reply.columns[k] = body:sub(i, z - 1)
    reply.types[k] = r32(body, z + 7)
    i = z + 19
  end
  reply.rows = {}
end

local function data_row(body, reply)
  local n, i, row = r16(body, 1), 3, {}
  for k = 1, n do
    local len = r32(body, i)
    i = i + 4
    if len >= 0 then
      row[k] = body:sub(i, i + len - 1)
      i = i + len
    end
  end
  reply.rows = reply.rows or {}
  reply.rows[#reply.rows + 1] = row
end

local write_tags = { INSERT = true, UPDATE = true, DELETE = true, MERGE = true, COPY = true }

-- Read the replies up to ReadyForQuery into one reply (a script's last result).
function Conn:collect()
  local reply = {}
  while true do
    local t, body = self:read()
    if not t then
      self.broken = true
      return nil, body
    end
    if t == "T" then
      row_description(body, reply)
    elseif t == "D" then
      data_row(body, reply)
    elseif t == "C" then
      local tag = body:sub(1, -2)
      local word, count = tag:match("^(%a+)"), tag:match("(%d+)$")
      if write_tags[word] and count then reply.changes = tonumber(count) end
      if not reply.error then reply.rows = reply.rows or {} end
    elseif t == "E" then
      local f = fields(body)
      reply.error = { sqlstate = f.C, message = f.M or "error" }
    elseif t == "Z" then
      reply.status = body:sub(1, 1)
      return reply
    end   -- ParseComplete, BindComplete, NoData, notices, parameter status: nothing to keep
  end
end

-- The messages of one statement: Parse, Bind (text parameters), Describe,
-- Execute (no Sync).
local function extended(sql, params)
  local n = params and (params.n or #params) or 0
  local b = { "\0\0", i16(0), i16(n) }   -- unnamed portal and statement, text formats
  for k = 1, n do
    local v = params[k]
    if v == nil then b[#b + 1] = i32(-1)
    else
      v = tostring(v)
      b[#b + 1] = i32(#v) .. v
    end
  end
  b[#b + 1] = i16(0)
  return msg("P", "\0" .. sql .. "\0" .. i16(0)) .. msg("B", concat(b)) ..
         msg("D", "P\0") .. msg("E", "\0" .. i32(0))
end

-- T:runsaved(sql, params): the same inside a transaction, in a savepoint of
-- its own, so that its failure fails only itself: SAVEPOINT, the statement
-- and RELEASE in one round trip (a failure costs one more: ROLLBACK TO).
-- junction calls it, when the transport has it, for every statement inside a
-- transaction but transaction control.
function Conn:runsaved(sql, params)
  if self.broken then return nil, "the connection is broken" end
  local ok, err = self.sock:send(extended("SAVEPOINT jn_st") .. extended(sql, params) ..
                                 extended("RELEASE SAVEPOINT jn_st") .. msg("S", ""))
  if not ok then
    self.broken = true
    return nil, err
  end
  local reply, rerr = self:collect()
  if not reply then return nil, rerr end
  if reply.error and reply.status == "E" then
    local undo, uerr = self:run("ROLLBACK TO SAVEPOINT jn_st; RELEASE SAVEPOINT jn_st")
    if not undo then return nil, uerr end
    reply.status = undo.status
  end
  return reply
end

function Conn:run(sql, params)
  if self.broken then return nil, "the connection is broken" end
  if type(sql) ~= "string" then return nil, "sql must be a string" end
  local out
  if params == nil then out = msg("Q", sql .. "\0")
  else out = extended(sql, params) .. msg("S", "") end
  local ok, err = self.sock:send(out)
  if not ok then
    self.broken = true
    return nil, err
  end
  return self:collect()
end

function Conn:close()
  if self.sock then
    pcall(self.sock.send, self.sock, msg("X", ""))
    self.sock:close()
    self.sock = nil
  end
  self.broken = true
end

-- Authenticate: trust, or a cleartext password (md5 and SCRAM: not yet).
function Conn:startup(opts)
  local body = i32(196608) .. "user\0" .. opts.user .. "\0database\0" ..
               (opts.database or opts.user) .. "\0client_encoding\0UTF8\0" ..
               (opts.options and "options\0" .. opts.options .. "\0" or "") .. "\0"
  local ok, err = self.sock:send(i32(#body + 4) .. body)
  if not ok then return nil, err end
  while true do
    local t, b = self:read()
    if not t then return nil, b end
    if t == "R" then
      local code = r32(b, 1)
      if code == 3 then
        if not opts.password then return nil, "the server asks for a password" end
        self.sock:send(msg("p", opts.password .. "\0"))
      elseif code ~= 0 then
        return nil, "authentication method " .. code .. " is not supported (trust or password)"
      end
    elseif t == "E" then
      local f = fields(b)
      return nil, (f.M or "the server refused the connection") .. (f.C and " (" .. f.C .. ")" or "")
    elseif t == "Z" then
      return true
    end
  end
end

-- Connect: opts.host, opts.port (5432), opts.path (a Unix socket: needs a
-- socket that connects to one), opts.user, opts.database, opts.password,
-- opts.options (the server's "options" startup parameter: "-csearch_path=app"),
-- opts.socket (a socket object; default LuaSocket's, or ngx.socket.tcp in
-- OpenResty).  Returns the transport, or nil, message.
function M.connect(opts)
  opts = opts or {}
  if type(opts.user) ~= "string" then return nil, "pgwire.connect: user (string) expected" end
  local sock = opts.socket
  if sock == nil then
    if rawget(_G, "ngx") and ngx.socket then sock = ngx.socket.tcp()   -- luacheck: ignore 113
    else sock = require("socket").tcp() end
  end
  local ok, err
  if opts.path then ok, err = sock:connect(opts.path)
  else ok, err = sock:connect(opts.host or "127.0.0.1", opts.port or 5432) end
  if not ok then return nil, "pgwire.connect: " .. tostring(err) end
  local self = setmetatable({ sock = sock }, Conn)
  ok, err = self:startup(opts)
  if not ok then
    sock:close()
    return nil, "pgwire.connect: " .. tostring(err)
  end
  return self
end

return M
