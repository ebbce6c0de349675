-- spec/sequelize/include_spec.lua: the many-to-many cases of Sequelize v6's
-- test/integration/include/findAll.test.js, ported to junction.
local S = require "spec.sequelize.support"
local T = S.T

describe("Include", function()
  local db
  before_each(function() db = S.open() end)
  after_each(function() db:close() end)

  describe("findAll", function()
    -- Product and Tag through ProductTag (a priority per link)
    local function products_tags()
      local Product = S.define(db, "Product", { title = T.STRING(255) })
      local Tag = S.define(db, "Tag", { name = T.STRING(255) })
      S.define(db, "ProductTag", {
        priority = T.INTEGER,
        product_id = { type = T.INTEGER, references = { model = "Product", key = "id" } },
        tag_id = { type = T.INTEGER, references = { model = "Tag", key = "id" } },
      })
      assert(db:associate {
        Product = { { belongsToMany = "Tag", through = "ProductTag" } },
        Tag = { { belongsToMany = "Product", through = "ProductTag" } },
      })
      assert(db:sync())
      assert(Product:bulkCreate { { title = "Chair" }, { title = "Desk" }, { title = "Dress" } })
      assert(Tag:bulkCreate { { name = "A" }, { name = "B" }, { name = "C" } })
      local p, t = assert(Product:findAll { order = "id" }), assert(Tag:findAll { order = "id" })
      assert(p[1]:addTag(t[1], { through = { priority = 1 } }))
      assert(p[1]:addTag(t[2], { through = { priority = 2 } }))
      assert(p[2]:addTag(t[2], { through = { priority = 1 } }))
      assert(p[3]:addTag(t[1], { through = { priority = 3 } }))
      assert(p[3]:addTag(t[2], { through = { priority = 1 } }))
      assert(p[3]:addTag(t[3], { through = { priority = 2 } }))
      return Product, Tag
    end

    it("should include attributes from through models", function()
      local Product = products_tags()
      local products = assert(Product:findAll { include = { Tags = { order = "id" } }, order = "id" })
      assert.equal(1, products[1].Tags[1].ProductTag.priority)
      assert.equal(2, products[1].Tags[2].ProductTag.priority)
      assert.equal(1, products[2].Tags[1].ProductTag.priority)
      assert.equal(3, products[3].Tags[1].ProductTag.priority)
      assert.equal(1, products[3].Tags[2].ProductTag.priority)
      assert.equal(2, products[3].Tags[3].ProductTag.priority)
    end)

    it("should be possible to turn off the attributes for the through table", function()
      local Product = products_tags()
      local products = assert(Product:findAll { attributes = { "title" },
        include = { { association = "Tags", through = { attributes = {} }, required = true } } })
      assert.equal(3, #products)
      for _, product in ipairs(products) do
        assert.is_true(#product.Tags > 0)
        for _, tag in ipairs(product.Tags) do
          assert.is_nil(tag.ProductTag)
          assert.is_nil(tag:toTable().ProductTag)
        end
      end
      -- some of them: the junction row carries those alone
      products = assert(Product:findAll { order = "id", include = { { association = "Tags",
        through = { attributes = { "priority" } }, order = "id" } } })
      assert.equal(2, products[1].Tags[2].ProductTag.priority)
      assert.same({ priority = 2 }, products[1].Tags[2].ProductTag:toTable())
    end)

    it("should be possible to select on columns inside a through table", function()
      local Product = products_tags()
      local products = assert(Product:findAll { attributes = { "title" },
        include = { { association = "Tags", through = { where = { product_id = 3 } }, required = true } } })
      assert.equal(1, #products)
      assert.equal("Dress", products[1].title)
      -- not required: every product, the tags filtered on the junction
      products = assert(Product:findAll { order = "id",
        include = { { association = "Tags", through = { where = { priority = 1 } }, order = "id" } } })
      assert.equal(3, #products)
      assert.same({ "A" }, S.sorted(products[1].Tags, "name"))
      assert.same({ "B" }, S.sorted(products[2].Tags, "name"))
      assert.same({ "B" }, S.sorted(products[3].Tags, "name"))
      assert.has_error(function()
        Product:findAll { include = { { association = "Tags", through = { where = { nope = 1 } } } } }
      end)
      assert.has_error(function()
        Product:findAll { include = { { association = "Tags", through = { wehre = { priority = 1 } } } } }
      end, "Product:findAll: include 'Tags': option 'through': bad option 'wehre' (unknown key)")
    end)

    it("should be possible to select on columns inside a through table and a limit", function()
      local Product = products_tags()
      local products = assert(Product:findAll { attributes = { "title" }, limit = 5,
        include = { { association = "Tags", through = { where = { product_id = 3 } }, required = true } } })
      assert.equal(1, #products)
      assert.equal(3, #products[1].Tags)
    end)

    it("should support including date fields, with the correct timeszone", function()
      local User = S.define(db, "user", { dateField = T.DATE }, { timestamps = false })
      local Group = S.define(db, "group", { dateField = T.DATE }, { timestamps = false })
      assert(db:associate {
        user = { { belongsToMany = "group", through = "group_user" } },
        group = { { belongsToMany = "user", through = "group_user" } },
      })
      assert(db:sync())
      local utc = 1392854400   -- Date.UTC(2014, 1, 20), in seconds
      local user = assert(User:create { dateField = utc })
      local group = assert(Group:create { dateField = utc })
      assert(user:addGroup(group))
      local users = assert(User:findAll { where = { id = user.id }, include = { Group } })
      assert.equal("2014-02-20 00:00:00.000", users[1].dateField)
      assert.equal("2014-02-20 00:00:00.000", users[1].groups[1].dateField)
    end)

    it("should still pull the main record(s) when an included model is not required and has where restrictions without matches", function()
      local A = S.define(db, "a", { name = T.STRING(40) })
      local B = S.define(db, "b", { name = T.STRING(40) })
      assert(db:associate {
        a = { { belongsToMany = "b", through = "a_b" } },
        b = { { belongsToMany = "a", through = "a_b" } },
      })
      assert(db:sync())
      assert(A:create { name = "Foobar" })
      local as = assert(A:findAll { where = { name = "Foobar" },
                                    include = { { association = B, where = { name = "idontexist" }, required = false } } })
      assert.equal(1, #as)
      assert.same({}, as[1].bs)
    end)

    it("should return posts with nested include with inner join with a m:n association", function()
      local User = S.define(db, "User", { username = { type = T.STRING(255), primaryKey = true } })
      local Entity = S.define(db, "Entity", {
        entity_id = { type = T.INTEGER, autoIncrement = true, primaryKey = true },
        creator = { type = T.STRING(255), allowNull = false },
        votes = { type = T.INTEGER, allowNull = false, defaultValue = 0 },
      })
      local Post = S.define(db, "Post", { post_id = { type = T.INTEGER, allowNull = false, primaryKey = true } })
      local Sentient = S.define(db, "TaggableSentient", { nametag = { type = T.STRING(255), primaryKey = true } })
      S.define(db, "EntityTag", {
        entity_id = { type = T.INTEGER, references = { model = "Entity", key = "entity_id" } },
        tag_name = { type = T.STRING(255), references = { model = "TaggableSentient", key = "nametag" } },
      })
      assert(db:associate {
        Entity = { { belongsTo = "User", foreignKey = "creator", targetKey = "username" },
                   { belongsToMany = "TaggableSentient", as = "tags", through = "EntityTag",
                     foreignKey = "entity_id", otherKey = "tag_name" } },
        Post = { { belongsTo = "Entity", foreignKey = "post_id", targetKey = "entity_id" } },
        TaggableSentient = { { belongsToMany = "Entity", as = "tags", through = "EntityTag",
                               foreignKey = "tag_name", otherKey = "entity_id" } },
      })
      assert(db:sync())
      assert(User:create { username = "bob" })
      assert(Sentient:create { nametag = "bob" })
      local entity = assert(Entity:create { creator = "bob" })
      assert(Post:create { post_id = entity.entity_id })
      -- Sequelize's entity.addTags('bob'): a bare key for a plural method is misuse in junction
      assert.has_error(function() entity:addTags("bob") end)
      assert(entity:addTag("bob"))
      local posts = assert(Post:findAll {
        include = { { association = Entity, required = true, include = {
          { association = User, required = true },
          -- Sequelize filters the junction (through.where tag_name); tag_name refers to nametag
          { as = "tags", required = true, where = { nametag = { "bob" } } },
        } } },
        limit = 5, offset = 0,
      })
      assert.equal(1, #posts)
      assert.equal("bob", posts[1].Entity.creator)
      assert.equal(1, #posts[1].Entity.tags)
    end)

    it("should work with an empty include.where", function()
      -- junction refuses an empty where (a nil value such as { id = params.id } leaves it empty):
      -- on a belongsToMany and a belongsTo include alike, before any query, with or without rows
      local User = S.define(db, "User", {})
      S.define(db, "Company", {}); local Group = S.define(db, "Group", {})
      assert(db:associate {
        User = { { belongsTo = "Company" }, { belongsToMany = "Group", through = "UsersGroups" } },
        Group = { { belongsToMany = "User", through = "UsersGroups" } },
      })
      assert(db:sync())
      local Company = db:model("Company")
      local empty = "bad where %(an empty table"
      for _, inc in ipairs { { { association = Group, where = {} } }, { { association = Company, where = {} } },
                             { { association = Group, where = {} }, { association = Company, where = {} } } } do
        local ok, e = pcall(User.findAll, User, { include = inc })
        assert.is_false(ok)
        assert.matches("User:findAll: " .. empty, e)
      end
      assert(User:create {})
      local ok, e = pcall(User.findAll, User, { include = { { association = Company, where = {} } } })
      assert.is_false(ok)
      assert.matches(empty, e)
      -- Sequelize's where: {} is no where: leave it out
      assert.equal(1, #assert(User:findAll { include = { { association = Group }, { association = Company } } }))
    end)

    it("an include entry with association = Model and as names the association as gives", function()
      local User = S.define(db, "User", {})
      local Group = S.define(db, "Group", { name = T.STRING(20) })
      assert(db:associate { User = {
        { belongsToMany = "Group", through = "UserTeams", as = "Teams" },
        { belongsToMany = "Group", through = "UserClubs", as = "Clubs" },
      } })
      assert(db:sync())
      local u = assert(User:create {})
      assert(u:addTeam(assert(Group:create { name = "team" })))
      assert(u:addClub(assert(Group:create { name = "club" })))
      local users = assert(User:findAll { include = { { association = Group, as = "Clubs" } } })
      assert.equal("club", users[1].Clubs[1].name)
      assert.is_nil(users[1].Teams)
      users = assert(User:findAll { include = { { association = "Teams", as = "Teams", where = { name = "team" } } } })
      assert.equal("team", users[1].Teams[1].name)
      -- a contradiction raises: never one of the two silently
      assert.has_error(function() User:findAll { include = { { association = "Clubs", as = "Teams" } } } end,
        "User:findAll: bad include (association 'Clubs' and as 'Teams' name two associations: give one)")
      assert.has_error(function() User:findAll { include = { { association = User, as = "Teams" } } } end,
        "User:findAll: bad include (as 'Teams' is User's association to Group, not to User)")
      assert.has_error(function() User:findAll { include = { { association = 1, as = "Teams" } } } end,
        "User:findAll: bad include option 'association' (an alias or a model expected, got number)")
    end)

    it("should be possible to extend the on clause with a where option on a hasMany include with a through model", function()
      local Product = S.define(db, "Product", { title = T.STRING(255) })
      local Tag = S.define(db, "Tag", { name = T.STRING(255) })
      S.define(db, "ProductTag", { priority = T.INTEGER })
      assert(db:associate {
        Product = { { belongsToMany = "Tag", through = "ProductTag" } },
        Tag = { { belongsToMany = "Product", through = "ProductTag" } },
      })
      assert(db:sync())
      assert(Product:bulkCreate { { title = "Chair" }, { title = "Desk" }, { title = "Dress" } })
      assert(Tag:bulkCreate { { name = "A" }, { name = "B" }, { name = "C" } })
      local p, t = assert(Product:findAll { order = "id" }), assert(Tag:findAll { order = "id" })
      assert(p[1]:addTag(t[1], { through = { priority = 1 } }))
      assert(p[1]:addTag(t[2], { through = { priority = 2 } }))
      assert(p[2]:addTag(t[2], { through = { priority = 1 } }))
      assert(p[3]:addTag(t[1], { through = { priority = 3 } }))
      assert(p[3]:addTag(t[2], { through = { priority = 1 } }))
      assert(p[3]:addTag(t[3], { through = { priority = 2 } }))
      local products = assert(Product:findAll { include = { { association = Tag, where = { name = "C" } } } })
      assert.equal(1, #products)
      assert.equal(1, #products[1].Tags)
      assert.equal("Dress", products[1].title)
      assert.equal(2, products[1].Tags[1].ProductTag.priority)
    end)

    it("should be possible to use limit and a where on a hasMany with a through model with additional includes", function()
      local Company = S.define(db, "Company", { name = T.STRING(255) })
      local Product = S.define(db, "Product", { title = T.STRING(255) })
      local Tag = S.define(db, "Tag", { name = T.STRING(255) })
      local Price = S.define(db, "Price", { value = T.REAL })
      assert(db:associate {
        Product = { { belongsToMany = "Tag", through = "product_tag" }, { belongsTo = "Tag", as = "Category" },
                    { belongsTo = "Company" }, { hasMany = "Price" } },
        Tag = { { belongsToMany = "Product", through = "product_tag" } },
        Price = { { belongsTo = "Product" } },
      })
      assert(db:sync())
      assert(Company:bulkCreate { { name = "NYSE" }, { name = "NASDAQ" } })
      assert(Tag:bulkCreate { { name = "A" }, { name = "B" }, { name = "C" }, { name = "D" } })
      local tags = assert(Tag:findAll { order = "id" })
      for i = 1, 14 do
        local p = assert(Product:create { title = "p" .. i, companyId = 1 + i % 2 })
        -- every product has a price; all but the 13th have a tag of A, B, C, and some have D
        assert(Price:create { value = i * 10, productId = p.id })
        if i ~= 13 then assert(p:addTag(tags[1 + i % 3])) end
        if i % 4 == 0 then assert(p:addTag(tags[4])) end
      end
      -- (Product has two associations to Tag, Tags and Category: as names the one, Sequelize's model: Tag)
      local products = assert(Product:findAll {
        include = { { association = Company }, { association = Tag, as = "Tags", where = { name = { "A", "B", "C" } } },
                    { association = Price } },
        limit = 10, order = { { "id", "ASC" } },
      })
      assert.equal(10, #products)
      for _, product in ipairs(products) do
        assert.is_true(#product.Tags > 0)
        assert.is_true(#product.Prices > 0)
        assert.is_not_nil(product.Company)
        for _, tag in ipairs(product.Tags) do assert.is_truthy(({ A = 1, B = 1, C = 1 })[tag.name]) end
      end
    end)
  end)
end)
