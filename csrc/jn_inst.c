/*
** jn_inst.c: instances, the rows as userdata.
**
** An instance is a jn_Inst (its model, whether its row exists, one dirty
** bit per field) with its field values, its model (which it keeps alive)
** and, under string keys, what eager loading attached (post.Genres), the
** junction row of a belongsToMany result (genre.TagPostGenre) and the like:
** on Lua 5.4 in its user values, elsewhere in its uservalue table (the
** section "Where an instance keeps its values" below).  Every instance of
** every model shares the one junction.Instance metatable; the model's
** lookup table resolves a name to a field index, a method or an
** association slot.
*/
#include "jn.h"
#include <stdio.h>
#include <time.h>

#if defined(__GNUC__)
#define JN_NOINLINE __attribute__((noinline))
#else
#define JN_NOINLINE
#endif

#define DIRTY_SET(i, k)    ((i)->dirty[(k) >> 3] |= (unsigned char)(1u << ((k) & 7)))
#define DIRTY_CLR(i, k)    ((i)->dirty[(k) >> 3] &= (unsigned char)~(1u << ((k) & 7)))
#define DIRTY_GET(i, k)    (((i)->dirty[(k) >> 3] >> ((k) & 7)) & 1u)
#define DIRTY_BYTES(m)     (((size_t)(m)->nfields + 7) / 8)
/* an instance's allocation: its dirty bits, then the journal's copy of them */
#define INST_SIZE(m)       (offsetof(jn_Inst, dirty) + 2 * DIRTY_BYTES(m) + 1)
#define JOURNAL_DIRTY(i)   ((i)->dirty + DIRTY_BYTES((i)->model))

/* {====== Where an instance keeps its values: the one place that knows
**
** Lua 5.4: one allocation, lua_newuserdatauv with nfields + 1 user values:
** user value 1 is the extras table, the field values are user values
** 2 .. nfields + 1 (strings the interned Lua strings a read made: no copy,
** repeated values shared).  The extras table holds the model at [1] (which
** keeps it alive) and, under string keys, what eager loading attached
** (post.Genres), the junction row of a belongsToMany result
** (genre.TagPostGenre), the values a find read by their alias and VIRTUAL
** fields' values.  Until an instance needs one of those, its extras table
** is one table shared by every instance of its model (JN_UV_SHARED in the
** model's uservalue, holding only the model): a row read costs the
** userdata alone.  The first extra gives the instance its own table
** (own_extras), the model at [1] in it too.  An instance read with an
** include has one more user value per association of its model, after
** the fields (jn_Assoc.slot): what the include loads goes there, and such
** a parent needs no table of its own.
**
** Lua 5.1, LuaJIT and 5.3: one uservalue table, the field values at
** 1 .. nfields, the model at nfields + 1, the extras under string keys in
** the same table.  (Holding the values in a C array of the userdata there
** was measured and lost on memory: docs/PERFORMANCE.md "Rows".)
**
** Either way the extras are the string keys of one table (jn_inst_extras),
** where the model sits at MODEL_KEY.
*/

#if LUA_VERSION_NUM >= 504
#define MODEL_KEY(m)       ((void)(m), 1)
#define FIELD_UV(f)        ((f) + 2)
#define SLOT_UV(m, k)      ((m)->nfields + 1 + (k))

/* The association slots of an instance of m read with room for nrec
** extras (an include's parents): one per association of m. */
static int slots_for(const jn_Model *m, int nrec) {
  return nrec > 0 && m->nassocs <= 255 ? m->nassocs : 0;
}

static jn_Inst *alloc_inst(lua_State *L, jn_Model *m, int nrec) {
  return (jn_Inst *)lua_newuserdatauv(L, INST_SIZE(m), m->nfields + 1 + slots_for(m, nrec));
}

/* Push the extras table the instances of the model at modelidx share:
** made on first use, kept in the model's uservalue. [-0, +1, m] */
static void push_shared(lua_State *L, int modelidx) {
  lua_getiuservalue(L, modelidx, 1);
  if (lua_rawgeti(L, -1, JN_UV_SHARED) != LUA_TTABLE) {
    lua_pop(L, 1);
    lua_createtable(L, 1, 0);
    lua_pushvalue(L, modelidx);
    lua_rawseti(L, -2, 1);
    lua_pushvalue(L, -1);
    lua_rawseti(L, -3, JN_UV_SHARED);
  }
  lua_replace(L, -2);
}

/* Give the new instance on top its values' home, before its fields are
** put (put_field) with the instance on top again. [-0, +0, m] */
static void begin_values(lua_State *L, jn_Model *m, int modelidx, int nrec) {
  jn_Inst *inst = (jn_Inst *)lua_touserdata(L, -1);
  inst->nrec = (unsigned char)(nrec < 255 ? nrec : 255);
  inst->nslots = (unsigned char)slots_for(m, nrec);
  push_shared(L, modelidx);
  lua_setiuservalue(L, -2, 1);
}

/* Set field f of the instance below the value on top (pops it). */
#define put_field(L, m, f) ((void)lua_setiuservalue((L), -2, FIELD_UV(f)))
#define end_values(L)      ((void)0)

/* Push the value of field f of the instance at idx. [-0, +1, -] */
static void get_value(lua_State *L, int idx, int f) {
  lua_getiuservalue(L, idx, FIELD_UV(f));
}

/* Set field f of the instance at idx (absolute) to the value on top. [-1, +0, -] */
static void set_value(lua_State *L, int idx, int f) {
  lua_setiuservalue(L, idx, FIELD_UV(f));
}

/* For a function that reads or writes many fields of one instance (at
** idx, absolute): push_values pushes what get_at and set_at take as vals
** (elsewhere the values table; here a nil that keeps the stack alike). */
#define push_values(L, idx)       lua_pushnil(L)
#define get_at(L, idx, vals, f)   ((void)(vals), (void)lua_getiuservalue((L), (idx), FIELD_UV(f)))
#define set_at(L, idx, vals, f)   ((void)(vals), (void)lua_setiuservalue((L), (idx), FIELD_UV(f)))
/* Push the value of field f for a C function to return: it may leave
** more below it (elsewhere the values table). */
static void push_result(lua_State *L, int idx, int f) {
  lua_getiuservalue(L, idx, FIELD_UV(f));
}

/* Push the table holding the model and the extras of the instance at idx. */
static void push_extras(lua_State *L, int idx) {
  lua_getiuservalue(L, idx, 1);
}

/* Push association slot k (1 .. inst->nslots) of the instance at idx. */
static void push_slot(lua_State *L, int idx, const jn_Inst *inst, int k) {
  lua_getiuservalue(L, idx, SLOT_UV(inst->model, k));
}

/* Set association slot k of the instance at idx (absolute) to the value on top. */
static void set_slot(lua_State *L, int idx, const jn_Inst *inst, int k) {
  lua_setiuservalue(L, idx, SLOT_UV(inst->model, k));
}

/* Push the instance's own extras table (idx absolute), made on first need
** (sized by the hint of the read that made it). [-0, +1, m] */
static void own_extras(lua_State *L, int idx, jn_Inst *inst) {
  lua_getiuservalue(L, idx, 1);
  if (inst->ownextras) return;
  lua_createtable(L, 1, inst->nrec > 0 ? inst->nrec : 1);
  lua_rawgeti(L, -2, 1);                /* the model, from the shared table */
  lua_rawseti(L, -2, 1);
  lua_replace(L, -2);
  lua_pushvalue(L, -1);
  lua_setiuservalue(L, idx, 1);
  inst->ownextras = 1;
}

#else
#define MODEL_KEY(m)       ((m)->nfields + 1)

static jn_Inst *alloc_inst(lua_State *L, jn_Model *m, int nrec) {
  (void)nrec;
  return (jn_Inst *)lua_newuserdata(L, INST_SIZE(m));
}

/* Push the new instance's table (its values are put in it, then
** end_values sets it), the model in it. [-0, +1, m] */
static void begin_values(lua_State *L, jn_Model *m, int modelidx, int nrec) {
  lua_createtable(L, m->nfields + 1, nrec);
  lua_pushvalue(L, modelidx);
  lua_rawseti(L, -2, m->nfields + 1);
}

#define put_field(L, m, f) lua_rawseti((L), -2, (f) + 1)
#define end_values(L)      ((void)lua_setuservalue((L), -2))

static void get_value(lua_State *L, int idx, int f) {
  lua_getuservalue(L, idx);
  lua_rawgeti(L, -1, f + 1);
  lua_replace(L, -2);   /* the value over its table: one copy, where a remove rotates */
}

static void set_value(lua_State *L, int idx, int f) {
  lua_getuservalue(L, idx);
  lua_insert(L, -2);
  lua_rawseti(L, -2, f + 1);
  lua_pop(L, 1);
}

#define push_values(L, idx)       ((void)lua_getuservalue((L), (idx)))
#define get_at(L, idx, vals, f)   ((void)(idx), (void)lua_rawgeti((L), (vals), (f) + 1))
#define set_at(L, idx, vals, f)   ((void)(idx), lua_rawseti((L), (vals), (f) + 1))
static void push_result(lua_State *L, int idx, int f) {
  lua_getuservalue(L, idx);
  lua_rawgeti(L, -1, f + 1);
}

static void push_extras(lua_State *L, int idx) {
  lua_getuservalue(L, idx);
}

/* no association slots here (jn_Inst.nslots is 0): never called */
static void push_slot(lua_State *L, int idx, const jn_Inst *inst, int k) {
  (void)idx; (void)inst; (void)k;
  lua_pushnil(L);
}

static void set_slot(lua_State *L, int idx, const jn_Inst *inst, int k) {
  (void)idx; (void)inst; (void)k;
  lua_pop(L, 1);
}

static void own_extras(lua_State *L, int idx, jn_Inst *inst) {
  inst->ownextras = 1;   /* its table may hold extras now */
  lua_getuservalue(L, idx);
}
#endif

/* Push a new instance of the model at modelidx, no value set and no row:
** the caller puts its fields (put_field) and ends with end_values.
** [-0, +1 (+2 until end_values, elsewhere than 5.4), m] */
static jn_Inst *start_inst(lua_State *L, jn_Model *m, int modelidx, int mtidx, int nrec) {
  jn_Inst *inst = alloc_inst(L, m, nrec);
  memset(inst, 0, INST_SIZE(m));
  inst->model = m;
  m->sealed = 1;   /* its dirty bits and values are sized by nfields */
  lua_pushvalue(L, mtidx);
  lua_setmetatable(L, -2);
  begin_values(L, m, modelidx, nrec);
  return inst;
}

/* Push the value of field (0-based) of the instance at instidx. [-0, +1, -] */
void jn_inst_get(lua_State *L, int instidx, int field) {
  get_value(L, instidx, field);
}

/* Set field (0-based) of the instance at instidx to the value on top,
** popping it, without marking it changed: the raw store under every
** write of a field. [-1, +0, -] */
void jn_inst_set(lua_State *L, int instidx, int field) {
  if (instidx < 0) instidx = lua_gettop(L) + instidx + 1;
  set_value(L, instidx, field);
}

/* Push the model of the instance at instidx. [-0, +1, -] */
void jn_inst_pushmodel(lua_State *L, int instidx) {
  jn_Inst *inst = (jn_Inst *)lua_touserdata(L, instidx);
  push_extras(L, instidx);
  lua_rawgeti(L, -1, MODEL_KEY(inst->model));
  lua_replace(L, -2);
}

/*
** Push the table of the extras of the instance at instidx (string keys:
** loaded associations, the junction row, alias values, VIRTUAL values):
** with own, the instance's own table, made on first need, to write into;
** without, a table only to read (on 5.4 perhaps the one its model's
** instances share: never write into that). [-0, +1, m]
*/
void jn_inst_extras(lua_State *L, int instidx, int own) {
  if (instidx < 0) instidx = lua_gettop(L) + instidx + 1;
  if (own) own_extras(L, instidx, (jn_Inst *)lua_touserdata(L, instidx));
  else push_extras(L, instidx);
}

/* Push the extra named name of the instance at instidx. [-0, +1, -] */
void jn_inst_getextra(lua_State *L, int instidx, const char *name) {
  push_extras(L, instidx);
  lua_getfield(L, -1, name);
  lua_replace(L, -2);
}

/* Set the extra named name of the instance at instidx to the value on
** top, popping it. [-1, +0, m] */
void jn_inst_setextra(lua_State *L, int instidx, const char *name) {
  if (instidx < 0) instidx = lua_gettop(L) + instidx + 1;
  jn_inst_extras(L, instidx, 1);
  lua_insert(L, -2);
  lua_setfield(L, -2, name);
  lua_pop(L, 1);
}

/* Does the instance have a slot for the association a (of its model)? */
static int has_slot(const jn_Inst *inst, const jn_Assoc *a) {
  return a->source == inst->model && a->slot >= 1 && a->slot <= inst->nslots;
}

/* Set what eager loading loaded for the association a of the instance at
** instidx (inst.<alias>) to the value on top, popping it: in its slot when
** it has one, else among its extras. [-1, +0, m] */
void jn_inst_setassoc(lua_State *L, int instidx, const jn_Assoc *a) {
  jn_Inst *inst;
  if (instidx < 0) instidx = lua_gettop(L) + instidx + 1;
  inst = (jn_Inst *)lua_touserdata(L, instidx);
  if (has_slot(inst, a)) set_slot(L, instidx, inst, a->slot);
  else jn_inst_setextra(L, instidx, a->alias);
}

