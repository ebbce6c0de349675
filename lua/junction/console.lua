-- junction.console: an interactive Lua prompt that prints junction's values
-- readably (`junction console`, and M.format for any program).
--
--   instance              Post{post_id=1, text="hi", ...}, then its loaded
--                         associations indented below it
--   array of instances    one numbered line per instance, and the count
--   other tables          { key = value, ... }, nested, keys sorted
--   nil, message, code    printed as they are: the failure stays visible
local junction = require "junction"

local M = {}

local MAX_DEPTH = 4

local function sorted_keys(t)
  local keys = {}
  for k in pairs(t) do keys[#keys + 1] = k end
  table.sort(keys, function(a, b)
    local ta, tb = type(a), type(b)
    if ta ~= tb then return ta < tb end
    if ta == "number" or ta == "string" then return a < b end
    return tostring(a) < tostring(b)
  end)
  return keys
end

local function is_array(t)
  local n = 0
  for _ in pairs(t) do n = n + 1 end
  return n == #t
end

local format

local function format_key(k)
  return type(k) == "string" and string.format("%q", k) or tostring(k)
end

local function format_instance(v, indent, depth, out)
  out[#out + 1] = indent .. tostring(v)
  if depth >= MAX_DEPTH then return end
  -- loaded associations: the table-valued entries of toTable()
  local ok, t = pcall(function() return v:toTable() end)
  if not ok or type(t) ~= "table" then return end
  for _, k in ipairs(sorted_keys(t)) do
    local assoc = v[k]
    if type(assoc) == "table" or junction.type(assoc) == "instance" then
      out[#out + 1] = indent .. "  ." .. tostring(k) .. ":"
      format(assoc, indent .. "    ", depth + 1, out)
    end
  end
end

format = function(v, indent, depth, out)
  local jt = junction.type(v)
  if jt == "instance" then return format_instance(v, indent, depth, out) end
  if type(v) ~= "table" then
    out[#out + 1] = indent .. (type(v) == "string" and string.format("%q", v) or tostring(v))
    return
  end
  if depth >= MAX_DEPTH and next(v) ~= nil then out[#out + 1] = indent .. "{...}"; return end
  if next(v) ~= nil and is_array(v) and junction.type(v[1]) == "instance" then
    for i = 1, #v do
      local sub = {}
      format(v[i], "", depth + 1, sub)
      out[#out + 1] = indent .. "[" .. i .. "] " .. sub[1]
      for j = 2, #sub do out[#out + 1] = indent .. "    " .. sub[j] end
    end
    out[#out + 1] = indent .. "(" .. #v .. (#v == 1 and " row)" or " rows)")
    return
  end
  if getmetatable(v) and getmetatable(v).__tostring then out[#out + 1] = indent .. tostring(v); return end
  if next(v) == nil then out[#out + 1] = indent .. "{}"; return end
  out[#out + 1] = indent .. "{"
  for _, k in ipairs(sorted_keys(v)) do
    local sub = {}
    format(v[k], "", depth + 1, sub)
    local label = type(k) == "string" and k:match("^[%a_][%w_]*$") and k or ("[" .. format_key(k) .. "]")
    out[#out + 1] = indent .. "  " .. label .. " = " .. sub[1]
    for j = 2, #sub do out[#out + 1] = indent .. "  " .. sub[j] end
  end
  out[#out + 1] = indent .. "}"
end

--- The text a person reads for value v (several lines for tables).  A
-- value whose __tostring raises is shown as such, never raised.
function M.format(v)
  local out = {}
  local ok, err = pcall(format, v, "", 0, out)
  if not ok then
    local okm, msg = pcall(tostring, err)
    return "<" .. type(v) .. " that cannot be shown: " .. (okm and msg or "?") .. ">"
  end
  return table.concat(out, "\n")
end

local function pack(...) return { n = select("#", ...), ... } end

-- Compile a line (or lines): as an expression first, so `Post:count()`
-- prints its value, then as a statement.  Returns the function, or nil and
-- the message, and whether more input could complete it.
local function compile(src, env)
  local function try(code)
    if setfenv then
      local fn, err = loadstring(code, "=console")
      if fn then setfenv(fn, env) end
      return fn, err
    end
    return load(code, "=console", "t", env)
  end
  local fn = try("return " .. src)
  if fn then return fn end
  local err
  fn, err = try(src)
  if fn then return fn end
  return nil, err, err:find("<eof>", 1, true) ~= nil
end

--- Run the prompt on standard input until it ends.  env holds the globals
-- the user sees (db, the models); banner is printed first.
function M.run(env, banner, input, output)
  input, output = input or io.stdin, output or io.stdout
  env.show = function(...)
    for i = 1, select("#", ...) do output:write(M.format((select(i, ...))), "\n") end
  end
  output:write(banner, "\nType Lua; results are printed. show(x) prints x; Ctrl-D ends.\n")
  local buffer = nil
  while true do
    output:write(buffer and ">> " or "> ")
    output:flush()
    local line = input:read("*l")
    if line == nil then output:write("\n"); break end
    local src = buffer and (buffer .. "\n" .. line) or line
    local fn, err, more = compile(src, env)
    if fn then
      buffer = nil
      local res = pack(pcall(fn))
      if not res[1] then
        output:write("error: ", type(res[2]) == "string" and res[2] or M.format(res[2]), "\n")
      else
        -- several results (nil, message, code) on one line when each fits one
        local parts, multi = {}, false
        for i = 2, res.n do
          parts[#parts + 1] = M.format(res[i])
          if parts[#parts]:find("\n", 1, true) then multi = true end
        end
        if #parts > 0 then output:write(table.concat(parts, multi and "\n" or "\t"), "\n") end
      end
    elseif more then
      buffer = src
    else
      buffer = nil
      output:write("error: ", tostring(err), "\n")
    end
  end
end

return M
