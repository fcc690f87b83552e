// The lock primitives: safe open, the three lock kinds, verification and the
// owner record. Plain functions over descriptors that return 0 or an errno;
// no JavaScript types appear here, so the sanitizer build and the waiter
// thread can use them freely.
#pragma once

#include <sys/stat.h>
#include <sys/types.h>

#include <cstddef>
#include <cstdint>

#include "record_content.h"
#include "unique_fd.h"

namespace kernel_lock {

enum class Kind : uint32_t { kFlock = 0, kOfd = 1, kPosix = 2 };

// Bit layout of the `flags` integer passed from JavaScript.
constexpr uint32_t kKindMask = 3;
constexpr uint32_t kShared = 1u << 2;
constexpr uint32_t kKeepOnBusy = 1u << 3;
constexpr uint32_t kUnlink = 1u << 4;
constexpr uint32_t kReadOnly = 1u << 5;  // the descriptor was opened read-only: skip the record
// Lock an existing file that holds foreign content (a script, data) through
// a read-only descriptor, as flock(1) does: a writable descriptor would make
// executing it fail with ETXTBSY (kernel-lock run <script> -- <script>).
constexpr uint32_t kReadOnlyIfForeign = 1u << 6;
// finish/posixFinish: set the record's createdAt to the moment of writing
// (the grant), so JavaScript can format the record before a synchronous
// wait and has nothing to format after it.
constexpr uint32_t kStampRecord = 1u << 7;
// acquire: write the record last given to setRecord() (JavaScript hands it
// over once per change, not once per acquisition); the record argument is
// then the token setRecord() returned.
constexpr uint32_t kStoredRecord = 1u << 8;

struct LockRequest {
  Kind kind = Kind::kFlock;
  bool shared = false;
  off_t start = 0;
  off_t length = 0;  // 0 = to end of file, as fcntl(2) defines it
};

LockRequest DecodeRequest(uint32_t flags, double start, double length);

// Why an open failed when the path exists but is not a lockable file.
enum class FileType { kRegular, kDirectory, kFifo, kSocket, kCharDevice, kBlockDevice, kSymlink, kKernelFile, kOther };
const char* FileTypeName(FileType type);

struct OpenResult {
  int err = 0;                         // errno, 0 on success
  const char* syscall = "open";        // which call failed
  FileType type = FileType::kRegular;  // set when err == EINVAL from the type check
  bool read_only = false;              // opened O_RDONLY because the file was not writable
  int write_err = 0;                   // why it was not writable (EACCES, EROFS, EPERM)
  struct stat st {};                   // fstat of the opened descriptor
};

// Opens (creating if needed) the lock file without following a symlink and
// without blocking on a FIFO; anything but a regular file is rejected. With
// check_type false the fstat and type check are left to the caller (the hot
// path folds them into the fstat its verification needs anyway), and
// result->st is not filled.
UniqueFd OpenLockFile(const char* path, OpenResult* result, bool check_type = true);

// Fails (EINVAL, with result->type set) unless `st` describes a regular file.
int CheckRegular(const struct stat& st, OpenResult* result);

// Rejects files on kernel pseudo file systems (procfs, sysfs, cgroupfs...):
// they can look like regular files, and writing an owner record into one
// would be a write into a kernel setting, not a lock file. Returns 0 or EINVAL.
int CheckFileSystem(int fd, OpenResult* result);

// One non-blocking attempt. Returns 0 when locked, EWOULDBLOCK when someone
// else holds a conflicting lock, or another errno.
int TryLock(int fd, const LockRequest& req);

// Blocks until locked. Returns 0 or an errno (EINTR when interrupted).
// Uses the raw system call so an interruption never runs libc's thread
// cancellation bookkeeping (see interrupt.cc).
int BlockingLock(int fd, const LockRequest& req);

int Unlock(int fd, const LockRequest& req);

// F_GETLK / F_OFD_GETLK for the request's range. *type is F_UNLCK when free.
// Not meaningful for flock (the kernel has no query for it).
int GetLock(int fd, const LockRequest& req, int* type, int64_t* pid, int64_t* start, int64_t* length);

// True while `path` still names the inode open on `fd` (fstat vs lstat).
// False when the path was unlinked or replaced: the protocol then retries.
int PathNamesFd(int fd, const char* path, bool* same, struct stat* fd_stat);

// Overwrites the owner record in place. `content` is what the file holds
// (never kForeign: nothing else is ever written over). When the previous
// record or marker (at most 4 KiB) was longer, the rest is blanked with
// spaces (JSON allows trailing white space), so no ftruncate is needed; a
// lease file's whole record area is blanked and its token slot kept.
// Returns 0 or an errno; on a failed or short write the file is truncated to
// empty (a lease file: its record area blanked) so no half record remains.
// `scratch` (kScratchBytes, optional) holds the padded record instead of a
// heap buffer: a waiter thread allocates nothing.
int WriteRecord(int fd, const char* data, size_t length, off_t previous_size, Content content, char* scratch = nullptr);

// With kReadOnlyIfForeign: when the file `fd` (opened read-write, not yet
// locked) already holds foreign content, reopens it read-only and returns
// that descriptor (result->read_only set, write_err 0); otherwise returns
// `fd` unchanged. A path replaced in between keeps the original.
UniqueFd ReopenReadOnlyIfForeign(const char* path, UniqueFd fd, OpenResult* result);

bool OfdSupported();

}  // namespace kernel_lock