/* Push a table alias -> value of the associations loaded into the slots
** of the instance at idx and return 1, or push nothing and return 0 when
** it has no slots.  For toTable and tostring. [-0, +(0|1), m] */
static int push_slots(lua_State *L, int idx, const jn_Inst *inst) {
  int t;
  if (inst->nslots == 0) return 0;
  lua_newtable(L);
  t = lua_gettop(L);
  jn_inst_pushmodel(L, idx);
  jn_schema_uv(L, t + 1, JN_UV_ASSOCS);   /* t + 2: alias -> association */
  lua_pushnil(L);
  while (lua_istable(L, t + 2) && lua_next(L, t + 2) != 0) {
    const jn_Assoc *a = (const jn_Assoc *)luaL_testudata(L, -1, JN_ASSOC_MT);
    if (a != NULL && has_slot(inst, a)) {
      push_slot(L, idx, inst, a->slot);
      lua_pushvalue(L, -3);
      lua_insert(L, -2);
      lua_rawset(L, t);
    }
    lua_pop(L, 1);
  }
  lua_settop(L, t);
  return 1;
}

/* Has the instance at idx anything loaded into its association slots? */
static int any_slot(lua_State *L, int idx, const jn_Inst *inst) {
  int k, any = 0;
  for (k = 1; k <= inst->nslots && !any; k++) {
    push_slot(L, idx, inst, k);
    any = !lua_isnil(L, -1);
    lua_pop(L, 1);
  }
  return any;
}

/* }====== */

/* {====== Creating */

jn_Inst *jn_inst_test(lua_State *L, int idx) {
  return (jn_Inst *)luaL_testudata(L, idx, JN_INST_MT);
}

/* As jn_inst_test, for a caller that holds a connection: the metatable's
** address is compared with the one the connection keeps, with no registry
** lookup (the check of every element of a key list). */
jn_Inst *jn_inst_of(lua_State *L, int idx, const jn_Conn *c) {
  void *p;
  int ok;
  if (lua_type(L, idx) != LUA_TUSERDATA || !lua_getmetatable(L, idx)) return NULL;
  ok = lua_topointer(L, -1) == c->inst_mt;
  p = lua_touserdata(L, idx);
  lua_pop(L, 1);
  return ok ? (jn_Inst *)p : NULL;
}

/* Push the metatable of instances. [-0, +1, -] */
static void push_instmt(lua_State *L, jn_Conn *c) {
  if (c->instmt_ref != LUA_NOREF) lua_rawgeti(L, LUA_REGISTRYINDEX, c->instmt_ref);
  else luaL_getmetatable(L, JN_INST_MT);
}

/* Push a new instance with no value and no row. [-0, +1, m] */
static jn_Inst *new_inst(lua_State *L, jn_Model *m, int modelidx) {
  jn_Inst *inst;
  if (modelidx < 0) modelidx = lua_gettop(L) + modelidx + 1;
  push_instmt(L, m->conn);
  inst = start_inst(L, m, modelidx, lua_gettop(L), 0);
  end_values(L);
  lua_remove(L, -2);   /* the metatable */
  return inst;
}

/*
** Push an instance made from the current row of st: result columns col0,
** col0+1, ... hold fields cols[0], cols[1], ... (all fields in order when
** cols is NULL).  mtidx is the stack index of the instance metatable; nrec
** the number of string keys (loaded associations) to make room for, so that
** eager loading does not rehash every instance it attaches to.
** This is the hot path of every read: on 5.4 one userdata and the values,
** elsewhere one userdata, one table, the values.
** [-0, +1, m]
*/
void jn_inst_fromrow(lua_State *L, jn_Model *m, int modelidx, int mtidx,
                     jn_St *st, const int *cols, int ncols, int col0, int nrec) {
  jn_Inst *inst = start_inst(L, m, modelidx, mtidx, nrec);
  int k;
  inst->saved = 1;
  for (k = 0; k < ncols; k++) {
    int f = cols ? cols[k] : k;
    jn_stmt_pushcolumn(L, m->conn->eng, st, col0 + k, m->f[f].type);
    put_field(L, m, f);
  }
  end_values(L);
}

/*
** Raise unless the value at idx is one a column could hold at all (nil, a
** boolean, a number, a string; a table in a JSON field): a function, or a
** table elsewhere, is a mistake in the program.  Whether the value suits
** the field's type is data, checked when the row is written (jn_inst_value).
*/
static void check_storable(lua_State *L, jn_Model *m, int f, int idx, const char *ctx) {
  if (!jn_value_storable(L, idx, m->f[f].type))
    luaL_error(L, "%s: bad value for field '%s.%s' (%s cannot be stored)", ctx, m->name,
               m->f[f].name, luaL_typename(L, idx));
}

/* {====== Getters, setters and VIRTUAL fields
**
** Only a model that declares them (jn_Model.accessors) looks here: its
** accessors table (registry JN_ACCESSORS, by model) maps a name to
** { get, set, field, name }.  The get and set functions are user code run
** from __index, __newindex, build and toTable, that is from C: they may
** raise, which becomes an error naming the field, and they must not yield
** (a yield inside one is such an error).  A VIRTUAL field has no column:
** without a set, what is assigned to it is kept in the instance's
** uservalue under its name.
*/

static void set_named(lua_State *L, int instidx, jn_Inst *inst, int keyidx, int validx,
                      const char *ctx);

/* Push the accessor entry of the name at keyidx, when the model has one:
** returns 1, or 0 with nothing pushed. [-0, +(0|1), -] */
static int push_accessor(lua_State *L, jn_Model *m, int keyidx) {
  if (keyidx < 0) keyidx = lua_gettop(L) + keyidx + 1;
  lua_getfield(L, LUA_REGISTRYINDEX, JN_ACCESSORS);
  lua_pushlightuserdata(L, m);
  lua_rawget(L, -2);
  if (lua_istable(L, -1)) {
    lua_pushvalue(L, keyidx);
    lua_rawget(L, -2);
    if (lua_istable(L, -1)) {
      lua_replace(L, -3);
      lua_pop(L, 1);
      return 1;
    }
    lua_pop(L, 1);
  }
  lua_pop(L, 2);
  return 0;
}

/*
** Call the get or set (what) of the accessor at entryidx, below its nargs
** arguments, for nres results.  With guard (in the middle of a create) the
** connection cannot be closed meanwhile; a raise, or a yield, inside
** becomes an error naming model and field.
** [-(nargs+1), +nres, e]
*/
static void call_accessor(lua_State *L, jn_Model *m, int entryidx, const char *what, int nargs,
                          int nres, int guard) {
  int status;
  m->conn->incall += guard;
  status = lua_pcall(L, nargs, nres, 0);
  m->conn->incall -= guard;
  if (status != LUA_OK) {
    const char *msg = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : luaL_typename(L, -1);
    lua_getfield(L, entryidx, "name");
    luaL_error(L, "%s.%s: its %s function failed: %s%s", m->name, lua_tostring(L, -1), what, msg,
               strstr(msg, "yield") != NULL ? " (a get or set function must not yield)" : "");
  }
}

/* Push what the accessor at entryidx holds in the instance at instidx
** without its get: a field's value, or a VIRTUAL field's. [-0, +1, -] */
static void raw_get(lua_State *L, int instidx, int entryidx) {
  lua_getfield(L, entryidx, "field");
  if (lua_type(L, -1) == LUA_TNUMBER) {
    int f = (int)lua_tointeger(L, -1);
    lua_pop(L, 1);
    jn_inst_get(L, instidx, f - 1);
  } else {
    lua_pop(L, 1);
    jn_inst_extras(L, instidx, 0);
    lua_getfield(L, entryidx, "name");
    lua_rawget(L, -2);
    lua_remove(L, -2);
  }
}

/* Set the accessor at entryidx of the instance at instidx to the value at
** validx without its set.  [-0, +0, e] */
static void raw_set(lua_State *L, jn_Inst *inst, int instidx, int entryidx, int keyidx, int validx,
                    const char *ctx) {
  lua_getfield(L, entryidx, "field");
  if (lua_type(L, -1) == LUA_TNUMBER) {
    lua_pop(L, 1);
    set_named(L, instidx, inst, keyidx, validx, ctx);
  } else {
    lua_pop(L, 1);
    jn_inst_extras(L, instidx, 1);
    lua_getfield(L, entryidx, "name");
    lua_pushvalue(L, validx);
    lua_rawset(L, -3);
    lua_pop(L, 1);
  }
}

/* Push the value of the accessor at entryidx: its get's result, else raw. */
static void accessor_get(lua_State *L, jn_Model *m, int instidx, int entryidx) {
  lua_getfield(L, entryidx, "get");
  if (lua_isfunction(L, -1)) {
    lua_pushvalue(L, instidx);
    call_accessor(L, m, entryidx, "get", 1, 1, 0);
    return;
  }
  lua_pop(L, 1);
  raw_get(L, instidx, entryidx);
}

/* Assign the value at validx through the accessor at entryidx: its set,
** else raw. */
static void accessor_set(lua_State *L, jn_Inst *inst, int instidx, int entryidx, int keyidx,
                         int validx, const char *ctx, int guard) {
  lua_getfield(L, entryidx, "set");
  if (lua_isfunction(L, -1)) {
    lua_pushvalue(L, instidx);
    lua_pushvalue(L, validx);
    call_accessor(L, inst->model, entryidx, "set", 2, 0, guard);
    return;
  }
  lua_pop(L, 1);
  raw_set(L, inst, instidx, entryidx, keyidx, validx, ctx);
}

/* inst[key] = value as a user writes it: through a set when there is one. */
static void assign(lua_State *L, jn_Inst *inst, int instidx, int keyidx, int validx,
                   const char *ctx, int guard) {
  if (inst->model->accessors && push_accessor(L, inst->model, keyidx)) {
    accessor_set(L, inst, instidx, lua_gettop(L), keyidx, validx, ctx, guard);
    lua_pop(L, 1);
    return;
  }
  set_named(L, instidx, inst, keyidx, validx, ctx);
}

/* }====== */

/*
** Take the values of the table at valuesidx into the new instance at
** instidx (every key a field, marked changed), its values at instidx + 2
** (push_values); the names that go through a set, or are VIRTUAL, are
** appended as name, value to the list at instidx + 1 for later.
** [-0, +0, e]
*/
static void build_take(lua_State *L, jn_Inst *inst, int instidx, int valuesidx, const char *ctx) {
  jn_Model *m = inst->model;
  int lookup;
  jn_schema_lookup(L, m);   /* fetched once: each name is one lookup in it */
  lookup = lua_gettop(L);
  lua_pushnil(L);
  while (lua_next(L, valuesidx) != 0) {
    int f;
    if (m->accessors && lua_type(L, -2) == LUA_TSTRING && push_accessor(L, m, -2)) {
      int later;
      lua_getfield(L, -1, "set");
      lua_getfield(L, -2, "field");
      later = lua_isfunction(L, -2) || lua_isnil(L, -1);
      lua_pop(L, 3);
      if (later) {
        int n = (int)lua_rawlen(L, instidx + 1);
        lua_pushvalue(L, -2);
        lua_rawseti(L, instidx + 1, n + 1);
        lua_rawseti(L, instidx + 1, n + 2);
        continue;
      }
    }
    f = -1;
    if (lua_type(L, -2) == LUA_TSTRING) {
      lua_pushvalue(L, -2);
      lua_rawget(L, lookup);
      if (lua_type(L, -1) == LUA_TNUMBER) f = (int)lua_tointeger(L, -1) - 1;
      lua_pop(L, 1);
    }
    if (f < 0)
      luaL_error(L, "%s: bad field '%s' (no such field in %s)", ctx,
                 lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : luaL_typename(L, -2),
                 m->name);
    if (jn_scalar_isnull(L, -1)) {   /* junction.null: NULL said explicitly, no default */
      lua_pop(L, 1);
      lua_pushnil(L);
    }
    check_storable(L, m, f, -1, ctx);
    set_at(L, instidx, instidx + 2, f);
    DIRTY_SET(inst, f);
  }
  lua_pop(L, 1);
}

/* Give the declared defaults (of the model at modelidx) to the fields of
** the new instance at instidx (its values at instidx + 2) that the values
** left out.
** [-0, +0, e] */
static void build_defaults(lua_State *L, jn_Inst *inst, int instidx, int modelidx,
                           const char *ctx) {
  jn_Model *m = inst->model;
  int i;
  for (i = 0; i < m->nfields; i++)   /* most creates give or need none: no table to fetch */
    if ((m->f[i].flags & JN_F_DEFAULT) && !DIRTY_GET(inst, i)) break;
  if (i == m->nfields) return;
  jn_schema_uv(L, modelidx, JN_UV_DEFAULTS);
  for (i = 0; i < m->nfields; i++) {
    if (!(m->f[i].flags & JN_F_DEFAULT) || DIRTY_GET(inst, i)) continue;   /* given */
    lua_rawgeti(L, -1, i + 1);
    if (lua_isfunction(L, -1)) {
      jn_conn_callback(L, m->conn, 0, 1, 0);
      check_storable(L, m, i, -1, ctx);
    }
    set_at(L, instidx, instidx + 2, i);
    DIRTY_SET(inst, i);
  }
  lua_pop(L, 1);
}

