-- spec/sequelize/filters_spec.lua: the many-to-many case of Sequelize v6's
-- test/integration/associations/multiple-level-filters.test.js, ported to junction.
local S = require "spec.sequelize.support"
local T = S.T

describe("Multiple Level Filters", function()
  local db
  before_each(function() db = S.open() end)
  after_each(function() db:close() end)

  it("can filter through hasMany connector", function()
    local User = S.define(db, "User", { username = T.STRING(255) })
    local Project = S.define(db, "Project", { title = T.STRING(255) })
    assert(db:associate {
      Project = { { belongsToMany = "User", through = "user_project" } },
      User = { { belongsToMany = "Project", through = "user_project" } },
    })
    assert(db:sync())
    assert(User:bulkCreate { { username = "leia" }, { username = "vader" } })
    assert(Project:bulkCreate { { title = "republic" }, { title = "empire" } })
    assert(assert(User:findByPk(1)):setProjects { assert(Project:findByPk(1)) })
    assert(assert(User:findByPk(2)):setProjects { assert(Project:findByPk(2)) })
    local users = assert(User:findAll { include = { { association = Project, where = { title = "republic" } } } })
    assert.equal(1, #users)
    assert.equal("leia", users[1].username)
  end)
end)
