-- Through values per target: what each target of addGenres/setGenres/
-- createGenre brings for its own link, as Sequelize's target instances do
-- (`genre.TagPostGenre = { weight = 2 }`), or what a `through` function
-- gives for it.  Run over the C methods (a plain junction model) and the Lua
-- ones (a paranoid junction model: lua/junction/assoc.lua), on both engines.
local H = require "spec.helper"
local T = H.T

local function weights(db)
  local out = {}
  for _, r in ipairs(assert(db:query(
      'SELECT genre_id, weight, note FROM "tag_post_genre" WHERE deleted_at IS NULL ORDER BY genre_id'))) do
    out[#out + 1] = r.genre_id .. "=" .. tostring(r.weight) .. "/" .. tostring(r.note)
  end
  return table.concat(out, " ")
end

for _, kind in ipairs { "plain", "paranoid" } do
  describe("through values per target (" .. kind .. " junction)", function()
    local db, m, g, post
    before_each(function()
      db = H.open()
      m = H.blog(db, { weight = { type = T.INTEGER }, note = { type = T.TEXT, defaultValue = "d" },
                       deleted_at = kind == "plain" and { type = T.DATE } or nil },
                 kind == "paranoid" and { paranoid = true } or nil)
      g = H.genres(m.Genre)                 -- rock jazz pop folk metal = 1..5
      post = assert(m.Post:create { text = "p" })
    end)
    after_each(function() db:close() end)

    it("a target instance carries its values under the junction model's name", function()
      g[1].TagPostGenre = { weight = 10 }
      g[2].TagPostGenre = { note = "two" }
      assert.is_true(post:addGenres({ g[1], g[2], g[3] }, { through = { weight = 1 } }))
      -- the target's values over opts.through's, defaults where neither says
      assert.equal("1=10/d 2=1/two 3=1/d", weights(db))
      assert.same({ weight = 10 }, g[1].TagPostGenre)   -- read back as assigned
      g[1].TagPostGenre = nil
      assert.is_nil(g[1].TagPostGenre)
    end)

    it("setGenres writes a kept link's own values, and leaves a kept link without any alone", function()
      assert.is_true(post:setGenres { 1, 2, 3 })
      g[2].TagPostGenre = { weight = 22 }
      assert.is_true(post:setGenres { g[1], g[2], g[4] })
      assert.equal("1=nil/d 2=22/d 4=nil/d", weights(db))
      -- with opts.through every link gets it, under the target's own
      assert.is_true(post:setGenres({ g[1], g[2] }, { through = { note = "all" } }))
      assert.equal("1=nil/all 2=22/all", weights(db))
    end)

    it("a through function gives each target's values, given the instance or the key", function()
      local seen = {}
      local function by_target(t)
        seen[#seen + 1] = type(t) == "number" and t or t.name
        if t == 3 then return nil end
        return { weight = type(t) == "number" and t * 100 or #t.name }
      end
      assert.is_true(post:addGenres({ g[1], 2, 3 }, { through = by_target }))
      assert.same({ "rock", 2, 3 }, seen)
      assert.equal("1=4/d 2=200/d 3=nil/d", weights(db))
      -- the target's own values, then the function's over them
      g[4].TagPostGenre = { weight = 1, note = "own" }
      assert.is_true(post:addGenre(g[4], { through = function() return { weight = 44 } end }))
      assert.equal("1=4/d 2=200/d 3=nil/d 4=44/own", weights(db))
      -- createGenre: the function sees the new target
      local made = assert(post:createGenre({ name = "blues" }, { through = function(t)
        return { note = t.name }
      end }))
      assert.equal("blues", made.name)
      assert.equal("1=4/d 2=200/d 3=nil/d 4=44/own 6=nil/blues", weights(db))
    end)

    it("bad values fail the whole call and write nothing", function()
      assert.is_true(post:setGenres { 1, 2 })
      local before = weights(db)
      g[3].TagPostGenre = { weight = "heavy" }            -- a value its field cannot hold
      local ok, msg, code = post:setGenres { g[1], g[3] }
      assert.is_nil(ok)
      assert.equal(H.junction.VALIDATION, code)
      assert.matches("weight", msg)
      assert.equal(before, weights(db))
      g[3].TagPostGenre = { wieght = 1 }                   -- a misspelt field raises
      assert.has_error(function() post:addGenres { g[1], g[3] } end,
        kind == "plain" and "Post:addGenres: bad TagPostGenre values of element 2 " ..
                            "(no field 'wieght' of TagPostGenre to set)" or nil)
      assert.equal(before, weights(db))
      g[3].TagPostGenre = { post_id = 9 }                  -- the keys are junction's to write
      assert.has_error(function() post:addGenre(g[3]) end)
      assert.equal(before, weights(db))
      assert.has_error(function() g[3].TagPostGenre = 5 end,
        "Genre: cannot set 'TagPostGenre' (a table of TagPostGenre values, or nil, expected, got number)")
      assert.has_error(function() g[3].TagPostGenres = {} end)   -- any other name still raises
    end)

    it("a through function that raises, or gives no table, writes nothing", function()
      assert.is_true(post:setGenres { 1, 2 })
      local before = weights(db)
      assert.has_error(function()
        post:setGenres({ 3, 4, 5 }, { through = function(t) if t == 5 then error("no 5") end end })
      end)
      assert.equal(before, weights(db))
      assert.has_error(function()
        post:addGenres({ 3 }, { through = function() return 7 end })
      end, kind == "plain" and "Post:addGenres: bad option 'through' (its function gave number for " ..
                               "element 1: a table of TagPostGenre values or nil expected)" or nil)
      assert.equal(before, weights(db))
      -- a function that reads the association meanwhile is fine
      assert.is_true(post:addGenres({ 3 }, { through = function()
        return { weight = #post:getGenres() }
      end }))
      assert.equal("1=nil/d 2=nil/d 3=2/d", weights(db))
    end)

    it("the junction row a read attached adds nothing of itself, and tables are read raw", function()
      assert.is_true(post:addGenre(1, { through = { weight = 5 } }))
      local got = assert(post:getGenres())[1]
      assert.equal(5, got.TagPostGenre.weight)
      assert.is_true(post:setGenres { got, 2 })          -- the attached row: no values of its own
      assert.equal("1=5/d 2=nil/d", weights(db))
      got.TagPostGenre = got.TagPostGenre                 -- a junction instance may be put back
      g[2].TagPostGenre = setmetatable({}, { __index = function() error("read through __index") end,
                                             __pairs = function() error("iterated with __pairs") end })
      assert.is_true(post:setGenres { got, g[2] })
      assert.equal("1=5/d 2=nil/d", weights(db))
    end)

    it("many targets, each with its values, in one call", function()
      local names = {}
      for i = 1, 300 do names[i] = "x" .. i end
      local many = H.genres(m.Genre, names)
      for i, t in ipairs(many) do t.TagPostGenre = { weight = i } end
      assert.is_true(post:setGenres(many))
      local rows = assert(db:query('SELECT sum(weight) AS s, count(*) AS n FROM "tag_post_genre"'))
      assert.equal(300, tonumber(rows[1].n))
      assert.equal(300 * 301 / 2, tonumber(rows[1].s))
    end)
  end)
end

describe("through values per target: a through function in a coroutine", function()
  it("may not yield inside a C method: the call fails and writes nothing", function()
    local db = H.open()
    local m = H.blog(db, { weight = { type = T.INTEGER } })
    H.genres(m.Genre)
    local post = assert(m.Post:create { text = "p" })
    local co = coroutine.create(function()
      return post:addGenres({ 1, 2 }, { through = function() coroutine.yield() return {} end })
    end)
    local ok, err = coroutine.resume(co)
    assert.is_false(ok)
    assert.matches("yield", err)
    assert.equal(0, post:countGenres())
    db:close()
  end)
end)
