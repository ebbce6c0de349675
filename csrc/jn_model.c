/*
** jn_model.c: the model's own methods: build, create, bulkCreate,
** findByPk, findOne, findAll, count, findOrCreate, update and destroy; the
** primitives lua/junction builds more on (_increment, _aggregate, _upsert,
** _method, _info, _own, _now); and the model userdata's metatable
** (__index, __newindex, __tostring).  Every one ends through jn_error_result.
*/
#include "jn.h"
#include <stdio.h>

/* "Post:findAll" for error messages, in a caller's buffer (built on every
** call, so by hand: printf would cost more than some whole calls). */
static const char *method_ctx(char *buf, size_t size, jn_Model *m, const char *method) {
  size_t n = strlen(m->name), k = strlen(method);
  if (n + k + 2 > size) { n = size / 2 - 1; k = size - n - 2; }
  memcpy(buf, m->name, n);
  buf[n] = ':';
  memcpy(buf + n + 1, method, k);
  buf[n + 1 + k] = '\0';
  return buf;
}

/* The model at 1, open, called with ':'.  Every method is a closure over
** the model metatable (upvalue 1; upvalue 2 is the instance metatable):
** compared there, no registry lookup. */
static jn_Model *check_self(lua_State *L, const char *method) {
  jn_Model *m = (jn_Model *)lua_touserdata(L, 1);
  if (m != NULL) {
    if (!lua_getmetatable(L, 1)) m = NULL;
    else if (!lua_rawequal(L, -1, lua_upvalueindex(1))) { m = NULL; lua_pop(L, 1); }
    else lua_pop(L, 1);
  }
  if (m == NULL)
    luaL_error(L, "Model:%s: bad self (model expected, got %s; call it with ':')", method,
               luaL_typename(L, 1));
  jn_conn_checkopen(L, m->conn, m->name, method);
  return m;
}

/*** Build an unsaved instance.
@function Model:build
*/
static int model_build(lua_State *L) {
  char ctx[96];
  jn_Model *m = check_self(L, "build");
  lua_settop(L, 2);
  jn_inst_build(L, m, 1, 2, method_ctx(ctx, sizeof ctx, m, "build"));
  return 1;
}

/*** Insert a row.
@function Model:create
@tparam table values
@treturn Instance|fail
*/
static int model_create(lua_State *L) {
  char ctx[96];
  jn_Model *m = check_self(L, "create");
  int inst, rc;
  lua_settop(L, 2);
  inst = jn_inst_build(L, m, 1, 2, method_ctx(ctx, sizeof ctx, m, "create"));
  rc = jn_inst_insert(L, inst);
  if (rc != SQLITE_OK) return jn_error_result(L, m->conn, rc, NULL);
  return 1;
}

/* Body of bulkCreate under jn_conn_atomic: [w, model, list of built instances]. */
static int bulk_body(lua_State *L) {
  jn_Write *w = jn_conn_bodywrite(L);
  int i, n = (int)lua_rawlen(L, 3), rc;
  w->once = 1;   /* the instances it saves were built by its caller: not run twice */
  for (i = 1; i <= n; i++) {
    if (i == 1 && n > 1 && (rc = jn_conn_writeguard(L, w)) != SQLITE_OK) return jn_error_result(L, w->c, rc, NULL);
    lua_rawgeti(L, 3, i);
    rc = jn_inst_insert(L, lua_gettop(L));
    if (rc != SQLITE_OK) return jn_error_result(L, w->c, rc, NULL);
    lua_pop(L, 1);
  }
  lua_settop(L, 3);
  return 1;
}

/*** Insert many rows in one transaction: all or none.
@function Model:bulkCreate
@tparam {table,...} list
@treturn {Instance,...}|fail
*/
static int model_bulk_create(lua_State *L) {
  char ctx[96];
  jn_Model *m = check_self(L, "bulkCreate");
  int i, n;
  method_ctx(ctx, sizeof ctx, m, "bulkCreate");
  if (!lua_istable(L, 2))
    luaL_error(L, "%s: bad argument #1 (array of value tables expected, got %s)", ctx, luaL_typename(L, 2));
  lua_settop(L, 2);
  n = (int)lua_rawlen(L, 2);
  jn_value_checklist(L, 2, n, ctx, "argument #1", "a list of value tables");
  lua_createtable(L, n, 0);
  for (i = 1; i <= n; i++) {   /* every row checked before anything is written */
    lua_rawgeti(L, 2, i);
    jn_inst_build(L, m, 1, lua_gettop(L), ctx);
    if (jn_inst_check(L, lua_gettop(L)) == JN_VALIDATION) {
      lua_pushfstring(L, "%s (row %d)", lua_tostring(L, -2), i);
      lua_replace(L, -3);
      lua_pushinteger(L, i);
      lua_setfield(L, -2, "index");
      return jn_error_result(L, m->conn, JN_VALIDATION, NULL);
    }
    lua_rawseti(L, 3, i);
    lua_pop(L, 1);
  }
  lua_remove(L, 2);
  return jn_conn_atomic(L, m->conn, bulk_body, 0, 0);
}

/*
** opts.rejectOnEmpty of the options at optsidx (a table): when given, the
** options are replaced by a copy without it, and the message a find that
** finds nothing returns is pushed ("Post:findOne: no row found", or the
** string given); its stack index is returned.  0 when it is absent or
** false (nothing pushed).  Raises for a value that is neither.
*/
static int take_reject(lua_State *L, int optsidx, const char *ctx) {
  int t, flag, copy;
  if (!lua_istable(L, optsidx)) return 0;
  t = jn_optfield(L, optsidx, "rejectOnEmpty");
  if (t == LUA_TNIL) { lua_pop(L, 1); return 0; }
  if (t != LUA_TBOOLEAN && t != LUA_TSTRING)
    luaL_error(L, "%s: bad option 'rejectOnEmpty' (true or a message expected, got %s)", ctx,
               luaL_typename(L, -1));
  flag = lua_gettop(L);
  lua_newtable(L);
  copy = lua_gettop(L);
  lua_pushnil(L);
  while (lua_next(L, optsidx) != 0) {   /* key value */
    if (lua_type(L, -2) == LUA_TSTRING && strcmp(lua_tostring(L, -2), "rejectOnEmpty") == 0) {
      lua_pop(L, 1);
    } else {
      lua_pushvalue(L, -2);
      lua_insert(L, -2);
      lua_rawset(L, copy);
    }
  }
  lua_replace(L, optsidx);
  if (t == LUA_TBOOLEAN) {
    if (!lua_toboolean(L, flag)) { lua_pop(L, 1); return 0; }
    lua_pushfstring(L, "%s: no row found", ctx);
    lua_replace(L, flag);
  }
  return flag;
}

