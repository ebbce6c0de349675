-- The seed's blog, transcribed: Post, Genre and the junction model
-- TagPostGenre on table tag_post_genre, associated as the seed does it.
--   lua5.4 examples/blog.lua [blog.sqlite3]        (make demo runs it)
local junction = require "junction"

local path = arg and arg[1] or "blog.sqlite3"
local db = assert(junction.open(path, { journal_mode = "wal" }))
local T = junction.types

local Post = db:define("Post", {
  tableName = "post", timestamps = true, underscored = true,
  fields = {
    post_id = { type = T.INTEGER, allowNull = false, autoIncrement = true, primaryKey = true },
    text    = { type = T.TEXT, allowNull = false },
  },
})

local Genre = db:define("Genre", {
  tableName = "genre", timestamps = true, underscored = true,
  fields = {
    genre_id = { type = T.INTEGER, allowNull = false, autoIncrement = true, primaryKey = true },
    name     = { type = T.STRING(60), allowNull = false, unique = true },
  },
})

db:define("TagPostGenre", {
  tableName = "tag_post_genre", timestamps = true, underscored = true,
  fields = {
    tag_post_genre_id = { type = T.INTEGER, primaryKey = true, autoIncrement = true },
    post_id  = { type = T.INTEGER, references = { model = "post",  key = "post_id" },
                 onDelete = "cascade", onUpdate = "cascade", unique = "unique-genre-per-post" },
    genre_id = { type = T.INTEGER, references = { model = "genre", key = "genre_id" },
                 onDelete = "cascade", onUpdate = "cascade", unique = "unique-genre-per-post" },
  },
})

db:associate {
  TagPostGenre = {
    { belongsTo = "Post",  foreignKey = "post_id",  targetKey = "post_id",  as = "Post" },
    { belongsTo = "Genre", foreignKey = "genre_id", targetKey = "genre_id", as = "Genre" },
  },
  Post  = { { belongsToMany = "Genre", through = "TagPostGenre", foreignKey = "post_id",  as = "Genres" } },
  Genre = { { belongsToMany = "Post",  through = "TagPostGenre", foreignKey = "genre_id", as = "Posts" } },
}

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
