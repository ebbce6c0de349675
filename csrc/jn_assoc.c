/*
** jn_assoc.c: the association core.  Declaring an association (its keys
** checked, a belongsToMany's fixed SQL generated), reading keys, the SQL of
** each method, and the bodies of the writes that run under jn_conn_atomic.  The
** Lua-facing methods that call them are in jn_assocm.c; eager loading
** (include, required) is in jn_include.c.
**
** Keys in lists (setGenres{1, genre, "3"}) become jn_Key values in a key
** array on the calling method's own stack, read one way for every kind of
** association (jn_hasmany.c reaches it through jn_assoc_keylist, the Lua
** methods through Association:_keys): set and add diff them against the
** keys the junction holds, and write only the difference.
*/
#include "jn.h"
#include <stdio.h>
#include <stdlib.h>


static const char *const kinds[] = { "belongsTo", "hasOne", "hasMany", "belongsToMany", NULL };

/* {====== Checking */

static jn_Assoc *check_assoc(lua_State *L, int idx) {
  return (jn_Assoc *)luaL_checkudata(L, idx, JN_ASSOC_MT);
}

/* Every method is a closure over (association, "Post:setGenres", the instance
** metatable, its body), and its body over the first two.  The method's
** context for messages is the second. */
const char *jn_assoc_method(lua_State *L) {
  return lua_tostring(L, lua_upvalueindex(2));
}

/* }====== */

/* {====== Keys */

/*
** A key list is a userdata array of jn_Key on the stack of the call that
** reads it, never memory the connection shares: a call that user code
** (log, defaultValue) makes in the middle cannot move or overwrite it.  Its
** uservalue, the anchor table, holds the strings of its text and blob keys.
*/

/* Push a key array with room for cap keys; its anchor table is made by the
** first key that needs it (a list of integer keys has none). [-0, +1, m] */
static jn_Key *new_keys(lua_State *L, int cap) {
  return (jn_Key *)jn_newuserdata_nouv(L, (size_t)(cap > 0 ? cap : 1) * sizeof(jn_Key));
}

/*
** Replace the key array at arr (n keys used) by a copy with room for cap,
** sharing its anchor table (a room on the C stack has none: the copy gets
** its own).  Returns the new array. [-0, +0, m]
*/
static jn_Key *grow_keys(lua_State *L, int arr, int n, int cap) {
  jn_Key *old = (jn_Key *)lua_touserdata(L, arr), *keys;
  if (lua_type(L, arr) == LUA_TLIGHTUSERDATA) {
    keys = new_keys(L, cap);
  } else {
    keys = (jn_Key *)lua_newuserdata(L, (size_t)cap * sizeof(jn_Key));
    lua_getuservalue(L, arr);
    lua_setuservalue(L, -2);
  }
  memcpy(keys, old, (size_t)n * sizeof(jn_Key));
  lua_replace(L, arr);
  return keys;
}

/*
** Anchor the string on top of the stack in the key array at arr (pops it)
** and make k a text or blob key of it.  A room on the C stack (a light
** userdata at arr, JN_KEYS_ROOM keys) has no anchor table: its keys move
** into a new key array first, which replaces it at arr.  Returns k, where
** it now is. [-1, +0, m]
*/
static jn_Key *anchor_key(lua_State *L, int arr, jn_Key *k, int type) {
  if (lua_type(L, arr) == LUA_TLIGHTUSERDATA) {
    jn_Key *room = (jn_Key *)lua_touserdata(L, arr);
    jn_Key *keys = new_keys(L, JN_KEYS_ROOM);
    memcpy(keys, room, JN_KEYS_ROOM * sizeof *keys);
    lua_replace(L, arr);
    k = keys + (k - room);
  }
  k->type = type;
  k->v.s = lua_tolstring(L, -1, &k->n);
  if (lua_getuservalue(L, arr) != LUA_TTABLE) {   /* the array's first anchored key */
    lua_pop(L, 1);
    lua_newtable(L);
    lua_pushvalue(L, -1);
    lua_setuservalue(L, arr);
  }
  k->anchor = (int)lua_rawlen(L, -1) + 1;
  lua_insert(L, -2);
  lua_rawseti(L, -2, k->anchor);
  lua_pop(L, 1);
  return k;
}

/* The field of the target that a key names: its primary key for hasOne and
** hasMany (whose target_key is the target's foreign key), else targetKey. */
static int key_field(jn_Assoc *a) {
  return a->kind == JN_A_HAS_ONE || a->kind == JN_A_HAS_MANY ? a->target->pk : a->target_key;
}

/* Is a field of this type compared as text (a number given is its text)? */
static int text_type(int type) {
  return type == JN_T_TEXT || type == JN_T_STRING;
}

/*
** For a key field that SQLite compares as a number (INTEGER, REAL): replace
** a string at idx that spells a finite decimal number ("1.0", " 1", "1e0")
** by that number, as the column's numeric affinity reads it, so that it is
** the same key as the number.  Digit strings of an INTEGER key stay (read
** exactly as 64-bit integers); hexadecimal, "inf" and "nan" are no numbers
** to SQLite and stay text.  [-0, +0, m]
*/
static void numeric_text(lua_State *L, int idx, int ftype) {
  size_t n, i;
  sqlite3_int64 v;
  const char *s;
  double d;
  if (ftype != JN_T_INTEGER && ftype != JN_T_REAL) return;
  if (ftype == JN_T_INTEGER && jn_scalar_toi64(L, idx, &v)) return;
  s = lua_tolstring(L, idx, &n);
  for (i = 0; i < n; i++)
    if (s[i] == '\0' || strchr("0123456789+-.eE \t\n\r\f\v", s[i]) == NULL) return;
  if (!lua_isnumber(L, idx)) return;
  d = (double)lua_tonumber(L, idx);
  if (d != d || d - d != 0) return;
  lua_pushnumber(L, (lua_Number)lua_tonumber(L, idx));
  lua_replace(L, idx);
}

/*
** Can the key k (read from the value at idx) be a value of a key field of
** type ftype?  Text that spells no integer, or 1.5, is no INTEGER key; "x"
** no REAL, UUID or DATEONLY one.  Such a key names no row: the methods
** answer for it without sending it (a server that types its columns
** refuses it, where SQLite's comparison only finds nothing), so it is "not
** found" to add and set, not linked to has, nothing to remove, on every
** engine.  [-0, +0, m]
*/
static int key_fits(lua_State *L, int ftype, const jn_Key *k, int idx) {
  int ok;
  if (text_type(ftype) || ftype == JN_T_BLOB) return 1;
  if (ftype == JN_T_INTEGER || ftype == JN_T_BIGINT) return k->type == SQLITE_INTEGER;
  if (ftype == JN_T_REAL) return k->type == SQLITE_INTEGER || k->type == SQLITE_FLOAT;
  ok = jn_value_conv(L, idx, ftype, 0);
  lua_pop(L, 1);
  return ok;
}

/*
** The target instance inst at idx (element elem), read as its key field:
** an integer key, the common one, fills k at once and
** returns 1; any other value replaces the instance at idx, for to_key to
** read, and 0.  Raises for another model's instance or an unsaved one.
** [-0, +0, e]
*/
static int inst_key(lua_State *L, jn_Assoc *a, jn_Inst *inst, int idx, int elem, jn_Key *k,
                    const char *ctx) {
  int kf = key_field(a);
  sqlite3_int64 v;
  if (inst->model != a->target)
    luaL_error(L, "%s: bad argument (element %d is a %s instance, expected %s or its key)",
               ctx, elem, inst->model->name, a->target->name);
  jn_inst_get(L, idx, kf);
  if (lua_isnil(L, -1))
    luaL_error(L, "%s: bad argument (element %d: the %s is not saved yet)", ctx, elem,
               a->target->name);
  if (a->target->f[kf].type == JN_T_INTEGER && lua_type(L, -1) == LUA_TNUMBER
      && jn_scalar_toi64(L, -1, &v)) {   /* it fits, nothing to anchor */
    memset(k, 0, sizeof *k);
    k->type = SQLITE_INTEGER;
    k->v.i = v;
    k->pos = elem;
    k->carries = inst->carries;
    lua_pop(L, 1);
    return 1;
  }
  lua_replace(L, idx);   /* the key value now sits where the instance was */
  return 0;
}

/*
** The key at idx (a target instance or a key value) as a jn_Key, read as
** the target key field's type: a string of digits for an INTEGER key is
** that integer, an integer for a TEXT key is its text, a string for a BLOB
** key is a blob.  Text is anchored in the key array at arr.  Raises for
** anything else (a NaN or an infinity too), naming ctx and the element.
** [-0, +0, e]
*/
static void to_key(lua_State *L, jn_Assoc *a, int idx, int elem, jn_Key *k, int arr,
                   const char *ctx) {
  int kf = key_field(a), ftype = a->target->f[kf].type, t, carries = 0;
  jn_Inst *inst;
  if (idx < 0) idx = lua_gettop(L) + idx + 1;
  inst = jn_inst_of(L, idx, a->target->conn);
  if (inst != NULL) {
    carries = inst->carries;
    if (inst_key(L, a, inst, idx, elem, k, ctx)) return;
  }
  if (lua_type(L, idx) == LUA_TSTRING) numeric_text(L, idx, ftype);
  t = lua_type(L, idx);
  memset(k, 0, sizeof *k);
  k->pos = elem;
  k->carries = carries;
  if (t == LUA_TNUMBER) {
    double d;
    if (jn_scalar_toi64(L, idx, &k->v.i)) {
      k->type = SQLITE_INTEGER;
    } else if (d = (double)lua_tonumber(L, idx), d != d || d - d != 0) {
      luaL_error(L, "%s: bad argument (element %d is %s, not a key)", ctx, elem,
                 d != d ? "NaN" : d > 0 ? "infinite" : "-infinite");
    } else if (d >= -9.2e18 && d <= 9.2e18 && d == (double)(sqlite3_int64)d) {
      k->type = SQLITE_INTEGER;
      k->v.i = (sqlite3_int64)d;
    } else {
      k->type = SQLITE_FLOAT;
      k->v.d = d;
    }
    if (k->type == SQLITE_INTEGER && text_type(ftype)) {
      char tmp[32];
      snprintf(tmp, sizeof tmp, "%lld", (long long)k->v.i);
      lua_pushstring(L, tmp);
      k = anchor_key(L, arr, k, SQLITE_TEXT);
    }
  } else if (t == LUA_TSTRING) {
    if (ftype == JN_T_INTEGER && jn_scalar_toi64(L, idx, &k->v.i)) {
      k->type = SQLITE_INTEGER;
    } else {
      lua_pushvalue(L, idx);
      k = anchor_key(L, arr, k, ftype == JN_T_BLOB ? SQLITE_BLOB : SQLITE_TEXT);
    }
  } else {
    luaL_error(L, "%s: bad argument (element %d is a %s, expected %s or its key)", ctx, elem,
               jn_error_typename(L, idx), a->target->name);
  }
  k->none = !key_fits(L, ftype, k, idx);
}

static int key_cmp(const jn_Key *x, const jn_Key *y) {
  if (x->type != y->type) {
    if (x->type >= SQLITE_TEXT || y->type >= SQLITE_TEXT) return x->type < y->type ? -1 : 1;
    {   /* integer against float: compare as numbers */
      double dx = x->type == SQLITE_INTEGER ? (double)x->v.i : x->v.d;
      double dy = y->type == SQLITE_INTEGER ? (double)y->v.i : y->v.d;
      return dx < dy ? -1 : dx > dy ? 1 : 0;
    }
  }
  switch (x->type) {
    case SQLITE_INTEGER: return x->v.i < y->v.i ? -1 : x->v.i > y->v.i ? 1 : 0;
    case SQLITE_FLOAT: return x->v.d < y->v.d ? -1 : x->v.d > y->v.d ? 1 : 0;
    default: {
      size_t n = x->n < y->n ? x->n : y->n;
      int r = n ? memcmp(x->v.s, y->v.s, n) : 0;
      if (r != 0) return r;
      return x->n < y->n ? -1 : x->n > y->n ? 1 : 0;
    }
  }
}

static int key_qcmp(const void *x, const void *y) {
  return key_cmp((const jn_Key *)x, (const jn_Key *)y);
}

/* Order by key, then by place in the list: the first of equal keys leads. */
static int key_poscmp(const void *x, const void *y) {
  int r = key_cmp((const jn_Key *)x, (const jn_Key *)y);
  return r != 0 ? r : ((const jn_Key *)x)->pos - ((const jn_Key *)y)->pos;
}

/* Order by place in the list only. */
static int pos_cmp(const void *x, const void *y) {
  return ((const jn_Key *)x)->pos - ((const jn_Key *)y)->pos;
}

