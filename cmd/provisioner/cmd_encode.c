/* provisioner encode: JSON-lines change events -> one Avro message value per file, as they would
 * sit on the input topic (plain, or Confluent-framed with --schema-id). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "codec/codec.h"
#include "commands.h"

/* The whole file into b; -1 with errno. */
static int slurp(const char *path, buf *b)
{
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    char chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        buf_append(b, chunk, n);
    int bad = ferror(f);
    fclose(f);
    if (bad) errno = EIO;
    return bad ? -1 : 0;
}

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

static bool blank(const char *s)
{
    for (; *s; s++)
        if (*s != ' ' && *s != '\t' && *s != '\r' && *s != '\n') return false;
    return true;
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
    FILE *in = NULL;
    char *line = NULL;
    size_t cap = 0, n_events = 0, lineno = 0;
    code = EXIT_USAGE;
    if (a.n_positional) {
        fprintf(stderr, "provisioner: encode: unexpected argument '%s'\n", a.positional[0]);
        goto out;
    }
    if (!dir) {
        fprintf(stderr, "provisioner: encode: --out DIR is required\n");
        goto out;
    }
    if (schema && slurp(schema, &avsc) < 0) {
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
    const char *name = events && strcmp(events, "-") != 0 ? events : "stdin";
    in = events && strcmp(events, "-") != 0 ? fopen(events, "r") : stdin;
    if (!in) {
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
    ssize_t len;
    code = EXIT_OK;
    while ((len = getline(&line, &cap, in)) >= 0) {
        lineno++;
        if (blank(line)) continue;
        arena_reset(&mem);
        event ev;
        perr pe;
        if (event_from_json(line, (size_t)len, codec_event_encoder_layout(enc), &mem, &ev, &pe) <
            0) {
            fprintf(stderr, "provisioner: encode: %s:%zu: %s\n", name, lineno, pe.msg);
            code = EXIT_USAGE;
            break;
        }
        if (codec_encode_event(enc, &ev, &value, &cerr) < 0) {
            fprintf(stderr, "provisioner: encode: %s:%zu: %s\n", name, lineno, cerr.msg);
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
    if (code == EXIT_OK)
        fprintf(stderr, "encode: %zu event%s -> %s/\n", n_events, n_events == 1 ? "" : "s", dir);
out:
    if (in && in != stdin) fclose(in);
    free(line);
    codec_event_encoder_free(enc);
    buf_free(&avsc);
    buf_free(&value);
    cli_free(&a);
    return code;
}
