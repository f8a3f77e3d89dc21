/* scenario.c — YAML scenario loader (see scenario.h): loading, --set overrides, lookups.
 *
 * Three stages, each in its own file. (1) scenario_yaml.c: libyaml's event parser builds a
 * small tree (scalars, mappings, sequences) whose every node carries its position; the tree is
 * bounded and refuses aliases. (2) --set overrides are grafted onto that tree as if the file
 * said them, so they are validated by the very same code. (3) scenario_decode.c and
 * scenario_network.c decode the tree against the schema into the public struct (typed values:
 * scenario_values.c), then sim_scenario_check() (scenario_check.c) applies the cross-field
 * rules.
 *
 * Memory: the tree lives in a scratch arena freed after decoding; the struct lives in its own
 * arena, swapped in only when decoding and checking both succeeded, so a failed
 * sim_scenario_set() leaves the previous struct untouched. The file's bytes are kept so a set
 * can rebuild from scratch (parsing is cheap next to a run).
 */
#include "sim/scenario.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "meshara/error.h"
#include "sim/path.h"
#include "sim/scenario_decode.h"
#include "sim/scenario_yaml.h"

/* ---- overrides ------------------------------------------------------------------------------ */

typedef struct override {
    char *path, *value;
    char *origin; /* "--set path=value": the loc origin of its nodes */
} override;

struct sim_scenario_priv {
    unsigned char *src; /* the file's bytes */
    size_t len;
    char *origin;
    scn_arena a; /* the struct's strings and arrays */
    override sets[SIM_SCN_MAX_SETS];
    size_t nsets;
    char *json;
};

/* Parse the file, graft the overrides (with `pend` replacing the same path, or appended),
 * decode and check into a fresh arena; on success swap the result into s. */
static int rebuild(sim_scenario *s, const override *pend, char *err, size_t errlen)
{
    sim_scenario_priv *pv = s->priv;
    scn_tree t = {0};
    sim_scenario fresh = {0};
    fresh.file = pv->origin;
    fresh.priv = pv;
    scn_arena a = {0};
    scn_node *root = NULL;
    int rc = scn_yaml_parse(&t, pv->origin, 1, pv->src, pv->len, &root, err, errlen);
    int pend_done = 0;
    for (size_t i = 0; rc == MESH_OK && i < pv->nsets; i++) {
        const override *o = &pv->sets[i];
        if (pend && !strcmp(pend->path, o->path)) {
            o = pend;
            pend_done = 1;
        }
        rc = scn_yaml_graft(&t, &root, o->path, o->value, o->origin, err, errlen);
    }
    if (rc == MESH_OK && pend && !pend_done)
        rc = scn_yaml_graft(&t, &root, pend->path, pend->value, pend->origin, err, errlen);
    if (rc == MESH_OK) {
        scn_dec d = {.a = &a, .s = &fresh, .err = err, .errlen = errlen};
        rc = scn_decode_root(&d, root);
    }
    if (rc == MESH_OK)
        rc = sim_scenario_check(&fresh, err, errlen);
    if (rc != MESH_OK && pend && err && errlen &&
        strncmp(err, pend->origin, strlen(pend->origin))) {
        /* an error the override caused elsewhere (a check, a file value now invalid): say
         * which override */
        char *was = strdup(err);
        if (was) {
            snprintf(err, errlen, "%s: %s", pend->origin, was);
            free(was);
        }
    }
    scn_arena_free(&t.a);
    if (rc != MESH_OK) {
        scn_arena_free(&a);
        return rc;
    }
    memcpy(fresh.sha256, s->sha256, sizeof fresh.sha256);
    scn_arena_free(&pv->a);
    pv->a = a;
    *s = fresh;
    return MESH_OK;
}

/* Bytes the JSON of one override takes at most (every byte escaped as \u00XX). */
static size_t json_cap_of(const override *o)
{
    return 6 * (strlen(o->path) + strlen(o->value)) + 6;
}

