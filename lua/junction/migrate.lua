-- junction.migrate: schemas that evolve, one recorded step at a time.
--
--   junction.migrate(db, "migrations")         run what has not run yet, in order
--   junction.rollback(db, "migrations", n)     undo the last n (default 1)
--   junction.migrationStatus(db, "migrations") what ran, what is pending
--
-- A migration is a table { up = function(schema, db) ... end, down = ... } or
-- just the up function.  They come from a directory (one NAME.lua file each,
-- returning the migration) or from a Lua table (an array of { name = ..., up
-- = ..., down = ... }, or name -> migration).  Names order them: a leading
-- number (001_posts, 20261130120000_tags) by its value, then the rest by text.
--
-- Each migration runs in a transaction of its own with foreign keys switched
-- off around it (SQLite's table-rebuild procedure needs that, and the switch
-- does nothing inside a transaction), checked with PRAGMA foreign_key_check
-- before it commits, and recorded in the table junction_migrations.  A
-- migration that fails rolls back whole and stops the run: nothing is ever
-- half-applied.
local M = {}

local RECORDS = "junction_migrations"

-- Raise a mistake at the first caller outside this file (the migration).
local HERE = debug.getinfo(1, "S").source
local function raise(fmt, ...)
  local level = 2
  while true do
    local info = debug.getinfo(level, "S")
    if not info or info.source ~= HERE then break end
    level = level + 1
  end
  error(string.format(fmt, ...), level)
end