/* Is k among keys[0..n)?  Binary search when sorted, else a scan: the lists
** are a handful long in the common case, and sorted when they are not. */
static int key_in(const jn_Key *keys, int n, const jn_Key *k, int sorted) {
  int i;
  if (sorted) return bsearch(k, keys, (size_t)n, sizeof *keys, key_qcmp) != NULL;
  if (k->type == SQLITE_INTEGER) {   /* the common key: compared here, not by key_cmp */
    for (i = 0; i < n; i++)
      if (keys[i].type == SQLITE_INTEGER ? keys[i].v.i == k->v.i : key_cmp(&keys[i], k) == 0) return 1;
    return 0;
  }
  for (i = 0; i < n; i++)
    if (key_cmp(&keys[i], k) == 0) return 1;
  return 0;
}

/* Lists longer than this are sorted before they are diffed. */
#define JN_KEYS_SCAN 24

/*
** Read the list at idx (n: its length) into keys[0..n), element i at
** keys[i - 1], in one traversal that is also the list check (read raw, as
** jn_value_checklist): every key a place 1..n, n of them (no holes).
** Raises naming ctx.  [-0, +0, e]
*/
static void read_list(lua_State *L, jn_Assoc *a, int idx, int n, jn_Key *keys, int arr,
                      const char *ctx) {
  int count = 0, i;
  lua_pushnil(L);
  while (lua_next(L, idx) != 0) {
    if ((i = jn_value_listpos(L, -2, n)) == 0) {
      lua_pop(L, 1);
      jn_value_listfail(L, 0, ctx, "argument #1", "a list");
    }
    to_key(L, a, -1, i, &keys[i - 1], arr, ctx);
    keys = (jn_Key *)lua_touserdata(L, arr);   /* a text key may have moved them */
    lua_pop(L, 1);
    count++;
  }
  if (count != n) jn_value_listfail(L, 1, ctx, "argument #1", "a list");
}

/*
** Read the argument at idx as keys of a's target: one instance or key
** (single), else a list of them (a sequence, read raw); a table given for
** one is a list, an instance given for a list is one.  Pushes the key
** array and returns the number of distinct keys: in the order given when
** the list is short, sorted when it is long.  Raises on misuse, naming ctx.
** room (or NULL): JN_KEYS_ROOM keys on the C stack of the caller, which
** outlives every use of the array: a list that fits and has no text to
** anchor is read there, and the array pushed is a light userdata of it,
** read as the other (lua_touserdata); nothing is allocated.
** [-0, +1, e]
*/
static jn_Key *push_keys(lua_State *L, int n, jn_Key *room) {
  if (room == NULL || n > JN_KEYS_ROOM) return new_keys(L, n);
  lua_pushlightuserdata(L, room);
  return room;
}

int jn_assoc_readkeys(lua_State *L, jn_Assoc *a, int idx, int single, const char *ctx,
                      jn_Key *room) {
  jn_Key *keys;
  int i, n, k = 0, arr;
  /* Sequelize's leniency: addGenre{1, 2} is a list, addGenres(genre) one instance */
  if (single && lua_istable(L, idx)) single = 0;
  else if (!single && jn_inst_test(L, idx) != NULL) single = 1;
  if (single) {
    if (lua_isnil(L, idx))
      luaL_error(L, "%s: bad argument #1 (%s instance or key expected, got nil)", ctx,
                 a->target->name);
    keys = push_keys(L, 1, room);
    arr = lua_gettop(L);
    lua_pushvalue(L, idx);
    to_key(L, a, -1, 1, &keys[0], arr, ctx);
    lua_pop(L, 1);
    return 1;
  }
  if (!lua_istable(L, idx) || jn_inst_test(L, idx) != NULL)
    luaL_error(L, "%s: bad argument #1 (array of %s instances or keys expected, got %s)", ctx,
               a->target->name, jn_error_typename(L, idx));
  n = (int)lua_rawlen(L, idx);
  keys = push_keys(L, n, room);
  arr = lua_gettop(L);
  read_list(L, a, idx, n, keys, arr, ctx);
  keys = (jn_Key *)lua_touserdata(L, arr);
  if (n <= JN_KEYS_SCAN) {  /* drop duplicates in place: the first one stays */
    for (i = 0; i < n; i++)
      if (!key_in(keys, k, &keys[i], 0)) keys[k++] = keys[i];
  } else {                  /* sort, then drop duplicates (the first one stays) */
    qsort(keys, (size_t)n, sizeof *keys, key_poscmp);
    for (i = 0; i < n; i++)
      if (k == 0 || key_cmp(&keys[k - 1], &keys[i]) != 0) keys[k++] = keys[i];
  }
  return k;
}

/* Push the value of a key: what a Lua caller gets back. [-0, +1, -] */
static void push_key(lua_State *L, const jn_Key *k) {
  switch (k->type) {
    case SQLITE_INTEGER: jn_scalar_pushi64(L, k->v.i); break;
    case SQLITE_FLOAT: lua_pushnumber(L, (lua_Number)k->v.d); break;
    default: lua_pushlstring(L, k->v.s, k->n); break;
  }
}

/* Start the buffer b (pushed) with the n keys as one JSON array, the
** text a long key list is bound as. [-0, +1, m] */
static void keys_json(lua_State *L, jn_Buf *b, const jn_Key *keys, int n) {
  int i;
  jn_buf_init(L, b);
  jn_buf_adds(L, b, "[");
  for (i = 0; i < n; i++) {
    if (i) jn_buf_adds(L, b, ",");
    push_key(L, &keys[i]);
    jn_select_addjson(L, b, -1);
    lua_pop(L, 1);
  }
  jn_buf_adds(L, b, "]");
}

/* Bind a key of the key array at arr to parameter i. */
static void bind_key(lua_State *L, jn_Conn *c, jn_St *st, int i, int arr, const jn_Key *k) {
  switch (k->type) {
    case SQLITE_INTEGER: jn_stmt_bindi64(L, c, st, i, k->v.i); break;
    case SQLITE_FLOAT:
      lua_pushnumber(L, (lua_Number)k->v.d);
      jn_stmt_bindvalue(L, c, st, i, -1, JN_T_REAL);
      lua_pop(L, 1);
      break;
    case SQLITE_BLOB:   /* the anchored string itself: it outlives the step */
      lua_getuservalue(L, arr);
      lua_rawgeti(L, -1, k->anchor);
      jn_stmt_bindvalue(L, c, st, i, -1, JN_T_BLOB);
      lua_pop(L, 2);
      break;
    default: jn_stmt_bindtext(L, c, st, i, k->v.s, k->n); break;
  }
}

/*
** Bind the key of the source instance (at stack index self) to parameter i.
** The value is the instance's, and a log function (called before the step)
** may assign the field anew and collect the old string: a text key (a
** sourceKey that is no primary key may change) is bound as a copy.
*/
void jn_assoc_bindsource(lua_State *L, jn_Assoc *a, int self, jn_St *st, int i) {
  jn_Conn *c = a->source->conn;
  int type = a->source->f[a->source_key].type;
  jn_inst_get(L, self, a->source_key);
  jn_stmt_bindvalue(L, c, st, i, -1, type);
  if (lua_type(L, -1) == LUA_TSTRING && type != JN_T_BLOB && type != JN_T_INTEGER) {
    size_t n;
    const char *s = lua_tolstring(L, -1, &n);
    jn_e_bind_text(c->eng, st, i, s, n, 1);
  }
  lua_pop(L, 1);
}

/*
** Bind the source's key value at idx (read by the method's self check) to
** parameter i: a value that stays on the caller's stack until the step, so
** nothing a log function assigns can collect it.  An integer, the common
** key, goes straight to its binding.
*/
void jn_assoc_bindkey(lua_State *L, jn_Assoc *a, int idx, jn_St *st, int i) {
  jn_Conn *c = a->source->conn;
  int type = a->source->f[a->source_key].type;
  sqlite3_int64 v;
  if (type != JN_T_DATE && lua_type(L, idx) == LUA_TNUMBER && jn_scalar_toi64(L, idx, &v))
    jn_stmt_bindi64(L, c, st, i, v);
  else
    jn_stmt_bindvalue(L, c, st, i, idx, type);
}

/* }====== */

/* {====== SQL of a belongsToMany */

/* Append the association's FROM: junction j joined to target t (btm), or target t. */
void jn_assoc_from(lua_State *L, jn_Assoc *a, jn_Buf *b) {
  jn_buf_adds(L, b, " FROM ");
  if (a->kind == JN_A_BELONGS_TO_MANY) {
    jn_buf_adds(L, b, a->through->qtable);
    jn_buf_adds(L, b, " AS j JOIN ");
    jn_buf_adds(L, b, a->target->qtable);
    jn_buf_adds(L, b, " AS t ON ");
    jn_buf_addident(L, b, "t", a->target->f[a->target_key].col);
    jn_buf_adds(L, b, " = ");
    jn_buf_addident(L, b, "j", a->through->f[a->other].col);
  } else {
    jn_buf_adds(L, b, a->target->qtable);
    jn_buf_adds(L, b, " AS t");
  }
}

/* Append the column that links a row to its parent: j.fk (btm) or t.key. */
void jn_assoc_link(lua_State *L, jn_Assoc *a, jn_Buf *b) {
  if (a->kind == JN_A_BELONGS_TO_MANY) jn_buf_addident(L, b, "j", a->through->f[a->fk].col);
  else jn_buf_addident(L, b, "t", a->target->f[a->target_key].col);
}

/* The type of the link column, for reading it back. */
int jn_assoc_linktype(jn_Assoc *a) {
  return a->kind == JN_A_BELONGS_TO_MANY ? a->through->f[a->fk].type
                                         : a->target->f[a->target_key].type;
}

/*
** Which junction fields a belongsToMany read returns: opts.joinTableAttributes
** (names), else all of them when the junction has fields of its own.  Pushes
** a userdata int[] (and returns the count, 0 for none).
*/
int jn_assoc_throughcols(lua_State *L, jn_Assoc *a, int optsidx, int **cols) {
  int n = 0, i;
  jn_Model *j = a->through;
  *cols = (int *)lua_newuserdata(L, (size_t)(j->nfields + 1) * sizeof(int));
  if (a->kind != JN_A_BELONGS_TO_MANY) return 0;
  if (optsidx && lua_istable(L, optsidx)) {
    lua_pushliteral(L, "joinTableAttributes");
    lua_rawget(L, optsidx);
    if (!lua_isnil(L, -1)) {
      int t = lua_gettop(L), k = (int)lua_rawlen(L, t);
      if (!lua_istable(L, t))
        luaL_error(L, "%s: bad option 'joinTableAttributes' (array of %s fields expected)",
                   jn_assoc_method(L), j->name);
      jn_value_checklist(L, t, k, jn_assoc_method(L), "option 'joinTableAttributes'", "a list");
      for (i = 1; i <= k && n < j->nfields; i++) {
        int f;
        lua_rawgeti(L, t, i);
        f = lua_type(L, -1) == LUA_TSTRING ? jn_schema_field(L, j, -1) : -1;
        if (f < 0)
          luaL_error(L, "%s: bad joinTableAttributes '%s' (no such field in %s)", jn_assoc_method(L),
                     jn_value_name(L, -1), j->name);
        lua_pop(L, 1);
        (*cols)[n++] = f;
      }
      lua_pop(L, 1);
      return n;
    }
    lua_pop(L, 1);
  }
  if (!a->through_extra) return 0;
  for (i = 0; i < j->nfields; i++) (*cols)[n++] = i;
  return n;
}

/* Append ", j.c1, j.c2" for the junction columns chosen. */
void jn_assoc_addthrough(lua_State *L, jn_Assoc *a, jn_Buf *b, const int *cols, int n) {
  int i;
  for (i = 0; i < n; i++) {
    jn_buf_adds(L, b, ", ");
    jn_buf_addident(L, b, "j", a->through->f[cols[i]].col);
  }
}

/*
** Push the instance of the row st is on: the target instance (its columns
** from r->col0), with the junction row, when r selects junction columns,
** attached under the junction model's name.
*/
void jn_assoc_pushrow(lua_State *L, const jn_Rows *r, jn_St *st) {
  const jn_Select *s = r->s;
  jn_Assoc *a = r->a;
  jn_inst_fromrow(L, a->target, r->tmodel, r->mt, st, s->cols, s->ncols, r->col0,
                  r->nrec + (r->ntc > 0));
  if (r->ntc > 0) {
    jn_inst_fromrow(L, a->through, r->jmodel, r->mt, st, r->tcols, r->ntc, r->col0 + s->ncols, 0);
    jn_inst_setextra(L, -2, a->through->name);
  }
}

/* Push the target and junction models (from the association's uservalue). */
void jn_assoc_pushmodels(lua_State *L, int associdx, int *tmodel, int *jmodel) {
  lua_getuservalue(L, associdx);
  lua_getfield(L, -1, "target");
  lua_getfield(L, -2, "through");
  lua_remove(L, -3);
  *jmodel = lua_gettop(L);
  *tmodel = *jmodel - 1;
}

