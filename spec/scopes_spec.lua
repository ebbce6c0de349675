-- Scopes: defaultScope and named scopes in db:define, Model:scope and
-- Model:unscoped (lua/junction/scopes.lua).
local H = require "spec.helper"
local T = H.T

local function titles(rows)
  local t = {}
  for i, r in ipairs(rows) do t[i] = r.title end
  return t
end

-- Post with a default scope (published), named scopes, and 5 rows:
-- p1..p5, views 5..25, published when odd.
local function posts(extra)
  local db = H.open()
  local spec = {
    fields = { title = { type = T.TEXT }, views = { type = T.INTEGER }, published = { type = T.BOOLEAN } },
    defaultScope = { where = { published = true } },
    scopes = {
      popular = { where = { views = { gte = 15 } }, order = { { "views", "DESC" } } },
      first2 = { order = "id", limit = 2 },
      titled = { attributes = { "title" } },
      top = function(n) return { order = { { "views", "DESC" } }, limit = n } end,
      above = function(n) return { where = { views = { gt = n } } } end,
    },
  }
  for k, v in pairs(extra or {}) do spec[k] = v end
  local Post = db:define("Post", spec)
  assert(db:sync())
  for i = 1, 5 do assert(Post:create { title = "p" .. i, views = i * 5, published = i % 2 == 1 }) end
  return db, Post
end

