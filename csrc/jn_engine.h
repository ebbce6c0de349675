/*
** jn_engine.h: the engine seam.  Every call the core makes to a database
** goes through the functions here, and every piece of SQL text that differs
** between engines comes from the connection's dialect (jn_Dialect).
**
** SQLite is the engine junction is built around: for it these inline
** functions are the sqlite3_ call itself (c->eng is NULL), so the seam costs
** it nothing.  Another engine (PostgreSQL, compiled in when JN_WITH_PG is
** defined) is reached through its jn_Engine table, which the connection
** points to.  A build without another engine compiles the branch away.
**
** Result codes and column types are SQLite's numbers: they are junction's
** documented codes (docs/API.md, "Errors"), and another engine maps its own
** onto them (PostgreSQL: SQLSTATE 23505 -> SQLITE_CONSTRAINT_UNIQUE, ...).
** The statement protocol is SQLite's too: prepare once, bind 1-based
** parameters, step until JN_ROW stops, reset to run again, finalize.
*/
#ifndef JN_ENGINE_H
#define JN_ENGINE_H

#include <stddef.h>
#include <sqlite3.h>

/* A prepared statement of any engine (an sqlite3_stmt for SQLite). */
typedef struct jn_St jn_St;

/*
** The operations of an engine other than SQLite.  db is the engine's
** connection handle (jn_Conn.db).  Texts passed to bind_text/bind_blob are
** copied by the engine (the caller's string may die after the call); texts
** returned stay valid until the next step, reset or finalize of that
** statement.  Every function that returns an int returns a result code.
*/
typedef struct jn_Engine {
  const char *name;                       /* "postgres" */
  /* prepare the first statement of sql (len bytes); *used is how many bytes
  ** it took (so a caller can tell there is more text); *out NULL when the
  ** text holds no statement */
  int (*prepare)(void *db, const char *sql, size_t len, jn_St **out, size_t *used);
  int (*finalize)(jn_St *st);
  int (*step)(jn_St *st);                 /* JN_ROW, JN_DONE or an error */
  int (*reset)(jn_St *st);
  int (*busy)(jn_St *st);                 /* stepped and not reset */
  const char *(*sql)(jn_St *st);          /* the text as given to prepare */
  int (*nparams)(jn_St *st);
  int (*bind_null)(jn_St *st, int i);
  int (*bind_int64)(jn_St *st, int i, sqlite3_int64 v);
  int (*bind_double)(jn_St *st, int i, double v);
  int (*bind_text)(jn_St *st, int i, const char *s, size_t n);
  int (*bind_blob)(jn_St *st, int i, const void *p, size_t n);
  int (*ncols)(jn_St *st);
  const char *(*colname)(jn_St *st, int col);
  int (*coltype)(jn_St *st, int col);     /* SQLITE_INTEGER .. SQLITE_NULL */
  sqlite3_int64 (*col_int64)(jn_St *st, int col);
  double (*col_double)(jn_St *st, int col);
  const void *(*col_bytes)(jn_St *st, int col, size_t *n);   /* text or blob */
  sqlite3_int64 (*changes)(void *db);     /* rows the last statement changed */
  sqlite3_int64 (*last_id)(void *db);     /* key the last INSERT generated */
  int (*autocommit)(void *db);            /* no transaction is open */
  int (*errcode)(void *db);               /* of the last failure, mapped */
  const char *(*errmsg)(void *db);
  const char *(*sqlstate)(void *db);      /* the engine's own code, or NULL */
  int (*exec)(void *db, const char *sql); /* run statements, no results, no binds */
  void (*finalize_all)(void *db);
  int (*close)(void *db);
} jn_Engine;

