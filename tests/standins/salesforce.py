#!/usr/bin/env python3
"""A stand-in for Salesforce's REST API, for the tests only: no org can be reached from here.

It serves what the provisioner's Salesforce client uses and nothing more:
  POST /services/oauth2/token       client_credentials and jwt-bearer grants
  GET  /services/data/vNN.N/query?q=SOQL          first page
  GET  /services/data/vNN.N/query/<locator>-<n>   the following pages (nextRecordsUrl)
with a minimal SOQL understanding: SELECT <fields> FROM User|Profile|UserRole
[WHERE Id IN ('..', ..) | WHERE Id = '..'] [ORDER BY ..] [LIMIT n]. Dotted fields (Profile.Name,
UserRole.DeveloperName, Manager.Email, Manager.Profile.Name) are resolved through the ...Id fields
as Salesforce does, and answered as nested objects with "attributes"; Address is answered as a
nested object when the record has one.

Control, for the tests:
  POST /_control  JSON, any of:
     {"status_429": N, "retry_after": S}   next N data requests answer 429 (Retry-After: S if given)
     {"status_500": N}                     next N data requests answer 500 UNKNOWN_EXCEPTION
     {"drop": N}                           next N data requests get the connection closed, no answer
     {"fault": {"status": 503, "count": 2, "errorCode": "X", "message": "Y", "retry_after": 1,
                "scope": "query"|"token"|"any"}}      the general form of the three above
     {"expire_token_after": N}             after N more data requests every issued token is invalid
     {"token_ttl": N}                      each token serves N data requests (null = no limit)
     {"delay_ms": M}                       every request waits M ms before answering
     {"api_used": U, "api_max": M}         the Sforce-Limit-Info counters (each data request adds 1)
     {"upsert": {"Profile": [{"Id": ..., ...}], "User": [...]}}   records added or replaced by Id
     {"reset_stats": true}
  GET  /_stats    JSON counters: requests, token_requests, grants, jwt_verified, query_requests,
                  queries (the SOQL texts), url_lengths, statuses, tokens (issued), unauthorized

Usage: salesforce.py --data FILE [--page-size N] [--client-id ID] [--client-secret-file F]
       [--username U] [--jwt-public-key PEM] [--login-url URL] [--api-max N] [--api-used N]
       [--log FILE] [--max-seconds S]
The data file is a JSON list of User records, or {"User": [...], "Profile": [...], "UserRole":
[...]}. It binds 127.0.0.1 on a free port and prints the port as its first stdout line. It exits
when its stdin closes (the test that started it is gone) or after --max-seconds.
"""

import argparse
import base64
import json
import os
import re
import secrets
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

try:  # the JWT signature is checked when python3-cryptography is there; otherwise only its form
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import padding

    HAVE_CRYPTO = True
except ImportError:  # pragma: no cover
    HAVE_CRYPTO = False

# relationship name -> (the Id field that points to the parent, the parent's table)
RELATIONSHIPS = {
    "profile": ("ProfileId", "Profile"),
    "userrole": ("UserRoleId", "UserRole"),
    "manager": ("ManagerId", "User"),
    "createdby": ("CreatedById", "User"),
    "lastmodifiedby": ("LastModifiedById", "User"),
}

SOQL_RE = re.compile(
    r"^\s*SELECT\s+(?P<fields>.+?)\s+FROM\s+(?P<table>\w+)"
    r"(?:\s+WHERE\s+(?P<where>.+?))?(?:\s+ORDER\s+BY\s+(?P<order>[\w.,\s]+?))?"
    r"(?:\s+LIMIT\s+(?P<limit>\d+))?\s*$",
    re.IGNORECASE | re.DOTALL,
)
FIELD_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]*(\.[A-Za-z][A-Za-z0-9_]*)*$")
# Only literal ids: anything else in a WHERE is a malformed query here, so an injection attempt
# that reached the stand-in would show up as an error rather than as more rows.
IN_RE = re.compile(r"^Id\s+IN\s*\(\s*('[A-Za-z0-9]*'(?:\s*,\s*'[A-Za-z0-9]*')*)\s*\)$", re.I)
EQ_RE = re.compile(r"^Id\s*=\s*'([A-Za-z0-9]*)'$", re.I)
QUERY_PATH_RE = re.compile(
    r"^/services/data/(v\d+\.\d+)/query(?:/(?P<loc>[A-Za-z0-9]+)-(?P<off>\d+))?/?$"
)


