/* rng.c — xoshiro256** (Blackman & Vigna) with splitmix64 seeding, written from the
 * published algorithm description. */
#include "sim/rng.h"

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static inline uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

void sim_rng_seed(sim_rng *r, uint64_t seed)
{
    uint64_t x = seed;
    for (int i = 0; i < 4; i++)
        r->s[i] = splitmix64(&x);
    /* splitmix64 never yields four zero words in a row, but keep the invariant explicit:
     * the all-zero state is the one xoshiro cannot leave. */
    if ((r->s[0] | r->s[1] | r->s[2] | r->s[3]) == 0)
        r->s[0] = 1;
}

void sim_rng_derive(sim_rng *r, uint64_t seed, uint64_t stream_id)
{
    /* Mix the id through splitmix first so nearby ids give unrelated seeds. */
    uint64_t x = stream_id;
    uint64_t h = splitmix64(&x);
    sim_rng_seed(r, seed ^ h ^ 0x6a09e667f3bcc909ULL);
}

uint64_t sim_rng_next(sim_rng *r)
{
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

uint64_t sim_rng_below(sim_rng *r, uint64_t bound)
{
    if (bound == 0)
        return 0;
    /* Reject the top partial block so every residue is equally likely. */
    uint64_t limit = UINT64_MAX - (UINT64_MAX % bound);
    uint64_t v;
    do {
        v = sim_rng_next(r);
    } while (v >= limit);
    return v % bound;
}

double sim_rng_unit(sim_rng *r)
{
    return (double)(sim_rng_next(r) >> 11) * 0x1.0p-53;
}

int sim_rng_chance(sim_rng *r, double p)
{
    double u = sim_rng_unit(r);
    return u < p;
}

void sim_rng_fill(sim_rng *r, uint8_t *buf, size_t len)
{
    while (len >= 8) {
        uint64_t v = sim_rng_next(r);
        for (int i = 0; i < 8; i++)
            buf[i] = (uint8_t)(v >> (8 * i));
        buf += 8;
        len -= 8;
    }
    if (len) {
        uint64_t v = sim_rng_next(r);
        for (size_t i = 0; i < len; i++)
            buf[i] = (uint8_t)(v >> (8 * i));
    }
}
