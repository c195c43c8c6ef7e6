#!/usr/bin/env python3
"""Offline checks of the deployment files, called by tests/deploy/check.sh.

Each subcommand prints what it found wrong (one line each) and exits 1 if anything was, 0 if not;
on success it may print one line of detail. Needs PyYAML; uses the jsonschema module when it is
importable, else a small validator of the JSON Schema keywords that values.schema.json uses.
"""
import fnmatch
import json
import os
import re
import sys

import yaml

ERRORS = []


def err(msg):
    ERRORS.append(msg)


def done(detail=None):
    for e in ERRORS:
        print("  - " + e)
    if not ERRORS and detail:
        print(detail)
    sys.exit(1 if ERRORS else 0)


def load_docs(path):
    with open(path, encoding="utf-8") as f:
        return [d for d in yaml.safe_load_all(f) if d]


def by_kind(docs, kind):
    return [d for d in docs if d.get("kind") == kind]


def one(docs, kind):
    found = by_kind(docs, kind)
    if len(found) != 1:
        err(f"expected one {kind}, found {len(found)}")
        return None
    return found[0]


def mebibytes(q):
    """A memory quantity in MiB (enough of the Kubernetes syntax for these manifests)."""
    m = re.fullmatch(r"([0-9.]+)(Ki|Mi|Gi|K|M|G)?", str(q))
    if not m:
        return None
    scale = {None: 1 / 2**20, "Ki": 1 / 1024, "Mi": 1, "Gi": 1024, "K": 1e3 / 2**20,
             "M": 1e6 / 2**20, "G": 1e9 / 2**20}[m.group(2)]
    return float(m.group(1)) * scale


# ---- the pod spec of the service: shared by the kustomize and Helm renders

def env_of(container, configmaps):
    """The container's environment as {name: value or ('secret', name, key) or ('field', path)},
    with envFrom ConfigMaps resolved from the render."""
    env = {}
    for src in container.get("envFrom") or []:
        ref = (src.get("configMapRef") or {}).get("name")
        if ref is None:
            continue
        if ref not in configmaps:
            err(f"envFrom names ConfigMap {ref}, which the render does not contain")
            continue
        env.update(configmaps[ref].get("data") or {})
    for e in container.get("env") or []:
        vf = e.get("valueFrom")
        if vf is None:
            env[e["name"]] = str(e.get("value", ""))
        elif "secretKeyRef" in vf:
            env[e["name"]] = ("secret", vf["secretKeyRef"]["name"], vf["secretKeyRef"]["key"])
        elif "fieldRef" in vf:
            env[e["name"]] = ("field", vf["fieldRef"]["fieldPath"])
        else:
            env[e["name"]] = ("other",)
    return env


SECRET_NAME = re.compile(r"(password|secret|token|credential)", re.I)
URL_WITH_PASSWORD = re.compile(r"://[^/@\s]*:[^/@\s]+@")


def check_configmaps_hold_no_secret(configmaps):
    for name, cm in configmaps.items():
        for key, value in (cm.get("data") or {}).items():
            if key == "settings.yaml":
                continue
            if SECRET_NAME.search(key) and not key.endswith("_FILE") and not key.endswith(".location"):
                err(f"ConfigMap {name}: key {key} looks like a secret; secrets come from a Secret")
            if URL_WITH_PASSWORD.search(str(value)):
                err(f"ConfigMap {name}: {key} holds a URL with a password")


