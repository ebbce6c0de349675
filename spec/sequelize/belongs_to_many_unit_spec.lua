-- spec/sequelize/belongs_to_many_unit_spec.lua: Sequelize v6's
-- test/unit/associations/belongs-to-many.test.js, ported to junction. Sequelize's unit
-- tests read the association objects; junction's are read with Model:getAssociation, and
-- where an object has no counterpart the case checks the same thing by what the
-- association does.
local S = require "spec.sequelize.support"
local T = S.T

describe("belongsToMany", function()
  local db
  before_each(function() db = S.open() end)
  after_each(function() db:close() end)

  it("throws when invalid model is passed", function()
    S.define(db, "User", {})
    assert.has_error(function() db:associate { User = { { belongsToMany = 42, through = "x" } } } end,
      "db:associate: User: association 1: belongsToMany names no model (a string expected, got number)")
    assert.has_error(function() db:associate { User = { { belongsToMany = "Nope", through = "x" } } } end,
      "db:associate: User: belongsToMany 'Nope': no model of that name is defined")
  end)

  describe("proper syntax", function()
    it("throws an AssociationError if the through option is undefined, true, or null", function()
      S.define(db, "User", {}); S.define(db, "Task", {})
      assert.has_error(function() db:associate { User = { { belongsToMany = "Task", through = true } } } end,
        "db:associate: User: belongsToMany 'Task': bad option 'through' (boolean given)")
      assert.has_error(function() db:associate { User = { { belongsToMany = "Task" } } } end,
        "db:associate: User belongsToMany Task: missing option 'through' (the junction model, or its table name)")
    end)

    it("throws an AssociationError for a self-association defined without an alias", function()
      S.define(db, "User", {})
      assert.has_error(function() db:associate { User = { { belongsToMany = "User", through = "jointable" } } } end,
        "db:associate: User belongsToMany User: missing option 'as' (a belongsToMany of a model to itself"
        .. " needs a name, e.g. as = \"Friends\")")
    end)
  end)

  describe("timestamps", function()
    it("follows the global timestamps true option", function()
      S.define(db, "User", {}); S.define(db, "Task", {})
      assert(db:associate { User = { { belongsToMany = "Task", through = "user_task1" } } })
      -- junction's made junction model keeps snake_case timestamps
      local fields = table.concat(db:model("user_task1"):_info().fields, ",")
      assert.truthy(fields:find("created_at", 1, true))
      assert.truthy(fields:find("updated_at", 1, true))
    end)
  end)

  describe("optimizations using bulk create, destroy and update", function()
    it("uses one insert into statement", function()
      db:close()
      local log
      db, log = S.logged()
      local User = S.define(db, "User", { username = T.STRING(255) }, { timestamps = false })
      local Task = S.define(db, "Task", { title = T.STRING(255) }, { timestamps = false })
      assert(db:associate {
        User = { { belongsToMany = "Task", through = "UserTasks" } },
        Task = { { belongsToMany = "User", through = "UserTasks" } },
      })
      assert(db:sync())
      local user = assert(User:create { id = 1, username = "foo" })
      local t1, t2 = assert(Task:create { id = 12, title = "task1" }), assert(Task:create { id = 15, title = "task2" })
      for i = #log, 1, -1 do log[i] = nil end
      assert(user:setTasks { t1, t2 })
      assert.equal(1, S.count_matching(log, "INSERT INTO"))   -- on PostgreSQL inside the one WITH statement
    end)

    it("uses one delete from statement", function()
      db:close()
      local log
      db, log = S.logged()
      local User = S.define(db, "User", { username = T.STRING(255) }, { timestamps = false })
      local Task = S.define(db, "Task", { title = T.STRING(255) }, { timestamps = false })
      assert(db:associate {
        User = { { belongsToMany = "Task", through = "UserTasks" } },
        Task = { { belongsToMany = "User", through = "UserTasks" } },
      })
      assert(db:sync())
      local user = assert(User:create { id = 42, username = "foo" })
      local t1, t2 = assert(Task:create { id = 15, title = "task1" }), assert(Task:create { id = 16, title = "task2" })
      assert(user:setTasks { t1, t2 })
      for i = #log, 1, -1 do log[i] = nil end
      assert(user:setTasks {})
      assert.equal(1, S.count_matching(log, "DELETE FROM"))   -- on PostgreSQL inside the one WITH statement
    end)
  end)

  describe("foreign keys", function()
    it("should infer otherKey from paired BTM relationship with a through string defined", function()
      local User, Place = S.define(db, "User", {}), S.define(db, "Place", {})
      assert(db:associate {
        User = { { belongsToMany = "Place", through = "user_places", foreignKey = "user_id" } },
        Place = { { belongsToMany = "User", through = "user_places", foreignKey = "place_id" } },
      })
      assert(db:sync())
      local user, place = assert(User:create {}), assert(Place:create {})
      assert(place:addUser(user))
      assert.same({ { user_id = user.id, place_id = place.id } },
        assert(db:query("SELECT user_id, place_id FROM user_places")))
    end)
  end)

  describe("source/target keys", function()
    it("should infer targetKey from paired BTM relationship with a through string defined", function()
      local User = S.define(db, "User", { user_id = { type = T.UUID, unique = true } })
      local Place = S.define(db, "Place", { place_id = { type = T.UUID, unique = true } })
      assert(db:associate {
        User = { { belongsToMany = "Place", through = "user_places", sourceKey = "user_id" } },
        Place = { { belongsToMany = "User", through = "user_places", sourceKey = "place_id" } },
      })
      local places = User:_info().associations.Places:info()
      local users = Place:_info().associations.Users:info()
      assert.equal("user_id", places.sourceKey); assert.equal("place_id", users.sourceKey)
      assert.equal("place_id", places.targetKey); assert.equal("user_id", users.targetKey)
      assert(db:sync())
      local uid, pid = "6f1c2a44-0d6b-4c3e-9a55-0b8f3f9d2a11", "0a9e8d7c-6b5a-4f3e-8d2c-1b0a9f8e7d6c"
      local user = assert(User:create { user_id = uid })
      local place = assert(Place:create { place_id = pid })
      assert(user:addPlace(place))
      assert.same({ { user_id = uid, place_id = pid } }, assert(db:query("SELECT user_id, place_id FROM user_places")))
      assert.equal(user, place:getUsers()[1])
    end)

    it("should infer targetKey from paired BTM relationship with a through model defined", function()
      local User = S.define(db, "User", { user_id = { type = T.UUID, unique = true } })
      local Place = S.define(db, "Place", { place_id = { type = T.UUID, unique = true } })
      local UserPlace = S.define(db, "UserPlace", {
        id = { type = T.INTEGER, primaryKey = true, autoIncrement = true },
      }, { timestamps = false })
      assert(db:associate {
        User = { { belongsToMany = "Place", through = "UserPlace", sourceKey = "user_id" } },
        Place = { { belongsToMany = "User", through = "UserPlace", sourceKey = "place_id" } },
      })
      local places = User:_info().associations.Places:info()
      local users = Place:_info().associations.Users:info()
      assert.equal("user_id", places.sourceKey); assert.equal("place_id", users.sourceKey)
      assert.equal("place_id", places.targetKey); assert.equal("user_id", users.targetKey)
      assert.equal(3, #UserPlace:_info().fields)   -- the declared key and the two foreign keys
      assert(db:sync())
      local user = assert(User:create { user_id = "6f1c2a44-0d6b-4c3e-9a55-0b8f3f9d2a11" })
      local place = assert(Place:create { place_id = "0a9e8d7c-6b5a-4f3e-8d2c-1b0a9f8e7d6c" })
      assert(place:addUser(user))
      assert.equal(place, user:getPlaces()[1])
    end)
  end)

  describe("associations on the join table", function()
    local User, Project, UserProjects
    before_each(function()
      User, Project = S.define(db, "User", {}), S.define(db, "Project", {})
      UserProjects = S.define(db, "UserProjects", {
        user_id = { type = T.INTEGER, references = { model = "User", key = "id" } },
        project_id = { type = T.INTEGER, references = { model = "Project", key = "id" } },
      })
      assert(db:associate { UserProjects = { { belongsTo = "User" } } })
      assert(db:associate {
        User = { { belongsToMany = "Project", through = "UserProjects" } },
        Project = { { belongsToMany = "User", through = "UserProjects" } },
      })
      assert(db:associate { UserProjects = { { belongsTo = "Project" } } })
      assert(db:sync())
    end)

    it("should work for belongsTo associations defined before belongsToMany", function()
      local user, project = assert(User:create {}), assert(Project:create {})
      assert(user:addProject(project))
      local link = assert(UserProjects:findOne { where = { user_id = user.id } })
      assert.equal(user, link:getUser())
    end)

    it("should work for belongsTo associations defined after belongsToMany", function()
      local user, project = assert(User:create {}), assert(Project:create {})
      assert(user:addProject(project))
      local link = assert(UserProjects:findOne { where = { user_id = user.id } })
      assert.equal(project, link:getProject())
    end)
  end)

  describe("self-associations", function()
    it("does not pair multiple self associations with different through arguments", function()
      local User = S.define(db, "user", {})
      assert(db:associate { user = {
        { belongsToMany = "user", as = "Followers", through = "userFollowers" },
        { belongsToMany = "user", as = "Invites", foreignKey = "InviteeId", through = "invite" },
      } })
      assert(db:sync())
      local a, b, c = assert(User:create {}), assert(User:create {}), assert(User:create {})
      assert(a:addFollower(b))
      assert(a:addInvite(c))
      assert.same({ b.id }, S.sorted(a:getFollowers(), "id"))
      assert.same({ c.id }, S.sorted(a:getInvites(), "id"))
    end)

    it("works with singular and plural name for self-associations", function()
      local Service = S.define(db, "service", {})
      assert(db:associate { service = {
        { belongsToMany = "service", through = "Supplements", as = "supplements",
          foreignKey = "service_id", otherKey = "supplement_id" },
        { belongsToMany = "service", through = "Supplements", as = { singular = "supplemented", plural = "supplemented" },
          foreignKey = "supplement_id", otherKey = "service_id" },
      } })
      assert(db:sync())
      local s1, s2, s3 = assert(Service:create {}), assert(Service:create {}), assert(Service:create {})
      for _, m in ipairs { "getSupplements", "addSupplement", "addSupplements", "getSupplemented", "addSupplemented" } do
        assert.is_function(s1[m], m)
      end
      assert.has_error(function() return s1.getSupplementeds end)
      assert.has_error(function() return s1.addSupplementeds end)
      assert(s1:addSupplement(s2))
      assert(s3:addSupplemented(s1))        -- one instance
      assert(s3:addSupplemented { s2 })     -- a list
      assert.is_true(s3:hasSupplemented(s1))
      assert.is_true(s3:hasSupplemented { s1, s2 })
      -- s3 is supplemented by s1 and s2: s3 is a supplement of each
      assert.same({ s2.id, s3.id }, S.sorted(s1:getSupplements(), "id"))
      assert.same({ s3.id }, S.sorted(s2:getSupplements(), "id"))
      assert.same({ s1.id }, S.sorted(s2:getSupplemented(), "id"))
      assert.same({ s1.id, s2.id }, S.sorted(s3:getSupplemented(), "id"))
    end)
  end)

  describe("constraints", function()
    it("work properly when through is a string", function()
      S.define(db, "User", {}); S.define(db, "Group", {})
      assert(db:associate {
        User = { { belongsToMany = "Group", as = "MyGroups", through = "group_user", onUpdate = "RESTRICT", onDelete = "SET NULL" } },
        Group = { { belongsToMany = "User", as = "MyUsers", through = "group_user", onUpdate = "SET NULL", onDelete = "RESTRICT" } },
      })
      assert(db:sync())
      local fks = {}
      for col, fk in pairs(require("spec.helper").foreign_keys(db, "group_user")) do
        fks[col] = fk.on_update .. "/" .. fk.on_delete
      end
      assert.same({ user_id = "RESTRICT/SET NULL", group_id = "SET NULL/RESTRICT" }, fks)
    end)

    it("work properly when through is a model", function()
      S.define(db, "User", {}); S.define(db, "Group", {})
      S.define(db, "GroupUser", {
        user_id = { type = T.INTEGER, references = { model = "User", key = "id" } },
        group_id = { type = T.INTEGER, references = { model = "Group", key = "id" } },
      }, { tableName = "user_groups" })
      assert(db:associate {
        User = { { belongsToMany = "Group", as = "MyGroups", through = "GroupUser", onUpdate = "RESTRICT", onDelete = "SET NULL" } },
        Group = { { belongsToMany = "User", as = "MyUsers", through = "GroupUser", onUpdate = "SET NULL", onDelete = "RESTRICT" } },
      })
      assert(db:sync())
      local fks = {}
      for col, fk in pairs(require("spec.helper").foreign_keys(db, "user_groups")) do
        fks[col] = fk.on_update .. "/" .. fk.on_delete
      end
      assert.same({ user_id = "RESTRICT/SET NULL", group_id = "SET NULL/RESTRICT" }, fks)
    end)
  end)
  describe("foreign keys added for you", function()
    it("correctly generates a foreign/other key when none are defined", function()
      local User = S.define(db, "user", {})
      local UserFollowers = S.define(db, "userFollowers", {
        id = { type = T.INTEGER, primaryKey = true, autoIncrement = true },
      }, { timestamps = false })
      assert(db:associate { user = { { belongsToMany = "user", as = "Followers", through = "userFollowers" } } })
      local info = User:_info().associations.Followers:info()
      assert.equal("userId", info.foreignKey)
      assert.equal("followerId", info.otherKey)
      assert.same({ "id", "userId", "followerId" }, UserFollowers:_info().fields)
      assert(db:sync())
      local a, b = assert(User:create {}), assert(User:create {})
      assert(a:addFollower(b))
      assert.same({ b.id }, S.sorted(a:getFollowers(), "id"))
    end)
  end)

  describe("pseudo associations", function()
    -- Sequelize's toSource/toTarget (the junction model's belongsTo), manyFromSource/manyFromTarget
    -- (hasMany) and oneFromSource/oneFromTarget (hasOne) are made for junction too, under the names
    -- getAssociation(...).throughAssociations gives (toSource, toTarget, fromSource, fromSourceOne)
    local Product, Tag, ProductTag
    local function define(product_fields, tag_fields)
      Product = S.define(db, "Product", product_fields or { title = T.STRING(255) })
      Tag = S.define(db, "Tag", tag_fields or { name = T.STRING(255) })
      ProductTag = S.define(db, "ProductTag", {
        id = { type = T.INTEGER, primaryKey = true, autoIncrement = true }, priority = T.INTEGER,
      }, { timestamps = false })
    end
    local function made(model, alias, what)
      local ta = model:getAssociation(alias).throughAssociations
      return ta[what] and (what:sub(1, 2) == "to" and ProductTag or model):getAssociation(ta[what])
    end
    local function check(kind, from_key)
      for _, p in ipairs { { Product, "Tags", Tag }, { Tag, "Products", Product } } do
        local model, alias, other = p[1], p[2], p[3]
        local btm = model:getAssociation(alias)
        local other_btm = other:getAssociation(alias == "Tags" and "Products" or "Tags")
        if kind == "belongsTo" then
          assert.equal("belongsTo", made(model, alias, "toSource").kind)
          assert.equal(model, made(model, alias, "toSource").target)
          assert.equal(btm.foreignKey, made(model, alias, "toSource").foreignKey)
          assert.equal(other, made(model, alias, "toTarget").target)
          assert.equal(btm.otherKey, made(model, alias, "toTarget").foreignKey)
        else
          local what = kind == "hasMany" and "fromSource" or "fromSourceOne"
          local from, to = made(model, alias, what), made(other, other_btm.as, what)
          assert.equal(kind, from.kind); assert.equal(kind, to.kind)
          assert.equal(ProductTag, from.target)
          assert.equal(btm[from_key or "foreignKey"], from[from_key or "foreignKey"])
          assert.equal(btm[from_key and "targetKey" or "otherKey"], to[from_key or "foreignKey"])
        end
      end
    end
    local function fields()
      local out = {}
      for i, f in ipairs(ProductTag:_info().fields) do out[i] = f end
      return out
    end

    it("should setup belongsTo relations to source and target from join model with defined foreign/other keys", function()
      define()
      assert(db:associate {
        Product = { { belongsToMany = "Tag", through = "ProductTag", foreignKey = "productId", otherKey = "tagId" } },
        Tag = { { belongsToMany = "Product", through = "ProductTag", foreignKey = "tagId", otherKey = "productId" } },
      })
      check("belongsTo")
      assert.same({ "id", "priority", "productId", "tagId" }, fields())
      assert(db:sync())
      local p, t = assert(Product:create { title = "chair" }), assert(Tag:create { name = "wood" })
      assert(p:addTag(t, { through = { priority = 3 } }))
      local link = assert(ProductTag:findOne {})
      assert.equal(p, link:getProduct()); assert.equal(t, link:getTag())
      local links = assert(ProductTag:findAll { include = { "Product", "Tag" } })
      assert.equal("chair", links[1].Product.title); assert.equal("wood", links[1].Tag.name)
    end)

    it("should setup hasMany relations to source and target from join model with defined foreign/other keys", function()
      define()
      assert(db:associate {
        Product = { { belongsToMany = "Tag", through = "ProductTag", foreignKey = "productId", otherKey = "tagId" } },
        Tag = { { belongsToMany = "Product", through = "ProductTag", foreignKey = "tagId", otherKey = "productId" } },
      })
      check("hasMany")
      assert.same({ "id", "priority", "productId", "tagId" }, fields())
      assert(db:sync())
      local p, t = assert(Product:create { title = "chair" }), assert(Tag:create { name = "wood" })
      assert(p:addTag(t, { through = { priority = 3 } }))
      assert.equal(3, p:getTagsProducts()[1].priority)
      local ps = assert(Product:findAll { include = { "TagsProducts" } })
      assert.equal(3, ps[1].TagsProducts[1].priority)
      assert.equal(1, t:countProductsTags())
    end)

    it("should setup hasOne relations to source and target from join model with defined foreign/other keys", function()
      define()
      assert(db:associate {
        Product = { { belongsToMany = "Tag", through = "ProductTag", foreignKey = "productId", otherKey = "tagId" } },
        Tag = { { belongsToMany = "Product", through = "ProductTag", foreignKey = "tagId", otherKey = "productId" } },
      })
      check("hasOne")
      assert.same({ "id", "priority", "productId", "tagId" }, fields())
      assert(db:sync())
      local p, t = assert(Product:create { title = "chair" }), assert(Tag:create { name = "wood" })
      assert(p:addTag(t, { through = { priority = 3 } }))
      assert.equal(3, p:getTagProduct().priority)
      assert.equal(3, assert(Tag:findOne { include = { "ProductTag" } }).ProductTag.priority)
    end)

    it("should setup hasOne relations to source and target from join model with defined source keys", function()
      define({ title = T.STRING(255), productSecondaryId = T.STRING(255) },
             { name = T.STRING(255), tagSecondaryId = T.STRING(255) })
      assert(db:associate {
        Product = { { belongsToMany = "Tag", through = "ProductTag", sourceKey = "productSecondaryId" } },
        Tag = { { belongsToMany = "Product", through = "ProductTag", sourceKey = "tagSecondaryId" } },
      })
      check("hasOne", "sourceKey")
      assert.same({ "id", "priority", "productProductSecondaryId", "tagTagSecondaryId" }, fields())
    end)

    it("should setup belongsTo relations to source and target from join model with only foreign keys defined", function()
      define()
      assert(db:associate {
        Product = { { belongsToMany = "Tag", through = "ProductTag", foreignKey = "product_ID" } },
        Tag = { { belongsToMany = "Product", through = "ProductTag", foreignKey = "tag_ID" } },
      })
      check("belongsTo")
      assert.same({ "id", "priority", "product_ID", "tag_ID" }, fields())
    end)

    it("should setup hasOne relations to source and target from join model with only foreign keys defined", function()
      define()
      assert(db:associate {
        Product = { { belongsToMany = "Tag", through = "ProductTag", foreignKey = "product_ID" } },
        Tag = { { belongsToMany = "Product", through = "ProductTag", foreignKey = "tag_ID" } },
      })
      check("hasOne")
      assert.same({ "id", "priority", "product_ID", "tag_ID" }, fields())
    end)

    it("should setup belongsTo relations to source and target from join model with no foreign keys defined", function()
      define()
      assert(db:associate {
        Product = { { belongsToMany = "Tag", through = "ProductTag" } },
        Tag = { { belongsToMany = "Product", through = "ProductTag" } },
      })
      check("belongsTo")
      assert.same({ "id", "priority", "productId", "tagId" }, fields())
    end)

    it("associations declared by the user win over the ones made for the junction model", function()
      define()
      assert(db:associate {
        Product = { { belongsToMany = "Tag", through = "ProductTag" }, { hasMany = "ProductTag", as = "Links" } },
        Tag = { { belongsToMany = "Product", through = "ProductTag" } },
        ProductTag = { { belongsTo = "Tag", as = "Label", foreignKey = "tagId" } },
      })
      -- the same two models by the same key: the declared one stands alone
      assert.is_nil(Product:getAssociation("TagsProducts"))
      assert.is_nil(Product:getAssociation("TagProduct"))
      assert.is_nil(ProductTag:getAssociation("Tag"))
      assert.is_nil(Product:getAssociation("Tags").throughAssociations.toTarget)
      assert.equal("ProductsTags", Tag:getAssociation("Products").throughAssociations.fromSource)
      assert.equal("Product", ProductTag:getAssociation("Product").as)
      -- one declared later by the name of a made one replaces it
      assert(db:associate { ProductTag = { { belongsTo = "Product", as = "Product", foreignKey = "productId",
                                              onDelete = "cascade" } } })
      assert.equal("belongsTo", ProductTag:getAssociation("Product").kind)
      assert(db:sync())
      local p, t = assert(Product:create { title = "chair" }), assert(Tag:create { name = "wood" })
      assert(p:addTag(t))
      assert.equal(1, #p:getLinks())
      assert.equal(p, assert(ProductTag:findOne { include = { Product } }).Product)
    end)
  end)

  describe("small options", function()
    local function has_timestamps(model)
      local f = {}
      for _, name in ipairs(model:_info().fields) do f[name] = true end
      return f.created_at == true and f.updated_at == true
    end

    it("allows me to override the global timestamps option", function()
      S.define(db, "User", {}); S.define(db, "Task", {})
      assert(db:associate { User = { { belongsToMany = "Task", through = "user_task2", timestamps = false } } })
      assert.is_false(has_timestamps(db:model("user_task2")))
      assert(db:associate { Task = { { belongsToMany = "User", through = "user_task3" } } })
      assert.is_true(has_timestamps(db:model("user_task3")))
      assert(db:sync())
      -- on a junction model the user declares, timestamps belong to its define
      S.define(db, "Own", {})
      assert.has_error(function()
        db:associate { User = { { belongsToMany = "Task", as = "Others", through = "Own", timestamps = false } } }
      end, "db:associate: User belongsToMany Task: bad option 'timestamps' (for a junction model made for a table "
           .. "name; Own is declared: give timestamps in its db:define)")
      assert.has_error(function() db:associate { User = { { hasMany = "Task", timestamps = false } } } end,
        "db:associate: User: hasMany 'Task': bad option 'timestamps' (for belongsToMany)")
    end)

    it("follows the global timestamps false option", function()
      -- junction has no connection-wide define options: each define says timestamps = false, and the
      -- junction model made for a table name follows the association's timestamps option
      S.define(db, "User", {}, { timestamps = false }); S.define(db, "Task", {}, { timestamps = false })
      assert(db:associate { User = { { belongsToMany = "Task", through = "user_task3", timestamps = false } } })
      assert.is_false(has_timestamps(db:model("user_task3")))
      assert.has_error(function() S.junction.open(":memory:", { define = { timestamps = false } }) end)
    end)

    it("generate unique identifier with very long length", function()
      -- the composite unique of the keys junction adds is a group name; the SQL constraint is unnamed,
      -- so no identifier limit applies (63 bytes on PostgreSQL). Keys the user declares keep their uniques.
      S.define(db, "User", {}, { tableName = "table_user_with_very_long_name" })
      S.define(db, "Group", {}, { tableName = "table_group_with_very_long_name" })
      S.define(db, "GroupUser", {}, { tableName = "table_user_group_with_very_long_name_and_more_characters_63" })
      assert(db:associate {
        User = { { belongsToMany = "Group", as = "MyGroups", through = "GroupUser", foreignKey = "id_user_very_long_field" } },
        Group = { { belongsToMany = "User", as = "MyUsers", through = "GroupUser", foreignKey = "id_group_very_long_field" } },
      })
      local decl = {}
      for _, d in ipairs(db:model("GroupUser"):_info().declarations) do decl[d.name] = d end
      assert.equal(decl.id_user_very_long_field.unique, decl.id_group_very_long_field.unique)
      assert.is_string(decl.id_user_very_long_field.unique)
      assert(db:sync())
      local u, g = assert(db:model("User"):create {}), assert(db:model("Group"):create {})
      assert(u:addMyGroup(g))
      assert(u:addMyGroup(g))   -- adding it again links nothing twice
      assert.equal(1, db:model("GroupUser"):count())
    end)

    it("generate unique identifier with custom name", function()
      S.define(db, "User", {}, { tableName = "table_user_with_very_long_name" })
      S.define(db, "Group", {}, { tableName = "table_group_with_very_long_name" })
      S.define(db, "GroupUser", {
        id_user_very_long_field = { type = T.INTEGER, references = { model = "User", key = "id" } },
        id_group_very_long_field = { type = T.INTEGER, references = { model = "Group", key = "id" } },
      }, { tableName = "table_user_group_with_very_long_name" })
      assert(db:associate {
        User = { { belongsToMany = "Group", as = "MyGroups", through = "GroupUser",
                   foreignKey = "id_user_very_long_field", uniqueKey = "custom_user_group_unique" } },
        Group = { { belongsToMany = "User", as = "MyUsers", through = "GroupUser",
                    foreignKey = "id_group_very_long_field", uniqueKey = "custom_user_group_unique" } },
      })
      local decl = {}
      for _, d in ipairs(db:model("GroupUser"):_info().declarations) do decl[d.name] = d end
      assert.equal("custom_user_group_unique", decl.id_user_very_long_field.unique)
      assert.equal("custom_user_group_unique", decl.id_group_very_long_field.unique)
      assert(db:sync())
    end)
  end)

  describe("the made junction model", function()
    -- Sequelize checks that the through model's options hold no defaultScope,
    -- scopes or validate of the source; junction checks what they would do:
    -- the junction rows are neither filtered by the source's scope nor
    -- refused by its validators.
    it("should not inherit scopes from parent to join table", function()
      S.define(db, "A", { name = { type = T.STRING(30) } },
               { defaultScope = { where = { name = "kept" } }, scopes = { other = { where = { name = "x" } } } })
      S.define(db, "B", {})
      assert(db:associate { A = { { belongsToMany = "B", through = "AB" } } })
      assert(db:sync())
      local A, B, AB = db:model("A"), db:model("B"), db:model("AB")
      local a = assert(A:create { name = "kept" })
      assert(B:create {}); assert(B:create {})
      assert(a:setBs { 1, 2 })
      assert.equal(2, assert(AB:count()))
      assert.equal(2, #assert(AB:findAll()))
      assert.has_error(function() return AB:scope("other") end)
      assert.equal(2, #assert(a:getBs()))
    end)

    it("should not inherit validations from parent to join table", function()
      S.define(db, "A", { name = { type = T.STRING(30) } },
               { validate = { named = function(inst)
                   if inst.name == nil then return nil, "an A needs a name" end
                   return true
                 end } })
      S.define(db, "B", {})
      assert(db:associate { A = { { belongsToMany = "B", through = "AB" } } })
      assert(db:sync())
      local A, B, AB = db:model("A"), db:model("B"), db:model("AB")
      local ok, msg = A:create {}
      assert.is_nil(ok)
      assert.truthy(msg:find("an A needs a name", 1, true))
      local a = assert(A:create { name = "a" })
      local b = assert(B:create {})
      assert(a:addB(b))
      assert.equal(1, assert(AB:count()))
    end)
  end)
end)
