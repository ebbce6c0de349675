-- Raw fragments (junction.literal, junction.fn, junction.col), group and
-- having, ordering by an association's column and NULLS FIRST/LAST, and the
-- top-N rows per parent of an include.
local H = require "spec.helper"
local T = H.T
local junction = H.junction or require "junction"
local fn, col, literal = junction.fn, junction.col, junction.literal

local function posts(spec)
  local db = H.open()
  local s = { fields = { title = { type = T.TEXT }, views = { type = T.INTEGER }, cat = { type = T.TEXT } } }
  for k, v in pairs(spec or {}) do s[k] = v end
  local Post = db:define("Post", s)
  assert(db:sync())
  local rows = { { "Alpha", 1, "odd" }, { "beta", 2, "even" }, { "Gamma", 3, "odd" }, { "delta", 4, "even" },
                 { "Eps", 5, "odd" } }
  for _, r in ipairs(rows) do assert(Post:create { title = r[1], views = r[2], cat = r[3] }) end
  return db, Post
end

local function titles(list)
  local out = {}
  for i, p in ipairs(list) do out[i] = p.title end
  return out
end

-- The seed's blog: posts 1..4, genres rock jazz pop folk metal; post 1 has
-- all five, post 2 has jazz and folk, post 3 has pop, post 4 none.
local function blog()
  local db = H.open()
  local m = H.blog(db)
  H.genres(m.Genre)
  for i = 1, 4 do assert(m.Post:create { text = "post " .. i }) end
  assert(m.Post:findByPk(1):setGenres { 1, 2, 3, 4, 5 })
  assert(m.Post:findByPk(2):setGenres { 2, 4 })
  assert(m.Post:findByPk(3):setGenres { 3 })
  return db, m.Post, m.Genre
end

local function names(list)
  local out = {}
  for i, g in ipairs(list) do out[i] = g.name end
  return out
end

