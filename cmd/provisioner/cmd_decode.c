/* provisioner decode: message values in files -> JSON-lines change events on stdout, bitmaps
 * turned into field names. For looking at what sits on the input or dead-letter topic. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "codec/codec.h"
#include "commands.h"

int cmd_decode(int argc, char **argv)
{
    cli_args a;
    int code;
    if (cmd_parse(
            C_DECODE, "provisioner decode [--schema AVSC] [--registry URL] FILE...",
            "Prints each message value FILE (- for stdin) as one JSON-lines change event, "
            "bitmaps turned\ninto field names: plain Avro with the writer schema (default: "
            "the bundled one), or\nConfluent-framed with the writer schema from the registry. "
            "A file that does not decode\nis reported on stderr and the rest go on; exit 2 "
            "then (1 when the registry was unreachable).",
            argc, argv, &a, &code) < 0)
        return code;
    if (!a.n_positional) {
        fprintf(stderr, "provisioner: decode: no FILE given (see provisioner decode --help)\n");
        cli_free(&a);
        return EXIT_USAGE;
    }
    const char *schema = cli_str(&a, "schema"), *registry = cli_str(&a, "registry");
    buf avsc, value, line;
    buf_init(&avsc);
    buf_init(&value);
    buf_init(&line);
    codec_decoder *dec = NULL;
    code = EXIT_USAGE;
    if (schema && buf_read_file(&avsc, strcmp(schema, "-") == 0 ? NULL : schema, SIZE_MAX) < 0) {
        fprintf(stderr, "provisioner: decode: %s: %s\n", schema, strerror(errno));
        goto out;
    }
    codec_decoder_config cfg = {.writer_avsc = schema ? avsc.data : NULL,
                                .writer_avsc_len = avsc.len,
                                .registry = {.url = registry}};
    codec_error err;
    if (codec_decoder_new(&cfg, &dec, &err) < 0) {
        fprintf(stderr, "provisioner: decode: %s%s%s\n", schema ? schema : "", schema ? ": " : "",
                err.msg);
        goto out;
    }
    arena mem;
    arena_init(&mem, 0);
    code = EXIT_OK;
    for (size_t i = 0; i < a.n_positional; i++) {
        const char *path = a.positional[i];
        buf_reset(&value);
        if (buf_read_file(&value, strcmp(path, "-") == 0 ? NULL : path, SIZE_MAX) < 0) {
            fprintf(stderr, "provisioner: decode: %s: %s\n", path, strerror(errno));
            code = EXIT_USAGE;
            continue;
        }
        arena_reset(&mem);
        event ev;
        if (codec_decode(dec, value.data, value.len, &mem, &ev, &err) < 0) {
            char id[32] = "";
            if (err.schema_id >= 0) snprintf(id, sizeof id, ", schema id %d", err.schema_id);
            fprintf(stderr, "provisioner: decode: %s: %s at byte %zu%s: %s\n", path,
                    codec_error_kind_name(err.kind), err.offset, id, err.msg);
            if (code == EXIT_OK || err.kind == CODEC_ERR_REGISTRY)
                code = err.kind == CODEC_ERR_REGISTRY ? EXIT_RUNTIME : EXIT_USAGE;
            continue;
        }
        buf_reset(&line);
        event_to_json(&ev, codec_decoder_last_layout(dec), &line);
        buf_putc(&line, '\n');
        cmd_write_stdout(line.data, line.len);
    }
    arena_free(&mem);
    cmd_flush_stdout();
out:
    codec_decoder_free(dec);
    buf_free(&avsc);
    buf_free(&value);
    buf_free(&line);
    cli_free(&a);
    return code;
}
