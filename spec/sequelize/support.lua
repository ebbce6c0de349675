-- spec/sequelize/support.lua: what the ported Sequelize specs share.
--
-- Sequelize's tests declare models with bare attributes (`username: DataTypes.STRING`);
-- here they are junction declarations with the same names, and every model keeps
-- Sequelize's default camelCase timestamps unless the test says otherwise.
local junction = require "junction"

local S = {}
S.junction = junction
S.T = junction.types

-- A fresh, empty database: ":memory:", or a schema of its own on the
-- PostgreSQL server JUNCTION_TEST_PG names (spec/helper.lua's H.open).
local H = require "spec.helper"
S.open = H.open
S.is_pg = H.is_pg
S.sqlite_only = H.sqlite_only
S.schema = H.schema

-- fields given as name = type (a shorthand for Sequelize's `name: DataTypes.X`)
-- or name = { full declaration }.
function S.define(db, name, fields, options)
  local spec = { fields = {} }
  for k, v in pairs(options or {}) do spec[k] = v end
  for k, v in pairs(fields or {}) do
    if type(v) == "table" then spec.fields[k] = v else spec.fields[k] = { type = v } end
  end
  return db:define(name, spec)
end

-- The values of one field over a list of instances, sorted.
function S.sorted(list, field)
  local out = {}
  for i, x in ipairs(list) do out[i] = x[field] end
  table.sort(out, function(a, b) return tostring(a) < tostring(b) end)
  return out
end

-- Every statement a block runs, as text (through the connection's log option).
function S.logged(db_opts)
  local log = {}
  local opts = { log = function(sql) log[#log + 1] = sql end }
  for k, v in pairs(db_opts or {}) do opts[k] = v end
  return S.open(opts), log
end

function S.count_matching(log, pattern)
  local n = 0
  for _, sql in ipairs(log) do
    if sql:find(pattern) then n = n + 1 end
  end
  return n
end

return S
