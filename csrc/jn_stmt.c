/*
** jn_stmt.c: statements: the per-connection cache, binding values (already
** converted to their field's type by jn_value.c) and reading columns into
** Lua values.
** Stepping is the connection's (jn_conn_step in jn_conn.c), which checks the
** transaction state first.
**
** Statements a model or an association always runs live in "slots" of
** their C structures, prepared on first use.  Statements whose text
** depends on the call (a where clause) are looked up by their text in the
** connection's cache table.  Every statement is reset when it is acquired,
** so one that a raise left half-used cannot poison the next call; the
** connection finalizes them all when it closes.
*/
#include "jn.h"

/* Generic statements kept per connection before the cache is pruned. */
#define JN_CACHE_MAX 256

/* {====== Acquiring statements */

/*
** Start a fresh table for the values bound to the next logged statement.
** [-0, +0, m]
*/
static void log_reset(lua_State *L, jn_Conn *c) {
  lua_newtable(L);
  lua_rawseti(L, LUA_REGISTRYINDEX, c->params_ref);
}

/* Raise when the log function tries to run a statement on its own connection. */
static void check_not_logging(lua_State *L, jn_Conn *c) {
  if (c->inlog)
    luaL_error(L, "junction: the log function may not run statements on its own connection");
}

/*
** The statement in *slot, prepared from sql on first use, else made ready
** (reset if a raise left it running; every use binds all its parameters).
** Returns NULL with *rc set when SQLite cannot prepare it (no such table,
** say): a failure of the database, for the caller to return.
** [-0, +0, m]
*/

jn_St *jn_stmt_slot(lua_State *L, jn_Conn *c, jn_St **slot,
                           const char *sql, int *rc) {
  if (c->log_ref != LUA_NOREF) { check_not_logging(L, c); log_reset(L, c); }
  if (*slot != NULL) {
    /* Every use resets its statement when done; one still running was
    ** left by a raise in mid-step, and only that one needs the reset. */
    if (jn_e_busy(c->eng, *slot)) jn_e_reset(c->eng, *slot);
    *rc = SQLITE_OK;
    return *slot;
  }
  *rc = jn_e_prepare(c->eng, c->db, sql, strlen(sql), slot, NULL);
  if (*rc != SQLITE_OK) {
    *slot = NULL;
    return NULL;
  }
  return *slot;
}

/*
** Drop the cached statements that are not running, to bound the cache.
** [-0, +0, -]
*/
static void cache_prune(lua_State *L, jn_Conn *c, int cacheidx) {
  lua_pushnil(L);
  while (lua_next(L, cacheidx) != 0) {
    jn_St *st = (jn_St *)lua_touserdata(L, -1);
    lua_pop(L, 1);
    if (st != NULL && !jn_e_busy(c->eng, st)) {
      jn_e_finalize(c->eng, st);
      lua_pushvalue(L, -1);
      lua_pushnil(L);
      lua_rawset(L, cacheidx);       /* clearing a field during lua_next is allowed */
      c->ncached--;
    }
  }
}

/*
** The statement for sql (len bytes), from the connection's cache or newly
** prepared and cached.  NULL with *rc set when SQLite refuses it; NULL with
** *rc == SQLITE_OK when the text holds no statement at all.
** [-0, +0, m]
*/
jn_St *jn_stmt_cached(lua_State *L, jn_Conn *c, const char *sql, size_t len,
                             int *rc) {
  jn_St *st;
  lua_pushlstring(L, sql, len);
  st = jn_stmt_cachedat(L, c, lua_gettop(L), rc);
  lua_pop(L, 1);
  return st;
}

/*
** jn_stmt_cached for SQL text that is a Lua string at sqlidx already: a
** text the caller keeps is looked up without being copied or hashed again.
** [-0, +0, m]
*/
jn_St *jn_stmt_cachedat(lua_State *L, jn_Conn *c, int sqlidx, int *rc) {
  jn_St *st = NULL;
  int cacheidx;
  size_t len;
  const char *sql;
  if (sqlidx < 0) sqlidx = lua_gettop(L) + sqlidx + 1;
  if (c->log_ref != LUA_NOREF) { check_not_logging(L, c); log_reset(L, c); }
  lua_rawgeti(L, LUA_REGISTRYINDEX, c->cache_ref);
  cacheidx = lua_gettop(L);
  lua_pushvalue(L, sqlidx);
  lua_rawget(L, cacheidx);
  st = (jn_St *)lua_touserdata(L, -1);
  lua_pop(L, 1);
  if (st != NULL) {
    if (jn_e_busy(c->eng, st)) jn_e_reset(c->eng, st);   /* as in jn_stmt_slot */
    lua_pop(L, 1);
    *rc = SQLITE_OK;
    return st;
  }
  if (c->ncached >= JN_CACHE_MAX) cache_prune(L, c, cacheidx);
  sql = lua_tolstring(L, sqlidx, &len);
  *rc = jn_e_prepare(c->eng, c->db, sql, len, &st, NULL);
  if (*rc != SQLITE_OK || st == NULL) {
    lua_pop(L, 1);
    return NULL;
  }
  lua_pushvalue(L, sqlidx);
  lua_pushlightuserdata(L, st);
  lua_rawset(L, cacheidx);
  c->ncached++;
  lua_pop(L, 1);
  return st;
}

/*
** Finalize every statement of the connection (slots and cache alike) and
** empty the cache.  Called by close, before sqlite3_close_v2.
** [-0, +0, m]
*/
void jn_stmt_finalize_all(lua_State *L, jn_Conn *c) {
  int i;
  jn_e_finalize_all(c->eng, c->db);
  for (i = 0; i < JN_CS_COUNT; i++) c->st[i] = NULL;
  lua_newtable(L);
  lua_rawseti(L, LUA_REGISTRYINDEX, c->cache_ref);
  c->ncached = 0;
}

