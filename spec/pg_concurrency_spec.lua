-- Concurrency on PostgreSQL: two processes setting the same posts' genres
-- at once, serialization failures retried, failures inside a user's
-- transaction returned without poisoning it.
local H = require "spec.helper"

local pg_it = H.pg_only(it, pending)

-- the interpreter running the specs, for the child processes
local function interpreter()
  if H.is_jit then return "luajit" end
  return "lua" .. _VERSION:match("%d+%.%d+")
end

local function q(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

local function sorted_ids(list)
  local ids = {}
  for i, x in ipairs(list) do ids[i] = tonumber(type(x) == "number" and x or x.genre_id) end
  table.sort(ids)
  return table.concat(ids, ",")
end

describe("setGenres by two processes at once on PostgreSQL", function()
  local function run(variant)
    local place = H.place()
    local db = H.open_at(place)
    local m = H.blog(db, nil, variant == "paranoid" and { paranoid = true } or nil)
    H.genres(m.Genre, { "g1", "g2", "g3", "g4", "g5", "g6", "g7", "g8", "g9", "g10" })
    for i = 1, 3 do assert(m.Post:create { text = "post " .. i }) end
    local script = "test/concurrency/set_genres.lua"
    local function start(worker)
      return assert(io.popen(table.concat({ interpreter(), script, q(place), tostring(worker), "60",
                                            q(package.path), q(package.cpath), variant or "",
                                            "2>&1" }, " ")))
    end
    local a, b = start(1), start(2)
    local out_a, out_b = a:read("*a"), b:read("*a")
    a:close()
    b:close()
    assert.are.equal("ok 180\n", out_a)
    assert.are.equal("ok 180\n", out_b)
    -- every post ends with exactly one of the lists, each link once
    local known = {}
    for _, lists in ipairs(assert(loadfile(script))()) do
      for _, list in ipairs(lists) do known[sorted_ids(list)] = true end
    end
    for _, post in ipairs(assert(m.Post:findAll())) do
      local got = sorted_ids(assert(post:getGenres()))
      assert.is_true(known[got], "post " .. post.post_id .. " has " .. got)
      local rows = assert(db:query("SELECT count(*) AS n, count(DISTINCT genre_id) AS d " ..
                                   "FROM tag_post_genre WHERE post_id = ?", post.post_id))
      assert.are.equal(rows[1].d, rows[1].n)
    end
    db:close()
  end
  pg_it("loses nothing, surfaces no error, and leaves each post with one caller's list", function()
    run()
  end)
  pg_it("does the same through a paranoid junction model, whose link methods are Lua", function()
    run("paranoid")
  end)
end)

describe("db:sync by two processes at once on PostgreSQL", function()
  pg_it("makes the second wait for the first and then find its tables (no unique violation)", function()
    local place = H.place()
    local child = os.tmpname()
    local f = assert(io.open(child, "w"))
    f:write([[
      local url, hold, path, cpath = ...
      package.path, package.cpath = path, cpath
      local junction = require "junction"
      local db = assert(junction.open(url))
      db:define("Thing", { tableName = "thing", fields = { name = { type = junction.types.TEXT } } })
      local ok, msg, code = db:transaction(function()
        local r, m, c = db:sync()
        if not r then return nil, m, c end
        if hold == "1" then assert(db:query("SELECT pg_sleep(1)")) end   -- the tables made, not committed
        return true
      end)
      io.write(ok and "ok\n" or ("FAIL " .. tostring(msg) .. " " .. tostring(code) .. "\n"))
    ]])
    f:close()
    local function start(hold)
      return assert(io.popen(table.concat({ interpreter(), q(child), q(place), hold,
                                            q(package.path), q(package.cpath), "2>&1" }, " ")))
    end
    local a = start("1")
    os.execute("sleep 0.4")
    local b = start("0")
    local out_a, out_b = a:read("*a"), b:read("*a")
    a:close()
    b:close()
    os.remove(child)
    assert.are.equal("ok\n", out_a)
    assert.are.equal("ok\n", out_b)
  end)
end)

describe("a serialization failure on PostgreSQL", function()
  -- db's transactions are REPEATABLE READ; before each setGenres diff
  -- statement runs (the log function sees it), a second connection deletes
  -- and puts back one of the post's links: the diff then meets a row changed
  -- after its snapshot and fails with 40001.
  local function setup(conflicts)
    local place = H.place()
    local other = H.open_at(place)
    local seen = { diffs = 0 }
    local db = H.open_at(place, { log = function(sql)
      if sql:find("^WITH v") then
        seen.diffs = seen.diffs + 1
        if seen.diffs <= conflicts then
          assert(other:exec("DELETE FROM tag_post_genre WHERE post_id = 1 AND genre_id = 2"))
          assert(other:query("INSERT INTO tag_post_genre (post_id, genre_id, created_at, updated_at) " ..
                             "VALUES (1, 2, 'x', 'x')"))
        end
      end
    end })
    local m = H.blog(db)
    H.genres(m.Genre)
    local p = assert(m.Post:create { text = "one" })
    assert(p:setGenres { 1, 2 })
    seen.diffs = 0
    assert(db:exec("SET default_transaction_isolation = 'repeatable read'"))
    return db, m, p, seen
  end

  pg_it("is run again when the call opened its own transaction", function()
    local db, _, p, seen = setup(2)
    assert.is_true(p:setGenres { 3 })
    assert.are.equal(3, seen.diffs)   -- two failures, then it went through
    assert.are.equal("3", sorted_ids(assert(p:getGenres())))
    db:close()
  end)

  pg_it("is returned after three runs again that failed as well", function()
    local db, _, p, seen = setup(100)
    local ok, msg, code, details = p:setGenres { 3 }
    assert.is_nil(ok)
    assert.are.equal(5, code)
    assert.are.equal("40001", details.sqlstate)
    assert.is_string(msg)
    assert.are.equal(4, seen.diffs)
    assert.are.equal("1,2", sorted_ids(assert(p:getGenres())))
    db:close()
  end)

  pg_it("is returned inside the user's transaction, which goes on", function()
    local db, m, p, seen = setup(1)
    local r = { db:transaction(function()
      local res = { p:setGenres { 3 } }
      assert(m.Genre:create { name = "after" })
      return res
    end) }
    local res = r[1]
    assert.is_nil(res[1])
    assert.are.equal(5, res[3])
    assert.are.equal("40001", res[4].sqlstate)
    assert.are.equal(1, seen.diffs)   -- not run again
    assert.is_truthy(m.Genre:findOne { where = { name = "after" } })   -- committed
    assert.are.equal("1,2", sorted_ids(assert(p:getGenres())))
    db:close()
  end)
end)
