/*
** jn_query.c: the rest of the query compiler and the reading of rows.
** `order`, `limit`, `offset`, `attributes` and `group`/`having` become SQL
** text in a jn_Buf plus values to bind (jn_Select); the where table is
** jn_where.c's, the fragments jn_frag.c's.  jn_query_rows and
** jn_query_found turn the rows of a statement into instances.  It compiles
** and reads; the finds that also run eager loading are jn_include_find,
** one layer up.
*/
#include "jn.h"

/* {====== order, limit, offset, attributes */

/*
** Read a direction: "ASC", "DESC", either followed by "NULLS FIRST" or
** "NULLS LAST", or only the NULLS part (any case).  *dir: 0 none, 1 ASC,
** 2 DESC; *nulls: 0 none, 1 FIRST, 2 LAST.  Returns 0 for anything else.
*/
static int parse_dir(const char *s, int *dir, int *nulls) {
  char w[4][8];
  int n = 0, i = 0;
  while (*s) {
    size_t k = 0;
    while (*s == ' ') s++;
    if (!*s) break;
    if (n == 4) return 0;
    while (*s && *s != ' ') { if (k < 7) w[n][k] = *s; k++; s++; }
    if (k > 7) return 0;
    w[n++][k] = '\0';
  }
  if (i < n && jn_stricmp(w[i], "asc") == 0) { if (*dir) return 0; *dir = 1; i++; }
  else if (i < n && jn_stricmp(w[i], "desc") == 0) { if (*dir) return 0; *dir = 2; i++; }
  if (i < n && jn_stricmp(w[i], "nulls") == 0 && i + 1 < n && !*nulls) {
    if (jn_stricmp(w[i + 1], "first") == 0) *nulls = 1;
    else if (jn_stricmp(w[i + 1], "last") == 0) *nulls = 2;
    else return 0;
    i += 2;
  }
  return n > 0 && i == n;
}

/* Is the value at idx a direction string? */
static int is_dir(lua_State *L, int idx) {
  int d = 0, nl = 0;
  return lua_type(L, idx) == LUA_TSTRING && parse_dir(lua_tostring(L, idx), &d, &nl);
}

/* What an order term sorts by. */
typedef struct jn_Term {
  int f;                    /* a field of m, or -1 */
  int frag;                 /* stack index of a fragment, or 0 */
  const char *alias;        /* an attribute's alias, or NULL */
  const char *assoc;        /* an association's alias (alen bytes) and its field, or NULL */
  size_t alen;
  const char *afield;
  int dir, nulls;
} jn_Term;

/* Append the term's value once: the field, the fragment, the alias, or the
** first (ASC) / last (DESC) value of the association's rows. */
static void term_value(lua_State *L, jn_Model *m, const jn_Term *t, const char *alias, jn_Buf *b,
                       jn_Select *s, const char *ctx) {
  if (t->assoc != NULL) {
    jn_Buf sub;
    jn_Model *tm;
    int f;
    jn_buf_init(L, &sub);   /* the FROM first: the target model, to check its field */
    tm = s->sub(L, m, t->assoc, t->alen, &sub, s, ctx);
    f = jn_schema_fieldname(tm, t->afield);
    if (f < 0) luaL_error(L, "%s: bad order field '%s' (no such field in %s)", ctx, t->afield, tm->name);
    jn_buf_adds(L, b, t->dir == 2 ? "(SELECT max(" : "(SELECT min(");
    jn_buf_addident(L, b, "t", tm->f[f].col);
    jn_buf_adds(L, b, ")");
    jn_buf_addl(L, b, sub.p, sub.n);
    jn_buf_adds(L, b, ")");
    lua_pop(L, 1);
  } else if (t->frag) {
    jn_frag_expr(L, m, alias, t->frag, b, s, ctx, 0);
  } else if (t->alias != NULL) {
    jn_buf_addident(L, b, NULL, t->alias);
  } else if (s->eqf >= 0 && t->f == s->eqf) {   /* the joined column equal to it: same rows, same order */
    jn_buf_addident(L, b, s->eqalias, s->eqcol);
  } else {
    jn_buf_addident(L, b, alias, m->f[t->f].col);
  }
}

