// Standalone probe of the GPU settings llem sweeps (power limit, locked clocks) over the addon's own
// loader and gpu_settings.cc (no Node). One short action per call, so a shell trap can always run
// the restoring call (see gpu-check.sh).
// Build: c++ -std=c++17 -O2 -Wall -I../src ../src/loader.cc ../src/gpu_settings.cc gpu-settings-probe.cc -ldl -lpthread
// Usage: llem-gpu-settings info | limits <i> | set-power <i> <mW> | lock-sm <i> <min> <max> | reset-sm <i>
//   limits prints "<power_limit_mw> <min_mw> <max_mw> <sm_min_mhz> <sm_max_mhz>" (0 = unknown) for scripts.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "gpu_api.h"
#include "gpu_settings.h"

using namespace llem;

namespace {

std::string Show(const NvmlValue& v, double scale, const char* unit) {
  if (!v.ok) return "n/a (" + v.error.code + ")";
  char buf[64];
  snprintf(buf, sizeof buf, "%g %s", v.value / scale, unit);
  return buf;
}

void PrintState(unsigned int i, nvmlDevice_t h, const char* label) {
  GpuSettingsState s = ReadGpuSettings(h);
  printf("  GPU %u %s: power limit %s (enforced %s, default %s, settable %s .. %s), SM %s, memory %s\n", i, label,
         Show(s.powerLimitMw, 1000, "W").c_str(), Show(s.enforcedPowerLimitMw, 1000, "W").c_str(),
         Show(s.powerLimitDefaultMw, 1000, "W").c_str(), Show(s.powerLimitMinMw, 1000, "W").c_str(),
         Show(s.powerLimitMaxMw, 1000, "W").c_str(), Show(s.smClockMhz, 1, "MHz").c_str(), Show(s.memClockMhz, 1, "MHz").c_str());
  unsigned long long reasons = 0;
  if (Nvml().deviceGetCurrentClocksThrottleReasons != nullptr && Nvml().deviceGetCurrentClocksThrottleReasons(h, &reasons) == NVML_SUCCESS) {
    printf("    clock event reasons 0x%llx%s\n", reasons, (reasons & 1ULL) ? " (idle)" : "");
  }
}

void PrintClocks(unsigned int i, nvmlDevice_t h) {
  GpuSettingsState s = ReadGpuSettings(h);
  if (!s.clocksOk) {
    printf("  GPU %u supported clocks: n/a (%s)\n", i, s.clocksError.message.c_str());
    return;
  }
  for (const ClockTable& t : s.clocks) {
    unsigned int hi = t.smMhz.empty() ? 0 : t.smMhz.front(), lo = t.smMhz.empty() ? 0 : t.smMhz.back();
    unsigned int step = 0;
    for (size_t k = 1; k < t.smMhz.size(); k++) {
      unsigned int d = t.smMhz[k - 1] - t.smMhz[k];
      if (d > 0 && (step == 0 || d < step)) step = d;
    }
    printf("  GPU %u memory clock %u MHz: %zu SM clocks %u .. %u MHz, step %u MHz\n", i, t.memMhz, t.smMhz.size(), lo, hi, step);
  }
}

int Fail(const GpuError& e) {
  fprintf(stderr, "FAILED: [%s] %s\n", e.code.c_str(), e.message.c_str());
  return e.code == "NVML_ERROR_NO_PERMISSION" ? 3 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: %s info | limits <i> | set-power <i> <mW> | lock-sm <i> <min> <max> | reset-sm <i>\n", argv[0]);
    return 2;
  }
  std::string cmd = argv[1];
  GpuError err;
  if (!NvmlAcquire(&err)) return Fail(err);
  unsigned int count = 0;
  Nvml().deviceGetCount(&count);
  auto handle = [&](const char* arg) {
    unsigned int i = static_cast<unsigned int>(strtoul(arg, nullptr, 10));
    nvmlDevice_t h = nullptr;
    nvmlReturn_t r = i < count ? Nvml().deviceGetHandleByIndex(i, &h) : NVML_ERROR_INVALID_ARGUMENT;
    if (r != NVML_SUCCESS) {
      Fail(NvmlError("nvmlDeviceGetHandleByIndex", r));
      exit(1);
    }
    return std::make_pair(i, h);
  };
  int rc = 0;
  if (cmd == "info") {
    printf("library %s, %u device(s)\n", Nvml().path.c_str(), count);
    for (const std::string& m : Nvml().missing) printf("  missing %s\n", m.c_str());
    for (unsigned int i = 0; i < count; i++) {
      nvmlDevice_t h = nullptr;
      if (Nvml().deviceGetHandleByIndex(i, &h) != NVML_SUCCESS) continue;
      PrintState(i, h, "now");
      PrintClocks(i, h);
    }
  } else if (cmd == "limits" && argc == 3) {
    auto [i, h] = handle(argv[2]);
    (void)i;
    GpuSettingsState s = ReadGpuSettings(h);
    unsigned int smLo = 0, smHi = 0;
    for (const ClockTable& t : s.clocks) {
      if (!t.smMhz.empty() && (smLo == 0 || t.smMhz.back() < smLo)) smLo = t.smMhz.back();
      if (!t.smMhz.empty() && t.smMhz.front() > smHi) smHi = t.smMhz.front();
    }
    printf("%u %u %u %u %u\n", s.powerLimitMw.ok ? s.powerLimitMw.value : 0, s.powerLimitMinMw.ok ? s.powerLimitMinMw.value : 0,
           s.powerLimitMaxMw.ok ? s.powerLimitMaxMw.value : 0, smLo, smHi);
  } else if (cmd == "set-power" && argc == 4) {
    auto [i, h] = handle(argv[2]);
    unsigned int mw = static_cast<unsigned int>(strtoul(argv[3], nullptr, 10));
    PrintState(i, h, "before");
    if (!SetPowerLimit(h, mw, &err)) rc = Fail(err);
    else printf("  set power limit %g W\n", mw / 1000.0);
    PrintState(i, h, "after ");
  } else if (cmd == "lock-sm" && argc == 5) {
    auto [i, h] = handle(argv[2]);
    PrintState(i, h, "before");
    if (!SetGpuLockedClocks(h, static_cast<unsigned int>(atoi(argv[3])), static_cast<unsigned int>(atoi(argv[4])), &err)) rc = Fail(err);
    else printf("  locked SM clocks to [%s, %s] MHz\n", argv[3], argv[4]);
    PrintState(i, h, "after ");
  } else if (cmd == "reset-sm" && argc == 3) {
    auto [i, h] = handle(argv[2]);
    if (!ResetGpuLockedClocks(h, &err)) rc = Fail(err);
    else printf("  SM clocks unlocked\n");
    PrintState(i, h, "after ");
  } else {
    fprintf(stderr, "unknown command or arguments: %s\n", cmd.c_str());
    rc = 2;
  }
  NvmlRelease();
  return rc;
}