/* }====== */


/*
** The statement in slot of the running method's association (upvalue 1),
** prepared on first use from the SQL text kept under key in its uservalue.
*/
jn_St *jn_assoc_slot(lua_State *L, jn_Assoc *a, int slot, const char *key, int *rc) {
  jn_St *st;
  if (a->st[slot] != NULL) return jn_stmt_slot(L, a->source->conn, &a->st[slot], NULL, rc);
  lua_getuservalue(L, lua_upvalueindex(1));
  lua_getfield(L, -1, key);
  st = jn_stmt_slot(L, a->source->conn, &a->st[slot], lua_tostring(L, -1), rc);
  lua_pop(L, 2);
  return st;
}

/* {====== belongsToMany reads and writes */

/* Append "INSERT INTO j (fk, other[, createdAt, updatedAt])": the columns
** of a new link, timestamps when the junction model keeps them (ts). */
static void add_link_insert(lua_State *L, jn_Assoc *a, jn_Buf *b, int ts) {
  jn_Model *j = a->through;
  jn_buf_adds(L, b, "INSERT INTO ");
  jn_buf_adds(L, b, j->qtable);
  jn_buf_adds(L, b, " (");
  jn_buf_addident(L, b, NULL, j->f[a->fk].col);
  jn_buf_adds(L, b, ", ");
  jn_buf_addident(L, b, NULL, j->f[a->other].col);
  if (ts) {
    jn_buf_adds(L, b, ", ");
    jn_buf_addident(L, b, NULL, j->f[j->created].col);
    jn_buf_adds(L, b, ", ");
    jn_buf_addident(L, b, NULL, j->f[j->updated].col);
  }
}

/* The INSERT of n links (1 <= n <= JN_LINK_BATCH), kept in the association. */
static jn_St *insert_stmt(lua_State *L, jn_Assoc *a, int n, int *rc) {
  jn_Model *j = a->through;
  int ts = j->created >= 0 && j->updated >= 0, r;
  jn_Buf b;
  if (a->ins[n] != NULL) return jn_stmt_slot(L, j->conn, &a->ins[n], NULL, rc);
  jn_buf_init(L, &b);
  add_link_insert(L, a, &b, ts);
  jn_buf_adds(L, &b, ") VALUES ");
  for (r = 0; r < n; r++) {
    char tmp[64];
    if (ts)
      snprintf(tmp, sizeof tmp, "%s(?1, ?%d, ?%d, ?%d)", r ? ", " : "", 2 * r + 2, 2 * r + 3, 2 * r + 3);
    else
      snprintf(tmp, sizeof tmp, "%s(?1, ?%d)", r ? ", " : "", r + 2);
    jn_buf_adds(L, &b, tmp);
  }
  jn_stmt_slot(L, j->conn, &a->ins[n], jn_buf_cstr(L, &b), rc);
  lua_pop(L, 1);
  return a->ins[n];
}

/* Keys per statement of a list: "IN (?2, ..., ?33)", a chunk that is not
** full padded with its last key (a key twice in an IN list changes
** nothing); has uses a small statement for a short list or a last chunk. */
#define JN_KEYS_IN 32
#define JN_KEYS_IN_SMALL 4

/* Append " IN (?2, ?3, ...)" of k parameters from ?2. */
static void add_in_list(lua_State *L, jn_Buf *b, int k) {
  int r;
  /* "?2, ?, ?": SQLite numbers a bare ? one past the largest so far, and
  ** looks a numbered one up in a list, which is slow for long lists */
  jn_buf_adds(L, b, " IN (?2");
  for (r = 1; r < k; r++) jn_buf_addl(L, b, ", ?", 3);
  jn_buf_adds(L, b, ")");
}

/* Bind keys[0..m) (1 <= m <= k) to ?2..?(k+1), padded with the last. */
static void bind_chunk(lua_State *L, jn_Conn *c, jn_St *st, int arr, const jn_Key *keys,
                       int m, int k) {
  int r;
  for (r = 0; r < k; r++) bind_key(L, c, st, r + 2, arr, &keys[r < m ? r : m - 1]);
}

/* Append "FROM junction WHERE fk = <src> AND other": the source's links,
** its key the parameter src ("?1"), the condition on the target's to follow. */
static void add_mine(lua_State *L, jn_Assoc *a, jn_Buf *b, const char *src) {
  jn_Model *j = a->through;
  jn_buf_adds(L, b, "FROM ");
  jn_buf_adds(L, b, j->qtable);
  jn_buf_adds(L, b, " WHERE ");
  jn_buf_addident(L, b, NULL, j->f[a->fk].col);
  jn_buf_adds(L, b, " = ");
  jn_buf_adds(L, b, src);
  jn_buf_adds(L, b, " AND ");
  jn_buf_addident(L, b, NULL, j->f[a->other].col);
}

/* The DELETE of one link: "fk = ?1 AND other = ?2", kept in the association. */
static jn_St *delete_stmt(lua_State *L, jn_Assoc *a, int *rc) {
  jn_Model *j = a->through;
  jn_St **slot = &a->st[JN_AS_DELETE];
  jn_Buf b;
  if (*slot != NULL) return jn_stmt_slot(L, j->conn, slot, NULL, rc);
  jn_buf_init(L, &b);
  jn_buf_adds(L, &b, "DELETE ");
  add_mine(L, a, &b, "?1");
  jn_buf_adds(L, &b, " = ?2");
  jn_stmt_slot(L, j->conn, slot, jn_buf_cstr(L, &b), rc);
  lua_pop(L, 1);
  return *slot;
}

/*
** The DELETE of n links (2 <= n <= JN_DELETE_OR), kept in the association:
**   DELETE FROM j WHERE (fk = ?1 AND other = ?2) OR (fk = ?1 AND other = ?3) ...
** SQLite looks the OR of whole keys up term by term through the unique
** index, at the cost of one DELETE per key; "fk = ?1 AND other IN (...)"
** would build a temporary index for the list on every call.  With scan:
**   DELETE FROM j WHERE fk = ?1 AND (+other = ?2 OR +other = ?3 ...)
** which reads the source's links (as set has just done) and deletes the
** ones named, in one pass: cheaper than the lookups when set drops a few.
*/
static jn_St *delete_or_stmt(lua_State *L, jn_Assoc *a, int n, int scan, int *rc) {
  jn_Model *j = a->through;
  jn_St **slot = scan ? &a->dscan[n] : &a->del[n];
  jn_Buf b;
  int r;
  if (*slot != NULL) return jn_stmt_slot(L, j->conn, slot, NULL, rc);
  jn_buf_init(L, &b);
  jn_buf_adds(L, &b, "DELETE FROM ");
  jn_buf_adds(L, &b, j->qtable);
  jn_buf_adds(L, &b, " WHERE ");
  if (scan) {
    jn_buf_addident(L, &b, NULL, j->f[a->fk].col);
    jn_buf_adds(L, &b, " = ?1 AND (");
  }
  for (r = 0; r < n; r++) {
    char tmp[32];
    if (scan) {
      jn_buf_adds(L, &b, r ? " OR +" : "+");
    } else {
      jn_buf_adds(L, &b, r ? " OR (" : "(");
      jn_buf_addident(L, &b, NULL, j->f[a->fk].col);
      jn_buf_adds(L, &b, " = ?1 AND ");
    }
    jn_buf_addident(L, &b, NULL, j->f[a->other].col);
    snprintf(tmp, sizeof tmp, scan ? " = ?%d" : " = ?%d)", r + 2);
    jn_buf_adds(L, &b, tmp);
  }
  if (scan) jn_buf_adds(L, &b, ")");
  jn_stmt_slot(L, j->conn, slot, jn_buf_cstr(L, &b), rc);
  lua_pop(L, 1);
  return *slot;
}

/*
** The DELETE of a long list, from the connection's cache: "fk = ?1 AND
** other IN (SELECT ... ?2)" over the keys as one JSON array (json), else
** "IN (?2, ?, ..., ?)" of k parameters.
*/
static jn_St *delete_in_stmt(lua_State *L, jn_Assoc *a, int json, int k, int *rc) {
  jn_Model *j = a->through;
  jn_Buf b;
  jn_St *st;
  jn_buf_init(L, &b);
  jn_buf_adds(L, &b, "DELETE ");
  add_mine(L, a, &b, "?1");
  if (json) {
    jn_buf_adds(L, &b, " IN (");
    jn_buf_adds(L, &b, jn_select_jsonin(j->conn, j->f[a->other].type));
    jn_buf_adds(L, &b, ")");
  } else {
    add_in_list(L, &b, k);
  }
  st = jn_stmt_cached(L, j->conn, b.p, b.n, rc);
  lua_pop(L, 1);
  return st;
}

static int json_keys(jn_Assoc *a, const jn_Key *keys, int n);

/*
** Delete the links of the source at self to the n keys of keys[0..n) (of
** the key array at arr), in one statement: "= ?2" for one key, the OR of
** whole keys up to JN_DELETE_OR, else one IN list, the keys bound as one
** JSON array when they can travel in one (json_keys), else as parameters
** (a statement per jn_assoc_hasmax keys only past SQLite's limit on
** parameters).  Every key is bound, whatever the length of the list.  The
** caller holds a jn_conn_writeguard when n > 1 (SQLite keeps the rows a
** statement deleted before a trigger's RAISE(FAIL)).
** [-0, +0, e]
*/
static int delete_list(lua_State *L, jn_Assoc *a, int self, int arr, const jn_Key *keys, int n) {
  jn_Conn *c = a->source->conn;
  jn_St *st;
  jn_Buf b;
  int i, m, k, rc = SQLITE_OK;
  if (n == 0) return SQLITE_OK;
  if (n <= JN_DELETE_OR) {
    st = n == 1 ? delete_stmt(L, a, &rc) : delete_or_stmt(L, a, n, 0, &rc);
    if (st == NULL) return rc;
    jn_assoc_bindsource(L, a, self, st, 1);
    for (i = 0; i < n; i++) bind_key(L, c, st, i + 2, arr, &keys[i]);
    return jn_conn_run(L, c, st);
  }
  if (json_keys(a, keys, n)) {
    st = delete_in_stmt(L, a, 1, 0, &rc);
    if (st == NULL) return rc;
    keys_json(L, &b, keys, n);
    jn_assoc_bindsource(L, a, self, st, 1);
    jn_stmt_bindtext(L, c, st, 2, b.p, b.n);
    rc = jn_conn_run(L, c, st);
    lua_pop(L, 1);
    return rc;
  }
  for (i = 0; i < n && rc == SQLITE_OK; i += m) {   /* blob keys, text with NUL, mixed types */
    int max = jn_assoc_hasmax(a);
    m = n - i < max ? n - i : max;
    k = (m + JN_KEYS_IN - 1) / JN_KEYS_IN * JN_KEYS_IN;
    st = delete_in_stmt(L, a, 0, k, &rc);
    if (st == NULL) return rc;
    jn_assoc_bindsource(L, a, self, st, 1);
    bind_chunk(L, c, st, arr, &keys[i], m, k);
    rc = jn_conn_run(L, c, st);
  }
  return rc;
}

/*
** Delete the links to the keys of keys[0..nk) (of the key array at arr)
** that are not in keep[0..nkeep) (keep NULL: every one), n of them, in one
** statement: set's few drops (keep given; keys as read from the links)
** over the source's links, bound in place; the others by delete_list.
** [-0, +0, e]
*/
static int delete_keys(lua_State *L, jn_Assoc *a, int self, int arr, const jn_Key *keys, int nk,
                       const jn_Key *keep, int nkeep, int sorted, int n) {
  jn_Conn *c = a->source->conn;
  jn_Key *gone;
  jn_St *st;
  int i, m = 0, rc = SQLITE_OK;
  if (n == 0) return SQLITE_OK;
  if (keep == NULL) return delete_list(L, a, self, arr, keys, n);
  if (n <= JN_DELETE_OR) {
    /* the scan's "+other" compares without affinity: the keys bound are
    ** the ones read from the links, as stored; SQLite only (PostgreSQL has
    ** no unary + for text) */
    st = n == 1 ? delete_stmt(L, a, &rc) : delete_or_stmt(L, a, n, c->eng == NULL, &rc);
    if (st == NULL) return rc;
    jn_assoc_bindsource(L, a, self, st, 1);
    for (i = 0; i < nk && m < n; i++)
      if (!key_in(keep, nkeep, &keys[i], sorted)) bind_key(L, c, st, 2 + m++, arr, &keys[i]);
    return jn_conn_run(L, c, st);
  }
  gone = new_keys(L, n);   /* copies of keys of arr: its anchors hold their text */
  for (i = 0; i < nk && m < n; i++)
    if (!key_in(keep, nkeep, &keys[i], sorted)) gone[m++] = keys[i];
  rc = delete_list(L, a, self, arr, gone, m);
  lua_pop(L, 1);
  return rc;
}

