/*
** jn.h: junction's private header, shared by every csrc/ file.
**
** It holds the type names, the structures behind the four userdata types
** (connection, model, association, instance) and the prototypes of the
** functions that cross files.  Those are named jn_<concern>_<verb> and are
** hidden from the dynamic symbol table; everything else is static.  Only
** luaopen_junction_core is exported.
*/
#ifndef JN_H
#define JN_H

#define _POSIX_C_SOURCE 200809L

#include <stddef.h>
#include <string.h>
#include <sqlite3.h>
#include <lua.h>
#include <lauxlib.h>
#include "jn_compat.h"

#if defined(__GNUC__) || defined(__clang__)
#define JN_INTERNAL __attribute__((visibility("hidden")))
#define JN_EXPORT   __attribute__((visibility("default")))
#else
#define JN_INTERNAL
#define JN_EXPORT
#endif

#include "jn_engine.h"

#ifndef JUNCTION_VERSION
#define JUNCTION_VERSION "scm"
#endif

#define JN_CONN_MT   "junction.Connection"
/* a connection with a transport (jn_wire.c): the same userdata, with the
** methods lua/junction/wire.lua runs a statement at a time */
#define JN_WIRE_MT   "junction.WireConnection"
#define JN_MODEL_MT  "junction.Model"
#define JN_ASSOC_MT  "junction.Association"
#define JN_INST_MT   "junction.Instance"
#define JN_LIST_MT   "junction.List"   /* the arrays of instances reads return */

/* The code of a returned failure for a value its field cannot hold (and,
** later, a failed validation): nil, message, JN_VALIDATION, details.  Its
** low byte (232) is no SQLite primary result code, so it never collides
** with an extended one. */
#define JN_VALIDATION 1000

/* Codes of a statement junction refuses itself (jn_conn_txcheck, open):
** the low byte is the SQLite code the caller gets, the rest picks the
** message jn_error_result gives it, so the reason travels with the code. */
#define JN_RC_YIELDED     (SQLITE_BUSY | 0x4000)    /* another coroutine's transaction */
#define JN_RC_KILLED      (SQLITE_ABORT | 0x4000)   /* its transaction ended around it */
#define JN_RC_ROLLEDBACK  (SQLITE_ABORT | 0x4100)   /* SQLite rolled the transaction back */
#define JN_RC_OLDSQLITE   (SQLITE_ERROR | 0x4000)   /* no SQLITE_DBCONFIG_DQS_* */

/* Registry key of junction.null, the value that stands for SQL NULL in
** Model:update (a Lua table cannot hold nil). */
#define JN_NULL "junction.null"

/* Registry key of a weak table: model (light userdata) -> its lookup table,
** name -> field index | method | association slot.  Weak, and keyed by
** pointer, so that no strong reference from the registry keeps a model (and
** through its methods, its connection) alive. */
#define JN_LOOKUPS "junction.lookups"

/* Registry key of a weak table: model (light userdata) -> its accessors,
** name -> { get = f, set = f, field = index or nil (VIRTUAL) }, anchored in
** the model's uservalue under "accessors".  Only models that declare get,
** set or VIRTUAL fields have one (jn_Model.accessors). */
#define JN_ACCESSORS "junction.accessors"

/* Registry key of a weak table: connection (light userdata) -> the
** transaction journals of its instances (jn_inst.c), anchored in the
** connection's uservalue under "journals": a journal holds instances, they
** hold their connection, so a strong reference from the registry would keep
** a dropped connection (and its open transaction's locks) alive. */
#define JN_JOURNALS "junction.journals"

/* Registry key of the table of instance methods every model starts with. */
#define JN_INST_METHODS "junction.instance_methods"

/*
** Push t[k] of the table at idx without calling its __index (nil when idx
** is not a table): options are read raw, so that a metatable on an options
** table never runs user code in the middle of a call.  [-0, +1, -]
*/
static inline int jn_optfield(lua_State *L, int idx, const char *k) {
  if (!lua_istable(L, idx)) { lua_pushnil(L); return LUA_TNIL; }
  idx = idx < 0 ? lua_gettop(L) + idx + 1 : idx;
  lua_pushstring(L, k);
  lua_rawget(L, idx);
  return lua_type(L, -1);
}

/* Compare two names ignoring ASCII case (SQL identifiers, ASC/DESC):
** <0, 0, >0 as strcmp.  Not locale-dependent, unlike strcasecmp. */
static inline int jn_stricmp(const char *a, const char *b) {
  unsigned char x, y;
  do {
    x = (unsigned char)*a++;
    y = (unsigned char)*b++;
    if (x >= 'A' && x <= 'Z') x = (unsigned char)(x + 32);
    if (y >= 'A' && y <= 'Z') y = (unsigned char)(y + 32);
  } while (x == y && x != 0);
  return (int)x - (int)y;
}

/* {====== Connection */

/* Statements a connection keeps for itself, prepared on first use. */
enum {
  JN_CS_BEGIN, JN_CS_BEGIN_DEFERRED, JN_CS_BEGIN_EXCLUSIVE, JN_CS_COMMIT,
  JN_CS_ROLLBACK, JN_CS_SAVEPOINT, JN_CS_RELEASE, JN_CS_ROLLBACK_TO,
  JN_CS_WSAVE, JN_CS_WRELEASE, JN_CS_WROLLBACK_TO, JN_CS_COOKIE, JN_CS_COUNT
};

