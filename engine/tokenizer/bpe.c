/* Byte-level BPE on raw bytes: a word starts as its byte tokens and the adjacent pair with the
 * lowest merge rank is merged until none is left, leftmost first among equal ranks (the order HF
 * tokenizers' priority queue gives). A min-heap keeps long words (whitespace runs) O(n log n);
 * a per-word cache skips the work for words seen before. */
#include "tokenizer_internal.h"

#include <stdlib.h>
#include <string.h>

/* ---- merge table: (left id, right id) -> (rank, merged id) ---- */

static uint64_t pair_key(int32_t left, int32_t right)
{
    return (((uint64_t)(uint32_t)left << 32) | (uint32_t)right) + 1;   /* never 0 */
}

static size_t pair_slot(uint64_t key, size_t mask)
{
    uint64_t h = key * 0x9E3779B97F4A7C15ull;
    return (size_t)(h >> 17) & mask;
}

void merge_table_init(merge_table *t, size_t expected)
{
    t->cap = 16;
    while (t->cap < expected * 2)
        t->cap <<= 1;
    t->count = 0;
    t->keys = mimo_xcalloc(t->cap, sizeof *t->keys);
    t->ranks = mimo_xcalloc(t->cap, sizeof *t->ranks);
    t->merged = mimo_xcalloc(t->cap, sizeof *t->merged);
}

void merge_table_free(merge_table *t)
{
    free(t->keys);
    free(t->ranks);
    free(t->merged);
    memset(t, 0, sizeof *t);
}

static void merge_table_grow(merge_table *t)
{
    merge_table bigger;
    merge_table_init(&bigger, t->cap);
    for (size_t i = 0; i < t->cap; i++) {
        if (!t->keys[i])
            continue;
        size_t j = pair_slot(t->keys[i], bigger.cap - 1);
        while (bigger.keys[j])
            j = (j + 1) & (bigger.cap - 1);
        bigger.keys[j] = t->keys[i];
        bigger.ranks[j] = t->ranks[i];
        bigger.merged[j] = t->merged[i];
        bigger.count++;
    }
    merge_table_free(t);
    *t = bigger;
}

void merge_table_put(merge_table *t, int32_t left, int32_t right, int32_t rank, int32_t merged)
{
    if ((t->count + 1) * 2 > t->cap)
        merge_table_grow(t);
    uint64_t key = pair_key(left, right);
    size_t mask = t->cap - 1, i = pair_slot(key, mask);
    while (t->keys[i] && t->keys[i] != key)
        i = (i + 1) & mask;
    if (t->keys[i])
        return;   /* a repeated merge keeps its first (lowest) rank, as HF does */
    t->keys[i] = key;
    t->ranks[i] = rank;
    t->merged[i] = merged;
    t->count++;
}

void merge_table_set(merge_table *t, int32_t left, int32_t right, int32_t rank, int32_t merged)
{
    if ((t->count + 1) * 2 > t->cap)
        merge_table_grow(t);
    uint64_t key = pair_key(left, right);
    size_t mask = t->cap - 1, i = pair_slot(key, mask);
    while (t->keys[i] && t->keys[i] != key)
        i = (i + 1) & mask;
    if (!t->keys[i])
        t->count++;
    t->keys[i] = key;
    t->ranks[i] = rank;
    t->merged[i] = merged;
}

int32_t merge_table_get(const merge_table *t, int32_t left, int32_t right, int32_t *merged)
{
    uint64_t key = pair_key(left, right);
    size_t mask = t->cap - 1, i = pair_slot(key, mask);
    while (t->keys[i]) {
        if (t->keys[i] == key) {
            *merged = t->merged[i];
            return t->ranks[i];
        }
        i = (i + 1) & mask;
    }
    return -1;
}

/* ---- id lists ---- */

void id_list_push(id_list *l, int32_t id)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 64;
        l->ids = mimo_xrealloc(l->ids, l->cap * sizeof *l->ids);
    }
    l->ids[l->n++] = id;
}

/* ---- the merge loop ---- */

typedef struct {
    int32_t id;
    int32_t prev, next;   /* -1 at the ends */
    int32_t len;          /* bytes covered; 0 once merged into its left neighbour */
} symbol;

typedef struct {
    int32_t rank;
    int32_t pos;          /* index of the left symbol */
    int32_t merged;
} merge_candidate;

static bool candidate_before(const merge_candidate *a, const merge_candidate *b)
{
    return a->rank != b->rank ? a->rank < b->rank : a->pos < b->pos;
}

typedef struct {
    merge_candidate *items;
    size_t n, cap;
} candidate_heap;

static void heap_push(candidate_heap *h, merge_candidate c)
{
    if (h->n == h->cap) {
        h->cap = h->cap ? h->cap * 2 : 64;
        h->items = mimo_xrealloc(h->items, h->cap * sizeof *h->items);
    }
    size_t i = h->n++;
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!candidate_before(&c, &h->items[parent]))
            break;
        h->items[i] = h->items[parent];
        i = parent;
    }
    h->items[i] = c;
}

static merge_candidate heap_pop(candidate_heap *h)
{
    merge_candidate top = h->items[0], last = h->items[--h->n];
    size_t i = 0;
    for (;;) {
        size_t child = 2 * i + 1;
        if (child >= h->n)
            break;
        if (child + 1 < h->n && candidate_before(&h->items[child + 1], &h->items[child]))
            child++;
        if (!candidate_before(&h->items[child], &last))
            break;
        h->items[i] = h->items[child];
        i = child;
    }
    if (h->n)
        h->items[i] = last;
    return top;
}

