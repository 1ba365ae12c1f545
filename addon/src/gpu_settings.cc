// GPU settings through NVML (see gpu_settings.h).
#include "gpu_settings.h"

namespace llem {

namespace {

GpuError MissingSymbol(const char* fn) {
  GpuError e;
  e.code = NvmlCodeName(NVML_ERROR_FUNCTION_NOT_FOUND);
  e.fn = fn;
  e.message = std::string(fn) + " is not in " + Nvml().path +
              " (an older driver): this GPU setting is unsupported here (" + e.code + ")";
  return e;
}

// Calls fn(h, &v) when bound; records the value or the failure.
NvmlValue ReadOne(nvmlReturn_t (*fn)(nvmlDevice_t, unsigned int*), const char* name, nvmlDevice_t h) {
  NvmlValue out;
  if (fn == nullptr) {
    out.error = MissingSymbol(name);
    return out;
  }
  nvmlReturn_t r = fn(h, &out.value);
  if (r == NVML_SUCCESS) out.ok = true;
  else out.error = NvmlError(name, r);
  return out;
}

// NVML's two-call list protocol: ask with room for 256, grow once if the driver has more.
bool ReadList(const std::function<nvmlReturn_t(unsigned int*, unsigned int*)>& call, const char* name,
              std::vector<unsigned int>* out, GpuError* err) {
  unsigned int count = 256;
  for (int attempt = 0; attempt < 2; attempt++) {
    out->assign(count, 0);
    unsigned int n = count;
    nvmlReturn_t r = call(&n, out->data());
    if (r == NVML_ERROR_INSUFFICIENT_SIZE && n > count) {
      count = n;
      continue;
    }
    if (r != NVML_SUCCESS) {
      *err = NvmlError(name, r);
      out->clear();
      return false;
    }
    out->resize(n);
    return true;
  }
  *err = NvmlError(name, NVML_ERROR_INSUFFICIENT_SIZE);
  return false;
}

// Calls an optional entry point: absent = unsupported; a failure keeps the NVML code.
template <typename Fn, typename... Args>
bool CallSetter(Fn fn, const char* name, GpuError* err, Args... args) {
  if (fn == nullptr) {
    *err = MissingSymbol(name);
    return false;
  }
  nvmlReturn_t r = fn(args...);
  if (r == NVML_SUCCESS) return true;
  *err = NvmlError(name, r);
  return false;
}

}  // namespace

GpuSettingsState ReadGpuSettings(nvmlDevice_t h) {
  const NvmlApi& api = Nvml();
  GpuSettingsState s;
  s.powerLimitMw = ReadOne(api.deviceGetPowerManagementLimit, "nvmlDeviceGetPowerManagementLimit", h);
  s.powerLimitDefaultMw = ReadOne(api.deviceGetPowerManagementDefaultLimit, "nvmlDeviceGetPowerManagementDefaultLimit", h);
  s.enforcedPowerLimitMw = ReadOne(api.deviceGetEnforcedPowerLimit, "nvmlDeviceGetEnforcedPowerLimit", h);
  if (api.deviceGetPowerManagementLimitConstraints == nullptr) {
    s.powerLimitMinMw.error = s.powerLimitMaxMw.error = MissingSymbol("nvmlDeviceGetPowerManagementLimitConstraints");
  } else {
    nvmlReturn_t r = api.deviceGetPowerManagementLimitConstraints(h, &s.powerLimitMinMw.value, &s.powerLimitMaxMw.value);
    if (r == NVML_SUCCESS) {
      s.powerLimitMinMw.ok = s.powerLimitMaxMw.ok = true;
    } else {
      s.powerLimitMinMw.error = s.powerLimitMaxMw.error = NvmlError("nvmlDeviceGetPowerManagementLimitConstraints", r);
    }
  }
  if (api.deviceGetClockInfo == nullptr) {
    s.smClockMhz.error = s.memClockMhz.error = MissingSymbol("nvmlDeviceGetClockInfo");
  } else {
    nvmlReturn_t r = api.deviceGetClockInfo(h, NVML_CLOCK_SM, &s.smClockMhz.value);
    if (r == NVML_SUCCESS) s.smClockMhz.ok = true;
    else s.smClockMhz.error = NvmlError("nvmlDeviceGetClockInfo", r);
    r = api.deviceGetClockInfo(h, NVML_CLOCK_MEM, &s.memClockMhz.value);
    if (r == NVML_SUCCESS) s.memClockMhz.ok = true;
    else s.memClockMhz.error = NvmlError("nvmlDeviceGetClockInfo", r);
  }
  if (api.deviceGetSupportedMemoryClocks == nullptr || api.deviceGetSupportedGraphicsClocks == nullptr) {
    s.clocksError = MissingSymbol(api.deviceGetSupportedMemoryClocks == nullptr ? "nvmlDeviceGetSupportedMemoryClocks"
                                                                                 : "nvmlDeviceGetSupportedGraphicsClocks");
    return s;
  }
  std::vector<unsigned int> mem;
  if (!ReadList([&](unsigned int* n, unsigned int* out) { return api.deviceGetSupportedMemoryClocks(h, n, out); },
                "nvmlDeviceGetSupportedMemoryClocks", &mem, &s.clocksError)) {
    return s;
  }
  for (unsigned int m : mem) {
    ClockTable t;
    t.memMhz = m;
    if (!ReadList([&](unsigned int* n, unsigned int* out) { return api.deviceGetSupportedGraphicsClocks(h, m, n, out); },
                  "nvmlDeviceGetSupportedGraphicsClocks", &t.smMhz, &s.clocksError)) {
      s.clocks.clear();
      return s;
    }
    s.clocks.push_back(std::move(t));
  }
  s.clocksOk = true;
  return s;
}

bool SetPowerLimit(nvmlDevice_t h, unsigned int mw, GpuError* err) {
  return CallSetter(Nvml().deviceSetPowerManagementLimit, "nvmlDeviceSetPowerManagementLimit", err, h, mw);
}

bool SetGpuLockedClocks(nvmlDevice_t h, unsigned int minMhz, unsigned int maxMhz, GpuError* err) {
  return CallSetter(Nvml().deviceSetGpuLockedClocks, "nvmlDeviceSetGpuLockedClocks", err, h, minMhz, maxMhz);
}

bool ResetGpuLockedClocks(nvmlDevice_t h, GpuError* err) {
  return CallSetter(Nvml().deviceResetGpuLockedClocks, "nvmlDeviceResetGpuLockedClocks", err, h);
}

bool SetMemoryLockedClocks(nvmlDevice_t h, unsigned int minMhz, unsigned int maxMhz, GpuError* err) {
  return CallSetter(Nvml().deviceSetMemoryLockedClocks, "nvmlDeviceSetMemoryLockedClocks", err, h, minMhz, maxMhz);
}

bool ResetMemoryLockedClocks(nvmlDevice_t h, GpuError* err) {
  return CallSetter(Nvml().deviceResetMemoryLockedClocks, "nvmlDeviceResetMemoryLockedClocks", err, h);
}

}  // namespace llem