/*
** Append one term.  NULLs sort as SQLite sorts them (first ascending, last
** descending) on every engine unless the term says otherwise: PostgreSQL
** is told so for a column that may hold NULL; SQLite gets the order it
** does not do by itself as "(x) IS NULL" first.
*/
static void term_add(lua_State *L, jn_Model *m, const jn_Term *t, const char *alias, jn_Buf *b,
                     jn_Select *s, const char *ctx) {
  int clause = m->conn->dialect->nulls_clause, nulls = t->nulls;
  int nullable = t->f < 0 || !(m->f[t->f].flags & (JN_F_NOTNULL | JN_F_PK));
  static const char *const dirs[] = { "", " ASC", " DESC" };
  if (nulls == 0 && clause && nullable && !(t->frag && jn_frag_kind(L, t->frag) == JN_FRAG_LITERAL))
    nulls = t->dir == 2 ? 2 : 1;
  if (!clause && nulls != 0 && nulls != (t->dir == 2 ? 2 : 1)) {
    jn_buf_adds(L, b, "(");
    term_value(L, m, t, alias, b, s, ctx);
    jn_buf_adds(L, b, nulls == 1 ? ") IS NULL DESC, " : ") IS NULL ASC, ");
  }
  term_value(L, m, t, alias, b, s, ctx);
  jn_buf_adds(L, b, dirs[t->dir]);
  if (clause && nulls != 0) jn_buf_adds(L, b, nulls == 1 ? " NULLS FIRST" : " NULLS LAST");
}

/* Read the direction at idx (nil, or a direction string) into t. */
static void term_dir(lua_State *L, jn_Term *t, int idx, const char *ctx) {
  if (lua_isnil(L, idx)) return;
  if (lua_type(L, idx) != LUA_TSTRING)
    luaL_error(L, "%s: bad order direction (string expected, got %s)", ctx, luaL_typename(L, idx));
  if (!parse_dir(lua_tostring(L, idx), &t->dir, &t->nulls))
    luaL_error(L, "%s: bad order direction '%s' (ASC or DESC, NULLS FIRST or NULLS LAST)", ctx,
               lua_tostring(L, idx));
}

/* Resolve a name in an order term: a field, an attribute's alias, else
** raise.  */
static void term_name(lua_State *L, jn_Model *m, jn_Term *t, const char *name, jn_Select *s,
                      const char *ctx) {
  t->f = jn_schema_fieldname(m, name);
  if (t->f >= 0) return;
  if (jn_select_aliased(L, s, name)) { lua_pop(L, 1); t->alias = name; return; }
  luaL_error(L, "%s: bad order field '%s' (no such field in %s)", ctx, name, m->name);
}

/* A term given as a string: "name", "name DESC", "name ASC NULLS LAST". */
static void order_string(lua_State *L, jn_Model *m, jn_Term *term, int t, const char *alias,
                         jn_Buf *b, jn_Select *s, const char *ctx) {
  char name[80];
  const char *str = lua_tostring(L, t), *sp = strchr(str, ' ');
  size_t n = sp ? (size_t)(sp - str) : strlen(str);
  if (n >= sizeof name) n = sizeof name - 1;
  memcpy(name, str, n);
  name[n] = '\0';
  if (sp && !parse_dir(sp + 1, &term->dir, &term->nulls))
    luaL_error(L, "%s: bad order direction '%s' (ASC or DESC, NULLS FIRST or NULLS LAST)", ctx,
               sp + 1);
  term_name(L, m, term, name, s, ctx);
  if (term->alias != NULL) {   /* the alias: the string up to its space */
    lua_pushlstring(L, str, n);
    term->alias = lua_tostring(L, -1);
    term_add(L, m, term, alias, b, s, ctx);
    lua_pop(L, 1);
    return;
  }
  term_add(L, m, term, alias, b, s, ctx);
}

