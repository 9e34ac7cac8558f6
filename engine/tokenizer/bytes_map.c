/* Open-addressing hash map from byte strings to ids (vocab lookup during load and merge resolution). */
#include "tokenizer_internal.h"

#include <stdlib.h>
#include <string.h>

uint64_t bytes_hash(const char *key, size_t len)
{
    uint64_t h = 0xCBF29CE484222325ull;   /* FNV-1a, then a final mix for better low bits */
    for (size_t i = 0; i < len; i++) {
        h ^= (uint8_t)key[i];
        h *= 0x100000001B3ull;
    }
    h ^= h >> 29;
    h *= 0xBF58476D1CE4E5B9ull;
    return h ^ (h >> 32);
}

static size_t pow2_at_least(size_t n)
{
    size_t c = 16;
    while (c < n)
        c <<= 1;
    return c;
}

void bytes_map_init(bytes_map *m, size_t expected)
{
    m->cap = pow2_at_least(expected * 2);
    m->count = 0;
    m->keys = mimo_xcalloc(m->cap, sizeof *m->keys);
    m->key_lens = mimo_xcalloc(m->cap, sizeof *m->key_lens);
    m->values = mimo_xcalloc(m->cap, sizeof *m->values);
}

void bytes_map_free(bytes_map *m)
{
    if (!m->keys)
        return;
    for (size_t i = 0; i < m->cap; i++)
        free(m->keys[i]);
    free(m->keys);
    free(m->key_lens);
    free(m->values);
    memset(m, 0, sizeof *m);
}

static size_t find_slot(const bytes_map *m, const char *key, size_t len)
{
    size_t mask = m->cap - 1, i = bytes_hash(key, len) & mask;
    while (m->keys[i] && !(m->key_lens[i] == len && memcmp(m->keys[i], key, len) == 0))
        i = (i + 1) & mask;
    return i;
}

static void grow(bytes_map *m)
{
    bytes_map bigger;
    bytes_map_init(&bigger, m->cap);   /* doubles the capacity */
    for (size_t i = 0; i < m->cap; i++) {
        if (!m->keys[i])
            continue;
        size_t j = find_slot(&bigger, m->keys[i], m->key_lens[i]);
        bigger.keys[j] = m->keys[i];
        bigger.key_lens[j] = m->key_lens[i];
        bigger.values[j] = m->values[i];
        bigger.count++;
    }
    free(m->keys);
    free(m->key_lens);
    free(m->values);
    *m = bigger;
}

void bytes_map_put(bytes_map *m, const char *key, size_t len, int32_t value)
{
    if ((m->count + 1) * 2 > m->cap)
        grow(m);
    size_t i = find_slot(m, key, len);
    if (!m->keys[i]) {
        m->keys[i] = mimo_xmalloc(len + 1);
        memcpy(m->keys[i], key, len);
        m->keys[i][len] = '\0';
        m->key_lens[i] = (uint32_t)len;
        m->count++;
    }
    m->values[i] = value;
}

int32_t bytes_map_get(const bytes_map *m, const char *key, size_t len)
{
    if (!m->keys)
        return -1;
    size_t i = find_slot(m, key, len);
    return m->keys[i] ? m->values[i] : -1;
}
