-- spec/schema_spec.lua: db:define, every field and model option, the DDL that
-- db:sync writes, identifier checks (docs/API.md "Models").
local H = require "spec.helper"
local sqlite_it = H.sqlite_only(it, pending)
local T = H.T

-- PRAGMA table_info as name -> row
local function columns(db, tbl)
  local out = {}
  for _, r in ipairs(assert(db:query("SELECT * FROM pragma_table_info(?)", tbl))) do
    out[r.name] = r
  end
  return out
end

-- Indexes of a table: array of { name=, unique=, cols = {...} } (either engine's catalog)
local INDEX_LIST, INDEX_COLS = "SELECT name, \"unique\" AS u FROM pragma_index_list(?)",
                               "SELECT name FROM pragma_index_info(?) ORDER BY seqno"
if H.is_pg then
  INDEX_LIST = "SELECT i.relname AS name, CASE WHEN x.indisunique THEN 1 ELSE 0 END AS u " ..
    "FROM pg_index x JOIN pg_class c ON c.oid = x.indrelid JOIN pg_class i ON i.oid = x.indexrelid " ..
    "WHERE c.relnamespace = current_schema()::regnamespace AND c.relname = ?"
  INDEX_COLS = "SELECT a.attname AS name FROM pg_class i JOIN pg_index x ON x.indexrelid = i.oid " ..
    "CROSS JOIN LATERAL unnest(x.indkey::int2[]) WITH ORDINALITY AS u(attnum, seqno) " ..
    "JOIN pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = u.attnum " ..
    "WHERE i.relnamespace = current_schema()::regnamespace AND i.relname = ? ORDER BY u.seqno"
end
local function indexes(db, tbl)
  local out = {}
  for _, r in ipairs(assert(db:query(INDEX_LIST, tbl))) do
    local cols = {}
    for _, c in ipairs(assert(db:query(INDEX_COLS, r.name))) do
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
      assert.is_true(H.exists(db, t), t)
    end
  end)

  sqlite_it("post: integer autoincrement primary key, text NOT NULL, underscored timestamps "
    .. "(SQLite's DDL text)", function()
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

  sqlite_it("genre: name VARCHAR(60) NOT NULL UNIQUE (reads SQLite's catalog)", function()
    local c = columns(db, "genre")
    assert.equal("VARCHAR(60)", c.name.type:upper())
    assert.equal(1, c.name.notnull)
    local ix = leading_index(db, "genre", "name", true)
    assert.is_not_nil(ix, "a unique index on genre.name")
    assert.same({ "name" }, ix.cols)
  end)

  sqlite_it("tag_post_genre: references with ON DELETE/UPDATE CASCADE (SQLite's DDL text)", function()
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

  sqlite_it("tag_post_genre: one composite UNIQUE(post_id, genre_id) (reads SQLite's catalog)", function()
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

  sqlite_it("every foreign key column leads some index (reads SQLite's catalog)", function()
    for _, col in ipairs { "post_id", "genre_id" } do
      assert.is_not_nil(leading_index(db, "tag_post_genre", col), "an index led by " .. col)
    end
  end)

  sqlite_it("adds a plain index only on the foreign key column not led by the unique index "
    .. "(reads SQLite's catalog)", function()
    local plain = 0
    for _, col in ipairs { "post_id", "genre_id" } do
      local u = leading_index(db, "tag_post_genre", col, true)
      local p = leading_index(db, "tag_post_genre", col, false)
      assert.is_true((u ~= nil) ~= (p ~= nil), col .. " leads exactly one kind of index")
      if p then plain = plain + 1 end
    end
    assert.equal(1, plain)
  end)

  sqlite_it("quotes every identifier in the DDL (SQLite's DDL text)", function()
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
    assert.is_true(H.exists(db, "Widget"))
  end)

  sqlite_it("timestamps default to true and camelCase without underscored (reads SQLite's catalog)", function()
    db:define("Widget", { fields = { a = { type = T.TEXT } } })
    assert(db:sync())
    local c = columns(db, "Widget")
    assert.is_not_nil(c.createdAt)
    assert.is_not_nil(c.updatedAt)
    assert.is_nil(c.created_at)
  end)

  sqlite_it("timestamps = false adds no timestamp columns (reads SQLite's catalog)", function()
    db:define("Widget", { timestamps = false, fields = { a = { type = T.TEXT } } })
    assert(db:sync())
    local c = columns(db, "Widget")
    assert.is_nil(c.createdAt)
    assert.is_nil(c.created_at)
    assert.is_nil(c.updatedAt)
  end)

  sqlite_it("a model without a primary key gets id INTEGER PRIMARY KEY AUTOINCREMENT (SQLite's DDL text)", function()
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

  sqlite_it("maps every type to a column (reads SQLite's catalog)", function()
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

  sqlite_it("allowNull defaults to true, false gives NOT NULL, and a primary key is NOT NULL "
    .. "(reads SQLite's catalog)", function()
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

  sqlite_it("a literal defaultValue is in the DDL and applied by junction (reads SQLite's catalog)", function()
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
    local raw = db:query("SELECT status, n FROM \"W\" WHERE id = 100")[1]
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

  sqlite_it("unique = true gives a single-column UNIQUE, enforced (reads SQLite's catalog)", function()
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

  sqlite_it("fields sharing a unique name form one composite UNIQUE; different names stay apart "
    .. "(reads SQLite's catalog)", function()
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

  sqlite_it("references may name the model instead of the table (reads SQLite's catalog)", function()
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
    sqlite_it("onDelete/onUpdate = '" .. a[1] .. "' (reads SQLite's catalog)", function()
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

describe("db:sync on a table that already exists", function()
  local path, db
  before_each(function() path = H.place() end)
  after_each(function()
    if db then db:close() end
    H.drop_place(path)
  end)

  -- The table as first_fields make it, then a connection whose model has fields.
  local function reopen(first_fields, fields, opts)
    local d0 = H.open_at(path)
    d0:define("Post", { tableName = "post", timestamps = false, fields = first_fields })
    assert(d0:sync())
    d0:close()
    db = H.open_at(path)
    return db:define("Post", { tableName = "post", timestamps = false, fields = fields }), opts
  end

  it("returns true when the table matches its model", function()
    reopen({ text = { type = T.TEXT } }, { text = { type = T.TEXT } })
    local ok, extra = db:sync()
    assert.is_true(ok)
    assert.is_nil(extra)
  end)

  sqlite_it("fails naming a column the table lacks, and writes nothing (reads SQLite's catalog)", function()
    local Post = reopen({ text = { type = T.TEXT } }, { text = { type = T.TEXT }, title = { type = T.TEXT } })
    db:define("Other", { fields = { x = { type = T.TEXT } } })   -- a table still to create
    local ok, msg, code, details = db:sync()
    assert.is_nil(ok)
    assert.equal("Post: table post lacks column title (run a migration or db:sync{ alter = true })", msg)
    assert.equal(H.junction.SCHEMA, code)
    assert.same({ "Post: table post lacks column title" }, details.problems)
    assert.is_false(H.exists(db, "Other"))               -- nothing created
    assert.is_nil(columns(db, "post").title)
    assert.is_true(db:exec("BEGIN"))                -- and no transaction left open
    assert.is_true(db:exec("ROLLBACK"))
    assert.equal(0, Post:count())
  end)

  it("fails naming a changed NOT NULL, type affinity and primary key", function()
    reopen({ code = { type = T.TEXT, primaryKey = true }, n = { type = T.INTEGER }, s = { type = T.TEXT } },
           { code = { type = T.INTEGER, primaryKey = true }, n = { type = T.INTEGER, allowNull = false },
             s = { type = T.REAL } })
    local ok, msg, code, details = db:sync()
    assert.is_nil(ok)
    assert.equal(H.junction.SCHEMA, code)
    H.mentions(msg, "column post.code is TEXT in the table, INTEGER in the model",
               "column post.n is nullable in the table, NOT NULL in the model",
               "column post.s is TEXT in the table, REAL in the model")
    assert.equal(3, #details.problems)
  end)

  it("fails naming a changed or missing foreign key and its actions", function()
    local d0 = H.open_at(path)
    d0:define("Genre", { tableName = "genre", fields = { name = { type = T.TEXT, unique = true } } })
    d0:define("Post", { tableName = "post", fields = {
      genre_id = { type = T.INTEGER, references = { model = "genre", key = "id" }, onDelete = "cascade" },
      other_id = { type = T.INTEGER } } })
    assert(d0:sync())
    d0:close()
    db = H.open_at(path)
    db:define("Genre", { tableName = "genre", fields = { name = { type = T.TEXT, unique = true } } })
    db:define("Post", { tableName = "post", fields = {
      genre_id = { type = T.INTEGER, references = { model = "genre", key = "id" }, onDelete = "restrict" },
      other_id = { type = T.INTEGER, references = { model = "genre", key = "id" } } } })
    local ok, msg, code = db:sync()
    assert.is_nil(ok)
    assert.equal(H.junction.SCHEMA, code)
    H.mentions(msg, "foreign key post.genre_id is ON DELETE CASCADE in the table, ON DELETE RESTRICT in the model",
               "column post.other_id references nothing in the table, genre (id) in the model")
  end)

  it("fails naming a UNIQUE constraint the table lacks or has", function()
    reopen({ a = { type = T.TEXT, unique = true }, b = { type = T.TEXT } },
           { a = { type = T.TEXT }, b = { type = T.TEXT, unique = true } })
    local ok, msg = db:sync()
    assert.is_nil(ok)
    H.mentions(msg, "table post lacks UNIQUE (\"b\")", "table post has a UNIQUE constraint")
  end)

  it("reports a missing foreign-key index as a warning, without failing; alter creates it", function()
    local d0 = H.open_at(path)
    d0:define("Genre", { tableName = "genre", fields = { name = { type = T.TEXT } } })
    d0:define("Post", { tableName = "post", fields = {
      genre_id = { type = T.INTEGER, references = { model = "genre", key = "id" } } } })
    assert(d0:sync())
    assert(d0:exec('DROP INDEX "post.genre_id"'))
    d0:close()
    db = H.open_at(path)
    db:define("Genre", { tableName = "genre", fields = { name = { type = T.TEXT } } })
    db:define("Post", { tableName = "post", fields = {
      genre_id = { type = T.INTEGER, references = { model = "genre", key = "id" } } } })
    local ok, extra = db:sync()
    assert.is_true(ok)
    assert.equal(1, #extra.warnings)
    H.mentions(extra.warnings[1], "Post: table post lacks the index on its foreign key genre_id")
    assert.is_false(H.exists(db, "post.genre_id"))      -- a warning changes nothing
    assert.is_true(db:sync { alter = true })
    assert.is_true(H.exists(db, "post.genre_id"))
    assert.is_true(db:sync())
  end)

  sqlite_it("alter = true adds the columns it can, and fails naming those it cannot "
    .. "(reads SQLite's catalog)", function()
    reopen({ text = { type = T.TEXT } },
           { text = { type = T.TEXT }, title = { type = T.TEXT, defaultValue = "untitled" },
             views = { type = T.INTEGER, allowNull = false } })
    local ok, msg, code, details = db:sync { alter = true }
    assert.is_nil(ok)
    assert.equal(H.junction.SCHEMA, code)
    assert.equal(1, #details.problems)
    H.mentions(msg, "lacks column views, which alter cannot add (NOT NULL without a literal defaultValue)")
    assert.is_nil(columns(db, "post").title)       -- all or nothing
    db:close()
    db = H.open_at(path)
    local Post = db:define("Post", { tableName = "post", timestamps = false, fields = {
      text = { type = T.TEXT }, title = { type = T.TEXT, defaultValue = "untitled" },
      views = { type = T.INTEGER, allowNull = false, defaultValue = 0 } } })
    assert.is_true(db:sync { alter = true })
    assert.is_true(db:sync())
    local p = assert(Post:create { text = "x" })
    assert.equal("untitled", p.title)
    assert.equal(0, p.views)
  end)

  it("an extra column the model lacks is a warning; NOT NULL without default a failure", function()
    reopen({ text = { type = T.TEXT }, note = { type = T.TEXT } }, { text = { type = T.TEXT } })
    local ok, extra = db:sync()
    assert.is_true(ok)
    H.mentions(extra.warnings[1], "table post has column note, which the model lacks")
    db:close()
    H.drop_place(path)
    reopen({ text = { type = T.TEXT }, must = { type = T.TEXT, allowNull = false } }, { text = { type = T.TEXT } })
    local ok2, msg = db:sync()
    assert.is_nil(ok2)
    H.mentions(msg, "has column must, NOT NULL without a default")
  end)
end)

describe("db:sync and its transaction", function()
  local path, db
  before_each(function() path = H.place() end)
  after_each(function()
    if db then db:close() end
    H.drop_place(path)
  end)

  it("a misuse error inside db:sync leaves no transaction open, and later writes are durable", function()
    db = H.open_at(path)
    db:define("Genre", { tableName = "genre", fields = { name = { type = T.TEXT } } })
    db:define("Post", { tableName = "post", fields = {
      genre_name = { type = T.TEXT, references = { model = "genre", key = "name" } } } })   -- not unique
    H.mentions(H.raises(function() db:sync() end), "db:sync: Post.genre_name: references genre.name",
               "not the primary key or a unique field")
    assert.is_true(db:exec("BEGIN"))
    assert.is_true(db:exec("ROLLBACK"))
    assert.is_false(H.exists(db, "genre"))               -- rolled back
    assert.is_true(db:exec("CREATE TABLE kept (x INTEGER)"))
    assert.is_true(db:exec("INSERT INTO kept VALUES (1)"))
    local other = H.open_at(path)
    assert.equal(1, #assert(other:query("SELECT x FROM kept")))
    other:close()
  end)

  it("a misuse error inside db:sync in a transaction rolls back to sync's savepoint only", function()
    db = H.open_at(path)
    db:define("Post", { tableName = "post", fields = {
      genre_id = { type = T.INTEGER, references = { model = "nope", key = "id" } } } })
    assert.is_true(db:exec("BEGIN"))
    assert.is_true(db:exec("CREATE TABLE mine (x INTEGER)"))
    H.raises(function() db:sync() end)
    assert.is_true(H.exists(db, "mine"))
    assert.is_true(db:exec("COMMIT"))
    assert.is_true(db:exec("BEGIN"))
    assert.is_true(db:exec("ROLLBACK"))
  end)
end)

describe("declarations checked when declared", function()
  local db
  before_each(function() db = H.open() end)
  after_each(function() db:close() end)

  it("type values are read-only userdata, and a forged one is refused", function()
    H.mentions(H.raises(function() T.INTEGER.code = 99 end), "read-only")
    H.mentions(H.raises(function() T.STRING(10).length = 1e9 end), "read-only")
    assert.equal("VARCHAR(60)", tostring(T.STRING(60)))
    assert.equal("INTEGER", T.INTEGER.name)
    assert.equal(60, T.STRING(60).length)
    local forged = setmetatable({ code = 1e6, length = 0 }, { __tostring = function() return "INTEGER" end })
    H.mentions(H.raises(function() db:define("W", { fields = { a = { type = forged } } }) end),
               "W.a", "a junction.types value expected")
  end)

  it("type = \"TEXT\" (a string) and type = T.STRING (not called) are misuse errors", function()
    H.mentions(H.raises(function() db:define("W", { fields = { a = { type = "TEXT" } } }) end),
               "db:define: W.a: bad option 'type'", "write junction.types.TEXT")
    H.mentions(H.raises(function() db:define("W", { fields = { a = { type = T.STRING } } }) end),
               "db:define: W.a: bad option 'type'", "junction.types.STRING(255)")
  end)

  it("a literal defaultValue its field cannot hold is refused at define", function()
    H.mentions(H.raises(function()
      db:define("W", { fields = { n = { type = T.INTEGER, defaultValue = "abc" } } })
    end), "db:define: W.n: bad option 'defaultValue' ('abc' is not an integer)")
    H.mentions(H.raises(function()
      db:define("W", { fields = { b = { type = T.BOOLEAN, defaultValue = "yes" } } })
    end), "W.b", "defaultValue")
    H.mentions(H.raises(function()
      db:define("W", { fields = { s = { type = T.STRING(2), defaultValue = "abc" } } })
    end), "W.s", "defaultValue")
    local W = db:define("W", { fields = { n = { type = T.INTEGER, defaultValue = "7" },
                                          f = { type = T.INTEGER, defaultValue = function() return 1 end } } })
    assert(db:sync())
    local w = assert(W:create {})
    assert.equal(7, w.n)
    assert.equal(1, w.f)
  end)

  it("references to a model that is not defined and no table is refused at sync, naming it", function()
    db:define("W", { fields = { x_id = { type = T.INTEGER, references = { model = "nope", key = "id" } } } })
    H.mentions(H.raises(function() db:sync() end), "db:sync: W.x_id: references 'nope'",
               "no model of this connection and no table of the database")
    assert.is_false(H.exists(db, "W"))
    assert(db:exec("CREATE TABLE nope (id INTEGER PRIMARY KEY)"))
    assert.is_true(db:sync())                       -- a table made by hand will do
  end)

  sqlite_it("index names of table a_b field c and table a field b_c do not collide (reads SQLite's catalog)", function()
    db:define("P", { tableName = "p", fields = { name = { type = T.TEXT } } })
    db:define("AB", { tableName = "a_b", fields = {
      c = { type = T.INTEGER, references = { model = "p", key = "id" } } } })
    db:define("A", { tableName = "a", fields = {
      b_c = { type = T.INTEGER, references = { model = "p", key = "id" } } } })
    assert.is_true(db:sync())
    assert.is_table(leading_index(db, "a_b", "c", false))
    assert.is_table(leading_index(db, "a", "b_c", false))
  end)
end)

describe("association-level onDelete/onUpdate", function()
  local db
  before_each(function() db = H.open() end)
  after_each(function() db:close() end)

  local function post_genre()
    local Post = db:define("Post", { tableName = "post", fields = { text = { type = T.TEXT } } })
    local Genre = db:define("Genre", { tableName = "genre", fields = { name = { type = T.TEXT } } })
    return Post, Genre
  end

  sqlite_it("RESTRICT on a junction model junction defines: deleting a linked row fails with 1811 "
    .. "(reads SQLite's catalog)", function()
    local Post, Genre = post_genre()
    assert(db:associate {
      Post = { { belongsToMany = "Genre", through = "post_genre", as = "Genres", onDelete = "restrict" } },
      Genre = { { belongsToMany = "Post", through = "post_genre", as = "Posts" } },
    })
    assert(db:sync())
    assert.equal("RESTRICT", fkeys(db, "post_genre").post_id.on_delete)
    assert.equal("CASCADE", fkeys(db, "post_genre").genre_id.on_delete)   -- the other side keeps the default
    local p = assert(Post:create { text = "a" })
    local g = assert(Genre:create { name = "rock" })
    assert(p:setGenres { g })
    local ok, msg, code = p:destroy()
    assert.is_nil(ok)
    assert.equal(1811, code)
    H.mentions(msg, "FOREIGN KEY")
    assert.equal(1, Post:count())
    assert.is_true(g:destroy())                    -- cascades
    assert.equal(0, #p:getGenres())
    assert.is_true(p:destroy())
  end)

  sqlite_it("SET NULL on a junction model the user defines, whose field declares no action "
    .. "(reads SQLite's catalog)", function()
    local Post = post_genre()
    db:define("Tag", { tableName = "tag", fields = {
      post_id = { type = T.INTEGER, references = { model = "post", key = "id" } },
      genre_id = { type = T.INTEGER, references = { model = "genre", key = "id" } } } })
    assert(db:associate { Post = { { belongsToMany = "Genre", through = "Tag", as = "Genres",
                                     onDelete = "set null", onUpdate = "cascade" } } })
    assert(db:sync())
    local fk = fkeys(db, "tag").post_id
    assert.equal("SET NULL", fk.on_delete)
    assert.equal("CASCADE", fk.on_update)
    assert.equal("NO ACTION", fkeys(db, "tag").genre_id.on_delete)
    local p = assert(Post:create { text = "a" })
    assert(db:exec("INSERT INTO genre (id, name, createdAt, updatedAt) VALUES (1, 'g', '', '')"))
    assert(p:setGenres { 1 })
    assert.is_true(p:destroy())
    local rows = assert(db:query("SELECT post_id, genre_id FROM tag"))
    assert.equal(1, #rows)
    assert.is_nil(rows[1].post_id)
  end)

  sqlite_it("hasMany onDelete on a foreign key field without references adds the constraint "
    .. "(reads SQLite's catalog)", function()
    local Author = db:define("Author", { tableName = "author", fields = { name = { type = T.TEXT } } })
    local Book = db:define("Book", { tableName = "book", fields = { author_id = { type = T.INTEGER } } })
    assert(db:associate { Author = { { hasMany = "Book", as = "Books", onDelete = "cascade" } } })
    assert(db:sync())
    assert.equal("author", fkeys(db, "book").author_id.table)
    assert.equal("CASCADE", fkeys(db, "book").author_id.on_delete)
    local a = assert(Author:create { name = "x" })
    assert(Book:create { author_id = a.id })
    assert.is_true(a:destroy())
    assert.equal(0, Book:count())
  end)

  it("an action that contradicts the field's own raises, naming both", function()
    post_genre()
    db:define("Tag", { tableName = "tag", fields = {
      post_id = { type = T.INTEGER, references = { model = "post", key = "id" }, onDelete = "cascade" },
      genre_id = { type = T.INTEGER, references = { model = "genre", key = "id" } } } })
    H.mentions(H.raises(function()
      db:associate { Post = { { belongsToMany = "Genre", through = "Tag", as = "Genres", onDelete = "restrict" } } }
    end), "bad option 'onDelete' ('restrict', but Tag.post_id declares onDelete = 'cascade')")
  end)

  it("an unknown action raises before any association is made", function()
    post_genre()
    H.mentions(H.raises(function()
      db:associate { Post = { { belongsToMany = "Genre", through = "pg", as = "Genres", onDelete = "nuke" } } }
    end), "bad option 'onDelete' (unknown action 'nuke')")
    assert.is_nil(db:model("pg"))
  end)
end)

describe("declared indexes", function()
  local db
  before_each(function() db = H.open() end)
  after_each(function() db:close() end)

  local function index_named(tbl, name)
    for _, ix in ipairs(indexes(db, tbl)) do
      if ix.name == name then return ix end
    end
  end

  it("indexes = { { fields = ..., unique = ..., name = ... } } are created by db:sync", function()
    local P = db:define("P", { tableName = "p", fields = { a = { type = T.TEXT }, b = { type = T.INTEGER } },
      indexes = { { fields = { "b", "a" } }, { fields = { "a" }, unique = true, name = "p_a_once" } } })
    assert.is_true(db:sync())
    local ix = index_named("p", "p.b.a")
    assert.same({ "b", "a" }, ix.cols)
    assert.is_false(ix.unique)
    assert.is_true(index_named("p", "p_a_once").unique)
    assert(P:create { a = "x" })
    local ok, _, code = P:create { a = "x" }
    assert.is_nil(ok)
    assert.equal(2067, code)
  end)

  it("raises on a bad declaration, naming model, index and option", function()
    H.mentions(H.raises(function()
      db:define("P", { fields = { a = { type = T.TEXT } }, indexes = { { fields = { "nope" } } } })
    end), "db:define: P: index 1: bad option 'fields' (nope is no field of P)")
    H.mentions(H.raises(function()
      db:define("P", { fields = { a = { type = T.TEXT } }, indexes = { { fields = { "a" }, uniq = true } } })
    end), "uniq")
    H.mentions(H.raises(function()
      db:define("P", { fields = { a = { type = T.TEXT } }, indexes = { { fields = {} } } })
    end), "non-empty array")
  end)

  it("an index name that another table's index has raises at sync", function()
    db:define("P", { fields = { a = { type = T.TEXT } }, indexes = { { fields = { "a" }, name = "same" } } })
    db:define("Q", { fields = { a = { type = T.TEXT } }, indexes = { { fields = { "a" }, name = "same" } } })
    H.mentions(H.raises(function() db:sync() end), "index name 'same' is already an index of table")
  end)

  it("a declared index missing from an existing table: a warning, or a failure when unique; alter creates", function()
    local path = H.place()
    local d0 = H.open_at(path)
    d0:define("P", { tableName = "p", fields = { a = { type = T.TEXT }, b = { type = T.TEXT } } })
    assert(d0:sync())
    d0:close()
    local d1 = H.open_at(path)
    d1:define("P", { tableName = "p", fields = { a = { type = T.TEXT }, b = { type = T.TEXT } },
                     indexes = { { fields = { "a" } }, { fields = { "b" }, unique = true } } })
    local ok, msg = d1:sync()
    assert.is_nil(ok)
    H.mentions(msg, "table p lacks the UNIQUE index p.b")
    local _, _, _, details = d1:sync()
    H.mentions(details.warnings[1], "table p lacks the index p.a")
    assert.is_true(d1:sync { alter = true })
    assert.is_true(d1:sync())
    d1:close()
    H.drop_place(path)
  end)

  sqlite_it("foreignKeyIndexes = false makes no foreign-key index; a declared index leading with one replaces it "
    .. "(reads SQLite's catalog)", function()
    db:define("G", { tableName = "g", fields = { name = { type = T.TEXT } } })
    db:define("P", { tableName = "p", foreignKeyIndexes = false, fields = {
      g_id = { type = T.INTEGER, references = { model = "g", key = "id" } } } })
    db:define("Q", { tableName = "q", indexes = { { fields = { "g_id", "n" } } }, fields = {
      g_id = { type = T.INTEGER, references = { model = "g", key = "id" } }, n = { type = T.INTEGER } } })
    assert.is_true(db:sync())
    assert.equal(0, #indexes(db, "p"))
    assert.equal(1, #indexes(db, "q"))
    assert.same({ "g_id", "n" }, indexes(db, "q")[1].cols)
  end)
end)

describe("fields as an array of { name, spec } pairs", function()
  local db
  before_each(function() db = H.open() end)
  after_each(function() db:close() end)

  sqlite_it("gives the columns in declaration order (reads SQLite's catalog)", function()
    local P = db:define("P", { tableName = "p", timestamps = false, fields = {
      { "zeta", { type = T.TEXT } },
      { "p_id", { type = T.INTEGER, primaryKey = true, autoIncrement = true } },
      { "alpha", { type = T.INTEGER, allowNull = false } },
    } })
    assert.is_true(db:sync())
    local names = {}
    for _, r in ipairs(assert(db:query("SELECT name FROM pragma_table_info('p') ORDER BY cid"))) do
      names[#names + 1] = r.name
    end
    assert.same({ "zeta", "p_id", "alpha" }, names)
    local p = assert(P:create { zeta = "z", alpha = 1 })
    assert.equal(1, p.p_id)
    assert.equal(p, P:findByPk(1))
  end)

  it("raises on a name declared twice, a bad pair, or pairs mixed with names", function()
    H.mentions(H.raises(function()
      db:define("P", { fields = { { "a", { type = T.TEXT } }, { "a", { type = T.TEXT } } } })
    end), "db:define: P: field 'a' is declared twice")
    H.mentions(H.raises(function()
      db:define("P", { fields = { { "a", { type = T.TEXT } }, { 2, { type = T.TEXT } } } })
    end), "db:define: P: bad field 2 (a name expected first")
    H.mentions(H.raises(function()
      db:define("P", { fields = { { "a", { type = T.TEXT } }, b = { type = T.TEXT } } })
    end), "not both")
  end)
end)

describe("db:define and db:associate read their declarations raw", function()
  it("never run a metamethod of the spec, a field's spec or the association table", function()
    local H2 = require "spec.helper"
    local T2 = H2.T   -- luacheck: ignore 431
    local db = H2.open()
    local ran = 0
    local function trap(t)
      return setmetatable(t, {
        __index = function() ran = ran + 1; error("__index ran") end,
        __pairs = function() ran = ran + 1; error("__pairs ran") end,
      })
    end
    local A = db:define("A", trap { timestamps = false, fields = trap {
      id = trap { type = T2.INTEGER, primaryKey = true },
      name = trap { type = T2.INTEGER, references = trap { model = "a", key = "id" } },
    } })
    assert(db:associate(trap { A = { trap { hasMany = "A", foreignKey = "name", as = "Kids" } } }))
    assert(db:sync())
    assert(A:create { id = 1 })
    assert.equal(0, ran)
    db:close()
  end)
end)

describe("one table, one model", function()
  it("a second model on the same table, or one differing only by case, raises at define", function()
    local H2 = require "spec.helper"
    local T2 = H2.T   -- luacheck: ignore 431
    local db = H2.open()
    db:define("Post", { fields = { id = { type = T2.INTEGER, primaryKey = true } } })
    H2.mentions(H2.raises(db.define, db, "post", { fields = { id = { type = T2.INTEGER, primaryKey = true } } }),
                "db:define: post", "already the table of model Post", "ignore case")
    H2.mentions(H2.raises(db.define, db, "Other", { tableName = "Post",
                                                   fields = { id = { type = T2.INTEGER, primaryKey = true } } }),
                "db:define: Other", "already the table of model Post")
    assert.is_nil(db:model("post"))
    db:close()
  end)
end)
