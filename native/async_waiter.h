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
// Lifetime: the hub owns the waiter from Track() on and deletes it after
// Deliver() (the thread posted it) or Abort() (environment teardown: the
// thread is interrupted and joined first; see wait_hub.h).
#pragma once

#include <node_api.h>

#include <cstdint>
#include <memory>

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
  virtual void Granted(const GrantReport& report) = 0;

 protected:
  ~WaitOwner() = default;
};

class AsyncWaiter final : public Waiter, public Completion {
 public:
  // With `work`, the waiter owns `fd` until it is delivered.
  AsyncWaiter(uint32_t id, WaitHub* hub, WaitOwner* owner, int fd, LockRequest req, EnvId env,
              std::unique_ptr<GrantWork> work);
  ~AsyncWaiter() override;

  // On the JavaScript thread: keeps `callback`, registers the pending wait
  // and starts the thread. Returns 0 or an errno; on failure nothing runs
  // and the caller takes the descriptor back with TakeFd().
  int Begin(napi_env env, napi_value callback);
  int TakeFd() { return owned_.release(); }

  // callback(status, fd): status 0 granted (for a whole acquisition:
  // verified and recorded, the report published), -1 cancelled, -2
  // (kRestart) start over, or an errno; fd is the descriptor the wait ended
  // on, the environment's again.
  void Deliver(napi_env env, napi_async_context context, napi_value receiver) override;
  void Abort() override;
  void Stop() override { Cancel(); }

 protected:
  int AfterGrant() override;
  void OnDone() override;

 private:
  void Report(napi_env env, napi_async_context context, napi_value receiver, int status, int fd);

  WaitHub* const hub_;
  WaitOwner* const owner_;
  const std::unique_ptr<GrantWork> work_;
  UniqueFd owned_;
  PendingWait pending_;
  napi_env env_ = nullptr;
  napi_ref callback_ = nullptr;
};

}  // namespace kernel_lock