/*
** A term given as a table: { name or fragment, direction, nulls } or
** { "Genres", "name", direction, nulls }.  Reads the directions into term
** and returns the stack index of the first value, which it pushed (with,
** for an association's field, the field's name above it: term->assoc).
*/
static int order_table(lua_State *L, jn_Model *m, jn_Term *term, int t, const char *alias,
                       jn_Select *s, const char *ctx) {
  int n = (int)lua_rawlen(L, t), d = 2, first;
  if (n < 1 || n > 4) luaL_error(L, "%s: bad order term (a table of 1 to 4 values expected)", ctx);
  lua_rawgeti(L, t, 1);
  lua_rawgeti(L, t, 2);
  first = lua_gettop(L) - 1;
  if (lua_type(L, first) == LUA_TSTRING && jn_schema_fieldname(m, lua_tostring(L, first)) < 0 &&
      lua_type(L, first + 1) == LUA_TSTRING && !is_dir(L, first + 1)) {
    /* { "Genres", "name", ... }: the association's field */
    if (s->sub == NULL || alias != NULL)
      luaL_error(L, "%s: bad order term ('%s' is no field of %s; the order of an association's "
                 "field is taken by findAll, findOne and findByPk)", ctx, lua_tostring(L, first),
                 m->name);
    term->assoc = lua_tolstring(L, first, &term->alen);
    term->afield = lua_tostring(L, first + 1);
    s->sub(L, m, term->assoc, term->alen, NULL, s, ctx);
    d = 3;
  }
  lua_rawgeti(L, t, d);
  term_dir(L, term, lua_gettop(L), ctx);
  lua_rawgeti(L, t, d + 1);
  term_dir(L, term, lua_gettop(L), ctx);
  lua_rawgeti(L, t, d + 2);
  if (!lua_isnil(L, -1)) luaL_error(L, "%s: bad order term (too many values)", ctx);
  lua_pop(L, 3);
  if (term->assoc == NULL) lua_pop(L, 1);   /* the first value stays at first */
  return first;
}

/* What the value at first sorts by: a field or an attribute's alias, a
** junction.col (of the model or of an association), or another fragment. */
static void order_value(lua_State *L, jn_Model *m, jn_Term *term, int first, const char *alias,
                        jn_Select *s, const char *ctx) {
  if (lua_type(L, first) == LUA_TSTRING) {
    term_name(L, m, term, lua_tostring(L, first), s, ctx);
    if (term->alias != NULL) term->alias = lua_tostring(L, first);
  } else if (jn_frag_kind(L, first) == JN_FRAG_COL) {
    const char *assoc, *field;
    term->f = jn_frag_colfield(L, m, first, &assoc, &term->alen, &field, ctx);
    if (term->f == -2) luaL_error(L, "%s: bad order (junction.col(\"*\") is no column)", ctx);
    if (term->f == -1) {
      if (s->sub == NULL || alias != NULL) jn_frag_noassoc(L, assoc, ctx);
      term->assoc = assoc;
      term->afield = field;
      s->sub(L, m, assoc, term->alen, NULL, s, ctx);
    }
  } else if (jn_frag_kind(L, first)) {
    term->frag = first;
  } else {
    luaL_error(L, "%s: bad order (a field name, a table or junction.fn/col/literal expected, got %s)",
               ctx, luaL_typename(L, first));
  }
}

/*
** One order term: "name", "name DESC", "name ASC NULLS LAST", a fragment
** (junction.fn(...), junction.col("Genres.name")), { name or fragment,
** direction, nulls }, or { "Genres", "name", direction, nulls } for a
** field of an association.  Strings it points to stay anchored in t.
*/
static void order_term(lua_State *L, jn_Model *m, int t, const char *alias, jn_Buf *b,
                       jn_Select *s, const char *ctx) {
  jn_Term term;
  int first = t;
  memset(&term, 0, sizeof term);
  term.f = -1;
  if (lua_type(L, t) == LUA_TSTRING) {
    order_string(L, m, &term, t, alias, b, s, ctx);
    return;
  }
  if (lua_istable(L, t) && luaL_testudata(L, t, JN_FRAG_MT) == NULL) {
    first = order_table(L, m, &term, t, alias, s, ctx);
    if (term.assoc != NULL) {
      term_add(L, m, &term, alias, b, s, ctx);
      lua_pop(L, 2);
      return;
    }
  }
  order_value(L, m, &term, first, alias, s, ctx);
  term_add(L, m, &term, alias, b, s, ctx);
  if (first != t) lua_pop(L, 1);
}

