/*
** jn_include.c: eager loading.  `include` on findAll/findOne/findByPk loads
** the associations it names for every parent read, one statement per level
** whatever the number of rows (the parents' keys bound as one JSON array),
** nested includes too; `required` turns into an EXISTS on the parent query.
** The association's SQL pieces come from jn_assoc.c.  jn_include_find is the
** find of findAll/findOne/findByPk: the query jn_where.c and jn_query.c compile, then
** its includes.
*/
#include "jn.h"

static const char *const find_opts[] = {
  "where", "order", "limit", "offset", "attributes", "include", "group", "having", NULL
};

static const char *const include_opts[] = {
  "association", "as", "where", "required", "include", "attributes", "order", "limit", "offset",
  "through", NULL
};

static const char *const through_opts[] = { "where", "attributes", "as", NULL };

/* {====== Eager loading */

/*
** Read an include entry's spec table at v: `association` (an alias or a
** model) and `as` (an alias), which must name the same association.  The
** alias given goes to *alias (anchored in v), a model to the result.
*/
static jn_Model *entry_spec(lua_State *L, int v, const char **alias, const char *ctx) {
  jn_Model *target = NULL;
  int ta = jn_optfield(L, v, "association"), tas = jn_optfield(L, v, "as");
  if (ta == LUA_TNIL && luaL_testudata(L, -1, JN_MODEL_MT) != NULL) {   /* { as = Model } */
    lua_replace(L, -2);
    lua_pushnil(L);
    ta = LUA_TUSERDATA;
    tas = LUA_TNIL;
  }
  if (tas != LUA_TNIL && tas != LUA_TSTRING)
    luaL_error(L, "%s: bad include option 'as' (string expected, got %s)", ctx, luaL_typename(L, -1));
  if (ta == LUA_TSTRING) {
    *alias = lua_tostring(L, -2);   /* anchored in v */
  } else if (ta != LUA_TNIL) {
    if ((target = (jn_Model *)luaL_testudata(L, -2, JN_MODEL_MT)) == NULL)
      luaL_error(L, "%s: bad include option 'association' (an alias or a model expected, got %s)", ctx,
                 luaL_typename(L, -2));
  } else if (tas == LUA_TNIL) {
    luaL_error(L, "%s: bad include (missing 'association')", ctx);
  }
  if (tas == LUA_TSTRING) {
    if (*alias != NULL && strcmp(*alias, lua_tostring(L, -1)) != 0)
      luaL_error(L, "%s: bad include (association '%s' and as '%s' name two associations: give one)",
                 ctx, *alias, lua_tostring(L, -1));
    *alias = lua_tostring(L, -1);
  }
  lua_pop(L, 2);
  return target;
}

/* With m's lookup table on top, push the one association of m that leads
** to target (or nil) above it; raises when there are two.
** [-0, +1, e] */
static void push_assoc_to(lua_State *L, jn_Model *m, jn_Model *target, const char *ctx) {
  jn_Assoc *found = NULL;
  lua_pushnil(L);                              /* lookup found */
  lua_pushnil(L);
  while (lua_next(L, -3) != 0) {               /* lookup found key value */
    jn_Assoc *a = (jn_Assoc *)luaL_testudata(L, -1, JN_ASSOC_MT);
    if (a != NULL && a->source == m && a->target == target) {
      if (found != NULL)
        luaL_error(L, "%s: bad include (%s has two associations to %s: name one, as in "
                   "include = { \"%s\" })", ctx, m->name, target->name, a->alias);
      found = a;
      lua_replace(L, -3);                      /* lookup found=value key */
    } else {
      lua_pop(L, 1);
    }
  }
}

/*
** Push the association of m that an include entry names (key at k, value at
** v), or nil when it names none: by alias as the key ({ Genres = {...} }),
** as a string ({ "Genres" }), as `association` (or `as`) of a spec table,
** or as the target model itself ({ Genre }, the Sequelize habit) when
** exactly one association of m leads to it.  *alias gets the name the
** entry gave (NULL for a model).  Raises on an entry of no such shape.
** [-0, +1, e]
*/
static jn_Assoc *push_entry_assoc(lua_State *L, jn_Model *m, int k, int v, const char **alias,
                                  const char *ctx) {
  jn_Model *target = NULL;
  jn_Assoc *found;
  *alias = NULL;
  if (lua_type(L, k) == LUA_TSTRING) {
    *alias = lua_tostring(L, k);
  } else if (lua_type(L, v) == LUA_TSTRING) {
    *alias = lua_tostring(L, v);
  } else if ((target = (jn_Model *)luaL_testudata(L, v, JN_MODEL_MT)) != NULL) {
  } else if (lua_istable(L, v)) {
    target = entry_spec(L, v, alias, ctx);
  } else {
    luaL_error(L, "%s: bad include (%s)", ctx, luaL_typename(L, v));
  }
  jn_schema_lookup(L, m);                        /* lookup */
  if (*alias != NULL) lua_getfield(L, -1, *alias);   /* lookup value */
  else push_assoc_to(L, m, target, ctx);         /* a model: the one association that leads to it */
  lua_remove(L, -2);                             /* value */
  found = (jn_Assoc *)luaL_testudata(L, -1, JN_ASSOC_MT);
  if (found == NULL || found->source != m) {
    lua_pop(L, 1);
    lua_pushnil(L);
    found = NULL;
  } else if (*alias != NULL && target != NULL && found->target != target) {
    /* { association = Model, as = "Alias" }: the alias must lead to that model */
    luaL_error(L, "%s: bad include (as '%s' is %s's association to %s, not to %s)", ctx, *alias, m->name,
               found->target->name, target->name);
  }
  return found;
}

