-- spec/sequelize/include_limit_spec.lua: the many-to-many cases of Sequelize v6's
-- test/integration/include/limit.test.js, ported to junction: includes that are required
-- (by `required = true`) and a parent `limit`/`offset`.
local S = require "spec.sequelize.support"
local T = S.T

describe("Include", function()
  describe("LIMIT", function()
    -- [Task]N---N[Project]N---N[User]N---N[Hobby], [User]1---N[Post]N---N[Tag]
    local db, M
    local function named(dbx, name, extra)
      local fields = { name = { type = T.STRING(255), primaryKey = true } }
      for k, v in pairs(extra or {}) do fields[k] = v end
      return dbx:define(name, { fields = fields, timestamps = false })
    end
    before_each(function()
      db = S.open()
      M = {}
      for _, n in ipairs { "Project", "User", "Task", "Hobby", "Tag" } do M[n] = named(db, n) end
      M.Post = named(db, "Post", { user_name = { type = T.STRING(255), references = { model = "User", key = "name" } } })
      assert(db:associate {
        User = { { belongsToMany = "Project", through = "user_project" }, { belongsToMany = "Hobby", through = "user_hobby" },
                 { hasMany = "Post", foreignKey = "user_name" } },
        Project = { { belongsToMany = "User", through = "user_project" }, { belongsToMany = "Task", through = "task_project" } },
        Task = { { belongsToMany = "Project", through = "task_project" } },
        Hobby = { { belongsToMany = "User", through = "user_hobby" } },
        Post = { { belongsToMany = "Tag", through = "post_tag" }, { belongsTo = "User", foreignKey = "user_name" } },
        Tag = { { belongsToMany = "Post", through = "post_tag" } },
      })
      assert(db:sync())
    end)
    after_each(function() db:close() end)

    local function build(model, ...)
      local rows = {}
      for i, n in ipairs { ... } do rows[i] = { name = n } end
      return assert(model:bulkCreate(rows))
    end
    -- the cases where a required level's own required include should drop the parent, and
    -- where a where on an include should make it required, are listed in docs/SEQUELIZE.md
    local function names(list)
      local out = {}
      for i, x in ipairs(list) do out[i] = x.name end
      return out
    end

    it("supports required many-to-many association", function()
      local projects = build(M.Project, "alpha", "bravo", "charlie")
      local users = build(M.User, "Alice", "Bob")
      assert(projects[1]:addUser(users[1])); assert(projects[3]:addUser(users[1]))
      local result = assert(M.Project:findAll {
        include = { Users = { required = true } }, order = "name", limit = 1, offset = 1,
      })
      assert.same({ "charlie" }, names(result))
    end)

    it("supports 2 required many-to-many association", function()
      local projects = build(M.Project, "alpha", "bravo", "charlie", "delta")
      local users = build(M.User, "Alice", "Bob", "David")
      local tasks = build(M.Task, "a", "c", "d")
      assert(projects[1]:addUser(users[1])); assert(projects[1]:addTask(tasks[1]))
      assert(projects[2]:addUser(users[2])); assert(projects[3]:addTask(tasks[2]))
      assert(projects[4]:addUser(users[3])); assert(projects[4]:addTask(tasks[3]))
      local result = assert(M.Project:findAll {
        include = { Users = { required = true }, Tasks = { required = true } },
        order = "name", limit = 1, offset = 1,
      })
      assert.same({ "delta" }, names(result))
    end)

  end)
end)
