-- spec/errors_spec.lua: the two error channels (docs/API.md "Two error channels").
-- Misuse raises, naming model, method and argument; database failures return
-- exactly nil, message, code and write nothing.
local H = require "spec.helper"
local sqlite_it = H.sqlite_only(it, pending)

describe("misuse raises", function()
  local db, m, post
  before_each(function()
    db = H.open()
    m = H.blog(db)
    post = assert(m.Post:create { text = "p" })
  end)
  after_each(function() db:close() end)

  -- { what, fn, substrings the message must contain }
  local cases = {
    { "unknown findAll option", function(M) return M.Post:findAll { limt = 1 } end, { "Post", "findAll", "limt" } },
    { "findAll opts not a table", function(M) return M.Post:findAll("all") end, { "Post", "findAll" } },
    { "unknown where field",
      function(M) return M.Post:findAll { where = { titel = "x" } } end,
      { "Post", "findAll", "titel" } },
    { "unknown operator",
      function(M) return M.Post:findAll { where = { text = { contains = "x" } } } end,
      { "Post", "findAll", "contains" } },
    { "create values not a table", function(M) return M.Post:create("text") end, { "Post", "create" } },
    { "create unknown field", function(M) return M.Post:create { txet = "x" } end, { "Post", "create", "txet" } },
    { "build unknown field", function(M) return M.Post:build { txet = "x" } end, { "Post", "build", "txet" } },
    { "findByPk bad key", function(M) return M.Post:findByPk({}) end, { "Post", "findByPk" } },
    { "findOne unknown option",
      function(M) return M.Post:findOne { ordr = "text" } end,
      { "Post", "findOne", "ordr" } },
    { "count unknown option", function(M) return M.Genre:count { wehre = {} } end, { "Genre", "count", "wehre" } },
    { "update unknown field",
      function(M) return M.Post:update({ txet = "x" }, { all = true }) end,
      { "Post", "update", "txet" } },
    { "update unknown option",
      function(M) return M.Post:update({ text = "x" }, { whre = {} }) end,
      { "Post", "update", "whre" } },
    { "destroy unknown option", function(M) return M.Post:destroy { whre = {} } end, { "Post", "destroy", "whre" } },
    { "findOrCreate unknown option",
      function(M) return M.Post:findOrCreate { where = { text = "x" }, defualts = {} } end,
      { "Post", "findOrCreate", "defualts" } },
    { "bulkCreate not a list", function(M) return M.Post:bulkCreate("x") end, { "Post", "bulkCreate" } },
    { "bulkCreate unknown field",
      function(M) return M.Post:bulkCreate { { txet = "x" } } end,
      { "Post", "bulkCreate", "txet" } },
    { "order by unknown field",
      function(M) return M.Genre:findAll { order = "nmae" } end,
      { "Genre", "findAll", "nmae" } },
    { "include unknown alias",
      function(M) return M.Post:findAll { include = { "Gneres" } } end,
      { "Post", "findAll", "Gneres" } },
    { "snake-case alias raises the same way", function(M) return M.Post:find_all { limt = 1 } end, { "Post", "limt" } },
  }
  for _, c in ipairs(cases) do
    it(c[1], function()
      local msg = H.raises(c[2], m)
      H.mentions(msg, (table.unpack or unpack)(c[3]))
    end)
  end

  it("instance: unknown field read/write, bad update", function()
    H.mentions(H.raises(function() return post.txet end), "Post", "txet")
    H.mentions(H.raises(function() post.txet = 1 end), "Post", "txet")
    H.mentions(H.raises(function() post:update("x") end), "Post", "update")
  end)

  it("a model method called with a wrong self raises instead of crashing", function()
    H.raises(function() return m.Post.findAll() end)
    H.raises(function() return m.Post.findAll({}) end)
    H.raises(function() return m.Post.create(post, { text = "x" }) end)
    H.raises(function() return post.save() end)
    H.raises(function() return post.save(m.Post) end)
    H.raises(function() return post.toTable("x") end)
    H.raises(function() return db.query(nil, "SELECT 1") end)
    H.raises(function() return db.close(post) end)
  end)

  it("an instance method used on another model's instance raises", function()
    local g = assert(m.Genre:create { name = "g" })
    H.raises(function() return post.getGenres(g) end)
  end)

  it("a raise while binding does not poison the cached statement", function()
    assert(m.Post:create { text = "q" })
    for _ = 1, 3 do
      assert.is_false(pcall(m.Post.findAll, m.Post, { where = { text = function() end } }))
      assert.is_false(pcall(m.Post.findAll, m.Post, { where = { text = { ["in"] = { "q", {} } } } }))
      assert.equal(1, #m.Post:findAll { where = { text = "q" } })
      assert.equal(1, #m.Post:findAll { where = { text = { ["in"] = { "q", "r" } } } })
    end
    assert.is_false(pcall(m.Post.create, m.Post, { text = {} }))
    assert(m.Post:create { text = "r" })
    assert.equal(3, m.Post:count())
  end)

  it("misuse writes nothing", function()
    pcall(function() m.Post:bulkCreate { { text = "a" }, { txet = "b" } } end)
    pcall(function() m.Post:create { text = "b", bogus = 1 } end)
    assert.equal(1, m.Post:count())
  end)

  it("a raising defaultValue function propagates and writes nothing", function()
    local n = 0
    local W = db:define("W", { timestamps = false, fields = {
      v = { type = H.T.TEXT, defaultValue = function()
        n = n + 1
        if n == 3 then error("default exploded") end
        return "d" .. n
      end } } })
    assert(db:sync())
    local ok, err = pcall(W.bulkCreate, W, { {}, {}, {}, {} })
    assert.is_false(ok)
    assert.matches("default exploded", tostring(err))
    assert.equal(0, W:count())
    assert.is_true(db:exec("BEGIN; COMMIT;"), "no transaction left open")
    assert(W:create {})
    assert.equal(1, W:count())
  end)

  it("the error points at the caller (level 2), not at junction's inside", function()
    local ok, err = pcall(function() m.Post:findAll { limt = 1 } end)
    assert.is_false(ok)
    assert.is_nil(tostring(err):find("junction/init.lua", 1, true))
  end)
end)

describe("database failures return nil, message, code", function()
  local db, m
  before_each(function()
    db = H.open()
    m = H.blog(db)
  end)
  after_each(function() db:close() end)

  local function is_fail(code_expected, ...)
    -- PostgreSQL adds the details with its SQLSTATE (docs/POSTGRES.md, "Errors")
    if H.is_pg and select("#", ...) == 4 then
      assert.is_string((select(4, ...)).sqlstate)
    else
      assert.equal(3, select("#", ...), "exactly three values")
    end
    local ok, msg, code = ...
    assert.is_nil(ok)
    assert.is_string(msg)
    assert.is_true(#msg > 0)
    assert.is_number(code)
    if code_expected then assert.equal(code_expected, code) end
    return msg, code
  end

  it("UNIQUE -> 2067", function()
    assert(m.Genre:create { name = "rock" })
    local msg = is_fail(2067, m.Genre:create { name = "rock" })
    assert.matches(H.is_pg and "unique constraint" or "UNIQUE", msg)
    assert.equal(1, m.Genre:count())
  end)

  -- A value is data: refused by junction before any SQL, as a fourth value
  -- the details name every field that failed.
  local function is_invalid(...)
    assert.equal(4, select("#", ...), "nil, message, code, details")
    local ok, msg, code, details = ...
    assert.is_nil(ok)
    assert.is_string(msg)
    assert.equal(H.junction.VALIDATION, code)
    assert.is_table(details.errors)
    return msg, details
  end

  it("a NULL in a NOT NULL field -> junction.VALIDATION with details, before SQL", function()
    local msg, details = is_invalid(m.Post:create {})
    assert.equal("Post.text: cannot be null (allowNull is false)", msg)
    assert.equal(msg, details.errors.text)
    assert.equal(0, m.Post:count())
  end)

  it("FOREIGN KEY -> 787", function()
    assert(m.Post:create { text = "p" })
    is_fail(787, m.TagPostGenre:create { post_id = 1, genre_id = 42 })
    assert.equal(0, m.TagPostGenre:count())
  end)

  it("the code is always constraint-class for constraints", function()
    assert(m.Genre:create { name = "a" })
    local _, code = is_fail(nil, m.Genre:create { name = "a" })
    assert.equal(19, code % 256)
  end)

  it("instance save", function()
    assert(m.Genre:create { name = "a" })
    local b = assert(m.Genre:create { name = "b" })
    b.name = "a"
    is_fail(2067, b:save())
    assert.equal("b", db:query("SELECT name FROM genre WHERE genre_id = 2")[1].name)
  end)

  it("instance update", function()
    local p = assert(m.Post:create { text = "p" })
    p.text = nil
    is_invalid(p:save())
    assert.equal("p", db:query("SELECT text FROM post")[1].text)
  end)

  it("Model:update writes nothing when one row fails", function()
    assert(m.Genre:create { name = "a" })
    assert(m.Genre:create { name = "b" })
    is_fail(2067, m.Genre:update({ name = "same" }, { all = true }))
    assert.same({ "a", "b" }, H.ids(m.Genre:findAll(), "name"))
  end)

  it("bulkCreate writes nothing", function()
    is_fail(2067, m.Genre:bulkCreate { { name = "x" }, { name = "y" }, { name = "x" } })
    assert.equal(0, m.Genre:count())
  end)

  it("association methods", function()
    local p = assert(m.Post:create { text = "p" })
    -- a key that is no row: the fourth value names it
    local ok, msg, code, details = p:setGenres { 1 }
    assert.is_nil(ok)
    assert.equal("Post:setGenres: genre_id 1 not found", msg)
    assert.equal(787, code)
    assert.same({ missing = { 1 } }, details)
    ok, msg, code, details = p:addGenre(7)
    assert.is_nil(ok)
    assert.equal("Post:addGenre: genre_id 7 not found", msg)
    assert.equal(787, code)
    assert.same({ missing = { 7 } }, details)
    assert(m.Genre:create { name = "a" })
    is_fail(2067, p:createGenre { name = "a" })
    assert.equal(0, m.TagPostGenre:count())
  end)

  it("db:exec and db:query", function()
    is_fail(1, db:exec("SELECT * FROM nowhere"))
    is_fail(1, db:query("SELECT * FROM nowhere WHERE x = ?", 1))
  end)

  sqlite_it("a busy database file (SQLite's lock, busy_timeout 0) -> SQLITE_BUSY (5)", function()
    local path = H.tmpname()
    local a = assert(H.junction.open(path))
    local b = assert(H.junction.open(path, { busy_timeout = 0 }))
    local ma = H.blog(a)
    local mb = H.blog(b)
    assert(a:exec("BEGIN IMMEDIATE"))
    assert(ma.Post:create { text = "holding the lock" })
    local _, code = is_fail(nil, mb.Post:create { text = "blocked" })
    assert.equal(5, code % 256)
    assert(a:exec("COMMIT"))
    assert(mb.Post:create { text = "now fine" })
    assert.equal(2, mb.Post:count())
    a:close()
    b:close()
    H.rmdb(path)
  end)

  it("a failure inside db:transaction can be handled and the rest commits", function()
    assert(m.Genre:create { name = "a" })
    local r = db:transaction(function()
      local ok = m.Genre:create { name = "a" }
      assert.is_nil(ok)
      assert(m.Genre:create { name = "b" })
      return "done"
    end)
    assert.equal("done", r)
    assert.equal(2, m.Genre:count())
  end)
end)
