/*
** jn_buf.c: the growable SQL text buffer every layer above builds its SQL
** in.  Its memory is a Lua userdata on the stack of the call, so a raise
** in the middle of building frees it with everything else.
*/
#include "jn.h"

/* {====== SQL text buffer */

void jn_buf_init(lua_State *L, jn_Buf *b) {
  b->cap = 256;
  b->n = 0;
  b->p = (char *)lua_newuserdata(L, b->cap);
  b->idx = lua_gettop(L);
}

/*
** Start an empty buffer in the caller's own memory mem[0..cap) (its C
** stack: nothing to allocate or collect for a short text); past it, the
** text moves to a userdata as jn_buf_init's does.  Pushes the slot that
** userdata will take (nil until then).
*/
void jn_buf_initat(lua_State *L, jn_Buf *b, char *mem, size_t cap) {
  b->cap = cap;
  b->n = 0;
  b->p = mem;
  lua_pushnil(L);
  b->idx = lua_gettop(L);
}

/*
** Make room for need more bytes (and a NUL): a larger userdata replaces the
** old one in its stack slot, so the memory always belongs to Lua.
*/
void jn_buf_reserve(lua_State *L, jn_Buf *b, size_t need) {
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

void jn_buf_adds(lua_State *L, jn_Buf *b, const char *s) {
  jn_buf_addl(L, b, s, strlen(s));
}

/* Append q, s[0..len), q: one reservation for the three. */
void jn_buf_addquoted(lua_State *L, jn_Buf *b, const char *s, size_t len, char q) {
  jn_buf_reserve(L, b, len + 2);
  b->p[b->n++] = q;
  memcpy(b->p + b->n, s, len);
  b->n += len;
  b->p[b->n++] = q;
}

/*
** Append alias."name" (or "name" without an alias).  Names come only from
** declarations, which jn_schema_checkident has vetted, so there is no quote in
** them to double.
*/
void jn_buf_addident(lua_State *L, jn_Buf *b, const char *alias, const char *name) {
  size_t len = strlen(name);
  if (alias != NULL) {
    jn_buf_adds(L, b, alias);
    jn_buf_addl(L, b, ".", 1);
  }
  jn_buf_addquoted(L, b, name, len, '"');
}

void jn_buf_addint(lua_State *L, jn_Buf *b, long long v) {
  char tmp[24];   /* 20 digits and a sign */
  char *end = tmp + sizeof tmp, *p = end;
  /* the magnitude as unsigned, so that LLONG_MIN has one too */
  unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;
  do {   /* digits from the last; snprintf's format parsing costs more than the number */
    *--p = (char)('0' + (int)(u % 10));
    u /= 10;
  } while (u != 0);
  if (v < 0) *--p = '-';
  jn_buf_addl(L, b, p, (size_t)(end - p));
}

/* The text so far, NUL-terminated; valid until the next append. */
const char *jn_buf_cstr(lua_State *L, jn_Buf *b) {
  jn_buf_reserve(L, b, 0);
  b->p[b->n] = '\0';
  return b->p;
}

/* }====== */
