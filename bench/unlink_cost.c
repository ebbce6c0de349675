/*
** bench/unlink_cost.c: what removing a post's K links costs SQLite itself,
** five ways, on the sync schema's junction table (examples/models/), so that
** junction's removeGenres can be held against the cheapest one.  Builds the
** blog's links (P posts, G genres, K links each) in a database file, then
** removes every post's K links in one transaction, METHOD being:
**
**   0  one DELETE per link ("post_id = ?1 AND genre_id = ?2")
**   1  the same inside SAVEPOINT ... RELEASE (a call made all or nothing)
**   2  one DELETE ... "post_id = ?1 AND genre_id IN (?2, ...)"
**   3  one DELETE ... "(post_id = ?1 AND genre_id = ?2) OR (post_id = ?1 AND ...)"
**   4  one DELETE ... "post_id = ?1 AND (+genre_id = ?2 OR +genre_id = ?3 ...)"
**
** Instructions of the removal alone (docs/PERFORMANCE.md, "Per-call cost"):
**
**   cc -O2 -o bench/build/unlink_cost bench/unlink_cost.c -lsqlite3
**   for m in 0 1 2 3 4; do valgrind --tool=callgrind --toggle-collect=remove_all \
**     --callgrind-out-file=/tmp/unlink.$m bench/build/unlink_cost $m /tmp/unlink.db; done
**
** and Ir / P is the cost of one post's removal.
*/
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define P 2000
#define G 200
#define K 5

static sqlite3 *db;

static void run(const char *sql) {
  char *err = NULL;
  if (sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK) {
    fprintf(stderr, "unlink_cost: %s: %s\n", sql, err);
    exit(1);
  }
}

static sqlite3_stmt *prep(const char *sql) {
  sqlite3_stmt *st;
  if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
    fprintf(stderr, "unlink_cost: %s\n", sqlite3_errmsg(db));
    exit(1);
  }
  return st;
}

static void done(sqlite3_stmt *st) {
  if (sqlite3_step(st) != SQLITE_DONE) {
    fprintf(stderr, "unlink_cost: %s\n", sqlite3_errmsg(db));
    exit(1);
  }
  sqlite3_reset(st);
}

/* The workload's ids(i, 0). */
static long gid(long i, long j) { return ((i * 7 + j * 13) % G) + 1; }

static int method;
static sqlite3_stmt *one, *many, *sp, *rel;

/* noinline: callgrind's --toggle-collect names it */
__attribute__((noinline)) void remove_all(void) {
  long i, j;
  run("BEGIN");
  for (i = 1; i <= P; i++) {
    if (method <= 1) {
      if (method == 1) done(sp);
      for (j = 0; j < K; j++) {
        sqlite3_bind_int64(one, 1, i);
        sqlite3_bind_int64(one, 2, gid(i, j));
        done(one);
      }
      if (method == 1) done(rel);
    } else {
      sqlite3_bind_int64(many, 1, i);
      for (j = 0; j < K; j++) sqlite3_bind_int64(many, (int)j + 2, gid(i, j));
      done(many);
    }
  }
  run("COMMIT");
}

int main(int argc, char **argv) {
  static const char *const forms[] = {
    NULL, NULL,
    "DELETE FROM tag_post_genre WHERE post_id = ?1 AND genre_id IN (?2, ?3, ?4, ?5, ?6)",
    "DELETE FROM tag_post_genre WHERE (post_id = ?1 AND genre_id = ?2) OR (post_id = ?1 AND genre_id = ?3)"
    " OR (post_id = ?1 AND genre_id = ?4) OR (post_id = ?1 AND genre_id = ?5) OR (post_id = ?1 AND genre_id = ?6)",
    "DELETE FROM tag_post_genre WHERE post_id = ?1 AND (+genre_id = ?2 OR +genre_id = ?3"
    " OR +genre_id = ?4 OR +genre_id = ?5 OR +genre_id = ?6)"
  };
  char wal[4096];
  sqlite3_stmt *ins, *left;
  long i, j;
  if (argc != 3 || (method = atoi(argv[1])) < 0 || method > 4) {
    fprintf(stderr, "usage: unlink_cost METHOD(0-4) DBPATH\n");
    return 2;
  }
  remove(argv[2]);
  snprintf(wal, sizeof wal, "%s-wal", argv[2]);
  remove(wal);
  snprintf(wal, sizeof wal, "%s-shm", argv[2]);
  remove(wal);
  if (sqlite3_open(argv[2], &db) != SQLITE_OK) return 1;
  run("PRAGMA foreign_keys = ON; PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;"
      " PRAGMA temp_store = MEMORY;");
  run("CREATE TABLE genre (genre_id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT);"
      "CREATE TABLE post (post_id INTEGER PRIMARY KEY AUTOINCREMENT, text TEXT);"
      "CREATE TABLE tag_post_genre (tag_post_genre_id INTEGER PRIMARY KEY AUTOINCREMENT,"
      " genre_id INTEGER REFERENCES genre (genre_id) ON DELETE CASCADE ON UPDATE CASCADE,"
      " post_id INTEGER REFERENCES post (post_id) ON DELETE CASCADE ON UPDATE CASCADE,"
      " created_at TEXT NOT NULL, updated_at TEXT NOT NULL, UNIQUE (genre_id, post_id));"
      "CREATE INDEX \"tag_post_genre.post_id\" ON tag_post_genre (post_id, genre_id);");
  run("BEGIN");
  for (i = 1; i <= G; i++) run("INSERT INTO genre (name) VALUES ('g')");
  for (i = 1; i <= P; i++) run("INSERT INTO post (text) VALUES ('p')");
  ins = prep("INSERT INTO tag_post_genre (genre_id, post_id, created_at, updated_at)"
             " VALUES (?1, ?2, '2026-12-01 00:00:00.000', '2026-12-01 00:00:00.000')");
  for (i = 1; i <= P; i++)
    for (j = 0; j < K; j++) {
      sqlite3_bind_int64(ins, 1, gid(i, j));
      sqlite3_bind_int64(ins, 2, i);
      done(ins);
    }
  run("COMMIT");
  one = prep("DELETE FROM tag_post_genre WHERE post_id = ?1 AND genre_id = ?2");
  if (forms[method] != NULL) many = prep(forms[method]);
  sp = prep("SAVEPOINT jn_w");
  rel = prep("RELEASE jn_w");
  remove_all();
  left = prep("SELECT count(*) FROM tag_post_genre");
  sqlite3_step(left);
  printf("method %d: links left %d (0 expected)\n", method, sqlite3_column_int(left, 0));
  return sqlite3_column_int(left, 0) != 0;
}
