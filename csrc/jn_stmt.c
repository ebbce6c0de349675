/*
** jn_stmt.c: statements: the per-connection cache, binding values and
** converting them to their field's type, reading columns into Lua values,
** and the growable SQL text buffer everything else builds its SQL in.
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
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

/* Generic statements kept per connection before the cache is pruned. */
#define JN_CACHE_MAX 256

/* {====== SQL text buffer */

void jn_buf_init(lua_State *L, jn_Buf *b) {
  b->cap = 256;
  b->n = 0;
  b->p = (char *)lua_newuserdata(L, b->cap);
  b->idx = lua_gettop(L);
}

/*
** Make room for need more bytes (and a NUL): a larger userdata replaces the
** old one in its stack slot, so the memory always belongs to Lua.
*/
static void buf_reserve(lua_State *L, jn_Buf *b, size_t need) {
  size_t cap;
  char *p;
  if (b->n + need + 1 <= b->cap) return;
  cap = b->cap * 2;
  while (cap < b->n + need + 1) cap *= 2;
  p = (char *)lua_newuserdata(L, cap);
  memcpy(p, b->p, b->n);
  lua_replace(L, b->idx);
  b->p = p;
  b->cap = cap;
}

void jn_buf_addl(lua_State *L, jn_Buf *b, const char *s, size_t len) {
  buf_reserve(L, b, len);
  memcpy(b->p + b->n, s, len);
  b->n += len;
}

void jn_buf_adds(lua_State *L, jn_Buf *b, const char *s) {
  jn_buf_addl(L, b, s, strlen(s));
}

/*
** Append alias."name" (or "name" without an alias).  Names come only from
** declarations, which jn_check_ident has vetted, so there is no quote in
** them to double.
*/
void jn_buf_addident(lua_State *L, jn_Buf *b, const char *alias, const char *name) {
  size_t len = strlen(name);
  if (alias != NULL) {
    jn_buf_adds(L, b, alias);
    jn_buf_addl(L, b, ".", 1);
  }
  buf_reserve(L, b, len + 2);
  b->p[b->n++] = '"';
  memcpy(b->p + b->n, name, len);
  b->n += len;
  b->p[b->n++] = '"';
}

void jn_buf_addint(lua_State *L, jn_Buf *b, long long v) {
  char tmp[32];
  int n = snprintf(tmp, sizeof tmp, "%lld", v);
  jn_buf_addl(L, b, tmp, (size_t)n);
}

/* The text so far, NUL-terminated; valid until the next append. */
const char *jn_buf_cstr(lua_State *L, jn_Buf *b) {
  buf_reserve(L, b, 0);
  b->p[b->n] = '\0';
  return b->p;
}

/* }====== */

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
  jn_St *st = NULL;
  int cacheidx;
  if (c->log_ref != LUA_NOREF) { check_not_logging(L, c); log_reset(L, c); }
  lua_rawgeti(L, LUA_REGISTRYINDEX, c->cache_ref);
  cacheidx = lua_gettop(L);
  lua_pushlstring(L, sql, len);
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
  *rc = jn_e_prepare(c->eng, c->db, sql, len, &st, NULL);
  if (*rc != SQLITE_OK || st == NULL) {
    lua_pop(L, 1);
    return NULL;
  }
  lua_pushlstring(L, sql, len);
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
  jn_St *st;
  int i;
#ifdef JN_WITH_PG
  if (c->eng != NULL) c->eng->finalize_all(c->db);
  else
#endif
  while ((st = (jn_St *)(void *)sqlite3_next_stmt((sqlite3 *)c->db, NULL)) != NULL)
    jn_e_finalize(c->eng, st);
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
** Read an integer written out in decimal, the whole string: how a key
** beyond 2^53 travels on Lua 5.1.  Returns 1 and sets *out on success.
*/
static int parse_i64(const char *s, size_t len, sqlite3_int64 *out) {
  size_t i = 0;
  int neg = 0;
  unsigned long long v = 0;
  if (len == 0 || len > 20) return 0;
  if (s[0] == '-') { neg = 1; i = 1; }
  if (i == len) return 0;
  for (; i < len; i++) {
    if (s[i] < '0' || s[i] > '9') return 0;
    v = v * 10 + (unsigned long long)(s[i] - '0');
    if (v > 9223372036854775808ULL) return 0;
  }
  if (!neg && v > 9223372036854775807ULL) return 0;
  *out = neg ? (sqlite3_int64)(0 - v) : (sqlite3_int64)v;
  return 1;
}

/*
** The value at idx as an exact 64-bit integer: an integral number, or (for
** keys beyond 2^53 on Lua 5.1) a decimal string.  Returns 0 otherwise.
*/
int jn_to_i64(lua_State *L, int idx, sqlite3_int64 *out) {
  if (lua_type(L, idx) == LUA_TNUMBER) {
    if (lua_isinteger(L, idx)) {
#if JN_LUA51
      *out = (sqlite3_int64)lua_tonumber(L, idx);
#else
      *out = (sqlite3_int64)lua_tointeger(L, idx);
#endif
      return 1;
    }
    return 0;
  }
  if (lua_type(L, idx) == LUA_TSTRING) {
    size_t len;
    const char *s = lua_tolstring(L, idx, &len);
    return parse_i64(s, len, out);
  }
  return 0;
}

/* Write v as n decimal digits, zero-padded. */
static void put_digits(char *out, int v, int n) {
  while (n-- > 0) { out[n] = (char)('0' + v % 10); v /= 10; }
}

static size_t format_epoch(double secs, char *out);

/* Can a number be stored in a DATE field (a time between the years 1 and 9999)? */
int jn_epoch_ok(double secs) {
  char tmp[32];
  return format_epoch(secs, tmp) != 0;
}

