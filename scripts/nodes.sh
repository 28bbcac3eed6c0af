# Sourced by the bench scripts: release nodes on loopback, stopped when the script exits.
# Expects $bin (the directory of the release binaries).

pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; pids=(); }
trap cleanup EXIT

# start_node KIND NAME HTTP_PORT GRPC_PORT LOG [FLAGS...]: cascade-KIND as node NAME; its pid in
# $started. One UDP mux shard unless MUX_SHARDS says otherwise: the benches measure what a core
# forwards, on two cores shared with the load generator, where a shard per core (the nodes'
# default) would compete with it for the second.
start_node() {
  local kind=$1 name=$2 http=$3 grpc=$4 log=$5
  "$bin/cascade-$kind" --http-listen "127.0.0.1:$http" --grpc-listen "127.0.0.1:$grpc" \
    --node-id "$name" --udp-mux-shards "${MUX_SHARDS:-1}" "${@:6}" 2>"$log" &
  started=$!
  pids+=("$started")
}

# wait_healthy PORT...: until each node's /healthz answers (10 s each at most); exits if a
# node started here is gone.
wait_healthy() {
  local port
  for port in "$@"; do
    for _ in $(seq 100); do curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
  done
  local pid
  for pid in "${pids[@]}"; do
    kill -0 "$pid" 2>/dev/null || { echo "a node did not start (port in use?): see its log" >&2; exit 1; }
  done
}

# origin_and_edge OUT HTTP_PORT GRPC_PORT [EDGE FLAGS...]: an origin on the ports given and an
# edge on the next ones, pulling from it, both up; their pids in $origin and $edge.
origin_and_edge() {
  local out=$1 http=$2 grpc=$3
  start_node origin origin-1 "$http" "$grpc" "$out/origin.log"
  origin=$started
  start_node edge edge-1 $((http + 1)) $((grpc + 1)) "$out/edge.log" \
    --upstream "http://127.0.0.1:$grpc" "${@:4}"
  edge=$started
  wait_healthy "$http" $((http + 1))
}
