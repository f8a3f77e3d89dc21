/* scenario.c — YAML scenario loader (see scenario.h).
 *
 * Three stages. (1) libyaml's event parser builds a small tree (scalars, mappings, sequences)
 * whose every node carries its position; the tree is bounded (node count, depth, keys per
 * mapping) and refuses aliases. (2) --set overrides are grafted onto that tree as if the file
 * said them, so they are validated by the very same code. (3) The tree is decoded against
 * the schema into the public struct, then sim_scenario_check() applies the cross-field rules.
 *
 * Memory: the tree lives in a scratch arena freed after decoding; the struct lives in its own
 * arena, swapped in only when decoding and checking both succeeded, so a failed
 * sim_scenario_set() leaves the previous struct untouched. The file's bytes are kept so a set
 * can rebuild from scratch (parsing is cheap next to a run).
 */
#include "sim/scenario.h"

#include <errno.h>
#include <math.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <yaml.h>

#include "meshara/error.h"

/* Bounds of values (not counts): a year of virtual time, 1 Tbit/s, 1 GiB. */
#define MAX_TIME (365ULL * 24 * 3600 * 1000000000ULL)
#define MAX_RATE 1000000000000ULL
#define MAX_SIZE (1ULL << 30)

enum {
    MAX_MAP_KEYS = 64, /* keys in one YAML mapping (no schema map has more) */
    ARENA_BLOCK = 64 * 1024,
    ARENA_MAX = 256 * 1024 * 1024, /* a guard far above what the node limits allow */
    MAX_FRAC_DIGITS = 18,
    SHOW_MAX = 40, /* characters of a bad value quoted in a message */
    PATH_MAX_LEN = 160,
};

/* ---- arena ------------------------------------------------------------------------------- */

typedef struct arena_blk {
    struct arena_blk *next;
    size_t used, cap;
    max_align_t data[];
} arena_blk;

typedef struct arena {
    arena_blk *head;
    size_t total;
} arena;

/* Zeroed, max-aligned memory that lives until arena_free. NULL when out of memory or past
 * ARENA_MAX. */
static void *arena_alloc(arena *a, size_t n)
{
    const size_t align = sizeof(max_align_t);
    n = (n + align - 1) / align * align;
    if (n == 0)
        n = align;
    arena_blk *b = a->head;
    if (!b || b->cap - b->used < n) {
        size_t cap = n > ARENA_BLOCK ? n : ARENA_BLOCK;
        if (a->total + cap > ARENA_MAX)
            return NULL;
        b = malloc(sizeof *b + cap);
        if (!b)
            return NULL;
        b->next = a->head;
        b->used = 0;
        b->cap = cap;
        a->head = b;
        a->total += cap;
    }
    void *p = (char *)b->data + b->used;
    b->used += n;
    memset(p, 0, n);
    return p;
}

static char *arena_strndup(arena *a, const char *s, size_t n)
{
    char *p = arena_alloc(a, n + 1);
    if (p) {
        memcpy(p, s, n);
        p[n] = '\0';
    }
    return p;
}

static void arena_free(arena *a)
{
    while (a->head) {
        arena_blk *n = a->head->next;
        free(a->head);
        a->head = n;
    }
    a->total = 0;
}

/* ---- errors -------------------------------------------------------------------------------- */

__attribute__((format(printf, 6, 7))) static int report(char *err, size_t errlen, int code,
                                                        const sim_scn_loc *loc, const char *hint,
                                                        const char *fmt, ...)
{
    if (!err || errlen == 0)
        return code;
    size_t o = 0;
    int n;
    if (loc && loc->line)
        n = snprintf(err, errlen, "%s:%u:%u: ", loc->origin, loc->line, loc->col);
    else
        n = snprintf(err, errlen, "%s: ", loc && loc->origin ? loc->origin : "scenario");
    o = n < 0 ? 0 : (size_t)n < errlen ? (size_t)n : errlen - 1;
    va_list ap;
    va_start(ap, fmt);
    n = vsnprintf(err + o, errlen - o, fmt, ap);
    va_end(ap);
    o += n < 0 ? 0 : (size_t)n < errlen - o ? (size_t)n : errlen - o - 1;
    if (hint && o < errlen)
        snprintf(err + o, errlen - o, " (hint: %s)", hint);
    return code;
}

/* A value quoted in a message: printable ASCII only, cut to SHOW_MAX. */
static const char *show(const char *s, char buf[SHOW_MAX + 4])
{
    size_t i = 0;
    for (; s[i] && i < SHOW_MAX; i++)
        buf[i] = s[i] >= 0x20 && s[i] < 0x7f ? s[i] : '?';
    if (s[i]) {
        memcpy(buf + i, "...", 3);
        i += 3;
    }
    buf[i] = '\0';
    return buf;
}

static size_t edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 64 || lb > 64)
        return (size_t)-1 / 2;
    size_t row[65];
    for (size_t j = 0; j <= lb; j++)
        row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t up = row[j];
            size_t sub = diag + (a[i - 1] != b[j - 1]);
            size_t del = up + 1, ins = row[j - 1] + 1;
            row[j] = sub < del ? (sub < ins ? sub : ins) : (del < ins ? del : ins);
            diag = up;
        }
    }
    return row[lb];
}

/* The candidate nearest to word when it is close enough to be a likely typo, else NULL. */
static const char *nearest(const char *word, const char *const *cands, size_t n)
{
    const char *best = NULL;
    size_t bestd = (size_t)-1;
    for (size_t i = 0; i < n; i++) {
        size_t dist = edit_distance(word, cands[i]);
        if (dist < bestd) {
            bestd = dist;
            best = cands[i];
        }
    }
    size_t len = strlen(word);
    size_t ok = len / 3 > 2 ? len / 3 : 2;
    return bestd <= ok ? best : NULL;
}

/* "did you mean 'x'?" or "<prefix>a, b, c" into buf. */
static const char *suggest(char *buf, size_t cap, const char *word, const char *const *cands,
                           size_t n, const char *prefix)
{
    const char *near = nearest(word, cands, n);
    if (near) {
        snprintf(buf, cap, "did you mean '%s'?", near);
        return buf;
    }
    size_t o = (size_t)snprintf(buf, cap, "%s", prefix);
    for (size_t i = 0; i < n && o < cap; i++)
        o += (size_t)snprintf(buf + o, cap - o, "%s%s", i ? ", " : "", cands[i]);
    if (n == 0 && o < cap)
        snprintf(buf + o, cap - o, "(none)");
    return buf;
}

/* ---- the YAML tree ------------------------------------------------------------------------ */

enum { Y_SCALAR, Y_MAP, Y_SEQ };

typedef struct ynode ynode;
struct ynode {
    int kind;
    int plain; /* scalar written without quotes (so `true` is a boolean, "true" a string) */
    sim_scn_loc loc;
    const char *s; /* scalar text, NUL-terminated */
    size_t len;
    ynode *key; /* in a mapping: this value's key (a scalar) */
    ynode *first, *last, *next;
    size_t n;
};

typedef struct tree {
    arena a;
    size_t nodes;
} tree;

static ynode *node_new(tree *t, int kind, const sim_scn_loc *loc)
{
    ynode *n = arena_alloc(&t->a, sizeof *n);
    if (n) {
        n->kind = kind;
        n->loc = *loc;
    }
    return n;
}

static void node_append(ynode *parent, ynode *child)
{
    if (parent->last)
        parent->last->next = child;
    else
        parent->first = child;
    parent->last = child;
    parent->n++;
}

static int is_null(const ynode *n)
{
    return !n || (n->kind == Y_SCALAR && n->plain &&
                  (n->len == 0 || !strcmp(n->s, "~") || !strcmp(n->s, "null") ||
                   !strcmp(n->s, "Null") || !strcmp(n->s, "NULL")));
}

static ynode *map_find(const ynode *map, const char *key)
{
    for (ynode *c = map->first; c; c = c->next)
        if (!strcmp(c->key->s, key))
            return c;
    return NULL;
}

/* Line and column (1-based) of a byte offset, for libyaml reader errors that carry only an
 * offset. */
static void offset_pos(const unsigned char *data, size_t len, size_t off, uint32_t *line,
                       uint32_t *col)
{
    *line = 1;
    *col = 1;
    for (size_t i = 0; i < off && i < len; i++) {
        if (data[i] == '\n') {
            ++*line;
            *col = 1;
        } else {
            ++*col;
        }
    }
}

typedef struct builder {
    tree *t;
    const char *origin;
    int positions; /* 0: values from --set, no line/column */
    ynode *stack[SIM_SCN_MAX_DEPTH];
    ynode *pending[SIM_SCN_MAX_DEPTH]; /* a mapping's key waiting for its value */
    int depth;
    ynode *root;
    char *err;
    size_t errlen;
} builder;

static sim_scn_loc mark_loc(const builder *b, yaml_mark_t m)
{
    sim_scn_loc l = {b->origin, 0, 0};
    if (b->positions) {
        l.line = (uint32_t)m.line + 1;
        l.col = (uint32_t)m.column + 1;
    }
    return l;
}

/* Place a new node in its parent (as a key, a value or an item). */
static int build_add(builder *b, ynode *n)
{
    if (++b->t->nodes > SIM_SCN_MAX_YAML_NODES)
        return report(b->err, b->errlen, MESH_ERR_LIMIT, &n->loc,
                      "split the scenario; large groups are one entry with a count",
                      "too many YAML nodes (limit %d)", SIM_SCN_MAX_YAML_NODES);
    if (b->depth == 0) {
        b->root = n;
        return MESH_OK;
    }
    ynode *parent = b->stack[b->depth - 1];
    if (parent->kind == Y_SEQ) {
        node_append(parent, n);
        return MESH_OK;
    }
    ynode **pending = &b->pending[b->depth - 1];
    if (!*pending) {
        if (n->kind != Y_SCALAR)
            return report(b->err, b->errlen, MESH_ERR_MALFORMED, &n->loc,
                          "keys are plain words such as name or count",
                          "a mapping key must be a scalar");
        if (parent->n >= MAX_MAP_KEYS)
            return report(b->err, b->errlen, MESH_ERR_LIMIT, &n->loc,
                          "no section of a scenario has that many keys",
                          "too many keys in one mapping (limit %d)", MAX_MAP_KEYS);
        ynode *dup = map_find(parent, n->s);
        if (dup) {
            char hint[96];
            if (dup->key->loc.line)
                snprintf(hint, sizeof hint, "first given at line %u, column %u", dup->key->loc.line,
                         dup->key->loc.col);
            else
                snprintf(hint, sizeof hint, "give each key once");
            char sb[SHOW_MAX + 4];
            return report(b->err, b->errlen, MESH_ERR_MALFORMED, &n->loc, hint,
                          "duplicate key '%s'", show(n->s, sb));
        }
        *pending = n;
        return MESH_OK;
    }
    n->key = *pending;
    *pending = NULL;
    node_append(parent, n);
    return MESH_OK;
}

/* Parse len bytes of YAML into a tree (*root NULL for an empty stream). */
static int build_tree(builder *b, const unsigned char *data, size_t len)
{
    yaml_parser_t p;
    yaml_event_t ev;
    int rc = MESH_OK, docs = 0, done = 0;
    if (!yaml_parser_initialize(&p))
        return report(b->err, b->errlen, MESH_ERR_NOMEM, NULL, NULL, "out of memory");
    yaml_parser_set_input_string(&p, data, len);
    while (!done && rc == MESH_OK) {
        if (!yaml_parser_parse(&p, &ev)) {
            sim_scn_loc l = mark_loc(b, p.problem_mark);
            if (p.error == YAML_READER_ERROR && b->positions)
                offset_pos(data, len, p.problem_offset, &l.line, &l.col);
            if (p.error == YAML_MEMORY_ERROR)
                rc = report(b->err, b->errlen, MESH_ERR_NOMEM, &l, NULL, "out of memory");
            else
                rc = report(b->err, b->errlen, MESH_ERR_MALFORMED, &l,
                            "check indentation, colons and quotes on this line and the one "
                            "before",
                            "YAML syntax error: %s%s%s", p.problem ? p.problem : "invalid",
                            p.context ? " " : "", p.context ? p.context : "");
            break;
        }
        sim_scn_loc l = mark_loc(b, ev.start_mark);
        ynode *n = NULL;
        switch (ev.type) {
        case YAML_DOCUMENT_START_EVENT:
            if (++docs > 1)
                rc = report(b->err, b->errlen, MESH_ERR_MALFORMED, &l,
                            "a scenario is one YAML document: remove this '---'",
                            "more than one YAML document");
            break;
        case YAML_ALIAS_EVENT:
            rc = report(b->err, b->errlen, MESH_ERR_MALFORMED, &l,
                        "write the value out instead of *alias", "YAML aliases are not supported");
            break;
        case YAML_SCALAR_EVENT:
            if (memchr(ev.data.scalar.value, 0, ev.data.scalar.length)) {
                rc = report(b->err, b->errlen, MESH_ERR_MALFORMED, &l, "remove the \\0 escape",
                            "NUL character in a string");
                break;
            }
            n = node_new(b->t, Y_SCALAR, &l);
            if (!n || !(n->s = arena_strndup(&b->t->a, (const char *)ev.data.scalar.value,
                                             ev.data.scalar.length))) {
                rc = report(b->err, b->errlen, MESH_ERR_NOMEM, &l, NULL, "out of memory");
                break;
            }
            n->len = ev.data.scalar.length;
            n->plain = ev.data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
            rc = build_add(b, n);
            break;
        case YAML_SEQUENCE_START_EVENT:
        case YAML_MAPPING_START_EVENT:
            if (b->depth >= SIM_SCN_MAX_DEPTH) {
                rc = report(b->err, b->errlen, MESH_ERR_LIMIT, &l,
                            "a scenario needs far less nesting", "nesting deeper than %d levels",
                            SIM_SCN_MAX_DEPTH);
                break;
            }
            n = node_new(b->t, ev.type == YAML_MAPPING_START_EVENT ? Y_MAP : Y_SEQ, &l);
            if (!n) {
                rc = report(b->err, b->errlen, MESH_ERR_NOMEM, &l, NULL, "out of memory");
                break;
            }
            rc = build_add(b, n);
            if (rc == MESH_OK) {
                b->pending[b->depth] = NULL;
                b->stack[b->depth++] = n;
            }
            break;
        case YAML_SEQUENCE_END_EVENT:
        case YAML_MAPPING_END_EVENT:
            b->depth--;
            break;
        case YAML_STREAM_END_EVENT:
            done = 1;
            break;
        default:
            break;
        }
        yaml_event_delete(&ev);
    }
    yaml_parser_delete(&p);
    return rc;
}

