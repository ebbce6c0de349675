/*
** jn_frag.c: junction.literal, junction.fn and junction.col, the
** fragments a query may hold in place of a name or a value, and their SQL
** (jn_frag_expr: alias."col" for a column, "?" for each value, bound in
** text order).  The where compiler and jn_query.c read them.
*/
#include "jn.h"

static const char *const frag_kinds[] = { "", "literal", "fn", "col" };

/* The name of fragment kind k (JN_FRAG_*): "literal", "fn" or "col". */
const char *jn_frag_kindname(int k) {
  return k > 0 && k <= JN_FRAG_COL ? frag_kinds[k] : "";
}

/* Is s (n bytes) a SQL identifier of letters, digits and _, not starting
** with a digit? */
static int is_ident(const char *s, size_t n) {
  size_t i;
  if (n == 0 || n > 63 || (s[0] >= '0' && s[0] <= '9')) return 0;
  for (i = 0; i < n; i++) {
    char ch = s[i];
    if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
          ch == '_'))
      return 0;
  }
  return 1;
}

/* The fragment at idx, or NULL; *kind gets its JN_FRAG_*. */
int jn_frag_kind(lua_State *L, int idx) {
  int k;
  if (luaL_testudata(L, idx, JN_FRAG_MT) == NULL) return 0;
  lua_getuservalue(L, idx);
  lua_getfield(L, -1, "kind");
  k = (int)lua_tointeger(L, -1);
  lua_pop(L, 2);
  return k;
}

/* Push the fragment's uservalue, its name and its count of arguments. */
int jn_frag_parts(lua_State *L, int idx, const char **name, size_t *len) {
  int n;
  lua_getuservalue(L, idx);
  lua_getfield(L, -1, "name");
  *name = lua_tolstring(L, -1, len);   /* anchored in the uservalue */
  lua_pop(L, 1);
  lua_getfield(L, -1, "n");
  n = (int)lua_tointeger(L, -1);
  lua_pop(L, 1);
  return n;
}

/* A bound value an argument of fn or literal may be: nil (junction.null),
** a boolean, a number or a string.  Raises otherwise. */
static void check_fragvalue(lua_State *L, int idx, const char *what, int argn) {
  int t = lua_type(L, idx);
  if (t == LUA_TNUMBER || t == LUA_TSTRING || t == LUA_TBOOLEAN || jn_scalar_isnull(L, idx)) return;
  if (t == LUA_TNONE || t == LUA_TNIL)
    luaL_error(L, "%s: bad argument #%d (nil: a SQL NULL is junction.null)", what, argn);
  luaL_error(L, "%s: bad argument #%d (a value to bind, junction.col, junction.fn or "
             "junction.literal expected, got %s)", what, argn, luaL_typename(L, idx));
}

/* Push a new fragment of kind, named by the string at nameidx, with the
** values first..last. */
static void new_frag(lua_State *L, int kind, int nameidx, int first, int last) {
  int i, n = last >= first ? last - first + 1 : 0;
  lua_newuserdata(L, 1);
  luaL_setmetatable(L, JN_FRAG_MT);
  lua_createtable(L, n, 3);
  lua_pushinteger(L, kind);
  lua_setfield(L, -2, "kind");
  lua_pushvalue(L, nameidx);
  lua_setfield(L, -2, "name");
  lua_pushinteger(L, n);
  lua_setfield(L, -2, "n");
  for (i = 0; i < n; i++) {
    lua_pushvalue(L, first + i);
    lua_rawseti(L, -2, i + 1);
  }
  lua_setuservalue(L, -2);
}

/* The number of ? placeholders in SQL text, outside quotes. */
static int count_params(const char *s, size_t n) {
  size_t i;
  int k = 0;
  char q = 0;
  for (i = 0; i < n; i++) {
    if (q) { if (s[i] == q) q = 0; }
    else if (s[i] == '\'' || s[i] == '"') q = s[i];
    else if (s[i] == '?') k++;
  }
  return k;
}

/*** SQL text put into a query as it is: the one escape hatch of the query
compiler.  Each ? in it (outside quotes) is bound to the next value given.
@function junction.literal
@tparam string sql
*/
static int frag_literal(lua_State *L) {
  size_t n;
  const char *text;
  int i, top = lua_gettop(L), want;
  if (lua_type(L, 1) != LUA_TSTRING)
    luaL_error(L, "junction.literal: bad argument #1 (SQL text expected, got %s)", luaL_typename(L, 1));
  text = lua_tolstring(L, 1, &n);
  if (strlen(text) != n) luaL_error(L, "junction.literal: bad argument #1 (a NUL byte in SQL text)");
  for (i = 2; i <= top; i++) check_fragvalue(L, i, "junction.literal", i);
  want = count_params(text, n);
  if (want != top - 1)
    luaL_error(L, "junction.literal: bad arguments (the text has %d ? placeholder%s, %d value%s given)",
               want, want == 1 ? "" : "s", top - 1, top == 2 ? "" : "s");
  new_frag(L, JN_FRAG_LITERAL, 1, 2, top);
  return 1;
}

