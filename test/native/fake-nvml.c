// A deterministic fake libnvidia-ml.so.1 for tests, loaded through the addon's real dlopen path
// (LLEM_NVML_LIB). Same signatures as nvml.h. Scripted by the file named in LLEM_FAKE_GPU_SCRIPT
// (re-read at every nvmlInit that takes the init count from 0 to 1). Format, one item per line,
// '#' comments; times in seconds since the script's epoch (epoch_ms, unix ms; default: first init):
//
//   epoch_ms 1732800000000.5        driver_version 550.54.15       cuda_version 12040
//   slow <nvml function name> <ms>  (every call of that function sleeps that long)
//   device <i> uuid GPU-…           device <i> name <rest of line>  device <i> bus_id 00000000:01:00.0
//   device <i> mem_total|mem_used|power_limit_mw|power_limit_default_mw|persistence|mig|sm_clock|
//              mem_clock|util_gpu|util_mem|energy_offset_mj <number>
//   device <i> power <t:mW> <t:mW> …  (piecewise constant; the energy counter is its exact integral)
//   device <i> temp <t:C> …           device <i> throttle <t:bits> …
//   device <i> energy_scale <factor>  (counter = factor × integral: makes counter and power disagree)
//   device <i> energy_unsupported 1   device <i> lost_after_s <t>   device <i> counter_reset_at_s <t>
//   device <i> proc <pid> <bytes>     device <i> mig_uuid MIG-…
// Triggered by files, so a test program can change the GPU at a point of its own run:
//   device <i> energy_fail_file <path> unsupported|error  (while <path> exists the energy counter
//              answers NOT_SUPPORTED, or NVML_ERROR_UNKNOWN)
//   device <i> lost_file <path>       (while <path> exists every call on the device is GPU_IS_LOST)
//   device <i> power_file <path>      (power in mW is the number in <path> when it exists, else the
//              trace; the counter then integrates the power as observed at each energy/power call)
//
// GPU settings (issue 15): the settable state (power limit, locked SM and memory clocks) is a log of
// changes, kept in the file named by `state_file <path>` so that every process that loads this
// script (parent, child, a later resume) sees the same GPU; without it the log lives in memory.
//   state_file <path>                 privileged 0 (every set/reset fails with NO_PERMISSION)
//   device <i> power_limit_min_mw|power_limit_max_mw <number>   (the limit constraints)
//   device <i> enforced_cap_mw <n>    (another limiter: the enforced limit is min(limit, n))
//   device <i> sm_clocks <lowest> <highest> <step>   device <i> mem_clocks <mhz> <mhz> …
//   device <i> clocks_unsupported 1   (locked clocks and supported-clock lists: NOT_SUPPORTED)
//   device <i> locks_ignored 1        (a lock is accepted and logged, but the clocks, and the power,
//              do not follow it: a driver that ignores the lock)
// Reported power = min(scripted load power × clock factor, enforced limit), where the clock factor
// is locked max SM clock / scripted SM clock when that is below 1; the energy counter is the exact
// integral of that, cap changes included.
// LLEM_FAKE_GPU_LOG, when set, gets one line per energy/power call: "fn tid t_s dev value", t_s
// in seconds since the epoch, the exact time the value was computed for.
// Build with -DOMIT_<function> to leave one entry point out of the library.
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define EXPORT __attribute__((visibility("default")))
#define MAX_DEV 16
#define MAX_SEG 64
#define MAX_PROC 16
#define MAX_SLOW 32
#define MAX_CLOCKS 256
#define MAX_EVENTS 4096

typedef int nvmlReturn_t;
typedef struct fake_handle* nvmlDevice_t;
typedef struct { unsigned long long total, free, used; } nvmlMemory_t;
typedef struct { unsigned int gpu, memory; } nvmlUtilization_t;
typedef struct {
  char busIdLegacy[16];
  unsigned int domain, bus, device, pciDeviceId, pciSubSystemId;
  char busId[32];
} nvmlPciInfo_t;
typedef struct {
  unsigned int pid;
  unsigned long long usedGpuMemory;
  unsigned int gpuInstanceId, computeInstanceId;
} nvmlProcessInfo_t;

enum {
  OK = 0, ERR_UNINIT = 1, ERR_ARG = 2, ERR_UNSUPPORTED = 3, ERR_NO_PERMISSION = 4, ERR_NOT_FOUND = 6, ERR_SIZE = 7,
  ERR_LOST = 15, ERR_UNKNOWN = 999,
};

typedef struct { double t; double v; } seg_t;
typedef struct { int n; seg_t s[MAX_SEG]; } trace_t;

typedef struct {
  char uuid[96], name[96], bus_id[32], mig_uuid[96];
  double mem_total, mem_used, power_limit_mw, power_limit_default_mw, persistence, mig, sm_clock, mem_clock,
      util_gpu, util_mem, energy_offset_mj, energy_scale, lost_after_s, counter_reset_at_s;
  int energy_unsupported;
  char energy_fail_file[256], lost_file[256], power_file[256];
  int energy_fail_code;
  // power_file mode: the counter accumulated from observed power (under g_mutex).
  int acc_started;
  double acc_mj, acc_last_t, acc_last_mw;
  trace_t power, temp, throttle;
  int nproc;
  unsigned int proc_pid[MAX_PROC];
  unsigned long long proc_bytes[MAX_PROC];
  // GPU settings: constraints and supported clocks (the settable state is in the change log).
  double power_min_mw, power_max_mw, enforced_cap_mw;
  int clocks_unsupported, locks_ignored;
  int nsm, nmem;
  unsigned int sm_clocks[MAX_CLOCKS], mem_clocks[MAX_CLOCKS];  // descending, as NVML lists them
} device_t;