def check_pod(kind, name, pod_spec, configmaps, expect_probes=True):
    """The properties every pod of the service must have. Returns the container's env."""
    where = f"{kind} {name}"
    psc = pod_spec.get("securityContext") or {}
    if psc.get("runAsNonRoot") is not True:
        err(f"{where}: pod securityContext.runAsNonRoot is not true")
    if (psc.get("seccompProfile") or {}).get("type") != "RuntimeDefault":
        err(f"{where}: pod seccompProfile is not RuntimeDefault")
    if pod_spec.get("automountServiceAccountToken") is not False:
        err(f"{where}: automountServiceAccountToken is not false (the service needs no API access)")
    containers = pod_spec.get("containers") or []
    if len(containers) != 1:
        err(f"{where}: expected one container, found {len(containers)}")
        return {}
    c = containers[0]
    sc = c.get("securityContext") or {}
    for key, want in (("runAsNonRoot", True), ("readOnlyRootFilesystem", True),
                      ("allowPrivilegeEscalation", False)):
        if sc.get(key) is not want:
            err(f"{where}: container securityContext.{key} is not {str(want).lower()}")
    if "ALL" not in ((sc.get("capabilities") or {}).get("drop") or []):
        err(f"{where}: container capabilities do not drop ALL")
    if (sc.get("seccompProfile") or psc.get("seccompProfile") or {}).get("type") != "RuntimeDefault":
        err(f"{where}: container seccompProfile is not RuntimeDefault")

    res = c.get("resources") or {}
    for part in ("requests", "limits"):
        for r in ("cpu", "memory"):
            if r not in (res.get(part) or {}):
                err(f"{where}: resources.{part}.{r} is not set")
    lim = mebibytes((res.get("limits") or {}).get("memory", ""))
    req = mebibytes((res.get("requests") or {}).get("memory", ""))
    if lim is not None and lim < 64:
        err(f"{where}: memory limit {lim:.0f} MiB is below the service's ~64 MiB resident size")
    if req is not None and lim is not None and req > lim:
        err(f"{where}: memory request above the limit")

    env = env_of(c, configmaps)
    # The settings file: PROVISIONER_SETTINGS inside a read-only directory mount of a ConfigMap
    # that has the file's key.
    settings = env.get("PROVISIONER_SETTINGS")
    if not isinstance(settings, str) or not settings:
        err(f"{where}: PROVISIONER_SETTINGS is not set")
    else:
        d, f = os.path.split(settings)
        mounts = {m["name"]: m for m in c.get("volumeMounts") or []}
        vols = {v["name"]: v for v in pod_spec.get("volumes") or []}
        hit = [m for m in mounts.values() if m["mountPath"].rstrip("/") == d]
        if not hit:
            err(f"{where}: nothing is mounted at {d} (PROVISIONER_SETTINGS={settings})")
        else:
            m = hit[0]
            if m.get("subPath"):
                err(f"{where}: the settings mount uses subPath: edits of the ConfigMap would never reach the pod")
            if m.get("readOnly") is not True:
                err(f"{where}: the settings mount is not read-only")
            cmname = ((vols.get(m["name"]) or {}).get("configMap") or {}).get("name")
            if cmname is None:
                err(f"{where}: the settings volume is not a ConfigMap")
            elif cmname not in configmaps:
                err(f"{where}: settings ConfigMap {cmname} is not in the render")
            elif f not in (configmaps[cmname].get("data") or {}):
                err(f"{where}: ConfigMap {cmname} has no key {f}")
    # Secrets: by secretKeyRef, or as files inside a mounted Secret / projected volume.
    redis = env.get("PROVISIONER_REDIS")
    if not (isinstance(redis, tuple) and redis[0] == "secret"):
        err(f"{where}: PROVISIONER_REDIS (a URL with the password) does not come from a Secret")
    for k, v in env.items():
        if SECRET_NAME.search(k) and not k.endswith("_FILE") and not (isinstance(v, tuple) and v[0] == "secret"):
            err(f"{where}: {k} is a plain value; a secret comes from a Secret")
        if isinstance(v, str) and URL_WITH_PASSWORD.search(v):
            err(f"{where}: {k} holds a URL with a password")
    mounted = secret_files(c, pod_spec)
    for k, v in env.items():
        if k.endswith("_FILE") and isinstance(v, str) and SECRET_NAME.search(k):
            if v not in mounted:
                err(f"{where}: {k}={v} is not a file of a mounted Secret")

    if expect_probes:
        ports = {p.get("name"): p for p in c.get("ports") or []}
        for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
            get = ((c.get(probe) or {}).get("httpGet")) or {}
            if get.get("path") != path:
                err(f"{where}: {probe} does not GET {path}")
            port = get.get("port")
            if isinstance(port, str) and port not in ports:
                err(f"{where}: {probe} names port {port}, which the container does not have")
        http = ports.get("http")
        if not http:
            err(f"{where}: no container port named http")
        elif "PROVISIONER_HTTP_PORT" in env and str(http.get("containerPort")) != str(env["PROVISIONER_HTTP_PORT"]):
            err(f"{where}: containerPort {http.get('containerPort')} differs from PROVISIONER_HTTP_PORT "
                f"{env['PROVISIONER_HTTP_PORT']}")
        st = env.get("PROVISIONER_SHUTDOWN_TIMEOUT", "25")  # the option table's default
        shutdown = int(st) if isinstance(st, str) and st.isdigit() else 25
        grace = pod_spec.get("terminationGracePeriodSeconds", 30)
        if not grace > shutdown:
            err(f"{where}: terminationGracePeriodSeconds {grace} is not longer than the shutdown timeout {shutdown}")
    return env


