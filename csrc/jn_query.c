/*
** jn_query.c: the query compiler.  A `where` table, `order`, `limit`,
** `offset` and `attributes` become SQL text in a jn_Buf plus an array of
** values to bind (jn_Select); names are checked against the model and
** quoted, values are never spliced.  jn_query_rows turns the rows of a
** statement into instances.  It compiles and reads; the finds that also run
** eager loading are jn_include_find, one layer up.
*/
#include "jn.h"
#include <stdio.h>

/* An IN list longer than this is bound as one JSON array, so a list of any
** length fits under SQLite's limit on variables and makes one SQL text. */
#define JN_IN_INLINE 32
/* Bound inline, a list stays under SQLite's default limit of 32766 variables. */
#define JN_IN_MAX 30000

/* {====== Binds */

/* Start an empty bind list (pushes it). */
void jn_query_init(lua_State *L, jn_Select *s) {
  lua_newtable(L);
  s->binds_idx = lua_gettop(L);
  s->nbind = 0;
  s->cols = NULL;
  s->cols_idx = 0;
  s->ncols = 0;
  s->sub = NULL;
  s->exprs = 0;
  s->attrs_idx = 0;
  s->extra_idx = 0;
  s->nextra = 0;
  s->exact = 0;
  s->inc_idx = 0;
}

/* Append the value at idx to the bind list. */
void jn_query_bind(lua_State *L, jn_Select *s, int idx) {
  lua_pushvalue(L, idx);
  lua_rawseti(L, s->binds_idx, ++s->nbind);
}

/* Append the value at idx, to be bound as a value of field type type (a
** BLOB stays bytes, a number for a DATE becomes its UTC text). */
void jn_query_bindt(lua_State *L, jn_Select *s, int idx, int type) {
  jn_query_bind(L, s, idx);
  if (type == JN_T_BLOB || type == JN_T_DATE) {
    lua_pushinteger(L, type);
    lua_rawseti(L, s->binds_idx, -s->nbind);
  }
}

/* Bind the values of s to parameters 1..nbind, each with its type. */
void jn_query_bindlist(lua_State *L, jn_Conn *c, jn_St *st, const jn_Select *s) {
  int i;
  for (i = 1; i <= s->nbind; i++) {
    int type;
    lua_rawgeti(L, s->binds_idx, -i);
    type = lua_isnil(L, -1) ? JN_T_ANY : (int)lua_tointeger(L, -1);
    lua_rawgeti(L, s->binds_idx, i);
    if (jn_stmt_bindvalue(L, c, st, i, -1, type) != 0)   /* the compiler checked them all */
      luaL_error(L, "junction: cannot bind value %d (%s)", i, luaL_typename(L, -1));
    lua_pop(L, 2);
  }
}

/* Can the value at idx travel in a JSON array and come back the same? */
static int json_safe(lua_State *L, int idx) {
  size_t n;
  const char *s;
  if (lua_type(L, idx) != LUA_TSTRING) return lua_type(L, idx) == LUA_TNUMBER;
  s = lua_tolstring(L, idx, &n);
  return strlen(s) == n && jn_scalar_isutf8(s, n);
}

/*
** Push the value at idx as it is bound for field f: booleans as 0/1, a
** number for a DATE as its UTC text (done by binding), anything that cannot
** be stored raises.
*/
static void push_bindable(lua_State *L, jn_Model *m, int f, int idx, const char *ctx) {
  int t = lua_type(L, idx);
  jn_Inst *inst = jn_inst_test(L, idx);
  if (inst != NULL) {   /* an instance stands for its primary key, checked as any value */
    if (inst->model->conn != m->conn || (f == m->pk && inst->model != m))
      luaL_error(L, "%s: bad where value for field '%s.%s' (a %s instance%s cannot stand for it)",
                 ctx, m->name, m->f[f].name, inst->model->name,
                 inst->model->conn != m->conn ? " of another connection" : "");
    jn_inst_get(L, idx, inst->model->pk);
    if (lua_isnil(L, -1))
      luaL_error(L, "%s: bad where value for field '%s.%s' (the %s is not saved yet)", ctx, m->name,
                 m->f[f].name, inst->model->name);
    push_bindable(L, m, f, lua_gettop(L), ctx);
    lua_remove(L, -2);
    return;
  }
  if (t == LUA_TNUMBER && m->f[f].type == JN_T_DATE && !jn_scalar_epochok((double)lua_tonumber(L, idx)))
    luaL_error(L, "%s: bad where value for DATE field '%s.%s' (%s is no time between the years 1 and 9999)",
               ctx, m->name, m->f[f].name, lua_tostring(L, idx));
  if (t == LUA_TBOOLEAN) {
    lua_pushinteger(L, lua_toboolean(L, idx));
  } else if (t == LUA_TNUMBER || t == LUA_TSTRING) {
    /* Compared as the field stores it (7 is "7" for a TEXT field, "7" is 7
    ** for an INTEGER one), not left to SQLite's affinity, which a long list
    ** bound through json_each does not get.  A value the field cannot hold
    ** stays as given and matches nothing. */
    if (m->f[f].type == JN_T_JSON) {   /* a JSON path's value: compared as SQLite reads it */
      lua_pushvalue(L, idx);
    } else if (!jn_value_conv(L, idx, m->f[f].type, 0)) {
      lua_pop(L, 1);
      lua_pushvalue(L, idx);
    } else if (lua_type(L, -1) == LUA_TBOOLEAN) {
      lua_pushinteger(L, lua_toboolean(L, -1));
      lua_remove(L, -2);
    }
  } else {
    luaL_error(L, "%s: bad where value for field '%s.%s' (%s cannot be compared)", ctx, m->name,
               m->f[f].name, luaL_typename(L, idx));
  }
}

/* The subquery listing a bound JSON array's values as type (JN_T_*). */
const char *jn_query_jsonin(jn_Conn *c, int type) {
  const char *q = type >= 0 && type < JN_T_ANY ? c->dialect->json_in[type] : NULL;
  return q != NULL ? q : c->dialect->json_in[JN_T_TEXT];
}

