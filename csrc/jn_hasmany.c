/*
** jn_hasmany.c: the write core of the associations whose foreign key sits
** in the target's own table: hasMany's set, add, remove, has and count, and
** hasOne's set.  Each method is one C call over statements the association
** keeps: a write is `UPDATE target SET fk = ? WHERE key IN (...)` (or
** `SET fk = NULL` to unlink), a read `SELECT count(*) ... WHERE fk = ?`.
**
** Keys are read by jn_assoc_keylist, the reader of the belongsToMany
** methods, so that every kind of association takes the same lists (keys,
** instances, "1" for 1, non-sequences refused) and says the same things
** about them; a key that is no row is reported the way belongsToMany
** reports it (nil, "Author:addBooks: book_id 99 not found", 787,
** { missing = { 99 } }).  Every write that can touch more than one row
** runs under jn_conn_atomic with a guard, so it is all or nothing.
**
** The methods are made by Association:_method(role, name), called by
** lua/junction/assoc.lua for targets without hooks or validators (those
** keep the Lua methods over Model:update, whose wrappers run them).
*/
#include "jn.h"
#include <stdio.h>

/* Keys per statement: " IN (?, ...)" of 1, a few, or a chunk; a list that
** does not fill its statement is padded with its last key (a key twice in
** an IN list changes nothing). */
#define HM_CHUNK 32
#define HM_SMALL 4

/* The statements of an association, by operation and size (1, small, chunk). */
enum { HM_LINK, HM_UNLINK, HM_HAS, HM_KEEP, HM_NOPS };
enum { HM_CLEAR = HM_NOPS * 3, HM_COUNT, HM_KEYS, HM_NSTMT };
typedef char hm_slots_fit[HM_NSTMT <= JN_HM_NSTMT ? 1 : -1];   /* jn_Assoc.hm holds them */

/* Method roles Association:_method makes. */
static const char *const roles[] = {
  "set", "add", "addMany", "remove", "removeMany", "has", "hasMany", "count", "setOne", NULL
};

/* {====== Statements */

/* Has the target an updatedAt field that a write keeps current? */
static int stamped(jn_Assoc *a) {
  return a->target->updated >= 0;
}

/* The parameter of the first key: ?1 is the source's key, ?2 the time when
** the write stamps updatedAt (reads leave ?2 to keys). */
static int first_key(jn_Assoc *a, int op) {
  return op != HM_HAS && stamped(a) ? 3 : 2;
}

/* How many keys a statement of size class sz takes. */
static int size_of(int sz) {
  return sz == 0 ? 1 : sz == 1 ? HM_SMALL : HM_CHUNK;
}

/* Append "UPDATE target SET fk = <value>[, updated = ?2] WHERE ". */
static void add_update(lua_State *L, jn_Assoc *a, jn_Buf *b, const char *value) {
  jn_Model *t = a->target;
  jn_buf_adds(L, b, "UPDATE ");
  jn_buf_adds(L, b, t->qtable);
  jn_buf_adds(L, b, " SET ");
  jn_buf_addident(L, b, NULL, t->f[a->target_key].col);
  jn_buf_adds(L, b, value);
  if (stamped(a)) {
    jn_buf_adds(L, b, ", ");
    jn_buf_addident(L, b, NULL, t->f[t->updated].col);
    jn_buf_adds(L, b, " = ?2");
  }
  jn_buf_adds(L, b, " WHERE ");
}

/* Append "key = ?N" (k == 1) or "key IN (?N, ?, ...)" of k parameters. */
static void add_keys(lua_State *L, jn_Assoc *a, jn_Buf *b, int from, int k, int negate) {
  int r;
  jn_buf_addident(L, b, NULL, a->target->f[a->target->pk].col);
  if (k == 1) jn_buf_adds(L, b, negate ? " <> ?" : " = ?");
  else jn_buf_adds(L, b, negate ? " NOT IN (?" : " IN (?");
  jn_buf_addint(L, b, from);
  /* "?3, ?, ?": SQLite numbers a bare ? one past the largest so far */
  for (r = 1; r < k; r++) jn_buf_addl(L, b, ", ?", 3);
  if (k > 1) jn_buf_adds(L, b, ")");
}

/* Append "fk = ?1". */
static void add_mine(lua_State *L, jn_Assoc *a, jn_Buf *b) {
  jn_buf_addident(L, b, NULL, a->target->f[a->target_key].col);
  jn_buf_adds(L, b, " = ?1");
}