/* Insert links to the keys of keys[0..nk) (key array at arr) not in
** skip[0..nskip), n of them, in statements of up to JN_LINK_BATCH rows, one
** timestamp per row. */
static int insert_keys(lua_State *L, jn_Write *w, jn_Assoc *a, int self, int arr,
                       const jn_Key *keys, int nk, const jn_Key *skip, int nskip, int sorted,
                       int n) {
  jn_Conn *c = a->source->conn;
  int ts = a->through->created >= 0 && a->through->updated >= 0;
  char stamp[JN_LINK_BATCH][32];
  int i = 0, rc;
  while (n > 0) {
    int m = n < JN_LINK_BATCH ? n : JN_LINK_BATCH, r = 0;
    jn_St *st = insert_stmt(L, a, m, &rc);
    if (st == NULL) return rc;
    jn_assoc_bindsource(L, a, self, st, 1);
    for (; r < m && i < nk; i++) {
      if (skip != NULL && key_in(skip, nskip, &keys[i], sorted)) continue;
      if (ts) {
        size_t len = jn_scalar_timestamp(c, stamp[r]);
        bind_key(L, c, st, 2 * r + 2, arr, &keys[i]);
        jn_stmt_bindtext(L, c, st, 2 * r + 3, stamp[r], len);
      } else {
        bind_key(L, c, st, r + 2, arr, &keys[i]);
      }
      r++;
    }
    rc = jn_conn_run(L, c, st);
    if (rc != SQLITE_OK) return rc;
    n -= m;
    if (n > 0 && (rc = jn_conn_writeguard(L, w)) != SQLITE_OK) return rc;
  }
  return SQLITE_OK;
}

/*
** Write opts.through (the table at thr) on the link to a key that is
** already linked: UPDATE junction SET ... WHERE fk = ? AND other = ?.
*/
static int through_write(lua_State *L, jn_Write *w, jn_Assoc *a, int self, int thr, int arr,
                         const jn_Key *k) {
  jn_Model *j = a->through;
  jn_Conn *c = j->conn;
  jn_Buf b;
  jn_Select s;
  jn_St *st;
  int i, rc, n = 0;
  char stamp[32];
  size_t slen = jn_scalar_timestamp(j->conn, stamp);
  if ((rc = jn_conn_writeguard(L, w)) != SQLITE_OK) return rc;
  jn_select_init(L, &s);
  jn_buf_init(L, &b);
  jn_buf_adds(L, &b, "UPDATE ");
  jn_buf_adds(L, &b, j->qtable);
  jn_buf_adds(L, &b, " SET ");
  for (i = 0; i < j->nfields; i++) {
    if (i == a->fk || i == a->other || i == j->created) continue;
    if (i == j->updated) {
      lua_pushlstring(L, stamp, slen);
    } else {
      lua_getfield(L, thr, j->f[i].name);   /* thr is junction's own copy: no metamethods */
      if (lua_isnil(L, -1)) { lua_pop(L, 1); continue; }
    }
    if (n++) jn_buf_adds(L, &b, ", ");
    jn_buf_addident(L, &b, NULL, j->f[i].col);
    jn_buf_adds(L, &b, " = ?");
    if (lua_type(L, -1) == LUA_TBOOLEAN) lua_pushinteger(L, lua_toboolean(L, -1));
    else lua_pushvalue(L, -1);
    jn_select_bindt(L, &s, -1, j->f[i].type);
    lua_pop(L, 2);
  }
  if (n == 0) { lua_pop(L, 2); return SQLITE_OK; }
  jn_buf_adds(L, &b, " WHERE ");
  jn_buf_addident(L, &b, NULL, j->f[a->fk].col);
  jn_buf_adds(L, &b, " = ? AND ");
  jn_buf_addident(L, &b, NULL, j->f[a->other].col);
  jn_buf_adds(L, &b, " = ?");
  st = jn_stmt_cached(L, c, b.p, b.n, &rc);
  if (st == NULL) { lua_pop(L, 2); return rc; }
  jn_select_bindlist(L, c, st, &s);
  jn_assoc_bindsource(L, a, self, st, n + 1);
  bind_key(L, c, st, n + 2, arr, k);
  rc = jn_conn_run(L, c, st);
  lua_pop(L, 2);
  return rc;
}

/* Copy every key and value of the table at from into the table at to, raw
** (no metamethod of the caller's runs). [-0, +0, -] */
static void copy_raw(lua_State *L, int from, int to) {
  lua_pushnil(L);
  while (lua_next(L, from) != 0) {
    lua_pushvalue(L, -2);
    lua_insert(L, -2);
    lua_rawset(L, to);
  }
}

/*
** Insert one link the way Model:create inserts a row: the junction's
** defaultValue functions are called, opts.through (the table at thr, or 0)
** is written, timestamps are set.  jmodel: the junction model's index.
** [-0, +0, e]
*/
static int insert_row(lua_State *L, jn_Assoc *a, int self, int thr, const jn_Key *k, int jmodel) {
  int top = lua_gettop(L), values, inst, rc;
  lua_newtable(L);
  values = lua_gettop(L);
  if (thr) copy_raw(L, thr, values);
  jn_inst_get(L, self, a->source_key);
  lua_setfield(L, values, a->through->f[a->fk].name);
  push_key(L, k);
  lua_setfield(L, values, a->through->f[a->other].name);
  inst = jn_inst_build(L, a->through, jmodel, values, jn_assoc_method(L));
  rc = jn_inst_insert(L, inst);
  if (rc == JN_VALIDATION) {   /* keep its message and details, on top */
    lua_replace(L, top + 2);
    lua_replace(L, top + 1);
    lua_settop(L, top + 2);
    return rc;
  }
  lua_settop(L, top);
  return rc;
}

