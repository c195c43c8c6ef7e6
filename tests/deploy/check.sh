#!/usr/bin/env bash
# Offline checks of the deployment files (deploy/docker, deploy/k8s, helm/): what can be checked
# without a cluster, a registry or a Docker engine. Prints one line per check (PASS, FAIL or SKIP
# with the reason) and exits non-zero if any check failed. Run by CTest as deploy_manifests.
#
#   yamllint          deploy/ and helm/ (values.yaml, Chart.yaml; not the Go templates)
#   kubectl kustomize deploy/k8s/base and deploy/k8s/overlays/example render, and the renders
#                     have the properties the service needs (probes, grace period, security
#                     context, secrets from Secrets, settings mount, hashed ConfigMap names)
#   values.schema.json accepts values.yaml and refuses typical mistakes
#   helm              lint and template in several configurations, when helm is installed
#   check-config      the settings shipped in the manifests and chart, when the binary is built
#   Dockerfile        its shape, and its runtime package names against apt's lists
#   alerts            deploy/prometheus/alerts.yaml: rule shape, metrics named exist (README)
#
# Tools come from the environment: KUBECTL, HELM, YAMLLINT (default: from PATH), PV_BINARY
# (default: build/provisioner). DEPLOY_CHECK_STRICT=1 counts a skipped check as a failure.
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT" || exit 1
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

passed=0 failed=0 skipped=0
pass() { echo "PASS $*"; passed=$((passed + 1)); }
fail() { echo "FAIL $*"; failed=$((failed + 1)); }
skip() { echo "SKIP $*"; skipped=$((skipped + 1)); }
# check WHAT CMD...: PASS with the command's last output line, or FAIL with all its output.
check() {
  local what=$1 out
  shift
  if out=$("$@" 2>&1); then
    pass "$what${out:+ ($(tail -n 1 <<<"$out"))}"
  else
    fail "$what"
    sed 's/^/    /' <<<"$out"
  fi
}
# refuse WHAT CMD...: the command must fail (a render the chart has to refuse).
refuse() {
  local what=$1 out
  shift
  if out=$("$@" 2>&1); then
    fail "$what: accepted"
  else
    local why
    why=$(grep -m1 -E '^- ' <<<"$out" || grep -m1 -i 'error' <<<"$out")
    pass "$what: refused ($(sed -E 's/.*(execution error at \([^)]*\): |Error: )//; s/^- //' <<<"$why" | cut -c1-140))"
  fi
}

# ---- Python with PyYAML (and jsonschema if any interpreter has it)
PY=""
for c in python3 /usr/bin/python3; do
  if command -v "$c" >/dev/null 2>&1 && "$c" -c 'import yaml' 2>/dev/null; then
    [ -z "$PY" ] && PY=$c
    if "$c" -c 'import jsonschema' 2>/dev/null; then PY=$c; break; fi
  fi
done
if [ -z "$PY" ]; then
  echo "FAIL no python3 with PyYAML (apt-get install python3-yaml): nothing can be checked"
  exit 1
fi
M=("$PY" "$ROOT/tests/deploy/manifests.py")

# ---- yamllint
YAMLLINT=${YAMLLINT:-yamllint}
if command -v "$YAMLLINT" >/dev/null 2>&1; then
  check "yamllint -s deploy/ helm/ ($("$YAMLLINT" --version 2>&1), config .yamllint)" \
    "$YAMLLINT" -s -c .yamllint deploy helm
else
  skip "yamllint not installed (apt-get install yamllint): YAML style of deploy/ and helm/ not checked"
fi

# ---- kustomize
KUBECTL=${KUBECTL:-kubectl}
KUSTOMIZE=()
if command -v "$KUBECTL" >/dev/null 2>&1; then
  KUSTOMIZE=("$KUBECTL" kustomize)
  kminor=$("$KUBECTL" version --client -o json 2>/dev/null |
    "$PY" -c 'import json,re,sys; print(re.sub(r"\D.*", "", json.load(sys.stdin)["clientVersion"]["minor"]))' 2>/dev/null)
  kdesc="kubectl $("$KUBECTL" version --client -o json 2>/dev/null |
    "$PY" -c 'import json,sys; d=json.load(sys.stdin); k=d.get("kustomizeVersion"); print(d["clientVersion"]["gitVersion"] + (", kustomize " + k if k else ""))' 2>/dev/null)"
