-- Post: one model per file, as in the seed's models directory.
return function(db, T)
  local Post = db:define("Post", {
    tableName = "post", timestamps = true, underscored = true,
    fields = {
      post_id = { type = T.INTEGER, allowNull = false, autoIncrement = true, primaryKey = true },
      text    = { type = T.TEXT, allowNull = false },
    },
  })
  return Post, {
    { belongsToMany = "Genre", through = "TagPostGenre", foreignKey = "post_id", as = "Genres" },
  }
end
