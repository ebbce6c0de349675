/*
** jn_error.c: the two error channels.
**
** Misuse raises (luaL_error with the model, method and argument named by
** the caller).  A failure of the database returns exactly three values,
** nil, message, code, through jn_pushfail: the message is copied out of
** SQLite at once, because sqlite3_errmsg's text changes with the next call.
*/
#include "jn.h"

/*
** Push nil, SQLite's message and the extended result code; return 3.
** On an engine with codes of its own (PostgreSQL's SQLSTATE), the code is
** the SQLite code it maps to, and a fourth value follows: a details table
** with the engine's code as `sqlstate`; return 4.
** For rc == JN_VALIDATION (a value refused before any SQL ran) the caller
** has pushed the message and the details table: push nil, message, code,
** details; return 4.
** [-0, +3, m]
*/
int jn_pushfail(lua_State *L, jn_Conn *c, int rc) {
  int code = rc;
  if (rc == JN_VALIDATION) {   /* a value refused: message and details are on top */
    lua_pushnil(L);
    lua_pushvalue(L, -3);
    lua_pushinteger(L, JN_VALIDATION);
    lua_pushvalue(L, -4);
    return 4;
  }
  lua_pushnil(L);
  if (c->why != NULL) {   /* junction refused the statement itself */
    lua_pushstring(L, c->why);
    c->why = NULL;
  } else if ((rc & 0xff) == SQLITE_INTERRUPT && c->timedout) {   /* the time limit */
    c->timedout = 0;
    code = SQLITE_INTERRUPT;
    lua_pushfstring(L, "interrupted: the statement ran longer than the connection's "
                    "timeout of %d ms", c->timeout_ms);
  } else if (c->db != NULL) {
    int ext = jn_e_errcode(c->eng, c->db);
    /* sqlite3_errmsg answers "not an error" when the failing statement has
    ** already been reset; fall back on the text of the code itself. */
    if ((ext & 0xff) == (rc & 0xff)) {
      const char *msg = jn_e_errmsg(c->eng, c->db);
      const char *state = c->eng != NULL ? c->eng->sqlstate(c->db) : NULL;
      code = ext;
      /* the first thing a new program meets: its tables were never made */
      if (strncmp(msg, "no such table: ", 15) == 0 || (state != NULL && strcmp(state, "42P01") == 0))
        lua_pushfstring(L, "%s (run db:sync() to create the tables of the models)", msg);
      else
        lua_pushstring(L, msg);
      if (state != NULL) {
        lua_pushinteger(L, code);
        lua_createtable(L, 0, 1);
        lua_pushstring(L, state);
        lua_setfield(L, -2, "sqlstate");
        return 4;
      }
    } else {
      lua_pushstring(L, sqlite3_errstr(rc));
    }
  } else {
    lua_pushstring(L, sqlite3_errstr(rc));
  }
  lua_pushinteger(L, code);
  return 3;
}

/*
** A short description of the value at idx for error messages: the Lua type,
** or "Post instance" / "model" / "connection" for junction's own userdata.
** Only called on the way to an error, so the string it may leave on the
** stack (for an instance) does not matter.
** [-0, +(0|1), m]
*/
const char *jn_typename(lua_State *L, int idx) {
  /* the metatable itself, not jn_inst_test: the error layer sits below instances */
  jn_Inst *inst = (jn_Inst *)luaL_testudata(L, idx, JN_INST_MT);
  if (inst != NULL) {
    return lua_pushfstring(L, "%s instance", inst->model->name);
  }
  if (luaL_testudata(L, idx, JN_MODEL_MT) != NULL) return "model";
  if (luaL_testudata(L, idx, JN_CONN_MT) != NULL) return "connection";
  return luaL_typename(L, idx);
}
