/* provisioner encode: JSON-lines change events -> one Avro message value per file, as they would
 * sit on the input topic (plain, or Confluent-framed with --schema-id). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "codec/codec.h"
#include "commands.h"
#include "jsonl.h"

static int make_dir(const char *path)
{
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s", path);
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/') continue;
        *p = '\0';
        if (mkdir(tmp, 0777) < 0 && errno != EEXIST) return -1;
        *p = '/';
    }
    return mkdir(tmp, 0777) < 0 && errno != EEXIST ? -1 : 0;
}

int cmd_encode(int argc, char **argv)
{
    cli_args a;
    int code;
    if (cmd_parse(C_ENCODE,
                  "provisioner encode --events FILE --out DIR [--schema AVSC] [--schema-id N] "
                  "[--bitmaps]",
                  "Writes each JSON-lines change event as one Avro message value, DIR/000001.bin, "
                  "...:\nplain Avro with the writer schema, or Confluent-framed with --schema-id. "
                  "Exit 0, 1 when\nDIR cannot be written, 2 for a bad event, schema or usage.",
                  argc, argv, &a, &code) < 0)
        return code;
    const char *events = cli_str(&a, "events"), *dir = cli_str(&a, "out");
    const char *schema = cli_str(&a, "schema");
    buf avsc, value;
    buf_init(&avsc);
    buf_init(&value);
    codec_event_encoder *enc = NULL;
    jsonl_reader in = {0};
    size_t n_events = 0;
    code = EXIT_USAGE;
    if (a.n_positional) {
        fprintf(stderr, "provisioner: encode: unexpected argument '%s'\n", a.positional[0]);
        goto out;
    }
    if (!dir) {
        fprintf(stderr, "provisioner: encode: --out DIR is required\n");
        goto out;
    }
    if (schema && buf_read_file(&avsc, schema, SIZE_MAX) < 0) {
        fprintf(stderr, "provisioner: encode: %s: %s\n", schema, strerror(errno));
        goto out;
    }
    codec_event_encoder_config cfg = {.writer_avsc = schema ? avsc.data : NULL,
                                      .writer_avsc_len = avsc.len,
                                      .framed = cli_given(&a, "schema-id"),
                                      .schema_id = (int32_t)cli_int(&a, "schema-id"),
                                      .bitmaps = cli_bool(&a, "bitmaps")};
    codec_error cerr;
    if (codec_event_encoder_new(&cfg, &enc, &cerr) < 0) {
        fprintf(stderr, "provisioner: encode: %s: %s\n", schema ? schema : "bundled schema",
                cerr.msg);
        goto out;
    }
    if (jsonl_open(&in, events) < 0) {
        fprintf(stderr, "provisioner: encode: %s: %s\n", events, strerror(errno));
        goto out;
    }
    if (make_dir(dir) < 0) {
        fprintf(stderr, "provisioner: encode: %s: %s\n", dir, strerror(errno));
        code = EXIT_RUNTIME;
        goto out;
    }
    arena mem;
    arena_init(&mem, 0);
    code = EXIT_OK;
    while (jsonl_next(&in)) {
        arena_reset(&mem);
        event ev;
        perr pe;
        if (event_from_json(in.line, in.len, codec_event_encoder_layout(enc), &mem, &ev, &pe) < 0) {
            fprintf(stderr, "provisioner: encode: %s:%lu: %s\n", in.name, in.lineno, pe.msg);
            code = EXIT_USAGE;
            break;
        }
        if (codec_encode_event(enc, &ev, &value, &cerr) < 0) {
            fprintf(stderr, "provisioner: encode: %s:%lu: %s\n", in.name, in.lineno, cerr.msg);
            code = EXIT_USAGE;
            break;
        }
        char path[4200];
        snprintf(path, sizeof path, "%s/%06zu.bin", dir, ++n_events);
        FILE *f = fopen(path, "wb");
        bool ok = f && fwrite(value.data, 1, value.len, f) == value.len;
        if (f && fclose(f) != 0) ok = false;
        if (!ok) {
            fprintf(stderr, "provisioner: encode: %s: %s\n", path, strerror(errno));
            code = EXIT_RUNTIME;
            break;
        }
    }
    arena_free(&mem);
    if (code == EXIT_OK && ferror(in.f)) {
        fprintf(stderr, "provisioner: encode: %s: %s\n", in.name, strerror(errno));
        code = EXIT_USAGE;
    }
    if (code == EXIT_OK)
        fprintf(stderr, "encode: %zu event%s -> %s/\n", n_events, n_events == 1 ? "" : "s", dir);
out:
    jsonl_close(&in);
    codec_event_encoder_free(enc);
    buf_free(&avsc);
    buf_free(&value);
    cli_free(&a);
    return code;
}
