/* End to end, output side: a real `run` results file goes through `compare` (a file against itself
 * passes any gate) and `report` (index files, and plots when gnuplot is present). */
#include <criterion/criterion.h>

#include "cli.h"
#include "report.h"
#include "support.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static bool exists_nonempty(const char *dir, const char *name)
{
    char path[8800];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    struct stat st;
    return stat(path, &st) == 0 && st.st_size > 0;
}

Test(e2e_report, run_then_compare_and_report, .timeout = 600)
{
    char *dir = mimo_test_tmpdir();
    cr_assert_not_null(dir);
    char args[16384], *out = NULL;
    snprintf(args, sizeof args,
             "run --preset tiny --backend cpu --suite coding --requests 1 --max-new 4 --out %s/a.json", dir);
    int rc = mimo_test_run_bench(args, &out);
    if (rc == MIMO_EXIT_UNAVAILABLE) {
        mimo_test_rmtree(dir);
        free(dir);
        cr_skip_test("`run` is not available in this build: %s", out);
    }
    cr_assert_eq(rc, MIMO_EXIT_OK, "run failed (rc %d):\n%s", rc, out);
    free(out);

    snprintf(args, sizeof args, "compare %s/a.json %s/a.json --fail-if-slower 50 --out %s/cmp", dir, dir, dir);
    rc = mimo_test_run_bench(args, &out);
    cr_expect_eq(rc, MIMO_EXIT_OK, "a file compared with itself must pass (rc %d):\n%s", rc, out);
    cr_expect(strstr(out, "coding") != NULL, "the suite must appear in the table:\n%s", out);
    free(out);
    char cmp_dir[4200];
    snprintf(cmp_dir, sizeof cmp_dir, "%s/cmp", dir);
    cr_expect(exists_nonempty(cmp_dir, "compare.md"));
    cr_expect(exists_nonempty(cmp_dir, "compare.json"));

    snprintf(args, sizeof args, "report %s/a.json --out %s/report", dir, dir);
    rc = mimo_test_run_bench(args, &out);
    cr_expect_eq(rc, MIMO_EXIT_OK, "report failed (rc %d):\n%s", rc, out);
    free(out);
    char rep_dir[4200];
    snprintf(rep_dir, sizeof rep_dir, "%s/report", dir);
    cr_expect(exists_nonempty(rep_dir, "index.html"));
    cr_expect(exists_nonempty(rep_dir, "index.md"));
    char why[256];
    if (mimo_gnuplot_available(why, sizeof why)) {
        cr_expect(exists_nonempty(rep_dir, "decode_tps.png"), "decode TPS plot missing");
        cr_expect(exists_nonempty(rep_dir, "decode_tps.svg"), "decode TPS plot missing");
    }
    mimo_test_rmtree(dir);
    free(dir);
}
