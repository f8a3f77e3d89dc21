/*
 * meshara/error.h — the one error enum of Meshara.
 *
 * Every function that can fail returns MESH_OK (0) or a negative MESH_ERR_* code from the
 * range [-599, -500]. Each function's comment lists the codes it returns. mesh_strerror()
 * turns any code into a short, stable English phrase (never NULL).
 *
 * Add new codes at the end of their group; never renumber an existing code (they are
 * recorded in simulation results).
 */
#ifndef MESHARA_ERROR_H
#define MESHARA_ERROR_H

#ifdef __cplusplus
extern "C" {
#endif

typedef enum mesh_err {
    MESH_OK = 0,

    /* generic */
    MESH_ERR_NOMEM = -500,       /* allocation failed; the object is unchanged */
    MESH_ERR_INVAL = -501,       /* bad argument from the caller */
    MESH_ERR_LIMIT = -502,       /* a configured bound (queue, table, count) is full */
    MESH_ERR_AGAIN = -503,       /* would block / backpressure: retry after a writable event */
    MESH_ERR_UNSUPPORTED = -504, /* not available in this driver or build */
    MESH_ERR_NOT_FOUND = -505,
    MESH_ERR_EXISTS = -506,
    MESH_ERR_STATE = -507,    /* call not valid in the object's current state */
    MESH_ERR_INTERNAL = -508, /* a bug: an invariant did not hold */

    /* input and parsing */
    MESH_ERR_TOO_BIG = -520,       /* a length exceeds its configured maximum */
    MESH_ERR_TRUNCATED = -521,     /* input ended before a complete item */
    MESH_ERR_MALFORMED = -522,     /* input does not follow the format */
    MESH_ERR_VERSION = -523,       /* peer speaks a protocol version we do not */
    MESH_ERR_BAD_HOST_NAME = -524, /* a host name that is not DNS syntax (env.h) */

    /* files */
    MESH_ERR_IO = -540,      /* read/write error (errno is kept in the log line) */
    MESH_ERR_PERM = -541,    /* wrong permissions (a key file readable by others; a port below 1024
                                without the capability to bind it) */
    MESH_ERR_CORRUPT = -542, /* a file exists but its content is not valid */

    /* network */
    MESH_ERR_TIMEOUT = -560,     /* a wait ran out (connect, handshake, query...) */
    MESH_ERR_REFUSED = -561,     /* connection refused (RST in answer to SYN) */
    MESH_ERR_RESET = -562,       /* connection reset by peer or middlebox */
    MESH_ERR_CLOSED = -563,      /* the stream or session is closed */
    MESH_ERR_UNREACHABLE = -564, /* no route / address not reachable */
    MESH_ERR_ADDR = -565,        /* address in use or cannot be bound */

    /* security and session */
    MESH_ERR_TLS = -580,  /* the TLS library reported an error */
    MESH_ERR_ALPN = -581, /* no common application protocol */
    MESH_ERR_BAD_SIGNATURE = -582,
    MESH_ERR_KEY_MISMATCH = -583, /* proven key is not the pinned one */
    MESH_ERR_PROTOCOL = -584,     /* peer broke the protocol (unexpected message...) */
    MESH_ERR_CRYPTO = -585,       /* a crypto primitive failed */
    MESH_ERR_AUTH = -586,         /* our credentials were refused (e.g. a TURN server's 401) */
} mesh_err;

/* A short description of code (any int). Never NULL; static storage. */
const char *mesh_strerror(int code);

/* The enumerator's name, e.g. "MESH_ERR_TIMEOUT" (for logs and results); static storage. */
const char *mesh_errname(int code);

#ifdef __cplusplus
}
#endif
#endif
