/*
** jn_schema.c: declarations.  junction.types and db:define (every option
** and identifier checked, the model's fixed SQL generated once).  Creating
** and comparing the tables is db:sync's, in jn_sync.c.
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
  "INTEGER", "TEXT", "STRING", "REAL", "BLOB", "BOOLEAN", "DATE",
  "DATEONLY", "JSON", "ENUM", "UUID", "BIGINT", "VIRTUAL", NULL
};
static const char *const define_opts[] = {
  "tableName", "schema", "timestamps", "underscored", "fields", "indexes", "foreignKeyIndexes", NULL
};
static const char *const index_opts[] = { "fields", "unique", "name", NULL };
static const char *const field_opts[] = {
  "type", "allowNull", "primaryKey", "autoIncrement", "defaultValue", "unique",
  "references", "onDelete", "onUpdate", "comment", "field", NULL
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
void jn_schema_checkident(lua_State *L, int idx, const char *ctx) {
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
jn_Model *jn_schema_checkopen(lua_State *L, int idx) {
  jn_Model *m = check_model(L, idx);
  jn_conn_checkopen(L, m->conn, m->name, NULL);
  return m;
}

/* Push field key of the uservalue of the model at modelidx. [-0, +1, -] */
void jn_schema_uv(lua_State *L, int modelidx, const char *key) {
  lua_getuservalue(L, modelidx);
  lua_getfield(L, -1, key);
  lua_remove(L, -2);
}

/* Push the model's lookup table. [-0, +1, -] */
void jn_schema_lookup(lua_State *L, jn_Model *m) {
  lua_getfield(L, LUA_REGISTRYINDEX, JN_LOOKUPS);
  lua_rawgeti(L, -1, m->lookup_id);
  lua_remove(L, -2);
}

/* The 0-based index of the field named by the string at nameidx, or -1. */
int jn_schema_field(lua_State *L, jn_Model *m, int nameidx) {
  int idx = -1;
  if (nameidx < 0) nameidx = lua_gettop(L) + nameidx + 1;
  jn_schema_lookup(L, m);
  lua_pushvalue(L, nameidx);
  lua_rawget(L, -2);
  if (lua_type(L, -1) == LUA_TNUMBER) idx = (int)lua_tointeger(L, -1) - 1;
  lua_pop(L, 2);
  return idx;
}

/* The 0-based index of the field name, or -1. */
int jn_schema_fieldname(jn_Model *m, const char *name) {
  int i;
  for (i = 0; i < m->nfields; i++)
    if (strcmp(m->f[i].name, name) == 0) return i;
  return -1;
}

