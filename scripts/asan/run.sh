#!/usr/bin/env bash
# Runs the native-heavy test files against the ASan+UBSan build of the addon
# (scripts/asan/build.sh) and writes their vitest report to
# test-results/asan.json, where scripts/summarize-results.mjs counts it.
# Exits non-zero when a test fails or any sanitizer report was written,
# including one from a child process whose exit status no test looked at.
#
# Node-specific settings (see docs/GUARANTEES.md, "Native hygiene"):
# - LD_PRELOAD=libasan.so: node itself is not instrumented, and the ASan
#   runtime must be the first library in the process, before the addon is
#   dlopen()ed ("ASan runtime does not come first in initial library list").
#   Every child process (workers, holders, flock(1), unshare) inherits it.
# - detect_leaks=0: at exit Node and V8 deliberately leave the isolate, the
#   platform threads, ICU and OpenSSL state allocated, so LeakSanitizer would
#   report thousands of blocks that are not ours. Leaks of the addon are
#   covered instead by the flatness tests (RSS, descriptors, threads over
#   100 000 cycles) and by RAII in the native code.
# - KERNEL_LOCK_PREBUILD=build-asan: node-gyp-build's <NAME>_PREBUILD
#   override, so the library loads build-asan/build/Release/kernel_lock.node.
set -uo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
mkdir -p test-results
if [ -f /etc/alpine-release ] || (ldd --version 2>&1 | grep -qi musl); then
  # gcc ships no sanitizer runtime for musl: there is nothing to run here.
  # Said loudly rather than skipped silently; the glibc jobs run it.
  echo 'asan: not applicable on musl libc (no ASan/UBSan runtime); run on a glibc system'
  exit 0
fi
libasan="$(gcc -print-file-name=libasan.so)"
if [ ! -f "$libasan" ]; then
  echo "asan: libasan.so not found (gcc -print-file-name gave '$libasan'); install libasan (Debian: part of gcc)" >&2
  exit 1
fi
scripts/asan/build.sh || exit 1
if grep -i 'warning' build-asan/build.log; then
  echo 'asan: the addon build printed warnings' >&2
  exit 1
fi
logs="$root/build-asan/reports"
rm -rf "$logs" && mkdir -p "$logs"
files=()
# The files that drive the native code hardest per second: waiter threads
# and their interruption (timeouts, aborts, signals, exit with waits
# pending), every open/lock error path (path buffers, special files), and
# option values at their limits. Chaos and load stay out: under ASan a Node
# start costs seconds, and they start hundreds of processes.
# process-wide.test.ts drives the process-wide posix table from several
# worker_threads (turns passed between threads, workers terminated while
# holding or queued); orphan-cycle.test.ts its EDEADLK retry.
# handoff.test.ts and workers.test.ts drive the waits' completion path
# (native/wait_hub.h): grants verified and recorded on waiter threads, files
# replaced under waiters, workers terminated with waits pending or being
# delivered. waiter-threads.test.ts the threads parked between waits
# (native/waiter_threads.h): reuse, lingering out, 512 at once, a worker's
# teardown. proc/descriptors.test.ts drives the native descriptor search
# (native/fdinfo_search.h): searches on waiter threads, processes exiting
# mid-search, workers terminated mid-search (the search abandoned), thread
# creation refused. inspect/worker.test.ts inspects from worker_threads
# through descriptors the addon opens and closes (native/addon_reader.cc).
for f in test/lock/basics.test.ts test/reliability/native-build.test.ts test/reliability/lifecycle.test.ts \
  test/reliability/hostile-input.test.ts test/property/options.test.ts test/lock/process-wide.test.ts \
  test/lock/orphan-cycle.test.ts test/lock/handoff.test.ts test/lock/workers.test.ts \
  test/lock/waiter-threads.test.ts test/proc/descriptors.test.ts test/inspect/worker.test.ts; do
  [ -f "$f" ] && files+=("$f")
done
# CI unset: with CI=true vitest.config.ts adds its own JSON reporter, which
# would overwrite npm test's test-results/vitest.json.
env -u CI LD_PRELOAD="$libasan" \
  ASAN_OPTIONS="detect_leaks=0:log_path=$logs/asan" \
  UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:log_path=$logs/ubsan" \
  KERNEL_LOCK_PREBUILD="$root/build-asan" \
  KERNEL_LOCK_CYCLES=3000 \
  npx vitest run "${files[@]}" --reporter=default --reporter=json --outputFile.json=test-results/asan.json
status=$?
if [ -n "$(ls -A "$logs")" ]; then
  echo 'asan: sanitizer reports were written:' >&2
  for report in "$logs"/*; do
    echo "--- $report" >&2
    head -60 "$report" >&2
  done
  status=1
fi
exit "$status"
