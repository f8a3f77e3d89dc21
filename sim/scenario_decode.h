/* scenario_decode.h — decoding the whole scenario tree against the schema (internal to
 * sim/scenario*.c): the top level, groups, events, traffic patterns and expectations here,
 * the `network:` section in scenario_network.c. The struct's public fields are filled as
 * decoding goes (an array is published before its items are decoded, its count as they
 * succeed), so an item may refer to the ones decoded before it by name. */
#ifndef SIM_SCENARIO_DECODE_H
#define SIM_SCENARIO_DECODE_H

#include "sim/scenario_values.h"

/* Decode root (NULL for an empty file) into d->s; strings and arrays go to d->a.
 * MESH_OK; MESH_ERR_MALFORMED / MESH_ERR_LIMIT with the position in d->err; MESH_ERR_NOMEM. */
int scn_decode_root(scn_dec *d, const scn_node *root);

#endif
