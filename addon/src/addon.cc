// The Node face of the loader, the sampler and the process-tree syscalls. Typed by src/native/native.d.ts; src/native is its
// only importer. Expected absences (no library, unsupported metric) are data, not crashes: errors
// thrown here carry `code`, `fn` and, for loader failures, `pathsTried`.
#include <napi.h>

#include <cmath>
#include <memory>
#include <set>

#include "gpu_api.h"
#include "gpu_settings.h"
#include "process_tree.h"
#include "sampler.h"

namespace llem {
namespace {

class SamplerWrap;

// Per-instance state (main thread and each worker thread load their own instance).
struct AddonData {
  int nvmlRefs = 0;  // NVML references this instance holds through nvmlOpen
  std::set<SamplerWrap*> samplers;
  Napi::FunctionReference samplerCtor;
};

AddonData* Data(Napi::Env env) { return env.GetInstanceData<AddonData>(); }

Napi::Error ToJsError(Napi::Env env, const GpuError& e) {
  Napi::Error err = Napi::Error::New(env, e.message);
  err.Set("code", Napi::String::New(env, e.code));
  err.Set("fn", Napi::String::New(env, e.fn));
  if (!e.pathsTried.empty()) {
    Napi::Array paths = Napi::Array::New(env, e.pathsTried.size());
    for (size_t i = 0; i < e.pathsTried.size(); i++) paths.Set(i, Napi::String::New(env, e.pathsTried[i]));
    err.Set("pathsTried", paths);
  }
  return err;
}

[[noreturn]] void ThrowGpu(Napi::Env env, const GpuError& e) { throw ToJsError(env, e); }

[[noreturn]] void ThrowCode(Napi::Env env, const char* code, const std::string& message) {
  GpuError e;
  e.code = code;
  e.fn = "";
  e.message = message;
  ThrowGpu(env, e);
}

void RequireOpen(Napi::Env env) {
  if (Data(env)->nvmlRefs <= 0) ThrowCode(env, "NOT_OPEN", "NVML is not open: call nvmlOpen() first");
}

Napi::Value NullableNumber(Napi::Env env, double v) {
  return std::isnan(v) ? env.Null() : Napi::Number::New(env, v);
}

nvmlDevice_t HandleAt(Napi::Env env, uint32_t index) {
  nvmlDevice_t h = nullptr;
  nvmlReturn_t r = Nvml().deviceGetHandleByIndex(index, &h);
  if (r != NVML_SUCCESS) ThrowGpu(env, NvmlError("nvmlDeviceGetHandleByIndex", r));
  return h;
}

std::vector<uint32_t> IndexList(Napi::Env env, Napi::Value v) {
  if (!v.IsArray()) ThrowCode(env, "INVALID_ARGUMENT", "expected an array of device indices");
  Napi::Array a = v.As<Napi::Array>();
  std::vector<uint32_t> out;
  for (uint32_t i = 0; i < a.Length(); i++) {
    Napi::Value e = a.Get(i);
    if (!e.IsNumber()) ThrowCode(env, "INVALID_ARGUMENT", "device indices must be numbers");
    out.push_back(e.As<Napi::Number>().Uint32Value());
  }
  return out;
}

Napi::Object ReadingToJs(Napi::Env env, uint32_t index, const Reading& r) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("index", Napi::Number::New(env, index));
  o.Set("t_ns", Napi::BigInt::New(env, static_cast<int64_t>(r.tNs)));
  for (int m = 0; m < kMetricCount; m++) o.Set(kMetricNames[m], NullableNumber(env, r.v[m]));
  if (r.err != NVML_SUCCESS) {
    o.Set("error", ToJsError(env, NvmlError(r.errFn, r.err)).Value());
  } else {
    o.Set("error", env.Null());
  }
  return o;
}

// ---- NVML --------------------------------------------------------------------------------------

// What opening NVML found, gathered without touching JS (so it can run on a pool thread).
struct OpenResult {
  bool ok = false;
  GpuError error;
  std::string driverVersion;  // empty: unknown
  bool hasCuda = false;
  int cudaVersion = 0;
  unsigned int count = 0;
};

// Acquires a reference and reads the system facts; on failure no reference is held.
OpenResult CollectOpen() {
  OpenResult res;
  if (!NvmlAcquire(&res.error)) return res;
  const NvmlApi& api = Nvml();
  char buf[96] = {};
  if (api.systemGetDriverVersion != nullptr && api.systemGetDriverVersion(buf, sizeof buf) == NVML_SUCCESS) {
    res.driverVersion = buf;
  }
  res.hasCuda = api.systemGetCudaDriverVersion != nullptr && api.systemGetCudaDriverVersion(&res.cudaVersion) == NVML_SUCCESS;
  nvmlReturn_t r = api.deviceGetCount(&res.count);
  if (r != NVML_SUCCESS) {
    NvmlRelease();
    res.error = NvmlError("nvmlDeviceGetCount", r);
    return res;
  }
  res.ok = true;
  return res;
}

// Counts the reference for this instance and describes it; throws the failure otherwise.
Napi::Object OpenResultToJs(Napi::Env env, const OpenResult& res) {
  if (!res.ok) ThrowGpu(env, res.error);
  Data(env)->nvmlRefs++;
  const NvmlApi& api = Nvml();
  Napi::Object o = Napi::Object::New(env);
  o.Set("libraryPath", api.path);
  o.Set("driverVersion", res.driverVersion.empty() ? env.Null() : Napi::String::New(env, res.driverVersion));
  o.Set("cudaDriverVersion", res.hasCuda ? Napi::Number::New(env, res.cudaVersion) : env.Null());
  o.Set("deviceCount", res.count);
  Napi::Object bound = Napi::Object::New(env);
  for (const auto& b : api.bound) bound.Set(b.first, b.second);
  o.Set("bound", bound);
  Napi::Array missing = Napi::Array::New(env, api.missing.size());
  for (size_t i = 0; i < api.missing.size(); i++) missing.Set(i, api.missing[i]);
  o.Set("missing", missing);
  return o;
}

Napi::Value NvmlOpen(const Napi::CallbackInfo& info) { return OpenResultToJs(info.Env(), CollectOpen()); }

// nvmlInit takes seconds on a GPU without persistence mode: the parent (TUI) opens off-thread.
class OpenWorker : public Napi::AsyncWorker {
 public:
  explicit OpenWorker(Napi::Env env) : Napi::AsyncWorker(env), deferred_(Napi::Promise::Deferred::New(env)) {}
  Napi::Promise Promise() { return deferred_.Promise(); }
  void Execute() override { res_ = CollectOpen(); }
  void OnOK() override {
    Napi::Env env = Env();
    if (!res_.ok) {
      deferred_.Reject(ToJsError(env, res_.error).Value());
      return;
    }
    deferred_.Resolve(OpenResultToJs(env, res_));
  }

