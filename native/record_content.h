// What a lock file holds, judged from a bounded read: nothing, an owner
// record kernel-lock wrote, a marker of the legacy O_EXCL session lock, or
// somebody else's data. kernel-lock writes its record, and unlinks on
// release, only when the file holds nothing or a record or marker: a script,
// a database or any other data file that happens to be locked is never
// rewritten, truncated or removed.
#pragma once

#include <sys/types.h>

#include <cstddef>

namespace kernel_lock {

// Files larger than this are never records (a record always fits: see
// src/lock/owner-record.ts, MAX_RECORD_BYTES). It is also the size of a lease
// file's record area.
constexpr off_t kMaxRecordBytes = 4096;

// A lease file (src/lock/lease-layout.ts): the record area, then a token slot
// of this many bytes that begins with kLeaseSlotMagic.
constexpr off_t kLeaseSlotBytes = 128;
constexpr char kLeaseSlotMagic[] = "kernel-lock-lease/1 ";

enum class Content {
  kEmpty,    // zero bytes
  kRecord,   // one JSON object with "format": "kernel-lock/1", then only white space
  kMarker,   // one JSON object of legacy marker fields ({pid, createdAt, starttime}) with a numeric pid
  kLease,    // a lease file: a blank area, record or marker, then a token slot (never cut, never unlinked)
  kForeign,  // anything else, including what could not be read
};

// Classifies `size` bytes of content (what the caller read).
Content ClassifyBytes(const char* data, size_t size);

// Reads the file behind `fd` (at most kMaxRecordBytes, from offset 0, plus a
// lease file's slot; `size` is its current size from fstat) and classifies it. A read error counts as
// foreign: when in doubt, touch nothing.
Content ClassifyFile(int fd, off_t size);
// The same, reading into `scratch` (kScratchBytes): a waiter thread passes
// memory that is already mapped, instead of touching fresh stack pages
// (each a page fault) on the hand-off's critical path.
constexpr size_t kScratchBytes = kMaxRecordBytes + 1;
// Content byte for byte equal to `known` (a record this environment wrote
// itself, typically the previous holder's: its own) is a record without
// being parsed again: a memcmp instead of the JSON scan on the hot path.
Content ClassifyFile(int fd, off_t size, char* scratch, const char* known = nullptr, size_t known_length = 0);

// "empty", "record", "marker", "lease" or "foreign".
const char* ContentName(Content content);

// True when kernel-lock may write its record into such a file.
inline bool IsOurs(Content content) {
  return content != Content::kForeign;
}

// True when kernel-lock may unlink such a file: ours, and not a lease file,
// whose fencing token must outlive every holder.
inline bool MayUnlink(Content content) {
  return content != Content::kForeign && content != Content::kLease;
}

}  // namespace kernel_lock
