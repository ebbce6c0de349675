-- junction.pages: Model:findAndCountAll and Lapis's Model:paginated, in Lua
-- over the C findAll and count.
local fail = require("junction.result").fail
local M = {}

-- Does a self that is not a model stand for one (a scoped model)?  Set by
-- junction.scopes.
function M.accepts() return false end

local core   -- set by setup

local function copy(t)
  local c = {}
  if t then for k, v in next, t do c[k] = v end end
  return c
end

local function check_model(self, method)
  if core.type(self) ~= "model" and not M.accepts(self) then
    error("Model:" .. method .. ": bad self (model expected, got " .. type(self) .. "; call it with ':')", 3)
  end
end

-- The rows a findAll gives and the number of rows it would give without
-- limit and offset (with include: the parents, counted as `required`
-- includes filter them), read in one transaction so that both see the same
-- rows.  Returns { rows = ..., count = n }, or fail.
local function find_and_count_all(self, opts)
  check_model(self, "findAndCountAll")
  if opts ~= nil and type(opts) ~= "table" then
    error(self.name .. ":findAndCountAll: bad options (table expected, got " .. type(opts) .. ")", 2)
  end
  if opts ~= nil and (rawget(opts, "group") ~= nil or rawget(opts, "having") ~= nil) then
    error(self.name .. ":findAndCountAll: bad option '" .. (rawget(opts, "group") ~= nil and "group" or "having") ..
          "' (its count is of rows, not groups: call findAll, and count its result)", 2)
  end
  local db = self:_info().db
  return db:transaction({ mode = "deferred" }, function()
    local rows, msg, code, details = self:findAll(opts)
    if rows == nil then return fail(msg, code, details) end
    local n
    n, msg, code, details = self:count { where = opts and rawget(opts, "where"),
                                include = opts and rawget(opts, "include"),
                                paranoid = opts and rawget(opts, "paranoid") }
    if n == nil then return fail(msg, code, details) end
    return { rows = rows, count = n }
  end)
end

local paged_opts = { per_page = true, perPage = true, where = true, order = true, include = true,
                     attributes = true, paranoid = true, keyset = true }

local Pager = {}
Pager.__index = Pager

-- A keyset paginator's page: the items after the key `after` (nil: the
-- first page), and the key to give for the next page (nil after the last).
local function keyset_page(self, after)
  local o = copy(self.opts)
  local k, dir = self.keyset[1], self.keyset[2]
  o.order, o.limit = { { k, dir } }, self.per_page
  if after ~= nil then
    if type(after) == "table" or type(after) == "function" or type(after) == "userdata" then
      error(self.model.name .. ":paginated:getPage: bad argument #1 (the last key of the previous page " ..
            "expected, got " .. type(after) .. ")", 3)
    end
    local cond = { [k] = { [dir == "DESC" and "lt" or "gt"] = after } }
    o.where = o.where and { _and = { o.where, cond } } or cond
  end
  local items, msg, code, details = self.model:findAll(o)
  if items == nil then return fail(msg, code, details) end
  local nxt
  if #items == self.per_page then nxt = items[#items][k] end
  return items, nxt
end

--- The items of page n (1 for the first), or fail.  A keyset paginator
-- takes the last key of the previous page instead (nil for the first) and
-- returns the items and the key of the next page.
function Pager:getPage(n)
  if getmetatable(self) ~= Pager then error("getPage: bad self (paginator expected; call it with ':')", 2) end
  if self.keyset then return keyset_page(self, n) end
  if type(n) ~= "number" or n < 1 or n ~= math.floor(n) or n ~= n or n == math.huge then
    error(self.model.name .. ":paginated:getPage: bad argument #1 (a page number from 1 expected, got "
          .. tostring(n) .. ")", 2)
  end
  local o = copy(self.opts)
  o.limit, o.offset = self.per_page, (n - 1) * self.per_page
  return self.model:findAll(o)
end

--- The number of items over all pages, or fail.
function Pager:totalItems()
  if getmetatable(self) ~= Pager then error("totalItems: bad self (paginator expected; call it with ':')", 2) end
  return self.model:count { where = self.opts.where, include = self.opts.include,
                            paranoid = self.opts.paranoid }
