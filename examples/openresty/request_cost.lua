-- request_cost.lua: the work of blog_app.lua's GET /posts/1/genres outside nginx
-- (the same junction calls on the same seed, in WAL mode), to count its
-- instructions with callgrind; docs/PERFORMANCE.md "OpenResty" has the figures.
--
--   luajit examples/openresty/request_cost.lua MODE N
--
-- runs N requests of MODE and prints the CPU time per request:
--   tojson  findByPk, getGenres{ order = "genre_id" }, junction.toJSON(genres): the app
--   cjson   the same calls, toTable of each genre and cjson.encode of each row
--   calls   the two junction calls alone
-- The marginal instructions of a request: callgrind's total for N = 4000 minus
-- N = 0, divided by 4000 (build/jit/ is used: `make build` first):
--   valgrind --tool=callgrind --callgrind-out-file=/dev/null luajit examples/openresty/request_cost.lua tojson 4000
local here = (debug.getinfo(1, "S").source:match("^@(.*)[/\\]") or ".")
package.path = here .. "/lua/?.lua;" .. here .. "/../../lua/?.lua;" .. here .. "/../../lua/?/init.lua;" .. package.path
package.cpath = here .. "/../../build/jit/?.so;" .. package.cpath
local junction = require "junction"

local mode, n = arg[1], tonumber(arg[2])
if not (mode == "tojson" or mode == "cjson" or mode == "calls") or not n then
  io.stderr:write("usage: luajit request_cost.lua tojson|cjson|calls N\n")
  os.exit(2)
end

local path = os.tmpname()
local db = assert(junction.open(path, { journal_mode = "wal", synchronous = "normal", busy_timeout = 5000 }))
local models = require("blog_models")(db)
assert(db:sync())
for _, name in ipairs { "orm", "lua", "sqlite", "c" } do assert(models.Genre:create { name = name }) end
for _, text in ipairs { "Junction models in Lua", "SQLite from OpenResty", "Sequelize, transcribed" } do
  assert(models.Post:create { text = text })
end
assert(models.Post:findByPk(1):setGenres { 1, 2, 3 })

local function calls(id)
  local post = assert(models.Post:findByPk(id))
  return assert(post:getGenres { order = "genre_id" })
end

local request
if mode == "calls" then
  request = calls
elseif mode == "tojson" then
  request = function(id) return junction.toJSON(calls(id)) end
else
  local cjson = require "cjson"
  request = function(id)
    local out = {}
    for i, g in ipairs(calls(id)) do out[i] = cjson.encode(g:toTable()) end
    return "[" .. table.concat(out, ",") .. "]"
  end
end

request(1)                                   -- statements prepared, as after a warm-up
local t0 = os.clock()
for _ = 1, n do request(1) end
if n > 0 then print(("%s: %.2f us of CPU a request (%d requests)"):format(mode, (os.clock() - t0) / n * 1e6, n)) end
db:close()
for _, suffix in ipairs { "", "-wal", "-shm" } do os.remove(path .. suffix) end
