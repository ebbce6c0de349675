-- hasMany and hasOne writes (csrc/jn_hasmany.c): the same key reading and
-- failures as belongsToMany, one statement per write, all or nothing.
local H = require "spec.helper"
local T = H.T

-- Author hasMany Book, hasOne Profile (no timestamps); fk_notnull makes
-- book.author_id NOT NULL; hooked gives Book a validator on author_id.
local function library(db, opts)
  opts = opts or {}
  local Author = db:define("Author", { tableName = "author", timestamps = false, fields = {
    author_id = { type = T.INTEGER, primaryKey = true, autoIncrement = true },
    name = { type = T.TEXT } } })
  local Book = db:define("Book", { tableName = "book", timestamps = opts.timestamps or false, fields = {
    book_id = { type = T.INTEGER, primaryKey = true, autoIncrement = true },
    title = { type = T.TEXT },
    author_id = { type = T.INTEGER, allowNull = not opts.fk_notnull, validate = opts.validate,
                  references = { model = "author", key = "author_id" } } } })
  local Profile = db:define("Profile", { tableName = "profile", timestamps = false, fields = {
    profile_id = { type = T.INTEGER, primaryKey = true, autoIncrement = true },
    author_id = { type = T.INTEGER, references = { model = "author", key = "author_id" }, unique = true } } })
  assert(db:associate {
    Author = {
      { hasMany = "Book", as = "Books", foreignKey = "author_id" },
      { hasOne = "Profile", as = "Profile", foreignKey = "author_id" },
    },
  })
  assert(db:sync())
  return Author, Book, Profile
end

