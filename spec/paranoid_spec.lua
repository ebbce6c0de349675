-- Soft delete: paranoid = true keeps deleted rows with their deletedAt set
-- (lua/junction/scopes.lua).
local H = require "spec.helper"
local junction = H.junction
local T = H.T

local function n(db, sql) return db:query(sql)[1].n end

local function posts(spec)
  local db = H.open()
  local s = { fields = { title = { type = T.TEXT } }, paranoid = true }
  for k, v in pairs(spec or {}) do s[k] = v end
  local Post = db:define("Post", s)
  assert(db:sync())
  for i = 1, 3 do assert(Post:create { title = "p" .. i }) end
  return db, Post
end

describe("soft delete", function()
  it("paranoid adds deletedAt, or deleted_at when underscored", function()
    local _, Post = posts()
    assert.truthy(("," .. table.concat(Post:_info().fields, ",") .. ","):find(",deletedAt,", 1, true))
    local _, U = posts { underscored = true }
    assert.truthy(("," .. table.concat(U:_info().fields, ",") .. ","):find(",deleted_at,", 1, true))
  end)

  it("inst:destroy sets deletedAt and keeps the row; finds and counts skip it", function()
    local db, Post = posts()
    local p = Post:findByPk(1)
    assert.is_true(p:destroy())
    assert.is_true(p:isSoftDeleted())
    assert.is_string(p.deletedAt)
    assert.are.equal(3, n(db, "SELECT count(*) AS n FROM \"Post\""))
    assert.are.equal(2, Post:count())
    assert.are.equal(2, #Post:findAll())
    assert.is_nil(Post:findByPk(1))
    assert.is_nil(Post:findOne { where = { title = "p1" } })
    assert.are.equal(2, Post:findAndCountAll().count)
    -- the instance stays usable
    p.title = "changed"
    assert(p:save())
  end)

  it("paranoid = false reads the deleted rows too", function()
    local _, Post = posts()
    assert(Post:findByPk(1):destroy())
    assert.are.equal(3, Post:count { paranoid = false })
    assert.are.equal(3, #Post:findAll { paranoid = false })
    assert.are.equal("p1", Post:findByPk(1, { paranoid = false }).title)
    assert.are.equal(3, Post:findAndCountAll { paranoid = false }.count)
    assert.error_matches(function() return Post:count { paranoid = "no" } end,
      "Post:count: bad option 'paranoid' (boolean expected, got string)", 1, true)
  end)

  it("Model:destroy sets deletedAt on the rows not deleted yet and says how many", function()
    local db, Post = posts()
    assert.are.equal(1, Post:destroy { where = { title = "p1" } })
    local first = db:query("SELECT \"deletedAt\" FROM \"Post\" WHERE title = 'p1'")[1].deletedAt
    assert.are.equal(0, Post:destroy { where = { title = "p1" } })
    assert.are.equal(first, db:query("SELECT \"deletedAt\" FROM \"Post\" WHERE title = 'p1'")[1].deletedAt)
    assert.are.equal(2, Post:destroy { all = true })
    assert.are.equal(0, Post:count())
    assert.are.equal(3, n(db, "SELECT count(*) AS n FROM \"Post\""))
  end)

  it("force = true really deletes, deleted rows too", function()
    local db, Post = posts()
    assert(Post:findByPk(1):destroy())
    assert.are.equal(1, Post:destroy { where = { title = "p1" }, force = true })
    assert.are.equal(2, n(db, "SELECT count(*) AS n FROM \"Post\""))
    local p = Post:findByPk(2)
    assert.is_true(p:destroy { force = true })
    assert.are.equal(1, n(db, "SELECT count(*) AS n FROM \"Post\""))
    assert.error_matches(function() return p:save() end, "instance was destroyed", 1, true)
    assert.are.equal(1, Post:destroy { all = true, force = true })
    assert.are.equal(0, n(db, "SELECT count(*) AS n FROM \"Post\""))
  end)

  it("restore brings rows back: inst:restore and Model:restore", function()
    local _, Post = posts()
    local p = Post:findByPk(1)
    assert(p:destroy())
    assert.are.equal(p, p:restore())
    assert.is_nil(p.deletedAt)
    assert.are.equal(3, Post:count())
    assert.are.equal(3, Post:destroy { all = true })
    assert.are.equal(1, Post:restore { where = { title = "p2" } })
    assert.are.equal(1, Post:count())
    assert.are.equal(2, Post:restore { all = true })
    assert.are.equal(3, Post:count())
    assert.are.equal(0, Post:restore { all = true })
  end)

  it("restore and force are misuse where they do not apply", function()
    local _, Post = posts()
    assert.error_matches(function() return Post:restore {} end,
      "Post:restore: missing option 'where' (say { all = true } to restore every row)", 1, true)
    assert.error_matches(function() return Post:restore { where = {} } end, "Post:restore: bad where", 1, true)
    assert.error_matches(function() return Post:restore { where = { id = 1 }, all = true } end,
      "Post:restore: bad options (both", 1, true)
    assert.error_matches(function() return Post:restore { limit = 1 } end,
      "Post:restore: bad option 'limit' (unknown key)", 1, true)
    assert.error_matches(function() return Post:destroy {} end, "Post:destroy: missing option 'where'", 1, true)
    assert.error_matches(function() return Post:destroy { where = {} } end, "Post:destroy: bad where", 1, true)
    assert.error_matches(function() return Post:destroy { all = true, force = 1 } end,
      "Post:destroy: bad option 'force' (boolean expected, got number)", 1, true)
    assert.error_matches(function() return Post:findByPk(1):destroy { nope = true } end,
      "Post:destroy: bad option 'nope' (unknown key)", 1, true)
    local db = H.open()
    local Plain = db:define("Plain", { fields = { a = { type = T.TEXT } } })
    assert(db:sync())
    assert.error_matches(function() return Plain:destroy { all = true, force = true } end,
      "Plain:destroy: bad option 'force'", 1, true)
    assert.is_nil(Plain.restore)
    assert.error_matches(function() return Plain:count { paranoid = false } end,
      "Plain:count: bad option 'paranoid'", 1, true)
  end)

  it("update skips deleted rows unless paranoid = false", function()
    local db, Post = posts()
    assert(Post:findByPk(1):destroy())
    assert.are.equal(2, Post:update({ title = "x" }, { all = true }))
    assert.are.equal("p1", db:query("SELECT title FROM \"Post\" WHERE id = 1")[1].title)
    assert.are.equal(3, Post:update({ title = "y" }, { all = true, paranoid = false }))
  end)

  it("findOrCreate does not find a deleted row: it creates one", function()
    local db, Post = posts()
    assert(Post:findByPk(1):destroy())
    local p, created = Post:findOrCreate { where = { title = "p1" } }
    assert.is_true(created)
    assert.are_not.equal(1, p.id)
    local q, created2 = Post:findOrCreate { where = { title = "p2" } }
    assert.is_false(created2)
    assert.are.equal(2, q.id)
    assert.are.equal(4, n(db, "SELECT count(*) AS n FROM \"Post\""))
  end)

  it("the destroy hooks run around a soft delete, and a failing hook leaves the row as it was", function()
    local calls = {}
    local db, Post = posts { hooks = {
      beforeDestroy = function(p) calls[#calls + 1] = "before " .. p.title end,
      afterDestroy = function(p)
        calls[#calls + 1] = "after " .. p.title
        if p.title == "p2" then return nil, "no" end
      end,
    } }
    assert.is_true(Post:findByPk(1):destroy())
    assert.are.same({ "before p1", "after p1" }, calls)
    local ok, msg, code = Post:findByPk(2):destroy()
    assert.is_nil(ok)
    assert.are.equal("no", msg)
    assert.are.equal(junction.VALIDATION, code)
    assert.is_nil(db:query("SELECT \"deletedAt\" FROM \"Post\" WHERE id = 2")[1].deletedAt)
  end)

  it("a deleted row vanishes from the includes of the models that reach it", function()
    local db = H.open()
    local Author = db:define("Author", { fields = { name = { type = T.TEXT } } })
    local Book = db:define("Book", { fields = { title = { type = T.TEXT }, author_id = { type = T.INTEGER } },
                                     paranoid = true })
    local Shelf = db:define("Shelf", { fields = { name = { type = T.TEXT }, book_id = { type = T.INTEGER } } })
    db:associate {
      Author = { { hasMany = "Book", foreignKey = "author_id", as = "Books" } },
      Book = { { belongsTo = "Author", foreignKey = "author_id", as = "Author" } },
      Shelf = { { belongsTo = "Book", foreignKey = "book_id", as = "Book" } },
    }
    assert(db:sync())
    local a = assert(Author:create { name = "a" })
    local b1 = assert(Book:create { title = "kept", author_id = a.id })
    local b2 = assert(Book:create { title = "gone", author_id = a.id })
    assert(Shelf:create { name = "s", book_id = b2.id })
    assert(b2:destroy())
    local rows = Author:findAll { include = { "Books" } }
    assert.are.equal(1, #rows)
    assert.are.equal(1, #rows[1].Books)
    assert.are.equal("kept", rows[1].Books[1].title)
    assert.are.equal(2, #Author:findAll { include = { Books = { paranoid = false } } }[1].Books)
    assert.error_matches(function() return Author:findAll { include = { Books = { paranoid = "false" } } } end,
      "Author: include 'Books': bad option 'paranoid' (boolean expected, got string)", 1, true)
    assert.is_nil(Shelf:findOne { include = { "Book" } }.Book)
    assert.are.equal(1, #a:getBooks())
    assert.are.equal(1, a:countBooks())
    assert.are.equal(2, a:countBooks { paranoid = false })
    assert.are.equal(0, a:countBooks { where = { title = "gone" } })
    -- a where of the include's own still makes it required, the deleted rows still skipped
    assert.are.equal(0, #Author:findAll { include = { Books = { where = { title = "gone" } } } })
    local kept = Author:findAll { include = { { association = "Books", where = { title = "kept" } } } }
    assert.are.equal(b1, kept[1].Books[1])
  end)

  it("a deleted target of a belongsToMany is skipped by get, count and include", function()
    local db = H.open()
    local Post = db:define("Post", { fields = { text = { type = T.TEXT } } })
    local Genre = db:define("Genre", { fields = { name = { type = T.TEXT } }, paranoid = true })
    db:associate {
      Post = { { belongsToMany = "Genre", through = "post_genre", as = "Genres" } },
      Genre = { { belongsToMany = "Post", through = "post_genre", as = "Posts" } },
    }
    assert(db:sync())
    for _, name in ipairs { "a", "b", "c" } do assert(Genre:create { name = name }) end
    local p = assert(Post:create { text = "x" })
    assert(p:setGenres { 1, 2, 3 })
    assert(Genre:findByPk(2):destroy())
    assert.are.equal(2, #p:getGenres())
    assert.are.equal(2, #p:get_genres())
    assert.are.equal(2, p:countGenres())
    assert.are.equal(3, p:countGenres { paranoid = false })
    assert.are.equal(3, #p:getGenres { paranoid = false })
    assert.are.equal(1, #p:getGenres { where = { name = "a" } })
    assert.are.equal(2, #Post:findAll { include = { "Genres" } }[1].Genres)
    assert.are.equal(1, #Genre:findAll { include = { "Posts" } }[1].Posts)
    assert.error_matches(function() return p:getGenres { paranoid = 1 } end,
      "Post:getGenres: bad option 'paranoid' (boolean expected, got number)", 1, true)
  end)
end)
