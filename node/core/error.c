/* error.c — names and descriptions of the MESH_ERR_* codes (see meshara/error.h). */
#include "meshara/error.h"

#include <stddef.h>

typedef struct {
    int code;
    const char *name;
    const char *text;
} err_row;

static const err_row ERR_ROWS[] = {
    {MESH_OK, "MESH_OK", "success"},
    {MESH_ERR_NOMEM, "MESH_ERR_NOMEM", "out of memory"},
    {MESH_ERR_INVAL, "MESH_ERR_INVAL", "invalid argument"},
    {MESH_ERR_LIMIT, "MESH_ERR_LIMIT", "configured limit reached"},
    {MESH_ERR_AGAIN, "MESH_ERR_AGAIN", "would block; retry when writable"},
    {MESH_ERR_UNSUPPORTED, "MESH_ERR_UNSUPPORTED", "not supported"},
    {MESH_ERR_NOT_FOUND, "MESH_ERR_NOT_FOUND", "not found"},
    {MESH_ERR_EXISTS, "MESH_ERR_EXISTS", "already exists"},
    {MESH_ERR_STATE, "MESH_ERR_STATE", "not valid in the current state"},
    {MESH_ERR_INTERNAL, "MESH_ERR_INTERNAL", "internal error"},
    {MESH_ERR_TOO_BIG, "MESH_ERR_TOO_BIG", "length exceeds the maximum"},
    {MESH_ERR_TRUNCATED, "MESH_ERR_TRUNCATED", "input truncated"},
    {MESH_ERR_MALFORMED, "MESH_ERR_MALFORMED", "malformed input"},
    {MESH_ERR_VERSION, "MESH_ERR_VERSION", "unsupported protocol version"},
    {MESH_ERR_BAD_HOST_NAME, "MESH_ERR_BAD_HOST_NAME", "not a valid DNS host name"},
    {MESH_ERR_IO, "MESH_ERR_IO", "input/output error"},
    {MESH_ERR_PERM, "MESH_ERR_PERM", "permission denied"},
    {MESH_ERR_CORRUPT, "MESH_ERR_CORRUPT", "file content is corrupt"},
    {MESH_ERR_TIMEOUT, "MESH_ERR_TIMEOUT", "timed out"},
    {MESH_ERR_REFUSED, "MESH_ERR_REFUSED", "connection refused"},
    {MESH_ERR_RESET, "MESH_ERR_RESET", "connection reset"},
    {MESH_ERR_CLOSED, "MESH_ERR_CLOSED", "closed"},
    {MESH_ERR_UNREACHABLE, "MESH_ERR_UNREACHABLE", "unreachable"},
    {MESH_ERR_ADDR, "MESH_ERR_ADDR", "address cannot be used"},
    {MESH_ERR_TLS, "MESH_ERR_TLS", "TLS error"},
    {MESH_ERR_ALPN, "MESH_ERR_ALPN", "no common application protocol (ALPN)"},
    {MESH_ERR_BAD_SIGNATURE, "MESH_ERR_BAD_SIGNATURE", "bad signature"},
    {MESH_ERR_KEY_MISMATCH, "MESH_ERR_KEY_MISMATCH", "peer key does not match the pinned key"},
    {MESH_ERR_PROTOCOL, "MESH_ERR_PROTOCOL", "protocol violation by peer"},
    {MESH_ERR_CRYPTO, "MESH_ERR_CRYPTO", "cryptographic operation failed"},
    {MESH_ERR_AUTH, "MESH_ERR_AUTH", "credentials refused"},
};

static const err_row *find_row(int code)
{
    for (size_t i = 0; i < sizeof ERR_ROWS / sizeof ERR_ROWS[0]; i++)
        if (ERR_ROWS[i].code == code)
            return &ERR_ROWS[i];
    return NULL;
}

const char *mesh_strerror(int code)
{
    const err_row *r = find_row(code);
    return r ? r->text : "unknown error";
}

const char *mesh_errname(int code)
{
    const err_row *r = find_row(code);
    return r ? r->name : "MESH_ERR_UNKNOWN";
}
