-- Every public method that meets a database failure returns it the one way:
-- nil first, then the message and the code, and a details table exactly
-- when the engine has one (PostgreSQL's sqlstate): 3 values on SQLite, 4 on
-- PostgreSQL, whatever the method. Each call below runs after its tables were
-- dropped, so the database refuses the statement it runs.
local H = require "spec.helper"
local T = H.junction.types

local function pack(...) return { n = select("#", ...), ... } end

-- The blog and Author hasMany Book, hasOne Profile; one row of each, linked.
local function world()
  local db = H.open()
  local m = H.blog(db)
  local Author = db:define("Author", { fields = {
    id = { type = T.INTEGER, primaryKey = true, autoIncrement = true },
    name = { type = T.TEXT } } })
  local Book = db:define("Book", { fields = {
    id = { type = T.INTEGER, primaryKey = true, autoIncrement = true },
    title = { type = T.TEXT }, author_id = { type = T.INTEGER } } })
  local Profile = db:define("Profile", { fields = {
    id = { type = T.INTEGER, primaryKey = true, autoIncrement = true },
    bio = { type = T.TEXT }, author_id = { type = T.INTEGER } } })
  assert(db:associate {
    Author = { { hasMany = "Book", as = "Books", foreignKey = "author_id" },
               { hasOne = "Profile", as = "Profile", foreignKey = "author_id" } },
    Book = { { belongsTo = "Author", as = "Author", foreignKey = "author_id" } },
  })
  assert(db:sync())
  local w = { db = db, Post = m.Post, Genre = m.Genre, Author = Author, Book = Book, Profile = Profile }
  w.genre = assert(m.Genre:create { name = "rock" })
  w.post = assert(m.Post:create { text = "hello" })
  assert(w.post:setGenres { w.genre.genre_id })
  w.author = assert(Author:create { name = "ann" })
  w.book = assert(Book:create { title = "one", author_id = w.author.id })
  w.profile = assert(Profile:create { bio = "x", author_id = w.author.id })
  return w
end

local function drop_all(db)
  for _, t in ipairs { "tag_post_genre", "post", "genre", "Book", "Profile", "Author" } do
    assert(db:exec('DROP TABLE "' .. t .. '"'))
  end
end

local calls = {
  { "Model:create", function(w) return w.Genre:create { name = "jazz" } end },
  { "Model:bulkCreate", function(w) return w.Genre:bulkCreate { { name = "a" }, { name = "b" } } end },
  { "Model:findByPk", function(w) return w.Genre:findByPk(1) end },
  { "Model:findByPk with include", function(w) return w.Post:findByPk(1, { include = { "Genres" } }) end },
  { "Model:findOne", function(w) return w.Genre:findOne { where = { name = "rock" } } end },
  { "Model:findAll", function(w) return w.Genre:findAll() end },
  { "Model:findAll with include", function(w) return w.Post:findAll { include = { "Genres" } } end },
  { "Model:count", function(w) return w.Genre:count() end },
  { "Model:findOrCreate", function(w) return w.Genre:findOrCreate { where = { name = "x" } } end },
  { "Model:update", function(w) return w.Genre:update({ name = "y" }, { where = { genre_id = 1 } }) end },
  { "Model:destroy", function(w) return w.Genre:destroy { where = { genre_id = 1 } } end },
  { "Model:increment", function(w) return w.Author:increment("id", 1, { all = true }) end },
  { "Model:max", function(w) return w.Genre:max("genre_id") end },
  { "Model:upsert", function(w) return w.Genre:upsert({ name = "rock" }, { conflictFields = { "name" } }) end },
  { "Model:findAndCountAll", function(w) return w.Genre:findAndCountAll() end },
  { "instance:save", function(w) w.genre.name = "punk"; return w.genre:save() end },
  { "instance:reload", function(w) return w.genre:reload() end },
  { "instance:destroy", function(w) return w.genre:destroy() end },
  { "getGenres", function(w) return w.post:getGenres() end },
  { "setGenres", function(w) return w.post:setGenres { 1 } end },
  { "addGenres", function(w) return w.post:addGenres { 1 } end },
  { "removeGenres", function(w) return w.post:removeGenres { 1 } end },
  { "hasGenres", function(w) return w.post:hasGenres { 1 } end },
  { "countGenres", function(w) return w.post:countGenres() end },
  { "createGenre", function(w) return w.post:createGenre { name = "new" } end },
  { "getBooks", function(w) return w.author:getBooks() end },
  { "setBooks", function(w) return w.author:setBooks { 1 } end },
  { "addBooks", function(w) return w.author:addBooks { 1 } end },
  { "removeBooks", function(w) return w.author:removeBooks { 1 } end },
  { "hasBooks", function(w) return w.author:hasBooks { 1 } end },
  { "countBooks", function(w) return w.author:countBooks() end },
  { "createBook", function(w) return w.author:createBook { title = "two" } end },
  { "getProfile", function(w) return w.author:getProfile() end },
  { "setProfile", function(w) return w.author:setProfile(w.profile) end },
  { "getAuthor", function(w) return w.book:getAuthor() end },
  { "setAuthor", function(w) return w.book:setAuthor(w.author) end },
  { "createAuthor", function(w) return w.book:createAuthor { name = "bo" } end },
  { "Model:sum", function(w) return w.Genre:sum("genre_id") end },
  { "Model:paginated", function(w) return w.Genre:paginated({ per_page = 2 }):getPage(1) end },
  { "db:transaction", function(w)
      return w.db:transaction(function() return w.Genre:findAll() end)
    end },
  { "db:query", function(w) return w.db:query('SELECT * FROM "genre"') end },
  { "db:exec", function(w) return w.db:exec('DELETE FROM "genre"') end },
}

describe("a database failure", function()
  for _, case in ipairs(calls) do
    local name, call = case[1], case[2]
    it(name .. " returns nil, message, code and details only when the engine has them", function()
      local w = world()
      drop_all(w.db)
      local r = pack(call(w))
      assert.is_nil(r[1], name .. " returned " .. tostring(r[1]))
      assert.is_string(r[2])
      assert.truthy(r[2]:find(H.no_such_table, 1, true), name .. ": " .. tostring(r[2]))
      assert.is_number(r[3])
      if H.is_pg then
        assert.equal(4, r.n, name .. ": " .. table.concat({ tostring(r[2]), tostring(r[3]) }, " "))
        assert.is_table(r[4])
        assert.is_string(r[4].sqlstate)
      else
        assert.equal(3, r.n, name .. ": " .. tostring(r[2]) .. " " .. tostring(r[4]))
      end
      w.db:close()
    end)
  end
end)

describe("a refusal of junction's own", function()
  it("says its reason with its code, and the next failure says its own", function()
    local db = H.open()
    local m = H.blog(db)
    local co = coroutine.wrap(function()
      db:transaction(function() coroutine.yield() end)
    end)
    co()   -- now suspended inside its transaction
    local r = pack(m.Genre:create { name = "x" })
    assert.is_nil(r[1])
    assert.truthy(r[2]:find("coroutine that has yielded", 1, true))
    assert.equal(5, r[3])
    assert.equal(3, r.n)
    co()   -- ends the transaction
    assert(db:exec('DROP TABLE "tag_post_genre"; DROP TABLE "post"; DROP TABLE "genre"'))
    r = pack(m.Genre:create { name = "y" })
    assert.is_nil(r[1])
    assert.is_nil(r[2]:find("yielded", 1, true))
    assert.truthy(r[2]:find(H.no_such_table, 1, true))
    db:close()
  end)
end)
