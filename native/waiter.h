// One contended wait: a thread of its own that sleeps in the kernel until the
// lock is granted, the wait is cancelled, or the call fails. Never a libuv
// threadpool thread: a pool thread parked in flock(2) would starve every
// fs.* call in the process (four waiters fill the default pool). The thread
// comes from WaiterThreads (parked between waits, waiter_threads.h).
#pragma once

#include <pthread.h>

#include <condition_variable>
#include <mutex>

#include "interrupt.h"
#include "lock_ops.h"
#include "posix_table.h"
#include "waiter_threads.h"

namespace kernel_lock {

class Waiter : public ThreadJob {
 public:
  // `env` is the environment the wait belongs to; `may_wait_own` says
  // whether that environment's thread stays free while it waits (an async
  // wait) or is the one blocked on it (lockSync). Both matter only to posix
  // waits (see PosixTable::BlockingLock).
  Waiter(int fd, LockRequest req, EnvId env = 0, bool may_wait_own = false)
      : fd_(fd), req_(req), env_(env), may_wait_own_(may_wait_own) {}
  Waiter(const Waiter&) = delete;
  Waiter& operator=(const Waiter&) = delete;
  // Joins the wait if it is still running, so no thread uses a gone Waiter.
  virtual ~Waiter();

  // Starts the wait on a waiter thread. Returns 0 or an errno (EAGAIN when
  // the system is out of threads, ENOTSUP when no real-time signal was free
  // to interrupt it); on failure nothing was started.
  int Start();
  void Cancel();
  // Returns once the thread is done with this waiter (it may then park and
  // run other waits: "joined" is the wait's end, not the thread's).
  void Join();
  bool Finished();
  // 0 granted, kCancelled, or an errno (or what AfterGrant() returned).
  // Valid once finished.
  int result() const { return result_; }
  // The descriptor waited on (AfterGrant() may move the wait to another).
  int fd() const { return fd_; }
  const LockRequest& request() const { return req_; }

 protected:
  // Called on the waiter thread when the kernel granted a flock or OFD
  // lock; its return value becomes result(). It may wait again, through
  // interruptible(), on another descriptor (then set_fd()).
  virtual int AfterGrant() { return 0; }
  // Called on the waiter thread after result() is set; the last thing the
  // thread does with this object.
  virtual void OnDone() = 0;
  Interruptible* interruptible() { return &interruptible_; }
  void set_fd(int fd) { fd_ = fd; }

 private:
  void RunOnThread() override;

  int fd_;
  const LockRequest req_;
  const EnvId env_;
  const bool may_wait_own_;
  Interruptible interruptible_;
  pthread_t thread_{};
  bool started_ = false;
  bool joined_ = false;
  int result_ = 0;
  std::mutex mutex_;
  std::condition_variable released_cv_;
  bool finished_ = false;
  bool released_ = false;
};

// A wait the calling thread blocks on with a deadline (lockSync).
class SyncWaiter final : public Waiter {
 public:
  using Waiter::Waiter;
  ~SyncWaiter() override;
  // Waits up to timeout_ms; returns true when the thread finished in time.
  bool WaitFor(double timeout_ms);
  void WaitUntilDone();

 protected:
  void OnDone() override;

 private:
  std::mutex mutex_;
  std::condition_variable cv_;
  bool done_ = false;
};

}  // namespace kernel_lock