/*
** Push a new unsaved instance of the model at modelidx holding the values
** of the table at valuesidx (every key a field), with declared defaults
** for the fields it leaves out.  Returns the instance's stack index.
** [-0, +1, e]
*/
int jn_inst_build(lua_State *L, jn_Model *m, int modelidx, int valuesidx, const char *ctx) {
  jn_Inst *inst;
  int i, instidx;
  if (!lua_isnoneornil(L, valuesidx) && !lua_istable(L, valuesidx))
    luaL_error(L, "%s: bad argument #1 (table of values expected, got %s)", ctx,
               luaL_typename(L, valuesidx));
  inst = new_inst(L, m, modelidx);
  instidx = lua_gettop(L);
  /* instidx + 1: key, value, ... that go through a set, after the rest */
  if (m->accessors) lua_newtable(L); else lua_pushnil(L);
  push_values(L, instidx);              /* instidx + 2 */
  if (lua_istable(L, valuesidx)) build_take(L, inst, instidx, valuesidx, ctx);
  build_defaults(L, inst, instidx, modelidx, ctx);
  for (i = 1; m->accessors && i <= (int)lua_rawlen(L, instidx + 1); i += 2) {   /* the sets */
    lua_rawgeti(L, instidx + 1, i);
    lua_rawgeti(L, instidx + 1, i + 1);
    assign(L, inst, instidx, lua_gettop(L) - 1, lua_gettop(L), ctx, 1);
    lua_pop(L, 2);
  }
  lua_settop(L, instidx);
  return instidx;
}

/* }====== */

/* {====== Checking values against their fields */

/*
** Append the string at idx quoted, its first max bytes: quotes and
** backslashes escaped, a newline as \n, other control bytes as ?, and
** "..." when it was cut.  [-0, +0, m]
*/
static void add_quoted(lua_State *L, jn_Buf *b, int idx, size_t max) {
  size_t n, i;
  const char *s = lua_tolstring(L, idx, &n);
  jn_buf_addl(L, b, "\"", 1);
  for (i = 0; i < n && i < max; i++) {
    char ch = s[i];
    if (ch == '"' || ch == '\\') { jn_buf_addl(L, b, "\\", 1); jn_buf_addl(L, b, &ch, 1); }
    else if (ch == '\n') jn_buf_adds(L, b, "\\n");
    else if ((unsigned char)ch < 32) jn_buf_adds(L, b, "?");
    else jn_buf_addl(L, b, &ch, 1);
  }
  if (n > max) jn_buf_adds(L, b, "...");
  jn_buf_addl(L, b, "\"", 1);
}

/* Append the value at idx as a message shows it: strings quoted and cut. */
static void add_value(lua_State *L, jn_Buf *b, int idx) {
  if (lua_type(L, idx) == LUA_TSTRING) {
    add_quoted(L, b, idx, 40);
  } else if (lua_type(L, idx) == LUA_TNUMBER) {
    char tmp[48];
    lua_Number d = lua_tonumber(L, idx);
#if !JN_LUA51
    if (lua_isinteger(L, idx)) snprintf(tmp, sizeof tmp, "%lld", (long long)lua_tointeger(L, idx));
    else
#endif
    if (d != d) snprintf(tmp, sizeof tmp, "nan");
    else snprintf(tmp, sizeof tmp, "%.17g", (double)d);
    jn_buf_adds(L, b, tmp);
  } else if (lua_type(L, idx) == LUA_TBOOLEAN) {
    jn_buf_adds(L, b, lua_toboolean(L, idx) ? "true" : "false");
  } else {
    jn_buf_adds(L, b, luaL_typename(L, idx));
  }
}

/*
** Record that field f cannot take the value at validx: errors[name] =
** "Model.field: <value> <reason>" in the table at errsidx, made in that
** slot on the first error.  The reason is on top and is popped.
** [-1, +0, m]
*/
static void add_error(lua_State *L, jn_Model *m, int f, int validx, int errsidx) {
  jn_Buf b;
  if (lua_isnil(L, errsidx)) {
    lua_newtable(L);
    lua_replace(L, errsidx);
  }
  jn_buf_init(L, &b);
  jn_buf_adds(L, &b, m->name);
  jn_buf_adds(L, &b, ".");
  jn_buf_adds(L, &b, m->f[f].name);
  jn_buf_adds(L, &b, ": ");
  if (!lua_isnil(L, validx)) {
    add_value(L, &b, validx);
    jn_buf_adds(L, &b, " ");
  }
  jn_buf_adds(L, &b, lua_tostring(L, b.idx - 1));
  lua_pushlstring(L, b.p, b.n);
  lua_setfield(L, errsidx, m->f[f].name);
  lua_pop(L, 2);   /* the buffer and the reason */
}

/* Record that the value at validx is none of field f's ENUM values. */
static void add_enum_error(lua_State *L, jn_Model *m, int f, int validx, int errsidx) {
  jn_Buf b;
  const char *v;
  jn_buf_init(L, &b);
  jn_buf_adds(L, &b, "is not one of the ENUM's values (");
  for (v = m->f[f].enums; *v != '\0'; v += strlen(v) + 1) {
    if (v != m->f[f].enums) jn_buf_adds(L, &b, ", ");
    lua_pushstring(L, v);
    add_quoted(L, &b, lua_gettop(L), 40);
    lua_pop(L, 1);
  }
  jn_buf_adds(L, &b, ")");
  lua_pushlstring(L, b.p, b.n);
  lua_remove(L, b.idx);
  add_error(L, m, f, validx, errsidx);
}

/*
** The value at idx as field f stores it: pushes the converted value and
** returns 1 (see jn_value_conv), or records the failure in the errors slot
** at errsidx and returns 0, pushing nothing.  nil in a field that does not
** allow NULL is such a failure.
** [-0, +(0|1), m]
*/
int jn_inst_value(lua_State *L, jn_Model *m, int f, int idx, int errsidx) {
  if (idx < 0) idx = lua_gettop(L) + idx + 1;
  if (lua_isnil(L, idx) && (m->f[f].flags & JN_F_NOTNULL)) {
    lua_pushliteral(L, "cannot be null (allowNull is false)");
    add_error(L, m, f, idx, errsidx);
    return 0;
  }
  if (jn_value_conv(L, idx, m->f[f].type, m->f[f].length)) {
    size_t len;
    const char *s;
    if (m->f[f].enums == NULL || lua_isnil(L, -1)) return 1;
    s = lua_tolstring(L, -1, &len);
    if (jn_value_enumhas(m->f[f].enums, s, len)) return 1;
    lua_pop(L, 1);
    add_enum_error(L, m, f, idx, errsidx);
    return 0;
  }
  add_error(L, m, f, idx, errsidx);
  return 0;
}

/*
** Push the failure recorded in the errors table at errsidx: the message
** (the first failing field's, in field order, and how many more) and the
** details { errors = { field = message, ... } }.  Returns JN_VALIDATION,
** for jn_error_result to turn into nil, message, code, details.
** [-0, +2, m]
*/
int jn_inst_invalid(lua_State *L, jn_Model *m, int errsidx) {
  int i, n = 0;
  for (i = 0; i < m->nfields; i++) {
    lua_getfield(L, errsidx, m->f[i].name);
    if (!lua_isnil(L, -1) && n++ == 0) continue;   /* keep the first */
    lua_pop(L, 1);
  }
  if (n > 1) {
    lua_pushfstring(L, " (and %d more field%s)", n - 1, n > 2 ? "s" : "");
    lua_concat(L, 2);
  }
  lua_createtable(L, 0, 1);
  lua_pushvalue(L, errsidx);
  lua_setfield(L, -2, "errors");
  return JN_VALIDATION;
}

/* }====== */

/* {====== Writing rows */

/* Is field i written by an INSERT (insert) or an UPDATE of the instance?
** An INSERT writes every field but an AUTOINCREMENT key left nil; an
** UPDATE the fields changed (by the dirty bits given) and the update stamp. */
static int writes_field(jn_Model *m, const unsigned char *dirty, int insert, int haskey, int i) {
  if (!insert) return ((dirty[i >> 3] >> (i & 7)) & 1u) || i == m->updated;
  return haskey || i != m->pk || !(m->f[i].flags & JN_F_AUTOINC);
}

/*
** Push what a write of the instance at instidx stores, one slot per
** field in field order: each written field's value converted to its type
** (jn_inst_value), the timestamps' text ts (nil when ts is NULL), nil in
** the slots of fields not written.  A value that cannot be stored is
** recorded in the errors slot at errsidx and its raw value fills the slot.
** The slots also pin every value that is bound until the statement is done,
** whatever a log function does to the instance meanwhile.
** [-0, +nfields, m]
*/
static void push_row(lua_State *L, jn_Inst *inst, const unsigned char *dirty, int instidx,
                     int uv, int errsidx, int insert, int haskey, const char *ts, size_t tslen) {
  jn_Model *m = inst->model;
  int i, tsidx = 0;
  luaL_checkstack(L, m->nfields + LUA_MINSTACK, "too many fields");
  for (i = 0; i < m->nfields; i++) {
    if (!writes_field(m, dirty, insert, haskey, i)) { lua_pushnil(L); continue; }
    get_at(L, instidx, uv, i);
    if (i == m->updated || (insert && i == m->created && lua_isnil(L, -1))) {
      lua_pop(L, 1);
      if (ts == NULL) lua_pushnil(L);
      else if (tsidx) lua_pushvalue(L, tsidx);   /* createdAt and updatedAt: one string */
      else { lua_pushlstring(L, ts, tslen); tsidx = lua_gettop(L); }
      continue;
    }
    /* an INTEGER key left nil: SQLite assigns the rowid */
    if (insert && i == m->pk && !haskey && m->f[i].type == JN_T_INTEGER) continue;
    if (jn_inst_value(L, m, i, -1, errsidx)) lua_replace(L, -2);
  }
}

/* Store the written slots (from base + 1) into the instance: it then holds
** exactly what the row holds, and those fields are unchanged. */
static void store_row(lua_State *L, jn_Inst *inst, const unsigned char *dirty, int instidx,
                      int uv, int base, int insert, int haskey) {
  int i;
  for (i = 0; i < inst->model->nfields; i++) {
    if (!writes_field(inst->model, dirty, insert, haskey, i)) continue;
    if (inst->model->f[i].type == JN_T_JSON && lua_type(L, base + 1 + i) == LUA_TSTRING) {
      /* the JSON text read back, as a reload gives it (and not the caller's table) */
      size_t len;
      const char *text = lua_tolstring(L, base + 1 + i, &len);
      if (jn_json_decode(L, text, len) != NULL) lua_error(L);   /* it was just written */
    } else {
      lua_pushvalue(L, base + 1 + i);
    }
    set_at(L, instidx, uv, i);
    DIRTY_CLR(inst, i);
  }
}

/* {====== The transaction journal
**
** A write of an instance inside db:transaction changes the instance at once
** (saved, key, dirty bits, destroyed), but the row only when the transaction
** commits.  So that an instance never claims a write its transaction took
** back, each transaction level keeps a journal of the instances it wrote,
** with each one's state before its first write at that level and the dirty
** bits of every write at that level OR'd in.  When the level rolls back,
** each instance gets that state back and the fields those writes wrote are
** changed again (their values stay as the program set them, so a later save
** writes them); when it commits into an enclosing level, its entries join
** that level's journal.
**
** The state sits in the instance (jserial, jstate, JOURNAL_DIRTY) and the
** journal is an array of instances: a write inside a transaction costs an
** append.  An instance written at an inner level after an outer one keeps
** the outer state in itself and the inner one in a JournalEntry under the
** instance in the inner journal's hash part.  A connection's journals are
** one table, { [depth] = journal }, anchored in its uservalue (make_levels).
*/

/* dst |= src over n bytes of dirty bits. */
static void or_bits(unsigned char *dst, const unsigned char *src, size_t n) {
  size_t i;
  for (i = 0; i < n; i++) dst[i] |= src[i];
}

#define J_SAVED     1
#define J_DESTROYED 2
#define J_KEYNIL    4

typedef struct JournalEntry {
  unsigned char state;      /* J_SAVED | J_DESTROYED | J_KEYNIL */
  unsigned char dirty[1];
} JournalEntry;

/* Push the levels table of connection c and return 1, or push nothing and
** return 0 when it has none yet.  It sits in JN_JOURNALS, a weak table:
** only the connection's uservalue holds it (make_levels). [-0, +(0|1), -] */
static int push_levels(lua_State *L, jn_Conn *c) {
  lua_getfield(L, LUA_REGISTRYINDEX, JN_JOURNALS);
  lua_pushlightuserdata(L, c);
  lua_rawget(L, -2);
  lua_remove(L, -2);
  if (!lua_isnil(L, -1)) return 1;
  lua_pop(L, 1);
  return 0;
}

/* Make and push the levels table of the connection of the instance at
** instidx: kept by the connection's uservalue, so a connection dropped with
** instances in its journals is collected (and its transaction rolled
** back), and found from c through JN_JOURNALS. [-0, +1, m] */
static void make_levels(lua_State *L, int instidx, jn_Conn *c) {
  lua_newtable(L);
  jn_inst_pushmodel(L, instidx);
  jn_schema_uv(L, -1, JN_UV_CONN);
  lua_getuservalue(L, -1);
  lua_pushvalue(L, -4);
  lua_setfield(L, -2, "journals");
  lua_pop(L, 3);
  lua_getfield(L, LUA_REGISTRYINDEX, JN_JOURNALS);
  lua_pushlightuserdata(L, c);
  lua_pushvalue(L, -3);
  lua_rawset(L, -3);
  lua_pop(L, 1);
}

