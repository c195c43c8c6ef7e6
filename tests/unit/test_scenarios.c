/* The project's scenario runner: every folder under tests/scenarios (and ../shared/scenarios when
 * present) holds settings.yaml, events.jsonl and expected.jsonl; `provisioner simulate` must print
 * the expected commands in order (keys written in expected.jsonl compared, others free), each with
 * a command_id unique in the run and identical on a second run (R9.1). */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <dirent.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct scenario {
    char dir[512];
} scenario;

static int has_expected(const char *dir)
{
    char p[600];
    struct stat st;
    snprintf(p, sizeof p, "%s/expected.jsonl", dir);
    return stat(p, &st) == 0;
}

static int cmp_scn(const void *a, const void *b)
{
    return strcmp(((const scenario *)a)->dir, ((const scenario *)b)->dir);
}

#define MAX_SCENARIOS 2048

static size_t collect(const char *root, scenario *out, size_t n, size_t max)
{
    DIR *d = opendir(root);
    if (!d) return n;
    struct dirent *de;
    while ((de = readdir(d)) && n < max) {
        if (de->d_name[0] == '.') continue;
        snprintf(out[n].dir, sizeof out[n].dir, "%s/%s", root, de->d_name);
        if (has_expected(out[n].dir)) n++;
    }
    closedir(d);
    return n;
}

ParameterizedTestParameters(scenarios, simulate)
{
    static scenario all[MAX_SCENARIOS];
    const char *src = getenv("PV_SOURCE_DIR");
    if (!src) src = ".";
    char root[512];
    size_t n = 0;
    snprintf(root, sizeof root, "%s/tests/scenarios", src);
    n = collect(root, all, n, MAX_SCENARIOS);
    snprintf(root, sizeof root, "%s/../shared/scenarios", src);
    size_t own = n;
    n = collect(root, all, n, MAX_SCENARIOS);
    if (n == MAX_SCENARIOS) { /* no assertion here: fail the run rather than skip scenarios */
        fprintf(stderr, "test_scenarios: MAX_SCENARIOS (%d) reached: raise it\n", MAX_SCENARIOS);
        abort();
    }
    qsort(all, own, sizeof *all, cmp_scn);
    qsort(all + own, n - own, sizeof *all, cmp_scn);
    scenario *params = cr_malloc(sizeof(scenario) * (n ? n : 1));
    memcpy(params, all, sizeof(scenario) * n);
    return cr_make_param_array(scenario, params, n);
}

static json_t *run_simulate(const char *dir, char *err, size_t errsz)
{
    const char *bin = getenv("PV_BINARY");
    cr_assert(bin, "PV_BINARY is not set (run under ctest)");
    /* a scenario with relationship filters (R4.3) brings its Profile and UserRole tables */
    char lookups[700] = "";
    struct stat lst;
    snprintf(lookups, sizeof lookups, "%s/lookups.json", dir);
    bool has_lookups = stat(lookups, &lst) == 0;
    /* and a scenario of the R8.3 guard asks for it (simulate applies R1-R7 otherwise): the flags
     * of simulate.args, one line */
    char args_path[700], args[128] = "";
    snprintf(args_path, sizeof args_path, "%s/simulate.args", dir);
    FILE *af = fopen(args_path, "r");
    if (af) {
        if (!fgets(args, sizeof args, af)) args[0] = '\0';
        args[strcspn(args, "\r\n")] = '\0';
        fclose(af);
    }
    char cmd[2048];
    snprintf(cmd, sizeof cmd,
             "'%s' simulate --settings '%s/settings.yaml' --events '%s/events.jsonl'%s%s%s %s "
             "2>/dev/null",
             bin, dir, dir, has_lookups ? " --lookups '" : "", has_lookups ? lookups : "",
             has_lookups ? "'" : "", args);
    FILE *p = popen(cmd, "r");
    cr_assert(p);
    json_t *arr = json_array();
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    while ((len = getline(&line, &cap, p)) > 0) {
        json_error_t je;
        json_t *j = json_loads(line, 0, &je);
        if (!j)
            snprintf(err, errsz, "simulate printed a line that is not JSON: %s", line);
        else
            json_array_append_new(arr, j);
    }
    free(line);
    int st = pclose(p);
    if (st != 0) snprintf(err, errsz, "simulate exited with status %d", st);
    return arr;
}

static json_t *load_expected(const char *dir)
{
    char p[600];
    snprintf(p, sizeof p, "%s/expected.jsonl", dir);
    FILE *f = fopen(p, "r");
    cr_assert(f, "cannot open %s", p);
    json_t *arr = json_array();
    char *line = NULL;
    size_t cap = 0;
    while (getline(&line, &cap, f) > 0) {
        size_t k = strspn(line, " \t\r\n");
        if (!line[k]) continue;
        json_error_t je;
        json_t *j = json_loads(line, 0, &je);
        cr_assert(j, "%s: bad JSON: %s", p, je.text);
        json_array_append_new(arr, j);
    }
    free(line);
    fclose(f);
    return arr;
}