/*
** The SQL an engine speaks where engines differ.  Upper layers write "?"
** placeholders everywhere; an engine that numbers them ($1, $2) rewrites
** the text once, when it prepares it.
*/
typedef struct jn_Dialect {
  const char *name;                       /* "sqlite", "postgres" */
  const char *begin_immediate;            /* a transaction that writes */
  const char *begin_deferred;
  const char *begin_exclusive;
  const char *ddl_type[16];               /* per JN_T_* below JN_T_ANY, for CREATE TABLE */
  const char *autoinc_key;                /* column text of an autoincrement key */
  const char *offset_only;                /* LIMIT for an OFFSET without one ("" = none) */
  int returning_key;                      /* INSERT reports its key by RETURNING */
  int savepoint_every_write;              /* a failed statement aborts the transaction */
  const char *lock_parent;                /* suffix locking a row read in a write, or "" */
  int max_params;                         /* binds one statement may take */
  /* the schema: reading the catalog, and literals in DDL */
  const char *find_table;                 /* a row (column name) per table named ?, any case */
  const char *find_index;                 /* the table (column tbl_name) of the index named ? */
  const char *bool_true, *bool_false;     /* a BOOLEAN column's DEFAULT */
  int compares_tables;                    /* db:sync can compare a table with its model */
  /* queries */
  const char *no_row, *every_row;         /* a condition true of no row, of every row */
  const char *json_in[16];                /* per JN_T_* below JN_T_ANY: a subquery of the values
                                          ** of the JSON array bound to its ?, as that type
                                          ** (NULL: as text) */
  /* after an insert that gave an autoincrement key itself: moves the
  ** key's generator past it (?1 the quoted table, ?2 the column, ?3 the
  ** key), so that the next insert without a key does not collide; NULL when
  ** the engine's generator already skips keys given (SQLite's rowid) */
  const char *move_identity;
  /* the catalog as db:sync compares a table (the table or index named ?,
  ** any case), in the shape of SQLite's pragmas: per column name, type (in
  ** junction's words: INTEGER, TEXT, VARCHAR(n), REAL, BLOB...), nn, dv,
  ** pk; per foreign key tbl, fr, tt, ou, od (actions in capitals); per
  ** index name, origin ('u' a UNIQUE constraint), partial, u; per column of
  ** an index, in order, its name (NULL for an expression) */
  const char *cat_columns, *cat_fkeys, *cat_indexes, *cat_index_cols;
  /* an INTEGER sum past 64 bits becomes a REAL instead of failing (SQLite):
  ** Model:increment makes such a sum fail, as it does elsewhere */
  int int_sum_real;
  /* ORDER BY takes NULLS FIRST / NULLS LAST, and without them NULLs sort as
  ** the largest values (PostgreSQL): an order says SQLite's way (NULLs the
  ** smallest) for a column that may hold NULL.  0: NULLs sort as the
  ** smallest, and another order of them is "(x) IS NULL" first */
  int nulls_clause;
  /* sum() of a 64-bit INTEGER column is of a wider type (PostgreSQL's
  ** numeric), read as a float: Model:sum casts it back, so that a sum past
  ** 64 bits fails as SQLite's sum() does instead of losing digits */
  int sum_widens;
  /* a statement after which the other connections' db:sync waits until this
  ** transaction ends, or NULL where BEGIN IMMEDIATE already makes them wait */
  const char *lock_schema;
  /* a JSON field is text read as jsonb: a path in a where is #> / #>> with
  ** the path bound as one text[] (jn_where.c); 0: SQLite's json_extract */
  int json_jsonb;
  /* a model's schema is a namespace (PostgreSQL): the table is
  ** "schema"."table", and the catalog reads (find_table, find_index, cat_*)
  ** take the schema as ?2 (NULL: the current one).  0: there is one
  ** namespace (SQLite), the schema is a prefix of the table's one name
  ** ("schema.table") and the catalog reads take only ?1 */
  int schemas;
} jn_Dialect;

/* The dialects (jn_conn.c holds SQLite's). */
JN_INTERNAL extern const jn_Dialect jn_sqlite_dialect;

