-- spec/attack_speed_spec.lua: the per-call cuts of issue 15 under attack.
-- An atomic write checks its transaction once and vouches for the rest of
-- its statements; a one-statement write inside a transaction may run
-- without its savepoint; key lists are read in one traversal; findByPk binds
-- an integer key as it is; Model methods check self by upvalue.  Each test
-- here tries to make one of those skip something it must not.
local H = require "spec.helper"
local T = H.T

local sqlite_it = H.sqlite_only(it, pending)

-- The link rows of the blog's junction table, as a sorted list of genre ids.
local function links(db, m)
  local rows = assert(db:query("SELECT genre_id FROM " .. m.TagPostGenre:_info().qtable
                               .. " ORDER BY genre_id"))
  local out = {}
  for i, r in ipairs(rows) do out[i] = tonumber(r.genre_id) end
  return out
end

-- Coroutine Lc opens a transaction inside coroutine D's transaction and
-- yields; D yields too, still inside its own.  Returns Lc, suspended in its
-- transaction's function, and a function that drops D (its only reference),
-- so that the collector can end D's transaction under Lc's.
local function nested_under_dropped(db, body)
  local lc = coroutine.create(function()
    return db:transaction(function()
      coroutine.yield()
      return body()
    end)
  end)
  local d = coroutine.create(function()
    return db:transaction(function()
      assert(coroutine.resume(lc))
      coroutine.yield()
    end)
  end)
  assert(coroutine.resume(d))
  assert.equal("suspended", coroutine.status(d))
  return lc, function() d = nil end   -- luacheck: ignore 311
end

describe("a transaction opened inside one whose coroutine is dropped", function()
  local db, m, hook
  before_each(function()
    hook = nil
    db = H.open()
    m = H.blog(db, { note = { type = T.STRING(20), defaultValue = function()
      local h = hook
      hook = nil
      if h then h() end
      return "n"
    end } })
  end)
  after_each(function() db:close() end)

  it("refuses the inner one's later writes: none of them is committed on its own", function()
    local results = {}
    local lc, drop = nested_under_dropped(db, function()
      results[1] = { m.Post:create { text = "a" } }
      results[2] = { m.Post:create { text = "b" } }
      error("undo")
    end)
    drop()
    collectgarbage()
    collectgarbage()
    local ok, err = coroutine.resume(lc)
    assert.is_false(ok)
    H.mentions(err, "undo")
    for _, r in ipairs(results) do
      assert.is_nil(r[1])
      H.mentions(r[2], "already rolled back")
    end
    assert.equal(0, m.Post:count())
  end)

  it("keeps nothing of an atomic write the collection ran in the middle of", function()
    local g = H.genres(m.Genre)
    local p = assert(m.Post:create { text = "p" })
    assert.is_true(p:setGenres { g[4], g[5] })
    local ran, after, drop = false, nil, nil
    local lc
    lc, drop = nested_under_dropped(db, function()
      hook = function()          -- a defaultValue function, between the write's statements
        ran = true
        drop()
        collectgarbage()
        collectgarbage()
      end
      local ok = p:setGenres { g[1], g[2], g[3] }
      after = { m.Post:create { text = "after" } }
      return ok
    end)
    local ok = coroutine.resume(lc)
    assert.is_true(ok)
    assert.is_true(ran)
    assert.is_nil(after[1])
    H.mentions(after[2], "already rolled back")
    assert.same({ 4, 5 }, links(db, m))
    assert.equal(1, m.Post:count())
  end)

  it("refuses a write's next statement when a defaultValue function ends the transaction around it", function()
    local g = H.genres(m.Genre)
    local p = assert(m.Post:create { text = "p" })
    assert.is_true(p:setGenres { g[4], g[5] })
    local d, res, after
    local lc = coroutine.create(function()
      return db:transaction(function()
        coroutine.yield()
        hook = function() assert(coroutine.resume(d)) end   -- d's transaction commits, lc's is rolled back
        res = { p:setGenres { g[1], g[2], g[3] } }
        after = { m.Post:create { text = "after" } }
        return true
      end)
    end)
    d = coroutine.create(function()
      return db:transaction(function()
        assert(m.Post:create { text = "d's" })
        assert(coroutine.resume(lc))
        coroutine.yield()
        return true
      end)
    end)
    assert(coroutine.resume(d))
    local ok, r1, msg = coroutine.resume(lc)
    assert.is_true(ok)
    assert.is_nil(r1)
    H.mentions(msg, "rolled back")
    assert.equal("dead", coroutine.status(d))
    assert.is_nil(res[1])
    H.mentions(res[2], "already rolled back")
    assert.is_nil(after[1])
    assert.same({ 4, 5 }, links(db, m))
    assert.equal(2, m.Post:count())                    -- p and d's
  end)

  it("refuses a write's next statement when a defaultValue function leaves a transaction suspended", function()
    local g = H.genres(m.Genre)
    local p = assert(m.Post:create { text = "p" })
    assert.is_true(p:setGenres { g[4], g[5] })
    local co
    local res = { db:transaction(function()
      hook = function()
        co = coroutine.create(function()
          db:transaction(function() coroutine.yield() end)
        end)
        assert(coroutine.resume(co))
      end
      return p:setGenres { g[1], g[2], g[3] }
    end) }
    assert.is_nil(res[1])
    H.mentions(res[2], "yielded")
    assert.same({ 4, 5 }, links(db, m))
    co = nil   -- luacheck: ignore 311
    collectgarbage()
    assert.is_true(p:setGenres { g[1] })
    assert.same({ 1 }, links(db, m))
  end)

  it("finishes a write whose defaultValue function tries to close the connection", function()
    local g = H.genres(m.Genre)
    local p = assert(m.Post:create { text = "p" })
    local err
    hook = function() err = select(2, pcall(db.close, db)) end
    assert.is_true(db:transaction(function()
      return p:setGenres { g[1], g[2], g[3] }
    end))
    H.mentions(err, "in use")
    assert.same({ 1, 2, 3 }, links(db, m))
  end)
end)

