#include "sampler.h"

#include <pthread.h>

#include <chrono>
#include <cmath>
#include <limits>

namespace llem {

const char* const kMetricNames[kMetricCount] = {
    "energy_mj", "power_mw", "temp_c", "sm_clock_mhz", "mem_clock_mhz",
    "util_gpu_pct", "util_mem_pct", "mem_used_bytes", "throttle_reasons",
};

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr size_t kMaxErrors = 256;

// Records r for metric m: value on success, NaN otherwise; returns false when the device is lost
// and the remaining metrics must not be asked.
bool Note(DeviceProbe* p, Reading* out, Metric m, const char* fn, nvmlReturn_t r, double value) {
  if (r == NVML_SUCCESS) {
    out->v[m] = value;
    return true;
  }
  out->v[m] = kNaN;
  if (r == NVML_ERROR_NOT_SUPPORTED || r == NVML_ERROR_FUNCTION_NOT_FOUND) {
    p->unsupported[m] = true;
    return true;
  }
  if (out->err == NVML_SUCCESS) {
    out->err = r;
    out->errFn = fn;
  }
  if (r == NVML_ERROR_GPU_IS_LOST) {
    p->lost = true;
    return false;
  }
  return true;
}

}  // namespace

void ReadDevice(DeviceProbe* p, Reading* out) {
  const NvmlApi& api = Nvml();
  for (double& v : out->v) v = kNaN;
  out->err = NVML_SUCCESS;
  out->errFn = nullptr;
  out->tNs = MonotonicNs();
  if (p->lost) {
    out->err = NVML_ERROR_GPU_IS_LOST;
    out->errFn = "(device lost earlier)";
    return;
  }
  nvmlDevice_t h = p->handle;
  // A missing entry point is the same as NOT_SUPPORTED for that one metric.
  auto want = [&](Metric m, const void* fn) {
    if (fn == nullptr) p->unsupported[m] = true;
    return !p->unsupported[m];
  };
  if (want(kEnergyMj, reinterpret_cast<const void*>(api.deviceGetTotalEnergyConsumption))) {
    unsigned long long mj = 0;
    nvmlReturn_t r = api.deviceGetTotalEnergyConsumption(h, &mj);
    if (!Note(p, out, kEnergyMj, "nvmlDeviceGetTotalEnergyConsumption", r, static_cast<double>(mj))) return;
  }
  if (want(kPowerMw, reinterpret_cast<const void*>(api.deviceGetPowerUsage))) {
    unsigned int mw = 0;
    nvmlReturn_t r = api.deviceGetPowerUsage(h, &mw);
    if (!Note(p, out, kPowerMw, "nvmlDeviceGetPowerUsage", r, mw)) return;
  }
  if (want(kTempC, reinterpret_cast<const void*>(api.deviceGetTemperature))) {
    unsigned int c = 0;
    nvmlReturn_t r = api.deviceGetTemperature(h, NVML_TEMPERATURE_GPU, &c);
    if (!Note(p, out, kTempC, "nvmlDeviceGetTemperature", r, c)) return;
  }
  if (want(kSmClockMhz, reinterpret_cast<const void*>(api.deviceGetClockInfo))) {
    unsigned int mhz = 0;
    nvmlReturn_t r = api.deviceGetClockInfo(h, NVML_CLOCK_SM, &mhz);
    if (!Note(p, out, kSmClockMhz, "nvmlDeviceGetClockInfo", r, mhz)) return;
  }
  if (want(kMemClockMhz, reinterpret_cast<const void*>(api.deviceGetClockInfo))) {
    unsigned int mhz = 0;
    nvmlReturn_t r = api.deviceGetClockInfo(h, NVML_CLOCK_MEM, &mhz);
    if (!Note(p, out, kMemClockMhz, "nvmlDeviceGetClockInfo", r, mhz)) return;
  }
  if (want(kUtilGpuPct, reinterpret_cast<const void*>(api.deviceGetUtilizationRates))) {
    nvmlUtilization_t u{};
    nvmlReturn_t r = api.deviceGetUtilizationRates(h, &u);
    if (!Note(p, out, kUtilGpuPct, "nvmlDeviceGetUtilizationRates", r, u.gpu)) return;
    if (r == NVML_SUCCESS) {
      out->v[kUtilMemPct] = u.memory;
    } else {
      p->unsupported[kUtilMemPct] = p->unsupported[kUtilGpuPct];
    }
  } else {
    p->unsupported[kUtilMemPct] = true;
  }
  if (want(kMemUsedBytes, reinterpret_cast<const void*>(api.deviceGetMemoryInfo))) {
    nvmlMemory_t mem{};
    nvmlReturn_t r = api.deviceGetMemoryInfo(h, &mem);
    if (!Note(p, out, kMemUsedBytes, "nvmlDeviceGetMemoryInfo", r, static_cast<double>(mem.used))) return;
  }
  if (want(kThrottleReasons, reinterpret_cast<const void*>(api.deviceGetCurrentClocksThrottleReasons))) {
    unsigned long long bits = 0;
    nvmlReturn_t r = api.deviceGetCurrentClocksThrottleReasons(h, &bits);
    // The defined reason bits are all below 2^53, so a double holds them exactly.
    if (!Note(p, out, kThrottleReasons, "nvmlDeviceGetCurrentClocksThrottleReasons", r, static_cast<double>(bits))) return;
  }
}