typedef struct jn_Conn {
  void *db;                 /* the engine's handle (sqlite3 *); NULL once closed */
  const jn_Engine *eng;     /* NULL: SQLite, called directly (jn_engine.h) */
  const jn_Dialect *dialect;
  int cache_ref;            /* registry: table sql text -> statement */
  int ncached;              /* entries in that table */
  int log_ref;              /* registry: the log function, or LUA_NOREF */
  int params_ref;           /* registry: bound values of the next logged statement */
  int nmodels;
  struct jn_TxFrame *tx;    /* db:transaction's transaction and savepoints, outermost first */
  int txdepth;              /* entries in use (0: none open) */
  int txcap;                /* entries allocated (malloc'd, freed on close) */
  unsigned long txserial;   /* the last serial given to a transaction token */
  int nzombie;              /* tokens of transactions ended under a suspended function */
  /* The transaction check that a running atomic call (jn_conn_atomic) passed
  ** at its start, valid for its statements while the frames stay as they
  ** were then (txok_L NULL: none) */
  const void *txok_L;
  int txok_depth, txok_zombie;
  unsigned long txok_serial;
  int own;                  /* running the connection's own BEGIN/COMMIT/... */
  int incall;               /* Lua callbacks (log, defaultValue) now running */
  int inlog;                /* the log function is running */
  jn_St *st[JN_CS_COUNT];
  long long ts_sec;         /* the second ts_text was formatted for */
  char ts_text[24];         /* "YYYY-MM-DD HH:MM:SS" of that second */
  int timeout_ms;           /* statement time limit (0: none) */
  int timedout;             /* the progress handler interrupted the statement */
  int stmt_running;         /* a statement has started and not finished */
  long long stmt_t0;        /* monotonic ms when the running statement started */
  const void *inst_mt;      /* the instance metatable (pinned in the uservalue): compared, never read */
  int instmt_ref;           /* registry: the instance metatable, or LUA_NOREF once closed */
  unsigned schema_gen;      /* counts db:exec calls, db:query writes and db:sync: the
                            ** connection's own schema may have changed (a TEMP trigger: jn_Whole) */
  /* main's schema cookie as last read (jn_conn_guardone), good while main's data
  ** version and schema_gen stay what they were then (ck_ok 0: none) */
  int ck_ok;
  unsigned ck_dv, ck_gen;
  long long ck_cookie;
  int ts_frozen;            /* a wire call runs: every timestamp is the time of its first run */
  int ts_taken;             /* ts_at holds that time */
  long long ts_at_sec;
  long ts_at_nsec;
} jn_Conn;

/*
** One db:transaction that is open: the outermost is the transaction, the
** others savepoints.  Its token is a userdata that lives as a local of the
** db:transaction call (lua/junction/init.lua) on the owner's stack; the
** token's uservalue holds the owner and the connection, so both stay valid
** until the token is collected, and the token's __gc sets abandoned.
*/
typedef struct jn_TxFrame {
  unsigned long serial;     /* the token's serial */
  void *token;              /* the token (compared, read only while !abandoned) */
  lua_State *owner;         /* the coroutine that called db:transaction */
  int abandoned;            /* the token was collected: nobody can end it */
  int gc_tried;             /* a full collection was run to find out */
  int hint_level, hint_local;   /* where the token was last found on the owner's stack */
} jn_TxFrame;

/* The token of a db:transaction (JN_TX_MT). */
typedef struct jn_TxToken {
  jn_Conn *c;               /* NULL once collected */
  unsigned long serial;     /* 0 until its transaction has begun */
  int killed;               /* ended by an enclosing transaction while it was open */
} jn_TxToken;

#define JN_TX_MT     "junction.Transaction"

/* How an atomic operation protects its writes: not at all (one statement
** is atomic by itself), by a transaction of its own, or by a savepoint
** inside the caller's transaction.  A body run by jn_conn_atomic finds its
** jn_Write at stack index 1. */
enum { JN_W_NONE, JN_W_TX, JN_W_SAVEPOINT };

/*
** Whether one statement that writes several rows keeps all of them or none
** by itself on SQLite: its program has no trigger and no FAIL conflict
** (RAISE(FAIL), ON CONFLICT FAIL keep the rows before the failing one).
** Read with EXPLAIN after the statement ran under a savepoint, and good for
** as long as the schema it was read under (jn_conn_guardone).
*/
typedef struct jn_Whole {
  const jn_St *st;          /* the statement it was read for (NULL: never read) */
  int whole;
  long long cookie;         /* main's schema_version then */
  unsigned gen;             /* jn_Conn.schema_gen then */
  int rep;                  /* the statement's SQLITE_STMTSTATUS_REPREPARE then */
} jn_Whole;

typedef struct jn_Write {
  jn_Conn *c;
  int mode;
  int once;                 /* the body changed what a second run would read
                            ** (instances its caller built): never run it again */
  jn_Whole *learn;          /* read this whole-ness once its statement has run */
  long long cookie;         /* main's schema_version, read by jn_conn_guardone */
} jn_Write;

