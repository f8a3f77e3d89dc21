/* fuzz_util.c — helpers shared by the fuzz targets (see fuzz_util.h). */
#include "fuzz_util.h"

#include <stdio.h>
#include <stdlib.h>

#include "meshara/error.h"

enum { FUZZ_MAX_PULLS = 10000 };

void mesh_fuzz_seeds(void (*write)(const char *dir))
{
    const char *dir = getenv("MESH_FUZZ_SEEDS");
    if (!dir)
        return;
    write(dir);
    exit(0);
}

void mesh_fuzz_seed(const char *dir, const char *name, const void *head, size_t hlen, const void *p,
                    size_t n)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f || (hlen && fwrite(head, 1, hlen, f) != hlen) || (n && fwrite(p, 1, n, f) != n) ||
        fclose(f) != 0) {
        fprintf(stderr, "fuzz seeds: cannot write %s\n", path);
        exit(1);
    }
}

int mesh_fuzz_h2_message(void *ud, const uint8_t *data, size_t len)
{
    (void)data;
    mesh_fuzz_h2 *f = ud;
    if (len > f->max)
        __builtin_trap();
    f->messages++;
    return MESH_OK;
}

void mesh_fuzz_h2_drain(mesh_h2 *h)
{
    const uint8_t *d;
    long n;
    int pulls = 0;
    while ((n = mesh_h2_pull(h, &d)) != 0) {
        if (++pulls > FUZZ_MAX_PULLS || n > MESH_H2_PULL_MAX || (n > 0 && !d))
            __builtin_trap();
    }
}

void mesh_fuzz_h2_feed(mesh_h2 *h, mesh_fuzz_h2 *f, const uint8_t *p, size_t n)
{
    int rc = mesh_h2_recv(h, p, n);
    if (f->err && rc != f->err)
        __builtin_trap(); /* failure is final */
    if (rc != MESH_OK)
        f->err = rc;
    mesh_fuzz_h2_drain(h);
}
