# junction -- build, test and CI plumbing.
#
#   make [build]       build/{5.1,jit,5.3,5.4}/junction/core.so from every csrc/*.c
#   make test          deps + build + busted under lua5.1, luajit, lua5.3, lua5.4
#   make test-pg       every spec file but those .ci/pg-specs excludes (PG_ALL=1: all) and
#                      examples/blog.lua on a private PostgreSQL server (.ci/pg.sh),
#                      Lua 5.4 then LuaJIT; says why when it skips (never under CI=true)
#   make demo          deps + build + examples/blog.lua (lua5.4) on a fresh blog.sqlite3
#   make repl          lua5.4 -i examples/repl.lua with the paths set
#   make lint          luacheck (.luacheckrc)
#   make asan          ASan+UBSan build of the 5.4 module, whole busted suite under it
#   make valgrind      busted under valgrind (lua5.1 by default: VALGRIND_LUA=5.4 for 5.4)
#   make rockspec      luarocks make (offline) for 5.4 and LuaJIT + the rockspec is complete
#   make rockspec-update   rewrite the rockspec's file lists from csrc/ and lua/junction/
#   make bench | bench-scale | bench-openresty | soak | openresty-test
#   make deps          install missing Debian packages (.ci/packages)
#   make clean
#
# The .so files never link liblua (the interpreter provides the symbols) and
# export only luaopen_junction_core (-fvisibility=hidden + JN_EXPORT in jn.h).

VERSION ?= scm

# {====== the flags: the one place they are set
JN_CFLAGS := -std=c99 -O2 -g -fPIC -fvisibility=hidden \
             -Wall -Wextra -pedantic -Wshadow -Wmissing-prototypes -Wwrite-strings \
             -Wdeclaration-after-statement -Werror \
             -DJUNCTION_VERSION=\"$(VERSION)\"
JN_LDLIBS := -lsqlite3
# PostgreSQL (csrc/jn_pg.c) is compiled in when libpq is installed
# (pkg-config libpq); `make JN_PG=0` builds the SQLite engine alone.
ifneq ($(JN_PG),0)
ifeq ($(shell pkg-config --exists libpq && echo yes),yes)
PG_BUILT := yes
JN_CFLAGS += -DJN_WITH_PG $(shell pkg-config --cflags libpq)
JN_LDLIBS += $(shell pkg-config --libs libpq)
endif
endif
# the sanitizer build adds these (later -O1 wins over -O2)
SAN_FLAGS := -O1 -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all
# CFLAGS / LDFLAGS from the command line are appended (make CFLAGS=-O0)
# }======

