-- The everyday query tools: increment and decrement, sum/max/min/avg,
-- rejectOnEmpty, keyset pagination.
local H = require "spec.helper"
local T = H.T

local function posts(spec)
  local db = H.open()
  local s = { fields = { title = { type = T.TEXT }, views = { type = T.INTEGER }, score = { type = T.REAL } } }
  for k, v in pairs(spec or {}) do s[k] = v end
  local Post = db:define("Post", s)
  assert(db:sync())
  for i = 1, 4 do assert(Post:create { title = "p" .. i, views = i, score = i / 2 }) end
  return db, Post
end

describe("increment and decrement", function()
  it("Model:increment adds in one UPDATE ... SET x = x + ? and says how many rows changed", function()
    local sql = {}
    local db = H.open { log = function(s) sql[#sql + 1] = s end }
    local Post = db:define("Post", { fields = { views = { type = T.INTEGER } }, timestamps = false })
    assert(db:sync())
    assert(Post:create { views = 1 })
    assert(Post:create { views = 5 })
    sql = {}
    assert.are.equal(1, Post:increment("views", 10, { where = { id = 1 } }))
    assert.are.same({ H.is_pg and 'UPDATE "Post" SET "views" = "views" + ? WHERE ("id" = ?)'
      or 'UPDATE "Post" SET "views" = CASE WHEN typeof("views" + ?) = \'real\' AND typeof("views") = \'integer\' ' ..
         'THEN abs(-9223372036854775807 - 1) ELSE "views" + ? END WHERE ("id" = ?)' }, sql)
    assert.are.equal(11, Post:findByPk(1).views)
    assert.are.equal(2, Post:increment("views", { all = true }))   -- by 1
    assert.are.equal(12, Post:findByPk(1).views)
    assert.are.equal(2, Post:decrement("views", 2, { all = true }))
    assert.are.equal(10, Post:findByPk(1).views)
    assert.are.equal(4, Post:findByPk(2).views)
  end)

  it("takes several fields, and sets updatedAt", function()
    local db, Post = posts()
    db:exec([[UPDATE "Post" SET "updatedAt" = '2000-01-01 00:00:00.000']])
    assert.are.equal(1, Post:increment({ views = 2, score = 0.25 }, { where = { title = "p1" } }))
    local p = Post:findByPk(1)
    assert.are.equal(3, p.views)
    assert.are.equal(0.75, p.score)
    assert.are_not.equal("2000-01-01 00:00:00.000", p.updatedAt)
    assert.are.equal("2000-01-01 00:00:00.000", Post:findByPk(2).updatedAt)
  end)

  it("inst:increment and inst:decrement change the row and read it back", function()
    local db, Post = posts()
    local p = Post:findByPk(2)
    db:exec('UPDATE "Post" SET views = 100 WHERE id = 2')   -- changed elsewhere: the addition is atomic
    assert.are.equal(p, p:increment("views", 5))
    assert.are.equal(105, p.views)
    assert.are.equal(p, p:decrement { views = 1, score = 1 })
    assert.are.equal(104, p.views)
    assert.are.equal(0, p.score)
    assert(p:destroy())
  end)

  it("misuse raises: a field that is not numeric, a fractional or infinite amount, no where", function()
    local _, Post = posts()
    assert.error_matches(function() return Post:increment("title", 1, { all = true }) end,
      "Post:increment: bad field 'title' (an INTEGER or REAL field expected)", 1, true)
    assert.error_matches(function() return Post:increment("nope", 1, { all = true }) end,
      "Post:increment: bad field 'nope' (no such field in Post)", 1, true)
    assert.error_matches(function() return Post:increment("views", 1.5, { all = true }) end,
      "Post:increment: bad argument 'by' (a whole number expected for INTEGER field 'views')", 1, true)
    assert.error_matches(function() return Post:increment("score", 1 / 0, { all = true }) end,
      "Post:increment: bad argument 'by' (a finite number expected, got number)", 1, true)
    assert.error_matches(function() return Post:increment("views", "1", { all = true }) end,
      "Post:increment: bad argument 'by' (a finite number expected, got string)", 1, true)
    assert.error_matches(function() return Post:increment("views", 1) end,
      "Post:increment: bad options", 1, true)
    assert.error_matches(function() return Post:increment("views", 1, {}) end,
      "Post:increment: missing option 'where'", 1, true)
    assert.error_matches(function() return Post:decrement("views", 1, { where = {} }) end,
      "Post:decrement: bad where", 1, true)
    assert.error_matches(function() return Post:increment(7) end, "Post:increment: bad argument #1", 1, true)
  end)

  it("a scope and soft delete apply to increment", function()
    local _, Post = posts { paranoid = true, scopes = { big = { where = { views = { gt = 2 } } } } }
    assert(Post:findByPk(4):destroy())
    assert.are.equal(1, Post:scope("big"):increment("views", 10, { all = true }))
    assert.are.equal(13, Post:findByPk(3).views)
    assert.are.equal(4, Post:findByPk(4, { paranoid = false }).views)
  end)
end)

describe("aggregates", function()
  it("sum, max, min and avg over the rows that match", function()
    local _, Post = posts()
    assert.are.equal(10, Post:sum("views"))
    assert.are.equal(7, Post:sum("views", { where = { views = { gt = 2 } } }))
    assert.are.equal(4, Post:max("views"))
    assert.are.equal(1, Post:min("views"))
    assert.are.equal(1.25, Post:avg("score"))
    assert.are.equal("p4", Post:max("title"))
    assert.are.equal("p1", Post:min("title"))
  end)

  it("the sum of an INTEGER field is an integer, and one past 64 bits fails instead of losing digits", function()
    local db, Post = posts()
    if H.has_int then assert.are.equal("integer", math.type(Post:sum("views"))) end
    local big = 4611686018427387904   -- 2^62: two of them are past 2^63 - 1
    assert(Post:findByPk(1):update { views = big })
    assert(Post:findByPk(2):update { views = big })
    local ok, msg, code = Post:sum("views")
    assert.is_nil(ok)
    assert.is_string(msg)
    assert.is_number(code)
    if H.has_int then assert.are.equal(big + 3, Post:sum("views", { where = { id = { 1, 3 } } })) end
    assert(db:query("SELECT 1"))   -- the connection is fine after it
  end)

  it("no row: sum is 0, max, min and avg are nil", function()
    local _, Post = posts()
    local w = { where = { views = 99 } }
    assert.are.equal(0, Post:sum("views", w))
    assert.is_nil(Post:max("views", w))
    assert.is_nil(Post:min("views", w))
    assert.is_nil(Post:avg("views", w))
  end)

  it("a scope and soft delete apply; paranoid = false reads every row", function()
    local _, Post = posts { paranoid = true, defaultScope = { where = { views = { gt = 1 } } } }
    assert(Post:findByPk(4):destroy())
    assert.are.equal(5, Post:sum("views"))
    assert.are.equal(9, Post:sum("views", { paranoid = false }))
    assert.are.equal(6, Post:unscoped():sum("views"))
  end)

  it("misuse raises", function()
    local _, Post = posts()
    assert.error_matches(function() return Post:sum("title") end,
      "Post:sum: bad argument #1 (an INTEGER or REAL field expected, 'title' is not)", 1, true)
    assert.error_matches(function() return Post:avg("nope") end,
      "Post:avg: bad argument #1 (a field of Post expected, got nope)", 1, true)
    assert.error_matches(function() return Post:max("views", { limit = 1 }) end,
      "Post:max: bad option 'limit'", 1, true)
    assert.error_matches(function() return Post:min("views", { where = {} }) end, "Post:min: bad where", 1, true)
  end)

  it("a database failure is returned", function()
    local db, Post = posts()
    db:exec('DROP TABLE "Post"')
    local v, msg, code = Post:sum("views")
    assert.is_nil(v)
    assert.matches(H.no_such_table, msg)
    assert.is_number(code)
  end)
end)

describe("rejectOnEmpty", function()
  it("findOne and findByPk return a failure instead of nil", function()
    local _, Post = posts()
    local r, msg, code = Post:findOne { where = { title = "nope" }, rejectOnEmpty = true }
    assert.is_nil(r)
    assert.are.equal("Post:findOne: no row found", msg)
    assert.are.equal(12, code)
    r, msg, code = Post:findByPk(99, { rejectOnEmpty = "no such post" })
    assert.is_nil(r)
    assert.are.equal("no such post", msg)
    assert.are.equal(12, code)
    assert.are.equal("p1", Post:findByPk(1, { rejectOnEmpty = true }).title)
    assert.are.equal("p2", Post:findOne { where = { views = 2 }, rejectOnEmpty = true }.title)
    assert.is_nil(Post:findOne { where = { title = "nope" }, rejectOnEmpty = false })
    assert.error_matches(function() return Post:findOne { rejectOnEmpty = 1 } end,
      "Post:findOne: bad option 'rejectOnEmpty' (true or a message expected, got number)", 1, true)
  end)

  it("works with a scope and soft delete", function()
    local _, Post = posts { paranoid = true }
    assert(Post:findByPk(1):destroy())
    local r, msg, code = Post:findByPk(1, { rejectOnEmpty = true })
    assert.is_nil(r)
    assert.are.equal("Post:findByPk: no row found", msg)
    assert.are.equal(12, code)
  end)
end)

describe("keyset pagination", function()
  it("getPage(after) gives the items after a key and the key of the next page", function()
    local sql = {}
    local db = H.open { log = function(s) sql[#sql + 1] = s end }
    local Post = db:define("Post", { fields = { title = { type = T.TEXT } } })
    assert(db:sync())
    for i = 1, 7 do assert(Post:create { title = "p" .. i }) end
    local pages = Post:paginated { per_page = 3, keyset = true }
    local items, after = pages:getPage()
    assert.are.same({ 1, 2, 3 }, { items[1].id, items[2].id, items[3].id })
    assert.are.equal(3, after)
    sql = {}
    items, after = pages:getPage(after)
    assert.are.equal(4, items[1].id)
    assert.matches('WHERE %(%("id" > %?%)%) ORDER BY "id" ASC LIMIT', sql[1])
    items, after = pages:getPage(after)
    assert.are.equal(1, #items)
    assert.is_nil(after)
    local seen = {}
    for p in pages:eachItem() do seen[#seen + 1] = p.id end
    assert.are.same({ 1, 2, 3, 4, 5, 6, 7 }, seen)
    assert.are.equal(3, pages:numPages())
  end)

  it("descending, with a where", function()
    local _, Post = posts()
    local pages = Post:paginated { per_page = 2, keyset = { "views", "DESC" }, where = { views = { gt = 1 } } }
    local items, after = pages:getPage()
    assert.are.same({ 4, 3 }, { items[1].views, items[2].views })
    items, after = pages:getPage(after)
    assert.are.same({ 2 }, { items[1].views })
    assert.is_nil(after)
  end)

  it("misuse raises", function()
    local _, Post = posts()
    assert.error_matches(function() return Post:paginated { keyset = "nope" } end,
      "Post:paginated: bad option 'keyset' (no field 'nope' in Post)", 1, true)
    assert.error_matches(function() return Post:paginated { keyset = true, order = "id" } end,
      "Post:paginated: bad options (keyset orders the pages: give no order)", 1, true)
    assert.error_matches(function() return Post:paginated { keyset = { "id", "UP" } } end,
      "Post:paginated: bad option 'keyset' (direction ASC or DESC expected)", 1, true)
    assert.error_matches(function() return Post:paginated { keyset = true }:getPage {} end,
      "Post:paginated:getPage: bad argument #1", 1, true)
  end)
end)
