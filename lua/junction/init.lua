-- junction: Sequelize's junction-model pattern for Lua, over SQLite.
--
-- `require "junction"` returns this module: the C core `junction.core` (the
-- model layer: connections, models, instances, queries, belongsToMany) plus
-- the parts that are naturally Lua: db:transaction (so its callback may
-- yield under OpenResty), db:associate (associations declared as data), the
-- to-one and hasMany methods, the models-directory loader, and the
-- snake_case name of every method.
local core = require "junction.core"
local fail = require("junction.result").fail
local inflect = require "junction.inflect"

local unpack = table.unpack or unpack   -- luacheck: ignore 143
local pack = table.pack or function(...) return { n = select("#", ...), ... } end

local M = {
  open = core.open,
  types = core.types,
  null = core.null,
  VALIDATION = core.VALIDATION,   -- the code of a value its field cannot hold
  SCHEMA = core.SCHEMA,           -- the code of db:sync when a table differs from its model
  type = core.type,
  modelof = core.modelof,
  version = core.version,
  sqlite_version = core.sqlite_version,
  inflect = inflect,
  toJSON = core.toJSON,           -- JSON text of an instance, a list, a table (the JSON type's codec)
  fromJSON = core.fromJSON,
  array = core.array,             -- mark a table as a JSON array: junction.array{} is []
  json = core.json,               -- a where key for a path in a JSON field: junction.json("meta", "$.a")
  literal = core.literal,         -- SQL text as it is (the escape hatch; ? bound to the values after it)
  fn = core.fn,                   -- a SQL function call: junction.fn("lower", junction.col("name"))
  col = core.col,                 -- a column: junction.col("name"), junction.col("Genres.name")
  UUIDV4 = core.UUIDV4,           -- defaultValue: a random UUID
  NOW = core.NOW,                 -- defaultValue: the current time (DATE, DATEONLY)
}

-- Arrays junction makes (toTable's lists, JSON arrays read back) carry the
-- array metatable of the installed lua-cjson when it has one (OpenResty's
-- array_mt), so cjson.encode writes them as arrays, [] when empty.
do
  local ok, cjson = pcall(require, "cjson")
  local mt = ok and type(cjson) == "table" and (rawget(cjson, "array_mt") or rawget(cjson, "empty_array_mt"))
  if type(mt) == "table" then core._setArrayMetatable(mt) end
end

local Connection, Model, Instance = core.Connection, core.Model, core.Instance

-- PUC Lua 5.1 cannot yield across pcall: there a transaction's function runs
-- in a coroutine of its own, each of its yields passed out to our caller and
-- the answer back in.  (LuaJIT and 5.2+ yield across pcall.)  A nested one's
-- coroutine is resumed by the outer one, so the connection lets it in.
local yield_in_coroutine = _VERSION == "Lua 5.1" and not rawget(_G, "jit")

-- On PUC Lua 5.1, can the running coroutine yield from resume_all?  Not in
-- the main thread, nor under a C function (pcall, say) of its own stack.
local function can_yield()
  if coroutine.running() == nil then return false end
  local level = 2
  while true do
    local info = debug.getinfo(level, "S")
    if info == nil then return true end
    if info.what == "C" then return false end
    level = level + 1
  end
end

-- Resume co until it finishes, passing its yields out to our caller.  When
-- our caller cannot yield, the transaction is given up: the same error as
-- a yield there, raised after the rollback.
local function resume_all(co, ...)
  local res = pack(coroutine.resume(co, ...))
  while res[1] and coroutine.status(co) ~= "dead" do
    if not can_yield() then
      return false, "attempt to yield across metamethod/C-call boundary"
    end
    res = pack(coroutine.resume(co, coroutine.yield(unpack(res, 2, res.n))))
  end
  return unpack(res, 1, res.n)
end

-- Connections whose bytes a transport moves (lua/junction/wire.lua): every C
-- method is wrapped first, before the Lua modules below take their copies.
-- (A transport that yields on PUC Lua 5.1 runs under resume_all too.)
require("junction.wire").setup(M, core, resume_all)

-- {====== Transactions

-- A failure raised inside a transaction to roll it back and come out as
-- nil, message, code (see M.abort).
local Abort = {}
Abort.__tostring = function(e) return tostring(e.message) end

-- Roll back the transaction of db:transaction and return nil, message, code
-- (and details, when given).  Called inside a transaction's function; they
-- come out of db:transaction as its nil, message, code, details.
function M.abort(message, code, details)
  error(setmetatable({ message = message, code = code, details = details }, Abort), 0)
end

local modes = { immediate = true, deferred = true, exclusive = true }
local tx_options = { mode = true }


--- Run fn(db) in a transaction: commit when it returns, roll back when it
-- raises, calls junction.abort or returns nil, err.  Nested calls are
-- savepoints.  Returns what fn returned (true for nothing); nil, message,
-- code when COMMIT fails, SQLite rolled the transaction back by itself, fn
-- called junction.abort, or fn returned nil, message[, code, ...].  While fn
-- has yielded, the connection refuses statements from other coroutines
-- (BUSY).  The token the connection gives the transaction stays a local of
-- this call: when the call is gone without ending it (its coroutine dropped,
-- closed or reused), the connection rolls the transaction back.
function Connection:transaction(opts, fn)
  if core.type(self) ~= "connection" then
    error("db:transaction: bad self (connection expected, got " .. type(self) .. "; call it with ':')", 2)
  end
  if type(opts) == "function" then opts, fn = fn, opts end
  if type(fn) ~= "function" then
    error("db:transaction: bad argument (function expected, got " .. type(fn) .. ")", 2)
  end
  local mode = "immediate"
  if opts ~= nil then
    if type(opts) ~= "table" then
      error("db:transaction: bad options (table expected, got " .. type(opts) .. ")", 2)
    end
    for k in next, opts do
      if not tx_options[k] then
        error("db:transaction: bad option '" .. (type(k) == "string" and k or type(k)) ..
              "' (unknown key)", 2)
      end
    end
    mode = rawget(opts, "mode") or mode
  end
  if not modes[mode] then
    error("db:transaction: bad option 'mode' (immediate, deferred or exclusive expected)", 2)
  end
  local token, msg, code, details = self:_tx("open", mode)
  if not token then return fail(msg, code, details) end
  local res
  if yield_in_coroutine then
    local co = coroutine.create(function(db)
      local held = token   -- the coroutine's statements are the transaction's
      local r = pack(fn(db))
      return r, held
    end)
    res = pack(resume_all(co, self))
    if res[1] then res = pack(true, unpack(res[2], 1, res[2].n)) end
  else
    res = pack(pcall(fn, self))
  end
  if not res[1] then
    self:_tx("close", token, false)
    core._txsettle(self, false)
    local err = res[2]
    if getmetatable(err) == Abort then return nil, err.message, err.code, err.details end
    error(err, 0)
  end
  if res[2] == nil and res[3] ~= nil then   -- fn returned nil, err: a failure
    self:_tx("close", token, false)
    core._txsettle(self, false)
    return unpack(res, 2, res.n)
  end
  local ok, cmsg, ccode, cdetails = self:_tx("close", token, true)
  core._txsettle(self, ok == true)   -- instances written in a rolled back level get their state back
  if not ok then return fail(cmsg, ccode, cdetails) end
  if res.n == 1 then return true end
  return unpack(res, 2, res.n)
end

-- Run fn in a transaction where a nil, message, code from any step rolls
-- everything back: fn calls check(...) on each result.
local function check(ok, msg, code, details, ...)
  if ok == nil and msg ~= nil then M.abort(msg, code, details) end
  return ok, msg, code, details, ...
end
M._check = check

-- }======

-- Validations and hooks (lua/junction/hooks.lua): db:define takes them
-- out of the spec it gives the C core.
local hooks = require "junction.hooks"
hooks.setup(M, core)
M._hooked = function(model) return hooks.entry(model) ~= nil end

-- Getters, setters and VIRTUAL fields (lua/junction/accessors.lua): db:define
-- takes them out too, and gives them to the C core's instance __index.
require("junction.accessors").setup(core)

-- Model:findAndCountAll and Model:paginated (lua/junction/pages.lua).
require("junction.pages").setup(core)

-- Scopes and soft delete (lua/junction/scopes.lua): db:define takes
-- defaultScope, scopes and paranoid out of the spec.
local scopes = require "junction.scopes"
scopes.setup(M, core)

-- Model:upsert and bulkCreate's ignoreDuplicates and updateOnDuplicate
-- (lua/junction/upsert.lua).
require("junction.upsert").setup(core)

-- A model's own class and instance methods (lua/junction/methods.lua).
require("junction.methods").setup()

-- Association declarations and the methods written in Lua.
local assoc = require "junction.assoc"
assoc.setup(M, core)

function Connection:associate(tbl)
  if core.type(self) ~= "connection" then
    error("db:associate: bad self (connection expected, got " .. type(self) .. "; call it with ':')", 2)
  end
  local ok = assoc.associate(self, tbl)
  scopes.associated(self)
  return ok
end

M.loadModels = function(db, dir)
  return require("junction.loader").load(db, dir)
end

-- Migrations (lua/junction/migrate.lua) and the entity-relationship diagram
-- (lua/junction/erd.lua), loaded on first use.
function M.migrate(db, source) return require("junction.migrate").migrate(db, source) end
function M.rollback(db, source, n) return require("junction.migrate").rollback(db, source, n) end
function M.migrationStatus(db, source) return require("junction.migrate").status(db, source) end
function M.erd(db, opts) return require("junction.erd").dot(db, opts) end
-- Every table's rows from one database into another, in foreign-key order, in
-- one transaction, key counters reset (lua/junction/copy.lua; docs/POSTGRES.md).
function M.copy(from, to, opts) return require("junction.copy")(from, to, opts) end

-- {====== snake_case names

local function add_snake(methods)
  local names = {}
  for name in pairs(methods) do names[#names + 1] = name end
  for _, name in ipairs(names) do
    if name:sub(1, 1) ~= "_" then
      local snake = inflect.snake(name)
      if snake ~= name and methods[snake] == nil then methods[snake] = methods[name] end
    end
  end
end
add_snake(Connection)
add_snake(Model)
add_snake(Instance)

-- }======

return M
