/* stun.h — the STUN message format (RFC 8489), with the attributes of RFC 5780 (NAT behaviour
 * discovery) and the ones a TURN client needs (RFC 8656, RFC 6062). The one decoder of STUN in
 * Meshara: the Binding client (stun_client.h), the responder (stun_server.h) and a TURN client
 * all read messages through mesh_stun_decode().
 *
 * Why our own codec: the core may depend only on OpenSSL, protobuf-c and nghttp2 (ci/seam), so
 * libnice's STUN library and libre's codec are out. This one is small, works in caller
 * buffers, allocates nothing, and is checked byte for byte against RFC 5769's test vectors
 * (tests/unit/test_stun.c) and fuzzed (tests/fuzz/fuzz_stun.c).
 *
 * Decoding is zero-copy: a mesh_stun_msg points into the caller's buffer (keep it alive and
 * unchanged while the message is used) and lists the attributes by offset. Every length is
 * checked before it is used: the header (two zero bits, the magic cookie, a length that is a
 * multiple of 4 and equals the bytes given), each attribute header and value (padded to 4
 * inside the message), the attribute count (MESH_STUN_MAX_ATTRS). Integrity attributes must
 * come last, in the order RFC 8489 §14 allows: MESSAGE-INTEGRITY, MESSAGE-INTEGRITY-SHA256,
 * FINGERPRINT (any of them may be absent); FINGERPRINT is the very last attribute (anything
 * after it is MALFORMED); other attributes after an integrity attribute are kept in the list
 * (so a message re-encodes) but never found by mesh_stun_find(), as §14.5 says to ignore them.
 * Attribute values are read with the typed getters, which check each value's own format.
 *
 * Encoding writes into a caller buffer through a mesh_stun_enc. Errors are sticky: the first
 * failure (no room, a bad value, an attribute after FINGERPRINT) is kept and returned by
 * mesh_stun_enc_finish(), so a builder can add everything and check once. MESSAGE-INTEGRITY,
 * MESSAGE-INTEGRITY-SHA256 and FINGERPRINT are computed over what was written before them.
 *
 * Credentials (RFC 8489 §9): short-term key = the password; long-term key =
 * MD5(username ":" realm ":" password) (mesh_stun_long_term_key). Strings are taken as given:
 * the OpaqueString / SASLprep preparation of a non-ASCII password is the caller's (RFC 5769's
 * long-term vector gives "TheMatrIX", the prepared form).
 *
 * Nothing here keeps state between calls; no env is needed.
 */
#ifndef MESH_CORE_STUN_H
#define MESH_CORE_STUN_H

#include <stddef.h>
#include <stdint.h>

#include "meshara/env.h"

enum mesh_stun_limits {
    MESH_STUN_HDR_LEN = 20,
    MESH_STUN_TID_LEN = 12,
    MESH_STUN_ATTR_HDR_LEN = 4,
    MESH_STUN_MAX_MSG = MESH_STUN_HDR_LEN + 0xfffc, /* the 16-bit length, a multiple of 4 */
    MESH_STUN_MAX_ATTRS = 48,        /* attributes kept per message; more: MESH_ERR_LIMIT */
    MESH_STUN_MAX_USERNAME = 513,    /* RFC 8489 §14.3 */
    MESH_STUN_MAX_TEXT = 763,        /* REALM, NONCE, SOFTWARE, a reason phrase (§14.9...) */
    MESH_STUN_MAX_UNKNOWN = 32,      /* types listed in one UNKNOWN-ATTRIBUTES */
    MESH_STUN_MI_LEN = 20,           /* HMAC-SHA1 */
    MESH_STUN_MI256_LEN = 32,        /* HMAC-SHA256 (we send it whole) */
    MESH_STUN_MI256_MIN = 16,        /* shortest truncation accepted (§14.6) */
    MESH_STUN_LONG_TERM_KEY_LEN = 16 /* MD5 */
};

