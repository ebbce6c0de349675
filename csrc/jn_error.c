/*
** jn_error.c: the two error channels, and the one way a call ends.
**
** Misuse raises (luaL_error with the model, method and argument named by
** the caller).  A failure of the database, or a value refused, returns
** nil, message, code[, details] through jn_error_result: the message is copied at
** once (SQLite's text changes with the next call), and the number of
** values pushed is what jn_error_result returns, never a count the caller
** assumes.  jn_error_finish (inline in jn.h, its failure path here) ends a
** statement the same way.
*/
#include "jn.h"

/*
** The message of a refusal code (JN_RC_*, jn.h): junction refused the
** statement itself, so no database text goes with it.
*/
static const char *refusal(int rc) {
  switch (rc) {
    case JN_RC_YIELDED:
      return "the connection is inside the transaction of a coroutine that has yielded";
    case JN_RC_KILLED:
      return "the transaction this runs in was already rolled back (it was left suspended "
             "when the transaction around it ended, or the transaction around it was dropped)";
    case JN_RC_ROLLEDBACK:
      return "the transaction was rolled back by an earlier error; nothing more is written "
             "until db:transaction returns";
    case JN_RC_OLDSQLITE:
      return "junction needs SQLite 3.29.0 or later (to turn double-quoted string literals off)";
    default:
      return NULL;
  }
}

/*
** A failure junction describes itself: the message and, on top of it, the
** details table are pushed; push nil, the message, code and the details;
** return 4.
** [-0, +4, m]
*/
int jn_error_faildetails(lua_State *L, int code) {
  lua_pushnil(L);
  lua_pushvalue(L, -3);
  lua_pushinteger(L, code);
  lua_pushvalue(L, -4);
  return 4;
}

/*
** Push the database's message for rc and return the code to report: the
** extended code when the connection's last failure is rc's, the time
** limit's own message, or the text of rc itself (the failing statement may
** have been reset: SQLite then says "not an error").  *state is the
** engine's own code (PostgreSQL's SQLSTATE) or NULL.
** [-0, +1, m]
*/
static int push_dbmsg(lua_State *L, jn_Conn *c, int rc, const char **state) {
  *state = NULL;
  if ((rc & 0xff) == SQLITE_INTERRUPT && c->timedout) {   /* the time limit */
    c->timedout = 0;
    lua_pushfstring(L, "interrupted: the statement ran longer than the connection's "
                    "timeout of %d ms", c->timeout_ms);
    return SQLITE_INTERRUPT;
  }
  if (c->db != NULL) {
    int ext = jn_e_errcode(c->eng, c->db);
    if ((ext & 0xff) == (rc & 0xff)) {
      const char *msg = jn_e_errmsg(c->eng, c->db);
      *state = jn_e_sqlstate(c->eng, c->db);
      /* the first thing a new program meets: its tables were never made */
      if (strncmp(msg, "no such table: ", 15) == 0 || (*state != NULL && strcmp(*state, "42P01") == 0))
        lua_pushfstring(L, "%s (run db:sync() to create the tables of the models)", msg);
      else if (*state != NULL && strcmp(*state, "57014") == 0 && c->timeout_ms > 0 &&
               strstr(msg, "statement timeout") != NULL)   /* the server kept the time limit */
        lua_pushfstring(L, "interrupted: the statement ran longer than the connection's "
                        "timeout of %d ms", c->timeout_ms);
      else
        lua_pushstring(L, msg);
      return ext;
    }
  }
  lua_pushstring(L, jn_e_errstr(rc));
  return rc;
}

/*
** End a Lua-facing call with the status rc, in the manner of
** luaL_fileresult.  On success (SQLITE_OK) the caller has pushed its one
** result: return 1.  Otherwise push the failure and return how many values
** that is (every other code is a failure, SQLITE_DONE included: a count
** that found no row):
** - nil, msg, rc when msg is given (junction's own message; rc its code;
**   c may then be NULL);
** - nil, the refusal's message, its SQLite code for a JN_RC_* code;
** - nil, message, code, details for JN_VALIDATION without msg, whose
**   message and details the caller pushed (jn_error_faildetails);
** - else nil, the database's message, its extended code, and on an engine
**   with codes of its own a details table { sqlstate = ... }: 3 or 4.
** [-0, +(0|3|4), m]
*/
int jn_error_result(lua_State *L, jn_Conn *c, int rc, const char *msg) {
  const char *state;
  int code;
  if (rc == SQLITE_OK) return 1;
  if (rc == JN_VALIDATION && msg == NULL) return jn_error_faildetails(L, JN_VALIDATION);
  if (msg == NULL && (msg = refusal(rc)) != NULL) rc &= 0xff;
  lua_pushnil(L);
  if (msg != NULL) {
    lua_pushstring(L, msg);
    lua_pushinteger(L, rc);
    return 3;
  }
  code = push_dbmsg(L, c, rc, &state);
  lua_pushinteger(L, code);
  if (state == NULL) return 3;
  lua_createtable(L, 0, 1);
  lua_pushstring(L, state);
  lua_setfield(L, -2, "sqlstate");
  return 4;
}

/*
** jn_error_finish (jn.h) when rc is not the step's success: push the
** failure (read before the reset, which may clear it), then reset st.
** Returns jn_error_result's count.
** [-0, +(0|3|4), m]
*/
int jn_error_finishfail(lua_State *L, jn_Conn *c, jn_St *st, int rc) {
  int n = jn_error_result(L, c, rc, NULL);
  jn_e_reset(c->eng, st);
  return n;
}

/*
** A short description of the value at idx for error messages: the Lua type,
** or "Post instance" / "model" / "connection" for junction's own userdata.
** Only called on the way to an error, so the string it may leave on the
** stack (for an instance) does not matter.
** [-0, +(0|1), m]
*/
const char *jn_error_typename(lua_State *L, int idx) {
  /* the metatable itself, not jn_inst_test: the error layer sits below instances */
  jn_Inst *inst = (jn_Inst *)luaL_testudata(L, idx, JN_INST_MT);
  if (inst != NULL) {
    return lua_pushfstring(L, "%s instance", inst->model->name);
  }
  if (luaL_testudata(L, idx, JN_MODEL_MT) != NULL) return "model";
  if (luaL_testudata(L, idx, JN_CONN_MT) != NULL || luaL_testudata(L, idx, JN_WIRE_MT) != NULL)
    return "connection";
  return luaL_typename(L, idx);
}
