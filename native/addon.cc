// JavaScript bindings. Each function validates nothing that TypeScript
// already validated (src/options.ts); it converts arguments, makes the system
// calls through lock_ops/waiter, and reports failures as Error objects with
// `errno` (negative, as Node does) and `syscall`, which src/errors.ts turns
// into Node-shaped system errors. Built with NAPI_DISABLE_CPP_EXCEPTIONS:
// no C++ exception exists to cross the boundary.
#include <fcntl.h>
#include <napi.h>

#include <cerrno>
#include <cmath>
#include <cstring>
#include <unordered_map>
#include <unordered_set>

#include "async_waiter.h"
#include "lock_ops.h"
#include "unique_fd.h"
#include "waiter.h"

namespace kernel_lock {

namespace {

// Path and record strings are copied into fixed stack buffers: PATH_MAX on
// Linux is 4096, and a longer path is reported as ENAMETOOLONG like open(2).
constexpr size_t kPathBuffer = 4097;
constexpr size_t kRecordBuffer = 4096;
// A verified acquisition retries when the path was unlinked or replaced
// between open and lock. Each retry means another process completed a whole
// release in that instant; this bound only stops a pathological livelock.
constexpr int kMaxVerifyAttempts = 1000;

// Slots of the Float64Array shared with JavaScript for results that do not
// fit a return value, so the hot path allocates no result object.
enum OutSlot { kOutDev = 0, kOutIno, kOutRecordErr, kOutReadOnly, kOutSlots };

Napi::Value ThrowErrno(Napi::Env env, int err, const char* syscall, const char* detail = nullptr) {
  Napi::Error error = Napi::Error::New(env, detail != nullptr ? detail : syscall);
  error.Set("errno", Napi::Number::New(env, -err));
  error.Set("syscall", Napi::String::New(env, syscall));
  error.ThrowAsJavaScriptException();
  return env.Undefined();
}

// Reads a string or Buffer argument into `buffer` with a terminating NUL.
// Returns false (with a pending exception) when it does not fit.
bool ReadPath(const Napi::Value& value, char* buffer, size_t size) {
  Napi::Env env = value.Env();
  if (value.IsBuffer()) {
    auto bytes = value.As<Napi::Buffer<char>>();
    if (bytes.Length() >= size) {
      ThrowErrno(env, ENAMETOOLONG, "open");
      return false;
    }
    std::memcpy(buffer, bytes.Data(), bytes.Length());
    buffer[bytes.Length()] = '\0';
    return true;
  }
  size_t length = 0;
  napi_status status = napi_get_value_string_utf8(env, value, buffer, size, &length);
  if (status != napi_ok) {
    Napi::TypeError::New(env, "path must be a string or Buffer").ThrowAsJavaScriptException();
    return false;
  }
  if (length >= size - 1) {
    ThrowErrno(env, ENAMETOOLONG, "open");
    return false;
  }
  return true;
}

class KernelLockAddon final : public Napi::Addon<KernelLockAddon>, public WaitRegistry {
 public:
  KernelLockAddon(Napi::Env env, Napi::Object exports) {
    DefineAddon(exports, {
                             InstanceMethod("setOutBuffer", &KernelLockAddon::SetOutBuffer),
                             InstanceMethod("acquire", &KernelLockAddon::Acquire),
                             InstanceMethod("open", &KernelLockAddon::Open),
                             InstanceMethod("tryLock", &KernelLockAddon::TryLockFd),
                             InstanceMethod("unlock", &KernelLockAddon::UnlockFd),
                             InstanceMethod("getLock", &KernelLockAddon::GetLockFd),
                             InstanceMethod("finish", &KernelLockAddon::Finish),
                             InstanceMethod("verify", &KernelLockAddon::Verify),
                             InstanceMethod("release", &KernelLockAddon::Release),
                             InstanceMethod("close", &KernelLockAddon::Close),
                             InstanceMethod("wait", &KernelLockAddon::Wait),
                             InstanceMethod("cancelWait", &KernelLockAddon::CancelWait),
                             InstanceMethod("waitSync", &KernelLockAddon::WaitSync),
                             InstanceMethod("stats", &KernelLockAddon::Stats),
                         });
    exports.Set("ofdSupported", Napi::Boolean::New(env, OfdSupported()));
    exports.Set("interruptSignal", Napi::Number::New(env, InterruptSignal()));
  }

