// JavaScript bindings. Each function validates nothing that TypeScript
// already validated (src/options.ts); it converts arguments, makes the system
// calls through lock_ops/waiter, and reports failures as Error objects with
// `errno` (negative, as Node does) and `syscall`, which src/errors.ts turns
// into Node-shaped system errors. Built with NAPI_DISABLE_CPP_EXCEPTIONS:
// no C++ exception exists to cross the boundary.
#include <fcntl.h>
#include <napi.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <memory>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "async_turn.h"
#include "async_waiter.h"
#include "fd_set.h"
#include "grant.h"
#include "lock_ops.h"
#include "pending_waits.h"
#include "posix_table.h"
#include "record_content.h"
#include "unique_fd.h"
#include "wait_hub.h"
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
// kOutReadOnly: 0 writable, an errno that forced a read-only descriptor, or
// -1 when read-only was chosen (kReadOnlyIfForeign). kOutRecordSkipped: 1
// when no record was written because the file holds foreign content.
// kOutTurn (posix, busy): 1 when the caller has the turn and must wait in
// the kernel, 0 when it must first wait for the turn.
enum OutSlot { kOutDev = 0, kOutIno, kOutRecordErr, kOutReadOnly, kOutRecordSkipped, kOutTurn, kOutSlots };

// Environments get ids from one counter: the posix table tells them apart.
std::atomic<EnvId> g_next_env{1};

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