/* Push "Genres, Posts": the aliases of m's associations, sorted. [-0, +1, m] */
static void push_aliases(lua_State *L, jn_Model *m) {
  const char *names[64];
  int n = 0, i, j;
  jn_Buf b;
  jn_schema_lookup(L, m);
  lua_pushnil(L);
  while (lua_next(L, -2) != 0) {
    jn_Assoc *a = (jn_Assoc *)luaL_testudata(L, -1, JN_ASSOC_MT);
    if (a != NULL && a->source == m && n < 64) {
      for (i = n++; i > 0 && strcmp(names[i - 1], a->alias) > 0; i--) names[i] = names[i - 1];
      names[i] = a->alias;   /* anchored in the association, which the lookup keeps */
    }
    lua_pop(L, 1);
  }
  jn_buf_init(L, &b);
  for (j = 0; j < n; j++) {
    if (j) jn_buf_adds(L, &b, ", ");
    jn_buf_adds(L, &b, names[j]);
  }
  if (n == 0) jn_buf_adds(L, &b, "none");
  lua_pushlstring(L, b.p, b.n);
  lua_replace(L, -3);   /* over the lookup table */
  lua_pop(L, 1);        /* the buffer */
}

/*
** Append " AND (...)": the where of the entry for a in the include table at
** inc, if it has one, so that a column of an included association is read
** from the rows the include reads.
*/
static void include_subwhere(lua_State *L, jn_Assoc *a, int inc, jn_Buf *b, jn_Select *s,
                             const char *ctx) {
  int top = lua_gettop(L);
  if (!lua_istable(L, inc)) return;
  lua_pushnil(L);
  while (lua_next(L, inc) != 0) {
    const char *alias;
    int v = lua_gettop(L);
    if (push_entry_assoc(L, a->source, v - 1, v, &alias, ctx) == a && lua_istable(L, v) &&
        jn_optfield(L, v, "where") == LUA_TTABLE) {
      jn_buf_adds(L, b, " AND ");
      jn_where_compile(L, a->target, lua_gettop(L), "t", b, s, ctx);
      break;
    }
    lua_settop(L, v - 1);
  }
  lua_settop(L, top);
}

/*
** The association alias (n bytes) of m, for a column of it in a find's where
** or order (jn_SubFn): with b, append its rows of the row of m being read,
** " FROM ... WHERE <link> = "table"."key"".  Returns the target; raises
** when m has no such association.  [-0, +0, e]
*/
static jn_Model *include_sub(lua_State *L, jn_Model *m, const char *alias, size_t n, jn_Buf *b,
                             jn_Select *s, const char *ctx) {
  jn_Assoc *a;
  jn_schema_lookup(L, m);
  lua_pushlstring(L, alias, n);
  lua_rawget(L, -2);
  a = (jn_Assoc *)luaL_testudata(L, -1, JN_ASSOC_MT);
  if (a == NULL || a->source != m) {
    lua_pushlstring(L, alias, n);
    push_aliases(L, m);
    luaL_error(L, "%s: bad column of '%s' (%s has no association of that name; it has %s)", ctx,
               lua_tostring(L, -2), m->name, lua_tostring(L, -1));
  }
  lua_pop(L, 2);   /* the association stays in the model's lookup */
  if (b != NULL) {
    jn_assoc_from(L, a, b);
    jn_buf_adds(L, b, " WHERE ");
    jn_assoc_link(L, a, b);
    jn_buf_adds(L, b, " = ");
    jn_buf_adds(L, b, a->source->qtable);
    jn_buf_adds(L, b, ".");
    jn_buf_addident(L, b, NULL, a->source->f[a->source_key].col);
    if (s->inc_idx) include_subwhere(L, a, s->inc_idx, b, s, ctx);
  }
  return a->target;
}

/*
** Read one include entry (key at -2, value at -1 of a lua_next loop over the
** include table) into the association (pushed) and the spec table (pushed,
** or nil).  Raises for an unknown alias or option, naming the associations
** that exist.
*/
static jn_Assoc *include_entry(lua_State *L, jn_Model *m, const char *ctx) {
  int k = lua_gettop(L) - 1, v = k + 1;
  const char *alias;
  jn_Assoc *a;
  if (lua_type(L, k) == LUA_TSTRING && !lua_istable(L, v) &&
      !(lua_isboolean(L, v) && lua_toboolean(L, v)))
    luaL_error(L, "%s: bad include '%s' (true or a table of options expected)", ctx,
               lua_tostring(L, k));
  a = push_entry_assoc(L, m, k, v, &alias, ctx);
  if (a == NULL) {
    jn_Model *target;
    push_aliases(L, m);
    if (alias != NULL)
      luaL_error(L, "%s: bad include '%s' (%s has no association of that name; it has %s)", ctx,
                 alias, m->name, lua_tostring(L, -1));
    /* the entry named a model: v itself, or the association of a spec table */
    if (lua_istable(L, v) && jn_optfield(L, v, "association") == LUA_TNIL) {
      lua_pop(L, 1);
      jn_optfield(L, v, "as");
    } else if (!lua_istable(L, v)) {
      lua_pushvalue(L, v);
    }
    target = (jn_Model *)luaL_testudata(L, -1, JN_MODEL_MT);
    luaL_error(L, "%s: bad include (%s has no association to %s; it has %s)", ctx, m->name,
               target != NULL ? target->name : "that model", lua_tostring(L, -2));
  }
  if (lua_istable(L, v)) {
    jn_conn_checkopts(L, v, include_opts, ctx);
    lua_pushvalue(L, v);
  } else {
    lua_pushnil(L);
  }
  return a;
}

/*
** Push the include's `through` table (spec at spec, or 0), or nil: for a
** belongsToMany only, a table of where (on the junction model's fields),
** attributes (the junction fields attached to each target, {} for none)
** and as (the name they are attached under, instead of the junction
** model's).  Returns its index, or 0.  Raises on misuse.
** [-0, +1, e]
*/
static int push_through(lua_State *L, jn_Assoc *a, int spec, const char *ctx) {
  char octx[200];
  if (!spec || jn_optfield(L, spec, "through") == LUA_TNIL) {
    if (!spec) lua_pushnil(L);
    return 0;
  }
  if (a->kind != JN_A_BELONGS_TO_MANY)
    luaL_error(L, "%s: bad include '%s': bad option 'through' (only a belongsToMany has a junction model)",
               ctx, a->alias);
  if (!lua_istable(L, -1))
    luaL_error(L, "%s: bad include '%s': bad option 'through' (table expected, got %s)", ctx, a->alias,
               luaL_typename(L, -1));
  snprintf(octx, sizeof octx, "%s: include '%s': option 'through'", ctx, a->alias);
  jn_conn_checkopts(L, lua_gettop(L), through_opts, octx);
  return lua_gettop(L);
}