/* ---- decoding context and typed getters -------------------------------------------------- */

typedef struct dec {
    arena *a; /* the new struct's arena */
    sim_scenario *s;
    char *err;
    size_t errlen;
} dec;

#define TRY(x)                                                                                     \
    do {                                                                                           \
        int rc_ = (x);                                                                             \
        if (rc_ != MESH_OK)                                                                        \
            return rc_;                                                                            \
    } while (0)

static int nomem(dec *d, const ynode *n)
{
    return report(d->err, d->errlen, MESH_ERR_NOMEM, n ? &n->loc : NULL, NULL, "out of memory");
}

static const char *kind_name(const ynode *n)
{
    return n->kind == Y_MAP ? "a mapping" : n->kind == Y_SEQ ? "a list" : "a scalar";
}

static int wrong_type(dec *d, const ynode *n, const char *path, const char *expected,
                      const char *hint)
{
    char sb[SHOW_MAX + 4];
    if (n->kind == Y_SCALAR)
        return report(d->err, d->errlen, MESH_ERR_MALFORMED, &n->loc, hint,
                      "wrong type for %s: expected %s, found \"%s\"", path, expected,
                      show(n->s, sb));
    return report(d->err, d->errlen, MESH_ERR_MALFORMED, &n->loc, hint,
                  "wrong type for %s: expected %s, found %s", path, expected, kind_name(n));
}

static int want_map(dec *d, const ynode *n, const char *path)
{
    if (n->kind != Y_MAP)
        return wrong_type(d, n, path, "a mapping", "write `key: value` lines indented under it");
    return MESH_OK;
}

/* A list (or null = empty) of at most limit items. */
static int want_list(dec *d, const ynode *n, const char *path, size_t limit, const char *limname)
{
    if (is_null(n))
        return MESH_OK;
    if (n->kind != Y_SEQ)
        return wrong_type(d, n, path, "a list", "write items as `- ...` lines or [a, b]");
    if (n->n > limit) {
        const ynode *c = n->first;
        for (size_t i = 0; i < limit; i++)
            c = c->next;
        char hint[96];
        snprintf(hint, sizeof hint, "at most %zu (%s)", limit, limname);
        return report(d->err, d->errlen, MESH_ERR_LIMIT, &c->loc, hint,
                      "too many items in %s (limit %zu)", path, limit);
    }
    return MESH_OK;
}

static size_t list_len(const ynode *n)
{
    return is_null(n) ? 0 : n->n;
}

/* Every key of map must be in known (NULL-terminated). */
static int check_keys(dec *d, const ynode *map, const char *path, const char *const *known)
{
    size_t nk = 0;
    while (known[nk])
        nk++;
    for (const ynode *c = map->first; c; c = c->next) {
        size_t i = 0;
        while (i < nk && strcmp(known[i], c->key->s))
            i++;
        if (i < nk)
            continue;
        char hint[256], sb[SHOW_MAX + 4];
        suggest(hint, sizeof hint, c->key->s, known, nk, "known keys here: ");
        return report(d->err, d->errlen, MESH_ERR_MALFORMED, &c->key->loc, hint,
                      "unknown key '%s' in %s", show(c->key->s, sb), path);
    }
    return MESH_OK;
}

/* The value of key in map, NULL when absent or null. */
static const ynode *get(const ynode *map, const char *key)
{
    const ynode *n = map_find(map, key);
    return is_null(n) ? NULL : n;
}

static int need(dec *d, const ynode *map, const char *path, const char *key, const ynode **out)
{
    const ynode *n = map_find(map, key);
    if (!n) {
        char hint[96];
        snprintf(hint, sizeof hint, "add `%s:` to %s", key, path);
        return report(d->err, d->errlen, MESH_ERR_MALFORMED, &map->loc, hint,
                      "missing required key '%s' in %s", key, path);
    }
    if (is_null(n)) {
        char hint[96];
        snprintf(hint, sizeof hint, "give %s a value", key);
        return report(d->err, d->errlen, MESH_ERR_MALFORMED, &n->key->loc, hint,
                      "missing value for required key '%s' in %s", key, path);
    }
    *out = n;
    return MESH_OK;
}

/* Paths are for messages only: a cut one is fine. */
__attribute__((format(printf, 2, 3))) static void pathf(char *buf, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, PATH_MAX_LEN, fmt, ap);
    va_end(ap);
}

static void subpath(char *buf, const char *path, const char *key)
{
    pathf(buf, "%s%s%s", path, *path ? "." : "", key);
}

static void itempath(char *buf, const char *path, size_t i)
{
    pathf(buf, "%s[%zu]", path, i);
}

/* The value of optional key in map with its path in p (PATH_MAX_LEN bytes); NULL when
 * absent or null (p then untouched). */
static const ynode *opt(const ynode *map, const char *path, const char *key, char *p)
{
    const ynode *v = get(map, key);
    if (v)
        subpath(p, path, key);
    return v;
}

/* need(), also giving the key's path in p. */
static int need_at(dec *d, const ynode *map, const char *path, const char *key, const ynode **out,
                   char *p)
{
    subpath(p, path, key);
    return need(d, map, path, key, out);
}

static int out_of_range(dec *d, const ynode *n, const char *path, const char *hint)
{
    char sb[SHOW_MAX + 4];
    return report(d->err, d->errlen, MESH_ERR_MALFORMED, &n->loc, hint,
                  "value out of range for %s: \"%s\"", path, show(n->s, sb));
}

/* A decimal number "123" or "1.25": mantissa and count of fraction digits. Returns the
 * characters consumed (0: not a number; (size_t)-1: too many digits). */
static size_t scan_decimal(const char *s, uint64_t *mant, unsigned *frac)
{
    size_t i = 0, digits = 0;
    uint64_t m = 0;
    int dot = 0;
    unsigned f = 0;
    for (;; i++) {
        if (s[i] >= '0' && s[i] <= '9') {
            if (m > (UINT64_MAX - 9) / 10 || (dot && f >= MAX_FRAC_DIGITS))
                return (size_t)-1;
            m = m * 10 + (uint64_t)(s[i] - '0');
            digits++;
            f += dot;
        } else if (s[i] == '.' && !dot) {
            dot = 1;
        } else {
            break;
        }
    }
    if (digits == 0)
        return 0;
    *mant = m;
    *frac = f;
    return i;
}

typedef struct unit {
    const char *name;
    uint64_t mult;
} unit;

static const unit DURATION_UNITS[] = {
    {"ns", 1ULL},
    {"us", 1000ULL},
    {"ms", 1000000ULL},
    {"s", 1000000000ULL},
    {"m", 60ULL * 1000000000ULL},
    {"min", 60ULL * 1000000000ULL},
    {"h", 3600ULL * 1000000000ULL},
    {"d", 86400ULL * 1000000000ULL},
};
static const unit RATE_UNITS[] = {
    {"bit", 1ULL},        {"kbit", 1000ULL},       {"Kbit", 1000ULL},
    {"Mbit", 1000000ULL}, {"Gbit", 1000000000ULL}, {"bps", 1ULL},
    {"kbps", 1000ULL},    {"Mbps", 1000000ULL},    {"Gbps", 1000000000ULL},
};
static const unit SIZE_UNITS[] = {
    {"B", 1ULL},     {"KiB", 1ULL << 10}, {"MiB", 1ULL << 20},   {"GiB", 1ULL << 30},
    {"kB", 1000ULL}, {"MB", 1000000ULL},  {"GB", 1000000000ULL},
};

typedef struct unit_kind {
    const char *what; /* "a duration" */
    const unit *units;
    size_t nunits;
    int bare_ok; /* a bare number is in the first unit (sizes: bytes); else only 0 is allowed */
    uint64_t max;
    const char *hint;
} unit_kind;

static const unit_kind K_DURATION = {"a duration",
                                     DURATION_UNITS,
                                     sizeof DURATION_UNITS / sizeof DURATION_UNITS[0],
                                     0,
                                     MAX_TIME,
                                     "durations look like 500us, 250ms, 1.5s, 10m, 2h"};
static const unit_kind K_RATE = {"a rate", RATE_UNITS, sizeof RATE_UNITS / sizeof RATE_UNITS[0],
                                 0,        MAX_RATE,   "rates look like 500kbit, 10Mbit, 1Gbit"};
static const unit_kind K_SIZE = {"a size", SIZE_UNITS, sizeof SIZE_UNITS / sizeof SIZE_UNITS[0],
                                 1,        MAX_SIZE,   "sizes look like 1500B, 16KiB, 1MiB"};

static int get_scalar(dec *d, const ynode *n, const char *path, const char *expected,
                      const char *hint)
{
    if (n->kind != Y_SCALAR)
        return wrong_type(d, n, path, expected, hint);
    return MESH_OK;
}

static int get_units(dec *d, const ynode *n, const char *path, const unit_kind *k, uint64_t *out)
{
    TRY(get_scalar(d, n, path, k->what, k->hint));
    const char *s = n->s;
    if (s[0] == '-' && s[1] >= '0' && s[1] <= '9') {
        char sb[SHOW_MAX + 4];
        return report(d->err, d->errlen, MESH_ERR_MALFORMED, &n->loc, k->hint,
                      "value out of range for %s: \"%s\" is negative", path, show(s, sb));
    }
    uint64_t mant;
    unsigned frac;
    size_t used = scan_decimal(s, &mant, &frac);
    if (used == (size_t)-1)
        return out_of_range(d, n, path, "too many digits");
    if (used == 0)
        return wrong_type(d, n, path, k->what, k->hint);
    const char *u = s + used;
    while (*u == ' ')
        u++;
    uint64_t mult = 0;
    if (*u == '\0') {
        if (!k->bare_ok && mant != 0) {
            char sb[SHOW_MAX + 4];
            return report(d->err, d->errlen, MESH_ERR_MALFORMED, &n->loc, k->hint,
                          "bad unit for %s: \"%s\" has no unit", path, show(s, sb));
        }
        mult = 1;
    } else {
        for (size_t i = 0; i < k->nunits; i++)
            if (!strcmp(u, k->units[i].name))
                mult = k->units[i].mult;
        if (!mult) {
            char sb[SHOW_MAX + 4], ub[SHOW_MAX + 4];
            return report(d->err, d->errlen, MESH_ERR_MALFORMED, &n->loc, k->hint,
                          "bad unit \"%s\" for %s in \"%s\"", show(u, ub), path, show(s, sb));
        }
    }
    unsigned __int128 v = (unsigned __int128)mant * mult;
    uint64_t p10 = 1;
    for (unsigned i = 0; i < frac; i++)
        p10 *= 10;
    if (v % p10)
        return out_of_range(d, n, path, "finer than the smallest unit (1 ns, 1 bit/s, 1 byte)");
    v /= p10;
    if (v > k->max) {
        char hint[80];
        snprintf(hint, sizeof hint, "at most %llu in base units", (unsigned long long)k->max);
        return out_of_range(d, n, path, hint);
    }
    *out = (uint64_t)v;
    return MESH_OK;
}

static int get_duration(dec *d, const ynode *n, const char *path, mesh_time *out)
{
    return get_units(d, n, path, &K_DURATION, out);
}

/* A whole number in [min, max]. */
static int get_uint(dec *d, const ynode *n, const char *path, uint64_t min, uint64_t max,
                    uint64_t *out)
{
    TRY(get_scalar(d, n, path, "a whole number", "write digits only, e.g. 40"));
    const char *s = n->s;
    int neg = s[0] == '-';
    uint64_t mant;
    unsigned frac;
    size_t used = scan_decimal(s + neg, &mant, &frac);
    char hint[96];
    snprintf(hint, sizeof hint, "between %llu and %llu", (unsigned long long)min,
             (unsigned long long)max);
    if (used == (size_t)-1)
        return out_of_range(d, n, path, hint);
    if (used == 0 || s[neg + used] != '\0' || frac || strchr(s, '.'))
        return wrong_type(d, n, path, "a whole number", "write digits only, e.g. 40");
    if ((neg && mant) || mant < min || mant > max)
        return out_of_range(d, n, path, hint);
    *out = mant;
    return MESH_OK;
}

/* A finite real number (optionally followed by '%', then divided by 100 when pct_ok). */
static int get_real(dec *d, const ynode *n, const char *path, int pct_ok, double min, double max,
                    double *out)
{
    const char *hint = pct_ok ? "write a fraction as 1% or 0.01" : "write a number such as 0.95";
    TRY(get_scalar(d, n, path, pct_ok ? "a fraction" : "a number", hint));
    const char *s = n->s;
    size_t i = 0, digits = 0;
    if (s[i] == '+' || s[i] == '-')
        i++;
    while (s[i] >= '0' && s[i] <= '9')
        i++, digits++;
    if (s[i] == '.')
        for (i++; s[i] >= '0' && s[i] <= '9'; i++)
            digits++;
    if (digits && (s[i] == 'e' || s[i] == 'E')) {
        size_t j = i + 1;
        if (s[j] == '+' || s[j] == '-')
            j++;
        if (s[j] >= '0' && s[j] <= '9') {
            while (s[j] >= '0' && s[j] <= '9')
                j++;
            i = j;
        }
    }
    int pct = pct_ok && s[i] == '%';
    if (!digits || s[i + pct] != '\0')
        return wrong_type(d, n, path, pct_ok ? "a fraction" : "a number", hint);
    char num[64];
    if (i >= sizeof num)
        return out_of_range(d, n, path, "too many digits");
    memcpy(num, s, i);
    num[i] = '\0';
    double v = strtod(num, NULL);
    if (pct)
        v /= 100.0;
    if (!isfinite(v) || v < min || v > max) {
        char rh[96];
        snprintf(rh, sizeof rh, "between %g and %g%s", min, max, pct_ok ? " (0% to 100%)" : "");
        return out_of_range(d, n, path, rh);
    }
    *out = v;
    return MESH_OK;
}

static int get_fraction(dec *d, const ynode *n, const char *path, double *out)
{
    return get_real(d, n, path, 1, 0.0, 1.0, out);
}

static int get_bool(dec *d, const ynode *n, const char *path, int *out)
{
    static const char *const T[] = {"true", "True", "TRUE", "yes", "Yes", "on", "On"};
    static const char *const F[] = {"false", "False", "FALSE", "no", "No", "off", "Off"};
    if (n->kind == Y_SCALAR) {
        for (size_t i = 0; i < sizeof T / sizeof T[0]; i++) {
            if (!strcmp(n->s, T[i])) {
                *out = 1;
                return MESH_OK;
            }
            if (!strcmp(n->s, F[i])) {
                *out = 0;
                return MESH_OK;
            }
        }
    }
    return wrong_type(d, n, path, "true or false", "write true or false");
}

