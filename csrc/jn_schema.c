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
  "tableName", "timestamps", "underscored", "fields", "indexes", "foreignKeyIndexes", NULL
};
static const char *const index_opts[] = { "fields", "unique", "name", NULL };
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

/*
** A type value: a userdata holding the type's code and length, with no
** writable field, so a declaration can only name a type junction made.
*/
typedef struct jn_Type {
  int code;
  int length;
} jn_Type;

static void push_type(lua_State *L, int code, int length) {
  jn_Type *t = (jn_Type *)lua_newuserdata(L, sizeof(jn_Type));
  t->code = code;
  t->length = length;
  luaL_setmetatable(L, JN_TYPE_MT);
}

/* The SQL column type of a type value ("INTEGER", "VARCHAR(60)"). */
static void type_sqlname(const jn_Type *t, char *out, size_t size) {
  if (t->code == JN_T_STRING) snprintf(out, size, "VARCHAR(%d)", t->length);
  else snprintf(out, size, "%s", type_sql[t->code]);
}

/* T.STRING(n): a VARCHAR(n). */
static int type_string(lua_State *L) {
  int n = (int)luaL_optinteger(L, 1, 255);
  if (!lua_isnoneornil(L, 1) && !lua_isinteger(L, 1))
    luaL_error(L, "junction.types.STRING: bad length (integer expected, got %s)", luaL_typename(L, 1));
  luaL_argcheck(L, n > 0, 1, "length must be positive");
  push_type(L, JN_T_STRING, n);
  return 1;
}

static jn_Type *check_typeval(lua_State *L, const char *ctx) {
  jn_Type *t = (jn_Type *)luaL_testudata(L, 1, JN_TYPE_MT);
  if (t == NULL)
    luaL_error(L, "junction.Type.%s: bad self (type expected, got %s)", ctx, luaL_typename(L, 1));
  return t;
}

static int type_tostring(lua_State *L) {
  char sql[48];
  type_sqlname(check_typeval(L, "__tostring"), sql, sizeof sql);
  lua_pushstring(L, sql);
  return 1;
}

/* Read-only fields: name ("STRING"), length (STRING's n, else 0), sql. */
static int type_index(lua_State *L) {
  jn_Type *t = check_typeval(L, "__index");
  const char *k = lua_tostring(L, 2);
  char sql[48];
  if (k != NULL && strcmp(k, "name") == 0) lua_pushstring(L, type_names[t->code]);
  else if (k != NULL && strcmp(k, "length") == 0) lua_pushinteger(L, t->length);
  else if (k != NULL && strcmp(k, "sql") == 0) {
    type_sqlname(t, sql, sizeof sql);
    lua_pushstring(L, sql);
  } else lua_pushnil(L);
  return 1;
}

static int type_newindex(lua_State *L) {
  check_typeval(L, "__newindex");
  return luaL_error(L, "junction.types: a type value is read-only");
}

static int type_eq(lua_State *L) {
  jn_Type *a = (jn_Type *)luaL_testudata(L, 1, JN_TYPE_MT);
  jn_Type *b = (jn_Type *)luaL_testudata(L, 2, JN_TYPE_MT);
  lua_pushboolean(L, a != NULL && b != NULL && a->code == b->code && a->length == b->length);
  return 1;
}

