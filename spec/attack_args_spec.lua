-- Hostile and mistaken arguments to the model features: each is a misuse
-- error naming model, method and argument, or a returned failure; never a
-- crash, a bare nil, or a row written that the call does not return.
local H = require "spec.helper"
local T = H.T
local junction = H.junction

describe("include", function()
  it("names the model when { association = Model } is no association of the model", function()
    local db = H.open()
    local A = db:define("A", { fields = { name = { type = T.TEXT } } })
    local B = db:define("B", { fields = { name = { type = T.TEXT } } })
    assert(db:sync())
    assert(A:create { name = "x" })
    assert.has_error(function() A:findAll { include = { { association = B } } } end,
      "A:findAll: bad include (A has no association to B; it has none)")
    assert.has_error(function() A:findAll { include = { { as = B } } } end,
      "A:findAll: bad include (A has no association to B; it has none)")
    assert.has_error(function() A:findAll { include = { B } } end,
      "A:findAll: bad include (A has no association to B; it has none)")
  end)
end)
