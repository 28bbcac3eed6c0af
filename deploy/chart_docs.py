#!/usr/bin/env python3
"""Keep the Cascade chart's values documentation in one place.

values.yaml is the source: a comment starting with "# --" documents the key
below it (continuation lines start with "#"). From it this script derives

  * helm/cascade/values.schema.json: types from the defaults, descriptions
    from the comments, the constraints in CONSTRAINTS below, and
    additionalProperties=false on every documented object, so a misspelt key
    fails `helm install`/`helm lint` instead of being ignored;
  * the values table in helm/cascade/README.md, between the markers
    <!-- values-table:start --> and <!-- values-table:end -->.

  chart_docs.py --write   regenerate both files
  chart_docs.py --check   exit 1 if either is out of date, or a key is undocumented

Needs PyYAML (a dependency of kubernetes-validate, so validate-chart.sh's
tool environment has it).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

import yaml

CHART = Path(__file__).resolve().parent.parent / "helm" / "cascade"
VALUES = CHART / "values.yaml"
SCHEMA = CHART / "values.schema.json"
README = CHART / "README.md"
TABLE_START = "<!-- values-table:start -->"
TABLE_END = "<!-- values-table:end -->"

PULL_POLICY = {"enum": ["Always", "IfNotPresent", "Never"]}
PORT = {"minimum": 1024, "maximum": 65535}
# "pattern" applies to strings only and "minimum" to numbers only.
INT_OR_PERCENT = {"type": ["integer", "string"], "pattern": r"^[0-9]+%$", "minimum": 0}
ENV_LIST = {"items": {"type": "object", "required": ["name"], "properties": {"name": {"type": "string"}}}}
PEERS = {"items": {"type": "object"}}
DURATION = {"pattern": r"^[0-9]+(ms|s|m|h)$"}
# A Secret name (DNS subdomain), or empty; and a key of a Secret's data.
SECRET_NAME = {"pattern": r"^$|^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$", "maxLength": 253}
SECRET_KEY = {"pattern": r"^[-._a-zA-Z0-9]+$"}

# Constraints beyond the type of the default, by dotted key ("*" matches one level).
CONSTRAINTS: dict[str, dict] = {
    "nameOverride": {"maxLength": 40},
    "fullnameOverride": {"maxLength": 40},
    "image.repository": {"minLength": 1},
    "image.pullPolicy": PULL_POLICY,
    "imagePullSecrets": {"items": {"type": "object", "required": ["name"]}},
    "log.format": {"enum": ["json", "text"]},
    "log.level": {"minLength": 1},
    "otlp.endpoint": {"pattern": r"^$|^https?://"},
    # A Kubernetes label value, as the nodes check it (core/src/cluster/locality.rs).
    "topology.region": {"pattern": r"^$|^[A-Za-z0-9]([A-Za-z0-9._-]{0,61}[A-Za-z0-9])?$"},
    "topology.zone": {"pattern": r"^$|^[A-Za-z0-9]([A-Za-z0-9._-]{0,61}[A-Za-z0-9])?$"},
    "drain.timeoutSeconds": {"minimum": 1},
    "drain.preStopDelaySeconds": {"minimum": 0},
    "drain.graceMarginSeconds": {"minimum": 0},
    "media.mode": {"enum": ["hostPort", "hostNetwork", "podIP"]},
    "media.advertiseIP.source": {"enum": ["auto", "hostIP", "podIP", "nodeExternalIP", "static"]},
    "media.advertiseIP.static": {"pattern": r"^$|^[0-9]{1,3}(\.[0-9]{1,3}){3}$|^[0-9a-fA-F:]+$"},
    "redis.external.url": {"pattern": r"^$|^rediss?://"},
    "redis.external.existingSecretKey": {"minLength": 1},
    "redis.database": {"minimum": 0, "maximum": 15},
    "redis.image.pullPolicy": PULL_POLICY,
    "redis.extraArgs": {"items": {"type": "string"}},
    # A Secret name, or empty for the chart's own.
    "clusterSecret.existingSecret": SECRET_NAME,
    "clusterSecret.existingSecretKey": SECRET_KEY,
    # What the binaries accept in CASCADE_ICE_SERVERS: a stun:, stuns:, turn: or turns: URI with
    # nothing a Link header cannot carry (the list is comma-joined, so no comma either).
    "turn.servers": {"items": {"type": "string", "pattern": r'^(stun|stuns|turn|turns):[^\s<>",;]+$'}},
    "turn.existingSecret": SECRET_NAME,
    "turn.existingSecretKey": SECRET_KEY,
    "turn.ttlSeconds": {"minimum": 0},
    "turn.static.existingSecret": SECRET_NAME,
    "turn.static.usernameKey": SECRET_KEY,
    "turn.static.passwordKey": SECRET_KEY,
    "secrets.extraEnv": {
        "propertyNames": {"pattern": r"^[A-Za-z_][A-Za-z0-9_]*$"},
        "additionalProperties": {"type": ["string", "number", "boolean"]},
    },
    "*.replicas": {"minimum": 0},
    "*.capacity": {"minimum": 1},
    "relay.maxEdgeFanout": {"minimum": 0, "maximum": 1000},
    "relay.maxDepth": {"minimum": 1, "maximum": 64},
    "relay.failoverTimeoutSeconds": {"minimum": 0, "maximum": 3600},
    "redis.keyPrefix": {"pattern": r"^$|^[!-~]{1,64}$"},
    "redis.leaseSeconds": {"minimum": 1, "maximum": 3600},
    "*.ports.http": PORT,
    "*.ports.grpc": PORT,
    "*.ports.udpMux": PORT,
    "*.ports.iceTcp": PORT,
    # The binaries' range of CASCADE_UDP_MUX_SHARDS (0: one per core).
    "*.udpMuxShards": {"minimum": 0, "maximum": 256},
    "*.udpPorts.start": PORT,
    "*.udpPorts.end": PORT,
    "*.httpAdvertise": {"pattern": r"^$|^https?://"},
    "*.grpcAdvertise": {"pattern": r"^$|^https?://"},
    "edge.upstream": {"pattern": r"^$|^https?://"},
    "*.extraEnv": ENV_LIST,
    "*.podAntiAffinity": {"enum": ["soft", "hard", "none"]},
    "*.terminationGracePeriodSeconds": {"minimum": 0},
    "*.pdb.maxUnavailable": INT_OR_PERCENT,
    "*.service.type": {"enum": ["ClusterIP", "NodePort", "LoadBalancer"]},
    "*.service.httpPort": {"minimum": 1, "maximum": 65535},
    "*.service.grpcPort": {"minimum": 1, "maximum": 65535},
    "*.service.externalTrafficPolicy": {"enum": ["Cluster", "Local"]},
    "*.service.loadBalancerSourceRanges": {"items": {"type": "string"}},
    "*.ingress.hosts": {"items": {"type": "string", "minLength": 1}},
    "*.ingress.tls": {"items": {"type": "object"}},
    "edge.autoscaling.minReplicas": {"minimum": 1},
    "edge.autoscaling.maxReplicas": {"minimum": 1},
    "edge.autoscaling.targetCPUUtilizationPercentage": {"minimum": 0},
    "edge.autoscaling.customMetrics.metricName": {"minLength": 1},
    "edge.autoscaling.customMetrics.targetViewersPerEdge": {"minimum": 1},
    "edge.autoscaling.keda.serverAddress": {"pattern": r"^https?://"},
    "edge.autoscaling.keda.targetViewersPerEdge": {"minimum": 1},
    "edge.autoscaling.keda.pollingInterval": {"minimum": 1},
    "edge.autoscaling.behavior.*.stabilizationWindowSeconds": {"minimum": 0, "maximum": 3600},
    "edge.autoscaling.behavior.*.pods": {"minimum": 1},
    "edge.autoscaling.behavior.*.periodSeconds": {"minimum": 1, "maximum": 1800},
    "podSecurityContext.*": {"minimum": 1},
    "metrics.serviceMonitor.interval": DURATION,
    "metrics.serviceMonitor.scrapeTimeout": DURATION,
    "networkPolicy.httpFrom": PEERS,
    "networkPolicy.mediaFrom": PEERS,
}

KEY_RE = re.compile(r"^(\s*)([A-Za-z_][A-Za-z0-9_]*):(\s|$)")


class DocError(Exception):
    pass


def parse_docs(text: str) -> dict[str, str]:
    """Maps dotted key -> description from the "# --" comments of values.yaml."""
    docs: dict[str, str] = {}
    stack: list[tuple[int, str]] = []
    pending: list[str] | None = None
    for lineno, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if stripped.startswith("# --"):
            pending = [stripped[4:].strip()]
            continue
        if stripped.startswith("#"):
            if pending is not None:
                pending.append(stripped[1:].strip())
            continue
        if not stripped:
            if pending is not None:
                raise DocError(f"values.yaml:{lineno}: '# --' comment not followed by a key")
            continue
        m = KEY_RE.match(line)
        if not m:
            continue  # list items and continuation of a value
        indent = len(m.group(1))
        while stack and stack[-1][0] >= indent:
            stack.pop()
        stack.append((indent, m.group(2)))
        path = ".".join(k for _, k in stack)
        if pending is not None:
            docs[path] = " ".join(p for p in pending if p)
            pending = None
    return docs


def constraint_for(path: str) -> dict:
    parts = path.split(".")
    for pattern, extra in CONSTRAINTS.items():
        pp = pattern.split(".")
        if len(pp) == len(parts) and all(p in ("*", q) for p, q in zip(pp, parts)):
            return extra
    return {}


def json_type(value) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    raise DocError(f"unsupported default {value!r}")


def build_schema(values: dict, docs: dict[str, str], prefix: str = "") -> dict:
    props = {}
    for key, value in values.items():
        path = f"{prefix}{key}"
        if is_section(value, docs, path):
            props[key] = build_schema(value, docs, path + ".")
            if path in docs:
                props[key] = {"description": docs[path], **props[key]}
        elif path in docs:
            node = {"type": json_type(value), "description": docs[path], "default": value}
            node.update(constraint_for(path))
            props[key] = node
        else:
            raise DocError(f"values.yaml: key {path} has no '# --' description")
    return {"type": "object", "additionalProperties": False, "properties": props}


def is_section(value, docs: dict[str, str], path: str) -> bool:
    """A map whose keys are documented one by one (its own comment, if any, describes the group);
    a documented map without documented keys is a single free-form value (resources, annotations)."""
    if not isinstance(value, dict) or not value:
        return False
    if path not in docs:
        return True
    return any(k.startswith(path + ".") for k in docs)


def unused_constraints(values: dict) -> list[str]:
    paths: list[str] = []

    def walk(v, prefix):
        for k, val in v.items():
            p = f"{prefix}{k}"
            paths.append(p)
            if isinstance(val, dict):
                walk(val, p + ".")

    walk(values, "")
    out = []
    for pattern in CONSTRAINTS:
        pp = pattern.split(".")
        if not any(len(pp) == len(q.split(".")) and all(a in ("*", b) for a, b in zip(pp, q.split(".")))
                   for q in paths):
            out.append(pattern)
    return out


def schema_text(values: dict, docs: dict[str, str]) -> str:
    root = build_schema(values, docs)
    # Parent charts pass "global" to every subchart.
    root["properties"]["global"] = {"type": "object", "description": "Values shared with parent and sibling charts (unused by this chart)."}
    schema = {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "title": "Values of the Cascade Helm chart",
        "description": "Generated by deploy/chart_docs.py from the '# --' comments of values.yaml; do not edit by hand.",
        **root,
    }
    return json.dumps(schema, indent=2) + "\n"


def table_text(values: dict, docs: dict[str, str]) -> str:
    rows = ["| Key | Type | Default | Description |", "| --- | --- | --- | --- |"]

    def walk(v, prefix):
        for key, value in v.items():
            path = f"{prefix}{key}"
            if not is_section(value, docs, path):
                default = json.dumps(value, separators=(", ", ": "))
                desc = docs[path].replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;")
                rows.append(f"| `{path}` | {json_type(value)} | `{default}` | {desc} |")
            else:
                walk(value, path + ".")

    walk(values, "")
    return "\n".join(rows) + "\n"


def render_readme(current: str, table: str) -> str:
    if TABLE_START not in current or TABLE_END not in current:
        raise DocError(f"{README} lacks the markers {TABLE_START} / {TABLE_END}")
    head, rest = current.split(TABLE_START, 1)
    _, tail = rest.split(TABLE_END, 1)
    return f"{head}{TABLE_START}\n{table}{TABLE_END}{tail}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    mode = ap.add_mutually_exclusive_group(required=True)
    mode.add_argument("--write", action="store_true")
    mode.add_argument("--check", action="store_true")
    args = ap.parse_args()

    try:
        text = VALUES.read_text()
        values = yaml.safe_load(text)
        docs = parse_docs(text)
        stale = unused_constraints(values)
        if stale:
            raise DocError(f"CONSTRAINTS name keys that values.yaml lacks: {', '.join(stale)}")
        schema = schema_text(values, docs)
        readme = render_readme(README.read_text(), table_text(values, docs))
    except DocError as e:
        print(f"chart_docs: {e}", file=sys.stderr)
        return 1

    if args.write:
        SCHEMA.write_text(schema)
        README.write_text(readme)
        print(f"chart_docs: wrote {SCHEMA} and the values table of {README}")
        return 0

    bad = [p.name for p, want in ((SCHEMA, schema), (README, readme)) if not p.exists() or p.read_text() != want]
    if bad:
        print(f"chart_docs: out of date: {', '.join(bad)}; run: python3 deploy/chart_docs.py --write", file=sys.stderr)
        return 1
    print(f"chart_docs: values.schema.json and README values table match values.yaml ({len(docs)} keys)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
