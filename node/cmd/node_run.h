/* node_run.h — meshara-node's run and send commands: one mesh_node on the real driver.
 *
 * The node does the sessions, pool, DHT, bootstrap, mDNS and peer store; this part turns the
 * options into a mesh_node_cfg, logs what the node reports, and supervises the --peer list:
 * the node pins manual peers and reconnects them at pool maintenance, but it tells the
 * application nothing about a connection that fails, so each manual peer not connected is
 * probed here (connect + PING) with a jittered exponential backoff, and a failure is logged
 * with its reason. send hands its one message (or ping) to the node once it can, and ends
 * with the acknowledgement, a failure or --timeout.
 */
#ifndef MESHARA_NODE_RUN_H
#define MESHARA_NODE_RUN_H

#include "node_opts.h"
#include "real/driver.h"
#include "real/keyfile.h"

/* Run the node o describes (CMD_RUN or CMD_SEND) on driver r with identity id and, in the web
 * profile, the TLS certificate cert (all borrowed: the caller made them and frees them
 * after; cert is empty in the seed profile). run: until SIGINT/SIGTERM; send: until the
 * acknowledgement, a failure or the timeout. Before returning, the node's sessions are closed
 * and given up to 3 s to flush. Returns the exit code (enum node_exit). */
int node_run(const node_opts *o, mesh_real *r, const mesh_identity *id, const mesh_certfile *cert,
             const char *turn_pass);

#endif
