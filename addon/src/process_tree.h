// Process-tree syscalls for the runner's lifecycle invariant (a run ends only when nothing of it is
// left): become a child subreaper, so that orphaned and setsid() descendants are re-parented to us
// instead of init; tell whether we have any child at all; reap one adopted zombie by pid. Plain
// syscalls: no NVML or CUDA library is involved, so they work on any Linux machine.
#pragma once

#include <string>

namespace llem {

struct SysError {
  std::string code;     // e.g. ERRNO_EINVAL, UNSUPPORTED
  std::string message;  // strerror text with the call that failed
};

// prctl(PR_SET_CHILD_SUBREAPER, 1): process-wide; false with err on failure (non-Linux: UNSUPPORTED).
bool SetChildSubreaper(bool on, SysError* err);
// prctl(PR_GET_CHILD_SUBREAPER); -1 with err on failure.
int GetChildSubreaper(SysError* err);
// Whether this process has any child (running, stopped or zombie), without reaping any:
// waitid(P_ALL, WEXITED | WNOHANG | WNOWAIT) fails with ECHILD only when there is none.
// 1 yes, 0 no, -1 with err on another failure.
int HasChildren(SysError* err);

enum class ReapResult { kReaped, kRunning, kNotChild };
// waitpid(pid, WNOHANG) for one pid. Only for processes re-parented to us: a child that libuv
// spawned must be left to libuv, which would otherwise never see it exit.
ReapResult ReapChild(int pid, int* status, SysError* err);

}  // namespace llem