/* One of names[] (n of them); the index into *out. */
static int get_choice(dec *d, const ynode *n, const char *path, const char *const *names,
                      size_t count, int *out)
{
    char hint[256];
    if (n->kind != Y_SCALAR) {
        size_t o = 0;
        for (size_t i = 0; i < count && o < sizeof hint; i++)
            o += (size_t)snprintf(hint + o, sizeof hint - o, "%s%s",
                                  i ? ", " : "one of: ", names[i]);
        return wrong_type(d, n, path, "a word", hint);
    }
    suggest(hint, sizeof hint, n->s, names, count, "one of: ");
    for (size_t i = 0; i < count; i++) {
        if (!strcmp(n->s, names[i])) {
            *out = (int)i;
            return MESH_OK;
        }
    }
    char sb[SHOW_MAX + 4];
    return report(d->err, d->errlen, MESH_ERR_MALFORMED, &n->loc, hint, "bad value \"%s\" for %s",
                  show(n->s, sb), path);
}

/* A non-empty string of at most max bytes, copied into the struct's arena. */
static int get_string(dec *d, const ynode *n, const char *path, size_t max, const char **out)
{
    TRY(get_scalar(d, n, path, "a string", "write the text, quoted if it has ': ' or '#'"));
    if (n->len == 0 || n->len > max) {
        char hint[64];
        snprintf(hint, sizeof hint, "1 to %zu characters", max);
        return out_of_range(d, n, path, hint);
    }
    char *c = arena_strndup(d->a, n->s, n->len);
    if (!c)
        return nomem(d, n);
    *out = c;
    return MESH_OK;
}

/* A name: a letter, then letters, digits, '_', '-' (and '.' when dots); at most
 * SIM_SCN_MAX_NAME bytes. Names are what --set paths and references use. */
static int get_name_ex(dec *d, const ynode *n, const char *path, int dots, const char **out)
{
    const char *hint = dots ? "a letter, then letters, digits, '_', '-' or '.'"
                            : "a letter, then letters, digits, '_' or '-'";
    TRY(get_scalar(d, n, path, "a name", hint));
    int ok = n->len > 0 && n->len <= SIM_SCN_MAX_NAME &&
             ((n->s[0] >= 'a' && n->s[0] <= 'z') || (n->s[0] >= 'A' && n->s[0] <= 'Z'));
    for (size_t i = 0; ok && i < n->len; i++) {
        char c = n->s[i];
        ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
             c == '_' || c == '-' || (dots && c == '.');
    }
    if (!ok) {
        char sb[SHOW_MAX + 4], h[128];
        snprintf(h, sizeof h, "%s; at most %d characters", hint, SIM_SCN_MAX_NAME);
        return report(d->err, d->errlen, MESH_ERR_MALFORMED, &n->loc, h, "bad name \"%s\" for %s",
                      show(n->s, sb), path);
    }
    const char *c = arena_strndup(d->a, n->s, n->len);
    if (!c)
        return nomem(d, n);
    *out = c;
    return MESH_OK;
}

static int get_name(dec *d, const ynode *n, const char *path, const char **out)
{
    return get_name_ex(d, n, path, 0, out);
}

/* Error for a name defined twice. */
static int duplicate(dec *d, const ynode *n, const char *what, const sim_scn_loc *first)
{
    char hint[160], sb[SHOW_MAX + 4];
    snprintf(hint, sizeof hint, "%s names must be unique; the first is at line %u, column %u", what,
             first->line, first->col);
    return report(d->err, d->errlen, MESH_ERR_MALFORMED, &n->loc, hint, "duplicate name '%s'",
                  show(n->s, sb));
}

/* An item's optional `name:`, unique among the items before it, or "<what><idx>" when
 * absent. Items are `size` bytes apart with their name (const char *) and loc (sim_scn_loc) at
 * the given offsets; the item at idx gets the name. */
static int item_name(dec *d, const ynode *map, const char *path, const char *what, size_t idx,
                     void *items, size_t size, size_t name_off, size_t loc_off)
{
    char p[PATH_MAX_LEN], buf[32];
    const ynode *v;
    const char **name = (const char **)((char *)items + idx * size + name_off);
    if ((v = opt(map, path, "name", p))) {
        TRY(get_name(d, v, p, name));
        for (size_t i = 0; i < idx; i++) {
            const char *prev = *(const char **)((char *)items + i * size + name_off);
            if (!strcmp(prev, *name))
                return duplicate(d, v, what,
                                 (const sim_scn_loc *)((char *)items + i * size + loc_off));
        }
        return MESH_OK;
    }
    snprintf(buf, sizeof buf, "%s%zu", what, idx);
    if (!(*name = arena_strndup(d->a, buf, strlen(buf))))
        return nomem(d, map);
    return MESH_OK;
}

/* [a, b]: a list of exactly two items. */
static int get_pair(dec *d, const ynode *n, const char *path, const char *what, const ynode **a,
                    const ynode **b)
{
    char hint[96];
    *a = *b = NULL;
    snprintf(hint, sizeof hint, "write [min, max] with two %s", what);
    if (n->kind != Y_SEQ || n->n != 2)
        return wrong_type(d, n, path, "a list of two values", hint);
    *a = n->first;
    *b = n->first->next;
    return MESH_OK;
}

/* ---- decoding: network ----------------------------------------------------------------------- */

#define LINK_KEYS "latency", "jitter", "bandwidth", "loss", "queue"

/* The link fields present in map onto l (other fields untouched). */
static int decode_link_fields(dec *d, const ynode *map, const char *path, sim_scn_link *l)
{
    char p[PATH_MAX_LEN];
    const ynode *v;
    if ((v = opt(map, path, "latency", p))) {
        TRY(get_duration(d, v, p, &l->latency));
        l->set |= SIM_SCN_LINK_LATENCY;
    }
    if ((v = opt(map, path, "jitter", p))) {
        TRY(get_duration(d, v, p, &l->jitter));
        l->set |= SIM_SCN_LINK_JITTER;
    }
    if ((v = opt(map, path, "bandwidth", p))) {
        TRY(get_units(d, v, p, &K_RATE, &l->bandwidth_bps));
        l->set |= SIM_SCN_LINK_BANDWIDTH;
    }
    if ((v = opt(map, path, "loss", p))) {
        TRY(get_fraction(d, v, p, &l->loss));
        l->set |= SIM_SCN_LINK_LOSS;
    }
    if ((v = opt(map, path, "queue", p))) {
        TRY(get_units(d, v, p, &K_SIZE, &l->queue_bytes));
        l->set |= SIM_SCN_LINK_QUEUE;
    }
    return MESH_OK;
}

static int decode_link(dec *d, const ynode *n, const char *path, sim_scn_link *l)
{
    static const char *const KEYS[] = {LINK_KEYS, NULL};
    TRY(want_map(d, n, path));
    TRY(check_keys(d, n, path, KEYS));
    return decode_link_fields(d, n, path, l);
}

/* Overlay the fields set in `over` onto `base`. */
static void link_overlay(sim_scn_link *base, const sim_scn_link *over)
{
    if (over->set & SIM_SCN_LINK_LATENCY)
        base->latency = over->latency;
    if (over->set & SIM_SCN_LINK_JITTER)
        base->jitter = over->jitter;
    if (over->set & SIM_SCN_LINK_BANDWIDTH)
        base->bandwidth_bps = over->bandwidth_bps;
    if (over->set & SIM_SCN_LINK_LOSS)
        base->loss = over->loss;
    if (over->set & SIM_SCN_LINK_QUEUE)
        base->queue_bytes = over->queue_bytes;
    base->set |= over->set;
}

static int decode_latency_model(dec *d, const ynode *n, const char *path, sim_scn_core *c)
{
    static const char *const KEYS[] = {"uniform", "regions", "matrix", NULL};
    char p[PATH_MAX_LEN], q[PATH_MAX_LEN];
    if (n->kind == Y_SCALAR) {
        c->model = SIM_SCN_LAT_CONSTANT;
        return get_duration(d, n, path, &c->latency);
    }
    if (n->kind != Y_MAP)
        return wrong_type(d, n, path, "a duration or a mapping",
                          "write 40ms, {uniform: [20ms, 120ms]} or {regions: [...], matrix: "
                          "[[...], ...]}");
    TRY(check_keys(d, n, path, KEYS));
    const ynode *uni = get(n, "uniform"), *reg = get(n, "regions"), *mat = get(n, "matrix");
    if (uni && (reg || mat))
        return report(d->err, d->errlen, MESH_ERR_MALFORMED, &n->loc,
                      "use either uniform, or regions with matrix",
                      "%s has both a uniform range and a region matrix", path);
    if (uni) {
        const ynode *a, *b;
        subpath(p, path, "uniform");
        TRY(get_pair(d, uni, p, "durations", &a, &b));
        c->model = SIM_SCN_LAT_UNIFORM;
        TRY(get_duration(d, a, p, &c->lat_min));
        return get_duration(d, b, p, &c->lat_max);
    }
    if (!reg || !mat) {
        const ynode *dummy;
        return need(d, n, path, reg ? "matrix" : "regions", &dummy);
    }
    subpath(p, path, "regions");
    TRY(want_list(d, reg, p, SIM_SCN_MAX_REGIONS, "SIM_SCN_MAX_REGIONS"));
    size_t r = reg->n;
    if (r == 0)
        return report(d->err, d->errlen, MESH_ERR_MALFORMED, &reg->loc, "name one region or more",
                      "empty list %s", p);
    const char **names = arena_alloc(d->a, r * sizeof *names);
    const sim_scn_loc **locs = arena_alloc(d->a, r * sizeof *locs);
    mesh_time *m = arena_alloc(d->a, r * r * sizeof *m);
    if (!names || !locs || !m)
        return nomem(d, n);
    size_t i = 0;
    for (const ynode *e = reg->first; e; e = e->next, i++) {
        itempath(q, p, i);
        TRY(get_name(d, e, q, &names[i]));
        locs[i] = &e->loc;
        for (size_t j = 0; j < i; j++)
            if (!strcmp(names[j], names[i]))
                return duplicate(d, e, "region", locs[j]);
    }
    subpath(p, path, "matrix");
    TRY(want_list(d, mat, p, SIM_SCN_MAX_REGIONS, "SIM_SCN_MAX_REGIONS"));
    if (mat->n != r)
        return report(d->err, d->errlen, MESH_ERR_MALFORMED, &mat->loc,
                      "one row per region, in the order of regions",
                      "%s has %zu rows for %zu regions", p, mat->n, r);
    i = 0;
    for (const ynode *row = mat->first; row; row = row->next, i++) {
        itempath(q, p, i);
        if (row->kind != Y_SEQ)
            return wrong_type(d, row, q, "a list of durations", "write [5ms, 80ms, ...]");
        if (row->n != r)
            return report(d->err, d->errlen, MESH_ERR_MALFORMED, &row->loc,
                          "one column per region, in the order of regions",
                          "%s has %zu entries for %zu regions", q, row->n, r);
        size_t j = 0;
        for (const ynode *e = row->first; e; e = e->next, j++)
            TRY(get_duration(d, e, q, &m[i * r + j]));
    }
    c->model = SIM_SCN_LAT_MATRIX;
    c->region_count = r;
    c->regions = names;
    c->matrix = m;
    return MESH_OK;
}

static int decode_core(dec *d, const ynode *n, const char *path, sim_scn_core *c)
{
    static const char *const KEYS[] = {"latency", "jitter", "loss", NULL};
    char p[PATH_MAX_LEN];
    const ynode *v;
    TRY(want_map(d, n, path));
    TRY(check_keys(d, n, path, KEYS));
    if ((v = opt(n, path, "latency", p)))
        TRY(decode_latency_model(d, v, p, c));
    if ((v = opt(n, path, "jitter", p)))
        TRY(get_duration(d, v, p, &c->jitter));
    if ((v = opt(n, path, "loss", p)))
        TRY(get_fraction(d, v, p, &c->loss));
    return MESH_OK;
}

static const char *const NAT_BEHAVIOURS[] = {"endpoint-independent", "address-dependent",
                                             "address-and-port-dependent"};
/* Common names for mapping × filtering pairs. */
static const char *const NAT_PRESETS[] = {"full-cone", "restricted-cone", "port-restricted-cone",
                                          "symmetric"};
static const int NAT_PRESET_MAP[][2] = {
    {SIM_SCN_NAT_ENDPOINT_INDEPENDENT, SIM_SCN_NAT_ENDPOINT_INDEPENDENT},
    {SIM_SCN_NAT_ENDPOINT_INDEPENDENT, SIM_SCN_NAT_ADDRESS_DEPENDENT},
    {SIM_SCN_NAT_ENDPOINT_INDEPENDENT, SIM_SCN_NAT_ADDRESS_PORT_DEPENDENT},
    {SIM_SCN_NAT_ADDRESS_PORT_DEPENDENT, SIM_SCN_NAT_ADDRESS_PORT_DEPENDENT},
};
#define N_PRESETS (sizeof NAT_PRESETS / sizeof NAT_PRESETS[0])

static int decode_nat(dec *d, const ynode *n, const char *path, sim_scn_nat *nat)
{
    static const char *const KEYS[] = {"type",        "mapping",     "filtering",
                                       "udp_timeout", "tcp_timeout", "hairpin",
                                       "ports",       "upnp",        NULL};
    static const char *const PORTS[] = {"random", "preserve"};
    char p[PATH_MAX_LEN];
    const ynode *v;
    int preset = -1;
    memset(nat, 0, sizeof *nat);
    nat->present = 1;
    nat->udp_timeout = 120ULL * 1000000000ULL;
    nat->tcp_timeout = (2ULL * 3600 + 4 * 60) * 1000000000ULL;
    nat->port_preserve = 1;
    if (n->kind == Y_SCALAR) {
        TRY(get_choice(d, n, path, NAT_PRESETS, N_PRESETS, &preset));
        nat->mapping = NAT_PRESET_MAP[preset][0];
        nat->filtering = NAT_PRESET_MAP[preset][1];
        return MESH_OK;
    }
    if (n->kind != Y_MAP)
        return wrong_type(d, n, path, "a NAT type or a mapping",
                          "write symmetric, or {mapping: ..., filtering: ...}");
    TRY(check_keys(d, n, path, KEYS));
    if ((v = opt(n, path, "type", p))) {
        TRY(get_choice(d, v, p, NAT_PRESETS, N_PRESETS, &preset));
        nat->mapping = NAT_PRESET_MAP[preset][0];
        nat->filtering = NAT_PRESET_MAP[preset][1];
    }
    if (preset < 0 || get(n, "mapping")) {
        TRY(need_at(d, n, path, "mapping", &v, p));
        TRY(get_choice(d, v, p, NAT_BEHAVIOURS, 3, &nat->mapping));
    }
    if (preset < 0 || get(n, "filtering")) {
        TRY(need_at(d, n, path, "filtering", &v, p));
        TRY(get_choice(d, v, p, NAT_BEHAVIOURS, 3, &nat->filtering));
    }
    if ((v = opt(n, path, "udp_timeout", p)))
        TRY(get_duration(d, v, p, &nat->udp_timeout));
    if ((v = opt(n, path, "tcp_timeout", p)))
        TRY(get_duration(d, v, p, &nat->tcp_timeout));
    if ((v = opt(n, path, "hairpin", p)))
        TRY(get_bool(d, v, p, &nat->hairpin));
    if ((v = opt(n, path, "ports", p)))
        TRY(get_choice(d, v, p, PORTS, 2, &nat->port_preserve));
    if ((v = opt(n, path, "upnp", p)))
        TRY(get_bool(d, v, p, &nat->upnp));
    return MESH_OK;
}

