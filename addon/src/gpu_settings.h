// GPU settings through NVML: the power limit and locked SM/memory clocks, their constraints and
// the values in force. No Node dependency (the standalone probe reuses it). Every failure carries
// the NVML code; an entry point absent from the library is NVML_ERROR_FUNCTION_NOT_FOUND, so a
// setting the driver cannot change is "unsupported", never a failed load.
#pragma once

#include <functional>
#include <vector>

#include "gpu_api.h"

namespace llem {

// One value read from NVML, or why it could not be.
struct NvmlValue {
  bool ok = false;
  unsigned int value = 0;
  GpuError error;
};

// The graphics clocks the driver accepts with one memory clock (NVML lists them highest first).
struct ClockTable {
  unsigned int memMhz = 0;
  std::vector<unsigned int> smMhz;
};

struct GpuSettingsState {
  NvmlValue powerLimitMw;          // nvmlDeviceGetPowerManagementLimit: the limit set
  NvmlValue powerLimitDefaultMw;   // the limit the board boots with
  NvmlValue enforcedPowerLimitMw;  // what the driver enforces after every limiter
  NvmlValue powerLimitMinMw;       // constraints of nvmlDeviceSetPowerManagementLimit
  NvmlValue powerLimitMaxMw;
  NvmlValue smClockMhz;   // current clocks (NVML has no getter for the locked range itself)
  NvmlValue memClockMhz;
  bool clocksOk = false;  // supported clocks, one table per memory clock
  GpuError clocksError;
  std::vector<ClockTable> clocks;
};

GpuSettingsState ReadGpuSettings(nvmlDevice_t h);

// Each returns false with *err set (code NVML_ERROR_NO_PERMISSION, _NOT_SUPPORTED,
// _INVALID_ARGUMENT, _FUNCTION_NOT_FOUND, …).
bool SetPowerLimit(nvmlDevice_t h, unsigned int mw, GpuError* err);
bool SetGpuLockedClocks(nvmlDevice_t h, unsigned int minMhz, unsigned int maxMhz, GpuError* err);
bool ResetGpuLockedClocks(nvmlDevice_t h, GpuError* err);
bool SetMemoryLockedClocks(nvmlDevice_t h, unsigned int minMhz, unsigned int maxMhz, GpuError* err);
bool ResetMemoryLockedClocks(nvmlDevice_t h, GpuError* err);

}  // namespace llem
