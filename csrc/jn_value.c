/*
** jn_value.c: converting a Lua value to its field's type, checked before
** anything binds: numbers and their text, dates in every accepted form,
** lengths in characters, ENUM membership, JSON values, UUIDs.
*/
#include "jn.h"
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

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

/*
** The value at idx as an error message names a key or name the caller
** gave: a string as it is, a number as its text, anything else by its
** type.  Never through a metamethod (as luaL_tolstring would): a __tostring
** or __name that raises or yields must not replace the misuse being
** reported, nor run in the middle of a call.
** [-0, +(0|1), m]
*/
const char *jn_value_name(lua_State *L, int idx) {
  if (lua_type(L, idx) == LUA_TSTRING) return lua_tostring(L, idx);
  if (lua_type(L, idx) == LUA_TNUMBER) {
    lua_pushvalue(L, idx);               /* a copy: the original may be a lua_next key */
    return lua_tostring(L, -1);
  }
  return luaL_typename(L, idx);
}

/*
** Raise unless the table at idx is a list of n elements: every key an
** integer 1..n.  A table with other keys, or with holes, would have some of
** its elements used and the rest left out without a word.  The message is
** "ctx: bad what (expected expected, but it has the key 'x')".
** [-0, +0, e]
*/
void jn_value_checklist(lua_State *L, int idx, int n, const char *ctx, const char *what,
                   const char *expected) {
  int count = 0;
  lua_pushnil(L);
  while (lua_next(L, idx) != 0) {
    lua_pop(L, 1);
    if (jn_value_listpos(L, -1, n) == 0) jn_value_listfail(L, 0, ctx, what, expected);
    count++;
  }
  if (count != n) jn_value_listfail(L, 1, ctx, what, expected);
}

/* The key at idx as a place of a list of n (1..n), or 0 when it is none. */
int jn_value_listpos(lua_State *L, int idx, int n) {
  double d = lua_type(L, idx) == LUA_TNUMBER ? (double)lua_tonumber(L, idx) : 0.0;
  return d >= 1 && d <= (double)n && d == (double)(int)d ? (int)d : 0;
}

/* Raise jn_value_checklist's message: the list has holes, or (holes 0) the
** key on top is no place of it. */
void jn_value_listfail(lua_State *L, int holes, const char *ctx, const char *what,
                       const char *expected) {
  if (holes) luaL_error(L, "%s: bad %s (%s expected, but it has holes)", ctx, what, expected);
  luaL_error(L, "%s: bad %s (%s expected, but it has the key %s)", ctx, what, expected,
             lua_type(L, -1) == LUA_TSTRING ? lua_pushfstring(L, "'%s'", lua_tostring(L, -1))
                                            : jn_value_name(L, -1));
}

/* Each converter below: the value at idx (absolute, Lua type t, not nil)
** as its type stores it, pushed, and 1; or the reason it cannot be,
** pushed, and 0.  [-0, +1, m] */
static int conv_integer(lua_State *L, int idx, int t) {
  sqlite3_int64 v;
  size_t len;
  const char *s;
  if (t == LUA_TNUMBER && number_i64(L, idx, &v)) { jn_scalar_pushi64(L, v); return 1; }
  if (t == LUA_TSTRING) {
    s = lua_tolstring(L, idx, &len);
    if (jn_scalar_parsei64(s, len, &v)) { jn_scalar_pushi64(L, v); return 1; }
  }
  lua_pushliteral(L, "is not an integer");
  return 0;
}

