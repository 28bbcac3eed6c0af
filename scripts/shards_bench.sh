#!/usr/bin/env bash
# Mux shards against cores (issue 22 item 5): the real shard engines in one process with
# synthetic viewers (core/benches/shards), for 1, 2 and 4 shards in turn, at each viewer count
# in $SHARDS_VIEWERS. Prints the machine, the commit and one table per viewer count.
set -euo pipefail
cd "$(dirname "$0")/.."
viewers=${SHARDS_VIEWERS:-"300 1000"}
seconds=${SHARDS_SECONDS:-10}
shards=${SHARDS_COUNTS:-1,2,4}
cargo bench -p cascade-core --bench shards --locked --no-run
echo "commit $(git rev-parse --short HEAD)$(git diff --quiet || echo ' (dirty)'), $(date -u '+%F %T UTC')"
echo "nproc $(nproc), $(lscpu | sed -n 's/^Model name: *//p'), kernel $(uname -r)"
for n in $viewers; do
  echo
  cargo bench -p cascade-core --bench shards --locked -- \
    --viewers "$n" --seconds "$seconds" --shards "$shards"
done