#define MESH_STUN_MAGIC 0x2112A442u
#define MESH_STUN_FINGERPRINT_XOR 0x5354554eu

/* Methods (12 bits). */
enum mesh_stun_method {
    MESH_STUN_BINDING = 0x001,
    MESH_STUN_ALLOCATE = 0x003, /* RFC 8656 */
    MESH_STUN_REFRESH = 0x004,
    MESH_STUN_SEND = 0x006,
    MESH_STUN_DATA = 0x007,
    MESH_STUN_CREATE_PERMISSION = 0x008,
    MESH_STUN_CHANNEL_BIND = 0x009,
    MESH_STUN_CONNECT = 0x00a, /* RFC 6062 */
    MESH_STUN_CONNECTION_BIND = 0x00b,
    MESH_STUN_CONNECTION_ATTEMPT = 0x00c,
};

/* Classes (2 bits, spread over the type). */
enum mesh_stun_class {
    MESH_STUN_REQUEST = 0,
    MESH_STUN_INDICATION = 1,
    MESH_STUN_SUCCESS = 2,
    MESH_STUN_ERROR = 3,
};

/* Attribute types. Below 0x8000: comprehension-required (an agent that does not know one
 * must refuse the message: 420); from 0x8000: comprehension-optional. */
enum mesh_stun_attr_type {
    MESH_STUN_A_MAPPED_ADDRESS = 0x0001,
    MESH_STUN_A_CHANGE_REQUEST = 0x0003, /* RFC 5780 */
    MESH_STUN_A_USERNAME = 0x0006,
    MESH_STUN_A_MESSAGE_INTEGRITY = 0x0008,
    MESH_STUN_A_ERROR_CODE = 0x0009,
    MESH_STUN_A_UNKNOWN_ATTRIBUTES = 0x000a,
    MESH_STUN_A_CHANNEL_NUMBER = 0x000c, /* RFC 8656 */
    MESH_STUN_A_LIFETIME = 0x000d,
    MESH_STUN_A_XOR_PEER_ADDRESS = 0x0012,
    MESH_STUN_A_DATA = 0x0013,
    MESH_STUN_A_REALM = 0x0014,
    MESH_STUN_A_NONCE = 0x0015,
    MESH_STUN_A_XOR_RELAYED_ADDRESS = 0x0016,
    MESH_STUN_A_REQUESTED_TRANSPORT = 0x0019,
    MESH_STUN_A_MESSAGE_INTEGRITY_SHA256 = 0x001c,
    MESH_STUN_A_XOR_MAPPED_ADDRESS = 0x0020,
    MESH_STUN_A_PADDING = 0x0026,       /* RFC 5780 */
    MESH_STUN_A_RESPONSE_PORT = 0x0027, /* RFC 5780 */
    MESH_STUN_A_CONNECTION_ID = 0x002a, /* RFC 6062 */
    MESH_STUN_A_SOFTWARE = 0x8022,
    MESH_STUN_A_ALTERNATE_SERVER = 0x8023,
    MESH_STUN_A_FINGERPRINT = 0x8028,
    MESH_STUN_A_RESPONSE_ORIGIN = 0x802b, /* RFC 5780 */
    MESH_STUN_A_OTHER_ADDRESS = 0x802c,   /* RFC 5780 */
};

/* CHANGE-REQUEST flags (RFC 5780 §7.2). */
enum mesh_stun_change {
    MESH_STUN_CHANGE_PORT = 0x2,
    MESH_STUN_CHANGE_IP = 0x4,
};

/* ERROR-CODE values this code sends or acts on (RFC 8489 §14.8, RFC 8656 §18). */
enum mesh_stun_error_code {
    MESH_STUN_ERR_TRY_ALTERNATE = 300,
    MESH_STUN_ERR_BAD_REQUEST = 400,
    MESH_STUN_ERR_UNAUTHORIZED = 401,
    MESH_STUN_ERR_FORBIDDEN = 403,
    MESH_STUN_ERR_UNKNOWN_ATTRIBUTE = 420,
    MESH_STUN_ERR_ALLOCATION_MISMATCH = 437,
    MESH_STUN_ERR_STALE_NONCE = 438,
    MESH_STUN_ERR_SERVER_ERROR = 500,
};

