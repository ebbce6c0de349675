/*
 * bench/raw_blog.c -- the blog workload (bench/WORKLOAD.md) written by hand
 * on the SQLite C API: the reference junction's figures are divided by.
 *
 *   raw_blog [--schema-from TEMPLATE] DBPATH [P G K]     (defaults 20000 200 5)
 *
 * Connection: foreign_keys=ON, journal_mode=WAL, synchronous=NORMAL, and
 * temp_store=MEMORY as junction.open sets it by default.
 *
 * DBPATH must be a new database. Without --schema-from the tables are made
 * from the workload's DDL. With it, every table and index of the database
 * TEMPLATE (made by junction's db:sync(), see bench/blog.lua --schema-only) is
 * made again from its sqlite_master text, so that this program works on the
 * same tables and indexes as junction does on the schema sync makes.
 *
 * What each call of the ORM costs here, at the least a careful C program can
 * do with SQLite (every statement prepared once, then reset, bound, stepped):
 *
 *   create            one INSERT with a fresh timestamp; the new rowid
 *   setGenres(ids)    SELECT the post's current genre ids; one DELETE per id
 *                     to drop; one INSERT of all the missing rows (up to 16 a
 *                     statement)
 *   getGenres()       one SELECT; each row copied into a struct (strings
 *                     copied), freed after use
 *   findAll+include   one SELECT over the three tables, ordered by post;
 *                     P post structs each owning its genre structs
 *   countGenres()     SELECT count(*)
 *   hasGenre(id)      SELECT EXISTS(...)
 *   removeGenres(ids) one DELETE per id
 *
 * Output: the eight lines "<phase> <calls> <seconds> <calls/s> <checksum>",
 * stdout flushed after each (bench/callgrind.sh cuts its profile there).
 */

#define _POSIX_C_SOURCE 200809L

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sqlite3.h>

typedef sqlite3_int64 i64;

#define MAX_ROWS 16          /* links one INSERT adds at most            */
#define TS_LEN 23            /* "YYYY-MM-DD HH:MM:SS.mmm"                */

