-- spec/include_spec.lua: eager loading (docs/API.md "Eager loading").
local H = require "spec.helper"
local T = H.T

-- posts 1..3; genres rock(1) jazz(2) pop(3) folk(4) metal(5)
-- post 1: rock, jazz; post 2: jazz, pop, folk; post 3: none
local function fixture(opts)
  local db = H.open(opts)
  local m = H.blog(db)
  H.genres(m.Genre)
  local p1 = assert(m.Post:create { text = "one" })
  local p2 = assert(m.Post:create { text = "two" })
  assert(m.Post:create { text = "three" })
  assert(p1:setGenres { 1, 2 })
  assert(p2:setGenres { 2, 3, 4 })
  return db, m
end

local function by_id(list, key)
  local out = {}
  for _, x in ipairs(list) do out[tonumber(x[key])] = x end
  return out
end

describe("include", function()
  local db, m
  before_each(function() db, m = fixture() end)
  after_each(function() db:close() end)

  it("findAll include { 'Genres' } fills post.Genres, an array (empty when none)", function()
    local posts = assert(m.Post:findAll { include = { "Genres" }, order = "post_id" })
    assert.equal(3, #posts)
    assert.same({ 1, 2 }, H.ids(posts[1].Genres, "genre_id"))
    assert.same({ 2, 3, 4 }, H.ids(posts[2].Genres, "genre_id"))
    assert.is_table(posts[3].Genres)
    assert.equal(0, #posts[3].Genres)
    assert.equal("rock", by_id(posts[1].Genres, "genre_id")[1].name)
    assert.equal(m.Genre:findByPk(2), by_id(posts[2].Genres, "genre_id")[2])
  end)

  it("post.Genres is nil when not loaded", function()
    local p = assert(m.Post:findByPk(1))
    assert.is_nil(p.Genres)
  end)

  it("works from findOne and findByPk", function()
    local one = assert(m.Post:findOne { where = { text = "two" }, include = { "Genres" } })
    assert.same({ 2, 3, 4 }, H.ids(one.Genres, "genre_id"))
    local pk = assert(m.Post:findByPk(1, { include = { "Genres" } }))
    assert.same({ 1, 2 }, H.ids(pk.Genres, "genre_id"))
    assert.same({ 1, 2 }, H.ids(assert(m.Post:find_by_pk(1, { include = { "Genres" } })).Genres, "genre_id"))
  end)

  it("nested: include = { Genres = { include = { 'Posts' } } }", function()
    local p = assert(m.Post:findByPk(1, { include = { Genres = { include = { "Posts" } } } }))
    local gs = by_id(p.Genres, "genre_id")
    assert.same({ 1 }, H.ids(gs[1].Posts, "post_id"))
    assert.same({ 1, 2 }, H.ids(gs[2].Posts, "post_id"))
  end)

  it("with where: only matching children, and only parents with a match (Sequelize's rule)", function()
    local posts = m.Post:findAll { include = { Genres = { where = { name = "jazz" } } }, order = "post_id" }
    assert.equal(2, #posts)
    assert.same({ 2 }, H.ids(posts[1].Genres, "genre_id"))
    assert.same({ 2 }, H.ids(posts[2].Genres, "genre_id"))
    assert.equal(2, m.Post:count { include = { Genres = { where = { name = "jazz" } } } })
  end)

  it("with where and required = false: only matching children, all parents", function()
    local posts = m.Post:findAll {
      include = { Genres = { where = { name = "jazz" }, required = false } }, order = "post_id" }
    assert.equal(3, #posts)
    assert.same({ 2 }, H.ids(posts[1].Genres, "genre_id"))
    assert.same({ 2 }, H.ids(posts[2].Genres, "genre_id"))
    assert.same({}, posts[3].Genres)
  end)

  it("required = true keeps only parents with a match", function()
    local posts = m.Post:findAll { include = { Genres = { where = { name = "pop" }, required = true } } }
    assert.same({ 2 }, H.ids(posts, "post_id"))
    assert.same({ 3 }, H.ids(posts[1].Genres, "genre_id"))
    local any = m.Post:findAll { include = { Genres = { required = true } } }
    assert.same({ 1, 2 }, H.ids(any, "post_id"))
  end)

  it("required = true with limit still returns full pages of matching parents", function()
    local posts = m.Post:findAll { include = { Genres = { required = true } }, order = "post_id DESC", limit = 2 }
    assert.same({ 1, 2 }, H.ids(posts, "post_id"))
  end)

  it("the { association = 'Genres', where = ... } form", function()
    local posts = m.Post:findAll {
      include = { { association = "Genres", where = { genre_id = { gt = 2 } }, required = false } },
      order = "post_id" }
    assert.same({}, posts[1].Genres)
    assert.same({ 3, 4 }, H.ids(posts[2].Genres, "genre_id"))
    posts = m.Post:findAll { include = { { association = "Genres", where = { genre_id = { gt = 2 } } } } }
    assert.same({ 2 }, H.ids(posts, "post_id"))
  end)

  it("limit and offset count parents, not joined rows", function()
    local posts = m.Post:findAll { include = { "Genres" }, order = "post_id", limit = 1, offset = 1 }
    assert.equal(1, #posts)
    assert.equal(2, posts[1].post_id)
    assert.same({ 2, 3, 4 }, H.ids(posts[1].Genres, "genre_id"))
  end)

  it("order inside an include orders the children", function()
    local p = assert(m.Post:findByPk(2, { include = { Genres = { order = { { "name", "DESC" } } } } }))
    local names = {}
    for i, g in ipairs(p.Genres) do names[i] = g.name end
    assert.same({ "pop", "jazz", "folk" }, names)
  end)

  it("parent attributes without the key columns still load the include", function()
    local posts = m.Post:findAll { attributes = { "text" }, include = { "Genres" }, order = "post_id" }
    assert.same({ 1, 2 }, H.ids(posts[1].Genres, "genre_id"))
    local links = m.TagPostGenre:findAll {
      attributes = { "created_at" }, include = { "Genre" }, order = "tag_post_genre_id" }
    assert.equal(5, #links)
    assert.equal(1, links[1].Genre.genre_id)
  end)

  it("the reverse side and to-one includes", function()
    local g = assert(m.Genre:findByPk(2, { include = { "Posts" } }))
    assert.same({ 1, 2 }, H.ids(g.Posts, "post_id"))
    local links = m.TagPostGenre:findAll { include = { "Post", "Genre" }, order = "tag_post_genre_id" }
    assert.equal(5, #links)
    for _, l in ipairs(links) do
      assert.equal(m.Post:findByPk(l.post_id), l.Post)
      assert.equal(l.genre_id, l.Genre.genre_id)
    end
  end)

  it("toTable includes the loaded associations as nested plain tables", function()
    local p = assert(m.Post:findByPk(2, { include = { Genres = { include = { "Posts" } } } }))
    local t = p:toTable()
    assert.equal("two", t.text)
    assert.is_table(t.Genres)
    assert.equal(3, #t.Genres)
    for _, gt in ipairs(t.Genres) do
      assert.equal("table", type(gt))
      assert.is_nil(getmetatable(gt))
      assert.is_string(gt.name)
      assert.is_table(gt.Posts)
    end
    assert.same({ 2, 3, 4 }, H.ids(t.Genres, "genre_id"))
  end)

  it("an unknown include alias raises naming the model and the alias", function()
    H.mentions(H.raises(function() m.Post:findAll { include = { "Genders" } } end), "Post", "Genders")
    H.mentions(H.raises(function() m.Post:findAll { include = { Genres = { include = { "Nope" } } } } end), "Nope")
    H.mentions(H.raises(function() m.Post:findAll { include = { Genres = { wher = {} } } } end), "wher")
  end)
end)

describe("include on hasMany / belongsTo", function()
  it("loads children and parents", function()
    local db = H.open()
    local Author = db:define("Author", { timestamps = false, fields = { name = { type = T.TEXT } } })
    local Book = db:define("Book", { timestamps = false, fields = {
      title = { type = T.TEXT }, author_id = { type = T.INTEGER, references = { model = "Author", key = "id" } } } })
    assert(db:associate {
      Author = { { hasMany = "Book", as = "Books", foreignKey = "author_id" } },
      Book = { { belongsTo = "Author", as = "Author", foreignKey = "author_id" } },
    })
    assert(db:sync())
    local a = assert(Author:create { name = "a" })
    assert(Author:create { name = "b" })
    assert(a:createBook { title = "x" })
    assert(a:createBook { title = "y" })
    assert(Book:create { title = "orphan" })
    local authors = Author:findAll { include = { "Books" }, order = "id" }
    assert.same({ 1, 2 }, H.ids(authors[1].Books, "id"))
    assert.same({}, authors[2].Books)
    local books = Book:findAll { include = { "Author" }, order = "id" }
    assert.equal(a, books[1].Author)
    assert.is_nil(books[3].Author)
    db:close()
  end)
end)

describe("statements per include level", function()
  local function statements_for(nposts, opts)
    local log, entries = H.recorder()
    local db, m = fixture { log = log }
    local rows = {}
    for i = 1, nposts do rows[i] = { text = "bulk " .. i } end
    assert(m.Post:bulkCreate(rows))
    local posts = m.Post:findAll { limit = nposts }
    for i, p in ipairs(posts) do assert(p:setGenres { 1 + i % 5, 1 + (i + 2) % 5 }) end
    local n0 = #entries
    local result = assert(m.Post:findAll(opts))
    local n = #entries - n0
    assert.is_true(#result >= nposts)
    db:close()
    return n
  end

  it("one level: the same number for 10 and 200 posts", function()
    local a = statements_for(10, { include = { "Genres" } })
    local b = statements_for(200, { include = { "Genres" } })
    assert.equal(a, b)
    assert.is_true(a <= 3, "one include level costs " .. a .. " statements")
  end)

  it("two levels: the same number for 10 and 200 posts", function()
    local opts = { include = { Genres = { include = { "Posts" } } } }
    local a = statements_for(10, opts)
    local b = statements_for(200, opts)
    assert.equal(a, b)
    assert.is_true(a <= 4, "two include levels cost " .. a .. " statements")
  end)

  it("where and required do not change the count", function()
    local opts = { include = { Genres = { where = { name = { ne = "pop" } }, required = true } } }
    assert.equal(statements_for(10, opts), statements_for(200, opts))
  end)
end)
