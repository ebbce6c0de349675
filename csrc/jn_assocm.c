/*
** jn_assocm.c: the association methods Lua calls.  db:_associate (the
** Lua side of junction has parsed and named the association; the core in
** jn_assoc.c declares it) and, for belongsToMany, the instance methods it
** makes, each one C call over cached statements: get, set, add, remove,
** has, count, create.  Each checks its arguments, reads the keys and runs
** the core's body under jn_conn_atomic.  A method is a closure over
** (association, "Post:setGenres", the instance metatable, its body).
*/
#include "jn.h"

/* Method roles of a belongsToMany association. */
enum { R_GET, R_SET, R_ADD, R_ADDS, R_REMOVE, R_REMOVES, R_HAS, R_HASES, R_COUNT, R_CREATE };

static const char *const roles[] = {
  "get", "set", "add", "addMany", "remove", "removeMany", "has", "hasMany", "count", "create", NULL
};

static const char *const get_opts[] = {
  "where", "order", "limit", "offset", "attributes", "joinTableAttributes", "through", NULL
};

/* {====== belongsToMany methods */

/*
** The association of the running method (upvalue 1) and its source
** instance at index 1, saved: raises naming the method otherwise.  Leaves
** the source's key on top (jn_assoc_bindkey binds it).  [-0, +1, e]
*/
static jn_Assoc *check_method_key(lua_State *L) {
  jn_Assoc *a = (jn_Assoc *)lua_touserdata(L, lua_upvalueindex(1));
  jn_Inst *inst = (jn_Inst *)lua_touserdata(L, 1);
  if (inst != NULL) {   /* the instance metatable is upvalue 3: no registry lookup */
    if (!lua_getmetatable(L, 1)) inst = NULL;
    else if (!lua_rawequal(L, -1, lua_upvalueindex(3))) { inst = NULL; lua_pop(L, 1); }
    else lua_pop(L, 1);
  }
  if (inst == NULL || inst->model != a->source)
    luaL_error(L, "%s: bad self (%s instance expected, got %s; call it with ':')",
               jn_assoc_method(L), a->source->name, jn_error_typename(L, 1));
  if (a->source->conn->db == NULL) jn_conn_checkopen(L, a->source->conn, jn_assoc_method(L), NULL);
  if (inst->destroyed) luaL_error(L, "%s: instance was destroyed", jn_assoc_method(L));
  jn_inst_get(L, 1, a->source_key);
  if (!inst->saved || lua_isnil(L, -1))
    luaL_error(L, "%s: the %s is not saved yet (no %s)", jn_assoc_method(L), a->source->name,
               a->source->f[a->source_key].name);
  return a;
}

/* check_method_key, the key popped. [-0, +0, e] */
static jn_Assoc *check_method(lua_State *L) {
  jn_Assoc *a = check_method_key(L);
  lua_pop(L, 1);
  return a;
}

/* check_method for the hasMany and hasOne methods of jn_hasmany.c, closures
** of the same upvalues. */
jn_Assoc *jn_assocm_checkself(lua_State *L) {
  return check_method(L);
}

/*
** Replace the options table at idx (when it is one) by a raw copy of its
** fields, so that whatever reads them later never runs the caller's
** metamethods (which might close the connection or re-enter junction).
** [-0, +0, m]
*/
static void copy_options(lua_State *L, int idx) {
  if (!lua_istable(L, idx)) return;
  lua_newtable(L);
  lua_pushnil(L);
  while (lua_next(L, idx) != 0) {
    lua_pushvalue(L, -2);
    lua_insert(L, -2);
    lua_rawset(L, -4);
  }
  lua_replace(L, idx);
}

/* The get method's upvalue (where the write methods keep their body): its
** SQL text per order string, a table the association's get closures share. */
#define UPV_ORDERS JN_UPV_BODY
#define UPV_TARGET (JN_UPV_BODY + 1)    /* get: the target model, for its instances */
#define UPV_THROUGH (JN_UPV_BODY + 2)   /* get: the junction model */

