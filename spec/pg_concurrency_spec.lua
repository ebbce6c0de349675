-- Concurrency on PostgreSQL: two processes setting the same posts' genres
-- at once.
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
  pg_it("loses nothing, surfaces no error, and leaves each post with one caller's list", function()
    local place = H.place()
    local db = H.open_at(place)
    local m = H.blog(db)
    H.genres(m.Genre, { "g1", "g2", "g3", "g4", "g5", "g6", "g7", "g8", "g9", "g10" })
    for i = 1, 3 do assert(m.Post:create { text = "post " .. i }) end
    local script = "test/concurrency/set_genres.lua"
    local function start(worker)
      return assert(io.popen(table.concat({ interpreter(), script, q(place), tostring(worker), "60",
                                            q(package.path), q(package.cpath), "2>&1" }, " ")))
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
  end)
end)
