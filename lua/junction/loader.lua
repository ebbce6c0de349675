-- junction.loader: a models directory in the one-file-per-model style.
--
-- Each *.lua file in the directory returns
--     function(db, types) ... return Model, associations end
-- where associations (optional) is the list this model declares, in the
-- form db:associate takes for one model.  load() defines every model, in
-- file-name order, then applies all the associations at once, so that a
-- file may name a model defined by a later one.
local M = {}

-- The *.lua files of dir, sorted: lfs when present, else ls.  ctx names the
-- caller in errors.
local function lua_files(dir, ctx)
  ctx = ctx or "junction.loadModels"
  local files = {}
  local ok, lfs = pcall(require, "lfs")
  if ok then
    local listed, iter, state = pcall(lfs.dir, dir)
    if not listed then error(ctx .. ": cannot list directory '" .. dir .. "'", 4) end
    for name in iter, state do
      if name:match("%.lua$") then files[#files + 1] = name end
    end
  else
    local p = io.popen("ls -1 '" .. dir:gsub("'", "'\\''") .. "'")
    if not p then error(ctx .. ": cannot list '" .. dir .. "'", 3) end
    for name in p:lines() do
      if name:match("%.lua$") then files[#files + 1] = name end
    end
    p:close()
  end
  table.sort(files)
  return files
end
M.lua_files = lua_files

function M.load(db, dir)
  if type(dir) ~= "string" then
    error("junction.loadModels: bad argument #2 (directory expected, got " .. type(dir) .. ")", 3)
  end
  local types = require("junction").types
  local models, associations = {}, {}
  local files = lua_files(dir)
  if #files == 0 then error("junction.loadModels: no .lua files in '" .. dir .. "'", 3) end
  for _, name in ipairs(files) do
    local path = dir .. "/" .. name
    local chunk, err = loadfile(path)
    if not chunk then error("junction.loadModels: " .. err, 3) end
    local define = chunk()
    if type(define) ~= "function" then
      error("junction.loadModels: " .. path .. " must return function(db, types)", 3)
    end
    local model, assocs = define(db, types)
    if model == nil then error("junction.loadModels: " .. path .. " returned no model", 3) end
    models[model.name] = model
    if assocs ~= nil then associations[model.name] = assocs end
  end
  db:associate(associations)
  return models
end

return M
