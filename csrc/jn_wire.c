/*
** jn_wire.c: the PostgreSQL engine whose bytes Lua moves (the wire
** transport, docs/POSTGRES.md).  C cannot yield (Lua 5.1 and LuaJIT have no
** lua_yieldk), so a call cannot wait inside C for a cosocket.  Instead:
**   - prepare and bind record the statement: its text with "?" rewritten to
**     "$n" (jn_pg_scan, PostgreSQL's dialect) and its parameters in
**     PostgreSQL's text format (a blob as bytea's hex text);
**   - a step on a statement with no reply yet stops the call: the engine is
**     "stopped", keeps the statement as the pending one, and every later
**     statement of the run fails quietly (nothing is recorded or sent, so no
**     ROLLBACK or RELEASE of the unwinding leaves);
**   - Lua (lua/junction/wire.lua) sends the pending statement through the
**     transport, hands the reply back (jn_wire_answer), and runs the call
**     again from its start: the steps of the statements answered so far
**     are answered from the replies, in order, each checked to be the
**     statement it answered (same text, same parameters).
** The replies live until the user's call ends (jn_wire_end).  Statements and
** replies are malloc'd, owned by the engine, freed at close.
*/
#include "jn.h"

#ifndef JN_WITH_PG
typedef int jn_wire_not_built;   /* ISO C wants something in a translation unit */
#else

#include <stdio.h>
#include <stdlib.h>

#define OID_BOOL    16
#define OID_BYTEA   17
#define OID_INT8    20
#define OID_INT2    21
#define OID_INT4    23
#define OID_OID     26
#define OID_FLOAT4  700
#define OID_FLOAT8  701
#define OID_NUMERIC 1700

typedef struct WireConn WireConn;

/* One reply: the statement it answered (its signature), and its result. */
typedef struct Reply {
  char *sig;             /* the statement's text and parameters, as sig_of makes them */
  size_t siglen;
  int code;              /* SQLITE_OK, or the mapped failure */
  char sqlstate[6];
  char *msg;
  char status;           /* the transaction status after it: 'I', 'T', 'E' (0: not said) */
  sqlite3_int64 changes; /* the command tag's row count (-1: none) */
  int ncols, nrows;
  char **names;
  int *oids;
  char **cells;          /* nrows * ncols, NULL for SQL NULL */
  size_t *lens;
} Reply;

typedef jn_PgParam Param;   /* PostgreSQL's text format, as jn_pg.c writes it */

struct jn_St {
  WireConn *wc;
  jn_St *prev, *next;
  char *sql;             /* the text as given */
  char *text;            /* "$n" rewritten */
  int nparams;
  Param *params;
  int guard;             /* not transaction control: in a transaction, in a savepoint */
  int stepped, row;
  Reply *reply;          /* answering it now (owned by the connection) */
  unsigned char *blob;   /* the decoded bytea of column blob_col of the current row */
  size_t blob_len;
  int blob_col;
};

struct WireConn {
  jn_St *stmts;
  Reply **replies;
  int nreplies, cap;
  int cursor;            /* the next reply a step takes */
  int cbcursor;          /* the next recorded callback result (jn_conn.c) */
  int stopped;
  jn_St *pending;        /* the statement that stopped the run (a copy of it) */
  int simple;            /* pending is db:exec's script: no parameters, simple query */
  char status, base;     /* transaction status now, and at the call's start */
  int lost;              /* the transport failed: every statement fails */
  int errcode;
  char sqlstate[6];
  char *errmsg;
  sqlite3_int64 changes;
};

/* {====== Errors */

static int set_error(WireConn *wc, int code, const char *state, const char *msg) {
  size_t n = strlen(msg != NULL ? msg : "");
  char *p = (char *)malloc(n + 1);
  wc->errcode = code;
  if (state != NULL) { strncpy(wc->sqlstate, state, 5); wc->sqlstate[5] = '\0'; }
  else wc->sqlstate[0] = '\0';
  if (p != NULL) memcpy(p, msg != NULL ? msg : "", n + 1);
  free(wc->errmsg);
  wc->errmsg = p;
  return code;
}

/* }====== */

/* {====== Replies */

