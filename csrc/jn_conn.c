/*
** jn_conn.c: the connection: open and close, pragmas, the raw way out
** (exec and query), the transaction primitives that lua/junction's
** db:transaction is built on, and jn_atomic, which makes every
** multi-statement write all or nothing.
*/
#include "jn.h"
#include <stdlib.h>

static const char *const conn_sql[JN_CS_COUNT] = {
  "BEGIN IMMEDIATE", "BEGIN DEFERRED", "BEGIN EXCLUSIVE", "COMMIT", "ROLLBACK",
  "SAVEPOINT jn_tx", "RELEASE jn_tx", "ROLLBACK TO jn_tx",
  "SAVEPOINT jn_w", "RELEASE jn_w", "ROLLBACK TO jn_w"
};

/* {====== Checking */

static jn_Conn *to_conn(lua_State *L, int idx) {
  return (jn_Conn *)luaL_checkudata(L, idx, JN_CONN_MT);
}

void jn_conn_checkopen(lua_State *L, jn_Conn *c) {
  if (c->db == NULL) luaL_error(L, "attempt to use a closed connection");
}

/* The open connection at idx; raises when it is not one or is closed. */
jn_Conn *jn_conn_check(lua_State *L, int idx) {
  jn_Conn *c = to_conn(L, idx);
  jn_conn_checkopen(L, c);
  return c;
}

/*
** Call the Lua function below nargs arguments on the stack: a log or
** defaultValue function, user code that runs in the middle of an operation.
** While it runs the connection cannot be closed (the operation still holds
** its statements), and the log function, called between a statement's
** binding and its step, may not run statements on the connection.
** [-(nargs+1), +nresults, e]
*/
void jn_conn_callback(lua_State *L, jn_Conn *c, int nargs, int nresults, int log) {
  int status;
  c->incall++;
  c->inlog += log;
  status = lua_pcall(L, nargs, nresults, 0);
  c->incall--;
  c->inlog -= log;
  if (status != LUA_OK) lua_error(L);
}

/* }====== */

/* {====== Atomic writes */

/* Run one of the connection's own statements. [-0, +0, e] */
static int run_own(lua_State *L, jn_Conn *c, int which) {
  int rc;
  sqlite3_stmt *st = jn_stmt_slot(L, c, &c->st[which], conn_sql[which], &rc);
  if (st == NULL) return rc;
  c->own = 1;   /* not subject to jn_conn_txcheck: these make and end transactions */
  rc = jn_stmt_run(L, c, st);
  c->own = 0;
  return rc;
}

/*
** Inside db:transaction, may this coroutine run a statement?  Not when the
** transaction's coroutine has yielded and another one runs meanwhile (two
** OpenResty requests on one connection): its statements would join that
** transaction and vanish with its rollback.  A coroutine the owner itself
** resumed is fine: it runs inside the transaction's extent.  And not when
** SQLite has already rolled the transaction back by itself (after a full
** disk, say: what follows would commit on its own).  Returns SQLITE_OK, or
** a code with c->why set for jn_pushfail.
*/
int jn_conn_txcheck(lua_State *L, jn_Conn *c) {
  if (c->txdepth == 0) return SQLITE_OK;
  if (c->owner != L && lua_status(c->owner) == LUA_YIELD) {
    c->why = "the connection is inside the transaction of a coroutine that has yielded";
    return SQLITE_BUSY;
  }
  if (sqlite3_get_autocommit(c->db)) {
    c->why = "the transaction was rolled back by an earlier error; nothing more is written until db:transaction returns";
    return SQLITE_ABORT;
  }
  return SQLITE_OK;
}

/*
** Undo (ok == 0) or keep (ok != 0) what was written under mode.  Rolling
** back ignores its own failures: SQLite may already have rolled back.
*/
static int write_end(lua_State *L, jn_Conn *c, int mode, int ok) {
  int rc = SQLITE_OK;
  if (mode == JN_W_TX) {
    if (ok) rc = run_own(L, c, JN_CS_COMMIT);
    if (!ok || rc != SQLITE_OK) {
      if (!sqlite3_get_autocommit(c->db)) run_own(L, c, JN_CS_ROLLBACK);
    }
  } else if (mode == JN_W_SAVEPOINT) {
    if (!ok) run_own(L, c, JN_CS_WROLLBACK_TO);
    rc = run_own(L, c, JN_CS_WRELEASE);
  }
  return rc;
}

