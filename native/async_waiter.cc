#include "async_waiter.h"

#include <cerrno>

namespace kernel_lock {

int AsyncWaiter::Begin(napi_env env, napi_value callback) {
  napi_value name;
  if (napi_create_string_utf8(env, "kernel-lock-wait", NAPI_AUTO_LENGTH, &name) != napi_ok) return ENOMEM;
  if (napi_create_threadsafe_function(env, callback, nullptr, name, 0, 1, this, &AsyncWaiter::Finalize, this,
                                      &AsyncWaiter::CallJs, &tsfn_) != napi_ok) {
    return ENOMEM;
  }
  int err = Start();
  // No thread: drop the only reference; the finalizer deletes the waiter.
  if (err != 0) napi_release_threadsafe_function(tsfn_, napi_tsfn_release);
  return err;
}

void AsyncWaiter::OnDone() {
  // Release only after a successful call: when the TSFN is closing, the
  // call itself already gave up this thread's reference.
  if (napi_call_threadsafe_function(tsfn_, nullptr, napi_tsfn_nonblocking) == napi_ok) {
    napi_release_threadsafe_function(tsfn_, napi_tsfn_release);
  }
}

// On the JavaScript thread, once per wait. env is null while the TSFN is
// being torn down with the environment; the finalizer then cleans up.
void AsyncWaiter::CallJs(napi_env env, napi_value callback, void* context, void*) {
  if (env == nullptr || callback == nullptr) return;
  auto* waiter = static_cast<AsyncWaiter*>(context);
  waiter->Join();  // the thread is past its last TSFN call; this takes microseconds
  if (waiter->registry_ != nullptr) waiter->registry_->Forget(waiter->id_);
  napi_value status, receiver;
  if (napi_create_int32(env, waiter->result(), &status) != napi_ok) return;
  if (napi_get_undefined(env, &receiver) != napi_ok) return;
  // A throwing callback surfaces as an uncaught exception, as for any callback.
  napi_call_function(env, receiver, callback, 1, &status, nullptr);
}

// On the JavaScript thread, right before Node deletes the TSFN: after a
// normal completion, or at environment teardown while the thread may still
// be blocked in the kernel. Either way the thread is stopped and joined here.
void AsyncWaiter::Finalize(napi_env, void* data, void*) {
  auto* waiter = static_cast<AsyncWaiter*>(data);
  waiter->Cancel();
  waiter->Join();
  if (waiter->registry_ != nullptr) waiter->registry_->Forget(waiter->id_);
  delete waiter;
}

}  // namespace kernel_lock