/* Append a Lua value as JSON (for json_each): numbers, strings, booleans. */
void jn_query_addjson(lua_State *L, jn_Buf *b, int idx) {
  char tmp[40];
  switch (lua_type(L, idx)) {
    case LUA_TNUMBER:
      if (lua_isinteger(L, idx)) {
        sqlite3_int64 v = 0;
        jn_scalar_toi64(L, idx, &v);
        jn_buf_addint(L, b, (long long)v);
      } else {
        /* JSON has no NaN or infinity: NaN is null (SQLite binds a NaN as
        ** NULL too), an infinity a number too large for a double, which
        ** SQLite reads back as that infinity. */
        double d = (double)lua_tonumber(L, idx);
        if (d != d) strcpy(tmp, "null");
        else if (d - d != 0) strcpy(tmp, d > 0 ? "9e999" : "-9e999");
        else snprintf(tmp, sizeof tmp, "%.17g", d);
        jn_buf_adds(L, b, tmp);
      }
      break;
    case LUA_TBOOLEAN:
      jn_buf_adds(L, b, lua_toboolean(L, idx) ? "1" : "0");
      break;
    case LUA_TSTRING: {
      size_t n, i;
      const char *s = lua_tolstring(L, idx, &n);
      jn_buf_addl(L, b, "\"", 1);
      for (i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch == '"' || ch == '\\') {
          tmp[0] = '\\'; tmp[1] = (char)ch;
          jn_buf_addl(L, b, tmp, 2);
        } else if (ch < 0x20) {
          snprintf(tmp, sizeof tmp, "\\u%04x", ch);
          jn_buf_adds(L, b, tmp);
        } else {
          jn_buf_addl(L, b, (const char *)&s[i], 1);
        }
      }
      jn_buf_addl(L, b, "\"", 1);
      break;
    }
    default:
      jn_buf_adds(L, b, "null");
      break;
  }
}

/* }====== */

/* {====== Fragments: junction.literal, junction.fn, junction.col */

static const char *const frag_kinds[] = { "", "literal", "fn", "col" };

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
static int frag_kind(lua_State *L, int idx) {
  int k;
  if (luaL_testudata(L, idx, JN_FRAG_MT) == NULL) return 0;
  lua_getuservalue(L, idx);
  lua_getfield(L, -1, "kind");
  k = (int)lua_tointeger(L, -1);
  lua_pop(L, 2);
  return k;
}

/* Push the fragment's uservalue, its name and its count of arguments. */
static int frag_parts(lua_State *L, int idx, const char **name, size_t *len) {
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
  int k = frag_kind(L, 1);
  if (k == 0) return luaL_error(L, "junction.Fragment: bad self");
  frag_parts(L, 1, &name, &len);
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
static int frag_colfield(lua_State *L, jn_Model *m, int idx, const char **assoc, size_t *alen,
                         const char **field, const char *ctx) {
  const char *name, *dot;
  size_t len;
  int f;
  frag_parts(L, idx, &name, &len);
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
static void no_assoc_col(lua_State *L, const char *name, const char *ctx) {
  luaL_error(L, "%s: bad column '%s' (a column of an association is taken in the where and the "
             "order of findAll, findOne and findByPk; here only a field of the model)", ctx, name);
}

/*
** Append the SQL of the fragment at idx for model m (its columns as
** alias."col"), binding its values in text order.  [-0, +0, e]
*/
static void frag_expr(lua_State *L, jn_Model *m, const char *alias, int idx, jn_Buf *b,
                      jn_Select *s, const char *ctx, int depth) {
  const char *name;
  size_t len;
  int i, n, uv, kind = frag_kind(L, idx);
  if (depth > 32) luaL_error(L, "%s: bad expression (nested too deep, a cycle?)", ctx);
  luaL_checkstack(L, 6, "expression nested too deep");
  if (kind == JN_FRAG_COL) {
    const char *assoc, *field;
    size_t alen;
    int f = frag_colfield(L, m, idx, &assoc, &alen, &field, ctx);
    if (f == -2) jn_buf_adds(L, b, "*");
    else if (f == -1) { frag_parts(L, idx, &name, &len); no_assoc_col(L, name, ctx); }
    else jn_buf_addident(L, b, alias, m->f[f].name);
    return;
  }
  n = frag_parts(L, idx, &name, &len);
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
      if (frag_kind(L, -1)) frag_expr(L, m, alias, lua_gettop(L), b, s, ctx, depth + 1);
      else frag_bind(L, b, s, lua_gettop(L));
      lua_pop(L, 1);
    }
    jn_buf_adds(L, b, ")");
  }
  lua_pop(L, 1);
}

