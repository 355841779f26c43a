/*
 * gwa_fault.h - fault injection of the GWA simulator: deterministic shares
 * (dropped wake-ups, 503 answers) and a per-second throttle (429 answers).
 *
 * The generator is splitmix64, seeded from --seed and a stream number, so
 * that each kind of fault has its own sequence and a run can be repeated.
 * Everything here is plain data owned by the caller; no locking.
 */
#ifndef CLSM_GWA_FAULT_H
#define CLSM_GWA_FAULT_H

#include <stdint.h>

struct gwa_prng {
    uint64_t state;
};

/* Seed 'p' from 'seed' and 'stream' (any values; equal pairs give equal
 * sequences). */
void gwa_prng_seed(struct gwa_prng *p, uint64_t seed, uint64_t stream);

/* The next 64 random bits. */
uint64_t gwa_prng_next(struct gwa_prng *p);

/* Nonzero with probability 'pct' percent (0 .. 100); 0 and 100 draw
 * nothing, so they never disturb the sequence. */
int gwa_prng_share(struct gwa_prng *p, int pct);

/* At most 'limit' events per wall-clock second of a monotonic clock; 0
 * means no limit. */
struct gwa_throttle {
    int limit;
    int64_t second; /* the current window */
    int used;
};

/* Count one event at 'now_mono_ms'. Returns nonzero when it is admitted,
 * 0 when the window's limit is reached (the event is not counted). */
int gwa_throttle_admit(struct gwa_throttle *t, int64_t now_mono_ms);

#endif
