#!/usr/bin/env bash
# make bench: end-to-end throughput and latency of `provisioner run`, side by side with the raw
# Kafka pipe (issue 10). Everything on this machine: Debian's redis-server and the dev broker
# (librdkafka's mock cluster) on free loopback ports, in a temp dir, stopped by PID at exit.
#
#   tests/bench/run.sh BUILD_DIR [--users N] [--events N] [--partitions N] [--rate R]
#                      [--seconds S] [--warmup S] [--latency-partitions N] [--smoke] [--png FILE]
#                      [--perf FILE] [--seed N] [--repeat N] [--org flat|deep] [--keep]
#
# Defaults: 100,000 users, 1,000,000 events, 64 partitions, latency at 10,000 events/s for 30 s
# after a 2 s warm-up at the same rate (reported apart: the service's first batch waits for the
# output topic's metadata). --smoke: 2,000 users, 10,000 events, 4 partitions, 3 s at 1,000 events/s
# after 1 s (CI: ctest bench_smoke); explicit options still win. The latency stage runs on a dev
# broker of its own with --latency-partitions (default 4; see stage 4). --png draws the latency
# distribution (gnuplot). --perf FILE adds a profiled pass of the throughput stage (perf record -g
# into FILE, top symbols printed); the headline figures come from the unprofiled pass. --repeat N
# runs the cold-start stage N times (after the latency stage, Redis flushed before each) and reports
# each run and their median: runs on a shared 2-core machine vary by 30% and more. --keep keeps the
# temp dir. --org deep: an org chart of seven levels instead of three (examples/gen_events.py's
# ORG), whose cycle checks (R6.4) walk long chains. The service's own knobs pass through the
# environment (PROVISIONER_BATCH_SIZE, PROVISIONER_BATCH_LINGER_MS, PROVISIONER_KAFKA_<property>,
# ...) or BENCH_SERVICE_ARGS (words appended to every `run`); BENCH_REDIS_ARGS adds words to
# redis-server's command line (say `--hash-max-listpack-value 1024`).
#
# Stages:
#   1. workload: examples/gen_events.py USERS EVENTS+RATE*(WARMUP+SECONDS) SEED through
#      workload.py (which spreads the non-User events over 10,000 account ids: the generator gives
#      them all one id, one hot partition), cached in BUILD_DIR/bench/workload; the first EVENTS
#      lines are the throughput workload, the rest the latency one (later events on the same users). A sample is Avro-encoded first to size the
#      partitions under the dev broker's 5 MiB per-partition cap (raised if needed); the events are
#      then loaded with `provisioner produce-events` and the load is checked (count, nothing
#      evicted by the cap).
#   2. baseline: kcat consuming the whole input topic, piped into kcat producing every message to
#      another topic (binary-safe: multi-byte key and message delimiters that the Avro bytes do not
#      contain, verified by comparing an order-independent digest of every key and value of both
#      topics); also the same pipe in C with librdkafka (kbench pipe).
#   3. the service from a cold start (empty Redis, new group) until the output is complete: the
#      group has committed every input offset, the service's own count of messages equals the
#      input, and the output topics hold every command it says it produced. Events/s from the
#      partition assignment to the last command's produce timestamp; CPU and peak RSS from wait4;
#      Redis commands, memory and (with perf) round trips, counted as the service's write() calls
#      on its two Redis sockets (reads and everything else; the writes sent ahead).
#   4. latency: on a second dev broker with fewer partitions (default 4). The mock answers a Fetch
#      with one message set per partition, found by scanning the partition's log from its head
#      (librdkafka's rd_kafka_mock_msgset_find, "FIXME: Maintain an index"), so every fetch costs
#      the number of sets in the log: one per 5 ms producer batch, each of 1/P of its messages
#      over P partitions, until the 5 MiB cap, which so holds P times more sets; a fetch scans P
#      partitions: the cost grows with time up to ~P^2.
#      With 64 the broker is the bottleneck from the start; with 8 its CPU climbed from 0.13 to a
#      whole core by the 20th second and p99 went from 25 to 70-110 ms with it; with 4 or 2 it
#      stays low and both measured the same p99 (README "Performance"). Then the service running on
#      warm state (same Redis state), kbench paced producing pre-encoded Avro values
#      at RATE events/s for WARMUP + SECONDS with the Kafka timestamp = send time, kbench collect
#      reading the output; per command of an event sent after the warm-up, its Kafka timestamp
#      minus its source event's (joined on the source.partition/source.offset headers):
#      p50/p99/p999.
#   5. a table and one final JSON line (report.py); micro-benchmarks after a full run.
# Exits 0 when every stage worked and the output was complete, 1 otherwise, 2 on usage.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)

usage() {
  sed -n '2,/^# Stages:/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//' >&2
  exit "${1:-2}"
}

