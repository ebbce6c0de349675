-- junction.methods: a model's own methods.
--
-- Class methods are set on the model itself (`function Post:summary() end`):
-- the C core keeps them in the model's own table, consulted before the
-- methods every model shares.  Instance methods are set on `Model.instance`
-- (`function Post.instance:summary() end`), a table made here for each model
-- whose assignments go into the model's lookup, the one the shared
-- junction.Instance metatable consults: no metatable per model.
local inflect = require "junction.inflect"
local fail = require("junction.result").fail

local M = {}

local Methods = {}
-- Each Model.instance table holds its state under this key (a weak-keyed
-- table would keep the model alive on Lua 5.1: the state refers to it).
local STATE = {}

Methods.__index = function(self, k)
  return rawget(self, STATE).methods[k]
end

Methods.__newindex = function(self, k, v)
  local st = rawget(self, STATE)
  local model = st.model
  if type(k) ~= "string" then
    error(model.name .. ".instance: bad method name (string expected, got " .. type(k) .. ")", 2)
  end
  if type(v) ~= "function" then
    error(model.name .. ".instance." .. k .. ": bad method (function expected, got " .. type(v) .. ")", 2)
  end
  if st.methods[k] ~= nil then
    error(model.name .. ".instance." .. k .. ": already set (an instance method is set once)", 2)
  end
  local ok, err = pcall(model._method, model, k, v)
  if not ok then
    error(model.name .. ".instance." .. k .. ": " ..
          (tostring(err):match("'[^']*' is already a field, method or association") or tostring(err)), 2)
  end
  st.methods[k] = v
  -- the snake_case name too, when it is free
  local snake = inflect.snake(k)
  if snake ~= k then pcall(model._method, model, snake, v) end
end

Methods.__tostring = function(self)
  return "instance methods of " .. rawget(self, STATE).model.name
end

-- inst:increment(field, by) / inst:increment{ field = by, ... } and
-- decrement: Model:increment on the instance's row, then the row read back
-- (as reload does: changes not saved are dropped).  Returns the instance or
-- fail.
local function instance_increment(name)
  return function(self, field, by)
    local model = require("junction.core").modelof(self)
    if model == nil then error(name .. ": bad self (instance expected, got " .. type(self) .. ")", 2) end
    local pk = model.primaryKey
    local key = self[pk]
    if key == nil then error(model.name .. ":" .. name .. ": the instance is not saved", 2) end
    local n, msg, code, details
    if type(field) == "table" then n, msg, code, details = model[name](model, field, { where = { [pk] = key } })
    else n, msg, code, details = model[name](model, field, by or 1, { where = { [pk] = key } })
    end
    if n == nil then return fail(msg, code, details) end
    if n == 0 then return nil, model.name .. ":" .. name .. ": the row is gone (deleted elsewhere)", 12 end
    local ok
    ok, msg, code, details = self:reload()
    if not ok then return fail(msg, code, details) end
    -- inside a transaction that rolls back, the fields counted are changed
    -- again (their values as read), as after a rolled back update: before,
    -- the instance claimed the count the rollback took back, and a save
    -- wrote nothing
    local names = {}
    if type(field) == "table" then
      for k in next, field do names[#names + 1] = k end
    else
      names[1] = field
    end
    require("junction.core")._written(self, true, names)
    return self
  end
end

-- The Model.instance table of model.
local function instance_table(model)
  local t = setmetatable(model:_own("instance"), Methods)
  rawset(t, STATE, { model = model, methods = {} })
  return t
end

function M.setup()
  local extenders = require("junction.hooks").extenders
  extenders[#extenders + 1] = function(_, _, spec)
    return spec, function(model)
      instance_table(model)
      local has = {}
      for _, f in ipairs(model:_info().fields) do has[f] = true end
      for _, name in ipairs { "increment", "decrement" } do
        if not has[name] then model:_method(name, instance_increment(name)) end
      end
    end
  end
end

return M