/*
** Are the options at 2 { order = <string> } and nothing else (read raw)?
** Then push the string.  That shape's SQL text is kept per order string
** (UPV_ORDERS): a string names one field, so there are few.
*/
static int order_only(lua_State *L) {
  int n = 0;
  if (!lua_istable(L, 2)) return 0;
  lua_pushnil(L);
  while (lua_next(L, 2) != 0) {
    int ok = ++n == 1 && lua_type(L, -2) == LUA_TSTRING && lua_type(L, -1) == LUA_TSTRING
             && strcmp(lua_tostring(L, -2), "order") == 0;
    if (!ok) { lua_pop(L, n == 1 ? 2 : 3); return 0; }   /* (and the first string) */
    lua_insert(L, -2);   /* the string stays, below the key */
  }
  return n == 1;
}

/* How many order strings an association keeps the SQL of.  The strings
** that name its target's fields are few, but the same order can be spelt
** in countless ways ("name  DESC", "name desc"): an order taken from a
** request would otherwise grow the table without end. */
#define ORDERS_KEPT 64

/* Keep the SQL text (b) of get{ order = <the string at orderidx> }, while
** fewer than ORDERS_KEPT are kept (their count at the key true). */
static void keep_order_sql(lua_State *L, int orderidx, const jn_Buf *b) {
  int t = lua_upvalueindex(UPV_ORDERS);
  lua_Integer n;
  lua_pushboolean(L, 1);
  lua_rawget(L, t);
  n = lua_tointeger(L, -1);
  lua_pop(L, 1);
  if (n >= ORDERS_KEPT) return;   /* built each time, as any other options */
  lua_pushboolean(L, 1);
  lua_pushinteger(L, n + 1);
  lua_rawset(L, t);
  lua_pushvalue(L, orderidx);
  lua_pushlstring(L, b->p, b->n);
  lua_rawset(L, t);
}

/*
** An order on the target's key sorts by the junction's column instead: the
** join makes them equal, and the junction's index on (source key, target
** key) gives that order, where the target's key would need a sort (SQLite:
** a temporary B-tree).  Only between INTEGER columns: equal there means the
** same value, which sorts the same; text may join under another collation.
*/
static void order_by_link(jn_Assoc *a, jn_Select *s) {
  if (a->target->f[a->target_key].type != JN_T_INTEGER
      || a->through->f[a->other].type != JN_T_INTEGER) return;
  s->eqf = a->target_key;
  s->eqalias = "j";
  s->eqcol = a->through->f[a->other].col;
}

/* The statement of a get with options (at 2): built, from the cache.
** keep: the stack index of the order string of options that are order_only,
** whose SQL is kept; else 0. */
static jn_St *get_stmt(lua_State *L, jn_Assoc *a, jn_Select *s, jn_Rows *r, int keep, int *rc) {
  jn_Buf b;
  int *tcols;
  jn_select_init(L, s);
  order_by_link(a, s);
  r->ntc = jn_assoc_throughcols(L, a, 2, &tcols);
  r->tcols = tcols;
  jn_buf_init(L, &b);
  jn_buf_adds(L, &b, "SELECT ");
  jn_query_columns(L, a->target, 2, NULL, 0, "t", &b, s, jn_assoc_method(L));
  jn_assoc_addthrough(L, a, &b, tcols, r->ntc);
  jn_assoc_from(L, a, &b);
  jn_buf_adds(L, &b, " WHERE ");
  jn_assoc_link(L, a, &b);
  jn_buf_adds(L, &b, " = ?");
  jn_inst_get(L, 1, a->source_key);
  jn_select_bind(L, s, -1);
  lua_pop(L, 1);
  lua_pushliteral(L, "where");
  lua_rawget(L, 2);
  if (!lua_isnil(L, -1)) {
    jn_buf_adds(L, &b, " AND ");
    jn_where_compile(L, a->target, lua_gettop(L), "t", &b, s, jn_assoc_method(L));
  }
  lua_pop(L, 1);
  lua_pushliteral(L, "through");                  /* through = { where = ... }: on the junction */
  lua_rawget(L, 2);
  jn_assoc_throughwhere(L, a, lua_gettop(L), jn_assoc_method(L));
  if (!lua_isnil(L, -1)) {
    jn_buf_adds(L, &b, " AND ");
    jn_where_compile(L, a->through, lua_gettop(L), "j", &b, s, jn_assoc_method(L));
  }
  lua_pop(L, 2);
  jn_query_tail(L, a->target, 2, "t", &b, s, jn_assoc_method(L));
  if (keep) keep_order_sql(L, keep, &b);
  return jn_stmt_cached(L, a->source->conn, b.p, b.n, rc);
}

