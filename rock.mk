# rock.mk -- what `luarocks make` runs (junction-scm-1.rockspec, build type "make").
# It builds build/rock/junction/core.so from every csrc/*.c; luarocks then installs
# it and the Lua modules listed in the rockspec's build.install.
#
# The PostgreSQL engine (csrc/jn_pg.c) is compiled in when libpq's header and
# library are found; otherwise the module is the SQLite engine alone and
# junction.open("postgresql://...") says it was built without libpq. luarocks
# has no optional external dependency, hence this probe. Where libpq is looked for:
#   PQ_DIR=no                  build without PostgreSQL on purpose
#   PQ_INCDIR=... PQ_LIBDIR=... (or PQ_DIR=prefix: prefix/include, prefix/lib)
#                              there, and a clear error when libpq is not there
#   nothing set                pg_config, then pkg-config libpq, then
#                              /usr/include/postgresql with the compiler's own libraries
# (luarocks make PQ_DIR=/opt/pg, as SQLITE_DIR). The rockspec passes CC, CFLAGS,
# LIBFLAG, LUA_INCDIR and SQLITE_INCDIR/SQLITE_LIBDIR.

CC      ?= cc
CFLAGS  ?= -O2 -fPIC
LIBFLAG ?= -shared
SRCS    := $(sort $(wildcard csrc/*.c))
OUT     := build/rock/junction/core.so
OBJS    := $(patsubst csrc/%.c,build/rock/obj/%.o,$(SRCS))

# {====== finding libpq
pq_given := $(strip $(PQ_INCDIR)$(PQ_LIBDIR)$(filter-out no,$(PQ_DIR)))
pq_inc := $(or $(PQ_INCDIR),$(if $(filter-out no,$(PQ_DIR)),$(PQ_DIR)/include))
pq_lib := $(or $(PQ_LIBDIR),$(if $(filter-out no,$(PQ_DIR)),$(PQ_DIR)/lib))
ifeq ($(pq_given),)
pq_inc := $(or $(shell pg_config --includedir 2>/dev/null),$(shell pkg-config --variable=includedir libpq 2>/dev/null),/usr/include/postgresql)
pq_lib := $(or $(shell pg_config --libdir 2>/dev/null),$(shell pkg-config --variable=libdir libpq 2>/dev/null))
endif
# the probe compiles and links a call of libpq: header and library both found
pq_probe = printf '\043include <libpq-fe.h>\nint main(void) { return PQlibVersion() > 0 ? 0 : 1; }\n' | \
  $(CC) -x c -o /dev/null - -I'$(pq_inc)' $(if $(pq_lib),-L'$(pq_lib)') -lpq >/dev/null 2>&1 && echo yes
ifeq ($(PQ_DIR),no)
pq_found :=
$(info junction: PostgreSQL engine not built (PQ_DIR=no))
else
pq_found := $(shell $(pq_probe))
ifeq ($(pq_found),yes)
$(info junction: PostgreSQL engine built with libpq from $(pq_inc) $(pq_lib))
else ifneq ($(pq_given),)
$(error junction: libpq not found where PQ_DIR/PQ_INCDIR/PQ_LIBDIR point (include '$(pq_inc)', lib '$(pq_lib)': no libpq-fe.h or no libpq to link); set them right, unset them to probe, or PQ_DIR=no to build without PostgreSQL)
else
$(info junction: PostgreSQL engine not built: libpq not found (pg_config, pkg-config, /usr/include/postgresql); install libpq-dev or set PQ_DIR)
endif
endif
ifeq ($(pq_found),yes)
PQ_CFLAGS := -DJN_WITH_PG -I$(pq_inc)
PQ_LIBS   := $(if $(pq_lib),-L$(pq_lib)) -lpq
endif
# }======

JN_FLAGS := -std=c99 -fvisibility=hidden -DJUNCTION_VERSION='"scm"' \
            $(if $(LUA_INCDIR),-I$(LUA_INCDIR)) $(if $(SQLITE_INCDIR),-I$(SQLITE_INCDIR)) $(PQ_CFLAGS)

# a rebuild with other flags (PQ_DIR=no after a build with libpq) recompiles
# everything: build/rock/.config holds the flags, rewritten only when they differ
CONFIG_TEXT := $(CC) $(CFLAGS) $(JN_FLAGS) $(LIBFLAG) $(PQ_LIBS) | $(SRCS)
$(shell mkdir -p build/rock && { printf '%s\n' '$(subst ','\'',$(CONFIG_TEXT))' | \
  cmp -s - build/rock/.config || printf '%s\n' '$(subst ','\'',$(CONFIG_TEXT))' > build/rock/.config; })

.PHONY: all
all: $(OUT)

build/rock/obj/%.o: csrc/%.c $(wildcard csrc/*.h) build/rock/.config
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(JN_FLAGS) -c -o $@ $<

$(OUT): $(OBJS)
	@mkdir -p $(@D)
	$(CC) $(LIBFLAG) -o $@ $^ $(if $(SQLITE_LIBDIR),-L$(SQLITE_LIBDIR)) -lsqlite3 $(PQ_LIBS)
