/*
 * The physical floor: the syscall sequence kernel-lock makes for one lock
 * cycle, in plain C with nothing around it, so the Node figures can be read
 * as "how far above what the kernel itself costs".
 *
 *   open(O_RDWR|O_CREAT|O_CLOEXEC|O_NOFOLLOW|O_NONBLOCK)
 *   flock(LOCK_EX|LOCK_NB)
 *   [when busy: fstat + fstatfs, then the blocking lock]
 *   fstat + lstat (the path still names the locked inode)
 *   fstatfs (not a kernel pseudo file system; before the wait when there was one)
 *   pread (is the content a record? foreign content is never written over)
 *   pwrite(owner record, offset 0; a longer previous record blanked with spaces)
 *   [fstat + lstat + pread + unlink]  only in "unlink" mode (removeOnRelease)
 *   close               (releases the lock)
 *
 * Modes (built by bench/run.mjs: `cc -O2 -pthread floor.c floor-waiters.c`):
 *   floor cycle <path> <unlink 0|1> <duration ms>
 *       uncontended cycles for the duration; prints one line of per-cycle ns.
 *   floor cycle-mt <path> <unlink 0|1> <duration ms>
 *       the same with one idle thread in the process, as every Node process
 *       has: the kernel then counts references on each descriptor lookup
 *       (the table is shared) and glibc brackets cancellation points
 *       (bench/hot-path.mjs shows what that costs).
 *   floor serve <path> <unlink 0|1> [flock|ofd|posix]
 *       the bench's child protocol on stdin/stdout (see bench/worker.mjs):
 *       "acquire" -> "waiting <ns>" then "acquired <ns>" (blocking lock of
 *       the given kind; ofd and posix lock the whole file with fcntl),
 *       "release" -> "released <ns>", "drop" -> releases and prints nothing
 *       (a hand-off's holder must not write to a pipe inside the measured
 *       window), "when" -> "dropped <ns>" (the instant of the last drop),
 *       "cycle" (acquire + release),
 *       "append <data file> <ms> <start ns>" -> from the start instant on,
 *       appends one line under the lock per cycle for <ms>; "count <n>";
 *       "loop <start ns> <ms> <hold µs> <pause µs>" -> a crowd member:
 *       acquire, hold, release, pause (jittered 0.5-1.5x), from the start
 *       instant for <ms>;
 *       "looped <late> <n> <began> <queued> <held> ..." (bench/twowake.mjs);
 *       "exit".
 *   floor serve-async <path> <unlink 0|1> [pin]
 *       the same protocol (flock), each blocking acquisition made the way an
 *       async Node waiter makes it: a waiter thread blocks in flock, then
 *       wakes the main thread asleep in epoll_wait (bench/floor-waiters.c).
 *       "pin" (an experiment, bench/twowake.mjs) pins the waiter thread to
 *       the CPU the main thread last ran on.
 *   floor serve-inotify <path> <unlink 0|1>
 *       the same protocol (flock); an experiment (bench/twowake.mjs): one
 *       thread, asleep in epoll_wait on an inotify watch of the lock file,
 *       retrying without blocking on every close (bench/floor-waiters.c).
 * Timestamps are CLOCK_MONOTONIC, the clock behind process.hrtime.bigint().
 */
#define _GNU_SOURCE
#include "floor.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <time.h>
#include <unistd.h>

uint64_t queued_ns = 0;

static const char kRecord[] =
    "{\"format\":\"kernel-lock/1\",\"pid\":12345,\"starttime\":123456,\"hostname\":\"bench\","
    "\"bootId\":\"00000000-0000-0000-0000-000000000000\",\"pidNamespace\":\"pid:[4026531836]\","
    "\"argv\":[\"node\",\"bench\"],\"createdAt\":\"2026-01-01T00:00:00.000Z\",\"kind\":\"flock\","
    "\"mode\":\"exclusive\"}\n";

uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void die(const char* what) {
  perror(what);
  exit(2);
}

enum kind { kFlock, kOfd, kPosix };
static enum kind lock_kind = kFlock;

