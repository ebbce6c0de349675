-- spec/query_spec.lua: the query builder, table-driven over every where operator
-- and spelling, then order/limit/offset/attributes and the model-level methods
-- (docs/API.md "Models", "where", "order").
local H = require "spec.helper"
local T = H.T

-- id  name          n  score  tag
--  1  apple         1  1.5    red
--  2  banana        2  2.5    yellow
--  3  cherry        3  nil    red
--  4  date          4  4.5    nil
--  5  elderberry    5  5.5    purple
--  6  fig           6  nil    nil
local ROWS = {
  { id = 1, name = "apple", n = 1, score = 1.5, tag = "red" },
  { id = 2, name = "banana", n = 2, score = 2.5, tag = "yellow" },
  { id = 3, name = "cherry", n = 3, tag = "red" },
  { id = 4, name = "date", n = 4, score = 4.5 },
  { id = 5, name = "elderberry", n = 5, score = 5.5, tag = "purple" },
  { id = 6, name = "fig", n = 6 },
}

local function setup()
  local db = H.open()
  local Item = db:define("Item", { tableName = "item", timestamps = false, fields = {
    id = { type = T.INTEGER, primaryKey = true, autoIncrement = true },
    name = { type = T.TEXT, allowNull = false },
    n = { type = T.INTEGER },
    score = { type = T.REAL },
    tag = { type = T.TEXT },
  } })
  assert(db:sync())
  for _, r in ipairs(ROWS) do assert(Item:create(r)) end
  return db, Item
end

-- { label, where, expected ids }
local CASES = {
  { "equality shorthand", { name = "apple" }, { 1 } },
  { "equality shorthand, integer", { n = 4 }, { 4 } },
  { "two fields are ANDed", { tag = "red", n = 3 }, { 3 } },
  { "array shorthand is IN", { n = { 1, 3, 5 } }, { 1, 3, 5 } },
  { "array shorthand of strings", { name = { "fig", "date", "nope" } }, { 4, 6 } },
  { "eq", { n = { eq = 2 } }, { 2 } },
  { "ne", { n = { ne = 2 } }, { 1, 3, 4, 5, 6 } },
  { "ne drops NULLs (SQL <>)", { tag = { ne = "red" } }, { 2, 5 } },
  { "gt", { n = { gt = 4 } }, { 5, 6 } },
  { "gte", { n = { gte = 4 } }, { 4, 5, 6 } },
  { "lt", { n = { lt = 2 } }, { 1 } },
  { "lte", { n = { lte = 2 } }, { 1, 2 } },
  { "gt on REAL", { score = { gt = 2.5 } }, { 4, 5 } },
  { "lt on TEXT", { name = { lt = "cherry" } }, { 1, 2 } },
  { "in", { n = { ["in"] = { 2, 4, 99 } } }, { 2, 4 } },
  { "_in", { n = { _in = { 2, 4, 99 } } }, { 2, 4 } },
  { "in on text", { name = { ["in"] = { "apple", "fig" } } }, { 1, 6 } },
  { "empty in matches nothing", { n = { ["in"] = {} } }, {} },
  { "notIn", { n = { notIn = { 1, 2 } } }, { 3, 4, 5, 6 } },
  { "empty notIn matches everything", { n = { notIn = {} } }, { 1, 2, 3, 4, 5, 6 } },
  { "like", { name = { like = "%e%" } }, { 1, 3, 4, 5 } },
  { "like prefix", { name = { like = "b%" } }, { 2 } },
  { "notLike", { name = { notLike = "%e%" } }, { 2, 6 } },
  { "between", { n = { between = { 2, 4 } } }, { 2, 3, 4 } },
  { "between on REAL", { score = { between = { 2, 5 } } }, { 2, 4 } },
  { "notBetween", { n = { notBetween = { 2, 4 } } }, { 1, 5, 6 } },
  { "isNull true", { tag = { isNull = true } }, { 4, 6 } },
  { "isNull false", { tag = { isNull = false } }, { 1, 2, 3, 5 } },
  { "several operators in one field are ANDed", { n = { gt = 1, lt = 4 } }, { 2, 3 } },
  { "several operators incl. ne", { n = { gte = 2, lte = 5, ne = 3 } }, { 2, 4, 5 } },
  { "and", { ["and"] = { { n = { gt = 1 } }, { n = { lt = 4 } } } }, { 2, 3 } },
  { "_and", { _and = { { n = { gt = 1 } }, { n = { lt = 4 } } } }, { 2, 3 } },
  { "or", { ["or"] = { { name = "apple" }, { n = 6 } } }, { 1, 6 } },
  { "_or", { _or = { { name = "apple" }, { n = 6 } } }, { 1, 6 } },
  { "or with a multi-field branch", { _or = { { tag = "red", n = { gt = 1 } }, { name = "banana" } } }, { 2, 3 } },
  { "not", { ["not"] = { tag = "red" } }, { 2, 5 } },
  { "_not", { _not = { tag = "red" } }, { 2, 5 } },
  { "not of isNull", { _not = { tag = { isNull = true } } }, { 1, 2, 3, 5 } },
  { "not of or", { _not = { _or = { { n = 1 }, { n = 2 } } } }, { 3, 4, 5, 6 } },
  { "or of ands", { _or = { { _and = { { tag = "red" }, { n = { gt = 1 } } } }, { name = "fig" } } }, { 3, 6 } },
  { "and with field conditions beside it", { tag = { isNull = false }, _or = { { n = 1 }, { n = 5 } } }, { 1, 5 } },
  { "hostile value matches nothing", { name = "x' OR '1'='1" }, {} },
  { "like with a hostile pattern", { name = { like = "%' OR 1=1 --" } }, {} },
}