-- A one-statement link write inside a transaction runs without its savepoint
-- once junction has read that its program keeps all its rows or none.  A
-- table that declares ON CONFLICT FAIL makes a statement keep the rows it
-- wrote before the failing one: that program is not whole, and the write
-- keeps its savepoint.
describe("a one-statement link write on a table declaring ON CONFLICT FAIL", function()
  sqlite_it("keeps none of its rows when its second row fails, and the transaction's earlier writes", function()
    local db = H.open()
    local m = H.blog(db)
    -- a genre may be linked once, and a second link fails with FAIL
    assert(db:exec([[DROP TABLE "tag_post_genre"; CREATE TABLE "tag_post_genre" (
      "tag_post_genre_id" INTEGER PRIMARY KEY AUTOINCREMENT,
      "genre_id" INTEGER UNIQUE ON CONFLICT FAIL REFERENCES "genre" ("genre_id"),
      "post_id" INTEGER REFERENCES "post" ("post_id"),
      "created_at" TEXT NOT NULL,
      "updated_at" TEXT NOT NULL,
      UNIQUE ("genre_id", "post_id"))]]))
    local g = H.genres(m.Genre)
    local p = assert(m.Post:create { text = "p" })
    local q = assert(m.Post:create { text = "q" })
    assert.is_true(db:transaction(function()
      assert.is_true(p:addGenres { g[1], g[2] })     -- its program read
      assert.is_true(p:removeGenres { g[1], g[2] })
      assert.is_true(p:addGenres { g[1], g[2] })
      local kept = assert(m.Post:create { text = "kept" })
      local ok, msg = q:addGenres { g[3], g[1] }     -- g[3]'s row first, then g[1]'s fails
      assert.is_nil(ok)
      H.mentions(msg, "UNIQUE")
      assert.same({ 1, 2 }, links(db, m))
      assert.equal("kept", m.Post:findByPk(kept.post_id).text)
      return true
    end))
    assert.same({ 1, 2 }, links(db, m))
    assert.equal(3, m.Post:count())
    db:close()
  end)

  sqlite_it("sees a TEMP trigger made by db:exec inside the same transaction", function()
    local db = H.open()
    local m = H.blog(db)
    local g = H.genres(m.Genre)
    local p = assert(m.Post:create { text = "p" })
    assert.is_true(p:setGenres { g[1], g[2], g[3], g[4], g[5] })
    assert.is_true(db:transaction(function()
      assert.is_true(p:removeGenres { g[4], g[5] })   -- its program read: whole
      assert.is_true(p:addGenres { g[4], g[5] })
      H.refuse_nth(db, "tag_post_genre", "DELETE", 3)
      local ok, msg = p:removeGenres { g[1], g[2], g[3], g[4] }
      assert.is_nil(ok)
      H.mentions(msg, "refused")
      assert.same({ 1, 2, 3, 4, 5 }, links(db, m))
      return true
    end))
    assert.same({ 1, 2, 3, 4, 5 }, links(db, m))
    db:close()
  end)
end)

