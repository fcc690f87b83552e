#include "async_turn.h"

#include <cerrno>

namespace kernel_lock {

AsyncTurn::~AsyncTurn() {
  if (callback_ != nullptr) napi_delete_reference(env_, callback_);
}

int AsyncTurn::Begin(napi_env env, napi_value callback) {
  env_ = env;
  if (napi_create_reference(env, callback, 1, &callback_) != napi_ok) return ENOMEM;
  if (PosixTable::Get().TakeTurn(fd_, this->env(), this)) {
    // Freed since the caller found it taken: ours already.
    {
      std::lock_guard<std::mutex> lock(mutex_);
      state_ = State::kGranted;
    }
    hub_->Post(this);
  }
  return 0;
}

bool AsyncTurn::OnGranted() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    state_ = State::kGranted;
  }
  // The hub outlives every ticket it tracks: at teardown a ticket is
  // withdrawn (under the table mutex, like this call) before the hub goes.
  hub_->Post(this);
  return true;
}

void AsyncTurn::Stop() {
  // Withdraw takes the table mutex: once it succeeds, no grant can come.
  if (!PosixTable::Get().Withdraw(fd_, this)) return;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    state_ = State::kCancelled;
  }
  hub_->Post(this);
}

void AsyncTurn::Deliver(napi_env env, napi_async_context context, napi_value receiver) {
  bool granted;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    granted = state_ == State::kGranted;
    if (granted) state_ = State::kDelivered;
  }
  if (granted) registry_->TurnDelivered(fd_);
  napi_value callback, status, ignored;
  bool ready = napi_get_reference_value(env, callback_, &callback) == napi_ok && callback != nullptr &&
               napi_create_int32(env, granted ? 0 : -1, &status) == napi_ok;
  napi_delete_reference(env, callback_);
  callback_ = nullptr;
  if (!ready) return;
  if (napi_make_callback(env, context, receiver, callback, 1, &status, &ignored) == napi_pending_exception) {
    napi_value error;
    if (napi_get_and_clear_last_exception(env, &error) == napi_ok) napi_fatal_exception(env, error);
  }
}

void AsyncTurn::Abort() {
  State state;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    state = state_;
  }
  if (state == State::kQueued && !PosixTable::Get().Withdraw(fd_, this)) {
    // Granted in the meantime.
    std::lock_guard<std::mutex> lock(mutex_);
    state = state_;
  }
  if (state == State::kGranted) PosixTable::Get().PassTurn(fd_);
}

}  // namespace kernel_lock
