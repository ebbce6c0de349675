/*
** jn_conn.c: the connection: open (SQLite, or PostgreSQL through the
** engine seam) and close, pragmas, SQLite's dialect, the raw way out (exec
** and query), stepping statements (jn_conn_step: the transaction check and
** the log function), the statement time limit, the transaction primitives
** that lua/junction's db:transaction is built on, and jn_conn_atomic, which
** makes every multi-statement write all or nothing.
*/
#define _GNU_SOURCE         /* dladdr */
#include "jn.h"
#include <dlfcn.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

/* SQLite's SQL where engines differ (jn_engine.h). */
#define JSON_EACH "SELECT value FROM json_each(?)"   /* SQLite's affinity compares */
const jn_Dialect jn_sqlite_dialect = {
  "sqlite", "BEGIN IMMEDIATE", "BEGIN DEFERRED", "BEGIN EXCLUSIVE",
  /* DATE is TEXT, not DATETIME, whose NUMERIC affinity would turn "2024"
  ** into a number; likewise DATEONLY, JSON (JSON text "12" must stay
  ** text), ENUM and UUID.  A field declared BIGINT is INTEGER (64 bits). */
  { "INTEGER", "TEXT", "VARCHAR", "REAL", "BLOB", "BOOLEAN", "TEXT",
    "TEXT", "TEXT", "TEXT", "TEXT", "INTEGER" },   /* DATEONLY JSON ENUM UUID BIGINT */
  "INTEGER PRIMARY KEY AUTOINCREMENT",
  " LIMIT -1",
  0,    /* the key comes from sqlite3_last_insert_rowid */
  0,    /* a failed statement leaves the transaction usable */
  "",   /* BEGIN IMMEDIATE already holds the write lock */
  0,    /* ask sqlite3_limit */
  "SELECT name FROM sqlite_master WHERE type = 'table' AND name = ? COLLATE NOCASE",
  "SELECT tbl_name FROM sqlite_master WHERE type = 'index' AND name = ? COLLATE NOCASE",
  "1", "0",
  1,    /* PRAGMA table_info and friends */
  "0", "1",
  { JSON_EACH, JSON_EACH, JSON_EACH, JSON_EACH, JSON_EACH, JSON_EACH, JSON_EACH,
    JSON_EACH, JSON_EACH, JSON_EACH, JSON_EACH, JSON_EACH },
  NULL, /* AUTOINCREMENT keys already continue after the largest key given */
  "SELECT name, type, \"notnull\" AS nn, dflt_value AS dv, pk FROM pragma_table_info(?)",
  "SELECT \"table\" AS tbl, \"from\" AS fr, \"to\" AS tt, on_update AS ou, on_delete AS od "
  "FROM pragma_foreign_key_list(?)",
  "SELECT name, origin, partial, \"unique\" AS u FROM pragma_index_list(?)",
  "SELECT name FROM pragma_index_info(?) ORDER BY seqno",
  1,    /* an integer sum past 64 bits is a REAL */
  0,    /* NULLs sort first ascending; no NULLS FIRST / LAST before 3.30 */
  0,    /* sum() of integers is an integer, or fails "integer overflow" */
  NULL,  /* BEGIN IMMEDIATE: one writer at a time */
  0,    /* a JSON path is json_extract's */
  0     /* one namespace: a schema prefixes the table name */
};

/* The connection's own statements; the three BEGINs come from the dialect. */
static const char *const conn_sql[JN_CS_COUNT] = {
  NULL, NULL, NULL, "COMMIT", "ROLLBACK",
  "SAVEPOINT jn_tx", "RELEASE jn_tx", "ROLLBACK TO jn_tx",
  "SAVEPOINT jn_w", "RELEASE jn_w", "ROLLBACK TO jn_w", "PRAGMA schema_version"
};

/* Registry key of a weak-valued table: connection (light userdata) -> its
** userdata, while it is alive.  The collector takes a connection out of it
** before running its __gc, which so tells a collection from a call by hand. */
#define JN_CONNS "junction.conns"

/* {====== Checking */

/*
** The connection at idx, open or closed (for close, __gc, __close and
** __tostring); raises naming the metamethod or method otherwise.
*/
static jn_Conn *to_conn(lua_State *L, int idx, const char *ctx) {
  jn_Conn *c = (jn_Conn *)luaL_testudata(L, idx, JN_CONN_MT);
  if (c == NULL) c = (jn_Conn *)luaL_testudata(L, idx, JN_WIRE_MT);
  if (c == NULL)
    luaL_error(L, "%s: bad self (connection expected, got %s)", ctx, jn_error_typename(L, idx));
  return c;
}

/*
** Raise when c is closed, naming who asked: model and method ("Post",
** "findAll"), or one context string ("db:exec", "Post:setGenres") with
** method NULL.
*/
void jn_conn_checkopen(lua_State *L, jn_Conn *c, const char *model, const char *method) {
  if (c->db != NULL) return;
  if (method != NULL)
    luaL_error(L, "%s:%s: attempt to use a closed connection", model, method);
  luaL_error(L, "%s: attempt to use a closed connection", model);
}

/* The open connection at idx; raises when it is not one or is closed. */
jn_Conn *jn_conn_check(lua_State *L, int idx, const char *ctx) {
  jn_Conn *c = to_conn(L, idx, ctx);
  jn_conn_checkopen(L, c, ctx, NULL);
  return c;
}

/* Does c speak PostgreSQL through a transport (jn_wire.c)? */
static int wired(const jn_Conn *c) {
#ifdef JN_WITH_PG
  return c->eng == &jn_wire_engine;
#else
  (void)c;
  return 0;
#endif
}

/*
** Call the Lua function below nargs arguments on the stack: a log or
** defaultValue function, user code that runs in the middle of an operation.
** While it runs the connection cannot be closed (the operation still holds
** its statements), and the log function, called between a statement's
** binding and its step, may not run statements on the connection.
** [-(nargs+1), +nresults, e]
*/
static int wire_callback(lua_State *L, jn_Conn *c, int nargs, int nresults, int log);

void jn_conn_callback(lua_State *L, jn_Conn *c, int nargs, int nresults, int log) {
  int status;
  if (wired(c) && wire_callback(L, c, nargs, nresults, log)) return;
  c->incall++;
  c->inlog += log;
  status = lua_pcall(L, nargs, nresults, 0);
  c->incall--;
  c->inlog -= log;
  if (status != LUA_OK) lua_error(L);
}

/* }====== */

/* {====== Atomic writes */

/*
** Run one of the connection's own statements (BEGIN, COMMIT, ROLLBACK,
** SAVEPOINT...) straight through SQLite: no log, no check, no Lua at all,
** so nothing a user callback does can stop a transaction from ending.
** Returns SQLITE_OK or the failing code (the message stays readable).
** [-0, +0, -]
*/
static int run_own(jn_Conn *c, int which) {
  int rc;
  jn_St *st = c->st[which];
  if (st == NULL) {
    const char *sql = which == JN_CS_BEGIN ? c->dialect->begin_immediate
                    : which == JN_CS_BEGIN_DEFERRED ? c->dialect->begin_deferred
                    : which == JN_CS_BEGIN_EXCLUSIVE ? c->dialect->begin_exclusive
                    : conn_sql[which];
    rc = jn_e_prepare(c->eng, c->db, sql, strlen(sql), &c->st[which], NULL);
    if (rc != SQLITE_OK) {
      c->st[which] = NULL;
      return rc;
    }
    st = c->st[which];
  }
  if (jn_e_busy(c->eng, st)) jn_e_reset(c->eng, st);
  c->own = 1;   /* never interrupted by the time limit */
  rc = jn_e_step(c->eng, st);
  c->own = 0;
  jn_e_reset(c->eng, st);
  return rc == SQLITE_DONE || rc == SQLITE_ROW ? SQLITE_OK : rc;
}

/* {====== Transaction frames */

enum { TX_LIVE, TX_YIELDED, TX_DEAD };

/*
** Is the token of frame f a local of one of co's Lua frames?  Finding it
** there is the proof that its db:transaction call is still running.  The
** level and local where it was last found are tried first: a transaction's
** statements usually come from the same place.
*/
static int stack_holds(lua_State *co, jn_TxFrame *f) {
  lua_Debug ar;
  int level, n, hit;
  const char *name;
  if (!lua_checkstack(co, 2)) return 1;   /* cannot look: assume it is there */
  /* the hint's level, then one deeper: an atomic call's body runs under
  ** lua_pcall one level above the method that checked first, and the hint
  ** stays where it is, so the two do not undo each other's hint */
  for (level = f->hint_level; f->hint_level >= 0 && level <= f->hint_level + 1; level++) {
    if (lua_getstack(co, level, &ar) && lua_getlocal(co, &ar, f->hint_local) != NULL) {
      hit = lua_touserdata(co, -1) == f->token;
      lua_pop(co, 1);
      if (hit) return 1;
    }
  }
  for (level = 0; lua_getstack(co, level, &ar); level++) {
    if (!lua_getinfo(co, "S", &ar) || ar.what[0] == 'C') continue;
    for (n = 1; (name = lua_getlocal(co, &ar, n)) != NULL; n++) {
      hit = lua_touserdata(co, -1) == f->token;
      lua_pop(co, 1);
      if (hit) {
        f->hint_level = level;
        f->hint_local = n;
        return 1;
      }
    }
  }
  return 0;
}

/*
** The state of frame i seen from the running coroutine L: LIVE when its
** db:transaction call is still on its owner's stack and the owner is L or
** an ancestor of L (a coroutine in "normal" status resumed the chain that
** leads to L); YIELDED when the owner is suspended inside it; DEAD when
** nobody can end it any more: its token was collected, or its owner
** finished, died, was closed (coroutine.close) or reset and reused (nginx
** reuses the coroutines of finished requests) and no longer holds it.
*/
static int frame_state(lua_State *L, jn_Conn *c, int i) {
  jn_TxFrame *f = &c->tx[i];
  lua_State *co = f->owner;
  lua_Debug ar;
  if (f->abandoned) return TX_DEAD;
  if (co != L) {
    int st = lua_status(co);
    if (st == LUA_YIELD) return TX_YIELDED;
    if (st != LUA_OK || !lua_getstack(co, 0, &ar)) return TX_DEAD;
  }
  return stack_holds(co, f) ? TX_LIVE : TX_DEAD;
}

