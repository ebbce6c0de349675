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

    it("supports many-to-many association with where clause", function()
      local projects = build(M.Project, "alpha", "bravo", "charlie")
      local users = build(M.User, "Alice", "Bob")
      assert(projects[1]:addUser(users[1])); assert(projects[2]:addUser(users[2])); assert(projects[3]:addUser(users[1]))
      local result = assert(M.Project:findAll {
        include = { Users = { where = { name = "Alice" } } }, order = "name", limit = 1, offset = 1,
      })
      assert.same({ "charlie" }, names(result))
    end)

    -- projects alpha (Alice), bravo (Bob), charlie (Alice); Alice likes archery, Bob (in some) badminton
    local function projects_users_hobbies(bob_hobby)
      local projects = build(M.Project, "alpha", "bravo", "charlie")
      local users = build(M.User, "Alice", "Bob")
      local hobbies = build(M.Hobby, "archery", "badminton")
      assert(projects[1]:addUser(users[1])); assert(projects[2]:addUser(users[2])); assert(projects[3]:addUser(users[1]))
      assert(users[1]:addHobby(hobbies[1]))
      if bob_hobby then assert(users[2]:addHobby(hobbies[2])) end
    end

    it("supports 2 levels of required many-to-many associations", function()
      projects_users_hobbies(false)
      local result = assert(M.Project:findAll {
        include = { Users = { required = true, include = { Hobbies = { required = true } } } },
        order = "name", limit = 1, offset = 1,
      })
      assert.same({ "charlie" }, names(result))
      assert.same({ "Alice" }, names(result[1].Users))
      -- the middle level holds only the users with a hobby, when it is not required too
      result = assert(M.Project:findAll { order = "name",
        include = { Users = { include = { Hobbies = { required = true } } } } })
      assert.same({ "alpha", "bravo", "charlie" }, names(result))
      assert.same({}, names(result[2].Users))
    end)

    it("supports 2 levels of required many-to-many associations with where clause", function()
      projects_users_hobbies(true)
      local result = assert(M.Project:findAll {
        include = { Users = { required = true, include = { Hobbies = { where = { name = "archery" } } } } },
        order = "name", limit = 1, offset = 1,
      })
      assert.same({ "charlie" }, names(result))
    end)

    it("supports 2 levels of required many-to-many associations with through.where clause", function()
      projects_users_hobbies(true)
      local result = assert(M.Project:findAll {
        include = { Users = { required = true, include = { Hobbies = { required = true,
          through = { where = { hobby_name = "archery" } } } } } },
        order = "name", limit = 1, offset = 1,
      })
      assert.same({ "charlie" }, names(result))
    end)

    it("supports 3 levels of required many-to-many associations with where clause", function()
      local tasks = build(M.Task, "alpha", "bravo", "charlie")
      local projects = build(M.Project, "alpha", "bravo", "charlie")
      local users = build(M.User, "Alice", "Bob", "Charlotte")
      local hobbies = build(M.Hobby, "archery", "badminton")
      for i = 1, 3 do assert(tasks[i]:addProject(projects[i])) end
      assert(projects[1]:addUser(users[1])); assert(projects[2]:addUser(users[2])); assert(projects[3]:addUser(users[1]))
      assert(users[1]:addHobby(hobbies[1])); assert(users[2]:addHobby(hobbies[2]))
      local result = assert(M.Task:findAll {
        include = { Projects = { required = true, include = { Users = { required = true,
          include = { Hobbies = { where = { name = "archery" } } } } } } },
        order = "name", limit = 1, offset = 1,
      })
      assert.same({ "charlie" }, names(result))
    end)

    it("supports required one-to-many association with nested required many-to-many association", function()
      local users = build(M.User, "Alice", "Bob", "Charlotte", "David")
      local posts = build(M.Post, "alpha", "charlie", "delta")
      local tags = build(M.Tag, "atag", "btag", "dtag")
      assert(users[1]:addPost(posts[1])); assert(users[3]:addPost(posts[2])); assert(users[4]:addPost(posts[3]))
      assert(posts[1]:addTag { tags[1] }); assert(posts[3]:addTag { tags[3] })
      local result = assert(M.User:findAll {
        include = { Posts = { required = true, include = { Tags = { required = true } } } },
        order = "name", limit = 1, offset = 1,
      })
      assert.same({ "David" }, names(result))
    end)

    it("supports required many-to-many association with nested required one-to-many association", function()
      local projects = build(M.Project, "alpha", "bravo", "charlie", "delta")
      local users = build(M.User, "Alice", "Bob", "David")
      local posts = build(M.Post, "post0", "post1", "post2")
      assert(projects[1]:addUser(users[1])); assert(projects[2]:addUser(users[2])); assert(projects[4]:addUser(users[3]))
      assert(users[1]:addPost { posts[1] }); assert(users[3]:addPost { posts[3] })
      local result = assert(M.Project:findAll {
        include = { Users = { required = true, include = { Posts = { required = true } } } },
        order = "name", limit = 1, offset = 1,
      })
      assert.same({ "delta" }, names(result))
    end)

    -- posts 0, 1, 3 by Alice, Bob, David; Alice and David like archery, Bob badminton
    local function posts_users_hobbies()
      local posts = build(M.Post, "post0", "post1", "post2", "post3")
      local users = build(M.User, "Alice", "Bob", "Charlotte", "David")
      local hobbies = build(M.Hobby, "archery", "badminton")
      assert(posts[1]:setUser(users[1])); assert(posts[2]:setUser(users[2])); assert(posts[4]:setUser(users[4]))
      assert(users[1]:addHobby(hobbies[1])); assert(users[2]:addHobby(hobbies[2])); assert(users[4]:addHobby(hobbies[1]))
    end

    it("supports required many-to-one association with nested many-to-many association with where clause", function()
      posts_users_hobbies()
      local result = assert(M.Post:findAll {
        include = { User = { required = true, include = { Hobbies = { where = { name = "archery" } } } } },
        order = "name", limit = 1, offset = 1,
      })
      assert.same({ "post3" }, names(result))
    end)

    it("supports required many-to-one association with nested many-to-many association with through.where clause", function()
      posts_users_hobbies()
      local result = assert(M.Post:findAll {
        include = { User = { required = true, include = { Hobbies = { required = true,
          through = { where = { hobby_name = "archery" } } } } } },
        order = "name", limit = 1, offset = 1,
      })
      assert.same({ "post3" }, names(result))
    end)
  end)
end)