Sampler::Sampler(std::vector<nvmlDevice_t> handles, int64_t intervalNs, size_t capacity)
    : intervalNs_(intervalNs), ring_(capacity > 0 ? capacity : 1) {
  for (nvmlDevice_t h : handles) {
    DeviceProbe p;
    p.handle = h;
    devices_.push_back(p);
  }
}

Sampler::~Sampler() {
  RequestStop();
  Join();
}

void Sampler::Start() {
  std::lock_guard<std::mutex> lock(joinMutex_);
  if (thread_.joinable()) return;
  {
    std::lock_guard<std::mutex> l(mutex_);
    stopRequested_ = false;
  }
  running_ = true;
  thread_ = std::thread(&Sampler::Loop, this);
}

void Sampler::RequestStop() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopRequested_ = true;
  }
  cv_.notify_all();
}

void Sampler::Join() {
  std::lock_guard<std::mutex> lock(joinMutex_);
  if (thread_.joinable()) thread_.join();
  running_ = false;
}

void Sampler::Push(const Sample& s) {
  // Caller holds mutex_. When JS does not drain, the oldest samples go and are counted.
  if (size_ == ring_.size()) {
    ring_[head_] = s;
    head_ = (head_ + 1) % ring_.size();
    dropped_++;
  } else {
    ring_[(head_ + size_) % ring_.size()] = s;
    size_++;
  }
}

void Sampler::Loop() {
  using Clock = std::chrono::steady_clock;
  auto next = Clock::now();
  const auto interval = std::chrono::nanoseconds(intervalNs_);
  std::vector<Reading> readings(devices_.size());
  // Named so that top -H, perf and the benchmark (/proc/self/task/*/comm) can find it.
  pthread_setname_np(pthread_self(), "llem-sampler");
  for (;;) {
    const int64_t workStart = MonotonicNs();
    for (size_t i = 0; i < devices_.size(); i++) ReadDevice(&devices_[i], &readings[i]);
    ticks_++;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      for (size_t i = 0; i < devices_.size(); i++) {
        const Reading& r = readings[i];
        Sample s;
        s.tNs = r.tNs;
        s.device = static_cast<int32_t>(i);
        for (int m = 0; m < kMetricCount; m++) s.v[m] = r.v[m];
        Push(s);
        if (r.err != NVML_SUCCESS && errors_.size() < kMaxErrors) {
          errors_.push_back(SampleError{r.tNs, static_cast<int32_t>(i), r.err, r.errFn});
        }
      }
    }
    workNs_ += static_cast<uint64_t>(MonotonicNs() - workStart);
    next += interval;
    auto now = Clock::now();
    // After a stall (a slow call, a suspended VM) restart the schedule instead of bursting.
    if (next < now) next = now;
    std::unique_lock<std::mutex> lock(mutex_);
    if (cv_.wait_until(lock, next, [this] { return stopRequested_; })) break;
  }
  running_ = false;
}

void Sampler::Drain(std::vector<Sample>* samples, std::vector<SampleError>* errors, uint64_t* dropped) {
  std::lock_guard<std::mutex> lock(mutex_);
  samples->reserve(size_);
  for (size_t i = 0; i < size_; i++) samples->push_back(ring_[(head_ + i) % ring_.size()]);
  head_ = 0;
  size_ = 0;
  *errors = std::move(errors_);
  errors_.clear();
  *dropped = dropped_;
  dropped_ = 0;
}

}  // namespace llem
