/* Placeholder until this command lands: it says so and exits non-zero. */
#include "cli.h"

#include <stdio.h>

int mimo_cmd_tokenize(int argc, char **argv)
{
    fprintf(stderr, "mimo-bench tokenize: not built yet\n");
    return MIMO_EXIT_UNAVAILABLE;
}