class State:
    def __init__(self, args):
        self.lock = threading.RLock()
        self.args = args
        with open(args.data) as f:
            data = json.load(f)
        if isinstance(data, list):
            data = {"User": data}
        self.tables = {k.lower(): v for k, v in data.items()}
        for t in ("user", "profile", "userrole"):
            self.tables.setdefault(t, [])
        self.secret = None
        if args.client_secret_file:
            with open(args.client_secret_file) as f:
                self.secret = f.read().strip()
        self.public_key = None
        if args.jwt_public_key and HAVE_CRYPTO:
            with open(args.jwt_public_key, "rb") as f:
                self.public_key = serialization.load_pem_public_key(f.read())
        self.tokens = {}  # token -> data requests it may still serve (None = unlimited)
        self.cursors = {}  # locator -> (records, version)
        self.faults = []
        self.expire_after = None
        self.token_ttl = None
        self.delay_ms = 0
        self.api_used = args.api_used
        self.api_max = args.api_max
        self.reset_stats()

    def reset_stats(self):
        self.stats = {
            "requests": 0,
            "token_requests": 0,
            "grants": {},
            "jwt_verified": 0,
            "query_requests": 0,
            "queries": [],
            "url_lengths": [],
            "statuses": {},
            "tokens": [],
            "unauthorized": 0,
            "faults_served": 0,
        }

    def take_fault(self, scope):
        for f in self.faults:
            if f["count"] > 0 and f.get("scope", "query") in (scope, "any"):
                f["count"] -= 1
                self.stats["faults_served"] += 1
                return dict(f)
        return None


def table_get(rec, field):
    for k, v in rec.items():
        if k.lower() == field.lower():
            return k, v
    return field, None


def find_by_id(state, table, rid):
    if not rid:
        return None
    for r in state.tables.get(table.lower(), []):
        if str(r.get("Id", ""))[:15] == str(rid)[:15]:
            return r
    return None


def attributes(state, table, rec):
    return {
        "type": table,
        "url": "/services/data/%s/sobjects/%s/%s" % (state.args.version, table, rec.get("Id", "")),
    }


def project(state, table, rec, fields):
    """The record as the REST API answers it for these SELECT fields."""
    out = {"attributes": attributes(state, table, rec)}
    groups = {}  # relationship -> its sub-fields, in order
    for f in fields:
        if "." in f:
            rel, rest = f.split(".", 1)
            groups.setdefault(rel, []).append(rest)
            if rel not in out:
                out[rel] = None  # keeps SELECT order
            continue
        key, val = table_get(rec, f)
        out[key] = val
    for rel, subs in groups.items():
        key, nested = table_get(rec, rel)
        if isinstance(nested, dict):  # the data file may hold the parent inline
            parent, ptable = nested, nested.get("attributes", {}).get("type", rel)
        else:
            idf, ptable = RELATIONSHIPS.get(rel.lower(), (rel + "Id", rel))
            parent = find_by_id(state, ptable, table_get(rec, idf)[1])
        del out[rel]
        out[key] = project(state, ptable, parent, subs) if parent is not None else None
    return out


def run_soql(state, soql):
    """(records, None) or (None, (status, errorCode, message))."""
    m = SOQL_RE.match(soql)
    if not m:
        return None, (400, "MALFORMED_QUERY", "unexpected query: %s" % soql[:80])
    fields = [f.strip() for f in m.group("fields").split(",")]
    if not all(FIELD_RE.match(f) for f in fields):
        return None, (400, "MALFORMED_QUERY", "bad field list")
    table = m.group("table")
    if table.lower() not in ("user", "profile", "userrole"):
        return None, (400, "INVALID_TYPE", "sObject type '%s' is not supported." % table)
    rows = state.tables[table.lower()]
    where = m.group("where")
    if where:
        where = where.strip()
        mi, me = IN_RE.match(where), EQ_RE.match(where)
        if mi:
            ids = re.findall(r"'([A-Za-z0-9]*)'", mi.group(1))
        elif me:
            ids = [me.group(1)]
        else:
            return None, (400, "MALFORMED_QUERY", "unsupported WHERE: %s" % where[:80])
        want = {i[:15] for i in ids}
        rows = [r for r in rows if str(r.get("Id", ""))[:15] in want]
    if m.group("limit"):
        rows = rows[: int(m.group("limit"))]
    canon = {"user": "User", "profile": "Profile", "userrole": "UserRole"}[table.lower()]
    return [project(state, canon, r, fields) for r in rows], None


