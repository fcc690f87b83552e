#include "record_content.h"

#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "raw_syscall.h"

namespace kernel_lock {

namespace {

// Bytes that end a plain run inside a JSON string: the quote, the
// backslash and the control characters (which JSON does not allow raw).
constexpr struct StringSpecial {
  bool table[256];
  constexpr StringSpecial() : table() {
    for (int c = 0; c < 0x20; ++c) table[c] = true;
    table[static_cast<unsigned char>('"')] = true;
    table[static_cast<unsigned char>('\\')] = true;
  }
  constexpr bool operator[](unsigned char c) const { return table[c]; }
} kStringSpecial;

// A strict JSON reader over a bounded buffer, just enough to tell "one JSON
// object whose top-level keys are record fields" from anything else. It
// never allocates and gives up (foreign) on anything unexpected.
class Reader {
 public:
  Reader(const char* data, size_t size) : p_(data), end_(data + size) {}

  void SkipSpace() {
    while (p_ < end_ && (*p_ == ' ' || *p_ == '\n' || *p_ == '\r' || *p_ == '\t')) ++p_;
  }
  bool AtEnd() const { return p_ == end_; }
  bool Consume(char c) {
    if (p_ < end_ && *p_ == c) {
      ++p_;
      return true;
    }
    return false;
  }

  // A string; on success [*begin, *end) is its raw content and *escaped
  // says whether it holds escapes (then it never equals a plain key).
  bool String(const char** begin, const char** end, bool* escaped) {
    if (!Consume('"')) return false;
    *begin = p_;
    *escaped = false;
    while (p_ < end_) {
      // The plain run first, one table lookup per byte: strings are most of a record.
      while (p_ < end_ && !kStringSpecial[static_cast<unsigned char>(*p_)]) ++p_;
      if (p_ == end_) break;
      unsigned char c = static_cast<unsigned char>(*p_);
      if (c == '"') {
        *end = p_++;
        return true;
      }
      if (c < 0x20) return false;
      if (c == '\\') {
        *escaped = true;
        if (++p_ == end_) return false;
        if (*p_ == 'u') {
          for (int i = 0; i < 4; ++i) {
            if (++p_ == end_ || !IsHex(*p_)) return false;
          }
        } else if (std::strchr("\"\\/bfnrt", *p_) == nullptr) {
          return false;
        }
      }
      ++p_;
    }
    return false;
  }

  // A number; *integer says whether it had no fraction or exponent.
  bool Number(bool* integer) {
    *integer = true;
    Consume('-');
    if (Consume('0')) {
      // no leading zeros
    } else if (!Digits()) {
      return false;
    }
    if (Consume('.')) {
      *integer = false;
      if (!Digits()) return false;
    }
    if (p_ < end_ && (*p_ == 'e' || *p_ == 'E')) {
      *integer = false;
      ++p_;
      if (!Consume('+')) Consume('-');
      if (!Digits()) return false;
    }
    return true;
  }

  // Any JSON value, nested at most kMaxDepth deep.
  bool Value(int depth) {
    if (depth > kMaxDepth || p_ == end_) return false;
    const char* b;
    const char* e;
    bool escaped;
    bool integer;
    switch (*p_) {
      case '"': return String(&b, &e, &escaped);
      case '{': return Object(depth + 1, nullptr);
      case '[': {
        ++p_;
        SkipSpace();
        if (Consume(']')) return true;
        for (;;) {
          SkipSpace();
          if (!Value(depth + 1)) return false;
          SkipSpace();
          if (Consume(']')) return true;
          if (!Consume(',')) return false;
        }
      }
      case 't': return Word("true");
      case 'f': return Word("false");
      case 'n': return Word("null");
      default: return Number(&integer);
    }
  }

  // What the top-level object says about itself.
  struct Fields {
    bool all_known = true;     // every key is a field of records or markers
    bool kernel_lock = false;  // "format": "kernel-lock/1"
    bool numeric_pid = false;  // "pid": <integer>
  };

  // An object; with `fields`, its keys are checked against the record
  // vocabulary (only at the top level).
  bool Object(int depth, Fields* fields) {
    if (depth > kMaxDepth || !Consume('{')) return false;
    SkipSpace();
    if (Consume('}')) return true;
    for (;;) {
      SkipSpace();
      const char* key;
      const char* key_end;
      bool escaped;
      if (!String(&key, &key_end, &escaped)) return false;
      SkipSpace();
      if (!Consume(':')) return false;
      SkipSpace();
      const char* value = p_;
      if (!Value(depth)) return false;
      if (fields != nullptr) Note(fields, key, key_end, escaped, value, p_);
      SkipSpace();
      if (Consume('}')) return true;
      if (!Consume(',')) return false;
    }
  }

 private:
  static constexpr int kMaxDepth = 16;

  static bool IsHex(char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }

  bool Digits() {
    const char* start = p_;
    while (p_ < end_ && *p_ >= '0' && *p_ <= '9') ++p_;
    return p_ != start;
  }

  bool Word(const char* word) {
    size_t n = std::strlen(word);
    if (static_cast<size_t>(end_ - p_) < n || std::memcmp(p_, word, n) != 0) return false;
    p_ += n;
    return true;
  }