/* The result of a find at the top: nil becomes the failure of rejectOnEmpty
** (code SQLITE_NOTFOUND, 12) when msgidx is not 0. */
static int rejected(lua_State *L, jn_Model *m, int msgidx, int nres) {
  if (msgidx == 0 || nres != 1 || !lua_isnil(L, -1)) return nres;
  return jn_error_result(L, m->conn, SQLITE_NOTFOUND, lua_tostring(L, msgidx));
}

/*** Find by primary key.
@function Model:findByPk
@param key
@tparam[opt] table opts attributes, include
@treturn Instance|nil|fail
*/
static int model_find_by_pk(lua_State *L) {
  static const char *const pk_opts[] = { "attributes", "include", NULL };
  char ctx[96];
  jn_Model *m = check_self(L, "findByPk");
  jn_St *st;
  sqlite3_int64 v;
  int rc, rej, fast;
  method_ctx(ctx, sizeof ctx, m, "findByPk");
  if (lua_type(L, 2) != LUA_TNUMBER && lua_type(L, 2) != LUA_TSTRING)
    luaL_error(L, "%s: bad argument #1 (key expected, got %s)", ctx, luaL_typename(L, 2));
  if (!lua_isnoneornil(L, 3)) {
    lua_settop(L, 3);
    rej = take_reject(L, 3, ctx);       /* 4: its message, when given */
    jn_conn_checkopts(L, 3, pk_opts, ctx);
    lua_settop(L, 4);
    lua_newtable(L);                    /* 5: opts with where = { pk = key } */
    jn_optfield(L, 3, "attributes");
    lua_setfield(L, 5, "attributes");
    jn_optfield(L, 3, "include");
    lua_setfield(L, 5, "include");
    lua_newtable(L);
    lua_pushvalue(L, 2);
    lua_setfield(L, -2, m->f[m->pk].name);
    lua_setfield(L, 5, "where");
    return rejected(L, m, rej, jn_include_find(L, m, 1, 5, 1, ctx));
  }
  lua_settop(L, 2);
  /* the common key, an integer for an INTEGER key: bound as it is, nothing to convert */
  fast = m->f[m->pk].type == JN_T_INTEGER && lua_type(L, 2) == LUA_TNUMBER && jn_scalar_toi64(L, 2, &v);
  if (!fast) {
    if (!jn_where_keyvalue(L, m, m->pk, 2, ctx)) { lua_pushnil(L); return 1; }   /* no row has it */
    lua_replace(L, 2);
  }
  st = jn_stmt_slot(L, m->conn, &m->st[JN_MS_BY_PK], m->sql[JN_MS_BY_PK], &rc);
  if (st == NULL) return jn_error_result(L, m->conn, rc, NULL);
  if (fast) jn_stmt_bindi64(L, m->conn, st, 1, v);
  else jn_stmt_bindvalue(L, m->conn, st, 1, 2, m->f[m->pk].type);
  return jn_query_one(L, m, 1, lua_upvalueindex(2), st);
}

static int model_find_one(lua_State *L) {
  char ctx[96];
  jn_Model *m = check_self(L, "findOne");
  int rej;
  lua_settop(L, 2);
  method_ctx(ctx, sizeof ctx, m, "findOne");
  rej = take_reject(L, 2, ctx);
  return rejected(L, m, rej, jn_include_find(L, m, 1, 2, 1, ctx));
}

static int model_find_all(lua_State *L) {
  char ctx[96];
  jn_Model *m = check_self(L, "findAll");
  lua_settop(L, 2);
  return jn_include_find(L, m, 1, 2, 0, method_ctx(ctx, sizeof ctx, m, "findAll"));
}

/* Append " WHERE ..." for opts.where at optsidx, when there is one. */
static void add_where(lua_State *L, jn_Model *m, int optsidx, jn_Buf *b, jn_Select *s,
                      const char *ctx) {
  if (!lua_istable(L, optsidx)) return;
  jn_optfield(L, optsidx, "where");
  if (!lua_isnil(L, -1)) {
    jn_buf_adds(L, b, " WHERE ");
    jn_where_compile(L, m, lua_gettop(L), NULL, b, s, ctx);
  }
  lua_pop(L, 1);
}

/* Run sql with the binds of s; push the integer of its first column
** (count) or of sqlite3_changes (write).  Returns 1 or the fail triple. */
static int run_scalar(lua_State *L, jn_Model *m, const char *sql, size_t len, jn_Select *s,
                      int write) {
  int rc;
  jn_St *st = jn_stmt_cached(L, m->conn, sql, len, &rc);
  if (st == NULL) return jn_error_result(L, m->conn, rc, NULL);
  jn_select_bindlist(L, m->conn, st, s);
  rc = jn_conn_step(L, m->conn, st);
  if (rc == SQLITE_ROW && !write) jn_scalar_pushi64(L, jn_e_col_int64(m->conn->eng, st, 0));
  else if (rc == SQLITE_DONE && write) lua_pushinteger(L, jn_e_changes(m->conn->eng, m->conn->db));
  return jn_error_finish(L, m->conn, st, rc, write ? SQLITE_DONE : SQLITE_ROW);
}

/*
** Body of update and destroy under jn_conn_atomic: [w, model, sql, binds].  One
** statement, but over many rows: a trigger's RAISE(FAIL) keeps the rows a
** statement changed before the failure, so it runs under a savepoint (or a
** transaction) of its own and comes back all or nothing.
*/
static int write_body(lua_State *L) {
  jn_Write *w = jn_conn_bodywrite(L);
  jn_Model *m = (jn_Model *)lua_touserdata(L, 2);
  jn_Select s;
  size_t len;
  const char *sql = lua_tolstring(L, 3, &len);
  int rc = jn_conn_writeguard(L, w);
  if (rc != SQLITE_OK) return jn_error_result(L, w->c, rc, NULL);
  s.binds_idx = 4;
  s.nbind = (int)lua_rawlen(L, 4);
  return run_scalar(L, m, sql, len, &s, 1);
}

