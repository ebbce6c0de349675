/*
** jn_pg.c: the PostgreSQL engine behind the seam (jn_engine.h), over libpq.
** Compiled in when JN_WITH_PG is defined (the Makefile does so when
** pkg-config finds libpq); otherwise this file is empty.
**
** The core speaks SQLite's statement protocol (prepare, bind, step, reset,
** finalize) and SQLite's codes; this file maps them onto libpq:
**   - prepare cuts the first statement off the text, rewrites its "?" and
**     "?N" placeholders (outside quotes, identifiers and comments) to "$n",
**     and sends it once with PQprepare under a name of its own (jn1, jn2,
**     ...).  The original text is kept for sql(): the statement cache and
**     the log function see what the caller wrote.
**   - values are bound as text parameters (a blob as a binary one), and the
**     first step after a reset runs PQexecPrepared; the steps walk the rows
**     of its result.
**   - a failure keeps PostgreSQL's message and SQLSTATE, mapped to the
**     SQLite code junction documents (23505 -> SQLITE_CONSTRAINT_UNIQUE...).
**   - finalize defers the DEALLOCATE of the statement's name: the names pile
**     up and go in one round trip the next time a statement is prepared
**     outside a transaction (never inside one: a failure there would abort
**     the user's transaction).
** Memory: statements are malloc'd, like SQLite's; the connection finalizes
** every one of them when it closes (jn_stmt_finalize_all), so none outlives it.
*/
#include "jn.h"

#ifndef JN_WITH_PG
typedef int jn_pg_not_built;   /* ISO C wants something in a translation unit */
#else

#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <errno.h>

/* PostgreSQL type OIDs (pg_type.h, stable since 7.x) */
#define OID_BOOL    16
#define OID_BYTEA   17
#define OID_INT8    20
#define OID_INT2    21
#define OID_INT4    23
#define OID_OID     26
#define OID_FLOAT4  700
#define OID_FLOAT8  701
#define OID_NUMERIC 1700

/* DEALLOCATEs kept before they are sent anyway (outside a transaction) */
#define PG_DEALLOC_BATCH 32

typedef jn_PgParam PgParam;   /* jn_engine.h: shared with jn_wire.c */

typedef struct PgConn PgConn;

struct jn_St {
  PgConn *pc;
  jn_St *prev, *next;  /* the connection's list of statements */
  char *sql;           /* the text as given (up to its ';') */
  char name[24];       /* the prepared statement's name */
  int nparams;
  PgParam *params;
  PGresult *res;       /* the result being walked, or NULL */
  int stepped;         /* stepped since the last reset */
  int row;             /* the current row (-1 before the first) */
  int nrows;
  int guard;          /* not transaction control: inside a transaction, runs in a savepoint */
  int ncols;           /* from the description (-1: not asked for yet) */
  char **colnames;     /* copies, from the description */
  unsigned char *unesc;   /* the bytea of the current row's column unesc_col */
  size_t unesc_len;
  int unesc_col;
};

struct PgConn {
  PGconn *conn;
  unsigned long serial;   /* the last statement name given */
  jn_St *stmts;
  int errcode;            /* of the last failure, mapped */
  char *errmsg;           /* malloc'd */
  char sqlstate[6];
  sqlite3_int64 changes;
  int inserted;           /* an INSERT has run on this session: lastval() is defined */
  char *dealloc;          /* "DEALLOCATE jn1;DEALLOCATE jn2;..." not sent yet */
  size_t dealloc_len, dealloc_cap;
  int ndealloc;
};

/* {====== Errors */

static void set_error(PgConn *pc, int code, const char *state, const char *msg) {
  size_t n;
  char *p;
  pc->errcode = code;
  if (state != NULL) {
    strncpy(pc->sqlstate, state, 5);
    pc->sqlstate[5] = '\0';
  } else {
    pc->sqlstate[0] = '\0';
  }
  if (msg == NULL) msg = "unknown PostgreSQL error";
  n = strlen(msg);
  while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == ' ')) n--;   /* libpq ends with \n */
  p = (char *)malloc(n + 1);
  if (p != NULL) {
    memcpy(p, msg, n);
    p[n] = '\0';
  }
  free(pc->errmsg);
  pc->errmsg = p;
}

/* SQLSTATE -> the SQLite code junction documents for that failure. */
int jn_pg_mapstate(const char *s) {
  if (s == NULL || s[0] == '\0') return SQLITE_ERROR;
  if (strcmp(s, "23505") == 0) return SQLITE_CONSTRAINT_UNIQUE;
  if (strcmp(s, "23503") == 0) return SQLITE_CONSTRAINT_FOREIGNKEY;
  if (strcmp(s, "23502") == 0) return SQLITE_CONSTRAINT_NOTNULL;
  if (strcmp(s, "23514") == 0) return SQLITE_CONSTRAINT_CHECK;
  if (strncmp(s, "23", 2) == 0) return SQLITE_CONSTRAINT;
  if (strcmp(s, "40001") == 0 || strcmp(s, "40P01") == 0) return SQLITE_BUSY;
  if (strcmp(s, "55P03") == 0) return SQLITE_BUSY;   /* lock_not_available */
  if (strcmp(s, "57014") == 0) return SQLITE_INTERRUPT;   /* query_canceled */
  if (strncmp(s, "08", 2) == 0) return SQLITE_IOERR;       /* connection exception */
  if (strcmp(s, "53100") == 0) return SQLITE_FULL;          /* disk_full */
  if (strcmp(s, "53200") == 0) return SQLITE_NOMEM;         /* out_of_memory */
  return SQLITE_ERROR;
}

