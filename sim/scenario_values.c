/* scenario_values.c — typed values of the scenario tree (see scenario_values.h). */
#include "sim/scenario_values.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "meshara/error.h"

enum { SCN_MAX_FRAC_DIGITS = 18 }; /* digits after a decimal point (more cannot be exact) */

/* ---- shape and keys ------------------------------------------------------------------------- */

int scn_nomem(scn_dec *d, const scn_node *n)
{
    return sim_scn_error(d->err, d->errlen, MESH_ERR_NOMEM, n ? &n->loc : NULL, NULL,
                         "out of memory");
}

static const char *kind_name(const scn_node *n)
{
    return n->kind == SCN_MAP ? "a mapping" : n->kind == SCN_SEQ ? "a list" : "a scalar";
}

int scn_wrong_type(scn_dec *d, const scn_node *n, const char *path, const char *expected,
                   const char *hint)
{
    char sb[SCN_SHOW_MAX + 4];
    if (n->kind == SCN_SCALAR)
        return sim_scn_error(d->err, d->errlen, MESH_ERR_MALFORMED, &n->loc, hint,
                             "wrong type for %s: expected %s, found \"%s\"", path, expected,
                             scn_show(n->s, sb));
    return sim_scn_error(d->err, d->errlen, MESH_ERR_MALFORMED, &n->loc, hint,
                         "wrong type for %s: expected %s, found %s", path, expected, kind_name(n));
}

int scn_want_map(scn_dec *d, const scn_node *n, const char *path)
{
    if (n->kind != SCN_MAP)
        return scn_wrong_type(d, n, path, "a mapping",
                              "write `key: value` lines indented under it");
    return MESH_OK;
}

/* A list (or null = empty) of at most limit items. */
int scn_want_list(scn_dec *d, const scn_node *n, const char *path, size_t limit,
                  const char *limname)
{
    if (scn_is_null(n))
        return MESH_OK;
    if (n->kind != SCN_SEQ)
        return scn_wrong_type(d, n, path, "a list", "write items as `- ...` lines or [a, b]");
    if (n->n > limit) {
        const scn_node *c = n->first;
        for (size_t i = 0; i < limit; i++)
            c = c->next;
        char hint[96];
        snprintf(hint, sizeof hint, "at most %zu (%s)", limit, limname);
        return sim_scn_error(d->err, d->errlen, MESH_ERR_LIMIT, &c->loc, hint,
                             "too many items in %s (limit %zu)", path, limit);
    }
    return MESH_OK;
}

size_t scn_list_len(const scn_node *n)
{
    return scn_is_null(n) ? 0 : n->n;
}

/* Every key of map must be in known (NULL-terminated). */
int scn_check_keys(scn_dec *d, const scn_node *map, const char *path, const char *const *known)
{
    size_t nk = 0;
    while (known[nk])
        nk++;
    for (const scn_node *c = map->first; c; c = c->next) {
        size_t i = 0;
        while (i < nk && strcmp(known[i], c->key->s))
            i++;
        if (i < nk)
            continue;
        char hint[256], sb[SCN_SHOW_MAX + 4];
        scn_suggest(hint, sizeof hint, c->key->s, known, nk, "known keys here: ");
        return sim_scn_error(d->err, d->errlen, MESH_ERR_MALFORMED, &c->key->loc, hint,
                             "unknown key '%s' in %s", scn_show(c->key->s, sb), path);
    }
    return MESH_OK;
}

/* The value of key in map, NULL when absent or null. */
const scn_node *scn_get(const scn_node *map, const char *key)
{
    const scn_node *n = scn_map_find(map, key);
    return scn_is_null(n) ? NULL : n;
}

