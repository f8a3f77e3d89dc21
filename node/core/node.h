/* node.h — internals of the Meshara node (meshara/meshara.h is its public API) that tests,
 * benchmarks and the simulator may reach into.
 *
 * The node glues the modules together: the TLS context and server (sessions in), the pool
 * (sessions out, one per peer), the DHT (driven through a transport made of node queries),
 * the bootstrap manager (joins), mDNS, the port mapping (portmap.h), and the table of operations in
 * flight (sends waiting for an AppAck, queries waiting for a Response), each with its own env
 * timer. Its files and what they share are described in node_impl.h (not for use outside
 * node/core/node*.c).
 */
#ifndef MESH_CORE_NODE_H
#define MESH_CORE_NODE_H

#include "core/bootstrap.h"
#include "core/dht.h"
#include "core/pool.h"
#include "meshara/meshara.h"

enum mesh_node_internal_limits {
    MESH_NODE_OP_BUCKETS = 4096,       /* hash buckets of operations by id */
    MESH_NODE_STORE_RECORD_MAX = 4096, /* bytes of one stored record; longer is garbage */
    MESH_NODE_RECONNECTS = 2, /* an op's new attempts after orderly closes of its session */
};

/* Borrowed; NULL before mesh_node_start(). */
mesh_dht *mesh_node_dht(const mesh_node *n);
/* Our own signed record (valid after mesh_node_start()). */
const mesh_peer_record *mesh_node_record(const mesh_node *n);

#endif
