-- What user callbacks (the log function, hooks, get/set) may do in the middle
-- of a call: collect garbage, allocate, re-enter; junction stays memory-safe
-- and writes exactly the values of the call.
local H = require "spec.helper"
local T = H.T

local STAMP = "^%d%d%d%d%-%d%d%-%d%d %d%d:%d%d:%d%d%.%d%d%d$"

-- A log function that frees every unreachable string and then allocates new
-- strings of the same sizes (which take the freed memory).
local function churning_log()
  local junk = {}
  return function()
    collectgarbage()
    collectgarbage()
    for i = 1, 64 do junk[i] = string.format("JUNK%019d", i) end
    return #junk
  end
end

describe("a log function that collects garbage", function()
  it("does not change the time that hasMany's set, add and remove write", function()
    local db = H.open { log = churning_log() }
    local Author = db:define("Author", { fields = { name = { type = T.TEXT } } })
    local Book = db:define("Book", { fields = { title = { type = T.TEXT }, author_id = { type = T.INTEGER } } })
    assert(db:associate { Author = { { hasMany = "Book", foreignKey = "author_id", as = "Books" } } })
    assert(db:sync())
    local a = assert(Author:create { name = "a" })
    for i = 1, 40 do assert(Book:create { title = "b" .. i }) end
    assert(a:setBooks { 1, 2, 3 })
    assert(a:addBooks { 4, 5 })
    assert(a:removeBooks { 1 })
    local many = {}
    for i = 1, 40 do many[i] = i end
    assert(a:setBooks(many))            -- more than a chunk: the links read first
    assert(a:setBooks { 7 })
    assert.equal(1, a:countBooks())
    assert.is_true(a:hasBooks { 7 })
    for _, r in ipairs(db:query('SELECT "id", "updatedAt" FROM "Book"')) do
      assert.matches(STAMP, r.updatedAt, 1)
    end
  end)

  it("does not change the time that hasOne's set writes", function()
    local db = H.open { log = churning_log() }
    local Author = db:define("Author", { fields = { name = { type = T.TEXT } } })
    local Profile = db:define("Profile", { fields = { bio = { type = T.TEXT }, author_id = { type = T.INTEGER } } })
    assert(db:associate { Author = { { hasOne = "Profile", foreignKey = "author_id", as = "Profile" } } })
    assert(db:sync())
    local a = assert(Author:create { name = "a" })
    local p1, p2 = assert(Profile:create { bio = "x" }), assert(Profile:create { bio = "y" })
    assert(a:setProfile(p1))
    assert(a:setProfile(p2))
    assert(a:setProfile(nil))
    for _, r in ipairs(db:query('SELECT "id", "updatedAt" FROM "Profile"')) do
      assert.matches(STAMP, r.updatedAt, 1)
    end
  end)
end)

describe("a log function that assigns the source key and collects garbage", function()
  it("leaves belongsToMany's methods memory-safe: they bind their own copy of a text key", function()
    local P
    local junk = {}
    local db = H.open { log = function()
      if P then
        P.slug = string.format("S%031d", #junk + 1)
        collectgarbage()
        collectgarbage()
        for i = 1, 64 do junk[i] = string.format("JUNK%028d", i) end
      end
    end }
    local Post = db:define("Post", { fields = { slug = { type = T.STRING(40), unique = true } } })
    local Genre = db:define("Genre", { fields = { name = { type = T.TEXT } } })
    db:define("TPG", { tableName = "tpg", fields = {
      post_slug = { type = T.STRING(40), references = { model = "Post", key = "slug" } },
      genre_id = { type = T.INTEGER, references = { model = "Genre", key = "id" } } } })
    assert(db:associate { Post = { { belongsToMany = "Genre", through = "TPG", foreignKey = "post_slug",
                                     sourceKey = "slug", otherKey = "genre_id", as = "Genres" } } })
    assert(db:sync())
    local p = assert(Post:create { slug = string.format("P%031d", 7) })
    for i = 1, 5 do assert(Genre:create { name = "g" .. i }) end
    P = p
    -- the slug the instance holds names no row by then: a returned failure, not a crash
    local ok, msg, code = p:setGenres { 1, 2, 3 }
    assert.is_nil(ok)
    assert.equal(787, code, msg)
    ok, msg, code = p:addGenres { 4 }
    assert.is_nil(ok)
    assert.equal(787, code, msg)
    assert.is_true(p:removeGenres { 1 })
    assert.is_false(p:hasGenres { 2 })
    assert.equal(0, p:countGenres())
    P = nil
    assert.equal(0, db:query("SELECT count(*) AS n FROM tpg")[1].n)
  end)
end)