/* Push the journal of level depth in the levels table at lv (made). [-0, +1, m] */
static void push_level(lua_State *L, int lv, int depth) {
  lua_rawgeti(L, lv, depth);
  if (lua_isnil(L, -1)) {
    lua_pop(L, 1);
    lua_newtable(L);
    lua_pushvalue(L, -1);
    lua_rawseti(L, lv, depth);
  }
}

/* Is the transaction level of that serial open on c? */
static int level_open(const jn_Conn *c, unsigned long serial) {
  int i;
  for (i = 0; i < c->txdepth; i++)
    if (c->tx[i].serial == serial) return 1;
  return 0;
}

/* May the statement check (jn_conn_txcheck) roll back the innermost level
** of c (open) as one nobody can end any more?  Not when it is the running
** coroutine's own and its token lives: then every level below is live too. */
static int level_in_doubt(lua_State *L, const jn_Conn *c) {
  const jn_TxFrame *f = &c->tx[c->txdepth - 1];
  return f->abandoned || f->owner != L;
}

/* The instance's state now, as a journal keeps it. */
static unsigned char state_of(lua_State *L, int instidx, jn_Inst *inst) {
  unsigned char st = (unsigned char)((inst->saved ? J_SAVED : 0) | (inst->destroyed ? J_DESTROYED : 0));
  jn_inst_get(L, instidx, inst->model->pk);
  if (lua_isnil(L, -1)) st |= J_KEYNIL;
  lua_pop(L, 1);
  return st;
}

/* The inner-level entry of the instance at instidx in the journal at j. [-0, +0, m] */
static void note_inner(lua_State *L, int instidx, jn_Inst *inst, int j) {
  size_t n = DIRTY_BYTES(inst->model);
  JournalEntry *e;
  lua_pushvalue(L, instidx);
  lua_rawget(L, j);
  e = (JournalEntry *)lua_touserdata(L, -1);
  lua_pop(L, 1);
  if (e != NULL) {
    or_bits(e->dirty, inst->dirty, n);
    return;
  }
  e = (JournalEntry *)lua_newuserdata(L, offsetof(JournalEntry, dirty) + n);
  e->state = state_of(L, instidx, inst);
  memcpy(e->dirty, inst->dirty, n);
  lua_pushvalue(L, instidx);
  lua_insert(L, -2);
  lua_rawset(L, j);
}

/*
** Note in the journal of the open transaction level that the instance at
** instidx is about to be written.  Outside a transaction it does nothing:
** a write there is one statement, done or not.  The level is the one the
** statement will run in: when the innermost level is another coroutine's,
** or its token was collected (level_in_doubt), it may be one nobody can
** end any more (an abandoned coroutine's), and the statement's own check
** would roll it back, undoing this note under a write that then lands in
** the level below; so the check runs first here (the running coroutine's
** own level, the common case, needs none).  When the statement will be refused nothing is noted.
** It raises only for memory, before the write.
** [-0, +0, m]
*/
static void journal_note(lua_State *L, int instidx, jn_Inst *inst) {
  jn_Conn *c = inst->model->conn;
  unsigned long serial;
  size_t n;
  int top;
  if (c->txdepth == 0) return;
  if (level_in_doubt(L, c) && (jn_conn_txcheck(L, c) != SQLITE_OK || c->txdepth == 0)) return;
  serial = c->tx[c->txdepth - 1].serial;
  n = DIRTY_BYTES(inst->model);
  if (inst->jserial == serial) {        /* written at this level before */
    or_bits(JOURNAL_DIRTY(inst), inst->dirty, n);
    return;
  }
  top = lua_gettop(L);
  if (instidx < 0) instidx = top + instidx + 1;
  if (!push_levels(L, c)) make_levels(L, instidx, c);
  push_level(L, top + 1, c->txdepth);
  if (inst->jserial != 0 && level_open(c, inst->jserial)) {
    note_inner(L, instidx, inst, top + 2);
  } else {
    inst->jstate = state_of(L, instidx, inst);
    memcpy(JOURNAL_DIRTY(inst), inst->dirty, n);
    lua_pushvalue(L, instidx);
    lua_rawseti(L, top + 2, (int)lua_rawlen(L, top + 2) + 1);
    inst->jserial = serial;
  }
  lua_settop(L, top);
}

/* Give the instance at idx the state st and the dirty bits of bits back. [-0, +0, -] */
static void journal_undo(lua_State *L, int idx, unsigned char st, const unsigned char *bits) {
  jn_Inst *inst = (jn_Inst *)lua_touserdata(L, idx);
  inst->saved = (st & J_SAVED) != 0;
  inst->destroyed = (st & J_DESTROYED) != 0;
  or_bits(inst->dirty, bits, DIRTY_BYTES(inst->model));
  if (st & J_KEYNIL) {                  /* the key the rolled back INSERT gave */
    lua_pushnil(L);
    jn_inst_set(L, idx, inst->model->pk);
  }
}

/* Undo every instance of the journal at j, of the level of that serial. [-0, +0, -] */
static void journal_rollback(lua_State *L, int j, unsigned long serial) {
  int i, n = (int)lua_rawlen(L, j);
  for (i = 1; i <= n; i++) {
    jn_Inst *inst;
    lua_rawgeti(L, j, i);
    inst = (jn_Inst *)lua_touserdata(L, -1);
    if (inst->jserial == serial) {
      journal_undo(L, lua_gettop(L), inst->jstate, JOURNAL_DIRTY(inst));
      inst->jserial = 0;
    }
    lua_pop(L, 1);
  }
  lua_pushnil(L);
  while (lua_next(L, j) != 0) {         /* the inner entries */
    if (lua_type(L, -2) == LUA_TUSERDATA) {
      const JournalEntry *e = (const JournalEntry *)lua_touserdata(L, -1);
      journal_undo(L, lua_gettop(L) - 1, e->state, e->dirty);
    }
    lua_pop(L, 1);
  }
}

/* The level of that serial committed into the enclosing level (journal at
** into, serial pserial): move its journal at j there. [-0, +0, m] */
static void journal_merge(lua_State *L, int j, unsigned long serial, int into, unsigned long pserial) {
  int i, n = (int)lua_rawlen(L, j);
  for (i = 1; i <= n; i++) {
    jn_Inst *inst;
    lua_rawgeti(L, j, i);
    inst = (jn_Inst *)lua_touserdata(L, -1);
    if (inst->jserial == serial) {      /* the enclosing level never wrote it */
      inst->jserial = pserial;
      lua_rawseti(L, into, (int)lua_rawlen(L, into) + 1);
    } else lua_pop(L, 1);
  }
  lua_pushnil(L);
  while (lua_next(L, j) != 0) {         /* instances an outer level wrote first */
    if (lua_type(L, -2) == LUA_TUSERDATA) {
      jn_Inst *inst = (jn_Inst *)lua_touserdata(L, -2);
      const JournalEntry *e = (const JournalEntry *)lua_touserdata(L, -1);
      if (inst->jserial == pserial) {   /* the enclosing level holds its state */
        or_bits(JOURNAL_DIRTY(inst), e->dirty, DIRTY_BYTES(inst->model));
      } else {
        lua_pushvalue(L, -2);
        lua_rawget(L, into);
        if (lua_isnil(L, -1)) {
          lua_pop(L, 1);
          lua_pushvalue(L, -2);
          lua_pushvalue(L, -2);
          lua_rawset(L, into);
        } else {
          JournalEntry *to = (JournalEntry *)lua_touserdata(L, -1);
          or_bits(to->dirty, e->dirty, DIRTY_BYTES(inst->model));
          lua_pop(L, 1);
        }
      }
    }
    lua_pop(L, 1);
  }
}

/*
** Settle the journals of the levels that ended (above c->txdepth; their
** frames still hold their serials): undo them when the level rolled back
** (committed false) and for the levels it left open inside it; join the
** level's journal to the enclosing level when it committed into one;
** forget them when the outermost one committed.  Rolling back allocates
** nothing and cannot raise (settle_undo, in a finalizer).
*/
static void settle(lua_State *L, jn_Conn *c, int committed) {
  int lv, d;
  if (!push_levels(L, c)) return;
  lv = lua_gettop(L);
  for (d = c->txcap; d > c->txdepth; d--) {
    lua_rawgeti(L, lv, d);              /* lv + 1: the journal of level d */
    if (!lua_isnil(L, -1)) {
      unsigned long serial = c->tx[d - 1].serial;
      if (committed && d == c->txdepth + 1) {
        if (c->txdepth > 0) {
          push_level(L, lv, c->txdepth);
          journal_merge(L, lv + 1, serial, lv + 2, c->tx[c->txdepth - 1].serial);
        }
      } else {
        journal_rollback(L, lv + 1, serial);
      }
      lua_pushnil(L);
      lua_rawseti(L, lv, d);
    }
    lua_settop(L, lv);
  }
  lua_pop(L, 1);
}

/* jn_TxUndo: the connection ended levels itself (an abandoned transaction
** rolled back, or the connection closed): their instances get their state
** back now, not at the next db:transaction.  Never raises. */
static void settle_undo(lua_State *L, jn_Conn *c) {
  if (lua_checkstack(L, 8)) settle(L, c, 0);
}

/* junction._journalas(read, made): read, an instance read back of the row
** that made (an instance of the same model) inserted at the open
** transaction level, follows made through that level's rollback: nested
** creation returns the instances it reads back, not those it made. */
static int inst_journalas(lua_State *L) {
  jn_Inst *r = jn_inst_test(L, 1), *mk = jn_inst_test(L, 2);
  jn_Conn *c;
  if (r == NULL || mk == NULL || r == mk || r->model != mk->model)
    return luaL_error(L, "junction._journalas: two instances of one model expected");
  c = mk->model->conn;
  if (c->db == NULL || c->txdepth == 0 || r->jserial != 0 ||
      mk->jserial != c->tx[c->txdepth - 1].serial)
    return 0;
  journal_note(L, 1, r);
  if (r->jserial == mk->jserial) {
    r->jstate = mk->jstate;
    memcpy(JOURNAL_DIRTY(r), JOURNAL_DIRTY(mk), DIRTY_BYTES(r->model));
  }
  return 0;
}

/* junction._injournal(db): is a write on db now inside a transaction
** level, whose rollback the instances written there follow? */
static int inst_injournal(lua_State *L) {
  jn_Conn *c = jn_conn_check(L, 1, "junction._injournal");
  lua_pushboolean(L, c->txdepth > 0);
  return 1;
}

/* junction._written(inst, existed, fields): inst, read back after a write
** of its row at the open level that was no save of its own (upsert: one
** statement that inserts or updates; increment: an UPDATE, then a reload),
** follows that level's rollback as if it had written the fields named
** there: the row existed (they are changed again), or not (unsaved again,
** its key nil again unless fields names it: only for an instance just
** read, in no journal).  Called right after the read back (no field
** changed); names that are no field are skipped. */
static int inst_written(lua_State *L) {
  jn_Inst *r = jn_inst_test(L, 1);
  jn_Model *m;
  int i, n, keygiven = 0, existed = lua_toboolean(L, 2);
  if (r == NULL) return luaL_error(L, "junction._written: bad argument #1 (instance expected)");
  luaL_checktype(L, 3, LUA_TTABLE);
  m = r->model;
  if (m->conn->db == NULL || m->conn->txdepth == 0 || (!existed && r->jserial != 0)) return 0;
  n = (int)lua_rawlen(L, 3);
  for (i = 1; i <= n; i++) {
    int f;
    lua_rawgeti(L, 3, i);
    f = lua_type(L, -1) == LUA_TSTRING ? jn_schema_fieldname(m, lua_tostring(L, -1)) : -1;
    lua_pop(L, 1);
    if (f < 0) continue;
    DIRTY_SET(r, f);
    keygiven |= f == m->pk;
  }
  journal_note(L, 1, r);
  if (!existed && r->jserial == m->conn->tx[m->conn->txdepth - 1].serial)
    r->jstate = keygiven ? 0 : J_KEYNIL;
  memset(r->dirty, 0, DIRTY_BYTES(m));
  return 0;
}

/* junction._txsettle(db, committed): db:transaction ended a level (db:_tx
** "close"): settle the journals of the levels that ended. */
static int inst_txsettle(lua_State *L) {
  jn_Conn *c = jn_conn_check(L, 1, "db:_txsettle");
  settle(L, c, lua_toboolean(L, 2));
  return 0;
}

/* }====== */

/*
** Check the values of the unsaved instance at instidx as an INSERT would
** write them, writing nothing.  Returns SQLITE_OK, or JN_VALIDATION with
** the message and details pushed (jn_inst_invalid).
** [-0, +(0|2), m]
*/
int jn_inst_check(lua_State *L, int instidx) {
  jn_Inst *inst = (jn_Inst *)lua_touserdata(L, instidx);
  int uv, haskey;
  push_values(L, instidx);
  uv = lua_gettop(L);
  get_at(L, instidx, uv, inst->model->pk);
  haskey = !lua_isnil(L, -1);
  lua_pushnil(L);                       /* the errors slot */
  push_row(L, inst, inst->dirty, instidx, uv, uv + 2, 1, haskey, NULL, 0);
  if (!lua_isnil(L, uv + 2)) return jn_inst_invalid(L, inst->model, uv + 2);
  lua_settop(L, uv - 1);
  return SQLITE_OK;
}

