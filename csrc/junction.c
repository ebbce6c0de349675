/*
** junction.c: luaopen_junction_core, which builds the module table and
** lets each concern register itself, in dependency order.
*/
#include "jn.h"

JN_EXPORT int luaopen_junction_core(lua_State *L);

/* junction.type(x): "connection", "model", "instance", or nil. */
static int jn_type(lua_State *L) {
  if (jn_inst_test(L, 1) != NULL) lua_pushliteral(L, "instance");
  else if (luaL_testudata(L, 1, JN_MODEL_MT) != NULL) lua_pushliteral(L, "model");
  else if (luaL_testudata(L, 1, JN_CONN_MT) != NULL || luaL_testudata(L, 1, JN_WIRE_MT) != NULL)
    lua_pushliteral(L, "connection");
  else lua_pushnil(L);
  return 1;
}

/* junction.modelof(instance): its model, or nil for anything else. */
static int jn_modelof(lua_State *L) {
  if (jn_inst_test(L, 1) == NULL) return 0;
  jn_inst_pushmodel(L, 1);
  return 1;
}

/* junction._wireof(x): the connection of x (a connection, a model or an
** instance) when it speaks through a transport (lua/junction/wire.lua drives
** its methods), else nothing. */
static int jn_wireof(lua_State *L) {
  jn_Conn *c = NULL;
  jn_Inst *inst = jn_inst_test(L, 1);
  jn_Model *m;
  if (inst != NULL) c = inst->model->conn;
  else if ((m = (jn_Model *)luaL_testudata(L, 1, JN_MODEL_MT)) != NULL) c = m->conn;
  else if (luaL_testudata(L, 1, JN_WIRE_MT) != NULL) c = (jn_Conn *)lua_touserdata(L, 1);
#ifdef JN_WITH_PG
  if (c == NULL || c->db == NULL || c->eng != &jn_wire_engine) return 0;   /* closed: the bare method says so */
  lua_getfield(L, LUA_REGISTRYINDEX, "junction.conns");
  lua_pushlightuserdata(L, c);
  lua_rawget(L, -2);
  return 1;
#else
  (void)c;
  return 0;
#endif
}

static int null_tostring(lua_State *L) {
  lua_pushliteral(L, "junction.null");
  return 1;
}

/*
** SQLite's memory statistics off, as SQLite's recommended build options have
** them (Debian's library is built with them on): with them, every one of
** SQLite's allocations takes a process-wide mutex to count itself, about
** 1,800 instructions of a two-statement read.  junction reads none of them.
** sqlite3_config refuses (SQLITE_MISUSE, ignored) once anything in the
** process has initialised SQLite: a binding loaded before junction keeps them.
*/
static void sqlite_config(void) {
  (void)sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
}

int luaopen_junction_core(lua_State *L) {
  sqlite_config();
  lua_newtable(L);
  jn_inst_open(L);     /* first: define copies the instance methods */
  jn_frag_open(L);
  jn_conn_open(L);
  jn_schema_open(L);
  jn_sync_open(L);
  jn_model_open(L);
  jn_assoc_open(L);
  jn_assocm_open(L);   /* after conn: adds db:_associate */
  jn_hasmany_open(L);  /* after assoc: adds Association:_method */
  lua_newuserdata(L, 1);              /* junction.null */
  lua_newtable(L);
  lua_pushcfunction(L, null_tostring);
  lua_setfield(L, -2, "__tostring");
  lua_setmetatable(L, -2);
  lua_pushvalue(L, -1);
  lua_setfield(L, LUA_REGISTRYINDEX, JN_NULL);
  lua_setfield(L, -2, "null");
  lua_pushcfunction(L, jn_type);
  lua_setfield(L, -2, "type");
  lua_pushcfunction(L, jn_modelof);
  lua_setfield(L, -2, "modelof");
  lua_pushcfunction(L, jn_wireof);
  lua_setfield(L, -2, "_wireof");
  lua_pushliteral(L, JUNCTION_VERSION);
  lua_setfield(L, -2, "version");
  lua_pushstring(L, sqlite3_libversion());
  lua_setfield(L, -2, "sqlite_version");
  return 1;
}
