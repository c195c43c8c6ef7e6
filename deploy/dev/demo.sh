#!/usr/bin/env bash
# make demo: the service end to end on embedded defaults. Starts Debian's redis-server and the dev
# broker (librdkafka's mock cluster) on free loopback ports in a temp dir, produces the bundled
# example events (examples/events.jsonl, Avro-encoded), runs `provisioner run` until it has caught
# up, prints what came out, explains one user, and stops everything it started, by PID.
set -euo pipefail
BIN=$(cd "$(dirname "${1:-build/provisioner}")" && pwd)/$(basename "${1:-build/provisioner}")
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
SETTINGS=$ROOT/examples/settings.yaml
EVENTS=$ROOT/examples/events.jsonl
WORK=$(mktemp -d -t provisioner-demo.XXXXXX)
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

REDIS_PORT=$(free_port)
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no --dir "$WORK" \
  >"$WORK/redis.log" 2>&1 &
PIDS+=($!)
"$BIN" dev-broker --partitions 4 >"$WORK/broker.out" 2>"$WORK/broker.err" &
PIDS+=($!)
for _ in $(seq 100); do [ -s "$WORK/broker.out" ] && break; sleep 0.1; done
BROKERS=$(head -1 "$WORK/broker.out")
for _ in $(seq 100); do redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break; sleep 0.1; done

echo "== redis-server on 127.0.0.1:$REDIS_PORT, dev broker on $BROKERS"
echo
echo "== settings: $SETTINGS"
"$BIN" check-config "$SETTINGS" | sed 's/^/   /'
echo
echo "== producing $(wc -l <"$EVENTS") Salesforce User change events (Avro) to salesforce.user.changes"
"$BIN" produce-events --brokers "$BROKERS" --topic salesforce.user.changes --events "$EVENTS" \
  2>&1 | grep -v ': note: ' | sed 's/^/   /'
echo
echo "== provisioner run (until it has caught up)"
export PROVISIONER_BROKERS=$BROKERS PROVISIONER_REDIS=redis://127.0.0.1:$REDIS_PORT
export PROVISIONER_SETTINGS=$SETTINGS PROVISIONER_LOG_LEVEL=${PROVISIONER_LOG_LEVEL:-warn}
start=$(date +%s.%N)
"$BIN" run --exit-when-idle 2 2>"$WORK/run.log"
end=$(date +%s.%N)
python3 -c "import sys; print('   done in %.1f s (most of it joining the consumer group and the 2 s idle wait)' % (float(sys.argv[2]) - float(sys.argv[1])))" "$start" "$end"
"$BIN" consume-commands --brokers "$BROKERS" --topic gong.user.commands --from-beginning \
  --timeout 3 >"$WORK/commands.jsonl" 2>/dev/null
echo
echo "== gong.user.commands: $(wc -l <"$WORK/commands.jsonl") commands"
# simulate reads the file in order; the four partitions do not keep the order across users (events
# naming several users are keyed by the first): README, "Order across partitions"
SIMULATED=$("$BIN" simulate --guards --settings "$SETTINGS" --events "$EVENTS" 2>/dev/null | wc -l)
echo "   (simulate --guards over the same file, in its order: $SIMULATED; over 4 partitions the order"
echo "    across users differs: README, \"Order across partitions\")"
python3 - "$WORK/commands.jsonl" <<'PY'
import collections, json, sys
cmds = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
for t, n in collections.Counter(c["type"] for c in cmds).most_common():
    print(f"   {t:<18} {n}")
print("\n== one of each")
shown = set()
for c in cmds:
    if c["type"] in shown:
        continue
    shown.add(c["type"])
    c.pop("source", None)
    line = json.dumps(c)
    print("  ", line if len(line) < 240 else line[:237] + "...")
PY
KEYS=$(redis-cli -p "$REDIS_PORT" dbsize)
echo
echo "== state in Redis: $KEYS keys (users, waiting links, company)"
USER_ID=$(python3 -c "import json,sys; print(json.loads(open(sys.argv[1]).readlines()[5])['ChangeEventHeader']['recordIds'][0])" "$EVENTS")
echo
echo "== provisioner explain --live --user $USER_ID   (the user as the service left it in Redis)"
"$BIN" explain --live --settings "$SETTINGS" --user "$USER_ID" | sed 's/^/   /'