int scn_need(scn_dec *d, const scn_node *map, const char *path, const char *key,
             const scn_node **out)
{
    const scn_node *n = scn_map_find(map, key);
    if (!n) {
        char hint[96];
        snprintf(hint, sizeof hint, "add `%s:` to %s", key, path);
        return sim_scn_error(d->err, d->errlen, MESH_ERR_MALFORMED, &map->loc, hint,
                             "missing required key '%s' in %s", key, path);
    }
    if (scn_is_null(n)) {
        char hint[96];
        snprintf(hint, sizeof hint, "give %s a value", key);
        return sim_scn_error(d->err, d->errlen, MESH_ERR_MALFORMED, &n->key->loc, hint,
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
    vsnprintf(buf, SCN_PATH_MAX, fmt, ap);
    va_end(ap);
}

void scn_subpath(char *buf, const char *path, const char *key)
{
    pathf(buf, "%s%s%s", path, *path ? "." : "", key);
}

void scn_itempath(char *buf, const char *path, size_t i)
{
    pathf(buf, "%s[%zu]", path, i);
}

/* The value of optional key in map with its path in p (SCN_PATH_MAX bytes); NULL when
 * absent or null (p then untouched). */
const scn_node *scn_opt(const scn_node *map, const char *path, const char *key, char *p)
{
    const scn_node *v = scn_get(map, key);
    if (v)
        scn_subpath(p, path, key);
    return v;
}

/* scn_need(), also giving the key's path in p. */
int scn_need_at(scn_dec *d, const scn_node *map, const char *path, const char *key,
                const scn_node **out, char *p)
{
    scn_subpath(p, path, key);
    return scn_need(d, map, path, key, out);
}

int scn_out_of_range(scn_dec *d, const scn_node *n, const char *path, const char *hint)
{
    char sb[SCN_SHOW_MAX + 4];
    return sim_scn_error(d->err, d->errlen, MESH_ERR_MALFORMED, &n->loc, hint,
                         "value out of range for %s: \"%s\"", path, scn_show(n->s, sb));
}

/* ---- scalars ------------------------------------------------------------------------------ */

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
            if (m > (UINT64_MAX - 9) / 10 || (dot && f >= SCN_MAX_FRAC_DIGITS))
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
                                     SCN_MAX_TIME,
                                     "durations look like 500us, 250ms, 1.5s, 10m, 2h"};
static const unit_kind K_RATE = {"a rate", RATE_UNITS,   sizeof RATE_UNITS / sizeof RATE_UNITS[0],
                                 0,        SCN_MAX_RATE, "rates look like 500kbit, 10Mbit, 1Gbit"};
static const unit_kind K_SIZE = {"a size", SIZE_UNITS,   sizeof SIZE_UNITS / sizeof SIZE_UNITS[0],
                                 1,        SCN_MAX_SIZE, "sizes look like 1500B, 16KiB, 1MiB"};

int scn_get_scalar(scn_dec *d, const scn_node *n, const char *path, const char *expected,
                   const char *hint)
{
    if (n->kind != SCN_SCALAR)
        return scn_wrong_type(d, n, path, expected, hint);
    return MESH_OK;
}

static int get_units(scn_dec *d, const scn_node *n, const char *path, const unit_kind *k,
                     uint64_t *out)
{
    SCN_TRY(scn_get_scalar(d, n, path, k->what, k->hint));
    const char *s = n->s;
    if (s[0] == '-' && s[1] >= '0' && s[1] <= '9') {
        char sb[SCN_SHOW_MAX + 4];
        return sim_scn_error(d->err, d->errlen, MESH_ERR_MALFORMED, &n->loc, k->hint,
                             "value out of range for %s: \"%s\" is negative", path,
                             scn_show(s, sb));
    }
    uint64_t mant;
    unsigned frac;
    size_t used = scan_decimal(s, &mant, &frac);
    if (used == (size_t)-1)
        return scn_out_of_range(d, n, path, "too many digits");
    if (used == 0)
        return scn_wrong_type(d, n, path, k->what, k->hint);
    const char *u = s + used;
    while (*u == ' ')
        u++;
    uint64_t mult = 0;
    if (*u == '\0') {
        if (!k->bare_ok && mant != 0) {
            char sb[SCN_SHOW_MAX + 4];
            return sim_scn_error(d->err, d->errlen, MESH_ERR_MALFORMED, &n->loc, k->hint,
                                 "bad unit for %s: \"%s\" has no unit", path, scn_show(s, sb));
        }
        mult = 1;
    } else {
        for (size_t i = 0; i < k->nunits; i++)
            if (!strcmp(u, k->units[i].name))
                mult = k->units[i].mult;
        if (!mult) {
            char sb[SCN_SHOW_MAX + 4], ub[SCN_SHOW_MAX + 4];
            return sim_scn_error(d->err, d->errlen, MESH_ERR_MALFORMED, &n->loc, k->hint,
                                 "bad unit \"%s\" for %s in \"%s\"", scn_show(u, ub), path,
                                 scn_show(s, sb));
        }
    }
    unsigned __int128 v = (unsigned __int128)mant * mult;
    uint64_t p10 = 1;
    for (unsigned i = 0; i < frac; i++)
        p10 *= 10;
    if (v % p10)
        return scn_out_of_range(d, n, path, "finer than the smallest unit (1 ns, 1 bit/s, 1 byte)");
    v /= p10;
    if (v > k->max) {
        char hint[80];
        snprintf(hint, sizeof hint, "at most %llu in base units", (unsigned long long)k->max);
        return scn_out_of_range(d, n, path, hint);
    }
    *out = (uint64_t)v;
    return MESH_OK;
}

int scn_get_duration(scn_dec *d, const scn_node *n, const char *path, mesh_time *out)
{
    return get_units(d, n, path, &K_DURATION, out);
}

int scn_get_rate(scn_dec *d, const scn_node *n, const char *path, uint64_t *bps)
{
    return get_units(d, n, path, &K_RATE, bps);
}

int scn_get_size(scn_dec *d, const scn_node *n, const char *path, uint64_t *bytes)
{
    return get_units(d, n, path, &K_SIZE, bytes);
}

/* A whole number in [min, max]. */
int scn_get_uint(scn_dec *d, const scn_node *n, const char *path, uint64_t min, uint64_t max,
                 uint64_t *out)
{
    SCN_TRY(scn_get_scalar(d, n, path, "a whole number", "write digits only, e.g. 40"));
    const char *s = n->s;
    int neg = s[0] == '-';
    uint64_t mant;
    unsigned frac;
    size_t used = scan_decimal(s + neg, &mant, &frac);
    char hint[96];
    snprintf(hint, sizeof hint, "between %llu and %llu", (unsigned long long)min,
             (unsigned long long)max);
    if (used == (size_t)-1)
        return scn_out_of_range(d, n, path, hint);
    if (used == 0 || s[neg + used] != '\0' || frac || strchr(s, '.'))
        return scn_wrong_type(d, n, path, "a whole number", "write digits only, e.g. 40");
    if ((neg && mant) || mant < min || mant > max)
        return scn_out_of_range(d, n, path, hint);
    *out = mant;
    return MESH_OK;
}

/* A finite real number (optionally followed by '%', then divided by 100 when pct_ok). */
int scn_get_real(scn_dec *d, const scn_node *n, const char *path, int pct_ok, double min,
                 double max, double *out)
{
    const char *hint = pct_ok ? "write a fraction as 1% or 0.01" : "write a number such as 0.95";
    SCN_TRY(scn_get_scalar(d, n, path, pct_ok ? "a fraction" : "a number", hint));
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
        return scn_wrong_type(d, n, path, pct_ok ? "a fraction" : "a number", hint);
    char num[64];
    if (i >= sizeof num)
        return scn_out_of_range(d, n, path, "too many digits");
    memcpy(num, s, i);
    num[i] = '\0';
    double v = strtod(num, NULL);
    if (pct)
        v /= 100.0;
    if (!isfinite(v) || v < min || v > max) {
        char rh[96];
        snprintf(rh, sizeof rh, "between %g and %g%s", min, max, pct_ok ? " (0% to 100%)" : "");
        return scn_out_of_range(d, n, path, rh);
    }
    *out = v;
    return MESH_OK;
}

int scn_get_fraction(scn_dec *d, const scn_node *n, const char *path, double *out)
{
    return scn_get_real(d, n, path, 1, 0.0, 1.0, out);
}

int scn_get_bool(scn_dec *d, const scn_node *n, const char *path, int *out)
{
    static const char *const T[] = {"true", "True", "TRUE", "yes", "Yes", "on", "On"};
    static const char *const F[] = {"false", "False", "FALSE", "no", "No", "off", "Off"};
    if (n->kind == SCN_SCALAR) {
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
    return scn_wrong_type(d, n, path, "true or false", "write true or false");
}

/* One of names[] (n of them); the index into *out. */
int scn_get_choice(scn_dec *d, const scn_node *n, const char *path, const char *const *names,
                   size_t count, int *out)
{
    char hint[256];
    if (n->kind != SCN_SCALAR) {
        size_t o = 0;
        for (size_t i = 0; i < count && o < sizeof hint; i++)
            o += (size_t)snprintf(hint + o, sizeof hint - o, "%s%s",
                                  i ? ", " : "one of: ", names[i]);
        return scn_wrong_type(d, n, path, "a word", hint);
    }
    scn_suggest(hint, sizeof hint, n->s, names, count, "one of: ");
    for (size_t i = 0; i < count; i++) {
        if (!strcmp(n->s, names[i])) {
            *out = (int)i;
            return MESH_OK;
        }
    }
    char sb[SCN_SHOW_MAX + 4];
    return sim_scn_error(d->err, d->errlen, MESH_ERR_MALFORMED, &n->loc, hint,
                         "bad value \"%s\" for %s", scn_show(n->s, sb), path);
}

/* A non-empty string of at most max bytes, copied into the struct's arena. */
int scn_get_string(scn_dec *d, const scn_node *n, const char *path, size_t max, const char **out)
{
    SCN_TRY(scn_get_scalar(d, n, path, "a string", "write the text, quoted if it has ': ' or '#'"));
    if (n->len == 0 || n->len > max) {
        char hint[64];
        snprintf(hint, sizeof hint, "1 to %zu characters", max);
        return scn_out_of_range(d, n, path, hint);
    }
    char *c = scn_arena_strndup(d->a, n->s, n->len);
    if (!c)
        return scn_nomem(d, n);
    *out = c;
    return MESH_OK;
}

/* A name: a letter, then letters, digits, '_', '-' (and '.' when dots); at most
 * SIM_SCN_MAX_NAME bytes. Names are what --set paths and references use. */
int scn_get_name_ex(scn_dec *d, const scn_node *n, const char *path, int dots, const char **out)
{
    const char *hint = dots ? "a letter, then letters, digits, '_', '-' or '.'"
                            : "a letter, then letters, digits, '_' or '-'";
    SCN_TRY(scn_get_scalar(d, n, path, "a name", hint));
    int ok = n->len > 0 && n->len <= SIM_SCN_MAX_NAME &&
             ((n->s[0] >= 'a' && n->s[0] <= 'z') || (n->s[0] >= 'A' && n->s[0] <= 'Z'));
    for (size_t i = 0; ok && i < n->len; i++) {
        char c = n->s[i];
        ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
             c == '_' || c == '-' || (dots && c == '.');
    }
    if (!ok) {
        char sb[SCN_SHOW_MAX + 4], h[128];
        snprintf(h, sizeof h, "%s; at most %d characters", hint, SIM_SCN_MAX_NAME);
        return sim_scn_error(d->err, d->errlen, MESH_ERR_MALFORMED, &n->loc, h,
                             "bad name \"%s\" for %s", scn_show(n->s, sb), path);
    }
    const char *c = scn_arena_strndup(d->a, n->s, n->len);
    if (!c)
        return scn_nomem(d, n);
    *out = c;
    return MESH_OK;
}

int scn_get_name(scn_dec *d, const scn_node *n, const char *path, const char **out)
{
    return scn_get_name_ex(d, n, path, 0, out);
}

/* Error for a name defined twice. */
int scn_duplicate(scn_dec *d, const scn_node *n, const char *what, const sim_scn_loc *first)
{
    char hint[160], sb[SCN_SHOW_MAX + 4];
    snprintf(hint, sizeof hint, "%s names must be unique; the first is at line %u, column %u", what,
             first->line, first->col);
    return sim_scn_error(d->err, d->errlen, MESH_ERR_MALFORMED, &n->loc, hint,
                         "duplicate name '%s'", scn_show(n->s, sb));
}

/* An item's optional `name:`, unique among the items before it, or "<what><idx>" when
 * absent. Items are `size` bytes apart with their name (const char *) and loc (sim_scn_loc) at
 * the given offsets; the item at idx gets the name. */
int scn_item_name(scn_dec *d, const scn_node *map, const char *path, const char *what, size_t idx,
                  void *items, size_t size, size_t name_off, size_t loc_off)
{
    char p[SCN_PATH_MAX], buf[32];
    const scn_node *v;
    const char **name = (const char **)((char *)items + idx * size + name_off);
    if ((v = scn_opt(map, path, "name", p))) {
        SCN_TRY(scn_get_name(d, v, p, name));
        for (size_t i = 0; i < idx; i++) {
            const char *prev = *(const char **)((char *)items + i * size + name_off);
            if (!strcmp(prev, *name))
                return scn_duplicate(d, v, what,
                                     (const sim_scn_loc *)((char *)items + i * size + loc_off));
        }
        return MESH_OK;
    }
    snprintf(buf, sizeof buf, "%s%zu", what, idx);
    if (!(*name = scn_arena_strndup(d->a, buf, strlen(buf))))
        return scn_nomem(d, map);
    return MESH_OK;
}

/* [a, b]: a list of exactly two items. */
int scn_get_pair(scn_dec *d, const scn_node *n, const char *path, const char *what,
                 const scn_node **a, const scn_node **b)
{
    char hint[96];
    *a = *b = NULL;
    snprintf(hint, sizeof hint, "write [min, max] with two %s", what);
    if (n->kind != SCN_SEQ || n->n != 2)
        return scn_wrong_type(d, n, path, "a list of two values", hint);
    *a = n->first;
    *b = n->first->next;
    return MESH_OK;
}

int scn_get_ipv4_prefix(scn_dec *d, const scn_node *n, const char *path, uint32_t *ip, uint8_t *pfx)
{
    const char *hint = "write 203.0.113.7 or 203.0.113.0/24";
    SCN_TRY(scn_get_scalar(d, n, path, "an IPv4 address", hint));
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
            return scn_wrong_type(d, n, path, "an IPv4 address", hint);
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
            return scn_wrong_type(d, n, path, "an IPv4 address", hint);
        if (bits > 32)
            return scn_out_of_range(d, n, path, "a prefix length is 0 to 32");
    }
    if (*s)
        return scn_wrong_type(d, n, path, "an IPv4 address", hint);
    uint32_t mask = bits == 0 ? 0 : 0xffffffffu << (32 - bits);
    if (v & ~mask)
        return scn_out_of_range(d, n, path, "the address has bits set past the prefix length");
    *ip = v;
    *pfx = (uint8_t)bits;
    return MESH_OK;
}

/* "N/s", "N/m", "N/h": messages per unit of time, as the interval between them. */
int scn_get_msg_rate(scn_dec *d, const scn_node *n, const char *path, mesh_time *out)
{
    const char *hint = "write messages per time as 2/s, 30/m or 100/h";
    SCN_TRY(scn_get_scalar(d, n, path, "a message rate", hint));
    uint64_t mant;
    unsigned frac;
    size_t used = scan_decimal(n->s, &mant, &frac);
    if (used == 0 || used == (size_t)-1)
        return scn_wrong_type(d, n, path, "a message rate", hint);
    const char *u = n->s + used;
    uint64_t per = !strcmp(u, "/s")   ? 1000000000ULL
                   : !strcmp(u, "/m") ? 60000000000ULL
                   : !strcmp(u, "/h") ? 3600000000000ULL
                                      : 0;
    if (!per) {
        char ub[SCN_SHOW_MAX + 4], sb[SCN_SHOW_MAX + 4];
        return sim_scn_error(d->err, d->errlen, MESH_ERR_MALFORMED, &n->loc, hint,
                             "bad unit \"%s\" for %s in \"%s\"", scn_show(u, ub), path,
                             scn_show(n->s, sb));
    }
    if (mant == 0)
        return scn_out_of_range(d, n, path, "a rate above 0");
    unsigned __int128 num = per;
    for (unsigned i = 0; i < frac; i++)
        num *= 10;
    unsigned __int128 iv = (num + mant / 2) / mant;
    if (iv == 0 || iv > SCN_MAX_TIME)
        return scn_out_of_range(d, n, path, "at most 1e9/s and at least one per year");
    *out = (mesh_time)iv;
    return MESH_OK;
}

/* ---- names and references ----------------------------------------------------------------- */

static const char *const RESERVED[] = {"internet", "random"};

/* A group or LAN name: unique across both lists (as decoded so far), not reserved. */
int scn_check_unique_site(scn_dec *d, const scn_node *n, size_t ngroups, size_t nlans)
{
    for (size_t i = 0; i < sizeof RESERVED / sizeof RESERVED[0]; i++)
        if (!strcmp(n->s, RESERVED[i]))
            return sim_scn_error(d->err, d->errlen, MESH_ERR_MALFORMED, &n->loc,
                                 "'internet' and 'random' are keywords; pick another name",
                                 "reserved name '%s'", RESERVED[i]);
    for (size_t i = 0; i < nlans; i++)
        if (!strcmp(d->s->lans[i].name, n->s))
            return scn_duplicate(d, n, "group and LAN", &d->s->lans[i].loc);
    for (size_t i = 0; i < ngroups; i++)
        if (!strcmp(d->s->groups[i].name, n->s))
            return scn_duplicate(d, n, "group and LAN", &d->s->groups[i].loc);
    return MESH_OK;
}

/* The hint for an unknown reference: a near name, or the known ones. */
static void ref_hint(scn_dec *d, char *hint, size_t cap, const char *word, int groups, int lans,
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
    scn_suggest(hint, cap, word, names, n, "known: ");
}

int scn_unknown_ref(scn_dec *d, const scn_node *n, const char *path, const char *what, int groups,
                    int lans, int censors)
{
    char hint[512], sb[SCN_SHOW_MAX + 4];
    ref_hint(d, hint, sizeof hint, n->kind == SCN_SCALAR ? n->s : "", groups, lans, censors);
    return sim_scn_error(d->err, d->errlen, MESH_ERR_MALFORMED, &n->loc, hint,
                         "unknown %s '%s' in %s", what,
                         n->kind == SCN_SCALAR ? scn_show(n->s, sb) : "?", path);
}

int scn_get_group_ref(scn_dec *d, const scn_node *n, const char *path, size_t *out)
{
    SCN_TRY(scn_get_scalar(d, n, path, "a group name", "name a group from groups:"));
    size_t i = sim_scenario_group(d->s, n->s);
    if (i == (size_t)-1)
        return scn_unknown_ref(d, n, path, "group", 1, 0, 0);
    *out = i;
    return MESH_OK;
}

int scn_get_site_ref(scn_dec *d, const scn_node *n, const char *path, sim_scn_ref *out)
{
    SCN_TRY(scn_get_scalar(d, n, path, "a group or LAN name", "name a group or a LAN"));
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
    return scn_unknown_ref(d, n, path, "group or LAN", 1, 1, 0);
}

int scn_get_site_list(scn_dec *d, const scn_node *n, const char *path, const sim_scn_ref **out,
                      size_t *count)
{
    char q[SCN_PATH_MAX];
    SCN_TRY(scn_want_list(d, n, path, SIM_SCN_MAX_LIST, "SIM_SCN_MAX_LIST"));
    if (scn_list_len(n) == 0)
        return sim_scn_error(d->err, d->errlen, MESH_ERR_MALFORMED, &n->loc,
                             "name one group or LAN or more", "empty list %s", path);
    sim_scn_ref *refs = scn_arena_alloc(d->a, n->n * sizeof *refs);
    if (!refs)
        return scn_nomem(d, n);
    size_t i = 0;
    for (const scn_node *e = n->first; e; e = e->next, i++) {
        scn_itempath(q, path, i);
        SCN_TRY(scn_get_site_ref(d, e, q, &refs[i]));
    }
    *out = refs;
    *count = n->n;
    return MESH_OK;
}

/* A region name from the core's matrix. */
int scn_get_region(scn_dec *d, const scn_node *n, const char *path, size_t *out)
{
    const sim_scn_core *c = &d->s->core;
    char hint[256], sb[SCN_SHOW_MAX + 4];
    if (c->model != SIM_SCN_LAT_MATRIX)
        return sim_scn_error(
            d->err, d->errlen, MESH_ERR_MALFORMED, &n->loc,
            "regions exist only with network.core.latency: {regions: ..., matrix: ...}",
            "%s given but the core latency has no regions", path);
    SCN_TRY(scn_get_scalar(d, n, path, "a region name", "one of network.core.latency.regions"));
    for (size_t i = 0; i < c->region_count; i++) {
        if (!strcmp(c->regions[i], n->s)) {
            *out = i;
            return MESH_OK;
        }
    }
    scn_suggest(hint, sizeof hint, n->s, c->regions, c->region_count, "regions: ");
    return sim_scn_error(d->err, d->errlen, MESH_ERR_MALFORMED, &n->loc, hint,
                         "unknown region '%s' in %s", scn_show(n->s, sb), path);
}
