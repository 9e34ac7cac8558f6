/* A synthetic byte-level BPE tokenizer.json of an exact vocabulary size, for synthetic presets:
 * bytes first, then merges learned (deterministically) on a small built-in English and code text,
 * then systematic merges (token + letter) until the size is reached, then the chat special
 * tokens at the top ids. Same normalizer and pre-tokenizer as Qwen's, so it loads and behaves
 * like a real tokenizer of this kind. */
#include "tokenizer_internal.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char qwen_split_pattern[] =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|"
    "\\s+(?!\\S)|\\s+";

static const char *const special_tokens[] = {"<|endoftext|>", "<|im_start|>", "<|im_end|>"};

/* Training text: a little prose and code, so that common words and keywords get their own ids. */
static const char training_text[] =
    "The quick brown fox jumps over the lazy dog. A tokenizer splits text into pieces that a model can "
    "read, and the most common pieces become single tokens. When the model writes an answer, it produces "
    "one token at a time, and a faster decoder means that the answer appears sooner. In this project we "
    "measure how many tokens per second the engine can generate, how long the first token takes, and how "
    "often the draft model's guesses are accepted by the target model. The results are written to JSON "
    "files, drawn as plots, and compared between runs so that regressions are found before they ship. "
    "Please explain the following code and suggest how to make it faster and easier to read. "
    "What is the answer to the question, and how did you find it? Let us think step by step. "
    "The user asked for the weather in the city, so the assistant called the tool with the city name. "
    "int main(int argc, char **argv) { for (int i = 0; i < argc; i++) printf(\"%s\\n\", argv[i]); return 0; }\n"
    "def function(self, value):\n    if value is None:\n        return self.default\n    return value\n"
    "for item in items:\n    print(item)\nwhile True:\n    break\nclass Model(object):\n    pass\n"
    "fn main() { let mut total = 0; for x in 0..10 { total += x; } println!(\"{}\", total); }\n"
    "func handler(w http.ResponseWriter, r *http.Request) { fmt.Fprintf(w, \"hello\") }\n"
    "const result = await fetch(url); if (!result.ok) { throw new Error(result.statusText); }\n"
    "SELECT name, count(*) FROM users WHERE created_at > now() GROUP BY name ORDER BY count(*) DESC;\n"
    "import numpy as np\nimport json\nfrom typing import List, Optional\nreturn true; return false; null\n"
    "The sum of the first n numbers is n(n+1)/2, so the total is 5050. Therefore the answer is 42. "
    "If x + y = 10 and x - y = 2, then x = 6 and y = 4. The probability is 1/6 and the area is 12.\n";

/* ---- a tiny BPE trainer on the training text's words ---- */

typedef struct {
    int32_t *ids;
    int      n;
    int      count;
} train_word;

typedef struct {
    train_word *words;
    int n, cap;
    bytes_map index;   /* word bytes -> index in words */
} train_words;

static int collect_word(void *ctx, const char *piece, size_t len)
{
    train_words *w = ctx;
    int32_t k = bytes_map_get(&w->index, piece, len);
    if (k >= 0) {
        w->words[k].count++;
        return 0;
    }
    if (w->n == w->cap)
        w->words = mimo_xrealloc(w->words, (size_t)(w->cap = w->cap ? w->cap * 2 : 256) * sizeof *w->words);
    train_word *tw = &w->words[w->n];
    tw->ids = mimo_xmalloc(len * sizeof *tw->ids);
    for (size_t i = 0; i < len; i++)
        tw->ids[i] = (uint8_t)piece[i];
    tw->n = (int)len;
    tw->count = 1;
    bytes_map_put(&w->index, piece, len, w->n++);
    return 0;
}

typedef struct {
    char   **bytes;    /* raw bytes of every id */
    uint32_t *lens;
    int32_t  (*merges)[2];
    int n_ids, n_merges, cap, merges_cap;
    bytes_map known;   /* raw bytes -> id */
} synth_vocab;

static void vocab_add(synth_vocab *v, const char *bytes, size_t len)
{
    if (v->n_ids == v->cap) {
        v->cap = v->cap ? v->cap * 2 : 1024;
        v->bytes = mimo_xrealloc(v->bytes, (size_t)v->cap * sizeof *v->bytes);
        v->lens = mimo_xrealloc(v->lens, (size_t)v->cap * sizeof *v->lens);
    }
    v->bytes[v->n_ids] = mimo_xmalloc(len + 1);
    memcpy(v->bytes[v->n_ids], bytes, len);
    v->bytes[v->n_ids][len] = '\0';
    v->lens[v->n_ids] = (uint32_t)len;
    bytes_map_put(&v->known, bytes, len, v->n_ids);
    v->n_ids++;
}