[ $# -ge 1 ] || usage
case $1 in -h | --help) usage 0 ;; esac
BUILD=$1
shift
USERS="" EVENTS="" PARTS="" RATE="" SECS="" WARM="" LPARTS="" SMOKE=0 PNG="" PERF="" SEED=7 KEEP=0
REPEAT=1 ORG=flat
need() { [ $# -ge 2 ] || { echo "run.sh: $1 needs a value" >&2; exit 2; }; }
while [ $# -gt 0 ]; do
  case $1 in
    --users) need "$@"; USERS=$2; shift 2 ;;
    --events) need "$@"; EVENTS=$2; shift 2 ;;
    --partitions) need "$@"; PARTS=$2; shift 2 ;;
    --rate) need "$@"; RATE=$2; shift 2 ;;
    --seconds) need "$@"; SECS=$2; shift 2 ;;
    --warmup) need "$@"; WARM=$2; shift 2 ;;
    --latency-partitions) need "$@"; LPARTS=$2; shift 2 ;;
    --png) need "$@"; PNG=$2; shift 2 ;;
    --perf) need "$@"; PERF=$2; shift 2 ;;
    --seed) need "$@"; SEED=$2; shift 2 ;;
    --repeat) need "$@"; REPEAT=$2; shift 2 ;;
    --org) need "$@"; ORG=$2; shift 2 ;;
    --smoke) SMOKE=1; shift ;;
    --keep) KEEP=1; shift ;;
    -h | --help) usage 0 ;;
    *) echo "run.sh: unknown option '$1'" >&2; usage ;;
  esac
done
if [ "$SMOKE" = 1 ]; then
  : "${USERS:=2000}" "${EVENTS:=10000}" "${PARTS:=4}" "${RATE:=1000}" "${SECS:=3}" "${WARM:=1}" "${LPARTS:=4}"
else
  : "${USERS:=100000}" "${EVENTS:=1000000}" "${PARTS:=64}" "${RATE:=10000}" "${SECS:=30}" "${WARM:=2}" "${LPARTS:=4}"
fi
for v in USERS EVENTS PARTS RATE SECS SEED LPARTS REPEAT; do
  [[ ${!v} =~ ^[0-9]+$ ]] && [ "${!v}" -gt 0 ] || { echo "run.sh: $v must be a positive integer" >&2; exit 2; }
done
case $ORG in flat | deep) ;; *) echo "run.sh: --org is flat or deep" >&2; exit 2 ;; esac
[[ $WARM =~ ^[0-9]+$ ]] || { echo "run.sh: --warmup must be a whole number of seconds" >&2; exit 2; }
[ "$EVENTS" -ge "$USERS" ] || { echo "run.sh: --events must be at least --users (creates come first)" >&2; exit 2; }

BUILD=$(cd "$BUILD" 2>/dev/null && pwd) || { echo "run.sh: no build dir '$1'" >&2; exit 2; }
BIN=$BUILD/provisioner
SETTINGS=$ROOT/examples/settings.yaml
[ -x "$BIN" ] || { echo "run.sh: $BIN is not built (make build)" >&2; exit 2; }
for t in kcat redis-server redis-cli python3 pkg-config; do
  command -v "$t" >/dev/null || { echo "run.sh: $t is not installed (deploy/dev/install-deps.sh)" >&2; exit 2; }
done
if [ -n "$PNG" ] && ! command -v gnuplot >/dev/null; then
  echo "run.sh: --png needs gnuplot (Debian gnuplot-nox; deploy/dev/install-deps.sh installs it)" >&2
  exit 2
fi
if [ -n "$PERF" ] && ! perf stat -e task-clock true >/dev/null 2>&1; then
  echo "run.sh: --perf needs a working perf (Debian linux-perf)" >&2
  exit 2
