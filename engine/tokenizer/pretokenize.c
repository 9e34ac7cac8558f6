/* Split pre-tokenizer (behavior "Isolated"): regex matches and the gaps between them become
 * pieces. PCRE2 in UTF + UCP mode so that \p{L}, \p{N} and \s follow Unicode like Oniguruma, the
 * engine HF tokenizers uses; JIT-compiled when the platform supports it. */
#include "tokenizer_internal.h"

#include <string.h>

int pretokenizer_init(pretokenizer *p, const char *pattern, mimo_error *err)
{
    memset(p, 0, sizeof *p);
    int code;
    PCRE2_SIZE offset;
    p->code = pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED, PCRE2_UTF | PCRE2_UCP, &code,
                            &offset, NULL);
    if (!p->code) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(code, msg, sizeof msg);
        return mimo_fail(err, "pre-tokenizer regex does not compile at offset %zu: %s", (size_t)offset,
                         (const char *)msg);
    }
    p->jit = pcre2_jit_compile(p->code, PCRE2_JIT_COMPLETE) == 0;
    p->match = pcre2_match_data_create_from_pattern(p->code, NULL);
    p->context = pcre2_match_context_create(NULL);
    /* Input size is bounded by the caller; the default limits (10 million backtracks) would reject
     * long whitespace runs in the interpreter fallback below. */
    pcre2_set_match_limit(p->context, UINT32_MAX);
    pcre2_set_depth_limit(p->context, UINT32_MAX);
    if (p->jit) {
        /* Long whitespace runs backtrack deeply in "\s+(?!\S)", past the 32 KiB default stack. */
        p->jit_stack = pcre2_jit_stack_create(64 * 1024, 64 * 1024 * 1024, NULL);
        pcre2_jit_stack_assign(p->context, NULL, p->jit_stack);
    }
    return 0;
}

void pretokenizer_free(pretokenizer *p)
{
    pcre2_match_data_free(p->match);
    pcre2_match_context_free(p->context);
    pcre2_code_free(p->code);
    pcre2_jit_stack_free(p->jit_stack);
    memset(p, 0, sizeof *p);
}

/* Splits one valid UTF-8 run. */
static int split_valid_run(pretokenizer *p, const char *text, size_t len, piece_fn emit, void *ctx)
{
    size_t pos = 0, gap_start = 0;
    while (pos < len) {
        int rc = p->jit ? pcre2_jit_match(p->code, (PCRE2_SPTR)text, len, pos, PCRE2_NO_UTF_CHECK, p->match,
                                          p->context)
                        : PCRE2_ERROR_JIT_STACKLIMIT;
        /* The JIT backtracks through very long whitespace runs on its stack; the interpreter does
         * the same match in constant memory, only slower. */
        if (rc == PCRE2_ERROR_JIT_STACKLIMIT)
            rc = pcre2_match(p->code, (PCRE2_SPTR)text, len, pos, PCRE2_NO_UTF_CHECK | PCRE2_NO_JIT, p->match,
                             p->context);
        if (rc == PCRE2_ERROR_NOMATCH)
            break;
        if (rc < 0)
            return -1;
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(p->match);
        size_t start = ov[0], end = ov[1];
        if (end == start) {   /* an empty match cuts nothing: step over one character */
            size_t n = utf8_char_len((const uint8_t *)text + start, len - start);
            pos = start + (n ? n : 1);
            continue;
        }
        if (start > gap_start && emit(ctx, text + gap_start, start - gap_start))
            return -1;
        if (emit(ctx, text + start, end - start))
            return -1;
        pos = gap_start = end;
    }
    if (len > gap_start && emit(ctx, text + gap_start, len - gap_start))
        return -1;
    return 0;
}

int pretokenize(pretokenizer *p, const char *text, size_t len, piece_fn emit, void *ctx)
{
    const uint8_t *u = (const uint8_t *)text;
    size_t i = 0, run_start = 0;
    while (i < len) {
        size_t n = utf8_char_len(u + i, len - i);
        if (n) {
            i += n;
            continue;
        }
        if (i > run_start && split_valid_run(p, text + run_start, i - run_start, emit, ctx))
            return -1;
        if (emit(ctx, text + i, 1))
            return -1;
        i++;
        run_start = i;
    }
    if (i > run_start && split_valid_run(p, text + run_start, i - run_start, emit, ctx))
        return -1;
    return 0;
}