static void free_reply(Reply *r) {
  int i;
  if (r == NULL) return;
  for (i = 0; i < r->ncols; i++) free(r->names[i]);
  for (i = 0; r->cells != NULL && i < r->nrows * r->ncols; i++) free(r->cells[i]);
  free(r->names);
  free(r->oids);
  free(r->cells);
  free(r->lens);
  free(r->msg);
  free(r->sig);
  free(r);
}

static void drop_blob(jn_St *st) {
  free(st->blob);
  st->blob = NULL;
  st->blob_col = -1;
}

static void reset_st(jn_St *st) {
  drop_blob(st);
  st->stepped = 0;
  st->row = -1;
  st->reply = NULL;
}

static void free_replies(WireConn *wc) {
  jn_St *st;
  int i;
  for (st = wc->stmts; st != NULL; st = st->next) reset_st(st);
  for (i = 0; i < wc->nreplies; i++) free_reply(wc->replies[i]);
  wc->nreplies = 0;
  wc->cursor = 0;
  wc->cbcursor = 0;
}

/*
** The signature of st: what its reply must have answered.  Its text, then
** per parameter a tag ('n' NULL, 'v' a value), its length and its bytes.
** Returns a malloc'd string (*n bytes), or NULL for memory.
*/
static char *sig_of(const jn_St *st, size_t *n) {
  size_t len = strlen(st->text) + 1, k;
  int i;
  char *s;
  for (i = 0; i < st->nparams; i++) len += 1 + 20 + st->params[i].len;
  s = (char *)malloc(len);
  if (s == NULL) return NULL;
  k = strlen(st->text) + 1;
  memcpy(s, st->text, k);
  for (i = 0; i < st->nparams; i++) {
    const Param *p = &st->params[i];
    s[k++] = p->isnull ? 'n' : 'v';
    if (p->isnull) continue;
    k += (size_t)sprintf(s + k, "%zu:", p->len);
    memcpy(s + k, p->buf != NULL ? p->buf : "", p->len);
    k += p->len;
  }
  *n = k;
  return s;
}

/* }====== */

/* {====== Statements */

static void free_st(jn_St *st) {
  int i;
  drop_blob(st);
  for (i = 0; i < st->nparams; i++) free(st->params[i].buf);
  free(st->params);
  free(st->sql);
  free(st->text);
  free(st);
}

/* A statement of sql[0..len) (the first one in it) with nparams
** parameters, not linked; NULL for memory. */
static jn_St *new_st(WireConn *wc, const char *sql, size_t end, size_t n, int nparams) {
  jn_St *st = (jn_St *)calloc(1, sizeof *st);
  int i, nonblank;
  if (st == NULL) return NULL;
  st->wc = wc;
  st->row = -1;
  st->blob_col = -1;
  st->sql = (char *)malloc(end + 1);
  st->text = (char *)malloc(n + 1);
  st->params = (Param *)calloc(nparams > 0 ? (size_t)nparams : 1, sizeof *st->params);
  if (st->sql == NULL || st->text == NULL || st->params == NULL) {
    free_st(st);
    return NULL;
  }
  memcpy(st->sql, sql, end);
  st->sql[end] = '\0';
  jn_pg_scan(sql, end, st->text, NULL, &st->nparams, &nonblank);
  st->text[n] = '\0';
  st->nparams = nparams;
  for (i = 0; i < nparams; i++) st->params[i].isnull = 1;
  st->guard = !jn_pg_txncontrol(st->text);
  return st;
}

static int w_prepare(void *db, const char *sql, size_t len, jn_St **out, size_t *used) {
  WireConn *wc = (WireConn *)db;
  size_t end, n;
  int nparams, nonblank;
  jn_St *st;
  *out = NULL;
  end = jn_pg_scan(sql, len, NULL, &n, &nparams, &nonblank);
  if (used != NULL) *used = end;
  if (!nonblank) return SQLITE_OK;
  st = new_st(wc, sql, end, n, nparams);
  if (st == NULL) return set_error(wc, SQLITE_NOMEM, NULL, "out of memory");
  st->next = wc->stmts;
  if (wc->stmts != NULL) wc->stmts->prev = st;
  wc->stmts = st;
  *out = st;
  return SQLITE_OK;
}

