--[==[
injection.lua -- SQL injection strings are data, never SQL.

  lua injection.lua

A catalogue of injection strings (quotes, comments, statement separators,
UNION, LIKE wildcards, parameter markers, NUL bytes, invalid UTF-8, a 100 kB
string) is fed through every method that takes a value or a where clause:
Model:create/build+save/update/findAll/findOne/count/findOrCreate/destroy,
instance field writes + save/update/reload, where operators (eq, ne, in,
notIn, like, between, and/or/not), setGenres/addGenre/hasGenre through
instances found by those values, getGenres/countGenres with where,
post:createGenre, db:query parameters. Each value must come back byte for
byte. The same strings used where identifiers go (order, attributes, where
keys, include, a field name or tableName in db:define) must raise, or, for
define, produce a model whose SQL is quoted correctly. After each string the
schema (sqlite_master), the row counts and integrity_check are compared with
what they must be.

Prints one "ok - injection ..." line or FAIL lines; exits 0 or 1.
]==]

local here = (arg and arg[0] or ""):match("^(.*)/[^/]*$") or "."
package.path = here .. "/?.lua;" .. package.path

local rel = require "rel"
local junction = require "junction"
local fmt = string.format

local CATALOGUE = {
  "'; DROP TABLE post; --",
  "\"; DROP TABLE genre; --",
  "'); DELETE FROM tag_post_genre; --",
  "' OR '1'='1",
  "' OR 1=1 --",
  "1 OR 1=1",
  "x') OR ('1'='1",
  "' UNION SELECT name, sql FROM sqlite_master --",
  "'; ATTACH DATABASE '/tmp/junction-injected.db' AS pwn; --",
  "'; PRAGMA foreign_keys = OFF; --",
  "Robert'); DROP TABLE post;--",
  "\\'; DROP TABLE post; --",
  "''''''''",
  "\"\"\"\"",
  "`post`", "[post]", "post", "sqlite_master",
  "%", "_", "%%", "a%b_c", "\\%",
  "?", "?1", "?999999", ":name", "@name", "$name",
  "--", "/*", "*/", "/* */ SELECT 1",
  ";", "; SELECT 1", "NULL", "null", "0", "-1", "1e999", "0x10",
  "\0", "a\0b", "\0'; DROP TABLE post; --", "x\0",
  "\255\254", "\192\128", "\237\160\128", "\226\128\174gnp.exe",
  "json_each", "[]", "{}", "[1,2,3]", "{\"a\":1}",
  "CASE WHEN 1 THEN 1 END", "(SELECT 1)",
  string.rep("'", 1000),
  string.rep("x'; DROP TABLE post; --", 4000),   -- about 92 kB
}