static struct {
  int ndev;
  device_t dev[MAX_DEV];
  double epoch_s;
  char driver_version[64];
  int cuda_version;
  int nslow;
  char slow_fn[MAX_SLOW][96];
  int slow_ms[MAX_SLOW];
  int unprivileged;
  char state_file[1024];
} S;

static pthread_mutex_t g_mutex = PTHREAD_MUTEX_INITIALIZER;
static int g_init_count = 0;
static FILE* g_log = NULL;
// Handles are pointers into these arrays: GPU handle i, MIG handle i (child of GPU i).
static char g_gpu_handles[MAX_DEV];
static char g_mig_handles[MAX_DEV];

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void parse_trace(trace_t* tr, char* rest) {
  tr->n = 0;
  for (char* tok = strtok(rest, " \t\n"); tok != NULL && tr->n < MAX_SEG; tok = strtok(NULL, " \t\n")) {
    char* colon = strchr(tok, ':');
    if (colon == NULL) continue;
    *colon = '\0';
    tr->s[tr->n].t = strtod(tok, NULL);
    tr->s[tr->n].v = strtod(colon + 1, NULL);  // strtod takes 0x… too (throttle bits)
    tr->n++;
  }
}

static double trace_at(const trace_t* tr, double t) {
  if (tr->n == 0) return 0;
  double v = tr->s[0].v;
  for (int i = 0; i < tr->n && tr->s[i].t <= t; i++) v = tr->s[i].v;
  return v;
}

static void parse_sm_clocks(device_t* d, const char* val) {
  double lo = 0, hi = 0, step = 0;
  if (sscanf(val, "%lf %lf %lf", &lo, &hi, &step) != 3 || step <= 0 || hi < lo) return;
  d->nsm = 0;
  for (double c = hi; c >= lo && d->nsm < MAX_CLOCKS; c -= step) d->sm_clocks[d->nsm++] = (unsigned int)c;
}

static void parse_mem_clocks(device_t* d, char* val) {
  d->nmem = 0;
  for (char* tok = strtok(val, " \t"); tok != NULL && d->nmem < MAX_CLOCKS; tok = strtok(NULL, " \t")) {
    d->mem_clocks[d->nmem++] = (unsigned int)strtoul(tok, NULL, 10);
  }
}

static void reset_settings_log(void);
static int file_exists(const char* path) { return path[0] != '\0' && access(path, F_OK) == 0; }

// Power (mW) at t: the number in power_file when set and readable, else the trace.
static double power_at(const device_t* d, double t) {
  if (d->power_file[0] != '\0') {
    FILE* f = fopen(d->power_file, "r");
    if (f != NULL) {
      double mw = 0;
      int ok = fscanf(f, "%lf", &mw) == 1;
      fclose(f);
      if (ok) return mw;
    }
  }
  return trace_at(&d->power, t);
}

// power_file mode: advance the accumulated counter to t with the power last observed (mJ).
static double power_file_counter(device_t* d, double t) {
  pthread_mutex_lock(&g_mutex);
  if (!d->acc_started) {
    d->acc_started = 1;
    d->acc_mj = 0;
    d->acc_last_t = t;
  } else if (t > d->acc_last_t) {
    d->acc_mj += d->acc_last_mw * (t - d->acc_last_t);
    d->acc_last_t = t;
  }
  d->acc_last_mw = power_at(d, t);
  double v = d->acc_mj;
  pthread_mutex_unlock(&g_mutex);
  return v;
}

