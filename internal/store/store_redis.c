/* store_redis: the service's state in Redis (issue 6; provisioning.md R1.4, R6.3, R9.2, R9.3).
 *
 * ---- Key layout, under the configured prefix P (e.g. "prov:"); internal/store/README.md too.
 *
 *   P u:{id}       STRING  the whole user_state, binary format v2 (below). Its status is the
 *                          byte at offset 3 (flags stay below 128: one byte), so that a report's
 *                          write reads its manager's provisioning status with one GETRANGE,
 *                          without decoding anything (R6.3 race).
 *                  Builds before this one kept a HASH (status "never" | "active" |
 *                  "deactivated", blob): a string costs Redis ~30% less memory a user, and
 *                  less CPU (README, Performance). That form is still read: an MGET
 *                  answers nil for it, EXISTS says the key is there, GET answers WRONGTYPE
 *                  and the blob is read with HGET (old_form_read), the scripts
 *                  read either status, check (a) takes the manager as late (its resolution
 *                  reads it), and the user's next write (SET) replaces the hash. Builds
 *                  before cannot read the string form.
 *   P w:{manager}  SET   ids of the reports whose link waits for that manager (R6.3)
 *   P waiting      SET   the index of the waiting sets: the keys (P w:{manager}) of those that
 *                        may have members. A write adds a set's key when it adds to the set; a
 *                        flush whose removals may have emptied a set runs the unindex script on
 *                        it (a key too many, left when two instances empty a set at once, costs
 *                        one read). Complete once the company hash says waiting_index "1"
 *                        (store_redis_index_waiting).
 *   P active       SET   ids of the users whose status is "active": its size is the provisioned
 *                        count (R8.3 share). Moved by each user's write that moves its status to
 *                        or from "active", in the same MULTI/EXEC, so instances sharing it add
 *                        up and a flush sent again moves nothing twice.
 *   P company      HASH  toggle_sent "0"|"1", n_sent decimal (company_state, R7.2), deacts
 *                        "ts,ts,..." the commit times of the deactivations in the R8.3 window
 *                        ("ts*n": n of them, merged once the window holds 256 marks),
 *                        active_set "1": the active set is complete (a state from before it is
 *                        put into it once by store_redis_count_provisioned; until then the
 *                        count is unknown), waiting_index "1": the waiting index is complete.
 *                        (provisioned decimal, the count's earlier form, is no longer read.)
 *
 *   P overflows    SET   the GAP_OVERFLOW events whose reconciliation (R1.3, R8) is not done yet,
 *                        as topic:partition:offset; added before their batch is committed,
 *                        removed by a reimport that started after them and succeeded
 *
 * The per-user position (R1.4) lives inside the blob, so a user's state and its idempotency
 * record are written by one command and can never disagree (R9.2, R9.3).
 *
 * ---- Blob format v2 (all integers unsigned LEB128 varints unless said otherwise)
 *   'P' 0x02                      magic and format version
 *   flags                         bit0 has_pos, bit1 deleted, bit2 in_scope, bit3 created_waiting,
 *                                 bit4 needs_reconcile, bit5 held, bit6 set by the builds that
 *                                 write bit5 (without it: held when active and out of scope; a
 *                                 build before them ignores both)
 *   status, reason                one byte each
 *   [pos]                         3 zigzag varints when has_pos: commit_timestamp, commit_number,
 *                                 sequence_number
 *   id                            str (len, bytes)
 *   assignment, applied_settings_of, gong_manager, waiting_for
 *                                 optional str: len+1, bytes; 0 = NULL
 *   n_fields, (name, value)*      the snapshot; a name is a varint k: odd, KNOWN_NAMES[k >> 1];
 *                                 even, k >> 1 bytes of the name follow (k = 0 is corrupt)
 *   n_sent, n_sent values         the R2.1 attributes last sent (fewer than ATTR__COUNT: the rest
 *                                 are null, so adding an attribute needs no new version); a sent
 *                                 value may be tag 5, j: the value of field j (most are)
 *   value                         tag byte 0 null, 1 false, 2 true, 3 number (8 bytes IEEE-754
 *                                 little endian), 4 string (len, bytes)
 * Binary, not JSON: a batch decodes thousands of states. v2 is v1 (still read: 'P' 0x01, the sent
 * values before the fields, every name spelled out, no tag 5) with the snapshot's names and the
 * sent values that repeat it written as references: the bench's 489 bytes a user became 286.
 *
 * ---- Round trips. Every exchange is one pipelined round trip (all commands appended, then all
 * replies read):
 *   prefetch  GET u:{id} for every id not cached, SMISMEMBER of the waiting index for
 *             every waiting set not cached (plus HMGET company when not loaded): 1 round trip
 *             for the batch, and 1 more for the SMEMBERS of the sets it names, when any (of a
 *             subject, or of an active manager the batch only names). Without the index (a dry
 *             run before it is built, Redis before 6.2): SMEMBERS w:{id} each, in the first;
 *   reports   GET of the reports waiting for the users a batch may activate, not cached yet
 *             (store_redis_prefetch_waiting): 0 or 1 round trip;
 *   flush     one SET per changed user (a MULTI/EXEC block, append_put, when the user has
 *             link changes or its status moves to or from active), standalone link changes,
 *             the unindex script per set the removals may have emptied, and the company: 1
 *             round trip (2 after a NOSCRIPT: the same commands again, SCRIPT LOAD in front);
 *             a flush can also be sealed now and sent later (store_redis_seal: reads see it
 *             meanwhile);
 *   miss      a get() or links() of something not prefetched: 1 round trip each;
 *   old form  HGET u:{id} blob of the users still in the hash form a read met: 1 round trip.
 * Connecting (AUTH, SELECT, SCRIPT LOAD) is one more round trip, once per connection.
 *
 * ---- Cross-instance hierarchy safety (R6.3). Two instances on different partitions may handle
 * a manager M and its report R at once. Two atomic writes (MULTI/EXEC) make whichever comes
 * second see the other:
 *   (a) registering R->M (SADD w:M R) happens inside R's own write, which then reads
 *       GETRANGE u:M 3 3, its status: active means M went live behind our back, and M is
 *       reported late;
 *   (b) writing M when it becomes active (its stored status was not active) reads SMEMBERS w:M
 *       in the same block: the members of w:M that this instance never saw (loaded, added or
 *       removed) were registered by someone else, and M is reported late.
 *   (c) at rest an active manager has no waiting report, so any cached active user whose waiting
 *       set is not empty is reported late too: this heals a crash between a flush that reported
 *       a late manager and its resolution (the replayed events are duplicates, but the batch
 *       prefetches both users again).
 * Registering the link inside R's write (not as a separate command) also keeps R's state and its
 * link together: a crash between them would otherwise leave R waiting with no link while its
 * stored position makes the replayed event a duplicate (R9.2). The caller resolves every late
 * manager (engine_resolve_manager) and flushes again; the cache forgets the late manager, its link
 * set and the reports named, so that the resolution reads what the other instance wrote.
 *
 * The store is single-threaded, like the engine that drives it. */
#include <errno.h>
#include <hiredis/hiredis.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#include "log/log.h"
#include "store.h"

#define FORMAT_MAGIC 'P'
#define FORMAT_VERSION 2 /* written; 1 is still read */
#define FLAG_HELD_RECORDED 64u
#define STATUS_OFFSET "3" /* of the status byte in a blob: magic, version, flags (one byte) */
_Static_assert(FLAG_HELD_RECORDED * 2 - 1 < 128, "a blob's flags stay one varint byte");
#define POOL_MAX 2048    /* recycled user_state structs kept across resets (a batch reads ~1,750) */
/* Buffers and arena blocks kept across batches; beyond this, what an unusually large batch grew
 * is given back rather than held for the life of the process. */
#define KEEP_BYTES (4u << 20)
#define NAMES_KEPT 64 /* field names remembered by position (decode_state) */
/* store_redis.changed's limit: a batch makes a few thousand. */
#define CHANGED_MAX (1u << 16)

/* The field names a blob names by index (format v2): the User fields of Change Data Capture,
 * compound fields flattened. A stored format: append only, an index once written keeps its name;
 * other names are spelled out. */
/* clang-format off */
static const char *const KNOWN_NAMES[] = {
    "Username", "Email", "IsActive", "ManagerId", "Title", "Department", "Division", "CompanyName",
    "Phone", "MobilePhone", "Extension", "Fax", "TimeZoneSidKey", "LocaleSidKey",
    "LanguageLocaleKey", "EmailEncodingKey", "Alias", "CommunityNickname", "ProfileId",
    "UserRoleId", "UserType", "FederationIdentifier", "EmployeeNumber", "CreatedDate",
    "CreatedById", "LastModifiedById", "LastModifiedDate", "SystemModstamp", "ReceivesInfoEmails",
    "ReceivesAdminInfoEmails", "ForecastEnabled", "EmployeeType__c", "Quota__c", "Regions__c",
    "StartDate__c", "Salutation", "FirstName", "LastName", "Street", "City", "State", "PostalCode",
    "Country", "StateCode", "CountryCode", "Name", "Address"};
/* clang-format on */
#define N_KNOWN (sizeof KNOWN_NAMES / sizeof KNOWN_NAMES[0])
#define TAG_FIELD_VALUE 5 /* a sent value: the value of field j (format v2) */

/* Whether user key k says "active", in either form: the status byte of the string, or the
 * status field of the hash builds before wrote. */
#define ACTIVE_LUA                                                                                 \
    "local function active(k)\n"                                                                   \
    "  local v = redis.pcall('GETRANGE', k, " STATUS_OFFSET ", " STATUS_OFFSET ")\n"               \
    "  if type(v) == 'table' then return redis.pcall('HGET', k, 'status') == 'active' end\n"       \
    "  return v == '\\1'\n"                                                                        \
    "end\n"
_Static_assert(PROV_ACTIVE == 1, "ACTIVE_LUA's status byte");

/* A waiting set's key out of the waiting index once the set is empty, checked and done in one
 * step, so that a report another instance registers meanwhile keeps its set indexed: after a
 * flush's removals, for each set they may have emptied. KEYS[1] w:M, KEYS[2] the index. */
/* clang-format off */
static const char UNINDEX_SCRIPT[] =
    "if redis.call('SCARD', KEYS[1]) == 0 then redis.call('SREM', KEYS[2], KEYS[1]) end\n"
    "return 0\n";

/* A link added for a report whose state is not written in the same flush (the engine always
 * writes the report, so this is a fallback): KEYS[1] w:M, KEYS[2] u:M, KEYS[3] the waiting index,
 * ARGV[1] the report. */
static const char LINK_SCRIPT[] =
    ACTIVE_LUA
    "redis.call('SADD', KEYS[1], ARGV[1])\n"
    "redis.call('SADD', KEYS[3], KEYS[1])\n"
    "if active(KEYS[2]) then return 1 end\n"
    "return 0\n";
/* clang-format on */

/* ---------------------------------------------------------------- cache structures */

typedef struct entry {
    char *id;           /* arena */
    user_state *u;      /* NULL: not in Redis (cached so that it is not read again) */
    prov_status stored; /* status in Redis as last read or written: decides check (b) */
    bool pending;       /* being read by the prefetch in flight */
    bool old_form;      /* its key held the hash form (read by old_form_read) */
} entry;

/* A set of arena strings kept as an array (the view links() returns), with a hash index over it
 * once it outgrows a linear scan: a manager with thousands of waiting reports made every link
 * change a scan of them all. Index slots hold array positions + 1; 0 is free, SLOT_GONE a
 * removed entry. */
typedef struct strlist {
    const char **v;
    size_t n, cap;
    uint32_t *slot; /* NULL until the list is long enough */
    size_t slot_cap, slot_used;
} strlist;

typedef struct link_set link_set;
struct link_set {
    bool loaded;     /* members mirror Redis as read, plus our changes */
    bool loading;    /* in the prefetch in flight */
    bool has_ops;    /* changed before it was loaded: replay s->ops on load */
    bool prefetched; /* its reports were prefetched (store_redis_prefetch_waiting) */
    bool subject;    /* its user is a subject of the prefetch, not only named (sift_sets) */
    strlist members; /* the reports waiting, as Redis has them plus our changes */
    strlist seen;    /* every report read or changed here: the known set of check (b) */
};

typedef struct link_op {
    const char *manager, *report; /* arena */
    uint32_t seq;
    bool add;
} link_op;

typedef enum {
    RK_PUT_PLAIN,
    RK_UNINDEX, /* UNINDEX_SCRIPT: only an error counts */
    RK_TX,      /* MULTI's +OK, a command's +QUEUED: only an error counts */
    RK_PUT_TX,  /* EXEC of a user's block (append_put): its commands' replies, SMEMBERS last */
    RK_LINK_ADD,
    RK_SREM,
    RK_COMPANY,
    RK_SCRIPT_LOAD
} reply_kind;

typedef struct reply_info {
    reply_kind kind;
    const char *id;    /* RK_PUT_*: the user (the write's arena) */
    size_t first_op;   /* RK_PUT_TX: index in the write's net of its first link change */
    const char *other; /* RK_LINK_ADD / RK_SREM: the manager */
    /* RK_PUT_TX: n_ops link changes from first_op; with check (b), the reports this instance
     * knew of when it sealed the write */
    size_t n_ops;
    bool counts, check;
    const char **known; /* the write's arena */
    size_t n_known;
} reply_info;

/* A user as a sealed write leaves it: its blob inside the write's commands. */
typedef struct wuser {
    const struct store_write *w;
    size_t blob_off, blob_len; /* in w->resp */
    prov_status status;
} wuser;

/* A sealed write: the commands of one flush, built from the cache when a batch has been decided,
 * and sent once its commands are acknowledged (R9.2). Until it is written, reads see what it will
 * leave in Redis (its users, link changes and company state), so the next batch can be decided
 * while this one's commands are on their way. Writes go out in the order they were sealed. */
struct store_write {
    store_write *next;
    buf resp; /* the commands, RESP */
    reply_info *info;
    size_t n_info, cap_info;
    arena mem;
    strmap users; /* id -> wuser* */
    link_op *net; /* the net link changes, by report (replies name them by index) */
    size_t n_net, cap_net;
    link_op *by_mgr; /* the same, by manager: replayed on a waiting set read from Redis */
    size_t cap_by_mgr;
    bool has_company;
    company_state company;
    const char **late_c; /* check (c) at seal time: reported late once written */
    size_t n_late_c, cap_late_c;
    uint64_t n_users;
    /* sent ahead (store_redis_send_sealed, on wc): its replies are read as they come in
     * (sent_collect) and kept here until store_redis_write_sealed takes them */
    bool sent, answered;
    size_t pre; /* SCRIPT LOAD replies in front of its own */
    int rc;
    bool noscript;
    perr err;
    store_late late;
};

/* One command's arguments, built back to back in one buffer (hiredis copies them on append). */
typedef struct cmdb {
    buf data;
    size_t *off, *len;
    size_t *out_off; /* where each argument landed in the exchange's buffer (cb_send) */
    size_t n, cap;
    size_t arg_start;
} cmdb;

/* Bytes read from a connection and not given to its hiredis reader yet (feed_more). */
typedef struct feed {
    size_t pos, len;
    char data[16 * 1024];
} feed;

struct store_redis {
    engine_store iface;
    /* connections: c for reads and everything else; wc for the writes sent ahead, so that Redis
     * can run a batch's reads between their commands, not only after them */
    redisContext *c, *wc;
    feed fc, fwc; /* c's, wc's */
    char *host, *user, *password;
    int port, db, timeout_ms;
    char where[512]; /* the URL with the password masked, for messages */
    char *prefix;
    size_t prefix_len;
    char sha_unindex[41], sha_link[41];
    bool scripts_reload; /* SCRIPT LOAD in front of the next write (after a NOSCRIPT) */
    arena rmem;  /* hiredis's reply objects on c, until the next exchange begins (reply_fns) */
    arena wmem;  /* the same on wc, until a write's replies are all in and none is half read */
    bool pooled; /* states pooled (store_redis_opts.keep_cache not set) */
    bool read_only; /* no scripts loaded (store_redis_opts.read_only) */
    /* cache */
    arena mem;
    strmap users; /* id -> entry* */
    strmap links; /* manager id -> link_set* */
    link_op *ops; /* link changes in engine order, since the last flush */
    size_t n_ops, cap_ops;
    uint32_t op_seq;
    link_op *net; /* flush: the last change per (report, manager), sorted by report */
    size_t n_net, cap_net;
    company_state company;
    bool company_loaded, company_dirty;
    user_state **pool;
    size_t n_pool, cap_pool;
    /* the states changed since the last seal, in order, repeats included: seal writes those
     * still cached and dirty without visiting every cached user. Past CHANGED_MAX (a cache kept
     * across batches without a seal: a dry run) the list goes and seal visits them all. */
    user_state **changed;
    size_t n_changed, cap_changed;
    bool changed_all;
    /* a read inside an engine call failed: the batch is not to be trusted */
    bool failed;
    perr fail_err;
    unsigned long drops;       /* connections lost (conn_drop) */
    bool flush_failed_on_drop; /* the last store_redis_flush failed as its connection went */
    /* pipeline scratch */
    cmdb cmd;
    buf out; /* the RESP of the exchange being built, written at once */
    redisReply **rep;
    size_t n_rep, cap_rep;
    redisReply **wrep; /* the replies of the oldest write sent ahead, while they are read */
    size_t n_wrep, cap_wrep;
    store_write *pending, *pending_tail; /* sealed, not yet written, oldest first */
    /* the users of the pending writes: id -> wuser of the newest write that has it (its key in
     * that write's arena). One look-up per user read, not one per pending write. */
    strmap overlay;
    store_write *spare; /* a written one, kept for its buffers */
    entry **todo_u;
    size_t n_todo_u, cap_todo_u;
    entry **olds; /* read as not stored because their key holds the hash form: old_form_read */
    size_t n_olds, cap_olds;
    /* read as not stored by an MGET, which answers nil for a key of another type: old_form_read
     * asks whether any of them exists (the hash form), and reads those one by one if so */
    entry **nils;
    size_t n_nils, cap_nils;
    /* a prefetch's users, todo_u, are read by MGETs of up to MGET_KEYS each: reply i holds
     * todo_u[mget_end[i - 1] .. mget_end[i]) (from 0 for the first) */
    size_t *mget_end;
    size_t n_mget, cap_mget;
    bool old_form_logged;
    /* store_redis_prefetch_ahead: todo_u[0..ahead_n) read ahead of the next prefetch, by
     * mgets_for(ahead_n) MGETs on c with the replies unread when ahead_sent; ahead_taking while
     * that prefetch reads them */
    size_t ahead_n;
    bool ahead_sent, ahead_taking;
    const char **todo_w;
    size_t n_todo_w, cap_todo_w;
    /* the waiting index is complete (store_redis_index_waiting): a prefetch asks it which waiting
     * sets exist (one SMISMEMBER) and reads only those, instead of one SMEMBERS per user */
    bool indexed;
    buf scratch;
    /* the interned field names of the last state decoded, by position: states share their
     * fields' order, so a name is mostly compared, not hashed and looked up (decode_state) */
    struct {
        const char *name;
        size_t len;
    } names[NAMES_KEPT];
    const char *known[N_KNOWN]; /* KNOWN_NAMES interned, as first read */
    /* the names of the last state encoded, by position, with their name codes: states share
     * their fields' order too */
    struct {
        const char *name;
        uint64_t code;
    } enc_names[NAMES_KEPT];
    store_redis_stats stats;
};