/* Does the fragment at idx hold an aggregate function (or a literal, which
** may)?  Then a query reading it has no row identity to add a key to. */
static int frag_aggregate(lua_State *L, int idx, int depth) {
  static const char *const aggs[] = {
    "count", "sum", "avg", "min", "max", "total", "group_concat", "string_agg", "array_agg",
    "json_group_array", "json_group_object", "json_agg", "jsonb_agg", "json_object_agg",
    "bool_and", "bool_or", "every", NULL
  };
  const char *name;
  size_t len;
  int i, n, found = 0, kind = frag_kind(L, idx);
  if (kind == JN_FRAG_LITERAL) return 1;
  if (kind != JN_FRAG_FN || depth > 32) return 0;
  n = frag_parts(L, idx, &name, &len);
  for (i = 0; aggs[i] != NULL && !found; i++) found = jn_stricmp(name, aggs[i]) == 0;
  for (i = 1; i <= n && !found; i++) {
    lua_rawgeti(L, -1, i);
    found = frag_aggregate(L, lua_gettop(L), depth + 1);
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
  return found;
}

void jn_query_open(lua_State *L) {
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

/* }====== */

/* {====== where */

/* A where table that is given and empty is a mistake, never "every row": in
** Lua { id = params.id } is {} when params.id is nil, so an empty where is
** what a missing value looks like.  Every row is said explicitly. */
#define EMPTY_WHY "a nil value such as { id = params.id } leaves it empty; " \
                  "omit where to read every row, say { all = true } to update or destroy every row"

/*
** How the table at idx is keyed: 1 for a list (keys exactly 1..n, n > 0),
** 0 for no integer key at all (a table of conditions), -1 for a mix or a
** list with holes, which is a mistake: a key outside 1..n would otherwise
** be dropped without a word.  [-0, +0, -]
*/
static int table_shape(lua_State *L, int idx) {
  int n = (int)lua_rawlen(L, idx), count = 0, ints = 0;
  lua_pushnil(L);
  while (lua_next(L, idx) != 0) {
    lua_pop(L, 1);
    count++;
    if (lua_type(L, -1) == LUA_TNUMBER) ints++;
  }
  if (ints == 0) return 0;
  return count == n && ints == n ? 1 : -1;
}


/* What the where compiler appends to, and for whom: the model, the alias
** of its table (or NULL), the SQL text, the values to bind, the context of
** messages. */
typedef struct jn_Where {
  jn_Model *m;
  const char *alias;
  jn_Buf *b;
  jn_Select *s;
  const char *ctx;
  int path;                 /* stack index of a JSON path (junction.json), or 0 */
  int lhs;                  /* stack index of a fragment as the left side, or 0 */
  int having;               /* keys may name the aliases of s->attrs_idx */
} jn_Where;

/* The name and the type of the left side f (-1: an expression). */
#define FNAME(w, f) ((f) >= 0 ? (w)->m->f[f].name : "(expression)")
#define FTYPE(w, f) ((f) >= 0 ? (w)->m->f[f].type : JN_T_ANY)

/* Push the value at idx as it is bound against the left side f: for a
** field as push_bindable does, for an expression as given (a boolean as
** 0/1, an instance as its key).  Raises for what cannot be compared. */
static void push_value(lua_State *L, const jn_Where *w, int f, int idx) {
  jn_Inst *inst;
  if (f >= 0) { push_bindable(L, w->m, f, idx, w->ctx); return; }
  inst = jn_inst_test(L, idx);
  if (inst != NULL) {
    jn_inst_get(L, idx, inst->model->pk);
    if (lua_isnil(L, -1))
      luaL_error(L, "%s: bad where value (the %s is not saved yet)", w->ctx, inst->model->name);
    return;
  }
  switch (lua_type(L, idx)) {
    case LUA_TBOOLEAN: lua_pushinteger(L, lua_toboolean(L, idx)); return;
    case LUA_TNUMBER: case LUA_TSTRING: lua_pushvalue(L, idx); return;
    default:
      luaL_error(L, "%s: bad where value for an expression (%s cannot be compared)", w->ctx,
                 luaL_typename(L, idx));
  }
}

/* Append field f as the condition's left side: alias."col", or for a JSON
** path json_extract(alias."col", ?) with the path bound (so it goes first). */
static void where_col(lua_State *L, const jn_Where *w, int f) {
  if (w->lhs != 0) {
    frag_expr(L, w->m, w->alias, w->lhs, w->b, w->s, w->ctx, 0);
    return;
  }
  if (w->path == 0) {
    jn_buf_addident(L, w->b, w->alias, w->m->f[f].name);
    return;
  }
  jn_buf_adds(L, w->b, "json_extract(");
  jn_buf_addident(L, w->b, w->alias, w->m->f[f].name);
  jn_buf_adds(L, w->b, ", ?)");
  jn_query_bind(L, w->s, w->path);
}

static void where_and(lua_State *L, const jn_Where *w, int t, int depth);

/*
** The value on top (as push_bindable left it) as a number field f compares
** it: 1 it stays, 2 it was replaced by the number a decimal string spells
** (SQLite's numeric affinity reads "1.0" as 1), 0 it equals no value of the
** field (text that spells no number, a fraction for an INTEGER): SQLite
** compares and finds none, PostgreSQL refuses the cast and fails the whole
** statement, so an in list leaves it out on both.
** [-0, +0, m]
*/
static int in_value(lua_State *L, jn_Model *m, int f) {
  int type = m->f[f].type;
  sqlite3_int64 v;
  size_t n, i;
  const char *s;
  double d;
  if (type != JN_T_INTEGER && type != JN_T_REAL && type != JN_T_BOOLEAN) return 1;
  if (lua_isnil(L, -1)) return 1;
  if (type != JN_T_REAL && jn_scalar_toi64(L, -1, &v)) return 1;   /* beyond 2^53 on 5.1: a string */
  if (type == JN_T_REAL && lua_type(L, -1) == LUA_TNUMBER) return 1;
  if (type == JN_T_BOOLEAN || lua_type(L, -1) != LUA_TSTRING) return 0;
  s = lua_tolstring(L, -1, &n);
  for (i = 0; i < n; i++)   /* hexadecimal, "inf" and "nan" are no numbers to SQLite */
    if (s[i] == '\0' || strchr("0123456789+-.eE \t\n\r\f\v", s[i]) == NULL) return 0;
  if (!lua_isnumber(L, -1)) return 0;
  d = (double)lua_tonumber(L, -1);
  if (d != d || d - d != 0) return 0;
  if (type == JN_T_INTEGER) {
    if (!(d >= -9.2e18 && d <= 9.2e18 && d == (double)(sqlite3_int64)d)) return 0;
    jn_scalar_pushi64(L, (sqlite3_int64)d);
  } else {
    lua_pushnumber(L, (lua_Number)d);
  }
  lua_replace(L, -2);
  return 2;
}

/* The list at idx as field f compares its values (in_value): the list
** itself when every value stays, else a new table pushed (*pushed set). */
static int in_held(lua_State *L, jn_Model *m, int f, int idx, const char *ctx, int *pushed) {
  int i, k = 0, n = (int)lua_rawlen(L, idx), r = 1;
  *pushed = 0;
  for (i = 1; i <= n && r == 1; i++) {
    lua_rawgeti(L, idx, i);
    push_bindable(L, m, f, lua_gettop(L), ctx);
    r = in_value(L, m, f);
    lua_pop(L, 2);
  }
  if (r == 1) return idx;
  lua_createtable(L, n - 1, 0);
  for (i = 1; i <= n; i++) {
    lua_rawgeti(L, idx, i);
    push_bindable(L, m, f, lua_gettop(L), ctx);
    if (in_value(L, m, f) != 0) {
      lua_rawseti(L, -3, ++k);
      lua_pop(L, 1);
    } else {
      lua_pop(L, 2);
    }
  }
  *pushed = 1;
  return lua_gettop(L);
}

/* "col IN (?, ...)" or, for a long list, "col IN (SELECT value FROM json_each(?))". */
static void where_in(lua_State *L, const jn_Where *w, int f, int list, int negate) {
  jn_Model *m = w->m;
  jn_Buf *b = w->b;
  const char *ctx = w->ctx;
  int i, n, inline_, pushed = 0;
  if (!lua_istable(L, list))
    luaL_error(L, "%s: bad where for field '%s' (%s expects an array, got %s)", ctx, FNAME(w, f),
               negate ? "notIn" : "in", luaL_typename(L, list));
  if (table_shape(L, list) < 0)
    luaL_error(L, "%s: bad where for field '%s' (%s expects a list: keys 1..n, no others)", ctx,
               FNAME(w, f), negate ? "notIn" : "in");
  if (f >= 0 && lua_rawlen(L, list) > 0) list = in_held(L, m, f, list, ctx, &pushed);
  n = (int)lua_rawlen(L, list);
  if (n == 0) {   /* nothing is IN an empty list */
    jn_buf_adds(L, b, negate ? m->conn->dialect->every_row : m->conn->dialect->no_row);
    if (pushed) lua_pop(L, 1);
    return;
  }
  {   /* JSON carries numbers and clean text; anything else is bound inline */
    int safe = FTYPE(w, f) != JN_T_BLOB && FTYPE(w, f) != JN_T_DATE;
    for (i = 1; safe && i <= n && n > JN_IN_INLINE; i++) {
      lua_rawgeti(L, list, i);
      push_value(L, w, f, lua_gettop(L));
      safe = json_safe(L, -1);
      lua_pop(L, 2);
    }
    inline_ = n <= JN_IN_INLINE || !safe;
  }
  if (inline_ && n > JN_IN_MAX)
    luaL_error(L, "%s: bad where for field '%s' (an in list of more than %d values needs numbers or UTF-8 text without NUL bytes)",
               ctx, FNAME(w, f), JN_IN_MAX);
  where_col(L, w, f);
  jn_buf_adds(L, b, negate ? " NOT IN (" : " IN (");
  if (inline_) {
    for (i = 1; i <= n; i++) {
      lua_rawgeti(L, list, i);
      push_value(L, w, f, lua_gettop(L));
      jn_query_bindt(L, w->s, -1, FTYPE(w, f));
      lua_pop(L, 2);
      jn_buf_adds(L, b, i > 1 ? ", ?" : "?");
    }
  } else {
    jn_Buf j;
    jn_buf_init(L, &j);
    jn_buf_addl(L, &j, "[", 1);
    for (i = 1; i <= n; i++) {
      lua_rawgeti(L, list, i);
      push_value(L, w, f, lua_gettop(L));
      if (i > 1) jn_buf_addl(L, &j, ",", 1);
      jn_query_addjson(L, &j, -1);
      lua_pop(L, 2);
    }
    jn_buf_addl(L, &j, "]", 1);
    lua_pushlstring(L, j.p, j.n);
    jn_query_bind(L, w->s, -1);
    lua_pop(L, 2);
    jn_buf_adds(L, b, jn_query_jsonin(m->conn, FTYPE(w, f)));
  }
  jn_buf_adds(L, b, ")");
  if (pushed) lua_pop(L, 1);
}

/* "col OP ?" */
static void where_cmp(lua_State *L, const jn_Where *w, int f, int val, const char *op) {
  where_col(L, w, f);
  if (frag_kind(L, val)) {   /* { views = { gt = junction.col("likes") } }: op then the expression */
    jn_buf_addl(L, w->b, op, strlen(op) - 1);
    frag_expr(L, w->m, w->alias, val, w->b, w->s, w->ctx, 0);
    return;
  }
  push_value(L, w, f, val);
  jn_query_bindt(L, w->s, -1, FTYPE(w, f));
  lua_pop(L, 1);
  jn_buf_adds(L, w->b, op);
}

/* The condition of operator op (ops[op], named k) on field f with the
** value at v. */
static void where_op(lua_State *L, const jn_Where *w, int f, int op, const char *k, int v) {
  static const char *const sqlop[] = {
    " = ?", " <> ?", " > ?", " >= ?", " < ?", " <= ?"
  };
  jn_Buf *b = w->b;
  const char *ctx = w->ctx;
  if (op <= 1 && jn_scalar_isnull(L, v)) {   /* eq / ne junction.null: IS [NOT] NULL */
    where_col(L, w, f);
    jn_buf_adds(L, b, op == 0 ? " IS NULL" : " IS NOT NULL");
  } else if (op <= 5) {
    where_cmp(L, w, f, v, sqlop[op]);
  } else if (op <= 8) {
    where_in(L, w, f, v, op == 8);
  } else if (op <= 10) {
    where_cmp(L, w, f, v, op == 9 ? " LIKE ?" : " NOT LIKE ?");
  } else if (op <= 12) {
    if (!lua_istable(L, v) || lua_rawlen(L, v) != 2)
      luaL_error(L, "%s: bad where for field '%s' (%s expects { low, high })", ctx, FNAME(w, f), k);
    where_col(L, w, f);
    jn_buf_adds(L, b, op == 11 ? " BETWEEN ? AND ?" : " NOT BETWEEN ? AND ?");
    lua_rawgeti(L, v, 1);
    push_value(L, w, f, lua_gettop(L));
    jn_query_bindt(L, w->s, -1, FTYPE(w, f));
    lua_rawgeti(L, v, 2);
    push_value(L, w, f, lua_gettop(L));
    jn_query_bindt(L, w->s, -1, FTYPE(w, f));
    lua_pop(L, 4);
  } else {
    if (!lua_isboolean(L, v))
      luaL_error(L, "%s: bad where for field '%s' (isNull expects a boolean)", ctx, FNAME(w, f));
    where_col(L, w, f);
    jn_buf_adds(L, b, lua_toboolean(L, v) ? " IS NULL" : " IS NOT NULL");
  }
}

/* The conditions on field f given by the value at val. */
static void where_field(lua_State *L, const jn_Where *w, int f, int val) {
  static const char *const ops[] = {
    "eq", "ne", "gt", "gte", "lt", "lte", "in", "_in", "notIn", "like", "notLike",
    "between", "notBetween", "isNull", NULL
  };
  jn_Buf *b = w->b;
  const char *ctx = w->ctx;
  int n = 0;
  if (jn_scalar_isnull(L, val)) {   /* { text = junction.null }: IS NULL */
    where_col(L, w, f);
    jn_buf_adds(L, b, " IS NULL");
    return;
  }
  if (!lua_istable(L, val) || jn_inst_test(L, val) != NULL) {
    where_cmp(L, w, f, val, " = ?");
    return;
  }
  n = table_shape(L, val);
  if (n < 0)   /* { 1, 2, ne = 3 }: a list or operators, not both */
    luaL_error(L, "%s: bad where for field '%s' (a list of values and operators mixed)", ctx,
               FNAME(w, f));
  if (n) {   /* { 1, 2, 3 }: the array shorthand for IN */
    where_in(L, w, f, val, 0);
    return;
  }
  jn_buf_addl(L, b, "(", 1);
  lua_pushnil(L);
  while (lua_next(L, val) != 0) {
    int op, v = lua_gettop(L);
    const char *k = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : NULL;
    for (op = 0; k != NULL && ops[op] != NULL; op++)
      if (strcmp(k, ops[op]) == 0) break;
    if (k == NULL || ops[op] == NULL)
      luaL_error(L, "%s: bad where operator '%s' for field '%s' (eq ne gt gte lt lte in notIn like notLike between notBetween isNull)",
                 ctx, k ? k : luaL_typename(L, -2), FNAME(w, f));
    if (n++) jn_buf_adds(L, b, " AND ");
    where_op(L, w, f, op, k, v);
    lua_pop(L, 1);
  }
  if (n == 0)   /* { id = { eq = params.id } } with no id */
    luaL_error(L, "%s: bad where for field '%s' (an empty operator table: %s)", ctx,
               FNAME(w, f), EMPTY_WHY);
  jn_buf_addl(L, b, ")", 1);
}

/* "(w1 AND w2 ...)" or "(w1 OR w2 ...)" from an array of where tables. */
static void where_list(lua_State *L, const jn_Where *w, int list, const char *join, int depth) {
  jn_Buf *b = w->b;
  const char *ctx = w->ctx;
  int i, n;
  if (!lua_istable(L, list))
    luaL_error(L, "%s: bad where ('%s' expects an array of where tables, got %s)", ctx,
               join[1] == 'A' ? "and" : "or", luaL_typename(L, list));
  switch (table_shape(L, list)) {
    case 0:   /* { a = 1, b = 2 }: one table of conditions (Sequelize's object form) */
      lua_pushnil(L);
      if (lua_next(L, list) == 0)
        luaL_error(L, "%s: bad where ('%s' has no conditions: %s)", ctx,
                   join[1] == 'A' ? "and" : "or", EMPTY_WHY);
      lua_pop(L, 2);
      if (join[1] == 'A') { where_and(L, w, list, depth + 1); return; }
      break;
    case -1:
      luaL_error(L, "%s: bad where ('%s' expects a list of where tables: keys 1..n, no others)",
                 ctx, join[1] == 'A' ? "and" : "or");
  }
  n = (int)lua_rawlen(L, list);
  if (n == 0) {   /* or = { a = 1, b = 2 }: each condition a branch */
    int k = 0;
    jn_buf_addl(L, b, "(", 1);
    lua_pushnil(L);
    while (lua_next(L, list) != 0) {
      if (k++) jn_buf_adds(L, b, join);
      lua_newtable(L);            /* { key = value }: one branch */
      lua_pushvalue(L, -3);
      lua_pushvalue(L, -3);
      lua_rawset(L, -3);
      where_and(L, w, lua_gettop(L), depth + 1);
      lua_pop(L, 2);
    }
    jn_buf_addl(L, b, ")", 1);
    return;
  }
  jn_buf_addl(L, b, "(", 1);
  for (i = 1; i <= n; i++) {
    lua_rawgeti(L, list, i);
    if (i > 1) jn_buf_adds(L, b, join);
    where_and(L, w, lua_gettop(L), depth + 1);
    lua_pop(L, 1);
  }
  jn_buf_addl(L, b, ")", 1);
}

/* The conditions on the JSON path (junction.json) at key given by the value
** at val: its field must be a JSON field of the model. */
static void where_path(lua_State *L, const jn_Where *w, int key, int val) {
  jn_Where pw = *w;
  int f;
  lua_getuservalue(L, key);
  lua_rawgeti(L, -1, 1);              /* the field's name */
  lua_rawgeti(L, -2, 2);              /* the path */
  f = jn_schema_fieldname(w->m, lua_tostring(L, -2));
  if (f < 0)
    luaL_error(L, "%s: bad where field '%s' (no such field in %s)", w->ctx, lua_tostring(L, -2),
               w->m->name);
  if (w->m->f[f].type != JN_T_JSON)
    luaL_error(L, "%s: bad where (junction.json names field '%s', which is not a JSON field)",
               w->ctx, w->m->f[f].name);
  if (strcmp(w->m->conn->dialect->name, "sqlite") != 0)   /* json_extract is SQLite's */
    luaL_error(L, "%s: bad where (a junction.json path is not offered on %s yet)", w->ctx,
               w->m->conn->dialect->name);
  pw.path = lua_gettop(L);
  where_field(L, &pw, f, val);
  lua_pop(L, 3);
}

/*
** The attribute of s->attrs_idx aliased name, pushed (a field name or a
** fragment), or nothing and 0.  [-0, +(0|1), -]
*/
static int push_aliased(lua_State *L, const jn_Select *s, const char *name) {
  int i, n;
  if (s->attrs_idx == 0 || !lua_istable(L, s->attrs_idx)) return 0;
  n = (int)lua_rawlen(L, s->attrs_idx);
  for (i = 1; i <= n; i++) {
    lua_rawgeti(L, s->attrs_idx, i);
    if (lua_istable(L, -1)) {
      lua_rawgeti(L, -1, 2);
      if (lua_type(L, -1) == LUA_TSTRING && strcmp(lua_tostring(L, -1), name) == 0) {
        lua_pop(L, 1);
        lua_rawgeti(L, -1, 1);
        lua_remove(L, -2);
        return 1;
      }
      lua_pop(L, 1);
    }
    lua_pop(L, 1);
  }
  return 0;
}

/*
** The conditions on the fragment key at key (junction.col, fn or literal)
** given by the value at val.  A column of an association (col("Genres.name"))
** holds when some associated row has it: EXISTS (SELECT 1 FROM ... AND ...).
*/
static void where_fragkey(lua_State *L, const jn_Where *w, int key, int val) {
  jn_Where kw = *w;
  if (frag_kind(L, key) == JN_FRAG_COL) {
    const char *assoc, *field, *name;
    size_t alen, len;
    int f = frag_colfield(L, w->m, key, &assoc, &alen, &field, w->ctx);
    if (f == -2) luaL_error(L, "%s: bad where key (junction.col(\"*\") is no column)", w->ctx);
    if (f >= 0) { kw.lhs = 0; where_field(L, &kw, f, val); return; }
    frag_parts(L, key, &name, &len);
    lua_pop(L, 1);   /* name stays anchored in the key's uservalue */
    if (w->s->sub == NULL || w->alias != NULL) no_assoc_col(L, name, w->ctx);
    jn_buf_adds(L, w->b, "EXISTS (SELECT 1");
    kw.m = w->s->sub(L, w->m, assoc, alen, w->b, w->s, w->ctx);
    f = jn_schema_fieldname(kw.m, field);
    if (f < 0) luaL_error(L, "%s: bad column '%s' (no such field in %s)", w->ctx, name, kw.m->name);
    kw.alias = "t";
    kw.lhs = 0;
    kw.having = 0;
    jn_buf_adds(L, w->b, " AND ");
    where_field(L, &kw, f, val);
    jn_buf_adds(L, w->b, ")");
    return;
  }
  kw.lhs = key;
  where_field(L, &kw, -1, val);
}

/* Every condition of the where table at t, joined with AND. */
static void where_and(lua_State *L, const jn_Where *w, int t, int depth) {
  jn_Buf *b = w->b;
  const char *ctx = w->ctx;
  int n = 0;
  if (depth > 64) luaL_error(L, "%s: bad where (nested too deep, a cycle?)", ctx);
  if (!lua_istable(L, t))
    luaL_error(L, "%s: bad where (table expected, got %s)", ctx, luaL_typename(L, t));
  luaL_checkstack(L, 8, "where nested too deep");
  jn_buf_addl(L, b, "(", 1);
  lua_pushnil(L);
  while (lua_next(L, t) != 0) {
    int v = lua_gettop(L);
    if (n++) jn_buf_adds(L, b, " AND ");
    if (lua_type(L, -2) == LUA_TSTRING) {
      const char *k = lua_tostring(L, -2);
      /* A field's name wins: a model with a field named "or" still says
      ** "_or" for the operator (the underscore spellings are never fields'). */
      int f = jn_schema_field(L, w->m, -2);
      if (f >= 0) {
        where_field(L, w, f, v);
      } else if (strcmp(k, "and") == 0 || strcmp(k, "_and") == 0) {
        where_list(L, w, v, " AND ", depth);
      } else if (strcmp(k, "or") == 0 || strcmp(k, "_or") == 0) {
        where_list(L, w, v, " OR ", depth);
      } else if (strcmp(k, "not") == 0 || strcmp(k, "_not") == 0) {
        jn_buf_adds(L, b, "NOT ");
        where_and(L, w, v, depth + 1);
      } else if (w->having && push_aliased(L, w->s, k)) {   /* an attribute's alias: its expression */
        if (lua_type(L, -1) == LUA_TSTRING) {
          f = jn_schema_field(L, w->m, -1);
          if (f < 0) luaL_error(L, "%s: bad having field '%s' (no such field in %s)", ctx, k, w->m->name);
          where_field(L, w, f, v);
        } else {
          where_fragkey(L, w, lua_gettop(L), v);
        }
        lua_pop(L, 1);
      } else {
        luaL_error(L, "%s: bad where field '%s' (no such field in %s)", ctx, k, w->m->name);
      }
    } else if (frag_kind(L, -2)) {   /* [junction.fn(...)] = v, [junction.col("Genres.name")] = v */
      where_fragkey(L, w, v - 1, v);
    } else if (luaL_testudata(L, -2, JN_JSONPATH_MT) != NULL) {   /* [junction.json(f, p)] = v */
      where_path(L, w, v - 1, v);
    } else if (lua_istable(L, v)) {   /* { {a = 1}, {b = 2} }: all of them */
      where_and(L, w, v, depth + 1);
    } else {
      luaL_error(L, "%s: bad where key (%s)", ctx, luaL_typename(L, -2));
    }
    lua_pop(L, 1);
  }
  if (n == 0)
    luaL_error(L, "%s: bad where (%s)", ctx, depth == 0 ? "an empty table: " EMPTY_WHY
                                                         : "a branch with no conditions: " EMPTY_WHY);
  jn_buf_addl(L, b, ")", 1);
}

/*
** Append the conditions of the where table at whereidx (alias."col" when an
** alias is given) and their values to s.
*/
void jn_query_where(lua_State *L, jn_Model *m, int whereidx, const char *alias, jn_Buf *b,
                    jn_Select *s, const char *ctx) {
  jn_Where w;
  w.m = m;
  w.alias = alias;
  w.b = b;
  w.s = s;
  w.ctx = ctx;
  w.path = 0;
  w.lhs = 0;
  w.having = 0;
  where_and(L, &w, whereidx, 0);
}

/* }====== */

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
    jn_buf_addident(L, b, "t", tm->f[f].name);
    jn_buf_adds(L, b, ")");
    jn_buf_addl(L, b, sub.p, sub.n);
    jn_buf_adds(L, b, ")");
    lua_pop(L, 1);
  } else if (t->frag) {
    frag_expr(L, m, alias, t->frag, b, s, ctx, 0);
  } else if (t->alias != NULL) {
    jn_buf_addident(L, b, NULL, t->alias);
  } else {
    jn_buf_addident(L, b, alias, m->f[t->f].name);
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
  int pg = strcmp(m->conn->dialect->name, "sqlite") != 0, nulls = t->nulls;
  int nullable = t->f < 0 || !(m->f[t->f].flags & (JN_F_NOTNULL | JN_F_PK));
  static const char *const dirs[] = { "", " ASC", " DESC" };
  if (nulls == 0 && pg && nullable && !(t->frag && frag_kind(L, t->frag) == JN_FRAG_LITERAL))
    nulls = t->dir == 2 ? 2 : 1;
  if (!pg && nulls != 0 && nulls != (t->dir == 2 ? 2 : 1)) {
    jn_buf_adds(L, b, "(");
    term_value(L, m, t, alias, b, s, ctx);
    jn_buf_adds(L, b, nulls == 1 ? ") IS NULL DESC, " : ") IS NULL ASC, ");
  }
  term_value(L, m, t, alias, b, s, ctx);
  jn_buf_adds(L, b, dirs[t->dir]);
  if (pg && nulls != 0) jn_buf_adds(L, b, nulls == 1 ? " NULLS FIRST" : " NULLS LAST");
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
  if (push_aliased(L, s, name)) { lua_pop(L, 1); t->alias = name; return; }
  luaL_error(L, "%s: bad order field '%s' (no such field in %s)", ctx, name, m->name);
}

/*
** One order term: "name", "name DESC", "name ASC NULLS LAST", a fragment
** (junction.fn(...), junction.col("Genres.name")), { name or fragment,
** direction, nulls }, or { "Genres", "name", direction, nulls } for a
** field of an association.  Strings it points to stay anchored in t.
*/
static void order_term(lua_State *L, jn_Model *m, int t, const char *alias, jn_Buf *b,
                       jn_Select *s, const char *ctx) {
  char name[80];
  jn_Term term;
  int first = t;
  memset(&term, 0, sizeof term);
  term.f = -1;
  if (lua_type(L, t) == LUA_TSTRING) {
    const char *str = lua_tostring(L, t), *sp = strchr(str, ' ');
    size_t n = sp ? (size_t)(sp - str) : strlen(str);
    if (n >= sizeof name) n = sizeof name - 1;
    memcpy(name, str, n);
    name[n] = '\0';
    if (sp && !parse_dir(sp + 1, &term.dir, &term.nulls))
      luaL_error(L, "%s: bad order direction '%s' (ASC or DESC, NULLS FIRST or NULLS LAST)", ctx,
                 sp + 1);
    term_name(L, m, &term, name, s, ctx);
    if (term.alias != NULL) {   /* the alias: the string up to its space */
      lua_pushlstring(L, str, n);
      term.alias = lua_tostring(L, -1);
      term_add(L, m, &term, alias, b, s, ctx);
      lua_pop(L, 1);
      return;
    }
    term_add(L, m, &term, alias, b, s, ctx);
    return;
  }
  if (lua_istable(L, t) && luaL_testudata(L, t, JN_FRAG_MT) == NULL) {
    int n = (int)lua_rawlen(L, t), d = 2;
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
      term.assoc = lua_tolstring(L, first, &term.alen);
      term.afield = lua_tostring(L, first + 1);
      s->sub(L, m, term.assoc, term.alen, NULL, s, ctx);
      d = 3;
    }
    lua_rawgeti(L, t, d);
    term_dir(L, &term, lua_gettop(L), ctx);
    lua_rawgeti(L, t, d + 1);
    term_dir(L, &term, lua_gettop(L), ctx);
    lua_rawgeti(L, t, d + 2);
    if (!lua_isnil(L, -1)) luaL_error(L, "%s: bad order term (too many values)", ctx);
    lua_pop(L, 3);
    if (term.assoc != NULL) {
      term_add(L, m, &term, alias, b, s, ctx);
      lua_pop(L, 2);
      return;
    }
    lua_pop(L, 1);   /* the first value stays at first */
  }
  if (lua_type(L, first) == LUA_TSTRING) {
    term_name(L, m, &term, lua_tostring(L, first), s, ctx);
    if (term.alias != NULL) term.alias = lua_tostring(L, first);
  } else if (frag_kind(L, first) == JN_FRAG_COL) {
    const char *assoc, *field;
    term.f = frag_colfield(L, m, first, &assoc, &term.alen, &field, ctx);
    if (term.f == -2) luaL_error(L, "%s: bad order (junction.col(\"*\") is no column)", ctx);
    if (term.f == -1) {
      if (s->sub == NULL || alias != NULL) no_assoc_col(L, assoc, ctx);
      term.assoc = assoc;
      term.afield = field;
      s->sub(L, m, assoc, term.alen, NULL, s, ctx);
    }
  } else if (frag_kind(L, first)) {
    term.frag = first;
  } else {
    luaL_error(L, "%s: bad order (a field name, a table or junction.fn/col/literal expected, got %s)",
               ctx, luaL_typename(L, first));
  }
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
    jn_query_bind(L, s, -1);
    has_limit = 1;
  }
  lua_pop(L, 1);
  jn_optfield(L, optsidx, "offset");
  if (!lua_isnil(L, -1)) {
    if (!lua_isinteger(L, -1) || lua_tonumber(L, -1) < 0)
      luaL_error(L, "%s: bad option 'offset' (non-negative integer expected)", ctx);
    if (!has_limit) jn_buf_adds(L, b, m->conn->dialect->offset_only);
    jn_buf_adds(L, b, " OFFSET ?");
    jn_query_bind(L, s, -1);
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
  } else if ((k = frag_kind(L, e)) == JN_FRAG_COL) {
    const char *assoc, *field;
    size_t alen;
    at->src = frag_colfield(L, m, e, &assoc, &alen, &field, ctx);
    if (at->src == -1) no_assoc_col(L, assoc, ctx);
    if (at->src == -2) luaL_error(L, "%s: bad attribute (junction.col(\"*\") is no column)", ctx);
  } else if (k != 0) {
    if (at->name == NULL)
      luaL_error(L, "%s: bad attribute (a junction.%s needs an alias: { junction.%s(...), \"name\" })",
                 ctx, frag_kinds[k], frag_kinds[k]);
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
  if (at->frag) frag_expr(L, m, alias, at->frag, b, s, ctx, 0);
  else jn_buf_addident(L, b, alias, m->f[at->src].name);
  if (at->name != NULL) {
    jn_buf_adds(L, b, " AS ");
    jn_buf_addident(L, b, NULL, at->name);
  }
}