/*
** INSERT the instance at instidx (every field, timestamps set now, the key
** left to SQLite when it is an AUTOINCREMENT left nil).  Every value is
** checked against its field first: when one cannot be stored nothing runs
** and JN_VALIDATION returns with the message and details pushed.  On
** success the instance holds what the row holds (values converted, its
** key, the timestamps) and is saved, nothing changed.
** Returns SQLITE_OK or the failing code (message readable by jn_error_result).
** [-0, +(0|2), e]
*/
int jn_inst_insert(lua_State *L, int instidx) {
  jn_Inst *inst = (jn_Inst *)lua_touserdata(L, instidx);
  jn_Model *m = inst->model;
  jn_Conn *c = m->conn;
  jn_St *st;
  int rc, i, k = 0, uv, haskey, base;
  sqlite3_int64 id = 0;
  char ts[32];
  size_t tslen = 0;
  push_values(L, instidx);
  uv = lua_gettop(L);
  get_at(L, instidx, uv, m->pk);
  haskey = !lua_isnil(L, -1);
  lua_pushnil(L);                       /* uv + 2: the errors slot */
  if (m->created >= 0 || m->updated >= 0) tslen = jn_scalar_timestamp(c, ts);
  base = lua_gettop(L);
  push_row(L, inst, inst->dirty, instidx, uv, uv + 2, 1, haskey, ts, tslen);
  if (!lua_isnil(L, uv + 2)) return jn_inst_invalid(L, m, uv + 2);
  st = jn_stmt_slot(L, c, &m->st[haskey ? JN_MS_INSERT_PK : JN_MS_INSERT],
                    m->sql[haskey ? JN_MS_INSERT_PK : JN_MS_INSERT], &rc);
  if (st == NULL) { lua_settop(L, uv - 1); return rc; }
  journal_note(L, instidx, inst);
  for (i = 0; i < m->nfields; i++) {
    if (!writes_field(m, inst->dirty, 1, haskey, i)) continue;
    if (jn_stmt_bindvalue(L, c, st, ++k, base + 1 + i, m->f[i].type) != 0)
      luaL_error(L, "%s:save: bad value for field '%s' (%s cannot be stored)", m->name,
                 m->f[i].name, luaL_typename(L, base + 1 + i));
  }
  if (!haskey && c->dialect->returning_key) rc = jn_conn_runkey(L, c, st, &id);   /* INSERT ... RETURNING */
  else rc = jn_conn_run(L, c, st);
  if (rc == SQLITE_OK) {
    store_row(L, inst, inst->dirty, instidx, uv, base, 1, haskey);
    if (!haskey) {
      jn_scalar_pushi64(L, c->dialect->returning_key ? id : jn_e_last_id(c->eng, c->db));
      set_at(L, instidx, uv, m->pk);
    } else if (c->dialect->move_identity != NULL && (m->f[m->pk].flags & JN_F_AUTOINC)) {
      get_at(L, instidx, uv, m->pk);
      jn_sync_move_identity(L, m, lua_gettop(L));
    }
    inst->saved = 1;
    memset(inst->dirty, 0, DIRTY_BYTES(m));
  }
  lua_settop(L, uv - 1);
  return rc;
}

/*
** Push what an INSERT of the unsaved instance at instidx writes, one slot
** per field in field order (nil for a field it leaves out: an
** AUTOINCREMENT key left nil), the timestamps set now; for the model
** layer's INSERT ... ON CONFLICT.  Returns SQLITE_OK with the nfields
** values pushed, or JN_VALIDATION with the message and details pushed
** instead.
** [-0, +(nfields|2), m]
*/
int jn_inst_insertrow(lua_State *L, int instidx) {
  jn_Inst *inst = (jn_Inst *)lua_touserdata(L, instidx);
  jn_Model *m = inst->model;
  int uv, haskey, i;
  char ts[32];
  size_t tslen = 0;
  push_values(L, instidx);
  uv = lua_gettop(L);
  get_at(L, instidx, uv, m->pk);
  haskey = !lua_isnil(L, -1);
  lua_pushnil(L);                       /* uv + 2: the errors slot */
  if (m->created >= 0 || m->updated >= 0) tslen = jn_scalar_timestamp(m->conn, ts);
  push_row(L, inst, inst->dirty, instidx, uv, uv + 2, 1, haskey, ts, tslen);
  if (!lua_isnil(L, uv + 2)) return jn_inst_invalid(L, m, uv + 2);
  for (i = 0; i < 3; i++) lua_remove(L, uv);
  return SQLITE_OK;
}

/*
** UPDATE the changed fields (and the update stamp) of a saved instance,
** checked first as jn_inst_insert does.  Returns SQLITE_OK, the failing
** code, SQLITE_NOTFOUND when no row has the instance's key any more, or
** JN_VALIDATION with the message and details pushed.
** [-0, +(0|2), e]
*/
static int update_row(lua_State *L, int instidx) {
  jn_Inst *inst = (jn_Inst *)lua_touserdata(L, instidx);
  jn_Model *m = inst->model;
  jn_Conn *c = m->conn;
  jn_Buf b;
  jn_St *st;
  int i, k = 0, rc, uv, base;
  char ts[32];
  size_t tslen = 0;
  unsigned char *dirty;
  push_values(L, instidx);
  uv = lua_gettop(L);
  get_at(L, instidx, uv, m->pk);        /* uv + 1: the key, pinned until the step */
  lua_pushnil(L);                       /* uv + 2: the errors slot */
  /* uv + 3: the fields this UPDATE writes (a log function may change the
  ** instance, and so its dirty bits, while the statement runs) */
  dirty = (unsigned char *)lua_newuserdata(L, DIRTY_BYTES(m));
  memcpy(dirty, inst->dirty, DIRTY_BYTES(m));
  if (m->updated >= 0) tslen = jn_scalar_timestamp(c, ts);
  base = lua_gettop(L);
  push_row(L, inst, dirty, instidx, uv, uv + 2, 0, 1, ts, tslen);
  if (!lua_isnil(L, uv + 2)) return jn_inst_invalid(L, m, uv + 2);
  jn_buf_init(L, &b);
  jn_buf_adds(L, &b, "UPDATE ");
  jn_buf_adds(L, &b, m->qtable);
  jn_buf_adds(L, &b, " SET ");
  for (i = 0; i < m->nfields; i++) {
    if (!writes_field(m, dirty, 0, 1, i)) continue;
    if (k++) jn_buf_adds(L, &b, ", ");
    jn_buf_addident(L, &b, NULL, m->f[i].col);
    jn_buf_adds(L, &b, " = ?");
  }
  jn_buf_adds(L, &b, " WHERE ");
  jn_buf_addident(L, &b, NULL, m->f[m->pk].col);
  jn_buf_adds(L, &b, " = ?");
  st = jn_stmt_cached(L, c, b.p, b.n, &rc);
  if (st == NULL) { lua_settop(L, uv - 1); return rc; }
  journal_note(L, instidx, inst);
  k = 0;
  for (i = 0; i <= m->nfields; i++) {
    int f = i < m->nfields ? i : m->pk;
    int idx = i < m->nfields ? base + 1 + i : uv + 1;
    if (i < m->nfields && !writes_field(m, dirty, 0, 1, i)) continue;
    if (jn_stmt_bindvalue(L, c, st, ++k, idx, m->f[f].type) != 0)
      luaL_error(L, "%s:save: bad value for field '%s'", m->name, m->f[f].name);
  }
  rc = jn_conn_run(L, c, st);
  if (rc == SQLITE_OK && jn_e_changes(c->eng, c->db) == 0) rc = SQLITE_NOTFOUND;   /* deleted elsewhere */
  if (rc == SQLITE_OK) store_row(L, inst, dirty, instidx, uv, base, 0, 1);
  lua_settop(L, uv - 1);
  return rc;
}

/* }====== */

/* {====== Methods */

/* Before a method reads the state of an instance written inside a
** transaction (saved, destroyed, changed), let the connection roll back
** the levels nobody can end any more (a dropped coroutine's): their
** instances get their state back (settle_undo), so that a save after that
** inserts again rather than updating a row that was never kept.  Free for
** an instance in no journal, and outside transactions. */
static void settle_first(lua_State *L, jn_Inst *inst) {
  jn_Conn *c = inst->model->conn;
  if (inst->jserial != 0 && c->txdepth > 0 && level_in_doubt(L, c))
    (void)jn_conn_txcheck(L, c);        /* a refusal is the write's to report */
}

static jn_Inst *check_inst(lua_State *L, const char *method) {
  jn_Inst *inst = (jn_Inst *)luaL_testudata(L, 1, JN_INST_MT);
  if (inst == NULL)
    luaL_error(L, "Instance:%s: bad self (instance expected, got %s; call it with ':')", method,
               luaL_typename(L, 1));
  jn_conn_checkopen(L, inst->model->conn, inst->model->name, method);
  settle_first(L, inst);
  return inst;
}

/* As check_inst, for the methods that write or read its row: a destroyed
** instance has none, and must not bring it back. */
static jn_Inst *check_live(lua_State *L, const char *method) {
  jn_Inst *inst = check_inst(L, method);
  if (inst->destroyed)
    luaL_error(L, "%s:%s: instance was destroyed", inst->model->name, method);
  return inst;
}

/*
** Does the row of the saved instance at 1 still exist?  SQLITE_OK when it
** does, SQLITE_NOTFOUND when it was deleted elsewhere, or the failing code.
** What a save with nothing to write answers, so that it never acknowledges
** a row that is gone.
** [-0, +0, e]
*/
static int row_exists(lua_State *L, jn_Inst *inst) {
  jn_Model *m = inst->model;
  jn_St *st;
  int rc;
  st = jn_stmt_slot(L, m->conn, &m->st[JN_MS_BY_PK], m->sql[JN_MS_BY_PK], &rc);
  if (st == NULL) return rc;
  jn_inst_get(L, 1, m->pk);   /* stays on the stack until the step is done */
  jn_stmt_bindvalue(L, m->conn, st, 1, -1, m->f[m->pk].type);
  rc = jn_conn_step(L, m->conn, st);
  jn_e_reset(m->conn->eng, st);
  lua_pop(L, 1);
  return rc == SQLITE_ROW ? SQLITE_OK : rc == SQLITE_DONE ? SQLITE_NOTFOUND : rc;
}

static int any_dirty(jn_Inst *inst) {
  size_t i;
  for (i = 0; i < DIRTY_BYTES(inst->model); i++)
    if (inst->dirty[i]) return 1;
  return 0;
}

/*** Insert a built instance, or UPDATE the changed fields of a saved one.
@function instance:save
@treturn Instance|fail
*/
static int inst_save(lua_State *L) {
  jn_Inst *inst = check_live(L, "save");
  int rc = SQLITE_OK;
  lua_settop(L, 1);
  if (!inst->saved) rc = jn_inst_insert(L, 1);
  else if (any_dirty(inst)) rc = update_row(L, 1);
  else rc = row_exists(L, inst);
  if (rc == SQLITE_NOTFOUND) {   /* an UPDATE of no row is no success */
    lua_pushfstring(L, "%s:save: the row is gone (deleted elsewhere)", inst->model->name);
    return jn_error_result(L, inst->model->conn, rc, lua_tostring(L, -1));
  }
  if (rc != SQLITE_OK) return jn_error_result(L, inst->model->conn, rc, NULL);
  lua_settop(L, 1);
  return 1;
}

/* Set one field by name from a method: unknown names raise. */
static void set_named(lua_State *L, int instidx, jn_Inst *inst, int keyidx, int validx,
                      const char *ctx) {
  jn_Model *m = inst->model;
  int f = lua_type(L, keyidx) == LUA_TSTRING ? jn_schema_field(L, m, keyidx) : -1;
  if (f < 0)
    luaL_error(L, "%s: bad field '%s' (no such field in %s)", ctx,
               lua_type(L, keyidx) == LUA_TSTRING ? lua_tostring(L, keyidx) : luaL_typename(L, keyidx),
               m->name);
  check_storable(L, m, f, validx, ctx);
  jn_inst_get(L, instidx, f);
  /* nil on a saved row always counts as a change: an instance read with
  ** `attributes` holds nil for the fields it did not read, whatever the row has */
  /* a table (JSON) may have changed inside: setting it always counts */
  if (!lua_rawequal(L, -1, validx) || (lua_isnil(L, validx) && inst->saved && f != m->pk) ||
      lua_istable(L, validx)) {
    if (f == m->pk && inst->saved)
      luaL_error(L, "%s: the primary key '%s' of a saved %s cannot change", ctx, m->f[f].name, m->name);
    lua_pushvalue(L, validx);
    jn_inst_set(L, instidx, f);
    DIRTY_SET(inst, f);
  }
  lua_pop(L, 1);
}

/*** Set fields from a table, then save.
@function instance:update
*/
static int inst_update(lua_State *L) {
  jn_Inst *inst = check_live(L, "update");
  char ctx[96];
  snprintf(ctx, sizeof ctx, "%s:update", inst->model->name);
  if (!lua_istable(L, 2))
    luaL_error(L, "%s: bad argument #1 (table of values expected, got %s)", ctx, luaL_typename(L, 2));
  lua_settop(L, 2);
  lua_pushnil(L);
  while (lua_next(L, 2) != 0) {
    assign(L, inst, 1, 3, 4, ctx, 0);
    lua_pop(L, 1);
  }
  lua_settop(L, 1);
  return inst_save(L);
}