#define GROW(p, n, cap)                                                                            \
    do {                                                                                           \
        if ((n) >= (cap)) {                                                                        \
            (cap) = (cap) ? (cap)*2 : 16;                                                          \
            if ((cap) <= (n)) (cap) = (n) + 1;                                                     \
            (p) = xrealloc((p), (cap) * sizeof *(p));                                              \
        }                                                                                          \
    } while (0)

static void buf_trim(buf *b)
{
    buf_reset(b);
    if (b->cap <= KEEP_BYTES) return;
    buf_free(b);
    buf_init(b);
}

static void write_free(store_write *w);
static int sent_collect(store_redis *s, bool block, const char *doing, perr *err);
static const wuser *overlay_user(const store_redis *s, const char *id, const char **blob);
static const company_state *overlay_company(const store_redis *s);
static void overlay_links(store_redis *s, const char *manager, link_set *l);
static void overlay_add(store_redis *s, const store_write *w);
static void overlay_remove(store_redis *s, const store_write *w, bool oldest);

/* ---------------------------------------------------------------- URL */

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Percent-decodes s[0..n) (a password may carry '@' or ':' as %40, %3A). */
static char *pct_decode(const char *s, size_t n)
{
    char *out = xmalloc(n + 1);
    size_t j = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '%' && i + 2 < n && hexval(s[i + 1]) >= 0 && hexval(s[i + 2]) >= 0) {
            out[j++] = (char)(hexval(s[i + 1]) * 16 + hexval(s[i + 2]));
            i += 2;
        } else {
            out[j++] = s[i];
        }
    }
    out[j] = '\0';
    return out;
}

static int parse_uint(const char *s, size_t n, long max, long *out)
{
    if (!n || n > 9) return -1;
    long v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return -1;
        v = v * 10 + (s[i] - '0');
    }
    if (v > max) return -1;
    *out = v;
    return 0;
}

/* redis://[user:password@]host[:port][/db]; messages show only the masked URL. */
static int parse_url(store_redis *s, const char *url, perr *err)
{
    log_redact_url(url, s->where, sizeof s->where);
    const char *scheme_end = strstr(url, "://");
    if (!scheme_end)
        return perr_set(err, "Redis URL '%s': expected redis://[user:password@]host:port[/db]",
                        s->where);
    size_t sl = (size_t)(scheme_end - url);
    if (str_ieqn(url, sl, "rediss", 6))
        return perr_set(err, "Redis URL '%s': TLS (rediss://) is not supported by this build",
                        s->where);
    if (!str_ieqn(url, sl, "redis", 5))
        return perr_set(err, "Redis URL '%s': the scheme must be redis://", s->where);
    const char *p = scheme_end + 3;
    const char *at = strrchr(p, '@');
    if (at) {
        const char *colon = memchr(p, ':', (size_t)(at - p));
        if (!colon)
            return perr_set(err,
                            "Redis URL '%s': a user needs a password (redis://user:password@host "
                            "or redis://:password@host)",
                            s->where);
        if (colon > p) s->user = pct_decode(p, (size_t)(colon - p));
        s->password = pct_decode(colon + 1, (size_t)(at - colon - 1));
        if (!*s->password) return perr_set(err, "Redis URL '%s': the password is empty", s->where);
        p = at + 1;
    }
    const char *host_end;
    const char *rest;
    if (*p == '[') { /* [IPv6] */
        host_end = strchr(p, ']');
        if (!host_end) return perr_set(err, "Redis URL '%s': unclosed '[' in the host", s->where);
        s->host = xstrndup(p + 1, (size_t)(host_end - p - 1));
        rest = host_end + 1;
    } else {
        host_end = p + strcspn(p, ":/?");
        s->host = xstrndup(p, (size_t)(host_end - p));
        rest = host_end;
    }
    if (!*s->host) return perr_set(err, "Redis URL '%s': no host", s->where);
    long v = 6379;
    if (*rest == ':') {
        size_t n = strcspn(rest + 1, "/?");
        if (parse_uint(rest + 1, n, 65535, &v) < 0 || v == 0)
            return perr_set(err, "Redis URL '%s': the port must be a number from 1 to 65535",
                            s->where);
        rest += 1 + n;
    }
    s->port = (int)v;
    v = 0;
    if (*rest == '/') {
        size_t n = strcspn(rest + 1, "?");
        if (n && parse_uint(rest + 1, n, 1000000, &v) < 0)
            return perr_set(err, "Redis URL '%s': the database after '/' must be a number",
                            s->where);
        rest += 1 + n;
    }
    s->db = (int)v;
    if (*rest)
        return perr_set(err, "Redis URL '%s': unexpected '%s' after host:port/db", s->where, rest);
    return 0;
}

/* What parse_url allocated. */
static void url_free(store_redis *s)
{
    free(s->host);
    free(s->user);
    if (s->password) {
        memset(s->password, 0, strlen(s->password)); /* no copy of it lingers in freed memory */
        free(s->password);
    }
}

int store_redis_check_url(const char *url, perr *err)
{
    store_redis *s = xcalloc(1, sizeof *s);
    int rc = parse_url(s, url, err);
    url_free(s);
    free(s);
    return rc;
}

/* ---------------------------------------------------------------- command building */

static void cb_begin(cmdb *b)
{
    buf_reset(&b->data);
    b->n = 0;
}

static void cb_arg_begin(cmdb *b) { b->arg_start = b->data.len; }

static void cb_arg_end(cmdb *b)
{
    if (b->n == b->cap) {
        b->cap = b->cap ? b->cap * 2 : 32;
        b->off = xrealloc(b->off, b->cap * sizeof *b->off);
        b->len = xrealloc(b->len, b->cap * sizeof *b->len);
        b->out_off = xrealloc(b->out_off, b->cap * sizeof *b->out_off);
    }
    b->off[b->n] = b->arg_start;
    b->len[b->n] = b->data.len - b->arg_start;
    b->n++;
}

static void cb_arg(cmdb *b, const void *p, size_t n)
{
    cb_arg_begin(b);
    buf_append(&b->data, p, n);
    cb_arg_end(b);
}

static void cb_str(cmdb *b, const char *s) { cb_arg(b, s, strlen(s)); }

static void cb_key(cmdb *b, const store_redis *s, const char *kind, const char *id)
{
    cb_arg_begin(b);
    buf_append(&b->data, s->prefix, s->prefix_len);
    buf_puts(&b->data, kind);
    if (id) buf_puts(&b->data, id);
    cb_arg_end(b);
}

static void cb_num(cmdb *b, uint64_t v) /* counts and lengths: far below INT64_MAX */
{
    char t[FMT_I64_MAX];
    cb_arg(b, t, fmt_i64(t, (int64_t)v));
}

/* "*3\r\n" or "$12\r\n": a RESP header. */
static void resp_head(buf *out, char kind, size_t n)
{
    char t[24];
    size_t i = sizeof t;
    t[--i] = '\n';
    t[--i] = '\r';
    do {
        t[--i] = (char)('0' + n % 10);
        n /= 10;
    } while (n);
    t[--i] = kind;
    buf_append(out, t + i, sizeof t - i);
}

/* Formats the command into the exchange's one output buffer, kept across exchanges: hiredis would
 * format each command into an sds of its own and then regrow its output buffer command by command,
 * which for a batch of thousands meant reallocating (and consolidating) megabytes per round trip.
 * Nothing is sent until the exchange. */
static void cb_send(store_redis *s, cmdb *b)
{
    buf_reserve(&s->out, b->data.len + 16 * (b->n + 1));
    resp_head(&s->out, '*', b->n);
    for (size_t i = 0; i < b->n; i++) {
        resp_head(&s->out, '$', b->len[i]);
        b->out_off[i] = s->out.len;
        buf_append(&s->out, b->data.data + b->off[i], b->len[i]);
        buf_append(&s->out, "\r\n", 2);
    }
}

static void cb_free(cmdb *b)
{
    buf_free(&b->data);
    free(b->off);
    free(b->len);
    free(b->out_off);
}

/* ---------------------------------------------------------------- connection */

/* The read buffer of *cp (s->c or s->wc). */
static feed *feed_of(store_redis *s, redisContext *const *cp)
{
    return cp == &s->wc ? &s->fwc : &s->fc;
}

/* Closes *cp, s->c or s->wc; the next call that needs it connects again. */
static void conn_drop(store_redis *s, redisContext **cp)
{
    if (*cp) {
        s->drops++;
        redisFree(*cp);
    }
    *cp = NULL;
    feed *f = feed_of(s, cp); /* emptied here only: conn_open starts from a NULL *cp */
    f->pos = f->len = 0;      /* a reply half read goes with the connection */
    if (cp == &s->c) s->ahead_sent = false; /* the prefetch sends them again */
    if (cp != &s->wc) return;
    /* the replies of what was sent ahead are lost with the connection: sent again in full */
    for (store_write *w = s->pending; w; w = w->next)
        if (w->sent && !w->answered) w->sent = false;
    s->n_wrep = 0;
    arena_reset(&s->wmem);
}

static struct timeval ms_tv(int ms)
{
    return (struct timeval){.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
}

void store_redis_limit_timeout(store_redis *s, int ms)
{
    if (ms < 1) ms = 1;
    if (ms + 50 > s->timeout_ms) return; /* a syscall per connection: only for a real change */
    s->timeout_ms = ms;
    struct timeval tv = ms_tv(ms);
    if (s->c) redisSetTimeout(s->c, tv);
    if (s->wc) redisSetTimeout(s->wc, tv);
}

/* The message for a broken exchange on *cp; drops the connection (the next call reconnects). */
static int conn_fail(store_redis *s, redisContext **cp, const char *doing, perr *err)
{
    int e = errno;
    const redisContext *c = *cp;
    const char *why = c ? c->errstr : "not connected";
    char tmp[160];
    if (c && c->err == REDIS_ERR_IO && (e == EAGAIN || e == EWOULDBLOCK)) {
        snprintf(tmp, sizeof tmp, "no answer within %d ms", s->timeout_ms);
        why = tmp;
    } else if (c && c->err == REDIS_ERR_EOF) {
        why = "the server closed the connection";
    }
    perr_set(err, "Redis %s: %s: %s", s->where, doing, why);
    conn_drop(s, cp);
    return -1;
}

/* hiredis's reply objects, built in an arena (the reader's privdata: s->rmem, s->wmem) instead
 * of two mallocs a reply (the object and its string): the most frequent allocation left, ~8 an
 * event under a backlog. A reply on c lives until the next exchange begins (replies_free); one on
 * wc until its write has taken every reply (sent_collect). A partial one, read in several polls,
 * stays in the arena until it is whole; on a lost connection it goes with it (rep_free). */
static redisReply *rep_new(const redisReadTask *t, int type)
{
    redisReply *r = arena_alloc(t->privdata, sizeof *r);
    memset(r, 0, sizeof *r);
    r->type = type; /* a nil's task has the type of the bulk or array it stands for */
    if (t->parent) ((redisReply *)t->parent->obj)->element[t->idx] = r;
    return r;
}

static void *rep_string(const redisReadTask *t, char *str, size_t len)
{
    redisReply *r = rep_new(t, t->type);
    r->str = arena_strndup(t->privdata, str, len);
    r->len = len;
    return r;
}

static void *rep_array(const redisReadTask *t, int n)
{
    redisReply *r = rep_new(t, REDIS_REPLY_ARRAY);
    if (n > 0) {
        r->elements = (size_t)n;
        r->element = arena_alloc(t->privdata, r->elements * sizeof *r->element);
        memset(r->element, 0, r->elements * sizeof *r->element);
    }
    return r;
}

static void *rep_integer(const redisReadTask *t, long long v)
{
    redisReply *r = rep_new(t, REDIS_REPLY_INTEGER);
    r->integer = v;
    return r;
}

static void *rep_nil(const redisReadTask *t) { return rep_new(t, REDIS_REPLY_NIL); }

static void rep_free(void *r) { (void)r; /* the arena is reset by replies_free */ }

static redisReplyObjectFunctions reply_fns = {rep_string, rep_array, rep_integer, rep_nil,
                                              rep_free};

static void replies_free(store_redis *s)
{
    s->n_rep = 0;
    arena_reset(&s->rmem);
    arena_trim(&s->rmem, 1u << 20); /* a batch's replies are ~2 MB; a manager's thousands go back */
}

/* Writes bytes to *cp in one go (the socket has the command timeout as its send timeout). */
static int send_bytes(store_redis *s, redisContext **cp, const char *p, size_t left,
                      const char *doing, perr *err)
{
    while (left) {
        ssize_t k = write((*cp)->fd, p, left);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) {
            int e = errno;
            const char *why = strerror(e);
            char tmp[160];
            if (e == EAGAIN || e == EWOULDBLOCK) {
                snprintf(tmp, sizeof tmp, "no answer within %d ms", s->timeout_ms);
                why = tmp;
            } else if (e == EPIPE || e == ECONNRESET) {
                why = "the server closed the connection";
            }
            perr_set(err, "Redis %s: %s: %s", s->where, doing, why);
            conn_drop(s, cp);
            return -1;
        }
        p += k;
        left -= (size_t)k;
    }
    return 0;
}

/* Sends what was formatted in s->out, then `more` when given, on *cp: a round trip begins. */
static int send_out(store_redis *s, redisContext **cp, const buf *more, const char *doing,
                    perr *err)
{
    size_t len = s->out.len;
    s->out.len = 0; /* emptied for the next exchange; the bytes stay readable until then */
    s->stats.round_trips++;
    if (send_bytes(s, cp, s->out.data, len, doing, err) < 0) return -1;
    return more ? send_bytes(s, cp, more->data, more->len, doing, err) : 0;
}

/* hiredis's reader moves what is left of its buffer to the front after any reply that ends past
 * its first KiB: a 16 KiB read of ~300-byte replies was moved ~16 times over (sdsrange, 2.4% of
 * the main thread's instructions under a backlog). Given a KiB at a time, the reader moves at most
 * the part of a reply that a slice cut: what is moved is about what is read. */
#define FEED_SLICE 1024

/* Gives c's reader the next slice of what was read, reading when nothing is left. 0, or -1 with
 * c->err set as hiredis sets it (conn_fail reads it, and errno). */
static int feed_more(redisContext *c, feed *f)
{
    if (f->pos == f->len) {
        ssize_t n;
        do
            n = read(c->fd, f->data, sizeof f->data);
        while (n < 0 && errno == EINTR);
        if (n <= 0) {
            int e = n ? errno : 0;
            c->err = n ? REDIS_ERR_IO : REDIS_ERR_EOF;
            snprintf(c->errstr, sizeof c->errstr, "%s",
                     n ? strerror(e) : "Server closed the connection");
            errno = e;
            return -1;
        }
        f->pos = 0;
        f->len = (size_t)n;
    }
    size_t k = f->len - f->pos < FEED_SLICE ? f->len - f->pos : FEED_SLICE;
    if (redisReaderFeed(c->reader, f->data + f->pos, k) != REDIS_OK) {
        c->err = c->reader->err;
        snprintf(c->errstr, sizeof c->errstr, "%s", c->reader->errstr);
        return -1;
    }
    f->pos += k;
    return 0;
}

/* Waits for the next reply on *cp; a broken connection is dropped. */
static int get_reply(store_redis *s, redisContext **cp, void **r, const char *doing, perr *err)
{
    feed *f = feed_of(s, cp);
    *r = NULL;
    errno = 0;
    for (;;) {
        if (redisGetReplyFromReader(*cp, r) != REDIS_OK) return conn_fail(s, cp, doing, err);
        if (*r) return 0;
        if (feed_more(*cp, f) < 0) return conn_fail(s, cp, doing, err);
    }
}

/* Called with each reply of an exchange as soon as it is read: what it does with reply i overlaps
 * with Redis still running the commands after i (a pipeline's replies come in several reads). */
typedef void (*reply_fn)(store_redis *s, size_t i, const redisReply *r, void *ctx);

static void ahead_settle(store_redis *s);

/* Sends what was formatted (then `more`, a sealed write's commands, when given) and reads the n
 * replies (each, when given, called with every one): one round trip. A broken connection is
 * dropped. */
static int exchange_each(store_redis *s, size_t n, const buf *more, const char *doing,
                         reply_fn each, void *ctx, perr *err)
{
    ahead_settle(s);
    /* taking the replies read ahead found the connection broken: the caller connects again */
    if (!s->c) return perr_set(err, "Redis %s: %s: the connection was lost", s->where, doing);
    replies_free(s);
    if (!n) {
        s->out.len = 0;
        return 0;
    }
    if (send_out(s, &s->c, more, doing, err) < 0) return -1;
    if (s->cap_rep < n) {
        s->cap_rep = n * 2;
        s->rep = xrealloc(s->rep, s->cap_rep * sizeof *s->rep);
    }
    for (size_t i = 0; i < n; i++) {
        void *r;
        if (get_reply(s, &s->c, &r, doing, err) < 0) return -1;
        s->rep[s->n_rep++] = r;
        if (each) each(s, i, r, ctx);
    }
    return 0;
}

static int exchange_with(store_redis *s, size_t n, const buf *more, const char *doing, perr *err)
{
    return exchange_each(s, n, more, doing, NULL, NULL, err);
}

static int exchange(store_redis *s, size_t n, const char *doing, perr *err)
{
    return exchange_with(s, n, NULL, doing, err);
}