  // Runs when the environment (main thread or a worker) is torn down:
  // every pending wait is interrupted and joined, then every descriptor this
  // environment still owns is closed, which releases its locks. A terminated
  // worker therefore leaves no lock, thread or descriptor behind.
  ~KernelLockAddon();

  // A wait reported its result: forget it (the TSFN finalizer deletes it).
  void Forget(uint32_t id) override { waiters_.erase(id); }

 private:
  Napi::Value SetOutBuffer(const Napi::CallbackInfo& info) {
    auto array = info[0].As<Napi::Float64Array>();
    if (array.ElementLength() < kOutSlots) {
      Napi::RangeError::New(info.Env(), "out buffer too small").ThrowAsJavaScriptException();
      return info.Env().Undefined();
    }
    out_ref_ = Napi::Persistent(array);
    out_ = array.Data();
    return info.Env().Undefined();
  }

  void SetOut(OutSlot slot, double value) {
    if (out_ != nullptr) out_[slot] = value;
  }

  void Track(int fd) { fds_.insert(fd); }
  void Untrack(int fd) { fds_.erase(fd); }

  static LockRequest RequestFrom(const Napi::CallbackInfo& info, size_t first) {
    return DecodeRequest(info[first].As<Napi::Number>().Uint32Value(), info[first + 1].As<Napi::Number>().DoubleValue(),
                         info[first + 2].As<Napi::Number>().DoubleValue());
  }

  Napi::Value ThrowOpen(Napi::Env env, const OpenResult& result) {
    Napi::Value undefined = ThrowErrno(env, result.err, result.syscall);
    if (result.err == EINVAL || result.err == ELOOP || result.err == ENXIO) {
      // Attach the file type so the message can say what is in the way.
      Napi::Error pending = env.GetAndClearPendingException();
      pending.Set("fileType", Napi::String::New(env, FileTypeName(result.type)));
      pending.ThrowAsJavaScriptException();
    }
    return undefined;
  }

  // Writes the owner record unless the lock is shared or the file read-only.
  void WriteOwnerRecord(const Napi::Value& record, int fd, const LockRequest& req, bool read_only, off_t size) {
    int record_err = 0;
    if (record.IsString() && !req.shared) {
      if (read_only) {
        record_err = EBADF;
      } else {
        char buffer[kRecordBuffer];
        size_t length = 0;
        napi_get_value_string_utf8(record.Env(), record, buffer, sizeof(buffer), &length);
        record_err = WriteRecord(fd, buffer, length, size);
      }
    }
    SetOut(kOutRecordErr, record_err);
  }

  // acquire(path, flags, start, length, record?) -> fd, -1 (busy) or
  // -(fd + 2) (busy; with kKeepOnBusy the unlocked descriptor is returned for
  // a wait). The whole uncontended path: open, lock, verify, record.
  Napi::Value Acquire(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    char path[kPathBuffer];
    if (!ReadPath(info[0], path, sizeof(path))) return env.Undefined();
    uint32_t flags = info[1].As<Napi::Number>().Uint32Value();
    LockRequest req = RequestFrom(info, 1);
    for (int attempt = 0; attempt < kMaxVerifyAttempts; ++attempt) {
      // open, lock, then one fstat that serves the type check, the
      // verification and the record size (which must be read after locking).
      OpenResult opened;
      UniqueFd fd = OpenLockFile(path, &opened, /*check_type=*/false);
      if (!fd.valid()) return ThrowOpen(env, opened);
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
        SetOut(kOutReadOnly, opened.read_only ? opened.write_err : 0);
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
      SetOut(kOutReadOnly, opened.read_only ? opened.write_err : 0);
      WriteOwnerRecord(info[4], fd.get(), req, opened.read_only, st.st_size);
      Track(fd.get());
      return Napi::Number::New(env, fd.release());
    }
    return ThrowErrno(env, EAGAIN, "lstat", "lock file kept being replaced while locking");
  }

