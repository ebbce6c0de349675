/*
** jn_sync.c: db:sync.  The tables of a connection's models created in
** foreign-key order (CREATE TABLE with constraints, then indexes), or, for
** a table that exists, compared with its model: columns, foreign keys and
** indexes.  A difference fails the whole sync (nil, message, JN_SCHEMA,
** details) and writes nothing; alter adds what can be added.
*/
#include "jn.h"
#include <stdio.h>
#include <stdlib.h>

/* {====== db:sync */

/* The code of sync's failure when a table differs from its model: nil,
** message, JN_SCHEMA, details.  Like JN_VALIDATION, its low byte (233) is
** no SQLite primary result code. */
#define JN_SCHEMA 1001

/* The model whose table (or name) is ref, among the connection's; pushes it
** or nil.  A table name finds the first model of that table, in whichever
** schema: name the model to choose among models of one table in two. */
static void find_by_table(lua_State *L, int orderidx, const char *ref) {
  int i, n = (int)lua_rawlen(L, orderidx);
  for (i = 1; i <= n; i++) {
    jn_Model *m;
    lua_rawgeti(L, orderidx, i);
    m = (jn_Model *)lua_touserdata(L, -1);
    if (jn_stricmp(m->table, ref) == 0 || strcmp(m->name, ref) == 0) return;
    lua_pop(L, 1);
  }
  lua_pushnil(L);
}

/*
** Run one statement of junction's own (DDL, or a read of the schema whose
** rows are pushed as an array of tables, column name -> value, when rows
** is set), with the string at argidx bound to its ?1, if argidx != 0, and
** then, where the dialect has schemas, schema (NULL: the current one) to ?2.
** Statements come from the connection's cache, so a raise leaks nothing.
** Returns the SQLite code; on failure pushes an empty array.
*/
static void push_text(lua_State *L, jn_Conn *c, jn_St *st, int col) {
  size_t n;
  const char *t = (const char *)jn_e_col_text(c->eng, st, col, &n);
  lua_pushlstring(L, t, n);
}

