-- The seed's blog: Post, Genre and the junction model TagPostGenre on table
-- tag_post_genre, one file each in examples/models/ (the seed's models
-- directory style; the README shows the same models written out in one file).
--   lua5.4 examples/blog.lua [blog.sqlite3]        (make demo runs it)
--   lua5.4 examples/blog.lua postgresql://user@host/db   the same on PostgreSQL
local junction = require "junction"

local path = arg and arg[1] or "blog.sqlite3"
local here = (arg and arg[0] or ""):match("^(.*)[/\\]") or "."
-- a write-ahead log is a SQLite file's option; a PostgreSQL URL takes none
local opts = not path:find("^postgres") and { journal_mode = "wal" } or nil
local db = assert(junction.open(path, opts))

-- defines the three models, then applies the associations they declare
local models = junction.loadModels(db, here .. "/models")
local Post, Genre = models.Post, models.Genre

assert(db:sync())
print("synced " .. tostring(db))

-- Genres, once: findOrCreate keeps the demo rerunnable on the same file.
for _, name in ipairs { "orm", "lua", "sqlite", "databases" } do
  assert(Genre:findOrCreate { where = { name = name } })
end
local orm, lua, sqlite, databases =
  Genre:findOne { where = { name = "orm" } }, Genre:findOne { where = { name = "lua" } },
  Genre:findOne { where = { name = "sqlite" } }, Genre:findOne { where = { name = "databases" } }

local post = assert(Post:create { text = "Junction models in Lua" })
print("created " .. tostring(post))

assert(post:setGenres { orm.genre_id, lua.genre_id, sqlite.genre_id })   -- keys...
print("setGenres{orm, lua, sqlite}:")
for _, genre in ipairs(post:getGenres()) do print("  ", genre.genre_id, genre.name) end

assert(post:setGenres { lua, sqlite, databases })                        -- ...or instances
print("setGenres{lua, sqlite, databases}: " .. post:countGenres() .. " genres, has orm: "
      .. tostring(post:hasGenre(orm)) .. ", has databases: " .. tostring(post:hasGenre(databases)))

-- A bad key changes nothing and says why.
local ok, msg, code = post:setGenres { lua, 999999 }
print(("setGenres{lua, 999999}: %s, %s (code %s); still %d genres"):format(
  tostring(ok), msg, tostring(code), post:countGenres()))

local tech = assert(post:createGenre { name = "tech-" .. post.post_id })
print("createGenre: " .. tostring(tech))
assert(post:removeGenre(tech))

-- Eager loading: every post with its genres, one statement per level.
local posts = assert(Post:findAll { include = { "Genres" }, order = { { "post_id", "DESC" } }, limit = 3 })
print("latest posts with their genres:")
for _, p in ipairs(posts) do
  local names = {}
  for _, g in ipairs(p.Genres) do names[#names + 1] = g.name end
  print(("  #%d %q: %s"):format(p.post_id, p.text, table.concat(names, ", ")))
end

-- The other side of the association works the same way.
print("posts tagged lua: " .. lua:countPosts())

db:close()
print("done")
