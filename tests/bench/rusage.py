#!/usr/bin/env python3
"""rusage.py OUT.json PIDFILE -- COMMAND...: runs COMMAND as a child, writes its pid to PIDFILE
at once (so that the caller can signal or inspect the real process, not this wrapper), waits for
it and writes what the kernel accounted for it (wait4): CPU user/system seconds and peak RSS
(ru_maxrss, the VmHWM of the largest process of the tree), plus the exit status. Exits with the
child's status. SIGTERM and SIGINT are passed on to the child.

OUT.json and PIDFILE are opened before the fork and moved to high descriptors that the child does
not inherit, and the child closes every other descriptor above 2 before exec (a wrapper such as
perf stat leaves some open): its first own descriptor is 3, as when it runs alone, and this wrapper never writes to descriptor 3 (run.sh counts the service's Redis round
trips as write() calls on descriptor 3, over the whole process tree)."""
import json
import os
import signal
import sys
import time


def main():
    if len(sys.argv) < 5 or sys.argv[3] != "--":
        sys.exit("usage: rusage.py OUT.json PIDFILE -- COMMAND...")
    out_path, pid_path, cmd = sys.argv[1], sys.argv[2], sys.argv[4:]
    def high_fd(path, at):
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
        os.dup2(fd, at, inheritable=False)
        os.close(fd)
        return at

    high = high_fd(out_path, 200)
    pid_fd = high_fd(pid_path, 201)
    start = time.time()
    pid = os.fork()
    if pid == 0:
        # whatever a wrapper above (perf stat) left open is not the child's business
        os.closerange(3, 1 << 16)
        try:
            os.execvp(cmd[0], cmd)
        except OSError as e:
            os.write(2, f"rusage.py: {cmd[0]}: {e}\n".encode())
            os._exit(127)
    os.write(pid_fd, f"{pid}\n".encode())
    os.close(pid_fd)

    def forward(sig, _frame):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    while True:
        try:
            _, status, ru = os.wait4(pid, 0)
            break
        except InterruptedError:
            continue
    end = time.time()
    code = os.waitstatus_to_exitcode(status)
    res = {"exit": code, "user_s": ru.ru_utime, "sys_s": ru.ru_stime,
           "cpu_s": ru.ru_utime + ru.ru_stime, "maxrss_kib": ru.ru_maxrss,
           "start": start, "end": end, "wall_s": end - start}
    os.write(high, (json.dumps(res) + "\n").encode())
    os.close(high)
    sys.exit(code if code >= 0 else 128 - code)


if __name__ == "__main__":
    main()
