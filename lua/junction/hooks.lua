-- junction.hooks: validations and hooks, in Lua over the C core.
--
-- db:define is C and refuses options it does not know.  Connection.define
-- (set up here) takes `validate` (per field, and model-level) and `hooks`
-- out of a copy of the spec, calls the C define with the rest, and keeps
-- what it took in a weak-keyed table: model -> entry.  User code
-- (validators, hooks) runs from here, never from C, so it may yield under
-- OpenResty (inside db:transaction).
--
-- A model that declares neither keeps the C fast path: its instances get
-- the C save/update/destroy (the C define copies the shared instance
-- methods into each model's lookup when it defines the model, so a model
-- with validators or hooks is defined while those three are its own Lua
-- versions); the shared Model methods build, create, bulkCreate, update
-- and findOrCreate look the model up in the weak table and call C when it
-- has no entry (in pcall, see checked).
local fail = require("junction.result").fail
local M = {}

local unpack = table.unpack or unpack   -- luacheck: ignore 143

local junction, core    -- set by setup
local entries = setmetatable({}, { __mode = "k" })

M.hook_names = {
  "beforeValidate", "afterValidate", "beforeCreate", "afterCreate", "beforeUpdate", "afterUpdate",
  "beforeSave", "afterSave", "beforeDestroy", "afterDestroy", "beforeBulkCreate", "afterBulkCreate",
  "beforeBulkUpdate", "afterBulkUpdate", "beforeBulkDestroy", "afterBulkDestroy",
  "beforeAssociate", "afterAssociate",   -- run by db:associate (junction.assoc)
}
local is_hook = {}
for _, n in ipairs(M.hook_names) do is_hook[n] = true end

