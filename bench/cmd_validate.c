/* mimo-bench validate FILE.json: checks a results file against results/schema.json. */
#include "cli.h"
#include "schema_check.h"

#include <stdio.h>
#include <string.h>

static const char usage[] = "mimo-bench validate FILE.json [...]   (schema: $MIMO_SCHEMA or $MIMO_SOURCE_DIR/results/schema.json)";

int mimo_cmd_validate(int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            printf("usage: %s\n", usage);
            return MIMO_EXIT_OK;
        }
    if (argc < 2)
        return mimo_usage_error("validate", usage, "a results file is required");
    int worst = MIMO_EXIT_OK;
    for (int i = 1; i < argc; i++) {
        if (argv[i][0] == '-' && argv[i][1] != '\0')
            return mimo_usage_error("validate", usage, "unknown flag '%s'", argv[i]);
    }
    for (int i = 1; i < argc; i++) {
        mimo_schema_report report;
        mimo_error err = {""};
        int rc = mimo_results_validate_file(argv[i], &report, &err);
        if (rc == 0) {
            printf("%s: valid (results schema version 1)\n", argv[i]);
            continue;
        }
        fprintf(stderr, "mimo-bench validate: %s\n", err.msg);
        if (report.n_errors > 1)
            fprintf(stderr, "all errors:\n%s", report.all);
        if (rc > worst)
            worst = rc;
    }
    return worst;
}
