-- spec/where_safety_spec.lua: a where that came out empty never means "every
-- row"; every-row writes are said explicitly; reads never raise a database
-- failure; option tables are read raw.
local H = require "spec.helper"
local sqlite_it = H.sqlite_only(it, pending)
local junction = H.junction
local T = H.T

-- The blog with 3 genres, 2 posts (1: genres 1 2 3, 2: genre 2), and a
-- hasMany Post -> Comment with 3 comments on post 1.
local function setup()
  local db = H.open()
  local Post, Genre, TagPostGenre, assocs = H.define_blog(db)
  local Comment = db:define("Comment", {
    tableName = "comment", timestamps = false,
    fields = {
      comment_id = { type = T.INTEGER, primaryKey = true, autoIncrement = true },
      body = { type = T.TEXT },
      post_id = { type = T.INTEGER, references = { model = "post", key = "post_id" } },
    },
  })
  assocs.Post[#assocs.Post + 1] = { hasMany = "Comment", foreignKey = "post_id", as = "Comments" }
  assert(db:associate(assocs))
  assert(db:sync())
  H.genres(Genre, { "a", "b", "c" })
  local p1 = assert(Post:create { text = "one" })
  local p2 = assert(Post:create { text = "two" })
  assert(p1:setGenres { 1, 2, 3 })
  assert(p2:setGenres { 2 })
  for i = 1, 3 do assert(Comment:create { body = "c" .. i, post_id = 1 }) end
  return db, { Post = Post, Genre = Genre, TagPostGenre = TagPostGenre, Comment = Comment }, p1
end

-- every row of the three link-bearing tables, as text
local function snapshot(db)
  local out = {}
  for _, t in ipairs { "post", "genre", "tag_post_genre", "comment" } do
    for _, r in ipairs(db:query("SELECT * FROM " .. t .. " ORDER BY 1")) do
      local cols = {}
      for k, v in pairs(r) do cols[#cols + 1] = k .. "=" .. tostring(v) end
      table.sort(cols)
      out[#out + 1] = t .. ":" .. table.concat(cols, ",")
    end
  end
  return table.concat(out, "\n")
end

-- where tables that come out empty, at the top or in a branch
local EMPTY = {
  { "an empty table ({ id = params.id } with no id)", function() return { post_id = nil } end },
  { "an empty operator table", function() return { post_id = { eq = nil } } end },
  { "an empty 'and'", function() return { ["and"] = {} } end },
  { "an empty 'or'", function() return { ["or"] = {} } end },
  { "an 'or' with an empty branch", function() return { ["or"] = { { post_id = 1 }, {} } } end },
  { "an empty 'not'", function() return { ["not"] = {} } end },
  { "an empty nested table", function() return { { text = "one" }, {} } end },
  { "an empty '_and' under 'not'", function() return { _not = { _and = {} } } end },
}

describe("an empty where is a misuse error, never every row", function()
  local db, m, p1
  before_each(function() db, m, p1 = setup() end)
  after_each(function() db:close() end)

  for _, case in ipairs(EMPTY) do
    local label, make = case[1], case[2]
    it("for " .. label .. ", in every Model method, and nothing changes", function()
      local before = snapshot(db)
      local calls = {
        findAll = function() return m.Post:findAll { where = make() } end,
        findOne = function() return m.Post:findOne { where = make() } end,
        count = function() return m.Post:count { where = make() } end,
        update = function() return m.Post:update({ text = "gone" }, { where = make() }) end,
        destroy = function() return m.Post:destroy { where = make() } end,
        findOrCreate = function() return m.Post:findOrCreate { where = make(), defaults = { text = "x" } } end,
      }
      for name, call in pairs(calls) do
        local msg = H.raises(call)
        H.mentions(msg, "Post:" .. name, "where")
      end
      assert.equal(before, snapshot(db))
    end)
  end

  it("in association and include wheres, before the association's own keys are merged", function()
    local before = snapshot(db)
    H.mentions(H.raises(function() return p1:getGenres { where = { name = nil } } end), "getGenres", "where")
    H.mentions(H.raises(function() return p1:countGenres { where = {} } end), "countGenres", "where")
    H.mentions(H.raises(function() return p1:getComments { where = { body = nil } } end), "where")
    H.mentions(H.raises(function() return p1:countComments { where = {} } end), "where")
    H.mentions(H.raises(function()
      return m.Post:findAll { include = { Genres = { where = { name = nil } } } }
    end), "Post:findAll", "where")
    H.mentions(H.raises(function()
      return m.Post:findAll { include = { Genres = { required = true, where = {} } } }
    end), "Post:findAll", "where")
    assert.equal(before, snapshot(db))
  end)

  it("says how to mean every row", function()
    local msg = H.raises(function() return m.Post:findOne { where = { text = nil } } end)
    H.mentions(msg, "{ id = params.id }", "omit where", "{ all = true }")
  end)

  it("a login-shaped findOne with a missing value raises instead of returning the first row", function()
    local params = {}
    assert.has_error(function() m.Genre:findOne { where = { name = params.name } } end)
  end)

  it("an empty in list still matches nothing (a list, not a missing value)", function()
    assert.same({}, m.Post:findAll { where = { post_id = { ["in"] = {} } } })
    assert.equal(2, m.Post:count { where = { post_id = { notIn = {} } } })
  end)
end)

describe("every-row writes are said explicitly", function()
  local db, m
  before_each(function() db, m = setup() end)
  after_each(function() db:close() end)

  it("update and destroy without where raise, and change nothing", function()
    local before = snapshot(db)
    H.mentions(H.raises(function() return m.Post:update({ text = "x" }, {}) end),
               "Post:update", "missing option 'where'", "{ all = true }")
    H.mentions(H.raises(function() return m.Post:update({ text = "x" }) end), "Post:update")
    H.mentions(H.raises(function() return m.Comment:destroy {} end),
               "Comment:destroy", "missing option 'where'", "{ all = true }")
    H.mentions(H.raises(function() return m.Comment:destroy() end), "Comment:destroy")
    H.mentions(H.raises(function() return m.Comment:destroy { all = "yes" } end), "bad option 'all'")
    H.mentions(H.raises(function() return m.Comment:destroy { all = true, where = { comment_id = 1 } } end),
               "Comment:destroy", "both")
    assert.equal(before, snapshot(db))
  end)

  it("update(values, { all = true }) updates every row", function()
    assert.equal(3, m.Comment:update({ body = "same" }, { all = true }))
    assert.equal(3, m.Comment:count { where = { body = "same" } })
  end)

  it("destroy{ all = true } and Sequelize's destroy{ truncate = true } delete every row", function()
    assert.equal(3, m.Comment:destroy { all = true })
    assert.equal(0, m.Comment:count())
    assert(m.Comment:create { body = "again", post_id = 2 })
    assert.equal(1, m.Comment:destroy { truncate = true })
    assert.equal(0, m.Comment:count())
  end)

  sqlite_it("a multi-row update or destroy is all or nothing under a trigger's RAISE(FAIL) "
    .. "(SQLite's trigger syntax)", function()
    assert(db:exec([[
      CREATE TRIGGER no_c3 BEFORE UPDATE ON comment WHEN NEW.body = 'x' AND OLD.body = 'c3'
      BEGIN SELECT RAISE(FAIL, 'not c3'); END;
      CREATE TRIGGER keep_c3 BEFORE DELETE ON comment WHEN OLD.body = 'c3'
      BEGIN SELECT RAISE(FAIL, 'keep c3'); END;
    ]]))
    local before = snapshot(db)
    local ok, msg = m.Comment:update({ body = "x" }, { all = true })
    assert.is_nil(ok)
    assert.truthy(msg:find("not c3", 1, true))
    assert.equal(before, snapshot(db))
    ok, msg = m.Comment:destroy { where = { post_id = 1 } }
    assert.is_nil(ok)
    assert.truthy(msg:find("keep c3", 1, true))
    assert.equal(before, snapshot(db))
    -- inside a transaction too: the failed statement leaves nothing, the transaction goes on
    assert(db:transaction(function()
      assert.is_nil((m.Comment:destroy { where = { post_id = 1 } }))
      assert.equal(3, m.Comment:count())
      assert(m.Comment:create { body = "c4", post_id = 2 })
    end))
    assert.equal(4, m.Comment:count())
  end)
end)

describe("where details", function()
  local db, m
  before_each(function() db, m = setup() end)
  after_each(function() db:close() end)

  it("junction.null means IS NULL, and ne junction.null IS NOT NULL", function()
    assert(m.Comment:create { body = "orphan" })
    assert.same({ "orphan" }, H.ids(m.Comment:findAll { where = { post_id = junction.null } }, "body"))
    assert.equal(1, m.Comment:count { where = { post_id = { eq = junction.null } } })
    assert.equal(3, m.Comment:count { where = { post_id = { ne = junction.null } } })
    assert.equal(1, m.Comment:destroy { where = { post_id = junction.null } })
  end)

  it("an instance stands for its key, checked like any value of the field", function()
    local unsaved = m.Post:build { text = "unsaved" }
    H.mentions(H.raises(function() return m.Post:findAll { where = { post_id = unsaved } } end),
               "Post:findAll", "post_id", "not saved yet")
    local p = m.Post:build { post_id = math.huge, text = "x" }   -- a key no DATE can be
    H.mentions(H.raises(function() return m.Post:findAll { where = { created_at = p } } end),
               "Post:findAll", "DATE field 'Post.created_at'")
  end)

  it("an instance of another model cannot stand for a model's own key", function()
    local g = assert(m.Genre:findByPk(2))
    H.mentions(H.raises(function() return m.Post:destroy { where = { post_id = g } } end),
               "Post:destroy", "a Genre instance cannot stand for it")
    assert.equal(2, m.Post:count())
    local p = assert(m.Post:findByPk(2))
    assert.equal(1, m.Post:count { where = { post_id = p } })
    assert.equal(1, m.TagPostGenre:count { where = { post_id = p } })
  end)

  it("a field named like an operator is the field; _and, _or and _not stay operators", function()
    local Odd = db:define("Odd", {
      timestamps = false,
      fields = {
        id = { type = T.INTEGER, primaryKey = true },
        ["or"] = { type = T.TEXT }, ["and"] = { type = T.TEXT }, ["not"] = { type = T.TEXT },
      },
    })
    assert(db:sync())
    assert(Odd:create { id = 1, ["or"] = "x", ["and"] = "y", ["not"] = "z" })
    assert(Odd:create { id = 2, ["or"] = "q", ["and"] = "y", ["not"] = "z" })
    assert.same({ 1 }, H.ids(Odd:findAll { where = { ["or"] = "x" } }, "id"))
    assert.same({ 1, 2 }, H.ids(Odd:findAll { where = { ["and"] = "y", ["not"] = "z" } }, "id"))
    assert.same({ 1, 2 }, H.ids(Odd:findAll { where = { _or = { { ["or"] = "x" }, { ["or"] = "q" } } } }, "id"))
    assert.same({ 2 }, H.ids(Odd:findAll { where = { _not = { ["or"] = "x" } } }, "id"))
  end)
end)

describe("reads answer a database failure as nil, message, code", function()
  local db, m
  before_each(function() db, m = setup() end)
  after_each(function() db:close() end)

  it("when eager loading fails (the junction table was dropped)", function()
    assert(db:exec((H.is_pg and "" or "PRAGMA foreign_keys = OFF; ") .. "DROP TABLE tag_post_genre"))
    for _, call in ipairs {
      function() return m.Post:findAll { include = { "Genres" } } end,
      function() return m.Post:findOne { include = { "Genres" } } end,
      function() return m.Post:findByPk(1, { include = { "Genres" } }) end,
      function() return m.Genre:findAll { include = { Posts = { include = { "Comments" } } } } end,
    } do
      local ok, msg, code = call()
      assert.is_nil(ok)
      assert.is_string(msg)
      assert.truthy(msg:find("tag_post_genre", 1, true), msg)
      assert.equal(1, code)
    end
  end)

  it("and a missing table says to run db:sync()", function()
    local Later = db:define("Later", { fields = { id = { type = T.INTEGER, primaryKey = true } } })
    local ok, msg, code = Later:findAll()
    assert.is_nil(ok)
    assert.equal(1, code)
    H.mentions(msg, H.is_pg and 'relation "Later" does not exist' or "no such table", "db:sync()")
  end)
end)

describe("includes by name or by model", function()
  local db, m
  before_each(function() db, m = setup() end)
  after_each(function() db:close() end)

  it("an unknown include names the associations that exist", function()
    H.mentions(H.raises(function() return m.Post:findAll { include = { "Genre" } } end),
               "Post:findAll", "bad include 'Genre'", "it has Comments, GenrePost, Genres, GenresPosts")
  end)

  it("include = { Genre } (the model, Sequelize's habit) loads the one association to it", function()
    local posts = m.Post:findAll { include = { m.Genre }, order = { "post_id" } }
    assert.same({ 1, 2, 3 }, H.ids(posts[1].Genres, "genre_id"))
    posts = m.Post:findAll { include = { { association = m.Genre, where = { name = "b" } } }, order = { "post_id" } }
    assert.same({ 2 }, H.ids(posts[1].Genres, "genre_id"))
    H.mentions(H.raises(function() return m.Genre:findAll { include = { m.Comment } } end),
               "Genre:findAll", "no association to Comment", "it has PostGenre, Posts, PostsGenres")
  end)
end)

describe("option tables are read raw", function()
  local db, m
  before_each(function() db, m = setup() end)
  after_each(function() if db then db:close() end end)

  it("a metatable on an options table never runs during a call", function()
    local ran = 0
    local function hostile()
      return setmetatable({}, { __index = function()
        ran = ran + 1
        db:close()
        error("__index ran")
      end })
    end
    local opts = hostile()
    rawset(opts, "where", { text = "one" })
    assert.equal(1, #m.Post:findAll(opts))
    assert.equal(1, m.Post:count(opts))
    assert.truthy(m.Post:findOne(opts))
    local upd = hostile()
    rawset(upd, "where", { post_id = 2 })
    assert.equal(1, m.Post:update({ text = "2" }, upd))
    local inc = hostile()
    rawset(inc, "include", { Genres = hostile() })
    assert.equal(2, #m.Post:findAll(inc))
    assert.equal(0, ran)
    -- an inherited where is not a where: all rows, not the inherited filter
    local inherits = setmetatable({}, { __index = { where = { text = "one" } } })
    assert.equal(2, #m.Post:findAll(inherits))
  end)
end)

describe("where lists", function()
  local db, Item
  before_each(function()
    db = H.open()
    Item = db:define("Item", { timestamps = false, fields = {
      id = { type = T.INTEGER, primaryKey = true }, sku = { type = T.TEXT }, n = { type = T.INTEGER } } })
    assert(db:sync())
    for i = 1, 40 do assert(Item:create { id = i, sku = tostring(i), n = i }) end
  end)
  after_each(function() db:close() end)

  it("compare values as the field stores them, in short and long lists alike", function()
    for _, len in ipairs { 2, 32, 33, 40 } do
      local nums, strs = {}, {}
      for i = 1, len do nums[i], strs[i] = i, tostring(i) end
      assert.equal(len, Item:count { where = { sku = nums } }, len)
      assert.equal(len, Item:count { where = { sku = { ["in"] = nums } } }, len)
      assert.equal(40 - len, Item:count { where = { sku = { notIn = nums } } }, len)
      assert.equal(len, Item:count { where = { n = strs } }, len)
      assert.equal(40 - len, Item:count { where = { n = { notIn = strs } } }, len)
    end
    assert.equal(0, Item:destroy { where = { sku = { notIn = (function()
      local t = {} for i = 1, 40 do t[i] = i end return t end)() } } })
    assert.equal(40, Item:count())
  end)

  it("with a key outside 1..n, or values mixed with operators, raise and change nothing", function()
    local keep = { 1 }
    keep[3] = 3
    H.mentions(H.raises(function() return Item:destroy { where = { id = { notIn = keep } } } end),
               "Item:destroy", "notIn expects a list")
    H.mentions(H.raises(function() return Item:destroy { where = { id = keep } } end), "Item:destroy")
    H.mentions(H.raises(function() return Item:destroy { where = { id = { 1, 2, 3, ne = 2 } } } end),
               "Item:destroy", "mixed")
    local c = { { id = { gte = 1 } } }
    c.extra = { sku = "none" }
    H.mentions(H.raises(function() return Item:destroy { where = { _and = c } } end),
               "Item:destroy", "'and' expects a list")
    assert.equal(40, Item:count())
  end)

  it("and/or take Sequelize's object form: { a = 1, b = 2 }", function()
    assert.equal(1, Item:count { where = { _and = { sku = "3", n = 3 } } })
    assert.equal(0, Item:count { where = { _and = { sku = "3", n = 4 } } })
    assert.equal(2, Item:count { where = { _or = { sku = "3", n = 4 } } })
  end)
end)

describe("an include's where is checked before the parent query runs", function()
  it("with no parent rows, on a to-one include, and nested", function()
    local db, m = setup()
    assert(m.Comment:destroy { all = true })
    assert(m.Post:destroy { all = true })
    H.mentions(H.raises(function() return m.Post:findAll { include = { Genres = { where = {} } } } end),
               "Post:findAll", "where")
    H.mentions(H.raises(function() return m.TagPostGenre:findAll { include = { Post = { where = {} } } } end),
               "TagPostGenre:findAll", "where")
    H.mentions(H.raises(function()
      return m.Genre:findAll { include = { Posts = { include = { Comments = { where = { body = nil } } } } } }
    end), "Genre:findAll", "where")
    H.mentions(H.raises(function() return m.Genre:findAll { include = { Posts = { where = { nope = 1 } } } } end),
               "Genre:findAll", "nope")
    db:close()
  end)
end)
