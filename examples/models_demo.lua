-- The blog from examples/models/, one file per model:
--   lua5.4 examples/models_demo.lua
local junction = require "junction"
local here = (arg and arg[0] or ""):match("^(.*)/[^/]*$") or "."
local db = assert(junction.open(":memory:"))
local models = junction.loadModels(db, here .. "/models")
assert(db:sync())
local Post, Genre = models.Post, models.Genre
local lua, c = assert(Genre:create { name = "lua" }), assert(Genre:create { name = "c" })
local post = assert(Post:create { text = "one file per model" })
assert(post:setGenres { lua, c })
print(post, "has " .. post:countGenres() .. " genres; lua has " .. lua:countPosts() .. " post")
