/* harness: see harness.h. Only libc and Criterion here, since every integration test links it. */
#define _XOPEN_SOURCE 700 /* nftw */
#include "harness.h"

#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define H_MAX_PROCS 8192 /* every scenario through Kafka (PV_ALL_SCENARIOS=1) starts ~2,500 */

static h_proc *h_procs[H_MAX_PROCS];
static size_t h_n_procs;
static void **h_allocs; /* strings handed out until teardown */
static size_t h_n_allocs;
static char h_tmp[PATH_MAX];
static bool h_atexit_done;
static h_broker *h_brokers[256]; /* one per wave of eight scenarios, all kept until teardown */
static size_t h_n_brokers;
/* h_proc_start_piped: the write end of each such child's stdin */
static struct h_pipe {
    h_proc *proc;
    int fd;
} h_pipes[64];
static size_t h_n_pipes;

static double h_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void h_sleep(double s)
{
    struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {
    }
}

static char *h_keep(char *s)
{
    h_allocs = realloc(h_allocs, (h_n_allocs + 1) * sizeof *h_allocs);
    h_allocs[h_n_allocs++] = s;
    return s;
}

static char *h_fmt(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *h_fmt(const char *fmt, ...)
{
    va_list ap, ap2;
    va_start(ap, fmt);
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    cr_assert(n >= 0, "h_fmt: bad format");
    char *s = malloc((size_t)n + 1);
    cr_assert_not_null(s, "out of memory");
    vsnprintf(s, (size_t)n + 1, fmt, ap2);
    va_end(ap2);
    return h_keep(s);
}

/* snprintf into a path buffer; a path that does not fit fails the test instead of being cut. */
static void h_pathf(char *dst, size_t size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void h_pathf(char *dst, size_t size, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(dst, size, fmt, ap);
    va_end(ap);
    cr_assert(n >= 0 && (size_t)n < size, "path too long: %s...", dst);
}

static void h_register_exit(void)
{
    if (h_atexit_done) return;
    h_atexit_done = true;
    atexit(h_teardown);
}

const char *h_pv_binary(void)
{
    const char *b = getenv("PV_BINARY");
    if (!b || !*b) cr_assert_fail("PV_BINARY is not set (run the tests through ctest)");
    return b;
}

const char *h_source_dir(void)
{
    const char *s = getenv("PV_SOURCE_DIR");
    if (!s || !*s) cr_assert_fail("PV_SOURCE_DIR is not set (run the tests through ctest)");
    return s;
}

const char *h_source_path(const char *rel) { return h_fmt("%s/%s", h_source_dir(), rel); }

int h_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    cr_assert(fd >= 0, "socket: %s", strerror(errno));
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (bind(fd, (struct sockaddr *)&a, sizeof a) < 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) < 0) {
        int e = errno;
        close(fd);
        cr_assert_fail("no free loopback port: %s", strerror(e));
    }
    close(fd);
    return ntohs(a.sin_port);
}

const char *h_tmpdir(void)
{
    if (h_tmp[0]) return h_tmp;
    const char *base = getenv("TMPDIR");
    snprintf(h_tmp, sizeof h_tmp, "%s/pv-it-XXXXXX", base && *base ? base : "/tmp");
    if (!mkdtemp(h_tmp)) {
        int e = errno;
        h_tmp[0] = '\0';
        cr_assert_fail("mkdtemp: %s", strerror(e));
    }
    h_register_exit();
    return h_tmp;
}

const char *h_path(const char *name) { return h_fmt("%s/%s", h_tmpdir(), name); }

/* ---- files */
void h_write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f, "%s: %s", path, strerror(errno));
    fputs(text, f);
    cr_assert_eq(fclose(f), 0, "%s: %s", path, strerror(errno));
}

char *h_read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    size_t len = 0, cap = 4096;
    char *s = malloc(cap);
    cr_assert_not_null(s);
    if (f) {
        size_t got;
        while ((got = fread(s + len, 1, cap - len - 1, f)) > 0) {
            len += got;
            if (cap - len - 1 == 0) {
                cap *= 2;
                s = realloc(s, cap);
                cr_assert_not_null(s);
            }
        }
        fclose(f);
    }
    s[len] = '\0';
    return s;
}

