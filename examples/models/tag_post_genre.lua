-- TagPostGenre: the junction model, on table tag_post_genre.
return function(db, T)
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
  return TagPostGenre, {
    { belongsTo = "Post",  foreignKey = "post_id",  targetKey = "post_id",  as = "Post" },
    { belongsTo = "Genre", foreignKey = "genre_id", targetKey = "genre_id", as = "Genre" },
  }
end
