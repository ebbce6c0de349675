/*
** jn_json.c: the JSON codec of the JSON type, junction.toJSON and
** junction.fromJSON (why junction carries its own: below).
*/
#include "jn.h"
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>

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

/* Append s[0..n) with the quote, the backslash and control characters escaped. */
static void json_add_escaped(lua_State *L, jn_Buf *b, const char *s, size_t n) {
  size_t i, run = 0;
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
}

/* What a byte needs in a JSON string: 1 an escape (control characters
** 0x00-0x1f, the quote 0x22, the backslash 0x5c), 2 a UTF-8 check (0x80-0xff
** start or continue a multi-byte character), 0 nothing.  32 bytes a line. */
static const unsigned char json_byte_class[256] = {
  1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,
  0,0,1,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,
  0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,1,0,0,0,
  0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,
  2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,
  2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,
  2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,
  2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,
};

/*
** Append s[0..n) as a JSON string.  NULL, or why it cannot be.  One pass
** finds whether any byte needs an escape or starts a multi-byte character:
** most text (names, dates) needs neither, and is copied whole.
*/
/* A byte of x is below 0x20, is c, has its high bit: whether any is (exact as a test). */
#define JSON_ONES ((uint64_t)0x0101010101010101ULL)
#define JSON_HIGH ((uint64_t)0x8080808080808080ULL)
#define json_below(x, c) (((x) - JSON_ONES * (c)) & ~(x) & JSON_HIGH)
#define json_haszero(x) json_below(x, 1)
static int json_word_plain(uint64_t w) {
  return (json_below(w, 0x20) | json_haszero(w ^ (JSON_ONES * '"'))
          | json_haszero(w ^ (JSON_ONES * '\\')) | (w & JSON_HIGH)) == 0;
}

/* json_byte_class of every byte of s[0..n), or-ed: 8 bytes at a time where
** none of them needs anything (most text), byte by byte elsewhere. */
static unsigned json_need(const unsigned char *u, size_t n) {
  unsigned need = 0;
  size_t i = 0, k;
  for (; i + 8 <= n; i += 8) {
    uint64_t w;
    memcpy(&w, u + i, 8);
    if (json_word_plain(w)) continue;
    for (k = 0; k < 8; k++) need |= json_byte_class[u[i + k]];
  }
  for (; i < n; i++) need |= json_byte_class[u[i]];
  return need;
}

static const char *json_add_lstring(lua_State *L, jn_Buf *b, const char *s, size_t n) {
  unsigned need = json_need((const unsigned char *)s, n);
  if ((need & 2) && !jn_scalar_isutf8(s, n)) return "holds a string that is not UTF-8 text";
  if (need & 1) {
    jn_buf_addl(L, b, "\"", 1);
    json_add_escaped(L, b, s, n);
    jn_buf_addl(L, b, "\"", 1);
  } else {
    jn_buf_addquoted(L, b, s, n, '"');
  }
  return NULL;
}

