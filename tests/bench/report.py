#!/usr/bin/env python3
"""report.py WORK_DIR [--png FILE]: the figures of tests/bench/run.sh from the files its stages
left in WORK_DIR: a table, then one JSON line with every figure (the last line of the output).
With --png, the latency distribution drawn by gnuplot. Exits 1 when a figure the run must have is
missing or the latency join finds commands of no sent event."""
import json
import math
import os
import statistics
import subprocess
import sys


def load(work, name, default=None):
    path = os.path.join(work, name)
    if not os.path.exists(path):
        if default is not None:
            return default
        sys.exit(f"report.py: {path} is missing")
    with open(path) as f:
        return json.load(f)


def info(work, name):
    """redis-cli INFO output -> {key: value} (numbers where they are numbers)."""
    out = {}
    for line in open(os.path.join(work, name)):
        line = line.strip()
        if not line or line.startswith("#") or ":" not in line:
            continue
        k, v = line.split(":", 1)
        try:
            out[k] = float(v) if "." in v else int(v)
        except ValueError:
            out[k] = v
    return out


def cmdstats(i):
    """cmdstat_hget:calls=1,usec=... -> {'hget': calls}"""
    out = {}
    for k, v in i.items():
        if k.startswith("cmdstat_") and isinstance(v, str):
            fields = dict(p.split("=", 1) for p in v.split(","))
            out[k[len("cmdstat_"):]] = int(fields["calls"])
    return out


def pct(sorted_vals, q):
    if not sorted_vals:
        return None
    return sorted_vals[max(0, math.ceil(q * len(sorted_vals)) - 1)]


def r(x, nd=1):
    return None if x is None else round(x, nd)


def cold_run(work, name, n):
    """One cold start's figures from its files: events/s from the partition assignment to the last
    command (output or dead letter), CPU, peak RSS, and how much came out: the same events give
    more or fewer commands as the partitions interleave (a multi-user event is keyed by its first
    user, so the others' later events can be read before it, and it is then stale: R1.4), and a
    run's speed moves with its work."""
    st, ru = load(work, f"{name}.stats.json"), load(work, f"{name}.rusage")
    last_ts = max(load(work, f"{name}.out.json")["last_ts"], load(work, f"{name}.dlq.json")["last_ts"])
    busy = (last_ts - st["assigned_ms"]) / 1000
    return {"events_per_s": r(n / busy, 0) if busy > 0 else None, "seconds": r(busy, 3),
            "cpu_s_per_1k_events": r(ru["cpu_s"] / n * 1000, 4),
            "peak_rss_mib": r(ru["maxrss_kib"] / 1024), "commands_produced": st["produced"],
            "duplicates_or_stale": st["duplicates_or_stale"], "last_ts": last_ts}


