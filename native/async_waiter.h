// One contended wait whose result is delivered to JavaScript: a Waiter
// thread plus the thread-safe function it reports through, and the rules
// for which of them lives longest.
#pragma once

#include <node_api.h>

#include <cstdint>

#include "lock_ops.h"
#include "waiter.h"

namespace kernel_lock {

// Whoever keeps the table of pending waits (the addon instance of one
// environment); told when a wait is over so it stops tracking it.
class WaitRegistry {
 public:
  virtual void Forget(uint32_t id) = 0;

 protected:
  ~WaitRegistry() = default;
};

// A wait whose completion is delivered to JavaScript through a thread-safe
// function (one per wait: created only on the contended path, and it keeps
// the event loop alive while the wait is pending, like a timer would).
//
// Lifetime, the subtle part. The thread-safe function (TSFN) holds a
// reference on the napi_env, so at environment teardown (a worker being
// terminated) Node deletes every TSFN first and only then runs the addon's
// destructor. A waiter thread still blocked in the kernel would wake up
// later and call into a TSFN that no longer exists. So the TSFN's own
// finalizer, which Node runs on the JavaScript thread right before deleting
// the TSFN, cancels and joins the thread and then deletes the waiter: no
// thread ever outlives the TSFN it reports to, on every path.
class AsyncWaiter final : public Waiter {
 public:
  AsyncWaiter(WaitRegistry* registry, int fd, LockRequest req, uint32_t id, EnvId env)
      : Waiter(fd, req, env, /*may_wait_own=*/true), registry_(registry), id_(id) {}
  ~AsyncWaiter() override {
    Cancel();
    Join();
  }

  // Creates the TSFN and starts the thread; returns 0 or an errno. On
  // failure no thread runs; whoever owns the waiter then (OwnedByTsfn())
  // deletes it.
  int Begin(napi_env env, napi_value callback);

  // Once a TSFN exists, its finalizer owns (and deletes) the waiter.
  bool OwnedByTsfn() const { return tsfn_ != nullptr; }

  // The registry is going away (defensive: the env reference held by the
  // TSFN makes the TSFN finalizer run first).
  void Detach() { registry_ = nullptr; }

 protected:
  void OnDone() override;

 private:
  static void CallJs(napi_env env, napi_value callback, void* context, void* data);
  static void Finalize(napi_env env, void* data, void* hint);

  WaitRegistry* registry_;
  const uint32_t id_;
  napi_threadsafe_function tsfn_ = nullptr;
};

}  // namespace kernel_lock
