#!/bin/bash
# The overload row with the door's refusals logged (instrument.patch applied to a checkout of this commit in
# $ONSET_TREE): alternating the row as measured (the ladder finds the sustainable rate), and twice a fixed
# 6,500 req/s (13,000 offered) with the door's interval at 100 ms (the default) and at 50 ms.
#   git worktree add --detach ../wt/onset HEAD && (cd ../wt/onset && git apply ../../main/reports/overload_onset/instrument.patch)
#   ONSET_TREE=../wt/onset OUT=/tmp/onset bash reports/overload_onset/run.sh 3 && python reports/overload_onset/table.py /tmp/onset
set -euo pipefail
rounds=${1:-3}
for i in $(seq 1 "$rounds"); do
  for variant in ladder interval100 interval50; do
    dir=$OUT/$variant.$i
    mkdir -p "$dir"
    case $variant in
      ladder) extra=() ; env=() ;;
      interval100) extra=(--sustainable-rps 6500) ; env=(CTR_SHED_INTERVAL_MS=100) ;;
      interval50) extra=(--sustainable-rps 6500) ; env=(CTR_SHED_INTERVAL_MS=50) ;;
    esac
    env "${env[@]}" CTR_ONSET_LOG_DIR="$dir" ctr bench harden -r models --cases overload "${extra[@]}" \
      --service-root "$ONSET_TREE" --out "$dir/overload.json" > "$dir/log" 2>&1
  done
done