#ifdef JN_WITH_PG
/* jn_pg.c: the PostgreSQL engine over libpq.  jn_pg_open connects with a
** libpq conninfo string or URI; on failure it returns NULL and writes a
** message (at most msgsize bytes, NUL-terminated) into msg. */
JN_INTERNAL extern const jn_Engine jn_pg_engine;
JN_INTERNAL extern const jn_Dialect jn_pg_dialect;
JN_INTERNAL void *jn_pg_open(const char *conninfo, char *msg, size_t msgsize);
/* What the wire engine shares with it: SQLSTATE -> junction's code; the
** first statement of sql with "?" rewritten to "$n" (out NULL: only
** measured); whether a rewritten text is transaction control. */
JN_INTERNAL int jn_pg_mapstate(const char *sqlstate);
JN_INTERNAL size_t jn_pg_scan(const char *sql, size_t len, char *out, size_t *outlen,
                              int *nparams, int *nonblank);
JN_INTERNAL int jn_pg_txncontrol(const char *text);
/* A statement parameter as PostgreSQL's text format has it (a blob: its
** bytes, binary = 1; the wire engine writes bytea's hex text instead).
** jn_pg_room makes room for n bytes and a NUL and clears the flags; the
** others write a value; each returns 0 when out of memory. */
typedef struct jn_PgParam {
  char *buf;
  size_t cap, len;
  int isnull;
  int binary;          /* a blob: sent in binary format */
  int nul;             /* text holding a NUL byte: refused at the step, never sent */
} jn_PgParam;
JN_INTERNAL int jn_pg_room(jn_PgParam *p, size_t n);
JN_INTERNAL int jn_pg_int64(jn_PgParam *p, sqlite3_int64 v);
JN_INTERNAL int jn_pg_double(jn_PgParam *p, double v);
JN_INTERNAL int jn_pg_text(jn_PgParam *p, const char *s, size_t n);

/* jn_wire.c: the PostgreSQL dialect with the bytes moved by Lua (a
** transport: pgwire.lua over LuaSocket or an OpenResty cosocket).  Its
** statements are recorded, not sent: a step with no reply yet stops the
** call (jn_wire_stopped), and the call runs again with the replies given
** (docs/POSTGRES.md, "The wire transport"). */
JN_INTERNAL extern const jn_Engine jn_wire_engine;
JN_INTERNAL void *jn_wire_open(void);
JN_INTERNAL int jn_wire_stopped(void *db);
JN_INTERNAL int jn_wire_replaying(void *db);
JN_INTERNAL int *jn_wire_cbcursor(void *db);
JN_INTERNAL void jn_wire_skip(void *db, int n);
JN_INTERNAL int jn_wire_cursor(void *db);
JN_INTERNAL void jn_wire_begin(void *db);
JN_INTERNAL void jn_wire_rewind(void *db);
JN_INTERNAL void jn_wire_end(void *db);
JN_INTERNAL void jn_wire_lose(void *db, const char *msg);
JN_INTERNAL int jn_wire_pushpending(lua_State *L, void *db);
JN_INTERNAL int jn_wire_answer(lua_State *L, void *db, int idx, const char **err);
#endif

/*
** The calls.  e is the connection's engine (jn_Conn.eng): NULL for SQLite,
** which is then called directly.
*/
#ifdef JN_WITH_PG
#define JN_ENG(e, other, sqlite) ((e) != NULL ? (e)->other : (sqlite))
#else
#define JN_ENG(e, other, sqlite) ((void)(e), (sqlite))
#endif
#define JN_SQ(st) ((sqlite3_stmt *)(void *)(st))
#define JN_SQDB(db) ((sqlite3 *)(db))   /* the handle, where only SQLite can be open */