/*
** End frames top..from, innermost first, undoing their work: a frame that
** is ended this way never committed anything.  kill: their tokens may
** still come back (a suspended function of a coroutine): mark them, so
** that whatever they run later fails instead of writing outside them.
*/
static void end_frames(jn_Conn *c, int from, int kill) {
  while (c->txdepth > from) {
    jn_TxFrame *f = &c->tx[--c->txdepth];
    if (kill && !f->abandoned) {
      ((jn_TxToken *)f->token)->killed = 1;
      c->nzombie++;
    }
    if (!jn_e_autocommit(c->eng, c->db)) {
      if (c->txdepth == 0) {
        run_own(c, JN_CS_ROLLBACK);
      } else {
        run_own(c, JN_CS_ROLLBACK_TO);
        run_own(c, JN_CS_RELEASE);
      }
    }
  }
}

/* How the instances written in levels ended here get their state back
** (jn_inst's, registered by jn_conn_ontxundo: a layer above, so never
** called by name). */
static jn_TxUndo tx_undo = NULL;

void jn_conn_ontxundo(jn_TxUndo fn) {
  tx_undo = fn;
}

/* A full garbage collection, run protected: finalizers may raise. */
static int full_gc(lua_State *L) {
  lua_gc(L, LUA_GCCOLLECT, 0);
  return 0;
}

/*
** Roll back every frame that nobody can end any more (and the frames
** above it), then say whether L may run a statement now: SQLITE_OK, or
** JN_RC_YIELDED while the innermost frame's owner has yielded.
** Before refusing, one full collection per frame finds out whether that
** owner is garbage (a dropped coroutine, an aborted nginx request).
*/
static int reap(lua_State *L, jn_Conn *c) {
  int i, st, prev, dead, top;
again:
  dead = -1;
  prev = top = TX_LIVE;
  for (i = c->txdepth - 1; i >= 0; i--) {
    /* below a live frame of the same owner, a frame is live too: its call
    ** is deeper in the same stack */
    if (i < c->txdepth - 1 && prev == TX_LIVE && !c->tx[i].abandoned &&
        c->tx[i].owner == c->tx[i + 1].owner)
      st = TX_LIVE;
    else
      st = frame_state(L, c, i);
    if (i == c->txdepth - 1) top = st;
    if (st == TX_DEAD) dead = i;
    prev = st;
  }
  if (dead >= 0) {
    /* on a connection with a transport the ROLLBACK reaches the server only
    ** from a call lua/junction/wire.lua drives (a statement's); from anywhere
    ** else (an instance looking at its state) the frames wait for it, else
    ** the server's transaction would stay open under the next statements */
    if (wired(c) && !c->ts_frozen) return SQLITE_OK;
    /* the frames above the dead one may have live owners (a coroutine the
    ** dead one resumed): their functions still run, so mark their tokens,
    ** else what they write next would commit on its own */
    end_frames(c, dead, 1);
    if (tx_undo != NULL) tx_undo(L, c);   /* nobody will settle them: db:transaction is gone */
    goto again;
  }
  if (top == TX_YIELDED) {
    jn_TxFrame *f = &c->tx[c->txdepth - 1];
    if (!f->gc_tried) {
      f->gc_tried = 1;
      c->incall++;   /* a finalizer may not close the connection under us */
      lua_pushcfunction(L, full_gc);
      if (lua_pcall(L, 0, 0, 0) != LUA_OK) lua_pop(L, 1);
      c->incall--;
      goto again;
    }
    return JN_RC_YIELDED;
  }
  return SQLITE_OK;
}

/* Does a Lua frame of L hold the token of a transaction that was ended under it? */
static int in_killed(lua_State *L) {
  lua_Debug ar;
  int level, n;
  const char *name;
  luaL_checkstack(L, 4, NULL);
  for (level = 0; lua_getstack(L, level, &ar); level++) {
    if (!lua_getinfo(L, "S", &ar) || ar.what[0] == 'C') continue;
    for (n = 1; (name = lua_getlocal(L, &ar, n)) != NULL; n++) {
      jn_TxToken *t = (jn_TxToken *)luaL_testudata(L, -1, JN_TX_MT);
      int hit = t != NULL && t->killed;
      lua_pop(L, 1);
      if (hit) return 1;
    }
  }
  return 0;
}

/* }====== */

/*
** May the running coroutine run a statement now?  Not inside a
** db:transaction that has already been ended around it (it would write
** outside any transaction).  Not while the transaction's function has
** yielded and another coroutine runs meanwhile (two OpenResty requests on
** one connection): its statements would join that transaction and vanish
** with its rollback; a coroutine the owner itself resumed is fine.  A
** transaction nobody can end any more (its coroutine dropped, closed or
** reused) is rolled back first.  And not when SQLite has already rolled
** the transaction back by itself (after a full disk, say: what follows
** would commit on its own).  Returns SQLITE_OK, or a refusal code
** (JN_RC_*) that jn_error_result turns into its message.
*/
int jn_conn_txcheck(lua_State *L, jn_Conn *c) {
  int rc;
  if (c->nzombie > 0 && in_killed(L)) {
    return JN_RC_KILLED;
  }
  if (c->txdepth == 0) return SQLITE_OK;
  if ((rc = reap(L, c)) != SQLITE_OK) return rc;
  if (c->nzombie > 0 && in_killed(L)) {
    return JN_RC_KILLED;      /* reap has just ended L's own frame */
  }
  if (c->txdepth > 0 && jn_e_autocommit(c->eng, c->db)) {
    return JN_RC_ROLLEDBACK;
  }
  return SQLITE_OK;
}

/*
** Has the running atomic call's first check (jn_conn_atomic) already
** answered for a statement of L now?  Inside one C call nothing can end a
** frame it found live: its owner is L or an ancestor of L, which stays on
** its stack and cannot be closed, collected or resumed elsewhere until the
** call returns (a callback cannot yield across it).  What such a callback
** can do is open or end frames, or kill tokens (re-entering junction): then
** the depth, the innermost frame's serial or the count of killed tokens
** differs, and the statement is checked in full.  SQLite's own rollback is
** looked at every time.
*/
static int tx_vouched(lua_State *L, const jn_Conn *c) {
  return c->txok_L == (const void *)L && c->txok_depth == c->txdepth
      && c->txok_zombie == c->nzombie
      && (c->txdepth == 0 || (c->tx[c->txdepth - 1].serial == c->txok_serial
                              && !jn_e_autocommit(c->eng, c->db)));
}

/* Vouch for L's statements until tx_unvouch: L has just passed jn_conn_txcheck. */
static void tx_vouch(lua_State *L, jn_Conn *c) {
  c->txok_L = L;
  c->txok_depth = c->txdepth;
  c->txok_zombie = c->nzombie;
  c->txok_serial = c->txdepth > 0 ? c->tx[c->txdepth - 1].serial : 0;
}

/* The atomic call has ended (an inner one ends its outer one's too: that
** one's statements are checked in full from then on). */
static void tx_unvouch(jn_Conn *c) {
  c->txok_L = NULL;
}

/*
** Undo (ok == 0) or keep (ok != 0) what was written under mode.  Rolling
** back ignores its own failures: SQLite may already have rolled back.
*/
static int write_end(jn_Conn *c, int mode, int ok) {
  int rc = SQLITE_OK;
  if (mode == JN_W_TX) {
    if (ok) rc = run_own(c, JN_CS_COMMIT);
    if (!ok || rc != SQLITE_OK) {
      if (!jn_e_autocommit(c->eng, c->db)) run_own(c, JN_CS_ROLLBACK);
    }
  } else if (mode == JN_W_SAVEPOINT) {
    if (!ok) run_own(c, JN_CS_WROLLBACK_TO);
    rc = run_own(c, JN_CS_WRELEASE);
  }
  return rc;
}

/*
** Called by an atomic body before its second write: from here on the
** writes need a transaction (outside one) or a savepoint (inside one).
*/
int jn_conn_writeguard(lua_State *L, jn_Write *w) {
  int rc;
  (void)L;
  if (w->mode != JN_W_NONE) return SQLITE_OK;
  if (jn_e_autocommit(w->c->eng, w->c->db)) {
    rc = run_own(w->c, JN_CS_BEGIN);
    if (rc == SQLITE_OK) w->mode = JN_W_TX;
  } else {
    rc = run_own(w->c, JN_CS_WSAVE);
    if (rc == SQLITE_OK) w->mode = JN_W_SAVEPOINT;
  }
  return rc;
}

/*
** Main's data version (SQLITE_FCNTL_DATA_VERSION: it changes with every
** commit, this connection's or another's, seen when a transaction begins)
** while main's read or write transaction is open, so that it is the
** version of the snapshot the statements see.  0 when there is none.
*/
static int data_version(jn_Conn *c, unsigned *dv) {
#if SQLITE_VERSION_NUMBER >= 3034000
  sqlite3 *db = JN_SQDB(c->db);
  if (c->eng != NULL || sqlite3_txn_state(db, "main") == SQLITE_TXN_NONE) return 0;
  return sqlite3_file_control(db, "main", SQLITE_FCNTL_DATA_VERSION, dv) == SQLITE_OK;
#else
  (void)c; (void)dv;
  return 0;   /* no sqlite3_txn_state: the cookie is read every time */
#endif
}

/*
** Main's schema cookie (PRAGMA schema_version, SQLite only) as the running
** transaction sees it: from here to its end nobody else can change it (a
** snapshot in WAL mode, a shared lock otherwise).  The value last read
** serves again while main's data version and schema_gen are what they were
** then: no commit has been seen since, and this connection ran no
** statement of its own that may have changed the schema.
*/
static int schema_cookie(jn_Conn *c, long long *cookie) {
  jn_St **slot = &c->st[JN_CS_COOKIE];
  const char *sql = conn_sql[JN_CS_COOKIE];
  unsigned dv;
  int rc;
  if (c->ck_ok && c->ck_gen == c->schema_gen && data_version(c, &dv) && dv == c->ck_dv) {
    *cookie = c->ck_cookie;
    return SQLITE_OK;
  }
  if (*slot == NULL && (rc = jn_e_prepare(c->eng, c->db, sql, strlen(sql), slot, NULL)) != SQLITE_OK) {
    *slot = NULL;
    return rc;
  }
  c->own = 1;
  rc = jn_e_step(c->eng, *slot);
  c->own = 0;
  *cookie = rc == SQLITE_ROW ? jn_e_col_int64(c->eng, *slot, 0) : -1;
  jn_e_reset(c->eng, *slot);
  if (rc != SQLITE_ROW) return SQLITE_ERROR;
  c->ck_ok = data_version(c, &c->ck_dv);
  c->ck_gen = c->schema_gen;
  c->ck_cookie = *cookie;
  return SQLITE_OK;
}

