// Device reads shared by one-shot reads and the sampler thread, and the sampler itself: a
// std::thread that polls NVML at a fixed interval into a ring buffer that JS drains on demand.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>
#include <vector>

#include "gpu_api.h"

namespace llem {

enum Metric {
  kEnergyMj = 0,
  kPowerMw,
  kTempC,
  kSmClockMhz,
  kMemClockMhz,
  kUtilGpuPct,
  kUtilMemPct,
  kMemUsedBytes,
  kThrottleReasons,
  kMetricCount
};
extern const char* const kMetricNames[kMetricCount];

// One device's handle plus what it has already told us: metrics found unsupported are not asked
// again (each NOT_SUPPORTED round trip costs a driver call), and a lost GPU is not polled again.
struct DeviceProbe {
  nvmlDevice_t handle = nullptr;
  bool unsupported[kMetricCount] = {};
  bool lost = false;
};

struct Reading {
  int64_t tNs = 0;               // taken just before the energy counter read
  double v[kMetricCount];        // NaN: unsupported, or failed (see err)
  nvmlReturn_t err = NVML_SUCCESS;  // first failure other than NOT_SUPPORTED
  const char* errFn = nullptr;
};

void ReadDevice(DeviceProbe* probe, Reading* out);

struct Sample {
  int64_t tNs;
  int32_t device;  // position in the sampler's device list
  double v[kMetricCount];
};

struct SampleError {
  int64_t tNs;
  int32_t device;
  nvmlReturn_t code;
  const char* fn;
};

class Sampler {
 public:
  Sampler(std::vector<nvmlDevice_t> handles, int64_t intervalNs, size_t capacity);
  ~Sampler();
  void Start();
  // Asks the thread to stop; returns at once. Join waits (at most one in-flight NVML call).
  void RequestStop();
  void Join();
  bool Running() const { return running_.load(); }
  // Moves everything buffered since the last drain into the outputs.
  void Drain(std::vector<Sample>* samples, std::vector<SampleError>* errors, uint64_t* dropped);
  uint64_t Ticks() const { return ticks_.load(); }
  // Wall time spent reading devices and buffering (excludes sleeping and wake-up latency).
  uint64_t WorkNs() const { return workNs_.load(); }

 private:
  void Loop();
  void Push(const Sample& s);

  std::vector<DeviceProbe> devices_;
  int64_t intervalNs_;
  std::vector<Sample> ring_;
  size_t head_ = 0;  // index of the oldest sample
  size_t size_ = 0;
  uint64_t dropped_ = 0;
  std::vector<SampleError> errors_;
  std::mutex mutex_;
  std::condition_variable cv_;
  bool stopRequested_ = false;
  std::atomic<bool> running_{false};
  std::atomic<uint64_t> ticks_{0};
  std::atomic<uint64_t> workNs_{0};
  std::thread thread_;
  std::mutex joinMutex_;
};

}  // namespace llem
