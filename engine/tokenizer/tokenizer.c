/* Encode and decode: the HF pipeline in order. Added tokens are cut out of the raw text first;
 * each remaining segment is normalized, cut again at added tokens marked "normalized", split by
 * the pre-tokenizer, and each piece is BPE-encoded on its raw bytes (the byte-level mapping is
 * applied to the vocabulary once at load time instead of to every piece). */
#include "tokenizer_internal.h"

#include <stdlib.h>
#include <string.h>

static int encode_piece(void *ctx, const char *piece, size_t len)
{
    mimo_tokenizer *t = ((void **)ctx)[0];
    bpe_encode_word(&t->bpe, piece, len, ((void **)ctx)[1]);
    return 0;
}

/* A normalized segment: cut at normalized added tokens, pre-tokenize and BPE the rest. */
static int encode_normalized(mimo_tokenizer *t, const char *text, size_t len, id_list *out)
{
    void *ctx[2] = {t, out};
    size_t pos = 0;
    for (;;) {
        size_t s, e, m;
        int k = added_vocab_find(&t->added, true, text, len, pos, &s, &e, &m);
        size_t stop = k >= 0 ? s : len;
        if (stop > pos && pretokenize(&t->pre, text + pos, stop - pos, encode_piece, ctx))
            return -1;
        if (k < 0)
            return 0;
        id_list_push(out, t->added.tokens[k].id);
        pos = e;
    }
}

static int encode_segment(mimo_tokenizer *t, const char *text, size_t len, id_list *out)
{
    if (t->normalizer == NORMALIZER_NFC) {
        size_t nlen;
        char *normalized = normalize_nfc(text, len, &nlen);
        if (normalized) {
            int rc = encode_normalized(t, normalized, nlen, out);
            free(normalized);
            return rc;
        }
    }
    return encode_normalized(t, text, len, out);
}

int mimo_tokenizer_encode(mimo_tokenizer *t, const char *text, size_t len, int32_t **ids, int *n_ids,
                          mimo_error *err)
{
    *ids = NULL;
    *n_ids = 0;
    if (len > (size_t)1 << 30)
        return mimo_fail(err, "tokenizer: text of %zu bytes is too long to encode (limit 1 GiB)", len);
    id_list out = {0};
    size_t pos = 0;
    for (;;) {
        size_t s, e, m;
        int k = added_vocab_find(&t->added, false, text, len, pos, &s, &e, &m);
        size_t stop = k >= 0 ? s : len;
        if (stop > pos && encode_segment(t, text + pos, stop - pos, &out)) {
            free(out.ids);
            return mimo_fail(err, "tokenizer: the pre-tokenizer regex failed on the input (PCRE2 error)");
        }
        if (k < 0)
            break;
        id_list_push(&out, t->added.tokens[k].id);
        pos = e;
    }
    if (out.n > (size_t)INT32_MAX) {
        free(out.ids);
        return mimo_fail(err, "tokenizer: too many tokens");
    }
    *ids = out.ids ? out.ids : mimo_xmalloc(sizeof(int32_t));
    *n_ids = (int)out.n;
    return 0;
}

const char *mimo_tokenizer_token_bytes(const mimo_tokenizer *t, int32_t id, size_t *len)
{
    if (id < 0 || id >= t->vocab_size || !t->id_bytes[id])
        return NULL;
    if (len)
        *len = t->id_len[id];
    return t->id_bytes[id];
}

/* Length of the invalid sequence at p: the maximal prefix of a well-formed sequence, at least 1
 * (each such prefix becomes one U+FFFD, as Rust's String::from_utf8_lossy does). */
static size_t invalid_sequence_len(const uint8_t *p, size_t len)
{
    uint8_t b = p[0], lo = 0x80, hi = 0xBF;
    size_t need;
    if (b >= 0xC2 && b <= 0xDF) {
        need = 2;
    } else if (b >= 0xE0 && b <= 0xEF) {
        need = 3;
        if (b == 0xE0) lo = 0xA0;
        if (b == 0xED) hi = 0x9F;
    } else if (b >= 0xF0 && b <= 0xF4) {
        need = 4;
        if (b == 0xF0) lo = 0x90;
        if (b == 0xF4) hi = 0x8F;
    } else {
        return 1;
    }
    if (len < 2 || p[1] < lo || p[1] > hi)
        return 1;
    size_t i = 2;
    while (i < need && i < len && (p[i] & 0xC0) == 0x80)
        i++;
    return i;
}

int mimo_tokenizer_decode(const mimo_tokenizer *t, const int32_t *ids, int n_ids, char **text, size_t *len,
                          mimo_error *err)
{
    *text = NULL;
    if (n_ids < 0 || (n_ids > 0 && !ids))
        return mimo_fail(err, "tokenizer: decode given %d ids", n_ids);
    /* Ids without a token (padding rows of a model's embedding) add nothing, as in HF. */
    size_t total = 0;
    for (int i = 0; i < n_ids; i++)
        if (ids[i] >= 0 && ids[i] < t->vocab_size && t->id_bytes[ids[i]])
            total += t->id_len[ids[i]];
    /* Each invalid byte may grow to 3 bytes (U+FFFD). */
    char *out = mimo_xmalloc(total * 3 + 1);
    char *raw = mimo_xmalloc(total + 1);
    size_t n = 0;
    for (int i = 0; i < n_ids; i++) {
        if (ids[i] < 0 || ids[i] >= t->vocab_size || !t->id_bytes[ids[i]])
            continue;
        memcpy(raw + n, t->id_bytes[ids[i]], t->id_len[ids[i]]);
        n += t->id_len[ids[i]];
    }
    const uint8_t *u = (const uint8_t *)raw;
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        size_t c = utf8_char_len(u + i, n - i);
        if (c) {
            memcpy(out + o, raw + i, c);
            o += c;
            i += c;
        } else {
            memcpy(out + o, "\xEF\xBF\xBD", 3);
            o += 3;
            i += invalid_sequence_len(u + i, n - i);
        }
    }
    out[o] = '\0';
    free(raw);
    *text = out;
    if (len)
        *len = o;
    return 0;
}

int mimo_tokenizer_vocab_size(const mimo_tokenizer *t)
{
    return t->vocab_size;
}

int32_t mimo_tokenizer_token_id(const mimo_tokenizer *t, const char *token)
{
    size_t len = strlen(token);
    for (int i = 0; i < t->added.n; i++)
        if (t->added.tokens[i].len == len && memcmp(t->added.tokens[i].content, token, len) == 0)
            return t->added.tokens[i].id;
    return bytes_map_get(&t->bpe.vocab, token, len);
}

bool mimo_tokenizer_is_special(const mimo_tokenizer *t, int32_t id)
{
    return id >= 0 && id < t->vocab_size && t->id_special[id];
}

void mimo_tokenizer_free(mimo_tokenizer *t)
{
    if (!t)
        return;
    pretokenizer_free(&t->pre);
    bpe_model_free(&t->bpe);
    added_vocab_free(&t->added);
    if (t->id_bytes)
        for (int i = 0; i < t->vocab_size; i++)
            free(t->id_bytes[i]);
    free(t->id_bytes);
    free(t->id_len);
    free(t->id_special);
    free(t->path);
    free(t);
}