/*
** Is the program of st whole: no trigger (OP_Program: a trigger or a foreign
** key action) and no FAIL conflict (OP_Halt or OP_HaltIfNull with P2 = 3,
** OE_Fail: RAISE(FAIL), ON CONFLICT FAIL)?  Read from EXPLAIN, compiled
** against the schema st has just run with; 0 when it cannot tell.
** [-0, +0, m]
*/
static int program_whole(lua_State *L, jn_Conn *c, jn_St *st) {
  jn_St *ex = NULL;
  const char *sql = lua_pushfstring(L, "EXPLAIN %s", jn_e_sql(c->eng, st));
  int rc = jn_e_prepare(c->eng, c->db, sql, strlen(sql), &ex, NULL), whole = 1;
  lua_pop(L, 1);
  if (rc != SQLITE_OK || ex == NULL) {
    if (ex != NULL) jn_e_finalize(c->eng, ex);
    return 0;
  }
  while (whole && (rc = jn_e_step(c->eng, ex)) == SQLITE_ROW) {
    size_t n;
    const char *op = (const char *)jn_e_col_text(c->eng, ex, 1, &n);
    if (op == NULL) continue;
    if (strcmp(op, "Program") == 0) whole = 0;
    else if ((strcmp(op, "Halt") == 0 || strcmp(op, "HaltIfNull") == 0)
             && jn_e_col_int64(c->eng, ex, 3) == 3)
      whole = 0;
  }
  if (whole && rc != SQLITE_DONE) whole = 0;
  jn_e_finalize(c->eng, ex);
  return whole;
}

/*
** The guard of an atomic body whose only write is st, one statement of
** several rows (or of one row and its triggers).  On SQLite inside a
** transaction such a statement keeps all its rows or none by itself when its
** program is whole (program_whole): a failure rolls back the statement only
** (or the whole transaction on a full disk or an interrupt, savepoint or
** not), and the earlier writes of the caller's transaction stay.  Then it
** runs without the savepoint.  The answer holds for the schema it was read
** under: main's cookie (read here, in the caller's transaction, so no other
** connection can change it before st runs), the connection's own db:exec and
** db:query writes (a TEMP trigger changes no cookie of main), st itself not
** prepared again.  Not known for this schema yet: the savepoint, and
** jn_conn_learnone reads it once st has run.  Outside a transaction, on
** PostgreSQL (a failed statement ends the caller's transaction), or when a
** guard is already held: jn_conn_writeguard.
*/
int jn_conn_guardone(lua_State *L, jn_Write *w, jn_St *st, jn_Whole *wh) {
  jn_Conn *c = w->c;
  long long cookie;
  if (w->mode != JN_W_NONE || c->eng != NULL || jn_e_autocommit(c->eng, c->db)
      || schema_cookie(c, &cookie) != SQLITE_OK)
    return jn_conn_writeguard(L, w);
  if (wh->st == st && wh->cookie == cookie && wh->gen == c->schema_gen
      && wh->rep == jn_e_reprepared(c->eng, st)) {
    if (wh->whole) return SQLITE_OK;
  } else {
    w->learn = wh;
    w->cookie = cookie;
  }
  return jn_conn_writeguard(L, w);
}

/*
** After st, named to jn_conn_guardone, ran through under its savepoint:
** read whether it is whole, for the schema it ran with.
** [-0, +0, m]
*/
void jn_conn_learnone(lua_State *L, jn_Write *w, jn_St *st) {
  jn_Whole *wh = w->learn;
  jn_Conn *c = w->c;
  if (wh == NULL) return;
  w->learn = NULL;
  wh->st = NULL;
  wh->whole = program_whole(L, c, st);
  wh->cookie = w->cookie;
  wh->gen = c->schema_gen;
  wh->rep = jn_e_reprepared(c->eng, st);
  wh->st = st;
}

/* How many times a call junction ran in a transaction of its own is run
** again after a serialization failure or a deadlock (PostgreSQL's 40001
** and 40P01): the server undid it whole, and the same call run again on
** what is committed now usually goes through (docs/POSTGRES.md). */
#define JN_RETRIES 3

/*
** Is the failure on top (nil, message, code, details: n values) one that
** running the call again can cure: a serialization failure or a deadlock,
** by details.sqlstate?  Other failures (a lock wait that timed out: 55P03)
** are returned as they are.
** [-0, +0, m]
*/
static int retryable(lua_State *L, int n) {
  const char *s;
  int yes;
  if (n < 4 || !lua_istable(L, -1) || !lua_isnil(L, -n)) return 0;
  lua_pushliteral(L, "sqlstate");
  lua_rawget(L, -2);
  s = lua_tostring(L, -1);
  yes = s != NULL && (strcmp(s, "40001") == 0 || strcmp(s, "40P01") == 0);
  lua_pop(L, 1);
  return yes;
}

/*
** Run the closure at base with the nargs values above it (the top of the
** stack) once, under lua_pcall, with a jn_Write of its own inserted as its
** first argument: what it writes is undone when it fails or raises (the
** raise is re-raised after the rollback).  *once is set when the body said
** a second run would not do the same (jn_Write.once).  Returns the number
** of results, on top.
** [-(nargs+1), +r, e]
*/
static int atomic_once(lua_State *L, jn_Conn *c, int base, int nargs, int readfirst, int *once) {
  jn_Write w;
  int status, rc;
  w.c = c;
  w.mode = JN_W_NONE;
  w.once = 0;
  w.learn = NULL;
  if (readfirst && jn_e_autocommit(c->eng, c->db)) {
    rc = run_own(c, JN_CS_BEGIN);
    if (rc != SQLITE_OK) return jn_error_result(L, c, rc, NULL);
    w.mode = JN_W_TX;
  }
  lua_pushlightuserdata(L, &w);
  lua_insert(L, base + 1);
  tx_vouch(L, c);   /* jn_conn_atomic's check holds for the body's statements */
  status = lua_pcall(L, nargs + 1, LUA_MULTRET, 0);
  tx_unvouch(c);
  *once = w.once;
  if (status != LUA_OK) {
    write_end(c, w.mode, 0);
    return lua_error(L);
  }
  if (lua_gettop(L) < base || lua_isnil(L, base)) {
    write_end(c, w.mode, 0);
    return lua_gettop(L) - base + 1;
  }
  rc = write_end(c, w.mode, 1);
  if (rc != SQLITE_OK) {
    lua_settop(L, base - 1);
    return jn_error_result(L, c, rc, NULL);
  }
  return lua_gettop(L) - base + 1;
}

/*
** The jn_Write of a body that jn_conn_atomic runs, at 1.  A method keeps its
** body as an upvalue, which debug.getupvalue reaches: called any other way,
** with a value that is no write, it raises instead of reading one.
*/
jn_Write *jn_conn_bodywrite(lua_State *L) {
  if (lua_type(L, 1) != LUA_TLIGHTUSERDATA)
    luaL_error(L, "junction: a method's body called outside its method");
  return (jn_Write *)lua_touserdata(L, 1);
}

/*
** Run body (a closure over the calling C function's first nup upvalues:
** the one at its upvalue JN_UPV_BODY when that is body, made once with the
** method, else a new one) with the stack [jn_Write, args...] under lua_pcall, so that any
** raise or failure inside it rolls back what it wrote: the cjson.safe shape.
** readfirst: the body reads before it writes, so outside a transaction the
** read must already be inside one (BEGIN IMMEDIATE, which takes the write
** lock at once and so never meets SQLITE_BUSY half-way).
** The body returns its results; a first result of nil means failure (nil,
** message, code), and everything is rolled back.  A raise is re-raised after
** the rollback.
** On an engine that locks rows (PostgreSQL), a call made outside any
** transaction that fails with a serialization failure or a deadlock is run
** again, up to JN_RETRIES times, on fresh copies of its arguments: the
** server rolled all of it back.  Inside the caller's transaction the failure
** is returned (the caller's transaction decides).
** [-(n), +r, e]
*/
int jn_conn_atomic(lua_State *L, jn_Conn *c, lua_CFunction body, int readfirst, int nup) {
  int nargs = lua_gettop(L), rc, i, n, once, tries;
  if ((rc = jn_conn_txcheck(L, c)) != SQLITE_OK) return jn_error_result(L, c, rc, NULL);
  if (nup > 0 && lua_tocfunction(L, lua_upvalueindex(JN_UPV_BODY)) == body) {
    lua_pushvalue(L, lua_upvalueindex(JN_UPV_BODY));   /* nothing allocated per call */
  } else {
    for (i = 1; i <= nup; i++) lua_pushvalue(L, lua_upvalueindex(i));
    lua_pushcclosure(L, body, nup);   /* the body sees the caller's upvalues */
  }
  lua_insert(L, 1);
  if (c->eng == NULL || !jn_e_autocommit(c->eng, c->db))
    return atomic_once(L, c, 1, nargs, readfirst, &once);
  for (tries = 0;; tries++) {     /* [body, args...] stay for the next run */
    for (i = 1; i <= nargs + 1; i++) lua_pushvalue(L, i);
    n = atomic_once(L, c, nargs + 2, nargs, readfirst, &once);
    if (tries == JN_RETRIES || once || c->db == NULL || !retryable(L, n)) return n;
    lua_settop(L, nargs + 1);
  }
}

/* }====== */

/* {====== The wire transport's two halves (jn_wire.c, lua/junction/wire.lua) */

#ifdef JN_WITH_PG
/* Push (set 0) or set from the top (set 1) the registry entry of key: a
** wire call's recorded callbacks (&c->txcap) and snapshot (&c->txdepth). */
static void wire_reg(lua_State *L, void *key, int set) {
  lua_pushlightuserdata(L, key);
  if (set) {
    lua_insert(L, -2);
    lua_rawset(L, LUA_REGISTRYINDEX);
  } else {
    lua_rawget(L, LUA_REGISTRYINDEX);
  }
}