def secret_files(container, pod_spec):
    """Paths of the files that mounted Secrets (or projected Secrets) put in the container."""
    vols = {v["name"]: v for v in pod_spec.get("volumes") or []}
    files = set()
    for m in container.get("volumeMounts") or []:
        v = vols.get(m["name"]) or {}
        sources = []
        if "secret" in v:
            sources.append(v["secret"])
        for s in (v.get("projected") or {}).get("sources") or []:
            if "secret" in s:
                sources.append(s["secret"])
        for s in sources:
            for item in s.get("items") or []:
                files.add(os.path.join(m["mountPath"], item["path"]))
    return files


def selects(selector, labels):
    return all(labels.get(k) == v for k, v in (selector or {}).items())


def check_service_and_pdb(docs, pod_labels, expect_pdb=True):
    svc = one(docs, "Service")
    if svc:
        if not selects(svc["spec"].get("selector"), pod_labels):
            err("Service selector does not select the pods")
        names = [p.get("name") for p in svc["spec"].get("ports") or []]
        if "http-metrics" not in names:
            err(f"Service has no port named http-metrics (ports: {names})")
    pdbs = by_kind(docs, "PodDisruptionBudget")
    if expect_pdb:
        if len(pdbs) != 1:
            err(f"expected one PodDisruptionBudget, found {len(pdbs)}")
        else:
            spec = pdbs[0]["spec"]
            if spec.get("maxUnavailable") != 1:
                err(f"PodDisruptionBudget maxUnavailable is {spec.get('maxUnavailable')}, not 1")
            if not selects((spec.get("selector") or {}).get("matchLabels"), pod_labels):
                err("PodDisruptionBudget selector does not select the pods")


def configmaps_of(docs):
    return {d["metadata"]["name"]: d for d in by_kind(docs, "ConfigMap")}


def deployment_checks(docs):
    configmaps = configmaps_of(docs)
    check_configmaps_hold_no_secret(configmaps)
    dep = one(docs, "Deployment")
    if not dep:
        return None, {}, configmaps
    tpl = dep["spec"]["template"]
    labels = tpl["metadata"].get("labels") or {}
    if not selects(dep["spec"]["selector"].get("matchLabels"), labels):
        err("Deployment selector does not select its own pods")
    env = check_pod("Deployment", dep["metadata"]["name"], tpl["spec"], configmaps)
    return dep, env, configmaps


# ---- subcommands

def cmd_kustomize(path, mode):
    docs = load_docs(path)
    dep, env, configmaps = deployment_checks(docs)
    if dep is None:
        done()
    labels = dep["spec"]["template"]["metadata"].get("labels") or {}
    check_service_and_pdb(docs, labels)
    for key in ("PROVISIONER_BROKERS", "PROVISIONER_GROUP", "PROVISIONER_INPUT_TOPIC"):
        if key not in env:
            err(f"Deployment: {key} is not set")
    if mode == "base":
        if dep["spec"].get("replicas") != 2:
            err(f"base Deployment replicas is {dep['spec'].get('replicas')}, not 2")
        detail = f"{len(docs)} objects; Deployment {dep['metadata']['name']} x{dep['spec'].get('replicas')}"
    else:
        ns = by_kind(docs, "Namespace")
        namespaced = [d for d in docs if d.get("kind") != "Namespace"]
        spaces = {d["metadata"].get("namespace") for d in namespaced}
        if len(spaces) != 1 or None in spaces:
            err(f"overlay objects are not all in one namespace: {sorted(map(str, spaces))}")
        elif ns and ns[0]["metadata"]["name"] not in spaces:
            err("the overlay's Namespace is not the one its objects are in")
        image = dep["spec"]["template"]["spec"]["containers"][0]["image"]
        if ":" not in image.rsplit("/", 1)[-1] or image.endswith(":latest"):
            err(f"overlay image {image} has no pinned tag")
        for name in configmaps:
            if not re.search(r"-[a-z0-9]{10}$", name):
                err(f"ConfigMap {name} has no content hash in its name: a change would not roll the pods")
        detail = (f"{len(docs)} objects in namespace {next(iter(spaces))}; image {image}; "
                  f"replicas {dep['spec'].get('replicas')}")
    done(detail)


