-- spec/sequelize/include_find_one_spec.lua: the many-to-many cases of Sequelize v6's
-- test/integration/include/findOne.test.js, ported to junction.
local S = require "spec.sequelize.support"
local T = S.T

describe("Include", function()
  local db
  before_each(function() db = S.open() end)
  after_each(function() db:close() end)

  describe("findOne", function()
    it("should include a non required model, with conditions and two includes N:M 1:M", function()
      -- Sequelize's models are paranoid; junction has no paranoid, the query is what is checked
      local A = S.define(db, "A", { name = T.STRING(40) })
      S.define(db, "B", { name = T.STRING(40), a_id = T.INTEGER, d_id = T.INTEGER })
      S.define(db, "C", { name = T.STRING(40) })
      S.define(db, "D", { name = T.STRING(40) })
      assert(db:associate {
        A = { { hasMany = "B" } },
        B = { { belongsTo = "D" }, { belongsToMany = "C", through = "BC" } },
        C = { { belongsToMany = "B", through = "BC" } },
        D = { { hasMany = "B" } },
      })
      assert(db:sync())
      assert.is_nil(A:findOne { include = { Bs = { required = false, include = { Cs = { required = false }, "D" } } } })
      local a = assert(A:create { name = "a" })
      local b = assert(a:createB { name = "b" })
      assert(b:addC(assert(db:model("C"):create { name = "c" })))
      local found = assert(A:findOne { include = { Bs = { required = false, include = { Cs = { required = false }, "D" } } } })
      assert.equal("c", found.Bs[1].Cs[1].name)
      assert.is_nil(found.Bs[1].D)
    end)

    it("should still pull the main record when an included model is not required and has where restrictions without matches", function()
      local A = S.define(db, "a", { name = T.STRING(40) })
      local B = S.define(db, "b", { name = T.STRING(40) })
      assert(db:associate {
        a = { { belongsToMany = "b", through = "a_b" } },
        b = { { belongsToMany = "a", through = "a_b" } },
      })
      assert(db:sync())
      assert(A:create { name = "Foobar" })
      local a = assert(A:findOne { where = { name = "Foobar" },
                                   include = { { association = B, where = { name = "idontexist" }, required = false } } })
      assert.same({}, a.bs)
    end)
  end)
end)
