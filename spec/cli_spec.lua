-- spec/cli_spec.lua: the `junction` command (bin/junction) and junction.erd,
-- run from the checkout with the interpreter running the specs.
local H = require "spec.helper"
local junction = H.junction

local LUA = H.is_jit and "luajit" or ("lua" .. _VERSION:match("%d+%.%d+"))

local function sh_quote(s) return "'" .. s:gsub("'", "'\\''") .. "'" end

-- Run bin/junction with args (and stdin text); returns stdout+stderr and the exit status.
local function junction_cmd(args, stdin)
  local out = os.tmpname()
  local cmd = LUA .. " bin/junction " .. args .. " >" .. out .. " 2>&1"
  -- Under `make asan` the command inherits the preloaded ASan runtime but
  -- loads the uninstrumented build/<abi> module; LeakSanitizer's own tracer
  -- now and then crashes at its exit ("LeakSanitizer has encountered a fatal
  -- error", exit 86), which says nothing of junction: no leak check there.
  if (os.getenv("LD_PRELOAD") or ""):find("asan", 1, true) then
    cmd = "ASAN_OPTIONS=detect_leaks=0 " .. cmd
  end
  if stdin then
    local inp = os.tmpname()
    local f = assert(io.open(inp, "w")); f:write(stdin); f:close()
    cmd = cmd .. " <" .. inp
  else
    cmd = cmd .. " </dev/null"
  end
  local r1, _, r3 = os.execute(cmd)
  local status = type(r1) == "number" and r1 / 256 or r3   -- 5.1 gives the raw wait status
  local f = assert(io.open(out)); local text = f:read("*a"); f:close()
  os.remove(out)
  return text, status
end

local function tmpdir()
  local d = os.tmpname()
  os.remove(d)
  assert(os.execute("mkdir " .. d))
  return d
end

local function write(path, text)
  local f = assert(io.open(path, "w")); f:write(text); f:close()
end

describe("junction.erd", function()
  it("draws every model with its columns and an arrow per foreign key, labelled by association", function()
    local db = H.open()
    H.blog(db)
    local dot = junction.erd(db)
    assert.truthy(dot:find('^digraph "junction" {'))
    for _, name in ipairs { "Post", "Genre", "TagPostGenre" } do
      assert.truthy(dot:find('\n  "' .. name .. '" %[label=<'), name)
    end
    -- the column types the database reports
    local int, str = "INTEGER", "VARCHAR(60)"
    if H.is_pg then int, str = "bigint", "varchar(60)" end
    assert.truthy(dot:find("post_id " .. int .. " <I>PK</I>", 1, true))
    assert.truthy(dot:find("name " .. str, 1, true))
    assert.truthy(dot:find("genre_id " .. int .. " <I>FK</I>", 1, true))
    -- the junction model sits between the two: one arrow in, one out, both bold
    assert.truthy(dot:find('"Genre":"genre_id" -> "TagPostGenre":"genre_id"', 1, true))
    assert.truthy(dot:find('"TagPostGenre":"post_id" -> "Post":"post_id"', 1, true))
    local _, arrows = dot:gsub(" %-> ", "")
    assert.equal(2, arrows)
    assert.truthy(dot:find("Post belongsToMany Genres", 1, true))
    assert.truthy(dot:find("Genre belongsToMany Posts", 1, true))
    assert.truthy(dot:find("TagPostGenre belongsTo Post", 1, true))
  end)

  it("raises on a bad argument", function()
    assert.has_error(function() junction.erd(nil) end,
                     "junction.erd: bad argument #1 (connection expected, got nil)")
  end)
end)

describe("the junction command", function()
  it("prints its usage and exits 0 with --help, 2 on an unknown command", function()
    local out, status = junction_cmd("--help")
    assert.equal(0, status)
    assert.truthy(out:find("usage: junction <command>", 1, true))
    out, status = junction_cmd("frobnicate")
    assert.equal(2, status)
    assert.truthy(out:find("junction: unknown command 'frobnicate'", 1, true))
    for _, sub in ipairs { "migrate", "rollback", "status", "erd", "console", "copy" } do
      out, status = junction_cmd(sub .. " --help")
      assert.equal(0, status, sub)
      assert.truthy(out:find("usage: junction " .. sub, 1, true), sub)
    end
    out, status = junction_cmd("migrate --nope")
    assert.equal(2, status)
    assert.truthy(out:find("unknown argument '--nope'", 1, true))
  end)

  it("migrates, reports status and rolls back a database; a failed migration exits 1 without a traceback", function()
    local dir = tmpdir()
    local db = H.tmpname()
    write(dir .. "/001_post.lua", [[
      local T = require("junction").types
      return {
        up = function(schema)
          schema:createTable("post", { { "post_id", { type = T.INTEGER, primaryKey = true } },
                                       { "text", { type = T.TEXT, allowNull = false } } })
        end,
        down = function(schema) schema:dropTable("post") end,
      }
    ]])
    local out, status = junction_cmd("status --db " .. sh_quote(db) .. " --dir " .. sh_quote(dir))
    assert.equal(0, status, out)
    assert.truthy(out:find("pending%s+001_post"))
    out, status = junction_cmd("migrate --db " .. sh_quote(db) .. " --dir " .. sh_quote(dir))
    assert.equal(0, status, out)
    assert.equal("migrated  001_post\n", out)
    out = junction_cmd("status --db " .. sh_quote(db) .. " --dir " .. sh_quote(dir))
    assert.truthy(out:find("^applied %d%d%d%d%-%d%d%-%d%d [%d:.]+  001_post\n$"), out)
    write(dir .. "/002_bad.lua", [[return function(schema) schema:exec("INSERT INTO nope VALUES (1)") end]])
    out, status = junction_cmd("migrate --db " .. sh_quote(db) .. " --dir " .. sh_quote(dir))
    assert.equal(1, status, out)
    assert.truthy(out:find("junction: migrate: 002_bad: no such table: nope", 1, true), out)
    assert.falsy(out:find("traceback", 1, true))
    os.remove(dir .. "/002_bad.lua")
    out, status = junction_cmd("rollback --db " .. sh_quote(db) .. " --dir " .. sh_quote(dir))
    assert.equal(0, status, out)
    assert.equal("rolled back  001_post\n", out)
    os.remove(dir .. "/001_post.lua")
    os.remove(dir)
    H.rmdb(db)
  end)

  it("status lists migration files without running them; a mistake is said without file:line", function()
    local dir = tmpdir()
    local db = H.tmpname()
    write(dir .. "/001_exit.lua", "os.exit(3)")
    local out, status = junction_cmd("status --db " .. sh_quote(db) .. " --dir " .. sh_quote(dir))
    assert.equal(0, status, out)
    assert.truthy(out:find("pending%s+001_exit"), out)
    write(dir .. "/001_exit.lua", [[return function(schema) schema:addColumn("t", "x", { type = "INTEGER" }) end]])
    out, status = junction_cmd("migrate --db " .. sh_quote(db) .. " --dir " .. sh_quote(dir))
    assert.equal(1, status, out)
    assert.truthy(out:find("^junction: migrate: schema:addColumn: column 'x': bad 'type'"), out)
    os.remove(dir .. "/001_exit.lua")
    os.remove(dir)
    H.rmdb(db)
  end)

  it("writes the diagram of a models directory as DOT", function()
    local out, status = junction_cmd("erd --models examples/models")
    assert.equal(0, status, out)
    assert.truthy(out:find('^digraph "junction" {'))
    assert.truthy(out:find('"TagPostGenre":"post_id" -> "Post":"post_id"', 1, true))
    out, status = junction_cmd("erd")
    assert.equal(2, status)
    assert.truthy(out:find("erd: give --models DIR", 1, true))
  end)

  it("runs a console on piped input, printing results readably", function()
    local out, status = junction_cmd("console --models examples/models", table.concat({
      'Genre:create{ name = "orm" }',
      'Post:create{ text = "hello" }:setGenres{ 1 }',
      'Post:findAll{ include = { "Genres" } }',
      'Post:findOne{ where = { nope = 1 } }',
      "db:query('SELECT nope')",
      "for i = 1,",
      "  2 do print('line ' .. i) end",
      "",
    }, "\n"))
    assert.equal(0, status, out)
    assert.truthy(out:find('> Genre{genre_id=1, name="orm"', 1, true), out)
    assert.truthy(out:find('> true\n', 1, true), out)
    assert.truthy(out:find('[1] Post{post_id=1, text="hello"', 1, true), out)
    assert.truthy(out:find('.Genres:\n        [1] Genre{genre_id=1, name="orm"', 1, true), out)
    assert.truthy(out:find('(1 row)', 1, true), out)
    assert.truthy(out:find("\n> error: [^\n]*Post:findOne: bad where field 'nope'"), out)
    assert.truthy(out:find('nil\t"no such column: nope"\t1', 1, true), out)
    assert.truthy(out:find("line 1\nline 2\n", 1, true), out)
    assert.falsy(out:find("table: 0x", 1, true), out)
  end)

  it("keeps the console running past a value or an error whose __tostring raises", function()
    local out, status = junction_cmd("console", table.concat({
      'x = setmetatable({}, { __tostring = function() error("no") end })',
      "x",
      "error(x)",
      "1 + 1",
      "",
    }, "\n"))
    assert.equal(0, status, out)
    assert.truthy(out:find("> <table that cannot be shown:", 1, true), out)
    assert.truthy(out:find("> error: <table that cannot be shown:", 1, true), out)
    assert.truthy(out:find("> 2\n", 1, true), out)
  end)
end)

describe("junction copy", function()
  -- the source: a SQLite file with the seed's rows; the destination: another
  -- file, or under make test-pg a PostgreSQL schema (H.place)
  local function seeded_file()
    local path = H.tmpname()
    local db = assert(junction.open(path))
    local m = H.blog(db)
    H.genres(m.Genre, { "orm", "lua" })
    assert(assert(m.Post:create { text = "moved" }):setGenres { 1, 2 })
    db:close()
    return path
  end

  it("copies a SQLite file into an empty database whose tables --models creates", function()
    local src, dst = seeded_file(), H.place()
    local out, status = junction_cmd("copy --from " .. sh_quote(src) .. " --to " .. sh_quote(dst) ..
                                     " --models examples/models")
    assert.equal(0, status, out)
    assert.same({ "copied 2 rows  genre", "copied 1 rows  post", "copied 2 rows  tag_post_genre", "" },
                { out:match("^(.-)\n(.-)\n(.-)\n(.*)$") })
    local db = H.open_at(dst)
    local m = H.blog(db)
    assert.same({ 1, 2 }, H.ids(m.Post:findByPk(1):getGenres(), "genre_id"))
    assert.equal(2, assert(m.Post:create { text = "new" }).post_id)
    db:close()
    -- a second copy into the same tables is refused, and says why
    out, status = junction_cmd("copy --from " .. sh_quote(src) .. " --to " .. sh_quote(dst))
    assert.equal(1, status)
    assert.truthy(out:find("junction: copy: junction.copy: table 'genre' of the destination has rows already", 1, true),
                  out)
    H.rmdb(src)
    H.drop_place(dst)
  end)

  it("needs --from and --to, and never prints a URL's password", function()
    local out, status = junction_cmd("copy --from x.sqlite3")
    assert.equal(2, status)
    assert.truthy(out:find("copy: give --from DB and --to DB", 1, true))
    out, status = junction_cmd("copy --from " .. sh_quote(seeded_file()) ..
                               " --to postgresql://me:s3cret@127.0.0.1:1/none")
    assert.equal(1, status)
    assert.truthy(out:find("cannot open postgresql://me@127.0.0.1:1/none", 1, true), out)
    assert.is_nil(out:find("s3cret", 1, true))
  end)
end)
