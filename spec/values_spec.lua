-- spec/values_spec.lua: values are data (docs/API.md "Values"): a value its field
-- cannot hold is refused before any SQL runs and comes back as
-- nil, message, junction.VALIDATION, { errors = { field = message } }; what is
-- accepted is converted, and the instance then holds exactly what a reload reads.
local H = require "spec.helper"
local T = H.T
local junction = H.junction

local function fields()
  return {
    i = { type = T.INTEGER }, t = { type = T.TEXT }, s = { type = T.STRING(5) },
    r = { type = T.REAL }, b = { type = T.BLOB }, bo = { type = T.BOOLEAN }, d = { type = T.DATE },
    req = { type = T.TEXT, allowNull = false, defaultValue = "x" },
  }
end

-- Every statement run on the connection, to prove that nothing ran.
local function counting()
  local n = { 0 }
  return n, function() n[1] = n[1] + 1 end
end

describe("values are checked against their field's type", function()
  local db, V, count
  before_each(function()
    local log
    count, log = counting()
    db = H.open { log = log }
    V = db:define("Vals", { tableName = "vals", timestamps = false, fields = fields() })
    assert(db:sync())
    count[1] = 0
  end)
  after_each(function() db:close() end)

  -- value, field, expected message
  local refused = {
    { "yes", "bo", 'Vals.bo: "yes" is not a boolean (true or false)' },
    { "true", "bo", 'Vals.bo: "true" is not a boolean (true or false)' },
    { 2, "bo", "Vals.bo: 2 is not a boolean (true or false)" },
    { "many", "i", 'Vals.i: "many" is not an integer' },
    { 7.5, "i", "Vals.i: 7.5 is not an integer" },
    { "7.5", "i", 'Vals.i: "7.5" is not an integer' },
    { math.huge, "i", "Vals.i: inf is not an integer" },
    { 0 / 0, "i", "Vals.i: nan is not an integer" },
    { "views + 1", "i", 'Vals.i: "views + 1" is not an integer' },
    { true, "i", "Vals.i: true is not an integer" },
    { true, "t", "Vals.t: true is not text" },
    { math.huge, "t", "Vals.t: inf is not text" },
    { "123456", "s", 'Vals.s: "123456" is longer than 5 characters' },
    { "abc", "r", 'Vals.r: "abc" is not a number' },
    { 0 / 0, "r", "Vals.r: nan is not a number" },
    { false, "b", "Vals.b: false is not a string of bytes" },
    { 12, "b", "Vals.b: 12 is not a string of bytes" },
    { "not a date", "d", 'Vals.d: "not a date" is not a date (YYYY-MM-DD, optionally HH:MM[:SS[.fff]] and a zone)' },
    { "2024-02-30", "d", nil },
    { "2023-02-29 10:00", "d", nil },
    { "2024-01-01 24:00", "d", nil },
    { "2024-1-1", "d", nil },
    { "2024-01-01 10:00:00.", "d", nil },
    { "2024-01-01Z", "d", nil },
    { true, "d", "Vals.d: true is not a date (YYYY-MM-DD, optionally HH:MM[:SS[.fff]] and a zone)" },
    { 1e300, "d", "Vals.d: 1.0000000000000001e+300 is not a date (seconds since 1970, within the years 1 to 9999)" },
  }
  for _, case in ipairs(refused) do
    local value, field, expected = case[1], case[2], case[3]
    it("create refuses " .. tostring(value) .. " for " .. field .. " before any SQL", function()
      local ok, msg, code, details = V:create { [field] = value }
      assert.is_nil(ok)
      assert.equal(junction.VALIDATION, code)
      if expected then assert.equal(expected, msg) else assert.matches("^Vals%." .. field .. ": ", msg) end
      assert.same({ errors = { [field] = msg } }, details)
      assert.equal(0, count[1], "no statement ran")
      assert.equal(0, #db:query("SELECT * FROM vals"))
    end)
  end

  -- value, field, what the instance and a reload hold
  local accepted = {
    { 7, "i", 7 }, { 7.0, "i", 7 }, { "7", "i", 7 }, { "-42", "i", -42 },
    { true, "bo", true }, { false, "bo", false }, { 1, "bo", true }, { 0, "bo", false },
    { "text", "t", "text" }, { 7, "t", "7" }, { 2.5, "t", "2.5" },
    { "fünf!", "s", "fünf!" },
    { 2.5, "r", 2.5 }, { "2.5", "r", 2.5 }, { 3, "r", 3 },
    { "\0\255", "b", "\0\255" },
    -- every form is stored as junction's own UTC text, so dates compare and sort right
    { "2024-02-29", "d", "2024-02-29 00:00:00.000" },
    { "2024-02-29 13:14", "d", "2024-02-29 13:14:00.000" },
    { "2024-02-29T13:14:15Z", "d", "2024-02-29 13:14:15.000" },
    { "2024-02-29 13:14:15.678", "d", "2024-02-29 13:14:15.678" },
    { "2024-02-29T13:14:15.123456+05:30", "d", "2024-02-29 07:44:15.123" },
    { "2024-03-01T01:00:00+02:00", "d", "2024-02-29 23:00:00.000" },
    { 86400, "d", "1970-01-02 00:00:00.000" },
    { -0.5, "d", "1969-12-31 23:59:59.500" },
  }
  for _, case in ipairs(accepted) do
    local value, field, held = case[1], case[2], case[3]
    it("create accepts " .. tostring(value) .. " for " .. field .. " and holds what a reload reads", function()
      local v = assert(V:create { [field] = value })
      assert.equal(held, v[field])
      local again = assert(V:findByPk(v.id))
      assert.equal(held, again[field])
      assert.equal(type(again[field]), type(v[field]))
      if H.has_int and type(held) == "number" then
        assert.equal(math.type(again[field]), math.type(v[field]))
      end
      assert.same(again:toTable(), v:toTable())
    end)
  end

  it("a NULL where allowNull is false is refused, not the auto-increment key", function()
    local v = assert(V:create {})   -- the default fills req, SQLite the key
    v.req = nil
    local ok, msg, code, details = v:save()
    assert.is_nil(ok)
    assert.equal(junction.VALIDATION, code)
    assert.equal("Vals.req: cannot be null (allowNull is false)", msg)
    assert.equal(msg, details.errors.req)
    assert.equal("x", V:findByPk(v.id).req)
  end)

  it("every failing field is in the details; the message names the first and counts the rest", function()
    local ok, msg, code, details = V:create { i = "many", bo = "yes", t = true }
    assert.is_nil(ok)
    assert.equal(junction.VALIDATION, code)
    assert.equal('Vals.bo: "yes" is not a boolean (true or false) (and 2 more fields)', msg)
    assert.same({ "bo", "i", "t" }, (function()
      local k = {}
      for name in pairs(details.errors) do k[#k + 1] = name end
      table.sort(k)
      return k
    end)())
    assert.equal('Vals.i: "many" is not an integer', details.errors.i)
  end)

  it("save and inst:update refuse a bad value and change nothing in the row", function()
    local v = assert(V:create { i = 1 })
    count[1] = 0
    v.i = "many"
    local ok, msg, code = v:save()
    assert.is_nil(ok)
    assert.equal(junction.VALIDATION, code)
    assert.equal('Vals.i: "many" is not an integer', msg)
    ok, msg, code = v:update { i = 7.5 }
    assert.is_nil(ok)
    assert.equal("Vals.i: 7.5 is not an integer", msg)
    assert.equal(junction.VALIDATION, code)
    assert.equal(0, count[1])
    assert.equal(1, V:findByPk(v.id).i)
    assert(v:update { i = "12" })
    assert.equal(12, v.i)
    assert.equal(12, V:findByPk(v.id).i)
  end)

  it("Model:update refuses 'views + 1' for an INTEGER before any SQL", function()
    assert(V:create { i = 1 })
    count[1] = 0
    local ok, msg, code, details = V:update({ i = "views + 1" }, { where = { id = 1 } })
    assert.is_nil(ok)
    assert.equal(junction.VALIDATION, code)
    assert.equal('Vals.i: "views + 1" is not an integer', msg)
    assert.equal(msg, details.errors.i)
    assert.equal(0, count[1])
    assert.equal(1, V:findByPk(1).i)
  end)

  it("Model:update converts what it accepts and refuses junction.null where allowNull is false", function()
    assert(V:create { i = 1 })
    assert.equal(1, V:update({ i = "5", bo = 1 }, { where = { id = 1 } }))
    local row = db:query("SELECT i, bo, " .. H.typeof("i") .. " AS ty FROM vals")[1]
    assert.same({ i = 5, bo = 1, ty = "integer" }, row)
    local ok, msg, code = V:update({ req = junction.null }, { where = { id = 1 } })
    assert.is_nil(ok)
    assert.equal(junction.VALIDATION, code)
    assert.equal("Vals.req: cannot be null (allowNull is false)", msg)
  end)

  it("bulkCreate inserts nothing when one row fails, and says which row", function()
    local ok, msg, code, details = V:bulkCreate { { i = 1 }, { i = 2 }, { i = "three" } }
    assert.is_nil(ok)
    assert.equal(junction.VALIDATION, code)
    assert.equal('Vals.i: "three" is not an integer (row 3)', msg)
    assert.equal(3, details.index)
    assert.equal(0, count[1])
    assert.equal(0, V:count())
  end)

  it("bulkCreate of a table that is not a list raises and inserts nothing", function()
    H.mentions(H.raises(function() V:bulkCreate { [1] = { i = 1 }, [3] = { i = 3 } } end),
      "Vals:bulkCreate", "a list of value tables expected")
    H.mentions(H.raises(function() V:bulkCreate { { i = 1 }, extra = { i = 2 } } end),
      "Vals:bulkCreate", "'extra'")
    assert.equal(0, V:count())
    assert.same({}, assert(V:bulkCreate {}))
  end)

  it("findOrCreate refuses bad defaults before any SQL", function()
    local ok, msg, code = V:findOrCreate { where = { t = "k" }, defaults = { i = "many" } }
    assert.is_nil(ok)
    assert.equal(junction.VALIDATION, code)
    assert.equal('Vals.i: "many" is not an integer', msg)
    assert.equal(0, count[1])
    local v, created = V:findOrCreate { where = { t = "k" }, defaults = { i = "8" } }
    assert.is_true(created)
    assert.equal(8, v.i)
  end)

  it("createGenre refuses a value its field cannot hold and links nothing", function()
    local m = H.blog(db)
    local p = assert(m.Post:create { text = "p" })
    local ok, msg, code, details = p:createGenre { name = ("x"):rep(61) }
    assert.is_nil(ok)
    assert.equal(junction.VALIDATION, code)
    assert.equal('Genre.name: "' .. ("x"):rep(40) .. '..." is longer than 60 characters', msg)
    assert.equal(msg, details.errors.name)
    assert.equal(0, m.Genre:count())
    assert.equal(0, m.TagPostGenre:count())
  end)

  it("names and shapes still raise: an unknown field, a table as a value", function()
    H.mentions(H.raises(function() V:create { nope = 1 } end), "Vals", "nope")
    H.mentions(H.raises(function() V:create { i = {} } end), "Vals", "i")
    H.mentions(H.raises(function() V:update({ nope = 1 }, { where = { id = 1 } }) end), "nope")
  end)

  it("junction.VALIDATION is a number no SQLite result code uses", function()
    assert.is_number(junction.VALIDATION)
    assert.is_true(junction.VALIDATION % 256 > 101)
  end)
end)

describe("the instance create and save return holds what a reload returns", function()
  local db, m
  before_each(function()
    db = H.open()
    m = H.blog(db)
  end)
  after_each(function() db:close() end)

  it("after create: defaults, key, timestamps and converted values", function()
    local W = db:define("W", { underscored = true, fields = {
      n = { type = T.INTEGER, defaultValue = 3 }, at = { type = T.DATE },
      ok = { type = T.BOOLEAN, defaultValue = function() return 1 end } } })
    assert(db:sync())
    local w = assert(W:create { at = 0 })
    local r = assert(W:findByPk(w.id))
    assert.same(r:toTable(), w:toTable())
    assert.equal("1970-01-01 00:00:00.000", w.at)
    assert.is_true(w.ok)
    if H.has_int then assert.equal("integer", math.type(w.n)) end
  end)

  it("after save of a changed instance", function()
    local p = assert(m.Post:create { text = "a" })
    p.text = 12
    assert(p:save())
    assert.equal("12", p.text)
    assert.same(m.Post:findByPk(p.post_id):toTable(), p:toTable())
  end)

  it("after bulkCreate", function()
    local list = assert(m.Genre:bulkCreate { { name = 1 }, { name = "b" } })
    assert.equal("1", list[1].name)
    assert.same(m.Genre:findByPk(list[1].genre_id):toTable(), list[1]:toTable())
  end)
end)

describe("a destroyed instance stays destroyed", function()
  local db, m
  before_each(function()
    db = H.open()
    m = H.blog(db)
  end)
  after_each(function() db:close() end)

  it("save, update, reload and destroy raise; nothing comes back", function()
    local p = assert(m.Post:create { text = "a" })
    assert.is_true(p:destroy())
    assert.equal("Post:save: instance was destroyed", H.raises(function() p:save() end):match("Post:save:.*$"))
    H.mentions(H.raises(function() p:update { text = "b" } end), "Post:update", "destroyed")
    H.mentions(H.raises(function() p:reload() end), "Post:reload", "destroyed")
    H.mentions(H.raises(function() p:destroy() end), "Post:destroy", "destroyed")
    p.text = "again"
    H.mentions(H.raises(function() p:save() end), "destroyed")
    assert.equal(0, m.Post:count())
  end)

  it("tostring shows it is destroyed; reading its fields still works", function()
    local p = assert(m.Post:create { text = "a" })
    assert(p:destroy())
    assert.matches("(destroyed)", tostring(p), 1, true)
    assert.equal("a", p.text)
    assert.equal("a", p:toTable().text)
  end)

  it("association methods on it raise", function()
    assert(m.Genre:create { name = "g" })
    local p = assert(m.Post:create { text = "a" })
    assert(p:destroy())
    H.mentions(H.raises(function() p:setGenres { 1 } end), "Post:setGenres", "destroyed")
    H.mentions(H.raises(function() p:getGenres() end), "Post:getGenres", "destroyed")
    local tpg = assert(m.TagPostGenre:create { post_id = assert(m.Post:create { text = "b" }).post_id, genre_id = 1 })
    local g = m.Genre:findByPk(1)
    assert(tpg:destroy())
    H.mentions(H.raises(function() tpg:setGenre(g) end), "destroyed")
    H.mentions(H.raises(function() tpg:getGenre() end), "destroyed")
    assert.equal(0, m.TagPostGenre:count())
  end)
end)

describe("saving an instance whose row was deleted elsewhere", function()
  it("fails with code 12 instead of answering success for an UPDATE of no row", function()
    local db = H.open()
    local m = H.blog(db)
    local g = assert(m.Genre:create { name = "a" })
    assert.equal(1, m.Genre:destroy { where = { genre_id = g.genre_id } })
    local ok, msg, code = g:update { name = "back" }
    assert.is_nil(ok)
    assert.equal("Genre:save: the row is gone (deleted elsewhere)", msg)
    assert.equal(12, code)
    assert.is_true(g:changed("name"))
    local h = assert(m.Genre:create { name = "b" })
    assert.equal(1, m.Genre:destroy { where = { genre_id = h.genre_id } })
    ok, msg, code = h:save()   -- nothing changed: still no success for a row that is gone
    assert.is_nil(ok)
    assert.equal("Genre:save: the row is gone (deleted elsewhere)", msg)
    assert.equal(12, code)
    assert.equal(0, m.Genre:count())
    db:close()
  end)
end)

describe("metamethods check their argument", function()
  local db, m
  before_each(function()
    db = H.open()
    m = H.blog(db)
  end)
  after_each(function() db:close() end)

  local wrong = { {}, 1, "x", true, io.stdout, function() end }

  local function each_metamethod(obj, fn)
    local mt = getmetatable(obj)
    assert.is_table(mt)
    for name, f in pairs(mt) do
      if type(f) == "function" then fn(name, f) end
    end
  end

  local function objects()
    local p = assert(m.Post:create { text = "a" })
    local a = next(m.Post:_info().associations or {})
    a = a and m.Post:_info().associations[a]
    return { instance = p, model = m.Post, association = a }
  end

  for _, kind in ipairs { "instance", "model", "association" } do
    it("of the " .. kind .. " raise a clear error on a wrong first argument", function()
      local all = objects()
      local obj = all[kind]
      if obj == nil then return end
      local others = { db }
      for other, o in pairs(all) do
        if other ~= kind then others[#others + 1] = o end
      end
      each_metamethod(obj, function(name, f)
        for _, bad in ipairs(wrong) do
          local ok, err = pcall(f, bad, "text", "v")
          if not ok then
            assert.is_string(err, name)
          end
        end
        for _, bad in ipairs(others) do
          local ok, err = pcall(f, bad, "text", "v")
          if not ok then
            assert.is_string(err, name)
          end
        end
      end)
      -- the instance metamethods by name: raise, never crash
      if kind == "instance" then
        local mt = getmetatable(obj)
        for _, bad in ipairs(wrong) do
          H.mentions(H.raises(function() return mt.__index(bad, "text") end), "junction.Instance", "__index")
          H.mentions(H.raises(function() mt.__newindex(bad, "text", "v") end), "junction.Instance", "__newindex")
          H.mentions(H.raises(function() return mt.__tostring(bad) end), "junction.Instance", "__tostring")
          assert.is_false(mt.__eq(bad, obj))
        end
        -- a model userdata is not an instance either
        H.mentions(H.raises(function() return mt.__index(m.Post, "text") end), "instance expected")
      elseif kind == "model" then
        local mt = getmetatable(obj)
        for _, bad in ipairs(wrong) do
          H.mentions(H.raises(function() return mt.__index(bad, "findAll") end), "junction.Model")
          assert.has_error(function() return mt.__tostring(bad) end)
        end
        H.mentions(H.raises(function() return mt.__index(objects().instance, "findAll") end), "model expected")
      end
    end)
  end

  it("of junction.types values and junction.null never crash on a wrong argument", function()
    local all = objects()
    local bads = { all.instance, all.model, all.association, db }
    for _, v in ipairs(wrong) do bads[#bads + 1] = v end
    for _, obj in ipairs { T.INTEGER, T.STRING(3), junction.null } do
      for name, f in pairs(getmetatable(obj)) do
        if type(f) == "function" then
          for _, bad in ipairs(bads) do
            local ok, err = pcall(f, bad)
            if not ok then assert.is_string(err, name) end
          end
        end
      end
    end
  end)

  it("of the connection raise on a wrong first argument", function()
    local mt = getmetatable(db)
    local all = objects()
    local bads = { all.instance, all.model, all.association }
    for _, v in ipairs(wrong) do bads[#bads + 1] = v end
    for name, f in pairs(mt) do
      if type(f) == "function" then
        for _, bad in ipairs(bads) do
          local ok, err = pcall(f, bad)
          if not ok then assert.is_string(err, name) end
        end
      end
    end
  end)
end)

describe("a log function that changes the values being saved", function()
  local function setup(on_log)
    local db = H.open { log = function(sql, params) on_log(sql, params) end }
    local m = H.blog(db)
    return db, m
  end

  it("cannot make create or save bind freed memory; the row and the instance agree", function()
    local target
    local db, m = setup(function(sql)
      if target and sql:match("^%s*[IU][NP]") then
        target.text = ("replaced "):rep(50) .. tostring(math.random())
        collectgarbage()
        collectgarbage()
      end
    end)
    for i = 1, 20 do
      local p = m.Post:build { text = ("original %d "):format(i):rep(40) }
      target = p
      assert(p:save())
      collectgarbage()
      local row = db:query("SELECT text FROM post WHERE post_id = ?", p.post_id)[1]
      assert.equal(("original %d "):format(i):rep(40), row.text)
      assert.equal(row.text, p.text)
      p.text = ("second %d "):format(i):rep(40)
      assert(p:save())
      row = db:query("SELECT text FROM post WHERE post_id = ?", p.post_id)[1]
      assert.equal(("second %d "):format(i):rep(40), row.text)
      assert.equal(row.text, p.text)
    end
    target = nil
    db:close()
  end)

  it("cannot make Model:create bind the values table's replaced strings", function()
    local values
    local db, m = setup(function(sql)
      if values and sql:match("^%s*INSERT") then
        values.text = nil
        values = nil
        collectgarbage()
        collectgarbage()
      end
    end)
    for i = 1, 20 do
      values = { text = ("value %d "):format(i):rep(30) }
      local p = assert(m.Post:create(values))
      assert.equal(("value %d "):format(i):rep(30), p.text)
      assert.equal(p.text, db:query("SELECT text FROM post WHERE post_id = ?", p.post_id)[1].text)
    end
    db:close()
  end)
end)

describe("junction.null in create and findOrCreate", function()
  it("writes NULL explicitly, instead of the default, and where it is refused says so", function()
    local H2 = require "spec.helper"
    local T2, junction2 = H2.T, H2.junction   -- luacheck: ignore 431
    local db = H2.open()
    local P = db:define("P", { timestamps = false, fields = {
      id = { type = T2.INTEGER, primaryKey = true }, text = { type = T2.TEXT },
      views = { type = T2.INTEGER, defaultValue = 3 },
      req = { type = T2.TEXT, allowNull = false, defaultValue = "r" } } })
    assert(db:sync())
    local p = assert(P:create { id = 1, text = "a", views = junction2.null })
    assert.is_nil(p.views)
    assert.is_nil(P:findByPk(1).views)
    local q, created = P:findOrCreate { where = { text = "n", views = junction2.null } }
    assert.is_true(created)
    assert.is_nil(q.views)
    assert.equal(1, P:count { where = { text = "n", views = junction2.null } })
    local ok, _, code = P:create { id = 3, req = junction2.null }
    assert.is_nil(ok)
    assert.equal(junction2.VALIDATION, code)
    db:close()
  end)
end)

describe("DATE values in every accepted form", function()
  it("compare and sort as times, with each other and with junction's timestamps", function()
    local H2 = require "spec.helper"
    local T2 = H2.T   -- luacheck: ignore 431
    local db = H2.open()
    local Ev = db:define("Ev", { fields = { at = { type = T2.DATE } } })
    assert(db:sync())
    assert(Ev:create { at = 1704103200 })                     -- 2024-01-01 10:00 UTC
    assert(Ev:create { at = "2024-01-01T12:00:00+05:00" })    -- 07:00 UTC
    assert.equal(2, Ev:count { where = { at = { gt = "2024-01-01T00:00:00Z" } } })
    assert.equal(1, Ev:count { where = { at = { lt = "2024-01-01 08:00" } } })
    assert.equal(1, Ev:count { where = { at = "2024-01-01T10:00:00.000+00:00" } })
    local rows = Ev:findAll { order = { "at" } }
    assert.same({ "2024-01-01 07:00:00.000", "2024-01-01 10:00:00.000" }, { rows[1].at, rows[2].at })
    assert.equal(2, Ev:count { where = { createdAt = { gt = os.date("!%Y-%m-%dT00:00:00Z") } } })
    db:close()
  end)
end)

describe("text PostgreSQL cannot hold", function()
  local pg_it = H.pg_only(it, pending)

  pg_it("a NUL byte or bytes that are not UTF-8 in text are a returned failure, never a shorter value", function()
    local db = H.open()
    local M = db:define("M", { tableName = "m", timestamps = false, fields = {
      id = { type = T.INTEGER, primaryKey = true, autoIncrement = true }, s = { type = T.TEXT } } })
    assert(db:sync())
    for _, bad in ipairs { "x\0y", "\0", "not utf-8 \255" } do
      local inst, msg, code = M:create { s = bad }
      assert.is_nil(inst, ("%q was stored as %q"):format(bad, tostring(inst and M:findByPk(inst.id).s)))
      assert.is_string(msg)
      assert.is_number(code)
      local rows, qmsg = db:query("INSERT INTO m (s) VALUES (?)", bad)
      assert.is_nil(rows, ("db:query stored %q"):format(bad))
      assert.is_string(qmsg)
    end
    assert.equal(0, M:count())
    db:close()
  end)
end)