static bool reply_is_err(const redisReply *r, const char *prefix)
{
    return r->type == REDIS_REPLY_ERROR && strncmp(r->str, prefix, strlen(prefix)) == 0;
}

/* A GETRANGE of a user key's status byte (STATUS_OFFSET) saying active. */
static bool reply_is_active(const redisReply *r)
{
    return r->type == REDIS_REPLY_STRING && r->len == 1 && r->str[0] == PROV_ACTIVE;
}

/* Connects *cp (s->c or s->wc), authenticates, selects the database and loads the scripts (on
 * either: whichever connects first after a restart of Redis finds them gone): one round trip. */
static int conn_open(store_redis *s, redisContext **cp, perr *err)
{
    arena *replies = cp == &s->wc ? &s->wmem : &s->rmem;
    struct timeval tv = ms_tv(s->timeout_ms);
    redisContext *c = redisConnectWithTimeout(s->host, s->port, tv);
    if (!c) return perr_set(err, "Redis %s: cannot connect: out of memory", s->where);
    if (c->err) {
        perr_set(err, "Redis %s: cannot connect: %s", s->where, c->errstr);
        redisFree(c);
        return -1;
    }
    redisSetTimeout(c, tv);
    redisEnableKeepAlive(c);
    /* hiredis frees its read buffer whenever it empties with more than 16 KiB spare, so a batch's
     * megabytes of replies were read into a freshly malloc'd and regrown buffer 16 KiB at a time
     * (malloc_consolidate, ~10% of the CPU): keep what a typical batch needs, not what the
     * largest one ever read (a manager's waiting reports placed at once) */
    c->reader->maxbuf = KEEP_BYTES;
    c->reader->fn = &reply_fns;
    c->reader->privdata = replies;
    *cp = c;
    if (cp == &s->c) replies_free(s);
    buf_reset(&s->out);
    cmdb *b = &s->cmd;
    size_t n = 0;
    if (s->password) {
        cb_begin(b);
        cb_str(b, "AUTH");
        if (s->user) cb_str(b, s->user);
        cb_str(b, s->password);
        cb_send(s, b);
        n++;
    }
    if (s->db) {
        cb_begin(b);
        cb_str(b, "SELECT");
        cb_num(b, (uint64_t)s->db);
        cb_send(s, b);
        n++;
    }
    const char *scripts[2] = {UNINDEX_SCRIPT, LINK_SCRIPT};
    int n_scripts = s->read_only ? 0 : 2;
    for (int i = 0; i < n_scripts; i++) {
        cb_begin(b);
        cb_str(b, "SCRIPT");
        cb_str(b, "LOAD");
        cb_str(b, scripts[i]);
        cb_send(s, b);
        n++;
    }
    void *rep[4];
    if (send_out(s, cp, NULL, "cannot connect", err) < 0) return -1;
    for (size_t i = 0; i < n; i++)
        if (get_reply(s, cp, &rep[i], "cannot connect", err) < 0) return -1;
    size_t k = 0;
    int rc = 0;
    if (s->password) {
        redisReply *r = rep[k++];
        if (r->type == REDIS_REPLY_ERROR) /* the server's words never repeat the password */
            rc = perr_set(err, "Redis %s: authentication failed%s%s: %s", s->where,
                          s->user ? " for user " : "", s->user ? s->user : "", r->str);
    }
    if (!rc && s->db) {
        redisReply *r = rep[k++];
        if (reply_is_err(r, "NOAUTH"))
            rc = perr_set(err,
                          "Redis %s: the server requires a password: give one in the URL "
                          "(redis://[user]:password@host:port)",
                          s->where);
        else if (r->type == REDIS_REPLY_ERROR)
            rc = perr_set(err, "Redis %s: cannot select database %d: %s", s->where, s->db, r->str);
    }
    for (int i = 0; !rc && i < n_scripts; i++) {
        redisReply *r = rep[k++];
        char *sha = i == 0 ? s->sha_unindex : s->sha_link;
        if (reply_is_err(r, "NOAUTH"))
            rc = perr_set(err,
                          "Redis %s: the server requires a password: give one in the URL "
                          "(redis://[user]:password@host:port)",
                          s->where);
        else if (r->type != REDIS_REPLY_STRING || r->len != 40)
            rc = perr_set(err, "Redis %s: SCRIPT LOAD failed: %s", s->where,
                          r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
        else
            memcpy(sha, r->str, 41);
    }
    arena_reset(replies);
    if (rc)
        conn_drop(s, cp);
    else
        s->scripts_reload = false;
    return rc;
}

static int conn_ensure(store_redis *s, perr *err) { return s->c ? 0 : conn_open(s, &s->c, err); }

/* ---------------------------------------------------------------- blob encoding */

/* Encoding writes into room reserved beforehand, a pointer moving on: appending byte by byte
 * through buf_* (a room check and a NUL after every write) was most of encode_state's time. */
#define VARINT_MAX 10

static unsigned char *w_varint(unsigned char *w, uint64_t v)
{
    while (v >= 0x80) {
        *w++ = (unsigned char)(v | 0x80);
        v >>= 7;
    }
    *w++ = (unsigned char)v;
    return w;
}

static unsigned char *w_svarint(unsigned char *w, int64_t v)
{
    return w_varint(w, ((uint64_t)v << 1) ^ (uint64_t)(v >> 63));
}

static unsigned char *w_bytes(unsigned char *w, const void *p, size_t n)
{
    memcpy(w, p, n);
    return w + n;
}

/* The most w_value writes for v. */
static size_t value_room(const value_t *v)
{
    return 1 + (v->type == VAL_STR ? VARINT_MAX + v->len : 8);
}

static unsigned char *w_value(unsigned char *w, const value_t *v)
{
    switch (v->type) {
    case VAL_BOOL: *w++ = v->b ? 2 : 1; return w;
    case VAL_NUM: {
        uint64_t bits;
        memcpy(&bits, &v->num, sizeof bits);
        *w++ = 3;
        for (int i = 0; i < 8; i++)
            *w++ = (unsigned char)(bits >> (8 * i) & 0xff);
        return w;
    }
    case VAL_STR:
        *w++ = 4;
        w = w_varint(w, v->len);
        return w_bytes(w, v->s, v->len);
    default: *w++ = 0; return w;
    }
}

/* A field name's code (format v2): its index among KNOWN_NAMES (odd), or its length (even; the
 * name follows). Names are interned, so the last state's names by position are mostly compared
 * as pointers. */
static uint64_t name_code(store_redis *s, size_t i, const char *name)
{
    if (i < NAMES_KEPT && s->enc_names[i].name == name) return s->enc_names[i].code;
    uint64_t code = 0;
    for (size_t k = 0; k < N_KNOWN && !code; k++)
        if (strcmp(KNOWN_NAMES[k], name) == 0) code = (uint64_t)k << 1 | 1;
    if (!code) code = (uint64_t)strlen(name) << 1;
    if (i < NAMES_KEPT) {
        s->enc_names[i].name = name;
        s->enc_names[i].code = code;
    }
    return code;
}

/* A sent attribute (format v2) repeats the value of field j: the first such field, always, so that
 * the same state is the same bytes whatever was encoded before (the crash tests compare stores
 * byte for byte). -1: none does. */
static ssize_t sent_ref(const user_state *u, int attr)
{
    const value_t *v = &u->sent[attr];
    if (v->type != VAL_STR) return -1;
    /* value_eq for strings, its length test inline: ~10 attributes times ~25 fields, most of
     * another length, were half of encode_state's instructions */
    for (size_t j = 0; j < u->n_fields; j++) {
        const value_t *f = &u->fields[j].val;
        if (f->type == VAL_STR && f->len == v->len && memcmp(f->s, v->s, v->len) == 0)
            return (ssize_t)j;
    }
    return -1;
}

/* The buffer's write position after room for `more` bytes. */
static unsigned char *w_begin(buf *b, size_t more)
{
    buf_reserve(b, more);
    return (unsigned char *)b->data + b->len;
}

static void w_end(buf *b, unsigned char *w) { b->len = (size_t)(w - (unsigned char *)b->data); }

static void encode_state(store_redis *s, buf *b, const user_state *u)
{
    const char *ostr[4] = {u->assignment, u->applied_settings_of, u->gong_manager, u->waiting_for};
    size_t olen[4], idlen = strlen(u->id);
    size_t room = 4 + 5 * VARINT_MAX + idlen + VARINT_MAX; /* head, position, id, n_fields */
    for (int i = 0; i < 4; i++) {
        olen[i] = ostr[i] ? strlen(ostr[i]) : 0;
        room += VARINT_MAX + olen[i];
    }
    unsigned char *w = w_begin(b, room);
    *w++ = FORMAT_MAGIC;
    *w++ = FORMAT_VERSION;
    unsigned flags = (u->has_pos ? 1u : 0) | (u->deleted ? 2u : 0) | (u->in_scope ? 4u : 0) |
                     (u->created_waiting ? 8u : 0) | (u->needs_reconcile ? 16u : 0) |
                     (u->held ? 32u : 0) | FLAG_HELD_RECORDED;
    w = w_varint(w, flags);
    *w++ = (unsigned char)u->status;
    *w++ = (unsigned char)u->reason;
    if (u->has_pos) {
        w = w_svarint(w, u->pos.commit_timestamp);
        w = w_svarint(w, u->pos.commit_number);
        w = w_svarint(w, u->pos.sequence_number);
    }
    w = w_varint(w, idlen);
    w = w_bytes(w, u->id, idlen);
    for (int i = 0; i < 4; i++) { /* optional: len + 1, 0 for NULL */
        w = w_varint(w, ostr[i] ? olen[i] + 1 : 0);
        if (ostr[i]) w = w_bytes(w, ostr[i], olen[i]);
    }
    w = w_varint(w, u->n_fields);
    w_end(b, w);
    for (size_t i = 0; i < u->n_fields; i++) {
        const user_field *f = &u->fields[i];
        uint64_t code = name_code(s, i, f->name);
        size_t nl = code & 1 ? 0 : (size_t)(code >> 1);
        w = w_begin(b, VARINT_MAX + nl + value_room(&f->val));
        w = w_varint(w, code);
        w = w_bytes(w, f->name, nl);
        w_end(b, w_value(w, &f->val));
    }
    w = w_begin(b, VARINT_MAX);
    w_end(b, w_varint(w, ATTR__COUNT));
    for (int i = 0; i < ATTR__COUNT; i++) {
        ssize_t j = sent_ref(u, i);
        w = w_begin(b, 1 + VARINT_MAX + value_room(&u->sent[i]));
        if (j >= 0) {
            *w++ = TAG_FIELD_VALUE;
            w = w_varint(w, (uint64_t)j);
        } else {
            w = w_value(w, &u->sent[i]);
        }
        w_end(b, w);
    }
    b->data[b->len] = '\0';
}

/* ---------------------------------------------------------------- blob decoding */

typedef struct reader {
    const unsigned char *p, *end, *start;
    const char *bad; /* first problem, NULL while fine */
    size_t bad_at;
} reader;

/* Stops the reader: every later read sees the end, so decoding runs on without checks. */
static bool rd_fail(reader *r, const char *why)
{
    if (!r->bad) {
        r->bad = why;
        r->bad_at = (size_t)(r->p - r->start);
    }
    r->p = r->end;
    return false;
}

static uint64_t get_varint(reader *r)
{
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (r->p >= r->end) return rd_fail(r, "truncated number"), 0;
        unsigned char byte = *r->p++;
        v |= (uint64_t)(byte & 0x7f) << shift;
        if (!(byte & 0x80)) return v;
    }
    return rd_fail(r, "number too long"), 0;
}

static int64_t get_svarint(reader *r)
{
    uint64_t v = get_varint(r);
    return (int64_t)(v >> 1) ^ -(int64_t)(v & 1);
}

static unsigned get_byte(reader *r)
{
    if (r->p >= r->end) return rd_fail(r, "truncated"), 0;
    return *r->p++;
}

/* A length-prefixed string: points into the blob; no NUL inside (values are C strings). */
static const char *get_bytes(reader *r, uint64_t n, size_t *len)
{
    if (n > (uint64_t)(r->end - r->p)) return rd_fail(r, "string runs past the end"), NULL;
    const char *s = (const char *)r->p;
    if (memchr(s, 0, (size_t)n)) return rd_fail(r, "NUL byte inside a string"), NULL;
    r->p += n;
    *len = (size_t)n;
    return s;
}

/* An optional string into *member of u. */
static void get_ostr(reader *r, user_state *u, char **member)
{
    uint64_t n = get_varint(r);
    if (!n) return;
    size_t len;
    const char *s = get_bytes(r, n - 1, &len);
    if (s) user_state_set_strn(u, member, s, len);
}

/* A decoded string belongs to u, as user_state_set would have made it (pooled or not). */
static value_t get_value(reader *r, user_state *u)
{
    unsigned tag = get_byte(r);
    switch (tag) {
    case 0: return value_null();
    case 1: return value_bool(false);
    case 2: return value_bool(true);
    case 3: {
        if (r->end - r->p < 8) return rd_fail(r, "truncated number value"), value_null();
        uint64_t bits = 0;
        for (int i = 0; i < 8; i++)
            bits |= (uint64_t)r->p[i] << (8 * i);
        r->p += 8;
        double d;
        memcpy(&d, &bits, sizeof d);
        return value_num(d);
    }
    case 4: {
        size_t len;
        const char *s = get_bytes(r, get_varint(r), &len);
        if (!s) return value_null();
        value_t v = {.type = VAL_STR, .s = s, .len = len};
        return user_state_dup_value(u, &v);
    }
    default: return rd_fail(r, "unknown value type"), value_null();
    }
}

static user_state *state_take(store_redis *s, const char *id)
{
    user_state *u = s->n_pool ? s->pool[--s->n_pool] : user_state_new(NULL);
    u->pooled = s->pooled; /* its strings then go with state_recycle */
    user_state_set_str(u, &u->id, id);
    return u;
}

_Static_assert(VAL_NULL == 0, "state_recycle nulls values with memset");

/* Empties a state but keeps the struct, its fields array and its arena for the next batch. */
static void state_recycle(store_redis *s, user_state *u)
{
    if (s->n_pool >= POOL_MAX) {
        user_state_free(u);
        return;
    }
    /* a pooled state's strings are all in its arena, reset below, and the memset leaves every
     * value null (VAL_NULL is 0): walking its fields to null them one by one was 3% of the main
     * thread */
    if (!u->pooled) user_state_release_strings(u);
    user_field *fields = u->fields;
    size_t cap = u->cap_fields;
    arena strs = u->strs;
    memset(u, 0, sizeof *u);
    u->fields = fields;
    u->cap_fields = cap;
    u->strs = strs; /* its blocks serve the next state taken */
    arena_reset(&u->strs);
    arena_trim(&u->strs, 1024); /* a state's strings: ~600 bytes in the bench, two blocks */
    GROW(s->pool, s->n_pool, s->cap_pool);
    s->pool[s->n_pool++] = u;
}

/* The attributes last sent; in format v2 each may repeat the value of a field decoded before. */
static void get_sent(reader *r, user_state *u, int version)
{
    uint64_t n_sent = get_varint(r);
    if (n_sent > ATTR__COUNT) rd_fail(r, "more sent attributes than this build knows");
    for (uint64_t i = 0; i < n_sent && !r->bad; i++) {
        if (version != 1 && r->p < r->end && *r->p == TAG_FIELD_VALUE) {
            r->p++;
            uint64_t j = get_varint(r);
            if (j >= u->n_fields) {
                rd_fail(r, "a sent value refers past the fields");
                break;
            }
            /* a pooled state's strings live as long as the state and are never changed in place,
             * so the sent value can be the field's own string */
            u->sent[i] = u->pooled ? u->fields[j].val : user_state_dup_value(u, &u->fields[j].val);
        } else {
            u->sent[i] = get_value(r, u);
        }
    }
}

/* A field name: spelled out (format 1; v2 when not among KNOWN_NAMES) or known by index. */
static const char *get_name(store_redis *s, reader *r, size_t i, int version)
{
    uint64_t code = get_varint(r);
    if (version != 1 && (code & 1)) {
        uint64_t k = code >> 1;
        if (k >= N_KNOWN) return rd_fail(r, "a field name this build does not know"), NULL;
        if (!s->known[k]) s->known[k] = engine_intern(KNOWN_NAMES[k]);
        return s->known[k];
    }
    size_t nl;
    const char *name = get_bytes(r, version == 1 ? code : code >> 1, &nl);
    if (!name || !nl) return rd_fail(r, "empty field name"), NULL;
    if (i < NAMES_KEPT && s->names[i].len == nl && memcmp(s->names[i].name, name, nl) == 0)
        return s->names[i].name;
    buf_reset(&s->scratch);
    buf_append(&s->scratch, name, nl);
    const char *interned = engine_intern(s->scratch.data);
    if (i < NAMES_KEPT) {
        s->names[i].name = interned;
        s->names[i].len = strlen(interned); /* a name with a NUL never matches */
    }
    return interned;
}

/* The snapshot. Appended directly, not through user_state_set: the names were unique when
 * encoded, and set's duplicate scan would make decoding quadratic in the field count. */
static void get_fields(store_redis *s, reader *r, user_state *u, int version)
{
    uint64_t n = get_varint(r);
    if (n > (uint64_t)(r->end - r->p) / 2) rd_fail(r, "field count past the end");
    if (!r->bad && n > u->cap_fields) {
        u->cap_fields = (size_t)n;
        u->fields = xrealloc(u->fields, u->cap_fields * sizeof *u->fields);
    }
    for (uint64_t i = 0; i < n && !r->bad; i++) {
        const char *name = get_name(s, r, (size_t)i, version);
        if (!name) break;
        value_t v = get_value(r, u);
        u->fields[u->n_fields].name = name;
        u->fields[u->n_fields].val = v;
        u->n_fields++;
    }
}

