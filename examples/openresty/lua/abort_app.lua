-- abort_app.lua: the handlers of test.sh's client-abort check (its own nginx,
-- one worker, lua_check_client_abort on), not part of the blog app.
--
--   GET /tx/slow?sleep=S   db:transaction: a row, ngx.sleep(S), another row;
--                          the test's client goes away during the sleep
--   GET /tx/write?v=TEXT   one row; 201 only when it committed
--
-- Every later write must be acknowledged only when it committed, be durable
-- and be visible to another process: the aborted request's transaction is
-- rolled back, never joined (docs/OPENRESTY.md, "Client aborts").
local junction = require "junction"
local cjson = require "cjson"

local M = {}
local db

function M.init_worker()
  db = assert(junction.open(os.getenv("JUNCTION_DB"), { journal_mode = "wal", busy_timeout = 5000 }))
  assert(db:exec("CREATE TABLE IF NOT EXISTS abort_row(v TEXT PRIMARY KEY)"))
end

function M.exit_worker()
  if db then db:close() end
end

local function reply(status, body)
  ngx.status = status
  ngx.header["Content-Type"] = "application/json"
  ngx.say(cjson.encode(body))
end

function M.slow()
  local ok, msg, code = db:transaction(function()
    local r, m, c = db:query("INSERT INTO abort_row VALUES ('abandoned-1')")
    if not r then return nil, m, c end
    ngx.sleep(tonumber(ngx.var.arg_sleep) or 1)
    return db:query("INSERT INTO abort_row VALUES ('abandoned-2')")
  end)
  if ok then return reply(200, { ok = true }) end
  reply(503, { error = msg, code = code })
end

function M.write()
  local v = ngx.var.arg_v
  if not v then return reply(400, { error = "v missing" }) end
  local r, msg, code = db:query("INSERT INTO abort_row VALUES (?)", v)
  if r then return reply(201, { v = v }) end
  reply(503, { error = msg, code = code })
end

return M