-- {====== Declarations

local function raise(fmt, ...)
  error("db:define: " .. string.format(fmt, ...), 0)
end

-- Number of characters of a UTF-8 string (bytes that start a sequence).
local function ulen(s)
  local _, n = s:gsub("[^\128-\191]", "")
  return n
end

local function describe(v)
  if type(v) == "string" then return string.format("%q", v) end
  return tostring(v)
end

-- validator name -> function(arg, ctx) checking its argument at define
-- time, returning function(value, inst) -> nil (fine) or a message.
local validators = {}

function validators.notEmpty(arg, ctx)
  if type(arg) ~= "boolean" then
    raise("%s: bad option 'validate.notEmpty' (boolean expected, got %s)", ctx, type(arg))
  end
  if not arg then return nil end
  return function(v)
    if type(v) == "string" and v:match("^%s*$") then return "must not be empty" end
  end
end

function validators.len(arg, ctx)
  local lo, hi = type(arg) == "table" and rawget(arg, 1), type(arg) == "table" and rawget(arg, 2)
  if type(arg) ~= "table" or (lo ~= nil and type(lo) ~= "number") or (hi ~= nil and type(hi) ~= "number")
     or (lo == nil and hi == nil) then
    raise("%s: bad option 'validate.len' ({ min, max } of numbers expected)", ctx)
  end
  return function(v)
    if type(v) ~= "string" and type(v) ~= "number" then return "must be text" end
    local n = ulen(tostring(v))
    if (lo and n < lo) or (hi and n > hi) then
      if lo and hi then return string.format("must be %d to %d characters long", lo, hi) end
      if lo then return string.format("must be at least %d characters long", lo) end
      return string.format("must be at most %d characters long", hi)
    end
  end
end

local function bound(name, cmp, word)
  validators[name] = function(arg, ctx)
    if type(arg) ~= "number" then
      raise("%s: bad option 'validate.%s' (number expected, got %s)", ctx, name, type(arg))
    end
    return function(v)
      local n = tonumber(v)
      if n == nil then return "must be a number" end
      if not cmp(n, arg) then return "must be at " .. word .. " " .. tostring(arg) end
    end
  end
end
bound("min", function(n, a) return n >= a end, "least")
bound("max", function(n, a) return n <= a end, "most")

function validators.isIn(arg, ctx)
  if type(arg) ~= "table" or rawget(arg, 1) == nil then
    raise("%s: bad option 'validate.isIn' (a list of values expected)", ctx)
  end
  local list, words = {}, {}
  for i = 1, #arg do list[i] = rawget(arg, i); words[i] = describe(list[i]) end
  local text = "must be one of " .. table.concat(words, ", ")
  return function(v)
    for i = 1, #list do if list[i] == v then return nil end end
    return text
  end
end

function validators.is(arg, ctx)
  if type(arg) ~= "string" or not pcall(string.find, "", arg) then
    raise("%s: bad option 'validate.is' (a Lua pattern expected)", ctx)
  end
  return function(v)
    if type(v) ~= "string" or not v:find(arg) then return "does not match the pattern " .. describe(arg) end
  end
end

function validators.isEmail(arg, ctx)
  if type(arg) ~= "boolean" then
    raise("%s: bad option 'validate.isEmail' (boolean expected, got %s)", ctx, type(arg))
  end
  if not arg then return nil end
  return function(v)
    if type(v) ~= "string" or not v:match("^[%w%.%%%+%-_]+@[%w%-]+%.[%w%.%-]*%a$") or v:find("..", 1, true) then
      return "is not an email address"
    end
  end
end

function validators.custom(arg, ctx)
  if type(arg) ~= "function" then
    raise("%s: bad option 'validate.custom' (function expected, got %s)", ctx, type(arg))
  end
  return function(v, inst)
    local ok, msg = arg(v, inst)
    if not ok then return msg ~= nil and tostring(msg) or "is not valid" end
  end
end

-- The checks of one field's validate table, in a fixed order.
local order = { "notEmpty", "len", "min", "max", "isIn", "is", "isEmail", "custom" }

local function field_checks(name, v, mname)
  local ctx = mname .. "." .. name
  if type(v) ~= "table" then raise("%s: bad option 'validate' (table expected, got %s)", ctx, type(v)) end
  for k in next, v do
    if validators[k] == nil then raise("%s: bad option 'validate.%s' (unknown validator)", ctx, tostring(k)) end
  end
  local checks = {}
  for _, k in ipairs(order) do
    local arg = rawget(v, k)
    if arg ~= nil then checks[#checks + 1] = validators[k](arg, ctx) end
  end
  return checks
end

-- A function, or a list of functions, as a list.
local function hook_list(v, ctx, name)
  if type(v) == "function" then return { v } end
  if type(v) == "table" and #v > 0 then
    local list = {}
    for i = 1, #v do
      if type(rawget(v, i)) ~= "function" then
        raise("%s: bad option 'hooks.%s' (element %d is not a function)", ctx, name, i)
      end
      list[i] = rawget(v, i)
    end
    return list
  end
  raise("%s: bad option 'hooks.%s' (function or list of functions expected, got %s)", ctx, name, type(v))
end

local function copy(t)
  local c = {}
  for k, v in next, t do c[k] = v end
  return c
end

-- Take validate and hooks out of a copy of spec.  Returns the copy and the
-- entry (nil when the model declares neither).
local function strip(name, spec)
  local mname = type(name) == "string" and name or "?"
  local s = copy(spec)
  local fields = rawget(spec, "fields")
  local e = { fields = {}, model = {}, hooks = {} }
  local any = false
  if type(fields) == "table" then
    local nf = {}
    local function take(fname, fspec)
      if type(fspec) == "table" and rawget(fspec, "validate") ~= nil then
        local fs = copy(fspec)
        local checks = field_checks(tostring(fname), fs.validate, mname)
        fs.validate = nil
        if #checks > 0 then e.fields[fname] = checks; any = true end
        return fs
      end
      return fspec
    end
    for k, v in next, fields do
      if type(k) == "number" and type(v) == "table" and rawget(v, 1) ~= nil then
        nf[k] = { rawget(v, 1), take(rawget(v, 1), rawget(v, 2)) }
      else
        nf[k] = take(k, v)
      end
    end
    s.fields = nf
  end
  local mv = rawget(spec, "validate")
  if mv ~= nil then
    if type(mv) ~= "table" then
      raise("%s: bad option 'validate' (table of functions expected, got %s)", mname, type(mv))
    end
    local names = {}
    for k, f in next, mv do
      if type(k) ~= "string" or type(f) ~= "function" then
        raise("%s: bad option 'validate' (name = function expected, got %s = %s)", mname, tostring(k), type(f))
      end
      names[#names + 1] = k
    end
    table.sort(names)
    for i, k in ipairs(names) do e.model[i] = { k, mv[k] }; any = true end
    s.validate = nil
  end
  local hv = rawget(spec, "hooks")
  if hv ~= nil then
    if type(hv) ~= "table" then raise("%s: bad option 'hooks' (table expected, got %s)", mname, type(hv)) end
    for k, v in next, hv do
      if not is_hook[k] then raise("%s: bad option 'hooks.%s' (unknown hook)", mname, tostring(k)) end
      e.hooks[k] = hook_list(v, mname, k)
      e.hooked = true
      any = true
    end
    s.hooks = nil
  end
  return s, any and e or nil
end

-- }======

-- {====== Running them

local VALIDATION

-- Run the validators of model entry e on inst: every field in fields (all
-- of them when nil), then the model-level ones.  With values_only, inst is
-- a table of values (Model:update): the field validators alone run, and a
-- custom one gets no instance.  Returns true, or nil, message,
-- junction.VALIDATION, { errors = { name = message } }.
local function validate(e, model, inst, fields, values_only)
  local errors, msgs = {}, {}
  fields = fields or e.order
  for _, f in ipairs(fields) do
    local checks = e.fields[f]
    if checks then
      local v
      if values_only then v = rawget(inst, f) else v = inst[f] end
      if v ~= nil and v ~= junction.null then
        for _, check in ipairs(checks) do
          local msg = check(v, (not values_only) and inst or nil)
          if msg then
            errors[f] = msg
            msgs[#msgs + 1] = model.name .. "." .. f .. ": " .. msg
            break
          end
        end
      end
    end
  end
  for _, mv in ipairs(values_only and {} or e.model) do
    local ok, msg = mv[2](inst)
    if not ok and (ok == false or msg ~= nil) then
      msg = msg ~= nil and tostring(msg) or "is not valid"
      errors[mv[1]] = msg
      msgs[#msgs + 1] = model.name .. "." .. mv[1] .. ": " .. msg
    end
  end
  if #msgs == 0 then return true end
  return nil, table.concat(msgs, "; "), VALIDATION, { errors = errors }
end
M.validate = validate

-- Run the hooks called name; true, or nil, message, code from the first
-- that returns nil, message (a raise goes through).
local function run(e, name, ...)
  local list = e.hooks[name]
  if list then
    for _, h in ipairs(list) do
      local r = { h(...) }
      if r[1] == nil and r[2] ~= nil then return nil, r[2], r[3] or VALIDATION, r[4] end
    end
  end
  return true
end
M.run = run

-- Functions extend(db, name, spec) -> spec, after(model) that other modules
-- (junction.scopes, junction.methods) add: db:define calls each with the
-- spec before taking its own options out, and after with the new model.
M.extenders = {}

local function dbof(e)
  local db = e.db[1]
  if db == nil then error("attempt to use a closed connection", 3) end
  return db
end

-- The C methods, kept before anything replaces them.
local C = {}
M._raw = C   -- lua/junction/wire.lua wraps them for a connection with a transport

-- The wrappers call the C methods in pcall: a misuse the C core raises
-- names the position of the wrapper's caller, as when the C method is
-- called directly (from a Lua frame, and PUC Lua keeps the frame of a
-- wrapper that tail-calls a C function).  An error that already has a
-- position (user code the C core called) goes on unchanged.
local function checked(ok, ...)
  if ok then return ... end
  local err = ...
  if type(err) == "string" and not err:find("^[^:\n]+:%d+: ") then error(err, 3) end
  error(err, 0)
end

local function pass(...) return ... end

-- Save inst (new or not) with validators and hooks.  Without hooks, the
-- validators run and the C save is the whole write; with hooks, all of it
-- runs in one db:transaction.
local function save(e, model, inst)
  -- the core's word, not a note of ours: a create that a transaction
  -- rolled back leaves the instance unsaved again (docs/API.md)
  local isnew = not core._saved(inst)
  local fields
  if not isnew then fields = inst:changed() or {} end
  if not e.hooked then
    local ok, msg, code, details = validate(e, model, inst, fields)
    if not ok then return fail(msg, code, details) end
    ok, msg, code, details = C.save(inst)
    if not ok then return fail(msg, code, details) end
    return inst
  end
  local kind = isnew and "Create" or "Update"
  local ok, msg, code, details = dbof(e):transaction(function()
    local r, m, c, d = run(e, "beforeValidate", inst)
    if r then r, m, c, d = validate(e, model, inst, fields) end
    if r then r, m, c, d = run(e, "afterValidate", inst) end
    if r then r, m, c, d = run(e, "before" .. kind, inst) end
    if r then r, m, c, d = run(e, "beforeSave", inst) end
    if r then r, m, c, d = C.save(inst) end
    if r then r, m, c, d = run(e, "after" .. kind, inst) end
    if r then r, m, c, d = run(e, "afterSave", inst) end
    if not r then return fail(m, c, d) end
    return inst
  end)
  if not ok then return fail(msg, code, details) end
  return inst
end

-- Build an unsaved instance of values, or nil when building raises (a
-- misuse: the caller then lets the C method raise its own error).
local function build(model, values)
  local ok, inst = pcall(C.build, model, values)
  if not ok then return nil end
  return inst
end

-- The instance methods of a model with an entry: the C define copies them
-- into the model's lookup while they stand in the shared method table.
-- They find their model through the instance (an entry must not hold its
-- model: the weak-keyed table would keep it alive on Lua 5.1).
local function set(inst, k, v) inst[k] = v end

local function instance_methods(e)
  local m = {}
  local function mine(self)
    local model = core.modelof(self)
    if model ~= nil and entries[model] == e and not core._destroyed(self) then return model end
  end
  function m.save(self, ...)
    local model = mine(self)
    if not model then return pass(checked(pcall(C.save, self, ...))) end
    return save(e, model, self)
  end
  function m.update(self, values, ...)
    local model = mine(self)
    if not model or type(values) ~= "table" then return pass(checked(pcall(C.update, self, values, ...))) end
    local name = model.name
    for k, v in next, values do   -- as the C update sets them, with its messages
      if type(k) ~= "string" or not e.isfield[k] then
        error(string.format("%s:update: bad field '%s' (no such field in %s)", name,
                            type(k) == "string" and k or type(k), name), 2)
      end
      local ok, err = pcall(set, self, k, v)
      if not ok then error((tostring(err):gsub("^.-" .. name .. ": ", name .. ":update: ", 1)), 2) end
    end
    return save(e, model, self)
  end
  function m.destroy(self, ...)
    if not e.hooked or not mine(self) then return pass(checked(pcall(C.destroy, self, ...))) end
    return dbof(e):transaction(function()
      local r, msg, code, details = run(e, "beforeDestroy", self)
      if r then r, msg, code, details = C.destroy(self) end
      if r then r, msg, code, details = run(e, "afterDestroy", self) end
      if not r then return fail(msg, code, details) end
      return true
    end)
  end
  return m
end

-- inst:validate(): the validators without saving (hooks do not run).
local function validate_method(self)
  local model = core.modelof(self)
  if model == nil then error("validate: bad self (instance expected, got " .. type(self) .. ")", 2) end
  local e = entries[model]
  if e == nil then return true end
  return validate(e, model, self, nil)
end

-- }======

-- {====== Setup

function M.entry(model) return entries[model] end

-- Run fn() (a Model:update or Model:destroy over rows, by the C core) with
-- the model's before<Bulk..> and after<Bulk..> hooks (kind "Update" or
-- "Destroy") around it, in one transaction: before(...) gets the arguments
-- given here, after(n, ...) the number of rows too.  Without such hooks
-- fn() is all.  fn's misuse raises; its failure is returned.
function M.bulk(model, kind, fn, ...)
  local e = entries[model]
  local before, after = "beforeBulk" .. kind, "afterBulk" .. kind
  if e == nil or (e.hooks[before] == nil and e.hooks[after] == nil) then return fn() end
  local args = { n = select("#", ...), ... }
  return dbof(e):transaction(function()
    local r, msg, code, details = run(e, before, unpack(args, 1, args.n))
    if r then r, msg, code, details = fn() end
    local n = r
    if r then r, msg, code, details = run(e, after, n, unpack(args, 1, args.n)) end
    if not r then return fail(msg, code, details) end
    return n
  end)
end

-- Model:update by the C core, no validator and no hook (the deletedAt of
-- soft delete and restore: junction.scopes).
function M.rawUpdate(model, values, opts) return C.modelUpdate(model, values, opts) end

function M.setup(mod, c)
  junction, core = mod, c
  VALIDATION = c.VALIDATION
  local Connection, Model, Instance = c.Connection, c.Model, c.Instance
  C.define = Connection.define
  C.save, C.update, C.destroy = Instance.save, Instance.update, Instance.destroy
  C.build, C.create, C.bulkCreate = Model.build, Model.create, Model.bulkCreate
  C.modelUpdate, C.findOrCreate, C.modelDestroy = Model.update, Model.findOrCreate, Model.destroy

  function Connection.define(self, name, spec, ...)
    if type(spec) ~= "table" or core.type(self) ~= "connection" then
      return pass(checked(pcall(C.define, self, name, spec, ...)))
    end
    local after = {}
    for i, extend in ipairs(M.extenders) do spec, after[i] = extend(self, name, spec) end
    local s, e = strip(name, spec)
    local model
    if e == nil then
      model = checked(pcall(C.define, self, name, s, ...))
    else
      local own = instance_methods(e)
      Instance.save, Instance.update, Instance.destroy = own.save, own.update, own.destroy
      local ok, res = pcall(C.define, self, name, s, ...)
      Instance.save, Instance.update, Instance.destroy = C.save, C.update, C.destroy
      model = checked(ok, res)
      e.db = setmetatable({ self }, { __mode = "v" })
      e.order = model:_info().fields
      e.isfield = {}
      for _, f in ipairs(e.order) do e.isfield[f] = true end
      entries[model] = e
    end
    local hasfield = false
    for _, f in ipairs(model:_info().fields) do if f == "validate" then hasfield = true end end
    if not hasfield then model:_method("validate", validate_method) end
    for _, f in ipairs(after) do f(model) end
    return model
  end

  -- The shared Model methods: a model without an entry goes straight to C.
  function Model.build(self, values, ...)
    return pass(checked(pcall(C.build, self, values, ...)))
  end

  -- Not a vararg function: the C create reads (self, values), create_with
  -- (self, values, opts), and a vararg call costs the copy of its frame.
  -- (C.create is read per call: junction.wire replaces it, wrapped.)
  function Model.create(self, values, opts)
    -- create(values, { include = ... }): nested creation (junction.assoc)
    if opts ~= nil and M.create_with then return M.create_with(self, values, opts) end
    local e = entries[self]
    if e == nil then   -- no hooks, no validators: the C create, its results as they come
      local ok, inst, msg, code, details = pcall(C.create, self, values)
      if not ok then checked(false, inst) end   -- raises at the caller's line (not a tail call)
      if msg == nil then return inst end
      if details == nil then return inst, msg, code end
      return inst, msg, code, details
    end
    local inst = build(self, values)
    if inst == nil then return pass(checked(pcall(C.create, self, values))) end
    return save(e, self, inst)
  end

  function Model.bulkCreate(self, list, ...)
    local e = entries[self]
    if e == nil or type(list) ~= "table" then return pass(checked(pcall(C.bulkCreate, self, list, ...))) end
    -- a row that cannot be built stops the checks: the C bulkCreate raises for it
    local function check()
      for i = 1, #list do
        local inst = build(self, rawget(list, i))
        if inst == nil then return true end
        do
          local ok, msg, code, details = validate(e, self, inst, nil)
          if not ok then
            details.index = i
            return fail(msg .. " (row " .. i .. ")", code, details)
          end
        end
      end
      return true
    end
    if not e.hooked then
      local ok, msg, code, details = check()
      if not ok then return fail(msg, code, details) end
      return pass(checked(pcall(C.bulkCreate, self, list, ...)))
    end
    local rest = { n = select("#", ...), ... }
    return dbof(e):transaction(function()
      local r, msg, code, details = run(e, "beforeBulkCreate", list)
      if r then r, msg, code, details = check() end
      if r then r, msg, code, details = C.bulkCreate(self, list, unpack(rest, 1, rest.n)) end
      local out = r
      if r then r, msg, code, details = run(e, "afterBulkCreate", out) end
      if not r then return fail(msg, code, details) end
      return out
    end)
  end

  -- Model:update(values, opts) reads no instances: beforeBulkUpdate(values,
  -- opts) (it may change the values), the field validators of the values
  -- given, the UPDATE, afterBulkUpdate(n, values, opts); no instance hook.
  function Model.update(self, values, ...)
    local e = entries[self]
    if e == nil or type(values) ~= "table" then return pass(checked(pcall(C.modelUpdate, self, values, ...))) end
    local function check()
      local fields = {}
      for _, f in ipairs(self:_info().fields) do
        if rawget(values, f) ~= nil then fields[#fields + 1] = f end
      end
      return validate(e, self, values, fields, true)
    end
    if not (e.hooks.beforeBulkUpdate or e.hooks.afterBulkUpdate) then
      local ok, msg, code, details = check()
      if not ok then return fail(msg, code, details) end
      return pass(checked(pcall(C.modelUpdate, self, values, ...)))
    end
    local rest = { n = select("#", ...), ... }
    return M.bulk(self, "Update", function()
      local ok, msg, code, details = check()
      if not ok then return fail(msg, code, details) end
      return C.modelUpdate(self, values, unpack(rest, 1, rest.n))
    end, values, rest[1])
  end

  -- Model:destroy(opts): beforeBulkDestroy(opts), the DELETE,
  -- afterBulkDestroy(n, opts) (a paranoid model's soft delete: junction.scopes).
  function Model.destroy(self, ...)
    local e = entries[self]
    if e == nil or not (e.hooks.beforeBulkDestroy or e.hooks.afterBulkDestroy) then
      return pass(checked(pcall(C.modelDestroy, self, ...)))
    end
    local rest = { n = select("#", ...), ... }
    return M.bulk(self, "Destroy", function() return C.modelDestroy(self, unpack(rest, 1, rest.n)) end, rest[1])
  end

  -- findOrCreate creates through Model:create, so validators and hooks run.
  function Model.findOrCreate(self, opts, ...)
    local e = entries[self]
    if e == nil or type(opts) ~= "table" or type(rawget(opts, "where")) ~= "table" then
      return pass(checked(pcall(C.findOrCreate, self, opts, ...)))
    end
    for k in next, opts do
      if k ~= "where" and k ~= "defaults" then return pass(checked(pcall(C.findOrCreate, self, opts, ...))) end
    end
    local where, defaults = rawget(opts, "where"), rawget(opts, "defaults")
    if defaults ~= nil and type(defaults) ~= "table" then
      return pass(checked(pcall(C.findOrCreate, self, opts, ...)))
    end
    local misuse = false
    local r = { dbof(e):transaction(function()
      local ok, found, msg, code, details = pcall(self.findOne, self, { where = where })
      if not ok then misuse = true; return nil end
      if found then return found, false end
      if msg ~= nil then return fail(msg, code, details) end
      local values = defaults and copy(defaults) or {}
      for k, v in next, where do
        if type(k) == "string" and type(v) ~= "table" then values[k] = v end
      end
      local inst = build(self, values)
      if inst == nil then misuse = true; return nil end
      local m2, c2, d2
      inst, m2, c2, d2 = save(e, self, inst)
      if not inst then return fail(m2, c2, d2) end
      return inst, true
    end) }
    if misuse then   -- the C findOrCreate raises the misuse, and writes nothing
      return pass(checked(pcall(C.findOrCreate, self, opts, ...)))
    end
    return unpack(r, 1, 4)
  end
end

-- }======

return M
