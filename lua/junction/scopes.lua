-- junction.scopes: scopes (defaultScope, named scopes, Model:scope,
-- Model:unscoped) and soft delete (paranoid = true), in Lua over the C core.
--
-- db:define is C and refuses options it does not know: Connection.define
-- (set up here, over the one of junction.hooks) takes `defaultScope`,
-- `scopes` and `paranoid` out of a copy of the spec, adds the deletedAt
-- field of a paranoid model, calls the define below it, and keeps what it
-- took in a weak-keyed table: model -> entry.
--
-- A model with an entry gets its own findAll, findOne, findByPk, count,
-- update and destroy (the model's own table, consulted before the methods
-- every model shares), which apply its default scope and skip its deleted
-- rows and then call the C methods.  A model without one keeps the C
-- methods: nothing here runs for it.  Model:scope and Model:unscoped give a
-- scoped model: a Lua table that answers the same finds with its scope.
local inflect = require "junction.inflect"
local fail = require("junction.result").fail

local M = {}

local core, junction   -- set by setup
local null

-- A model's entry is kept in its own table (the C core's, in the model's
-- uservalue) under this key, not in a weak-keyed table: an entry holds user
-- functions and tables that may refer to the model, which would keep it
-- alive for ever on Lua 5.1 and LuaJIT (no ephemerons).
local ENTRY = {}
local function entry(m)
  if core.type(m) ~= "model" then return nil end
  local own = m:_own("peek")
  return own and own[ENTRY]
end
local states = setmetatable({}, { __mode = "k" })    -- scoped model -> { model, scope, label }
local paranoid_dbs = setmetatable({}, { __mode = "k" })   -- connection -> true
local db_models = setmetatable({}, { __mode = "k" })  -- connection -> weak list of its models

-- The methods below the ones set here (C, or junction.hooks' Lua).
local B = {}
M._raw = B   -- lua/junction/wire.lua wraps its C methods for a connection with a transport

local scope_keys = { where = true, order = true, limit = true, offset = true, attributes = true,
                     include = true }
-- which keys of a scope each method takes (the others do not apply to it)
local takes = {
  findAll = scope_keys, findOne = scope_keys,
  findByPk = { where = true, attributes = true, include = true },
  count = { where = true, include = true },
  update = { where = true }, destroy = { where = true }, restore = { where = true },
  increment = { where = true }, decrement = { where = true },
  sum = { where = true }, max = { where = true }, min = { where = true }, avg = { where = true },
}

local function copy(t)
  local c = {}
  if t then for k, v in next, t do c[k] = v end end
  return c
end

local function kname(k) return type(k) == "string" and k or type(k) end

-- The position of the first frame that is not junction's own Lua code (nor
-- C): where a method of junction was called.  Found by looking, not by a
-- fixed level: tail calls count differently on Lua 5.1 and the others.
local own_file = { init = true, hooks = true, pages = true, scopes = true, methods = true, upsert = true }
local function caller_position()
  local level = 3
  while true do
    local info = debug.getinfo(level, "Sl")
    if info == nil then return "" end
    local mod = info.source:match("[/\\]junction[/\\]([%w_]+)%.lua$")
    if info.what ~= "C" and (info.currentline or 0) > 0 and not (mod and own_file[mod]) then
      return info.short_src .. ":" .. info.currentline .. ": "
    end
    level = level + 1
  end
end

-- Raise a misuse, naming the caller's line.
local function raise(msg) error(caller_position() .. msg, 0) end
M.raise = raise

-- The results of a pcall of a method: a misuse the C core raised (it has
-- no position) is raised again naming the caller's line, as when the C
-- method is called directly.
local function checked(ok, ...)
  if ok then return ... end
  local err = ...
  if type(err) == "string" and not err:find("^[^:\n]+:%d+: ") then error(caller_position() .. err, 0) end
  error(err, 0)
end
M.checked = checked