/* Write the SQL of statement slot into b. */
static void slot_sql(lua_State *L, jn_Assoc *a, int slot, jn_Buf *b) {
  int op = slot < HM_CLEAR ? slot / 3 : slot, k = slot < HM_CLEAR ? size_of(slot % 3) : 0;
  switch (op) {
    case HM_LINK:     /* link: fk = ?1 on the rows of these keys */
      add_update(L, a, b, " = ?1");
      add_keys(L, a, b, first_key(a, op), k, 0);
      break;
    case HM_UNLINK:   /* unlink: fk = NULL on these keys' rows that are ours */
    case HM_KEEP:     /* set's first half: fk = NULL on ours that are not these */
      add_update(L, a, b, " = NULL");
      add_mine(L, a, b);
      jn_buf_adds(L, b, " AND ");
      add_keys(L, a, b, first_key(a, op), k, op == HM_KEEP);
      break;
    case HM_HAS:
      jn_buf_adds(L, b, "SELECT count(*) FROM ");
      jn_buf_adds(L, b, a->target->qtable);
      jn_buf_adds(L, b, " WHERE ");
      add_mine(L, a, b);
      jn_buf_adds(L, b, " AND ");
      add_keys(L, a, b, first_key(a, op), k, 0);
      break;
    case HM_CLEAR:    /* set to the empty list: every row of ours */
      add_update(L, a, b, " = NULL");
      add_mine(L, a, b);
      break;
    case HM_COUNT:
      jn_buf_adds(L, b, "SELECT count(*) FROM ");
      jn_buf_adds(L, b, a->target->qtable);
      jn_buf_adds(L, b, " WHERE ");
      add_mine(L, a, b);
      break;
    default:          /* HM_KEYS: the keys of our rows */
      jn_buf_adds(L, b, "SELECT ");
      jn_buf_addident(L, b, NULL, a->target->f[a->target->pk].col);
      jn_buf_adds(L, b, " FROM ");
      jn_buf_adds(L, b, a->target->qtable);
      jn_buf_adds(L, b, " WHERE ");
      add_mine(L, a, b);
      break;
  }
}

/*
** The statement in slot, prepared from its SQL on first use and kept in
** the association; NULL with *rc set when the database refuses it.
** [-0, +0, m]
*/
static jn_St *stmt(lua_State *L, jn_Assoc *a, int slot, int *rc) {
  jn_Conn *c = a->source->conn;
  jn_Buf b;
  if (a->hm[slot] != NULL) return jn_stmt_slot(L, c, &a->hm[slot], NULL, rc);
  jn_buf_init(L, &b);
  slot_sql(L, a, slot, &b);
  jn_stmt_slot(L, c, &a->hm[slot], jn_buf_cstr(L, &b), rc);
  lua_pop(L, 1);
  return a->hm[slot];
}

/* }====== */

/* {====== Binding and running */

/* How a key of the target binds: as its key field's type reads it. */
static int key_type(jn_Assoc *a) {
  int t = a->target->f[a->target->pk].type;
  return t == JN_T_BLOB || t == JN_T_INTEGER ? t : JN_T_ANY;
}

/*
** Bind the source's key (instance at self) to ?1, and the time to ?2 when
** op writes a stamped target.  Both are bound without a copy, so both stay
** on the stack until the statement has run: the caller pops the number
** returned after the step.  (Popped at once, the time string is garbage
** that a collection in the log function, called before the step, frees;
** and the key is the instance's value, which the log function may replace.)
** [-0, +(1|2), m]
*/
static int bind_head(lua_State *L, jn_Assoc *a, int self, jn_St *st, int op) {
  jn_Conn *c = a->source->conn;
  jn_inst_get(L, self, a->source_key);
  jn_stmt_bindvalue(L, c, st, 1, -1, a->source->f[a->source_key].type);
  if (op != HM_HAS && stamped(a)) {
    char ts[32];
    size_t n = jn_scalar_timestamp(c, ts);
    lua_pushlstring(L, ts, n);
    jn_stmt_bindvalue(L, c, st, 2, -1, JN_T_TEXT);
    return 2;
  }
  return 1;
}

