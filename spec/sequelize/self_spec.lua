-- spec/sequelize/self_spec.lua: Sequelize v6's test/integration/associations/self.test.js,
-- ported to junction (associations of a model with itself).
local S = require "spec.sequelize.support"
local T = S.T

describe("Self", function()
  local db
  before_each(function() db = S.open() end)
  after_each(function() db:close() end)

  it("supports freezeTableName", function()
    local Group = S.define(db, "Group", { parent_id = T.INTEGER },
      { tableName = "user_group", timestamps = false, underscored = true })
    assert(db:associate { Group = { { belongsTo = "Group", as = "Parent", foreignKey = "parent_id" } } })
    assert(db:sync())
    local root = assert(Group:create { id = 1 })
    assert(Group:create { id = 2, parent_id = root.id })
    local all = assert(Group:findAll { include = { { as = "Parent" } }, order = "id" })
    assert.equal(2, #all)
    assert.is_nil(all[1].Parent)
    assert.equal(root, all[2].Parent)
  end)

  it("can handle 1:m associations", function()
    local Person = S.define(db, "Person", { name = T.STRING(255), parent_id = T.INTEGER })
    assert(db:associate { Person = { { hasMany = "Person", as = "Children", foreignKey = "parent_id" } } })
    assert(db:sync())
    local mary = assert(Person:create { name = "Mary" })
    local john = assert(Person:create { name = "John" })
    local chris = assert(Person:create { name = "Chris" })
    assert.is_true(mary:setChildren { john, chris })
    assert.same({ "Chris", "John" }, S.sorted(mary:getChildren(), "name"))
  end)

  it("can handle n:m associations", function()
    local Person = S.define(db, "Person", { name = T.STRING(255) })
    assert(db:associate { Person = {
      { belongsToMany = "Person", as = "Parents", through = "Family", foreignKey = "ChildId", otherKey = "PersonId" },
      { belongsToMany = "Person", as = "Childs", through = "Family", foreignKey = "PersonId", otherKey = "ChildId" },
    } })
    assert(db:sync())
    local fields = db:model("Family"):_info().fields
    table.sort(fields)
    -- junction's made junction table has its own id and snake_case timestamps
    assert.same({ "ChildId", "PersonId", "created_at", "id", "updated_at" }, fields)
    local mary = assert(Person:create { name = "Mary" })
    local john = assert(Person:create { name = "John" })
    local chris = assert(Person:create { name = "Chris" })
    assert(mary:setParents { john })
    assert(chris:addParent(john))
    assert.same({ "Chris", "Mary" }, S.sorted(john:getChilds(), "name"))
  end)

  it("can handle n:m associations with pre-defined through table", function()
    -- junction has one primary key per model: the pair is a composite unique instead
    local log = {}
    db:close()
    db = S.open { log = function(sql) log[#log + 1] = sql end }
    local Person = S.define(db, "Person", { name = T.STRING(255) })
    S.define(db, "Family", {
      preexisting_child = { type = T.INTEGER, unique = "family_pair", references = { model = "Person", key = "id" } },
      preexisting_parent = { type = T.INTEGER, unique = "family_pair", references = { model = "Person", key = "id" } },
    }, { timestamps = false })
    assert(db:associate { Person = {
      { belongsToMany = "Person", as = "Parents", through = "Family",
        foreignKey = "preexisting_child", otherKey = "preexisting_parent" },
      { belongsToMany = "Person", as = "Children", through = "Family",
        foreignKey = "preexisting_parent", otherKey = "preexisting_child" },
    } })
    assert(db:sync())
    local mary = assert(Person:create { name = "Mary" })
    local john = assert(Person:create { name = "John" })
    local chris = assert(Person:create { name = "Chris" })
    local count = 0
    local function check_inserts()
      for _, sql in ipairs(log) do
        if sql:find("INSERT") then
          count = count + 1
          assert.truthy(sql:find("preexisting_child", 1, true))
          assert.truthy(sql:find("preexisting_parent", 1, true))
        end
      end
      for i = #log, 1, -1 do log[i] = nil end
    end
    for i = #log, 1, -1 do log[i] = nil end
    assert(mary:setParents { john }); check_inserts()
    assert(mary:addParent(chris)); check_inserts()
    local children = assert(john:getChildren())
    for _, sql in ipairs(log) do
      if sql:find("^SELECT") then
        count = count + 1
        local where = sql:match("FROM(.*)")
        assert.truthy(where:find("preexisting_child", 1, true))
        assert.truthy(where:find("preexisting_parent", 1, true))
      end
    end
    assert.equal(3, count)
    assert.same({ mary.id }, S.sorted(children, "id"))
  end)
end)