/*
** Record the failure of res (NULL: libpq could not even make a result).
** A failure with no SQLSTATE while the connection is gone is a lost
** connection (SQLITE_IOERR).  Returns the mapped code.
*/
static int fail_result(PgConn *pc, const PGresult *res) {
  const char *state = res != NULL ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
  const char *msg = res != NULL ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
  int code;
  if (msg == NULL || msg[0] == '\0') msg = res != NULL ? PQresultErrorMessage(res) : NULL;
  if (msg == NULL || msg[0] == '\0') msg = PQerrorMessage(pc->conn);
  if ((state == NULL || state[0] == '\0') && PQstatus(pc->conn) == CONNECTION_BAD) {
    code = SQLITE_IOERR;
    state = "08006";   /* connection_failure */
  } else {
    code = jn_pg_mapstate(state);
  }
  if (code == SQLITE_CONSTRAINT_UNIQUE && res != NULL) {   /* the primary key's, as SQLite says */
    const char *cn = PQresultErrorField(res, PG_DIAG_CONSTRAINT_NAME);
    size_t n = cn != NULL ? strlen(cn) : 0;
    if (n > 5 && strcmp(cn + n - 5, "_pkey") == 0) code = SQLITE_CONSTRAINT_PRIMARYKEY;
  }
  set_error(pc, code, state, msg);
  return code;
}

static int fail_nomem(PgConn *pc) {
  set_error(pc, SQLITE_NOMEM, NULL, "out of memory");
  return SQLITE_NOMEM;
}

/* }====== */

/* {====== Statement text */

static int is_space(char ch) {
  return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r' || ch == '\f' || ch == '\v';
}
static int is_digit(char ch) { return ch >= '0' && ch <= '9'; }
static int is_identch(char ch) {
  return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || is_digit(ch) || ch == '_' ||
         (unsigned char)ch >= 0x80;
}

/*
** The scanner of one statement's text: sql[i..len) is still to read, out
** (when not NULL) receives the rewritten text, o counts its bytes either way.
** next is the number the next bare "?" gets, maxp the highest parameter seen.
*/
typedef struct Scan {
  const char *sql;
  size_t len, i;
  char *out;
  size_t o;
  int next, maxp;
} Scan;

static void emit(Scan *s, char ch) {
  if (s->out != NULL) s->out[s->o] = ch;
  s->o++;
}

/* Copy sql[i..end) to the output as it is. */
static void copy_to(Scan *s, size_t end) {
  while (s->i < end) { emit(s, s->sql[s->i]); s->i++; }
}

static int at(const Scan *s, size_t k, char ch) { return k < s->len && s->sql[k] == ch; }

/*
** A comment at i ("-- ..." up to the newline, or "/" "* ... *" "/", nested as
** PostgreSQL nests them): copy it and return 1; anything else: return 0.
*/
static int scan_comment(Scan *s) {
  size_t k = s->i;
  int depth = 0;
  if (at(s, k, '-') && at(s, k + 1, '-')) {
    while (k < s->len && s->sql[k] != '\n') k++;
    copy_to(s, k);
    return 1;
  }
  if (!(at(s, k, '/') && at(s, k + 1, '*'))) return 0;
  while (k < s->len) {
    if (at(s, k, '/') && at(s, k + 1, '*')) { depth++; k += 2; continue; }
    if (at(s, k, '*') && at(s, k + 1, '/')) {
      depth--; k += 2;
      if (depth == 0) break;
      continue;
    }
    k++;
  }
  copy_to(s, k);
  return 1;
}

/*
** A string ('...', E'...' with backslash escapes) or a quoted identifier
** ("...") opening at i with the quote q: copy it up to its closing quote
** (a doubled quote stays inside).
*/
static void scan_quoted(Scan *s, char q) {
  const char *sql = s->sql;
  size_t k = s->i + 1;
  int backslash = q == '\'' && s->i > 0 && (sql[s->i - 1] == 'E' || sql[s->i - 1] == 'e') &&
                  (s->i < 2 || !is_identch(sql[s->i - 2]));
  while (k < s->len) {
    if (backslash && sql[k] == '\\' && k + 1 < s->len) { k += 2; continue; }
    if (sql[k] == q) {
      k++;
      if (at(s, k, q)) { k++; continue; }                   /* doubled */
      break;
    }
    k++;
  }
  copy_to(s, k);
}

/* Read the decimal number at k (capped, so it cannot overflow); *end is after it. */
static int read_number(const Scan *s, size_t k, size_t *end) {
  int v = 0;
  while (k < s->len && is_digit(s->sql[k])) {
    if (v < 100000) v = v * 10 + (s->sql[k] - '0');
    k++;
  }
  *end = k;
  return v;
}

/*
** A '$' at i that does not end a word: "$n" written out (counted, copied) or
** "$tag$ ... $tag$" (copied whole): return 1; any other '$': return 0.
*/
static int scan_dollar(Scan *s) {
  const char *sql = s->sql;
  size_t i = s->i, j = i + 1, k, taglen;
  if (i > 0 && is_identch(sql[i - 1])) return 0;
  if (j < s->len && is_digit(sql[j])) {                      /* $n written out */
    int v = read_number(s, j, &j);
    if (v > s->maxp) s->maxp = v;
    copy_to(s, j);
    return 1;
  }
  while (j < s->len && is_identch(sql[j])) j++;
  if (!at(s, j, '$')) return 0;
  taglen = j - i + 1;                                        /* $tag$ ... $tag$ */
  k = j + 1;
  while (k < s->len && !(sql[k] == '$' && k + taglen <= s->len &&
                         memcmp(sql + k, sql + i, taglen) == 0))
    k++;
  copy_to(s, k < s->len ? k + taglen : s->len);
  return 1;
}