/*** A SQL function call: its name is checked as an identifier, its
arguments are bound values, junction.col, or nested fragments.
@function junction.fn
@tparam string name
*/
static int frag_fn(lua_State *L) {
  size_t n;
  const char *name;
  int i, top = lua_gettop(L);
  if (lua_type(L, 1) != LUA_TSTRING)
    luaL_error(L, "junction.fn: bad argument #1 (function name expected, got %s)", luaL_typename(L, 1));
  name = lua_tolstring(L, 1, &n);
  if (!is_ident(name, n))
    luaL_error(L, "junction.fn: bad argument #1 ('%s' is not a function name: letters, digits and _)",
               name);
  for (i = 2; i <= top; i++)
    if (luaL_testudata(L, i, JN_FRAG_MT) == NULL) check_fragvalue(L, i, "junction.fn", i);
  new_frag(L, JN_FRAG_FN, 1, 2, top);
  return 1;
}

/*** A column: a field of the model ("name"), "*", or a field of an
association ("Genres.name") in a find's where and order.
@function junction.col
@tparam string name
*/
static int frag_col(lua_State *L) {
  size_t n;
  const char *name, *dot;
  if (lua_type(L, 1) != LUA_TSTRING)
    luaL_error(L, "junction.col: bad argument #1 (column name expected, got %s)", luaL_typename(L, 1));
  if (lua_gettop(L) > 1) luaL_error(L, "junction.col: bad argument #2 (one name expected)");
  name = lua_tolstring(L, 1, &n);
  dot = strchr(name, '.');
  if (n == 0 || strlen(name) != n || dot == name || (dot && (dot[1] == '\0' || strchr(dot + 1, '.'))))
    luaL_error(L, "junction.col: bad argument #1 ('%s': a field name, or Association.field)", name);
  new_frag(L, JN_FRAG_COL, 1, 2, 1);
  return 1;
}

/* junction.fn("lower", ...) */
static int frag_tostring(lua_State *L) {
  const char *name;
  size_t len;
  int k = jn_frag_kind(L, 1);
  if (k == 0) return luaL_error(L, "junction.Fragment: bad self");
  jn_frag_parts(L, 1, &name, &len);
  lua_pushfstring(L, "junction.%s(\"%s\"%s)", frag_kinds[k], name,
                  k == JN_FRAG_COL ? "" : ", ...");
  return 1;
}

/* Bind the value at idx of a fragment (junction.null as NULL, a boolean
** as 0/1) and append "?". */
static void frag_bind(lua_State *L, jn_Buf *b, jn_Select *s, int idx) {
  if (jn_scalar_isnull(L, idx)) lua_pushnil(L);
  else if (lua_isboolean(L, idx)) lua_pushinteger(L, lua_toboolean(L, idx));
  else lua_pushvalue(L, idx);
  lua_rawseti(L, s->binds_idx, ++s->nbind);
  jn_buf_adds(L, b, "?");
}

/*
** For the col fragment at idx: its field of m (>= 0), -2 for "*", or -1
** for an association's column, whose alias (*alen bytes) and field name go
** to *assoc and *field.  Raises for a name that is no field of m.
*/
int jn_frag_colfield(lua_State *L, jn_Model *m, int idx, const char **assoc, size_t *alen,
                         const char **field, const char *ctx) {
  const char *name, *dot;
  size_t len;
  int f;
  jn_frag_parts(L, idx, &name, &len);
  lua_pop(L, 1);   /* name stays anchored in the fragment's uservalue */
  dot = strchr(name, '.');
  *assoc = NULL;
  *field = name;
  if (strcmp(name, "*") == 0) return -2;
  if (dot != NULL) {
    size_t n = (size_t)(dot - name);
    if ((strlen(m->name) == n && strncmp(m->name, name, n) == 0) ||
        (strlen(m->table) == n && strncmp(m->table, name, n) == 0)) {
      name = dot + 1;   /* "Post.title" on Post: its own field */
    } else {
      *assoc = name;
      *alen = n;
      *field = dot + 1;
      return -1;
    }
  }
  f = jn_schema_fieldname(m, name);
  if (f < 0) luaL_error(L, "%s: bad column '%s' (no such field in %s)", ctx, name, m->name);
  return f;
}