static int w_finalize(jn_St *st) {
  WireConn *wc;
  if (st == NULL) return SQLITE_OK;
  wc = st->wc;
  if (st->prev != NULL) st->prev->next = st->next;
  else wc->stmts = st->next;
  if (st->next != NULL) st->next->prev = st->prev;
  free_st(st);
  return SQLITE_OK;
}

static int w_reset(jn_St *st) { reset_st(st); return SQLITE_OK; }
static int w_busy(jn_St *st) { return st->stepped; }
static const char *w_sql(jn_St *st) { return st->sql; }
static int w_nparams(jn_St *st) { return st->nparams; }

/* The parameter i (1-based), or NULL (out of range: the failure set). */
static Param *param(jn_St *st, int i) {
  if (i < 1 || i > st->nparams) {
    set_error(st->wc, SQLITE_RANGE, NULL, "column index out of range");
    return NULL;
  }
  return &st->params[i - 1];
}

static int nomem(WireConn *wc) { return set_error(wc, SQLITE_NOMEM, NULL, "out of memory"); }

static int w_bind_null(jn_St *st, int i) {
  if (i < 1 || i > st->nparams) return SQLITE_RANGE;
  st->params[i - 1].isnull = 1;
  st->params[i - 1].len = 0;
  return SQLITE_OK;
}

static int w_bind_int64(jn_St *st, int i, sqlite3_int64 v) {
  Param *p = param(st, i);
  if (p == NULL) return st->wc->errcode;
  return jn_pg_int64(p, v) ? SQLITE_OK : nomem(st->wc);
}

static int w_bind_double(jn_St *st, int i, double v) {
  Param *p = param(st, i);
  if (p == NULL) return st->wc->errcode;
  return jn_pg_double(p, v) ? SQLITE_OK : nomem(st->wc);
}

/* text holding a NUL is refused at the step (jn_PgParam.nul), as jn_pg.c does */
static int w_bind_text(jn_St *st, int i, const char *s, size_t n) {
  Param *p = param(st, i);
  if (p == NULL) return st->wc->errcode;
  return jn_pg_text(p, s, n) ? SQLITE_OK : nomem(st->wc);
}

/* A blob as bytea's text format: \x and two hex digits a byte. */
static int w_bind_blob(jn_St *st, int i, const void *s, size_t n) {
  static const char hex[] = "0123456789abcdef";
  const unsigned char *b = (const unsigned char *)s;
  Param *p = param(st, i);
  size_t k;
  if (p == NULL) return st->wc->errcode;
  if (!jn_pg_room(p, 2 * n + 2)) return nomem(st->wc);
  p->buf[0] = '\\';
  p->buf[1] = 'x';
  for (k = 0; k < n; k++) {
    p->buf[2 + 2 * k] = hex[b[k] >> 4];
    p->buf[3 + 2 * k] = hex[b[k] & 15];
  }
  p->len = 2 * n + 2;
  p->buf[p->len] = '\0';
  return SQLITE_OK;
}

/* }====== */

/* {====== Stepping: answered, or stopped */

/* Is the first word of s (blanks skipped) w, in any case? */
static int word_is(const char *s, const char *w, const char **after) {
  size_t n = strlen(w), k;
  while (*s == ' ' || *s == '\n' || *s == '\t' || *s == '\r') s++;
  for (k = 0; k < n; k++)
    if (s[k] == '\0' || (s[k] & ~0x20) != w[k]) return 0;
  if ((s[n] >= 'A' && s[n] <= 'Z') || (s[n] >= 'a' && s[n] <= 'z') || s[n] == '_') return 0;
  if (after != NULL) *after = s + n;
  return 1;
}

/* The transaction status after r answered st, when the reply does not say
** (a transport that reads no ReadyForQuery): from the statement's kind. */
static char status_after(const WireConn *wc, const jn_St *st, const Reply *r) {
  const char *s = st->text, *rest;
  if (r->status != 0) return r->status;
  if (st->guard || r->code != SQLITE_OK) return wc->status;
  if (word_is(s, "BEGIN", NULL) || word_is(s, "START", NULL)) return 'T';
  if (word_is(s, "ROLLBACK", &rest) || word_is(s, "ABORT", &rest))
    return word_is(rest, "TO", NULL) ? wc->status : 'I';
  if (word_is(s, "COMMIT", NULL) || word_is(s, "END", NULL)) return 'I';
  return wc->status;
}

