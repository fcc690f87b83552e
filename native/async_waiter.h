// One contended wait whose result is delivered to JavaScript: a Waiter
// thread that posts itself to the environment's WaitHub when it is done.
//
// A whole acquisition (kinds flock and ofd) hands its descriptor to the
// waiter for the duration of the wait, with a GrantWork: on the grant the
// thread verifies the path, writes the owner record and, when the file was
// replaced, reopens and waits again (grant.h), all before JavaScript runs.
// The descriptor comes back to the environment when the wait is delivered.
// Plain waits (a lease's, a posix acquisition's) leave the descriptor with
// the caller.
//
// The fast path (close_watch.h). A whole acquisition also opens a second
// descriptor of the same inode, its own open file description (the
// "probe"), and watches the inode for closes. When a holder closes it, the
// event loop tries the lock through the probe while the thread, woken by
// the same release, retries through its own descriptor. The two are
// different lock owners, so the kernel grants at most one of them (an
// exclusive lock); `claim_` decides which side delivers in every case
// (shared locks may both be granted: the loser unlocks). When the loop
// wins, the wait is delivered at once and the thread, interrupted, ends on
// its own; the hub joins and deletes it when it posts.
//
// Lifetime: the hub owns the waiter from Track() on and deletes it after
// the thread posted and Deliver() ran (or Abort(), at environment teardown:
// the thread is interrupted and joined first; see wait_hub.h).
#pragma once

#include <node_api.h>

#include <atomic>
#include <cstdint>
#include <memory>

#include "close_watch.h"
#include "grant.h"
#include "lock_ops.h"
#include "pending_waits.h"
#include "unique_fd.h"
#include "wait_hub.h"
#include "waiter.h"

namespace kernel_lock {

// The environment's side of a wait.
class WaitOwner {
 public:
  // A descriptor the waiter owned comes back to the environment.
  virtual void Adopt(int fd) = 0;
  // A whole acquisition was granted: publish the report (out slots).
  // `by_loop`: the fast path took it, not the waiter thread.
  virtual void Granted(const GrantReport& report, bool by_loop) = 0;

 protected:
  ~WaitOwner() = default;
};

class AsyncWaiter final : public Waiter, public Completion, public CloseListener {
 public:
  // With `work`, the waiter owns `fd` until it is delivered; with `watch`
  // as well, it takes the fast path when it can.
  AsyncWaiter(uint32_t id, WaitHub* hub, WaitOwner* owner, int fd, LockRequest req, EnvId env,
              std::unique_ptr<GrantWork> work, CloseWatch* watch);
  ~AsyncWaiter() override;

  // On the JavaScript thread: keeps `callback`, registers the pending wait
  // and starts the thread. Returns 0 or an errno; on failure nothing runs
  // and the caller takes the descriptor back with TakeFd().
  int Begin(napi_env env, napi_value callback);
  int TakeFd() { return owned_.release(); }

  // callback(status, fd): status 0 granted (for a whole acquisition:
  // verified and recorded, the report published), -1 cancelled, -2
  // (kRestart) start over, or an errno; fd is the descriptor the wait ended
  // on, the environment's again. Called by the hub once the thread posted;
  // when the loop took the grant first, the callback ran already.
  void Deliver(napi_env env, napi_async_context context, napi_value receiver) override;
  void Abort() override;
  void Stop() override { Cancel(); }

  // The fast path (on the JavaScript thread).
  void OnClose() override;
  void WatchLost() override { wd_ = -1; }

 protected:
  int AfterGrant() override;
  void OnDone() override;

 private:
  enum Claim : int { kUnclaimed = 0, kByThread = 1, kByLoop = 2 };
  bool ClaimFor(Claim side);
  void StopWatching();
  void Report(napi_env env, napi_async_context context, napi_value receiver, int status, int fd);

  WaitHub* const hub_;
  WaitOwner* const owner_;
  const std::unique_ptr<GrantWork> work_;
  CloseWatch* const watch_;
  UniqueFd owned_;
  UniqueFd probe_;
  int wd_ = -1;
  std::atomic<int> claim_{kUnclaimed};
  bool reported_ = false;
  // The thread left the verification and the record to the loop.
  bool verify_on_loop_ = false;
  PendingWait pending_;
  napi_env env_ = nullptr;
  napi_ref callback_ = nullptr;
};

}  // namespace kernel_lock
