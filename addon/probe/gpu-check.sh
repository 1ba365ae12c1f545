#!/usr/bin/env bash
# GPU check (issue 3): build the standalone probe over the addon's loader, then sample at 10 Hz
# while a PyTorch matmul loop loads GPU 0 for ~20 s; prints counter vs polled energy.
# Run from the repository root on a GPU machine: bash addon/probe/gpu-check.sh
set -euo pipefail
cd "$(dirname "$0")"
c++ -std=c++17 -O2 -Wall -I../src ../src/loader.cc ../src/sampler.cc probe.cc -ldl -lpthread -o /tmp/llem-probe
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
