-- luacheck config (luacheck 1.1, `make lint`; CI runs it as one check).
-- Code is written to the common subset of Lua 5.1-5.4/LuaJIT, but reads
-- version-specific names through fallbacks (table.unpack or unpack, jit, ...),
-- so the union of all versions' globals is allowed.
std = "max"
max_line_length = 120
codes = true
exclude_files = {
  "build/**",
  "bench/build/**",
  "bench/results/**",
  "**/.luarocks/**",
  "**/lua_modules/**",
}

files["spec"] = { std = "+busted" }
-- the ported Sequelize tests keep Sequelize's titles, whole
files["spec/sequelize"] = { std = "+busted", max_line_length = false }
files["spec/ci_summary.lua"] = { std = "max" }           -- a busted output handler, not a spec
files["test"] = { std = "+busted" }
files["examples/openresty"] = { globals = { "ngx" } }          -- ngx.status, ngx.header[...] are set
