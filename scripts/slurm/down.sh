#!/usr/bin/env bash
# Stop the single-node Slurm cluster started by up.sh, by pid (no pkill, no systemd).
# With LLEM_SLURM_LEASE=<pid>: drop that lease, and stop only when no other live lease remains.
set -euo pipefail

dir="${LLEM_SLURM_DIR:-/tmp/llem-slurm}"
[ -d "$dir" ] || exit 0
exec 9>"$dir/.up.lock"
flock -w 120 9

if [ -n "${LLEM_SLURM_LEASE:-}" ]; then
  rm -f "$dir/leases/$LLEM_SLURM_LEASE"
  for lease in "$dir"/leases/*; do
    [ -e "$lease" ] || continue
    holder="$(basename "$lease")"
    if kill -0 "$holder" 2>/dev/null; then
      exit 0 # someone else still uses the cluster
    fi
    rm -f "$lease"
  done
fi

for d in slurmd slurmctld munged; do
  f="$dir/$d.pid"
  if [ -s "$f" ] && kill -0 "$(cat "$f" 2>/dev/null)" 2>/dev/null; then
    kill "$(cat "$f" 2>/dev/null)" 2>/dev/null || true
  fi
done
for _ in $(seq 1 100); do
  still=0
  for d in slurmd slurmctld munged; do
    f="$dir/$d.pid"
    if [ -s "$f" ] && kill -0 "$(cat "$f" 2>/dev/null)" 2>/dev/null; then still=1; fi
  done
  [ "$still" = 0 ] && break
  sleep 0.1
done
for d in slurmd slurmctld munged; do
  f="$dir/$d.pid"
  if [ -s "$f" ] && kill -0 "$(cat "$f" 2>/dev/null)" 2>/dev/null; then kill -9 "$(cat "$f" 2>/dev/null)" 2>/dev/null || true; fi
  rm -f "$f"
done
