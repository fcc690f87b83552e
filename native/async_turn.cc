#include "async_turn.h"

#include <cerrno>

namespace kernel_lock {

int AsyncTurn::Begin(napi_env env, napi_value callback) {
  napi_value name;
  if (napi_create_string_utf8(env, "kernel-lock-turn", NAPI_AUTO_LENGTH, &name) != napi_ok) return ENOMEM;
  if (napi_create_threadsafe_function(env, callback, nullptr, name, 0, 1, this, &AsyncTurn::Finalize, this,
                                      &AsyncTurn::CallJs, &tsfn_) != napi_ok) {
    return ENOMEM;
  }
  if (PosixTable::Get().TakeTurn(fd_, this->env(), this)) {
    // Freed since the caller found it taken: ours already.
    {
      std::lock_guard<std::mutex> lock(mutex_);
      state_ = State::kGranted;
    }
    Deliver();
  }
  return 0;
}

bool AsyncTurn::Deliver() {
  // Release only after a successful call: when the TSFN is closing, the
  // call itself already gave up this reference.
  if (napi_call_threadsafe_function(tsfn_, nullptr, napi_tsfn_nonblocking) != napi_ok) return false;
  napi_release_threadsafe_function(tsfn_, napi_tsfn_release);
  return true;
}

// With the table mutex held, on whichever thread passes the turn.
bool AsyncTurn::OnGranted() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    state_ = State::kGranted;
  }
  if (Deliver()) return true;
  std::lock_guard<std::mutex> lock(mutex_);
  state_ = State::kDropped;
  return false;
}

void AsyncTurn::Cancel() {
  // Withdraw takes the table mutex: once it succeeds, no grant can come.
  if (!PosixTable::Get().Withdraw(fd_, this)) return;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    state_ = State::kCancelled;
  }
  Deliver();
}

// On the JavaScript thread, once. env is null while the TSFN is torn down
// with the environment; the finalizer then cleans up.
void AsyncTurn::CallJs(napi_env env, napi_value callback, void* context, void*) {
  if (env == nullptr || callback == nullptr) return;
  auto* ticket = static_cast<AsyncTurn*>(context);
  bool granted;
  {
    std::lock_guard<std::mutex> lock(ticket->mutex_);
    granted = ticket->state_ == State::kGranted;
    if (granted) ticket->state_ = State::kDelivered;
  }
  if (ticket->registry_ != nullptr) {
    if (granted) ticket->registry_->TurnDelivered(ticket->fd_);
    ticket->registry_->ForgetTicket(ticket->id_);
  }
  napi_value status, receiver;
  if (napi_create_int32(env, granted ? 0 : -1, &status) != napi_ok) return;
  if (napi_get_undefined(env, &receiver) != napi_ok) return;
  napi_call_function(env, receiver, callback, 1, &status, nullptr);
}

// On the JavaScript thread, right before Node deletes the TSFN: after the
// callback ran, or at environment teardown. A ticket still queued leaves
// the queue; a turn granted but never delivered is passed on, so a closing
// worker never strands the other acquirers of the inode.
void AsyncTurn::Finalize(napi_env, void* data, void*) {
  auto* ticket = static_cast<AsyncTurn*>(data);
  State state;
  {
    std::lock_guard<std::mutex> lock(ticket->mutex_);
    state = ticket->state_;
  }
  if (state == State::kQueued && !PosixTable::Get().Withdraw(ticket->fd_, ticket)) {
    // Granted in the meantime.
    std::lock_guard<std::mutex> lock(ticket->mutex_);
    state = ticket->state_;
  }
  if (state == State::kGranted) PosixTable::Get().PassTurn(ticket->fd_);
  if (ticket->registry_ != nullptr) ticket->registry_->ForgetTicket(ticket->id_);
  delete ticket;
}

}  // namespace kernel_lock
