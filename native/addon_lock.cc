// KernelLockAddon (addon.h), kinds flock and ofd: the whole uncontended
// acquisition, the descriptor-level calls a lease uses, verification, the
// owner record, release and synchronous waits.
#include "addon.h"

namespace kernel_lock {

void KernelLockAddon::WriteOwnerRecord(const Napi::Value& record, int fd, const LockRequest& req, bool read_only,
                                       off_t size, bool stamp) {
  char buffer[kRecordBuffer];
  const char* data = nullptr;
  size_t length = 0;
  // The record as bytes (JavaScript converts it once per change): no
  // conversion per acquisition. A string is converted here; anything else
  // (undefined: a shared lock, no record) writes nothing.
  if (!req.shared && !BufferBytes(record.Env(), record, &data, &length) &&
      napi_get_value_string_utf8(record.Env(), record, buffer, sizeof(buffer), &length) == napi_ok) {
    data = buffer;
  }
  WriteOwnerRecord(data, length, buffer, fd, req, read_only, size, stamp);
}

void KernelLockAddon::WriteOwnerRecord(const char* data, size_t length, char* buffer, int fd, const LockRequest& req,
                                       bool read_only, off_t size, bool stamp) {
  int record_err = 0;
  bool skipped = false;
  if (data != nullptr && !req.shared) {
    length = std::min(length, kRecordBuffer);
    if (stamp) {
      // JavaScript's bytes are shared by every acquisition: stamp a copy.
      if (data != buffer) std::memcpy(buffer, data, length);
      data = buffer;
      StampCreatedAt(buffer, length);
    }
    record_err =
        kernel_lock::WriteOwnerRecord(fd, data, length, read_only, size, &skipped, scratch_.data(), &last_record_);
    // What the file now holds: the next acquisition of it (most often ours
    // again) is recognised by memcmp instead of a JSON scan. That is the
    // record, or, when a longer one was there before (another process's
    // longer argv, say), the record blanked to that size, as WriteRecord
    // left it in the scratch buffer.
    if (record_err == 0 && !skipped) {
      if (static_cast<off_t>(length) >= size) {
        last_record_.assign(data, length);
      } else if (size <= kMaxRecordBytes) {
        last_record_.assign(scratch_.data(), static_cast<size_t>(size));
      }
    }
  }
  SetOut(kOutRecordErr, record_err);
  SetOut(kOutRecordSkipped, skipped ? 1 : 0);
}

Napi::Value KernelLockAddon::Acquire(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  char path[kPathBuffer];
  if (!ReadPath(info[0], path, sizeof(path))) return env.Undefined();
  auto [flags, req] = LockArgsAt(info, 1);
  const bool stored = (flags & kStoredRecord) != 0;
  if (stored && info[4].As<Napi::Number>().Uint32Value() != stored_token_) return env.Undefined();
  for (int attempt = 0; attempt < kMaxVerifyAttempts; ++attempt) {
    // open, lock, then one fstat that serves the type check, the
    // verification and the record size (which must be read after locking).
    OpenResult opened;
    UniqueFd fd = OpenLockFile(path, &opened, /*check_type=*/false);
    if (!fd.valid()) return ThrowOpen(env, opened);
    if ((flags & kReadOnlyIfForeign) != 0) fd = ReopenReadOnlyIfForeign(path, std::move(fd), &opened);
    int err = TryLock(fd.get(), req);
    if (err != 0) {
      // Whatever went wrong, something other than a regular file explains
      // it best; and no wait may start on one.
      if (::fstat(fd.get(), &opened.st) != 0) return ThrowErrno(env, errno, "fstat");
      if (CheckRegular(opened.st, &opened) != 0) return ThrowOpen(env, opened);
      if (CheckFileSystem(fd.get(), &opened) != 0) return ThrowOpen(env, opened);
    }
    if (err == EWOULDBLOCK) {
      SetOut(kOutDev, static_cast<double>(opened.st.st_dev));
      SetOut(kOutIno, static_cast<double>(opened.st.st_ino));
      SetOut(kOutReadOnly, ReadOnlyOut(opened));
      if ((flags & kKeepOnBusy) == 0) return Napi::Number::New(env, -1);
      Track(fd.get());
      return Napi::Number::New(env, -(fd.release() + 2.0));
    }
    if (err != 0) return ThrowErrno(env, err, req.kind == Kind::kFlock ? "flock" : "fcntl");
    struct stat st;
    bool same = false;
    err = PathNamesFd(fd.get(), path, &same, &st);
    if (err != 0) return ThrowErrno(env, err, "lstat");
    if (CheckRegular(st, &opened) != 0) return ThrowOpen(env, opened);
    if (CheckFileSystem(fd.get(), &opened) != 0) return ThrowOpen(env, opened);
    if (!same) continue;  // unlinked or replaced under us: the lock guards nothing
    SetOut(kOutDev, static_cast<double>(st.st_dev));
    SetOut(kOutIno, static_cast<double>(st.st_ino));
    SetOut(kOutReadOnly, ReadOnlyOut(opened));
    if (stored) {
      WriteOwnerRecord(stored_record_.data(), stored_record_.size(), nullptr, fd.get(), req, opened.read_only,
                       st.st_size, /*stamp=*/false);
    } else {
      WriteOwnerRecord(info[4], fd.get(), req, opened.read_only, st.st_size);
    }
    Track(fd.get());
    return Napi::Number::New(env, fd.release());
  }
  return ThrowErrno(env, EAGAIN, "lstat", "lock file kept being replaced while locking");
}

Napi::Value KernelLockAddon::Open(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  char path[kPathBuffer];
  if (!ReadPath(info[0], path, sizeof(path))) return env.Undefined();
  OpenResult opened;
  UniqueFd fd = OpenLockFile(path, &opened);
  if (!fd.valid()) return ThrowOpen(env, opened);
  SetOut(kOutDev, static_cast<double>(opened.st.st_dev));
  SetOut(kOutIno, static_cast<double>(opened.st.st_ino));
  SetOut(kOutReadOnly, ReadOnlyOut(opened));
  Track(fd.get());
  return Napi::Number::New(env, fd.release());
}

Napi::Value KernelLockAddon::TryLockFd(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = info[0].As<Napi::Number>().Int32Value();
  LockRequest req = RequestFrom(info, 1);
  int err = TryLock(fd, req);
  if (err == EWOULDBLOCK) return Napi::Boolean::New(env, false);
  if (err != 0) return ThrowErrno(env, err, req.kind == Kind::kFlock ? "flock" : "fcntl");
  return Napi::Boolean::New(env, true);
}

Napi::Value KernelLockAddon::UnlockFd(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = info[0].As<Napi::Number>().Int32Value();
  LockRequest req = RequestFrom(info, 1);
  int err = Unlock(fd, req);
  if (err != 0) return ThrowErrno(env, err, req.kind == Kind::kFlock ? "flock" : "fcntl");
  return env.Undefined();
}

Napi::Value KernelLockAddon::GetLockFd(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = info[0].As<Napi::Number>().Int32Value();
  LockRequest req = RequestFrom(info, 1);
  int type = 0;
  int64_t pid = 0, start = 0, length = 0;
  int err = GetLock(fd, req, &type, &pid, &start, &length);
  if (err != 0) return ThrowErrno(env, err, "fcntl");
  if (type == F_UNLCK) return env.Null();
  Napi::Array result = Napi::Array::New(env, 4);
  result.Set(0u, Napi::Number::New(env, type == F_WRLCK ? 1 : 0));
  result.Set(1u, Napi::Number::New(env, static_cast<double>(pid)));
  result.Set(2u, Napi::Number::New(env, static_cast<double>(start)));
  result.Set(3u, Napi::Number::New(env, static_cast<double>(length)));
  return result;
}

int KernelLockAddon::FinishGrant(const Napi::Value& record, int fd, const char* path, const LockRequest& req,
                                 bool read_only, bool stamp, bool* same) {
  struct stat st;
  int err = PathNamesFd(fd, path, same, &st);
  if (err != 0 || !*same) return err;
  SetOut(kOutDev, static_cast<double>(st.st_dev));
  SetOut(kOutIno, static_cast<double>(st.st_ino));
  WriteOwnerRecord(record, fd, req, read_only, st.st_size, stamp);
  return 0;
}

Napi::Value KernelLockAddon::Finish(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = info[0].As<Napi::Number>().Int32Value();
  char path[kPathBuffer];
  if (!ReadPath(info[1], path, sizeof(path))) return env.Undefined();
  auto [flags, req] = LockArgsAt(info, 2);
  bool same = false;
  int err = FinishGrant(info[5], fd, path, req, (flags & kReadOnly) != 0, (flags & kStampRecord) != 0, &same);
  if (err != 0) return ThrowErrno(env, err, "lstat");
  return Napi::Boolean::New(env, same);
}

Napi::Value KernelLockAddon::Verify(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = info[0].As<Napi::Number>().Int32Value();
  char path[kPathBuffer];
  if (!ReadPath(info[1], path, sizeof(path))) return env.Undefined();
  struct stat st;
  bool same = false;
  int err = PathNamesFd(fd, path, &same, &st);
  if (err != 0) return ThrowErrno(env, err, "lstat");
  return Napi::Boolean::New(env, same);
}

Napi::Value KernelLockAddon::Release(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int raw = info[0].As<Napi::Number>().Int32Value();
  Untrack(raw);
  UniqueFd fd(raw);
  uint32_t flags = info[2].As<Napi::Number>().Uint32Value();
  double result = 0;
  if ((flags & kUnlink) != 0) {
    // The request matters only to the last holder's unlink.
    LockRequest req = LockArgsAt(info, 2).req;
    char path[kPathBuffer];
    if (!ReadPath(info[1], path, sizeof(path))) return env.Undefined();
    bool whole_exclusive = !req.shared && (req.kind == Kind::kFlock || (req.start == 0 && req.length == 0));
    bool last = whole_exclusive;
    if (!last) {
      // Only a holder that can take the whole file exclusively is the last
      // one; if the attempt fails, someone else still needs the file.
      LockRequest whole{req.kind, false, 0, 0};
      last = TryLock(fd.get(), whole) == 0;
    }
    if (last) {
      struct stat st;
      bool same = false;
      // Another acquisition of this process waiting for the inode makes
      // this holder not the last: it keeps the file, and the last unlinks.
      if (PathNamesFd(fd.get(), path, &same, &st) == 0 && same && !PendingWaits::Get().Any(path)) {
        // Foreign content is somebody's data; a lease file outlives every
        // holder, because its fencing token lives in it.
        Content content = ClassifyFile(fd.get(), st.st_size);
        if (!IsOurs(content)) {
          result = 2;
        } else if (MayUnlink(content)) {
          result = ::unlink(path) == 0 ? 1 : -errno;
        }
      }
    }
  }
  return Napi::Number::New(env, result);
}

Napi::Value KernelLockAddon::Close(const Napi::CallbackInfo& info) {
  int fd = info[0].As<Napi::Number>().Int32Value();
  if (fds_.contains(fd)) {
    Untrack(fd);
    UniqueFd closing(fd);
  }
  return info.Env().Undefined();
}

Napi::Value KernelLockAddon::WaitSync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = info[0].As<Napi::Number>().Int32Value();
  LockRequest req = RequestFrom(info, 1);
  double timeout_ms = info[4].As<Napi::Number>().DoubleValue();
  const char* syscall = req.kind == Kind::kFlock ? "flock" : "fcntl";
  // Counted as waiting, so that a release elsewhere in the process keeps
  // the file for this wait (see pending_waits.h).
  PendingWait pending;
  if (req.kind != Kind::kPosix && info.Length() > 5 && !info[5].IsUndefined()) {
    char path[kPathBuffer];
    if (!ReadPath(info[5], path, sizeof(path))) return env.Undefined();
    pending.Set(path);
  }
  if (!std::isfinite(timeout_ms)) {
    int err;
    if (req.kind == Kind::kPosix) {
      err = PosixTable::Get().BlockingLock(nullptr, fd, req, env_id_, /*may_wait_own=*/false);
    } else {
      do err = BlockingLock(fd, req);
      while (err == EINTR);
    }
    if (err != 0) return ThrowErrno(env, err, syscall);
    return Napi::Number::New(env, 0);
  }
  SyncWaiter waiter(fd, req, env_id_, /*may_wait_own=*/false);
  int err = waiter.Start();
  if (err != 0) return ThrowErrno(env, err, err == ENOTSUP ? "sigaction" : "pthread_create");
  if (!waiter.WaitFor(timeout_ms)) {
    waiter.Cancel();
    waiter.WaitUntilDone();
  }
  waiter.Join();
  int result = waiter.result();
  if (result == kCancelled) return Napi::Number::New(env, -1);
  if (result != 0) return ThrowErrno(env, result, syscall);
  return Napi::Number::New(env, 0);
}

}  // namespace kernel_lock
