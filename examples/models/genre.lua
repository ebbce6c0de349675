-- Genre: one model per file, as in the seed's models directory.
return function(db, T)
  local Genre = db:define("Genre", {
    tableName = "genre", timestamps = true, underscored = true,
    fields = {
      genre_id = { type = T.INTEGER, allowNull = false, autoIncrement = true, primaryKey = true },
      name     = { type = T.STRING(60), allowNull = false, unique = true },
    },
  })
  return Genre, {
    { belongsToMany = "Post", through = "TagPostGenre", foreignKey = "genre_id", as = "Posts" },
  }
end
