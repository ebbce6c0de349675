-- spec/sequelize/belongs_to_many_mixins_spec.lua: Sequelize's
-- packages/core/test/integration/associations/belongs-to-many-mixins.test.ts (main; v6 has
-- no such file), ported to junction. Article belongsToMany User as authors through UserArticle.
local S = require "spec.sequelize.support"

describe("belongsToMany Mixins", function()
  local db, Article, User
  before_each(function()
    db = S.open()
    Article, User = S.define(db, "Article", {}), S.define(db, "User", {})
    assert(db:associate { Article = { { belongsToMany = "User", as = "authors", through = "UserArticle" } } })
    assert(db:sync())
  end)
  after_each(function() db:close() end)

  -- Sequelize's `new Set([user])`: junction takes lists, so a set-like table is misuse
  local function as_set(...)
    local set = {}
    for _, x in ipairs { ... } do set[x] = true end
    return set
  end

  describe("setAssociations", function()
    it("associates target models to the source model", function()
      local article, user = assert(Article:create {}), assert(User:create {})
      assert.same({}, article:getAuthors())
      assert.is_number(article.id)
      assert.is_number(user.id)
      assert(article:setAuthors { user })
      assert.equal(1, #article:getAuthors())
    end)

    it("supports any iterable", function()
      local article, user = assert(Article:create {}), assert(User:create {})
      assert.has_error(function() article:setAuthors(as_set(user)) end)
      assert.same({}, article:getAuthors())
    end)

    it("unlinks the previous associations", function()
      local article = assert(Article:create {})
      local user1, user2 = assert(User:create {}), assert(User:create {})
      assert(article:setAuthors { user1 })
      assert.equal(1, #article:getAuthors())
      assert(article:setAuthors { user2 })
      assert.same({ user2 }, article:getAuthors())
      assert.is_true(article:hasAuthors { user2 })
    end)

    it("clears associations when the parameter is null", function()
      -- junction: nil is misuse (a vanished variable), {} clears
      local article, user = assert(Article:create {}), assert(User:create {})
      assert(article:setAuthors { user })
      assert.has_error(function() article:setAuthors(nil) end)
      assert.equal(1, #article:getAuthors())
      assert(article:setAuthors {})
      assert.same({}, article:getAuthors())
    end)

    it("supports passing the primary key instead of an object", function()
      local article, user = assert(Article:create {}), assert(User:create {})
      assert(article:setAuthors { user.id })
      assert.equal(1, #article:getAuthors())
    end)
  end)

  describe("addAssociations", function()
    it("associates target models to the source model", function()
      local article, user = assert(Article:create {}), assert(User:create {})
      assert(article:addAuthors { user })
      assert.equal(1, #article:getAuthors())
    end)

    it("supports any iterable", function()
      local article, user = assert(Article:create {}), assert(User:create {})
      assert.has_error(function() article:addAuthors(as_set(user)) end)
      assert.same({}, article:getAuthors())
    end)

    it("supports passing the primary key instead of an object", function()
      local article, user = assert(Article:create {}), assert(User:create {})
      assert(article:addAuthors { user.id })
      assert.equal(1, #article:getAuthors())
    end)
  end)

  describe("removeAssociations", function()
    it("unlinks the target models from the source model", function()
      local article = assert(Article:create {})
      local user1, user2 = assert(User:create {}), assert(User:create {})
      assert(article:setAuthors { user1, user2 })
      assert.equal(2, #article:getAuthors())
      assert(article:removeAuthors { user1 })
      assert.equal(1, #article:getAuthors())
      assert.is_false(article:hasAuthors { user1 })
    end)

    it("supports any iterable", function()
      local article, user = assert(Article:create {}), assert(User:create {})
      assert(article:setAuthors { user })
      assert.has_error(function() article:removeAuthors(as_set(user)) end)
      assert.equal(1, #article:getAuthors())
    end)

    it("supports passing the primary key instead of an object", function()
      local article, user = assert(Article:create {}), assert(User:create {})
      assert(article:setAuthors { user })
      assert(article:removeAuthors { user.id })
      assert.same({}, article:getAuthors())
    end)
  end)

  describe("hasAssociations", function()
    it("returns true if the target model is associated to the source model", function()
      local article = assert(Article:create {})
      local user1, user2 = assert(User:create {}), assert(User:create {})
      assert(article:setAuthors { user1 })
      assert.is_true(article:hasAuthors { user1 })
      assert.is_false(article:hasAuthors { user2 })
      assert.is_false(article:hasAuthors { user1, user2 })
    end)

    it("supports any iterable", function()
      local article, user = assert(Article:create {}), assert(User:create {})
      assert(article:setAuthors { user })
      assert.has_error(function() article:hasAuthors(as_set(user)) end)
    end)

    it("supports passing the primary key instead of an object", function()
      local article, user = assert(Article:create {}), assert(User:create {})
      assert(article:setAuthors { user })
      assert.is_true(article:hasAuthors { user.id })
    end)
  end)
end)
