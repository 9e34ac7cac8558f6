/* libFuzzer target: any byte string through the safetensors validator (mimo_st_parse). It must
 * never crash, hang or read outside the input; when it accepts a file, every tensor's bytes lie
 * inside the buffer (ASan checks the reads below) and every name can be found again. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mimo/safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    mimo_st_file f;
    mimo_error err;
    if (mimo_st_parse(data, size, "fuzz-input", &f, &err) != 0) {
        if (strncmp(err.msg, "fuzz-input", 10) != 0)
            abort();   /* every error names the file */
        return 0;
    }
    volatile uint8_t sink = 0;
    for (int i = 0; i < f.n_tensors; i++) {
        const mimo_st_tensor *t = &f.tensors[i];
        const uint8_t *bytes = t->data;
        for (uint64_t b = 0; b < t->end - t->begin; b++)
            sink ^= bytes[b];
        if (mimo_st_find(&f, t->name) != t)
            abort();
    }
    for (int i = 0; i < f.n_meta; i++)
        if (mimo_st_meta(&f, f.meta_keys[i]) == NULL)
            abort();
    (void)sink;
    mimo_st_close(&f);
    return 0;
}
