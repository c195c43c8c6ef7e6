/* The pipeline's operations glue (issue 9, internal/pipeline/ops.c): health and readiness
 * reasons, the reimport request flag, counters published as deltas (across an engine replaced by
 * a settings reload), the settings file watch, and the delivery accounting R9.2 rests on. */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pipeline/ops.h"

static char *ready_text(pipeline_health *h, bool *ok)
{
    buf b;
    buf_init(&b);
    *ok = pipeline_health_ready(h, &b);
    char *s = strdup(b.data ? b.data : "");
    buf_free(&b);
    return s;
}

Test(pipeline_ops, readiness_names_every_missing_condition)
{
    pipeline_health h;
    pipeline_health_init(&h);
    cr_assert(pipeline_health_alive(&h), "alive from the start");
    bool ok;
    char *why = ready_text(&h, &ok);
    cr_assert_not(ok);
    cr_assert_str_eq(why, "not ready: settings not loaded\n"
                          "not ready: not a member of the consumer group yet\n"
                          "not ready: Redis unreachable or refusing commands\n");
    free(why);
    atomic_store(&h.settings_loaded, true);
    atomic_store(&h.joined, true);
    atomic_store(&h.redis_ok, true);
    why = ready_text(&h, &ok);
    cr_assert(ok, "%s", why);
    cr_assert_str_eq(why, "");
    free(why);
    atomic_store(&h.brokers_down, true);
    why = ready_text(&h, &ok);
    cr_assert_not(ok);
    cr_assert_str_eq(why, "not ready: Kafka brokers unreachable\n");
    free(why);
    atomic_store(&h.brokers_down, false);
    atomic_store(&h.stopping, true);
    why = ready_text(&h, &ok);
    cr_assert_str_eq(why, "not ready: shutting down\n");
    free(why);
    atomic_store(&h.stopping, false);
    /* a main loop that stopped turning is neither alive nor ready */
    atomic_store(&h.heartbeat_ms, pipeline_mono_ms() - 61000);
    cr_assert_not(pipeline_health_alive(&h));
    why = ready_text(&h, &ok);
    cr_assert_str_eq(why, "not ready: the main loop is stuck\n");
    free(why);
    pipeline_health_beat(&h);
    cr_assert(pipeline_health_alive(&h));
}

Test(pipeline_ops, one_reimport_at_a_time)
{
    pipeline_health h;
    pipeline_health_init(&h);
    cr_assert_eq(pipeline_take_reimport(&h), 0);
    cr_assert(pipeline_request_reimport(&h, true, false));
    cr_assert_not(pipeline_request_reimport(&h, false, false), "one is queued: 409");
    cr_assert_eq(pipeline_take_reimport(&h), PIPELINE_REIMPORT | PIPELINE_REIMPORT_DRY_RUN,
                 "the dry run, as asked");
    /* taken is running: a request while it runs is refused, not queued behind it */
    cr_assert_not(pipeline_request_reimport(&h, false, false), "one is running: 409");
    cr_assert_eq(pipeline_take_reimport(&h), 0, "taken once");
    pipeline_reimport_done(&h);
    cr_assert(pipeline_request_reimport(&h, false, true));
    cr_assert_eq(pipeline_take_reimport(&h), PIPELINE_REIMPORT | PIPELINE_REIMPORT_CONFIRM,
                 "a confirmation (R8.3)");
    pipeline_reimport_done(&h);

    /* one the main loop starts itself (schedule, GAP_OVERFLOW) runs the same way */
    cr_assert(pipeline_reimport_begin(&h));
    cr_assert_not(pipeline_request_reimport(&h, false, false), "a scheduled one runs: 409");
    cr_assert_eq(pipeline_take_reimport(&h), 0, "nothing queued");
    pipeline_reimport_done(&h);
    /* a request queued before it stays queued, and its end does not drop it */
    cr_assert(pipeline_request_reimport(&h, false, false));
    cr_assert_not(pipeline_reimport_begin(&h));
    pipeline_reimport_done(&h);
    cr_assert_eq(pipeline_take_reimport(&h), PIPELINE_REIMPORT);
    pipeline_reimport_done(&h);
    cr_assert(pipeline_request_reimport(&h, false, false), "idle again");
}

static double value_of(metrics *m, const char *series)
{
    buf b;
    buf_init(&b);
    metrics_render(m, &b);
    double v = -1;
    size_t n = strlen(series);
    for (const char *l = b.data; l && *l;) {
        if (strncmp(l, series, n) == 0 && l[n] == ' ') {
            v = strtod(l + n + 1, NULL);
            break;
        }
        const char *nl = strchr(l, '\n');
        l = nl ? nl + 1 : NULL;
    }
    buf_free(&b);
    return v;
}