/* The placeholder "?" or "?N" at i: written out as "$n". */
static void scan_placeholder(Scan *s) {
  char num[16];
  int v, n, k;
  size_t j = s->i + 1;
  if (j < s->len && is_digit(s->sql[j])) {
    v = read_number(s, j, &j);
    if (v > s->next) s->next = v;
  } else {
    v = ++s->next;
  }
  if (v > s->maxp) s->maxp = v;
  n = snprintf(num, sizeof num, "$%d", v);
  for (k = 0; k < n; k++) emit(s, num[k]);
  s->i = j;
}

/*
** Scan the first statement of sql[0..len): where it ends (after its ';', or
** len), whether it holds anything but blanks and comments, and (when out is
** not NULL) its text with "?" / "?N" rewritten to "$n", without the ';'.
** *nparams is the highest parameter number.  Quoted strings ('...', E'...'
** with backslashes, $tag$...$tag$), quoted identifiers and comments are
** copied as they are.
*/
size_t jn_pg_scan(const char *sql, size_t len, char *out, size_t *outlen, int *nparams,
                  int *nonblank) {
  Scan s;
  s.sql = sql; s.len = len; s.i = 0; s.out = out; s.o = 0; s.next = 0; s.maxp = 0;
  *nonblank = 0;
  while (s.i < len) {
    char ch = sql[s.i];
    if (ch == ';') { s.i++; break; }
    if (scan_comment(&s)) continue;
    if (is_space(ch)) { emit(&s, ch); s.i++; continue; }
    *nonblank = 1;
    if (ch == '\'' || ch == '"') scan_quoted(&s, ch);
    else if (ch == '$' && scan_dollar(&s)) continue;
    else if (ch == '?') scan_placeholder(&s);
    else if (is_identch(ch)) {                 /* a whole word: E'...' is seen by its quote */
      size_t k = s.i;
      while (k < len && is_identch(sql[k])) k++;
      copy_to(&s, k);
    } else { emit(&s, ch); s.i++; }
  }
  if (outlen != NULL) *outlen = s.o;
  *nparams = s.maxp;
  return s.i;
}

/* }====== */

/* {====== Statements */

static void drop_result(jn_St *st) {
  if (st->res != NULL) PQclear(st->res);
  st->res = NULL;
  if (st->unesc != NULL) PQfreemem(st->unesc);
  st->unesc = NULL;
  st->unesc_col = -1;
  st->row = -1;
  st->nrows = 0;
  st->stepped = 0;
}

static void free_st(jn_St *st) {
  int i;
  drop_result(st);
  for (i = 0; i < st->nparams; i++) free(st->params[i].buf);
  for (i = 0; i < st->ncols; i++) free(st->colnames[i]);
  free(st->params);
  free(st->colnames);
  free(st->sql);
  free(st);
}

/* Send the DEALLOCATEs of finalized statements (outside a transaction only). */
static void flush_dealloc(PgConn *pc) {
  PGresult *res;
  if (pc->ndealloc == 0 || PQtransactionStatus(pc->conn) != PQTRANS_IDLE) return;
  res = PQexec(pc->conn, pc->dealloc);
  PQclear(res);   /* a name already gone (a server restart) is no reason to stop */
  pc->dealloc_len = 0;
  pc->ndealloc = 0;
  if (pc->dealloc != NULL) pc->dealloc[0] = '\0';
}

static void defer_dealloc(PgConn *pc, const char *name) {
  size_t need = pc->dealloc_len + strlen(name) + 13;
  if (need > pc->dealloc_cap) {
    size_t cap = pc->dealloc_cap ? pc->dealloc_cap * 2 : 512;
    char *p;
    while (cap < need) cap *= 2;
    p = (char *)realloc(pc->dealloc, cap);
    if (p == NULL) return;   /* the name stays prepared until the connection closes */
    pc->dealloc = p;
    pc->dealloc_cap = cap;
  }
  pc->dealloc_len += (size_t)sprintf(pc->dealloc + pc->dealloc_len, "DEALLOCATE %s;", name);
  pc->ndealloc++;
}

/*
** Is the statement transaction control (BEGIN, COMMIT, SAVEPOINT...)?  The
** text is the rewritten one: blanks and comments may lead.
*/
int jn_pg_txncontrol(const char *s) {
  static const char *const words[] = {
    "BEGIN", "START", "COMMIT", "END", "ROLLBACK", "ABORT", "SAVEPOINT", "RELEASE", NULL
  };
  int i;
  for (;;) {
    while (is_space(*s)) s++;
    if (s[0] == '-' && s[1] == '-') { while (*s && *s != '\n') s++; continue; }
    if (s[0] == '/' && s[1] == '*') {
      const char *e = strstr(s + 2, "*/");
      s = e != NULL ? e + 2 : s + strlen(s);
      continue;
    }
    break;
  }
  for (i = 0; words[i] != NULL; i++) {
    size_t n = strlen(words[i]), k;
    for (k = 0; k < n && s[k] != '\0' && (s[k] & ~0x20) == words[i][k]; k++) {}
    if (k == n && !is_identch(s[n])) return 1;
  }
  return 0;
}

/* Send a request of st: its Parse (text not NULL) or its Bind/Execute. */
static int send_request(PgConn *pc, jn_St *st, const char *text, int n, const char *const *v,
                        const int *l, const int *f) {
  if (text != NULL) return PQsendPrepare(pc->conn, st->name, text, st->nparams, NULL);
  return PQsendQueryPrepared(pc->conn, st->name, n, v, l, f, 0);
}

/* The same, waiting for its result. */
static PGresult *run_request(PgConn *pc, jn_St *st, const char *text, int n,
                             const char *const *v, const int *l, const int *f) {
  if (text != NULL) return PQprepare(pc->conn, st->name, text, st->nparams, NULL);
  return PQexecPrepared(pc->conn, st->name, n, v, l, f, 0);
}