/* }====== */

/* {====== Models */

enum {
  JN_T_INTEGER, JN_T_TEXT, JN_T_STRING, JN_T_REAL, JN_T_BLOB, JN_T_BOOLEAN,
  JN_T_DATE, JN_T_DATEONLY, JN_T_JSON, JN_T_ENUM, JN_T_UUID,
  JN_T_BIGINT,              /* a type value only: a field declared BIGINT is INTEGER */
  JN_T_VIRTUAL,             /* a type value only: require "junction" takes VIRTUAL fields out */
  JN_T_ANY,
  JN_T_GUESS                /* db:query: a string that is not UTF-8 is a BLOB */
};

#define JN_F_NOTNULL   0x01
#define JN_F_PK        0x02
#define JN_F_AUTOINC   0x04
#define JN_F_UNIQUE    0x08   /* UNIQUE on this column alone */
#define JN_F_DEFAULT   0x10   /* defaultValue in the model's "defaults" table */

typedef struct jn_Field {
  const char *name;         /* the attribute: what Lua code says; anchored in the model's uservalue */
  const char *col;          /* the column: what SQL says (field = "col"; else name) */
  int type;
  int flags;
  int length;               /* STRING(n) */
  const char *enums;        /* ENUM: the values, each NUL-terminated, then an empty
                               one; anchored in the model's uservalue; else NULL */
} jn_Field;

/* Statements a model keeps, prepared on first use. */
enum { JN_MS_INSERT, JN_MS_INSERT_PK, JN_MS_BY_PK, JN_MS_DELETE_PK, JN_MS_COUNT };

typedef struct jn_Model {
  jn_Conn *conn;            /* the connection userdata is anchored in the uservalue */
  const char *name;
  const char *table;        /* tableName, as declared (no schema) */
  const char *schema;       /* the schema option, or NULL */
  const char *qtable;       /* the table as SQL names it, quoted and qualified by the schema
                            ** ("archive"."users" on PostgreSQL, "archive.users" on SQLite):
                            ** every statement names the table by this, never by table */
  const char *dbtable;      /* the table's name in the catalog (SQLite: "archive.users",
                            ** PostgreSQL: "users", its schema bound beside it); the base of
                            ** the index names junction gives */
  int nfields;
  int pk;                   /* field index (0-based) of the primary key */
  int created, updated;     /* timestamp field indices, or -1 */
  const char *sql[JN_MS_COUNT];   /* generated once, anchored in the uservalue */
  const char *cols;         /* "c1", "c2", ...: every column, in field order */
  jn_St *st[JN_MS_COUNT];
  int accessors;            /* fields with get/set, or VIRTUAL fields (JN_ACCESSORS) */
  int has_own;              /* the model has its own table (JN_UV_OWN): consult it */
  int nassocs;              /* associations declared with it as source (jn_Assoc.slot) */
  int cap;                  /* room for this many fields (db:associate adds keys) */
  int sealed;               /* an instance was made: no field may be added any more */
  int lookup_id;            /* its lookup table's index in JN_LOOKUPS (0: none yet) */
  jn_Field f[1];            /* nfields entries */
} jn_Model;

/* Model uservalue fields (string keys). */
#define JN_UV_CONN      "conn"
#define JN_UV_LOOKUP    "lookup"
#define JN_UV_SQL       "sql"       /* name -> generated SQL text */
#define JN_UV_DEFAULTS  "defaults"  /* field index (1-based) -> value or function */
#define JN_UV_FIELDS    "fields"    /* field index (1-based) -> declaration table */
#define JN_UV_ASSOCS    "assocs"    /* alias -> association */
#define JN_UV_OWN       1           /* the model's own class methods and values */
#define JN_UV_INSTANCE  2           /* Model.instance (lua/junction's instance methods) */
#define JN_UV_SHARED    3           /* Lua 5.4: the extras table its instances share (jn_inst.c) */

/* }====== */

/* {====== Associations */

enum { JN_A_BELONGS_TO, JN_A_HAS_ONE, JN_A_HAS_MANY, JN_A_BELONGS_TO_MANY };

/* Batched inserts of links: one statement per row count up to this. */
#define JN_LINK_BATCH 16

/* The links a call removes are deleted in one statement: up to this many
** as "(fk = ?1 AND other = ?2) OR (fk = ?1 AND other = ?3) ...", which SQLite
** looks up key by key through the unique index (no temporary index, as an
** IN list needs); more as one IN list (a JSON array when the keys fit in
** one, as the where compiler binds a long list). */
#define JN_DELETE_OR 16

/* Statements of a belongsToMany association, prepared on first use. */
enum {
  JN_AS_GET, JN_AS_GET_THROUGH, JN_AS_KEYS, JN_AS_COUNT, JN_AS_HAS, JN_AS_DELETE,
  JN_AS_HAS_IN, JN_AS_HAS_IN_SMALL, JN_AS_NSTMT
};

/* Statements of a hasMany or hasOne association (jn_hasmany.c). */
#define JN_HM_NSTMT 15