-- {====== Declarations

-- A scope table, checked; ctx names it in messages.  Raises (level 0:
-- the message says where).
local function check_scope(t, ctx)
  if type(t) ~= "table" then
    raise(ctx .. " (table expected, got " .. type(t) .. ")")
  end
  for k, v in next, t do
    if not scope_keys[k] then
      raise(ctx .. " (unknown key '" .. kname(k) .. "'; a scope has where, order, limit, offset, " ..
            "attributes, include)")
    end
    if k == "where" and (type(v) ~= "table" or next(v) == nil) then
      raise(ctx .. " (its where is " .. (type(v) == "table" and "empty" or type(v)) ..
            ": a where must have conditions)")
    end
  end
  return copy(t)
end

-- Take defaultScope, scopes and paranoid out of a copy of spec, and add the
-- deletedAt field of a paranoid model.  Returns the copy and the entry
-- (nil when the model declares none of them).
local function strip(name, spec)
  local mname = type(name) == "string" and name or "?"
  local ds, sc, pa = rawget(spec, "defaultScope"), rawget(spec, "scopes"), rawget(spec, "paranoid")
  if ds == nil and sc == nil and pa == nil then return spec, nil end
  local s = copy(spec)
  s.defaultScope, s.scopes, s.paranoid = nil, nil, nil
  local e = { scopes = {} }
  if ds ~= nil then
    e.default = check_scope(ds, "db:define: " .. mname .. ": bad option 'defaultScope'")
  end
  if sc ~= nil then
    if type(sc) ~= "table" then
      raise("db:define: " .. mname .. ": bad option 'scopes' (table of name = scope expected, got " ..
            type(sc) .. ")")
    end
    for k, v in next, sc do
      if type(k) ~= "string" then
        raise("db:define: " .. mname .. ": bad option 'scopes' (names are strings, got " .. type(k) .. ")")
      end
      if type(v) == "function" then
        e.scopes[k] = v
      else
        e.scopes[k] = check_scope(v, "db:define: " .. mname .. ": bad option 'scopes." .. k .. "'")
      end
    end
  end
  if pa ~= nil and type(pa) ~= "boolean" then
    raise("db:define: " .. mname .. ": bad option 'paranoid' (boolean expected, got " .. type(pa) .. ")")
  end
  if pa then
    local field = rawget(spec, "underscored") and "deleted_at" or "deletedAt"
    local fields = rawget(spec, "fields")
    if type(fields) == "table" then
      local nf = copy(fields)
      local decl = { type = junction.types.DATE, allowNull = true }
      if rawget(nf, 1) ~= nil then nf[#nf + 1] = { field, decl }
      elseif rawget(nf, field) == nil then nf[field] = decl
      end
      s.fields = nf
    end
    e.paranoid = field
  end
  return s, e
end

-- }======

-- {====== Applying a scope

local function is_null_where(field) return { [field] = null } end

local function and_where(a, b)
  if a == nil then return b end
  if b == nil then return a end
  return { _and = { a, b } }
end

-- The association of model that an include element names (an alias or a
-- model), or nil.
local function find_assoc(model, name)
  local assocs = model:_info().associations
  if type(name) == "string" then return assocs and assocs[name] end
  if core.type(name) == "model" and assocs then
    local found
    for _, a in next, assocs do
      if a:info().target == name then
        if found then return nil end
        found = a
      end
    end
    return found
  end
end

local rewrite_include

-- {====== Merging includes, as Sequelize does

-- An include option as a list of { key, spec }: key names the association
-- (the association itself when model has it, else what the entry said),
-- spec is a table with `association` set.  What is not an include shape is
-- left for the C core to refuse: the list is then nil.
local function include_list(model, inc)
  if type(inc) ~= "table" or core.type(inc) == "model" then return nil end
  local out = {}
  for k, v in next, inc do
    local spec
    if type(k) == "number" then
      if type(v) == "table" and core.type(v) ~= "model" then spec = copy(v)
      else spec = { association = v } end
    elseif type(k) == "string" then
      if v == true then spec = { association = k }
      elseif type(v) == "table" then spec = copy(v); spec.association = k
      else return nil end
    else
      return nil
    end
    local name = spec.association
    if type(spec.as) == "string" then name = spec.as end   -- as names it (the C core checks both agree)
    if name == nil then return nil end
    out[#out + 1] = { find_assoc(model, name) or name, spec }
  end
  return out
end

local merge_includes

-- Two include specs of one association merged: where ANDed, their own
-- includes merged, the later one's value for the other keys.
local function merge_spec(key, a, b)
  local out = copy(a)
  local target = type(key) ~= "string" and key:info().target or nil
  for k, v in next, b do
    if k == "where" then out.where = and_where(out.where, v)
    elseif k == "include" and out.include ~= nil and target then out.include = merge_includes(target, out.include, v)
    elseif k ~= "association" and k ~= "as" then out[k] = v
    end
  end
  return out
end

-- Sequelize's merge of two include options: one entry per association,
-- the entries that name the same one merged (merge_spec).  Falls back to
-- the later option when either is no include shape.
merge_includes = function(model, a, b)
  local la, lb = include_list(model, a), include_list(model, b)
  if la == nil or lb == nil then return b end
  local out, at = {}, {}
  for i, e in ipairs(la) do out[i] = e[2]; at[e[1]] = i end
  for _, e in ipairs(lb) do
    local i = at[e[1]]
    if i then out[i] = merge_spec(e[1], out[i], e[2])
    else out[#out + 1] = e[2]; at[e[1]] = #out end
  end
  return out
end

-- }======

-- The deletedAt field of the junction model of a belongsToMany (the
-- association's info) when that model is paranoid, else nil.
local function junction_paranoid(info)
  local je = info.kind == "belongsToMany" and entry(info.through)
  return je and je.paranoid or nil
end

-- One include element as a table (association = name, ...), the rows of a
-- paranoid target, and the soft-deleted links of a paranoid junction model,
-- skipped unless it says paranoid = false (the links also with Sequelize's
-- through = { paranoid = false }).
local function rewrite_one(model, name, spec)
  local o = {}
  if type(spec) == "table" then o = copy(spec) end
  if o.association == nil then o.association = name end
  local a = find_assoc(model, o.association)
  if a == nil then return o end
  local info = a:info()
  local target = info.target
  local te = entry(target)
  local para = te and te.paranoid
  local jpara = junction_paranoid(info)
  if o.paranoid ~= nil then
    if not para and not jpara then return o end   -- the C core raises for the unknown key
    if type(o.paranoid) ~= "boolean" then
      raise(model.name .. ": include '" .. tostring(o.association) ..
            "': bad option 'paranoid' (boolean expected, got " .. type(o.paranoid) .. ")")
    end
    if o.paranoid == false then para, jpara = nil, nil end
    o.paranoid = nil
  end
  if jpara and type(o.through) == "table" and rawget(o.through, "paranoid") ~= nil then
    if type(rawget(o.through, "paranoid")) ~= "boolean" then
      raise(model.name .. ": include '" .. tostring(o.association) ..
            "': bad option 'through.paranoid' (boolean expected, got " ..
            type(rawget(o.through, "paranoid")) .. ")")
    end
    local t = copy(o.through)
    if t.paranoid == false then jpara = nil end
    t.paranoid = nil
    o.through = t
  end
  if para then
    if o.where == nil and o.required == nil then o.required = false end
    o.where = and_where(o.where, is_null_where(para))
  end
  if jpara and (o.through == nil or type(o.through) == "table") then
    -- a where on the links: it does not make the include required
    local t = copy(o.through)
    t.where = and_where(t.where, is_null_where(jpara))
    o.through = t
  end
  if o.include ~= nil then o.include = rewrite_include(target, o.include) end
  return o
end

-- An include option with the deleted rows of paranoid targets skipped, at
-- every level.  What is not a table is left for the C core to refuse.
rewrite_include = function(model, inc)
  if type(inc) ~= "table" then return inc end
  local out = {}
  for k, v in next, inc do
    if type(k) == "number" then
      if type(v) == "table" and core.type(v) ~= "model" then
        out[#out + 1] = rewrite_one(model, nil, v)
      else
        out[#out + 1] = rewrite_one(model, v, nil)
      end
    else
      out[#out + 1] = rewrite_one(model, k, v)
    end
  end
  return out
end

-- The options a method of model gives the C core: the scope's keys that
-- the method takes, then opts (its where ANDed, its other keys winning),
-- the paranoid condition, the includes rewritten.  opts that is not a
-- table is returned as it is, for the C core to refuse.
local function apply(model, scope, opts, method, keep_deleted)
  if opts ~= nil and type(opts) ~= "table" then return opts end
  local e = entry(model)
  local para = e and e.paranoid
  if keep_deleted then para = nil end
  local o = {}
  if scope then
    local t = takes[method]
    for k, v in next, scope do if t[k] then o[k] = v end end
  end
  if opts ~= nil then
    for k, v in next, opts do
      if k == "paranoid" and e and e.paranoid then
        if type(v) ~= "boolean" then
          raise(model.name .. ":" .. method .. ": bad option 'paranoid' (boolean expected, got " ..
                type(v) .. ")")
        end
        if v == false then para = nil end
      elseif k == "where" and o.where ~= nil then
        o.where = and_where(o.where, v)
      elseif k == "include" and o.include ~= nil then
        o.include = merge_includes(model, o.include, v)
      else
        o[k] = v
      end
    end
  end
  if para then o.where = and_where(o.where, is_null_where(para)) end
  if o.include ~= nil and next(paranoid_dbs) ~= nil then o.include = rewrite_include(model, o.include) end
  return o
end

local function find_all(model, scope, opts)
  return checked(pcall(B.findAll, model, apply(model, scope, opts, "findAll")))
end

local function find_one(model, scope, opts)
  return checked(pcall(B.findOne, model, apply(model, scope, opts, "findOne")))
end

local function count(model, scope, opts)
  return checked(pcall(B.count, model, apply(model, scope, opts, "count")))
end

local function find_by_pk(model, scope, key, opts)
  local e = entry(model)
  local needs = (e and e.paranoid) or (scope and scope.where)
  if not needs or (type(key) ~= "number" and type(key) ~= "string")
     or (opts ~= nil and type(opts) ~= "table") then
    if scope and (opts == nil or type(opts) == "table") then
      opts = apply(model, scope, opts, "findByPk")
      if next(opts) == nil then opts = nil end
    end
    return checked(pcall(B.findByPk, model, key, opts))
  end
  if opts ~= nil then
    for k in next, opts do
      if k ~= "attributes" and k ~= "include" and k ~= "rejectOnEmpty"
         and not (k == "paranoid" and e and e.paranoid) then
        raise(model.name .. ":findByPk: bad option '" .. kname(k) .. "' (unknown key)")
      end
    end
  end
  local o = apply(model, scope, opts, "findByPk")
  o.where = and_where(o.where, { [model.primaryKey] = key })
  if o.rejectOnEmpty == true then o.rejectOnEmpty = model.name .. ":findByPk: no row found" end
  return checked(pcall(B.findOne, model, o))
end

-- A failure of method `from` told as one of method `to`.
local function renamed(from, to, ok, ...)
  if ok then return ... end
  local err = ...
  if type(err) == "string" then err = err:gsub(":" .. from .. ":", ":" .. to .. ":", 1) end
  return checked(false, err)
end

-- Model:update and Model:destroy take where or all = true: with a scope or
-- a paranoid condition, all = true becomes that where.  Options without
-- either (or with both) go to the C core as they are, which raises.
local function write_opts(model, scope, opts, method, strip_keys, keep_deleted)
  if type(opts) ~= "table" then return opts end
  local o = copy(opts)
  for k in next, strip_keys do o[k] = nil end
  local every = rawget(opts, "all") == true or (method == "destroy" and rawget(opts, "truncate") == true)
  if (rawget(opts, "where") == nil) == (not every) then return o end
  local r = apply(model, scope, o, method, keep_deleted)
  if every and r.where ~= nil then r.all, r.truncate = nil, nil end
  return r
end

local function update(model, scope, values, opts)
  return checked(pcall(B.update, model, values, write_opts(model, scope, opts, "update", {})))
end

-- Model:increment(field, by, opts), Model:increment({ field = by, ... },
-- opts) and decrement: one UPDATE ... SET "f" = "f" + ? over the rows
-- that match (where or all = true, as update).
local function incrementer(method, sign)
  return function(model, scope, field, by, opts)
    local map
    if type(field) == "string" then
      if type(by) == "table" and opts == nil then by, opts = 1, by end
      if by == nil then by = 1 end
      map = { [field] = by }
    elseif type(field) == "table" then
      map, opts = copy(field), by
    else
      raise(model.name .. ":" .. method .. ": bad argument #1 (a field name or a table of field = amount " ..
            "expected, got " .. type(field) .. ")")
    end
    if sign < 0 then
      for k, v in next, map do if type(v) == "number" then map[k] = -v end end
    end
    local o = write_opts(model, scope, opts, method, {})
    return renamed("increment", method, pcall(model._increment, model, map, o))
  end
end
local increment, decrement = incrementer("increment", 1), incrementer("decrement", -1)

-- Model:sum/max/min/avg(field, opts): one aggregate over the rows that
-- match opts.where (and the scope's, without the deleted rows).
local function aggregate(fn)
  return function(model, scope, field, opts)
    local o = apply(model, scope, opts, fn)
    if type(o) == "table" and next(o) == nil then o = nil end
    return checked(pcall(model._aggregate, model, fn, field, o))
  end
end

-- Model:destroy: of a paranoid model, sets deletedAt on the rows not
-- deleted yet (force = true deletes, deleted rows too).
local function destroy(model, scope, opts)
  local e = entry(model)
  local para = e and e.paranoid
  local force = type(opts) == "table" and rawget(opts, "force") or nil
  if force ~= nil then
    if not para then
      raise(model.name .. ":destroy: bad option 'force' (only a paranoid model keeps deleted rows)")
    end
    if type(force) ~= "boolean" then
      raise(model.name .. ":destroy: bad option 'force' (boolean expected, got " .. type(force) .. ")")
    end
  end
  local o = write_opts(model, scope, opts, "destroy", { force = true }, force)
  if not para or force or type(o) ~= "table" then return checked(pcall(B.destroy, model, o)) end
  local w
  if o.where ~= nil and o.all == nil and o.truncate == nil then w = { where = o.where }
  elseif o.where == nil and (o.all == true or o.truncate == true) and o.paranoid == nil then w = { all = true }
  else return checked(pcall(B.destroy, model, o))
  end
  -- the soft delete is the model's bulk destroy: its beforeBulkDestroy and
  -- afterBulkDestroy hooks run around it, no update hook or validator
  local hooks = require "junction.hooks"
  return renamed("update", "destroy", pcall(hooks.bulk, model, "Destroy", function()
    return hooks.rawUpdate(model, { [para] = model:_now() }, w)
  end, opts))
end

-- Model:restore{ where = ... } / { all = true }: the deleted rows that
-- match are not deleted any more.  Returns the number of rows restored.
local function restore(model, scope, opts)
  local e = entry(model)
  local name = model.name .. ":restore"
  if type(opts) ~= "table" then
    raise(name .. ": bad options (table with 'where' or all = true expected, got " .. type(opts) .. ")")
  end
  for k in next, opts do
    if k ~= "where" and k ~= "all" then raise(name .. ": bad option '" .. kname(k) .. "' (unknown key)") end
  end
  local where, all = rawget(opts, "where"), rawget(opts, "all")
  if all ~= nil and type(all) ~= "boolean" then
    raise(name .. ": bad option 'all' (true expected, got " .. type(all) .. ")")
  end
  if where ~= nil and all then raise(name .. ": bad options (both 'where' and every row: say one)") end
  if where == nil and not all then
    raise(name .. ": missing option 'where' (say { all = true } to restore every row)")
  end
  local w = and_where(scope and scope.where, where)
  w = and_where(w, { [e.paranoid] = { ne = null } })
  return renamed("update", "restore",
                 pcall(require("junction.hooks").rawUpdate, model, { [e.paranoid] = null }, { where = w }))
end

-- }======

-- {====== Scoped models

local Scoped = {}

-- Methods of a scoped model (and of a model with an entry): name ->
-- function(model, scope, ...).
local scoped_methods = {
  findAll = find_all, findOne = find_one, count = count, findByPk = find_by_pk,
  update = update, destroy = destroy, increment = increment, decrement = decrement,
  sum = aggregate("sum"), max = aggregate("max"), min = aggregate("min"), avg = aggregate("avg"),
}

-- The scope a list of scope names (and { name, args... } tables) gives,
-- merged in order: where ANDed, the later scope's value for the others.
local function resolve(model, method, ...)
  local e = entry(model)
  local named = e and e.scopes or {}
  local n = select("#", ...)
  local list = {}
  local first = ...
  if type(first) == "string" and type(named[first]) == "function" then
    list[1] = { first, n - 1, select(2, ...) }
  else
    for i = 1, n do
      local v = select(i, ...)
      if type(v) == "string" then
        list[#list + 1] = { v, 0 }
      elseif type(v) == "table" and type(rawget(v, 1)) == "string" then
        local args = { rawget(v, 1), #v - 1 }
        for j = 2, #v do args[j + 1] = rawget(v, j) end
        list[#list + 1] = args
      else
        raise(model.name .. ":" .. method .. ": bad argument #" .. i ..
              " (a scope name or { name, args... } expected, got " .. type(v) .. ")")
      end
    end
  end
  local merged, label = {}, {}
  for i, item in ipairs(list) do
    local name = item[1]
    local s
    if name == "defaultScope" then
      s = e and e.default or {}
    else
      s = named[name]
      if s == nil then
        local have = {}
        for k in next, named do have[#have + 1] = k end
        table.sort(have)
        raise(model.name .. ":" .. method .. ": bad argument #" .. i .. " (no scope '" .. name .. "'" ..
              (#have > 0 and "; scopes: " .. table.concat(have, ", ") or "; the model has no scopes") ..
              ")")
      end
      if type(s) == "function" then
        local unpack = table.unpack or unpack   -- luacheck: ignore 143
        s = check_scope(s(unpack(item, 3, 2 + item[2])),
                        model.name .. ":" .. method .. ": scope '" .. name .. "' returned a bad scope")
      end
    end
    for k, v in next, s do
      if k == "where" then merged.where = and_where(merged.where, v)
      elseif k == "include" and merged.include ~= nil then merged.include = merge_includes(model, merged.include, v)
      else merged[k] = v end
    end
    label[#label + 1] = name
  end
  return merged, table.concat(label, ", ")
end

local function new_scoped(model, scope, label)
  local self = setmetatable({}, Scoped)
  states[self] = { model = model, scope = scope, label = label }
  return self
end

local function state_of(self, method)
  local st = states[self]
  if st == nil then
    raise("Model:" .. method .. ": bad self (scoped model expected, got " .. type(self) .. "; call it with ':')")
  end
  return st
end

local scoped_index = {}
for name, f in next, scoped_methods do
  local function method(self, ...)
    local st = state_of(self, name)
    return f(st.model, st.scope, ...)
  end
  scoped_index[name] = method
end
function scoped_index.restore(self, opts)
  local st = state_of(self, "restore")
  local e = entry(st.model)
  if not (e and e.paranoid) then
    raise(st.model.name .. ":restore: the model is not paranoid (it keeps no deleted rows)")
  end
  return restore(st.model, st.scope, opts)
end
-- The values a where sets: its field = value equalities (and eq), through
-- and/_and lists, into out.  Other conditions set nothing.
local function equalities(model, where, out, depth)
  if type(where) ~= "table" or depth > 32 then return out end
  local fields = model:_info().fields
  local is_field = {}
  for _, f in ipairs(fields) do is_field[f] = true end
  for k, v in next, where do
    if type(k) == "string" and is_field[k] then
      if type(v) ~= "table" and type(v) ~= "function" then out[k] = v
      elseif type(v) == "table" and core.type(v) == nil and rawget(v, "eq") ~= nil and next(v, next(v)) == nil
             and type(rawget(v, "eq")) ~= "table" then
        out[k] = rawget(v, "eq")
      end
    elseif (k == "and" or k == "_and") and type(v) == "table" then
      if #v > 0 then
        for _, w in ipairs(v) do equalities(model, w, out, depth + 1) end
      else
        equalities(model, v, out, depth + 1)
      end
    elseif type(k) == "number" and type(v) == "table" then
      equalities(model, v, out, depth + 1)
    end
  end
  return out
end

-- values with the scope's where equalities set where values give nothing
-- (Sequelize builds a scoped model's instances with them).
local function scoped_values(st, values)
  if type(values) ~= "table" or st.scope == nil or st.scope.where == nil then return values end
  local set = equalities(st.model, st.scope.where, {}, 0)
  if next(set) == nil then return values end
  local v = copy(values)
  for k, x in next, set do
    if rawget(v, k) == nil then v[k] = x end
  end
  return v
end

function scoped_index.create(self, values, ...)
  local st = state_of(self, "create")
  return st.model:create(scoped_values(st, values), ...)
end
function scoped_index.build(self, values, ...)
  local st = state_of(self, "build")
  return st.model:build(scoped_values(st, values), ...)
end
function scoped_index.bulkCreate(self, list, ...)
  local st = state_of(self, "bulkCreate")
  if type(list) == "table" and st.scope and st.scope.where ~= nil then
    local l = {}
    for i, values in ipairs(list) do l[i] = scoped_values(st, values) end
    for k in next, list do
      if l[k] == nil then l[k] = list[k] end   -- what is not a list stays for the core to refuse
    end
    list = l
  end
  return st.model:bulkCreate(list, ...)
end

function scoped_index.scope(self, ...)
  local st = state_of(self, "scope")
  return st.model:scope(...)
end
function scoped_index.unscoped(self)
  local st = state_of(self, "unscoped")
  return st.model:unscoped()
end

Scoped.__index = function(self, k)
  local f = scoped_index[k]
  if f ~= nil then return f end
  local st = states[self]
  local v = st.model[k]
  if type(v) == "function" then
    local model = st.model
    return function(s, ...)
      if s == self then s = model end
      return v(s, ...)
    end
  end
  return v
end
Scoped.__newindex = function(self, k)
  raise(states[self].model.name .. ": cannot set '" .. kname(k) .. "' on a scoped model (set it on the model)")
end
Scoped.__tostring = function(self)
  local st = states[self]
  return "junction.Model " .. st.model.name .. " (scope: " .. (st.label ~= "" and st.label or "none") .. ")"
end

--- Is v a scoped model (from Model:scope or Model:unscoped)?
function M.is_scoped(v) return states[v] ~= nil end

--- The model below a scoped model (or the model itself).
function M.model_of(v)
  local st = states[v]
  if st then return st.model end
  return v
end

-- }======

-- {====== Setup

-- Give model its own finds, counts, update and destroy (camelCase and
-- snake_case), which apply its entry.
local function install(model, e)
  model:_own()[ENTRY] = e
  local own = model:_own()
  for name, f in next, scoped_methods do
    local function method(self, ...)
      local me = entry(self)
      if me == nil then return B[name](self, ...) end
      return f(self, me.default, ...)
    end
    own[name] = method
    own[inflect.snake(name)] = method
  end
  local function find_or_create(self, opts, ...)
    if entry(self) == nil or type(opts) ~= "table" or type(rawget(opts, "where")) ~= "table" then
      return checked(pcall(B.findOrCreate, self, opts, ...))
    end
    local defaults = rawget(opts, "defaults")
    for k in next, opts do
      if k ~= "where" and k ~= "defaults" then return checked(pcall(B.findOrCreate, self, opts, ...)) end
    end
    if defaults ~= nil and type(defaults) ~= "table" then return checked(pcall(B.findOrCreate, self, opts, ...)) end
    local where = rawget(opts, "where")
    local misuse
    local function pack(...) return { n = select("#", ...), ... } end
    local r = pack(self:_info().db:transaction(function()
      local ok, found, msg, code, details = pcall(self.findOne, self, { where = where })
      if not ok then misuse = found; return nil end
      if found then return found, false end
      if msg ~= nil then return fail(msg, code, details) end
      local values = copy(defaults)
      for k, v in next, where do
        if type(k) == "string" and type(v) ~= "table" then values[k] = v end
      end
      local inst, m2, c2, d2 = self:create(values)
      if not inst then return fail(m2, c2, d2) end
      return inst, true
    end))
    if misuse ~= nil then
      -- a misuse in the where (an empty one): said of the method called
      if type(misuse) ~= "string" then error(misuse, 0) end
      raise((misuse:gsub("^[^:\n]+:%d+: ", ""):gsub(":findOne: ", ":findOrCreate: ", 1)))
    end
    return (table.unpack or unpack)(r, 1, r.n)   -- luacheck: ignore 143
  end
  own.findOrCreate, own.find_or_create = find_or_create, find_or_create
  if e.paranoid then
    local function model_restore(self, opts)
      if core.type(self) ~= "model" then
        raise("Model:restore: bad self (model expected, got " .. type(self) .. "; call it with ':')")
      end
      local me = entry(self)
      if me == nil or not me.paranoid then   -- (another model's restore, called by hand)
        raise("Model:restore: bad self (a paranoid model expected, " .. self.name .. " is not)")
      end
      return restore(self, me.default, opts)
    end
    own.restore = model_restore
  end
end

-- Soft delete of one instance: set its deletedAt (the before and after
-- destroy hooks run around it, in one transaction), and read the row back.
local function instance_methods(model, e)
  local field = e.paranoid
  local hooks = require "junction.hooks"
  local prev
  local function soft(self)
    local m = core.modelof(self)
    local pk = m.primaryKey
    local key = self[pk]
    if key == nil then return prev(self) end
    local n, msg, code, details = hooks.rawUpdate(m, { [field] = m:_now() }, { where = { [pk] = key } })
    if n == nil then return fail(msg, code, details) end
    if n == 0 then return nil, m.name .. ":destroy: the row is gone (deleted elsewhere)", 12 end
    local ok
    ok, msg, code, details = self:reload()
    if not ok then return fail(msg, code, details) end
    return true
  end
  local function destroy_method(self, opts)
    local m = core.modelof(self)
    if m == nil or entry(m) == nil or core._destroyed(self) then return checked(pcall(prev, self, opts)) end
    if opts ~= nil then
      if type(opts) ~= "table" then
        raise(m.name .. ":destroy: bad options (table expected, got " .. type(opts) .. ")")
      end
      for k, v in next, opts do
        if k ~= "force" then raise(m.name .. ":destroy: bad option '" .. kname(k) .. "' (unknown key)") end
        if type(v) ~= "boolean" then
          raise(m.name .. ":destroy: bad option 'force' (boolean expected, got " .. type(v) .. ")")
        end
      end
      if rawget(opts, "force") then return checked(pcall(prev, self)) end
    end
    local he = hooks.entry(m)
    if he == nil or not he.hooked then return soft(self) end
    return m:_info().db:transaction(function()
      local r, msg, code, details = hooks.run(he, "beforeDestroy", self)
      if r then r, msg, code, details = soft(self) end
      if r then r, msg, code, details = hooks.run(he, "afterDestroy", self) end
      if not r then return fail(msg, code, details) end
      return true
    end)
  end
  prev = model:_method("destroy", destroy_method, true)
  local has = {}
  for _, f in ipairs(model:_info().fields) do has[f] = true end
  if not has.restore then
    model:_method("restore", function(self)
      local m = core.modelof(self)
      if m == nil or entry(m) == nil then
        raise("restore: bad self (instance expected, got " .. type(self) .. ")")
      end
      if core._destroyed(self) then raise(m.name .. ":restore: instance was destroyed") end
      local pk = m.primaryKey
      local n, msg, code, details = hooks.rawUpdate(m, { [field] = null }, { where = { [pk] = self[pk] } })
      if n == nil then return fail(msg, code, details) end
      if n == 0 then return nil, m.name .. ":restore: the row is gone (deleted elsewhere)", 12 end
      local ok
      ok, msg, code, details = self:reload()
      if not ok then return fail(msg, code, details) end
      return self
    end)
  end
  if not has.isSoftDeleted then
    model:_method("isSoftDeleted", function(self)
      local m = core.modelof(self)
      if m == nil or entry(m) == nil then
        raise("isSoftDeleted: bad self (instance expected, got " .. type(self) .. ")")
      end
      return self[field] ~= nil
    end)
  end
end

-- Every model of a connection that has a paranoid model gets an entry, so
-- that its includes skip the deleted rows of a paranoid target.
local function cover(db)
  local list = db_models[db]
  if list then
    for _, m in pairs(list) do
      if entry(m) == nil then install(m, { scopes = {} }) end
    end
  end
end

function M.setup(mod, c)
  junction, core = mod, c
  null = c.null
  -- the deletedAt field of a paranoid model, else nil (junction.assoc asks
  -- it of a belongsToMany's junction model)
  mod._paranoid = function(m)
    local e = entry(m)
    return e and e.paranoid or nil
  end
  local Model = c.Model
  -- increment, decrement and the aggregates of every model: the model's
  -- own (a scope, soft delete) are set by install
  for _, name in ipairs { "increment", "decrement", "sum", "max", "min", "avg" } do
    local f = scoped_methods[name]
    Model[name] = function(self, ...)
      if core.type(self) ~= "model" then
        raise("Model:" .. name .. ": bad self (model expected, got " .. type(self) .. "; call it with ':')")
      end
      return f(self, nil, ...)
    end
  end
  for name in next, scoped_methods do B[name] = Model[name] end
  B.findOrCreate = Model.findOrCreate
  -- findAndCountAll and paginated (junction.pages) take a scoped model as
  -- their self: its findAll and count apply the scope
  local pages = require "junction.pages"
  pages.accepts = M.is_scoped
  for _, name in ipairs { "findAndCountAll", "paginated", "paginate" } do
    scoped_index[name] = Model[name]
    scoped_index[inflect.snake(name)] = Model[name]
  end
  for name, f in next, scoped_index do scoped_index[inflect.snake(name)] = f end
  -- junction.hooks' db:define calls extend with the spec before it takes
  -- its own options out, and after(model) once the model is defined
  local extenders = require("junction.hooks").extenders
  extenders[#extenders + 1] = function(db, name, spec)
    local s, e = strip(name, spec)
    return s, function(model)
      local list = db_models[db]
      if list == nil then
        list = setmetatable({}, { __mode = "v" })
        db_models[db] = list
      end
      list[#list + 1] = model
      if e then
        install(model, e)
        if e.paranoid then
          instance_methods(model, e)
          if not paranoid_dbs[db] then
            paranoid_dbs[db] = true
            cover(db)
          end
        end
      elseif paranoid_dbs[db] then
        install(model, { scopes = {} })
      end
    end
  end

  -- Model:scope(name, ...) / Model:scope("a", "b", { "c", arg }) and
  -- Model:unscoped(): scoped models.
  function Model.scope(self, ...)
    if core.type(self) ~= "model" then
      raise("Model:scope: bad self (model expected, got " .. type(self) .. "; call it with ':')")
    end
    if select("#", ...) == 0 then
      raise(self.name .. ":scope: bad argument #1 (a scope name expected, got no value)")
    end
    local scope, label = resolve(self, "scope", ...)
    return new_scoped(self, scope, label)
  end

  function Model.unscoped(self)
    if core.type(self) ~= "model" then
      raise("Model:unscoped: bad self (model expected, got " .. type(self) .. "; call it with ':')")
    end
    return new_scoped(self, nil, "")
  end
end

function M.entry(model) return entry(model) end

-- After db:associate: the get and count methods of a belongsToMany whose
-- target is paranoid skip the target's deleted rows (paranoid = false in
-- their options reads them too).
local wrapped = setmetatable({}, { __mode = "k" })   -- model -> { method name -> true }
function M.associated(db)
  if not paranoid_dbs[db] then return end
  for _, model in pairs(db_models[db] or {}) do
    for _, a in pairs(model:_info().associations or {}) do
      local info = a:info()
      local te = entry(info.target)
      local names
      local plural = info.as:sub(1, 1):upper() .. info.as:sub(2)
      if info.kind == "belongsToMany" then names = { "get" .. plural, "count" .. plural }
      elseif info.kind == "hasMany" then names = { "count" .. plural }   -- its get is findAll
      end
      -- (a paranoid junction's get and count read paranoid themselves: it stays in the options)
      local jpara = junction_paranoid(info)
      if names and te and te.paranoid then
        local field = te.paranoid
        local done = wrapped[model] or {}
        wrapped[model] = done
        for _, name in ipairs(names) do
          for _, n in ipairs { name, inflect.snake(name) } do
            if not done[n] then
              done[n] = true
              local prev
              prev = model:_method(n, function(self, opts, ...)
                if opts ~= nil and type(opts) ~= "table" then return checked(pcall(prev, self, opts, ...)) end
                local o, para = copy(opts), true
                if o.paranoid ~= nil then
                  if type(o.paranoid) ~= "boolean" then
                    raise(model.name .. ":" .. n .. ": bad option 'paranoid' (boolean expected, got " ..
                          type(o.paranoid) .. ")")
                  end
                  para = o.paranoid
                  if not jpara then o.paranoid = nil end
                end
                if para then o.where = and_where(o.where, is_null_where(field)) end
                return checked(pcall(prev, self, o, ...))
              end, true)
            end
          end
        end
      end
    end
  end
end

-- }======

return M