static int result_failed(const PGresult *res) {
  ExecStatusType s = PQresultStatus(res);
  return s != PGRES_COMMAND_OK && s != PGRES_TUPLES_OK && s != PGRES_EMPTY_QUERY;
}

/*
** Run a request of st (prepare it: text not NULL; else execute it).  Inside
** an open transaction it runs in a savepoint of its own, so that its
** failure fails only itself, as on SQLite, instead of aborting the
** transaction around it: SAVEPOINT, the request and RELEASE go in one
** pipeline (one round trip); a failure costs one more (ROLLBACK TO).
*/
static PGresult *request(PgConn *pc, jn_St *st, const char *text, int n, const char *const *v,
                         const int *l, const int *f) {
  PGresult *res = NULL, *r;
  int q;
  if (!st->guard || PQtransactionStatus(pc->conn) != PQTRANS_INTRANS)
    return run_request(pc, st, text, n, v, l, f);
#ifdef LIBPQ_HAS_PIPELINING
  if (!PQenterPipelineMode(pc->conn)) return run_request(pc, st, text, n, v, l, f);
  if (!PQsendQueryParams(pc->conn, "SAVEPOINT jn_st", 0, NULL, NULL, NULL, NULL, 0) ||
      !send_request(pc, st, text, n, v, l, f) ||
      !PQsendQueryParams(pc->conn, "RELEASE SAVEPOINT jn_st", 0, NULL, NULL, NULL, NULL, 0) ||
      !PQpipelineSync(pc->conn)) {
    /* the connection is gone: nothing more will come */
    PQexitPipelineMode(pc->conn);
    return NULL;
  }
  for (q = 0; q < 3; q++) {   /* each request's results end with a NULL */
    while ((r = PQgetResult(pc->conn)) != NULL) {
      if (q == 1 && res == NULL) res = r;
      else PQclear(r);
    }
    if (PQstatus(pc->conn) == CONNECTION_BAD) break;
  }
  while ((r = PQgetResult(pc->conn)) != NULL) {   /* up to the sync */
    ExecStatusType s = PQresultStatus(r);
    PQclear(r);
    if (s == PGRES_PIPELINE_SYNC) break;
  }
  PQexitPipelineMode(pc->conn);
#else
  r = PQexec(pc->conn, "SAVEPOINT jn_st");
  PQclear(r);
  res = run_request(pc, st, text, n, v, l, f);
  if (!result_failed(res)) {
    r = PQexec(pc->conn, "RELEASE SAVEPOINT jn_st");
    PQclear(r);
  }
  (void)q;
  (void)send_request;
#endif
  if (res == NULL || result_failed(res)) {
    if (PQtransactionStatus(pc->conn) == PQTRANS_INERROR) {
      r = PQexec(pc->conn, "ROLLBACK TO SAVEPOINT jn_st; RELEASE SAVEPOINT jn_st");
      PQclear(r);
    }
  }
  return res;
}

static int pg_prepare(void *db, const char *sql, size_t len, jn_St **out, size_t *used) {
  PgConn *pc = (PgConn *)db;
  size_t end, n;
  int nparams, nonblank, i;
  char *text;
  jn_St *st;
  PGresult *res;
  *out = NULL;
  end = jn_pg_scan(sql, len, NULL, &n, &nparams, &nonblank);
  if (used != NULL) *used = end;
  if (!nonblank) return SQLITE_OK;
  if (pc->ndealloc >= PG_DEALLOC_BATCH) flush_dealloc(pc);
  text = (char *)malloc(n + 1);
  st = (jn_St *)calloc(1, sizeof *st);
  if (text == NULL || st == NULL) {
    free(text);
    free(st);
    return fail_nomem(pc);
  }
  jn_pg_scan(sql, len, text, NULL, &nparams, &nonblank);
  text[n] = '\0';
  st->pc = pc;
  st->row = -1;
  st->ncols = -1;
  st->unesc_col = -1;
  st->sql = (char *)malloc(end + 1);
  st->params = (PgParam *)calloc(nparams > 0 ? (size_t)nparams : 1, sizeof *st->params);
  if (st->sql == NULL || st->params == NULL) {
    free(text);
    free(st->sql);
    free(st->params);
    free(st);
    return fail_nomem(pc);
  }
  memcpy(st->sql, sql, end);
  st->sql[end] = '\0';
  st->nparams = nparams;
  for (i = 0; i < nparams; i++) st->params[i].isnull = 1;
  snprintf(st->name, sizeof st->name, "jn%lu", ++pc->serial);
  st->guard = !jn_pg_txncontrol(text);
  res = request(pc, st, text, 0, NULL, NULL, NULL);
  free(text);
  if (PQresultStatus(res) != PGRES_COMMAND_OK) {
    int rc = fail_result(pc, res);
    PQclear(res);
    free_st(st);
    return rc;
  }
  PQclear(res);
  st->next = pc->stmts;
  if (pc->stmts != NULL) pc->stmts->prev = st;
  pc->stmts = st;
  *out = st;
  return SQLITE_OK;
}

static void unlink_st(jn_St *st) {
  PgConn *pc = st->pc;
  if (st->prev != NULL) st->prev->next = st->next;
  else pc->stmts = st->next;
  if (st->next != NULL) st->next->prev = st->prev;
}

static int pg_finalize(jn_St *st) {
  if (st == NULL) return SQLITE_OK;
  unlink_st(st);
  defer_dealloc(st->pc, st->name);
  free_st(st);
  return SQLITE_OK;
}

static int pg_reset(jn_St *st) {
  drop_result(st);
  return SQLITE_OK;
}

static int pg_busy(jn_St *st) { return st->stepped; }
static const char *pg_sql(jn_St *st) { return st->sql; }
static int pg_nparams(jn_St *st) { return st->nparams; }