def main():
    args = sys.argv[1:]
    if not args:
        sys.exit("usage: report.py WORK_DIR [--png FILE]")
    work, png = args[0], None
    if "--png" in args:
        png = args[args.index("--png") + 1]

    p = load(work, "params.json")
    n = p["events"]
    res = {"bench": "provisioner", "params": p}

    # load
    digest_in = load(work, "digest.in.json")
    res["load"] = {"events": digest_in["messages"], "seconds": r(load(work, "load.json")["seconds"], 2),
                   "avg_message_bytes": r(digest_in["bytes"] / max(1, digest_in["messages"])),
                   "max_partition_messages": load(work, "wm.in.json")["max_partition"]}

    # baselines
    kruns = [load(work, f"kcat{i}.rusage") for i in (1, 2)]
    kc = min(kruns, key=lambda x: x["wall_s"])
    cp, cpr = load(work, "cpipe.json"), load(work, "cpipe.rusage")
    base = {
        "kcat_events_per_s": r(n / kc["wall_s"], 0),
        "kcat_seconds": r(kc["wall_s"], 3),
        "kcat_runs_seconds": [r(x["wall_s"], 3) for x in kruns],
        "kcat_cpu_s_per_1k": r(kc["cpu_s"] / n * 1000, 4),
        "kcat_peak_rss_mib": r(kc["maxrss_kib"] / 1024),
        "c_pipe_events_per_s": r(n / cpr["wall_s"], 0),
        "c_pipe_seconds": r(cpr["wall_s"], 3),
        "c_pipe_cpu_s_per_1k": r(cpr["cpu_s"] / n * 1000, 4),
        "byte_for_byte": True,
    }
    res["baseline"] = base

    # service, cold start
    ru = load(work, "tp.rusage")
    st = load(work, "tp.stats.json")
    first = cold_run(work, "tp", n)
    last_ts = first.pop("last_ts")
    start_ms = int(open(os.path.join(work, "tp.start_ms")).read())
    ib, ia = info(work, "redis.tp.before"), info(work, "redis.tp.after")
    cmds = ia["total_commands_processed"] - ib["total_commands_processed"] - 1  # our INFO
    cb, ca = cmdstats(ib), cmdstats(ia)
    per_cmd = {k: r((ca[k] - cb.get(k, 0)) / n, 3) for k in ca if k not in ("info", "config", "flushall")}
    per_cmd = dict(sorted(((k, v) for k, v in per_cmd.items() if v), key=lambda kv: -kv[1]))
    userkeys = int(open(os.path.join(work, "tp.userkeys")).read().strip() or 0)
    mem = ia["used_memory"] - ib["used_memory"]
    svc = {
        "events_per_s": first["events_per_s"],
        "seconds": first["seconds"],
        "events_per_s_from_process_start": r(n / ((last_ts - start_ms) / 1000), 0),
        "startup_to_assignment_s": r((st["assigned_ms"] - start_ms) / 1000, 2),
        "cpu_s_per_1k_events": first["cpu_s_per_1k_events"],
        "cpu_s": r(ru["cpu_s"], 2),
        "cpu_user_s": r(ru["user_s"], 2),
        "cpu_sys_s": r(ru["sys_s"], 2),
        "peak_rss_mib": first["peak_rss_mib"],
        "commands_produced": st["produced"],
        "dead_lettered": st["dead_lettered"],
        "duplicates_or_stale": st["duplicates_or_stale"],
        "batches": st["batches"],
        "events_per_batch": r(n / max(1, st["batches"])),
        "main_thread_step_seconds": st.get("step_seconds", {}),
        "redis_commands_per_event": r(cmds / n, 3),
        "redis_commands_by_type_per_event": per_cmd,
        "redis_socket_reads_per_event": r((ia["total_reads_processed"] - ib["total_reads_processed"]) / n, 4),
        "redis_round_trips_per_event": None,
        "redis_round_trips": None,
        "redis_cpu_s": r((ia["used_cpu_user"] + ia["used_cpu_sys"]) - (ib["used_cpu_user"] + ib["used_cpu_sys"]), 2),
        "redis_memory_bytes_per_user": r(mem / userkeys) if userkeys else None,
        "redis_user_keys": userkeys,
        "redis_used_memory_mib": r(ia["used_memory"] / 1048576),
        "broker_cpu_s": r(load(work, "tp.broker.json")["broker_cpu_s"], 2),
    }
    # The machine's CPU is shared: whatever the service does, it cannot go faster than the CPU that
    # it, Redis and the broker spend on the events, spread over every core with nothing waiting.
    # (All three are counted from start to exit, idle polls included: the bound is a little low.)
    machine_cpu = ru["cpu_s"] + svc["redis_cpu_s"] + svc["broker_cpu_s"]
    svc["machine_cpu_s"] = r(machine_cpu, 2)
    svc["cpu_bound_events_per_s"] = r(n / (machine_cpu / p["nproc"]), 0) if machine_cpu > 0 else None
    svc["cores_busy"] = r(machine_cpu / first["seconds"], 2) if first["seconds"] else None
    # round trips: write() calls on the service's descriptors 3 and 4, if they were its Redis sockets
    fd_path = os.path.join(work, "tp.redisfd")
    fds = open(fd_path).read().split() if os.path.exists(fd_path) else []
    ps_path = os.path.join(work, "tp.perfstat")
    if fds == ["3", "4"] and os.path.exists(ps_path):
        counts = {}
        for line in open(ps_path):
            parts = line.strip().split(",")
            if len(parts) > 2 and parts[2].startswith("syscalls:") and parts[0].isdigit():
                counts[parts[2]] = int(parts[0])
        w = counts.get("syscalls:sys_enter_write")
        if w is not None:
            svc["redis_round_trips"] = w
            svc["redis_round_trips_per_event"] = r(w / n, 5)
            svc["redis_round_trips_per_batch"] = r(w / max(1, st["batches"]), 2)
    # every cold-start run (--repeat): events/s the same way, and their median
    runs, i = [first], 2
    while os.path.exists(os.path.join(work, f"tp{i}.stats.json")):
        more = cold_run(work, f"tp{i}", n)
        more.pop("last_ts")
        runs.append(more)
        i += 1
    eps = [x["events_per_s"] for x in runs if x["events_per_s"]]
    svc["runs"] = runs
    svc["events_per_s_median"] = r(statistics.median(eps), 0) if eps else None
    res["service"] = svc
    res["ratio_service_to_kcat"] = r(svc["events_per_s"] / base["kcat_events_per_s"], 3) if svc["events_per_s"] else None
    res["ratio_service_to_c_pipe"] = r(svc["events_per_s"] / base["c_pipe_events_per_s"], 3) if svc["events_per_s"] else None
    med = svc["events_per_s_median"]
    res["ratio_median_to_kcat"] = r(med / base["kcat_events_per_s"], 3) if med else None
    cb_eps = svc["cpu_bound_events_per_s"]
    res["ratio_cpu_bound_to_kcat"] = r(cb_eps / base["kcat_events_per_s"], 3) if cb_eps else None

    # latency
    sent = {}
    for line in open(os.path.join(work, "lat.sent")):
        a, b, c, ph = line.split()
        sent[(int(a), int(b))] = (int(c), int(ph))
    measured_sent = sum(1 for v in sent.values() if v[1])
    # commands with no source event (source.partition -1: the company switch at start, links
    # resolved after another instance's write) are counted apart; a source that names no sent
    # event is a join error
    lat, warm, unmatched, no_source, sources = [], [], 0, 0, {}
    for line in open(os.path.join(work, "lat.cmds")):
        sp, so, ts, _ty = line.split()
        try:
            key = (int(sp), int(so))
        except ValueError:
            key = None
        if key is None or key[0] < 0:
            no_source += 1
            continue
        if key not in sent:
            unmatched += 1
            continue
        sent_ts, phase = sent[key]
        d = int(ts) - sent_ts
        if not phase:
            warm.append(d)
            continue
        lat.append((sent_ts, d))
        sources[key] = max(sources.get(key, d), d)
    ev_lat = sorted(sources.values())
    # p99 of each third of the stream, by send time: a drift (the mock broker slowing down as its
    # logs grow, Redis or the service degrading) shows where the overall figure hides it
    thirds = []
    if lat:
        t0, t1 = min(t for t, _ in lat), max(t for t, _ in lat) + 1
        for k in range(3):
            part = sorted(d for t, d in lat if t0 + (t1 - t0) * k // 3 <= t < t0 + (t1 - t0) * (k + 1) // 3)
            thirds.append(pct(part, 0.99) if part else None)
    lat = sorted(d for _, d in lat)
    # the broker's cores busy over the first and the last third of the stream (run.sh samples it
    # each second)
    bcpu = []
    path = os.path.join(work, "lat.brokercpu")
    if os.path.exists(path):
        for line in open(path):
            a = line.split()
            if len(a) == 2:
                bcpu.append((float(a[0]), float(a[1])))
    def busy(seg):
        return r((seg[-1][1] - seg[0][1]) / (seg[-1][0] - seg[0][0]), 2) if len(seg) > 1 and seg[-1][0] > seg[0][0] else None
    n3 = len(bcpu) // 3
    b_first, b_last = (busy(bcpu[:n3 + 1]), busy(bcpu[-n3 - 1:])) if n3 else (None, None)
    paced = load(work, "paced.json")
    lru = load(work, "lat.rusage")
    li_b, li_a = info(work, "redis.lat.before"), info(work, "redis.lat.after")
    res["latency"] = {
        "offered_events_per_s": p["rate"],
        "achieved_events_per_s": paced["events_per_s"],
        "producer_max_behind_s": paced["max_behind_s"],
        "warmup_s": p["warmup"],
        "events_sent": measured_sent,
        "commands": len(lat),
        "events_with_commands": len(ev_lat),
        "unmatched_commands": unmatched,
        "commands_without_source": no_source,
        "warmup_commands": len(warm),
        "warmup_max_ms": max(warm) if warm else None,
        "p50_ms": pct(lat, 0.5),
        "p90_ms": pct(lat, 0.9),
        "p99_ms": pct(lat, 0.99),
        "p999_ms": pct(lat, 0.999),
        "max_ms": lat[-1] if lat else None,
        "mean_ms": r(sum(lat) / len(lat), 2) if lat else None,
        "per_event_p99_ms": pct(ev_lat, 0.99),
        "service_cpu_s_per_1k_events": r(lru["cpu_s"] / max(1, paced["sent"]) * 1000, 4),
        "service_peak_rss_mib": r(lru["maxrss_kib"] / 1024),
        "redis_commands_per_event": r((li_a["total_commands_processed"] - li_b["total_commands_processed"] - 1)
                                      / max(1, paced["sent"]), 3),
        "broker_cpu_s": r(load(work, "lat.broker.json")["broker_cpu_s"], 2),
        "p99_ms_by_third": thirds,
        "broker_cores_first_third": b_first,
        "broker_cores_last_third": b_last,
    }
    if not lat:
        sys.exit("report.py: no command of the latency stage matched a sent event")

    perf_top = []
    pt = os.path.join(work, "perf.top")
    if os.path.exists(pt):
        perf_top = [" ".join(l.split()) for l in open(pt) if l.strip()]
        res["perf_top"] = perf_top
    pth = os.path.join(work, "perf.threads")
    perf_threads = []
    if os.path.exists(pth):
        perf_threads = [" ".join(l.split()) for l in open(pth) if l.strip()]
        res["perf_threads"] = perf_threads
    res["loadavg_end"] = load(work, "end.json")["loadavg_end"]

    # table
    runs_eps = " / ".join(f"{x['events_per_s']:,.0f}" for x in runs if x["events_per_s"])
    runs_rss = " / ".join(str(x["peak_rss_mib"]) for x in runs)
    runs_out = " / ".join(f"{x['commands_produced']:,}" for x in runs)
    rows = [
        ("workload", f"{p['users']:,} users, {n:,} events, {p['partitions']} partitions, "
                     f"avg Avro value {p['avg_avro_bytes']} B (~{p['est_partition_mib']} MiB/partition)"),
        ("machine", f"{p['nproc']} cores, load average {p['loadavg_start']} at start, "
                    f"{res['loadavg_end']} at end; librdkafka {p['librdkafka']}, redis {p['redis']}, kcat {p['kcat']}"),
        ("consumers", f"fetch.wait.max.ms={p['fetch_wait_max_ms']} for every consumer (the mock broker "
                      f"never cuts a long poll short)" + (f"; service args: {p['service_args']}"
                                                          if p.get('service_args') else "")
                      + (f"; redis-server args: {p['redis_args']}" if p.get('redis_args') else "")),
        ("load (produce-events)", f"{n / max(1e-9, res['load']['seconds']):,.0f} events/s"),
        ("", ""),
        ("baseline: kcat pipe", f"{base['kcat_events_per_s']:,.0f} events/s (best of "
                                f"{' and '.join(str(x) for x in base['kcat_runs_seconds'])} s; "
                                f"{base['kcat_cpu_s_per_1k']} CPU s/1k events, both kcats)"),
        ("baseline: C librdkafka pipe", f"{base['c_pipe_events_per_s']:,.0f} events/s ({base['c_pipe_seconds']} s, "
                                        f"{base['c_pipe_cpu_s_per_1k']} CPU s/1k events)"),
        ("service: throughput", f"{svc['events_per_s']:,.0f} events/s ({svc['seconds']} s from partition "
                                f"assignment to last command)"),
        ("service: from process start", f"{svc['events_per_s_from_process_start']:,.0f} events/s "
                                        f"({svc['startup_to_assignment_s']} s to join the group)"),
        ("service / kcat pipe", f"{res['ratio_service_to_kcat']:.3f}"),
        ("service: every cold start", f"{runs_eps} events/s, median {svc['events_per_s_median']:,.0f} "
                                      f"({res['ratio_median_to_kcat']:.3f} of kcat); peak RSS {runs_rss} MiB; "
                                      f"commands {runs_out}"),
        ("service / C pipe", f"{res['ratio_service_to_c_pipe']:.3f}"),
        ("service: CPU", f"{svc['cpu_s_per_1k_events']} s per 1,000 events ({svc['cpu_user_s']} user + "
                         f"{svc['cpu_sys_s']} sys)"),
        ("service: peak RSS", f"{svc['peak_rss_mib']} MiB"),
        ("service: output", f"{svc['commands_produced']:,} messages, {svc['dead_lettered']} dead-lettered, "
                            f"{svc['duplicates_or_stale']:,} duplicates/stale; {svc['batches']} batches "
                            f"({svc['events_per_batch']} events each)"),
        ("service: main thread", (", ".join(f"{k} {v:.2f}" for k, v in svc["main_thread_step_seconds"].items() if v)
                                  + " s (waits included; provisioner_batch_step_seconds)")
         if svc["main_thread_step_seconds"] else "n/a (a build without step timing)"),
        ("redis: round trips/event", (f"{svc['redis_round_trips_per_event']} ({svc['redis_round_trips']} write() "
                                      f"calls on the Redis sockets, {svc.get('redis_round_trips_per_batch')} per batch)")
         if svc["redis_round_trips"] is not None else "n/a (needs perf with syscall tracepoints)"),
        ("redis: commands/event", f"{svc['redis_commands_per_event']} "
                                  f"({', '.join(f'{k} {v}' for k, v in list(per_cmd.items())[:5])})"),
        ("redis: socket reads/event", f"{svc['redis_socket_reads_per_event']} (server read() calls; "
                                      f">= round trips: a pipeline arrives in 16 KiB reads)"),
        ("redis: memory per user", f"{svc['redis_memory_bytes_per_user']} B ({userkeys:,} user states, "
                                   f"{svc['redis_used_memory_mib']} MiB used)"),
        ("CPU beside the service", f"redis {svc['redis_cpu_s']} s, broker {svc['broker_cpu_s']} s"),
        ("CPU bound", (f"service + redis + broker {svc['machine_cpu_s']} CPU s: on {p['nproc']} cores at most "
                       f"{svc['cpu_bound_events_per_s']:,.0f} events/s ({res['ratio_cpu_bound_to_kcat']:.3f} of "
                       f"kcat) with nothing ever waiting; {svc['cores_busy']} cores busy in the run")
         if svc["cpu_bound_events_per_s"] else "n/a"),
        ("", ""),
        ("latency: offered", f"{p['rate']:,} events/s for {p['warmup']} s warm-up + {p['seconds']} s over "
                             f"{p['latency_partitions']} partitions (producer linger {p['paced_linger_ms']} ms); sent "
                             f"{paced['sent']:,} at {paced['events_per_s']:,.0f}/s (producer at most "
                             f"{paced['max_behind_s']} s behind)"),
        ("latency: commands", f"{len(lat):,} commands from {len(ev_lat):,} of {measured_sent:,} events after the "
                              f"warm-up; {unmatched} unmatched, {no_source} without a source event"),
        ("latency: warm-up", f"{len(warm):,} commands, max {max(warm) if warm else '-'} ms (not in the "
                             f"percentiles)"),
        ("latency: p50 / p99 / p999", f"{res['latency']['p50_ms']} / {res['latency']['p99_ms']} / "
                                      f"{res['latency']['p999_ms']} ms (max {res['latency']['max_ms']} ms, "
                                      f"mean {res['latency']['mean_ms']} ms)"),
        ("latency: service", f"{res['latency']['service_cpu_s_per_1k_events']} CPU s/1k events, peak RSS "
                             f"{res['latency']['service_peak_rss_mib']} MiB; broker {res['latency']['broker_cpu_s']} CPU s"),
        ("latency: over time", f"p99 {' / '.join(str(x) for x in thirds)} ms in the first / middle / last "
                               f"third; " + (f"broker {b_first} cores busy in the first third, {b_last} in the last"
                                             if b_first is not None else "broker not sampled")),
    ]
    w = max(len(a) for a, _ in rows)
    print()
    print("== provisioner bench" + (" (smoke)" if p["smoke"] else ""))
    for a, b in rows:
        print(f"  {a:<{w}}  {b}" if a else "")
    if perf_top:
        print()
        print("== perf: top symbols of the service (self time, profiled pass)")
        for l in perf_top:
            print("  " + l)
        if perf_threads:
            print("  by thread: " + "; ".join(perf_threads))

    if png:
        draw(work, lat, res["latency"], png)
        res["png"] = png
        print(f"\n  latency distribution: {png}")
    print()
    print(json.dumps(res, separators=(",", ":")))
    if unmatched:
        sys.exit(f"report.py: {unmatched} commands of the latency stage name no sent event")


def draw(work, lat, L, png):
    hist = {}
    for v in lat:
        hist[v] = hist.get(v, 0) + 1
    dat = os.path.join(work, "lat.hist")
    with open(dat, "w") as f:
        for v in sorted(hist):
            f.write(f"{v} {hist[v]}\n")
    ccdf = os.path.join(work, "lat.ccdf")
    with open(ccdf, "w") as f:
        nlat, seen = len(lat), 0
        for v in sorted(hist):
            if seen < nlat:
                f.write(f"{v} {(nlat - seen) / nlat}\n")  # share of commands at v ms or slower
            seen += hist[v]
    script = f"""
set terminal pngcairo size 1100,800 noenhanced
set output '{png}'
set multiplot layout 2,1 title 'provisioner: event produce -> command produce, {L["offered_events_per_s"]} events/s offered, {L["commands"]} commands'
set xlabel 'latency (ms)'
set ylabel 'commands'
set logscale y
set grid
set arrow from {L["p50_ms"]}, graph 0 to {L["p50_ms"]}, graph 1 nohead lc rgb 'dark-green'
set arrow from {L["p99_ms"]}, graph 0 to {L["p99_ms"]}, graph 1 nohead lc rgb 'orange'
set arrow from {L["p999_ms"]}, graph 0 to {L["p999_ms"]}, graph 1 nohead lc rgb 'red'
plot '{dat}' using 1:2 with impulses lw 2 title 'per 1 ms (p50 {L["p50_ms"]}, p99 {L["p99_ms"]}, p999 {L["p999_ms"]} ms)'
unset arrow
set ylabel 'share at x ms or slower'
set yrange [{0.5 / max(1, len(lat))}:1]
set format y '%g'
plot '{ccdf}' using 1:2 with steps lw 2 title 'complementary CDF'
unset multiplot
"""
    try:
        subprocess.run(["gnuplot"], input=script.replace("pngcairo", "png") if not has_cairo() else script,
                       text=True, check=True, capture_output=True)
    except (OSError, subprocess.CalledProcessError) as e:
        sys.exit(f"report.py: gnuplot failed: {getattr(e, 'stderr', e)}")


def has_cairo():
    try:
        out = subprocess.run(["gnuplot", "-e", "set terminal"], capture_output=True, text=True).stderr
        return "pngcairo" in out
    except OSError:
        return False


if __name__ == "__main__":
    main()
