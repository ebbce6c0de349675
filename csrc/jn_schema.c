/*
** jn_schema.c: declarations.  junction.types, db:define (every option and
** identifier checked, the model's fixed SQL generated once), and db:sync
** (CREATE TABLE in foreign-key order, with constraints and indexes).
**
** A model is a userdata (jn_Model plus its fields) whose uservalue table
** anchors everything Lua-side it points to: the connection, the field
** declarations and their name strings, the generated SQL, defaults, and the
** lookup table that instances use to resolve a name to a field, a method
** or a loaded association.
*/
#include "jn.h"
#include <stdio.h>
#include <stdlib.h>

#define JN_TYPE_MT "junction.Type"

static const char *const type_names[] = {
  "INTEGER", "TEXT", "STRING", "REAL", "BLOB", "BOOLEAN", "DATE", NULL
};
/* The column type each junction type gets in CREATE TABLE.  DATE is TEXT,
** not DATETIME, whose NUMERIC affinity would turn "2024" into a number. */
static const char *const type_sql[] = {
  "INTEGER", "TEXT", "VARCHAR", "REAL", "BLOB", "BOOLEAN", "TEXT", NULL
};

static const char *const define_opts[] = {
  "tableName", "timestamps", "underscored", "fields", NULL
};
static const char *const field_opts[] = {
  "type", "allowNull", "primaryKey", "autoIncrement", "defaultValue", "unique",
  "references", "onDelete", "onUpdate", "comment", NULL
};
static const char *const ref_actions[] = {
  "cascade", "set null", "set default", "restrict", "no action", NULL
};

/* {====== Identifiers and checks */

