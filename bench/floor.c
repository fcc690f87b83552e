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
 * Modes (built by bench/run.mjs with `cc -O2 -pthread`):
 *   floor cycle <path> <unlink 0|1> <duration ms>
 *       uncontended cycles for the duration; prints one line of per-cycle ns.
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
 *       "exit".
 *   floor serve-async <path> <unlink 0|1> [pin]
 *       the same protocol (flock), each blocking acquisition made the way an
 *       async Node waiter makes it: a waiter thread blocks in flock, then
 *       wakes the main thread asleep in epoll_wait (see "The two-wake-up
 *       waiter" below). "pin" (an experiment, bench/twowake.mjs) pins the
 *       waiter thread to the CPU the main thread last ran on.
 * Timestamps are CLOCK_MONOTONIC, the clock behind process.hrtime.bigint().
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <time.h>
#include <unistd.h>

static const char kRecord[] =
    "{\"format\":\"kernel-lock/1\",\"pid\":12345,\"starttime\":123456,\"hostname\":\"bench\","
    "\"bootId\":\"00000000-0000-0000-0000-000000000000\",\"pidNamespace\":\"pid:[4026531836]\","
    "\"argv\":[\"node\",\"bench\"],\"createdAt\":\"2026-01-01T00:00:00.000Z\",\"kind\":\"flock\","
    "\"mode\":\"exclusive\"}\n";

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void die(const char* what) {
  perror(what);
  exit(2);
}

enum kind { kFlock, kOfd, kPosix };
static enum kind lock_kind = kFlock;

static int lock_fd(int fd, int blocking) {
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

static int open_lock_file(const char* path) {
  int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK, 0644);
  if (fd < 0) die("open");
  return fd;
}

/* The checks kernel-lock makes before it waits: the type, the file system. */
static void before_wait(int fd) {
  struct stat by_fd;
  struct statfs fs;
  if (fstat(fd, &by_fd) != 0) die("fstat");
  if (fstatfs(fd, &fs) != 0) die("fstatfs");
}

/* What follows the grant: the path still names the locked inode, then the
 * owner record. Returns 0, or -1 when the file was unlinked or replaced
 * while we waited (the lock guards nothing: the caller starts over). */
static int verify_and_record(const char* path, int fd, int waited) {
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

/*
 * The two-wake-up waiter: the shape of every async waiter in Node, kernel-lock
 * lock() included (native/waiter_threads.cc, waiter.cc, wait_hub.cc), in C.
 * The main thread tries once without blocking; when the lock is busy it makes
 * the pre-wait checks, hands the descriptor to a parked waiter thread
 * (mutex + condition variable) and sleeps in epoll_wait on an eventfd, as
 * libuv's loop does on its uv_async_t. The waiter thread blocks in flock(2);
 * on the grant it runs kernel-lock's verification and owner record on the
 * same thread (fstat, lstat, pread, pwrite), posts the descriptor under the
 * mutex and writes the eventfd (uv_async_send), then parks again. The main
 * thread wakes, reads the eventfd and holds the lock. A hand-off thus pays
 * two wake-ups in series (the waiter thread's, then the main thread's) where
 * a process blocked in flock pays one. kernel-lock's thread also unblocks its
 * cancellation signal around the blocking call (native/interrupt.cc): the
 * two sigprocmask calls are made here too. Its thread exits after 2 s parked;
 * this one parks for good (a thread is created only once per process).
 */
static struct {
  pthread_mutex_t mutex;
  pthread_cond_t wake;
  pthread_t thread;
  int started;
  const char* path;
  int job_fd;   /* handed to the thread, -1 when none */
  int done_fd;  /* posted by the thread, -1 when none */
  int pin_cpu;  /* pin the thread to the main thread's last CPU (experiment), -1: do not */
  int event_fd; /* the loop's eventfd */
  int epoll_fd; /* the loop */
} loop = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0, NULL, -1, -1, -1, -1, -1};

static int pin_waiter = 0;

static int interrupt_signal(void) {
  return SIGRTMAX - 1;
}

/* On the waiter thread: wait for the lock on fd, verify, record; as
 * GrantWork::Run does, a replaced file is reopened and locked on this
 * thread, the orphan kept locked until the new file is held. */
static int wait_on_thread(const char* path, int fd) {
  sigset_t ours;
  sigemptyset(&ours);
  sigaddset(&ours, interrupt_signal());
  for (;;) {
    pthread_sigmask(SIG_UNBLOCK, &ours, NULL);
    int rc = lock_fd(fd, 1);
    pthread_sigmask(SIG_BLOCK, &ours, NULL);
    if (rc != 0) die("flock");
    if (verify_and_record(path, fd, 1) == 0) return fd;
    int orphan = fd;
    fd = open_lock_file(path);
    if (lock_fd(fd, 0) == 0) {
      close(orphan);
      if (verify_and_record(path, fd, 0) == 0) return fd;
      continue; /* replaced again: wait on the one we hold (granted at once) */
    }
    if (errno != EWOULDBLOCK) die("flock");
    before_wait(fd);
    pthread_sigmask(SIG_UNBLOCK, &ours, NULL);
    rc = lock_fd(fd, 1);
    pthread_sigmask(SIG_BLOCK, &ours, NULL);
    if (rc != 0) die("flock");
    close(orphan);
    if (verify_and_record(path, fd, 1) == 0) return fd;
  }
}

static void* waiter_main(void* unused) {
  (void)unused;
  sigset_t all;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, NULL);
  pthread_mutex_lock(&loop.mutex);
  for (;;) {
    while (loop.job_fd < 0) pthread_cond_wait(&loop.wake, &loop.mutex); /* parked */
    int fd = loop.job_fd;
    loop.job_fd = -1;
    int cpu = loop.pin_cpu;
    pthread_mutex_unlock(&loop.mutex);
    if (cpu >= 0) {
      cpu_set_t set;
      CPU_ZERO(&set);
      CPU_SET(cpu, &set);
      pthread_setaffinity_np(pthread_self(), sizeof set, &set);
    }
    fd = wait_on_thread(loop.path, fd);
    pthread_mutex_lock(&loop.mutex); /* the hub's queue */
    loop.done_fd = fd;
    pthread_mutex_unlock(&loop.mutex);
    uint64_t one = 1;
    if (write(loop.event_fd, &one, sizeof one) != sizeof one) die("write eventfd");
    pthread_mutex_lock(&loop.mutex);
  }
  return NULL;
}