Test(pipeline_ops, counters_are_published_as_deltas_across_an_engine_replacement)
{
    metrics *m = metrics_new();
    pipeline_metrics pm;
    pipeline_metrics_init(&pm, m);
    engine_stats es = {0};
    es.user_events = 100;
    es.duplicates = 10;
    es.stale = 5;
    es.gaps_unresolved = 5;
    es.stale_images = 4;
    es.skipped_entity = 3;
    es.out_of_scope[REASON_INACTIVE] = 20;
    es.held_deactivations = 2;
    store_redis_stats ss = {.round_trips = 4, .misses = 1, .old_form = 3, .users_written = 50};
    pipeline_stats ps = {.decode_errors = 2, .rebalances = 1};
    pipeline_metrics_publish(&pm, &es, &ss, &ps);
    pipeline_metrics_publish(&pm, &es, &ss, &ps); /* nothing new: nothing added */
    cr_assert_eq(value_of(m, "provisioner_decisions_total{reason=\"in_scope\"}"), 60);
    cr_assert_eq(value_of(m, "provisioner_decisions_total{reason=\"inactive_in_salesforce\"}"), 20);
    cr_assert_eq(value_of(m, "provisioner_events_skipped_total{reason=\"duplicate\"}"), 10);
    cr_assert_eq(value_of(m, "provisioner_events_skipped_total{reason=\"stale\"}"), 5);
    cr_assert_eq(value_of(m, "provisioner_events_skipped_total{reason=\"not_user\"}"), 3);
    cr_assert_eq(value_of(m, "provisioner_gap_events_unresolved_total"), 5);
    cr_assert_eq(value_of(m, "provisioner_stale_images_total"), 4);
    cr_assert_eq(value_of(m, "provisioner_redis_round_trips_total"), 4);
    cr_assert_eq(value_of(m, "provisioner_redis_users_written_total"), 50);
    cr_assert_eq(value_of(m, "provisioner_redis_old_form_reads_total"), 3);
    cr_assert_eq(value_of(m, "provisioner_decode_errors_total"), 2);
    cr_assert_eq(value_of(m, "provisioner_rebalances_total"), 1);
    cr_assert_eq(value_of(m, "provisioner_held_deactivations"), 2);

    es.user_events = 150; /* +50: 5 duplicates, 5 out of scope, 40 in scope */
    es.duplicates = 15;
    es.out_of_scope[REASON_INACTIVE] = 25;
    pipeline_metrics_publish(&pm, &es, NULL, NULL);
    cr_assert_eq(value_of(m, "provisioner_decisions_total{reason=\"in_scope\"}"), 100);
    cr_assert_eq(value_of(m, "provisioner_decisions_total{reason=\"inactive_in_salesforce\"}"), 25);
    cr_assert_eq(value_of(m, "provisioner_events_skipped_total{reason=\"duplicate\"}"), 15);

    /* a settings reload: the new engine counts from zero, the metrics keep counting up */
    pipeline_metrics_engine_replaced(&pm);
    engine_stats fresh = {0};
    fresh.user_events = 10;
    fresh.stale = 1;
    fresh.out_of_scope[REASON_MISSING_NAME] = 2;
    pipeline_metrics_publish(&pm, &fresh, NULL, NULL);
    cr_assert_eq(value_of(m, "provisioner_decisions_total{reason=\"in_scope\"}"), 107);
    cr_assert_eq(value_of(m, "provisioner_decisions_total{reason=\"missing_name\"}"), 2);
    cr_assert_eq(value_of(m, "provisioner_events_skipped_total{reason=\"stale\"}"), 6);
    cr_assert_eq(value_of(m, "provisioner_events_skipped_total{reason=\"duplicate\"}"), 15);
    fresh.held_deactivations = 1; /* the gauge counts every engine's holds, and a reimport's */
    pipeline_metrics_publish(&pm, &fresh, NULL, NULL);
    pipeline_metrics_held(&pm, 3);
    cr_assert_eq(value_of(m, "provisioner_held_deactivations"), 6);
    pipeline_metrics_free(&pm);
    metrics_free(m);
}

