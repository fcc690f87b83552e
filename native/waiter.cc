#include "waiter.h"

#include <cerrno>
#include <chrono>

namespace kernel_lock {

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
  int err = WaiterThreads::Get().Run(this, &thread_);
  if (err == 0) started_ = true;
  return err;
}

// On a waiter thread, whose signals are all blocked (waiter_threads.cc).
void Waiter::RunOnThread() {
  if (req_.kind == Kind::kPosix) {
    result_ = PosixTable::Get().BlockingLock(&interruptible_, fd_, req_, env_, may_wait_own_);
  } else {
    result_ = InterruptibleLock(&interruptible_, fd_, req_);
    if (result_ == 0) result_ = AfterGrant();
  }
  {
    std::lock_guard<std::mutex> lock(mutex_);
    finished_ = true;
  }
  OnDone();
  // The last touch: Join() may return, and the waiter be deleted, as soon
  // as the mutex is released. Notified with it held for that reason.
  std::lock_guard<std::mutex> lock(mutex_);
  released_ = true;
  released_cv_.notify_all();
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
    std::unique_lock<std::mutex> lock(mutex_);
    released_cv_.wait(lock, [this] { return released_; });
    joined_ = true;
    WaiterThreads::Get().Joined();
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