/* Push junction.types. */
static void new_types(lua_State *L) {
  int i;
  luaL_newmetatable(L, JN_TYPE_MT);
  lua_pushcfunction(L, type_tostring);
  lua_setfield(L, -2, "__tostring");
  lua_pushcfunction(L, type_index);
  lua_setfield(L, -2, "__index");
  lua_pushcfunction(L, type_newindex);
  lua_setfield(L, -2, "__newindex");
  lua_pushcfunction(L, type_eq);
  lua_setfield(L, -2, "__eq");
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

/*
** Read the type at idx, which must be a value of junction.types; raise
** naming what was given otherwise (a type's name as a string, T.STRING
** not called).
*/
static int check_type(lua_State *L, int idx, const char *ctx, int *length) {
  jn_Type *t;
  if (lua_type(L, idx) == LUA_TSTRING) {
    const char *s = lua_tostring(L, idx);
    int code;
    for (code = 0; type_names[code] != NULL; code++)
      if (strcmp(s, type_names[code]) == 0)
        return luaL_error(L, "db:define: %s: bad option 'type' (the string '%s'; write junction.types.%s%s)",
                          ctx, s, s, code == JN_T_STRING ? "(n)" : "");
    return luaL_error(L, "db:define: %s: bad option 'type' (unknown type '%s'; a junction.types value expected)",
                      ctx, s);
  }
  if (lua_tocfunction(L, idx) == type_string)
    return luaL_error(L, "db:define: %s: bad option 'type' (junction.types.STRING is a function: "
                      "call it with the length, junction.types.STRING(255))", ctx);
  t = (jn_Type *)luaL_testudata(L, idx, JN_TYPE_MT);
  if (t == NULL)
    return luaL_error(L, "db:define: %s: bad option 'type' (a junction.types value expected, got %s)",
                      ctx, luaL_typename(L, idx));
  /* junction made it, but check anyway: the code indexes tables */
  if (t->code < 0 || t->code > JN_T_DATE || (t->code == JN_T_STRING) != (t->length > 0))
    return luaL_error(L, "db:define: %s: bad option 'type' (not a junction.types value)", ctx);
  *length = t->length;
  return t->code;
}

static int opt_bool(lua_State *L, int tidx, const char *key, int dflt, const char *ctx) {
  int v = dflt;
  jn_optfield(L, tidx, key);
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
  jn_optfield(L, specidx, key);
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
  jn_optfield(L, specidx, "type");
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
  jn_optfield(L, specidx, "unique");
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
  jn_optfield(L, specidx, "defaultValue");
  if (!lua_isnil(L, -1)) {
    int t = lua_type(L, -1);
    if (t != LUA_TSTRING && t != LUA_TNUMBER && t != LUA_TBOOLEAN && t != LUA_TFUNCTION)
      luaL_error(L, "db:define: %s: bad option 'defaultValue' (%s cannot be stored)", ctx,
                 luaL_typename(L, -1));
    f->flags |= JN_F_DEFAULT;
    if (t == LUA_TFUNCTION) {   /* its results are checked at each create */
      lua_pushvalue(L, -1);
    } else if (!jn_value_conv(L, lua_gettop(L), f->type, f->length)) {
      const char *why = lua_tostring(L, -1);
      if (t == LUA_TSTRING)
        luaL_error(L, "db:define: %s: bad option 'defaultValue' ('%s' %s)", ctx, lua_tostring(L, -2), why);
      if (t == LUA_TBOOLEAN)
        luaL_error(L, "db:define: %s: bad option 'defaultValue' (%s %s)", ctx,
                   lua_toboolean(L, -2) ? "true" : "false", why);
      lua_pushvalue(L, -2);
      luaL_error(L, "db:define: %s: bad option 'defaultValue' (%s %s)", ctx, lua_tostring(L, -1), why);
    }
    lua_setfield(L, declidx, "default");   /* as the field stores it */
  }
  lua_pop(L, 1);
  jn_optfield(L, specidx, "references");
  if (!lua_isnil(L, -1)) {
    int ref = lua_gettop(L);
    if (!lua_istable(L, ref))
      luaL_error(L, "db:define: %s: bad option 'references' (table expected, got %s)", ctx,
                 luaL_typename(L, ref));
    jn_optfield(L, ref, "model");
    jn_optfield(L, ref, "key");
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
    jn_optfield(L, specidx, "onDelete");
    jn_optfield(L, specidx, "onUpdate");
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
    jn_optfield(L, -1, "primaryKey");
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
** spec.fields as an array of { name, spec } pairs: replace it at fieldsidx
** by the table name -> spec, and push the names in declaration order.
*/
static int field_pairs(lua_State *L, int fieldsidx, const char *model) {
  int n = (int)lua_rawlen(L, fieldsidx), i, byname, names;
  lua_newtable(L);
  byname = lua_gettop(L);
  lua_createtable(L, n, 0);
  names = lua_gettop(L);
  lua_pushnil(L);
  while (lua_next(L, fieldsidx) != 0) {   /* nothing but 1..n */
    lua_pop(L, 1);
    if (!lua_isinteger(L, -1) || lua_tointeger(L, -1) < 1 || lua_tointeger(L, -1) > n)
      luaL_error(L, "db:define: %s: bad option 'fields' (an array of { name, spec } pairs, or a table "
                 "name -> spec; not both)", model);
  }
  for (i = 1; i <= n; i++) {
    lua_rawgeti(L, fieldsidx, i);
    if (!lua_istable(L, -1))
      luaL_error(L, "db:define: %s: bad field %d (a { name, spec } pair expected, got %s)", model, i,
                 luaL_typename(L, -1));
    lua_rawgeti(L, -1, 1);
    if (lua_type(L, -1) != LUA_TSTRING)
      luaL_error(L, "db:define: %s: bad field %d (a name expected first, got %s)", model, i,
                 luaL_typename(L, -1));
    lua_pushvalue(L, -1);
    lua_rawget(L, byname);
    if (!lua_isnil(L, -1))
      luaL_error(L, "db:define: %s: field '%s' is declared twice", model, lua_tostring(L, -2));
    lua_pop(L, 1);
    lua_pushvalue(L, -1);
    lua_rawseti(L, names, i);
    lua_rawgeti(L, -2, 2);
    lua_rawset(L, byname);
    lua_pop(L, 1);
  }
  lua_pushvalue(L, byname);
  lua_replace(L, fieldsidx);
  lua_remove(L, byname);
  return n;
}

/*
** Push an array of the names in spec.fields, in column order: the primary
** key first, then by name (a Lua table keeps no declaration order).
*/
static int field_order(lua_State *L, int fieldsidx, const char *model) {
  int n = 0, i, j, names;
  lua_rawgeti(L, fieldsidx, 1);
  i = !lua_isnil(L, -1);
  lua_pop(L, 1);
  if (i) return field_pairs(L, fieldsidx, model);
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
    size_t mark;
    b.n = 0;
    jn_buf_adds(L, &b, "INSERT INTO ");
    jn_buf_addident(L, &b, NULL, m->table);
    mark = b.n;
    jn_buf_adds(L, &b, " (");
    for (i = 0; i < m->nfields; i++) {
      if (n == 0 && i == m->pk && (m->f[i].flags & JN_F_AUTOINC)) continue;
      if (k++) jn_buf_adds(L, &b, ", ");
      jn_buf_addident(L, &b, NULL, m->f[i].name);
    }
    if (k == 0) {   /* a model of only its autoincrement key: Model:create{} */
      b.n = mark;
      jn_buf_adds(L, &b, " DEFAULT VALUES");
    } else {
      jn_buf_adds(L, &b, ") VALUES (");
      for (i = 0; i < k; i++) jn_buf_adds(L, &b, i ? ", ?" : "?");
      jn_buf_adds(L, &b, ")");
    }
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

/*
** Check spec.indexes, an array of { fields = { name, ... }, unique =, name = }
** naming fields of the model, and keep it in uv.indexes as an array of
** { name = ..., unique = bool, cols = { 0-based field index, ... } }.
** The default name is "<table>.<field>.<field>...": identifiers hold no
** dot, so it is no other table's.
*/
static void check_indexes(lua_State *L, jn_Model *m, int specidx, int uvidx) {
  int n, i, k, nc, list, out;
  lua_pushliteral(L, "indexes");
  lua_rawget(L, specidx);
  list = lua_gettop(L);
  lua_newtable(L);
  out = lua_gettop(L);
  if (!lua_isnil(L, list)) {
    if (!lua_istable(L, list))
      luaL_error(L, "db:define: %s: bad option 'indexes' (array expected, got %s)", m->name,
                 luaL_typename(L, list));
    n = (int)lua_rawlen(L, list);
    for (i = 1; i <= n; i++) {
      int ix, fl, cols;
      luaL_Buffer lb;
      char ctx[120];
      snprintf(ctx, sizeof ctx, "db:define: %s: index %d", m->name, i);
      lua_rawgeti(L, list, i);
      ix = lua_gettop(L);
      if (!lua_istable(L, ix))
        luaL_error(L, "%s (table expected, got %s)", ctx, luaL_typename(L, ix));
      jn_query_checkopts(L, ix, index_opts, ctx);
      lua_createtable(L, 0, 3);                      /* the kept index */
      lua_pushliteral(L, "fields");
      lua_rawget(L, ix);
      fl = lua_gettop(L);
      nc = lua_istable(L, fl) ? (int)lua_rawlen(L, fl) : 0;
      if (nc == 0)
        luaL_error(L, "%s: bad option 'fields' (a non-empty array of field names expected)", ctx);
      lua_createtable(L, nc, 0);
      cols = lua_gettop(L);
      luaL_buffinit(L, &lb);   /* the default name, built meanwhile */
      luaL_addstring(&lb, m->table);
      for (k = 1; k <= nc; k++) {
        int f;
        lua_rawgeti(L, fl, k);
        f = lua_type(L, -1) == LUA_TSTRING ? jn_model_fieldname(m, lua_tostring(L, -1)) : -1;
        if (f < 0)
          luaL_error(L, "%s: bad option 'fields' (%s is no field of %s)", ctx,
                     lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : luaL_typename(L, -1), m->name);
        lua_pop(L, 1);
        lua_pushinteger(L, f);
        lua_rawseti(L, cols, k);
        luaL_addchar(&lb, '.');
        luaL_addstring(&lb, m->f[f].name);
      }
      luaL_pushresult(&lb);
      lua_pushliteral(L, "name");
      lua_rawget(L, ix);
      if (!lua_isnil(L, -1)) {
        int nameidx = lua_gettop(L);
        jn_check_ident(L, nameidx, lua_pushfstring(L, "%s: bad option 'name'", ctx));
        lua_pop(L, 1);
        lua_replace(L, -2);
      } else {
        lua_pop(L, 1);
      }
      lua_setfield(L, fl - 1, "name");
      lua_setfield(L, fl - 1, "cols");
      lua_pop(L, 1);                                 /* fields */
      lua_pushliteral(L, "unique");
      lua_rawget(L, ix);
      if (!lua_isnil(L, -1) && !lua_isboolean(L, -1))
        luaL_error(L, "%s: bad option 'unique' (boolean expected, got %s)", ctx, luaL_typename(L, -1));
      lua_pushboolean(L, lua_toboolean(L, -1));
      lua_setfield(L, -3, "unique");
      lua_pop(L, 1);
      lua_rawseti(L, out, i);
      lua_pop(L, 1);                                 /* the spec entry */
    }
  }
  lua_setfield(L, uvidx, "indexes");
  lua_pop(L, 1);
}

/*** Define a model.
@function db:define
@tparam string name
@tparam table spec tableName, timestamps, underscored, fields
@treturn Model
*/
static int schema_define(lua_State *L) {
  jn_Conn *c = jn_conn_check(L, 1, "db:define");
  const char *name;
  int nf, i, timestamps, underscored, fieldsidx, orderidx, uvidx, declsidx, defidx;
  size_t size;
  jn_Model *m;
  jn_check_ident(L, 2, "db:define: bad model name");
  /* said in full: db:define may be called through a wrapper, where luaL's
  ** "bad argument #2 to '?'" would name nothing */
  if (lua_type(L, 2) != LUA_TSTRING)
    luaL_error(L, "db:define: bad argument #1 (model name expected, got %s)", luaL_typename(L, 2));
  name = lua_tostring(L, 2);
  if (!lua_istable(L, 3))
    luaL_error(L, "db:define: bad argument #2 (table expected, got %s)", luaL_typename(L, 3));
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
  jn_optfield(L, 3, "fields");                      /* 4: fields */
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
  jn_optfield(L, 3, "tableName");
  if (lua_isnil(L, -1)) { lua_pop(L, 1); lua_pushstring(L, name); }
  if (lua_type(L, -1) != LUA_TSTRING)
    luaL_error(L, "db:define: %s: bad option 'tableName' (string expected, got %s)", name,
               luaL_typename(L, -1));
  lua_pushfstring(L, "db:define: %s: bad option 'tableName'", name);
  jn_check_ident(L, lua_gettop(L) - 1, lua_tostring(L, -1));
  lua_pop(L, 1);
  m->table = lua_tostring(L, -1);
  lua_setfield(L, uvidx, "table");
  {   /* one table, one model: SQLite's table names ignore case, so "Post" is "post" */
    int k, n;
    lua_getuservalue(L, 1);
    lua_getfield(L, -1, "order");
    n = lua_istable(L, -1) ? (int)lua_rawlen(L, -1) : 0;
    for (k = 1; k <= n; k++) {
      jn_Model *o;
      lua_rawgeti(L, -1, k);
      o = (jn_Model *)lua_touserdata(L, -1);
      if (o != NULL && sqlite3_stricmp(o->table, m->table) == 0)
        luaL_error(L, "db:define: %s: table '%s' is already the table of model %s%s", name, m->table,
                   o->name, strcmp(o->table, m->table) ? " (SQLite's table names ignore case)" : "");
      lua_pop(L, 1);
    }
    lua_pop(L, 2);
  }

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
  check_indexes(L, m, 3, uvidx);
  lua_pushboolean(L, opt_bool(L, 3, "foreignKeyIndexes", 1, name));
  lua_setfield(L, uvidx, "fk_indexes");
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

/* The code of sync's failure when a table differs from its model: nil,
** message, JN_SCHEMA, details.  Like JN_VALIDATION, its low byte (233) is
** no SQLite primary result code. */
#define JN_SCHEMA 1001

/* The model whose table (or name) is ref, among the connection's; pushes it or nil. */
static void find_by_table(lua_State *L, int orderidx, const char *ref) {
  int i, n = (int)lua_rawlen(L, orderidx);
  for (i = 1; i <= n; i++) {
    jn_Model *m;
    lua_rawgeti(L, orderidx, i);
    m = (jn_Model *)lua_touserdata(L, -1);
    if (sqlite3_stricmp(m->table, ref) == 0 || strcmp(m->name, ref) == 0) return;
    lua_pop(L, 1);
  }
  lua_pushnil(L);
}

/*
** Run one statement of junction's own (DDL, or a read of the schema whose
** rows are pushed as an array of tables, column name -> value, when rows
** is set), with the string at argidx bound to its ?, if argidx != 0.
** Statements come from the connection's cache, so a raise leaks nothing.
** Returns the SQLite code; on failure pushes an empty array.
*/
static void push_text(lua_State *L, jn_Conn *c, jn_St *st, int col) {
  size_t n;
  const char *t = (const char *)jn_e_col_text(c->eng, st, col, &n);
  lua_pushlstring(L, t, n);
}

static int run_own_sql(lua_State *L, jn_Conn *c, const char *sql, int argidx, int rows) {
  int rc, n = 0, k;
  jn_St *st = jn_stmt_cached(L, c, sql, strlen(sql), &rc);
  if (rows) lua_newtable(L);
  if (st == NULL) return rc != SQLITE_OK ? rc : SQLITE_MISUSE;
  if (argidx != 0) {
    size_t len;
    const char *s = lua_tolstring(L, argidx, &len);
    jn_e_bind_text(c->eng, st, 1, s, len, 1);
  }
  if (!rows) {
    return jn_conn_run(L, c, st);
  }
  while ((rc = jn_e_step(c->eng, st)) == SQLITE_ROW) {
    lua_newtable(L);
    for (k = 0; k < jn_e_ncols(c->eng, st); k++) {
      if (jn_e_coltype(c->eng, st, k) == SQLITE_NULL) continue;
      if (jn_e_coltype(c->eng, st, k) == SQLITE_INTEGER)
        lua_pushinteger(L, (lua_Integer)jn_e_col_int64(c->eng, st, k));
      else
        push_text(L, c, st, k);
      lua_setfield(L, -2, jn_e_colname(c->eng, st, k));
    }
    lua_rawseti(L, -2, ++n);
  }
  jn_e_reset(c->eng, st);
  return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

/* Does the main database hold a table of that name (the string at idx)? */
static int table_exists(lua_State *L, jn_Conn *c, int idx, int *rc) {
  int found;
  *rc = run_own_sql(L, c, "SELECT name FROM sqlite_master WHERE type = 'table' AND name = ? COLLATE NOCASE",
                    idx, 1);
  found = lua_rawlen(L, -1) > 0;
  lua_pop(L, 1);
  return found;
}

/*
** The target of field i's references: pushes the referenced table's name
** and the key's and returns 1, or pushes nothing and returns 0.  Raises
** when the reference cannot work: it names no model of the connection and
** no table of the database, or a field that is not a key of its model.
*/
static int push_ref(lua_State *L, jn_Conn *c, jn_Model *m, int i, int declsidx, int orderidx) {
  jn_Model *t;
  const char *key;
  int top = lua_gettop(L), rc;
  lua_rawgeti(L, declsidx, i + 1);
  lua_getfield(L, -1, "ref_model");
  if (lua_isnil(L, -1)) { lua_settop(L, top); return 0; }
  find_by_table(L, orderidx, lua_tostring(L, -1));
  t = (jn_Model *)lua_touserdata(L, -1);
  lua_getfield(L, -3, "ref_key");
  key = lua_tostring(L, -1);
  if (t == NULL) {
    if (!table_exists(L, c, top + 2, &rc))
      luaL_error(L, "db:sync: %s.%s: references '%s', which is no model of this connection "
                 "and no table of the database", m->name, m->f[i].name, lua_tostring(L, top + 2));
    if (key == NULL)
      luaL_error(L, "db:sync: %s.%s: references '%s', which is no model (give 'key')", m->name,
                 m->f[i].name, lua_tostring(L, top + 2));
    lua_pushvalue(L, top + 2);
  } else {   /* SQLite would only fail later, on every write ("foreign key mismatch") */
    int k;
    if (key == NULL) key = t->f[t->pk].name;
    k = jn_model_fieldname(t, key);
    if (k < 0 || !(t->f[k].flags & (JN_F_PK | JN_F_UNIQUE)))
      luaL_error(L, "db:sync: %s.%s: references %s.%s, which is not the primary key or a unique field of %s",
                 m->name, m->f[i].name, t->table, key, t->name);
    lua_pushstring(L, t->table);
  }
  lua_pushstring(L, key);
  lua_replace(L, top + 2);
  lua_replace(L, top + 1);
  lua_settop(L, top + 2);
  return 1;
}

/* The referential action key ("onDelete") of field i, upper case, with
** SQLite's default: pushes it. */
static void push_action(lua_State *L, int declsidx, int i, const char *key) {
  luaL_Buffer lb;
  const char *s;
  lua_rawgeti(L, declsidx, i + 1);
  lua_getfield(L, -1, key);
  s = lua_isnil(L, -1) ? "no action" : lua_tostring(L, -1);
  luaL_buffinit(L, &lb);
  for (; *s; s++) luaL_addchar(&lb, (char)((*s >= 'a' && *s <= 'z') ? *s - 'a' + 'A' : *s));
  luaL_pushresult(&lb);
  lua_replace(L, -3);
  lua_pop(L, 1);
}

/* Append one column definition of field i of the model. */
static void column_def(lua_State *L, jn_Conn *c, jn_Buf *b, jn_Model *m, int i, int declsidx,
                       int orderidx) {
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
  lua_pop(L, 2);
  if (push_ref(L, c, m, i, declsidx, orderidx)) {
    jn_buf_adds(L, b, " REFERENCES ");
    jn_buf_addident(L, b, NULL, lua_tostring(L, -2));
    jn_buf_adds(L, b, " (");
    jn_buf_addident(L, b, NULL, lua_tostring(L, -1));
    jn_buf_adds(L, b, ")");
    lua_pop(L, 2);
    push_action(L, declsidx, i, "onDelete");
    push_action(L, declsidx, i, "onUpdate");
    jn_buf_adds(L, b, " ON DELETE ");
    jn_buf_adds(L, b, lua_tostring(L, -2));
    jn_buf_adds(L, b, " ON UPDATE ");
    jn_buf_adds(L, b, lua_tostring(L, -1));
    lua_pop(L, 2);
  }
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

/* Is field i the first of its composite unique group (or in none: -1)? */
static int group_first(lua_State *L, jn_Model *m, int declsidx, int i) {
  const char *g = unique_group(L, declsidx, i);
  int j;
  (void)m;
  if (g == NULL) return -1;
  for (j = 0; j < i; j++) {
    const char *h = unique_group(L, declsidx, j);
    if (h != NULL && strcmp(g, h) == 0) return 0;
  }
  return 1;
}

/* Append the columns of field i's unique group (all fields of the group
** in field order, led by field i when lead). */
static void group_cols(lua_State *L, jn_Buf *b, jn_Model *m, int declsidx, int i, int lead) {
  const char *g = unique_group(L, declsidx, i);
  int j, first = 1;
  if (lead) {
    jn_buf_addident(L, b, NULL, m->f[i].name);
    first = 0;
  }
  for (j = 0; g != NULL && j < m->nfields; j++) {
    const char *h = unique_group(L, declsidx, j);
    if ((lead && j == i) || h == NULL || strcmp(g, h) != 0) continue;
    if (!first) jn_buf_adds(L, b, ", ");
    jn_buf_addident(L, b, NULL, m->f[j].name);
    first = 0;
  }
}

/* Append the composite UNIQUE constraints, one per group, fields in order. */
static void unique_groups(lua_State *L, jn_Buf *b, jn_Model *m, int declsidx) {
  int i;
  for (i = 0; i < m->nfields; i++) {
    if (group_first(L, m, declsidx, i) != 1) continue;
    jn_buf_adds(L, b, ",\n  UNIQUE (");
    group_cols(L, b, m, declsidx, i, 0);
    jn_buf_adds(L, b, ")");
  }
}

/*
** Does a unique index lead with field i: the key, a single UNIQUE, or the
** first field of a composite group?
*/
static int unique_leads(lua_State *L, jn_Model *m, int declsidx, int i) {
  if (m->f[i].flags & (JN_F_PK | JN_F_UNIQUE)) return 1;
  return group_first(L, m, declsidx, i) == 1;
}

/*
** Does field i get an index of its own: a foreign key that no unique index
** and no declared index leads with, unless foreignKeyIndexes is false?
*/
static int wants_index(lua_State *L, jn_Model *m, int modelidx, int declsidx, int i) {
  int ref, n, k, led = 0;
  lua_rawgeti(L, declsidx, i + 1);
  lua_getfield(L, -1, "ref_model");
  ref = !lua_isnil(L, -1);
  lua_pop(L, 2);
  if (!ref || unique_leads(L, m, declsidx, i)) return 0;
  jn_model_uv(L, modelidx, "fk_indexes");
  ref = lua_toboolean(L, -1);
  lua_pop(L, 1);
  if (!ref) return 0;
  jn_model_uv(L, modelidx, "indexes");
  n = (int)lua_rawlen(L, -1);
  for (k = 1; k <= n && !led; k++) {
    lua_rawgeti(L, -1, k);
    lua_getfield(L, -1, "cols");
    lua_rawgeti(L, -1, 1);
    led = (int)lua_tointeger(L, -1) == i;
    lua_pop(L, 3);
  }
  lua_pop(L, 1);
  return !led;
}

/*
** CREATE [UNIQUE] INDEX for declared index k of the model at modelidx.
** Raises when its name is already an index of another table (SQLite's IF
** NOT EXISTS would skip it without a word).
*/
static int create_declared(lua_State *L, jn_Conn *c, int modelidx, int k) {
  jn_Model *m = (jn_Model *)lua_touserdata(L, modelidx);
  jn_Buf b;
  int rc, n, j, ix;
  jn_model_uv(L, modelidx, "indexes");
  lua_rawgeti(L, -1, k);
  ix = lua_gettop(L);
  lua_getfield(L, ix, "name");
  rc = run_own_sql(L, c, "SELECT tbl_name FROM sqlite_master WHERE type = 'index' AND name = ? COLLATE NOCASE",
                   ix + 1, 1);
  if (rc != SQLITE_OK) return rc;
  lua_rawgeti(L, -1, 1);
  if (!lua_isnil(L, -1)) {
    const char *t;
    lua_getfield(L, -1, "tbl_name");
    t = lua_tostring(L, -1);
    if (t != NULL && sqlite3_stricmp(t, m->table) != 0)
      luaL_error(L, "db:sync: %s: index name '%s' is already an index of table %s", m->name,
                 lua_tostring(L, ix + 1), t);
    lua_pop(L, 1);
  }
  lua_pop(L, 2);
  jn_buf_init(L, &b);
  lua_getfield(L, ix, "unique");
  jn_buf_adds(L, &b, lua_toboolean(L, -1) ? "CREATE UNIQUE INDEX IF NOT EXISTS " : "CREATE INDEX IF NOT EXISTS ");
  lua_pop(L, 1);
  jn_buf_addident(L, &b, NULL, lua_tostring(L, ix + 1));
  jn_buf_adds(L, &b, " ON ");
  jn_buf_addident(L, &b, NULL, m->table);
  jn_buf_adds(L, &b, " (");
  lua_getfield(L, ix, "cols");
  n = (int)lua_rawlen(L, -1);
  for (j = 1; j <= n; j++) {
    lua_rawgeti(L, -1, j);
    if (j > 1) jn_buf_adds(L, &b, ", ");
    jn_buf_addident(L, &b, NULL, m->f[lua_tointeger(L, -1)].name);
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
  jn_buf_adds(L, &b, ")");
  rc = run_own_sql(L, c, jn_buf_cstr(L, &b), 0, 0);
  lua_pop(L, 4);
  return rc;
}

/*
** CREATE INDEX for foreign key field i: named "<table>.<field>" (a name no
** other table and field can give, identifiers holding no dot), on the
** field, then the other fields of its composite unique group.
*/
static int create_index(lua_State *L, jn_Conn *c, jn_Model *m, int declsidx, int i) {
  jn_Buf b;
  int rc;
  jn_buf_init(L, &b);
  jn_buf_adds(L, &b, "CREATE INDEX IF NOT EXISTS ");
  lua_pushfstring(L, "%s.%s", m->table, m->f[i].name);
  jn_buf_addident(L, &b, NULL, lua_tostring(L, -1));
  lua_pop(L, 1);
  jn_buf_adds(L, &b, " ON ");
  jn_buf_addident(L, &b, NULL, m->table);
  jn_buf_adds(L, &b, " (");
  group_cols(L, &b, m, declsidx, i, 1);
  jn_buf_adds(L, &b, ")");
  rc = run_own_sql(L, c, jn_buf_cstr(L, &b), 0, 0);
  lua_pop(L, 1);
  return rc;
}

/* CREATE TABLE and indexes for the model at modelidx. */
static int create_table(lua_State *L, jn_Conn *c, int modelidx, int orderidx) {
  jn_Model *m = (jn_Model *)lua_touserdata(L, modelidx);
  jn_Buf b;
  int i, n, rc, declsidx;
  jn_model_uv(L, modelidx, JN_UV_FIELDS);
  declsidx = lua_gettop(L);
  jn_buf_init(L, &b);
  jn_buf_adds(L, &b, "CREATE TABLE ");
  jn_buf_addident(L, &b, NULL, m->table);
  jn_buf_adds(L, &b, " (\n  ");
  for (i = 0; i < m->nfields; i++) {
    if (i) jn_buf_adds(L, &b, ",\n  ");
    column_def(L, c, &b, m, i, declsidx, orderidx);
  }
  unique_groups(L, &b, m, declsidx);
  jn_buf_adds(L, &b, "\n)");
  rc = run_own_sql(L, c, jn_buf_cstr(L, &b), 0, 0);
  for (i = 0; rc == SQLITE_OK && i < m->nfields; i++)
    if (wants_index(L, m, modelidx, declsidx, i)) rc = create_index(L, c, m, declsidx, i);
  jn_model_uv(L, modelidx, "indexes");
  n = (int)lua_rawlen(L, -1);
  lua_pop(L, 1);
  for (i = 1; rc == SQLITE_OK && i <= n; i++) rc = create_declared(L, c, modelidx, i);
  lua_pop(L, 2);
  return rc;
}

/* {====== Comparing an existing table with its model */

/* SQLite's affinity of a declared column type (the rules of its
** "Determination Of Column Affinity"): 'I', 'T', 'B', 'R' or 'N'. */
static char affinity(const char *type) {
  char up[64];
  size_t k;
  for (k = 0; type[k] && k < sizeof up - 1; k++)
    up[k] = (char)((type[k] >= 'a' && type[k] <= 'z') ? type[k] - 'a' + 'A' : type[k]);
  up[k] = '\0';
  if (strstr(up, "INT")) return 'I';
  if (strstr(up, "CHAR") || strstr(up, "CLOB") || strstr(up, "TEXT")) return 'T';
  if (strstr(up, "BLOB") || up[0] == '\0') return 'B';
  if (strstr(up, "REAL") || strstr(up, "FLOA") || strstr(up, "DOUB")) return 'R';
  return 'N';
}

/* Where sync collects what it found: problems (fail) and warnings. */
typedef struct jn_Diff {
  jn_Conn *c;
  jn_Model *m;
  int probs, warns;         /* stack indices of the two arrays */
  int declsidx, orderidx, modelidx;
  int alter;
} jn_Diff;

/* Add the string on top to the array at idx (pops it). */
static void diff_add(lua_State *L, int idx) {
  lua_rawseti(L, idx, (int)lua_rawlen(L, idx) + 1);
}

/* The row of rows (array at rowsidx) whose field key equals name, ignoring
** case; 0 when none. */
static int find_row(lua_State *L, int rowsidx, const char *key, const char *name) {
  int i, n = (int)lua_rawlen(L, rowsidx);
  for (i = 1; i <= n; i++) {
    const char *v;
    lua_rawgeti(L, rowsidx, i);
    lua_getfield(L, -1, key);
    v = lua_tostring(L, -1);
    lua_pop(L, 2);   /* v stays anchored in the row */
    if (v != NULL && sqlite3_stricmp(v, name) == 0) return i;
  }
  return 0;
}

/* Field k of row i of the array at rowsidx, as a string (NULL) or integer. */
static const char *row_str(lua_State *L, int rowsidx, int i, const char *k) {
  const char *v;
  lua_rawgeti(L, rowsidx, i);
  lua_getfield(L, -1, k);
  v = lua_tostring(L, -1);
  lua_pop(L, 2);
  return v;
}

static lua_Integer row_int(lua_State *L, int rowsidx, int i, const char *k) {
  lua_Integer v;
  lua_rawgeti(L, rowsidx, i);
  lua_getfield(L, -1, k);
  v = lua_tointeger(L, -1);
  lua_pop(L, 2);
  return v;
}

/* Can ALTER TABLE ADD COLUMN add field i?  NULL if so, else why not. */
static const char *why_not_addable(lua_State *L, jn_Diff *d, int i) {
  jn_Field *f = &d->m->f[i];
  int dflt, ref;
  if (f->flags & JN_F_PK) return "a primary key";
  if ((f->flags & JN_F_UNIQUE) || unique_group(L, d->declsidx, i) != NULL) return "unique";
  lua_rawgeti(L, d->declsidx, i + 1);
  lua_getfield(L, -1, "default");
  dflt = !lua_isnil(L, -1) && lua_type(L, -1) != LUA_TFUNCTION;
  lua_getfield(L, -2, "ref_model");
  ref = !lua_isnil(L, -1);
  lua_pop(L, 3);
  if ((f->flags & JN_F_NOTNULL) && !dflt) return "NOT NULL without a literal defaultValue";
  if (ref && dflt) return "a foreign key with a defaultValue";
  return NULL;
}

/* The columns: each field present, with its type affinity, NOT NULL and
** key as declared; columns the model lacks.  Returns an SQLite code. */
static int diff_columns(lua_State *L, jn_Diff *d, int tblidx) {
  jn_Model *m = d->m;
  int cols, i, n, rc;
  rc = run_own_sql(L, d->c, "SELECT name, type, \"notnull\" AS nn, dflt_value AS dv, pk "
                   "FROM pragma_table_info(?)", tblidx, 1);
  cols = lua_gettop(L);
  if (rc != SQLITE_OK) return rc;
  for (i = 0; i < m->nfields; i++) {
    jn_Field *f = &m->f[i];
    int r = find_row(L, cols, "name", f->name), nn, pk;
    char want;
    if (r == 0) {
      const char *why = why_not_addable(L, d, i);
      if (d->alter && why == NULL) {
        jn_Buf b;
        jn_buf_init(L, &b);
        jn_buf_adds(L, &b, "ALTER TABLE ");
        jn_buf_addident(L, &b, NULL, m->table);
        jn_buf_adds(L, &b, " ADD COLUMN ");
        column_def(L, d->c, &b, m, i, d->declsidx, d->orderidx);
        rc = run_own_sql(L, d->c, jn_buf_cstr(L, &b), 0, 0);
        lua_pop(L, 1);
        if (rc != SQLITE_OK) return rc;
        continue;
      }
      if (d->alter)
        lua_pushfstring(L, "%s: table %s lacks column %s, which alter cannot add (%s)", m->name,
                        m->table, f->name, why);
      else
        lua_pushfstring(L, "%s: table %s lacks column %s", m->name, m->table, f->name);
      diff_add(L, d->probs);
      continue;
    }
    want = affinity(type_sql[f->type]);
    if (affinity(row_str(L, cols, r, "type") ? row_str(L, cols, r, "type") : "") != want) {
      lua_pushfstring(L, "%s: column %s.%s is %s in the table, %s in the model", m->name, m->table,
                      f->name, row_str(L, cols, r, "type"), type_sql[f->type]);
      diff_add(L, d->probs);
    }
    pk = row_int(L, cols, r, "pk") > 0;
    if (pk != ((f->flags & JN_F_PK) != 0)) {
      lua_pushfstring(L, "%s: column %s.%s is %sthe primary key in the table, %sin the model", m->name,
                      m->table, f->name, pk ? "" : "not ", pk ? "not " : "");
      diff_add(L, d->probs);
    }
    nn = row_int(L, cols, r, "nn") != 0;
    if (!(pk && f->type == JN_T_INTEGER) && nn != ((f->flags & JN_F_NOTNULL) != 0)) {
      lua_pushfstring(L, "%s: column %s.%s is %s in the table, %s in the model", m->name, m->table,
                      f->name, nn ? "NOT NULL" : "nullable", nn ? "nullable" : "NOT NULL");
      diff_add(L, d->probs);
    }
  }
  n = (int)lua_rawlen(L, cols);
  for (i = 1; i <= n; i++) {
    const char *name = row_str(L, cols, i, "name");
    int k;
    for (k = 0; k < m->nfields; k++)
      if (sqlite3_stricmp(m->f[k].name, name) == 0) break;
    if (k < m->nfields) continue;
    if (row_int(L, cols, i, "nn") && row_str(L, cols, i, "dv") == NULL && row_int(L, cols, i, "pk") == 0) {
      lua_pushfstring(L, "%s: table %s has column %s, NOT NULL without a default, which the model lacks "
                      "(every create would fail)", m->name, m->table, name);
      diff_add(L, d->probs);
    } else {
      lua_pushfstring(L, "%s: table %s has column %s, which the model lacks", m->name, m->table, name);
      diff_add(L, d->warns);
    }
  }
  lua_pop(L, 1);
  return SQLITE_OK;
}

/* The foreign keys: each declared reference present with its target and
** actions, none the model does not declare. */
static int diff_fkeys(lua_State *L, jn_Diff *d, int tblidx) {
  jn_Model *m = d->m;
  int fks, i, n, rc;
  rc = run_own_sql(L, d->c, "SELECT \"table\" AS tbl, \"from\" AS fr, \"to\" AS tt, on_update AS ou, "
                   "on_delete AS od FROM pragma_foreign_key_list(?)", tblidx, 1);
  fks = lua_gettop(L);
  if (rc != SQLITE_OK) return rc;
  for (i = 0; i < m->nfields; i++) {
    int r = find_row(L, fks, "fr", m->f[i].name);
    const char *tt;
    if (!push_ref(L, d->c, m, i, d->declsidx, d->orderidx)) {
      if (r != 0) {
        lua_pushfstring(L, "%s: column %s.%s references %s in the table, nothing in the model", m->name,
                        m->table, m->f[i].name, row_str(L, fks, r, "tbl"));
        diff_add(L, d->probs);
      }
      continue;
    }
    push_action(L, d->declsidx, i, "onDelete");
    push_action(L, d->declsidx, i, "onUpdate");
    if (r == 0) {
      lua_pushfstring(L, "%s: column %s.%s references nothing in the table, %s (%s) in the model", m->name,
                      m->table, m->f[i].name, lua_tostring(L, -4), lua_tostring(L, -3));
      diff_add(L, d->probs);
    } else {
      tt = row_str(L, fks, r, "tt");
      if (sqlite3_stricmp(row_str(L, fks, r, "tbl"), lua_tostring(L, -4)) != 0 ||
          (tt != NULL && sqlite3_stricmp(tt, lua_tostring(L, -3)) != 0)) {
        lua_pushfstring(L, "%s: column %s.%s references %s (%s) in the table, %s (%s) in the model",
                        m->name, m->table, m->f[i].name, row_str(L, fks, r, "tbl"), tt ? tt : "its key",
                        lua_tostring(L, -4), lua_tostring(L, -3));
        diff_add(L, d->probs);
      }
      if (sqlite3_stricmp(row_str(L, fks, r, "od"), lua_tostring(L, -2)) != 0) {
        lua_pushfstring(L, "%s: foreign key %s.%s is ON DELETE %s in the table, ON DELETE %s in the model",
                        m->name, m->table, m->f[i].name, row_str(L, fks, r, "od"), lua_tostring(L, -2));
        diff_add(L, d->probs);
      }
      if (sqlite3_stricmp(row_str(L, fks, r, "ou"), lua_tostring(L, -1)) != 0) {
        lua_pushfstring(L, "%s: foreign key %s.%s is ON UPDATE %s in the table, ON UPDATE %s in the model",
                        m->name, m->table, m->f[i].name, row_str(L, fks, r, "ou"), lua_tostring(L, -1));
        diff_add(L, d->probs);
      }
    }
    lua_pop(L, 4);
  }
  n = (int)lua_rawlen(L, fks);
  for (i = 1; i <= n; i++) {   /* a foreign key on a column that is no field */
    if (jn_model_fieldname(m, row_str(L, fks, i, "fr")) >= 0) continue;
    lua_pushfstring(L, "%s: table %s has a foreign key on %s, which the model lacks", m->name, m->table,
                    row_str(L, fks, i, "fr"));
    diff_add(L, d->probs);
  }
  lua_pop(L, 1);
  return SQLITE_OK;
}

/*
** Push the fields of an index (its name at nameidx) as a string of one
** character per field of the model, '1' where the field is in the index,
** or nil when it holds a column that is no field; and set *lead to the
** field the index starts with (-1 if none).
*/
static int push_index_key(lua_State *L, jn_Diff *d, int nameidx, int *lead) {
  int rows, n, i, rc;
  luaL_Buffer lb;
  char *mark;
  rc = run_own_sql(L, d->c, "SELECT name FROM pragma_index_info(?) ORDER BY seqno", nameidx, 1);
  rows = lua_gettop(L);
  *lead = -1;
  if (rc != SQLITE_OK) return rc;
  mark = (char *)lua_newuserdata(L, (size_t)d->m->nfields + 1);
  memset(mark, '0', (size_t)d->m->nfields);
  n = (int)lua_rawlen(L, rows);
  for (i = 1; i <= n; i++) {
    const char *col = row_str(L, rows, i, "name");
    int k;
    for (k = 0; col != NULL && k < d->m->nfields; k++)
      if (sqlite3_stricmp(d->m->f[k].name, col) == 0) break;
    if (col == NULL || k == d->m->nfields) {   /* an expression or another column */
      if (i == 1) *lead = -1;
      lua_pop(L, 2);
      lua_pushnil(L);
      return SQLITE_OK;
    }
    if (i == 1) *lead = k;
    mark[k] = '1';
  }
  luaL_buffinit(L, &lb);
  luaL_addlstring(&lb, mark, (size_t)d->m->nfields);
  luaL_pushresult(&lb);
  lua_replace(L, rows);
  lua_pop(L, 1);
  return SQLITE_OK;
}

/* The unique constraints (a single UNIQUE, a composite group), and the
** indexes sync makes on foreign keys (only warned about, or made with alter). */
static int diff_indexes(lua_State *L, jn_Diff *d, int tblidx) {
  jn_Model *m = d->m;
  int ixs, found, want, have, led, i, j, n, rc;
  rc = run_own_sql(L, d->c, "SELECT name, origin, partial, \"unique\" AS u FROM pragma_index_list(?)",
                   tblidx, 1);
  ixs = lua_gettop(L);
  if (rc != SQLITE_OK) return rc;
  lua_newtable(L);   /* found: "<key>|<unique>" of every full index -> true */
  lua_newtable(L);   /* want: key -> field that names it */
  want = lua_gettop(L);
  lua_newtable(L);   /* have: key of each UNIQUE constraint -> true */
  have = lua_gettop(L);
  lua_newtable(L);   /* led: field index + 1 -> true when an index starts with it */
  led = lua_gettop(L);
  found = ixs + 1;
  for (i = 0; i < m->nfields; i++) {
    char *mark;
    int g = group_first(L, m, d->declsidx, i);
    if ((m->f[i].flags & JN_F_PK) || (!(m->f[i].flags & JN_F_UNIQUE) && g != 1)) continue;
    mark = (char *)lua_newuserdata(L, (size_t)m->nfields);
    memset(mark, '0', (size_t)m->nfields);
    mark[i] = '1';
    if (g == 1) {
      const char *gi = unique_group(L, d->declsidx, i);
      for (j = i + 1; j < m->nfields; j++) {
        const char *h = unique_group(L, d->declsidx, j);
        if (h != NULL && strcmp(h, gi) == 0) mark[j] = '1';
      }
    }
    lua_pushlstring(L, mark, (size_t)m->nfields);
    lua_pushinteger(L, i);
    lua_rawset(L, want);
    lua_pop(L, 1);
  }
  n = (int)lua_rawlen(L, ixs);
  for (i = 1; i <= n; i++) {
    int lead;
    const char *origin = row_str(L, ixs, i, "origin");
    lua_rawgeti(L, ixs, i);
    lua_getfield(L, -1, "name");
    rc = push_index_key(L, d, lua_gettop(L), &lead);
    if (rc != SQLITE_OK) return rc;
    if (lead >= 0 && row_int(L, ixs, i, "partial") == 0) {
      lua_pushboolean(L, 1);
      lua_rawseti(L, led, lead + 1);
    }
    if (!lua_isnil(L, -1) && row_int(L, ixs, i, "partial") == 0) {
      lua_pushfstring(L, "%s|%d", lua_tostring(L, -1), (int)row_int(L, ixs, i, "u"));
      lua_pushboolean(L, 1);
      lua_rawset(L, found);
    }
    /* a UNIQUE over a column that is no field: diff_columns has said so */
    if (origin != NULL && strcmp(origin, "u") == 0 && !lua_isnil(L, -1)) {
      lua_pushvalue(L, -1);
      lua_rawget(L, want);
      if (lua_isnil(L, -1)) {
        lua_pushfstring(L, "%s: table %s has a UNIQUE constraint (%s) that the model does not declare",
                        m->name, m->table, row_str(L, ixs, i, "name"));
        diff_add(L, d->probs);
      }
      lua_pop(L, 1);
      lua_pushvalue(L, -1);
      lua_pushboolean(L, 1);
      lua_rawset(L, have);
    }
    lua_pop(L, 3);
  }
  lua_pushnil(L);
  while (lua_next(L, want) != 0) {
    int f = (int)lua_tointeger(L, -1);
    lua_pop(L, 1);
    lua_pushvalue(L, -1);
    lua_rawget(L, have);
    if (lua_isnil(L, -1)) {
      jn_Buf b;
      jn_buf_init(L, &b);
      if (m->f[f].flags & JN_F_UNIQUE) jn_buf_addident(L, &b, NULL, m->f[f].name);
      else group_cols(L, &b, m, d->declsidx, f, 0);
      lua_pushfstring(L, "%s: table %s lacks UNIQUE (%s)", m->name, m->table, jn_buf_cstr(L, &b));
      diff_add(L, d->probs);
      lua_pop(L, 1);
    }
    lua_pop(L, 1);
  }
  jn_model_uv(L, d->modelidx, "indexes");   /* the declared indexes */
  for (i = 1; i <= (int)lua_rawlen(L, -1); i++) {
    char *mark = (char *)lua_newuserdata(L, (size_t)m->nfields);
    int unique, k, nc;
    memset(mark, '0', (size_t)m->nfields);
    lua_rawgeti(L, -2, i);
    lua_getfield(L, -1, "cols");
    nc = (int)lua_rawlen(L, -1);
    for (k = 1; k <= nc; k++) {
      lua_rawgeti(L, -1, k);
      mark[lua_tointeger(L, -1)] = '1';
      lua_pop(L, 1);
    }
    lua_getfield(L, -2, "unique");
    unique = lua_toboolean(L, -1);
    lua_pushlstring(L, mark, (size_t)m->nfields);
    lua_pushfstring(L, "%s|%d", lua_tostring(L, -1), unique);
    lua_rawget(L, found);
    j = lua_toboolean(L, -1);
    lua_pop(L, 4);
    if (!j) {
      if (d->alter) {
        if ((rc = create_declared(L, d->c, d->modelidx, i)) != SQLITE_OK) return rc;
      } else {
        lua_getfield(L, -1, "name");
        lua_pushfstring(L, "%s: table %s lacks the %sindex %s (db:sync{ alter = true } creates it)", m->name,
                        m->table, unique ? "UNIQUE " : "", lua_tostring(L, -1));
        diff_add(L, unique ? d->probs : d->warns);
        lua_pop(L, 1);
      }
    }
    lua_pop(L, 2);
  }
  lua_pop(L, 1);
  for (i = 0; i < m->nfields; i++) {
    if (!wants_index(L, m, d->modelidx, d->declsidx, i)) continue;
    lua_rawgeti(L, led, i + 1);
    j = lua_toboolean(L, -1);
    lua_pop(L, 1);
    if (j) continue;
    if (d->alter) {
      if ((rc = create_index(L, d->c, m, d->declsidx, i)) != SQLITE_OK) return rc;
    } else {
      lua_pushfstring(L, "%s: table %s lacks the index on its foreign key %s (db:sync{ alter = true } "
                      "creates it)", m->name, m->table, m->f[i].name);
      diff_add(L, d->warns);
    }
  }
  lua_pop(L, 5);
  return SQLITE_OK;
}

/* }====== */

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

/*
** Body of db:sync under jn_atomic: [w, db, order, seq, force, alter].
** Drops (force), then per model in seq: creates the table, or compares
** the existing one with the model.  Any difference but in indexes fails
** the whole sync, which then writes nothing.
*/
static int sync_body(lua_State *L) {
  jn_Write *w = (jn_Write *)lua_touserdata(L, 1);
  jn_Conn *c = w->c;
  int orderidx = 3, seqidx = 4, force = lua_toboolean(L, 5), n, i, rc;
  jn_Diff d;
  n = (int)lua_rawlen(L, seqidx);
  if ((rc = jn_write_guard(L, w)) != SQLITE_OK) return jn_pushfail(L, c, rc);
  /* every reference must work before anything is written */
  for (i = 1; i <= n; i++) {
    jn_Model *m;
    int k, declsidx;
    lua_rawgeti(L, seqidx, i);
    m = (jn_Model *)lua_touserdata(L, -1);
    jn_model_uv(L, lua_gettop(L), JN_UV_FIELDS);
    declsidx = lua_gettop(L);
    for (k = 0; k < m->nfields; k++)
      if (push_ref(L, c, m, k, declsidx, orderidx)) lua_pop(L, 2);
    lua_pop(L, 2);
  }
  for (i = n; force && i >= 1; i--) {
    jn_Buf b;
    jn_Model *m;
    lua_rawgeti(L, seqidx, i);
    m = (jn_Model *)lua_touserdata(L, -1);
    jn_buf_init(L, &b);
    jn_buf_adds(L, &b, "DROP TABLE IF EXISTS ");
    jn_buf_addident(L, &b, NULL, m->table);
    rc = run_own_sql(L, c, jn_buf_cstr(L, &b), 0, 0);
    if (rc != SQLITE_OK) return jn_pushfail(L, c, rc);
    lua_pop(L, 2);
  }
  d.c = c;
  d.orderidx = orderidx;
  d.alter = lua_toboolean(L, 6);
  lua_newtable(L);
  d.probs = lua_gettop(L);
  lua_newtable(L);
  d.warns = lua_gettop(L);
  for (i = 1; i <= n; i++) {
    int midx, tblidx;
    lua_rawgeti(L, seqidx, i);
    midx = lua_gettop(L);
    d.m = (jn_Model *)lua_touserdata(L, midx);
    lua_pushstring(L, d.m->table);
    tblidx = lua_gettop(L);
    if (!table_exists(L, c, tblidx, &rc) && rc == SQLITE_OK) {
      rc = create_table(L, c, midx, orderidx);
    } else if (rc == SQLITE_OK) {
      jn_model_uv(L, midx, JN_UV_FIELDS);
      d.declsidx = lua_gettop(L);
      d.modelidx = midx;
      rc = diff_columns(L, &d, tblidx);
      if (rc == SQLITE_OK) rc = diff_fkeys(L, &d, tblidx);
      if (rc == SQLITE_OK) rc = diff_indexes(L, &d, tblidx);
      lua_pop(L, 1);
    }
    if (rc != SQLITE_OK) return jn_pushfail(L, c, rc);
    lua_pop(L, 2);
  }
  lua_createtable(L, 0, 2);
  lua_pushvalue(L, d.probs);
  lua_setfield(L, -2, "problems");
  lua_pushvalue(L, d.warns);
  lua_setfield(L, -2, "warnings");
  if (lua_rawlen(L, d.probs) > 0) {
    luaL_Buffer lb;
    int np = (int)lua_rawlen(L, d.probs);
    luaL_buffinit(L, &lb);
    for (i = 1; i <= np; i++) {
      if (i > 1) luaL_addstring(&lb, "; ");
      lua_rawgeti(L, d.probs, i);
      luaL_addvalue(&lb);
    }
    luaL_addstring(&lb, d.alter ? " (run a migration; alter adds columns and indexes, and changes "
                   "nothing else)" : " (run a migration or db:sync{ alter = true })");
    luaL_pushresult(&lb);
    lua_pushnil(L);
    lua_insert(L, -2);
    lua_pushinteger(L, JN_SCHEMA);
    lua_pushvalue(L, -4);
    return 4;
  }
  lua_pushboolean(L, 1);
  if (lua_rawlen(L, d.warns) == 0) return 1;
  lua_insert(L, -2);
  return 2;
}

/*** Create the tables of every model (and with force, drop them first);
compare the tables that exist with their models.
@function db:sync
@tparam[opt] table opts force, alter
@treturn true|fail
*/
static int schema_sync(lua_State *L) {
  static const char *const sync_opts[] = { "force", "alter", NULL };
  jn_Conn *c = jn_conn_check(L, 1, "db:sync");
  int force = 0, alter = 0, n, i, done, orderidx, pendingidx, seqidx;
  jn_query_checkopts(L, 2, sync_opts, "db:sync");
  if (lua_istable(L, 2)) {
    lua_pushliteral(L, "force");
    lua_rawget(L, 2);
    force = lua_toboolean(L, -1);
    lua_pushliteral(L, "alter");
    lua_rawget(L, 2);
    alter = lua_toboolean(L, -1);
    lua_pop(L, 2);
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
  /* [db, order, seq, force, alter], run all or nothing */
  lua_pushvalue(L, 1);
  lua_pushvalue(L, orderidx);
  lua_pushvalue(L, seqidx);
  lua_pushboolean(L, force);
  lua_pushboolean(L, alter);
  lua_replace(L, 5);
  lua_replace(L, 4);
  lua_replace(L, 3);
  lua_replace(L, 2);
  lua_replace(L, 1);
  lua_settop(L, 5);
  return jn_atomic(L, c, sync_body, 1, 0);
}

/* }====== */

/* Leave junction.types and junction.SCHEMA in the module table at -1. */
void jn_schema_open(lua_State *L) {
  new_types(L);
  lua_setfield(L, -2, "types");
  lua_pushinteger(L, JN_SCHEMA);
  lua_setfield(L, -2, "SCHEMA");
  lua_getfield(L, -1, "Connection");   /* db:define and db:sync, next to jn_conn's methods */
  lua_pushcfunction(L, schema_define);
  lua_setfield(L, -2, "define");
  lua_pushcfunction(L, schema_sync);
  lua_setfield(L, -2, "sync");
  lua_pop(L, 1);
}
