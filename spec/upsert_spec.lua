-- Model:upsert and bulkCreate's ignoreDuplicates and updateOnDuplicate:
-- one INSERT ... ON CONFLICT per row (lua/junction/upsert.lua).
local H = require "spec.helper"
local junction = H.junction
local T = H.T

local function genres(opts)
  local sql = {}
  local db = H.open { log = function(s) sql[#sql + 1] = s end }
  local spec = { fields = { name = { type = T.TEXT, unique = true }, hits = { type = T.INTEGER },
                            note = { type = T.TEXT } } }
  for k, v in pairs(opts or {}) do spec[k] = v end
  local Genre = db:define("Genre", spec)
  assert(db:sync())
  return db, Genre, sql
end

local function inserts(sql)
  local t = {}
  for _, s in ipairs(sql) do if s:find("^INSERT") then t[#t + 1] = s end end
  return t
end

describe("upsert", function()
  it("inserts a new row and updates the row its unique field names, in one statement", function()
    local db, Genre, sql = genres()
    local g = assert(Genre:upsert { name = "a", hits = 1, note = "first" })
    assert.are.equal(1, g.id)
    assert.are.equal(1, g.hits)
    local h = assert(Genre:upsert { name = "a", hits = 5 })
    assert.are.equal(1, h.id)
    assert.are.equal(5, h.hits)
    assert.are.equal("first", h.note)   -- a field not given stays
    assert.are.equal(1, Genre:count())
    local ins = inserts(sql)
    assert.are.equal(2, #ins)
    assert.are.equal('INSERT INTO "Genre" ("hits", "name", "note", "createdAt", "updatedAt") VALUES (?, ?, ?, ?, ?) ' ..
      'ON CONFLICT ("name") DO UPDATE SET "hits" = excluded."hits", "note" = excluded."note", ' ..
      '"updatedAt" = excluded."updatedAt"', ins[1])
    assert.are.equal(1, db:query('SELECT count(*) AS n FROM "Genre"')[1].n)
  end)

  it("the primary key, when given, is the conflict target", function()
    local _, Genre = genres()
    assert(Genre:upsert { name = "a", hits = 1 })
    local g = assert(Genre:upsert { id = 1, name = "b" })
    assert.are.equal("b", g.name)
    assert.are.equal(1, g.hits)
    assert.are.equal(1, Genre:count())
  end)

  it("conflictFields names the target; a composite unique group is found", function()
    local db = H.open()
    local Tag = db:define("Tag", { fields = {
      post = { type = T.INTEGER, unique = "pg" }, genre = { type = T.INTEGER, unique = "pg" },
      weight = { type = T.INTEGER } } })
    assert(db:sync())
    assert(Tag:upsert { post = 1, genre = 2, weight = 1 })
    local t = assert(Tag:upsert { post = 1, genre = 2, weight = 7 })
    assert.are.equal(7, t.weight)
    assert.are.equal(1, Tag:count())
    t = assert(Tag:upsert({ post = 1, genre = 2, weight = 9 }, { conflictFields = { "post", "genre" } }))
    assert.are.equal(9, t.weight)
  end)

  it("a value its field cannot hold, or a failing validator, returns the failure and writes nothing", function()
    local _, Genre = genres { fields = { name = { type = T.TEXT, unique = true, validate = { notEmpty = true } },
                                         hits = { type = T.INTEGER } } }
    local g, msg, code, details = Genre:upsert { name = "a", hits = "many" }
    assert.is_nil(g)
    assert.are.equal('Genre.hits: "many" is not an integer', msg)
    assert.are.equal(junction.VALIDATION, code)
    assert.is_table(details.errors)
    g, msg, code = Genre:upsert { name = "  ", hits = 1 }
    assert.is_nil(g)
    assert.are.equal("Genre.name: must not be empty", msg)
    assert.are.equal(junction.VALIDATION, code)
    assert.are.equal(0, Genre:count())
  end)

  it("a constraint other than the target's is returned as a failure", function()
    local db = H.open()
    local U = db:define("U", { fields = { a = { type = T.TEXT, unique = true },
                                          b = { type = T.TEXT, unique = true } } })
    assert(db:sync())
    assert(U:create { a = "x", b = "y" })
    local r, msg, code = U:upsert { a = "z", b = "y" }
    assert.is_nil(r)
    assert.matches(H.is_pg and "unique constraint" or "UNIQUE", msg)
    assert.are.equal(2067, code)
  end)

  it("misuse raises", function()
    local _, Genre = genres()
    assert.error_matches(function() return Genre:upsert { hits = 1 } end,
      "Genre:upsert: bad argument #1 (the values give neither the primary key nor every field of a unique " ..
      "constraint; say conflictFields)", 1, true)
    assert.error_matches(function() return Genre:upsert(7) end, "Genre:upsert: bad argument #1", 1, true)
    assert.error_matches(function() return Genre:upsert({ name = "a" }, { nope = 1 }) end,
      "Genre:upsert: bad option 'nope' (unknown key)", 1, true)
    assert.error_matches(function() return Genre:upsert({ name = "a" }, { conflictFields = { "nope" } }) end,
      "Genre:upsert: bad option 'conflictFields' (element 1 is no field of Genre)", 1, true)
    assert.error_matches(function() return Genre:upsert { name = "a", nope = 1 } end, "nope", 1, true)
  end)
end)

describe("bulkCreate with duplicates", function()
  it("ignoreDuplicates skips the rows that clash and gives the rows as they are", function()
    local _, Genre = genres()
    assert(Genre:create { name = "a", hits = 1 })
    local rows = assert(Genre:bulkCreate({ { name = "a", hits = 9 }, { name = "b", hits = 2 } },
                                         { ignoreDuplicates = true }))
    assert.are.equal(2, #rows)
    assert.are.equal(1, rows[1].hits)
    assert.are.equal(2, rows[2].hits)
    assert.are.equal(2, Genre:count())
    assert.matches("%(2 rows%)", tostring(rows))
  end)

  it("updateOnDuplicate sets the fields named on the rows that clash", function()
    local _, Genre, sql = genres()
    assert(Genre:create { name = "a", hits = 1, note = "kept" })
    sql[#sql + 1] = "mark"
    local rows = assert(Genre:bulkCreate({ { name = "a", hits = 9, note = "x" }, { name = "c", hits = 3 } },
                                         { updateOnDuplicate = { "hits" } }))
    assert.are.equal(9, rows[1].hits)
    assert.are.equal("kept", rows[1].note)
    assert.are.equal(3, rows[2].hits)
    assert.are.equal(2, Genre:count())
    local ins = inserts(sql)
    assert.matches('ON CONFLICT %("name"%) DO UPDATE SET "hits" = excluded."hits"$', ins[#ins])
  end)

  it("is all or nothing: a bad row writes none", function()
    local _, Genre = genres()
    local r, msg, code, details = Genre:bulkCreate({ { name = "a", hits = 1 }, { name = "b", hits = "x" } },
                                                   { ignoreDuplicates = true })
    assert.is_nil(r)
    assert.are.equal(junction.VALIDATION, code)
    assert.is_string(msg)
    assert.is_table(details)
    assert.are.equal(0, Genre:count())
  end)

  it("misuse raises, and unknown options of bulkCreate are no longer ignored", function()
    local _, Genre = genres()
    assert.error_matches(function() return Genre:bulkCreate({ { name = "a" } }, { ignoreDuplicate = true }) end,
      "Genre:bulkCreate: bad option 'ignoreDuplicate' (unknown key)", 1, true)
    assert.error_matches(function()
      return Genre:bulkCreate({ { name = "a" } }, { ignoreDuplicates = true, updateOnDuplicate = { "hits" } })
    end, "Genre:bulkCreate: bad options (ignoreDuplicates and updateOnDuplicate: say one)", 1, true)
    assert.error_matches(function() return Genre:bulkCreate({ { hits = 1 } }, { ignoreDuplicates = true }) end,
      "Genre:bulkCreate: bad argument #1 (row 1 gives neither the primary key", 1, true)
    assert.error_matches(function() return Genre:bulkCreate({ { name = "a" } }, { updateOnDuplicate = "hits" }) end,
      "Genre:bulkCreate: bad option 'updateOnDuplicate' (a list of field names expected)", 1, true)
    assert.error_matches(function() return Genre:bulkCreate({ x = { name = "a" } }, { ignoreDuplicates = true }) end,
      "Genre:bulkCreate: bad argument #1 (a list expected", 1, true)
    assert(Genre:bulkCreate({ { name = "z" } }, {}))
    assert.are.equal(1, Genre:count())
  end)
end)