describe("raw fragments", function()
  it("junction.fn as a where key compares the function of a column", function()
    local _, Post = posts()
    local r = assert(Post:findAll { where = { [fn("lower", col("title"))] = "gamma" } })
    assert.are.same({ "Gamma" }, titles(r))
    r = assert(Post:findAll { where = { [fn("lower", col("title"))] = { like = "%a", ne = "delta" } },
                              order = "id" })
    assert.are.same({ "Alpha", "beta", "Gamma" }, titles(r))
  end)

  it("a fragment as a where value compares with a column or an expression, values bound", function()
    local sql = {}
    local db = H.open { log = function(s) sql[#sql + 1] = s end }
    local Post = db:define("Post", { fields = { a = { type = T.INTEGER }, b = { type = T.INTEGER } } })
    assert(db:sync())
    assert(Post:create { a = 1, b = 2 })
    assert(Post:create { a = 5, b = 2 })
    assert(Post:create { a = 4, b = 2 })
    assert.are.same({ 2 }, H.ids(assert(Post:findAll { where = { a = { gt = col("b"), ne = 4 } } }), "id"))
    sql = {}
    assert.are.same({ 2, 3 }, H.ids(assert(Post:findAll { where = { a = { gte = literal("? + 3", 1) } } }), "id"))
    assert.matches('"a" >= ? + 3', sql[1], 1, true)
  end)

  it("attributes take { junction.fn(...), alias }: the value reads as a field and in toTable", function()
    local _, Post = posts()
    local r = assert(Post:findAll { attributes = { "title", { fn("upper", col("title")), "shout" } }, order = "id" })
    assert.are.equal(5, #r)
    assert.are.equal("ALPHA", r[1].shout)
    assert.are.equal("Alpha", r[1].title)
    assert.are.equal(1, r[1].id)   -- the key is read: the rows are rows
    assert.are.equal("ALPHA", r[1]:toTable().shout)
    -- an alias that is a field fills the field
    r = assert(Post:findAll { attributes = { { fn("lower", col("title")), "title" } }, order = "id" })
    assert.are.equal("alpha", r[1].title)
  end)

  it("junction.literal is the explicit escape hatch: its text goes in as it is, its ? bound", function()
    local _, Post = posts()
    local r = assert(Post:findAll { where = { [literal("views % ?", 2)] = 0 }, order = literal("views DESC") })
    assert.are.same({ "delta", "beta" }, titles(r))
    assert.are.equal(5, #assert(Post:findAll { order = literal("random()") }))
  end)

  it("misuse raises: no identifier, nil arguments, ? and values that disagree, no alias, no field", function()
    local _, Post = posts()
    assert.error_matches(function() return fn("lower); drop table post; --", 1) end,
      "junction.fn: bad argument #1 ('lower); drop table post; --' is not a function name", 1, true)
    assert.error_matches(function() return fn("lower", nil) end, "a SQL NULL is junction.null", 1, true)
    assert.error_matches(function() return fn("lower", {}) end, "got table", 1, true)
    assert.error_matches(function() return literal("a = ?") end, "1 ? placeholder, 0 values given", 1, true)
    assert.error_matches(function() return literal("a = '?'", 1) end, "0 ? placeholders, 1 value given", 1, true)
    assert.error_matches(function() return col("a.b.c") end, "junction.col: bad argument #1", 1, true)
    assert.error_matches(function() return Post:findAll { attributes = { fn("count", col("id")) } } end,
      "Post:findAll: bad attribute (a junction.fn needs an alias", 1, true)
    assert.error_matches(function() return Post:findAll { where = { [fn("lower", col("nope"))] = "a" } } end,
      "Post:findAll: bad column 'nope' (no such field in Post)", 1, true)
    assert.error_matches(function() return Post:findAll { attributes = { { fn("count", col("id")), "save" } } } end,
      "bad attribute alias 'save' (a method or an association of Post)", 1, true)
    assert.error_matches(function() return Post:count { where = { [col("Genres.name")] = "a" } } end,
      "a column of an association is taken", 1, true)
  end)
end)

describe("group and having", function()
  it("group with aggregates gives one instance per group, the aggregates read by their alias", function()
    local _, Post = posts()
    local r = assert(Post:findAll {
      attributes = { "cat", { fn("count", col("id")), "n" }, { fn("sum", col("views")), "total" } },
      group = "cat", order = "cat",
    })
    assert.are.equal(2, #r)
    assert.are.same({ "even", 2, 6 }, { r[1].cat, r[1].n, r[1].total })
    assert.are.same({ "odd", 3, 9 }, { r[2].cat, r[2].n, r[2].total })
    assert.is_nil(r[1].id)   -- a group is no row: no key is added
    assert.are.same({ cat = "odd", n = 3, total = 9 }, r[2]:toTable())
  end)

  it("having filters groups, by an alias of the attributes or by an expression; order takes the alias", function()
    local _, Post = posts()
    local opts = {
      attributes = { "cat", { fn("count", col("id")), "n" } }, group = { "cat" },
      having = { n = { gt = 2 } },
    }
    local r = assert(Post:findAll(opts))
    assert.are.same({ "odd" }, { r[1].cat })
    assert.are.equal(1, #r)
    r = assert(Post:findAll { attributes = { "cat", { fn("max", col("views")), "top" } }, group = "cat",
                              having = { [fn("min", col("views"))] = { gte = 1 } }, order = { { "top", "DESC" } } })
    assert.are.same({ "odd", "even" }, { r[1].cat, r[2].cat })
    assert.are.same({ 5, 4 }, { r[1].top, r[2].top })
  end)

  it("misuse raises: having without group, group with include, an unknown group field", function()
    local _, Post = posts()
    assert.error_matches(function() return Post:findAll { having = { views = 1 } } end,
      "Post:findAll: bad option 'having' (it filters groups: give 'group' too)", 1, true)
    assert.error_matches(function() return Post:findAll { group = "nope" } end,
      "Post:findAll: bad group field 'nope' (no such field in Post)", 1, true)
    assert.error_matches(function() return Post:findAll { group = {} } end, "bad option 'group'", 1, true)
    assert.error_matches(function() return Post:findAndCountAll { group = "cat" } end,
      "Post:findAndCountAll: bad option 'group' (its count is of rows, not groups", 1, true)
    local _, BPost = blog()
    assert.error_matches(function() return BPost:findAll { group = "text", include = { "Genres" } } end,
      "bad option 'include' (a query that groups", 1, true)
  end)
end)

describe("order", function()
  it("by an included association's column: parents by their first (ASC) or last (DESC) value", function()
    local _, Post = blog()
    -- first genre names: 1 folk, 2 folk, 3 pop, 4 none (NULL first ascending)
    local r = assert(Post:findAll { order = { { "Genres", "name", "ASC" }, { "post_id", "DESC" } } })
    assert.are.same({ 4, 2, 1, 3 }, { r[1].post_id, r[2].post_id, r[3].post_id, r[4].post_id })
    -- last names: 1 rock, 2 jazz, 3 pop, 4 none (NULL last descending)
    r = assert(Post:findAll { order = { { col("Genres.name"), "DESC" } }, include = { "Genres" } })
    assert.are.same({ 1, 3, 2, 4 }, { r[1].post_id, r[2].post_id, r[3].post_id, r[4].post_id })
    assert.are.equal(5, #r[1].Genres)
  end)

  it("an association's column in the order reads the rows the include reads (its where)", function()
    local _, Post = blog()
    -- first names among the genres other than folk: 1 jazz, 2 jazz, 3 pop
    local r = assert(Post:findAll { include = { Genres = { where = { name = { ne = "folk" } } } },
                                    order = { { "Genres", "name" }, { "post_id", "DESC" } } })
    assert.are.same({ 2, 1, 3 }, { r[1].post_id, r[2].post_id, r[3].post_id })
    r = assert(Post:findAll { include = { Genres = { where = { name = { ne = "jazz" } } } },
                              order = { { "Genres", "name" }, "post_id" } })
    assert.are.same({ 1, 2, 3 }, { r[1].post_id, r[2].post_id, r[3].post_id })   -- folk, folk, pop
  end)

  it("a where on an association's column reads the parents with such a row", function()
    local _, Post = blog()
    local r = assert(Post:findAll { where = { [col("Genres.name")] = { ["in"] = { "jazz", "pop" } } },
                                    order = "post_id" })
    assert.are.same({ 1, 2, 3 }, H.ids(r, "post_id"))
    r = assert(Post:findAll { where = { [col("Genres.name")] = "folk", post_id = { gt = 1 } } })
    assert.are.same({ 2 }, H.ids(r, "post_id"))
  end)

  it("NULLs sort first ascending and last descending on every engine; NULLS FIRST/LAST say otherwise", function()
    local _, Post = posts()
    assert(Post:update({ cat = junction.null }, { where = { id = { ["in"] = { 2, 3 } } } }))
    local function cats(order)
      local out = {}
      for i, p in ipairs(assert(Post:findAll { order = order })) do out[i] = p.cat or "-" end
      return table.concat(out, " ")
    end
    assert.are.equal("- - even odd odd", cats { "cat", "id" })
    assert.are.equal("odd odd even - -", cats { { "cat", "DESC" }, "id" })
    assert.are.equal("even odd odd - -", cats { { "cat", "ASC", "NULLS LAST" }, "id" })
    assert.are.equal("- - odd odd even", cats { { "cat", "DESC NULLS FIRST" }, "id" })
    assert.are.equal("- - odd odd even", cats { "cat DESC NULLS FIRST", "id" })
    assert.are.equal("even odd odd - -", cats { { "cat", "NULLS LAST" }, "id" })
    assert.error_matches(function() return Post:findAll { order = { { "cat", "ASC", "NULLS NEVER" } } } end,
      "bad order direction 'NULLS NEVER'", 1, true)
  end)

  it("misuse raises: an unknown association or field in an order term", function()
    local _, Post = blog()
    assert.error_matches(function() return Post:findAll { order = { { "Nope", "name" } } } end,
      "Post:findAll: bad column of 'Nope' (Post has no association of that name; it has GenrePost, Genres", 1, true)
    assert.error_matches(function() return Post:findAll { order = { { "Genres", "nope" } } } end,
      "bad order field 'nope' (no such field in Genre)", 1, true)
  end)
end)

describe("top-N per parent", function()
  it("an include with limit gives each parent its first rows, in one statement for the level", function()
    local _, Post = blog()
    local r = assert(Post:findAll { include = { Genres = { limit = 2, order = { { "name" } } } }, order = "post_id" })
    assert.are.same({ "folk", "jazz" }, names(r[1].Genres))
    assert.are.same({ "folk", "jazz" }, names(r[2].Genres))
    assert.are.same({ "pop" }, names(r[3].Genres))
    assert.are.same({}, names(r[4].Genres))
    r = assert(Post:findAll { include = { Genres = { limit = 2, offset = 1, order = { { "name", "DESC" } } } },
                              order = "post_id" })
    assert.are.same({ "pop", "metal" }, names(r[1].Genres))
    assert.are.same({ "folk" }, names(r[2].Genres))
    assert.are.same({}, names(r[3].Genres))
  end)

  it("one statement per level whatever the number of parents", function()
    local log, entries = H.recorder()
    local db = H.open { log = log }
    local m = H.blog(db)
    H.genres(m.Genre)
    for i = 1, 6 do assert(m.Post:create { text = "p" .. i }):setGenres { 1, 2, 3, i % 5 + 1 } end
    local n0 = #entries
    local r = assert(m.Post:findAll { include = { Genres = { limit = 1, order = { { "genre_id", "DESC" } },
                                                             include = { Posts = { limit = 2 } } } } })
    assert.are.equal(3, #entries - n0)
    assert.are.equal(6, #r)
    for _, p in ipairs(r) do
      assert.are.equal(1, #p.Genres)
      assert.is_true(#p.Genres[1].Posts <= 2)
    end
  end)

  it("works for hasMany, and misuse raises for a bad limit", function()
    local db = H.open()
    local Author = db:define("Author", { fields = { name = { type = T.TEXT } } })
    local Book = db:define("Book", { fields = { title = { type = T.TEXT }, author_id = { type = T.INTEGER } } })
    assert(db:associate { Author = { { hasMany = "Book", foreignKey = "author_id", as = "Books" } } })
    assert(db:sync())
    for i = 1, 2 do
      local a = assert(Author:create { name = "a" .. i })
      for j = 1, 4 do assert(Book:create { title = "b" .. i .. j, author_id = a.id }) end
    end
    local r = assert(Author:findAll { include = { Books = { limit = 3, order = { { "title", "DESC" } } } },
                                      order = "id" })
    assert.are.same({ "b14", "b13", "b12" }, titles(r[1].Books))
    assert.are.same({ "b24", "b23", "b22" }, titles(r[2].Books))
    r = assert(Author:findAll { include = { Books = { offset = 3 } }, order = "id" })
    assert.are.same({ "b14" }, titles(r[1].Books))
    assert.error_matches(function() return Author:findAll { include = { Books = { limit = -1 } } } end,
      "bad include option 'limit' (non-negative integer expected)", 1, true)
  end)
end)

describe("examples/query_tools.lua", function()
  it("runs on the seed's blog, printing what its comments say", function()
    local out = {}
    local env = setmetatable({ print = function(...)
      local t = { n = select("#", ...), ... }
      for i = 1, t.n do t[i] = tostring(t[i]) end
      out[#out + 1] = table.concat(t, "\t", 1, t.n)
    end, arg = { [0] = "examples/query_tools.lua" } }, { __index = _G })
    local chunk = assert(loadfile("examples/query_tools.lua"))
    if setfenv then setfenv(chunk, env) else chunk = assert(loadfile("examples/query_tools.lua", "t", env)) end
    chunk()
    assert.are.same({ "1", "2\t2", "3\t2", "4\t2", "4 1 2 3", "1\tdatabases, lua", "2\tdatabases, sqlite",
                      "3\tlua, web", "4\t" }, out)
  end)
end)
