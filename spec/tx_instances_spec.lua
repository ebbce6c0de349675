-- spec/tx_instances_spec.lua: an instance never claims a write that its
-- transaction took back.  A save, update or destroy inside db:transaction
-- changes the instance at once; when that transaction (or the savepoint of
-- a nested one) rolls back, the instance gets its state back: a created
-- one is unsaved again (its key nil when the INSERT gave it), a destroyed
-- one is not destroyed, and the fields written are changed again, so that
-- the next save writes them.
local H = require "spec.helper"
local junction = H.junction
local core = require "junction.core"

describe("an instance written in a transaction that rolls back", function()
  local db, m
  before_each(function()
    db = H.open()
    m = H.blog(db)
  end)
  after_each(function() db:close() end)

  local function text_in_db(id)
    local p = m.Post:findByPk(id)
    return p and p.text
  end

  it("is unsaved again after a create, and its next save inserts it", function()
    local p
    local ok, msg = db:transaction(function()
      p = assert(m.Post:create { text = "draft" })
      assert.is_not_nil(p.post_id)
      junction.abort("changed my mind")
    end)
    assert.is_nil(ok)
    assert.equal("changed my mind", msg)
    assert.is_nil(p.post_id)
    assert.same({ "text" }, p:changed())
    assert.equal(0, m.Post:count())
    assert(p:save())
    assert.equal(1, m.Post:count())
    assert.equal("draft", text_in_db(p.post_id))
  end)

  it("keeps a key the program gave it when its create is rolled back", function()
    local p
    assert.has_error(function()
      db:transaction(function()
        p = assert(m.Post:create { post_id = 41, text = "x" })
        error("boom")
      end)
    end, "boom")
    assert.equal(41, p.post_id)
    assert(p:save())
    assert.equal("x", text_in_db(41))
  end)

  it("has the fields of a rolled back update changed again, so save writes them", function()
    local p = assert(m.Post:create { text = "a" })
    local ok = db:transaction(function()
      assert(p:update { text = "b" })
      assert.is_false(p:changed())
      return nil, "no", 1
    end)
    assert.is_nil(ok)
    assert.equal("b", p.text)
    assert.same({ "text" }, p:changed())
    assert.equal("a", text_in_db(p.post_id))
    assert(p:save())
    assert.equal("b", text_in_db(p.post_id))
  end)

  it("is not destroyed after a rolled back destroy", function()
    local p = assert(m.Post:create { text = "keep" })
    db:transaction(function()
      assert(p:destroy())
      junction.abort("no")
    end)
    assert.is_false(core._destroyed(p))
    assert.equal("keep", text_in_db(p.post_id))
    assert(p:update { text = "kept" })
    assert.equal("kept", text_in_db(p.post_id))
  end)

  it("gets the state of the savepoint back when only the inner transaction rolls back", function()
    local p = assert(m.Post:create { text = "a" })
    assert(db:transaction(function()
      assert(p:update { text = "outer" })
      local ok = db:transaction(function()
        assert(p:update { text = "inner" })
        junction.abort("inner only")
      end)
      assert.is_nil(ok)
      assert.equal("inner", p.text)
      assert.same({ "text" }, p:changed())
      return true
    end))
    assert.equal("outer", text_in_db(p.post_id))
    assert(p:save())
    assert.equal("inner", text_in_db(p.post_id))
  end)

  it("is rolled back with the outer transaction after the inner one committed", function()
    local p
    db:transaction(function()
      assert(db:transaction(function()
        p = assert(m.Post:create { text = "inner" })
        return true
      end))
      junction.abort("outer")
    end)
    assert.is_nil(p.post_id)
    assert.equal(0, m.Post:count())
    assert(p:save())
    assert.equal(1, m.Post:count())
  end)

  it("is rolled back with the outermost of three levels after both inner ones committed", function()
    local p = assert(m.Post:create { text = "a" })
    local q
    db:transaction(function()
      assert(db:transaction(function()
        assert(p:update { text = "middle" })
        assert(db:transaction(function()
          assert(p:update { text = "inner" })
          q = assert(m.Post:create { text = "q" })
          assert(q:destroy())
          return true
        end))
        return true
      end))
      junction.abort("outer")
    end)
    assert.equal("a", text_in_db(p.post_id))
    assert.same({ "text" }, p:changed())
    assert.is_false(core._destroyed(q))
    assert.is_nil(q.post_id)
    assert(p:save())
    assert(q:save())
    assert.equal("inner", text_in_db(p.post_id))
    assert.equal(2, m.Post:count())
  end)

  it("is unchanged after a commit", function()
    local p
    assert(db:transaction(function()
      p = assert(m.Post:create { text = "a" })
      assert(p:update { text = "b" })
      return true
    end))
    assert.is_false(p:changed())
    assert.equal("b", text_in_db(p.post_id))
    -- and the next transaction starts with an empty journal
    db:transaction(function()
      assert(p:update { text = "c" })
      junction.abort("no")
    end)
    assert.same({ "text" }, p:changed())
    assert.equal("b", text_in_db(p.post_id))
  end)

  it("has its fields changed again when an after hook refuses an update", function()
    local refuse = false
    local P = db:define("Note", {
      fields = { id = { type = junction.types.INTEGER, primaryKey = true, autoIncrement = true },
                 body = { type = junction.types.TEXT } },
      hooks = { afterUpdate = function() if refuse then return nil, "refused" end return true end },
    })
    assert(db:sync())
    local n = assert(P:create { body = "a" })
    refuse = true
    local ok, msg = n:update { body = "b" }
    assert.is_nil(ok)
    assert.equal("refused", msg)
    assert.same({ "body" }, n:changed())
    refuse = false
    assert(n:save())
    assert.equal("b", P:findByPk(n.id).body)
  end)

  it("is not destroyed when an afterDestroy hook refuses a forced destroy", function()
    local P = db:define("Memo", {
      fields = { id = { type = junction.types.INTEGER, primaryKey = true, autoIncrement = true },
                 body = { type = junction.types.TEXT } },
      paranoid = true,
      hooks = { afterDestroy = function() return nil, "refused" end },
    })
    assert(db:sync())
    local n = assert(P:create { body = "a" })
    local ok = n:destroy { force = true }
    assert.is_nil(ok)
    assert.is_false(core._destroyed(n))
    assert.equal(1, P:count { paranoid = false })
    assert(n:update { body = "b" })
    assert.equal("b", P:findByPk(n.id, { paranoid = false }).body)
  end)
end)
