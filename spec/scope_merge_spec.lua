-- A scoped create sets the scope's where equalities, and scopes merge their
-- includes as Sequelize merges them (docs/API.md "Scopes").
local H = require "spec.helper"
local T = H.T

local function blog(scopes)
  local db = H.open()
  local Genre = db:define("Genre", { fields = { name = { type = T.TEXT }, kind = { type = T.TEXT } } })
  local Post = db:define("Post", {
    fields = { title = { type = T.TEXT }, status = { type = T.TEXT }, views = { type = T.INTEGER } },
    scopes = scopes,
  })
  db:define("PG", { tableName = "post_genre", fields = {
    post_id = { type = T.INTEGER, references = { model = "Post", key = "id" } },
    genre_id = { type = T.INTEGER, references = { model = "Genre", key = "id" } },
  } })
  assert(db:associate { Post = { { belongsToMany = "Genre", through = "PG", as = "Genres" } },
                        Genre = { { belongsToMany = "Post", through = "PG", as = "Posts" } } })
  assert(db:sync())
  return db, Post, Genre
end

describe("a scoped create", function()
  it("sets the fields the scope's where makes equal, unless the values give them", function()
    local _, Post = blog {
      live = { where = { status = "live" } },
      popular = { where = { views = { eq = 100 }, title = { like = "a%" } } },
    }
    local p = assert(Post:scope("live"):create { title = "a" })
    assert.are.equal("live", p.status)
    assert.are.equal("live", Post:findByPk(p.id).status)
    p = assert(Post:scope("live", "popular"):create { title = "b" })
    assert.are.same({ "live", 100, "b" }, { p.status, p.views, p.title })   -- like sets nothing
    p = assert(Post:scope("live"):create { title = "c", status = "draft" })
    assert.are.equal("draft", p.status)
    local built = Post:scope("live"):build { title = "d" }
    assert.are.equal("live", built.status)
    local list = assert(Post:scope("live"):bulkCreate { { title = "e" }, { title = "f" } })
    assert.are.same({ "live", "live" }, { list[1].status, list[2].status })
    assert.are.equal(4, Post:scope("live"):count())   -- a, b, e, f (d is not saved)
    -- an unscoped create sets nothing
    assert.is_nil(assert(Post:create { title = "g" }).status)
  end)

  it("a function scope's equalities too, and through and lists", function()
    local _, Post = blog {
      status = function(s) return { where = { _and = { { status = s }, { views = { gte = 1 } } } } } end,
    }
    local p = assert(Post:scope("status", "gone"):create { title = "x", views = 3 })
    assert.are.equal("gone", p.status)
  end)
end)

describe("scope merging", function()
  it("includes of the same association merge: their wheres are ANDed", function()
    local _, Post, Genre = blog {
      withGenres = { include = { Genres = { where = { kind = "music" } } } },
      named = { include = { { association = "Genres", where = { name = { like = "r%" } } } } },
    }
    for _, g in ipairs { { "rock", "music" }, { "rap", "talk" }, { "jazz", "music" } } do
      assert(Genre:create { name = g[1], kind = g[2] })
    end
    local p = assert(Post:create { title = "a" })
    assert(p:setGenres { 1, 2, 3 })
    local r = assert(Post:scope("withGenres", "named"):findAll())
    assert.are.equal(1, #r)
    assert.are.same({ "rock" }, H.ids(r[1].Genres, "name"))
    -- the call's include merges with the scope's the same way
    r = assert(Post:scope("withGenres"):findAll { include = { Genres = { where = { name = "jazz" } } } })
    assert.are.same({ "jazz" }, H.ids(r[1].Genres, "name"))
    -- a plain entry for it keeps the scope's where
    r = assert(Post:scope("withGenres"):findAll { include = { "Genres" } })
    assert.are.same({ "jazz", "rock" }, H.ids(r[1].Genres, "name"))
  end)
end)