/* Run the write compiled into b and s atomically; the stack from index 2
** up is replaced by its arguments.  Returns the count or the fail triple. */
static int run_write(lua_State *L, jn_Model *m, jn_Buf *b, jn_Select *s) {
  lua_pushlstring(L, b->p, b->n);
  lua_pushvalue(L, s->binds_idx);
  lua_replace(L, 3);
  lua_replace(L, 2);
  lua_settop(L, 3);                    /* model, sql, binds */
  return jn_conn_atomic(L, m->conn, write_body, 0, 0);
}

/*** Count rows.
@function Model:count
@tparam[opt] table opts where
@treturn integer|fail
*/
static int model_count(lua_State *L) {
  static const char *const count_opts[] = { "where", "include", NULL };
  char ctx[96];
  jn_Model *m = check_self(L, "count");
  jn_Buf b;
  jn_Select s;
  method_ctx(ctx, sizeof ctx, m, "count");
  lua_settop(L, 2);
  jn_conn_checkopts(L, 2, count_opts, ctx);
  jn_select_init(L, &s);
  jn_buf_init(L, &b);
  jn_buf_adds(L, &b, "SELECT count(*) FROM ");
  jn_buf_adds(L, &b, m->qtable);
  add_where(L, m, 2, &b, &s, ctx);
  if (lua_istable(L, 2)) {
    int haswhere;
    jn_optfield(L, 2, "where");
    haswhere = !lua_isnil(L, -1);
    jn_optfield(L, 2, "include");
    if (!lua_isnil(L, -1)) jn_include_required(L, m, lua_gettop(L), &b, &s, &haswhere, ctx);
    lua_pop(L, 2);
  }
  return run_scalar(L, m, b.p, b.n, &s, 0);
}

/* opts[k] as a flag: absent or false is 0, true is 1, anything else raises. */
static int opt_flag(lua_State *L, int optsidx, const char *k, const char *ctx) {
  int t = jn_optfield(L, optsidx, k), v = lua_toboolean(L, -1);
  if (t != LUA_TNIL && t != LUA_TBOOLEAN)
    luaL_error(L, "%s: bad option '%s' (true expected, got %s)", ctx, k, luaL_typename(L, -1));
  lua_pop(L, 1);
  return v;
}

/*
** Which rows a write over many rows touches, said explicitly: opts.where
** (never empty: the where compiler refuses that) or opts.all = true
** (destroy also takes Sequelize's truncate = true), not both.  Nothing
** given is a mistake, never "every row".  Returns 1 for every row.
*/
static int write_rows(lua_State *L, int optsidx, int destroy, const char *ctx) {
  int where, all;
  if (!lua_istable(L, optsidx))
    luaL_error(L, "%s: bad options (table with 'where' or all = true expected, got %s)", ctx,
               luaL_typename(L, optsidx));
  where = jn_optfield(L, optsidx, "where") != LUA_TNIL;
  lua_pop(L, 1);
  all = opt_flag(L, optsidx, "all", ctx);
  if (destroy) all |= opt_flag(L, optsidx, "truncate", ctx);
  if (where && all) luaL_error(L, "%s: bad options (both 'where' and every row: say one)", ctx);
  if (!where && !all)
    luaL_error(L, "%s: missing option 'where' (say { all = true } to %s every row)", ctx,
               destroy ? "destroy" : "update");
  return all;
}

/* The SET list of Model:update from the values at 2, in field order (so
** the text is stable), values bound to s; a value its field cannot hold
** goes to the errors at errs.  Returns the number of fields set. */
static int update_set(lua_State *L, jn_Model *m, jn_Buf *b, jn_Select *s, int errs,
                      const char *ctx) {
  int i, n = 0;
  for (i = 0; i < m->nfields; i++) {   /* field order, so the text is stable */
    lua_pushstring(L, m->f[i].name);   /* raw: the values are data, not code to run */
    lua_rawget(L, 2);
    if (i == m->updated && lua_isnil(L, -1)) {
      char ts[32];
      size_t len = jn_scalar_timestamp(m->conn, ts);
      lua_pop(L, 1);
      lua_pushlstring(L, ts, len);
    }
    if (jn_scalar_isnull(L, -1)) {   /* junction.null: write NULL */
      lua_pushnil(L);
      if (!jn_inst_value(L, m, i, -1, errs)) lua_pushnil(L);   /* allowNull = false */
      lua_pop(L, 2);
      if (n++) jn_buf_adds(L, b, ", ");
      jn_buf_addident(L, b, NULL, m->f[i].col);
      jn_buf_adds(L, b, " = NULL");
    } else if (!lua_isnil(L, -1)) {
      if (!jn_value_storable(L, -1, m->f[i].type))
        luaL_error(L, "%s: bad value for field '%s' (%s cannot be stored)", ctx, m->f[i].name,
                   luaL_typename(L, -1));
      if (n++) jn_buf_adds(L, b, ", ");
      jn_buf_addident(L, b, NULL, m->f[i].col);
      jn_buf_adds(L, b, " = ?");
      if (jn_inst_value(L, m, i, -1, errs)) {
        jn_select_bindt(L, s, -1, m->f[i].type);
        lua_pop(L, 1);
      }
    }
    lua_pop(L, 1);
  }
  return n;
}

/*** Update the rows that match.
@function Model:update
@tparam table values
@tparam table opts where
@treturn integer|fail rows changed
*/
static int model_update(lua_State *L) {
  static const char *const update_opts[] = { "where", "all", NULL };
  char ctx[96];
  jn_Model *m = check_self(L, "update");
  jn_Buf b;
  jn_Select s;
  int n, errs;
  method_ctx(ctx, sizeof ctx, m, "update");
  if (!lua_istable(L, 2))
    luaL_error(L, "%s: bad argument #1 (table of values expected, got %s)", ctx, luaL_typename(L, 2));
  lua_settop(L, 3);
  jn_conn_checkopts(L, 3, update_opts, ctx);
  write_rows(L, 3, 0, ctx);
  jn_select_init(L, &s);
  lua_pushnil(L);                      /* the errors slot: values that cannot be stored */
  errs = lua_gettop(L);
  jn_buf_init(L, &b);
  jn_buf_adds(L, &b, "UPDATE ");
  jn_buf_adds(L, &b, m->qtable);
  jn_buf_adds(L, &b, " SET ");
  n = update_set(L, m, &b, &s, errs, ctx);
  lua_pushnil(L);   /* every key must be a field */
  while (lua_next(L, 2) != 0) {
    lua_pop(L, 1);
    if (lua_type(L, -1) != LUA_TSTRING || jn_schema_field(L, m, -1) < 0)
      luaL_error(L, "%s: bad field '%s' (no such field in %s)", ctx, jn_value_name(L, -1), m->name);
  }
  if (n == 0) luaL_error(L, "%s: bad argument #1 (no field to set)", ctx);
  add_where(L, m, 3, &b, &s, ctx);
  if (!lua_isnil(L, errs)) {           /* checked before any SQL runs */
    jn_inst_invalid(L, m, errs);
    return jn_error_result(L, m->conn, JN_VALIDATION, NULL);
  }
  return run_write(L, m, &b, &s);
}