ABIS := 5.1 jit 5.3 5.4
SRCS := $(sort $(wildcard csrc/*.c))
HDRS := $(wildcard csrc/*.h)

# per build dir: the interpreter, its pkg-config name and extra flags
lua_5.1 := lua5.1
lua_jit := luajit
lua_5.3 := lua5.3
lua_5.4 := lua5.4
pc_5.1  := lua5.1
pc_jit  := luajit
pc_5.3  := lua5.3
pc_5.4  := lua5.4
pc_asan := lua5.4
extra_asan := $(SAN_FLAGS)

SOS := $(foreach v,$(ABIS),build/$(v)/junction/core.so)

# Lua search paths for running things from the source tree (5.4)
LPATH := lua/?.lua;lua/?/init.lua
RUN54 := LUA_PATH_5_4='$(LPATH);;' LUA_CPATH_5_4='build/5.4/?.so;;'

DEMO_DB ?= blog.sqlite3

.DEFAULT_GOAL := build
.PHONY: build deps test test-pg demo repl lint asan valgrind rockspec rockspec-update bench bench-scale bench-openresty soak \
        openresty-test clean

build: $(SOS)

# Rebuild everything when the flags or the list of sources change (a .c added
# or removed): build/.config holds both and is rewritten only when it differs.
CONFIG_TEXT := $(JN_CFLAGS) $(JN_LDLIBS) $(SAN_FLAGS) $(CFLAGS) $(LDFLAGS) | $(SRCS)
$(shell mkdir -p build && { printf '%s\n' '$(subst ','\'',$(CONFIG_TEXT))' | \
  cmp -s - build/.config || printf '%s\n' '$(subst ','\'',$(CONFIG_TEXT))' > build/.config; })

# One object per source per build dir, so `make -j2` uses both cores. Every
# object depends on every header (few headers, short build: simple and safe).
define ABI_RULES
build/$(1)/obj/%.o: csrc/%.c $$(HDRS) build/.config
	@mkdir -p $$(@D)
	$$(CC) $$(JN_CFLAGS) $$(extra_$(1)) $$(CFLAGS) \
	  $$$$(pkg-config --cflags $$(pc_$(1)) sqlite3) -c -o $$@ $$<

build/$(1)/junction/core.so: $$(patsubst csrc/%.c,build/$(1)/obj/%.o,$$(SRCS))
	@mkdir -p $$(@D)
	$$(CC) -shared $$(extra_$(1)) $$(LDFLAGS) -o $$@ $$^ $$(JN_LDLIBS)
	@bash .ci/check-so.sh $$@
endef
$(foreach v,$(ABIS) asan,$(eval $(call ABI_RULES,$(v))))

deps:
	@bash .ci/deps.sh

# busted under each runtime, then one summed "N passed, N failed" line
test: deps
	@$(MAKE) --no-print-directory build
	@bash .ci/busted.sh $(ABIS)

# PostgreSQL: a throwaway server started and stopped by .ci/pg.sh (also when
# the specs fail). Skipped, saying why, where PostgreSQL cannot run; CI (CI=true,
# as .ci/run sets it) installs it, so there a skip is a failure.
test-pg: deps
	@$(MAKE) --no-print-directory build/5.4/junction/core.so build/jit/junction/core.so
	@why=; \
	if [ -z "$(PG_BUILT)" ]; then why="junction is built without PostgreSQL (pkg-config finds no libpq: apt-get install libpq-dev)"; \
	elif ! why=$$(bash .ci/pg.sh check); then :; else why=; fi; \
	if [ -n "$$why" ]; then \
	  echo "test-pg: skipped: $$why"; \
	  if [ "$${CI:-}" = true ]; then echo "test-pg: CI must not skip the PostgreSQL suite"; echo "0 passed, 1 failed"; exit 1; fi; \
	  exit 0; \
	fi; \
	bash .ci/pg.sh run -- bash .ci/pg-suite.sh

demo: deps
	@$(MAKE) --no-print-directory build/5.4/junction/core.so
	rm -f $(DEMO_DB) $(DEMO_DB)-wal $(DEMO_DB)-shm $(DEMO_DB)-journal
	$(RUN54) lua5.4 examples/blog.lua $(DEMO_DB)

repl: build/5.4/junction/core.so
	$(RUN54) lua5.4 -i examples/repl.lua

LINT_DIRS = $(wildcard lua spec bench examples test bin)
lint:
	luacheck --no-color $(LINT_DIRS)

# The 5.4 interpreter is not instrumented, so the ASan runtime is preloaded
# (into lua5.4 only: --wrap); the module pulls libubsan itself. Leak
# detection stays on: lua5.4 closes its state at exit (busted ends with
# os.exit(code, true)), so a reported leak is a real one.
# intercept_tls_get_addr=0: LeakSanitizer's own tracking of dynamic TLS
# (its __tls_get_addr interceptor) read a garbage block ("DTLS 4 at
# 0x35-0x1000001137") and its tracer crashed at exit (exit 86, no leak
# found) in bin/junction's rollback, depending only on how the module
# happened to be laid out; static TLS and every other root are still scanned.
ASAN_WRAP = env LD_PRELOAD=$$(gcc -print-file-name=libasan.so) \
  ASAN_OPTIONS=detect_leaks=1:exitcode=86:strict_string_checks=1:detect_stack_use_after_return=1:intercept_tls_get_addr=0 \
  UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
asan: deps
	@$(MAKE) --no-print-directory build/asan/junction/core.so
	@bash .ci/busted.sh --build=asan --label=asan-5.4 --wrap="$(ASAN_WRAP)" 5.4

VALGRIND_LUA ?= 5.1
valgrind: deps
	@$(MAKE) --no-print-directory build/$(VALGRIND_LUA)/junction/core.so
	@bash .ci/busted.sh --label=valgrind-$(VALGRIND_LUA) \
	  --wrap='valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite --show-leak-kinds=definite' \
	  $(VALGRIND_LUA)

rockspec: deps
	@bash .ci/check-rockspec.sh

# after adding or removing a csrc/*.c or lua/junction/*.lua
rockspec-update:
	@bash .ci/check-rockspec.sh --write

# The blog workload against bench/raw_blog.c, both schemas, Lua 5.4 then LuaJIT
# (docs/PERFORMANCE.md); BENCH_ROUNDS alternating rounds each.
BENCH_ROUNDS ?= 9
bench: deps build
	bash bench/run.sh --no-build --rounds $(BENCH_ROUNDS) --lua lua5.4
	bash bench/run.sh --no-build --rounds $(BENCH_ROUNDS) --lua luajit

bench-scale: deps build
	bash bench/run.sh --scale

# GET /posts/:id/genres of examples/openresty against the same nginx answering a
# constant string from Lua, side by side with wrk (docs/PERFORMANCE.md, "OpenResty")
bench-openresty: deps build
	bash examples/openresty/bench.sh

soak: deps build
	bash test/reliability/run.sh --soak

openresty-test: deps build
	bash examples/openresty/test.sh

clean:
	rm -rf build
	rm -f $(DEMO_DB) $(DEMO_DB)-wal $(DEMO_DB)-shm $(DEMO_DB)-journal
	rm -f csrc/*.o junction/core.so  # luarocks make run in the checkout
	-@rmdir junction 2>/dev/null || true
