-- Model:findAndCountAll and Model:paginated (lua/junction/pages.lua).
local H = require "spec.helper"

-- The blog with n posts (title "p1".."pn") and genres a, b, c; post i is
-- linked to genre a when i is even, and to a, b and c when i is 1.
local function blog(n)
  local db = H.open()
  local m = H.blog(db)
  local genres = H.genres(m.Genre, { "a", "b", "c" })
  local list = {}
  for i = 1, n do list[i] = { text = "p" .. i } end
  local posts = assert(m.Post:bulkCreate(list))
  assert(posts[1]:setGenres(genres))
  for i = 2, n, 2 do assert(posts[i]:setGenres { genres[1] }) end
  return db, m, posts
end

describe("findAndCountAll", function()
  it("gives the rows of the page and the count of every match", function()
    local _, m = blog(7)
    local r = assert(m.Post:findAndCountAll { where = { text = { like = "p%" } }, limit = 3, offset = 1,
                                              order = "post_id" })
    assert.are.equal(7, r.count)
    assert.are.equal(3, #r.rows)
    assert.are.equal("p2", r.rows[1].text)
    r = assert(m.Post:find_and_count_all())
    assert.are.equal(7, r.count)
    assert.are.equal(7, #r.rows)
  end)

  it("with an include counts the parents, not the joined rows", function()
    local _, m = blog(7)
    local r = assert(m.Post:findAndCountAll {
      include = { Genres = { where = { name = { ["in"] = { "a", "b" } } }, required = true } },
      limit = 2, order = "post_id",
    })
    assert.are.equal(4, r.count)   -- posts 1, 2, 4, 6 (post 1 has two matching genres)
    assert.are.equal(2, #r.rows)
    assert.are.equal(2, #r.rows[1].Genres)
    r = assert(m.Post:findAndCountAll { include = { "Genres" } })
    assert.are.equal(7, r.count)   -- not required: every post
  end)

  it("returns fail when the table is missing, and raises on misuse", function()
    local db = H.open()
    local Post = db:define("Post", { fields = { text = { type = H.T.TEXT } } })
    local r, msg, code = Post:findAndCountAll()
    assert.is_nil(r)
    assert.matches(H.no_such_table, msg)
    assert.is_number(code)
    assert.has_error(function() Post:findAndCountAll { limt = 1 } end)
    assert.has_error(function() Post:findAndCountAll(5) end,
                     "Post:findAndCountAll: bad options (table expected, got number)")
  end)
end)

describe("paginated", function()
  it("gives pages, their number, the total and every item in order", function()
    local _, m = blog(25)
    local pages = m.Post:paginated { per_page = 10 }
    assert.are.equal(25, pages:totalItems())
    assert.are.equal(3, pages:numPages())
    local p1, p3 = assert(pages:getPage(1)), assert(pages:getPage(3))
    assert.are.equal(10, #p1)
    assert.are.equal("p1", p1[1].text)
    assert.are.equal(5, #p3)
    assert.are.equal("p25", p3[5].text)
    assert.are.same({}, assert(pages:getPage(4)))
    local seen = {}
    for post in pages:eachItem() do seen[#seen + 1] = post.post_id end
    assert.are.equal(25, #seen)
    for i = 1, 25 do assert.are.equal(i, seen[i]) end
  end)

  it("takes where, order and include, and has Lapis's snake_case names and the alias paginate", function()
    local _, m = blog(9)
    local pages = m.Post:paginate { per_page = 2, where = { post_id = { gte = 3 } }, order = { { "post_id", "DESC" } },
                                    include = { "Genres" } }
    assert.are.equal(7, pages:total_items())
    assert.are.equal(4, pages:num_pages())
    local page = assert(pages:get_page(1))
    assert.are.same({ 9, 8 }, { page[1].post_id, page[2].post_id })
    assert.are.equal(1, #page[2].Genres)
    local n = 0
    for _ in pages:each_item() do n = n + 1 end
    assert.are.equal(7, n)
  end)

  it("without items has no page, and an item count that divides evenly has no empty last page", function()
    local _, m = blog(4)
    local none = m.Post:paginated { where = { text = "nope" } }
    assert.are.equal(0, none:numPages())
    for _ in none:eachItem() do error("no item expected") end
    local pages = m.Post:paginated { per_page = 2 }
    assert.are.equal(2, pages:numPages())
    local n = 0
    for _ in pages:eachItem() do n = n + 1 end
    assert.are.equal(4, n)
  end)

  it("raises on misuse", function()
    local _, m = blog(1)
    assert.has_error(function() m.Post:paginated { per_pag = 2 } end,
                     "Post:paginated: bad option 'per_pag' (unknown key)")
    assert.has_error(function() m.Post:paginated { per_page = 0 } end,
                     "Post:paginated: bad option 'per_page' (a whole number from 1 expected, got 0)")
    local pages = m.Post:paginated()
    assert.has_error(function() pages:getPage(0) end,
                     "Post:paginated:getPage: bad argument #1 (a page number from 1 expected, got 0)")
    assert.has_error(function() pages:getPage(1.5) end)
  end)

  it("a database failure is fail from getPage and numPages, and raises from eachItem", function()
    local db = H.open()
    local Post = db:define("Post", { fields = { text = { type = H.T.TEXT } } })
    local pages = Post:paginated()
    local page, msg, code = pages:getPage(1)
    assert.is_nil(page)
    assert.matches(H.no_such_table, msg)
    assert.is_number(code)
    assert.is_nil((pages:numPages()))
    assert.has_error(function() for _ in pages:eachItem() do end end)
  end)
end)
