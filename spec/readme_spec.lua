-- spec/readme_spec.lua: the first program a user copies from the README runs as
-- printed, on a fresh file and on ":memory:", on every runtime.
--
-- The program is taken from README.md itself (its first ```lua block), so the
-- README cannot drift from what works.
local H = require "spec.helper"

-- The text of the README's first Lua code block.
local function readme_seed()
  local f = assert(io.open("README.md", "rb"))
  local text = f:read("*a")
  f:close()
  local code = text:match("\n```lua\n(.-)\n```")
  assert(code, "README.md has no ```lua block")
  return code
end

-- Run the seed with its database path replaced by `path`; returns what it printed.
local function run_seed(path)
  local code = readme_seed()
  local n
  code, n = code:gsub('junction%.open%("blog%.sqlite3"%)',
                      function() return 'junction.open(' .. string.format("%q", path) .. ')' end)
  assert(n == 1, "the README's seed no longer opens \"blog.sqlite3\"")
  local out = {}
  local env = setmetatable({
    print = function(...)
      local t = {}
      for i = 1, select("#", ...) do t[i] = tostring((select(i, ...))) end
      out[#out + 1] = table.concat(t, "\t")
    end,
  }, { __index = _G })
  local chunk
  if setfenv then
    chunk = assert(loadstring(code, "=README.md"))
    setfenv(chunk, env)
  else
    chunk = assert(load(code, "=README.md", "t", env))
  end
  chunk()
  return out
end

describe("the README's seed program", function()
  it("runs as printed on a fresh file and prints the post's three genres", function()
    local path = H.tmpname()
    local ok, out = pcall(run_seed, path)
    H.rmdb(path)
    assert.is_true(ok, tostring(out))
    assert.same({ "1\tSequelize", "2\tOrm", "3\tWeb Development" }, out)
  end)

  it("runs as printed on :memory:", function()
    local out = run_seed(":memory:")
    assert.same({ "1\tSequelize", "2\tOrm", "3\tWeb Development" }, out)
  end)

  -- only the open call differs: a postgresql:// URL (a schema of its own)
  H.pg_only(it, pending)("runs on PostgreSQL with only the open call changed", function()
    local place = H.place()
    local ok, out = pcall(run_seed, place)
    H.drop_place(place)
    assert.is_true(ok, tostring(out))
    assert.same({ "1\tSequelize", "2\tOrm", "3\tWeb Development" }, out)
  end)
end)
