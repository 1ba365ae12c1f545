#!/usr/bin/env bash
# GPU check, run from the repository root on a GPU machine: bash addon/probe/gpu-check.sh
#  1. GPU settings (issue 15): read GPU 0's real power-limit constraints and lockable clocks; if
#     permitted (root), set a lower cap once and lock SM clocks once, printing before/after, and
#     restore both. A trap restores on every exit (error, Ctrl+C, SIGTERM). Unprivileged: read only.
#  2. Energy (issue 3): sample at 10 Hz while a PyTorch matmul loop loads GPU 0 for ~20 s; prints
#     counter vs polled energy. Skipped when PyTorch is missing.
#     Under the cap it also prints the clock-event reasons the validity gate (issue 17) judges.
#  3. Process tree (issue 12): the prctl(PR_SET_CHILD_SUBREAPER) syscall through the addon, on that
#     machine's kernel and container.
set -euo pipefail
cd "$(dirname "$0")"
c++ -std=c++17 -O2 -Wall -I../src ../src/loader.cc ../src/gpu_settings.cc gpu-settings-probe.cc -ldl -lpthread -o /tmp/llem-gpu-settings
c++ -std=c++17 -O2 -Wall -I../src ../src/loader.cc ../src/sampler.cc probe.cc -ldl -lpthread -o /tmp/llem-probe
gs=/tmp/llem-gpu-settings
echo "== process tree (issue 12): subreaper through the addon; an orphaned setsid() grandchild must come to us, not to init"
(cd ../.. && node --import tsx --input-type=module -e "import { setChildSubreaper } from './src/native/index.ts'; import { execSync } from 'node:child_process'; import { readFileSync } from 'node:fs'; const r = setChildSubreaper(true); if (r.status !== 'available') { console.log('FAIL subreaper unavailable:', r.reason); process.exit(1); } const pid = Number(execSync('setsid sleep 30 >/dev/null 2>&1 & echo \$!').toString()); await new Promise((ok) => setTimeout(ok, 300)); const ppid = Number(readFileSync('/proc/' + pid + '/stat', 'utf8').split(') ')[1].split(' ')[1]); process.kill(pid, 'SIGKILL'); console.log(ppid === process.pid ? 'ok: setsid grandchild ' + pid + ' re-parented to us' : 'FAIL: its parent is ' + ppid + ', not us (' + process.pid + ')'); process.exit(ppid === process.pid ? 0 : 1);")
have_torch() { python3 -c 'import torch' 2> /dev/null; }
# A bf16 matmul loop on GPU 0 for $1 seconds, in the background ($! is its pid).
load_gpu() {
  python3 -c "
import torch, time
a = torch.randn(8192, 8192, device='cuda', dtype=torch.bfloat16)
b = torch.randn(8192, 8192, device='cuda', dtype=torch.bfloat16)
t = time.time()
while time.time() - t < $1:
    c = a @ b
torch.cuda.synchronize()
" &
}

echo "== GPU settings: constraints and current values"
$gs info
read -r orig_mw min_mw max_mw sm_lo sm_hi < <($gs limits 0)
echo "GPU 0: limit ${orig_mw} mW, settable ${min_mw}..${max_mw} mW, SM clocks ${sm_lo}..${sm_hi} MHz"
if [ "$orig_mw" -gt 0 ] && $gs set-power 0 "$orig_mw" > /dev/null 2>&1; then
  # Permitted (the dry set of the current value worked). From here on, always restore.
  capload=
  restore() {
    if [ -n "$capload" ]; then kill "$capload" 2> /dev/null || true; fi
    $gs set-power 0 "$orig_mw" | tail -n 2 || true
    $gs reset-sm 0 | tail -n 2 || true
  }
  trap 'echo "== restoring GPU 0"; restore; trap - EXIT' EXIT
  trap 'exit 130' INT TERM HUP
  cap_mw=$(( (orig_mw + min_mw) / 2 ))
  echo "== set the power limit to ${cap_mw} mW (halfway to the minimum), then back"
  $gs set-power 0 "$cap_mw"
  if have_torch; then
    echo "== 8 s of load under the ${cap_mw} mW cap: mean and peak power must stay at or under it"
    load_gpu 8
    capload=$!
    sleep 3
    /tmp/llem-probe 4 100 | grep '^GPU 0:'
    # issue 17: the validity gate's `throttled` judgement reads these; under the cap bit 0x4 (SW power cap) must be set
    echo "== clock event reasons under the cap (0x4 = SW power cap expected)"
    $gs info | grep -E "clock event" | head -n 1
    wait "$capload"
    capload=
  fi
  if [ "$sm_hi" -gt 0 ]; then
    mid=$(( (sm_lo + sm_hi) / 2 ))
    echo "== lock SM clocks to ${mid} MHz (idle: does the clock sit at the lock?), then unlock"
    $gs lock-sm 0 "$mid" "$mid"
    sleep 1
    $gs info | grep -E "GPU 0 now|clock event" | head -n 2
  fi
  restore
  trap - EXIT INT TERM HUP
  echo "== restored: GPU 0 power limit back to ${orig_mw} mW"
  $gs info | grep "GPU 0 now"
else
  echo "== not permitted to change GPU settings here (needs root): constraints read only"
fi

if ! have_torch; then
  echo "== no PyTorch: energy check under load skipped"
  exit 0
fi
echo "== idle, 3 s"
/tmp/llem-probe 3 100
echo "== under load, 20 s at 10 Hz"
load_gpu 24
load=$!
sleep 3
/tmp/llem-probe 20 100
wait "$load"