fi
case $PNG in "" | /*) ;; *) PNG=$PWD/$PNG ;; esac
case $PERF in "" | /*) ;; *) PERF=$PWD/$PERF ;; esac

T0=$(date +%s.%N)
calc() { awk "BEGIN { printf \"%.3f\", $* }"; }
say() { printf '[%6.1fs] %s\n' "$(calc "$(date +%s.%N) - $T0")" "$*"; }
die() { say "FAILED: $*" >&2; exit 1; }
now_ms() { date +%s%3N; }
jget() { python3 -c 'import json,sys; v=json.load(open(sys.argv[1]))
for k in sys.argv[2:]: v=v[k]
print(v)' "$@"; }

# ---------------------------------------------------------------- processes and temp dir
WORK=$(mktemp -d -t provisioner-bench.XXXXXX)
PIDS=() # background processes still running (a finished one is forgotten: its pid may be reused)
forget() {
  local i
  for i in "${!PIDS[@]}"; do [ "${PIDS[$i]}" != "$1" ] || unset 'PIDS[i]'; done
}
cleanup() {
  local rc=$?
  set +e
  # First the services still running (rusage.py writes their pids to *.svcpid; a stage removes
  # the file once its service has exited), while the broker and Redis they talk to are still up,
  # or their shutdown waits for them: SIGTERM, SIGKILL after 30 s. Then the rest, by PID.
  local f pid svc=()
  for f in "$WORK"/*.svcpid; do [ -s "$f" ] && svc+=("$(cat "$f")"); done
  for pid in "${svc[@]}"; do kill "$pid" 2>/dev/null; done
  for pid in "${svc[@]}"; do
    for _ in $(seq 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null
  done
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null; done
  if [ "$KEEP" = 1 ] || { [ $rc -ne 0 ] && [ -n "${BENCH_KEEP_ON_FAILURE:-}" ]; }; then
    echo "run.sh: kept $WORK" >&2
  else
    rm -rf "$WORK"
  fi
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
proc_cpu() { # CPU seconds (user+system) of a live process
  awk -v t="$(getconf CLK_TCK)" '{ sub(/.*\) /, ""); print ($12 + $13) / t }' "/proc/$1/stat" 2>/dev/null || echo 0
}
redis() { redis-cli -h 127.0.0.1 -p "$RP" "$@"; }

# ---------------------------------------------------------------- kbench (librdkafka helper)
KB=$BUILD/bench/kbench
if [ ! -x "$KB" ] || [ "$HERE/kbench.c" -nt "$KB" ]; then
  if ! { [ -f "$BUILD/CMakeCache.txt" ] && cmake --build "$BUILD" --target kbench >"$WORK/kbench-build.log" 2>&1; }; then
    mkdir -p "$BUILD/bench"
    # shellcheck disable=SC2046
    cc -O2 -std=gnu11 -Wall -o "$KB" "$HERE/kbench.c" $(pkg-config --cflags --libs rdkafka) ||
      die "cannot build $KB"
  fi
fi

# ---------------------------------------------------------------- 1. workload
LAT_EVENTS=$((RATE * (WARM + SECS)))
CACHE=$BUILD/bench/workload
mkdir -p "$CACHE"
GEN=$ROOT/examples/gen_events.py
KEY=u$USERS-e$EVENTS-l$LAT_EVENTS-s$SEED${ORG/#flat/}-$(cat "$GEN" "$HERE/workload.py" | md5sum | cut -c1-8)
TP=$CACHE/$KEY.throughput.jsonl
LAT=$CACHE/$KEY.latency.jsonl
if [ -s "$TP" ] && [ -s "$LAT" ]; then
  say "workload: cached $TP"
else
  say "workload: generating $USERS users, $EVENTS + $LAT_EVENTS events (gen_events.py, seed $SEED, $ORG org)"
  python3 "$HERE/workload.py" "$GEN" "$USERS" "$EVENTS" "$LAT_EVENTS" "$SEED" "$TP.tmp" "$LAT.tmp" "$ORG" ||
    die "workload.py"
  mv "$TP.tmp" "$TP"
  mv "$LAT.tmp" "$LAT"
fi

# Average Avro value size on a sample (User events: the others are sent as a header only, smaller),
# and the partitions that keep every topic under the dev broker's cap: 5 MiB per partition, of
# which we use at most 90%. A record costs its value, its key and ~28 bytes of record framing.
STEP=$((EVENTS / 2000 > 1 ? EVENTS / 2000 : 1))
awk -v k="$STEP" 'NR % k == 0' "$TP" | grep '"entityName":"User"' | head -n 2000 >"$WORK/sample.jsonl" || true
mkdir -p "$WORK/sample"
"$BIN" encode --events "$WORK/sample.jsonl" --out "$WORK/sample" >/dev/null 2>"$WORK/sample.err" ||
  die "encode of the sample: $(tail -1 "$WORK/sample.err")"
read -r AVG_AVRO SAMPLE_N < <(find "$WORK/sample" -type f -printf '%s\n' | awk '{s+=$1; n++} END {printf "%.1f %d\n", n ? s/n : 0, n}')
NEED=$(python3 -c "import math,sys; e,l,a=int(sys.argv[1]),int(sys.argv[2]),float(sys.argv[3])
per=a+18+28; cap=0.9*5*1024*1024
n=math.ceil(max(e,l)*per*1.05/cap); print(max(1,n))" "$EVENTS" "$LAT_EVENTS" "$AVG_AVRO")
if [ "$NEED" -gt "$PARTS" ]; then
  NEWP=$(((NEED + 7) / 8 * 8))
  say "partitions: $PARTS would not fit (average Avro value $AVG_AVRO B): using $NEWP"
  PARTS=$NEWP
fi
EST_MIB=$(python3 -c "import sys; print('%.2f' % (int(sys.argv[1])/int(sys.argv[2])*(float(sys.argv[3])+46)/1048576))" "$EVENTS" "$PARTS" "$AVG_AVRO")
say "sizing: average Avro value $AVG_AVRO B ($SAMPLE_N sampled), $((EVENTS / PARTS)) events per partition ≈ $EST_MIB MiB of the 5 MiB cap ($PARTS partitions)"

# librdkafka's mock broker does not cut a Fetch long poll short when data arrives (it always waits
# fetch.wait.max.ms, 500 ms by default, when it had nothing to return); a real broker answers as
# soon as there is data. Every consumer of the run (the service, kcat, kbench) polls with this
# wait instead, to stand for a real broker: it bounds the added latency, at the price of empty
# fetches while idle. BENCH_FETCH_WAIT_MS=500 measures the mock as it is.
FW=${BENCH_FETCH_WAIT_MS:-5}
# the service's HTTP listener (health, metrics) is not measured: none, and never on 0.0.0.0
export PROVISIONER_HTTP_PORT=0 PROVISIONER_HTTP_BIND=127.0.0.1
[[ $FW =~ ^[0-9]+$ ]] || { echo "run.sh: BENCH_FETCH_WAIT_MS must be a number of ms" >&2; exit 2; }
# the paced producer batches like a default librdkafka producer (linger.ms 5)
PL=${BENCH_PACED_LINGER_MS:-5}
[[ $PL =~ ^[0-9]+$ ]] || { echo "run.sh: BENCH_PACED_LINGER_MS must be a number of ms" >&2; exit 2; }
read -r -a EXTRA <<<"${BENCH_SERVICE_ARGS:-}"
read -r -a REDIS_EXTRA <<<"${BENCH_REDIS_ARGS:-}"

# ---------------------------------------------------------------- redis-server and dev broker
RP=$(free_port)
redis-server --port "$RP" --bind 127.0.0.1 --save '' --appendonly no --dir "$WORK" \
  --logfile "$WORK/redis.log" "${REDIS_EXTRA[@]}" &
PIDS+=($!)
REDIS_PID=$!
EXTRA_OUTS=""
for i in $(seq 2 "$REPEAT"); do EXTRA_OUTS+=",out$i"; done
"$BIN" dev-broker --partitions "$PARTS" \
  --topics "in,in.dlq,pipe.kcat1,pipe.kcat2,pipe.c,out,lat.src,prof.out$EXTRA_OUTS" \
  >"$WORK/broker.out" 2>"$WORK/broker.err" &
PIDS+=($!)
BROKER_PID=$!
"$BIN" dev-broker --partitions "$LPARTS" --topics lat.in,lat.in.dlq,lat.out \
  >"$WORK/lbroker.out" 2>"$WORK/lbroker.err" &
PIDS+=($!)
LBROKER_PID=$!
for _ in $(seq 100); do [ -s "$WORK/broker.out" ] && [ -s "$WORK/lbroker.out" ] && break; sleep 0.1; done
BR=$(head -1 "$WORK/broker.out")
LBR=$(head -1 "$WORK/lbroker.out")
[ -n "$BR" ] || die "the dev broker did not start: $(cat "$WORK/broker.err")"
[ -n "$LBR" ] || die "the latency dev broker did not start: $(cat "$WORK/lbroker.err")"
for _ in $(seq 100); do redis ping >/dev/null 2>&1 && break; sleep 0.1; done
redis ping >/dev/null || die "redis-server did not start: $(tail -3 "$WORK/redis.log")"
say "redis-server on 127.0.0.1:$RP (pid $REDIS_PID), dev broker on $BR (pid $BROKER_PID), $PARTS partitions; latency broker on $LBR (pid $LBROKER_PID), $LPARTS partitions"

cat >"$WORK/params.json" <<EOF
{"users":$USERS,"events":$EVENTS,"partitions":$PARTS,"rate":$RATE,"seconds":$SECS,"smoke":$SMOKE,
 "seed":$SEED,"org":"$ORG","repeat":$REPEAT,"warmup":$WARM,"fetch_wait_max_ms":$FW,"latency_partitions":$LPARTS,"paced_linger_ms":$PL,
 "service_args":$(python3 -c 'import json,sys; print(json.dumps(sys.argv[1]))' "${BENCH_SERVICE_ARGS:-}"),
 "redis_args":$(python3 -c 'import json,sys; print(json.dumps(sys.argv[1]))' "${BENCH_REDIS_ARGS:-}"),"latency_events":$LAT_EVENTS,"avg_avro_bytes":$AVG_AVRO,"est_partition_mib":$EST_MIB,
 "nproc":$(nproc),"loadavg_start":"$(cut -d' ' -f1-3 /proc/loadavg)",
 "git":"$(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo unknown)",
 "librdkafka":"$(pkg-config --modversion rdkafka)","redis":"$(redis-server --version | sed 's/.*v=\([^ ]*\).*/\1/')",
 "kcat":"$(kcat -V 2>&1 | sed -n 's/.*Version \([^ ]*\).*/\1/p' | head -1)"}