/* Decodes a blob into a new state for id. A corrupt blob is an error naming the key. */
static int decode_state(store_redis *s, const char *id, const char *data, size_t len,
                        user_state **out, perr *err)
{
    reader r = {.p = (const unsigned char *)data,
                .end = (const unsigned char *)data + len,
                .start = (const unsigned char *)data};
    if (len < 2 || data[0] != FORMAT_MAGIC)
        return perr_set(err, "Redis %s: key '%su:%s' does not hold a user state (bad header)",
                        s->where, s->prefix, id);
    int version = (unsigned char)data[1];
    if (version != 1 && version != FORMAT_VERSION)
        return perr_set(err,
                        "Redis %s: key '%su:%s' holds a user state in format %d; this build reads "
                        "formats 1 and %d",
                        s->where, s->prefix, id, version, FORMAT_VERSION);
    r.p += 2;
    user_state *u = state_take(s, id);
    uint64_t flags = get_varint(&r);
    u->has_pos = flags & 1;
    u->deleted = flags & 2;
    u->in_scope = flags & 4;
    u->created_waiting = flags & 8;
    u->needs_reconcile = flags & 16;
    unsigned status = get_byte(&r), reason = get_byte(&r);
    if (status > PROV_DEACTIVATED) rd_fail(&r, "unknown provisioning status");
    if (reason >= REASON__COUNT) rd_fail(&r, "unknown reason");
    u->status = (prov_status)status;
    u->reason = (reason_code)reason;
    /* written before the held bit was: active out of scope was all a hold was known by */
    u->held =
        flags & FLAG_HELD_RECORDED ? (flags & 32) != 0 : u->status == PROV_ACTIVE && !u->in_scope;
    if (u->has_pos) {
        u->pos.commit_timestamp = get_svarint(&r);
        u->pos.commit_number = get_svarint(&r);
        u->pos.sequence_number = get_svarint(&r);
    }
    size_t idlen;
    const char *bid = get_bytes(&r, get_varint(&r), &idlen);
    if (bid && (idlen != strlen(id) || memcmp(bid, id, idlen) != 0))
        rd_fail(&r, "it holds the state of another user");
    get_ostr(&r, u, &u->assignment);
    get_ostr(&r, u, &u->applied_settings_of);
    get_ostr(&r, u, &u->gong_manager);
    get_ostr(&r, u, &u->waiting_for);
    if (version == 1) get_sent(&r, u, version);
    get_fields(s, &r, u, version);
    if (version != 1) get_sent(&r, u, version);
    if (!r.bad && r.p != r.end) rd_fail(&r, "trailing bytes");
    if (r.bad) {
        perr_set(err, "Redis %s: key '%su:%s' holds a corrupt user state: %s at byte %zu", s->where,
                 s->prefix, id, r.bad, r.bad_at);
        user_state_free(u);
        return -1;
    }
    u->dirty = false;
    *out = u;
    return 0;
}

/* ---------------------------------------------------------------- cache helpers */

static entry *entry_new(store_redis *s, const char *id)
{
    entry *e = arena_alloc(&s->mem, sizeof *e);
    *e = (entry){.id = arena_strdup(&s->mem, id)};
    strmap_put(&s->users, e->id, e);
    return e;
}

static void entry_drop(store_redis *s, const char *id)
{
    entry *e = strmap_del(&s->users, id);
    if (e && e->u) state_recycle(s, e->u);
}

static link_set *set_get(store_redis *s, const char *manager, bool create)
{
    link_set *l = strmap_get(&s->links, manager);
    if (!l && create) {
        l = arena_alloc(&s->mem, sizeof *l);
        *l = (link_set){0};
        strmap_put(&s->links, arena_strdup(&s->mem, manager), l);
    }
    return l;
}

#define SLOT_GONE UINT32_MAX
#define LINEAR_MAX 16 /* below this many, a scan is cheaper than hashing */

/* The index slot holding id, or where it would go (*found false). */
static size_t sl_probe(const strlist *l, const char *id, bool *found)
{
    size_t mask = l->slot_cap - 1, i = hash64(id, strlen(id), HASH64_SEED) & mask;
    size_t free_at = SIZE_MAX;
    for (;;) {
        uint32_t k = l->slot[i];
        if (k == 0) {
            *found = false;
            return free_at != SIZE_MAX ? free_at : i;
        }
        if (k == SLOT_GONE) {
            if (free_at == SIZE_MAX) free_at = i;
        } else if (strcmp(l->v[k - 1], id) == 0) {
            *found = true;
            return i;
        }
        i = (i + 1) & mask;
    }
}

/* (Re)builds the index at most half full, in the arena (a reset drops it with the rest). */
static void sl_index(store_redis *s, strlist *l)
{
    size_t cap = 64;
    while (cap < 2 * l->n + 2)
        cap *= 2;
    l->slot = arena_alloc(&s->mem, cap * sizeof *l->slot);
    memset(l->slot, 0, cap * sizeof *l->slot);
    l->slot_cap = cap;
    l->slot_used = 0;
    for (size_t i = 0; i < l->n; i++) {
        bool found;
        size_t at = sl_probe(l, l->v[i], &found);
        if (found) continue; /* cannot happen: the array has no duplicates */
        l->slot[at] = (uint32_t)(i + 1);
        l->slot_used++;
    }
}

/* The position of id in the array, or l->n. */
static size_t sl_find(store_redis *s, strlist *l, const char *id)
{
    if (!l->slot && l->n <= LINEAR_MAX) {
        for (size_t i = 0; i < l->n; i++)
            if (strcmp(l->v[i], id) == 0) return i;
        return l->n;
    }
    if (!l->slot) sl_index(s, l);
    bool found;
    size_t at = sl_probe(l, id, &found);
    return found ? l->slot[at] - 1 : l->n;
}

/* Appends without the membership test (the caller knows id is not there). Arrays grow in the
 * arena too: everything goes at reset in one step. */
static void sl_push(store_redis *s, strlist *l, const char *id)
{
    if (l->n == l->cap) {
        size_t nc = l->cap ? l->cap * 2 : 4;
        const char **nv = arena_alloc(&s->mem, nc * sizeof *nv);
        if (l->n) memcpy(nv, l->v, l->n * sizeof *nv);
        l->v = nv;
        l->cap = nc;
    }
    l->v[l->n++] = id;
    if (!l->slot) return;
    if (2 * (l->slot_used + 1) > l->slot_cap) {
        sl_index(s, l);
        return;
    }
    bool found;
    size_t at = sl_probe(l, id, &found);
    if (!l->slot[at]) l->slot_used++; /* a reused SLOT_GONE was counted already */
    l->slot[at] = (uint32_t)l->n;
}

static void sl_add(store_redis *s, strlist *l, const char *id)
{
    if (sl_find(s, l, id) < l->n) return;
    sl_push(s, l, id);
}

/* Removes id by moving the last entry into its place. */
static void sl_del(store_redis *s, strlist *l, const char *id)
{
    size_t i = sl_find(s, l, id);
    if (i == l->n) return;
    size_t last = l->n - 1;
    if (l->slot) {
        bool found;
        l->slot[sl_probe(l, id, &found)] = SLOT_GONE;
        if (i != last) l->slot[sl_probe(l, l->v[last], &found)] = (uint32_t)(i + 1);
    }
    l->v[i] = l->v[last];
    l->n = last;
}

static void set_apply(store_redis *s, link_set *l, const char *report, bool add)
{
    if (add)
        sl_add(s, &l->members, report);
    else
        sl_del(s, &l->members, report);
}

/* Fills a link set with the members Redis has (m[0..n), NULL when it has none), then replays the
 * changes made before it was loaded. */
static void set_load(store_redis *s, const char *manager, link_set *l, redisReply *const *m,
                     size_t n)
{
    l->loading = false;
    /* SMEMBERS has no duplicates: appended without the membership test */
    l->members = (strlist){0};
    bool had_seen = l->seen.n > 0;
    for (size_t i = 0; i < n; i++) {
        if (m[i]->type != REDIS_REPLY_STRING) continue;
        const char *id = arena_strndup(&s->mem, m[i]->str, m[i]->len);
        sl_push(s, &l->members, id);
        if (had_seen)
            sl_add(s, &l->seen, id);
        else
            sl_push(s, &l->seen, id);
    }
    if (s->pending) overlay_links(s, manager, l);
    if (l->has_ops)
        for (size_t i = 0; i < s->n_ops; i++)
            if (strcmp(s->ops[i].manager, manager) == 0)
                set_apply(s, l, s->ops[i].report, s->ops[i].add);
    l->has_ops = false;
    l->loaded = true;
}

/* Fills a link set from an SMEMBERS reply. */
static int set_fill(store_redis *s, const char *manager, link_set *l, const redisReply *r,
                    perr *err)
{
    l->loading = false;
    if (r->type != REDIS_REPLY_ARRAY)
        return perr_set(err, "Redis %s: reading key '%sw:%s': %s", s->where, s->prefix, manager,
                        r->type == REDIS_REPLY_ERROR ? r->str : "not a set");
    set_load(s, manager, l, r->element, r->elements);
    return 0;
}