int lock_fd(int fd, int blocking) {
  if (lock_kind == kFlock) return flock(fd, LOCK_EX | (blocking ? 0 : LOCK_NB));
  struct flock fl;
  memset(&fl, 0, sizeof fl);
  fl.l_type = F_WRLCK;
  fl.l_whence = SEEK_SET;
  int cmd = lock_kind == kOfd ? (blocking ? F_OFD_SETLKW : F_OFD_SETLK) : (blocking ? F_SETLKW : F_SETLK);
  int rc = fcntl(fd, cmd, &fl);
  if (rc != 0 && errno == EACCES) errno = EWOULDBLOCK;
  return rc;
}

int open_lock_file(const char* path) {
  int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK, 0644);
  if (fd < 0) die("open");
  return fd;
}

/* The checks kernel-lock makes before it waits: the type, the file system. */
void before_wait(int fd) {
  struct stat by_fd;
  struct statfs fs;
  if (fstat(fd, &by_fd) != 0) die("fstat");
  if (fstatfs(fd, &fs) != 0) die("fstatfs");
}

/* What follows the grant: the path still names the locked inode, then the
 * owner record. Returns 0, or -1 when the file was unlinked or replaced
 * while we waited (the lock guards nothing: the caller starts over). */
int verify_and_record(const char* path, int fd, int waited) {
  struct stat by_fd, by_path;
  struct statfs fs;
  if (fstat(fd, &by_fd) != 0) die("fstat");
  if (lstat(path, &by_path) != 0 || by_path.st_ino != by_fd.st_ino || by_path.st_dev != by_fd.st_dev) return -1;
  /* kernel-lock refuses files on kernel pseudo file systems (procfs...);
   * after a wait it checked before waiting. */
  if (!waited && fstatfs(fd, &fs) != 0) die("fstatfs");
  /* kernel-lock reads what is there (at most 4 KiB + 1) before writing. */
  char head[4097];
  if (by_fd.st_size > 0 && by_fd.st_size < (off_t)sizeof head && pread(fd, head, (size_t)by_fd.st_size + 1, 0) < 0)
    die("pread");
  /* and blanks the rest of a longer previous record (JSON allows trailing
   * white space), so the file stays one record whoever wrote last. */
  size_t length = sizeof kRecord - 1;
  const char* data = kRecord;
  if (by_fd.st_size > (off_t)length && by_fd.st_size < (off_t)sizeof head) {
    memcpy(head, kRecord, length);
    memset(head + length, ' ', (size_t)by_fd.st_size - length);
    head[by_fd.st_size - 1] = '\n';
    data = head;
    length = (size_t)by_fd.st_size;
  }
  if (pwrite(fd, data, length, 0) < 0) die("pwrite");
  return 0;
}

/* Opens, locks (blocking or not), verifies and writes the record. Returns the
 * fd, or -1 when a non-blocking attempt found the lock busy. */
static int acquire(const char* path, int blocking) {
  for (;;) {
    int fd = open_lock_file(path);
    int waited = 0;
    /* As kernel-lock: one non-blocking attempt; when busy, the type and
     * file system checks, then the wait. */
    if (lock_fd(fd, 0) != 0) {
      if (errno != EWOULDBLOCK) die("flock");
      if (!blocking) {
        close(fd);
        return -1;
      }
      before_wait(fd);
      queued_ns = now_ns();
      if (lock_fd(fd, 1) != 0) die("flock");
      waited = 1;
    }
    if (verify_and_record(path, fd, waited) == 0) return fd;
    close(fd); /* unlinked or replaced while we waited: start over */
  }
}

static void release(const char* path, int fd, int do_unlink) {
  if (do_unlink) {
    /* As kernel-lock does: unlink only while the path still names our inode. */
    struct stat by_fd, by_path;
    if (fstat(fd, &by_fd) != 0) die("fstat");
    char head[4097];
    if (lstat(path, &by_path) == 0 && by_path.st_ino == by_fd.st_ino && by_path.st_dev == by_fd.st_dev &&
        (by_fd.st_size == 0 || by_fd.st_size >= (off_t)sizeof head ||
         pread(fd, head, (size_t)by_fd.st_size + 1, 0) >= 0) &&
        unlink(path) != 0)
      die("unlink");
  }
  if (close(fd) != 0) die("close");
}

