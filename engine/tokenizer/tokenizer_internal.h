/* Private structures of the tokenizer library (one tokenizer = these parts, in pipeline order). */
#ifndef MIMO_TOKENIZER_INTERNAL_H
#define MIMO_TOKENIZER_INTERNAL_H

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mimo/error.h"
#include "mimo/tokenizer.h"

/* Length (1-4) of the valid UTF-8 character at p[0..len), or 0 when the bytes there are not one
 * (overlong forms, surrogates and code points above U+10FFFF are invalid, as in Rust's str). */
static inline size_t utf8_char_len(const uint8_t *p, size_t len)
{
    uint8_t b = p[0];
    if (b < 0x80)
        return 1;
    if (b >= 0xC2 && b <= 0xDF)
        return len >= 2 && (p[1] & 0xC0) == 0x80 ? 2 : 0;
    if (b >= 0xE0 && b <= 0xEF) {
        if (len < 3 || (p[1] & 0xC0) != 0x80 || (p[2] & 0xC0) != 0x80)
            return 0;
        if ((b == 0xE0 && p[1] < 0xA0) || (b == 0xED && p[1] >= 0xA0))
            return 0;
        return 3;
    }
    if (b >= 0xF0 && b <= 0xF4) {
        if (len < 4 || (p[1] & 0xC0) != 0x80 || (p[2] & 0xC0) != 0x80 || (p[3] & 0xC0) != 0x80)
            return 0;
        if ((b == 0xF0 && p[1] < 0x90) || (b == 0xF4 && p[1] >= 0x90))
            return 0;
        return 4;
    }
    return 0;
}

/* ---- byte strings -> id (open addressing; keys copied into the map) ---- */
typedef struct {
    char   **keys;
    uint32_t *key_lens;
    int32_t  *values;
    size_t    cap;       /* power of two */
    size_t    count;
} bytes_map;

void    bytes_map_init(bytes_map *m, size_t expected);
void    bytes_map_free(bytes_map *m);
/* Inserts or replaces. */
void    bytes_map_put(bytes_map *m, const char *key, size_t len, int32_t value);
/* -1 when absent. */
int32_t bytes_map_get(const bytes_map *m, const char *key, size_t len);
uint64_t bytes_hash(const char *key, size_t len);

/* ---- byte-level mapping (GPT-2 bytes_to_unicode) ---- */
/* The code point that stands for byte b in byte-level token strings. */
uint32_t byte_level_char(uint8_t b);
/* Converts a byte-level token string (UTF-8 of mapped code points) into raw bytes. Returns the
 * number of bytes written to out (capacity >= len), or -1 when some character is not a byte-level
 * character (then the token is not byte-level text). */
long byte_level_to_bytes(const char *s, size_t len, char *out);
/* Writes the byte-level string of raw bytes (each byte -> 1 or 2 UTF-8 bytes) to out (capacity 2*len);
 * returns its length. */
size_t bytes_to_byte_level(const char *bytes, size_t len, char *out);

/* ---- normalizer ---- */
typedef enum { NORMALIZER_NONE, NORMALIZER_NFC } normalizer_kind;
/* NFC of text (valid UTF-8 runs; invalid bytes pass through unchanged). Returns a malloc'd buffer
 * and its length in *out_len; returns NULL when the text is unchanged by the normalizer (fast path). */
char *normalize_nfc(const char *text, size_t len, size_t *out_len);

/* ---- pre-tokenizer: regex split (Isolated) ---- */
typedef struct {
    pcre2_code       *code;
    pcre2_match_data *match;
    pcre2_match_context *context;
    pcre2_jit_stack  *jit_stack;
    bool              jit;
} pretokenizer;

int  pretokenizer_init(pretokenizer *p, const char *pattern, mimo_error *err);
void pretokenizer_free(pretokenizer *p);
/* Calls emit(ctx, start, len) for every piece of text[0..len) in order: regex matches and the gaps
 * between them (Isolated behaviour). Invalid UTF-8 bytes are emitted one per piece. */
typedef int (*piece_fn)(void *ctx, const char *piece, size_t len);
int pretokenize(pretokenizer *p, const char *text, size_t len, piece_fn emit, void *ctx);

/* ---- BPE model ---- */
typedef struct {
    uint64_t *keys;      /* (left << 32 | right) + 1; 0 = empty slot */
    int32_t  *ranks;
    int32_t  *merged;
    size_t    cap;
    size_t    count;
} merge_table;

typedef struct {
    char     *key;       /* word bytes */
    uint32_t  key_len;
    int32_t  *ids;
    int       n_ids;
} word_cache_entry;

typedef struct {
    word_cache_entry *entries;
    size_t cap;          /* power of two */
    size_t count;
} word_cache;

typedef struct {
    bytes_map   vocab;          /* raw bytes -> id (BPE vocab only) */
    merge_table merges;
    int32_t     byte_ids[256];  /* id of each single byte */
    word_cache  cache;
} bpe_model;

void merge_table_init(merge_table *t, size_t expected);
void merge_table_free(merge_table *t);
void merge_table_put(merge_table *t, int32_t left, int32_t right, int32_t rank, int32_t merged);
/* Inserts or overwrites. */
void merge_table_set(merge_table *t, int32_t left, int32_t right, int32_t rank, int32_t merged);
/* rank (and *merged) of the pair, or -1. */
int32_t merge_table_get(const merge_table *t, int32_t left, int32_t right, int32_t *merged);

void bpe_model_free(bpe_model *m);
/* Appends the ids of one pre-token (raw bytes) to *ids. */
typedef struct {
    int32_t *ids;
    size_t   n, cap;
} id_list;
void id_list_push(id_list *l, int32_t id);
void bpe_encode_word(bpe_model *m, const char *word, size_t len, id_list *out);
/* The two merge loops behind it (exposed for the test that checks they agree): a direct scan for
 * words of at most 48 bytes, a min-heap for longer ones. */
void bpe_merge_short_word(const bpe_model *m, const char *word, size_t len, id_list *out);
void bpe_merge_long_word(const bpe_model *m, const char *word, size_t len, id_list *out);

/* ---- added tokens ---- */
typedef struct {
    char   *content;
    size_t  len;
    int32_t id;
    bool    special, lstrip, rstrip, normalized;
} added_token;

typedef struct {
    added_token *tokens;
    int n;
    int n_normalized;    /* how many have normalized = true (0: skip that second search) */
    /* per first byte: indices of tokens starting with it, longest first */
    int *by_first_byte[256];
    int  n_by_first_byte[256];
} added_vocab;

void added_vocab_index(added_vocab *v);
void added_vocab_free(added_vocab *v);
/* Finds the leftmost-longest match of a token (with normalized == want_normalized) in
 * text[from..len). Returns its token index or -1; start and end are the span to cut out, widened by
 * lstrip/rstrip whitespace. */
int added_vocab_find(const added_vocab *v, bool want_normalized, const char *text, size_t len,
                     size_t from, size_t *start, size_t *end, size_t *match_start);

/* ---- the tokenizer ---- */
struct mimo_tokenizer {
    char           *path;
    normalizer_kind normalizer;
    pretokenizer    pre;
    bpe_model       bpe;
    added_vocab     added;
    int             vocab_size;    /* max id + 1 */
    char          **id_bytes;      /* decoded bytes of every id (NULL = hole) */
    uint32_t       *id_len;
    uint8_t        *id_special;
};

#endif
