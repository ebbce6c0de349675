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
    local ran, after, lc, drop = false, nil, nil, nil
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
