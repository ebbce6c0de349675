-- spec/copy_spec.lua: junction.copy moves every table's rows from a SQLite
-- database into another database: a SQLite one under `make test`, the
-- PostgreSQL server of JUNCTION_TEST_PG under `make test-pg` (H.open).
local H = require "spec.helper"
local junction = H.junction
local T = junction.types

-- Models beyond the seed: a child table whose name sorts before its
-- parent's (so name order would insert it first), and every kind of value.
local function define_more(db, r_not_null)
  db:define("Shelf", { tableName = "z_shelf", timestamps = false, fields = {
    id = { type = T.INTEGER, primaryKey = true, autoIncrement = true },
    label = { type = T.TEXT },
  } })
  db:define("Book", { tableName = "a_book", timestamps = false, fields = {
    id = { type = T.INTEGER, primaryKey = true, autoIncrement = true },
    shelf_id = { type = T.INTEGER, allowNull = false, references = { model = "z_shelf", key = "id" } },
  } })
  db:define("Vals", { tableName = "vals", timestamps = false, fields = {
    id = { type = T.INTEGER, primaryKey = true, autoIncrement = true },
    b = { type = T.BLOB }, flag = { type = T.BOOLEAN }, r = { type = T.REAL, allowNull = not r_not_null },
    d = { type = T.DATE }, big = { type = T.INTEGER }, s = { type = T.STRING(20) },
  } })
end

-- every byte, and text that looks like bytea's escapes
local BLOB
do
  local t = {}
  for i = 0, 255 do t[#t + 1] = string.char(i) end
  BLOB = table.concat(t) .. "\\x00\\\\"
end
local BIG = H.has_int and math.tointeger(2 ^ 53) + 1 or "9007199254740993"

-- A SQLite source with the seed's rows (post 4 deleted, so the high-water
-- mark is above the largest key) and the extra tables' rows.
local function source()
  local src = assert(junction.open(":memory:"))
  local m = H.blog(src)
  define_more(src)
  assert(src:sync())
  H.genres(m.Genre, { "orm", "lua", "sqlite" })
  for i, set in ipairs { { 1, 2, 3 }, { 2 }, { 1, 3 }, { 3 } } do
    assert(assert(m.Post:create { text = "post " .. i }):setGenres(set))
  end
  assert(m.Post:destroy { where = { post_id = 4 } })
  local Shelf, Book, Vals = src:model("Shelf"), src:model("Book"), src:model("Vals")
  assert(Shelf:create { label = "top" })
  assert(Book:create { shelf_id = 1 })
  assert(Book:create { shelf_id = 1 })
  assert(Vals:create { b = BLOB, flag = true, r = 0.1, d = "2024-02-29 13:14:15.678", big = BIG, s = "fünf" })
  assert(Vals:create { flag = false })
  return src, m
end

-- The destination: empty tables made by db:sync.
local function destination()
  local dst = H.open()
  local m = H.blog(dst)
  define_more(dst)
  assert(dst:sync())
  return dst, m
end

