#include "async_waiter.h"

#include <cerrno>

namespace kernel_lock {

AsyncWaiter::AsyncWaiter(uint32_t id, WaitHub* hub, WaitOwner* owner, int fd, LockRequest req, EnvId env,
                         std::unique_ptr<GrantWork> work)
    : Waiter(fd, req, env, /*may_wait_own=*/true),
      Completion(id),
      hub_(hub),
      owner_(owner),
      work_(std::move(work)),
      owned_(work_ != nullptr ? fd : -1) {}

AsyncWaiter::~AsyncWaiter() {
  // Before any member goes: the thread uses them until it is joined.
  Cancel();
  Join();
  if (callback_ != nullptr) napi_delete_reference(env_, callback_);
}

int AsyncWaiter::Begin(napi_env env, napi_value callback) {
  env_ = env;
  if (napi_create_reference(env, callback, 1, &callback_) != napi_ok) return ENOMEM;
  // Registered on this thread, before lock() returns: a release made right
  // after it, by any thread of the process, already sees the wait.
  if (work_ != nullptr) pending_.Set(work_->path());
  int err = Start();
  if (err != 0) pending_.Clear();
  return err;
}

// On the waiter thread, the kernel granted the lock on owned_.
int AsyncWaiter::AfterGrant() {
  if (work_ == nullptr) return 0;
  int result = work_->Run(interruptible(), &owned_, request());
  set_fd(owned_.get());
  return result;
}

// On the waiter thread, its last act.
void AsyncWaiter::OnDone() {
  hub_->Post(this);
}

void AsyncWaiter::Report(napi_env env, napi_async_context context, napi_value receiver, int status, int fd) {
  if (work_ != nullptr) {
    owner_->Adopt(fd);
    if (status == 0) owner_->Granted(work_->report());
  }
  napi_value callback, argv[2], ignored;
  bool ready = napi_get_reference_value(env, callback_, &callback) == napi_ok && callback != nullptr &&
               napi_create_int32(env, status, &argv[0]) == napi_ok && napi_create_int32(env, fd, &argv[1]) == napi_ok;
  napi_delete_reference(env, callback_);
  callback_ = nullptr;
  if (!ready) return;
  // napi_make_callback runs the microtasks the callback queued (the lock()
  // promise's continuation) before it returns, as libuv I/O callbacks do.
  if (napi_make_callback(env, context, receiver, callback, 2, argv, &ignored) == napi_pending_exception) {
    // A throwing callback surfaces as an uncaught exception, as for any callback.
    napi_value error;
    if (napi_get_and_clear_last_exception(env, &error) == napi_ok) napi_fatal_exception(env, error);
  }
}

void AsyncWaiter::Deliver(napi_env env, napi_async_context context, napi_value receiver) {
  // No longer waiting, before JavaScript can release the lock: its release
  // must not count this wait. (Until now a release elsewhere in the process
  // kept the file for it, which is never wrong: the next release unlinks.)
  pending_.Clear();
  int status = result();
  int fd = work_ != nullptr ? owned_.release() : this->fd();
  if (status != 0) {
    // Joined before a failure or a cancellation is reported: the caller
    // sees no thread of the wait left. (The thread posted as its last use
    // of this object and is exiting; this takes microseconds.)
    Join();
    Report(env, context, receiver, status, fd);
    return;
  }
  // A grant is reported first and joined after (before the hub deletes the
  // waiter): joining first would put the loop to sleep until the thread has
  // exited, one more wake-up on the hand-off's critical path.
  Report(env, context, receiver, status, fd);
  Join();
}

void AsyncWaiter::Abort() {
  Cancel();
  Join();
  // The descriptor it owns is closed with it (releasing any lock granted in
  // the race); the environment's teardown closes the others.
}

}  // namespace kernel_lock
