#!/usr/bin/env bash
# Start a real single-node Slurm cluster on this machine, without systemd: a private munge key
# and munged socket, a one-node slurm.conf, slurmctld and slurmd as daemons. Everything lives in
# one state directory (LLEM_SLURM_DIR, default /tmp/llem-slurm). Idempotent: when the cluster is
# already up it only prints its environment. Meant for CI (.ci/run) and test `before` hooks.
#
# Prints, on stdout, shell lines to eval:   export SLURM_CONF=<dir>/slurm.conf
# Leases: with LLEM_SLURM_LEASE=<pid> the caller registers itself as a user of the cluster;
# down.sh with the same variable stops the daemons only when no other live lease remains, so that
# several test processes started at once can share one cluster.
set -euo pipefail

dir="${LLEM_SLURM_DIR:-/tmp/llem-slurm}"
cpus="${LLEM_SLURM_CPUS:-2}"
wait_s="${LLEM_SLURM_WAIT_S:-90}"
node="$(hostname -s)"

for bin in munged slurmctld slurmd sinfo scontrol; do
  if ! command -v "$bin" >/dev/null 2>&1 && [ ! -x "/usr/sbin/$bin" ]; then
    echo "up.sh: $bin not found: install the Debian packages slurm-wlm and munge" >&2
    exit 3
  fi
done
export PATH="$PATH:/usr/sbin:/sbin"

mkdir -p "$dir"
chmod 0755 "$dir"
# Serialise concurrent callers (several test files may start at once).
exec 9>"$dir/.up.lock"
flock -w 120 9

export SLURM_CONF="$dir/slurm.conf"

alive() { # alive <pidfile>
  [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null
}

node_ready() {
  local state
  state="$(sinfo -h -N -n "$node" -o '%T' 2>/dev/null | head -n1)" || return 1
  case "$state" in
    idle|idle\*|mixed|allocated|completing) [[ "$state" != *'*' ]] ;;
    *) return 1 ;;
  esac
}

if [ -n "${LLEM_SLURM_LEASE:-}" ]; then
  mkdir -p "$dir/leases"
  : >"$dir/leases/$LLEM_SLURM_LEASE"
fi

if alive "$dir/munged.pid" && alive "$dir/slurmctld.pid" && alive "$dir/slurmd.pid" && node_ready; then
  echo "export SLURM_CONF=$SLURM_CONF"
  exit 0
fi

# Something is half up (or a stale run): stop what is left and start clean.
for d in slurmd slurmctld munged; do
  if alive "$dir/$d.pid"; then kill "$(cat "$dir/$d.pid")" 2>/dev/null || true; fi
done
for _ in $(seq 1 50); do
  alive "$dir/slurmd.pid" || alive "$dir/slurmctld.pid" || alive "$dir/munged.pid" || break
  sleep 0.1
done
rm -f "$dir"/*.pid
rm -rf "$dir/state" "$dir/spool" "$dir/munge"
mkdir -p "$dir/state" "$dir/spool" "$dir/munge" "$dir/log"
chmod 0700 "$dir/munge"

# A private munge key and socket: never touches a system munged.
if [ ! -s "$dir/munge.key" ]; then
  dd if=/dev/urandom of="$dir/munge.key" bs=1 count=1024 status=none
fi
chmod 0400 "$dir/munge.key"

# The daemons must not inherit fd 9 (the flock above), or they would hold the lock forever.
munged --force 9>&- \
  --key-file="$dir/munge.key" \
  --socket="$dir/munge/munge.socket" \
  --pid-file="$dir/munged.pid" \
  --log-file="$dir/log/munged.log" \
  --seed-file="$dir/munge/munged.seed"

cat >"$SLURM_CONF" <<CONF
# Written by scripts/slurm/up.sh: a one-node test cluster; no cgroups, no systemd, no accounting.
ClusterName=llem
SlurmctldHost=$node(127.0.0.1)
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$dir/munge/munge.socket
SlurmUser=root
SlurmdUser=root
SlurmctldPort=${LLEM_SLURM_CTLD_PORT:-6817}
SlurmdPort=${LLEM_SLURM_D_PORT:-6818}
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SwitchType=switch/none
MpiDefault=none
ReturnToService=2
SchedulerType=sched/builtin
SchedulerParameters=sched_min_interval=0
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
# The node may be declared with more CPUs than the box has (LLEM_SLURM_CPUS) to run many tiny
# tasks at once in tests.
SlurmdParameters=config_overrides
# Short waits so that tests see time limits and cancellations quickly.
KillWait=10
MinJobAge=600
InactiveLimit=0
SlurmctldTimeout=30
SlurmdTimeout=60
MessageTimeout=20
MaxArraySize=100001
MaxJobCount=100000
NodeName=$node NodeAddr=127.0.0.1 NodeHostname=$node CPUs=$cpus State=UNKNOWN
PartitionName=debug Nodes=$node Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO
CONF

slurmctld -c -f "$SLURM_CONF" 9>&-
slurmd -f "$SLURM_CONF" 9>&-

deadline=$(( $(date +%s) + wait_s ))
until node_ready; do
  if [ "$(date +%s)" -ge "$deadline" ]; then
    echo "up.sh: node $node not idle after ${wait_s}s; logs in $dir/log" >&2
    sinfo -N -l >&2 || true
    tail -n 20 "$dir/log/slurmctld.log" "$dir/log/slurmd.log" >&2 || true
    exit 4
  fi
  # A node that registered as down (e.g. after an unclean restart) is brought back.
  state="$(sinfo -h -N -n "$node" -o '%T' 2>/dev/null | head -n1 || true)"
  case "$state" in down*|drain*|unknown\*) scontrol update nodename="$node" state=resume >/dev/null 2>&1 || true ;; esac
  sleep 0.5
done
echo "export SLURM_CONF=$SLURM_CONF"