/* Fills a user entry from a GET reply (or old_form_read's HGET). */
static int entry_fill(store_redis *s, entry *e, const redisReply *r, perr *err)
{
    e->pending = false;
    bool old = !e->old_form && reply_is_err(r, "WRONGTYPE");
    if (old) {
        /* the hash form of builds before, or not a user at all: old_form_read, which every
         * reader of users runs before it returns, says which */
        e->old_form = true;
        GROW(s->olds, s->n_olds, s->cap_olds);
        s->olds[s->n_olds++] = e;
    }
    if (old || r->type == REDIS_REPLY_NIL) {
        e->u = NULL;
        e->stored = PROV_NEVER;
        return 0;
    }
    if (r->type != REDIS_REPLY_STRING)
        return perr_set(err, "Redis %s: reading key '%su:%s': %s", s->where, s->prefix, e->id,
                        r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
    if (decode_state(s, e->id, r->str, r->len, &e->u, err) < 0) return -1;
    e->stored = e->u->status;
    return 0;
}

/* r: HMGET's reply, card: SCARD of the active set's (append_company_get). */
static int company_fill(store_redis *s, const redisReply *r, const redisReply *card, perr *err)
{
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 4)
        return perr_set(err, "Redis %s: reading key '%scompany': %s", s->where, s->prefix,
                        r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
    company_state c = {.provisioned = -1};
    const redisReply *t = r->element[0], *n = r->element[1];
    long v = 0;
    if (t->type == REDIS_REPLY_STRING) {
        if (t->len != 1 || (t->str[0] != '0' && t->str[0] != '1'))
            return perr_set(err, "Redis %s: key '%scompany': toggle_sent is not 0 or 1", s->where,
                            s->prefix);
        c.toggle_sent = t->str[0] == '1';
    }
    if (n->type == REDIS_REPLY_STRING) {
        if (parse_uint(n->str, n->len, 999999999, &v) < 0)
            return perr_set(err, "Redis %s: key '%scompany': n_sent is not a number", s->where,
                            s->prefix);
        c.n_sent = (uint32_t)v;
    }
    const redisReply *d = r->element[2]; /* "ts,ts,...": the R8.3 window */
    if (d->type == REDIS_REPLY_STRING && d->len) {
        const char *p = d->str, *end = d->str + d->len;
        /* "ts" one deactivation, "ts*n" a mark of n (written once the window is full) */
        while (p < end && c.n_deacts < ENGINE_MAX_WINDOW) {
            char *next;
            long long ts = strtoll(p, &next, 10);
            unsigned long long count = 1;
            if (next != p && next < end && *next == '*') {
                const char *q = next + 1;
                /* digits only: strtoull would take a sign or spaces */
                count = q < end && *q >= '0' && *q <= '9' ? strtoull(q, &next, 10) : 0;
                if (next == q || count == 0 || count > UINT32_MAX) next = (char *)p;
            }
            if (next == p || (next < end && *next != ','))
                return perr_set(err, "Redis %s: key '%scompany': deacts is not a list of numbers",
                                s->where, s->prefix);
            c.deacts[c.n_deacts++] = (deact_mark){.ts = ts, .n = (uint32_t)count};
            p = next + (next < end);
        }
    }
    if (card->type != REDIS_REPLY_INTEGER)
        return perr_set(err, "Redis %s: reading key '%sactive': %s", s->where, s->prefix,
                        card->type == REDIS_REPLY_ERROR ? card->str : "unexpected reply");
    /* the set counts only once it is complete (store_redis_count_provisioned) */
    const redisReply *done = r->element[3];
    if (done->type == REDIS_REPLY_STRING && done->len == 1 && done->str[0] == '1')
        c.provisioned = card->integer;
    s->company = c;
    s->company_loaded = true;
    return 0;
}

/* MGET answers for many keys in one command: Redis spent ~44% less CPU a key than on one GET
 * each (README, Performance); chunks keep the replies decoded while Redis runs the rest. */
#define MGET_KEYS 128

/* The MGETs append_mgets makes of n users from the first. */
static size_t mgets_for(size_t n) { return (n + MGET_KEYS - 1) / MGET_KEYS; }

/* MGETs of todo_u[from..to), each chunk's end noted in mget_end. */
static void append_mgets(store_redis *s, size_t from, size_t to)
{
    cmdb *b = &s->cmd;
    while (from < to) {
        size_t end = to - from > MGET_KEYS ? from + MGET_KEYS : to;
        cb_begin(b);
        cb_str(b, "MGET");
        for (; from < end; from++)
            cb_key(b, s, "u:", s->todo_u[from]->id);
        cb_send(s, b);
        GROW(s->mget_end, s->n_mget, s->cap_mget);
        s->mget_end[s->n_mget++] = end;
    }
}

static void append_get(store_redis *s, const char *id)
{
    cmdb *b = &s->cmd;
    cb_begin(b);
    cb_str(b, "GET");
    cb_key(b, s, "u:", id);
    cb_send(s, b);
}

static void append_smembers(store_redis *s, const char *manager)
{
    cmdb *b = &s->cmd;
    cb_begin(b);
    cb_str(b, "SMEMBERS");
    cb_key(b, s, "w:", manager);
    cb_send(s, b);
}

#define COMPANY_REPLIES 2 /* append_company_get's */
static void append_company_get(store_redis *s)
{
    cmdb *b = &s->cmd;
    cb_begin(b);
    cb_str(b, "HMGET");
    cb_key(b, s, "company", NULL);
    cb_str(b, "toggle_sent");
    cb_str(b, "n_sent");
    cb_str(b, "deacts");
    cb_str(b, "active_set");
    cb_send(s, b);
    cb_begin(b);
    cb_str(b, "SCARD");
    cb_key(b, s, "active", NULL);
    cb_send(s, b);
}

/* Runs one exchange built by `build` (appends, returns the reply count); retries once on a fresh
 * connection when an established one turns out broken (Redis restarted between batches). Every
 * exchange here is idempotent, so the retry is safe. */
typedef size_t (*build_fn)(store_redis *s, void *arg);

/* The same, with each called on every reply as it is read (exchange_each); after a reconnect it
 * may see a reply index a second time. */
static int run_exchange_each(store_redis *s, build_fn build, void *arg, reply_fn each, void *ctx,
                             const char *doing, perr *err)
{
    for (int attempt = 0;; attempt++) {
        ahead_settle(s); /* before the connection is looked at: it may find it broken */
        bool had = s->c != NULL;
        if (conn_ensure(s, err) < 0) return -1;
        buf_reset(&s->out);
        size_t n = build(s, arg);
        if (exchange_each(s, n, NULL, doing, each, ctx, err) == 0) return 0;
        if (!had || attempt) return -1;
    }
}

static int run_exchange(store_redis *s, build_fn build, void *arg, const char *doing, perr *err)
{
    return run_exchange_each(s, build, arg, NULL, NULL, doing, err);
}

/* The one reply of an exchange just run has to be no error; the replies are freed. */
static int reply_ok(store_redis *s, const char *doing, perr *err)
{
    const redisReply *r = s->rep[0];
    int rc = r->type == REDIS_REPLY_ERROR
                 ? perr_set(err, "Redis %s: %s: %s", s->where, doing, r->str)
                 : 0;
    replies_free(s);
    return rc;
}

/* Runs a one-command exchange whose reply only has to be no error. */
static int run_simple(store_redis *s, build_fn build, void *arg, const char *doing, perr *err)
{
    if (run_exchange(s, build, arg, doing, err) < 0) return -1;
    return reply_ok(s, doing, err);
}

/* ---------------------------------------------------------------- misses */

static void fail_sticky(store_redis *s, const perr *err)
{
    if (s->failed) return;
    s->failed = true;
    s->fail_err = *err;
}

static size_t build_get(store_redis *s, void *arg)
{
    append_get(s, arg);
    return 1;
}

static size_t build_old_form(store_redis *s, void *arg)
{
    (void)arg;
    for (size_t i = 0; i < s->n_olds; i++) {
        cb_begin(&s->cmd);
        cb_str(&s->cmd, "HGET");
        cb_key(&s->cmd, s, "u:", s->olds[i]->id);
        cb_str(&s->cmd, "blob");
        cb_send(s, &s->cmd);
    }
    return s->n_olds;
}

static size_t build_nils_exist(store_redis *s, void *arg)
{
    (void)arg;
    cb_begin(&s->cmd);
    cb_str(&s->cmd, "EXISTS");
    for (size_t i = 0; i < s->n_nils; i++)
        cb_key(&s->cmd, s, "u:", s->nils[i]->id);
    cb_send(s, &s->cmd);
    return 1;
}

static size_t build_nils_get(store_redis *s, void *arg)
{
    (void)arg;
    for (size_t i = 0; i < s->n_nils; i++)
        append_get(s, s->nils[i]->id);
    return s->n_nils;
}

/* The users an MGET answered nil for: none has a key, mostly (new users). If any has one now,
 * the hash form of builds before (or a user another instance wrote meanwhile), they are read
 * again one GET each, which tells the forms apart (WRONGTYPE: olds). */
static int nils_read(store_redis *s, perr *err)
{
    if (run_exchange(s, build_nils_exist, NULL, "reading users", err) < 0) return -1;
    const redisReply *r = s->rep[0];
    if (r->type != REDIS_REPLY_INTEGER) {
        perr_set(err, "Redis %s: EXISTS %su:...: %s", s->where, s->prefix,
                 r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
        replies_free(s);
        return -1;
    }
    bool some = r->integer > 0;
    replies_free(s);
    if (!some) return 0;
    if (run_exchange(s, build_nils_get, NULL, "reading users", err) < 0) return -1;
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < s->n_nils; i++)
        rc = entry_fill(s, s->nils[i], s->rep[i], err);
    replies_free(s);
    return rc;
}

/* The users whose GET answered WRONGTYPE, after the read that met them (rc its result): their
 * blob from the hash form builds before wrote (a key of another type stays an error naming it).
 * Read only: the user's next write replaces the hash. On failure, this one's or the read's, they
 * are forgotten, so that nothing stands in for what Redis holds. */
static int old_form_read(store_redis *s, int rc, perr *err)
{
    if (rc == 0 && s->n_nils) rc = nils_read(s, err);
    for (size_t i = 0; rc < 0 && i < s->n_nils; i++)
        entry_drop(s, s->nils[i]->id);
    s->n_nils = 0;
    if (rc == 0 && s->n_olds) {
        rc = run_exchange(s, build_old_form, NULL, "reading users in the hash form", err);
        for (size_t i = 0; rc == 0 && i < s->n_olds; i++)
            rc = entry_fill(s, s->olds[i], s->rep[i], err);
        replies_free(s);
        if (rc == 0) s->stats.old_form += s->n_olds;
    }
    if (rc == 0 && s->n_olds && !s->old_form_logged) {
        s->old_form_logged = true;
        log_msg(LOG_INFO,
                "read users in the hash form of earlier builds; each one's next write "
                "stores it as a string",
                "prefix", s->prefix, NULL);
    }
    for (size_t i = 0; rc < 0 && i < s->n_olds; i++)
        entry_drop(s, s->olds[i]->id);
    s->n_olds = 0;
    return rc;
}

static size_t build_smembers(store_redis *s, void *arg)
{
    append_smembers(s, arg);
    return 1;
}

static size_t build_company(store_redis *s, void *arg)
{
    (void)arg;
    append_company_get(s);
    return COMPANY_REPLIES;
}

/* A user not prefetched: one round trip. "Not found" is cached too. */
/* A user a pending write leaves in Redis: read from the write, not from Redis (which does not have
 * it yet). 1 when found, 0 when not, -1 when its blob does not decode. */
static int overlay_fill(store_redis *s, const char *id, entry **out, perr *err)
{
    const char *blob;
    const wuser *wu = s->pending ? overlay_user(s, id, &blob) : NULL;
    if (!wu) return 0;
    entry *e = entry_new(s, id);
    if (decode_state(s, e->id, blob, wu->blob_len, &e->u, err) < 0) {
        strmap_del(&s->users, id);
        return -1;
    }
    e->stored = wu->status;
    *out = e;
    return 1;
}

/* The company state a pending write leaves, if any. */
static bool company_from_overlay(store_redis *s)
{
    const company_state *c = s->pending ? overlay_company(s) : NULL;
    if (!c) return false;
    s->company = *c;
    s->company_loaded = true;
    return true;
}

static entry *load_miss(store_redis *s, const char *id)
{
    perr err;
    /* the batch is lost already: with Redis hanging, every further read would wait a timeout */
    if (s->failed) return NULL;
    entry *o = NULL;
    int orc = overlay_fill(s, id, &o, &err);
    if (orc > 0) return o;
    if (orc < 0) {
        fail_sticky(s, &err);
        return NULL;
    }
    s->stats.misses++;
    if (run_exchange(s, build_get, (void *)id, "reading a user", &err) < 0) {
        fail_sticky(s, &err);
        return NULL;
    }
    entry *e = entry_new(s, id);
    int rc = entry_fill(s, e, s->rep[0], &err);
    replies_free(s);
    rc = old_form_read(s, rc, &err);
    if (rc < 0) {
        strmap_del(&s->users, id);
        fail_sticky(s, &err);
        return NULL;
    }
    return e;
}

/* ---------------------------------------------------------------- engine_store */

static user_state *rs_get(void *ctx, const char *id)
{
    store_redis *s = ctx;
    ahead_settle(s);
    entry *e = strmap_get(&s->users, id);
    if (!e) e = load_miss(s, id);
    return e ? e->u : NULL;
}

static user_state *rs_get_or_create(void *ctx, const char *id)
{
    store_redis *s = ctx;
    ahead_settle(s);
    entry *e = strmap_get(&s->users, id);
    if (!e) e = load_miss(s, id);
    if (!e) { /* the read failed (sticky error): a cached stand-in keeps the engine going, and
               * flush refuses to write this batch */
        e = entry_new(s, id);
        e->stored = PROV_NEVER;
    }
    if (!e->u) e->u = state_take(s, id);
    return e->u;
}

static void rs_changed(void *ctx, user_state *u)
{
    store_redis *s = ctx;
    u->dirty = true; /* flush writes every cached state still dirty */
    if (s->changed_all) return;
    if (s->n_changed == CHANGED_MAX) {
        s->changed_all = true;
        s->n_changed = 0;
        return;
    }
    GROW(s->changed, s->n_changed, s->cap_changed);
    s->changed[s->n_changed++] = u;
}

static void link_change(store_redis *s, const char *manager, const char *report, bool add)
{
    link_set *l = set_get(s, manager, true);
    const char *r = arena_strdup(&s->mem, report);
    if (l->loaded)
        set_apply(s, l, r, add);
    else
        l->has_ops = true;
    sl_add(s, &l->seen, r);
    GROW(s->ops, s->n_ops, s->cap_ops);
    s->ops[s->n_ops++] = (link_op){
        .manager = arena_strdup(&s->mem, manager), .report = r, .seq = s->op_seq++, .add = add};
}

static void rs_link_add(void *ctx, const char *manager, const char *report)
{
    link_change(ctx, manager, report, true);
}

static void rs_link_del(void *ctx, const char *manager, const char *report)
{
    link_change(ctx, manager, report, false);
}

static size_t rs_links(void *ctx, const char *manager, const char *const **reports)
{
    store_redis *s = ctx;
    link_set *l = set_get(s, manager, true);
    if (!l->loaded && s->failed) return 0;
    if (!l->loaded) {
        perr err;
        if (run_exchange(s, build_smembers, (void *)manager, "reading waiting links", &err) < 0) {
            fail_sticky(s, &err);
            return 0;
        }
        int rc = set_fill(s, manager, l, s->rep[0], &err);
        replies_free(s);
        if (rc < 0) {
            fail_sticky(s, &err);
            return 0;
        }
    }
    *reports = l->members.v;
    return l->members.n;
}

static company_state *rs_company(void *ctx)
{
    store_redis *s = ctx;
    if (!s->company_loaded && s->failed) return &s->company;
    if (!s->company_loaded && !company_from_overlay(s)) {
        perr err;
        if (run_exchange(s, build_company, NULL, "reading the company state", &err) < 0) {
            fail_sticky(s, &err);
        } else {
            if (company_fill(s, s->rep[0], s->rep[1], &err) < 0) fail_sticky(s, &err);
            replies_free(s);
        }
        s->company_loaded = true; /* on failure the defaults stand in; the batch is poisoned */
    }
    return &s->company;
}

static void rs_company_changed(void *ctx) { ((store_redis *)ctx)->company_dirty = true; }

/* ---------------------------------------------------------------- open / close */

/* hiredis 0.14 writes with write(): a server gone away would kill the process with SIGPIPE
 * instead of giving us EPIPE. Ignored only when nobody installed a handler. */
static void ignore_sigpipe(void)
{
    struct sigaction old;
    if (sigaction(SIGPIPE, NULL, &old) == 0 && old.sa_handler == SIG_DFL) {
        struct sigaction ign = {0};
        ign.sa_handler = SIG_IGN;
        sigemptyset(&ign.sa_mask);
        sigaction(SIGPIPE, &ign, NULL);
    }
}

int store_redis_open(const store_redis_opts *o, store_redis **out, perr *err)
{
    *out = NULL;
    if (!o || !o->url || !*o->url) return perr_set(err, "no Redis URL given");
    ignore_sigpipe();
    store_redis *s = xcalloc(1, sizeof *s);
    s->timeout_ms = o->timeout_ms > 0 ? o->timeout_ms : 2000;
    s->company.provisioned = -1;
    s->prefix = xstrdup(o->prefix ? o->prefix : "");
    s->prefix_len = strlen(s->prefix);
    arena_init(&s->mem, 64 * 1024);
    arena_init(&s->rmem, 64 * 1024);
    arena_init(&s->wmem, 64 * 1024);
    s->pooled = !o->keep_cache;
    s->read_only = o->read_only;
    /* keys in s->mem, reset with the maps (store_redis_reset) */
    strmap_init_borrowed(&s->users);
    strmap_init_borrowed(&s->overlay);
    strmap_init_borrowed(&s->links);
    buf_init(&s->cmd.data);
    buf_init(&s->out);
    buf_init(&s->scratch);
    s->iface = (engine_store){.ctx = s,
                              .get = rs_get,
                              .get_or_create = rs_get_or_create,
                              .changed = rs_changed,
                              .link_add = rs_link_add,
                              .link_del = rs_link_del,
                              .links = rs_links,
                              .company = rs_company,
                              .company_changed = rs_company_changed};
    if (parse_url(s, o->url, err) < 0 || conn_open(s, &s->c, err) < 0 ||
        (o->writes_ahead && conn_open(s, &s->wc, err) < 0)) {
        store_redis_close(s);
        return -1;
    }
    *out = s;
    return 0;
}

/* Empties a strmap but keeps its slot array for the next batch. */
static void map_clear(strmap *m)
{
    for (size_t i = 0; i < m->cap; i++) {
        if (!m->borrowed) free(m->slots[i].key);
        m->slots[i].key = NULL;
    }
    m->len = 0;
}

void store_redis_reset(store_redis *s)
{
    ahead_settle(s);
    for (size_t i = 0; i < s->users.cap; i++) {
        entry *e = s->users.slots[i].key ? s->users.slots[i].val : NULL;
        if (e && e->u) state_recycle(s, e->u);
    }
    map_clear(&s->users);
    map_clear(&s->links);
    arena_reset(&s->mem);
    arena_trim(&s->mem, KEEP_BYTES);
    buf_trim(&s->out);
    s->n_ops = 0;
    s->n_changed = 0;
    s->changed_all = false;
    s->company_loaded = s->company_dirty = false;
    s->failed = false;
}

void store_redis_close(store_redis *s)
{
    if (!s) return;
    store_redis_reset(s);
    for (size_t i = 0; i < s->n_pool; i++)
        user_state_free(s->pool[i]);
    free(s->pool);
    free(s->changed);
    strmap_free(&s->users, NULL);
    strmap_free(&s->overlay, NULL);
    strmap_free(&s->links, NULL);
    arena_free(&s->mem);
    replies_free(s);
    conn_drop(s, &s->c);
    conn_drop(s, &s->wc);
    /* after the readers, whose partial replies may live there */
    arena_free(&s->rmem);
    arena_free(&s->wmem);
    cb_free(&s->cmd);
    buf_free(&s->out);
    buf_free(&s->scratch);
    free(s->rep);
    free(s->wrep);
    while (s->pending) {
        store_write *w = s->pending;
        s->pending = w->next;
        write_free(w);
    }
    write_free(s->spare);
    free(s->ops);
    free(s->net);
    free(s->todo_u);
    free(s->olds);
    free(s->nils);
    free(s->mget_end);
    free(s->todo_w);
    url_free(s);
    free(s->prefix);
    free(s);
}

engine_store *store_redis_iface(store_redis *s) { return &s->iface; }
const store_redis_stats *store_redis_get_stats(const store_redis *s) { return &s->stats; }

/* The engine's vtable has no error path: a read it caused that failed (a user, a waiting set or
 * the company state not prefetched, Redis down or a corrupt value) leaves a stand-in in the cache
 * and this flag, and flush refuses to write the batch. */
bool store_redis_failed(const store_redis *s, perr *err)
{
    if (!s->failed) return false;
    if (err) *err = s->fail_err;
    return true;
}

static size_t build_ping(store_redis *s, void *arg)
{
    (void)arg;
    cb_begin(&s->cmd);
    cb_str(&s->cmd, "PING");
    cb_send(s, &s->cmd);
    return 1;
}

int store_redis_ping(store_redis *s, perr *err)
{
    return run_simple(s, build_ping, NULL, "PING", err);
}

/* ---------------------------------------------------------------- prefetch */

/* SMISMEMBER waiting w:{id}...: which of the waiting sets to read exist (an empty set is no key) */
static void append_waiting_exist(store_redis *s)
{
    cmdb *b = &s->cmd;
    cb_begin(b);
    cb_str(b, "SMISMEMBER");
    cb_key(b, s, "waiting", NULL);
    for (size_t i = 0; i < s->n_todo_w; i++)
        cb_key(b, s, "w:", s->todo_w[i]);
    cb_send(s, b);
}

static size_t build_prefetch(store_redis *s, void *arg)
{
    bool *company = arg;
    s->n_mget = s->ahead_sent ? mgets_for(s->ahead_n) : 0;
    append_mgets(s, s->ahead_sent ? s->ahead_n : 0, s->n_todo_u);
    size_t n_w = s->n_todo_w;
    if (s->indexed && n_w) {
        append_waiting_exist(s);
        n_w = 1;
    } else {
        for (size_t i = 0; i < n_w; i++)
            append_smembers(s, s->todo_w[i]);
    }
    if (*company) append_company_get(s);
    return s->n_mget + n_w + (*company ? COMPANY_REPLIES : 0);
}

static size_t build_waiting_sets(store_redis *s, void *arg)
{
    (void)arg;
    for (size_t i = 0; i < s->n_todo_w; i++)
        append_smembers(s, s->todo_w[i]);
    return s->n_todo_w;
}

/* The waiting sets of todo_w read with their SMEMBERS, in order from reply k on. */
static int fill_sets(store_redis *s, size_t k, int rc, perr *err)
{
    for (size_t i = 0; i < s->n_todo_w; i++, k++) {
        link_set *l = set_get(s, s->todo_w[i], false);
        if (rc == 0 && set_fill(s, s->todo_w[i], l, s->rep[k], err) < 0) rc = -1;
        l->loading = false;
    }
    return rc;
}

/* With the index: the SMISMEMBER reply r says which sets of todo_w exist. The others are empty
 * and loaded at once; todo_w keeps those to read: a subject's, and a named user's when the user
 * is active (check (c)). The set of a manager only named, not active, is used by no decision
 * (links() reads it if one asks): during an import, thousands of reports wait for such managers,
 * and each event of one of them read the whole set. */
static int sift_sets(store_redis *s, const redisReply *r, perr *err)
{
    if (r->type != REDIS_REPLY_ARRAY || r->elements != s->n_todo_w) {
        for (size_t i = 0; i < s->n_todo_w; i++)
            set_get(s, s->todo_w[i], false)->loading = false;
        s->n_todo_w = 0;
        return perr_set(err, "Redis %s: SMISMEMBER %swaiting: %s", s->where, s->prefix,
                        r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
    }
    size_t kept = 0;
    for (size_t i = 0; i < s->n_todo_w; i++) {
        const char *id = s->todo_w[i];
        link_set *l = set_get(s, id, false);
        const entry *e;
        if (r->element[i]->type == REDIS_REPLY_INTEGER && r->element[i]->integer == 0)
            set_load(s, id, l, NULL, 0);
        else if (l->subject ||
                 ((e = strmap_get(&s->users, id)) && e->u && e->u->status == PROV_ACTIVE))
            s->todo_w[kept++] = id;
        else
            l->loading = false;
    }
    s->n_todo_w = kept;
    return 0;
}

typedef struct fill_ctx {
    int rc;
    perr *err;
} fill_ctx;

/* A prefetch's MGET replies (the first n_mget), decoded while Redis still runs the rest. */
static void fill_user(store_redis *s, size_t i, const redisReply *r, void *ctx)
{
    fill_ctx *f = ctx;
    if (i >= s->n_mget || f->rc < 0) return;
    size_t from = i ? s->mget_end[i - 1] : 0, n = s->mget_end[i] - from;
    if (r->type != REDIS_REPLY_ARRAY || r->elements != n) {
        f->rc = perr_set(f->err, "Redis %s: reading users (MGET %su:%s...): %s", s->where,
                         s->prefix, s->todo_u[from]->id,
                         r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
        return;
    }
    for (size_t k = 0; k < n && f->rc == 0; k++) {
        entry *e = s->todo_u[from + k];
        const redisReply *v = r->element[k];
        if (!e->pending) continue;        /* (read before a reconnect) */
        if (v->type == REDIS_REPLY_NIL) { /* no key, or one of another form: old_form_read */
            GROW(s->nils, s->n_nils, s->cap_nils);
            s->nils[s->n_nils++] = e;
        }
        if (entry_fill(s, e, v, f->err) < 0) f->rc = -1;
    }
}

/* id into the prefetch's users to read (todo_u), unless it is cached or a pending write has it
 * (then it is cached from there); -1 when that write's blob does not decode. */
static int todo_user(store_redis *s, const char *id, perr *err)
{
    if (strmap_get(&s->users, id)) return 0;
    entry *o;
    int found = overlay_fill(s, id, &o, err);
    if (found) return found < 0 ? -1 : 0;
    entry *e = entry_new(s, id);
    e->pending = true;
    GROW(s->todo_u, s->n_todo_u, s->cap_todo_u);
    s->todo_u[s->n_todo_u++] = e;
    return 0;
}

/* One prefetch round trip: these users not cached (and, with links, the waiting sets naming them
 * as manager); with the index, a second one for the waiting sets that exist. ids[0..n_subjects)
 * are subjects, the rest only named (sift_sets). */
static int prefetch_round(store_redis *s, const char *const *ids, size_t n, size_t n_subjects,
                          bool links, perr *err)
{
    s->n_todo_u = s->ahead_n; /* read ahead: their replies come first */
    s->n_todo_w = 0;
    for (size_t i = 0; i < n; i++) {
        const char *id = ids[i];
        if (!id || !*id) continue;
        if (todo_user(s, id, err) < 0) {
            /* a blob this process encoded: a bug, but no half-read batch stays behind */
            fail_sticky(s, err);
            return -1;
        }
        if (!links) continue;
        link_set *l = set_get(s, id, true);
        if (i < n_subjects) l->subject = true;
        if (!l->loaded && !l->loading) {
            l->loading = true;
            GROW(s->todo_w, s->n_todo_w, s->cap_todo_w);
            s->todo_w[s->n_todo_w++] = arena_strdup(&s->mem, id);
        }
    }
    bool company = !s->company_loaded && !company_from_overlay(s);
    fill_ctx f = {.err = err};
    s->ahead_taking = true;
    int rc =
        run_exchange_each(s, build_prefetch, &company, fill_user, &f, "prefetching users", err);
    s->ahead_n = 0;
    s->ahead_sent = s->ahead_taking = false;
    if (rc == 0) rc = f.rc;
    size_t k = s->n_mget;
    for (size_t i = 0; i < s->n_todo_u; i++) {
        entry *e = s->todo_u[i];
        /* not read, or corrupt: forget it, so that nothing stands in for what Redis holds */
        if (e->pending || (rc < 0 && !e->u)) strmap_del(&s->users, e->id);
    }
    bool sifted = s->indexed && s->n_todo_w;
    if (sifted && rc == 0) {
        if (sift_sets(s, s->rep[k], err) < 0) rc = -1;
        k++;
    } else if (!sifted) {
        rc = fill_sets(s, k, rc, err);
        k += s->n_todo_w;
    }
    if (rc == 0 && company && company_fill(s, s->rep[k], s->rep[k + 1], err) < 0) rc = -1;
    replies_free(s);
    if (sifted && rc == 0 && s->n_todo_w) {
        rc = run_exchange(s, build_waiting_sets, NULL, "reading waiting sets", err);
        rc = fill_sets(s, 0, rc, err);
    } else if (sifted) {
        for (size_t i = 0; i < s->n_todo_w; i++) /* not read: a later links() reads it */
            set_get(s, s->todo_w[i], false)->loading = false;
    }
    replies_free(s);
    /* after the sifting, which saw the hash form's users as not stored: a manager only named that
     * is still a hash has its waiting set read when links() asks (a miss), not here */
    return old_form_read(s, rc, err);
}

/* A read of this batch failed (fail_sticky): every prefetch fails with its error until
 * store_redis_reset. */
static int still_failed(const store_redis *s, perr *err)
{
    if (err) *err = s->fail_err;
    return -1;
}

void store_redis_prefetch_ahead(store_redis *s, const char *const *ids, size_t n)
{
    if (s->failed || s->ahead_n) return;
    perr err;
    s->n_todo_u = 0;
    for (size_t i = 0; i < n; i++) {
        if (!ids[i] || !*ids[i] || todo_user(s, ids[i], &err) == 0) continue;
        fail_sticky(s, &err); /* as the prefetch would */
        break;
    }
    size_t k = s->ahead_n = s->n_todo_u;
    if (!k || s->failed || conn_ensure(s, &err) < 0) return; /* the prefetch sends them */
    buf_reset(&s->out);
    s->n_mget = 0;
    append_mgets(s, 0, k);
    s->ahead_sent = send_out(s, &s->c, NULL, "prefetching users", &err) == 0;
}

/* Anything but the prefetch that reads them: the replies read ahead are taken and forgotten,
 * and so are their users (pending, they would read as not stored). */
static void ahead_settle(store_redis *s)
{
    if (!s->ahead_n || s->ahead_taking) return;
    perr err;
    for (size_t i = 0; s->ahead_sent && i < mgets_for(s->ahead_n); i++) {
        void *r;
        if (get_reply(s, &s->c, &r, "prefetching users", &err) < 0) break; /* dropped */
    }
    replies_free(s);
    for (size_t i = 0; i < s->ahead_n; i++)
        if (s->todo_u[i]->pending) strmap_del(&s->users, s->todo_u[i]->id);
    s->ahead_n = s->n_todo_u = 0;
    s->ahead_sent = false;
}

int store_redis_prefetch(store_redis *s, const char *const *ids, size_t n, perr *err)
{
    if (s->failed) return still_failed(s, err);
    return prefetch_round(s, ids, n, n, true, err);
}

int store_redis_prefetch_named(store_redis *s, const char *const *ids, size_t n, size_t n_subjects,
                               perr *err)
{
    if (s->failed) return still_failed(s, err);
    return prefetch_round(s, ids, n, n_subjects, true, err);
}

int store_redis_prefetch_users(store_redis *s, const char *const *ids, size_t n, perr *err)
{
    if (s->failed) return still_failed(s, err);
    return prefetch_round(s, ids, n, n, false, err);
}

int store_redis_prefetch_waiting(store_redis *s, const char *const *managers, size_t n, size_t max,
                                 perr *err)
{
    if (s->failed) return still_failed(s, err);
    const char **more = NULL;
    size_t n_more = 0, cap_more = 0;
    for (size_t i = 0; i < n; i++) {
        const link_set *l = managers[i] && *managers[i] ? set_get(s, managers[i], false) : NULL;
        if (!l || !l->loaded || !l->members.n || l->prefetched) continue;
        if (max && l->members.n > max) continue; /* placed in parts, each read then */
        ((link_set *)l)->prefetched = true;      /* a manager named twice is looked at once */
        for (size_t j = 0; j < l->members.n; j++) {
            const char *r = l->members.v[j];
            if (strmap_get(&s->users, r)) continue;
            if (n_more == cap_more) {
                size_t nc = cap_more ? cap_more * 2 : 64;
                const char **nm = arena_alloc(&s->mem, nc * sizeof *nm);
                if (n_more) memcpy(nm, more, n_more * sizeof *nm);
                more = nm;
                cap_more = nc;
            }
            more[n_more++] = r;
        }
    }
    return n_more ? prefetch_round(s, more, n_more, n_more, false, err) : 0;
}

int store_redis_prefetch_chains(store_redis *s, const char *const *ids, size_t n, size_t depth,
                                perr *err)
{
    if (s->failed) return still_failed(s, err);
    const char *const *from = ids;
    for (size_t d = 0; d < depth && n; d++) {
        const char **level = arena_alloc(&s->mem, n * sizeof *level);
        size_t k = 0;
        for (size_t i = 0; i < n; i++) {
            const entry *e = from[i] ? strmap_get(&s->users, from[i]) : NULL;
            const char *m = e && e->u ? e->u->gong_manager : NULL;
            /* named twice in a level: prefetch_round reads it once */
            if (m && *m && !strmap_get(&s->users, m)) level[k++] = m;
        }
        if (k && prefetch_round(s, level, k, k, false, err) < 0) return -1;
        from = level;
        n = k;
    }
    return 0;
}

/* ---------------------------------------------------------------- flush */

static int cmp_op(const void *a, const void *b)
{
    const link_op *x = a, *y = b;
    int c = strcmp(x->report, y->report);
    if (!c) c = strcmp(x->manager, y->manager);
    if (!c) c = x->seq < y->seq ? -1 : x->seq > y->seq;
    return c;
}

static int cmp_op_mgr(const void *a, const void *b)
{
    const link_op *x = a, *y = b;
    int c = strcmp(x->manager, y->manager);
    if (!c) c = x->seq < y->seq ? -1 : x->seq > y->seq;
    return c;
}

/* The net link changes: the last one per (report, manager), grouped by report. */
static void net_ops(store_redis *s)
{
    s->n_net = 0;
    if (!s->n_ops) return;
    if (s->cap_net < s->n_ops) {
        s->cap_net = s->n_ops * 2;
        s->net = xrealloc(s->net, s->cap_net * sizeof *s->net);
    }
    memcpy(s->net, s->ops, s->n_ops * sizeof *s->ops);
    qsort(s->net, s->n_ops, sizeof *s->net, cmp_op);
    for (size_t i = 0; i < s->n_ops; i++) {
        bool last = i + 1 == s->n_ops || strcmp(s->net[i].report, s->net[i + 1].report) != 0 ||
                    strcmp(s->net[i].manager, s->net[i + 1].manager) != 0;
        if (last) s->net[s->n_net++] = s->net[i];
    }
}

/* The first of n link changes, sorted by report (or by manager), whose report (manager) is not
 * below key. */
static size_t ops_lower_bound(const link_op *a, size_t n, const char *key, bool by_manager)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (strcmp(by_manager ? a[mid].manager : a[mid].report, key) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* First net change of report, and how many there are. */
static size_t net_range(const store_redis *s, const char *report, size_t *count)
{
    size_t lo = ops_lower_bound(s->net, s->n_net, report, false);
    size_t n = 0;
    while (lo + n < s->n_net && strcmp(s->net[lo + n].report, report) == 0)
        n++;
    *count = n;
    return lo;
}

/* Written by w itself (its users are put before its standalone link changes). */
static bool is_written(const store_write *w, const char *id)
{
    return strmap_get(&w->users, id) != NULL;
}

static void add_info(store_write *w, reply_info ri)
{
    GROW(w->info, w->n_info, w->cap_info);
    w->info[w->n_info++] = ri;
}

static void append_script_head(store_redis *s, bool unindex, size_t numkeys)
{
    cmdb *b = &s->cmd;
    cb_begin(b);
    cb_str(b, "EVALSHA");
    cb_str(b, unindex ? s->sha_unindex : s->sha_link);
    cb_num(b, numkeys);
}

/* One command of a user's MULTI block: only an error in its +QUEUED reply counts. */
static void tx_cmd_end(store_redis *s, store_write *w, const char *id)
{
    cb_send(s, &s->cmd);
    add_info(w, (reply_info){.kind = RK_TX, .id = id});
}

/* The user's write, and where its blob lands in the commands (the write's overlay). A write that
 * moves nothing else is one SET. One that moves the active set (the provisioned count, R8.3) or
 * has link changes (R6.3) is a MULTI/EXEC block: SET, SADD/SREM of the active set, per link
 * change SADD w:M, SADD waiting w:M, GETRANGE u:M of its status (check (a)) or SREM w:M, and
 * SMEMBERS of its own waiting set last when it becomes active (check (b)). A third of a Lua
 * script's cost in Redis, and as atomic; every command in it is idempotent, so a write sent again
 * moves nothing twice. */
static void append_put(store_redis *s, store_write *w, entry *e)
{
    user_state *u = e->u;
    cmdb *b = &s->cmd;
    size_t nops;
    size_t first = net_range(s, e->id, &nops);
    /* check (b) only when the user becomes active: an already-active manager is covered by (a) */
    bool check = u->status == PROV_ACTIVE && e->stored != PROV_ACTIVE;
    bool counts = (u->status == PROV_ACTIVE) != (e->stored == PROV_ACTIVE);
    bool tx = counts || nops;
    prov_status st = u->status <= PROV_DEACTIVATED ? u->status : PROV_NEVER;
    const char *id = arena_strdup(&w->mem, e->id);
    if (tx) {
        cb_begin(b);
        cb_str(b, "MULTI");
        tx_cmd_end(s, w, id);
    }
    cb_begin(b);
    cb_str(b, "SET"); /* over the hash form too: this write converts it */
    cb_key(b, s, "u:", e->id);
    size_t blob_arg = b->n;
    cb_arg_begin(b);
    encode_state(s, &b->data, u);
    cb_arg_end(b);
    cb_send(s, b);
    wuser *wu = arena_alloc(&w->mem, sizeof *wu);
    *wu = (wuser){
        .w = w, .blob_off = b->out_off[blob_arg], .blob_len = b->len[blob_arg], .status = st};
    strmap_put(&w->users, id, wu);
    if (!tx) {
        add_info(w, (reply_info){.kind = RK_PUT_PLAIN, .id = id});
        return;
    }
    add_info(w, (reply_info){.kind = RK_TX, .id = id});
    if (counts) {
        cb_begin(b);
        cb_str(b, st == PROV_ACTIVE ? "SADD" : "SREM");
        cb_key(b, s, "active", NULL);
        cb_str(b, e->id);
        tx_cmd_end(s, w, id);
    }
    for (size_t i = 0; i < nops; i++) {
        const link_op *op = &s->net[first + i];
        cb_begin(b);
        cb_str(b, op->add ? "SADD" : "SREM");
        cb_key(b, s, "w:", op->manager);
        cb_str(b, e->id);
        tx_cmd_end(s, w, id);
        if (!op->add) continue;
        cb_begin(b);
        cb_str(b, "SADD");
        cb_key(b, s, "waiting", NULL);
        cb_key(b, s, "w:", op->manager);
        tx_cmd_end(s, w, id);
        cb_begin(b);
        cb_str(b, "GETRANGE");
        cb_key(b, s, "u:", op->manager);
        cb_str(b, STATUS_OFFSET);
        cb_str(b, STATUS_OFFSET);
        tx_cmd_end(s, w, id);
    }
    reply_info ri = {.kind = RK_PUT_TX,
                     .id = id,
                     .first_op = first,
                     .n_ops = nops,
                     .counts = counts,
                     .check = check};
    if (check) {
        cb_begin(b);
        cb_str(b, "SMEMBERS");
        cb_key(b, s, "w:", e->id);
        tx_cmd_end(s, w, id);
        const link_set *l = set_get(s, e->id, false);
        if (l && l->seen.n) {
            ri.known = arena_alloc(&w->mem, l->seen.n * sizeof *ri.known);
            for (size_t i = 0; i < l->seen.n; i++)
                ri.known[i] = arena_strdup(&w->mem, l->seen.v[i]);
            ri.n_known = l->seen.n;
        }
    }
    cb_begin(b);
    cb_str(b, "EXEC");
    cb_send(s, b);
    add_info(w, ri);
}

static store_write *write_new(store_redis *s)
{
    store_write *w = s->spare;
    if (w) {
        s->spare = NULL;
        return w;
    }
    w = xcalloc(1, sizeof *w);
    buf_init(&w->resp);
    arena_init(&w->mem, 64 * 1024);
    strmap_init_borrowed(&w->users); /* keys in w->mem, reset with it (write_clear) */
    return w;
}

static void write_clear(store_write *w)
{
    w->next = NULL;
    w->sent = w->answered = w->noscript = false;
    w->rc = 0;
    store_late_free(&w->late);
    buf_trim(&w->resp);
    w->n_info = w->n_net = w->n_late_c = 0;
    w->n_users = 0;
    w->has_company = false;
    map_clear(&w->users);
    arena_reset(&w->mem);
    arena_trim(&w->mem, KEEP_BYTES);
}

static void write_free(store_write *w)
{
    if (!w) return;
    buf_free(&w->resp);
    free(w->info);
    arena_free(&w->mem);
    strmap_free(&w->users, NULL);
    free(w->net);
    free(w->by_mgr);
    free(w->late_c);
    store_late_free(&w->late);
    free(w);
}

/* Keeps one written (or discarded) write for its buffers; frees the rest. */
static void write_recycle(store_redis *s, store_write *w)
{
    write_clear(w);
    if (s->spare)
        write_free(w);
    else
        s->spare = w;
}

/* (c): at rest an active manager has no waiting report (links are made only to managers that
 * are not active, and resolving one drops every link it looks at). One that still has some was
 * raced, or its placements were cut short by a crash (R6.3 in parts, or after the flush that
 * reported it): a batch that reads it again finds it. The next such cached user from *at (a
 * slot of the waiting sets' map: they are far fewer than the users), or NULL. */
static const entry *next_active_waiting(store_redis *s, size_t *at)
{
    for (; *at < s->links.cap; (*at)++) {
        const link_set *l = s->links.slots[*at].key ? s->links.slots[*at].val : NULL;
        if (!l || !l->loaded || !l->members.n) continue;
        const entry *e = strmap_get(&s->users, s->links.slots[*at].key);
        if (e && e->u && e->u->status == PROV_ACTIVE) {
            (*at)++;
            return e;
        }
    }
    return NULL;
}

void store_redis_active_waiting(store_redis *s, store_late *out)
{
    size_t at = 0;
    for (const entry *e; (e = next_active_waiting(s, &at));) {
        out->managers = xrealloc(out->managers, (out->n + 1) * sizeof *out->managers);
        out->managers[out->n++] = xstrdup(e->id);
    }
}

/* The user's write, and the cache then stands for what Redis will hold once it is sent. */
static void seal_user(store_redis *s, store_write *w, entry *e)
{
    append_put(s, w, e);
    e->u->dirty = false;
    e->stored = e->u->status;
    w->n_users++;
}

int store_redis_seal(store_redis *s, store_write **out, perr *err)
{
    *out = NULL;
    if (s->failed) { /* decisions made on a failed read must not become the stored truth */
        if (err) *err = s->fail_err;
        return perr_prefix(err, "not writing this batch: a read failed: ");
    }
    net_ops(s);
    store_write *w = write_new(s);
    /* the net changes, in the write's own memory: the cache is reset before the write is sent */
    if (w->cap_net < s->n_net) {
        w->cap_net = s->n_net * 2;
        w->net = xrealloc(w->net, w->cap_net * sizeof *w->net);
        w->cap_by_mgr = w->cap_net;
        w->by_mgr = xrealloc(w->by_mgr, w->cap_by_mgr * sizeof *w->by_mgr);
    }
    for (size_t i = 0; i < s->n_net; i++) {
        link_op op = s->net[i];
        op.manager = arena_strdup(&w->mem, op.manager);
        op.report = arena_strdup(&w->mem, op.report);
        w->net[i] = op;
    }
    w->n_net = s->n_net;
    if (w->n_net) { /* (no link change: the arrays may not exist yet) */
        memcpy(w->by_mgr, w->net, w->n_net * sizeof *w->net);
        qsort(w->by_mgr, w->n_net, sizeof *w->by_mgr, cmp_op_mgr);
    }

    cmdb *b = &s->cmd;
    buf_reset(&s->out);
    for (size_t i = 0; s->changed_all && i < s->users.cap; i++) {
        entry *e = s->users.slots[i].key ? s->users.slots[i].val : NULL;
        if (e && e->u && e->u->dirty) seal_user(s, w, e);
    }
    for (size_t i = 0; !s->changed_all && i < s->n_changed; i++) {
        user_state *u = s->changed[i];
        if (!u->dirty) continue; /* a repeat, or dropped and recycled since */
        entry *e = strmap_get(&s->users, u->id);
        if (e && e->u == u) seal_user(s, w, e);
    }
    s->n_changed = 0;
    s->changed_all = false;
    for (size_t i = 0; i < s->n_net; i++) {
        const link_op *op = &s->net[i];
        if (is_written(w, op->report)) continue; /* inside the report's own write */
        if (op->add) {
            append_script_head(s, false, 3);
            cb_key(b, s, "w:", op->manager);
            cb_key(b, s, "u:", op->manager);
            cb_key(b, s, "waiting", NULL);
            cb_str(b, op->report);
            cb_send(s, b);
            add_info(w, (reply_info){.kind = RK_LINK_ADD, .other = w->net[i].manager});
        } else {
            cb_begin(b);
            cb_str(b, "SREM");
            cb_key(b, s, "w:", op->manager);
            cb_str(b, op->report);
            cb_send(s, b);
            add_info(w, (reply_info){.kind = RK_SREM, .other = w->net[i].manager});
        }
    }
    /* the sets the removals may have emptied leave the index, each once (w->by_mgr is sorted by
     * manager). One this instance read and still has members for stays: if another instance
     * empties it meanwhile, the index keeps a key too many, which costs one read (the index is
     * "may have members"), until the next removal from that set. */
    for (size_t i = 0, j; i < w->n_net; i = j) {
        bool removes = false;
        for (j = i; j < w->n_net && strcmp(w->by_mgr[j].manager, w->by_mgr[i].manager) == 0; j++)
            removes |= !w->by_mgr[j].add;
        const char *manager = w->by_mgr[i].manager;
        const link_set *l = removes ? set_get(s, manager, false) : NULL;
        if (!removes || (l && l->loaded && l->members.n)) continue;
        append_script_head(s, true, 2);
        cb_key(b, s, "w:", manager);
        cb_key(b, s, "waiting", NULL);
        cb_send(s, b);
        add_info(w, (reply_info){.kind = RK_UNINDEX, .other = manager});
    }
    if (s->company_dirty) {
        cb_begin(b);
        cb_str(b, "HSET");
        cb_key(b, s, "company", NULL);
        cb_str(b, "toggle_sent");
        cb_str(b, s->company.toggle_sent ? "1" : "0");
        cb_str(b, "n_sent");
        cb_num(b, s->company.n_sent);
        cb_str(b, "deacts");
        cb_arg_begin(b);
        for (uint32_t i = 0; i < s->company.n_deacts; i++) {
            const deact_mark *m = &s->company.deacts[i];
            buf_printf(&b->data, "%s%lld", i ? "," : "", (long long)m->ts);
            if (m->n != 1) buf_printf(&b->data, "*%u", (unsigned)m->n);
        }
        cb_arg_end(b);
        cb_send(s, b);
        add_info(w, (reply_info){.kind = RK_COMPANY});
    }
    /* reads before the write is sent see the whole company state, also the provisioned count,
     * which the users' writes move without the company being dirty (R8.3) */
    if (s->company_loaded) {
        w->has_company = true;
        w->company = s->company;
    }
    /* (c): reported once the write is done */
    size_t at = 0;
    for (const entry *e; (e = next_active_waiting(s, &at));) {
        GROW(w->late_c, w->n_late_c, w->cap_late_c);
        w->late_c[w->n_late_c++] = arena_strdup(&w->mem, e->id);
    }
    s->n_ops = 0;
    s->company_dirty = false;
    if (!w->n_info && !w->n_late_c) {
        write_recycle(s, w);
        return 0;
    }
    /* the commands move into the write; the store's buffer is the write's old one. A write may
     * wait for several batches: it keeps only what it uses, not the doubling slack (a quarter
     * of the peak RSS in a heap profile) */
    buf t = w->resp;
    w->resp = s->out;
    s->out = t;
    buf_reset(&s->out);
    if (w->resp.cap - w->resp.len > 64 * 1024) {
        w->resp.data = xrealloc(w->resp.data, w->resp.len);
        w->resp.cap = w->resp.len;
    }
    if (s->pending_tail)
        s->pending_tail->next = w;
    else
        s->pending = w;
    s->pending_tail = w;
    overlay_add(s, w);
    *out = w;
    return 0;
}

void store_redis_discard(store_redis *s, store_write *w)
{
    if (!w) return;
    if (w->sent && !w->answered) { /* its replies are on the connection, ahead of the next ones */
        perr e;
        (void)sent_collect(s, true, "writing the batch", &e);
    }
    store_write **pp = &s->pending, *prev = NULL;
    while (*pp && *pp != w) {
        prev = *pp;
        pp = &(*pp)->next;
    }
    if (!*pp) return;
    *pp = w->next;
    if (s->pending_tail == w) s->pending_tail = prev;
    overlay_remove(s, w, !prev);
    write_recycle(s, w);
}

/* ---- what pending writes leave in Redis, for reads made before they are sent */

static const wuser *overlay_user(const store_redis *s, const char *id, const char **blob)
{
    const wuser *wu = strmap_get(&s->overlay, id);
    if (wu) *blob = wu->w->resp.data + wu->blob_off;
    return wu;
}

/* w, just sealed, is the newest pending write: its users are found in it from now on. */
static void overlay_add(store_redis *s, const store_write *w)
{
    for (size_t i = 0; i < w->users.cap; i++)
        if (w->users.slots[i].key)
            strmap_put(&s->overlay, w->users.slots[i].key, w->users.slots[i].val);
}

/* w leaves the pending writes. The oldest (written): its users found in a later write stay
 * there. Another (discarded): the index is made again from the writes left, which is rare. */
static void overlay_remove(store_redis *s, const store_write *w, bool oldest)
{
    if (!oldest) {
        map_clear(&s->overlay);
        for (const store_write *x = s->pending; x; x = x->next)
            if (x != w) overlay_add(s, x);
        return;
    }
    for (size_t i = 0; i < w->users.cap; i++) {
        const char *id = w->users.slots[i].key;
        if (id && strmap_get(&s->overlay, id) == w->users.slots[i].val) strmap_del(&s->overlay, id);
    }
}

static const company_state *overlay_company(const store_redis *s)
{
    const company_state *c = NULL;
    for (const store_write *w = s->pending; w; w = w->next)
        if (w->has_company) c = &w->company;
    return c;
}

/* Replays the pending link changes of manager on a set just read from Redis, oldest first. */
static void overlay_links(store_redis *s, const char *manager, link_set *l)
{
    for (const store_write *w = s->pending; w; w = w->next) {
        size_t lo = ops_lower_bound(w->by_mgr, w->n_net, manager, true);
        for (; lo < w->n_net && strcmp(w->by_mgr[lo].manager, manager) == 0; lo++) {
            const char *r = arena_strdup(&s->mem, w->by_mgr[lo].report);
            set_apply(s, l, r, w->by_mgr[lo].add);
            sl_add(s, &l->seen, r);
        }
    }
}

static void late_add(strmap *seen, store_late *late, const char *manager)
{
    if (strmap_get(seen, manager)) return;
    strmap_put(seen, manager, (void *)1);
    if (!late) return;
    late->managers = xrealloc(late->managers, (late->n + 1) * sizeof *late->managers);
    late->managers[late->n++] = xstrdup(manager);
}

static bool known_has(const reply_info *ri, const char *report)
{
    for (size_t i = 0; i < ri->n_known; i++)
        if (strcmp(ri->known[i], report) == 0) return true;
    return false;
}

/* Whether element j of a user's block is a check (a) read (GETRANGE u:M) that met the hash form
 * of builds before (WRONGTYPE): M is then taken as late, and its resolution reads it (and does
 * nothing unless it is active). */
static bool old_manager(const store_write *w, const reply_info *ri, const redisReply *r, size_t j)
{
    if (!reply_is_err(r->element[j], "WRONGTYPE")) return false;
    size_t k = 1 + ri->counts;
    for (size_t i = 0; i < ri->n_ops && k <= j; i++) {
        if (!w->net[ri->first_op + i].add) {
            k++;
            continue;
        }
        if (k + 2 == j) return true;
        k += 3;
    }
    return false;
}

/* EXEC's reply to a user's block (append_put): an error inside it is the write's error; a
 * manager already active when a report registered for it (check (a)), or members of the user's
 * own waiting set this instance did not know of when it became active (check (b)), make a late
 * manager. */
static int tx_reply(store_redis *s, const store_write *w, const reply_info *ri, const redisReply *r,
                    strmap *late_set, strmap *stale, store_late *late, perr *err)
{
    size_t want = 1 + ri->counts + ri->check;
    for (size_t i = 0; i < ri->n_ops; i++)
        want += w->net[ri->first_op + i].add ? 3 : 1;
    if (r->type != REDIS_REPLY_ARRAY || r->elements != want)
        return perr_set(err, "Redis %s: writing key '%su:%s': unexpected EXEC reply", s->where,
                        s->prefix, ri->id);
    for (size_t j = 0; j < r->elements; j++)
        if (r->element[j]->type == REDIS_REPLY_ERROR && !old_manager(w, ri, r, j))
            return perr_set(err, "Redis %s: writing key '%su:%s': %s", s->where, s->prefix, ri->id,
                            r->element[j]->str);
    size_t k = 1 + ri->counts;
    for (size_t i = 0; i < ri->n_ops; i++) {
        const link_op *op = &w->net[ri->first_op + i];
        if (!op->add) {
            k++;
            continue;
        }
        const redisReply *status = r->element[k + 2];
        k += 3;
        if (reply_is_active(status) || reply_is_err(status, "WRONGTYPE")) /* see old_manager */
            late_add(late_set, late, op->manager);
    }
    const redisReply *members = r->element[want - 1];
    if (!ri->check || members->type != REDIS_REPLY_ARRAY) return 0;
    /* a manager's known reports are few but may be thousands: sorted and searched beyond a short
     * scan (a hash map of a director's 150,000 took 9 MiB at the peak of the batch it became
     * active in; the sorted pointers take 1.2) */
    const char **sorted = NULL;
    if (ri->n_known > 16 && members->elements > 1) {
        sorted = xmalloc(ri->n_known * sizeof *sorted);
        memcpy(sorted, ri->known, ri->n_known * sizeof *sorted);
        qsort(sorted, ri->n_known, sizeof *sorted, str_ptr_cmp);
    }
    bool extra = false;
    for (size_t j = 0; j < members->elements; j++) {
        const redisReply *m = members->element[j];
        if (m->type != REDIS_REPLY_STRING) continue;
        const char *id = m->str;
        if (sorted ? bsearch(&id, sorted, ri->n_known, sizeof *sorted, str_ptr_cmp) != NULL
                   : known_has(ri, id))
            continue;
        extra = true;
        if (stale) strmap_put(stale, m->str, (void *)1);
    }
    free(sorted);
    if (extra) late_add(late_set, late, ri->id);
    return 0;
}

/* Reads a write's replies (after `pre` SCRIPT LOAD replies): errors, NOSCRIPT, late managers
 * (and the reports named by (b)). */
static int write_replies(store_redis *s, const store_write *w, redisReply *const *rep, size_t pre,
                         strmap *late_set, strmap *stale, store_late *late, bool *noscript,
                         perr *err)
{
    int rc = 0;
    for (size_t i = 0; i < pre; i++) {
        const redisReply *r = rep[i];
        if (r->type == REDIS_REPLY_ERROR && !rc)
            rc = perr_set(err, "Redis %s: SCRIPT LOAD: %s", s->where, r->str);
    }
    for (size_t i = 0; i < w->n_info; i++) {
        const redisReply *r = rep[pre + i];
        const reply_info *ri = &w->info[i];
        if (r->type == REDIS_REPLY_ERROR) {
            if (reply_is_err(r, "NOSCRIPT")) {
                *noscript = true;
                continue;
            }
            if (rc) continue;
            const char *what = ri->id ? ri->id : ri->other ? ri->other : "";
            const char *kind = ri->id ? "u:" : ri->other ? "w:" : "company";
            rc = perr_set(err, "Redis %s: writing key '%s%s%s': %s", s->where, s->prefix, kind,
                          what, r->str);
            continue;
        }
        if (ri->kind == RK_LINK_ADD && r->type == REDIS_REPLY_INTEGER && r->integer == 1)
            late_add(late_set, late, ri->other);
        if (ri->kind == RK_PUT_TX) {
            perr other;
            if (tx_reply(s, w, ri, r, late_set, stale, late, rc ? &other : err) < 0) rc = -1;
        }
    }
    return rc;
}

/* After a NOSCRIPT (SCRIPT FLUSH, failover): SCRIPT LOAD of both scripts in front of a write.
 * Returns the number of replies they add. */
static size_t scripts_reload_head(store_redis *s)
{
    if (!s->scripts_reload) return 0;
    const char *scripts[2] = {UNINDEX_SCRIPT, LINK_SCRIPT};
    for (int i = 0; i < 2; i++) {
        cb_begin(&s->cmd);
        cb_str(&s->cmd, "SCRIPT");
        cb_str(&s->cmd, "LOAD");
        cb_str(&s->cmd, scripts[i]);
        cb_send(s, &s->cmd);
    }
    return 2;
}

/* w, sent ahead, is to be sent again (an error, a NOSCRIPT): the writes sent ahead after it were
 * applied already and are sent again too, after it, or w's older state of a user they also write
 * would stay in Redis over theirs. Their replies are taken first: the connection stays in step. */
static void resend_after(store_redis *s, store_write *w)
{
    perr e;
    (void)sent_collect(s, true, "writing the batch", &e); /* a failure marks them unsent itself */
    for (store_write *x = w->next; x && x->sent; x = x->next) {
        x->sent = x->answered = false;
        store_late_free(&x->late);
    }
}

/* Sends the oldest pending write: one round trip, retried once on a fresh connection (every
 * write in it is idempotent). After a NOSCRIPT (SCRIPT FLUSH, failover) it goes again with
 * SCRIPT LOAD in front, which costs a second round trip. */
static int write_one(store_redis *s, store_write *w, strmap *late_set, strmap *stale,
                     store_late *late, perr *err)
{
    if (w->sent && !w->answered) /* or sent again */
        (void)sent_collect(s, true, "writing the batch", err);
    if (w->sent && w->answered) {
        w->sent = w->answered = false;
        if (w->rc < 0 || w->noscript) resend_after(s, w);
        if (w->rc < 0 && !w->noscript) {
            *err = w->err;
            store_late_free(&w->late);
            return -1;
        }
        if (!w->noscript) {
            for (size_t i = 0; i < w->late.n; i++)
                late_add(late_set, late, w->late.managers[i]);
            store_late_free(&w->late);
            goto written;
        }
        store_late_free(&w->late); /* a NOSCRIPT: the whole write again, SCRIPT LOAD in front */
        s->scripts_reload = true;
    }
    for (int round = 0;; round++) {
        size_t pre = 0;
        int rc = -1;
        for (int attempt = 0;; attempt++) {
            bool had = s->c != NULL;
            if (conn_ensure(s, err) < 0) return -1;
            buf_reset(&s->out);
            pre = scripts_reload_head(s);
            rc = exchange_with(s, pre + w->n_info, &w->resp, "writing the batch", err);
            if (rc == 0 || !had || attempt) break;
        }
        if (rc < 0) return -1;
        bool noscript = false;
        rc = write_replies(s, w, s->rep, pre, late_set, stale, late, &noscript, err);
        replies_free(s);
        if (rc < 0) return -1;
        if (!noscript) {
            s->scripts_reload = false;
            break;
        }
        if (round) return perr_set(err, "Redis %s: the scripts are gone again", s->where);
        s->scripts_reload = true;
    }
written:
    for (size_t i = 0; i < w->n_late_c; i++)
        late_add(late_set, late, w->late_c[i]);
    s->stats.users_written += w->n_users;
    s->pending = w->next;
    if (!s->pending) s->pending_tail = NULL;
    overlay_remove(s, w, true);
    write_recycle(s, w);
    return 0;
}

/* wc has bytes to read (or was closed): reading them does not wait. */
static bool wconn_readable(const store_redis *s)
{
    struct pollfd pfd = {.fd = s->wc->fd, .events = POLLIN};
    int k;
    do
        k = poll(&pfd, 1, 0);
    while (k < 0 && errno == EINTR);
    return k > 0;
}

/* Takes the replies of the writes sent ahead, oldest first, and keeps each write's result with it
 * once all of its replies are in. With block, waits for every one of them; else takes only what
 * has come in. On a broken connection they are marked unsent (conn_drop). */
static int sent_collect(store_redis *s, bool block, const char *doing, perr *err)
{
    for (store_write *w = s->pending; w && w->sent; w = w->next) {
        if (w->answered) continue;
        size_t n = w->pre + w->n_info;
        if (s->cap_wrep < n) {
            s->cap_wrep = n * 2;
            s->wrep = xrealloc(s->wrep, s->cap_wrep * sizeof *s->wrep);
        }
        while (s->n_wrep < n) {
            void *r = NULL;
            errno = 0;
            if (!s->wc) return perr_set(err, "Redis %s: %s: not connected", s->where, doing);
            if (block) {
                if (get_reply(s, &s->wc, &r, doing, err) < 0) return -1;
            } else {
                if (redisGetReplyFromReader(s->wc, &r) != REDIS_OK)
                    return conn_fail(s, &s->wc, doing, err);
                if (!r) {
                    if (s->fwc.pos == s->fwc.len && !wconn_readable(s)) return 0;
                    if (feed_more(s->wc, &s->fwc) < 0) return conn_fail(s, &s->wc, doing, err);
                    continue;
                }
            }
            s->wrep[s->n_wrep++] = r;
        }
        strmap late_set;
        strmap_init(&late_set);
        w->noscript = false;
        w->rc =
            write_replies(s, w, s->wrep, w->pre, &late_set, NULL, &w->late, &w->noscript, &w->err);
        strmap_free(&late_set, NULL);
        w->answered = true;
        s->n_wrep = 0;
        /* the reader gave a whole reply last: nothing of the next one is in the arena yet */
        arena_reset(&s->wmem);
        arena_trim(&s->wmem, 1u << 20);
    }
    return 0;
}

bool store_redis_write_answered(store_redis *s, const store_write *w)
{
    if (!w) return true;
    if (w->sent && !w->answered) {
        perr e;
        (void)sent_collect(s, false, "writing the batch", &e); /* a failure: w is sent again */
    }
    return w->sent && w->answered;
}

int store_redis_send_sealed(store_redis *s, store_write *w, perr *err)
{
    if (!w || w->sent) return 0;
    for (const store_write *x = s->pending; x != w; x = x->next)
        if (!x || !x->sent) return perr_set(err, "store: sealed writes must be sent in order");
    if (!s->wc && conn_open(s, &s->wc, err) < 0) return -1;
    buf_reset(&s->out);
    size_t pre = scripts_reload_head(s);
    if (send_out(s, &s->wc, &w->resp, "writing the batch", err) < 0) return -1;
    w->sent = true;
    w->answered = false;
    w->pre = pre;
    if (pre) s->scripts_reload = false; /* a NOSCRIPT in its replies sets it again */
    return 0;
}

int store_redis_write_sealed(store_redis *s, store_write *w, store_late *late, perr *err)
{
    if (!w) return 0; /* nothing was sealed: nothing to write */
    const store_write *x = s->pending;
    while (x && x != w)
        x = x->next;
    if (!x) return perr_set(err, "store: the sealed write is not pending");
    strmap late_set;
    strmap_init(&late_set);
    /* An older write still pending (a flush that failed and was not repeated: a reimport's
     * chunk) goes first: order holds, and each write is idempotent. What the writes made report
     * stays in late also when a later one fails (they are stored: no retry reports it again). */
    int rc = 0;
    while (rc == 0 && s->pending != w)
        rc = write_one(s, s->pending, &late_set, NULL, late, err);
    if (rc == 0) rc = write_one(s, w, &late_set, NULL, late, err);
    strmap_free(&late_set, NULL);
    return rc;
}

/* On failure every change stays pending (sealed), so the caller retries this call as it is: every
 * write in it is idempotent (R9.2). */
int store_redis_flush(store_redis *s, store_late *late, perr *err)
{
    store_write *w;
    unsigned long drops = s->drops;
    s->flush_failed_on_drop = false;
    if (store_redis_seal(s, &w, err) < 0) return -1;
    strmap late_set, stale;
    strmap_init(&late_set);
    strmap_init(&stale);
    int rc = 0;
    while (rc == 0 && s->pending)
        rc = write_one(s, s->pending, &late_set, &stale, late, err);
    /* another instance wrote these: read them afresh when the late managers are resolved, also
     * those a stored write reported before a later one failed (the cache is sealed: nothing of it
     * is lost here) */
    for (size_t i = 0; i < late_set.cap; i++) {
        const char *m = late_set.slots[i].key;
        if (!m) continue;
        entry_drop(s, m);
        strmap_del(&s->links, m);
    }
    for (size_t i = 0; i < stale.cap; i++)
        if (stale.slots[i].key) entry_drop(s, stale.slots[i].key);
    strmap_free(&late_set, NULL);
    strmap_free(&stale, NULL);
    /* a connection that could not be opened counts too: it fails before any drop */
    s->flush_failed_on_drop = rc < 0 && (s->drops != drops || !s->c);
    return rc;
}

bool store_redis_flush_may_pass(const store_redis *s, const perr *err)
{
    static const char *const passing[] = {"NOREPLICAS", "LOADING", "BUSY",     "MASTERDOWN",
                                          "TRYAGAIN",   "OOM",     "READONLY", "CLUSTERDOWN"};
    if (s->flush_failed_on_drop) return true;
    /* Redis's error replies start with their code; the store quotes them after ": " */
    for (size_t i = 0; i < sizeof passing / sizeof passing[0]; i++) {
        size_t n = strlen(passing[i]);
        for (const char *p = strstr(err->msg, passing[i]); p; p = strstr(p + 1, passing[i]))
            if (p >= err->msg + 2 && p[-2] == ':' && p[-1] == ' ' && (p[n] == ' ' || !p[n]))
                return true;
    }
    return false;
}

void store_late_free(store_late *l)
{
    if (!l) return;
    for (size_t i = 0; i < l->n; i++)
        free(l->managers[i]);
    free(l->managers);
    *l = (store_late){0};
}

/* ---------------------------------------------------------------- blobs */

typedef struct blob_arg {
    const char *name;
    const void *data;
    size_t len;
    bool put;
} blob_arg;

static size_t build_blob(store_redis *s, void *arg)
{
    blob_arg *a = arg;
    cb_begin(&s->cmd);
    cb_str(&s->cmd, a->put ? "SET" : "GET");
    cb_key(&s->cmd, s, "b:", a->name);
    if (a->put) cb_arg(&s->cmd, a->data, a->len);
    cb_send(s, &s->cmd);
    return 1;
}

int store_redis_blob_put(store_redis *s, const char *name, const void *data, size_t len, perr *err)
{
    blob_arg a = {.name = name, .data = data, .len = len, .put = true};
    return run_simple(s, build_blob, &a, "SET blob", err);
}

int store_redis_blob_get(store_redis *s, const char *name, buf *out, bool *found, perr *err)
{
    blob_arg a = {.name = name};
    if (run_exchange(s, build_blob, &a, "GET blob", err) < 0) return -1;
    redisReply *r = s->rep[0];
    int rc = 0;
    *found = false;
    buf_reset(out);
    if (r->type == REDIS_REPLY_ERROR)
        rc = perr_set(err, "Redis %s: GET: %s", s->where, r->str);
    else if (r->type == REDIS_REPLY_STRING) {
        buf_append(out, r->str, r->len);
        *found = true;
    }
    replies_free(s);
    return rc;
}

/* ---------------------------------------------------------------- scan */

typedef struct scan_arg {
    const char *cursor;
    const char *match; /* after the prefix: "u:*" or "w:*" */
} scan_arg;

static size_t build_scan(store_redis *s, void *arg)
{
    scan_arg *a = arg;
    cb_begin(&s->cmd);
    cb_str(&s->cmd, "SCAN");
    cb_str(&s->cmd, a->cursor);
    cb_str(&s->cmd, "MATCH");
    cb_arg_begin(&s->cmd);
    /* the prefix matched as it is: "prov[eu]:" must not match "prove:" keys */
    for (size_t i = 0; i < s->prefix_len; i++) {
        if (strchr("*?[]\\", s->prefix[i])) buf_putc(&s->cmd.data, '\\');
        buf_putc(&s->cmd.data, s->prefix[i]);
    }
    buf_puts(&s->cmd.data, a->match);
    cb_arg_end(&s->cmd);
    cb_str(&s->cmd, "COUNT");
    cb_str(&s->cmd, "1000");
    cb_send(s, &s->cmd);
    return 1;
}

/* One page of SCAN over the keys matching match (below the prefix): the reply's array of keys
 * (valid until replies_free), with cursor moved on; NULL (err set) when Redis fails or answers
 * something else. */
static const redisReply *scan_page(store_redis *s, const char *match, char cursor[32], perr *err)
{
    scan_arg a = {.cursor = cursor, .match = match};
    if (run_exchange(s, build_scan, &a, "SCAN", err) < 0) return NULL;
    redisReply *r = s->rep[0];
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
        r->element[0]->type != REDIS_REPLY_STRING || r->element[1]->type != REDIS_REPLY_ARRAY) {
        replies_free(s);
        perr_set(err, "Redis %s: SCAN: unexpected reply", s->where);
        return NULL;
    }
    snprintf(cursor, 32, "%s", r->element[0]->str);
    return r->element[1];
}

int store_redis_scan_users(store_redis *s, int (*fn)(void *ctx, const char *id), void *ctx,
                           perr *err)
{
    char cursor[32] = "0";
    size_t skip = s->prefix_len + 2;
    do {
        const redisReply *keys = scan_page(s, "u:*", cursor, err);
        if (!keys) return -1;
        /* copy the keys out: fn may talk to Redis, which frees this reply */
        size_t n = keys->elements;
        char **ids = xcalloc(n ? n : 1, sizeof *ids);
        for (size_t i = 0; i < n; i++) {
            const redisReply *k = keys->element[i];
            ids[i] = k->type == REDIS_REPLY_STRING && k->len > skip
                         ? xstrndup(k->str + skip, k->len - skip)
                         : NULL;
        }
        replies_free(s);
        int rc = 0;
        for (size_t i = 0; i < n; i++) {
            if (ids[i] && rc == 0) rc = fn(ctx, ids[i]);
            free(ids[i]);
        }
        free(ids);
        if (rc < 0) return perr_set(err, "scan stopped by its caller");
    } while (strcmp(cursor, "0") != 0);
    return 0;
}

/* ---------------------------------------------------------------- the provisioned count */

/* One SCAN page of user keys into the active set, each as its status says, atomically against
 * the writes that move it (so that a status changed meanwhile is not put back wrong). KEYS[1] the
 * active set, KEYS[i + 1] a user's key, ARGV[i] its id; returns how many are active. */
/* clang-format off */
static const char ACTIVE_PAGE_SCRIPT[] =
    ACTIVE_LUA
    "local n = 0\n"
    "for i = 2, #KEYS do\n"
    "  if active(KEYS[i]) then\n"
    "    redis.call('SADD', KEYS[1], ARGV[i - 1])\n"
    "    n = n + 1\n"
    "  else\n"
    "    redis.call('SREM', KEYS[1], ARGV[i - 1])\n"
    "  end\n"
    "end\n"
    "return n\n";
/* clang-format on */

typedef struct keys_arg {
    char **keys;
    size_t n;
    bool write; /* the page into the active set (ACTIVE_PAGE_SCRIPT), not only read */
    bool old;   /* read: the status field of keys in the hash form, not the status byte */
} keys_arg;

static size_t build_statuses(store_redis *s, void *arg)
{
    keys_arg *a = arg;
    if (a->write) {
        cb_begin(&s->cmd);
        cb_str(&s->cmd, "EVAL");
        cb_str(&s->cmd, ACTIVE_PAGE_SCRIPT);
        cb_num(&s->cmd, a->n + 1);
        cb_key(&s->cmd, s, "active", NULL);
        for (size_t i = 0; i < a->n; i++)
            cb_str(&s->cmd, a->keys[i]);
        for (size_t i = 0; i < a->n; i++)
            cb_str(&s->cmd, a->keys[i] + s->prefix_len + 2);
        cb_send(s, &s->cmd);
        return 1;
    }
    /* read commands only: a dry run's user may have no others */
    for (size_t i = 0; i < a->n; i++) {
        cb_begin(&s->cmd);
        cb_str(&s->cmd, a->old ? "HGET" : "GETRANGE");
        cb_str(&s->cmd, a->keys[i]);
        if (a->old) {
            cb_str(&s->cmd, "status");
        } else {
            cb_str(&s->cmd, STATUS_OFFSET);
            cb_str(&s->cmd, STATUS_OFFSET);
        }
        cb_send(s, &s->cmd);
    }
    return a->n;
}

static size_t build_set_complete(store_redis *s, void *arg)
{
    (void)arg;
    cb_begin(&s->cmd);
    cb_str(&s->cmd, "HSET");
    cb_key(&s->cmd, s, "company", NULL);
    cb_str(&s->cmd, "active_set");
    cb_str(&s->cmd, "1");
    cb_send(s, &s->cmd);
    return 1;
}

static int company_load(store_redis *s, perr *err)
{
    if (run_exchange(s, build_company, NULL, "reading the company state", err) < 0) return -1;
    int rc = company_fill(s, s->rep[0], s->rep[1], err);
    replies_free(s);
    return rc;
}

/* Counts the users whose stored status is "active", SCAN page by page. With write, a page goes
 * into the active set by one script (which reads either form of a user's key); without, its
 * statuses are read in one round trip (and one more for the keys still in the hash form). */
static int count_active(store_redis *s, bool write, long long *count, perr *err)
{
    char cursor[32] = "0";
    *count = 0;
    do {
        const redisReply *keys = scan_page(s, "u:*", cursor, err);
        if (!keys) return -1;
        keys_arg k = {.write = write};
        k.keys = xcalloc(keys->elements + 1, sizeof *k.keys);
        for (size_t i = 0; i < keys->elements; i++) {
            const redisReply *key = keys->element[i];
            if (key->type == REDIS_REPLY_STRING && key->len > s->prefix_len + 2)
                k.keys[k.n++] = xstrndup(key->str, key->len);
        }
        replies_free(s);
        int rc = k.n ? run_exchange(s, build_statuses, &k, "counting active users", err) : 0;
        if (rc == 0 && k.n && write) {
            const redisReply *r = s->rep[0];
            if (r->type == REDIS_REPLY_INTEGER)
                *count += r->integer;
            else
                rc = perr_set(err, "Redis %s: counting active users: %s", s->where,
                              r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
        }
        keys_arg old = {.keys = k.keys, .old = true}; /* the hash form's, moved to the front */
        for (size_t i = 0; rc == 0 && !write && i < k.n; i++) {
            const redisReply *st = s->rep[i];
            if (reply_is_active(st))
                (*count)++;
            else if (reply_is_err(st, "WRONGTYPE")) {
                char *t = k.keys[old.n];
                k.keys[old.n++] = k.keys[i];
                k.keys[i] = t;
            }
        }
        if (k.n) replies_free(s);
        if (rc == 0 && old.n) {
            rc = run_exchange(s, build_statuses, &old, "counting active users", err);
            for (size_t i = 0; rc == 0 && i < old.n; i++) {
                const redisReply *st = s->rep[i];
                if (st->type == REDIS_REPLY_STRING && strcmp(st->str, "active") == 0) (*count)++;
            }
            replies_free(s);
        }
        for (size_t i = 0; i < k.n; i++)
            free(k.keys[i]);
        free(k.keys);
        if (rc < 0) return -1;
    } while (strcmp(cursor, "0") != 0);
    return 0;
}

int store_redis_count_provisioned(store_redis *s, bool write, perr *err)
{
    if (!s->company_loaded && company_load(s, err) < 0) return -1;
    if (s->company.provisioned >= 0) return 0;
    long long count;
    if (count_active(s, write, &count, err) < 0) return -1;
    if (write) {
        /* read back: the writes since the scan began moved the set, not the count */
        if (run_simple(s, build_set_complete, NULL, "HSET active_set", err) < 0 ||
            company_load(s, err) < 0)
            return -1;
    }
    if (s->company.provisioned < 0) s->company.provisioned = count;
    char n[24];
    snprintf(n, sizeof n, "%lld", (long long)s->company.provisioned);
    log_msg(LOG_INFO, "R8.3: counted the users provisioned in Gong, once", "provisioned", n, NULL);
    return 0;
}

/* ---------------------------------------------------------------- the waiting index */

/* HGET company waiting_index, or HSET it to value. */
static void append_index_flag(store_redis *s, const char *value)
{
    cb_begin(&s->cmd);
    cb_str(&s->cmd, value ? "HSET" : "HGET");
    cb_key(&s->cmd, s, "company", NULL);
    cb_str(&s->cmd, "waiting_index");
    if (value) cb_str(&s->cmd, value);
    cb_send(s, &s->cmd);
}

static size_t build_index_probe(store_redis *s, void *arg)
{
    (void)arg;
    append_index_flag(s, NULL);
    /* with one member (none is a syntax error): an array from 6.2 on, an error before */
    cb_begin(&s->cmd);
    cb_str(&s->cmd, "SMISMEMBER");
    cb_key(&s->cmd, s, "waiting", NULL);
    cb_str(&s->cmd, "-");
    cb_send(s, &s->cmd);
    return 2;
}

static size_t build_index_add(store_redis *s, void *arg)
{
    const redisReply *keys = arg;
    cb_begin(&s->cmd);
    cb_str(&s->cmd, "SADD");
    cb_key(&s->cmd, s, "waiting", NULL);
    for (size_t i = 0; i < keys->elements; i++)
        if (keys->element[i]->type == REDIS_REPLY_STRING)
            cb_arg(&s->cmd, keys->element[i]->str, keys->element[i]->len);
    cb_send(s, &s->cmd);
    return 1;
}

static size_t build_index_done(store_redis *s, void *arg)
{
    (void)arg;
    append_index_flag(s, "1");
    return 1;
}

int store_redis_index_waiting(store_redis *s, bool write, perr *err)
{
    if (run_exchange(s, build_index_probe, NULL, "reading the waiting index", err) < 0) return -1;
    const redisReply *flag = s->rep[0], *probe = s->rep[1];
    bool done = flag->type == REDIS_REPLY_STRING && flag->len == 1 && flag->str[0] == '1';
    s->indexed = false;
    if (probe->type != REDIS_REPLY_ARRAY) {
        /* Redis before 6.2: an unknown command */
        log_msg(LOG_WARN, "the waiting index cannot be read: waiting sets are read one by one",
                "error", probe->type == REDIS_REPLY_ERROR ? probe->str : "unexpected reply", NULL);
        replies_free(s);
        return 0;
    }
    replies_free(s);
    if (!done && !write) return 0; /* a dry run reads them one by one */
    if (!done) {
        /* sets written before the index (an older version): added once, page by page; the scripts
         * keep it from here on */
        char cursor[32] = "0";
        size_t n = 0;
        do {
            const redisReply *keys = scan_page(s, "w:*", cursor, err);
            if (!keys) return -1;
            if (!keys->elements) {
                replies_free(s);
                continue;
            }
            n += keys->elements;
            /* the keys are copied into the command before the exchange frees the reply */
            buf_reset(&s->out);
            size_t k = build_index_add(s, (void *)keys);
            replies_free(s);
            /* (not run_simple: a retry would build again from the freed reply) */
            if (exchange(s, k, "SADD waiting", err) < 0 || reply_ok(s, "SADD waiting", err) < 0)
                return -1;
        } while (strcmp(cursor, "0") != 0);
        if (run_simple(s, build_index_done, NULL, "HSET waiting_index", err) < 0) return -1;
        char count[24];
        snprintf(count, sizeof count, "%zu", n);
        log_msg(LOG_INFO, "R6.3: indexed the waiting sets, once", "sets", count, NULL);
    }
    s->indexed = true;
    return 0;
}

/* ---------------------------------------------------------------- pending reconciliations */

typedef struct members_arg {
    const char *op; /* SADD, SREM or SMEMBERS */
    const char *const *ids;
    size_t n;
} members_arg;

static size_t build_members(store_redis *s, void *arg)
{
    members_arg *a = arg;
    cb_begin(&s->cmd);
    cb_str(&s->cmd, a->op);
    cb_key(&s->cmd, s, "overflows", NULL);
    for (size_t i = 0; i < a->n; i++)
        cb_str(&s->cmd, a->ids[i]);
    cb_send(s, &s->cmd);
    return 1;
}

static int members_op(store_redis *s, const char *op, const char *const *ids, size_t n, perr *err)
{
    if (!n) return 0;
    members_arg a = {.op = op, .ids = ids, .n = n};
    return run_simple(s, build_members, &a, op, err);
}

int store_redis_overflow_note(store_redis *s, const char *const *ids, size_t n, perr *err)
{
    return members_op(s, "SADD", ids, n, err);
}

int store_redis_overflow_done(store_redis *s, const char *const *ids, size_t n, perr *err)
{
    return members_op(s, "SREM", ids, n, err);
}

int store_redis_overflow_pending(store_redis *s, char ***ids, size_t *n, perr *err)
{
    *ids = NULL;
    *n = 0;
    members_arg a = {.op = "SMEMBERS"};
    if (run_exchange(s, build_members, &a, "SMEMBERS", err) < 0) return -1;
    const redisReply *r = s->rep[0];
    if (r->type != REDIS_REPLY_ARRAY) {
        int rc = perr_set(err, "Redis %s: SMEMBERS %soverflows: %s", s->where, s->prefix,
                          r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
        replies_free(s);
        return rc;
    }
    *ids = xcalloc(r->elements + 1, sizeof **ids);
    for (size_t i = 0; i < r->elements; i++)
        if (r->element[i]->type == REDIS_REPLY_STRING)
            (*ids)[(*n)++] = xstrndup(r->element[i]->str, r->element[i]->len);
    replies_free(s);
    return 0;
}