EOF

# ---------------------------------------------------------------- load
say "load: produce-events $EVENTS events into 'in'"
t=$(now_ms)
"$BIN" produce-events --brokers "$BR" --topic in --events "$TP" 2>"$WORK/produce.log" ||
  die "produce-events: $(grep -v ': note: ' "$WORK/produce.log" | tail -2)"
echo "{\"seconds\":$(calc "($(now_ms) - $t) / 1000")}" >"$WORK/load.json"
"$KB" digest -b "$BR" -t in >"$WORK/digest.in.json" || die "kbench digest in"
[ "$(jget "$WORK/digest.in.json" messages)" -eq "$EVENTS" ] ||
  die "'in' holds $(jget "$WORK/digest.in.json" messages) messages, not $EVENTS"
[ "$(jget "$WORK/digest.in.json" low)" -eq 0 ] ||
  die "the dev broker's size cap evicted input messages: use more --partitions"
"$KB" watermarks -b "$BR" -t in >"$WORK/wm.in.json" || die "kbench watermarks"
say "load: done in $(printf '%.1f' "$(jget "$WORK/load.json" seconds)") s; largest partition $(jget "$WORK/wm.in.json" max_partition) messages"

"$BIN" produce-events --brokers "$BR" --topic lat.src --events "$LAT" 2>"$WORK/produce.lat.log" ||
  die "produce-events (latency events): $(grep -v ': note: ' "$WORK/produce.lat.log" | tail -2)"
