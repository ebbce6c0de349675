-- The seed's blog with validations, hooks and pagination (docs/API.md,
-- "Validations and hooks").
--   lua5.4 examples/validations_hooks.lua          (spec/hooks_spec.lua runs it)
local junction = require "junction"
local T = junction.types

local db = assert(junction.open(":memory:"))
local log = {}

local Post = db:define("Post", {
  tableName = "post", underscored = true,
  fields = {
    post_id = { type = T.INTEGER, primaryKey = true, autoIncrement = true },
    text    = { type = T.TEXT, allowNull = false, validate = { notEmpty = true, len = { 3, 200 } } },
  },
  validate = {
    -- model-level validators see the whole instance, nil fields included
    noShouting = function(post)
      return post.text == nil or post.text ~= post.text:upper(), "write it in lower case"
    end,
  },
  hooks = {
    beforeSave = function(post) post.text = post.text:match("^%s*(.-)%s*$") end,   -- trim
    afterCreate = function(post) log[#log + 1] = "created post " .. post.post_id end,
  },
})
local Genre = db:define("Genre", {
  tableName = "genre", underscored = true,
  fields = {
    genre_id = { type = T.INTEGER, primaryKey = true, autoIncrement = true },
    name     = { type = T.STRING(60), allowNull = false, unique = true,
                 validate = { is = "^[a-z][a-z0-9-]*$" } },
  },
  hooks = {
    beforeDestroy = function(genre)
      if genre.name == "lua" then return nil, "the lua genre stays" end
    end,
  },
})
db:associate {
  Post = { { belongsToMany = "Genre", through = "TagPostGenre", foreignKey = "post_id", as = "Genres" } },
  Genre = { { belongsToMany = "Post", through = "TagPostGenre", foreignKey = "genre_id", as = "Posts" } },
}
assert(db:sync())

-- A refused value is a returned failure that names every field; nothing is written.
local post, msg, code, details = Post:create { text = "OR" }
print(post, msg, code == junction.VALIDATION, details.errors.text)
--> nil  Post.text: must be 3 to 200 characters long; Post.noShouting: write it in lower case  true
--  must be 3 to 200 characters long

post = assert(Post:create { text = "  Junction models in Lua  " })
print(post.text, log[1])                       --> Junction models in Lua  created post 1

-- createGenre runs Genre's validators: a bad name writes neither the genre nor the link.
local genre
genre, msg = post:createGenre { name = "Not A Slug" }
print(genre, msg, #post:getGenres())           --> nil  Genre.name: does not match ...  0
local lua = assert(post:createGenre { name = "lua" })

-- A hook that returns nil, err keeps the row.
local ok, err = lua:destroy()
print(ok, err)                                 --> nil  the lua genre stays
print(Genre:count())                           --> 1

-- inst:validate() checks without saving.
local draft = Post:build { text = "no" }
print(draft:validate())                        --> nil  Post.text: must be 3 to 200 characters long ...

-- Pages, as in Lapis.
for i = 1, 23 do assert(Post:create { text = "post number " .. i }) end
local pages = Post:paginated { per_page = 10, order = "post_id" }
print(pages:totalItems(), pages:numPages(), #pages:getPage(3))   --> 24  3  4
local r = assert(Post:findAndCountAll { where = { text = { like = "post number 1%" } }, limit = 5 })
print(#r.rows, r.count)                        --> 5  11