/* Bind keys[i..i+m) of the key array at keys to the k key parameters of
** st, padded with the last.  The strings stay in the array: they outlive
** the step. */
static void bind_keys(lua_State *L, jn_Assoc *a, jn_St *st, int from, int keys, int i, int m,
                      int k) {
  int r, type = key_type(a);
  for (r = 0; r < k; r++) {
    lua_rawgeti(L, keys, i + (r < m ? r : m - 1));
    jn_stmt_bindvalue(L, a->source->conn, st, from + r, -1, type);
    lua_pop(L, 1);
  }
}

/*
** Run op over the n keys of the key array at keys (from 1), one statement
** per chunk, each bound with the source at self.  *total adds up what each
** one changed (writes) or counted (HM_HAS).  Returns a result code.
** [-0, +0, e]
*/
static int run_chunks(lua_State *L, jn_Assoc *a, int op, int self, int keys, int n,
                      sqlite3_int64 *total) {
  jn_Conn *c = a->source->conn;
  int i, m, sz, head, rc = SQLITE_OK;
  for (i = 1; i <= n && rc == SQLITE_OK; i += m) {
    jn_St *st;
    m = n - i + 1 < HM_CHUNK ? n - i + 1 : HM_CHUNK;
    sz = m == 1 ? 0 : m <= HM_SMALL ? 1 : 2;
    st = stmt(L, a, op * 3 + sz, &rc);
    if (st == NULL) return rc;
    head = bind_head(L, a, self, st, op);
    bind_keys(L, a, st, first_key(a, op), keys, i, m, size_of(sz));
    if (op != HM_HAS) {
      rc = jn_conn_run(L, c, st);
      if (rc == SQLITE_OK) *total += jn_e_changes(c->eng, c->db);
      lua_pop(L, head);
      continue;
    }
    rc = jn_conn_step(L, c, st);
    if (rc == SQLITE_ROW) {
      *total += jn_e_col_int64(c->eng, st, 0);
      rc = SQLITE_OK;
    }
    jn_e_reset(c->eng, st);
    lua_pop(L, head);
  }
  return rc;
}

/* Run the statement of slot bound with the source at self (and the time). */
static int run_slot(lua_State *L, jn_Assoc *a, int slot, int self) {
  int rc, head;
  jn_St *st = stmt(L, a, slot, &rc);
  if (st == NULL) return rc;
  head = bind_head(L, a, self, st, slot == HM_COUNT ? HM_HAS : HM_LINK);
  rc = jn_conn_run(L, a->source->conn, st);
  lua_pop(L, head);
  return rc;
}

/* }====== */

/* {====== Failures */

/* Append a key to a message: a number as it is, text quoted. */
static void add_key_text(lua_State *L, jn_Assoc *a, jn_Buf *b, int idx) {
  sqlite3_int64 v;
  char tmp[40];
  if ((lua_type(L, idx) == LUA_TNUMBER || key_type(a) == JN_T_INTEGER) && jn_scalar_toi64(L, idx, &v)) {
    snprintf(tmp, sizeof tmp, "%lld", (long long)v);
    jn_buf_adds(L, b, tmp);
    return;
  }
  if (lua_type(L, idx) == LUA_TNUMBER) {
    snprintf(tmp, sizeof tmp, "%.17g", (double)lua_tonumber(L, idx));
    jn_buf_adds(L, b, tmp);
    return;
  }
  jn_buf_addl(L, b, "'", 1);
  jn_buf_adds(L, b, lua_tostring(L, idx));
  jn_buf_addl(L, b, "'", 1);
}

/*
** The failure of a link: the failure of rc as the database gave it, except
** that a foreign-key failure because the source's own row is gone says so
** (jn_assoc_gone), as belongsToMany does.
** [-0, +(3|4), e]
*/
static int link_fail(lua_State *L, jn_Assoc *a, int rc, int self, const char *ctx) {
  jn_Conn *c = a->source->conn;
  int nf, g;
  if (!jn_assoc_fkfail(c, rc)) return jn_error_result(L, c, rc, NULL);
  nf = jn_error_result(L, c, rc, NULL);   /* read now: the check runs a statement */
  g = jn_assoc_gone(L, a, self, ctx);
  return g != 0 ? g : nf;
}