/* REQUESTED-TRANSPORT protocol numbers. */
enum mesh_stun_transport { MESH_STUN_TRANSPORT_TCP = 6, MESH_STUN_TRANSPORT_UDP = 17 };

/* Which integrity attribute mesh_stun_check_integrity() verifies. */
enum mesh_stun_mi_kind {
    MESH_STUN_MI_ANY = 0, /* SHA256 when the message has it, else SHA1 */
    MESH_STUN_MI_SHA1 = 1,
    MESH_STUN_MI_SHA256 = 2,
};

/* Message type = method and class interleaved (RFC 8489 §5: M11..M7 C1 M6..M4 C0 M3..M0). */
static inline uint16_t mesh_stun_type(unsigned method, unsigned cls)
{
    return (uint16_t)(((method & 0xf80u) << 2) | ((method & 0x070u) << 1) | (method & 0x00fu) |
                      ((cls & 2u) << 7) | ((cls & 1u) << 4));
}
static inline unsigned mesh_stun_type_method(uint16_t type)
{
    return ((type >> 2) & 0xf80u) | ((type >> 1) & 0x070u) | (type & 0x00fu);
}
static inline unsigned mesh_stun_type_class(uint16_t type)
{
    return ((type >> 7) & 2u) | ((type >> 4) & 1u);
}

/* ---- decoding ------------------------------------------------------------------------------ */

/* One attribute: its value is buf[off .. off + len) of the message (padding excluded). */
typedef struct mesh_stun_attr {
    uint16_t type;
    uint16_t len;
    uint32_t off;
} mesh_stun_attr;

/* A decoded message: borrowed view of the caller's buffer (buf). */
typedef struct mesh_stun_msg {
    const uint8_t *buf;
    size_t len; /* the whole message: MESH_STUN_HDR_LEN + the header's length */
    uint16_t type;
    uint16_t method; /* enum mesh_stun_method (or another method number) */
    uint8_t cls;     /* enum mesh_stun_class */
    uint8_t tid[MESH_STUN_TID_LEN];
    size_t nattrs; /* every attribute, in message order */
    mesh_stun_attr attrs[MESH_STUN_MAX_ATTRS];
    size_t nvisible;   /* attrs[0 .. nvisible): before the first integrity attribute */
    int mi, mi256, fp; /* index into attrs of MESSAGE-INTEGRITY(-SHA256) / FINGERPRINT, or -1 */
} mesh_stun_msg;

/* 1 if buf starts like a STUN message (two zero bits, the magic cookie): how a socket shared
 * with other protocols tells STUN apart (RFC 8489 §6.3). */
int mesh_stun_looks_like(const uint8_t *buf, size_t len);

/* On a stream: how long the message that starts at buf is. MESH_OK with *total (may exceed
 * len: wait for more); MESH_ERR_TRUNCATED (fewer than MESH_STUN_HDR_LEN bytes, all of them
 * possible so far: wait); MESH_ERR_MALFORMED (not a STUN header, known from the first byte
 * or the cookie bytes present: the stream is out of step, close it). */
int mesh_stun_frame_len(const uint8_t *buf, size_t len, size_t *total);

/* Decode exactly len bytes (a datagram, or one frame cut by mesh_stun_frame_len). MESH_OK;
 * MESH_ERR_INVAL (NULL); MESH_ERR_TRUNCATED (len shorter than the header says, or an
 * attribute runs past the end); MESH_ERR_MALFORMED (not STUN, length not a multiple of 4 or
 * bytes beyond it, integrity attributes out of order or repeated, anything after
 * FINGERPRINT, an integrity attribute of the wrong length); MESH_ERR_LIMIT (more than
 * MESH_STUN_MAX_ATTRS attributes). *m is garbage on failure. */