def cmd_settings_name(path):
    """Prints the name of the ConfigMap mounted as the settings of the Deployment."""
    docs = load_docs(path)
    dep = one(docs, "Deployment")
    if dep:
        for v in dep["spec"]["template"]["spec"].get("volumes") or []:
            if v["name"] == "settings":
                print(v["configMap"]["name"])
                return
    err("no settings volume")
    done()


def cmd_extract_settings(path, out):
    """Writes the settings.yaml of the render's settings ConfigMap to out."""
    docs = load_docs(path)
    for cm in by_kind(docs, "ConfigMap"):
        data = cm.get("data") or {}
        if "settings.yaml" in data:
            with open(out, "w", encoding="utf-8") as f:
                f.write(data["settings.yaml"])
            return
    err("no ConfigMap with settings.yaml")
    done()


def cmd_values_settings(values_path, out):
    """Writes the settings block of values.yaml as a settings file (an empty primary_domain,
    which the chart requires the user to set, is filled in with example.com)."""
    with open(values_path, encoding="utf-8") as f:
        values = yaml.safe_load(f)
    settings = values["settings"]
    if not (settings.get("company") or {}).get("primary_domain"):
        settings.setdefault("company", {})["primary_domain"] = "example.com"
    with open(out, "w", encoding="utf-8") as f:
        yaml.safe_dump(settings, f, sort_keys=False)