 private:
  Napi::Promise::Deferred deferred_;
  OpenResult res_;
};

Napi::Value NvmlOpenAsync(const Napi::CallbackInfo& info) {
  auto* w = new OpenWorker(info.Env());
  Napi::Promise p = w->Promise();
  w->Queue();
  return p;
}

Napi::Value NvmlClose(const Napi::CallbackInfo& info) {
  AddonData* d = Data(info.Env());
  if (d->nvmlRefs > 0) {
    d->nvmlRefs--;
    NvmlRelease();
  }
  return info.Env().Undefined();
}

Napi::Value NvmlRefCountJs(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), NvmlRefCount());
}

Napi::Value NvmlDeviceInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  RequireOpen(env);
  uint32_t index = info[0].As<Napi::Number>().Uint32Value();
  const NvmlApi& api = Nvml();
  nvmlDevice_t h = HandleAt(env, index);
  Napi::Object o = Napi::Object::New(env);
  o.Set("index", index);
  char buf[128] = {};
  auto str = [&](const char* key, nvmlReturn_t (*fn)(nvmlDevice_t, char*, unsigned int)) {
    buf[0] = '\0';
    if (fn != nullptr && fn(h, buf, sizeof buf) == NVML_SUCCESS) {
      o.Set(key, std::string(buf));
    } else {
      o.Set(key, env.Null());
    }
  };
  str("uuid", api.deviceGetUUID);
  str("name", api.deviceGetName);
  nvmlPciInfo_t pci{};
  if (api.deviceGetPciInfo != nullptr && api.deviceGetPciInfo(h, &pci) == NVML_SUCCESS) {
    o.Set("pciBusId", std::string(pci.busId, strnlen(pci.busId, sizeof pci.busId)));
  } else {
    o.Set("pciBusId", env.Null());
  }
  nvmlMemory_t mem{};
  if (api.deviceGetMemoryInfo != nullptr && api.deviceGetMemoryInfo(h, &mem) == NVML_SUCCESS) {
    o.Set("memoryTotalBytes", static_cast<double>(mem.total));
    o.Set("memoryUsedBytes", static_cast<double>(mem.used));
    o.Set("memoryFreeBytes", static_cast<double>(mem.free));
  } else {
    o.Set("memoryTotalBytes", env.Null());
    o.Set("memoryUsedBytes", env.Null());
    o.Set("memoryFreeBytes", env.Null());
  }
  unsigned int mw = 0;
  o.Set("powerLimitMw", api.deviceGetPowerManagementLimit != nullptr && api.deviceGetPowerManagementLimit(h, &mw) == NVML_SUCCESS
                            ? Napi::Number::New(env, mw)
                            : env.Null());
  o.Set("powerLimitDefaultMw", api.deviceGetPowerManagementDefaultLimit != nullptr &&
                                       api.deviceGetPowerManagementDefaultLimit(h, &mw) == NVML_SUCCESS
                                   ? Napi::Number::New(env, mw)
                                   : env.Null());
  int persistence = 0;
  o.Set("persistenceMode", api.deviceGetPersistenceMode != nullptr && api.deviceGetPersistenceMode(h, &persistence) == NVML_SUCCESS
                               ? Napi::Boolean::New(env, persistence == 1)
                               : env.Null());
  unsigned int migCurrent = 0, migPending = 0;
  o.Set("migMode", api.deviceGetMigMode != nullptr && api.deviceGetMigMode(h, &migCurrent, &migPending) == NVML_SUCCESS
                       ? Napi::Boolean::New(env, migCurrent == 1)
                       : env.Null());
  if (api.deviceGetComputeRunningProcesses != nullptr) {
    // Ask with room for 64; INSUFFICIENT_SIZE means more are running, retry with the count given.
    unsigned int n = 64;
    std::vector<nvmlProcessInfo_t> procs;
    std::vector<nvmlProcessInfo_v1_t> procsV1;
    nvmlReturn_t r = NVML_SUCCESS;
    for (int attempt = 0; attempt < 3; attempt++) {
      procs.assign(n, nvmlProcessInfo_t{});
      procsV1.assign(n, nvmlProcessInfo_v1_t{});
      void* out = api.processInfoIsV1 ? static_cast<void*>(procsV1.data()) : static_cast<void*>(procs.data());
      unsigned int cap = n;
      r = api.deviceGetComputeRunningProcesses(h, &cap, out);
      if (r == NVML_ERROR_INSUFFICIENT_SIZE) {
        n = cap + 16;
        continue;
      }
      n = cap;
      break;
    }
    if (r == NVML_SUCCESS) {
      Napi::Array arr = Napi::Array::New(env, n);
      for (unsigned int i = 0; i < n; i++) {
        unsigned int pid = api.processInfoIsV1 ? procsV1[i].pid : procs[i].pid;
        unsigned long long used = api.processInfoIsV1 ? procsV1[i].usedGpuMemory : procs[i].usedGpuMemory;
        Napi::Object p = Napi::Object::New(env);
        p.Set("pid", pid);
        p.Set("usedMemoryBytes", used == NVML_VALUE_NOT_AVAILABLE ? env.Null() : Napi::Number::New(env, static_cast<double>(used)));
        arr.Set(i, p);
      }
      o.Set("processes", arr);
    } else {
      o.Set("processes", env.Null());
    }
  } else {
    o.Set("processes", env.Null());
  }
  // One read tells which metrics this device supports.
  DeviceProbe probe;
  probe.handle = h;
  Reading reading;
  ReadDevice(&probe, &reading);
  Napi::Object supported = Napi::Object::New(env);
  for (int m = 0; m < kMetricCount; m++) supported.Set(kMetricNames[m], !probe.unsupported[m]);
  o.Set("supported", supported);
  o.Set("reading", ReadingToJs(env, index, reading));
  return o;
}