/* }====== */

/* {====== Binding */

/* Remember a bound value for the log hook. [-0, +0, m] */
static void log_param(lua_State *L, jn_Conn *c, int i, int idx) {
  if (idx < 0) idx = lua_gettop(L) + idx + 1;   /* before pushing the table */
  lua_rawgeti(L, LUA_REGISTRYINDEX, c->params_ref);
  lua_pushvalue(L, idx);
  lua_rawseti(L, -2, i);
  lua_pop(L, 1);
}

/*
** Bind the Lua value at idx to parameter i, as a value of field type type
** (JN_T_ANY for none).  Returns 0, or -1 when the value's Lua type cannot
** be stored (the caller raises, naming the field).
** [-0, +0, m]
*/
int jn_stmt_bindvalue(lua_State *L, jn_Conn *c, jn_St *st, int i, int idx, int type) {
  if (idx < 0) idx = lua_gettop(L) + idx + 1;
  switch (lua_type(L, idx)) {
    case LUA_TNIL:
      jn_e_bind_null(c->eng, st, i);
      break;
    case LUA_TBOOLEAN:
      jn_e_bind_int64(c->eng, st, i, lua_toboolean(L, idx));
      break;
    case LUA_TNUMBER:
      if (type == JN_T_DATE) {
        char ts[32];
        size_t n = jn_scalar_epochtext((double)lua_tonumber(L, idx), ts);
        if (n == 0) { jn_e_bind_null(c->eng, st, i); return -1; }   /* no date: the caller raises */
        jn_e_bind_text(c->eng, st, i, ts, n, 1);
      } else if (lua_isinteger(L, idx)) {
        sqlite3_int64 v = 0;
        jn_scalar_toi64(L, idx, &v);
        jn_e_bind_int64(c->eng, st, i, v);
      } else {
        jn_e_bind_double(c->eng, st, i, (double)lua_tonumber(L, idx));
      }
      break;
    case LUA_TSTRING: {
      size_t len;
      const char *s = lua_tolstring(L, idx, &len);
      sqlite3_int64 v;
      /* SQLITE_STATIC: the string stays on the Lua stack or in a table the
      ** caller holds until the step, and every statement is bound afresh
      ** before each step, so SQLite never reads a pointer that went stale. */
      if (type == JN_T_BLOB || (type == JN_T_GUESS && !jn_scalar_isutf8(s, len)))
        jn_e_bind_blob(c->eng, st, i, s, len);
      else if (type == JN_T_INTEGER && jn_scalar_parsei64(s, len, &v))
        jn_e_bind_int64(c->eng, st, i, v);
      else
        jn_e_bind_text(c->eng, st, i, s, len, 0);
      break;
    }
    default:
      /* never leave an older binding in place (it may point at a freed string) */
      jn_e_bind_null(c->eng, st, i);
      return -1;
  }
  if (c->log_ref != LUA_NOREF) log_param(L, c, i, idx);
  return 0;
}

void jn_stmt_bindi64(lua_State *L, jn_Conn *c, jn_St *st, int i, sqlite3_int64 v) {
  jn_e_bind_int64(c->eng, st, i, v);
  if (c->log_ref != LUA_NOREF) {
    jn_scalar_pushi64(L, v);
    log_param(L, c, i, -1);
    lua_pop(L, 1);
  }
}

/* Bind text that outlives the statement's next step (SQLITE_STATIC). */
void jn_stmt_bindtext(lua_State *L, jn_Conn *c, jn_St *st, int i, const char *s, size_t n) {
  jn_e_bind_text(c->eng, st, i, s, n, 0);
  if (c->log_ref != LUA_NOREF) {
    lua_pushlstring(L, s, n);
    log_param(L, c, i, -1);
    lua_pop(L, 1);
  }
}

/* }====== */

/* {====== Stepping and reading */


/*
** Push column col of the current row as the Lua value for a field of the
** given type: BOOLEAN columns come back as booleans.
** [-0, +1, m]
*/
void jn_stmt_pushcolumn(lua_State *L, const jn_Engine *e, jn_St *st, int col, int type) {
  size_t n;
  const void *p;
  switch (jn_e_coltype(e, st, col)) {
    case SQLITE_INTEGER: {
      sqlite3_int64 v = jn_e_col_int64(e, st, col);
      if (type == JN_T_BOOLEAN) lua_pushboolean(L, v != 0);
      else jn_scalar_pushi64(L, v);
      break;
    }
    case SQLITE_FLOAT: {
      double d = jn_e_col_double(e, st, col);
      if (type == JN_T_BOOLEAN) lua_pushboolean(L, d != 0.0);
      else lua_pushnumber(L, (lua_Number)d);
      break;
    }
    case SQLITE_NULL:
      lua_pushnil(L);
      break;
    case SQLITE_BLOB:
      p = jn_e_col_blob(e, st, col, &n);
      lua_pushlstring(L, (const char *)p, n);
      break;
    default:
      p = jn_e_col_text(e, st, col, &n);
      if (type == JN_T_JSON) {
        if (jn_json_decode(L, (const char *)p, n) != NULL)
          luaL_error(L, "junction: a JSON column holds text that is not JSON (%s)", lua_tostring(L, -1));
        if (jn_scalar_isnull(L, -1)) { lua_pop(L, 1); lua_pushnil(L); }   /* the text null: NULL */
      } else {
        lua_pushlstring(L, (const char *)p, n);
      }
      break;
  }
}

/* }====== */
