#!/usr/bin/env python3
"""Checks on one rendering of the Cascade chart that schemas cannot make.

  check_rendered.py RENDERED.yaml --k8s-out K8S.yaml --split-dir DIR

* Writes the resources of built-in Kubernetes kinds to K8S.yaml, for
  kubernetes-validate (run by validate-chart.sh).
* Custom resources are not in the Kubernetes schemas. The kinds this chart
  renders (ServiceMonitor, ScaledObject) are checked here against a
  structural schema of the fields the chart uses; any other kind without a
  built-in schema fails, so nothing goes unchecked silently.
* Writes each resource to DIR/<kind>-<name>.yaml, and the shell scripts of
  ConfigMaps (keys ending in .sh) to DIR/scripts/ for shellcheck.
* Asserts what the binaries and Kubernetes rely on: every origin/edge
  container carries the CASCADE_* variables, each once, resolvable (ConfigMap
  keys exist, $(VAR) references point at earlier variables); probes on
  /healthz and /readyz; the preStop drain call on the HTTP port; a grace
  period longer than preStop delay + drain timeout; autoscaler scale-down
  window longer than the drain timeout; Services and PDBs select pods that
  exist and name ports those pods declare; origins and edges share the
  cluster-wide settings (Redis URL and key prefix, lease, relay-tree limits)
  and numbers are in the binaries' ranges; CASCADE_CLUSTER_SECRET comes from a
  Secret (never a literal in the pod spec), the same Secret and key on every
  node, and a Secret the chart renders holds at least 32 bytes under that key;
  with --known-env, every CASCADE_*
  variable set is one the binaries read (they refuse unknown ones at start).
* TURN (CASCADE_ICE_SERVERS and its credentials), when set: every URI is one
  the binaries accept (stun:, stuns:, turn: or turns:, nothing a Link header
  cannot carry); CASCADE_TURN_SECRET and CASCADE_TURN_PASSWORD come from a
  Secret (never a literal or a ConfigMap), not both kinds of credentials,
  CASCADE_TURN_USERNAME with CASCADE_TURN_PASSWORD, a turn: or turns: URI
  only with credentials, CASCADE_TURN_TTL a whole number of seconds; a Secret
  the chart renders holds a non-empty value under the key read.
* The UDP mux: CASCADE_UDP_MUX is true or false; when true,
  CASCADE_UDP_MUX_PORT is the pod's declared UDP port "udp-mux", the one port
  all its shards share (CASCADE_UDP_MUX_SHARDS, 0..256; 0 or unset: one per
  core), and no other port is named udp-mux-<i>; it is outside
  CASCADE_UDP_PORTS, published on the same node port when the pod's media is
  on the node, and admitted by the NetworkPolicies that select the pod; when
  false, neither the variables nor the port are there.
* ICE over TCP: CASCADE_ICE_TCP_PORT is "off" and no port is named "ice-tcp",
  or it is a fixed port (not 0, which the OS would pick and nothing could
  publish) declared as the TCP port "ice-tcp", other than the HTTP and gRPC
  ports, published on the same node port when the pod's media is on the node,
  and admitted (TCP) by the NetworkPolicies that select the pod.
* No two workloads publish the same node port (protocol and number), and no
  workload publishes one twice.

Prints one line per failed assertion and exits 1 if there is any.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import re
import sys
from pathlib import Path

import jsonschema
import yaml

# Kinds with no schema in kubernetes-validate (custom resources) and the
# structural schema this chart's renderings must satisfy.
STR_MAP = {"type": "object", "additionalProperties": {"type": "string"}}
LABELS = {"type": "object", "additionalProperties": {"type": "string"}}
METADATA = {
    "type": "object",
    "required": ["name", "namespace"],
    "properties": {"name": {"type": "string", "maxLength": 63}, "namespace": {"type": "string"}, "labels": LABELS},
}
DURATION = {"type": "string", "pattern": r"^[0-9]+(ms|s|m|h)$"}
BEHAVIOR = {"type": "object", "properties": {"scaleUp": {"type": "object"}, "scaleDown": {"type": "object"}},
            "additionalProperties": False}
CRD_SCHEMAS = {
    ("monitoring.coreos.com/v1", "ServiceMonitor"): {
        "type": "object",
        "required": ["apiVersion", "kind", "metadata", "spec"],
        "properties": {
            "metadata": METADATA,
            "spec": {
                "type": "object",
                "required": ["selector", "endpoints"],
                "additionalProperties": False,
                "properties": {
                    "jobLabel": {"type": "string"},
                    "namespaceSelector": {
                        "type": "object",
                        "additionalProperties": False,
                        "properties": {"any": {"type": "boolean"},
                                       "matchNames": {"type": "array", "items": {"type": "string"}}},
                    },
                    "selector": {
                        "type": "object",
                        "additionalProperties": False,
                        "properties": {"matchLabels": LABELS, "matchExpressions": {"type": "array"}},
                    },
                    "endpoints": {
                        "type": "array",
                        "minItems": 1,
                        "items": {
                            "type": "object",
                            "required": ["port"],
                            "additionalProperties": False,
                            "properties": {
                                "port": {"type": "string"},
                                "path": {"type": "string", "pattern": "^/"},
                                "scheme": {"enum": ["http", "https"]},
                                "interval": DURATION,
                                "scrapeTimeout": DURATION,
                                "relabelings": {"type": "array"},
                                "metricRelabelings": {"type": "array"},
                            },
                        },
                    },
                },
            },
        },
    },
    ("keda.sh/v1alpha1", "ScaledObject"): {
        "type": "object",
        "required": ["apiVersion", "kind", "metadata", "spec"],
        "properties": {
            "metadata": METADATA,
            "spec": {
                "type": "object",
                "required": ["scaleTargetRef", "triggers"],
                "additionalProperties": False,
                "properties": {
                    "scaleTargetRef": {
                        "type": "object",
                        "required": ["name"],
                        "additionalProperties": False,
                        "properties": {"apiVersion": {"type": "string"}, "kind": {"type": "string"},
                                       "name": {"type": "string"}, "envSourceContainerName": {"type": "string"}},
                    },
                    "pollingInterval": {"type": "integer", "minimum": 1},
                    "cooldownPeriod": {"type": "integer", "minimum": 0},
                    "idleReplicaCount": {"type": "integer", "minimum": 0},
                    "minReplicaCount": {"type": "integer", "minimum": 0},
                    "maxReplicaCount": {"type": "integer", "minimum": 1},
                    "advanced": {
                        "type": "object",
                        "additionalProperties": False,
                        "properties": {
                            "restoreToOriginalReplicaCount": {"type": "boolean"},
                            "horizontalPodAutoscalerConfig": {
                                "type": "object",
                                "additionalProperties": False,
                                "properties": {"name": {"type": "string"}, "behavior": BEHAVIOR},
                            },
                        },
                    },
                    "triggers": {
                        "type": "array",
                        "minItems": 1,
                        "items": {
                            "type": "object",
                            "required": ["type", "metadata"],
                            "additionalProperties": False,
                            "properties": {
                                "type": {"type": "string"},
                                "name": {"type": "string"},
                                "metricType": {"enum": ["AverageValue", "Value", "Utilization"]},
                                # KEDA rejects trigger metadata values that are not strings.
                                "metadata": STR_MAP,
                                "authenticationRef": {"type": "object", "required": ["name"]},
                                "useCachedMetrics": {"type": "boolean"},
                            },
                        },
                    },
                },
            },
        },
    },
}

# Everything the binaries are configured with, per role (see helm/cascade/README.md).
REQUIRED_ENV = [
    "CASCADE_HTTP_LISTEN", "CASCADE_GRPC_LISTEN", "CASCADE_NODE_ID", "CASCADE_ADVERTISE_IP",
    "CASCADE_MEDIA_BIND", "CASCADE_UDP_PORTS", "CASCADE_REDIS", "CASCADE_GRPC_ADVERTISE", "CASCADE_HTTP_ADVERTISE",
    "CASCADE_CAPACITY", "CASCADE_DRAIN_TIMEOUT", "CASCADE_LOG_FORMAT", "RUST_LOG", "CASCADE_REDIS_PREFIX",
    "CASCADE_LEASE_SECS", "CASCADE_MAX_EDGE_FANOUT", "CASCADE_MAX_RELAY_DEPTH", "CASCADE_FAILOVER_TIMEOUT",
    "CASCADE_UDP_MUX", "CASCADE_ICE_TCP_PORT", "CASCADE_CLUSTER_SECRET",
]
# The shortest cluster secret the binaries accept (HS256 key, MIN_CLUSTER_SECRET_BYTES).
MIN_CLUSTER_SECRET_BYTES = 32
# Name of the container port of the UDP mux (CASCADE_UDP_MUX_PORT), the one port of all its
# shards; and the names a port of the mux could be given, so that a second one is caught.
MUX_PORT = "udp-mux"
MUX_PORT_RE = re.compile(r"^udp-mux(-[0-9]+)?$")
MAX_MUX_SHARDS = 256
# Name of the container port of ICE over TCP (CASCADE_ICE_TCP_PORT, TCP).
ICE_TCP_PORT = "ice-tcp"
# Region and zone (CASCADE_REGION, CASCADE_ZONE): a Kubernetes label value, as the nodes check it
# (core/src/cluster/locality.rs), or the pod's topology label through the downward API.
TOPOLOGY_ENV = {"CASCADE_REGION": "region", "CASCADE_ZONE": "zone"}
LABEL_VALUE_RE = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9._-]{0,61}[A-Za-z0-9])?$")


def topology_source(env: list[dict], var: str) -> str | None:
    """Where a container's CASCADE_REGION or CASCADE_ZONE comes from: "label" (the pod's
    topology.kubernetes.io label), the literal value, or None when it is not set."""
    found = [e for e in env if e["name"] == var]
    if not found:
        return None
    e = found[0]
    if "value" in e:
        return str(e["value"])
    path = ((e.get("valueFrom") or {}).get("fieldRef") or {}).get("fieldPath")
    return "label" if path == f"metadata.labels['topology.kubernetes.io/{TOPOLOGY_ENV[var]}']" else f"<{path}>"


def node_containers(docs):
    """The origin and edge containers of a rendering: (`Kind/name`, role, container) each."""
    for d in docs:
        if d["kind"] not in ("Deployment", "StatefulSet"):
            continue
        role = d["spec"]["template"]["metadata"]["labels"].get("app.kubernetes.io/component")
        if role not in ("origin", "edge"):
            continue
        for c in d["spec"]["template"]["spec"]["containers"]:
            if c["name"] == role:
                yield f"{d['kind']}/{d['metadata']['name']}", role, c


def of_role(docs, kind, role):
    """The resources of `kind` labelled with component `role`."""
    return [d for d in docs if d["kind"] == kind
            and d["metadata"].get("labels", {}).get("app.kubernetes.io/component") == role]


def workloads(docs):
    """The Deployments and StatefulSets of a rendering, by `Kind/name`."""
    return {f"{d['kind']}/{d['metadata']['name']}": d for d in docs if d["kind"] in ("Deployment", "StatefulSet")}


ROLE_ENV: dict[str, list[str]] = {"origin": [], "edge": []}
# Settings every node of one cluster must share: the Redis it meets the others in and the key
# prefix there, the lease, and the relay-tree limits edges apply when they pick an upstream.
CLUSTER_ENV = ["CASCADE_REDIS", "CASCADE_REDIS_PREFIX", "CASCADE_LEASE_SECS", "CASCADE_MAX_EDGE_FANOUT",
               "CASCADE_MAX_RELAY_DEPTH"]
# Numeric settings and the range the binaries accept.
NUMERIC_ENV = {"CASCADE_LEASE_SECS": (1, 3600), "CASCADE_MAX_EDGE_FANOUT": (0, 1 << 32),
               "CASCADE_MAX_RELAY_DEPTH": (0, 1 << 32), "CASCADE_CAPACITY": (1, 1 << 32),
               "CASCADE_FAILOVER_TIMEOUT": (0, 3600)}
# What the binaries accept in CASCADE_ICE_SERVERS (core/src/api/ice_servers.rs), one URI of the
# comma-separated list.
ICE_SERVER_RE = re.compile(r'^(stun|stuns|turn|turns):[^\s<>",;]+$')
# TURN variables that hold a credential: only ever from a Secret.
TURN_SECRET_ENV = ["CASCADE_TURN_SECRET", "CASCADE_TURN_PASSWORD"]
# The command each role runs (last, after entrypoint.sh when that wraps it).
BINARY = {"origin": ["cascade", "origin"], "edge": ["cascade", "edge"]}
CLUSTER_SCOPED = {"ClusterRole", "ClusterRoleBinding"}
REF_RE = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)")


class Checker:
    def __init__(self, docs: list[dict], known_env: set[str] | None):
        self.docs = docs
        self.known_env = known_env
        self.errors: list[str] = []
        self.drain_timeout = 0
        # workload -> the CLUSTER_ENV values its pods get (None: from a Secret)
        self.cluster_env: dict[str, dict[str, str | None]] = {}
        # (protocol, node port) -> the workloads publishing it
        self.node_ports: dict[tuple[str, int], list[str]] = {}
        # role -> the mux port its pods declare (only when the mux is on)
        self.mux_ports: dict[str, int] = {}
        # role -> the ICE-TCP port its pods declare (only when ICE-TCP is on)
        self.ice_tcp_ports: dict[str, int] = {}

    def fail(self, where: str, msg: str) -> None:
        self.errors.append(f"{where}: {msg}")

    def find(self, kind: str, name: str | None = None) -> list[dict]:
        return [d for d in self.docs if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)]

    def configmap_value(self, name: str, key: str) -> str | None:
        for cm in self.find("ConfigMap", name):
            return (cm.get("data") or {}).get(key)
        return None

    def rendered_secret_value(self, name: str, key: str) -> bytes | None:
        """The value of key in the Secret the chart renders (None: not rendered or no such key)."""
        for s in self.find("Secret", name):
            if key in (s.get("stringData") or {}):
                return str(s["stringData"][key]).encode()
            if key in (s.get("data") or {}):
                try:
                    return base64.b64decode(str(s["data"][key]), validate=True)
                except binascii.Error:
                    self.fail(f"Secret/{name}", f"data.{key} is not base64")
                    return b""
        return None

    def rendered_secret_keys(self, name: str) -> set[str] | None:
        for s in self.find("Secret", name):
            return set((s.get("data") or {}).keys()) | set((s.get("stringData") or {}).keys())
        return None  # not rendered by the chart: an existing Secret

    # --- per resource ---------------------------------------------------

    def check_metadata(self, d: dict) -> None:
        where = f"{d['kind']}/{d['metadata'].get('name')}"
        name = d["metadata"].get("name", "")
        if len(name) > 63:
            self.fail(where, "name longer than 63 characters")
        if d["kind"] not in CLUSTER_SCOPED and not d["metadata"].get("namespace"):
            self.fail(where, "no metadata.namespace")

    def check_workload(self, d: dict) -> None:
        where = f"{d['kind']}/{d['metadata']['name']}"
        tmpl = d["spec"]["template"]
        pod = tmpl["spec"]
        role = tmpl["metadata"]["labels"].get("app.kubernetes.io/component")
        sel = d["spec"]["selector"]["matchLabels"]
        if any(tmpl["metadata"]["labels"].get(k) != v for k, v in sel.items()):
            self.fail(where, "selector does not match the pod template labels")
        if role not in BINARY:
            return  # the bundled Redis
        if not pod.get("securityContext", {}).get("runAsNonRoot"):
            self.fail(where, "pod does not set runAsNonRoot")
        containers = {c["name"]: c for c in pod["containers"]}
        c = containers.get(role)
        if c is None:
            self.fail(where, f"no container named {role}")
            return
        cmd = c.get("command") or []
        if cmd[-2:] != BINARY[role]:
            self.fail(where, f"command {cmd} does not run {' '.join(BINARY[role])}")
        wrapped = len(cmd) > 2  # entrypoint.sh sets CASCADE_ADVERTISE_IP (nodeExternalIP)
        if wrapped and not any(i["name"] == "advertise-ip" for i in pod.get("initContainers", [])):
            self.fail(where, "wrapped command without the advertise-ip init container")

        env = c.get("env", [])
        names = [e["name"] for e in env]
        dups = {n for n in names if names.count(n) > 1}
        if dups:
            self.fail(where, f"environment variables set twice: {sorted(dups)}")
        want = REQUIRED_ENV + ROLE_ENV[role]
        if wrapped:
            want = [n for n in want if n != "CASCADE_ADVERTISE_IP"]
        missing = [n for n in want if n not in names]
        if missing:
            self.fail(where, f"missing environment variables {missing}")
        if role == "origin" and "CASCADE_UPSTREAM" in names:
            self.fail(where, "CASCADE_UPSTREAM is edge configuration")
        if self.known_env is not None:
            # The binaries refuse to start on a CASCADE_* variable they do not read.
            from_secrets = []
            for ref in c.get("envFrom", []):
                keys = self.rendered_secret_keys((ref.get("secretRef") or {}).get("name", ""))
                from_secrets += sorted(keys or [])
            unknown = sorted({n for n in names + from_secrets
                              if n.startswith("CASCADE_") and n not in self.known_env})
            if unknown:
                self.fail(where, f"sets {unknown}, which no flag of the binaries reads")

        resolved: dict[str, str | None] = {}
        defined: set[str] = set()
        for e in env:
            n = e["name"]
            if "value" in e:
                val = str(e["value"])
                for ref in REF_RE.findall(val):
                    if ref not in defined and not (wrapped and ref == "CASCADE_ADVERTISE_IP"):
                        self.fail(where, f"{n} refers to $({ref}), which is not defined before it")
                resolved[n] = val
            else:
                src = e.get("valueFrom", {})
                if "configMapKeyRef" in src:
                    ref = src["configMapKeyRef"]
                    v = self.configmap_value(ref["name"], ref["key"])
                    if v is None:
                        self.fail(where, f"{n}: ConfigMap {ref['name']} has no key {ref['key']}")
                    resolved[n] = v
                elif "secretKeyRef" in src:
                    ref = src["secretKeyRef"]
                    keys = self.rendered_secret_keys(ref["name"])
                    if keys is not None and ref["key"] not in keys:
                        self.fail(where, f"{n}: Secret {ref['name']} has no key {ref['key']}")
                    resolved[n] = None
                elif "fieldRef" in src:
                    resolved[n] = f"<{src['fieldRef']['fieldPath']}>"
                else:
                    self.fail(where, f"{n}: unexpected source {src}")
            defined.add(n)

        ports = {p.get("name"): p for p in c.get("ports", []) if p.get("name")}
        http = ports.get("http", {}).get("containerPort")
        grpc = ports.get("grpc", {}).get("containerPort")
        if http is None or grpc is None:
            self.fail(where, "container lacks ports named http and grpc")
        for var, port in (("CASCADE_HTTP_LISTEN", http), ("CASCADE_GRPC_LISTEN", grpc)):
            if resolved.get(var) != f"0.0.0.0:{port}":
                self.fail(where, f"{var}={resolved.get(var)!r} does not listen on the declared port {port}")
        udp = resolved.get("CASCADE_UDP_PORTS") or ""
        m = re.fullmatch(r"(\d+)-(\d+)", udp)
        udp_range = range(int(m.group(1)), int(m.group(2)) + 1) if m else range(0)
        # The range is declared port by port only when it is on the node (host modes).
        ranged = sorted(p["containerPort"] for p in c.get("ports", [])
                        if p.get("protocol") == "UDP" and not MUX_PORT_RE.match(p.get("name") or ""))
        on_node = bool(pod.get("hostNetwork")) or bool(ranged)
        if not m:
            self.fail(where, f"CASCADE_UDP_PORTS={udp!r} is not start-end")
        elif ranged and ranged != list(udp_range):
            self.fail(where, f"declared UDP ports differ from CASCADE_UDP_PORTS={udp}")
        for p in c.get("ports", []):
            if p.get("protocol") == "UDP" and on_node and p.get("hostPort") != p["containerPort"]:
                self.fail(where, f"UDP port {p['containerPort']} is not published on the same node port")
            if "hostPort" in p:
                key = (p.get("protocol", "TCP"), p["hostPort"])
                self.node_ports.setdefault(key, []).append(where)
        mux_decl = {n: p for n, p in ports.items() if MUX_PORT_RE.match(n)}
        self.check_mux(where, role, resolved, mux_decl, udp_range)
        self.check_ice_tcp(where, role, resolved, ports, on_node)
        drain = resolved.get("CASCADE_DRAIN_TIMEOUT")
        if not (drain or "").isdigit():
            self.fail(where, f"CASCADE_DRAIN_TIMEOUT={drain!r} is not a number of seconds")
            drain = "0"
        self.drain_timeout = int(drain)
        for var, (low, high) in NUMERIC_ENV.items():
            val = resolved.get(var) or ""
            if not val.isdigit() or not low <= int(val) <= high:
                self.fail(where, f"{var}={val!r} is not a whole number in {low}..{high}")
        if not resolved.get("CASCADE_REDIS_PREFIX"):
            self.fail(where, "CASCADE_REDIS_PREFIX is empty")
        self.cluster_env[where] = {var: resolved.get(var) for var in CLUSTER_ENV}
        self.cluster_env[where]["CASCADE_CLUSTER_SECRET"] = self.check_cluster_secret(where, env)
        self.check_turn(where, env, resolved)
        for var in TOPOLOGY_ENV:
            source = topology_source(env, var)
            if source is not None and source != "label" and not LABEL_VALUE_RE.match(source):
                self.fail(where, f"{var} is {source!r}: neither a label value nor the pod's "
                                 f"topology.kubernetes.io/{TOPOLOGY_ENV[var]} label")
        if resolved.get("CASCADE_LOG_FORMAT") not in ("json", "text"):
            self.fail(where, f"CASCADE_LOG_FORMAT={resolved.get('CASCADE_LOG_FORMAT')!r}")
        for var in ("CASCADE_GRPC_ADVERTISE", "CASCADE_HTTP_ADVERTISE") + (("CASCADE_UPSTREAM",) if "CASCADE_UPSTREAM" in names else ()):
            if not re.match(r"^https?://", resolved.get(var) or ""):
                self.fail(where, f"{var}={resolved.get(var)!r} is not an http(s) URL")
        redis = resolved.get("CASCADE_REDIS")
        if redis is not None and not re.match(r"^rediss?://", redis):
            self.fail(where, f"CASCADE_REDIS={redis!r} is not a redis URL")

        for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz"), ("startupProbe", "/healthz")):
            get = (c.get(probe) or {}).get("httpGet") or {}
            if get.get("path") != path or get.get("port") not in ("http", http):
                self.fail(where, f"{probe} is not GET {path} on the HTTP port")

        pre = " ".join(((c.get("lifecycle") or {}).get("preStop") or {}).get("exec", {}).get("command", []))
        if f"-X POST http://127.0.0.1:{http}/v1/nodes/self/drain" not in pre:
            self.fail(where, f"preStop does not POST /v1/nodes/self/drain on port {http}: {pre!r}")
        sleep = re.search(r"sleep (\d+)", pre)
        delay = int(sleep.group(1)) if sleep else 0
        grace = pod.get("terminationGracePeriodSeconds")
        if not isinstance(grace, int) or grace <= self.drain_timeout + delay:
            self.fail(where, f"terminationGracePeriodSeconds={grace} is not above drain timeout "
                             f"{self.drain_timeout} + preStop delay {delay}")

        if pod.get("hostNetwork") and pod.get("dnsPolicy") != "ClusterFirstWithHostNet":
            self.fail(where, "hostNetwork without dnsPolicy ClusterFirstWithHostNet cannot resolve Services")
        sc = c.get("securityContext", {})
        if sc.get("allowPrivilegeEscalation") is not False or not sc.get("readOnlyRootFilesystem"):
            self.fail(where, "container is not locked down (allowPrivilegeEscalation, readOnlyRootFilesystem)")

    def check_cluster_secret(self, where: str, env: list[dict]) -> str | None:
        """CASCADE_CLUSTER_SECRET from a Secret; returns "<secret>/<key>" to compare across nodes."""
        entry = next((e for e in env if e["name"] == "CASCADE_CLUSTER_SECRET"), None)
        if entry is None:
            return None  # reported as missing
        ref = (entry.get("valueFrom") or {}).get("secretKeyRef")
        if not ref:
            self.fail(where, "CASCADE_CLUSTER_SECRET does not come from a Secret (secretKeyRef)")
            return None
        if ref.get("optional"):
            self.fail(where, "CASCADE_CLUSTER_SECRET's secretKeyRef is optional: a node without it accepts any call")
        value = self.rendered_secret_value(ref["name"], ref["key"])
        if value is not None and len(value) < MIN_CLUSTER_SECRET_BYTES:
            self.fail(where, f"Secret {ref['name']} key {ref['key']} holds {len(value)} bytes; the binaries need "
                             f"at least {MIN_CLUSTER_SECRET_BYTES}")
        return f"{ref['name']}/{ref['key']}"

    def check_turn(self, where: str, env: list[dict], resolved: dict) -> None:
        """The ICE servers and TURN credentials, as the binaries check them at start."""
        by_name = {e["name"]: e for e in env}
        for var in TURN_SECRET_ENV:
            entry = by_name.get(var)
            if entry is None:
                continue
            ref = (entry.get("valueFrom") or {}).get("secretKeyRef")
            if not ref:
                self.fail(where, f"{var} does not come from a Secret (secretKeyRef): {entry}")
                continue
            value = self.rendered_secret_value(ref["name"], ref["key"])
            if value is not None and not value:
                self.fail(where, f"{var}: Secret {ref['name']} key {ref['key']} is empty")
        shared = "CASCADE_TURN_SECRET" in by_name
        user, password = "CASCADE_TURN_USERNAME" in by_name, "CASCADE_TURN_PASSWORD" in by_name
        if shared and (user or password):
            self.fail(where, "sets CASCADE_TURN_SECRET and CASCADE_TURN_USERNAME/CASCADE_TURN_PASSWORD: the "
                             "binaries take one kind of TURN credentials")
        if user != password:
            self.fail(where, "CASCADE_TURN_USERNAME and CASCADE_TURN_PASSWORD go together")
        if "CASCADE_ICE_SERVERS" in by_name:
            servers = resolved.get("CASCADE_ICE_SERVERS")
            if not servers:
                self.fail(where, f"CASCADE_ICE_SERVERS={servers!r} is empty")
            for url in (servers or "").split(","):
                if not ICE_SERVER_RE.match(url):
                    self.fail(where, f"CASCADE_ICE_SERVERS: {url!r} is not a stun:, stuns:, turn: or turns: URI "
                                     "the binaries accept")
                elif url.startswith("turn") and not (shared or (user and password)):
                    self.fail(where, f"CASCADE_ICE_SERVERS: {url!r} is a TURN server, but neither "
                                     "CASCADE_TURN_SECRET nor CASCADE_TURN_USERNAME/CASCADE_TURN_PASSWORD is set")
        if "CASCADE_TURN_TTL" in by_name and not (resolved.get("CASCADE_TURN_TTL") or "").isdigit():
            self.fail(where, f"CASCADE_TURN_TTL={resolved.get('CASCADE_TURN_TTL')!r} is not a whole number of seconds")

    def check_mux(self, where: str, role: str, resolved: dict, declared: dict[str, dict], udp_range: range) -> None:
        """declared: the container ports named udp-mux or udp-mux-<i>, by name."""
        mux = resolved.get("CASCADE_UDP_MUX")
        mux_port = resolved.get("CASCADE_UDP_MUX_PORT")
        shards_env = resolved.get("CASCADE_UDP_MUX_SHARDS")
        if mux == "false":
            if mux_port is not None or shards_env is not None or declared:
                self.fail(where, "CASCADE_UDP_MUX=false, yet CASCADE_UDP_MUX_PORT, CASCADE_UDP_MUX_SHARDS or a "
                                 f"udp-mux port is set: {sorted(declared)}")
            return
        if mux != "true":
            self.fail(where, f"CASCADE_UDP_MUX={mux!r} is neither true nor false")
            return
        if not (mux_port or "").isdigit() or not 1 <= int(mux_port) <= 65535:
            self.fail(where, f"CASCADE_UDP_MUX_PORT={mux_port!r} is not a port (the mux needs a fixed one "
                             "to declare and publish)")
            return
        number = int(mux_port)
        if shards_env is not None and (not shards_env.isdigit() or int(shards_env) > MAX_MUX_SHARDS):
            self.fail(where, f"CASCADE_UDP_MUX_SHARDS={shards_env!r} is not a whole number in 0..{MAX_MUX_SHARDS}")
        # Every shard binds CASCADE_UDP_MUX_PORT (SO_REUSEPORT): one declared port whatever their
        # number. Published on the node like the range when the range is: checked with the other UDP ports.
        port = declared.get(MUX_PORT)
        if port is None or port.get("protocol") != "UDP" or port.get("containerPort") != number:
            self.fail(where, f"CASCADE_UDP_MUX_PORT={number} is not the declared UDP port {MUX_PORT}: {port}")
        extra = sorted(set(declared) - {MUX_PORT})
        if extra:
            self.fail(where, f"declares {extra} beside {MUX_PORT}, but the mux shards share CASCADE_UDP_MUX_PORT")
        if number in udp_range:
            self.fail(where, f"CASCADE_UDP_MUX_PORT={number} is inside CASCADE_UDP_PORTS")
        self.mux_ports[role] = number

    def check_ice_tcp(self, where: str, role: str, resolved: dict, ports: dict[str, dict], on_node: bool) -> None:
        """ports: the container's named ports, by name."""
        value = resolved.get("CASCADE_ICE_TCP_PORT")
        declared = ports.get(ICE_TCP_PORT)
        if value == "off":
            if declared is not None:
                self.fail(where, f"CASCADE_ICE_TCP_PORT=off, yet the pod declares the port {ICE_TCP_PORT}: {declared}")
            return
        if not (value or "").isdigit() or not 1 <= int(value) <= 65535:
            self.fail(where, f"CASCADE_ICE_TCP_PORT={value!r} is neither off nor a fixed TCP port (0, a port the "
                             "OS picks, cannot be declared or published)")
            return
        number = int(value)
        if declared is None or declared.get("protocol", "TCP") != "TCP" or declared.get("containerPort") != number:
            self.fail(where, f"CASCADE_ICE_TCP_PORT={number} is not the declared TCP port {ICE_TCP_PORT}: {declared}")
            return
        # Every session's passive TCP candidate is <advertise IP>:<this port>: on the node, the same number.
        if on_node and declared.get("hostPort") != number:
            self.fail(where, f"ICE-TCP port {number} is not published on the same node port: {declared}")
        for other in ("http", "grpc"):
            if (ports.get(other) or {}).get("containerPort") == number:
                self.fail(where, f"CASCADE_ICE_TCP_PORT={number} is also the {other} port")
        self.ice_tcp_ports[role] = number

    def check_network_policy(self, d: dict) -> None:
        where = f"NetworkPolicy/{d['metadata']['name']}"
        for t in self.pods_matching((d["spec"].get("podSelector") or {}).get("matchLabels") or {}):
            role = t["spec"]["template"]["metadata"]["labels"].get("app.kubernetes.io/component")
            rules = d["spec"].get("ingress") or []
            if role in self.ice_tcp_ports:
                number = self.ice_tcp_ports[role]

                def admits_tcp(rule: dict) -> bool:
                    if not rule.get("ports"):
                        return True  # a rule without ports admits every port
                    for p in rule["ports"]:
                        port = p.get("port")
                        if p.get("protocol", "TCP") != "TCP":
                            continue
                        if port == ICE_TCP_PORT or (isinstance(port, int)
                                                    and port <= number <= p.get("endPort", port)):
                            return True
                    return False

                if not any(admits_tcp(rule) for rule in rules):
                    self.fail(where, f"admits no TCP to the {role}s' ICE-TCP port {number} ({ICE_TCP_PORT})")
            if role not in self.mux_ports:
                continue
            number = self.mux_ports[role]

            def admits(rule: dict) -> bool:
                if not rule.get("ports"):
                    return True  # a rule without ports admits every port
                for p in rule["ports"]:
                    port = p.get("port")
                    if p.get("protocol") != "UDP":
                        continue
                    if port == MUX_PORT or (isinstance(port, int) and port <= number <= p.get("endPort", port)):
                        return True
                return False

            if not any(admits(rule) for rule in rules):
                self.fail(where, f"admits no UDP to the {role}s' mux port {number} ({MUX_PORT})")

    def pods_matching(self, selector: dict) -> list[dict]:
        out = []
        for d in self.docs:
            if d["kind"] in ("Deployment", "StatefulSet"):
                labels = d["spec"]["template"]["metadata"]["labels"]
                if selector and all(labels.get(k) == v for k, v in selector.items()):
                    out.append(d)
        return out

    def check_service(self, d: dict) -> None:
        where = f"Service/{d['metadata']['name']}"
        targets = self.pods_matching(d["spec"].get("selector") or {})
        if not targets:
            self.fail(where, "selects no workload of the chart")
            return
        for t in targets:
            names = {p.get("name") for c in t["spec"]["template"]["spec"]["containers"] for p in c.get("ports", [])}
            for p in d["spec"]["ports"]:
                tp = p.get("targetPort")
                if isinstance(tp, str) and tp not in names:
                    self.fail(where, f"targetPort {tp} is not a port of {t['kind']}/{t['metadata']['name']}")

    def check_pdb(self, d: dict) -> None:
        if not self.pods_matching(d["spec"]["selector"].get("matchLabels") or {}):
            self.fail(f"PodDisruptionBudget/{d['metadata']['name']}", "selects no workload of the chart")

    def check_scaling(self, d: dict) -> None:
        where = f"{d['kind']}/{d['metadata']['name']}"
        if d["kind"] == "HorizontalPodAutoscaler":
            spec = d["spec"]
            target = spec["scaleTargetRef"]
            behavior = spec.get("behavior") or {}
        else:
            spec = d["spec"]
            target = {"kind": "Deployment", **spec["scaleTargetRef"]}
            behavior = spec.get("advanced", {}).get("horizontalPodAutoscalerConfig", {}).get("behavior") or {}
        if not self.find(target.get("kind", "Deployment"), target["name"]):
            self.fail(where, f"scales {target['name']}, which the chart does not render")
        for dep in self.find("Deployment", target["name"]):
            if "replicas" in dep["spec"]:
                self.fail(where, "the scaled Deployment also sets spec.replicas (every upgrade would reset it)")
        window = (behavior.get("scaleDown") or {}).get("stabilizationWindowSeconds")
        if not isinstance(window, int) or window <= self.drain_timeout:
            self.fail(where, f"scale-down stabilizationWindowSeconds={window} is not longer than the drain timeout")

    def run(self) -> list[str]:
        for d in self.docs:
            self.check_metadata(d)
        # workloads first: they set drain_timeout used by the scaling checks
        for d in self.docs:
            if d["kind"] in ("Deployment", "StatefulSet"):
                self.check_workload(d)
        for d in self.docs:
            if d["kind"] == "Service":
                self.check_service(d)
            elif d["kind"] == "PodDisruptionBudget":
                self.check_pdb(d)
            elif d["kind"] in ("HorizontalPodAutoscaler", "ScaledObject"):
                self.check_scaling(d)
            elif d["kind"] == "NetworkPolicy":
                self.check_network_policy(d)
        for (proto, number), owners in sorted(self.node_ports.items()):
            if len(owners) > 1:
                self.fail("chart", f"node port {number}/{proto} is published by {', '.join(owners)}")
        envs = list(self.cluster_env.items())
        for where, env in envs[1:]:
            for var in CLUSTER_ENV + ["CASCADE_CLUSTER_SECRET"]:
                if env[var] != envs[0][1][var]:
                    self.fail(where, f"{var}={env[var]!r} differs from {envs[0][0]}'s {envs[0][1][var]!r}: "
                                     "nodes of one cluster must share it")
        roles = {d["spec"]["template"]["metadata"]["labels"].get("app.kubernetes.io/component")
                 for d in self.docs if d["kind"] in ("Deployment", "StatefulSet")}
        for role in ("origin", "edge"):
            if role not in roles:
                self.fail("chart", f"renders no {role} workload")
        scalers = [d for d in self.docs if d["kind"] in ("HorizontalPodAutoscaler", "ScaledObject")]
        if len(scalers) > 1:
            self.fail("chart", "renders both an HPA and a ScaledObject for the edges")
        return self.errors


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("rendered", type=Path)
    ap.add_argument("--k8s-out", type=Path, required=True)
    ap.add_argument("--split-dir", type=Path, required=True)
    ap.add_argument("--known-env", type=Path, metavar="RUST_FILE", nargs="+",
                    help="Rust sources of the binaries' flags (clap `env = \"CASCADE_...\"`); every "
                         "CASCADE_* variable the chart sets must be one of them")
    args = ap.parse_args()

    known_env = None
    if args.known_env:
        known_env = set()
        for source in args.known_env:
            known_env |= set(re.findall(r'env\s*=\s*"(CASCADE_[A-Z0-9_]+)"', source.read_text()))
        if not known_env:
            print(f"FAIL no CASCADE_* flag variables in {args.known_env}")
            return 1
        print(f"CASCADE_* variables checked against the flags of {len(args.known_env)} sources "
              f"({len(known_env)} names)")

    docs = [d for d in yaml.safe_load_all(args.rendered.read_text()) if d]
    errors: list[str] = []
    builtin, crds = [], []
    args.split_dir.mkdir(parents=True, exist_ok=True)
    for d in docs:
        name = f"{d['kind'].lower()}-{d['metadata']['name']}.yaml"
        (args.split_dir / name).write_text(yaml.safe_dump(d, sort_keys=False))
        group = d["apiVersion"].split("/")[0] if "/" in d["apiVersion"] else ""
        if "." in group and not group.endswith(".k8s.io"):
            crds.append(d)  # custom resource: no schema in kubernetes-validate
        else:
            builtin.append(d)
    args.k8s_out.write_text(yaml.safe_dump_all(builtin, sort_keys=False))
    # Shell scripts shipped in ConfigMaps, for shellcheck.
    scripts = args.split_dir / "scripts"
    for d in docs:
        if d["kind"] == "ConfigMap":
            for key, text in (d.get("data") or {}).items():
                if key.endswith(".sh"):
                    scripts.mkdir(exist_ok=True)
                    (scripts / key).write_text(text)

    for d in crds:
        where = f"{d['kind']}/{d['metadata']['name']}"
        schema = CRD_SCHEMAS.get((d["apiVersion"], d["kind"]))
        if schema is None:
            errors.append(f"{where}: custom resource {d['apiVersion']} {d['kind']} has no schema in check_rendered.py")
            continue
        for err in jsonschema.Draft7Validator(schema).iter_errors(d):
            path = ".".join(str(p) for p in err.absolute_path)
            errors.append(f"{where}: {path}: {err.message}")
        print(f"custom resource {where} ({d['apiVersion']}): checked against check_rendered.py's structural schema")

    errors += Checker(docs, known_env).run()
    for e in errors:
        print(f"FAIL {e}")
    kinds = sorted({d["kind"] for d in docs})
    print(f"{len(docs)} resources ({', '.join(kinds)}); {len(builtin)} for kubernetes-validate, "
          f"{len(crds)} custom; {len(errors)} failed assertion(s)")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
