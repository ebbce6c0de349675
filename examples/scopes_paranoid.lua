-- The seed's blog with scopes, soft delete, its own methods and the query
-- tools (docs/API.md, "Scopes", "Soft delete", "Your own methods",
-- "Query tools").
--   lua5.4 examples/scopes_paranoid.lua          (spec/scopes_spec.lua runs it)
local junction = require "junction"
local T = junction.types

local db = assert(junction.open(":memory:"))

local Post = db:define("Post", {
  tableName = "post", underscored = true, paranoid = true,   -- deleted_at keeps deleted posts
  fields = {
    post_id = { type = T.INTEGER, primaryKey = true, autoIncrement = true },
    text    = { type = T.TEXT, allowNull = false },
    views   = { type = T.INTEGER, allowNull = false, defaultValue = 0 },
  },
  defaultScope = { order = { { "post_id", "ASC" } } },
  scopes = {
    popular = { where = { views = { gte = 100 } }, order = { { "views", "DESC" } } },
    top = function(n) return { order = { { "views", "DESC" } }, limit = n } end,
  },
})
local Genre = db:define("Genre", {
  tableName = "genre", underscored = true, paranoid = true,
  fields = {
    genre_id = { type = T.INTEGER, primaryKey = true, autoIncrement = true },
    name     = { type = T.STRING(60), allowNull = false, unique = true },
  },
})
db:associate {
  -- the links are soft-deleted too: a paranoid junction model (table tag_post_genre, made here)
  Post = { { belongsToMany = "Genre", through = { model = "TagPostGenre", paranoid = true },
             foreignKey = "post_id", as = "Genres" } },
  Genre = { { belongsToMany = "Post", through = { model = "TagPostGenre", paranoid = true },
              foreignKey = "genre_id", as = "Posts" } },
}
assert(db:sync())

-- Your own methods: on the model, and on its instances.
function Post:mostRead() return self:scope("top", 1):findOne() end
function Post.instance:headline() return self.text .. " (" .. self.views .. " views)" end

for i, text in ipairs { "Junction models in Lua", "Scopes", "Soft delete" } do
  assert(Post:create { text = text, views = i * 60 })
end
for _, name in ipairs { "orm", "lua", "sqlite" } do assert(Genre:upsert { name = name }) end

print(Post:mostRead():headline())                         --> Soft delete (180 views)
print(#Post:scope("popular"):findAll(), Post:sum("views"))   --> 2  360

-- An atomic counter: one UPDATE ... SET views = views + ?.
local first = Post:findByPk(1)
first:increment("views", 100)
print(first.views, Post:scope("popular"):count())         --> 160  3

-- Soft delete: the row stays, every read skips it.
local post = Post:findByPk(2)
assert(post:setGenres { 1, 2, 3 })
assert(Genre:findOne { where = { name = "sqlite" } }:destroy())
print(#post:getGenres(), post:countGenres { paranoid = false })   --> 2  3
-- A removed link is soft-deleted; adding it back restores it.
assert(post:removeGenre(1))
print(post:countGenres(), post:countGenres { through = { paranoid = false } })   --> 1  2
assert(post:addGenre(1))
print(post:countGenres())                                 --> 2
assert(post:destroy())
print(Post:count(), Post:count { paranoid = false }, post:isSoftDeleted())   --> 2  3  true
assert(post:restore())
print(Post:count())                                       --> 3
print(Post:destroy { where = { views = { lt = 150 } } }, Post:count())   --> 1  2
print(Post:destroy { all = true, force = true }, Post:count { paranoid = false })   --> 3  0

-- rejectOnEmpty: a find that must find something says so.
print(Post:findByPk(1, { rejectOnEmpty = true }))         --> nil  Post:findByPk: no row found  12
