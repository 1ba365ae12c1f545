#!/usr/bin/env bash
# GPU check (issue 3): build the standalone probe over the addon's loader, then sample at 10 Hz
# while a PyTorch matmul loop loads GPU 0 for ~20 s; prints counter vs polled energy. Also checks
# the process-tree syscalls (prctl PR_SET_CHILD_SUBREAPER) on that machine's kernel and container.
# Run from the repository root on a GPU machine: bash addon/probe/gpu-check.sh
set -euo pipefail
cd "$(dirname "$0")"
c++ -std=c++17 -O2 -Wall -I../src ../src/loader.cc ../src/sampler.cc probe.cc -ldl -lpthread -o /tmp/llem-probe
echo "== process tree (issue 12): subreaper through the addon; an orphaned setsid() grandchild must come to us, not to init"
(cd ../.. && node --import tsx --input-type=module -e "import { setChildSubreaper } from './src/native/index.ts'; import { execSync } from 'node:child_process'; import { readFileSync } from 'node:fs'; const r = setChildSubreaper(true); if (r.status !== 'available') { console.log('FAIL subreaper unavailable:', r.reason); process.exit(1); } const pid = Number(execSync('setsid sleep 30 >/dev/null 2>&1 & echo \$!').toString()); await new Promise((ok) => setTimeout(ok, 300)); const ppid = Number(readFileSync('/proc/' + pid + '/stat', 'utf8').split(') ')[1].split(' ')[1]); process.kill(pid, 'SIGKILL'); console.log(ppid === process.pid ? 'ok: setsid grandchild ' + pid + ' re-parented to us' : 'FAIL: its parent is ' + ppid + ', not us (' + process.pid + ')'); process.exit(ppid === process.pid ? 0 : 1);")
echo "== idle, 3 s"
/tmp/llem-probe 3 100
echo "== under load, 20 s at 10 Hz"
python3 -c "
import torch, time
a = torch.randn(8192, 8192, device='cuda', dtype=torch.bfloat16)
b = torch.randn(8192, 8192, device='cuda', dtype=torch.bfloat16)
t = time.time()
while time.time() - t < 24:
    c = a @ b
torch.cuda.synchronize()
" &
load=$!
sleep 3
/tmp/llem-probe 20 100
wait "$load"
