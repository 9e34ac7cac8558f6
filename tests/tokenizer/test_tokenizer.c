/* The tokenizer against HF tokenizers' own output (golden file), plus the edges: special tokens
 * inside text, invalid UTF-8, unsupported tokenizer kinds. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mimo/tokenizer.h"
#include "support.h"

static char qwen_path[4096], golden_path[4096];

static mimo_tokenizer *load_qwen_or_skip(void)
{
    const char *shared = mimo_test_shared_dir();
    if (!shared)
        cr_skip_test("../shared is absent: no Qwen3 tokenizer to test against");
    snprintf(qwen_path, sizeof qwen_path, "%s/tokenizers/qwen3/tokenizer.json", shared);
    snprintf(golden_path, sizeof golden_path, "%s/golden/qwen3_tokenizer_dev.jsonl", shared);
    mimo_error err = {{0}};
    mimo_tokenizer *t = mimo_tokenizer_load(qwen_path, &err);
    cr_assert_not_null(t, "load failed: %s", err.msg);
    return t;
}

Test(tokenizer, golden_ids_and_decode_match_hf)
{
    mimo_tokenizer *t = load_qwen_or_skip();
    FILE *f = fopen(golden_path, "r");
    cr_assert_not_null(f, "cannot open %s", golden_path);
    char *line = NULL;
    size_t cap = 0;
    int lines = 0;
    while (getline(&line, &cap, f) > 0) {
        lines++;
        json_error_t jerr;
        json_t *rec = json_loads(line, 0, &jerr);
        cr_assert_not_null(rec, "golden line %d: %s", lines, jerr.text);
        const json_t *text = json_object_get(rec, "text"), *ids = json_object_get(rec, "ids");
        const char *decoded = json_string_value(json_object_get(rec, "decoded"));
        int32_t *got;
        int n;
        mimo_error err = {{0}};
        cr_assert_eq(mimo_tokenizer_encode(t, json_string_value(text), json_string_length(text), &got, &n, &err), 0,
                     "%s", err.msg);
        cr_assert_eq((size_t)n, json_array_size(ids), "golden line %d: %d ids, HF gives %zu", lines, n,
                     json_array_size(ids));
        for (int i = 0; i < n; i++)
            cr_assert_eq(got[i], json_integer_value(json_array_get(ids, (size_t)i)),
                         "golden line %d, id %d: got %d, HF gives %lld", lines, i, got[i],
                         (long long)json_integer_value(json_array_get(ids, (size_t)i)));
        char *back;
        size_t back_len;
        cr_assert_eq(mimo_tokenizer_decode(t, got, n, &back, &back_len, &err), 0, "%s", err.msg);
        cr_assert_str_eq(back, decoded, "golden line %d: decode differs", lines);
        free(back);
        free(got);
        json_decref(rec);
    }
    free(line);
    fclose(f);
    cr_assert_geq(lines, 50, "golden file has only %d lines", lines);
    mimo_tokenizer_free(t);
}

Test(tokenizer, special_tokens_inside_text_are_single_ids)
{
    mimo_tokenizer *t = load_qwen_or_skip();
    int32_t im_start = mimo_tokenizer_token_id(t, "<|im_start|>"), im_end = mimo_tokenizer_token_id(t, "<|im_end|>");
    cr_assert_eq(im_start, 151644);
    cr_assert_eq(im_end, 151645);
    cr_assert(mimo_tokenizer_is_special(t, im_end));
    cr_assert_not(mimo_tokenizer_is_special(t, mimo_tokenizer_token_id(t, "<tool_call>")));
    const char *text = "abc<|im_end|>def<|im_start|><|im_start|>x<|im_end";
    int32_t *ids;
    int n;
    mimo_error err = {{0}};
    cr_assert_eq(mimo_tokenizer_encode(t, text, strlen(text), &ids, &n, &err), 0, "%s", err.msg);
    int specials = 0, first_end = -1;
    for (int i = 0; i < n; i++) {
        if (ids[i] == im_start || ids[i] == im_end)
            specials++;
        if (ids[i] == im_end && first_end < 0)
            first_end = i;
    }
    cr_assert_eq(specials, 3, "three complete markers and one truncated one: %d special ids", specials);
    cr_assert_gt(first_end, 0);
    char *back;
    cr_assert_eq(mimo_tokenizer_decode(t, ids, n, &back, NULL, &err), 0, "%s", err.msg);
    cr_assert_str_eq(back, text);
    free(back);
    free(ids);
    mimo_tokenizer_free(t);
}

Test(tokenizer, invalid_utf8_is_encoded_as_bytes)
{
    mimo_tokenizer *t = load_qwen_or_skip();
    const char text[] = "ok \xff\xfe bad \xc3 tail \xe2\x82 end \xed\xa0\x80 caf\xc3\xa9";
    size_t len = sizeof text - 1;
    int32_t *ids;
    int n;
    mimo_error err = {{0}};
    cr_assert_eq(mimo_tokenizer_encode(t, text, len, &ids, &n, &err), 0, "%s", err.msg);
    /* The raw bytes of the ids are exactly the input. */
    char *raw = malloc(len + 1);
    size_t got = 0;
    for (int i = 0; i < n; i++) {
        size_t l;
        const char *b = mimo_tokenizer_token_bytes(t, ids[i], &l);
        cr_assert_not_null(b);
        cr_assert_leq(got + l, len);
        memcpy(raw + got, b, l);
        got += l;
    }
    cr_assert_eq(got, len);
    cr_assert_eq(memcmp(raw, text, len), 0);
    /* decode replaces invalid sequences by U+FFFD, like Rust's from_utf8_lossy. */
    char *back;
    cr_assert_eq(mimo_tokenizer_decode(t, ids, n, &back, NULL, &err), 0, "%s", err.msg);
    cr_assert_str_eq(back, "ok \xef\xbf\xbd\xef\xbf\xbd bad \xef\xbf\xbd tail \xef\xbf\xbd end "
                           "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd caf\xc3\xa9");
    free(back);
    free(raw);
    free(ids);
    mimo_tokenizer_free(t);
}

