#include "interrupt.h"

#include <cerrno>
#include <mutex>

namespace kernel_lock {

namespace {

// The waiter that owns the current thread. Written by that thread before it
// arms, so the handler never triggers a lazy TLS allocation (which would not
// be async-signal-safe in a dlopen()ed module).
thread_local Interruptible* tls_waiter = nullptr;

int g_signal = -1;

extern "C" void OnInterrupt(int) {
  Interruptible* ctx = tls_waiter;
  // Jump only from inside the armed region: there the thread is either about
  // to enter the kernel or blocked in it, and jumping over the raw syscall
  // stub skips nothing that holds a resource.
  if (ctx != nullptr && ctx->armed && ctx->cancelled.load(std::memory_order_seq_cst)) {
    siglongjmp(ctx->jump, 1);
  }
}

int FindAndInstall() {
#if defined(SIGRTMIN) && defined(SIGRTMAX)
  // Search downward from SIGRTMAX: glibc reserves the lowest real-time
  // signals, and profilers or runtimes that pick one tend to pick low ones.
  for (int sig = SIGRTMAX - 1; sig > SIGRTMIN + 2; --sig) {
#else
  for (int sig : {SIGUSR2}) {
#endif
    struct sigaction current {};
    if (sigaction(sig, nullptr, &current) != 0) continue;
    if (current.sa_handler != SIG_DFL || (current.sa_flags & SA_SIGINFO) != 0) continue;
    struct sigaction action {};
    action.sa_handler = OnInterrupt;
    sigfillset(&action.sa_mask);
    action.sa_flags = 0;  // deliberately no SA_RESTART: the blocked call must return EINTR
    if (sigaction(sig, &action, nullptr) == 0) return sig;
  }
  return -1;
}

// Runs the armed region. Kept in its own non-inlined frame so that no local
// variable of the caller is live across sigsetjmp/siglongjmp.
__attribute__((noinline)) int ArmedLock(Interruptible* ctx, int fd, const LockRequest& req) {
  if (sigsetjmp(ctx->jump, 1) != 0) {
    ctx->armed = 0;
    return kCancelled;
  }
  ctx->armed = 1;
  if (ctx->cancelled.load(std::memory_order_seq_cst)) {
    ctx->armed = 0;
    return kCancelled;
  }
  int err = BlockingLock(fd, req);
  ctx->armed = 0;
  return err;
}

}  // namespace

int InterruptSignal() {
  static std::once_flag once;
  std::call_once(once, [] { g_signal = FindAndInstall(); });
  return g_signal;
}

int InterruptibleLock(Interruptible* ctx, int fd, const LockRequest& req) {
  tls_waiter = ctx;
  if (g_signal > 0) {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, g_signal);
    pthread_sigmask(SIG_UNBLOCK, &set, nullptr);
  }
  int result;
  for (;;) {
    result = ArmedLock(ctx, fd, req);
    // EINTR from an unrelated signal (a profiler, say) is not a cancellation.
    if (result == EINTR && !ctx->cancelled.load()) continue;
    if (result == EINTR) result = kCancelled;
    break;
  }
  tls_waiter = nullptr;
  return result;
}

void Interrupt(Interruptible* ctx, pthread_t thread) {
  ctx->cancelled.store(true, std::memory_order_seq_cst);
  if (g_signal > 0) pthread_kill(thread, g_signal);
}

}  // namespace kernel_lock
