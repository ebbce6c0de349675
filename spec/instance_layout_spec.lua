-- spec/instance_layout_spec.lua: where an instance keeps its values (HACKING.md,
-- csrc/jn_inst.c "Where an instance keeps its values").  On Lua 5.4 an
-- instance is one userdata whose user values 2.. hold the fields, and whose
-- user value 1 is a table its model's instances share until one of them
-- gets an extra of its own (a loaded association, the junction row, an
-- alias value, a VIRTUAL value); elsewhere one uservalue table.  Whatever
-- the layout, what one instance carries never shows on another.
local H = require "spec.helper"
local T = H.T
local junction = H.junction

local lua54 = _VERSION == "Lua 5.4" and not H.is_jit
local it54 = lua54 and it or pending

-- user value 1 of an instance (5.4: debug.getuservalue(u, 1))
local function uv1(x) return (debug.getuservalue(x, 1)) end

-- the keys of a table, sorted as strings
local function keys(t)
  local out = {}
  for k in pairs(t) do out[#out + 1] = tostring(k) end
  table.sort(out)
  return out
end

describe("an instance's values", function()
  local db, m, post
  before_each(function()
    db = H.open()
    m = H.blog(db)
    H.genres(m.Genre)
    post = assert(m.Post:create { text = "one" })
    assert(m.Post:create { text = "two" })
    assert(post:setGenres({ 1, 2, 3 }))
  end)
  after_each(function() db:close() end)

  describe("on Lua 5.4", function()
    it54("two rows of one read share user value 1, a table holding only the model", function()
      local list = assert(m.Genre:findAll { order = "genre_id" })
      local a, b = list[1], list[2]
      assert.equal("table", type(uv1(a)))
      assert.is_true(rawequal(uv1(a), uv1(b)))
      assert.same({ "1" }, keys(uv1(a)))
      assert.is_true(rawequal(m.Genre, uv1(a)[1]))
      -- the fields are user values 2..: no table per row
      assert.equal(a.genre_id, (debug.getuservalue(a, 2)))
      assert.equal(a.name, (debug.getuservalue(a, 3)))
      -- genre_id, name, created_at, updated_at: user values 2 .. 5, and no 6th
      assert.equal(2, select("#", debug.getuservalue(a, 5)))
      assert.equal(1, select("#", debug.getuservalue(a, 6)))
    end)

    it54("an instance gets a table of its own with its first extra; the others keep sharing", function()
      local list = assert(m.Genre:findAll { order = "genre_id" })
      local a, b, c = list[1], list[2], list[3]
      local shared = uv1(a)
      a.TagPostGenre = { note = "x" }
      assert.is_false(rawequal(shared, uv1(a)))
      assert.is_true(rawequal(shared, uv1(b)))
      assert.is_true(rawequal(shared, uv1(c)))
      assert.same({ "1" }, keys(shared))              -- nothing written into the shared table
      assert.is_true(rawequal(m.Genre, uv1(a)[1]))    -- the own table holds the model too
      assert.is_true(rawequal(m.Genre, junction.modelof(a)))
    end)

    it54("the parents of an include hold what it loaded in a user value of their own, no table", function()
      local posts = assert(m.Post:findAll { include = { "Genres" }, order = "post_id" })
      local plain = assert(m.Post:findAll { order = "post_id" })
      -- post_id, text, created_at, updated_at: user values 2 .. 5; Genres: 6
      assert.is_true(rawequal(posts[1].Genres, (debug.getuservalue(posts[1], 6))))
      assert.equal(3, #posts[1].Genres)
      assert.equal(0, #posts[2].Genres)
      assert.is_true(rawequal(uv1(posts[1]), uv1(posts[2])))
      assert.is_true(rawequal(uv1(posts[1]), uv1(plain[1])))
      assert.same({ "1" }, keys(uv1(plain[1])))
      assert.equal(1, select("#", debug.getuservalue(plain[1], 6)))   -- a read without include: none
    end)

  end)

  it("an include is attached to the rows of that read alone", function()
    local posts = assert(m.Post:findAll { include = { "Genres" }, order = "post_id" })
    local plain = assert(m.Post:findAll { order = "post_id" })
    assert.same({ 1, 2, 3 }, H.ids(posts[1].Genres, "genre_id"))
    assert.same({}, H.ids(posts[2].Genres, "genre_id"))
    assert.is_nil(plain[1].Genres)
    assert.is_nil(plain[2].Genres)
    local t = posts[1]:toTable()
    assert.equal(3, #t.Genres)
    assert.equal("one", t.text)
    assert.is_nil(plain[1]:toTable().Genres)
    local j = assert(junction.fromJSON(assert(junction.toJSON(posts[1]))))
    assert.equal(3, #j.Genres)
    assert.is_nil(assert(junction.fromJSON(assert(junction.toJSON(plain[1])))).Genres)
    assert.matches("Genres=", tostring(posts[1]))
    assert.not_matches("Genres=", tostring(plain[1]))
  end)

  it("a to-one include, and two includes at once, are each on their own rows", function()
    local links = assert(m.TagPostGenre:findAll { include = { "Post", "Genre" }, order = "genre_id" })
    assert.equal(3, #links)
    for i = 1, 3 do
      assert.equal("one", links[i].Post.text)
      assert.equal(i, links[i].Genre.genre_id)
      local t = links[i]:toTable()
      assert.equal("one", t.Post.text)
      assert.equal(i, t.Genre.genre_id)
      local j = assert(junction.fromJSON(assert(junction.toJSON(links[i]))))
      assert.equal("one", j.Post.text)
      assert.matches("Genre=Genre#" .. i, tostring(links[i]))
    end
    local plain = assert(m.TagPostGenre:findAll { order = "genre_id" })
    assert.is_nil(plain[1].Post)
    assert.is_nil(plain[1]:toTable().Post)
    assert.not_matches("Post=", tostring(plain[1]))
    local nested = assert(m.Post:findAll { include = { Genres = { include = { "Posts" } } }, order = "post_id" })
    assert.equal(3, #nested[1].Genres)
    assert.equal(1, #nested[1].Genres[1].Posts)
    assert.equal("one", nested[1]:toTable().Genres[1].Posts[1].text)
  end)

  it("the junction row of a getX read is its row's alone", function()
    local list = post:getGenres { joinTableAttributes = { "created_at" }, order = "genre_id" }
    local other = assert(m.Genre:findAll { order = "genre_id" })
    assert.equal(3, #list)
    for i = 1, 3 do
      assert.matches("^%d%d%d%d%-", list[i].TagPostGenre.created_at)
      assert.is_nil(other[i].TagPostGenre)
    end
    assert.is_false(rawequal(list[1].TagPostGenre, list[2].TagPostGenre))
    assert.is_not_nil(list[1]:toTable().TagPostGenre)
    assert.is_nil(other[1]:toTable().TagPostGenre)
  end)

  it("inst.TagPostGenre = v on a read row sets it on that row alone, and nil takes it away", function()
    local list = assert(m.Genre:findAll { order = "genre_id" })
    local values = {}
    list[4].TagPostGenre = values
    assert.is_true(rawequal(values, list[4].TagPostGenre))
    assert.is_nil(list[5].TagPostGenre)
    assert.is_nil(assert(m.Genre:findByPk(4)).TagPostGenre)
    assert.is_true(post:addGenre(list[4]))
    assert.same({ 1, 2, 3, 4 }, H.ids(post:getGenres(), "genre_id"))
    list[4].TagPostGenre = nil
    assert.is_nil(list[4].TagPostGenre)
    assert.equal(list[4].name, "folk")
  end)

  it("alias values of a find are the row's own, and a plain read of the model has none", function()
    local rows = assert(m.Genre:findAll {
      attributes = { "genre_id", { junction.fn("upper", junction.col("name")), "shout" } },
      order = "genre_id" })
    assert.equal("ROCK", rows[1].shout)
    assert.equal("JAZZ", rows[2].shout)
    assert.equal("ROCK", rows[1]:toTable().shout)
    local plain = assert(m.Genre:findByPk(1))
    H.mentions(H.raises(function() return plain.shout end), "Genre", "shout")
    assert.is_nil(plain:toTable().shout)
  end)

  it("reload reads the fields again and keeps what eager loading attached", function()
    local p = assert(m.Post:findOne { where = { post_id = post.post_id }, include = { "Genres" } })
    p.text = "changed"
    assert.same({ "text" }, p:changed())
    assert(p:reload())
    assert.equal("one", p.text)
    assert.is_false(p:changed())
    assert.equal(3, #p.Genres)
  end)

  it("a save after a read writes the changed field, and the others read it back", function()
    local list = assert(m.Post:findAll { order = "post_id" })
    list[1].text = "edited"
    assert(list[1]:save())
    assert.is_false(list[1]:changed())
    assert.equal("edited", list[1].text)
    assert.equal("two", list[2].text)
    assert.equal("edited", assert(m.Post:findByPk(list[1].post_id)).text)
    assert(list[2]:update { text = "also" })
    assert.equal("also", assert(m.Post:findByPk(list[2].post_id)).text)
  end)

  it("a rolled back transaction gives a read row its changed fields back, and a created one its nil key", function()
    local p = assert(m.Post:findByPk(post.post_id))
    local made
    local ok = db:transaction(function()
      p.text = "in tx"
      assert(p:save())
      assert.is_false(p:changed())
      made = assert(m.Post:create { text = "new" })
      assert.is_not_nil(made.post_id)
      junction.abort("no")
    end)
    assert.is_nil(ok)
    assert.same({ "text" }, p:changed())
    assert.equal("in tx", p.text)
    assert.is_nil(made.post_id)
    assert.equal("one", assert(m.Post:findByPk(post.post_id)).text)
  end)

  it("two instances built (not read) hold their own values", function()
    local a, b = m.Post:build { text = "a" }, m.Post:build { text = "b" }
    assert.equal("a", a.text)
    assert.equal("b", b.text)
    a.text = "a2"
    assert.equal("b", b.text)
    assert(a:save())
    assert.is_true(rawequal(m.Post, junction.modelof(a)))
    assert.is_true(rawequal(m.Post, junction.modelof(b)))
  end)
end)

describe("VIRTUAL values", function()
  it("are kept on the instance they were set on", function()
    local db = H.open()
    local U = db:define("U", { tableName = "u", timestamps = false, fields = {
      id = { type = T.INTEGER, primaryKey = true, autoIncrement = true },
      name = { type = T.TEXT },
      note = { type = T.VIRTUAL },
    } })
    assert(db:sync())
    assert(U:create { name = "a" })
    assert(U:create { name = "b" })
    local list = assert(U:findAll { order = "id" })
    list[1].note = "mine"
    assert.equal("mine", list[1].note)
    assert.is_nil(list[2].note)
    assert.is_nil(assert(U:findByPk(1)).note)
    assert.equal("mine", list[1]:toTable().note)
    db:close()
  end)
end)

describe("many instances", function()
  it("survive a full collection with their model dropped by the program", function()
    local db = H.open()
    local m = H.blog(db)
    for i = 1, 50 do assert(m.Post:create { text = "p" .. i }) end
    local list = assert(m.Post:findAll { order = "post_id" })
    m = nil   -- luacheck: ignore
    collectgarbage()
    collectgarbage()
    for i = 1, 50 do
      assert.equal("p" .. i, list[i].text)
      assert.equal("Post", junction.modelof(list[i]).name)
    end
    db:close()
  end)
end)
