/* rng.h — the simulator's one source of randomness: xoshiro256** seeded through splitmix64.
 *
 * Every random choice in a simulation (link loss and jitter, TCP initial sequence numbers,
 * a host's env random bytes) comes from a sim_rng. Streams are derived from the simulation
 * seed plus a stable id (host id, link id...), so adding a host or a link does not perturb
 * the numbers any other stream draws: a run is reproducible from (seed, scenario).
 *
 * Not cryptographically strong, and must never be: simulated TLS keys are reproducible on
 * purpose. A sim_rng is a plain value (32 bytes): copy it, embed it, no free. */
#ifndef SIM_RNG_H
#define SIM_RNG_H

#include <stddef.h>
#include <stdint.h>

typedef struct sim_rng {
    uint64_t s[4];
} sim_rng;

/* Seed from one 64-bit value (any value, 0 included, gives a valid non-zero state). */
void sim_rng_seed(sim_rng *r, uint64_t seed);
/* A stream for (seed, stream_id): independent of the order streams are created in. Use a
 * distinct id space per kind of user (see SIM_RNG_STREAM_* below). */
void sim_rng_derive(sim_rng *r, uint64_t seed, uint64_t stream_id);

uint64_t sim_rng_next(sim_rng *r);
/* Uniform in [0, bound) without modulo bias; bound 0 gives 0. */
uint64_t sim_rng_below(sim_rng *r, uint64_t bound);
/* Uniform double in [0, 1) with 53 random bits. */
double sim_rng_unit(sim_rng *r);
/* 1 with probability p (p <= 0 never, p >= 1 always; draws one number either way so the
 * stream's position does not depend on p). */
int sim_rng_chance(sim_rng *r, double p);
void sim_rng_fill(sim_rng *r, uint8_t *buf, size_t len);

/* High bits of stream ids, so ids of different kinds of objects never collide. */
#define SIM_RNG_STREAM_HOST (1ULL << 60) /* + host id: the host's env random bytes */
#define SIM_RNG_STREAM_LINK (2ULL << 60) /* + link id: loss and jitter of one link */
#define SIM_RNG_STREAM_TCP (3ULL << 60)  /* + host id: initial sequence numbers */
#define SIM_RNG_STREAM_CORE (4ULL << 60) /* the core's loss */
#define SIM_RNG_STREAM_MDNS (5ULL << 60) /* + host id: mDNS responder delays */
#define SIM_RNG_STREAM_USER (8ULL << 60) /* + anything: scenario, middleboxes, tests */

#endif
