/* scenario_values.h — typed values of the scenario tree (internal to sim/scenario*.c): the
 * decoding context, and one getter per kind of value the schema knows (durations, rates,
 * sizes, numbers, booleans, words from a list, strings, names, IPv4 prefixes, message rates,
 * references to groups, LANs, censors and regions).
 *
 * Every getter takes the node and its key path (for messages, e.g. "groups[0].count") and
 * either stores the value and returns MESH_OK, or writes one FILE:LINE:COL error naming what
 * is wrong and a hint (scn_report) and returns MESH_ERR_MALFORMED (MESH_ERR_LIMIT for a named
 * limit, MESH_ERR_NOMEM). Strings are copied into the new struct's arena. Decimal values are
 * converted exactly: a value finer than the stored unit is an error, never rounded.
 */
#ifndef SIM_SCENARIO_VALUES_H
#define SIM_SCENARIO_VALUES_H

#include <stddef.h>
#include <stdint.h>

#include "sim/scenario.h"
#include "sim/scenario_yaml.h"

/* Bounds of values (not counts): a year of virtual time, 1 Tbit/s, 1 GiB. */
#define SCN_MAX_TIME (365ULL * 24 * 3600 * 1000000000ULL)
#define SCN_MAX_RATE 1000000000000ULL
#define SCN_MAX_SIZE (1ULL << 30)

/* What a decoder writes into: the struct being built (its public fields are filled as
 * decoding goes, so later items can look earlier ones up by name) and its arena. */
typedef struct scn_dec {
    scn_arena *a;
    sim_scenario *s;
    char *err;
    size_t errlen;
} scn_dec;

/* Return from the calling function when x is not MESH_OK. */
#define SCN_TRY(x)                                                                                 \
    do {                                                                                           \
        int rc_ = (x);                                                                             \
        if (rc_ != MESH_OK)                                                                        \
            return rc_;                                                                            \
    } while (0)

/* ---- shape and keys ------------------------------------------------------------------------- */

int scn_nomem(scn_dec *d, const scn_node *n);
/* "wrong type for PATH: expected EXPECTED, found ..." */
int scn_wrong_type(scn_dec *d, const scn_node *n, const char *path, const char *expected,
                   const char *hint);
/* "value out of range for PATH: ..." */
int scn_out_of_range(scn_dec *d, const scn_node *n, const char *path, const char *hint);
int scn_want_map(scn_dec *d, const scn_node *n, const char *path);
/* A list (or null = empty) of at most limit items; limname names the limit in the hint. */
int scn_want_list(scn_dec *d, const scn_node *n, const char *path, size_t limit,
                  const char *limname);
size_t scn_list_len(const scn_node *n); /* 0 for null */
/* Every key of map must be in known (NULL-terminated); else the nearest known one is hinted. */
int scn_check_keys(scn_dec *d, const scn_node *map, const char *path, const char *const *known);
/* The value of key in map, NULL when absent or null. */
const scn_node *scn_get(const scn_node *map, const char *key);
/* A required key's value (missing or null: an error at the map, or at the key). */
int scn_need(scn_dec *d, const scn_node *map, const char *path, const char *key,
             const scn_node **out);

/* Key paths for messages (buffers of SCN_PATH_MAX bytes; a cut path is fine). */
void scn_subpath(char *buf, const char *path, const char *key); /* "path.key" */
void scn_itempath(char *buf, const char *path, size_t i);       /* "path[i]" */
/* An optional key's value with its path in p; NULL when absent or null (p untouched). */
const scn_node *scn_opt(const scn_node *map, const char *path, const char *key, char *p);
/* scn_need(), also giving the key's path in p. */
int scn_need_at(scn_dec *d, const scn_node *map, const char *path, const char *key,
                const scn_node **out, char *p);

/* ---- scalars ------------------------------------------------------------------------------ */

int scn_get_scalar(scn_dec *d, const scn_node *n, const char *path, const char *expected,
                   const char *hint);
