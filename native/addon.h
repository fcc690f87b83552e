// The addon's one class: every JavaScript binding of an environment (main
// thread or worker), its descriptors, pending waits and posix entries. Its
// methods are split by subject: addon.cc (set-up, teardown, async waits,
// stats), addon_lock.cc (flock and ofd: the uncontended acquisition,
// verification, records, release, synchronous waits) and addon_posix.cc
// (kind 'posix', through the process-wide table). Each binding validates
// nothing that TypeScript already validated (src/lock/options.ts); it
// converts arguments, makes the system calls through lock_ops/waiter, and
// reports failures as Error objects with `errno` (negative, as Node does)
// and `syscall`, which src/lock/errors.ts turns into Node-shaped system
// errors. Built with NAPI_DISABLE_CPP_EXCEPTIONS: no C++ exception exists to
// cross the boundary.
#pragma once

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
#include "fdinfo_search.h"
#include "grant.h"
#include "lock_ops.h"
#include "pending_waits.h"
#include "posix_table.h"
#include "record_content.h"
#include "unique_fd.h"
#include "wait_hub.h"
#include "waiter.h"

namespace kernel_lock {

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

// Throws an Error with `errno` (negative) and `syscall`; returns undefined.
Napi::Value ThrowErrno(Napi::Env env, int err, const char* syscall, const char* detail = nullptr);

// Reads a string or Buffer argument into `buffer` with a terminating NUL.
// Returns false (with a pending exception) when it does not fit.
bool ReadPath(const Napi::Value& value, char* buffer, size_t size);

// The bytes of a Buffer argument in one N-API call (node-addon-api's
// Buffer wrapper makes three); false when `value` is not a Buffer (or any
// other ArrayBufferView).
inline bool BufferBytes(napi_env env, napi_value value, const char** data, size_t* length) {
  void* bytes = nullptr;
  if (napi_get_buffer_info(env, value, &bytes, length) != napi_ok) return false;
  *data = static_cast<const char*>(bytes);
  return true;
}

class KernelLockAddon final : public Napi::Addon<KernelLockAddon>,
                              public WaitOwner,
                              public HubOwner,
                              public TurnRegistry {
 public:
  KernelLockAddon(Napi::Env env, Napi::Object exports);

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
  Napi::Value SetOutBuffer(const Napi::CallbackInfo& info);

  void SetOut(OutSlot slot, double value) {
    if (out_ != nullptr) out_[slot] = value;
  }

  void Track(int fd) { fds_.insert(fd); }
  void Untrack(int fd) { fds_.erase(fd); }

  // The (flags, start, length) arguments every lock binding takes, from
  // position `first`, each read once. A flock request has no range
  // (JavaScript passes 0, 0): its start and length are not converted.
  struct LockArgs {
    uint32_t flags;
    LockRequest req;
  };
  static LockArgs LockArgsAt(const Napi::CallbackInfo& info, size_t first) {
    LockArgs args{info[first].As<Napi::Number>().Uint32Value(), {}};
    if ((args.flags & kKindMask) == static_cast<uint32_t>(Kind::kFlock)) {
      args.req = DecodeRequest(args.flags, 0, 0);
    } else {
      args.req = DecodeRequest(args.flags, info[first + 1].As<Napi::Number>().DoubleValue(),
                               info[first + 2].As<Napi::Number>().DoubleValue());
    }
    return args;
  }
  static LockRequest RequestFrom(const Napi::CallbackInfo& info, size_t first) { return LockArgsAt(info, first).req; }

  Napi::Value ThrowOpen(Napi::Env env, const OpenResult& result);

  // Writes the owner record unless the lock is shared, the file read-only,
  // or the file holds content that is not a record or marker (a script, a
  // database, somebody's data): that is never rewritten.
  // With `stamp` the record's createdAt is set to now (a copy is written).
  void WriteOwnerRecord(const Napi::Value& record, int fd, const LockRequest& req, bool read_only, off_t size,
                        bool stamp = false);
  // The same with the record's bytes; `data` null: no record.
  void WriteOwnerRecord(const char* data, size_t length, char* buffer, int fd, const LockRequest& req, bool read_only,
                        off_t size, bool stamp);

  // setRecord(bytes) -> token: the record acquire() writes with kStoredRecord
  // and this token (another copy of the library's JavaScript in the same
  // environment may have replaced it since: acquire() then says so).
  Napi::Value SetRecord(const Napi::CallbackInfo& info);

  // The end of a granted wait, shared by finish() and posixFinish(): does
  // `path` still name the file locked through `fd`? If it does, its identity
  // goes to the out slots and the owner record is written. 0 with `*same`
  // set, or the errno of the lstat.
  int FinishGrant(const Napi::Value& record, int fd, const char* path, const LockRequest& req, bool read_only,
                  bool stamp, bool* same);

  // acquire(path, flags, start, length, record?) -> fd, -1 (busy) or
  // -(fd + 2) (busy; with kKeepOnBusy the unlocked descriptor is returned for
  // a wait). The whole uncontended path: open, lock, verify, record. With
  // kStoredRecord, `record` is setRecord()'s token; undefined, before any
  // system call, when the stored record is no longer that one.
  Napi::Value Acquire(const Napi::CallbackInfo& info);

  // open(path) -> fd: the safe open alone, for callers that take several
  // locks on one descriptor themselves (a fenced lease).
  Napi::Value Open(const Napi::CallbackInfo& info);

  // tryLock(fd, flags, start, length) -> true when locked, false when busy.
  Napi::Value TryLockFd(const Napi::CallbackInfo& info);

  Napi::Value UnlockFd(const Napi::CallbackInfo& info);

  // getLock(fd, flags, start, length) -> null when free, else
  // [exclusive(0|1), pid, start, length] of one conflicting lock.
  Napi::Value GetLockFd(const Napi::CallbackInfo& info);

  // finish(fd, path, flags, start, length, record?) -> true when the locked
  // descriptor still names `path` (record written), false when the caller
  // must close it and start over.
  Napi::Value Finish(const Napi::CallbackInfo& info);

  Napi::Value Verify(const Napi::CallbackInfo& info);

  // release(fd, path, flags, start, length) -> 1 when the file was unlinked,
  // 0 when kept, 2 when kept because it holds foreign content, or -errno
  // when unlinking failed. Always closes `fd` (without dropping a posix lock
  // this process holds on the file: see PosixTable::Close).
  // With kUnlink the file is removed only by the last holder and only while
  // it still names our inode: another process may already be waiting on it,
  // and a waiter that wakes on an unlinked inode re-verifies and starts over.
  Napi::Value Release(const Napi::CallbackInfo& info);

  Napi::Value Close(const Napi::CallbackInfo& info);

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
  Napi::Value WaitSync(const Napi::CallbackInfo& info);

  // stats() -> [open descriptors, pending waits] of this environment (the
  // descriptors a wait holds count), and the inodes waited for in the process.
  Napi::Value Stats(const Napi::CallbackInfo& info);

  // contentKind(fd) -> what the file holds, as record_content.h judges it:
  // 'empty', 'record', 'marker', 'lease' or 'foreign'.
  Napi::Value ContentKind(const Napi::CallbackInfo& info);

  // ---- kind 'posix': acquisitions through the process-wide table ----

  void EndTurn(int fd);

  void LeaveEntry(int fd);

  // posixAcquire(path, flags, start, length, record?) -> the inode's entry
  // descriptor when locked (record written, lock settled); -1 when busy;
  // with kKeepOnBusy, -(fd + 2) when busy with the entry joined, and
  // out[kOutTurn] 1 when the caller has the turn (wait in the kernel next)
  // or 0 when another acquisition of this process has it (wait for the turn).
  Napi::Value PosixAcquire(const Napi::CallbackInfo& info);

  // posixWaitTurn(fd, callback) -> id. The callback later receives 0 (the
  // turn is ours) or -1 (cancelled before it came).
  Napi::Value PosixWaitTurn(const Napi::CallbackInfo& info);

  Napi::Value PosixCancelTurn(const Napi::CallbackInfo& info);

  // posixWaitTurnSync(fd, timeoutMs) -> 0 (the turn is ours) or -1 (timed
  // out). Throws EDEADLK when this thread would wait for itself.
  Napi::Value PosixWaitTurnSync(const Napi::CallbackInfo& info);

  // posixTryLock(fd, flags, start, length) -> true when locked (by the turn holder).
  Napi::Value PosixTryLock(const Napi::CallbackInfo& info);

  // posixFinish(fd, path, flags, start, length, record?) -> true when the
  // granted lock is on the file `path` names (record written, lock
  // settled); false when the caller must abandon it and start over.
  Napi::Value PosixFinish(const Napi::CallbackInfo& info);

  // posixAbandon(fd, flags, start, length, state): gives up an acquisition:
  // unlocks the range (state bit 2: possibly locked), passes the turn on
  // (bit 1: the turn is ours) and leaves the entry.
  Napi::Value PosixAbandon(const Napi::CallbackInfo& info);

  // posixRelease(fd, path, flags, start, length) -> as release().
  Napi::Value PosixRelease(const Napi::CallbackInfo& info);

  // posixDescriptor(dev, ino) -> the process's posix descriptor for the inode, or -1.
  Napi::Value PosixDescriptor(const Napi::CallbackInfo& info);

  // closeDescriptor(fd): closes a descriptor opened elsewhere (fs.openSync
  // for a record read, a probe) without dropping this process's posix locks.
  Napi::Value CloseDescriptorFd(const Napi::CallbackInfo& info);

  // openReader(path) -> fd, or a negative errno: opens an existing file
  // read-only (O_NOFOLLOW, O_NONBLOCK, close-on-exec) for a probe or a
  // record read, to be closed with closeDescriptor (addon_reader.cc).
  Napi::Value OpenReader(const Napi::CallbackInfo& info);

  // ---- the descriptor search (fdinfo_search.h, addon_fdinfo.cc) ----

  // searchDescriptors(fields, pids | null, maxDescriptors, maxMs, callback)
  // -> id: the search runs on a waiter thread (a parked one, or a new one);
  // callback(result) later. Throws (errno EAGAIN) when no thread could be
  // started.
  Napi::Value SearchDescriptors(const Napi::CallbackInfo& info);
  // searchDescriptorsSync(fields, pids | null, maxDescriptors, maxMs) ->
  // result: the same search on the calling thread.
  Napi::Value SearchDescriptorsSync(const Napi::CallbackInfo& info);

  // The id of a new completion in the hub (waits, turns and searches share them).
  uint32_t NextCompletionId() {
    uint32_t id = next_waiter_id_++;
    if (next_waiter_id_ == 0) next_waiter_id_ = 1;
    return id;
  }

  const EnvId env_id_;
  // The last record this environment wrote (see WriteOwnerRecord), and a
  // buffer to read a lock file's content into.
  std::string last_record_;
  // The record JavaScript last handed over (setRecord, kStoredRecord), and its token.
  std::string stored_record_;
  uint32_t stored_token_ = 0;
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

}  // namespace kernel_lock