/* Stop the run at st: keep a copy of it as the pending statement. */
static int stop_at(WireConn *wc, jn_St *st) {
  jn_St *p = new_st(wc, st->sql, strlen(st->sql), strlen(st->text), st->nparams);
  int i;
  wc->stopped = 1;
  if (p == NULL) { wc->lost = 1; return set_error(wc, SQLITE_NOMEM, NULL, "out of memory"); }
  for (i = 0; i < st->nparams; i++) {
    if (st->params[i].isnull) continue;
    if (!jn_pg_room(&p->params[i], st->params[i].len)) { free_st(p); wc->lost = 1; return nomem(wc); }
    memcpy(p->params[i].buf, st->params[i].buf, st->params[i].len + 1);
    p->params[i].len = st->params[i].len;
  }
  p->guard = st->guard;
  free(p->text);   /* db:exec's script is sent as it is, never rewritten */
  p->text = (char *)malloc(strlen(st->text) + 1);
  if (p->text == NULL) { free_st(p); wc->lost = 1; return SQLITE_NOMEM; }
  memcpy(p->text, st->text, strlen(st->text) + 1);
  if (wc->pending != NULL) free_st(wc->pending);
  wc->pending = p;
  wc->simple = 0;
  return set_error(wc, SQLITE_ABORT, NULL, "junction: this call needs the server's reply "
                   "(a wire connection's methods run through lua/junction/wire.lua)");
}

/* Take the next reply for st: SQLITE_OK, or the failure (its own or a mismatch). */
static int take_reply(WireConn *wc, jn_St *st) {
  Reply *r = wc->replies[wc->cursor];
  size_t n = 0;
  char *sig = sig_of(st, &n);
  int same = sig != NULL && n == r->siglen && memcmp(sig, r->sig, n) == 0;
  free(sig);
  if (!same) {
    wc->lost = 1;
    return set_error(wc, SQLITE_ERROR, NULL, "junction: the wire call ran another statement "
                     "than the reply answered (a transport that answered out of order?)");
  }
  wc->cursor++;
  wc->status = status_after(wc, st, r);
  if (r->code != SQLITE_OK) return set_error(wc, r->code, r->sqlstate, r->msg);
  if (r->changes >= 0) wc->changes = r->changes;
  st->reply = r;
  return SQLITE_OK;
}

static int first_step(WireConn *wc, jn_St *st) {
  int i, rc;
  st->stepped = 1;
  for (i = 0; i < st->nparams; i++)
    if (!st->params[i].isnull && st->params[i].nul)
      return set_error(wc, SQLITE_ERROR, "22021", "invalid byte sequence for encoding \"UTF8\": "
                       "0x00 (text cannot hold a NUL byte)");
  if (wc->cursor < wc->nreplies) {
    rc = take_reply(wc, st);
    return rc == SQLITE_OK ? -1 : rc;
  }
  return stop_at(wc, st);
}

static int w_step(jn_St *st) {
  WireConn *wc = st->wc;
  if (wc->lost && !wc->stopped)
    return set_error(wc, SQLITE_IOERR, NULL, wc->errmsg != NULL && wc->errmsg[0] ? wc->errmsg
                     : "the wire transport failed");
  if (wc->stopped) return SQLITE_ABORT;   /* unwinding after the stop: nothing recorded */
  if (!st->stepped) {
    int rc = first_step(wc, st);
    if (rc != -1) return rc;
  }
  if (st->reply == NULL) return SQLITE_MISUSE;
  drop_blob(st);
  if (st->row + 1 < st->reply->nrows) { st->row++; return SQLITE_ROW; }
  st->row = st->reply->nrows;
  return SQLITE_DONE;
}

/* }====== */

/* {====== Columns */

/* The reply st will read its columns from: its own, or before its first
** step the next reply when that one answers it (db:query names the
** columns first). */
static const Reply *columns_of(jn_St *st) {
  WireConn *wc = st->wc;
  if (st->reply != NULL) return st->reply;
  if (!st->stepped && !wc->stopped && wc->cursor < wc->nreplies) return wc->replies[wc->cursor];
  return NULL;
}

