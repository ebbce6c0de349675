-- The seed's blog with the query tools of docs/API.md "Fragments, group and
-- having", "order" and "Eager loading": raw fragments, group and having,
-- ordering by a genre's name, and each post's first genres in one query.
--   lua5.4 examples/query_tools.lua               (spec/query_fragments_spec.lua runs it)
local junction = require "junction"
local fn, col = junction.fn, junction.col

local here = (arg and arg[0] or ""):match("^(.*)[/\\]") or "examples"
local db = assert(junction.open(":memory:"))
local models = junction.loadModels(db, here .. "/models")
local Post, Genre = models.Post, models.Genre
assert(db:sync())

for _, name in ipairs { "orm", "lua", "sqlite", "databases", "web" } do assert(Genre:create { name = name }) end
local texts = { "Junction models in Lua", "SQLite from C", "A web app", "Untagged" }
local tags = { { 1, 2, 3, 4 }, { 3, 4 }, { 5, 2 }, {} }
for i, text in ipairs(texts) do assert(assert(Post:create { text = text }):setGenres(tags[i])) end

-- a function of a column as a where key; the value is bound
print(#Post:findAll { where = { [fn("lower", col("text"))] = { like = "%lua%" } } })   --> 1

-- the genres of more than one post, and how many: group and having on the junction model
local counts = assert(models.TagPostGenre:findAll {
  attributes = { "genre_id", { fn("count", col("post_id")), "posts" } },
  group = "genre_id", having = { posts = { gt = 1 } }, order = "genre_id",
})
for _, g in ipairs(counts) do print(g.genre_id, g.posts) end                          --> 2 2, 3 2, 4 2

-- posts by the first name of their genres (a post without one first), then by key
local byGenre = assert(Post:findAll { order = { { "Genres", "name" }, "post_id" } })
local keys = {}
for i, p in ipairs(byGenre) do keys[i] = p.post_id end
print(table.concat(keys, " "))                                                        --> 4 1 2 3

-- each post's first two genres by name: one statement for every post
for _, p in ipairs(assert(Post:findAll { include = { Genres = { limit = 2, order = { { "name" } } } },
                                         order = "post_id" })) do
  local names = {}
  for i, g in ipairs(p.Genres) do names[i] = g.name end
  print(p.post_id, table.concat(names, ", "))
end