/*** Delete the rows that match.
@function Model:destroy
@tparam table opts where
@treturn integer|fail rows deleted
*/
static int model_destroy(lua_State *L) {
  static const char *const destroy_opts[] = { "where", "all", "truncate", NULL };
  char ctx[96];
  jn_Model *m = check_self(L, "destroy");
  jn_Buf b;
  jn_Select s;
  method_ctx(ctx, sizeof ctx, m, "destroy");
  lua_settop(L, 2);
  jn_conn_checkopts(L, 2, destroy_opts, ctx);
  write_rows(L, 2, 1, ctx);
  jn_select_init(L, &s);
  jn_buf_init(L, &b);
  jn_buf_adds(L, &b, "DELETE FROM ");
  jn_buf_adds(L, &b, m->qtable);
  add_where(L, m, 2, &b, &s, ctx);
  return run_write(L, m, &b, &s);
}

/* Raise unless every key of the table at by is a numeric field of m and
** every value a finite number (a whole one for an INTEGER field). */
static void check_increments(lua_State *L, jn_Model *m, int by, const char *ctx) {
  lua_pushnil(L);
  while (lua_next(L, by) != 0) {
    int f = lua_type(L, -2) == LUA_TSTRING ? jn_schema_field(L, m, -2) : -1;
    double d = lua_tonumber(L, -1);
    if (f < 0)
      luaL_error(L, "%s: bad field '%s' (no such field in %s)", ctx, jn_value_name(L, -2), m->name);
    if (m->f[f].type != JN_T_INTEGER && m->f[f].type != JN_T_REAL)
      luaL_error(L, "%s: bad field '%s' (an INTEGER or REAL field expected)", ctx, m->f[f].name);
    if (lua_type(L, -1) != LUA_TNUMBER || d != d || d - d != 0)
      luaL_error(L, "%s: bad argument 'by' (a finite number expected, got %s)", ctx, luaL_typename(L, -1));
    if (m->f[f].type == JN_T_INTEGER && (d > 9.2e18 || d < -9.2e18 || d != (double)(sqlite3_int64)d))
      luaL_error(L, "%s: bad argument 'by' (a whole number expected for INTEGER field '%s')", ctx,
                 m->f[f].name);
    lua_pop(L, 1);
  }
}

/* Append `"f" = "f" + ?` for field f, the amount on top of the stack
** bound. */
static void increment_set(lua_State *L, jn_Model *m, int f, jn_Buf *b, jn_Select *s) {
  int guard = m->f[f].type == JN_T_INTEGER && m->conn->dialect->int_sum_real;
  jn_buf_addident(L, b, NULL, m->f[f].col);
  jn_buf_adds(L, b, " = ");
  if (guard) {
    /* An integer sum past 64 bits that the engine would keep as a REAL in
    ** an INTEGER column fails instead, as on PostgreSQL (abs() of the
    ** smallest integer raises "integer overflow") */
    jn_buf_adds(L, b, "CASE WHEN typeof(");
    jn_buf_addident(L, b, NULL, m->f[f].col);
    jn_buf_adds(L, b, " + ?) = 'real' AND typeof(");
    jn_buf_addident(L, b, NULL, m->f[f].col);
    jn_buf_adds(L, b, ") = 'integer' THEN abs(-9223372036854775807 - 1) ELSE ");
    jn_select_bindt(L, s, -1, m->f[f].type);
  }
  jn_buf_addident(L, b, NULL, m->f[f].col);
  jn_buf_adds(L, b, " + ?");
  jn_select_bindt(L, s, -1, m->f[f].type);
  if (guard) jn_buf_adds(L, b, " END");
}

/*** Add to numeric fields of the rows that match, in one statement:
** `UPDATE t SET "f" = "f" + ?, ..., "updatedAt" = ? WHERE ...`.
@function Model:_increment
@tparam table by field name -> number (lua/junction's increment and decrement)
@tparam table opts where or all = true
@treturn integer|fail rows changed
*/
static int model_increment(lua_State *L) {
  static const char *const inc_opts[] = { "where", "all", NULL };
  char ctx[96];
  jn_Model *m = check_self(L, "increment");
  jn_Buf b;
  jn_Select s;
  int i, n = 0;
  method_ctx(ctx, sizeof ctx, m, "increment");
  luaL_checktype(L, 2, LUA_TTABLE);
  lua_settop(L, 3);
  jn_conn_checkopts(L, 3, inc_opts, ctx);
  write_rows(L, 3, 0, ctx);
  check_increments(L, m, 2, ctx);
  jn_select_init(L, &s);
  jn_buf_init(L, &b);
  jn_buf_adds(L, &b, "UPDATE ");
  jn_buf_adds(L, &b, m->qtable);
  jn_buf_adds(L, &b, " SET ");
  for (i = 0; i < m->nfields; i++) {   /* field order, so the text is stable */
    lua_pushstring(L, m->f[i].name);
    lua_rawget(L, 2);
    if (!lua_isnil(L, -1)) {
      if (n++) jn_buf_adds(L, &b, ", ");
      increment_set(L, m, i, &b, &s);
    }
    lua_pop(L, 1);
  }
  if (n == 0) luaL_error(L, "%s: bad argument #1 (no field to increment)", ctx);
  if (m->updated >= 0) {
    char ts[32];
    size_t len = jn_scalar_timestamp(m->conn, ts);
    jn_buf_adds(L, &b, ", ");
    jn_buf_addident(L, &b, NULL, m->f[m->updated].col);
    jn_buf_adds(L, &b, " = ?");
    lua_pushlstring(L, ts, len);
    jn_select_bindt(L, &s, -1, m->f[m->updated].type);
    lua_pop(L, 1);
  }
  add_where(L, m, 3, &b, &s, ctx);
  return run_write(L, m, &b, &s);
}