typedef struct jn_Assoc {
  int kind;
  jn_Model *source, *target, *through;   /* anchored in the uservalue */
  int source_key;           /* field in source: sourceKey (has*, btm) or foreignKey (belongsTo) */
  int target_key;           /* field in target: targetKey (belongsTo, btm) or foreignKey (has*) */
  int fk, other;            /* btm: the junction's fields for source and target */
  int through_extra;        /* btm: the junction has fields beyond keys and timestamps */
  const char *alias;        /* anchored in the uservalue */
  jn_St *st[JN_AS_NSTMT];
  jn_St *ins[JN_LINK_BATCH + 1];  /* INSERT of n links */
  jn_St *del[JN_DELETE_OR + 1];   /* DELETE of n links (2 <= n), the OR of their keys */
  jn_St *dscan[JN_DELETE_OR + 1]; /* the same over the source's links (set) */
  jn_Whole ins_whole[JN_LINK_BATCH + 1];   /* whether each runs without a savepoint */
  jn_Whole del_whole[JN_DELETE_OR + 1];
  jn_Whole dscan_whole[JN_DELETE_OR + 1];
  jn_St *hm[JN_HM_NSTMT];   /* hasMany/hasOne: the statements of jn_hasmany.c */
  jn_Whole hm_whole[JN_HM_NSTMT];   /* whether each runs without a savepoint */
  int slot;                 /* its ordinal among its source's associations, from 1: where
                            ** an instance read with an include holds it (jn_inst.c) */
} jn_Assoc;

/* }====== */

/* {====== Instances */

typedef struct jn_Inst {
  jn_Model *model;          /* the model userdata is held by its values (jn_inst.c) */
  int saved;                /* the row exists in the database */
  int destroyed;            /* destroy() deleted its row: no more writes or reads */
  unsigned long jserial;    /* the transaction level whose journal holds it, or 0 */
  unsigned char jstate;     /* saved, destroyed, key nil before that level wrote it */
  unsigned char carries;    /* a table was put under a junction model's name: the through
                            ** values of its next link (jn_assoc_pertarget reads them) */
  unsigned char ownextras;  /* an extra was set: on Lua 5.4 user value 1 is its own table */
  unsigned char nrec;       /* Lua 5.4: how many extras to size its own table for */
  unsigned char nslots;     /* Lua 5.4: user values for loaded associations (jn_Assoc.slot) */
  unsigned char dirty[1];   /* one bit per field, then the journal's bits (jn_inst.c) */
} jn_Inst;

/* }====== */

/* {====== jn_buf.c: growable SQL text, kept in a userdata so a raise cannot leak it */

typedef struct jn_Buf {
  char *p;
  size_t n, cap;
  int idx;                  /* stack index of the userdata holding p (nil while p is
                               jn_buf_initat's memory) */
} jn_Buf;

JN_INTERNAL void jn_buf_init(lua_State *L, jn_Buf *b);
JN_INTERNAL void jn_buf_initat(lua_State *L, jn_Buf *b, char *mem, size_t cap);
JN_INTERNAL void jn_buf_reserve(lua_State *L, jn_Buf *b, size_t need);
/* Append s[0..len).  Inline: most appends fit, and every layer appends
** piece by piece (a row's JSON is about twenty of them). */
static inline void jn_buf_addl(lua_State *L, jn_Buf *b, const char *s, size_t len) {
  if (b->n + len + 1 > b->cap) jn_buf_reserve(L, b, len);
  memcpy(b->p + b->n, s, len);
  b->n += len;
}
JN_INTERNAL void jn_buf_adds(lua_State *L, jn_Buf *b, const char *s);
JN_INTERNAL void jn_buf_addquoted(lua_State *L, jn_Buf *b, const char *s, size_t len, char q);
JN_INTERNAL void jn_buf_addident(lua_State *L, jn_Buf *b, const char *alias, const char *name);
JN_INTERNAL void jn_buf_addint(lua_State *L, jn_Buf *b, long long v);
JN_INTERNAL const char *jn_buf_cstr(lua_State *L, jn_Buf *b);

/* }====== */

/* Registry key of the metatable that marks a table as a JSON array (an
** empty one included): what JSON values and toTable give arrays. */
#define JN_ARRAY_MT "junction.array"

/* The metatable of junction.json(field, path), a where key: a userdata
** whose uservalue is { field name, path }. */
#define JN_JSONPATH_MT "junction.JSONPath"

/* The metatable of junction.literal, junction.fn and junction.col: a
** userdata whose uservalue is { kind = JN_FRAG_*, name = text, n = count,
** the arguments or bound values 1..n }. */
#define JN_FRAG_MT "junction.Fragment"
#define JN_FRAG_LITERAL 1
#define JN_FRAG_FN 2
#define JN_FRAG_COL 3