describe("where (table-driven)", function()
  local db, Item
  before_each(function() db, Item = setup() end)
  after_each(function() db:close() end)

  for _, case in ipairs(CASES) do
    local label, where, expected = case[1], case[2], case[3]
    it(label, function()
      local rows = Item:findAll { where = where }
      assert.is_table(rows)
      assert.same(expected, H.ids(rows, "id"))
      assert.equal(#expected, Item:count { where = where })
      -- the table survives hostile values
      assert.equal(6, Item:count())
    end)
  end

  it("does not modify the where table it was given", function()
    local where = { n = { gt = 1, lt = 4 }, _or = { { tag = "red" }, { tag = "yellow" } } }
    Item:findAll { where = where }
    assert.same({ n = { gt = 1, lt = 4 }, _or = { { tag = "red" }, { tag = "yellow" } } }, where)
  end)

  it("raises on an unknown operator, naming model, method and operator", function()
    H.mentions(H.raises(function() Item:findAll { where = { n = { gtt = 1 } } } end), "Item", "findAll", "gtt")
  end)

  it("raises on an unknown field, naming model, method and field", function()
    H.mentions(H.raises(function() Item:findAll { where = { nope = 1 } } end), "Item", "findAll", "nope")
  end)

  it("raises on a bad between operand", function()
    H.raises(function() Item:findAll { where = { n = { between = { 1 } } } } end)
    H.raises(function() Item:findAll { where = { n = { between = 3 } } } end)
  end)

  it("raises on a non-table in list", function()
    H.raises(function() Item:findAll { where = { n = { ["in"] = 3 } } } end)
  end)
end)

describe("long in lists", function()
  local db, Item
  before_each(function()
    db = H.open()
    Item = db:define("Item", { tableName = "item", timestamps = false, fields = {
      id = { type = T.INTEGER, primaryKey = true }, v = { type = T.INTEGER } } })
    assert(db:sync())
    assert(db:exec([[
      WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 100000)
      INSERT INTO item(id, v) SELECT x, x % 7 FROM c;
    ]]))
  end)
  after_each(function() db:close() end)

  it("an in list of 100,000 ids works", function()
    local ids = {}
    for i = 1, 100000 do ids[i] = i * 2 end   -- half of them exist
    assert.equal(50000, Item:count { where = { id = { ["in"] = ids } } })
    local rows = Item:findAll { where = { id = { ["in"] = ids } }, order = "id" }
    assert.equal(50000, #rows)
    assert.equal(2, rows[1].id)
    assert.equal(100000, rows[50000].id)
  end)

  it("the array shorthand and notIn take 100,000 values too", function()
    local ids = {}
    for i = 1, 100000 do ids[i] = i end
    assert.equal(100000, Item:count { where = { id = ids } })
    assert.equal(0, Item:count { where = { id = { notIn = ids } } })
    local strs = {}
    for i = 1, 100000 do strs[i] = "s" .. i end
    assert.equal(0, Item:count { where = { id = { ["in"] = strs } } })
  end)
end)

describe("in lists carry any value exactly", function()
  local db, W
  local values = {
    'quote " inside', "back\\slash", "nul\0byte", "\0", "tab\tnewline\n", "control \1\2\31",
    "ünïcødé ✓ 🚀", "bad utf8 \255\254", "", "'; DROP TABLE w; --", "[1,2]", '{"a":1}', "null",
  }
  if H.is_pg then   -- PostgreSQL's text holds UTF-8 without NUL bytes (docs/POSTGRES.md)
    local kept = {}
    for _, v in ipairs(values) do
      if not v:find("\0", 1, true) and not v:find("\255", 1, true) then kept[#kept + 1] = v end
    end
    values = kept
  end
  before_each(function()
    db = H.open()
    W = db:define("W", { tableName = "w", timestamps = false, fields = {
      s = { type = T.TEXT }, r = { type = T.REAL }, i = { type = T.INTEGER } } })
    assert(db:sync())
    for k, v in ipairs(values) do assert(W:create { s = v, r = k + 0.1, i = k }) end
    assert(W:create { s = "filler", r = 0.3, i = 1000 })
  end)
  after_each(function() db:close() end)

  for _, size in ipairs { 0, 5000 } do
    it("strings (padded with " .. size .. " misses)", function()
      local list = {}
      for i = 1, size do list[#list + 1] = "miss" .. i end
      for _, v in ipairs(values) do list[#list + 1] = v end
      local rows = W:findAll { where = { s = { ["in"] = list } } }
      assert.equal(#values, #rows)
      local got = {}
      for _, r in ipairs(rows) do got[r.i] = r.s end
      for k, v in ipairs(values) do assert.equal(v, got[k]) end
      assert.equal(1, W:count { where = { s = { notIn = list } } })
    end)

    it("reals and integers (padded with " .. size .. " misses)", function()
      local reals, ints = {}, {}
      for i = 1, size do reals[#reals + 1] = -i - 0.5; ints[#ints + 1] = -i end
      reals[#reals + 1] = 2.1; reals[#reals + 1] = 0.3
      ints[#ints + 1] = 3; ints[#ints + 1] = 1000
      assert.same({ 2, 1000 }, H.ids(W:findAll { where = { r = { ["in"] = reals } } }, "i"))
      assert.same({ 3, 1000 }, H.ids(W:findAll { where = { i = ints } }, "i"))
    end)
  end
end)

describe("a where value its field cannot hold", function()
  it("equals no row and differs from every row that is not NULL, on every engine", function()
    local db = H.open()
    local V = db:define("V", { tableName = "v", timestamps = false, fields = {
      id = { type = T.INTEGER, primaryKey = true }, r = { type = T.REAL },
      u = { type = T.UUID }, d = { type = T.DATEONLY } } })
    assert(db:sync())
    assert(V:create { id = 1, r = 1.5, u = "0d4a8b36-1c1e-4e57-9d35-7a3cc1c1e001", d = "2024-02-29" })
    assert(V:create { id = 2 })
    for _, case in ipairs { { "id", "x" }, { "id", 1.5 }, { "id", "0x1" }, { "r", "high" },
                            { "u", "not-a-uuid" }, { "d", "yesterday" } } do
      local f, bad = case[1], case[2]
      local what = f .. " = " .. tostring(bad)
      assert.same({}, assert(V:findAll { where = { [f] = bad } }), what)
      assert.same({}, assert(V:findAll { where = { [f] = { eq = bad } } }), what)
      -- <> holds where the field has a value (NULL stays unknown, as for any value)
      local ne = f == "id" and { 1, 2 } or { 1 }
      assert.same(ne, H.ids(assert(V:findAll { where = { [f] = { ne = bad } } }), "id"), what)
      assert.same(ne, H.ids(assert(V:findAll { where = { ["not"] = { [f] = bad }, [f] = { ne = H.junction.null } } }),
                            "id"), what)
      assert.equal(0, assert(V:count { where = { [f] = { bad, "zz" } } }), what)
      assert.equal(0, assert(V:update({ r = 9 }, { where = { [f] = bad } })), what)
    end
    -- decimal text is the number it spells, as SQLite's INTEGER column reads it
    assert.equal(1, assert(V:findOne { where = { id = "1.0" } }).id)
    -- findByPk: no row, also with options
    assert.is_nil(V:findByPk "x")
    assert.is_nil(V:findByPk(1.5))
    assert.is_nil(V:findByPk("x", { attributes = { "id" } }))
    assert.equal(1, assert(V:findByPk "1.0").id)
    assert.equal(1, assert(V:findByPk " 1").id)
    -- an integer key (bound as it is) finds what a where on the key finds, at every edge
    local keys = { 1, 2, 3, 0, -1, 1.0, 2.0, 1.5, -0.0, 2^53, 2^53 + 2, -2^53, 2^63, -2^63, 1e300,
                   1 / 0, -1 / 0, "1", "2", "1e0" }
    if math.maxinteger then
      keys[#keys + 1] = math.maxinteger
      keys[#keys + 1] = math.mininteger
    end
    for _, k in ipairs(keys) do
      local one = V:findOne { where = { id = k } }
      local byk = V:findByPk(k)
      assert.equal(one and one.id, byk and byk.id, tostring(k))
    end
    db:close()
  end)
end)

describe("order, limit, offset, attributes", function()
  local db, Item
  before_each(function() db, Item = setup() end)
  after_each(function() db:close() end)

  local function names(rows)
    local out = {}
    for i, r in ipairs(rows) do out[i] = r.name end
    return out
  end

  it("order = 'field'", function()
    assert.same({ "apple", "banana", "cherry", "date", "elderberry", "fig" },
      names(Item:findAll { order = "name" }))
  end)

  it("order = 'field DESC'", function()
    assert.same({ "fig", "elderberry", "date", "cherry", "banana", "apple" },
      names(Item:findAll { order = "name DESC" }))
  end)

  it("order = 'field ASC' and lower-case desc", function()
    assert.same({ 1, 2, 3, 4, 5, 6 }, (function()
      local o = {}
      for i, r in ipairs(Item:findAll { order = "n ASC" }) do o[i] = r.id end
      return o
    end)())
    assert.equal("fig", Item:findAll({ order = "n desc" })[1].name)
  end)

  it("order = { { field, 'DESC' }, field }", function()
    local rows = Item:findAll { order = { { "tag", "DESC" }, "n" } }
    local ids = {}
    for i, r in ipairs(rows) do ids[i] = r.id end
    -- tag DESC: yellow(2), red(1,3), purple(5), then NULLs (4,6) last in SQLite DESC
    assert.same({ 2, 1, 3, 5, 4, 6 }, ids)
  end)

  it("raises on an order naming an unknown field or an injection", function()
    H.mentions(H.raises(function() Item:findAll { order = "nope" } end), "Item", "nope")
    H.raises(function() Item:findAll { order = "name; DROP TABLE item" } end)
    H.raises(function() Item:findAll { order = { { "name", "SIDEWAYS" } } } end)
    assert.equal(6, Item:count())
  end)

  it("limit", function()
    local rows = Item:findAll { order = "n", limit = 2 }
    assert.same({ 1, 2 }, { rows[1].id, rows[2].id })
    assert.equal(2, #rows)
  end)

  it("limit with offset", function()
    local rows = Item:findAll { order = "n", limit = 2, offset = 3 }
    assert.equal(2, #rows)
    assert.same({ 4, 5 }, { rows[1].id, rows[2].id })
  end)

  it("offset without limit", function()
    local rows = Item:findAll { order = "n", offset = 4 }
    assert.same({ 5, 6 }, H.ids(rows, "id"))
  end)

  it("raises on a non-number limit", function()
    H.raises(function() Item:findAll { limit = "ten" } end)
  end)

  it("attributes reads the named fields and always the primary key", function()
    local rows = Item:findAll { attributes = { "name" }, order = "id" }
    assert.equal(6, #rows)
    assert.equal(1, rows[1].id)
    assert.equal("apple", rows[1].name)
    assert.is_nil(rows[1].n)
    assert.is_nil(rows[1]:toTable().n)
  end)

  it("attributes with an unknown field raises", function()
    H.mentions(H.raises(function() Item:findAll { attributes = { "nope" } } end), "Item", "nope")
  end)
end)

describe("count, findOne, findByPk", function()
  local db, Item
  before_each(function() db, Item = setup() end)
  after_each(function() db:close() end)

  it("count", function()
    assert.equal(6, Item:count())
    assert.equal(2, Item:count { where = { tag = "red" } })
    assert.equal(0, Item:count { where = { tag = "blue" } })
    if H.has_int then assert.equal("integer", math.type(Item:count())) end
  end)

  it("findOne returns the first match in order, or nil", function()
    local one = Item:findOne { where = { tag = "red" }, order = "n DESC" }
    assert.equal(3, one.id)
    assert.is_nil(Item:findOne { where = { tag = "blue" } })
    assert.equal(1, Item:find_one({ order = "n" }).id)
  end)

  it("findByPk returns the instance, or nil", function()
    assert.equal("cherry", Item:findByPk(3).name)
    assert.is_nil(Item:findByPk(999))
    assert.equal("fig", Item:find_by_pk(6).name)
  end)

  it("findByPk honours attributes", function()
    local it_ = Item:findByPk(2, { attributes = { "tag" } })
    assert.equal(2, it_.id)
    assert.equal("yellow", it_.tag)
    assert.is_nil(it_.name)
  end)

  it("findByPk raises on a bad key type", function()
    H.mentions(H.raises(function() Item:findByPk({}) end), "Item", "findByPk")
  end)

  it("find_all is findAll", function()
    assert.same(H.ids(Item:findAll { where = { tag = "red" } }, "id"),
      H.ids(Item:find_all { where = { tag = "red" } }, "id"))
  end)
end)

describe("findOrCreate", function()
  local db, Item
  before_each(function() db, Item = setup() end)
  after_each(function() db:close() end)

  it("creates with where + defaults when there is no match", function()
    local item, created = Item:findOrCreate { where = { name = "kiwi" }, defaults = { n = 42 } }
    assert.is_true(created)
    assert.equal("kiwi", item.name)
    assert.equal(42, item.n)
    assert.equal(7, Item:count())
  end)

  it("finds without creating when there is a match", function()
    local item, created = Item:findOrCreate { where = { name = "banana" }, defaults = { n = 99 } }
    assert.is_false(created)
    assert.equal(2, item.id)
    assert.equal(2, item.n)
    assert.equal(6, Item:count())
  end)

  it("is idempotent", function()
    local a, c1 = Item:find_or_create { where = { name = "kiwi" } }
    local b, c2 = Item:find_or_create { where = { name = "kiwi" } }
    assert.is_true(c1)
    assert.is_false(c2)
    assert.equal(a, b)
  end)

  it("returns nil, message, code when the create fails", function()
    local ok, msg, code = Item:findOrCreate { where = { n = 77 } }  -- name is NOT NULL
    assert.is_nil(ok)
    assert.is_string(msg)
    assert.equal(H.junction.VALIDATION, code)
    assert.equal(6, Item:count())
  end)
end)

describe("Model:update and Model:destroy", function()
  local db, Item
  before_each(function() db, Item = setup() end)
  after_each(function() db:close() end)

  it("update returns the number of rows changed", function()
    assert.equal(2, Item:update({ score = 9.5 }, { where = { tag = "red" } }))
    assert.same({ 1, 3 }, H.ids(Item:findAll { where = { score = 9.5 } }, "id"))
    assert.equal(0, Item:update({ score = 1 }, { where = { tag = "blue" } }))
  end)

  it("update with an operator where", function()
    assert.equal(3, Item:update({ tag = "big" }, { where = { n = { gte = 4 } } }))
    assert.same({ 4, 5, 6 }, H.ids(Item:findAll { where = { tag = "big" } }, "id"))
  end)

  it("update returns nil, message, code on a constraint and writes nothing", function()
    local U = db:define("U", { timestamps = false, fields = { k = { type = T.TEXT, unique = true } } })
    assert(db:sync())
    assert(U:create { k = "a" })
    assert(U:create { k = "b" })
    local ok2, msg2, code2 = U:update({ k = "same" }, { all = true })
    assert.is_nil(ok2)
    assert.is_string(msg2)
    assert.equal(2067, code2)
    assert.same({ "a", "b" }, H.ids(U:findAll(), "k"))
  end)

  it("update raises on an unknown field", function()
    H.mentions(H.raises(function() Item:update({ nope = 1 }, { all = true }) end), "Item", "update", "nope")
  end)

  it("destroy returns the number of rows deleted", function()
    assert.equal(2, Item:destroy { where = { tag = { isNull = true } } })
    assert.equal(4, Item:count())
    assert.equal(0, Item:destroy { where = { tag = "blue" } })
    assert.equal(4, Item:count())
  end)
end)

describe("bulkCreate", function()
  local db, Item
  before_each(function() db, Item = setup() end)
  after_each(function() db:close() end)

  it("returns an array of instances with their keys", function()
    local list = assert(Item:bulkCreate { { name = "k1", n = 10 }, { name = "k2", n = 11 }, { name = "k3" } })
    assert.equal(3, #list)
    assert.same({ 7, 8, 9 }, H.ids(list, "id"))
    assert.equal("k2", list[2].name)
    assert.equal(9, Item:count())
  end)

  it("is atomic: one bad row and nothing is inserted", function()
    local ok, msg, code, details = Item:bulkCreate { { name = "k1" }, { name = "k2" }, { n = 3 }, { name = "k4" } }
    assert.is_nil(ok)
    assert.is_string(msg)
    assert.equal(H.junction.VALIDATION, code)
    assert.equal(3, details.index)
    assert.matches("(row 3)", msg, 1, true)
    assert.equal(6, Item:count())
    assert.equal(0, Item:count { where = { name = { like = "k%" } } })
  end)

  it("is atomic on a duplicate key too", function()
    local ok, _, code = Item:bulk_create { { id = 50, name = "a" }, { id = 50, name = "b" } }
    assert.is_nil(ok)
    assert.equal(19, code % 256)
    assert.is_nil(Item:findByPk(50))
  end)

  it("handles an empty list", function()
    local list = assert(Item:bulkCreate {})
    assert.same({}, list)
  end)

  it("inserts many rows", function()
    local list = {}
    for i = 1, 2000 do list[i] = { name = "r" .. i, n = i } end
    local got = assert(Item:bulkCreate(list))
    assert.equal(2000, #got)
    assert.equal(2006, Item:count())
  end)

  it("raises on a non-table element", function()
    H.mentions(H.raises(function() Item:bulkCreate { { name = "a" }, "b" } end), "Item", "bulkCreate")
    assert.equal(6, Item:count())
  end)
end)

describe("query options", function()
  it("raise on an unknown key, naming model, method and key", function()
    local db, Item = setup()
    H.mentions(H.raises(function() Item:findAll { limt = 1 } end), "Item", "findAll", "limt")
    H.mentions(H.raises(function() Item:findOne { wher = {} } end), "Item", "findOne", "wher")
    H.mentions(H.raises(function() Item:count { ordr = "n" } end), "Item", "count", "ordr")
    db:close()
  end)
end)

describe("in lists with non-finite numbers", function()
  -- A REAL column holding the infinities; a NaN matches nothing (SQLite binds it as NULL).
  for _, size in ipairs { 0, 5000 } do
    it("answer alike, short or long (padded with " .. size .. " misses)", function()
      local db = H.open()
      local R = db:define("R", { tableName = "r", timestamps = false, fields = {
        id = { type = T.INTEGER, primaryKey = true }, x = { type = T.REAL } } })
      assert(db:sync())
      assert(db:query("INSERT INTO r(id, x) VALUES (1, 1.5), (2, ?), (3, ?)", math.huge, -math.huge))
      local function list(...)
        local l = {}
        for i = 1, size do l[#l + 1] = -i - 0.25 end
        for _, v in ipairs { ... } do l[#l + 1] = v end
        return l
      end
      assert.same({ 2 }, H.ids(R:findAll { where = { x = { ["in"] = list(math.huge) } } }, "id"))
      assert.same({ 2, 3 }, H.ids(R:findAll { where = { x = { ["in"] = list(math.huge, -math.huge) } } }, "id"))
      assert.same({ 1 }, H.ids(R:findAll { where = { x = { ["in"] = list(1.5, 0 / 0) } } }, "id"))
      assert.equal(0, R:count { where = { x = { ["in"] = list(0 / 0) } } })
      db:close()
    end)
  end
end)