/* A region name from the core's matrix. */
static int get_region(dec *d, const ynode *n, const char *path, size_t *out)
{
    const sim_scn_core *c = &d->s->core;
    char hint[256], sb[SHOW_MAX + 4];
    if (c->model != SIM_SCN_LAT_MATRIX)
        return report(d->err, d->errlen, MESH_ERR_MALFORMED, &n->loc,
                      "regions exist only with network.core.latency: {regions: ..., matrix: ...}",
                      "%s given but the core latency has no regions", path);
    TRY(get_scalar(d, n, path, "a region name", "one of network.core.latency.regions"));
    for (size_t i = 0; i < c->region_count; i++) {
        if (!strcmp(c->regions[i], n->s)) {
            *out = i;
            return MESH_OK;
        }
    }
    suggest(hint, sizeof hint, n->s, c->regions, c->region_count, "regions: ");
    return report(d->err, d->errlen, MESH_ERR_MALFORMED, &n->loc, hint, "unknown region '%s' in %s",
                  show(n->s, sb), path);
}

static int decode_lan(dec *d, const ynode *n, const char *path, sim_scn_lan *l)
{
    static const char *const KEYS[] = {"name", "hosts", "private", "nat", "link", "region", NULL};
    char p[PATH_MAX_LEN];
    const ynode *v;
    uint64_t u;
    TRY(want_map(d, n, path));
    TRY(check_keys(d, n, path, KEYS));
    l->loc = n->loc;
    l->region = SIM_SCN_NO_REGION;
    TRY(need_at(d, n, path, "name", &v, p));
    TRY(get_name(d, v, p, &l->name));
    if ((v = opt(n, path, "hosts", p))) {
        TRY(get_uint(d, v, p, 1, SIM_SCN_MAX_NODES, &u));
        l->hosts = (uint32_t)u;
    }
    if ((v = opt(n, path, "private", p)))
        TRY(get_bool(d, v, p, &l->is_private));
    if ((v = opt(n, path, "nat", p)))
        TRY(decode_nat(d, v, p, &l->nat));
    if ((v = opt(n, path, "link", p)))
        TRY(decode_link(d, v, p, &l->link));
    if ((v = opt(n, path, "region", p)))
        TRY(get_region(d, v, p, &l->region));
    return MESH_OK;
}

/* ---- decoding: names and references ---------------------------------------------------------- */

static const char *const RESERVED[] = {"internet", "random"};

/* A group or LAN name: unique across both lists (as decoded so far), not reserved. */
static int check_unique_site(dec *d, const ynode *n, size_t ngroups, size_t nlans)
{
    for (size_t i = 0; i < sizeof RESERVED / sizeof RESERVED[0]; i++)
        if (!strcmp(n->s, RESERVED[i]))
            return report(d->err, d->errlen, MESH_ERR_MALFORMED, &n->loc,
                          "'internet' and 'random' are keywords; pick another name",
                          "reserved name '%s'", RESERVED[i]);
    for (size_t i = 0; i < nlans; i++)
        if (!strcmp(d->s->lans[i].name, n->s))
            return duplicate(d, n, "group and LAN", &d->s->lans[i].loc);
    for (size_t i = 0; i < ngroups; i++)
        if (!strcmp(d->s->groups[i].name, n->s))
            return duplicate(d, n, "group and LAN", &d->s->groups[i].loc);
    return MESH_OK;
}

/* The hint for an unknown reference: a near name, or the known ones. */
static void ref_hint(dec *d, char *hint, size_t cap, const char *word, int groups, int lans,
                     int censors)
{
    const char *names[SIM_SCN_MAX_GROUPS + SIM_SCN_MAX_LANS + SIM_SCN_MAX_CENSORS];
    size_t n = 0;
    for (size_t i = 0; groups && i < d->s->group_count; i++)
        names[n++] = d->s->groups[i].name;
    for (size_t i = 0; lans && i < d->s->lan_count; i++)
        names[n++] = d->s->lans[i].name;
    for (size_t i = 0; censors && i < d->s->censor_count; i++)
        names[n++] = d->s->censors[i].name;
    suggest(hint, cap, word, names, n, "known: ");
}

static int unknown_ref(dec *d, const ynode *n, const char *path, const char *what, int groups,
                       int lans, int censors)
{
    char hint[512], sb[SHOW_MAX + 4];
    ref_hint(d, hint, sizeof hint, n->kind == Y_SCALAR ? n->s : "", groups, lans, censors);
    return report(d->err, d->errlen, MESH_ERR_MALFORMED, &n->loc, hint, "unknown %s '%s' in %s",
                  what, n->kind == Y_SCALAR ? show(n->s, sb) : "?", path);
}

static int get_group_ref(dec *d, const ynode *n, const char *path, size_t *out)
{
    TRY(get_scalar(d, n, path, "a group name", "name a group from groups:"));
    size_t i = sim_scenario_group(d->s, n->s);
    if (i == (size_t)-1)
        return unknown_ref(d, n, path, "group", 1, 0, 0);
    *out = i;
    return MESH_OK;
}

static int get_site_ref(dec *d, const ynode *n, const char *path, sim_scn_ref *out)
{
    TRY(get_scalar(d, n, path, "a group or LAN name", "name a group or a LAN"));
    size_t i = sim_scenario_group(d->s, n->s);
    if (i != (size_t)-1) {
        out->kind = SIM_SCN_REF_GROUP;
        out->index = i;
        return MESH_OK;
    }
    i = sim_scenario_lan(d->s, n->s);
    if (i != (size_t)-1) {
        out->kind = SIM_SCN_REF_LAN;
        out->index = i;
        return MESH_OK;
    }
    return unknown_ref(d, n, path, "group or LAN", 1, 1, 0);
}

static int get_site_list(dec *d, const ynode *n, const char *path, const sim_scn_ref **out,
                         size_t *count)
{
    char q[PATH_MAX_LEN];
    TRY(want_list(d, n, path, SIM_SCN_MAX_LIST, "SIM_SCN_MAX_LIST"));
    if (list_len(n) == 0)
        return report(d->err, d->errlen, MESH_ERR_MALFORMED, &n->loc,
                      "name one group or LAN or more", "empty list %s", path);
    sim_scn_ref *refs = arena_alloc(d->a, n->n * sizeof *refs);
    if (!refs)
        return nomem(d, n);
    size_t i = 0;
    for (const ynode *e = n->first; e; e = e->next, i++) {
        itempath(q, path, i);
        TRY(get_site_ref(d, e, q, &refs[i]));
    }
    *out = refs;
    *count = n->n;
    return MESH_OK;
}

/* ---- decoding: groups
 * ---------------------------------------------------------------------------- */

static int decode_join(dec *d, const ynode *n, const char *path, sim_scn_group *g)
{
    static const char *const KEYS[] = {"at", "spread", NULL};
    char p[PATH_MAX_LEN];
    const ynode *v;
    if (n->kind == Y_SCALAR) {
        TRY(get_duration(d, n, path, &g->join_from));
        g->join_to = g->join_from;
        return MESH_OK;
    }
    if (n->kind != Y_MAP)
        return wrong_type(d, n, path, "a time or a mapping",
                          "write 0s, {at: 5s} or {spread: [0s, 60s]}");
    TRY(check_keys(d, n, path, KEYS));
    const ynode *at = get(n, "at"), *spread = get(n, "spread");
    if (at && spread)
        return report(d->err, d->errlen, MESH_ERR_MALFORMED, &n->loc,
                      "use `at:` for one time, or `spread: [t0, t1]`", "%s has both at and spread",
                      path);
    if (at) {
        subpath(p, path, "at");
        TRY(get_duration(d, at, p, &g->join_from));
        g->join_to = g->join_from;
        return MESH_OK;
    }
    TRY(need(d, n, path, "spread", &v));
    const ynode *a, *b;
    subpath(p, path, "spread");
    TRY(get_pair(d, v, p, "times", &a, &b));
    TRY(get_duration(d, a, p, &g->join_from));
    return get_duration(d, b, p, &g->join_to);
}

static int decode_tls(dec *d, const ynode *n, const char *path, sim_scn_group *g)
{
    static const char *const KEYS[] = {"sni", "alpn", NULL};
    char p[PATH_MAX_LEN], q[PATH_MAX_LEN];
    const ynode *v;
    TRY(want_map(d, n, path));
    TRY(check_keys(d, n, path, KEYS));
    if ((v = opt(n, path, "sni", p)))
        TRY(get_string(d, v, p, SIM_SCN_MAX_STRING, &g->tls_sni));
    if ((v = opt(n, path, "alpn", p))) {
        if (v->kind == Y_SCALAR) { /* one protocol: a list of one */
            const char **a = arena_alloc(d->a, sizeof *a);
            if (!a)
                return nomem(d, v);
            TRY(get_string(d, v, p, SIM_SCN_MAX_STRING, &a[0]));
            g->alpn = a;
            g->alpn_count = 1;
            return MESH_OK;
        }
        TRY(want_list(d, v, p, SIM_SCN_MAX_LIST, "SIM_SCN_MAX_LIST"));
        const char **a = arena_alloc(d->a, (v->n ? v->n : 1) * sizeof *a);
        if (!a)
            return nomem(d, v);
        size_t i = 0;
        for (const ynode *e = v->first; e; e = e->next, i++) {
            itempath(q, p, i);
            TRY(get_string(d, e, q, SIM_SCN_MAX_STRING, &a[i]));
        }
        g->alpn = a;
        g->alpn_count = v->n;
    }
    return MESH_OK;
}

static int decode_group(dec *d, const ynode *n, const char *path, size_t idx, sim_scn_group *g)
{
    static const char *const KEYS[] = {"name", "count", "placement", "region", "nat",  "join",
                                       "role", "mdns",  "framing",   "tls",    "link", NULL};
    static const char *const ROLES[] = {"normal", "bootstrap"};
    static const char *const FRAMINGS[] = {"plain", "http2"};
    char p[PATH_MAX_LEN];
    const ynode *v;
    uint64_t u;
    TRY(want_map(d, n, path));
    TRY(check_keys(d, n, path, KEYS));
    g->loc = n->loc;
    g->lan = SIM_SCN_INTERNET;
    g->region = SIM_SCN_NO_REGION;
    TRY(need_at(d, n, path, "name", &v, p));
    TRY(get_name(d, v, p, &g->name));
    TRY(check_unique_site(d, v, idx, d->s->lan_count));
    TRY(need_at(d, n, path, "count", &v, p));
    TRY(get_uint(d, v, p, 1, SIM_SCN_MAX_NODES, &u));
    g->count = (uint32_t)u;
    if ((v = opt(n, path, "placement", p))) {
        TRY(get_scalar(d, v, p, "a LAN name or internet", "write internet or a LAN's name"));
        if (strcmp(v->s, "internet")) {
            g->lan = sim_scenario_lan(d->s, v->s);
            if (g->lan == (size_t)-1)
                return unknown_ref(d, v, p, "LAN", 0, 1, 0);
            g->region = d->s->lans[g->lan].region;
        }
    }
    if ((v = opt(n, path, "region", p))) {
        if (g->lan != SIM_SCN_INTERNET)
            return report(d->err, d->errlen, MESH_ERR_MALFORMED, &v->key->loc,
                          "a group on a LAN is in its LAN's region: set region on the LAN",
                          "%s given for a group placed on a LAN", p);
        TRY(get_region(d, v, p, &g->region));
    }
    if ((v = opt(n, path, "nat", p)))
        TRY(decode_nat(d, v, p, &g->nat));
    if ((v = opt(n, path, "join", p)))
        TRY(decode_join(d, v, p, g));
    if ((v = opt(n, path, "role", p)))
        TRY(get_choice(d, v, p, ROLES, 2, &g->role));
    g->mdns = g->lan != SIM_SCN_INTERNET;
    if ((v = opt(n, path, "mdns", p)))
        TRY(get_bool(d, v, p, &g->mdns));
    if ((v = opt(n, path, "framing", p)))
        TRY(get_choice(d, v, p, FRAMINGS, 2, &g->framing));
    if ((v = opt(n, path, "tls", p)))
        TRY(decode_tls(d, v, p, g));
    g->link = d->s->access;
    g->link.set = d->s->access.set;
    if ((v = get(n, "link"))) {
        sim_scn_link over = {0};
        subpath(p, path, "link");
        TRY(decode_link(d, v, p, &over));
        link_overlay(&g->link, &over);
    }
    return MESH_OK;
}

/* ---- decoding: censors
 * ---------------------------------------------------------------------------- */

static int get_ipv4_prefix(dec *d, const ynode *n, const char *path, uint32_t *ip, uint8_t *pfx)
{
    const char *hint = "write 203.0.113.7 or 203.0.113.0/24";
    TRY(get_scalar(d, n, path, "an IPv4 address", hint));
    const char *s = n->s;
    uint32_t v = 0;
    unsigned bits = 32;
    for (int part = 0; part < 4; part++) {
        unsigned octet = 0, digits = 0;
        while (*s >= '0' && *s <= '9' && digits < 4) {
            octet = octet * 10 + (unsigned)(*s++ - '0');
            digits++;
        }
        if (!digits || digits > 3 || octet > 255 || (part < 3 && *s++ != '.'))
            return wrong_type(d, n, path, "an IPv4 address", hint);
        v = v << 8 | octet;
    }
    if (*s == '/') {
        s++;
        unsigned digits = 0;
        bits = 0;
        while (*s >= '0' && *s <= '9' && digits < 3) {
            bits = bits * 10 + (unsigned)(*s++ - '0');
            digits++;
        }
        if (!digits)
            return wrong_type(d, n, path, "an IPv4 address", hint);
        if (bits > 32)
            return out_of_range(d, n, path, "a prefix length is 0 to 32");
    }
    if (*s)
        return wrong_type(d, n, path, "an IPv4 address", hint);
    uint32_t mask = bits == 0 ? 0 : 0xffffffffu << (32 - bits);
    if (v & ~mask)
        return out_of_range(d, n, path, "the address has bits set past the prefix length");
    *ip = v;
    *pfx = (uint8_t)bits;
    return MESH_OK;
}

