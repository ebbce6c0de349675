-- spec/sequelize/belongs_to_many_unit_main_spec.lua: cases of Sequelize's main-branch
-- packages/core/test/unit/associations/belongs-to-many.test.ts that v6's unit test lacks,
-- ported to junction.
local S = require "spec.sequelize.support"

describe("belongsToMany", function()
  local db
  before_each(function() db = S.open() end)
  after_each(function() db:close() end)

  it("creates the join table when through is a string", function()
    S.define(db, "User", {}); S.define(db, "Group", {})
    assert(db:associate {
      User = { { belongsToMany = "Group", as = "MyGroups", through = "GroupUser" } },
      Group = { { belongsToMany = "User", as = "MyUsers", through = "GroupUser" } },
    })
    assert.is_not_nil(db:model("GroupUser"))
    assert(db:sync())
    assert.is_true(require("spec.helper").exists(db, "GroupUser"))
  end)

  it("allows customizing the inverse association name (long form)", function()
    local User, Task = S.define(db, "User", {}), S.define(db, "Task", {})
    assert(db:associate { User = { { belongsToMany = "Task", through = "UserTask", as = "tasks",
                                     inverse = { as = "users" } } } })
    assert.is_table(Task:getAssociation("users"))
    assert.is_table(User:getAssociation("tasks"))
    assert.equal(User:getAssociation("tasks").through, Task:getAssociation("users").through)
    assert(db:sync())
    local user, task = assert(User:create {}), assert(Task:create {})
    assert(user:addTask(task))
    assert.equal(user, task:getUsers()[1])
  end)

  it("allows customizing the inverse association name (shorthand)", function()
    local User, Task = S.define(db, "User", {}), S.define(db, "Task", {})
    assert(db:associate { User = { { belongsToMany = "Task", through = "UserTask", as = "tasks", inverse = "users" } } })
    assert.is_table(Task:getAssociation("users"))
    assert.is_table(User:getAssociation("tasks"))
    assert.has_error(function()
      db:associate { Task = { { hasMany = "User", inverse = "tasks" } } }
    end, "db:associate: Task: hasMany 'User': bad option 'inverse' (for belongsToMany)")
  end)

  it("generates a default association name", function()
    -- Sequelize 7's names (usersTasks, userTask) in junction's spelling of aliases
    local User, Task = S.define(db, "User", {}), S.define(db, "Task", {})
    assert(db:associate { User = { { belongsToMany = "Task", through = "UserTask", inverse = {} } } })
    local function names(model)
      local out = {}
      for alias, a in pairs(model:getAssociations()) do out[#out + 1] = alias .. ":" .. a.kind end
      table.sort(out)
      return out
    end
    assert.same({ "UserTask:hasOne", "Users:belongsToMany", "UsersTasks:hasMany" }, names(Task))
    assert.same({ "TaskUser:hasOne", "Tasks:belongsToMany", "TasksUsers:hasMany" }, names(User))
    assert.same({ "Task:belongsTo", "User:belongsTo" }, names(db:model("UserTask")))
    assert.is_nil(User:getAssociation("nope"))
  end)

  it("errors when trying to define the same association", function()
    S.define(db, "User", {}); S.define(db, "Post", {})
    assert(db:associate { Post = { { belongsToMany = "User", through = "UserPost" } } })
    assert.has_error(function()
      db:associate { Post = { { belongsToMany = "User", through = "UserPost" } } }
    end, "db:associate: Post belongsToMany 'Users': the name 'Users' is already a field, method or association of Post")
  end)

  describe("foreign keys", function()
    local function columns(tbl)
      local out = {}
      for _, r in ipairs(require("spec.helper").columns(db, tbl)) do out[r.name] = r.notnull end
      return out
    end

    it("should infer otherKey from paired BTM relationship with a through model defined", function()
      local User, Place = S.define(db, "User", {}), S.define(db, "Place", {})
      local UserPlace = S.define(db, "UserPlace", {
        id = { type = S.T.INTEGER, primaryKey = true, autoIncrement = true },
      }, { timestamps = false })
      assert(db:associate {
        User = { { belongsToMany = "Place", through = "UserPlace", foreignKey = "user_id", otherKey = "place_id" } },
        Place = { { belongsToMany = "User", through = "UserPlace" } },
      })
      local places = User:_info().associations.Places:info()
      local users = Place:_info().associations.Users:info()
      assert.equal("user_id", places.foreignKey); assert.equal("place_id", places.otherKey)
      assert.equal("place_id", users.foreignKey); assert.equal("user_id", users.otherKey)
      assert.equal(3, #UserPlace:_info().fields)   -- the declared key and the two foreign keys
    end)

    it("should create non-null foreign keys by default", function()
      S.define(db, "A", {}); S.define(db, "B", {})
      assert(db:associate { A = { { belongsToMany = "B", through = "AB" } } })
      assert(db:sync())
      local cols = columns("AB")
      assert.equal(1, cols.a_id)
      assert.equal(1, cols.b_id)
    end)

    it("should add FKs with onDelete=cascade by default", function()
      S.define(db, "A", {}); S.define(db, "B", {})
      assert(db:associate { A = { { belongsToMany = "B", through = "AB" } } })
      assert(db:sync())
      local actions = {}
      for col, fk in pairs(require("spec.helper").foreign_keys(db, "AB")) do actions[col] = fk.on_delete end
      assert.same({ a_id = "CASCADE", b_id = "CASCADE" }, actions)
    end)
  end)
  -- junction raises where Sequelize keeps the custom method and skips the mixin
  -- (docs/SEQUELIZE.md, deliberate differences)
  it("should not override custom methods with association mixin", function()
    local User = S.define(db, "User", {})
    S.define(db, "Task", {})
    local function originalMethod() end
    User.instance.getTasks = originalMethod
    local ok, err = pcall(db.associate, db, { User = { { belongsToMany = "Task", through = "UserTasks" } } })
    assert.is_false(ok)
    assert.matches("db:associate: User belongsToMany 'Tasks': method '[%w_]+' clashes with a field, method or association of User", err)
    local user = User:build {}
    assert.equal(originalMethod, user.getTasks)
  end)

  describe("association hooks", function()
    local Project
    local calls
    before_each(function()
      calls = {}
      local function spy(name)
        return function(...) calls[#calls + 1] = { name = name, n = select("#", ...), ... } end
      end
      Project = S.define(db, "Project", { title = S.T.STRING(255) },
        { hooks = { beforeAssociate = spy("before"), afterAssociate = spy("after") } })
      S.define(db, "Task", { title = S.T.STRING(255) })
    end)

    describe("beforeBelongsToManyAssociate", function()
      it("should trigger", function()
        assert(db:associate { Project = { { belongsToMany = "Task", through = "projects_and_tasks", hooks = true } } })
        local c = calls[1]
        assert.equal("before", c.name)
        assert.equal(2, c.n)
        assert.equal(Project, c[1].source)
        assert.equal(db:model("Task"), c[1].target)
        assert.equal("belongsToMany", c[1].type)
        assert.equal(db, c[1].db)
      end)

      it("should not trigger association hooks", function()
        assert(db:associate { Project = { { belongsToMany = "Task", through = "projects_and_tasks", hooks = false } } })
        assert.same({}, calls)
      end)
    end)

    describe("afterBelongsToManyAssociate", function()
      it("should trigger", function()
        assert(db:associate { Project = { { belongsToMany = "Task", through = "projects_and_tasks" } } })
        local c = calls[#calls]
        assert.equal("after", c.name)
        assert.equal(2, c.n)
        assert.equal(Project, c[1].source)
        assert.equal("belongsToMany", c[1].type)
        assert.equal("Tasks", c[1].association:info().as)
        assert.equal(db, c[1].db)
        assert.is_function(Project:build {}.getTasks)
      end)

      it("should not trigger association hooks", function()
        assert(db:associate { Project = { { belongsToMany = "Task", through = "projects_and_tasks", hooks = false } } })
        assert.same({}, calls)
      end)
    end)
  end)

  it("lets you customize the name of the intermediate associations", function()
    local User, Group = S.define(db, "User", {}), S.define(db, "Group", {})
    local GroupUser = S.define(db, "GroupUser", {})
    assert(db:associate { User = { { belongsToMany = "Group", through = "GroupUser", as = "groups",
      throughAssociations = { toSource = "toSource", toTarget = "toTarget", fromSource = "fromSources",
                              fromTarget = "fromTargets" },
      inverse = { as = "members" } } } })
    local function names(model)
      local out = {}
      for alias in pairs(model:getAssociations()) do out[#out + 1] = alias end
      table.sort(out)
      return out
    end
    -- Sequelize's hasOne fromSource (the singular of fromSources) is not made: its createFromSource
    -- is the hasMany's, and junction makes an association only where its method names are free
    assert.same({ "fromSources", "groups" }, names(User))
    assert.same({ "fromTargets", "members" }, names(Group))
    assert.same({ "toSource", "toTarget" }, names(GroupUser))
    assert(db:sync())
    local u, g = assert(User:create {}), assert(Group:create {})
    assert(u:addGroup(g))
    assert.equal(u, GroupUser:findOne {}:getToSource())
    assert.equal(1, #u:getFromSources())
    assert.has_error(function()
      db:associate { User = { { belongsToMany = "Group", through = "GroupUser", as = "teams",
                                throughAssociations = { fromSauce = "x" } } } }
    end, "db:associate: User: belongsToMany 'Group': bad option 'throughAssociations.fromSauce' (unknown key)")
  end)

  it("should infer foreign keys (camelCase)", function()
    local Person = S.define(db, "Person", {})
    local PersonChildren = S.define(db, "PersonChildren", {})
    assert(db:associate { Person = { { belongsToMany = "Person", as = "Children", through = "PersonChildren",
                                       inverse = { as = "Parents" } } } })
    local children = Person:getAssociation("Children")
    assert.equal("parentId", children.foreignKey)
    assert.equal("childId", children.otherKey)
    assert.is_true(PersonChildren:_taken("parentId") ~= nil and PersonChildren:_taken("childId") ~= nil)
    assert(db:sync())
    local mum, kid = assert(Person:create {}), assert(Person:create {})
    assert(mum:addChild(kid))
    assert.equal(mum, kid:getParents()[1])
  end)

  it("should infer foreign keys (snake_case)", function()
    -- an underscored junction model's added keys are snake_case attributes (junction's rule, see
    -- "added keys" in the deliberate differences): parent_id, child_id
    local Person = S.define(db, "Person", {}, { underscored = true })
    local PersonChildren = S.define(db, "PersonChildren", {}, { underscored = true })
    assert(db:associate { Person = { { belongsToMany = "Person", as = "Children", through = "PersonChildren",
                                       inverse = { as = "Parents" } } } })
    local children = Person:getAssociation("Children")
    assert.equal("parent_id", children.foreignKey)
    assert.equal("child_id", children.otherKey)
    assert.equal("parent_id", PersonChildren:_info().columns.parent_id)
    assert.equal("child_id", PersonChildren:_info().columns.child_id)
  end)

  it("allows creating nullable FKs", function()
    local A, B = S.define(db, "A", {}), S.define(db, "B", {})
    assert(db:associate { A = { { belongsToMany = "B", through = "AB", foreignKey = { allowNull = true },
                                  otherKey = { allowNull = true } } } })
    local C = S.define(db, "C", {})
    assert(db:associate { A = { { belongsToMany = "C", through = "AC" } } })
    assert(db:sync())
    local b, c = assert(B:create {}), assert(C:create {})
    assert(db:model("AB"):create { b_id = b.id })   -- a_id may be NULL
    assert(db:model("AB"):create { a_id = assert(A:create {}).id })
    assert.has_error(function()
      db:associate { A = { { hasMany = "C", foreignKey = { allowNull = true } } } }
    end, "db:associate: A: hasMany 'C': bad option 'foreignKey.allowNull' (for belongsToMany: a key it adds to the "
         .. "junction model)")
    -- "should create non-null foreign keys by default"
    local r, _, code = db:model("AC"):create { c_id = c.id }
    assert.is_nil(r)
    assert.equal(S.junction.VALIDATION, code)
  end)

  it("allows defining two associations with the same through, but with a different scope on the through table", function()
    -- junction's through scope is on fields of the junction model: UserPost declares editing
    local User = S.define(db, "User", {})
    local Post = S.define(db, "Post", {})
    S.define(db, "UserPost", { editing = { type = S.T.BOOLEAN, defaultValue = false } })
    assert(db:associate {
      User = { { belongsToMany = "Post", through = "UserPost" },
               { belongsToMany = "Post", as = "editingPosts", inverse = { as = "editingUsers" },
                 through = { model = "UserPost", scope = { editing = true } } } },
      Post = { { belongsToMany = "User", through = "UserPost" } },
    })
    assert(db:sync())
    local u, p1, p2 = assert(User:create {}), assert(Post:create {}), assert(Post:create {})
    assert(u:addPost(p1))
    assert(u:addEditingPost(p2))
    assert.same({ p2.id }, S.sorted(u:getEditingPosts(), "id"))
    assert.same({ u.id }, S.sorted(p2:getEditingUsers(), "id"))
    assert.equal(0, #p1:getEditingUsers())
  end)

  it("allows defining two associations with the same inverse association", function()
    -- junction's association scope is on fields of the target: User declares type
    S.define(db, "User", { type = S.T.STRING(20) })
    local Post = S.define(db, "Post", {})
    assert(db:associate { Post = {
      { belongsToMany = "User", through = { model = "UserPost" }, as = "categories", scope = { type = "category" } },
      { belongsToMany = "User", through = { model = "UserPost" }, as = "tags", scope = { type = "tag" } },
    } })
    assert(db:sync())
    local post = assert(Post:create {})
    assert(post:createCategory { })
    assert(post:createTag { })
    assert.equal(1, post:countCategories())
    assert.equal("tag", post:getTags()[1].type)
  end)

  it("errors when trying to define similar associations with incompatible inverse associations", function()
    S.define(db, "User", {}); S.define(db, "Post", {})
    assert(db:associate { Post = { { belongsToMany = "User", through = { model = "UserPost" }, as = "categories" } } })
    -- options of a key belong to its field's declaration: otherKey = { onUpdate = ... } raises
    assert.has_error(function()
      db:associate { Post = { { belongsToMany = "User", through = { model = "UserPost" }, as = "tags",
                                otherKey = { onUpdate = "NO ACTION" } } } }
    end)
  end)
end)