// { index, uuid, name } only: no metric reads (those belong off the JS thread).
Napi::Value NvmlDeviceIdentity(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  RequireOpen(env);
  uint32_t index = info[0].As<Napi::Number>().Uint32Value();
  const NvmlApi& api = Nvml();
  nvmlDevice_t h = HandleAt(env, index);
  Napi::Object o = Napi::Object::New(env);
  o.Set("index", index);
  char buf[128] = {};
  if (api.deviceGetUUID != nullptr && api.deviceGetUUID(h, buf, sizeof buf) == NVML_SUCCESS) o.Set("uuid", std::string(buf));
  else o.Set("uuid", env.Null());
  buf[0] = '\0';
  if (api.deviceGetName != nullptr && api.deviceGetName(h, buf, sizeof buf) == NVML_SUCCESS) o.Set("name", std::string(buf));
  else o.Set("name", env.Null());
  return o;
}

// uuid (GPU-… or MIG-…) → { index, viaMig } of the physical GPU, or null when no device has it.
Napi::Value NvmlResolveUuid(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  RequireOpen(env);
  std::string uuid = info[0].As<Napi::String>().Utf8Value();
  const NvmlApi& api = Nvml();
  if (api.deviceGetHandleByUUID == nullptr || api.deviceGetIndex == nullptr) {
    ThrowCode(env, "UNSUPPORTED", "this NVML lacks nvmlDeviceGetHandleByUUID/nvmlDeviceGetIndex");
  }
  nvmlDevice_t h = nullptr;
  nvmlReturn_t r = api.deviceGetHandleByUUID(uuid.c_str(), &h);
  if (r == NVML_ERROR_NOT_FOUND || r == 2 /* INVALID_ARGUMENT */) return env.Null();
  if (r != NVML_SUCCESS) ThrowGpu(env, NvmlError("nvmlDeviceGetHandleByUUID", r));
  bool viaMig = false;
  unsigned int index = 0;
  r = api.deviceGetIndex(h, &index);
  if (r != NVML_SUCCESS && api.deviceGetDeviceHandleFromMigDeviceHandle != nullptr) {
    // A MIG device handle: energy and power exist only for the physical GPU that holds it.
    nvmlDevice_t parent = nullptr;
    nvmlReturn_t rp = api.deviceGetDeviceHandleFromMigDeviceHandle(h, &parent);
    if (rp != NVML_SUCCESS) ThrowGpu(env, NvmlError("nvmlDeviceGetDeviceHandleFromMigDeviceHandle", rp));
    viaMig = true;
    r = api.deviceGetIndex(parent, &index);
  }
  if (r != NVML_SUCCESS) ThrowGpu(env, NvmlError("nvmlDeviceGetIndex", r));
  Napi::Object o = Napi::Object::New(env);
  o.Set("index", index);
  o.Set("viaMig", viaMig);
  return o;
}

