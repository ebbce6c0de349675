#!/usr/bin/env lua5.4
--[[
bench/growth.lua -- what makes a create cost more as P grows: P Post:create
in one transaction (bench/WORKLOAD.md's insert_posts), with the collector in
a chosen mode and the results kept as the workload keeps them, or only their
keys (docs/PERFORMANCE.md, "Scaling").

  lua5.4 bench/growth.lua DBPATH P incremental|generational|stop|keys

incremental, generational, stop: collectgarbage(mode) first ("generational"
needs Lua 5.4; "stop" never collects), every instance kept;
keys: the default collector, only each post's key kept.
Prints one line: P, mode, the collector's full cycles (counted by a finalizer
that re-arms itself), the Lua heap at the end, and the CPU time per create
(os.clock: user + system time of this process, so a loaded machine spreads it
less than wall-clock time). Under valgrind --tool=callgrind, the difference
of two runs' Ir over the difference of their P is the marginal cost of a
create at that size. DBPATH is deleted first (with -wal, -shm).
]]
local junction = require "junction"
local DBPATH, P, mode = arg[1], tonumber(arg[2] or ""), arg[3]
if not (DBPATH and P and (mode == "incremental" or mode == "generational" or mode == "stop" or mode == "keys")) then
  io.stderr:write("usage: lua5.4 bench/growth.lua DBPATH P incremental|generational|stop|keys\n")
  os.exit(2)
end
if mode == "generational" and _VERSION ~= "Lua 5.4" then
  io.stderr:write("growth.lua: generational needs Lua 5.4\n")
  os.exit(2)
end
for _, suffix in ipairs { "", "-wal", "-shm" } do os.remove(DBPATH .. suffix) end
local db = assert(junction.open(DBPATH, { journal_mode = "wal", synchronous = "normal" }))
local here = arg[0]:match("^(.*)[/\\]") or "."
local Post = junction.loadModels(db, here .. "/../examples/models").Post
assert(db:sync())

collectgarbage("collect")
if mode == "stop" then collectgarbage("stop")
elseif mode == "generational" then collectgarbage("generational")
elseif _VERSION == "Lua 5.4" then collectgarbage("incremental") end
local cycles = 0
do
  local function arm() setmetatable({}, { __gc = function() cycles = cycles + 1 arm() end }) end
  arm()
end

local kept = {}
local t0 = os.clock()
assert(db:transaction(function()
  for i = 1, P do
    local post = assert(Post:create { text = "post " .. i })
    if mode == "keys" then kept[i] = post.post_id else kept[i] = post end
  end
end))
local cpu = os.clock() - t0
assert(#kept == P)
io.stdout:write(("P=%d mode=%s cycles=%d heap_kib=%.0f cpu_us_per_create=%.3f\n"):format(
  P, mode, cycles, collectgarbage("count"), cpu / P * 1e6))
assert(db:close())