static void fail(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    fprintf(stderr, "raw_blog: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    exit(1);
}

static void *grow(void *p, size_t size)
{
    void *q = realloc(p, size ? size : 1);

    if (q == NULL)
        fail("out of memory");
    return q;
}

static double seconds_now(void)
{
    struct timespec t;

    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* Writes n digits of v, most significant first. */
static char *digits(char *out, long v, int n)
{
    int k;

    for (k = n - 1; k >= 0; k--) {
        out[k] = (char)('0' + v % 10);
        v /= 10;
    }
    return out + n;
}

/* The current UTC time, "YYYY-MM-DD HH:MM:SS.mmm", read once per row. */
static void stamp(char out[TS_LEN + 1])
{
    struct timespec t;
    struct tm tm;
    char *p = out;

    clock_gettime(CLOCK_REALTIME, &t);
    gmtime_r(&t.tv_sec, &tm);
    p = digits(p, tm.tm_year + 1900L, 4); *p++ = '-';
    p = digits(p, tm.tm_mon + 1L, 2);     *p++ = '-';
    p = digits(p, tm.tm_mday, 2);         *p++ = ' ';
    p = digits(p, tm.tm_hour, 2);         *p++ = ':';
    p = digits(p, tm.tm_min, 2);          *p++ = ':';
    p = digits(p, tm.tm_sec, 2);          *p++ = '.';
    p = digits(p, t.tv_nsec / 1000000L, 3);
    *p = '\0';
}

/* --- rows the calls hand back ------------------------------------------ */

typedef struct {
    i64 id;
    char *name, *created_at, *updated_at;
} GenreRow;

typedef struct {
    GenreRow *row;
    size_t len, cap;
} Genres;

typedef struct {
    i64 id;
    char *text, *created_at, *updated_at;
    Genres genres;
} PostRow;

static char *text_copy(sqlite3_stmt *st, int col)
{
    const unsigned char *s = sqlite3_column_text(st, col);
    int n = sqlite3_column_bytes(st, col);
    char *c;

    if (s == NULL)
        return NULL;
    c = grow(NULL, (size_t)n + 1);
    memcpy(c, s, (size_t)n + 1);
    return c;
}

/* Appends the genre in columns col..col+3 of the current row. */
static void genres_push(Genres *gs, sqlite3_stmt *st, int col)
{
    GenreRow *g;

    if (gs->len == gs->cap) {
        gs->cap = gs->cap ? gs->cap * 2 : 8;
        gs->row = grow(gs->row, gs->cap * sizeof *gs->row);
    }
    g = &gs->row[gs->len++];
    g->id = sqlite3_column_int64(st, col);
    g->name = text_copy(st, col + 1);
    g->created_at = text_copy(st, col + 2);
    g->updated_at = text_copy(st, col + 3);
}

static void genres_release(Genres *gs)
{
    size_t k;

    for (k = 0; k < gs->len; k++) {
        free(gs->row[k].name);
        free(gs->row[k].created_at);
        free(gs->row[k].updated_at);
    }
    gs->len = 0;
}

/* --- the connection and its statements --------------------------------- */

static const char *const WORKLOAD_DDL =
    "CREATE TABLE post (post_id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " text TEXT NOT NULL, created_at TEXT NOT NULL, updated_at TEXT NOT NULL);"
    "CREATE TABLE genre (genre_id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " name VARCHAR(60) NOT NULL UNIQUE,"
    " created_at TEXT NOT NULL, updated_at TEXT NOT NULL);"
    "CREATE TABLE tag_post_genre (tag_post_genre_id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " post_id INTEGER NOT NULL REFERENCES post(post_id) ON DELETE CASCADE ON UPDATE CASCADE,"
    " genre_id INTEGER NOT NULL REFERENCES genre(genre_id) ON DELETE CASCADE ON UPDATE CASCADE,"
    " created_at TEXT NOT NULL, updated_at TEXT NOT NULL,"
    " UNIQUE (post_id, genre_id));";

typedef struct {
    sqlite3 *db;
    sqlite3_stmt *begin, *commit;
    sqlite3_stmt *new_genre, *new_post;
    sqlite3_stmt *linked;          /* genre ids of a post             */
    sqlite3_stmt *unlink;          /* one link                        */
    sqlite3_stmt *link[MAX_ROWS + 1]; /* [n]: n links; made when needed */
    sqlite3_stmt *genres_of;       /* getGenres                       */
    sqlite3_stmt *all_posts;       /* findAll with include            */
    sqlite3_stmt *count_of, *has;  /* countGenres, hasGenre           */
    sqlite3_stmt *links_total;     /* checksum of the write phases    */
    i64 *cur, *add;                /* setGenres scratch, K long       */
} Conn;

static sqlite3_stmt *prep(Conn *c, const char *sql)
{
    sqlite3_stmt *st = NULL;

    if (sqlite3_prepare_v2(c->db, sql, -1, &st, NULL) != SQLITE_OK)
        fail("preparing \"%s\": %s", sql, sqlite3_errmsg(c->db));
    return st;
}

static void run_sql(Conn *c, const char *sql, const char *what)
{
    char *err = NULL;

    if (sqlite3_exec(c->db, sql, NULL, NULL, &err) != SQLITE_OK)
        fail("%s: %s", what, err ? err : sqlite3_errmsg(c->db));
}

/* Steps st to its end (no rows expected) and resets it. */
static void exec_stmt(Conn *c, sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);

    sqlite3_reset(st);
    if (rc != SQLITE_DONE)
        fail("%s: %s", sqlite3_sql(st), sqlite3_errmsg(c->db));
}

/* Steps st to its one row, returns column 0 as an integer, resets it. */
static i64 one_int(Conn *c, sqlite3_stmt *st)
{
    i64 v;

    if (sqlite3_step(st) != SQLITE_ROW)
        fail("%s: %s", sqlite3_sql(st), sqlite3_errmsg(c->db));
    v = sqlite3_column_int64(st, 0);
    sqlite3_reset(st);
    return v;
}

/* 1 while st has a row; at the end resets it and returns 0. */
static int next_row(Conn *c, sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);

    if (rc == SQLITE_ROW)
        return 1;
    sqlite3_reset(st);
    if (rc != SQLITE_DONE)
        fail("%s: %s", sqlite3_sql(st), sqlite3_errmsg(c->db));
    return 0;
}