Test(pipeline_ops, every_family_is_there_from_the_start)
{
    metrics *m = metrics_new();
    pipeline_metrics pm;
    pipeline_metrics_init(&pm, m);
    buf b;
    buf_init(&b);
    metrics_render(m, &b);
    const char *names[] = {
        "# TYPE provisioner_events_consumed_total counter",
        "# TYPE provisioner_events_skipped_total counter",
        "# TYPE provisioner_commands_produced_total counter",
        "# TYPE provisioner_decisions_total counter",
        "# TYPE provisioner_decode_errors_total counter",
        "# TYPE provisioner_dead_lettered_total counter",
        "# TYPE provisioner_batch_size histogram",
        "# TYPE provisioner_end_to_end_latency_seconds histogram",
        "# TYPE provisioner_redis_latency_seconds histogram",
        "# TYPE provisioner_produce_latency_seconds histogram",
        "# TYPE provisioner_batch_step_seconds histogram",
        "provisioner_batch_step_seconds_count{step=\"hand_over\"} 0",
        "provisioner_batch_step_seconds_count{step=\"place\"} 0",
        "# TYPE provisioner_consumer_lag gauge",
        "# TYPE provisioner_held_deactivations gauge",
        "# TYPE provisioner_salesforce_api_used gauge",
        "# TYPE provisioner_salesforce_api_max gauge",
        "# TYPE provisioner_settings_reloads_total counter",
        "# TYPE provisioner_stale_images_total counter",
        "# TYPE provisioner_redis_round_trips_total counter",
        "provisioner_commands_produced_total{type=\"CREATE_USER\"} 0",
        "provisioner_events_consumed_total{change_type=\"GAP_OVERFLOW\"} 0",
        "provisioner_redis_latency_seconds_count{op=\"flush\"} 0",
        "provisioner_settings_reloads_total{result=\"error\"} 0",
    };
    for (size_t i = 0; i < sizeof names / sizeof *names; i++)
        cr_assert(strstr(b.data, names[i]), "missing: %s", names[i]);
    cr_assert_null(strstr(b.data, "provisioner_consumer_lag{"), "no partition owned yet");
    buf_free(&b);
    pipeline_metrics_free(&pm);
    metrics_free(m);
}

/* ---- the settings file watch */

static char dir[64];

static void write_to(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f, "%s", path);
    fputs(text, f);
    fclose(f);
}

static void make_dir(void)
{
    snprintf(dir, sizeof dir, "/tmp/pv-ops-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
}

static void remove_dir(void)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    cr_assert_eq(system(cmd), 0);
}

Test(pipeline_ops, an_edit_in_place_is_a_change_and_a_touch_is_not)
{
    make_dir();
    char path[128];
    snprintf(path, sizeof path, "%s/settings.yaml", dir);
    write_to(path, "company: a\n");
    settings_sig seen, now;
    settings_sig_read(path, &seen);
    cr_assert_not(settings_sig_changed(path, &seen, &now));
    /* a touch: stat moves, the bytes do not */
    struct timespec later[2] = {{.tv_sec = 2000000000}, {.tv_sec = 2000000000}};
    cr_assert_eq(utimensat(AT_FDCWD, path, later, 0), 0);
    cr_assert_not(settings_sig_changed(path, &seen, &now), "the same bytes");
    seen = now;
    /* the same size, other bytes, in place (same inode) */
    write_to(path, "company: b\n");
    cr_assert(settings_sig_changed(path, &seen, &now));
    seen = now;
    cr_assert_not(settings_sig_changed(path, &seen, &now));
    /* gone, then back */
    unlink(path);
    cr_assert(settings_sig_changed(path, &seen, &now));
    seen = now;
    write_to(path, "company: b\n");
    cr_assert(settings_sig_changed(path, &seen, &now));
    remove_dir();
}

/* Kubernetes' atomic writer: settings.yaml -> ..data/settings.yaml, ..data -> ..2024_01_01...; an
 * update writes a new timestamped directory and renames a new ..data symlink over the old one. */
Test(pipeline_ops, a_configmap_symlink_swap_is_a_change)
{
    make_dir();
    char a[128], b[128], link[128], tmp[128], path[128], target[256];
    snprintf(a, sizeof a, "%s/..v1", dir);
    snprintf(b, sizeof b, "%s/..v2", dir);
    cr_assert_eq(mkdir(a, 0700), 0);
    cr_assert_eq(mkdir(b, 0700), 0);
    snprintf(target, sizeof target, "%s/settings.yaml", a);
    write_to(target, "company: one\n");
    snprintf(target, sizeof target, "%s/settings.yaml", b);
    write_to(target, "company: two\n");
    snprintf(link, sizeof link, "%s/..data", dir);
    cr_assert_eq(symlink("..v1", link), 0);
    snprintf(path, sizeof path, "%s/settings.yaml", dir);
    cr_assert_eq(symlink("..data/settings.yaml", path), 0);
    settings_sig seen, now;
    settings_sig_read(path, &seen);
    cr_assert(seen.file_ok && seen.content_ok);
    cr_assert_not(settings_sig_changed(path, &seen, &now));
    snprintf(tmp, sizeof tmp, "%s/..data_tmp", dir);
    cr_assert_eq(symlink("..v2", tmp), 0);
    cr_assert_eq(rename(tmp, link), 0);
    cr_assert(settings_sig_changed(path, &seen, &now), "the swap must be seen");
    remove_dir();
}