/* jn_scalar.c */
JN_INTERNAL int jn_scalar_parsei64(const char *s, size_t len, sqlite3_int64 *out);
JN_INTERNAL size_t jn_scalar_epochtext(double secs, char *out);
JN_INTERNAL int jn_scalar_isutf8(const char *s, size_t n);
JN_INTERNAL int jn_scalar_epochok(double secs);
JN_INTERNAL void jn_scalar_pushi64(lua_State *L, sqlite3_int64 v);
JN_INTERNAL int jn_scalar_toi64(lua_State *L, int idx, sqlite3_int64 *out);
JN_INTERNAL size_t jn_scalar_timestamp(jn_Conn *c, char *out);
JN_INTERNAL int jn_scalar_isnull(lua_State *L, int idx);

/* jn_json.c */
JN_INTERNAL const char *jn_json_encode(lua_State *L, jn_Buf *b, int idx);
#define JN_JSON_MAXKEYS 64   /* jn_json_encodeobject's limit */
#define JN_JSON_MAXNAME 64   /* its names: identifiers (jn_schema_checkident's limit) */
JN_INTERNAL const char *jn_json_encodeobject(lua_State *L, jn_Buf *b, const char *const *names,
                                             const int *slots, int n);
JN_INTERNAL const char *jn_json_decode(lua_State *L, const char *s, size_t len);

/* jn_value.c */
JN_INTERNAL int jn_value_conv(lua_State *L, int idx, int type, int length);
JN_INTERNAL int jn_value_storable(lua_State *L, int idx, int type);
JN_INTERNAL int jn_value_enumhas(const char *enums, const char *s, size_t len);
JN_INTERNAL void jn_value_uuid4(char *out);
JN_INTERNAL const char *jn_value_name(lua_State *L, int idx);
JN_INTERNAL void jn_value_checklist(lua_State *L, int idx, int n, const char *ctx, const char *what,
                               const char *expected);
JN_INTERNAL int jn_value_listpos(lua_State *L, int idx, int n);
JN_INTERNAL void jn_value_listfail(lua_State *L, int holes, const char *ctx, const char *what,
                                   const char *expected);

/* jn_stmt.c */
JN_INTERNAL jn_St *jn_stmt_slot(lua_State *L, jn_Conn *c, jn_St **slot,
                                       const char *sql, int *rc);
JN_INTERNAL jn_St *jn_stmt_cached(lua_State *L, jn_Conn *c, const char *sql,
                                         size_t len, int *rc);
JN_INTERNAL jn_St *jn_stmt_cachedat(lua_State *L, jn_Conn *c, int sqlidx, int *rc);
JN_INTERNAL int jn_stmt_bindvalue(lua_State *L, jn_Conn *c, jn_St *st, int i, int idx, int type);
JN_INTERNAL void jn_stmt_bindi64(lua_State *L, jn_Conn *c, jn_St *st, int i, sqlite3_int64 v);
JN_INTERNAL void jn_stmt_bindtext(lua_State *L, jn_Conn *c, jn_St *st, int i, const char *s, size_t n);
JN_INTERNAL void jn_stmt_pushcolumn(lua_State *L, const jn_Engine *e, jn_St *st, int col,
                               int type);
JN_INTERNAL void jn_stmt_finalize_all(lua_State *L, jn_Conn *c);

/* jn_error.c */
JN_INTERNAL int jn_error_result(lua_State *L, jn_Conn *c, int rc, const char *msg);
JN_INTERNAL int jn_error_finishfail(lua_State *L, jn_Conn *c, jn_St *st, int rc);
/*
** Finish a run of st whose last step returned rc, where `want` (SQLITE_ROW
** or SQLITE_DONE) is success: the caller's one result, or the failure
** (read before the reset, which may clear it); then reset st so it can run
** again.  Returns jn_error_result's count.  The success path is inline:
** every statement of a call ends here.
** [-0, +(0|3|4), m]
*/
static inline int jn_error_finish(lua_State *L, jn_Conn *c, jn_St *st, int rc, int want) {
  if (rc != want) return jn_error_finishfail(L, c, st, rc);
  jn_e_reset(c->eng, st);
  return 1;
}
JN_INTERNAL int jn_error_faildetails(lua_State *L, int code);
JN_INTERNAL const char *jn_error_typename(lua_State *L, int idx);

/* jn_conn.c */
JN_INTERNAL jn_Conn *jn_conn_check(lua_State *L, int idx, const char *ctx);
JN_INTERNAL void jn_conn_callback(lua_State *L, jn_Conn *c, int nargs, int nresults, int log);
JN_INTERNAL int jn_conn_txcheck(lua_State *L, jn_Conn *c);
JN_INTERNAL int jn_conn_step(lua_State *L, jn_Conn *c, jn_St *st);
JN_INTERNAL int jn_conn_run(lua_State *L, jn_Conn *c, jn_St *st);
JN_INTERNAL int jn_conn_runkey(lua_State *L, jn_Conn *c, jn_St *st, sqlite3_int64 *id);
JN_INTERNAL void jn_conn_checkopen(lua_State *L, jn_Conn *c, const char *model,
                                   const char *method);