/*
** Append the columns of opts.attributes: first those that fill fields
** (recorded in s->cols), then the key and the keys the caller's includes
** link by, unless the query groups or aggregates (s->exact), then the
** values read by their alias (names and types in s->extra_idx).
*/
static void columns_given(lua_State *L, jn_Model *m, int a, const int *link, int nlink,
                          const char *alias, jn_Buf *b, jn_Select *s, const char *ctx) {
  int i, j, n, k = 0, haspk = 0, agg = 0, ne = 0, names;
  jn_Attr at;
  if (!lua_istable(L, a))
    luaL_error(L, "%s: bad option 'attributes' (array of field names expected)", ctx);
  n = (int)lua_rawlen(L, a);
  s->cols = (int *)lua_newuserdata(L, (size_t)(n + 1 + m->nfields) * sizeof(int));
  s->cols_idx = lua_gettop(L);
  lua_newtable(L);
  names = lua_gettop(L);
  for (i = 1; i <= n; i++) {   /* the fields */
    lua_rawgeti(L, a, i);
    attr_read(L, m, lua_gettop(L), s, &at, ctx);
    if (at.frag && frag_aggregate(L, at.frag, 0)) agg = 1;
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
    if (!haspk) {
      if (k) jn_buf_adds(L, b, ", ");
      jn_buf_addident(L, b, alias, m->f[m->pk].name);
      s->cols[k++] = m->pk;
    }
    for (j = 0; j < nlink; j++) {   /* the keys the caller's includes link by */
      for (i = 0; i < k && s->cols[i] != link[j]; i++) {}
      if (i == k) {
        jn_buf_adds(L, b, ", ");
        jn_buf_addident(L, b, alias, m->f[link[j]].name);
        s->cols[k++] = link[j];
      }
    }
  }
  s->ncols = k;
  for (i = 1; i <= n; i++) {   /* the values read by their alias */
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
  if (k + ne == 0) luaL_error(L, "%s: bad option 'attributes' (empty)", ctx);
  s->nextra = ne;
  s->extra_idx = names;
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
      jn_buf_addident(L, b, alias, m->f[i].name);
    }
  }
}