elif command -v kustomize >/dev/null 2>&1; then
  KUSTOMIZE=(kustomize build)
  kminor=99
  kdesc="kustomize $(kustomize version 2>/dev/null | head -n 1)"
fi
if [ ${#KUSTOMIZE[@]} -eq 0 ]; then
  skip "kubectl not installed: kustomize base and overlay not rendered (Debian's kubernetes-client ships kubectl;" \
    "the overlay needs kubectl >= 1.21)"
else
  if out=$("${KUSTOMIZE[@]}" deploy/k8s/base 2>"$WORK/err" >"$WORK/base.yaml"); then
    pass "kustomize deploy/k8s/base renders ($kdesc)$(grep -q . "$WORK/err" && echo "; warnings: $(tr '\n' ' ' <"$WORK/err")")"
    check "base manifests: probes, grace period > shutdown timeout, security context, secrets, settings mount, PDB" \
      "${M[@]}" kustomize "$WORK/base.yaml" base
  else
    fail "kustomize deploy/k8s/base does not render"
    sed 's/^/    /' "$WORK/err"
  fi
  if "${KUSTOMIZE[@]}" deploy/k8s/overlays/example 2>"$WORK/err" >"$WORK/overlay.yaml"; then
    pass "kustomize deploy/k8s/overlays/example renders$(grep -q . "$WORK/err" && echo " (warnings: $(tr '\n' ' ' <"$WORK/err"))")"
    check "overlay manifests: namespace, pinned image, hashed ConfigMap names" \
      "${M[@]}" kustomize "$WORK/overlay.yaml" overlay
    # A change of the overlay's settings file must change the settings ConfigMap's name, which
    # changes the pod template: the pods roll.
    cp -r deploy/k8s "$WORK/k8s"
    echo "# changed" >>"$WORK/k8s/overlays/example/settings.yaml"
    if "${KUSTOMIZE[@]}" "$WORK/k8s/overlays/example" >"$WORK/overlay2.yaml" 2>"$WORK/err"; then
      a=$("${M[@]}" settings-name "$WORK/overlay.yaml") b=$("${M[@]}" settings-name "$WORK/overlay2.yaml")
      if [ -n "$a" ] && [ -n "$b" ] && [ "$a" != "$b" ]; then
        pass "a settings change renames the settings ConfigMap ($a -> $b): the pods roll"
      else
        fail "a settings change does not rename the settings ConfigMap ($a, $b)"
      fi
    else
      fail "the overlay with changed settings does not render"
      sed 's/^/    /' "$WORK/err"
    fi
  elif [ "${kminor:-99}" -lt 21 ] 2>/dev/null; then
    skip "kustomize overlay: $kdesc embeds kustomize v2, the overlay needs kubectl >= 1.21 (kustomize v4+)"
  else
    fail "kustomize deploy/k8s/overlays/example does not render"
    sed 's/^/    /' "$WORK/err"
  fi
fi

# ---- the chart without helm: schema and template references
check "values.schema.json (draft-07) accepts values.yaml" \
  "${M[@]}" schema helm/provisioner/values.schema.json helm/provisioner/values.yaml
check "chart templates: blocks closed, every .Values path in values.yaml" \
  "${M[@]}" templates helm/provisioner

# ---- the alerting rules
check "deploy/prometheus/alerts.yaml: rule shape, every metric named exported (README table)" \
  "${M[@]}" alerts deploy/prometheus/alerts.yaml README.md
check "helm/provisioner/files/alerts.yaml is deploy/prometheus/alerts.yaml (the PrometheusRule's)" \
  cmp deploy/prometheus/alerts.yaml helm/provisioner/files/alerts.yaml

# ---- helm
HELM=${HELM:-helm}
CHART=helm/provisioner
SET=(--set settings.company.primary_domain=example.com)
if command -v "$HELM" >/dev/null 2>&1; then
  hver=$("$HELM" version --short 2>/dev/null)
  check "helm lint --strict ($hver)" "$HELM" lint --strict "$CHART" "${SET[@]}"
  if "$HELM" template t "$CHART" "${SET[@]}" >"$WORK/helm-default.yaml" 2>"$WORK/err"; then
    check "helm template, defaults" "${M[@]}" helm "$WORK/helm-default.yaml" default "$CHART/values.yaml"
    "${M[@]}" extract-settings "$WORK/helm-default.yaml" "$WORK/helm-settings.yaml"
  else
    fail "helm template with the default values fails"
    sed 's/^/    /' "$WORK/err"
  fi
  cat >"$WORK/full.yaml" <<'EOF'
settings:
  company: {primary_domain: example.com}
kafka:
  partitions: 6
  properties:
    security.protocol: SASL_SSL
    sasl.mechanism: SCRAM-SHA-512
    sasl.username: provisioner
    enable.idempotence: true
    fetch.max.bytes: 1048576
  secretProperties:
    sasl.password: {name: kafka-credentials, key: password}
salesforce: {enabled: true, url: "https://example.my.salesforce.com", clientId: example}
reimport:
  tokenSecret: {name: provisioner-reimport, key: token}
metrics:
  serviceMonitor: {enabled: true, labels: {release: prometheus}}
keda: {enabled: true, minReplicaCount: 1, maxReplicaCount: 6, lagThreshold: 500}
replay: {enabled: true, from: timestamp, timestamp: "2026-11-01T00:00:00Z", dryRun: true}
EOF
  if "$HELM" template t "$CHART" -f "$WORK/full.yaml" >"$WORK/helm-full.yaml" 2>"$WORK/err"; then
    check "helm template, KEDA + ServiceMonitor + replay Job + Salesforce + reimport token + SASL" \
      "${M[@]}" helm "$WORK/helm-full.yaml" full "$WORK/full.yaml"
  else
    fail "helm template with every option on fails"
    sed 's/^/    /' "$WORK/err"
  fi
  c1=$("$HELM" template t "$CHART" "${SET[@]}" 2>/dev/null | "${M[@]}" checksum /dev/stdin)
  c2=$("$HELM" template t "$CHART" "${SET[@]}" 2>/dev/null | "${M[@]}" checksum /dev/stdin)
  c3=$("$HELM" template t "$CHART" "${SET[@]}" --set settings.options.keep_active=true 2>/dev/null |
    "${M[@]}" checksum /dev/stdin)
  if [ -n "$c1" ] && [ "$c1" = "$c2" ] && [ "$c1" != "$c3" ]; then
    pass "checksum/settings is stable and changes with the settings: a change rolls the pods"
  else
    fail "checksum/settings does not follow the settings ($c1 / $c2 / $c3)"
  fi
  if "$HELM" template t "$CHART" --set-file settingsYaml=examples/settings.yaml >"$WORK/helm-file.yaml" 2>"$WORK/err" &&
    "${M[@]}" extract-settings "$WORK/helm-file.yaml" "$WORK/helm-file-settings.yaml" &&
    diff <(sed 's/[[:space:]]*$//' examples/settings.yaml) <(sed 's/[[:space:]]*$//' "$WORK/helm-file-settings.yaml") >"$WORK/err"; then
    pass "--set-file settingsYaml=examples/settings.yaml lands verbatim in the ConfigMap"
  else
    fail "--set-file settingsYaml: the ConfigMap differs from the file"
    sed 's/^/    /' "$WORK/err"
  fi
  refuse "chart without settings.company.primary_domain" "$HELM" template t "$CHART"
  refuse "keda.maxReplicaCount > kafka.partitions" "$HELM" template t "$CHART" -f "$WORK/full.yaml" --set keda.maxReplicaCount=7
  refuse "replay.group = kafka.group" "$HELM" template t "$CHART" -f "$WORK/full.yaml" --set replay.group=provisioner
  refuse "grace period <= shutdown timeout" "$HELM" template t "$CHART" "${SET[@]}" --set shutdownTimeoutSeconds=40
  refuse "unknown top-level value" "$HELM" template t "$CHART" "${SET[@]}" --set replicaCont=3
  refuse "secret in kafka.properties" "$HELM" template t "$CHART" "${SET[@]}" --set 'kafka.properties.sasl\.password=x'
else
  skip "helm not installed: chart templates not rendered (helm lint, helm template; checked: schema, values references)"
fi

# ---- the settings files that ship in the manifests and the chart
BIN=${PV_BINARY:-$ROOT/build/provisioner}
"${M[@]}" values-settings "$CHART/values.yaml" "$WORK/values-settings.yaml"
settings_files=(deploy/k8s/base/settings.yaml deploy/k8s/overlays/example/settings.yaml "$WORK/values-settings.yaml")
[ -f "$WORK/helm-settings.yaml" ] && settings_files+=("$WORK/helm-settings.yaml")
if [ -x "$BIN" ]; then
  for f in "${settings_files[@]}"; do
    label=${f#"$WORK/"}
    case $label in
      values-settings.yaml) label="helm values.yaml settings block" ;;
      helm-settings.yaml) label="helm-rendered settings ConfigMap" ;;
    esac
    check "provisioner check-config: $label" "$BIN" check-config "$f"
  done
else
  skip "provisioner not built ($BIN): settings in the manifests and chart not validated with check-config"
fi
if ! cmp -s examples/settings.yaml deploy/k8s/base/settings.yaml; then
  echo "NOTE deploy/k8s/base/settings.yaml differs from examples/settings.yaml (the base carries a copy)"
fi

# ---- Dockerfile
if runtime=$("${M[@]}" dockerfile deploy/docker/Dockerfile .dockerignore 2>&1); then
  pass "Dockerfile: bookworm multi-stage, slim runtime, uid 10001, entrypoint, no HEALTHCHECK, context keeps the sources"
  # One apt-cache call of each kind: each reads the whole package list.
  devs=$(grep -oE 'pv_require\([A-Z]+ [^ ]+ [^)]+\)' CMakeLists.txt | awk '{print $3}' | tr -d ')' | grep -v criterion)
  if command -v apt-cache >/dev/null 2>&1 &&
    known=$(apt-cache show --no-all-versions libc6 $runtime 2>/dev/null | awk '/^Package: /{print $2}') &&
    grep -qx libc6 <<<"$known"; then
    bad=()
    for p in $runtime; do grep -qx -- "$p" <<<"$known" || bad+=("$p"); done
    # Each -dev package the build links (CMakeLists.txt) must depend on a runtime package of the image.
    deps=$(apt-cache depends $devs 2>/dev/null | awk '/^[^ ]/{pkg=$1} / Depends:/{print pkg, $2}')
    for dev in $devs; do
      hit=""
      for p in $runtime; do grep -qx -- "$dev $p" <<<"$deps" && hit=1; done
      [ -z "$hit" ] && bad+=("$dev (no runtime library of the image among its dependencies)")
    done
    if [ ${#bad[@]} -eq 0 ]; then
      pass "Dockerfile runtime packages exist in bookworm and cover every -dev package the build links: $(echo $runtime)"
    else
      fail "Dockerfile runtime packages: ${bad[*]}"
    fi
  else
    skip "apt-cache has no package lists (apt-get update): runtime package names not checked"
  fi
else
  fail "Dockerfile"
  sed 's/^/    /' <<<"$runtime"
fi
# Never checkable here, whatever is installed:
echo "NOTE not checked here: building the image needs a Docker engine (docker build -f deploy/docker/Dockerfile .);"
echo "NOTE   validation against a cluster's API (kubectl apply --dry-run=server), the KEDA and Prometheus Operator CRDs"

echo "deploy: $passed passed, $failed failed, $skipped skipped"
if [ "$failed" -gt 0 ]; then exit 1; fi
if [ "${DEPLOY_CHECK_STRICT:-0}" = 1 ] && [ "$skipped" -gt 0 ]; then
  echo "DEPLOY_CHECK_STRICT=1: skipped checks count as failures"
  exit 1
fi
exit 0
