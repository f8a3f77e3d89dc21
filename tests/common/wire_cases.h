/* wire_cases.h — hand-made Envelope{AppData} encodings for differential tests against
 * protobuf-c: forms another encoder (or a hostile one) may send that are not the canonical
 * form our encoder writes — field order, repeats, overlong varints, unknown fields, another
 * version, lengths past the end, a 10-byte varint, the data field twice. Used by
 * tests/unit/test_appdata.c (the view alone) and tests/unit/test_session_rx.c (through a
 * session). Test code. */
#ifndef MESH_TEST_WIRE_CASES_H
#define MESH_TEST_WIRE_CASES_H

#include <stdint.h>

#include "mesh_test.h"

enum {
    MESH_WIRE_CASE_PAYLOAD_MIN = 16, /* bytes of payload pattern a case may copy */
    MESH_WIRE_PATTERN_LEN = 300000,  /* bytes of mesh_wire_pattern() */
};

/* out = the canonical bytes (mesh_wire_encode) of Envelope{AppData{id, the first plen bytes
 * of mesh_wire_pattern(), ack}}; plen <= MESH_WIRE_PATTERN_LEN. Aborts if encoding fails. */
void mesh_wire_canonical(mesh_test_buf *out, uint64_t id, size_t plen, int ack);

/* MESH_WIRE_PATTERN_LEN payload bytes of a fixed pattern (static storage, made once). */
const uint8_t *mesh_wire_pattern(void);

/* Case c (0, 1, ...) into out (its bytes replaced), payload bytes taken from payload.
 * Returns -1 past the last case; else 1 if mesh_appdata_view may take it (it reads it as
 * protobuf-c does: overlong varints, a different field order it declines anyway...), 0 if the
 * view must leave it to protobuf-c (protobuf-c refuses it or reads it otherwise than the
 * first-come order: repeats, unknown fields, ack 2, version 2, a length past the end, a
 * 10-byte varint, the data field twice). *what (may be NULL) names the case. */
int mesh_wire_case(int c, const uint8_t *payload, mesh_test_buf *out, const char **what);

/* Protobuf pieces: v as a varint written overlong by extra bytes; one byte. */
void mesh_wire_put_varint(mesh_test_buf *b, uint64_t v, int extra);
void mesh_wire_put_byte(mesh_test_buf *b, uint8_t x);

#endif
