/* provisioner reimport [--dry-run] [--confirm]: "Reimport users now" (R8), and
 * provisioner held: the deactivations the guard holds (R8.3). */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "codec/codec.h"
#include "commands.h"
#include "config/config.h"
#include "kafka/kafka.h"
#include "log/log.h"
#include "reimport/reimport.h"

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
}

typedef struct out_ctx {
    bool dry_run;
    rd_kafka_t *producer;
    codec_command_encoder *enc;
    const char *topic;
    store_redis *store;
    buf line;
    uint64_t failures;
    char last_error[256];
} out_ctx;

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void)rk;
    out_ctx *o = opaque;
    const char *why;
    if (!kafka_delivered(m, &why)) {
        o->failures++;
        snprintf(o->last_error, sizeof o->last_error, "%s", why);
    }
}

static void emit(void *ctx, const command *c)
{
    out_ctx *o = ctx;
    buf_reset(&o->line);
    if (o->dry_run) { /* the plan, as JSON lines on stdout */
        command_to_json(c, &o->line);
        buf_putc(&o->line, '\n');
        fwrite(o->line.data, 1, o->line.len, stdout);
        return;
    }
    codec_error ce;
    if (codec_encode_command(o->enc, c, &o->line, &ce) < 0) {
        log_msg(LOG_ERROR, "cannot encode command", "error", ce.msg, NULL);
        o->failures++;
        return;
    }
    const char *key = c->sf_user_id; /* empty for COMPANY_SETTINGS (interfaces.md) */
    for (;;) {
        rd_kafka_resp_err_t e = rd_kafka_producev(
            o->producer, RD_KAFKA_V_TOPIC(o->topic),
            RD_KAFKA_V_PARTITION(kafka_command_partition(key, strlen(key))),
            RD_KAFKA_V_KEY(key, strlen(key)), RD_KAFKA_V_VALUE(o->line.data, o->line.len),
            RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
            RD_KAFKA_V_HEADER("type", command_type_name(c->type), -1),
            RD_KAFKA_V_HEADER("command_id", c->id, -1), RD_KAFKA_V_END);
        if (e == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
            rd_kafka_poll(o->producer, 50);
            continue;
        }
        if (e) {
            o->failures++;
            snprintf(o->last_error, sizeof o->last_error, "%s", rd_kafka_err2str(e));
        }
        break;
    }
}

/* R9.2: a chunk's states are written only after Kafka has every one of its commands. */
static int sync_out(void *ctx, perr *err)
{
    out_ctx *o = ctx;
    if (o->dry_run) return 0;
    while (rd_kafka_outq_len(o->producer) > 0)
        rd_kafka_flush(o->producer, 1000);
    if (o->failures)
        return perr_set(err, "%llu commands were not delivered: %s",
                        (unsigned long long)o->failures, o->last_error);
    return 0;
}

/* A chunk's states, written again while Redis is away or refuses for a while, as the service
 * does (R9.2): its commands are out, so giving up would leave them without their states. An
 * error no retry mends (NOPERM, WRONGTYPE, ...) ends the reimport at once (exit 1), as does
 * Ctrl-C; the next reimport then decides that chunk's users again. The links another instance
 * raced with are left to the store's check (c). */
static int flush_retry(void *ctx, perr *err)
{
    out_ctx *o = ctx;
    long backoff = 100;
    bool logged = false;
    for (;;) {
        if (store_redis_flush(o->store, NULL, err) == 0) {
            if (logged) log_msg(LOG_INFO, "redis is back", "step", "write reimport state", NULL);
            return 0;
        }
        if (!store_redis_flush_may_pass(o->store, err)) return -1;
        if (!logged)
            log_msg(LOG_ERROR, "redis unavailable; retrying (Ctrl-C stops)", "step",
                    "write reimport state", "error", err->msg, NULL);
        logged = true;
        for (long waited = 0; waited < backoff; waited += 100) {
            if (stop_requested)
                return perr_set(err, "stopped while Redis was unavailable: this chunk's states "
                                     "were not written (the next reimport decides them again)");
            nanosleep(&(struct timespec){0, 100 * 1000000L}, NULL);
        }
        backoff = backoff * 2 > 5000 ? 5000 : backoff * 2;
    }
}

