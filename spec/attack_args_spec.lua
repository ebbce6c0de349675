-- Hostile and mistaken arguments to the model features: each is a misuse
-- error naming model, method and argument, or a returned failure; never a
-- crash, a bare nil, or a row written that the call does not return.
local H = require "spec.helper"
local T = H.T
local junction = H.junction

describe("include", function()
  it("names the model when { association = Model } is no association of the model", function()
    local db = H.open()
    local A = db:define("A", { fields = { name = { type = T.TEXT } } })
    local B = db:define("B", { fields = { name = { type = T.TEXT } } })
    assert(db:sync())
    assert(A:create { name = "x" })
    assert.has_error(function() A:findAll { include = { { association = B } } } end,
      "A:findAll: bad include (A has no association to B; it has none)")
    assert.has_error(function() A:findAll { include = { { as = B } } } end,
      "A:findAll: bad include (A has no association to B; it has none)")
    assert.has_error(function() A:findAll { include = { B } } end,
      "A:findAll: bad include (A has no association to B; it has none)")
  end)
end)

describe("create with options", function()
  it("called with a dot instead of a colon names the misuse, with or without include", function()
    local db = H.open()
    local A = db:define("A", { fields = { name = { type = T.TEXT } } })
    assert(db:sync())
    for _, opts in ipairs { {}, { include = {} } } do
      local ok, e = pcall(A.create, { name = "x" }, {}, opts)
      assert.is_false(ok)
      assert.matches("Model:create: bad self %(model expected, got table; call it with ':'%)", e)
    end
    assert.equal(0, A:count())
    db:close()
  end)

  it("every model method refuses a self that is another userdata (an instance, a connection)", function()
    local db = H.open()
    local A = db:define("A", { fields = { name = { type = T.TEXT } } })
    assert(db:sync())
    local a = assert(A:create { name = "x" })
    local fake = newproxy and newproxy(true) or io.stdout   -- a userdata with a metatable of its own
    for _, name in ipairs { "build", "create", "bulkCreate", "findByPk", "findOne", "findAll", "count",
                            "findOrCreate", "update", "destroy" } do
      for _, self in ipairs { a, db, fake } do
        local ok, e = pcall(A[name], self, 1)
        assert.is_false(ok, name)
        assert.matches("Model:" .. name .. ": bad self %(model expected, got ", e)
      end
    end
    assert.equal(1, A:count())
    db:close()
  end)
end)

describe("upsert", function()
  local function items(db)
    local Item = db:define("Item", { fields = {
      title = { type = T.TEXT, unique = true }, views = { type = T.INTEGER } } })
    assert(db:sync())
    return Item
  end
  local function count(db)
    return db:query('SELECT count(*) AS n FROM "Item"')[1].n
  end

  it("raises when a conflictFields field has no value, and writes nothing", function()
    local db = H.open()
    local Item = items(db)
    assert(Item:create { title = "a", views = 1 })
    local params = {}
    assert.has_error(function() Item:upsert({ id = params.id, views = 5 }, { conflictFields = { "id" } }) end,
      "Item:upsert: bad option 'conflictFields' (the values give no value for 'id', so it names no row)")
    assert.has_error(function() Item:upsert({ id = junction.null, views = 5 }, { conflictFields = { "id" } }) end,
      "Item:upsert: bad option 'conflictFields' (the values give no value for 'id', so it names no row)")
    assert.equal(1, count(db))
  end)

  it("never reads back another row for a target without a value", function()
    local db = H.open()
    local Item = items(db)
    assert(db:query('INSERT INTO "Item" (views, "createdAt", "updatedAt") VALUES (7, \'x\', \'x\')'))
    assert.has_error(function()
      Item:upsert({ title = junction.null, views = 9 }, { conflictFields = { "title" } })
    end, "Item:upsert: bad option 'conflictFields' (the values give no value for 'title', so it names no row)")
    assert.has_error(function()
      Item:bulkCreate({ { title = junction.null, views = 9 } },
                      { conflictFields = { "title" }, ignoreDuplicates = true })
    end, "Item:bulkCreate: bad option 'conflictFields' (the values give no value for 'title', so it names no row)")
    assert.equal(1, count(db))
  end)

  it("picks the primary key as the target only when it has a value", function()
    local db = H.open()
    local Item = items(db)
    local a = assert(Item:upsert { id = junction.null, title = "t", views = 1 })
    assert.equal("t", a.title)
    local b = assert(Item:upsert { id = junction.null, title = "t", views = 2 })
    assert.equal(a.id, b.id)
    assert.equal(2, b.views)
    assert.equal(1, count(db))
  end)
end)