/* {====== Parameters in PostgreSQL's text format (jn_wire.c writes them too) */

int jn_pg_room(jn_PgParam *p, size_t n) {
  if (n + 1 > p->cap) {
    size_t cap = p->cap ? p->cap : 32;
    char *b;
    while (cap < n + 1) cap *= 2;
    b = (char *)realloc(p->buf, cap);
    if (b == NULL) return 0;
    p->buf = b;
    p->cap = cap;
  }
  p->isnull = 0;
  p->binary = 0;
  p->nul = 0;
  return 1;
}

int jn_pg_int64(jn_PgParam *p, sqlite3_int64 v) {
  if (!jn_pg_room(p, 24)) return 0;
  p->len = (size_t)snprintf(p->buf, p->cap, "%lld", (long long)v);
  return 1;
}

int jn_pg_double(jn_PgParam *p, double v) {
  if (!jn_pg_room(p, 32)) return 0;
  if (v != v) p->len = (size_t)snprintf(p->buf, p->cap, "NaN");
  else if (v > 1.7976931348623157e308) p->len = (size_t)snprintf(p->buf, p->cap, "Infinity");
  else if (v < -1.7976931348623157e308) p->len = (size_t)snprintf(p->buf, p->cap, "-Infinity");
  else p->len = (size_t)snprintf(p->buf, p->cap, "%.17g", v);
  return 1;
}

/* PostgreSQL's text holds no NUL, and libpq would send the text cut at it:
** a shorter value stored silently.  The step refuses it instead (nul). */
int jn_pg_text(jn_PgParam *p, const char *s, size_t n) {
  if (!jn_pg_room(p, n)) return 0;
  memcpy(p->buf, s, n);
  p->buf[n] = '\0';   /* text parameters are read up to a NUL */
  p->len = n;
  p->nul = n > 0 && memchr(s, '\0', n) != NULL;
  return 1;
}

/* }====== */

/* The parameter i (1-based), or NULL (out of range: the failure set). */
static PgParam *param(jn_St *st, int i) {
  if (i < 1 || i > st->nparams) {
    set_error(st->pc, SQLITE_RANGE, NULL, "column index out of range");
    return NULL;
  }
  return &st->params[i - 1];
}

static int pg_bind_null(jn_St *st, int i) {
  if (i < 1 || i > st->nparams) return SQLITE_RANGE;
  st->params[i - 1].isnull = 1;
  st->params[i - 1].nul = 0;
  return SQLITE_OK;
}

static int pg_bind_int64(jn_St *st, int i, sqlite3_int64 v) {
  PgParam *p = param(st, i);
  if (p == NULL) return st->pc->errcode;
  return jn_pg_int64(p, v) ? SQLITE_OK : fail_nomem(st->pc);
}

static int pg_bind_double(jn_St *st, int i, double v) {
  PgParam *p = param(st, i);
  if (p == NULL) return st->pc->errcode;
  return jn_pg_double(p, v) ? SQLITE_OK : fail_nomem(st->pc);
}

static int pg_bind_text(jn_St *st, int i, const char *s, size_t n) {
  PgParam *p = param(st, i);
  if (p == NULL) return st->pc->errcode;
  return jn_pg_text(p, s, n) ? SQLITE_OK : fail_nomem(st->pc);
}

static int pg_bind_blob(jn_St *st, int i, const void *s, size_t n) {
  PgParam *p = param(st, i);
  if (p == NULL) return st->pc->errcode;
  if (!jn_pg_room(p, n)) return fail_nomem(st->pc);
  if (n > 0) memcpy(p->buf, s, n);
  p->len = n;
  p->binary = 1;
  return SQLITE_OK;
}

/* Does the command tag say the statement changed rows? */
static int is_write_tag(const char *tag) {
  return strncmp(tag, "INSERT", 6) == 0 || strncmp(tag, "UPDATE", 6) == 0 ||
         strncmp(tag, "DELETE", 6) == 0 || strncmp(tag, "MERGE", 5) == 0;
}

static void note_command(PgConn *pc, PGresult *res) {
  const char *tag = PQcmdStatus(res);
  if (tag != NULL && is_write_tag(tag)) {
    pc->changes = strtoll(PQcmdTuples(res), NULL, 10);
    if (tag[0] == 'I') pc->inserted = 1;
  }
}

static int pg_step(jn_St *st) {
  PgConn *pc = st->pc;
  if (!st->stepped) {
    const char *vals[64] = { NULL }, **v = vals;
    int lens[64] = { 0 }, fmts[64] = { 0 }, *l = lens, *f = fmts, i, n = st->nparams;
    ExecStatusType s;
    if (n > 64) {
      v = (const char **)malloc((size_t)n * sizeof *v);
      l = (int *)malloc((size_t)n * sizeof *l);
      f = (int *)malloc((size_t)n * sizeof *f);
      if (v == NULL || l == NULL || f == NULL) {
        free((void *)v); free(l); free(f);
        return fail_nomem(pc);
      }
    }
    for (i = 0; i < n; i++) {
      PgParam *p = &st->params[i];
      if (!p->isnull && p->nul) {   /* what the server says of such bytes, nothing sent */
        if (v != vals) { free((void *)v); free(l); free(f); }
        st->stepped = 1;
        set_error(pc, SQLITE_ERROR, "22021",
                  "invalid byte sequence for encoding \"UTF8\": 0x00 (text cannot hold a NUL byte)");
        return SQLITE_ERROR;
      }
      v[i] = p->isnull ? NULL : p->buf != NULL ? p->buf : "";
      l[i] = (int)p->len;
      f[i] = p->binary;
    }
    st->stepped = 1;
    st->res = request(pc, st, NULL, n, v, l, f);
    if (v != vals) { free((void *)v); free(l); free(f); }
    s = PQresultStatus(st->res);
    if (s != PGRES_TUPLES_OK && s != PGRES_COMMAND_OK) {
      int rc = fail_result(pc, st->res);
      PQclear(st->res);
      st->res = NULL;
      return rc;
    }
    note_command(pc, st->res);
    st->nrows = PQntuples(st->res);
    st->row = -1;
  }
  if (st->res == NULL) return SQLITE_MISUSE;   /* stepped again after a failure */
  if (st->unesc != NULL) { PQfreemem(st->unesc); st->unesc = NULL; st->unesc_col = -1; }
  if (st->row + 1 < st->nrows) {
    st->row++;
    return SQLITE_ROW;
  }
  st->row = st->nrows;
  return SQLITE_DONE;
}