"$KB" dump -b "$BR" -t lat.src -o "$WORK/lat.values" >"$WORK/dump.json" || die "kbench dump"
[ "$(jget "$WORK/dump.json" messages)" -eq "$LAT_EVENTS" ] || die "latency values: $(cat "$WORK/dump.json")"

# ---------------------------------------------------------------- 2. baseline
# kcat reads the key, a delimiter, the value, another delimiter; the delimiters are multi-byte
# strings (\x1e\x1d...) that Avro values and Salesforce ids do not contain; the digest check below
# proves it for this run.
MD='\x1e\x1dkcat-message-end\x1d\x1e'
KD='\x1f\x1dkcat-key-end\x1d\x1f'
# Twice, into two topics: the first produce of a fresh librdkafka producer sometimes waits up to a
# second for the topic's metadata (the service pays the same at start); the best run counts, both
# are reported.
for i in 1 2; do
  cat >"$WORK/kcat-pipe$i.sh" <<EOF
set -o pipefail
kcat -b '$BR' -X fetch.wait.max.ms=$FW -C -t in -o beginning -e -q -K '$KD' -D '$MD' |
  kcat -b '$BR' -P -t pipe.kcat$i -K '$KD' -D '$MD'
EOF
  say "baseline: kcat -C | kcat -P, 'in' -> 'pipe.kcat$i'"
  python3 "$HERE/rusage.py" "$WORK/kcat$i.rusage" "$WORK/kcat$i.svcpid" -- bash "$WORK/kcat-pipe$i.sh" \
    2>"$WORK/kcat$i.err" || die "kcat pipe: $(tail -3 "$WORK/kcat$i.err")"
  "$KB" digest -b "$BR" -t "pipe.kcat$i" >"$WORK/digest.kcat$i.json" || die "kbench digest pipe.kcat$i"
  [ "$(jget "$WORK/digest.kcat$i.json" hash)" = "$(jget "$WORK/digest.in.json" hash)" ] ||
    die "the kcat pipe did not copy every key and value byte for byte: $(cat "$WORK/digest.kcat$i.json")"
  rm -f "$WORK/kcat$i.svcpid"
  say "baseline: kcat pipe $(printf '%.2f' "$(jget "$WORK/kcat$i.rusage" wall_s)") s, byte for byte"
done

say "baseline: kbench pipe (librdkafka consume -> produce), 'in' -> 'pipe.c'"
python3 "$HERE/rusage.py" "$WORK/cpipe.rusage" "$WORK/cpipe.svcpid" -- \
  "$KB" pipe -b "$BR" -X fetch.wait.max.ms="$FW" --from in --to pipe.c >"$WORK/cpipe.json" 2>"$WORK/cpipe.err" ||
  die "kbench pipe: $(tail -3 "$WORK/cpipe.err")"