  template <size_t N>
  static bool Equals(const char* begin, const char* end, const char (&literal)[N]) {
    return static_cast<size_t>(end - begin) == N - 1 && std::memcmp(begin, literal, N - 1) == 0;
  }

  // Every field kernel-lock's records and the legacy markers carry.
  static bool KnownKey(const char* key, const char* key_end) {
    switch (key_end - key) {
      case 3: return Equals(key, key_end, "pid");
      case 4: return Equals(key, key_end, "argv") || Equals(key, key_end, "kind") || Equals(key, key_end, "mode");
      case 5: return Equals(key, key_end, "owner");
      case 6: return Equals(key, key_end, "format") || Equals(key, key_end, "bootId");
      case 8: return Equals(key, key_end, "hostname") || Equals(key, key_end, "threadId");
      case 9: return Equals(key, key_end, "createdAt") || Equals(key, key_end, "starttime");
      case 12: return Equals(key, key_end, "pidNamespace");
      default: return false;
    }
  }

  static void Note(Fields* fields, const char* key, const char* key_end, bool escaped, const char* value,
                   const char* value_end) {
    if (escaped || !KnownKey(key, key_end)) fields->all_known = false;
    if (escaped) return;
    if (Equals(key, key_end, "format") && Equals(value, value_end, "\"kernel-lock/1\"")) fields->kernel_lock = true;
    if (Equals(key, key_end, "pid") && value < value_end && (*value == '-' || (*value >= '0' && *value <= '9'))) {
      bool integer = true;
      for (const char* c = value; c < value_end; ++c) integer = integer && *c != '.' && *c != 'e' && *c != 'E';
      fields->numeric_pid = integer;
    }
  }

  const char* p_;
  const char* end_;
};

}  // namespace

Content ClassifyBytes(const char* data, size_t size) {
  if (size == 0) return Content::kEmpty;
  if (size > static_cast<size_t>(kMaxRecordBytes)) return Content::kForeign;
  Reader reader(data, size);
  reader.SkipSpace();
  Reader::Fields fields;
  if (!reader.Object(0, &fields)) return Content::kForeign;
  reader.SkipSpace();
  if (!reader.AtEnd()) return Content::kForeign;
  if (fields.kernel_lock) return Content::kRecord;
  if (fields.numeric_pid && fields.all_known) return Content::kMarker;
  return Content::kForeign;
}

namespace {

bool IsBlank(const char* data, size_t size) {
  for (size_t i = 0; i < size; ++i) {
    if (data[i] != ' ' && data[i] != '\n') return false;
  }
  return true;
}

ssize_t ReadAt(int fd, char* buffer, size_t size, off_t offset) {
  ssize_t got;
  do got = RawPread(fd, buffer, size, offset);
  while (got < 0 && errno == EINTR);
  return got;
}

// A lease file: the slot's magic right after the record area, and a record
// area that is blank or holds one record or marker.
bool IsLeaseFile(int fd, off_t size) {
  constexpr size_t kMagic = sizeof(kLeaseSlotMagic) - 1;
  if (size < kMaxRecordBytes + static_cast<off_t>(kMagic) || size > kMaxRecordBytes + kLeaseSlotBytes) return false;
  char magic[kMagic];
  if (ReadAt(fd, magic, kMagic, kMaxRecordBytes) != static_cast<ssize_t>(kMagic)) return false;
  if (std::memcmp(magic, kLeaseSlotMagic, kMagic) != 0) return false;
  char area[kMaxRecordBytes];
  if (ReadAt(fd, area, sizeof(area), 0) != static_cast<ssize_t>(sizeof(area))) return false;
  return IsBlank(area, sizeof(area)) || ClassifyBytes(area, sizeof(area)) != Content::kForeign;
}

}  // namespace

const char* ContentName(Content content) {
  switch (content) {
    case Content::kEmpty: return "empty";
    case Content::kRecord: return "record";
    case Content::kMarker: return "marker";
    case Content::kLease: return "lease";
    case Content::kForeign: return "foreign";
  }
  return "foreign";
}

Content ClassifyFile(int fd, off_t size) {
  char buffer[kScratchBytes];
  return ClassifyFile(fd, size, buffer);
}

Content ClassifyFile(int fd, off_t size, char* scratch, const char* known, size_t known_length) {
  if (size == 0) return Content::kEmpty;
  if (size > kMaxRecordBytes) return IsLeaseFile(fd, size) ? Content::kLease : Content::kForeign;
  if (size < 0) return Content::kForeign;
  // One byte more than fstat reported: a file that grew or shrank since
  // then is changing under us, and when in doubt it is foreign.
  ssize_t got = ReadAt(fd, scratch, static_cast<size_t>(size) + 1, 0);
  if (got != static_cast<ssize_t>(size)) return Content::kForeign;
  if (known != nullptr && known_length == static_cast<size_t>(got) && std::memcmp(scratch, known, known_length) == 0) {
    return Content::kRecord;
  }
  return ClassifyBytes(scratch, static_cast<size_t>(got));
}

}  // namespace kernel_lock