/*** One aggregate of a field over the rows that match:
** `SELECT sum("f") FROM t WHERE ...` (sum, max, min, avg).
@function Model:_aggregate
@tparam string fn sum, max, min or avg
@tparam string field
@tparam[opt] table opts where
@treturn number|string|nil|fail max and min as the field reads; nil when no row matches
*/
static int model_aggregate(lua_State *L) {
  static const char *const fns[] = { "sum", "max", "min", "avg", NULL };
  static const char *const agg_opts[] = { "where", NULL };
  char ctx[96];
  jn_Model *m = check_self(L, "aggregate");
  int fn = luaL_checkoption(L, 2, NULL, fns), f, rc, cast;
  jn_Buf b;
  jn_Select s;
  jn_St *st;
  method_ctx(ctx, sizeof ctx, m, fns[fn]);
  f = lua_type(L, 3) == LUA_TSTRING ? jn_schema_field(L, m, 3) : -1;
  if (f < 0)
    luaL_error(L, "%s: bad argument #1 (a field of %s expected, got %s)", ctx, m->name,
               lua_type(L, 3) == LUA_TSTRING ? lua_tostring(L, 3) : luaL_typename(L, 3));
  if (fn != 1 && fn != 2 && m->f[f].type != JN_T_INTEGER && m->f[f].type != JN_T_REAL)
    luaL_error(L, "%s: bad argument #1 (an INTEGER or REAL field expected, '%s' is not)", ctx,
               m->f[f].name);
  lua_settop(L, 4);
  jn_conn_checkopts(L, 4, agg_opts, ctx);
  jn_select_init(L, &s);
  jn_buf_init(L, &b);
  cast = fn == 0 && m->f[f].type == JN_T_INTEGER && m->conn->dialect->sum_widens;
  jn_buf_adds(L, &b, cast ? "SELECT CAST(" : "SELECT ");
  jn_buf_adds(L, &b, fns[fn]);
  jn_buf_adds(L, &b, "(");
  jn_buf_addident(L, &b, NULL, m->f[f].col);
  jn_buf_adds(L, &b, cast ? ") AS BIGINT) FROM " : ") FROM ");
  jn_buf_adds(L, &b, m->qtable);
  add_where(L, m, 4, &b, &s, ctx);
  st = jn_stmt_cached(L, m->conn, b.p, b.n, &rc);
  if (st == NULL) return jn_error_result(L, m->conn, rc, NULL);
  jn_select_bindlist(L, m->conn, st, &s);
  rc = jn_conn_step(L, m->conn, st);
  if (rc == SQLITE_ROW) {
    if (fn == 0 && jn_e_coltype(m->conn->eng, st, 0) == SQLITE_NULL) lua_pushinteger(L, 0);
    else jn_stmt_pushcolumn(L, m->conn->eng, st, 0, fn == 1 || fn == 2 ? m->f[f].type : JN_T_ANY);
  }
  return jn_error_finish(L, m->conn, st, rc, SQLITE_ROW);
}

/* The field named by the string at index k of the list at listidx, or a
** raise naming what. */
static int list_field(lua_State *L, jn_Model *m, int listidx, int k, const char *what,
                      const char *ctx) {
  int f;
  lua_rawgeti(L, listidx, k);
  f = lua_type(L, -1) == LUA_TSTRING ? jn_schema_field(L, m, lua_gettop(L)) : -1;
  if (f < 0)
    luaL_error(L, "%s: bad option '%s' (element %d is no field of %s)", ctx, what, k, m->name);
  lua_pop(L, 1);
  return f;
}

/* Is field i left out of an INSERT whose values start at base + 1 (an
** autoincrement key without a value: the database gives it)? */
static int insert_skips(lua_State *L, jn_Model *m, int base, int i) {
  return i == m->pk && lua_isnil(L, base + 1 + i) && (m->f[i].flags & JN_F_AUTOINC);
}

/*
** Build the upsert's SQL in b for the row at base + 1 .. base + nfields,
** the conflict fields listed at 3 (nt) and the fields to update at 4 (nu).
** [-0, +0, m]
*/
static void upsert_sql(lua_State *L, jn_Model *m, int base, int nt, int nu, jn_Buf *b,
                       const char *ctx) {
  int i, k = 0;
  jn_buf_adds(L, b, "INSERT INTO ");
  jn_buf_adds(L, b, m->qtable);
  jn_buf_adds(L, b, " (");
  for (i = 0; i < m->nfields; i++) {
    if (insert_skips(L, m, base, i)) continue;
    if (k++) jn_buf_adds(L, b, ", ");
    jn_buf_addident(L, b, NULL, m->f[i].col);
  }
  jn_buf_adds(L, b, ") VALUES (");
  for (i = 0; i < k; i++) jn_buf_adds(L, b, i ? ", ?" : "?");
  jn_buf_adds(L, b, ") ON CONFLICT (");
  for (i = 1; i <= nt; i++) {
    if (i > 1) jn_buf_adds(L, b, ", ");
    jn_buf_addident(L, b, NULL, m->f[list_field(L, m, 3, i, "conflictFields", ctx)].col);
  }
  if (nu == 0) {
    jn_buf_adds(L, b, ") DO NOTHING");
    return;
  }
  jn_buf_adds(L, b, ") DO UPDATE SET ");
  for (i = 1; i <= nu; i++) {
    const char *name = m->f[list_field(L, m, 4, i, "updateOnDuplicate", ctx)].col;
    if (i > 1) jn_buf_adds(L, b, ", ");
    jn_buf_addident(L, b, NULL, name);
    jn_buf_adds(L, b, " = ");
    jn_buf_addident(L, b, "excluded", name);
  }
}

