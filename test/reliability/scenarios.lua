--[==[
scenarios.lua -- targeted checks for what the random checks found.

  lua scenarios.lua

Each scenario is a short, deterministic program around one way of losing or
corrupting data that model_check, fuzz or crash turned up (docs/RELIABILITY.md
lists them). Run it under the ASan build too (run.sh does): several of them
are memory errors that a plain build survives by luck.

  1. db:close() from inside the `log` callback, in the middle of a write:
     nothing crashes; the call raises or returns nil, msg, code; then either
     the connection is closed, or the close was refused and the interrupted
     call wrote nothing.
  2. The same from inside a db:transaction function, then returning.
  3. A DATE field given a number that is no date (1e300, +-inf, NaN, 2^63):
     a raise, nil, msg, code, or well-formed stored text (never stack bytes).
  4. SQLITE_FULL inside db:transaction (AUTOINCREMENT exhausted): SQLite rolls
     back the whole transaction by itself; what the function writes after
     that must not be committed, whether the function then raises or returns.
  5. The same failure inside a nested transaction (savepoint).
  6. Two coroutines on one connection (OpenResty's one connection per worker):
     A's db:transaction yields, B writes (in a transaction and alone) and is
     told it succeeded, A raises: B's writes must survive (or be refused).
  7. A field whose `references` names a column the referenced table lacks:
     define or sync refuses it, or the schema it makes is consistent
     (PRAGMA foreign_key_check works).

Prints "ok - scenarios N" or "FAIL - ..." lines; exits 0 or 1.
]==]

local here = (arg and arg[0] or ""):match("^(.*)/[^/]*$") or "."
package.path = here .. "/?.lua;" .. package.path

local rel = require "rel"
local junction = require "junction"
local fmt = string.format

local failures, nrun = {}, 0
local function fail(msg) failures[#failures + 1] = msg end

local function fresh(opts)
  local db = assert(junction.open(":memory:", opts))
  local Post, Genre = rel.seed_models(db, junction)
  assert(db:sync())
  return db, Post, Genre
end

local function shape_ok(ok, a, b, c)
  if not ok then return type(a) == "string" end
  return a ~= nil or (type(b) == "string" and type(c) == "number")
end

local SCEN = {}

-- 1 -------------------------------------------------------------------------
SCEN[1] = { "db:close() inside the log callback during a call", function()
for _, op in ipairs { "createGenre", "setGenres", "Post:create", "destroy", "addGenres", "getGenres" } do
  nrun = nrun + 1
  local db
  local armed = false
  db = fresh { log = function() if armed then armed = false; db:close() end end }
  local Post, Genre = db:model("Post"), db:model("Genre")
  local p = assert(Post:create { text = "p" })
  local g = assert(Genre:create { name = "g" })
  armed = true
  local ok, a, b, c
  if op == "createGenre" then ok, a, b, c = pcall(p.createGenre, p, { name = "n" })
  elseif op == "setGenres" then ok, a, b, c = pcall(p.setGenres, p, { g })
  elseif op == "Post:create" then ok, a, b, c = pcall(Post.create, Post, { text = "q" })
  elseif op == "destroy" then ok, a, b, c = pcall(p.destroy, p)
  elseif op == "addGenres" then ok, a, b, c = pcall(p.addGenres, p, { g.genre_id })
  else ok, a, b, c = pcall(p.getGenres, p) end
  if not shape_ok(ok, a, b, c) then
    fail(fmt("1 %s with db:close() in the log callback gave %s, %s, %s, %s", op, tostring(ok), tostring(a),
        tostring(b), tostring(c)))
  end
  local ok2, e2 = pcall(Post.count, Post)
  local closed = not ok2 and tostring(e2):find("closed", 1, true) ~= nil
  if ok2 and type(e2) == "number" then
    -- the close was refused (in use): the connection works and the call
    -- that was interrupted wrote nothing
    if not ok or a == nil then
      local np = #assert(db:query("SELECT * FROM post"))
      local nl = #assert(db:query("SELECT * FROM tag_post_genre"))
      local ng = #assert(db:query("SELECT * FROM genre"))
      if np ~= 1 or nl ~= 0 or ng ~= 1 then
        fail(fmt("1 %s interrupted by a refused db:close() left posts/links/genres %d/%d/%d, want 1/0/1",
          op, np, nl, ng))
      end
    end
  elseif not closed then
    -- (closed is fine: the call above raised or returned nil, msg, code)
    fail(fmt("1 %s: after db:close() in the log callback, Post:count gave %s, %s", op, tostring(ok2), tostring(e2)))
  end
end

end }

-- 2 -------------------------------------------------------------------------
SCEN[2] = { "db:close() inside a db:transaction function", function()
  nrun = nrun + 1
  local db, Post = fresh()
  local ok, a, b, c = pcall(db.transaction, db, function()
    assert(Post:create { text = "inside" })
    db:close()
    return "returned"
  end)
  if not shape_ok(ok, a, b, c) then
    fail(fmt("2 db:close() inside db:transaction gave %s, %s, %s, %s", tostring(ok), tostring(a), tostring(b),
        tostring(c)))
  end
end

}

-- 3 -------------------------------------------------------------------------
SCEN[3] = { "a DATE field given 1e300, +-inf, NaN, 2^63", function()
  local db, Post = fresh()
  for _, v in ipairs { 1e300, -1e300, 1 / 0, -1 / 0, 0 / 0, 2 ^ 63, -2 ^ 62, 1e17 } do
    nrun = nrun + 1
    local ok, p, msg, code = pcall(Post.create, Post, { text = "d", created_at = v })
    if not shape_ok(ok, p, msg, code) then
      fail(fmt("3 Post:create{created_at = %s} gave %s, %s", tostring(v), tostring(p), tostring(msg)))
    elseif ok and p then
      local r = assert(db:query("SELECT created_at AS c FROM post WHERE post_id = ?", p.post_id))[1]
      local c = r and r.c
      -- The documented format, YYYY-MM-DD HH:MM:SS.mmm, with a real month, day
      -- and time (an unrepresentable date must be refused instead).
      local y, mo, d, h, mi, sec = (type(c) == "string" and c or ""):match(
        "^(%d%d%d%d)%-(%d%d)%-(%d%d) (%d%d):(%d%d):(%d%d)%.%d%d%d$")
      local valid = y and tonumber(mo) >= 1 and tonumber(mo) <= 12 and tonumber(d) >= 1 and tonumber(d) <= 31
        and tonumber(h) < 24 and tonumber(mi) < 60 and tonumber(sec) < 61
      if not valid then
        fail(fmt("3 Post:create{created_at = %s} stored %q", tostring(v), tostring(c)))
      end
    end
  end
end

}

-- 4, 5 ----------------------------------------------------------------------
local function full_case(nested, raise)
  nrun = nrun + 1
  local db, Post, Genre = fresh()
  assert(Genre:create { genre_id = 9223372036854775807, name = "last" })
  assert(Post:create { text = "before" })
  local function body()
    assert(Post:create { text = "first" })
    local g, msg, code = Genre:create { name = "no room" }
    if g ~= nil or type(msg) ~= "string" or type(code) ~= "number" then
      fail(fmt("4 Genre:create with AUTOINCREMENT exhausted gave %s, %s, %s", tostring(g), tostring(msg),
          tostring(code)))
    end
    -- What comes after the failure must stay inside the transaction.
    Post:create { text = "after" }
    if raise then error("rollback please", 0) end
    return true
  end
  if nested then
    pcall(db.transaction, db, function()
      assert(Post:create { text = "outer" })
      pcall(db.transaction, db, body)
      if raise then error("outer rollback", 0) end
    end)
  else
    pcall(db.transaction, db, body)
  end
  local texts = {}
  for _, r in ipairs(assert(db:query("SELECT text FROM post ORDER BY post_id"))) do texts[#texts + 1] = r.text end
  local got = table.concat(texts, ",")
  -- Acceptable: everything of the transaction or nothing of it, and with the
  -- failure in the middle "nothing" is the only consistent outcome.
  if got ~= "before" then
    fail(fmt("%d SQLITE_FULL inside %s transaction that then %s: posts are {%s}, want {before}",
      nested and 5 or 4, nested and "a nested" or "a", raise and "raises" or "returns", got))
  end
end
-- 6 -------------------------------------------------------------------------
SCEN[6] = { "two coroutines on one connection, one transaction yields then raises", function()
  nrun = nrun + 1
  local db, Post = fresh()
  local a = coroutine.create(function()
    return db:transaction(function()
      assert(Post:create { text = "A" })
      coroutine.yield()
      error("A fails", 0)
    end)
  end)
  assert(coroutine.resume(a))
  -- B runs while A's transaction is open: a transaction and a lone write.
  local okb, rb = pcall(db.transaction, db, function() assert(Post:create { text = "B" }) return "committed" end)
  local okc, rc = pcall(Post.create, Post, { text = "C" })
  coroutine.resume(a)
  local texts = {}
  for _, r in ipairs(assert(db:query("SELECT text FROM post ORDER BY text"))) do texts[r.text] = true end
  -- Whatever was reported written must be there (or B/C must have been refused).
  if okb and rb == "committed" and not texts.B then
    fail("6 B's db:transaction returned \"committed\" while A's transaction was open; "
      .. "A rolled back and B's row is gone")
  end
  if okc and rc ~= nil and not texts.C then
    fail("6 Post:create returned an instance while A's transaction was open; A rolled back and the row is gone")
  end
end }

-- 7 -------------------------------------------------------------------------
SCEN[7] = { "references to a column the referenced model does not have", function()
  for _, key in ipairs { "genre_id", "text", "nope" } do
    nrun = nrun + 1
    local db = fresh()
    local ok = pcall(db.define, db, "Fz", { tableName = "fz", fields = {
      f1 = { type = junction.types.INTEGER, references = { model = "post", key = key } } } })
    local sok, sres = pcall(db.sync, db)
    if ok and sok and sres then
      local r, msg = db:query("PRAGMA foreign_key_check")
      if not r then
        fail(fmt("7 references = {model = \"post\", key = %q} was accepted by define and sync; "
          .. "now foreign_key_check fails: %s", key, tostring(msg)))
      end
    end
  end
end }

SCEN[4] = { "SQLITE_FULL inside db:transaction", function() full_case(false, true); full_case(false, false) end }
SCEN[5] = { "SQLITE_FULL inside a nested transaction", function() full_case(true, true); full_case(true, false) end }

if not arg[1] then
  -- The parent: each scenario in its own process, so that a crash in one
  -- does not hide the others.
  local LUA = arg[-1] or "lua5.4"
  local nfail = 0
  for i, sc in ipairs(SCEN) do
    local p = io.popen(fmt("%s %s %d 2>&1; echo \"EXIT:$?\"", LUA, rel.shq(arg[0]), i))
    local out = p:read("*a")
    p:close()
    local status = tonumber(out:match("EXIT:(%d+)%s*$"))
    out = out:gsub("EXIT:%d+%s*$", "")
    if status == 0 then
      print(fmt("# scenario %d ok: %s", i, sc[1]))
    else
      nfail = nfail + 1
      local what = status == 1 and "failed" or ("crashed (exit status " .. tostring(status) .. ")")
      print(fmt("# scenario %d %s: %s", i, what, sc[1]))
      local n = 0
      for line in out:gmatch("[^\n]+") do
        if not line:match("^    #%d") and not line:match("^  0x") and not line:match("^Shadow") then
          n = n + 1
          if n <= 12 then print("#   " .. line:sub(1, 240)) end
        end
      end
    end
  end
  if nfail > 0 then
    print(fmt("FAIL - scenarios: %d of %d failed (%s)", nfail, #SCEN, _VERSION))
    os.exit(1)
  end
  print(fmt("ok - scenarios %d (%s)", #SCEN, _VERSION))
  os.exit(0)
end

SCEN[tonumber(arg[1])][2]()
if #failures > 0 then
  for _, f in ipairs(failures) do print("# " .. f) end
  print(fmt("FAIL - scenarios: %d failures in %d cases", #failures, nrun))
  os.exit(1)
end
print(fmt("ok - scenarios %d (%s)", nrun, _VERSION))