/* The overrides as {"path":"value",...}, with JSON string escapes, into j (cap: 3 + json_cap_of
 * each, at least). */
static void params_json(const sim_scenario_priv *pv, char *j, size_t cap)
{
    size_t o = 0;
    j[o++] = '{';
    for (size_t i = 0; i < pv->nsets; i++) {
        const char *parts[2] = {pv->sets[i].path, pv->sets[i].value};
        if (i)
            j[o++] = ',';
        for (int k = 0; k < 2; k++) {
            j[o++] = '"';
            for (const unsigned char *c = (const unsigned char *)parts[k]; *c; c++) {
                if (*c == '"' || *c == '\\') {
                    j[o++] = '\\';
                    j[o++] = (char)*c;
                } else if (*c < 0x20) {
                    o += (size_t)snprintf(j + o, cap - o, "\\u%04x", *c);
                } else {
                    j[o++] = (char)*c;
                }
            }
            j[o++] = '"';
            if (k == 0)
                j[o++] = ':';
        }
    }
    j[o++] = '}';
    j[o] = '\0';
}

int sim_scenario_set(sim_scenario *s, const char *path, const char *value, char *err, size_t errlen)
{
    if (!s || !path || !*path || !value)
        return MESH_ERR_INVAL;
    sim_scenario_priv *pv = s->priv;
    size_t slot = pv->nsets;
    for (size_t i = 0; i < pv->nsets; i++)
        if (!strcmp(pv->sets[i].path, path))
            slot = i;
    override o = {0};
    size_t ol = strlen(path) + strlen(value) + 8;
    o.path = strdup(path);
    o.value = strdup(value);
    o.origin = malloc(ol);
    if (!o.path || !o.value || !o.origin) {
        free(o.path);
        free(o.value);
        free(o.origin);
        return sim_scn_error(err, errlen, MESH_ERR_NOMEM, NULL, NULL, "out of memory");
    }
    snprintf(o.origin, ol, "--set %s=%s", path, value);
    /* The JSON is allocated before anything changes: an override in force is always in the
     * parameters the results record (none lost to out of memory after the rebuild). */
    size_t cap = 3 + json_cap_of(&o);
    for (size_t i = 0; i < pv->nsets; i++)
        cap += json_cap_of(&pv->sets[i]);
    char *json = malloc(cap);
    if (!json) {
        free(o.path);
        free(o.value);
        free(o.origin);
        return sim_scn_error(err, errlen, MESH_ERR_NOMEM, NULL, NULL, "out of memory");
    }
    sim_scn_loc l = {o.origin, 0, 0};
    int rc = MESH_OK;
    if (slot == SIM_SCN_MAX_SETS)
        rc = sim_scn_error(err, errlen, MESH_ERR_LIMIT, &l, "SIM_SCN_MAX_SETS",
                           "too many overrides (limit %d)", SIM_SCN_MAX_SETS);
    if (rc == MESH_OK)
        rc = rebuild(s, &o, err, errlen);
    if (rc == MESH_OK) {
        if (slot < pv->nsets) {
            free(pv->sets[slot].path);
            free(pv->sets[slot].value);
            free(pv->sets[slot].origin);
        } else {
            pv->nsets++;
        }
        pv->sets[slot] = o;
        params_json(pv, json, cap);
        free(pv->json);
        pv->json = json;
        return MESH_OK;
    }
    free(json);
    free(o.path);
    free(o.value);
    free(o.origin);
    return rc;
}

int sim_scenario_set_arg(sim_scenario *s, const char *arg, char *err, size_t errlen)
{
    if (!s || !arg)
        return MESH_ERR_INVAL;
    const char *eq = strchr(arg, '=');
    sim_scn_loc l = {"--set", 0, 0};
    if (!eq || eq == arg)
        return sim_scn_error(err, errlen, MESH_ERR_MALFORMED, &l,
                             "write --set path=value, e.g. --set "
                             "network.core.latency=80ms",
                             "'%s' is not path=value", arg);
    char path[SCN_PATH_MAX * 2];
    size_t pl = (size_t)(eq - arg);
    if (pl >= sizeof path)
        return sim_scn_error(err, errlen, MESH_ERR_MALFORMED, &l, "shorter paths",
                             "path too long in '%.40s...'", arg);
    memcpy(path, arg, pl);
    path[pl] = '\0';
    return sim_scenario_set(s, path, eq + 1, err, errlen);
}