def cmd_helm(path, mode, values_path):
    """Checks one `helm template` render. mode: default (chart defaults) or full (KEDA,
    ServiceMonitor, replay Job, Salesforce, reimport token, Kafka properties all on)."""
    docs = load_docs(path)
    with open(values_path, encoding="utf-8") as f:
        values = yaml.safe_load(f)
    dep, env, configmaps = deployment_checks(docs)
    if dep is None:
        done()
    tpl = dep["spec"]["template"]
    labels = tpl["metadata"].get("labels") or {}
    for key in ("app.kubernetes.io/name", "app.kubernetes.io/instance"):
        if key not in labels or key not in dep["spec"]["selector"]["matchLabels"]:
            err(f"pod labels / selector lack {key}")
    for d in docs:
        ml = d["metadata"].get("labels") or {}
        if d.get("kind") != "Job" and "app.kubernetes.io/managed-by" not in ml:
            err(f"{d['kind']} {d['metadata']['name']}: no app.kubernetes.io/managed-by label")
    if not re.fullmatch(r"[0-9a-f]{64}", str((tpl["metadata"].get("annotations") or {}).get("checksum/settings", ""))):
        err("Deployment pod template has no checksum/settings annotation")
    check_service_and_pdb(docs, labels)
    for k in env:
        if k.startswith("PROVISIONER_KAFKA_") and isinstance(env[k], str) and re.search(r"e\+[0-9]+$", env[k]):
            err(f"{k}={env[k]}: a number rendered with an exponent")
    if mode == "default":
        if dep["spec"].get("replicas") != values["replicaCount"]:
            err("Deployment replicas differ from replicaCount")
        for kind in ("ScaledObject", "ServiceMonitor", "Job"):
            if by_kind(docs, kind):
                err(f"{kind} rendered although disabled by default")
        done(f"{len(docs)} objects: " + ", ".join(sorted(d["kind"] for d in docs)))
    # full
    if "replicas" in dep["spec"]:
        err("Deployment sets replicas although KEDA owns the count")
    so = one(docs, "ScaledObject")
    if so:
        spec = so["spec"]
        if spec["scaleTargetRef"]["name"] != dep["metadata"]["name"]:
            err("ScaledObject does not target the Deployment")
        if spec["maxReplicaCount"] > values["kafka"]["partitions"]:
            err("ScaledObject maxReplicaCount exceeds kafka.partitions")
        trig = spec["triggers"][0]
        md = trig["metadata"]
        if trig["type"] != "kafka" or md.get("consumerGroup") != env.get("PROVISIONER_GROUP") \
                or md.get("topic") != env.get("PROVISIONER_INPUT_TOPIC"):
            err("ScaledObject trigger is not the kafka lag of the service's group on the input topic")
        if md.get("allowIdleConsumers") != "false":
            err("ScaledObject allows idle consumers (replicas beyond the partitions)")
    sm = one(docs, "ServiceMonitor")
    if sm:
        if [e.get("port") for e in sm["spec"]["endpoints"]] != ["http-metrics"]:
            err("ServiceMonitor does not scrape the http-metrics port")
        if not selects(sm["spec"]["selector"]["matchLabels"], one(docs, "Service")["metadata"]["labels"]):
            err("ServiceMonitor does not select the Service")
    job = one(docs, "Job")
    if job:
        jspec = job["spec"]["template"]["spec"]
        jlabels = job["spec"]["template"]["metadata"].get("labels") or {}
        for kind in ("Service", "PodDisruptionBudget"):
            for d in by_kind(docs, kind):
                sel = d["spec"]["selector"]
                if selects(sel.get("matchLabels", sel), jlabels):
                    err(f"{kind} {d['metadata']['name']} selects the replay Job's pod")
        if jspec.get("restartPolicy") != "Never":
            err("replay Job restartPolicy is not Never")
        jenv = check_pod("Job", job["metadata"]["name"], jspec, configmaps, expect_probes=False)
        if {k: v for k, v in jenv.items()} != env:
            err("replay Job environment differs from the Deployment's")
        args = jspec["containers"][0].get("args") or []
        if not args or args[0] != "replay":
            err(f"replay Job does not run `provisioner replay` (args {args})")
        if not any(a in args for a in ("--from-beginning", "--from-timestamp", "--offsets")):
            err("replay Job has no --from-beginning / --from-timestamp / --offsets")
        if ("--replay-group" not in args
                or args[args.index("--replay-group") + 1] == env.get("PROVISIONER_GROUP")):
            err("replay Job does not use a consumer group of its own")
    done(f"{len(docs)} objects: " + ", ".join(sorted(d["kind"] for d in docs)))


def cmd_checksum(path):
    docs = load_docs(path)
    dep = one(docs, "Deployment")
    if dep:
        print((dep["spec"]["template"]["metadata"].get("annotations") or {}).get("checksum/settings", ""))
        return
    done()


# ---- values.schema.json

