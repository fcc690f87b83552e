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
// src/lock/owner-record.ts, MAX_RECORD_BYTES).
constexpr off_t kMaxRecordBytes = 4096;

enum class Content {
  kEmpty,    // zero bytes
  kRecord,   // one JSON object with "format": "kernel-lock/1", then only white space
  kMarker,   // one JSON object of legacy marker fields ({pid, createdAt, starttime}) with a numeric pid
  kForeign,  // anything else, including what could not be read
};

// Classifies `size` bytes of content (what the caller read).
Content ClassifyBytes(const char* data, size_t size);

// Reads the file behind `fd` (at most kMaxRecordBytes, from offset 0; `size`
// is its current size from fstat) and classifies it. A read error counts as
// foreign: when in doubt, touch nothing.
Content ClassifyFile(int fd, off_t size);

// True when kernel-lock may write its record into, or unlink, such a file.
inline bool IsOurs(Content content) {
  return content != Content::kForeign;
}

}  // namespace kernel_lock