/*** The associated instances.
@function instance:getGenres
@tparam[opt] table opts where, order, limit, offset, attributes, joinTableAttributes
@treturn {Instance,...}|fail
*/
static int btm_get(lua_State *L) {
  jn_Assoc *a;
  jn_Conn *c;
  jn_Select s;
  jn_Rows r;
  jn_St *st;
  int rc, n = 0, arr, order = 0;
  lua_settop(L, 2);
  a = check_method_key(L);   /* 3: the source's key */
  c = a->source->conn;
  if (order_only(L)) {       /* 4: getGenres{ order = "name" }'s string: its SQL kept */
    lua_pushvalue(L, 4);
    lua_rawget(L, lua_upvalueindex(UPV_ORDERS));   /* 5: the text, or nil */
    order = lua_isnil(L, 5) ? 1 : 2;
  }
  if (order != 2) {
    copy_options(L, 2);
    jn_conn_checkopts(L, 2, get_opts, jn_assoc_method(L));
  }
  r.a = a;
  r.s = &s;
  r.col0 = 0;
  r.nrec = 0;
  r.mt = lua_upvalueindex(3);
  r.tmodel = lua_upvalueindex(UPV_TARGET);
  r.jmodel = lua_upvalueindex(UPV_THROUGH);
  if (order == 2) {
    r.ntc = a->through_extra ? a->through->nfields : 0;
    r.tcols = NULL;
    st = jn_stmt_cachedat(L, c, 5, &rc);   /* the kept text: neither copied nor hashed again */
    s.cols = NULL;
    s.ncols = a->target->nfields;
    s.nbind = 0;
  } else if (lua_isnil(L, 2)) {
    /* the common call: a statement kept in the association, nothing built */
    r.ntc = a->through_extra ? a->through->nfields : 0;
    r.tcols = NULL;
    st = jn_assoc_slot(L, a, r.ntc ? JN_AS_GET_THROUGH : JN_AS_GET,
                       r.ntc ? "get_through" : "get", &rc);
    s.cols = NULL;
    s.ncols = a->target->nfields;
    s.nbind = 0;
  } else {
    st = get_stmt(L, a, &s, &r, order == 1 ? 4 : 0, &rc);
  }
  if (st == NULL) return jn_error_result(L, c, rc, NULL);
  if (s.nbind) jn_select_bindlist(L, c, st, &s);
  else jn_assoc_bindkey(L, a, 3, st, 1);
  jn_inst_newlist(L, 0);
  arr = lua_gettop(L);
  while ((rc = jn_conn_step(L, c, st)) == SQLITE_ROW) {
    jn_assoc_pushrow(L, &r, st);
    lua_rawseti(L, arr, ++n);
  }
  if (rc != SQLITE_DONE) return jn_error_finish(L, c, st, rc, SQLITE_DONE);
  jn_e_reset(c->eng, st);
  return 1;
}