static int w_ncols(jn_St *st) {
  const Reply *r = columns_of(st);
  return r != NULL ? r->ncols : 0;
}

static const char *w_colname(jn_St *st, int col) {
  const Reply *r = columns_of(st);
  return r != NULL && col >= 0 && col < r->ncols ? r->names[col] : NULL;
}

static const char *cell(jn_St *st, int col, size_t *len) {
  const Reply *r = st->reply;
  size_t k;
  if (r == NULL || st->row < 0 || st->row >= r->nrows || col < 0 || col >= r->ncols) return NULL;
  k = (size_t)st->row * (size_t)r->ncols + (size_t)col;
  if (len != NULL) *len = r->lens[k];
  return r->cells[k];
}

static int ctype(jn_St *st, int col) { return st->reply->oids[col]; }

static int w_coltype(jn_St *st, int col) {
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

static sqlite3_int64 w_col_int64(jn_St *st, int col) {
  const char *s = cell(st, col, NULL);
  int t;
  if (s == NULL) return 0;
  t = ctype(st, col);
  if (t == OID_BOOL) return s[0] == 't';
  if (t == OID_FLOAT4 || t == OID_FLOAT8 || t == OID_NUMERIC) return (sqlite3_int64)strtod(s, NULL);
  return (sqlite3_int64)strtoll(s, NULL, 10);
}

static double w_col_double(jn_St *st, int col) {
  const char *s = cell(st, col, NULL);
  if (s == NULL) return 0.0;
  if (ctype(st, col) == OID_BOOL) return s[0] == 't' ? 1.0 : 0.0;
  return strtod(s, NULL);
}

static int hexval(char ch) {
  if (ch >= '0' && ch <= '9') return ch - '0';
  if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
  if (ch >= 'A' && ch <= 'F') return ch - 'A' + 10;
  return -1;
}

/* bytea's hex text (\x...) decoded into st->blob; NULL when it is not that. */
static const void *unhex(jn_St *st, int col, const char *s, size_t len, size_t *n) {
  size_t k;
  if (st->blob_col == col) { *n = st->blob_len; return st->blob; }
  drop_blob(st);
  if (len < 2 || s[0] != '\\' || s[1] != 'x' || (len & 1)) return NULL;
  st->blob = (unsigned char *)malloc(len / 2 > 0 ? len / 2 : 1);
  if (st->blob == NULL) return NULL;
  for (k = 2; k < len; k += 2) {
    int hi = hexval(s[k]), lo = hexval(s[k + 1]);
    if (hi < 0 || lo < 0) { drop_blob(st); return NULL; }
    st->blob[(k - 2) / 2] = (unsigned char)(hi * 16 + lo);
  }
  st->blob_len = (len - 2) / 2;
  st->blob_col = col;
  *n = st->blob_len;
  return st->blob;
}

static const void *w_col_bytes(jn_St *st, int col, size_t *n) {
  size_t len = 0;
  const char *s = cell(st, col, &len);
  *n = 0;
  if (s == NULL) return NULL;
  if (ctype(st, col) == OID_BYTEA) return unhex(st, col, s, len, n);
  if (ctype(st, col) == OID_BOOL) { *n = 1; return s[0] == 't' ? "1" : "0"; }
  *n = len;
  return s;
}

/* }====== */

/* {====== The connection */

static sqlite3_int64 w_changes(void *db) { return ((WireConn *)db)->changes; }
/* INSERT reports its key by RETURNING on this dialect; lastval() would be
** one more round trip a caller cannot wait for: not known. */
static sqlite3_int64 w_last_id(void *db) { (void)db; return 0; }
static int w_autocommit(void *db) { return ((WireConn *)db)->status == 'I'; }
static int w_errcode(void *db) { return ((WireConn *)db)->errcode; }
static const char *w_errmsg(void *db) {
  WireConn *wc = (WireConn *)db;
  return wc->errmsg != NULL ? wc->errmsg : "not an error";
}
static const char *w_sqlstate(void *db) {
  WireConn *wc = (WireConn *)db;
  return wc->sqlstate[0] != '\0' ? wc->sqlstate : NULL;
}

/* db:exec's script: one statement of its own, sent as a simple query. */
static int w_exec(void *db, const char *sql) {
  WireConn *wc = (WireConn *)db;
  jn_St *st;
  int rc;
  size_t n = strlen(sql);
  if (wc->lost && !wc->stopped) return set_error(wc, SQLITE_IOERR, NULL, "the wire transport failed");
  if (wc->stopped) return SQLITE_ABORT;
  st = (jn_St *)calloc(1, sizeof *st);
  if (st == NULL) return set_error(wc, SQLITE_NOMEM, NULL, "out of memory");
  st->wc = wc;
  st->row = -1;
  st->blob_col = -1;
  st->sql = (char *)malloc(n + 1);
  st->text = (char *)malloc(n + 1);
  if (st->sql == NULL || st->text == NULL) { free_st(st); return set_error(wc, SQLITE_NOMEM, NULL, "out of memory"); }
  memcpy(st->sql, sql, n + 1);
  memcpy(st->text, sql, n + 1);
  st->guard = !jn_pg_txncontrol(sql);
  rc = first_step(wc, st);
  if (wc->stopped && wc->pending != NULL) wc->simple = 1;
  free_st(st);
  return rc == -1 ? SQLITE_OK : rc;
}

static void w_finalize_all(void *db) {
  WireConn *wc = (WireConn *)db;
  while (wc->stmts != NULL) w_finalize(wc->stmts);
}

static int w_close(void *db) {
  WireConn *wc = (WireConn *)db;
  w_finalize_all(db);
  free_replies(wc);
  free(wc->replies);
  if (wc->pending != NULL) free_st(wc->pending);
  free(wc->errmsg);
  free(wc);
  return SQLITE_OK;
}

void *jn_wire_open(void) {
  WireConn *wc = (WireConn *)calloc(1, sizeof *wc);
  if (wc == NULL) return NULL;
  wc->status = wc->base = 'I';
  return wc;
}

int jn_wire_stopped(void *db) { return ((WireConn *)db)->stopped; }
/* The next step is answered from a reply (the log function saw it already). */
int jn_wire_replaying(void *db) {
  WireConn *wc = (WireConn *)db;
  return wc->cursor < wc->nreplies;
}
int *jn_wire_cbcursor(void *db) { return &((WireConn *)db)->cbcursor; }
int jn_wire_cursor(void *db) { return ((WireConn *)db)->cursor; }
void jn_wire_skip(void *db, int n) { ((WireConn *)db)->cursor += n; }

/* A user's call begins: no replies yet. */
void jn_wire_begin(void *db) {
  WireConn *wc = (WireConn *)db;
  free_replies(wc);
  wc->stopped = 0;
  wc->base = wc->status;
}

/* Run the call again from its start, with the replies so far. */
void jn_wire_rewind(void *db) {
  WireConn *wc = (WireConn *)db;
  jn_St *st;
  for (st = wc->stmts; st != NULL; st = st->next) reset_st(st);
  wc->cursor = 0;
  wc->cbcursor = 0;
  wc->stopped = 0;
  wc->status = wc->base;
}

/* The user's call ended (finished, failed, or given up). */
void jn_wire_end(void *db) {
  WireConn *wc = (WireConn *)db;
  free_replies(wc);
  if (wc->stopped) wc->status = wc->base == 'I' ? 'I' : wc->status;
  wc->stopped = 0;
  if (wc->pending != NULL) { free_st(wc->pending); wc->pending = NULL; }
  wc->base = wc->status;
}

/* The transport failed: the session is gone, and with it any transaction. */
void jn_wire_lose(void *db, const char *msg) {
  WireConn *wc = (WireConn *)db;
  wc->lost = 1;
  wc->stopped = 0;
  wc->status = wc->base = 'I';
  set_error(wc, SQLITE_IOERR, "08006", msg);
}

/* }====== */

/* {====== The Lua side of a stop: the pending statement, the reply */

/* Push { sql =, params = { n =, ... }, guard =, simple =, status = }, or
** nothing (returns 0) when the run did not stop. [-0, +(0|1), m] */
int jn_wire_pushpending(lua_State *L, void *db) {
  WireConn *wc = (WireConn *)db;
  jn_St *p = wc->pending;
  int i;
  char status[2];
  if (!wc->stopped || p == NULL) return 0;
  lua_createtable(L, 0, 5);
  lua_pushstring(L, p->text);
  lua_setfield(L, -2, "sql");
  lua_createtable(L, p->nparams, 1);
  for (i = 0; i < p->nparams; i++) {
    if (p->params[i].isnull) continue;
    lua_pushlstring(L, p->params[i].buf, p->params[i].len);
    lua_rawseti(L, -2, i + 1);
  }
  lua_pushinteger(L, p->nparams);
  lua_setfield(L, -2, "n");
  lua_setfield(L, -2, "params");
  lua_pushboolean(L, p->guard);
  lua_setfield(L, -2, "guard");
  lua_pushboolean(L, wc->simple);
  lua_setfield(L, -2, "simple");
  status[0] = wc->status;
  status[1] = '\0';
  lua_pushstring(L, status);
  lua_setfield(L, -2, "status");
  return 1;
}

/* The string of field k of the table at idx, or NULL. [-0, +0, -] */
static const char *str_field(lua_State *L, int idx, const char *k, size_t *n) {
  const char *s;
  lua_pushstring(L, k);
  lua_rawget(L, idx);
  s = lua_type(L, -1) == LUA_TSTRING ? lua_tolstring(L, -1, n) : NULL;
  lua_pop(L, 1);   /* the string stays alive in the table */
  return s;
}

static char *dup(const char *s, size_t n) {
  char *p = (char *)malloc(n + 1);
  if (p != NULL) { memcpy(p, s, n); p[n] = '\0'; }
  return p;
}

/* The column names and type OIDs of the reply at idx. NULL or an error. */
static const char *read_columns(lua_State *L, int idx, Reply *r) {
  int i, n;
  lua_pushliteral(L, "columns");
  lua_rawget(L, idx);
  if (lua_isnil(L, -1)) { lua_pop(L, 1); return NULL; }
  if (!lua_istable(L, -1)) return "'columns' is not a table";
  n = (int)lua_rawlen(L, -1);
  if (n > 4096) return "more than 4096 columns";
  r->names = (char **)calloc(n > 0 ? (size_t)n : 1, sizeof *r->names);
  r->oids = (int *)calloc(n > 0 ? (size_t)n : 1, sizeof *r->oids);
  if (r->names == NULL || r->oids == NULL) return "out of memory";
  lua_pushliteral(L, "types");
  lua_rawget(L, idx);
  for (i = 0; i < n; i++) {
    size_t len = 0;
    const char *s;
    lua_rawgeti(L, -2, i + 1);
    if (lua_type(L, -1) != LUA_TSTRING) return "a column name is not a string";
    s = lua_tolstring(L, -1, &len);
    r->names[i] = dup(s, len);
    r->ncols = i + 1;
    lua_pop(L, 1);
    if (r->names[i] == NULL) return "out of memory";
    if (lua_istable(L, -1)) {
      lua_rawgeti(L, -1, i + 1);
      r->oids[i] = lua_type(L, -1) == LUA_TNUMBER ? (int)lua_tointeger(L, -1) : 25;
      lua_pop(L, 1);
    } else {
      r->oids[i] = 25;   /* text */
    }
  }
  lua_pop(L, 2);
  return NULL;
}

/* The rows of the reply at idx (arrays of strings or nil). */
static const char *read_rows(lua_State *L, int idx, Reply *r) {
  int i, j, n;
  lua_pushliteral(L, "rows");
  lua_rawget(L, idx);
  if (lua_isnil(L, -1)) { lua_pop(L, 1); return NULL; }
  if (!lua_istable(L, -1)) return "'rows' is not a table";
  n = (int)lua_rawlen(L, -1);
  if (n > 0 && r->ncols == 0) return "rows without columns";
  r->cells = (char **)calloc((size_t)n * (size_t)r->ncols + 1, sizeof *r->cells);
  r->lens = (size_t *)calloc((size_t)n * (size_t)r->ncols + 1, sizeof *r->lens);
  if (r->cells == NULL || r->lens == NULL) return "out of memory";
  for (i = 0; i < n; i++) {
    lua_rawgeti(L, -1, i + 1);
    if (!lua_istable(L, -1)) return "a row is not a table";
    r->nrows = i + 1;
    for (j = 0; j < r->ncols; j++) {
      size_t k = (size_t)i * (size_t)r->ncols + (size_t)j, len;
      lua_rawgeti(L, -1, j + 1);
      if (lua_type(L, -1) == LUA_TSTRING) {
        const char *s = lua_tolstring(L, -1, &len);
        r->cells[k] = dup(s, len);
        r->lens[k] = len;
        if (r->cells[k] == NULL) return "out of memory";
      } else if (!lua_isnil(L, -1)) {
        return "a value is neither a string nor nil";
      }
      lua_pop(L, 1);
    }
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
  return NULL;
}

/* The failure of the reply at idx: error = { sqlstate =, message = }. */
static const char *read_error(lua_State *L, int idx, Reply *r) {
  const char *s;
  size_t n;
  lua_pushliteral(L, "error");
  lua_rawget(L, idx);
  if (lua_isnil(L, -1)) { lua_pop(L, 1); return NULL; }
  if (!lua_istable(L, -1)) return "'error' is not a table";
  s = str_field(L, lua_gettop(L), "sqlstate", &n);
  if (s != NULL) { strncpy(r->sqlstate, s, 5); r->sqlstate[5] = '\0'; }
  r->code = jn_pg_mapstate(r->sqlstate);
  s = str_field(L, lua_gettop(L), "message", &n);
  r->msg = dup(s != NULL ? s : "the server reported an error", s != NULL ? n : 28);
  lua_pop(L, 1);
  return r->msg == NULL ? "out of memory" : NULL;
}

static const char *read_reply(lua_State *L, int idx, Reply *r) {
  const char *err, *s;
  size_t n;
  if ((err = read_error(L, idx, r)) != NULL) return err;
  if ((err = read_columns(L, idx, r)) != NULL) return err;
  if ((err = read_rows(L, idx, r)) != NULL) return err;
  lua_pushliteral(L, "changes");
  lua_rawget(L, idx);
  r->changes = lua_type(L, -1) == LUA_TNUMBER ? (sqlite3_int64)lua_tonumber(L, -1) : -1;
  lua_pop(L, 1);
  s = str_field(L, idx, "status", &n);
  if (s != NULL && n == 1 && (s[0] == 'I' || s[0] == 'T' || s[0] == 'E')) r->status = s[0];
  return NULL;
}

/*
** The reply at idx answers the pending statement: keep it, for the run
** that comes next.  Returns 1, or 0 with *err (the reply is refused: not
** a table, a value of the wrong type; nothing is kept).
** [-0, +0, m]
*/
int jn_wire_answer(lua_State *L, void *db, int idx, const char **err) {
  WireConn *wc = (WireConn *)db;
  Reply *r;
  int top = lua_gettop(L);
  *err = NULL;
  if (!wc->stopped || wc->pending == NULL) { *err = "no statement is waiting for a reply"; return 0; }
  if (!lua_istable(L, idx)) { *err = "the reply is not a table"; return 0; }
  if (wc->nreplies == wc->cap) {
    int cap = wc->cap ? wc->cap * 2 : 8;
    Reply **p = (Reply **)realloc(wc->replies, (size_t)cap * sizeof *p);
    if (p == NULL) { *err = "out of memory"; return 0; }
    wc->replies = p;
    wc->cap = cap;
  }
  r = (Reply *)calloc(1, sizeof *r);
  if (r == NULL) { *err = "out of memory"; return 0; }
  r->sig = sig_of(wc->pending, &r->siglen);
  *err = r->sig == NULL ? "out of memory" : read_reply(L, idx, r);
  lua_settop(L, top);
  if (*err != NULL) { free_reply(r); return 0; }
  wc->replies[wc->nreplies++] = r;
  return 1;
}

/* }====== */

const jn_Engine jn_wire_engine = {
  "postgres",
  w_prepare, w_finalize, w_step, w_reset, w_busy, w_sql, w_nparams,
  w_bind_null, w_bind_int64, w_bind_double, w_bind_text, w_bind_blob,
  w_ncols, w_colname, w_coltype, w_col_int64, w_col_double, w_col_bytes,
  w_changes, w_last_id, w_autocommit, w_errcode, w_errmsg, w_sqlstate,
  w_exec, w_finalize_all, w_close
};

#endif /* JN_WITH_PG */
