-- Validations and hooks (lua/junction/hooks.lua): declared in db:define,
-- run from Lua, inside the write they belong to.
local H = require "spec.helper"
local junction = H.junction
local T = H.T

local function count(db, tbl)
  return db:query('SELECT count(*) AS n FROM "' .. tbl .. '"')[1].n
end

-- Post (with the given field validators, model validators and hooks),
-- Genre, and the two linked through TagPostGenre.
local function models(opts)
  opts = opts or {}
  local db = H.open()
  local Post = db:define("Post", {
    fields = {
      title = { type = T.TEXT, validate = opts.title },
      views = { type = T.INTEGER, validate = opts.views },
    },
    validate = opts.validate,
    hooks = opts.post_hooks,
  })
  local Genre = db:define("Genre", {
    fields = { name = { type = T.TEXT, validate = opts.genre_name } },
    hooks = opts.genre_hooks,
  })
  db:associate { Post = { { belongsToMany = "Genre", through = "TagPostGenre", as = "Genres" } } }
  assert(db:sync())
  return db, Post, Genre
end

describe("validations", function()
  local cases = {
    -- validate table, a value refused (and its message), a value taken
    { { notEmpty = true }, "  ", "must not be empty", "a" },
    { { len = { 2, 4 } }, "a", "must be 2 to 4 characters long", "ab" },
    { { len = { 2, 4 } }, "abcde", "must be 2 to 4 characters long", "abcd" },
    { { len = { nil, 2 } }, "abc", "must be at most 2 characters long", "ab" },
    { { len = { 2 } }, "\195\169", "must be at least 2 characters long", "\195\169\195\169" },
    { { min = 3 }, "2", "must be at least 3", "3" },
    { { max = 3 }, "4", "must be at most 3", "3" },
    { { isIn = { "a", "b" } }, "c", 'must be one of "a", "b"', "b" },
    { { is = "^%u" }, "lower", 'does not match the pattern "^%u"', "Upper" },
    { { isEmail = true }, "no at sign", "is not an email address", "a.b@example.org" },
    { { isEmail = true }, "a@b", "is not an email address", "a+tag@mail.example.com" },
    { { custom = function(v) return v ~= "bad", "is bad" end }, "bad", "is bad", "good" },
    { { custom = function(v) return v ~= "bad" end }, "bad", "is not valid", "good" },
  }
  for _, c in ipairs(cases) do
    local spec, bad, msg, good = c[1], c[2], c[3], c[4]
    local k = next(spec)
    it("validator " .. k .. " refuses " .. string.format("%q", bad) .. " and takes " ..
       string.format("%q", good), function()
      local db, Post = models { title = spec }
      local p, m, code, details = Post:create { title = bad }
      assert.is_nil(p)
      assert.are.equal("Post.title: " .. msg, m)
      assert.are.equal(junction.VALIDATION, code)
      assert.are.same({ errors = { title = msg } }, details)
      assert.are.equal(0, count(db, "Post"))
      assert.truthy(Post:create { title = good })
      assert.are.equal(1, count(db, "Post"))
    end)
  end

  it("names the model and every failing field, and writes nothing", function()
    local db, Post = models {
      title = { notEmpty = true }, views = { min = 0 },
      validate = { positive = function(p) return (p.views or 0) < 100, "views too high" end },
    }
    local p, msg, code, details = Post:create { title = "", views = -1 }
    assert.is_nil(p)
    assert.are.equal("Post.title: must not be empty; Post.views: must be at least 0", msg)
    assert.are.equal(junction.VALIDATION, code)
    assert.are.same({ title = "must not be empty", views = "must be at least 0" }, details.errors)
    p, msg, code, details = Post:create { title = "x", views = 200 }
    assert.is_nil(p)
    assert.are.equal(junction.VALIDATION, code)
    assert.are.equal("Post.positive: views too high", msg)
    assert.are.same({ positive = "views too high" }, details.errors)
    assert.are.equal(0, count(db, "Post"))
  end)

  it("leaves a nil value to allowNull", function()
    local _, Post = models { title = { notEmpty = true, len = { 2, 3 } } }
    assert.truthy(Post:create { views = 1 })
  end)

  it("inst:validate() runs the validators without saving", function()
    local db, Post = models { title = { len = { 2, 10 } } }
    local p = Post:build { title = "x" }
    local ok, msg, code, details = p:validate()
    assert.is_nil(ok)
    assert.are.equal("Post.title: must be 2 to 10 characters long", msg)
    assert.are.equal(junction.VALIDATION, code)
    assert.are.same({ title = "must be 2 to 10 characters long" }, details.errors)
    p.title = "enough"
    assert.is_true(p:validate())
    assert.are.equal(0, count(db, "Post"))
    local Plain = db:define("Plain", { fields = { a = { type = T.TEXT } } })
    assert.is_true(Plain:build { a = "" }:validate())
  end)

  it("save and update of a saved instance check its changed fields and leave the row as it was", function()
    local db, Post = models { title = { notEmpty = true }, views = { max = 10 } }
    local p = assert(Post:create { title = "a", views = 1 })
    p.views = 11
    local ok, msg, code = p:save()
    assert.is_nil(ok)
    assert.are.equal("Post.views: must be at most 10", msg)
    assert.are.equal(junction.VALIDATION, code)
    ok, msg = p:update { title = "" }
    assert.is_nil(ok)
    assert.matches("Post.title: must not be empty", msg, 1, true)
    local row = db:query("SELECT title, views FROM \"Post\"")[1]
    assert.are.same({ title = "a", views = 1 }, { title = row.title, views = row.views })
    assert.truthy(p:update { title = "b", views = 2 })
    assert.are.equal("b", db:query("SELECT title FROM \"Post\"")[1].title)
  end)

  it("Model:update checks the values it is given", function()
    local db, Post = models { views = { max = 10 } }
    assert.truthy(Post:create { title = "a", views = 1 })
    local n, msg, code, details = Post:update({ views = 11 }, { where = { title = "a" } })
    assert.is_nil(n)
    assert.are.equal("Post.views: must be at most 10", msg)
    assert.are.equal(junction.VALIDATION, code)
    assert.are.same({ views = "must be at most 10" }, details.errors)
    assert.are.equal(1, db:query("SELECT views FROM \"Post\"")[1].views)
    assert.are.equal(1, Post:update({ views = 5 }, { where = { title = "a" } }))
  end)

  it("bulkCreate names the failing row and writes no row", function()
    local db, Post = models { title = { notEmpty = true } }
    local list, msg, code, details = Post:bulkCreate { { title = "a" }, { title = "b" }, { title = "" } }
    assert.is_nil(list)
    assert.are.equal("Post.title: must not be empty (row 3)", msg)
    assert.are.equal(junction.VALIDATION, code)
    assert.are.equal(3, details.index)
    assert.are.equal(0, count(db, "Post"))
    assert.are.equal(2, #assert(Post:bulkCreate { { title = "a" }, { title = "b" } }))
  end)

  it("findOrCreate validates what it would create", function()
    local db, Post = models { views = { min = 0 } }
    local p, msg, code = Post:findOrCreate { where = { title = "a" }, defaults = { views = -1 } }
    assert.is_nil(p)
    assert.are.equal("Post.views: must be at least 0", msg)
    assert.are.equal(junction.VALIDATION, code)
    assert.are.equal(0, count(db, "Post"))
    local created
    p, created = Post:findOrCreate { where = { title = "a" }, defaults = { views = 1 } }
    assert.are.equal(1, p.views)
    assert.is_true(created)
    local again
    again, created = Post:findOrCreate { where = { title = "a" } }
    assert.are.equal(p, again)
    assert.is_false(created)
  end)

  it("a validator that raises raises, and nothing is written", function()
    local db, Post = models { title = { custom = function() error("boom") end } }
    assert.has_error(function() Post:create { title = "a" } end)
    assert.are.equal(0, count(db, "Post"))
  end)

  it("a failing validation inside createGenre writes neither the genre nor the link", function()
    local db, Post, Genre = models { genre_name = { notEmpty = true } }
    local post = assert(Post:create { title = "p" })
    local g, msg, code = post:createGenre { name = "" }
    assert.is_nil(g)
    assert.are.equal("Genre.name: must not be empty", msg)
    assert.are.equal(junction.VALIDATION, code)
    assert.are.equal(0, count(db, "Genre"))
    assert.are.equal(0, count(db, "TagPostGenre"))
    g = assert(post:createGenre { name = "ok" })
    assert.are.equal("ok", g.name)
    assert.are.equal(1, #post:getGenres())
    assert.are.equal(1, #Genre:findAll())
  end)

  it("bad declarations raise at db:define", function()
    local db = H.open()
    assert.has_error(function()
      db:define("A", { fields = { t = { type = T.TEXT, validate = { lenn = { 1, 2 } } } } })
    end, "db:define: A.t: bad option 'validate.lenn' (unknown validator)")
    assert.has_error(function()
      db:define("A", { fields = { t = { type = T.TEXT, validate = { len = "2" } } } })
    end, "db:define: A.t: bad option 'validate.len' ({ min, max } of numbers expected)")
    assert.has_error(function()
      db:define("A", { fields = { t = { type = T.TEXT, validate = { is = "[" } } } })
    end, "db:define: A.t: bad option 'validate.is' (a Lua pattern expected)")
    assert.has_error(function()
      db:define("A", { fields = { t = { type = T.TEXT } }, validate = { x = 1 } })
    end, "db:define: A: bad option 'validate' (name = function expected, got x = number)")
    assert.has_error(function()
      db:define("A", { fields = { t = { type = T.TEXT } }, hooks = { beforeCreat = print } })
    end, "db:define: A: bad option 'hooks.beforeCreat' (unknown hook)")
    assert.has_error(function()
      db:define("A", { fields = { t = { type = T.TEXT } }, hooks = { beforeCreate = true } })
    end, "db:define: A: bad option 'hooks.beforeCreate' (function or list of functions expected, got boolean)")
  end)

  it("takes validate in fields given as { name, spec } pairs", function()
    local db = H.open()
    local A = db:define("A", { fields = { { "t", { type = T.TEXT, validate = { notEmpty = true } } } } })
    assert(db:sync())
    local a, msg = A:create { t = "" }
    assert.is_nil(a)
    assert.are.equal("A.t: must not be empty", msg)
  end)

  it("a model with validators raises the same misuse errors as one without", function()
    local db = H.open()
    local A = db:define("A", { fields = { t = { type = T.TEXT } } })
    local B = db:define("B", { fields = { t = { type = T.TEXT, validate = { notEmpty = true } } } })
    assert(db:sync())
    local function misuse(M, f)
      local ok, err = pcall(f, M, assert(M:create { t = "x" }))
      assert.is_false(ok)
      return (tostring(err):gsub(M.name, "M"))
    end
    -- not tail calls: the error's position is the caller's line
    for _, f in ipairs {
      function(_, x) return (x:update { nope = 1 }) end,
      function(_, x) return (x:update { [1] = 1 }) end,
      function(_, x) return (x:update { id = 99 }) end,
      function(_, x) return (x:update { t = {} }) end,
      function(_, x) return (x:update(5)) end,
      function(M) return (M:create { nope = 1 }) end,
      function(M) return (M:create(7)) end,
      function(M) return (M:bulkCreate { { nope = 1 } }) end,
      function(M) return (M:findOrCreate { where = {} }) end,
    } do
      assert.are.equal(misuse(A, f), misuse(B, f))
    end
  end)

  it("a misuse raised through the Lua methods names the caller's line", function()
    local db = H.open()
    local A = db:define("A", { fields = { t = { type = T.TEXT } } })
    local B = db:define("B", { fields = { t = { type = T.TEXT, validate = { notEmpty = true } } } })
    assert(db:sync())
    local function where(f)
      local ok, err = pcall(f)
      assert.is_false(ok)
      return (tostring(err):match("^([^:]+:%d+): "))
    end
    local here = debug.getinfo(1, "S").short_src .. ":"
    for _, M in ipairs { A, B } do
      local x = assert(M:create { t = "x" })
      local line = debug.getinfo(1, "l").currentline
      assert.are.equal(here .. (line + 1), where(function() local r = M:create(7); return r end))
      assert.are.equal(here .. (line + 2), where(function() local r = M:bulkCreate(7); return r end))
      assert.are.equal(here .. (line + 3), where(function() local r = M:update(7); return r end))
      assert.are.equal(here .. (line + 4), where(function() local r = M:findOrCreate(7); return r end))
      assert.are.equal(here .. (line + 5), where(function() local r = M:build(7); return r end))
      assert.are.equal(here .. (line + 6), where(function() local r = x:update(7); return r end))
      assert.are.equal(here .. (line + 7), where(function() local r = db:define("C", 7); return r end))
      assert.are.equal(here .. (line + 8), where(function() local r = x:update { nope = 1 }; return r end))
    end
  end)

  it("a model without validators or hooks keeps the C methods", function()
    local db = H.open()
    local Plain = db:define("Plain", { fields = { a = { type = T.TEXT } } })
    assert(db:sync())
    local p = assert(Plain:create { a = "x" })
    for _, name in ipairs { "save", "update", "destroy" } do
      assert.are.equal("C", debug.getinfo(p[name], "S").what, name)
    end
    local _, Post = models { title = { notEmpty = true } }
    local q = assert(Post:create { title = "x" })
    assert.are.equal("Lua", debug.getinfo(q.save, "S").what)
  end)
end)

describe("hooks", function()
  it("run in order around create, update and destroy", function()
    local calls = {}
    local hooks = {}
    for _, name in ipairs { "beforeValidate", "afterValidate", "beforeCreate", "afterCreate",
                            "beforeUpdate", "afterUpdate", "beforeSave", "afterSave",
                            "beforeDestroy", "afterDestroy" } do
      hooks[name] = function(inst) calls[#calls + 1] = name .. ":" .. tostring(inst.title) end
    end
    local _, Post = models { post_hooks = hooks }
    local p = assert(Post:create { title = "a" })
    assert.are.same({ "beforeValidate:a", "afterValidate:a", "beforeCreate:a", "beforeSave:a",
                      "afterCreate:a", "afterSave:a" }, calls)
    calls = {}
    assert(p:update { title = "b" })
    assert.are.same({ "beforeValidate:b", "afterValidate:b", "beforeUpdate:b", "beforeSave:b",
                      "afterUpdate:b", "afterSave:b" }, calls)
    calls = {}
    assert.is_true(p:destroy())
    assert.are.same({ "beforeDestroy:b", "afterDestroy:b" }, calls)
  end)

  it("a before hook may change the instance that is written", function()
    local db, Post = models { post_hooks = { beforeSave = function(p) p.views = (p.views or 0) + 1 end } }
    local p = assert(Post:create { title = "a" })
    assert.are.equal(1, p.views)
    assert.are.equal(1, db:query("SELECT views FROM \"Post\"")[1].views)
  end)

  it("an after hook that returns nil, err rolls the write back", function()
    local db, Post = models { post_hooks = {
      afterCreate = function(p) if p.title == "no" then return nil, "refused", 77 end end,
      afterUpdate = function(p) if p.title == "no" then return nil, "refused" end end,
      afterDestroy = function() return nil, "keep it" end,
    } }
    local p, msg, code = Post:create { title = "no" }
    assert.is_nil(p)
    assert.are.equal("refused", msg)
    assert.are.equal(77, code)
    assert.are.equal(0, count(db, "Post"))
    p = assert(Post:create { title = "yes" })
    local ok
    ok, msg, code = p:update { title = "no" }
    assert.is_nil(ok)
    assert.are.equal("refused", msg)
    assert.are.equal(junction.VALIDATION, code)
    assert.are.equal("yes", db:query("SELECT title FROM \"Post\"")[1].title)
    ok, msg = p:destroy()
    assert.is_nil(ok)
    assert.are.equal("keep it", msg)
    assert.are.equal(1, count(db, "Post"))
  end)

  it("a hook that raises rolls the write back and the error goes on", function()
    local db, Post = models { post_hooks = { afterSave = function() error("hook failed", 0) end } }
    assert.has_error(function() Post:create { title = "a" } end, "hook failed")
    assert.are.equal(0, count(db, "Post"))
    assert.is_true(db:transaction(function() end))   -- no transaction left open
  end)

  it("beforeBulkCreate and afterBulkCreate run around bulkCreate, which they can undo", function()
    local seen = {}
    local db, Post = models { post_hooks = {
      beforeBulkCreate = function(list) seen.before = #list end,
      afterBulkCreate = function(list)
        seen.after = #list
        if list[1].title == "stop" then return nil, "stopped" end
      end,
    } }
    assert.are.equal(2, #assert(Post:bulkCreate { { title = "a" }, { title = "b" } }))
    assert.are.same({ before = 2, after = 2 }, seen)
    local list, msg = Post:bulkCreate { { title = "stop" } }
    assert.is_nil(list)
    assert.are.equal("stopped", msg)
    assert.are.equal(2, count(db, "Post"))
  end)

  it("createGenre runs the target's create hooks, and a failing one writes nothing", function()
    local calls = {}
    local db, Post = models { genre_hooks = {
      beforeCreate = function(g) calls[#calls + 1] = "before:" .. g.name end,
      afterCreate = function(g)
        calls[#calls + 1] = "after:" .. g.name
        if g.name == "bad" then return nil, "no bad genres" end
      end,
    } }
    local post = assert(Post:create { title = "p" })
    assert.truthy(post:createGenre { name = "good" })
    local g, msg = post:createGenre { name = "bad" }
    assert.is_nil(g)
    assert.are.equal("no bad genres", msg)
    assert.are.same({ "before:good", "after:good", "before:bad", "after:bad" }, calls)
    assert.are.equal(1, count(db, "Genre"))
    assert.are.equal(1, count(db, "TagPostGenre"))
  end)

  it("setGenres writes links without the junction model's hooks", function()
    local db = H.open()
    local ran = false
    local Post = db:define("Post", { fields = { title = { type = T.TEXT } } })
    local Genre = db:define("Genre", { fields = { name = { type = T.TEXT } } })
    db:define("TagPostGenre", {
      fields = {
        post_id = { type = T.INTEGER, references = { model = "Post", key = "id" } },
        genre_id = { type = T.INTEGER, references = { model = "Genre", key = "id" } },
      },
      hooks = { beforeCreate = function() ran = true end },
    })
    db:associate { Post = { { belongsToMany = "Genre", through = "TagPostGenre", as = "Genres" } } }
    assert(db:sync())
    local post = assert(Post:create { title = "p" })
    local g = assert(Genre:create { name = "g" })
    assert.is_true(post:setGenres { g })
    assert.is_false(ran)
    assert.are.equal(1, count(db, "TagPostGenre"))
  end)

  it("hooks may yield inside a hasMany create", function()
    local db = H.open()
    local Author = db:define("Author", { fields = { name = { type = T.TEXT } } })
    db:define("Book", {
      fields = { title = { type = T.TEXT }, author_id = { type = T.INTEGER } },
      hooks = { beforeCreate = function(b) b.title = coroutine.yield("title?") end },
    })
    db:associate { Author = { { hasMany = "Book" } } }
    assert(db:sync())
    local a = assert(Author:create { name = "a" })
    local co = coroutine.create(function() return a:createBook { title = "x" } end)
    local ok, v = coroutine.resume(co)
    assert.is_true(ok, v)
    assert.are.equal("title?", v)
    ok, v = coroutine.resume(co, "given")
    assert.is_true(ok, v)
    assert.are.equal("given", v.title)
    assert.are.equal(1, v.author_id)
    assert.are.equal("given", db:query("SELECT title FROM \"Book\"")[1].title)
    assert.has_error(function() a:createBook { nope = 1 } end)
    local okm, err = pcall(function() local r = a:createBook { nope = 1 }; return r end)
    assert.is_false(okm)
    assert.matches("Author:createBook: ", err, 1, true)
  end)

  it("hooks may yield inside a coroutine", function()
    local db, Post = models { post_hooks = {
      beforeCreate = function(p) p.views = coroutine.yield("paused") end,
      afterDestroy = function() coroutine.yield("destroyed") end,
    } }
    local co = coroutine.create(function()
      local p = assert(Post:create { title = "a" })
      assert.is_true(p:destroy())
      return p.views
    end)
    local ok, v = coroutine.resume(co)
    assert.is_true(ok)
    assert.are.equal("paused", v)
    ok, v = coroutine.resume(co, 42)
    assert.is_true(ok)
    assert.are.equal("destroyed", v)
    ok, v = coroutine.resume(co)
    assert.is_true(ok, v)
    assert.are.equal(42, v)
    assert.are.equal("dead", coroutine.status(co))
    assert.are.equal(0, count(db, "Post"))
  end)
end)

describe("bulk update and destroy hooks", function()
  local function posts(hooks, paranoid)
    local db = H.open()
    local Post = db:define("Post", { fields = { title = { type = T.TEXT }, views = { type = T.INTEGER,
      validate = { min = 0 } } }, hooks = hooks, paranoid = paranoid })
    assert(db:sync())
    for i = 1, 3 do assert(Post:create { title = "p" .. i, views = i }) end
    return db, Post
  end

  it("Model:update runs beforeBulkUpdate (which may change the values) and afterBulkUpdate with the count", function()
    local seen = {}
    local _, Post = posts {
      beforeBulkUpdate = function(values, opts)
        seen[#seen + 1] = "before " .. tostring(opts.where and opts.where.views.gte)
        values.title = "changed"
      end,
      afterBulkUpdate = function(n, values) seen[#seen + 1] = "after " .. n .. " " .. values.title end,
    }
    assert.are.equal(2, Post:update({ views = 9 }, { where = { views = { gte = 2 } } }))
    assert.are.same({ "before 2", "after 2 changed" }, seen)
    assert.are.equal(2, Post:count { where = { title = "changed" } })
    -- the values are still validated (after beforeBulkUpdate): nothing written
    local ok, _, code = Post:update({ views = -1 }, { all = true })
    assert.is_nil(ok)
    assert.are.equal(junction.VALIDATION, code)
    assert.are.equal(0, Post:count { where = { views = -1 } })
  end)

  it("Model:destroy runs beforeBulkDestroy and afterBulkDestroy; a hook failing rolls the delete back", function()
    local seen = {}
    local refuse = false
    local _, Post = posts {
      beforeBulkDestroy = function(opts) seen[#seen + 1] = "before " .. tostring(opts.where and opts.where.title) end,
      afterBulkDestroy = function(n)
        seen[#seen + 1] = "after " .. n
        if refuse then return nil, "kept", 77 end
      end,
    }
    assert.are.equal(1, Post:destroy { where = { title = "p1" } })
    assert.are.same({ "before p1", "after 1" }, seen)
    refuse = true
    local ok, msg, code = Post:destroy { all = true }
    assert.is_nil(ok)
    assert.are.equal("kept", msg)
    assert.are.equal(77, code)
    assert.are.equal(2, Post:count())
    refuse = false
    assert.error_matches(function() return Post:destroy {} end, "Post:destroy")   -- misuse still raises
  end)

  it("a paranoid model's soft destroy runs the bulk destroy hooks and no update hook; restore runs none", function()
    local seen = {}
    local function note(name) return function() seen[#seen + 1] = name end end
    local _, Post = posts({ beforeBulkDestroy = note("bd"), afterBulkDestroy = note("ad"),
                            beforeBulkUpdate = note("bu"), afterBulkUpdate = note("au") }, true)
    assert.are.equal(1, Post:destroy { where = { title = "p1" } })
    assert.are.same({ "bd", "ad" }, seen)
    seen = {}
    assert.is_true(Post:findByPk(2):destroy())
    assert.are.equal(2, Post:restore { all = true })
    assert.are.same({}, seen)
    assert.are.equal(3, Post:count())
  end)
end)

describe("examples/validations_hooks.lua", function()
  it("runs, printing what its comments say", function()
    local out = {}
    local env = setmetatable({ print = function(...)
      local t = { n = select("#", ...), ... }
      for i = 1, t.n do t[i] = tostring(t[i]) end
      out[#out + 1] = table.concat(t, "\t", 1, t.n)
    end }, { __index = _G })
    local chunk = assert(loadfile("examples/validations_hooks.lua"))
    if setfenv then setfenv(chunk, env) else chunk = assert(loadfile("examples/validations_hooks.lua", "t", env)) end
    chunk()
    assert.are.equal("nil\tPost.text: must be 3 to 200 characters long; Post.noShouting: write it in lower case"
                     .. "\ttrue\tmust be 3 to 200 characters long", out[1])
    assert.are.equal("Junction models in Lua\tcreated post 1", out[2])
    assert.matches('^nil\tGenre.name: does not match the pattern "%^%[a%-z%]%[a%-z0%-9%-%]%*%$"\t0$', out[3])
    assert.are.equal("nil\tthe lua genre stays", out[4])
    assert.are.equal("1", out[5])
    assert.are.equal("24\t3\t4", out[7])
    assert.are.equal("5\t11", out[8])
  end)
end)
