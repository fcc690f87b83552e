#include "waiter.h"

#include <cerrno>
#include <chrono>

namespace kernel_lock {

namespace {
// The thread only makes a few system calls; a small stack keeps hundreds of
// waiters cheap. Sanitizer builds need more room for their own frames.
#if defined(__SANITIZE_ADDRESS__)
constexpr size_t kStackSize = 1 << 20;
#else
constexpr size_t kStackSize = 256 * 1024;
#endif
}  // namespace

Waiter::~Waiter() {
  if (started_ && !joined_) {
    Cancel();
    Join();
  }
}

int Waiter::Start() {
  // Without a signal to interrupt it, a wait could never be cancelled and
  // teardown would hang joining it: refuse to start one.
  if (InterruptSignal() < 0) return ENOTSUP;
  pthread_attr_t attr;
  int err = pthread_attr_init(&attr);
  if (err != 0) return err;
  pthread_attr_setstacksize(&attr, kStackSize);
  err = pthread_create(&thread_, &attr, &Waiter::Run, this);
  pthread_attr_destroy(&attr);
  if (err == 0) started_ = true;
  return err;
}

void* Waiter::Run(void* self) {
  auto* waiter = static_cast<Waiter*>(self);
  // Real-time signals other than ours stay blocked here: this thread must not
  // run handlers that the application meant for its own threads.
  sigset_t all;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, nullptr);
  if (waiter->req_.kind == Kind::kPosix) {
    waiter->result_ = PosixTable::Get().BlockingLock(&waiter->interruptible_, waiter->fd_, waiter->req_, waiter->env_,
                                                     waiter->may_wait_own_);
  } else {
    waiter->result_ = InterruptibleLock(&waiter->interruptible_, waiter->fd_, waiter->req_);
    if (waiter->result_ == 0) waiter->result_ = waiter->AfterGrant();
  }
  {
    std::lock_guard<std::mutex> lock(waiter->mutex_);
    waiter->finished_ = true;
  }
  waiter->OnDone();
  return nullptr;
}

void Waiter::Cancel() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!started_ || finished_) return;
    Interrupt(&interruptible_, thread_);
  }
  // A posix wait may be parked on the table, not in the kernel.
  if (req_.kind == Kind::kPosix) PosixTable::Get().Wake();
}

bool Waiter::Finished() {
  std::lock_guard<std::mutex> lock(mutex_);
  return finished_;
}

void Waiter::Join() {
  if (started_ && !joined_) {
    pthread_join(thread_, nullptr);
    joined_ = true;
  }
}

SyncWaiter::~SyncWaiter() {
  // Join here, before cv_ and mutex_ are destroyed: the base destructor would
  // be too late for OnDone() still touching them.
  Cancel();
  Join();
}

void SyncWaiter::OnDone() {
  std::lock_guard<std::mutex> lock(mutex_);
  done_ = true;
  cv_.notify_all();
}

bool SyncWaiter::WaitFor(double timeout_ms) {
  std::unique_lock<std::mutex> lock(mutex_);
  auto deadline =
      std::chrono::steady_clock::now() + std::chrono::microseconds(static_cast<int64_t>(timeout_ms * 1000.0));
  return cv_.wait_until(lock, deadline, [this] { return done_; });
}

void SyncWaiter::WaitUntilDone() {
  std::unique_lock<std::mutex> lock(mutex_);
  cv_.wait(lock, [this] { return done_; });
}

}  // namespace kernel_lock
