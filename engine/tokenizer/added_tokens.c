/* Added tokens (special and not): found in the text before any splitting, leftmost-longest, as
 * HF tokenizers' Aho-Corasick matcher does. Indexed by first byte, longest first. */
#include "tokenizer_internal.h"

#include <stdlib.h>
#include <string.h>

/* Insertion sort, longest first, then by index (stable): lists are short, and this needs no
 * global context as qsort's comparator would. */
static void sort_longest_first(const added_vocab *v, int *idx, int n)
{
    for (int i = 1; i < n; i++) {
        int cur = idx[i], j = i;
        while (j > 0 && v->tokens[idx[j - 1]].len < v->tokens[cur].len) {
            idx[j] = idx[j - 1];
            j--;
        }
        idx[j] = cur;
    }
}

void added_vocab_index(added_vocab *v)
{
    for (int b = 0; b < 256; b++) {
        free(v->by_first_byte[b]);
        v->by_first_byte[b] = NULL;
        v->n_by_first_byte[b] = 0;
    }
    v->n_normalized = 0;
    for (int i = 0; i < v->n; i++) {
        v->n_normalized += v->tokens[i].normalized;
        if (v->tokens[i].len == 0)
            continue;
        uint8_t b = (uint8_t)v->tokens[i].content[0];
        v->by_first_byte[b] = mimo_xrealloc(v->by_first_byte[b], (size_t)(v->n_by_first_byte[b] + 1) * sizeof(int));
        v->by_first_byte[b][v->n_by_first_byte[b]++] = i;
    }
    for (int b = 0; b < 256; b++)
        sort_longest_first(v, v->by_first_byte[b], v->n_by_first_byte[b]);
}

void added_vocab_free(added_vocab *v)
{
    for (int i = 0; i < v->n; i++)
        free(v->tokens[i].content);
    free(v->tokens);
    for (int b = 0; b < 256; b++)
        free(v->by_first_byte[b]);
    memset(v, 0, sizeof *v);
}

static bool is_ascii_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

int added_vocab_find(const added_vocab *v, bool want_normalized, const char *text, size_t len,
                     size_t from, size_t *start, size_t *end, size_t *match_start)
{
    if (want_normalized ? v->n_normalized == 0 : v->n_normalized == v->n)
        return -1;
    for (size_t pos = from; pos < len; pos++) {
        uint8_t b = (uint8_t)text[pos];
        const int *cands = v->by_first_byte[b];
        for (int k = 0; k < v->n_by_first_byte[b]; k++) {
            const added_token *t = &v->tokens[cands[k]];
            if (t->normalized != want_normalized || t->len > len - pos || memcmp(text + pos, t->content, t->len))
                continue;
            size_t s = pos, e = pos + t->len;
            if (t->lstrip)
                while (s > from && is_ascii_space(text[s - 1]))
                    s--;
            if (t->rstrip)
                while (e < len && is_ascii_space(text[e]))
                    e++;
            *start = s;
            *end = e;
            *match_start = pos;
            return cands[k];
        }
    }
    return -1;
}