/* The 0-based index of the field whose column is col (ignoring case, as
** SQLite's names do), or -1. */
int jn_schema_column(jn_Model *m, const char *col) {
  int i;
  for (i = 0; col != NULL && i < m->nfields; i++)
    if (jn_stricmp(m->f[i].col, col) == 0) return i;
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

/* Push the type value a field referring to field f must have: f's own
** (an ENUM's values stay with f: TEXT). */
void jn_schema_pushkeytype(lua_State *L, const jn_Field *f) {
  if (f->type == JN_T_ENUM) push_type(L, JN_T_TEXT, 0);
  else push_type(L, f->type, f->type == JN_T_STRING ? f->length : 0);
}

/* The column type a field of type code (JN_T_*) gets from SQLite's
** dialect, without a length ("VARCHAR" for STRING; "" for VIRTUAL, which
** has no column).  The dialect's table is the one list of them. */
const char *jn_schema_sqltype(int code) {
  const char *t = code >= 0 && code < JN_T_ANY ? jn_sqlite_dialect.ddl_type[code] : NULL;
  return t != NULL ? t : "";
}

/* The SQL column type of a type value ("INTEGER", "VARCHAR(60)"). */
static void type_sqlname(const jn_Type *t, char *out, size_t size) {
  if (t->code == JN_T_STRING) snprintf(out, size, "VARCHAR(%d)", t->length);
  else snprintf(out, size, "%s", jn_schema_sqltype(t->code));
}

/*
** T.ENUM("a", "b", ...): a TEXT field holding one of the values.  The type
** value's uservalue is the list of values; a value is a non-empty string
** without NUL, each given once.
*/
static int type_enum(lua_State *L) {
  int n = lua_gettop(L), i, j;
  if (n == 0) luaL_error(L, "junction.types.ENUM: no values (ENUM(\"a\", \"b\", ...) expected)");
  for (i = 1; i <= n; i++) {
    size_t len;
    const char *s;
    if (lua_type(L, i) != LUA_TSTRING)
      luaL_error(L, "junction.types.ENUM: bad value #%d (string expected, got %s)", i,
                 luaL_typename(L, i));
    s = lua_tolstring(L, i, &len);
    if (len == 0 || strlen(s) != len)
      luaL_error(L, "junction.types.ENUM: bad value #%d (an empty string or one with a NUL)", i);
    for (j = 1; j < i; j++)
      if (lua_rawequal(L, i, j)) luaL_error(L, "junction.types.ENUM: value '%s' given twice", s);
  }
  push_type(L, JN_T_ENUM, n);
  lua_createtable(L, n, 0);
  for (i = 1; i <= n; i++) {
    lua_pushvalue(L, i);
    lua_rawseti(L, -2, i);
  }
  lua_setuservalue(L, -2);
  return 1;
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
    else if (i == JN_T_ENUM) lua_pushcfunction(L, type_enum);
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
  if (lua_tocfunction(L, idx) == type_enum)
    return luaL_error(L, "db:define: %s: bad option 'type' (junction.types.ENUM is a function: "
                      "call it with the values, junction.types.ENUM(\"a\", \"b\"))", ctx);
  t = (jn_Type *)luaL_testudata(L, idx, JN_TYPE_MT);
  if (t == NULL)
    return luaL_error(L, "db:define: %s: bad option 'type' (a junction.types value expected, got %s)",
                      ctx, luaL_typename(L, idx));
  /* junction made it, but check anyway: the code indexes tables */
  if (t->code < 0 || t->code >= JN_T_ANY ||
      (t->code == JN_T_STRING || t->code == JN_T_ENUM) != (t->length > 0))
    return luaL_error(L, "db:define: %s: bad option 'type' (not a junction.types value)", ctx);
  if (t->code == JN_T_VIRTUAL)   /* the define of require "junction" takes them out */
    return luaL_error(L, "db:define: %s: bad option 'type' (a VIRTUAL field needs the define of "
                      "require \"junction\")", ctx);
  *length = t->length;
  return t->code == JN_T_BIGINT ? JN_T_INTEGER : t->code;
}

/*
** The values of the ENUM type value on top as one string in the field's
** declaration at declidx ("enum", which anchors it): each value and a NUL,
** then a NUL; f->enums points at it.
*/
static void enum_values(lua_State *L, jn_Field *f, int declidx) {
  luaL_Buffer lb;
  int i, n = f->length, uv;
  lua_getuservalue(L, -1);
  uv = lua_gettop(L);
  luaL_buffinit(L, &lb);
  for (i = 1; i <= n; i++) {
    lua_rawgeti(L, uv, i);
    luaL_addvalue(&lb);
    luaL_addchar(&lb, '\0');
  }
  luaL_addchar(&lb, '\0');
  luaL_pushresult(&lb);
  f->enums = lua_tostring(L, -1);
  lua_setfield(L, declidx, "enum");
  lua_pop(L, 1);
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

/* The field's defaultValue (in the spec at specidx): a function, or a value
** the field can hold, kept in the declaration at declidx as it stores it. */
static void check_default(lua_State *L, jn_Field *f, int specidx, int declidx, const char *ctx) {
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
}

/* The field's references, onDelete and onUpdate (in the spec at specidx),
** kept in the declaration at declidx as ref_model, ref_key and actions. */
static void check_references(lua_State *L, int specidx, int declidx, const char *ctx) {
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
      jn_schema_checkident(L, lua_gettop(L) - 1, rctx);
      if (!lua_isnil(L, -1)) jn_schema_checkident(L, lua_gettop(L), rctx);
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

/* The field's column (option field, in the spec at specidx): an identifier,
** kept in the declaration at declidx as "field"; the attribute name when
** not given. */
static void check_column(lua_State *L, jn_Field *f, int specidx, int declidx, const char *ctx) {
  f->col = f->name;
  jn_optfield(L, specidx, "field");
  if (!lua_isnil(L, -1)) {
    char fctx[200];
    snprintf(fctx, sizeof fctx, "db:define: %s: bad option 'field'", ctx);
    jn_schema_checkident(L, lua_gettop(L), fctx);
    f->col = lua_tostring(L, -1);
    lua_setfield(L, declidx, "field");   /* anchors it */
  } else {
    lua_pop(L, 1);
  }
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
    jn_conn_checkopts(L, specidx, field_opts, octx);
  }
  jn_optfield(L, specidx, "type");
  if (lua_isnil(L, -1)) luaL_error(L, "db:define: %s: missing option 'type'", ctx);
  f->type = check_type(L, lua_gettop(L), ctx, &length);
  f->length = length;
  if (f->type == JN_T_ENUM) enum_values(L, f, declidx);
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
  check_default(L, f, specidx, declidx, ctx);
  check_references(L, specidx, declidx, ctx);
  check_column(L, f, specidx, declidx, ctx);
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
    jn_buf_addident(L, &b, NULL, m->f[i].col);
  }
  m->cols = keep_sql(L, sqlidx, "cols", &b);
  for (n = 0; n < 2; n++) {   /* n == 0: the key is left to SQLite */
    int k = 0;
    size_t mark;
    b.n = 0;
    jn_buf_adds(L, &b, "INSERT INTO ");
    jn_buf_adds(L, &b, m->qtable);
    mark = b.n;
    jn_buf_adds(L, &b, " (");
    for (i = 0; i < m->nfields; i++) {
      if (n == 0 && i == m->pk && (m->f[i].flags & JN_F_AUTOINC)) continue;
      if (k++) jn_buf_adds(L, &b, ", ");
      jn_buf_addident(L, &b, NULL, m->f[i].col);
    }
    if (k == 0) {   /* a model of only its autoincrement key: Model:create{} */
      b.n = mark;
      jn_buf_adds(L, &b, " DEFAULT VALUES");
    } else {
      jn_buf_adds(L, &b, ") VALUES (");
      for (i = 0; i < k; i++) jn_buf_adds(L, &b, i ? ", ?" : "?");
      jn_buf_adds(L, &b, ")");
    }
    if (n == 0 && m->conn->dialect->returning_key) {   /* the key comes back with the insert */
      jn_buf_adds(L, &b, " RETURNING ");
      jn_buf_addident(L, &b, NULL, m->f[m->pk].col);
    }
    m->sql[n == 0 ? JN_MS_INSERT : JN_MS_INSERT_PK] =
      keep_sql(L, sqlidx, n == 0 ? "insert" : "insert_pk", &b);
  }
  b.n = 0;
  jn_buf_adds(L, &b, "SELECT ");
  jn_buf_adds(L, &b, m->cols);
  jn_buf_adds(L, &b, " FROM ");
  jn_buf_adds(L, &b, m->qtable);
  jn_buf_adds(L, &b, " WHERE ");
  jn_buf_addident(L, &b, NULL, m->f[m->pk].col);
  jn_buf_adds(L, &b, " = ?");
  m->sql[JN_MS_BY_PK] = keep_sql(L, sqlidx, "by_pk", &b);
  b.n = 0;
  jn_buf_adds(L, &b, "DELETE FROM ");
  jn_buf_adds(L, &b, m->qtable);
  jn_buf_adds(L, &b, " WHERE ");
  jn_buf_addident(L, &b, NULL, m->f[m->pk].col);
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
  /* an index, not the model's address, so that __index finds it without
  ** hashing a pointer: n + 1 of a border n is free (the table is weak:
  ** a collected model's index is taken again) */
  if (m->lookup_id == 0) m->lookup_id = (int)lua_rawlen(L, -1) + 1;
  lua_getfield(L, uvidx, JN_UV_LOOKUP);
  lua_rawseti(L, -2, m->lookup_id);
  lua_pop(L, 1);
}

/* Add a timestamp field unless declared; returns its index. */
static int timestamp_field(lua_State *L, jn_Model *m, int declsidx, const char *name) {
  int i = jn_schema_fieldname(m, name);
  if (i >= 0) return i;
  i = m->nfields++;
  lua_createtable(L, 0, 2);
  lua_pushstring(L, name);
  m->f[i].name = m->f[i].col = lua_tostring(L, -1);
  lua_setfield(L, -2, "name");
  lua_rawseti(L, declsidx, i + 1);
  m->f[i].type = JN_T_DATE;
  m->f[i].flags = JN_F_NOTNULL;
  m->f[i].length = 0;
  return i;
}

/* Check entry i of the array of indexes at list and keep it as out[i]. */
static void check_index(lua_State *L, jn_Model *m, int list, int i, int out) {
  int ix, fl, cols, k, nc;
  luaL_Buffer lb;
  char ctx[120];
  snprintf(ctx, sizeof ctx, "db:define: %s: index %d", m->name, i);
  lua_rawgeti(L, list, i);
  ix = lua_gettop(L);
  if (!lua_istable(L, ix))
    luaL_error(L, "%s (table expected, got %s)", ctx, luaL_typename(L, ix));
  jn_conn_checkopts(L, ix, index_opts, ctx);
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
  luaL_addstring(&lb, m->dbtable);   /* index names are the database's, not the schema's, on SQLite */
  for (k = 1; k <= nc; k++) {
    int f;
    lua_rawgeti(L, fl, k);
    f = lua_type(L, -1) == LUA_TSTRING ? jn_schema_fieldname(m, lua_tostring(L, -1)) : -1;
    if (f < 0)
      luaL_error(L, "%s: bad option 'fields' (%s is no field of %s)", ctx,
                 lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : luaL_typename(L, -1), m->name);
    lua_pop(L, 1);
    lua_pushinteger(L, f);
    lua_rawseti(L, cols, k);
    luaL_addchar(&lb, '.');
    luaL_addstring(&lb, m->f[f].col);
  }
  luaL_pushresult(&lb);
  lua_pushliteral(L, "name");
  lua_rawget(L, ix);
  if (!lua_isnil(L, -1)) {
    int nameidx = lua_gettop(L);
    jn_schema_checkident(L, nameidx, lua_pushfstring(L, "%s: bad option 'name'", ctx));
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

/*
** Check spec.indexes, an array of { fields = { name, ... }, unique =, name = }
** naming fields of the model, and keep it in uv.indexes as an array of
** { name = ..., unique = bool, cols = { 0-based field index, ... } }.
** The default name is "<table>.<field>.<field>...": identifiers hold no
** dot, so it is no other table's.
*/
static void check_indexes(lua_State *L, jn_Model *m, int specidx, int uvidx) {
  int n, i, list, out;
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
    for (i = 1; i <= n; i++) check_index(L, m, list, i, out);
  }
  lua_setfield(L, uvidx, "indexes");
  lua_pop(L, 1);
}

/* Room kept in every model for the key fields db:associate adds to it. */
#define JN_ADDED_FIELDS 8

/* The stack of db:define, slot by slot, as its phases fill it. */
enum {
  D_CONN = 1, D_NAME, D_SPEC,
  D_FIELDS,                 /* spec.fields */
  D_ORDER,                  /* the field names in order */
  D_MODEL, D_UV,            /* the model and its uservalue */
  D_DECLS, D_DEFAULTS       /* uservalue.fields and uservalue.defaults */
};

/* Parse: check the arguments and options of db:define, and that the name
** is free; read timestamps and underscored.  Leaves spec.fields and the
** field names in order at D_FIELDS and D_ORDER; returns the number of
** fields declared. */
static int define_parse(lua_State *L, const char *name, int *timestamps, int *underscored) {
  if (!lua_istable(L, D_SPEC))
    luaL_error(L, "db:define: bad argument #2 (table expected, got %s)", luaL_typename(L, D_SPEC));
  lua_pushfstring(L, "db:define: %s", name);
  jn_conn_checkopts(L, D_SPEC, define_opts, lua_tostring(L, -1));
  lua_settop(L, D_SPEC);
  lua_getuservalue(L, D_CONN);
  lua_getfield(L, -1, "models");
  lua_getfield(L, -1, name);
  if (!lua_isnil(L, -1)) luaL_error(L, "db:define: model '%s' is already defined", name);
  lua_settop(L, D_SPEC);
  *timestamps = opt_bool(L, D_SPEC, "timestamps", 1, name);
  *underscored = opt_bool(L, D_SPEC, "underscored", 0, name);
  jn_optfield(L, D_SPEC, "fields");
  if (!lua_istable(L, D_FIELDS))
    luaL_error(L, "db:define: %s: bad option 'fields' (table expected, got %s)", name,
               luaL_typename(L, D_FIELDS));
  return field_order(L, D_FIELDS, name);
}

/* Allocate: the model with room for nf fields and its implicit ones, its
** uservalue, declarations and defaults (D_MODEL .. D_DEFAULTS). */
static jn_Model *define_alloc(lua_State *L, jn_Conn *c, const char *name, int nf) {
  size_t size = sizeof(jn_Model) + (size_t)(nf + 3 + JN_ADDED_FIELDS) * sizeof(jn_Field);
  jn_Model *m = (jn_Model *)lua_newuserdata(L, size);
  memset(m, 0, size);
  m->conn = c;
  m->cap = nf + 3 + JN_ADDED_FIELDS;
  m->pk = -1;
  m->created = m->updated = -1;
  luaL_setmetatable(L, JN_MODEL_MT);
  lua_createtable(L, 0, 8);
  lua_pushvalue(L, D_CONN);
  lua_setfield(L, D_UV, JN_UV_CONN);
  lua_newtable(L);
  lua_pushvalue(L, D_DECLS);
  lua_setfield(L, D_UV, JN_UV_FIELDS);
  lua_newtable(L);
  lua_pushvalue(L, D_DEFAULTS);
  lua_setfield(L, D_UV, JN_UV_DEFAULTS);
  lua_pushstring(L, name);
  m->name = lua_tostring(L, -1);
  lua_setfield(L, D_UV, "name");
  return m;
}

/*
** The model's schema (spec.schema, Sequelize's): NULL, or an identifier of
** at most 63 bytes (PostgreSQL's limit; the same on SQLite, so that one
** declaration runs on both).  Then the names the SQL and the catalog use
** (jn_Model's qtable and dbtable), anchored in the uservalue: where the
** dialect has schemas, "schema"."table" and the bare table; elsewhere the
** schema prefixes the table's one name, "schema.table" (Sequelize's choice
** on SQLite), identifiers holding no dot.  [-0, +0, e]
*/
static void define_qualified(lua_State *L, jn_Model *m) {
  const char *t;
  jn_optfield(L, D_SPEC, "schema");
  if (!lua_isnil(L, -1)) {
    lua_pushfstring(L, "db:define: %s: bad option 'schema'", m->name);
    jn_schema_checkident(L, lua_gettop(L) - 1, lua_tostring(L, -1));
    if (lua_rawlen(L, -2) > 63)
      luaL_error(L, "%s (at most 63 bytes, PostgreSQL's limit: '%s' has %d)", lua_tostring(L, -1),
                 lua_tostring(L, -2), (int)lua_rawlen(L, -2));
    lua_pop(L, 1);
    m->schema = lua_tostring(L, -1);
  }
  lua_setfield(L, D_UV, "schema");
  t = m->table;   /* the one place a table is quoted (.ci/check-layers.sh checks) */
  if (m->schema == NULL) lua_pushfstring(L, "\"%s\"", t);
  else if (m->conn->dialect->schemas) lua_pushfstring(L, "\"%s\".\"%s\"", m->schema, t);
  else lua_pushfstring(L, "\"%s.%s\"", m->schema, t);
  m->qtable = lua_tostring(L, -1);
  lua_setfield(L, D_UV, "qtable");
  if (m->schema == NULL || m->conn->dialect->schemas) lua_pushstring(L, m->table);
  else lua_pushfstring(L, "%s.%s", m->schema, m->table);
  m->dbtable = lua_tostring(L, -1);
  lua_setfield(L, D_UV, "dbtable");
}

/* Do two models name the same table?  SQLite's table names ignore case
** ("Post" is "post"); so does junction's reading of PostgreSQL's catalog. */
static int same_table(const jn_Model *a, const jn_Model *b) {
  if ((a->schema == NULL) != (b->schema == NULL)) return 0;
  if (a->schema != NULL && strcmp(a->schema, b->schema) != 0) return 0;
  return jn_stricmp(a->table, b->table) == 0;
}

/* The model's table: spec.tableName or its name, in its schema, a table no
** other model of the connection has. */
static void define_table(lua_State *L, jn_Model *m) {
  int k, n;
  jn_optfield(L, D_SPEC, "tableName");
  if (lua_isnil(L, -1)) { lua_pop(L, 1); lua_pushstring(L, m->name); }
  if (lua_type(L, -1) != LUA_TSTRING)
    luaL_error(L, "db:define: %s: bad option 'tableName' (string expected, got %s)", m->name,
               luaL_typename(L, -1));
  lua_pushfstring(L, "db:define: %s: bad option 'tableName'", m->name);
  jn_schema_checkident(L, lua_gettop(L) - 1, lua_tostring(L, -1));
  lua_pop(L, 1);
  m->table = lua_tostring(L, -1);
  lua_setfield(L, D_UV, "table");
  define_qualified(L, m);
  lua_getuservalue(L, D_CONN);
  lua_getfield(L, -1, "order");
  n = lua_istable(L, -1) ? (int)lua_rawlen(L, -1) : 0;
  for (k = 1; k <= n; k++) {
    jn_Model *o;
    lua_rawgeti(L, -1, k);
    o = (jn_Model *)lua_touserdata(L, -1);
    if (o != NULL && same_table(o, m))
      luaL_error(L, "db:define: %s: table '%s' is already the table of model %s%s", m->name,
                 m->dbtable, o->name,
                 strcmp(o->table, m->table) ? " (SQLite's table names ignore case)" : "");
    lua_pop(L, 1);
  }
  lua_pop(L, 2);
}

/* Field i of the model from its spec: checked, its declaration and default
** kept; at most one primary key. */
static void define_field(lua_State *L, jn_Model *m, int i) {
  lua_createtable(L, 0, 4);                        /* decl */
  lua_rawgeti(L, D_ORDER, i + 1);
  m->f[i].name = lua_tostring(L, -1);
  lua_pushfstring(L, "db:define: %s: bad field name", m->name);
  jn_schema_checkident(L, lua_gettop(L) - 1, lua_tostring(L, -1));
  lua_pop(L, 1);
  lua_setfield(L, -2, "name");
  lua_pushvalue(L, -1);
  lua_rawseti(L, D_DECLS, i + 1);
  lua_rawgeti(L, D_ORDER, i + 1);
  lua_rawget(L, D_FIELDS);                         /* decl spec */
  check_field(L, &m->f[i], lua_gettop(L), lua_gettop(L) - 1, m->name);
  lua_getfield(L, -2, "default");
  if (!lua_isnil(L, -1)) lua_rawseti(L, D_DEFAULTS, i + 1);
  else lua_pop(L, 1);
  if (m->f[i].flags & JN_F_PK) {
    if (m->pk >= 0)
      luaL_error(L, "db:define: %s: more than one primary key ('%s' and '%s'); use unique for a composite key",
                 m->name, m->f[m->pk].name, m->f[i].name);
    m->pk = i;
    /* SQLite gives an INTEGER PRIMARY KEY left out the next rowid; an engine
    ** without rowids does so with an autoincrement key (an identity) */
    if (m->f[i].type == JN_T_INTEGER && m->conn->eng != NULL) m->f[i].flags |= JN_F_AUTOINC;
  }
  lua_pop(L, 2);
}

/* No key declared: id INTEGER PRIMARY KEY AUTOINCREMENT, in front. */
static void define_id(lua_State *L, jn_Model *m) {
  int i, nf = m->nfields;
  if (jn_schema_fieldname(m, "id") >= 0)
    luaL_error(L, "db:define: %s: field 'id' is not a primary key, and no field is", m->name);
  memmove(&m->f[1], &m->f[0], (size_t)nf * sizeof(jn_Field));
  lua_createtable(L, 0, 1);
  lua_pushliteral(L, "id");
  m->f[0].name = m->f[0].col = lua_tostring(L, -1);
  lua_setfield(L, -2, "name");
  for (i = nf; i >= 1; i--) { lua_rawgeti(L, D_DECLS, i); lua_rawseti(L, D_DECLS, i + 1); }
  lua_rawseti(L, D_DECLS, 1);
  for (i = nf; i >= 1; i--) { lua_rawgeti(L, D_DEFAULTS, i); lua_rawseti(L, D_DEFAULTS, i + 1); }
  lua_pushnil(L);
  lua_rawseti(L, D_DEFAULTS, 1);
  m->f[0].type = JN_T_INTEGER;
  m->f[0].flags = JN_F_PK | JN_F_AUTOINC | JN_F_NOTNULL;
  m->f[0].length = 0;
  m->f[0].enums = NULL;
  m->nfields = nf + 1;
  m->pk = 0;
}

/* Raise when two attributes of m share a column (SQLite's column names
** ignore case, so the check does). */
static void check_columns(lua_State *L, jn_Model *m, int from, int to, const char *ctx) {
  int i, j;
  for (i = from; i < to; i++)
    for (j = 0; j < i; j++)
      if (jn_stricmp(m->f[i].col, m->f[j].col) == 0)
        luaL_error(L, "%s: %s: attributes '%s' and '%s' are both on the column '%s'", ctx, m->name,
                   m->f[j].name, m->f[i].name, m->f[i].col);
}

/* Generate: the fixed SQL, the empty associations, the lookup table. */
static void define_generate(lua_State *L, jn_Model *m) {
  lua_newtable(L);
  lua_pushvalue(L, -1);
  lua_setfield(L, D_UV, JN_UV_SQL);
  gen_sql(L, m, lua_gettop(L));
  lua_newtable(L);
  lua_setfield(L, D_UV, JN_UV_ASSOCS);
  lua_pushvalue(L, D_UV);
  lua_setuservalue(L, D_MODEL);
  build_lookup(L, m, D_UV);
}

/* Register: models[name] = model; order[#order + 1] = model. */
static void define_register(lua_State *L, jn_Conn *c, const char *name) {
  lua_getuservalue(L, D_CONN);
  lua_getfield(L, -1, "models");
  lua_pushvalue(L, D_MODEL);
  lua_setfield(L, -2, name);
  lua_getfield(L, -2, "order");
  if (lua_isnil(L, -1)) {
    lua_pop(L, 1);
    lua_newtable(L);
    lua_pushvalue(L, -1);
    lua_setfield(L, -4, "order");
  }
  lua_pushvalue(L, D_MODEL);
  lua_rawseti(L, -2, (int)lua_rawlen(L, -2) + 1);
  lua_pop(L, 3);
  c->nmodels++;
}

/*** Define a model.
@function db:define
@tparam string name
@tparam table spec tableName, timestamps, underscored, fields
@treturn Model
*/
static int schema_define(lua_State *L) {
  jn_Conn *c = jn_conn_check(L, D_CONN, "db:define");
  const char *name;
  int nf, i, timestamps, underscored;
  jn_Model *m;
  jn_schema_checkident(L, D_NAME, "db:define: bad model name");
  /* said in full: db:define may be called through a wrapper, where luaL's
  ** "bad argument #2 to '?'" would name nothing */
  if (lua_type(L, D_NAME) != LUA_TSTRING)
    luaL_error(L, "db:define: bad argument #1 (model name expected, got %s)",
               luaL_typename(L, D_NAME));
  name = lua_tostring(L, D_NAME);
  nf = define_parse(L, name, &timestamps, &underscored);
  m = define_alloc(L, c, name, nf);
  define_table(L, m);
  for (i = 0; i < nf; i++) define_field(L, m, i);
  m->nfields = nf;
  if (m->pk < 0) define_id(L, m);
  if (timestamps) {
    m->created = timestamp_field(L, m, D_DECLS, underscored ? "created_at" : "createdAt");
    m->updated = timestamp_field(L, m, D_DECLS, underscored ? "updated_at" : "updatedAt");
  }
  check_columns(L, m, 1, m->nfields, "db:define");
  check_indexes(L, m, D_SPEC, D_UV);
  lua_pushboolean(L, opt_bool(L, D_SPEC, "foreignKeyIndexes", 1, name));
  lua_setfield(L, D_UV, "fk_indexes");
  lua_pushboolean(L, underscored);
  lua_setfield(L, D_UV, "underscored");
  define_generate(L, m);
  define_register(L, c, name);
  lua_pushvalue(L, D_MODEL);
  return 1;
}

/* }====== */

/* {====== Fields added by db:associate */

/*
** Raise unless a field may still be added to m: no instance of it was made,
** none of its statements prepared, and no association refers to it whose
** SQL lists its columns (a belongsToMany through it or to it) or whose
** statements are prepared.  Everything made from the field list is made
** again by the caller, so nothing can read a row of the old shape.
** [-0, +0, v]
*/
static void check_unsealed(lua_State *L, jn_Conn *c, jn_Model *m, const char *ctx, const char *field) {
  int k, n, top = lua_gettop(L);
  const char *why = NULL;
  if (m->sealed) why = "an instance of it was made";
  for (k = 0; why == NULL && k < JN_MS_COUNT; k++)
    if (m->st[k] != NULL) why = "it was read or written";
  lua_getuservalue(L, 1);
  lua_getfield(L, -1, "order");
  n = lua_istable(L, -1) ? (int)lua_rawlen(L, -1) : 0;
  for (k = 1; why == NULL && k <= n; k++) {
    lua_rawgeti(L, -1, k);
    if (luaL_testudata(L, -1, JN_MODEL_MT) != NULL) {
      jn_schema_uv(L, lua_gettop(L), JN_UV_ASSOCS);
      lua_pushnil(L);
      while (why == NULL && lua_istable(L, -2) && lua_next(L, -2) != 0) {
        jn_Assoc *a = (jn_Assoc *)luaL_testudata(L, -1, JN_ASSOC_MT);
        int i, used = 0;
        if (a != NULL && (a->source == m || a->target == m || a->through == m)) {
          for (i = 0; i < JN_AS_NSTMT; i++) used |= a->st[i] != NULL;
          for (i = 0; i <= JN_LINK_BATCH; i++) used |= a->ins[i] != NULL;
          for (i = 0; i <= JN_DELETE_OR; i++) used |= a->del[i] != NULL || a->dscan[i] != NULL;
          for (i = 0; i < JN_HM_NSTMT; i++) used |= a->hm[i] != NULL;
          if (used) why = "an association of it was used";
          else if (a->kind == JN_A_BELONGS_TO_MANY && a->source != m)
            why = "an earlier belongsToMany lists its columns";
        }
        lua_pop(L, 1);
      }
    }
    lua_settop(L, top + 2);   /* the connection's uservalue and its order */
  }
  lua_settop(L, top);
  (void)c;
  if (why != NULL)
    luaL_error(L, "%s: %s has no field '%s', and it cannot be added now (%s); declare it in db:define, "
               "or associate before using the model", ctx, m->name, field, why);
}

/* Check that field name can be added to m, like field likefield of o (on
** connection c); returns likefield's index in o.  Raises otherwise. */
static int addfield_check(lua_State *L, jn_Conn *c, jn_Model *m, jn_Model *o, const char *name,
                          const char *ctx) {
  int of;
  if (m->conn != c || o->conn != c) luaL_error(L, "%s: models of another connection", ctx);
  of = jn_schema_fieldname(o, lua_tostring(L, 6));
  if (of < 0) luaL_error(L, "%s: %s has no field '%s'", ctx, o->name, lua_tostring(L, 6));
  if (o->f[of].type == JN_T_ENUM || o->f[of].type >= JN_T_BIGINT)
    luaL_error(L, "%s: %s.%s is an ENUM: declare the field '%s' that refers to it", ctx, o->name,
               o->f[of].name, name);
  jn_schema_checkident(L, 3, lua_pushfstring(L, "%s: bad field name", ctx));
  if (jn_schema_fieldname(m, name) >= 0) luaL_error(L, "%s: %s already has a field '%s'", ctx, m->name, name);
  if (m->nfields >= m->cap)
    luaL_error(L, "%s: %s has no room for field '%s' (at most %d fields are added)", ctx, m->name, name,
               JN_ADDED_FIELDS);
  jn_schema_lookup(L, m);
  lua_getfield(L, -1, name);
  if (!lua_isnil(L, -1))
    luaL_error(L, "%s: the field '%s' cannot be added to %s (it is the name of an instance method)", ctx,
               name, m->name);
  lua_pop(L, 2);
  check_unsealed(L, c, m, ctx, name);
  return of;
}

/* Push a copy of the added field's declaration at 4 with the type of
** field of of o; returns its stack index. */
static int addfield_spec(lua_State *L, jn_Model *o, int of, const char *ctx) {
  int spec;
  lua_newtable(L);
  spec = lua_gettop(L);
  lua_pushnil(L);
  while (lua_next(L, 4) != 0) {
    if (lua_type(L, -2) == LUA_TSTRING &&
        (strcmp(lua_tostring(L, -2), "type") == 0 || strcmp(lua_tostring(L, -2), "primaryKey") == 0 ||
         strcmp(lua_tostring(L, -2), "defaultValue") == 0))
      luaL_error(L, "%s: bad option '%s' for an added field", ctx, lua_tostring(L, -2));
    lua_pushvalue(L, -2);
    lua_insert(L, -2);
    lua_rawset(L, spec);
  }
  push_type(L, o->f[of].type, o->f[of].type == JN_T_STRING ? o->f[of].length : 0);
  lua_setfield(L, spec, "type");
  return spec;
}

/*** Add a key field to a model (db:associate's foreign keys), before use.
@function db:_addField
@tparam Model model
@tparam string name the new field
@tparam table spec a field declaration without 'type'
@tparam Model like the model whose field gives the type
@tparam string likefield
@tparam string ctx names the caller in errors
@treturn true
*/
static int schema_addfield(lua_State *L) {
  jn_Conn *c = jn_conn_check(L, 1, "db:_addField");
  jn_Model *m = check_model(L, 2), *o = check_model(L, 5);
  const char *name = luaL_checkstring(L, 3), *ctx = luaL_checkstring(L, 7);
  int of, uv, spec, decl;
  jn_Field *f;
  luaL_checktype(L, 4, LUA_TTABLE);
  luaL_checkstring(L, 6);
  lua_settop(L, 7);
  of = addfield_check(L, c, m, o, name, ctx);
  spec = addfield_spec(L, o, of, ctx);             /* the spec, with the type */
  lua_createtable(L, 0, 4);                        /* decl */
  decl = lua_gettop(L);
  f = &m->f[m->nfields];                           /* beyond nfields until checked */
  memset(f, 0, sizeof *f);
  lua_pushvalue(L, 3);
  f->name = lua_tostring(L, -1);
  lua_setfield(L, decl, "name");
  lua_pushboolean(L, 1);
  lua_setfield(L, decl, "added");
  check_field(L, f, spec, decl, m->name);
  check_columns(L, m, m->nfields, m->nfields + 1, ctx);
  lua_getuservalue(L, 2);
  uv = lua_gettop(L);
  lua_getfield(L, uv, JN_UV_FIELDS);
  lua_pushvalue(L, decl);
  lua_rawseti(L, -2, m->nfields + 1);
  lua_pop(L, 1);
  m->nfields++;
  lua_getfield(L, uv, JN_UV_SQL);
  gen_sql(L, m, lua_gettop(L));
  lua_pop(L, 1);
  build_lookup(L, m, uv);
  lua_pushboolean(L, 1);
  return 1;
}

/* }====== */

/* Leave junction.types in the module table at -1 and db:define among the
** connection's methods. */
void jn_schema_open(lua_State *L) {
  new_types(L);
  lua_setfield(L, -2, "types");
  lua_getfield(L, -1, "Connection");   /* db:define, next to jn_conn's methods */
  lua_pushcfunction(L, schema_define);
  lua_setfield(L, -2, "define");
  lua_pushcfunction(L, schema_addfield);
  lua_setfield(L, -2, "_addField");
  lua_pop(L, 1);
}