/*
** A callback of a wire call: the log function once per statement (not again
** when a re-run replays it), and a defaultValue function once per call: its
** results are recorded on the run that calls it and given back on the
** re-runs, so that every run builds the same statements.  The replies that
** statements run inside it took are skipped with it.  Returns 0 when the
** callback is to be called the ordinary way (nothing recorded for it).
** [-(nargs+1), +nresults, e]
*/
static int wire_callback(lua_State *L, jn_Conn *c, int nargs, int nresults, int log) {
  int *cb = jn_wire_cbcursor(c->db), i, at, top, status;
  if (log) {
    if (!jn_wire_replaying(c->db)) return 0;
    lua_pop(L, nargs + 1);
    return 1;
  }
  wire_reg(L, &c->txcap, 0);   /* the recorded results of this call */
  if (!lua_istable(L, -1)) {                     /* no call running (a C method called bare) */
    lua_pop(L, 1);
    return 0;
  }
  at = ++*cb;
  lua_rawgeti(L, -1, at);
  if (lua_istable(L, -1)) {                      /* replayed */
    lua_rawgeti(L, -1, 0);
    jn_wire_skip(c->db, (int)lua_tointeger(L, -1));
    lua_pop(L, 1);
    lua_replace(L, -(nargs + 3));                /* over the function */
    lua_pop(L, nargs + 1);
    for (i = 1; i <= nresults; i++) lua_rawgeti(L, -i, i);
    lua_remove(L, -(nresults + 1));
    return 1;
  }
  lua_pop(L, 2);
  i = jn_wire_cursor(c->db);
  c->incall++;
  status = lua_pcall(L, nargs, nresults, 0);
  c->incall--;
  if (status != LUA_OK) lua_error(L);
  top = lua_gettop(L);
  wire_reg(L, &c->txcap, 0);
  lua_createtable(L, nresults, 1);
  lua_pushinteger(L, jn_wire_cursor(c->db) - i);
  lua_rawseti(L, -2, 0);
  for (i = 1; i <= nresults; i++) {
    lua_pushvalue(L, top - nresults + i);
    lua_rawseti(L, -2, i);
  }
  lua_rawseti(L, -2, at);
  lua_pop(L, 1);
  return 1;
}

/*
** Step st of a wire connection: a step that stopped the call (the statement
** needs the server's reply) raises, ending the run at once; nothing
** unwinding it sends anything (the engine is stopped), and Lua runs the call
** again with the reply (lua/junction/wire.lua).
** [-0, +0, e]
*/
static int wire_step(lua_State *L, jn_Conn *c, jn_St *st) {
  int rc = jn_e_step(c->eng, st);
  if (jn_wire_stopped(c->db))
    luaL_error(L, "junction: this call needs the server's reply: on a connection with a "
               "transport, call junction's methods (lua/junction/wire.lua runs them)");
  return rc;
}

/* What a wire call keeps of the connection at its start, to run again from. */
typedef struct WireSnap {
  int txdepth, nzombie;
  unsigned long txserial;
  long long ts;            /* the frozen clock */
  int n;
  struct { jn_TxFrame f; unsigned long serial; int killed; } fr[1];
} WireSnap;

/* db:_wire("begin"): a user's call starts: keep the transaction frames. */
static int wire_begin(lua_State *L, jn_Conn *c) {
  int i, n = c->txdepth;
  WireSnap *w = (WireSnap *)lua_newuserdata(L, sizeof *w + (size_t)(n > 0 ? n : 1) * sizeof w->fr[0]);
  w->txdepth = n;
  w->nzombie = c->nzombie;
  w->txserial = c->txserial;
  for (i = 0; i < n; i++) {
    jn_TxToken *t = (jn_TxToken *)c->tx[i].token;
    w->fr[i].f = c->tx[i];
    w->fr[i].serial = c->tx[i].abandoned ? 0 : t->serial;
    w->fr[i].killed = c->tx[i].abandoned ? 0 : t->killed;
  }
  wire_reg(L, &c->txdepth, 1);
  lua_newtable(L);
  wire_reg(L, &c->txcap, 1);
  jn_wire_begin(c->db);
  c->ts_frozen = 1;
  c->ts_taken = 0;
  return 0;
}

/* db:_wire("rewind"): run the call again: the frames as they were. */
static int wire_rewind(lua_State *L, jn_Conn *c) {
  WireSnap *w;
  int i;
  wire_reg(L, &c->txdepth, 0);
  w = (WireSnap *)lua_touserdata(L, -1);
  if (w == NULL) return luaL_error(L, "db:_wire: no call to rewind");
  if (w->txdepth > c->txcap) return luaL_error(L, "db:_wire: the transaction frames are gone");
  for (i = 0; i < w->txdepth; i++) {
    c->tx[i] = w->fr[i].f;
    if (!c->tx[i].abandoned) {
      jn_TxToken *t = (jn_TxToken *)c->tx[i].token;
      t->serial = w->fr[i].serial;
      t->killed = w->fr[i].killed;
    }
  }
  c->txdepth = w->txdepth;
  c->nzombie = w->nzombie;
  c->txserial = w->txserial;
  jn_wire_rewind(c->db);
  return 0;
}

static int wire_end(lua_State *L, jn_Conn *c) {
  lua_pushnil(L);
  wire_reg(L, &c->txdepth, 1);
  lua_pushnil(L);
  wire_reg(L, &c->txcap, 1);
  jn_wire_end(c->db);
  c->ts_frozen = 0;
  return 0;
}

/*
** db:_wire(op, ...): the two halves' primitives, for lua/junction/wire.lua
** only: "begin", "rewind", "end" a call; "pending" (the statement that
** stopped the run, or nil); "answer" (its reply: true, or nil and why the
** reply is refused); "lose" (the transport failed: message); "transport".
*/
static int conn_wire(lua_State *L) {
  static const char *const ops[] = { "begin", "rewind", "end", "pending", "answer", "lose",
                                     "transport", NULL };
  jn_Conn *c = jn_conn_check(L, 1, "db:_wire");
  int op = luaL_checkoption(L, 2, NULL, ops);
  const char *err;
  if (!wired(c)) return luaL_error(L, "db:_wire: not a connection with a transport");
  switch (op) {
    case 0: return wire_begin(L, c);
    case 1: return wire_rewind(L, c);
    case 2: return wire_end(L, c);
    case 3: return jn_wire_pushpending(L, c->db);
    case 4:
      if (jn_wire_answer(L, c->db, 3, &err)) { lua_pushboolean(L, 1); return 1; }
      lua_pushnil(L);
      lua_pushstring(L, err);
      return 2;
    case 5:
      jn_wire_lose(c->db, luaL_optstring(L, 3, "the wire transport failed"));
      return 0;
    default:
      lua_getuservalue(L, 1);
      lua_getfield(L, -1, "transport");
      return 1;
  }
}
#else
static int wire_callback(lua_State *L, jn_Conn *c, int nargs, int nresults, int log) {
  (void)L; (void)c; (void)nargs; (void)nresults; (void)log;
  return 0;
}
static int wire_step(lua_State *L, jn_Conn *c, jn_St *st) {
  (void)L;
  return jn_e_step(c->eng, st);
}
static int conn_wire(lua_State *L) {
  return luaL_error(L, "db:_wire: junction was built without PostgreSQL");
}
#endif

/* }====== */

/* {====== Running statements */

/*
** Step st; before its first step, check that the running coroutine may use
** the connection now (jn_conn_txcheck) and hand the statement's SQL and
** bound values to the log function when there is one (the function may
** raise: the statement has not run yet).  Every statement of a call goes
** through here, so it lives with the transaction state it checks.
** [-0, +0, e]
*/
int jn_conn_step(lua_State *L, jn_Conn *c, jn_St *st) {
  if ((c->txdepth > 0 || c->nzombie > 0) && !c->own && !jn_e_busy(c->eng, st)
      && !tx_vouched(L, c)) {
    int rc = jn_conn_txcheck(L, c);
    if (rc != SQLITE_OK) return rc;
  }
  if (c->log_ref != LUA_NOREF && !jn_e_busy(c->eng, st)) {
    lua_rawgeti(L, LUA_REGISTRYINDEX, c->log_ref);
    lua_pushstring(L, jn_e_sql(c->eng, st));
    lua_rawgeti(L, LUA_REGISTRYINDEX, c->params_ref);
    lua_newtable(L);                    /* the next statement's values start empty */
    lua_rawseti(L, LUA_REGISTRYINDEX, c->params_ref);
    jn_conn_callback(L, c, 2, 0, 1);
  }
  if (wired(c)) return wire_step(L, c, st);
  return jn_e_step(c->eng, st);
}

/*
** Run a statement that returns no rows (or whose rows do not matter) and
** reset it.  Returns SQLITE_OK or the failing code; on failure the message
** is still readable by jn_error_result.
** [-0, +0, e]
*/
int jn_conn_run(lua_State *L, jn_Conn *c, jn_St *st) {
  int rc = jn_conn_step(L, c, st);
  if (rc == SQLITE_DONE || rc == SQLITE_ROW) {
    jn_e_reset(c->eng, st);
    return SQLITE_OK;
  }
  jn_e_reset(c->eng, st);
  return rc;
}

