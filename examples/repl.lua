-- examples/repl.lua: an in-memory blog to play with in an interactive Lua.
--
--   lua5.4 -i examples/repl.lua        (also lua5.3 -i, lua5.1 -i, luajit -i)
--
-- Loads the seed's three models (examples/models/) on a ":memory:" connection, adds a few genres,
-- posts and links, and leaves these globals for you:
--   junction, db, Post, Genre, TagPostGenre, post (the first post), show (a printer)
-- It finds junction in this checkout (lua/ and build/<version>/) before any installed copy.

-- luacheck: globals junction db Post Genre TagPostGenre post show

-- {====== find junction in this checkout
local here = (debug.getinfo(1, "S").source:match("^@(.*)[/\\]") or ".")
local root = here .. "/.."
local ver = type(jit) == "table" and "jit" or _VERSION:match("%d+%.%d+")
package.path = root .. "/lua/?.lua;" .. root .. "/lua/?/init.lua;" .. package.path
package.cpath = root .. "/build/" .. ver .. "/?.so;"
  .. ((ver == "5.1" or ver == "jit") and (root .. "/build/jit/?.so;" .. root .. "/build/5.1/?.so;") or "")
  .. package.cpath
-- }======

junction = require "junction"

db = assert(junction.open(":memory:"))
-- the seed's models, one file each, as in examples/models/
local models = junction.loadModels(db, here .. "/models")
Post, Genre, TagPostGenre = models.Post, models.Genre, models.TagPostGenre
assert(db:sync())

-- {====== a little data
assert(Genre:bulkCreate { { name = "orm" }, { name = "lua" }, { name = "sqlite" }, { name = "c" } })
post = assert(Post:create { text = "Junction models in Lua" })
assert(post:setGenres { 1, 2, 3 })
local second = assert(Post:create { text = "SQLite from OpenResty" })
assert(second:setGenres { 2, 3 })
assert(Post:create { text = "Sequelize, transcribed" })
-- }======

-- show(x): print a value readably (junction.console's printer): an instance
-- with its loaded associations, an array of instances one per line
local format = require("junction.console").format
function show(x) print(format(x)) end

local eq = (ver == "5.1" or ver == "jit") and "= " or ""   -- 5.1's REPL prints "= expr"
print(("junction %s (SQLite %s, %s): an in-memory blog is ready.")
  :format(tostring(junction.version), tostring(junction.sqlite_version),
          ver == "jit" and jit.version or _VERSION))
print("  db    " .. tostring(db))
print("  Post  " .. tostring(Post))
print("  Genre " .. tostring(Genre))
print("  post  " .. tostring(post))
print("Globals: junction, db, Post, Genre, TagPostGenre, post, show. Try:")
print("  " .. eq .. "post:getGenres()[1]")
print("  show(post:getGenres())")
print("  show(Post:findAll{ include = { \"Genres\" } })")
print("  post:setGenres{ 1, 4 }; print(post:countGenres())")
print("  " .. eq .. "post:setGenres{ 99 }          -- nil, message, 787 (a foreign key)")
print("  show(post:toTable())")
print("  show(db:query(\"SELECT * FROM tag_post_genre\"))")
