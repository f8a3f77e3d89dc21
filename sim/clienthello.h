/* clienthello.h — what a DPI box reads from a TLS ClientHello: SNI, ALPN list, versions,
 * and a JA3 fingerprint (the censor model's view of a connection's first bytes).
 *
 * The parser works on the client's first bytes of a TCP stream as a middlebox reassembles
 * them. It never allocates; the result holds copies bounded by the limits below, and names
 * longer than a limit are cut (flagged) rather than rejected, as a real DPI box would. */
#ifndef SIM_CLIENTHELLO_H
#define SIM_CLIENTHELLO_H

#include <stddef.h>
#include <stdint.h>

enum sim_ch_limits {
    SIM_CH_MAX_SNI = 255,     /* bytes of server name kept */
    SIM_CH_MAX_ALPN = 8,      /* ALPN protocols kept */
    SIM_CH_MAX_ALPN_LEN = 32, /* bytes of each ALPN protocol kept */
    SIM_CH_MAX_JA3 = 1024,    /* JA3 string length kept (cut beyond, flagged) */
    SIM_CH_MAX_HELLO = 16384, /* a ClientHello longer than this is not parsed */
};

typedef struct sim_client_hello {
    uint16_t legacy_version;      /* client_version field (0x0303 for TLS 1.2/1.3) */
    int offers_tls13;             /* supported_versions lists 0x0304 */
    char sni[SIM_CH_MAX_SNI + 1]; /* "" when absent */
    size_t alpn_count;
    char alpn[SIM_CH_MAX_ALPN][SIM_CH_MAX_ALPN_LEN + 1];
    char ja3[SIM_CH_MAX_JA3 + 1]; /* "771,4865-4866,...,29-23,0" */
    char ja3_md5[33];             /* lowercase hex MD5 of ja3 */
    int truncated_fields;         /* 1 if any name or list above was cut */
    size_t hello_len;             /* bytes of the record(s) holding the hello */
} sim_client_hello;

/* Parse a ClientHello from the start of a client's byte stream.
 * Returns MESH_OK; MESH_ERR_TRUNCATED when more bytes are needed (call again with more);
 * MESH_ERR_MALFORMED when the bytes are not a TLS ClientHello (not TLS, or broken lengths);
 * MESH_ERR_TOO_BIG when the hello exceeds SIM_CH_MAX_HELLO. *out is fully written on MESH_OK
 * and unspecified otherwise. */
int sim_client_hello_parse(const uint8_t *data, size_t len, sim_client_hello *out);

#endif
