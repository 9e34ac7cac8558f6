/* The two BPE merge loops (direct scan for short words, heap for long ones) give the same ids on
 * every pre-token of the golden texts and on made-up words; white-box, so it includes the
 * library's private header. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../engine/tokenizer/tokenizer_internal.h"
#include "support.h"

static mimo_tokenizer *qwen;
static int words_checked;

static int compare_loops(void *ctx, const char *piece, size_t len)
{
    (void)ctx;
    if (len > 48)
        return 0;
    id_list a = {0}, b = {0};
    bpe_merge_short_word(&qwen->bpe, piece, len, &a);
    bpe_merge_long_word(&qwen->bpe, piece, len, &b);
    cr_assert_eq(a.n, b.n, "'%.*s': %zu vs %zu ids", (int)len, piece, a.n, b.n);
    for (size_t i = 0; i < a.n; i++)
        cr_assert_eq(a.ids[i], b.ids[i], "'%.*s': id %zu differs", (int)len, piece, i);
    free(a.ids);
    free(b.ids);
    words_checked++;
    return 0;
}

Test(bpe_internal, short_and_long_merge_loops_agree)
{
    const char *shared = mimo_test_shared_dir();
    if (!shared)
        cr_skip_test("../shared is absent");
    char path[4096];
    snprintf(path, sizeof path, "%s/tokenizers/qwen3/tokenizer.json", shared);
    mimo_error err = {{0}};
    qwen = mimo_tokenizer_load(path, &err);
    cr_assert_not_null(qwen, "%s", err.msg);
    snprintf(path, sizeof path, "%s/golden/qwen3_tokenizer_dev.jsonl", shared);
    FILE *f = fopen(path, "r");
    cr_assert_not_null(f);
    char *line = NULL;
    size_t cap = 0;
    while (getline(&line, &cap, f) > 0) {
        json_t *rec = json_loads(line, 0, NULL);
        const json_t *text = json_object_get(rec, "text");
        pretokenize(&qwen->pre, json_string_value(text), json_string_length(text), compare_loops, NULL);
        json_decref(rec);
    }
    free(line);
    fclose(f);
    /* Made-up words: repeated letters and syllables, where merge order matters most. */
    static const char *const syllables[] = {"a", "an", "ing", "the", " ", "ab", "zz", "e", "tion", "0", "é", "!"};
    uint64_t state = 7;
    char word[49];
    for (int iter = 0; iter < 20000; iter++) {
        size_t len = 0;
        state = state * 6364136223846793005ull + 1442695040888963407ull;
        int parts = 1 + (int)((state >> 40) % 16);
        for (int k = 0; k < parts; k++) {
            state = state * 6364136223846793005ull + 1442695040888963407ull;
            const char *s = syllables[(state >> 33) % (sizeof syllables / sizeof syllables[0])];
            if (len + strlen(s) > 48)
                break;
            memcpy(word + len, s, strlen(s));
            len += strlen(s);
        }
        compare_loops(NULL, word, len);
    }
    cr_assert_gt(words_checked, 20500);
    mimo_tokenizer_free(qwen);
}
