/* scenario_yaml.h — the scenario loader's first stage (internal to sim/scenario*.c): YAML
 * bytes into a small tree whose every node carries its position, the arena that tree and the
 * decoded struct live in, --set overrides grafted onto the tree, and the one error format of
 * every stage:  FILE:LINE:COL: message (hint: ...) (sim_scn_error, scenario.h).
 *
 * The tree is bounded (SIM_SCN_MAX_YAML_NODES nodes, SIM_SCN_MAX_DEPTH levels, SCN_MAX_MAP_KEYS
 * keys in one mapping) and refuses aliases, a second document, NUL characters and duplicate
 * keys, each with a position. Nothing here is global; a tree is used by one thread.
 */
#ifndef SIM_SCENARIO_YAML_H
#define SIM_SCENARIO_YAML_H

#include <stddef.h>
#include <stdint.h>

#include "sim/scenario.h"

enum scn_yaml_limits {
    SCN_MAX_MAP_KEYS = 64,             /* keys in one YAML mapping (no schema map has more) */
    SCN_ARENA_BLOCK = 64 * 1024,       /* bytes an arena asks malloc for at a time */
    SCN_ARENA_MAX = 256 * 1024 * 1024, /* a guard far above what the node limits allow */
    SCN_SHOW_MAX = 40,                 /* characters of a bad value quoted in a message */
    SCN_PATH_MAX = 160,                /* bytes of a key path in a message ("groups[3].nat") */
};

/* ---- arena: zeroed, max-aligned memory freed all at once ---------------------------------- */

typedef struct scn_arena_blk scn_arena_blk;
typedef struct scn_arena {
    scn_arena_blk *head;
    size_t total; /* bytes taken from malloc, at most SCN_ARENA_MAX */
} scn_arena;

/* n zeroed bytes living until scn_arena_free; NULL when out of memory or past SCN_ARENA_MAX. */
void *scn_arena_alloc(scn_arena *a, size_t n);
/* A NUL-terminated copy of n bytes of s; NULL when out of memory. */
char *scn_arena_strndup(scn_arena *a, const char *s, size_t n);
/* Free every block; the arena is then empty and reusable. */
void scn_arena_free(scn_arena *a);

/* ---- errors -------------------------------------------------------------------------------- */

/* (The message itself: sim_scn_error in scenario.h.) */
/* s as quoted in a message: printable ASCII only ('?' for the rest), cut to SCN_SHOW_MAX
 * characters with "..." after. Returns buf. */
const char *scn_show(const char *s, char buf[SCN_SHOW_MAX + 4]);
/* "did you mean 'x'?" when one of the n candidates is a likely typo of word (edit distance),
 * else prefix followed by every candidate ("(none)" when n is 0). Returns buf. */
const char *scn_suggest(char *buf, size_t cap, const char *word, const char *const *cands, size_t n,
                        const char *prefix);

/* ---- the tree ------------------------------------------------------------------------------ */

enum scn_node_kind { SCN_SCALAR, SCN_MAP, SCN_SEQ };

typedef struct scn_node scn_node;
struct scn_node {
    int kind;  /* enum scn_node_kind */
    int plain; /* scalar written without quotes (so `true` is a boolean, "true" a string) */
    sim_scn_loc loc;
    const char *s; /* scalar text, NUL-terminated */
    size_t len;
    scn_node *key;                 /* in a mapping: this value's key (a scalar) */
    scn_node *first, *last, *next; /* children of a mapping or sequence, in file order */
    size_t n;                      /* how many children */
};

typedef struct scn_tree {
    scn_arena a; /* every node and string of the tree */
    size_t nodes;
} scn_tree;

/* 1 when n is absent or a plain null scalar ("", "~", "null"). */
int scn_is_null(const scn_node *n);
/* The value of key in a mapping, NULL when absent. */
scn_node *scn_map_find(const scn_node *map, const char *key);

/* Parse len bytes of YAML into t; *root is NULL for an empty stream. Node positions name
 * origin; with positions 0 (values of --set) they carry no line and column.
 * MESH_OK; MESH_ERR_MALFORMED (syntax, alias, second document, NUL, duplicate or non-scalar
 * key); MESH_ERR_LIMIT (node count, depth, keys per mapping); MESH_ERR_NOMEM. */
int scn_yaml_parse(scn_tree *t, const char *origin, int positions, const void *data, size_t len,
                   scn_node **root, char *err, size_t errlen);

/* Graft one override onto the tree as if the file said it: value is parsed as YAML (its
 * nodes named origin) and placed at the dotted path (map keys; list elements by index or by
 * their `name:`), creating missing intermediate mappings (*root too, when the file was
 * empty). MESH_OK; MESH_ERR_MALFORMED (bad path or value); MESH_ERR_LIMIT; MESH_ERR_NOMEM. */
int scn_yaml_graft(scn_tree *t, scn_node **root, const char *path, const char *value,
                   const char *origin, char *err, size_t errlen);

#endif