enum waiter { kBlocked, kAsync, kInotify };
static enum waiter waiter_shape = kBlocked;

/* The blocking acquisition of serve mode: blocked in this thread, or the way
 * an async waiter makes it (bench/floor-waiters.c). */
static int take(const char* path) {
  if (waiter_shape == kAsync) return acquire_async(path);
  if (waiter_shape == kInotify) return acquire_inotify(path);
  return acquire(path, 1);
}

static int cycle(const char* path, int do_unlink, double duration_ms) {
  size_t cap = 1 << 16, n = 0;
  uint64_t* samples = malloc(cap * sizeof *samples);
  if (samples == NULL) die("malloc");
  uint64_t end = now_ns() + (uint64_t)(duration_ms * 1e6);
  for (;;) {
    uint64_t t0 = now_ns();
    if (t0 >= end) break;
    int fd = acquire(path, 0);
    if (fd < 0) {
      fprintf(stderr, "lock busy in an uncontended run\n");
      return 2;
    }
    release(path, fd, do_unlink);
    uint64_t t1 = now_ns();
    if (n == cap) {
      cap *= 2;
      samples = realloc(samples, cap * sizeof *samples);
      if (samples == NULL) die("realloc");
    }
    samples[n++] = t1 - t0;
  }
  for (size_t i = 0; i < n; ++i) printf(i == 0 ? "%llu" : " %llu", (unsigned long long)samples[i]);
  printf("\n");
  free(samples);
  return 0;
}

static void sleep_until(uint64_t instant_ns) {
  uint64_t now = now_ns();
  if (instant_ns <= now) return;
  struct timespec ts = {(time_t)((instant_ns - now) / 1000000000u), (long)((instant_ns - now) % 1000000000u)};
  nanosleep(&ts, NULL);
}

/* A crowd member (bench/twowake.mjs): from the start instant on, for <ms>,
 * acquire, hold <hold µs>, release, pause about <pause µs>. Prints "looped <late
 * wakes> <n>" and, per acquisition, the instant it began, the instant it
 * entered the wait (0: it did not wait) and the instant it held the lock,
 * so the parent can count who was served before an earlier waiter. */
static void crowd_loop(const char* path, int do_unlink, uint64_t start_ns, double duration_ms, double hold_us,
                       double pause_us) {
  size_t cap = 4096, n = 0;
  uint64_t* at = malloc(cap * 3 * sizeof *at);
  if (at == NULL) die("malloc");
  sleep_until(start_ns);
  uint64_t end = now_ns() + (uint64_t)(duration_ms * 1e6);
  struct timespec hold = {(time_t)(hold_us / 1e6), (long)(hold_us * 1e3) % 1000000000L};
  srand((unsigned)getpid());
  for (uint64_t began = now_ns(); began < end; began = now_ns()) {
    queued_ns = 0;
    int fd = take(path);
    uint64_t held = now_ns();
    if (n < cap) {
      at[3 * n] = began;
      at[3 * n + 1] = queued_ns;
      at[3 * n + 2] = held;
      ++n;
    }
    nanosleep(&hold, NULL);
    release(path, fd, do_unlink);
    if (pause_us > 0) {
      /* Jittered (0.5-1.5x): a fixed pause would lock the crowd into a phase
       * with the holds, and the order would measure that phase. */
      long ns = (long)(pause_us * 1e3 * (0.5 + (double)rand() / RAND_MAX));
      struct timespec pause = {ns / 1000000000L, ns % 1000000000L};
      nanosleep(&pause, NULL);
    }
  }
  printf("looped %ld %zu", inotify_late_wakes, n);
  for (size_t i = 0; i < 3 * n; ++i) printf(" %llu", (unsigned long long)at[i]);
  printf("\n");
  free(at);
}