Napi::Value NvmlRead(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  RequireOpen(env);
  std::vector<uint32_t> indices = IndexList(env, info[0]);
  Napi::Array out = Napi::Array::New(env, indices.size());
  for (size_t i = 0; i < indices.size(); i++) {
    DeviceProbe probe;
    probe.handle = HandleAt(env, indices[i]);
    Reading r;
    ReadDevice(&probe, &r);
    out.Set(i, ReadingToJs(env, indices[i], r));
  }
  return out;
}

// The same reads off the JS thread: a driver call that hangs for seconds must not hold up
// signal handling or the UI.
class ReadWorker : public Napi::AsyncWorker {
 public:
  ReadWorker(Napi::Env env, std::vector<uint32_t> indices)
      : Napi::AsyncWorker(env), deferred_(Napi::Promise::Deferred::New(env)), indices_(std::move(indices)) {
    // Already open (RequireOpen); the extra reference keeps NVML up if nvmlClose comes first.
    holdsNvml_ = NvmlAcquire(&acquireError_);
  }
  ~ReadWorker() override = default;
  Napi::Promise Promise() { return deferred_.Promise(); }

  void Execute() override {
    readings_.resize(indices_.size());
    handleErrors_.assign(indices_.size(), NVML_SUCCESS);
    for (size_t i = 0; i < indices_.size(); i++) {
      DeviceProbe probe;
      nvmlReturn_t r = Nvml().deviceGetHandleByIndex(indices_[i], &probe.handle);
      if (r != NVML_SUCCESS) {
        handleErrors_[i] = r;
        continue;
      }
      ReadDevice(&probe, &readings_[i]);
    }
    if (holdsNvml_) NvmlRelease();
  }
  void OnOK() override {
    Napi::Env env = Env();
    Napi::Array out = Napi::Array::New(env, indices_.size());
    for (size_t i = 0; i < indices_.size(); i++) {
      if (handleErrors_[i] != NVML_SUCCESS) {
        Reading r;
        for (double& v : r.v) v = NAN;
        r.tNs = MonotonicNs();
        r.err = handleErrors_[i];
        r.errFn = "nvmlDeviceGetHandleByIndex";
        out.Set(i, ReadingToJs(env, indices_[i], r));
      } else {
        out.Set(i, ReadingToJs(env, indices_[i], readings_[i]));
      }
    }
    deferred_.Resolve(out);
  }
  void OnError(const Napi::Error& e) override { deferred_.Reject(e.Value()); }

 private:
  Napi::Promise::Deferred deferred_;
  std::vector<uint32_t> indices_;
  std::vector<Reading> readings_;
  std::vector<nvmlReturn_t> handleErrors_;
  GpuError acquireError_;
  bool holdsNvml_ = false;
};

Napi::Value NvmlReadAsync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  RequireOpen(env);
  auto* w = new ReadWorker(env, IndexList(env, info[0]));
  Napi::Promise p = w->Promise();
  w->Queue();
  return p;
}

// ---- GPU settings (power limit, locked clocks) ------------------------------------------------
// Synchronous: called between runs, a handful of calls each; never in a loop on the JS thread.

Napi::Object GpuErrorInfo(Napi::Env env, const GpuError& e) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("code", e.code);
  o.Set("fn", e.fn);
  o.Set("message", e.message);
  return o;
}

uint32_t UintArg(const Napi::CallbackInfo& info, size_t i, const char* what) {
  Napi::Env env = info.Env();
  if (!info[i].IsNumber()) ThrowCode(env, "INVALID_ARGUMENT", std::string(what) + " must be a number");
  double v = info[i].As<Napi::Number>().DoubleValue();
  if (!(v >= 0 && v <= 4294967295.0) || std::floor(v) != v) {
    ThrowCode(env, "INVALID_ARGUMENT", std::string(what) + " must be an integer within 0..2^32-1");
  }
  return static_cast<uint32_t>(v);
}