class KernelLockAddon final : public Napi::Addon<KernelLockAddon>,
                              public WaitOwner,
                              public HubOwner,
                              public TurnRegistry {
 public:
  KernelLockAddon(Napi::Env env, Napi::Object exports)
      : env_id_(g_next_env.fetch_add(1)), hub_(WaitHub::Create(env, this)) {
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
                             InstanceMethod("contentKind", &KernelLockAddon::ContentKind),
                             InstanceMethod("posixAcquire", &KernelLockAddon::PosixAcquire),
                             InstanceMethod("posixWaitTurn", &KernelLockAddon::PosixWaitTurn),
                             InstanceMethod("posixCancelTurn", &KernelLockAddon::PosixCancelTurn),
                             InstanceMethod("posixWaitTurnSync", &KernelLockAddon::PosixWaitTurnSync),
                             InstanceMethod("posixTryLock", &KernelLockAddon::PosixTryLock),
                             InstanceMethod("posixFinish", &KernelLockAddon::PosixFinish),
                             InstanceMethod("posixAbandon", &KernelLockAddon::PosixAbandon),
                             InstanceMethod("posixRelease", &KernelLockAddon::PosixRelease),
                             InstanceMethod("posixDescriptor", &KernelLockAddon::PosixDescriptor),
                             InstanceMethod("closeDescriptor", &KernelLockAddon::CloseDescriptorFd),
                         });
    exports.Set("ofdSupported", Napi::Boolean::New(env, OfdSupported()));
    exports.Set("interruptSignal", Napi::Number::New(env, InterruptSignal()));
  }

  // Runs when the environment (main thread or a worker) is torn down:
  // every pending wait is interrupted and joined, then every descriptor this
  // environment still owns is closed, which releases its locks. A terminated
  // worker therefore leaves no lock, thread or descriptor behind.
  ~KernelLockAddon();

  // A descriptor a wait owned comes back; a whole acquisition was granted.
  void Adopt(int fd) override {
    --owned_by_waits_;
    if (fd >= 0) Track(fd);
  }
  void Granted(const GrantReport& report) override {
    SetOut(kOutDev, static_cast<double>(report.dev));
    SetOut(kOutIno, static_cast<double>(report.ino));
    SetOut(kOutReadOnly, report.read_only);
    SetOut(kOutRecordErr, report.record_err);
    SetOut(kOutRecordSkipped, report.record_skipped ? 1 : 0);
  }
  // The environment is being torn down: the hub aborted every wait.
  void HubClosed() override { hub_ = nullptr; }
  // A posix turn reached JavaScript: this environment ends it, or its teardown does.
  void TurnDelivered(int fd) override { posix_turns_.insert(fd); }

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

  // Writes the owner record unless the lock is shared, the file read-only,
  // or the file holds content that is not a record or marker (a script, a
  // database, somebody's data): that is never rewritten.
  void WriteOwnerRecord(const Napi::Value& record, int fd, const LockRequest& req, bool read_only, off_t size) {
    int record_err = 0;
    bool skipped = false;
    bool bytes = record.IsBuffer();
    if ((bytes || record.IsString()) && !req.shared) {
      char buffer[kRecordBuffer];
      const char* data = buffer;
      size_t length = 0;
      if (bytes) {
        // The record as bytes (JavaScript converts it once per change):
        // no conversion per acquisition.
        auto view = record.As<Napi::Buffer<char>>();
        data = view.Data();
        length = std::min(view.Length(), kRecordBuffer);
      } else {
        napi_get_value_string_utf8(record.Env(), record, buffer, sizeof(buffer), &length);
      }
      record_err =
          kernel_lock::WriteOwnerRecord(fd, data, length, read_only, size, &skipped, scratch_.data(), &last_record_);
      // What the file now holds, when it is exactly the record: the next
      // acquisition of it (most often ours again) is recognised by memcmp.
      if (record_err == 0 && !skipped && static_cast<off_t>(length) >= size) {
        last_record_.assign(data, length);
      }
    }
    SetOut(kOutRecordErr, record_err);
    SetOut(kOutRecordSkipped, skipped ? 1 : 0);
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
      WriteOwnerRecord(info[4], fd.get(), req, opened.read_only, st.st_size);
      Track(fd.get());
      return Napi::Number::New(env, fd.release());
    }
    return ThrowErrno(env, EAGAIN, "lstat", "lock file kept being replaced while locking");
  }

  // open(path) -> fd: the safe open alone, for callers that take several
  // locks on one descriptor themselves (a fenced lease).
  Napi::Value Open(const Napi::CallbackInfo& info) {
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
  // 0 when kept, 2 when kept because it holds foreign content, or -errno
  // when unlinking failed. Always closes `fd` (without dropping a posix lock
  // this process holds on the file: see PosixTable::Close).
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

  Napi::Value Close(const Napi::CallbackInfo& info) {
    int fd = info[0].As<Napi::Number>().Int32Value();
    if (fds_.contains(fd)) {
      Untrack(fd);
      UniqueFd closing(fd);
    }
    return info.Env().Undefined();
  }

  // wait(fd, flags, start, length, callback, path?, record?, readOnly?) ->
  // id. The callback later receives (status, fd): 0 granted, -1 cancelled,
  // -2 start over, or an errno. With a path (a whole acquisition, flock or
  // ofd) the descriptor is the wait's until then, and the waiter thread
  // verifies the grant and writes the record (grant.h).
  Napi::Value Wait(const Napi::CallbackInfo& info);
  Napi::Value CancelWait(const Napi::CallbackInfo& info);

  // waitSync(fd, flags, start, length, timeoutMs, path?) -> 0 granted, -1
  // timed out. With the path, the wait counts as pending (pending_waits.h).
  // A finite timeout runs the wait on a helper thread so it can be
  // interrupted at the deadline; an infinite one blocks right here.
  Napi::Value WaitSync(const Napi::CallbackInfo& info) {
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

  // stats() -> [open descriptors, pending waits] of this environment (the
  // descriptors a wait holds count), and the inodes waited for in the process.
  Napi::Value Stats(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Napi::Array result = Napi::Array::New(env, 3);
    size_t pending = hub_ != nullptr ? hub_->Pending() : 0;
    result.Set(0u, Napi::Number::New(env, static_cast<double>(fds_.size() + owned_by_waits_)));
    result.Set(1u, Napi::Number::New(env, static_cast<double>(pending)));
    result.Set(2u, Napi::Number::New(env, static_cast<double>(PendingWaits::Get().Size())));
    return result;
  }

  // contentKind(fd) -> what the file holds, as record_content.h judges it:
  // 'empty', 'record', 'marker', 'lease' or 'foreign'.
  Napi::Value ContentKind(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    int fd = info[0].As<Napi::Number>().Int32Value();
    struct stat st;
    if (::fstat(fd, &st) != 0) return ThrowErrno(env, errno, "fstat");
    return Napi::String::New(env, ContentName(ClassifyFile(fd, st.st_size)));
  }

  // ---- kind 'posix': acquisitions through the process-wide table ----

  void EndTurn(int fd) {
    posix_turns_.erase(fd);
    PosixTable::Get().PassTurn(fd);
  }

  void LeaveEntry(int fd) {
    auto found = posix_joins_.find(fd);
    if (found != posix_joins_.end() && --found->second == 0) posix_joins_.erase(found);
    PosixTable::Get().Leave(fd);
  }

  // posixAcquire(path, flags, start, length, record?) -> the inode's entry
  // descriptor when locked (record written, lock settled); -1 when busy;
  // with kKeepOnBusy, -(fd + 2) when busy with the entry joined, and
  // out[kOutTurn] 1 when the caller has the turn (wait in the kernel next)
  // or 0 when another acquisition of this process has it (wait for the turn).
  Napi::Value PosixAcquire(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    char path[kPathBuffer];
    if (!ReadPath(info[0], path, sizeof(path))) return env.Undefined();
    uint32_t flags = info[1].As<Napi::Number>().Uint32Value();
    LockRequest req = RequestFrom(info, 1);
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

  // posixWaitTurn(fd, callback) -> id. The callback later receives 0 (the
  // turn is ours) or -1 (cancelled before it came).
  Napi::Value PosixWaitTurn(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    int fd = info[0].As<Napi::Number>().Int32Value();
    if (hub_ == nullptr) return ThrowErrno(env, ENOMEM, "uv_async_init");
    uint32_t id = next_waiter_id_++;
    if (next_waiter_id_ == 0) next_waiter_id_ = 1;
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

  Napi::Value PosixCancelTurn(const Napi::CallbackInfo& info) {
    uint32_t id = info[0].As<Napi::Number>().Uint32Value();
    Completion* found = hub_ != nullptr ? hub_->Find(id) : nullptr;
    if (found != nullptr) found->Stop();
    return info.Env().Undefined();
  }

  // posixWaitTurnSync(fd, timeoutMs) -> 0 (the turn is ours) or -1 (timed
  // out). Throws EDEADLK when this thread would wait for itself.
  Napi::Value PosixWaitTurnSync(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    int fd = info[0].As<Napi::Number>().Int32Value();
    double timeout_ms = info[1].As<Napi::Number>().DoubleValue();
    int result = PosixTable::Get().AwaitTurn(fd, env_id_, timeout_ms);
    if (result == 0) posix_turns_.insert(fd);
    if (result > 0) return ThrowErrno(env, result, "fcntl");
    return Napi::Number::New(env, result);
  }

  // posixTryLock(fd, flags, start, length) -> true when locked (by the turn holder).
  Napi::Value PosixTryLock(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    int fd = info[0].As<Napi::Number>().Int32Value();
    LockRequest req = RequestFrom(info, 1);
    int err = PosixTable::Get().TryLock(fd, req);
    if (err == EWOULDBLOCK) return Napi::Boolean::New(env, false);
    if (err != 0) return ThrowErrno(env, err, "fcntl");
    return Napi::Boolean::New(env, true);
  }

  // posixFinish(fd, path, flags, start, length, record?) -> true when the
  // granted lock is on the file `path` names (record written, lock
  // settled); false when the caller must abandon it and start over.
  Napi::Value PosixFinish(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    int fd = info[0].As<Napi::Number>().Int32Value();
    char path[kPathBuffer];
    if (!ReadPath(info[1], path, sizeof(path))) return env.Undefined();
    uint32_t flags = info[2].As<Napi::Number>().Uint32Value();
    LockRequest req = RequestFrom(info, 2);
    struct stat st;
    bool same = false;
    int err = PathNamesFd(fd, path, &same, &st);
    if (err != 0) return ThrowErrno(env, err, "lstat");
    if (!same) return Napi::Boolean::New(env, false);
    SetOut(kOutDev, static_cast<double>(st.st_dev));
    SetOut(kOutIno, static_cast<double>(st.st_ino));
    WriteOwnerRecord(info[5], fd, req, (flags & kReadOnly) != 0, st.st_size);
    PosixTable::Get().Settle(fd);
    return Napi::Boolean::New(env, true);
  }

  // posixAbandon(fd, flags, start, length, state): gives up an acquisition:
  // unlocks the range (state bit 2: possibly locked), passes the turn on
  // (bit 1: the turn is ours) and leaves the entry.
  Napi::Value PosixAbandon(const Napi::CallbackInfo& info) {
    int fd = info[0].As<Napi::Number>().Int32Value();
    LockRequest req = RequestFrom(info, 1);
    uint32_t state = info[4].As<Napi::Number>().Uint32Value();
    if ((state & 2) != 0) Unlock(fd, req);
    if ((state & 1) != 0) EndTurn(fd);
    LeaveEntry(fd);
    return info.Env().Undefined();
  }

  // posixRelease(fd, path, flags, start, length) -> as release().
  Napi::Value PosixRelease(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    int fd = info[0].As<Napi::Number>().Int32Value();
    char path[kPathBuffer];
    if (!ReadPath(info[1], path, sizeof(path))) return env.Undefined();
    uint32_t flags = info[2].As<Napi::Number>().Uint32Value();
    LockRequest req = RequestFrom(info, 2);
    posix_turns_.erase(fd);
    auto found = posix_joins_.find(fd);
    if (found != posix_joins_.end() && --found->second == 0) posix_joins_.erase(found);
    return Napi::Number::New(env, PosixTable::Get().Release(fd, path, flags, req));
  }

  // posixDescriptor(dev, ino) -> the process's posix descriptor for the inode, or -1.
  Napi::Value PosixDescriptor(const Napi::CallbackInfo& info) {
    auto dev = static_cast<dev_t>(info[0].As<Napi::Number>().DoubleValue());
    auto ino = static_cast<ino_t>(info[1].As<Napi::Number>().DoubleValue());
    return Napi::Number::New(info.Env(), PosixTable::Get().DescriptorFor(dev, ino));
  }

  // closeDescriptor(fd): closes a descriptor opened elsewhere (fs.openSync
  // for a record read, a probe) without dropping this process's posix locks.
  Napi::Value CloseDescriptorFd(const Napi::CallbackInfo& info) {
    PosixTable::Get().Close(info[0].As<Napi::Number>().Int32Value());
    return info.Env().Undefined();
  }

  const EnvId env_id_;
  // The last record this environment wrote (see WriteOwnerRecord), and a
  // buffer to read a lock file's content into.
  std::string last_record_;
  std::vector<char> scratch_ = std::vector<char>(kScratchBytes);
  Napi::Reference<Napi::Float64Array> out_ref_;
  double* out_ = nullptr;
  FdSet fds_;
  // Descriptors handed to pending whole-acquisition waits (see Adopt()).
  size_t owned_by_waits_ = 0;
  // Delivers finished waits; null once the environment's teardown began.
  WaitHub* hub_;

  // Entries of the posix table this environment joined (with counts) and
  // turns it holds: its teardown ends them, so a terminated worker never
  // strands another thread's acquisition of the same inode.
  std::unordered_map<int, int> posix_joins_;
  std::unordered_set<int> posix_turns_;
  uint32_t next_waiter_id_ = 1;
};

Napi::Value KernelLockAddon::Wait(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = info[0].As<Napi::Number>().Int32Value();
  uint32_t flags = info[1].As<Napi::Number>().Uint32Value();
  LockRequest req = RequestFrom(info, 1);
  if (hub_ == nullptr) return ThrowErrno(env, ENOMEM, "uv_async_init");
  std::unique_ptr<GrantWork> work;
  if (info.Length() > 5 && !info[5].IsUndefined() && req.kind != Kind::kPosix) {
    char path[kPathBuffer];
    if (!ReadPath(info[5], path, sizeof(path))) return env.Undefined();
    std::string record;
    bool has_record = info.Length() > 6 && (info[6].IsString() || info[6].IsBuffer());
    if (has_record && info[6].IsBuffer()) {
      auto view = info[6].As<Napi::Buffer<char>>();
      record.assign(view.Data(), std::min(view.Length(), kRecordBuffer));
    } else if (has_record) {
      record = info[6].As<Napi::String>().Utf8Value();
    }
    double read_only = info.Length() > 7 ? info[7].As<Napi::Number>().DoubleValue() : 0;
    work.reset(new GrantWork(path, std::move(record), has_record, flags, read_only));
  }
  uint32_t id = next_waiter_id_++;
  if (next_waiter_id_ == 0) next_waiter_id_ = 1;
  bool owns = work != nullptr;
  auto* waiter = new AsyncWaiter(id, hub_, this, fd, req, env_id_, std::move(work));
  if (owns) {
    Untrack(fd);
    ++owned_by_waits_;
  }
  int err = waiter->Begin(env, info[4]);
  if (err != 0) {
    if (owns) {
      --owned_by_waits_;
      Track(waiter->TakeFd());
    }
    delete waiter;
    return ThrowErrno(env, err, err == ENOTSUP ? "sigaction" : "pthread_create");
  }
  hub_->Track(waiter);
  return Napi::Number::New(env, id);
}

Napi::Value KernelLockAddon::CancelWait(const Napi::CallbackInfo& info) {
  uint32_t id = info[0].As<Napi::Number>().Uint32Value();
  Completion* found = hub_ != nullptr ? hub_->Find(id) : nullptr;
  if (found != nullptr) found->Stop();
  return info.Env().Undefined();
}

KernelLockAddon::~KernelLockAddon() {
  // Normally the hub's cleanup hook ran already (see wait_hub.h): every wait
  // was interrupted and joined. Stop any leftover anyway, before closing
  // the descriptors their threads are blocked on.
  if (hub_ != nullptr) hub_->OwnerGone();
  hub_ = nullptr;
  PosixTable& table = PosixTable::Get();
  // This environment's posix locks: one turn holder per inode, so unlocking
  // the whole file drops exactly its lock; the next acquirer gets the turn.
  for (int fd : posix_turns_) table.UnlockAndPassTurn(fd, LockRequest{Kind::kPosix, false, 0, 0});
  posix_turns_.clear();
  for (const auto& joined : posix_joins_) {
    for (int i = 0; i < joined.second; ++i) table.Leave(joined.first);
  }
  posix_joins_.clear();
  fds_.ForEach([&table](int fd) { table.Close(fd); });
  fds_.clear();
}

}  // namespace

NODE_API_ADDON(KernelLockAddon)

}  // namespace kernel_lock