  // open(path) -> fd: the safe open alone, for callers that lock separately
  // (the posix kind keeps one descriptor per inode).
  Napi::Value Open(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    char path[kPathBuffer];
    if (!ReadPath(info[0], path, sizeof(path))) return env.Undefined();
    OpenResult opened;
    UniqueFd fd = OpenLockFile(path, &opened);
    if (!fd.valid()) return ThrowOpen(env, opened);
    SetOut(kOutDev, static_cast<double>(opened.st.st_dev));
    SetOut(kOutIno, static_cast<double>(opened.st.st_ino));
    SetOut(kOutReadOnly, opened.read_only ? opened.write_err : 0);
    Track(fd.get());
    return Napi::Number::New(env, fd.release());
  }

  // tryLock(fd, flags, start, length) -> true when locked, false when busy.
  Napi::Value TryLockFd(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    int fd = info[0].As<Napi::Number>().Int32Value();
    LockRequest req = RequestFrom(info, 1);
    int err = TryLock(fd, req);
    if (err == EWOULDBLOCK) return Napi::Boolean::New(env, false);
    if (err != 0) return ThrowErrno(env, err, req.kind == Kind::kFlock ? "flock" : "fcntl");
    return Napi::Boolean::New(env, true);
  }

  Napi::Value UnlockFd(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    int fd = info[0].As<Napi::Number>().Int32Value();
    LockRequest req = RequestFrom(info, 1);
    int err = Unlock(fd, req);
    if (err != 0) return ThrowErrno(env, err, req.kind == Kind::kFlock ? "flock" : "fcntl");
    return env.Undefined();
  }