/*
** Called by an atomic body before its second write: from here on the
** writes need a transaction (outside one) or a savepoint (inside one).
*/
int jn_write_guard(lua_State *L, jn_Write *w) {
  int rc;
  if (w->mode != JN_W_NONE) return SQLITE_OK;
  if (sqlite3_get_autocommit(w->c->db)) {
    rc = run_own(L, w->c, JN_CS_BEGIN);
    if (rc == SQLITE_OK) w->mode = JN_W_TX;
  } else {
    rc = run_own(L, w->c, JN_CS_WSAVE);
    if (rc == SQLITE_OK) w->mode = JN_W_SAVEPOINT;
  }
  return rc;
}

/*
** Run body (a closure over the calling C function's first nup upvalues)
** with the stack [jn_Write, args...] under lua_pcall, so that any
** raise or failure inside it rolls back what it wrote: the cjson.safe shape.
** readfirst: the body reads before it writes, so outside a transaction the
** read must already be inside one (BEGIN IMMEDIATE, which takes the write
** lock at once and so never meets SQLITE_BUSY half-way).
** The body returns its results; a first result of nil means failure (nil,
** message, code), and everything is rolled back.  A raise is re-raised after
** the rollback.
** [-(n), +r, e]
*/
int jn_atomic(lua_State *L, jn_Conn *c, lua_CFunction body, int readfirst, int nup) {
  jn_Write w;
  int nargs = lua_gettop(L), status, rc, i;
  w.c = c;
  w.mode = JN_W_NONE;
  if ((rc = jn_conn_txcheck(L, c)) != SQLITE_OK) return jn_pushfail(L, c, rc);
  if (readfirst && sqlite3_get_autocommit(c->db)) {
    rc = run_own(L, c, JN_CS_BEGIN);
    if (rc != SQLITE_OK) return jn_pushfail(L, c, rc);
    w.mode = JN_W_TX;
  }
  for (i = 1; i <= nup; i++) lua_pushvalue(L, lua_upvalueindex(i));
  lua_pushcclosure(L, body, nup);   /* the body sees the caller's upvalues */
  lua_insert(L, 1);
  lua_pushlightuserdata(L, &w);
  lua_insert(L, 2);
  status = lua_pcall(L, nargs + 1, LUA_MULTRET, 0);
  if (status != LUA_OK) {
    write_end(L, c, w.mode, 0);
    return lua_error(L);
  }
  if (lua_gettop(L) == 0 || lua_isnil(L, 1)) {
    write_end(L, c, w.mode, 0);
    return lua_gettop(L);
  }
  rc = write_end(L, c, w.mode, 1);
  if (rc != SQLITE_OK) {
    lua_settop(L, 0);
    return jn_pushfail(L, c, rc);
  }
  return lua_gettop(L);
}

/* }====== */

/* {====== Opening and closing */

static const char *const open_opts[] = {
  "busy_timeout", "foreign_keys", "journal_mode", "synchronous", "temp_store", "log", NULL
};
static const char *const journal_modes[] = {
  "delete", "truncate", "persist", "memory", "wal", "off", NULL
};
static const char *const sync_modes[] = { "off", "normal", "full", "extra", NULL };
static const char *const temp_stores[] = { "default", "file", "memory", NULL };

/*
** Run "PRAGMA name=value" for a value out of a fixed list (so nothing is
** spliced).  Switching a new file to WAL while another process does the same
** answers SQLITE_BUSY at once, without the busy handler, so it is retried
** here for up to timeout_ms.
*/
static int set_pragma(lua_State *L, jn_Conn *c, const char *name, int optsidx,
                      const char *const *allowed, int timeout_ms) {
  char sql[64];
  int i, rc, waited = 0;
  const char *v;
  lua_getfield(L, optsidx, name);
  if (lua_isnil(L, -1)) { lua_pop(L, 1); return SQLITE_OK; }
  v = lua_tostring(L, -1);
  for (i = 0; v != NULL && allowed[i] != NULL; i++)
    if (sqlite3_stricmp(v, allowed[i]) == 0) break;
  if (v == NULL || allowed[i] == NULL)
    return luaL_error(L, "junction.open: bad option '%s' (unknown value '%s')", name,
                      v ? v : luaL_typename(L, -1));
  lua_pop(L, 1);
  sqlite3_snprintf((int)sizeof sql, sql, "PRAGMA %s=%s", name, allowed[i]);
  while ((rc = sqlite3_exec(c->db, sql, NULL, NULL, NULL)) == SQLITE_BUSY && waited < timeout_ms)
    waited += sqlite3_sleep(10);
  return rc;
}