/*
** Raise unless the string at idx is a plain identifier: a letter or _,
** then letters, digits and _, at most 64 bytes, no NUL.  Everything junction
** writes into SQL as a name passes here.  ctx says where it came from.
*/
void jn_check_ident(lua_State *L, int idx, const char *ctx) {
  size_t len, i;
  const char *s = lua_type(L, idx) == LUA_TSTRING ? lua_tolstring(L, idx, &len) : NULL;
  int ok = s != NULL && len > 0 && len <= 64 &&
           ((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= 'A' && s[0] <= 'Z') || s[0] == '_');
  for (i = 1; ok && i < len; i++)
    ok = (s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
         (s[i] >= '0' && s[i] <= '9') || s[i] == '_';
  if (!ok) {
    if (s == NULL) luaL_error(L, "%s (string expected, got %s)", ctx, luaL_typename(L, idx));
    luaL_error(L, "%s (bad identifier '%s': a letter or _, then letters, digits and _, at most 64)",
               ctx, s);
  }
}

static jn_Model *check_model(lua_State *L, int idx) {
  return (jn_Model *)luaL_checkudata(L, idx, JN_MODEL_MT);
}

/* The model at idx, whose connection must be open. */
jn_Model *jn_model_checkopen(lua_State *L, int idx) {
  jn_Model *m = check_model(L, idx);
  jn_conn_checkopen(L, m->conn, m->name, NULL);
  return m;
}

/* Push field key of the uservalue of the model at modelidx. [-0, +1, -] */
void jn_model_uv(lua_State *L, int modelidx, const char *key) {
  lua_getuservalue(L, modelidx);
  lua_getfield(L, -1, key);
  lua_remove(L, -2);
}

/* Push the model's lookup table. [-0, +1, -] */
void jn_model_lookup(lua_State *L, jn_Model *m) {
  lua_getfield(L, LUA_REGISTRYINDEX, JN_LOOKUPS);
  lua_pushlightuserdata(L, m);
  lua_rawget(L, -2);
  lua_remove(L, -2);
}

/* The 0-based index of the field named by the string at nameidx, or -1. */
int jn_model_field(lua_State *L, jn_Model *m, int nameidx) {
  int idx = -1;
  if (nameidx < 0) nameidx = lua_gettop(L) + nameidx + 1;
  jn_model_lookup(L, m);
  lua_pushvalue(L, nameidx);
  lua_rawget(L, -2);
  if (lua_type(L, -1) == LUA_TNUMBER) idx = (int)lua_tointeger(L, -1) - 1;
  lua_pop(L, 2);
  return idx;
}

/* The 0-based index of the field name, or -1. */
int jn_model_fieldname(jn_Model *m, const char *name) {
  int i;
  for (i = 0; i < m->nfields; i++)
    if (strcmp(m->f[i].name, name) == 0) return i;
  return -1;
}

/* }====== */

/* {====== junction.types */

/* A type value: a table {code=, length=, sql=} sharing the type metatable. */
static void push_type(lua_State *L, int code, int length) {
  char sql[48];
  lua_createtable(L, 0, 3);
  lua_pushinteger(L, code);
  lua_setfield(L, -2, "code");
  lua_pushinteger(L, length);
  lua_setfield(L, -2, "length");
  if (code == JN_T_STRING) snprintf(sql, sizeof sql, "VARCHAR(%d)", length);
  else snprintf(sql, sizeof sql, "%s", type_sql[code]);
  lua_pushstring(L, sql);
  lua_setfield(L, -2, "sql");
  luaL_setmetatable(L, JN_TYPE_MT);
}

/* T.STRING(n): a VARCHAR(n).  T.STRING itself, uncalled, is VARCHAR(255). */
static int type_string(lua_State *L) {
  int n = (int)luaL_optinteger(L, 1, 255);
  if (!lua_isnoneornil(L, 1) && !lua_isinteger(L, 1))
    luaL_error(L, "junction.types.STRING: bad length (integer expected, got %s)", luaL_typename(L, 1));
  luaL_argcheck(L, n > 0, 1, "length must be positive");
  push_type(L, JN_T_STRING, n);
  return 1;
}

static int type_tostring(lua_State *L) {
  lua_getfield(L, 1, "sql");
  return 1;
}

/* Push junction.types. */
static void new_types(lua_State *L) {
  int i;
  luaL_newmetatable(L, JN_TYPE_MT);
  lua_pushcfunction(L, type_tostring);
  lua_setfield(L, -2, "__tostring");
  lua_pop(L, 1);
  lua_newtable(L);
  for (i = 0; type_names[i] != NULL; i++) {
    if (i == JN_T_STRING) lua_pushcfunction(L, type_string);
    else push_type(L, i, 0);
    lua_setfield(L, -2, type_names[i]);
  }
}

/* }====== */

/* {====== db:define */

/* Read the type at idx (a junction.types value or its name); raise if bad. */
static int check_type(lua_State *L, int idx, const char *ctx, int *length) {
  int code;
  if (lua_type(L, idx) == LUA_TSTRING) {
    const char *s = lua_tostring(L, idx);
    for (code = 0; type_names[code] != NULL; code++)
      if (strcmp(s, type_names[code]) == 0) {
        *length = code == JN_T_STRING ? 255 : 0;
        return code;
      }
    return luaL_error(L, "db:define: %s: bad option 'type' (unknown type '%s')", ctx, s);
  }
  if (lua_tocfunction(L, idx) == type_string) {   /* T.STRING, not called */
    *length = 255;
    return JN_T_STRING;
  }
  {
    int ok = lua_istable(L, idx) && lua_getmetatable(L, idx);
    if (ok) {
      luaL_getmetatable(L, JN_TYPE_MT);
      ok = lua_rawequal(L, -1, -2);
      lua_pop(L, 2);
    }
    if (!ok)
      return luaL_error(L, "db:define: %s: bad option 'type' (a junction.types value expected, got %s)",
                        ctx, luaL_typename(L, idx));
  }
  lua_getfield(L, idx, "code");
  code = (int)lua_tointeger(L, -1);
  lua_getfield(L, idx, "length");
  *length = (int)lua_tointeger(L, -1);
  lua_pop(L, 2);
  return code;
}

static int opt_bool(lua_State *L, int tidx, const char *key, int dflt, const char *ctx) {
  int v = dflt;
  lua_getfield(L, tidx, key);
  if (!lua_isnil(L, -1)) {
    if (!lua_isboolean(L, -1))
      luaL_error(L, "db:define: %s: bad option '%s' (boolean expected, got %s)", ctx, key,
                 luaL_typename(L, -1));
    v = lua_toboolean(L, -1);
  }
  lua_pop(L, 1);
  return v;
}

/* A referential action, lower-cased, checked against the list. */
static void check_action(lua_State *L, int declidx, int specidx, const char *key, const char *ctx) {
  int i;
  char low[16];
  const char *v;
  size_t n, k;
  lua_getfield(L, specidx, key);
  if (lua_isnil(L, -1)) { lua_pop(L, 1); return; }
  if (lua_type(L, -1) != LUA_TSTRING)
    luaL_error(L, "db:define: %s: bad option '%s' (string expected, got %s)", ctx, key,
               luaL_typename(L, -1));
  v = lua_tolstring(L, -1, &n);
  for (k = 0; k < n && k < sizeof low - 1; k++)
    low[k] = (char)((v[k] >= 'A' && v[k] <= 'Z') ? v[k] - 'A' + 'a' : v[k]);
  low[k] = '\0';
  for (i = 0; ref_actions[i] != NULL; i++)
    if (n < sizeof low && strcmp(low, ref_actions[i]) == 0) break;
  if (ref_actions[i] == NULL)
    luaL_error(L, "db:define: %s: bad option '%s' (unknown action '%s')", ctx, key, v);
  lua_pop(L, 1);
  lua_pushstring(L, ref_actions[i]);
  lua_setfield(L, declidx, key);
}

/*
** Check one field's declaration (the table at specidx) and fill the
** normalized declaration table at declidx and *f.
*/
static void check_field(lua_State *L, jn_Field *f, int specidx, int declidx, const char *model) {
  char ctx[160];
  int length = 0;
  snprintf(ctx, sizeof ctx, "%s.%s", model, f->name);
  if (!lua_istable(L, specidx))
    luaL_error(L, "db:define: %s: bad field (table expected, got %s)", ctx, luaL_typename(L, specidx));
  {
    char octx[180];
    snprintf(octx, sizeof octx, "db:define: %s", ctx);
    jn_query_checkopts(L, specidx, field_opts, octx);
  }
  lua_getfield(L, specidx, "type");
  if (lua_isnil(L, -1)) luaL_error(L, "db:define: %s: missing option 'type'", ctx);
  f->type = check_type(L, lua_gettop(L), ctx, &length);
  f->length = length;
  lua_pop(L, 1);
  f->flags = 0;
  if (opt_bool(L, specidx, "primaryKey", 0, ctx)) f->flags |= JN_F_PK | JN_F_NOTNULL;
  if (opt_bool(L, specidx, "autoIncrement", 0, ctx)) {
    if (!(f->flags & JN_F_PK) || f->type != JN_T_INTEGER)
      luaL_error(L, "db:define: %s: bad option 'autoIncrement' (only for an INTEGER primary key)", ctx);
    f->flags |= JN_F_AUTOINC;
  }
  if (!opt_bool(L, specidx, "allowNull", !(f->flags & JN_F_PK), ctx)) f->flags |= JN_F_NOTNULL;
  lua_getfield(L, specidx, "unique");
  if (lua_type(L, -1) == LUA_TBOOLEAN) {
    if (lua_toboolean(L, -1)) f->flags |= JN_F_UNIQUE;
  } else if (lua_type(L, -1) == LUA_TSTRING) {
    lua_pushvalue(L, -1);
    lua_setfield(L, declidx, "unique");
  } else if (!lua_isnil(L, -1)) {
    luaL_error(L, "db:define: %s: bad option 'unique' (boolean or group name expected, got %s)",
               ctx, luaL_typename(L, -1));
  }
  lua_pop(L, 1);
  lua_getfield(L, specidx, "defaultValue");
  if (!lua_isnil(L, -1)) {
    int t = lua_type(L, -1);
    if (t != LUA_TSTRING && t != LUA_TNUMBER && t != LUA_TBOOLEAN && t != LUA_TFUNCTION)
      luaL_error(L, "db:define: %s: bad option 'defaultValue' (%s cannot be stored)", ctx,
                 luaL_typename(L, -1));
    f->flags |= JN_F_DEFAULT;
    lua_pushvalue(L, -1);
    lua_setfield(L, declidx, "default");
  }
  lua_pop(L, 1);
  lua_getfield(L, specidx, "references");
  if (!lua_isnil(L, -1)) {
    int ref = lua_gettop(L);
    if (!lua_istable(L, ref))
      luaL_error(L, "db:define: %s: bad option 'references' (table expected, got %s)", ctx,
                 luaL_typename(L, ref));
    lua_getfield(L, ref, "model");
    lua_getfield(L, ref, "key");
    if (lua_type(L, -2) != LUA_TSTRING)
      luaL_error(L, "db:define: %s: bad option 'references' (model name expected in 'model')", ctx);
    {
      char rctx[200];
      snprintf(rctx, sizeof rctx, "db:define: %s: bad option 'references'", ctx);
      jn_check_ident(L, lua_gettop(L) - 1, rctx);
      if (!lua_isnil(L, -1)) jn_check_ident(L, lua_gettop(L), rctx);
    }
    if (!lua_isnil(L, -1)) {
      if (lua_type(L, -1) != LUA_TSTRING)
        luaL_error(L, "db:define: %s: bad option 'references' (field name expected in 'key')", ctx);
      lua_setfield(L, declidx, "ref_key");
    } else {
      lua_pop(L, 1);
    }
    lua_setfield(L, declidx, "ref_model");
    check_action(L, declidx, specidx, "onDelete", ctx);
    check_action(L, declidx, specidx, "onUpdate", ctx);
  } else {
    lua_getfield(L, specidx, "onDelete");
    lua_getfield(L, specidx, "onUpdate");
    if (!lua_isnil(L, -1) || !lua_isnil(L, -2))
      luaL_error(L, "db:define: %s: bad option 'onDelete'/'onUpdate' (only with 'references')", ctx);
    lua_pop(L, 2);
  }
  lua_pop(L, 1);
}

/* Is the field named by the string at nameidx declared as a primary key? */
static int is_pk(lua_State *L, int fieldsidx, int nameidx) {
  int pk = 0;
  lua_pushvalue(L, nameidx);
  lua_rawget(L, fieldsidx);
  if (lua_istable(L, -1)) {
    lua_getfield(L, -1, "primaryKey");
    pk = lua_toboolean(L, -1);
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
  return pk;
}

/* Order of names[a] and names[b]: a primary key first, then by name. */
static int name_less(lua_State *L, int fieldsidx, int names, int a, int b) {
  int pa, pb, less;
  lua_rawgeti(L, names, a);
  lua_rawgeti(L, names, b);
  pa = is_pk(L, fieldsidx, lua_gettop(L) - 1);
  pb = is_pk(L, fieldsidx, lua_gettop(L));
  less = pa != pb ? pa : strcmp(lua_tostring(L, -2), lua_tostring(L, -1)) < 0;
  lua_pop(L, 2);
  return less;
}

/*
** Push an array of the names in spec.fields, in column order: the primary
** key first, then by name (a Lua table keeps no declaration order).
*/
static int field_order(lua_State *L, int fieldsidx, const char *model) {
  int n = 0, i, j, names;
  lua_newtable(L);
  names = lua_gettop(L);
  lua_pushnil(L);
  while (lua_next(L, fieldsidx) != 0) {
    lua_pop(L, 1);
    if (lua_type(L, -1) != LUA_TSTRING)
      luaL_error(L, "db:define: %s: bad field name (string expected, got %s)", model,
                 luaL_typename(L, -1));
    lua_pushvalue(L, -1);
    lua_rawseti(L, names, ++n);
  }
  for (i = 2; i <= n; i++)
    for (j = i; j > 1 && name_less(L, fieldsidx, names, j, j - 1); j--) {
      lua_rawgeti(L, names, j);
      lua_rawgeti(L, names, j - 1);
      lua_rawseti(L, names, j);
      lua_rawseti(L, names, j - 1);
    }
  return n;
}

/* Append one generated SQL text to the model and keep it in uv.sql. */
static const char *keep_sql(lua_State *L, int sqlidx, const char *key, jn_Buf *b) {
  lua_pushlstring(L, b->p, b->n);
  lua_pushvalue(L, -1);
  lua_setfield(L, sqlidx, key);
  lua_pop(L, 1);
  lua_getfield(L, sqlidx, key);
  {
    const char *s = lua_tostring(L, -1);
    lua_pop(L, 1);   /* still anchored in uv.sql */
    return s;
  }
}

/* Generate the model's fixed statements: insert (without and with the key),
** select by key, delete by key, and the column list. */
static void gen_sql(lua_State *L, jn_Model *m, int sqlidx) {
  jn_Buf b;
  int i, n;
  jn_buf_init(L, &b);
  for (i = 0; i < m->nfields; i++) {
    if (i) jn_buf_adds(L, &b, ", ");
    jn_buf_addident(L, &b, NULL, m->f[i].name);
  }
  m->cols = keep_sql(L, sqlidx, "cols", &b);
  for (n = 0; n < 2; n++) {   /* n == 0: the key is left to SQLite */
    int k = 0;
    b.n = 0;
    jn_buf_adds(L, &b, "INSERT INTO ");
    jn_buf_addident(L, &b, NULL, m->table);
    jn_buf_adds(L, &b, " (");
    for (i = 0; i < m->nfields; i++) {
      if (n == 0 && i == m->pk && (m->f[i].flags & JN_F_AUTOINC)) continue;
      if (k++) jn_buf_adds(L, &b, ", ");
      jn_buf_addident(L, &b, NULL, m->f[i].name);
    }
    jn_buf_adds(L, &b, ") VALUES (");
    for (i = 0; i < k; i++) jn_buf_adds(L, &b, i ? ", ?" : "?");
    jn_buf_adds(L, &b, ")");
    m->sql[n == 0 ? JN_MS_INSERT : JN_MS_INSERT_PK] =
      keep_sql(L, sqlidx, n == 0 ? "insert" : "insert_pk", &b);
  }
  b.n = 0;
  jn_buf_adds(L, &b, "SELECT ");
  jn_buf_adds(L, &b, m->cols);
  jn_buf_adds(L, &b, " FROM ");
  jn_buf_addident(L, &b, NULL, m->table);
  jn_buf_adds(L, &b, " WHERE ");
  jn_buf_addident(L, &b, NULL, m->f[m->pk].name);
  jn_buf_adds(L, &b, " = ?");
  m->sql[JN_MS_BY_PK] = keep_sql(L, sqlidx, "by_pk", &b);
  b.n = 0;
  jn_buf_adds(L, &b, "DELETE FROM ");
  jn_buf_addident(L, &b, NULL, m->table);
  jn_buf_adds(L, &b, " WHERE ");
  jn_buf_addident(L, &b, NULL, m->f[m->pk].name);
  jn_buf_adds(L, &b, " = ?");
  m->sql[JN_MS_DELETE_PK] = keep_sql(L, sqlidx, "delete_pk", &b);
  lua_pop(L, 1);
}

/*
** Build the lookup table: field names -> 1-based index, then every instance
** method (a field may not take a method's name).
*/
static void build_lookup(lua_State *L, jn_Model *m, int uvidx) {
  int i;
  lua_newtable(L);
  lua_getfield(L, LUA_REGISTRYINDEX, JN_INST_METHODS);
  lua_pushnil(L);
  while (lua_next(L, -2) != 0) {
    lua_pushvalue(L, -2);
    lua_insert(L, -2);
    lua_rawset(L, -5);
  }
  lua_pop(L, 1);
  for (i = 0; i < m->nfields; i++) {
    lua_getfield(L, -1, m->f[i].name);
    if (!lua_isnil(L, -1))
      luaL_error(L, "db:define: %s.%s: bad field name (it is the name of an instance method)",
                 m->name, m->f[i].name);
    lua_pop(L, 1);
    lua_pushinteger(L, i + 1);
    lua_setfield(L, -2, m->f[i].name);
  }
  lua_setfield(L, uvidx, JN_UV_LOOKUP);   /* the model holds it strongly */
  lua_getfield(L, LUA_REGISTRYINDEX, JN_LOOKUPS);
  lua_pushlightuserdata(L, m);
  lua_getfield(L, uvidx, JN_UV_LOOKUP);
  lua_rawset(L, -3);
  lua_pop(L, 1);
}

/* Add a timestamp field unless declared; returns its index. */
static int timestamp_field(lua_State *L, jn_Model *m, int declsidx, const char *name) {
  int i = jn_model_fieldname(m, name);
  if (i >= 0) return i;
  i = m->nfields++;
  lua_createtable(L, 0, 2);
  lua_pushstring(L, name);
  m->f[i].name = lua_tostring(L, -1);
  lua_setfield(L, -2, "name");
  lua_rawseti(L, declsidx, i + 1);
  m->f[i].type = JN_T_DATE;
  m->f[i].flags = JN_F_NOTNULL;
  m->f[i].length = 0;
  return i;
}

/*** Define a model.
@function db:define
@tparam string name
@tparam table spec tableName, timestamps, underscored, fields
@treturn Model
*/
int jn_schema_define(lua_State *L) {
  jn_Conn *c = jn_conn_check(L, 1, "db:define");
  const char *name = luaL_checkstring(L, 2);
  int nf, i, timestamps, underscored, fieldsidx, orderidx, uvidx, declsidx, defidx;
  size_t size;
  jn_Model *m;
  jn_check_ident(L, 2, "db:define: bad model name");
  luaL_checktype(L, 3, LUA_TTABLE);
  lua_pushfstring(L, "db:define: %s", name);
  jn_query_checkopts(L, 3, define_opts, lua_tostring(L, -1));
  lua_settop(L, 3);
  lua_getuservalue(L, 1);
  lua_getfield(L, -1, "models");
  lua_getfield(L, -1, name);
  if (!lua_isnil(L, -1)) luaL_error(L, "db:define: model '%s' is already defined", name);
  lua_settop(L, 3);
  timestamps = opt_bool(L, 3, "timestamps", 1, name);
  underscored = opt_bool(L, 3, "underscored", 0, name);
  lua_getfield(L, 3, "fields");                      /* 4: fields */
  fieldsidx = 4;
  if (!lua_istable(L, fieldsidx))
    luaL_error(L, "db:define: %s: bad option 'fields' (table expected, got %s)", name,
               luaL_typename(L, fieldsidx));
  nf = field_order(L, fieldsidx, name);              /* 5: names in order */
  orderidx = 5;
  size = sizeof(jn_Model) + (size_t)(nf + 3) * sizeof(jn_Field);
  m = (jn_Model *)lua_newuserdata(L, size);          /* 6: the model */
  memset(m, 0, size);
  m->conn = c;
  m->pk = -1;
  m->created = m->updated = -1;
  luaL_setmetatable(L, JN_MODEL_MT);
  lua_createtable(L, 0, 8);                          /* 7: uservalue */
  uvidx = 7;
  lua_pushvalue(L, 1);
  lua_setfield(L, uvidx, JN_UV_CONN);
  lua_newtable(L);                                   /* 8: declarations */
  declsidx = 8;
  lua_pushvalue(L, declsidx);
  lua_setfield(L, uvidx, JN_UV_FIELDS);
  lua_newtable(L);                                   /* 9: defaults */
  defidx = 9;
  lua_pushvalue(L, defidx);
  lua_setfield(L, uvidx, JN_UV_DEFAULTS);
  lua_pushstring(L, name);
  m->name = lua_tostring(L, -1);
  lua_setfield(L, uvidx, "name");
  lua_getfield(L, 3, "tableName");
  if (lua_isnil(L, -1)) { lua_pop(L, 1); lua_pushstring(L, name); }
  if (lua_type(L, -1) != LUA_TSTRING)
    luaL_error(L, "db:define: %s: bad option 'tableName' (string expected, got %s)", name,
               luaL_typename(L, -1));
  lua_pushfstring(L, "db:define: %s: bad option 'tableName'", name);
  jn_check_ident(L, lua_gettop(L) - 1, lua_tostring(L, -1));
  lua_pop(L, 1);
  m->table = lua_tostring(L, -1);
  lua_setfield(L, uvidx, "table");

  for (i = 0; i < nf; i++) {
    lua_createtable(L, 0, 4);                        /* decl */
    lua_rawgeti(L, orderidx, i + 1);
    m->f[i].name = lua_tostring(L, -1);
    lua_pushfstring(L, "db:define: %s: bad field name", name);
    jn_check_ident(L, lua_gettop(L) - 1, lua_tostring(L, -1));
    lua_pop(L, 1);
    lua_setfield(L, -2, "name");
    lua_pushvalue(L, -1);
    lua_rawseti(L, declsidx, i + 1);
    lua_rawgeti(L, orderidx, i + 1);
    lua_rawget(L, fieldsidx);                        /* decl spec */
    check_field(L, &m->f[i], lua_gettop(L), lua_gettop(L) - 1, name);
    lua_getfield(L, -2, "default");
    if (!lua_isnil(L, -1)) lua_rawseti(L, defidx, i + 1);
    else lua_pop(L, 1);
    if (m->f[i].flags & JN_F_PK) {
      if (m->pk >= 0)
        luaL_error(L, "db:define: %s: more than one primary key ('%s' and '%s'); use unique for a composite key",
                   name, m->f[m->pk].name, m->f[i].name);
      m->pk = i;
    }
    lua_pop(L, 2);
  }
  m->nfields = nf;
  if (m->pk < 0) {            /* no key declared: id INTEGER PRIMARY KEY AUTOINCREMENT */
    if (jn_model_fieldname(m, "id") >= 0)
      luaL_error(L, "db:define: %s: field 'id' is not a primary key, and no field is", name);
    memmove(&m->f[1], &m->f[0], (size_t)nf * sizeof(jn_Field));
    lua_createtable(L, 0, 1);
    lua_pushliteral(L, "id");
    m->f[0].name = lua_tostring(L, -1);
    lua_setfield(L, -2, "name");
    for (i = nf; i >= 1; i--) { lua_rawgeti(L, declsidx, i); lua_rawseti(L, declsidx, i + 1); }
    lua_rawseti(L, declsidx, 1);
    for (i = nf; i >= 1; i--) { lua_rawgeti(L, defidx, i); lua_rawseti(L, defidx, i + 1); }
    lua_pushnil(L);
    lua_rawseti(L, defidx, 1);
    m->f[0].type = JN_T_INTEGER;
    m->f[0].flags = JN_F_PK | JN_F_AUTOINC | JN_F_NOTNULL;
    m->nfields = ++nf;
    m->pk = 0;
  }
  if (timestamps) {
    m->created = timestamp_field(L, m, declsidx, underscored ? "created_at" : "createdAt");
    m->updated = timestamp_field(L, m, declsidx, underscored ? "updated_at" : "updatedAt");
  }
  lua_newtable(L);
  lua_pushvalue(L, -1);
  lua_setfield(L, uvidx, JN_UV_SQL);
  gen_sql(L, m, lua_gettop(L));
  lua_newtable(L);
  lua_setfield(L, uvidx, JN_UV_ASSOCS);
  lua_pushvalue(L, uvidx);
  lua_setuservalue(L, 6);
  build_lookup(L, m, uvidx);
  /* register: models[name] = model; order[#order + 1] = model */
  lua_getuservalue(L, 1);
  lua_getfield(L, -1, "models");
  lua_pushvalue(L, 6);
  lua_setfield(L, -2, name);
  lua_getfield(L, -2, "order");
  if (lua_isnil(L, -1)) {
    lua_pop(L, 1);
    lua_newtable(L);
    lua_pushvalue(L, -1);
    lua_setfield(L, -4, "order");
  }
  lua_pushvalue(L, 6);
  lua_rawseti(L, -2, (int)lua_rawlen(L, -2) + 1);
  c->nmodels++;
  lua_pushvalue(L, 6);
  return 1;
}

/* }====== */

/* {====== db:sync */

/* The model whose table (or name) is ref, among the connection's; pushes it or nil. */
static void find_by_table(lua_State *L, int orderidx, const char *ref) {
  int i, n = (int)lua_rawlen(L, orderidx);
  for (i = 1; i <= n; i++) {
    jn_Model *m;
    lua_rawgeti(L, orderidx, i);
    m = (jn_Model *)lua_touserdata(L, -1);
    if (strcmp(m->table, ref) == 0 || strcmp(m->name, ref) == 0) return;
    lua_pop(L, 1);
  }
  lua_pushnil(L);
}

/* Append one column definition of field i of the model at modelidx. */
static void column_def(lua_State *L, jn_Buf *b, jn_Model *m, int i, int declsidx, int orderidx) {
  jn_Field *f = &m->f[i];
  char tmp[48];
  jn_buf_addident(L, b, NULL, f->name);
  if (f->type == JN_T_STRING) snprintf(tmp, sizeof tmp, " VARCHAR(%d)", f->length);
  else snprintf(tmp, sizeof tmp, " %s", type_sql[f->type]);
  jn_buf_adds(L, b, tmp);
  if (f->flags & JN_F_PK) {
    jn_buf_adds(L, b, " PRIMARY KEY");
    if (f->flags & JN_F_AUTOINC) jn_buf_adds(L, b, " AUTOINCREMENT");
  }
  /* An INTEGER key is the rowid and never NULL; any other key needs saying. */
  if ((f->flags & JN_F_NOTNULL) && !((f->flags & JN_F_PK) && f->type == JN_T_INTEGER))
    jn_buf_adds(L, b, " NOT NULL");
  if ((f->flags & JN_F_UNIQUE) && !(f->flags & JN_F_PK)) jn_buf_adds(L, b, " UNIQUE");
  lua_rawgeti(L, declsidx, i + 1);
  lua_getfield(L, -1, "default");
  if (lua_type(L, -1) == LUA_TSTRING || lua_type(L, -1) == LUA_TNUMBER ||
      lua_type(L, -1) == LUA_TBOOLEAN) {
    /* A literal from the declaration, quoted by SQLite's own %Q. */
    char *lit;
    if (lua_type(L, -1) == LUA_TBOOLEAN)
      lit = sqlite3_mprintf(" DEFAULT %d", lua_toboolean(L, -1));
    else if (lua_type(L, -1) == LUA_TNUMBER)
      lit = sqlite3_mprintf(" DEFAULT %s", lua_tostring(L, -1));
    else
      lit = sqlite3_mprintf(" DEFAULT %Q", lua_tostring(L, -1));
    lua_pushstring(L, lit);
    sqlite3_free(lit);
    jn_buf_adds(L, b, lua_tostring(L, -1));
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
  lua_getfield(L, -1, "ref_model");
  if (!lua_isnil(L, -1)) {
    jn_Model *t;
    const char *key;
    find_by_table(L, orderidx, lua_tostring(L, -1));
    t = (jn_Model *)lua_touserdata(L, -1);
    lua_getfield(L, -3, "ref_key");
    key = lua_tostring(L, -1);
    if (key == NULL && t == NULL)
      luaL_error(L, "db:sync: %s.%s: references '%s', which is no model (give 'key')", m->name,
                 f->name, lua_tostring(L, -3));
    if (key == NULL) key = t->f[t->pk].name;
    if (t != NULL) {   /* SQLite would only fail later, on every write ("foreign key mismatch") */
      int k = jn_model_fieldname(t, key);
      if (k < 0 || !(t->f[k].flags & (JN_F_PK | JN_F_UNIQUE)))
        luaL_error(L, "db:sync: %s.%s: references %s.%s, which is not the primary key or a unique field of %s",
                   m->name, f->name, t->table, key, t->name);
    }
    jn_buf_adds(L, b, " REFERENCES ");
    jn_buf_addident(L, b, NULL, t ? t->table : lua_tostring(L, -3));
    jn_buf_adds(L, b, " (");
    jn_buf_addident(L, b, NULL, key);
    jn_buf_adds(L, b, ")");
    lua_pop(L, 2);
    lua_getfield(L, -2, "onDelete");
    if (!lua_isnil(L, -1)) { jn_buf_adds(L, b, " ON DELETE "); jn_buf_adds(L, b, lua_tostring(L, -1)); }
    lua_pop(L, 1);
    lua_getfield(L, -2, "onUpdate");
    if (!lua_isnil(L, -1)) { jn_buf_adds(L, b, " ON UPDATE "); jn_buf_adds(L, b, lua_tostring(L, -1)); }
    lua_pop(L, 1);
  }
  lua_pop(L, 2);
}

/* The unique-group name of field i, or NULL. */
static const char *unique_group(lua_State *L, int declsidx, int i) {
  const char *g;
  lua_rawgeti(L, declsidx, i + 1);
  lua_getfield(L, -1, "unique");
  g = lua_tostring(L, -1);
  lua_pop(L, 2);   /* the string stays anchored in the declaration */
  return g;
}

/* Append the composite UNIQUE constraints, one per group, fields in order. */
static void unique_groups(lua_State *L, jn_Buf *b, jn_Model *m, int declsidx) {
  int i, j;
  for (i = 0; i < m->nfields; i++) {
    const char *g = unique_group(L, declsidx, i);
    int first = 1;
    if (g == NULL) continue;
    for (j = 0; j < i; j++) {   /* only at the group's first field */
      const char *h = unique_group(L, declsidx, j);
      if (h != NULL && strcmp(g, h) == 0) break;
    }
    if (j < i) continue;
    jn_buf_adds(L, b, ",\n  UNIQUE (");
    for (j = i; j < m->nfields; j++) {
      const char *h = unique_group(L, declsidx, j);
      if (h == NULL || strcmp(g, h) != 0) continue;
      if (!first) jn_buf_adds(L, b, ", ");
      jn_buf_addident(L, b, NULL, m->f[j].name);
      first = 0;
    }
    jn_buf_adds(L, b, ")");
  }
}

/*
** Does a unique index lead with field i: the key, a single UNIQUE, or the
** first field of a composite group?
*/
static int unique_leads(lua_State *L, jn_Model *m, int declsidx, int i) {
  const char *g;
  int j;
  if (m->f[i].flags & (JN_F_PK | JN_F_UNIQUE)) return 1;
  g = unique_group(L, declsidx, i);
  if (g == NULL) return 0;
  for (j = 0; j < i; j++) {
    const char *h = unique_group(L, declsidx, j);
    if (h != NULL && strcmp(g, h) == 0) return 0;
  }
  return 1;
}

/* Run one DDL statement (text in b); returns rc. */
static int run_ddl(lua_State *L, jn_Conn *c, jn_Buf *b) {
  int rc;
  sqlite3_stmt *st = NULL;
  const char *sql = jn_buf_cstr(L, b);
  rc = sqlite3_prepare_v2(c->db, sql, (int)b->n, &st, NULL);
  if (rc == SQLITE_OK) {
    rc = jn_stmt_step(L, c, st);
    if (rc == SQLITE_DONE) rc = SQLITE_OK;
  }
  sqlite3_finalize(st);
  return rc;
}

/* CREATE TABLE and indexes for the model at modelidx. */
static int create_table(lua_State *L, jn_Conn *c, int modelidx, int orderidx) {
  jn_Model *m = (jn_Model *)lua_touserdata(L, modelidx);
  jn_Buf b;
  int i, rc, declsidx;
  jn_model_uv(L, modelidx, JN_UV_FIELDS);
  declsidx = lua_gettop(L);
  jn_buf_init(L, &b);
  jn_buf_adds(L, &b, "CREATE TABLE IF NOT EXISTS ");
  jn_buf_addident(L, &b, NULL, m->table);
  jn_buf_adds(L, &b, " (\n  ");
  for (i = 0; i < m->nfields; i++) {
    if (i) jn_buf_adds(L, &b, ",\n  ");
    column_def(L, &b, m, i, declsidx, orderidx);
  }
  unique_groups(L, &b, m, declsidx);
  jn_buf_adds(L, &b, "\n)");
  rc = run_ddl(L, c, &b);
  /* An index on each foreign key no unique index leads with; inside a
  ** composite group it also covers the group's other fields. */
  for (i = 0; rc == SQLITE_OK && i < m->nfields; i++) {
    const char *g;
    int j;
    lua_rawgeti(L, declsidx, i + 1);
    lua_getfield(L, -1, "ref_model");
    j = lua_isnil(L, -1);
    lua_pop(L, 2);
    if (j || unique_leads(L, m, declsidx, i)) continue;
    b.n = 0;
    jn_buf_adds(L, &b, "CREATE INDEX IF NOT EXISTS ");
    {
      char name[160];
      snprintf(name, sizeof name, "%s_%s", m->table, m->f[i].name);
      jn_buf_addident(L, &b, NULL, name);
    }
    jn_buf_adds(L, &b, " ON ");
    jn_buf_addident(L, &b, NULL, m->table);
    jn_buf_adds(L, &b, " (");
    jn_buf_addident(L, &b, NULL, m->f[i].name);
    g = unique_group(L, declsidx, i);
    for (j = 0; g != NULL && j < m->nfields; j++) {
      const char *h = unique_group(L, declsidx, j);
      if (j == i || h == NULL || strcmp(g, h) != 0) continue;
      jn_buf_adds(L, &b, ", ");
      jn_buf_addident(L, &b, NULL, m->f[j].name);
    }
    jn_buf_adds(L, &b, ")");
    rc = run_ddl(L, c, &b);
  }
  lua_pop(L, 2);
  return rc;
}

/* Does the model at idx reference a model still to be created (in pending)? */
static int waits_for(lua_State *L, int idx, int pendingidx, int orderidx) {
  jn_Model *m = (jn_Model *)lua_touserdata(L, idx);
  int i, waits = 0;
  jn_model_uv(L, idx, JN_UV_FIELDS);
  for (i = 0; i < m->nfields && !waits; i++) {
    lua_rawgeti(L, -1, i + 1);
    lua_getfield(L, -1, "ref_model");
    if (!lua_isnil(L, -1)) {
      find_by_table(L, orderidx, lua_tostring(L, -1));
      if (!lua_isnil(L, -1) && lua_touserdata(L, -1) != (void *)m) {
        lua_rawget(L, pendingidx);
        waits = lua_toboolean(L, -1);
      }
      lua_pop(L, 1);
    }
    lua_pop(L, 2);
  }
  lua_pop(L, 1);
  return waits;
}

/*** Create the tables of every model (and with force, drop them first).
@function db:sync
@tparam[opt] table opts force
@treturn true|fail
*/
int jn_schema_sync(lua_State *L) {
  static const char *const sync_opts[] = { "force", NULL };
  jn_Conn *c = jn_conn_check(L, 1, "db:sync");
  int force = 0, n, i, done, rc = SQLITE_OK, orderidx, pendingidx, seqidx;
  jn_query_checkopts(L, 2, sync_opts, "db:sync");
  if (lua_istable(L, 2)) {
    lua_getfield(L, 2, "force");
    force = lua_toboolean(L, -1);
    lua_pop(L, 1);
  }
  lua_settop(L, 1);
  lua_getuservalue(L, 1);
  lua_getfield(L, -1, "order");
  if (lua_isnil(L, -1)) { lua_pushboolean(L, 1); return 1; }
  orderidx = lua_gettop(L);
  n = (int)lua_rawlen(L, orderidx);
  /* creation order: a model after the models it references */
  lua_newtable(L);
  pendingidx = lua_gettop(L);
  for (i = 1; i <= n; i++) {
    lua_rawgeti(L, orderidx, i);
    lua_pushboolean(L, 1);
    lua_rawset(L, pendingidx);
  }
  lua_newtable(L);
  seqidx = lua_gettop(L);
  for (done = 0; done < n;) {
    int progress = 0;
    for (i = 1; i <= n; i++) {
      lua_rawgeti(L, orderidx, i);
      lua_pushvalue(L, -1);
      lua_rawget(L, pendingidx);
      if (lua_toboolean(L, -1) && !waits_for(L, lua_gettop(L) - 1, pendingidx, orderidx)) {
        lua_pop(L, 1);
        lua_pushvalue(L, -1);
        lua_rawseti(L, seqidx, ++done);
        lua_pushnil(L);
        lua_rawset(L, pendingidx);
        progress = 1;
      } else {
        lua_pop(L, 2);
      }
    }
    if (!progress) {   /* a cycle: take the rest in definition order */
      for (i = 1; i <= n; i++) {
        lua_rawgeti(L, orderidx, i);
        lua_pushvalue(L, -1);
        lua_rawget(L, pendingidx);
        if (lua_toboolean(L, -1)) {
          lua_pop(L, 1);
          lua_pushvalue(L, -1);
          lua_rawseti(L, seqidx, ++done);
          lua_pushnil(L);
          lua_rawset(L, pendingidx);
        } else {
          lua_pop(L, 2);
        }
      }
    }
  }
  rc = sqlite3_exec(c->db, "SAVEPOINT jn_sync", NULL, NULL, NULL);
  if (rc != SQLITE_OK) return jn_pushfail(L, c, rc);
  for (i = n; force && rc == SQLITE_OK && i >= 1; i--) {
    jn_Buf b;
    jn_Model *m;
    lua_rawgeti(L, seqidx, i);
    m = (jn_Model *)lua_touserdata(L, -1);
    jn_buf_init(L, &b);
    jn_buf_adds(L, &b, "DROP TABLE IF EXISTS ");
    jn_buf_addident(L, &b, NULL, m->table);
    rc = run_ddl(L, c, &b);
    lua_pop(L, 2);
  }
  for (i = 1; rc == SQLITE_OK && i <= n; i++) {
    lua_rawgeti(L, seqidx, i);
    rc = create_table(L, c, lua_gettop(L), orderidx);
    lua_pop(L, 1);
  }
  if (rc != SQLITE_OK) {
    int k = jn_pushfail(L, c, rc);
    sqlite3_exec(c->db, "ROLLBACK TO jn_sync; RELEASE jn_sync", NULL, NULL, NULL);
    return k;
  }
  rc = sqlite3_exec(c->db, "RELEASE jn_sync", NULL, NULL, NULL);
  if (rc != SQLITE_OK) return jn_pushfail(L, c, rc);
  lua_pushboolean(L, 1);
  return 1;
}

/* }====== */

/* Leave junction.types in the module table at -1. */
void jn_schema_open(lua_State *L) {
  new_types(L);
  lua_setfield(L, -2, "types");
}