static int conv_real(lua_State *L, int idx, int t) {
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

static int conv_boolean(lua_State *L, int idx, int t) {
  if (t == LUA_TBOOLEAN) { lua_pushvalue(L, idx); return 1; }
  if (t == LUA_TNUMBER && (lua_tonumber(L, idx) == 0 || lua_tonumber(L, idx) == 1)) {
    lua_pushboolean(L, lua_tonumber(L, idx) == 1);
    return 1;
  }
  lua_pushliteral(L, "is not a boolean (true or false)");
  return 0;
}

/* TEXT, and STRING(length) when length > 0. */
static int conv_text(lua_State *L, int idx, int t, int length) {
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
  if (length > 0) {
    size_t len;
    const char *s = lua_tolstring(L, -1, &len);
    if ((size_t)length < len && count_chars(s, len) > (size_t)length) {
      lua_pop(L, 1);
      lua_pushfstring(L, "is longer than %d characters", length);
      return 0;
    }
  }
  return 1;
}

static int conv_date(lua_State *L, int idx, int t) {
  char ts[32];
  size_t n, len;
  double secs;
  if (t == LUA_TNUMBER) {
    n = jn_scalar_epochtext((double)lua_tonumber(L, idx), ts);
    if (n != 0) { lua_pushlstring(L, ts, n); return 1; }
    lua_pushliteral(L, "is not a date (seconds since 1970, within the years 1 to 9999)");
    return 0;
  }
  if (t == LUA_TSTRING) {
    const char *s = lua_tolstring(L, idx, &len);
    if (parse_date(s, len, &secs)) {   /* every form stored as junction's UTC text */
      n = jn_scalar_epochtext(secs, ts);
      if (n > 0) { lua_pushlstring(L, ts, n); return 1; }
    }
  }
  lua_pushliteral(L, "is not a date (YYYY-MM-DD, optionally HH:MM[:SS[.fff]] and a zone)");
  return 0;
}

static int conv_dateonly(lua_State *L, int idx, int t) {
  char ts[32];
  size_t len;
  const char *s;
  double secs;
  if (t == LUA_TNUMBER && jn_scalar_epochtext((double)lua_tonumber(L, idx), ts) != 0) {
    lua_pushlstring(L, ts, 10);   /* the UTC day of that second */
    return 1;
  }
  s = t == LUA_TSTRING ? lua_tolstring(L, idx, &len) : NULL;
  if (s != NULL && len == 10 && parse_date(s, len, &secs)) { lua_pushvalue(L, idx); return 1; }
  lua_pushliteral(L, "is not a date (YYYY-MM-DD, or seconds since 1970)");
  return 0;
}

static int conv_json(lua_State *L, int idx) {
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

/* A UUID in lower case, as UUIDV4 writes it. */
static int conv_uuid(lua_State *L, int idx, int t) {
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
  if (ok) { lua_pushlstring(L, u, 36); return 1; }
  lua_pushliteral(L, "is not a UUID (8-4-4-4-12 hexadecimal digits)");
  return 0;
}

/* A value of a type that must be a string (BLOB, ENUM): the string, or why not. */
static int conv_string(lua_State *L, int idx, int t, const char *why) {
  if (t == LUA_TSTRING) { lua_pushvalue(L, idx); return 1; }
  lua_pushstring(L, why);
  return 0;
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
**   DATEONLY a YYYY-MM-DD string, or seconds since 1970 (their UTC day)
**   JSON     any value jn_json_encode can write, as its JSON text
**   ENUM     a string (whether it is one of the values is the caller's)
**   UUID     8-4-4-4-12 hexadecimal digits, in lower case
** Any other Lua type (a table, a function) is the caller's to refuse.
** [-0, +1, m]
*/
int jn_value_conv(lua_State *L, int idx, int type, int length) {
  int t = lua_type(L, idx);
  if (idx < 0) idx = lua_gettop(L) + idx + 1;
  if (t == LUA_TNIL) { lua_pushnil(L); return 1; }
  switch (type) {
    case JN_T_INTEGER: return conv_integer(L, idx, t);
    case JN_T_REAL: return conv_real(L, idx, t);
    case JN_T_BOOLEAN: return conv_boolean(L, idx, t);
    case JN_T_TEXT: return conv_text(L, idx, t, 0);
    case JN_T_STRING: return conv_text(L, idx, t, length);
    case JN_T_BLOB: return conv_string(L, idx, t, "is not a string of bytes");
    case JN_T_DATE: return conv_date(L, idx, t);
    case JN_T_DATEONLY: return conv_dateonly(L, idx, t);
    case JN_T_JSON: return conv_json(L, idx);
    case JN_T_ENUM: return conv_string(L, idx, t, "is not one of the ENUM's values");
    case JN_T_UUID: return conv_uuid(L, idx, t);
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
         (t == LUA_TTABLE && type == JN_T_JSON) || jn_scalar_isnull(L, idx);
}

/* Is s[0..len) one of the ENUM values (NUL-separated, an empty one last)? */
int jn_value_enumhas(const char *enums, const char *s, size_t len) {
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
void jn_value_uuid4(char *out) {
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
