/* Benchmark for the whole `provisioner simulate` path (issue target: at least 200,000 events/s on
 * one core for 10,000 users): JSON line -> event_from_json -> engine_apply with the in-memory store
 * -> command_to_json into a reused buffer. The stream is generated in memory so that disk and
 * stdout do not enter the figure: 10,000 CREATEs with full Streaming API payloads (Name and Address
 * nested as Salesforce sends them), then title, phone, department, manager and IsActive updates on
 * users drawn by a fixed LCG, a quarter of them in the whole-message form. Each timed run starts
 * from an empty store (a replay over a filled one would only count stale events); the best run is
 * reported. Also prints the JSON-parse-only rate. Prints figures; it does not pass or fail.
 * Usage: bench_simulate [settings.yaml] [runs] (default $PV_SOURCE_DIR/examples/settings.yaml or
 * an embedded copy, 5 runs). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "command/command.h"
#include "config/config.h"
#include "engine/engine.h"
#include "event/event.h"
#include "store/store.h"

#define N_USERS 10000
#define N_UPDATES 90000

/* examples/settings.yaml at the time of writing, for runs outside the source tree */
static const char embedded_settings[] =
    "company:\n"
    "  primary_domain: acme.com\n"
    "  additional_domains: [acme.io, acme-labs.com]\n"
    "options:\n"
    "  ignore_org_structure: false\n"
    "  keep_active: false\n"
    "  convert_email_domain: false\n"
    "  notify_managers: true\n"
    "  managers_can_toggle_data_capture: false\n"
    "assignments:\n"
    "  - name: Sales reps\n"
    "    filter: \"Department = 'Sales' AND Title LIKE '%Account Executive%'\"\n"
    "    seats: [recorder]\n"
    "    workspaces:\n"
    "      - workspace: Sales\n"
    "        permission_profile: Rep\n"
    "    data_capture: {web_conferences: true, telephony: true, emails: true, calendar: true}\n"
    "    update_mode: automatic\n"
    "  - name: Sales leadership\n"
    "    filter: \"Department = 'Sales' AND (Title LIKE '%VP%' OR Title LIKE '%Director%')\"\n"
    "    seats: [recorder, viewer]\n"
    "    workspaces:\n"
    "      - workspace: Sales\n"
    "        permission_profile: Manager\n"
    "      - workspace: Forecast\n"
    "        permission_profile: Manager\n"
    "    data_capture: {web_conferences: true, telephony: false, emails: true, calendar: true}\n"
    "    update_mode: automatic\n"
    "  - name: Customer Success\n"
    "    filter: \"Department IN ('Customer Success', 'Support')\"\n"
    "    seats: [recorder]\n"
    "    workspaces:\n"
    "      - workspace: Customer Success\n"
    "        permission_profile: CSM\n"
    "    data_capture: {web_conferences: true, telephony: false, emails: false, calendar: true}\n"
    "    update_mode: manual\n"
    "guards:\n"
    "  max_deactivations: 25\n"
    "  max_deactivation_share: 0.10\n"
    "  window_seconds: 3600\n";

static const char *const departments[] = {"Sales",   "Sales",       "Sales",    "Customer Success",
                                          "Support", "Engineering", "Marketing"};
static const char *const titles[] = {
    "Account Executive",        "Senior Account Executive", "VP Sales",         "Director, Sales",
    "Customer Success Manager", "Software Engineer",        "Marketing Manager"};
static const char *const domains[] = {"acme.com", "acme.com",      "acme.com",
                                      "acme.io",  "acme-labs.com", "gmail.com"};

typedef struct stream {
    buf text;      /* every line, NUL-separated */
    size_t *start; /* offsets of the lines in text */
    size_t *len;
    size_t n, cap;
} stream;

static uint64_t lcg_state = 88172645463325252ULL;