/* Prepare the first statement of sql (len bytes): *out is NULL when the
** text holds none; *used (when not NULL) is how many bytes it took. */
static inline int jn_e_prepare(const jn_Engine *e, void *db, const char *sql, size_t len,
                               jn_St **out, size_t *used) {
#ifdef JN_WITH_PG
  if (e != NULL) return e->prepare(db, sql, len, out, used);
#else
  (void)e;
#endif
  {
    const char *tail = sql;
    int rc = sqlite3_prepare_v3((sqlite3 *)db, sql, (int)len, SQLITE_PREPARE_PERSISTENT,
                                (sqlite3_stmt **)(void *)out, &tail);
    if (used != NULL) *used = (size_t)(tail - sql);
    return rc;
  }
}
static inline int jn_e_step(const jn_Engine *e, jn_St *st) {
  return JN_ENG(e, step(st), sqlite3_step(JN_SQ(st)));
}
static inline int jn_e_reset(const jn_Engine *e, jn_St *st) {
  return JN_ENG(e, reset(st), sqlite3_reset(JN_SQ(st)));
}
static inline int jn_e_finalize(const jn_Engine *e, jn_St *st) {
  return JN_ENG(e, finalize(st), sqlite3_finalize(JN_SQ(st)));
}
static inline int jn_e_busy(const jn_Engine *e, jn_St *st) {
  return JN_ENG(e, busy(st), sqlite3_stmt_busy(JN_SQ(st)));
}
static inline const char *jn_e_sql(const jn_Engine *e, jn_St *st) {
  return JN_ENG(e, sql(st), sqlite3_sql(JN_SQ(st)));
}
/* SQLite only (0 on another engine): how many times st was compiled again
** (the schema changed, say), and whether it writes nothing. */
static inline int jn_e_reprepared(const jn_Engine *e, jn_St *st) {
#ifdef JN_WITH_PG
  if (e != NULL) return 0;
#else
  (void)e;
#endif
  return sqlite3_stmt_status(JN_SQ(st), SQLITE_STMTSTATUS_REPREPARE, 0);
}
static inline int jn_e_readonly(const jn_Engine *e, jn_St *st) {
#ifdef JN_WITH_PG
  if (e != NULL) return 0;
#else
  (void)e;
#endif
  return sqlite3_stmt_readonly(JN_SQ(st));
}
static inline int jn_e_nparams(const jn_Engine *e, jn_St *st) {
  return JN_ENG(e, nparams(st), sqlite3_bind_parameter_count(JN_SQ(st)));
}
static inline int jn_e_bind_null(const jn_Engine *e, jn_St *st, int i) {
  return JN_ENG(e, bind_null(st, i), sqlite3_bind_null(JN_SQ(st), i));
}
static inline int jn_e_bind_int64(const jn_Engine *e, jn_St *st, int i, sqlite3_int64 v) {
  return JN_ENG(e, bind_int64(st, i, v), sqlite3_bind_int64(JN_SQ(st), i, v));
}
static inline int jn_e_bind_double(const jn_Engine *e, jn_St *st, int i, double v) {
  return JN_ENG(e, bind_double(st, i, v), sqlite3_bind_double(JN_SQ(st), i, v));
}
/* The string must outlive the statement's next step (SQLite keeps a
** pointer: SQLITE_STATIC); pass copy = 1 when it may not. */
static inline int jn_e_bind_text(const jn_Engine *e, jn_St *st, int i, const char *s,
                                 size_t n, int copy) {
  return JN_ENG(e, bind_text(st, i, s, n),
                sqlite3_bind_text64(JN_SQ(st), i, s, (sqlite3_uint64)n,
                                    copy ? SQLITE_TRANSIENT : SQLITE_STATIC, SQLITE_UTF8));
}
static inline int jn_e_bind_blob(const jn_Engine *e, jn_St *st, int i, const void *p,
                                 size_t n) {
  return JN_ENG(e, bind_blob(st, i, p, n),
                sqlite3_bind_blob64(JN_SQ(st), i, p, (sqlite3_uint64)n, SQLITE_STATIC));
}
static inline int jn_e_ncols(const jn_Engine *e, jn_St *st) {
  return JN_ENG(e, ncols(st), sqlite3_column_count(JN_SQ(st)));
}
static inline const char *jn_e_colname(const jn_Engine *e, jn_St *st, int col) {
  return JN_ENG(e, colname(st, col), sqlite3_column_name(JN_SQ(st), col));
}
static inline int jn_e_coltype(const jn_Engine *e, jn_St *st, int col) {
  return JN_ENG(e, coltype(st, col), sqlite3_column_type(JN_SQ(st), col));
}
static inline sqlite3_int64 jn_e_col_int64(const jn_Engine *e, jn_St *st, int col) {
  return JN_ENG(e, col_int64(st, col), sqlite3_column_int64(JN_SQ(st), col));
}
static inline double jn_e_col_double(const jn_Engine *e, jn_St *st, int col) {
  return JN_ENG(e, col_double(st, col), sqlite3_column_double(JN_SQ(st), col));
}
/* The bytes of a TEXT or BLOB column (text first: SQLite's order of calls). */
static inline const void *jn_e_col_text(const jn_Engine *e, jn_St *st, int col, size_t *n) {
#ifdef JN_WITH_PG
  if (e != NULL) return e->col_bytes(st, col, n);
#else
  (void)e;
#endif
  {
    const void *p = sqlite3_column_text(JN_SQ(st), col);
    *n = (size_t)sqlite3_column_bytes(JN_SQ(st), col);
    return p;
  }
}
static inline const void *jn_e_col_blob(const jn_Engine *e, jn_St *st, int col, size_t *n) {
#ifdef JN_WITH_PG
  if (e != NULL) return e->col_bytes(st, col, n);
#else
  (void)e;
#endif
  {
    const void *p = sqlite3_column_blob(JN_SQ(st), col);
    *n = (size_t)sqlite3_column_bytes(JN_SQ(st), col);
    return p;
  }
}
static inline sqlite3_int64 jn_e_changes(const jn_Engine *e, void *db) {
  return JN_ENG(e, changes(db), (sqlite3_int64)sqlite3_changes((sqlite3 *)db));
}
static inline sqlite3_int64 jn_e_last_id(const jn_Engine *e, void *db) {
  return JN_ENG(e, last_id(db), sqlite3_last_insert_rowid((sqlite3 *)db));
}
static inline int jn_e_autocommit(const jn_Engine *e, void *db) {
  return JN_ENG(e, autocommit(db), sqlite3_get_autocommit((sqlite3 *)db));
}
static inline int jn_e_errcode(const jn_Engine *e, void *db) {
  return JN_ENG(e, errcode(db), sqlite3_extended_errcode((sqlite3 *)db));
}
static inline int jn_e_exec(const jn_Engine *e, void *db, const char *sql) {
  return JN_ENG(e, exec(db, sql), sqlite3_exec((sqlite3 *)db, sql, NULL, NULL, NULL));
}
static inline const char *jn_e_errmsg(const jn_Engine *e, void *db) {
  return JN_ENG(e, errmsg(db), sqlite3_errmsg((sqlite3 *)db));
}
/* The engine's own code of the last failure (PostgreSQL's SQLSTATE), or
** NULL: SQLite has none beyond its result codes. */
static inline const char *jn_e_sqlstate(const jn_Engine *e, void *db) {
  return JN_ENG(e, sqlstate(db), (const char *)NULL);
}
/* Finalize every statement still prepared on db. */
static inline void jn_e_finalize_all(const jn_Engine *e, void *db) {
  sqlite3_stmt *st;
#ifdef JN_WITH_PG
  if (e != NULL) { e->finalize_all(db); return; }
#else
  (void)e;
#endif
  while ((st = sqlite3_next_stmt((sqlite3 *)db, NULL)) != NULL) sqlite3_finalize(st);
}
/* The English text of a result code: the codes are SQLite's on every
** engine, so SQLite's table serves them all. */
static inline const char *jn_e_errstr(int rc) {
  return sqlite3_errstr(rc);
}
/* The most parameters one statement may bind: the dialect's, else what
** this SQLite was built with. */
static inline int jn_e_maxparams(const jn_Engine *e, void *db, int dialect_max) {
  (void)e;
  if (dialect_max > 0) return dialect_max;
  return sqlite3_limit((sqlite3 *)db, SQLITE_LIMIT_VARIABLE_NUMBER, -1);
}

#endif /* JN_ENGINE_H */