describe("scopes", function()
  it("the default scope applies to findAll, findOne, findByPk, count and findAndCountAll", function()
    local _, Post = posts()
    assert.are.same({ "p1", "p3", "p5" }, titles(Post:findAll { order = "id" }))
    assert.are.equal(3, Post:count())
    assert.are.equal("p3", Post:findOne { where = { views = 15 } }.title)
    assert.is_nil(Post:findOne { where = { views = 10 } })
    assert.is_nil(Post:findByPk(2))
    assert.are.equal("p3", Post:findByPk(3).title)
    local r = Post:findAndCountAll { limit = 1, order = "id" }
    assert.are.equal(3, r.count)
    assert.are.same({ "p1" }, titles(r.rows))
    assert.are.equal(3, #Post:find_all())
  end)

  it("a where given to a call is ANDed with the scope's", function()
    local _, Post = posts()
    assert.are.same({ "p3", "p5" }, titles(Post:findAll { where = { views = { gt = 5 } }, order = "id" }))
    assert.are.equal(0, Post:count { where = { views = 10 } })
  end)

  it("unscoped reads every row", function()
    local _, Post = posts()
    assert.are.equal(5, Post:unscoped():count())
    assert.are.equal("p2", Post:unscoped():findByPk(2).title)
    assert.are.same({ "p1", "p2" }, titles(Post:unscoped():findAll { order = "id", limit = 2 }))
  end)

  it("a named scope replaces the default scope, as in Sequelize; defaultScope names it", function()
    local _, Post = posts()
    assert.are.same({ "p5", "p4", "p3" }, titles(Post:scope("popular"):findAll()))
    assert.are.same({ "p5", "p3" }, titles(Post:scope("defaultScope", "popular"):findAll()))
    assert.are.equal(2, Post:scope("defaultScope", "popular"):count())
  end)

  it("several scopes merge: where ANDed, the later scope wins for the other options", function()
    local _, Post = posts()
    -- popular orders by views DESC, first2 by id with limit 2: first2's order wins
    assert.are.same({ "p3", "p4" }, titles(Post:scope("popular", "first2"):findAll()))
    assert.are.same({ "p5", "p4" }, titles(Post:scope("first2", "popular"):findAll()))
    assert.are.same({ "p4", "p5" }, titles(Post:scope("popular", { "above", 15 }, "first2"):findAll()))
  end)

  it("a call's options win over the scope's, except where", function()
    local _, Post = posts()
    assert.are.same({ "p5" }, titles(Post:scope("first2"):findAll { order = { { "id", "DESC" } }, limit = 1 }))
    local rows = Post:scope("titled"):findAll { order = "id" }
    assert.are.equal("p1", rows[1].title)
    assert.is_nil(rows[1].views)
  end)

  it("a function scope takes arguments", function()
    local _, Post = posts()
    assert.are.same({ "p5", "p4" }, titles(Post:scope("top", 2):findAll()))
    assert.are.same({ "p4", "p5" }, titles(Post:scope({ "above", 15 }):findAll { order = "id" }))
    assert.are.equal(2, Post:scope("above", 15):count())
  end)

  it("update and destroy apply the scope; all = true means every row of the scope", function()
    local db, Post = posts()
    assert.are.equal(2, Post:scope("above", 15):update({ title = "big" }, { all = true }))
    assert.are.equal(2, db:query("SELECT count(*) AS n FROM \"Post\" WHERE title = 'big'")[1].n)
    assert.are.equal(3, Post:update({ views = 0 }, { all = true }))   -- the default scope: published rows
    assert.are.equal(3, db:query("SELECT count(*) AS n FROM \"Post\" WHERE views = 0")[1].n)
    assert.are.equal(1, Post:destroy { where = { title = "p3" } })
    assert.are.equal(0, Post:destroy { where = { title = "p2" } })   -- not published: not in scope
    assert.are.equal(2, Post:destroy { all = true })
    assert.are.equal(2, Post:unscoped():count())
  end)

  it("an empty where stays misuse, scoped or not", function()
    local _, Post = posts()
    assert.error_matches(function() return Post:findAll { where = {} } end, "Post:findAll: bad where", 1, true)
    assert.error_matches(function() return Post:scope("popular"):count { where = { views = nil } } end,
      "Post:count: bad where", 1, true)
    assert.error_matches(function() return Post:update({ views = 1 }, {}) end,
      "Post:update: missing option 'where'", 1, true)
    assert.error_matches(function() return Post:scope("popular"):destroy {} end,
      "Post:destroy: missing option 'where'", 1, true)
    assert.error_matches(function() return Post:destroy { where = { id = 1 }, all = true } end,
      "Post:destroy: bad options (both 'where' and every row: say one)", 1, true)
  end)

  it("a scope name that is no scope raises, naming the scopes there are", function()
    local _, Post = posts()
    assert.error_matches(function() return Post:scope("nope") end,
      "Post:scope: bad argument #1 (no scope 'nope'; scopes: above, first2, popular, titled, top)", 1, true)
    assert.error_matches(function() return Post:scope() end, "Post:scope: bad argument #1", 1, true)
    assert.error_matches(function() return Post:scope(7) end, "Post:scope: bad argument #1", 1, true)
    assert.error_matches(function() return Post:findAll { limt = 1 } end, "Post:findAll: bad option 'limt'", 1, true)
  end)

  it("bad scope declarations raise at define", function()
    local db = H.open()
    local f = { t = { type = T.TEXT } }
    assert.error_matches(function() db:define("A", { fields = f, defaultScope = { limt = 1 } }) end,
      "db:define: A: bad option 'defaultScope' (unknown key 'limt'", 1, true)
    assert.error_matches(function() db:define("A", { fields = f, defaultScope = { where = {} } }) end,
      "db:define: A: bad option 'defaultScope' (its where is empty", 1, true)
    assert.error_matches(function() db:define("A", { fields = f, scopes = { x = 1 } }) end,
      "db:define: A: bad option 'scopes.x' (table expected, got number)", 1, true)
    assert.error_matches(function() db:define("A", { fields = f, scopes = 1 }) end,
      "db:define: A: bad option 'scopes'", 1, true)
    local A = db:define("A", { fields = f, scopes = { bad = function() return { nope = 1 } end } })
    assert.error_matches(function() return A:scope("bad") end,
      "A:scope: scope 'bad' returned a bad scope (unknown key 'nope'", 1, true)
  end)

  it("a scoped model answers the model's other methods and says what it is", function()
    local _, Post = posts()
    local s = Post:scope("popular")
    assert.are.equal("Post", s.name)
    assert.are.equal("id", s.primaryKey)
    assert.are.equal("junction.Model Post (scope: popular)", tostring(s))
    local p = assert(s:create { title = "new", views = 1, published = true })
    assert.are.equal("new", p.title)
    assert.error_matches(function() s.x = 1 end, "Post: cannot set 'x' on a scoped model", 1, true)
  end)

  it("paginated pages through the scoped rows", function()
    local _, Post = posts()
    local pages = Post:scope("above", 5):paginated { per_page = 3 }
    assert.are.equal(4, pages:totalItems())
    assert.are.equal(2, pages:numPages())
    assert.are.same({ "p5" }, titles(pages:getPage(2)))
    local pp = Post:paginated { per_page = 2 }
    assert.are.equal(3, pp:totalItems())
  end)

  it("a scope with include eager-loads", function()
    local db = H.open()
    local Author = db:define("Author", { fields = { name = { type = T.TEXT } },
                                         scopes = { withBooks = { include = { "Books" } } } })
    local Book = db:define("Book", { fields = { title = { type = T.TEXT }, author_id = { type = T.INTEGER } } })
    db:associate { Author = { { hasMany = "Book", foreignKey = "author_id", as = "Books" } } }
    assert(db:sync())
    local a = assert(Author:create { name = "a" })
    assert(Book:create { title = "b", author_id = a.id })
    local rows = Author:scope("withBooks"):findAll()
    assert.are.equal(1, #rows[1].Books)
    assert.is_nil(Author:findAll()[1].Books)
  end)

  it("a paranoid model with scopes that refer to it is collected with its connection", function()
    local weak = setmetatable({}, { __mode = "v" })
    local function make()
      local db = H.open()
      local Post
      Post = db:define("Post", {
        fields = { title = { type = T.TEXT } }, paranoid = true,
        defaultScope = { order = "id" },
        scopes = { same = function() return { where = { id = { ["in"] = { Post.name == "Post" and 1 or 2 } } } } end },
      })
      function Post.instance.shout(p) return p.title:upper() end
      function Post.summary() return Post.name end
      assert(db:sync())
      assert(Post:create { title = "x" })
      weak.rows = Post:scope("same"):findAll()
      weak.scoped = Post:scope("same")
      weak.model, weak.db = Post, db
      db:close()
    end
    make()
    collectgarbage()
    collectgarbage()
    assert.is_nil(weak.rows)
    assert.is_nil(weak.scoped)
    assert.is_nil(weak.model)
    assert.is_nil(weak.db)
  end)

  it("a misuse raised through a scoped or paranoid model's methods names the caller's line", function()
    local _, Post = posts { paranoid = true }
    local function where(f)
      local ok, err = pcall(f)
      assert.is_false(ok)
      return (tostring(err):match("^([^:]+:%d+): "))
    end
    local here = debug.getinfo(1, "S").short_src .. ":"
    local P = Post:scope("popular")
    local cf = { conflictFields = "x" }
    local line = debug.getinfo(1, "l").currentline
    assert.are.equal(here .. (line + 1), where(function() local r = Post:findAll { limt = 1 }; return r end))
    assert.are.equal(here .. (line + 2), where(function() local r = P:count { x = 1 }; return r end))
    assert.are.equal(here .. (line + 3), where(function() local r = Post:destroy(7); return r end))
    assert.are.equal(here .. (line + 4), where(function() local r = Post:upsert({ id = 1 }, cf); return r end))
    assert.are.equal(here .. (line + 5), where(function() local r = Post:bulkCreate(7, {}); return r end))
    assert.are.equal(here .. (line + 6), where(function() local r = Post:unscoped():findByPk({}); return r end))
  end)

  it("a model without scopes keeps the C methods", function()
    local db = H.open()
    local Plain = db:define("Plain", { fields = { a = { type = T.TEXT } } })
    for _, name in ipairs { "findAll", "findOne", "findByPk", "count" } do
      assert.are.equal("C", debug.getinfo(Plain[name], "S").what, name)
    end
    -- destroy is the one every model shares (junction.hooks: it goes to C for a model without hooks)
    assert.are.equal(require("junction.core").Model.destroy, Plain.destroy)
  end)
end)

describe("examples/scopes_paranoid.lua", function()
  it("runs, printing what its comments say", function()
    local out = {}
    local env = setmetatable({ print = function(...)
      local t = { n = select("#", ...), ... }
      for i = 1, t.n do t[i] = tostring(t[i]) end
      out[#out + 1] = table.concat(t, "\t", 1, t.n)
    end }, { __index = _G })
    local chunk = assert(loadfile("examples/scopes_paranoid.lua"))
    if setfenv then setfenv(chunk, env) else chunk = assert(loadfile("examples/scopes_paranoid.lua", "t", env)) end
    chunk()
    assert.are.same({
      "Soft delete (180 views)", "2\t360", "160\t3", "2\t3", "1\t2", "2", "2\t3\ttrue", "3", "1\t2", "3\t0",
      "nil\tPost:findByPk: no row found\t12",
    }, out)
  end)
end)