static int decode_match(dec *d, const ynode *n, const char *path, sim_scn_rule *r)
{
    static const char *const KEYS[] = {"dst_ip", "dst_port",  "sni",     "alpn",
                                       "ja3",    "first_len", "entropy", NULL};
    char p[PATH_MAX_LEN];
    const ynode *v, *a, *b;
    uint64_t u;
    TRY(want_map(d, n, path));
    TRY(check_keys(d, n, path, KEYS));
    if ((v = opt(n, path, "dst_ip", p))) {
        TRY(get_ipv4_prefix(d, v, p, &r->dst_ip, &r->dst_prefix));
        r->match |= SIM_SCN_MATCH_DST_IP;
    }
    if ((v = opt(n, path, "dst_port", p))) {
        if (v->kind == Y_SEQ) {
            TRY(get_pair(d, v, p, "ports", &a, &b));
        } else {
            a = b = v;
        }
        TRY(get_uint(d, a, p, 0, 65535, &u));
        r->port_min = (uint16_t)u;
        TRY(get_uint(d, b, p, 0, 65535, &u));
        r->port_max = (uint16_t)u;
        r->match |= SIM_SCN_MATCH_DST_PORT;
    }
    if ((v = opt(n, path, "sni", p))) {
        TRY(get_string(d, v, p, SIM_SCN_MAX_STRING, &r->sni));
        for (char *c = (char *)r->sni; *c; c++) /* names compare case-insensitively */
            if (*c >= 'A' && *c <= 'Z')
                *c = (char)(*c - 'A' + 'a');
        r->match |= SIM_SCN_MATCH_SNI;
    }
    if ((v = opt(n, path, "alpn", p))) {
        TRY(get_string(d, v, p, SIM_SCN_MAX_STRING, &r->alpn));
        r->match |= SIM_SCN_MATCH_ALPN;
    }
    if ((v = opt(n, path, "ja3", p))) {
        TRY(get_string(d, v, p, 32, &r->ja3));
        int ok = strlen(r->ja3) == 32;
        for (char *c = (char *)r->ja3; ok && *c; c++) {
            if (*c >= 'A' && *c <= 'F')
                *c = (char)(*c - 'A' + 'a');
            ok = (*c >= '0' && *c <= '9') || (*c >= 'a' && *c <= 'f');
        }
        if (!ok)
            return wrong_type(d, v, p, "a JA3 MD5 (32 hex digits)",
                              "tshark shows it as tls.handshake.ja3");
        r->match |= SIM_SCN_MATCH_JA3;
    }
    if ((v = opt(n, path, "first_len", p))) {
        TRY(get_pair(d, v, p, "sizes", &a, &b));
        TRY(get_units(d, a, p, &K_SIZE, &r->len_min));
        TRY(get_units(d, b, p, &K_SIZE, &r->len_max));
        r->match |= SIM_SCN_MATCH_FIRST_LEN;
    }
    if ((v = opt(n, path, "entropy", p))) {
        TRY(get_pair(d, v, p, "numbers of bits per byte", &a, &b));
        TRY(get_real(d, a, p, 0, 0.0, 8.0, &r->entropy_min));
        TRY(get_real(d, b, p, 0, 0.0, 8.0, &r->entropy_max));
        r->match |= SIM_SCN_MATCH_ENTROPY;
    }
    if (!r->match)
        return report(d->err, d->errlen, MESH_ERR_MALFORMED, &n->loc,
                      "give dst_ip, dst_port, sni, alpn, ja3, first_len or entropy",
                      "%s matches nothing", path);
    return MESH_OK;
}

static const char *const ACTIONS[] = {"drop", "rst", "throttle", "probe"};

static int decode_action(dec *d, const ynode *n, const char *path, sim_scn_rule *r)
{
    const char *hint = "one of: drop, rst, probe, throttle <rate> (e.g. throttle 64kbit)";
    TRY(get_scalar(d, n, path, "an action", hint));
    const char *sp = strchr(n->s, ' ');
    size_t wl = sp ? (size_t)(sp - n->s) : n->len;
    for (int i = 0; i < 4; i++) {
        if (strlen(ACTIONS[i]) != wl || strncmp(n->s, ACTIONS[i], wl))
            continue;
        r->action = i;
        if (i != SIM_SCN_ACT_THROTTLE) {
            if (sp)
                break;
            return MESH_OK;
        }
        if (!sp)
            return report(d->err, d->errlen, MESH_ERR_MALFORMED, &n->loc, "write throttle 64kbit",
                          "%s: throttle needs a rate", path);
        ynode rate = *n; /* the rate part, at the same position */
        rate.s = sp + 1;
        while (*rate.s == ' ')
            rate.s++;
        rate.len = strlen(rate.s);
        return get_units(d, &rate, path, &K_RATE, &r->throttle_bps);
    }
    char sb[SHOW_MAX + 4];
    return report(d->err, d->errlen, MESH_ERR_MALFORMED, &n->loc, hint, "bad value \"%s\" for %s",
                  show(n->s, sb), path);
}

static int decode_rule(dec *d, const ynode *n, const char *path, size_t idx, sim_scn_rule *rules)
{
    static const char *const KEYS[] = {"name", "match", "action", "residual", NULL};
    char p[PATH_MAX_LEN];
    const ynode *v;
    sim_scn_rule *r = &rules[idx];
    TRY(want_map(d, n, path));
    TRY(check_keys(d, n, path, KEYS));
    r->loc = n->loc;
    TRY(item_name(d, n, path, "rule", idx, rules, sizeof *rules, offsetof(sim_scn_rule, name),
                  offsetof(sim_scn_rule, loc)));
    TRY(need_at(d, n, path, "match", &v, p));
    TRY(decode_match(d, v, p, r));
    TRY(need_at(d, n, path, "action", &v, p));
    TRY(decode_action(d, v, p, r));
    if ((v = opt(n, path, "residual", p)))
        TRY(get_duration(d, v, p, &r->residual));
    return MESH_OK;
}

static int decode_censor(dec *d, const ynode *n, const char *path, size_t idx, sim_scn_censor *c)
{
    static const char *const KEYS[] = {"name", "in_front_of", "enabled", "rules", NULL};
    char p[PATH_MAX_LEN], q[PATH_MAX_LEN];
    const ynode *v;
    TRY(want_map(d, n, path));
    TRY(check_keys(d, n, path, KEYS));
    c->loc = n->loc;
    c->enabled = 1;
    TRY(need_at(d, n, path, "name", &v, p));
    TRY(get_name(d, v, p, &c->name));
    for (size_t i = 0; i < idx; i++)
        if (!strcmp(d->s->censors[i].name, c->name))
            return duplicate(d, v, "censor", &d->s->censors[i].loc);
    TRY(need_at(d, n, path, "in_front_of", &v, p));
    if (v->kind == Y_SCALAR) { /* one name: a list of one */
        sim_scn_ref *ref = arena_alloc(d->a, sizeof *ref);
        if (!ref)
            return nomem(d, v);
        TRY(get_site_ref(d, v, p, ref));
        c->targets = ref;
        c->target_count = 1;
    } else {
        TRY(get_site_list(d, v, p, &c->targets, &c->target_count));
    }
    if ((v = opt(n, path, "enabled", p)))
        TRY(get_bool(d, v, p, &c->enabled));
    TRY(need_at(d, n, path, "rules", &v, p));
    TRY(want_list(d, v, p, SIM_SCN_MAX_RULES, "SIM_SCN_MAX_RULES"));
    if (list_len(v) == 0)
        return report(d->err, d->errlen, MESH_ERR_MALFORMED, &v->loc, "give one rule or more",
                      "empty list %s", p);
    sim_scn_rule *rules = arena_alloc(d->a, v->n * sizeof *rules);
    if (!rules)
        return nomem(d, v);
    size_t i = 0;
    for (const ynode *e = v->first; e; e = e->next, i++) {
        itempath(q, p, i);
        TRY(decode_rule(d, e, q, i, rules));
    }
    c->rules = rules;
    c->rule_count = v->n;
    return MESH_OK;
}

/* ---- decoding: events, traffic, expectations ----------------------------------------------- */

static const char *const EVENT_KINDS[] = {"churn", "partition", "link", "censor"};

static int decode_event(dec *d, const ynode *n, const char *path, sim_scn_event *e)
{
    static const char *const KEYS[] = {"at", "churn", "partition", "link", "censor", NULL};
    static const char *const CHURN_KEYS[] = {"group", "fraction", "down_for", NULL};
    static const char *const PART_KEYS[] = {"targets", "heal_at", NULL};
    static const char *const LINK_EV_KEYS[] = {"target", LINK_KEYS, NULL};
    static const char *const CENSOR_KEYS[] = {"name", "enabled", NULL};
    char p[PATH_MAX_LEN], q[PATH_MAX_LEN];
    const ynode *v, *body = NULL;
    TRY(want_map(d, n, path));
    TRY(check_keys(d, n, path, KEYS));
    e->loc = n->loc;
    TRY(need_at(d, n, path, "at", &v, p));
    TRY(get_duration(d, v, p, &e->at));
    for (int k = 0; k < 4; k++) {
        const ynode *b = map_find(n, EVENT_KINDS[k]);
        if (!b)
            continue;
        if (body)
            return report(d->err, d->errlen, MESH_ERR_MALFORMED, &b->key->loc,
                          "one action per event: add another event with the same `at:`",
                          "%s has both '%s' and '%s'", path, EVENT_KINDS[e->kind], EVENT_KINDS[k]);
        body = b;
        e->kind = k;
    }
    if (!body)
        return report(d->err, d->errlen, MESH_ERR_MALFORMED, &n->loc,
                      "add one of churn:, partition:, link:, censor:",
                      "missing required key 'churn', 'partition', 'link' or 'censor' in %s", path);
    subpath(p, path, EVENT_KINDS[e->kind]);
    TRY(want_map(d, body, p));
    switch (e->kind) {
    case SIM_SCN_EV_CHURN:
        TRY(check_keys(d, body, p, CHURN_KEYS));
        TRY(need_at(d, body, p, "group", &v, q));
        TRY(get_group_ref(d, v, q, &e->group));
        TRY(need_at(d, body, p, "fraction", &v, q));
        TRY(get_fraction(d, v, q, &e->fraction));
        e->down_for = MESH_TIME_NEVER;
        if ((v = opt(body, p, "down_for", q)))
            TRY(get_duration(d, v, q, &e->down_for));
        break;
    case SIM_SCN_EV_PARTITION:
        TRY(check_keys(d, body, p, PART_KEYS));
        TRY(need_at(d, body, p, "targets", &v, q));
        TRY(get_site_list(d, v, q, &e->targets, &e->target_count));
        e->heal_at = MESH_TIME_NEVER;
        if ((v = opt(body, p, "heal_at", q)))
            TRY(get_duration(d, v, q, &e->heal_at));
        break;
    case SIM_SCN_EV_LINK:
        TRY(check_keys(d, body, p, LINK_EV_KEYS));
        TRY(need_at(d, body, p, "target", &v, q));
        TRY(get_site_ref(d, v, q, &e->target));
        TRY(decode_link_fields(d, body, p, &e->link));
        if (!e->link.set)
            return report(d->err, d->errlen, MESH_ERR_MALFORMED, &body->loc,
                          "give latency, jitter, bandwidth, loss or queue", "%s changes nothing",
                          p);
        break;
    default:
        TRY(check_keys(d, body, p, CENSOR_KEYS));
        TRY(need_at(d, body, p, "name", &v, q));
        TRY(get_scalar(d, v, q, "a censor name", "name a censor from network.censors"));
        e->censor = sim_scenario_censor(d->s, v->s);
        if (e->censor == (size_t)-1)
            return unknown_ref(d, v, q, "censor", 0, 0, 1);
        TRY(need_at(d, body, p, "enabled", &v, q));
        TRY(get_bool(d, v, q, &e->enabled));
        break;
    }
    return MESH_OK;
}

static int decode_size(dec *d, const ynode *n, const char *path, sim_scn_size *z)
{
    static const char *const KEYS[] = {"distribution", "mean", "max", "shape", NULL};
    static const char *const DISTS[] = {"exponential", "pareto"};
    char p[PATH_MAX_LEN];
    const ynode *v, *a, *b;
    if (n->kind == Y_SCALAR) {
        z->dist = SIM_SCN_SIZE_FIXED;
        TRY(get_units(d, n, path, &K_SIZE, &z->min));
        z->max = z->mean = z->min;
        return MESH_OK;
    }
    if (n->kind == Y_SEQ) {
        z->dist = SIM_SCN_SIZE_UNIFORM;
        TRY(get_pair(d, n, path, "sizes", &a, &b));
        TRY(get_units(d, a, path, &K_SIZE, &z->min));
        return get_units(d, b, path, &K_SIZE, &z->max);
    }
    TRY(check_keys(d, n, path, KEYS));
    int dist = 0; /* set by get_choice; initialised for gcc -O3, which cannot see that */
    TRY(need_at(d, n, path, "distribution", &v, p));
    TRY(get_choice(d, v, p, DISTS, 2, &dist));
    z->dist = dist == 0 ? SIM_SCN_SIZE_EXPONENTIAL : SIM_SCN_SIZE_PARETO;
    TRY(need_at(d, n, path, "mean", &v, p));
    TRY(get_units(d, v, p, &K_SIZE, &z->mean));
    if ((v = opt(n, path, "max", p)))
        TRY(get_units(d, v, p, &K_SIZE, &z->max));
    v = get(n, "shape");
    if (z->dist == SIM_SCN_SIZE_EXPONENTIAL && v)
        return report(d->err, d->errlen, MESH_ERR_MALFORMED, &v->key->loc,
                      "shape is a parameter of pareto only", "%s: shape given for exponential",
                      path);
    if (z->dist == SIM_SCN_SIZE_PARETO) {
        TRY(need_at(d, n, path, "shape", &v, p));
        TRY(get_real(d, v, p, 0, 0.0, 100.0, &z->shape));
    }
    return MESH_OK;
}