/* Append " AND <the through where>" when the through table at t has one. */
static void add_through_where(lua_State *L, jn_Assoc *a, int t, jn_Buf *b, jn_Select *s,
                              const char *ctx) {
  if (!t) return;
  if (jn_optfield(L, t, "where") != LUA_TNIL) {
    jn_buf_adds(L, b, " AND ");
    jn_where_compile(L, a->through, lua_gettop(L), "j", b, s, ctx);
  }
  lua_pop(L, 1);
}

/*
** The junction columns an include reads: through.attributes (names of
** the junction model's fields; {} for none) when the through table at t
** gives them, else those every belongsToMany read gives.  Pushes a
** userdata int[] and returns the count.
** [-0, +1, e]
*/
static int through_cols(lua_State *L, jn_Assoc *a, int t, int **cols, const char *ctx) {
  jn_Model *j = a->through;
  int n = 0, i, k, list;
  if (!t || jn_optfield(L, t, "attributes") == LUA_TNIL) {
    if (t) lua_pop(L, 1);
    return jn_assoc_throughcols(L, a, 0, cols);
  }
  list = lua_gettop(L);
  if (!lua_istable(L, list))
    luaL_error(L, "%s: include '%s': bad option 'through.attributes' (array of %s fields expected)", ctx,
               a->alias, j->name);
  k = (int)lua_rawlen(L, list);
  jn_value_checklist(L, list, k, ctx, "option 'through.attributes'", "a list");
  *cols = (int *)lua_newuserdata(L, (size_t)(j->nfields + 1) * sizeof(int));
  for (i = 1; i <= k && n < j->nfields; i++) {
    int f;
    lua_rawgeti(L, list, i);
    f = lua_type(L, -1) == LUA_TSTRING ? jn_schema_field(L, j, -1) : -1;
    if (f < 0)
      luaL_error(L, "%s: include '%s': bad option 'through.attributes' ('%s' is no field of %s)", ctx,
                 a->alias, jn_value_name(L, -1), j->name);
    lua_pop(L, 1);
    (*cols)[n++] = f;
  }
  lua_remove(L, list);
  return n;
}

/*
** The name the junction row is attached under on each target: through.as
** (the through table at t), else NULL (the junction model's name).  A new
** name becomes readable on every instance of the target (nil until an
** include sets it), as the junction model's name is; one that is a field
** or method of the target raises.
*/
static const char *through_as(lua_State *L, jn_Assoc *a, int t, const char *ctx) {
  const char *as;
  if (!t || jn_optfield(L, t, "as") == LUA_TNIL) {
    if (t) lua_pop(L, 1);
    return NULL;
  }
  if (lua_type(L, -1) != LUA_TSTRING)
    luaL_error(L, "%s: include '%s': bad option 'through.as' (string expected, got %s)", ctx, a->alias,
               luaL_typename(L, -1));
  {
    int idx = lua_gettop(L);
    jn_schema_checkident(L, idx, lua_pushfstring(L, "%s: include '%s': bad option 'through.as'", ctx, a->alias));
    lua_pop(L, 1);
  }
  as = lua_tostring(L, -1);   /* anchored in the through table */
  lua_pop(L, 1);
  jn_schema_lookup(L, a->target);
  lua_getfield(L, -1, as);
  if (lua_isnil(L, -1)) {     /* readable from now on: an instance's loaded value, or nil */
    lua_pushboolean(L, 1);
    lua_setfield(L, -3, as);
  } else if (lua_type(L, -1) == LUA_TNUMBER || lua_type(L, -1) == LUA_TFUNCTION) {
    luaL_error(L, "%s: include '%s': bad option 'through.as' ('%s' is a field or method of %s)", ctx,
               a->alias, as, a->target->name);
  }
  lua_pop(L, 2);
  return as;
}

/* Is the include whose spec table is at spec (or 0) required?  required when
** given, else whether it has a where (Sequelize's rule). */
static int is_required(lua_State *L, int spec) {
  int required;
  if (!spec) return 0;
  if (jn_optfield(L, spec, "required") == LUA_TNIL) {
    lua_pop(L, 1);
    jn_optfield(L, spec, "where");
  }
  required = lua_toboolean(L, -1);
  lua_pop(L, 1);
  return required;
}

static void add_exists(lua_State *L, jn_Assoc *a, int spec, jn_Buf *b, jn_Select *s,
                       const char *ctx, const char *palias, int depth);

/*
** For each include nested in the include spec at spec that is required,
** append " AND EXISTS (...)" correlated to the rows of m under the alias
** palias: a required include's own required includes must match too
** (Sequelize's nested INNER JOINs).
*/
static void add_nested_required(lua_State *L, jn_Model *m, int spec, jn_Buf *b, jn_Select *s,
                                const char *ctx, const char *palias, int depth) {
  int inc, top = lua_gettop(L);
  if (!spec || jn_optfield(L, spec, "include") != LUA_TTABLE) { lua_settop(L, top); return; }
  inc = lua_gettop(L);
  luaL_checkstack(L, 8, "include nested too deep");
  if (depth > 32) luaL_error(L, "%s: bad include (nested more than 32 deep)", ctx);
  lua_pushnil(L);
  while (lua_next(L, inc) != 0) {
    jn_Assoc *kid = include_entry(L, m, ctx);
    int kspec = lua_istable(L, -1) ? lua_gettop(L) : 0;
    if (is_required(L, kspec)) {
      jn_buf_adds(L, b, " AND ");
      add_exists(L, kid, kspec, b, s, ctx, palias, depth);
    }
    lua_pop(L, 3);
  }
  lua_settop(L, top);
}