int mesh_stun_decode(mesh_stun_msg *m, const uint8_t *buf, size_t len);

/* The first attribute of that type before the integrity attributes (§14.5), or NULL. The
 * integrity attributes themselves are found by type too. */
const mesh_stun_attr *mesh_stun_find(const mesh_stun_msg *m, uint16_t type);
/* The attribute's value (points into the message). */
static inline const uint8_t *mesh_stun_value(const mesh_stun_msg *m, const mesh_stun_attr *a)
{
    return m->buf + a->off;
}

/* Typed getters: MESH_OK, or MESH_ERR_MALFORMED when the value does not follow the
 * attribute's format (then the output is untouched). */
/* An address attribute (MAPPED, XOR-MAPPED, XOR-PEER, XOR-RELAYED, RESPONSE-ORIGIN,
 * OTHER-ADDRESS, ALTERNATE-SERVER; another type: MESH_ERR_INVAL); the XOR types are un-XORed
 * with the cookie and the transaction id. Family IPv4 (8 bytes) or IPv6 (20). The encoder's
 * mesh_stun_enc_addr() takes the same types. */
int mesh_stun_get_addr(const mesh_stun_msg *m, const mesh_stun_attr *a, mesh_addr *out);
/* A 4-byte value (LIFETIME, CONNECTION-ID, PRIORITY...). */
int mesh_stun_get_u32(const mesh_stun_msg *m, const mesh_stun_attr *a, uint32_t *out);
/* CHANGE-REQUEST: flags = MESH_STUN_CHANGE_* bits (other bits must be zero). */
int mesh_stun_get_change(const mesh_stun_msg *m, const mesh_stun_attr *a, unsigned *flags);
/* ERROR-CODE: code 300..699; reason points into the message (*reason_len <= MAX_TEXT). */
int mesh_stun_get_error(const mesh_stun_msg *m, const mesh_stun_attr *a, int *code,
                        const char **reason, size_t *reason_len);
/* USERNAME (<= MAX_USERNAME), REALM, NONCE, SOFTWARE (<= MAX_TEXT): bytes as sent (no
 * NUL); the encoding (UTF-8) is not checked. Other types: MESH_ERR_INVAL. */
int mesh_stun_get_text(const mesh_stun_msg *m, const mesh_stun_attr *a, const char **text,
                       size_t *len);
/* UNKNOWN-ATTRIBUTES: up to max types (at most MESH_STUN_MAX_UNKNOWN are read). */
int mesh_stun_get_unknown(const mesh_stun_msg *m, const mesh_stun_attr *a, uint16_t *types,
                          size_t max, size_t *n);
/* REQUESTED-TRANSPORT: the protocol number (RFFU bytes ignored, as §14.7 says). */
int mesh_stun_get_transport(const mesh_stun_msg *m, const mesh_stun_attr *a, uint8_t *proto);

/* Comprehension-required attribute types in m that this codec does not know (the list a
 * server answers 420 with); at most max are stored. Returns how many there are. */
size_t mesh_stun_unknown_required(const mesh_stun_msg *m, uint16_t *types, size_t max);

/* FINGERPRINT: MESH_OK (present and right), MESH_ERR_NOT_FOUND (absent), MESH_ERR_MALFORMED
 * (wrong: the bytes are not this STUN message, or were damaged). */
int mesh_stun_check_fingerprint(const mesh_stun_msg *m);
/* MESSAGE-INTEGRITY(-SHA256) with key (the short-term password, or the long-term key):
 * MESH_OK; MESH_ERR_NOT_FOUND (the attribute asked for is absent); MESH_ERR_BAD_SIGNATURE
 * (wrong key, or the message was altered); MESH_ERR_CRYPTO (OpenSSL failed);
 * MESH_ERR_INVAL. */