/* "N/s", "N/m", "N/h": messages per unit of time, as the interval between them. */
static int get_rate_interval(dec *d, const ynode *n, const char *path, mesh_time *out)
{
    const char *hint = "write messages per time as 2/s, 30/m or 100/h";
    TRY(get_scalar(d, n, path, "a message rate", hint));
    uint64_t mant;
    unsigned frac;
    size_t used = scan_decimal(n->s, &mant, &frac);
    if (used == 0 || used == (size_t)-1)
        return wrong_type(d, n, path, "a message rate", hint);
    const char *u = n->s + used;
    uint64_t per = !strcmp(u, "/s")   ? 1000000000ULL
                   : !strcmp(u, "/m") ? 60000000000ULL
                   : !strcmp(u, "/h") ? 3600000000000ULL
                                      : 0;
    if (!per) {
        char ub[SHOW_MAX + 4], sb[SHOW_MAX + 4];
        return report(d->err, d->errlen, MESH_ERR_MALFORMED, &n->loc, hint,
                      "bad unit \"%s\" for %s in \"%s\"", show(u, ub), path, show(n->s, sb));
    }
    if (mant == 0)
        return out_of_range(d, n, path, "a rate above 0");
    unsigned __int128 num = per;
    for (unsigned i = 0; i < frac; i++)
        num *= 10;
    unsigned __int128 iv = (num + mant / 2) / mant;
    if (iv == 0 || iv > MAX_TIME)
        return out_of_range(d, n, path, "at most 1e9/s and at least one per year");
    *out = (mesh_time)iv;
    return MESH_OK;
}

static int decode_traffic(dec *d, const ynode *n, const char *path, size_t idx, sim_scn_traffic *tr)
{
    static const char *const KEYS[] = {"name", "from",     "to",    "size", "interval",
                                       "rate", "arrivals", "start", "stop", NULL};
    static const char *const ARRIVALS[] = {"periodic", "poisson"};
    char p[PATH_MAX_LEN];
    const ynode *v;
    sim_scn_traffic *t = &tr[idx];
    TRY(want_map(d, n, path));
    TRY(check_keys(d, n, path, KEYS));
    t->loc = n->loc;
    TRY(item_name(d, n, path, "traffic", idx, tr, sizeof *tr, offsetof(sim_scn_traffic, name),
                  offsetof(sim_scn_traffic, loc)));
    TRY(need_at(d, n, path, "from", &v, p));
    TRY(get_group_ref(d, v, p, &t->from));
    TRY(need_at(d, n, path, "to", &v, p));
    if (v->kind == Y_SCALAR && !strcmp(v->s, "random"))
        t->to = SIM_SCN_TO_RANDOM;
    else
        TRY(get_group_ref(d, v, p, &t->to));
    TRY(need_at(d, n, path, "size", &v, p));
    TRY(decode_size(d, v, p, &t->size));
    const ynode *iv = get(n, "interval"), *rate = get(n, "rate");
    if (iv && rate)
        return report(d->err, d->errlen, MESH_ERR_MALFORMED, &rate->key->loc,
                      "give interval: 500ms or rate: 2/s, not both",
                      "%s has both interval and rate", path);
    if (rate) {
        subpath(p, path, "rate");
        TRY(get_rate_interval(d, rate, p, &t->interval));
    } else {
        TRY(need_at(d, n, path, "interval", &v, p));
        TRY(get_duration(d, v, p, &t->interval));
    }
    if ((v = opt(n, path, "arrivals", p)))
        TRY(get_choice(d, v, p, ARRIVALS, 2, &t->arrivals));
    t->stop = d->s->duration;
    if ((v = opt(n, path, "start", p)))
        TRY(get_duration(d, v, p, &t->start));
    if ((v = opt(n, path, "stop", p)))
        TRY(get_duration(d, v, p, &t->stop));
    return MESH_OK;
}

static const char *const OPS[] = {"<=", ">=", "=="};

static int decode_expect(dec *d, const ynode *n, const char *path, sim_scn_expect *x)
{
    static const char *const KEYS[] = {"summary", "op", "value", NULL};
    char p[PATH_MAX_LEN];
    const ynode *v;
    TRY(want_map(d, n, path));
    TRY(check_keys(d, n, path, KEYS));
    x->loc = n->loc;
    TRY(need_at(d, n, path, "summary", &v, p));
    TRY(get_name_ex(d, v, p, 1, &x->summary));
    TRY(need_at(d, n, path, "op", &v, p));
    TRY(get_choice(d, v, p, OPS, 3, &x->op));
    TRY(need_at(d, n, path, "value", &v, p));
    return get_real(d, v, p, 0, -1e300, 1e300, &x->value);
}

/* ---- decoding: the whole file ---------------------------------------------------------------- */

/* Allocate the array for a list node (NULL list or empty: *items NULL). */
static int list_alloc(dec *d, const ynode *list, const char *path, size_t limit,
                      const char *limname, size_t size, void **items)
{
    *items = NULL;
    if (!list)
        return MESH_OK;
    TRY(want_list(d, list, path, limit, limname));
    size_t n = list_len(list);
    if (n && !(*items = arena_alloc(d->a, n * size)))
        return nomem(d, list);
    return MESH_OK;
}

typedef int (*item_fn)(dec *d, const ynode *n, const char *path, size_t idx, void *items);

/* Decode each item; *count grows as items succeed, because later items may refer to earlier
 * ones (unique names, references) through the public struct. */
static int list_each(dec *d, const ynode *list, const char *path, void *items, item_fn fn,
                     size_t *count)
{
    char q[PATH_MAX_LEN];
    size_t i = 0;
    *count = 0;
    for (const ynode *e = items ? list->first : NULL; e; e = e->next, i++) {
        itempath(q, path, i);
        TRY(fn(d, e, q, i, items));
        *count = i + 1;
    }
    return MESH_OK;
}

static int lan_item(dec *d, const ynode *n, const char *path, size_t i, void *items)
{
    sim_scn_lan *l = (sim_scn_lan *)items + i;
    TRY(decode_lan(d, n, path, l));
    return check_unique_site(d, map_find(n, "name"), 0, i);
}

static int group_item(dec *d, const ynode *n, const char *path, size_t i, void *items)
{
    return decode_group(d, n, path, i, (sim_scn_group *)items + i);
}

static int censor_item(dec *d, const ynode *n, const char *path, size_t i, void *items)
{
    return decode_censor(d, n, path, i, (sim_scn_censor *)items + i);
}

static int event_item(dec *d, const ynode *n, const char *path, size_t i, void *items)
{
    return decode_event(d, n, path, (sim_scn_event *)items + i);
}

static int traffic_item(dec *d, const ynode *n, const char *path, size_t i, void *items)
{
    return decode_traffic(d, n, path, i, items);
}

static int expect_item(dec *d, const ynode *n, const char *path, size_t i, void *items)
{
    return decode_expect(d, n, path, (sim_scn_expect *)items + i);
}

/* The decoder fills s's public fields as it goes (lookups by name read them): each array is
 * published before its items are decoded, its count as they succeed. */
