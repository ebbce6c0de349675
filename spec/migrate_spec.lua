-- spec/migrate_spec.lua: migrations on databases with rows in them (SQLite
-- files, or PostgreSQL schemas): nothing lost across every operation, a
-- failed one rolled back whole.
local H = require "spec.helper"
local sqlite_it = H.sqlite_only(it, pending)
local junction = H.junction
local T = junction.types

-- A database with the seed's schema (db:sync) and some rows: 3 genres,
-- 4 posts, 7 links.
local function seeded()
  local path = H.place()
  local db = H.open_at(path)
  local m = H.blog(db)
  for _, name in ipairs { "orm", "lua", "sqlite" } do assert(m.Genre:create { name = name }) end
  local sets = { { 1, 2, 3 }, { 2 }, { 1, 3 }, { 3 } }
  for i, set in ipairs(sets) do
    local p = assert(m.Post:create { text = "post " .. i })
    assert(p:setGenres(set))
  end
  return db, path, m
end

local function count(db, tbl)
  return db:query("SELECT count(*) AS n FROM " .. tbl)[1].n
end

-- SQLite: integrity_check says ok and foreign_key_check finds nothing, and
-- foreign keys are on again. (PostgreSQL checks every foreign key as each
-- statement runs, and has no switch to leave off.)
local function assert_clean(db)
  if H.is_pg then return end
  assert.same({ { integrity_check = "ok" } }, db:query("PRAGMA integrity_check"))
  assert.same({}, db:query("PRAGMA foreign_key_check"))
  assert.same({ { foreign_keys = 1 } }, db:query("PRAGMA foreign_keys"))
end

local function has_column(db, tbl, name)
  for _, c in ipairs(H.columns(db, tbl)) do
    if c.name == name then return true end
  end
  return false
end

-- how many indexes the table has
local function nindexes(db, tbl)
  local sql = H.is_pg and "SELECT count(*) AS n FROM pg_indexes WHERE schemaname = current_schema() AND tablename = ?"
    or "SELECT count(*) AS n FROM sqlite_master WHERE type = 'index' AND tbl_name = ?"
  return db:query(sql, tbl)[1].n
end