static void merge_add(synth_vocab *v, int32_t left, int32_t right)
{
    if (v->n_merges == v->merges_cap) {
        v->merges_cap = v->merges_cap ? v->merges_cap * 2 : 1024;
        v->merges = mimo_xrealloc(v->merges, (size_t)v->merges_cap * sizeof *v->merges);
    }
    v->merges[v->n_merges][0] = left;
    v->merges[v->n_merges][1] = right;
    v->n_merges++;
}

/* Adds the merge (left, right) and returns the id of the concatenation: a new id, or with
 * allow_existing an id that already has those bytes (then only the merge rule is new).
 * Returns -1 (and adds nothing) when the concatenation exists and !allow_existing. */
static int32_t try_merge(synth_vocab *v, int32_t left, int32_t right, bool allow_existing)
{
    size_t len = v->lens[left] + v->lens[right];
    char *buf = mimo_xmalloc(len);
    memcpy(buf, v->bytes[left], v->lens[left]);
    memcpy(buf + v->lens[left], v->bytes[right], v->lens[right]);
    int32_t id = bytes_map_get(&v->known, buf, len);
    if (id < 0) {
        id = v->n_ids;
        vocab_add(v, buf, len);
        merge_add(v, left, right);
    } else if (allow_existing) {
        merge_add(v, left, right);
    } else {
        id = -1;
    }
    free(buf);
    return id;
}

static void learn_merges(synth_vocab *v, int target_ids)
{
    pretokenizer pre;
    mimo_error err;
    if (pretokenizer_init(&pre, qwen_split_pattern, &err))
        return;   /* cannot happen with the fixed pattern; the systematic merges fill the vocab */
    train_words w = {0};
    bytes_map_init(&w.index, 512);
    pretokenize(&pre, training_text, sizeof training_text - 1, collect_word, &w);
    pretokenizer_free(&pre);

    while (v->n_ids < target_ids) {
        /* Most frequent adjacent pair; ties go to the smallest (left, right) so the result is fixed. */
        merge_table counts;
        merge_table_init(&counts, 1024);
        int32_t best_left = -1, best_right = -1, best_count = 1;
        for (int k = 0; k < w.n; k++) {
            for (int i = 0; i + 1 < w.words[k].n; i++) {
                int32_t l = w.words[k].ids[i], r = w.words[k].ids[i + 1], c = 0;
                merge_table_get(&counts, l, r, &c);
                c += w.words[k].count;
                merge_table_set(&counts, l, r, 0, c);   /* the count rides in the "merged" slot */
                if (c > best_count || (c == best_count && best_left >= 0 &&
                                       (l < best_left || (l == best_left && r < best_right)))) {
                    best_count = c;
                    best_left = l;
                    best_right = r;
                }
            }
        }
        merge_table_free(&counts);
        if (best_left < 0)
            break;   /* no pair occurs twice: the rest is systematic */
        int32_t merged = try_merge(v, best_left, best_right, true);
        for (int k = 0; k < w.n; k++) {
            train_word *tw = &w.words[k];
            int o = 0;
            for (int i = 0; i < tw->n; i++) {
                if (i + 1 < tw->n && tw->ids[i] == best_left && tw->ids[i + 1] == best_right) {
                    tw->ids[o++] = merged;
                    i++;
                } else {
                    tw->ids[o++] = tw->ids[i];
                }
            }
            tw->n = o;
        }
    }
    for (int k = 0; k < w.n; k++)
        free(w.words[k].ids);
    free(w.words);
    bytes_map_free(&w.index);
}

/* Token + letter/digit/space merges in id order until the target is reached. */
static void fill_merges(synth_vocab *v, int target_ids)
{
    static const char extension[] = "etaoinshrdlcumwfgypbvkjxqz ETAOINSHRDLCUMWFGYPBVKJXQZ0123456789_.,";
    for (int32_t left = 0; v->n_ids < target_ids; left++) {
        if (left >= v->n_ids)
            left = 0;   /* cannot run out: every pass makes longer tokens */
        for (const char *c = extension; *c && v->n_ids < target_ids; c++)
            try_merge(v, left, (uint8_t)*c, false);
    }
}

