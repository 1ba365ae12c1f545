// Standalone GPU probe over the addon's own loader and sampler (no Node): lists devices, samples
// for a given time, and prints counter energy, polled (trapezoid) energy and their divergence.
// Build: c++ -std=c++17 -O2 -Wall -I../src ../src/loader.cc ../src/sampler.cc probe.cc -ldl -lpthread -o llem-probe
// Usage: llem-probe [seconds=20] [interval_ms=100]
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <thread>
#include <vector>

#include "gpu_api.h"
#include "sampler.h"

using namespace llem;

int main(int argc, char** argv) {
  double seconds = argc > 1 ? atof(argv[1]) : 20.0;
  double intervalMs = argc > 2 ? atof(argv[2]) : 100.0;
  GpuError err;
  if (!NvmlAcquire(&err)) {
    fprintf(stderr, "NVML unavailable: [%s] %s\n", err.code.c_str(), err.message.c_str());
    return 1;
  }
  const NvmlApi& api = Nvml();
  char driver[96] = "?";
  if (api.systemGetDriverVersion) api.systemGetDriverVersion(driver, sizeof driver);
  unsigned int count = 0;
  api.deviceGetCount(&count);
  printf("library %s, driver %s, %u device(s)\n", api.path.c_str(), driver, count);
  for (const auto& b : api.bound) printf("  bound %s -> %s\n", b.first.c_str(), b.second.c_str());
  for (const auto& m : api.missing) printf("  missing %s\n", m.c_str());
  std::vector<nvmlDevice_t> handles;
  for (unsigned int i = 0; i < count; i++) {
    nvmlDevice_t h = nullptr;
    nvmlReturn_t r = api.deviceGetHandleByIndex(i, &h);
    if (r != NVML_SUCCESS) {
      fprintf(stderr, "%s\n", NvmlError("nvmlDeviceGetHandleByIndex", r).message.c_str());
      return 1;
    }
    char uuid[96] = "?", name[96] = "?";
    if (api.deviceGetUUID) api.deviceGetUUID(h, uuid, sizeof uuid);
    if (api.deviceGetName) api.deviceGetName(h, name, sizeof name);
    DeviceProbe p;
    p.handle = h;
    Reading rd;
    ReadDevice(&p, &rd);
    printf("  GPU %u %s %s: energy %.0f mJ, power %.0f mW, temp %.0f C, sm %.0f MHz, mem used %.0f B, throttle 0x%llx\n", i, name,
           uuid, rd.v[kEnergyMj], rd.v[kPowerMw], rd.v[kTempC], rd.v[kSmClockMhz], rd.v[kMemUsedBytes],
           std::isnan(rd.v[kThrottleReasons]) ? 0ULL : (unsigned long long)rd.v[kThrottleReasons]);
    handles.push_back(h);
  }
  if (handles.empty()) return 1;

  std::vector<DeviceProbe> probes(handles.size());
  std::vector<Reading> start(handles.size()), stop(handles.size());
  for (size_t i = 0; i < handles.size(); i++) {
    probes[i].handle = handles[i];
    ReadDevice(&probes[i], &start[i]);
  }
  Sampler sampler(handles, static_cast<int64_t>(intervalMs * 1e6), 1 << 20);
  sampler.Start();
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  for (size_t i = 0; i < handles.size(); i++) ReadDevice(&probes[i], &stop[i]);
  sampler.RequestStop();
  sampler.Join();
  std::vector<Sample> samples;
  std::vector<SampleError> errors;
  uint64_t dropped = 0;
  sampler.Drain(&samples, &errors, &dropped);
  printf("window %.3f s, %zu samples, %zu errors, %llu dropped, interval %.0f ms\n", (stop[0].tNs - start[0].tNs) / 1e9,
         samples.size(), errors.size(), (unsigned long long)dropped, intervalMs);
  for (size_t d = 0; d < handles.size(); d++) {
    // Trapezoid over [start, stop] using the edge readings' power and the samples in between.
    std::vector<std::pair<int64_t, double>> pts;
    pts.emplace_back(start[d].tNs, start[d].v[kPowerMw]);
    double peak = 0;
    for (const Sample& s : samples) {
      if (s.device != static_cast<int32_t>(d) || s.tNs <= start[d].tNs || s.tNs >= stop[d].tNs || std::isnan(s.v[kPowerMw])) continue;
      pts.emplace_back(s.tNs, s.v[kPowerMw]);
      peak = std::max(peak, s.v[kPowerMw]);
    }
    pts.emplace_back(stop[d].tNs, stop[d].v[kPowerMw]);
    double polledMj = 0;
    for (size_t k = 1; k < pts.size(); k++) polledMj += (pts[k].second + pts[k - 1].second) / 2 * ((pts[k].first - pts[k - 1].first) / 1e9);
    double counterMj = stop[d].v[kEnergyMj] - start[d].v[kEnergyMj];
    double window = (stop[d].tNs - start[d].tNs) / 1e9;
    printf("GPU %zu: counter %.3f J, polled %.3f J, divergence %.2f %%, mean %.1f W, peak %.1f W\n", d, counterMj / 1000, polledMj / 1000,
           std::fabs(counterMj - polledMj) / counterMj * 100, counterMj / 1000 / window, peak / 1000);
  }
  NvmlRelease();
  return 0;
}