def b64url_decode(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as Salesforce: the client reuses its connection
    server_version = "SalesforceStandIn/1"

    def log_message(self, fmt, *args):
        if self.server.logf:
            self.server.logf.write("%s %s\n" % (time.strftime("%H:%M:%S"), fmt % args))
            self.server.logf.flush()

    @property
    def st(self):
        return self.server.state

    def send_json(self, status, obj, headers=None):
        body = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json;charset=UTF-8")
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)
        if not self.path.startswith("/_"):
            with self.st.lock:
                s = self.st.stats["statuses"]
                s[str(status)] = s.get(str(status), 0) + 1

    def read_body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def serve_fault(self, fault):
        if fault.get("drop"):
            self.close_connection = True
            try:
                self.connection.shutdown(2)
            except OSError:
                pass
            return
        headers = {}
        if fault.get("retry_after") is not None:
            headers["Retry-After"] = str(fault["retry_after"])
        status = int(fault.get("status", 500))
        default = "REQUEST_LIMIT_EXCEEDED" if status == 429 else "UNKNOWN_EXCEPTION"
        code = fault.get("errorCode") or default
        msg = fault.get("message") or "injected fault"
        if status >= 500 or status == 429:
            headers["Connection"] = "keep-alive"
        self.send_json(status, [{"errorCode": code, "message": msg}], headers)

    # ---- control
    def do_control(self):
        try:
            req = json.loads(self.read_body() or b"{}")
        except ValueError:
            return self.send_json(400, {"error": "bad json"})
        with self.st.lock:
            st = self.st
            for key, status in (("status_429", 429), ("status_500", 500)):
                if req.get(key):
                    st.faults.append(
                        {
                            "status": status,
                            "count": int(req[key]),
                            "retry_after": req.get("retry_after"),
                        }
                    )
            if req.get("drop"):
                st.faults.append({"drop": True, "count": int(req["drop"])})
            if req.get("fault"):
                f = dict(req["fault"])
                f.setdefault("count", 1)
                st.faults.append(f)
            if "expire_token_after" in req:
                st.expire_after = int(req["expire_token_after"])
                if st.expire_after <= 0:
                    st.tokens.clear()
                    st.expire_after = None
            if "token_ttl" in req:
                st.token_ttl = req["token_ttl"]
                for t in st.tokens:
                    st.tokens[t] = st.token_ttl
            if "delay_ms" in req:
                st.delay_ms = int(req["delay_ms"])
            if "api_used" in req:
                st.api_used = int(req["api_used"])
            if "api_max" in req:
                st.api_max = int(req["api_max"])
            for table, records in (req.get("upsert") or {}).items():
                rows = st.tables.setdefault(table.lower(), [])
                for rec in records:
                    rows[:] = [r for r in rows if r.get("Id") != rec.get("Id")]
                    rows.append(rec)
            if req.get("reset_stats"):
                st.reset_stats()
        self.send_json(200, {"ok": True})

    def do_GET(self):
        if self.path == "/_stats":
            with self.st.lock:
                stats = json.loads(json.dumps(self.st.stats))
            return self.send_json(200, stats)
        return self.data_request()

    def do_POST(self):
        if self.path == "/_control":
            return self.do_control()
        if self.path == "/services/oauth2/token":
            return self.token_request()
        self.read_body()
        return self.api_error(404, "NOT_FOUND", "no such resource")

    # ---- OAuth
    def token_request(self):
        body = self.read_body().decode()
        form = dict(urllib.parse.parse_qsl(body, keep_blank_values=True))
        with self.st.lock:
            self.st.stats["requests"] += 1
            self.st.stats["token_requests"] += 1
            fault = self.st.take_fault("token")
            delay = self.st.delay_ms
        if delay:
            time.sleep(delay / 1000.0)
        if fault:
            return self.serve_fault(fault)
        grant = form.get("grant_type", "")
        args = self.st.args
        if grant == "client_credentials":
            if (
                form.get("client_id") != args.client_id
                or form.get("client_secret") != self.st.secret
            ):
                return self.oauth_error("invalid_client", "invalid client credentials")
        elif grant == "urn:ietf:params:oauth:grant-type:jwt-bearer":
            problem = self.check_jwt(form.get("assertion", ""))
            if problem:
                return self.oauth_error("invalid_grant", problem)
        else:
            return self.oauth_error("unsupported_grant_type", "grant type not supported")
        token = "00DSTANDIN!" + secrets.token_urlsafe(24)
        with self.st.lock:
            self.st.tokens[token] = self.st.token_ttl
            self.st.stats["tokens"].append(token)
            g = self.st.stats["grants"]
            key = "client_credentials" if grant == "client_credentials" else "jwt_bearer"
            g[key] = g.get(key, 0) + 1
        host, port = self.server.server_address[:2]
        self.send_json(
            200,
            {
                "access_token": token,
                "instance_url": "http://%s:%d" % (host, port),
                "id": "http://%s:%d/id/00D000000000001/005000000000001" % (host, port),
                "token_type": "Bearer",
                "issued_at": str(int(time.time() * 1000)),
                "signature": "standin",
            },
        )

    def oauth_error(self, error, description):
        return self.send_json(400, {"error": error, "error_description": description})

    def api_error(self, status, code, message, headers=None):
        return self.send_json(status, [{"errorCode": code, "message": message}], headers)

    def check_jwt(self, assertion):
        parts = assertion.split(".")
        if len(parts) != 3:
            return "assertion is not a JWT"
        try:
            header = json.loads(b64url_decode(parts[0]))
            claims = json.loads(b64url_decode(parts[1]))
            sig = b64url_decode(parts[2])
        except ValueError:
            return "assertion is not a JWT"
        args = self.st.args
        if header.get("alg") != "RS256":
            return "alg must be RS256"
        if claims.get("iss") != args.client_id:
            return "client identifier invalid"
        if args.username and claims.get("sub") != args.username:
            return "user hasn't approved this consumer"
        if claims.get("aud") != args.login_url:
            return "audience is invalid"
        exp = claims.get("exp")
        now = time.time()
        if not isinstance(exp, int) or exp < now or exp > now + 300:
            return "expiration is invalid"
        if self.st.public_key is not None:
            try:
                self.st.public_key.verify(
                    sig, (parts[0] + "." + parts[1]).encode(), padding.PKCS1v15(), hashes.SHA256()
                )
            except InvalidSignature:
                return "invalid assertion signature"
            with self.st.lock:
                self.st.stats["jwt_verified"] += 1
        return None

    # ---- data API
    def data_request(self):
        st = self.st
        url = urllib.parse.urlsplit(self.path)
        with st.lock:
            st.stats["requests"] += 1
            st.stats["query_requests"] += 1
            st.stats["url_lengths"].append(len(self.path))
            fault = st.take_fault("query")
            delay = st.delay_ms
        if delay:
            time.sleep(delay / 1000.0)
        if fault:
            return self.serve_fault(fault)
        auth = self.headers.get("Authorization", "")
        token = auth[7:] if auth.startswith("Bearer ") else None
        with st.lock:
            ok = token in st.tokens and (st.tokens[token] is None or st.tokens[token] > 0)
            if ok:
                if st.tokens[token] is not None:
                    st.tokens[token] -= 1
                if st.expire_after is not None:
                    st.expire_after -= 1
                    if st.expire_after <= 0:  # this request is served; the next ones are not
                        st.expire_after = None
                        st.tokens.clear()
                st.api_used += 1
            else:
                st.stats["unauthorized"] += 1
            limit = {"Sforce-Limit-Info": "api-usage=%d/%d" % (st.api_used, st.api_max)}
        if not ok:
            return self.api_error(401, "INVALID_SESSION_ID", "Session expired or invalid")
        m = QUERY_PATH_RE.match(url.path)
        if not m:
            return self.api_error(404, "NOT_FOUND", "The requested resource does not exist", limit)
        version = m.group(1)
        if m.group("loc"):
            with st.lock:
                cur = st.cursors.get(m.group("loc"))
            if cur is None:
                return self.api_error(400, "INVALID_QUERY_LOCATOR", "invalid query locator", limit)
            rows, off = cur, int(m.group("off"))
        else:
            q = urllib.parse.parse_qs(url.query).get("q")
            if not q:
                return self.api_error(400, "MALFORMED_QUERY", "q is missing", limit)
            with st.lock:
                st.stats["queries"].append(q[0])
            rows, problem = run_soql(st, q[0])
            if problem:
                return self.api_error(problem[0], problem[1], problem[2], limit)
            off = 0
            loc = None
        size = st.args.page_size
        page = rows[off : off + size]
        done = off + size >= len(rows)
        ans = {"totalSize": len(rows), "done": done, "records": page}
        if not done:
            loc = m.group("loc")
            if not loc:
                loc = "01g" + secrets.token_hex(6).upper()
                with st.lock:
                    st.cursors[loc] = rows
            ans["nextRecordsUrl"] = "/services/data/%s/query/%s-%d" % (version, loc, off + size)
        self.send_json(200, ans, limit)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", required=True)
    ap.add_argument("--page-size", type=int, default=2000)
    ap.add_argument("--client-id", default="standin-client")
    ap.add_argument("--client-secret-file")
    ap.add_argument("--username")
    ap.add_argument("--jwt-public-key")
    ap.add_argument("--login-url", default="https://login.salesforce.com")
    ap.add_argument("--api-max", type=int, default=15000)
    ap.add_argument("--api-used", type=int, default=0)
    ap.add_argument("--version", default="v62.0", help=argparse.SUPPRESS)
    ap.add_argument("--log")
    ap.add_argument("--max-seconds", type=float, default=600)
    args = ap.parse_args()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    server.state = State(args)
    server.logf = open(args.log, "a") if args.log else None
    print(server.server_address[1], flush=True)

    def watch_stdin():
        try:
            while sys.stdin.buffer.read(4096):
                pass
        except (OSError, ValueError):
            pass
        os._exit(0)

    threading.Thread(target=watch_stdin, daemon=True).start()
    threading.Timer(args.max_seconds, lambda: os._exit(0)).start()
    server.serve_forever()


if __name__ == "__main__":
    main()