/* Append the terms of the order at orderidx (no "ORDER BY"): one term, or
** a list of them. */
void jn_query_order(lua_State *L, jn_Model *m, int o, const char *alias, jn_Buf *b, jn_Select *s,
                    const char *ctx) {
  if (lua_istable(L, o)) {
    int i, n = (int)lua_rawlen(L, o);
    /* { "name", "DESC" [, "NULLS LAST"] } is one term; anything else is a list of terms */
    lua_rawgeti(L, o, 2);
    if ((n == 2 || n == 3) && is_dir(L, -1)) {
      lua_pop(L, 1);
      order_term(L, m, o, alias, b, s, ctx);
    } else {
      lua_pop(L, 1);
      if (n == 0) luaL_error(L, "%s: bad order (empty)", ctx);
      for (i = 1; i <= n; i++) {
        lua_rawgeti(L, o, i);
        if (i > 1) jn_buf_adds(L, b, ", ");
        order_term(L, m, lua_gettop(L), alias, b, s, ctx);
        lua_pop(L, 1);
      }
    }
  } else {
    order_term(L, m, o, alias, b, s, ctx);
  }
}

/* Append ORDER BY, LIMIT and OFFSET from the options table at optsidx. */
void jn_query_tail(lua_State *L, jn_Model *m, int optsidx, const char *alias, jn_Buf *b,
                   jn_Select *s, const char *ctx) {
  int has_limit = 0;
  if (!lua_istable(L, optsidx)) return;
  jn_optfield(L, optsidx, "order");
  if (!lua_isnil(L, -1)) {
    jn_buf_adds(L, b, " ORDER BY ");
    jn_query_order(L, m, lua_gettop(L), alias, b, s, ctx);
  }
  lua_pop(L, 1);
  jn_optfield(L, optsidx, "limit");
  if (!lua_isnil(L, -1)) {
    if (!lua_isinteger(L, -1) || lua_tonumber(L, -1) < 0)
      luaL_error(L, "%s: bad option 'limit' (non-negative integer expected)", ctx);
    jn_buf_adds(L, b, " LIMIT ?");
    jn_select_bind(L, s, -1);
    has_limit = 1;
  }
  lua_pop(L, 1);
  jn_optfield(L, optsidx, "offset");
  if (!lua_isnil(L, -1)) {
    if (!lua_isinteger(L, -1) || lua_tonumber(L, -1) < 0)
      luaL_error(L, "%s: bad option 'offset' (non-negative integer expected)", ctx);
    if (!has_limit) jn_buf_adds(L, b, m->conn->dialect->offset_only);
    jn_buf_adds(L, b, " OFFSET ?");
    jn_select_bind(L, s, -1);
  }
  lua_pop(L, 1);
}

/* One element of attributes, read: where its value comes from and where
** it goes. */
typedef struct jn_Attr {
  int src;                  /* the field read, or -1 for an expression */
  int frag;                 /* stack index of the expression (junction.fn/literal), or 0 */
  int tgt;                  /* the field it fills, or -1: read by its alias */
  const char *name;         /* the alias, or NULL */
} jn_Attr;

/*
** Read the attribute at idx: a field name, a junction.col of the model, or
** { expression, "alias" } where expression is either of those or a
** junction.fn or literal.  An alias that is a field fills that field;
** another alias names a value read alongside the fields.  Raises for
** anything else.  Pushes the expression (or nil).  [-0, +1, e]
*/
static void attr_read(lua_State *L, jn_Model *m, int idx, const jn_Select *s, jn_Attr *at,
                      const char *ctx) {
  int e, k;
  at->src = at->tgt = -1;
  at->frag = 0;
  at->name = NULL;
  if (lua_istable(L, idx)) {
    if (!s->exprs)
      luaL_error(L, "%s: bad attribute (an expression with an alias is taken by findAll, findOne "
                 "and findByPk only)", ctx);
    if (lua_rawlen(L, idx) != 2)
      luaL_error(L, "%s: bad attribute (a field name, or { expression, \"alias\" } expected)", ctx);
    lua_rawgeti(L, idx, 2);
    if (lua_type(L, -1) != LUA_TSTRING || lua_rawlen(L, -1) == 0)
      luaL_error(L, "%s: bad attribute alias (a name expected, got %s)", ctx, luaL_typename(L, -1));
    at->name = lua_tostring(L, -1);   /* anchored in the attribute's table */
    lua_pop(L, 1);
    lua_rawgeti(L, idx, 1);
  } else {
    lua_pushvalue(L, idx);
  }
  e = lua_gettop(L);
  if (lua_type(L, e) == LUA_TSTRING) {
    at->src = jn_schema_field(L, m, e);
    if (at->src < 0)
      luaL_error(L, "%s: bad attribute '%s' (no such field in %s)", ctx, lua_tostring(L, e), m->name);
  } else if ((k = jn_frag_kind(L, e)) == JN_FRAG_COL) {
    const char *assoc, *field;
    size_t alen;
    at->src = jn_frag_colfield(L, m, e, &assoc, &alen, &field, ctx);
    if (at->src == -1) jn_frag_noassoc(L, assoc, ctx);
    if (at->src == -2) luaL_error(L, "%s: bad attribute (junction.col(\"*\") is no column)", ctx);
  } else if (k != 0) {
    if (at->name == NULL)
      luaL_error(L, "%s: bad attribute (a junction.%s needs an alias: { junction.%s(...), \"name\" })",
                 ctx, jn_frag_kindname(k), jn_frag_kindname(k));
    at->frag = e;
  } else {
    luaL_error(L, "%s: bad attribute (a field name, or { expression, \"alias\" } expected, got %s)",
               ctx, luaL_typename(L, e));
  }
  at->tgt = at->src;
  if (at->name != NULL) {
    int t;
    jn_schema_lookup(L, m);
    lua_pushstring(L, at->name);
    lua_rawget(L, -2);
    t = lua_type(L, -1);
    if (t == LUA_TNUMBER) at->tgt = (int)lua_tointeger(L, -1) - 1;
    else if (t == LUA_TNIL) at->tgt = -1;
    else luaL_error(L, "%s: bad attribute alias '%s' (a method or an association of %s)", ctx,
                    at->name, m->name);
    lua_pop(L, 2);
  }
}