/*
** Append "EXISTS (SELECT 1 FROM ... WHERE link = <parent key> [AND where]
** [AND through where] [AND the nested required EXISTS])".  The parent's
** key is read from the alias palias, or from the source's table at the top
** (palias NULL); this level's tables are jn_tN and jn_jN (N = depth), so
** that the nested levels can name them.
*/
static void add_exists(lua_State *L, jn_Assoc *a, int spec, jn_Buf *b, jn_Select *s,
                       const char *ctx, const char *palias, int depth) {
  char ta[16], ja[16];
  snprintf(ta, sizeof ta, "jn_t%d", depth);
  snprintf(ja, sizeof ja, "jn_j%d", depth);
  jn_buf_adds(L, b, "EXISTS (SELECT 1 FROM ");
  if (a->kind == JN_A_BELONGS_TO_MANY) {
    jn_buf_adds(L, b, a->through->qtable);
    jn_buf_adds(L, b, " AS ");
    jn_buf_adds(L, b, ja);
    jn_buf_adds(L, b, " JOIN ");
    jn_buf_adds(L, b, a->target->qtable);
    jn_buf_adds(L, b, " AS ");
    jn_buf_adds(L, b, ta);
    jn_buf_adds(L, b, " ON ");
    jn_buf_addident(L, b, ta, a->target->f[a->target_key].col);
    jn_buf_adds(L, b, " = ");
    jn_buf_addident(L, b, ja, a->through->f[a->other].col);
    jn_buf_adds(L, b, " WHERE ");
    jn_buf_addident(L, b, ja, a->through->f[a->fk].col);
  } else {
    jn_buf_adds(L, b, a->target->qtable);
    jn_buf_adds(L, b, " AS ");
    jn_buf_adds(L, b, ta);
    jn_buf_adds(L, b, " WHERE ");
    jn_buf_addident(L, b, ta, a->target->f[a->target_key].col);
  }
  jn_buf_adds(L, b, " = ");
  if (palias == NULL) {
    jn_buf_adds(L, b, a->source->qtable);
    jn_buf_adds(L, b, ".");
    jn_buf_addident(L, b, NULL, a->source->f[a->source_key].col);
  } else {
    jn_buf_addident(L, b, palias, a->source->f[a->source_key].col);
  }
  if (spec) {
    int t;
    jn_optfield(L, spec, "where");
    if (!lua_isnil(L, -1)) {
      jn_buf_adds(L, b, " AND ");
      jn_where_compile(L, a->target, lua_gettop(L), ta, b, s, ctx);
    }
    lua_pop(L, 1);
    t = push_through(L, a, spec, ctx);
    if (t && jn_optfield(L, t, "where") != LUA_TNIL) {
      jn_buf_adds(L, b, " AND ");
      jn_where_compile(L, a->through, lua_gettop(L), ja, b, s, ctx);
    }
    lua_pop(L, t ? 2 : 1);
    add_nested_required(L, a->target, spec, b, s, ctx, ta, depth + 1);
  }
  jn_buf_adds(L, b, ")");
}

/*
** Add to cols[0..*k) the fields of m that the includes at incidx link by
** (a parent read with `attributes` still needs them).  Entries that name no
** association are left for include_entry to reject.
*/
static void include_keycols(lua_State *L, jn_Model *m, int incidx, int *cols, int *k,
                            const char *ctx) {
  if (!lua_istable(L, incidx)) return;
  lua_pushnil(L);
  while (lua_next(L, incidx) != 0) {
    const char *alias;
    int i, top = lua_gettop(L);
    jn_Assoc *a = push_entry_assoc(L, m, top - 1, top, &alias, ctx);
    if (a != NULL) {
      for (i = 0; i < *k && cols[i] != a->source_key; i++) {}
      if (i == *k) cols[(*k)++] = a->source_key;
    }
    lua_pop(L, 2);
  }
}

/*
** For each include with required = true, append " AND EXISTS (...)" (or
** " WHERE EXISTS (...)") to the query of m, so that only
** parents with a match are read.
*/
/*
** Compile, and throw away, the where of the include spec at spec and of the
** includes nested in it: a mistake in one (an empty where, an unknown field)
** raises before the parent query runs, whether or not it finds rows to load
** the include for.  Every query with includes passes here first, so the
** depth bound here (as add_exists's) also bounds the loading's recursion:
** a chain nested 100,000 deep (or a cycle) raises instead of running the
** C stack out.  [-0, +0, e]
*/
static void check_include(lua_State *L, jn_Assoc *a, int spec, const char *ctx, int depth) {
  int top = lua_gettop(L);
  if (depth > 32) luaL_error(L, "%s: bad include (nested more than 32 deep)", ctx);
  if (jn_optfield(L, spec, "where") != LUA_TNIL) {
    jn_Buf b;
    jn_Select s;
    int w = lua_gettop(L);
    jn_select_init(L, &s);
    jn_buf_init(L, &b);
    jn_where_compile(L, a->target, w, "t", &b, &s, ctx);
  }
  lua_settop(L, top);
  {   /* the through options, checked (and through.as made readable) before any query */
    int t = push_through(L, a, spec, ctx), *cols;
    if (t) {
      jn_Buf b;
      jn_Select s;
      jn_select_init(L, &s);
      jn_buf_init(L, &b);
      add_through_where(L, a, t, &b, &s, ctx);
      through_cols(L, a, t, &cols, ctx);
      through_as(L, a, t, ctx);
    }
  }
  lua_settop(L, top);
  if (jn_optfield(L, spec, "include") == LUA_TTABLE) {
    int inc = lua_gettop(L);
    luaL_checkstack(L, 8, "include nested too deep");
    lua_pushnil(L);
    while (lua_next(L, inc) != 0) {
      jn_Assoc *kid = include_entry(L, a->target, ctx);
      if (lua_istable(L, -1)) check_include(L, kid, lua_gettop(L), ctx, depth + 1);
      lua_pop(L, 3);
    }
  }
  lua_settop(L, top);
}

void jn_include_required(lua_State *L, jn_Model *m, int incidx, jn_Buf *b,
                       jn_Select *s, int *haswhere, const char *ctx) {
  if (!lua_istable(L, incidx))
    luaL_error(L, "%s: bad option 'include' (table expected, got %s)", ctx, luaL_typename(L, incidx));
  lua_pushnil(L);
  while (lua_next(L, incidx) != 0) {
    jn_Assoc *a = include_entry(L, m, ctx);
    int spec = lua_istable(L, -1) ? lua_gettop(L) : 0;
    /* a where makes an include required unless required = false (Sequelize's rule) */
    if (is_required(L, spec)) {
      jn_buf_adds(L, b, *haswhere ? " AND " : " WHERE ");
      *haswhere = 1;
      add_exists(L, a, spec, b, s, ctx, NULL, 1);
    }
    if (spec) check_include(L, a, spec, ctx, 1);
    lua_pop(L, 3);
  }
}

