/* harness: what the integration tests share to run the real thing: Debian's redis-server on a free
 * loopback port, the dev broker (`provisioner dev-broker`), the service and the Kafka tools as
 * child processes with their output in files, all in a temp dir of the test's own.
 *
 * Every process started here is killed by its PID when the test ends, even when it fails:
 *   - call h_teardown from the suite's .fini:  TestSuite(x, .fini = h_teardown, .timeout = 120);
 *   - the harness also registers h_teardown with atexit (the Criterion worker exits normally);
 *   - each child gets PR_SET_PDEATHSIG = SIGKILL, for a worker that crashes or is killed on its
 *     timeout.
 * The temp dir is removed by h_teardown unless PV_KEEP_TMP=1 is in the environment (then its path
 * is printed, for reading the logs of a failed test).
 *
 * Functions that start something (h_redis_start, h_broker_start, h_proc_start) abort the test with
 * a clear message when they cannot; the others return what happened. The binary comes from
 * $PV_BINARY and the source tree from $PV_SOURCE_DIR, both set by ctest. */
#ifndef PROVISIONER_TEST_HARNESS_H
#define PROVISIONER_TEST_HARNESS_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* $PV_BINARY (the provisioner under test) and $PV_SOURCE_DIR; the test fails if unset. */
const char *h_pv_binary(void);
const char *h_source_dir(void);
/* "$PV_SOURCE_DIR/rel", valid until h_teardown. */
const char *h_source_path(const char *rel);

/* A TCP port that was free on 127.0.0.1 a moment ago. */
int h_free_port(void);
/* This test's temp dir (created on first use), and "tmpdir/name" (valid until h_teardown). */
const char *h_tmpdir(void);
const char *h_path(const char *name);

/* ---- child processes. stdout and stderr go to files in the temp dir; stdin is /dev/null. */
typedef struct h_proc {
    pid_t pid;
    char name[64];           /* basename of argv[0] and argv[1], for messages */
    char out_path[PATH_MAX]; /* captured stdout */
    char err_path[PATH_MAX]; /* captured stderr */
    bool done;               /* reaped: pid must not be signalled any more */
    int status;              /* when done: exit code, or 128 + signal */
} h_proc;

/* argv[0] is looked up in PATH. env: extra "NAME=value" entries set in the child, "NAME" alone
 * unsets one; NULL-terminated, or NULL for none. */
h_proc *h_proc_start(const char *const *argv, const char *const *env);
/* The same with stdout written to out_path instead of a file of the harness's choosing. */
h_proc *h_proc_start_to(const char *const *argv, const char *const *env, const char *out_path);
/* The same with a pipe on its stdin instead of /dev/null (a Unix socket pair, so that writing to
 * a process that has ended fails instead of raising SIGPIPE in the test). */
h_proc *h_proc_start_piped(const char *const *argv, const char *const *env);
/* Writes text to the stdin of a process from h_proc_start_piped (fails the test for any other);
 * false when it cannot be written (the process has ended or closed its stdin). */
bool h_proc_write_stdin(h_proc *p, const char *text);
/* Closes the process's stdin: it reads end of file. */
void h_proc_close_stdin(h_proc *p);
/* Waits up to timeout_s for the process to end: its exit code, 128 + signal, or -1 on timeout
 * (the process is left running). */
int h_proc_wait(h_proc *p, double timeout_s);
/* SIGTERM, then SIGKILL after grace_s: the exit status as h_proc_wait gives it. */
int h_proc_stop(h_proc *p, double grace_s);
/* Sends sig (if the process has not been reaped). */
void h_proc_signal(h_proc *p, int sig);
bool h_proc_alive(h_proc *p);
/* Captured output so far (malloc'd, never NULL). */
char *h_proc_stdout(const h_proc *p);
char *h_proc_stderr(const h_proc *p);
/* Waits until the captured stdout (or stderr) contains needle; false on timeout or when the
 * process ended without writing it. */
bool h_proc_wait_output(h_proc *p, bool from_stderr, const char *needle, double timeout_s);
/* Starts, waits up to timeout_s (then kills it and returns -1); *out (if given) keeps the proc
 * for its output. */
int h_run(const char *const *argv, const char *const *env, double timeout_s, h_proc **out);

/* ---- Redis: Debian's redis-server (or $PV_REDIS_SERVER), no persistence, on 127.0.0.1. */
typedef struct h_redis {
    int port;
    pid_t pid;
    char url[64]; /* redis://127.0.0.1:PORT */
    char dir[PATH_MAX];
    h_proc *proc;
} h_redis;

/* Starts a server and waits until it answers PING. */
void h_redis_start(h_redis *r);
/* SIGTERM and wait (it saves nothing: --save ''). */
void h_redis_stop(h_redis *r);
/* SIGKILL: a crash, for the "Redis down" tests. */
void h_redis_kill(h_redis *r);
/* Stops it if running, then starts it again on the same port (empty: nothing was saved). */
void h_redis_restart(h_redis *r);
/* Sends one command (inline protocol, e.g. "DBSIZE") and returns the first reply line without
 * CRLF (malloc'd), or NULL when Redis does not answer. */
char *h_redis_cmd(const h_redis *r, const char *command);

/* ---- the dev broker */
typedef struct h_broker {
    char bootstrap[256]; /* first stdout line: 127.0.0.1:PORT */
    h_proc *proc;
} h_broker;

/* `provisioner dev-broker --partitions N [--topics topics]` (partitions <= 0: its default). */
h_broker *h_broker_start(int partitions, const char *topics);
/* `provisioner dev-broker --control --brokers-count N ...` with a pipe on its stdin, for fault
 * injection (brokers_count <= 0: one). bootstrap lists every broker. */
h_broker *h_broker_start_control(int partitions, const char *topics, int brokers_count);
/* Sends one control command (kafka.h, kafka_mock_control: "error Produce
 * NOT_LEADER_FOR_PARTITION 5", "down 1", "leader out 0 2", "rtt 1 200", ...) to a broker from
 * h_broker_start_control and waits up to 10 s for its answer: "ok" or "error <why>" (malloc'd),
 * NULL when none came. */
char *h_broker_control(h_broker *b, const char *command);
/* SIGTERM; its exit status (0 when it stopped cleanly). */
int h_broker_stop(h_broker *b);

/* ---- the Kafka tools, through the binary. Both return the exit status (-1: timed out). */
int h_produce(const char *brokers, const char *topic, const char *events_file);
/* consume-commands --from-beginning [--count count] --timeout timeout_s, stdout to out_file
 * (count <= 0: until timeout_s without a message). */
int h_consume(const char *brokers, const char *topic, int count, double timeout_s,
              const char *out_file);

/* ---- files */
void h_write_file(const char *path, const char *text);
/* The file's content (malloc'd), "" when it does not exist. */
char *h_read_file(const char *path);
/* Non-empty lines. */
size_t h_count_lines(const char *path);

/* Kills every child still running (SIGKILL, by PID), reaps it, frees the harness's memory and
 * removes the temp dir. Idempotent; use as .fini. */
void h_teardown(void);

#endif
