/* Placeholder until this command lands: it says so and exits non-zero. */
#include "cli.h"

#include <stdio.h>

int mimo_cmd_convert(int argc, char **argv)
{
    fprintf(stderr, "mimo-bench convert: not built yet\n");
    return MIMO_EXIT_UNAVAILABLE;
}