/* Makes the tables and indexes of TEMPLATE in c's database, in the order
   TEMPLATE made them (tables before the indexes on them). SQLite's own
   objects (sqlite_sequence, the automatic indexes of UNIQUE) come back by
   themselves. */
static void copy_schema(Conn *c, const char *template_path)
{
    sqlite3 *t;
    sqlite3_stmt *st;
    int n = 0;

    if (sqlite3_open_v2(template_path, &t, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK)
        fail("%s: %s", template_path, sqlite3_errmsg(t));
    if (sqlite3_prepare_v2(t, "SELECT sql FROM sqlite_master WHERE sql IS NOT NULL"
                              " AND type IN ('table', 'index') AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'"
                              " ORDER BY rowid", -1, &st, NULL) != SQLITE_OK)
        fail("%s: %s", template_path, sqlite3_errmsg(t));
    while (sqlite3_step(st) == SQLITE_ROW) {
        run_sql(c, (const char *)sqlite3_column_text(st, 0), "copying the schema");
        n++;
    }
    sqlite3_finalize(st);
    sqlite3_close(t);
    if (n == 0)
        fail("%s: no tables to copy", template_path);
}

static void conn_open(Conn *c, const char *path, const char *template_path, long K)
{
    sqlite3_stmt *st;
    int tables;

    memset(c, 0, sizeof *c);
    /* SQLite's memory statistics off before SQLite initialises, as junction
       does when it loads (csrc/junction.c): the same library settings */
    (void)sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
    if (sqlite3_open_v2(path, &c->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) != SQLITE_OK)
        fail("%s: %s", path, sqlite3_errmsg(c->db));
    /* The workload's settings, and junction's default temp_store: statement
       journals in memory (with SQLite's default they become a temporary file
       once past 64 KiB, and the ratio would measure that default). */
    run_sql(c, "PRAGMA foreign_keys = ON; PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;"
               " PRAGMA temp_store = MEMORY;", "settings");
    st = prep(c, "PRAGMA journal_mode");
    if (sqlite3_step(st) != SQLITE_ROW || strcmp((const char *)sqlite3_column_text(st, 0), "wal") != 0)
        fail("%s: the journal mode did not become WAL", path);
    sqlite3_finalize(st);

    st = prep(c, "SELECT count(*) FROM sqlite_master WHERE name IN ('post', 'genre', 'tag_post_genre')");
    tables = (int)one_int(c, st);
    sqlite3_finalize(st);
    if (tables != 0)
        fail("%s: the tables exist already (DBPATH must be a new database)", path);
    if (template_path != NULL)
        copy_schema(c, template_path);
    else
        run_sql(c, WORKLOAD_DDL, "making the tables");

    c->begin = prep(c, "BEGIN");
    c->commit = prep(c, "COMMIT");
    c->new_genre = prep(c, "INSERT INTO genre (name, created_at, updated_at) VALUES (?1, ?2, ?2)");
    c->new_post = prep(c, "INSERT INTO post (text, created_at, updated_at) VALUES (?1, ?2, ?2)");
    c->linked = prep(c, "SELECT genre_id FROM tag_post_genre WHERE post_id = ?1");
    c->unlink = prep(c, "DELETE FROM tag_post_genre WHERE post_id = ?1 AND genre_id = ?2");
    c->genres_of = prep(c, "SELECT g.genre_id, g.name, g.created_at, g.updated_at"
                           " FROM tag_post_genre AS l JOIN genre AS g ON g.genre_id = l.genre_id"
                           " WHERE l.post_id = ?1");
    c->all_posts = prep(c, "SELECT p.post_id, p.text, p.created_at, p.updated_at,"
                           " g.genre_id, g.name, g.created_at, g.updated_at"
                           " FROM post AS p"
                           " LEFT JOIN tag_post_genre AS l ON l.post_id = p.post_id"
                           " LEFT JOIN genre AS g ON g.genre_id = l.genre_id"
                           " ORDER BY p.post_id");
    c->count_of = prep(c, "SELECT count(*) FROM tag_post_genre WHERE post_id = ?1");
    c->has = prep(c, "SELECT EXISTS (SELECT 1 FROM tag_post_genre WHERE post_id = ?1 AND genre_id = ?2)");
    c->links_total = prep(c, "SELECT count(*) FROM tag_post_genre");
    /* a post has at most K links here, but setGenres must not trust that */
    c->cur = grow(NULL, (size_t)K * 2 * sizeof *c->cur);
    c->add = grow(NULL, (size_t)K * sizeof *c->add);
}

static void conn_close(Conn *c)
{
    sqlite3_stmt *st;

    while ((st = sqlite3_next_stmt(c->db, NULL)) != NULL)
        sqlite3_finalize(st);
    if (sqlite3_close(c->db) != SQLITE_OK)
        fail("close: %s", sqlite3_errmsg(c->db));
    free(c->cur);
    free(c->add);
}

/* "INSERT ... VALUES (?1, ?2, ?3, ?3), (?1, ?4, ?5, ?5), ..." for n rows. */
static sqlite3_stmt *link_stmt(Conn *c, int n)
{
    char sql[100 + MAX_ROWS * 40];
    int len, r;

    if (c->link[n] != NULL)
        return c->link[n];
    len = sprintf(sql, "INSERT INTO tag_post_genre (post_id, genre_id, created_at, updated_at) VALUES ");
    for (r = 0; r < n; r++)
        len += sprintf(sql + len, "%s(?1, ?%d, ?%d, ?%d)", r == 0 ? "" : ", ", 2 * r + 2, 2 * r + 3, 2 * r + 3);
    c->link[n] = prep(c, sql);
    return c->link[n];
}

/* --- the calls ------------------------------------------------------------ */

static i64 create_genre(Conn *c, const char *name)
{
    char ts[TS_LEN + 1];

    stamp(ts);
    sqlite3_bind_text(c->new_genre, 1, name, -1, SQLITE_STATIC);
    sqlite3_bind_text(c->new_genre, 2, ts, TS_LEN, SQLITE_STATIC);
    exec_stmt(c, c->new_genre);
    return sqlite3_last_insert_rowid(c->db);
}

static i64 create_post(Conn *c, const char *text)
{
    char ts[TS_LEN + 1];

    stamp(ts);
    sqlite3_bind_text(c->new_post, 1, text, -1, SQLITE_STATIC);
    sqlite3_bind_text(c->new_post, 2, ts, TS_LEN, SQLITE_STATIC);
    exec_stmt(c, c->new_post);
    return sqlite3_last_insert_rowid(c->db);
}

static int member(i64 id, const i64 *set, size_t n)
{
    size_t k;

    for (k = 0; k < n; k++)
        if (set[k] == id)
            return 1;
    return 0;
}

static void unlink_one(Conn *c, i64 post, i64 genre)
{
    sqlite3_bind_int64(c->unlink, 1, post);
    sqlite3_bind_int64(c->unlink, 2, genre);
    exec_stmt(c, c->unlink);
}

static void link_rows(Conn *c, i64 post, const i64 *ids, size_t n)
{
    char ts[MAX_ROWS][TS_LEN + 1];

    while (n > 0) {
        int m = n > MAX_ROWS ? MAX_ROWS : (int)n, r;
        sqlite3_stmt *st = link_stmt(c, m);

        sqlite3_bind_int64(st, 1, post);
        for (r = 0; r < m; r++) {
            stamp(ts[r]);
            sqlite3_bind_int64(st, 2 * r + 2, ids[r]);
            sqlite3_bind_text(st, 2 * r + 3, ts[r], TS_LEN, SQLITE_STATIC);
        }
        exec_stmt(c, st);
        ids += m;
        n -= (size_t)m;
    }
}

/* setGenres: the post's links become exactly ids[0..n-1] (distinct). */
static void set_genres(Conn *c, i64 post, const i64 *ids, size_t n, size_t room)
{
    size_t ncur = 0, nadd = 0, k;

    sqlite3_bind_int64(c->linked, 1, post);
    while (next_row(c, c->linked)) {
        if (ncur == room)
            fail("setGenres: post %lld has more than %lu links", (long long)post, (unsigned long)room);
        c->cur[ncur++] = sqlite3_column_int64(c->linked, 0);
    }
    for (k = 0; k < ncur; k++)
        if (!member(c->cur[k], ids, n))
            unlink_one(c, post, c->cur[k]);
    for (k = 0; k < n; k++)
        if (!member(ids[k], c->cur, ncur))
            c->add[nadd++] = ids[k];
    link_rows(c, post, c->add, nadd);
}

static void get_genres(Conn *c, i64 post, Genres *out)
{
    sqlite3_bind_int64(c->genres_of, 1, post);
    while (next_row(c, c->genres_of))
        genres_push(out, c->genres_of, 0);
}

/* findAll{include}: every post, each owning its genres. */
static PostRow *all_posts(Conn *c, size_t *count)
{
    PostRow *posts = NULL, *p = NULL;
    size_t n = 0, cap = 0;
    sqlite3_stmt *st = c->all_posts;

    while (next_row(c, st)) {
        i64 id = sqlite3_column_int64(st, 0);

        if (p == NULL || p->id != id) {
            if (n == cap) {
                cap = cap ? cap * 2 : 1024;
                posts = grow(posts, cap * sizeof *posts);
            }
            p = &posts[n++];
            memset(p, 0, sizeof *p);
            p->id = id;
            p->text = text_copy(st, 1);
            p->created_at = text_copy(st, 2);
            p->updated_at = text_copy(st, 3);
        }
        if (sqlite3_column_type(st, 4) != SQLITE_NULL)
            genres_push(&p->genres, st, 4);
    }
    *count = n;
    return posts;
}

static void posts_release(PostRow *posts, size_t n)
{
    size_t k;

    for (k = 0; k < n; k++) {
        free(posts[k].text);
        free(posts[k].created_at);
        free(posts[k].updated_at);
        genres_release(&posts[k].genres);
        free(posts[k].genres.row);
    }
    free(posts);
}

static i64 count_genres(Conn *c, i64 post)
{
    sqlite3_bind_int64(c->count_of, 1, post);
    return one_int(c, c->count_of);
}

static int has_genre(Conn *c, i64 post, i64 genre)
{
    sqlite3_bind_int64(c->has, 1, post);
    sqlite3_bind_int64(c->has, 2, genre);
    return one_int(c, c->has) != 0;
}

static void remove_genres(Conn *c, i64 post, const i64 *ids, size_t n)
{
    size_t k;

    for (k = 0; k < n; k++)
        unlink_one(c, post, ids[k]);
}

/* --- the workload --------------------------------------------------------- */

typedef struct {
    long P, G, K;
    i64 *genre_key;   /* [n]: key of genre n = 1..G, as create returned it */
    i64 *post_key;    /* [i]: key of post i = 1..P                         */
    i64 *want;        /* K keys, refilled by ids()                         */
} Work;

/* ids(i, s): genre numbers ((i*7 + j*13 + s) mod G) + 1, j = 0..K-1, as the
   keys those genres got. */
static const i64 *ids(const Work *w, long i, long s)
{
    long j;

    for (j = 0; j < w->K; j++)
        w->want[j] = w->genre_key[(i * 7 + j * 13 + s) % w->G + 1];
    return w->want;
}

static double clock_start(Conn *c)
{
    double t = seconds_now();

    exec_stmt(c, c->begin);
    return t;
}

static double clock_stop(Conn *c, double t)
{
    exec_stmt(c, c->commit);
    return seconds_now() - t;
}

static void line(const char *phase, long calls, double secs, i64 checksum)
{
    printf("%s %ld %.6f %.1f %lld\n", phase, calls, secs, (double)calls / secs, (long long)checksum);
    fflush(stdout);
}

static long count_arg(const char *s, const char *what)
{
    char *end;
    long v = strtol(s, &end, 10);

    if (*s < '0' || *s > '9' || *end != '\0' || v < 1 || v > 100000000L)
        fail("%s must be a positive integer, got \"%s\"", what, s);
    return v;
}

int main(int argc, char **argv)
{
    Conn c;
    Work w;
    Genres list = { NULL, 0, 0 };
    const char *template_path = NULL, *path;
    char name[32];
    double t, secs;
    i64 sum;
    long i;
    int a = 1;

    w.P = 20000;
    w.G = 200;
    w.K = 5;
    if (argc > 2 && strcmp(argv[1], "--schema-from") == 0) {
        template_path = argv[2];
        a = 3;
    }
    if (argc - a != 1 && argc - a != 4) {
        fprintf(stderr, "usage: raw_blog [--schema-from TEMPLATE] DBPATH [P G K]   (defaults 20000 200 5)\n");
        return 2;
    }
    path = argv[a];
    if (argc - a == 4) {
        w.P = count_arg(argv[a + 1], "P");
        w.G = count_arg(argv[a + 2], "G");
        w.K = count_arg(argv[a + 3], "K");
    }
    if (13 * w.K > w.G)
        fail("ids() needs 13*K <= G for K distinct genres (K=%ld, G=%ld)", w.K, w.G);
    w.genre_key = grow(NULL, (size_t)(w.G + 1) * sizeof *w.genre_key);
    w.post_key = grow(NULL, (size_t)(w.P + 1) * sizeof *w.post_key);
    w.want = grow(NULL, (size_t)w.K * sizeof *w.want);
    conn_open(&c, path, template_path, w.K);

    /* 1. insert_genres */
    t = clock_start(&c);
    sum = 0;
    for (i = 1; i <= w.G; i++) {
        sprintf(name, "genre-%ld", i);
        w.genre_key[i] = create_genre(&c, name);
        sum += w.genre_key[i];
    }
    line("insert_genres", w.G, clock_stop(&c, t), sum);

    /* 2. insert_posts */
    t = clock_start(&c);
    sum = 0;
    for (i = 1; i <= w.P; i++) {
        sprintf(name, "post %ld", i);
        w.post_key[i] = create_post(&c, name);
        sum += w.post_key[i];
    }
    line("insert_posts", w.P, clock_stop(&c, t), sum);

    /* 3. set_initial */
    t = clock_start(&c);
    for (i = 1; i <= w.P; i++)
        set_genres(&c, w.post_key[i], ids(&w, i, 0), (size_t)w.K, (size_t)w.K * 2);
    secs = clock_stop(&c, t);
    line("set_initial", w.P, secs, one_int(&c, c.links_total));

    /* 4. get_all */
    t = clock_start(&c);
    sum = 0;
    for (i = 1; i <= w.P; i++) {
        size_t k;

        get_genres(&c, w.post_key[i], &list);
        for (k = 0; k < list.len; k++)
            sum += list.row[k].id;
        genres_release(&list);
    }
    line("get_all", w.P, clock_stop(&c, t), sum);
    free(list.row);

    /* 5. set_shift */
    t = clock_start(&c);
    for (i = 1; i <= w.P; i++)
        set_genres(&c, w.post_key[i], ids(&w, i, 26), (size_t)w.K, (size_t)w.K * 2);
    secs = clock_stop(&c, t);
    line("set_shift", w.P, secs, one_int(&c, c.links_total));

    /* 6. eager: (sum of post_id * genre_id) mod 2^31 */
    {
        PostRow *posts;
        size_t n, k, m, links = 0;

        t = clock_start(&c);
        posts = all_posts(&c, &n);
        sum = 0;
        for (k = 0; k < n; k++) {
            for (m = 0; m < posts[k].genres.len; m++)
                sum = (sum + posts[k].id * posts[k].genres.row[m].id) % 2147483648LL;
            links += posts[k].genres.len;
        }
        posts_release(posts, n);
        secs = clock_stop(&c, t);
        if (n != (size_t)w.P || links != (size_t)w.P * (size_t)w.K)
            fail("eager: %lu posts and %lu links, expected %ld and %ld",
                 (unsigned long)n, (unsigned long)links, w.P, w.P * w.K);
        line("eager", 1, secs, sum);
    }

    /* 7. count_has */
    t = clock_start(&c);
    sum = 0;
    for (i = 1; i <= w.P; i++) {
        sum += count_genres(&c, w.post_key[i]);
        sum += has_genre(&c, w.post_key[i], w.genre_key[(i * 7 + 26) % w.G + 1]);
    }
    line("count_has", 2 * w.P, clock_stop(&c, t), sum);

    /* 8. remove_all */
    t = clock_start(&c);
    for (i = 1; i <= w.P; i++)
        remove_genres(&c, w.post_key[i], ids(&w, i, 26), (size_t)w.K);
    secs = clock_stop(&c, t);
    line("remove_all", w.P, secs, one_int(&c, c.links_total));

    conn_close(&c);
    free(w.genre_key);
    free(w.post_key);
    free(w.want);
    return 0;
}