static void load_script(void) {
  memset(&S, 0, sizeof S);
  reset_settings_log();
  S.epoch_s = now_s();
  strcpy(S.driver_version, "550.54.15");
  S.cuda_version = 12040;
  const char* path = getenv("LLEM_FAKE_GPU_SCRIPT");
  if (path == NULL) return;
  FILE* f = fopen(path, "r");
  if (f == NULL) return;
  char line[4096];
  while (fgets(line, sizeof line, f) != NULL) {
    char* hash = strchr(line, '#');
    if (hash != NULL) *hash = '\0';
    line[strcspn(line, "\r\n")] = '\0';
    char key[64] = {0};
    int off = 0;
    if (sscanf(line, "%63s %n", key, &off) < 1) continue;
    char* rest = line + off;
    if (strcmp(key, "epoch_ms") == 0) {
      S.epoch_s = strtod(rest, NULL) / 1000.0;
    } else if (strcmp(key, "driver_version") == 0) {
      snprintf(S.driver_version, sizeof S.driver_version, "%s", rest);
    } else if (strcmp(key, "cuda_version") == 0) {
      S.cuda_version = atoi(rest);
    } else if (strcmp(key, "state_file") == 0) {
      snprintf(S.state_file, sizeof S.state_file, "%s", rest);
    } else if (strcmp(key, "privileged") == 0) {
      S.unprivileged = atoi(rest) == 0;
    } else if (strcmp(key, "slow") == 0 && S.nslow < MAX_SLOW) {
      int ms = 0;
      if (sscanf(rest, "%95s %d", S.slow_fn[S.nslow], &ms) == 2) S.slow_ms[S.nslow++] = ms;
    } else if (strcmp(key, "device") == 0) {
      int i = -1, off2 = 0;
      char field[64] = {0};
      if (sscanf(rest, "%d %63s %n", &i, field, &off2) < 2 || i < 0 || i >= MAX_DEV) continue;
      char* val = rest + off2;
      device_t* d = &S.dev[i];
      if (i + 1 > S.ndev) {
        for (int k = S.ndev; k <= i; k++) {
          S.dev[k].energy_scale = 1;
          S.dev[k].lost_after_s = -1;
          S.dev[k].counter_reset_at_s = -1;
          S.dev[k].persistence = 1;
          snprintf(S.dev[k].uuid, sizeof S.dev[k].uuid, "GPU-00000000-0000-0000-0000-%012d", k);
          snprintf(S.dev[k].name, sizeof S.dev[k].name, "Fake GPU %d", k);
          snprintf(S.dev[k].bus_id, sizeof S.dev[k].bus_id, "00000000:%02X:00.0", k + 1);
        }
        S.ndev = i + 1;
      }
      double num = strtod(val, NULL);
      if (strcmp(field, "uuid") == 0) snprintf(d->uuid, sizeof d->uuid, "%s", val);
      else if (strcmp(field, "name") == 0) snprintf(d->name, sizeof d->name, "%s", val);
      else if (strcmp(field, "bus_id") == 0) snprintf(d->bus_id, sizeof d->bus_id, "%s", val);
      else if (strcmp(field, "mig_uuid") == 0) snprintf(d->mig_uuid, sizeof d->mig_uuid, "%s", val);
      else if (strcmp(field, "mem_total") == 0) d->mem_total = num;
      else if (strcmp(field, "mem_used") == 0) d->mem_used = num;
      else if (strcmp(field, "power_limit_mw") == 0) d->power_limit_mw = num;
      else if (strcmp(field, "power_limit_default_mw") == 0) d->power_limit_default_mw = num;
      else if (strcmp(field, "persistence") == 0) d->persistence = num;
      else if (strcmp(field, "mig") == 0) d->mig = num;
      else if (strcmp(field, "sm_clock") == 0) d->sm_clock = num;
      else if (strcmp(field, "mem_clock") == 0) d->mem_clock = num;
      else if (strcmp(field, "util_gpu") == 0) d->util_gpu = num;
      else if (strcmp(field, "util_mem") == 0) d->util_mem = num;
      else if (strcmp(field, "energy_offset_mj") == 0) d->energy_offset_mj = num;
      else if (strcmp(field, "energy_scale") == 0) d->energy_scale = num;
      else if (strcmp(field, "energy_unsupported") == 0) d->energy_unsupported = (int)num;
      else if (strcmp(field, "lost_after_s") == 0) d->lost_after_s = num;
      else if (strcmp(field, "counter_reset_at_s") == 0) d->counter_reset_at_s = num;
      else if (strcmp(field, "power_limit_min_mw") == 0) d->power_min_mw = num;
      else if (strcmp(field, "power_limit_max_mw") == 0) d->power_max_mw = num;
      else if (strcmp(field, "enforced_cap_mw") == 0) d->enforced_cap_mw = num;
      else if (strcmp(field, "clocks_unsupported") == 0) d->clocks_unsupported = (int)num;
      else if (strcmp(field, "locks_ignored") == 0) d->locks_ignored = (int)num;
      else if (strcmp(field, "sm_clocks") == 0) parse_sm_clocks(d, val);
      else if (strcmp(field, "mem_clocks") == 0) parse_mem_clocks(d, val);
      else if (strcmp(field, "lost_file") == 0) snprintf(d->lost_file, sizeof d->lost_file, "%s", val);
      else if (strcmp(field, "power_file") == 0) snprintf(d->power_file, sizeof d->power_file, "%s", val);
      else if (strcmp(field, "energy_fail_file") == 0) {
        char mode[32] = {0};
        if (sscanf(val, "%255s %31s", d->energy_fail_file, mode) >= 1) {
          d->energy_fail_code = strcmp(mode, "error") == 0 ? ERR_UNKNOWN : ERR_UNSUPPORTED;
        }
      }
      else if (strcmp(field, "power") == 0) parse_trace(&d->power, val);
      else if (strcmp(field, "temp") == 0) parse_trace(&d->temp, val);
      else if (strcmp(field, "throttle") == 0) parse_trace(&d->throttle, val);
      else if (strcmp(field, "proc") == 0 && d->nproc < MAX_PROC) {
        unsigned int pid = 0;
        unsigned long long bytes = 0;
        if (sscanf(val, "%u %llu", &pid, &bytes) == 2) {
          d->proc_pid[d->nproc] = pid;
          d->proc_bytes[d->nproc++] = bytes;
        }
      }
    }
  }
  fclose(f);
}

static void maybe_slow(const char* fn) {
  for (int i = 0; i < S.nslow; i++) {
    if (strcmp(S.slow_fn[i], fn) == 0) usleep((useconds_t)S.slow_ms[i] * 1000);
  }
}

