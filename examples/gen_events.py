#!/usr/bin/env python3
"""Generates examples/events.jsonl: a deterministic, realistic stream of User change events for the
demo and the benchmarks. usage: gen_events.py [USERS] [EVENTS] [SEED] [ORG] > events.jsonl

Creates come first (some reports before their managers, so links wait, R6.3), then a mix of title,
phone and department changes, manager changes, deactivations, reactivations, a few users outside
the company domains or without a name, a non-User event and a redelivered duplicate.

ORG is the org chart: `flat` (the default: a VP, three directors, everyone else under one of them)
or `deep` (everyone after the directors reports to user (i-2)/5+1, a tree of fan-out 5, seven
levels at 100,000 users; a manager change names any user, now and then one below, which R6.4
refuses): a real org's cycle checks walk long chains."""
import json, random, sys

users_n = int(sys.argv[1]) if len(sys.argv) > 1 else 100
events_n = int(sys.argv[2]) if len(sys.argv) > 2 else 300
rnd = random.Random(int(sys.argv[3]) if len(sys.argv) > 3 else 7)
org = sys.argv[4] if len(sys.argv) > 4 else "flat"
if org not in ("flat", "deep"):
    sys.exit("gen_events.py: ORG is flat or deep, not '%s'" % org)

FIRST = ["Olga", "Ravi", "Mia", "Jonas", "Aiko", "Liam", "Sofia", "Mateo", "Nora", "Kwame", "Ines", "Yuki"]
LAST = ["Brown", "Patel", "Garcia", "Schmidt", "Tanaka", "Okafor", "Rossi", "Nguyen", "Silva", "Cohen"]
TZ = [("America/Los_Angeles", "en_US"), ("America/New_York", "en_US"), ("Europe/Berlin", "de_DE"),
      ("Europe/London", "en_GB"), ("Asia/Tokyo", "ja_JP")]


def uid(i):
    return "0055e%010dAAK" % i


ts = 1764000000000
commit = 1000000


def header(ids, change, changed=()):
    global ts, commit
    ts += rnd.randint(50, 4000)
    commit += 1
    return {"entityName": "User", "recordIds": ids, "changeType": change,
            "changedFields": list(changed), "nulledFields": [], "diffFields": [],
            "transactionKey": "tx-%08d" % commit, "sequenceNumber": 1, "commitTimestamp": ts,
            "commitNumber": commit, "commitUser": "0055e0000000AdmAAC", "changeOrigin": ""}


# The org: one VP of Sales, directors under the VP, AEs under directors, a CS team.
people = []
for i in range(1, users_n + 1):
    if i == 1:
        dept, title, mgr = "Sales", "VP Sales", None
    elif i <= 4:
        dept, title, mgr = "Sales", "Sales Director", 1
    elif i % 5 == 0:
        dept, title, mgr = rnd.choice(["Customer Success", "Support"]), "Customer Success Manager", 2
    else:
        dept, title, mgr = "Sales", "Account Executive", rnd.randint(2, 4)
    if org == "deep" and i > 4:
        mgr = (i - 2) // 5 + 1
    fn, ln = rnd.choice(FIRST), rnd.choice(LAST)
    domain = "acme.com" if i % 17 else "gmail.com"  # a few personal addresses: R3.3
    tz, loc = rnd.choice(TZ)
    p = {"Email": "%s.%s%d@%s" % (fn.lower(), ln.lower(), i, domain), "FirstName": fn,
         "LastName": ln if i % 41 else " ", "Title": title, "Department": dept,
         "Phone": "+1 415 555 %04d" % i, "MobilePhone": "+1 415 666 %04d" % i, "Extension": str(100 + i),
         "IsActive": True, "TimeZoneSidKey": tz, "LocaleSidKey": loc, "UserType": "Standard",
         "ManagerId": uid(mgr) if mgr else None}
    people.append(p)

out = []
# reports of the first director arrive before the director: their links wait (R6.3)
order = list(range(users_n))
order.remove(1)
order.insert(min(12, len(order)), 1)
for i in order:
    ev = {"ChangeEventHeader": header([uid(i + 1)], "CREATE")}
    ev.update({k: v for k, v in people[i].items() if v is not None})
    out.append(ev)

while len(out) < events_n:
    i = rnd.randrange(users_n)
    p = people[i]
    r = rnd.random()
    if r < 0.35:
        p["Title"] = rnd.choice(["Senior Account Executive", "Account Executive", "Sales Director"]) \
            if p["Department"] == "Sales" and i > 3 else p["Title"]
        ev = {"ChangeEventHeader": header([uid(i + 1)], "UPDATE", ["Title", "LastModifiedDate"]),
              "Title": p["Title"], "LastModifiedDate": "2026-11-25T10:00:00.000Z"}
    elif r < 0.55:
        p["Phone"] = "+1 415 777 %04d" % rnd.randrange(10000)
        ev = {"ChangeEventHeader": header([uid(i + 1)], "UPDATE", ["Phone"]), "Phone": p["Phone"]}
    elif r < 0.65 and i > 3:
        p["Department"] = rnd.choice(["Sales", "Customer Success", "Support"])
        ev = {"ChangeEventHeader": header([uid(i + 1)], "UPDATE", ["Department"]),
              "Department": p["Department"]}
    elif r < 0.75 and i > 3:
        p["ManagerId"] = uid(rnd.randint(2, 4) if org == "flat" else rnd.randint(1, users_n))
        ev = {"ChangeEventHeader": header([uid(i + 1)], "UPDATE", ["ManagerId"]),
              "ManagerId": p["ManagerId"]}
    elif r < 0.85:
        p["IsActive"] = not p["IsActive"]
        ev = {"ChangeEventHeader": header([uid(i + 1)], "UPDATE", ["IsActive"]),
              "IsActive": p["IsActive"]}
    elif r < 0.90:
        ids = sorted({uid(rnd.randrange(users_n) + 1) for _ in range(3)})
        ev = {"ChangeEventHeader": header(ids, "UPDATE", ["LocaleSidKey"]), "LocaleSidKey": "en_GB"}
    elif r < 0.93:
        ev = {"ChangeEventHeader": dict(header(["0015e000000AcctAAC"], "UPDATE", ["Name"]),
                                        entityName="Account"), "Name": "Acme Corp"}
    else:
        ev = json.loads(json.dumps(out[rnd.randrange(len(out))]))  # redelivered: R1.4 duplicate
    out.append(ev)

for ev in out[:events_n]:
    print(json.dumps(ev, separators=(",", ":")))
