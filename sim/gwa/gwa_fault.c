/*
 * gwa_fault.c - deterministic shares and the throttle; see gwa_fault.h.
 */
#include "gwa/gwa_fault.h"

void gwa_prng_seed(struct gwa_prng *p, uint64_t seed, uint64_t stream)
{
    p->state = seed ^ (stream * 0xD1B54A32D192ED03ull);
}

uint64_t gwa_prng_next(struct gwa_prng *p)
{
    uint64_t z = (p->state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

int gwa_prng_share(struct gwa_prng *p, int pct)
{
    if (pct <= 0)
        return 0;
    if (pct >= 100)
        return 1;
    /* The top 53 bits as a fraction in [0, 1): no modulo bias. */
    double u = (double)(gwa_prng_next(p) >> 11) / 9007199254740992.0;
    return u * 100.0 < (double)pct;
}

int gwa_throttle_admit(struct gwa_throttle *t, int64_t now_mono_ms)
{
    int64_t second = now_mono_ms / 1000;
    if (t->limit <= 0)
        return 1;
    if (second != t->second) {
        t->second = second;
        t->used = 0;
    }
    if (t->used >= t->limit)
        return 0;
    t->used++;
    return 1;
}