// t_s: seconds since the script's epoch, exactly the t the value was computed for.
static void log_call(const char* fn, int dev, double t_s, double value) {
  if (g_log == NULL) return;
  pthread_mutex_lock(&g_mutex);
  fprintf(g_log, "%s %ld %.9f %d %.3f\n", fn, (long)syscall(SYS_gettid), t_s, dev, value);
  fflush(g_log);
  pthread_mutex_unlock(&g_mutex);
}

// Resolves a handle; fails for unknown handles and for GPUs scripted as lost by now.
static nvmlReturn_t dev_of(nvmlDevice_t h, int* out) {
  if (g_init_count == 0) return ERR_UNINIT;
  char* p = (char*)h;
  if (p < g_gpu_handles || p >= g_gpu_handles + S.ndev) return ERR_ARG;
  int i = (int)(p - g_gpu_handles);
  const device_t* d = &S.dev[i];
  if (d->lost_after_s >= 0 && now_s() - S.epoch_s >= d->lost_after_s) return ERR_LOST;
  if (file_exists(d->lost_file)) return ERR_LOST;
  *out = i;
  return OK;
}

#define DEV_OR_RETURN(h, i)          \
  int i = 0;                         \
  {                                  \
    nvmlReturn_t r_ = dev_of(h, &i); \
    if (r_ != OK) return r_;         \
  }

// ---- GPU settings: a change log, in S.state_file when set (shared by processes), else in memory ----

enum { EV_POWER = 0, EV_SM = 1, EV_MEM = 2 };
static const char* const kEventNames[] = {"power_limit_mw", "sm_lock", "mem_lock"};
typedef struct {
  double t;  // unix seconds
  int dev, kind;
  double a, b;  // power: a = mW; locks: a = min, b = max MHz (0 0 = unlocked)
} event_t;

static pthread_mutex_t g_state_mutex = PTHREAD_MUTEX_INITIALIZER;
static struct {
  int n;
  event_t e[MAX_EVENTS];
  long long file_size;  // size of the state file when last read; -1 = not read
} E;

static void reset_settings_log(void) {
  pthread_mutex_lock(&g_state_mutex);
  E.n = 0;
  E.file_size = -1;
  pthread_mutex_unlock(&g_state_mutex);
}

static void parse_event_line(const char* line) {
  event_t ev;
  char kind[32] = {0};
  if (E.n >= MAX_EVENTS || sscanf(line, "%lf %d %31s %lf %lf", &ev.t, &ev.dev, kind, &ev.a, &ev.b) < 4) return;
  ev.kind = -1;
  for (int k = 0; k < 3; k++) {
    if (strcmp(kind, kEventNames[k]) == 0) ev.kind = k;
  }
  if (ev.kind < 0 || ev.dev < 0 || ev.dev >= MAX_DEV) return;
  E.e[E.n++] = ev;
}

// Caller holds g_state_mutex. The file only grows (appends), so a new size means new events.
static void refresh_events_locked(void) {
  if (S.state_file[0] == '\0') return;
  struct stat st;
  long long size = stat(S.state_file, &st) == 0 ? (long long)st.st_size : 0;
  if (size == E.file_size) return;
  E.n = 0;
  E.file_size = size;
  FILE* f = fopen(S.state_file, "r");
  if (f == NULL) return;
  flock(fileno(f), LOCK_SH);
  char line[256];
  while (fgets(line, sizeof line, f) != NULL) parse_event_line(line);
  flock(fileno(f), LOCK_UN);
  fclose(f);
}

static void append_event(int dev, int kind, double a, double b) {
  pthread_mutex_lock(&g_state_mutex);
  char line[256];
  snprintf(line, sizeof line, "%.6f %d %s %.0f %.0f\n", now_s(), dev, kEventNames[kind], a, b);
  if (S.state_file[0] != '\0') {
    int fd = open(S.state_file, O_WRONLY | O_APPEND | O_CREAT, 0644);
    if (fd >= 0) {
      flock(fd, LOCK_EX);
      ssize_t w = write(fd, line, strlen(line));
      (void)w;
      flock(fd, LOCK_UN);
      close(fd);
    }
    refresh_events_locked();
  } else {
    parse_event_line(line);
  }
  pthread_mutex_unlock(&g_state_mutex);
}

typedef struct {
  double limit_mw;  // <= 0: the device has no power limit
  double sm_min, sm_max, mem_min, mem_max;  // 0 0: unlocked
} settings_t;

// The settings in force at t_rel (seconds since the script epoch). Caller holds g_state_mutex.
static settings_t settings_at_locked(int i, double t_rel) {
  settings_t s = {S.dev[i].power_limit_mw, 0, 0, 0, 0};
  for (int k = 0; k < E.n; k++) {
    const event_t* ev = &E.e[k];
    if (ev->dev != i || ev->t - S.epoch_s > t_rel) continue;
    if (ev->kind == EV_POWER) s.limit_mw = ev->a;
    else if (ev->kind == EV_SM) s.sm_min = ev->a, s.sm_max = ev->b;
    else s.mem_min = ev->a, s.mem_max = ev->b;
  }
  return s;
}

static settings_t settings_now(int i) {
  pthread_mutex_lock(&g_state_mutex);
  refresh_events_locked();
  settings_t s = settings_at_locked(i, now_s() - S.epoch_s);
  pthread_mutex_unlock(&g_state_mutex);
  return s;
}