-- {====== SQL text

local function quote(name)
  return '"' .. name:gsub('"', '""') .. '"'
end

local function literal(v)
  if type(v) == "number" then
    if v ~= v or v == math.huge or v == -math.huge then return nil end
    return string.format("%.17g", v)
  elseif type(v) == "boolean" then return v and "1" or "0"
  elseif type(v) == "string" then return "'" .. v:gsub("'", "''") .. "'"
  end
  return nil
end

local actions = { cascade = true, ["set null"] = true, ["set default"] = true, restrict = true,
                  ["no action"] = true }

local column_keys = { type = true, allowNull = true, primaryKey = true, autoIncrement = true,
                      unique = true, defaultValue = true, references = true, onDelete = true,
                      onUpdate = true }

-- The SQL of a junction type (junction.types.INTEGER, T.STRING(60), ...).
local function type_sql(t, ctx)
  local ok, sql = pcall(function() return t.sql end)
  if not ok or type(sql) ~= "string" then
    raise("%s: bad 'type' (a junction type expected, such as junction.types.INTEGER, got %s)", ctx, type(t))
  end
  return sql
end

-- "name TYPE [PRIMARY KEY [AUTOINCREMENT]] [NOT NULL] [UNIQUE] [DEFAULT x] [REFERENCES ...]"
local function column_sql(name, spec, ctx)
  if type(name) ~= "string" or name == "" then raise("%s: bad column name (non-empty string expected)", ctx) end
  if type(spec) ~= "table" then raise("%s: bad column '%s' (table expected, got %s)", ctx, name, type(spec)) end
  for k in pairs(spec) do
    if not column_keys[k] then raise("%s: bad option '%s' for column '%s' (unknown key)", ctx, tostring(k), name) end
  end
  local parts = { quote(name), type_sql(rawget(spec, "type"), ctx .. ": column '" .. name .. "'") }
  if spec.primaryKey then
    parts[#parts + 1] = "PRIMARY KEY"
    if spec.autoIncrement then parts[#parts + 1] = "AUTOINCREMENT" end
  end
  if spec.allowNull == false then parts[#parts + 1] = "NOT NULL" end
  if spec.unique == true then parts[#parts + 1] = "UNIQUE" end
  if spec.defaultValue ~= nil then
    local lit = literal(spec.defaultValue)
    if not lit then raise("%s: column '%s': defaultValue must be a string, number or boolean", ctx, name) end
    parts[#parts + 1] = "DEFAULT " .. lit
  end
  local ref = spec.references
  if ref ~= nil then
    if type(ref) ~= "table" or type(ref.model) ~= "string" or type(ref.key) ~= "string" then
      raise("%s: column '%s': references must be { model = table, key = column }", ctx, name)
    end
    parts[#parts + 1] = "REFERENCES " .. quote(ref.model) .. " (" .. quote(ref.key) .. ")"
    for _, k in ipairs { "onDelete", "onUpdate" } do
      local a = spec[k]
      if a ~= nil then
        if type(a) ~= "string" or not actions[a:lower()] then
          raise("%s: column '%s': bad %s '%s' (cascade, set null, set default, restrict or no action)",
                ctx, name, k, tostring(a))
        end
        parts[#parts + 1] = (k == "onDelete" and "ON DELETE " or "ON UPDATE ") .. a:upper()
      end
    end
  end
  return table.concat(parts, " ")
end

-- Column names of a spec table, sorted (a Lua table keeps no order), or in the
-- order of an array of { name, spec } pairs.
local function columns_in_order(columns, ctx)
  if type(columns) ~= "table" then raise("%s: bad columns (table expected, got %s)", ctx, type(columns)) end
  local list = {}
  if columns[1] ~= nil then
    for i, pair in ipairs(columns) do
      if type(pair) ~= "table" or type(pair[1]) ~= "string" then
        raise("%s: bad column #%d ({ name, spec } expected)", ctx, i)
      end
      list[#list + 1] = { pair[1], pair[2] }
    end
  else
    for name, spec in pairs(columns) do list[#list + 1] = { name, spec } end
    table.sort(list, function(a, b) return a[1] < b[1] end)
  end
  if #list == 0 then raise("%s: no columns", ctx) end
  return list
end

-- }======

-- {====== Reading a table back (for the rebuild procedure)

local swap   -- defined below, used by the rebuilds

local function must(db, sql, ...)
  local rows, msg, code = db:query(sql, ...)
  if not rows then error({ msg = msg, code = code }, 0) end
  return rows
end

local function run(db, sql)
  local ok, msg, code = db:exec(sql)
  if not ok then error({ msg = msg, code = code }, 0) end
end

-- The table's columns as column definitions SQLite gave back, its foreign
-- keys, its unique constraints and the SQL of its other indexes and triggers.
local function describe(db, tbl, ctx)
  local cols = must(db, "SELECT * FROM pragma_table_info(?) ORDER BY cid", tbl)
  if #cols == 0 then raise("%s: no table '%s'", ctx, tbl) end
  local master = must(db, "SELECT type, name, sql FROM sqlite_master WHERE tbl_name = ? AND sql IS NOT NULL", tbl)
  local d = { columns = cols, fks = {}, uniques = {}, extra = {}, autoinc = false }
  for _, r in ipairs(master) do
    if r.type == "table" then
      d.autoinc = r.sql:upper():find("AUTOINCREMENT", 1, true) ~= nil
    else
      d.extra[#d.extra + 1] = r
    end
  end
  local fks = must(db, "SELECT * FROM pragma_foreign_key_list(?) ORDER BY id, seq", tbl)
  for _, r in ipairs(fks) do
    local fk = d.fks[r.id + 1]
    if not fk then
      fk = { table = r.table, from = {}, to = {}, on_delete = r.on_delete, on_update = r.on_update }
      d.fks[r.id + 1] = fk
    end
    fk.from[#fk.from + 1] = r.from
    fk.to[#fk.to + 1] = r.to
  end
  for _, ix in ipairs(must(db, "SELECT * FROM pragma_index_list(?)", tbl)) do
    if ix.origin == "u" then
      local names = {}
      for _, c in ipairs(must(db, "SELECT name FROM pragma_index_info(?) ORDER BY seqno", ix.name)) do
        names[#names + 1] = c.name
      end
      d.uniques[#d.uniques + 1] = names
    end
  end
  return d
end

local function quoted_list(names)
  local t = {}
  for i, n in ipairs(names) do t[i] = quote(n) end
  return table.concat(t, ", ")
end

local function contains(list, name)
  for _, v in ipairs(list) do if v == name then return true end end
  return false
end

-- The CREATE TABLE text of the table described by d, with column `name`
-- left out (drop) or defined by `newdef` (change).
local function table_sql(tbl, d, name, newdef)
  local defs, pk = {}, {}
  for _, c in ipairs(d.columns) do
    if c.pk > 0 then pk[c.pk] = c.name end
  end
  local single_pk = #pk == 1
  for _, c in ipairs(d.columns) do
    if c.name == name then
      if newdef then defs[#defs + 1] = newdef end
    else
      local t = { quote(c.name) }
      if c.type ~= "" then t[#t + 1] = c.type end
      if single_pk and c.pk == 1 then
        t[#t + 1] = "PRIMARY KEY"
        if d.autoinc then t[#t + 1] = "AUTOINCREMENT" end
      end
      if c.notnull == 1 then t[#t + 1] = "NOT NULL" end
      if c.dflt_value ~= nil then t[#t + 1] = "DEFAULT " .. c.dflt_value end
      defs[#defs + 1] = table.concat(t, " ")
    end
  end
  if #pk > 1 and not contains(pk, name) then defs[#defs + 1] = "PRIMARY KEY (" .. quoted_list(pk) .. ")" end
  for _, u in ipairs(d.uniques) do
    if not (newdef == nil and contains(u, name)) then defs[#defs + 1] = "UNIQUE (" .. quoted_list(u) .. ")" end
  end
  for _, fk in ipairs(d.fks) do
    if not (newdef == nil and contains(fk.from, name)) then
      defs[#defs + 1] = string.format("FOREIGN KEY (%s) REFERENCES %s (%s) ON DELETE %s ON UPDATE %s",
        quoted_list(fk.from), quote(fk.table), quoted_list(fk.to), fk.on_delete, fk.on_update)
    end
  end
  return "CREATE TABLE " .. quote(tbl) .. " (" .. table.concat(defs, ", ") .. ")"
end

-- Drop table tbl and give the rebuilt table tmp its name, keeping the
-- AUTOINCREMENT high-water mark (dropping the table drops its sqlite_sequence
-- row, and a key used before would be handed out again).
swap = function(db, tbl, tmp, d)
  local seq = d.autoinc and must(db, "SELECT seq FROM sqlite_sequence WHERE name = ?", tbl)[1]
  run(db, "DROP TABLE " .. quote(tbl))
  run(db, string.format("ALTER TABLE %s RENAME TO %s", quote(tmp), quote(tbl)))
  if seq then
    must(db, "DELETE FROM sqlite_sequence WHERE name = ?", tbl)
    must(db, "INSERT INTO sqlite_sequence (name, seq) VALUES (?, ?)", tbl, seq.seq)
  end
end

-- SQLite's documented procedure for a change ALTER TABLE cannot make: a new
-- table, the rows copied, the old dropped, the new renamed, the indexes and
-- triggers made again.  Runs inside the migration's transaction, with
-- foreign keys off (the runner sees to both).  Column `name` is dropped
-- (newdef nil), changed to newdef, or, with added, appended as newdef (the
-- rows get its default, or NULL).
local function rebuild(db, tbl, d, name, newdef, added)
  local tmp = tbl .. "__junction_new"
  local keep = {}   -- the columns whose values are copied
  for _, c in ipairs(d.columns) do
    if c.name ~= name or newdef then keep[#keep + 1] = c.name end
  end
  if added then d.columns[#d.columns + 1] = { name = name, pk = 0, notnull = 0, type = "" } end
  run(db, table_sql(tmp, d, name, newdef))
  run(db, string.format("INSERT INTO %s (%s) SELECT %s FROM %s", quote(tmp), quoted_list(keep),
                        quoted_list(keep), quote(tbl)))
  swap(db, tbl, tmp, d)
  for _, r in ipairs(d.extra) do
    -- an index or trigger on a dropped column goes with it
    local mentions = newdef == nil and r.sql:find('"' .. name:gsub('"', '""') .. '"', 1, true)
    if not mentions then run(db, r.sql) end
  end
end

-- }======

-- {====== The schema helper a migration gets

local Schema = {}
Schema.__index = Schema

local function new_schema(db)
  return setmetatable({ db = db }, Schema)
end

local function check_name(v, what, ctx)
  if type(v) ~= "string" or v == "" then
    raise("%s: bad %s (non-empty string expected, got %s)", ctx, what, type(v))
  end
end

--- createTable(name, columns, opts): columns is name -> spec (the spec of a
-- model field: type, allowNull, primaryKey, autoIncrement, unique,
-- defaultValue, references, onDelete, onUpdate) or an array of { name, spec }
-- pairs (the columns in that order); opts.uniqueKeys = { {"a", "b"}, ... }.
function Schema:createTable(name, columns, opts)
  local ctx = "schema:createTable"
  check_name(name, "table name", ctx)
  local defs = {}
  for _, pair in ipairs(columns_in_order(columns, ctx)) do
    defs[#defs + 1] = column_sql(pair[1], pair[2], ctx)
  end
  if opts ~= nil then
    if type(opts) ~= "table" then raise("%s: bad options (table expected, got %s)", ctx, type(opts)) end
    for k in pairs(opts) do
      if k ~= "uniqueKeys" then raise("%s: bad option '%s' (unknown key)", ctx, tostring(k)) end
    end
    for _, u in ipairs(opts.uniqueKeys or {}) do defs[#defs + 1] = "UNIQUE (" .. quoted_list(u) .. ")" end
  end
  run(self.db, "CREATE TABLE " .. quote(name) .. " (" .. table.concat(defs, ", ") .. ")")
end

function Schema:dropTable(name)
  check_name(name, "table name", "schema:dropTable")
  run(self.db, "DROP TABLE " .. quote(name))
end

function Schema:renameTable(from, to)
  check_name(from, "table name", "schema:renameTable")
  check_name(to, "new table name", "schema:renameTable")
  run(self.db, string.format("ALTER TABLE %s RENAME TO %s", quote(from), quote(to)))
end

--- addColumn(table, name, spec): ALTER TABLE ADD COLUMN where SQLite allows
-- it, else the table is rebuilt with the new column (a UNIQUE or key column,
-- NOT NULL without a default on a table with rows).
function Schema:addColumn(tbl, name, spec)
  local ctx = "schema:addColumn"
  check_name(tbl, "table name", ctx)
  local def = column_sql(name, spec, ctx)
  local d = describe(self.db, tbl, ctx)
  for _, c in ipairs(d.columns) do
    if c.name == name then raise("%s: table '%s' has a column '%s' already", ctx, tbl, name) end
  end
  local ok = self.db:exec("ALTER TABLE " .. quote(tbl) .. " ADD COLUMN " .. def)
  if not ok then rebuild(self.db, tbl, d, name, def, true) end
end

--- removeColumn(table, name): the column and the indexes, unique constraints
-- and foreign keys on it go; every other row value stays.
function Schema:removeColumn(tbl, name)
  local ctx = "schema:removeColumn"
  check_name(tbl, "table name", ctx)
  check_name(name, "column name", ctx)
  local d = describe(self.db, tbl, ctx)
  local found = false
  for _, c in ipairs(d.columns) do
    if c.name == name then
      found = true
      if c.pk > 0 then raise("%s: '%s' is the primary key of '%s'", ctx, name, tbl) end
    end
  end
  if not found then raise("%s: table '%s' has no column '%s'", ctx, tbl, name) end
  rebuild(self.db, tbl, d, name, nil)
end

function Schema:renameColumn(tbl, from, to)
  local ctx = "schema:renameColumn"
  check_name(tbl, "table name", ctx)
  check_name(from, "column name", ctx)
  check_name(to, "new column name", ctx)
  run(self.db, string.format("ALTER TABLE %s RENAME COLUMN %s TO %s", quote(tbl), quote(from), quote(to)))
end

--- changeColumn(table, name, spec): the column takes the new definition
-- (type, NOT NULL, default, reference) by a rebuild of the table; its values
-- are copied as they are.
function Schema:changeColumn(tbl, name, spec)
  local ctx = "schema:changeColumn"
  check_name(tbl, "table name", ctx)
  local def = column_sql(name, spec, ctx)
  local d = describe(self.db, tbl, ctx)
  local found = false
  for _, c in ipairs(d.columns) do if c.name == name then found = true end end
  if not found then raise("%s: table '%s' has no column '%s'", ctx, tbl, name) end
  rebuild(self.db, tbl, d, name, def)
end

--- addIndex(table, fields, opts): opts.unique, opts.name (default
-- table_field1_field2_idx), opts.where (SQL text of a partial index, written
-- by the migration's author).
function Schema:addIndex(tbl, fields, opts)
  local ctx = "schema:addIndex"
  check_name(tbl, "table name", ctx)
  if type(fields) == "string" then fields = { fields } end
  if type(fields) ~= "table" or #fields == 0 then raise("%s: bad fields (array of column names expected)", ctx) end
  opts = opts or {}
  if type(opts) ~= "table" then raise("%s: bad options (table expected, got %s)", ctx, type(opts)) end
  for k in pairs(opts) do
    if k ~= "unique" and k ~= "name" and k ~= "where" then
      raise("%s: bad option '%s' (unknown key)", ctx, tostring(k))
    end
  end
  local name = opts.name or (tbl .. "_" .. table.concat(fields, "_") .. "_idx")
  local sql = string.format("CREATE %sINDEX %s ON %s (%s)", opts.unique and "UNIQUE " or "", quote(name),
                            quote(tbl), quoted_list(fields))
  if opts.where ~= nil then
    if type(opts.where) ~= "string" then raise("%s: bad option 'where' (SQL text expected)", ctx) end
    sql = sql .. " WHERE " .. opts.where
  end
  run(self.db, sql)
end

function Schema:removeIndex(name)
  check_name(name, "index name", "schema:removeIndex")
  run(self.db, "DROP INDEX " .. quote(name))
end

--- exec(sql): any other SQL, as db:exec, failing the migration on error.
function Schema:exec(sql)
  run(self.db, sql)
end

M.Schema = Schema

-- }======

-- {====== Migrations: listing, ordering, recording

local function sort_key_less(a, b)
  local na, nb = tonumber(a:match("^(%d+)")), tonumber(b:match("^(%d+)"))
  if na and nb and na ~= nb then return na < nb end
  if (na == nil) ~= (nb == nil) then return na ~= nil end
  return a < b
end

local function as_migration(name, v, ctx)
  if type(v) == "function" then return { name = name, up = v } end
  if type(v) ~= "table" or type(v.up) ~= "function" then
    raise("%s: migration '%s' must be a function or a table with an 'up' function", ctx, name)
  end
  if v.down ~= nil and type(v.down) ~= "function" then
    raise("%s: migration '%s': 'down' must be a function", ctx, name)
  end
  return { name = name, up = v.up, down = v.down }
end

-- The migrations of a directory or a table, in order.
-- names_only: a directory's files are listed, not run (status needs no more).
local function load_migrations(source, ctx, names_only)
  local list = {}
  if type(source) == "string" then
    local probe = io.open(source, "r")
    if not probe then raise("%s: no directory '%s'", ctx, source) end
    probe:close()
    for _, file in ipairs(require("junction.loader").lua_files(source, ctx)) do
      local name = file:gsub("%.lua$", "")
      if names_only then
        list[#list + 1] = { name = name }
      else
        local chunk, err = loadfile(source .. "/" .. file)
        if not chunk then raise("%s: %s", ctx, err) end
        list[#list + 1] = as_migration(name, chunk(), ctx)
      end
    end
  elseif type(source) == "table" then
    if source[1] ~= nil then
      for i, m in ipairs(source) do
        if type(m) ~= "table" or type(m.name) ~= "string" then
          raise("%s: migration #%d needs a 'name'", ctx, i)
        end
        list[#list + 1] = as_migration(m.name, m, ctx)
      end
    else
      for name, m in pairs(source) do
        if type(name) ~= "string" then raise("%s: migration names must be strings", ctx) end
        list[#list + 1] = as_migration(name, m, ctx)
      end
    end
  else
    raise("%s: bad migrations (directory or table expected, got %s)", ctx, type(source))
  end
  table.sort(list, function(a, b) return sort_key_less(a.name, b.name) end)
  for i = 2, #list do
    if list[i].name == list[i - 1].name then raise("%s: two migrations named '%s'", ctx, list[i].name) end
  end
  return list
end

local function ensure_records(db)
  return db:exec("CREATE TABLE IF NOT EXISTS " .. RECORDS ..
                 " (name TEXT PRIMARY KEY NOT NULL, applied_at TEXT NOT NULL)")
end

-- name -> applied_at of every recorded migration, and the names newest first.
local function applied(db)
  local rows, msg, code = db:query("SELECT name, applied_at FROM " .. RECORDS .. " ORDER BY applied_at, rowid")
  if not rows then return nil, msg, code end
  local map, order = {}, {}
  for _, r in ipairs(rows) do map[r.name] = r.applied_at; order[#order + 1] = r.name end
  return map, order
end

-- Run step(schema, db) in a transaction of its own with foreign keys off;
-- check the foreign keys, record (or unrecord) the migration, commit.
local function run_one(db, m, step, record_sql, ctx)
  local fk = db:query("PRAGMA foreign_keys")
  local fk_on = fk and fk[1] and fk[1].foreign_keys == 1
  if fk_on then
    db:exec("PRAGMA foreign_keys = OFF")
    local now = db:query("PRAGMA foreign_keys")
    if now and now[1] and now[1].foreign_keys == 1 then
      raise("%s: cannot run inside a transaction (foreign keys cannot be switched off there)", ctx)
    end
  end
  local fine, ok, msg, code = pcall(db.transaction, db, function()
    local fine, err, msg2, code2 = pcall(step, new_schema(db), db)
    if not fine then
      if type(err) == "table" and err.msg then
        require("junction").abort(m.name .. ": " .. tostring(err.msg), err.code)
      end
      error(err, 0)
    end
    if err == nil and msg2 ~= nil then   -- the step returned nil, err: a failure
      require("junction").abort(m.name .. ": " .. tostring(msg2), code2)
    end
    local bad = must(db, "PRAGMA foreign_key_check")
    if #bad > 0 then
      require("junction").abort(string.format("%s: foreign key check failed: %d row(s), first in table %s",
        m.name, #bad, tostring(bad[1].table)), 787)
    end
    local r, rmsg, rcode = db:query(record_sql, m.name)
    if not r then require("junction").abort(m.name .. ": " .. tostring(rmsg), rcode) end
    return true
  end)
  if fk_on then db:exec("PRAGMA foreign_keys = ON") end
  if not fine then error(ok, 0) end   -- a mistake in the migration: raised, after the rollback
  return ok, msg, code
end

--- junction.migrate(db, source): runs every migration not yet recorded, in
-- order.  Returns the array of names it ran (empty when none were pending),
-- or nil, message, code when one failed: that one is rolled back whole, the
-- ones before it stay applied and recorded, the ones after it do not run.
function M.migrate(db, source)
  local ctx = "junction.migrate"
  local list = load_migrations(source, ctx)
  local ok, msg, code = ensure_records(db)
  if not ok then return nil, msg, code end
  local done
  done, msg, code = applied(db)
  if not done then return nil, msg, code end
  local ran = {}
  for _, m in ipairs(list) do
    if not done[m.name] then
      ok, msg, code = run_one(db, m, m.up,
        "INSERT INTO " .. RECORDS .. " (name, applied_at) VALUES (?, strftime('%Y-%m-%d %H:%M:%f', 'now'))", ctx)
      if not ok then return nil, msg, code end
      ran[#ran + 1] = m.name
    end
  end
  return ran
end

--- junction.rollback(db, source, n): runs the `down` of the last n applied
-- migrations (default 1), newest first.  Returns the array of names undone,
-- or nil, message, code (a migration without `down` cannot be undone).
function M.rollback(db, source, n)
  local ctx = "junction.rollback"
  if n == nil then n = 1 end
  if type(n) ~= "number" or n < 1 or n % 1 ~= 0 then raise("%s: bad count (positive integer expected)", ctx) end
  local by_name = {}
  for _, m in ipairs(load_migrations(source, ctx)) do by_name[m.name] = m end
  local ok, msg, code = ensure_records(db)
  if not ok then return nil, msg, code end
  local _, order = applied(db)
  if not order then return nil, msg, code end
  local undone = {}
  for i = #order, math.max(1, #order - n + 1), -1 do
    local m = by_name[order[i]]
    if not m then return nil, string.format("%s: migration '%s' ran but is not in the source", ctx, order[i]) end
    if not m.down then return nil, string.format("%s: migration '%s' has no down function", ctx, m.name) end
    ok, msg, code = run_one(db, m, m.down, "DELETE FROM " .. RECORDS .. " WHERE name = ?", ctx)
    if not ok then return nil, msg, code end
    undone[#undone + 1] = m.name
  end
  return undone
end

--- junction.migrationStatus(db, source): an array of { name = ..., applied_at
-- = text or nil } in order, the recorded ones missing from the source last
-- (missing = true).
function M.status(db, source)
  local ctx = "junction.migrationStatus"
  local list = load_migrations(source, ctx, true)
  local ok, msg, code = ensure_records(db)
  if not ok then return nil, msg, code end
  local done, order = applied(db)
  if not done then return nil, order, code end
  local out, seen = {}, {}
  for _, m in ipairs(list) do
    out[#out + 1] = { name = m.name, applied_at = done[m.name] }
    seen[m.name] = true
  end
  for _, name in ipairs(order) do
    if not seen[name] then out[#out + 1] = { name = name, applied_at = done[name], missing = true } end
  end
  return out
end

-- }======

return M
