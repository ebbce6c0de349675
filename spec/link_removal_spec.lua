-- removeGenres, and the links setGenres drops, are deleted in one DELETE per
-- call, whatever the number of keys, and stay all or nothing (csrc/jn_assoc.c).
local H = require "spec.helper"
local T = H.T

-- The blog with n genres, the post linked to all of them; the log records
-- every statement.
local function linked(n, log)
  local db = H.open { log = log }
  local m = H.blog(db)
  local names = {}
  for i = 1, n do names[i] = "g" .. i end
  H.genres(m.Genre, names)
  local p = assert(m.Post:create { text = "p" })
  local all = {}
  for i = 1, n do all[i] = i end
  assert(p:setGenres(all))
  return db, m, p, all
end

local function deletes(entries, from)
  return #H.matching(entries, "^DELETE", from)
end

describe("removing links", function()
  for _, n in ipairs { 1, 2, 5, 16, 17, 40, 300 } do
    it("removeGenres of " .. n .. " keys is one DELETE", function()
      local log, entries = H.recorder()
      local _, _, p, all = linked(n + 2, log)
      local from = #entries + 1
      local list = {}
      for i = 1, n do list[i] = all[i] end
      assert.is_true(p:removeGenres(list))
      if H.is_pg then   -- PostgreSQL: the keys as one JSON array in one statement already
        assert.are.equal(1, deletes(entries, from) + #H.matching(entries, "^WITH", from))
      else
        assert.are.equal(1, deletes(entries, from))
      end
      assert.are.equal(2, p:countGenres())
      assert.is_true(p:hasGenres { n + 1, n + 2 })
    end)
  end

  it("setGenres deletes the links it drops in one DELETE", function()
    local log, entries = H.recorder()
    local _, _, p = linked(40, log)
    local from = #entries + 1
    assert.is_true(p:setGenres { 1, 2 })
    assert.are.equal(H.is_pg and 0 or 1, deletes(entries, from))
    assert.are.equal(2, p:countGenres())
    -- with through values (a row per new link): the drops are still one DELETE
    from = #entries + 1
    assert.is_true(p:setGenres({ 3 }, { through = {} }))
    assert.are.equal(1, deletes(entries, from))
    assert.is_true(p:hasGenre(3))
    assert.are.equal(1, p:countGenres())
  end)

  it("blob keys and text keys with NUL bytes are removed in one statement, every one bound", function()
    local db = H.open()
    local Tag = db:define("Tag", { fields = { k = { type = T.BLOB, primaryKey = true } } })
    local Item = db:define("Item", { fields = { name = { type = T.TEXT } } })
    db:define("ItemTag", { fields = {
      itemId = { type = T.INTEGER, references = { model = "Item", key = "id" } },
      tagK = { type = T.BLOB, references = { model = "Tag", key = "k" } } } })
    assert(db:associate { Item = { { belongsToMany = "Tag", through = "ItemTag", as = "Tags" } } })
    assert(db:sync())
    local keys = {}
    for i = 1, 40 do
      keys[i] = "k\0" .. i
      assert(Tag:create { k = keys[i] })
    end
    local item = assert(Item:create { name = "i" })
    assert(item:setTags(keys))
    local some = {}
    for i = 1, 38 do some[i] = keys[i] end
    assert.is_true(item:removeTags(some))
    assert.are.equal(2, item:countTags())
    assert.is_true(item:hasTags { keys[39], keys[40] })
  end)

  it("a trigger refusing the 3rd deleted row undoes the whole removal", function()
    for _, n in ipairs { 5, 40 } do
      local db, _, p, all = linked(n)
      H.refuse_nth(db, "tag_post_genre", "DELETE", 3)
      local ok, msg = p:removeGenres(all)
      assert.is_nil(ok)
      assert.matches("refused", msg)
      assert.are.equal(n, p:countGenres())
      assert(db:close())
    end
  end)
end)