JN_INTERNAL int jn_conn_atomic(lua_State *L, jn_Conn *c, lua_CFunction body, int readfirst, int nup);
JN_INTERNAL jn_Write *jn_conn_bodywrite(lua_State *L);
/* A method closure whose body runs under jn_conn_atomic keeps that body as a
** closure over its first upvalues, made once with the method, at this upvalue:
** jn_conn_atomic runs it instead of making a closure per call. */
#define JN_UPV_BODY 4
JN_INTERNAL int jn_conn_writeguard(lua_State *L, jn_Write *w);
JN_INTERNAL int jn_conn_guardone(lua_State *L, jn_Write *w, jn_St *st, jn_Whole *wh);
JN_INTERNAL void jn_conn_learnone(lua_State *L, jn_Write *w, jn_St *st);
JN_INTERNAL void jn_conn_open(lua_State *L);
JN_INTERNAL void jn_conn_checkopts(lua_State *L, int optsidx, const char *const *allowed,
                                    const char *ctx);
/* Called when the connection itself ends transaction levels that
** db:transaction will never settle (abandoned ones it rolls back, every
** level at close): the levels above c->txdepth, whose frames still hold
** their serials, rolled back.  jn_inst registers it (its journals give the
** instances written there their state back); it must not raise. */
typedef void (*jn_TxUndo)(lua_State *L, jn_Conn *c);
JN_INTERNAL void jn_conn_ontxundo(jn_TxUndo fn);

/* jn_schema.c */
JN_INTERNAL jn_Model *jn_schema_checkopen(lua_State *L, int idx);
JN_INTERNAL int jn_schema_field(lua_State *L, jn_Model *m, int nameidx);
JN_INTERNAL int jn_schema_fieldname(jn_Model *m, const char *name);
JN_INTERNAL int jn_schema_column(jn_Model *m, const char *col);
JN_INTERNAL void jn_schema_uv(lua_State *L, int modelidx, const char *key);
JN_INTERNAL void jn_schema_lookup(lua_State *L, jn_Model *m);
JN_INTERNAL void jn_schema_open(lua_State *L);
JN_INTERNAL void jn_schema_checkident(lua_State *L, int idx, const char *ctx);
JN_INTERNAL const char *jn_schema_sqltype(int code);
JN_INTERNAL void jn_schema_pushkeytype(lua_State *L, const jn_Field *f);

/* jn_sync.c */
JN_INTERNAL void jn_sync_open(lua_State *L);
JN_INTERNAL void jn_sync_move_identity(lua_State *L, jn_Model *m, int keyidx);

/* jn_inst.c */
JN_INTERNAL jn_Inst *jn_inst_test(lua_State *L, int idx);
JN_INTERNAL jn_Inst *jn_inst_of(lua_State *L, int idx, const jn_Conn *c);
JN_INTERNAL int jn_inst_build(lua_State *L, jn_Model *m, int modelidx, int valuesidx,
                              const char *ctx);
JN_INTERNAL int jn_inst_insert(lua_State *L, int instidx);
JN_INTERNAL int jn_inst_insertrow(lua_State *L, int instidx);
JN_INTERNAL int jn_inst_check(lua_State *L, int instidx);
JN_INTERNAL int jn_inst_value(lua_State *L, jn_Model *m, int f, int idx, int errsidx);
JN_INTERNAL int jn_inst_invalid(lua_State *L, jn_Model *m, int errsidx);
JN_INTERNAL void jn_inst_fromrow(lua_State *L, jn_Model *m, int modelidx, int mtidx,
                                 jn_St *st, const int *cols, int ncols, int col0,
                                 int nrec);
JN_INTERNAL void jn_inst_get(lua_State *L, int instidx, int field);
JN_INTERNAL void jn_inst_set(lua_State *L, int instidx, int field);
JN_INTERNAL void jn_inst_pushmodel(lua_State *L, int instidx);
JN_INTERNAL void jn_inst_extras(lua_State *L, int instidx, int own);
JN_INTERNAL void jn_inst_getextra(lua_State *L, int instidx, const char *name);
JN_INTERNAL void jn_inst_setextra(lua_State *L, int instidx, const char *name);
JN_INTERNAL void jn_inst_setassoc(lua_State *L, int instidx, const jn_Assoc *a);
JN_INTERNAL void jn_inst_newlist(lua_State *L, int narr);
JN_INTERNAL void jn_inst_open(lua_State *L);

/* jn_select.c */
struct jn_Select;
/* Resolve "Alias.field" of a fragment: the association alias (n bytes) of
** m; with b, also append " FROM ... WHERE <link> = "table"."key"", the
** association's rows of the row of m being read (and the where of its
** entry in the find's include, s->inc_idx).  Returns the target model;
** raises when m has no association of that name.  Set by the finds that
** can take an association's column (one layer up), NULL elsewhere. */
typedef jn_Model *(*jn_SubFn)(lua_State *L, jn_Model *m, const char *alias, size_t n, jn_Buf *b,
                              struct jn_Select *s, const char *ctx);
