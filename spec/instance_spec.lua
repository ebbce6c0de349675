-- spec/instance_spec.lua: instances (docs/API.md "Instances"): fields, changed(),
-- save/update/reload/destroy, toTable, tostring, ==, timestamps, type round trips.
local H = require "spec.helper"
local sqlite_it = H.sqlite_only(it, pending)
local T = H.T

local TS = "^%d%d%d%d%-%d%d%-%d%d %d%d:%d%d:%d%d%.%d%d%d$"

describe("instances", function()
  local db, m, log, entries
  before_each(function()
    log, entries = H.recorder()
    db = H.open { log = log }
    m = H.blog(db)
  end)
  after_each(function() db:close() end)

  describe("fields", function()
    it("read and write declared fields", function()
      local p = assert(m.Post:create { text = "Hello" })
      assert.equal(1, p.post_id)
      assert.equal("Hello", p.text)
      p.text = "World"
      assert.equal("World", p.text)
    end)

    it("are userdata of type junction.Instance", function()
      local p = assert(m.Post:create { text = "Hello" })
      assert.equal("userdata", type(p))
    end)

    it("raise on reading an unknown name, naming model and name", function()
      local p = assert(m.Post:create { text = "Hello" })
      local msg = H.raises(function() return p.titel end)
      H.mentions(msg, "Post", "titel")
    end)

    it("raise on writing an unknown name, naming model and name", function()
      local p = assert(m.Post:create { text = "Hello" })
      local msg = H.raises(function() p.titel = "x" end)
      H.mentions(msg, "Post", "titel")
    end)

    it("raise on writing a value of a type the field cannot hold", function()
      local p = assert(m.Post:create { text = "Hello" })
      local ok = pcall(function()
        p.text = {}
        p:save()
      end)
      assert.is_false(ok)
      assert.equal("Hello", m.Post:findByPk(1).text)
    end)

    it("raise on create with an unknown field", function()
      H.mentions(H.raises(function() m.Post:create { text = "a", titel = "b" } end), "Post", "create", "titel")
    end)

    it("can be set to nil (NULL) where allowed", function()
      local g = assert(m.Genre:create { name = "g" })
      local W = db:define("W", { timestamps = false, fields = { a = { type = T.TEXT } } })
      assert(db:sync())
      local w = assert(W:create { a = "x" })
      w.a = nil
      assert(w:save())
      assert.is_nil(W:findByPk(w.id).a)
      assert.equal("g", g.name)
    end)
  end)

  describe("Model:create", function()
    it("answers the instance alone, nil, message, code (and details) on a failure, "
       .. "and raises a misuse at the caller's line", function()
      assert.equal(1, select("#", m.Post:create { text = "one" }))
      local n, v, msg, code, details = select("#", m.Post:create { }), m.Post:create { }
      assert.equal(4, n)
      assert.is_nil(v)
      assert.matches("text", msg)
      assert.equal(H.junction.VALIDATION, code)
      assert.is_table(details)
      local ok, err = pcall(function() local p = m.Post:create(5) return p end)
      assert.is_false(ok)
      assert.matches("^[^:]+:%d+: Post:create: bad argument #1", err)
    end)

    it("gives createdAt and updatedAt the same text", function()
      local p = assert(m.Post:create { text = "t" })
      assert.matches(TS, p.created_at)
      assert.equal(p.created_at, p.updated_at)
    end)
  end)

  describe("changed()", function()
    it("is false after create and after save, lists changed fields in between", function()
      local p = assert(m.Post:create { text = "a" })
      assert.is_false(p:changed())
      p.text = "b"
      assert.same({ "text" }, p:changed())
      assert.is_true(p:changed("text"))
      assert.is_false(p:changed("post_id"))
      assert(p:save())
      assert.is_false(p:changed())
      assert.is_false(p:changed("text"))
    end)

    it("does not mark a field written with its current value", function()
      local p = assert(m.Post:create { text = "same" })
      p.text = "same"
      assert.is_false(p:changed())
    end)

    it("lists several fields", function()
      local W = db:define("W", { timestamps = false, fields = {
        a = { type = T.TEXT }, b = { type = T.TEXT }, c = { type = T.TEXT } } })
      assert(db:sync())
      local w = assert(W:create { a = "1", b = "1", c = "1" })
      w.a = "2"; w.c = "2"
      local ch = w:changed()
      table.sort(ch)
      assert.same({ "a", "c" }, ch)
    end)
  end)

  describe("save()", function()
    it("inserts a built instance", function()
      local p = m.Post:build { text = "built" }
      assert.is_nil(p.post_id)
      assert.equal(0, m.Post:count())
      local r = assert(p:save())
      assert.equal(p, r)
      assert.equal(1, p.post_id)
      assert.equal("built", m.Post:findByPk(1).text)
    end)

    it("UPDATEs only the changed columns", function()
      local W = db:define("Wide", { underscored = true, fields = {
        title = { type = T.TEXT }, body = { type = T.TEXT }, views = { type = T.INTEGER } } })
      assert(db:sync())
      local w = assert(W:create { title = "t", body = "b", views = 1 })
      w.title = "t2"
      local n0 = #entries
      assert(w:save())
      local ups = H.matching(entries, "^%s*UPDATE", n0 + 1)
      assert.equal(1, #ups)
      local sql = ups[1].sql
      assert.matches("title", sql, 1, true)
      assert.is_nil(sql:find("body", 1, true), "UPDATE names body: " .. sql)
      assert.is_nil(sql:find("views", 1, true), "UPDATE names views: " .. sql)
      local row = db:query('SELECT title, body, views FROM "Wide"')[1]
      assert.same({ title = "t2", body = "b", views = 1 }, row)
    end)

    it("does not overwrite columns changed elsewhere that this instance did not touch", function()
      local W = db:define("Wide", { timestamps = false, fields = {
        title = { type = T.TEXT }, body = { type = T.TEXT } } })
      assert(db:sync())
      local w = assert(W:create { title = "t", body = "b" })
      assert(db:query([[UPDATE "Wide" SET body = 'other' WHERE id = ?]], w.id))
      w.title = "t2"
      assert(w:save())
      assert.same({ title = "t2", body = "other" }, db:query('SELECT title, body FROM "Wide"')[1])
    end)

    it("issues no UPDATE when nothing changed", function()
      local p = assert(m.Post:create { text = "a" })
      local n0 = #entries
      assert(p:save())
      assert.equal(0, #H.matching(entries, "^%s*UPDATE", n0 + 1))
    end)

    it("returns nil, message, code on a constraint and writes nothing", function()
      assert(m.Genre:create { name = "a" })
      local b = assert(m.Genre:create { name = "b" })
      b.name = "a"
      local ok, msg, code = b:save()
      assert.is_nil(ok)
      assert.is_string(msg)
      assert.equal(2067, code)
      assert.equal("b", m.Genre:findByPk(2).name)
    end)
  end)

  describe("update(values)", function()
    it("sets then saves, returns the instance", function()
      local p = assert(m.Post:create { text = "a" })
      local r = assert(p:update { text = "b" })
      assert.equal(p, r)
      assert.equal("b", p.text)
      assert.equal("b", m.Post:findByPk(1).text)
      assert.is_false(p:changed())
    end)

    it("raises on an unknown field", function()
      local p = assert(m.Post:create { text = "a" })
      H.mentions(H.raises(function() p:update { titel = "b" } end), "Post", "titel")
    end)
  end)

  describe("reload()", function()
    it("reads the row again, dropping unsaved changes", function()
      local p = assert(m.Post:create { text = "a" })
      assert(db:query("UPDATE post SET text = 'from sql' WHERE post_id = 1"))
      assert.equal("a", p.text)
      p.text = "local"
      assert(p:reload())
      assert.equal("from sql", p.text)
      assert.is_false(p:changed())
    end)
  end)

  describe("destroy()", function()
    it("deletes the row and returns true", function()
      local p = assert(m.Post:create { text = "a" })
      assert.is_true(p:destroy())
      assert.is_nil(m.Post:findByPk(1))
      assert.equal(0, m.Post:count())
    end)
  end)

  describe("toTable()", function()
    it("returns a plain table of the fields", function()
      local p = assert(m.Post:create { text = "a" })
      local t = p:toTable()
      assert.is_table(t)
      assert.is_nil(getmetatable(t))
      assert.equal(1, t.post_id)
      assert.equal("a", t.text)
      assert.matches(TS, t.created_at)
      assert.matches(TS, t.updated_at)
      t.text = "changed in copy"
      assert.equal("a", p.text)
      local u = p:to_table()
      assert.equal("a", u.text)
      assert.equal(1, u.post_id)
    end)
  end)

  describe("tostring()", function()
    it("shows the model and its fields", function()
      assert(m.Post:create { text = "Hello" })
      local s = tostring(m.Post:findByPk(1))
      assert.matches("^Post{", s)
      assert.matches("post_id=1", s, 1, true)
      assert.matches('text="Hello"', s, 1, true)
      assert.matches("}$", s)
    end)
  end)

  describe("==", function()
    it("is true for two instances of the same row, false otherwise", function()
      assert(m.Post:create { text = "a" })
      assert(m.Post:create { text = "b" })
      assert(m.Genre:create { name = "g" })
      local a1, a2 = m.Post:findByPk(1), m.Post:findByPk(1)
      assert.is_true(a1 == a2)
      assert.is_false(a1 == m.Post:findByPk(2))
      assert.is_false(a1 == m.Genre:findByPk(1))  -- same key, other model
      assert.equal(m.Post:findAll({ order = "post_id" })[1], a1)
    end)
  end)

  describe("timestamps", function()
    it("are set on create as UTC text YYYY-MM-DD HH:MM:SS.mmm", function()
      local before = os.date("!%Y-%m-%d %H:%M", os.time() - 60)
      local p = assert(m.Post:create { text = "a" })
      assert.matches(TS, p.created_at)
      assert.equal(p.created_at, p.updated_at)
      assert.is_true(p.created_at >= before)
      assert.is_true(p.created_at <= os.date("!%Y-%m-%d %H:%M:%S.999", os.time() + 60))
      local raw = db:query("SELECT created_at, updated_at FROM post")[1]
      assert.equal(p.created_at, raw.created_at)
    end)

    it("updated_at moves on save, created_at stays", function()
      local p = assert(m.Post:create { text = "a" })
      local c0, u0 = p.created_at, p.updated_at
      H.sleep(0.02)
      p.text = "b"
      assert(p:save())
      assert.equal(c0, p.created_at)
      assert.is_true(p.updated_at > u0, p.updated_at .. " > " .. u0)
      local raw = db:query("SELECT created_at, updated_at FROM post")[1]
      assert.equal(c0, raw.created_at)
      assert.equal(p.updated_at, raw.updated_at)
    end)

    it("Model:update moves updated_at; bulkCreate sets both", function()
      local list = assert(m.Genre:bulkCreate { { name = "a" }, { name = "b" } })
      assert.matches(TS, list[1].created_at)
      assert.matches(TS, list[2].updated_at)
      local raw0 = db:query("SELECT created_at, updated_at FROM genre WHERE genre_id = 1")[1]
      assert.matches(TS, raw0.created_at)
      H.sleep(0.02)
      assert.equal(1, m.Genre:update({ name = "a2" }, { where = { genre_id = 1 } }))
      local raw = db:query("SELECT created_at, updated_at FROM genre WHERE genre_id = 1")[1]
      assert.equal(raw0.created_at, raw.created_at)
      assert.is_true(raw.updated_at > raw0.updated_at)
    end)

    it("camelCase names when not underscored", function()
      local W = db:define("W", { fields = { a = { type = T.TEXT } } })
      assert(db:sync())
      local w = assert(W:create { a = "x" })
      assert.matches(TS, w.createdAt)
      assert.matches(TS, w.updatedAt)
    end)
  end)
end)

describe("value round trips", function()
  local db, W
  before_each(function()
    db = H.open()
    W = db:define("Vals", { tableName = "vals", timestamps = false, fields = {
      i = { type = T.INTEGER }, t = { type = T.TEXT }, s = { type = T.STRING(5) },
      r = { type = T.REAL }, b = { type = T.BLOB }, bo = { type = T.BOOLEAN }, d = { type = T.DATE },
    } })
    assert(db:sync())
  end)
  after_each(function() db:close() end)

  local function roundtrip(values)
    local w = assert(W:create(values))
    return assert(W:findByPk(w.id)), w
  end

  it("INTEGER comes back as an integer", function()
    local w = roundtrip { i = 42 }
    assert.equal(42, w.i)
    if H.has_int then assert.equal("integer", math.type(w.i)) end
    assert.equal(-7, roundtrip({ i = -7 }).i)
  end)

  it("REAL", function()
    for _, v in ipairs { 3.25, -0.5, 1e300, 0.1 } do
      assert.equal(v, roundtrip({ r = v }).r)
    end
  end)

  it("BOOLEAN is stored 0/1 and read back as true/false", function()
    local t = roundtrip { bo = true }
    local f = roundtrip { bo = false }
    assert.is_true(t.bo)
    assert.is_false(f.bo)
    local raw = db:query("SELECT bo FROM vals ORDER BY id")
    assert.equal(1, raw[1].bo)
    assert.equal(0, raw[2].bo)
    assert.is_nil(roundtrip({}).bo)
  end)

  it("BOOLEAN works in where", function()
    roundtrip { bo = true }
    roundtrip { bo = false }
    roundtrip { bo = true }
    assert.equal(2, W:count { where = { bo = true } })
    assert.equal(1, W:count { where = { bo = false } })
  end)

  it("DATE keeps ISO-8601 text and stores a number as UTC text", function()
    assert.equal("2024-02-29 13:14:15.678", roundtrip({ d = "2024-02-29 13:14:15.678" }).d)
    local d = roundtrip({ d = 86400 + 3600 }).d
    assert.is_string(d)
    assert.matches("^1970%-01%-02[ T]01:00:00", d)
    local raw = db:query("SELECT d, " .. H.typeof("d") .. " AS ty FROM vals ORDER BY id DESC LIMIT 1")[1]
    assert.equal("text", raw.ty)
  end)

  it("BLOB keeps every byte and is stored as a blob", function()
    local bytes = {}
    for i = 0, 255 do bytes[#bytes + 1] = string.char(i) end
    local blob = table.concat(bytes):rep(4)
    assert.equal(blob, roundtrip({ b = blob }).b)
    assert.equal("blob", db:query("SELECT " .. H.typeof("b") .. " AS ty FROM vals")[1].ty)
  end)

  it("STRING(n) keeps up to n characters (UTF-8 counted as characters)", function()
    assert.equal("fünf!", roundtrip({ s = "fünf!" }).s)
    local ok, msg, code = W:create { s = "longer than five" }
    assert.is_nil(ok)
    assert.equal(H.junction.VALIDATION, code)
    assert.equal('Vals.s: "longer than five" is longer than 5 characters', msg)
  end)

  local hostile = {
    "'; DROP TABLE vals; --",
    'quote " and \' and `',
    "nul\0in\0the\0middle",
    "\0",
    "trailing nul\0",
    "%s %d %q %%",
    "ünïcødé ✓ 🚀",
    "not utf-8 \255\254\192",
    "",
    "\r\n\t\\",
    ("x"):rep(100000),
  }
  if H.is_pg then   -- PostgreSQL's text holds UTF-8 without NUL bytes (docs/POSTGRES.md)
    local kept = {}
    for _, v in ipairs(hostile) do
      if not v:find("\0", 1, true) and not v:find("\255", 1, true) then kept[#kept + 1] = v end
    end
    hostile = kept
  end
  for i, s in ipairs(hostile) do
    it("hostile string #" .. i .. " round-trips as TEXT and finds itself in where", function()
      local w = roundtrip { t = s }
      assert.equal(#s, #w.t)
      assert.equal(s, w.t)
      local found = W:findAll { where = { t = s } }
      assert.equal(1, #found)
      assert.equal(s, found[1].t)
      assert.is_true(H.exists(db, "vals"))
    end)
  end

  sqlite_it("changing a hostile string and saving keeps it intact (a NUL byte: SQLite's text holds it)", function()
    local w = roundtrip { t = "a" }
    w.t = "b\0c'd"
    assert(w:save())
    assert.equal("b\0c'd", W:findByPk(w.id).t)
  end)
end)

describe("an empty create", function()
  it("inserts a row of defaults, also for a model of only its autoincrement key", function()
    local db = H.open()
    local Tick = db:define("Tick", { timestamps = false,
      fields = { id = { type = T.INTEGER, primaryKey = true, autoIncrement = true } } })
    local Box = db:define("Box", { timestamps = false, fields = { n = { type = T.INTEGER, defaultValue = 3 } } })
    assert(db:sync())
    assert.equal(1, assert(Tick:create {}).id)
    assert.equal(2, assert(Tick:create {}).id)
    assert.equal(2, #assert(Tick:bulkCreate { {}, {} }))
    assert.equal(4, Tick:count())
    assert.equal(3, assert(Box:create {}).n)
    db:close()
  end)
end)

describe("an instance read with attributes", function()
  it("writes NULL for a field set to nil that it did not read", function()
    local db = H.open()
    local P = db:define("P", { timestamps = false, fields = {
      id = { type = T.INTEGER, primaryKey = true }, text = { type = T.TEXT }, views = { type = T.INTEGER } } })
    assert(db:sync())
    assert(P:create { id = 1, text = "a", views = 5 })
    local p = P:findAll { attributes = { "text" } }[1]
    p.views = nil
    assert(p:save())
    assert.is_nil(P:findByPk(1).views)
    db:close()
  end)
end)
