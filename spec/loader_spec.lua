-- spec/loader_spec.lua: junction.loadModels(db, dir), the seed's one-file-per-model
-- style (DESIGN.md "The seed, transcribed"; docs/API.md "Module").
local H = require "spec.helper"
local junction = H.junction

-- The seed's models as examples/models/ has them (their one definition),
-- copied into a fresh directory by each test.
local FILES = {}
for _, name in ipairs { "post.lua", "genre.lua", "tag_post_genre.lua" } do
  local f = assert(io.open("examples/models/" .. name, "rb"))
  FILES[name] = f:read("*a")
  f:close()
end

local function write_models(dir, files)
  for name, text in pairs(files) do H.writefile(dir .. "/" .. name, text) end
end

describe("junction.loadModels", function()
  local dir, db
  before_each(function()
    dir = H.tmpdir()
    db = H.open()
  end)
  after_each(function()
    db:close()
    H.rmdir(dir)
  end)

  it("defines every model, applies the associations, returns name -> model", function()
    write_models(dir, FILES)
    local models = junction.loadModels(db, dir)
    assert.is_table(models)
    assert.equal(3, H.nkeys(models))
    assert.equal(db:model("Post"), models.Post)
    assert.equal(db:model("Genre"), models.Genre)
    assert.equal(db:model("TagPostGenre"), models.TagPostGenre)
    assert.equal("tag_post_genre", models.TagPostGenre.tableName)
    assert(db:sync())
    H.genres(models.Genre, { "a", "b", "c" })
    local post = assert(models.Post:create { text = "loaded" })
    assert(post:setGenres { 1, 3 })
    assert.same({ 1, 3 }, H.ids(post:getGenres(), "genre_id"))
    assert.same({ 1 }, H.ids(models.Genre:findByPk(3):getPosts(), "post_id"))
    assert.equal(post, models.TagPostGenre:findOne():getPost())
  end)

  it("passes junction.types as the second argument", function()
    write_models(dir, { ["probe.lua"] = [[
      return function(db, types)
        assert(types.INTEGER ~= nil and types.TEXT ~= nil and types.STRING(10) ~= nil)
        return db:define("Probe", { timestamps = false, fields = { v = { type = types.TEXT } } })
      end
    ]] })
    local models = junction.loadModels(db, dir)
    assert.is_not_nil(models.Probe)
  end)

  it("accepts a file that returns only the model", function()
    write_models(dir, { ["solo.lua"] = [[
      return function(db, types)
        return db:define("Solo", { timestamps = false, fields = { v = { type = types.TEXT } } })
      end
    ]] })
    local models = junction.loadModels(db, dir)
    assert(db:sync())
    assert(models.Solo:create { v = "x" })
    assert.equal(1, models.Solo:count())
  end)

  it("works with a trailing slash and ignores files that are not .lua", function()
    write_models(dir, FILES)
    H.writefile(dir .. "/README.txt", "not a model")
    H.writefile(dir .. "/notes.lua.bak", "syntax error ((")
    local models = junction.loadModels(db, dir .. "/")
    assert.equal(3, H.nkeys(models))
  end)

  it("raises naming the file when a model file is broken", function()
    write_models(dir, { ["broken.lua"] = "return function(db, types) this is not lua end" })
    H.mentions(H.raises(junction.loadModels, db, dir), "broken.lua")
  end)

  it("raises naming the file when it does not return a function", function()
    write_models(dir, { ["nofn.lua"] = "return 42" })
    H.mentions(H.raises(junction.loadModels, db, dir), "nofn.lua")
  end)

  it("raises or fails for a directory that does not exist", function()
    local ok, res = pcall(junction.loadModels, db, dir .. "/missing")
    if ok then assert.is_nil(res) end
  end)

  it("two connections loading the same directory get their own models", function()
    write_models(dir, FILES)
    local db2 = H.open()
    local a = junction.loadModels(db, dir)
    local b = junction.loadModels(db2, dir)
    assert.are_not.equal(a.Post, b.Post)
    assert(db:sync())
    assert(db2:sync())
    assert(a.Post:create { text = "only in db" })
    assert.equal(1, a.Post:count())
    assert.equal(0, b.Post:count())
    db2:close()
  end)

  it("raises on bad arguments", function()
    H.raises(junction.loadModels, "not a db", dir)
    H.raises(junction.loadModels, db, 42)
  end)
end)
