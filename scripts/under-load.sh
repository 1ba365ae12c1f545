#!/usr/bin/env bash
# Runs a command while busy loops compete for every core, the way a shared machine behaves: a
# timing-sensitive test that passes here does not flake when other jobs run beside it.
#   bash scripts/under-load.sh bash .ci/run                                (one loop per core)
#   LOAD_N=4 bash scripts/under-load.sh node --import tsx --test test/e2e/tui.test.ts
#   ROUNDS=3 bash scripts/under-load.sh npm test                           (three times in a row)
# The loops end with the command; the exit status is the command's (the first failing round's).
set -u
n=${LOAD_N:-$(nproc)}
rounds=${ROUNDS:-1}
pids=()
for _ in $(seq 1 "$n"); do
  ( exec yes > /dev/null ) &
  pids+=($!)
done
trap 'kill "${pids[@]}" 2>/dev/null' EXIT
status=0
for round in $(seq 1 "$rounds"); do
  [ "$rounds" -gt 1 ] && echo "== under load ($n busy loops): round $round of $rounds" >&2
  "$@" || { status=$?; break; }
done
exit "$status"