/* Append the string at idx as a JSON string.  NULL, or why it cannot be. */
static const char *json_add_string(lua_State *L, jn_Buf *b, int idx) {
  size_t n;
  const char *s = lua_tolstring(L, idx, &n);
  return json_add_lstring(L, b, s, n);
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

/* An object key (a string, by bytes) and the stack slot of its value (0: none). */
typedef struct json_Key { const char *s; size_t n; int slot; } json_Key;
static int json_key_cmp(const void *a, const void *b) {
  const json_Key *x = (const json_Key *)a, *y = (const json_Key *)b;
  int c = memcmp(x->s, y->s, x->n < y->n ? x->n : y->n);
  return c != 0 ? c : (x->n < y->n ? -1 : x->n > y->n);
}

/* Sort keys: a row's few keys by insertion, qsort past that. */
static void json_sort_keys(json_Key *keys, size_t count) {
  size_t i, j;
  if (count > 16) {
    qsort(keys, count, sizeof(json_Key), json_key_cmp);
    return;
  }
  for (i = 1; i < count; i++) {
    json_Key k = keys[i];
    for (j = i; j > 0 && json_key_cmp(&keys[j - 1], &k) > 0; j--) keys[j] = keys[j - 1];
    keys[j] = k;
  }
}

static const char *json_add(lua_State *L, jn_Buf *b, int idx, int depth, long *budget);

/* Objects of up to this many keys keep their values on the stack while
** written (no lookup by key, which would make each key a Lua string again). */
#define JSON_STACK_KEYS 64
#define JSON_FEW_KEYS 16     /* objects of up to this many keys sort them in a C array */

/* Append the table at idx, of count string keys, as an object, keys sorted. */
static const char *json_add_object(lua_State *L, jn_Buf *b, int idx, size_t count,
                                   int depth, long *budget) {
  const char *why = NULL;
  int onstack = count <= JSON_STACK_KEYS && lua_checkstack(L, (int)count + 8);
  json_Key few[JSON_FEW_KEYS];   /* a row's keys need no allocation */
  json_Key *keys = count <= JSON_FEW_KEYS ? few
                 : (json_Key *)lua_newuserdata(L, count * sizeof(json_Key));
  int base = lua_gettop(L);
  size_t k = 0;
  lua_pushnil(L);
  while (lua_next(L, idx) != 0) {   /* the keys stay anchored by the table */
    if (onstack) lua_insert(L, -2);   /* the value stays, below the key */
    else lua_pop(L, 1);
    keys[k].s = lua_tolstring(L, -1, &keys[k].n);
    keys[k].slot = onstack ? base + 1 + (int)k : 0;
    k++;
  }
  json_sort_keys(keys, count);
  jn_buf_addl(L, b, "{", 1);
  for (k = 0; k < count && why == NULL; k++) {
    if (k > 0) jn_buf_addl(L, b, ",", 1);
    why = json_add_lstring(L, b, keys[k].s, keys[k].n);
    if (why != NULL) break;
    jn_buf_addl(L, b, ":", 1);
    if (keys[k].slot != 0) {
      why = json_add(L, b, keys[k].slot, depth + 1, budget);
    } else {
      lua_pushlstring(L, keys[k].s, keys[k].n);
      lua_rawget(L, idx);
      why = json_add(L, b, lua_gettop(L), depth + 1, budget);
      lua_pop(L, 1);
    }
  }
  lua_settop(L, count <= JSON_FEW_KEYS ? base : base - 1);   /* the values (and the keys) */
  if (why == NULL) jn_buf_addl(L, b, "}", 1);
  return why;
}

/* Append the table at idx as an array or an object. */
static const char *json_add_table(lua_State *L, jn_Buf *b, int idx, int depth, long *budget) {
  size_t count = 0, nstr = 0;
  double maxint = 0;
  int marked = json_marked_array(L, idx);
  const char *why;
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
  return json_add_object(L, b, idx, count, depth, budget);
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
      if (jn_scalar_isnull(L, idx)) { jn_buf_adds(L, b, "null"); return NULL; }
      return lua_type(L, idx) == LUA_TFUNCTION ? "holds a function, which JSON cannot write"
                                               : "holds a value JSON cannot write";
  }
}