#define DECODE_LIST(node, path, lim, field, count_field, fn)                                       \
    do {                                                                                           \
        void *items_;                                                                              \
        const ynode *list_ = (node);                                                               \
        TRY(list_alloc(d, list_, path, lim, #lim, sizeof *s->field, &items_));                     \
        s->field = items_;                                                                         \
        TRY(list_each(d, list_, path, items_, fn, &s->count_field));                               \
    } while (0)

static int decode_root(dec *d, const ynode *root)
{
    static const char *const KEYS[] = {"name",   "seed",    "duration", "network", "groups",
                                       "events", "traffic", "expect",   NULL};
    static const char *const NET_KEYS[] = {"core", "access", "lans", "censors", NULL};
    sim_scenario *s = d->s;
    const ynode *v, *net = NULL;
    uint64_t u;
    if (!root) {
        sim_scn_loc l = {s->file, 1, 1};
        return report(d->err, d->errlen, MESH_ERR_MALFORMED, &l,
                      "start from docs/scenarios.md's example", "empty scenario");
    }
    TRY(want_map(d, root, "the scenario"));
    TRY(check_keys(d, root, "the scenario", KEYS));
    TRY(need(d, root, "the scenario", "name", &v));
    TRY(get_name(d, v, "name", &s->name));
    s->seed = 1;
    if ((v = get(root, "seed"))) {
        TRY(get_uint(d, v, "seed", 0, INT64_MAX, &u));
        s->seed = u;
    }
    TRY(need(d, root, "the scenario", "duration", &v));
    TRY(get_duration(d, v, "duration", &s->duration));
    if (s->duration == 0)
        return out_of_range(d, v, "duration", "a run lasts more than 0s");
    if ((net = get(root, "network"))) {
        TRY(want_map(d, net, "network"));
        TRY(check_keys(d, net, "network", NET_KEYS));
        if ((v = get(net, "core")))
            TRY(decode_core(d, v, "network.core", &s->core));
        if ((v = get(net, "access")))
            TRY(decode_link(d, v, "network.access", &s->access));
        DECODE_LIST(get(net, "lans"), "network.lans", SIM_SCN_MAX_LANS, lans, lan_count, lan_item);
    }
    TRY(need(d, root, "the scenario", "groups", &v));
    DECODE_LIST(v, "groups", SIM_SCN_MAX_GROUPS, groups, group_count, group_item);
    if (s->group_count == 0)
        return report(d->err, d->errlen, MESH_ERR_MALFORMED, &v->loc,
                      "add a group with a name and a count", "groups is empty");
    uint64_t total = 0;
    for (size_t i = 0; i < s->group_count; i++) {
        sim_scn_group *g = (sim_scn_group *)&s->groups[i];
        g->first_node = (uint32_t)total;
        total += g->count;
        if (g->lan != SIM_SCN_INTERNET)
            ((sim_scn_lan *)&s->lans[g->lan])->placed += g->count;
    }
    if (total > SIM_SCN_MAX_NODES)
        return report(d->err, d->errlen, MESH_ERR_LIMIT, &v->loc,
                      "lower the groups' counts (SIM_SCN_MAX_NODES)",
                      "too many nodes: %llu (limit %d)", (unsigned long long)total,
                      SIM_SCN_MAX_NODES);
    s->node_count = (uint32_t)total;
    if (net)
        DECODE_LIST(get(net, "censors"), "network.censors", SIM_SCN_MAX_CENSORS, censors,
                    censor_count, censor_item);
    DECODE_LIST(get(root, "events"), "events", SIM_SCN_MAX_EVENTS, events, event_count, event_item);
    DECODE_LIST(get(root, "traffic"), "traffic", SIM_SCN_MAX_TRAFFIC, traffic, traffic_count,
                traffic_item);
    DECODE_LIST(get(root, "expect"), "expect", SIM_SCN_MAX_EXPECT, expects, expect_count,
                expect_item);
    return MESH_OK;
}

/* ---- semantic check ------------------------------------------------------------------------ */

static void fmt_time(char *buf, size_t cap, mesh_time t)
{
    if (t == MESH_TIME_NEVER)
        snprintf(buf, cap, "never");
    else if (t % 1000000000ULL == 0)
        snprintf(buf, cap, "%llus", (unsigned long long)(t / 1000000000ULL));
    else if (t % 1000000ULL == 0)
        snprintf(buf, cap, "%llums", (unsigned long long)(t / 1000000ULL));
    else
        snprintf(buf, cap, "%lluns", (unsigned long long)t);
}

static int check_nat(const sim_scn_nat *n, const sim_scn_loc *loc, const char *what, char *err,
                     size_t errlen)
{
    if (!n->present)
        return MESH_OK;
    if (n->mapping < 0 || n->mapping > 2 || n->filtering < 0 || n->filtering > 2)
        return report(err, errlen, MESH_ERR_MALFORMED, loc, "mapping and filtering are 0..2",
                      "%s has a bad NAT behaviour", what);
    if (n->udp_timeout == 0 || n->tcp_timeout == 0)
        return report(err, errlen, MESH_ERR_MALFORMED, loc,
                      "RFC 4787 asks for at least 2 minutes for UDP",
                      "%s has a zero NAT mapping timeout", what);
    return MESH_OK;
}

static int check_time(mesh_time t, mesh_time duration, const sim_scn_loc *loc, const char *what,
                      char *err, size_t errlen)
{
    if (t == MESH_TIME_NEVER || t <= duration)
        return MESH_OK;
    char a[32], b[32];
    fmt_time(a, sizeof a, t);
    fmt_time(b, sizeof b, duration);
    return report(err, errlen, MESH_ERR_MALFORMED, loc,
                  "every time is counted from the start of the run and must fit in its duration",
                  "%s %s is after the end of the run (duration %s)", what, a, b);
}

static int check_ref(const sim_scenario *s, sim_scn_ref r, const sim_scn_loc *loc, char *err,
                     size_t errlen)
{
    if ((r.kind == SIM_SCN_REF_GROUP && r.index < s->group_count) ||
        (r.kind == SIM_SCN_REF_LAN && r.index < s->lan_count))
        return MESH_OK;
    return report(err, errlen, MESH_ERR_MALFORMED, loc, "a reference index is out of bounds",
                  "bad group/LAN reference");
}

#define CHECK(x)                                                                                   \
    do {                                                                                           \
        int rc_ = (x);                                                                             \
        if (rc_ != MESH_OK)                                                                        \
            return rc_;                                                                            \
    } while (0)

static int check_counts(const sim_scenario *s, char *err, size_t errlen)
{
    struct {
        size_t n, lim;
        const char *what;
    } lists[] = {
        {s->lan_count, SIM_SCN_MAX_LANS, "LANs"},
        {s->group_count, SIM_SCN_MAX_GROUPS, "groups"},
        {s->censor_count, SIM_SCN_MAX_CENSORS, "censors"},
        {s->event_count, SIM_SCN_MAX_EVENTS, "events"},
        {s->traffic_count, SIM_SCN_MAX_TRAFFIC, "traffic patterns"},
        {s->expect_count, SIM_SCN_MAX_EXPECT, "expectations"},
        {s->core.region_count, SIM_SCN_MAX_REGIONS, "regions"},
    };
    sim_scn_loc top = {s->file, 0, 0};
    for (size_t i = 0; i < sizeof lists / sizeof lists[0]; i++)
        if (lists[i].n > lists[i].lim)
            return report(err, errlen, MESH_ERR_LIMIT, &top, "see enum sim_scn_limits",
                          "too many %s: %zu (limit %zu)", lists[i].what, lists[i].n, lists[i].lim);
    if (s->group_count == 0 || s->node_count == 0)
        return report(err, errlen, MESH_ERR_MALFORMED, &top, "add a group with a count",
                      "the scenario has no nodes");
    uint64_t total = 0;
    for (size_t i = 0; i < s->group_count; i++)
        total += s->groups[i].count;
    if (total > SIM_SCN_MAX_NODES || total != s->node_count)
        return report(err, errlen, MESH_ERR_LIMIT, &top, "lower the groups' counts",
                      "%llu nodes (limit %d; node_count %u)", (unsigned long long)total,
                      SIM_SCN_MAX_NODES, s->node_count);
    if (s->duration == 0 || s->duration > MAX_TIME)
        return report(err, errlen, MESH_ERR_MALFORMED, &top, "between 1ns and 365d",
                      "duration out of range");
    if (s->seed > INT64_MAX)
        return report(err, errlen, MESH_ERR_MALFORMED, &top, "0 to 2^63-1", "seed out of range");
    return MESH_OK;
}

static int check_network(const sim_scenario *s, char *err, size_t errlen)
{
    const sim_scn_core *c = &s->core;
    sim_scn_loc top = {s->file, 0, 0};
    if (c->model == SIM_SCN_LAT_UNIFORM && c->lat_min > c->lat_max)
        return report(err, errlen, MESH_ERR_MALFORMED, &top, "write [min, max] with min <= max",
                      "network.core.latency.uniform has min > max");
    if (c->model == SIM_SCN_LAT_MATRIX && (c->region_count == 0 || !c->regions || !c->matrix))
        return report(err, errlen, MESH_ERR_MALFORMED, &top, "give regions and matrix",
                      "network.core.latency has an empty region matrix");
    int matrix = c->model == SIM_SCN_LAT_MATRIX;
    for (size_t i = 0; i < s->lan_count; i++) {
        const sim_scn_lan *l = &s->lans[i];
        char what[SIM_SCN_MAX_NAME + 16];
        snprintf(what, sizeof what, "LAN '%s'", l->name);
        CHECK(check_nat(&l->nat, &l->loc, what, err, errlen));
        if (l->nat.present && !l->is_private)
            return report(err, errlen, MESH_ERR_MALFORMED, &l->loc,
                          "a NAT translates a private LAN: add private: true",
                          "%s has a NAT but is not private", what);
        if (l->hosts && l->placed > l->hosts)
            return report(err, errlen, MESH_ERR_MALFORMED, &l->loc,
                          "raise hosts: or place fewer nodes on it",
                          "%s holds %u nodes but has hosts: %u", what, l->placed, l->hosts);
        if (matrix && l->region >= c->region_count)
            return report(err, errlen, MESH_ERR_MALFORMED, &l->loc,
                          "with a latency matrix every LAN needs `region:`", "%s has no region",
                          what);
        if (!matrix && l->region != SIM_SCN_NO_REGION)
            return report(err, errlen, MESH_ERR_MALFORMED, &l->loc,
                          "regions exist only with a latency matrix", "%s has a region", what);
    }
    for (size_t i = 0; i < s->censor_count; i++) {
        const sim_scn_censor *cs = &s->censors[i];
        if (cs->rule_count == 0 || cs->rule_count > SIM_SCN_MAX_RULES || cs->target_count == 0 ||
            cs->target_count > SIM_SCN_MAX_LIST)
            return report(err, errlen, MESH_ERR_LIMIT, &cs->loc,
                          "1 to SIM_SCN_MAX_RULES rules, 1 to SIM_SCN_MAX_LIST targets",
                          "censor '%s' has %zu rules and %zu targets", cs->name, cs->rule_count,
                          cs->target_count);
        for (size_t j = 0; j < cs->target_count; j++)
            CHECK(check_ref(s, cs->targets[j], &cs->loc, err, errlen));
        for (size_t j = 0; j < cs->rule_count; j++) {
            const sim_scn_rule *r = &cs->rules[j];
            const char *bad = NULL;
            if (!r->match)
                bad = "matches nothing";
            else if (r->port_min > r->port_max)
                bad = "has dst_port [min, max] with min > max";
            else if (r->len_min > r->len_max)
                bad = "has first_len [min, max] with min > max";
            else if (r->entropy_min > r->entropy_max)
                bad = "has entropy [min, max] with min > max";
            else if (r->action == SIM_SCN_ACT_THROTTLE && r->throttle_bps == 0)
                bad = "throttles to 0 bit/s (use drop)";
            else if (r->action < 0 || r->action > SIM_SCN_ACT_PROBE)
                bad = "has a bad action";
            if (bad)
                return report(err, errlen, MESH_ERR_MALFORMED, &r->loc,
                              "ranges are [min, max]; actions drop, rst, throttle <rate>, probe",
                              "rule '%s' of censor '%s' %s", r->name, cs->name, bad);
        }
    }
    return MESH_OK;
}

static int check_groups(const sim_scenario *s, char *err, size_t errlen)
{
    int matrix = s->core.model == SIM_SCN_LAT_MATRIX;
    for (size_t i = 0; i < s->group_count; i++) {
        const sim_scn_group *g = &s->groups[i];
        char what[SIM_SCN_MAX_NAME + 16];
        snprintf(what, sizeof what, "group '%s'", g->name);
        if (g->count == 0)
            return report(err, errlen, MESH_ERR_MALFORMED, &g->loc, "count: 1 or more",
                          "%s has no nodes", what);
        if (g->lan != SIM_SCN_INTERNET && g->lan >= s->lan_count)
            return report(err, errlen, MESH_ERR_MALFORMED, &g->loc, "place it on a known LAN",
                          "%s has a bad LAN index", what);
        CHECK(check_nat(&g->nat, &g->loc, what, err, errlen));
        if (g->nat.present && g->lan == SIM_SCN_INTERNET)
            return report(err, errlen, MESH_ERR_MALFORMED, &g->loc,
                          "a per-node NAT needs the group on a LAN (placement: <lan>)",
                          "%s has a NAT but sits on the internet", what);
        if (g->join_from > g->join_to)
            return report(err, errlen, MESH_ERR_MALFORMED, &g->loc,
                          "write spread: [t0, t1] with t0 <= t1",
                          "%s joins over a reversed interval", what);
        char jw[SIM_SCN_MAX_NAME + 32];
        snprintf(jw, sizeof jw, "%s joins at", what);
        CHECK(check_time(g->join_to, s->duration, &g->loc, jw, err, errlen));
        if (matrix && g->region >= s->core.region_count)
            return report(err, errlen, MESH_ERR_MALFORMED, &g->loc,
                          "with a latency matrix, give groups on the internet `region:`",
                          "%s has no region", what);
        if (!matrix && g->region != SIM_SCN_NO_REGION)
            return report(err, errlen, MESH_ERR_MALFORMED, &g->loc,
                          "regions exist only with a latency matrix", "%s has a region", what);
        if (g->alpn_count > SIM_SCN_MAX_LIST)
            return report(err, errlen, MESH_ERR_LIMIT, &g->loc, "SIM_SCN_MAX_LIST",
                          "%s offers too many ALPN protocols", what);
        if (i > 0 && g->first_node != s->groups[i - 1].first_node + s->groups[i - 1].count)
            return report(err, errlen, MESH_ERR_MALFORMED, &g->loc,
                          "first_node is the sum of the earlier groups' counts",
                          "%s has a bad first_node", what);
    }
    return MESH_OK;
}

static int check_events(const sim_scenario *s, char *err, size_t errlen)
{
    for (size_t i = 0; i < s->event_count; i++) {
        const sim_scn_event *e = &s->events[i];
        CHECK(check_time(e->at, s->duration, &e->loc, "event at", err, errlen));
        switch (e->kind) {
        case SIM_SCN_EV_CHURN:
            if (e->group >= s->group_count)
                return report(err, errlen, MESH_ERR_MALFORMED, &e->loc, "name a known group",
                              "churn of a bad group index");
            if (!(e->fraction > 0.0 && e->fraction <= 1.0))
                return report(err, errlen, MESH_ERR_MALFORMED, &e->loc,
                              "a fraction above 0%, up to 100%", "churn fraction out of range");
            break;
        case SIM_SCN_EV_PARTITION:
            if (e->target_count == 0 || e->target_count > SIM_SCN_MAX_LIST)
                return report(err, errlen, MESH_ERR_LIMIT, &e->loc, "1 to SIM_SCN_MAX_LIST",
                              "partition with %zu targets", e->target_count);
            for (size_t j = 0; j < e->target_count; j++)
                CHECK(check_ref(s, e->targets[j], &e->loc, err, errlen));
            if (e->heal_at <= e->at) {
                char a[32], b[32];
                fmt_time(a, sizeof a, e->heal_at);
                fmt_time(b, sizeof b, e->at);
                return report(err, errlen, MESH_ERR_MALFORMED, &e->loc,
                              "heal_at is an absolute time after the event's at",
                              "partition heals at %s, not after it starts at %s", a, b);
            }
            break;
        case SIM_SCN_EV_LINK:
            CHECK(check_ref(s, e->target, &e->loc, err, errlen));
            if (!e->link.set)
                return report(err, errlen, MESH_ERR_MALFORMED, &e->loc, "give a link field",
                              "link change changes nothing");
            break;
        case SIM_SCN_EV_CENSOR:
            if (e->censor >= s->censor_count)
                return report(err, errlen, MESH_ERR_MALFORMED, &e->loc, "name a known censor",
                              "censor event with a bad censor index");
            break;
        default:
            return report(err, errlen, MESH_ERR_MALFORMED, &e->loc,
                          "churn, partition, link or censor", "event of unknown kind %d", e->kind);
        }
    }
    return MESH_OK;
}

static int check_traffic(const sim_scenario *s, char *err, size_t errlen)
{
    for (size_t i = 0; i < s->traffic_count; i++) {
        const sim_scn_traffic *t = &s->traffic[i];
        const sim_scn_size *z = &t->size;
        const char *bad = NULL;
        if (t->from >= s->group_count || (t->to != SIM_SCN_TO_RANDOM && t->to >= s->group_count))
            bad = "refers to a bad group index";
        else if (t->interval == 0)
            bad = "has a zero interval";
        else if (t->start >= t->stop)
            bad = "stops before it starts";
        else if (z->dist == SIM_SCN_SIZE_UNIFORM && z->min > z->max)
            bad = "has a size range [min, max] with min > max";
        else if ((z->dist == SIM_SCN_SIZE_EXPONENTIAL || z->dist == SIM_SCN_SIZE_PARETO) &&
                 (z->mean == 0 || (z->max && z->max < z->mean)))
            bad = "has a size distribution with mean 0 or max below the mean";
        else if (z->dist == SIM_SCN_SIZE_PARETO && !(z->shape > 1.0))
            bad = "has a pareto shape not above 1 (its mean would be infinite)";
        else if (z->dist < SIM_SCN_SIZE_FIXED || z->dist > SIM_SCN_SIZE_PARETO)
            bad = "has a bad size distribution";
        if (bad)
            return report(err, errlen, MESH_ERR_MALFORMED, &t->loc,
                          "see the traffic section of docs/scenarios.md", "traffic '%s' %s",
                          t->name, bad);
        CHECK(check_time(t->stop, s->duration, &t->loc, "traffic stop", err, errlen));
    }
    for (size_t i = 0; i < s->expect_count; i++) {
        const sim_scn_expect *x = &s->expects[i];
        if (x->op < SIM_SCN_OP_LE || x->op > SIM_SCN_OP_EQ || !isfinite(x->value))
            return report(err, errlen, MESH_ERR_MALFORMED, &x->loc,
                          "op is <=, >= or ==", "bad expectation on '%s'", x->summary);
    }
    return MESH_OK;
}

int sim_scenario_check(const sim_scenario *s, char *err, size_t errlen)
{
    if (!s)
        return MESH_ERR_INVAL;
    CHECK(check_counts(s, err, errlen));
    CHECK(check_network(s, err, errlen));
    CHECK(check_groups(s, err, errlen));
    CHECK(check_events(s, err, errlen));
    return check_traffic(s, err, errlen);
}

/* ---- overrides ---------------------------------------------------------------------------------
 */

typedef struct override {
    char *path, *value;
    char *origin; /* "--set path=value": the loc origin of its nodes */
} override;

struct sim_scenario_priv {
    unsigned char *src; /* the file's bytes */
    size_t len;
    char *origin;
    arena a; /* the struct's strings and arrays */
    override sets[SIM_SCN_MAX_SETS];
    size_t nsets;
    char *json;
};

/* The child of node named by segment seg (a key, a list index or an element's name). */
static ynode *child_for(ynode *node, const char *seg)
{
    if (node->kind == Y_MAP)
        return map_find(node, seg);
    if (node->kind != Y_SEQ)
        return NULL;
    int digits = *seg != '\0';
    for (const char *c = seg; *c; c++)
        digits &= *c >= '0' && *c <= '9';
    size_t i = 0;
    for (ynode *e = node->first; e; e = e->next, i++) {
        if (digits && (size_t)strtoull(seg, NULL, 10) == i)
            return e;
        if (e->kind == Y_MAP) {
            ynode *nm = map_find(e, "name");
            if (nm && nm->kind == Y_SCALAR && !strcmp(nm->s, seg))
                return e;
        }
    }
    return NULL;
}

/* Replace old (a child of parent) by repl, keeping its key. */
static void node_replace(ynode *parent, ynode *old, ynode *repl)
{
    repl->key = old->key;
    repl->next = old->next;
    if (parent->first == old)
        parent->first = repl;
    for (ynode *c = parent->first; c; c = c->next)
        if (c->next == old)
            c->next = repl;
    if (parent->last == old)
        parent->last = repl;
}

/* Put child into map `node`: in place of `old` (keeping its key), or as a new entry under
 * key `name`. */
static int place(tree *t, ynode *node, ynode *old, const char *name, ynode *child, char *err,
                 size_t errlen)
{
    if (old) {
        node_replace(node, old, child);
        return MESH_OK;
    }
    ynode *k = node_new(t, Y_SCALAR, &child->loc);
    if (!k || !(k->s = arena_strndup(&t->a, name, strlen(name))))
        return report(err, errlen, MESH_ERR_NOMEM, &child->loc, NULL, "out of memory");
    k->len = strlen(name);
    k->plain = 1;
    child->key = k;
    node_append(node, child);
    return MESH_OK;
}

/* Graft one override onto the tree: value parsed as YAML, placed at path. */
static int apply_override(tree *t, ynode **root, const override *o, char *err, size_t errlen)
{
    sim_scn_loc l = {o->origin, 0, 0};
    builder b = {.t = t, .origin = o->origin, .positions = 0, .err = err, .errlen = errlen};
    TRY(build_tree(&b, (const unsigned char *)o->value, strlen(o->value)));
    ynode *val = b.root;
    if (!val) { /* an empty value: the empty scalar, as `key:` in a file */
        if (!(val = node_new(t, Y_SCALAR, &l)))
            return report(err, errlen, MESH_ERR_NOMEM, &l, NULL, "out of memory");
        val->s = "";
        val->plain = 1;
    }
    if (!*root && !(*root = node_new(t, Y_MAP, &l)))
        return report(err, errlen, MESH_ERR_NOMEM, &l, NULL, "out of memory");
    ynode *node = *root;
    const char *seg = o->path;
    for (;;) {
        const char *dot = strchr(seg, '.');
        size_t sl = dot ? (size_t)(dot - seg) : strlen(seg);
        char name[PATH_MAX_LEN];
        if (sl == 0 || sl >= sizeof name)
            return report(err, errlen, MESH_ERR_MALFORMED, &l,
                          "write dotted keys such as network.core.latency",
                          "bad path: empty or overlong segment");
        memcpy(name, seg, sl);
        name[sl] = '\0';
        ynode *c = child_for(node, name);
        if (node->kind == Y_SEQ && !c)
            return report(err, errlen, MESH_ERR_MALFORMED, &l,
                          "name a list element by its index (0, 1...) or its name",
                          "no element '%s' in that list", name);
        if (node->kind == Y_SCALAR)
            return report(err, errlen, MESH_ERR_MALFORMED, &l,
                          "the path goes through a scalar value", "cannot set '%s' inside a scalar",
                          name);
        if (!dot) {
            return place(t, node, c, name, val, err, errlen);
        }
        if (!c || is_null(c)) { /* create the missing mapping */
            ynode *m = node_new(t, Y_MAP, &l);
            if (!m)
                return report(err, errlen, MESH_ERR_NOMEM, &l, NULL, "out of memory");
            TRY(place(t, node, c, name, m, err, errlen));
            c = m;
        }
        node = c;
        seg = dot + 1;
    }
}

/* Parse the file, graft the overrides (with `pend` replacing the same path, or appended),
 * decode and check into a fresh arena; on success swap the result into s. */
static int rebuild(sim_scenario *s, const override *pend, char *err, size_t errlen)
{
    sim_scenario_priv *pv = s->priv;
    tree t = {0};
    sim_scenario fresh = {0};
    fresh.file = pv->origin;
    fresh.priv = pv;
    arena a = {0};
    builder b = {.t = &t, .origin = pv->origin, .positions = 1, .err = err, .errlen = errlen};
    int rc = build_tree(&b, pv->src, pv->len);
    ynode *root = b.root;
    int pend_done = 0;
    for (size_t i = 0; rc == MESH_OK && i < pv->nsets; i++) {
        const override *o = &pv->sets[i];
        if (pend && !strcmp(pend->path, o->path)) {
            o = pend;
            pend_done = 1;
        }
        rc = apply_override(&t, &root, o, err, errlen);
    }
    if (rc == MESH_OK && pend && !pend_done)
        rc = apply_override(&t, &root, pend, err, errlen);
    if (rc == MESH_OK) {
        dec d = {.a = &a, .s = &fresh, .err = err, .errlen = errlen};
        rc = decode_root(&d, root);
    }
    if (rc == MESH_OK)
        rc = sim_scenario_check(&fresh, err, errlen);
    if (rc != MESH_OK && pend && err && errlen &&
        strncmp(err, pend->origin, strlen(pend->origin))) {
        /* an error the override caused elsewhere (a check, a file value now invalid): say
         * which override */
        char *was = strdup(err);
        if (was) {
            snprintf(err, errlen, "%s: %s", pend->origin, was);
            free(was);
        }
    }
    arena_free(&t.a);
    if (rc != MESH_OK) {
        arena_free(&a);
        return rc;
    }
    memcpy(fresh.sha256, s->sha256, sizeof fresh.sha256);
    arena_free(&pv->a);
    pv->a = a;
    *s = fresh;
    return MESH_OK;
}

/* {"path":"value",...} with JSON string escapes. */
static char *params_json(const sim_scenario_priv *pv)
{
    size_t cap = 3;
    for (size_t i = 0; i < pv->nsets; i++)
        cap += 6 * (strlen(pv->sets[i].path) + strlen(pv->sets[i].value)) + 6;
    char *j = malloc(cap);
    if (!j)
        return NULL;
    size_t o = 0;
    j[o++] = '{';
    for (size_t i = 0; i < pv->nsets; i++) {
        const char *parts[2] = {pv->sets[i].path, pv->sets[i].value};
        if (i)
            j[o++] = ',';
        for (int k = 0; k < 2; k++) {
            j[o++] = '"';
            for (const unsigned char *c = (const unsigned char *)parts[k]; *c; c++) {
                if (*c == '"' || *c == '\\') {
                    j[o++] = '\\';
                    j[o++] = (char)*c;
                } else if (*c < 0x20) {
                    o += (size_t)snprintf(j + o, cap - o, "\\u%04x", *c);
                } else {
                    j[o++] = (char)*c;
                }
            }
            j[o++] = '"';
            if (k == 0)
                j[o++] = ':';
        }
    }
    j[o++] = '}';
    j[o] = '\0';
    return j;
}

int sim_scenario_set(sim_scenario *s, const char *path, const char *value, char *err, size_t errlen)
{
    if (!s || !path || !*path || !value)
        return MESH_ERR_INVAL;
    sim_scenario_priv *pv = s->priv;
    size_t slot = pv->nsets;
    for (size_t i = 0; i < pv->nsets; i++)
        if (!strcmp(pv->sets[i].path, path))
            slot = i;
    override o = {0};
    size_t ol = strlen(path) + strlen(value) + 8;
    o.path = strdup(path);
    o.value = strdup(value);
    o.origin = malloc(ol);
    if (!o.path || !o.value || !o.origin) {
        free(o.path);
        free(o.value);
        free(o.origin);
        return report(err, errlen, MESH_ERR_NOMEM, NULL, NULL, "out of memory");
    }
    snprintf(o.origin, ol, "--set %s=%s", path, value);
    sim_scn_loc l = {o.origin, 0, 0};
    int rc = MESH_OK;
    if (slot == SIM_SCN_MAX_SETS)
        rc = report(err, errlen, MESH_ERR_LIMIT, &l, "SIM_SCN_MAX_SETS",
                    "too many overrides (limit %d)", SIM_SCN_MAX_SETS);
    if (rc == MESH_OK)
        rc = rebuild(s, &o, err, errlen);
    if (rc == MESH_OK) {
        if (slot < pv->nsets) {
            free(pv->sets[slot].path);
            free(pv->sets[slot].value);
            free(pv->sets[slot].origin);
        } else {
            pv->nsets++;
        }
        pv->sets[slot] = o;
        char *json = params_json(pv);
        if (json) { /* out of memory keeps the previous text rather than none */
            free(pv->json);
            pv->json = json;
        }
        return MESH_OK;
    }
    free(o.path);
    free(o.value);
    free(o.origin);
    return rc;
}

int sim_scenario_set_arg(sim_scenario *s, const char *arg, char *err, size_t errlen)
{
    if (!s || !arg)
        return MESH_ERR_INVAL;
    const char *eq = strchr(arg, '=');
    sim_scn_loc l = {"--set", 0, 0};
    if (!eq || eq == arg)
        return report(err, errlen, MESH_ERR_MALFORMED, &l,
                      "write --set path=value, e.g. --set "
                      "network.core.latency=80ms",
                      "'%s' is not path=value", arg);
    char path[PATH_MAX_LEN * 2];
    size_t pl = (size_t)(eq - arg);
    if (pl >= sizeof path)
        return report(err, errlen, MESH_ERR_MALFORMED, &l, "shorter paths",
                      "path too long in '%.40s...'", arg);
    memcpy(path, arg, pl);
    path[pl] = '\0';
    return sim_scenario_set(s, path, eq + 1, err, errlen);
}

const char *sim_scenario_params_json(const sim_scenario *s)
{
    return s && s->priv && s->priv->json ? s->priv->json : "{}";
}

/* ---- load and free
 * ------------------------------------------------------------------------------- */

int sim_scenario_load_mem(sim_scenario **out, const char *origin, const void *data, size_t len,
                          char *err, size_t errlen)
{
    if (!out || !origin || (!data && len))
        return MESH_ERR_INVAL;
    sim_scn_loc l = {origin, 0, 0};
    if (len > SIM_SCN_MAX_FILE)
        return report(err, errlen, MESH_ERR_TOO_BIG, &l, "SIM_SCN_MAX_FILE",
                      "file is %zu bytes, larger than the limit of %d", len, SIM_SCN_MAX_FILE);
    sim_scenario *s = calloc(1, sizeof *s);
    sim_scenario_priv *pv = calloc(1, sizeof *pv);
    if (!s || !pv)
        goto fail_nomem;
    s->priv = pv;
    pv->src = malloc(len ? len : 1);
    pv->origin = strdup(origin);
    if (!pv->src || !pv->origin)
        goto fail_nomem;
    if (len)
        memcpy(pv->src, data, len);
    pv->len = len;
    unsigned char md[32];
    unsigned mdlen = 0;
    if (!EVP_Digest(data ? data : "", len, md, &mdlen, EVP_sha256(), NULL) || mdlen != 32)
        goto fail_nomem;
    for (unsigned i = 0; i < 32; i++)
        snprintf(s->sha256 + 2 * i, 3, "%02x", md[i]);
    s->file = pv->origin;
    int rc = rebuild(s, NULL, err, errlen);
    if (rc != MESH_OK) {
        sim_scenario_free(s);
        return rc;
    }
    *out = s;
    return MESH_OK;
fail_nomem:
    sim_scenario_free(s);
    if (!s)
        free(pv);
    return report(err, errlen, MESH_ERR_NOMEM, &l, NULL, "out of memory");
}

int sim_scenario_load(sim_scenario **out, const char *path, char *err, size_t errlen)
{
    if (!out || !path)
        return MESH_ERR_INVAL;
    sim_scn_loc l = {path, 0, 0};
    FILE *f = fopen(path, "rb");
    if (!f)
        return report(err, errlen, MESH_ERR_IO, &l, "check the path", "cannot open: %s",
                      strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) == 0 && st.st_size > SIM_SCN_MAX_FILE) {
        fclose(f);
        return report(err, errlen, MESH_ERR_TOO_BIG, &l, "SIM_SCN_MAX_FILE",
                      "file is %lld bytes, larger than the limit of %d", (long long)st.st_size,
                      SIM_SCN_MAX_FILE);
    }
    char *buf = malloc(SIM_SCN_MAX_FILE + 1);
    if (!buf) {
        fclose(f);
        return report(err, errlen, MESH_ERR_NOMEM, &l, NULL, "out of memory");
    }
    size_t n = fread(buf, 1, SIM_SCN_MAX_FILE + 1, f);
    int rerr = ferror(f);
    fclose(f);
    int rc;
    if (rerr)
        rc = report(err, errlen, MESH_ERR_IO, &l, "check the file", "read error");
    else if (n > SIM_SCN_MAX_FILE) /* it grew after fstat, or is not a regular file */
        rc = report(err, errlen, MESH_ERR_TOO_BIG, &l, "SIM_SCN_MAX_FILE",
                    "file is larger than the limit of %d bytes", SIM_SCN_MAX_FILE);
    else
        rc = sim_scenario_load_mem(out, path, buf, n, err, errlen);
    free(buf);
    return rc;
}

void sim_scenario_free(sim_scenario *s)
{
    if (!s)
        return;
    sim_scenario_priv *pv = s->priv;
    if (pv) {
        arena_free(&pv->a);
        for (size_t i = 0; i < pv->nsets; i++) {
            free(pv->sets[i].path);
            free(pv->sets[i].value);
            free(pv->sets[i].origin);
        }
        free(pv->json);
        free(pv->src);
        free(pv->origin);
        free(pv);
    }
    free(s);
}

/* ---- lookups and names -------------------------------------------------------------------------
 */

size_t sim_scenario_group(const sim_scenario *s, const char *name)
{
    for (size_t i = 0; s && name && i < s->group_count; i++)
        if (!strcmp(s->groups[i].name, name))
            return i;
    return (size_t)-1;
}

size_t sim_scenario_lan(const sim_scenario *s, const char *name)
{
    for (size_t i = 0; s && name && i < s->lan_count; i++)
        if (!strcmp(s->lans[i].name, name))
            return i;
    return (size_t)-1;
}

size_t sim_scenario_censor(const sim_scenario *s, const char *name)
{
    for (size_t i = 0; s && name && i < s->censor_count; i++)
        if (!strcmp(s->censors[i].name, name))
            return i;
    return (size_t)-1;
}

size_t sim_scenario_node_group(const sim_scenario *s, uint32_t node)
{
    if (!s || node >= s->node_count)
        return (size_t)-1;
    size_t lo = 0, hi = s->group_count;
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (s->groups[mid].first_node <= node)
            lo = mid;
        else
            hi = mid;
    }
    return lo;
}