Test(tokenizer, long_whitespace_and_empty_input)
{
    mimo_tokenizer *t = load_qwen_or_skip();
    size_t len = 200000;
    char *text = malloc(len + 2);
    memset(text, ' ', len);
    text[len] = 'x';
    text[len + 1] = '\0';
    int32_t *ids;
    int n;
    mimo_error err = {{0}};
    cr_assert_eq(mimo_tokenizer_encode(t, text, len + 1, &ids, &n, &err), 0, "%s", err.msg);
    char *back;
    cr_assert_eq(mimo_tokenizer_decode(t, ids, n, &back, NULL, &err), 0, "%s", err.msg);
    cr_assert_str_eq(back, text);
    free(back);
    free(ids);
    cr_assert_eq(mimo_tokenizer_encode(t, "", 0, &ids, &n, &err), 0, "%s", err.msg);
    cr_assert_eq(n, 0);
    free(ids);
    /* Ids without a token add nothing (HF skips them too); token_bytes says they have none. */
    int32_t with_holes[] = {9707, mimo_tokenizer_vocab_size(t), -5, 0};
    cr_assert_eq(mimo_tokenizer_decode(t, with_holes, 4, &back, NULL, &err), 0, "%s", err.msg);
    cr_assert_str_eq(back, "Hello!");
    free(back);
    cr_assert_null(mimo_tokenizer_token_bytes(t, mimo_tokenizer_vocab_size(t), NULL));
    cr_assert_null(mimo_tokenizer_token_bytes(t, -1, NULL));
    free(text);
    mimo_tokenizer_free(t);
}