/* One group term: a field, an attribute's alias, or a fragment. */
static void group_term(lua_State *L, jn_Model *m, int t, jn_Buf *b, jn_Select *s, const char *ctx) {
  if (lua_type(L, t) == LUA_TSTRING) {
    const char *name = lua_tostring(L, t);
    int f = jn_schema_fieldname(m, name);
    if (f >= 0) jn_buf_addident(L, b, NULL, m->f[f].name);
    else if (push_aliased(L, s, name)) { lua_pop(L, 1); jn_buf_addident(L, b, NULL, name); }
    else luaL_error(L, "%s: bad group field '%s' (no such field in %s)", ctx, name, m->name);
  } else if (frag_kind(L, t)) {
    frag_expr(L, m, NULL, t, b, s, ctx, 0);
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
      if (n == 0 || table_shape(L, g) != 1)
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
    jn_Where w;
    if (lua_isnil(L, g))
      luaL_error(L, "%s: bad option 'having' (it filters groups: give 'group' too)", ctx);
    w.m = m;
    w.alias = NULL;
    w.b = b;
    w.s = s;
    w.ctx = ctx;
    w.path = 0;
    w.lhs = 0;
    w.having = 1;
    jn_buf_adds(L, b, " HAVING ");
    where_and(L, &w, lua_gettop(L), 0);
  }
  lua_pop(L, 2);
}

