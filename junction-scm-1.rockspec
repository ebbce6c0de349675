rockspec_format = "3.0"
package = "junction"
version = "scm-1"
source = {
  url = "git+https://example.invalid/junction.git",  -- unused by `luarocks make`
}
description = {
  summary = "Models for Lua on SQLite and PostgreSQL, with Sequelize's junction-model associations",
  detailed = [[
junction is a Lua module written in C: models declared in Lua tables, rows as
userdata, and associations (belongsTo, hasOne, hasMany, belongsToMany through
an explicit junction model) that give instances methods such as
post:setGenres{1, 2, 3} and post:getGenres(). Lua 5.1, 5.3, 5.4 and LuaJIT
(OpenResty). PostgreSQL is built in when libpq is found.
]],
  license = "MIT",
}
dependencies = {
  "lua >= 5.1",
}
external_dependencies = {
  SQLITE = { header = "sqlite3.h", library = "sqlite3" },
}
-- luarocks has no optional external dependency: rock.mk probes for libpq
-- and compiles the PostgreSQL engine in when it finds it (PQ_DIR / PQ_INCDIR /
-- PQ_LIBDIR as SQLITE_*, PQ_DIR=no for SQLite alone; luarocks warns
-- "unmatched variable" for the ones left unset). It compiles every csrc/*.c;
-- every lua/junction/*.lua is listed below: .ci/check-rockspec.sh (in CI)
-- fails when a module is missing here or listed but absent.
build = {
  type = "make",
  makefile = "rock.mk",
  install_pass = false,
  build_variables = {
    CFLAGS = "$(CFLAGS)",
    LIBFLAG = "$(LIBFLAG)",
    LUA_INCDIR = "$(LUA_INCDIR)",
    SQLITE_INCDIR = "$(SQLITE_INCDIR)",
    SQLITE_LIBDIR = "$(SQLITE_LIBDIR)",
    PQ_DIR = "$(PQ_DIR)",
    PQ_INCDIR = "$(PQ_INCDIR)",
    PQ_LIBDIR = "$(PQ_LIBDIR)",
  },
  install = {
    lib = { ["junction.core"] = "build/rock/junction/core.so" },
    lua = {
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
      ["junction.pgwire"] = "lua/junction/pgwire.lua",
      ["junction.result"] = "lua/junction/result.lua",
      ["junction.scopes"] = "lua/junction/scopes.lua",
      ["junction.upsert"] = "lua/junction/upsert.lua",
      ["junction.wire"] = "lua/junction/wire.lua",
    },
    -- the `junction` command: migrate, rollback, status, erd, console
    bin = { junction = "bin/junction" },
  },
}