static double enforced_limit(const device_t* d, const settings_t* s) {
  double limit = s->limit_mw;
  if (d->enforced_cap_mw > 0 && (limit <= 0 || d->enforced_cap_mw < limit)) limit = d->enforced_cap_mw;
  return limit;
}

static double clamp_clock(double base, double lo, double hi) {
  if (lo <= 0 && hi <= 0) return base;
  return base < lo ? lo : base > hi ? hi : base;
}

// What the GPU draws at t_rel: the scripted load, slowed by a lower SM clock lock, capped.
static double effective_power_locked(int i, double t_rel) {
  const device_t* d = &S.dev[i];
  settings_t s = settings_at_locked(i, t_rel);
  double p = trace_at(&d->power, t_rel);
  if (!d->locks_ignored && s.sm_max > 0 && d->sm_clock > 0 && s.sm_max < d->sm_clock) p *= s.sm_max / d->sm_clock;
  double limit = enforced_limit(d, &s);
  return limit > 0 && p > limit ? limit : p;
}

static int cmp_double(const void* x, const void* y) {
  double a = *(const double*)x, b = *(const double*)y;
  return a < b ? -1 : a > b;
}

// ∫ from a to b of the effective power (exact: every piece between breakpoints is constant).
static double power_integral(int i, double a, double b) {
  if (b <= a) return 0;
  static double pts[MAX_SEG + MAX_EVENTS + 2];
  pthread_mutex_lock(&g_state_mutex);
  refresh_events_locked();
  int n = 0;
  pts[n++] = a;
  const trace_t* tr = &S.dev[i].power;
  for (int k = 0; k < tr->n; k++) {
    if (tr->s[k].t > a && tr->s[k].t < b) pts[n++] = tr->s[k].t;
  }
  for (int k = 0; k < E.n; k++) {
    double t = E.e[k].t - S.epoch_s;
    if (E.e[k].dev == i && t > a && t < b) pts[n++] = t;
  }
  pts[n++] = b;
  qsort(pts, n, sizeof pts[0], cmp_double);
  double total = 0;
  for (int k = 0; k + 1 < n; k++) {
    if (pts[k + 1] > pts[k]) total += effective_power_locked(i, (pts[k] + pts[k + 1]) / 2) * (pts[k + 1] - pts[k]);
  }
  pthread_mutex_unlock(&g_state_mutex);
  return total;
}

EXPORT nvmlReturn_t nvmlInit_v2(void) {
  pthread_mutex_lock(&g_mutex);
  if (g_init_count++ == 0) {
    load_script();
    const char* log_path = getenv("LLEM_FAKE_GPU_LOG");
    if (g_log != NULL) fclose(g_log);
    g_log = log_path != NULL ? fopen(log_path, "a") : NULL;
  }
  pthread_mutex_unlock(&g_mutex);
  maybe_slow("nvmlInit_v2");
  return OK;
}

EXPORT nvmlReturn_t nvmlInit(void) { return nvmlInit_v2(); }

EXPORT nvmlReturn_t nvmlShutdown(void) {
  pthread_mutex_lock(&g_mutex);
  if (g_init_count == 0) {
    pthread_mutex_unlock(&g_mutex);
    return ERR_UNINIT;
  }
  g_init_count--;
  pthread_mutex_unlock(&g_mutex);
  return OK;
}

EXPORT const char* nvmlErrorString(nvmlReturn_t r) {
  switch (r) {
    case OK: return "Success";
    case ERR_UNINIT: return "Uninitialized";
    case ERR_ARG: return "Invalid Argument";
    case ERR_UNSUPPORTED: return "Not Supported";
    case ERR_NO_PERMISSION: return "Insufficient Permissions";
    case ERR_NOT_FOUND: return "Not Found";
    case ERR_SIZE: return "Insufficient Size";
    case ERR_LOST: return "GPU is lost";
    default: return "Unknown Error";
  }
}

EXPORT nvmlReturn_t nvmlSystemGetDriverVersion(char* buf, unsigned int len) {
  snprintf(buf, len, "%s", S.driver_version);
  return OK;
}

EXPORT nvmlReturn_t nvmlSystemGetCudaDriverVersion_v2(int* v) {
  *v = S.cuda_version;
  return OK;
}

EXPORT nvmlReturn_t nvmlDeviceGetCount_v2(unsigned int* n) {
  if (g_init_count == 0) return ERR_UNINIT;
  maybe_slow("nvmlDeviceGetCount_v2");
  *n = (unsigned int)S.ndev;
  return OK;
}

EXPORT nvmlReturn_t nvmlDeviceGetHandleByIndex_v2(unsigned int i, nvmlDevice_t* h) {
  if (g_init_count == 0) return ERR_UNINIT;
  if (i >= (unsigned int)S.ndev) return ERR_ARG;
  *h = (nvmlDevice_t)&g_gpu_handles[i];
  return OK;
}

EXPORT nvmlReturn_t nvmlDeviceGetHandleByUUID(const char* uuid, nvmlDevice_t* h) {
  if (g_init_count == 0) return ERR_UNINIT;
  for (int i = 0; i < S.ndev; i++) {
    if (strcmp(S.dev[i].uuid, uuid) == 0) {
      *h = (nvmlDevice_t)&g_gpu_handles[i];
      return OK;
    }
    if (S.dev[i].mig_uuid[0] != '\0' && strcmp(S.dev[i].mig_uuid, uuid) == 0) {
      *h = (nvmlDevice_t)&g_mig_handles[i];
      return OK;
    }
  }
  return ERR_NOT_FOUND;
}

