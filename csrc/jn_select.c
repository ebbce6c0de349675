/*
** jn_select.c: the values a compiled query binds (jn_Select's bind list):
** starting it, appending values (with their field type when it matters),
** binding them to a statement, and a long IN list's values as one JSON
** array (jn_select_addjson, and the dialect's subquery that reads it).
** jn_select_aliased finds an attribute by its alias, for where, order and
** group.  Below the fragments, the where compiler and jn_query.c.
*/
#include "jn.h"
#include <stdio.h>

/* Start an empty bind list (pushes it). */
void jn_select_init(lua_State *L, jn_Select *s) {
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
  s->eqf = -1;
  s->eqalias = s->eqcol = NULL;
}

/* Append the value at idx to the bind list. */
void jn_select_bind(lua_State *L, jn_Select *s, int idx) {
  lua_pushvalue(L, idx);
  lua_rawseti(L, s->binds_idx, ++s->nbind);
}

/* Append the value at idx, to be bound as a value of field type type (a
** BLOB stays bytes, a number for a DATE becomes its UTC text). */
void jn_select_bindt(lua_State *L, jn_Select *s, int idx, int type) {
  jn_select_bind(L, s, idx);
  if (type == JN_T_BLOB || type == JN_T_DATE) {
    lua_pushinteger(L, type);
    lua_rawseti(L, s->binds_idx, -s->nbind);
  }
}

/* Bind the values of s to parameters 1..nbind, each with its type. */
void jn_select_bindlist(lua_State *L, jn_Conn *c, jn_St *st, const jn_Select *s) {
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

/* The subquery listing a bound JSON array's values as type (JN_T_*). */
const char *jn_select_jsonin(jn_Conn *c, int type) {
  const char *q = type >= 0 && type < JN_T_ANY ? c->dialect->json_in[type] : NULL;
  return q != NULL ? q : c->dialect->json_in[JN_T_TEXT];
}

/* Append a Lua value as JSON (for json_each): numbers, strings, booleans. */
void jn_select_addjson(lua_State *L, jn_Buf *b, int idx) {
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

/*
** The attribute of s->attrs_idx aliased name, pushed (a field name or a
** fragment), or nothing and 0.  [-0, +(0|1), -]
*/
int jn_select_aliased(lua_State *L, const jn_Select *s, const char *name) {
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