int scn_get_duration(scn_dec *d, const scn_node *n, const char *path, mesh_time *out); /* ns */
int scn_get_rate(scn_dec *d, const scn_node *n, const char *path, uint64_t *bps);
int scn_get_size(scn_dec *d, const scn_node *n, const char *path, uint64_t *bytes);
/* "N/s", "N/m", "N/h": messages per unit of time, stored as the interval between them. */
int scn_get_msg_rate(scn_dec *d, const scn_node *n, const char *path, mesh_time *out);
/* A whole number in [min, max]. */
int scn_get_uint(scn_dec *d, const scn_node *n, const char *path, uint64_t min, uint64_t max,
                 uint64_t *out);
/* A finite real in [min, max]; with pct_ok, "5%" is 0.05. */
int scn_get_real(scn_dec *d, const scn_node *n, const char *path, int pct_ok, double min,
                 double max, double *out);
int scn_get_fraction(scn_dec *d, const scn_node *n, const char *path, double *out); /* [0, 1] */
int scn_get_bool(scn_dec *d, const scn_node *n, const char *path, int *out);
/* One of names[0..count): its index. */
int scn_get_choice(scn_dec *d, const scn_node *n, const char *path, const char *const *names,
                   size_t count, int *out);
/* A non-empty string of at most max bytes. */
int scn_get_string(scn_dec *d, const scn_node *n, const char *path, size_t max, const char **out);
/* A name: a letter, then letters, digits, '_', '-' (and '.' with dots); at most
 * SIM_SCN_MAX_NAME bytes. Names are what --set paths and references use. */
int scn_get_name_ex(scn_dec *d, const scn_node *n, const char *path, int dots, const char **out);
int scn_get_name(scn_dec *d, const scn_node *n, const char *path, const char **out);
/* "203.0.113.7" (prefix 32) or "203.0.113.0/24" (no host bits past the prefix). */
int scn_get_ipv4_prefix(scn_dec *d, const scn_node *n, const char *path, uint32_t *ip,
                        uint8_t *pfx);
/* [a, b]: a list of exactly two items (of `what`, for the hint). */
int scn_get_pair(scn_dec *d, const scn_node *n, const char *path, const char *what,
                 const scn_node **a, const scn_node **b);

/* ---- names and references ----------------------------------------------------------------- */

/* "duplicate name" error pointing at the first definition. */
int scn_duplicate(scn_dec *d, const scn_node *n, const char *what, const sim_scn_loc *first);
/* An item's optional `name:`, unique among the items before it, or "<what><idx>" when
 * absent. Items are `size` bytes apart with their name (const char *) and loc (sim_scn_loc)
 * at the given offsets; the item at idx gets the name. */
int scn_item_name(scn_dec *d, const scn_node *map, const char *path, const char *what, size_t idx,
                  void *items, size_t size, size_t name_off, size_t loc_off);
/* A group or LAN name: unique across both lists (as decoded so far), not reserved. */
int scn_check_unique_site(scn_dec *d, const scn_node *n, size_t ngroups, size_t nlans);
/* "unknown WHAT 'x' in PATH" with a near name (or the known ones) from the lists asked for. */
int scn_unknown_ref(scn_dec *d, const scn_node *n, const char *path, const char *what, int groups,
                    int lans, int censors);
int scn_get_group_ref(scn_dec *d, const scn_node *n, const char *path, size_t *out);
int scn_get_site_ref(scn_dec *d, const scn_node *n, const char *path, sim_scn_ref *out);
/* A non-empty list of group or LAN names (at most SIM_SCN_MAX_LIST). */
int scn_get_site_list(scn_dec *d, const scn_node *n, const char *path, const sim_scn_ref **out,
                      size_t *count);
/* A region name from the core's latency matrix (decoded before). */
int scn_get_region(scn_dec *d, const scn_node *n, const char *path, size_t *out);

#endif