/*
** Fewer rows linked than keys given: nil, "Ctx: book_id 99, 98 not found",
** 787 (a foreign-key failure, as belongsToMany says it), { missing = {...} }
** with the keys of the array at keys (n of them) that are no rows, in the
** order given.  The caller's jn_conn_atomic undoes what was written.
** [-0, +(3|4), e]
*/
static int not_found(lua_State *L, jn_Assoc *a, int keys, int n, const char *ctx) {
  jn_Conn *c = a->source->conn;
  jn_Model *t = a->target;
  int i, r = 0, miss, nmiss = 0;
  jn_Buf b;
  lua_createtable(L, 0, 1);
  lua_newtable(L);
  miss = lua_gettop(L);
  for (i = 1; i <= n; i++) {
    lua_rawgeti(L, keys, i);
    if (!jn_assoc_keyfits(L, a, -1)) {   /* no row has it: not sent */
      lua_pop(L, 1);
      r = 0;
    } else if ((r = jn_assoc_rowexists(L, t, t->pk, key_type(a))) < 0) {
      break;
    }
    if (r == 0) {
      lua_rawgeti(L, keys, i);
      lua_rawseti(L, miss, ++nmiss);
    }
  }
  if (r < 0) return jn_error_result(L, c, SQLITE_ERROR, NULL);
  lua_setfield(L, -2, "missing");   /* details, on top */
  jn_buf_init(L, &b);
  jn_buf_adds(L, &b, ctx);
  jn_buf_adds(L, &b, ": ");
  jn_buf_adds(L, &b, t->f[t->pk].name);
  lua_getfield(L, -2, "missing");
  for (i = 1; i <= nmiss; i++) {
    jn_buf_adds(L, &b, i > 1 ? ", " : " ");
    lua_rawgeti(L, -1, i);
    add_key_text(L, a, &b, lua_gettop(L));
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
  jn_buf_adds(L, &b, " not found");
  lua_pushlstring(L, b.p, b.n);
  lua_pushvalue(L, -3);   /* the details, below the buffer */
  return jn_error_faildetails(L, SQLITE_CONSTRAINT_FOREIGNKEY);
}

/*
** The failure of a link to the n keys of the list at keys when some name no
** row by their type (jn_assoc_keylist's none): said before anything is
** written or sent, as a foreign-key failure says it (the source at self
** gone, else the keys that are no rows).
** [-0, +(3|4), e]
*/
static int none_fail(lua_State *L, jn_Assoc *a, int self, int keys, int n) {
  int g = jn_assoc_gone(L, a, self, jn_assoc_method(L));
  return g != 0 ? g : not_found(L, a, keys, n, jn_assoc_method(L));
}

/* Keep the keys of the list at keys (n of them) that may name a row, in a
** new list that replaces it; returns how many. */
static int drop_none(lua_State *L, jn_Assoc *a, int keys, int n) {
  int i, k = 0;
  lua_createtable(L, n, 0);
  for (i = 1; i <= n; i++) {
    lua_rawgeti(L, keys, i);
    if (jn_assoc_keyfits(L, a, -1)) lua_rawseti(L, -2, ++k);
    else lua_pop(L, 1);
  }
  lua_replace(L, keys);
  return k;
}

/* }====== */

/* {====== Methods */

/* Every method is a closure over (association, "Author:setBooks", the
** instance metatable), as belongsToMany's are: jn_assoc_method names it. */

/*
** Link the n keys of the key array at keys to the source at self: one
** UPDATE per chunk.  Returns 0 when every key was a row, else the number
** of results of the failure pushed.
*/
static int link_keys(lua_State *L, jn_Assoc *a, int self, int keys, int n) {
  sqlite3_int64 changed = 0;
  int rc = run_chunks(L, a, HM_LINK, self, keys, n, &changed);
  if (rc != SQLITE_OK) return link_fail(L, a, rc, self, jn_assoc_method(L));
  if (changed != (sqlite3_int64)n) return not_found(L, a, keys, n, jn_assoc_method(L));
  return 0;
}

/* Body of add under jn_conn_atomic: [w, inst, keys, n]. */
static int add_body(lua_State *L) {
  jn_Write *w = jn_conn_bodywrite(L);
  jn_Assoc *a = (jn_Assoc *)lua_touserdata(L, lua_upvalueindex(1));
  int n = (int)lua_tointeger(L, 4), rc, r;
  /* one key is one row: atomic by itself; more may fail half-way */
  if (n > 1 && (rc = jn_conn_writeguard(L, w)) != SQLITE_OK) return jn_error_result(L, w->c, rc, NULL);
  if ((r = link_keys(L, a, 2, 3, n)) != 0) return r;
  lua_pushboolean(L, 1);
  return 1;
}

/*
** Clear the links of the source at self to every row whose key is not
** among the n keys of the array at keys, when they are more than a chunk:
** read the keys linked now, and unlink the others chunk by chunk.
*/
static int keep_only(lua_State *L, jn_Assoc *a, int self, int keys, int n) {
  jn_Conn *c = a->source->conn;
  sqlite3_int64 changed = 0;
  int rc, i, want, drop, head, ndrop = 0, type = a->target->f[a->target->pk].type;
  jn_St *st;
  lua_createtable(L, 0, n);
  want = lua_gettop(L);
  for (i = 1; i <= n; i++) {
    lua_rawgeti(L, keys, i);
    lua_pushboolean(L, 1);
    lua_rawset(L, want);
  }
  lua_newtable(L);
  drop = lua_gettop(L);
  st = stmt(L, a, HM_KEYS, &rc);
  if (st == NULL) return rc;
  head = bind_head(L, a, self, st, HM_HAS);
  while ((rc = jn_conn_step(L, c, st)) == SQLITE_ROW) {
    if (jn_e_coltype(c->eng, st, 0) == SQLITE_NULL) continue;
    jn_stmt_pushcolumn(L, c->eng, st, 0, type == JN_T_BOOLEAN ? JN_T_ANY : type);
    lua_pushvalue(L, -1);
    lua_rawget(L, want);
    if (lua_isnil(L, -1)) {
      lua_pop(L, 1);
      lua_rawseti(L, drop, ++ndrop);
    } else {
      lua_pop(L, 2);
    }
  }
  jn_e_reset(c->eng, st);
  lua_pop(L, head);
  if (rc != SQLITE_DONE) return rc;
  rc = run_chunks(L, a, HM_UNLINK, self, drop, ndrop, &changed);
  lua_pop(L, 2);
  return rc;
}

/* Body of set under jn_conn_atomic: [w, inst, keys, n]. */
static int set_body(lua_State *L) {
  jn_Write *w = jn_conn_bodywrite(L);
  jn_Assoc *a = (jn_Assoc *)lua_touserdata(L, lua_upvalueindex(1));
  int n = (int)lua_tointeger(L, 4), rc, r;
  sqlite3_int64 changed = 0;
  /* where rows are locked, writers of the same source's set take turns:
  ** each statement after the lock sees what the one before committed */
  if ((rc = jn_conn_writeguard(L, w)) != SQLITE_OK || (rc = jn_assoc_lockparent(L, a, 2)) != SQLITE_OK)
    return jn_error_result(L, w->c, rc, NULL);
  if (n == 0) rc = run_slot(L, a, HM_CLEAR, 2);
  else if (n <= HM_CHUNK) rc = run_chunks(L, a, HM_KEEP, 2, 3, n, &changed);
  else rc = keep_only(L, a, 2, 3, n);
  if (rc != SQLITE_OK) return jn_error_result(L, w->c, rc, NULL);
  if ((r = link_keys(L, a, 2, 3, n)) != 0) return r;
  lua_pushboolean(L, 1);
  return 1;
}

/*
** The guard of remove's n keys (n > 1).  Up to a chunk, on SQLite, they are
** one UPDATE whose failure keeps none of its rows (and no count is checked
** after it, as add checks): inside a transaction it may run without a
** savepoint (jn_conn_guardone); *one is it, for jn_conn_learnone.
*/
static int unlink_guard(lua_State *L, jn_Write *w, jn_Assoc *a, int n, jn_St **one) {
  int slot = HM_UNLINK * 3 + (n <= HM_SMALL ? 1 : 2), rc;
  *one = NULL;
  if (w->c->eng != NULL || n > HM_CHUNK) return jn_conn_writeguard(L, w);
  if ((*one = stmt(L, a, slot, &rc)) == NULL) return rc;
  return jn_conn_guardone(L, w, *one, &a->hm_whole[slot]);
}

/* Body of remove under jn_conn_atomic: [w, inst, keys, n]. */
static int remove_body(lua_State *L) {
  jn_Write *w = jn_conn_bodywrite(L);
  jn_Assoc *a = (jn_Assoc *)lua_touserdata(L, lua_upvalueindex(1));
  int n = (int)lua_tointeger(L, 4), rc;
  sqlite3_int64 changed = 0;
  jn_St *one = NULL;                   /* the only write, when unlink_guard named it */
  if (n > 1 && (rc = unlink_guard(L, w, a, n, &one)) != SQLITE_OK) return jn_error_result(L, w->c, rc, NULL);
  rc = run_chunks(L, a, HM_UNLINK, 2, 3, n, &changed);
  if (rc != SQLITE_OK) return jn_error_result(L, w->c, rc, NULL);
  if (one != NULL) jn_conn_learnone(L, w, one);
  lua_pushboolean(L, 1);
  return 1;
}

/* Body of has: [w, inst, keys, n]; under jn_conn_atomic (one snapshot) when it
** takes more than one statement. */
static int has_body(lua_State *L) {
  jn_Assoc *a = (jn_Assoc *)lua_touserdata(L, lua_upvalueindex(1));
  int n = (int)lua_tointeger(L, 4), rc;
  sqlite3_int64 found = 0;
  rc = run_chunks(L, a, HM_HAS, 2, 3, n, &found);
  if (rc != SQLITE_OK) return jn_error_result(L, a->source->conn, rc, NULL);
  lua_pushboolean(L, found == (sqlite3_int64)n);
  return 1;
}

/*
** The common shape of a keyed method: check self, read the keys (one or a
** list), then run body under jn_conn_atomic with [inst, keys, n].  An empty list
** runs nothing when empty is not set, and answers true.
*/
static int keyed(lua_State *L, int single, lua_CFunction body, int empty, int readfirst) {
  jn_Assoc *a = jn_assocm_checkself(L);
  int n, none;
  lua_settop(L, 2);
  n = jn_assoc_keylist(L, a, 2, single, jn_assoc_method(L), &none);
  lua_replace(L, 2);
  if (none > 0) {   /* keys no row has: not linked, nothing to unlink, or not found */
    if (body == has_body) { lua_pushboolean(L, 0); return 1; }
    if (body != remove_body) return none_fail(L, a, 1, 2, n);
    n = drop_none(L, a, 2, n);
  }
  if (n == 0 && !empty) { lua_pushboolean(L, 1); return 1; }
  lua_pushinteger(L, n);
  if (body == has_body && n <= HM_CHUNK) {   /* one statement: consistent by itself */
    lua_pushnil(L);
    lua_insert(L, 1);
    return has_body(L);
  }
  return jn_conn_atomic(L, a->source->conn, body, readfirst, 2);
}

/*** Make the associated set exactly the list: the rows not in it are
unlinked (foreign key NULL), the rows in it linked, atomically.
@function instance:setBooks
@tparam {Instance|key,...} list
@treturn true|fail
*/
static int hm_set(lua_State *L) {
  jn_Assoc *a = jn_assocm_checkself(L);
  int n, none;
  lua_settop(L, 2);
  n = jn_assoc_keylist(L, a, 2, 0, jn_assoc_method(L), &none);
  lua_replace(L, 2);
  if (none > 0) return none_fail(L, a, 1, 2, n);
  lua_pushinteger(L, n);
  /* a long list reads the links before it writes */
  return jn_conn_atomic(L, a->source->conn, set_body, n > HM_CHUNK, 2);
}

/*** Link one target (add) or a list (adds); a key that is no row fails.
@function instance:addBook
*/
static int hm_add(lua_State *L) { return keyed(L, 1, add_body, 0, 0); }
static int hm_adds(lua_State *L) { return keyed(L, 0, add_body, 0, 0); }

/*** Unlink (foreign key NULL) one target or a list of them.
@function instance:removeBook
*/
static int hm_remove(lua_State *L) { return keyed(L, 1, remove_body, 0, 0); }
static int hm_removes(lua_State *L) { return keyed(L, 0, remove_body, 0, 0); }

/*** true when every one given is linked.
@function instance:hasBook
*/
static int hm_has(lua_State *L) { return keyed(L, 1, has_body, 0, 1); }
static int hm_hases(lua_State *L) { return keyed(L, 0, has_body, 0, 1); }

/*** How many are linked (opts.where filters the targets).
@function instance:countBooks
@tparam[opt] table opts where
@treturn integer|fail
*/
static int hm_count(lua_State *L) {
  static const char *const count_opts[] = { "where", NULL };
  jn_Assoc *a = jn_assocm_checkself(L);
  jn_Conn *c = a->source->conn;
  jn_St *st;
  int rc;
  lua_settop(L, 2);
  jn_conn_checkopts(L, 2, count_opts, jn_assoc_method(L));
  jn_optfield(L, 2, "where");
  if (lua_isnil(L, -1)) {
    st = stmt(L, a, HM_COUNT, &rc);
    if (st == NULL) return jn_error_result(L, c, rc, NULL);
    bind_head(L, a, 1, st, HM_HAS);   /* (its value stays on the stack until the step) */
  } else {
    st = jn_assoc_countwhere(L, a, lua_gettop(L), &rc);
    if (st == NULL) return jn_error_result(L, c, rc, NULL);
  }
  return jn_assoc_pushcount(L, c, st);
}

/* Body of hasOne's set under jn_conn_atomic: [w, inst, keys, n (0 or 1)]. */
static int one_body(lua_State *L) {
  jn_Write *w = jn_conn_bodywrite(L);
  jn_Assoc *a = (jn_Assoc *)lua_touserdata(L, lua_upvalueindex(1));
  int n = (int)lua_tointeger(L, 4), rc, r;
  sqlite3_int64 changed = 0;
  if ((rc = jn_conn_writeguard(L, w)) != SQLITE_OK || (rc = jn_assoc_lockparent(L, a, 2)) != SQLITE_OK)
    return jn_error_result(L, w->c, rc, NULL);
  if (n == 0) rc = run_slot(L, a, HM_CLEAR, 2);
  else rc = run_chunks(L, a, HM_KEEP, 2, 3, 1, &changed);
  if (rc != SQLITE_OK) return jn_error_result(L, w->c, rc, NULL);
  if (n > 0 && (r = link_keys(L, a, 2, 3, 1)) != 0) return r;
  lua_pushboolean(L, 1);
  return 1;
}

/*** hasOne: make x (an instance or key; nil for none) the one linked,
unlinking the one before, atomically.
@function instance:setProfile
*/
static int ho_set(lua_State *L) {
  jn_Assoc *a = jn_assocm_checkself(L);
  int n = 0, none = 0;
  lua_settop(L, 2);
  if (lua_istable(L, 2) && jn_inst_test(L, 2) == NULL)   /* one, never a list */
    luaL_error(L, "%s: bad argument #1 (%s instance or key expected, got table)", jn_assoc_method(L),
               a->target->name);
  if (lua_isnil(L, 2)) lua_newtable(L);
  else n = jn_assoc_keylist(L, a, 2, 1, jn_assoc_method(L), &none);
  lua_replace(L, 2);
  if (none > 0) return none_fail(L, a, 1, 2, n);
  lua_pushinteger(L, n);
  return jn_conn_atomic(L, a->source->conn, one_body, 0, 2);
}

static const lua_CFunction role_fn[] = {
  hm_set, hm_add, hm_adds, hm_remove, hm_removes, hm_has, hm_hases, hm_count, ho_set
};

/* The body each role runs under jn_conn_atomic (NULL: none). */
static const lua_CFunction role_body[] = {
  set_body, add_body, add_body, remove_body, remove_body, has_body, has_body, NULL, one_body
};

/*
** Association:_method(role, name): the C method of that role ("set",
** "add", "addMany", "remove", "removeMany", "has", "hasMany", "count" of a
** hasMany; "setOne" of a hasOne), named name in its messages.
** [-2, +1, e]
*/
static int assoc_method(lua_State *L) {
  jn_Assoc *a = (jn_Assoc *)luaL_checkudata(L, 1, JN_ASSOC_MT);
  int role = luaL_checkoption(L, 2, NULL, roles);
  luaL_checkstring(L, 3);
  if (a->kind != (role == 8 ? JN_A_HAS_ONE : JN_A_HAS_MANY))
    luaL_argerror(L, 2, "no such method for this kind of association");
  lua_settop(L, 3);
  lua_pushvalue(L, 1);
  lua_pushvalue(L, 3);
  luaL_getmetatable(L, JN_INST_MT);
  jn_assocm_pushbody(L, role_body[role]);
  lua_pushcclosure(L, role_fn[role], JN_UPV_BODY);
  return 1;
}

/* }====== */

/* Add Association:_method (after jn_assoc_open made the type). */
void jn_hasmany_open(lua_State *L) {
  luaL_getmetatable(L, JN_ASSOC_MT);
  lua_getfield(L, -1, "__index");
  lua_pushcfunction(L, assoc_method);
  lua_setfield(L, -2, "_method");
  lua_pop(L, 2);
}