static json_t *byte_level_string(const char *bytes, size_t len)
{
    char *s = mimo_xmalloc(2 * len + 1);
    size_t n = bytes_to_byte_level(bytes, len, s);
    json_t *j = json_stringn(s, n);
    free(s);
    return j;
}

static json_t *build_document(const synth_vocab *v, int vocab_size)
{
    json_t *vocab = json_object(), *merges = json_array(), *added = json_array();
    for (int32_t id = 0; id < v->n_ids; id++) {
        json_t *key = byte_level_string(v->bytes[id], v->lens[id]);
        json_object_set_new(vocab, json_string_value(key), json_integer(id));
        json_decref(key);
    }
    for (int i = 0; i < v->n_merges; i++)
        json_array_append_new(merges, json_pack("[o, o]", byte_level_string(v->bytes[v->merges[i][0]], v->lens[v->merges[i][0]]),
                                                byte_level_string(v->bytes[v->merges[i][1]], v->lens[v->merges[i][1]])));
    for (int k = 0; k < 3; k++)
        json_array_append_new(added, json_pack("{s:i, s:s, s:b, s:b, s:b, s:b, s:b}", "id", vocab_size - 3 + k,
                                               "content", special_tokens[k], "single_word", 0, "lstrip", 0, "rstrip", 0,
                                               "normalized", 0, "special", 1));
    json_t *byte_level = json_pack("{s:s, s:b, s:b, s:b}", "type", "ByteLevel", "add_prefix_space", 0, "trim_offsets",
                                   0, "use_regex", 0);
    json_t *split = json_pack("{s:s, s:{s:s}, s:s, s:b}", "type", "Split", "pattern", "Regex", qwen_split_pattern,
                              "behavior", "Isolated", "invert", 0);
    /* byte_level is referenced three times ("O" adds a reference each time); ours is dropped below. */
    json_t *doc = json_pack("{s:s, s:n, s:n, s:o, s:{s:s}, s:{s:s, s:[o, O]}, s:O, s:O, s:{s:s, s:n, s:n, s:s, s:s, s:b, "
                     "s:b, s:b, s:o, s:o}}",
                     "version", "1.0", "truncation", "padding", "added_tokens", added, "normalizer", "type", "NFC",
                     "pre_tokenizer", "type", "Sequence", "pretokenizers", split, byte_level, "post_processor",
                     byte_level, "decoder", byte_level, "model", "type", "BPE", "dropout", "unk_token",
                     "continuing_subword_prefix", "", "end_of_word_suffix", "", "fuse_unk", 0, "byte_fallback", 0,
                     "ignore_merges", 0, "vocab", vocab, "merges", merges);
    json_decref(byte_level);
    return doc;
}

int mimo_tokenizer_write_synthetic(int vocab_size, const char *path, mimo_error *err)
{
    if (vocab_size < 512 || vocab_size > (1 << 20))
        return mimo_fail(err, "synthetic tokenizer: vocab_size %d is outside [512, 1048576]", vocab_size);
    synth_vocab v = {0};
    bytes_map_init(&v.known, (size_t)vocab_size);
    for (int b = 0; b < 256; b++) {
        char c = (char)b;
        vocab_add(&v, &c, 1);
    }
    int bpe_ids = vocab_size - 3;
    learn_merges(&v, bpe_ids);
    fill_merges(&v, bpe_ids);

    json_t *doc = build_document(&v, vocab_size);
    for (int i = 0; i < v.n_ids; i++)
        free(v.bytes[i]);
    free(v.bytes);
    free(v.lens);
    free(v.merges);
    bytes_map_free(&v.known);
    if (!doc)
        return mimo_fail(err, "synthetic tokenizer: could not build the JSON document");

    size_t n = strlen(path) + 32;
    char *tmp = mimo_xmalloc(n);
    snprintf(tmp, n, "%s.tmp.%d", path, (int)getpid());
    int rc = 0;
    if (json_dump_file(doc, tmp, JSON_COMPACT | JSON_ENSURE_ASCII) != 0) {
        rc = mimo_fail(err, "%s: cannot write the synthetic tokenizer", tmp);
        unlink(tmp);
    } else if (rename(tmp, path) != 0) {
        rc = mimo_fail(err, "%s: cannot rename into place: %s", path, strerror(errno));
        unlink(tmp);
    }
    free(tmp);
    json_decref(doc);
    return rc;
}
