/*
** jn_scalar.c: the scalars every layer reads and writes: 64-bit integers on
** every runtime (decimal text beyond 2^53 on 5.1 and LuaJIT), junction's
** date text, and the UTF-8 check that tells text from bytes.
*/
#include "jn.h"
#include <stdio.h>
#include <time.h>

/*
** Read an integer written out in decimal, the whole string: how a key
** beyond 2^53 travels on Lua 5.1.  Returns 1 and sets *out on success.
*/
int jn_scalar_parsei64(const char *s, size_t len, sqlite3_int64 *out) {
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
int jn_scalar_toi64(lua_State *L, int idx, sqlite3_int64 *out) {
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
    return jn_scalar_parsei64(s, len, out);
  }
  return 0;
}

/* Write v as n decimal digits, zero-padded. */
static void put_digits(char *out, int v, int n) {
  while (n-- > 0) { out[n] = (char)('0' + v % 10); v /= 10; }
}


/* Can a number be stored in a DATE field (a time between the years 1 and 9999)? */
int jn_scalar_epochok(double secs) {
  char tmp[32];
  return jn_scalar_epochtext(secs, tmp) != 0;
}

/*
** Seconds since the epoch as UTC text, "YYYY-MM-DD HH:MM:SS.mmm" (23 bytes),
** for years 1 to 9999; 0 for anything else (NaN, infinities, 1e300), which
** the caller rejects as a bad value.
*/
size_t jn_scalar_epochtext(double secs, char *out) {
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
size_t jn_scalar_timestamp(jn_Conn *c, char *out) {
  struct timespec ts;
  if (c->ts_frozen && c->ts_taken) {   /* a wire call's re-run: the same time */
    ts.tv_sec = (time_t)c->ts_at_sec;
    ts.tv_nsec = c->ts_at_nsec;
  } else {
    clock_gettime(CLOCK_REALTIME, &ts);
  }
  if (c->ts_frozen && !c->ts_taken) {
    c->ts_at_sec = (long long)ts.tv_sec;
    c->ts_at_nsec = ts.tv_nsec;
    c->ts_taken = 1;
  }
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
int jn_scalar_isutf8(const char *str, size_t n) {
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
    /* the second byte's range (RFC 3629): no overlong form, no surrogate
    ** (U+D800..U+DFFF), nothing past U+10FFFF; PostgreSQL refuses them too */
    if ((ch == 0xE0 && s[i + 1] < 0xA0) || (ch == 0xED && s[i + 1] > 0x9F) ||
        (ch == 0xF0 && s[i + 1] < 0x90) || (ch == 0xF4 && s[i + 1] > 0x8F))
      return 0;
    i += need + 1;
  }
  return 1;
}

/*
** Push a 64-bit integer.  Lua 5.3/5.4 have them; on 5.1 and LuaJIT a value
** beyond 2^53 would lose digits as a double, so it comes as decimal text.
** [-0, +1, m]
*/
void jn_scalar_pushi64(lua_State *L, sqlite3_int64 v) {
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

/* Is the value at idx junction.null, the NULL that a Lua table can hold? */
int jn_scalar_isnull(lua_State *L, int idx) {
  int eq;
  if (lua_type(L, idx) != LUA_TUSERDATA) return 0;
  idx = idx < 0 ? lua_gettop(L) + idx + 1 : idx;
  lua_getfield(L, LUA_REGISTRYINDEX, JN_NULL);
  eq = lua_rawequal(L, -1, idx);
  lua_pop(L, 1);
  return eq;
}