rm -f "$WORK/cpipe.svcpid"
"$KB" digest -b "$BR" -t pipe.c >"$WORK/digest.c.json" || die "kbench digest pipe.c"
[ "$(jget "$WORK/digest.c.json" hash)" = "$(jget "$WORK/digest.in.json" hash)" ] ||
  die "kbench pipe did not copy every message: $(cat "$WORK/digest.c.json")"
say "baseline: kbench pipe $(jget "$WORK/cpipe.json" seconds) s"

# ---------------------------------------------------------------- 3. the service, cold start
redis_info() { redis info everything >"$1"; }
SVC_COMMON=(--redis "redis://127.0.0.1:$RP" --settings "$SETTINGS"
  -X session.timeout.ms=6000 -X fetch.wait.max.ms="$FW")
PERFSTAT=()
if perf stat -x, -e syscalls:sys_enter_write --filter 'fd == 3' true >/dev/null 2>&1; then
  # in-kernel counts of the write()/read() calls on descriptors 3 and 4, the service's Redis
  # sockets, opened first (checked below): hiredis sends a pipeline with one write() and the
  # Kafka clients use sendmsg(), so the writes are the round trips to Redis
  PERFSTAT=(perf stat -x, -o "$WORK/tp.perfstat" -e syscalls:sys_enter_write
    --filter 'fd == 3 || fd == 4' -e syscalls:sys_enter_read --filter 'fd == 3 || fd == 4' --)
fi

# Runs the service once over 'in' from a cold start; $1 = name, $2 = group, $3 = Redis prefix,
# $4 = output topic, then a wrapper command (or nothing). Waits for it with a watchdog.
run_cold() {
  local name=$1 group=$2 prefix=$3 out=$4
  shift 4
  local limit=$((120 + EVENTS / 2000))
  echo "$(now_ms)" >"$WORK/$name.start_ms"
  "$@" python3 "$HERE/rusage.py" "$WORK/$name.rusage" "$WORK/$name.svcpid" -- "$BIN" run \
    --brokers "$BR" "${SVC_COMMON[@]}" --input-topic in --output-topic "$out" --group "$group" \
    --redis-prefix "$prefix" --exit-when-idle 3 "${EXTRA[@]}" 2>"$WORK/$name.log" &
  local wpid=$!
  PIDS+=($wpid)
  local t=0 checked=0
  while kill -0 "$wpid" 2>/dev/null; do
    sleep 0.5
    t=$((t + 1))
    [ $t -lt $((limit * 2)) ] || die "$name: the service did not finish within $limit s"
    # which descriptors hold the Redis connections (the round-trip count assumes 3 and 4)
    if [ $checked = 0 ] && [ -s "$WORK/$name.svcpid" ] && grep -q '"partitions assigned"' "$WORK/$name.log"; then
      local spid
      spid=$(cat "$WORK/$name.svcpid")
      ss -Htnp state established "dst 127.0.0.1:$RP" 2>/dev/null |
        grep -o "pid=$spid,fd=[0-9]*" | sed 's/.*fd=//' | sort -n | tr '\n' ' ' >"$WORK/$name.redisfd" || true
      checked=1
    fi
  done
  local st=0
  wait "$wpid" || st=$?
  forget "$wpid"
  cp "$WORK/$name.svcpid" "$WORK/$name.pid"
  rm -f "$WORK/$name.svcpid"
  [ $st = 0 ] || die "$name: the service exited with status $st: $(grep -v '"warn"' "$WORK/$name.log" | tail -3)"
}

# Checks that the run over 'in' is complete; $1 = name, $2 = group, $3 = output topic.
check_complete() {
  local name=$1 group=$2 out=$3
  "$KB" committed -b "$BR" -g "$group" -t in >"$WORK/$name.committed.json" || die "kbench committed"
  [ "$(jget "$WORK/$name.committed.json" lag)" -eq 0 ] ||
    die "$name: the group has not committed $(jget "$WORK/$name.committed.json" lag) input messages"
  python3 - "$WORK/$name.log" "$EVENTS" >"$WORK/$name.stats.json" <<'PY' || die "$name: $(cat "$WORK/$name.stats.json")"
import json, sys
stopped = assigned = None
for line in open(sys.argv[1]):
    if not line.startswith("{"):
        continue
    r = json.loads(line)
    if r.get("msg") == "partitions assigned" and assigned is None:
        assigned = r["ts"]
    if r.get("msg") == "stopped":
        stopped = r
if not stopped or not assigned:
    sys.exit(print("no 'partitions assigned' or 'stopped' line in the service's log") or 1)
from datetime import datetime
ms = lambda s: int(datetime.strptime(s, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=__import__("datetime").timezone.utc).timestamp() * 1000)
out = {k: int(stopped[k]) for k in ("messages", "batches", "produced", "dead_lettered", "duplicates_or_stale")}
# the main thread's seconds by step: "collect=0.331,decode=1.52,..." (older builds: none)
out["step_seconds"] = {k: float(v) for k, v in (kv.split("=") for kv in stopped.get("step_seconds", "").split(",") if "=" in kv)}
out["assigned_ms"] = ms(assigned)
print(json.dumps(out))
if out["messages"] != int(sys.argv[2]):
    sys.exit(1)
PY
  "$KB" watermarks -b "$BR" -t "$out" --last-ts >"$WORK/$name.out.json" || die "kbench watermarks"
  "$KB" watermarks -b "$BR" -t in.dlq --last-ts >"$WORK/$name.dlq.json" || die "kbench watermarks"
  local produced got
  produced=$(jget "$WORK/$name.stats.json" produced)
  got=$(($(jget "$WORK/$name.out.json" high) + $(jget "$WORK/$name.dlq.json" high)))
  # the dead-letter topic is shared by the runs: what it held before this one is not its own
  [ ! -f "$WORK/$name.dlq0.json" ] || got=$((got - $(jget "$WORK/$name.dlq0.json" high)))
  [ "$got" -eq "$produced" ] || die "$name: the service says it produced $produced messages; the output topics hold $got"
  [ "$produced" -gt 0 ] || die "$name: no command produced"
}