class MiniValidator:
    """The JSON Schema (draft-07) keywords values.schema.json uses, for when the jsonschema
    module is missing. Refuses a schema with any other keyword rather than ignoring it."""

    KNOWN = {"$schema", "title", "description", "type", "properties", "additionalProperties",
             "required", "enum", "const", "pattern", "minimum", "maximum", "exclusiveMinimum",
             "minLength", "items", "uniqueItems", "propertyNames", "not"}
    TYPES = {"object": dict, "array": list, "string": str, "boolean": bool}

    def __init__(self, schema):
        self.schema = schema
        self.unknown = set()
        self._scan(schema)

    def _scan(self, s):
        if not isinstance(s, dict):
            return
        self.unknown |= set(s) - self.KNOWN
        for k in ("items", "propertyNames", "not"):
            self._scan(s.get(k))
        if isinstance(s.get("additionalProperties"), dict):
            self._scan(s["additionalProperties"])
        for sub in (s.get("properties") or {}).values():
            self._scan(sub)

    @classmethod
    def _is(cls, v, t):
        if t == "integer":
            return isinstance(v, int) and not isinstance(v, bool) or (isinstance(v, float) and v.is_integer())
        if t == "number":
            return isinstance(v, (int, float)) and not isinstance(v, bool)
        if t == "null":
            return v is None
        if t in ("object", "array", "string"):
            return isinstance(v, cls.TYPES[t])
        return isinstance(v, bool)

    def errors(self, v, s=None, path="(root)"):
        s = self.schema if s is None else s
        out = []
        if "type" in s:
            types = s["type"] if isinstance(s["type"], list) else [s["type"]]
            if not any(self._is(v, t) for t in types):
                return [f"{path}: {v!r} is not of type {'/'.join(types)}"]
        if "enum" in s and v not in s["enum"]:
            out.append(f"{path}: {v!r} is not one of {s['enum']}")
        if "const" in s and (v != s["const"] or type(v) is not type(s["const"])):
            out.append(f"{path}: {v!r} is not {s['const']!r}")
        if "not" in s and not self.errors(v, s["not"], path):
            out.append(f"{path}: {v!r} must not match {s['not']}")
        if isinstance(v, str):
            if "pattern" in s and not re.search(s["pattern"], v):
                out.append(f"{path}: {v!r} does not match {s['pattern']}")
            if len(v) < s.get("minLength", 0):
                out.append(f"{path}: {v!r} is too short")
        if self._is(v, "number"):
            if "minimum" in s and v < s["minimum"]:
                out.append(f"{path}: {v} is less than {s['minimum']}")
            if "maximum" in s and v > s["maximum"]:
                out.append(f"{path}: {v} is more than {s['maximum']}")
            if "exclusiveMinimum" in s and v <= s["exclusiveMinimum"]:
                out.append(f"{path}: {v} is not more than {s['exclusiveMinimum']}")
        if isinstance(v, list):
            for i, item in enumerate(v):
                if "items" in s:
                    out += self.errors(item, s["items"], f"{path}[{i}]")
            if s.get("uniqueItems") and len({json.dumps(x, sort_keys=True) for x in v}) != len(v):
                out.append(f"{path}: items are not unique")
        if isinstance(v, dict):
            props = s.get("properties") or {}
            for r in s.get("required") or []:
                if r not in v:
                    out.append(f"{path}: {r!r} is a required property")
            for k, item in v.items():
                sub = f"{path}.{k}" if path != "(root)" else k
                if "propertyNames" in s:
                    out += [f"{sub}: property name: {e.split(': ', 1)[1]}"
                            for e in self.errors(k, s["propertyNames"], sub)]
                if k in props:
                    out += self.errors(item, props[k], sub)
                elif s.get("additionalProperties") is False:
                    out.append(f"{path}: additional property {k!r} is not allowed")
                elif isinstance(s.get("additionalProperties"), dict):
                    out += self.errors(item, s["additionalProperties"], sub)
        return out


def validator(schema):
    try:
        import jsonschema  # noqa: F401  (python3-jsonschema)
    except ImportError:
        mv = MiniValidator(schema)
        if mv.unknown:
            err(f"the fallback validator does not know the keywords {sorted(mv.unknown)}")
            done()
        return "built-in subset validator", lambda v: mv.errors(v)
    cls = jsonschema.validators.validator_for(schema)
    if cls is not jsonschema.Draft7Validator:
        err(f"values.schema.json is not draft-07 (validator {cls.__name__})")
    jsonschema.Draft7Validator.check_schema(schema)
    v = jsonschema.Draft7Validator(schema)
    return (f"jsonschema {getattr(jsonschema, '__version__', '')}".strip(),
            lambda x: [f"{'.'.join(map(str, e.absolute_path)) or '(root)'}: {e.message}"
                       for e in v.iter_errors(x)])


