-- spec/types_spec.lua: the richer types (docs/API.md "Types"): JSON, ENUM, UUID,
-- DATEONLY, BIGINT, and junction.UUIDV4 / junction.NOW as defaults.  Each one
-- refuses what it cannot hold (a returned VALIDATION failure, nothing written),
-- and what it accepts round-trips: the instance holds what a reload reads.
local H = require "spec.helper"
local T = H.T
local junction = H.junction
local sqlite_it = H.sqlite_only(it, pending)
local pg_it = H.pg_only(it, pending)

local function count_rows(db, tbl)
  return db:query("SELECT count(*) AS n FROM " .. tbl)[1].n
end

describe("the JSON type", function()
  local db, Doc
  before_each(function()
    db = H.open()
    Doc = db:define("Doc", { tableName = "doc", timestamps = false, fields = {
      id = { type = T.INTEGER, primaryKey = true, autoIncrement = true },
      meta = { type = T.JSON },
    }})
    assert(db:sync())
  end)
  after_each(function() db:close() end)

  it("stores a table as JSON text and reads it back as a table", function()
    local d = assert(Doc:create{ meta = { name = "x", tags = { "a", "b" }, n = 3, ok = true } })
    local raw = db:query("SELECT meta FROM doc")[1].meta
    assert.equal('{"n":3,"name":"x","ok":true,"tags":["a","b"]}', raw)
    local r = assert(Doc:findByPk(d.id))
    assert.same({ name = "x", tags = { "a", "b" }, n = 3, ok = true }, r.meta)
    assert.same(r.meta, d.meta)
    assert.is_true(r == d)
  end)

  it("keeps an empty array and an empty object apart, and junction.null as null", function()
    local d = assert(Doc:create{ meta = { list = junction.array(), obj = {}, none = junction.null } })
    assert.equal('{"list":[],"none":null,"obj":{}}', db:query("SELECT meta FROM doc")[1].meta)
    local r = assert(Doc:findByPk(d.id))
    assert.equal(junction.null, r.meta.none)
    assert.equal('{"list":[],"none":null,"obj":{}}', junction.toJSON(r.meta))
    -- saved back unchanged, the text is the same
    r.meta = r.meta
    assert(r:save())
    assert.equal('{"list":[],"none":null,"obj":{}}', db:query("SELECT meta FROM doc")[1].meta)
  end)

  it("round-trips strings with escapes, unicode, numbers and nesting", function()
    local v = { s = "a\"b\\c\n\t\1é😀", f = 0.1, neg = -2.5e-8, big = 2 ^ 53, deep = { { { 1 } } } }
    local d = assert(Doc:create{ meta = v })
    local r = assert(Doc:findByPk(d.id))
    assert.same(v, r.meta)
    assert.same(v, d.meta)
  end)

  it("holds scalars too", function()
    for _, v in ipairs{ "text", 42, 1.5, true, false } do
      local d = assert(Doc:create{ meta = v })
      assert.equal(v, d.meta)
      assert.equal(v, assert(Doc:findByPk(d.id)).meta)
    end
  end)

  it("refuses a table that is neither an array nor an object, and NaN, as returned failures", function()
    local cases = {
      { { 1, 2, x = 3 }, "neither an array" },
      { { [1] = 1, [3] = 3 }, "neither an array" },
      { { f = function() end }, "function" },
      { { x = 0 / 0 }, "NaN" },
      { { s = "\255" }, "UTF%-8" },
    }
    for _, c in ipairs(cases) do
      local ok, msg, code, details = Doc:create{ meta = c[1] }
      assert.is_nil(ok)
      assert.equal(junction.VALIDATION, code)
      assert.truthy(msg:find("Doc.meta", 1, true), msg)
      assert.truthy(msg:find(c[2]), msg)
      assert.truthy(details.errors.meta)
    end
    local cyc = {}
    cyc.self = cyc
    local ok, msg = Doc:create{ meta = cyc }
    assert.is_nil(ok)
    assert.truthy(msg:find("too deep"), msg)
    assert.equal(0, count_rows(db, "doc"))
  end)

  it("marks a field changed when its table is set again after changing inside", function()
    local d = assert(Doc:create{ meta = { n = 1 } })
    local t = d.meta
    t.n = 2
    d.meta = t
    assert.same({ "meta" }, d:changed())
    assert(d:save())
    assert.equal(2, assert(Doc:findByPk(d.id)).meta.n)
  end)

  it("takes a table in Model:update", function()
    local d = assert(Doc:create{ meta = { n = 1 } })
    assert(Doc:update({ meta = { n = 5, list = { 1 } } }, { where = { id = d.id } }))
    assert.same({ n = 5, list = { 1 } }, assert(d:reload()).meta)
  end)

  it("a table is still refused in a field of another type", function()
    local Other = db:define("Other", { tableName = "other", timestamps = false, fields = {
      id = { type = T.INTEGER, primaryKey = true }, t = { type = T.TEXT } } })
    assert.has_error(function() Other:build{ t = {} } end,
      "Other:build: bad value for field 'Other.t' (table cannot be stored)")
  end)

  it("reading text that is not JSON raises, naming it", function()
    db:exec("INSERT INTO doc (id, meta) VALUES (1, '{oops')")
    assert.has_error(function() Doc:findByPk(1) end)
    local ok, err = pcall(Doc.findByPk, Doc, 1)
    assert.is_false(ok)
    assert.truthy(tostring(err):find("not JSON", 1, true))
  end)
end)