size_t h_count_lines(const char *path)
{
    char *s = h_read_file(path);
    size_t n = 0;
    for (char *p = s; *p;) {
        char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        bool blank = true;
        for (size_t i = 0; i < len; i++)
            if (p[i] != ' ' && p[i] != '\t' && p[i] != '\r') blank = false;
        if (!blank) n++;
        p += len + (nl ? 1 : 0);
    }
    free(s);
    return n;
}

/* ---- processes */
static int h_decode_status(int st)
{
    if (WIFEXITED(st)) return WEXITSTATUS(st);
    if (WIFSIGNALED(st)) return 128 + WTERMSIG(st);
    return -1;
}

/* Reaps p if it has ended; true when it has. */
static bool h_reap(h_proc *p)
{
    if (p->done) return true;
    int st = 0;
    pid_t r = waitpid(p->pid, &st, WNOHANG);
    if (r == p->pid) {
        p->done = true;
        p->status = h_decode_status(st);
        return true;
    }
    if (r < 0 && errno == ECHILD) { /* reaped elsewhere: never signal that PID again */
        p->done = true;
        p->status = -1;
        return true;
    }
    return false;
}

/* argv[0] as execve needs it: a path, found in PATH the way a shell would. */
static char *h_which(const char *prog)
{
    if (strchr(prog, '/')) return h_fmt("%s", prog);
    const char *path = getenv("PATH");
    if (!path || !*path) path = "/usr/local/bin:/usr/bin:/bin";
    for (const char *d = path; *d;) {
        size_t len = strcspn(d, ":");
        char *cand = h_fmt("%.*s/%s", (int)len, len ? d : ".", prog);
        if (access(cand, X_OK) == 0) return cand;
        d += len + (d[len] == ':' ? 1 : 0);
    }
    return h_fmt("%s", prog);
}

/* The child's environment: ours with env's "NAME=value" set and "NAME" removed. Built before fork
 * because the test process may have threads (librdkafka's): the child may only make
 * async-signal-safe calls, and setenv allocates. */
static char **h_child_env(const char *const *env)
{
    extern char **environ;
    size_t n = 0, extra = 0;
    while (environ[n])
        n++;
    for (const char *const *v = env; v && *v; v++)
        extra++;
    char **out = calloc(n + extra + 1, sizeof *out);
    cr_assert_not_null(out);
    h_keep((char *)out);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        bool replaced = false;
        for (const char *const *v = env; v && *v; v++) {
            size_t nl = strcspn(*v, "=");
            if (strncmp(environ[i], *v, nl) == 0 && environ[i][nl] == '=') replaced = true;
        }
        if (!replaced) out[k++] = environ[i];
    }
    for (const char *const *v = env; v && *v; v++)
        if (strchr(*v, '=')) out[k++] = (char *)*v;
    out[k] = NULL;
    return out;
}