/* Has the junction model (at jmodel) a defaultValue function of a field
** other than the two keys?  Then new links are inserted by insert_row. */
static int through_fdefaults(lua_State *L, jn_Assoc *a, int jmodel) {
  jn_Model *j = a->through;
  int i, found = 0;
  for (i = 0; i < j->nfields && !found; i++)   /* most junctions have no default at all */
    found = (j->f[i].flags & JN_F_DEFAULT) && i != a->fk && i != a->other;
  if (!found) return 0;
  found = 0;
  jn_schema_uv(L, jmodel, JN_UV_DEFAULTS);
  for (i = 0; lua_istable(L, -1) && i < j->nfields && !found; i++) {
    if (!(j->f[i].flags & JN_F_DEFAULT) || i == a->fk || i == a->other) continue;
    lua_rawgeti(L, -1, i + 1);
    found = lua_isfunction(L, -1);
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
  return found;
}

/*
** Is there a row of m whose field f holds the value on top (popped), bound
** as type?  1 yes, 0 no, -1 when the read fails.  The failure messages of
** every association kind use it to say which key is no row.
** [-1, +0, e]
*/
int jn_assoc_rowexists(lua_State *L, jn_Model *m, int f, int type) {
  jn_Conn *c = m->conn;
  jn_Buf b;
  jn_St *st;
  int rc, found;
  jn_buf_init(L, &b);
  jn_buf_adds(L, &b, "SELECT 1 FROM ");
  jn_buf_adds(L, &b, m->qtable);
  jn_buf_adds(L, &b, " WHERE ");
  jn_buf_addident(L, &b, NULL, m->f[f].col);
  jn_buf_adds(L, &b, " = ? LIMIT 1");
  st = jn_stmt_cached(L, c, b.p, b.n, &rc);
  if (st == NULL) { lua_pop(L, 2); return -1; }
  jn_stmt_bindvalue(L, c, st, 1, -2, type);
  rc = jn_conn_step(L, c, st);
  found = rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : -1;
  jn_e_reset(c->eng, st);
  lua_pop(L, 2);
  return found;
}

/*
** The statement counting the targets of the instance at stack index 1 that
** match the where at w ("SELECT count(*) ... WHERE link = ? AND where"),
** bound; NULL with *rc set when the database refuses it.  The SQL buffer
** and the bound values stay on the stack: the statement points into them
** until its step.
** [-0, +2, e]
*/
jn_St *jn_assoc_countwhere(lua_State *L, jn_Assoc *a, int w, int *rc) {
  return jn_assoc_countwhere2(L, a, w, 0, rc);
}

/*
** The options table opts.through (the value at idx, or nil) of a
** belongsToMany read: a table of at most 'where' (a where on the junction
** model's fields).  Pushes that where, or nil.  Raises on misuse.
** [-0, +1, e]
*/
void jn_assoc_throughwhere(lua_State *L, jn_Assoc *a, int idx, const char *ctx) {
  static const char *const through_opts[] = { "where", NULL };
  char octx[200];
  if (lua_isnil(L, idx)) { lua_pushnil(L); return; }
  if (a->kind != JN_A_BELONGS_TO_MANY)
    luaL_error(L, "%s: bad option 'through' (only a belongsToMany has a junction model)", ctx);
  if (!lua_istable(L, idx))
    luaL_error(L, "%s: bad option 'through' (table expected, got %s)", ctx, luaL_typename(L, idx));
  snprintf(octx, sizeof octx, "%s: option 'through'", ctx);
  jn_conn_checkopts(L, idx, through_opts, octx);
  lua_pushliteral(L, "where");
  lua_rawget(L, idx);
}

/* The count of a belongsToMany or hasMany whose where (at w, or 0) is on the
** target and whose through where (at tw, or 0) is on the junction. */
jn_St *jn_assoc_countwhere2(lua_State *L, jn_Assoc *a, int w, int tw, int *rc) {
  jn_Conn *c = a->source->conn;
  jn_Buf b;
  jn_Select s;
  jn_St *st;
  jn_select_init(L, &s);
  jn_buf_init(L, &b);
  jn_buf_adds(L, &b, "SELECT count(*)");
  jn_assoc_from(L, a, &b);
  jn_buf_adds(L, &b, " WHERE ");
  jn_assoc_link(L, a, &b);
  jn_buf_adds(L, &b, " = ? AND ");
  jn_inst_get(L, 1, a->source_key);
  jn_select_bind(L, &s, -1);
  lua_pop(L, 1);
  if (w) jn_where_compile(L, a->target, w, "t", &b, &s, jn_assoc_method(L));
  if (w && tw) jn_buf_adds(L, &b, " AND ");
  if (tw) jn_where_compile(L, a->through, tw, "j", &b, &s, jn_assoc_method(L));
  st = jn_stmt_cached(L, c, b.p, b.n, rc);
  if (st != NULL) jn_select_bindlist(L, c, st, &s);
  return st;
}

/*
** Run a bound count statement: push the count, or the failure.
** [-0, +(1|3|4), e]
*/
int jn_assoc_pushcount(lua_State *L, jn_Conn *c, jn_St *st) {
  int rc = jn_conn_step(L, c, st);
  if (rc == SQLITE_ROW) jn_scalar_pushi64(L, jn_e_col_int64(c->eng, st, 0));
  return jn_error_finish(L, c, st, rc, SQLITE_ROW);
}

/* Append a key to a message: a number as it is, text quoted. */
static void add_key_text(lua_State *L, jn_Buf *b, const jn_Key *k) {
  char tmp[40];
  switch (k->type) {
    case SQLITE_INTEGER: snprintf(tmp, sizeof tmp, "%lld", (long long)k->v.i); break;
    case SQLITE_FLOAT: snprintf(tmp, sizeof tmp, "%.17g", k->v.d); break;
    default:
      jn_buf_addl(L, b, "'", 1);
      jn_buf_addl(L, b, k->v.s, k->n);
      jn_buf_addl(L, b, "'", 1);
      return;
  }
  jn_buf_adds(L, b, tmp);
}

/* Is rc the connection's foreign-key failure (a link to a row that is gone)? */
int jn_assoc_fkfail(jn_Conn *c, int rc) {
  return rc != JN_VALIDATION && (rc & 0xff) == SQLITE_CONSTRAINT && c->db != NULL
         && jn_e_errcode(c->eng, c->db) == SQLITE_CONSTRAINT_FOREIGNKEY;
}

/*
** After a foreign-key failure of a link write by the instance at self:
** when the source's own row is gone, push nil, "ctx: the Post is gone (no
** row with post_id = 1)", SQLITE_CONSTRAINT_FOREIGNKEY, { gone = true }
** and return 4.  Else push nothing and return 0: the row is there (or
** reading it failed), so the failure already pushed stands.  Every
** association kind says a gone source this way.
** [-0, +(0|4), e]
*/
int jn_assoc_gone(lua_State *L, jn_Assoc *a, int self, const char *ctx) {
  jn_inst_get(L, self, a->source_key);
  if (jn_assoc_rowexists(L, a->source, a->source_key, a->source->f[a->source_key].type) != 0)
    return 0;
  jn_inst_get(L, self, a->source_key);
  lua_pushfstring(L, "%s: the %s is gone (no row with %s = %s)", ctx, a->source->name,
                  a->source->f[a->source_key].name, luaL_tolstring(L, -1, NULL));
  lua_createtable(L, 0, 1);
  lua_pushboolean(L, 1);
  lua_setfield(L, -2, "gone");
  return jn_error_faildetails(L, SQLITE_CONSTRAINT_FOREIGNKEY);
}

/*
** Push the failure of a link write to keys that are no rows: nil,
** "Post:setGenres: genre_id 99, 'x', 98 not found", 787, { missing = { 99,
** "x", 98 } }: the keys of keys[0..n) not in skip[0..nskip) that no row of
** the target has, in the order given (a key that fits no row is not
** looked up).  Returns the count pushed, or 0 with nothing pushed when
** every key is a row or a read fails.
** [-0, +(0|4), e]
*/
static int missing_fail(lua_State *L, jn_Assoc *a, const jn_Key *keys, int n, const jn_Key *skip,
                        int nskip, int sorted) {
  int i, nmiss = 0, r = 0, top = lua_gettop(L);
  jn_Key *miss;
  jn_Buf b;
  miss = new_keys(L, n);
  for (i = 0; i < n; i++) {
    if (skip != NULL && key_in(skip, nskip, &keys[i], sorted)) continue;
    if (keys[i].none) {
      r = 0;
    } else {
      push_key(L, &keys[i]);
      r = jn_assoc_rowexists(L, a->target, a->target_key, a->target->f[a->target_key].type);
      if (r < 0) break;
    }
    if (r == 0) miss[nmiss++] = keys[i];
  }
  if (r < 0 || nmiss == 0) { lua_settop(L, top); return 0; }
  qsort(miss, (size_t)nmiss, sizeof *miss, pos_cmp);
  jn_buf_init(L, &b);
  jn_buf_adds(L, &b, jn_assoc_method(L));
  jn_buf_adds(L, &b, ": ");
  jn_buf_adds(L, &b, a->target->f[a->target_key].name);
  for (i = 0; i < nmiss; i++) {
    jn_buf_adds(L, &b, i ? ", " : " ");
    add_key_text(L, &b, &miss[i]);
  }
  jn_buf_adds(L, &b, " not found");
  lua_pushlstring(L, b.p, b.n);
  lua_createtable(L, 0, 1);                    /* the details, while miss is on the stack */
  lua_createtable(L, nmiss, 0);
  for (i = 0; i < nmiss; i++) {
    push_key(L, &miss[i]);
    lua_rawseti(L, -2, i + 1);
  }
  lua_setfield(L, -2, "missing");
  return jn_error_faildetails(L, SQLITE_CONSTRAINT_FOREIGNKEY);
}

/*
** The failure rc of a link write.  A foreign-key failure says why: the keys
** of keys[0..n) not in skip[0..nskip) that are no rows of the target
** (missing_fail), or that the source row itself is gone (jn_assoc_gone).
** Anything else comes back as it is.
** [-0, +(3|4), e]
*/
static int link_fail(lua_State *L, jn_Assoc *a, int rc, int self, const jn_Key *keys, int n,
                     const jn_Key *skip, int nskip, int sorted) {
  jn_Conn *c = a->source->conn;
  int nf, r, top;
  if (!jn_assoc_fkfail(c, rc)) return jn_error_result(L, c, rc, NULL);
  nf = jn_error_result(L, c, rc, NULL);   /* read now: the checks below run statements */
  top = lua_gettop(L);
  if ((r = jn_assoc_gone(L, a, self, jn_assoc_method(L))) != 0) return r;
  if ((r = missing_fail(L, a, keys, n, skip, nskip, sorted)) != 0) return r;
  lua_settop(L, top);
  return nf;
}

/* Keep the keys of keys[0..n) that may name a row, in their order; returns
** how many. */
static int drop_none(jn_Key *keys, int n) {
  int i, k = 0;
  for (i = 0; i < n; i++)
    if (!keys[i].none) keys[k++] = keys[i];
  return k;
}

/* How many of keys[0..n) name no row by their type alone (jn_Key.none)? */
static int count_none(const jn_Key *keys, int n) {
  int i, none = 0;
  for (i = 0; i < n; i++) none += keys[i].none;
  return none;
}

/*
** The failure of set and add (of the source at self) when some of the n
** keys of keys are of no row by their type (count_none): checked before
** anything is written or sent, said as a foreign-key failure would say it
** (the source gone, else every key that is no row).
** [-0, +(3|4), e]
*/
static int none_fail(lua_State *L, jn_Assoc *a, int self, const jn_Key *keys, int n) {
  int r;
  if ((r = jn_assoc_gone(L, a, self, jn_assoc_method(L))) != 0) return r;
  if ((r = missing_fail(L, a, keys, n, NULL, 0, 0)) != 0) return r;
  return jn_error_result(L, a->source->conn, SQLITE_ERROR, NULL);   /* a lookup failed */
}

/*
** Convert the through values of the table at src (read raw) into the table
** at copy: every key a field of the junction but its two keys (else a
** raise naming what), every value a boolean, number or string, converted
** as its field stores it; a value its field cannot hold goes to the errors
** slot at errs (jn_inst_value).
** [-0, +0, e]
*/
static void through_values(lua_State *L, jn_Assoc *a, int src, int copy, int errs,
                           const char *what) {
  lua_pushnil(L);
  while (lua_next(L, src) != 0) {
    int f = lua_type(L, -2) == LUA_TSTRING ? jn_schema_field(L, a->through, -2) : -1;
    int ty = lua_type(L, -1);
    if (f < 0 || f == a->fk || f == a->other)
      luaL_error(L, "%s: bad %s (no field '%s' of %s to set)", jn_assoc_method(L), what,
                 lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : luaL_typename(L, -2),
                 a->through->name);
    if (ty != LUA_TBOOLEAN && ty != LUA_TNUMBER && ty != LUA_TSTRING)
      luaL_error(L, "%s: bad %s (%s cannot be stored in '%s')", jn_assoc_method(L), what,
                 luaL_typename(L, -1), lua_tostring(L, -2));
    if (jn_inst_value(L, a->through, f, -1, errs)) {   /* key value converted */
      lua_pushvalue(L, -3);
      lua_insert(L, -2);
      lua_rawset(L, copy);
    }
    lua_pop(L, 1);
  }
}

/*
** Check opts.through: a table of the junction's own fields, or a function
** giving each target's (jn_assoc_pertarget calls it).  A table is read raw
** and copied, each value converted as its field stores it (so nothing the
** caller's tables do can change it later).  Returns the index of the copy,
** or of the function, which replaces the options at optsidx; 0 when there is
** none; or -1 with the message and details of values their fields cannot
** hold pushed (a value failure, for jn_error_result with JN_VALIDATION).
*/
int jn_assoc_checkthrough(lua_State *L, jn_Assoc *a, int optsidx) {
  static const char *const set_opts[] = { "through", NULL };
  int t, copy, errs;
  jn_conn_checkopts(L, optsidx, set_opts, jn_assoc_method(L));
  if (!lua_istable(L, optsidx)) return 0;
  lua_pushliteral(L, "through");
  lua_rawget(L, optsidx);
  if (lua_isnil(L, -1)) { lua_pop(L, 1); return 0; }
  if (lua_isfunction(L, -1)) { lua_replace(L, optsidx); return optsidx; }
  t = lua_gettop(L);
  if (!lua_istable(L, t))
    luaL_error(L, "%s: bad option 'through' (table of %s fields, or a function, expected)",
               jn_assoc_method(L), a->through->name);
  lua_newtable(L);
  copy = lua_gettop(L);
  lua_pushnil(L);                        /* the errors slot */
  errs = lua_gettop(L);
  through_values(L, a, t, copy, errs, "option 'through'");
  if (!lua_isnil(L, errs)) {
    jn_inst_invalid(L, a->through, errs);
    return -1;
  }
  lua_pop(L, 1);
  lua_replace(L, optsidx);
  lua_pop(L, 1);
  return optsidx;
}

/*
** The values one target (the element at e, the elem-th of the list)
** carries for its link, converted into the table at copy: those it holds
** under the junction model's name (a table assigned there: Sequelize's
** `genre.TagPostGenre = { ... }`), then what the function at fn (0: none)
** returns for it.  Returns whether there were any.
** [-0, +0, e]
*/
static int target_values(lua_State *L, jn_Assoc *a, int e, int elem, int fn, int copy, int errs) {
  jn_Inst *inst = jn_inst_test(L, e);
  char what[64];
  int any = 0;
  if (inst != NULL && inst->model == a->target) {
    jn_inst_getextra(L, e, a->through->name);
    if (lua_istable(L, -1)) {
      snprintf(what, sizeof what, "%.30s values of element %d", a->through->name, elem);
      through_values(L, a, lua_gettop(L), copy, errs, what);
      any = 1;
    }
    lua_pop(L, 1);
  }
  if (fn) {
    lua_pushvalue(L, fn);
    lua_pushvalue(L, e);
    jn_conn_callback(L, a->source->conn, 1, 1, 0);
    if (!lua_isnil(L, -1)) {
      if (!lua_istable(L, -1) || jn_inst_test(L, -1) != NULL)
        luaL_error(L, "%s: bad option 'through' (its function gave %s for element %d: a table of %s "
                   "values or nil expected)", jn_assoc_method(L), luaL_typename(L, -1), elem,
                   a->through->name);
      snprintf(what, sizeof what, "option 'through' (its result for element %d)", elem);
      through_values(L, a, lua_gettop(L), copy, errs, what);
      any = 1;
    }
    lua_pop(L, 1);
  }
  return any;
}

/*
** The through values of each target of the list at idx (as given to
** set/add: one element when single, with jn_assoc_readkeys' leniency; its
** n keys in the key array at keys), those of opts.through (the converted
** table at thr, or 0) under those the target brings (target_values; fn the
** through function or 0).  Pushes a table element place -> values (the key
** array's jn_Key.pos) when any target brought some, else nil; returns 1,
** or -1 with the message and details of values their fields cannot hold
** pushed instead.  Without a function, a list whose instances carry no
** values (jn_Inst.carries) costs one pass over the key array, no Lua.
** [-0, +1|2, e]
*/
int jn_assoc_pertarget(lua_State *L, jn_Assoc *a, int idx, int single, int keys, int n, int fn,
                       int thr) {
  const jn_Key *k = (const jn_Key *)lua_touserdata(L, keys);
  int i, per, errs, any = 0;
  for (i = 0; !fn && i < n && !k[i].carries; i++) ;
  if (!fn && i == n) { lua_pushnil(L); return 1; }
  if (single && lua_istable(L, idx)) single = 0;
  else if (!single && jn_inst_test(L, idx) != NULL) single = 1;
  n = single ? 1 : (int)lua_rawlen(L, idx);   /* every element, duplicates too */
  lua_newtable(L);
  per = lua_gettop(L);
  lua_pushnil(L);                        /* the errors slot */
  errs = lua_gettop(L);
  for (i = 1; i <= n; i++) {
    int copy;
    if (single) lua_pushvalue(L, idx);
    else lua_rawgeti(L, idx, i);
    if (!fn && jn_inst_test(L, -1) == NULL) { lua_pop(L, 1); continue; }   /* a key: none */
    lua_newtable(L);
    copy = lua_gettop(L);
    if (thr) copy_raw(L, thr, copy);
    if (target_values(L, a, copy - 1, i, fn, copy, errs)) {
      lua_rawseti(L, per, i);
      any = 1;
    } else {
      lua_pop(L, 1);
    }
    lua_pop(L, 1);
  }
  if (!lua_isnil(L, errs)) {
    jn_inst_invalid(L, a->through, errs);
    return -1;
  }
  lua_pop(L, 1);
  if (!any) {
    lua_pop(L, 1);
    lua_pushnil(L);
  }
  return 1;
}

/* Push the junction model of the running method's association. [-0, +1, -] */
static int push_through(lua_State *L) {
  lua_getuservalue(L, lua_upvalueindex(1));
  lua_getfield(L, -1, "through");
  lua_remove(L, -2);
  return lua_gettop(L);
}

/* {====== Writes on an engine that locks rows (PostgreSQL) */

/*
** On PostgreSQL two connections may write the same source's links at once
** (SQLite's BEGIN IMMEDIATE lets one writer in at a time).  Reading the
** links and then writing the difference would meet the other's rows half
** way (a unique violation, or a final set mixing both lists), so there set
** first locks the source's row, and then writes the whole difference in
** one statement, whose snapshot is taken after the lock: it sees what the
** writer before it committed.  add and remove are one statement each and
** need no lock (ON CONFLICT DO NOTHING: a link another added meanwhile is
** no failure).  The keys travel as one JSON array parameter.
*/

/* Does the connection's engine lock rows (the dialect says how)? */
int jn_assoc_locksrows(jn_Conn *c) {
  return c->dialect->lock_parent[0] != '\0';
}

/*
** Lock the row of the source at self against the other writers of its
** links until the transaction ends (PostgreSQL: SELECT 1 FROM post WHERE
** post_id = ? FOR NO KEY UPDATE; it does not block the inserts that
** reference the row).  Nothing on SQLite.  Returns a result code.
** [-0, +0, e]
*/
int jn_assoc_lockparent(lua_State *L, jn_Assoc *a, int self) {
  jn_Conn *c = a->source->conn;
  jn_Model *m = a->source;
  jn_Buf b;
  jn_St *st;
  int rc;
  if (!jn_assoc_locksrows(c)) return SQLITE_OK;
  jn_buf_init(L, &b);
  jn_buf_adds(L, &b, "SELECT 1 FROM ");
  jn_buf_adds(L, &b, m->qtable);
  jn_buf_adds(L, &b, " WHERE ");
  jn_buf_addident(L, &b, NULL, m->f[a->source_key].col);
  jn_buf_adds(L, &b, " = ?");
  jn_buf_adds(L, &b, c->dialect->lock_parent);
  st = jn_stmt_cached(L, c, b.p, b.n, &rc);
  if (st != NULL) {
    jn_assoc_bindsource(L, a, self, st, 1);
    rc = jn_conn_run(L, c, st);
  }
  lua_pop(L, 1);
  return rc;
}

/*
** Can keys[0..n) go in one JSON array, each read back as the junction's
** other field stores it?  Integers for an integer field, text for a text
** one; anything else (a blob key, a number for a text field, text with a
** NUL) takes the statement-per-key way, under the lock.
*/
static int json_keys(jn_Assoc *a, const jn_Key *keys, int n) {
  int t = a->through->f[a->other].type, want, i;
  if (t == JN_T_INTEGER || t == JN_T_BIGINT) want = SQLITE_INTEGER;
  else if (t == JN_T_TEXT || t == JN_T_STRING || t == JN_T_UUID || t == JN_T_ENUM) want = SQLITE_TEXT;
  else return 0;
  for (i = 0; i < n; i++)   /* JSON text cannot carry a NUL to PostgreSQL */
    if (keys[i].type != want || (want == SQLITE_TEXT && memchr(keys[i].v.s, '\0', keys[i].n) != NULL))
      return 0;
  return 1;
}

/* Append "CAST(?2 AS <the field's column type>)". */
static void add_cast(lua_State *L, jn_Conn *c, jn_Buf *b, const char *param, int type) {
  const char *t = type >= 0 && type < JN_T_VIRTUAL ? c->dialect->ddl_type[type] : NULL;
  jn_buf_adds(L, b, "CAST(");
  jn_buf_adds(L, b, param);
  jn_buf_adds(L, b, " AS ");
  jn_buf_adds(L, b, t != NULL ? t : "text");
  jn_buf_adds(L, b, ")");
}

/*
** The one statement of set (del), add (!del && ins) or remove (neither),
** over the keys in the JSON array $1 (the WITH comes first: its "?" is
** $1), the source's key $2 and the time $3:
**   WITH v(k, o) AS (... json_array_elements_text($1), its place o),
**        w(k, o) AS (each key once, at its first place)
**     [, d AS (DELETE FROM j WHERE fk = $2 AND other NOT IN (SELECT k FROM w))]
**   INSERT INTO j (fk, other[, createdAt, updatedAt])
**   SELECT CAST($2 AS bigint), k[, $3, $3] FROM w
**   WHERE NOT EXISTS (SELECT 1 FROM j WHERE fk = $2 AND other = w.k)
**   ORDER BY w.o ON CONFLICT DO NOTHING
** remove: WITH w ... DELETE FROM j WHERE fk = $2 AND other IN (SELECT k FROM w).
** [-0, +0, e]
*/
static jn_St *json_stmt(lua_State *L, jn_Assoc *a, int del, int ins, int *rc) {
  jn_Model *j = a->through;
  jn_Conn *c = j->conn;
  int ts = j->created >= 0 && j->updated >= 0;
  jn_St *st;
  jn_Buf b;
  jn_buf_init(L, &b);
  /* each key once, at the place it first has in the list (o): the links
  ** are inserted in the list's order, so their keys follow it as on SQLite */
  jn_buf_adds(L, &b, "WITH v(k, o) AS (SELECT x.v, row_number() OVER () FROM (");
  jn_buf_adds(L, &b, jn_select_jsonin(c, j->f[a->other].type));
  jn_buf_adds(L, &b, ") x(v)), w(k, o) AS (SELECT k, min(o) FROM v GROUP BY k)");
  if (!ins) {
    jn_buf_adds(L, &b, " DELETE ");
    add_mine(L, a, &b, "?2");
    jn_buf_adds(L, &b, " IN (SELECT k FROM w)");
  } else {
    if (del) {
      jn_buf_adds(L, &b, ", d AS (DELETE ");
      add_mine(L, a, &b, "?2");
      jn_buf_adds(L, &b, " NOT IN (SELECT k FROM w))");
    }
    jn_buf_adds(L, &b, " ");
    add_link_insert(L, a, &b, ts);
    jn_buf_adds(L, &b, ") SELECT ");
    add_cast(L, c, &b, "?2", j->f[a->fk].type);
    jn_buf_adds(L, &b, ", k");
    if (ts) {
      jn_buf_adds(L, &b, ", ");
      add_cast(L, c, &b, "?3", j->f[j->created].type);
      jn_buf_adds(L, &b, ", ");
      add_cast(L, c, &b, "?3", j->f[j->updated].type);
    }
    jn_buf_adds(L, &b, " FROM w WHERE NOT EXISTS (SELECT 1 ");
    add_mine(L, a, &b, "?2");
    jn_buf_adds(L, &b, " = w.k) ORDER BY w.o ON CONFLICT DO NOTHING");
  }
  st = jn_stmt_cached(L, c, b.p, b.n, rc);
  lua_pop(L, 1);
  return st;
}

/*
** Write the links of the source at self in one statement (json_stmt) for
** the n keys of the key array at arr: set (del: under the source's row
** lock), add (ins), remove (neither).  Returns the results of the body.
** [-0, +(1|3|4), e]
*/
static int json_write(lua_State *L, jn_Write *w, jn_Assoc *a, int self, int arr, int n, int del,
                      int ins) {
  jn_Conn *c = w->c;
  const jn_Key *keys = (const jn_Key *)lua_touserdata(L, arr);
  jn_St *st;
  jn_Buf b;
  int rc;
  if (del) {
    /* the lock lasts until the transaction ends: outside one, a transaction
    ** of its own; inside one, no savepoint (one statement writes, and the
    ** engine runs each in a savepoint of its own) */
    if ((jn_e_autocommit(c->eng, c->db) || !c->dialect->savepoint_every_write) &&
        (rc = jn_conn_writeguard(L, w)) != SQLITE_OK)
      return jn_error_result(L, c, rc, NULL);
    if ((rc = jn_assoc_lockparent(L, a, self)) != SQLITE_OK) return jn_error_result(L, c, rc, NULL);
  }
  keys_json(L, &b, keys, n);
  st = json_stmt(L, a, del, ins, &rc);
  if (st == NULL) return jn_error_result(L, c, rc, NULL);
  jn_stmt_bindtext(L, c, st, 1, b.p, b.n);
  jn_assoc_bindsource(L, a, self, st, 2);
  if (ins && a->through->created >= 0 && a->through->updated >= 0) {
    char stamp[32];
    size_t len = jn_scalar_timestamp(c, stamp);
    jn_stmt_bindtext(L, c, st, 3, stamp, len);
  }
  rc = jn_conn_run(L, c, st);
  if (rc != SQLITE_OK) {
    if (!ins) return jn_error_result(L, c, rc, NULL);
    return link_fail(L, a, rc, self, keys, n, NULL, 0, 0);
  }
  lua_pushboolean(L, 1);
  return 1;
}

/* }====== */

/*
** Read the keys the source (at self) is linked to now into a key array
** (pushed): in room (JN_KEYS_ROOM keys on the caller's C stack, as
** jn_assoc_readkeys) while they fit and need no anchor, else a new one.
** Returns their number, or -1 with *rc set when the read fails.
** [-0, +1, e]
*/
static int linked_keys(lua_State *L, jn_Assoc *a, int self, int *rc, jn_Key *room) {
  jn_Conn *c = a->source->conn;
  int n = 0, cap = JN_KEYS_ROOM, arr;
  jn_Key *cur = push_keys(L, cap, room);
  jn_St *st;
  arr = lua_gettop(L);
  st = jn_assoc_slot(L, a, JN_AS_KEYS, "keys", rc);
  if (st == NULL) return -1;
  jn_assoc_bindsource(L, a, self, st, 1);
  while ((*rc = jn_conn_step(L, c, st)) == SQLITE_ROW) {
    jn_Key *k;
    int type = jn_e_coltype(c->eng, st, 0);
    if (type == SQLITE_NULL) continue;
    if (n == cap) {
      cap *= 2;
      cur = grow_keys(L, arr, n, cap);
    }
    k = &cur[n++];
    memset(k, 0, sizeof *k);
    k->type = type;
    if (type == SQLITE_INTEGER) {
      k->v.i = jn_e_col_int64(c->eng, st, 0);
    } else if (type == SQLITE_FLOAT) {
      k->v.d = jn_e_col_double(c->eng, st, 0);
    } else {   /* text or blob: a Lua copy, anchored */
      size_t len;
      const char *s = type == SQLITE_BLOB ? (const char *)jn_e_col_blob(c->eng, st, 0, &len)
                                          : (const char *)jn_e_col_text(c->eng, st, 0, &len);
      lua_pushlstring(L, s != NULL ? s : "", len);
      (void)anchor_key(L, arr, k, type == SQLITE_BLOB ? SQLITE_BLOB : SQLITE_TEXT);
      cur = (jn_Key *)lua_touserdata(L, arr);   /* the room's keys may have moved */
    }
  }
  jn_e_reset(c->eng, st);
  if (*rc != SQLITE_DONE) return -1;
  return n;
}

/*
** The guard of a write of several rows that is one statement: the DELETE of
** ndel links (2 <= ndel <= JN_DELETE_OR; scan: set's form over the source's
** links) or the INSERT of nins (ndel 0, nins <= JN_LINK_BATCH), on SQLite.
** That statement may run without a savepoint (jn_conn_guardone); *one is
** it, for jn_conn_learnone once it has run.  Anything else: the guard.
*/
static int guard_one(lua_State *L, jn_Write *w, jn_Assoc *a, int ndel, int nins, int scan,
                     jn_St **one) {
  int rc = SQLITE_OK;
  *one = NULL;
  if (w->c->eng == NULL && nins == 0 && ndel >= 2 && ndel <= JN_DELETE_OR) {
    *one = delete_or_stmt(L, a, ndel, scan, &rc);
    if (*one != NULL)
      return jn_conn_guardone(L, w, *one, scan ? &a->dscan_whole[ndel] : &a->del_whole[ndel]);
  } else if (w->c->eng == NULL && ndel == 0 && nins >= 1 && nins <= JN_LINK_BATCH) {
    *one = insert_stmt(L, a, nins, &rc);
    if (*one != NULL) return jn_conn_guardone(L, w, *one, &a->ins_whole[nins]);
  }
  return rc != SQLITE_OK ? rc : jn_conn_writeguard(L, w);
}

/*
** Write the link to each of want[0..nwant) one by one: the through values
** (the table at thr, or the target's own in the table at per: place ->
** values) on a link there already (none given: left alone), a new link by
** insert_row.  cur[0..ncur): the keys linked before.  Returns a result code.
** [-0, +0, e]
*/
static int link_each(lua_State *L, jn_Write *w, jn_Assoc *a, int thr, int per, const jn_Key *want,
                     int nwant, const jn_Key *cur, int ncur, int sorted, int jmodel) {
  int i, rc = SQLITE_OK, t;
  for (i = 0; i < nwant && rc == SQLITE_OK; i++) {
    t = thr;
    if (per) {
      lua_rawgeti(L, per, want[i].pos);
      if (lua_istable(L, -1)) t = lua_gettop(L);
    }
    if (key_in(cur, ncur, &want[i], sorted)) rc = t ? through_write(L, w, a, 2, t, 3, &want[i]) : SQLITE_OK;
    else rc = insert_row(L, a, 2, t, &want[i], jmodel);
    if (per) lua_pop(L, 1);
  }
  return rc;
}

/*
** Body of set and add under jn_conn_atomic: [w, inst, keys, thr|nil, nwant,
** del, per|nil] (per: jn_assoc_pertarget's).  Reads the keys linked now,
** then deletes (set only) the ones not wanted and inserts the ones missing;
** the links that stay are left alone unless through values are given for
** them.  More than one row written: all under a guard, so a failure
** half-way undoes them.
*/
int jn_assoc_linkbody(lua_State *L) {
  jn_Write *w = jn_conn_bodywrite(L);
  jn_Assoc *a = (jn_Assoc *)lua_touserdata(L, lua_upvalueindex(1));
  jn_Conn *c = w->c;
  int thr = lua_isnil(L, 4) ? 0 : 4, per = lua_isnil(L, 7) ? 0 : 7;
  int nwant = (int)lua_tointeger(L, 5), del = lua_toboolean(L, 6);
  int ncur, rc, ndel = 0, nins = 0, sorted, i, slow, jmodel;
  jn_Key *want = (jn_Key *)lua_touserdata(L, 3), *cur;
  jn_Key room[JN_KEYS_ROOM];                     /* the links read, while they fit */
  jn_St *one = NULL;                             /* the only write, when guard_one named it */
  lua_settop(L, 7);
  if (count_none(want, nwant) > 0) return none_fail(L, a, 2, want, nwant);
  jmodel = push_through(L);                      /* 8 */
  if (jn_assoc_locksrows(c)) {
    if (!thr && !per && json_keys(a, want, nwant) && !through_fdefaults(L, a, jmodel))
      return json_write(L, w, a, 2, 3, nwant, del, 1);
    /* read, then write: under the source's lock */
    if ((rc = jn_conn_writeguard(L, w)) != SQLITE_OK || (rc = jn_assoc_lockparent(L, a, 2)) != SQLITE_OK)
      return jn_error_result(L, c, rc, NULL);
  }
  ncur = linked_keys(L, a, 2, &rc, room);        /* 9 */
  if (ncur < 0) return jn_error_result(L, c, rc, NULL);
  cur = (jn_Key *)lua_touserdata(L, 9);
  sorted = nwant > JN_KEYS_SCAN || ncur > JN_KEYS_SCAN;
  if (sorted) qsort(cur, (size_t)ncur, sizeof *cur, key_qcmp);
  if (sorted && nwant <= JN_KEYS_SCAN) qsort(want, (size_t)nwant, sizeof *want, key_qcmp);
  for (i = 0; del && i < ncur; i++)
    if (!key_in(want, nwant, &cur[i], sorted)) ndel++;
  for (i = 0; i < nwant; i++)
    if (!key_in(cur, ncur, &want[i], sorted)) nins++;
  slow = thr || per || (nins > 0 && through_fdefaults(L, a, jmodel));
  if (ndel + (thr || per ? nwant : nins) > 1
      && (rc = slow ? jn_conn_writeguard(L, w) : guard_one(L, w, a, ndel, nins, 1, &one)) != SQLITE_OK)
    return jn_error_result(L, c, rc, NULL);
  if (del) {
    rc = delete_keys(L, a, 2, 9, cur, ncur, want, nwant, sorted, ndel);
    if (rc != SQLITE_OK) return jn_error_result(L, c, rc, NULL);
  }
  if (slow) {
    rc = link_each(L, w, a, thr, per, want, nwant, cur, ncur, sorted, jmodel);
    if (rc != SQLITE_OK) return link_fail(L, a, rc, 2, want, nwant, cur, ncur, sorted);
  } else {
    rc = insert_keys(L, w, a, 2, 3, want, nwant, cur, ncur, sorted, nins);
    if (rc != SQLITE_OK) return link_fail(L, a, rc, 2, want, nwant, cur, ncur, sorted);
  }
  if (one != NULL) jn_conn_learnone(L, w, one);
  lua_pushboolean(L, 1);
  return 1;
}



/* Body of remove under jn_conn_atomic: [w, inst, keys, n]. */
int jn_assoc_unlinkbody(lua_State *L) {
  jn_Write *w = jn_conn_bodywrite(L);
  jn_Assoc *a = (jn_Assoc *)lua_touserdata(L, lua_upvalueindex(1));
  int n = (int)lua_tointeger(L, 4), rc;
  jn_St *one = NULL;                   /* the only write, when guard_one named it */
  n = drop_none((jn_Key *)lua_touserdata(L, 3), n);   /* not linked: nothing to remove */
  if (jn_assoc_locksrows(w->c) && json_keys(a, (jn_Key *)lua_touserdata(L, 3), n))
    return json_write(L, w, a, 2, 3, n, 0, 0);
  if (n > 1 && (rc = guard_one(L, w, a, n, 0, 0, &one)) != SQLITE_OK)
    return jn_error_result(L, w->c, rc, NULL);
  rc = delete_keys(L, a, 2, 3, (jn_Key *)lua_touserdata(L, 3), n, NULL, 0, 0, n);
  if (rc != SQLITE_OK) return jn_error_result(L, w->c, rc, NULL);
  if (one != NULL) jn_conn_learnone(L, w, one);
  lua_pushboolean(L, 1);
  return 1;
}



/* The most keys has counts in one statement (SQLite's limit on parameters,
** ?1 being the source, rounded down to whole chunks). */
int jn_assoc_hasmax(jn_Assoc *a) {
  jn_Conn *c = a->source->conn;
  int lim = jn_e_maxparams(c->eng, c->db, c->dialect->max_params) - 1;
  return lim / JN_KEYS_IN * JN_KEYS_IN;
}

/* The has statement for k keys (a whole number of chunks), from the cache. */
static jn_St *has_stmt(lua_State *L, jn_Assoc *a, int k, int *rc) {
  jn_Model *j = a->through;
  jn_Buf b;
  jn_St *st;
  jn_buf_init(L, &b);
  jn_buf_adds(L, &b, "SELECT count(DISTINCT ");
  jn_buf_addident(L, &b, NULL, j->f[a->other].col);
  jn_buf_adds(L, &b, ") FROM ");
  jn_buf_adds(L, &b, j->qtable);
  jn_buf_adds(L, &b, " WHERE ");
  jn_buf_addident(L, &b, NULL, j->f[a->fk].col);
  jn_buf_adds(L, &b, " = ?1 AND ");
  jn_buf_addident(L, &b, NULL, j->f[a->other].col);
  add_in_list(L, &b, k);
  st = jn_stmt_cached(L, j->conn, b.p, b.n, rc);
  lua_pop(L, 1);
  return st;
}

/*
** Push whether the source (at self) is linked to every one of the n keys of
** the key array at arr, counted chunk by chunk; or fail. [-0, +1|3, e]
*/
int jn_assoc_hasrun(lua_State *L, jn_Assoc *a, int self, int arr, int n) {
  jn_Conn *c = a->source->conn;
  jn_Key *keys = (jn_Key *)lua_touserdata(L, arr);
  int rc, i, m, k;
  sqlite3_int64 found = 0;
  jn_St *st;
  if (count_none(keys, n) > 0) { lua_pushboolean(L, 0); return 1; }   /* one is no row */
  if (n > JN_KEYS_IN && n <= jn_assoc_hasmax(a)) {   /* one statement, one snapshot */
    k = (n + JN_KEYS_IN - 1) / JN_KEYS_IN * JN_KEYS_IN;
    st = has_stmt(L, a, k, &rc);
    if (st == NULL) return jn_error_result(L, c, rc, NULL);
    jn_assoc_bindsource(L, a, self, st, 1);
    bind_chunk(L, c, st, arr, keys, n, k);
    rc = jn_conn_step(L, c, st);
    if (rc != SQLITE_ROW) return jn_error_finish(L, c, st, rc, SQLITE_ROW);
    found = jn_e_col_int64(c->eng, st, 0);
    jn_e_reset(c->eng, st);
    lua_pushboolean(L, found == (sqlite3_int64)n);
    return 1;
  }
  for (i = 0; i < n; i += m) {
    m = n - i < JN_KEYS_IN ? n - i : JN_KEYS_IN;
    k = m == 1 ? 1 : m <= JN_KEYS_IN_SMALL ? JN_KEYS_IN_SMALL : JN_KEYS_IN;
    st = k == 1 ? jn_assoc_slot(L, a, JN_AS_HAS, "has", &rc)
       : k == JN_KEYS_IN ? jn_assoc_slot(L, a, JN_AS_HAS_IN, "has_in", &rc)
       : jn_assoc_slot(L, a, JN_AS_HAS_IN_SMALL, "has_in_small", &rc);
    if (st == NULL) return jn_error_result(L, c, rc, NULL);
    jn_assoc_bindsource(L, a, self, st, 1);
    bind_chunk(L, c, st, arr, &keys[i], m, k);
    rc = jn_conn_step(L, c, st);
    if (rc != SQLITE_ROW) return jn_error_finish(L, c, st, rc, SQLITE_ROW);
    found += jn_e_col_int64(c->eng, st, 0);
    jn_e_reset(c->eng, st);
  }
  lua_pushboolean(L, found == (sqlite3_int64)n);
  return 1;
}

/* Body of has under jn_conn_atomic, for more keys than one statement takes (a
** transaction, so every chunk sees the same links): [w, inst, keys, n]. */
int jn_assoc_hasbody(lua_State *L) {
  jn_Assoc *a = (jn_Assoc *)lua_touserdata(L, lua_upvalueindex(1));
  (void)jn_conn_bodywrite(L);
  return jn_assoc_hasrun(L, a, 2, 3, (int)lua_tointeger(L, 4));
}




/* Body of create under jn_conn_atomic: [w, inst, values, thr|nil, target model]. */
int jn_assoc_createbody(lua_State *L) {
  jn_Write *w = jn_conn_bodywrite(L);
  jn_Assoc *a = (jn_Assoc *)lua_touserdata(L, lua_upvalueindex(1));
  jn_Conn *c = w->c;
  jn_Key *k;
  int inst, rc, arr, jmodel, thr = lua_isnil(L, 4) ? 0 : 4;
  if ((rc = jn_conn_writeguard(L, w)) != SQLITE_OK) return jn_error_result(L, c, rc, NULL);
  inst = jn_inst_build(L, a->target, 5, 3, jn_assoc_method(L));
  rc = jn_inst_insert(L, inst);
  if (rc != SQLITE_OK) return jn_error_result(L, c, rc, NULL);
  k = new_keys(L, 1);
  arr = lua_gettop(L);
  lua_pushvalue(L, inst);
  to_key(L, a, -1, 1, k, arr, jn_assoc_method(L));
  lua_pop(L, 1);
  jmodel = push_through(L);
  if (thr && lua_isfunction(L, thr)) {   /* through = function(target): its values for the new one */
    if (jn_assoc_pertarget(L, a, inst, 1, arr, 1, thr, 0) < 0) return jn_error_result(L, c, JN_VALIDATION, NULL);
    if (lua_istable(L, -1)) lua_rawgeti(L, -1, 1);
    thr = lua_istable(L, -1) ? lua_gettop(L) : 0;
  }
  if (thr || through_fdefaults(L, a, jmodel)) rc = insert_row(L, a, 2, thr, k, jmodel);
  else rc = insert_keys(L, w, a, 2, arr, k, 1, NULL, 0, 0, 1);
  if (rc != SQLITE_OK) return link_fail(L, a, rc, 2, k, 1, NULL, 0, 0);
  lua_pushvalue(L, inst);
  return 1;
}

/* }====== */

/* {====== Declaring */

/* The field named by opts[key] (or dflt when absent) in m; raises if none. */
static int opt_field(lua_State *L, int optsidx, const char *key, jn_Model *m, int dflt,
                     const char *ctx) {
  int f;
  lua_getfield(L, optsidx, key);
  if (lua_isnil(L, -1)) {
    lua_pop(L, 1);
    if (dflt < 0) luaL_error(L, "%s: missing option '%s'", ctx, key);
    return dflt;
  }
  if (lua_type(L, -1) != LUA_TSTRING)
    luaL_error(L, "%s: bad option '%s' (field name expected, got %s)", ctx, key, luaL_typename(L, -1));
  f = jn_schema_field(L, m, -1);
  if (f < 0)
    luaL_error(L, "%s: bad option '%s' ('%s' is not a field of %s; declare it)", ctx, key,
               lua_tostring(L, -1), m->name);
  lua_pop(L, 1);
  return f;
}

/* Keep the SQL of get, and of get with every junction column, in the
** uservalue at uv (b: a buffer to write it in). */
static void btm_get_sql(lua_State *L, jn_Assoc *a, int uv, jn_Buf *b) {
  jn_Model *j = a->through;
  int i, k;
  for (i = 0; i < 2; i++) {
    b->n = 0;
    jn_buf_adds(L, b, "SELECT ");
    for (k = 0; k < a->target->nfields; k++) {
      if (k) jn_buf_adds(L, b, ", ");
      jn_buf_addident(L, b, "t", a->target->f[k].col);
    }
    for (k = 0; i && k < j->nfields; k++) {
      jn_buf_adds(L, b, ", ");
      jn_buf_addident(L, b, "j", j->f[k].col);
    }
    jn_assoc_from(L, a, b);
    jn_buf_adds(L, b, " WHERE ");
    jn_assoc_link(L, a, b);
    jn_buf_adds(L, b, " = ?");
    lua_pushlstring(L, b->p, b->n);
    lua_setfield(L, uv, i ? "get_through" : "get");
  }
}

/* Generate and keep the fixed SQL of a belongsToMany (uservalue at uv). */
static void btm_sql(lua_State *L, jn_Assoc *a, int uv) {
  jn_Buf b;
  int i;
  jn_Model *j = a->through;
  jn_buf_init(L, &b);
  btm_get_sql(L, a, uv, &b);
  b.n = 0;
  jn_buf_adds(L, &b, "SELECT ");
  jn_buf_addident(L, &b, NULL, j->f[a->other].col);
  jn_buf_adds(L, &b, " FROM ");
  jn_buf_adds(L, &b, j->qtable);
  jn_buf_adds(L, &b, " WHERE ");
  jn_buf_addident(L, &b, NULL, j->f[a->fk].col);
  jn_buf_adds(L, &b, " = ?");
  lua_pushlstring(L, b.p, b.n);
  lua_setfield(L, uv, "keys");
  b.n = 0;
  jn_buf_adds(L, &b, "SELECT count(*) FROM ");
  jn_buf_adds(L, &b, j->qtable);
  jn_buf_adds(L, &b, " WHERE ");
  jn_buf_addident(L, &b, NULL, j->f[a->fk].col);
  jn_buf_adds(L, &b, " = ?");
  lua_pushlstring(L, b.p, b.n);
  lua_setfield(L, uv, "count");
  for (i = 0; i < 3; i++) {   /* has: one key, a small chunk, a full chunk */
    static const char *const has_keys[] = { "has", "has_in_small", "has_in" };
    b.n = 0;
    jn_buf_adds(L, &b, i ? "SELECT count(DISTINCT " : "SELECT EXISTS (SELECT 1");
    if (i) {
      jn_buf_addident(L, &b, NULL, j->f[a->other].col);
      jn_buf_adds(L, &b, ")");
    }
    jn_buf_adds(L, &b, " FROM ");
    jn_buf_adds(L, &b, j->qtable);
    jn_buf_adds(L, &b, " WHERE ");
    jn_buf_addident(L, &b, NULL, j->f[a->fk].col);
    jn_buf_adds(L, &b, " = ?1 AND ");
    jn_buf_addident(L, &b, NULL, j->f[a->other].col);
    if (i) add_in_list(L, &b, i == 1 ? JN_KEYS_IN_SMALL : JN_KEYS_IN);
    else jn_buf_adds(L, &b, " = ?2)");
    lua_pushlstring(L, b.p, b.n);
    lua_setfield(L, uv, has_keys[i]);
  }
  lua_pop(L, 1);
}

/* Read the keys of an association of kind from opts (at 5): the source's
** and target's fields, and for belongsToMany the junction (set in the
** uservalue at uv) and its two key fields. */
static void declare_keys(lua_State *L, jn_Assoc *a, int uv, const char *ctx) {
  jn_Model *src = a->source, *tgt = a->target, *j;
  int i;
  switch (a->kind) {
    case JN_A_BELONGS_TO:
      a->source_key = opt_field(L, 5, "foreignKey", src, -1, ctx);
      a->target_key = opt_field(L, 5, "targetKey", tgt, tgt->pk, ctx);
      return;
    case JN_A_HAS_ONE:
    case JN_A_HAS_MANY:
      a->source_key = opt_field(L, 5, "sourceKey", src, src->pk, ctx);
      a->target_key = opt_field(L, 5, "foreignKey", tgt, -1, ctx);
      return;
    default: break;
  }
  lua_getfield(L, 5, "through");
  j = (jn_Model *)luaL_testudata(L, -1, JN_MODEL_MT);
  if (j == NULL) luaL_error(L, "%s: missing option 'through' (the junction model)", ctx);
  if (j->conn != src->conn)
    luaL_error(L, "%s: %s (through) belongs to another connection", ctx, j->name);
  jn_schema_checkopen(L, -1);
  lua_setfield(L, uv, "through");
  a->through = j;
  a->source_key = opt_field(L, 5, "sourceKey", src, src->pk, ctx);
  a->target_key = opt_field(L, 5, "targetKey", tgt, tgt->pk, ctx);
  a->fk = opt_field(L, 5, "foreignKey", j, -1, ctx);
  a->other = opt_field(L, 5, "otherKey", j, -1, ctx);
  if (a->fk == a->other) luaL_error(L, "%s: foreignKey and otherKey are the same field", ctx);
  for (i = 0; i < j->nfields; i++)
    if (i != j->pk && i != a->fk && i != a->other && i != j->created && i != j->updated)
      a->through_extra = 1;
}

/* Make the association (at 7) known by its alias: a slot for what include
** loads in the source's associations and lookup, and for belongsToMany the
** junction's name on the target. */
static void declare_names(lua_State *L, jn_Assoc *a) {
  jn_schema_uv(L, 2, JN_UV_ASSOCS);
  lua_pushvalue(L, 7);
  lua_setfield(L, -2, a->alias);
  lua_pop(L, 1);
  jn_schema_lookup(L, a->source);
  lua_pushvalue(L, 7);
  lua_setfield(L, -2, a->alias);
  lua_pop(L, 1);
  if (a->kind != JN_A_BELONGS_TO_MANY) return;
  jn_schema_lookup(L, a->target);
  lua_getfield(L, -1, a->through->name);
  if (lua_isnil(L, -1)) {
    lua_pushvalue(L, 7);
    lua_setfield(L, -3, a->through->name);
  }
  lua_pop(L, 2);
}

/*
** The declaration part of db:_associate(source, kind, target, opts), at
** 1..5: opts has as (the alias), foreignKey, otherKey, sourceKey,
** targetKey, through (a model).  Checks them, leaves the association at 7
** (the alias at 6) and the message context ("db:associate: Post
** belongsToMany 'genres'") in ctx.  Raises on misuse.
*/
jn_Assoc *jn_assoc_declare(lua_State *L, char *ctx, size_t ctxsize) {
  jn_Model *src = jn_schema_checkopen(L, 2);
  int kind = luaL_checkoption(L, 3, NULL, kinds);
  jn_Model *tgt = jn_schema_checkopen(L, 4);
  jn_Assoc *a;
  const char *alias;
  int uv;
  luaL_checktype(L, 5, LUA_TTABLE);
  lua_settop(L, 5);
  lua_getfield(L, 5, "as");
  alias = lua_tostring(L, -1);
  if (alias == NULL) luaL_error(L, "db:associate: %s: missing alias", src->name);
  snprintf(ctx, ctxsize, "db:associate: %s %s '%s'", src->name, kinds[kind], alias);
  {
    char actx[200];
    snprintf(actx, sizeof actx, "%s: bad option 'as'", ctx);
    jn_schema_checkident(L, 6, actx);
  }
  if (src->conn != tgt->conn) luaL_error(L, "%s: %s belongs to another connection", ctx, tgt->name);
  jn_schema_lookup(L, src);
  lua_getfield(L, -1, alias);
  if (!lua_isnil(L, -1))
    luaL_error(L, "%s: the name '%s' is already a field, method or association of %s", ctx, alias,
               src->name);
  lua_pop(L, 2);
  a = (jn_Assoc *)lua_newuserdata(L, sizeof *a);      /* 7 */
  memset(a, 0, sizeof *a);
  luaL_setmetatable(L, JN_ASSOC_MT);
  lua_createtable(L, 0, 12);                           /* 8: uservalue */
  uv = 8;
  lua_pushvalue(L, 2); lua_setfield(L, uv, "source");
  lua_pushvalue(L, 4); lua_setfield(L, uv, "target");
  lua_pushvalue(L, 6); lua_setfield(L, uv, "as");
  a->kind = kind;
  a->source = src;
  a->target = tgt;
  a->alias = alias;
  a->through = tgt;
  a->slot = ++src->nassocs;
  declare_keys(L, a, uv, ctx);
  if (kind != JN_A_BELONGS_TO_MANY) { lua_pushvalue(L, 4); lua_setfield(L, uv, "through"); }
  if (kind == JN_A_BELONGS_TO_MANY) btm_sql(L, a, uv);
  lua_pushvalue(L, uv);
  lua_setuservalue(L, 7);
  declare_names(L, a);
  return a;
}

/* Association:info(): a table, for lua/junction and the REPL. */
static int assoc_info(lua_State *L) {
  jn_Assoc *a = check_assoc(L, 1);
  lua_createtable(L, 0, 8);
  lua_pushstring(L, kinds[a->kind]);
  lua_setfield(L, -2, "kind");
  lua_pushstring(L, a->alias);
  lua_setfield(L, -2, "as");
  lua_getuservalue(L, 1);
  lua_getfield(L, -1, "source");
  lua_setfield(L, -3, "source");
  lua_getfield(L, -1, "target");
  lua_setfield(L, -3, "target");
  if (a->kind == JN_A_BELONGS_TO_MANY) {
    lua_getfield(L, -1, "through");
    lua_setfield(L, -3, "through");
    lua_pushstring(L, a->through->f[a->fk].name);
    lua_setfield(L, -3, "foreignKey");
    lua_pushstring(L, a->through->f[a->other].name);
    lua_setfield(L, -3, "otherKey");
  } else {
    lua_pushstring(L, a->kind == JN_A_BELONGS_TO ? a->source->f[a->source_key].name
                                                 : a->target->f[a->target_key].name);
    lua_setfield(L, -3, "foreignKey");
  }
  lua_pop(L, 1);
  lua_pushstring(L, a->source->f[a->source_key].name);
  lua_setfield(L, -2, "sourceKey");
  lua_pushstring(L, a->target->f[a->target_key].name);
  lua_setfield(L, -2, "targetKey");
  return 1;
}

/*
** The keys of the argument at idx (a list, or one value when single) read
** exactly as the belongsToMany methods read them: pushes an array of the
** distinct key values, in the order given, and returns their number.
** *none (when not NULL) gets how many of them name no row by their type
** alone (see key_fits; jn_assoc_keyfits tells which).  Misuse raises
** naming ctx.  The hasMany and hasOne methods (jn_hasmany.c) read their
** keys through it.
** [-0, +1, e]
*/
int jn_assoc_keylist(lua_State *L, jn_Assoc *a, int idx, int single, const char *ctx, int *none) {
  int n, i, arr;
  jn_Key *keys;
  n = jn_assoc_readkeys(L, a, idx, single, ctx, NULL);
  arr = lua_gettop(L);
  keys = (jn_Key *)lua_touserdata(L, arr);
  if (n > JN_KEYS_SCAN) qsort(keys, (size_t)n, sizeof *keys, pos_cmp);   /* the order given */
  if (none != NULL) *none = count_none(keys, n);
  lua_createtable(L, n, 0);
  for (i = 0; i < n; i++) {
    push_key(L, &keys[i]);
    lua_rawseti(L, -2, i + 1);
  }
  lua_remove(L, arr);
  return n;
}

/*
** Can the key value at idx (one of jn_assoc_keylist's) name a row of a's
** target, by its type?  (key_fits.)
** [-0, +0, e]
*/
int jn_assoc_keyfits(lua_State *L, jn_Assoc *a, int idx) {
  jn_Key *k;
  int arr, fits;
  if (idx < 0) idx = lua_gettop(L) + idx + 1;
  k = new_keys(L, 1);
  arr = lua_gettop(L);
  lua_pushvalue(L, idx);
  to_key(L, a, -1, 1, k, arr, jn_assoc_method(L));
  fits = !k->none;
  lua_pop(L, 2);
  return fits;
}

/*
** Association:_keys(list, single, method): the keys as jn_assoc_keylist
** reads them, for the methods lua/junction keeps (targets with hooks).
** [-3, +1, e]
*/
static int assoc_keys(lua_State *L) {
  jn_Assoc *a = check_assoc(L, 1);
  int single = lua_toboolean(L, 3);
  const char *ctx = luaL_checkstring(L, 4);
  lua_settop(L, 4);
  jn_assoc_keylist(L, a, 2, single, ctx, NULL);
  return 1;
}

static int assoc_tostring(lua_State *L) {
  jn_Assoc *a = check_assoc(L, 1);
  lua_pushfstring(L, "junction.Association %s %s %s as '%s'", a->source->name, kinds[a->kind],
                  a->target->name, a->alias);
  return 1;
}

/* }====== */

static const luaL_Reg assoc_meta[] = {
  {"__tostring", assoc_tostring},
  {NULL, NULL}
};

/* Register the association type. */
void jn_assoc_open(lua_State *L) {
  luaL_newmetatable(L, JN_ASSOC_MT);
  luaL_setfuncs(L, assoc_meta, 0);
  lua_newtable(L);
  lua_pushcfunction(L, assoc_info);
  lua_setfield(L, -2, "info");
  lua_pushcfunction(L, assoc_keys);
  lua_setfield(L, -2, "_keys");
  lua_setfield(L, -2, "__index");
  lua_pop(L, 1);
}
