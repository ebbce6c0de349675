-- spec/postgres_spec.lua: the PostgreSQL engine (docs/POSTGRES.md): opening, the
-- seed's models synced and used, CRUD, where operators, the belongsToMany methods,
-- transactions and savepoints, error codes with details.sqlstate, db:query's ?
-- placeholders, BLOB, BOOLEAN and 64-bit integers.
--
-- Runs only when JUNCTION_TEST_PG holds a URL or conninfo of a server it may
-- wipe (every test drops and recreates the schema "public"): `make test-pg`
-- starts a private one (.ci/pg.sh) and sets it.
local H = require "spec.helper"
local junction = H.junction
local T = H.T

local URL = os.getenv("JUNCTION_TEST_PG")

if not URL or URL == "" then
  describe("PostgreSQL", function()
    pending("skipped: JUNCTION_TEST_PG is not set (run `make test-pg`, which starts a private server)")
  end)
  return
end

-- a fresh, empty schema on every connection
local function open(opts)
  local db, msg, code = junction.open(URL, opts)
  assert(db, "junction.open(" .. URL .. ") failed: " .. tostring(msg) .. " (" .. tostring(code) .. ")")
  assert(db:exec("DROP SCHEMA IF EXISTS public CASCADE; CREATE SCHEMA public"))
  return db
end

-- a 64-bit integer as this runtime holds it (a decimal string on 5.1 / LuaJIT)
local function i64(s)
  if H.has_int then return math.tointeger(tonumber(s)) end
  return s
end

describe("PostgreSQL connection", function()
  it("opens from a URL and from { engine = 'postgres', conninfo = ... }", function()
    local db = open()
    assert.equal("postgres", db:engine())
    assert.equal("junction.Connection: postgres (open, 0 models)", tostring(db))
    db:close()
    local db2 = assert(junction.open { engine = "postgres", conninfo = URL })
    assert.equal("postgres", db2:engine())
    assert.equal(1, db2:query("SELECT 1 AS one")[1].one)
    db2:close()
  end)

  it("takes timeout as the server's statement_timeout: code 9, sqlstate 57014", function()
    local db = assert(junction.open(URL, { timeout = 50 }))
    local ok, msg, code, details = db:query("SELECT pg_sleep(1)")
    assert.is_nil(ok)
    assert.matches("interrupted: the statement ran longer than the connection's timeout of 50 ms", msg, 1, true)
    assert.equal(9, code)
    assert.equal("57014", details.sqlstate)
    assert.equal(50, db:setTimeout(0))
    assert(db:query("SELECT pg_sleep(0.1)"))
    db:close()
  end)

  it("returns nil, message, 14, details.sqlstate when the server cannot be reached", function()
    local db, msg, code, details = junction.open("postgresql://nobody@127.0.0.1:1/none")
    assert.is_nil(db)
    assert.matches("127.0.0.1", msg)
    assert.equal(14, code)
    assert.equal("08001", details.sqlstate)
  end)
end)