// { index, powerLimitMw, …, supportedClocks, errors: { field: {code, fn, message} } }: a field the
// GPU or driver cannot report is null and its reason is in `errors`.
Napi::Value NvmlGpuSettings(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  RequireOpen(env);
  uint32_t index = UintArg(info, 0, "device index");
  GpuSettingsState s = ReadGpuSettings(HandleAt(env, index));
  Napi::Object o = Napi::Object::New(env);
  Napi::Object errors = Napi::Object::New(env);
  o.Set("index", index);
  auto value = [&](const char* key, const NvmlValue& v) {
    if (v.ok) {
      o.Set(key, Napi::Number::New(env, v.value));
    } else {
      o.Set(key, env.Null());
      errors.Set(key, GpuErrorInfo(env, v.error));
    }
  };
  value("powerLimitMw", s.powerLimitMw);
  value("powerLimitDefaultMw", s.powerLimitDefaultMw);
  value("enforcedPowerLimitMw", s.enforcedPowerLimitMw);
  value("powerLimitMinMw", s.powerLimitMinMw);
  value("powerLimitMaxMw", s.powerLimitMaxMw);
  value("smClockMhz", s.smClockMhz);
  value("memClockMhz", s.memClockMhz);
  if (s.clocksOk) {
    Napi::Array tables = Napi::Array::New(env, s.clocks.size());
    for (size_t i = 0; i < s.clocks.size(); i++) {
      Napi::Object t = Napi::Object::New(env);
      t.Set("memMhz", s.clocks[i].memMhz);
      Napi::Array sm = Napi::Array::New(env, s.clocks[i].smMhz.size());
      for (size_t k = 0; k < s.clocks[i].smMhz.size(); k++) sm.Set(k, s.clocks[i].smMhz[k]);
      t.Set("smMhz", sm);
      tables.Set(i, t);
    }
    o.Set("supportedClocks", tables);
  } else {
    o.Set("supportedClocks", env.Null());
    errors.Set("supportedClocks", GpuErrorInfo(env, s.clocksError));
  }
  o.Set("errors", errors);
  return o;
}

// One setter on the device named by the first argument; throws the NVML failure.
template <typename Set>
Napi::Value SetOnDevice(const Napi::CallbackInfo& info, Set set) {
  Napi::Env env = info.Env();
  RequireOpen(env);
  nvmlDevice_t h = HandleAt(env, UintArg(info, 0, "device index"));
  GpuError err;
  if (!set(h, &err)) ThrowGpu(env, err);
  return env.Undefined();
}

Napi::Value NvmlSetPowerLimit(const Napi::CallbackInfo& info) {
  uint32_t mw = UintArg(info, 1, "power limit (mW)");
  return SetOnDevice(info, [&](nvmlDevice_t h, GpuError* e) { return SetPowerLimit(h, mw, e); });
}

Napi::Value NvmlSetGpuLockedClocks(const Napi::CallbackInfo& info) {
  uint32_t lo = UintArg(info, 1, "min MHz"), hi = UintArg(info, 2, "max MHz");
  return SetOnDevice(info, [&](nvmlDevice_t h, GpuError* e) { return SetGpuLockedClocks(h, lo, hi, e); });
}

Napi::Value NvmlResetGpuLockedClocks(const Napi::CallbackInfo& info) {
  return SetOnDevice(info, [](nvmlDevice_t h, GpuError* e) { return ResetGpuLockedClocks(h, e); });
}

Napi::Value NvmlSetMemoryLockedClocks(const Napi::CallbackInfo& info) {
  uint32_t lo = UintArg(info, 1, "min MHz"), hi = UintArg(info, 2, "max MHz");
  return SetOnDevice(info, [&](nvmlDevice_t h, GpuError* e) { return SetMemoryLockedClocks(h, lo, hi, e); });
}

Napi::Value NvmlResetMemoryLockedClocks(const Napi::CallbackInfo& info) {
  return SetOnDevice(info, [](nvmlDevice_t h, GpuError* e) { return ResetMemoryLockedClocks(h, e); });
}

void RegisterGpuSettings(Napi::Env env, Napi::Object exports) {
  exports.Set("nvmlGpuSettings", Napi::Function::New(env, NvmlGpuSettings, "nvmlGpuSettings"));
  exports.Set("nvmlSetPowerLimit", Napi::Function::New(env, NvmlSetPowerLimit, "nvmlSetPowerLimit"));
  exports.Set("nvmlSetGpuLockedClocks", Napi::Function::New(env, NvmlSetGpuLockedClocks, "nvmlSetGpuLockedClocks"));
  exports.Set("nvmlResetGpuLockedClocks", Napi::Function::New(env, NvmlResetGpuLockedClocks, "nvmlResetGpuLockedClocks"));
  exports.Set("nvmlSetMemoryLockedClocks", Napi::Function::New(env, NvmlSetMemoryLockedClocks, "nvmlSetMemoryLockedClocks"));
  exports.Set("nvmlResetMemoryLockedClocks", Napi::Function::New(env, NvmlResetMemoryLockedClocks, "nvmlResetMemoryLockedClocks"));
}

