/* failmalloc.c — the counting, failing allocator of failmalloc.h. Test code.
 *
 * The __wrap_* functions are what the linker's --wrap option binds every call of malloc,
 * calloc, realloc, strdup and strndup in the program's own objects and static libraries to;
 * __real_* are the C library's (or ASan's) functions. One counter serves those and the
 * OpenSSL and SQLite hooks, so "allocation N" means the same thing whoever made it.
 */
#include "failmalloc.h"

#include <CUnit/CUnit.h>
#include <dlfcn.h>
#include <execinfo.h>
#include <fnmatch.h>
#include <openssl/crypto.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "meshara/error.h"

#ifdef __SANITIZE_ADDRESS__
#include <sanitizer/lsan_interface.h>
#endif

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t n);
char *__real_strdup(const char *s);
char *__real_strndup(const char *s, size_t n);
void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t n, size_t size);
void *__wrap_realloc(void *p, size_t n);
char *__wrap_strdup(const char *s);
char *__wrap_strndup(const char *s, size_t n);

enum {
    SQLITE_HDR = 16,       /* our size header in front of each SQLite block (keeps alignment) */
    TRACE_FIRST = 1 << 16, /* first trace allocation, in entries */
    FRAMES_MAX = 48,       /* frames kept of the failed allocation's stack */
};

static struct {
    int on;     /* between begin and end */
    int paused; /* nesting depth of mesh_fm_pause */
    uint64_t count, fail_at, failed;
    int cascade;
    int backtrace; /* MESH_FM_BACKTRACE set: print where the failed allocation was asked */
    void *frames[FRAMES_MAX]; /* where the (first) failed allocation was asked */
    int nframes;
    /* trace: source of each counted allocation */
    uint8_t *trace;
    uint64_t trace_len, trace_cap;
    int tracing;
    uint64_t per_src[3];
} fm;

static void trace_add(mesh_fm_src src)
{
    if (fm.trace_len == fm.trace_cap) {
        uint64_t cap = fm.trace_cap ? 2 * fm.trace_cap : TRACE_FIRST;
        uint8_t *t = __real_realloc(fm.trace, cap);
        if (!t) { /* the test cannot go on without its trace: no silent partial walk */
            fputs("failmalloc: out of memory for the trace\n", stderr);
            abort();
        }
        fm.trace = t;
        fm.trace_cap = cap;
    }
    fm.trace[fm.trace_len++] = (uint8_t)src;
    fm.per_src[src]++;
}

/* 1 if this allocation is to fail. Counts it when counting. */
static int fm_fail(mesh_fm_src src)
{
    if (!fm.on || fm.paused)
        return 0;
    fm.count++;
    if (fm.tracing)
        trace_add(src);
    if (fm.fail_at && (fm.count == fm.fail_at || (fm.cascade && fm.count > fm.fail_at))) {
        if (!fm.failed) {
            fm.paused++; /* backtrace() may allocate on its first call */
            fm.nframes = backtrace(fm.frames, FRAMES_MAX);
            if (fm.backtrace)
                backtrace_symbols_fd(fm.frames, fm.nframes, 2);
            fm.paused--;
        }
        fm.failed++;
        return 1;
    }
    return 0;
}

/* ---- the wrapped C library functions ----------------------------------------------------- */

void *__wrap_malloc(size_t n)
{
    return fm_fail(MESH_FM_OURS) ? NULL : __real_malloc(n);
}

void *__wrap_calloc(size_t n, size_t size)
{
    return fm_fail(MESH_FM_OURS) ? NULL : __real_calloc(n, size);
}

/* realloc(p, 0) frees (glibc): not an allocation that can fail. */
void *__wrap_realloc(void *p, size_t n)
{
    if (n == 0 && p)
        return __real_realloc(p, n);
    return fm_fail(MESH_FM_OURS) ? NULL : __real_realloc(p, n);
}

char *__wrap_strdup(const char *s)
{
    return fm_fail(MESH_FM_OURS) ? NULL : __real_strdup(s);
}

char *__wrap_strndup(const char *s, size_t n)
{
    return fm_fail(MESH_FM_OURS) ? NULL : __real_strndup(s, n);
}

