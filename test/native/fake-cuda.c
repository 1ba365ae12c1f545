// A fake libcuda.so.1 for tests (LLEM_CUDA_LIB), reading the same script as fake-nvml.c
// (LLEM_FAKE_GPU_SCRIPT): the devices' uuid, name and mem_total, in script order, plus
//   cuda_init_error <CUresult>   (cuInit fails with that code, e.g. 100 = CUDA_ERROR_NO_DEVICE)
//   cuda_version <n>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EXPORT __attribute__((visibility("default")))
#define MAX_DEV 16

typedef int CUresult;
typedef int CUdevice;
typedef struct { unsigned char bytes[16]; } CUuuid;

static int g_loaded = 0, g_ready = 0, g_ndev = 0, g_init_error = 0, g_version = 12040;
static char g_uuid[MAX_DEV][96], g_name[MAX_DEV][96];
static double g_mem[MAX_DEV];

static void load(void) {
  if (g_loaded) return;
  g_loaded = 1;
  const char* path = getenv("LLEM_FAKE_GPU_SCRIPT");
  FILE* f = path != NULL ? fopen(path, "r") : NULL;
  if (f == NULL) return;
  char line[4096];
  while (fgets(line, sizeof line, f) != NULL) {
    line[strcspn(line, "#\r\n")] = '\0';
    int i = -1, off = 0;
    char field[64] = {0};
    if (sscanf(line, "cuda_init_error %d", &g_init_error) == 1) continue;
    if (sscanf(line, "cuda_version %d", &g_version) == 1) continue;
    if (sscanf(line, "device %d %63s %n", &i, field, &off) < 2 || i < 0 || i >= MAX_DEV) continue;
    if (i + 1 > g_ndev) {
      for (int k = g_ndev; k <= i; k++) {
        snprintf(g_uuid[k], sizeof g_uuid[k], "GPU-00000000-0000-0000-0000-%012d", k);
        snprintf(g_name[k], sizeof g_name[k], "Fake GPU %d", k);
      }
      g_ndev = i + 1;
    }
    if (strcmp(field, "uuid") == 0) snprintf(g_uuid[i], sizeof g_uuid[i], "%s", line + off);
    else if (strcmp(field, "name") == 0) snprintf(g_name[i], sizeof g_name[i], "%s", line + off);
    else if (strcmp(field, "mem_total") == 0) g_mem[i] = strtod(line + off, NULL);
  }
  fclose(f);
}

EXPORT CUresult cuInit(unsigned int flags) {
  (void)flags;
  load();
  if (g_init_error != 0) return g_init_error;
  g_ready = 1;
  return 0;
}

EXPORT CUresult cuDriverGetVersion(int* v) {
  load();
  *v = g_version;
  return 0;
}

EXPORT CUresult cuDeviceGetCount(int* n) {
  if (!g_ready) return 3; /* CUDA_ERROR_NOT_INITIALIZED */
  *n = g_ndev;
  return 0;
}

EXPORT CUresult cuDeviceGet(CUdevice* d, int ordinal) {
  if (!g_ready) return 3;
  if (ordinal < 0 || ordinal >= g_ndev) return 101; /* CUDA_ERROR_INVALID_DEVICE */
  *d = ordinal;
  return 0;
}

EXPORT CUresult cuDeviceGetName(char* buf, int len, CUdevice d) {
  if (d < 0 || d >= g_ndev) return 101;
  snprintf(buf, (size_t)len, "%s", g_name[d]);
  return 0;
}

EXPORT CUresult cuDeviceTotalMem_v2(size_t* bytes, CUdevice d) {
  if (d < 0 || d >= g_ndev) return 101;
  *bytes = (size_t)g_mem[d];
  return 0;
}

EXPORT CUresult cuDeviceGetUuid_v2(CUuuid* u, CUdevice d) {
  if (d < 0 || d >= g_ndev) return 101;
  const char* s = g_uuid[d];
  if (strncmp(s, "GPU-", 4) == 0) s += 4;
  int k = 0;
  for (; *s != '\0' && k < 16; s++) {
    if (*s == '-') continue;
    unsigned int byte = 0;
    if (sscanf(s, "%2x", &byte) != 1) break;
    u->bytes[k++] = (unsigned char)byte;
    s++;
  }
  return 0;
}

EXPORT CUresult cuGetErrorName(CUresult r, const char** s) {
  switch (r) {
    case 0: *s = "CUDA_SUCCESS"; return 0;
    case 3: *s = "CUDA_ERROR_NOT_INITIALIZED"; return 0;
    case 100: *s = "CUDA_ERROR_NO_DEVICE"; return 0;
    case 101: *s = "CUDA_ERROR_INVALID_DEVICE"; return 0;
    default: *s = "CUDA_ERROR_UNKNOWN"; return 0;
  }
}

EXPORT CUresult cuGetErrorString(CUresult r, const char** s) {
  switch (r) {
    case 100: *s = "no CUDA-capable device is detected"; return 0;
    default: return cuGetErrorName(r, s);
  }
}