def cmd_schema(schema_path, values_path):
    with open(schema_path, encoding="utf-8") as f:
        schema = json.load(f)
    with open(values_path, encoding="utf-8") as f:
        values = yaml.safe_load(f)
    if schema.get("$schema") != "http://json-schema.org/draft-07/schema#":
        err("values.schema.json does not declare draft-07")
    if schema.get("additionalProperties") is not False:
        err("values.schema.json allows unknown top-level keys")
    name, errors = validator(schema)
    for e in errors(values):
        err(f"values.yaml: {e}")
    missing = set(schema.get("properties", {})) - set(values)
    if missing:
        err(f"values.yaml lacks keys the schema describes: {sorted(missing)}")
    # Values the schema must refuse: a typo at the top level, and the usual mistakes.
    import copy
    bad = {
        "an unknown top-level key": lambda v: v.update(replicaCont=2),
        "a string replicaCount": lambda v: v.update(replicaCount="2"),
        "an unknown settings key": lambda v: v["settings"].update(guard={}),
        "a secret in kafka.properties": lambda v: v["kafka"]["properties"].update({"sasl.password": "x"}),
        "replay.from: yesterday": lambda v: v["replay"].update({"from": "yesterday"}),
        "readOnlyRootFilesystem: false": lambda v: v["securityContext"].update(readOnlyRootFilesystem=False),
        "update_mode: sometimes": lambda v: v["settings"]["assignments"][0].update(update_mode="sometimes"),
        "max_deactivation_share: 2": lambda v: v["settings"]["guards"].update(max_deactivation_share=2),
    }
    for what, change in bad.items():
        v = copy.deepcopy(values)
        change(v)
        if not errors(v):
            err(f"the schema accepts {what}")
    done(f"values.yaml fits values.schema.json ({name}); {len(bad)} bad variants refused")


TEMPLATE_REF = re.compile(r"\$?\.Values((?:\.[A-Za-z_][A-Za-z0-9_]*)+)")
BLOCK_OPEN = re.compile(r"\{\{-?\s*(if|range|with|define|block)\b")
BLOCK_END = re.compile(r"\{\{-?\s*end\b")


def cmd_templates(chart):
    """Without helm: every .Values path a template names exists in values.yaml, and every
    template's blocks are closed."""
    with open(os.path.join(chart, "values.yaml"), encoding="utf-8") as f:
        values = yaml.safe_load(f)
    tdir = os.path.join(chart, "templates")
    refs = 0
    for name in sorted(os.listdir(tdir)):
        with open(os.path.join(tdir, name), encoding="utf-8") as f:
            text = f.read()
        if text.count("{{") != text.count("}}"):
            err(f"{name}: unbalanced {{{{ }}}}")
        opened, ended = len(BLOCK_OPEN.findall(text)), len(BLOCK_END.findall(text))
        if opened != ended:
            err(f"{name}: {opened} if/range/with/define blocks but {ended} end")
        for m in TEMPLATE_REF.finditer(text):
            refs += 1
            node = values
            for key in m.group(1).strip(".").split("."):
                if not isinstance(node, dict) or key not in node:
                    err(f"{name}: .Values{m.group(1)} is not in values.yaml")
                    break
                node = node[key]
    done(f"{refs} .Values references in {len(os.listdir(tdir))} templates, all in values.yaml")


def cmd_dockerfile(path, ignore_path):
    with open(path, encoding="utf-8") as f:
        text = f.read()
    lines = [ln.strip() for ln in re.sub(r"\\\n", " ", text).splitlines()
             if ln.strip() and not ln.strip().startswith("#")]
    froms = [ln for ln in lines if ln.upper().startswith("FROM ")]
    if len(froms) < 2:
        err("the Dockerfile is not multi-stage")
    args = dict(re.findall(r"^ARG (\w+)=(\S+)", "\n".join(lines), re.M))
    images = [re.sub(r"\$\{(\w+)\}", lambda m: args.get(m.group(1), m.group(0)), f.split()[1]) for f in froms]
    if images[:1] != ["debian:bookworm"] or not images[-1].startswith("debian:bookworm-slim"):
        err(f"stages are {images}, not debian:bookworm then debian:bookworm-slim")
    joined = re.sub(r"\\\n", " ", text)
    last = joined[joined.rfind("\nFROM "):]
    for want, why in ((r'^ENTRYPOINT \["/usr/local/bin/provisioner"\]', "ENTRYPOINT"),
                      (r'^CMD \["run"\]', "CMD [\"run\"]"), (r"^USER 10001", "USER 10001 (numeric)"),
                      (r"^EXPOSE 8080", "EXPOSE 8080")):
        if not re.search(want, last, re.M):
            err(f"the runtime stage lacks {why}")
    if re.search(r"^HEALTHCHECK", text, re.M):
        err("the image has a HEALTHCHECK (Kubernetes probes do that)")
    if "install-deps.sh" not in text:
        err("the build stage does not use deploy/dev/install-deps.sh")
    m = re.search(r"apt-get install[^&]*?--no-install-recommends((?:\s+[a-z0-9][a-z0-9.+-]+)+)", last)
    runtime = m.group(1).split() if m else []
    if not runtime:
        err("no apt-get install of runtime libraries in the runtime stage")
    print(" ".join(runtime))
    # The build context must keep what the build needs.
    needed = ["CMakeLists.txt", "cmake/embed.cmake", "cmd/provisioner/main.c", "internal/util",
              "schemas/GongCommand.avsc", "deploy/dev/install-deps.sh"]
    if os.path.exists(ignore_path):
        with open(ignore_path, encoding="utf-8") as f:
            pats = [p.strip() for p in f if p.strip() and not p.startswith("#") and not p.startswith("!")]
        for n in needed:
            parts = n.split("/")
            prefixes = ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]
            for p in pats:
                if any(fnmatch.fnmatch(x, p.strip("/")) for x in prefixes):
                    err(f".dockerignore pattern {p} drops {n}, which the build needs")
    if ERRORS:
        done()