/* ---- OpenSSL: every live block on one list ----------------------------------------------
 *
 * OpenSSL 3.0 leaks on some of its own failure paths (OSSL_LIB_CTX_new, ...): blocks the
 * caller never sees, so cannot free. Each OpenSSL block carries a header linking it into one
 * list, with the run it was allocated in. After a run whose failed allocation was asked from
 * inside one of those OpenSSL functions (OPENSSL_LEAKY below), the blocks of that run still
 * live are handed to LeakSanitizer as ignored; every other leak, ours included, is reported
 * at exit as usual. The links are stored disguised (XOR HIDE) so the list itself does not
 * make a leaked block reachable in LeakSanitizer's eyes. */

typedef struct ossl_hdr {
    uintptr_t prev, next; /* disguised: ossl_ptr() */
    uint64_t run;
    uint64_t pad; /* the header is 32 bytes: blocks keep 16-byte alignment */
} ossl_hdr;

static const uintptr_t HIDE = (uintptr_t)0xa5a5a5a5a5a5a5a5ull;
static ossl_hdr ossl_live = {0, 0, 0, 0};
static uint64_t ossl_run; /* the run blocks are attributed to (0: outside the walk) */

static ossl_hdr *ossl_ptr(uintptr_t v)
{
    return v ? (ossl_hdr *)(v ^ HIDE) : &ossl_live; /* 0: the list head (empty list) */
}

static uintptr_t ossl_hide(ossl_hdr *h)
{
    return h == &ossl_live ? 0 : (uintptr_t)h ^ HIDE;
}

static void *ossl_link(ossl_hdr *h, uint64_t run)
{
    ossl_hdr *next = ossl_ptr(ossl_live.next);
    h->run = run;
    h->prev = 0;
    h->next = ossl_live.next;
    next->prev = ossl_hide(h);
    ossl_live.next = ossl_hide(h);
    return h + 1;
}

static ossl_hdr *ossl_unlink(void *p)
{
    ossl_hdr *h = (ossl_hdr *)p - 1;
    ossl_ptr(h->prev)->next = h->next;
    ossl_ptr(h->next)->prev = h->prev;
    return h;
}

static void *ossl_malloc(size_t n, const char *file, int line)
{
    (void)file, (void)line;
    if (fm_fail(MESH_FM_OPENSSL))
        return NULL;
    ossl_hdr *h = __real_malloc(sizeof *h + n);
    return h ? ossl_link(h, ossl_run) : NULL;
}

/* As CRYPTO_realloc: size 0 frees and returns NULL, a NULL block is a malloc. */
static void *ossl_realloc(void *p, size_t n, const char *file, int line)
{
    if (!p)
        return ossl_malloc(n, file, line);
    if (n == 0) {
        free(ossl_unlink(p));
        return NULL;
    }
    if (fm_fail(MESH_FM_OPENSSL))
        return NULL;
    ossl_hdr *h = ossl_unlink(p);
    uint64_t run = h->run;
    ossl_hdr *g = __real_realloc(h, sizeof *h + n);
    if (!g) {
        ossl_link(h, run);
        return NULL;
    }
    return ossl_link(g, run);
}

static void ossl_free(void *p, const char *file, int line)
{
    (void)file, (void)line;
    if (p)
        free(ossl_unlink(p));
}

/* The blocks allocated during run and still live: how many; with ignore, and in a
 * sanitizer build, LeakSanitizer is told to ignore them. */
static uint64_t ossl_live_of(uint64_t run, int ignore)
{
    uint64_t n = 0;
    for (ossl_hdr *h = ossl_ptr(ossl_live.next); h != &ossl_live; h = ossl_ptr(h->next)) {
        if (h->run != run)
            continue;
        n++;
#ifdef __SANITIZE_ADDRESS__
        if (ignore)
            __lsan_ignore_object(h);
#else
        (void)ignore;
#endif
    }
    return n;
}

/* ---- SQLite: blocks carry their size in a header (xSize must answer it) ------------------ */

static void *sq_malloc(int n)
{
    if (n <= 0 || fm_fail(MESH_FM_SQLITE))
        return NULL;
    uint8_t *b = __real_malloc((size_t)n + SQLITE_HDR);
    if (!b)
        return NULL;
    memcpy(b, &n, sizeof n);
    return b + SQLITE_HDR;
}

static void sq_free(void *p)
{
    if (p)
        free((uint8_t *)p - SQLITE_HDR);
}

static int sq_size(void *p)
{
    int n = 0;
    if (p)
        memcpy(&n, (uint8_t *)p - SQLITE_HDR, sizeof n);
    return n;
}