/*
** Run an INSERT ... RETURNING key (one row, one integer column: the key the
** database gave the row) and reset it: one round trip where SQLite's
** last_insert_rowid would cost PostgreSQL a second (lastval()).  *id is
** the key.  Returns SQLITE_OK or the failing code, as jn_conn_run.
** [-0, +0, e]
*/
int jn_conn_runkey(lua_State *L, jn_Conn *c, jn_St *st, sqlite3_int64 *id) {
  int rc = jn_conn_step(L, c, st);
  if (rc == SQLITE_ROW) {
    *id = jn_e_col_int64(c->eng, st, 0);
    rc = SQLITE_DONE;
  }
  jn_e_reset(c->eng, st);
  return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

/* }====== */

/* {====== Statement time limit */

/* VM instructions between two looks at the clock: a clock_gettime costs
** about as much as a few dozen instructions, so this keeps the cost of a
** time limit well under 1% while a runaway statement stops within a few
** microseconds of its deadline. */
#define JN_PROGRESS_OPS 1000

/* Milliseconds of a clock that never goes back. */
static long long now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
** SQLite's trace hook (pure C, no Lua): a statement starts its first step
** (SQLITE_TRACE_STMT; a trigger it fires reports a "-- TRIGGER" comment
** instead of the statement's own text, and does not restart the clock), or
** it has finished (SQLITE_TRACE_PROFILE: done, failed or reset).
*/
static int on_trace(unsigned type, void *ud, void *p, void *x) {
  jn_Conn *c = (jn_Conn *)ud;
  if (type == SQLITE_TRACE_STMT) {
    if ((const char *)x == jn_e_sql(c->eng, (jn_St *)p)) {
      c->stmt_t0 = now_ms();
      c->stmt_running = 1;
      c->timedout = 0;
    }
  } else if (type == SQLITE_TRACE_PROFILE) {
    c->stmt_running = 0;
  }
  return 0;
}

/*
** SQLite's progress handler (pure C, no Lua): interrupt the running
** statement once it has run for timeout_ms.  Junction's own BEGIN, COMMIT
** and ROLLBACK are never interrupted, nor is SQLite's reading of the schema
** (no statement of the user's is running then).
*/
static int on_progress(void *ud) {
  jn_Conn *c = (jn_Conn *)ud;
  if (!c->stmt_running || c->own || c->timeout_ms <= 0) return 0;
  if (now_ms() - c->stmt_t0 < c->timeout_ms) return 0;
  c->timedout = 1;
  return 1;
}

/* Install (ms > 0) or remove (ms == 0) the time limit of c's statements. */
static void set_timeout(jn_Conn *c, int ms) {
  c->timeout_ms = ms;
  c->stmt_running = 0;
  c->timedout = 0;
  if (c->eng != NULL) {   /* the server keeps the clock: statement_timeout */
    char sql[64];
    snprintf(sql, sizeof sql, "SET statement_timeout = %d", ms);
    jn_e_exec(c->eng, c->db, sql);
    return;
  }
  if (ms > 0) {
    sqlite3_trace_v2(JN_SQDB(c->db), SQLITE_TRACE_STMT | SQLITE_TRACE_PROFILE, on_trace, c);
    sqlite3_progress_handler(JN_SQDB(c->db), JN_PROGRESS_OPS, on_progress, c);
  } else {
    sqlite3_trace_v2(JN_SQDB(c->db), 0, NULL, NULL);
    sqlite3_progress_handler(JN_SQDB(c->db), 0, NULL, NULL);
  }
}

/* }====== */

/* {====== Opening and closing */

static const char *const open_opts[] = {
  "busy_timeout", "foreign_keys", "journal_mode", "synchronous", "temp_store", "log",
  "timeout", NULL
};
/* junction.open{ engine = ..., conninfo | path = ..., options... } */
static const char *const open_table_opts[] = {
  "engine", "conninfo", "path", "transport",
  "busy_timeout", "foreign_keys", "journal_mode", "synchronous", "temp_store", "log",
  "timeout", NULL
};
/* the options that only mean something to SQLite */
static const char *const sqlite_only_opts[] = {
  "busy_timeout", "foreign_keys", "journal_mode", "synchronous", "temp_store", NULL
};
static const char *const engines[] = { "sqlite", "postgres", NULL };
/* "memory" and "off" are refused: with them a crash in the middle of a
** write leaves the file corrupt, and with "off" ROLLBACK itself (which
** every failed atomic write relies on) is undefined. */
static const char *const journal_modes[] = { "delete", "truncate", "persist", "wal", NULL };
static const char *const sync_modes[] = { "off", "normal", "full", "extra", NULL };
static const char *const temp_stores[] = { "default", "file", "memory", NULL };

/* The options of junction.open, all read and checked before anything is
** opened.  A choice is an index into its list, or -1 when not given. */
typedef struct OpenOpts {
  int busy_timeout;         /* ms */
  int timeout;              /* statement time limit, ms (0: none) */
  int foreign_keys;
  int journal_mode, synchronous, temp_store;
  int log;                  /* a log function was given */
} OpenOpts;

/* Push opts[name] without metamethods. [-0, +1, -] */
static int rawfield(lua_State *L, int idx, const char *name) {
  lua_pushstring(L, name);
  lua_rawget(L, idx);
  return lua_type(L, -1);
}

/*
** opts[name] as a whole number of milliseconds from 0 to INT_MAX (dflt
** when absent); raises for anything else, saying what was given.
** [-0, +0, v]
*/
static int opt_ms(lua_State *L, int idx, const char *name, int dflt) {
  lua_Number v;
  int t = rawfield(L, idx, name);
  if (t == LUA_TNIL) { lua_pop(L, 1); return dflt; }
  if (t != LUA_TNUMBER)
    luaL_error(L, "junction.open: bad option '%s' (number of milliseconds expected, got %s)",
               name, luaL_typename(L, -1));
  v = lua_tonumber(L, -1);
  if (!(v >= 0 && v <= (lua_Number)INT_MAX && v == (lua_Number)(int)v))
    luaL_error(L, "junction.open: bad option '%s' (a whole number of milliseconds from 0 to "
               "%d expected, got %s)", name, INT_MAX, lua_tostring(L, -1));
  lua_pop(L, 1);
  return (int)v;
}

/* opts[name] as one of allowed (its index), or -1 when absent. [-0, +0, v] */
static int opt_choice(lua_State *L, int idx, const char *name, const char *const *allowed) {
  const char *v;
  int i, t = rawfield(L, idx, name);
  if (t == LUA_TNIL) { lua_pop(L, 1); return -1; }
  if (t != LUA_TSTRING)
    luaL_error(L, "junction.open: bad option '%s' (string expected, got %s)", name,
               luaL_typename(L, -1));
  v = lua_tostring(L, -1);
  for (i = 0; allowed[i] != NULL; i++)
    if (jn_stricmp(v, allowed[i]) == 0) { lua_pop(L, 1); return i; }
  if (allowed == journal_modes && (jn_stricmp(v, "off") == 0 || jn_stricmp(v, "memory") == 0))
    luaL_error(L, "junction.open: bad option 'journal_mode' ('%s' is refused: a crash in the "
               "middle of a write would corrupt the database; use 'delete', 'truncate', "
               "'persist' or 'wal')", v);
  return luaL_error(L, "junction.open: bad option '%s' (unknown value '%s')", name, v);
}

/*
** Read and check every option of the table at idx (nil: none) into o, with
** rawget, so that nothing the table does runs later.  Raises on misuse.
*/
static void read_opts(lua_State *L, int idx, OpenOpts *o, int table_form, int pg) {
  int t, i;
  o->busy_timeout = 5000;
  o->timeout = 0;
  o->foreign_keys = 1;
  o->journal_mode = o->synchronous = o->temp_store = -1;
  o->log = 0;
  if (lua_isnoneornil(L, idx)) return;
  jn_conn_checkopts(L, idx, table_form ? open_table_opts : open_opts, "junction.open");
  for (i = 0; pg && sqlite_only_opts[i] != NULL; i++) {
    if (rawfield(L, idx, sqlite_only_opts[i]) != LUA_TNIL)
      luaL_error(L, "junction.open: bad option '%s' (SQLite only: PostgreSQL has no such "
                 "setting)", sqlite_only_opts[i]);
    lua_pop(L, 1);
  }
  t = rawfield(L, idx, "log");
  if (t != LUA_TNIL && t != LUA_TFUNCTION)
    luaL_error(L, "junction.open: bad option 'log' (function expected, got %s)",
               luaL_typename(L, -1));
  o->log = t == LUA_TFUNCTION;
  lua_pop(L, 1);
  t = rawfield(L, idx, "foreign_keys");
  if (t != LUA_TNIL && t != LUA_TBOOLEAN)
    luaL_error(L, "junction.open: bad option 'foreign_keys' (boolean expected, got %s)",
               luaL_typename(L, -1));
  if (t == LUA_TBOOLEAN) o->foreign_keys = lua_toboolean(L, -1);
  lua_pop(L, 1);
  o->busy_timeout = opt_ms(L, idx, "busy_timeout", 5000);
  o->timeout = opt_ms(L, idx, "timeout", 0);
  o->journal_mode = opt_choice(L, idx, "journal_mode", journal_modes);
  o->synchronous = opt_choice(L, idx, "synchronous", sync_modes);
  o->temp_store = opt_choice(L, idx, "temp_store", temp_stores);
}

/*
** Run "PRAGMA name=value" for a value out of a fixed list (so nothing is
** spliced).  Switching a new file to WAL while another process does the same
** answers SQLITE_BUSY at once, without the busy handler, so it is retried
** here for up to timeout_ms.
*/
static int set_pragma(jn_Conn *c, const char *name, const char *value, int timeout_ms) {
  char sql[64];
  int rc, waited = 0;
  sqlite3_snprintf((int)sizeof sql, sql, "PRAGMA %s=%s", name, value);
  while ((rc = sqlite3_exec(JN_SQDB(c->db), sql, NULL, NULL, NULL)) == SQLITE_BUSY && waited < timeout_ms)
    waited += sqlite3_sleep(10);
  return rc;
}

/*
** Set up a newly opened c->db as o says: extended codes, no double-quoted
** string literals, the busy timeout, the pragmas, the time limit.
*/
static int setup_db(jn_Conn *c, const OpenOpts *o) {
  int rc;
  sqlite3_extended_result_codes(JN_SQDB(c->db), 1);
  /* A double-quoted name that is no column must be an error, never the
  ** string of that name: a column missing from a table would otherwise
  ** read as its own name, and match it in a where. */
  rc = sqlite3_db_config(JN_SQDB(c->db), SQLITE_DBCONFIG_DQS_DML, 0, (int *)NULL);
  if (rc == SQLITE_OK) rc = sqlite3_db_config(JN_SQDB(c->db), SQLITE_DBCONFIG_DQS_DDL, 0, (int *)NULL);
  if (rc != SQLITE_OK) return JN_RC_OLDSQLITE;
  rc = sqlite3_busy_timeout(JN_SQDB(c->db), o->busy_timeout);
  if (rc == SQLITE_OK)
    rc = sqlite3_exec(JN_SQDB(c->db), o->foreign_keys ? "PRAGMA foreign_keys=ON" : "PRAGMA foreign_keys=OFF",
                      NULL, NULL, NULL);
  if (rc == SQLITE_OK && o->journal_mode >= 0)
    rc = set_pragma(c, "journal_mode", journal_modes[o->journal_mode], o->busy_timeout);
  if (rc == SQLITE_OK && o->synchronous >= 0)
    rc = set_pragma(c, "synchronous", sync_modes[o->synchronous], o->busy_timeout);
  /* temp_store=MEMORY unless told otherwise: every atomic association write
  ** opens a savepoint, and SQLite spills its sub-journal to a temporary file
  ** past 64 KiB, which costs a write system call per page in long transactions. */
  if (rc == SQLITE_OK)
    rc = set_pragma(c, "temp_store", o->temp_store >= 0 ? temp_stores[o->temp_store] : "memory",
                    o->busy_timeout);
  if (rc == SQLITE_OK) set_timeout(c, o->timeout);
  return rc;
}

/* Check the keys of the options table at idx against allowed. */
void jn_conn_checkopts(lua_State *L, int idx, const char *const *allowed, const char *ctx) {
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

/* Is path a PostgreSQL URL (postgresql:// or postgres://)? */
static int is_pg_url(const char *path) {
  return strncmp(path, "postgresql://", 13) == 0 || strncmp(path, "postgres://", 11) == 0;
}

/*
** junction.open{ engine = "postgres", transport = T }: a table or userdata T
** moves the bytes (lua/junction/wire.lua drives it); no conninfo then, and
** no time limit yet (SET statement_timeout would need the transport while
** opening).  Returns 1 with the target "wire" in slot 3, or 0 when the table
** names no transport.  Raises on misuse.
*/
static int wire_target(lua_State *L) {
  int t = rawfield(L, 1, "transport");
  lua_pop(L, 1);
  if (t == LUA_TNIL) return 0;
  if (t != LUA_TTABLE && t != LUA_TUSERDATA)
    luaL_error(L, "junction.open: bad option 'transport' (table or userdata with a run method "
               "expected, got %s)", lua_typename(L, t));
  if (t == LUA_TTABLE) {   /* a plain table must have its run (a metatable may give it later) */
    int has_mt, run;
    rawfield(L, 1, "transport");
    has_mt = lua_getmetatable(L, -1);
    if (has_mt) lua_pop(L, 1);
    lua_pushliteral(L, "run");
    lua_rawget(L, -2);
    run = lua_isfunction(L, -1);
    lua_pop(L, 2);
    if (!has_mt && !run)
      luaL_error(L, "junction.open: bad option 'transport' (no run method)");
  }
  if (rawfield(L, 1, "conninfo") != LUA_TNIL)
    luaL_error(L, "junction.open: bad option 'conninfo' (a transport connects by itself: give one "
               "or the other)");
  lua_pop(L, 1);
  if (rawfield(L, 1, "timeout") != LUA_TNIL)
    luaL_error(L, "junction.open: bad option 'timeout' (not through a transport yet: run SET "
               "statement_timeout with db:exec)");
  lua_pop(L, 1);
  lua_pushliteral(L, "wire");
  lua_replace(L, 3);
  return 1;
}

/*
** What junction.open's arguments ask for: the engine (0 SQLite, 1
** PostgreSQL, 2 PostgreSQL through a transport), its path or conninfo at *target (a string on the stack), and
** the index of the options table (0: none).  Raises on misuse.
*/
static int open_target(lua_State *L, const char **target, int *optidx) {
  size_t len;
  int eng;
  if (lua_type(L, 1) == LUA_TTABLE) {
    int t;
    if (!lua_isnoneornil(L, 2))
      luaL_error(L, "junction.open: bad argument #2 (the options go in the table of argument #1)");
    t = rawfield(L, 1, "engine");
    if (t != LUA_TSTRING)
      luaL_error(L, "junction.open: bad option 'engine' (\"sqlite\" or \"postgres\" expected, "
                 "got %s)", luaL_typename(L, -1));
    for (eng = 0; engines[eng] != NULL; eng++)
      if (strcmp(lua_tostring(L, -1), engines[eng]) == 0) break;
    if (engines[eng] == NULL)
      luaL_error(L, "junction.open: bad option 'engine' (\"sqlite\" or \"postgres\" expected, "
                 "got '%s')", lua_tostring(L, -1));
    lua_pop(L, 1);
    if (eng == 1 && wire_target(L)) {
      *optidx = 1;
      *target = lua_tostring(L, 3);
      return 2;
    }
    if (rawfield(L, 1, eng == 1 ? "path" : "conninfo") != LUA_TNIL)
      luaL_error(L, "junction.open: bad option '%s' (engine '%s' takes '%s')",
                 eng == 1 ? "path" : "conninfo", engines[eng], eng == 1 ? "conninfo" : "path");
    lua_pop(L, 1);
    if (rawfield(L, 1, eng == 1 ? "conninfo" : "path") != LUA_TSTRING)
      luaL_error(L, "junction.open: bad option '%s' (string expected, got %s)",
                 eng == 1 ? "conninfo" : "path", luaL_typename(L, -1));
    lua_replace(L, 3);   /* slot 3: the target */
    *optidx = 1;
  } else {
    luaL_checklstring(L, 1, &len);
    lua_settop(L, 2);
    lua_pushvalue(L, 1);
    eng = is_pg_url(lua_tostring(L, 1));
    *optidx = 2;
  }
  *target = lua_tolstring(L, 3, &len);
  if (strlen(*target) != len)
    luaL_error(L, "junction.open: bad argument #1 (path contains a NUL byte)");
  return eng;
}

/* A failed open: nil, message, SQLITE_CANTOPEN[, details]. [-0, +(3|4), m] */
static int open_failed(lua_State *L, const char *msg, const char *sqlstate) {
  if (sqlstate == NULL) return jn_error_result(L, NULL, SQLITE_CANTOPEN, msg);
  lua_pushstring(L, msg);
  lua_createtable(L, 0, 1);
  lua_pushstring(L, sqlstate);
  lua_setfield(L, -2, "sqlstate");
  return jn_error_faildetails(L, SQLITE_CANTOPEN);
}

/*
** Push a new connection userdata, closed (no database yet, liolib's
** newprefile), with its uservalue { models = {}, path = ... }, its
** statement cache and bound-values tables, its entry in JN_CONNS and the
** log function of the options at optidx when o says there is one.  The
** path is the target at 3, or "postgres" (never the conninfo: it may hold
** a password).
** [-0, +1, m]
*/
static jn_Conn *new_conn(lua_State *L, int pg, int optidx, const OpenOpts *o) {
  jn_Conn *c = (jn_Conn *)lua_newuserdata(L, sizeof *c);
  int idx = lua_gettop(L);
  memset(c, 0, sizeof *c);
  c->dialect = &jn_sqlite_dialect;   /* and c->eng NULL: SQLite */
  c->cache_ref = c->log_ref = c->params_ref = c->instmt_ref = LUA_NOREF;
  luaL_setmetatable(L, JN_CONN_MT);
  lua_createtable(L, 0, 2);
  lua_newtable(L);
  lua_setfield(L, -2, "models");
  if (pg) lua_pushliteral(L, "postgres");
  else lua_pushvalue(L, 3);
  lua_setfield(L, -2, "path");
  luaL_getmetatable(L, JN_INST_MT);   /* pinned: c->inst_mt stays its address */
  c->inst_mt = lua_topointer(L, -1);
  lua_setfield(L, -2, "instmt");
  lua_setuservalue(L, idx);
  lua_newtable(L);
  c->cache_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  lua_newtable(L);
  c->params_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  luaL_getmetatable(L, JN_INST_MT);   /* what a new instance gets, without a lookup by name */
  c->instmt_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  lua_getfield(L, LUA_REGISTRYINDEX, JN_CONNS);
  lua_pushlightuserdata(L, c);
  lua_pushvalue(L, idx);
  lua_rawset(L, -3);
  lua_pop(L, 1);
  if (o->log) {
    rawfield(L, optidx, "log");
    c->log_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  }
  return c;
}

/*
** Open the SQLite database at path into c and set it up as o says.
** Returns SQLITE_OK, or pushes the failure (c closed again) and returns
** its count as a negative number.
** NOMUTEX: a connection belongs to one Lua state, and a Lua state is never
** used by two threads at once, so SQLite's per-call mutex buys nothing.
** [-0, +(0|3), m]
*/
static int open_sqlite(lua_State *L, jn_Conn *c, const char *path, const OpenOpts *o) {
  sqlite3 *db = NULL;
  int rc = sqlite3_open_v2(path, &db,
                           SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
  c->db = db;
  if (rc == SQLITE_OK) rc = setup_db(c, o);
  if (rc != SQLITE_OK) {
    int n = jn_error_result(L, c, rc, NULL);
    sqlite3_close_v2(db);
    c->db = NULL;
    return -n;
  }
  return SQLITE_OK;
}

#ifdef JN_WITH_PG
/* Connect c to PostgreSQL with conninfo.  Like open_sqlite. [-0, +(0|4), m] */
static int open_pg(lua_State *L, jn_Conn *c, const char *conninfo, const OpenOpts *o) {
  char msg[512];
  void *db = jn_pg_open(conninfo, msg, sizeof msg);
  if (db == NULL) return -open_failed(L, msg, "08001");
  c->db = db;
  c->eng = &jn_pg_engine;
  c->dialect = &jn_pg_dialect;
  if (o->timeout > 0) set_timeout(c, o->timeout);
  return SQLITE_OK;
}

/* c speaks PostgreSQL through the transport of the options at 1, kept in
** the connection's uservalue for lua/junction/wire.lua. [-0, +(0|3), m] */
static int open_wire(lua_State *L, jn_Conn *c) {
  void *db = jn_wire_open();
  if (db == NULL) return -open_failed(L, "out of memory", NULL);
  c->db = db;
  c->eng = &jn_wire_engine;
  c->dialect = &jn_pg_dialect;
  luaL_setmetatable(L, JN_WIRE_MT);   /* the connection is on top: slot 4 */
  lua_getuservalue(L, 4);
  rawfield(L, 1, "transport");
  lua_setfield(L, -2, "transport");
  lua_pop(L, 1);
  /* lua/junction/wire.lua's hook: the first such connection wraps the C
  ** methods its Lua modules keep (pure Lua, no statement) */
  lua_getfield(L, LUA_REGISTRYINDEX, "junction.wirehook");
  if (lua_isfunction(L, -1)) {
    if (lua_pcall(L, 0, 0, 0) != LUA_OK) lua_pop(L, 1);
  } else {
    lua_pop(L, 1);
  }
  return SQLITE_OK;
}

/* junction._wirehook(fn): what opening a connection with a transport calls
** (lua/junction/wire.lua). */
static int conn_wirehook(lua_State *L) {
  luaL_checktype(L, 1, LUA_TFUNCTION);
  lua_settop(L, 1);
  lua_setfield(L, LUA_REGISTRYINDEX, "junction.wirehook");
  return 0;
}
#endif

/*** Open a database.
@function junction.open
@tparam string|table path a file name, ":memory:", a postgresql:// URL, or a
table { engine = "sqlite", path = ... } / { engine = "postgres", conninfo = ... } with the options
@tparam[opt] table opts busy_timeout, foreign_keys, journal_mode, synchronous, temp_store,
timeout, log
@treturn Connection|fail
*/
static int conn_open(lua_State *L) {
  const char *path;
  int rc, optidx, pg;
  jn_Conn *c;
  OpenOpts o;
  lua_settop(L, 2);
  lua_pushnil(L);
  pg = open_target(L, &path, &optidx);          /* slot 3: the path or conninfo */
  read_opts(L, optidx, &o, optidx == 1, pg);  /* every check before anything is created */
#ifndef JN_WITH_PG
  if (pg)
    return open_failed(L, "junction was built without PostgreSQL (libpq): rebuild it with "
                       "libpq installed (Debian: libpq-dev)", NULL);
#endif
  lua_settop(L, 3);
  c = new_conn(L, pg, optidx, &o);              /* slot 4 */
#ifdef JN_WITH_PG
  if (pg == 2) rc = open_wire(L, c);
  else if (pg) rc = open_pg(L, c, path, &o);
  else
#endif
  rc = open_sqlite(L, c, path, &o);
  if (rc < 0) return -rc;
  lua_settop(L, 4);
  return 1;
}

/*** The engine of the connection: "sqlite" or "postgres".
@function db:engine
*/
static int conn_engine(lua_State *L) {
  jn_Conn *c = to_conn(L, 1, "db:engine");
  lua_pushstring(L, c->dialect->name);
  return 1;
}

/*** Set the time limit of each statement from now on; returns the limit
it replaces.  0 removes it.
@function db:setTimeout
@tparam integer ms
@treturn integer
*/
static int conn_set_timeout(lua_State *L) {
  jn_Conn *c = jn_conn_check(L, 1, "db:setTimeout");
  lua_Number v;
  int old = c->timeout_ms;
  if (lua_type(L, 2) != LUA_TNUMBER)
    return luaL_error(L, "db:setTimeout: bad argument #1 (number of milliseconds expected, got %s)",
                      luaL_typename(L, 2));
  v = lua_tonumber(L, 2);
  if (!(v >= 0 && v <= (lua_Number)INT_MAX && v == (lua_Number)(int)v))
    return luaL_error(L, "db:setTimeout: bad argument #1 (a whole number of milliseconds from 0 "
                      "to %d expected, got %s)", INT_MAX, lua_tostring(L, 2));
  set_timeout(c, (int)v);
  lua_pushinteger(L, old);
  return 1;
}

/* Close: finalize every statement, then the database.  Idempotent. */
static int close_conn(lua_State *L, jn_Conn *c) {
  int rc = SQLITE_OK;
  if (c->db != NULL) {
    jn_stmt_finalize_all(L, c);
    rc = c->eng != NULL ? c->eng->close(c->db) : sqlite3_close_v2(JN_SQDB(c->db));
    c->db = NULL;
  }
  luaL_unref(L, LUA_REGISTRYINDEX, c->cache_ref);
  luaL_unref(L, LUA_REGISTRYINDEX, c->log_ref);
  luaL_unref(L, LUA_REGISTRYINDEX, c->params_ref);
  luaL_unref(L, LUA_REGISTRYINDEX, c->instmt_ref);
  c->cache_ref = c->log_ref = c->params_ref = c->instmt_ref = LUA_NOREF;
  c->txdepth = 0;   /* SQLite rolled back whatever was open: so are its instances */
  if (tx_undo != NULL && c->tx != NULL) tx_undo(L, c);
  free(c->tx);
  c->tx = NULL;
  c->txdepth = c->txcap = 0;
  c->nzombie = 0;
  return rc;
}

/* Closing while a call runs. */

/* The start of the shared object (or program) that holds fn's code. */
static void *code_base(lua_CFunction fn) {
  Dl_info info;
  void *p = NULL;
  if (fn == NULL) return NULL;
  memcpy(&p, &fn, sizeof p < sizeof fn ? sizeof p : sizeof fn);   /* no cast ISO C forbids */
  if (dladdr(p, &info) == 0) return NULL;
  return info.dli_fbase;
}

/*
** Is one of junction's C functions running further down L's stack?  Then
** the caller is user code that junction called in the middle of a call (a
** log or defaultValue function, a metamethod of an argument, a finalizer
** the collector ran during an allocation), and that call may hold
** statements of any connection.  Only close asks, so the walk costs nothing
** elsewhere.
*/
static int in_junction_call(lua_State *L) {
  lua_Debug ar;
  int level;
  void *self = code_base(conn_open);
  if (self == NULL) return 0;
  for (level = 1; lua_getstack(L, level, &ar); level++) {
    lua_CFunction f;
    lua_getinfo(L, "f", &ar);
    f = lua_tocfunction(L, -1);
    lua_pop(L, 1);
    if (f != NULL && code_base(f) == self) return 1;
  }
  return 0;
}

/*
** Raise when c may not be closed now: a call on it is running (a log or
** defaultValue function of its own), or any junction call is, further down
** this coroutine's stack.  The call finishes with its statements intact;
** the program can close the connection after it returns.
*/
static void check_idle(lua_State *L, jn_Conn *c, const char *ctx) {
  if (c->db == NULL) return;
  if (c->incall)
    luaL_error(L, "%s: the connection is in use (called from a log or defaultValue "
               "function while a call runs); close it after that call returns", ctx);
  if (in_junction_call(L))
    luaL_error(L, "%s: the connection may be in use (called from a metamethod or "
               "finalizer while a junction call runs); close it after that call returns", ctx);
}

/*** Close the connection; a second call does nothing.
@function db:close
@treturn true|fail
*/
static int conn_close(lua_State *L) {
  jn_Conn *c = to_conn(L, 1, "db:close");
  int rc;
  check_idle(L, c, "db:close");
  rc = close_conn(L, c);
  if (rc == SQLITE_OK) lua_pushboolean(L, 1);
  return jn_error_result(L, c, rc, jn_e_errstr(rc));
}

/*
** __gc.  The collector only finalizes a connection no call is using (but
** maybe while a call on another connection runs), and it is closed.  Called
** by hand on a live connection while a junction call runs, it does nothing:
** the connection closes when collected, or by db:close after the call.
*/
static int conn_gc(lua_State *L) {
  jn_Conn *c = to_conn(L, 1, "junction.Connection:__gc");
  int alive;
  lua_getfield(L, LUA_REGISTRYINDEX, JN_CONNS);
  lua_pushlightuserdata(L, c);
  lua_rawget(L, -2);
  alive = lua_rawequal(L, -1, 1);
  lua_pop(L, 2);
  if (alive && c->db != NULL && (c->incall || in_junction_call(L))) return 0;
  close_conn(L, c);
  return 0;
}

#if LUA_VERSION_NUM >= 504
/* __close (a <close> variable): as db:close, raising if a call is running. */
static int conn_toclose(lua_State *L) {
  jn_Conn *c = to_conn(L, 1, "junction.Connection:__close");
  check_idle(L, c, "junction.Connection:__close");
  close_conn(L, c);
  return 0;
}
#endif

static int conn_tostring(lua_State *L) {
  jn_Conn *c = to_conn(L, 1, "junction.Connection:__tostring");
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
  jn_Conn *c = jn_conn_check(L, 1, "db:exec");
  const char *sql = luaL_checkstring(L, 2);
  char *err = NULL;
  int rc;
  if (lua_gettop(L) > 2)   /* a value given here would be dropped without a word */
    luaL_error(L, "db:exec: takes no values (%d given): bind them with db:query, one statement",
               lua_gettop(L) - 2);
  rc = jn_conn_txcheck(L, c);
  if (rc != SQLITE_OK) return jn_error_result(L, c, rc, NULL);
  c->schema_gen++;   /* a script may change the schema (jn_Whole) */
  if (c->log_ref != LUA_NOREF) {   /* the script as one entry, no values */
    if (c->inlog) luaL_error(L, "junction: the log function may not run statements on its own connection");
    lua_rawgeti(L, LUA_REGISTRYINDEX, c->log_ref);
    lua_pushvalue(L, 2);
    lua_newtable(L);
    jn_conn_callback(L, c, 2, 0, 1);
  }
  if (c->eng != NULL) {
    rc = jn_e_exec(c->eng, c->db, sql);
    if (rc != SQLITE_OK) return jn_error_result(L, c, rc, NULL);
    lua_pushboolean(L, 1);
    return 1;
  }
  rc = sqlite3_exec(JN_SQDB(c->db), sql, NULL, NULL, &err);
  if (rc != SQLITE_OK) {
    if (err == NULL || (rc & 0xff) == SQLITE_INTERRUPT) {
      sqlite3_free(err);
      return jn_error_result(L, c, rc, NULL);
    }
    rc = jn_error_result(L, c, jn_e_errcode(c->eng, c->db), err);
    sqlite3_free(err);
    return rc;
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
  jn_Conn *c = jn_conn_check(L, 1, "db:query");
  size_t len;
  const char *sql;
  int top = lua_gettop(L), rc, i, ncol, nrow = 0;
  jn_St *st;
  if (lua_type(L, 2) != LUA_TSTRING)
    luaL_error(L, "db:query: bad argument #1 (SQL string expected, got %s)", luaL_typename(L, 2));
  sql = lua_tolstring(L, 2, &len);
  st = jn_stmt_cached(L, c, sql, len, &rc);
  if (st == NULL) {
    if (rc != SQLITE_OK) return jn_error_result(L, c, rc, NULL);
    return luaL_error(L, "db:query: bad argument #1 (no SQL statement in it)");
  }
  if (!jn_e_readonly(c->eng, st)) c->schema_gen++;   /* it may change the schema (jn_Whole) */
  if (strlen(jn_e_sql(c->eng, st)) < len) {   /* text after the first statement */
    jn_St *next = NULL;
    const char *rest = sql + strlen(jn_e_sql(c->eng, st));
    int more = jn_e_prepare(c->eng, c->db, rest, len - (size_t)(rest - sql), &next, NULL);
    if (next != NULL) jn_e_finalize(c->eng, next);
    if (more != SQLITE_OK || next != NULL)   /* a second statement would never run */
      return luaL_error(L, "db:query: bad argument #1 (more than one statement: db:query runs "
                        "one, db:exec several)");
  }
  if (top - 2 != jn_e_nparams(c->eng, st))
    return luaL_error(L, "db:query: %d value%s given for %d parameter%s", top - 2,
                      top - 2 == 1 ? "" : "s", jn_e_nparams(c->eng, st),
                      jn_e_nparams(c->eng, st) == 1 ? "" : "s");
  for (i = 3; i <= top; i++)
    if (jn_stmt_bindvalue(L, c, st, i - 2, i, JN_T_GUESS) != 0)
      return luaL_error(L, "db:query: bad argument #%d (%s cannot be bound)", i - 1,
                        luaL_typename(L, i));
  ncol = jn_e_ncols(c->eng, st);
  lua_newtable(L);
  while ((rc = jn_conn_step(L, c, st)) == SQLITE_ROW) {
    lua_createtable(L, 0, ncol);
    for (i = 0; i < ncol; i++) {
      jn_stmt_pushcolumn(L, c->eng, st, i, JN_T_ANY);
      lua_setfield(L, -2, jn_e_colname(c->eng, st, i));
    }
    lua_rawseti(L, -2, ++nrow);
  }
  return jn_error_finish(L, c, st, rc, SQLITE_DONE);
}

static int conn_changes(lua_State *L) {
  jn_Conn *c = jn_conn_check(L, 1, "db:changes");
  lua_pushinteger(L, jn_e_changes(c->eng, c->db));
  return 1;
}

static int conn_last_insert_id(lua_State *L) {
  jn_Conn *c = jn_conn_check(L, 1, "db:lastInsertId");
  jn_scalar_pushi64(L, jn_e_last_id(c->eng, c->db));
  return 1;
}


/* {====== Transactions */

/* The token at idx; raises for anything else. */
static jn_TxToken *check_token(lua_State *L, int idx) {
  jn_TxToken *t = (jn_TxToken *)luaL_testudata(L, idx, JN_TX_MT);
  if (t == NULL)
    luaL_error(L, "db:_tx: bad argument #2 (transaction token expected, got %s)",
               jn_error_typename(L, idx));
  return t;
}

/*
** A token is collected: its db:transaction call can no longer end its
** transaction (the coroutine that held it was dropped).  Mark the frame;
** the next statement on the connection rolls it back (jn_conn_txcheck).
** Pure C: a finalizer runs at any allocation.
*/
static int tx_gc(lua_State *L) {
  jn_TxToken *t = (jn_TxToken *)luaL_testudata(L, 1, JN_TX_MT);
  jn_Conn *c;
  int i;
  if (t == NULL || t->c == NULL) return 0;
  c = t->c;
  t->c = NULL;
  if (t->killed) {
    t->killed = 0;
    if (c->nzombie > 0) c->nzombie--;
  }
  for (i = 0; i < c->txdepth; i++)
    if (c->tx[i].serial == t->serial) c->tx[i].abandoned = 1;
  return 0;
}

static int tx_tostring(lua_State *L) {
  lua_pushliteral(L, "junction.Transaction");
  return 1;
}

/*
** db:_tx("open", mode): begin a transaction (BEGIN IMMEDIATE, or the mode
** given), or a savepoint inside the caller's own one; pushes its token,
** which db:transaction keeps as a local until it calls db:_tx("close").
*/
static int tx_open(lua_State *L, jn_Conn *c) {
  static const char *const modes[] = { "immediate", "deferred", "exclusive", NULL };
  int mode = luaL_checkoption(L, 3, "immediate", modes), rc;
  jn_TxToken *t;
  jn_TxFrame *f;
  if ((rc = jn_conn_txcheck(L, c)) != SQLITE_OK) return jn_error_result(L, c, rc, NULL);
  /* everything that may raise comes before BEGIN */
  if (c->txdepth == c->txcap) {
    int cap = c->txcap ? c->txcap * 2 : 4;
    jn_TxFrame *p = (jn_TxFrame *)realloc(c->tx, (size_t)cap * sizeof *p);
    if (p == NULL) return luaL_error(L, "junction: not enough memory");
    c->tx = p;
    c->txcap = cap;
  }
  t = (jn_TxToken *)lua_newuserdata(L, sizeof *t);
  t->c = NULL;
  t->serial = 0;
  t->killed = 0;
  luaL_setmetatable(L, JN_TX_MT);
  lua_createtable(L, 2, 0);
  lua_pushvalue(L, 1);
  lua_rawseti(L, -2, 1);   /* the connection outlives the token */
  lua_pushthread(L);
  lua_rawseti(L, -2, 2);   /* so does the owner */
  lua_setuservalue(L, -2);
  rc = run_own(c, c->txdepth == 0 ? JN_CS_BEGIN + mode : JN_CS_SAVEPOINT);
  if (rc != SQLITE_OK) return jn_error_result(L, c, rc, NULL);
  t->c = c;
  t->serial = ++c->txserial;
  f = &c->tx[c->txdepth++];
  f->serial = t->serial;
  f->token = t;
  f->owner = L;
  f->abandoned = 0;
  f->gc_tried = 0;
  f->hint_level = -1;
  f->hint_local = 0;
  return 1;
}

/*
** End the outermost transaction (frame 0): commit (ok, and SQLite did not
** roll it back already: lost), else roll back.  Returns 0, or the count of
** the failure pushed.
*/
static int tx_end_outer(lua_State *L, jn_Conn *c, int ok, int lost) {
  int rc = ok && !lost ? run_own(c, JN_CS_COMMIT) : SQLITE_OK, n = 0;
  if (rc == SQLITE_OK && ok && !lost) return 0;
  if (rc != SQLITE_OK) n = jn_error_result(L, c, rc, NULL);
  if (!jn_e_autocommit(c->eng, c->db)) run_own(c, JN_CS_ROLLBACK);
  if (n) return n;
  if (ok && lost)
    return jn_error_result(L, c, SQLITE_ABORT, "the transaction was rolled back by an error inside it");
  return 0;
}

/*
** db:_tx("close", token, ok): commit or release (ok), or roll back.  Frames
** above the token's (transactions opened inside it whose function never
** returned: a coroutine it left suspended) are rolled back first.  Pushes
** true, or returns the failure's count.
*/
static int tx_close(lua_State *L, jn_Conn *c) {
  jn_TxToken *t = check_token(L, 3);
  int ok = lua_toboolean(L, 4), i, lost, rc;
  if (t->killed) {
    t->killed = 0;
    t->serial = 0;
    if (c->nzombie > 0) c->nzombie--;
    if (!ok) { lua_pushboolean(L, 1); return 1; }
    return jn_error_result(L, c, SQLITE_ABORT, "the transaction was rolled back: the transaction "
                     "around it ended while its function was suspended");
  }
  for (i = c->txdepth - 1; i >= 0; i--)
    if (c->tx[i].serial == t->serial && t->serial != 0) break;
  if (i < 0) return luaL_error(L, "db:_tx: that transaction is not open");
  end_frames(c, i + 1, 1);     /* what it left open inside it never finished */
  c->txdepth = i;              /* from here on the frame is gone, whatever happens */
  t->serial = 0;
  lost = jn_e_autocommit(c->eng, c->db);   /* SQLite rolled back already */
  if (i == 0) {
    int n = tx_end_outer(L, c, ok, lost);
    if (n) return n;
  } else if (lost) {           /* lost with the outer one */
    if (ok)
      return jn_error_result(L, c, SQLITE_ABORT, "the transaction was rolled back by an error inside it");
  } else {
    if (!ok) run_own(c, JN_CS_ROLLBACK_TO);
    rc = run_own(c, JN_CS_RELEASE);
    if (ok && rc != SQLITE_OK) return jn_error_result(L, c, rc, NULL);
  }
  lua_pushboolean(L, 1);
  return 1;
}

/*
** db:_tx("open", mode) and db:_tx("close", token, ok): the transaction
** primitives db:transaction is built on (tx_open, tx_close).  Both return
** the token / true, or fail.
*/
static int conn_tx(lua_State *L) {
  static const char *const ops[] = { "open", "close", NULL };
  jn_Conn *c = jn_conn_check(L, 1, "db:transaction");
  int op = luaL_checkoption(L, 2, NULL, ops);
  if (c->inlog)
    luaL_error(L, "junction: the log function may not run statements on its own connection");
  return op == 0 ? tx_open(L, c) : tx_close(L, c);
}

/* }====== */

/*** The model of that name, or nil.
@function db:model
*/
static int conn_model(lua_State *L) {
  jn_conn_check(L, 1, "db:model");
  luaL_checkstring(L, 2);
  lua_getuservalue(L, 1);
  lua_getfield(L, -1, "models");
  lua_pushvalue(L, 2);
  lua_rawget(L, -2);
  return 1;
}

/* db:_models(): the table name -> model (for the Lua side). */
static int conn_models(lua_State *L) {
  jn_conn_check(L, 1, "db:associate");
  lua_getuservalue(L, 1);
  lua_getfield(L, -1, "models");
  return 1;
}

/*
** junction._isopen(model or connection): whether its connection is open,
** for the association methods written in Lua to name themselves in the
** closed-connection error.
*/
static int conn_isopen(lua_State *L) {
  jn_Model *m = (jn_Model *)luaL_testudata(L, 1, JN_MODEL_MT);
  jn_Conn *c = m != NULL ? m->conn : (jn_Conn *)luaL_testudata(L, 1, JN_CONN_MT);
  if (c == NULL && m == NULL) c = (jn_Conn *)luaL_testudata(L, 1, JN_WIRE_MT);
  if (c == NULL)
    return luaL_error(L, "junction._isopen: bad argument #1 (model or connection expected, got %s)",
                      jn_error_typename(L, 1));
  lua_pushboolean(L, c->db != NULL);
  return 1;
}

/* }====== */

static const luaL_Reg conn_methods[] = {
  {"model", conn_model},
  {"engine", conn_engine},
  {"exec", conn_exec},
  {"query", conn_query},
  {"close", conn_close},
  {"setTimeout", conn_set_timeout},
  {"changes", conn_changes},
  {"lastInsertId", conn_last_insert_id},
  {"_tx", conn_tx},
  {"_wire", conn_wire},
  {"_models", conn_models},
  {NULL, NULL}
};

static const luaL_Reg conn_meta[] = {
  {"__gc", conn_gc},
#if LUA_VERSION_NUM >= 504
  {"__close", conn_toclose},
#endif
  {"__tostring", conn_tostring},
  {NULL, NULL}
};

/*
** Register the connection type; leaves junction.open and the method table
** (as "Connection", for lua/junction to extend) in the module table at -1.
*/
void jn_conn_open(lua_State *L) {
  lua_newtable(L);
  lua_createtable(L, 0, 1);
  lua_pushliteral(L, "v");
  lua_setfield(L, -2, "__mode");
  lua_setmetatable(L, -2);
  lua_setfield(L, LUA_REGISTRYINDEX, JN_CONNS);
  luaL_newmetatable(L, JN_TX_MT);
  lua_pushcfunction(L, tx_gc);
  lua_setfield(L, -2, "__gc");
  lua_pushcfunction(L, tx_tostring);
  lua_setfield(L, -2, "__tostring");
  lua_pushliteral(L, "junction.Transaction");
  lua_setfield(L, -2, "__metatable");
  lua_pop(L, 1);
  luaL_newmetatable(L, JN_CONN_MT);
  luaL_setfuncs(L, conn_meta, 0);
  lua_newtable(L);
  luaL_setfuncs(L, conn_methods, 0);
  lua_pushvalue(L, -1);
  lua_setfield(L, -4, "Connection");
  lua_setfield(L, -2, "__index");
  lua_pop(L, 1);
  /* a connection with a transport: its methods (lua/junction/wire.lua
  ** fills WireConnection: each C method run a statement at a time) */
  luaL_newmetatable(L, JN_WIRE_MT);
  luaL_setfuncs(L, conn_meta, 0);
  lua_newtable(L);
  lua_pushvalue(L, -1);
  lua_setfield(L, -4, "WireConnection");
  lua_setfield(L, -2, "__index");
  lua_pop(L, 1);
  lua_pushcfunction(L, conn_open);
  lua_setfield(L, -2, "open");
  lua_pushcfunction(L, conn_isopen);
  lua_setfield(L, -2, "_isopen");
#ifdef JN_WITH_PG
  lua_pushcfunction(L, conn_wirehook);
  lua_setfield(L, -2, "_wirehook");
#endif
}
