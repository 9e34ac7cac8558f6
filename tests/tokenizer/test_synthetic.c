/* Synthetic tokenizers: exact size, special tokens at the top, loadable by our own loader, and
 * text round-trips through them. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mimo/tokenizer.h"
#include "support.h"

static const char *const texts[] = {
    "The quick brown fox jumps over the lazy dog.",
    "def f(x):\n    return x * 2  # doubled\n\n\n",
    "Ünïcödé, 中文, 日本語, emoji 🚀 and a\ttab",
    "<|im_start|>user\nhello<|im_end|>\n<|im_start|>assistant\n",
    "   leading and trailing   ",
};

static void check_size(int vocab_size)
{
    char *dir = mimo_test_tmpdir();
    char path[4200];
    snprintf(path, sizeof path, "%s/tokenizer.json", dir);
    mimo_error err = {{0}};
    cr_assert_eq(mimo_tokenizer_write_synthetic(vocab_size, path, &err), 0, "%s", err.msg);

    /* The file itself: exactly vocab_size ids across vocab and added tokens, no duplicates. */
    json_error_t jerr;
    json_t *doc = json_load_file(path, 0, &jerr);
    cr_assert_not_null(doc, "%s", jerr.text);
    size_t n_vocab = json_object_size(json_object_get(json_object_get(doc, "model"), "vocab"));
    size_t n_added = json_array_size(json_object_get(doc, "added_tokens"));
    cr_assert_eq(n_vocab + n_added, (size_t)vocab_size, "vocab %zu + added %zu != %d", n_vocab, n_added, vocab_size);
    cr_assert_geq(json_array_size(json_object_get(json_object_get(doc, "model"), "merges")), (size_t)vocab_size - 259);
    json_decref(doc);

    mimo_tokenizer *t = mimo_tokenizer_load(path, &err);
    cr_assert_not_null(t, "%s", err.msg);
    cr_assert_eq(mimo_tokenizer_vocab_size(t), vocab_size);
    cr_assert_eq(mimo_tokenizer_token_id(t, "<|endoftext|>"), vocab_size - 3);
    cr_assert_eq(mimo_tokenizer_token_id(t, "<|im_start|>"), vocab_size - 2);
    cr_assert_eq(mimo_tokenizer_token_id(t, "<|im_end|>"), vocab_size - 1);
    for (int id = 0; id < vocab_size; id++)
        cr_assert_not_null(mimo_tokenizer_token_bytes(t, id, NULL), "id %d has no token", id);

    size_t total_bytes = 0, total_ids = 0;
    for (size_t k = 0; k < sizeof texts / sizeof texts[0]; k++) {
        int32_t *ids;
        int n;
        cr_assert_eq(mimo_tokenizer_encode(t, texts[k], strlen(texts[k]), &ids, &n, &err), 0, "%s", err.msg);
        for (int i = 0; i < n; i++)
            cr_assert(ids[i] >= 0 && ids[i] < vocab_size);
        char *back;
        cr_assert_eq(mimo_tokenizer_decode(t, ids, n, &back, NULL, &err), 0, "%s", err.msg);
        cr_assert_str_eq(back, texts[k], "vocab %d: round trip of text %zu", vocab_size, k);
        total_bytes += strlen(texts[k]);
        total_ids += (size_t)n;
        free(back);
        free(ids);
    }
    /* Merges are used: English and code compress to fewer tokens than bytes. */
    cr_assert_lt(total_ids * 3, total_bytes * 2, "vocab %d: %zu ids for %zu bytes", vocab_size, total_ids, total_bytes);
    mimo_tokenizer_free(t);
    mimo_test_rmtree(dir);
    free(dir);
}

Test(synthetic_tokenizer, smallest_size) { check_size(512); }
Test(synthetic_tokenizer, medium_size) { check_size(32000); }
Test(synthetic_tokenizer, qwen_size) { check_size(152576); }