// ---- CUDA --------------------------------------------------------------------------------------

Napi::Value CudaProbe(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  GpuError err;
  if (!CudaAcquire(&err)) ThrowGpu(env, err);
  const CudaApi& api = Cuda();
  Napi::Object o = Napi::Object::New(env);
  o.Set("libraryPath", api.path);
  int version = 0;
  CUresult r = api.driverGetVersion(&version);
  o.Set("driverVersion", r == 0 ? Napi::Number::New(env, version) : env.Null());
  int count = 0;
  r = api.deviceGetCount(&count);
  if (r != 0) ThrowGpu(env, CudaError("cuDeviceGetCount", r));
  Napi::Array devices = Napi::Array::New(env, count);
  for (int i = 0; i < count; i++) {
    CUdevice dev = 0;
    r = api.deviceGet(&dev, i);
    if (r != 0) ThrowGpu(env, CudaError("cuDeviceGet", r));
    Napi::Object d = Napi::Object::New(env);
    d.Set("ordinal", i);
    char name[256] = {};
    d.Set("name", api.deviceGetName != nullptr && api.deviceGetName(name, sizeof name, dev) == 0 ? Napi::String::New(env, name)
                                                                                              : env.Null());
    size_t bytes = 0;
    d.Set("totalMemBytes", api.deviceTotalMem != nullptr && api.deviceTotalMem(&bytes, dev) == 0
                               ? Napi::Number::New(env, static_cast<double>(bytes))
                               : env.Null());
    CUuuid u{};
    if (api.deviceGetUuid != nullptr && api.deviceGetUuid(&u, dev) == 0) {
      // Formatted as NVML prints it: GPU-xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx.
      char s[64];
      const unsigned char* b = u.bytes;
      snprintf(s, sizeof s, "GPU-%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1], b[2],
               b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]);
      d.Set("uuid", std::string(s));
    } else {
      d.Set("uuid", env.Null());
    }
    devices.Set(i, d);
  }
  o.Set("devices", devices);
  Napi::Array missing = Napi::Array::New(env, api.missing.size());
  for (size_t i = 0; i < api.missing.size(); i++) missing.Set(i, api.missing[i]);
  o.Set("missing", missing);
  return o;
}

Napi::Value MonotonicNsJs(const Napi::CallbackInfo& info) {
  return Napi::BigInt::New(info.Env(), static_cast<int64_t>(MonotonicNs()));
}

// ---- Process tree (process_tree.h): plain syscalls, no GPU library -------------------------------

[[noreturn]] void ThrowSys(Napi::Env env, const SysError& e, const char* fn) {
  Napi::Error err = Napi::Error::New(env, e.message);
  err.Set("code", Napi::String::New(env, e.code));
  err.Set("fn", Napi::String::New(env, fn));
  throw err;
}

Napi::Value SetChildSubreaperJs(const Napi::CallbackInfo& info) {
  bool on = info.Length() < 1 || info[0].ToBoolean().Value();
  SysError e;
  if (!SetChildSubreaper(on, &e)) ThrowSys(info.Env(), e, "setChildSubreaper");
  return info.Env().Undefined();
}

Napi::Value IsChildSubreaperJs(const Napi::CallbackInfo& info) {
  SysError e;
  int v = GetChildSubreaper(&e);
  if (v < 0) ThrowSys(info.Env(), e, "isChildSubreaper");
  return Napi::Boolean::New(info.Env(), v == 1);
}

Napi::Value HasChildrenJs(const Napi::CallbackInfo& info) {
  SysError e;
  int v = HasChildren(&e);
  if (v < 0) ThrowSys(info.Env(), e, "hasChildren");
  return Napi::Boolean::New(info.Env(), v == 1);
}

Napi::Value ReapChildJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsNumber()) ThrowCode(env, "INVALID_ARGUMENT", "reapChild: expected a pid");
  int pid = info[0].As<Napi::Number>().Int32Value();
  if (pid <= 0) ThrowCode(env, "INVALID_ARGUMENT", "reapChild: pid must be positive");
  SysError e;
  int status = 0;
  switch (ReapChild(pid, &status, &e)) {
    case ReapResult::kReaped:
      return Napi::String::New(env, "reaped");
    case ReapResult::kRunning:
      return Napi::String::New(env, "running");
    case ReapResult::kNotChild:
      if (!e.code.empty()) ThrowSys(env, e, "reapChild");
      return Napi::String::New(env, "not_child");
  }
  return env.Undefined();
}

