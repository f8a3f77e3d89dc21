/* fuzz_peers.c — peer-record decoding on arbitrary bytes: the same input as a PeerList
 * (mesh_peer_list_decode) and as one PeerRecord (protobuf unpack + mesh_peer_record_from_pb).
 * Never a crash or a leak; only documented codes; outputs untouched on failure; whatever is
 * accepted verifies on its own and encodes back to bytes that decode to the same records.
 * The seed corpus (tests/fuzz/corpus/fuzz_peers/) holds real signed records and lists.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/peer.h"

enum { CAP = 16 }; /* smaller than MESH_PEER_LIST_MAX: the beyond-cap path runs too */

static void check_list(const uint8_t *data, size_t size)
{
    mesh_peer_record recs[CAP], again[CAP];
    size_t n = 777, dropped = 777;
    int rc = mesh_peer_list_decode(data, size, recs, CAP, &n, &dropped);
    if (rc != MESH_OK) {
        if (n != 777 || dropped != 777)
            __builtin_trap();
        if (rc != MESH_ERR_MALFORMED && rc != MESH_ERR_TOO_BIG && rc != MESH_ERR_LIMIT &&
            rc != MESH_ERR_NOMEM)
            __builtin_trap();
        return;
    }
    if (n > CAP || n + dropped > MESH_PEER_LIST_MAX)
        __builtin_trap();
    for (size_t i = 0; i < n; i++)
        if (mesh_peer_record_verify(&recs[i]) != MESH_OK)
            __builtin_trap();
    uint8_t *buf = NULL;
    size_t len = 0, n2 = 0, dropped2 = 0;
    if (mesh_peer_list_encode(recs, n, &buf, &len) != MESH_OK)
        __builtin_trap();
    if (mesh_peer_list_decode(buf, len, again, CAP, &n2, &dropped2) != MESH_OK || n2 != n ||
        dropped2 != 0)
        __builtin_trap();
    for (size_t i = 0; i < n; i++)
        if (!mesh_peer_record_equal(&recs[i], &again[i]))
            __builtin_trap();
    free(buf);
}

static void check_record(const uint8_t *data, size_t size)
{
    if (size > MESH_PEER_LIST_MAX_BYTES)
        return; /* a record alone is never larger than a list may be */
    Meshara__Wire__PeerRecord *pb = meshara__wire__peer_record__unpack(NULL, size, data);
    if (!pb)
        return;
    mesh_peer_record r, back;
    memset(&r, 0x33, sizeof r);
    int rc = mesh_peer_record_from_pb(pb, &r);
    meshara__wire__peer_record__free_unpacked(pb, NULL);
    if (rc != MESH_OK) {
        if (r.seq != 0x3333333333333333ULL)
            __builtin_trap();
        if (rc != MESH_ERR_MALFORMED && rc != MESH_ERR_BAD_SIGNATURE && rc != MESH_ERR_NOMEM &&
            rc != MESH_ERR_BAD_HOST_NAME)
            __builtin_trap();
        return;
    }
    if (mesh_peer_record_verify(&r) != MESH_OK)
        __builtin_trap();
    /* what was accepted encodes to a record that is accepted again, the same */
    Meshara__Wire__PeerRecord out;
    mesh_peer_pb_scratch sc;
    mesh_peer_record_to_pb(&r, &out, &sc);
    size_t len = meshara__wire__peer_record__get_packed_size(&out);
    uint8_t *buf = malloc(len ? len : 1);
    if (!buf || meshara__wire__peer_record__pack(&out, buf) != len)
        __builtin_trap();
    Meshara__Wire__PeerRecord *pb2 = meshara__wire__peer_record__unpack(NULL, len, buf);
    if (!pb2 || mesh_peer_record_from_pb(pb2, &back) != MESH_OK ||
        !mesh_peer_record_equal(&r, &back))
        __builtin_trap();
    meshara__wire__peer_record__free_unpacked(pb2, NULL);
    free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    check_list(data, size);
    check_record(data, size);
    return 0;
}
