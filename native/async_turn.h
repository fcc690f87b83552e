// A JavaScript acquisition queued for the turn on an inode (kind 'posix'),
// behind another acquisition of this process, possibly in another worker.
// Whoever passes the turn on (any thread) grants it; the grant is posted to
// this ticket's environment through its WaitHub, like a finished wait
// (wait_hub.h), and keeps the event loop alive meanwhile.
#pragma once

#include <node_api.h>

#include <cstdint>
#include <mutex>

#include "posix_table.h"
#include "wait_hub.h"

namespace kernel_lock {

// The environment's side: told when a turn has been delivered to
// JavaScript (so it can end that turn at teardown).
class TurnRegistry {
 public:
  virtual void TurnDelivered(int fd) = 0;

 protected:
  ~TurnRegistry() = default;
};

class AsyncTurn final : public TurnTicket, public Completion {
 public:
  AsyncTurn(uint32_t id, WaitHub* hub, TurnRegistry* registry, int fd, EnvId env)
      : TurnTicket(env), Completion(id), hub_(hub), registry_(registry), fd_(fd) {}
  ~AsyncTurn() override;

  // Keeps the callback and queues the ticket (or takes a turn that has
  // become free: it is then posted at once). Returns 0 or an errno; on
  // failure the caller deletes the ticket. The caller tracks it in the hub
  // first: a grant may be posted before Begin() returns.
  int Begin(napi_env env, napi_value callback);

  // callback(status): 0 the turn is ours, -1 withdrawn (Stop()).
  void Deliver(napi_env env, napi_async_context context, napi_value receiver) override;
  // Teardown: a ticket still queued leaves the queue; a turn granted but
  // never delivered is passed on, so a closing worker never strands the
  // other acquirers of the inode.
  void Abort() override;
  // Withdraws the ticket if it is still queued (delivered as -1). A ticket
  // already granted reports 0, and its owner passes the turn on.
  void Stop() override;

 private:
  enum class State { kQueued, kGranted, kDelivered, kCancelled };

  // With the table mutex held, on whichever thread passes the turn.
  bool OnGranted() override;

  WaitHub* const hub_;
  TurnRegistry* const registry_;
  const int fd_;
  napi_env env_ = nullptr;
  napi_ref callback_ = nullptr;
  std::mutex mutex_;
  State state_ = State::kQueued;
};

}  // namespace kernel_lock