/*** Read the row again.
@function instance:reload
@treturn Instance|fail
*/
static int inst_reload(lua_State *L) {
  jn_Inst *inst = check_live(L, "reload");
  jn_Model *m = inst->model;
  jn_St *st;
  int rc, i;
  lua_settop(L, 1);
  st = jn_stmt_slot(L, m->conn, &m->st[JN_MS_BY_PK], m->sql[JN_MS_BY_PK], &rc);
  if (st == NULL) return jn_error_result(L, m->conn, rc, NULL);
  jn_inst_get(L, 1, m->pk);   /* 2: stays on the stack until the step is done */
  jn_stmt_bindvalue(L, m->conn, st, 1, -1, m->f[m->pk].type);
  rc = jn_conn_step(L, m->conn, st);
  if (rc == SQLITE_ROW) {
    push_values(L, 1);
    for (i = 0; i < m->nfields; i++) {
      jn_stmt_pushcolumn(L, m->conn->eng, st, i, m->f[i].type);
      set_at(L, 1, -2, i);
    }
    jn_e_reset(m->conn->eng, st);
    inst->saved = 1;
    memset(inst->dirty, 0, DIRTY_BYTES(m));
    lua_settop(L, 1);
    return 1;
  }
  if (rc != SQLITE_DONE) return jn_error_finish(L, m->conn, st, rc, SQLITE_DONE);
  jn_e_reset(m->conn->eng, st);
  lua_pushfstring(L, "%s:reload: the row is gone", m->name);
  return jn_error_result(L, m->conn, SQLITE_NOTFOUND, lua_tostring(L, -1));
}

/*** Delete the row.
@function instance:destroy
@treturn true|fail
*/
static int inst_destroy(lua_State *L) {
  jn_Inst *inst = check_live(L, "destroy");
  jn_Model *m = inst->model;
  jn_St *st;
  int rc;
  lua_settop(L, 1);
  st = jn_stmt_slot(L, m->conn, &m->st[JN_MS_DELETE_PK], m->sql[JN_MS_DELETE_PK], &rc);
  if (st == NULL) return jn_error_result(L, m->conn, rc, NULL);
  journal_note(L, 1, inst);
  jn_inst_get(L, 1, m->pk);   /* stays on the stack until the step is done */
  jn_stmt_bindvalue(L, m->conn, st, 1, -1, m->f[m->pk].type);
  rc = jn_conn_run(L, m->conn, st);
  if (rc != SQLITE_OK) return jn_error_result(L, m->conn, rc, NULL);
  lua_pop(L, 1);
  inst->saved = 0;
  inst->destroyed = 1;
  lua_pushboolean(L, 1);
  return 1;
}

/*** The value of a field (or VIRTUAL field) as it is held, without its get:
what a get function reads.
@function instance:getDataValue
*/
static int inst_get_data(lua_State *L) {
  jn_Inst *inst = check_inst(L, "getDataValue");
  jn_Model *m = inst->model;
  int f;
  lua_settop(L, 2);
  if (m->accessors && push_accessor(L, m, 2)) {
    raw_get(L, 1, 3);
    return 1;
  }
  f = lua_type(L, 2) == LUA_TSTRING ? jn_schema_field(L, m, 2) : -1;
  if (f < 0)
    luaL_error(L, "%s:getDataValue: bad field '%s' (no such field in %s)", m->name,
               lua_type(L, 2) == LUA_TSTRING ? lua_tostring(L, 2) : luaL_typename(L, 2), m->name);
  jn_inst_get(L, 1, f);
  return 1;
}

/*** Set a field (or VIRTUAL field) without its set: what a set function writes.
@function instance:setDataValue
*/
static int inst_set_data(lua_State *L) {
  jn_Inst *inst = check_inst(L, "setDataValue");
  jn_Model *m = inst->model;
  char ctx[96];
  snprintf(ctx, sizeof ctx, "%s:setDataValue", m->name);
  lua_settop(L, 3);
  if (m->accessors && push_accessor(L, m, 2)) raw_set(L, inst, 1, 4, 2, 3, ctx);
  else set_named(L, 1, inst, 2, 3, ctx);
  return 0;
}

/*
** junction.core._accessors(model, { name = { get = f, set = f, virtual = b } }):
** the model's gets, sets and VIRTUAL fields, which the define of
** lua/junction has taken out of its declaration.  Raises for a name that
** is no field (not VIRTUAL) or that a VIRTUAL field shares with a field or
** a method.
*/
static int model_accessors(lua_State *L) {
  jn_Model *m = (jn_Model *)luaL_checkudata(L, 1, JN_MODEL_MT);
  luaL_checktype(L, 2, LUA_TTABLE);
  lua_settop(L, 2);
  lua_newtable(L);                      /* 3: the accessors */
  lua_pushnil(L);
  while (lua_next(L, 2) != 0) {         /* 4: name, 5: its declaration */
    int f;
    if (lua_type(L, 4) != LUA_TSTRING || !lua_istable(L, 5))
      luaL_error(L, "db:define: %s: bad accessors (name = table expected)", m->name);
    f = jn_schema_field(L, m, 4);
    lua_createtable(L, 0, 4);           /* 6: the entry */
    lua_getfield(L, 5, "get");
    lua_setfield(L, 6, "get");
    lua_getfield(L, 5, "set");
    lua_setfield(L, 6, "set");
    lua_pushvalue(L, 4);
    lua_setfield(L, 6, "name");
    lua_getfield(L, 5, "virtual");
    if (lua_toboolean(L, -1)) {
      jn_schema_lookup(L, m);
      lua_pushvalue(L, 4);
      lua_rawget(L, -2);
      if (!lua_isnil(L, -1))
        luaL_error(L, "db:define: %s.%s: bad field (a VIRTUAL field cannot take the name of a field "
                   "or a method)", m->name, lua_tostring(L, 4));
      lua_pop(L, 2);
    } else {
      if (f < 0) luaL_error(L, "db:define: %s.%s: no such field", m->name, lua_tostring(L, 4));
      lua_pushinteger(L, f + 1);
      lua_setfield(L, 6, "field");
    }
    lua_pop(L, 1);
    lua_pushvalue(L, 4);
    lua_insert(L, -2);
    lua_rawset(L, 3);
    lua_pop(L, 1);
  }
  lua_getuservalue(L, 1);               /* the model anchors it */
  lua_pushvalue(L, 3);
  lua_setfield(L, -2, "accessors");
  lua_pop(L, 1);
  lua_getfield(L, LUA_REGISTRYINDEX, JN_ACCESSORS);
  lua_pushlightuserdata(L, m);
  lua_pushvalue(L, 3);
  lua_rawset(L, -3);
  m->accessors = 1;
  return 0;
}

/*** The changed fields: an array of names, or false; with a name, a boolean.
@function instance:changed
*/
static int inst_changed(lua_State *L) {
  jn_Inst *inst = check_inst(L, "changed");
  jn_Model *m = inst->model;
  int i, n = 0;
  if (!lua_isnoneornil(L, 2)) {
    int f = lua_type(L, 2) == LUA_TSTRING ? jn_schema_field(L, m, 2) : -1;
    if (f < 0)
      luaL_error(L, "%s:changed: bad field '%s' (no such field)", m->name, jn_value_name(L, 2));
    lua_pushboolean(L, DIRTY_GET(inst, f));
    return 1;
  }
  lua_newtable(L);
  for (i = 0; i < m->nfields; i++)
    if (DIRTY_GET(inst, i)) {
      lua_pushstring(L, m->f[i].name);
      lua_rawseti(L, -2, ++n);
    }
  if (n == 0) lua_pushboolean(L, 0);
  return 1;
}

static void push_table(lua_State *L, int idx, int depth);

/*
** Push a plain-table copy of the value at idx: instances and arrays of them.
** An array (a List, a loaded to-many association) comes out with the array
** marker as its metatable, so that JSON encoders write it as an array,
** [] when empty.
*/
static void push_plain(lua_State *L, int idx, int depth) {
  if (jn_inst_test(L, idx) != NULL) {
    push_table(L, idx, depth);
  } else if (lua_istable(L, idx)) {
    int i, n = (int)lua_rawlen(L, idx);
    lua_createtable(L, n, 0);
    lua_getfield(L, LUA_REGISTRYINDEX, JN_ARRAY_MT);
    lua_setmetatable(L, -2);
    for (i = 1; i <= n; i++) {
      lua_rawgeti(L, idx, i);
      push_plain(L, lua_gettop(L), depth);
      lua_rawseti(L, -3, i);
      lua_pop(L, 1);
    }
  } else {
    lua_pushvalue(L, idx);
  }
}

