-- junction.assoc: associations declared as data.
--
--   db:associate {
--     Post = { { belongsToMany = "Genre", through = "TagPostGenre", foreignKey = "post_id", as = "Genres" } },
--   }
--
-- Each entry has one kind key (belongsTo, hasOne, hasMany, belongsToMany)
-- naming the target model; builders[kind] resolves the names, keys and
-- defaults (Sequelize's) and records the association in the C core.  The
-- belongsToMany methods are C, and so are hasMany's set/add/remove/has/count
-- and hasOne's set (csrc/jn_hasmany.c) for a target without hooks or
-- validators; the others are here, each one atomic through db:transaction.
local inflect = require "junction.inflect"
local fail = require("junction.result").fail
local isopen = require("junction.core")._isopen
local destroyed = require("junction.core")._destroyed

local M = {}
local junction   -- the module, set by setup

-- option -> the Lua types its value may have
local option_keys = {
  as = { string = true, table = true }, foreignKey = { string = true, table = true },
  otherKey = { string = true, table = true },
  sourceKey = { string = true }, targetKey = { string = true }, through = { string = true, table = true },
  scope = { table = true }, inverse = { string = true, table = true },
  onDelete = { string = true }, onUpdate = { string = true }, hooks = { boolean = true },
  throughAssociations = { table = true }, constraints = { boolean = true }, uniqueKey = { string = true },
  timestamps = { boolean = true },
}
local kinds = { "belongsTo", "hasOne", "hasMany", "belongsToMany" }
local ref_actions = { cascade = true, ["set null"] = true, ["set default"] = true, restrict = true,
                      ["no action"] = true }

local function raise(fmt, ...)
  error("db:associate: " .. string.format(fmt, ...), 0)
end

local function has_field(model, name)
  for _, f in ipairs(model:_info().fields) do
    if f == name then return true end
  end
  return false
end

-- The first candidate that is a field of model (candidates may hold nils).
local function first_field(model, candidates)
  for i = 1, candidates.n or #candidates do
    local name = candidates[i]
    if name and has_field(model, name) then return name end
  end
  return nil
end

-- The key a model is referred to by elsewhere: post_id for a key post_id,
-- user_id (and userId) for a key id.
local function key_candidates(model)
  local pk = model.primaryKey
  local lc = model.name:sub(1, 1):lower() .. model.name:sub(2)
  return { n = 4, pk ~= "id" and pk or nil, inflect.snake(model.name) .. "_" .. pk,
           inflect.snake(model.name) .. "_id", lc .. "Id" }
end

-- singular, plural of the alias (as = string or { singular =, plural = }).
local function alias_names(spec, target, tomany, ctx)
  local as = spec.as
  if type(as) == "table" then
    if type(as.singular) ~= "string" or type(as.plural) ~= "string" then
      raise("%s: bad option 'as' ({ singular = string, plural = string } expected)", ctx)
    end
    return as.singular, as.plural
  elseif type(as) == "string" then
    if tomany then return inflect.singular(as), as end
    return as, inflect.plural(as)
  elseif as == nil then
    return target.name, inflect.plural(target.name)
  end
  raise("%s: bad option 'as' (string or table expected, got %s)", ctx, type(as))
end

-- "groups" -> "Groups": method names are camelCase whatever the alias's case.
local function cap(word)
  return word:sub(1, 1):upper() .. word:sub(2)
end

-- name -> role for a to-many association, camelCase and snake_case.
-- When the alias has one form for both (as = "staff", or { singular = "sheep", plural = "sheep" }),
-- addStaff, removeStaff and hasStaff are the one-instance methods, which take a list too.
local function many_names(singular, plural)
  local names = {}
  local function add(verb, noun, role)
    names[verb .. cap(noun)] = role
    names[verb .. "_" .. inflect.snake(noun)] = role
  end
  add("get", plural, "get"); add("set", plural, "set")
  add("add", plural, "addMany"); add("add", singular, "add")
  add("remove", plural, "removeMany"); add("remove", singular, "remove")
  add("has", plural, "hasMany"); add("has", singular, "has")
  add("count", plural, "count"); add("create", singular, "create")
  return names
end

local function one_names(singular)
  local names = {}
  for _, verb in ipairs { "get", "set", "create" } do
    names[verb .. cap(singular)] = verb
    names[verb .. "_" .. inflect.snake(singular)] = verb
  end
  return names
end

-- {====== Lua-side methods (to-one and hasMany)

-- A raw copy (next, not pairs: the caller's __pairs is not run).
local function copy(t)
  local c = {}
  if t then for k, v in next, t do c[k] = v end end
  return c
end

-- The keys of a list (or one value) of target instances or keys, distinct,
-- read by the C core exactly as the belongsToMany methods read theirs.
-- A misuse raised there points at the caller, level frames up.
local function keys_of(assoc, list, method, single, level)
  local ok, keys = pcall(assoc._keys, assoc, list, single, method)
  if not ok then error(keys, level) end
  return keys
end

-- The through values the targets of x (a list, or one value) bring for
-- their links, as the C methods read them (jn_assoc_pertarget): what a
-- target instance holds under the junction model's name (a table:
-- Sequelize's `genre.TagPostGenre = { ... }`), under what opts.through's
-- function returns for the target.  key -> values, the first element of a
-- key counting; nil when no target brings any.
local function per_target(assoc, jname, x, opts, method, fk, ok)
  local fn = type(opts) == "table" and rawget(opts, "through") or nil
  if type(fn) ~= "function" then fn = nil end
  local elems = type(x) == "table" and x or { x }
  local core = require "junction.core"
  local per
  for i = 1, #elems do
    local e, v = rawget(elems, i), nil
    if core.type(e) == "instance" then
      local slot = e[jname]
      if type(slot) == "table" then v = copy(slot) end
    end
    if fn then
      local r = fn(e)
      if r ~= nil and (type(r) ~= "table" or core.type(r) ~= nil) then
        error(method .. ": bad option 'through' (its function gave " .. type(r) .. " for element " .. i ..
              ": a table of " .. jname .. " values or nil expected)", 3)
      end
      if r ~= nil then
        v = v or {}
        for k, val in next, r do v[k] = val end
      end
    end
    if v then
      for _, f in ipairs { fk, ok } do   -- the two keys are the link's own
        if v[f] ~= nil then
          error(method .. ": bad " .. jname .. " values of element " .. i .. " (no field '" .. f ..
                "' of " .. jname .. " to set)", 3)
        end
      end
      local key = keys_of(assoc, e, method, true, 3)[1]
      per = per or {}
      if per[key] == nil then per[key] = v end
    end
  end
  return per
end

-- "Post:addComments: comment_id 99, 'x' not found", and its details, for
-- the keys of `keys` that `found` (key -> true) lacks: what belongsToMany
-- says when a foreign key fails.
local NOT_FOUND = 787   -- SQLITE_CONSTRAINT_FOREIGNKEY
local function not_found(method, tk, keys, found)
  local missing, shown = {}, {}
  for _, key in ipairs(keys) do
    if not found[key] then
      missing[#missing + 1] = key
      shown[#shown + 1] = type(key) == "string" and ("'" .. key .. "'") or tostring(key)
    end
  end
  return method .. ": " .. tk .. " " .. table.concat(shown, ", ") .. " not found", { missing = missing }
end

-- The keys of `keys` that are rows of target (key -> true).
local function existing(target, tk, keys)
  local found = {}
  local rows = junction._check(target:findAll { where = { [tk] = { ["in"] = keys } }, attributes = { tk } })
  for _, row in ipairs(rows) do found[row[tk]] = true end
  return found
end

-- The one key of a to-one set (no list there: a table is misuse).
local function one_key(assoc, x, method, target)
  if type(x) == "table" then
    error(method .. ": bad argument #1 (" .. target.name .. " instance or key expected, got table)", 3)
  end
  return keys_of(assoc, x, method, true, 4)[1]
end

local function describe(self)
  local model = junction.modelof(self)
  return model and (model.name .. " instance") or type(self)
end

local function check_self(self, source, method, level)
  if junction.modelof(self) ~= source then
    error(method .. ": bad self (" .. source.name .. " instance expected, got " .. describe(self)
          .. "; call it with ':')", level + 1)
  end
  if not isopen(source) then
    error(method .. ": attempt to use a closed connection", level + 1)
  end
end

local function own_key(self, key, source, method)
  check_self(self, source, method, 3)
  if destroyed(self) then error(method .. ": instance was destroyed", 3) end
  local v = self[key]
  if v == nil then error(method .. ": the " .. source.name .. " is not saved yet", 3) end
  return v
end

-- The results of a pcall; a misuse it caught is raised again as method's,
-- at the caller of the public method (level 3 from here), the message of
-- the inner call kept: "Author:createBook: Book:create: bad field 'x' ...".
local function as_method(method, ok, ...)
  if ok then return ... end
  local e = ...
  if type(e) ~= "string" then error(e, 0) end
  error(method .. ": " .. (e:gsub("^[^:]*:%d+: ", "")), 3)
end

-- t with the values of scope (field = value) set on it; t itself.
local function with_scope(t, scope)
  for f, v in next, scope or {} do t[f] = v end
  return t
end

local function check_values(values, method)
  if values ~= nil and type(values) ~= "table" then
    error(method .. ": bad argument #1 (table of values expected, got " .. type(values) .. ")", 3)
  end
end

-- create<Target>(values) for hasOne/hasMany: the target, its key set to ours.
local function create_linked(source, target, sk, fk, singular, scope)
  local method = source.name .. ":create" .. cap(singular)
  return function(self, values)
    local k = own_key(self, sk, source, method)
    check_values(values, method)
    local v = with_scope(copy(values), scope)
    v[fk] = k
    -- A target with hooks is created outside pcall (its hooks may yield,
    -- which PUC Lua 5.1 refuses across pcall) once a build shows that
    -- create will raise no misuse.
    if junction._hooked(target) and pcall(target.build, target, v) then
      local inst, msg, code, details = target:create(v)
      if inst == nil then return fail(msg, code, details) end
      return inst
    end
    local inst, msg, code, details = as_method(method, pcall(target.create, target, v))
    if inst == nil then return fail(msg, code, details) end   -- not a tail call: as_method's
    return inst                                               -- level counts this frame
  end
end

local function has_many_methods(db, assoc, source, target, sk, fk, singular, plural, scope)
  singular, plural = cap(singular), cap(plural)
  local check, null = junction._check, junction.null
  local tk = target.primaryKey
  local fns = {}
  -- the where of the association's rows of k: its key, and its scope's values
  local function mine_of(k, extra)
    local w = with_scope({ [fk] = k }, scope)
    for f, v in next, extra or {} do w[f] = v end
    return w
  end
  local function scoped(self, opts, method)
    if opts ~= nil and type(opts) ~= "table" then
      error(method .. ": bad options (table expected, got " .. type(opts) .. ")", 3)
    end
    local o = copy(opts)
    local mine = mine_of(own_key(self, sk, source, method))
    o.where = o.where and { ["and"] = { mine, o.where } } or mine
    return o
  end
  -- (a misuse the target's find raises names this method, then the find)
  fns.get = function(self, opts)
    local method = source.name .. ":get" .. plural
    local r, msg, code, details = as_method(method, pcall(target.findAll, target, scoped(self, opts, method)))
    if r == nil then return fail(msg, code, details) end   -- not a tail call: as_method's
    return r                                               -- level counts this frame
  end
  fns.count = function(self, opts)
    local method = source.name .. ":count" .. plural
    local o = scoped(self, opts, method)
    local r, msg, code, details = as_method(method, pcall(target.count, target, { where = o.where }))
    if r == nil then return fail(msg, code, details) end
    return r
  end
  local function has(self, keys, method)
    local k = own_key(self, sk, source, method)
    if #keys == 0 then return true end
    local n, msg, code, details = target:count { where = mine_of(k, { [tk] = { ["in"] = keys } }) }
    if n == nil then return fail(msg, code, details) end
    return n == #keys
  end
  -- each public method reads its keys itself, so that a misuse points at its caller
  local function method_of(verb, single, helper)
    local method = source.name .. ":" .. verb .. (single and singular or plural)
    return function(self, x)
      local keys = keys_of(assoc, x, method, single, 3)
      return helper(self, keys, method)
    end
  end
  fns.has = method_of("has", true, has)
  fns.hasMany = method_of("has", false, has)
  -- Link every key in the running transaction; when one is not a row, abort
  -- it with the keys that are not (their details left in out.details).
  local function link(k, keys, method, out)
    if #keys == 0 then return end
    local n, err, code = target:update(with_scope({ [fk] = k }, scope), { where = { [tk] = { ["in"] = keys } } })
    if n == nil and code == NOT_FOUND and check(source:count { where = { [sk] = k } }) == 0 then
      out.details = { gone = true }   -- our own row was deleted meanwhile
      junction.abort(method .. ": the " .. source.name .. " is gone (no row with " .. sk .. " = "
                     .. tostring(k) .. ")", NOT_FOUND)
    end
    check(n, err, code)
    if n ~= #keys then
      local msg, details = not_found(method, tk, keys, existing(target, tk, keys))
      out.details = details
      junction.abort(msg, NOT_FOUND)
    end
  end
  -- db:transaction's nil, message, code, with the details of a missing key.
  local function finish(out, ...)
    local ok, msg, code = ...
    if ok == nil and out.details then return fail(msg, code, out.details) end
    return ...
  end
  local function add(self, keys, method)
    local k = own_key(self, sk, source, method)
    local out = {}
    return finish(out, db:transaction(function() link(k, keys, method, out) end))
  end
  fns.add = method_of("add", true, add)
  fns.addMany = method_of("add", false, add)
  fns.set = function(self, list)
    local method = source.name .. ":set" .. plural
    local keys = keys_of(assoc, list, method, false, 3)
    local k = own_key(self, sk, source, method)
    local out = {}
    return finish(out, db:transaction(function()
      local where = mine_of(k)
      if #keys > 0 then where[tk] = { notIn = keys } end
      check(target:update({ [fk] = null }, { where = where }))
      link(k, keys, method, out)
    end))
  end
  -- one UPDATE, but of many rows: in a transaction, so a failure half-way undoes it
  local function remove(self, keys, method)
    local k = own_key(self, sk, source, method)
    if #keys == 0 then return true end
    return db:transaction(function()
      check(target:update({ [fk] = null }, { where = mine_of(k, { [tk] = { ["in"] = keys } }) }))
    end)
  end
  fns.remove = method_of("remove", true, remove)
  fns.removeMany = method_of("remove", false, remove)
  fns.create = create_linked(source, target, sk, fk, singular, scope)
  return fns
end

local function belongs_to_methods(db, assoc, source, target, fk, tk, singular)
  singular = cap(singular)
  local check = junction._check
  local fns = {}
  fns.get = function(self)
    local v = own_key(self, source.primaryKey, source, source.name .. ":get" .. singular) and self[fk]
    if v == nil then return nil end
    return target:findOne { where = { [tk] = v } }
  end
  fns.set = function(self, x)
    local method = source.name .. ":set" .. singular
    check_self(self, source, method, 2)
    if destroyed(self) then error(method .. ": instance was destroyed", 2) end
    local v = x
    if x ~= nil then v = one_key(assoc, x, method, target) end
    local before = self[fk]
    self[fk] = v
    local ok, msg, code, details = as_method(method, pcall(self.save, self))
    if not ok then
      self[fk] = before   -- the instance keeps what the row holds
      if code == NOT_FOUND and v ~= nil then   -- say which key, as the other kinds do
        msg, details = not_found(method, tk, { v }, {})
      end
      return fail(msg, code, details)
    end
    return true
  end
  fns.create = function(self, values)
    local method = source.name .. ":create" .. singular
    check_self(self, source, method, 2)
    if destroyed(self) then error(method .. ": instance was destroyed", 2) end
    check_values(values, method)
    local t, msg, code, details = as_method(method, pcall(db.transaction, db, function()
      local made = check(target:create(values))
      self[fk] = made[tk]
      check(self:save())
      return made
    end))
    if t == nil then return fail(msg, code, details) end
    return t
  end
  return fns
end

local function has_one_methods(db, assoc, source, target, sk, fk, singular)
  singular = cap(singular)
  local check, null = junction._check, junction.null
  local tk = target.primaryKey
  local fns = {}
  fns.get = function(self)
    return target:findOne { where = { [fk] = own_key(self, sk, source, source.name .. ":get" .. singular) } }
  end
  fns.set = function(self, x)
    local method = source.name .. ":set" .. singular
    local k = own_key(self, sk, source, method)
    local key = x ~= nil and one_key(assoc, x, method, target) or nil
    local details, why
    local ok, msg, code = db:transaction(function()
      local where = { [fk] = k }
      if key ~= nil then where[tk] = { ne = key } end
      check(target:update({ [fk] = null }, { where = where }))
      if key ~= nil then
        local n = check(target:update({ [fk] = k }, { where = { [tk] = key } }))
        if n ~= 1 then
          why, details = not_found(method, tk, { key }, {})
          junction.abort(why, NOT_FOUND)
        end
      end
    end)
    if ok == nil and details then return fail(msg, code, details) end
    return ok, msg, code
  end
  fns.create = create_linked(source, target, sk, fk, singular)
  return fns
end

-- The roles whose method is C (Association:_method): hasMany's reads and
-- writes and hasOne's set, each one call over statements the association
-- keeps.  A target with hooks or validators keeps the Lua methods above,
-- over Model:update, so that hooks.lua's wrappers run for it.
local c_roles = {
  hasMany = { set = "set", add = "add", addMany = "addMany", remove = "remove",
              removeMany = "removeMany", has = "has", hasMany = "hasMany", count = "count" },
  hasOne = { set = "setOne" },
}

local function register(source, names, fns, assoc, kind, target, scope)
  local c = not junction._hooked(target) and not scope and c_roles[kind] or {}
  for name, role in pairs(names) do
    local fn = fns[role]
    if c[role] then fn = assoc:_method(c[role], source.name .. ":" .. name) end
    source:_method(name, fn)
  end
end

-- }======

-- {====== Builders

-- Does some field of model declare that it refers to ref?
local function refers_to(model, ref)
  for _, d in ipairs(model:_info().declarations) do
    if d.ref_model == ref.tableName or d.ref_model == ref.name then return true end
  end
  return false
end

-- Add field name to model, of the type of like.likeKey, referring to it
-- (db:_addField refuses once the model is in use).
local function add_key(db, model, name, like, likeKey, decl, ctx, noref)
  if noref then   -- constraints = false: the key refers to nothing (no foreign key, no cascade)
    decl.onDelete, decl.onUpdate = nil, nil
  else
    decl.references = { model = like.tableName, key = likeKey }
  end
  local ok, e = pcall(db._addField, db, model, name, decl, like, likeKey, "db:associate: " .. ctx)
  if not ok then error((tostring(e):gsub("^[^:]*:%d+: ", "")), 0) end
  for _, d in ipairs(model:_info().declarations) do   -- defaults an association may change
    if d.name == name then d.auto_onDelete, d.auto_onUpdate = true, true end
  end
end

-- junction model defined here -> { [model name] = the key referring to it }
local made_models = setmetatable({}, { __mode = "k" })

-- A junction model found for through: timestamps given on the association
-- are for one junction makes.
local function found_junction(jm, spec, ctx)
  if spec.timestamps ~= nil and not made_models[jm] then
    raise("%s: bad option 'timestamps' (for a junction model made for a table name; %s is declared: give "
          .. "timestamps in its db:define)", ctx, jm.name)
  end
  return jm
end

-- The junction model for through: a model of that name, one on that table,
-- or one defined here (two keys, a composite unique, cascades).
local function junction_model(db, source, target, spec, ctx)
  local through = spec.through
  if type(through) ~= "string" then
    raise("%s: missing option 'through' (the junction model, or its table name)", ctx)
  end
  local jm = db:model(through)
  if jm then return found_junction(jm, spec, ctx) end
  for _, m in pairs(db:_models()) do
    if m.tableName == through then return found_junction(m, spec, ctx) end
  end
  -- the keys the links hold: sourceKey/targetKey when given (the paired belongsToMany's
  -- sourceKey is this one's targetKey), else the primary keys
  local sk = spec.sourceKey or source.primaryKey
  local tk = spec.targetKey or target.primaryKey
  local fk = spec.foreignKey or (sk ~= "id" and sk) or (inflect.snake(source.name) .. "_id")
  local ok = spec.otherKey or (tk ~= "id" and tk) or (inflect.snake(target.name) .. "_id")
  if source == target then ok = spec.otherKey or ("other_" .. fk) end
  if fk == ok and not spec.foreignKey and not spec.otherKey then
    -- two keys of the same name (both primary keys are "name"): user_name, hobby_name
    fk = inflect.snake(source.name) .. "_" .. sk
    ok = inflect.snake(target.name) .. "_" .. tk
  end
  if fk == ok then raise("%s: give foreignKey and otherKey (both would be '%s')", ctx, fk) end
  -- in the source's schema, as Sequelize's junction model takes the source's options
  local defined, made = pcall(db.define, db, through, { tableName = through, underscored = true, fields = {},
                                                        schema = source:_info().schema,
                                                        paranoid = spec.through_paranoid or nil,
                                                        timestamps = spec.timestamps })
  if not defined then   -- a name db:define refuses: say it as this call's misuse
    raise("%s: bad option 'through' ('%s' names no model, and no junction model can be made of it: %s)",
          ctx, through, (tostring(made):gsub("^[^:]*:%d+: ", "")))
  end
  -- the two keys, of the types of the keys they refer to
  local group = spec.uniqueKey or ("unique_" .. through)
  local kf, kn = spec.key_fields or {}, spec.key_null or {}
  for _, k in ipairs { { fk, source, sk, kf.foreignKey, kn.foreignKey },
                       { ok, target, tk, kf.otherKey, kn.otherKey } } do
    add_key(db, made, k[1], k[2], k[3], { allowNull = k[5] == true, unique = group, onDelete = "cascade",
                                          onUpdate = "cascade", field = k[4] }, ctx, spec.constraints == false)
  end
  -- (by model name: a value naming the models would keep them alive where weak keys are not ephemerons)
  made_models[made] = source ~= target and { [source.name] = fk, [target.name] = ok } or {}
  return made, fk, ok   -- its keys: for a model to itself both fields refer to it
end

-- The junction field that references model (by its table or name).
local function referring_field(jm, model, other_than)
  local found
  for _, d in ipairs(jm:_info().declarations) do
    if d.name ~= other_than and (d.ref_model == model.tableName or d.ref_model == model.name) then
      if found then return nil end   -- ambiguous: two fields refer to it
      found = d.name
    end
  end
  return found
end

-- The key of model that the junction field refers to, when it declares one.
local function referenced_key(jm, field, model)
  for _, d in ipairs(jm:_info().declarations) do
    if d.name == field and (d.ref_model == model.tableName or d.ref_model == model.name) then
      return d.ref_key
    end
  end
  return nil
end

-- Association-level onDelete/onUpdate go on the foreign key the association
-- owns (belongsTo: the source's; hasOne/hasMany: the target's; belongsToMany:
-- the junction's column for the source), adding its references when it has
-- none.  Where the field declares an action of its own, they must agree:
-- junction's defaults (the cascades of a junction model it defines) give way.
local function apply_actions(model, fk, refmodel, refkey, spec, ctx)
  if spec.onDelete == nil and spec.onUpdate == nil then return end
  local decl
  for _, d in ipairs(model:_info().declarations) do
    if d.name == fk then decl = d end
  end
  if decl.ref_model == nil then
    decl.ref_model, decl.ref_key = refmodel.tableName, refkey
  elseif decl.ref_model ~= refmodel.tableName and decl.ref_model ~= refmodel.name then
    raise("%s: onDelete/onUpdate: %s.%s references %s, not %s", ctx, model.name, fk, decl.ref_model, refmodel.name)
  end
  for _, key in ipairs { "onDelete", "onUpdate" } do
    local v = spec[key] and spec[key]:lower()
    if v ~= nil then
      if decl[key] ~= nil and decl[key] ~= v and not decl["auto_" .. key] then
        raise("%s: bad option '%s' ('%s', but %s.%s declares %s = '%s')", ctx, key, spec[key], model.name, fk,
              key, decl[key])
      end
      decl[key], decl["auto_" .. key] = v, nil
    end
  end
end

-- {====== Key fields added for you

-- "User", "id" -> "userId"; "Product", "productSecondaryId" -> "productProductSecondaryId";
-- with underscored, "user_id" and "product_product_secondary_id".
local function key_name(model, base, key)
  if model:_info().underscored then return inflect.snake(base) .. "_" .. inflect.snake(key) end
  local s = base:sub(1, 1):lower() .. base:sub(2)
  for part in key:gmatch("[^_]+") do s = s .. cap(part) end
  return s
end

-- The foreign key a belongsTo/hasOne/hasMany entry needs, added to the
-- model that holds it when no field answers (spec.foreignKey when given).
local function to_one_key(db, a)
  local spec, source, target = a.spec, a.source, a.target
  local holder, base, ref, refkey, candidates
  if a.kind == "belongsTo" then
    local singular = alias_names(spec, target, false, a.ctx)
    holder, base, ref, refkey = source, singular, target, spec.targetKey or target.primaryKey
    candidates = { n = 4, refkey ~= "id" and refkey or nil, inflect.snake(singular) .. "_" .. refkey,
                   inflect.snake(singular) .. "_id", singular:sub(1, 1):lower() .. singular:sub(2) .. "Id" }
  else
    holder, base, ref, refkey = target, source.name, source, spec.sourceKey or source.primaryKey
    candidates = key_candidates(source)
  end
  if spec.foreignKey then
    -- a named key that is no field is added, unless a field already refers to
    -- the model: then the name is more likely misspelt (the builder raises)
    if has_field(holder, spec.foreignKey) or refers_to(holder, ref) then return end
  elseif first_field(holder, candidates) then
    return
  end
  local name = spec.foreignKey or key_name(holder, base, refkey)
  if has_field(holder, name) then spec.foreignKey = name; return end
  add_key(db, holder, name, ref, refkey, { onDelete = "set null", onUpdate = "cascade",
                                          field = (spec.key_fields or {}).foreignKey }, a.ctx,
          spec.constraints == false)
  spec.foreignKey = name
end

-- The two keys a belongsToMany through a declared model needs, added to it
-- when it has no field referring to the source (or target) and none is named.
local function through_keys(db, a)
  local spec, source, target = a.spec, a.source, a.target
  if type(spec.through) ~= "string" then return end
  local jm = db:model(spec.through)
  if not jm then
    for _, m in pairs(db:_models()) do
      if m.tableName == spec.through then jm = m end
    end
  end
  if not jm then return end   -- made by the builder, with its keys
  local sk = spec.sourceKey or source.primaryKey
  local tk = spec.targetKey or target.primaryKey
  local function refers(model) return refers_to(jm, model) end
  local fk = spec.foreignKey or referring_field(jm, source)
  local ok = spec.otherKey or referring_field(jm, target, fk)
  -- a key neither named nor found is added only when no field refers to its model
  -- (two fields referring to it: the builder asks which one)
  local add_fk = not refers(source) and not (fk and has_field(jm, fk))
  local add_ok = not refers(target) and not (ok and has_field(jm, ok))
  local kn = spec.key_null or {}
  for which, added in pairs { foreignKey = add_fk, otherKey = add_ok } do
    if kn[which] and not added then
      raise("%s: bad option '%s.allowNull' (the key is declared on %s: say allowNull in its declaration)", a.ctx,
            which, jm.name)
    end
  end
  if not add_fk and not add_ok then return end
  local singular = alias_names(spec, target, true, a.ctx)
  fk = fk or key_name(jm, source.name, sk)
  ok = ok or key_name(jm, source == target and singular or target.name, tk)
  if fk == ok then raise("%s: give foreignKey and otherKey (both would be '%s')", a.ctx, fk) end
  local group = add_fk and add_ok and (spec.uniqueKey or ("unique_" .. jm.tableName)) or nil
  local kf = spec.key_fields or {}
  local function decl(field, null)
    return { allowNull = null == true, unique = group, onDelete = "cascade", onUpdate = "cascade", field = field }
  end
  local noref = spec.constraints == false
  if add_fk then add_key(db, jm, fk, source, sk, decl(kf.foreignKey, kn.foreignKey), a.ctx, noref) end
  if add_ok then add_key(db, jm, ok, target, tk, decl(kf.otherKey, kn.otherKey), a.ctx, noref) end
  spec.foreignKey, spec.otherKey = fk, ok
end

-- Sequelize's foreignKey = { name = "userId", field = "user_id" } (and otherKey):
-- the attribute's name stays in spec, the column of a key junction adds goes
-- to spec.key_fields.
local function key_objects(spec, ctx)
  for _, which in ipairs { "foreignKey", "otherKey" } do
    local v = spec[which]
    if type(v) == "table" then
      for k, x in next, v do
        if k ~= "name" and k ~= "field" and k ~= "allowNull" then
          raise("%s: bad option '%s.%s' (a key is { name = ..., field = ..., allowNull = ... })", ctx, which,
                tostring(k))
        end
        if k == "allowNull" and type(x) ~= "boolean" then
          raise("%s: bad option '%s.%s' (boolean expected, got %s)", ctx, which, k, type(x))
        elseif k ~= "allowNull" and type(x) ~= "string" then
          raise("%s: bad option '%s.%s' (string expected, got %s)", ctx, which, k, type(x))
        end
      end
      if v.allowNull ~= nil and spec.belongsToMany == nil then
        raise("%s: bad option '%s.allowNull' (for belongsToMany: a key it adds to the junction model)", ctx, which)
      end
      if v.allowNull then   -- the key junction adds may be NULL (Sequelize's nullable FKs)
        spec.key_null = spec.key_null or {}
        spec.key_null[which] = true
      end
      spec[which] = v.name
      spec.key_fields = spec.key_fields or {}
      spec.key_fields[which] = v.field
    end
  end
end

-- A key named with a field (spec.key_fields[which]) must be on that column,
-- a declared key included: holder's attribute name.
local function check_key_field(spec, which, holder, name, ctx)
  local field = spec.key_fields and spec.key_fields[which]
  if field == nil then return end
  local col = holder:_info().columns[name]
  if col ~= field then
    raise("%s: bad option '%s' (field '%s', but %s.%s is on the column '%s')", ctx, which, field, holder.name,
          tostring(name), tostring(col))
  end
end

local add_keys = {
  belongsTo = to_one_key, hasOne = to_one_key, hasMany = to_one_key, belongsToMany = through_keys,
}

-- }======

-- A copy of an association's scope: field = value pairs of fields of model
-- (Sequelize's scope as a where of equalities, which also gives the values
-- that writes set).
local function check_scope(model, scope, what, ctx)
  local out = {}
  for f, v in next, scope do
    if type(f) ~= "string" or not has_field(model, f) then
      raise("%s: bad option '%s' (%s is no field of %s)", ctx, what, tostring(f), model.name)
    end
    local t = type(v)
    if t ~= "string" and t ~= "number" and t ~= "boolean" then
      raise("%s: bad option '%s' (%s = %s: a scope gives values, field = string, number or boolean)", ctx, what,
            f, t)
    end
    out[f] = v
  end
  if next(out) == nil then raise("%s: bad option '%s' (empty: leave it out for every row)", ctx, what) end
  return out
end

local builders = {}

function builders.belongsTo(db, source, target, spec, ctx)
  local singular = alias_names(spec, target, false, ctx)
  local tk = spec.targetKey or target.primaryKey
  local fk = spec.foreignKey or first_field(source, { n = 4,
    tk ~= "id" and tk or nil, inflect.snake(singular) .. "_" .. tk, inflect.snake(singular) .. "_id",
    singular:sub(1, 1):lower() .. singular:sub(2) .. "Id" })
  if not fk then
    raise("%s: no foreignKey given, and %s has no field like '%s_id'", ctx, source.name, inflect.snake(singular))
  end
  check_key_field(spec, "foreignKey", source, fk, ctx)
  apply_actions(source, fk, target, tk, spec, ctx)
  local assoc = db:_associate(source, "belongsTo", target, { as = singular, foreignKey = fk, targetKey = tk })
  register(source, one_names(singular), belongs_to_methods(db, assoc, source, target, fk, tk, singular), assoc,
           "belongsTo", target)
  return assoc
end

local function has_builder(kind)
  return function(db, source, target, spec, ctx)
    local tomany = kind == "hasMany"
    local singular, plural = alias_names(spec, target, tomany, ctx)
    local sk = spec.sourceKey or source.primaryKey
    local fk = spec.foreignKey or first_field(target, key_candidates(source))
    if not fk then
      raise("%s: no foreignKey given, and %s has no field referring to %s", ctx, target.name, source.name)
    end
    local scope = spec.scope and check_scope(target, spec.scope, "scope", ctx)
    if scope and not tomany then raise("%s: bad option 'scope' (for hasMany and belongsToMany)", ctx) end
    check_key_field(spec, "foreignKey", target, fk, ctx)
    apply_actions(target, fk, source, sk, spec, ctx)
    local assoc = db:_associate(source, kind, target,
                                { as = tomany and plural or singular, foreignKey = fk, sourceKey = sk })
    if tomany then
      register(source, many_names(singular, plural),
               has_many_methods(db, assoc, source, target, sk, fk, singular, plural, scope), assoc, kind, target,
               scope)
    else
      register(source, one_names(singular), has_one_methods(db, assoc, source, target, sk, fk, singular),
               assoc, kind, target)
    end
    return assoc
  end
end
builders.hasOne = has_builder("hasOne")
builders.hasMany = has_builder("hasMany")

-- The methods of a belongsToMany with a scope (on the target), a through
-- scope (on the junction rows), or a junction model that is paranoid or has
-- validators or hooks: reads are the C methods (old) with the scopes, and
-- the paranoid junction's condition, added to where and through.where;
-- writes are Lua over the junction model, each in one transaction, so that a
-- link of another scope in the same junction table is never read, kept or
-- deleted as this one's, the junction model's validators and hooks run
-- (bulkCreate for new links, update for through values, destroy for
-- removals: the calls Sequelize makes on its through model), and the links
-- of a paranoid junction are soft-deleted and restored rather than deleted
-- and inserted again.
local function scoped_btm_methods(db, assoc, source, target, jm, keys, old, singular, plural)
  local fk, ok, sk, tk, scope, tscope = keys.fk, keys.ok, keys.sk, keys.tk, keys.scope, keys.tscope
  local para = keys.para   -- the paranoid junction's deletedAt field, or nil
  local check, null = junction._check, junction.null
  local fns = {}
  local function both(a, b)
    if a and b then return { ["and"] = { a, b } } end
    return a or b
  end
  -- paranoid = false, or Sequelize's through = { paranoid = false }: the
  -- soft-deleted links are read too.  Both are taken out of o.
  local function keeps_deleted(o, method, level)
    local all = false
    if o.paranoid ~= nil then
      if type(o.paranoid) ~= "boolean" then
        error(method .. ": bad option 'paranoid' (boolean expected, got " .. type(o.paranoid) .. ")", level + 1)
      end
      all = o.paranoid == false
      o.paranoid = nil
    end
    if type(o.through) == "table" and rawget(o.through, "paranoid") ~= nil then
      local t = copy(o.through)
      if type(t.paranoid) ~= "boolean" then
        error(method .. ": bad option 'through.paranoid' (boolean expected, got " .. type(t.paranoid) .. ")",
              level + 1)
      end
      all = all or t.paranoid == false
      t.paranoid = nil
      o.through = t
    end
    return all
  end
  local function opts_of(opts, method, level)
    if opts ~= nil and type(opts) ~= "table" then
      error(method .. ": bad options (table expected, got " .. type(opts) .. ")", level + 1)
    end
    local o = copy(opts)
    local tw = tscope and copy(tscope)
    if para and not keeps_deleted(o, method, level + 1) then tw = both(tw, { [para] = null }) end
    o.where = both(scope and copy(scope), o.where)
    if tw then
      local t = copy(o.through)
      t.where = both(tw, t.where)
      o.through = t
    end
    return o
  end
  fns.get = function(self, opts)
    return old.get(self, opts_of(opts, source.name .. ":get" .. cap(plural), 2))
  end
  fns.count = function(self, opts)
    return old.count(self, opts_of(opts, source.name .. ":count" .. cap(plural), 2))
  end
  local function method_of(verb, single, helper)
    local method = source.name .. ":" .. verb .. cap(single and singular or plural)
    return function(self, x, opts)
      local ks = keys_of(assoc, x, method, single, 3)
      return helper(self, ks, method, opts, x)
    end
  end
  local function has(self, ks, method, opts)
    own_key(self, sk, source, method)
    if opts ~= nil and type(opts) ~= "table" then
      error(method .. ": bad options (table expected, got " .. type(opts) .. ")", 3)
    end
    if #ks == 0 then return true end
    local o = copy(opts)
    o.where = both({ [tk] = { ["in"] = ks } }, o.where)
    local n, msg, code = old.count(self, opts_of(o, method, 2))
    if n == nil then return nil, msg, code end
    return n == #ks
  end
  fns.has, fns.hasMany = method_of("has", true, has), method_of("has", false, has)
  -- On PostgreSQL, lock the source row k for the running transaction first,
  -- as the C methods do: two callers writing the same row's links then run
  -- one after the other (each reading what the other committed), where under
  -- READ COMMITTED they would both insert a link (a unique violation) or
  -- leave a mix of two setX lists.  SQLite's writers are one at a time already.
  local lock_sql
  local function lock(k)
    if db:engine() ~= "postgres" then return end
    if lock_sql == nil then
      local info = source:_info()
      local function quote(name) return '"' .. name:gsub('"', '""') .. '"' end
      lock_sql = "SELECT 1 FROM " .. info.qtable .. " WHERE " .. quote(info.columns[sk] or sk) ..
                 " = ? FOR NO KEY UPDATE"
    end
    check(db:query(lock_sql, k))
  end
  -- the links of k to ks (of this scope), made where missing, in the running transaction
  local function link(k, ks, method, opts, out, per)
    if #ks == 0 then return end
    if opts ~= nil and type(opts) ~= "table" then
      error(method .. ": bad options (table expected, got " .. type(opts) .. ")", 0)
    end
    local values = opts and opts.through
    if type(values) == "function" then values = nil end
    -- a key's values: opts.through's, under what its target brought (per)
    local function values_of(key)
      local v = per and per[key]
      if v == nil then return values end
      local c = copy(values)
      for f, val in next, v do c[f] = val end
      return c
    end
    local found = existing(target, tk, ks)
    for _, key in ipairs(ks) do
      if not found[key] then
        local msg, details = not_found(method, tk, ks, found)
        out.details = details
        junction.abort(msg, NOT_FOUND)
      end
    end
    -- the links there are (of a paranoid junction, the soft-deleted ones too)
    local have, dead, seen = {}, {}, {}
    local q = { where = with_scope({ [fk] = k, [ok] = { ["in"] = ks } }, tscope), attributes = { ok, para } }
    if para then q.paranoid = false end
    for _, row in ipairs(check(jm:findAll(q))) do
      seen[row[ok]] = true
      if para and row[para] ~= nil then dead[#dead + 1] = row[ok] else have[row[ok]] = true end
    end
    -- the new links in one bulkCreate: the junction model's validators run
    -- on each row, its beforeBulkCreate and afterBulkCreate hooks around them
    local rows = {}
    for _, key in ipairs(ks) do
      if not seen[key] then
        local v = with_scope(copy(values_of(key)), tscope)
        v[fk], v[ok] = k, key
        rows[#rows + 1] = v
      end
    end
    if #rows > 0 then check(jm:bulkCreate(rows)) end
    -- a soft-deleted link is restored, with the through values given
    local function restore(which, v)
      v = copy(v)
      v[para] = null
      check(jm:update(v, { where = with_scope({ [fk] = k, [ok] = { ["in"] = which } }, tscope), paranoid = false }))
    end
    local function rewrite(which, v)
      if v == nil or next(v) == nil then return end
      check(jm:update(copy(v), { where = with_scope({ [fk] = k, [ok] = { ["in"] = which } }, tscope) }))
    end
    local kept = {}
    for _, key in ipairs(ks) do if have[key] then kept[#kept + 1] = key end end
    if per == nil then   -- one statement for all of them
      if #dead > 0 then restore(dead, values) end
      if #kept > 0 then rewrite(kept, values) end
    else                 -- a statement per link: each its own values
      for _, key in ipairs(dead) do restore({ key }, values_of(key)) end
      for _, key in ipairs(kept) do rewrite({ key }, values_of(key)) end
    end
  end
  local function finish(out, ...)
    local r, msg, code = ...
    if r == nil and out.details then return nil, msg, code, out.details end
    return ...
  end
  local function add(self, ks, method, opts, x)
    local k = own_key(self, sk, source, method)
    local per = per_target(assoc, jm.name, x, opts, method, fk, ok)
    local out = {}
    return finish(out, db:transaction(function()
      lock(k)
      link(k, ks, method, opts, out, per)
    end))
  end
  fns.add, fns.addMany = method_of("add", true, add), method_of("add", false, add)
  local function remove(self, ks, method)
    local k = own_key(self, sk, source, method)
    if #ks == 0 then return true end
    return db:transaction(function()
      lock(k)
      check(jm:destroy { where = with_scope({ [fk] = k, [ok] = { ["in"] = ks } }, tscope) })
    end)
  end
  fns.remove, fns.removeMany = method_of("remove", true, remove), method_of("remove", false, remove)
  fns.set = function(self, list, opts)
    local method = source.name .. ":set" .. cap(plural)
    local ks = keys_of(assoc, list, method, false, 3)
    local k = own_key(self, sk, source, method)
    local per = per_target(assoc, jm.name, list, opts, method, fk, ok)
    local out = {}
    return finish(out, db:transaction(function()
      lock(k)
      -- the links of this scope to targets of the scope that the list leaves out
      local keep, gone = {}, {}
      for _, key in ipairs(ks) do keep[key] = true end
      for _, t in ipairs(check(old.get(self, opts_of({ attributes = { tk } }, method, 1)))) do
        if not keep[t[tk]] then gone[#gone + 1] = t[tk] end
      end
      if #gone > 0 then
        check(jm:destroy { where = with_scope({ [fk] = k, [ok] = { ["in"] = gone } }, tscope) })
      end
      link(k, ks, method, opts, out, per)
    end))
  end
  fns.create = function(self, values, opts)
    local method = source.name .. ":create" .. cap(singular)
    local k = own_key(self, sk, source, method)
    check_values(values, method)
    local out = {}
    return finish(out, db:transaction(function()
      lock(k)
      local made = check(target:create(with_scope(copy(values), scope)))
      link(k, { made[tk] }, method, opts, out, per_target(assoc, jm.name, made, opts, method, fk, ok))
      return made
    end))
  end
  return fns
end

local function btm_builder(db, source, target, spec, ctx)
  if source == target and spec.as == nil then
    -- getPersons would not say which way the link goes (children or parents?)
    raise("%s: missing option 'as' (a belongsToMany of a model to itself needs a name, e.g. as = \"Friends\")", ctx)
  end
  local singular, plural = alias_names(spec, target, true, ctx)
  local jm, made_fk, made_ok = junction_model(db, source, target, spec, ctx)
  local mk = made_models[jm] or {}   -- (the keys of one made with constraints = false refer to nothing)
  local fk = spec.foreignKey or made_fk or referring_field(jm, source) or mk[source.name]
  local ok = spec.otherKey or made_ok or referring_field(jm, target, fk) or mk[target.name]
  if not fk then raise("%s: give foreignKey (no single field of %s refers to %s)", ctx, jm.name, source.name) end
  if not ok then raise("%s: give otherKey (no single field of %s refers to %s)", ctx, jm.name, target.name) end
  check_key_field(spec, "foreignKey", jm, fk, ctx)
  check_key_field(spec, "otherKey", jm, ok, ctx)
  -- sourceKey/targetKey not given: the keys the junction's fields reference (a junction field
  -- place_code referencing Place.place_code links by place_code, not by Place's primary key)
  local sk = spec.sourceKey or referenced_key(jm, fk, source)
  local tk = spec.targetKey or referenced_key(jm, ok, target)
  apply_actions(jm, fk, source, sk or source.primaryKey, spec, ctx)
  local names = many_names(singular, plural)
  -- A target with validators or hooks is created through its Model:create,
  -- then linked by the C add method, in one transaction.
  local creates = {}
  if junction._hooked(target) then
    for name, role in pairs(names) do
      if role == "create" then creates[#creates + 1] = name; names[name] = nil end
    end
  end
  local scope = spec.scope and check_scope(target, spec.scope, "scope", ctx)
  local tscope = spec.through_scope and check_scope(jm, spec.through_scope, "through.scope", ctx)
  local para = junction._paranoid(jm)
  if spec.through_paranoid ~= nil and spec.through_paranoid ~= (para ~= nil) then
    raise("%s: bad option 'through.paranoid' (%s, but %s is %sparanoid: say paranoid in its db:define)", ctx,
          tostring(spec.through_paranoid), jm.name, para and "" or "not ")
  end
  local assoc = db:_associate(source, "belongsToMany", target, {
    as = plural, foreignKey = fk, otherKey = ok, through = jm,
    sourceKey = sk, targetKey = tk,
    names = names,
  })
  if scope or tscope or para or junction._hooked(jm) then
    -- every method becomes the scoped one; the C reads stay below it, under the scopes
    local info = assoc:info()
    local old = {}
    local keys = { fk = info.foreignKey, ok = info.otherKey, sk = info.sourceKey, tk = info.targetKey,
                   scope = scope, tscope = tscope, para = para }
    local fns = scoped_btm_methods(db, assoc, source, target, jm, keys, old, singular, plural)
    for name, role in pairs(names) do
      local was = source:_method(name, fns[role], true)
      if role == "get" or role == "count" then old[role] = was end
    end
    for _, name in ipairs(creates) do source:_method(name, fns.create) end
    return assoc
  end
  if #creates > 0 then
    local add = "add" .. cap(singular)
    local function create(self, values, opts)
      local method = source.name .. ":create" .. cap(singular)
      if destroyed(self) then error(method .. ": instance was destroyed", 2) end
      if type(values) ~= "table" then
        error(method .. ": bad argument #1 (table of values expected, got " .. type(values) .. ")", 2)
      end
      if opts ~= nil and type(opts) ~= "table" then
        error(method .. ": bad options (table expected, got " .. type(opts) .. ")", 2)
      end
      return db:transaction(function()
        local inst, msg, code, details = target:create(values)
        if not inst then return fail(msg, code, details) end
        local linked, lmsg, lcode, ldetails = self[add](self, inst, opts)
        if not linked then return fail(lmsg, lcode, ldetails) end
        return inst
      end)
    end
    for _, name in ipairs(creates) do source:_method(name, create) end
  end
  return assoc
end

-- }======

-- values with only the fields of the list fields (createX's and Model:create's
-- `fields` option, Sequelize's: the other values are not written), plus the
-- keys of keep (aliases a nested create reads).  A misuse raises at level.
local function only_fields(model, values, fields, method, level, keep)
  if type(fields) ~= "table" then
    error(method .. ": bad option 'fields' (a list of field names expected, got " .. type(fields) .. ")", level + 1)
  end
  local want, out = {}, {}
  for i, f in ipairs(fields) do
    if type(f) ~= "string" or not has_field(model, f) then
      error(method .. ": bad option 'fields' (" .. tostring(f) .. " at " .. i .. " is no field of " .. model.name
            .. ")", level + 1)
    end
    want[f] = true
  end
  if next(fields, #fields > 0 and #fields or nil) ~= nil then
    error(method .. ": bad option 'fields' (a list expected)", level + 1)
  end
  for k, v in next, values do
    if want[k] or (keep and keep[k] ~= nil) then out[k] = v end
  end
  return out
end

function builders.belongsToMany(db, source, target, spec, ctx)
  local assoc = btm_builder(db, source, target, spec, ctx)
  local info = assoc:info()
  -- uniqueKey: the name of the composite unique of the two keys, on keys the user declared too
  if spec.uniqueKey then
    for _, d in ipairs(info.through:_info().declarations) do
      if d.name == info.foreignKey or d.name == info.otherKey then
        if d.unique ~= nil and d.unique ~= true and d.unique ~= spec.uniqueKey
           and d.unique ~= "unique_" .. info.through.tableName then
          raise("%s: bad option 'uniqueKey' ('%s', but %s.%s declares unique = '%s')", ctx, spec.uniqueKey,
                info.through.name, d.name, tostring(d.unique))
        end
        d.unique = spec.uniqueKey
      end
    end
  end
  -- createX(values, { fields = { ... } }): only those fields of values are written
  for name, role in pairs(many_names(alias_names(spec, target, true, ctx))) do
    if role == "create" then
      local method = source.name .. ":" .. name
      local inner
      local function create(self, values, opts)
        if type(opts) == "table" and rawget(opts, "fields") ~= nil then
          check_values(values, method)
          local o = copy(opts)
          values = only_fields(target, values or {}, o.fields, method, 2)
          o.fields = nil
          return inner(self, values, next(o) ~= nil and o or nil)
        end
        return inner(self, values, opts)
      end
      inner = source:_method(name, create, true)
    end
  end
  return assoc
end

-- {====== The junction model's own associations, made for you

-- Sequelize 7 makes, for each belongsToMany, the junction model's belongsTo
-- its source and target and the source's hasMany and hasOne the junction
-- model, so that the link rows are read like any other association.  They
-- are made here, after every association a db:associate call declares, each
-- only where its name and method names are free and no association the user
-- declared already joins the same two models by the same key: the ones you
-- declare win.
local made_here = setmetatable({}, { __mode = "k" })   -- association -> its method names: made here
local through_names = setmetatable({}, { __mode = "k" })   -- belongsToMany -> the names of its four

-- The association of model named alias, if it joins model to target by fk.
local function joins(model, alias, target, fk)
  local a = model:_info().associations[alias]
  if not a then return false end
  local info = a:info()
  return info.target == target and info.foreignKey == fk
end

-- Is there on model an association to target by foreign key fk that
-- stands for this one: one the user declared (any kind), or a made one of kind?
local function covered(model, target, fk, kind)
  for _, a in next, model:_info().associations do
    local info = a:info()
    if info.kind ~= "belongsToMany" and info.target == target and info.foreignKey == fk
       and (not made_here[a] or info.kind == kind) then
      return true
    end
  end
  return false
end

-- Are alias and names free on model?  The alias may be the name under which
-- a belongsToMany to model through jm attaches its junction rows: a hasOne
-- of model to jm then reads the same slot ("marker" is returned).
local function names_free(model, alias, names, jm)
  local v = model:_taken(alias)
  if v ~= nil and v ~= true then
    local info = v:info()
    if info.as == alias or info.kind ~= "belongsToMany" or info.target ~= model or info.through ~= jm then
      return false
    end
  elseif v then
    return false
  end
  for name in next, names do
    if model:_taken(name) then return false end
  end
  return v and "marker" or true
end

-- Make one of them: the kind from source to target by fk under alias,
-- unless it is covered or a name is taken.  Returns the alias when an
-- association of that name joins them (made now or declared), else nil.
local function make_one(db, kind, source, target, alias, spec, ctx)
  local fk = spec.foreignKey
  if joins(source, alias, target, fk) then return alias end
  if covered(source, target, fk, kind) then return nil end
  local names
  if kind == "hasMany" then names = many_names(inflect.singular(alias), alias) else names = one_names(alias) end
  local free = names_free(source, alias, names, target)
  if not free then return nil end
  if free == "marker" then source:_forget(alias, {}) end
  spec.as = alias
  local assoc = builders[kind](db, source, target, spec, ctx .. " (made for it: " .. source.name .. " " .. kind
                               .. " " .. target.name .. " '" .. alias .. "')")
  local list = {}
  for name in next, names do list[#list + 1] = name end
  made_here[assoc] = list
  return alias
end

-- Remove the association alias of model if it is one made here.
local function forget(model, alias)
  local a = model:_info().associations[alias]
  if a and made_here[a] then
    model:_forget(alias, made_here[a])
    made_here[a] = nil
  end
end

-- Before the associations of todo are made: the made ones they replace,
-- by name (unmade now, so that the name is free) ...
local function forget_named(todo)
  for _, a in ipairs(todo) do
    local singular, plural = alias_names(a.spec, a.target, a.kind == "hasMany" or a.kind == "belongsToMany", a.ctx)
    forget(a.source, (a.kind == "hasMany" or a.kind == "belongsToMany") and plural or singular)
  end
end

-- ... and, once made, by what they join: a made association between the
-- same two models by the same foreign key gives way to the declared one.
local function forget_covered(todo)
  for _, a in ipairs(todo) do
    if a.kind ~= "belongsToMany" then
      local mine = a.info.association:info()
      for alias, x in next, a.source:_info().associations do
        local info = x:info()
        if made_here[x] and info.target == mine.target and info.foreignKey == mine.foreignKey then
          forget(a.source, alias)
        end
      end
    end
  end
end

-- The four of the belongsToMany a (a todo entry, its association built).
local function make_through_assocs(db, a)
  local assoc = a.info.association
  local info = assoc:info()
  local source, target, jm = info.source, info.target, info.through
  local ta = a.spec.throughAssociations or {}
  local plural = info.as
  local singular = alias_names(a.spec, target, true, a.ctx)
  -- the paired belongsToMany's names (the target's to the source through the same keys), or the
  -- source model's
  local psingular, pplural = source.name, inflect.plural(source.name)
  for alias, b in next, target:_info().associations do
    local bi = b:info()
    if bi.kind == "belongsToMany" and bi.target == source and bi.through == jm and bi.foreignKey == info.otherKey
       and bi.otherKey == info.foreignKey and b ~= assoc then
      pplural, psingular = alias, inflect.singular(alias)
    end
  end
  local fromSource = ta.fromSource or (plural .. cap(pplural))
  local names = {
    toSource = make_one(db, "belongsTo", jm, source, ta.toSource or psingular,
                        { foreignKey = info.foreignKey, targetKey = info.sourceKey }, a.ctx),
    toTarget = make_one(db, "belongsTo", jm, target, ta.toTarget or singular,
                        { foreignKey = info.otherKey, targetKey = info.targetKey }, a.ctx),
    fromSource = make_one(db, "hasMany", source, jm, fromSource,
                          { foreignKey = info.foreignKey, sourceKey = info.sourceKey }, a.ctx),
    fromSourceOne = make_one(db, "hasOne", source, jm,
                             ta.fromSource and inflect.singular(ta.fromSource) or (singular .. cap(psingular)),
                             { foreignKey = info.foreignKey, sourceKey = info.sourceKey }, a.ctx),
  }
  through_names[assoc] = names
end

-- }======

-- A copy of t made with next, nested tables too (to depth 3): declarations
-- are read raw, so no metamethod of the caller's tables runs while they are.
local function raw_copy(t, depth)
  if type(t) ~= "table" or depth == 0 then return t end
  local c = {}
  for k, v in next, t do
    c[k] = type(v) == "table" and depth > 1 and raw_copy(v, depth - 1) or v
  end
  return c
end

-- Apply an association table; every entry is checked before any is made.
function M.associate(db, tbl)
  if not isopen(db) then raise("attempt to use a closed connection") end
  if type(tbl) ~= "table" then raise("bad argument #1 (table expected, got %s)", type(tbl)) end
  tbl = raw_copy(tbl, 4)   -- name -> list -> spec -> as = { singular, plural }
  local todo = {}
  local names = {}
  for name in next, tbl do
    if type(name) ~= "string" then raise("bad model name (%s)", type(name)) end
    names[#names + 1] = name
  end
  table.sort(names)   -- a stable order, so a failure is reproducible
  for _, name in ipairs(names) do
    local list = tbl[name]
    local source = db:model(name)
    if not source then raise("%s: no model of that name is defined", name) end
    if type(list) ~= "table" then raise("%s: bad value (array of associations expected, got %s)", name, type(list)) end
    for i, spec in ipairs(list) do
      if type(spec) ~= "table" then raise("%s: association %d is a %s, not a table", name, i, type(spec)) end
      local kind
      for _, k in ipairs(kinds) do
        if spec[k] ~= nil then
          if kind then raise("%s: association %d has two kinds (%s and %s)", name, i, kind, k) end
          kind = k
        end
      end
      if not kind then
        local keys = {}
        for k in next, spec do keys[#keys + 1] = tostring(k) end
        table.sort(keys)
        raise("%s: don't know how to create association %d {%s} (belongsTo, hasOne, hasMany or belongsToMany expected)",
              name, i, table.concat(keys, ", "))
      end
      for k, v in next, spec do
        if k ~= kind and not option_keys[k] then
          raise("%s: %s '%s': bad option '%s' (unknown key)", name, kind, tostring(spec[kind]), tostring(k))
        end
        if k ~= kind and not option_keys[k][type(v)] then
          raise("%s: %s '%s': bad option '%s' (%s given)", name, kind, tostring(spec[kind]), k, type(v))
        end
        if (k == "onDelete" or k == "onUpdate") and not ref_actions[v:lower()] then
          raise("%s: %s '%s': bad option '%s' (unknown action '%s')", name, kind, tostring(spec[kind]), k, v)
        end
      end
      if type(spec.through) == "table" then   -- Sequelize's { model = ..., scope = ... }
        for k in next, spec.through do
          if k ~= "model" and k ~= "scope" and k ~= "paranoid" then
            raise("%s: %s '%s': bad option 'through.%s' (unknown key)", name, kind, tostring(spec[kind]), tostring(k))
          end
        end
        if type(spec.through.model) ~= "string" then
          raise("%s: %s '%s': bad option 'through.model' (the junction model's name expected)", name, kind,
                tostring(spec[kind]))
        end
        if spec.through.scope ~= nil and type(spec.through.scope) ~= "table" then
          raise("%s: %s '%s': bad option 'through.scope' (table expected)", name, kind, tostring(spec[kind]))
        end
        if spec.through.paranoid ~= nil and type(spec.through.paranoid) ~= "boolean" then
          raise("%s: %s '%s': bad option 'through.paranoid' (boolean expected)", name, kind, tostring(spec[kind]))
        end
        spec.through_paranoid = spec.through.paranoid
        spec.through_scope, spec.through = spec.through.scope, spec.through.model
      end
      for _, k in ipairs { "uniqueKey", "timestamps" } do
        if spec[k] ~= nil and kind ~= "belongsToMany" then
          raise("%s: %s '%s': bad option '%s' (for belongsToMany)", name, kind, tostring(spec[kind]), k)
        end
      end
      if spec.throughAssociations ~= nil then   -- Sequelize 7's names of the junction's own associations
        if kind ~= "belongsToMany" then
          raise("%s: %s '%s': bad option 'throughAssociations' (for belongsToMany)", name, kind, tostring(spec[kind]))
        end
        for k, v in next, spec.throughAssociations do
          if k ~= "fromSource" and k ~= "toSource" and k ~= "fromTarget" and k ~= "toTarget" then
            raise("%s: %s '%s': bad option 'throughAssociations.%s' (unknown key)", name, kind, tostring(spec[kind]),
                  tostring(k))
          end
          if type(v) ~= "string" then
            raise("%s: %s '%s': bad option 'throughAssociations.%s' (string expected, got %s)", name, kind,
                  tostring(spec[kind]), k, type(v))
          end
        end
      end
      key_objects(spec, name .. ": " .. kind .. " '" .. tostring(spec[kind]) .. "'")
      if type(spec[kind]) ~= "string" then
        raise("%s: association %d: %s names no model (a string expected, got %s)", name, i, kind, type(spec[kind]))
      end
      local target = db:model(spec[kind])
      if not target then raise("%s: %s '%s': no model of that name is defined", name, kind, tostring(spec[kind])) end
      todo[#todo + 1] = { source = source, kind = kind, target = target, spec = spec,
                          ctx = name .. " " .. kind .. " " .. target.name }
      if spec.inverse ~= nil then   -- the other side, declared at once (Sequelize 7's inverse)
        local inv = spec.inverse
        if kind ~= "belongsToMany" then
          raise("%s: %s '%s': bad option 'inverse' (for belongsToMany)", name, kind, target.name)
        end
        if type(inv) == "string" then inv = { as = inv } end
        for k, v in next, inv do
          if k ~= "as" then
            raise("%s: %s '%s': bad option 'inverse.%s' (unknown key)", name, kind, target.name, tostring(k))
          end
          if type(v) ~= "string" and type(v) ~= "table" then
            raise("%s: %s '%s': bad option 'inverse.as' (%s given)", name, kind, target.name, type(v))
          end
        end
        spec.inverse = nil
        todo[#todo + 1] = { source = target, kind = kind, target = source,
          spec = { belongsToMany = source.name, through = spec.through, through_scope = spec.through_scope,
                   through_paranoid = spec.through_paranoid,
                   as = inv.as, foreignKey = spec.otherKey, otherKey = spec.foreignKey,
                   key_fields = spec.key_fields and { foreignKey = spec.key_fields.otherKey,
                                                      otherKey = spec.key_fields.foreignKey },
                   sourceKey = spec.targetKey, targetKey = spec.sourceKey, hooks = spec.hooks,
                   throughAssociations = spec.throughAssociations and {
                     fromSource = spec.throughAssociations.fromTarget, toSource = spec.throughAssociations.toTarget,
                     fromTarget = spec.throughAssociations.fromSource, toTarget = spec.throughAssociations.toSource,
                   } },
          ctx = target.name .. " " .. kind .. " " .. source.name }
      end
    end
  end
  -- the source's beforeAssociate hooks first (unless hooks = false), its afterAssociate ones
  -- once the association is made: each gets { source, target, type, db[, association] }
  local hooks = require "junction.hooks"
  local function run_hooks(a, name, info)
    local e = a.spec.hooks ~= false and hooks.entry(a.source)
    if not e then return end
    local ok, msg = hooks.run(e, name, info, a.spec)
    if not ok then raise("%s: %s refused it: %s", a.ctx, name, tostring(msg)) end
  end
  for _, a in ipairs(todo) do
    a.info = { source = a.source, target = a.target, type = a.kind, db = db }
    run_hooks(a, "beforeAssociate", a.info)
  end
  -- every key field is added before any association is made: an association's
  -- statements list the columns of its models as they are when it is made
  -- a pair of belongsToMany through one table junction makes: each one's targetKey is the
  -- other's sourceKey, so that the table it makes refers to the keys both store
  for _, a in ipairs(todo) do
    for _, b in ipairs(todo) do
      if a.kind == "belongsToMany" and b.kind == "belongsToMany" and a ~= b and a.source == b.target
         and a.target == b.source and a.spec.through == b.spec.through and a.source ~= a.target then
        a.spec.targetKey = a.spec.targetKey or b.spec.sourceKey
        a.spec.sourceKey = a.spec.sourceKey or b.spec.targetKey
        a.spec.otherKey = a.spec.otherKey or b.spec.foreignKey   -- each one's keys, the other's swapped
        a.spec.foreignKey = a.spec.foreignKey or b.spec.otherKey
      end
    end
  end
  -- two self-associations through one declared junction model, no key named (Sequelize's
  -- as = "User" and as = "Fan" through Follow): each is the other's inverse, its otherKey
  -- named after its own alias's singular (fanId), its foreignKey after the other's (userId)
  local selfs = {}
  for _, a in ipairs(todo) do
    local s = a.spec
    if a.kind == "belongsToMany" and a.source == a.target and type(s.through) == "string" and s.as ~= nil
       and not (s.foreignKey or s.otherKey) and db:model(s.through) then
      local key = a.source.name .. "\0" .. s.through
      selfs[key] = selfs[key] or {}
      table.insert(selfs[key], a)
    end
  end
  for _, pair in pairs(selfs) do
    if #pair == 2 then
      local jm = db:model(pair[1].spec.through)
      local pk = pair[1].source.primaryKey
      local n1 = alias_names(pair[1].spec, pair[1].target, true, pair[1].ctx)
      local n2 = alias_names(pair[2].spec, pair[2].target, true, pair[2].ctx)
      local k1, k2 = key_name(jm, n1, pk), key_name(jm, n2, pk)
      if k1 ~= k2 then
        pair[1].spec.foreignKey, pair[1].spec.otherKey = k2, k1
        pair[2].spec.foreignKey, pair[2].spec.otherKey = k1, k2
      end
    end
  end
  -- (the entries that name their keys first: the other side of a pair finds them)
  local named, unnamed = {}, {}
  for _, a in ipairs(todo) do
    local t = (a.spec.foreignKey or a.spec.otherKey) and named or unnamed
    t[#t + 1] = a
  end
  for _, a in ipairs(named) do add_keys[a.kind](db, a) end
  for _, a in ipairs(unnamed) do add_keys[a.kind](db, a) end
  forget_named(todo)
  for _, a in ipairs(todo) do
    a.info.association = builders[a.kind](db, a.source, a.target, a.spec, a.ctx)
    run_hooks(a, "afterAssociate", a.info)
  end
  forget_covered(todo)
  -- the junction model's own associations, once every declared one is made
  for _, a in ipairs(todo) do
    if a.kind == "belongsToMany" then make_through_assocs(db, a) end
  end
  return true
end

-- Model:getAssociation(alias): what the association of that name is, as a
-- plain table (Sequelize's Model.associations[alias]): kind, as, source,
-- target, foreignKey, sourceKey, targetKey, and for belongsToMany through
-- and otherKey; nil when the model has none of that name.
-- Model:getAssociations(): alias -> that table, for every association.
local function describe_assoc(a)
  local info = a:info()
  info.association = a
  info.associationType = info.kind         -- Sequelize's name for it
  if info.kind == "belongsToMany" then info.throughAssociations = copy(through_names[a]) end
  return info
end

local function get_association(self, alias)
  if require("junction.core").type(self) ~= "model" then
    error("Model:getAssociation: bad self (model expected, got " .. type(self) .. "; call it with ':')", 2)
  end
  if type(alias) ~= "string" then
    error(self.name .. ":getAssociation: bad argument #1 (alias expected, got " .. type(alias) .. ")", 2)
  end
  local a = self:_info().associations[alias]
  return a and describe_assoc(a) or nil
end

local function get_associations(self)
  if require("junction.core").type(self) ~= "model" then
    error("Model:getAssociations: bad self (model expected, got " .. type(self) .. "; call it with ':')", 2)
  end
  local out = {}
  for alias, a in pairs(self:_info().associations) do out[alias] = describe_assoc(a) end
  return out
end

-- {====== Nested creation: Model:create(values, { include = { "Genres" } })

-- The length of t when it is a list, keys 1..n and nothing else; else nil
-- (a hasMany given one table of values, or a list with a stray key, would
-- otherwise make fewer rows than the program wrote, without a word).  Raw:
-- no metamethod of t runs.
local function list_len(t)
  local n = 0
  for k in next, t do
    if type(k) ~= "number" or k < 1 or k % 1 ~= 0 then return nil end
    n = n + 1
  end
  for i = 1, n do
    if rawget(t, i) == nil then return nil end
  end
  return n
end

-- The include list of a create, as alias -> the nested include list read
-- the same way (or false): each entry an alias or { association = alias,
-- include = { ... } }.  The whole tree is read before any write, so a
-- misuse at any depth writes nothing; past 32 levels (as a find's include)
-- it raises, so that a cycle (an include inside itself, a values table
-- inside itself) fails at once instead of creating rows without end.
local function create_includes(model, include, method, depth)
  local out = {}
  depth = depth or 1
  if depth > 32 then error(method .. ": bad include (nested more than 32 deep)", 0) end
  if type(include) == "string" then include = { include } end
  if type(include) ~= "table" then
    error(method .. ": bad option 'include' (a list of association names expected, got " .. type(include) .. ")", 0)
  end
  local n = list_len(include)
  if not n then error(method .. ": bad option 'include' (a list expected)", 0) end
  for i = 1, n do   -- (raw reads: a metatable on an option never runs)
    local e = rawget(include, i)
    local alias, sub = e, false
    if type(e) == "table" then
      for k in next, e do
        if k ~= "association" and k ~= "include" then
          error(method .. ": bad include " .. i .. ": bad option '" .. tostring(k) .. "' (unknown key)", 0)
        end
      end
      alias, sub = rawget(e, "association"), rawget(e, "include") or false
    end
    if type(alias) ~= "string" or not model:_info().associations[alias] then
      error(method .. ": bad include " .. i .. " (" .. tostring(alias) .. " is no association of "
            .. model.name .. ")", 0)
    end
    out[alias] = sub
  end
  local assocs = model:_info().associations
  for alias, sub in pairs(out) do
    out[alias] = sub and create_includes(assocs[alias]:info().target, sub, method, depth + 1)
  end
  return out
end

-- Create an instance of model from values and, in the running transaction,
-- the associated rows values gives under the included aliases: a
-- belongsTo's first (its key goes on the new row), then the others, linked
-- to it (a belongsToMany element may carry its junction values under the
-- junction model's name).  incs is create_includes' answer.  Returns the
-- new instance; a failure aborts.  Every instance made is noted in made:
-- model -> key -> instance.
local function create_nested(model, values, incs, method, made)
  local check = junction._check
  local own, later = copy(values), {}
  local assocs = model:_info().associations
  for alias, sub in pairs(incs) do
    local v = own[alias]
    own[alias] = nil
    if v ~= nil then
      local info = assocs[alias]:info()
      if type(v) ~= "table" then
        error(method .. ": bad value for " .. alias .. " (table expected, got " .. type(v) .. ")", 0)
      end
      if info.kind == "belongsTo" then
        local parent = create_nested(info.target, v, sub or {}, method, made)
        own[info.foreignKey] = parent[info.targetKey]
      else
        later[#later + 1] = { info = info, v = v, sub = sub or {} }
      end
    end
  end
  local inst = check(model:create(own))
  made[model] = made[model] or {}
  made[model][inst[model.primaryKey]] = inst
  for _, l in ipairs(later) do
    local info = l.info
    local list = info.kind == "hasOne" and { l.v } or l.v
    if not list_len(list) then
      error(method .. ": bad value for " .. info.as .. " (a list of tables of values expected)", 0)
    end
    for _, item in ipairs(list) do
      if type(item) ~= "table" then
        error(method .. ": bad value for " .. info.as .. " (a list of tables of values expected)", 0)
      end
      local values2 = copy(item)
      if info.kind == "belongsToMany" then
        local jname = info.through.name
        local thr = values2[jname]
        values2[jname] = nil
        local target = create_nested(info.target, values2, l.sub, method, made)
        local adder = "add" .. cap(inflect.singular(info.as))
        if type(inst[adder]) ~= "function" then adder = "add" .. cap(info.as) end
        check(inst[adder](inst, target, thr and { through = thr } or nil))
      else
        values2[info.foreignKey] = inst[info.sourceKey]
        create_nested(info.target, values2, l.sub, method, made)
      end
    end
  end
  return inst
end

-- The instances read back (back and what its includes loaded) follow the
-- instances made of their rows through a rollback of the transaction they
-- were made in (an enclosing db:transaction's): unsaved again, as those are.
local function follow_made(back, made, inc)
  local core = require "junction.core"
  local function follow(x)
    local model = core.modelof(x)
    local m = model and made[model]
    local orig = m and m[x[model.primaryKey]]
    if orig then core._journalas(x, orig) end
  end
  follow(back)
  for _, alias in ipairs(inc) do
    local v = back[alias]
    if core.modelof(v) then
      follow(v)
    elseif type(v) == "table" then
      for _, x in ipairs(v) do follow(x) end
    end
  end
end

-- Model:create(self, values, opts) with opts given (junction.hooks' create
-- calls it then, so that a create without options goes on as before).
local function create_with(self, values, opts)
  if require("junction.core").type(self) ~= "model" then
    error("Model:create: bad self (model expected, got " .. type(self) .. "; call it with ':')", 3)
  end
  local method = self.name .. ":create"
  if type(opts) ~= "table" then error(method .. ": bad options (table expected, got " .. type(opts) .. ")", 3) end
  for k in next, opts do
    if k ~= "include" and k ~= "fields" then
      error(method .. ": bad option '" .. tostring(k) .. "' (unknown key)", 3)
    end
  end
  local fields, include = rawget(opts, "fields"), rawget(opts, "include")
  if fields ~= nil then   -- only those fields of values are written (and the included aliases)
    check_values(values, method)
    local keep = {}
    if include ~= nil then
      local ok, e = pcall(create_includes, self, include, method)
      if not ok then error(e, 3) end
      keep = e
    end
    values = only_fields(self, values or {}, fields, method, 3, keep)
  end
  if include == nil then return self:create(values) end
  check_values(values, method)
  local ok, e = pcall(create_includes, self, include, method)   -- misuse before any write
  if not ok then error(e, 3) end
  local db = self:_info().db
  -- all or nothing; the instance read back with what was made under it
  return db:transaction(function()
    local made = {}
    local inst = create_nested(self, values, e, method, made)
    local inc = {}
    for alias in pairs(e) do inc[#inc + 1] = alias end
    -- read back past a default scope: the row was just made, whatever the
    -- scope says (through the scope, a row it filters out read as a bare
    -- nil, and that nil was committed as the create's result)
    local back = junction._check(self:unscoped():findByPk(inst[self.primaryKey], { include = inc }))
    follow_made(back, made, inc)
    return back
  end)
end

-- }======

function M.setup(mod, core)
  junction = mod
  if core then
    core.Model.getAssociation = get_association
    core.Model.getAssociations = get_associations
    require("junction.hooks").create_with = create_with
  end
end

return M