describe("isSoftDeleted", function()
  it("is a misuse error naming the method when self is not an instance", function()
    local db = H.open()
    local Item = db:define("Item", { paranoid = true, fields = { title = { type = T.TEXT } } })
    assert(db:sync())
    local it = assert(Item:create { title = "x" })
    assert.has_error(function() it.isSoftDeleted(5) end, "isSoftDeleted: bad self (instance expected, got number)")
    assert.has_error(function() it.isSoftDeleted({}) end, "isSoftDeleted: bad self (instance expected, got table)")
    assert.is_false(it:isSoftDeleted())
  end)
end)

describe("hasMany's get", function()
  it("names the method called when its options are misuse, then the find that refused them", function()
    local db = H.open()
    local A = db:define("Author", { fields = { name = { type = T.TEXT } } })
    db:define("Book", { fields = { title = { type = T.TEXT }, author_id = { type = T.INTEGER } } })
    assert(db:associate { Author = { { hasMany = "Book", foreignKey = "author_id", as = "Books" } } })
    assert(db:sync())
    local a = assert(A:create { name = "x" })
    assert.has_error(function() a:getBooks { offset = -1 } end,
      "Author:getBooks: Book:findAll: bad option 'offset' (non-negative integer expected)")
    assert.has_error(function() a:getBooks { where = { nope = 1 } } end,
      "Author:getBooks: Book:findAll: bad where field 'nope' (no such field in Book)")
    assert.equal(0, #a:getBooks())
  end)
end)

describe("increment", function()
  local big_it = H.has_int and it or pending

  big_it("past 64 bits fails and changes no row, instead of storing the sum as a REAL", function()
    local db = H.open()
    local Item = db:define("Item", { fields = { big = { type = T.BIGINT }, n = { type = T.INTEGER } } })
    assert(db:sync())
    local max = math.maxinteger
    local a = assert(Item:create { big = max - 1, n = 1 })
    local b = assert(Item:create { big = 5, n = 1 })
    local ok, msg, code = Item:increment({ big = 2, n = 1 }, { all = true })
    assert.is_nil(ok)
    assert.is_string(msg)
    assert.is_number(code)
    local r, m2, c2 = a:increment("big", 2)
    assert.is_nil(r)
    assert.is_string(m2)
    assert.is_number(c2)
    local q = 4611686018427387904   -- 2^62
    assert.equal(1, Item:decrement("big", q, { where = { id = b.id } }))
    assert.equal(1, Item:decrement("big", q, { where = { id = b.id } }))   -- 5 - 2^63
    ok, msg, code = Item:decrement("big", q, { where = { id = b.id } })
    assert.is_nil(ok)
    assert.is_string(msg)
    assert.is_number(code)
    a:reload()
    b:reload()
    assert.equal(max - 1, a.big)
    assert.equal(1, a.n)
    assert.equal(5 - 2 * q, b.big)
    assert.equal(math.type(a.big), "integer")
    assert.equal(1, assert(Item:increment("big", 1, { where = { id = a.id } })))
    assert.equal(max, a:reload().big)
  end)
end)

describe("UTF-8", function()
  it("is checked as RFC 3629 says: an encoded surrogate, an overlong form or a code point past U+10FFFF is not text",
     function()
    local bad = { "\237\160\128", "\237\191\191", "\224\128\128", "\224\159\191", "\240\128\128\128",
                  "\240\143\191\191", "\244\144\128\128", "\192\128", "\255" }
    for _, s in ipairs(bad) do
      local v, msg, code = junction.toJSON(s)
      assert.is_nil(v, ("%q"):format(s))
      assert.equal(junction.VALIDATION, code, msg)
      v, msg, code = junction.fromJSON('"' .. s .. '"')
      assert.is_nil(v, ("%q"):format(s))
      assert.equal(junction.VALIDATION, code, msg)
    end
    local good = { "\237\159\191", "\224\160\128", "\240\144\128\128", "\244\143\191\191", "\238\128\128", "é", "€" }
    for _, s in ipairs(good) do
      assert.equal('"' .. s .. '"', junction.toJSON(s))
      assert.equal(s, junction.fromJSON('"' .. s .. '"'))
    end
  end)

  it("refuses a JSON field value holding an encoded surrogate as a value failure, on either engine", function()
    local db = H.open()
    local Doc = db:define("Doc", { fields = { meta = { type = T.JSON } } })
    assert(db:sync())
    local d, msg, code = Doc:create { meta = { s = "\237\160\128" } }
    assert.is_nil(d)
    assert.equal(junction.VALIDATION, code, msg)
    assert.equal(0, Doc:count())
  end)
end)

describe("junction.copy", function()
  it("reads its options raw and refuses a tables list with other keys", function()
    local a, b = H.open(), H.open()
    for _, db in ipairs { a, b } do
      local M = db:define("M", { tableName = "m", fields = { x = { type = T.INTEGER } } })
      assert(db:sync())
      if db == a then assert(M:create { x = 1 }) end
    end
    local ran = false
    local sneaky = setmetatable({}, { __pairs = function() ran = true; return next, {}, nil end,
                                      __index = function() ran = true end })
    local counts = assert(junction.copy(a, b, sneaky))
    assert.equal(1, counts.m)
    assert.is_false(ran)
    assert.has_error(function() junction.copy(a, b, { tables = { "m", x = 1 } }) end,
      "junction.copy: bad option 'tables' (a list expected, but it has the key 'x')")
    assert.has_error(function() junction.copy(a, b, { tables = { "m", [3] = "n" } }) end,
      "junction.copy: bad option 'tables' (a list expected, but it has the key '3')")
    local lying = setmetatable({ "m" }, { __len = function() ran = true; return 5 end })
    local ok, msg = junction.copy(a, b, { tables = lying })   -- m has rows by now: a returned failure
    assert.is_nil(ok)
    assert.matches("has rows already", msg)
    assert.is_false(ran)
  end)
end)

describe("findOrCreate of a scoped or paranoid model", function()
  it("names findOrCreate when its where is empty or names no field", function()
    local db = H.open()
    local P = db:define("Post", { paranoid = true, fields = { title = { type = T.TEXT } } })
    assert(db:sync())
    local params = {}
    assert.has_error(function() P:findOrCreate { where = { title = params.title } } end,
      "Post:findOrCreate: bad where (a branch with no conditions: a nil value such as { id = params.id } " ..
      "leaves it empty; omit where to read every row, say { all = true } to update or destroy every row)")
    assert.has_error(function() P:findOrCreate { where = { nope = 1 } } end,
      "Post:findOrCreate: bad where field 'nope' (no such field in Post)")
    assert.equal(0, P:count())
    local p, created = P:findOrCreate { where = { title = "a" } }
    assert.is_true(created)
    assert.equal("a", p.title)
  end)
end)

describe("bulkCreate with updateOnDuplicate", function()
  it("checks the rows as beforeBulkCreate leaves them: a row it adds is written, a target it empties raises", function()
    local db = H.open()
    local mode
    local Item = db:define("Item", {
      fields = { title = { type = T.TEXT, unique = true }, views = { type = T.INTEGER } },
      hooks = { beforeBulkCreate = function(list)
        if mode == "null" then list[1].title = junction.null
        elseif mode == "add" then list[#list + 1] = { title = "added", views = 3 }
        elseif mode == "bad" then list[1] = 5 end
      end } })
    assert(db:sync())
    assert(db:query('INSERT INTO "Item" (views, "createdAt", "updatedAt") VALUES (7, \'x\', \'x\')'))
    local function count() return db:query('SELECT count(*) AS n FROM "Item"')[1].n end
    mode = "null"
    local function bulk()
      return Item:bulkCreate({ { title = "a", views = 1 } }, { updateOnDuplicate = { "views" } })
    end
    assert.has_error(bulk,
      "Item:bulkCreate: bad argument #1 (row 1 gives neither the primary key nor every field of a unique " ..
      "constraint; say conflictFields)")
    mode = "bad"
    assert.has_error(bulk,
      "Item:bulkCreate: bad argument #1 (element 1 is not a table of values)")
    assert.equal(1, count())
    mode = "add"
    local rows = assert(bulk())
    assert.equal(2, #rows)
    assert.equal("added", rows[2].title)
    assert.equal(3, count())
  end)
end)

describe("restore", function()
  it("called by hand on a model that is not paranoid is a misuse error naming it", function()
    local db = H.open()
    local P = db:define("Post", { paranoid = true, fields = { title = { type = T.TEXT } } })
    local N = db:define("Note", { fields = { body = { type = T.TEXT } } })
    assert(db:sync())
    assert.has_error(function() P.restore(N, { where = { id = 1 } }) end,
      "Model:restore: bad self (a paranoid model expected, Note is not)")
    assert.equal(0, P:restore { where = { id = 1 } })
  end)
end)

describe("a misuse error naming a key the caller gave", function()
  -- a key whose __tostring raises (or yields): luaL_tolstring would run it
  local evil = setmetatable({}, { __tostring = function() error("__tostring ran") end, __name = "Evil" })

  it("names it by its type, running none of its metamethods", function()
    local db = H.open()
    local Post = db:define("Post", { fields = { title = { type = T.TEXT }, n = { type = T.INTEGER } } })
    db:define("Genre", { fields = { name = { type = T.TEXT } } })
    assert(db:associate { Post = { { belongsToMany = "Genre", through = "PostGenre", as = "Genres" } } })
    assert(db:sync())
    local p = assert(Post:create { title = "a", n = 1 })
    local cases = {
      { function() return Post:update({ [evil] = 1 }, { where = { n = 1 } }) end,
        "Post:update: bad field 'table' %(no such field in Post%)" },
      { function() return p:increment({ [evil] = 1 }) end, "bad field 'table' %(no such field in Post%)" },
      { function() return p:changed(evil) end, "Post:changed: bad field 'table' %(no such field%)" },
      { function() return p:getGenres { joinTableAttributes = { evil } } end,
        "Post:getGenres: bad joinTableAttributes 'table' %(no such field in PostGenre%)" },
      { function() return Post:findAll { include = { { all = true, [evil] = 1 } } } end,
        "takes no other option, got 'table'" },
      { function() return Post:findAll { include = { Genres = { through = { attributes = { evil } } } } } end,
        "'table' is no field of PostGenre" },
      { function() return p:getGenres { joinTableAttributes = { [evil] = 1 } } end,
        "but it has the key table" },
    }
    for i, c in ipairs(cases) do
      local ok, err = pcall(c[1])
      assert.is_false(ok, "case " .. i)
      assert.matches(c[2], err, 1, false, "case " .. i)
    end
    assert.equal("a", Post:findByPk(1).title)
  end)
end)
