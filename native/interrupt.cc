#include "interrupt.h"

#include <cerrno>
#include <mutex>

namespace kernel_lock {

namespace {

// The waiter that owns the current thread. initial-exec on glibc: there, in
// a dlopen()ed module the default TLS model may allocate lazily on a thread's
// first access, which is not async-signal-safe, and the handler can run on
// any thread that receives a process-directed copy of the signal. Not on musl
// (Linux without __GLIBC__): its dlopen() refuses a module with initial-exec
// TLS ("initial-exec TLS resolves to dynamic definition"), and it allocates
// every module's TLS eagerly, so the default model is signal-safe there.
#if defined(__linux__) && !defined(__GLIBC__)
#define KERNEL_LOCK_SIGNAL_SAFE_TLS
#else
#define KERNEL_LOCK_SIGNAL_SAFE_TLS __attribute__((tls_model("initial-exec")))
#endif
KERNEL_LOCK_SIGNAL_SAFE_TLS thread_local Interruptible* tls_waiter = nullptr;

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
  sigset_t ours;
  sigemptyset(&ours);
  if (g_signal > 0) sigaddset(&ours, g_signal);
  pthread_sigmask(SIG_UNBLOCK, &ours, nullptr);
  int result;
  for (;;) {
    result = ArmedLock(ctx, fd, req);
    // EINTR from an unrelated signal (a profiler, say) is not a cancellation.
    if (result == EINTR && !ctx->cancelled.load()) continue;
    if (result == EINTR) result = kCancelled;
    break;
  }
  // A cancellation that arrives from here on must not interrupt the
  // thread's remaining calls (the grant's file operations, mutexes, the
  // hub's eventfd write): keep it pending. When the thread waits again for
  // the same wait (grant.h), the cancelled flag ends that wait at once; when
  // it runs another wait (a parked thread, waiter_threads.h), the pending
  // signal is delivered as it is unblocked, before that wait is armed, and
  // the handler ignores it.
  pthread_sigmask(SIG_BLOCK, &ours, nullptr);
  tls_waiter = nullptr;
  return result;
}

void Interrupt(Interruptible* ctx, pthread_t thread) {
  ctx->cancelled.store(true, std::memory_order_seq_cst);
  if (g_signal > 0) pthread_kill(thread, g_signal);
}

}  // namespace kernel_lock