def cmd_alerts(rules_path, readme_path):
    """deploy/prometheus/alerts.yaml: the shape of a Prometheus rule file, and every provisioner_
    metric its expressions name (less a histogram's _bucket/_sum/_count) in the README's table."""
    docs = load_docs(rules_path)
    if len(docs) != 1 or not isinstance(docs[0].get("groups"), list) or not docs[0]["groups"]:
        err("expected one document with a non-empty list 'groups'")
        return done()
    with open(readme_path, encoding="utf-8") as f:
        table = set(re.findall(r"^\| `(provisioner_[a-z_]+)`(?: / `(provisioner_[a-z_]+)`)?", f.read(), re.M))
    known = {m for pair in table for m in pair if m}
    names, n = set(), 0
    for g in docs[0]["groups"]:
        for rule in g.get("rules") or []:
            n += 1
            name = rule.get("alert")
            where = f"alert {name or '(unnamed)'}"
            if not name or name in names:
                err(f"{where}: missing or repeated name")
            names.add(name)
            expr = rule.get("expr")
            if not isinstance(expr, str) or not expr.strip():
                err(f"{where}: no expr")
                continue
            depth = 0
            for ch in expr:
                depth += {"(": 1, ")": -1}.get(ch, 0)
                if depth < 0:
                    break
            if depth != 0:
                err(f"{where}: unbalanced parentheses in expr")
            for m in re.findall(r"\bprovisioner_[a-z_]+", expr):
                base = re.sub(r"_(bucket|sum|count)$", "", m)
                if m not in known and base not in known:
                    err(f"{where}: {m} is not a metric of the README's table")
            if (rule.get("labels") or {}).get("severity") not in ("page", "warning"):
                err(f"{where}: labels.severity is not page or warning")
            if not (rule.get("annotations") or {}).get("summary"):
                err(f"{where}: no annotations.summary")
            if "for" in rule and not re.fullmatch(r"[0-9]+[smh]", str(rule["for"])):
                err(f"{where}: 'for' is not a duration")
    if not known:
        err("no metric found in the README's table")
    done(f"{n} alerts, every metric they name exported")


def main(argv):
    cmds = {"kustomize": cmd_kustomize, "settings-name": cmd_settings_name,
            "extract-settings": cmd_extract_settings, "values-settings": cmd_values_settings,
            "helm": cmd_helm, "checksum": cmd_checksum, "schema": cmd_schema,
            "templates": cmd_templates, "dockerfile": cmd_dockerfile, "alerts": cmd_alerts}
    if len(argv) < 2 or argv[1] not in cmds:
        print(f"usage: {argv[0]} {'|'.join(cmds)} ARGS...", file=sys.stderr)
        return 2
    cmds[argv[1]](*argv[2:])
    done()


if __name__ == "__main__":
    sys.exit(main(sys.argv))
