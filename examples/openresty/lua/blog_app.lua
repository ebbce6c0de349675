-- blog_app.lua: the seed's blog (Post, Genre, TagPostGenre) as an HTTP JSON API
-- served by nginx + lua-nginx-module (OpenResty style).
--
--   POST /posts                {"text": "..."}        -> 201, the post
--   GET  /posts?limit=&offset=                         -> 200, posts with their Genres eager-loaded
--   GET  /posts/:id                                    -> 200, the post with its Genres, or 404
--   GET  /posts/:id/genres                             -> 200, the post's genres, or 404
--   PUT  /posts/:id/genres     {"ids": [1, 2, 3]}      -> 200, the post with its new Genres
--   POST /genres               {"name": "..."}        -> 201, the genre (409 if the name exists)
--   GET  /genres                                       -> 200, all genres
--
-- Every answer is JSON. Failures are a status and {"error": "...", ...}:
-- 400 bad JSON or bad arguments, 404 unknown post or route, 405 wrong method,
-- 409 duplicate or still referenced, 422 a constraint or a refused value (an
-- unknown genre id: SQLite code 787), 503 database busy or unavailable, 500 a
-- bug or a schema that differs from the models (the message goes to error.log).
--
-- One junction connection per nginx worker, opened in init_worker_by_lua (never
-- in init_by_lua: that runs in the master, and a SQLite connection must not
-- cross fork()). See docs/OPENRESTY.md.
local junction = require "junction"
local cjson = require "cjson"
local define_models = require "blog_models"

local M = {}

local db, models, init_error        -- per worker (each worker has its own Lua VM)

local ngx = ngx
local MAX_LIMIT = 100