say "service: provisioner run from a cold start (empty Redis, new group) over $EVENTS events"
redis flushall >/dev/null
redis config resetstat >/dev/null
redis_info "$WORK/redis.tp.before"
BROKER_CPU0=$(proc_cpu "$BROKER_PID")
run_cold tp bench-tp bench: out "${PERFSTAT[@]}"
echo "{\"broker_cpu_s\":$(calc "$(proc_cpu "$BROKER_PID") - $BROKER_CPU0")}" >"$WORK/tp.broker.json"
redis_info "$WORK/redis.tp.after"
redis --scan --pattern 'bench:u:*' | wc -l >"$WORK/tp.userkeys"
check_complete tp bench-tp out
say "service: done: $(jget "$WORK/tp.stats.json" messages) events -> $(jget "$WORK/tp.stats.json" produced) commands in $(jget "$WORK/tp.stats.json" batches) batches; output complete"

# ---------------------------------------------------------------- 4. latency under load
say "latency: the service on warm state, $RATE events/s for $WARM s (warm-up) + $SECS s into 'lat.in' ($LPARTS partitions)"
redis_info "$WORK/redis.lat.before"
python3 "$HERE/rusage.py" "$WORK/lat.rusage" "$WORK/lat.svcpid" -- "$BIN" run --brokers "$LBR" \
  "${SVC_COMMON[@]}" --input-topic lat.in --output-topic lat.out --group bench-lat \
  --redis-prefix bench: "${EXTRA[@]}" 2>"$WORK/lat.log" &
LAT_WPID=$!
PIDS+=($LAT_WPID)
for _ in $(seq 600); do
  grep -q '"partitions assigned"' "$WORK/lat.log" 2>/dev/null && break
  kill -0 "$LAT_WPID" 2>/dev/null || die "latency: the service exited: $(tail -3 "$WORK/lat.log")"
  sleep 0.1
done
grep -q '"partitions assigned"' "$WORK/lat.log" || die "latency: the service got no partitions in 60 s"
"$KB" collect -b "$LBR" -X fetch.wait.max.ms="$FW" -t lat.out -o "$WORK/lat.cmds" --done-file "$WORK/lat.done" \
  >"$WORK/collect.json" 2>"$WORK/collect.err" &
COLLECT_PID=$!
PIDS+=($COLLECT_PID)
BROKER_CPU0=$(proc_cpu "$LBROKER_PID")
# the broker's CPU each second of the stream (report.py: the first and last thirds), to show
# whether the mock, not the service, set the pace
(while kill -0 "$LBROKER_PID" 2>/dev/null; do
  echo "$(date +%s.%N) $(proc_cpu "$LBROKER_PID")"
  sleep 1
done) >"$WORK/lat.brokercpu" &
SAMPLER_PID=$!
PIDS+=($SAMPLER_PID)
"$KB" paced -b "$LBR" -X linger.ms="$PL" -t lat.in -i "$WORK/lat.values" -r "$RATE" -s "$SECS" -w "$WARM" -o "$WORK/lat.sent" \
  >"$WORK/paced.json" 2>"$WORK/paced.err" || die "kbench paced: $(tail -3 "$WORK/paced.err")"