/* Append the attribute's column or expression. */
static void attr_sql(lua_State *L, jn_Model *m, const jn_Attr *at, const char *alias, jn_Buf *b,
                     jn_Select *s, const char *ctx) {
  if (at->frag) jn_frag_expr(L, m, alias, at->frag, b, s, ctx, 0);
  else jn_buf_addident(L, b, alias, m->f[at->src].col);
  if (at->name != NULL) {
    jn_buf_adds(L, b, " AS ");
    jn_buf_addident(L, b, NULL, at->name);
  }
}

/*
** After the k columns of the attributes that fill fields (s->cols), append
** the key (unless haspk) and the keys the caller's includes link by, when
** not among them.  Returns the new count of columns.
*/
static int columns_keys(lua_State *L, jn_Model *m, int haspk, const int *link, int nlink,
                        const char *alias, jn_Buf *b, jn_Select *s, int k) {
  int i, j;
  if (!haspk) {
    if (k) jn_buf_adds(L, b, ", ");
    jn_buf_addident(L, b, alias, m->f[m->pk].col);
    s->cols[k++] = m->pk;
  }
  for (j = 0; j < nlink; j++) {   /* the keys the caller's includes link by */
    for (i = 0; i < k && s->cols[i] != link[j]; i++) {}
    if (i == k) {
      jn_buf_adds(L, b, ", ");
      jn_buf_addident(L, b, alias, m->f[link[j]].col);
      s->cols[k++] = link[j];
    }
  }
  return k;
}

/*
** After the k field columns, append the n attributes at a that are read by
** their alias; their names and types go to a new table (s->extra_idx,
** pushed): names[i] and types[-i].  Returns how many there are.
*/
static int columns_aliased(lua_State *L, jn_Model *m, int a, int n, int k, const char *alias,
                           jn_Buf *b, jn_Select *s, const char *ctx) {
  int i, ne = 0, names;
  jn_Attr at;
  lua_newtable(L);
  names = lua_gettop(L);
  for (i = 1; i <= n; i++) {
    lua_rawgeti(L, a, i);
    attr_read(L, m, lua_gettop(L), s, &at, ctx);
    if (at.tgt < 0) {
      if (k + ne) jn_buf_adds(L, b, ", ");
      attr_sql(L, m, &at, alias, b, s, ctx);
      lua_pushstring(L, at.name);
      lua_rawseti(L, names, ++ne);
      lua_pushinteger(L, at.src >= 0 ? m->f[at.src].type : JN_T_ANY);
      lua_rawseti(L, names, -ne);
    }
    lua_pop(L, 2);
  }
  s->extra_idx = names;
  return ne;
}