-- {====== JSON out --------------------------------------------------------------

-- Answers are written by junction.toJSON: an instance as its toTable, a list
-- from a find (or a table marked with junction.array) as an array, [] when empty,
-- plain tables as objects (keys sorted). It is one C call for the whole answer;
-- lua-cjson 2.1.0 (Debian's) cannot write an empty array at all, and formats every
-- number through printf. cjson only reads request bodies here.
local function send(status, value, headers)
  local body = assert(junction.toJSON(value))   -- only this file's values: a failure is a bug
  ngx.status = status
  ngx.header["Content-Type"] = "application/json"
  if headers then for k, v in pairs(headers) do ngx.header[k] = v end end
  ngx.print(body, "\n")
  return status
end

local function fail(status, message, extra)
  local body = { error = message }
  if extra then for k, v in pairs(extra) do body[k] = v end end
  return send(status, body)
end

-- The constraint codes a junction call can return (docs/API.md, "Two error
-- channels"), as an HTTP status and error text.
local constraint_answers = {
  [787]  = { 422, nil },                       -- FOREIGNKEY: a key that is no row
  [1811] = { 409, "still referenced" },        -- TRIGGER: ON DELETE/UPDATE RESTRICT, RAISE()
  [2067] = { 409, "already exists" },          -- UNIQUE
  [1555] = { 409, "already exists" },          -- PRIMARYKEY
  [1299] = { 422, "missing value" },           -- NOTNULL
  [275]  = { 422, "constraint failed" },       -- CHECK
  [junction.VALIDATION] = { 422, "invalid value" },
}

-- A database failure (nil, message, code from junction) as an HTTP answer.
-- `what` names the thing a foreign key failure points at ("genre id").
local function db_fail(msg, code, what)
  code = tonumber(code) or 0
  local primary = code % 256
  local extra = { detail = msg, code = code }
  local answer = constraint_answers[code]
  if answer then
    return fail(answer[1], answer[2] or ("unknown " .. (what or "reference")), extra)
  elseif primary == 19 then                             -- any other constraint
    return fail(422, "constraint failed", extra)
  elseif primary == 5 or primary == 6 then              -- BUSY, LOCKED
    ngx.log(ngx.WARN, "blog_app: database busy: ", msg, " (", code, ")")
    return fail(503, "database busy, retry", extra)
  end
  ngx.log(ngx.ERR, "blog_app: database failure: ", msg, " (", code, ")")
  return fail(500, "database failure", extra)
end

-- }======

-- {====== JSON in and arguments ----------------------------------------------------

local function read_json()
  ngx.req.read_body()
  local data = ngx.req.get_body_data()
  if not data then
    if ngx.req.get_body_file() then return nil, "request body too large" end
    return nil, "empty request body, expected a JSON object"
  end
  local ok, v = pcall(cjson.decode, data)
  if not ok then return nil, "invalid JSON: " .. tostring(v) end
  if type(v) ~= "table" or (#v > 0) then return nil, "expected a JSON object" end
  return v
end

local function is_key(n)
  return type(n) == "number" and n >= 1 and n <= 9007199254740991 and n == math.floor(n)
end

-- "/posts/12" -> 12; ids longer than 15 digits cannot exist here
local function path_id(s)
  if #s > 15 then return nil end
  local n = tonumber(s)
  if is_key(n) then return n end
  return nil
end

local function query_int(args, name, default, min, max)
  local v = args[name]
  if v == nil then return default end
  if type(v) ~= "string" or not v:match("^%d+$") or #v > 9 then return nil end
  local n = tonumber(v)
  if n < min or n > max then return nil end
  return n
end

local function nonempty_string(v, max)
  return type(v) == "string" and v:match("%S") ~= nil and #v <= max
end

-- }======

-- {====== Handlers -------------------------------------------------------------------

local function by_genre_id(a, b) return a.genre_id < b.genre_id end

-- a post instance (Genres eager-loaded) as a plain table, genres in key order
local function post_table(post)
  local t = post:toTable()
  if type(t.Genres) == "table" then table.sort(t.Genres, by_genre_id) end
  return t
end

local function find_post(id)
  local post, msg, code = models.Post:findByPk(id, { include = { "Genres" } })
  if post == nil and msg ~= nil then return nil, msg, code end
  return post or false
end

local function list_posts()
  local args = ngx.req.get_uri_args()
  local limit = query_int(args, "limit", 20, 1, MAX_LIMIT)
  if not limit then return fail(400, "limit must be an integer from 1 to " .. MAX_LIMIT) end
  local offset = query_int(args, "offset", 0, 0, 1e9)
  if not offset then return fail(400, "offset must be a non-negative integer") end
  local posts, msg, code = models.Post:findAll {
    include = { "Genres" }, order = "post_id", limit = limit, offset = offset,
  }
  if not posts then return db_fail(msg, code) end
  local out = junction.array()                -- [] when there are none
  for i, post in ipairs(posts) do out[i] = post_table(post) end
  return send(200, out)
end

local function create_post()
  local body, err = read_json()
  if not body then return fail(400, err) end
  if not nonempty_string(body.text, 65536) then
    return fail(422, "text must be a non-empty string")
  end
  local post, msg, code = models.Post:create { text = body.text }
  if not post then return db_fail(msg, code) end
  return send(201, post, { Location = "/posts/" .. tostring(post.post_id) })
end

local function get_post(id)
  local post, msg, code = find_post(id)
  if post == nil then return db_fail(msg, code) end
  if not post then return fail(404, "no post " .. id) end
  return send(200, post_table(post))
end

local function get_post_genres(id)
  local post, msg, code = models.Post:findByPk(id)
  if post == nil and msg ~= nil then return db_fail(msg, code) end
  if not post then return fail(404, "no post " .. id) end
  local genres
  genres, msg, code = post:getGenres { order = "genre_id" }
  if not genres then return db_fail(msg, code) end
  return send(200, genres)
end

local function set_post_genres(id)
  local body, err = read_json()
  if not body then return fail(400, err) end
  local ids = body.ids
  if type(ids) ~= "table" or #ids > 1000 then
    return fail(400, "ids must be an array of genre ids")
  end
  for k, v in pairs(ids) do
    if type(k) ~= "number" or not is_key(v) then
      return fail(400, "ids must be an array of positive integers")
    end
  end
  local post, msg, code = models.Post:findByPk(id)
  if post == nil and msg ~= nil then return db_fail(msg, code) end
  if not post then return fail(404, "no post " .. id) end
  local ok
  ok, msg, code = post:setGenres(ids)
  if not ok then
    if tonumber(code) == 787 then
      -- name the ids that do not exist (the set was not changed)
      local found = models.Genre:findAll { where = { genre_id = ids }, attributes = { "genre_id" } }
      local have, missing = {}, junction.array()
      for _, g in ipairs(found or {}) do have[g.genre_id] = true end
      for _, v in ipairs(ids) do if not have[v] then missing[#missing + 1] = v end end
      return fail(422, "unknown genre id", { detail = msg, code = code, ids = missing })
    end
    return db_fail(msg, code, "genre id")
  end
  post, msg, code = find_post(id)
  if post == nil then return db_fail(msg, code) end
  if not post then return fail(404, "no post " .. id) end
  return send(200, post_table(post))
end

local function list_genres()
  local genres, msg, code = models.Genre:findAll { order = "genre_id" }
  if not genres then return db_fail(msg, code) end
  return send(200, genres)
end

local function create_genre()
  local body, err = read_json()
  if not body then return fail(400, err) end
  if not nonempty_string(body.name, 60) then
    return fail(422, "name must be a non-empty string of at most 60 bytes")
  end
  local genre, msg, code = models.Genre:create { name = body.name }
  if not genre then
    if tonumber(code) == 2067 then
      return fail(409, "genre name already exists", { detail = msg, code = code })
    end
    return db_fail(msg, code)
  end
  return send(201, genre, { Location = "/genres/" .. tostring(genre.genre_id) })
end

-- }======

-- {====== Routing ---------------------------------------------------------------------

local routes = {
  { [[^/posts/?$]],               GET = list_posts,      POST = create_post },
  { [[^/posts/([0-9]+)$]],        GET = get_post },
  { [[^/posts/([0-9]+)/genres$]], GET = get_post_genres, PUT = set_post_genres },
  { [[^/genres/?$]],              GET = list_genres,     POST = create_genre },
}

local function dispatch()
  local uri, method = ngx.var.uri, ngx.req.get_method()
  for _, route in ipairs(routes) do
    local m = ngx.re.match(uri, route[1], "jo")
    if m then
      local handler = route[method]
      if not handler then
        local allow = {}
        for _, verb in ipairs { "GET", "POST", "PUT" } do
          if route[verb] then allow[#allow + 1] = verb end
        end
        return send(405, { error = "method " .. method .. " not allowed" },
                    { Allow = table.concat(allow, ", ") })
      end
      if not db then return fail(503, "database not available") end
      if m[1] then
        local id = path_id(m[1])
        if not id then return fail(404, "no post " .. m[1]) end
        return handler(id)
      end
      return handler()
    end
  end
  return fail(404, "no route for " .. method .. " " .. uri)
end

-- The content handler: a Lua error in a handler is logged (with its traceback) and
-- answered with a 500 JSON body, never nginx's HTML error page.
function M.handle()
  local ok, err = xpcall(dispatch, debug.traceback)
  if not ok then
    ngx.log(ngx.ERR, "blog_app: ", ngx.req.get_method(), " ", ngx.var.uri, ": ", err)
    if not ngx.headers_sent then
      send(500, { error = "internal error" })
    end
  end
end

-- }======

-- {====== Worker start and stop ----------------------------------------------------

local sleep_ms                               -- a blocking sleep, only used at worker start
do
  local ok, ffi = pcall(require, "ffi")
  if ok then
    pcall(ffi.cdef, "int usleep(unsigned int usec);")
    sleep_ms = function(ms) ffi.C.usleep(ms * 1000) end
  else
    sleep_ms = function() end
  end
end

local function is_busy(code)
  code = tonumber(code) or 0
  return code % 256 == 5 or code % 256 == 6
end

-- call fn() until it succeeds or fails with something else than BUSY/LOCKED
local function retry(what, fn)
  local res, msg, code
  for attempt = 1, 100 do
    res, msg, code = fn()
    if res or not is_busy(code) then break end
    if attempt == 1 then ngx.log(ngx.NOTICE, "blog_app: ", what, " busy, retrying: ", msg) end
    sleep_ms(20 + (attempt % 7) * 5)
  end
  return res, msg, code
end

function M.db_path()
  return os.getenv("JUNCTION_DB") or (ngx.config.prefix() .. "data/blog.sqlite3")
end

-- init_worker_by_lua: open this worker's connection, define the models, create the
-- tables if needed. Two workers start at once, so sync() may race the other
-- worker: CREATE TABLE IF NOT EXISTS makes that harmless, and a BUSY is retried.
function M.init_worker()
  local path = M.db_path()
  local conn, msg, code = retry("open", function()
    if path:find("^postgres") then return junction.open(path) end   -- SQLite's options raise there
    return junction.open(path, { journal_mode = "wal", synchronous = "normal", busy_timeout = 5000 })
  end)
  if not conn then
    init_error = ("cannot open %s: %s (%s)"):format(path, tostring(msg), tostring(code))
    ngx.log(ngx.ERR, "blog_app: ", init_error)
    return
  end
  local defined = define_models(conn)
  local ok
  ok, msg, code = retry("sync", function() return conn:sync() end)
  if not ok then
    init_error = ("sync failed on %s: %s (%s)"):format(path, tostring(msg), tostring(code))
    ngx.log(ngx.ERR, "blog_app: ", init_error)
    conn:close()
    return
  end
  db, models = conn, defined
  ngx.log(ngx.NOTICE, "blog_app: worker ", ngx.worker.id(), " (pid ", ngx.worker.pid(),
          ") serving ", path, " with ", junction.version or "junction", " on SQLite ",
          junction.sqlite_version or "?")
end

-- exit_worker_by_lua: close the connection (the last close checkpoints the WAL)
function M.exit_worker()
  if db then
    db:close()
    db, models = nil, nil
  end
end

-- }======

return M