local function rows(db, sql)
  local out = {}
  for i, r in ipairs(assert(db:query(sql))) do
    local parts = {}
    for k, v in pairs(r) do parts[#parts + 1] = k .. "=" .. tostring(v) end
    table.sort(parts)
    out[i] = table.concat(parts, " ")
  end
  return out
end

describe("junction.copy", function()
  it("copies every table's rows, parents first, and inserts after it do not collide", function()
    local src = source()
    local dst, m = destination()
    local counts = assert(junction.copy(src, dst))
    assert.same({ post = 3, genre = 3, tag_post_genre = 6, z_shelf = 1, a_book = 2, vals = 2 }, counts)
    for _, q in ipairs {
      "SELECT post_id, text, created_at, updated_at FROM post ORDER BY post_id",
      "SELECT genre_id, name, created_at FROM genre ORDER BY genre_id",
      "SELECT tag_post_genre_id, post_id, genre_id FROM tag_post_genre ORDER BY tag_post_genre_id",
      "SELECT id, shelf_id FROM a_book ORDER BY id",
    } do
      assert.same(rows(src, q), rows(dst, q))
    end
    -- the models read the rows back, associations included
    assert.same({ 1, 2, 3 }, H.ids(m.Post:findByPk(1):getGenres(), "genre_id"))
    -- the counters moved past the copied keys and the source's high-water mark
    assert.equal(5, assert(m.Post:create { text = "after the move" }).post_id)
    assert.equal(4, assert(m.Genre:create { name = "new" }).genre_id)
    assert.equal(8, assert(m.TagPostGenre:create { post_id = 5, genre_id = 4 }).tag_post_genre_id)
    assert.equal(3, assert(dst:model("Book"):create { shelf_id = 1 }).id)
    src:close()
    dst:close()
  end)

  it("carries blobs, booleans, reals, dates, 64-bit integers and NULLs unchanged", function()
    local src = source()
    local dst = destination()
    assert(junction.copy(src, dst))
    local Vals = dst:model("Vals")
    local v = assert(Vals:findByPk(1))
    assert.equal(BLOB, v.b)
    assert.is_true(v.flag)
    assert.equal(0.1, v.r)
    assert.equal("2024-02-29 13:14:15.678", v.d)
    assert.equal(BIG, v.big)
    assert.equal("fünf", v.s)
    local w = assert(Vals:findByPk(2))
    assert.is_false(w.flag)
    assert.is_nil(w.b)
    assert.is_nil(w.r)
    assert.equal(3, assert(Vals:create { flag = true }).id)
    src:close()
    dst:close()
  end)

  it("copies only the tables named, in foreign-key order", function()
    local src = source()
    local dst = destination()
    assert.same({ a_book = 2, z_shelf = 1 }, assert(junction.copy(src, dst, { tables = { "a_book", "z_shelf" } })))
    assert.equal(0, dst:query("SELECT count(*) AS n FROM post")[1].n)
    src:close()
    dst:close()
  end)

  it("fails and writes nothing when a destination table has rows or is missing", function()
    local src = source()
    local dst, m = destination()
    assert(m.Genre:create { name = "already here" })
    local ok, msg, code = junction.copy(src, dst)
    assert.is_nil(ok)
    assert.equal(junction.SCHEMA, code)
    H.mentions(msg, "junction.copy", "'genre'", "has rows already")
    assert.equal(0, m.Post:count())
    assert.equal(1, m.Genre:count())
    dst:close()

    dst = H.open()   -- no tables at all
    ok, msg, code = junction.copy(src, dst)
    assert.is_nil(ok)
    assert.equal(junction.SCHEMA, code)
    H.mentions(msg, "the destination has no table", "db:sync()")
    dst:close()
    src:close()
  end)

  it("rolls every table back when one row fails", function()
    local src = source()
    -- the destination's vals.r is NOT NULL: the source's second row does not fit
    local dst = H.open()
    local m = H.blog(dst)
    define_more(dst, true)
    assert(dst:sync())
    local ok, msg, code = junction.copy(src, dst)
    assert.is_nil(ok)
    assert.equal(1299, code, msg)
    H.mentions(msg, "junction.copy: vals:")
    assert.equal(0, m.Post:count())   -- copied before vals, rolled back with it
    for _, t in ipairs { "post", "genre", "tag_post_genre", "z_shelf", "a_book", "vals" } do
      assert.equal(0, dst:query("SELECT count(*) AS n FROM " .. t)[1].n, t)
    end
    src:close()
    dst:close()
  end)

  it("raises on misuse: not connections, the same one twice, an unknown option", function()
    local a, b = H.open(), H.open()
    H.mentions(H.raises(junction.copy, a, {}), "junction.copy: bad argument #2 (connection expected, got table)")
    H.mentions(H.raises(junction.copy, "x", b), "junction.copy: bad argument #1")
    H.mentions(H.raises(junction.copy, a, a), "the same connection")
    H.mentions(H.raises(junction.copy, a, b, { tabels = {} }), "junction.copy: bad option 'tabels' (unknown key)")
    H.mentions(H.raises(junction.copy, a, b, { tables = { 1 } }), "bad option 'tables'")
    a:close()
    b:close()
  end)
end)