typedef struct jn_Select {
  int cols_idx;             /* stack index: userdata int[] of field indices */
  int *cols;
  int ncols;
  int binds_idx;            /* stack index: array of values to bind; binds[-k]
                               holds the field type of value k when it matters */
  int nbind;
  jn_SubFn sub;             /* resolves an association's column, or NULL */
  int exprs;                /* attributes may hold expressions with aliases */
  int attrs_idx;            /* stack index of the attributes given (aliases), or 0 */
  int extra_idx;            /* stack index: names of the columns after the fields */
  int nextra;               /* columns read after the ncols fields, by alias */
  int exact;                /* the columns are exactly the attributes (group, aggregates) */
  int inc_idx;              /* stack index of the find's include table, or 0 */
  int eqf;                  /* a field of the model that a joined column equals, or -1 */
  const char *eqalias;      /* that column (eqalias.eqcol): an order term on eqf sorts by */
  const char *eqcol;        /* it, whose index may give the order without a sort */
} jn_Select;

JN_INTERNAL void jn_select_init(lua_State *L, jn_Select *s);
JN_INTERNAL void jn_select_bind(lua_State *L, jn_Select *s, int idx);
JN_INTERNAL void jn_select_bindt(lua_State *L, jn_Select *s, int idx, int type);
JN_INTERNAL void jn_select_bindlist(lua_State *L, jn_Conn *c, jn_St *st, const jn_Select *s);
JN_INTERNAL const char *jn_select_jsonin(jn_Conn *c, int type);
JN_INTERNAL void jn_select_addjson(lua_State *L, jn_Buf *b, int idx);
JN_INTERNAL int jn_select_aliased(lua_State *L, const jn_Select *s, const char *name);

/* jn_frag.c */
JN_INTERNAL const char *jn_frag_kindname(int k);
JN_INTERNAL int jn_frag_kind(lua_State *L, int idx);
JN_INTERNAL int jn_frag_parts(lua_State *L, int idx, const char **name, size_t *len);
JN_INTERNAL int jn_frag_colfield(lua_State *L, jn_Model *m, int idx, const char **assoc,
                                 size_t *alen, const char **field, const char *ctx);
JN_INTERNAL void jn_frag_noassoc(lua_State *L, const char *name, const char *ctx);
JN_INTERNAL void jn_frag_expr(lua_State *L, jn_Model *m, const char *alias, int idx, jn_Buf *b,
                              jn_Select *s, const char *ctx, int depth);
JN_INTERNAL int jn_frag_aggregate(lua_State *L, int idx, int depth);
JN_INTERNAL void jn_frag_open(lua_State *L);

/* jn_where.c */
JN_INTERNAL int jn_where_shape(lua_State *L, int idx);
JN_INTERNAL int jn_where_keyvalue(lua_State *L, jn_Model *m, int f, int idx, const char *ctx);
JN_INTERNAL void jn_where_compile(lua_State *L, jn_Model *m, int whereidx, const char *alias,
                                  jn_Buf *b, jn_Select *s, const char *ctx);
JN_INTERNAL void jn_where_having(lua_State *L, jn_Model *m, int havingidx, jn_Buf *b,
                                 jn_Select *s, const char *ctx);

/* jn_query.c */
JN_INTERNAL void jn_query_tail(lua_State *L, jn_Model *m, int optsidx, const char *alias,
                               jn_Buf *b, jn_Select *s, const char *ctx);
JN_INTERNAL void jn_query_columns(lua_State *L, jn_Model *m, int optsidx, const int *link,
                                  int nlink, const char *alias, jn_Buf *b, jn_Select *s,
                                  const char *ctx);
JN_INTERNAL int jn_query_rows(lua_State *L, jn_Model *m, int modelidx, jn_St *st,
                              const int *cols, int ncols, int nrec);
JN_INTERNAL int jn_query_one(lua_State *L, jn_Model *m, int modelidx, int mt, jn_St *st);
JN_INTERNAL void jn_query_group(lua_State *L, jn_Model *m, int optsidx, jn_Buf *b, jn_Select *s,
                                const char *ctx);
JN_INTERNAL void jn_query_order(lua_State *L, jn_Model *m, int orderidx, const char *alias,
                                jn_Buf *b, jn_Select *s, const char *ctx);
JN_INTERNAL int jn_query_found(lua_State *L, jn_Model *m, int modelidx, jn_St *st,
                               const jn_Select *s, int nrec);

/* jn_assoc.c */
JN_INTERNAL void jn_assoc_from(lua_State *L, jn_Assoc *a, jn_Buf *b);
JN_INTERNAL void jn_assoc_link(lua_State *L, jn_Assoc *a, jn_Buf *b);
JN_INTERNAL int jn_assoc_locksrows(jn_Conn *c);
JN_INTERNAL int jn_assoc_lockparent(lua_State *L, jn_Assoc *a, int self);
JN_INTERNAL int jn_assoc_linktype(jn_Assoc *a);
JN_INTERNAL int jn_assoc_throughcols(lua_State *L, jn_Assoc *a, int optsidx, int **cols);
JN_INTERNAL void jn_assoc_addthrough(lua_State *L, jn_Assoc *a, jn_Buf *b, const int *cols, int n);
/* How a read of an association turns each row into instances. */
typedef struct jn_Rows {
  jn_Assoc *a;
  int tmodel, jmodel;       /* stack indices of the target and junction models */
  int mt;                   /* stack index of the instance metatable */
  const jn_Select *s;       /* the target's columns */
  const int *tcols;         /* the junction's columns chosen (ntc of them) */
  int ntc;
  int col0;                 /* the row's first target column */
  int nrec;                 /* room for nested includes in each instance */
} jn_Rows;