/* Check the keys of the options table at idx against allowed. */
void jn_query_checkopts(lua_State *L, int idx, const char *const *allowed, const char *ctx) {
  if (lua_isnoneornil(L, idx)) return;
  if (!lua_istable(L, idx))
    luaL_error(L, "%s: bad options (table expected, got %s)", ctx, luaL_typename(L, idx));
  lua_pushnil(L);
  while (lua_next(L, idx) != 0) {
    int i, found = 0;
    if (lua_type(L, -2) == LUA_TSTRING) {
      const char *k = lua_tostring(L, -2);
      for (i = 0; allowed[i] != NULL; i++)
        if (strcmp(k, allowed[i]) == 0) { found = 1; break; }
    }
    if (!found) {
      lua_pop(L, 1);
      luaL_error(L, "%s: bad option '%s' (unknown key)", ctx,
                 lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : luaL_typename(L, -1));
    }
    lua_pop(L, 1);
  }
}

/*** Open a database.
@function junction.open
@tparam string path a file name, or ":memory:"
@tparam[opt] table opts busy_timeout, foreign_keys, journal_mode, synchronous, log
@treturn Connection|fail
*/
static int conn_open(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  int hasopts = !lua_isnoneornil(L, 2), rc, timeout = 5000;
  jn_Conn *c;
  jn_query_checkopts(L, 2, open_opts, "junction.open");
  lua_settop(L, 2);
  if (hasopts) {
    lua_getfield(L, 2, "log");
    if (!lua_isnil(L, -1) && !lua_isfunction(L, -1))
      luaL_error(L, "junction.open: bad option 'log' (function expected, got %s)",
                 luaL_typename(L, -1));
    lua_getfield(L, 2, "busy_timeout");
    if (!lua_isnil(L, -1) && !lua_isnumber(L, -1))
      luaL_error(L, "junction.open: bad option 'busy_timeout' (number expected, got %s)",
                 luaL_typename(L, -1));
    lua_pop(L, 2);
  }
  /* The userdata exists, closed, before the database is opened (liolib). */
  c = (jn_Conn *)lua_newuserdata(L, sizeof *c);
  memset(c, 0, sizeof *c);
  c->cache_ref = c->log_ref = c->params_ref = c->owner_ref = LUA_NOREF;
  luaL_setmetatable(L, JN_CONN_MT);
  lua_createtable(L, 0, 2);
  lua_newtable(L);
  lua_setfield(L, -2, "models");
  lua_pushvalue(L, 1);
  lua_setfield(L, -2, "path");
  lua_setuservalue(L, -2);
  lua_newtable(L);
  c->cache_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  lua_newtable(L);
  c->params_ref = luaL_ref(L, LUA_REGISTRYINDEX);

  /* NOMUTEX: a connection belongs to one Lua state, and a Lua state is never
  ** used by two threads at once, so SQLite's per-call mutex buys nothing. */
  rc = sqlite3_open_v2(path, &c->db,
                       SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
  if (rc == SQLITE_OK) {
    sqlite3_extended_result_codes(c->db, 1);
    rc = sqlite3_busy_timeout(c->db, 5000);
  }
  if (rc == SQLITE_OK && hasopts) {
    lua_getfield(L, 2, "busy_timeout");
    if (!lua_isnil(L, -1)) {
      timeout = (int)lua_tonumber(L, -1);
      rc = sqlite3_busy_timeout(c->db, timeout);
    }
    lua_pop(L, 1);
  }
  if (rc == SQLITE_OK) {
    int fk = 1;
    if (hasopts) {
      lua_getfield(L, 2, "foreign_keys");
      if (!lua_isnil(L, -1)) fk = lua_toboolean(L, -1);
      lua_pop(L, 1);
    }
    rc = sqlite3_exec(c->db, fk ? "PRAGMA foreign_keys=ON" : "PRAGMA foreign_keys=OFF",
                      NULL, NULL, NULL);
  }
  if (rc == SQLITE_OK && hasopts) rc = set_pragma(L, c, "journal_mode", 2, journal_modes, timeout);
  if (rc == SQLITE_OK && hasopts) rc = set_pragma(L, c, "synchronous", 2, sync_modes, timeout);
  /* temp_store=MEMORY unless told otherwise: every atomic association write
  ** opens a savepoint, and SQLite spills its sub-journal to a temporary file
  ** past 64 KiB, which costs a write system call per page in long transactions. */
  if (rc == SQLITE_OK && hasopts) {
    lua_getfield(L, 2, "temp_store");
    if (!lua_isnil(L, -1)) { lua_pop(L, 1); rc = set_pragma(L, c, "temp_store", 2, temp_stores, timeout); }
    else { lua_pop(L, 1); rc = sqlite3_exec(c->db, "PRAGMA temp_store=MEMORY", NULL, NULL, NULL); }
  } else if (rc == SQLITE_OK) {
    rc = sqlite3_exec(c->db, "PRAGMA temp_store=MEMORY", NULL, NULL, NULL);
  }
  if (rc != SQLITE_OK) {
    int n = jn_pushfail(L, c, rc);
    sqlite3_close_v2(c->db);
    c->db = NULL;
    return n;
  }
  if (hasopts) {
    lua_getfield(L, 2, "log");
    if (lua_isfunction(L, -1)) c->log_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    else lua_pop(L, 1);
  }
  return 1;
}

/* Forget the transaction's owner. */
static void drop_owner(lua_State *L, jn_Conn *c) {
  luaL_unref(L, LUA_REGISTRYINDEX, c->owner_ref);
  c->owner_ref = LUA_NOREF;
  c->owner = NULL;
}

/* Close: finalize every statement, then the database.  Idempotent. */
static int close_conn(lua_State *L, jn_Conn *c) {
  int rc = SQLITE_OK;
  if (c->db != NULL) {
    jn_stmt_finalize_all(L, c);
    rc = sqlite3_close_v2(c->db);
    c->db = NULL;
  }
  luaL_unref(L, LUA_REGISTRYINDEX, c->cache_ref);
  luaL_unref(L, LUA_REGISTRYINDEX, c->log_ref);
  luaL_unref(L, LUA_REGISTRYINDEX, c->params_ref);
  c->cache_ref = c->log_ref = c->params_ref = LUA_NOREF;
  drop_owner(L, c);
  c->txdepth = 0;
  free(c->scratch);
  c->scratch = NULL;
  c->scratch_size = 0;
  return rc;
}

/*** Close the connection; a second call does nothing.
@function db:close
@treturn true|fail
*/
static int conn_close(lua_State *L) {
  jn_Conn *c = to_conn(L, 1);
  int rc;
  if (c->incall)
    return luaL_error(L, "db:close: the connection is in use (called from a log or defaultValue function)");
  rc = close_conn(L, c);
  if (rc != SQLITE_OK) {
    lua_pushnil(L);
    lua_pushstring(L, sqlite3_errstr(rc));
    lua_pushinteger(L, rc);
    return 3;
  }
  lua_pushboolean(L, 1);
  return 1;
}

static int conn_gc(lua_State *L) {
  close_conn(L, to_conn(L, 1));
  return 0;
}

static int conn_tostring(lua_State *L) {
  jn_Conn *c = to_conn(L, 1);
  lua_getuservalue(L, 1);
  lua_getfield(L, -1, "path");
  lua_pushfstring(L, "junction.Connection: %s (%s, %d model%s)", lua_tostring(L, -1),
                  c->db ? "open" : "closed", c->nmodels, c->nmodels == 1 ? "" : "s");
  return 1;
}

/* }====== */

/* {====== The raw way out */

/*** Run one or more statements without parameters.
@function db:exec
@treturn true|fail
*/
static int conn_exec(lua_State *L) {
  jn_Conn *c = jn_conn_check(L, 1);
  const char *sql = luaL_checkstring(L, 2);
  char *err = NULL;
  int rc = jn_conn_txcheck(L, c);
  if (rc != SQLITE_OK) return jn_pushfail(L, c, rc);
  if (c->log_ref != LUA_NOREF) {   /* the script as one entry, no values */
    if (c->inlog) luaL_error(L, "junction: the log function may not run statements on its own connection");
    lua_rawgeti(L, LUA_REGISTRYINDEX, c->log_ref);
    lua_pushvalue(L, 2);
    lua_newtable(L);
    jn_conn_callback(L, c, 2, 0, 1);
  }
  rc = sqlite3_exec(c->db, sql, NULL, NULL, &err);
  if (rc != SQLITE_OK) {
    lua_pushnil(L);
    lua_pushstring(L, err ? err : sqlite3_errstr(rc));
    lua_pushinteger(L, sqlite3_extended_errcode(c->db));
    sqlite3_free(err);
    return 3;
  }
  lua_pushboolean(L, 1);
  return 1;
}

/*** Run one statement with bound parameters and return its rows.
@function db:query
@tparam string sql with ? (or ?N, :name) parameters
@param ... the values, bound in order
@treturn {table,...}|fail the rows, as tables column name -> value
*/
static int conn_query(lua_State *L) {
  jn_Conn *c = jn_conn_check(L, 1);
  size_t len;
  const char *sql;
  int top = lua_gettop(L), rc, i, ncol, nrow = 0;
  sqlite3_stmt *st;
  if (lua_type(L, 2) != LUA_TSTRING)
    luaL_error(L, "db:query: bad argument #1 (SQL string expected, got %s)", luaL_typename(L, 2));
  sql = lua_tolstring(L, 2, &len);
  st = jn_stmt_cached(L, c, sql, len, &rc);
  if (st == NULL) {
    if (rc != SQLITE_OK) return jn_pushfail(L, c, rc);
    return luaL_error(L, "db:query: bad argument #1 (no SQL statement in it)");
  }
  if (top - 2 != sqlite3_bind_parameter_count(st))
    return luaL_error(L, "db:query: %d value%s given for %d parameter%s", top - 2,
                      top - 2 == 1 ? "" : "s", sqlite3_bind_parameter_count(st),
                      sqlite3_bind_parameter_count(st) == 1 ? "" : "s");
  for (i = 3; i <= top; i++)
    if (jn_bind_value(L, c, st, i - 2, i, JN_T_GUESS) != 0)
      return luaL_error(L, "db:query: bad argument #%d (%s cannot be bound)", i - 1,
                        luaL_typename(L, i));
  ncol = sqlite3_column_count(st);
  lua_newtable(L);
  while ((rc = jn_stmt_step(L, c, st)) == SQLITE_ROW) {
    lua_createtable(L, 0, ncol);
    for (i = 0; i < ncol; i++) {
      jn_push_column(L, st, i, JN_T_ANY);
      lua_setfield(L, -2, sqlite3_column_name(st, i));
    }
    lua_rawseti(L, -2, ++nrow);
  }
  if (rc != SQLITE_DONE) {
    int n = jn_pushfail(L, c, rc);
    sqlite3_reset(st);
    return n;
  }
  sqlite3_reset(st);
  return 1;
}

static int conn_changes(lua_State *L) {
  jn_Conn *c = jn_conn_check(L, 1);
  lua_pushinteger(L, sqlite3_changes(c->db));
  return 1;
}

static int conn_last_insert_id(lua_State *L) {
  jn_Conn *c = jn_conn_check(L, 1);
  jn_push_i64(L, sqlite3_last_insert_rowid(c->db));
  return 1;
}


/*
** db:_tx("open", mode[, thread]) and db:_tx("close", ok): the primitives of
** lua/junction's db:transaction.  open begins a transaction (BEGIN
** IMMEDIATE, or the mode given) owned by thread (default: the calling
** coroutine), or a savepoint inside the caller's own one; close commits or
** releases (ok) or rolls back.  Both return true or fail.
*/
static int conn_tx(lua_State *L) {
  static const char *const ops[] = { "open", "close", NULL };
  static const char *const modes[] = { "immediate", "deferred", "exclusive", NULL };
  jn_Conn *c = jn_conn_check(L, 1);
  int op = luaL_checkoption(L, 2, NULL, ops), rc;
  if (op == 0) {
    int mode = luaL_checkoption(L, 3, "immediate", modes);
    lua_State *co = lua_isthread(L, 4) ? lua_tothread(L, 4) : L;
    if (c->txdepth == 0) {
      rc = run_own(L, c, JN_CS_BEGIN + mode);
      if (rc != SQLITE_OK) return jn_pushfail(L, c, rc);
      if (lua_isthread(L, 4)) lua_pushvalue(L, 4);
      else lua_pushthread(L);
      c->owner_ref = luaL_ref(L, LUA_REGISTRYINDEX);   /* keeps the owner alive */
      c->owner = co;
    } else {
      if ((rc = jn_conn_txcheck(L, c)) != SQLITE_OK) return jn_pushfail(L, c, rc);
      if ((rc = run_own(L, c, JN_CS_SAVEPOINT)) != SQLITE_OK) return jn_pushfail(L, c, rc);
    }
    c->txdepth++;
  } else {
    int ok = lua_toboolean(L, 3);
    if (c->txdepth == 0) return luaL_error(L, "db:_tx: no transaction is open");
    if (c->txdepth == 1) {
      /* SQLite may have rolled back already: then there is nothing to commit */
      int lost = sqlite3_get_autocommit(c->db);
      rc = ok && !lost ? run_own(L, c, JN_CS_COMMIT) : SQLITE_OK;
      if (rc != SQLITE_OK || !ok || lost) {
        int n = 0;
        if (rc != SQLITE_OK) n = jn_pushfail(L, c, rc);
        else if (ok && lost) {
          c->why = "the transaction was rolled back by an error inside it";
          n = jn_pushfail(L, c, SQLITE_ABORT);
        }
        if (!sqlite3_get_autocommit(c->db)) run_own(L, c, JN_CS_ROLLBACK);
        c->txdepth = 0;
        drop_owner(L, c);
        if (n) return n;
        lua_pushboolean(L, 1);
        return 1;
      }
      c->txdepth = 0;
      drop_owner(L, c);
    } else {
      c->txdepth--;
      if (sqlite3_get_autocommit(c->db)) {   /* lost with the outer one */
        if (ok) {
          c->why = "the transaction was rolled back by an error inside it";
          return jn_pushfail(L, c, SQLITE_ABORT);
        }
      } else {
        if (!ok) run_own(L, c, JN_CS_ROLLBACK_TO);
        rc = run_own(L, c, JN_CS_RELEASE);
        if (ok && rc != SQLITE_OK) return jn_pushfail(L, c, rc);
      }
    }
  }
  lua_pushboolean(L, 1);
  return 1;
}

/*** The model of that name, or nil.
@function db:model
*/
static int conn_model(lua_State *L) {
  jn_conn_check(L, 1);
  luaL_checkstring(L, 2);
  lua_getuservalue(L, 1);
  lua_getfield(L, -1, "models");
  lua_pushvalue(L, 2);
  lua_rawget(L, -2);
  return 1;
}

/* db:_models(): the table name -> model (for the Lua side). */
static int conn_models(lua_State *L) {
  jn_conn_check(L, 1);
  lua_getuservalue(L, 1);
  lua_getfield(L, -1, "models");
  return 1;
}

/* }====== */

static const luaL_Reg conn_methods[] = {
  {"define", jn_schema_define},
  {"sync", jn_schema_sync},
  {"model", conn_model},
  {"exec", conn_exec},
  {"query", conn_query},
  {"close", conn_close},
  {"changes", conn_changes},
  {"lastInsertId", conn_last_insert_id},
  {"_tx", conn_tx},
  {"_models", conn_models},
  {NULL, NULL}
};

static const luaL_Reg conn_meta[] = {
  {"__gc", conn_gc},
#if LUA_VERSION_NUM >= 504
  {"__close", conn_gc},
#endif
  {"__tostring", conn_tostring},
  {NULL, NULL}
};

/*
** Register the connection type; leaves junction.open and the method table
** (as "Connection", for lua/junction to extend) in the module table at -1.
*/
void jn_conn_open(lua_State *L) {
  luaL_newmetatable(L, JN_CONN_MT);
  luaL_setfuncs(L, conn_meta, 0);
  lua_newtable(L);
  luaL_setfuncs(L, conn_methods, 0);
  lua_pushvalue(L, -1);
  lua_setfield(L, -4, "Connection");
  lua_setfield(L, -2, "__index");
  lua_pop(L, 1);
  lua_pushcfunction(L, conn_open);
  lua_setfield(L, -2, "open");
}
