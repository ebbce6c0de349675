-- The links of a belongsToMany through a paranoid junction model are
-- soft-deleted and restored; a junction model's validators and hooks run on
-- the links that addX, setX, createX and removeX write (lua/junction/assoc.lua
-- over the junction model, lua/junction/scopes.lua for includes).
local H = require "spec.helper"
local junction = H.junction
local T = H.T

-- Post and Genre linked through the paranoid TagPostGenre, which holds a
-- weight; jspec adds to (or replaces) the junction model's declaration.
local function blog(jspec, pspec)
  local db = H.open()
  local ps = { tableName = "post", underscored = true, fields = { title = { type = T.TEXT } } }
  for k, v in pairs(pspec or {}) do ps[k] = v end
  local Post = db:define("Post", ps)
  local Genre = db:define("Genre", { tableName = "genre", underscored = true, fields = { name = { type = T.TEXT } } })
  local js = { tableName = "tag_post_genre", underscored = true, paranoid = true, fields = {
    post_id = { type = T.INTEGER, allowNull = false, references = { model = "post", key = "id" },
                onDelete = "cascade" },
    genre_id = { type = T.INTEGER, allowNull = false, references = { model = "genre", key = "id" },
                 onDelete = "cascade" },
    weight = { type = T.INTEGER },
  }, indexes = { { fields = { "post_id", "genre_id" }, unique = true } } }
  for k, v in pairs(jspec or {}) do js[k] = v end
  local J = db:define("TagPostGenre", js)
  assert(db:associate { Post = { { belongsToMany = "Genre", through = "TagPostGenre", as = "Genres" } } })
  assert(db:sync())
  for i = 1, 4 do assert(Genre:create { name = "g" .. i }) end
  return db, Post, Genre, J
end

-- The links of the post in the table, deleted or not: genre_id -> deleted (boolean).
local function rows(db)
  local out = {}
  for _, r in ipairs(assert(db:query('SELECT genre_id, deleted_at FROM "tag_post_genre"'))) do
    out[r.genre_id] = r.deleted_at ~= nil
  end
  return out
end

local function names(list)
  local out = {}
  for i, g in ipairs(list) do out[i] = g.name end
  table.sort(out)
  return table.concat(out, ",")
end