/*
** Collect keys: map each parent's key (of the parents in the array at
** listidx) to the parent's array of targets (to-many, set on the parent
** now) or to the parents sharing it (to-one), and append each distinct key
** to the JSON array j.  A parent without a key gets an empty array
** (to-many).  Returns the number of distinct keys.
*/
static int collect_keys(lua_State *L, jn_Assoc *a, int listidx, int map, int tomany, jn_Buf *j) {
  int i, nk = 0, n = (int)lua_rawlen(L, listidx);
  jn_buf_addl(L, j, "[", 1);
  for (i = 1; i <= n; i++) {
    int p;
    lua_rawgeti(L, listidx, i);
    p = lua_gettop(L);
    jn_inst_get(L, p, a->source_key);   /* p + 1: the parent's key */
    if (lua_isnil(L, -1)) {
      if (tomany) { jn_inst_newlist(L, 0); jn_inst_setassoc(L, p, a); }
      lua_settop(L, p - 1);
      continue;
    }
    lua_pushvalue(L, -1);
    lua_rawget(L, map);
    if (lua_isnil(L, -1)) {
      lua_pop(L, 1);
      if (tomany) jn_inst_newlist(L, 0);   /* the parent's array of the targets */
      else lua_newtable(L);                /* the parents sharing this key */
      lua_pushvalue(L, -2);
      lua_pushvalue(L, -2);
      lua_rawset(L, map);
      if (nk++) jn_buf_addl(L, j, ",", 1);
      jn_select_addjson(L, j, p + 1);
    }
    if (tomany) {
      jn_inst_setassoc(L, p, a);
    } else {
      lua_pushvalue(L, p);
      lua_rawseti(L, -2, (int)lua_rawlen(L, -2) + 1);
    }
    lua_settop(L, p - 1);
  }
  jn_buf_addl(L, j, "]", 1);
  return nk;
}

/*
** Top-N per parent: append ", ROW_NUMBER() OVER (PARTITION BY <link> ORDER
** BY <the include's order, else the target's key>) AS "jn_rn"" to the
** select list of the include statement.
*/
static void top_rank(lua_State *L, jn_Assoc *a, int spec, jn_Buf *b, jn_Select *s, const char *ctx) {
  jn_buf_adds(L, b, ", ROW_NUMBER() OVER (PARTITION BY ");
  jn_assoc_link(L, a, b);
  jn_buf_adds(L, b, " ORDER BY ");
  if (jn_optfield(L, spec, "order") != LUA_TNIL) {
    jn_query_order(L, a->target, lua_gettop(L), "t", b, s, ctx);
    jn_buf_adds(L, b, ", ");
  }
  lua_pop(L, 1);
  jn_buf_addident(L, b, "t", a->target->f[a->target->pk].col);
  jn_buf_adds(L, b, ") AS \"jn_rn\"");
}

/* Read the non-negative whole number of option k of spec (0 when absent). */
static lua_Integer top_count(lua_State *L, int spec, const char *k, const char *ctx) {
  lua_Integer v = 0;
  if (jn_optfield(L, spec, k) != LUA_TNIL) {
    if (!lua_isinteger(L, -1) || lua_tonumber(L, -1) < 0 || lua_tonumber(L, -1) > 2147483647.0)
      luaL_error(L, "%s: bad include option '%s' (non-negative integer expected)", ctx, k);
    v = lua_tointeger(L, -1);
  }
  lua_pop(L, 1);
  return v;
}

/* Close the top-N statement: the rows ranked past the include's offset and
** within its limit, each parent's in their rank. */
static void top_window(lua_State *L, int spec, jn_Buf *b, jn_Select *s, const char *ctx) {
  lua_Integer off = top_count(L, spec, "offset", ctx);
  int haslimit = jn_optfield(L, spec, "limit") != LUA_TNIL;
  lua_Integer lim = top_count(L, spec, "limit", ctx);
  lua_pop(L, 1);
  jn_buf_adds(L, b, ") AS \"jn_top\" WHERE \"jn_rn\" > ?");
  lua_pushinteger(L, off);
  jn_select_bind(L, s, -1);
  lua_pop(L, 1);
  if (haslimit) {
    jn_buf_adds(L, b, " AND \"jn_rn\" <= ?");
    lua_pushinteger(L, off + lim);
    jn_select_bind(L, s, -1);
    lua_pop(L, 1);
  }
  jn_buf_adds(L, b, " ORDER BY \"jn_rn\"");
}

