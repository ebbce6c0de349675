rockspec_format = "3.0"
package = "junction"
version = "scm-1"
source = {
  url = "git+https://example.invalid/junction.git",  -- unused by `luarocks make`
}
description = {
  summary = "SQLite-backed models for Lua, with Sequelize's junction-model associations",
  detailed = [[
junction is a Lua module written in C: models declared in Lua tables, rows as
userdata, and associations (belongsTo, hasOne, hasMany, belongsToMany through
an explicit junction model) that give instances methods such as
post:setGenres{1, 2, 3} and post:getGenres(). Lua 5.1, 5.3, 5.4 and LuaJIT
(OpenResty).
]],
  license = "MIT",
}
dependencies = {
  "lua >= 5.1",
}
external_dependencies = {
  SQLITE = { header = "sqlite3.h", library = "sqlite3" },
}
-- Every csrc/*.c and lua/junction/*.lua is listed: .ci/check-rockspec.sh
-- (in CI) fails when a file is missing here or listed but absent.
build = {
  type = "builtin",
  modules = {
    ["junction.core"] = {
      sources = {
        "csrc/jn_assoc.c",
        "csrc/jn_assocm.c",
        "csrc/jn_buf.c",
        "csrc/jn_conn.c",
        "csrc/jn_error.c",
        "csrc/jn_frag.c",
        "csrc/jn_hasmany.c",
        "csrc/jn_include.c",
        "csrc/jn_inst.c",
        "csrc/jn_json.c",
        "csrc/jn_model.c",
        "csrc/jn_pg.c",
        "csrc/jn_query.c",
        "csrc/jn_scalar.c",
        "csrc/jn_schema.c",
        "csrc/jn_select.c",
        "csrc/jn_stmt.c",
        "csrc/jn_sync.c",
        "csrc/jn_value.c",
        "csrc/jn_where.c",
        "csrc/junction.c",
      },
      libraries = { "sqlite3" },
      incdirs = { "$(SQLITE_INCDIR)" },
      libdirs = { "$(SQLITE_LIBDIR)" },
      defines = { 'JUNCTION_VERSION="scm"' },
    },
    junction = "lua/junction/init.lua",
    ["junction.accessors"] = "lua/junction/accessors.lua",
    ["junction.assoc"] = "lua/junction/assoc.lua",
    ["junction.console"] = "lua/junction/console.lua",
    ["junction.copy"] = "lua/junction/copy.lua",
    ["junction.erd"] = "lua/junction/erd.lua",
    ["junction.hooks"] = "lua/junction/hooks.lua",
    ["junction.inflect"] = "lua/junction/inflect.lua",
    ["junction.loader"] = "lua/junction/loader.lua",
    ["junction.methods"] = "lua/junction/methods.lua",
    ["junction.migrate"] = "lua/junction/migrate.lua",
    ["junction.pages"] = "lua/junction/pages.lua",
    ["junction.result"] = "lua/junction/result.lua",
    ["junction.scopes"] = "lua/junction/scopes.lua",
    ["junction.upsert"] = "lua/junction/upsert.lua",
  },
  -- the `junction` command: migrate, rollback, status, erd, console
  install = {
    bin = { junction = "bin/junction" },
  },
}
