// KernelLockAddon (addon.h), kind 'posix': acquisitions through the
// process-wide table (posix_table.h), which keeps classic POSIX locks, owned
// by the process, from being dropped by another descriptor's close.
#include "addon.h"

namespace kernel_lock {

void KernelLockAddon::EndTurn(int fd) {
  posix_turns_.erase(fd);
  PosixTable::Get().PassTurn(fd);
}

void KernelLockAddon::LeaveEntry(int fd) {
  auto found = posix_joins_.find(fd);
  if (found != posix_joins_.end() && --found->second == 0) posix_joins_.erase(found);
  PosixTable::Get().Leave(fd);
}

Napi::Value KernelLockAddon::PosixAcquire(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  char path[kPathBuffer];
  if (!ReadPath(info[0], path, sizeof(path))) return env.Undefined();
  auto [flags, req] = LockArgsAt(info, 1);
  bool keep = (flags & kKeepOnBusy) != 0;
  PosixTable& table = PosixTable::Get();
  for (int attempt = 0; attempt < kMaxVerifyAttempts; ++attempt) {
    OpenResult opened;
    struct stat st;
    int fd = table.Join(path, &opened, &st);
    if (fd < 0) return ThrowOpen(env, opened);
    ++posix_joins_[fd];
    SetOut(kOutDev, static_cast<double>(st.st_dev));
    SetOut(kOutIno, static_cast<double>(st.st_ino));
    SetOut(kOutReadOnly, ReadOnlyOut(opened));
    if (!table.TakeTurn(fd, env_id_, nullptr)) {
      if (!keep) {
        LeaveEntry(fd);
        return Napi::Number::New(env, -1);
      }
      SetOut(kOutTurn, 0);
      return Napi::Number::New(env, -(fd + 2.0));
    }
    posix_turns_.insert(fd);
    int err = table.TryLock(fd, req);
    if (err == EWOULDBLOCK && keep) {
      SetOut(kOutTurn, 1);
      return Napi::Number::New(env, -(fd + 2.0));
    }
    if (err != 0) {
      EndTurn(fd);
      LeaveEntry(fd);
      if (err == EWOULDBLOCK) return Napi::Number::New(env, -1);
      return ThrowErrno(env, err, "fcntl");
    }
    bool same = false;
    struct stat locked;
    err = PathNamesFd(fd, path, &same, &locked);
    if (err != 0 || !same) {
      // Unlinked or replaced under us: the lock guards nothing.
      Unlock(fd, req);
      EndTurn(fd);
      LeaveEntry(fd);
      if (err != 0) return ThrowErrno(env, err, "lstat");
      continue;
    }
    SetOut(kOutDev, static_cast<double>(locked.st_dev));
    SetOut(kOutIno, static_cast<double>(locked.st_ino));
    WriteOwnerRecord(info[4], fd, req, opened.read_only, locked.st_size);
    table.Settle(fd);
    return Napi::Number::New(env, fd);
  }
  return ThrowErrno(env, EAGAIN, "lstat", "lock file kept being replaced while locking");
}

Napi::Value KernelLockAddon::PosixWaitTurn(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = info[0].As<Napi::Number>().Int32Value();
  if (hub_ == nullptr) return ThrowErrno(env, ENOMEM, "uv_async_init");
  uint32_t id = NextCompletionId();
  auto* ticket = new AsyncTurn(id, hub_, this, fd, env_id_);
  // Tracked before it is queued: a grant may be posted at once.
  hub_->Track(ticket);
  int err = ticket->Begin(env, info[1]);
  if (err != 0) {
    hub_->Untrack(ticket);
    delete ticket;
    return ThrowErrno(env, err, "napi_create_reference");
  }
  return Napi::Number::New(env, id);
}

Napi::Value KernelLockAddon::PosixCancelTurn(const Napi::CallbackInfo& info) {
  uint32_t id = info[0].As<Napi::Number>().Uint32Value();
  Completion* found = hub_ != nullptr ? hub_->Find(id) : nullptr;
  if (found != nullptr) found->Stop();
  return info.Env().Undefined();
}

Napi::Value KernelLockAddon::PosixWaitTurnSync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = info[0].As<Napi::Number>().Int32Value();
  double timeout_ms = info[1].As<Napi::Number>().DoubleValue();
  int result = PosixTable::Get().AwaitTurn(fd, env_id_, timeout_ms);
  if (result == 0) posix_turns_.insert(fd);
  if (result > 0) return ThrowErrno(env, result, "fcntl");
  return Napi::Number::New(env, result);
}

Napi::Value KernelLockAddon::PosixTryLock(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = info[0].As<Napi::Number>().Int32Value();
  LockRequest req = RequestFrom(info, 1);
  int err = PosixTable::Get().TryLock(fd, req);
  if (err == EWOULDBLOCK) return Napi::Boolean::New(env, false);
  if (err != 0) return ThrowErrno(env, err, "fcntl");
  return Napi::Boolean::New(env, true);
}

Napi::Value KernelLockAddon::PosixFinish(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = info[0].As<Napi::Number>().Int32Value();
  char path[kPathBuffer];
  if (!ReadPath(info[1], path, sizeof(path))) return env.Undefined();
  auto [flags, req] = LockArgsAt(info, 2);
  bool same = false;
  int err = FinishGrant(info[5], fd, path, req, (flags & kReadOnly) != 0, (flags & kStampRecord) != 0, &same);
  if (err != 0) return ThrowErrno(env, err, "lstat");
  if (!same) return Napi::Boolean::New(env, false);
  PosixTable::Get().Settle(fd);
  return Napi::Boolean::New(env, true);
}

Napi::Value KernelLockAddon::PosixAbandon(const Napi::CallbackInfo& info) {
  int fd = info[0].As<Napi::Number>().Int32Value();
  LockRequest req = RequestFrom(info, 1);
  uint32_t state = info[4].As<Napi::Number>().Uint32Value();
  if ((state & 2) != 0) Unlock(fd, req);
  if ((state & 1) != 0) EndTurn(fd);
  LeaveEntry(fd);
  return info.Env().Undefined();
}

Napi::Value KernelLockAddon::PosixRelease(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = info[0].As<Napi::Number>().Int32Value();
  char path[kPathBuffer];
  if (!ReadPath(info[1], path, sizeof(path))) return env.Undefined();
  auto [flags, req] = LockArgsAt(info, 2);
  posix_turns_.erase(fd);
  auto found = posix_joins_.find(fd);
  if (found != posix_joins_.end() && --found->second == 0) posix_joins_.erase(found);
  return Napi::Number::New(env, PosixTable::Get().Release(fd, path, flags, req));
}

Napi::Value KernelLockAddon::PosixDescriptor(const Napi::CallbackInfo& info) {
  auto dev = static_cast<dev_t>(info[0].As<Napi::Number>().DoubleValue());
  auto ino = static_cast<ino_t>(info[1].As<Napi::Number>().DoubleValue());
  return Napi::Number::New(info.Env(), PosixTable::Get().DescriptorFor(dev, ino));
}

Napi::Value KernelLockAddon::CloseDescriptorFd(const Napi::CallbackInfo& info) {
  int fd = info[0].As<Napi::Number>().Int32Value();
  // No longer this environment's to close at teardown (a reader's, or a
  // lock's whose close the table may defer: the table owns it then).
  Untrack(fd);
  PosixTable::Get().Close(fd);
  return info.Env().Undefined();
}

}  // namespace kernel_lock
