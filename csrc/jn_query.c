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
void jn_bind_list(lua_State *L, jn_Conn *c, jn_St *st, const jn_Select *s) {
  int i;
  for (i = 1; i <= s->nbind; i++) {
    int type;
    lua_rawgeti(L, s->binds_idx, -i);
    type = lua_isnil(L, -1) ? JN_T_ANY : (int)lua_tointeger(L, -1);
    lua_rawgeti(L, s->binds_idx, i);
    if (jn_bind_value(L, c, st, i, -1, type) != 0)   /* the compiler checked them all */
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
  return strlen(s) == n && jn_is_utf8(s, n);
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
  if (t == LUA_TNUMBER && m->f[f].type == JN_T_DATE && !jn_epoch_ok((double)lua_tonumber(L, idx)))
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
void jn_json_add(lua_State *L, jn_Buf *b, int idx) {
  char tmp[40];
  switch (lua_type(L, idx)) {
    case LUA_TNUMBER:
      if (lua_isinteger(L, idx)) {
        sqlite3_int64 v = 0;
        jn_to_i64(L, idx, &v);
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
} jn_Where;

/* Append field f as the condition's left side: alias."col", or for a JSON
** path json_extract(alias."col", ?) with the path bound (so it goes first). */
static void where_col(lua_State *L, const jn_Where *w, int f) {
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

/* "col IN (?, ...)" or, for a long list, "col IN (SELECT value FROM json_each(?))". */
static void where_in(lua_State *L, const jn_Where *w, int f, int list, int negate) {
  jn_Model *m = w->m;
  jn_Buf *b = w->b;
  const char *ctx = w->ctx;
  int i, n, inline_;
  if (!lua_istable(L, list))
    luaL_error(L, "%s: bad where for field '%s' (%s expects an array, got %s)", ctx, m->f[f].name,
               negate ? "notIn" : "in", luaL_typename(L, list));
  if (table_shape(L, list) < 0)
    luaL_error(L, "%s: bad where for field '%s' (%s expects a list: keys 1..n, no others)", ctx,
               m->f[f].name, negate ? "notIn" : "in");
  n = (int)lua_rawlen(L, list);
  if (n == 0) {   /* nothing is IN an empty list */
    jn_buf_adds(L, b, negate ? m->conn->dialect->every_row : m->conn->dialect->no_row);
    return;
  }
  {   /* JSON carries numbers and clean text; anything else is bound inline */
    int safe = m->f[f].type != JN_T_BLOB && m->f[f].type != JN_T_DATE;
    for (i = 1; safe && i <= n && n > JN_IN_INLINE; i++) {
      lua_rawgeti(L, list, i);
      push_bindable(L, m, f, lua_gettop(L), ctx);
      safe = json_safe(L, -1);
      lua_pop(L, 2);
    }
    inline_ = n <= JN_IN_INLINE || !safe;
  }
  if (inline_ && n > JN_IN_MAX)
    luaL_error(L, "%s: bad where for field '%s' (an in list of more than %d values needs numbers or UTF-8 text without NUL bytes)",
               ctx, m->f[f].name, JN_IN_MAX);
  where_col(L, w, f);
  jn_buf_adds(L, b, negate ? " NOT IN (" : " IN (");
  if (inline_) {
    for (i = 1; i <= n; i++) {
      lua_rawgeti(L, list, i);
      push_bindable(L, m, f, lua_gettop(L), ctx);
      jn_query_bindt(L, w->s, -1, m->f[f].type);
      lua_pop(L, 2);
      jn_buf_adds(L, b, i > 1 ? ", ?" : "?");
    }
  } else {
    jn_Buf j;
    jn_buf_init(L, &j);
    jn_buf_addl(L, &j, "[", 1);
    for (i = 1; i <= n; i++) {
      lua_rawgeti(L, list, i);
      push_bindable(L, m, f, lua_gettop(L), ctx);
      if (i > 1) jn_buf_addl(L, &j, ",", 1);
      jn_json_add(L, &j, -1);
      lua_pop(L, 2);
    }
    jn_buf_addl(L, &j, "]", 1);
    lua_pushlstring(L, j.p, j.n);
    jn_query_bind(L, w->s, -1);
    lua_pop(L, 2);
    jn_buf_adds(L, b, jn_query_jsonin(m->conn, m->f[f].type));
  }
  jn_buf_adds(L, b, ")");
}

/* "col OP ?" */
static void where_cmp(lua_State *L, const jn_Where *w, int f, int val, const char *op) {
  jn_Model *m = w->m;
  where_col(L, w, f);
  push_bindable(L, m, f, val, w->ctx);
  jn_query_bindt(L, w->s, -1, m->f[f].type);
  lua_pop(L, 1);
  jn_buf_adds(L, w->b, op);
}

/* The condition of operator op (ops[op], named k) on field f with the
** value at v. */
static void where_op(lua_State *L, const jn_Where *w, int f, int op, const char *k, int v) {
  static const char *const sqlop[] = {
    " = ?", " <> ?", " > ?", " >= ?", " < ?", " <= ?"
  };
  jn_Model *m = w->m;
  jn_Buf *b = w->b;
  const char *ctx = w->ctx;
  if (op <= 1 && jn_value_isnull(L, v)) {   /* eq / ne junction.null: IS [NOT] NULL */
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
      luaL_error(L, "%s: bad where for field '%s' (%s expects { low, high })", ctx, m->f[f].name, k);
    where_col(L, w, f);
    jn_buf_adds(L, b, op == 11 ? " BETWEEN ? AND ?" : " NOT BETWEEN ? AND ?");
    lua_rawgeti(L, v, 1);
    push_bindable(L, m, f, lua_gettop(L), ctx);
    jn_query_bindt(L, w->s, -1, m->f[f].type);
    lua_rawgeti(L, v, 2);
    push_bindable(L, m, f, lua_gettop(L), ctx);
    jn_query_bindt(L, w->s, -1, m->f[f].type);
    lua_pop(L, 4);
  } else {
    if (!lua_isboolean(L, v))
      luaL_error(L, "%s: bad where for field '%s' (isNull expects a boolean)", ctx, m->f[f].name);
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
  jn_Model *m = w->m;
  jn_Buf *b = w->b;
  const char *ctx = w->ctx;
  int n = 0;
  if (jn_value_isnull(L, val)) {   /* { text = junction.null }: IS NULL */
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
               m->f[f].name);
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
                 ctx, k ? k : luaL_typename(L, -2), m->f[f].name);
    if (n++) jn_buf_adds(L, b, " AND ");
    where_op(L, w, f, op, k, v);
    lua_pop(L, 1);
  }
  if (n == 0)   /* { id = { eq = params.id } } with no id */
    luaL_error(L, "%s: bad where for field '%s' (an empty operator table: %s)", ctx,
               m->f[f].name, EMPTY_WHY);
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
  f = jn_model_fieldname(w->m, lua_tostring(L, -2));
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
      int f = jn_model_field(L, w->m, -2);
      if (f >= 0) {
        where_field(L, w, f, v);
      } else if (strcmp(k, "and") == 0 || strcmp(k, "_and") == 0) {
        where_list(L, w, v, " AND ", depth);
      } else if (strcmp(k, "or") == 0 || strcmp(k, "_or") == 0) {
        where_list(L, w, v, " OR ", depth);
      } else if (strcmp(k, "not") == 0 || strcmp(k, "_not") == 0) {
        jn_buf_adds(L, b, "NOT ");
        where_and(L, w, v, depth + 1);
      } else {
        luaL_error(L, "%s: bad where field '%s' (no such field in %s)", ctx, k, w->m->name);
      }
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
  where_and(L, &w, whereidx, 0);
}

/* }====== */

/* {====== order, limit, offset, attributes */

/* One order term: "name", "name DESC", or { "name", "DESC" }. */
static void order_term(lua_State *L, jn_Model *m, int t, const char *alias, jn_Buf *b,
                       const char *ctx) {
  char name[80];
  const char *dir = NULL, *sp;
  int f;
  if (lua_type(L, t) == LUA_TSTRING) {
    const char *s = lua_tostring(L, t);
    size_t n;
    sp = strchr(s, ' ');
    n = sp ? (size_t)(sp - s) : strlen(s);
    if (n >= sizeof name) n = sizeof name - 1;
    memcpy(name, s, n);
    name[n] = '\0';
    if (sp) dir = sp + 1;
  } else if (lua_istable(L, t)) {
    lua_rawgeti(L, t, 1);
    lua_rawgeti(L, t, 2);
    if (lua_type(L, -2) != LUA_TSTRING)
      luaL_error(L, "%s: bad order (field name expected in { name, direction })", ctx);
    snprintf(name, sizeof name, "%s", lua_tostring(L, -2));
    if (!lua_isnil(L, -1) && lua_type(L, -1) != LUA_TSTRING)
      luaL_error(L, "%s: bad order direction (string expected, got %s)", ctx, luaL_typename(L, -1));
    dir = lua_tostring(L, -1);   /* a string, so anchored in the order table */
    lua_pop(L, 2);
  } else {
    luaL_error(L, "%s: bad order (string or table expected, got %s)", ctx, luaL_typename(L, t));
    return;
  }
  f = jn_model_fieldname(m, name);
  if (f < 0) luaL_error(L, "%s: bad order field '%s' (no such field in %s)", ctx, name, m->name);
  jn_buf_addident(L, b, alias, m->f[f].name);
  if (dir != NULL) {
    if (sqlite3_stricmp(dir, "asc") == 0) jn_buf_adds(L, b, " ASC");
    else if (sqlite3_stricmp(dir, "desc") == 0) jn_buf_adds(L, b, " DESC");
    else luaL_error(L, "%s: bad order direction '%s' (ASC or DESC)", ctx, dir);
  }
}

/* Append ORDER BY, LIMIT and OFFSET from the options table at optsidx. */
void jn_query_tail(lua_State *L, jn_Model *m, int optsidx, const char *alias, jn_Buf *b,
                   jn_Select *s, const char *ctx) {
  int has_limit = 0;
  if (!lua_istable(L, optsidx)) return;
  jn_optfield(L, optsidx, "order");
  if (!lua_isnil(L, -1)) {
    int o = lua_gettop(L);
    jn_buf_adds(L, b, " ORDER BY ");
    if (lua_istable(L, o)) {
      int i, n = (int)lua_rawlen(L, o);
      /* { "name", "DESC" } is one term; anything else is a list of terms */
      lua_rawgeti(L, o, 2);
      if (n == 2 && lua_type(L, -1) == LUA_TSTRING &&
          (sqlite3_stricmp(lua_tostring(L, -1), "asc") == 0 ||
           sqlite3_stricmp(lua_tostring(L, -1), "desc") == 0)) {
        lua_pop(L, 1);
        order_term(L, m, o, alias, b, ctx);
      } else {
        lua_pop(L, 1);
        if (n == 0) luaL_error(L, "%s: bad order (empty)", ctx);
        for (i = 1; i <= n; i++) {
          lua_rawgeti(L, o, i);
          if (i > 1) jn_buf_adds(L, b, ", ");
          order_term(L, m, lua_gettop(L), alias, b, ctx);
          lua_pop(L, 1);
        }
      }
    } else {
      order_term(L, m, o, alias, b, ctx);
    }
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

/*
** Append the selected columns (opts.attributes, the key always among them;
** every field without) and record which field each one fills in s->cols.
*/
void jn_query_columns(lua_State *L, jn_Model *m, int optsidx, const int *link, int nlink,
                      const char *alias, jn_Buf *b, jn_Select *s, const char *ctx) {
  int i, j, n = 0, k = 0, haspk = 0;
  if (lua_istable(L, optsidx)) {
    jn_optfield(L, optsidx, "attributes");
    if (!lua_isnil(L, -1)) {
      int a = lua_gettop(L);
      if (!lua_istable(L, a))
        luaL_error(L, "%s: bad option 'attributes' (array of field names expected)", ctx);
      n = (int)lua_rawlen(L, a);
      s->cols = (int *)lua_newuserdata(L, (size_t)(n + 1 + m->nfields) * sizeof(int));
      s->cols_idx = lua_gettop(L);
      for (i = 1; i <= n; i++) {
        int f;
        lua_rawgeti(L, a, i);
        f = lua_type(L, -1) == LUA_TSTRING ? jn_model_field(L, m, -1) : -1;
        if (f < 0)
          luaL_error(L, "%s: bad attribute '%s' (no such field in %s)", ctx,
                     luaL_tolstring(L, -1, NULL), m->name);
        lua_pop(L, 1);
        if (f == m->pk) haspk = 1;
        s->cols[k++] = f;
      }
      if (!haspk) s->cols[k++] = m->pk;
      for (j = 0; j < nlink; j++) {   /* the keys the caller's includes link by */
        for (i = 0; i < k && s->cols[i] != link[j]; i++) {}
        if (i == k) s->cols[k++] = link[j];
      }
      s->ncols = k;
      lua_replace(L, a);   /* keep the userdata where attributes was */
      s->cols_idx = a;
      for (i = 0; i < k; i++) {
        if (i) jn_buf_adds(L, b, ", ");
        jn_buf_addident(L, b, alias, m->f[s->cols[i]].name);
      }
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
  if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
    int k = jn_pushfail(L, c, rc);
    jn_e_reset(c->eng, st);
    return k;
  }
  jn_e_reset(c->eng, st);
  lua_remove(L, mt);
  return 1;
}

/* }====== */
