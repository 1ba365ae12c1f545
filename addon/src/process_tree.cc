#include "process_tree.h"

#include <cerrno>
#include <cstring>

#ifdef __linux__
#include <sys/prctl.h>
#include <sys/types.h>
#include <sys/wait.h>
#endif

namespace llem {
namespace {

void Fail(SysError* err, const char* call, int e) {
  if (!err) return;
  const char* name = e == EINVAL ? "EINVAL" : e == EPERM ? "EPERM" : e == ECHILD ? "ECHILD" : e == ENOSYS ? "ENOSYS" : nullptr;
  err->code = name ? std::string("ERRNO_") + name : "ERRNO_" + std::to_string(e);
  err->message = std::string(call) + ": " + std::strerror(e);
}

#ifndef __linux__
void Unsupported(SysError* err, const char* call) {
  if (!err) return;
  err->code = "UNSUPPORTED";
  err->message = std::string(call) + " needs Linux";
}
#endif

}  // namespace

bool SetChildSubreaper(bool on, SysError* err) {
#ifdef __linux__
  if (prctl(PR_SET_CHILD_SUBREAPER, on ? 1UL : 0UL, 0UL, 0UL, 0UL) == 0) return true;
  Fail(err, "prctl(PR_SET_CHILD_SUBREAPER)", errno);
  return false;
#else
  Unsupported(err, "prctl(PR_SET_CHILD_SUBREAPER)");
  return false;
#endif
}

int GetChildSubreaper(SysError* err) {
#ifdef __linux__
  int value = 0;
  if (prctl(PR_GET_CHILD_SUBREAPER, reinterpret_cast<unsigned long>(&value), 0UL, 0UL, 0UL) == 0) return value ? 1 : 0;
  Fail(err, "prctl(PR_GET_CHILD_SUBREAPER)", errno);
  return -1;
#else
  Unsupported(err, "prctl(PR_GET_CHILD_SUBREAPER)");
  return -1;
#endif
}

int HasChildren(SysError* err) {
#ifdef __linux__
  siginfo_t info;
  for (;;) {
    std::memset(&info, 0, sizeof info);
    if (waitid(P_ALL, 0, &info, WEXITED | WNOHANG | WNOWAIT) == 0) return 1;
    if (errno == EINTR) continue;
    if (errno == ECHILD) return 0;
    Fail(err, "waitid(P_ALL)", errno);
    return -1;
  }
#else
  Unsupported(err, "waitid(P_ALL)");
  return -1;
#endif
}

ReapResult ReapChild(int pid, int* status, SysError* err) {
#ifdef __linux__
  for (;;) {
    int st = 0;
    pid_t r = waitpid(static_cast<pid_t>(pid), &st, WNOHANG);
    if (r == pid) {
      if (status) *status = st;
      return ReapResult::kReaped;
    }
    if (r == 0) return ReapResult::kRunning;
    if (errno == EINTR) continue;
    if (errno != ECHILD) Fail(err, "waitpid", errno);
    return ReapResult::kNotChild;
  }
#else
  Unsupported(err, "waitpid");
  return ReapResult::kNotChild;
#endif
}

}  // namespace llem
