/* Environment metadata for results files (see environment.h). */
#include "environment.h"
#include "gpu_info.h"
#include "results_json.h"
#include "mimo/build_info.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>

#ifndef MIMO_SOURCE_DIR
#define MIMO_SOURCE_DIR "."
#endif

static const char *source_dir(void)
{
    const char *env = getenv("MIMO_SOURCE_DIR");
    return env && *env ? env : MIMO_SOURCE_DIR;
}

/* First line of a command's stdout, trimmed; false when it fails or prints nothing. */
static bool command_line_output(const char *cmd, char *buf, size_t n)
{
    FILE *p = popen(cmd, "r");
    if (!p)
        return false;
    bool got = fgets(buf, (int)n, p) != NULL;
    /* drain so that the child is not killed by SIGPIPE mid-write */
    char sink[256];
    while (fgets(sink, sizeof sink, p))
        ;
    int status = pclose(p);
    if (!got || status != 0)
        return false;
    buf[strcspn(buf, "\r\n")] = '\0';
    return buf[0] != '\0';
}

bool mimo_env_git_commit(char *buf, size_t n)
{
    char cmd[4400], dirty[8];
    const char *dir = source_dir();
    if (strchr(dir, '\'') == NULL) {
        snprintf(cmd, sizeof cmd, "git -C '%s' rev-parse --short=12 HEAD 2>/dev/null", dir);
        if (command_line_output(cmd, buf, n)) {
            snprintf(cmd, sizeof cmd, "git -C '%s' status --porcelain --untracked-files=no 2>/dev/null | head -1", dir);
            if (command_line_output(cmd, dirty, sizeof dirty)) {
                size_t len = strlen(buf);
                if (len + 7 < n)
                    memcpy(buf + len, "-dirty", 7);
            }
            return true;
        }
    }
    buf[0] = '\0';
    return false;
}

static bool cpu_model(char *buf, size_t n)
{
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f)
        return false;
    char line[512];
    bool found = false;
    while (fgets(line, sizeof line, f)) {
        if (!strncmp(line, "model name", 10)) {
            const char *colon = strchr(line, ':');
            if (colon) {
                colon++;
                while (*colon == ' ' || *colon == '\t')
                    colon++;
                snprintf(buf, n, "%s", colon);
                buf[strcspn(buf, "\n")] = '\0';
                found = true;
                break;
            }
        }
    }
    fclose(f);
    return found;
}

static long long meminfo_total_bytes(void)
{
    FILE *f = fopen("/proc/meminfo", "r");
    if (!f)
        return -1;
    char line[256];
    long long kb = -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "MemTotal: %lld kB", &kb) == 1)
            break;
    fclose(f);
    return kb < 0 ? -1 : kb * 1024;
}

static bool os_release(char *buf, size_t n)
{
    FILE *f = fopen("/etc/os-release", "r");
    if (!f)
        return false;
    char line[512];
    bool found = false;
    while (fgets(line, sizeof line, f)) {
        if (!strncmp(line, "PRETTY_NAME=", 12)) {
            char *v = line + 12;
            v[strcspn(v, "\n")] = '\0';
            if (*v == '"') {
                v++;
                char *q = strrchr(v, '"');
                if (q)
                    *q = '\0';
            }
            snprintf(buf, n, "%s", v);
            found = true;
            break;
        }
    }
    fclose(f);
    return found;
}

static void set_string_or_null(json_t *o, const char *key, bool ok, const char *value, const char *reason)
{
    if (ok) {
        json_object_set_new(o, key, json_string(value));
    } else {
        char rk[128];
        snprintf(rk, sizeof rk, "%s_null_reason", key);
        json_object_set_new(o, key, json_null());
        json_object_set_new(o, rk, json_string(reason));
    }
}

static json_t *clocks_json(int device)
{
    json_t *c = json_object();
    int sm = 0, mem = 0;
    char why[256] = "";
    if (mimo_gpu_clocks(device, &sm, &mem, why, sizeof why)) {
        json_object_set_new(c, "sm_mhz", json_integer(sm));
        json_object_set_new(c, "memory_mhz", json_integer(mem));
    } else {
        mimo_json_set_number(c, "sm_mhz", NAN, why);
        mimo_json_set_number(c, "memory_mhz", NAN, why);
    }
    return c;
}