EXPORT nvmlReturn_t nvmlDeviceGetDeviceHandleFromMigDeviceHandle(nvmlDevice_t mig, nvmlDevice_t* parent) {
  char* p = (char*)mig;
  if (p < g_mig_handles || p >= g_mig_handles + S.ndev) return ERR_ARG;
  *parent = (nvmlDevice_t)&g_gpu_handles[p - g_mig_handles];
  return OK;
}

EXPORT nvmlReturn_t nvmlDeviceGetIndex(nvmlDevice_t h, unsigned int* index) {
  DEV_OR_RETURN(h, i);
  *index = (unsigned int)i;
  return OK;
}

EXPORT nvmlReturn_t nvmlDeviceGetUUID(nvmlDevice_t h, char* buf, unsigned int len) {
  DEV_OR_RETURN(h, i);
  snprintf(buf, len, "%s", S.dev[i].uuid);
  return OK;
}

EXPORT nvmlReturn_t nvmlDeviceGetName(nvmlDevice_t h, char* buf, unsigned int len) {
  DEV_OR_RETURN(h, i);
  snprintf(buf, len, "%s", S.dev[i].name);
  return OK;
}

EXPORT nvmlReturn_t nvmlDeviceGetPciInfo_v3(nvmlDevice_t h, nvmlPciInfo_t* pci) {
  DEV_OR_RETURN(h, i);
  memset(pci, 0, sizeof *pci);
  snprintf(pci->busId, sizeof pci->busId, "%s", S.dev[i].bus_id);
  pci->bus = (unsigned int)i + 1;
  return OK;
}

EXPORT nvmlReturn_t nvmlDeviceGetMemoryInfo(nvmlDevice_t h, nvmlMemory_t* m) {
  DEV_OR_RETURN(h, i);
  m->total = (unsigned long long)S.dev[i].mem_total;
  m->used = (unsigned long long)S.dev[i].mem_used;
  m->free = m->total > m->used ? m->total - m->used : 0;
  return OK;
}

EXPORT nvmlReturn_t nvmlDeviceGetPowerManagementLimit(nvmlDevice_t h, unsigned int* mw) {
  DEV_OR_RETURN(h, i);
  if (S.dev[i].power_limit_mw <= 0) return ERR_UNSUPPORTED;
  *mw = (unsigned int)settings_now(i).limit_mw;
  return OK;
}

EXPORT nvmlReturn_t nvmlDeviceGetPowerManagementDefaultLimit(nvmlDevice_t h, unsigned int* mw) {
  DEV_OR_RETURN(h, i);
  if (S.dev[i].power_limit_default_mw <= 0) return ERR_UNSUPPORTED;
  *mw = (unsigned int)S.dev[i].power_limit_default_mw;
  return OK;
}

EXPORT nvmlReturn_t nvmlDeviceGetPersistenceMode(nvmlDevice_t h, int* mode) {
  DEV_OR_RETURN(h, i);
  *mode = S.dev[i].persistence != 0 ? 1 : 0;
  return OK;
}

EXPORT nvmlReturn_t nvmlDeviceGetMigMode(nvmlDevice_t h, unsigned int* current, unsigned int* pending) {
  DEV_OR_RETURN(h, i);
  *current = *pending = S.dev[i].mig != 0 ? 1 : 0;
  return OK;
}

EXPORT nvmlReturn_t nvmlDeviceGetComputeRunningProcesses_v3(nvmlDevice_t h, unsigned int* count,
                                                            nvmlProcessInfo_t* infos) {
  DEV_OR_RETURN(h, i);
  const device_t* d = &S.dev[i];
  if (*count < (unsigned int)d->nproc) {
    *count = (unsigned int)d->nproc;
    return ERR_SIZE;
  }
  for (int k = 0; k < d->nproc; k++) {
    infos[k].pid = d->proc_pid[k];
    infos[k].usedGpuMemory = d->proc_bytes[k];
    infos[k].gpuInstanceId = 0xFFFFFFFF;
    infos[k].computeInstanceId = 0xFFFFFFFF;
  }
  *count = (unsigned int)d->nproc;
  return OK;
}

#ifndef OMIT_nvmlDeviceGetTotalEnergyConsumption
EXPORT nvmlReturn_t nvmlDeviceGetTotalEnergyConsumption(nvmlDevice_t h, unsigned long long* mj) {
  DEV_OR_RETURN(h, i);
  maybe_slow("nvmlDeviceGetTotalEnergyConsumption");
  device_t* d = &S.dev[i];
  if (d->energy_unsupported) return ERR_UNSUPPORTED;
  if (file_exists(d->energy_fail_file)) return d->energy_fail_code;
  double now = now_s();
  double t = now - S.epoch_s;
  if (d->power_file[0] != '\0') {
    *mj = (unsigned long long)(d->energy_offset_mj + d->energy_scale * power_file_counter(d, t));
    log_call("nvmlDeviceGetTotalEnergyConsumption", i, t, (double)*mj);
    return OK;
  }
  // mW × s = mJ. After a scripted reset the counter restarts from 0 at that instant.
  double from = 0;
  double offset = d->energy_offset_mj;
  if (d->counter_reset_at_s >= 0 && t >= d->counter_reset_at_s) {
    from = d->counter_reset_at_s;
    offset = 0;
  }
  double value = offset + d->energy_scale * power_integral(i, from, t > from ? t : from);
  *mj = (unsigned long long)value;
  log_call("nvmlDeviceGetTotalEnergyConsumption", i, t, (double)*mj);
  return OK;
}
#endif

