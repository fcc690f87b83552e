#include "async_waiter.h"

#include <fcntl.h>

#include <cerrno>
#include <cstdio>

namespace kernel_lock {

AsyncWaiter::AsyncWaiter(uint32_t id, WaitHub* hub, WaitOwner* owner, int fd, LockRequest req, EnvId env,
                         std::unique_ptr<GrantWork> work, CloseWatch* watch)
    : Waiter(fd, req, env, /*may_wait_own=*/true),
      Completion(id),
      hub_(hub),
      owner_(owner),
      work_(std::move(work)),
      watch_(work_ != nullptr ? watch : nullptr),
      owned_(work_ != nullptr ? fd : -1) {}

AsyncWaiter::~AsyncWaiter() {
  // Before any member goes: the thread uses them until it is joined.
  Cancel();
  Join();
  StopWatching();
  if (callback_ != nullptr) napi_delete_reference(env_, callback_);
}

bool AsyncWaiter::ClaimFor(Claim side) {
  int expected = kUnclaimed;
  return claim_.compare_exchange_strong(expected, side) || expected == side;
}

void AsyncWaiter::StopWatching() {
  if (wd_ >= 0 && watch_ != nullptr) watch_->Remove(wd_, this);
  wd_ = -1;
}

int AsyncWaiter::Begin(napi_env env, napi_value callback) {
  env_ = env;
  if (napi_create_reference(env, callback, 1, &callback_) != napi_ok) return ENOMEM;
  if (watch_ != nullptr) {
    // The probe: the same inode (whatever the path names by now), through
    // an open file description of its own. Without it, or without a
    // watch, the thread alone serves the wait.
    char path[64];
    std::snprintf(path, sizeof(path), "/proc/self/fd/%d", owned_.get());
    int mode = work_->read_only() ? O_RDONLY : O_RDWR;
    probe_.reset(::open(path, mode | O_CLOEXEC | O_NONBLOCK));  // a magic link: it must be followed
    if (probe_.valid()) wd_ = watch_->Add(probe_.get(), this);
    if (wd_ < 0) probe_.reset();
  }
  // Registered on this thread, before lock() returns: a release made right
  // after it, by any thread of the process, already sees the wait.
  if (work_ != nullptr) pending_.Move(owned_.get());
  int err = Start();
  if (err != 0) {
    pending_.Clear();
    StopWatching();
    probe_.reset();
  }
  return err;
}

// On the waiter thread, the kernel granted the lock on owned_.
int AsyncWaiter::AfterGrant() {
  if (work_ == nullptr) return 0;
  if (!ClaimFor(kByThread)) {
    // The loop took it through the probe (only possible for a shared
    // lock, which both may hold): this one is not needed.
    Unlock(owned_.get(), request());
    return kCancelled;
  }
  if (probe_.valid()) {
    // The fast path is armed, so the loop is probably awake already (the
    // holder's close woke it): post at once and let the loop verify and
    // write the record, rather than make it sleep again while we do.
    verify_on_loop_ = true;
    return 0;
  }
  int result = work_->Run(interruptible(), &owned_, request(), &pending_);
  set_fd(owned_.get());
  return result;
}

// On the waiter thread, its last act.
void AsyncWaiter::OnDone() {
  // Whichever side claims the wait clears its registration: a release of
  // this lock must not count it as still waiting.
  if (work_ == nullptr || ClaimFor(kByThread)) pending_.Clear();
  hub_->Post(this);
}

// On the JavaScript thread, after a close of the watched inode.
void AsyncWaiter::OnClose() {
  if (claim_.load() != kUnclaimed || !probe_.valid()) return;
  if (TryLock(probe_.get(), request()) != 0) return;
  if (!ClaimFor(kByLoop)) {
    Unlock(probe_.get(), request());
    return;
  }
  Cancel();  // the thread stops waiting; the hub joins it when it posts
  StopWatching();
  pending_.Clear();
  int verified = work_->Verify(probe_.get(), request());
  // Replaced while we waited: JavaScript closes the orphan and starts over.
  struct Early {
    AsyncWaiter* self;
    int status;
    int fd;
  } early{this, verified == GrantWork::kReplaced ? kRestart : verified, probe_.release()};
  hub_->WithScope(
      [](napi_env env, napi_async_context context, napi_value receiver, void* data) {
        auto* e = static_cast<Early*>(data);
        e->self->Report(env, context, receiver, e->status, e->fd);
      },
      &early);
}

void AsyncWaiter::Report(napi_env env, napi_async_context context, napi_value receiver, int status, int fd) {
  reported_ = true;
  if (work_ != nullptr) {
    owner_->Adopt(fd);
    if (status == 0) owner_->Granted(work_->report(), claim_.load() == kByLoop);
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
  StopWatching();
  if (reported_ || result() != 0) {
    // Joined before a failure or a cancellation is reported: the caller
    // sees no thread of the wait left. (The thread posted as its last use
    // of this object and is exiting; this takes microseconds.)
    Join();
    if (!reported_) Report(env, context, receiver, result(), work_ != nullptr ? owned_.release() : fd());
    return;
  }
  // A grant is reported first and joined after (before the hub deletes the
  // waiter): joining first would put the loop to sleep until the thread has
  // exited, one more wake-up on the hand-off's critical path.
  int status = 0;
  if (verify_on_loop_) {
    int verified = work_->Verify(owned_.get(), request());
    status = verified == GrantWork::kReplaced ? kRestart : verified;
  }
  Report(env, context, receiver, status, work_ != nullptr ? owned_.release() : fd());
  Join();
}

void AsyncWaiter::Abort() {
  Cancel();
  Join();
  StopWatching();
  // The descriptors it owns are closed with it (releasing any lock granted
  // in the race); the environment's teardown closes the others.
}

}  // namespace kernel_lock