static int open_state(const cli_args *a, config **cfg, store_redis **store)
{
    perr err;
    if (!cli_str(a, "settings")) {
        fprintf(stderr, "provisioner: --settings (PROVISIONER_SETTINGS) is required\n");
        return EXIT_USAGE;
    }
    if (config_load_file(cli_str(a, "settings"), cfg, &err) < 0) {
        fprintf(stderr, "provisioner: %s\n", err.msg);
        return EXIT_USAGE;
    }
    store_redis_opts so = {.url = cli_str(a, "redis"), .prefix = cli_str(a, "redis-prefix")};
    if (store_redis_open(&so, store, &err) < 0) {
        fprintf(stderr, "provisioner: %s\n", err.msg);
        config_free(*cfg);
        return EXIT_RUNTIME;
    }
    return EXIT_OK;
}

int cmd_reimport(int argc, char **argv)
{
    cli_args a;
    int code;
    if (cmd_parse(C_REIMPORT, "provisioner reimport [--dry-run] [--confirm] [options]",
                  "\"Reimport users now\" (R8): reads every User from Salesforce and applies each "
                  "as a full image;\nusers known here but gone from Salesforce are deactivated "
                  "(deleted_in_salesforce); automatic\nassignments' settings are re-applied where "
                  "Gong has others. --dry-run prints the commands as\nJSON lines and changes "
                  "nothing. A mass deactivation over the settings' guards is held until\n"
                  "--confirm (R8.3). Beside a running service, POST /reimport (?confirm=1) to it "
                  "instead:\nthis command's writes can race with its batches.",
                  argc, argv, &a, &code) < 0)
        return code;
    bool dry = cli_bool(&a, "dry-run");
    if (!dry && !cli_str(&a, "brokers")) {
        fprintf(stderr, "provisioner: reimport: --brokers is required (or --dry-run)\n");
        cli_free(&a);
        return EXIT_USAGE;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sf_client *sf = NULL;
    int sf_rc = cmd_salesforce_client(&a, &stop_requested, &sf);
    if (sf_rc < 0 || !sf) { /* a client that could not be made has said why */
        if (sf_rc == 0) fprintf(stderr, "provisioner: reimport: --salesforce-url is required\n");
        cli_free(&a);
        return EXIT_USAGE;
    }
    config *cfg = NULL;
    store_redis *store = NULL;
    if ((code = open_state(&a, &cfg, &store)) != EXIT_OK) {
        sf_client_free(sf);
        cli_free(&a);
        return code;
    }
    out_ctx out = {.dry_run = dry, .topic = cli_str(&a, "output-topic"), .store = store};
    buf_init(&out.line);
    perr err;
    codec_format fmt = CODEC_FORMAT_JSON;
    codec_format_parse(cli_str(&a, "output-format"), &fmt);
    if (!dry) {
        codec_error ce;
        codec_command_encoder_config ec = {
            .format = fmt, .registry = {.url = cli_str(&a, "schema-registry")}, .topic = out.topic};
        rd_kafka_conf_t *conf =
            kafka_conf_new(cli_str(&a, "brokers"), a.kafka_props, a.n_kafka_props, &err);
        char errstr[512];
        if (codec_command_encoder_new(&ec, &out.enc, &ce) < 0) {
            fprintf(stderr, "provisioner: %s\n", ce.msg);
            code = EXIT_USAGE;
        } else if (!conf || kafka_conf_set(conf, "enable.idempotence", "true", &err) < 0) {
            fprintf(stderr, "provisioner: %s\n", err.msg);
            code = EXIT_USAGE;
        } else {
            rd_kafka_conf_set_opaque(conf, &out);
            rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
            out.producer = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
            if (!out.producer) {
                fprintf(stderr, "provisioner: producer: %s\n", errstr);
                code = EXIT_RUNTIME;
            }
            conf = NULL;
        }
        if (conf) rd_kafka_conf_destroy(conf);
    }
    if (code == EXIT_OK) {
        reimport_opts ro = {.sf = sf,
                            .store = store,
                            .cfg = cfg,
                            .emit = emit,
                            .sync = sync_out,
                            .flush = flush_retry,
                            .ctx = &out,
                            .dry_run = dry,
                            .confirm = cli_bool(&a, "confirm"),
                            /* in ms, as the service's: two reimports within a second are two
                             * positions (R1.4) and two sets of command ids (R9.1) */
                            .now_ms = wall_ms(),
                            .stop = &stop_requested,
                            .progress = isatty(STDERR_FILENO) == 1};
        reimport_result res;
        if (reimport_run(&ro, &res, &err) < 0) {
            log_msg(LOG_ERROR, "reimport failed", "error", err.msg, NULL);
            code = EXIT_RUNTIME;
        } else {
            fprintf(
                stderr,
                "reimport%s: %llu users in Salesforce, %llu known here (%llu active in "
                "Gong), %llu not newer than their last event, %llu gone from Salesforce; "
                "commands: %llu CREATE_USER, %llu UPDATE_USER, %llu REACTIVATE_USER, %llu "
                "APPLY_SETTINGS, %llu SET_MANAGER, %llu DEACTIVATE_USER; %llu deactivations "
                "held%s\n",
                dry ? " (dry run: nothing changed)" : "", (unsigned long long)res.salesforce_users,
                (unsigned long long)res.known_users, (unsigned long long)res.provisioned,
                (unsigned long long)res.not_newer, (unsigned long long)res.missing,
                (unsigned long long)res.commands[CMD_CREATE_USER],
                (unsigned long long)res.commands[CMD_UPDATE_USER],
                (unsigned long long)res.commands[CMD_REACTIVATE_USER],
                (unsigned long long)res.commands[CMD_APPLY_SETTINGS],
                (unsigned long long)res.commands[CMD_SET_MANAGER],
                (unsigned long long)res.commands[CMD_DEACTIVATE_USER], (unsigned long long)res.held,
                res.guard_tripped ? " by the mass-deactivation guard (R8.3): run "
                                    "`provisioner held` to list them, then reimport "
                                    "--confirm"
                                  : "");
        }
    }
    if (out.producer) {
        rd_kafka_flush(out.producer, 10000);
        rd_kafka_destroy(out.producer);
    }
    codec_command_encoder_free(out.enc);
    buf_free(&out.line);
    store_redis_close(store);
    config_free(cfg);
    sf_client_free(sf);
    cli_free(&a);
    return code;
}

static void print_held(void *ctx, const user_state *u)
{
    unsigned long *n = ctx;
    (*n)++;
    printf("%s\t%s\n", u->id, engine_reason_name(u->reason));
}

int cmd_held(int argc, char **argv)
{
    cli_args a;
    int code;
    if (cmd_parse(C_HELD, "provisioner held --settings FILE [--redis URL]",
                  "Lists the users whose deactivation the mass-deactivation guard holds (R8.3): "
                  "Id and reason,\none per line. A confirming reimport lets them through: POST "
                  "/reimport?confirm=1\nto the running service, or `provisioner reimport "
                  "--confirm` when none runs.",
                  argc, argv, &a, &code) < 0)
        return code;
    config *cfg = NULL;
    store_redis *store = NULL;
    if ((code = open_state(&a, &cfg, &store)) != EXIT_OK) {
        cli_free(&a);
        return code;
    }
    unsigned long n = 0;
    perr err;
    if (reimport_list_held(store, cfg, print_held, &n, &err) < 0) {
        fprintf(stderr, "provisioner: %s\n", err.msg);
        code = EXIT_RUNTIME;
    } else {
        fprintf(stderr, "%lu held deactivations\n", n);
    }
    store_redis_close(store);
    config_free(cfg);
    cli_free(&a);
    return code;
}