int mesh_stun_check_integrity(const mesh_stun_msg *m, const uint8_t *key, size_t keylen, int kind);

/* Long-term key: MD5(username ":" realm ":" password). MESH_OK, MESH_ERR_INVAL (a string
 * over its limit), MESH_ERR_CRYPTO. */
int mesh_stun_long_term_key(uint8_t out[MESH_STUN_LONG_TERM_KEY_LEN], const char *username,
                            size_t ulen, const char *realm, size_t rlen, const char *password,
                            size_t plen);

/* CRC-32 (ISO 3309, as FINGERPRINT uses before the XOR). */
uint32_t mesh_stun_crc32(const uint8_t *data, size_t len);

/* ---- encoding ------------------------------------------------------------------------------ */

typedef struct mesh_stun_enc {
    uint8_t *buf;
    size_t cap, len;
    int err;     /* first failure, sticky */
    int stage;   /* 0 = attributes, 1 = after MI, 2 = after MI-SHA256, 3 = after FINGERPRINT */
    uint8_t pad; /* padding byte (0 as RFC 8489 says; RFC 5769's vectors pad with 0x20) */
} mesh_stun_enc;

/* Start a message of type (mesh_stun_type()) with transaction id tid in buf (cap bytes).
 * Never fails here: a buffer under MESH_STUN_HDR_LEN makes finish() return MESH_ERR_TOO_BIG.*/
void mesh_stun_enc_init(mesh_stun_enc *e, uint8_t *buf, size_t cap, uint16_t type,
                        const uint8_t tid[MESH_STUN_TID_LEN]);
/* One attribute with a raw value (len <= 0xffff); padded. The integrity types are refused
 * here (use the functions below) unless raw is set: a fuzzer re-encoding a decoded message
 * passes their received values through. */
void mesh_stun_enc_attr(mesh_stun_enc *e, uint16_t type, const void *value, size_t len);
void mesh_stun_enc_attr_raw(mesh_stun_enc *e, uint16_t type, const void *value, size_t len);
/* An address attribute (XOR applied for the XOR types, by type). */
void mesh_stun_enc_addr(mesh_stun_enc *e, uint16_t type, const mesh_addr *a);
void mesh_stun_enc_u32(mesh_stun_enc *e, uint16_t type, uint32_t v);
void mesh_stun_enc_change(mesh_stun_enc *e, unsigned flags);
/* ERROR-CODE with code 300..699 and a reason phrase (NUL-terminated, <= MAX_TEXT). */
void mesh_stun_enc_error(mesh_stun_enc *e, int code, const char *reason);
void mesh_stun_enc_text(mesh_stun_enc *e, uint16_t type, const char *text, size_t len);
void mesh_stun_enc_unknown(mesh_stun_enc *e, const uint16_t *types, size_t n);
void mesh_stun_enc_transport(mesh_stun_enc *e, uint8_t proto);
/* MESSAGE-INTEGRITY (HMAC-SHA1) / -SHA256 (32 bytes) over everything written so far. */
void mesh_stun_enc_integrity(mesh_stun_enc *e, const uint8_t *key, size_t keylen);
void mesh_stun_enc_integrity_sha256(mesh_stun_enc *e, const uint8_t *key, size_t keylen);
/* FINGERPRINT (CRC-32 of everything so far, XOR 0x5354554e); must be the last attribute. */
void mesh_stun_enc_fingerprint(mesh_stun_enc *e);
/* The message length. MESH_OK; MESH_ERR_TOO_BIG (the buffer was too small, or the message
 * would exceed MESH_STUN_MAX_MSG); MESH_ERR_INVAL (a bad value: address family, error code,
 * text over its limit); MESH_ERR_STATE (an attribute after FINGERPRINT, or a non-integrity
 * attribute after MESSAGE-INTEGRITY); MESH_ERR_CRYPTO. */
int mesh_stun_enc_finish(mesh_stun_enc *e, size_t *len);

#endif