/* set/add (many or one): check everything, then run jn_assoc_linkbody atomically. */
static int link_method(lua_State *L, int single, int del) {
  jn_Assoc *a = check_method(L);
  jn_Key room[JN_KEYS_ROOM];   /* the keys of a short list: this frame outlives the call */
  int n, thr, fn;
  lua_settop(L, 3);
  lua_pushvalue(L, 2);                            /* 4: the list as given */
  n = jn_assoc_readkeys(L, a, 2, single, jn_assoc_method(L), room);
  lua_replace(L, 2);                              /* the key array replaces the list */
  copy_options(L, 3);
  thr = jn_assoc_checkthrough(L, a, 3);
  if (thr < 0) return jn_error_result(L, a->source->conn, JN_VALIDATION, NULL);
  fn = thr && lua_isfunction(L, 3) ? 3 : 0;
  /* what each target brings for its link (nil when none: the common call) */
  if (jn_assoc_pertarget(L, a, 4, single, 2, n, fn, fn ? 0 : thr) < 0)
    return jn_error_result(L, a->source->conn, JN_VALIDATION, NULL);
  lua_replace(L, 4);
  if (!thr || fn) { lua_pushnil(L); lua_replace(L, 3); }
  lua_pushinteger(L, n);
  lua_pushboolean(L, del);
  lua_pushvalue(L, 4);
  lua_remove(L, 4);                               /* inst, keys, thr, n, del, per */
  /* it reads before it writes: in a transaction from the start, on SQLite
  ** (where one writer at a time gets in); where rows are locked, the body
  ** locks the source's row itself, or writes in one statement */
  return jn_conn_atomic(L, a->source->conn, jn_assoc_linkbody, !jn_assoc_locksrows(a->source->conn), 2);
}

static int btm_set(lua_State *L) { return link_method(L, 0, 1); }

static int btm_add(lua_State *L) { return link_method(L, 1, 0); }

static int btm_adds(lua_State *L) { return link_method(L, 0, 0); }

/* remove/removes: the deletes, all or none. */
static int unlink_method(lua_State *L, int single) {
  jn_Assoc *a = check_method(L);
  jn_Key room[JN_KEYS_ROOM];
  int n;
  lua_settop(L, 2);
  n = jn_assoc_readkeys(L, a, 2, single, jn_assoc_method(L), room);
  lua_replace(L, 2);
  lua_pushinteger(L, n);
  return jn_conn_atomic(L, a->source->conn, jn_assoc_unlinkbody, 0, 2);
}

static int btm_remove(lua_State *L) { return unlink_method(L, 1); }

static int btm_removes(lua_State *L) { return unlink_method(L, 0); }

/*
** The key at idx when it is an integer of an INTEGER target key: the
** number itself, or a saved target instance (its metatable is upvalue 3)
** holding one.  Returns 0 for anything else, which takes the general way
** (jn_assoc_readkeys: its conversions and its errors).
*/
static int int_key(lua_State *L, jn_Assoc *a, int idx, sqlite3_int64 *v) {
  int ok;
  if (a->target->f[a->target_key].type != JN_T_INTEGER) return 0;
  if (lua_type(L, idx) == LUA_TNUMBER) return jn_scalar_toi64(L, idx, v);
  if (lua_type(L, idx) != LUA_TUSERDATA || !lua_getmetatable(L, idx)) return 0;
  ok = lua_rawequal(L, -1, lua_upvalueindex(3));
  lua_pop(L, 1);
  if (!ok || ((jn_Inst *)lua_touserdata(L, idx))->model != a->target) return 0;
  jn_inst_get(L, idx, a->target_key);
  ok = lua_type(L, -1) == LUA_TNUMBER && jn_scalar_toi64(L, -1, v);
  lua_pop(L, 1);
  return ok;
}

/* has/hases: true when every key is linked. */
static int has_method(lua_State *L, int single) {
  jn_Assoc *a;
  jn_Key room[JN_KEYS_ROOM];
  sqlite3_int64 v;
  int n;
  lua_settop(L, 2);
  a = check_method_key(L);                /* 3: the source's key */
  if (single && int_key(L, a, 2, &v)) {   /* the common call: one statement, no key array */
    jn_Conn *c = a->source->conn;
    int rc;
    jn_St *st = jn_assoc_slot(L, a, JN_AS_HAS, "has", &rc);
    if (st == NULL) return jn_error_result(L, c, rc, NULL);
    jn_assoc_bindkey(L, a, 3, st, 1);
    jn_stmt_bindi64(L, c, st, 2, v);
    rc = jn_conn_step(L, c, st);
    if (rc != SQLITE_ROW) {
      rc = jn_error_result(L, c, rc, NULL);
      jn_e_reset(c->eng, st);
      return rc;
    }
    lua_pushboolean(L, jn_e_col_int64(c->eng, st, 0) != 0);
    jn_e_reset(c->eng, st);
    return 1;
  }
  lua_settop(L, 2);
  n = jn_assoc_readkeys(L, a, 2, single, jn_assoc_method(L), room);
  lua_replace(L, 2);
  if (n == 0) { lua_pushboolean(L, 1); return 1; }
  if (n <= jn_assoc_hasmax(a)) return jn_assoc_hasrun(L, a, 1, 2, n);   /* one statement: consistent by itself */
  lua_pushinteger(L, n);
  return jn_conn_atomic(L, a->source->conn, jn_assoc_hasbody, 1, 2);
}