static void *sq_realloc(void *p, int n)
{
    if (!p)
        return sq_malloc(n);
    if (n <= 0 || fm_fail(MESH_FM_SQLITE))
        return NULL;
    uint8_t *b = __real_realloc((uint8_t *)p - SQLITE_HDR, (size_t)n + SQLITE_HDR);
    if (!b)
        return NULL;
    memcpy(b, &n, sizeof n);
    return b + SQLITE_HDR;
}

static int sq_roundup(int n)
{
    return (n + 7) & ~7;
}

static int sq_init(void *ud)
{
    (void)ud;
    return SQLITE_OK;
}

static void sq_shutdown(void *ud)
{
    (void)ud;
}

static const sqlite3_mem_methods SQ_MEM = {sq_malloc,  sq_free, sq_realloc,  sq_size,
                                           sq_roundup, sq_init, sq_shutdown, NULL};

/* ---- control ------------------------------------------------------------------------------ */

int mesh_fm_init(void)
{
    int rc = 0;
    if (!CRYPTO_set_mem_functions(ossl_malloc, ossl_realloc, ossl_free)) {
        fputs("failmalloc: OpenSSL allocated before mesh_fm_init\n", stderr);
        rc = -1;
    }
    if (sqlite3_config(SQLITE_CONFIG_MALLOC, &SQ_MEM) != SQLITE_OK) {
        fputs("failmalloc: SQLite initialised before mesh_fm_init\n", stderr);
        rc = -1;
    }
    return rc;
}

void mesh_fm_begin(uint64_t fail_at, int cascade)
{
    fm.count = fm.failed = 0;
    fm.nframes = 0;
    fm.fail_at = fail_at;
    fm.cascade = cascade;
    const char *bt = getenv("MESH_FM_BACKTRACE");
    fm.backtrace = bt && *bt && strcmp(bt, "0") != 0;
    fm.paused = 0;
    fm.on = 1;
}

uint64_t mesh_fm_end(void)
{
    fm.on = 0;
    fm.tracing = 0;
    return fm.count;
}

uint64_t mesh_fm_failed(void)
{
    return fm.failed;
}

void mesh_fm_pause(void)
{
    fm.paused++;
}

void mesh_fm_resume(void)
{
    if (fm.paused > 0)
        fm.paused--;
}

void mesh_fm_trace_start(void)
{
    fm.trace_len = 0;
    memset(fm.per_src, 0, sizeof fm.per_src);
    fm.tracing = 1;
}

mesh_fm_src mesh_fm_trace_src(uint64_t n)
{
    return n >= 1 && n <= fm.trace_len ? (mesh_fm_src)fm.trace[n - 1] : MESH_FM_OURS;
}

uint64_t mesh_fm_trace_count(mesh_fm_src src)
{
    return (unsigned)src < 3 ? fm.per_src[src] : 0;
}

void mesh_fm_trace_free(void)
{
    free(fm.trace);
    fm.trace = NULL;
    fm.trace_len = fm.trace_cap = 0;
}

/* ---- OpenSSL's own leaks ------------------------------------------------------------------ */

/* OpenSSL 3.0 functions that leak part of what they built when one of their own allocations
 * fails, whatever the caller does (it got NULL or an error, nothing to free). A run that
 * leaks OpenSSL blocks is excused only when its failed allocation was asked from inside
 * one of them (fnmatch patterns, matched against the exported names dladdr finds in the
 * stack); any other leaked OpenSSL block is ours (an object we did not free). */
static const char *const OPENSSL_LEAKY[] = {
    "OSSL_LIB_CTX_new", /* a context whose set-up failed half-way */
    /* An algorithm's names registered half-way in the context's name map (fetches, encoder
     * and decoder look-ups): the entry whose name copy failed stays. */
    "CRYPTO_strndup",
    "OBJ_NAME_do_all",
    /* A fetch whose method-store insert failed (CRYPTO_set_ex_data under the method
     * constructor): the half-built method stays in the store's cache, the fetch returns NULL. */
    "EVP_*_fetch",
    NULL,
};

/* The exported function frame i of the failed allocation's stack is in ("" if none). */
static const char *frame_name(int i)
{
    Dl_info info;
    if (!dladdr(fm.frames[i], &info) || !info.dli_sname)
        return "";
    return info.dli_sname;
}