// ---- Sampler -----------------------------------------------------------------------------------

class StopWorker : public Napi::AsyncWorker {
 public:
  StopWorker(Napi::Env env, std::shared_ptr<Sampler> sampler, bool releaseNvml)
      : Napi::AsyncWorker(env), deferred_(Napi::Promise::Deferred::New(env)), sampler_(std::move(sampler)),
        releaseNvml_(releaseNvml) {}
  Napi::Promise Promise() { return deferred_.Promise(); }
  void Execute() override {
    sampler_->Join();
    if (releaseNvml_) NvmlRelease();
  }
  void OnOK() override { deferred_.Resolve(Env().Undefined()); }

 private:
  Napi::Promise::Deferred deferred_;
  std::shared_ptr<Sampler> sampler_;
  bool releaseNvml_;
};

class SamplerWrap : public Napi::ObjectWrap<SamplerWrap> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "Sampler",
                       {
                           InstanceMethod("start", &SamplerWrap::StartJs),
                           InstanceMethod("drain", &SamplerWrap::DrainJs),
                           InstanceMethod("stop", &SamplerWrap::StopJs),
                           InstanceMethod("stopSync", &SamplerWrap::StopSyncJs),
                           InstanceAccessor("running", &SamplerWrap::RunningJs, nullptr),
                           InstanceAccessor("ticks", &SamplerWrap::TicksJs, nullptr),
                           InstanceAccessor("workNs", &SamplerWrap::WorkNsJs, nullptr),
                       });
  }

  // new Sampler(indices, intervalMs, capacity = 65536)
  explicit SamplerWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<SamplerWrap>(info) {
    Napi::Env env = info.Env();
    RequireOpen(env);
    std::vector<uint32_t> indices = IndexList(env, info[0]);
    if (indices.empty()) ThrowCode(env, "INVALID_ARGUMENT", "a sampler needs at least one device");
    double intervalMs = info[1].IsNumber() ? info[1].As<Napi::Number>().DoubleValue() : 100.0;
    if (!(intervalMs >= 1.0 && intervalMs <= 60000.0)) ThrowCode(env, "INVALID_ARGUMENT", "intervalMs must be within 1..60000");
    double capacity = info[2].IsNumber() ? info[2].As<Napi::Number>().DoubleValue() : 65536.0;
    if (!(capacity >= 1.0 && capacity <= 16777216.0)) ThrowCode(env, "INVALID_ARGUMENT", "capacity must be within 1..2^24");
    std::vector<nvmlDevice_t> handles;
    for (uint32_t i : indices) handles.push_back(HandleAt(env, i));
    sampler_ = std::make_shared<Sampler>(handles, static_cast<int64_t>(intervalMs * 1e6), static_cast<size_t>(capacity));
    Data(env)->samplers.insert(this);
  }

  ~SamplerWrap() override {
    ShutdownNow();
    AddonData* d = Data(Env());
    if (d != nullptr) d->samplers.erase(this);
  }

  // Environment teardown or GC: stop and join here (at most one NVML call's wait).
  void ShutdownNow() {
    if (!sampler_) return;
    sampler_->RequestStop();
    sampler_->Join();
    if (holdsNvml_) {
      holdsNvml_ = false;
      NvmlRelease();
    }
  }

 private:
  Napi::Value StartJs(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (sampler_->Running()) return env.Undefined();
    if (stopping_) ThrowCode(env, "INVALID_STATE", "the sampler is stopping; create a new one");
    GpuError err;
    if (!holdsNvml_) {
      if (!NvmlAcquire(&err)) ThrowGpu(env, err);
      holdsNvml_ = true;
    }
    sampler_->Start();
    return env.Undefined();
  }

  Napi::Value DrainJs(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    std::vector<Sample> samples;
    std::vector<SampleError> errors;
    uint64_t dropped = 0;
    sampler_->Drain(&samples, &errors, &dropped);
    size_t n = samples.size();
    Napi::Object o = Napi::Object::New(env);
    o.Set("count", static_cast<double>(n));
    Napi::ArrayBuffer tBuf = Napi::ArrayBuffer::New(env, n * sizeof(int64_t));
    Napi::ArrayBuffer devBuf = Napi::ArrayBuffer::New(env, n * sizeof(int32_t));
    auto* t = static_cast<int64_t*>(tBuf.Data());
    auto* dev = static_cast<int32_t*>(devBuf.Data());
    std::vector<double*> cols(kMetricCount);
    for (int m = 0; m < kMetricCount; m++) {
      Napi::Float64Array col = Napi::Float64Array::New(env, n);
      cols[m] = col.Data();
      o.Set(kMetricNames[m], col);
    }
    for (size_t i = 0; i < n; i++) {
      t[i] = samples[i].tNs;
      dev[i] = samples[i].device;
      for (int m = 0; m < kMetricCount; m++) cols[m][i] = samples[i].v[m];
    }
    napi_value tArr;
    napi_create_typedarray(env, napi_bigint64_array, n, tBuf, 0, &tArr);
    o.Set("t_ns", Napi::Value(env, tArr));
    o.Set("device", Napi::Int32Array::New(env, n, devBuf, 0));
    Napi::Array errs = Napi::Array::New(env, errors.size());
    for (size_t i = 0; i < errors.size(); i++) {
      Napi::Object e = ToJsError(env, NvmlError(errors[i].fn, errors[i].code)).Value();
      e.Set("device", errors[i].device);
      e.Set("t_ns", Napi::BigInt::New(env, static_cast<int64_t>(errors[i].tNs)));
      errs.Set(i, e);
    }
    o.Set("errors", errs);
    o.Set("dropped", static_cast<double>(dropped));
    return o;
  }

  // Resolves once the thread has exited; the JS thread never waits for an in-flight NVML call.
  Napi::Value StopJs(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    stopping_ = true;
    sampler_->RequestStop();
    auto* w = new StopWorker(env, sampler_, holdsNvml_);
    holdsNvml_ = false;
    Napi::Promise p = w->Promise();
    w->Queue();
    return p;
  }

  Napi::Value StopSyncJs(const Napi::CallbackInfo& info) {
    ShutdownNow();
    return info.Env().Undefined();
  }

  Napi::Value RunningJs(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), sampler_->Running()); }
  Napi::Value TicksJs(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), static_cast<double>(sampler_->Ticks()));
  }

  Napi::Value WorkNsJs(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), static_cast<double>(sampler_->WorkNs()));
  }

  std::shared_ptr<Sampler> sampler_;
  bool holdsNvml_ = false;
  bool stopping_ = false;
};