static int btm_has(lua_State *L) { return has_method(L, 1); }

static int btm_hases(lua_State *L) { return has_method(L, 0); }

/*** How many are linked (opts.where filters the targets).
@function instance:countGenres
*/
static int btm_count(lua_State *L) {
  static const char *const count_opts[] = { "where", "through", NULL };
  jn_Assoc *a;
  jn_Conn *c;
  jn_St *st;
  int rc;
  lua_settop(L, 2);
  a = check_method_key(L);                       /* 3: the source's key */
  c = a->source->conn;
  if (lua_isnil(L, 2)) {                         /* the common call: no options */
    st = jn_assoc_slot(L, a, JN_AS_COUNT, "count", &rc);
    if (st == NULL) return jn_error_result(L, c, rc, NULL);
    jn_assoc_bindkey(L, a, 3, st, 1);
    return jn_assoc_pushcount(L, c, st);
  }
  copy_options(L, 2);
  jn_conn_checkopts(L, 2, count_opts, jn_assoc_method(L));
  if (lua_istable(L, 2)) {
    lua_pushliteral(L, "where");
    lua_rawget(L, 2);
    lua_pushliteral(L, "through");
    lua_rawget(L, 2);
    jn_assoc_throughwhere(L, a, 5, jn_assoc_method(L));   /* 4 where, 5 through, 6 its where */
  } else {
    lua_pushnil(L);
    lua_pushnil(L);
    lua_pushnil(L);
  }
  if (lua_isnil(L, 4) && lua_isnil(L, 6)) {
    st = jn_assoc_slot(L, a, JN_AS_COUNT, "count", &rc);
    if (st == NULL) return jn_error_result(L, c, rc, NULL);
    jn_assoc_bindkey(L, a, 3, st, 1);
  } else {
    st = jn_assoc_countwhere2(L, a, lua_isnil(L, 4) ? 0 : 4, lua_isnil(L, 6) ? 0 : 6, &rc);
    if (st == NULL) return jn_error_result(L, c, rc, NULL);
  }
  return jn_assoc_pushcount(L, c, st);
}

/*** Create a target and link it, atomically.
@function instance:createGenre
*/
static int btm_create(lua_State *L) {
  jn_Assoc *a = check_method(L);
  int thr;
  lua_settop(L, 3);
  copy_options(L, 3);
  thr = jn_assoc_checkthrough(L, a, 3);
  if (thr < 0) return jn_error_result(L, a->source->conn, JN_VALIDATION, NULL);
  if (!thr) { lua_pushnil(L); lua_replace(L, 3); }
  lua_pushnil(L);
  lua_insert(L, 2);                      /* inst, nil, values, thr */
  lua_remove(L, 2);
  lua_getuservalue(L, lua_upvalueindex(1));
  lua_getfield(L, -1, "target");
  lua_remove(L, -2);                     /* inst, values, thr, target */
  return jn_conn_atomic(L, a->source->conn, jn_assoc_createbody, 0, 2);
}

/* }====== */

/* {====== Declaring */

static const lua_CFunction role_fn[] = {
  btm_get, btm_set, btm_add, btm_adds, btm_remove, btm_removes, btm_has, btm_hases, btm_count,
  btm_create
};

