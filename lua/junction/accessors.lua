-- junction.accessors: getters, setters and VIRTUAL fields.
--
-- db:define (set up here, around the define of junction.hooks) takes each
-- field's `get` and `set` and every `type = T.VIRTUAL` field out of a copy
-- of the spec, defines the model with the rest, then hands them to the C
-- core (core._accessors), whose instance __index and __newindex run them.
-- A model that declares none is defined exactly as before and keeps the
-- fast path: its instances never look for an accessor.
local M = {}

local function raise(fmt, ...)
  error("db:define: " .. string.format(fmt, ...), 0)
end

local function copy(t)
  local c = {}
  for k, v in next, t do c[k] = v end
  return c
end

-- The spec without gets, sets and VIRTUAL fields, and what was taken out
-- (name -> { get, set, virtual }), or nil when there was nothing.
local function strip(core, model, spec)
  local fields = rawget(spec, "fields")
  if type(fields) ~= "table" then return spec, nil end
  local VIRTUAL = core.types.VIRTUAL
  local acc, any = {}, false
  local function take(fname, fspec)
    if type(fspec) ~= "table" or type(fname) ~= "string" then return fspec end
    local get, set, ty = rawget(fspec, "get"), rawget(fspec, "set"), rawget(fspec, "type")
    local virtual = ty == VIRTUAL
    if get == nil and set == nil and not virtual then return fspec end
    local ctx = model .. "." .. fname
    if get ~= nil and type(get) ~= "function" then
      raise("%s: bad option 'get' (function expected, got %s)", ctx, type(get))
    end
    if set ~= nil and type(set) ~= "function" then
      raise("%s: bad option 'set' (function expected, got %s)", ctx, type(set))
    end
    any = true
    acc[fname] = { get = get, set = set, virtual = virtual }
    if virtual then
      for k in next, fspec do
        if k ~= "type" and k ~= "get" and k ~= "set" then
          raise("%s: bad option '%s' (a VIRTUAL field is never stored: it takes get and set only)",
                ctx, tostring(k))
        end
      end
      return nil
    end
    local fs = copy(fspec)
    fs.get, fs.set = nil, nil
    return fs
  end
  local nf = {}
  if rawget(fields, 1) ~= nil then          -- an array of { name, spec } pairs, in order
    for i = 1, #fields do
      local pair = rawget(fields, i)
      if type(pair) == "table" then
        local fs = take(rawget(pair, 1), rawget(pair, 2))
        if fs ~= nil then nf[#nf + 1] = { rawget(pair, 1), fs } end
      else
        nf[#nf + 1] = pair                   -- the C define names the mistake
      end
    end
    for k, v in next, fields do              -- other keys: left for the C define to refuse
      if type(k) ~= "number" then nf[k] = v end
    end
  else
    for k, v in next, fields do
      local fs = take(k, v)
      if fs ~= nil then nf[k] = fs end
    end
  end
  if not any then return spec, nil end
  local s = copy(spec)
  s.fields = nf
  return s, acc
end

local function accessors(core, model, acc)
  core._accessors(model, acc)
  -- a model with validators or hooks: its Lua update takes these names too
  local e = require("junction.hooks").entry(model)
  if e ~= nil and e.isfield ~= nil then
    for name in pairs(acc) do e.isfield[name] = true end
  end
  return model
end

function M.setup(core)
  local Connection = core.Connection
  local define = Connection.define
  function Connection.define(self, name, spec, ...)
    local s, acc = spec, nil
    if type(spec) == "table" and type(name) == "string" and core.type(self) == "connection" then
      s, acc = strip(core, name, spec)
    end
    -- called through pcall, so that a misuse names our caller's line
    -- (hooks' define raises at its caller's level: pcall, which adds no position)
    local ok, model = pcall(define, self, name, s, ...)
    if ok and acc ~= nil and model ~= nil then ok, model = pcall(accessors, core, model, acc) end
    if not ok then
      if type(model) == "string" and not model:find("^[^:\n]+:%d+: ") then error(model, 2) end
      error(model, 0)
    end
    return model
  end
end

return M