static long append(const char* path, int do_unlink, const char* data, double duration_ms, uint64_t start_ns) {
  char head[32];
  int out = open(data, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  if (out < 0) die("open data");
  /* Two writes per line, as bench/worker.mjs does, so broken exclusion shows. */
  int len = snprintf(head, sizeof head, "%d ", (int)getpid());
  sleep_until(start_ns);
  uint64_t end = now_ns() + (uint64_t)(duration_ms * 1e6);
  long count = 0;
  while (now_ns() < end) {
    int fd = take(path);
    if (write(out, head, (size_t)len) != len || write(out, "append\n", 7) != 7) die("write");
    release(path, fd, do_unlink);
    ++count;
  }
  close(out);
  return count;
}

static int serve(const char* path, int do_unlink) {
  char line[4096 + 64];
  int fd = -1;
  uint64_t dropped = 0;
  setvbuf(stdout, NULL, _IOLBF, 0);
  printf("ready %d\n", (int)getpid());
  while (fgets(line, sizeof line, stdin) != NULL) {
    if (strncmp(line, "acquire", 7) == 0) {
      printf("waiting %llu\n", (unsigned long long)now_ns());
      fd = take(path);
      printf("acquired %llu\n", (unsigned long long)now_ns());
    } else if (strncmp(line, "release", 7) == 0) {
      uint64_t t = now_ns();
      release(path, fd, do_unlink);
      fd = -1;
      printf("released %llu\n", (unsigned long long)t);
    } else if (strncmp(line, "drop", 4) == 0) {
      dropped = now_ns();
      release(path, fd, do_unlink);
      fd = -1;
    } else if (strncmp(line, "when", 4) == 0) {
      printf("dropped %llu\n", (unsigned long long)dropped);
    } else if (strncmp(line, "cycle", 5) == 0) {
      printf("waiting %llu\n", (unsigned long long)now_ns());
      int held = take(path);
      printf("acquired %llu\n", (unsigned long long)now_ns());
      release(path, held, do_unlink);
      printf("cycled\n");
    } else if (strncmp(line, "append ", 7) == 0) {
      char data[4096];
      double ms;
      unsigned long long start;
      if (sscanf(line + 7, "%4095s %lf %llu", data, &ms, &start) != 3) die("append arguments");
      printf("count %ld\n", append(path, do_unlink, data, ms, start));
    } else if (strncmp(line, "loop ", 5) == 0) {
      unsigned long long start;
      double ms, hold_us, pause_us;
      if (sscanf(line + 5, "%llu %lf %lf %lf", &start, &ms, &hold_us, &pause_us) != 4) die("loop arguments");
      crowd_loop(path, do_unlink, start, ms, hold_us, pause_us);
    } else if (strncmp(line, "exit", 4) == 0) {
      break;
    }
  }
  return 0;
}

static void* idle_thread(void* unused) {
  (void)unused;
  for (;;) pause();
  return NULL;
}

int main(int argc, char** argv) {
  if (argc >= 5 && strcmp(argv[1], "cycle") == 0) return cycle(argv[2], atoi(argv[3]), atof(argv[4]));
  if (argc >= 5 && strcmp(argv[1], "cycle-mt") == 0) {
    pthread_t idle;
    if (pthread_create(&idle, NULL, idle_thread, NULL) != 0) die("pthread_create");
    return cycle(argv[2], atoi(argv[3]), atof(argv[4]));
  }
  if (argc >= 4 && strcmp(argv[1], "serve") == 0) {
    if (argc >= 5 && strcmp(argv[4], "ofd") == 0) lock_kind = kOfd;
    if (argc >= 5 && strcmp(argv[4], "posix") == 0) lock_kind = kPosix;
    return serve(argv[2], atoi(argv[3]));
  }
  if (argc >= 4 && strcmp(argv[1], "serve-async") == 0) {
    waiter_shape = kAsync;
    open_async_waiter(argc >= 5 && strcmp(argv[4], "pin") == 0);
    return serve(argv[2], atoi(argv[3]));
  }
  if (argc >= 4 && strcmp(argv[1], "serve-inotify") == 0) {
    waiter_shape = kInotify;
    open_inotify_waiter();
    return serve(argv[2], atoi(argv[3]));
  }
  fprintf(stderr, "usage: floor cycle|cycle-mt|serve|serve-async|serve-inotify <path> <unlink 0|1> ...\n");
  return 2;
}