/*
** The columns before the first step (db:query names them before it steps):
** asked of the server once per statement, one round trip that statements
** only ever stepped never pay.  Returns 0 when the server cannot say.
*/
static int describe(jn_St *st) {
  PGresult *res;
  int i, n;
  if (st->ncols >= 0) return 1;
  res = PQdescribePrepared(st->pc->conn, st->name);
  if (PQresultStatus(res) != PGRES_COMMAND_OK) {
    fail_result(st->pc, res);
    PQclear(res);
    return 0;
  }
  n = PQnfields(res);
  st->colnames = (char **)calloc(n > 0 ? (size_t)n : 1, sizeof *st->colnames);
  if (st->colnames == NULL) { PQclear(res); return 0; }
  for (i = 0; i < n; i++) {
    const char *cn = PQfname(res, i);
    size_t cl = strlen(cn);
    st->colnames[i] = (char *)malloc(cl + 1);
    if (st->colnames[i] == NULL) break;
    memcpy(st->colnames[i], cn, cl + 1);
  }
  st->ncols = i;
  PQclear(res);
  return i == n;
}

static int pg_ncols(jn_St *st) {
  if (st->res != NULL) return PQnfields(st->res);
  return describe(st) ? st->ncols : 0;
}

static const char *pg_colname(jn_St *st, int col) {
  if (st->res != NULL) return col >= 0 && col < PQnfields(st->res) ? PQfname(st->res, col) : NULL;
  if (!describe(st)) return NULL;
  return col >= 0 && col < st->ncols ? st->colnames[col] : NULL;
}

/* The type of col in the result being walked. */
static Oid ctype(jn_St *st, int col) { return PQftype(st->res, col); }

/* The current row's text of col, or NULL (SQL NULL or no row). */
static const char *cell(jn_St *st, int col, int *len) {
  if (st->res == NULL || st->row < 0 || st->row >= st->nrows || col < 0 ||
      col >= PQnfields(st->res) ||
      PQgetisnull(st->res, st->row, col))
    return NULL;
  if (len != NULL) *len = PQgetlength(st->res, st->row, col);
  return PQgetvalue(st->res, st->row, col);
}

static int pg_coltype(jn_St *st, int col) {
  if (cell(st, col, NULL) == NULL) return SQLITE_NULL;
  switch (ctype(st, col)) {
    case OID_INT2: case OID_INT4: case OID_INT8: case OID_OID: case OID_BOOL:
      return SQLITE_INTEGER;
    case OID_FLOAT4: case OID_FLOAT8: case OID_NUMERIC:
      return SQLITE_FLOAT;
    case OID_BYTEA:
      return SQLITE_BLOB;
    default:
      return SQLITE_TEXT;
  }
}

static sqlite3_int64 pg_col_int64(jn_St *st, int col) {
  const char *s = cell(st, col, NULL);
  if (s == NULL) return 0;
  if (ctype(st, col) == OID_BOOL) return s[0] == 't';
  if (ctype(st, col) == OID_FLOAT4 || ctype(st, col) == OID_FLOAT8 ||
      ctype(st, col) == OID_NUMERIC)
    return (sqlite3_int64)strtod(s, NULL);
  return (sqlite3_int64)strtoll(s, NULL, 10);
}

static double pg_col_double(jn_St *st, int col) {
  const char *s = cell(st, col, NULL);
  if (s == NULL) return 0.0;
  if (ctype(st, col) == OID_BOOL) return s[0] == 't' ? 1.0 : 0.0;
  return strtod(s, NULL);
}

static const void *pg_col_bytes(jn_St *st, int col, size_t *n) {
  int len = 0;
  const char *s = cell(st, col, &len);
  *n = 0;
  if (s == NULL) return NULL;
  if (ctype(st, col) == OID_BYTEA) {
    if (st->unesc_col != col) {
      if (st->unesc != NULL) PQfreemem(st->unesc);
      st->unesc = PQunescapeBytea((const unsigned char *)s, &st->unesc_len);
      st->unesc_col = st->unesc != NULL ? col : -1;
      if (st->unesc == NULL) return NULL;
    }
    *n = st->unesc_len;
    return st->unesc;
  }
  if (ctype(st, col) == OID_BOOL) {   /* as SQLite reads the text of 1 / 0 */
    *n = 1;
    return s[0] == 't' ? "1" : "0";
  }
  *n = (size_t)len;
  return s;
}

/* }====== */

/* {====== The connection */

static sqlite3_int64 pg_changes(void *db) { return ((PgConn *)db)->changes; }

/*
** The key the last INSERT generated: lastval().  Asked only after an
** INSERT ran on this session (before one, lastval() fails, and a failure
** would abort the transaction around it).
*/
static sqlite3_int64 pg_last_id(void *db) {
  PgConn *pc = (PgConn *)db;
  PGresult *res;
  sqlite3_int64 v = 0;
  if (!pc->inserted || PQtransactionStatus(pc->conn) == PQTRANS_INERROR) return 0;
  res = PQexec(pc->conn, "SELECT lastval()");
  if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1 && !PQgetisnull(res, 0, 0))
    v = (sqlite3_int64)strtoll(PQgetvalue(res, 0, 0), NULL, 10);
  PQclear(res);
  return v;
}