os.remove("/tmp/junction-injected.db")
local failures = {}
local function fail(msg) failures[#failures + 1] = msg end
local function show(s)
  if type(s) ~= "string" then return tostring(s) end
  if #s > 60 then return fmt("<%d bytes starting %q>", #s, s:sub(1, 30)) end
  return (fmt("%q", s):gsub("\n", "n"))
end

local db = assert(junction.open(":memory:"))
local Post, Genre = rel.seed_models(db, junction)
assert(db:sync())

local function schema()
  local r = assert(db:query("SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY type, name"))
  local t = {}
  for _, row in ipairs(r) do t[#t + 1] = tostring(row.type) .. "|" .. tostring(row.name) .. "|" .. tostring(row.sql) end
  return table.concat(t, "\n")
end
local SCHEMA = schema()
local nposts, ngenres, nlinks = 0, 1, 0   -- 1: the anchor genre below

local function counts()
  local r = assert(db:query("SELECT (SELECT count(*) FROM post) AS p, (SELECT count(*) FROM genre) AS g, "
    .. "(SELECT count(*) FROM tag_post_genre) AS t"))
  return r[1].p, r[1].g, r[1].t
end

-- A call that must work: returns its results, or records a failure.
local function must(what, ok, ...)
  if not ok then fail(what .. " raised: " .. tostring((...))) return nil end
  local v = ...
  if v == nil and select("#", ...) > 1 then
    fail(what .. " failed: " .. tostring(select(2, ...)) .. " (" .. tostring(select(3, ...)) .. ")")
  end
  return ...
end

local function must_raise(what, f, ...)
  local ok, r, msg = pcall(f, ...)
  if ok then
    fail(fmt("%s did not raise (returned %s, %s)", what, tostring(r), tostring(msg)))
  elseif type(r) ~= "string" then
    fail(what .. " raised a non-string " .. type(r))
  end
end

-- Does s fit Genre.name, a STRING(60) (60 characters, UTF-8 sequences counting one)?
local function fits(s)
  return select(2, s:gsub("[^\128-\191]", "")) <= 60
end

-- A value its field cannot hold: nil, message, junction.VALIDATION, details.
local function refused(what, v, msg, code, details)
  if v ~= nil or type(msg) ~= "string" or code ~= junction.VALIDATION or type(details) ~= "table" then
    fail(fmt("%s gave %s, %s, %s (want nil, msg, junction.VALIDATION, details)", what, tostring(v),
        tostring(msg), tostring(code)))
  end
end

-- An anchor genre every post is linked to, plus one per string.
local anchor = assert(Genre:create { name = "anchor" })

for idx, s in ipairs(CATALOGUE) do
  local tag = fmt("string %d %s", idx, show(s))
  -- create, read back through every path
  local p = must(tag .. ": Post:create", pcall(Post.create, Post, { text = s }))
  if p then
    nposts = nposts + 1
    if p.text ~= s then fail(tag .. ": create returned text " .. show(p.text)) end
    local ok = must(tag .. ": reload", pcall(p.reload, p))
    if ok and p.text ~= s then fail(tag .. ": reload gave " .. show(p.text)) end
    local again = must(tag .. ": findByPk", pcall(Post.findByPk, Post, p.post_id))
    if again and again.text ~= s then fail(tag .. ": findByPk gave " .. show(again.text)) end
    local raw = must(tag .. ": db:query", pcall(db.query, db,
        "SELECT text, length(CAST(text AS BLOB)) AS n FROM post WHERE post_id = ?", p.post_id))
    if raw and raw[1] then
      if raw[1].text ~= s then fail(tag .. ": stored as " .. show(raw[1].text)) end
      if raw[1].n ~= #s then fail(fmt("%s: stored %s bytes, not %d", tag, tostring(raw[1].n), #s)) end
    end
    -- where, every operator
    local function count(where, want, what)
      local n = must(tag .. ": count " .. what, pcall(Post.count, Post, { where = where }))
      if n ~= nil and want ~= nil and n ~= want then
        fail(fmt("%s: count %s = %s, want %d", tag, what, tostring(n), want))
      end
      return n
    end
    count({ text = s }, 1, "eq")
    count({ text = { eq = s } }, 1, "{eq}")
    count({ text = { ne = s } }, nposts - 1, "{ne}")
    count({ text = { s, "\1no such" } }, 1, "array")
    count({ text = { ["in"] = { s } } }, 1, "{in}")
    count({ text = { notIn = { s } } }, nposts - 1, "{notIn}")
    count({ text = { between = { s, s } } }, 1, "{between}")
    count({ ["or"] = { { text = s }, { post_id = -1 } } }, 1, "or")
    count({ ["and"] = { { text = s }, { post_id = p.post_id } } }, 1, "and")
    count({ ["not"] = { text = s } }, nposts - 1, "not")
    -- LIKE: wildcards in s may match more rows; SQLite refuses patterns over
    -- 50,000 bytes, which must come back as nil, message, code.
    local lok, nl, lmsg, lcode = pcall(Post.count, Post, { where = { text = { like = s } } })
    if not lok then fail(tag .. ": count {like} raised: " .. tostring(nl))
    elseif nl == nil and (type(lmsg) ~= "string" or type(lcode) ~= "number") then
      fail(tag .. ": count {like} gave nil without message and code")
    elseif nl ~= nil and (type(nl) ~= "number" or nl < 1) then fail(tag .. ": like count " .. tostring(nl)) end
    do -- a long in list is bound as one JSON array: s must still be data
      local long = {}
      for k = 1, 150 do long[k] = "\1filler " .. k end
      long[#long + 1] = s
      count({ text = { ["in"] = long } }, 1, "{in} of 151")
      count({ text = { notIn = long } }, nposts - 1, "{notIn} of 151")
    end
    local all = must(tag .. ": findAll", pcall(Post.findAll, Post, { where = { text = s } }))
    if all and (#all ~= 1 or all[1].post_id ~= p.post_id) then fail(tag .. ": findAll found " .. #all) end
    local one = must(tag .. ": findOne", pcall(Post.findOne, Post, { where = { text = s } }))
    if not one or one.post_id ~= p.post_id then fail(tag .. ": findOne found " .. tostring(one and one.post_id)) end
    local foc, created = must(tag .. ": findOrCreate", pcall(Post.findOrCreate, Post, { where = { text = s } }))
    if foc and (created or foc.post_id ~= p.post_id) then fail(tag .. ": findOrCreate created a row") end
    -- update through a where clause and through the instance
    local n = must(tag .. ": Post:update", pcall(Post.update, Post, { text = s .. "!" }, { where = { text = s } }))
    if n ~= nil and n ~= 1 then fail(tag .. ": Post:update changed " .. tostring(n)) end
    must(tag .. ": reload 2", pcall(p.reload, p))
    if p.text ~= s .. "!" then fail(tag .. ": after Post:update text is " .. show(p.text)) end
    p.text = s
    must(tag .. ": save", pcall(p.save, p))
    must(tag .. ": reload 3", pcall(p.reload, p))
    if p.text ~= s then fail(tag .. ": after save text is " .. show(p.text)) end
    must(tag .. ": update", pcall(p.update, p, { text = s }))
    -- genres named by the string, linked, found by where; a name longer than
    -- Genre.name's STRING(60) is a value refused before any SQL
    local g
    if fits(s) then
      g = must(tag .. ": Genre:create", pcall(Genre.create, Genre, { name = s }))
    else
      refused(tag .. ": Genre:create", Genre:create { name = s })
    end
    if g then
      ngenres = ngenres + 1
      if g.name ~= s then fail(tag .. ": genre name " .. show(g.name)) end
      must(tag .. ": setGenres", pcall(p.setGenres, p, { g, anchor.genre_id }))
      nlinks = nlinks + 2
      local has = must(tag .. ": hasGenre", pcall(p.hasGenre, p, g))
      if has ~= true then fail(tag .. ": hasGenre " .. tostring(has)) end
      local gs = must(tag .. ": getGenres where", pcall(p.getGenres, p, { where = { name = s } }))
      if gs and (#gs ~= 1 or gs[1].name ~= s) then fail(tag .. ": getGenres where found " .. #gs) end
      local c = must(tag .. ": countGenres where", pcall(p.countGenres, p, { where = { name = { ["in"] = { s } } } }))
      if c ~= nil and c ~= 1 then fail(tag .. ": countGenres where = " .. tostring(c)) end
      local gp = must(tag .. ": getPosts", pcall(g.getPosts, g, { where = { text = s } }))
      if gp and (#gp ~= 1 or gp[1].text ~= s) then fail(tag .. ": getPosts where found " .. #gp) end
      local byname = must(tag .. ": Genre:findOne", pcall(Genre.findOne, Genre, { where = { name = s } }))
      if not byname or byname.genre_id ~= g.genre_id then fail(tag .. ": Genre:findOne by name") end
      local cg
      if fits(s .. "#2") then
        cg = must(tag .. ": createGenre", pcall(p.createGenre, p, { name = s .. "#2" }))
      else
        refused(tag .. ": createGenre", p:createGenre { name = s .. "#2" })
      end
      if cg then
        ngenres, nlinks = ngenres + 1, nlinks + 1
        if cg.name ~= s .. "#2" then fail(tag .. ": createGenre name " .. show(cg.name)) end
      end
      -- a duplicate name is a constraint failure, not an injection
      local dup, msg, code = Genre:create { name = s }
      if dup ~= nil or type(msg) ~= "string" or code ~= 2067 then
        fail(fmt("%s: duplicate genre name gave %s, %s, %s (want nil, msg, 2067)", tag, tostring(dup),
            tostring(msg), tostring(code)))
      end
    end
    -- destroy by where on a throwaway copy
    local tmp = must(tag .. ": create copy", pcall(Post.create, Post, { text = s .. "\1copy" }))
    if tmp then
      local d = must(tag .. ": destroy where", pcall(Post.destroy, Post, { where = { text = s .. "\1copy" } }))
      if d ~= 1 then fail(tag .. ": destroy where deleted " .. tostring(d)) end
    end
    -- db:query parameters
    local r = must(tag .. ": db:query ?", pcall(db.query, db, "SELECT ? AS v, ?2 AS w", s, s))
    if r and (r[1].v ~= s or r[1].w ~= s) then fail(tag .. ": db:query gave back " .. show(r[1].v)) end
  end

  -- The string where identifiers go: must raise.
  must_raise(tag .. " as order", Post.findAll, Post, { order = s })
  must_raise(tag .. " as order pair", Post.findAll, Post, { order = { { "text", s } } })
  must_raise(tag .. " as attribute", Post.findAll, Post, { attributes = { s } })
  must_raise(tag .. " as where key", Post.findAll, Post, { where = { [s] = 1 } })
  must_raise(tag .. " as operator", Post.findAll, Post, { where = { text = { [s] = 1 } } })
  must_raise(tag .. " as include", Post.findAll, Post, { include = { s } })
  must_raise(tag .. " as create field", Post.create, Post, { text = "t", [s] = 1 })
  must_raise(tag .. " as update field", Post.update, Post, { [s] = 1 }, { where = { post_id = 1 } })
  if p then
    must_raise(tag .. " as instance field", function() p[s] = 1 end)
  end

  -- As a declared identifier: raise, or be quoted so that it works.
  do
    local ok, M = pcall(db.define, db, "Inj" .. idx, { tableName = s, fields = {
      v = { type = junction.types.TEXT } } })
    if ok and M then
      local sok, r1, m1 = pcall(db.sync, db)
      if sok and r1 then
        -- (the name may be that of an existing table, so a failure is allowed)
        local cok, created = pcall(M.create, M, { v = s })
        if cok and created and created.v ~= s then fail(tag .. ": table named by it lost data") end
      end
      local _ = m1
    end
    local ok2, M2 = pcall(db.define, db, "InjF" .. idx, { tableName = "injf" .. idx, fields = {
      [s] = { type = junction.types.TEXT } } })
    if ok2 and M2 then
      local sok, r1 = pcall(db.sync, db)
      if sok and r1 then
        local cok, created = pcall(M2.create, M2, { [s] = "v" })
        if cok and created and created[s] ~= "v" then fail(tag .. ": a field named by it lost data") end
      end
    end
  end

  -- Schema and counts intact.
  local now = schema()
  -- Tables defined from this string may have been added; the seed's must be unchanged.
  for line in SCHEMA:gmatch("[^\n]+") do
    if not now:find(line, 1, true) then fail(tag .. ": schema lost: " .. line:sub(1, 120)) end
  end
  local cp, cg, ct = counts()
  if cp ~= nposts or cg ~= ngenres or ct ~= nlinks then
    fail(fmt("%s: counts post/genre/link %s/%s/%s, want %d/%d/%d", tag, tostring(cp), tostring(cg),
      tostring(ct), nposts, ngenres, nlinks))
    nposts, ngenres, nlinks = cp, cg, ct
  end
  local ic = assert(db:query("PRAGMA integrity_check"))
  if ic[1].integrity_check ~= "ok" then fail(tag .. ": integrity_check " .. tostring(ic[1].integrity_check)) end
  local fk = assert(db:query("PRAGMA foreign_keys"))
  if fk[1].foreign_keys ~= 1 then fail(tag .. ": foreign_keys turned off") end
  for _, d in ipairs(assert(db:query("PRAGMA database_list"))) do
    if d.name ~= "main" and d.name ~= "temp" then fail(tag .. ": a database was attached: " .. tostring(d.name)) end
  end
end

if io.open("/tmp/junction-injected.db", "r") then
  fail("a file /tmp/junction-injected.db was created by an injected ATTACH")
  os.remove("/tmp/junction-injected.db")
end

db:close()
if #failures > 0 then
  for i = 1, math.min(#failures, 40) do print("# " .. failures[i]) end
  print(fmt("FAIL - injection: %d failures over %d strings", #failures, #CATALOGUE))
  os.exit(1)
end
print(fmt("ok - injection strings=%d posts=%d genres=%d links=%d (%s)", #CATALOGUE, nposts, ngenres, nlinks, _VERSION))