/* The body each role runs under jn_conn_atomic (NULL: none). */
static const lua_CFunction role_body[] = {
  NULL, jn_assoc_linkbody, jn_assoc_linkbody, jn_assoc_linkbody, jn_assoc_unlinkbody,
  jn_assoc_unlinkbody, jn_assoc_hasbody, jn_assoc_hasbody, NULL, jn_assoc_createbody
};

/*
** With a method's association, its context and the instance metatable on
** top, push its body as a closure over the first two (nil when body is
** NULL): the method's upvalue JN_UPV_BODY, which jn_conn_atomic runs, so
** that a call allocates no closure.  [-0, +1, m]
*/
void jn_assocm_pushbody(lua_State *L, lua_CFunction body) {
  if (body == NULL) {
    lua_pushnil(L);
    return;
  }
  lua_pushvalue(L, -3);
  lua_pushvalue(L, -3);
  lua_pushcclosure(L, body, 2);
}

/* Push the table of the association's get closures (UPV_ORDERS), made
** once, kept in its uservalue.  (Their other upvalues, UPV_TARGET and
** UPV_THROUGH, spare a lookup of the models per call.) */
static void push_orders(lua_State *L, int associdx) {
  lua_getuservalue(L, associdx);
  lua_getfield(L, -1, "get_order");
  if (!lua_istable(L, -1)) {
    lua_pop(L, 1);
    lua_newtable(L);
    lua_pushvalue(L, -1);
    lua_setfield(L, -3, "get_order");
  }
  lua_remove(L, -2);
}

/* Make name -> closure(role) in the source's lookup; raise on a clash. */
static void add_methods(lua_State *L, jn_Assoc *a, int associdx, int namesidx, const char *ctx) {
  jn_schema_lookup(L, a->source);
  lua_pushnil(L);
  while (lua_next(L, namesidx) != 0) {
    int role = -1, i;
    const char *r = lua_tostring(L, -1), *name = lua_tostring(L, -2);
    for (i = 0; r != NULL && roles[i] != NULL; i++)
      if (strcmp(r, roles[i]) == 0) role = i;
    if (role < 0 || name == NULL) luaL_error(L, "%s: bad method role '%s'", ctx, r ? r : "?");
    lua_getfield(L, -3, name);
    if (!lua_isnil(L, -1))
      luaL_error(L, "%s: method '%s' clashes with a field, method or association of %s", ctx,
                 name, a->source->name);
    lua_pop(L, 1);
    lua_pushvalue(L, associdx);
    lua_pushfstring(L, "%s:%s", a->source->name, name);
    luaL_getmetatable(L, JN_INST_MT);
    if (role == R_GET) {
      int t, j;
      push_orders(L, associdx);
      jn_assoc_pushmodels(L, associdx, &t, &j);
      lua_pushcclosure(L, btm_get, UPV_THROUGH);
    } else {
      jn_assocm_pushbody(L, role_body[role]);
      lua_pushcclosure(L, role_fn[role], JN_UPV_BODY);
    }
    lua_setfield(L, -4, name);
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
}

/*
** db:_associate(source, kind, target, opts): record an association.  opts
** has as (the alias), foreignKey, otherKey, sourceKey, targetKey, through
** (a model), and for belongsToMany names (method name -> role).  Returns
** the association.
*/
static int conn_associate(lua_State *L) {
  char ctx[160];
  jn_Assoc *a = jn_assoc_declare(L, ctx, sizeof ctx);
  if (a->kind == JN_A_BELONGS_TO_MANY) {
    lua_getfield(L, 5, "names");
    if (lua_istable(L, -1)) add_methods(L, a, 7, lua_gettop(L), ctx);
    lua_pop(L, 1);
  }
  lua_pushvalue(L, 7);
  return 1;
}

/* }====== */

/* Add db:_associate to "Connection" of the module table at -1. */
void jn_assocm_open(lua_State *L) {
  lua_getfield(L, -1, "Connection");
  lua_pushcfunction(L, conn_associate);
  lua_setfield(L, -2, "_associate");
  lua_pop(L, 1);
}