Test(synthetic_tokenizer, same_size_gives_same_file)
{
    char *dir = mimo_test_tmpdir();
    char a[4200], b[4200];
    snprintf(a, sizeof a, "%s/a.json", dir);
    snprintf(b, sizeof b, "%s/b.json", dir);
    mimo_error err = {{0}};
    cr_assert_eq(mimo_tokenizer_write_synthetic(1000, a, &err), 0, "%s", err.msg);
    cr_assert_eq(mimo_tokenizer_write_synthetic(1000, b, &err), 0, "%s", err.msg);
    size_t la, lb;
    char *da = mimo_test_read_file(a, &la), *db = mimo_test_read_file(b, &lb);
    cr_assert(da && db && la == lb && memcmp(da, db, la) == 0, "two writes differ");
    free(da);
    free(db);
    mimo_test_rmtree(dir);
    free(dir);
}

Test(synthetic_tokenizer, bad_sizes_and_paths_fail)
{
    mimo_error err = {{0}};
    cr_assert_eq(mimo_tokenizer_write_synthetic(300, "/tmp/never-written.json", &err), -1);
    cr_assert(strstr(err.msg, "300"), "%s", err.msg);
    cr_assert_eq(mimo_tokenizer_write_synthetic(512, "/nonexistent-dir/tokenizer.json", &err), -1);
    cr_assert(strstr(err.msg, "/nonexistent-dir/tokenizer.json"), "%s", err.msg);
}

/* Added tokens with normalized = true (matched after NFC) and lstrip/rstrip (absorb the spaces
 * around them), on a synthetic base tokenizer. */
Test(synthetic_tokenizer, normalized_and_stripping_added_tokens)
{
    char *dir = mimo_test_tmpdir();
    char path[4200];
    snprintf(path, sizeof path, "%s/tokenizer.json", dir);
    mimo_error err = {{0}};
    cr_assert_eq(mimo_tokenizer_write_synthetic(512, path, &err), 0, "%s", err.msg);
    json_error_t jerr;
    json_t *doc = json_load_file(path, 0, &jerr);
    cr_assert_not_null(doc);
    json_t *added = json_object_get(doc, "added_tokens");
    json_array_append_new(added, json_pack("{s:i, s:s, s:b, s:b, s:b}", "id", 512, "content", "caf\xc3\xa9", "normalized", 1,
                                           "special", 0, "lstrip", 0));
    json_array_append_new(added, json_pack("{s:i, s:s, s:b, s:b, s:b, s:b}", "id", 513, "content", "[MASK]", "normalized",
                                           0, "special", 1, "lstrip", 1, "rstrip", 1));
    cr_assert_eq(json_dump_file(doc, path, 0), 0);
    json_decref(doc);

    mimo_tokenizer *t = mimo_tokenizer_load(path, &err);
    cr_assert_not_null(t, "%s", err.msg);
    cr_assert_eq(mimo_tokenizer_vocab_size(t), 514);
    const char *text = "I like cafe\xcc\x81 a [MASK] b";   /* decomposed e + combining acute */
    int32_t *ids;
    int n;
    cr_assert_eq(mimo_tokenizer_encode(t, text, strlen(text), &ids, &n, &err), 0, "%s", err.msg);
    int cafe_at = -1, found_mask = 0;
    for (int i = 0; i < n; i++) {
        if (ids[i] == 512)
            cafe_at = cafe_at < 0 ? i : -2;
        found_mask += ids[i] == 513;
    }
    cr_assert_geq(cafe_at, 0, "the normalized added token is matched (once) after NFC");
    cr_assert_eq(found_mask, 1);
    /* Around the added tokens (whose own decoded text goes through the ByteLevel decoder, as in HF). */
    char *back;
    cr_assert_eq(mimo_tokenizer_decode(t, ids, cafe_at, &back, NULL, &err), 0, "%s", err.msg);
    cr_assert_str_eq(back, "I like ");
    free(back);
    cr_assert_eq(mimo_tokenizer_decode(t, ids + cafe_at + 1, n - cafe_at - 1, &back, NULL, &err), 0, "%s", err.msg);
    cr_assert_str_eq(back, " a[MASK]b", "lstrip/rstrip take the spaces around [MASK]");
    free(back);
    free(ids);
    mimo_tokenizer_free(t);
    mimo_test_rmtree(dir);
    free(dir);
}