/*** Insert a row, or on a conflict update the row it meets, in one
** statement: `INSERT INTO t (...) VALUES (...) ON CONFLICT ("k", ...) DO
** UPDATE SET "f" = excluded."f", ...` (`DO NOTHING` when update is nil).
** The values are built and checked as create does.  For lua/junction's
** upsert and bulkCreate.
@function Model:_upsert
@tparam table values
@tparam table target field names of the primary key or a unique constraint
@tparam[opt] table update field names to set from the values on a conflict
@tparam[opt] string method the method named in messages
@treturn integer|fail rows changed (0: a conflict and DO NOTHING)
*/
static int model_upsert(lua_State *L) {
  char ctx[96];
  jn_Model *m = check_self(L, "upsert");
  jn_Conn *c = m->conn;
  jn_Buf b;
  jn_St *st;
  int inst, base, rc, i, k = 0, nt, nu;
  method_ctx(ctx, sizeof ctx, m, luaL_optstring(L, 5, "upsert"));
  luaL_checktype(L, 2, LUA_TTABLE);
  luaL_checktype(L, 3, LUA_TTABLE);
  if (!lua_isnoneornil(L, 4)) luaL_checktype(L, 4, LUA_TTABLE);
  lua_settop(L, 4);
  nt = (int)lua_rawlen(L, 3);
  nu = lua_istable(L, 4) ? (int)lua_rawlen(L, 4) : 0;
  if (nt == 0) luaL_error(L, "%s: bad option 'conflictFields' (no field)", ctx);
  for (i = 1; i <= nt; i++) list_field(L, m, 3, i, "conflictFields", ctx);
  for (i = 1; i <= nu; i++) list_field(L, m, 4, i, "updateOnDuplicate", ctx);
  inst = jn_inst_build(L, m, 1, 2, ctx);             /* 5 */
  base = lua_gettop(L);
  rc = jn_inst_insertrow(L, inst);                   /* base+1 .. base+nfields */
  if (rc != SQLITE_OK) return jn_error_result(L, c, rc, NULL);
  jn_buf_init(L, &b);
  upsert_sql(L, m, base, nt, nu, &b, ctx);
  st = jn_stmt_cached(L, c, b.p, b.n, &rc);
  if (st == NULL) return jn_error_result(L, c, rc, NULL);
  for (i = 0; i < m->nfields; i++) {
    if (insert_skips(L, m, base, i)) continue;
    if (jn_stmt_bindvalue(L, c, st, ++k, base + 1 + i, m->f[i].type) != 0)
      luaL_error(L, "%s: bad value for field '%s' (%s cannot be stored)", ctx, m->f[i].name,
                 luaL_typename(L, base + 1 + i));
  }
  rc = jn_conn_run(L, c, st);
  if (rc == SQLITE_OK) lua_pushinteger(L, jn_e_changes(c->eng, c->db));
  return jn_error_result(L, c, rc, NULL);
}

/* Body of findOrCreate under jn_conn_atomic: [w, model, where, values]. */
static int find_or_create_body(lua_State *L) {
  jn_Model *m = (jn_Model *)lua_touserdata(L, 2);
  char ctx[96];
  int rc, inst;
  method_ctx(ctx, sizeof ctx, m, "findOrCreate");
  lua_newtable(L);                     /* 5: { where = where } */
  lua_pushvalue(L, 3);
  lua_setfield(L, 5, "where");
  rc = jn_include_find(L, m, 2, 5, 1, ctx);
  if (rc != 1) return rc;
  if (!lua_isnil(L, -1)) {
    lua_pushboolean(L, 0);
    return 2;
  }
  lua_pop(L, 1);
  inst = jn_inst_build(L, m, 2, 4, ctx);
  rc = jn_inst_insert(L, inst);
  if (rc != SQLITE_OK) return jn_error_result(L, m->conn, rc, NULL);
  lua_pushboolean(L, 1);
  return 2;
}

/*
** Check the values of the table at idx (field name -> value) against their
** fields, as a create would store them; names that are no field are left
** for the create to refuse.  Returns SQLITE_OK, or JN_VALIDATION with the
** message and details pushed.
** [-0, +(0|2), m]
*/
static int check_values(lua_State *L, jn_Model *m, int idx) {
  int errs, f;
  lua_pushnil(L);
  errs = lua_gettop(L);
  lua_pushnil(L);
  while (lua_next(L, idx) != 0) {
    f = lua_type(L, -2) == LUA_TSTRING ? jn_schema_field(L, m, -2) : -1;
    if (f >= 0 && (lua_type(L, -1) == LUA_TBOOLEAN || lua_type(L, -1) == LUA_TNUMBER ||
                   lua_type(L, -1) == LUA_TSTRING) && jn_inst_value(L, m, f, -1, errs))
      lua_pop(L, 1);
    lua_pop(L, 1);
  }
  if (!lua_isnil(L, errs)) return jn_inst_invalid(L, m, errs);
  lua_pop(L, 1);
  return SQLITE_OK;
}

/*** Find the row matching where, or create it from where's plain values and defaults.
@function Model:findOrCreate
@tparam table opts where, defaults
@treturn Instance,boolean|fail the instance and whether it was created
*/
static int model_find_or_create(lua_State *L) {
  static const char *const foc_opts[] = { "where", "defaults", NULL };
  char ctx[96];
  jn_Model *m = check_self(L, "findOrCreate");
  method_ctx(ctx, sizeof ctx, m, "findOrCreate");
  lua_settop(L, 2);
  jn_conn_checkopts(L, 2, foc_opts, ctx);
  if (jn_optfield(L, 2, "where") != LUA_TTABLE)
    luaL_error(L, "%s: missing option 'where' (a table of the values to find)", ctx);
  lua_pop(L, 1);
  jn_optfield(L, 2, "where");         /* 3 */
  lua_newtable(L);                     /* 4: values = defaults + where's plain values */
  jn_optfield(L, 2, "defaults");
  if (!lua_isnil(L, -1)) {
    if (!lua_istable(L, -1)) luaL_error(L, "%s: bad option 'defaults' (table expected)", ctx);
    lua_pushnil(L);
    while (lua_next(L, -2) != 0) {
      lua_pushvalue(L, -2);
      lua_insert(L, -2);
      lua_rawset(L, 4);
    }
  }
  lua_pop(L, 1);
  lua_pushnil(L);
  while (lua_next(L, 3) != 0) {
    if (lua_type(L, -2) == LUA_TSTRING && !lua_istable(L, -1)) {
      lua_pushvalue(L, -2);
      lua_insert(L, -2);
      lua_rawset(L, 4);
    } else {
      lua_pop(L, 1);
    }
  }
  lua_remove(L, 2);                    /* model, where, values */
  if (check_values(L, m, 3) == JN_VALIDATION) return jn_error_result(L, m->conn, JN_VALIDATION, NULL);
  return jn_conn_atomic(L, m->conn, find_or_create_body, 1, 0);
}

/* Model:_method(name, fn[, replace]): give instances a method (lua/junction's
** associations, soft delete, instance methods).  With replace, name must
** already be a method (never a field or an association), and the method
** it was is returned. */
static int model_add_method(lua_State *L) {
  jn_Model *m = check_self(L, "_method");
  const char *name = luaL_checkstring(L, 2);
  int replace = lua_toboolean(L, 4);
  luaL_checktype(L, 3, LUA_TFUNCTION);
  jn_schema_lookup(L, m);
  lua_getfield(L, -1, name);
  if (replace && !lua_isfunction(L, -1))
    luaL_error(L, "%s: '%s' is not a method", m->name, name);
  if (!replace && !lua_isnil(L, -1))
    luaL_error(L, "%s: '%s' is already a field, method or association", m->name, name);
  lua_insert(L, -2);
  lua_pushvalue(L, 3);
  lua_setfield(L, -2, name);
  lua_pop(L, 1);
  return replace ? 1 : 0;
}

