-- junction.upsert: Model:upsert and bulkCreate's ignoreDuplicates and
-- updateOnDuplicate, over the C core's one-statement
-- INSERT ... ON CONFLICT (...) DO UPDATE SET f = excluded.f / DO NOTHING
-- (SQL that PostgreSQL takes as SQLite does).
local M = {}

local core, hooks, null   -- set by setup
local B = {}        -- the methods below the ones set here
M._raw = B   -- lua/junction/wire.lua wraps its C methods for a connection with a transport

local function kname(k) return type(k) == "string" and k or type(k) end

-- A misuse the C core raised names the caller's line (junction.scopes).
local checked = require("junction.scopes").checked
local fail = require("junction.result").fail
local raise = require("junction.scopes").raise

-- The conflict target of a row: the fields given (conflictFields), else
-- the primary key when the row gives it, else the first unique field or
-- group (in field order) whose every field the row gives.  nil when none.
local function present(values, f)
  local v = rawget(values, f)
  return v ~= nil and not rawequal(v, null)
end

local function find_target(model, values, given, ctx)
  if given ~= nil then
    if type(given) == "string" then given = { given } end
    if type(given) ~= "table" or rawget(given, 1) == nil then
      raise(ctx .. ": bad option 'conflictFields' (a list of field names expected)")
    end
    local t, known = {}, {}
    for _, f in ipairs(model:_info().fields) do known[f] = true end
    for i = 1, #given do
      t[i] = rawget(given, i)
      if not known[t[i]] then
        raise(ctx .. ": bad option 'conflictFields' (element " .. i .. " is no field of " .. model.name .. ")")
      end
    end
    return t
  end
  local info = model:_info()
  if present(values, info.primaryKey) then return { info.primaryKey } end
  local groups, order, single = {}, {}, {}
  for _, f in ipairs(info.unique) do single[f] = true end
  for i, decl in ipairs(info.declarations) do
    local u = type(decl) == "table" and rawget(decl, "unique")
    if single[info.fields[i]] then
      order[#order + 1] = { info.fields[i] }
    elseif type(u) == "string" then
      if not groups[u] then groups[u] = {}; order[#order + 1] = groups[u] end
      table.insert(groups[u], info.fields[i])
    end
  end
  for _, g in ipairs(order) do
    local all = true
    for _, f in ipairs(g) do if not present(values, f) then all = false end end
    if all then return g end
  end
  return nil
end

-- A field of the target without a value (nil or junction.null) names no
-- row: the INSERT would add one (NULLs never conflict) and the row read back
-- by the target would be none, or another one.  { id = params.id } with no
-- id looks so: a misuse, as an empty where is.
local function target_of(model, values, given, ctx)
  local t = find_target(model, values, given, ctx)
  for _, f in ipairs(t or {}) do
    if not present(values, f) then
      raise(ctx .. ": bad option 'conflictFields' (the values give no value for '" .. tostring(f) ..
            "', so it names no row)")
    end
  end
  return t
end

-- The where that finds the row a target names.
local function target_where(target, values)
  local w = {}
  for _, f in ipairs(target) do w[f] = rawget(values, f) end
  return w
end

-- The names the values give (the fields an INSERT of them writes).
local function given_names(values)
  local t = {}
  for k in next, values do
    if type(k) == "string" then t[#t + 1] = k end
  end
  return t
end

-- Inside a transaction (injournal), the instance read back after an upsert
-- follows a rollback of that transaction as the instances a save, create
-- or update wrote do (docs/API.md "Instances follow the rollback"): the row
-- existed before (the fields of update are changed again) or not (unsaved
-- again).  Whether it existed is read first, only there: outside one, the
-- statement is kept or not and there is nothing to follow.
local function existed_before(self, injournal, where)
  if not injournal then return nil end
  return B.findOne(self, { where = where }) ~= nil
end

local function follow(r, existed, update, values)
  if existed == nil or r == nil then return end
  if existed then core._written(r, true, update or {}) else core._written(r, false, given_names(values)) end
end

-- The validators of a model with any (junction.hooks), on the values of
-- one row: true or the failure.
local function validate(model, values)
  local e = hooks.entry(model)
  if e == nil then return true end
  local ok, inst = pcall(model.build, model, values)
  if not ok then return true end   -- the C core raises the misuse itself
  return hooks.validate(e, model, inst, nil)
end

--- Model:upsert(values, { conflictFields = {...} }): insert the row, or
-- update the row its primary key (or unique fields) name, in one
-- statement; returns the instance as the row now is, or fail.
local function upsert(self, values, opts)
  if core.type(self) ~= "model" then
    raise("Model:upsert: bad self (model expected, got " .. type(self) .. "; call it with ':')")
  end
  local ctx = self.name .. ":upsert"
  if type(values) ~= "table" then
    raise(ctx .. ": bad argument #1 (table of values expected, got " .. type(values) .. ")")
  end
  local given
  if opts ~= nil then
    if type(opts) ~= "table" then raise(ctx .. ": bad options (table expected, got " .. type(opts) .. ")") end
    for k in next, opts do
      if k ~= "conflictFields" then raise(ctx .. ": bad option '" .. kname(k) .. "' (unknown key)") end
    end
    given = rawget(opts, "conflictFields")
  end
  local target = target_of(self, values, given, ctx)
  if target == nil then
    raise(ctx .. ": bad argument #1 (the values give neither the primary key nor every field of a " ..
          "unique constraint; say conflictFields)")
  end
  local info = self:_info()
  local intarget, update = {}, {}
  for _, f in ipairs(target) do intarget[f] = true end
  for _, f in ipairs(info.fields) do
    -- (a primary key given as junction.null is no value to set: the row keeps its key)
    if not intarget[f] and (rawget(values, f) ~= nil or f == info.updatedAt)
        and not (f == info.primaryKey and not present(values, f)) then
      update[#update + 1] = f
    end
  end
  checked(pcall(B.build, self, values))   -- a misuse in values raises here, naming the caller
  local ok, msg, code, details = validate(self, values)
  if not ok then return fail(msg, code, details) end
  local injournal = core._injournal(info.db)
  return info.db:transaction(function()
    local where = target_where(target, values)
    local existed = existed_before(self, injournal, where)
    local n, m2, c2, d2 = checked(pcall(self._upsert, self, values, target, update, "upsert"))
    if n == nil then return fail(m2, c2, d2) end
    local r, m3, c3, d3 = checked(pcall(B.findOne, self, { where = where }))
    follow(r, existed, update, values)
    return r, m3, c3, d3
  end)
end

local bulk_opts = { ignoreDuplicates = true, updateOnDuplicate = true, conflictFields = true }

-- bulkCreate(list, { ignoreDuplicates = true } | { updateOnDuplicate =
-- { fields } }[, conflictFields = {...}]): every row one INSERT ... ON
-- CONFLICT, all in one transaction; returns the instances as the rows now
-- are (for a duplicate ignored, the row that was there).
local function bulk_upsert(self, list, opts)
  local ctx = self.name .. ":bulkCreate"
  local ig, upd, given = rawget(opts, "ignoreDuplicates"), rawget(opts, "updateOnDuplicate"),
                         rawget(opts, "conflictFields")
  if ig ~= nil and type(ig) ~= "boolean" then
    raise(ctx .. ": bad option 'ignoreDuplicates' (boolean expected, got " .. type(ig) .. ")")
  end
  if upd ~= nil and (type(upd) ~= "table" or rawget(upd, 1) == nil) then
    raise(ctx .. ": bad option 'updateOnDuplicate' (a list of field names expected)")
  end
  if ig and upd ~= nil then
    raise(ctx .. ": bad options (ignoreDuplicates and updateOnDuplicate: say one)")
  end
  local update
  if upd ~= nil then
    local known = {}
    for _, f in ipairs(self:_info().fields) do known[f] = true end
    update = {}
    for i = 1, #upd do
      update[i] = rawget(upd, i)
      if not known[update[i]] then
        raise(ctx .. ": bad option 'updateOnDuplicate' (element " .. i .. " is no field of " .. self.name .. ")")
      end
    end
  end
  -- The rows are checked as the beforeBulkCreate hook leaves them (it may
  -- change, add or remove rows): their shape, their values, their targets.
  local function prepare()
    local n = 0
    for k in next, list do
      if type(k) ~= "number" or k < 1 or k ~= math.floor(k) then
        raise(ctx .. ": bad argument #1 (a list expected, but it has the key '" .. tostring(k) .. "')")
      end
      n = n + 1
    end
    if n ~= #list then raise(ctx .. ": bad argument #1 (a list expected, but it has holes)") end
    local targets = {}
    for i = 1, n do
      local row = rawget(list, i)
      if type(row) ~= "table" then
        raise(ctx .. ": bad argument #1 (element " .. i .. " is not a table of values)")
      end
      checked(pcall(B.build, self, row))   -- a misuse in a row raises here, naming the caller
      targets[i] = target_of(self, row, given, ctx)
      if targets[i] == nil then
        raise(ctx .. ": bad argument #1 (row " .. i .. " gives neither the primary key nor every field of " ..
              "a unique constraint; say conflictFields)")
      end
    end
    return n, targets
  end
  local e = hooks.entry(self)
  local n, targets = prepare()   -- (a misuse raises before any statement)
  local injournal = core._injournal(self:_info().db)
  return self:_info().db:transaction(function()
    if e and e.hooked then
      local r, msg, code, details = hooks.run(e, "beforeBulkCreate", list)
      if not r then return fail(msg, code, details) end
      n, targets = prepare()
    end
    for i = 1, n do
      local ok, msg, code, details = validate(self, rawget(list, i))
      if not ok then
        details.index = i
        return fail(msg .. " (row " .. i .. ")", code, details)
      end
    end
    local out = setmetatable({}, debug.getregistry()["junction.List"])
    for i = 1, n do
      local row = rawget(list, i)
      local where = target_where(targets[i], row)
      local existed = existed_before(self, injournal, where)
      local r, msg, code, details = self:_upsert(row, targets[i], update, "bulkCreate")
      if r == nil then return fail(msg, code, details) end
      r, msg, code, details = B.findOne(self, { where = where })
      if r == nil then return fail(msg, code, details) end
      follow(r, existed, update, row)
      out[i] = r
    end
    if e and e.hooked then
      local r, msg, code, details = hooks.run(e, "afterBulkCreate", out)
      if not r then return fail(msg, code, details) end
    end
    return out
  end)
end

function M.setup(c)
  core = c
  null = c.null
  hooks = require "junction.hooks"
  local Model = c.Model
  B.findOne, B.bulkCreate, B.build = Model.findOne, Model.bulkCreate, Model.build
  Model.upsert = upsert
  function Model.bulkCreate(self, list, opts, ...)
    if opts == nil or core.type(self) ~= "model" or type(list) ~= "table" then
      return checked(pcall(B.bulkCreate, self, list, opts, ...))
    end
    if type(opts) ~= "table" then
      raise(self.name .. ":bulkCreate: bad options (table expected, got " .. type(opts) .. ")")
    end
    for k in next, opts do
      if not bulk_opts[k] then
        raise(self.name .. ":bulkCreate: bad option '" .. kname(k) .. "' (unknown key)")
      end
    end
    if not rawget(opts, "ignoreDuplicates") and rawget(opts, "updateOnDuplicate") == nil then
      if rawget(opts, "conflictFields") ~= nil then
        raise(self.name .. ":bulkCreate: bad option 'conflictFields' (with ignoreDuplicates or " ..
              "updateOnDuplicate only)")
      end
      return checked(pcall(B.bulkCreate, self, list))
    end
    return bulk_upsert(self, list, opts)
  end
end

return M