const char *sim_scenario_ref_name(const sim_scenario *s, sim_scn_ref ref)
{
    if (ref.kind == SIM_SCN_REF_GROUP && ref.index < s->group_count)
        return s->groups[ref.index].name;
    if (ref.kind == SIM_SCN_REF_LAN && ref.index < s->lan_count)
        return s->lans[ref.index].name;
    return "?";
}

int sim_scn_expect_holds(const sim_scn_expect *e, double value)
{
    switch (e->op) {
    case SIM_SCN_OP_LE:
        return value <= e->value;
    case SIM_SCN_OP_GE:
        return value >= e->value;
    case SIM_SCN_OP_EQ:
        return value == e->value;
    default:
        return 0;
    }
}

const char *sim_scn_op_name(int op)
{
    return op >= 0 && op < 3 ? OPS[op] : "?";
}

const char *sim_scn_nat_behaviour_name(int b)
{
    return b >= 0 && b < 3 ? NAT_BEHAVIOURS[b] : "?";
}

const char *sim_scn_action_name(int action)
{
    return action >= 0 && action < 4 ? ACTIONS[action] : "?";
}

const char *sim_scn_event_kind_name(int kind)
{
    return kind >= 0 && kind < 4 ? EVENT_KINDS[kind] : "?";
}