static void push_pair(const merge_table *merges, candidate_heap *h, const symbol *s, int32_t pos)
{
    int32_t next = s[pos].next;
    if (next < 0)
        return;
    int32_t merged;
    int32_t rank = merge_table_get(merges, s[pos].id, s[next].id, &merged);
    if (rank >= 0)
        heap_push(h, (merge_candidate){rank, pos, merged});
}

/* Short words (nearly all of them): the same merges by a direct scan on the stack, without the
 * heap's allocations. Leftmost lowest rank each step, which is the order the heap gives. */
#define SHORT_WORD_MAX 48

void bpe_merge_short_word(const bpe_model *m, const char *word, size_t len, id_list *out)
{
    int32_t ids[SHORT_WORD_MAX];
    int n = (int)len;
    for (int i = 0; i < n; i++)
        ids[i] = m->byte_ids[(uint8_t)word[i]];
    while (n > 1) {
        int32_t best_rank = INT32_MAX, best_merged = -1;
        int best_at = -1;
        for (int i = 0; i + 1 < n; i++) {
            int32_t merged;
            int32_t rank = merge_table_get(&m->merges, ids[i], ids[i + 1], &merged);
            if (rank >= 0 && rank < best_rank) {
                best_rank = rank;
                best_merged = merged;
                best_at = i;
            }
        }
        if (best_at < 0)
            break;
        ids[best_at] = best_merged;
        memmove(ids + best_at + 1, ids + best_at + 2, (size_t)(n - best_at - 2) * sizeof *ids);
        n--;
    }
    for (int i = 0; i < n; i++)
        id_list_push(out, ids[i]);
}

static void bpe_merge_word(const bpe_model *m, const char *word, size_t len, id_list *out)
{
    if (len <= SHORT_WORD_MAX)
        bpe_merge_short_word(m, word, len, out);
    else
        bpe_merge_long_word(m, word, len, out);
}

void bpe_merge_long_word(const bpe_model *m, const char *word, size_t len, id_list *out)
{
    symbol *s = mimo_xmalloc(len * sizeof *s);
    for (size_t i = 0; i < len; i++)
        s[i] = (symbol){m->byte_ids[(uint8_t)word[i]], (int32_t)i - 1, i + 1 < len ? (int32_t)i + 1 : -1, 1};

    candidate_heap heap = {0};
    for (size_t i = 0; i + 1 < len; i++)
        push_pair(&m->merges, &heap, s, (int32_t)i);

    while (heap.n) {
        merge_candidate c = heap_pop(&heap);
        symbol *left = &s[c.pos];
        if (left->len == 0 || left->next < 0)
            continue;   /* stale: merged away, or no right neighbour any more */
        int32_t merged;
        if (merge_table_get(&m->merges, left->id, s[left->next].id, &merged) < 0 || merged != c.merged)
            continue;   /* stale: the pair changed since this candidate was queued */
        symbol *right = &s[left->next];
        left->id = merged;
        left->len += right->len;
        right->len = 0;
        left->next = right->next;
        if (left->next >= 0)
            s[left->next].prev = c.pos;
        if (left->prev >= 0)
            push_pair(&m->merges, &heap, s, left->prev);
        push_pair(&m->merges, &heap, s, c.pos);
    }
    for (int32_t i = 0; i >= 0; i = s[i].next)
        id_list_push(out, s[i].id);
    free(heap.items);
    free(s);
}

/* ---- per-word cache (cleared when full: simple, and words repeat within a text) ---- */

#define WORD_CACHE_CAP 32768        /* slots; cleared at half full */
#define WORD_CACHE_MAX_WORD 256     /* longer words are not cached */

static void word_cache_clear(word_cache *c)
{
    for (size_t i = 0; i < c->cap; i++) {
        free(c->entries[i].key);
        free(c->entries[i].ids);
    }
    memset(c->entries, 0, c->cap * sizeof *c->entries);
    c->count = 0;
}

void bpe_model_free(bpe_model *m)
{
    bytes_map_free(&m->vocab);
    merge_table_free(&m->merges);
    if (m->cache.entries) {
        word_cache_clear(&m->cache);
        free(m->cache.entries);
    }
    memset(m, 0, sizeof *m);
}

void bpe_encode_word(bpe_model *m, const char *word, size_t len, id_list *out)
{
    if (len == 0)
        return;
    if (len == 1) {
        id_list_push(out, m->byte_ids[(uint8_t)word[0]]);
        return;
    }
    if (len > WORD_CACHE_MAX_WORD) {
        bpe_merge_word(m, word, len, out);
        return;
    }
    word_cache *c = &m->cache;
    if (!c->entries) {
        c->cap = WORD_CACHE_CAP;
        c->entries = mimo_xcalloc(c->cap, sizeof *c->entries);
    }
    size_t mask = c->cap - 1, i = bytes_hash(word, len) & mask;
    while (c->entries[i].key) {
        word_cache_entry *e = &c->entries[i];
        if (e->key_len == len && memcmp(e->key, word, len) == 0) {
            for (int k = 0; k < e->n_ids; k++)
                id_list_push(out, e->ids[k]);
            return;
        }
        i = (i + 1) & mask;
    }
    size_t first = out->n;
    bpe_merge_word(m, word, len, out);
    if (c->count * 2 >= c->cap) {
        word_cache_clear(c);
        i = bytes_hash(word, len) & mask;
    }
    word_cache_entry *e = &c->entries[i];
    e->key = mimo_xmalloc(len);
    memcpy(e->key, word, len);
    e->key_len = (uint32_t)len;
    e->n_ids = (int)(out->n - first);
    e->ids = mimo_xmalloc((size_t)e->n_ids * sizeof *e->ids);
    memcpy(e->ids, out->ids + first, (size_t)e->n_ids * sizeof *e->ids);
    c->count++;
}