#ifndef OMIT_nvmlDeviceGetPowerUsage
EXPORT nvmlReturn_t nvmlDeviceGetPowerUsage(nvmlDevice_t h, unsigned int* mw) {
  DEV_OR_RETURN(h, i);
  maybe_slow("nvmlDeviceGetPowerUsage");
  double now = now_s();
  device_t* d = &S.dev[i];
  if (d->power_file[0] != '\0') {
    // power_file mode (issue 17 fixtures): the file's number is the power; caps do not apply
    power_file_counter(d, now - S.epoch_s);  // the counter sees the change
    *mw = (unsigned int)power_at(d, now - S.epoch_s);
  } else {
    pthread_mutex_lock(&g_state_mutex);
    refresh_events_locked();
    *mw = (unsigned int)effective_power_locked(i, now - S.epoch_s);
    pthread_mutex_unlock(&g_state_mutex);
  }
  log_call("nvmlDeviceGetPowerUsage", i, now - S.epoch_s, *mw);
  return OK;
}
#endif

EXPORT nvmlReturn_t nvmlDeviceGetTemperature(nvmlDevice_t h, unsigned int sensor, unsigned int* c) {
  DEV_OR_RETURN(h, i);
  if (sensor != 0) return ERR_ARG;
  if (S.dev[i].temp.n == 0) return ERR_UNSUPPORTED;
  *c = (unsigned int)trace_at(&S.dev[i].temp, now_s() - S.epoch_s);
  return OK;
}

EXPORT nvmlReturn_t nvmlDeviceGetClockInfo(nvmlDevice_t h, unsigned int type, unsigned int* mhz) {
  DEV_OR_RETURN(h, i);
  settings_t s = settings_now(i);
  if (S.dev[i].locks_ignored) s.sm_min = s.sm_max = s.mem_min = s.mem_max = 0;
  if (type == 1) *mhz = (unsigned int)clamp_clock(S.dev[i].sm_clock, s.sm_min, s.sm_max);
  else if (type == 2) *mhz = (unsigned int)clamp_clock(S.dev[i].mem_clock, s.mem_min, s.mem_max);
  else return ERR_UNSUPPORTED;
  return OK;
}

EXPORT nvmlReturn_t nvmlDeviceGetUtilizationRates(nvmlDevice_t h, nvmlUtilization_t* u) {
  DEV_OR_RETURN(h, i);
  u->gpu = (unsigned int)S.dev[i].util_gpu;
  u->memory = (unsigned int)S.dev[i].util_mem;
  return OK;
}

#ifndef OMIT_nvmlDeviceGetCurrentClocksThrottleReasons
EXPORT nvmlReturn_t nvmlDeviceGetCurrentClocksThrottleReasons(nvmlDevice_t h, unsigned long long* bits) {
  DEV_OR_RETURN(h, i);
  *bits = (unsigned long long)trace_at(&S.dev[i].throttle, now_s() - S.epoch_s);
  return OK;
}
#endif

// ---- GPU settings entry points (nvml.h signatures). Each can be left out with -DOMIT_<name>. ----

static nvmlReturn_t may_set(void) { return S.unprivileged ? ERR_NO_PERMISSION : OK; }

static void power_constraints(const device_t* d, unsigned int* lo, unsigned int* hi) {
  double max = d->power_max_mw > 0 ? d->power_max_mw : (d->power_limit_default_mw > 0 ? d->power_limit_default_mw : d->power_limit_mw);
  *lo = (unsigned int)(d->power_min_mw > 0 ? d->power_min_mw : max / 2);
  *hi = (unsigned int)max;
}

#ifndef OMIT_nvmlDeviceGetPowerManagementLimitConstraints
EXPORT nvmlReturn_t nvmlDeviceGetPowerManagementLimitConstraints(nvmlDevice_t h, unsigned int* minLimit, unsigned int* maxLimit) {
  DEV_OR_RETURN(h, i);
  const device_t* d = &S.dev[i];
  if (minLimit == NULL || maxLimit == NULL) return ERR_ARG;
  if (d->power_limit_mw <= 0) return ERR_UNSUPPORTED;
  power_constraints(d, minLimit, maxLimit);
  return OK;
}
#endif

#ifndef OMIT_nvmlDeviceGetEnforcedPowerLimit
EXPORT nvmlReturn_t nvmlDeviceGetEnforcedPowerLimit(nvmlDevice_t h, unsigned int* limit) {
  DEV_OR_RETURN(h, i);
  if (limit == NULL) return ERR_ARG;
  if (S.dev[i].power_limit_mw <= 0) return ERR_UNSUPPORTED;
  settings_t s = settings_now(i);
  *limit = (unsigned int)enforced_limit(&S.dev[i], &s);
  return OK;
}
#endif