/* A minimal tokenizer.json with one stage replaced, to check the refusal names that stage. */
static void expect_refused(const char *model_type, const char *normalizer, const char *decoder, const char *needle)
{
    char *dir = mimo_test_tmpdir();
    char path[4200];
    snprintf(path, sizeof path, "%s/tokenizer.json", dir);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fprintf(f, "{\"model\": {\"type\": \"%s\", \"vocab\": {\"a\": 0}, \"merges\": []}, \"normalizer\": %s, "
               "\"pre_tokenizer\": {\"type\": \"ByteLevel\", \"add_prefix_space\": false, \"use_regex\": true}, "
               "\"decoder\": %s, \"added_tokens\": []}",
            model_type, normalizer, decoder);
    fclose(f);
    mimo_error err = {{0}};
    mimo_tokenizer *t = mimo_tokenizer_load(path, &err);
    cr_assert_null(t);
    cr_assert(strstr(err.msg, needle), "message '%s' does not name '%s'", err.msg, needle);
    cr_assert(strstr(err.msg, path), "message '%s' does not name the file", err.msg);
    mimo_test_rmtree(dir);
    free(dir);
}

Test(tokenizer, unsupported_kinds_are_named)
{
    expect_refused("WordPiece", "null", "{\"type\": \"ByteLevel\"}", "WordPiece");
    expect_refused("BPE", "{\"type\": \"NFKD\"}", "{\"type\": \"ByteLevel\"}", "NFKD");
    expect_refused("BPE", "null", "{\"type\": \"Metaspace\"}", "Metaspace");
    /* Supported stages but a vocab without byte tokens: says which byte is missing. */
    expect_refused("BPE", "null", "{\"type\": \"ByteLevel\"}", "byte 0x00");
}

Test(tokenizer, missing_file_is_an_error)
{
    mimo_error err = {{0}};
    cr_assert_null(mimo_tokenizer_load("/nonexistent/tokenizer.json", &err));
    cr_assert(strstr(err.msg, "/nonexistent/tokenizer.json"), "%s", err.msg);
}

/* Random byte soup (ASCII, multi-byte characters, specials, stray bytes): never a crash, and the
 * ids always stand for exactly the input bytes (NFC leaves these pieces unchanged). */
Test(tokenizer, random_inputs_cover_their_bytes_exactly)
{
    mimo_tokenizer *t = load_qwen_or_skip();
    static const char *const pieces[] = {"a", "Z", " ", "  ", "\n", "\r\n", "\t", "7", "42", "'s", "'LL", ".", "!!",
                                         "é", "中文", "😀", "λ", "\xff", "\xc3", "\xe2\x82", "\x80", "<|im_end|>",
                                         "<|im_", "<tool_call>", "\xc2\xa0", "\xe3\x80\x80", "_", "{"};
    uint64_t state = 12345;
    char buf[512];
    for (int iter = 0; iter < 3000; iter++) {
        size_t len = 0;
        state = state * 6364136223846793005ull + 1442695040888963407ull;
        int n_pieces = (int)(state >> 59);
        for (int k = 0; k < n_pieces; k++) {
            state = state * 6364136223846793005ull + 1442695040888963407ull;
            const char *p = pieces[(state >> 33) % (sizeof pieces / sizeof pieces[0])];
            size_t l = strlen(p);
            memcpy(buf + len, p, l);
            len += l;
        }
        int32_t *ids;
        int n;
        mimo_error err = {{0}};
        cr_assert_eq(mimo_tokenizer_encode(t, buf, len, &ids, &n, &err), 0, "%s", err.msg);
        char raw[1024];
        size_t got = 0;
        for (int i = 0; i < n; i++) {
            size_t l;
            const char *b = mimo_tokenizer_token_bytes(t, ids[i], &l);
            cr_assert(b && got + l <= len, "iteration %d: ids exceed the input", iter);
            memcpy(raw + got, b, l);
            got += l;
        }
        cr_assert(got == len && memcmp(raw, buf, len) == 0, "iteration %d: ids do not cover the input", iter);
        free(ids);
    }
    mimo_tokenizer_free(t);
}