/* }====== */

/* {====== Running */

/*
** Step st to the end, pushing an array of instances (or, with one, the
** first instance or nil).  Returns 1, or the fail triple's 3.
*/
int jn_query_rows(lua_State *L, jn_Model *m, int modelidx, jn_St *st, const int *cols,
                  int ncols, int one, int nrec) {
  int rc, n = 0, mt, arr;
  jn_Conn *c = m->conn;
  luaL_getmetatable(L, JN_INST_MT);
  mt = lua_gettop(L);
  jn_inst_newlist(L, 0);
  arr = lua_gettop(L);
  while ((rc = jn_conn_step(L, c, st)) == SQLITE_ROW) {
    jn_inst_fromrow(L, m, modelidx, mt, st, cols, ncols, 0, nrec);
    lua_rawseti(L, arr, ++n);
    if (one) break;
  }
  if (rc == SQLITE_ROW) rc = SQLITE_DONE;   /* one: the first row is enough */
  lua_remove(L, mt);
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
  if (s->nextra == 0) return jn_query_rows(L, m, modelidx, st, s->cols, s->ncols, 0, nrec);
  luaL_getmetatable(L, JN_INST_MT);
  mt = lua_gettop(L);
  jn_inst_newlist(L, 0);
  arr = lua_gettop(L);
  while ((rc = jn_conn_step(L, c, st)) == SQLITE_ROW) {
    jn_inst_fromrow(L, m, modelidx, mt, st, s->cols, s->ncols, 0, nrec + s->nextra);
    lua_getuservalue(L, -1);
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