static unsigned rnd(unsigned n)
{
    lcg_state = lcg_state * 6364136223846793005ULL + 1442695040888963407ULL;
    return (unsigned)((lcg_state >> 33) % n);
}

static void user_id(char out[19], unsigned i) { snprintf(out, 19, "0055e%010uAAK", i); }

static void add_line(stream *s, const buf *line)
{
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 1024;
        s->start = xrealloc(s->start, s->cap * sizeof *s->start);
        s->len = xrealloc(s->len, s->cap * sizeof *s->len);
    }
    s->start[s->n] = s->text.len;
    s->len[s->n] = line->len;
    s->n++;
    buf_append(&s->text, line->data, line->len + 1); /* keeps the NUL as separator */
}

/* The header up to the end of changedFields; the caller adds the payload fields. */
static void header(buf *b, bool message_form, const char *id, const char *type, const char *changed,
                   unsigned seq)
{
    if (message_form) buf_puts(b, "{\"data\":{\"schema\":\"4Ldpvp0uKq4Xj_hiQ0vPrw\",\"payload\":");
    buf_printf(b,
               "{\"ChangeEventHeader\":{\"entityName\":\"User\",\"recordIds\":[\"%s\"],"
               "\"changeType\":\"%s\",\"changedFields\":[%s],\"nulledFields\":[],"
               "\"diffFields\":[],\"transactionKey\":\"0004b1a6-%08x-4c3e-9d5f-51b2a0c1%04x\","
               "\"sequenceNumber\":1,\"commitTimestamp\":%lld,\"commitNumber\":%u,"
               "\"commitUser\":\"0055e000000AdminAAC\",\"changeOrigin\":"
               "\"com/salesforce/api/soap/61.0;client=SfdcInternalAPI/\"}",
               id, type, changed, seq, seq & 0xffffu, 1764000000000LL + seq, 1000000u + seq);
}

static void footer(buf *b, bool message_form, unsigned seq)
{
    buf_putc(b, '}');
    if (message_form)
        buf_printf(b, ",\"event\":{\"replayId\":%u}},\"channel\":\"/data/UserChangeEvent\"}",
                   500000u + seq);
}

