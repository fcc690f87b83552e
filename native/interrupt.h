// Interruptible blocking lock calls.
//
// A waiter thread sleeps inside flock(2)/fcntl(F_*SETLKW) so the kernel wakes
// it the moment the holder releases or dies. To end such a wait early
// (timeout, AbortSignal, worker exit) another thread sends it a real-time
// signal whose handler is installed without SA_RESTART: the system call
// returns EINTR. The signal could also arrive in the instant after the
// waiter checked its cancel flag but before it entered the kernel, and would
// then be lost; the handler closes that window by jumping out of the armed
// region with siglongjmp. docs/DESIGN.md explains the choice.
#pragma once

#include <pthread.h>
#include <setjmp.h>
#include <signal.h>

#include <atomic>

#include "lock_ops.h"

namespace kernel_lock {

// Result of InterruptibleLock when the wait was cancelled.
constexpr int kCancelled = -1;

struct Interruptible {
  std::atomic<bool> cancelled{false};
  volatile sig_atomic_t armed = 0;
  sigjmp_buf jump;
};

// Installs the process-wide handler once; returns the signal number used, or
// -1 when no real-time signal was free (waits then cannot be interrupted and
// the caller reports it).
int InterruptSignal();

// Blocks in the kernel until the lock is granted (0), the wait is cancelled
// (kCancelled), or the call fails (errno). Must run on the thread that
// Interrupt() will target.
int InterruptibleLock(Interruptible* ctx, int fd, const LockRequest& req);

// Requests cancellation and kicks `thread` out of the kernel. Safe to call
// more than once and from any thread.
void Interrupt(Interruptible* ctx, pthread_t thread);

}  // namespace kernel_lock