local function range(a, b)
  local l = {}
  for i = a, b do l[#l + 1] = i end
  return l
end

-- book_id -> author_id (false for NULL)
local function owners(db)
  local out = {}
  for _, r in ipairs(db:query("SELECT book_id, author_id FROM book ORDER BY book_id")) do
    out[r.book_id] = r.author_id or false
  end
  return out
end

describe("hasMany and belongsToMany", function()
  local db, m, post, Author, Book, ann
  before_each(function()
    db = H.open()
    m = H.blog(db)
    H.genres(m.Genre)                       -- 1..5
    post = assert(m.Post:create { text = "p" })
    Author, Book = library(db)
    ann = assert(Author:create { name = "Ann" })
    for i = 1, 5 do assert(Book:create { title = "B" .. i }) end
  end)
  after_each(function() db:close() end)

  -- what a pcall gives, with the method, model and key names made neutral
  local function shape(names, ...)
    local r = { n = select("#", ...), ... }
    for i = 1, r.n do
      if type(r[i]) == "string" then
        local v = r[i]:gsub("^[^:]*:%d+: ", "")
        for from, to in pairs(names) do v = v:gsub(from, to) end
        r[i] = v
      end
    end
    return r
  end
  local btm = { ["Post:%a+"] = "M", genre_id = "K", Genre = "T" }
  local hm = { ["Author:%a+"] = "M", book_id = "K", Book = "T" }

  it("read the same keys the same way and answer the same for every method", function()
    local other = assert(m.Post:create { text = "q" })
    local unsaved = m.Post:build { text = "r" }
    local inputs = {
      { 1, 1.0, "1" }, { "1.0" }, { 1, "1.0", " 1", "1e0" }, { "0x1" }, { "1.5" },
      { 1, 2, 1 }, { 1.5 }, { "x" }, { 99, 98, 1 }, { 2 ^ 63 }, { "01" }, { -0.0 },
      {}, { true }, { {} }, { 0 / 0 }, { math.huge }, { name = "a" }, { [2] = 2 }, { 1, x = 2 },
      "nil", 3, "3", { other }, { unsaved },
    }
    for i, input in ipairs(inputs) do
      for _, verb in ipairs { "set", "add", "has", "remove" } do
        -- the same state before each: Genre 1, 2 and Book 1, 2 linked
        assert(post:setGenres { 1, 2 }); assert(ann:setBooks { 1, 2 })
        local arg = input
        if input == "nil" then arg = nil end
        local a = shape(btm, pcall(post[verb .. "Genres"], post, arg))
        local b = shape(hm, pcall(ann[verb .. "Books"], ann, arg))
        assert.same(a, b, "input " .. i .. ", " .. verb)
        local linked_g = #post:getGenres()
        assert.equal(linked_g, ann:countBooks(), "input " .. i .. ", " .. verb .. ": the same rows linked after")
      end
    end
  end)

  it("a key spelled as decimal text is the number it spells, as SQLite's INTEGER column reads it", function()
    assert.is_true(post:setGenres { 1 })
    assert.is_true(ann:setBooks { 1 })
    assert.is_true(post:addGenres { "1.0" })           -- no second link to genre 1
    assert.is_true(post:addGenre " 1 ")
    assert.is_true(ann:setBooks { 1, "1.0", "1e0" })    -- one book, given three ways
    assert.same({ 1 }, H.ids(post:getGenres(), "genre_id"))
    assert.same({ 1 }, H.ids(ann:getBooks(), "book_id"))
    assert.is_true(post:hasGenres { "1.0", 1 })
    assert.is_true(ann:hasBooks { "1.0", 1 })
    -- hexadecimal is text to SQLite: no key
    local _, msg1, code1 = post:addGenre "0x2"
    local _, msg2, code2 = ann:addBook "0x2"
    assert.equal("Post:addGenre: genre_id '0x2' not found", msg1)
    assert.equal("Author:addBook: book_id '0x2' not found", msg2)
    assert.equal(787, code1); assert.equal(787, code2)
  end)

  it("a key that is no row: the same message, code and details, nothing written", function()
    assert(post:setGenres { 2 }); assert(ann:setBooks { 2 })
    for _, verb in ipairs { "set", "add" } do
      local ok1, msg1, code1, d1 = post[verb .. "Genres"](post, { 1, 99, "x", 98 })
      local ok2, msg2, code2, d2 = ann[verb .. "Books"](ann, { 1, 99, "x", 98 })
      assert.is_nil(ok1); assert.is_nil(ok2)
      assert.equal("Post:" .. verb .. "Genres: genre_id 99, 'x', 98 not found", msg1)
      assert.equal("Author:" .. verb .. "Books: book_id 99, 'x', 98 not found", msg2)
      assert.equal(787, code1); assert.equal(787, code2)
      assert.same({ missing = { 99, "x", 98 } }, d1)
      assert.same(d1, d2)
      assert.same({ 2 }, H.ids(ann:getBooks(), "book_id"))
    end
  end)

  it("a key its INTEGER key field cannot hold names no row, on every engine, and is never sent", function()
    local sent, counting = {}, false
    db:close()
    db = H.open { log = function(_, params)
      if counting then for _, v in pairs(params or {}) do sent[#sent + 1] = tostring(v) end end
    end }
    m = H.blog(db)
    H.genres(m.Genre)
    post = assert(m.Post:create { text = "p" })
    Author, Book = library(db)
    ann = assert(Author:create { name = "Ann" })
    for i = 1, 5 do assert(Book:create { title = "B" .. i }) end
    assert(post:setGenres { 2 }); assert(ann:setBooks { 2 })
    counting = true
    -- decimal text is the number it spells ("1.5" is 1.5), as SQLite's INTEGER column reads it
    for _, case in ipairs { { "x", "'x'" }, { 1.5, "1.5" }, { "1.5", "1.5", 1.5 }, { "0x2", "'0x2'" } } do
      local bad, shown, key = case[1], case[2], case[3] or case[1]
      -- not linked, so has is false and remove removes nothing
      assert.is_false(post:hasGenre(bad)); assert.is_false(ann:hasBook(bad))
      assert.is_false(post:hasGenres { 2, bad }); assert.is_false(ann:hasBooks { 2, bad })
      assert.is_true(post:removeGenre(bad)); assert.is_true(ann:removeBook(bad))
      -- add and set: not found, the same failure as a key that is no row
      for _, call in ipairs {
        { post, "addGenre", bad, "Post:addGenre: genre_id " .. shown .. " not found" },
        { ann, "addBook", bad, "Author:addBook: book_id " .. shown .. " not found" },
        { post, "setGenres", { 1, bad }, "Post:setGenres: genre_id " .. shown .. " not found" },
        { ann, "setBooks", { 1, bad }, "Author:setBooks: book_id " .. shown .. " not found" },
      } do
        local ok, msg, code, details = call[1][call[2]](call[1], call[3])
        assert.is_nil(ok)
        assert.equal(call[4], msg)
        assert.equal(787, code)
        assert.same({ missing = { key } }, details)
      end
    end
    for _, v in ipairs(sent) do
      for _, bad in ipairs { "x", "1.5", "0x2" } do
        assert.is_nil(v:find(bad, 1, true), "a key that names no row by its type is never sent: " .. v)
      end
    end
    counting = false
    assert.is_true(post:removeGenres { "x", 2 }); assert.is_true(ann:removeBooks { "x", 2 })
    assert.same({}, H.ids(post:getGenres(), "genre_id"))
    assert.same({}, H.ids(ann:getBooks(), "book_id"))
    -- inside a transaction (on PostgreSQL a failed statement would abort it) the work goes on
    assert(db:transaction(function()
      assert.is_nil(post:addGenre "x")
      assert.is_true(post:addGenre(3))
      assert.is_false(post:hasGenres { 3, "y" })
    end))
    assert.same({ 3 }, H.ids(post:getGenres(), "genre_id"))
  end)

  it("a key its UUID or REAL key field cannot hold is not found, and not linked", function()
    local Tag = db:define("Tag", { tableName = "tag", timestamps = false, fields = {
      tag_id = { type = T.UUID, primaryKey = true }, name = { type = T.TEXT } } })
    local Score = db:define("Score", { tableName = "score", timestamps = false, fields = {
      score = { type = T.REAL, primaryKey = true } } })
    db:define("PostTag", { tableName = "post_tag", timestamps = false, fields = {
      post_id = { type = T.INTEGER, references = { model = "post", key = "post_id" } },
      tag_id = { type = T.UUID, references = { model = "tag", key = "tag_id" } } } })
    db:define("PostScore", { tableName = "post_score", timestamps = false, fields = {
      post_id = { type = T.INTEGER, references = { model = "post", key = "post_id" } },
      score = { type = T.REAL, references = { model = "score", key = "score" } } } })
    assert(db:associate { Post = {
      { belongsToMany = "Tag", through = "PostTag", foreignKey = "post_id", otherKey = "tag_id", as = "Tags" },
      { belongsToMany = "Score", through = "PostScore", foreignKey = "post_id", otherKey = "score", as = "Scores" },
    } })
    assert(db:sync())
    local id = "0d4a8b36-1c1e-4e57-9d35-7a3cc1c1e001"
    assert(Tag:create { tag_id = id, name = "t" })
    assert(Score:create { score = 2.5 })
    assert.is_true(post:addTag(id)); assert.is_true(post:addScore(2.5))
    local ok, msg, code = post:addTags { id, "not-a-uuid" }
    assert.is_nil(ok)
    assert.equal("Post:addTags: tag_id 'not-a-uuid' not found", msg)
    assert.equal(787, code)
    ok, msg = post:setScores { 2.5, "high" }
    assert.is_nil(ok)
    assert.equal("Post:setScores: score 'high' not found", msg)
    assert.is_false(post:hasTags { id, "not-a-uuid" })
    assert.is_false(post:hasScore "high")
    assert.is_true(post:removeTag "not-a-uuid")
    assert.is_true(post:hasTag(id)); assert.is_true(post:hasScore(2.5))
  end)
end)

describe("hasMany writes", function()
  local db, Author, Book, ann, bob
  local log
  local function open(opts)
    log = {}
    db = H.open { log = function(sql) log[#log + 1] = sql end }
    Author, Book = library(db, opts)
    ann = assert(Author:create { name = "Ann" })
    bob = assert(Author:create { name = "Bob" })
    for i = 1, 100 do assert(Book:create { title = "B" .. i, author_id = (opts or {}).fk_notnull and 2 or nil }) end
  end
  after_each(function() db:close() end)

  -- the statements fn runs, by their first word
  local function counted(fn)
    log = {}
    local r = { fn() }
    local n = {}
    for _, sql in ipairs(log) do
      local w = sql:match("^%a+")
      n[w] = (n[w] or 0) + 1
    end
    return n, r
  end

  it("run one statement per write, two for set", function()
    open()
    local n = counted(function() return ann:setBooks { 1, 2, 3 } end)
    -- PostgreSQL first locks the author's row (SELECT ... FOR NO KEY UPDATE)
    assert.same(H.is_pg and { SELECT = 1, UPDATE = 2 } or { UPDATE = 2 }, n)
    n = counted(function() return ann:addBook(4) end)
    assert.same({ UPDATE = 1 }, n)
    n = counted(function() return ann:addBooks { 5, 6, Book:build { book_id = 7 } } end)
    assert.same({ UPDATE = 1 }, n)
    n = counted(function() return ann:removeBooks { 5, 6 } end)
    assert.same({ UPDATE = 1 }, n)
    n = counted(function() return ann:removeBook(7) end)
    assert.same({ UPDATE = 1 }, n)
    local r
    n, r = counted(function() return ann:hasBooks { 1, 2, 3, 4 } end)
    assert.same({ SELECT = 1 }, n)
    assert.is_true(r[1])
    n, r = counted(function() return ann:countBooks() end)
    assert.same({ SELECT = 1 }, n)
    assert.equal(4, r[1])
    n, r = counted(function() return ann:countBooks { where = { title = { like = "B%" } } } end)
    assert.same({ SELECT = 1 }, n)
    assert.equal(4, r[1])
    -- a long list: one statement per 32 keys
    n = counted(function() return ann:addBooks(range(1, 100)) end)
    assert.same({ UPDATE = 4 }, n)
    n = counted(function() return ann:removeBooks(range(1, 100)) end)
    assert.same({ UPDATE = 4 }, n)
    n, r = counted(function() return ann:hasBooks(range(1, 100)) end)
    assert.same({ SELECT = 4 }, n)
    assert.is_false(r[1])
  end)

  it("set makes the set exactly the list, for short and long lists", function()
    open()
    for _, want in ipairs { { 1, 2, 3 }, range(2, 60), range(40, 100), { 100 }, {}, range(1, 33), range(1, 32) } do
      assert.is_true(ann:setBooks(want))
      assert.same(want, H.ids(ann:getBooks { order = "book_id" }, "book_id"))
      assert.equal(#want, ann:countBooks())
      assert.is_true(ann:hasBooks(want))
    end
    assert.is_true(bob:setBooks { 50 })
    assert.same(range(1, 32), H.ids(ann:getBooks { order = "book_id" }, "book_id"), "another's set leaves them")
  end)

  it("set never unlinks a row it keeps, so a NOT NULL foreign key stays valid", function()
    open { fk_notnull = true }
    assert.is_true(bob:setBooks(range(1, 100)))          -- every book is Bob's already
    assert.is_true(bob:setBooks(range(1, 100)))
    assert.is_true(ann:addBooks { 1, 2 })
    local ok, _, code = bob:setBooks(range(3, 10))        -- would unlink 11..100: NULL refused
    assert.is_nil(ok)
    assert.equal(1299, code)                               -- SQLITE_CONSTRAINT_NOTNULL
    assert.equal(98, bob:countBooks(), "nothing written")
  end)

  it("a failing key in the middle of set leaves every row as it was", function()
    open()
    assert(ann:setBooks { 1, 2 })
    assert(bob:setBooks { 3 })
    local before = owners(db)
    for _, list in ipairs { { 3, 999, 4 }, range(3, 101), { 1, 2, 3, 0 } } do
      local ok, msg, code, details = ann:setBooks(list)
      assert.is_nil(ok)
      H.mentions(msg, "Author:setBooks: book_id ", " not found")
      assert.equal(787, code)
      assert.is_table(details.missing)
      assert.same(before, owners(db))
    end
    -- inside a transaction: only the failed set is undone
    assert.is_true(db:transaction(function()
      assert(ann:addBook(5))
      assert.is_nil((ann:setBooks { 6, 999 }))
      assert.is_true(ann:hasBook(5))
    end))
    assert.same({ 1, 2, 5 }, H.ids(ann:getBooks { order = "book_id" }, "book_id"))
  end)

  for _, case in ipairs {
    { "setBooks", function(a) return a:setBooks(range(1, 60)) end },
    { "addBooks", function(a) return a:addBooks(range(1, 60)) end },
    { "removeBooks", function(a) return a:removeBooks(range(1, 60)) end },
  } do
    for _, intx in ipairs { false, true } do
      it(case[1] .. " refused by a trigger at the 20th row leaves every row as it was"
         .. (intx and " (inside a transaction)" or ""), function()
        open()
        assert(ann:setBooks(range(1, 30)))
        assert(bob:setBooks(range(31, 45)))
        local before = owners(db)
        H.refuse_nth(db, "book", "UPDATE", 20)
        local ok, msg
        if intx then
          assert.is_true(db:transaction(function() ok, msg = case[2](ann) end))
        else
          ok, msg = case[2](ann)
        end
        assert.is_nil(ok)
        H.mentions(msg, "refused")
        assert.same(before, owners(db))
      end)
    end
  end

  it("keep the target's updatedAt current, as Model:update does", function()
    open { timestamps = true }
    assert(db:exec("UPDATE book SET \"updatedAt\" = '2000-01-01 00:00:00'"))
    assert(ann:addBook(1))
    assert(ann:removeBook(2))
    local r = db:query('SELECT book_id, "updatedAt" FROM book WHERE book_id <= 3 ORDER BY book_id')
    assert.not_equal("2000-01-01 00:00:00", r[1].updatedAt)
    assert.equal("2000-01-01 00:00:00", r[2].updatedAt, "book 2 was not ann's: untouched")
    assert.equal("2000-01-01 00:00:00", r[3].updatedAt)
  end)

  it("countBooks raises on an unknown option, as countGenres does", function()
    open()
    H.mentions(H.raises(function() return ann:countBooks { limt = 1 } end),
               "Author:countBooks: bad option 'limt' (unknown key)")
    H.mentions(H.raises(function() return ann:countBooks(5) end),
               "Author:countBooks: bad options (table expected, got number)")
  end)

  it("a target with validators keeps the Lua methods: its foreign key's validators run", function()
    local seen = {}
    local function custom(v)
      seen[#seen + 1] = v
      if v == 2 then return nil, "not Bob's" end
      return true
    end
    open { validate = { custom = custom } }
    assert.is_true(ann:setBooks { 1, 2 })
    assert.truthy(#seen > 0)
    local ok, msg = bob:addBook(3)
    assert.is_nil(ok)
    H.mentions(msg, "not Bob's")
  end)
end)

describe("hasOne set", function()
  it("links one, unlinks the one before, in one call; a key that is no row changes nothing", function()
    local log = {}
    local db = H.open { log = function(sql) log[#log + 1] = sql end }
    local Author, _, Profile = library(db)
    local ann = assert(Author:create { name = "Ann" })
    local p1 = assert(Profile:create {})
    local p2 = assert(Profile:create {})
    assert.is_true(ann:setProfile(p1))
    log = {}
    assert.is_true(ann:setProfile(p2.profile_id))
    assert.equal(H.is_pg and 3 or 2, #log)   -- PostgreSQL first locks the author's row
    assert.is_nil(Profile:findByPk(1).author_id)
    assert.equal(1, Profile:findByPk(2).author_id)
    local ok, msg, code, details = ann:setProfile(99)
    assert.is_nil(ok)
    assert.equal("Author:setProfile: profile_id 99 not found", msg)
    assert.equal(787, code)
    assert.same({ missing = { 99 } }, details)
    assert.equal(1, Profile:findByPk(2).author_id, "still linked")
    H.mentions(H.raises(function() return ann:setProfile { 1 } end),
               "Author:setProfile: bad argument #1 (Profile instance or key expected, got table)")
    assert.is_true(ann:setProfile(nil))
    assert.equal(0, Profile:count { where = { author_id = 1 } })
    db:close()
  end)
end)

-- removeBooks of up to a chunk of keys is one UPDATE, which keeps all its
-- rows or none by itself on SQLite: inside a transaction it runs without the
-- savepoint once junction has read its program (as belongsToMany's writes of
-- one statement: spec/assoc_spec.lua).  What SQLite ran is in sqlite_stmt.
describe("hasMany remove of several, inside a transaction", function()
  local db, Author, Book, ann
  before_each(function()
    db = H.open()
    Author, Book = library(db)
    ann = assert(Author:create { name = "Ann" })
    for i = 1, 6 do assert(Book:create { title = "B" .. i, author_id = ann.author_id }) end
    -- a book of nobody called B1: unlinking book 1 too makes two (0, 'B1') rows
    assert(Book:create { title = "B1" })
    assert(db:exec("CREATE UNIQUE INDEX book_nobody ON book (coalesce(author_id, 0), title)"))
  end)
  after_each(function() db:close() end)

  local function savepoints()
    local rows = db:query("SELECT run FROM sqlite_stmt WHERE sql = 'SAVEPOINT jn_w'")
    if not rows then return nil end
    return rows[1] and rows[1].run or 0
  end

  local function linked()
    local out = {}
    for _, b in ipairs(assert(Book:findAll { where = { author_id = ann.author_id }, order = "book_id" })) do
      out[#out + 1] = b.book_id
    end
    return out
  end

  H.sqlite_only(it, pending)("runs without a savepoint after its first use, and a failing one keeps "
    .. "none of its rows", function()
    if not savepoints() then return pending("no sqlite_stmt in this SQLite") end
    assert.is_true(db:transaction(function()
      assert.is_true(ann:removeBooks { 5, 6 })          -- its program read
      assert.is_true(ann:addBooks { 5, 6 })
      local before = savepoints()
      assert.is_true(ann:removeBooks { 5, 6 })
      assert.equal(before, savepoints())
      local kept = assert(Book:create { title = "kept" })
      -- book 2 goes first or second: either way the UPDATE fails on book 1
      local ok, msg = ann:removeBooks { 2, 1 }
      assert.is_nil(ok)
      H.mentions(msg, "UNIQUE")
      assert.equal(before, savepoints())
      assert.same({ 1, 2, 3, 4 }, linked())
      assert.equal("kept", Book:findByPk(kept.book_id).title)
    end))
    assert.same({ 1, 2, 3, 4 }, linked())
    assert.equal(1, Book:count { where = { title = "kept" } })
  end)
end)