/*
** Seconds since the epoch as UTC text, "YYYY-MM-DD HH:MM:SS.mmm" (23 bytes),
** for years 1 to 9999; 0 for anything else (NaN, infinities, 1e300), which
** the caller rejects as a bad value.
*/
static size_t format_epoch(double secs, char *out) {
  time_t t;
  struct tm tm;
  int ms;
  if (!(secs >= -62135596800.0 && secs < 253402300800.0)) return 0;
  t = (time_t)secs;
  if ((double)t > secs) t -= 1;   /* floor, also before 1970 */
  ms = (int)((secs - (double)t) * 1000.0 + 0.5);
  if (ms >= 1000) { t += 1; ms -= 1000; }
  if (ms < 0) ms = 0;
  if (gmtime_r(&t, &tm) == NULL || tm.tm_year + 1900 < 1 || tm.tm_year + 1900 > 9999) return 0;
  put_digits(out, tm.tm_year + 1900, 4);
  out[4] = '-';
  put_digits(out + 5, tm.tm_mon + 1, 2);
  out[7] = '-';
  put_digits(out + 8, tm.tm_mday, 2);
  out[10] = ' ';
  put_digits(out + 11, tm.tm_hour, 2);
  out[13] = ':';
  put_digits(out + 14, tm.tm_min, 2);
  out[16] = ':';
  put_digits(out + 17, tm.tm_sec, 2);
  out[19] = '.';
  put_digits(out + 20, ms, 3);
  out[23] = '\0';
  return 23;
}

/*
** The current UTC time as "YYYY-MM-DD HH:MM:SS.mmm" (23 bytes and a NUL),
** one clock reading per call.  The date and time of day are formatted once
** per second and kept in the connection (every row written takes a stamp,
** and gmtime plus printf would cost more than the row's binding).
*/
size_t jn_timestamp(jn_Conn *c, char *out) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  if ((long long)ts.tv_sec != c->ts_sec || c->ts_text[0] == '\0') {
    struct tm tm;
    time_t t = ts.tv_sec;
    gmtime_r(&t, &tm);
    put_digits(c->ts_text, tm.tm_year + 1900, 4);
    c->ts_text[4] = '-';
    put_digits(c->ts_text + 5, tm.tm_mon + 1, 2);
    c->ts_text[7] = '-';
    put_digits(c->ts_text + 8, tm.tm_mday, 2);
    c->ts_text[10] = ' ';
    put_digits(c->ts_text + 11, tm.tm_hour, 2);
    c->ts_text[13] = ':';
    put_digits(c->ts_text + 14, tm.tm_min, 2);
    c->ts_text[16] = ':';
    put_digits(c->ts_text + 17, tm.tm_sec, 2);
    c->ts_text[19] = '\0';
    c->ts_sec = (long long)ts.tv_sec;
  }
  memcpy(out, c->ts_text, 19);
  out[19] = '.';
  put_digits(out + 20, (int)(ts.tv_nsec / 1000000), 3);
  out[23] = '\0';
  return 23;
}

/*
** Is s[0..n) well-formed UTF-8?  A string that is not is bytes: an untyped
** value (db:query, a where on no declared type) binds it as a BLOB.
*/
int jn_is_utf8(const char *str, size_t n) {
  const unsigned char *s = (const unsigned char *)str;
  size_t i = 0;
  while (i < n) {
    unsigned char ch = s[i];
    size_t k, need;
    if (ch < 0x80) { i++; continue; }
    if (ch >= 0xC2 && ch <= 0xDF) need = 1;
    else if (ch >= 0xE0 && ch <= 0xEF) need = 2;
    else if (ch >= 0xF0 && ch <= 0xF4) need = 3;
    else return 0;
    for (k = 1; k <= need; k++)
      if (i + k >= n || (s[i + k] & 0xC0) != 0x80) return 0;
    i += need + 1;
  }
  return 1;
}

/* {====== JSON values
**
** The JSON type stores a Lua value as JSON text and reads it back as Lua
** values.  junction carries its own small codec rather than lua-cjson:
** Debian's lua-cjson (2.1.0) cannot write an empty array ([]) and has no
** way to mark one, it is an optional module on some runtimes, and the
** text a field stores must not depend on which JSON module happens to be
** installed.  The shapes:
**   object  a table whose keys are all strings (written with the keys
**           sorted, so equal tables store equal text); an empty table
**           with no marker is {}
**   array   a table whose keys are exactly 1..n (n > 0), or any table
**           whose metatable is the array marker (registry JN_ARRAY_MT,
**           junction.array): empty, that is []
**   null    junction.null (a Lua table cannot hold nil)
**   numbers, strings (UTF-8), true, false as themselves
** Reading gives objects as plain tables, arrays as tables carrying the
** array marker (so they are written back as arrays, [] included), null as
** junction.null, integers as integers: decode(encode(v)) equals v.
*/

#define JSON_MAX_DEPTH 128
#define JSON_MAX_VALUES 10000000   /* a table shared many times over must not write forever */

/* Append the string at idx as a JSON string.  NULL, or why it cannot be. */
static const char *json_add_string(lua_State *L, jn_Buf *b, int idx) {
  size_t n, i, run = 0;
  const char *s = lua_tolstring(L, idx, &n);
  if (!jn_is_utf8(s, n)) return "holds a string that is not UTF-8 text";
  jn_buf_addl(L, b, "\"", 1);
  for (i = 0; i < n; i++) {
    unsigned char ch = (unsigned char)s[i];
    const char *esc = NULL;
    char tmp[8];
    if (ch == '"') esc = "\\\"";
    else if (ch == '\\') esc = "\\\\";
    else if (ch == '\n') esc = "\\n";
    else if (ch == '\r') esc = "\\r";
    else if (ch == '\t') esc = "\\t";
    else if (ch < 0x20) {
      snprintf(tmp, sizeof tmp, "\\u%04x", ch);
      esc = tmp;
    }
    if (esc == NULL) { run++; continue; }
    jn_buf_addl(L, b, s + i - run, run);
    run = 0;
    jn_buf_adds(L, b, esc);
  }
  jn_buf_addl(L, b, s + n - run, run);
  jn_buf_addl(L, b, "\"", 1);
  return NULL;
}