/*
** Append the columns of opts.attributes: first those that fill fields
** (recorded in s->cols), then the key and the keys the caller's includes
** link by, unless the query groups or aggregates (s->exact), then the
** values read by their alias (names and types in s->extra_idx).
*/
static void columns_given(lua_State *L, jn_Model *m, int a, const int *link, int nlink,
                          const char *alias, jn_Buf *b, jn_Select *s, const char *ctx) {
  int i, n, k = 0, haspk = 0, agg = 0, ne;
  jn_Attr at;
  if (!lua_istable(L, a))
    luaL_error(L, "%s: bad option 'attributes' (array of field names expected)", ctx);
  n = (int)lua_rawlen(L, a);
  s->cols = (int *)lua_newuserdata(L, (size_t)(n + 1 + m->nfields) * sizeof(int));
  s->cols_idx = lua_gettop(L);
  for (i = 1; i <= n; i++) {   /* the fields */
    lua_rawgeti(L, a, i);
    attr_read(L, m, lua_gettop(L), s, &at, ctx);
    if (at.frag && jn_frag_aggregate(L, at.frag, 0)) agg = 1;
    if (at.tgt >= 0) {
      if (k) jn_buf_adds(L, b, ", ");
      attr_sql(L, m, &at, alias, b, s, ctx);
      if (at.tgt == m->pk) haspk = 1;
      s->cols[k++] = at.tgt;
    }
    lua_pop(L, 2);
  }
  if (s->exact || agg) {
    s->exact = 1;
    if (nlink > 0)
      luaL_error(L, "%s: bad option 'include' (a query that groups or aggregates reads no rows to "
                 "attach associations to)", ctx);
  } else {
    k = columns_keys(L, m, haspk, link, nlink, alias, b, s, k);
  }
  s->ncols = k;
  ne = columns_aliased(L, m, a, n, k, alias, b, s, ctx);
  if (k + ne == 0) luaL_error(L, "%s: bad option 'attributes' (empty)", ctx);
  s->nextra = ne;
  s->attrs_idx = a;
}

/*
** Append the selected columns (opts.attributes, the key always among them
** unless the query groups or aggregates; every field without) and record
** which field each one fills in s->cols.
*/
void jn_query_columns(lua_State *L, jn_Model *m, int optsidx, const int *link, int nlink,
                      const char *alias, jn_Buf *b, jn_Select *s, const char *ctx) {
  int i;
  if (lua_istable(L, optsidx)) {
    jn_optfield(L, optsidx, "attributes");
    if (!lua_isnil(L, -1)) {
      columns_given(L, m, lua_gettop(L), link, nlink, alias, b, s, ctx);
      return;
    }
    lua_pop(L, 1);
  }
  s->cols = NULL;
  s->ncols = m->nfields;
  if (alias == NULL) {
    jn_buf_adds(L, b, m->cols);
  } else {
    for (i = 0; i < m->nfields; i++) {
      if (i) jn_buf_adds(L, b, ", ");
      jn_buf_addident(L, b, alias, m->f[i].col);
    }
  }
}

/* One group term: a field, an attribute's alias, or a fragment. */
static void group_term(lua_State *L, jn_Model *m, int t, jn_Buf *b, jn_Select *s, const char *ctx) {
  if (lua_type(L, t) == LUA_TSTRING) {
    const char *name = lua_tostring(L, t);
    int f = jn_schema_fieldname(m, name);
    if (f >= 0) jn_buf_addident(L, b, NULL, m->f[f].col);
    else if (jn_select_aliased(L, s, name)) { lua_pop(L, 1); jn_buf_addident(L, b, NULL, name); }
    else luaL_error(L, "%s: bad group field '%s' (no such field in %s)", ctx, name, m->name);
  } else if (jn_frag_kind(L, t)) {
    jn_frag_expr(L, m, NULL, t, b, s, ctx, 0);
  } else {
    luaL_error(L, "%s: bad option 'group' (a field name, junction.fn/col/literal or a list of them "
               "expected, got %s)", ctx, luaL_typename(L, t));
  }
}