/* Model:_taken(name): what name is on an instance of the model: nil when
** free, else a truthy value (the association of that name, or the one whose
** junction row instances carry under it).  For lua/junction, which makes an
** association only under a free name. */
static int model_taken(lua_State *L) {
  jn_Model *m = check_self(L, "_taken");
  luaL_checkstring(L, 2);
  jn_schema_lookup(L, m);
  lua_pushvalue(L, 2);
  lua_rawget(L, -2);
  if (!lua_isnil(L, -1) && luaL_testudata(L, -1, JN_ASSOC_MT) == NULL) lua_pushboolean(L, 1);
  return 1;
}

/* Model:_forget(alias, names): remove the association alias of the model
** and the method names of the list names (an association lua/junction made
** for the user, which one the user declares replaces). */
static int model_forget(lua_State *L) {
  jn_Model *m = check_self(L, "_forget");
  int i, n;
  luaL_checkstring(L, 2);
  luaL_checktype(L, 3, LUA_TTABLE);
  n = (int)lua_rawlen(L, 3);
  lua_settop(L, 3);
  jn_schema_uv(L, 1, JN_UV_ASSOCS);
  lua_pushvalue(L, 2);
  lua_pushnil(L);
  lua_rawset(L, -3);
  jn_schema_lookup(L, m);
  lua_pushvalue(L, 2);
  lua_pushnil(L);
  lua_rawset(L, -3);
  for (i = 1; i <= n; i++) {
    lua_rawgeti(L, 3, i);
    lua_pushnil(L);
    lua_rawset(L, -3);
  }
  return 0;
}

/* Model:_now(): the text junction writes in timestamps, now. */
static int model_now(lua_State *L) {
  jn_Model *m = check_self(L, "_now");
  char stamp[32];
  size_t n = jn_scalar_timestamp(m->conn, stamp);
  lua_pushlstring(L, stamp, n);
  return 1;
}

/* Model:_info(): a table describing the model, for lua/junction. */
static int model_info(lua_State *L) {
  jn_Model *m = check_self(L, "_info");
  int i;
  lua_createtable(L, 0, 6);
  lua_pushstring(L, m->name);
  lua_setfield(L, -2, "name");
  lua_pushstring(L, m->table);
  lua_setfield(L, -2, "tableName");
  if (m->schema != NULL) {
    lua_pushstring(L, m->schema);
    lua_setfield(L, -2, "schema");
  }
  lua_pushstring(L, m->qtable);   /* the table as SQL names it, for lua/junction's own SQL */
  lua_setfield(L, -2, "qtable");
  lua_pushstring(L, m->f[m->pk].name);
  lua_setfield(L, -2, "primaryKey");
  jn_schema_pushkeytype(L, &m->f[m->pk]);   /* the type of a field referring to the key */
  lua_setfield(L, -2, "keyType");
  lua_createtable(L, m->nfields, 0);
  for (i = 0; i < m->nfields; i++) {
    lua_pushstring(L, m->f[i].name);
    lua_rawseti(L, -2, i + 1);
  }
  lua_setfield(L, -2, "fields");
  lua_createtable(L, 0, m->nfields);   /* attribute -> column */
  for (i = 0; i < m->nfields; i++) {
    lua_pushstring(L, m->f[i].col);
    lua_setfield(L, -2, m->f[i].name);
  }
  lua_setfield(L, -2, "columns");
  lua_newtable(L);   /* the fields UNIQUE alone (groups are in the declarations) */
  for (i = 0; i < m->nfields; i++) {
    if (!(m->f[i].flags & JN_F_UNIQUE)) continue;
    lua_pushstring(L, m->f[i].name);
    lua_rawseti(L, -2, (int)lua_rawlen(L, -2) + 1);
  }
  lua_setfield(L, -2, "unique");
  jn_schema_uv(L, 1, JN_UV_FIELDS);
  lua_setfield(L, -2, "declarations");
  jn_schema_uv(L, 1, JN_UV_ASSOCS);
  lua_setfield(L, -2, "associations");
  jn_schema_uv(L, 1, JN_UV_CONN);
  lua_setfield(L, -2, "db");
  jn_schema_uv(L, 1, "underscored");
  lua_setfield(L, -2, "underscored");
  if (m->updated >= 0) {
    lua_pushstring(L, m->f[m->updated].name);
    lua_setfield(L, -2, "updatedAt");
  }
  return 1;
}

/* Push the model's own table (class methods and values set on the model,
** and the methods lua/junction gives one model), made on first use; or,
** with slot JN_UV_INSTANCE, the table Model.instance gives.
** [-0, +1, m] */
static void push_own(lua_State *L, int modelidx, int slot) {
  lua_getuservalue(L, modelidx);
  lua_rawgeti(L, -1, slot);
  if (!lua_istable(L, -1)) {
    lua_pop(L, 1);
    lua_newtable(L);
    lua_pushvalue(L, -1);
    lua_rawseti(L, -3, slot);
  }
  lua_remove(L, -2);
  if (slot == JN_UV_OWN) ((jn_Model *)lua_touserdata(L, modelidx))->has_own = 1;
}

/* Model:_own(): the model's own table, for lua/junction (scopes, soft
** delete, class methods); Model:_own("peek"): the same or nil, never made;
** Model:_own("instance"): the table of Model.instance.  [-0, +1, m] */
static int model_own(lua_State *L) {
  const char *which = luaL_optstring(L, 2, "");
  if (luaL_testudata(L, 1, JN_MODEL_MT) == NULL)
    luaL_error(L, "Model:_own: bad self (model expected, got %s)", luaL_typename(L, 1));
  if (strcmp(which, "peek") == 0) {
    lua_getuservalue(L, 1);
    lua_rawgeti(L, -1, JN_UV_OWN);
    return 1;
  }
  push_own(L, 1, strcmp(which, "instance") == 0 ? JN_UV_INSTANCE : JN_UV_OWN);
  return 1;
}