static char *types_of(json_t *arr)
{
    static char out[4096];
    out[0] = '\0';
    size_t i;
    json_t *c;
    json_array_foreach(arr, i, c)
    {
        const char *t = json_string_value(json_object_get(c, "type"));
        strncat(out, t ? t : "?", sizeof out - strlen(out) - 2);
        strncat(out, " ", sizeof out - strlen(out) - 1);
    }
    return out;
}

ParameterizedTest(scenario *s, scenarios, simulate, .timeout = 60)
{
    char err[1024] = "";
    json_t *expected = load_expected(s->dir);
    json_t *got = run_simulate(s->dir, err, sizeof err);
    cr_assert(err[0] == '\0', "%s: %s", s->dir, err);
    cr_assert_eq(json_array_size(got), json_array_size(expected),
                 "%s: %zu commands, expected %zu\n  got:      %s", s->dir, json_array_size(got),
                 json_array_size(expected), types_of(got));
    size_t i;
    json_t *e;
    json_array_foreach(expected, i, e)
    {
        json_t *g = json_array_get(got, i);
        const char *k;
        json_t *v;
        json_object_foreach(e, k, v)
        {
            json_t *gv = json_object_get(g, k);
            char *ge = gv ? json_dumps(gv, JSON_COMPACT | JSON_ENCODE_ANY) : strdup("<absent>");
            char *ee = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
            cr_assert(gv && json_equal(gv, v), "%s: command %zu (%s %s): %s = %s, expected %s",
                      s->dir, i, json_string_value(json_object_get(e, "type")),
                      json_string_value(json_object_get(e, "sf_user_id")), k, ge, ee);
            free(ge);
            free(ee);
        }
    }
    /* R9.1: ids present, unique in the run, the same on a second run */
    json_t *again = run_simulate(s->dir, err, sizeof err);
    json_t *seen = json_object();
    json_array_foreach(got, i, e)
    {
        const char *id = json_string_value(json_object_get(e, "command_id"));
        cr_assert(id && *id, "%s: command %zu has no command_id", s->dir, i);
        cr_assert_null(json_object_get(seen, id), "%s: command_id %s repeated", s->dir, id);
        json_object_set_new(seen, id, json_true());
        const char *id2 =
            json_string_value(json_object_get(json_array_get(again, i), "command_id"));
        cr_assert(id2 && strcmp(id, id2) == 0, "%s: command_id differs between runs", s->dir);
    }
    json_decref(seen);
    json_decref(again);
    json_decref(got);
    json_decref(expected);
}

/* simulate's warnings name the file and line of the event they are about (R1.3's gap, R1.4's
 * missing position: a second such event of the user reads as a duplicate). */
Test(simulate, warnings_name_the_events_line)
{
    const char *bin = getenv("PV_BINARY"), *src = getenv("PV_SOURCE_DIR");
    cr_assert(bin && src, "PV_BINARY and PV_SOURCE_DIR are not set (run under ctest)");
    char events[] = "/tmp/pv-warn-XXXXXX";
    int fd = mkstemp(events);
    cr_assert(fd >= 0);
    const char *text = "{\"ChangeEventHeader\":{\"entityName\":\"User\",\"recordIds\":[\"005A\"],"
                       "\"changeType\":\"CREATE\"},\"Email\":\"a@acme.com\",\"FirstName\":\"A\","
                       "\"LastName\":\"B\",\"IsActive\":true}\n"
                       "{\"ChangeEventHeader\":{\"entityName\":\"User\",\"recordIds\":[\"005B\"],"
                       "\"changeType\":\"GAP_UPDATE\",\"commitTimestamp\":5}}\n";
    cr_assert_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    char cmd[2048];
    snprintf(cmd, sizeof cmd,
             "'%s' simulate --settings '%s/examples/settings.yaml' --events '%s' "
             "2>&1 >/dev/null",
             bin, src, events);
    FILE *p = popen(cmd, "r");
    cr_assert(p);
    char out[4096];
    size_t n = fread(out, 1, sizeof out - 1, p);
    out[n] = '\0';
    pclose(p);
    unlink(events);
    char want[600];
    snprintf(want, sizeof want, "warning: %s:1: ChangeEventHeader.commitTimestamp is missing",
             events);
    cr_assert(strstr(out, want), "no warning for line 1: %s", out);
    snprintf(want, sizeof want, "warning: %s:2: R1.3: GAP_UPDATE for 005B", events);
    cr_assert(strstr(out, want), "the gap warning names no line: %s", out);
}
