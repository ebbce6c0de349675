/*
** jn_compat.h: the Lua 5.3 C API on Lua 5.1 and LuaJIT 2.1.
**
** junction is written against the 5.3/5.4 API.  Under 5.1 each missing
** function is a static function under a jn_ name, and the Lua name is a
** macro for it (after #undef): LuaJIT declares some of the 5.2 functions
** itself, so a real lua_/luaL_ symbol of ours could clash with it, and a
** module built on the 5.1 headers must reference only 5.1 symbols so that
** the same .so loads in lua5.1, luajit and nginx.  Only this file knows
** about versions.
*/
#ifndef JN_COMPAT_H
#define JN_COMPAT_H

#include <lua.h>
#include <lauxlib.h>

#ifndef LUA_OK
#define LUA_OK 0
#endif

#if LUA_VERSION_NUM == 501

#define JN_LUA51 1

#define lua_rawlen(L, i)        lua_objlen((L), (i))

/* The 5.1 "uservalue" is the fenv, which must be a table: junction only
** ever stores tables there. */
#define lua_setuservalue(L, i)  ((void)lua_setfenv((L), (i)))
#define lua_getuservalue(L, i)  (lua_getfenv((L), (i)), lua_type((L), -1))

/* An integer in 5.1 is a number with no fraction, within 2^53. */
static inline int jn_isinteger(lua_State *L, int i) {
  lua_Number n;
  if (lua_type(L, i) != LUA_TNUMBER) return 0;
  n = lua_tonumber(L, i);
  return n >= -9007199254740992.0 && n <= 9007199254740992.0 &&
         n == (lua_Number)(long long)n;
}
#define lua_isinteger(L, i)     jn_isinteger((L), (i))

static inline void jn_setfuncs(lua_State *L, const luaL_Reg *l, int nup) {
  luaL_checkstack(L, nup + 1, "too many upvalues");
  for (; l->name != NULL; l++) {
    int i;
    for (i = 0; i < nup; i++) lua_pushvalue(L, -nup);
    lua_pushcclosure(L, l->func, nup);
    lua_setfield(L, -(nup + 2), l->name);
  }
  lua_pop(L, nup);
}
#undef  luaL_setfuncs
#define luaL_setfuncs(L, l, n)  jn_setfuncs((L), (l), (n))

static inline void *jn_testudata(lua_State *L, int i, const char *tname) {
  void *p = lua_touserdata(L, i);
  if (p == NULL || !lua_getmetatable(L, i)) return NULL;
  luaL_getmetatable(L, tname);
  if (!lua_rawequal(L, -1, -2)) p = NULL;
  lua_pop(L, 2);
  return p;
}
#undef  luaL_testudata
#define luaL_testudata(L, i, t) jn_testudata((L), (i), (t))

/* luaL_tolstring (5.2): any value as text, __tostring honoured. */
static inline const char *jn_tolstring(lua_State *L, int idx, size_t *len) {
  if (idx < 0 && idx > LUA_REGISTRYINDEX) idx = lua_gettop(L) + idx + 1;
  if (luaL_callmeta(L, idx, "__tostring")) {
    if (!lua_isstring(L, -1)) luaL_error(L, "'__tostring' must return a string");
  } else {
    switch (lua_type(L, idx)) {
      case LUA_TNUMBER: case LUA_TSTRING: lua_pushvalue(L, idx); break;
      case LUA_TBOOLEAN: lua_pushstring(L, lua_toboolean(L, idx) ? "true" : "false"); break;
      case LUA_TNIL: lua_pushliteral(L, "nil"); break;
      default: lua_pushfstring(L, "%s: %p", luaL_typename(L, idx), lua_topointer(L, idx)); break;
    }
  }
  return lua_tolstring(L, -1, len);
}
#undef  luaL_tolstring
#define luaL_tolstring(L, i, n) jn_tolstring((L), (i), (n))

#undef  luaL_setmetatable
#define luaL_setmetatable(L, t) (luaL_getmetatable((L), (t)), (void)lua_setmetatable((L), -2))

/* A new userdata whose uservalue is nil until it is set: 5.1 gives it the
** running function's environment, so it gets an empty table there. */
static inline void *jn_newuserdata_nouv(lua_State *L, size_t size) {
  void *p = lua_newuserdata(L, size);
  lua_newtable(L);
  (void)lua_setfenv(L, -2);
  return p;
}

#elif LUA_VERSION_NUM == 503 || LUA_VERSION_NUM == 504

#define JN_LUA51 0

#define jn_newuserdata_nouv(L, size) lua_newuserdata((L), (size))

#else
#error "junction: unsupported Lua version (5.1, 5.3, 5.4 and LuaJIT 2.1 are)"
#endif

#endif /* JN_COMPAT_H */