const char *sim_scenario_params_json(const sim_scenario *s)
{
    return s && s->priv && s->priv->json ? s->priv->json : "{}";
}

/* ---- load and free
 * ------------------------------------------------------------------------------- */

int sim_scenario_load_mem(sim_scenario **out, const char *origin, const void *data, size_t len,
                          char *err, size_t errlen)
{
    if (!out || !origin || (!data && len))
        return MESH_ERR_INVAL;
    sim_scn_loc l = {origin, 0, 0};
    if (len > SIM_SCN_MAX_FILE)
        return sim_scn_error(err, errlen, MESH_ERR_TOO_BIG, &l, "SIM_SCN_MAX_FILE",
                             "file is %zu bytes, larger than the limit of %d", len,
                             SIM_SCN_MAX_FILE);
    sim_scenario *s = calloc(1, sizeof *s);
    sim_scenario_priv *pv = calloc(1, sizeof *pv);
    if (!s || !pv)
        goto fail_nomem;
    s->priv = pv;
    pv->src = malloc(len ? len : 1);
    pv->origin = strdup(origin);
    if (!pv->src || !pv->origin)
        goto fail_nomem;
    if (len)
        memcpy(pv->src, data, len);
    pv->len = len;
    unsigned char md[32];
    unsigned mdlen = 0;
    if (!EVP_Digest(data ? data : "", len, md, &mdlen, EVP_sha256(), NULL) || mdlen != 32)
        goto fail_nomem;
    for (unsigned i = 0; i < 32; i++)
        snprintf(s->sha256 + 2 * i, 3, "%02x", md[i]);
    s->file = pv->origin;
    int rc = rebuild(s, NULL, err, errlen);
    if (rc != MESH_OK) {
        sim_scenario_free(s);
        return rc;
    }
    *out = s;
    return MESH_OK;
fail_nomem:
    sim_scenario_free(s);
    if (!s)
        free(pv);
    return sim_scn_error(err, errlen, MESH_ERR_NOMEM, &l, NULL, "out of memory");
}

/* Open path for reading without ever blocking: O_NONBLOCK makes opening a FIFO return at
 * once, and fstat on the descriptor (not on the path, which could change in between) refuses
 * anything but a regular file before a single read. */