void Cleanup(AddonData* d) {
  // Copy: ShutdownNow does not erase, but be safe against re-entrancy.
  std::set<SamplerWrap*> samplers = d->samplers;
  for (SamplerWrap* s : samplers) s->ShutdownNow();
  while (d->nvmlRefs > 0) {
    d->nvmlRefs--;
    NvmlRelease();
  }
}

void KeepInstanceData(Napi::Env, AddonData*) {}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  auto* data = new AddonData();
  // Never freed: ObjectWrap finalizers may run after the instance-data finalizer at teardown and
  // still look at the sampler set. One small struct per environment.
  env.SetInstanceData<AddonData, KeepInstanceData>(data);
  env.AddCleanupHook([data]() { Cleanup(data); });
  exports.Set("nvmlOpen", Napi::Function::New(env, NvmlOpen, "nvmlOpen"));
  exports.Set("nvmlOpenAsync", Napi::Function::New(env, NvmlOpenAsync, "nvmlOpenAsync"));
  exports.Set("nvmlClose", Napi::Function::New(env, NvmlClose, "nvmlClose"));
  exports.Set("nvmlRefCount", Napi::Function::New(env, NvmlRefCountJs, "nvmlRefCount"));
  exports.Set("nvmlDeviceInfo", Napi::Function::New(env, NvmlDeviceInfo, "nvmlDeviceInfo"));
  exports.Set("nvmlDeviceIdentity", Napi::Function::New(env, NvmlDeviceIdentity, "nvmlDeviceIdentity"));
  exports.Set("nvmlResolveUuid", Napi::Function::New(env, NvmlResolveUuid, "nvmlResolveUuid"));
  exports.Set("nvmlRead", Napi::Function::New(env, NvmlRead, "nvmlRead"));
  exports.Set("nvmlReadAsync", Napi::Function::New(env, NvmlReadAsync, "nvmlReadAsync"));
  exports.Set("cudaProbe", Napi::Function::New(env, CudaProbe, "cudaProbe"));
  exports.Set("monotonicNs", Napi::Function::New(env, MonotonicNsJs, "monotonicNs"));
  RegisterGpuSettings(env, exports);
  exports.Set("setChildSubreaper", Napi::Function::New(env, SetChildSubreaperJs, "setChildSubreaper"));
  exports.Set("isChildSubreaper", Napi::Function::New(env, IsChildSubreaperJs, "isChildSubreaper"));
  exports.Set("hasChildren", Napi::Function::New(env, HasChildrenJs, "hasChildren"));
  exports.Set("reapChild", Napi::Function::New(env, ReapChildJs, "reapChild"));
  Napi::Function ctor = SamplerWrap::Define(env);
  data->samplerCtor = Napi::Persistent(ctor);
  exports.Set("Sampler", ctor);
  exports.Set("napiVersion", Napi::Number::New(env, NAPI_VERSION));
  return exports;
}

}  // namespace
}  // namespace llem

static Napi::Object InitModule(Napi::Env env, Napi::Object exports) { return llem::Init(env, exports); }

NODE_API_MODULE(llem_native, InitModule)