local function links(db)
  local out = {}
  for _, r in ipairs(db:query("SELECT post_id, genre_id FROM tag_post_genre ORDER BY post_id, genre_id")) do
    out[#out + 1] = r.post_id .. ":" .. r.genre_id
  end
  return table.concat(out, " ")
end

describe("junction.migrate", function()
  local db, path
  after_each(function()
    if db then db:close() end
    if path then H.drop_place(path) end
    db, path = nil, nil
  end)

  it("takes the seed's schema to one with a new field and a new index, losing no row", function()
    local m
    db, path, m = seeded()
    local before = links(db)
    local ran = assert(junction.migrate(db, {
      { name = "001_views", up = function(schema)
          schema:addColumn("post", "views", { type = T.INTEGER, allowNull = false, defaultValue = 0 })
          schema:addIndex("post", { "views" })
        end },
    }))
    assert.same({ "001_views" }, ran)
    assert.equal(4, count(db, "post"))
    assert.equal(before, links(db))
    assert.same({ { n = 4 } }, db:query("SELECT count(*) AS n FROM post WHERE views = 0"))
    assert.is_true(H.exists(db, "post_views_idx"))
    assert_clean(db)
    -- the model, declared again with the new field, reads and writes it
    db:close()
    db = H.open_at(path)
    local Post = db:define("Post", {
      tableName = "post", timestamps = true, underscored = true,
      fields = {
        post_id = { type = T.INTEGER, allowNull = false, autoIncrement = true, primaryKey = true },
        text = { type = T.TEXT, allowNull = false },
        views = { type = T.INTEGER, allowNull = false, defaultValue = 0 },
      },
    })
    local p = assert(Post:findByPk(2))
    assert.equal(0, p.views)
    p.views = 7
    assert(p:save())
    assert.equal(7, assert(Post:findByPk(2)).views)
    assert(m)
  end)

  it("rebuilds a parent table without cascading into its children (foreign keys off around it)", function()
    db, path = seeded()
    local before = links(db)
    assert(junction.migrate(db, {
      { name = "001_longer_text", up = function(schema)
          schema:changeColumn("post", "text", { type = T.STRING(500), allowNull = false })
        end },
    }))
    assert.equal(before, links(db))
    assert.equal(4, count(db, "post"))
    if H.is_pg then
      assert.same({ { len = 500, nullable = "NO" } }, db:query("SELECT character_maximum_length AS len, " ..
        "is_nullable AS nullable FROM information_schema.columns WHERE table_schema = current_schema() " ..
        "AND table_name = 'post' AND column_name = 'text'"))
    else
      local sql = db:query("SELECT sql FROM sqlite_master WHERE name = 'post'")[1].sql
      assert.truthy(sql:find('"text" VARCHAR(500) NOT NULL', 1, true))
    end
    assert_clean(db)
    -- the cascades still hold after the rebuild: deleting a post deletes its links
    assert(db:exec("DELETE FROM post WHERE post_id = 1"))
    assert.equal(4, count(db, "tag_post_genre"))
  end)

  it("rebuilds a junction table keeping its rows, unique constraint, foreign keys and indexes", function()
    db, path = seeded()
    local before = links(db)
    local idx_before = nindexes(db, "tag_post_genre")
    assert(junction.migrate(db, {
      { name = "001_weight", up = function(schema)
          schema:addColumn("tag_post_genre", "weight", { type = T.INTEGER, allowNull = false, defaultValue = 1 })
        end },
      { name = "002_weight_real", up = function(schema)
          schema:changeColumn("tag_post_genre", "weight", { type = T.REAL, defaultValue = 1.5 })
        end },
      { name = "003_no_weight", up = function(schema)
          schema:removeColumn("tag_post_genre", "weight")
        end },
    }))
    assert.equal(before, links(db))
    assert.equal(idx_before, nindexes(db, "tag_post_genre"))
    assert_clean(db)
    -- the composite unique constraint survived: a duplicate link is refused
    local insert = "INSERT INTO tag_post_genre (post_id, genre_id, created_at, updated_at) VALUES (?, ?, 'x', 'x')"
    local ok, _, code = db:query(insert, 1, 1)
    assert.is_nil(ok)
    assert.equal(2067, code)
    -- and the foreign keys: a link to a missing genre is refused
    ok, _, code = db:query(insert, 1, 99)
    assert.is_nil(ok)
    assert.equal(787, code)
  end)

  it("renames a column and a table, keeping the rows", function()
    db, path = seeded()
    assert(junction.migrate(db, {
      { name = "1", up = function(schema) schema:renameColumn("genre", "name", "title") end },
      { name = "2", up = function(schema) schema:renameTable("genre", "category") end },
    }))
    local rows = db:query("SELECT title FROM category ORDER BY genre_id")
    assert.same({ { title = "orm" }, { title = "lua" }, { title = "sqlite" } }, rows)
    assert_clean(db)
  end)

  it("rolls a failed migration back whole and stops; the ones before it stay", function()
    db, path = seeded()
    local ran_third = false
    local ok, msg = junction.migrate(db, {
      { name = "001_ok", up = function(schema)
          schema:addColumn("post", "views", { type = T.INTEGER, defaultValue = 0 })
        end },
      { name = "002_fails", up = function(schema)
          schema:addColumn("genre", "rank", { type = T.INTEGER })
          schema:exec("INSERT INTO nope VALUES (1)")
        end },
      { name = "003_never", up = function() ran_third = true end },
    })
    assert.is_nil(ok)
    assert.truthy(msg:find("002_fails", 1, true))
    assert.is_false(ran_third)
    assert.is_true(has_column(db, "post", "views"))
    assert.is_false(has_column(db, "genre", "rank"))
    local status = assert(junction.migrationStatus(db, {
      { name = "001_ok", up = function() end }, { name = "002_fails", up = function() end },
    }))
    assert.truthy(status[1].applied_at)
    assert.is_nil(status[2].applied_at)
    assert_clean(db)
  end)

  sqlite_it("refuses a migration whose rows break a foreign key, and rolls it back "
    .. "(SQLite switches foreign keys off during a migration)", function()
    db, path = seeded()
    local ok, msg, code = junction.migrate(db, {
      { name = "001_orphan", up = function(schema)
          schema:exec("DELETE FROM genre WHERE genre_id = 3")   -- foreign keys are off: no cascade
        end },
    })
    assert.is_nil(ok)
    assert.equal(787, code)
    assert.truthy(msg:find("foreign key", 1, true))
    assert.equal(3, count(db, "genre"))
  end)

  it("refuses a migration that leaves a row breaking a foreign key, and rolls it back", function()
    db, path = seeded()
    local before = links(db)
    local ok, msg, code = junction.migrate(db, {
      { name = "001_dangling", up = function(schema)
          schema:addColumn("post", "views", { type = T.INTEGER })
          schema:exec("INSERT INTO tag_post_genre (post_id, genre_id, created_at, updated_at) " ..
                      "VALUES (1, 99, 'x', 'x')")
        end },
    })
    assert.is_nil(ok)
    assert.equal(787, code)
    assert.truthy(msg:find("foreign key", 1, true), msg)
    assert.equal(before, links(db))
    assert.is_false(has_column(db, "post", "views"))
    assert_clean(db)
  end)

  it("raises a mistake in a migration after rolling it back", function()
    db, path = seeded()
    assert.has_error(function()
      junction.migrate(db, { { name = "001", up = function(schema)
        schema:addColumn("post", "views", { type = T.INTEGER })
        schema:addColumn("post", "x", { type = "INTEGER" })
      end } })
    end, "schema:addColumn: column 'x': bad 'type' "
      .. "(a junction type expected, such as junction.types.INTEGER, got string)")
    assert.is_false(has_column(db, "post", "views"))
    assert_clean(db)
    assert(db:exec("BEGIN; COMMIT"))   -- no transaction was left open
  end)

  it("runs each migration once, and rolls back with down, newest first", function()
    db, path = seeded()
    local list = {
      { name = "2_b", up = function(schema) schema:addColumn("post", "b", { type = T.TEXT }) end,
        down = function(schema) schema:removeColumn("post", "b") end },
      { name = "10_c", up = function(schema) schema:addColumn("post", "c", { type = T.TEXT }) end,
        down = function(schema) schema:removeColumn("post", "c") end },
      { name = "1_a", up = function(schema) schema:addColumn("post", "a", { type = T.TEXT }) end },
    }
    assert.same({ "1_a", "2_b", "10_c" }, assert(junction.migrate(db, list)))
    assert.same({}, assert(junction.migrate(db, list)))
    assert.same({ "10_c", "2_b" }, assert(junction.rollback(db, list, 2)))
    assert.is_true(has_column(db, "post", "a"))
    assert.is_false(has_column(db, "post", "b"))
    assert.is_false(has_column(db, "post", "c"))
    local ok, msg = junction.rollback(db, list)
    assert.is_nil(ok)
    assert.truthy(msg:find("'1_a' has no down function", 1, true))
    assert.equal(4, count(db, "post"))
    assert_clean(db)
  end)

  it("rollback and migrationStatus return the failure of reading the records", function()
    db, path = seeded()
    local list = { { name = "1_a", up = function(schema) schema:addColumn("post", "a", { type = T.TEXT }) end,
                     down = function(schema) schema:removeColumn("post", "a") end } }
    assert.same({ "1_a" }, assert(junction.migrate(db, list)))
    -- the connection as migrate sees it, with the read of the records failing
    local real = db
    local proxy = setmetatable({}, { __index = function(_, k)
      return function(_, ...)
        if k == "query" and tostring((...)):find("SELECT name, applied_at", 1, true) then
          return nil, "disk I/O error", 10
        end
        return real[k](real, ...)
      end
    end })
    for _, call in ipairs { function() return junction.rollback(proxy, list) end,
                            function() return junction.migrationStatus(proxy, list) end } do
      local ok, msg, code = call()
      assert.is_nil(ok)
      assert.equal("disk I/O error", msg)
      assert.equal(10, code)
    end
    assert.is_true(has_column(db, "post", "a"))
  end)

  it("reads migrations from a directory, one file each", function()
    db, path = seeded()
    local dir = os.tmpname()
    os.remove(dir)
    assert(os.execute("mkdir " .. dir))
    local f = assert(io.open(dir .. "/001_views.lua", "w"))
    f:write([[
      local T = require("junction").types
      return { up = function(schema) schema:addColumn("post", "views", { type = T.INTEGER }) end,
               down = function(schema) schema:removeColumn("post", "views") end }
    ]])
    f:close()
    assert.same({ "001_views" }, assert(junction.migrate(db, dir)))
    assert.same({ "001_views" }, assert(junction.rollback(db, dir)))
    os.remove(dir .. "/001_views.lua")
    os.remove(dir)
  end)

  it("raises on misuse: no such directory, a migration without up, a bad count", function()
    db, path = seeded()
    assert.has_error(function() junction.migrate(db, "/nonexistent/migrations") end,
                     "junction.migrate: no directory '/nonexistent/migrations'")
    assert.has_error(function() junction.migrate(db, { { name = "x" } }) end,
                     "junction.migrate: migration 'x' must be a function or a table with an 'up' function")
    assert.has_error(function() junction.migrate(db, 42) end,
                     "junction.migrate: bad migrations (directory or table expected, got number)")
    assert.has_error(function() junction.rollback(db, {}, 0) end,
                     "junction.rollback: bad count (positive integer expected)")
  end)

  sqlite_it("refuses to run inside a transaction (SQLite cannot switch foreign keys off inside one)", function()
    db, path = seeded()
    assert.has_error(function()
      db:transaction(function()
        junction.migrate(db, { { name = "1", up = function() end } })
      end)
    end)
  end)
end)

describe("junction.migrate, more", function()
  it("rolls back a migration whose up returns nil, err, and records nothing", function()
    local db, path = seeded()
    local ok, msg = junction.migrate(db, { { name = "001_b", up = function(_, d)
      assert(d:exec("CREATE TABLE t(x INTEGER)"))
      return nil, "changed my mind"
    end } })
    assert.is_nil(ok)
    assert.equal("001_b: changed my mind", msg)
    assert.is_false(H.exists(db, "t"))
    assert.equal(0, #db:query("SELECT 1 FROM junction_migrations"))
    db:close()
    H.drop_place(path)
  end)

  it("keeps the AUTOINCREMENT high-water mark across a rebuild", function()
    local db, path, m = seeded()
    assert(m.Post:destroy { where = { post_id = 4 } })
    assert(junction.migrate(db, { { name = "1", up = function(schema)
      schema:changeColumn("post", "text", { type = T.STRING(500), allowNull = false })
    end } }))
    assert.equal(5, assert(m.Post:create { text = "new" }).post_id)
    db:close()
    H.drop_place(path)
  end)

  it("points a mistake in a schema call at the migration's own line", function()
    local db, path = seeded()
    local line
    local ok, err = pcall(junction.migrate, db, { { name = "1", up = function(schema)
      line = debug.getinfo(1, "l").currentline + 1
      schema:addColumn("post", "x", { type = "INTEGER" })
    end } })
    assert.is_false(ok)
    assert.truthy(err:find("migrate_spec.lua:" .. line .. ":", 1, true), err)
    db:close()
    H.drop_place(path)
  end)
end)

describe("junction.migrate on PostgreSQL", function()
  local pg_it = H.pg_only(it, pending)

  pg_it("changes tables with ALTER TABLE and reads only PostgreSQL's own catalog", function()
    local log, entries = H.recorder()
    local path = H.place()
    local db = H.open_at(path, { log = log })
    local m = H.blog(db)
    assert(m.Genre:create { name = "orm" })
    local n0 = #entries
    assert(junction.migrate(db, { { name = "1", up = function(schema)
      schema:addColumn("genre", "slug", { type = T.TEXT, unique = true })
      schema:exec("UPDATE genre SET slug = name")
      schema:changeColumn("genre", "slug", { type = T.STRING(80), allowNull = false, defaultValue = "-" })
      schema:removeColumn("genre", "slug")
      schema:createTable("note", { id = { type = T.INTEGER, primaryKey = true, autoIncrement = true },
                                   ok = { type = T.BOOLEAN, defaultValue = true } })
    end } }))
    for i = n0 + 1, #entries do
      local sql = entries[i].sql
      assert.is_nil(sql:find("sqlite_", 1, true), sql)
      assert.is_nil(sql:upper():find("PRAGMA", 1, true), sql)
      assert.is_nil(sql:find("__junction_new", 1, true), sql)   -- no rebuild
    end
    assert.equal(1, #H.matching(entries, "^ALTER TABLE \"genre\" ADD COLUMN", n0 + 1))
    assert.equal(1, m.Genre:count())
    assert(db:query("INSERT INTO note DEFAULT VALUES"))
    assert.same({ { id = 1, ok = 1 } }, db:query("SELECT id, ok FROM note"))
    db:close()
    H.drop_place(path)
  end)

  pg_it("runs inside a transaction as a savepoint, and its failure leaves the transaction usable", function()
    local db, path = seeded()
    assert.equal("outer", db:transaction(function()
      local ok, msg = junction.migrate(db, { { name = "1_bad", up = function(schema)
        schema:addColumn("post", "views", { type = T.INTEGER })
        schema:exec("INSERT INTO nope VALUES (1)")
      end } })
      assert.is_nil(ok)
      assert.truthy(msg:find("1_bad", 1, true))
      assert.same({ "2_good" }, assert(junction.migrate(db, { { name = "2_good", up = function(schema)
        schema:addColumn("post", "likes", { type = T.INTEGER, defaultValue = 0 })
      end } })))
      return "outer"
    end))
    assert.is_false(has_column(db, "post", "views"))
    assert.is_true(has_column(db, "post", "likes"))
    db:close()
    H.drop_place(path)
  end)
end)

describe("schema:addColumn where ALTER TABLE cannot", function()
  it("rebuilds the table with the column (a UNIQUE one), keeping every row", function()
    local db, path = seeded()
    local before = links(db)
    assert(junction.migrate(db, { { name = "1", up = function(schema)
      schema:addColumn("genre", "slug", { type = T.TEXT, unique = true })
    end } }))
    assert.equal(3, count(db, "genre"))
    assert.equal(before, links(db))
    assert(db:exec("UPDATE genre SET slug = 'x' WHERE genre_id = 1"))
    local ok, _, code = db:exec("UPDATE genre SET slug = 'x' WHERE genre_id = 2")
    assert.is_nil(ok)
    assert.equal(2067, code)
    assert_clean(db)
    db:close()
    H.drop_place(path)
  end)
end)
