// The few NVML and CUDA driver types and entry points llem uses, declared here so that the addon
// builds without CUDA headers (as nvtop does). Layouts follow nvml.h / cuda.h of CUDA 12.
// This file and loader.cc have no Node dependency: a standalone probe can reuse them.
#pragma once

#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

namespace llem {

typedef int nvmlReturn_t;
typedef struct nvmlDevice_st* nvmlDevice_t;

struct nvmlMemory_t {
  unsigned long long total;
  unsigned long long free;
  unsigned long long used;
};
struct nvmlUtilization_t {
  unsigned int gpu;
  unsigned int memory;
};
struct nvmlPciInfo_t {  // nvmlPciInfo_v3
  char busIdLegacy[16];
  unsigned int domain;
  unsigned int bus;
  unsigned int device;
  unsigned int pciDeviceId;
  unsigned int pciSubSystemId;
  char busId[32];
};
struct nvmlProcessInfo_v1_t {
  unsigned int pid;
  unsigned long long usedGpuMemory;
};
struct nvmlProcessInfo_t {  // v2 and v3 share this layout
  unsigned int pid;
  unsigned long long usedGpuMemory;
  unsigned int gpuInstanceId;
  unsigned int computeInstanceId;
};

constexpr nvmlReturn_t NVML_SUCCESS = 0;
constexpr nvmlReturn_t NVML_ERROR_INVALID_ARGUMENT = 2;
constexpr nvmlReturn_t NVML_ERROR_NOT_SUPPORTED = 3;
constexpr nvmlReturn_t NVML_ERROR_NO_PERMISSION = 4;
constexpr nvmlReturn_t NVML_ERROR_NOT_FOUND = 6;
constexpr nvmlReturn_t NVML_ERROR_INSUFFICIENT_SIZE = 7;
constexpr nvmlReturn_t NVML_ERROR_FUNCTION_NOT_FOUND = 13;
constexpr nvmlReturn_t NVML_ERROR_GPU_IS_LOST = 15;
constexpr unsigned int NVML_TEMPERATURE_GPU = 0;
constexpr unsigned int NVML_CLOCK_SM = 1;
constexpr unsigned int NVML_CLOCK_MEM = 2;
constexpr unsigned long long NVML_VALUE_NOT_AVAILABLE = 0xFFFFFFFFFFFFFFFFULL;

// Symbolic name of an NVML return code ("NVML_ERROR_GPU_IS_LOST"), stable across drivers.
const char* NvmlCodeName(nvmlReturn_t r);

struct NvmlApi {
  std::string path;  // the library that was loaded
  // Required.
  nvmlReturn_t (*init)() = nullptr;
  nvmlReturn_t (*shutdown)() = nullptr;
  const char* (*errorString)(nvmlReturn_t) = nullptr;
  nvmlReturn_t (*deviceGetCount)(unsigned int*) = nullptr;
  nvmlReturn_t (*deviceGetHandleByIndex)(unsigned int, nvmlDevice_t*) = nullptr;
  // Optional: absent means that one metric is unsupported.
  nvmlReturn_t (*systemGetDriverVersion)(char*, unsigned int) = nullptr;
  nvmlReturn_t (*systemGetCudaDriverVersion)(int*) = nullptr;
  nvmlReturn_t (*deviceGetHandleByUUID)(const char*, nvmlDevice_t*) = nullptr;
  nvmlReturn_t (*deviceGetDeviceHandleFromMigDeviceHandle)(nvmlDevice_t, nvmlDevice_t*) = nullptr;
  nvmlReturn_t (*deviceGetIndex)(nvmlDevice_t, unsigned int*) = nullptr;
  nvmlReturn_t (*deviceGetUUID)(nvmlDevice_t, char*, unsigned int) = nullptr;
  nvmlReturn_t (*deviceGetName)(nvmlDevice_t, char*, unsigned int) = nullptr;
  nvmlReturn_t (*deviceGetPciInfo)(nvmlDevice_t, nvmlPciInfo_t*) = nullptr;
  nvmlReturn_t (*deviceGetMemoryInfo)(nvmlDevice_t, nvmlMemory_t*) = nullptr;
  nvmlReturn_t (*deviceGetPowerManagementLimit)(nvmlDevice_t, unsigned int*) = nullptr;
  nvmlReturn_t (*deviceGetPowerManagementDefaultLimit)(nvmlDevice_t, unsigned int*) = nullptr;
  nvmlReturn_t (*deviceGetPersistenceMode)(nvmlDevice_t, int*) = nullptr;
  nvmlReturn_t (*deviceGetMigMode)(nvmlDevice_t, unsigned int*, unsigned int*) = nullptr;
  nvmlReturn_t (*deviceGetComputeRunningProcesses)(nvmlDevice_t, unsigned int*, void*) = nullptr;
  bool processInfoIsV1 = false;  // bound the v1 entry point: entries are nvmlProcessInfo_v1_t
  nvmlReturn_t (*deviceGetTotalEnergyConsumption)(nvmlDevice_t, unsigned long long*) = nullptr;
  nvmlReturn_t (*deviceGetPowerUsage)(nvmlDevice_t, unsigned int*) = nullptr;
  nvmlReturn_t (*deviceGetTemperature)(nvmlDevice_t, unsigned int, unsigned int*) = nullptr;
  nvmlReturn_t (*deviceGetClockInfo)(nvmlDevice_t, unsigned int, unsigned int*) = nullptr;
  nvmlReturn_t (*deviceGetUtilizationRates)(nvmlDevice_t, nvmlUtilization_t*) = nullptr;
  nvmlReturn_t (*deviceGetCurrentClocksThrottleReasons)(nvmlDevice_t, unsigned long long*) = nullptr;
  // GPU settings (gpu_settings.cc). Optional: an absent one makes that setting unsupported.
  nvmlReturn_t (*deviceGetPowerManagementLimitConstraints)(nvmlDevice_t, unsigned int*, unsigned int*) = nullptr;
  nvmlReturn_t (*deviceGetEnforcedPowerLimit)(nvmlDevice_t, unsigned int*) = nullptr;
  nvmlReturn_t (*deviceSetPowerManagementLimit)(nvmlDevice_t, unsigned int) = nullptr;
  nvmlReturn_t (*deviceSetGpuLockedClocks)(nvmlDevice_t, unsigned int, unsigned int) = nullptr;
  nvmlReturn_t (*deviceResetGpuLockedClocks)(nvmlDevice_t) = nullptr;
  nvmlReturn_t (*deviceSetMemoryLockedClocks)(nvmlDevice_t, unsigned int, unsigned int) = nullptr;
  nvmlReturn_t (*deviceResetMemoryLockedClocks)(nvmlDevice_t) = nullptr;
  nvmlReturn_t (*deviceGetSupportedMemoryClocks)(nvmlDevice_t, unsigned int*, unsigned int*) = nullptr;
  nvmlReturn_t (*deviceGetSupportedGraphicsClocks)(nvmlDevice_t, unsigned int, unsigned int*, unsigned int*) = nullptr;
  // Which name each entry point was bound to ("nvmlInit_v2"), and which optional ones are absent.
  std::vector<std::pair<std::string, std::string>> bound;
  std::vector<std::string> missing;
};

typedef int CUresult;
typedef int CUdevice;
struct CUuuid {
  unsigned char bytes[16];
};

struct CudaApi {
  std::string path;
  CUresult (*init)(unsigned int) = nullptr;
  CUresult (*driverGetVersion)(int*) = nullptr;
  CUresult (*deviceGetCount)(int*) = nullptr;
  CUresult (*deviceGet)(CUdevice*, int) = nullptr;
  CUresult (*deviceGetName)(char*, int, CUdevice) = nullptr;
  CUresult (*deviceTotalMem)(size_t*, CUdevice) = nullptr;
  CUresult (*deviceGetUuid)(CUuuid*, CUdevice) = nullptr;
  CUresult (*getErrorName)(CUresult, const char**) = nullptr;
  CUresult (*getErrorString)(CUresult, const char**) = nullptr;
  std::vector<std::pair<std::string, std::string>> bound;
  std::vector<std::string> missing;
};

// An error as the JS side sees it: a code ("LIB_NOT_FOUND", "SYMBOL_MISSING",
// "NVML_ERROR_GPU_IS_LOST", "CUDA_ERROR_NO_DEVICE"), the library function involved, a message,
// and for loader failures every path tried.
struct GpuError {
  std::string code;
  std::string fn;
  std::string message;
  std::vector<std::string> pathsTried;
};

// Process-wide, reference-counted NVML: NVML's own state is per process, so every addon instance
// (main thread and workers) shares one count. Acquire loads the library on first use (never
// unloaded: other threads may still hold function pointers) and calls nvmlInit when the count
// goes 0 → 1; Release calls nvmlShutdown when it returns to 0.
bool NvmlAcquire(GpuError* err);
void NvmlRelease();
int NvmlRefCount();
// Valid after a successful NvmlAcquire, until the matching NvmlRelease.
const NvmlApi& Nvml();

// CUDA driver API, loaded and cuInit'ed once per process (there is no cuShutdown).
bool CudaAcquire(GpuError* err);
const CudaApi& Cuda();

GpuError NvmlError(const char* fn, nvmlReturn_t r);
GpuError CudaError(const char* fn, CUresult r);

// CLOCK_MONOTONIC in ns: the clock of Node's process.hrtime.bigint(), so JS can correlate.
int64_t MonotonicNs();

}  // namespace llem