static void generate(stream *s)
{
    buf b;
    buf_init(&b);
    buf_init(&s->text);
    unsigned seq = 0;
    unsigned dept[N_USERS], title[N_USERS];
    bool active[N_USERS];
    for (unsigned i = 0; i < N_USERS; i++) {
        char id[19], mid[19];
        user_id(id, i);
        user_id(mid, i / 8);
        dept[i] = rnd(7);
        title[i] = rnd(7);
        active[i] = rnd(20) != 0;
        buf_reset(&b);
        bool mf = seq % 4 == 3;
        header(&b, mf, id, "CREATE", "", ++seq);
        buf_printf(&b,
                   ",\"Username\":\"user%u@acme.com\",\"Email\":\"first%u.last%u@%s\","
                   "\"IsActive\":%s,",
                   i, i, i, domains[rnd(6)], active[i] ? "true" : "false");
        if (i) buf_printf(&b, "\"ManagerId\":\"%s\",", mid);
        buf_printf(&b,
                   "\"Title\":\"%s\",\"Department\":\"%s\",\"Name\":{\"Salutation\":null,"
                   "\"FirstName\":\"First%u\",\"LastName\":\"Last\\u00e9%u\"},"
                   "\"CompanyName\":\"Acme\",\"Phone\":\"+1 415 555 %04u\","
                   "\"MobilePhone\":\"+1 415 555 %04u\",\"Extension\":\"%u\","
                   "\"TimeZoneSidKey\":\"America/Los_Angeles\",\"LocaleSidKey\":\"en_US\","
                   "\"LanguageLocaleKey\":\"en_US\",\"EmailEncodingKey\":\"UTF-8\","
                   "\"Alias\":\"u%u\",\"CommunityNickname\":\"user%u\","
                   "\"ProfileId\":\"00e5e000000Abc1AAC\",\"UserRoleId\":\"00E5e000000Xyz9EAC\","
                   "\"UserType\":\"Standard\",\"EmployeeNumber\":\"E%05u\","
                   "\"Address\":{\"Street\":\"1 Market St\",\"City\":\"San Francisco\","
                   "\"State\":\"CA\",\"PostalCode\":\"94105\",\"Country\":\"US\","
                   "\"StateCode\":null,\"CountryCode\":null},"
                   "\"CreatedDate\":\"2026-11-25T10:00:00.000Z\",\"CreatedById\":"
                   "\"0055e000000AdminAAC\",\"LastModifiedById\":\"0055e000000AdminAAC\","
                   "\"LastModifiedDate\":\"2026-11-25T10:00:00.000Z\","
                   "\"SystemModstamp\":\"2026-11-25T10:00:00.000Z\",\"ReceivesInfoEmails\":false,"
                   "\"ReceivesAdminInfoEmails\":false,\"ForecastEnabled\":true",
                   titles[title[i]], departments[dept[i]], i, i, i % 10000, (i * 7) % 10000,
                   100 + i % 900, i, i, i);
        footer(&b, mf, seq);
        add_line(s, &b);
    }
    for (unsigned k = 0; k < N_UPDATES; k++) {
        unsigned i = rnd(N_USERS), what = rnd(100);
        char id[19], mid[19];
        user_id(id, i);
        bool mf = seq % 4 == 3;
        buf_reset(&b);
        if (what < 35) {
            title[i] = rnd(7);
            header(&b, mf, id, "UPDATE", "\"Title\",\"LastModifiedDate\",\"SystemModstamp\"",
                   ++seq);
            buf_printf(&b, ",\"Title\":\"%s\"", titles[title[i]]);
        } else if (what < 60) {
            header(&b, mf, id, "UPDATE", "\"Phone\",\"LastModifiedDate\",\"SystemModstamp\"",
                   ++seq);
            buf_printf(&b, ",\"Phone\":\"+1 415 555 %04u\"", rnd(10000));
        } else if (what < 75) {
            dept[i] = rnd(7);
            header(&b, mf, id, "UPDATE", "\"Department\",\"LastModifiedDate\",\"SystemModstamp\"",
                   ++seq);
            buf_printf(&b, ",\"Department\":\"%s\"", departments[dept[i]]);
        } else if (what < 90) {
            user_id(mid, rnd(N_USERS / 8));
            header(&b, mf, id, "UPDATE", "\"ManagerId\",\"LastModifiedDate\",\"SystemModstamp\"",
                   ++seq);
            buf_printf(&b, ",\"ManagerId\":\"%s\"", mid);
        } else {
            active[i] = !active[i];
            header(&b, mf, id, "UPDATE", "\"IsActive\",\"LastModifiedDate\",\"SystemModstamp\"",
                   ++seq);
            buf_printf(&b, ",\"IsActive\":%s", active[i] ? "true" : "false");
        }
        buf_puts(&b, ",\"LastModifiedDate\":\"2026-11-26T09:30:00.000Z\","
                     "\"SystemModstamp\":\"2026-11-26T09:30:00.000Z\"");
        footer(&b, mf, seq);
        add_line(s, &b);
    }
    buf_free(&b);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

typedef struct sink {
    buf line;
    uint64_t commands, bytes;
} sink;

static void to_json(void *ctx, const command *c)
{
    sink *k = ctx;
    buf_reset(&k->line);
    command_to_json(c, &k->line);
    buf_putc(&k->line, '\n');
    k->commands++;
    k->bytes += k->line.len;
}

/* One simulate run over the stream from an empty store; returns the seconds it took. Not inlined,
 * so that a profiler can single the timed part out (callgrind --toggle-collect=run_simulate). */
__attribute__((noinline)) static double run_simulate(const config *cfg, const stream *s, sink *k,
                                                     bool *ok)
{
    store_mem *m = store_mem_new();
    engine_opts opts = {.with_why = true, .with_source = true}; /* simulate's defaults */
    engine *e = engine_new(cfg, store_mem_iface(m), &opts);
    engine_hooks h = {.ctx = k, .emit = to_json};
    arena mem;
    arena_init(&mem, 64 * 1024);
    k->commands = k->bytes = 0;
    *ok = true;
    double t0 = now_s();
    engine_start(e, &h);
    for (size_t i = 0; i < s->n; i++) {
        event ev;
        perr err;
        arena_reset(&mem);
        if (event_from_json(s->text.data + s->start[i], s->len[i], NULL, &mem, &ev, &err) < 0 ||
            engine_apply(e, &ev, &h, &err) < 0) {
            fprintf(stderr, "bench_simulate: line %zu: %s\n", i + 1, err.msg);
            *ok = false;
            break;
        }
    }
    double dt = now_s() - t0;
    arena_free(&mem);
    engine_free(e);
    store_mem_free(m);
    return dt;
}

__attribute__((noinline)) static double run_parse(const stream *s, uint64_t *fields)
{
    arena mem;
    arena_init(&mem, 64 * 1024);
    *fields = 0;
    double t0 = now_s();
    for (size_t i = 0; i < s->n; i++) {
        event ev;
        perr err;
        arena_reset(&mem);
        if (event_from_json(s->text.data + s->start[i], s->len[i], NULL, &mem, &ev, &err) == 0)
            *fields += ev.n_fields;
    }
    double dt = now_s() - t0;
    arena_free(&mem);
    return dt;
}

int main(int argc, char **argv)
{
    char path[4096] = "";
    if (argc > 1)
        snprintf(path, sizeof path, "%s", argv[1]);
    else if (getenv("PV_SOURCE_DIR"))
        snprintf(path, sizeof path, "%s/examples/settings.yaml", getenv("PV_SOURCE_DIR"));
    int runs = argc > 2 ? atoi(argv[2]) : 5;
    if (runs < 1) runs = 1;
    config *cfg;
    perr err;
    const char *from = path;
    if (path[0]) {
        if (config_load_file(path, &cfg, &err) < 0) {
            fprintf(stderr, "bench_simulate: %s\n", err.msg);
            return 1;
        }
    } else {
        from = "embedded examples/settings.yaml";
        if (config_load_string(embedded_settings, strlen(embedded_settings), from, &cfg, &err) <
            0) {
            fprintf(stderr, "bench_simulate: %s\n", err.msg);
            return 1;
        }
    }
    stream s = {0};
    generate(&s);
    sink k;
    buf_init(&k.line);

    double best = 0;
    for (int r = 0; r < runs; r++) {
        bool ok;
        double dt = run_simulate(cfg, &s, &k, &ok);
        if (!ok) return 1;
        if (r == 0 || dt < best) best = dt;
    }
    printf("simulate: %zu events, %d users: %.0f events/s (JSON in -> commands out)\n", s.n,
           N_USERS, (double)s.n / best);
    printf("  best of %d runs: %.3f s, %llu commands, %.1f MB of command JSON; settings: %s\n",
           runs, best, (unsigned long long)k.commands, (double)k.bytes / 1e6, from);

    double pbest = 0;
    uint64_t fields = 0;
    for (int r = 0; r < runs; r++) {
        double dt = run_parse(&s, &fields);
        if (r == 0 || dt < pbest) pbest = dt;
    }
    printf("parse: %zu events (%.1f MB): %.0f events/s (event_from_json only, %llu fields)\n", s.n,
           (double)s.text.len / 1e6, (double)s.n / pbest, (unsigned long long)fields);

    buf_free(&k.line);
    buf_free(&s.text);
    free(s.start);
    free(s.len);
    config_free(cfg);
    return 0;
}