describe("a where on a path inside a JSON field (junction.json)", function()
  local db, Doc, J
  before_each(function()
    db = H.open()
    J = junction.json
    Doc = db:define("Doc", { tableName = "doc", timestamps = false, fields = {
      id = { type = T.INTEGER, primaryKey = true }, meta = { type = T.JSON }, t = { type = T.TEXT },
    }})
    assert(db:sync())
    assert(Doc:create{ id = 1, meta = { a = 1, tags = { "x", "y" }, author = { name = "ada" }, ok = true } })
    assert(Doc:create{ id = 2, meta = { a = 2, tags = junction.array(), author = { name = "bob" }, ok = false } })
    assert(Doc:create{ id = 3, meta = { b = 1 } })
  end)
  after_each(function() db:close() end)

  local function ids(where)
    local out = {}
    for _, d in ipairs(Doc:findAll{ where = where, order = { "id" } }) do out[#out + 1] = d.id end
    return out
  end

  it("compares the value at the path with every operator", function()
    assert.same({ 1 }, ids{ [J("meta", "$.a")] = 1 })
    assert.same({ 1, 2 }, ids{ [J("meta", "$.a")] = { gte = 1 } })
    assert.same({ 2 }, ids{ [J("meta", "$.author.name")] = { ne = "ada" } })
    assert.same({ 1, 2 }, ids{ [J("meta", "$.author.name")] = { "ada", "bob" } })
    assert.same({ 1 }, ids{ [J("meta", "$.tags[0]")] = "x" })
    assert.same({ 1 }, ids{ [J("meta", "$.tags[#-1]")] = "y" })
    assert.same({ 1 }, ids{ [J("meta", "$.ok")] = true })
    assert.same({ 3 }, ids{ [J("meta", "$.a")] = junction.null })
    assert.same({ 2 }, ids{ [J("meta", "$.a")] = { between = { 2, 5 } }, id = { lt = 3 } })
    assert.same({ 1, 3 }, ids{ ["or"] = { { [J("meta", "$.b")] = 1 }, { [J("meta", "$.a")] = 1 } } })
    assert.equal(1, Doc:count{ where = { [J("meta", "$.author.name")] = { like = "b%" } } })
    local long = {}
    for i = 1, 100 do long[i] = "n" .. i end
    long[50] = "ada"
    assert.same({ 1 }, ids{ [J("meta", "$.author.name")] = long })
  end)

  sqlite_it("binds the path and the value", function()
    local seen = {}
    local db2 = H.open { log = function(sql, params) seen[#seen + 1] = { sql, params } end }
    local D2 = db2:define("Doc", { tableName = "doc", timestamps = false, fields = {
      id = { type = T.INTEGER, primaryKey = true }, meta = { type = T.JSON } } })
    assert(db2:sync())
    D2:findAll{ where = { [J("meta", "$.a")] = "x'); DROP TABLE doc; --" } }
    local last = seen[#seen]
    assert.truthy(last[1]:find('json_extract("meta", ?) = ?', 1, true), last[1])
    db2:close()
  end)

  pg_it("binds the path as a text[] and the value on PostgreSQL", function()
    local seen = {}
    local db2 = H.open { log = function(sql, params) seen[#seen + 1] = { sql, params } end }
    local D2 = db2:define("Doc", { tableName = "doc", timestamps = false, fields = {
      id = { type = T.INTEGER, primaryKey = true }, meta = { type = T.JSON } } })
    assert(db2:sync())
    assert.same({}, D2:findAll{ where = { [J("meta", '$."a b".c[#-1][2]')] = "x'); DROP TABLE doc; --" } })
    local last = seen[#seen]
    assert.truthy(last[1]:find('"meta"::jsonb #>> ?::text[]', 1, true), last[1])
    assert.equal('{"a b","c","-1","2"}', last[2][1])
    db2:close()
  end)

  it("updates and destroys by a path", function()
    assert(Doc:update({ t = "hit" }, { where = { [J("meta", "$.author.name")] = "bob" } }))
    assert.equal("hit", assert(Doc:findByPk(2)).t)
    assert(Doc:destroy{ where = { [J("meta", "$.b")] = 1 } })
    assert.is_nil(Doc:findByPk(3))
  end)

  it("compares as SQLite's json_extract: numbers with numbers, text with text, numbers below text", function()
    assert(Doc:create{ id = 4, meta = { a = "2", n = 10, f = 0.1, big = 9007199254740993 } })
    assert(Doc:create{ id = 5, meta = { a = { 1, 2 }, n = "10", s = "B" } })
    assert(Doc:create{ id = 6, meta = { a = junction.null, s = "a" } })
    -- a number is no string: "2" is not 2
    assert.same({ 2 }, ids{ [J("meta", "$.a")] = 2 })
    assert.same({ 4 }, ids{ [J("meta", "$.a")] = "2" })
    -- ne: every value that is there and differs, of any kind; null and missing are neither
    assert.same({ 1, 4, 5 }, ids{ [J("meta", "$.a")] = { ne = 2 } })
    assert.same({ 1, 2, 5 }, ids{ [J("meta", "$.a")] = { ne = "2" } })
    -- text is larger than every number, so "2" and [1,2] are > 1 and not < 9
    assert.same({ 2, 4, 5 }, ids{ [J("meta", "$.a")] = { gt = 1 } })
    assert.same({ 1, 2 }, ids{ [J("meta", "$.a")] = { lt = 9 } })
    assert.same({ 1, 2 }, ids{ [J("meta", "$.a")] = { lt = "" } })
    assert.same({ 5 }, ids{ [J("meta", "$.s")] = { lt = "a" } })     -- byte order: "B" < "a"
    assert.same({ 6 }, ids{ [J("meta", "$.s")] = { gte = "a" } })
    -- true and false are 1 and 0
    assert.same({ 1 }, ids{ [J("meta", "$.ok")] = 1 })
    assert.same({ 2 }, ids{ [J("meta", "$.ok")] = false })
    assert.same({ 1, 2 }, ids{ [J("meta", "$.ok")] = { between = { 0, 1 } } })
    -- numbers compare as numbers: 10 is 10.0, 0.1 is the double 0.1, big integers exactly
    assert.same({ 4 }, ids{ [J("meta", "$.n")] = 10.0 })
    assert.same({ 5 }, ids{ [J("meta", "$.n")] = "10" })
    assert.same({ 4 }, ids{ [J("meta", "$.f")] = 0.1 })
    assert.same({ 4 }, ids{ [J("meta", "$.big")] = 9007199254740993 })
    if math.type then   -- 64-bit integers: 2^53 + 1 is not 2^53
      assert.same({}, ids{ [J("meta", "$.big")] = 9007199254740992 })
    end
    -- null: JSON null and a missing path alike
    assert.same({ 3, 6 }, ids{ [J("meta", "$.a")] = { isNull = true } })
    assert.same({ 1, 2, 4, 5 }, ids{ [J("meta", "$.a")] = { ne = junction.null } })
    -- lists of mixed kinds; notIn and notBetween leave null and missing out
    assert.same({ 1, 4 }, ids{ [J("meta", "$.a")] = { 1, "2", "x" } })
    assert.same({ 2, 5 }, ids{ [J("meta", "$.a")] = { notIn = { 1, "2" } } })
    assert.same({ 4, 5 }, ids{ [J("meta", "$.a")] = { notBetween = { 0, 5 } } })
    assert.same({ 2, 4 }, ids{ [J("meta", "$.a")] = { 2, "2", "n" .. ("x"):rep(10), 2.5, 1e300 * 10 },
                               id = { gt = 1 } })
    local long = {}
    for i = 1, 100 do long[i] = i % 2 == 0 and i or tostring(i) end
    assert.same({ 2 }, ids{ [J("meta", "$.a")] = long })
    long[3] = "2"
    assert.same({ 2, 4 }, ids{ [J("meta", "$.a")] = long })
    -- a path past the end of an array, or into a number, is missing
    assert.same({}, ids{ [J("meta", "$.tags[2]")] = "x" })
    assert.same({ 1 }, ids{ [J("meta", "$.tags[#-2]")] = "x" })
    assert.same({}, ids{ [J("meta", "$.tags[#-3]")] = "x" })
    assert.same({}, ids{ [J("meta", "$.a.b")] = 1 })
    assert.same({}, ids{ [J("meta", "$.tags[99999999999]")] = "x" })
  end)

  it("raises for a field that is not JSON, no field, or a bad path", function()
    assert.has_error(function() Doc:findAll{ where = { [J("t", "$.a")] = 1 } } end,
      "Doc:findAll: bad where (junction.json names field 't', which is not a JSON field)")
    assert.has_error(function() Doc:findAll{ where = { [J("nope", "$.a")] = 1 } } end,
      "Doc:findAll: bad where field 'nope' (no such field in Doc)")
    for _, bad in ipairs{ "a", "$a", "$.", "$[x]", "$[1", '$.""', "$.a b", "" } do
      assert.has_error(function() J("meta", bad) end)
    end
    assert.has_error(function() J(1, "$") end,
      "junction.json: bad argument #1 (field name expected, got number)")
    assert.equal('junction.json("meta", "$.a[2]")', tostring(J("meta", "$.a[2]")))
  end)
end)

describe("JSON and ENUM fields of associated models", function()
  it("read back as tables through include and through getters", function()
    local db = H.open()
    local A = db:define("Author", { tableName = "author", timestamps = false, fields = {
      id = { type = T.INTEGER, primaryKey = true }, prefs = { type = T.JSON } } })
    local B = db:define("Book", { tableName = "book", timestamps = false, fields = {
      id = { type = T.INTEGER, primaryKey = true },
      author_id = { type = T.INTEGER, references = { model = "author", key = "id" } },
      tags = { type = T.JSON }, state = { type = T.ENUM("draft", "out") } } })
    db:associate {
      Author = { { hasMany = "Book", foreignKey = "author_id", as = "Books" } },
      Book = { { belongsTo = "Author", foreignKey = "author_id", as = "Author" } },
    }
    assert(db:sync())
    assert(A:create{ id = 1, prefs = { theme = "dark" } })
    assert(B:create{ id = 1, author_id = 1, tags = { "a", "b" }, state = "out" })
    local a = assert(A:findByPk(1, { include = { "Books" } }))
    assert.same({ "a", "b" }, a.Books[1].tags)
    assert.equal('{"Books":[{"author_id":1,"id":1,"state":"out","tags":["a","b"]}],"id":1,"prefs":{"theme":"dark"}}',
      a:toJSON())
    local b = assert(B:findByPk(1, { include = { "Author" } }))
    assert.equal("dark", b.Author.prefs.theme)
    assert.same({ "a", "b" }, assert(a:getBooks())[1].tags)
    db:close()
  end)
end)

describe("junction.toJSON and junction.fromJSON", function()
  it("decode what they encode, arrays marked so that [] stays []", function()
    local v = junction.fromJSON('{"a":[],"b":{},"c":[1,{"d":null}],"e":"\\u00e9\\ud83d\\ude00"}')
    assert.equal("é😀", v.e)
    assert.equal(junction.null, v.c[2].d)
    assert.equal('{"a":[],"b":{},"c":[1,{"d":null}],"e":"é😀"}', junction.toJSON(v))
  end)

  it("return a failure for bad text and for values JSON cannot write", function()
    for _, text in ipairs{ "", "[1,", "{1:2}", "[01]", "tru", '"\\ud800"', "[1] x", '"a\1"' } do
      local v, msg, code = junction.fromJSON(text)
      assert.is_nil(v)
      assert.equal(junction.VALIDATION, code)
      assert.truthy(msg:find("invalid JSON"), text)
    end
    local v, msg, code = junction.toJSON{ print }
    assert.is_nil(v)
    assert.equal(junction.VALIDATION, code)
    assert.truthy(msg:find("function"))
  end)

  it("read a top-level null as junction.null, never a bare nil", function()
    assert.equal(junction.null, junction.fromJSON("null"))
    assert.equal(junction.null, junction.fromJSON(" null\n"))
    assert.equal("null", junction.toJSON(junction.null))
  end)

  it("write a table met twice once each time, and refuse a table shared past any size quickly", function()
    local shared = { a = 1 }
    assert.equal('[{"a":1},{"a":1}]', junction.toJSON({ shared, shared }))
    local x = { 1 }
    for _ = 1, 100 do x = { x, x } end   -- 2^100 values written out
    local v, msg, code = junction.toJSON(x)
    assert.is_nil(v)
    assert.equal(junction.VALIDATION, code)
    assert.truthy(msg:find("too many values", 1, true), msg)
    local c = {}
    c[1], c[2] = c, c
    v, msg = junction.toJSON(c)
    assert.is_nil(v)
    assert.truthy(msg:find("too deep", 1, true), msg)
  end)

  it("raise for a misuse", function()
    assert.has_error(function() junction.fromJSON(1) end,
      "junction.fromJSON: bad argument #1 (string expected, got number)")
    assert.has_error(function() junction.array(1) end,
      "junction.array: bad argument #1 (table expected, got number)")
  end)
end)

describe("the ENUM type", function()
  local db, P
  before_each(function()
    db = H.open()
    P = db:define("Pub", { tableName = "pub", timestamps = false, fields = {
      id = { type = T.INTEGER, primaryKey = true, autoIncrement = true },
      status = { type = T.ENUM("draft", "live", "it's"), allowNull = false, defaultValue = "draft" },
    }})
    assert(db:sync())
  end)
  after_each(function() db:close() end)

  it("accepts its values and refuses others before any SQL, naming the values", function()
    local p = assert(P:create{})
    assert.equal("draft", p.status)
    assert(P:create{ status = "it's" })
    local ok, msg, code, details = P:create{ status = "gone" }
    assert.is_nil(ok)
    assert.equal(junction.VALIDATION, code)
    assert.equal([[Pub.status: "gone" is not one of the ENUM's values ("draft", "live", "it's")]], msg)
    assert.equal(msg, details.errors.status)
    ok, msg = P:create{ status = 1 }
    assert.is_nil(ok)
    assert.truthy(msg:find("ENUM"))
    p.status = "nope"
    ok, msg, code = p:save()
    assert.is_nil(ok)
    assert.truthy(msg:find("ENUM"))
    assert.equal(junction.VALIDATION, code)
    assert.equal("draft", assert(p:reload()).status)
    ok, msg, code = P:update({ status = "nope" }, { where = { id = p.id } })
    assert.is_nil(ok)
    assert.truthy(msg:find("ENUM"))
    assert.equal(junction.VALIDATION, code)
    assert.equal(2, count_rows(db, "pub"))
  end)

  it("is a CHECK constraint in the table", function()
    if not H.is_pg then   -- SQLite's DDL text; on both, the server refuses another value
      local sql = db:query("SELECT sql FROM sqlite_master WHERE name = 'pub'")[1].sql
      assert.truthy(sql:find([["status" TEXT CHECK ("status" IN ('draft', 'live', 'it''s'))]], 1, true), sql)
    end
    local ok = pcall(db.exec, db, "INSERT INTO pub (status) VALUES ('raw')")
    local n = count_rows(db, "pub")
    assert.is_true(not ok or n == 0)
    assert.equal(0, n)
  end)

  it("raises for a bad declaration", function()
    assert.has_error(function() T.ENUM() end)
    assert.has_error(function() T.ENUM("a", 1) end,
      "junction.types.ENUM: bad value #2 (string expected, got number)")
    assert.has_error(function() T.ENUM("a", "a") end, "junction.types.ENUM: value 'a' given twice")
    assert.has_error(function()
      db:define("E2", { tableName = "e2", fields = { s = { type = T.ENUM } } })
    end)
  end)
end)

describe("the UUID type and junction.UUIDV4", function()
  local db, U
  before_each(function()
    db = H.open()
    U = db:define("U", { tableName = "u", timestamps = false, fields = {
      id = { type = T.UUID, primaryKey = true, defaultValue = junction.UUIDV4 },
      other = { type = T.UUID },
    }})
    assert(db:sync())
  end)
  after_each(function() db:close() end)

  it("gives each row a random version-4 key", function()
    local seen = {}
    for _ = 1, 50 do
      local u = assert(U:create{})
      assert.truthy(u.id:match("^%x%x%x%x%x%x%x%x%-%x%x%x%x%-4%x%x%x%-[89ab]%x%x%x%-%x%x%x%x%x%x%x%x%x%x%x%x$"), u.id)
      assert.is_nil(seen[u.id])
      seen[u.id] = true
      assert.is_true(assert(U:findByPk(u.id)) == u)
    end
  end)

  it("stores a given UUID in lower case and refuses what is not one", function()
    local u = assert(U:create{ other = "A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11" })
    assert.equal("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", u.other)
    assert.equal(u.other, assert(U:findByPk(u.id)).other)
    for _, bad in ipairs{ "a0eebc99", "a0eebc999c0b4ef8bb6d6bb9bd380a11",
                          "g0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", 12 } do
      local ok, msg, code = U:create{ other = bad }
      assert.is_nil(ok)
      assert.equal(junction.VALIDATION, code)
      assert.truthy(msg:find("is not a UUID", 1, true), msg)
    end
  end)
end)

describe("the DATEONLY type and junction.NOW", function()
  local db, E
  before_each(function()
    db = H.open()
    E = db:define("Ev", { tableName = "ev", timestamps = false, fields = {
      id = { type = T.INTEGER, primaryKey = true, autoIncrement = true },
      day = { type = T.DATEONLY },
      at = { type = T.DATE, defaultValue = junction.NOW },
      today = { type = T.DATEONLY, defaultValue = junction.NOW },
    }})
    assert(db:sync())
  end)
  after_each(function() db:close() end)

  it("stores YYYY-MM-DD, and seconds since 1970 as their UTC day", function()
    local e = assert(E:create{ day = "2024-02-29" })
    assert.equal("2024-02-29", e.day)
    assert.equal("2024-02-29", assert(E:findByPk(e.id)).day)
    e = assert(E:create{ day = 86400 * 365 + 3600 })
    assert.equal("1971-01-01", e.day)
  end)

  it("refuses a date that does not exist and one with a time", function()
    for _, bad in ipairs{ "2023-02-29", "2024-13-01", "2024-01-01 10:00", "20240101", true } do
      local ok, msg, code = E:create{ day = bad }
      assert.is_nil(ok)
      assert.equal(junction.VALIDATION, code)
      assert.truthy(msg:find("is not a date", 1, true), msg)
    end
  end)

  it("junction.NOW is the current time: a DATE stamp and a DATEONLY day", function()
    local before = os.time()
    local e = assert(E:create{})
    assert.truthy(e.today:match("^%d%d%d%d%-%d%d%-%d%d$"), e.today)
    assert.truthy(e.at:match("^%d%d%d%d%-%d%d%-%d%d %d%d:%d%d:%d%d%.%d%d%d$"), e.at)
    assert.equal(e.today, e.at:sub(1, 10))
    assert.equal(os.date("!%Y-%m-%d", before):sub(1, 7), e.today:sub(1, 7))
    assert.is_true(math.abs(junction.NOW() - os.time()) < 5)
  end)
end)

describe("BIGINT", function()
  it("is a 64-bit INTEGER field; beyond 2^53 on Lua 5.1 and LuaJIT it reads as decimal text", function()
    local db = H.open()
    local B = db:define("Big", { tableName = "big", timestamps = false, fields = {
      id = { type = T.INTEGER, primaryKey = true, autoIncrement = true },
      n = { type = T.BIGINT },
    }})
    assert(db:sync())
    assert.equal("BIGINT", T.BIGINT.name)
    local b = assert(B:create{ n = "9007199254740993" })
    local r = assert(B:findByPk(b.id))
    if H.has_int then
      assert.equal(9007199254740993, r.n)
    else
      assert.equal("9007199254740993", r.n)
    end
    assert.equal(r.n, b.n)
    assert.equal("integer", db:query("SELECT " .. H.typeof("n") .. " AS t FROM big")[1].t)
    assert.equal("9007199254740993", db:query("SELECT CAST(n AS TEXT) AS t FROM big")[1].t)
    local small = assert(B:create{ n = 42 })
    assert.equal(42, assert(B:findByPk(small.id)).n)
    db:close()
  end)
end)

describe("toTable and JSON out", function()
  local db, m
  before_each(function()
    db = H.open()
    m = H.blog(db)
  end)
  after_each(function() db:close() end)

  it("lists and loaded associations are arrays: [] when empty", function()
    local p = assert(m.Post:create{ text = "hello" })
    local posts = m.Post:findAll{ include = { "Genres" } }
    local t = posts:toTable()
    assert.equal(1, #t)
    assert.equal("hello", t[1].text)
    assert.same({}, t[1].Genres)
    local json = junction.toJSON(posts)
    assert.truthy(json:find('"Genres":[]', 1, true), json)
    assert.equal("[", json:sub(1, 1))
    assert.equal("[]", m.Post:findAll{ where = { text = "none" } }:toJSON())
    assert.equal("[]", junction.toJSON(m.Post:findAll{ where = { text = "none" } }:toTable()))
    assert(p:setGenres{ assert(m.Genre:create{ name = "g" }) })
    local one = m.Post:findByPk(p.post_id, { include = { "Genres" } })
    json = one:toJSON()
    assert.truthy(json:find('"Genres":[{', 1, true), json)
    assert.truthy(json:find('"text":"hello"', 1, true), json)
  end)

  it("toTable gives lua-cjson arrays and objects", function()
    local ok, cjson = pcall(require, "cjson")
    if not ok then return end
    local p = assert(m.Post:create{ text = "x" })
    assert(p:setGenres{ assert(m.Genre:create{ name = "a" }) })
    local t = m.Post:findAll{ include = { "Genres" } }:toTable()
    local back = cjson.decode(cjson.encode(t))
    assert.equal("x", back[1].text)
    assert.equal("a", back[1].Genres[1].name)
    if rawget(cjson, "array_mt") or rawget(cjson, "empty_array_mt") then
      assert.equal("[]", cjson.encode(m.Post:findAll{ where = { text = "none" } }:toTable()))
    end
  end)
end)

-- junction.toJSON writes a list of instances (and an instance) straight from
-- their fields when their toTable would be exactly those fields, without
-- making the toTable copy first: the text must be what the copy gives.
describe("junction.toJSON straight from instances", function()
  local db, Row
  before_each(function()
    db = H.open()
    local fields = {
      id = { type = T.INTEGER, primaryKey = true, autoIncrement = true },
      s = { type = T.TEXT }, f = { type = T.REAL }, b = { type = T.BOOLEAN },
      meta = { type = T.JSON }, big = { type = T.BIGINT },
    }
    Row = db:define("Row", { tableName = "row", timestamps = false, fields = fields })
    assert(db:sync())
  end)
  after_each(function() db:close() end)

  -- the text through the plain tables, the way toJSON wrote every value before
  local function via_tables(v)
    return junction.toJSON(v:toTable())
  end

  it("writes what toTable would: escapes, UTF-8, numbers, nil fields left out", function()
    assert(Row:create{ s = 'q"b\\s\n\r\t\1 é😀', f = -2.5, b = true, meta = { z = 1, a = { 1, 2 } }, big = -7 })
    assert(Row:create{ s = "", f = 0.1, b = false, big = 9007199254740991 })
    assert(Row:create{})
    local rows = Row:findAll{ order = "id" }
    local json = junction.toJSON(rows)
    assert.equal(via_tables(rows), json)
    assert.equal('[{"b":true,"big":-7,"f":-2.5,"id":1,"meta":{"a":[1,2],"z":1},'
      .. '"s":"q\\"b\\\\s\\n\\r\\t\\u0001 é😀"},{"b":false,"big":9007199254740991,"f":0.1,'
      .. '"id":2,"s":""},{"id":3}]', json)
    assert.equal(via_tables(rows[1]), junction.toJSON(rows[1]))
    assert.equal(via_tables(rows[3]), rows[3]:toJSON())
    assert.equal("[]", junction.toJSON(Row:findAll{ where = { id = 0 } }))
  end)

  it("falls back to toTable for a loaded association, a VIRTUAL field, or a list with other keys", function()
    local m = H.blog(db)
    local p = assert(m.Post:create{ text = "hello" })
    assert(p:setGenres{ assert(m.Genre:create{ name = "g" }) })
    local posts = m.Post:findAll{ include = { "Genres" } }
    assert.equal(via_tables(posts), junction.toJSON(posts))
    assert.truthy(junction.toJSON(posts):find('"Genres":[{', 1, true))
    local V = db:define("V", { tableName = "v", timestamps = false, fields = {
      id = { type = T.INTEGER, primaryKey = true, autoIncrement = true },
      name = { type = T.TEXT },
      shout = { type = T.VIRTUAL, get = function(self) return (self.name or ""):upper() end },
    }})
    assert(db:sync())
    assert(V:create{ name = "hi" })
    local vs = V:findAll{}
    assert.equal('[{"id":1,"name":"hi","shout":"HI"}]', junction.toJSON(vs))
    assert(Row:create{ s = "x" })
    local list = Row:findAll{}
    rawset(list, "extra", 1)            -- a list with a key that is no index: refused as before
    local a, am, ac = junction.toJSON(list)
    assert.is_nil(a)
    assert.equal(junction.VALIDATION, ac)
    assert.truthy(am:find("not 1..n", 1, true), am)
  end)

  it("sorts many keys, and writes objects past the few kept on the stack", function()
    local fields = { id = { type = T.INTEGER, primaryKey = true, autoIncrement = true } }
    for i = 1, 70 do fields["f" .. i] = { type = T.INTEGER } end
    local Wide = db:define("Wide", { tableName = "wide", timestamps = false, fields = fields })
    local Mid = db:define("Mid", { tableName = "mid", timestamps = false, fields = {
      id = { type = T.INTEGER, primaryKey = true, autoIncrement = true },
      z1 = { type = T.INTEGER }, y2 = { type = T.INTEGER }, x3 = { type = T.INTEGER },
      w4 = { type = T.INTEGER }, v5 = { type = T.INTEGER }, u6 = { type = T.INTEGER },
      t7 = { type = T.INTEGER }, s8 = { type = T.INTEGER }, r9 = { type = T.INTEGER },
      q10 = { type = T.INTEGER }, p11 = { type = T.INTEGER }, o12 = { type = T.INTEGER },
      n13 = { type = T.INTEGER }, m14 = { type = T.INTEGER }, l15 = { type = T.INTEGER },
      k16 = { type = T.INTEGER }, j17 = { type = T.INTEGER }, i18 = { type = T.INTEGER },
    }})
    assert(db:sync())
    local values = {}
    for i = 1, 70 do values["f" .. i] = i * 3 end
    assert(Wide:create(values))
    assert(Mid:create{ z1 = 1, y2 = 2, x3 = 3, w4 = 4, v5 = 5, u6 = 6, t7 = 7, s8 = 8, r9 = 9,
                       q10 = 10, p11 = 11, o12 = 12, n13 = 13, m14 = 14, l15 = 15, k16 = 16,
                       j17 = 17, i18 = 18 })
    for _, model in ipairs{ Wide, Mid } do
      local rows = model:findAll{}
      local json = junction.toJSON(rows)
      assert.equal(via_tables(rows), json)
      local keys, last = 0, ""
      for k in json:gmatch('"([%w]+)":') do
        assert.truthy(k > last, k .. " after " .. last)
        last, keys = k, keys + 1
      end
      assert.equal(model == Wide and 71 or 19, keys)
    end
    local t = {}
    for i = 1, 100 do t["k" .. i] = i end   -- a plain object past the stack's few
    local back = junction.fromJSON(junction.toJSON(t))
    assert.same(t, back)
  end)

  -- The strings are looked at 8 bytes at a time: a byte that needs something
  -- (an escape, a UTF-8 check) must be found at any place in a word or after it.
  it("finds a byte that needs an escape or a UTF-8 check at every place in a string", function()
    local escapes = { ['"'] = '\\"', ["\\"] = "\\\\", ["\n"] = "\\n", ["\r"] = "\\r", ["\t"] = "\\t" }
    local function reference(s)   -- JSON text of a valid UTF-8 string, as junction writes it
      return '"' .. s:gsub('[%z\1-\31"\\]', function(c)
        return escapes[c] or ("\\u%04x"):format(c:byte())
      end) .. '"'
    end
    local specials = { "\0", "\1", "\31", '"', "\\", "\n", "é", "😀", "\127", " ", "~", "!", "#", "[", "]" }
    local bad = { "\128", "\255", "\195", "\237\160\128" }   -- not UTF-8 text
    for len = 0, 19 do
      for pos = 1, len + 1 do
        for _, c in ipairs(specials) do
          local s = ("a"):rep(pos - 1) .. c .. ("b"):rep(len - pos + 1)
          assert.equal("[" .. reference(s) .. "]", junction.toJSON{ s })
          if not (H.is_pg and c == "\0") then   -- PostgreSQL's text holds no NUL byte
            assert(Row:create{ s = s })
            local row = Row:findAll{ order = { { "id", "DESC" } }, limit = 1 }[1]
            assert.equal('{"id":' .. tostring(row.id) .. ',"s":' .. reference(s) .. "}", junction.toJSON(row))
            assert(row:destroy())
          end
        end
        for _, c in ipairs(bad) do
          local s = ("a"):rep(pos - 1) .. c .. ("b"):rep(len - pos + 1)
          local v, msg, code = junction.toJSON{ s }
          assert.is_nil(v, s)
          assert.equal(junction.VALIDATION, code)
          assert.truthy(msg:find("UTF-8", 1, true), msg)
        end
      end
    end
  end)

  -- The text starts in a buffer on the C stack and moves to Lua memory past it.
  it("writes texts of every length around the first buffer's size, and long ones", function()
    for _, n in ipairs { 1000, 1005, 1010, 1011, 1012, 1013, 1014, 1015, 1020, 1030, 2100, 70000 } do
      local s = ("x"):rep(n)
      assert(Row:create{ s = s })
      local rows = Row:findAll{ order = "id" }
      local want = {}
      for i, r in ipairs(rows) do want[i] = '{"id":' .. tostring(r.id) .. ',"s":"' .. r.s .. '"}' end
      assert.equal("[" .. table.concat(want, ",") .. "]", junction.toJSON(rows))
      assert.equal('["' .. s .. '"]', junction.toJSON{ s })
      assert.equal('{"a":"' .. s .. '"}', junction.toJSON{ a = s })
    end
  end)

  it("writes integers at the ends of their range", function()
    assert.equal("[0,-1,9007199254740991,-9007199254740991]",
      junction.toJSON{ 0, -1, 9007199254740991, -9007199254740991 })
    if math.maxinteger then
      assert.equal("[" .. tostring(math.mininteger) .. "," .. tostring(math.maxinteger) .. "]",
        junction.toJSON{ math.mininteger, math.maxinteger })
    end
    local v, msg, code = junction.toJSON{ s = "\255" }
    assert.is_nil(v)
    assert.equal(junction.VALIDATION, code)
    assert.truthy(msg:find("UTF-8", 1, true), msg)
  end)
end)