end

--- The number of pages (0 when there is no item), or fail.
function Pager:numPages()
  if getmetatable(self) ~= Pager then error("numPages: bad self (paginator expected; call it with ':')", 2) end
  local n, msg, code, details = self:totalItems()
  if n == nil then return fail(msg, code, details) end
  return math.ceil(n / self.per_page)
end

--- An iterator over every item, page after page, for a generic for.  A
-- database failure while iterating raises: an iterator has no other way to
-- say it.
function Pager:eachItem()
  if getmetatable(self) ~= Pager then error("eachItem: bad self (paginator expected; call it with ':')", 2) end
  local page, items, i = 0, {}, 0
  local after
  return function()
    i = i + 1
    if items[i] == nil then
      if page > 0 and #items < self.per_page then return nil end
      if page > 0 and self.keyset and after == nil then return nil end
      page = page + 1
      local msg, code
      if self.keyset then
        items, msg, code = self:getPage(after)
        if items ~= nil then after, msg = msg, nil end
      else
        items, msg, code = self:getPage(page)
      end
      if items == nil then
        error(self.model.name .. ":paginated:eachItem: " .. tostring(msg) .. " (" .. tostring(code) .. ")", 2)
      end
      i = 1
    end
    return items[i]
  end
end

Pager.get_page, Pager.total_items, Pager.num_pages, Pager.each_item =
  Pager.getPage, Pager.totalItems, Pager.numPages, Pager.eachItem

-- Model:paginated{ per_page = 20, where = ..., order = ..., include = ...,
-- attributes = ... }: a paginator.  Without order, pages follow the
-- primary key, so that no row is on two pages or none.
local function paginated(self, opts)
  check_model(self, "paginated")
  local method = self.name .. ":paginated"
  if opts ~= nil and type(opts) ~= "table" then
    error(method .. ": bad options (table expected, got " .. type(opts) .. ")", 2)
  end
  local o = {}
  for k, v in next, opts or {} do
    if not paged_opts[k] then
      error(method .. ": bad option '" .. tostring(k) .. "' (unknown key)", 2)
    end
    o[k] = v
  end
  local per = o.per_page or o.perPage or 10
  if o.per_page and o.perPage then error(method .. ": give per_page or perPage, not both", 2) end
  if type(per) ~= "number" or per < 1 or per ~= math.floor(per) or per == math.huge then
    error(method .. ": bad option 'per_page' (a whole number from 1 expected, got " .. tostring(per) .. ")", 2)
  end
  o.per_page, o.perPage = nil, nil
  local keyset = o.keyset
  o.keyset = nil
  if keyset ~= nil then
    if keyset == true then keyset = { self.primaryKey, "ASC" }
    elseif type(keyset) == "string" then keyset = { keyset, "ASC" }
    elseif type(keyset) == "table" and type(rawget(keyset, 1)) == "string" then
      local dir = rawget(keyset, 2) or "ASC"
      if type(dir) ~= "string" or (dir:upper() ~= "ASC" and dir:upper() ~= "DESC") then
        error(method .. ": bad option 'keyset' (direction ASC or DESC expected)", 2)
      end
      keyset = { rawget(keyset, 1), dir:upper() }
    else
      error(method .. ": bad option 'keyset' (true, a field name or { field, \"DESC\" } expected, got " ..
            type(keyset) .. ")", 2)
    end
    if o.order ~= nil then error(method .. ": bad options (keyset orders the pages: give no order)", 2) end
    local known = false
    for _, f in ipairs(self:_info().fields) do if f == keyset[1] then known = true end end
    if not known then
      error(method .. ": bad option 'keyset' (no field '" .. keyset[1] .. "' in " .. self.name .. ")", 2)
    end
  elseif o.order == nil then
    o.order = self.primaryKey
  end
  return setmetatable({ model = self, opts = o, per_page = per, keyset = keyset }, Pager)
end

function M.setup(c)
  core = c
  local Model = c.Model
  Model.findAndCountAll = find_and_count_all
  Model.paginated = paginated
  Model.paginate = paginated
end

M.Pager = Pager

return M
