// A JavaScript acquisition queued for the turn on an inode (kind 'posix'),
// behind another acquisition of this process, possibly in another worker.
// Whoever passes the turn on (any thread) grants it; the grant is delivered
// to this ticket's environment through a thread-safe function, like a
// finished wait (async_waiter.h), and keeps the event loop alive meanwhile.
#pragma once

#include <node_api.h>

#include <cstdint>
#include <mutex>

#include "posix_table.h"

namespace kernel_lock {

// The environment's side: told when a ticket is over and when a turn has
// been delivered to JavaScript (so it can end that turn at teardown).
class TurnRegistry {
 public:
  virtual void ForgetTicket(uint32_t id) = 0;
  virtual void TurnDelivered(int fd) = 0;

 protected:
  ~TurnRegistry() = default;
};

class AsyncTurn final : public TurnTicket {
 public:
  AsyncTurn(TurnRegistry* registry, int fd, EnvId env, uint32_t id)
      : TurnTicket(env), registry_(registry), fd_(fd), id_(id) {}

  // Creates the thread-safe function and queues the ticket (or takes a
  // turn that has become free: the callback then reports it at once).
  // Returns 0 or an errno; on failure whoever owns the ticket then
  // (OwnedByTsfn()) deletes it.
  int Begin(napi_env env, napi_value callback);
  bool OwnedByTsfn() const { return tsfn_ != nullptr; }

  // Withdraws the ticket if it is still queued: the callback gets -1. A
  // ticket already granted reports 0, and its owner passes the turn on.
  void Cancel();

  // The registry is going away (defensive: TSFN finalizers run first).
  void Detach() { registry_ = nullptr; }

 private:
  enum class State { kQueued, kGranted, kDelivered, kCancelled, kDropped };

  bool OnGranted() override;
  // Hands the result to JavaScript; returns false when the TSFN is closing.
  bool Deliver();
  static void CallJs(napi_env env, napi_value callback, void* context, void* data);
  static void Finalize(napi_env env, void* data, void* hint);

  TurnRegistry* registry_;
  const int fd_;
  const uint32_t id_;
  napi_threadsafe_function tsfn_ = nullptr;
  std::mutex mutex_;
  State state_ = State::kQueued;
};

}  // namespace kernel_lock
