-- spec/sequelize/include_find_spec.lua: the many-to-many cases of Sequelize v6's
-- test/integration/include.test.js, ported to junction.
local S = require "spec.sequelize.support"
local T = S.T

describe("Include", function()
  local db
  before_each(function() db = S.open() end)
  after_each(function() db:close() end)

  describe("find", function()
    it("should support a belongsToMany association reference", function()
      local User, Group = S.define(db, "user", {}), S.define(db, "group", {})
      assert(db:associate {
        user = { { belongsToMany = "group", through = "UserGroup" } },
        group = { { belongsToMany = "user", through = "UserGroup" } },
      })
      assert(db:sync())
      local created = assert(User:create {})
      local group = assert(created:createGroup {})
      local user = assert(User:findOne { include = { "groups" } })
      assert.same({ group }, user.groups)
      local _ = Group
    end)

    it("should support a simple nested hasMany to hasMany include", function()
      -- Sequelize creates the products nested in User.create; here they carry user_id
      local User = S.define(db, "User", {})
      local Product = S.define(db, "Product", { title = T.STRING(255), user_id = T.INTEGER })
      local Tag = S.define(db, "Tag", { name = T.STRING(255) })
      assert(db:associate {
        User = { { hasMany = "Product" } },
        Product = { { belongsToMany = "Tag", through = "product_tag" } },
        Tag = { { belongsToMany = "Product", through = "product_tag" } },
      })
      assert(db:sync())
      assert(User:create { id = 1 })
      assert(Product:bulkCreate { { title = "Chair", user_id = 1 }, { title = "Desk", user_id = 1 },
                                  { title = "Dress", user_id = 1 }, { title = "Bed", user_id = 1 } })
      assert(Tag:bulkCreate { { name = "A" }, { name = "B" }, { name = "C" } })
      local products = assert(Product:findAll { order = "id" })
      local tags = assert(Tag:findAll { order = "id" })
      assert(products[1]:setTags { tags[1], tags[3] })
      assert(products[2]:setTags { tags[2] })
      assert(products[3]:setTags { tags[1], tags[2], tags[3] })
      local user = assert(User:findOne { where = { id = 1 },
                                         include = { Products = { order = "id", include = { "Tags" } } } })
      assert.equal(4, #user.Products)
      assert.equal(2, #user.Products[1].Tags)
      assert.equal(1, #user.Products[2].Tags)
      assert.equal(3, #user.Products[3].Tags)
      assert.equal(0, #user.Products[4].Tags)
    end)

    it("should support self associated hasMany (with through) include", function()
      local Group = S.define(db, "Group", { name = T.STRING(255) })
      assert(db:associate { Group = {
        { belongsToMany = "Group", through = "groups_outsourcing_companies", as = "OutsourcingCompanies" },
      } })
      assert(db:sync())
      assert(Group:bulkCreate { { name = "SoccerMoms" }, { name = "Coca Cola" }, { name = "Dell" }, { name = "Pepsi" } })
      local groups = assert(Group:findAll { order = "id" })
      assert(groups[1]:setOutsourcingCompanies { groups[2], groups[3], groups[4] })
      local group = assert(Group:findOne { where = { id = groups[1].id },
                                           include = { { as = "OutsourcingCompanies" } } })
      assert.equal(3, #group.OutsourcingCompanies)
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
      local user0 = assert(User:create { dateField = utc })
      assert(user0:addGroup(assert(Group:create { dateField = utc })))
      local user = assert(User:findOne { where = { id = user0.id }, include = { Group } })
      assert.equal("2014-02-20 00:00:00.000", user.dateField)
      assert.equal("2014-02-20 00:00:00.000", user.groups[1].dateField)
    end)

    it("should support include when retrieving associated objects", function()
      local User = S.define(db, "user", { name = T.STRING(255) })
      local Group = S.define(db, "group", { name = T.STRING(255), user_id = T.INTEGER })
      S.define(db, "user_group", {
        vip = T.INTEGER,
        member_id = { type = T.INTEGER, references = { model = "user", key = "id" } },
        club_id = { type = T.INTEGER, references = { model = "group", key = "id" } },
      })
      assert(db:associate {
        user = { { hasMany = "group" }, { belongsToMany = "group", through = "user_group", as = "Clubs" } },
        group = { { belongsTo = "user" }, { belongsToMany = "user", through = "user_group", as = "Members" } },
      })
      assert(db:sync())
      local owner = assert(User:create { name = "Owner" })
      local member = assert(User:create { name = "Member" })
      local group = assert(Group:create { name = "Group" })
      assert(owner:addGroup(group))
      assert(group:addMember(member))
      local groups = assert(owner:getGroups { include = { { as = "Members" } } })
      assert.equal(1, #groups)
      assert.equal("Member", groups[1].Members[1].name)
    end)
  end)

  describe("association getter", function()
    it("should support getting an include on a N:M association getter", function()
      local Question = S.define(db, "Question", { questionnaire_id = T.INTEGER })
      local Answer = S.define(db, "Answer", {})
      local Questionnaire = S.define(db, "Questionnaire", {})
      assert(db:associate {
        Question = { { belongsToMany = "Answer", through = "question_answer" }, { belongsTo = "Questionnaire" } },
        Answer = { { belongsToMany = "Question", through = "question_answer" } },
        Questionnaire = { { hasMany = "Question" } },
      })
      assert(db:sync())
      local questionnaire = assert(Questionnaire:create {})
      assert.same({}, assert(questionnaire:getQuestions { include = { Answer } }))
      local q = assert(questionnaire:createQuestion {})
      assert(q:addAnswer(assert(Answer:create {})))
      local qs = assert(questionnaire:getQuestions { include = { Answer } })
      assert.equal(1, #qs[1].Answers)
      local _ = Question
    end)
  end)
end)