/*
** Build SQL: the statement reading the targets of every key of the JSON
** array j at once (the link column first), with the include's where and
** order (spec, or 0); the junction columns it reads go to r.  From the
** cache; NULL with *rc on failure.
*/
static jn_St *include_stmt(lua_State *L, jn_Rows *r, int spec, int t, const jn_Buf *j,
                           jn_Select *s, const char *ctx, int *rc) {
  jn_Assoc *a = r->a;
  jn_Buf b;
  int *tcols, top = 0;
  if (spec) {
    top = jn_optfield(L, spec, "limit") != LUA_TNIL;
    top |= jn_optfield(L, spec, "offset") != LUA_TNIL;
    lua_pop(L, 2);
  }
  jn_select_init(L, s);
  jn_buf_init(L, &b);
  jn_buf_adds(L, &b, top ? "SELECT * FROM (SELECT " : "SELECT ");
  jn_assoc_link(L, a, &b);
  jn_buf_adds(L, &b, ", ");
  if (!spec) lua_pushnil(L);   /* no options: a nil slot, never index 0 (no valid index) */
  jn_query_columns(L, a->target, spec ? spec : lua_gettop(L), NULL, 0, "t", &b, s, ctx);
  r->ntc = through_cols(L, a, t, &tcols, ctx);
  r->tcols = tcols;
  jn_assoc_addthrough(L, a, &b, tcols, r->ntc);
  if (top) top_rank(L, a, spec, &b, s, ctx);
  jn_assoc_from(L, a, &b);
  jn_buf_adds(L, &b, " WHERE ");
  jn_assoc_link(L, a, &b);
  jn_buf_adds(L, &b, " IN (");
  jn_buf_adds(L, &b, jn_select_jsonin(a->source->conn, jn_assoc_linktype(a)));
  jn_buf_adds(L, &b, ")");
  lua_pushlstring(L, j->p, j->n);
  jn_select_bind(L, s, -1);
  lua_pop(L, 1);
  if (spec) {
    jn_optfield(L, spec, "where");
    if (!lua_isnil(L, -1)) {
      jn_buf_adds(L, &b, " AND ");
      jn_where_compile(L, a->target, lua_gettop(L), "t", &b, s, ctx);
    }
    lua_pop(L, 1);
    add_through_where(L, a, t, &b, s, ctx);
    /* a target whose own required includes find nothing is not loaded */
    add_nested_required(L, a->target, spec, &b, s, ctx, "t", 1);
    if (top) {
      top_window(L, spec, &b, s, ctx);
      return jn_stmt_cached(L, a->source->conn, b.p, b.n, rc);
    }
    lua_newtable(L);   /* only order applies to an include */
    jn_optfield(L, spec, "order");
    lua_setfield(L, -2, "order");
    jn_query_tail(L, a->target, lua_gettop(L), "t", &b, s, ctx);
    lua_pop(L, 1);
  }
  return jn_stmt_cached(L, a->source->conn, b.p, b.n, rc);
}

/* The number of nested includes of the include spec (0: none), for room
** in every child. */
static int nested_count(lua_State *L, int spec) {
  int n = 0;
  if (!spec) return 0;
  jn_optfield(L, spec, "include");
  if (lua_istable(L, -1)) {
    lua_pushnil(L);
    while (lua_next(L, -2) != 0) { lua_pop(L, 1); n++; }
  }
  lua_pop(L, 1);
  return n;
}

/* Give the target on top to the parents whose key is the row's link column
** (in map): appended to the array of each (to-many), or set on each
** (to-one).  Pops nothing. */
static void give_to_parents(lua_State *L, jn_Assoc *a, jn_St *st, int map, int tomany) {
  jn_stmt_pushcolumn(L, a->source->conn->eng, st, 0, jn_assoc_linktype(a));
  lua_rawget(L, map);
  if (lua_istable(L, -1)) {
    if (tomany) {
      lua_pushvalue(L, -2);
      lua_rawseti(L, -2, (int)lua_rawlen(L, -2) + 1);
    } else {
      int k, np = (int)lua_rawlen(L, -1);
      for (k = 1; k <= np; k++) {
        lua_rawgeti(L, -1, k);
        lua_pushvalue(L, -3);
        jn_inst_setassoc(L, -2, a);
        lua_pop(L, 1);
      }
    }
  }
  lua_pop(L, 1);
}

/*
** Distribute rows: step st, make each row's target (once per target key in
** a belongsToMany without junction columns: an identity map, as with any
** other read of the same row), give it to its parents, and append each new
** target to the array at kids.  Returns the last step's code.
*/
static int distribute_rows(lua_State *L, const jn_Rows *r, jn_St *st, int map, int kids,
                           int tomany, const char *as) {
  jn_Assoc *a = r->a;
  jn_Conn *c = a->source->conn;
  int i, rc, seen, nkids = 0, keypos = -1;   /* keypos: the target key's column, or -1 */
  if (a->kind == JN_A_BELONGS_TO_MANY && r->ntc == 0) {
    for (i = 0; i < r->s->ncols && keypos < 0; i++)
      if ((r->s->cols ? r->s->cols[i] : i) == a->target_key) keypos = 1 + i;
  }
  lua_newtable(L);
  seen = lua_gettop(L);
  while ((rc = jn_conn_step(L, c, st)) == SQLITE_ROW) {
    int fresh = 1;
    if (keypos >= 0) {
      jn_stmt_pushcolumn(L, c->eng, st, keypos, a->target->f[a->target_key].type);
      lua_pushvalue(L, -1);
      lua_rawget(L, seen);
      if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        jn_assoc_pushrow(L, r, st);
        lua_pushvalue(L, -1);
        lua_insert(L, -3);
        lua_rawset(L, seen);
      } else {
        lua_remove(L, -2);
        fresh = 0;
      }
    } else {
      jn_assoc_pushrow(L, r, st);
    }
    if (as != NULL && r->ntc > 0) {   /* the junction row under through.as */
      jn_inst_extras(L, -1, 1);
      lua_getfield(L, -1, r->a->through->name);
      lua_setfield(L, -2, as);
      lua_pushnil(L);
      lua_setfield(L, -2, r->a->through->name);
      lua_pop(L, 1);
    }
    if (fresh) {
      lua_pushvalue(L, -1);
      lua_rawseti(L, kids, ++nkids);
    }
    give_to_parents(L, a, st, map, tomany);
    lua_pop(L, 1);
  }
  lua_remove(L, seen);
  return rc;
}

