-- check_db.lua: consistency of the blog database after test.sh's concurrent burst.
--
--   luajit check_db.lua DB RECORDS POSTS_BEFORE GENRES
--
-- RECORDS holds one line per request the clients made:
--   create <status> <post_id|->        POST /posts
--   set    <status> <post_id> <ids>    PUT /posts/:id/genres on the client's own new post
--   shared <status> <post_id> <ids>    PUT /posts/:id/genres on a post all clients write
--   read   <status> <post_id>          GET /posts/:id/genres
-- (<ids> is a comma-separated list, "-" for the empty set)
--
-- Prints "ok - ..." / "FAIL - ..." lines; exit status 1 when one failed.
-- Needs package.path/cpath to reach junction (test.sh sets LUA_PATH/LUA_CPATH).
local junction = require "junction"
local define_models = require "blog_models"

local db_path, records_path = arg[1], arg[2]
local posts_before, genres_expected = tonumber(arg[3]), tonumber(arg[4])
assert(db_path and records_path and posts_before and genres_expected,
       "usage: check_db.lua DB RECORDS POSTS_BEFORE GENRES")

local passed, failed = 0, 0
local function check(cond, what, detail)
  if cond then
    passed = passed + 1
    print("ok - " .. what)
  else
    failed = failed + 1
    print("FAIL - " .. what .. (detail and (": " .. tostring(detail)) or ""))
  end
end

-- "3,1,2" / {3,1,2} -> "1,2,3"; empty -> "-"
local function canon(list)
  if type(list) == "string" then
    local t = {}
    for n in list:gmatch("%d+") do t[#t + 1] = tonumber(n) end
    list = t
  end
  local t = {}
  for i, v in ipairs(list) do t[i] = tonumber(v) end
  table.sort(t)
  if #t == 0 then return "-" end
  for i, v in ipairs(t) do t[i] = string.format("%d", v) end
  return table.concat(t, ",")
end

-- {====== the requests the clients made
local created, own_set, shared_sets = {}, {}, {}
local n_created, n_requests, non2xx = 0, 0, {}
for line in io.lines(records_path) do
  local kind, status, id, ids = line:match("^(%S+) (%d+) (%S+) ?(%S*)")
  if kind then
    n_requests = n_requests + 1
    status = tonumber(status)
    local good = status >= 200 and status < 300
    if not good then non2xx[#non2xx + 1] = line end
    if kind == "create" and status == 201 then
      n_created = n_created + 1
      created[#created + 1] = tonumber(id)
    elseif kind == "set" and good then
      own_set[tonumber(id)] = canon(ids == "-" and "" or ids)
    elseif kind == "shared" and good then
      local s = shared_sets[tonumber(id)] or {}
      s[canon(ids == "-" and "" or ids)] = true
      shared_sets[tonumber(id)] = s
    end
  end
end
check(n_requests > 0 and #non2xx == 0,
      ("every burst request answered 2xx (%d requests)"):format(n_requests),
      #non2xx .. " were not, first: " .. tostring(non2xx[1]))
-- }======

local db = assert(junction.open(db_path))
local models = define_models(db)

local function q(sql, ...)
  local rows, msg, code = db:query(sql, ...)
  if not rows then error(("query failed: %s: %s (%s)"):format(sql, tostring(msg), tostring(code))) end
  return rows
end

-- {====== SQLite's own checks
local ic = q("PRAGMA integrity_check")
check(#ic == 1 and ic[1].integrity_check == "ok", "PRAGMA integrity_check is ok",
      ic[1] and ic[1].integrity_check)
local fk = q("PRAGMA foreign_key_check")
check(#fk == 0, "PRAGMA foreign_key_check finds nothing", #fk .. " rows")
-- }======

-- {====== counts
local n_posts = q("SELECT count(*) AS n FROM post")[1].n
check(n_posts == posts_before + n_created,
      ("posts in the database (%d) = posts before (%d) + successful creates (%d)")
        :format(n_posts, posts_before, n_created))
local seen, dup = {}, 0
for _, id in ipairs(created) do
  if seen[id] then dup = dup + 1 end
  seen[id] = true
end
check(dup == 0, "every create returned a new post_id", dup .. " duplicates")
local n_genres = q("SELECT count(*) AS n FROM genre")[1].n
check(n_genres == genres_expected, ("genres in the database: %d"):format(n_genres),
      "expected " .. genres_expected)
-- }======

-- {====== links
local dangling = q([[
  SELECT count(*) AS n FROM tag_post_genre t
  LEFT JOIN post p ON p.post_id = t.post_id
  LEFT JOIN genre g ON g.genre_id = t.genre_id
  WHERE p.post_id IS NULL OR g.genre_id IS NULL OR t.post_id IS NULL OR t.genre_id IS NULL]])[1].n
check(dangling == 0, "no dangling links in tag_post_genre", dangling .. " rows")
local dups = q([[SELECT count(*) AS n FROM (SELECT post_id, genre_id FROM tag_post_genre
                 GROUP BY post_id, genre_id HAVING count(*) > 1)]])[1].n
check(dups == 0, "no duplicate (post_id, genre_id) links", dups .. " pairs")

local actual = {}                                    -- post_id -> canonical set, from raw SQL
for _, row in ipairs(q("SELECT post_id FROM post")) do actual[row.post_id] = {} end
for _, row in ipairs(q("SELECT post_id, genre_id FROM tag_post_genre")) do
  local t = actual[row.post_id]
  if t then t[#t + 1] = row.genre_id end
end
for id, list in pairs(actual) do actual[id] = canon(list) end

local wrong, n_own = {}, 0
for id, want in pairs(own_set) do
  n_own = n_own + 1
  if actual[id] ~= want then
    wrong[#wrong + 1] = ("post %d has {%s}, was set to {%s}"):format(id, tostring(actual[id]), want)
  end
end
check(n_own > 0 and #wrong == 0,
      ("each new post has exactly the set written to it (%d posts)"):format(n_own), wrong[1])

wrong = {}
local n_shared = 0
for id, sets in pairs(shared_sets) do
  n_shared = n_shared + 1
  if not sets[actual[id]] then
    local list = {}
    for s in pairs(sets) do list[#list + 1] = "{" .. s .. "}" end
    wrong[#wrong + 1] = ("post %d has {%s}, not one of %s"):format(id, tostring(actual[id]),
                                                              table.concat(list, " "))
  end
end
check(n_shared > 0 and #wrong == 0,
      ("each shared post has one of the sets written to it (%d posts)"):format(n_shared), wrong[1])
-- }======

-- {====== the model layer reads what SQL reads
local posts, msg = models.Post:findAll { include = { "Genres" } }
check(posts ~= nil, "Post:findAll{include={'Genres'}} on the final database", msg)
if posts then
  local bad = {}
  for _, post in ipairs(posts) do
    local ids = {}
    for i, g in ipairs(post.Genres or {}) do ids[i] = g.genre_id end
    if canon(ids) ~= actual[post.post_id] then
      bad[#bad + 1] = ("post %s: include gives {%s}, SQL {%s}"):format(
        tostring(post.post_id), canon(ids), tostring(actual[post.post_id]))
    end
  end
  check(#posts == n_posts and #bad == 0, "eager-loaded Genres equal the rows in tag_post_genre",
        bad[1] or (#posts .. " posts loaded"))
end
-- }======

db:close()
io.stdout:flush()
os.exit(failed == 0 and 0 or 1)
