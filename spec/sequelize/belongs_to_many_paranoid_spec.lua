-- spec/sequelize/belongs_to_many_paranoid_spec.lua: the paranoid cases of
-- Sequelize v6's test/integration/associations/belongs-to-many.test.js
-- ("join table creation" and "through" / "paranoid"), ported to junction.
-- Each `it` carries the Sequelize test's title.  Sequelize's connection-wide
-- `define: { paranoid: true }` is each model's own `paranoid = true` here.
local S = require "spec.sequelize.support"

local function has_field(model, name)
  for _, f in ipairs(model:_info().fields) do if f == name then return true end end
  return false
end

describe("BelongsToMany", function()
  local db
  after_each(function() if db then db:close() end db = nil end)

  describe("join table creation", function()
    local function paranoid_pair()
      db = S.open()
      S.define(db, "ParanoidUser", {}, { paranoid = true })
      S.define(db, "ParanoidTask", {}, { paranoid = true })
    end

    it("makes join table non-paranoid by default", function()
      paranoid_pair()
      assert(db:associate {
        ParanoidUser = { { belongsToMany = "ParanoidTask", through = "UserTasks" } },
        ParanoidTask = { { belongsToMany = "ParanoidUser", through = "UserTasks" } },
      })
      local ta = db:model("ParanoidUser"):getAssociation("ParanoidTasks")
      local ua = db:model("ParanoidTask"):getAssociation("ParanoidUsers")
      assert.is_true(has_field(db:model("ParanoidUser"), "deletedAt"))
      assert.is_true(has_field(db:model("ParanoidTask"), "deletedAt"))
      assert.equal(ta.through, ua.through)
      assert.is_false(has_field(ua.through, "deleted_at"))
    end)

    it("should allow creation of a paranoid join table", function()
      paranoid_pair()
      assert(db:associate {
        ParanoidUser = { { belongsToMany = "ParanoidTask", through = { model = "UserTasks", paranoid = true } } },
        ParanoidTask = { { belongsToMany = "ParanoidUser", through = { model = "UserTasks", paranoid = true } } },
      })
      local ta = db:model("ParanoidUser"):getAssociation("ParanoidTasks")
      local ua = db:model("ParanoidTask"):getAssociation("ParanoidUsers")
      assert.equal(ta.through, ua.through)
      assert.is_true(has_field(ua.through, "deleted_at"))   -- the made junction model is underscored
      -- and its links are soft-deleted
      assert(db:sync())
      local u = assert(db:model("ParanoidUser"):create {})
      local t = assert(db:model("ParanoidTask"):create {})
      assert(u:addParanoidTask(t))
      assert(u:removeParanoidTask(t))
      assert.equal(0, u:countParanoidTasks())
      assert.equal(1, ua.through:count { paranoid = false })
    end)
  end)

  describe("through", function()
    describe("paranoid", function()
      local User, Project, UserProjects, users, projects
      before_each(function()
        db = S.open()
        User = S.define(db, "User", {})
        Project = S.define(db, "Project", {})
        UserProjects = S.define(db, "UserProjects", {}, { paranoid = true })
        assert(db:associate {
          User = { { belongsToMany = "Project", through = "UserProjects" } },
          Project = { { belongsToMany = "User", through = "UserProjects" } },
        })
        assert(db:sync())
        users = { assert(User:create {}), assert(User:create {}), assert(User:create {}) }
        projects = { assert(Project:create {}), assert(Project:create {}), assert(Project:create {}) }
      end)

      it("gets only non-deleted records by default", function()
        assert(users[1]:addProjects(projects))
        assert(UserProjects:destroy { where = { projectId = projects[1].id } })
        local result = assert(users[1]:getProjects())
        assert.equal(2, #result)
      end)

      it("returns both deleted and non-deleted records with paranoid=false", function()
        assert(users[1]:addProjects(projects))
        assert(UserProjects:destroy { where = { projectId = projects[1].id } })
        local result = assert(users[1]:getProjects { through = { paranoid = false } })
        assert.equal(3, #result)
      end)

      it("hasAssociation also respects paranoid option", function()
        assert(users[1]:addProjects(projects))
        assert(UserProjects:destroy { where = { projectId = projects[1].id } })
        assert.equal(true, users[1]:hasProjects(projects[1], { through = { paranoid = false } }))
        assert.equal(false, users[1]:hasProjects(projects[1]))
        assert.equal(true, users[1]:hasProjects(projects[2]))
        assert.equal(false, users[1]:hasProjects(projects))
      end)
    end)
  end)
end)
