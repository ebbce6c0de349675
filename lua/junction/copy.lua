-- junction.copy: the rows of one database into another, for moving an app
-- from SQLite to PostgreSQL (or back, or between two files).
--
--   local counts = assert(junction.copy(from_db, to_db))
--   local counts = assert(junction.copy(from_db, to_db, { tables = { "post", "genre" } }))
--
-- The destination has the tables already (db:sync() or the migrations, run
-- on it first) and they are empty. Every table of the source (its own,
-- not SQLite's sqlite_* nor junction_migrations), or the ones opts.tables
-- names, is copied into the table of the same name: parents before the
-- tables that reference them (the destination's foreign keys give the
-- order), rows in primary-key order, all of it in one transaction on the
-- destination (and one read transaction on the source, so the rows are one
-- snapshot). Then every identity or AUTOINCREMENT counter of the
-- destination is moved past the largest key copied (and past the source's
-- own high-water mark, where SQLite keeps one), so that the inserts after
-- the move do not collide with the copied keys.
--
-- The table of a model with a schema option ("archive") is "archive.users" in
-- the source's list and in opts.tables: on SQLite that is its one name, on
-- PostgreSQL the table "archive"."users" (so a SQLite file's schema tables
-- land in their PostgreSQL schemas). A PostgreSQL source lists the tables of
-- its current schema only: name the others in opts.tables.
--
-- Returns a table name -> number of rows copied, or nil, message, code
-- (nothing is written then). A mistake in the call raises.
local junction = require "junction"

local BATCH = 500   -- rows read and written per round

local function raise(fmt, ...)
  error(string.format(fmt, ...), 3)
end

local function quote(name)
  return '"' .. name:gsub('"', '""') .. '"'
end

local function is_pg(db)
  return db:engine() == "postgres"
end

-- A table is named by one string on both engines: "users", or for the
-- table of a model with schema = "archive", "archive.users" (junction's
-- identifiers hold no dot). On SQLite that is the table's one name; on
-- PostgreSQL the table "archive"."users" (docs/API.md "Schemas"), and a
-- name without a dot is in the search_path. Returns the table as SQL names
-- it, then (PostgreSQL) its schema or nil and its bare name.
local function qname(db, tbl)
  local schema, bare = tbl:match("^([^.]+)%.(.+)$")
  if not is_pg(db) or not schema then return quote(tbl), nil, tbl end
  return quote(schema) .. "." .. quote(bare), schema, bare
end

-- a failure inside the transactions: carried out by junction.abort
local function fail(msg, code)
  junction.abort(msg, code or junction.SCHEMA)
end

local function must(db, sql, ...)
  local rows, msg, code = db:query(sql, ...)
  if not rows then fail(msg, code) end
  return rows
end

-- {====== each engine's catalog

-- The database's own tables, sorted by name.
local function tables(db)
  local sql = is_pg(db)
    and "SELECT table_name AS name FROM information_schema.tables WHERE table_schema = current_schema() " ..
        "AND table_type = 'BASE TABLE'"
    or "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'"
  local out = {}
  for _, r in ipairs(must(db, sql)) do
    if r.name ~= "junction_migrations" then out[#out + 1] = r.name end
  end
  table.sort(out)
  return out
end

-- Does the database hold the table?
local function exists(db, tbl)
  if is_pg(db) then
    return must(db, "SELECT 1 AS x WHERE to_regclass(?::text) IS NOT NULL", (qname(db, tbl)))[1] ~= nil
  end
  return must(db, "SELECT 1 AS x FROM sqlite_master WHERE type = 'table' AND name = ?", tbl)[1] ~= nil
end

-- The columns of a table in order: { name =, pk = position in the key or 0,
-- blob = true for BLOB/bytea, identity = true for a PostgreSQL identity }.
local function columns(db, tbl)
  local out = {}
  if is_pg(db) then
    local pk = {}
    local q, schema, bare = qname(db, tbl)
    if not exists(db, tbl) then return out end
    for _, r in ipairs(must(db, "SELECT a.attname AS name, array_position(i.indkey::int2[], a.attnum) AS pos " ..
        "FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey) " ..
        "WHERE i.indisprimary AND i.indrelid = (?::text)::regclass", q)) do
      pk[r.name] = r.pos
    end
    local cols_sql = "SELECT column_name AS name, data_type AS ty, is_identity AS ident, " ..
        "column_default AS dflt FROM information_schema.columns " ..
        "WHERE table_schema = %s AND table_name = ? ORDER BY ordinal_position"
    local rows = schema and must(db, cols_sql:format("?"), schema, bare)
                 or must(db, cols_sql:format("current_schema()"), bare)
    for _, r in ipairs(rows) do
      out[#out + 1] = { name = r.name, pk = pk[r.name] or 0, blob = r.ty == "bytea",
                        identity = r.ident == "YES" or (type(r.dflt) == "string" and r.dflt:find("^nextval%(") ~= nil) }
    end
  else
    for _, r in ipairs(must(db, "SELECT name, type, pk FROM pragma_table_info(?) ORDER BY cid", tbl)) do
      out[#out + 1] = { name = r.name, pk = r.pk, blob = (r.type or ""):upper():find("BLOB", 1, true) ~= nil }
    end
  end
  return out
end

-- The tables a table references (itself left out), named as qname takes them.
local function parents(db, tbl)
  local sql = is_pg(db)
    and "SELECT DISTINCT CASE WHEN n.nspname = current_schema() THEN p.relname " ..
        "ELSE n.nspname || '.' || p.relname END AS name FROM pg_constraint c " ..
        "JOIN pg_class p ON p.oid = c.confrelid JOIN pg_namespace n ON n.oid = p.relnamespace " ..
        "WHERE c.contype = 'f' AND c.conrelid = (?::text)::regclass"
    or "SELECT DISTINCT \"table\" AS name FROM pragma_foreign_key_list(?)"
  local out = {}
  for _, r in ipairs(must(db, sql, (qname(db, tbl)))) do
    if r.name ~= tbl then out[#out + 1] = r.name end
  end
  return out
end

-- SQLite's AUTOINCREMENT high-water mark of a table, or nil.
local function high_water(db, tbl)
  if is_pg(db) then return nil end
  local has = must(db, "SELECT 1 AS x FROM sqlite_master WHERE type = 'table' AND name = 'sqlite_sequence'")
  if not has[1] then return nil end
  local r = must(db, "SELECT seq FROM sqlite_sequence WHERE name = ?", tbl)[1]
  return r and r.seq
end

-- }======

-- The tables in an order where every table comes after the ones it
-- references (ties by name); tables in a cycle of references come last, in
-- name order (their rows must then not reference each other).
local function fk_order(db, list)
  local wanted, deps = {}, {}
  for _, t in ipairs(list) do wanted[t] = true end
  for _, t in ipairs(list) do
    deps[t] = {}
    for _, p in ipairs(parents(db, t)) do
      if wanted[p] then deps[t][#deps[t] + 1] = p end
    end
  end
  local done, out = {}, {}
  local progress = true
  while progress do
    progress = false
    for _, t in ipairs(list) do
      if not done[t] then
        local ready = true
        for _, p in ipairs(deps[t]) do
          if not done[p] then ready = false end
        end
        if ready then
          done[t] = true
          out[#out + 1] = t
          progress = true
        end
      end
    end
  end
  for _, t in ipairs(list) do
    if not done[t] then out[#out + 1] = t end
  end
  return out
end

-- Lowercase hex of a string's bytes (bytea's input: decode(?, 'hex')).
local function hex(s)
  return (s:gsub(".", function(ch) return string.format("%02x", ch:byte()) end))
end

-- Copies one table; returns the number of rows.
local function copy_table(from, to, tbl, src_cols, dst_cols)
  local dst_by = {}
  for _, c in ipairs(dst_cols) do dst_by[c.name] = c end
  local names, marks, order = {}, {}, {}
  local blobs = {}
  for i, c in ipairs(src_cols) do
    local d = dst_by[c.name]
    if not d then
      fail(string.format("junction.copy: table '%s' of the destination has no column '%s' (the source has): " ..
                         "run its migrations or db:sync() first", tbl, c.name))
    end
    names[i] = quote(c.name)
    if d.blob then
      blobs[i] = true
      marks[i] = is_pg(to) and "decode(?, 'hex')" or "CAST(? AS BLOB)"
    else
      marks[i] = "?"
    end
    if c.pk > 0 then order[c.pk] = quote(c.name) end
  end
  if #order == 0 then
    if is_pg(from) then
      for i = 1, #names do order[i] = names[i] end
    else
      order[1] = "rowid"
    end
  end
  local n = #src_cols
  local select_sql = string.format("SELECT %s FROM %s ORDER BY %s LIMIT %d OFFSET ?",
    table.concat(names, ", "), (qname(from, tbl)), table.concat(order, ", "), BATCH)
  local insert_sql = string.format("INSERT INTO %s (%s) VALUES (%s)",
    (qname(to, tbl)), table.concat(names, ", "), table.concat(marks, ", "))
  local count = 0
  while true do
    local rows = must(from, select_sql, count)
    for _, row in ipairs(rows) do
      local vals = {}
      for i, c in ipairs(src_cols) do
        local v = row[c.name]
        if v == nil then
          vals[i] = nil
        elseif blobs[i] and is_pg(to) then
          vals[i] = hex(tostring(v))
        elseif type(v) == "boolean" then
          vals[i] = v and 1 or 0
        else
          vals[i] = v
        end
      end
      local ok, msg, code = to:query(insert_sql, (table.unpack or unpack)(vals, 1, n))
      if not ok then fail(string.format("junction.copy: %s: %s", tbl, tostring(msg)), code) end
    end
    count = count + #rows
    if #rows < BATCH then break end
  end
  return count
end

-- Moves the destination's key counter of tbl past the keys copied (and the
-- source's high-water mark).
local function reset_counter(from, to, tbl, dst_cols)
  local floor = high_water(from, tbl)
  if is_pg(to) then
    for _, c in ipairs(dst_cols) do
      if c.identity then
        local mx = must(to, string.format("SELECT max(%s) AS m FROM %s", quote(c.name), (qname(to, tbl))))[1].m
        local top = mx
        if floor and (top == nil or tonumber(floor) > tonumber(top)) then top = floor end
        if top ~= nil then
          must(to, "SELECT setval(pg_get_serial_sequence(?, ?), ?) AS v", (qname(to, tbl)), c.name, top)
        end
      end
    end
  elseif floor then
    local has = must(to, "SELECT 1 AS x FROM sqlite_master WHERE type = 'table' AND name = 'sqlite_sequence'")
    if has[1] then
      local r = must(to, "SELECT seq FROM sqlite_sequence WHERE name = ?", tbl)[1]
      if r and tonumber(r.seq) < tonumber(floor) then
        must(to, "UPDATE sqlite_sequence SET seq = ? WHERE name = ?", floor, tbl)
      elseif not r then
        must(to, "INSERT INTO sqlite_sequence (name, seq) VALUES (?, ?)", tbl, floor)
      end
    end
  end
end

local function is_conn(v)
  return type(v) == "userdata" and pcall(function() return v:engine() end)
end

local copy_opts = { tables = true }

return function(from, to, opts)
  if not is_conn(from) then raise("junction.copy: bad argument #1 (connection expected, got %s)", type(from)) end
  if not is_conn(to) then raise("junction.copy: bad argument #2 (connection expected, got %s)", type(to)) end
  if rawequal(from, to) then raise("junction.copy: bad argument #2 (the same connection as #1)") end
  local only
  if opts ~= nil then
    if type(opts) ~= "table" then raise("junction.copy: bad argument #3 (table expected, got %s)", type(opts)) end
    -- (read raw: a metatable on an option table never runs in the middle of the copy)
    for k in next, opts do
      if not copy_opts[k] then raise("junction.copy: bad option '%s' (unknown key)", tostring(k)) end
    end
    local t = rawget(opts, "tables")
    if t ~= nil then
      if type(t) ~= "table" then raise("junction.copy: bad option 'tables' (array of table names expected)") end
      only = {}
      local i = 1
      while rawget(t, i) ~= nil do
        if type(rawget(t, i)) ~= "string" then
          raise("junction.copy: bad option 'tables' (#%d: table name expected)", i)
        end
        only[i] = rawget(t, i)
        i = i + 1
      end
      for k in next, t do
        if only[k] == nil then
          raise("junction.copy: bad option 'tables' (a list expected, but it has the key '%s')", tostring(k))
        end
      end
    end
  end
  local counts = {}
  -- one snapshot of the source (a deferred BEGIN takes no write lock on SQLite)
  local ok, msg, code = from:transaction({ mode = "deferred" }, function()
    return to:transaction(function()
      -- SQLite checks the foreign keys at COMMIT: a table that references
      -- itself (or a cycle) may arrive in any order
      if not is_pg(to) then must(to, "PRAGMA defer_foreign_keys = ON") end
      local list = only or tables(from)
      for _, t in ipairs(list) do
        if not exists(to, t) then
          fail(string.format("junction.copy: the destination has no table '%s': run its migrations or " ..
                             "db:sync() first", t))
        end
        if must(to, "SELECT count(*) AS n FROM " .. (qname(to, t)))[1].n > 0 then
          fail(string.format("junction.copy: table '%s' of the destination has rows already " ..
                             "(the copy fills empty tables)", t))
        end
      end
      for _, t in ipairs(fk_order(to, list)) do
        local src_cols = columns(from, t)
        if #src_cols == 0 then fail(string.format("junction.copy: the source has no table '%s'", t)) end
        local dst_cols = columns(to, t)
        counts[t] = copy_table(from, to, t, src_cols, dst_cols)
        reset_counter(from, to, t, dst_cols)
      end
      return true
    end)
  end)
  if not ok then return nil, msg, code end
  return counts
end