/* Append GROUP BY and HAVING from the options table at optsidx. */
void jn_query_group(lua_State *L, jn_Model *m, int optsidx, jn_Buf *b, jn_Select *s,
                    const char *ctx) {
  int g;
  if (!lua_istable(L, optsidx)) return;
  jn_optfield(L, optsidx, "group");
  g = lua_gettop(L);
  if (!lua_isnil(L, g)) {
    jn_buf_adds(L, b, " GROUP BY ");
    if (lua_istable(L, g) && luaL_testudata(L, g, JN_FRAG_MT) == NULL) {
      int i, n = (int)lua_rawlen(L, g);
      if (n == 0 || jn_where_shape(L, g) != 1)
        luaL_error(L, "%s: bad option 'group' (a non-empty list expected)", ctx);
      for (i = 1; i <= n; i++) {
        lua_rawgeti(L, g, i);
        if (i > 1) jn_buf_adds(L, b, ", ");
        group_term(L, m, lua_gettop(L), b, s, ctx);
        lua_pop(L, 1);
      }
    } else {
      group_term(L, m, g, b, s, ctx);
    }
  }
  jn_optfield(L, optsidx, "having");
  if (!lua_isnil(L, -1)) {
    if (lua_isnil(L, g))
      luaL_error(L, "%s: bad option 'having' (it filters groups: give 'group' too)", ctx);
    jn_buf_adds(L, b, " HAVING ");
    jn_where_having(L, m, lua_gettop(L), b, s, ctx);
  }
  lua_pop(L, 2);
}

/* }====== */

/* {====== Running */

/*
** Step st to the end, pushing an array of instances.  Returns 1, or the
** fail triple's 3.
*/
int jn_query_rows(lua_State *L, jn_Model *m, int modelidx, jn_St *st, const int *cols,
                  int ncols, int nrec) {
  int rc, n = 0, mt, arr;
  jn_Conn *c = m->conn;
  luaL_getmetatable(L, JN_INST_MT);
  mt = lua_gettop(L);
  jn_inst_newlist(L, 0);
  arr = lua_gettop(L);
  while ((rc = jn_conn_step(L, c, st)) == SQLITE_ROW) {
    jn_inst_fromrow(L, m, modelidx, mt, st, cols, ncols, 0, nrec);
    lua_rawseti(L, arr, ++n);
  }
  lua_remove(L, mt);
  return jn_error_finish(L, c, st, rc, SQLITE_DONE);
}

/*
** The first row of st (every field of m) as an instance, or nil when it has
** none; st is reset after it (a key's find: no list to make and read back).
** mt: the index of the instance metatable.  Returns 1, or the fail triple's 3.
*/
int jn_query_one(lua_State *L, jn_Model *m, int modelidx, int mt, jn_St *st) {
  jn_Conn *c = m->conn;
  int rc = jn_conn_step(L, c, st);
  if (rc == SQLITE_ROW) {
    jn_inst_fromrow(L, m, modelidx, mt, st, NULL, m->nfields, 0, 0);
    rc = SQLITE_DONE;
  } else if (rc == SQLITE_DONE) {
    lua_pushnil(L);
  }
  return jn_error_finish(L, c, st, rc, SQLITE_DONE);
}

/*
** jn_query_rows for a find whose columns s describes: the fields, then the
** values read by their alias, set on each instance by that name (readable
** as inst.n, and in toTable).  Returns 1, or the fail triple's count.
*/
int jn_query_found(lua_State *L, jn_Model *m, int modelidx, jn_St *st, const jn_Select *s,
                   int nrec) {
  int rc, n = 0, mt, arr, k;
  jn_Conn *c = m->conn;
  if (s->nextra == 0) return jn_query_rows(L, m, modelidx, st, s->cols, s->ncols, nrec);
  luaL_getmetatable(L, JN_INST_MT);
  mt = lua_gettop(L);
  jn_inst_newlist(L, 0);
  arr = lua_gettop(L);
  while ((rc = jn_conn_step(L, c, st)) == SQLITE_ROW) {
    jn_inst_fromrow(L, m, modelidx, mt, st, s->cols, s->ncols, 0, nrec + s->nextra);
    jn_inst_extras(L, -1, 1);
    for (k = 1; k <= s->nextra; k++) {
      int type;
      lua_rawgeti(L, s->extra_idx, -k);
      type = (int)lua_tointeger(L, -1);
      lua_pop(L, 1);
      lua_rawgeti(L, s->extra_idx, k);
      jn_stmt_pushcolumn(L, c->eng, st, s->ncols + k - 1, type);
      lua_rawset(L, -3);
    }
    lua_pop(L, 1);
    lua_rawseti(L, arr, ++n);
  }
  lua_remove(L, mt);
  return jn_error_finish(L, c, st, rc, SQLITE_DONE);
}

/* }====== */
