-- spec/schema_spec.lua: db:define, every field and model option, the DDL that
-- db:sync writes, identifier checks (docs/API.md "Models").
local H = require "spec.helper"
local T = H.T

-- PRAGMA table_info as name -> row
local function columns(db, tbl)
  local out = {}
  for _, r in ipairs(assert(db:query("SELECT * FROM pragma_table_info(?)", tbl))) do
    out[r.name] = r
  end
  return out
end

-- Indexes of a table: array of { name=, unique=, cols = {...} }
local function indexes(db, tbl)
  local out = {}
  for _, r in ipairs(assert(db:query("SELECT name, \"unique\" AS u FROM pragma_index_list(?)", tbl))) do
    local cols = {}
    for _, c in ipairs(assert(db:query("SELECT name FROM pragma_index_info(?) ORDER BY seqno", r.name))) do
      cols[#cols + 1] = c.name
    end
    out[#out + 1] = { name = r.name, unique = r.u == 1, cols = cols }
  end
  return out
end

local function leading_index(db, tbl, col, unique)
  for _, ix in ipairs(indexes(db, tbl)) do
    if ix.cols[1] == col and (unique == nil or ix.unique == unique) then return ix end
  end
end

local function fkeys(db, tbl)
  local out = {}
  for _, r in ipairs(assert(db:query("SELECT * FROM pragma_foreign_key_list(?)", tbl))) do
    out[r.from] = r
  end
  return out
end

local function norm(sql)  -- upper case, single spaces
  return (sql:upper():gsub("%s+", " "))
end

describe("the seed's models, transcribed from DESIGN.md", function()
  local db, m
  before_each(function()
    db = H.open()
    m = H.blog(db)
  end)
  after_each(function() db:close() end)

  it("are models with their name and tableName", function()
    assert.equal("Post", m.Post.name)
    assert.equal("post", m.Post.tableName)
    assert.equal("Genre", m.Genre.name)
    assert.equal("genre", m.Genre.tableName)
    assert.equal("TagPostGenre", m.TagPostGenre.name)
    assert.equal("tag_post_genre", m.TagPostGenre.tableName)
  end)

  it("creates the three tables", function()
    for _, t in ipairs { "post", "genre", "tag_post_genre" } do
      assert.is_string(H.ddl(db, t), t)
    end
  end)

  it("post: integer autoincrement primary key, text NOT NULL, underscored timestamps", function()
    local sql = norm(H.ddl(db, "post"))
    assert.matches('"POST_ID" INTEGER PRIMARY KEY AUTOINCREMENT', sql, 1, true)
    local c = columns(db, "post")
    assert.equal(1, c.post_id.pk)
    assert.equal("TEXT", c.text.type:upper())
    assert.equal(1, c.text.notnull)
    assert.is_not_nil(c.created_at)
    assert.is_not_nil(c.updated_at)
    assert.is_nil(c.createdAt)
    assert.equal(4, H.nkeys(c))
  end)

  it("genre: name VARCHAR(60) NOT NULL UNIQUE", function()
    local c = columns(db, "genre")
    assert.equal("VARCHAR(60)", c.name.type:upper())
    assert.equal(1, c.name.notnull)
    local ix = leading_index(db, "genre", "name", true)
    assert.is_not_nil(ix, "a unique index on genre.name")
    assert.same({ "name" }, ix.cols)
  end)

  it("tag_post_genre: references with ON DELETE/UPDATE CASCADE", function()
    local fk = fkeys(db, "tag_post_genre")
    assert.equal("post", fk.post_id.table)
    assert.equal("post_id", fk.post_id.to)
    assert.equal("CASCADE", fk.post_id.on_delete)
    assert.equal("CASCADE", fk.post_id.on_update)
    assert.equal("genre", fk.genre_id.table)
    assert.equal("genre_id", fk.genre_id.to)
    assert.equal("CASCADE", fk.genre_id.on_delete)
    assert.equal("CASCADE", fk.genre_id.on_update)
    local sql = norm(H.ddl(db, "tag_post_genre"))
    assert.matches('REFERENCES "POST" ?%(? ?"POST_ID" ?%)? ON DELETE CASCADE ON UPDATE CASCADE', sql)
    assert.matches('REFERENCES "GENRE" ?%(? ?"GENRE_ID" ?%)? ON DELETE CASCADE ON UPDATE CASCADE', sql)
  end)

  it("tag_post_genre: one composite UNIQUE(post_id, genre_id)", function()
    local found
    for _, ix in ipairs(indexes(db, "tag_post_genre")) do
      if ix.unique and #ix.cols == 2 then found = ix end
    end
    assert.is_not_nil(found, "a composite unique index")
    table.sort(found.cols)
    assert.same({ "genre_id", "post_id" }, found.cols)
    -- it is enforced
    assert(db:exec("INSERT INTO post(text, created_at, updated_at) VALUES ('p', 'x', 'x')"))
    assert(db:exec("INSERT INTO genre(name, created_at, updated_at) VALUES ('g', 'x', 'x')"))
    assert(db:exec("INSERT INTO tag_post_genre(post_id, genre_id, created_at, updated_at) VALUES (1, 1, 'x', 'x')"))
    local ok, _, code =
      db:exec("INSERT INTO tag_post_genre(post_id, genre_id, created_at, updated_at) VALUES (1, 1, 'x', 'x')")
    assert.is_nil(ok)
    assert.equal(2067, code)
  end)

  it("every foreign key column leads some index", function()
    for _, col in ipairs { "post_id", "genre_id" } do
      assert.is_not_nil(leading_index(db, "tag_post_genre", col), "an index led by " .. col)
    end
  end)

  it("adds a plain index only on the foreign key column not led by the unique index", function()
    local plain = 0
    for _, col in ipairs { "post_id", "genre_id" } do
      local u = leading_index(db, "tag_post_genre", col, true)
      local p = leading_index(db, "tag_post_genre", col, false)
      assert.is_true((u ~= nil) ~= (p ~= nil), col .. " leads exactly one kind of index")
      if p then plain = plain + 1 end
    end
    assert.equal(1, plain)
  end)

  it("quotes every identifier in the DDL", function()
    local sql = H.ddl(db, "tag_post_genre")
    for _, name in ipairs { "tag_post_genre_id", "post_id", "genre_id", "created_at", "updated_at" } do
      assert.matches('"' .. name .. '"', sql, 1, true)
    end
  end)
end)

describe("model options", function()
  local db
  before_each(function() db = H.open() end)
  after_each(function() db:close() end)

  it("tableName defaults to the model name", function()
    local M = db:define("Widget", { fields = { a = { type = T.TEXT } } })
    assert.equal("Widget", M.tableName)
    assert(db:sync())
    assert.is_string(H.ddl(db, "Widget"))
  end)

  it("timestamps default to true and camelCase without underscored", function()
    db:define("Widget", { fields = { a = { type = T.TEXT } } })
    assert(db:sync())
    local c = columns(db, "Widget")
    assert.is_not_nil(c.createdAt)
    assert.is_not_nil(c.updatedAt)
    assert.is_nil(c.created_at)
  end)

  it("timestamps = false adds no timestamp columns", function()
    db:define("Widget", { timestamps = false, fields = { a = { type = T.TEXT } } })
    assert(db:sync())
    local c = columns(db, "Widget")
    assert.is_nil(c.createdAt)
    assert.is_nil(c.created_at)
    assert.is_nil(c.updatedAt)
  end)

  it("a model without a primary key gets id INTEGER PRIMARY KEY AUTOINCREMENT", function()
    local W = db:define("Widget", { timestamps = false, fields = { a = { type = T.TEXT } } })
    assert(db:sync())
    assert.matches('"ID" INTEGER PRIMARY KEY AUTOINCREMENT', norm(H.ddl(db, "Widget")), 1, true)
    local w = assert(W:create { a = "x" })
    assert.equal(1, w.id)
  end)

  it("raises on an unknown model option, naming the model and the option", function()
    local msg = H.raises(function()
      db:define("Widget", { tabelName = "w", fields = { a = { type = T.TEXT } } })
    end)
    H.mentions(msg, "Widget", "tabelName")
  end)

  it("raises when fields is missing or not a table", function()
    H.mentions(H.raises(function() db:define("Widget", {}) end), "Widget", "fields")
    H.mentions(H.raises(function() db:define("Widget", { fields = "a" }) end), "Widget", "fields")
  end)

  it("raises when the name or spec has the wrong type", function()
    H.raises(function() db:define(42, { fields = { a = { type = T.TEXT } } }) end)
    H.raises(function() db:define("Widget") end)
  end)
end)

describe("field options", function()
  local db
  before_each(function() db = H.open() end)
  after_each(function() db:close() end)

  it("maps every type to a column", function()
    db:define("All", { timestamps = false, fields = {
      i = { type = T.INTEGER }, t = { type = T.TEXT }, s = { type = T.STRING(12) },
      r = { type = T.REAL }, b = { type = T.BLOB }, bo = { type = T.BOOLEAN }, d = { type = T.DATE },
    } })
    assert(db:sync())
    local c = columns(db, "All")
    assert.equal("INTEGER", c.i.type:upper())
    assert.equal("TEXT", c.t.type:upper())
    assert.equal("VARCHAR(12)", c.s.type:upper())
    assert.equal("REAL", c.r.type:upper())
    assert.equal("BLOB", c.b.type:upper())
    assert.is_not_nil(c.bo)
    assert.is_not_nil(c.d)
  end)

  it("allowNull defaults to true, false gives NOT NULL, and a primary key is NOT NULL", function()
    db:define("W", { timestamps = false, fields = {
      k = { type = T.TEXT, primaryKey = true },
      a = { type = T.TEXT }, b = { type = T.TEXT, allowNull = false },
    } })
    assert(db:sync())
    local c = columns(db, "W")
    assert.equal(0, c.a.notnull)
    assert.equal(1, c.b.notnull)
    assert.equal(1, c.k.pk)
    assert.equal(1, c.k.notnull)
    local ok, _, code = db:exec("INSERT INTO W(k, a) VALUES ('x', 'y')")
    assert.is_nil(ok)
    assert.equal(1299, code)
  end)

  it("a non-integer primary key works as the key", function()
    local W = db:define("W", { timestamps = false, fields = {
      code = { type = T.STRING(8), primaryKey = true }, label = { type = T.TEXT },
    } })
    assert(db:sync())
    assert(W:create { code = "abc", label = "A" })
    assert.equal("A", W:findByPk("abc").label)
    local ok, _, code = W:create { code = "abc", label = "B" }
    assert.is_nil(ok)
    assert.equal(1555, code)  -- SQLITE_CONSTRAINT_PRIMARYKEY
  end)

  it("a literal defaultValue is in the DDL and applied by junction", function()
    local W = db:define("W", { timestamps = false, fields = {
      status = { type = T.TEXT, defaultValue = "draft" },
      n = { type = T.INTEGER, defaultValue = 7 },
      flag = { type = T.BOOLEAN, defaultValue = true },
    } })
    assert(db:sync())
    local c = columns(db, "W")
    assert.is_not_nil(c.status.dflt_value, "DEFAULT in the DDL")
    assert.is_not_nil(c.n.dflt_value)
    -- the DDL default works for raw inserts
    assert(db:exec("INSERT INTO W(id) VALUES (100)"))
    local raw = db:query("SELECT status, n FROM W WHERE id = 100")[1]
    assert.equal("draft", raw.status)
    assert.equal(7, raw.n)
    -- and through the model
    local w = assert(W:create {})
    assert.equal("draft", w.status)
    assert.equal(7, w.n)
    assert.is_true(w.flag)
    local w2 = assert(W:create { status = "live", n = 1, flag = false })
    assert.equal("live", w2.status)
    assert.is_false(w2.flag)
  end)

  it("a function defaultValue is called at each create", function()
    local calls = 0
    local W = db:define("W", { timestamps = false, fields = {
      token = { type = T.TEXT, defaultValue = function() calls = calls + 1; return "t" .. calls end },
    } })
    assert(db:sync())
    assert.equal(0, calls)
    local a = assert(W:create {})
    local b = assert(W:create {})
    local c = assert(W:create { token = "given" })
    assert.equal("t1", a.token)
    assert.equal("t2", b.token)
    assert.equal("given", c.token)
    assert.equal("t2", W:findByPk(b.id).token)
    assert.equal(2, calls)
  end)

  it("a defaultValue function may itself query the database", function()
    local W
    W = db:define("W", { timestamps = false, fields = {
      label = { type = T.TEXT, defaultValue = function() return "row" .. (W:count() + 1) end } } })
    assert(db:sync())
    assert.equal("row1", assert(W:create {}).label)
    assert.equal("row2", assert(W:create {}).label)
    local list = assert(W:bulkCreate { { label = "given" }, {} })
    assert.equal("given", list[1].label)
    assert.is_string(list[2].label)
    assert.equal(4, W:count())
  end)

  it("unique = true gives a single-column UNIQUE, enforced", function()
    local W = db:define("W", { timestamps = false, fields = { email = { type = T.TEXT, unique = true } } })
    assert(db:sync())
    local ix = leading_index(db, "W", "email", true)
    assert.is_not_nil(ix)
    assert.same({ "email" }, ix.cols)
    assert(W:create { email = "a@x" })
    local ok, msg, code = W:create { email = "a@x" }
    assert.is_nil(ok)
    assert.is_string(msg)
    assert.equal(2067, code)
  end)

  it("fields sharing a unique name form one composite UNIQUE; different names stay apart", function()
    local W = db:define("W", { timestamps = false, fields = {
      a = { type = T.INTEGER, unique = "ab" }, b = { type = T.INTEGER, unique = "ab" },
      c = { type = T.INTEGER, unique = "c-only" },
    } })
    assert(db:sync())
    local two, one
    for _, ix in ipairs(indexes(db, "W")) do
      if ix.unique and #ix.cols == 2 then two = ix end
      if ix.unique and ix.cols[1] == "c" then one = ix end
    end
    assert.is_not_nil(two)
    table.sort(two.cols)
    assert.same({ "a", "b" }, two.cols)
    assert.is_not_nil(one)
    assert.same({ "c" }, one.cols)
    assert(W:create { a = 1, b = 1, c = 1 })
    assert(W:create { a = 1, b = 2, c = 2 })   -- a alone may repeat
    local ok, _, code = W:create { a = 1, b = 1, c = 3 }
    assert.is_nil(ok)
    assert.equal(2067, code)
  end)

  it("references may name the model instead of the table", function()
    db:define("Parent", { tableName = "parents", timestamps = false, fields = {
      pid = { type = T.INTEGER, primaryKey = true, autoIncrement = true } } })
    db:define("Child", { tableName = "children", timestamps = false, fields = {
      parent_id = { type = T.INTEGER, references = { model = "Parent", key = "pid" } } } })
    assert(db:sync())
    local fk = fkeys(db, "children")
    assert.equal("parents", fk.parent_id.table)
    assert.equal("pid", fk.parent_id.to)
  end)

  local actions = {
    { "cascade", "CASCADE" }, { "set null", "SET NULL" }, { "set default", "SET DEFAULT" },
    { "restrict", "RESTRICT" }, { "no action", "NO ACTION" },
  }
  for _, a in ipairs(actions) do
    it("onDelete/onUpdate = '" .. a[1] .. "'", function()
      db:define("P", { tableName = "p", timestamps = false, fields = {
        id = { type = T.INTEGER, primaryKey = true } } })
      db:define("C", { tableName = "c", timestamps = false, fields = {
        p_id = { type = T.INTEGER, references = { model = "p", key = "id" }, onDelete = a[1], onUpdate = a[1] } } })
      assert(db:sync())
      local fk = fkeys(db, "c")
      assert.equal(a[2], fk.p_id.on_delete)
      assert.equal(a[2], fk.p_id.on_update)
    end)
  end

  it("onDelete = 'set null' works at run time", function()
    local P = db:define("P", { tableName = "p", timestamps = false, fields = {
      id = { type = T.INTEGER, primaryKey = true } } })
    local C = db:define("C", { tableName = "c", timestamps = false, fields = {
      cid = { type = T.INTEGER, primaryKey = true },
      p_id = { type = T.INTEGER, references = { model = "p", key = "id" }, onDelete = "set null" } } })
    assert(db:sync())
    assert(P:create { id = 1 })
    assert(C:create { cid = 1, p_id = 1 })
    assert.is_true(P:findByPk(1):destroy())
    assert.is_nil(C:findByPk(1).p_id)
  end)

  it("raises on an unknown field option, naming model, field and option", function()
    local msg = H.raises(function()
      db:define("Widget", { fields = { title = { type = T.TEXT, allowNul = false } } })
    end)
    H.mentions(msg, "Widget", "title", "allowNul")
  end)

  it("raises on an unknown or missing type, naming model and field", function()
    H.mentions(H.raises(function()
      db:define("Widget", { fields = { title = { type = "TEXTY" } } })
    end), "Widget", "title")
    H.mentions(H.raises(function()
      db:define("Widget", { fields = { title = { allowNull = false } } })
    end), "Widget", "title", "type")
  end)

  it("raises on a bad onDelete value, naming model, field and option", function()
    H.mentions(H.raises(function()
      db:define("C", { fields = { p_id = { type = T.INTEGER, references = { model = "p", key = "id" },
        onDelete = "explode" } } })
    end), "C", "p_id", "onDelete")
  end)

  it("raises on references without key or with a bad shape", function()
    H.mentions(H.raises(function()
      db:define("C", { fields = { p_id = { type = T.INTEGER, references = "p" } } })
    end), "C", "p_id", "references")
  end)

  it("raises on STRING with a bad length", function()
    H.raises(function() return T.STRING("x") end)
  end)
end)

describe("identifier validation", function()
  local db
  before_each(function() db = H.open() end)
  after_each(function() db:close() end)

  local bad = { 'bad"name', "semi;colon", "has space", "", "x'); DROP TABLE post; --", "a\0b" }

  for i, name in ipairs(bad) do
    it("rejects field name #" .. i .. " naming model and field", function()
      local msg = H.raises(function()
        db:define("Widget", { fields = { [name] = { type = T.TEXT } } })
      end)
      H.mentions(msg, "Widget")
    end)

    it("rejects tableName #" .. i .. " naming model and option", function()
      local msg = H.raises(function()
        db:define("Widget", { tableName = name, fields = { a = { type = T.TEXT } } })
      end)
      H.mentions(msg, "Widget", "tableName")
    end)

    it("rejects model name #" .. i, function()
      H.raises(function()
        db:define(name, { tableName = "ok_table", fields = { a = { type = T.TEXT } } })
      end)
    end)

    it("rejects references.key #" .. i .. " naming model, field and option", function()
      local msg = H.raises(function()
        db:define("Widget", { fields = { p_id = { type = T.INTEGER, references = { model = "p", key = name } } } })
      end)
      H.mentions(msg, "Widget", "p_id", "references")
    end)
  end

  it("names the bad field in the message", function()
    local msg = H.raises(function()
      db:define("Widget", { fields = { ["bad name"] = { type = T.TEXT } } })
    end)
    H.mentions(msg, "Widget", "bad name")
  end)

  it("accepts ordinary identifiers with underscores and digits", function()
    assert.has_no.errors(function()
      db:define("Widget_2", { tableName = "widget_2", fields = { field_1 = { type = T.TEXT } } })
    end)
    assert(db:sync())
  end)
end)

describe("db:sync", function()
  local db
  before_each(function() db = H.open() end)
  after_each(function() db:close() end)

  it("returns true and can run twice without losing data", function()
    local m = H.blog(db)
    assert(m.Post:create { text = "kept" })
    assert.is_true(db:sync())
    assert.equal(1, m.Post:count())
  end)

  it("force = true drops and recreates the tables", function()
    local m = H.blog(db)
    assert(m.Genre:create { name = "rock" })
    local p = assert(m.Post:create { text = "gone" })
    assert(p:setGenres { 1 })
    assert.is_true(db:sync { force = true })
    assert.equal(0, m.Post:count())
    assert.equal(0, m.Genre:count())
    assert.equal(0, m.TagPostGenre:count())
    assert(m.Post:create { text = "again" })
    assert.equal(1, m.Post:findAll()[1].post_id)
  end)

  it("raises on an unknown option", function()
    H.blog(db)
    H.mentions(H.raises(function() db:sync { forse = true } end), "forse")
  end)
end)