/* Copy the string keys of the table on top into the table below it, their
** values as plain tables (push_plain); pops the table. [-1, +0, e] */
static void add_plain(lua_State *L, int depth) {
  int from = lua_gettop(L);
  lua_pushnil(L);
  while (lua_next(L, from) != 0) {
    if (lua_type(L, -2) == LUA_TSTRING) {
      push_plain(L, lua_gettop(L), depth);
      lua_pushvalue(L, -3);
      lua_insert(L, -2);
      lua_rawset(L, from - 1);
    }
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
}

/* Push the instance at idx as a plain table, loaded associations included. */
static void push_table(lua_State *L, int idx, int depth) {
  jn_Inst *inst = (jn_Inst *)lua_touserdata(L, idx);
  jn_Model *m = inst->model;
  int i;
  if (depth > 32) luaL_error(L, "%s:toTable: associations nested too deep (a cycle?)", m->name);
  lua_createtable(L, 0, m->nfields);
  push_values(L, idx);
  for (i = 0; i < m->nfields; i++) {
    get_at(L, idx, lua_gettop(L), i);
    lua_setfield(L, -3, m->f[i].name);
  }
  lua_pop(L, 1);
  jn_inst_extras(L, idx, 0);
  add_plain(L, depth + 1);
  if (push_slots(L, idx, inst)) add_plain(L, depth + 1);
  if (m->accessors) {   /* what each get gives */
    lua_getfield(L, LUA_REGISTRYINDEX, JN_ACCESSORS);
    lua_pushlightuserdata(L, m);
    lua_rawget(L, -2);
    lua_remove(L, -2);
    lua_pushnil(L);
    while (lua_next(L, -2) != 0) {
      int entry = lua_gettop(L);
      lua_getfield(L, entry, "get");
      if (lua_isfunction(L, -1)) {
        lua_pushvalue(L, idx);
        call_accessor(L, m, entry, "get", 1, 1, 0);
        lua_pushvalue(L, entry - 1);
        lua_insert(L, -2);
        lua_rawset(L, entry - 3);
      } else {
        lua_pop(L, 1);
      }
      lua_pop(L, 1);
    }
    lua_pop(L, 1);
  }
}

/*** A plain table of the fields, with loaded associations as nested tables.
@function instance:toTable
*/
static int inst_to_table(lua_State *L) {
  check_inst(L, "toTable");
  lua_settop(L, 1);
  push_table(L, 1, 0);
  return 1;
}

/*
** Push a copy of the value at idx for encoding: instances as their toTable,
** lists and marked arrays as marked arrays, other tables key by key (their
** values copied alike), anything else as it is.  seen (a stack index) maps
** each table already copied to its copy, so that a table met twice is
** copied once and a cycle stays a cycle (which the encoder refuses).
** [-0, +1, e]
*/
static void push_deep(lua_State *L, int idx, int depth, int seen) {
  int marked = 0;
  if (jn_inst_test(L, idx) != NULL) { push_table(L, idx, depth); return; }
  if (!lua_istable(L, idx) || depth > 128) { lua_pushvalue(L, idx); return; }
  lua_pushvalue(L, idx);
  lua_rawget(L, seen);
  if (!lua_isnil(L, -1)) return;
  lua_pop(L, 1);
  luaL_checkstack(L, 6, "too deep");
  if (lua_getmetatable(L, idx)) {
    luaL_getmetatable(L, JN_LIST_MT);
    lua_getfield(L, LUA_REGISTRYINDEX, JN_ARRAY_MT);
    marked = lua_rawequal(L, -1, -3) || lua_rawequal(L, -2, -3);
    lua_pop(L, 3);
  }
  lua_newtable(L);
  if (marked) {
    lua_getfield(L, LUA_REGISTRYINDEX, JN_ARRAY_MT);
    lua_setmetatable(L, -2);
  }
  lua_pushvalue(L, idx);
  lua_pushvalue(L, -2);
  lua_rawset(L, seen);
  lua_pushnil(L);
  while (lua_next(L, idx) != 0) {
    push_deep(L, lua_gettop(L), depth + 1, seen);
    lua_replace(L, -2);
    lua_pushvalue(L, -2);
    lua_insert(L, -2);
    lua_rawset(L, -4);
  }
}

/*
** Append the instance at idx as JSON straight from its field values, when
** its toTable would hold exactly them: no get/set or VIRTUAL field, and no
** string key in its uservalue (a loaded association).  1 when written, 0
** when it is not such an instance (nothing written), -1 with *why.
** This skips making the toTable copy, which costs as much as encoding it.
*/
static int json_direct_inst(lua_State *L, jn_Buf *b, int idx, const char **why) {
  const char *names[JN_JSON_MAXKEYS];
  int slots[JN_JSON_MAXKEYS];
  jn_Inst *inst = jn_inst_test(L, idx);
  int top = lua_gettop(L), n = 0, i;
  jn_Model *m;
  if (inst == NULL) return 0;
  m = inst->model;
  if (m->accessors || m->nfields > JN_JSON_MAXKEYS || !lua_checkstack(L, m->nfields + 8)) return 0;
  jn_inst_extras(L, idx, 0);            /* top + 1 */
  if (inst->ownextras) {                /* no extra was ever set: none to look for */
    lua_pushnil(L);
    while (lua_next(L, top + 1) != 0) {
      lua_pop(L, 1);
      if (lua_type(L, -1) == LUA_TSTRING) { lua_settop(L, top); return 0; }   /* an extra */
    }
  }
  if (any_slot(L, idx, inst)) { lua_settop(L, top); return 0; }   /* a loaded association */
  push_values(L, idx);                  /* top + 2 */
  for (i = 0; i < m->nfields; i++) {    /* a nil field is left out */
    get_at(L, idx, top + 2, i);
    if (lua_isnil(L, -1)) { lua_pop(L, 1); continue; }
    names[n] = m->f[i].name;
    slots[n++] = lua_gettop(L);
  }
  *why = jn_json_encodeobject(L, b, names, slots, n);
  lua_settop(L, top);
  return *why == NULL ? 1 : -1;
}

/*
** Append the list at idx (a List of instances) straight from the instances'
** fields, as json_direct_inst does each.  1 when written, 0 when some element
** is not such an instance (the buffer is then as it was), -1 with *why.
*/
static int json_direct_list(lua_State *L, jn_Buf *b, int idx, const char **why) {
  size_t start = b->n;
  int i, n, count = 0, rc = 1;
  if (!lua_getmetatable(L, idx)) return 0;
  luaL_getmetatable(L, JN_LIST_MT);
  n = lua_rawequal(L, -1, -2) ? (int)lua_rawlen(L, idx) : -1;
  lua_pop(L, 2);
  if (n < 0) return 0;
  lua_pushnil(L);
  while (lua_next(L, idx) != 0) { lua_pop(L, 1); count++; }
  if (count != n) return 0;              /* keys other than 1..n */
  jn_buf_addl(L, b, "[", 1);
  for (i = 1; i <= n && rc == 1; i++) {
    if (i > 1) jn_buf_addl(L, b, ",", 1);
    lua_rawgeti(L, idx, i);
    rc = json_direct_inst(L, b, lua_gettop(L), why);
    lua_pop(L, 1);
  }
  if (rc == 1) jn_buf_addl(L, b, "]", 1);
  else b->n = start;
  return rc;
}

/*** The JSON text of a value: an instance (its toTable), a list of them, or
plain tables (see the JSON type for the shapes).
@function junction.toJSON
@treturn string|fail  nil, message, junction.VALIDATION for a value JSON cannot write
*/
static int json_to(lua_State *L) {
  jn_Buf b;
  char mem[1024];                       /* a few rows' text: no buffer to allocate */
  const char *why = NULL;
  int rc;
  luaL_checkany(L, 1);
  lua_settop(L, 1);
  jn_buf_initat(L, &b, mem, sizeof mem);   /* 2 */
  rc = lua_istable(L, 1) ? json_direct_list(L, &b, 1, &why) : json_direct_inst(L, &b, 1, &why);
  if (rc == 0 && (jn_inst_test(L, 1) != NULL || lua_istable(L, 1))) {
    lua_newtable(L);                    /* 3: tables copied */
    push_deep(L, 1, 0, 3);
    lua_replace(L, 1);
    lua_settop(L, 2);
  }
  if (rc == 0) why = jn_json_encode(L, &b, 1);
  if (why != NULL)
    return jn_error_result(L, NULL, JN_VALIDATION, lua_pushfstring(L, "junction.toJSON: the value %s", why));
  lua_pushlstring(L, b.p, b.n);
  return 1;
}

/*** The Lua value of JSON text: objects as tables, arrays as tables marked
junction.array, null as junction.null.
@function junction.fromJSON
@treturn any|fail  nil, message, junction.VALIDATION for text that is not JSON
*/
static int json_from(lua_State *L) {
  size_t len;
  const char *s;
  if (lua_type(L, 1) != LUA_TSTRING)
    luaL_error(L, "junction.fromJSON: bad argument #1 (string expected, got %s)", luaL_typename(L, 1));
  s = lua_tolstring(L, 1, &len);
  if (jn_json_decode(L, s, len) != NULL)   /* the message on top */
    return jn_error_result(L, NULL, JN_VALIDATION, lua_tostring(L, -1));
  return 1;
}

/*** Mark a table as a JSON array (an empty one is then [], not {}).
@function junction.array
@tparam[opt] table t
@treturn table t (a new empty table without one)
*/
static int json_array(lua_State *L) {
  if (lua_isnoneornil(L, 1)) { lua_settop(L, 0); lua_newtable(L); }
  else if (!lua_istable(L, 1))
    luaL_error(L, "junction.array: bad argument #1 (table expected, got %s)", luaL_typename(L, 1));
  lua_settop(L, 1);
  lua_getfield(L, LUA_REGISTRYINDEX, JN_ARRAY_MT);
  lua_setmetatable(L, 1);
  return 1;
}

/*
** Is s a JSON path as SQLite's json_extract reads it, in the plain form
** junction offers: $, then .name (letters, digits, _), ."quoted name"
** (no quote inside), [n] or [#-n], any number of times?
*/
static int json_path_ok(const char *s, size_t n) {
  size_t i = 1;
  if (n == 0 || s[0] != '$') return 0;
  while (i < n) {
    if (s[i] == '.') {
      size_t start = ++i;
      if (i < n && s[i] == '"') {
        for (i++; i < n && s[i] != '"'; i++)
          if (s[i] == '\0') return 0;
        if (i >= n || i == start + 1) return 0;
        i++;
        continue;
      }
      while (i < n && ((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
                       (s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
        i++;
      if (i == start) return 0;
    } else if (s[i] == '[') {
      size_t start;
      i++;
      if (i + 1 < n && s[i] == '#' && s[i + 1] == '-') i += 2;
      start = i;
      while (i < n && s[i] >= '0' && s[i] <= '9') i++;
      if (i == start || i >= n || s[i] != ']') return 0;
      i++;
    } else {
      return 0;
    }
  }
  return 1;
}

/*** A where key for a path inside a JSON field:
`{ [junction.json("meta", "$.author.name")] = "ada" }` compares
json_extract("meta", '$.author.name'), with every operator a field takes.
@function junction.json
@tparam string field
@tparam string path  $, then .name, ."name", [n] or [#-n] steps
*/
static int json_path(lua_State *L) {
  size_t n;
  const char *path;
  if (lua_type(L, 1) != LUA_TSTRING)
    luaL_error(L, "junction.json: bad argument #1 (field name expected, got %s)", luaL_typename(L, 1));
  if (lua_type(L, 2) != LUA_TSTRING)
    luaL_error(L, "junction.json: bad argument #2 (path string expected, got %s)", luaL_typename(L, 2));
  path = lua_tolstring(L, 2, &n);
  if (!json_path_ok(path, n))
    luaL_error(L, "junction.json: bad path '%s' ($, then .name, .\"name\", [n] or [#-n] steps)", path);
  lua_settop(L, 2);
  lua_newuserdata(L, 1);
  luaL_setmetatable(L, JN_JSONPATH_MT);
  lua_createtable(L, 2, 0);
  lua_pushvalue(L, 1);
  lua_rawseti(L, -2, 1);
  lua_pushvalue(L, 2);
  lua_rawseti(L, -2, 2);
  lua_setuservalue(L, -2);
  return 1;
}

/* junction.json("meta", "$.a") */
static int json_path_tostring(lua_State *L) {
  luaL_checkudata(L, 1, JN_JSONPATH_MT);
  lua_getuservalue(L, 1);
  lua_rawgeti(L, -1, 1);
  lua_rawgeti(L, -2, 2);
  lua_pushfstring(L, "junction.json(\"%s\", \"%s\")", lua_tostring(L, -2), lua_tostring(L, -1));
  return 1;
}

/* junction._setArrayMetatable(mt): use mt (a JSON module's own array
** metatable, such as lua-cjson's array_mt) as the array marker. */
static int json_set_array_mt(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_settop(L, 1);
  lua_setfield(L, LUA_REGISTRYINDEX, JN_ARRAY_MT);
  return 0;
}

/*** A random version-4 UUID (from /dev/urandom), for defaultValue.
@function junction.UUIDV4
@treturn string
*/
static int value_uuidv4(lua_State *L) {
  char u[40];
  jn_value_uuid4(u);
  if (u[0] == '\0') luaL_error(L, "junction.UUIDV4: cannot read random bytes from /dev/urandom");
  lua_pushlstring(L, u, 36);
  return 1;
}

/*** The current time in seconds since 1970 (milliseconds in the fraction),
for defaultValue: a DATE field stores it as its UTC text, DATEONLY its day.
@function junction.NOW
@treturn number
*/
static int value_now(lua_State *L) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  lua_pushnumber(L, (lua_Number)ts.tv_sec + (lua_Number)(ts.tv_nsec / 1000000) / 1000.0);
  return 1;
}

/* list:toTable(): the list as plain tables (junction.List's method). */
static int list_to_table(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_settop(L, 1);
  push_plain(L, 1, 0);
  return 1;
}

/* }====== */

/* {====== Metamethods */

/* Raise for a name that is no field, method or association. */
static int no_such(lua_State *L, jn_Model *m, const char *what) {
  return luaL_error(L, "%s: %s '%s' (no field, method or association of that name)", m->name,
                    what, lua_type(L, 2) == LUA_TSTRING ? lua_tostring(L, 2) : luaL_typename(L, 2));
}

/*
** The instance at 1 for the metamethod what, which runs as a closure whose
** upvalue 2 is the instance metatable (no registry lookup on the hot path):
** a metamethod fetched with getmetatable can be called with anything.
*/
static jn_Inst *self_inst(lua_State *L, const char *what) {
  jn_Inst *inst = (jn_Inst *)lua_touserdata(L, 1);
  if (inst == NULL || lua_type(L, 1) != LUA_TUSERDATA || !lua_getmetatable(L, 1) ||
      !lua_rawequal(L, -1, lua_upvalueindex(2)))
    luaL_error(L, "junction.Instance.%s: bad self (instance expected, got %s)", what,
               luaL_typename(L, 1));
  lua_pop(L, 1);
  return inst;
}

/* Out of line, so that the fast path of a model without accessors keeps
** its own register use: push the value of the accessor named at 2 of the
** instance at 1 and return 1, or return 0 when it has none. */
static JN_NOINLINE int index_accessor(lua_State *L, jn_Model *m) {
  if (!push_accessor(L, m, 2)) return 0;
  accessor_get(L, m, 1, lua_gettop(L));
  return 1;
}

/* The same for inst.name = v. */
static JN_NOINLINE int newindex_accessor(lua_State *L, jn_Inst *inst) {
  char ctx[96];
  if (!push_accessor(L, inst->model, 2)) return 0;
  lua_settop(L, 4);
  snprintf(ctx, sizeof ctx, "%s", inst->model->name);
  accessor_set(L, inst, 1, 4, 2, 3, ctx, 0);
  return 1;
}

/* inst.name: a field, a method, or what eager loading attached. */
static int inst_index(lua_State *L) {
  jn_Inst *inst = self_inst(L, "__index");
  jn_Model *m = inst->model;
  if (m->accessors && index_accessor(L, m)) return 1;   /* a get, or a VIRTUAL field */
  lua_rawgeti(L, lua_upvalueindex(1), m->lookup_id);
  lua_pushvalue(L, 2);
  lua_rawget(L, -2);
  switch (lua_type(L, -1)) {
    case LUA_TNUMBER:   /* a field: its 1-based index */
      push_result(L, 1, (int)lua_tointeger(L, -1) - 1);
      return 1;
    case LUA_TFUNCTION:
      return 1;
    case LUA_TNIL:   /* a value a find read by its alias (attributes = { { expr, "n" } }) */
      push_extras(L, 1);
      lua_pushvalue(L, 2);
      lua_rawget(L, -2);
      if (lua_type(L, 2) == LUA_TSTRING && !lua_isnil(L, -1)) return 1;
      lua_pop(L, 2);
      return no_such(L, m, "cannot read");
    default: {   /* an association: what eager loading attached, or nil */
      const jn_Assoc *a;
      if (inst->nslots > 0 && (a = (const jn_Assoc *)luaL_testudata(L, -1, JN_ASSOC_MT)) != NULL &&
          has_slot(inst, a)) {
        push_slot(L, 1, inst, a->slot);
        if (!lua_isnil(L, -1)) return 1;
        lua_pop(L, 1);   /* not loaded: the name may hold a junction row (genre.TagPostGenre) */
      }
      push_extras(L, 1);
      lua_pushvalue(L, 2);
      lua_rawget(L, -2);
      return 1;
    }
  }
}

/*
** Is the lookup value on top the belongsToMany whose junction row instances
** of m carry under the name at 2 (genre.TagPostGenre)?  That name takes the
** through values of the instance's next link (a table, Sequelize's way), or
** nil; the row a read attached stays there until then.
*/
static int junction_slot(lua_State *L, jn_Model *m) {
  jn_Assoc *a = (jn_Assoc *)luaL_testudata(L, -1, JN_ASSOC_MT);
  return a != NULL && a->kind == JN_A_BELONGS_TO_MANY && a->target == m &&
         strcmp(a->through->name, lua_tostring(L, 2)) == 0;
}

/* inst.TagPostGenre = { ... } (see junction_slot), checked. [-0, +0, e] */
static void set_junction_slot(lua_State *L, jn_Inst *inst, jn_Model *m) {
  jn_Assoc *a = (jn_Assoc *)lua_touserdata(L, -1);
  jn_Inst *row = jn_inst_test(L, 3);
  if (!lua_isnil(L, 3) && !lua_istable(L, 3) && (row == NULL || row->model != a->through))
    luaL_error(L, "%s: cannot set '%s' (a table of %s values, or nil, expected, got %s)", m->name,
               lua_tostring(L, 2), a->through->name, jn_error_typename(L, 3));
  if (lua_istable(L, 3)) inst->carries = 1;   /* never cleared: a hint, the slot decides */
  jn_inst_extras(L, 1, 1);
  lua_pushvalue(L, 2);
  lua_pushvalue(L, 3);
  lua_rawset(L, -3);
}

/* inst.name = v: fields only (and the junction slot above); a new value
** marks the field changed. */
static int inst_newindex(lua_State *L) {
  jn_Inst *inst = self_inst(L, "__newindex");
  jn_Model *m = inst->model;
  char ctx[96];
  if (m->accessors && newindex_accessor(L, inst)) return 0;   /* a set, or a VIRTUAL field */
  lua_rawgeti(L, lua_upvalueindex(1), m->lookup_id);
  lua_pushvalue(L, 2);
  lua_rawget(L, -2);
  if (lua_type(L, -1) != LUA_TNUMBER) {
    if (lua_isnil(L, -1)) return no_such(L, m, "cannot set");
    if (junction_slot(L, m)) { set_junction_slot(L, inst, m); return 0; }
    return luaL_error(L, "%s: cannot set '%s' (it is a method or an association, not a field)",
                      m->name, lua_tostring(L, 2));
  }
  lua_settop(L, 3);
  snprintf(ctx, sizeof ctx, "%s", m->name);
  set_named(L, 1, inst, 2, 3, ctx);
  return 0;
}

/* Two instances are equal when they hold the same row of the same model. */
static int inst_eq(lua_State *L) {
  jn_Inst *a = jn_inst_test(L, 1), *b = jn_inst_test(L, 2);
  int eq = 0;
  if (a != NULL && b != NULL && a->model == b->model && a->saved && b->saved) {
    jn_inst_get(L, 1, a->model->pk);
    jn_inst_get(L, 2, b->model->pk);
    eq = !lua_isnil(L, -1) && lua_rawequal(L, -1, -2);
  }
  lua_pushboolean(L, a == b || eq);
  return 1;
}

/* Append a value as a REPL user wants to read it: strings quoted. */
static void add_repr(lua_State *L, jn_Buf *b, int idx) {
  if (lua_type(L, idx) == LUA_TSTRING) {
    add_quoted(L, b, idx, 60);
  } else if (jn_inst_test(L, idx) != NULL) {
    jn_Inst *inst = (jn_Inst *)lua_touserdata(L, idx);
    jn_buf_adds(L, b, inst->model->name);
    jn_buf_adds(L, b, "#");
    jn_inst_get(L, idx, inst->model->pk);
    jn_buf_adds(L, b, lua_isnil(L, -1) ? "new" : luaL_tolstring(L, -1, NULL));
    lua_pop(L, lua_isnil(L, -1) ? 1 : 2);
  } else if (lua_istable(L, idx)) {
    char tmp[32];
    int n = (int)lua_rawlen(L, idx), object = 0;
    if (n == 0) {   /* a JSON object: {...}; an empty list stays [0] */
      lua_pushnil(L);
      object = lua_next(L, idx) != 0;
      if (object) lua_pop(L, 2);
    }
    if (object) jn_buf_adds(L, b, "{...}");
    else {
      snprintf(tmp, sizeof tmp, "[%d]", n);
      jn_buf_adds(L, b, tmp);
    }
  } else {
    jn_buf_adds(L, b, luaL_tolstring(L, idx, NULL));
    lua_pop(L, 1);
  }
}

/* Append "; name=value, ..." for the string keys of the table at from
** (first: none appended yet). */
static void add_named(lua_State *L, jn_Buf *b, int from, int *first) {
  lua_pushnil(L);
  while (lua_next(L, from) != 0) {
    if (lua_type(L, -2) == LUA_TSTRING) {
      jn_buf_adds(L, b, *first ? "; " : ", ");
      *first = 0;
      jn_buf_adds(L, b, lua_tostring(L, -2));
      jn_buf_adds(L, b, "=");
      add_repr(L, b, lua_gettop(L));
    }
    lua_pop(L, 1);
  }
}

/* Post{post_id=1, text="Hello", ...; Genres=[3]} */
static int inst_tostring(lua_State *L) {
  jn_Inst *inst = jn_inst_test(L, 1);
  jn_Model *m;
  jn_Buf b;
  int i, uv, first = 1;
  if (inst == NULL)
    luaL_error(L, "junction.Instance.__tostring: bad self (instance expected, got %s)",
               luaL_typename(L, 1));
  m = inst->model;
  lua_settop(L, 1);
  jn_inst_extras(L, 1, 0);
  uv = lua_gettop(L);
  jn_buf_init(L, &b);
  jn_buf_adds(L, &b, m->name);
  jn_buf_adds(L, &b, "{");
  for (i = 0; i < m->nfields; i++) {
    if (i) jn_buf_adds(L, &b, ", ");
    jn_buf_adds(L, &b, m->f[i].name);
    jn_buf_adds(L, &b, "=");
    jn_inst_get(L, 1, i);
    add_repr(L, &b, lua_gettop(L));
    lua_pop(L, 1);
  }
  add_named(L, &b, uv, &first);
  if (push_slots(L, 1, inst)) {
    add_named(L, &b, lua_gettop(L), &first);
    lua_pop(L, 1);
  }
  jn_buf_adds(L, &b, inst->destroyed ? "} (destroyed)" : "}");
  lua_pushlstring(L, b.p, b.n);
  return 1;
}

/* }====== */

/* junction._destroyed(x): whether x is an instance that destroy() deleted
** (for the association methods written in Lua). */
static int inst_destroyed(lua_State *L) {
  jn_Inst *inst = jn_inst_test(L, 1);
  if (inst != NULL && inst->model->conn->db != NULL) settle_first(L, inst);
  lua_pushboolean(L, inst != NULL && inst->destroyed);
  return 1;
}

/* junction._saved(x): whether x is an instance whose row exists: read
** back or written, and not taken back by a rolled back transaction (the
** hooks choose Create or Update by it). */
static int inst_saved(lua_State *L) {
  jn_Inst *inst = jn_inst_test(L, 1);
  if (inst != NULL && inst->model->conn->db != NULL) settle_first(L, inst);
  lua_pushboolean(L, inst != NULL && inst->saved);
  return 1;
}

static const luaL_Reg inst_methods[] = {
  {"save", inst_save},
  {"update", inst_update},
  {"reload", inst_reload},
  {"destroy", inst_destroy},
  {"changed", inst_changed},
  {"toTable", inst_to_table},
  {"toJSON", json_to},
  {"getDataValue", inst_get_data},
  {"setDataValue", inst_set_data},
  {NULL, NULL}
};

static const luaL_Reg inst_meta[] = {
  {"__eq", inst_eq},
  {"__tostring", inst_tostring},
  {NULL, NULL}
};

/* {====== Lists of instances */

/*
** Push a new array for the instances a read returns, with the shared
** junction.List metatable: a plain array (ipairs, #, table.sort, JSON
** encoders all see one) whose tostring says what it holds.  [-0, +1, m]
*/
void jn_inst_newlist(lua_State *L, int narr) {
  /* an unknown count (0) gets room for a few rows: appending one by one
  ** from empty reallocates the array at 1, 2, 4 and 8 */
  lua_createtable(L, narr > 0 ? narr : 4, 0);
  luaL_getmetatable(L, JN_LIST_MT);
  lua_setmetatable(L, -2);
}

/* "[Genre{genre_id=1, ...}, Genre{...}] (2 rows)": the first few, and the count. */
static int list_tostring(lua_State *L) {
  int n, i, shown;
  jn_Buf b;
  luaL_checktype(L, 1, LUA_TTABLE);
  n = (int)lua_rawlen(L, 1);
  shown = n < 5 ? n : 5;
  jn_buf_init(L, &b);
  jn_buf_adds(L, &b, "[");
  for (i = 1; i <= shown; i++) {
    size_t len;
    const char *s;
    lua_rawgeti(L, 1, i);
    s = luaL_tolstring(L, -1, &len);
    if (i > 1) jn_buf_adds(L, &b, ", ");
    jn_buf_addl(L, &b, s, len);
    lua_pop(L, 2);
  }
  if (shown < n) jn_buf_adds(L, &b, ", ...");
  jn_buf_adds(L, &b, n == 1 ? "] (1 row)" : "] (");
  if (n != 1) { jn_buf_addint(L, &b, n); jn_buf_adds(L, &b, " rows)"); }
  lua_pushlstring(L, b.p, b.n);
  return 1;
}

/* }====== */

/* The functions of the module table that instances bring. */
static const luaL_Reg inst_module[] = {
  {"_destroyed", inst_destroyed},
  {"_saved", inst_saved},
  {"_txsettle", inst_txsettle},
  {"_journalas", inst_journalas},
  {"_injournal", inst_injournal},
  {"_written", inst_written},
  {"toJSON", json_to},
  {"fromJSON", json_from},
  {"array", json_array},
  {"_setArrayMetatable", json_set_array_mt},
  {"UUIDV4", value_uuidv4},
  {"NOW", value_now},
  {"_accessors", model_accessors},
  {"json", json_path},
  {NULL, NULL}
};

/* Push a new table with weak values. [-0, +1, m] */
static void new_weak(lua_State *L) {
  lua_newtable(L);
  lua_newtable(L);
  lua_pushliteral(L, "v");
  lua_setfield(L, -2, "__mode");
  lua_setmetatable(L, -2);
}

/* Register the metatables of JSON paths, JSON arrays and lists, and the
** weak accessors table. [-0, +0, m] */
static void open_registry(lua_State *L) {
  luaL_newmetatable(L, JN_JSONPATH_MT);
  lua_pushcfunction(L, json_path_tostring);
  lua_setfield(L, -2, "__tostring");
  lua_pop(L, 1);
  new_weak(L);                          /* the accessors */
  lua_setfield(L, LUA_REGISTRYINDEX, JN_ACCESSORS);
  new_weak(L);                          /* the transaction journals */
  lua_setfield(L, LUA_REGISTRYINDEX, JN_JOURNALS);
  lua_createtable(L, 0, 1);             /* the array marker */
  lua_pushliteral(L, "junction.array");
  lua_setfield(L, -2, "__name");
  lua_setfield(L, LUA_REGISTRYINDEX, JN_ARRAY_MT);
  luaL_newmetatable(L, JN_LIST_MT);
  lua_pushcfunction(L, list_tostring);
  lua_setfield(L, -2, "__tostring");
  lua_createtable(L, 0, 2);             /* list:toTable(), list:toJSON() */
  lua_pushcfunction(L, list_to_table);
  lua_setfield(L, -2, "toTable");
  lua_pushcfunction(L, json_to);
  lua_setfield(L, -2, "toJSON");
  lua_setfield(L, -2, "__index");
  lua_pop(L, 1);
}

/* Register the weak lookups table and the one instance metatable, whose
** __index and __newindex closures hold both. [-0, +0, m] */
static void open_metatable(lua_State *L) {
  new_weak(L);                          /* the lookups */
  lua_pushvalue(L, -1);
  lua_setfield(L, LUA_REGISTRYINDEX, JN_LOOKUPS);
  luaL_newmetatable(L, JN_INST_MT);
  luaL_setfuncs(L, inst_meta, 0);
  lua_pushvalue(L, -2);                 /* upvalues: the lookups, the metatable */
  lua_pushvalue(L, -2);
  lua_pushcclosure(L, inst_index, 2);
  lua_setfield(L, -2, "__index");
  lua_pushvalue(L, -2);
  lua_pushvalue(L, -2);
  lua_pushcclosure(L, inst_newindex, 2);
  lua_setfield(L, -2, "__newindex");
  lua_pushliteral(L, "junction.Instance");
  lua_setfield(L, -2, "__name");
  lua_pop(L, 2);
}

/*
** Register the instance metatable and the shared instance methods (in the
** registry, and as "Instance" in the module table at -1, where lua/junction
** adds the snake_case names before any model copies them).
*/
void jn_inst_open(lua_State *L) {
  open_registry(L);
  jn_conn_ontxundo(settle_undo);
  open_metatable(L);
  lua_newtable(L);
  luaL_setfuncs(L, inst_methods, 0);
  lua_pushvalue(L, -1);
  lua_setfield(L, LUA_REGISTRYINDEX, JN_INST_METHODS);
  lua_setfield(L, -2, "Instance");
  lua_pushinteger(L, JN_VALIDATION);
  lua_setfield(L, -2, "VALIDATION");
  luaL_setfuncs(L, inst_module, 0);
}