/*
** Append an object of n keys, names[i] (C strings) with the value at stack
** slot slots[i], keys sorted as for a table: what a table of those keys
** would write, without making the table (an instance's fields, jn_inst.c).
** n is at most JN_JSON_MAXKEYS.  The names are field names, identifiers
** (db:define checks them: letters, digits and _, at most JN_JSON_MAXNAME
** bytes), so they are written as they are, with no escape to look for.  NULL, or why it cannot be.  [-0, +0, m]
*/
const char *jn_json_encodeobject(lua_State *L, jn_Buf *b, const char *const *names,
                                 const int *slots, int n) {
  json_Key keys[JN_JSON_MAXKEYS];
  const char *why = NULL;
  long budget = JSON_MAX_VALUES;
  int k;
  if (n > JN_JSON_MAXKEYS) return "has too many fields";
  for (k = 0; k < n; k++) {
    keys[k].s = names[k];
    keys[k].n = strlen(names[k]);
    keys[k].slot = slots[k];
    if (keys[k].n > JN_JSON_MAXNAME) return "has a field name longer than an identifier";
  }
  json_sort_keys(keys, (size_t)n);
  for (k = 0; k < n && why == NULL; k++) {
    char key[JN_JSON_MAXNAME + 4];   /* {"name": or ,"name": in one piece */
    key[0] = k == 0 ? '{' : ',';
    key[1] = '"';
    memcpy(key + 2, keys[k].s, keys[k].n);
    key[keys[k].n + 2] = '"';
    key[keys[k].n + 3] = ':';
    jn_buf_addl(L, b, key, keys[k].n + 4);
    switch (lua_type(L, keys[k].slot)) {   /* a field's value: most are strings and numbers */
      case LUA_TSTRING: why = json_add_string(L, b, keys[k].slot); break;
      case LUA_TNUMBER: why = json_add_number(L, b, keys[k].slot); break;
      default: why = json_add(L, b, keys[k].slot, 1, &budget); break;
    }
  }
  if (n == 0) jn_buf_addl(L, b, "{", 1);
  if (why == NULL) jn_buf_addl(L, b, "}", 1);
  return why;
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

/* Append the code point cp as UTF-8. */
static void json_add_utf8(lua_State *L, jn_Buf *b, long cp) {
  char u[4];
  size_t n;
  if (cp < 0x80) { u[0] = (char)cp; n = 1; }
  else if (cp < 0x800) { u[0] = (char)(0xC0 | (cp >> 6)); u[1] = (char)(0x80 | (cp & 0x3F)); n = 2; }
  else if (cp < 0x10000) {
    u[0] = (char)(0xE0 | (cp >> 12)); u[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
    u[2] = (char)(0x80 | (cp & 0x3F)); n = 3;
  } else {
    u[0] = (char)(0xF0 | (cp >> 18)); u[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    u[2] = (char)(0x80 | ((cp >> 6) & 0x3F)); u[3] = (char)(0x80 | (cp & 0x3F)); n = 4;
  }
  jn_buf_addl(L, b, u, n);
}

/* The four digits after "\u" at s[i] (a surrogate pair as one character):
** append the character; 0 (with d->why) for a bad escape. */
static int json_uescape(lua_State *L, json_Dec *d, jn_Buf *b) {
  long cp = json_hex4(d);
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
  json_add_utf8(L, b, cp);
  return 1;
}

/* The escape whose backslash is at s[i]: append what it stands for; 0
** (with d->why) for a bad one. */
static int json_escape(lua_State *L, json_Dec *d, jn_Buf *b) {
  char ch;
  if (++d->i >= d->len) return json_fail(d, "an unterminated string");
  ch = d->s[d->i++];
  switch (ch) {
    case '"': case '\\': case '/': jn_buf_addl(L, b, &ch, 1); return 1;
    case 'b': jn_buf_adds(L, b, "\b"); return 1;
    case 'f': jn_buf_adds(L, b, "\f"); return 1;
    case 'n': jn_buf_adds(L, b, "\n"); return 1;
    case 'r': jn_buf_adds(L, b, "\r"); return 1;
    case 't': jn_buf_adds(L, b, "\t"); return 1;
    case 'u': return json_uescape(L, d, b);
    default: return json_fail(d, "a bad escape in a string");
  }
}

/* Push the string that starts at the opening quote at s[i]. */
static int json_string(lua_State *L, json_Dec *d) {
  size_t start = ++d->i;
  jn_Buf b;
  while (d->i < d->len && d->s[d->i] != '"' && d->s[d->i] != '\\' &&
         (unsigned char)d->s[d->i] >= 0x20)
    d->i++;
  if (d->i < d->len && d->s[d->i] == '"') {   /* no escapes: the bytes as they are */
    if (!jn_scalar_isutf8(d->s + start, d->i - start)) return json_fail(d, "a string that is not UTF-8");
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
    if (!json_escape(L, d, &b)) return 0;
  }
  d->i++;
  if (!jn_scalar_isutf8(b.p, b.n)) return json_fail(d, "a string that is not UTF-8");
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
  if (isint && jn_scalar_parsei64(d->s + start, d->i - start, &v)) {
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