#ifndef OMIT_nvmlDeviceSetPowerManagementLimit
EXPORT nvmlReturn_t nvmlDeviceSetPowerManagementLimit(nvmlDevice_t h, unsigned int limit) {
  DEV_OR_RETURN(h, i);
  if (S.dev[i].power_limit_mw <= 0) return ERR_UNSUPPORTED;
  nvmlReturn_t r = may_set();
  if (r != OK) return r;
  unsigned int lo = 0, hi = 0;
  power_constraints(&S.dev[i], &lo, &hi);
  if (limit < lo || limit > hi) return ERR_ARG;
  append_event(i, EV_POWER, limit, 0);
  return OK;
}
#endif

// The supported clock nearest to mhz (the driver rounds a request to its own steps).
static unsigned int snap_clock(const unsigned int* list, int n, unsigned int mhz) {
  unsigned int best = list[0];
  for (int k = 1; k < n; k++) {
    unsigned int da = list[k] > mhz ? list[k] - mhz : mhz - list[k];
    unsigned int db = best > mhz ? best - mhz : mhz - best;
    if (da < db) best = list[k];
  }
  return best;
}

static nvmlReturn_t set_lock(nvmlDevice_t h, int kind, unsigned int lo, unsigned int hi) {
  DEV_OR_RETURN(h, i);
  const device_t* d = &S.dev[i];
  if (d->clocks_unsupported) return ERR_UNSUPPORTED;
  nvmlReturn_t r = may_set();
  if (r != OK) return r;
  const unsigned int* list = kind == EV_SM ? d->sm_clocks : d->mem_clocks;
  int n = kind == EV_SM ? d->nsm : d->nmem;
  if (n == 0) return ERR_UNSUPPORTED;
  // Lists are descending: list[0] is the highest.
  if (lo > hi || lo < list[n - 1] || hi > list[0]) return ERR_ARG;
  append_event(i, kind, snap_clock(list, n, lo), snap_clock(list, n, hi));
  return OK;
}

static nvmlReturn_t reset_lock(nvmlDevice_t h, int kind) {
  DEV_OR_RETURN(h, i);
  if (S.dev[i].clocks_unsupported) return ERR_UNSUPPORTED;
  nvmlReturn_t r = may_set();
  if (r != OK) return r;
  append_event(i, kind, 0, 0);
  return OK;
}

#ifndef OMIT_nvmlDeviceSetGpuLockedClocks
EXPORT nvmlReturn_t nvmlDeviceSetGpuLockedClocks(nvmlDevice_t h, unsigned int minGpuClockMHz, unsigned int maxGpuClockMHz) {
  return set_lock(h, EV_SM, minGpuClockMHz, maxGpuClockMHz);
}
#endif

#ifndef OMIT_nvmlDeviceResetGpuLockedClocks
EXPORT nvmlReturn_t nvmlDeviceResetGpuLockedClocks(nvmlDevice_t h) { return reset_lock(h, EV_SM); }
#endif

#ifndef OMIT_nvmlDeviceSetMemoryLockedClocks
EXPORT nvmlReturn_t nvmlDeviceSetMemoryLockedClocks(nvmlDevice_t h, unsigned int minMemClockMHz, unsigned int maxMemClockMHz) {
  return set_lock(h, EV_MEM, minMemClockMHz, maxMemClockMHz);
}
#endif

#ifndef OMIT_nvmlDeviceResetMemoryLockedClocks
EXPORT nvmlReturn_t nvmlDeviceResetMemoryLockedClocks(nvmlDevice_t h) { return reset_lock(h, EV_MEM); }
#endif

static nvmlReturn_t copy_clocks(const unsigned int* list, int n, unsigned int* count, unsigned int* clocksMHz) {
  if (count == NULL) return ERR_ARG;
  if (*count < (unsigned int)n || clocksMHz == NULL) {
    *count = (unsigned int)n;
    return ERR_SIZE;
  }
  for (int k = 0; k < n; k++) clocksMHz[k] = list[k];
  *count = (unsigned int)n;
  return OK;
}

#ifndef OMIT_nvmlDeviceGetSupportedMemoryClocks
EXPORT nvmlReturn_t nvmlDeviceGetSupportedMemoryClocks(nvmlDevice_t h, unsigned int* count, unsigned int* clocksMHz) {
  DEV_OR_RETURN(h, i);
  const device_t* d = &S.dev[i];
  if (d->clocks_unsupported || d->nmem == 0) return ERR_UNSUPPORTED;
  return copy_clocks(d->mem_clocks, d->nmem, count, clocksMHz);
}
#endif

#ifndef OMIT_nvmlDeviceGetSupportedGraphicsClocks
EXPORT nvmlReturn_t nvmlDeviceGetSupportedGraphicsClocks(nvmlDevice_t h, unsigned int memoryClockMHz, unsigned int* count,
                                                         unsigned int* clocksMHz) {
  DEV_OR_RETURN(h, i);
  const device_t* d = &S.dev[i];
  if (d->clocks_unsupported || d->nsm == 0) return ERR_UNSUPPORTED;
  int known = 0;
  for (int k = 0; k < d->nmem; k++) known |= d->mem_clocks[k] == memoryClockMHz;
  if (!known) return ERR_NOT_FOUND;
  return copy_clocks(d->sm_clocks, d->nsm, count, clocksMHz);
}
#endif