  // getLock(fd, flags, start, length) -> null when free, else
  // [exclusive(0|1), pid, start, length] of one conflicting lock.
  Napi::Value GetLockFd(const Napi::CallbackInfo& info) {
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

  // finish(fd, path, flags, start, length, record?) -> true when the locked
  // descriptor still names `path` (record written), false when the caller
  // must close it and start over.
  Napi::Value Finish(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    int fd = info[0].As<Napi::Number>().Int32Value();
    char path[kPathBuffer];
    if (!ReadPath(info[1], path, sizeof(path))) return env.Undefined();
    LockRequest req = RequestFrom(info, 2);
    struct stat st;
    bool same = false;
    int err = PathNamesFd(fd, path, &same, &st);
    if (err != 0) return ThrowErrno(env, err, "lstat");
    if (!same) return Napi::Boolean::New(env, false);
    SetOut(kOutDev, static_cast<double>(st.st_dev));
    SetOut(kOutIno, static_cast<double>(st.st_ino));
    bool read_only = (info[2].As<Napi::Number>().Uint32Value() & kReadOnly) != 0;
    WriteOwnerRecord(info[5], fd, req, read_only, st.st_size);
    return Napi::Boolean::New(env, true);
  }

  Napi::Value Verify(const Napi::CallbackInfo& info) {
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

  // release(fd, path, flags, start, length) -> 1 when the file was unlinked,
  // 0 when kept, or -errno when unlinking failed. Always closes `fd`.
  // With kUnlink the file is removed only by the last holder and only while
  // it still names our inode: another process may already be waiting on it,
  // and a waiter that wakes on an unlinked inode re-verifies and starts over.
  Napi::Value Release(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    int raw = info[0].As<Napi::Number>().Int32Value();
    Untrack(raw);
    UniqueFd fd(raw);
    uint32_t flags = info[2].As<Napi::Number>().Uint32Value();
    LockRequest req = RequestFrom(info, 2);
    double result = 0;
    if ((flags & kUnlink) != 0) {
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
      // A lease file outlives every holder: its fencing token lives in it.
      if (last && HasLeaseSlot(fd.get())) last = false;
      if (last) {
        struct stat st;
        bool same = false;
        if (PathNamesFd(fd.get(), path, &same, &st) == 0 && same) {
          result = ::unlink(path) == 0 ? 1 : -errno;
        }
      }
    }
    return Napi::Number::New(env, result);
  }

  Napi::Value Close(const Napi::CallbackInfo& info) {
    int fd = info[0].As<Napi::Number>().Int32Value();
    if (fds_.count(fd) != 0) {
      Untrack(fd);
      UniqueFd closing(fd);
    }
    return info.Env().Undefined();
  }

  // wait(fd, flags, start, length, callback) -> id. The callback later
  // receives 0 (granted), -1 (cancelled) or an errno.
  Napi::Value Wait(const Napi::CallbackInfo& info);
  Napi::Value CancelWait(const Napi::CallbackInfo& info);

  // waitSync(fd, flags, start, length, timeoutMs) -> 0 granted, -1 timed out.
  // A finite timeout runs the wait on a helper thread so it can be
  // interrupted at the deadline; an infinite one blocks right here.
  Napi::Value WaitSync(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    int fd = info[0].As<Napi::Number>().Int32Value();
    LockRequest req = RequestFrom(info, 1);
    double timeout_ms = info[4].As<Napi::Number>().DoubleValue();
    const char* syscall = req.kind == Kind::kFlock ? "flock" : "fcntl";
    if (!std::isfinite(timeout_ms)) {
      int err;
      do err = BlockingLock(fd, req);
      while (err == EINTR);
      if (err != 0) return ThrowErrno(env, err, syscall);
      return Napi::Number::New(env, 0);
    }
    SyncWaiter waiter(fd, req);
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

  // stats() -> [open descriptors, pending waits] owned by this environment.
  Napi::Value Stats(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Napi::Array result = Napi::Array::New(env, 2);
    result.Set(0u, Napi::Number::New(env, static_cast<double>(fds_.size())));
    result.Set(1u, Napi::Number::New(env, static_cast<double>(waiters_.size())));
    return result;
  }

  Napi::Reference<Napi::Float64Array> out_ref_;
  double* out_ = nullptr;
  std::unordered_set<int> fds_;
  std::unordered_map<uint32_t, AsyncWaiter*> waiters_;
  uint32_t next_waiter_id_ = 1;
};

Napi::Value KernelLockAddon::Wait(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = info[0].As<Napi::Number>().Int32Value();
  LockRequest req = RequestFrom(info, 1);
  uint32_t id = next_waiter_id_++;
  if (next_waiter_id_ == 0) next_waiter_id_ = 1;
  auto* waiter = new AsyncWaiter(this, fd, req, id);
  int err = waiter->Begin(env, info[4]);
  if (err != 0) {
    if (!waiter->OwnedByTsfn()) delete waiter;
    return ThrowErrno(env, err, err == ENOTSUP ? "sigaction" : "pthread_create");
  }
  waiters_.emplace(id, waiter);
  return Napi::Number::New(env, id);
}

Napi::Value KernelLockAddon::CancelWait(const Napi::CallbackInfo& info) {
  uint32_t id = info[0].As<Napi::Number>().Uint32Value();
  auto found = waiters_.find(id);
  if (found != waiters_.end()) found->second->Cancel();
  return info.Env().Undefined();
}

KernelLockAddon::~KernelLockAddon() {
  // Normally empty here: every TSFN finalizer (which joins its thread) ran
  // before the environment let go of the addon. Stop any leftover anyway,
  // before closing the descriptors their threads are blocked on.
  for (auto& entry : waiters_) {
    entry.second->Cancel();
    entry.second->Join();
    entry.second->Detach();
  }
  waiters_.clear();
  for (int fd : fds_) ::close(fd);
  fds_.clear();
}

}  // namespace

NODE_API_ADDON(KernelLockAddon)

}  // namespace kernel_lock
