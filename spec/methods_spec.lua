-- A model's own methods: class methods set on the model, instance methods
-- set on Model.instance (lua/junction/methods.lua, the model's own table in
-- the C core).
local H = require "spec.helper"
local T = H.T

local function posts()
  local db = H.open()
  local Post = db:define("Post", { fields = { title = { type = T.TEXT }, views = { type = T.INTEGER } } })
  local Genre = db:define("Genre", { fields = { name = { type = T.TEXT } } })
  assert(db:sync())
  assert(Post:create { title = "a", views = 3 })
  assert(Post:create { title = "b", views = 30 })
  return db, Post, Genre
end

describe("class methods", function()
  it("a function set on a model is a method of that model alone", function()
    local _, Post, Genre = posts()
    function Post:popular(n) return self:findAll { where = { views = { gte = n } } } end
    local rows = Post:popular(10)
    assert.are.equal(1, #rows)
    assert.are.equal("b", rows[1].title)
    assert.is_nil(Genre.popular)
    assert.has_error(function() return Genre:popular(1) end)
  end)

  it("a value set on a model can be read back and removed", function()
    local _, Post = posts()
    Post.statuses = { "draft", "published" }
    assert.are.same({ "draft", "published" }, Post.statuses)
    Post.statuses = nil
    assert.is_nil(Post.statuses)
  end)

  it("the names every model has cannot be replaced", function()
    local _, Post = posts()
    for _, name in ipairs { "findAll", "find_all", "create", "name", "tableName", "primaryKey", "instance", "scope" } do
      assert.error_matches(function() Post[name] = function() end end,
        "Post: cannot set '" .. name .. "' (every model has it; choose another name)", 1, true)
    end
    assert.error_matches(function() Post[1] = true end, "Post: cannot set a number key (names are strings)", 1, true)
    assert.are.equal("Post", Post.name)
  end)

  it("two connections' models of the same name do not share class methods", function()
    local _, A = posts()
    local _, B = posts()
    function A.only() return "a" end
    assert.are.equal("a", A:only())
    assert.is_nil(B.only)
  end)
end)

describe("instance methods", function()
  it("a function set on Model.instance is a method of every instance, with its snake_case name", function()
    local _, Post, Genre = posts()
    function Post.instance:shout() return self.title:upper() end
    Post.instance.fullTitle = function(post) return "#" .. post.id .. " " .. post.title end
    local p = Post:findByPk(2)
    assert.are.equal("B", p:shout())
    assert.are.equal("#2 b", p:fullTitle())
    assert.are.equal("#2 b", p:full_title())
    assert.are.equal(Post.instance.shout, p.shout)
    local g = assert(Genre:create { name = "x" })
    assert.has_error(function() return g:shout() end)
  end)

  it("an instance method cannot take the name of a field, a method or an association", function()
    local _, Post = posts()
    assert.error_matches(function() Post.instance.title = function() end end,
      "Post.instance.title: 'title' is already a field, method or association", 1, true)
    assert.error_matches(function() Post.instance.save = function() end end,
      "Post.instance.save: 'save' is already a field, method or association", 1, true)
    assert.error_matches(function() Post.instance.x = 1 end,
      "Post.instance.x: bad method (function expected, got number)", 1, true)
    function Post.instance.once() end
    assert.error_matches(function() function Post.instance.once() end end,
      "Post.instance.once: already set", 1, true)
  end)
end)