static void version_string(int v, char *buf, size_t n)
{
    snprintf(buf, n, "%d.%d", v / 1000, (v % 1000) / 10);
}

json_t *mimo_environment_collect(int device)
{
    json_t *env = json_object();
    char buf[512];

    bool ok = gethostname(buf, sizeof buf) == 0;
    buf[sizeof buf - 1] = '\0';
    set_string_or_null(env, "host", ok, buf, "gethostname failed");
    ok = cpu_model(buf, sizeof buf);
    set_string_or_null(env, "cpu", ok, buf, "no 'model name' in /proc/cpuinfo");
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    if (cores > 0)
        json_object_set_new(env, "cpu_cores", json_integer(cores));
    else
        mimo_json_set_number(env, "cpu_cores", NAN, "sysconf(_SC_NPROCESSORS_ONLN) failed");
    long long mem = meminfo_total_bytes();
    if (mem > 0)
        json_object_set_new(env, "memory_bytes", json_integer(mem));
    else
        mimo_json_set_number(env, "memory_bytes", NAN, "no MemTotal in /proc/meminfo");
    struct utsname u;
    if (uname(&u) == 0) {
        char kernel[600];
        snprintf(kernel, sizeof kernel, "%s %s %s", u.sysname, u.release, u.machine);
        json_object_set_new(env, "kernel", json_string(kernel));
    }
    ok = os_release(buf, sizeof buf);
    set_string_or_null(env, "os", ok, buf, "no PRETTY_NAME in /etc/os-release");
    json_object_set_new(env, "build_flags", json_string(mimo_build_flags()));

    json_t *gpu = json_object();
    char why[512] = "";
    mimo_gpu_info info;
    if (device < 0) {
        json_object_set_new(gpu, "available", json_false());
        json_object_set_new(gpu, "reason", json_string("the run used the cpu backend"));
    } else if (!mimo_gpu_query(device, &info, why, sizeof why)) {
        json_object_set_new(gpu, "available", json_false());
        json_object_set_new(gpu, "reason", json_string(why));
    } else {
        json_object_set_new(gpu, "available", json_true());
        json_object_set_new(gpu, "device", json_integer(device));
        json_object_set_new(gpu, "name", json_string(info.name));
        json_object_set_new(gpu, "uuid_hash", json_string(info.uuid_hash));
        json_object_set_new(gpu, "sm_count", json_integer(info.sm_count));
        json_object_set_new(gpu, "memory_bytes", json_integer((json_int_t)info.memory_bytes));
        snprintf(buf, sizeof buf, "%d.%d", info.compute_major, info.compute_minor);
        json_object_set_new(gpu, "compute_capability", json_string(buf));
        version_string(info.driver_version, buf, sizeof buf);
        json_object_set_new(gpu, "driver_cuda_version", json_string(buf));
        version_string(info.runtime_version, buf, sizeof buf);
        json_object_set_new(gpu, "cuda_runtime", json_string(buf));
        json_object_set_new(gpu, "max_sm_clock_khz", json_integer(info.sm_clock_khz));
        json_object_set_new(gpu, "max_memory_clock_khz", json_integer(info.memory_clock_khz));
        json_object_set_new(gpu, "memory_bus_width_bits", json_integer(info.memory_bus_width_bits));
        if (info.nccl_version) {
            int v = info.nccl_version;   /* NCCL_VERSION_CODE: major*10000 + minor*100 + patch */
            snprintf(buf, sizeof buf, "%d.%d.%d", v / 10000, (v / 100) % 100, v % 100);
            json_object_set_new(gpu, "nccl_version", json_string(buf));
        } else {
            set_string_or_null(gpu, "nccl_version", false, NULL, "libnccl.so.2 not loadable");
        }
        if (info.cupti_version)
            json_object_set_new(gpu, "cupti_api_version", json_integer(info.cupti_version));
        else
            set_string_or_null(gpu, "cupti_api_version", false, NULL, "cuptiGetVersion failed");
        json_object_set_new(gpu, "clocks_start", clocks_json(device));
    }
    json_object_set_new(env, "gpu", gpu);
    return env;
}

void mimo_environment_finish(json_t *env, int device)
{
    json_t *gpu = json_object_get(env, "gpu");
    if (device < 0 || !gpu || !json_is_true(json_object_get(gpu, "available")))
        return;
    json_object_set_new(gpu, "clocks_end", clocks_json(device));
}