static int open_regular(const char *path, int *fd_out, char *err, size_t errlen)
{
    sim_scn_loc l = {path, 0, 0};
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        return sim_scn_error(err, errlen, MESH_ERR_IO, &l, "check the path", "cannot open: %s",
                             strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return sim_scn_error(err, errlen, MESH_ERR_IO, &l, NULL, "cannot stat: %s", strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return sim_scn_error(err, errlen, MESH_ERR_IO, &l,
                             S_ISDIR(st.st_mode) ? "name a .yaml file, e.g. scenarios/default.yaml"
                                                 : "a scenario is read from a regular file; "
                                                   "save the stream to a file first",
                             "is %s, not a scenario file", sim_path_kind(st.st_mode));
    }
    if (st.st_size > SIM_SCN_MAX_FILE) {
        close(fd);
        return sim_scn_error(err, errlen, MESH_ERR_TOO_BIG, &l, "SIM_SCN_MAX_FILE",
                             "file is %lld bytes, larger than the limit of %d",
                             (long long)st.st_size, SIM_SCN_MAX_FILE);
    }
    *fd_out = fd;
    return MESH_OK;
}

/* Up to cap bytes from fd; -1 with errno on a read error. */
static ssize_t read_all(int fd, char *buf, size_t cap)
{
    size_t n = 0;
    while (n < cap) {
        ssize_t r = read(fd, buf + n, cap - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -1;
        if (r == 0)
            break;
        n += (size_t)r;
    }
    return (ssize_t)n;
}

int sim_scenario_load(sim_scenario **out, const char *path, char *err, size_t errlen)
{
    if (!out || !path)
        return MESH_ERR_INVAL;
    sim_scn_loc l = {path, 0, 0};
    int fd = -1;
    int rc = open_regular(path, &fd, err, errlen);
    if (rc != MESH_OK)
        return rc;
    char *buf = malloc(SIM_SCN_MAX_FILE + 1);
    if (!buf) {
        close(fd);
        return sim_scn_error(err, errlen, MESH_ERR_NOMEM, &l, NULL, "out of memory");
    }
    ssize_t n = read_all(fd, buf, SIM_SCN_MAX_FILE + 1);
    int rerr = n < 0 ? errno : 0;
    close(fd);
    if (n < 0)
        rc = sim_scn_error(err, errlen, MESH_ERR_IO, &l, "check the file", "read error: %s",
                           strerror(rerr));
    else if (n > SIM_SCN_MAX_FILE) /* it grew after fstat */
        rc = sim_scn_error(err, errlen, MESH_ERR_TOO_BIG, &l, "SIM_SCN_MAX_FILE",
                           "file is larger than the limit of %d bytes", SIM_SCN_MAX_FILE);
    else
        rc = sim_scenario_load_mem(out, path, buf, (size_t)n, err, errlen);
    free(buf);
    return rc;
}

void sim_scenario_free(sim_scenario *s)
{
    if (!s)
        return;
    sim_scenario_priv *pv = s->priv;
    if (pv) {
        scn_arena_free(&pv->a);
        for (size_t i = 0; i < pv->nsets; i++) {
            free(pv->sets[i].path);
            free(pv->sets[i].value);
            free(pv->sets[i].origin);
        }
        free(pv->json);
        free(pv->src);
        free(pv->origin);
        free(pv);
    }
    free(s);
}

/* ---- lookups and names -------------------------------------------------------------------------
 */

size_t sim_scenario_group(const sim_scenario *s, const char *name)
{
    for (size_t i = 0; s && name && i < s->group_count; i++)
        if (!strcmp(s->groups[i].name, name))
            return i;
    return (size_t)-1;
}

size_t sim_scenario_lan(const sim_scenario *s, const char *name)
{
    for (size_t i = 0; s && name && i < s->lan_count; i++)
        if (!strcmp(s->lans[i].name, name))
            return i;
    return (size_t)-1;
}

size_t sim_scenario_censor(const sim_scenario *s, const char *name)
{
    for (size_t i = 0; s && name && i < s->censor_count; i++)
        if (!strcmp(s->censors[i].name, name))
            return i;
    return (size_t)-1;
}

size_t sim_scenario_node_group(const sim_scenario *s, uint32_t node)
{
    if (!s || node >= s->node_count)
        return (size_t)-1;
    size_t lo = 0, hi = s->group_count;
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (s->groups[mid].first_node <= node)
            lo = mid;
        else
            hi = mid;
    }
    return lo;
}

const char *sim_scenario_ref_name(const sim_scenario *s, sim_scn_ref ref)
{
    if (ref.kind == SIM_SCN_REF_GROUP && ref.index < s->group_count)
        return s->groups[ref.index].name;
    if (ref.kind == SIM_SCN_REF_LAN && ref.index < s->lan_count)
        return s->lans[ref.index].name;
    return "?";
}

int sim_scn_expect_holds(const sim_scn_expect *e, double value)
{
    switch (e->op) {
    case SIM_SCN_OP_LE:
        return value <= e->value;
    case SIM_SCN_OP_GE:
        return value >= e->value;
    case SIM_SCN_OP_EQ:
        return value == e->value;
    default:
        return 0;
    }
}