describe("a paranoid junction model", function()
  it("getGenres, countGenres and hasGenre(s) skip the soft-deleted links; paranoid = false or " ..
     "through = { paranoid = false } reads them too", function()
    local _, Post, _, J = blog()
    local p = assert(Post:create { title = "p" })
    assert(p:setGenres { 1, 2, 3 })
    assert.are.equal(1, J:destroy { where = { genre_id = 1 } })
    assert.are.equal("g2,g3", names(assert(p:getGenres())))
    assert.are.equal(2, p:countGenres())
    assert.is_false(p:hasGenre(1))
    assert.is_true(p:hasGenres { 2, 3 })
    assert.is_false(p:hasGenres { 1, 2 })
    assert.are.equal("g1,g2,g3", names(assert(p:getGenres { paranoid = false })))
    assert.are.equal("g1,g2,g3", names(assert(p:getGenres { through = { paranoid = false } })))
    assert.are.equal(3, p:countGenres { paranoid = false })
    assert.are.equal(3, p:countGenres { through = { paranoid = false } })
    assert.is_true(p:hasGenre(1, { through = { paranoid = false } }))
    assert.is_true(p:hasGenres({ 1, 2 }, { paranoid = false }))
    assert.error_matches(function() return p:getGenres { paranoid = "no" } end,
      "Post:getGenres: bad option 'paranoid' (boolean expected, got string)", 1, true)
    assert.error_matches(function() return p:countGenres { through = { paranoid = 0 } } end,
      "Post:countGenres: bad option 'through.paranoid' (boolean expected, got number)", 1, true)
  end)

  it("removeGenres sets deleted_at on the links and keeps their rows", function()
    local db, Post, _, J = blog()
    local p = assert(Post:create { title = "p" })
    assert(p:setGenres { 1, 2, 3 })
    assert.is_true(p:removeGenres { 1, 3 })
    assert.are.same({ [1] = true, [2] = false, [3] = true }, rows(db))
    assert.are.equal(1, J:count())
    assert.are.equal(3, J:count { paranoid = false })
    assert.is_true(p:removeGenre(2))
    assert.are.equal(0, p:countGenres())
    assert.are.equal(3, J:count { paranoid = false })
  end)

  it("addGenres restores a soft-deleted link, with the through values given, instead of inserting it again",
     function()
    local db, Post, _, J = blog()
    local p = assert(Post:create { title = "p" })
    assert(p:addGenres({ 1, 2 }, { through = { weight = 1 } }))
    assert(p:removeGenre(1))
    local id = J:findOne { where = { genre_id = 1 }, paranoid = false }.id
    assert.is_true(p:addGenres({ 1, 3 }, { through = { weight = 5 } }))
    assert.are.same({ [1] = false, [2] = false, [3] = false }, rows(db))
    local back = J:findOne { where = { genre_id = 1 } }
    assert.are.equal(id, back.id)          -- the same row, restored
    assert.are.equal(5, back.weight)
    assert.are.equal(1, J:findOne { where = { genre_id = 2 } }.weight)   -- not in the list: untouched
    assert.are.equal(3, J:count { paranoid = false })
    assert.is_true(p:addGenre(1))          -- linked already: nothing changes
    assert.are.equal(3, J:count { paranoid = false })
  end)

  it("setGenres soft-deletes the links the list leaves out and restores the soft-deleted ones it names", function()
    local db, Post, _, J = blog()
    local p = assert(Post:create { title = "p" })
    assert(p:setGenres { 1, 2, 3 })
    assert(p:setGenres { 2 })
    assert.are.same({ [1] = true, [2] = false, [3] = true }, rows(db))
    assert(p:setGenres { 1, 2, 4 })
    assert.are.same({ [1] = false, [2] = false, [3] = true, [4] = false }, rows(db))
    assert.are.equal("g1,g2,g4", names(assert(p:getGenres())))
    assert.are.equal(4, J:count { paranoid = false })
    assert(p:setGenres {})
    assert.are.equal(0, p:countGenres())
    assert.are.equal(4, J:count { paranoid = false })
  end)

  it("createGenre links the new genre; the links of other posts are not touched", function()
    local _, Post, Genre = blog()
    local p = assert(Post:create { title = "p" })
    local q = assert(Post:create { title = "q" })
    assert(q:setGenres { 1, 2 })
    local g = assert(p:createGenre({ name = "new" }, { through = { weight = 3 } }))
    assert.are.equal("new", names(assert(p:getGenres())))
    assert.are.equal(3, p:getGenres()[1].TagPostGenre.weight)
    assert(p:setGenres {})
    assert.are.equal("g1,g2", names(assert(q:getGenres())))
    assert.is_truthy(Genre:findByPk(g.id))
  end)

  it("includes skip the soft-deleted links unless the include says paranoid = false or " ..
     "through = { paranoid = false }", function()
    local _, Post = blog()
    local p = assert(Post:create { title = "p" })
    assert(Post:create { title = "none" })
    assert(p:setGenres { 1, 2, 3 })
    assert(p:removeGenres { 1, 2 })
    local function genres_of(include)
      local list = assert(Post:findAll { include = include, order = { { "id" } } })
      local out = {}
      for i, post in ipairs(list) do out[i] = post.title .. ":" .. names(post.Genres) end
      return table.concat(out, " ")
    end
    assert.are.equal("p:g3 none:", genres_of { "Genres" })
    assert.are.equal("p:g1,g2,g3 none:", genres_of { Genres = { paranoid = false } })
    assert.are.equal("p:g1,g2,g3 none:", genres_of { Genres = { through = { paranoid = false } } })
    -- a where on the links does not make the include required; required = true does
    assert.are.equal("p:g3", genres_of { Genres = { required = true } })
    assert.are.equal("", genres_of { Genres = { where = { name = "g1" } } })
    assert.are.equal("p:g1", genres_of { Genres = { where = { name = "g1" }, paranoid = false } })
    -- anything but a boolean is refused, not read as true
    assert.error_matches(function() return genres_of { Genres = { paranoid = "no" } } end,
      "Post: include 'Genres': bad option 'paranoid' (boolean expected, got string)", 1, true)
    assert.error_matches(function() return genres_of { Genres = { through = { paranoid = 0 } } } end,
      "Post: include 'Genres': bad option 'through.paranoid' (boolean expected, got number)", 1, true)
  end)

  it("a key that is no row makes setGenres fail and leaves every link as it was, deleted ones deleted",
     function()
    local db, Post = blog()
    local p = assert(Post:create { title = "p" })
    assert(p:setGenres { 1, 2, 3 })
    assert(p:removeGenre(3))
    local before = rows(db)
    local ok, msg, code, details = p:setGenres { 3, 4, 99 }
    assert.is_nil(ok)
    assert.are.equal("Post:setGenres: id 99 not found", msg)
    assert.are.equal(787, code)
    assert.are.same({ missing = { 99 } }, details)
    assert.are.same(before, rows(db))
  end)

  it("a validator of the junction model failing inside setGenres leaves the links as they were",
     function()
    local db, Post = blog { paranoid = true, fields = {
      post_id = { type = T.INTEGER, allowNull = false, references = { model = "post", key = "id" } },
      genre_id = { type = T.INTEGER, allowNull = false, references = { model = "genre", key = "id" } },
      weight = { type = T.INTEGER, validate = { min = 0 } },
    } }
    local p = assert(Post:create { title = "p" })
    assert(p:setGenres({ 1, 2 }, { through = { weight = 1 } }))
    assert(p:removeGenre(2))
    local before = assert(db:query('SELECT genre_id, weight, deleted_at FROM "tag_post_genre" ORDER BY genre_id'))
    -- a new link (3), a restored one (2) and a kept one (1): each way refuses the weight
    for _, list in ipairs { { 3 }, { 2 }, { 1 }, { 1, 2, 3 } } do
      local ok, msg, code, details = p:setGenres(list, { through = { weight = -1 } })
      assert.is_nil(ok)
      assert.are.equal(junction.VALIDATION, code)
      assert.matches("TagPostGenre.weight: must be at least 0", msg, 1, true)
      assert.are.equal("must be at least 0", details.errors.weight)
      assert.are.same(before,
        assert(db:query('SELECT genre_id, weight, deleted_at FROM "tag_post_genre" ORDER BY genre_id')))
    end
  end)

  it("destroying a paranoid post keeps its links; deleting it for good deletes them (the database's cascade)",
     function()
    local db, Post = blog(nil, { paranoid = true })
    local p = assert(Post:create { title = "p" })
    assert(p:setGenres { 1, 2 })
    assert(p:destroy())
    assert.are.same({ [1] = false, [2] = false }, rows(db))
    assert.are.equal(0, #assert(Post:findAll { include = { "Genres" } }))
    assert(p:restore())
    assert.are.equal("g1,g2", names(assert(p:getGenres())))
    assert(p:destroy { force = true })
    assert.are.same({}, rows(db))
  end)

  it("through.paranoid in db:associate must agree with the junction model", function()
    local db = H.open()
    db:define("Post", { fields = { title = { type = T.TEXT } } })
    db:define("Genre", { fields = { name = { type = T.TEXT } } })
    db:define("Link", { fields = {
      postId = { type = T.INTEGER, references = { model = "Post", key = "id" } },
      genreId = { type = T.INTEGER, references = { model = "Genre", key = "id" } } } })
    assert.error_matches(function()
      db:associate { Post = { { belongsToMany = "Genre", through = { model = "Link", paranoid = true } } } }
    end, "bad option 'through.paranoid' (true, but Link is not paranoid: say paranoid in its db:define)", 1, true)
    assert.error_matches(function()
      db:associate { Post = { { belongsToMany = "Genre", through = { model = "Link", paranoid = "yes" } } } }
    end, "bad option 'through.paranoid' (boolean expected)", 1, true)
  end)
end)

describe("the validators and hooks of a junction model", function()
  local function hooked(hooks, extra)
    local db = H.open()
    local Post = db:define("Post", { fields = { title = { type = T.TEXT } } })
    local Genre = db:define("Genre", { fields = { name = { type = T.TEXT } } })
    local fields = {
      postId = { type = T.INTEGER, allowNull = false, references = { model = "Post", key = "id" } },
      genreId = { type = T.INTEGER, allowNull = false, references = { model = "Genre", key = "id" } },
      role = { type = T.TEXT, validate = { len = { 2, 10 } } },
    }
    local spec = { fields = fields, hooks = hooks, indexes = { { fields = { "postId", "genreId" }, unique = true } } }
    for k, v in pairs(extra or {}) do spec[k] = v end
    local J = db:define("Link", spec)
    assert(db:associate { Post = { { belongsToMany = "Genre", through = "Link", as = "Genres" } } })
    assert(db:sync())
    for i = 1, 3 do assert(Genre:create { name = "g" .. i }) end
    return db, Post, Genre, J
  end

  it("addGenres and setGenres run beforeBulkCreate and afterBulkCreate once around the new links, " ..
     "not the create hooks", function()
    local seen = {}
    local _, Post = hooked {
      beforeBulkCreate = function(list)
        seen[#seen + 1] = "before:" .. #list
        for _, v in ipairs(list) do v.role = v.role or "set" end   -- a before hook may change the rows
      end,
      afterBulkCreate = function(made) seen[#seen + 1] = "after:" .. #made end,
      beforeCreate = function() seen[#seen + 1] = "create" end,
    }
    local p = assert(Post:create { title = "p" })
    assert(p:addGenres { 1, 2 })
    assert(p:setGenres { 2, 3 })
    assert(p:addGenre(3))   -- nothing new: no hook
    assert.are.same({ "before:2", "after:2", "before:1", "after:1" }, seen)
    assert.are.equal("set", p:getGenres()[1].Link.role)
  end)

  it("a hook returning nil, message inside addGenres writes no link", function()
    local _, Post, _, J = hooked { afterBulkCreate = function() return nil, "no links today", 42 end }
    local p = assert(Post:create { title = "p" })
    local ok, msg, code = p:addGenres { 1, 2 }
    assert.is_nil(ok)
    assert.are.equal("no links today", msg)
    assert.are.equal(42, code)
    assert.are.equal(0, J:count())
  end)

  it("a hook raising inside createGenre creates neither the genre nor the link", function()
    local _, Post, Genre, J = hooked { beforeBulkCreate = function() error("hook broke") end }
    local p = assert(Post:create { title = "p" })
    assert.error_matches(function() return p:createGenre { name = "new" } end, "hook broke")
    assert.are.equal(3, Genre:count())
    assert.are.equal(0, J:count())
  end)

  it("the through values of links that stay are checked by the field validators", function()
    local _, Post, _, J = hooked {}
    local p = assert(Post:create { title = "p" })
    assert(p:addGenres({ 1 }, { through = { role = "dev" } }))
    local ok, msg, code = p:addGenres({ 1 }, { through = { role = "x" } })
    assert.is_nil(ok)
    assert.are.equal(junction.VALIDATION, code)
    assert.matches("Link.role: must be 2 to 10 characters long", msg, 1, true)
    assert.are.equal("dev", J:findOne().role)
  end)

  it("removeGenres and the drops of setGenres run beforeBulkDestroy and afterBulkDestroy once a call; " ..
     "through values on kept links the bulk update hooks", function()
    local seen = {}
    local _, Post = hooked {
      beforeBulkDestroy = function() seen[#seen + 1] = "bd" end,
      afterBulkDestroy = function(n) seen[#seen + 1] = "ad" .. n end,
      beforeBulkUpdate = function() seen[#seen + 1] = "bu" end,
      afterBulkUpdate = function(n) seen[#seen + 1] = "au" .. n end,
    }
    local p = assert(Post:create { title = "p" })
    assert(p:setGenres { 1, 2, 3 })
    assert(p:removeGenres { 1, 2 })
    assert.are.same({ "bd", "ad2" }, seen)
    seen = {}
    assert(p:setGenres({ 3 }, { through = { role = "lead" } }))
    assert.are.same({ "bu", "au1" }, seen)
    seen = {}
    assert(p:setGenres {})
    assert.are.same({ "bd", "ad1" }, seen)
  end)

  it("a hook raising inside removeGenres on a paranoid junction changes nothing", function()
    local db, Post, _, J = hooked({ afterBulkDestroy = function() error("not now") end }, { paranoid = true })
    local p = assert(Post:create { title = "p" })
    assert(p:setGenres { 1, 2, 3 })
    assert.error_matches(function() return p:removeGenres { 1, 2 } end, "not now")
    assert.error_matches(function() return p:setGenres { 3 } end, "not now")
    assert.are.equal(3, p:countGenres())
    assert.are.equal(3, J:count())
    assert.are.equal(0, db:query('SELECT count(*) AS n FROM "Link" WHERE "deletedAt" IS NOT NULL')[1].n)
  end)

  it("a junction model without validators, hooks or paranoid keeps the C methods", function()
    local db = H.open()
    local m = H.blog(db)
    local p = assert(m.Post:create { text = "p" })
    assert.are.equal("C", debug.getinfo(p.setGenres, "S").what)
    assert.are.equal("C", debug.getinfo(p.removeGenres, "S").what)
    assert.are.equal("C", debug.getinfo(p.getGenres, "S").what)
  end)
end)