/* No transaction open.  A failed one (INERROR) is still open: it needs its
** ROLLBACK. */
static int pg_autocommit(void *db) {
  return PQtransactionStatus(((PgConn *)db)->conn) == PQTRANS_IDLE;
}

static int pg_errcode(void *db) { return ((PgConn *)db)->errcode; }

static const char *pg_errmsg(void *db) {
  PgConn *pc = (PgConn *)db;
  return pc->errmsg != NULL ? pc->errmsg : "not an error";
}

static const char *pg_sqlstate(void *db) {
  PgConn *pc = (PgConn *)db;
  return pc->sqlstate[0] != '\0' ? pc->sqlstate : NULL;
}

static int pg_exec(void *db, const char *sql) {
  PgConn *pc = (PgConn *)db;
  PGresult *res = PQexec(pc->conn, sql);
  ExecStatusType s = PQresultStatus(res);
  int rc = SQLITE_OK;
  if (s != PGRES_COMMAND_OK && s != PGRES_TUPLES_OK && s != PGRES_EMPTY_QUERY)
    rc = fail_result(pc, res);
  else
    note_command(pc, res);
  PQclear(res);
  return rc;
}

static void pg_finalize_all(void *db) {
  PgConn *pc = (PgConn *)db;
  while (pc->stmts != NULL) pg_finalize(pc->stmts);
}

static int pg_close(void *db) {
  PgConn *pc = (PgConn *)db;
  while (pc->stmts != NULL) {   /* the names die with the session */
    jn_St *st = pc->stmts;
    unlink_st(st);
    free_st(st);
  }
  PQfinish(pc->conn);
  free(pc->errmsg);
  free(pc->dealloc);
  free(pc);
  return SQLITE_OK;
}

/* A notice (a NOTICE of CREATE TABLE IF NOT EXISTS...) is not printed on stderr. */
static void quiet(void *arg, const char *message) {
  (void)arg;
  (void)message;
}

void *jn_pg_open(const char *conninfo, char *msg, size_t msgsize) {
  PgConn *pc;
  PGconn *conn = PQconnectdb(conninfo);
  if (conn == NULL) {
    snprintf(msg, msgsize, "out of memory");
    return NULL;
  }
  if (PQstatus(conn) != CONNECTION_OK) {
    size_t n;
    snprintf(msg, msgsize, "%s", PQerrorMessage(conn));
    n = strlen(msg);
    while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == ' ')) msg[--n] = '\0';
    PQfinish(conn);
    return NULL;
  }
  pc = (PgConn *)calloc(1, sizeof *pc);
  if (pc == NULL) {
    snprintf(msg, msgsize, "out of memory");
    PQfinish(conn);
    return NULL;
  }
  pc->conn = conn;
  PQsetNoticeProcessor(conn, quiet, NULL);
  return pc;
}

const jn_Engine jn_pg_engine = {
  "postgres",
  pg_prepare, pg_finalize, pg_step, pg_reset, pg_busy, pg_sql, pg_nparams,
  pg_bind_null, pg_bind_int64, pg_bind_double, pg_bind_text, pg_bind_blob,
  pg_ncols, pg_colname, pg_coltype, pg_col_int64, pg_col_double, pg_col_bytes,
  pg_changes, pg_last_id, pg_autocommit, pg_errcode, pg_errmsg, pg_sqlstate,
  pg_exec, pg_finalize_all, pg_close
};

