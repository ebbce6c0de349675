-- Inputs past any sensible size or depth: a clear error (or the work done),
-- never a C stack overflow, a hang or a row written by a call that fails.
local H = require "spec.helper"
local T = H.T

local function tree(db)
  local Node = db:define("Node", { fields = { name = { type = T.TEXT }, parent_id = { type = T.INTEGER } } })
  assert(db:associate { Node = { { hasMany = "Node", foreignKey = "parent_id", as = "Children" } } })
  assert(db:sync())
  return Node
end

-- { association = "Children", include = { { association = "Children", ... } } }, n deep
local function chain(n)
  local top = { association = "Children" }
  local cur = top
  for _ = 2, n do
    local nx = { association = "Children" }
    cur.include = { nx }
    cur = nx
  end
  return top
end

local function cycle()
  local c = { association = "Children" }
  c.include = { c }
  return c
end

describe("an include nested past 32 levels", function()
  it("is a misuse error on a find, not a C stack overflow, however deep or if it holds itself", function()
    local db = H.open()
    local Node = tree(db)
    assert(Node:create { name = "root" })
    for _, inc in ipairs { chain(33), chain(100000), cycle() } do
      local ok, err = pcall(Node.findAll, Node, { include = { inc } })
      assert.is_false(ok)
      assert.matches("Node:findAll: bad include %(nested more than 32 deep%)", err)
    end
    assert.equal(1, #assert(Node:findAll { include = { chain(32) } }))
  end)

  it("is a misuse error on a nested create before any row is written, not a create without end", function()
    local db = H.open()
    local Node = tree(db)
    local values = { name = "loop" }
    values.Children = { values }           -- a values table inside itself
    for _, inc in ipairs { cycle(), chain(40) } do
      local ok, err = pcall(Node.create, Node, values, { include = { inc } })
      assert.is_false(ok)
      assert.matches("Node:create: bad include %(nested more than 32 deep%)", err)
    end
    assert.equal(0, Node:count())
  end)

  it("checks a nested create's includes at every level before writing", function()
    local db = H.open()
    local Node = tree(db)
    local inc = { association = "Children", include = { { association = "Nope" } } }
    local ok, err = pcall(Node.create, Node, { name = "a", Children = { { name = "b" } } }, { include = { inc } })
    assert.is_false(ok)
    assert.matches("Node:create: bad include 1 %(Nope is no association of Node%)", err)
    assert.equal(0, Node:count())
  end)
end)