kill "$SAMPLER_PID" 2>/dev/null || true
wait "$SAMPLER_PID" 2>/dev/null || true
forget "$SAMPLER_PID"
say "latency: sent $(jget "$WORK/paced.json" sent) events in $(jget "$WORK/paced.json" seconds) s; waiting for the service to commit them"
lag=-1
for _ in $(seq $((2 * (120 + 4 * (WARM + SECS))))); do
  "$KB" committed -b "$LBR" -g bench-lat -t lat.in >"$WORK/lat.committed.json" || die "kbench committed"
  lag=$(jget "$WORK/lat.committed.json" lag)
  [ "$lag" -eq 0 ] && break
  kill -0 "$LAT_WPID" 2>/dev/null || die "latency: the service exited: $(tail -3 "$WORK/lat.log")"
  sleep 0.5
done
[ "$lag" -eq 0 ] || die "latency: $lag events still not committed $((120 + 4 * (WARM + SECS))) s after the last was sent"
echo "{\"broker_cpu_s\":$(calc "$(proc_cpu "$LBROKER_PID") - $BROKER_CPU0")}" >"$WORK/lat.broker.json"
touch "$WORK/lat.done"
st=0
wait "$COLLECT_PID" || st=$?
forget "$COLLECT_PID"
[ $st = 0 ] || die "kbench collect: $(tail -3 "$WORK/collect.err")"
kill -TERM "$(cat "$WORK/lat.svcpid")"
wait "$LAT_WPID" || st=$?
forget "$LAT_WPID"
rm -f "$WORK/lat.svcpid"
[ $st = 0 ] || die "latency: the service exited with status $st on SIGTERM"
redis_info "$WORK/redis.lat.after"
# The latency topics are smaller than the stream (the dev broker drops a partition's oldest
# messages past 5 MiB), harmless while the service keeps up; had it fallen that far behind, its
# consumer would have skipped events: fail rather than report on part of the stream.
if grep -qiE 'offset reset|out of range' "$WORK/lat.log"; then
  die "latency: the service fell so far behind that the dev broker dropped unread events: $(grep -iE 'offset reset|out of range' "$WORK/lat.log" | head -1)"
fi
LAT_SEEN=$(python3 -c 'import json,sys
n=[json.loads(l)["messages"] for l in open(sys.argv[1]) if l.startswith("{") and "\"stopped\"" in l]
print(n[-1] if n else -1)' "$WORK/lat.log")
[ "$LAT_SEEN" -eq "$LAT_EVENTS" ] || die "latency: the service read $LAT_SEEN events, not $LAT_EVENTS"
say "latency: collected $(jget "$WORK/collect.json" messages) commands"

# ---------------------------------------------------------------- 3b. the cold start again
# Each on empty Redis, a new group and an output topic of its own; the first run's detailed
# figures stand, the events/s of every run and their median are reported beside them.
for i in $(seq 2 "$REPEAT"); do
  say "service: cold start again ($i of $REPEAT)"
  redis flushall >/dev/null
  "$KB" watermarks -b "$BR" -t in.dlq --last-ts >"$WORK/tp$i.dlq0.json" || die "kbench watermarks"
  run_cold "tp$i" "bench-tp$i" bench: "out$i"
  check_complete "tp$i" "bench-tp$i" "out$i"
  say "service: run $i done: $(jget "$WORK/tp$i.stats.json" produced) commands; output complete"
done

# ---------------------------------------------------------------- profile (optional)
if [ -n "$PERF" ]; then
  say "profile: the throughput stage again under perf record -g (fresh prefix and group) -> $PERF"
  run_cold prof bench-prof prof: prof.out perf record -F 999 -g -o "$PERF" --
  # the service's process only (all its threads), not the rusage.py wrapper around it
  perf report -i "$PERF" --pid "$(cat "$WORK/prof.pid")" --percentage relative --no-children --sort dso,symbol \
    --stdio -g none 2>/dev/null | grep -E '^ +[0-9]' | sed 's/[ -]*$//' | head -15 >"$WORK/perf.top" || true
  perf report -i "$PERF" --pid "$(cat "$WORK/prof.pid")" --percentage relative --no-children --sort comm \
    --stdio -g none 2>/dev/null | grep -E '^ +[0-9]' | sed 's/[ -]*$//' | head -8 >"$WORK/perf.threads" || true
fi

echo "{\"loadavg_end\":\"$(cut -d' ' -f1-3 /proc/loadavg)\"}" >"$WORK/end.json"

# ---------------------------------------------------------------- 5. report
python3 "$HERE/report.py" "$WORK" ${PNG:+--png "$PNG"} || die "report"

if [ "$SMOKE" = 0 ]; then
  echo
  echo "== micro-benchmarks"
  for b in bench_soql bench_codec bench_simulate; do
    if [ -x "$BUILD/bench/$b" ]; then
      echo "-- $b"
      (cd "$WORK" && PV_SOURCE_DIR=$ROOT timeout 600 "$BUILD/bench/$b" 2>&1 | sed 's/^/   /') || echo "   ($b failed)"
    fi
  done
fi
say "done"