/* PostgreSQL's SQL where engines differ (jn_engine.h). */
#define JSON_TEXT "SELECT value FROM json_array_elements_text(?::json)"
/* the schema of a catalog read: ?2, the model's schema, or the current one */
#define PG_SCHEMA "coalesce(?2::text, current_schema())"
const jn_Dialect jn_pg_dialect = {
  "postgres", "BEGIN", "BEGIN", "BEGIN ISOLATION LEVEL SERIALIZABLE",
  { "bigint", "text", "varchar", "double precision", "bytea", "boolean", "text",
    "date", "text", "text", "uuid", "bigint" },   /* DATEONLY JSON ENUM UUID BIGINT */
                                                /* JSON as text: the text junction wrote,
                                                ** byte for byte, as on SQLite */
  "bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY",
  "",
  1,    /* INSERT ... RETURNING */
  1,    /* a failed statement aborts the whole transaction */
  " FOR NO KEY UPDATE",
  65535,
  "SELECT tablename AS name FROM pg_catalog.pg_tables "
  "WHERE schemaname = " PG_SCHEMA " AND lower(tablename) = lower(?1)",
  "SELECT tablename AS tbl_name FROM pg_catalog.pg_indexes "
  "WHERE schemaname = " PG_SCHEMA " AND lower(indexname) = lower(?1)",
  "TRUE", "FALSE",
  1,    /* db:sync compares an existing table through the catalog (cat_* below) */
  "FALSE", "TRUE",
  { "SELECT value::bigint FROM json_array_elements_text(?::json)",              /* INTEGER */
    JSON_TEXT, JSON_TEXT,                                                       /* TEXT STRING */
    /* REAL: JSON has no infinity, junction writes one as 9e999 (SQLite reads it so) */
    "SELECT (CASE value WHEN '9e999' THEN 'Infinity' WHEN '-9e999' THEN '-Infinity' "
    "ELSE value END)::double precision FROM json_array_elements_text(?::json)",
    NULL,                                                                       /* BLOB: never */
    "SELECT value::boolean FROM json_array_elements_text(?::json)",             /* BOOLEAN */
    JSON_TEXT,                                                                  /* DATE */
    "SELECT value::date FROM json_array_elements_text(?::json)",                /* DATEONLY */
    JSON_TEXT,                                                                  /* JSON */
    JSON_TEXT,                                                                  /* ENUM */
    "SELECT value::uuid FROM json_array_elements_text(?::json)",                /* UUID */
    "SELECT value::bigint FROM json_array_elements_text(?::json)" },            /* BIGINT */
  /* an identity does not move when an insert gives the key: setval, only forward */
  "SELECT setval(s::regclass, ?3) FROM pg_get_serial_sequence(?1, ?2) AS s "
  "WHERE s IS NOT NULL AND coalesce(pg_sequence_last_value(s::regclass), 0) < ?3",
  /* the catalog, in the shape of SQLite's pragmas */
  "SELECT a.attname AS name, CASE format_type(a.atttypid, a.atttypmod) "
  "WHEN 'bigint' THEN 'INTEGER' WHEN 'integer' THEN 'INTEGER' WHEN 'smallint' THEN 'INTEGER' "
  "WHEN 'text' THEN 'TEXT' WHEN 'double precision' THEN 'REAL' WHEN 'real' THEN 'REAL' "
  "WHEN 'bytea' THEN 'BLOB' WHEN 'boolean' THEN 'BOOLEAN' WHEN 'date' THEN 'TEXT' "
  "WHEN 'jsonb' THEN 'TEXT' WHEN 'json' THEN 'TEXT' WHEN 'uuid' THEN 'TEXT' "
  "ELSE regexp_replace(upper(format_type(a.atttypid, a.atttypmod)), '^CHARACTER VARYING', 'VARCHAR') "
  "END AS type, CASE WHEN a.attnotnull THEN 1 ELSE 0 END AS nn, "
  "coalesce(pg_get_expr(d.adbin, d.adrelid), CASE WHEN a.attidentity <> '' THEN 'identity' END) AS dv, "
  "CASE WHEN EXISTS (SELECT 1 FROM pg_catalog.pg_constraint k WHERE k.conrelid = c.oid "
  "AND k.contype = 'p' AND a.attnum = ANY (k.conkey)) THEN 1 ELSE 0 END AS pk "
  "FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
  "JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped "
  "LEFT JOIN pg_catalog.pg_attrdef d ON d.adrelid = c.oid AND d.adnum = a.attnum "
  "WHERE n.nspname = " PG_SCHEMA " AND c.relkind IN ('r', 'p') AND lower(c.relname) = lower(?1) "
  "ORDER BY a.attnum",
#define PG_ACTION(col) "CASE " col " WHEN 'r' THEN 'RESTRICT' WHEN 'c' THEN 'CASCADE' " \
  "WHEN 'n' THEN 'SET NULL' WHEN 'd' THEN 'SET DEFAULT' ELSE 'NO ACTION' END"
  "SELECT r.relname AS tbl, a.attname AS fr, ra.attname AS tt, " PG_ACTION("k.confupdtype")
  " AS ou, " PG_ACTION("k.confdeltype") " AS od "
  "FROM pg_catalog.pg_constraint k JOIN pg_catalog.pg_class c ON c.oid = k.conrelid "
  "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
  "JOIN pg_catalog.pg_class r ON r.oid = k.confrelid "
  "JOIN pg_catalog.pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = k.conkey[1] "
  "JOIN pg_catalog.pg_attribute ra ON ra.attrelid = k.confrelid AND ra.attnum = k.confkey[1] "
  "WHERE k.contype = 'f' AND n.nspname = " PG_SCHEMA " AND lower(c.relname) = lower(?1)",
#undef PG_ACTION
  "SELECT i.relname AS name, CASE WHEN x.indisprimary THEN 'pk' WHEN k.contype = 'u' THEN 'u' "
  "ELSE 'c' END AS origin, CASE WHEN x.indpred IS NULL THEN 0 ELSE 1 END AS partial, "
  "CASE WHEN x.indisunique THEN 1 ELSE 0 END AS u "
  "FROM pg_catalog.pg_index x JOIN pg_catalog.pg_class c ON c.oid = x.indrelid "
  "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
  "JOIN pg_catalog.pg_class i ON i.oid = x.indexrelid "
  "LEFT JOIN pg_catalog.pg_constraint k ON k.conindid = x.indexrelid AND k.conrelid = c.oid "
  "AND k.contype IN ('u', 'p') "
  "WHERE n.nspname = " PG_SCHEMA " AND lower(c.relname) = lower(?1)",
  "SELECT a.attname AS name FROM pg_catalog.pg_class i "
  "JOIN pg_catalog.pg_namespace n ON n.oid = i.relnamespace "
  "JOIN pg_catalog.pg_index x ON x.indexrelid = i.oid "
  "CROSS JOIN LATERAL unnest(x.indkey::int2[]) WITH ORDINALITY AS u(attnum, seqno) "
  "LEFT JOIN pg_catalog.pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = u.attnum "
  "WHERE n.nspname = " PG_SCHEMA " AND lower(i.relname) = lower(?1) ORDER BY u.seqno",
  0,    /* an integer sum past 64 bits fails: "bigint out of range" */
  1,    /* NULLS FIRST / LAST; NULLs sort last ascending */
  1,    /* sum(bigint) is numeric */
  /* two connections creating one table at once: the second fails on the
  ** catalog's unique index, CREATE TABLE IF NOT EXISTS or not; so db:sync
  ** takes this lock (a number of junction's own) until its transaction ends */
  "SELECT pg_advisory_xact_lock(7236700100)",
  1,    /* a JSON path is read from the text cast to jsonb (#>, #>>) */
  1     /* schemas are namespaces: the catalog reads take the schema as ?2 */
};
#undef PG_SCHEMA

/* }====== */

#endif /* JN_WITH_PG */
