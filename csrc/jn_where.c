/*
** jn_where.c: the where compiler.  A `where` table (fields, operators,
** and/or/not, fragments and JSON paths as keys) becomes SQL text in a
** jn_Buf and values in a jn_Select's bind list; names are checked against
** the model and quoted, values are never spliced.  jn_where_having compiles
** a find's `having` the same way, where a key may also name an attribute's
** alias.
*/
#include "jn.h"

/* An IN list longer than this is bound as one JSON array, so a list of any
** length fits under SQLite's limit on variables and makes one SQL text. */
#define JN_IN_INLINE 32
/* Bound inline, a list stays under SQLite's default limit of 32766 variables. */
#define JN_IN_MAX 30000

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
int jn_where_shape(lua_State *L, int idx) {
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

/* {====== A JSON path on PostgreSQL */

/*
** PostgreSQL keeps a JSON field as text (docs/POSTGRES.md), so a path is
** read from the text cast to jsonb: #> gives the value as jsonb, #>> as
** text (JSON null being NULL, as a missing path), the path bound as one
** text[] ('{author,name}', '{tags,-1}').  SQLite's json_extract, which
** the where compiles to there, gives a typed value instead: a number, 1/0
** for true/false, a string's text, an object's or array's JSON text, NULL
** for null; and SQLite orders NULL < numbers < text.  The conditions below
** answer the same: a number (a boolean is bound as 1/0) is compared with
** the value as a number when that is a number or a boolean (as numeric, as
** double precision for a fraction) and is smaller than any string, object
** or array; a string is compared with the text of a string, object or
** array (byte order: COLLATE "C") and is larger than any number.
*/

/* Is the where's connection one whose JSON path is read by the code below? */
static int pgpath(const jn_Where *w) {
  return w->path != 0 && w->m->conn->dialect->json_jsonb;
}

/* Append the quoted element p[start..end) of a text[]. */
static void add_pathkey(luaL_Buffer *b, const char *p, size_t start, size_t end) {
  luaL_addchar(b, '"');
  for (; start < end; start++) {
    if (p[start] == '"' || p[start] == '\\') luaL_addchar(b, '\\');
    luaL_addchar(b, p[start]);
  }
  luaL_addchar(b, '"');
}

/*
** Push the path at idx ("$.a[#-1]", checked by junction.json) as the text
** of a text[] ('{"a","-1"}').  An index is a number of at most 10 digits
** (a larger one is past the end either way); [#-n] is -n, which jsonb
** counts from the end as SQLite does, and [#-0] is past the end.
*/
static void push_pathkeys(lua_State *L, int idx) {
  size_t n, i = 1, start, end;
  const char *p = lua_tolstring(L, idx, &n);
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  luaL_addchar(&b, '{');
  while (i < n) {
    if (i > 1) luaL_addchar(&b, ',');
    if (p[i] == '.' && p[i + 1] == '"') {               /* ."name" */
      start = i + 2;
      for (end = start; p[end] != '"'; end++) ;
      add_pathkey(&b, p, start, end);
      i = end + 1;
    } else if (p[i] == '.') {                             /* .name */
      start = i + 1;
      for (end = start; end < n && p[end] != '.' && p[end] != '['; end++) ;
      add_pathkey(&b, p, start, end);
      i = end;
    } else {                                              /* [n] or [#-n] */
      int neg = p[i + 1] == '#';
      double v = 0;
      char num[24];
      for (end = i + (neg ? 3 : 1); p[end] != ']'; end++) v = v * 10 + (p[end] - '0');
      if (v > 2147483647.0 || (neg && v == 0)) { v = 2147483647.0; neg = 0; }
      snprintf(num, sizeof num, "\"%s%.0f\"", neg ? "-" : "", v);
      luaL_addstring(&b, num);
      i = end + 1;
    }
  }
  luaL_addchar(&b, '}');
  luaL_pushresult(&b);
}

/* Append the path's value as jsonb (text 0) or as text (text 1), the path
** bound: ("col"::jsonb #> ?::text[]). */
static void pgpath_value(lua_State *L, const jn_Where *w, int f, int text) {
  jn_buf_adds(L, w->b, "(");
  jn_buf_addident(L, w->b, w->alias, w->m->f[f].col);
  jn_buf_adds(L, w->b, text ? "::jsonb #>> ?::text[])" : "::jsonb #> ?::text[])");
  push_pathkeys(L, w->path);
  jn_select_bind(L, w->s, -1);
  lua_pop(L, 1);
}

/* Append "jsonb_typeof(value) IN (kinds)". */
static void pgpath_typeof(lua_State *L, const jn_Where *w, int f, const char *kinds) {
  jn_buf_adds(L, w->b, "jsonb_typeof(");
  pgpath_value(L, w, f, 0);
  jn_buf_adds(L, w->b, ") IN (");
  jn_buf_adds(L, w->b, kinds);
  jn_buf_adds(L, w->b, ")");
}

#define PG_TEXTISH "'string', 'object', 'array'"
#define PG_NUMERIC "'number', 'boolean'"

/* Append the path's value as a number (number: numeric, or double
** precision when real is set; boolean: 1/0; else NULL) or as text (a
** string, object or array: its text, byte-ordered; else NULL). */
static void pgpath_as(lua_State *L, const jn_Where *w, int f, int number, int real) {
  jn_buf_adds(L, w->b, "(CASE ");
  if (number) {
    jn_buf_adds(L, w->b, "jsonb_typeof(");
    pgpath_value(L, w, f, 0);
    jn_buf_adds(L, w->b, ") WHEN 'number' THEN ");
    pgpath_value(L, w, f, 1);
    jn_buf_adds(L, w->b, real ? "::double precision WHEN 'boolean' THEN (" : "::numeric WHEN 'boolean' THEN (");
    pgpath_value(L, w, f, 1);
    jn_buf_adds(L, w->b, " = 'true')::int END)");
  } else {
    jn_buf_adds(L, w->b, "WHEN ");
    pgpath_typeof(L, w, f, PG_TEXTISH);
    jn_buf_adds(L, w->b, " THEN ");
    pgpath_value(L, w, f, 1);
    jn_buf_adds(L, w->b, " END) COLLATE \"C\"");
  }
}

/* Is the number on top a fraction (compared as double precision)? */
static int is_real(lua_State *L) {
  sqlite3_int64 v;
  return !jn_scalar_toi64(L, -1, &v);
}

/*
** "value op ?" (op: " = ?", " <> ?", " > ?", " >= ?", " < ?", " <= ?") for
** the value at val, as SQLite compares json_extract's: numbers with
** numbers, text with text, and every number below every text.
*/
static void pgpath_cmp(lua_State *L, const jn_Where *w, int f, int val, const char *op) {
  int number, more;
  push_value(L, w, f, val);
  number = lua_type(L, -1) == LUA_TNUMBER;
  /* the other kind satisfies <> and, for a number, > (text is larger), for text < */
  more = op[2] == '>' || (number ? op[1] == '>' : op[1] == '<');
  jn_buf_adds(L, w->b, "(");
  pgpath_as(L, w, f, number, number && is_real(L));
  jn_buf_adds(L, w->b, op);
  jn_select_bindt(L, w->s, -1, number ? JN_T_REAL : JN_T_TEXT);
  lua_pop(L, 1);
  if (more) {
    jn_buf_adds(L, w->b, " OR ");
    pgpath_typeof(L, w, f, number ? PG_TEXTISH : PG_NUMERIC);
  }
  jn_buf_adds(L, w->b, ")");
}

/* Append the guard of a negated condition: the path holds a value (not
** missing, not JSON null), as SQLite's NOT IN / NOT BETWEEN of NULL is NULL. */
static void pgpath_some(lua_State *L, const jn_Where *w, int f) {
  pgpath_value(L, w, f, 1);
  jn_buf_adds(L, w->b, " IS NOT NULL");
}

/*
** "value [NOT] IN list" for the list at list: its integers, fractions and
** strings each bound as one JSON array and compared as pgpath_cmp's "="
** does.  A string PostgreSQL text cannot hold (a NUL byte, not UTF-8)
** equals nothing and is left out.
*/
static void pgpath_in(lua_State *L, const jn_Where *w, int f, int list, int negate) {
  static const char *const cast[] = { "::numeric", "::double precision", "" };
  jn_Buf j[3];
  int i, g, n = (int)lua_rawlen(L, list), any = 0;
  if (n == 0) {   /* as where_in says it */
    jn_buf_adds(L, w->b, negate ? w->m->conn->dialect->every_row : w->m->conn->dialect->no_row);
    return;
  }
  for (g = 0; g < 3; g++) jn_buf_init(L, &j[g]);   /* 3 buffers on the stack */
  for (i = 1; i <= n; i++) {
    lua_rawgeti(L, list, i);
    push_value(L, w, f, lua_gettop(L));
    g = lua_type(L, -1) == LUA_TNUMBER ? is_real(L) : 2;
    if (g < 2 || json_safe(L, -1)) {
      double d = g == 1 ? (double)lua_tonumber(L, -1) : 0;
      jn_buf_adds(L, &j[g], j[g].n ? "," : "[");
      if (d - d != 0 && d == d) jn_buf_adds(L, &j[g], d > 0 ? "\"Infinity\"" : "\"-Infinity\"");
      else jn_select_addjson(L, &j[g], -1);
    }
    lua_pop(L, 2);
  }
  if (negate) {
    jn_buf_adds(L, w->b, "(");
    pgpath_some(L, w, f);
    jn_buf_adds(L, w->b, " AND NOT ");
  }
  jn_buf_adds(L, w->b, "(");
  for (g = 0; g < 3; g++) {
    if (j[g].n == 0) continue;
    jn_buf_adds(L, &j[g], "]");
    if (any++) jn_buf_adds(L, w->b, " OR ");
    jn_buf_adds(L, w->b, "COALESCE(");
    pgpath_as(L, w, f, g < 2, g == 1);
    jn_buf_adds(L, w->b, " IN (SELECT x");
    jn_buf_adds(L, w->b, cast[g]);
    jn_buf_adds(L, w->b, " FROM json_array_elements_text(?::json) AS x), FALSE)");
    lua_pushlstring(L, j[g].p, j[g].n);
    jn_select_bind(L, w->s, -1);
    lua_pop(L, 1);
  }
  if (!any) jn_buf_adds(L, w->b, "FALSE");
  jn_buf_adds(L, w->b, negate ? "))" : ")");
  lua_pop(L, 3);
}

/* "value [NOT] BETWEEN low AND high" for the pair at v: low <= value <= high
** as pgpath_cmp compares. */
static void pgpath_between(lua_State *L, const jn_Where *w, int f, int v, int negate) {
  if (negate) {
    jn_buf_adds(L, w->b, "(");
    pgpath_some(L, w, f);
    jn_buf_adds(L, w->b, " AND NOT ");
  }
  jn_buf_adds(L, w->b, "(COALESCE(");
  lua_rawgeti(L, v, 1);
  pgpath_cmp(L, w, f, lua_gettop(L), " >= ?");
  jn_buf_adds(L, w->b, ", FALSE) AND COALESCE(");
  lua_rawgeti(L, v, 2);
  pgpath_cmp(L, w, f, lua_gettop(L), " <= ?");
  jn_buf_adds(L, w->b, negate ? ", FALSE)))" : ", FALSE))");
  lua_pop(L, 2);
}

/* }====== */

/* Append field f as the condition's left side: alias."col", or for a JSON
** path json_extract(alias."col", ?) with the path bound (so it goes first). */
static void where_col(lua_State *L, const jn_Where *w, int f) {
  if (w->lhs != 0) {
    jn_frag_expr(L, w->m, w->alias, w->lhs, w->b, w->s, w->ctx, 0);
    return;
  }
  if (w->path == 0) {
    jn_buf_addident(L, w->b, w->alias, w->m->f[f].col);
    return;
  }
  if (pgpath(w)) { pgpath_value(L, w, f, 1); return; }   /* its text: LIKE, IS NULL */
  jn_buf_adds(L, w->b, "json_extract(");
  jn_buf_addident(L, w->b, w->alias, w->m->f[f].col);
  jn_buf_adds(L, w->b, ", ?)");
  jn_select_bind(L, w->s, w->path);
}

static void where_and(lua_State *L, const jn_Where *w, int t, int depth);

/*
** The value on top (as push_bindable left it) as a number field f compares
** it: 1 it stays, 2 it was replaced by the number a decimal string spells
** (SQLite's numeric affinity reads "1.0" as 1), 0 it equals no value of the
** field (text that spells no number, a fraction for an INTEGER; text that
** is no UUID or YYYY-MM-DD for a UUID or DATEONLY): SQLite compares and
** finds none, PostgreSQL refuses the cast and fails the whole statement, so
** an in list leaves it out, and = and <> say so, on both.
** [-0, +0, m]
*/
static int in_value(lua_State *L, jn_Model *m, int f) {
  int type = m->f[f].type;
  sqlite3_int64 v;
  size_t n, i;
  const char *s;
  double d;
  if (lua_isnil(L, -1)) return 1;
  if (type == JN_T_UUID || type == JN_T_DATEONLY) {   /* what push_bindable could not convert */
    int r = jn_value_conv(L, -1, type, 0);
    lua_pop(L, 1);
    return r;
  }
  if (type != JN_T_INTEGER && type != JN_T_REAL && type != JN_T_BOOLEAN) return 1;
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

/*
** Push the value at idx as a where compares it with field f (as the field
** stores it: "1.0" is 1 for an INTEGER) and return 1; or push nothing and
** return 0 when no row's f can equal it ("x" or 1.5 for an INTEGER).
** Raises for what cannot be compared, naming ctx.
** [-0, +(0|1), e]
*/
int jn_where_keyvalue(lua_State *L, jn_Model *m, int f, int idx, const char *ctx) {
  push_bindable(L, m, f, idx, ctx);
  if (in_value(L, m, f) != 0) return 1;
  lua_pop(L, 1);
  return 0;
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

/* Is the list at list (n values) bound inline, one ? each?  Yes when it is
** short; else when a value cannot travel in JSON (JSON carries numbers and
** clean text). */
static int in_inline(lua_State *L, const jn_Where *w, int f, int list, int n) {
  int i, safe = FTYPE(w, f) != JN_T_BLOB && FTYPE(w, f) != JN_T_DATE;
  for (i = 1; safe && i <= n && n > JN_IN_INLINE; i++) {
    lua_rawgeti(L, list, i);
    push_value(L, w, f, lua_gettop(L));
    safe = json_safe(L, -1);
    lua_pop(L, 2);
  }
  return n <= JN_IN_INLINE || !safe;
}

/* The n values of the list at list bound as one JSON array, read by the
** dialect's subquery. */
static void in_json(lua_State *L, const jn_Where *w, int f, int list, int n) {
  int i;
  jn_Buf j;
  jn_buf_init(L, &j);
  jn_buf_addl(L, &j, "[", 1);
  for (i = 1; i <= n; i++) {
    lua_rawgeti(L, list, i);
    push_value(L, w, f, lua_gettop(L));
    if (i > 1) jn_buf_addl(L, &j, ",", 1);
    jn_select_addjson(L, &j, -1);
    lua_pop(L, 2);
  }
  jn_buf_addl(L, &j, "]", 1);
  lua_pushlstring(L, j.p, j.n);
  jn_select_bind(L, w->s, -1);
  lua_pop(L, 2);
  jn_buf_adds(L, w->b, jn_select_jsonin(w->m->conn, FTYPE(w, f)));
}

/* "col IN (?, ...)" or, for a long list, "col IN (SELECT value FROM json_each(?))". */
static void where_in(lua_State *L, const jn_Where *w, int f, int list, int negate) {
  jn_Model *m = w->m;
  const char *ctx = w->ctx;
  int i, n, inline_, pushed = 0;
  if (!lua_istable(L, list))
    luaL_error(L, "%s: bad where for field '%s' (%s expects an array, got %s)", ctx, FNAME(w, f),
               negate ? "notIn" : "in", luaL_typename(L, list));
  if (jn_where_shape(L, list) < 0)
    luaL_error(L, "%s: bad where for field '%s' (%s expects a list: keys 1..n, no others)", ctx,
               FNAME(w, f), negate ? "notIn" : "in");
  if (pgpath(w)) { pgpath_in(L, w, f, list, negate); return; }
  if (f >= 0 && lua_rawlen(L, list) > 0) list = in_held(L, m, f, list, ctx, &pushed);
  n = (int)lua_rawlen(L, list);
  if (n == 0) {   /* nothing is IN an empty list */
    jn_buf_adds(L, w->b, negate ? m->conn->dialect->every_row : m->conn->dialect->no_row);
    if (pushed) lua_pop(L, 1);
    return;
  }
  inline_ = in_inline(L, w, f, list, n);
  if (inline_ && n > JN_IN_MAX)
    luaL_error(L, "%s: bad where for field '%s' (an in list of more than %d values needs numbers or UTF-8 text without NUL bytes)",
               ctx, FNAME(w, f), JN_IN_MAX);
  where_col(L, w, f);
  jn_buf_adds(L, w->b, negate ? " NOT IN (" : " IN (");
  if (inline_) {
    for (i = 1; i <= n; i++) {
      lua_rawgeti(L, list, i);
      push_value(L, w, f, lua_gettop(L));
      jn_select_bindt(L, w->s, -1, FTYPE(w, f));
      lua_pop(L, 2);
      jn_buf_adds(L, w->b, i > 1 ? ", ?" : "?");
    }
  } else {
    in_json(L, w, f, list, n);
  }
  jn_buf_adds(L, w->b, ")");
  if (pushed) lua_pop(L, 1);
}

/* "col OP ?" */
static void where_cmp(lua_State *L, const jn_Where *w, int f, int val, const char *op) {
  if (pgpath(w) && !jn_frag_kind(L, val) && op[1] != 'L' && op[1] != 'N') {   /* not (NOT) LIKE */
    pgpath_cmp(L, w, f, val, op);
    return;
  }
  if (jn_frag_kind(L, val)) {   /* { views = { gt = junction.col("likes") } }: op then the expression */
    where_col(L, w, f);
    jn_buf_addl(L, w->b, op, strlen(op) - 1);
    jn_frag_expr(L, w->m, w->alias, val, w->b, w->s, w->ctx, 0);
    return;
  }
  push_value(L, w, f, val);
  if (f >= 0 && w->path == 0 && in_value(L, w->m, f) == 0 && (op[1] == '=' || op[2] == '>')) {
    /* = and <> of a value a number field cannot hold ("x", 1.5 for an INTEGER): equal
    ** to no row (unknown for a NULL), as SQLite finds; PostgreSQL would refuse it */
    jn_buf_addl(L, w->b, "(", 1);
    where_col(L, w, f);
    jn_buf_adds(L, w->b, op[1] == '=' ? " IS NULL AND NULL)" : " IS NOT NULL OR NULL)");
    lua_pop(L, 1);
    return;
  }
  where_col(L, w, f);
  jn_select_bindt(L, w->s, -1, FTYPE(w, f));
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
    if (pgpath(w)) { pgpath_between(L, w, f, v, op == 12); return; }
    where_col(L, w, f);
    jn_buf_adds(L, b, op == 11 ? " BETWEEN ? AND ?" : " NOT BETWEEN ? AND ?");
    lua_rawgeti(L, v, 1);
    push_value(L, w, f, lua_gettop(L));
    jn_select_bindt(L, w->s, -1, FTYPE(w, f));
    lua_rawgeti(L, v, 2);
    push_value(L, w, f, lua_gettop(L));
    jn_select_bindt(L, w->s, -1, FTYPE(w, f));
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
  n = jn_where_shape(L, val);
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
  switch (jn_where_shape(L, list)) {
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
  pw.path = lua_gettop(L);
  where_field(L, &pw, f, val);
  lua_pop(L, 3);
}


/*
** The conditions on the fragment key at key (junction.col, fn or literal)
** given by the value at val.  A column of an association (col("Genres.name"))
** holds when some associated row has it: EXISTS (SELECT 1 FROM ... AND ...).
*/
static void where_fragkey(lua_State *L, const jn_Where *w, int key, int val) {
  jn_Where kw = *w;
  if (jn_frag_kind(L, key) == JN_FRAG_COL) {
    const char *assoc, *field, *name;
    size_t alen, len;
    int f = jn_frag_colfield(L, w->m, key, &assoc, &alen, &field, w->ctx);
    if (f == -2) luaL_error(L, "%s: bad where key (junction.col(\"*\") is no column)", w->ctx);
    if (f >= 0) { kw.lhs = 0; where_field(L, &kw, f, val); return; }
    jn_frag_parts(L, key, &name, &len);
    lua_pop(L, 1);   /* name stays anchored in the key's uservalue */
    if (w->s->sub == NULL || w->alias != NULL) jn_frag_noassoc(L, name, w->ctx);
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
      } else if (w->having && jn_select_aliased(L, w->s, k)) {   /* an attribute's alias: its expression */
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
    } else if (jn_frag_kind(L, -2)) {   /* [junction.fn(...)] = v, [junction.col("Genres.name")] = v */
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

/* Compile the table at idx for m into b and s, as a where (having 0) or a
** having (1). */
static void where_run(lua_State *L, jn_Model *m, int idx, const char *alias, jn_Buf *b,
                      jn_Select *s, const char *ctx, int having) {
  jn_Where w;
  w.m = m;
  w.alias = alias;
  w.b = b;
  w.s = s;
  w.ctx = ctx;
  w.path = 0;
  w.lhs = 0;
  w.having = having;
  where_and(L, &w, idx, 0);
}

/*
** Append the conditions of the where table at whereidx (alias."col" when an
** alias is given) and their values to s.
*/
void jn_where_compile(lua_State *L, jn_Model *m, int whereidx, const char *alias, jn_Buf *b,
                      jn_Select *s, const char *ctx) {
  where_run(L, m, whereidx, alias, b, s, ctx, 0);
}

/*
** Append the conditions of the having table at havingidx: a where table
** whose keys may also name an attribute's alias (s->attrs_idx).
*/
void jn_where_having(lua_State *L, jn_Model *m, int havingidx, jn_Buf *b, jn_Select *s,
                     const char *ctx) {
  where_run(L, m, havingidx, NULL, b, s, ctx, 1);
}