/* In the child, between fork and exec: only async-signal-safe calls, then exec or _exit. */
static void h_child(const char *path, const char *const *argv, char **envp, const char *out,
                    const char *err, pid_t parent, int in_fd)
{
    /* Dies with the test worker even if it crashes or is killed on a timeout. */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(126);
    /* The worker may block or ignore signals; the program under test must see SIGTERM. */
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    signal(SIGTERM, SIG_DFL);
    signal(SIGINT, SIG_DFL);
    signal(SIGPIPE, SIG_DFL);
    signal(SIGCHLD, SIG_DFL);
    int in = in_fd >= 0 ? in_fd : open("/dev/null", O_RDONLY);
    int o = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int e = open(err, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (in < 0 || o < 0 || e < 0) _exit(126);
    dup2(in, 0);
    dup2(o, 1);
    dup2(e, 2);
    execve(path, (char *const *)argv, envp);
    static const char msg[] = "harness: cannot execute the program (not found?)\n";
    ssize_t w = write(2, msg, sizeof msg - 1);
    (void)w;
    _exit(127);
}

/* in_fd: the child's stdin (-1: /dev/null); the parent closes it after the fork. */
static h_proc *h_spawn_in(const char *const *argv, const char *const *env, const char *out_path,
                          int in_fd)
{
    cr_assert(argv && argv[0], "h_proc_start: empty argv");
    cr_assert(h_n_procs < H_MAX_PROCS, "harness: too many processes in one test");
    h_register_exit();
    h_proc *p = calloc(1, sizeof *p);
    cr_assert_not_null(p);
    const char *base = strrchr(argv[0], '/');
    base = base ? base + 1 : argv[0];
    snprintf(p->name, sizeof p->name, "%s%s%s", base, argv[1] ? " " : "", argv[1] ? argv[1] : "");
    unsigned seq = (unsigned)h_n_procs;
    char tag[80];
    snprintf(tag, sizeof tag, "%02u-%s", seq, p->name);
    for (char *c = tag; *c; c++)
        if (*c == ' ' || *c == '/') *c = '-';
    if (out_path)
        h_pathf(p->out_path, sizeof p->out_path, "%s", out_path);
    else
        h_pathf(p->out_path, sizeof p->out_path, "%s/%s.out", h_tmpdir(), tag);
    h_pathf(p->err_path, sizeof p->err_path, "%s/%s.err", h_tmpdir(), tag);
    const char *path = h_which(argv[0]);
    char **envp = h_child_env(env);

    fflush(NULL); /* or the child's copy of stdio buffers is written twice */
    pid_t parent = getpid();
    pid_t pid = fork();
    cr_assert(pid >= 0, "fork: %s", strerror(errno));
    if (pid == 0) h_child(path, argv, envp, p->out_path, p->err_path, parent, in_fd);
    if (in_fd >= 0) close(in_fd);
    p->pid = pid;
    h_procs[h_n_procs++] = p;
    return p;
}

static h_proc *h_spawn(const char *const *argv, const char *const *env, const char *out_path)
{
    return h_spawn_in(argv, env, out_path, -1);
}

h_proc *h_proc_start(const char *const *argv, const char *const *env)
{
    return h_spawn(argv, env, NULL);
}

h_proc *h_proc_start_to(const char *const *argv, const char *const *env, const char *out_path)
{
    return h_spawn(argv, env, out_path);
}

h_proc *h_proc_start_piped(const char *const *argv, const char *const *env)
{
    cr_assert(h_n_pipes < sizeof h_pipes / sizeof h_pipes[0], "harness: too many piped processes");
    /* A socket pair rather than pipe(2): send(MSG_NOSIGNAL) to a child that has gone fails with
     * EPIPE instead of killing the test with SIGPIPE. Both ends close on exec; the child's end
     * is dup2'ed onto its stdin, which clears that. */
    int sv[2];
    cr_assert(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0, "socketpair: %s",
              strerror(errno));
    shutdown(sv[0], SHUT_RD); /* the test only writes; the child only reads */
    shutdown(sv[1], SHUT_WR);
    h_proc *p = h_spawn_in(argv, env, NULL, sv[1]);
    h_pipes[h_n_pipes++] = (struct h_pipe){.proc = p, .fd = sv[0]};
    return p;
}

static struct h_pipe *h_pipe_of(const h_proc *p)
{
    for (size_t i = 0; i < h_n_pipes; i++)
        if (h_pipes[i].proc == p) return &h_pipes[i];
    return NULL;
}

bool h_proc_write_stdin(h_proc *p, const char *text)
{
    struct h_pipe *hp = h_pipe_of(p);
    cr_assert_not_null(hp, "h_proc_write_stdin: %s was not started with h_proc_start_piped",
                       p->name);
    if (hp->fd < 0) return false;
    size_t len = strlen(text), done = 0;
    while (done < len) {
        ssize_t w = send(hp->fd, text + done, len - done, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return false;
        done += (size_t)w;
    }
    return true;
}

void h_proc_close_stdin(h_proc *p)
{
    struct h_pipe *hp = h_pipe_of(p);
    if (hp && hp->fd >= 0) {
        close(hp->fd);
        hp->fd = -1;
    }
}

int h_proc_wait(h_proc *p, double timeout_s)
{
    double until = h_now() + timeout_s;
    for (;;) {
        if (h_reap(p)) return p->status;
        if (h_now() >= until) return -1;
        h_sleep(0.01);
    }
}

void h_proc_signal(h_proc *p, int sig)
{
    if (!h_reap(p)) kill(p->pid, sig);
}

bool h_proc_alive(h_proc *p) { return !h_reap(p); }

int h_proc_stop(h_proc *p, double grace_s)
{
    h_proc_signal(p, SIGTERM);
    int st = h_proc_wait(p, grace_s);
    if (st >= 0) return st;
    h_proc_signal(p, SIGKILL);
    return h_proc_wait(p, 30);
}

char *h_proc_stdout(const h_proc *p) { return h_read_file(p->out_path); }
char *h_proc_stderr(const h_proc *p) { return h_read_file(p->err_path); }

bool h_proc_wait_output(h_proc *p, bool from_stderr, const char *needle, double timeout_s)
{
    double until = h_now() + timeout_s;
    for (;;) {
        bool ended = !h_proc_alive(p); /* read after this, so a last write is seen */
        char *s = h_read_file(from_stderr ? p->err_path : p->out_path);
        bool found = strstr(s, needle) != NULL;
        free(s);
        if (found) return true;
        if (ended || h_now() >= until) return false;
        h_sleep(0.02);
    }
}

int h_run(const char *const *argv, const char *const *env, double timeout_s, h_proc **out)
{
    h_proc *p = h_proc_start(argv, env);
    int st = h_proc_wait(p, timeout_s);
    if (st < 0) {
        h_proc_signal(p, SIGKILL);
        h_proc_wait(p, 30);
        st = -1;
    }
    if (out) *out = p;
    return st;
}

/* ---- Redis */
static int h_redis_connect(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return -1;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static char *h_redis_ask(int port, const char *command, int timeout_ms)
{
    int fd = h_redis_connect(port);
    if (fd < 0) return NULL;
    char req[1024];
    int n = snprintf(req, sizeof req, "%s\r\n", command);
    if (n < 0 || (size_t)n >= sizeof req || write(fd, req, (size_t)n) != n) {
        close(fd);
        return NULL;
    }
    char line[4096];
    size_t len = 0;
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    while (len + 1 < sizeof line && !memchr(line, '\n', len)) {
        if (poll(&pfd, 1, timeout_ms) <= 0) break;
        ssize_t got = read(fd, line + len, sizeof line - 1 - len);
        if (got <= 0) break;
        len += (size_t)got;
    }
    close(fd);
    char *nl = memchr(line, '\n', len);
    if (!nl) return NULL;
    size_t l = (size_t)(nl - line);
    if (l && line[l - 1] == '\r') l--;
    char *s = malloc(l + 1);
    memcpy(s, line, l);
    s[l] = '\0';
    return s;
}

char *h_redis_cmd(const h_redis *r, const char *command)
{
    return h_redis_ask(r->port, command, 5000);
}

/* Starts redis-server on r->port; false when it exited (port taken) before answering. */
static bool h_redis_spawn(h_redis *r)
{
    const char *server = getenv("PV_REDIS_SERVER");
    char port[16];
    snprintf(port, sizeof port, "%d", r->port);
    h_pathf(r->dir, sizeof r->dir, "%s/redis-%d", h_tmpdir(), r->port);
    mkdir(r->dir, 0755);
    const char *argv[] = {server && *server ? server : "redis-server",
                          "--port",
                          port,
                          "--bind",
                          "127.0.0.1",
                          "--save",
                          "",
                          "--appendonly",
                          "no",
                          "--dir",
                          r->dir,
                          "--daemonize",
                          "no",
                          NULL};
    r->proc = h_proc_start(argv, NULL);
    r->pid = r->proc->pid;
    snprintf(r->url, sizeof r->url, "redis://127.0.0.1:%d", r->port);
    double until = h_now() + 15;
    while (h_now() < until) {
        char *pong = h_redis_ask(r->port, "PING", 500);
        bool ok = pong && strcmp(pong, "+PONG") == 0;
        free(pong);
        if (ok) return true;
        if (!h_proc_alive(r->proc)) break;
        h_sleep(0.02);
    }
    if (h_proc_alive(r->proc)) {
        h_proc_stop(r->proc, 2);
        cr_assert_fail("redis-server on port %d did not answer PING within 15 s", r->port);
    }
    if (r->proc->status == 127)
        cr_assert_fail("redis-server not found: apt-get install redis-server (or set "
                       "PV_REDIS_SERVER)");
    return false;
}

void h_redis_start(h_redis *r)
{
    memset(r, 0, sizeof *r);
    /* Another test may grab the free port between our probe and redis's bind: try a few. */
    for (int attempt = 0; attempt < 5; attempt++) {
        r->port = h_free_port();
        if (h_redis_spawn(r)) return;
    }
    char *err = h_proc_stderr(r->proc), *out = h_proc_stdout(r->proc);
    cr_assert_fail("redis-server would not start (exit %d): %s%s", r->proc->status, out, err);
}

void h_redis_stop(h_redis *r)
{
    if (r->proc) h_proc_stop(r->proc, 10);
}

void h_redis_kill(h_redis *r)
{
    if (!r->proc) return;
    h_proc_signal(r->proc, SIGKILL);
    h_proc_wait(r->proc, 10);
}

void h_redis_restart(h_redis *r)
{
    h_redis_stop(r);
    /* The old listener is closed once the process is reaped; SO_REUSEADDR (redis sets it) lets
     * the new one bind at once. Retry briefly in case the kernel is slower. */
    for (int attempt = 0; attempt < 20; attempt++) {
        if (h_redis_spawn(r)) return;
        h_sleep(0.1);
    }
    cr_assert_fail("redis-server would not restart on port %d", r->port);
}

/* ---- the dev broker */
/* brokers_count 0: a plain dev broker; > 0: with --control on a piped stdin and that many
 * brokers. */
static h_broker *h_broker_spawn(int partitions, const char *topics, int brokers_count)
{
    char parts[16], nb[16];
    snprintf(parts, sizeof parts, "%d", partitions);
    snprintf(nb, sizeof nb, "%d", brokers_count > 0 ? brokers_count : 1);
    const char *argv[12];
    size_t n = 0;
    argv[n++] = h_pv_binary();
    argv[n++] = "dev-broker";
    if (brokers_count > 0) argv[n++] = "--control", argv[n++] = "--brokers-count", argv[n++] = nb;
    if (partitions > 0) argv[n++] = "--partitions", argv[n++] = parts;
    if (topics && *topics) argv[n++] = "--topics", argv[n++] = topics;
    argv[n] = NULL;
    h_broker *b = calloc(1, sizeof *b);
    cr_assert_not_null(b);
    cr_assert(h_n_brokers < sizeof h_brokers / sizeof h_brokers[0]);
    h_brokers[h_n_brokers++] = b;
    b->proc = brokers_count > 0 ? h_proc_start_piped(argv, NULL) : h_proc_start(argv, NULL);
    if (!h_proc_wait_output(b->proc, false, "\n", 60)) {
        char *err = h_proc_stderr(b->proc);
        bool alive = h_proc_alive(b->proc);
        h_proc_stop(b->proc, 5);
        cr_assert_fail("dev-broker printed no address (%s): %s",
                       alive ? "still running after 60 s" : "it exited", err);
    }
    char *out = h_proc_stdout(b->proc);
    size_t len = strcspn(out, "\r\n");
    cr_assert(len > 0 && len < sizeof b->bootstrap, "dev-broker's first line is unusable: '%s'",
              out);
    memcpy(b->bootstrap, out, len);
    b->bootstrap[len] = '\0';
    free(out);
    return b;
}

h_broker *h_broker_start(int partitions, const char *topics)
{
    return h_broker_spawn(partitions, topics, 0);
}

h_broker *h_broker_start_control(int partitions, const char *topics, int brokers_count)
{
    return h_broker_spawn(partitions, topics, brokers_count > 0 ? brokers_count : 1);
}

/* Line k (0-based) of text, malloc'd; NULL when there are not that many complete lines. */
static char *h_line_at(const char *text, size_t k)
{
    const char *p = text;
    for (size_t i = 0; i < k; i++) {
        const char *nl = strchr(p, '\n');
        if (!nl) return NULL;
        p = nl + 1;
    }
    const char *nl = strchr(p, '\n');
    if (!nl) return NULL;
    size_t len = (size_t)(nl - p);
    if (len && p[len - 1] == '\r') len--;
    char *s = malloc(len + 1);
    cr_assert_not_null(s);
    memcpy(s, p, len);
    s[len] = '\0';
    return s;
}

char *h_broker_control(h_broker *b, const char *command)
{
    /* Answers come one line each, in order, after the address line: the answer to this
     * command is the line after the last one there now. */
    char *before = h_proc_stdout(b->proc);
    size_t lines = 0;
    for (const char *c = before; *c; c++)
        if (*c == '\n') lines++;
    free(before);
    char line[1024];
    snprintf(line, sizeof line, "%s\n", command);
    if (!h_proc_write_stdin(b->proc, line)) return NULL;
    double until = h_now() + 10;
    for (;;) {
        char *out = h_proc_stdout(b->proc);
        char *answer = h_line_at(out, lines);
        free(out);
        if (answer) return answer;
        if (!h_proc_alive(b->proc) || h_now() >= until) return NULL;
        h_sleep(0.01);
    }
}

int h_broker_stop(h_broker *b) { return h_proc_stop(b->proc, 10); }

/* ---- the Kafka tools */
int h_produce(const char *brokers, const char *topic, const char *events_file)
{
    const char *argv[] = {h_pv_binary(), "produce-events", "--brokers", brokers, "--topic",
                          topic,         "--events",       events_file, NULL};
    h_proc *p = NULL;
    int st = h_run(argv, NULL, 120, &p);
    if (st != 0) {
        char *err = h_proc_stderr(p);
        cr_log_error("produce-events exited %d: %s", st, err);
        free(err);
    }
    return st;
}

int h_consume(const char *brokers, const char *topic, int count, double timeout_s,
              const char *out_file)
{
    char cnt[16], to[32];
    snprintf(cnt, sizeof cnt, "%d", count);
    snprintf(to, sizeof to, "%g", timeout_s);
    const char *argv[12];
    size_t n = 0;
    argv[n++] = h_pv_binary();
    argv[n++] = "consume-commands";
    argv[n++] = "--brokers";
    argv[n++] = brokers;
    argv[n++] = "--topic";
    argv[n++] = topic;
    argv[n++] = "--from-beginning";
    if (count > 0) argv[n++] = "--count", argv[n++] = cnt;
    argv[n++] = "--timeout";
    argv[n++] = to;
    argv[n] = NULL;
    h_proc *p = h_proc_start_to(argv, NULL, out_file);
    /* The idle timeout restarts with every message, so allow for a slow trickle. */
    int st = h_proc_wait(p, timeout_s * 10 + 120);
    if (st < 0) {
        h_proc_signal(p, SIGKILL);
        h_proc_wait(p, 30);
    }
    if (st != 0) {
        char *err = h_proc_stderr(p);
        cr_log_error("consume-commands exited %d: %s", st, err);
        free(err);
    }
    return st;
}

/* ---- teardown */
static int h_rm(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

void h_teardown(void)
{
    /* SIGKILL by PID, only for processes not reaped yet (a reaped PID may belong to someone
     * else by now). */
    for (size_t i = 0; i < h_n_procs; i++)
        if (!h_reap(h_procs[i])) kill(h_procs[i]->pid, SIGKILL);
    for (size_t i = 0; i < h_n_procs; i++) {
        h_proc *p = h_procs[i];
        for (int tries = 0; !p->done && tries < 500; tries++) {
            if (!h_reap(p)) h_sleep(0.01);
        }
        free(p);
    }
    h_n_procs = 0;
    for (size_t i = 0; i < h_n_pipes; i++)
        if (h_pipes[i].fd >= 0) close(h_pipes[i].fd);
    h_n_pipes = 0;
    for (size_t i = 0; i < h_n_brokers; i++)
        free(h_brokers[i]);
    h_n_brokers = 0;
    for (size_t i = 0; i < h_n_allocs; i++)
        free(h_allocs[i]);
    free(h_allocs);
    h_allocs = NULL;
    h_n_allocs = 0;
    if (h_tmp[0]) {
        const char *keep = getenv("PV_KEEP_TMP");
        if (keep && *keep && strcmp(keep, "0") != 0)
            fprintf(stderr, "harness: kept %s\n", h_tmp);
        else
            nftw(h_tmp, h_rm, 16, FTW_DEPTH | FTW_PHYS);
        h_tmp[0] = '\0';
    }
}
