#!/usr/bin/env python3
"""A Confluent Schema Registry stand-in for tests: no registry can be installed here.

It answers the two calls provisioner makes, on 127.0.0.1 and a free port printed as the first
line of stdout:
  GET  /schemas/ids/{id}               -> {"schema": "<avsc>"} from DIR/{id}.avsc or a registered
                                          schema; 404 {"error_code": 40403, ...} otherwise
  POST /subjects/{subject}/versions    -> {"id": N}: the id of an identical schema already known,
                                          else the next free id
and, for the tests' own assertions:
  GET  /_stats                         -> {"requests": N, "paths": {path: count}}

Injectable failures: --fail-first N answers the first N requests (not /_stats) with
--fail-status (default 503); --fail-ids 7,8 answers those ids with --fail-status every time.
The server exits when its parent process goes away, so a crashed test leaves nothing running.
"""
import argparse
import http.server
import json
import os
import re
import sys
import threading
import time


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", required=True, help="folder of {id}.avsc files")
    ap.add_argument("--fail-first", type=int, default=0)
    ap.add_argument("--fail-status", type=int, default=503)
    ap.add_argument("--fail-ids", default="")
    args = ap.parse_args()

    lock = threading.Lock()
    state = {
        "requests": 0,
        "paths": {},
        "failures_left": args.fail_first,
        "registered": {},  # id -> schema text
        "subjects": {},  # subject -> [ids]
    }
    fail_ids = {int(x) for x in args.fail_ids.split(",") if x.strip()}

    def known():
        out = {}
        for name in os.listdir(args.dir):
            m = re.fullmatch(r"(\d+)\.avsc", name)
            if m:
                with open(os.path.join(args.dir, name), encoding="utf-8") as f:
                    out[int(m.group(1))] = f.read()
        out.update(state["registered"])
        return out

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *a):  # quiet: the test's output is what matters
            pass

        def reply(self, status, obj):
            body = json.dumps(obj).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/vnd.schemaregistry.v1+json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def count(self):
            """Counts the request; True when it must fail."""
            with lock:
                state["requests"] += 1
                state["paths"][self.path] = state["paths"].get(self.path, 0) + 1
                if state["failures_left"] > 0:
                    state["failures_left"] -= 1
                    return True
            return False

        def do_GET(self):
            if self.path == "/_stats":
                with lock:
                    self.reply(200, {"requests": state["requests"], "paths": state["paths"]})
                return
            if self.count():
                self.reply(args.fail_status, {"error_code": 50001, "message": "injected failure"})
                return
            m = re.fullmatch(r"/schemas/ids/(\d+)", self.path)
            if not m:
                self.reply(404, {"error_code": 404, "message": "no such endpoint"})
                return
            sid = int(m.group(1))
            if sid in fail_ids:
                self.reply(args.fail_status, {"error_code": 50001, "message": "injected failure"})
                return
            with lock:
                schemas = known()
            if sid not in schemas:
                self.reply(404, {"error_code": 40403, "message": f"Schema {sid} not found"})
                return
            self.reply(200, {"schema": schemas[sid]})

        def do_POST(self):
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length)
            if self.count():
                self.reply(args.fail_status, {"error_code": 50001, "message": "injected failure"})
                return
            m = re.fullmatch(r"/subjects/([^/]+)/versions", self.path)
            if not m:
                self.reply(404, {"error_code": 404, "message": "no such endpoint"})
                return
            try:
                schema = json.loads(raw)["schema"]
                json.loads(schema)
            except (ValueError, KeyError, TypeError):
                self.reply(422, {"error_code": 42201, "message": "Invalid schema"})
                return
            with lock:
                schemas = known()
                sid = next((i for i, s in schemas.items() if s == schema), None)
                if sid is None:
                    sid = max(schemas, default=0) + 1
                    state["registered"][sid] = schema
                state["subjects"].setdefault(m.group(1), []).append(sid)
            self.reply(200, {"id": sid})

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    print(server.server_address[1], flush=True)

    parent = os.getppid()

    def watch_parent():
        while os.getppid() == parent:
            time.sleep(0.2)
        os._exit(0)

    threading.Thread(target=watch_parent, daemon=True).start()
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