/*
** Load one include for the parents in the array at listidx: one statement
** whatever their number, parents' keys bound as one JSON array; then the
** include's own includes for the targets read.  spec: the include's spec
** table, or 0.  Returns 0, or the number of values of a failure pushed.
*/
static int load_include(lua_State *L, jn_Assoc *a, int listidx, int associdx, int spec,
                        const char *ctx) {
  jn_Conn *c = a->source->conn;
  int tomany = a->kind == JN_A_HAS_MANY || a->kind == JN_A_BELONGS_TO_MANY;
  int map, kids, rc;
  jn_Buf j;
  jn_Select s;
  jn_Rows r;
  jn_St *st;
  int t;
  const char *as;
  if (lua_rawlen(L, listidx) == 0) return 0;
  r.a = a;
  r.s = &s;
  r.col0 = 1;
  jn_assoc_pushmodels(L, associdx, &r.tmodel, &r.jmodel);
  lua_newtable(L);
  map = lua_gettop(L);
  jn_buf_init(L, &j);
  if (collect_keys(L, a, listidx, map, tomany, &j) == 0) return 0;
  t = push_through(L, a, spec, ctx);
  as = through_as(L, a, t, ctx);
  st = include_stmt(L, &r, spec, t, &j, &s, ctx, &rc);
  if (st == NULL) return jn_error_result(L, c, rc, NULL);
  jn_select_bindlist(L, c, st, &s);
  r.nrec = nested_count(L, spec);
  luaL_getmetatable(L, JN_INST_MT);
  r.mt = lua_gettop(L);
  lua_newtable(L);
  kids = lua_gettop(L);
  rc = distribute_rows(L, &r, st, map, kids, tomany, as);
  if (rc != SQLITE_DONE) return jn_error_finish(L, c, st, rc, SQLITE_DONE);
  jn_e_reset(c->eng, st);
  if (spec) {
    jn_optfield(L, spec, "include");
    if (!lua_isnil(L, -1)) {
      rc = jn_include_load(L, a->target, kids, lua_gettop(L), ctx);
      if (rc != 0) return rc;
    }
    lua_pop(L, 1);
  }
  return 0;
}

/*
** Eager loading: for the instances of m in the array at listidx, load every
** association the include table at incidx names, nested includes too.  A
** fixed number of statements per level.  Returns 0, or 3 with the fail
** triple of a database failure on top of the stack (a read answers
** nil, message, code; it never raises a failure).
*/
int jn_include_load(lua_State *L, jn_Model *m, int listidx, int incidx, const char *ctx) {
  int top = lua_gettop(L);
  luaL_checkstack(L, 30, "include nested too deep");
  lua_pushnil(L);
  while (lua_next(L, incidx) != 0) {
    int k = lua_gettop(L) - 1, rc;
    include_entry(L, m, ctx);
    rc = load_include(L, (jn_Assoc *)lua_touserdata(L, k + 2), listidx, k + 2,
                      lua_istable(L, k + 3) ? k + 3 : 0, ctx);
    if (rc != 0) {   /* keep the failure's rc values (nil, message, code[, details]) */
      int i, n = lua_gettop(L);
      for (i = 1; i <= rc; i++) {
        lua_pushvalue(L, n - rc + i);
        lua_replace(L, top + i);
      }
      lua_settop(L, top + rc);
      return rc;
    }
    lua_settop(L, k);
  }
  lua_settop(L, top);
  return 0;
}

/* How many entries the table at idx has (the includes of a query). */
static int count_entries(lua_State *L, int idx) {
  int n = 0;
  lua_pushnil(L);
  while (lua_next(L, idx) != 0) { lua_pop(L, 1); n++; }
  return n;
}

/*
** The options of a find checked against each other, and the fields the
** includes link by, read even when attributes leave them out: an int[]
** userdata pushed, *nlink of them.
*/
static int *find_links(lua_State *L, jn_Model *m, int optsidx, int *nlink, const char *ctx) {
  int *link;
  int hasgroup = jn_optfield(L, optsidx, "group") != LUA_TNIL;
  int hasinc = jn_optfield(L, optsidx, "include") != LUA_TNIL;
  lua_pop(L, 2);
  if (hasgroup && hasinc)
    luaL_error(L, "%s: bad option 'include' (a query that groups reads no rows to attach "
               "associations to)", ctx);
  link = (int *)lua_newuserdata(L, (size_t)m->nfields * sizeof(int));
  *nlink = 0;
  if (jn_optfield(L, optsidx, "include") == LUA_TTABLE)
    include_keycols(L, m, lua_gettop(L), link, nlink, ctx);
  lua_pop(L, 1);
  return link;
}

/* Start the bind list of a find (pushed, with the include table when
** there is one): it takes expressions, association columns, a group. */
static void find_select(lua_State *L, int optsidx, jn_Select *s) {
  jn_select_init(L, s);
  s->sub = include_sub;
  s->exprs = 1;
  if (jn_optfield(L, optsidx, "include") == LUA_TTABLE) s->inc_idx = lua_gettop(L);
  else lua_pop(L, 1);
  s->exact = jn_optfield(L, optsidx, "group") != LUA_TNIL;
  lua_pop(L, 1);
}

/* Append the WHERE of a find: its where, and the EXISTS of its required
** includes.  Returns the stack index of the include table (left pushed),
** or 0. */
static int find_where(lua_State *L, jn_Model *m, int optsidx, jn_Buf *b, jn_Select *s,
                      const char *ctx) {
  int haswhere = 0, incidx = 0;
  if (!lua_istable(L, optsidx)) return 0;
  jn_optfield(L, optsidx, "where");
  if (!lua_isnil(L, -1)) {
    jn_buf_adds(L, b, " WHERE ");
    jn_where_compile(L, m, lua_gettop(L), NULL, b, s, ctx);
    haswhere = 1;
  }
  lua_pop(L, 1);
  jn_optfield(L, optsidx, "include");
  if (!lua_isnil(L, -1)) {
    incidx = lua_gettop(L);
    jn_include_required(L, m, incidx, b, s, &haswhere, ctx);
  } else {
    lua_pop(L, 1);
  }
  return incidx;
}

/* Append GROUP BY, HAVING, ORDER BY, LIMIT, OFFSET; findOne (one) takes
** the order and offset given, then LIMIT 1. */
static void find_tail(lua_State *L, jn_Model *m, int optsidx, int one, jn_Buf *b, jn_Select *s,
                      const char *ctx) {
  jn_query_group(L, m, optsidx, b, s, ctx);
  if (!one) {
    jn_query_tail(L, m, optsidx, NULL, b, s, ctx);
    return;
  }
  lua_newtable(L);
  if (lua_istable(L, optsidx)) {
    jn_optfield(L, optsidx, "order");
    lua_setfield(L, -2, "order");
    jn_optfield(L, optsidx, "offset");
    lua_setfield(L, -2, "offset");
  }
  lua_pushinteger(L, 1);
  lua_setfield(L, -2, "limit");
  jn_query_tail(L, m, lua_gettop(L), NULL, b, s, ctx);
  lua_pop(L, 1);
}

