/* Micro-benchmark for codec_decode (issue 5: at least 500,000 decoded events per second on one
 * core). A typical UPDATE: one record id, Title and LastModifiedDate changed, as the Pub/Sub API
 * relays it: Confluent-framed (cached schema id) with changedFields as a bitmap, and as plain Avro
 * with field names. Single-threaded, the arena reset per event as the pipeline does. Prints
 * figures; it does not pass or fail. Usage: bench_codec [seconds] (default 1 per case). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "codec/codec.h"

static const char *UPDATE =
    "{\"ChangeEventHeader\":{\"entityName\":\"User\",\"recordIds\":[\"0055e000001AbCdAAK\"],"
    "\"changeType\":\"UPDATE\",\"changedFields\":[\"Title\",\"LastModifiedDate\"],"
    "\"nulledFields\":[],\"diffFields\":[],\"transactionKey\":\"0004b1a6-3c5e-0ef2-3e2a-"
    "9e5b0c1d2e3f\","
    "\"sequenceNumber\":1,\"commitTimestamp\":1764000000000,\"commitNumber\":11522781812361,"
    "\"commitUser\":\"0055e000000AdminAAC\",\"changeOrigin\":\"com/salesforce/api/soap/62.0\"},"
    "\"Title\":\"Account Executive\",\"LastModifiedDate\":\"2026-11-25T10:00:00.000Z\"}";

static double codec_bench_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int run(const char *label, codec_decoder *dec, const buf *value, double seconds)
{
    arena mem;
    arena_init(&mem, 0);
    event ev;
    codec_error err;
    const long batch = 1 << 16;
    long n = 0, fields = 0;
    double start = codec_bench_now(), elapsed = 0;
    do {
        for (long i = 0; i < batch; i++) {
            arena_reset(&mem);
            if (codec_decode(dec, value->data, value->len, &mem, &ev, &err) < 0) {
                fprintf(stderr, "bench_codec: %s: %s\n", label, err.msg);
                arena_free(&mem);
                return -1;
            }
            fields += (long)(ev.n_fields + ev.n_changed_fields);
        }
        n += batch;
        elapsed = codec_bench_now() - start;
    } while (elapsed < seconds);
    printf("codec_decode: UPDATE, %s, %zu bytes: %.0f events/s (%ld in %.2f s, %.0f ns each; %ld "
           "fields)\n",
           label, value->len, (double)n / elapsed, n, elapsed, elapsed * 1e9 / (double)n, fields);
    arena_free(&mem);
    return 0;
}

int main(int argc, char **argv)
{
    double seconds = argc > 1 ? atof(argv[1]) : 1.0;
    arena mem;
    arena_init(&mem, 0);
    event ev;
    perr pe;
    if (event_from_json(UPDATE, strlen(UPDATE), NULL, &mem, &ev, &pe) < 0) {
        fprintf(stderr, "bench_codec: %s\n", pe.msg);
        return 1;
    }
    codec_event_encoder_config pubsub = {.framed = true, .schema_id = 1, .bitmaps = true};
    codec_event_encoder_config plain = {0};
    codec_event_encoder *e1, *e2;
    codec_decoder *framed_dec, *plain_dec;
    codec_decoder_config fcfg = {.framing = CODEC_FRAMING_CONFLUENT};
    codec_error err;
    buf v1, v2;
    buf_init(&v1);
    buf_init(&v2);
    if (codec_event_encoder_new(&pubsub, &e1, &err) < 0 ||
        codec_event_encoder_new(&plain, &e2, &err) < 0 ||
        codec_encode_event(e1, &ev, &v1, &err) < 0 || codec_encode_event(e2, &ev, &v2, &err) < 0 ||
        codec_decoder_new(&fcfg, &framed_dec, &err) < 0 ||
        codec_decoder_add_schema(framed_dec, 1, event_default_schema_avsc(), 0, &err) < 0 ||
        codec_decoder_new(NULL, &plain_dec, &err) < 0) {
        fprintf(stderr, "bench_codec: %s\n", err.msg);
        return 1;
    }
    int rc = run("framed + bitmap (Pub/Sub relay)", framed_dec, &v1, seconds) < 0 ||
             run("plain + names", plain_dec, &v2, seconds) < 0;
    codec_decoder_free(framed_dec);
    codec_decoder_free(plain_dec);
    codec_event_encoder_free(e1);
    codec_event_encoder_free(e2);
    buf_free(&v1);
    buf_free(&v2);
    arena_free(&mem);
    return rc;
}
