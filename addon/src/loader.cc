// dlopen of libnvidia-ml / libcuda and binding of the entry points, with fallbacks for older
// drivers (versioned names first, as go-nvml does).
#include "gpu_api.h"

#include <dlfcn.h>
#include <time.h>

#include <cstdlib>
#include <initializer_list>

namespace llem {

namespace {

std::mutex g_nvml_mutex;
NvmlApi g_nvml;
void* g_nvml_handle = nullptr;
int g_nvml_refs = 0;

std::mutex g_cuda_mutex;
CudaApi g_cuda;
void* g_cuda_handle = nullptr;
bool g_cuda_ready = false;
GpuError g_cuda_error;  // cuInit failure is remembered: retrying it changes nothing

// Tries the override (alone, when set) or the default names; records every attempt with dlerror.
void* OpenLibrary(const char* env_var, std::initializer_list<const char*> defaults, const char* what,
                  std::string* path, GpuError* err) {
  std::vector<std::string> candidates;
  const char* override_path = std::getenv(env_var);
  if (override_path != nullptr && override_path[0] != '\0') {
    candidates.push_back(override_path);
  } else {
    for (const char* d : defaults) candidates.push_back(d);
  }
  std::string details;
  for (const std::string& c : candidates) {
    dlerror();
    void* h = dlopen(c.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (h != nullptr) {
      *path = c;
      return h;
    }
    const char* e = dlerror();
    err->pathsTried.push_back(c);
    details += "\n  " + c + ": " + (e != nullptr ? e : "unknown dlopen error");
  }
  err->code = "LIB_NOT_FOUND";
  err->fn = "dlopen";
  err->message = std::string("could not load ") + what + " (" +
                 (override_path != nullptr && override_path[0] != '\0' ? std::string(env_var) + " is set"
                                                                        : "set " + std::string(env_var) + " to override") +
                 "); tried:" + details;
  return nullptr;
}

template <typename Fn>
bool Bind(void* handle, std::initializer_list<const char*> names, Fn* out, const char* label,
          std::vector<std::pair<std::string, std::string>>* bound, std::vector<std::string>* missing) {
  for (const char* n : names) {
    void* sym = dlsym(handle, n);
    if (sym != nullptr) {
      *out = reinterpret_cast<Fn>(sym);
      bound->emplace_back(label, n);
      return true;
    }
  }
  missing->push_back(label);
  return false;
}

// The GPU-settings entry points (power limit, locked clocks, their constraints). The legacy
// nvmlDeviceSetPowerManagementLimit is bound, not _v2: _v2 takes a struct and exists only on
// recent drivers, while the plain one is kept by every driver and sets the same limit.
void BindGpuSettings(void* h, NvmlApi* api) {
  auto& b = api->bound;
  auto& m = api->missing;
  Bind(h, {"nvmlDeviceGetPowerManagementLimitConstraints"}, &api->deviceGetPowerManagementLimitConstraints,
       "nvmlDeviceGetPowerManagementLimitConstraints", &b, &m);
  Bind(h, {"nvmlDeviceGetEnforcedPowerLimit"}, &api->deviceGetEnforcedPowerLimit, "nvmlDeviceGetEnforcedPowerLimit", &b, &m);
  Bind(h, {"nvmlDeviceSetPowerManagementLimit"}, &api->deviceSetPowerManagementLimit, "nvmlDeviceSetPowerManagementLimit", &b,
       &m);
  Bind(h, {"nvmlDeviceSetGpuLockedClocks"}, &api->deviceSetGpuLockedClocks, "nvmlDeviceSetGpuLockedClocks", &b, &m);
  Bind(h, {"nvmlDeviceResetGpuLockedClocks"}, &api->deviceResetGpuLockedClocks, "nvmlDeviceResetGpuLockedClocks", &b, &m);
  Bind(h, {"nvmlDeviceSetMemoryLockedClocks"}, &api->deviceSetMemoryLockedClocks, "nvmlDeviceSetMemoryLockedClocks", &b, &m);
  Bind(h, {"nvmlDeviceResetMemoryLockedClocks"}, &api->deviceResetMemoryLockedClocks, "nvmlDeviceResetMemoryLockedClocks", &b,
       &m);
  Bind(h, {"nvmlDeviceGetSupportedMemoryClocks"}, &api->deviceGetSupportedMemoryClocks, "nvmlDeviceGetSupportedMemoryClocks",
       &b, &m);
  Bind(h, {"nvmlDeviceGetSupportedGraphicsClocks"}, &api->deviceGetSupportedGraphicsClocks,
       "nvmlDeviceGetSupportedGraphicsClocks", &b, &m);
}

bool LoadNvmlLocked(GpuError* err) {
  if (g_nvml_handle != nullptr) return true;
  std::string path;
  void* h = OpenLibrary("LLEM_NVML_LIB", {"libnvidia-ml.so.1", "libnvidia-ml.so"}, "the NVIDIA management library (NVML)",
                        &path, err);
  if (h == nullptr) return false;
  NvmlApi api;
  api.path = path;
  auto& b = api.bound;
  auto& m = api.missing;
  bool ok = true;
  ok &= Bind(h, {"nvmlInit_v2", "nvmlInit"}, &api.init, "nvmlInit", &b, &m);
  ok &= Bind(h, {"nvmlShutdown"}, &api.shutdown, "nvmlShutdown", &b, &m);
  ok &= Bind(h, {"nvmlErrorString"}, &api.errorString, "nvmlErrorString", &b, &m);
  ok &= Bind(h, {"nvmlDeviceGetCount_v2", "nvmlDeviceGetCount"}, &api.deviceGetCount, "nvmlDeviceGetCount", &b, &m);
  ok &= Bind(h, {"nvmlDeviceGetHandleByIndex_v2", "nvmlDeviceGetHandleByIndex"}, &api.deviceGetHandleByIndex,
             "nvmlDeviceGetHandleByIndex", &b, &m);
  if (!ok) {
    err->code = "SYMBOL_MISSING";
    err->fn = "dlsym";
    err->message = path + " lacks required NVML entry points:";
    for (const std::string& s : m) err->message += " " + s;
    err->pathsTried.push_back(path);
    dlclose(h);
    return false;
  }
  Bind(h, {"nvmlSystemGetDriverVersion"}, &api.systemGetDriverVersion, "nvmlSystemGetDriverVersion", &b, &m);
  Bind(h, {"nvmlSystemGetCudaDriverVersion_v2", "nvmlSystemGetCudaDriverVersion"}, &api.systemGetCudaDriverVersion,
       "nvmlSystemGetCudaDriverVersion", &b, &m);
  Bind(h, {"nvmlDeviceGetHandleByUUID"}, &api.deviceGetHandleByUUID, "nvmlDeviceGetHandleByUUID", &b, &m);
  Bind(h, {"nvmlDeviceGetDeviceHandleFromMigDeviceHandle"}, &api.deviceGetDeviceHandleFromMigDeviceHandle,
       "nvmlDeviceGetDeviceHandleFromMigDeviceHandle", &b, &m);
  Bind(h, {"nvmlDeviceGetIndex"}, &api.deviceGetIndex, "nvmlDeviceGetIndex", &b, &m);
  Bind(h, {"nvmlDeviceGetUUID"}, &api.deviceGetUUID, "nvmlDeviceGetUUID", &b, &m);
  Bind(h, {"nvmlDeviceGetName"}, &api.deviceGetName, "nvmlDeviceGetName", &b, &m);
  Bind(h, {"nvmlDeviceGetPciInfo_v3", "nvmlDeviceGetPciInfo_v2"}, &api.deviceGetPciInfo, "nvmlDeviceGetPciInfo", &b, &m);
  Bind(h, {"nvmlDeviceGetMemoryInfo"}, &api.deviceGetMemoryInfo, "nvmlDeviceGetMemoryInfo", &b, &m);
  Bind(h, {"nvmlDeviceGetPowerManagementLimit"}, &api.deviceGetPowerManagementLimit, "nvmlDeviceGetPowerManagementLimit",
       &b, &m);
  Bind(h, {"nvmlDeviceGetPowerManagementDefaultLimit"}, &api.deviceGetPowerManagementDefaultLimit,
       "nvmlDeviceGetPowerManagementDefaultLimit", &b, &m);
  Bind(h, {"nvmlDeviceGetPersistenceMode"}, &api.deviceGetPersistenceMode, "nvmlDeviceGetPersistenceMode", &b, &m);
  Bind(h, {"nvmlDeviceGetMigMode"}, &api.deviceGetMigMode, "nvmlDeviceGetMigMode", &b, &m);
  if (!Bind(h, {"nvmlDeviceGetComputeRunningProcesses_v3", "nvmlDeviceGetComputeRunningProcesses_v2"},
            &api.deviceGetComputeRunningProcesses, "nvmlDeviceGetComputeRunningProcesses", &b, &m)) {
    m.pop_back();
    api.processInfoIsV1 = Bind(h, {"nvmlDeviceGetComputeRunningProcesses"}, &api.deviceGetComputeRunningProcesses,
                               "nvmlDeviceGetComputeRunningProcesses", &b, &m);
  }
  Bind(h, {"nvmlDeviceGetTotalEnergyConsumption"}, &api.deviceGetTotalEnergyConsumption,
       "nvmlDeviceGetTotalEnergyConsumption", &b, &m);
  Bind(h, {"nvmlDeviceGetPowerUsage"}, &api.deviceGetPowerUsage, "nvmlDeviceGetPowerUsage", &b, &m);
  Bind(h, {"nvmlDeviceGetTemperature"}, &api.deviceGetTemperature, "nvmlDeviceGetTemperature", &b, &m);
  Bind(h, {"nvmlDeviceGetClockInfo"}, &api.deviceGetClockInfo, "nvmlDeviceGetClockInfo", &b, &m);
  Bind(h, {"nvmlDeviceGetUtilizationRates"}, &api.deviceGetUtilizationRates, "nvmlDeviceGetUtilizationRates", &b, &m);
  // Renamed "ClocksEvent" in CUDA 12.2; the old name is kept by current drivers.
  Bind(h, {"nvmlDeviceGetCurrentClocksEventReasons", "nvmlDeviceGetCurrentClocksThrottleReasons"},
       &api.deviceGetCurrentClocksThrottleReasons, "nvmlDeviceGetCurrentClocksThrottleReasons", &b, &m);
  BindGpuSettings(h, &api);
  g_nvml = std::move(api);
  g_nvml_handle = h;
  return true;
}

}  // namespace

const char* NvmlCodeName(nvmlReturn_t r) {
  switch (r) {
    case 0: return "NVML_SUCCESS";
    case 1: return "NVML_ERROR_UNINITIALIZED";
    case 2: return "NVML_ERROR_INVALID_ARGUMENT";
    case 3: return "NVML_ERROR_NOT_SUPPORTED";
    case 4: return "NVML_ERROR_NO_PERMISSION";
    case 5: return "NVML_ERROR_ALREADY_INITIALIZED";
    case 6: return "NVML_ERROR_NOT_FOUND";
    case 7: return "NVML_ERROR_INSUFFICIENT_SIZE";
    case 8: return "NVML_ERROR_INSUFFICIENT_POWER";
    case 9: return "NVML_ERROR_DRIVER_NOT_LOADED";
    case 10: return "NVML_ERROR_TIMEOUT";
    case 11: return "NVML_ERROR_IRQ_ISSUE";
    case 12: return "NVML_ERROR_LIBRARY_NOT_FOUND";
    case 13: return "NVML_ERROR_FUNCTION_NOT_FOUND";
    case 14: return "NVML_ERROR_CORRUPTED_INFOROM";
    case 15: return "NVML_ERROR_GPU_IS_LOST";
    case 16: return "NVML_ERROR_RESET_REQUIRED";
    case 17: return "NVML_ERROR_OPERATING_SYSTEM";
    case 18: return "NVML_ERROR_LIB_RM_VERSION_MISMATCH";
    case 19: return "NVML_ERROR_IN_USE";
    case 20: return "NVML_ERROR_MEMORY";
    case 21: return "NVML_ERROR_NO_DATA";
    case 26: return "NVML_ERROR_DEPRECATED";
    case 27: return "NVML_ERROR_NOT_READY";
    case 28: return "NVML_ERROR_GPU_NOT_FOUND";
    default: return "NVML_ERROR_UNKNOWN";
  }
}

GpuError NvmlError(const char* fn, nvmlReturn_t r) {
  GpuError e;
  e.code = NvmlCodeName(r);
  e.fn = fn;
  const char* s = (g_nvml.errorString != nullptr) ? g_nvml.errorString(r) : nullptr;
  e.message = std::string(fn) + " failed: " + (s != nullptr ? s : e.code) + " (" + e.code + ")";
  return e;
}

bool NvmlAcquire(GpuError* err) {
  std::lock_guard<std::mutex> lock(g_nvml_mutex);
  if (!LoadNvmlLocked(err)) return false;
  if (g_nvml_refs == 0) {
    nvmlReturn_t r = g_nvml.init();
    if (r != NVML_SUCCESS) {
      *err = NvmlError("nvmlInit", r);
      return false;
    }
  }
  g_nvml_refs++;
  return true;
}

void NvmlRelease() {
  std::lock_guard<std::mutex> lock(g_nvml_mutex);
  if (g_nvml_refs <= 0) return;
  if (--g_nvml_refs == 0) g_nvml.shutdown();
}

int NvmlRefCount() {
  std::lock_guard<std::mutex> lock(g_nvml_mutex);
  return g_nvml_refs;
}

const NvmlApi& Nvml() { return g_nvml; }

GpuError CudaError(const char* fn, CUresult r) {
  GpuError e;
  const char* name = nullptr;
  const char* text = nullptr;
  if (g_cuda.getErrorName != nullptr) g_cuda.getErrorName(r, &name);
  if (g_cuda.getErrorString != nullptr) g_cuda.getErrorString(r, &text);
  e.code = name != nullptr ? name : "CUDA_ERROR_" + std::to_string(r);
  e.fn = fn;
  e.message = std::string(fn) + " failed: " + (text != nullptr ? text : e.code) + " (" + e.code + ")";
  return e;
}

bool CudaAcquire(GpuError* err) {
  std::lock_guard<std::mutex> lock(g_cuda_mutex);
  if (g_cuda_ready) return true;
  if (!g_cuda_error.code.empty()) {
    *err = g_cuda_error;
    return false;
  }
  std::string path;
  void* h = OpenLibrary("LLEM_CUDA_LIB", {"libcuda.so.1", "libcuda.so"}, "the CUDA driver library", &path, err);
  if (h == nullptr) return false;  // not remembered: the override may be fixed and retried
  CudaApi api;
  api.path = path;
  auto& b = api.bound;
  auto& m = api.missing;
  bool ok = true;
  ok &= Bind(h, {"cuInit"}, &api.init, "cuInit", &b, &m);
  ok &= Bind(h, {"cuDriverGetVersion"}, &api.driverGetVersion, "cuDriverGetVersion", &b, &m);
  ok &= Bind(h, {"cuDeviceGetCount"}, &api.deviceGetCount, "cuDeviceGetCount", &b, &m);
  ok &= Bind(h, {"cuDeviceGet"}, &api.deviceGet, "cuDeviceGet", &b, &m);
  if (!ok) {
    err->code = "SYMBOL_MISSING";
    err->fn = "dlsym";
    err->message = path + " lacks required CUDA entry points:";
    for (const std::string& s : m) err->message += " " + s;
    err->pathsTried.push_back(path);
    dlclose(h);
    return false;
  }
  Bind(h, {"cuDeviceGetName"}, &api.deviceGetName, "cuDeviceGetName", &b, &m);
  Bind(h, {"cuDeviceTotalMem_v2", "cuDeviceTotalMem"}, &api.deviceTotalMem, "cuDeviceTotalMem", &b, &m);
  Bind(h, {"cuDeviceGetUuid_v2", "cuDeviceGetUuid"}, &api.deviceGetUuid, "cuDeviceGetUuid", &b, &m);
  Bind(h, {"cuGetErrorName"}, &api.getErrorName, "cuGetErrorName", &b, &m);
  Bind(h, {"cuGetErrorString"}, &api.getErrorString, "cuGetErrorString", &b, &m);
  g_cuda = std::move(api);
  g_cuda_handle = h;
  CUresult r = g_cuda.init(0);
  if (r != 0) {
    g_cuda_error = CudaError("cuInit", r);
    *err = g_cuda_error;
    return false;
  }
  g_cuda_ready = true;
  return true;
}

const CudaApi& Cuda() { return g_cuda; }

int64_t MonotonicNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000000LL + ts.tv_nsec;
}

}  // namespace llem