describe("PostgreSQL db:query", function()
  local db
  before_each(function() db = open() end)
  after_each(function() db:close() end)

  it("rewrites ? and ?N outside quotes, identifiers and comments", function()
    local r = assert(db:query(
      "SELECT ? AS a, '?' AS q, 1 AS \"a?b\", $$?$$ AS d, E'\\'?' AS e, ?::bigint + 1 AS b /* ? */ -- ?\n",
      "one", 41))
    assert.equal(1, #r)
    assert.equal("one", r[1].a)
    assert.equal("?", r[1].q)
    assert.equal(1, r[1]["a?b"])
    assert.equal("?", r[1].d)
    assert.equal("'?", r[1].e)
    assert.equal(42, r[1].b)
    r = assert(db:query("SELECT ?2::text || ?1::text AS s", "a", "b"))
    assert.equal("ba", r[1].s)
  end)

  it("leaves ? alone in tagged dollar quotes, nested comments and doubled quotes", function()
    local r = assert(db:query(
      "SELECT $t$ ? $$ ? $t$ AS d, /* /* ? */ ? */ ?::text AS a, 'it''s ?' AS q, "
      .. "\"x\"\"?\" AS w, a$1 AS v FROM (SELECT 5 AS a$1) s, (SELECT 1 AS \"x\"\"?\") t",
      "p"))
    assert.equal(1, #r)
    assert.equal(" ? $$ ? ", r[1].d)
    assert.equal("p", r[1].a)
    assert.equal("it's ?", r[1].q)
    assert.equal(1, r[1].w)
    assert.equal(5, r[1].v)
    r = assert(db:query("SELECT $1::text || ?::text AS s", "x"))
    assert.equal("xx", r[1].s)
  end)

  it("counts the values against the placeholders and refuses a second statement", function()
    assert.has_error(function() db:query("SELECT ?::int AS a", 1, 2) end,
      "db:query: 2 values given for 1 parameter")
    assert.has_error(function() db:query("SELECT 1; SELECT 2") end,
      "db:query: bad argument #1 (more than one statement: db:query runs one, db:exec several)")
  end)

  it("reads integers, doubles, numerics, booleans, text and NULL as Lua values", function()
    local r = assert(db:query("SELECT 7::int2 AS s, 8::int4 AS i, ?::bigint AS b, 1.5::float8 AS f, "
      .. "2.25::numeric AS n, true AS t, false AS ff, 'x'::text AS x, NULL::text AS z", 2^40))[1]
    assert.equal(7, r.s); assert.equal(8, r.i); assert.equal(2^40, r.b)
    assert.equal(1.5, r.f); assert.equal(2.25, r.n)
    assert.equal(1, r.t); assert.equal(0, r.ff)
    assert.equal("x", r.x); assert.is_nil(r.z)
  end)

  it("round-trips every byte through bytea", function()
    local bytes = {}
    for i = 0, 255 do bytes[#bytes + 1] = string.char(i) end
    local blob = table.concat(bytes)
    assert(db:exec("CREATE TABLE b (id bigint PRIMARY KEY, v bytea)"))
    assert(db:query("INSERT INTO b VALUES (1, ?)", blob))
    local r = assert(db:query("SELECT v, length(v) AS n FROM b WHERE id = 1"))[1]
    assert.equal(256, r.n)
    assert.equal(blob, r.v)
  end)

  it("returns a failure with the mapped code and details.sqlstate", function()
    assert(db:exec("CREATE TABLE p (id bigint PRIMARY KEY, name text NOT NULL UNIQUE, n int CHECK (n > 0))"
      .. "; CREATE TABLE c (id bigint PRIMARY KEY, p_id bigint REFERENCES p (id))"))
    assert(db:query("INSERT INTO p VALUES (1, 'a', 1)"))
    local cases = {
      { "INSERT INTO p VALUES (2, 'a', 1)", 2067, "23505" },    -- unique
      { "INSERT INTO c VALUES (1, 99)", 787, "23503" },         -- foreign key
      { "INSERT INTO p VALUES (3, NULL, 1)", 1299, "23502" },   -- not null
      { "INSERT INTO p VALUES (4, 'd', 0)", 275, "23514" },     -- check
      { "SELECT * FROM nope", 1, "42P01" },                     -- undefined table
      { "SELECT nope FROM p", 1, "42703" },                     -- undefined column
    }
    for _, case in ipairs(cases) do
      local ok, msg, code, details = db:query(case[1])
      assert.is_nil(ok, case[1])
      assert.is_string(msg)
      assert.equal(case[2], code, case[1])
      assert.equal(case[3], details.sqlstate, case[1])
    end
    local _, msg = db:query("SELECT * FROM nope")
    assert.matches("run db:sync%(%) to create the tables", msg)
  end)

  it("counts changes and reports the generated key", function()
    assert(db:exec("CREATE TABLE t (id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, v text)"))
    assert(db:query("INSERT INTO t (v) VALUES (?), (?)", "a", "b"))
    assert.equal(2, db:changes())
    assert.equal(2, db:lastInsertId())
    assert(db:query("UPDATE t SET v = 'c'"))
    assert.equal(2, db:changes())
    assert(db:query("SELECT * FROM t"))
    assert.equal(2, db:changes())   -- a read changes nothing
  end)

  it("keeps prepared statements bounded on a long-lived connection", function()
    for i = 1, 600 do assert(db:query("SELECT " .. i .. " AS v")) end
    local n = assert(db:query("SELECT count(*) AS n FROM pg_prepared_statements"))[1].n
    assert.is_true(n <= 300, "prepared statements left: " .. n)
  end)
end)

describe("PostgreSQL models", function()
  local db, m
  before_each(function()
    db = open()
    m = H.blog(db)
  end)
  after_each(function() db:close() end)

  it("syncs the seed's models into bigint identity keys, and syncs again finding no difference", function()
    local cols = assert(db:query("SELECT column_name AS c, data_type AS t, is_identity AS i "
      .. "FROM information_schema.columns WHERE table_name = 'post' ORDER BY ordinal_position"))
    assert.equal("post_id", cols[1].c)
    assert.equal("bigint", cols[1].t)
    assert.equal("YES", cols[1].i)
    local ok, report = db:sync()   -- the tables compared with the models: nothing to say
    assert.is_true(ok)
    assert.is_nil(report)
  end)

  it("creates, finds, updates and destroys", function()
    local p = assert(m.Post:create { text = "hello" })
    assert.equal(1, p.post_id)
    assert.matches("^%d%d%d%d%-%d%d%-%d%d %d%d:%d%d:%d%d", p.created_at)
    local again = assert(m.Post:findByPk(1))
    assert.equal("hello", again.text)
    assert(p:update { text = "bye" })
    assert.equal("bye", assert(m.Post:findByPk(1)).text)
    assert.equal(1, assert(m.Post:update({ text = "x" }, { where = { post_id = 1 } })))
    assert.equal(1, m.Post:count())
    assert(p:destroy())
    assert.equal(0, m.Post:count())
    assert.is_nil(m.Post:findByPk(1))
  end)

  it("answers the where operators", function()
    H.genres(m.Genre, { "alpha", "beta", "gamma", "delta" })
    local function names(where, extra)
      local opts = { where = where, order = { { "name", "ASC" } } }
      for k, v in pairs(extra or {}) do opts[k] = v end
      local out = {}
      for _, g in ipairs(assert(m.Genre:findAll(opts))) do out[#out + 1] = g.name end
      return table.concat(out, ",")
    end
    assert.equal("beta", names { name = "beta" })
    assert.equal("alpha,beta", names { genre_id = { 1, 2 } })
    assert.equal("alpha,beta", names { genre_id = { ["in"] = { 1, 2 } } })
    assert.equal("delta,gamma", names { genre_id = { notIn = { 1, 2 } } })
    assert.equal("delta,gamma", names { genre_id = { gt = 2 } })
    assert.equal("beta,gamma", names { genre_id = { gte = 2, lte = 3 } })
    assert.equal("alpha", names { genre_id = { lt = 2 } })
    assert.equal("alpha,delta,gamma", names { genre_id = { ne = 2 } })
    assert.equal("beta,gamma", names { genre_id = { between = { 2, 3 } } })
    assert.equal("alpha,delta", names { genre_id = { notBetween = { 2, 3 } } })
    assert.equal("delta,gamma", names { name = { like = "%a" , notLike = "b%" }, genre_id = { gt = 1 } })
    assert.equal("alpha,gamma", names { ["or"] = { { name = "alpha" }, { name = "gamma" } } })
    assert.equal("beta,delta,gamma", names { ["not"] = { name = "alpha" } })
    assert.equal("alpha,beta,delta,gamma", names { name = { isNull = false } })
    assert.equal("", names { name = junction.null })
    assert.equal("beta,delta", names({ name = { ne = "zzz" } }, { limit = 2, offset = 1 }))
    assert.equal("gamma", names({ name = { ne = "zzz" } }, { offset = 3 }))
  end)

  it("answers empty and long in lists (more than 32 values: one JSON array parameter)", function()
    H.genres(m.Genre, { "alpha", "beta", "gamma" })
    assert.equal(0, #assert(m.Genre:findAll { where = { genre_id = { ["in"] = {} } } }))
    assert.equal(3, #assert(m.Genre:findAll { where = { genre_id = { notIn = {} } } }))
    local ids, names = {}, {}
    for i = 1, 40 do ids[i] = i; names[i] = "n" .. i end
    names[40] = "beta"
    assert.equal(3, #assert(m.Genre:findAll { where = { genre_id = ids } }))
    assert.equal(0, #assert(m.Genre:findAll { where = { genre_id = { notIn = ids } } }))
    local got = assert(m.Genre:findAll { where = { name = { ["in"] = names } } })
    assert.equal(1, #got)
    assert.equal("beta", got[1].name)
  end)

  it("loads an include", function()
    local g = H.genres(m.Genre, { "a", "b" })
    for i = 1, 3 do
      local p = assert(m.Post:create { text = "p" .. i })
      assert(p:setGenres(i == 3 and {} or { g[1].genre_id, g[i].genre_id }))
    end
    local posts = assert(m.Post:findAll { include = { "Genres" }, order = { { "post_id", "ASC" } } })
    assert.equal(3, #posts)
    assert.equal(1, #posts[1].Genres)
    assert.equal(2, #posts[2].Genres)
    assert.equal(0, #posts[3].Genres)
  end)

  it("sets, gets, adds, removes, has and counts genres", function()
    local p = assert(m.Post:create { text = "p" })
    local g = H.genres(m.Genre, { "a", "b", "c" })
    assert.is_true(p:setGenres { g[1].genre_id, g[2].genre_id })
    local got = assert(p:getGenres { order = { { "name", "ASC" } } })
    assert.equal(2, #got)
    assert.equal("a", got[1].name)
    assert.is_true(p:addGenres { g[3].genre_id })
    assert.equal(3, p:countGenres())
    assert.is_true(p:hasGenres { g[1].genre_id, g[3].genre_id })
    assert.is_true(p:removeGenres { g[1].genre_id })
    assert.equal(2, p:countGenres())
    assert.is_false(p:hasGenres { g[1].genre_id })
    assert.is_true(p:setGenres { g[1].genre_id })
    assert.equal(1, p:countGenres())
    assert.is_true(p:setGenres {})
    assert.equal(0, p:countGenres())
  end)

  it("returns a unique violation as 2067 with details.sqlstate, and writes nothing", function()
    assert(m.Genre:create { name = "a" })
    local ok, msg, code, details = m.Genre:create { name = "a" }
    assert.is_nil(ok)
    assert.matches("duplicate key", msg)
    assert.equal(2067, code)
    assert.equal("23505", details.sqlstate)
    assert.equal(1, m.Genre:count())
  end)

  it("commits and rolls back transactions and savepoints", function()
    assert(db:transaction(function()
      assert(m.Post:create { text = "kept" })
      local ok = db:transaction(function()
        assert(m.Post:create { text = "undone" })
        return nil, "no"
      end)
      assert.is_nil(ok)
    end))
    assert.equal(1, m.Post:count())
    local ok, err = pcall(db.transaction, db, function()
      assert(m.Post:create { text = "gone" })
      error("boom")
    end)
    assert.is_false(ok)
    assert.matches("boom", err)
    assert.equal(1, m.Post:count())
    assert.is_true(db:query("SELECT 1 AS one")[1].one == 1)
  end)

  it("goes on with a transaction after a failed statement inside it, as on SQLite", function()
    assert(m.Genre:create { name = "a" })
    local p = assert(db:transaction(function()
      local ok, _, code, details = m.Genre:create { name = "a" }
      assert.is_nil(ok)
      assert.equal(2067, code)
      assert.equal("23505", details.sqlstate)
      local bad = db:query("SELECT * FROM nope")
      assert.is_nil(bad)
      return m.Post:create { text = "after the failures" }
    end))
    assert.equal("after the failures", p.text)
    assert.equal(1, m.Post:count())
    assert.equal(1, m.Genre:count())
  end)
end)

describe("PostgreSQL values", function()
  local db, V
  before_each(function()
    db = open()
    V = db:define("V", { tableName = "v", fields = {
      b = { type = T.BLOB }, bo = { type = T.BOOLEAN }, big = { type = T.INTEGER },
      r = { type = T.REAL }, s = { type = T.STRING(5) },
      flag = { type = T.BOOLEAN, defaultValue = true },
    } })
    assert(db:sync())
  end)
  after_each(function() db:close() end)

  it("round-trips a BLOB with every byte", function()
    local bytes = {}
    for i = 255, 0, -1 do bytes[#bytes + 1] = string.char(i) end
    local blob = table.concat(bytes)
    local v = assert(V:create { b = blob })
    assert.equal(blob, assert(V:findByPk(v.id)).b)
    assert.equal(1, #assert(V:findAll { where = { b = blob } }))
  end)

  it("round-trips BOOLEAN as Lua booleans, with a boolean DEFAULT", function()
    local t = assert(V:create { bo = true })
    local f = assert(V:create { bo = false })
    assert.is_true(assert(V:findByPk(t.id)).bo)
    assert.is_false(assert(V:findByPk(f.id)).bo)
    assert.is_true(assert(V:findByPk(f.id)).flag)
    assert.equal(1, #assert(V:findAll { where = { bo = true } }))
    local typ = assert(db:query("SELECT data_type AS t FROM information_schema.columns "
      .. "WHERE table_name = 'v' AND column_name = 'bo'"))[1].t
    assert.equal("boolean", typ)
  end)

  it("keeps 64-bit integers exact", function()
    local big = i64("9007199254740993")   -- 2^53 + 1
    local v = assert(V:create { big = big })
    assert.equal(big, assert(V:findByPk(v.id)).big)
    assert.equal(1, #assert(V:findAll { where = { big = big } }))
    local max = i64("9223372036854775807")
    local w = assert(V:create { big = max })
    assert.equal(max, assert(V:findByPk(w.id)).big)
  end)

  it("stores doubles exactly", function()
    local x = 0.1 + 0.2
    local v = assert(V:create { r = x })
    assert.equal(x, assert(V:findByPk(v.id)).r)
  end)

  it("enforces VARCHAR(n) in raw SQL, unlike SQLite (22001, returned as code 1)", function()
    local ok, msg, code, details = db:query("INSERT INTO v (s) VALUES (?)", "toolong")
    assert.is_nil(ok)
    assert.matches("too long", msg)
    assert.equal(1, code)
    assert.equal("22001", details.sqlstate)
  end)
end)
