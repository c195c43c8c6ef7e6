/* The integration harness itself: if Redis or a child process is not handled as harness.h says,
 * every integration test built on it would fail (or pass) for the wrong reason. */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

TestSuite(harness, .fini = h_teardown, .timeout = 120);

Test(harness, redis_starts_answers_dies_and_restarts_on_the_same_port)
{
    h_redis r;
    h_redis_start(&r);
    char want[64];
    snprintf(want, sizeof want, "redis://127.0.0.1:%d", r.port);
    cr_assert_str_eq(r.url, want);
    cr_assert_gt(r.pid, 0);

    char *reply = h_redis_cmd(&r, "SET pv:harness 1");
    cr_assert_str_eq(reply, "+OK");
    free(reply);

    h_redis_kill(&r);
    cr_assert_null(h_redis_cmd(&r, "PING"), "still answering after SIGKILL");
    cr_assert_eq(r.proc->status, 128 + SIGKILL);

    int port = r.port;
    pid_t old = r.pid;
    h_redis_restart(&r);
    cr_assert_eq(r.port, port);
    cr_assert_neq(r.pid, old);
    reply = h_redis_cmd(&r, "EXISTS pv:harness");
    cr_assert_str_eq(reply, ":0", "nothing survives a restart (no persistence)");
    free(reply);

    h_redis_stop(&r);
    cr_assert_eq(r.proc->status, 0, "redis-server exits 0 on SIGTERM");
}

Test(harness, processes_get_env_and_capture_output_and_exit_codes)
{
    setenv("PV_HARNESS_DROP", "x", 1);
    const char *argv[] = {
        "sh", "-c", "echo out:$PV_HARNESS_A:${PV_HARNESS_DROP-unset}; echo err >&2; exit 3", NULL};
    const char *env[] = {"PV_HARNESS_A=a b", "PV_HARNESS_DROP", NULL};
    h_proc *p = NULL;
    cr_assert_eq(h_run(argv, env, 10, &p), 3);
    char *out = h_proc_stdout(p), *err = h_proc_stderr(p);
    cr_assert_str_eq(out, "out:a b:unset\n");
    cr_assert_str_eq(err, "err\n");
    free(out);
    free(err);

    const char *missing[] = {"pv-no-such-program", NULL};
    cr_assert_eq(h_run(missing, NULL, 10, NULL), 127);
}

Test(harness, stop_escalates_to_sigkill_and_wait_times_out)
{
    const char *stubborn[] = {"sh", "-c", "trap '' TERM; echo ready; while :; do sleep 0.1; done",
                              NULL};
    h_proc *p = h_proc_start(stubborn, NULL);
    cr_assert(h_proc_wait_output(p, false, "ready", 10));
    cr_assert_eq(h_proc_wait(p, 0.2), -1);
    cr_assert(h_proc_alive(p));
    cr_assert_eq(h_proc_stop(p, 0.5), 128 + SIGKILL);
    cr_assert_not(h_proc_alive(p));
}

/* What teardown leaves behind: nothing. A child started here must be gone once it ran. */
static pid_t orphan;

static void check_orphan_gone(void)
{
    h_teardown();
    cr_assert_neq(orphan, 0);
    cr_assert_eq(kill(orphan, 0), -1, "pid %d survived teardown", (int)orphan);
}

Test(harness, teardown_kills_what_the_test_left_running, .fini = check_orphan_gone)
{
    const char *argv[] = {"sleep", "600", NULL};
    orphan = h_proc_start(argv, NULL)->pid;
    cr_assert(h_free_port() > 0);
    cr_assert(access(h_tmpdir(), W_OK) == 0);
}