/*
** Model:findAll / findOne (one = 1) with the options at optsidx: the query
** compiled by jn_where.c and jn_query.c, then its includes loaded.  It
** lives here, above them, because a find runs eager loading.  Pushes the
** array (or the instance or nil) and returns 1, or returns the fail triple.
*/
/* The position of the { all = true } entry of the include list at inc, or
** 0; the entry takes no other option. */
static int all_entry(lua_State *L, int inc, const char *ctx) {
  int i, n = (int)lua_rawlen(L, inc), all = 0;
  for (i = 1; i <= n && !all; i++) {
    int e;
    lua_rawgeti(L, inc, i);
    e = lua_gettop(L);
    if (lua_istable(L, e) && jn_optfield(L, e, "all") != LUA_TNIL) {
      if (lua_type(L, e + 1) != LUA_TBOOLEAN || !lua_toboolean(L, e + 1))
        luaL_error(L, "%s: bad include %d (all = true expected)", ctx, i);
      lua_pushnil(L);
      while (lua_next(L, e) != 0) {
        lua_pop(L, 1);
        if (lua_type(L, -1) != LUA_TSTRING || strcmp(lua_tostring(L, -1), "all") != 0)
          luaL_error(L, "%s: bad include %d ({ all = true } takes no other option, got '%s')", ctx, i,
                     jn_value_name(L, -1));
      }
      all = i;
    }
    lua_settop(L, e - 1);
  }
  return all;
}

/* Push the include list at inc with its entry at position all replaced by
** the aliases of every association of m that no other entry names. */
static void all_list(lua_State *L, jn_Model *m, int inc, int all, const char *ctx) {
  int out, seen;
  lua_newtable(L);                    /* out: the include list */
  out = lua_gettop(L);
  lua_newtable(L);                    /* seen: association -> true */
  seen = lua_gettop(L);
  lua_pushnil(L);
  while (lua_next(L, inc) != 0) {     /* the other entries, kept */
    int k = lua_gettop(L) - 1;
    if (!(lua_type(L, k) == LUA_TNUMBER && lua_tointeger(L, k) == all)) {
      const char *alias;
      push_entry_assoc(L, m, k, k + 1, &alias, ctx);
      if (!lua_isnil(L, -1)) { lua_pushboolean(L, 1); lua_rawset(L, seen); } else lua_pop(L, 1);
      if (lua_type(L, k) == LUA_TNUMBER) lua_pushinteger(L, (lua_Integer)lua_rawlen(L, out) + 1);
      else lua_pushvalue(L, k);
      lua_pushvalue(L, k + 1);
      lua_rawset(L, out);
    }
    lua_settop(L, k);
  }
  jn_schema_lookup(L, m);             /* every association of m not named yet */
  lua_pushnil(L);
  while (lua_next(L, -2) != 0) {
    jn_Assoc *a = (jn_Assoc *)luaL_testudata(L, -1, JN_ASSOC_MT);
    if (a != NULL && a->source == m && lua_type(L, -2) == LUA_TSTRING &&
        strcmp(lua_tostring(L, -2), a->alias) == 0) {
      lua_rawget(L, seen);            /* (pops the association) */
      if (lua_isnil(L, -1)) {
        lua_pushstring(L, a->alias);
        lua_rawseti(L, out, (int)lua_rawlen(L, out) + 1);
      }
    }
    lua_pop(L, 1);
  }
  lua_settop(L, out);
}

/*
** Sequelize's include = { { all = true } }: when the include list of the
** options at optsidx has that entry, push a copy of the options whose include
** names every association of m in its place (the other entries kept as they
** are, an association they name not named twice) and return its index; else
** return optsidx.  [-0, +(0|1), e]
*/
static int include_all(lua_State *L, jn_Model *m, int optsidx, const char *ctx) {
  int inc, all, top = lua_gettop(L);
  if (!lua_istable(L, optsidx) || jn_optfield(L, optsidx, "include") != LUA_TTABLE) {
    lua_settop(L, top);
    return optsidx;
  }
  inc = lua_gettop(L);
  all = all_entry(L, inc, ctx);
  if (!all) { lua_settop(L, top); return optsidx; }
  all_list(L, m, inc, all, ctx);      /* inc + 1 */
  lua_newtable(L);                    /* the options, copied, with that include */
  lua_pushnil(L);
  while (lua_next(L, optsidx) != 0) {
    lua_pushvalue(L, -2);
    lua_insert(L, -2);
    lua_rawset(L, -4);
  }
  lua_pushvalue(L, inc + 1);
  lua_setfield(L, -2, "include");
  lua_replace(L, inc);                /* the copy where the include was */
  lua_settop(L, inc);
  return inc;
}

int jn_include_find(lua_State *L, jn_Model *m, int modelidx, int optsidx, int one,
                    const char *ctx) {
  jn_Buf b;
  jn_Select s;
  jn_St *st;
  int rc, incidx, res, nlink, *link;
  if (optsidx < 0) optsidx = lua_gettop(L) + optsidx + 1;
  jn_conn_checkopts(L, optsidx, find_opts, ctx);
  optsidx = include_all(L, m, optsidx, ctx);
  link = find_links(L, m, optsidx, &nlink, ctx);
  find_select(L, optsidx, &s);
  jn_buf_init(L, &b);
  jn_buf_adds(L, &b, "SELECT ");
  jn_query_columns(L, m, optsidx, link, nlink, NULL, &b, &s, ctx);
  jn_buf_adds(L, &b, " FROM ");
  jn_buf_adds(L, &b, m->qtable);
  incidx = find_where(L, m, optsidx, &b, &s, ctx);
  find_tail(L, m, optsidx, one, &b, &s, ctx);
  st = jn_stmt_cached(L, m->conn, b.p, b.n, &rc);
  if (st == NULL) return jn_error_result(L, m->conn, rc, NULL);
  jn_select_bindlist(L, m->conn, st, &s);
  res = jn_query_found(L, m, modelidx, st, &s, incidx ? count_entries(L, incidx) : 0);
  if (res != 1) return res;
  if (incidx && (res = jn_include_load(L, m, lua_gettop(L), incidx, ctx)) != 0) return res;
  if (one) lua_rawgeti(L, -1, 1);
  return 1;
}

/* }====== */