static int acquire_async(const char* path) {
  for (;;) {
    int fd = open_lock_file(path);
    if (lock_fd(fd, 0) == 0) {
      if (verify_and_record(path, fd, 0) == 0) return fd;
      close(fd);
      continue;
    }
    if (errno != EWOULDBLOCK) die("flock");
    before_wait(fd);
    pthread_mutex_lock(&loop.mutex);
    loop.path = path;
    loop.job_fd = fd;
    loop.pin_cpu = pin_waiter ? sched_getcpu() : -1;
    if (!loop.started) {
      pthread_attr_t attr;
      pthread_attr_init(&attr);
      pthread_attr_setstacksize(&attr, 256 * 1024);
      pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
      if (pthread_create(&loop.thread, &attr, waiter_main, NULL) != 0) die("pthread_create");
      pthread_attr_destroy(&attr);
      loop.started = 1;
    }
    pthread_mutex_unlock(&loop.mutex);
    pthread_cond_signal(&loop.wake);
    /* The event loop's sleep. */
    struct epoll_event event;
    int n;
    do n = epoll_wait(loop.epoll_fd, &event, 1, -1);
    while (n < 0 && errno == EINTR);
    if (n != 1) die("epoll_wait");
    uint64_t count;
    if (read(loop.event_fd, &count, sizeof count) != sizeof count) die("read eventfd");
    pthread_mutex_lock(&loop.mutex);
    fd = loop.done_fd;
    loop.done_fd = -1;
    pthread_mutex_unlock(&loop.mutex);
    return fd;
  }
}

static void open_loop(void) {
  loop.event_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK); /* as libuv's uv_async_t */
  loop.epoll_fd = epoll_create1(EPOLL_CLOEXEC);
  if (loop.event_fd < 0 || loop.epoll_fd < 0) die("eventfd/epoll");
  struct epoll_event event = {.events = EPOLLIN, .data = {.fd = loop.event_fd}};
  if (epoll_ctl(loop.epoll_fd, EPOLL_CTL_ADD, loop.event_fd, &event) != 0) die("epoll_ctl");
  /* Blocked in the main thread too: a process-directed copy goes to no one. */
  sigset_t ours;
  sigemptyset(&ours);
  sigaddset(&ours, interrupt_signal());
  pthread_sigmask(SIG_BLOCK, &ours, NULL);
}

static int async_waiter = 0;

/* The blocking acquisition of serve mode: in this process, or (serve-async)
 * on the waiter thread while the main thread sleeps in epoll_wait. */
static int take(const char* path) {
  return async_waiter ? acquire_async(path) : acquire(path, 1);
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

static long append(const char* path, int do_unlink, const char* data, double duration_ms, uint64_t start_ns) {
  char head[32];
  int out = open(data, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  if (out < 0) die("open data");
  /* Two writes per line, as bench/worker.mjs does, so broken exclusion shows. */
  int len = snprintf(head, sizeof head, "%d ", (int)getpid());
  uint64_t now = now_ns();
  if (start_ns > now) {
    struct timespec ts = {(time_t)((start_ns - now) / 1000000000u), (long)((start_ns - now) % 1000000000u)};
    nanosleep(&ts, NULL);
  }
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
    } else if (strncmp(line, "exit", 4) == 0) {
      break;
    }
  }
  return 0;
}

int main(int argc, char** argv) {
  if (argc >= 5 && strcmp(argv[1], "cycle") == 0) return cycle(argv[2], atoi(argv[3]), atof(argv[4]));
  if (argc >= 4 && strcmp(argv[1], "serve") == 0) {
    if (argc >= 5 && strcmp(argv[4], "ofd") == 0) lock_kind = kOfd;
    if (argc >= 5 && strcmp(argv[4], "posix") == 0) lock_kind = kPosix;
    return serve(argv[2], atoi(argv[3]));
  }
  if (argc >= 4 && strcmp(argv[1], "serve-async") == 0) {
    async_waiter = 1;
    pin_waiter = argc >= 5 && strcmp(argv[4], "pin") == 0;
    open_loop();
    return serve(argv[2], atoi(argv[3]));
  }
  fprintf(stderr, "usage: floor cycle|serve|serve-async <path> <unlink 0|1> ...\n");
  return 2;
}
