-- blog_models.lua: the seed's three models (Post, Genre, TagPostGenre) and their
-- associations, defined on a given connection. No nginx dependency, so the
-- OpenResty app (blog_app.lua) and the test's checker (check_db.lua) share it.
--
--   local models = require("blog_models")(db)   --> { Post = ..., Genre = ..., TagPostGenre = ... }
local junction = require "junction"

return function(db)
  local T = junction.types

  local Post = db:define("Post", {
    tableName = "post", timestamps = true, underscored = true,
    fields = {
      post_id = { type = T.INTEGER, allowNull = false, autoIncrement = true, primaryKey = true },
      text    = { type = T.TEXT, allowNull = false },
    },
  })

  local Genre = db:define("Genre", {
    tableName = "genre", timestamps = true, underscored = true,
    fields = {
      genre_id = { type = T.INTEGER, allowNull = false, autoIncrement = true, primaryKey = true },
      name     = { type = T.STRING(60), allowNull = false, unique = true },
    },
  })

  local TagPostGenre = db:define("TagPostGenre", {
    tableName = "tag_post_genre", timestamps = true, underscored = true,
    fields = {
      tag_post_genre_id = { type = T.INTEGER, primaryKey = true, autoIncrement = true },
      post_id  = { type = T.INTEGER, references = { model = "post",  key = "post_id" },
                   onDelete = "cascade", onUpdate = "cascade", unique = "unique-genre-per-post" },
      genre_id = { type = T.INTEGER, references = { model = "genre", key = "genre_id" },
                   onDelete = "cascade", onUpdate = "cascade", unique = "unique-genre-per-post" },
    },
  })

  db:associate {
    TagPostGenre = {
      { belongsTo = "Post",  foreignKey = "post_id",  targetKey = "post_id",  as = "Post" },
      { belongsTo = "Genre", foreignKey = "genre_id", targetKey = "genre_id", as = "Genre" },
    },
    Post  = { { belongsToMany = "Genre", through = "TagPostGenre", foreignKey = "post_id",  as = "Genres" } },
    Genre = { { belongsToMany = "Post",  through = "TagPostGenre", foreignKey = "genre_id", as = "Posts" } },
  }

  return { Post = Post, Genre = Genre, TagPostGenre = TagPostGenre }
end
