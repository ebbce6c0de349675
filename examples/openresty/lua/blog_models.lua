-- blog_models.lua: the seed's three models (Post, Genre, TagPostGenre) and their
-- associations on a given connection, loaded from examples/models/ (one file per
-- model). No nginx dependency, so the OpenResty app (blog_app.lua) and the
-- test's checker (check_db.lua) share it.
--
--   local models = require("blog_models")(db)   --> { Post = ..., Genre = ..., TagPostGenre = ... }
local junction = require "junction"

-- examples/models, found from this file's own place (examples/openresty/lua/)
local models_dir = (debug.getinfo(1, "S").source:match("^@(.*)[/\\]") or ".") .. "/../../models"

return function(db)
  return junction.loadModels(db, models_dir)
end
