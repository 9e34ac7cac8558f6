/* safetensors dtype names and element sizes (FORMATS.md lists the supported set). */
#include "mimo/safetensors.h"

#include <string.h>

static const struct {
    const char *name;
    size_t      size;
} dtype_table[MIMO_DTYPE_COUNT] = {
    [MIMO_DTYPE_F32]     = {"F32", 4},
    [MIMO_DTYPE_F16]     = {"F16", 2},
    [MIMO_DTYPE_BF16]    = {"BF16", 2},
    [MIMO_DTYPE_F8_E4M3] = {"F8_E4M3", 1},
    [MIMO_DTYPE_U8]      = {"U8", 1},
    [MIMO_DTYPE_I8]      = {"I8", 1},
    [MIMO_DTYPE_I32]     = {"I32", 4},
    [MIMO_DTYPE_I64]     = {"I64", 8},
    [MIMO_DTYPE_BOOL]    = {"BOOL", 1},
};

const char *mimo_dtype_name(mimo_dtype d)
{
    if ((unsigned)d >= MIMO_DTYPE_COUNT)
        return "?";
    return dtype_table[d].name;
}

int mimo_dtype_from_name(const char *name, mimo_dtype *out)
{
    if (!name)
        return -1;
    for (int d = 0; d < MIMO_DTYPE_COUNT; d++)
        if (strcmp(name, dtype_table[d].name) == 0) {
            *out = (mimo_dtype)d;
            return 0;
        }
    return -1;
}

size_t mimo_dtype_size(mimo_dtype d)
{
    if ((unsigned)d >= MIMO_DTYPE_COUNT)
        return 0;
    return dtype_table[d].size;
}
