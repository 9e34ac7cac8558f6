/* Counter-based hashing and random numbers. The synthetic weight generator and the sampler draw
 * from these; the same functions are reimplemented bit-for-bit in CUDA so that weights generated on
 * the device equal the CPU generator's. */
#ifndef MIMO_HASH_H
#define MIMO_HASH_H

#include <stdint.h>

/* FNV-1a 64-bit of a NUL-terminated string (tensor names -> stream ids). */
uint64_t mimo_fnv1a64(const char *s);

/* SplitMix64 finaliser: a bijective 64-bit mix. */
static inline uint64_t mimo_mix64(uint64_t x)
{
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

/* The counter-based draw used everywhere: 64 random bits for (stream, index). */
static inline uint64_t mimo_hash2(uint64_t stream, uint64_t index)
{
    return mimo_mix64(stream ^ mimo_mix64(index));
}

/* Uniform float in [-1, 1) from the top 24 bits of a draw (exact in float32). */
static inline float mimo_bits_to_unit_symmetric(uint64_t bits)
{
    return (float)(int32_t)((uint32_t)(bits >> 40) - (1u << 23)) * (1.0f / 8388608.0f);
}

/* Uniform double in [0, 1) from the top 53 bits. */
static inline double mimo_bits_to_unit(uint64_t bits)
{
    return (double)(bits >> 11) * (1.0 / 9007199254740992.0);
}

/* A seeded sequential RNG for sampling: state advances by one counter per draw. */
typedef struct {
    uint64_t seed;
    uint64_t counter;
} mimo_rng;

static inline void mimo_rng_init(mimo_rng *r, uint64_t seed) { r->seed = mimo_mix64(seed); r->counter = 0; }
static inline uint64_t mimo_rng_next(mimo_rng *r) { return mimo_hash2(r->seed, r->counter++); }
static inline double mimo_rng_uniform(mimo_rng *r) { return mimo_bits_to_unit(mimo_rng_next(r)); }

#endif