/* Raise: an association's column where only a column of the model goes. */
void jn_frag_noassoc(lua_State *L, const char *name, const char *ctx) {
  luaL_error(L, "%s: bad column '%s' (a column of an association is taken in the where and the "
             "order of findAll, findOne and findByPk; here only a field of the model)", ctx, name);
}

/*
** Append the SQL of the fragment at idx for model m (its columns as
** alias."col"), binding its values in text order.  [-0, +0, e]
*/
void jn_frag_expr(lua_State *L, jn_Model *m, const char *alias, int idx, jn_Buf *b,
                      jn_Select *s, const char *ctx, int depth) {
  const char *name;
  size_t len;
  int i, n, uv, kind = jn_frag_kind(L, idx);
  if (depth > 32) luaL_error(L, "%s: bad expression (nested too deep, a cycle?)", ctx);
  luaL_checkstack(L, 6, "expression nested too deep");
  if (kind == JN_FRAG_COL) {
    const char *assoc, *field;
    size_t alen;
    int f = jn_frag_colfield(L, m, idx, &assoc, &alen, &field, ctx);
    if (f == -2) jn_buf_adds(L, b, "*");
    else if (f == -1) { jn_frag_parts(L, idx, &name, &len); jn_frag_noassoc(L, name, ctx); }
    else jn_buf_addident(L, b, alias, m->f[f].col);
    return;
  }
  n = jn_frag_parts(L, idx, &name, &len);
  uv = lua_gettop(L);
  if (kind == JN_FRAG_LITERAL) {   /* the text, each ? bound in turn */
    size_t k, start = 0;
    char q = 0;
    int v = 0;
    for (k = 0; k < len; k++) {
      if (q) { if (name[k] == q) q = 0; continue; }
      if (name[k] == '\'' || name[k] == '"') { q = name[k]; continue; }
      if (name[k] != '?') continue;
      jn_buf_addl(L, b, name + start, k - start);
      lua_rawgeti(L, uv, ++v);
      frag_bind(L, b, s, lua_gettop(L));
      lua_pop(L, 1);
      start = k + 1;
    }
    jn_buf_addl(L, b, name + start, len - start);
  } else {
    jn_buf_addl(L, b, name, len);
    jn_buf_adds(L, b, "(");
    for (i = 1; i <= n; i++) {
      lua_rawgeti(L, uv, i);
      if (i > 1) jn_buf_adds(L, b, ", ");
      if (jn_frag_kind(L, -1)) jn_frag_expr(L, m, alias, lua_gettop(L), b, s, ctx, depth + 1);
      else frag_bind(L, b, s, lua_gettop(L));
      lua_pop(L, 1);
    }
    jn_buf_adds(L, b, ")");
  }
  lua_pop(L, 1);
}

/* Does the fragment at idx hold an aggregate function (or a literal, which
** may)?  Then a query reading it has no row identity to add a key to. */
int jn_frag_aggregate(lua_State *L, int idx, int depth) {
  static const char *const aggs[] = {
    "count", "sum", "avg", "min", "max", "total", "group_concat", "string_agg", "array_agg",
    "json_group_array", "json_group_object", "json_agg", "jsonb_agg", "json_object_agg",
    "bool_and", "bool_or", "every", NULL
  };
  const char *name;
  size_t len;
  int i, n, found = 0, kind = jn_frag_kind(L, idx);
  if (kind == JN_FRAG_LITERAL) return 1;
  if (kind != JN_FRAG_FN || depth > 32) return 0;
  n = jn_frag_parts(L, idx, &name, &len);
  for (i = 0; aggs[i] != NULL && !found; i++) found = jn_stricmp(name, aggs[i]) == 0;
  for (i = 1; i <= n && !found; i++) {
    lua_rawgeti(L, -1, i);
    found = jn_frag_aggregate(L, lua_gettop(L), depth + 1);
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
  return found;
}

void jn_frag_open(lua_State *L) {
  luaL_newmetatable(L, JN_FRAG_MT);
  lua_pushcfunction(L, frag_tostring);
  lua_setfield(L, -2, "__tostring");
  lua_pushliteral(L, "junction.Fragment");
  lua_setfield(L, -2, "__name");
  lua_pop(L, 1);
  lua_pushcfunction(L, frag_literal);
  lua_setfield(L, -2, "literal");
  lua_pushcfunction(L, frag_fn);
  lua_setfield(L, -2, "fn");
  lua_pushcfunction(L, frag_col);
  lua_setfield(L, -2, "col");
}