static int openssl_own_leak(void)
{
    for (int i = 0; i < fm.nframes; i++)
        for (const char *const *f = OPENSSL_LEAKY; *f; f++)
            if (fnmatch(*f, frame_name(i), 0) == 0)
                return 1;
    return 0;
}

/* Where the failed allocation was asked (library functions by name). */
static void print_frames(void)
{
    printf("  the failed allocation was asked from:\n");
    for (int i = 0; i < fm.nframes; i++) {
        Dl_info info;
        if (!dladdr(fm.frames[i], &info))
            continue;
        if (info.dli_sname) /* exported (a library's) */
            printf("    %s+%#lx\n", info.dli_sname,
                   (unsigned long)((char *)fm.frames[i] - (char *)info.dli_saddr));
        else /* our static code: addr2line -e FILE OFFSET */
            printf("    %s +%#lx\n", info.dli_fname,
                   (unsigned long)((char *)fm.frames[i] - (char *)info.dli_fbase));
    }
}

/* ---- the walk ------------------------------------------------------------------------------ */

static const char *const SRC_NAME[] = {"ours", "openssl", "sqlite"};

int mesh_fm_selected(const char *name)
{
    const char *only = getenv("MESH_FM_SUBJECT");
    return !only || !*only || strcmp(only, name) == 0;
}

static double seconds_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int listed(const int *codes, int code)
{
    for (const int *a = codes; a && *a; a++)
        if (*a == code)
            return 1;
    return 0;
}

/* n: the allocation that failed (its source decides whether foreign_allowed applies). */
static int allowed(const mesh_fm_walk_cfg *cfg, int code, uint64_t n)
{
    if (code == MESH_OK || code == MESH_ERR_NOMEM || listed(cfg->allowed, code))
        return 1;
    return mesh_fm_trace_src(n) != MESH_FM_OURS && listed(cfg->foreign_allowed, code);
}

static void tally(mesh_fm_report *r, int code)
{
    for (int i = 0; i < MESH_FM_MAX_CODES; i++) {
        if (r->tally[i] && r->codes[i] == code) {
            r->tally[i]++;
            return;
        }
        if (!r->tally[i]) {
            r->codes[i] = code;
            r->tally[i] = 1;
            return;
        }
    }
}

/* One run with allocation n failing (and every later one with cascade). */
static void walk_one(const char *name, mesh_fm_run_fn run, void *ud, const mesh_fm_walk_cfg *cfg,
                     mesh_fm_report *r, uint64_t n, int cascade, int verbose)
{
    unsigned asserts_failed = CU_get_number_of_failures();
    ossl_run++;
    mesh_fm_begin(n, cascade);
    int rc = run(ud);
    mesh_fm_end();
    /* A run whose own assertions failed is named, so MESH_FM_ONLY can replay it. */
    int asserted = CU_get_number_of_failures() != asserts_failed;
    /* Failed inside an OpenSSL function known to leak on that path: what the run left of
     * OpenSSL's is not ours to free (cached blocks, reachable anyway, are ignored too). */
    if (fm.nframes && mesh_fm_trace_src(n) == MESH_FM_OPENSSL && openssl_own_leak() &&
        ossl_live_of(ossl_run, 1))
        r->openssl_leaks++;
#ifdef __SANITIZE_ADDRESS__
    /* MESH_FM_LEAKCHECK=1: a leak check after each run (slow) names the first run that
     * leaked, rather than learning at exit that one did. Reports accumulate: stop there. */
    static int leak_seen;
    const char *lc = getenv("MESH_FM_LEAKCHECK");
    if (!leak_seen && lc && *lc && strcmp(lc, "0") != 0 && __lsan_do_recoverable_leak_check()) {
        leak_seen = 1;
        asserted = 1;
        printf("failmalloc %s: the first leak, just reported, came of this run:\n", name);
    }
#endif
    r->runs++;
    r->cascades += cascade != 0;
    if (!fm.failed)
        r->unstable++;
    if (rc == MESH_OK)
        r->recovered++;
    tally(r, rc);
    int ok = allowed(cfg, rc, n) && !asserted;
    if (!ok)
        r->bad++;
    if (verbose || !ok)
        printf("failmalloc %s: allocation %llu (%s)%s failed -> %s%s\n", name,
               (unsigned long long)n, SRC_NAME[mesh_fm_trace_src(n)],
               cascade ? " and every later one" : "", mesh_errname(rc),
               asserted ? "  ASSERTION FAILED"
               : ok     ? ""
                        : "  NOT ALLOWED");
    if (!ok || verbose)
        print_frames();
}

