/* scenario_network.h — decoding the scenario's `network:` section (internal to
 * sim/scenario*.c): links, the core's latency model, NATs, LANs and censors with their rules.
 * Each decoder checks the keys it knows, the types and ranges of their values, and the names
 * they refer to, with the errors of scenario_values.h; cross-field rules are
 * sim_scenario_check's (scenario_check.c). */
#ifndef SIM_SCENARIO_NETWORK_H
#define SIM_SCENARIO_NETWORK_H

#include <stddef.h>

#include "sim/scenario.h"
#include "sim/scenario_values.h"

/* The keys of a link, for maps that hold one among other keys (a link change event). */
#define SCN_LINK_KEYS "latency", "jitter", "bandwidth", "loss", "queue"

/* The link fields present in map onto l (other fields untouched, `set` bits added). */
int scn_decode_link_fields(scn_dec *d, const scn_node *map, const char *path, sim_scn_link *l);
/* A mapping holding only link keys. */
int scn_decode_link(scn_dec *d, const scn_node *n, const char *path, sim_scn_link *l);
/* Overlay the fields set in `over` onto `base`. */
void scn_link_overlay(sim_scn_link *base, const sim_scn_link *over);
/* network.core: latency (constant, uniform range or region matrix), jitter, loss. */
int scn_decode_core(scn_dec *d, const scn_node *n, const char *path, sim_scn_core *c);
/* A NAT: a preset name or a mapping (defaults per RFC 4787 / RFC 5382). */
int scn_decode_nat(scn_dec *d, const scn_node *n, const char *path, sim_scn_nat *nat);
/* One item of network.lans (its name's uniqueness is the caller's). */
int scn_decode_lan(scn_dec *d, const scn_node *n, const char *path, sim_scn_lan *l);
/* Item idx of network.censors (groups and LANs decoded before: it names them). */
int scn_decode_censor(scn_dec *d, const scn_node *n, const char *path, size_t idx,
                      sim_scn_censor *c);

#endif