/* Model.associations (Sequelize's): alias -> description, made anew on each
** read by Model:getAssociations (lua/junction/assoc.lua), so it never goes
** stale when db:associate adds more.  Upvalue 1 is the methods table. */
static int model_associations(lua_State *L) {
  lua_pushliteral(L, "getAssociations");
  lua_rawget(L, lua_upvalueindex(1));
  if (lua_type(L, -1) != LUA_TFUNCTION) return 1;  /* not loaded: nil */
  lua_pushvalue(L, 1);
  lua_call(L, 1, 1);
  return 1;
}

/* Model.name, Model.tableName, Model.instance, then the model's own table
** (when it has one: most models have none, and pay nothing), then the
** methods every model has. */
static int model_index(lua_State *L) {
  jn_Model *m = (jn_Model *)lua_touserdata(L, 1);
  const char *k;
  /* the model metatable is upvalue 2: no registry lookup by name */
  if (m != NULL && (lua_type(L, 1) != LUA_TUSERDATA || !lua_getmetatable(L, 1))) m = NULL;
  else if (m != NULL) {
    if (!lua_rawequal(L, -1, lua_upvalueindex(2))) m = NULL;
    lua_pop(L, 1);
  }
  if (m == NULL)
    luaL_error(L, "junction.Model.__index: bad self (model expected, got %s)", luaL_typename(L, 1));
  /* the five names a model answers itself, told apart by their first
  ** letter before any strcmp: a method's name (create, findAll) costs none */
  k = lua_type(L, 2) == LUA_TSTRING ? lua_tostring(L, 2) : NULL;
  if (k != NULL && strchr("ntpia", k[0]) != NULL && k[0] != '\0') {
    if (strcmp(k, "name") == 0) { lua_pushstring(L, m->name); return 1; }
    if (strcmp(k, "tableName") == 0) { lua_pushstring(L, m->table); return 1; }
    if (strcmp(k, "primaryKey") == 0) { lua_pushstring(L, m->f[m->pk].name); return 1; }
    if (strcmp(k, "instance") == 0) {
      lua_getuservalue(L, 1);
      lua_rawgeti(L, -1, JN_UV_INSTANCE);
      return 1;
    }
    if (strcmp(k, "associations") == 0) return model_associations(L);
  }
  if (m->has_own) {
    lua_getuservalue(L, 1);
    lua_rawgeti(L, -1, JN_UV_OWN);
    lua_pushvalue(L, 2);
    lua_rawget(L, -2);
    if (!lua_isnil(L, -1)) return 1;
    lua_settop(L, 2);
  }
  lua_pushvalue(L, 2);
  lua_rawget(L, lua_upvalueindex(1));
  return 1;
}

/* Model.key = value: a class method (or any value) of this model alone, in
** its own table.  The names every model answers to (its methods, name,
** tableName, primaryKey, instance) cannot be replaced: junction's own Lua
** calls them.  Setting nil removes what was set.  Raises on misuse. */
static int model_newindex(lua_State *L) {
  jn_Model *m = (jn_Model *)luaL_testudata(L, 1, JN_MODEL_MT);
  const char *k;
  if (m == NULL)
    luaL_error(L, "junction.Model.__newindex: bad self (model expected, got %s)", luaL_typename(L, 1));
  if (lua_type(L, 2) != LUA_TSTRING)
    luaL_error(L, "%s: cannot set a %s key (names are strings)", m->name, luaL_typename(L, 2));
  k = lua_tostring(L, 2);
  lua_settop(L, 3);
  lua_pushvalue(L, 2);
  lua_rawget(L, lua_upvalueindex(1));
  if (!lua_isnil(L, -1) || strcmp(k, "name") == 0 || strcmp(k, "tableName") == 0 ||
      strcmp(k, "primaryKey") == 0 || strcmp(k, "instance") == 0 ||
      strcmp(k, "associations") == 0)
    luaL_error(L, "%s: cannot set '%s' (every model has it; choose another name)", m->name, k);
  lua_pop(L, 1);
  push_own(L, 1, JN_UV_OWN);
  lua_pushvalue(L, 2);
  lua_pushvalue(L, 3);
  lua_rawset(L, -3);
  return 0;
}

static int model_tostring(lua_State *L) {
  jn_Model *m = (jn_Model *)luaL_checkudata(L, 1, JN_MODEL_MT);
  jn_Buf b;
  int i;
  jn_buf_init(L, &b);
  jn_buf_adds(L, &b, "junction.Model ");
  jn_buf_adds(L, &b, m->name);
  jn_buf_adds(L, &b, " (table ");
  jn_buf_adds(L, &b, m->table);
  jn_buf_adds(L, &b, ": ");
  for (i = 0; i < m->nfields; i++) {
    if (i) jn_buf_adds(L, &b, ", ");
    jn_buf_adds(L, &b, m->f[i].name);
    if (i == m->pk) jn_buf_adds(L, &b, " (key)");
  }
  jn_buf_adds(L, &b, ")");
  lua_pushlstring(L, b.p, b.n);
  return 1;
}


static const luaL_Reg model_methods[] = {
  {"build", model_build},
  {"create", model_create},
  {"bulkCreate", model_bulk_create},
  {"findByPk", model_find_by_pk},
  {"findOne", model_find_one},
  {"findAll", model_find_all},
  {"count", model_count},
  {"findOrCreate", model_find_or_create},
  {"update", model_update},
  {"destroy", model_destroy},
  {"_method", model_add_method},
  {"_info", model_info},
  {"_own", model_own},
  {"_now", model_now},
  {"_taken", model_taken},
  {"_forget", model_forget},
  {"_increment", model_increment},
  {"_aggregate", model_aggregate},
  {"_upsert", model_upsert},
  {NULL, NULL}
};

/* Register the model metatable; "Model" (the method table) goes into the
** module table at -1 for lua/junction to extend. */
void jn_model_open(lua_State *L) {
  luaL_newmetatable(L, JN_MODEL_MT);
  lua_newtable(L);
  lua_pushvalue(L, -2);                 /* each method's upvalues: check_self's metatable, */
  luaL_getmetatable(L, JN_INST_MT);     /* and its instances' (jn_inst_open ran first) */
  luaL_setfuncs(L, model_methods, 2);
  lua_pushvalue(L, -1);
  lua_setfield(L, -4, "Model");
  lua_pushvalue(L, -1);
  lua_pushvalue(L, -3);
  lua_pushcclosure(L, model_index, 2);
  lua_setfield(L, -3, "__index");
  lua_pushcclosure(L, model_newindex, 1);
  lua_setfield(L, -2, "__newindex");
  lua_pushcfunction(L, model_tostring);
  lua_setfield(L, -2, "__tostring");
  lua_pop(L, 1);
}