static int run_own_sql(lua_State *L, jn_Conn *c, const char *sql, int argidx, const char *schema,
                       int rows) {
  int rc, n = 0, k;
  jn_St *st = jn_stmt_cached(L, c, sql, strlen(sql), &rc);
  if (rows) lua_newtable(L);
  if (st == NULL) return rc != SQLITE_OK ? rc : SQLITE_MISUSE;
  if (argidx != 0) {
    size_t len;
    const char *s = lua_tolstring(L, argidx, &len);
    jn_e_bind_text(c->eng, st, 1, s, len, 1);
    if (c->dialect->schemas && schema != NULL)
      jn_e_bind_text(c->eng, st, 2, schema, strlen(schema), 1);
    else if (c->dialect->schemas)
      jn_e_bind_null(c->eng, st, 2);
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

/*
** After an insert that gave the autoincrement key at keyidx itself: move
** the key's generator past it where the engine does not (the dialect's
** move_identity), so that the next insert without a key gets a new one
** instead of colliding with this row.  The row is written whatever
** happens here: a failure (no right to the generator) is not the insert's,
** and the next insert would say it as a unique violation.
** [-0, +0, e]
*/
void jn_sync_move_identity(lua_State *L, jn_Model *m, int keyidx) {
  jn_Conn *c = m->conn;
  sqlite3_int64 key;
  jn_St *st;
  int rc;
  if (c->dialect->move_identity == NULL || !jn_scalar_toi64(L, keyidx, &key)) return;
  st = jn_stmt_cached(L, c, c->dialect->move_identity, strlen(c->dialect->move_identity), &rc);
  if (st == NULL) return;
  jn_stmt_bindtext(L, c, st, 1, m->qtable, strlen(m->qtable));
  jn_stmt_bindtext(L, c, st, 2, m->f[m->pk].col, strlen(m->f[m->pk].col));
  jn_stmt_bindi64(L, c, st, 3, key);
  (void)jn_conn_run(L, c, st);
}

/* Does the main database hold a table of that name (the string at idx) in
** that schema (NULL: the current one)? */
static int table_exists(lua_State *L, jn_Conn *c, int idx, const char *schema, int *rc) {
  int found;
  *rc = run_own_sql(L, c, c->dialect->find_table, idx, schema, 1);
  found = lua_rawlen(L, -1) > 0;
  lua_pop(L, 1);
  return found;
}

/*
** The target of field i's references: pushes the referenced table's name
** in the catalog (dbtable) and the key's column and returns 1, setting *tp
** to the target's model (NULL: a table that is no model), or pushes nothing
** and returns 0.  Raises
** when the reference cannot work: it names no model of the connection and
** no table of the database, or a field that is not a key of its model.
*/
static int push_ref(lua_State *L, jn_Conn *c, jn_Model *m, int i, int declsidx, int orderidx,
                    jn_Model **tp) {
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
  *tp = t;
  if (t == NULL) {
    if (!table_exists(L, c, top + 2, NULL, &rc))
      luaL_error(L, "db:sync: %s.%s: references '%s', which is no model of this connection "
                 "and no table of the database", m->name, m->f[i].name, lua_tostring(L, top + 2));
    if (key == NULL)
      luaL_error(L, "db:sync: %s.%s: references '%s', which is no model (give 'key')", m->name,
                 m->f[i].name, lua_tostring(L, top + 2));
    lua_pushvalue(L, top + 2);
  } else {   /* SQLite would only fail later, on every write ("foreign key mismatch") */
    int k;
    if (key == NULL) key = t->f[t->pk].name;
    k = jn_schema_fieldname(t, key);
    if (k < 0 || !(t->f[k].flags & (JN_F_PK | JN_F_UNIQUE)))
      luaL_error(L, "db:sync: %s.%s: references %s.%s, which is not the primary key or a unique field of %s",
                 m->name, m->f[i].name, t->table, key, t->name);
    lua_pushstring(L, t->dbtable);
    key = t->f[k].col;   /* the attribute's column */
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

/* Append an ENUM's CHECK: CHECK ("col" IN ('a', 'b')), the values quoted as
** SQL string literals (quotes doubled). */
static void enum_check(lua_State *L, jn_Buf *b, const jn_Field *f) {
  const char *v = f->enums;
  jn_buf_adds(L, b, " CHECK (");
  jn_buf_addident(L, b, NULL, f->col);
  jn_buf_adds(L, b, " IN (");
  for (; *v != '\0'; v += strlen(v) + 1) {
    const char *q;
    if (v != f->enums) jn_buf_adds(L, b, ", ");
    jn_buf_adds(L, b, "'");
    for (q = v; *q != '\0'; q++) {
      if (*q == '\'') jn_buf_adds(L, b, "''");
      else jn_buf_addl(L, b, q, 1);
    }
    jn_buf_adds(L, b, "'");
  }
  jn_buf_adds(L, b, "))");
}

/* Append one column definition of field i of the model. */
static void column_def(lua_State *L, jn_Conn *c, jn_Buf *b, jn_Model *m, int i, int declsidx,
                       int orderidx) {
  jn_Field *f = &m->f[i];
  jn_Model *t;
  char tmp[80];
  jn_buf_addident(L, b, NULL, f->col);
  if (f->type == JN_T_STRING) snprintf(tmp, sizeof tmp, " VARCHAR(%d)", f->length);
  else if (f->flags & JN_F_AUTOINC) snprintf(tmp, sizeof tmp, " %s", c->dialect->autoinc_key);
  else snprintf(tmp, sizeof tmp, " %s", c->dialect->ddl_type[f->type]);
  jn_buf_adds(L, b, tmp);
  if (f->enums != NULL) enum_check(L, b, f);
  if ((f->flags & JN_F_PK) && !(f->flags & JN_F_AUTOINC)) {
    jn_buf_adds(L, b, " PRIMARY KEY");
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
      lit = sqlite3_mprintf(" DEFAULT %s", lua_toboolean(L, -1) ? c->dialect->bool_true
                                                                   : c->dialect->bool_false);
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
  if (push_ref(L, c, m, i, declsidx, orderidx, &t)) {
    jn_buf_adds(L, b, " REFERENCES ");
    if (t != NULL) jn_buf_adds(L, b, t->qtable);
    else jn_buf_addident(L, b, NULL, lua_tostring(L, -2));
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
    jn_buf_addident(L, b, NULL, m->f[i].col);
    first = 0;
  }
  for (j = 0; g != NULL && j < m->nfields; j++) {
    const char *h = unique_group(L, declsidx, j);
    if ((lead && j == i) || h == NULL || strcmp(g, h) != 0) continue;
    if (!first) jn_buf_adds(L, b, ", ");
    jn_buf_addident(L, b, NULL, m->f[j].col);
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
  jn_schema_uv(L, modelidx, "fk_indexes");
  ref = lua_toboolean(L, -1);
  lua_pop(L, 1);
  if (!ref) return 0;
  jn_schema_uv(L, modelidx, "indexes");
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
  jn_schema_uv(L, modelidx, "indexes");
  lua_rawgeti(L, -1, k);
  ix = lua_gettop(L);
  lua_getfield(L, ix, "name");
  rc = run_own_sql(L, c, c->dialect->find_index, ix + 1, m->schema, 1);
  if (rc != SQLITE_OK) return rc;
  lua_rawgeti(L, -1, 1);
  if (!lua_isnil(L, -1)) {
    const char *t;
    lua_getfield(L, -1, "tbl_name");
    t = lua_tostring(L, -1);
    if (t != NULL && jn_stricmp(t, m->dbtable) != 0)
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
  jn_buf_adds(L, &b, m->qtable);
  jn_buf_adds(L, &b, " (");
  lua_getfield(L, ix, "cols");
  n = (int)lua_rawlen(L, -1);
  for (j = 1; j <= n; j++) {
    lua_rawgeti(L, -1, j);
    if (j > 1) jn_buf_adds(L, &b, ", ");
    jn_buf_addident(L, &b, NULL, m->f[lua_tointeger(L, -1)].col);
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
  jn_buf_adds(L, &b, ")");
  rc = run_own_sql(L, c, jn_buf_cstr(L, &b), 0, NULL, 0);
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
  lua_pushfstring(L, "%s.%s", m->dbtable, m->f[i].col);
  jn_buf_addident(L, &b, NULL, lua_tostring(L, -1));
  lua_pop(L, 1);
  jn_buf_adds(L, &b, " ON ");
  jn_buf_adds(L, &b, m->qtable);
  jn_buf_adds(L, &b, " (");
  group_cols(L, &b, m, declsidx, i, 1);
  jn_buf_adds(L, &b, ")");
  rc = run_own_sql(L, c, jn_buf_cstr(L, &b), 0, NULL, 0);
  lua_pop(L, 1);
  return rc;
}

/* CREATE TABLE and indexes for the model at modelidx. */
static int create_table(lua_State *L, jn_Conn *c, int modelidx, int orderidx) {
  jn_Model *m = (jn_Model *)lua_touserdata(L, modelidx);
  jn_Buf b;
  int i, n, rc, declsidx;
  jn_schema_uv(L, modelidx, JN_UV_FIELDS);
  declsidx = lua_gettop(L);
  jn_buf_init(L, &b);
  jn_buf_adds(L, &b, "CREATE TABLE ");
  jn_buf_adds(L, &b, m->qtable);
  jn_buf_adds(L, &b, " (\n  ");
  for (i = 0; i < m->nfields; i++) {
    if (i) jn_buf_adds(L, &b, ",\n  ");
    column_def(L, c, &b, m, i, declsidx, orderidx);
  }
  unique_groups(L, &b, m, declsidx);
  jn_buf_adds(L, &b, "\n)");
  rc = run_own_sql(L, c, jn_buf_cstr(L, &b), 0, NULL, 0);
  for (i = 0; rc == SQLITE_OK && i < m->nfields; i++)
    if (wants_index(L, m, modelidx, declsidx, i)) rc = create_index(L, c, m, declsidx, i);
  jn_schema_uv(L, modelidx, "indexes");
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
    if (v != NULL && jn_stricmp(v, name) == 0) return i;
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

/* Field i, which the table lacks: added with alter when it can be, else a
** problem. */
static int missing_column(lua_State *L, jn_Diff *d, int i) {
  jn_Model *m = d->m;
  const char *why = why_not_addable(L, d, i);
  int rc;
  if (d->alter && why == NULL) {
    jn_Buf b;
    jn_buf_init(L, &b);
    jn_buf_adds(L, &b, "ALTER TABLE ");
    jn_buf_adds(L, &b, m->qtable);
    jn_buf_adds(L, &b, " ADD COLUMN ");
    column_def(L, d->c, &b, m, i, d->declsidx, d->orderidx);
    rc = run_own_sql(L, d->c, jn_buf_cstr(L, &b), 0, NULL, 0);
    lua_pop(L, 1);
    return rc;
  }
  if (d->alter)
    lua_pushfstring(L, "%s: table %s lacks column %s, which alter cannot add (%s)", m->name,
                    m->table, m->f[i].col, why);
  else
    lua_pushfstring(L, "%s: table %s lacks column %s", m->name, m->table, m->f[i].col);
  diff_add(L, d->probs);
  return SQLITE_OK;
}

/* Field f against row r of the table's columns (at cols): its affinity,
** primary key and NOT NULL. */
static void compare_column(lua_State *L, jn_Diff *d, jn_Field *f, int cols, int r) {
  jn_Model *m = d->m;
  char want = affinity(jn_schema_sqltype(f->type));
  int nn, pk;
  if (affinity(row_str(L, cols, r, "type") ? row_str(L, cols, r, "type") : "") != want) {
    lua_pushfstring(L, "%s: column %s.%s is %s in the table, %s in the model", m->name, m->table,
                    f->col, row_str(L, cols, r, "type"), jn_schema_sqltype(f->type));
    diff_add(L, d->probs);
  }
  pk = row_int(L, cols, r, "pk") > 0;
  if (pk != ((f->flags & JN_F_PK) != 0)) {
    lua_pushfstring(L, "%s: column %s.%s is %sthe primary key in the table, %sin the model", m->name,
                    m->table, f->col, pk ? "" : "not ", pk ? "not " : "");
    diff_add(L, d->probs);
  }
  nn = row_int(L, cols, r, "nn") != 0;
  if (!(pk && f->type == JN_T_INTEGER) && nn != ((f->flags & JN_F_NOTNULL) != 0)) {
    lua_pushfstring(L, "%s: column %s.%s is %s in the table, %s in the model", m->name, m->table,
                    f->col, nn ? "NOT NULL" : "nullable", nn ? "nullable" : "NOT NULL");
    diff_add(L, d->probs);
  }
}

/* The table's columns (at cols) the model lacks: a problem when NOT NULL
** without a default, else a warning. */
static void extra_columns(lua_State *L, jn_Diff *d, int cols) {
  jn_Model *m = d->m;
  int i, n = (int)lua_rawlen(L, cols);
  for (i = 1; i <= n; i++) {
    const char *name = row_str(L, cols, i, "name");
    int k;
    for (k = 0; k < m->nfields; k++)
      if (jn_stricmp(m->f[k].col, name) == 0) break;
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
}

/* The columns: each field present, with its type affinity, NOT NULL and
** key as declared; columns the model lacks.  Returns an SQLite code. */
static int diff_columns(lua_State *L, jn_Diff *d, int tblidx) {
  jn_Model *m = d->m;
  int cols, i, rc;
  rc = run_own_sql(L, d->c, d->c->dialect->cat_columns, tblidx, d->m->schema, 1);
  cols = lua_gettop(L);
  if (rc != SQLITE_OK) return rc;
  for (i = 0; i < m->nfields; i++) {
    int r = find_row(L, cols, "name", m->f[i].col);
    if (r != 0) compare_column(L, d, &m->f[i], cols, r);
    else if ((rc = missing_column(L, d, i)) != SQLITE_OK) return rc;
  }
  extra_columns(L, d, cols);
  lua_pop(L, 1);
  return SQLITE_OK;
}

/* The foreign keys: each declared reference present with its target and
** actions, none the model does not declare. */
static int diff_fkeys(lua_State *L, jn_Diff *d, int tblidx) {
  jn_Model *m = d->m, *t;
  int fks, i, n, rc;
  rc = run_own_sql(L, d->c, d->c->dialect->cat_fkeys, tblidx, m->schema, 1);
  fks = lua_gettop(L);
  if (rc != SQLITE_OK) return rc;
  for (i = 0; i < m->nfields; i++) {
    int r = find_row(L, fks, "fr", m->f[i].col);
    const char *tt;
    if (!push_ref(L, d->c, m, i, d->declsidx, d->orderidx, &t)) {
      if (r != 0) {
        lua_pushfstring(L, "%s: column %s.%s references %s in the table, nothing in the model", m->name,
                        m->table, m->f[i].col, row_str(L, fks, r, "tbl"));
        diff_add(L, d->probs);
      }
      continue;
    }
    push_action(L, d->declsidx, i, "onDelete");
    push_action(L, d->declsidx, i, "onUpdate");
    if (r == 0) {
      lua_pushfstring(L, "%s: column %s.%s references nothing in the table, %s (%s) in the model", m->name,
                      m->table, m->f[i].col, lua_tostring(L, -4), lua_tostring(L, -3));
      diff_add(L, d->probs);
    } else {
      tt = row_str(L, fks, r, "tt");
      if (jn_stricmp(row_str(L, fks, r, "tbl"), lua_tostring(L, -4)) != 0 ||
          (tt != NULL && jn_stricmp(tt, lua_tostring(L, -3)) != 0)) {
        lua_pushfstring(L, "%s: column %s.%s references %s (%s) in the table, %s (%s) in the model",
                        m->name, m->table, m->f[i].col, row_str(L, fks, r, "tbl"), tt ? tt : "its key",
                        lua_tostring(L, -4), lua_tostring(L, -3));
        diff_add(L, d->probs);
      }
      if (jn_stricmp(row_str(L, fks, r, "od"), lua_tostring(L, -2)) != 0) {
        lua_pushfstring(L, "%s: foreign key %s.%s is ON DELETE %s in the table, ON DELETE %s in the model",
                        m->name, m->table, m->f[i].col, row_str(L, fks, r, "od"), lua_tostring(L, -2));
        diff_add(L, d->probs);
      }
      if (jn_stricmp(row_str(L, fks, r, "ou"), lua_tostring(L, -1)) != 0) {
        lua_pushfstring(L, "%s: foreign key %s.%s is ON UPDATE %s in the table, ON UPDATE %s in the model",
                        m->name, m->table, m->f[i].col, row_str(L, fks, r, "ou"), lua_tostring(L, -1));
        diff_add(L, d->probs);
      }
    }
    lua_pop(L, 4);
  }
  n = (int)lua_rawlen(L, fks);
  for (i = 1; i <= n; i++) {   /* a foreign key on a column that is no field */
    if (jn_schema_column(m, row_str(L, fks, i, "fr")) >= 0) continue;
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
  rc = run_own_sql(L, d->c, d->c->dialect->cat_index_cols, nameidx, d->m->schema, 1);
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
      if (jn_stricmp(d->m->f[k].col, col) == 0) break;
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

/* The tables diff_indexes compares, at these stack indices. */
typedef struct jn_Ixs {
  int ixs;                  /* the table's indexes (pragma_index_list rows) */
  int found;                /* "<key>|<unique>" of every full index -> true */
  int want;                 /* key of each UNIQUE the model declares -> field that names it */
  int have;                 /* key of each UNIQUE constraint of the table -> true */
  int led;                  /* field index + 1 -> true when an index starts with it */
} jn_Ixs;

/* Fill want: the key (a mark per field) of each single UNIQUE field and of
** each composite group, under its first field. */
static void wanted_uniques(lua_State *L, jn_Diff *d, const jn_Ixs *x) {
  jn_Model *m = d->m;
  int i, j;
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
    lua_rawset(L, x->want);
    lua_pop(L, 1);
  }
}

/* Read the table's indexes into found, have and led; a UNIQUE constraint
** the model does not declare is a problem. */
static int existing_indexes(lua_State *L, jn_Diff *d, const jn_Ixs *x) {
  jn_Model *m = d->m;
  int i, rc, n = (int)lua_rawlen(L, x->ixs);
  for (i = 1; i <= n; i++) {
    int lead;
    const char *origin = row_str(L, x->ixs, i, "origin");
    lua_rawgeti(L, x->ixs, i);
    lua_getfield(L, -1, "name");
    rc = push_index_key(L, d, lua_gettop(L), &lead);
    if (rc != SQLITE_OK) return rc;
    if (lead >= 0 && row_int(L, x->ixs, i, "partial") == 0) {
      lua_pushboolean(L, 1);
      lua_rawseti(L, x->led, lead + 1);
    }
    if (!lua_isnil(L, -1) && row_int(L, x->ixs, i, "partial") == 0) {
      lua_pushfstring(L, "%s|%d", lua_tostring(L, -1), (int)row_int(L, x->ixs, i, "u"));
      lua_pushboolean(L, 1);
      lua_rawset(L, x->found);
    }
    /* a UNIQUE over a column that is no field: diff_columns has said so */
    if (origin != NULL && strcmp(origin, "u") == 0 && !lua_isnil(L, -1)) {
      lua_pushvalue(L, -1);
      lua_rawget(L, x->want);
      if (lua_isnil(L, -1)) {
        lua_pushfstring(L, "%s: table %s has a UNIQUE constraint (%s) that the model does not declare",
                        m->name, m->table, row_str(L, x->ixs, i, "name"));
        diff_add(L, d->probs);
      }
      lua_pop(L, 1);
      lua_pushvalue(L, -1);
      lua_pushboolean(L, 1);
      lua_rawset(L, x->have);
    }
    lua_pop(L, 3);
  }
  return SQLITE_OK;
}

/* Each UNIQUE the model declares and the table lacks is a problem. */
static void missing_uniques(lua_State *L, jn_Diff *d, const jn_Ixs *x) {
  jn_Model *m = d->m;
  lua_pushnil(L);
  while (lua_next(L, x->want) != 0) {
    int f = (int)lua_tointeger(L, -1);
    lua_pop(L, 1);
    lua_pushvalue(L, -1);
    lua_rawget(L, x->have);
    if (lua_isnil(L, -1)) {
      jn_Buf b;
      jn_buf_init(L, &b);
      if (m->f[f].flags & JN_F_UNIQUE) jn_buf_addident(L, &b, NULL, m->f[f].col);
      else group_cols(L, &b, m, d->declsidx, f, 0);
      lua_pushfstring(L, "%s: table %s lacks UNIQUE (%s)", m->name, m->table, jn_buf_cstr(L, &b));
      diff_add(L, d->probs);
      lua_pop(L, 1);
    }
    lua_pop(L, 1);
  }
}

/* Each index of spec.indexes the table lacks: created with alter, else a
** problem (UNIQUE) or a warning. */
static int missing_declared(lua_State *L, jn_Diff *d, const jn_Ixs *x) {
  jn_Model *m = d->m;
  int i, j, rc;
  jn_schema_uv(L, d->modelidx, "indexes");   /* the declared indexes */
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
    lua_rawget(L, x->found);
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
  return SQLITE_OK;
}

/* Each foreign key no index starts with: indexed with alter, else a warning. */
static int missing_fk_indexes(lua_State *L, jn_Diff *d, const jn_Ixs *x) {
  jn_Model *m = d->m;
  int i, j, rc;
  for (i = 0; i < m->nfields; i++) {
    if (!wants_index(L, m, d->modelidx, d->declsidx, i)) continue;
    lua_rawgeti(L, x->led, i + 1);
    j = lua_toboolean(L, -1);
    lua_pop(L, 1);
    if (j) continue;
    if (d->alter) {
      if ((rc = create_index(L, d->c, m, d->declsidx, i)) != SQLITE_OK) return rc;
    } else {
      lua_pushfstring(L, "%s: table %s lacks the index on its foreign key %s (db:sync{ alter = true } "
                      "creates it)", m->name, m->table, m->f[i].col);
      diff_add(L, d->warns);
    }
  }
  return SQLITE_OK;
}

/* The unique constraints (a single UNIQUE, a composite group), the
** declared indexes, and the indexes sync makes on foreign keys (only warned
** about, or made with alter). */
static int diff_indexes(lua_State *L, jn_Diff *d, int tblidx) {
  jn_Ixs x;
  int rc;
  rc = run_own_sql(L, d->c, d->c->dialect->cat_indexes, tblidx, d->m->schema, 1);
  x.ixs = lua_gettop(L);
  if (rc != SQLITE_OK) return rc;
  lua_newtable(L);
  x.found = lua_gettop(L);
  lua_newtable(L);
  x.want = lua_gettop(L);
  lua_newtable(L);
  x.have = lua_gettop(L);
  lua_newtable(L);
  x.led = lua_gettop(L);
  wanted_uniques(L, d, &x);
  if ((rc = existing_indexes(L, d, &x)) != SQLITE_OK) return rc;
  missing_uniques(L, d, &x);
  if ((rc = missing_declared(L, d, &x)) != SQLITE_OK) return rc;
  if ((rc = missing_fk_indexes(L, d, &x)) != SQLITE_OK) return rc;
  lua_pop(L, 5);
  return SQLITE_OK;
}

/* }====== */

/* Does the model at idx reference a model still to be created (in pending)? */
static int waits_for(lua_State *L, int idx, int pendingidx, int orderidx) {
  jn_Model *m = (jn_Model *)lua_touserdata(L, idx);
  int i, waits = 0;
  jn_schema_uv(L, idx, JN_UV_FIELDS);
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

/* Check that every reference of the models in seq works, before anything
** is written (push_ref raises when one does not). */
static void check_refs(lua_State *L, jn_Conn *c, int seqidx, int orderidx) {
  int i, k, declsidx, n = (int)lua_rawlen(L, seqidx);
  for (i = 1; i <= n; i++) {
    jn_Model *m, *t;
    lua_rawgeti(L, seqidx, i);
    m = (jn_Model *)lua_touserdata(L, -1);
    jn_schema_uv(L, lua_gettop(L), JN_UV_FIELDS);
    declsidx = lua_gettop(L);
    for (k = 0; k < m->nfields; k++)
      if (push_ref(L, c, m, k, declsidx, orderidx, &t)) lua_pop(L, 2);
    lua_pop(L, 2);
  }
}

/* Where schemas are namespaces (PostgreSQL): create the schema of each
** model in seq that names one, if it does not exist, before any table. */
static int create_schemas(lua_State *L, jn_Conn *c, int seqidx) {
  int i, rc = SQLITE_OK, n = (int)lua_rawlen(L, seqidx);
  for (i = 1; c->dialect->schemas && rc == SQLITE_OK && i <= n; i++) {
    jn_Model *m;
    jn_Buf b;
    lua_rawgeti(L, seqidx, i);
    m = (jn_Model *)lua_touserdata(L, -1);
    lua_pop(L, 1);
    if (m->schema == NULL) continue;
    jn_buf_init(L, &b);
    jn_buf_adds(L, &b, "CREATE SCHEMA IF NOT EXISTS ");
    jn_buf_addident(L, &b, NULL, m->schema);
    rc = run_own_sql(L, c, jn_buf_cstr(L, &b), 0, NULL, 0);
    lua_pop(L, 1);
  }
  return rc;
}

/* Drop the tables of the models in seq, the last created first. */
static int drop_tables(lua_State *L, jn_Conn *c, int seqidx) {
  int i, rc;
  for (i = (int)lua_rawlen(L, seqidx); i >= 1; i--) {
    jn_Buf b;
    jn_Model *m;
    lua_rawgeti(L, seqidx, i);
    m = (jn_Model *)lua_touserdata(L, -1);
    jn_buf_init(L, &b);
    jn_buf_adds(L, &b, "DROP TABLE IF EXISTS ");
    jn_buf_adds(L, &b, m->qtable);
    rc = run_own_sql(L, c, jn_buf_cstr(L, &b), 0, NULL, 0);
    if (rc != SQLITE_OK) return rc;
    lua_pop(L, 2);
  }
  return SQLITE_OK;
}

/* Create the table of the model at midx, or compare the one that exists
** with it (what differs goes into d's arrays). */
static int sync_model(lua_State *L, jn_Diff *d, int midx) {
  int tblidx, rc;
  d->m = (jn_Model *)lua_touserdata(L, midx);
  lua_pushstring(L, d->m->dbtable);
  tblidx = lua_gettop(L);
  if (!table_exists(L, d->c, tblidx, d->m->schema, &rc) && rc == SQLITE_OK) {
    rc = create_table(L, d->c, midx, d->orderidx);
  } else if (rc == SQLITE_OK && !d->c->dialect->compares_tables) {
    lua_pushfstring(L, "%s: table %s exists and was not compared with the model (db:sync "
                    "compares tables on SQLite only)", d->m->name, d->m->table);
    diff_add(L, d->warns);
  } else if (rc == SQLITE_OK) {
    jn_schema_uv(L, midx, JN_UV_FIELDS);
    d->declsidx = lua_gettop(L);
    d->modelidx = midx;
    rc = diff_columns(L, d, tblidx);
    if (rc == SQLITE_OK) rc = diff_fkeys(L, d, tblidx);
    if (rc == SQLITE_OK) rc = diff_indexes(L, d, tblidx);
    lua_pop(L, 1);
  }
  if (rc == SQLITE_OK) lua_pop(L, 1);
  return rc;
}

/* What sync returns: true (and the details when there are warnings), or
** with problems nil, every problem in one message, JN_SCHEMA, details. */
static int sync_result(lua_State *L, const jn_Diff *d) {
  int i, np = (int)lua_rawlen(L, d->probs);
  lua_createtable(L, 0, 2);
  lua_pushvalue(L, d->probs);
  lua_setfield(L, -2, "problems");
  lua_pushvalue(L, d->warns);
  lua_setfield(L, -2, "warnings");
  if (np > 0) {
    luaL_Buffer lb;
    luaL_buffinit(L, &lb);
    for (i = 1; i <= np; i++) {
      if (i > 1) luaL_addstring(&lb, "; ");
      lua_rawgeti(L, d->probs, i);
      luaL_addvalue(&lb);
    }
    luaL_addstring(&lb, d->alter ? " (run a migration; alter adds columns and indexes, and changes "
                   "nothing else)" : " (run a migration or db:sync{ alter = true })");
    luaL_pushresult(&lb);
    lua_insert(L, -2);                      /* the message, under the details */
    return jn_error_faildetails(L, JN_SCHEMA);
  }
  lua_pushboolean(L, 1);
  if (lua_rawlen(L, d->warns) == 0) return 1;
  lua_insert(L, -2);
  return 2;
}

/*
** Make the other connections' db:sync wait until this transaction ends, on
** an engine that lets them write the schema at once (the dialect's
** lock_schema): the second then finds the tables the first made, where both
** creating one table would fail the second.  Returns a result code.
*/
static int lock_schema(lua_State *L, jn_Conn *c) {
  const char *sql = c->dialect->lock_schema;
  jn_St *st;
  int rc;
  if (sql == NULL) return SQLITE_OK;
  st = jn_stmt_cached(L, c, sql, strlen(sql), &rc);
  return st != NULL ? jn_conn_run(L, c, st) : rc;
}

/*
** Body of db:sync under jn_conn_atomic: [w, db, order, seq, force, alter].
** Drops (force), then per model in seq: creates the table, or compares
** the existing one with the model.  Any difference but in indexes fails
** the whole sync, which then writes nothing.
*/
static int sync_body(lua_State *L) {
  jn_Write *w = jn_conn_bodywrite(L);
  jn_Conn *c = w->c;
  int orderidx = 3, seqidx = 4, force = lua_toboolean(L, 5), n, i, rc;
  jn_Diff d;
  n = (int)lua_rawlen(L, seqidx);
  c->schema_gen++;   /* it changes the schema (jn_Whole, the cookie jn_conn_guardone keeps) */
  if ((rc = jn_conn_writeguard(L, w)) != SQLITE_OK || (rc = lock_schema(L, c)) != SQLITE_OK)
    return jn_error_result(L, c, rc, NULL);
  check_refs(L, c, seqidx, orderidx);
  if (force && (rc = drop_tables(L, c, seqidx)) != SQLITE_OK) return jn_error_result(L, c, rc, NULL);
  if ((rc = create_schemas(L, c, seqidx)) != SQLITE_OK) return jn_error_result(L, c, rc, NULL);
  d.c = c;
  d.orderidx = orderidx;
  d.alter = lua_toboolean(L, 6);
  lua_newtable(L);
  d.probs = lua_gettop(L);
  lua_newtable(L);
  d.warns = lua_gettop(L);
  for (i = 1; i <= n; i++) {
    lua_rawgeti(L, seqidx, i);
    if ((rc = sync_model(L, &d, lua_gettop(L))) != SQLITE_OK) return jn_error_result(L, c, rc, NULL);
    lua_pop(L, 1);
  }
  return sync_result(L, &d);
}

/* Move each model of order (in definition order) that is pending and
** references no other pending model (all: each pending model) from pending
** to seq, after its first done entries.  Returns how many it moved. */
static int take_ready(lua_State *L, int orderidx, int pendingidx, int seqidx, int done, int all) {
  int i, n = (int)lua_rawlen(L, orderidx), taken = 0;
  for (i = 1; i <= n; i++) {
    lua_rawgeti(L, orderidx, i);
    lua_pushvalue(L, -1);
    lua_rawget(L, pendingidx);
    if (lua_toboolean(L, -1) && (all || !waits_for(L, lua_gettop(L) - 1, pendingidx, orderidx))) {
      lua_pop(L, 1);
      lua_pushvalue(L, -1);
      lua_rawseti(L, seqidx, done + ++taken);
      lua_pushnil(L);
      lua_rawset(L, pendingidx);
    } else {
      lua_pop(L, 2);
    }
  }
  return taken;
}

/* Push the creation order of the models in order (at orderidx): a model
** after the models it references. */
static void sync_order(lua_State *L, int orderidx) {
  int n = (int)lua_rawlen(L, orderidx), i, done, pendingidx, seqidx, taken;
  lua_newtable(L);
  pendingidx = lua_gettop(L);
  for (i = 1; i <= n; i++) {
    lua_rawgeti(L, orderidx, i);
    lua_pushboolean(L, 1);
    lua_rawset(L, pendingidx);
  }
  lua_newtable(L);
  seqidx = lua_gettop(L);
  for (done = 0; done < n; done += taken) {
    taken = take_ready(L, orderidx, pendingidx, seqidx, done, 0);
    if (taken == 0) taken = take_ready(L, orderidx, pendingidx, seqidx, done, 1);   /* a cycle */
  }
  lua_remove(L, pendingidx);
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
  int force = 0, alter = 0, orderidx;
  jn_conn_checkopts(L, 2, sync_opts, "db:sync");
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
  sync_order(L, orderidx);                      /* [db, uv, order, seq] */
  lua_remove(L, 2);
  lua_pushboolean(L, force);
  lua_pushboolean(L, alter);
  /* [db, order, seq, force, alter], run all or nothing */
  return jn_conn_atomic(L, c, sync_body, 1, 0);
}

/* }====== */

/* Leave junction.SCHEMA in the module table at -1 and db:sync among the
** connection's methods. */
void jn_sync_open(lua_State *L) {
  lua_pushinteger(L, JN_SCHEMA);
  lua_setfield(L, -2, "SCHEMA");
  lua_getfield(L, -1, "Connection");
  lua_pushcfunction(L, schema_sync);
  lua_setfield(L, -2, "sync");
  lua_pop(L, 1);
}