/* Append the number at idx.  NULL, or why it cannot be (NaN, infinity). */
static const char *json_add_number(lua_State *L, jn_Buf *b, int idx) {
  char tmp[64];
  double d = (double)lua_tonumber(L, idx);
  int p;
  char *comma;
#if !JN_LUA51
  if (lua_isinteger(L, idx)) {
    jn_buf_addint(L, b, (long long)lua_tointeger(L, idx));
    return NULL;
  }
#endif
  if (d - d != 0.0) return "holds a number JSON cannot write (NaN or infinity)";
  if (d == (double)(long long)d && d > -9007199254740992.0 && d < 9007199254740992.0) {
    jn_buf_addint(L, b, (long long)d);
    return NULL;
  }
  for (p = 15; p <= 17; p++) {   /* the shortest text that reads back the same */
    snprintf(tmp, sizeof tmp, "%.*g", p, d);
    if ((comma = strchr(tmp, ',')) != NULL) *comma = '.';   /* a C locale's decimal comma */
    if (strtod(tmp, NULL) == d || p == 17) break;
  }
  jn_buf_adds(L, b, tmp);
  return NULL;
}

/* Is the table at idx marked as an array (the array marker, or a List)? */
static int json_marked_array(lua_State *L, int idx) {
  int marked = 0;
  if (!lua_getmetatable(L, idx)) return 0;
  lua_getfield(L, LUA_REGISTRYINDEX, JN_ARRAY_MT);
  marked = lua_rawequal(L, -1, -2);
  lua_pop(L, 1);
  if (!marked) {
    luaL_getmetatable(L, JN_LIST_MT);
    marked = lua_rawequal(L, -1, -2);
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
  return marked;
}

/* Order of two object keys (strings, by bytes). */
typedef struct json_Key { const char *s; size_t n; } json_Key;
static int json_key_cmp(const void *a, const void *b) {
  const json_Key *x = (const json_Key *)a, *y = (const json_Key *)b;
  int c = memcmp(x->s, y->s, x->n < y->n ? x->n : y->n);
  return c != 0 ? c : (x->n < y->n ? -1 : x->n > y->n);
}

static const char *json_add(lua_State *L, jn_Buf *b, int idx, int depth, long *budget);

/* Append the table at idx as an array or an object. */
static const char *json_add_table(lua_State *L, jn_Buf *b, int idx, int depth, long *budget) {
  size_t count = 0, nstr = 0, k;
  double maxint = 0;
  int marked = json_marked_array(L, idx);
  const char *why;
  json_Key *keys;
  lua_pushnil(L);
  while (lua_next(L, idx) != 0) {
    lua_pop(L, 1);
    count++;
    if (lua_type(L, -1) == LUA_TSTRING) nstr++;
    else if (lua_type(L, -1) == LUA_TNUMBER) {
      double d = (double)lua_tonumber(L, -1);
      if (d >= 1 && d == (double)(long long)d && d > maxint) maxint = d;
    }
  }
  if (marked || (count > 0 && nstr == 0 && maxint == (double)count)) {
    size_t i;
    if (maxint != (double)count)
      return "is an array (junction.array) with keys that are not 1..n";
    jn_buf_addl(L, b, "[", 1);
    for (i = 1; i <= count; i++) {
      if (i > 1) jn_buf_addl(L, b, ",", 1);
      lua_rawgeti(L, idx, (lua_Integer)i);
      why = json_add(L, b, lua_gettop(L), depth + 1, budget);
      lua_pop(L, 1);
      if (why != NULL) return why;
    }
    jn_buf_addl(L, b, "]", 1);
    return NULL;
  }
  if (nstr != count)
    return "is a table that is neither an array (keys 1..n) nor an object (string keys)";
  keys = (json_Key *)lua_newuserdata(L, (count ? count : 1) * sizeof(json_Key));
  k = 0;
  lua_pushnil(L);
  while (lua_next(L, idx) != 0) {   /* the keys stay anchored by the table */
    lua_pop(L, 1);
    keys[k].s = lua_tolstring(L, -1, &keys[k].n);
    k++;
  }
  qsort(keys, count, sizeof(json_Key), json_key_cmp);
  jn_buf_addl(L, b, "{", 1);
  for (k = 0; k < count; k++) {
    if (k > 0) jn_buf_addl(L, b, ",", 1);
    lua_pushlstring(L, keys[k].s, keys[k].n);
    why = json_add_string(L, b, lua_gettop(L));
    if (why == NULL) {
      jn_buf_addl(L, b, ":", 1);
      lua_rawget(L, idx);
      why = json_add(L, b, lua_gettop(L), depth + 1, budget);
    }
    lua_pop(L, 1);
    if (why != NULL) { lua_pop(L, 1); return why; }
  }
  lua_pop(L, 1);   /* the keys */
  jn_buf_addl(L, b, "}", 1);
  return NULL;
}

static const char *json_add(lua_State *L, jn_Buf *b, int idx, int depth, long *budget) {
  if (depth > JSON_MAX_DEPTH) return "is nested too deep for JSON (a cycle?)";
  if (--*budget < 0) return "holds too many values for JSON (a table shared many times over?)";
  luaL_checkstack(L, 8, "JSON nested too deep");
  switch (lua_type(L, idx)) {
    case LUA_TNIL:
      jn_buf_adds(L, b, "null");
      return NULL;
    case LUA_TBOOLEAN:
      jn_buf_adds(L, b, lua_toboolean(L, idx) ? "true" : "false");
      return NULL;
    case LUA_TNUMBER:
      return json_add_number(L, b, idx);
    case LUA_TSTRING:
      return json_add_string(L, b, idx);
    case LUA_TTABLE:
      return json_add_table(L, b, idx, depth, budget);
    default:
      if (jn_value_isnull(L, idx)) { jn_buf_adds(L, b, "null"); return NULL; }
      return lua_type(L, idx) == LUA_TFUNCTION ? "holds a function, which JSON cannot write"
                                               : "holds a value JSON cannot write";
  }
}

/*
** Append the value at idx to b as JSON text.  Returns NULL, or the reason
** it cannot be written ("holds a function, which JSON cannot write"); the
** buffer then holds part of the text.  Raises only for memory.
** [-0, +0, m]
*/
const char *jn_json_encode(lua_State *L, jn_Buf *b, int idx) {
  long budget = JSON_MAX_VALUES;
  if (idx < 0) idx = lua_gettop(L) + idx + 1;
  return json_add(L, b, idx, 0, &budget);
}

typedef struct json_Dec {
  const char *s;
  size_t len, i;
  int arraymt;              /* stack index of the array marker */
  const char *why;
} json_Dec;

static void json_ws(json_Dec *d) {
  while (d->i < d->len && (d->s[d->i] == ' ' || d->s[d->i] == '\t' || d->s[d->i] == '\n' ||
                           d->s[d->i] == '\r'))
    d->i++;
}

static int json_fail(json_Dec *d, const char *why) {
  if (d->why == NULL) d->why = why;
  return 0;
}

/* Four hex digits at s[i]; -1 when they are not. */
static long json_hex4(json_Dec *d) {
  long v = 0;
  int k;
  if (d->i + 4 > d->len) return -1;
  for (k = 0; k < 4; k++) {
    char ch = d->s[d->i + (size_t)k];
    v <<= 4;
    if (ch >= '0' && ch <= '9') v |= ch - '0';
    else if (ch >= 'a' && ch <= 'f') v |= ch - 'a' + 10;
    else if (ch >= 'A' && ch <= 'F') v |= ch - 'A' + 10;
    else return -1;
  }
  d->i += 4;
  return v;
}

/* Push the string that starts at the opening quote at s[i]. */
static int json_string(lua_State *L, json_Dec *d) {
  size_t start = ++d->i;
  jn_Buf b;
  while (d->i < d->len && d->s[d->i] != '"' && d->s[d->i] != '\\' &&
         (unsigned char)d->s[d->i] >= 0x20)
    d->i++;
  if (d->i < d->len && d->s[d->i] == '"') {   /* no escapes: the bytes as they are */
    if (!jn_is_utf8(d->s + start, d->i - start)) return json_fail(d, "a string that is not UTF-8");
    lua_pushlstring(L, d->s + start, d->i - start);
    d->i++;
    return 1;
  }
  jn_buf_init(L, &b);
  jn_buf_addl(L, &b, d->s + start, d->i - start);
  for (;;) {
    char ch;
    if (d->i >= d->len) return json_fail(d, "an unterminated string");
    ch = d->s[d->i];
    if (ch == '"') break;
    if ((unsigned char)ch < 0x20) return json_fail(d, "a control character in a string");
    if (ch != '\\') { jn_buf_addl(L, &b, &ch, 1); d->i++; continue; }
    if (++d->i >= d->len) return json_fail(d, "an unterminated string");
    ch = d->s[d->i++];
    switch (ch) {
      case '"': case '\\': case '/': jn_buf_addl(L, &b, &ch, 1); break;
      case 'b': jn_buf_adds(L, &b, "\b"); break;
      case 'f': jn_buf_adds(L, &b, "\f"); break;
      case 'n': jn_buf_adds(L, &b, "\n"); break;
      case 'r': jn_buf_adds(L, &b, "\r"); break;
      case 't': jn_buf_adds(L, &b, "\t"); break;
      case 'u': {
        long cp = json_hex4(d);
        char u[4];
        size_t n;
        if (cp < 0) return json_fail(d, "a bad \\u escape");
        if (cp >= 0xD800 && cp <= 0xDBFF) {   /* a surrogate pair */
          long lo;
          if (d->i + 2 > d->len || d->s[d->i] != '\\' || d->s[d->i + 1] != 'u')
            return json_fail(d, "a lone surrogate in a \\u escape");
          d->i += 2;
          lo = json_hex4(d);
          if (lo < 0xDC00 || lo > 0xDFFF) return json_fail(d, "a lone surrogate in a \\u escape");
          cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
        } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
          return json_fail(d, "a lone surrogate in a \\u escape");
        }
        if (cp < 0x80) { u[0] = (char)cp; n = 1; }
        else if (cp < 0x800) { u[0] = (char)(0xC0 | (cp >> 6)); u[1] = (char)(0x80 | (cp & 0x3F)); n = 2; }
        else if (cp < 0x10000) {
          u[0] = (char)(0xE0 | (cp >> 12)); u[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
          u[2] = (char)(0x80 | (cp & 0x3F)); n = 3;
        } else {
          u[0] = (char)(0xF0 | (cp >> 18)); u[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
          u[2] = (char)(0x80 | ((cp >> 6) & 0x3F)); u[3] = (char)(0x80 | (cp & 0x3F)); n = 4;
        }
        jn_buf_addl(L, &b, u, n);
        break;
      }
      default:
        return json_fail(d, "a bad escape in a string");
    }
  }
  d->i++;
  if (!jn_is_utf8(b.p, b.n)) return json_fail(d, "a string that is not UTF-8");
  lua_pushlstring(L, b.p, b.n);
  lua_remove(L, b.idx);
  return 1;
}

/* Push the number at s[i] (JSON's grammar exactly). */
static int json_number(lua_State *L, json_Dec *d) {
  size_t start = d->i;
  int isint = 1;
  char tmp[64], *end, *comma;
  sqlite3_int64 v;
  double x;
  if (d->i < d->len && d->s[d->i] == '-') d->i++;
  if (d->i < d->len && d->s[d->i] == '0') d->i++;
  else if (d->i < d->len && d->s[d->i] >= '1' && d->s[d->i] <= '9')
    while (d->i < d->len && d->s[d->i] >= '0' && d->s[d->i] <= '9') d->i++;
  else return json_fail(d, "a bad number");
  if (d->i < d->len && d->s[d->i] == '.') {
    isint = 0;
    if (++d->i >= d->len || d->s[d->i] < '0' || d->s[d->i] > '9') return json_fail(d, "a bad number");
    while (d->i < d->len && d->s[d->i] >= '0' && d->s[d->i] <= '9') d->i++;
  }
  if (d->i < d->len && (d->s[d->i] == 'e' || d->s[d->i] == 'E')) {
    isint = 0;
    d->i++;
    if (d->i < d->len && (d->s[d->i] == '+' || d->s[d->i] == '-')) d->i++;
    if (d->i >= d->len || d->s[d->i] < '0' || d->s[d->i] > '9') return json_fail(d, "a bad number");
    while (d->i < d->len && d->s[d->i] >= '0' && d->s[d->i] <= '9') d->i++;
  }
  if (isint && parse_i64(d->s + start, d->i - start, &v)) {
#if JN_LUA51
    lua_pushnumber(L, (lua_Number)v);   /* a number stays a number, exact up to 2^53 */
#else
    lua_pushinteger(L, (lua_Integer)v);
#endif
    return 1;
  }
  if (d->i - start >= sizeof tmp) return json_fail(d, "a number too long");
  memcpy(tmp, d->s + start, d->i - start);
  tmp[d->i - start] = '\0';
  x = strtod(tmp, &end);
  if (*end != '\0' && (comma = strchr(tmp, '.')) != NULL) {   /* a locale's decimal comma */
    *comma = ',';
    x = strtod(tmp, &end);
  }
  if (x - x != 0.0) return json_fail(d, "a number out of range");
  lua_pushnumber(L, (lua_Number)x);
  return 1;
}

static int json_value(lua_State *L, json_Dec *d, int depth);

/* Push the array or object at s[i]. */
static int json_container(lua_State *L, json_Dec *d, int depth) {
  int array = d->s[d->i] == '[';
  lua_Integer n = 0;
  char close = array ? ']' : '}';
  d->i++;
  lua_newtable(L);
  if (array) {
    lua_pushvalue(L, d->arraymt);
    lua_setmetatable(L, -2);
  }
  json_ws(d);
  if (d->i < d->len && d->s[d->i] == close) { d->i++; return 1; }
  for (;;) {
    json_ws(d);
    if (!array) {
      if (d->i >= d->len || d->s[d->i] != '"') return json_fail(d, "an object key that is no string");
      if (!json_string(L, d)) return 0;
      json_ws(d);
      if (d->i >= d->len || d->s[d->i] != ':') return json_fail(d, "a missing ':'");
      d->i++;
    }
    if (!json_value(L, d, depth + 1)) return 0;
    if (array) lua_rawseti(L, -2, ++n);
    else lua_rawset(L, -3);
    json_ws(d);
    if (d->i < d->len && d->s[d->i] == ',') { d->i++; continue; }
    if (d->i < d->len && d->s[d->i] == close) { d->i++; return 1; }
    return json_fail(d, array ? "a missing ',' or ']'" : "a missing ',' or '}'");
  }
}

static int json_value(lua_State *L, json_Dec *d, int depth) {
  if (depth > JSON_MAX_DEPTH) return json_fail(d, "nesting too deep");
  luaL_checkstack(L, 8, "JSON nested too deep");
  json_ws(d);
  if (d->i >= d->len) return json_fail(d, "an unexpected end");
  switch (d->s[d->i]) {
    case '{': case '[':
      return json_container(L, d, depth);
    case '"':
      return json_string(L, d);
    case 't':
      if (d->len - d->i >= 4 && memcmp(d->s + d->i, "true", 4) == 0) {
        d->i += 4; lua_pushboolean(L, 1); return 1;
      }
      break;
    case 'f':
      if (d->len - d->i >= 5 && memcmp(d->s + d->i, "false", 5) == 0) {
        d->i += 5; lua_pushboolean(L, 0); return 1;
      }
      break;
    case 'n':
      if (d->len - d->i >= 4 && memcmp(d->s + d->i, "null", 4) == 0) {
        d->i += 4; lua_getfield(L, LUA_REGISTRYINDEX, JN_NULL); return 1;
      }
      break;
    default:
      if (d->s[d->i] == '-' || (d->s[d->i] >= '0' && d->s[d->i] <= '9')) return json_number(L, d);
  }
  return json_fail(d, "an unexpected character");
}

/*
** Read the JSON text s[0..len) and push its value; returns NULL.  When the
** text is not JSON, pushes a message ("invalid JSON at byte 7: a missing
** ','") and returns it.  null reads as junction.null, also at the top.
** [-0, +1, m]
*/
const char *jn_json_decode(lua_State *L, const char *s, size_t len) {
  json_Dec d;
  int base = lua_gettop(L);
  d.s = s;
  d.len = len;
  d.i = 0;
  d.why = NULL;
  lua_getfield(L, LUA_REGISTRYINDEX, JN_ARRAY_MT);
  d.arraymt = lua_gettop(L);
  if (json_value(L, &d, 0)) {
    json_ws(&d);
    if (d.i == d.len) {
      lua_replace(L, base + 1);
      lua_settop(L, base + 1);
      return NULL;
    }
    json_fail(&d, "text after the value");
  }
  lua_settop(L, base);
  lua_pushfstring(L, "invalid JSON at byte %d: %s", (int)d.i + 1, d.why);
  return lua_tostring(L, -1);
}

/* }====== */

/* Converting values to their field's type (checked before anything binds) */

/* Days in month mon (1..12) of year y. */
static int month_days(int y, int mon) {
  static const int days[12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
  if (mon == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0)) return 29;
  return days[mon - 1];
}

/* Read exactly n digits at s[*i] into *v; 0 when they are not all there. */
static int take_digits(const char *s, size_t len, size_t *i, int n, int *v) {
  int k;
  *v = 0;
  if (*i + (size_t)n > len) return 0;
  for (k = 0; k < n; k++) {
    char ch = s[*i + (size_t)k];
    if (ch < '0' || ch > '9') return 0;
    *v = *v * 10 + (ch - '0');
  }
  *i += (size_t)n;
  return 1;
}

/* Days from 1970-01-01 to the civil date y-m-d (proleptic Gregorian). */
static long long days_from_civil(int y, int m, int d) {
  long long era;
  unsigned yoe, doy, doe;
  y -= m <= 2;
  era = (y >= 0 ? y : y - 399) / 400;
  yoe = (unsigned)(y - era * 400);
  doy = (153u * (unsigned)(m > 2 ? m - 3 : m + 9) + 2) / 5 + (unsigned)d - 1;
  doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + (long long)doe - 719468;
}

/*
** Read s[0..len) as a date in an ISO-8601 form, every part in range, into
** seconds since the epoch (UTC).  YYYY-MM-DD, then optionally [T or space]
** HH:MM, :SS, .fraction (1 to 9 digits), and after a time optionally Z or
** +HH:MM / -HH:MM (no offset: UTC).  Returns 0 for anything else.
** junction's own timestamps ("YYYY-MM-DD HH:MM:SS.mmm") are one of these.
*/
static int parse_date(const char *s, size_t len, double *secs) {
  size_t i = 0;
  int y, mon, d, h = 0, mi = 0, sec = 0, n, oh, om;
  double frac = 0, scale = 1;
  if (!take_digits(s, len, &i, 4, &y) || y < 1 || i >= len || s[i++] != '-' ||
      !take_digits(s, len, &i, 2, &mon) || mon < 1 || mon > 12 || i >= len || s[i++] != '-' ||
      !take_digits(s, len, &i, 2, &d) || d < 1 || d > month_days(y, mon))
    return 0;
  *secs = (double)days_from_civil(y, mon, d) * 86400.0;
  if (i == len) return 1;
  if (s[i] != 'T' && s[i] != ' ') return 0;
  i++;
  if (!take_digits(s, len, &i, 2, &h) || h > 23 || i >= len || s[i++] != ':' ||
      !take_digits(s, len, &i, 2, &mi) || mi > 59)
    return 0;
  if (i < len && s[i] == ':') {
    i++;
    if (!take_digits(s, len, &i, 2, &sec) || sec > 59) return 0;
    if (i < len && s[i] == '.') {
      i++;
      for (n = 0; i < len && s[i] >= '0' && s[i] <= '9'; n++, i++) {
        scale /= 10;
        frac += (s[i] - '0') * scale;
      }
      if (n < 1 || n > 9) return 0;
    }
  }
  *secs += h * 3600.0 + mi * 60.0 + sec + frac;
  if (i == len) return 1;
  if (s[i] == 'Z') return i + 1 == len;
  if (s[i] != '+' && s[i] != '-') return 0;
  n = s[i++] == '-' ? -1 : 1;
  if (!take_digits(s, len, &i, 2, &oh) || oh > 23 || i >= len || s[i++] != ':' ||
      !take_digits(s, len, &i, 2, &om) || om > 59)
    return 0;
  *secs -= n * (oh * 3600.0 + om * 60.0);   /* local time minus its offset: UTC */
  return i == len;
}

/* Read a whole string as a finite decimal number (no spaces, hex, inf or nan). */
static int parse_real(const char *s, size_t len, double *out) {
  size_t i;
  char *end;
  if (len == 0 || len > 64 || strlen(s) != len) return 0;
  for (i = 0; i < len; i++)
    if (!((s[i] >= '0' && s[i] <= '9') || s[i] == '.' || s[i] == 'e' || s[i] == 'E' ||
          s[i] == '+' || s[i] == '-'))
      return 0;
  *out = strtod(s, &end);
  return end == s + len && *out - *out == 0.0;
}

/* Characters (UTF-8 sequences; any other byte counts as one) in s[0..len). */
static size_t count_chars(const char *s, size_t len) {
  size_t i, n = 0;
  for (i = 0; i < len; i++)
    if (((unsigned char)s[i] & 0xC0) != 0x80) n++;
  return n;
}

/*
** The integral value of a number with no fraction, within the 64-bit
** range; 0 for a fraction, an infinity or NaN.
*/
static int number_i64(lua_State *L, int idx, sqlite3_int64 *out) {
  double d;
#if !JN_LUA51
  if (lua_isinteger(L, idx)) { *out = (sqlite3_int64)lua_tointeger(L, idx); return 1; }
#endif
  d = (double)lua_tonumber(L, idx);
  if (!(d >= -9223372036854775808.0 && d < 9223372036854775808.0) || d != (double)(sqlite3_int64)d)
    return 0;
  *out = (sqlite3_int64)d;
  return 1;
}

/* Push a number as the text SQLite would store for it in a TEXT column. */
static void push_number_text(lua_State *L, int idx) {
  char tmp[64];
  sqlite3_int64 v;
  double d = (double)lua_tonumber(L, idx);
#if !JN_LUA51
  if (lua_isinteger(L, idx)) d = 0.0;   /* a Lua integer: every digit */
#endif
  if (number_i64(L, idx, &v) && (d == 0.0 || (v > -1000000000000000LL && v < 1000000000000000LL))) {
    snprintf(tmp, sizeof tmp, "%lld", (long long)v);
  } else {
    /* SQLite's own formatting: the same whatever the C locale's decimal point */
    sqlite3_snprintf((int)sizeof tmp, tmp, "%.15g", d);
    if (strtod(tmp, NULL) != d) sqlite3_snprintf((int)sizeof tmp, tmp, "%.17g", d);
  }
  lua_pushstring(L, tmp);
}

/* Is the value at idx junction.null, the NULL that a Lua table can hold? */
int jn_value_isnull(lua_State *L, int idx) {
  int eq;
  if (lua_type(L, idx) != LUA_TUSERDATA) return 0;
  idx = idx < 0 ? lua_gettop(L) + idx + 1 : idx;
  lua_getfield(L, LUA_REGISTRYINDEX, JN_NULL);
  eq = lua_rawequal(L, -1, idx);
  lua_pop(L, 1);
  return eq;
}

/*
** Raise unless the table at idx is a list of n elements: every key an
** integer 1..n.  A table with other keys, or with holes, would have some of
** its elements used and the rest left out without a word.  The message is
** "ctx: bad what (expected expected, but it has the key 'x')".
** [-0, +0, e]
*/
void jn_list_check(lua_State *L, int idx, int n, const char *ctx, const char *what,
                   const char *expected) {
  int count = 0;
  lua_pushnil(L);
  while (lua_next(L, idx) != 0) {
    double d = lua_type(L, -2) == LUA_TNUMBER ? (double)lua_tonumber(L, -2) : 0.0;
    lua_pop(L, 1);
    if (!(d >= 1 && d <= (double)n && d == (double)(int)d))
      luaL_error(L, "%s: bad %s (%s expected, but it has the key %s)", ctx, what, expected,
                 lua_type(L, -1) == LUA_TSTRING ? lua_pushfstring(L, "'%s'", lua_tostring(L, -1))
                                                : luaL_tolstring(L, -1, NULL));
    count++;
  }
  if (count != n) luaL_error(L, "%s: bad %s (%s expected, but it has holes)", ctx, what, expected);
}

/*
** Convert the value at idx to what a field of the given type stores, as a
** reload reads it back.  Pushes the converted value and returns 1, or
** pushes the reason it cannot be stored ("is not an integer") and returns
** 0.  nil stays nil (allowNull is the caller's).  What converts:
**   INTEGER  an integral number within 64 bits; a decimal integer string
**   REAL     a number other than NaN; a decimal number string
**   BOOLEAN  true, false; the numbers 1 and 0 (as SQLite stores them)
**   TEXT, STRING(n)  a string (STRING: at most n characters); a finite
**            number becomes its decimal text
**   BLOB     a string
**   DATE     a string in an ISO-8601 form (see parse_date) or a number of
**            seconds since 1970, both as junction's UTC text
** Any other Lua type (a table, a function) is the caller's to refuse.
** [-0, +1, m]
*/
int jn_value_conv(lua_State *L, int idx, int type, int length) {
  int t = lua_type(L, idx);
  if (idx < 0) idx = lua_gettop(L) + idx + 1;
  if (t == LUA_TNIL) { lua_pushnil(L); return 1; }
  switch (type) {
    case JN_T_INTEGER: {
      sqlite3_int64 v;
      size_t len;
      const char *s;
      if (t == LUA_TNUMBER && number_i64(L, idx, &v)) { jn_push_i64(L, v); return 1; }
      if (t == LUA_TSTRING) {
        s = lua_tolstring(L, idx, &len);
        if (parse_i64(s, len, &v)) { jn_push_i64(L, v); return 1; }
      }
      lua_pushliteral(L, "is not an integer");
      return 0;
    }
    case JN_T_REAL: {
      double d;
      size_t len;
      const char *s;
      if (t == LUA_TNUMBER && lua_tonumber(L, idx) == lua_tonumber(L, idx)) {
        lua_pushnumber(L, lua_tonumber(L, idx));
        return 1;
      }
      if (t == LUA_TSTRING) {
        s = lua_tolstring(L, idx, &len);
        if (parse_real(s, len, &d)) { lua_pushnumber(L, (lua_Number)d); return 1; }
      }
      lua_pushliteral(L, "is not a number");
      return 0;
    }
    case JN_T_BOOLEAN:
      if (t == LUA_TBOOLEAN) { lua_pushvalue(L, idx); return 1; }
      if (t == LUA_TNUMBER && (lua_tonumber(L, idx) == 0 || lua_tonumber(L, idx) == 1)) {
        lua_pushboolean(L, lua_tonumber(L, idx) == 1);
        return 1;
      }
      lua_pushliteral(L, "is not a boolean (true or false)");
      return 0;
    case JN_T_TEXT:
    case JN_T_STRING:
      if (t == LUA_TNUMBER) {
        double d = (double)lua_tonumber(L, idx);
        if (d - d != 0.0) { lua_pushliteral(L, "is not text"); return 0; }
        push_number_text(L, idx);
      } else if (t == LUA_TSTRING) {
        lua_pushvalue(L, idx);
      } else {
        lua_pushliteral(L, "is not text");
        return 0;
      }
      if (type == JN_T_STRING && length > 0) {
        size_t len;
        const char *s = lua_tolstring(L, -1, &len);
        if ((size_t)length < len && count_chars(s, len) > (size_t)length) {
          lua_pop(L, 1);
          lua_pushfstring(L, "is longer than %d characters", length);
          return 0;
        }
      }
      return 1;
    case JN_T_BLOB:
      if (t == LUA_TSTRING) { lua_pushvalue(L, idx); return 1; }
      lua_pushliteral(L, "is not a string of bytes");
      return 0;
    case JN_T_DATE:
      if (t == LUA_TNUMBER) {
        char ts[32];
        size_t n = format_epoch((double)lua_tonumber(L, idx), ts);
        if (n != 0) { lua_pushlstring(L, ts, n); return 1; }
        lua_pushliteral(L, "is not a date (seconds since 1970, within the years 1 to 9999)");
        return 0;
      }
      if (t == LUA_TSTRING) {
        size_t len;
        const char *s = lua_tolstring(L, idx, &len);
        double secs;
        if (parse_date(s, len, &secs)) {   /* every form stored as junction's UTC text */
          char ts[32];
          size_t n = format_epoch(secs, ts);
          if (n > 0) { lua_pushlstring(L, ts, n); return 1; }
        }
      }
      lua_pushliteral(L, "is not a date (YYYY-MM-DD, optionally HH:MM[:SS[.fff]] and a zone)");
      return 0;
    case JN_T_DATEONLY: {
      char ts[32];
      size_t len;
      const char *s;
      double secs;
      if (t == LUA_TNUMBER && format_epoch((double)lua_tonumber(L, idx), ts) != 0) {
        lua_pushlstring(L, ts, 10);   /* the UTC day of that second */
        return 1;
      }
      s = t == LUA_TSTRING ? lua_tolstring(L, idx, &len) : NULL;
      if (s != NULL && len == 10 && parse_date(s, len, &secs)) { lua_pushvalue(L, idx); return 1; }
      lua_pushliteral(L, "is not a date (YYYY-MM-DD, or seconds since 1970)");
      return 0;
    }
    case JN_T_JSON: {
      jn_Buf b;
      const char *why;
      jn_buf_init(L, &b);
      why = jn_json_encode(L, &b, idx);
      if (why != NULL) {
        lua_pop(L, 1);
        lua_pushfstring(L, "cannot be stored as JSON (it %s)", why);
        return 0;
      }
      lua_pushlstring(L, b.p, b.n);
      lua_remove(L, b.idx);
      return 1;
    }
    case JN_T_ENUM:
      if (t == LUA_TSTRING) { lua_pushvalue(L, idx); return 1; }
      lua_pushliteral(L, "is not one of the ENUM's values");
      return 0;
    case JN_T_UUID: {
      size_t len, i;
      const char *s = t == LUA_TSTRING ? lua_tolstring(L, idx, &len) : NULL;
      char u[36];
      int ok = s != NULL && len == 36;
      for (i = 0; ok && i < 36; i++) {
        char ch = s[i];
        if (i == 8 || i == 13 || i == 18 || i == 23) { ok = ch == '-'; u[i] = ch; continue; }
        if (ch >= 'A' && ch <= 'F') ch = (char)(ch - 'A' + 'a');
        ok = (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f');
        u[i] = ch;
      }
      if (ok) { lua_pushlstring(L, u, 36); return 1; }   /* lower case, as UUIDV4 writes */
      lua_pushliteral(L, "is not a UUID (8-4-4-4-12 hexadecimal digits)");
      return 0;
    }
    default:
      lua_pushvalue(L, idx);
      return 1;
  }
}

/*
** Can a value at idx be given to a field of the type at all?  nil, a
** boolean, a number, a string, junction.null; a table only for JSON.  (A
** function or a table elsewhere is a mistake in the program; whether the
** value suits the type is data, jn_value_conv's.)
*/
int jn_value_storable(lua_State *L, int idx, int type) {
  int t = lua_type(L, idx);
  return t == LUA_TNIL || t == LUA_TBOOLEAN || t == LUA_TNUMBER || t == LUA_TSTRING ||
         (t == LUA_TTABLE && type == JN_T_JSON) || jn_value_isnull(L, idx);
}

/* Is s[0..len) one of the ENUM values (NUL-separated, an empty one last)? */
int jn_enum_has(const char *enums, const char *s, size_t len) {
  while (*enums != '\0') {
    size_t n = strlen(enums);
    if (n == len && memcmp(enums, s, len) == 0) return 1;
    enums += n + 1;
  }
  return 0;
}

/*
** A random (version 4) UUID, lower case, into out[0..36] (NUL-terminated),
** from /dev/urandom.  Raises nothing: the caller checks out[0] (NUL when
** no random bytes could be read).
*/
void jn_uuid4(char *out) {
  static const char hex[] = "0123456789abcdef";
  unsigned char r[16];
  size_t got = 0;
  int i, k = 0;
  FILE *f = fopen("/dev/urandom", "rb");
  out[0] = '\0';
  if (f == NULL) return;
  got = fread(r, 1, sizeof r, f);
  fclose(f);
  if (got != sizeof r) return;
  r[6] = (unsigned char)((r[6] & 0x0F) | 0x40);   /* version 4 */
  r[8] = (unsigned char)((r[8] & 0x3F) | 0x80);   /* the RFC 4122 variant */
  for (i = 0; i < 16; i++) {
    if (i == 4 || i == 6 || i == 8 || i == 10) out[k++] = '-';
    out[k++] = hex[r[i] >> 4];
    out[k++] = hex[r[i] & 15];
  }
  out[k] = '\0';
}

/*
** Bind the Lua value at idx to parameter i, as a value of field type type
** (JN_T_ANY for none).  Returns 0, or -1 when the value's Lua type cannot
** be stored (the caller raises, naming the field).
** [-0, +0, m]
*/
int jn_bind_value(lua_State *L, jn_Conn *c, jn_St *st, int i, int idx, int type) {
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
        size_t n = format_epoch((double)lua_tonumber(L, idx), ts);
        if (n == 0) { jn_e_bind_null(c->eng, st, i); return -1; }   /* no date: the caller raises */
        jn_e_bind_text(c->eng, st, i, ts, n, 1);
      } else if (lua_isinteger(L, idx)) {
        sqlite3_int64 v = 0;
        jn_to_i64(L, idx, &v);
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
      if (type == JN_T_BLOB || (type == JN_T_GUESS && !jn_is_utf8(s, len)))
        jn_e_bind_blob(c->eng, st, i, s, len);
      else if (type == JN_T_INTEGER && parse_i64(s, len, &v))
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

void jn_bind_i64(lua_State *L, jn_Conn *c, jn_St *st, int i, sqlite3_int64 v) {
  jn_e_bind_int64(c->eng, st, i, v);
  if (c->log_ref != LUA_NOREF) {
    jn_push_i64(L, v);
    log_param(L, c, i, -1);
    lua_pop(L, 1);
  }
}

/* Bind text that outlives the statement's next step (SQLITE_STATIC). */
void jn_bind_text(lua_State *L, jn_Conn *c, jn_St *st, int i, const char *s, size_t n) {
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
** Push a 64-bit integer.  Lua 5.3/5.4 have them; on 5.1 and LuaJIT a value
** beyond 2^53 would lose digits as a double, so it comes as decimal text.
** [-0, +1, m]
*/
void jn_push_i64(lua_State *L, sqlite3_int64 v) {
#if JN_LUA51
  if (v >= -9007199254740992LL && v <= 9007199254740992LL) {
    lua_pushnumber(L, (lua_Number)v);
  } else {
    char tmp[32];
    snprintf(tmp, sizeof tmp, "%lld", (long long)v);
    lua_pushstring(L, tmp);
  }
#else
  lua_pushinteger(L, (lua_Integer)v);
#endif
}

/*
** Push column col of the current row as the Lua value for a field of the
** given type: BOOLEAN columns come back as booleans.
** [-0, +1, m]
*/
void jn_push_column(lua_State *L, const jn_Engine *e, jn_St *st, int col, int type) {
  size_t n;
  const void *p;
  switch (jn_e_coltype(e, st, col)) {
    case SQLITE_INTEGER: {
      sqlite3_int64 v = jn_e_col_int64(e, st, col);
      if (type == JN_T_BOOLEAN) lua_pushboolean(L, v != 0);
      else jn_push_i64(L, v);
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
        if (jn_value_isnull(L, -1)) { lua_pop(L, 1); lua_pushnil(L); }   /* the text null: NULL */
      } else {
        lua_pushlstring(L, (const char *)p, n);
      }
      break;
  }
}

/* }====== */