static uint64_t div_up(uint64_t a, uint64_t b)
{
    return b ? (a + b - 1) / b : 1;
}

/* The strides that make the walk take about max_runs runs (1: every allocation): our own
 * code's allocations first, every one if they fit in half the budget, the library
 * allocations (OpenSSL, SQLite) an even stride in what is left. */
static void walk_strides(const mesh_fm_walk_cfg *cfg, mesh_fm_report *r)
{
    const char *full = getenv("MESH_FM_FULL");
    r->stride = r->stride_ours = 1;
    if (!cfg->max_runs || (full && *full && strcmp(full, "0") != 0) || r->count <= cfg->max_runs)
        return;
    uint64_t ours = r->per_src[MESH_FM_OURS], foreign = r->count - ours;
    uint64_t half = cfg->max_runs / 2 ? cfg->max_runs / 2 : 1;
    if (ours > cfg->max_runs - half)
        r->stride_ours = div_up(ours, foreign ? half : cfg->max_runs);
    uint64_t left = cfg->max_runs - div_up(ours, r->stride_ours);
    r->stride = div_up(foreign, left ? left : 1);
}

int mesh_fm_walk(const char *name, mesh_fm_run_fn run, void *ud, const mesh_fm_walk_cfg *cfg,
                 mesh_fm_report *r)
{
    memset(r, 0, sizeof *r);
    double t0 = seconds_now();
    /* A first run warms what libraries initialise once per process (OpenSSL's error strings
     * and method stores...), so the counted run is what every later run repeats. */
    mesh_fm_begin(0, 0);
    int rc = run(ud);
    mesh_fm_end();
    if (rc == MESH_OK) {
        ossl_run++;
        mesh_fm_begin(0, 0);
        mesh_fm_trace_start();
        rc = run(ud);
        r->count = mesh_fm_end();
    }
    if (rc != MESH_OK) {
        printf("failmalloc %s: the run without failures ended %s\n", name, mesh_errname(rc));
        return -1;
    }
    for (int i = 0; i < 3; i++)
        r->per_src[i] = mesh_fm_trace_count((mesh_fm_src)i);
    walk_strides(cfg, r);
    const char *v = getenv("MESH_FM_VERBOSE"), *only = getenv("MESH_FM_ONLY");
    int verbose = v && *v && strcmp(v, "0") != 0;
    if (only && *only) {
        walk_one(name, run, ud, cfg, r, strtoull(only, NULL, 10), 0, 1);
    } else {
        uint64_t seen[2] = {0, 0}; /* ours, others */
        for (uint64_t n = 1; n <= r->count; n++) {
            int other = mesh_fm_trace_src(n) != MESH_FM_OURS;
            if (seen[other]++ % (other ? r->stride : r->stride_ours) != 0)
                continue;
            walk_one(name, run, ud, cfg, r, n, 0, verbose);
            if (cfg->cascade_stride && n % cfg->cascade_stride == 0)
                walk_one(name, run, ud, cfg, r, n, 1, verbose);
        }
    }
    r->seconds = seconds_now() - t0;
    printf("failmalloc %s: %llu allocations (ours %llu, openssl %llu, sqlite %llu), %llu runs "
           "(stride %llu over ours, %llu over others, %llu cascades), %llu recovered, %llu "
           "unstable, %llu OpenSSL "
           "leaks of its own, %llu not allowed, %.1f s; outcomes:",
           name, (unsigned long long)r->count, (unsigned long long)r->per_src[0],
           (unsigned long long)r->per_src[1], (unsigned long long)r->per_src[2],
           (unsigned long long)r->runs, (unsigned long long)r->stride_ours,
           (unsigned long long)r->stride, (unsigned long long)r->cascades,
           (unsigned long long)r->recovered, (unsigned long long)r->unstable,
           (unsigned long long)r->openssl_leaks, (unsigned long long)r->bad, r->seconds);
    for (int i = 0; i < MESH_FM_MAX_CODES && r->tally[i]; i++)
        printf(" %s=%llu", mesh_errname(r->codes[i]), (unsigned long long)r->tally[i]);
    printf("\n");
    mesh_fm_trace_free();
    return 0;
}