JN_INTERNAL void jn_assoc_pushrow(lua_State *L, const jn_Rows *r, jn_St *st);
JN_INTERNAL void jn_assoc_pushmodels(lua_State *L, int associdx, int *tmodel, int *jmodel);
JN_INTERNAL const char *jn_assoc_method(lua_State *L);
JN_INTERNAL int jn_assoc_rowexists(lua_State *L, jn_Model *m, int f, int type);
JN_INTERNAL int jn_assoc_fkfail(jn_Conn *c, int rc);
JN_INTERNAL int jn_assoc_gone(lua_State *L, jn_Assoc *a, int self, const char *ctx);
JN_INTERNAL jn_St *jn_assoc_countwhere(lua_State *L, jn_Assoc *a, int w, int *rc);
JN_INTERNAL jn_St *jn_assoc_countwhere2(lua_State *L, jn_Assoc *a, int w, int tw, int *rc);
JN_INTERNAL void jn_assoc_throughwhere(lua_State *L, jn_Assoc *a, int idx, const char *ctx);
JN_INTERNAL int jn_assoc_pushcount(lua_State *L, jn_Conn *c, jn_St *st);
/* A key of a key list (jn_assoc.c).  */
/* 32 bytes on a 64-bit machine: a key array is made per call, and its size
** is garbage the collector walks (setGenres of 5 makes three). */
typedef struct jn_Key {
  int type;                 /* SQLITE_INTEGER, SQLITE_FLOAT, SQLITE_TEXT or SQLITE_BLOB */
  int pos;                  /* where in the list given it first came (1-based) */
  int anchor;               /* text and blob: its slot in the key array's anchor table */
  unsigned char none;       /* no value of the key field's type: no row has it (key_fits) */
  unsigned char carries;    /* given as an instance that may carry through values (jn_Inst) */
  union {                   /* the one of them its type says */
    sqlite3_int64 i;
    double d;
    const char *s;          /* text and blob: anchored in the uservalue of its key array */
  } v;
  size_t n;                 /* text and blob: its length */
} jn_Key;
/* How many keys a method's own room on the C stack holds: a list of up to
** that many keys whose text needs no anchor is read there, with no
** allocation per call (jn_assoc_readkeys). */
#define JN_KEYS_ROOM 16
JN_INTERNAL int jn_assoc_readkeys(lua_State *L, jn_Assoc *a, int idx, int single, const char *ctx,
                                  jn_Key *room);
JN_INTERNAL int jn_assoc_keylist(lua_State *L, jn_Assoc *a, int idx, int single, const char *ctx,
                                 int *none);
JN_INTERNAL int jn_assoc_keyfits(lua_State *L, jn_Assoc *a, int idx);
JN_INTERNAL void jn_assoc_bindsource(lua_State *L, jn_Assoc *a, int self, jn_St *st, int i);
JN_INTERNAL void jn_assoc_bindkey(lua_State *L, jn_Assoc *a, int idx, jn_St *st, int i);
JN_INTERNAL jn_St *jn_assoc_slot(lua_State *L, jn_Assoc *a, int slot, const char *key, int *rc);
JN_INTERNAL int jn_assoc_checkthrough(lua_State *L, jn_Assoc *a, int optsidx);
JN_INTERNAL int jn_assoc_pertarget(lua_State *L, jn_Assoc *a, int idx, int single, int keys, int n, int fn,
                                   int thr);
JN_INTERNAL int jn_assoc_linkbody(lua_State *L);
JN_INTERNAL int jn_assoc_unlinkbody(lua_State *L);
JN_INTERNAL int jn_assoc_hasmax(jn_Assoc *a);
JN_INTERNAL int jn_assoc_hasrun(lua_State *L, jn_Assoc *a, int self, int arr, int n);
JN_INTERNAL int jn_assoc_hasbody(lua_State *L);
JN_INTERNAL int jn_assoc_createbody(lua_State *L);
JN_INTERNAL jn_Assoc *jn_assoc_declare(lua_State *L, char *ctx, size_t ctxsize);
JN_INTERNAL void jn_assoc_open(lua_State *L);

/* jn_include.c */
JN_INTERNAL void jn_include_required(lua_State *L, jn_Model *m, int incidx, jn_Buf *b,
                                   jn_Select *s, int *haswhere, const char *ctx);
JN_INTERNAL int jn_include_find(lua_State *L, jn_Model *m, int modelidx, int optsidx, int one,
                                const char *ctx);
JN_INTERNAL int jn_include_load(lua_State *L, jn_Model *m, int listidx, int incidx,
                                 const char *ctx);

/* jn_assocm.c */
JN_INTERNAL jn_Assoc *jn_assocm_checkself(lua_State *L);
JN_INTERNAL void jn_assocm_pushbody(lua_State *L, lua_CFunction body);
JN_INTERNAL void jn_assocm_open(lua_State *L);

/* jn_hasmany.c */
JN_INTERNAL void jn_hasmany_open(lua_State *L);

/* jn_model.c */
JN_INTERNAL void jn_model_open(lua_State *L);

#endif /* JN_H */