-- A key list is read in one traversal with rawget: a metatable on the list
-- never runs, and what it would answer is not part of the list.
describe("a key list with a metatable", function()
  local db, m, g, p
  before_each(function()
    db = H.open()
    m = H.blog(db)
    g = H.genres(m.Genre)
    p = assert(m.Post:create { text = "p" })
    assert.is_true(p:setGenres { g[4] })
  end)
  after_each(function() db:close() end)

  local function raising()
    return { __index = function() error("__index ran") end, __len = function() error("__len ran") end,
             __pairs = function() error("__pairs ran") end, __ipairs = function() error("__ipairs ran") end }
  end

  for _, meth in ipairs { "setGenres", "addGenres", "removeGenres", "hasGenres" } do
    it(meth .. " reads the raw elements only", function()
      local list = setmetatable({ g[1], 2 }, raising())
      local before = links(db, m)
      local ok = p[meth](p, list)
      if meth == "setGenres" then assert.same({ 1, 2 }, links(db, m))
      elseif meth == "addGenres" then assert.same({ 1, 2, 4 }, links(db, m))
      elseif meth == "removeGenres" then assert.same(before, links(db, m))
      else assert.is_false(ok) end
    end)
  end

  it("an empty list whose __index answers is empty", function()
    local list = setmetatable({}, { __index = function(_, i) return g[i] end,
                                    __len = function() return 3 end })
    assert.is_true(p:addGenres(list))
    assert.same({ 4 }, links(db, m))
    assert.is_true(p:hasGenres(list))
  end)

  it("refuses a hole, a zero key and a string key before writing anything", function()
    for _, list in ipairs { { g[1], nil, g[3] }, { [0] = g[1], g[2] }, { g[1], x = g[2] } } do
      H.mentions(H.raises(function() return p:setGenres(list) end), "setGenres", "list")
      assert.same({ 4 }, links(db, m))
    end
  end)
end)