/* ---- delivery accounting (R9.2: a state is stored only once its commands are acknowledged) */

static bool delivered(const pipeline_delivery *d) { return d->outstanding == 0; }

Test(pipeline_ops, a_set_is_delivered_when_every_report_is_in)
{
    pipeline_delivery d = {0};
    pipeline_delivery_expect(&d, 3);
    pipeline_delivery_report(&d, true);
    pipeline_delivery_report(&d, true);
    cr_assert_not(delivered(&d));
    pipeline_delivery_report(&d, true);
    cr_assert(delivered(&d));
    cr_assert_eq(d.failures, 0);
    pipeline_delivery_report(&d, true); /* one with nothing awaited does not wrap the count */
    cr_assert(delivered(&d));
    cr_assert_eq(d.outstanding, 0);
}

/* The bug e21231d fixed: two messages given up on by a flush that timed out; the slot's next set
 * has one message; a late success of an old one must not make the new one look delivered. */
Test(pipeline_ops, late_reports_of_a_set_given_up_on_do_not_deliver_the_next)
{
    pipeline_delivery d = {0};
    pipeline_delivery_expect(&d, 2);
    pipeline_delivery_restart(&d);
    cr_assert_eq(d.stale, 2);
    pipeline_delivery_expect(&d, 1);
    pipeline_delivery_report(&d, true); /* an old message's */
    cr_assert_not(delivered(&d), "a stale report must not count for the new message");
    pipeline_delivery_report(&d, true); /* the other old one's */
    cr_assert_not(delivered(&d));
    pipeline_delivery_report(&d, true); /* the new message's */
    cr_assert(delivered(&d));
    cr_assert_eq(d.stale, 0);
    cr_assert_eq(d.failures, 0);
}

Test(pipeline_ops, a_failure_among_stale_reports_fails_the_new_set)
{
    pipeline_delivery d = {0};
    pipeline_delivery_expect(&d, 1);
    pipeline_delivery_report(&d, false); /* the old set failed: counted, then started over */
    cr_assert_eq(d.failures, 1);
    pipeline_delivery_expect(&d, 1);
    pipeline_delivery_restart(&d); /* its message given up on */
    cr_assert_eq(d.failures, 0, "a new set starts without the old failures");
    pipeline_delivery_expect(&d, 1);
    pipeline_delivery_report(&d, false); /* which message it was for is unknown: the old one's */
    pipeline_delivery_report(&d, true);
    cr_assert(delivered(&d));
    cr_assert_eq(d.failures, 1, "the new message is read again, at worst once too often");
}

Test(pipeline_ops, messages_the_producer_refused_await_no_report)
{
    pipeline_delivery d = {0};
    pipeline_delivery_expect(&d, 4);
    pipeline_delivery_report(&d, true);
    pipeline_delivery_refused(&d, 2, true); /* the 3rd and 4th were refused */
    cr_assert_not(delivered(&d), "the 2nd message's report is still due");
    cr_assert_eq(d.failures, 2);
    pipeline_delivery_report(&d, true);
    cr_assert(delivered(&d));

    pipeline_delivery e = {0}; /* a refusal not counted as failed (a transaction's produce) */
    pipeline_delivery_expect(&e, 2);
    pipeline_delivery_refused(&e, 2, false);
    cr_assert(delivered(&e));
    cr_assert_eq(e.failures, 0);

    /* with stale reports still due, the reports to come are the stale ones and the messages
     * handed over: the refused ones leave the count exactly */
    pipeline_delivery f = {0};
    pipeline_delivery_expect(&f, 1);
    pipeline_delivery_restart(&f);
    pipeline_delivery_expect(&f, 3);
    pipeline_delivery_report(&f, true); /* the old message's, or the first new one's */
    pipeline_delivery_refused(&f, 2, true);
    cr_assert_not(delivered(&f));
    pipeline_delivery_report(&f, true);
    cr_assert(delivered(&f));
    cr_assert_eq(f.stale, 0);
}