-- findByPk binds an integer key as it is: whatever the value, it finds what
-- a where on the key finds.
describe("findByPk with keys at the edges", function()
  it("finds what a where finds for each key", function()
    local db = H.open()
    local m = H.blog(db)
    assert(m.Post:create { text = "one" })
    assert(m.Post:create { text = "two" })
    local keys = { 1, 2, -0.0, 0, 1.0, 2.0, 1.5, "1", "2", " 1", "1.0", "0x1", "abc", 2^53, -2^53,
                   2^63, -2^63, 1e308, -1e308 }
    if H.has_int then keys[#keys + 1] = math.maxinteger; keys[#keys + 1] = math.mininteger end
    for _, k in ipairs(keys) do
      local a = m.Post:findByPk(k)
      local ok, rows = pcall(m.Post.findAll, m.Post, { where = { post_id = k } })
      if ok and rows then
        assert.equal(rows[1] and rows[1].text, a and a.text, "key " .. tostring(k))
      else
        assert.is_nil(a, "key " .. tostring(k))
      end
    end
    for _, k in ipairs { 0/0, math.huge, -math.huge } do
      local ok, a = pcall(m.Post.findByPk, m.Post, k)
      assert.is_true(not ok or a == nil, "key " .. tostring(k))
    end
    db:close()
  end)
end)

-- getX{ order = <string> } keeps the SQL it built per order string.  An
-- order taken from a request can be spelt in countless ways: what is kept
-- stays bounded, and every spelling still sorts right.
describe("getX with many spellings of one order", function()
  it("keeps a bounded amount, and sorts right past the bound", function()
    local db = H.open()
    local m = H.blog(db)
    local g = H.genres(m.Genre)
    local p = assert(m.Post:create { text = "p" })
    assert.is_true(p:setGenres { g[1], g[2], g[3] })
    local function spelt(i)
      return "name" .. (" "):rep(i % 100 + 1) .. (i % 2 == 0 and "DESC" or "desc")
          .. (" "):rep(math.floor(i / 100))
    end
    for i = 1, 200 do assert(p:getGenres { order = spelt(i) }) end
    collectgarbage()
    collectgarbage()
    local before = collectgarbage("count")
    for i = 201, 5200 do
      local list = assert(p:getGenres { order = spelt(i) })
      if i % 500 == 0 then assert.same({ "rock", "pop", "jazz" }, { list[1].name, list[2].name, list[3].name }) end
    end
    collectgarbage()
    collectgarbage()
    assert.is_true(collectgarbage("count") - before < 512, "kept " .. (collectgarbage("count") - before) .. " KB")
    db:close()
  end)
end)

-- On Lua 5.4 a row read with an include has one user value per association
-- its model had then.  An association declared later has no slot on it.
describe("an association declared after rows were read with an include", function()
  it("leaves those rows' includes as they were, and a new read carries both", function()
    local db = H.open()
    local m = H.blog(db)
    local g = H.genres(m.Genre)
    for i = 1, 2 do
      local p = assert(m.Post:create { text = "p" .. i })
      assert.is_true(p:setGenres { g[i], g[i + 1] })
    end
    local old = assert(m.Post:findAll { include = { "Genres" }, order = "post_id" })
    db:define("Note", { fields = { id = { type = T.INTEGER, primaryKey = true, autoIncrement = true },
                                   body = { type = T.TEXT } } })
    assert.is_true(db:associate { Post = { { hasMany = "Note", as = "Notes" } } })
    assert(db:sync())
    assert.is_nil(old[1].Notes)
    assert.same({ 1, 2 }, H.ids(old[1].Genres, "genre_id"))
    assert.same({ 2, 3 }, H.ids(old[2].Genres, "genre_id"))
    local new = assert(m.Post:findAll { include = { "Genres", "Notes" }, order = "post_id" })
    assert.same({ 1, 2 }, H.ids(new[1].Genres, "genre_id"))
    assert.same({}, H.ids(new[1].Notes, "id"))
    assert.is_true(old[1]:reload() ~= nil)
    assert.same({ 1, 2 }, H.ids(old[1].Genres, "genre_id"))
    local t = old[2]:toTable()
    assert.same({ 2, 3 }, H.ids(t.Genres, "genre_id"))
    assert.is_truthy(old[2]:toJSON():find('"Genres":[', 1, true))
    db:close()
  end)
end)

-- hasMany's removeBooks of several keys is one UPDATE, run without its
-- savepoint inside a transaction once its program is read whole.  A table
-- whose UNIQUE constraint says ON CONFLICT FAIL keeps the rows an UPDATE
-- changed before the failing one: that program keeps its savepoint.
describe("hasMany remove on a table declaring ON CONFLICT FAIL", function()
  sqlite_it("keeps none of its rows when its second row fails", function()
    local db = H.open()
    local Author = db:define("Author", { tableName = "author", timestamps = false, fields = {
      author_id = { type = T.INTEGER, primaryKey = true, autoIncrement = true }, name = { type = T.TEXT } } })
    local Book = db:define("Book", { tableName = "book", timestamps = false, fields = {
      book_id = { type = T.INTEGER, primaryKey = true, autoIncrement = true }, title = { type = T.TEXT },
      author_id = { type = T.INTEGER, references = { model = "author", key = "author_id" } } } })
    assert(db:associate { Author = { { hasMany = "Book", as = "Books", foreignKey = "author_id" } } })
    assert(db:sync())
    -- a title is unique among the books of nobody, and a second one fails with FAIL
    local ok, err = db:exec("DROP TABLE book; CREATE TABLE book (book_id INTEGER PRIMARY KEY AUTOINCREMENT, "
      .. "title TEXT, author_id INTEGER REFERENCES author (author_id), nobodys TEXT GENERATED ALWAYS AS "
      .. "(CASE WHEN author_id IS NULL THEN title END) VIRTUAL, UNIQUE (nobodys) ON CONFLICT FAIL)")
    if not ok then db:close(); return pending("no generated columns in this SQLite: " .. tostring(err)) end
    local ann = assert(Author:create { name = "Ann" })
    for i = 1, 6 do assert(Book:create { title = "B" .. i, author_id = ann.author_id }) end
    assert(Book:create { title = "B2" })                -- nobody's: unlinking book 2 fails
    local function linked()
      return H.ids(assert(Book:findAll { where = { author_id = ann.author_id } }), "book_id")
    end
    assert.is_true(db:transaction(function()
      assert.is_true(ann:removeBooks { 5, 6 })          -- its program read
      assert.is_true(ann:addBooks { 5, 6 })
      local kept = assert(Book:create { title = "kept" })
      local ok2, msg = ann:removeBooks { 1, 2 }          -- book 1's row first, then book 2's fails
      assert.is_nil(ok2)
      H.mentions(msg, "UNIQUE")
      assert.same({ 1, 2, 3, 4, 5, 6 }, linked())
      assert.equal("kept", Book:findByPk(kept.book_id).title)
      return true
    end))
    assert.same({ 1, 2, 3, 4, 5, 6 }, linked())
    db:close()
  end)
end)

-- A method keeps its atomic body as an upvalue (no closure per call), and
-- debug.getupvalue reaches it: called by hand, with anything but the write
-- jn_conn_atomic passes, it must raise, never read a write that is not one.
describe("a method's kept body called outside its method", function()
  local db, m
  before_each(function()
    db = H.open()
    m = H.blog(db)
    db:define("Book", { tableName = "book", timestamps = false, fields = {
      book_id = { type = T.INTEGER, primaryKey = true, autoIncrement = true },
      post_id = { type = T.INTEGER } } })
    assert(db:associate { Post = { { hasMany = "Book", as = "Books", foreignKey = "post_id" } } })
    assert(db:sync())
  end)
  after_each(function() db:close() end)

  -- The C functions among the upvalues of f and of the functions among
  -- them, two levels down (on Lua 5.1 a method may be a Lua function over the
  -- C one): its kept body, and any other.
  local function c_upvalues(f, out, seen, depth)
    out, seen, depth = out or {}, seen or {}, depth or 0
    local i = 1
    while depth < 3 do
      local name, v = debug.getupvalue(f, i)
      if name == nil then break end
      if type(v) == "function" and not seen[v] then
        seen[v] = true
        if debug.getinfo(v, "S").what == "C" then out[#out + 1] = v end
        c_upvalues(v, out, seen, depth + 1)
      end
      i = i + 1
    end
    return out
  end

  it("raises for every write method's body, given a table, nil or a number for the write", function()
    local post = assert(m.Post:create { text = "p" })
    local g = assert(m.Genre:create { name = "g" })
    local seen = 0   -- calls refused by a kept body's own check
    for _, name in ipairs { "setGenres", "addGenres", "addGenre", "removeGenres", "removeGenre",
                            "hasGenres", "hasGenre", "createGenre", "setBooks", "addBooks",
                            "removeBooks" } do   -- (hasBooks' body writes nothing: a read)
      for _, body in ipairs(c_upvalues(post[name])) do
        for _, w in ipairs { {}, false, 42 } do
          local ok, err = pcall(body, w, post, {}, 5, 5, true, nil)
          assert.is_false(ok, name)
          if tostring(err):find("body called outside its method", 1, true) then
            seen = seen + 1
          end
        end
      end
    end
    -- setGenres, addGenres, addGenre, removeGenres, removeGenre, hasGenres,
    -- hasGenre, setBooks, addBooks, removeBooks keep a C body each
    -- (Lua 5.1's debug.getupvalue does not reach a C function's upvalues)
    if _VERSION ~= "Lua 5.1" or jit then
      assert.is_true(seen >= 3 * 10, "the kept bodies refuse a call by hand: " .. seen)
    end
    assert.is_true(post:setGenres { g })   -- the methods still work
    assert.is_true(post:hasGenre(g))
  end)
end)
