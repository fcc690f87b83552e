// Hostile and bad input at the lock path. Each case must fail with an error
// that names the path and the cause (or, where locking is legitimate, work
// and report what it could not do), and leave nothing behind: no new file,
// no changed file, no descriptor, no thread.
import { execFileSync, spawnSync } from 'node:child_process';
import {
  chmodSync,
  chownSync,
  existsSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { lock, lockSync, tryLock } from '../../src/index.js';
import { readRecord } from '../../src/lock/owner-record.js';
import { fdCount, holdInChild, root, tempDir, threadCount } from '../helpers.js';
import { itAsRoot, unshare } from '../privileges.js';
import { runNode } from './fixtures/run-child.js';

const NOBODY = 65534;
/** Tests that act as a second user (nobody): only root can switch to one. */
const itAsSecondUser = itAsRoot('a second user (nobody) is needed, and only root can become one');
/** mknod of a device node needs CAP_MKNOD in the host's user namespace. */
const itMknod = itAsRoot('mknod makes device nodes only with CAP_MKNOD');

let dir: string;
let cleanup: () => void;
beforeEach(() => {
  ({ dir, cleanup } = tempDir('kernel-lock-hostile-'));
});
afterEach(() => cleanup());

/** Names, types, sizes and contents of everything under `root`: "nothing left behind" means this is unchanged. */
function snapshot(root: string | Buffer, entries: string[] = []): string[] {
  for (const name of readdirSync(root, { encoding: 'buffer' })) {
    const full = Buffer.concat([Buffer.from(root), Buffer.from('/'), name]);
    const st = lstatSync(full);
    let content = '';
    if (st.isFile() && st.size < 65536) content = readFileSync(full).toString('base64');
    entries.push(`${full.toString('hex')} ${st.mode} ${st.uid} ${st.size} ${content}`);
    if (st.isDirectory()) snapshot(full, entries);
  }
  return entries.sort();
}

interface Expected {
  code: string;
  /** Text the message must contain besides the path (the cause and the fix). */
  hint: RegExp;
}

/** Every entry point fails the same clear way and leaves the directory, descriptors and threads as they were. */
async function expectCleanFailure(lockPath: string, expected: Expected, options: object = {}): Promise<void> {
  const attempts: [string, () => unknown][] = [
    ['lock', () => lock(lockPath, { timeout: 30_000, ...options })],
    ['tryLock', () => tryLock(lockPath, options)],
    ['lockSync', () => lockSync(lockPath, { timeout: 30_000, ...options })],
  ];
  for (const [name, attempt] of attempts) {
    const before = { fds: fdCount(), threads: threadCount(), files: snapshot(dir) };
    const started = performance.now();
    let error: (Error & { code?: string; path?: string }) | undefined;
    try {
      await attempt();
    } catch (caught) {
      error = caught as Error & { code?: string };
    }
    expect(error, `${name} should fail`).toBeInstanceOf(Error);
    expect(error!.code, `${name}: ${error!.message}`).toBe(expected.code);
    expect(error!.message).toContain(path.resolve(lockPath));
    expect(error!.path).toBe(path.resolve(lockPath));
    expect(error!.message).toMatch(expected.hint);
    // "no hang": a FIFO or socket must be rejected at once, not waited on
    // (the bound is generous for a loaded machine; a hang would be forever).
    expect(performance.now() - started).toBeLessThan(5000);
    expect({ fds: fdCount(), threads: threadCount(), files: snapshot(dir) }).toEqual(before);
  }
}

describe('symbolic links at the lock path are never followed or written through', () => {
  it('a link to an existing file: ELOOP, the target unchanged', async () => {
    const target = path.join(dir, 'precious.txt');
    writeFileSync(target, 'do not touch\n');
    symlinkSync(target, path.join(dir, 'a.lock'));
    await expectCleanFailure(path.join(dir, 'a.lock'), { code: 'ELOOP', hint: /symbolic link.*never follows/ });
    for (const kind of ['ofd', 'posix']) {
      await expectCleanFailure(path.join(dir, 'a.lock'), { code: 'ELOOP', hint: /symbolic link/ }, { kind });
    }
    expect(readFileSync(target, 'utf8')).toBe('do not touch\n');
  });

  it('a dangling link: ELOOP, its target is not created', async () => {
    symlinkSync(path.join(dir, 'would-be-created'), path.join(dir, 'b.lock'));
    await expectCleanFailure(path.join(dir, 'b.lock'), { code: 'ELOOP', hint: /symbolic link/ });
    expect(existsSync(path.join(dir, 'would-be-created'))).toBe(false);
  });

  itAsSecondUser(
    'a link planted by another user in a sticky world-writable directory (no kernel symlink protection relied on)',
    async () => {
      // Like /tmp: mode 1777. The attacker (uid 65534) plants a link from the
      // lock path to a file only root may write; root then locks the path.
      chmodSync(dir, 0o1777);
      const target = path.join(dir, 'root-only.conf');
      writeFileSync(target, 'setting=1\n', { mode: 0o600 });
      const lockPath = path.join(dir, 'victim.lock');
      const planted = await runNode(
        `import { symlinkSync, lstatSync } from 'node:fs';
       symlinkSync(${JSON.stringify(target)}, ${JSON.stringify(lockPath)});
       report({ uid: process.getuid(), owner: lstatSync(${JSON.stringify(lockPath)}).uid });`,
        { uid: NOBODY, gid: NOBODY },
      );
      expect(planted.json, planted.stderr).toEqual({ uid: NOBODY, owner: NOBODY });
      await expectCleanFailure(lockPath, { code: 'ELOOP', hint: /symbolic link/ });
      expect(readFileSync(target, 'utf8')).toBe('setting=1\n');
      expect(statSync(target).mode & 0o777).toBe(0o600);
    },
  );

  it('a symlinked directory component is fine (only the final component must not be a link)', async () => {
    mkdirSync(path.join(dir, 'real'));
    symlinkSync(path.join(dir, 'real'), path.join(dir, 'via'));
    const handle = await lock(path.join(dir, 'via', 'c.lock'), { removeOnRelease: true });
    expect(existsSync(path.join(dir, 'real', 'c.lock'))).toBe(true);
    await handle.release();
    expect(existsSync(path.join(dir, 'real', 'c.lock'))).toBe(false);
  });
});

describe('special files at the lock path: a clear error, never a hang', () => {
  it('FIFO', async () => {
    execFileSync('mkfifo', [path.join(dir, 'fifo.lock')]);
    await expectCleanFailure(path.join(dir, 'fifo.lock'), { code: 'EINVAL', hint: /is a FIFO, not a regular file/ });
  });

  it('UNIX socket with a live listener', async () => {
    const socketPath = path.join(dir, 'sock.lock');
    const server = net.createServer();
    await new Promise<void>((resolve) => server.listen(socketPath, resolve));
    try {
      await expectCleanFailure(socketPath, { code: 'ENXIO', hint: /socket/ });
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });

  it('directory', async () => {
    mkdirSync(path.join(dir, 'dir.lock'));
    await expectCleanFailure(path.join(dir, 'dir.lock'), { code: 'EISDIR', hint: /is a directory/ });
  });

  itMknod('character device made with mknod (the null device) and /dev/null itself', async () => {
    execFileSync('mknod', [path.join(dir, 'null.lock'), 'c', '1', '3']);
    await expectCleanFailure(path.join(dir, 'null.lock'), { code: 'EINVAL', hint: /character device/ });
    await expect(lock('/dev/null', { timeout: 0 })).rejects.toMatchObject({
      code: 'EINVAL',
      message: expect.stringMatching(/'\/dev\/null'.*character device/),
    });
  });

  itMknod('block device made with mknod (loop0 numbers; opening it is refused before any I/O)', async () => {
    execFileSync('mknod', [path.join(dir, 'block.lock'), 'b', '7', '0']);
    const error = await lock(path.join(dir, 'block.lock'), { timeout: 0 }).catch((e: unknown) => e);
    // With no loop device behind 7:0 open(2) itself fails (ENXIO); with one,
    // fstat says block device. Either way: an error naming the path.
    expect(error).toMatchObject({ path: path.join(dir, 'block.lock') });
    expect(['EINVAL', 'ENXIO']).toContain((error as { code: string }).code);
  });
});

describe('read-only places', () => {
  itAsSecondUser(
    'read-only directory (other user), existing lock file: locked read-only, record skipped, nothing changed',
    async () => {
      chmodSync(dir, 0o755);
      const lockPath = path.join(dir, 'ro.lock');
      writeFileSync(lockPath, '{"pid":1,"createdAt":"2020-01-01T00:00:00.000Z"}\n', { mode: 0o644 });
      const before = snapshot(dir);
      const result = await runNode(
        `const h = await kl.lock(${JSON.stringify(lockPath)}, { timeout: 0 });
       const busy = await kl.tryLock(${JSON.stringify(lockPath)});
       report({ readOnly: h.readOnly, recordError: h.recordError && { code: h.recordError.code, message: h.recordError.message }, busy: busy === null });
       await h.release();
       let ofd; try { await kl.lock(${JSON.stringify(lockPath)}, { kind: 'ofd', timeout: 0 }); } catch (e) { ofd = { code: e.code, message: e.message }; }
       const shared = await kl.lock(${JSON.stringify(lockPath)}, { kind: 'ofd', mode: 'shared', timeout: 0 });
       await shared.release();
       report({ readOnly: h.readOnly, recordError: h.recordError && { code: h.recordError.code, message: h.recordError.message }, busy: busy === null, ofd, sharedOk: true });`,
        { uid: NOBODY, gid: NOBODY },
      );
      expect(result.json, result.stderr).toMatchObject({ readOnly: true, busy: true, sharedOk: true });
      const { recordError, ofd } = result.json as {
        recordError: { code: string; message: string };
        ofd: { code: string; message: string };
      };
      // The record is missing because the file was not writable: say that, not
      // what a write through the read-only descriptor would have said (EBADF).
      expect(recordError.code).toBe('EACCES');
      expect(recordError.message).toContain(lockPath);
      // An exclusive fcntl lock needs a writable descriptor: say so, and suggest flock.
      expect(ofd.code).toBe('EBADF');
      expect(ofd.message).toMatch(/read-only.*kind 'flock'/);
      expect(snapshot(dir)).toEqual(before); // record not written, file not removed
    },
  );

  it('read-only bind mount, existing lock file: locked read-only; without the file: EROFS, nothing created', async () => {
    const lockPath = path.join(dir, 'ro.lock');
    writeFileSync(lockPath, '');
    const before = snapshot(dir);
    const result = await runNode(
      `const h = await kl.lock(${JSON.stringify(lockPath)}, { timeout: 0 });
       const out = { readOnly: h.readOnly, recordError: h.recordError?.code };
       await h.release();
       try { await kl.lock(${JSON.stringify(path.join(dir, 'missing.lock'))}, { timeout: 0 }); } catch (e) { out.missing = { code: e.code, message: e.message }; }
       report(out);`,
      {
        wrap: unshare('--mount', '--propagation', 'private'),
        shellSetup: `mount --bind ${dir} ${dir} && mount -o remount,bind,ro ${dir}`,
      },
    );
    expect(result.json, result.stderr).toMatchObject({
      readOnly: true,
      recordError: 'EROFS',
      missing: { code: 'EROFS' },
    });
    const missing = (result.json as { missing: { message: string } }).missing;
    expect(missing.message).toContain(path.join(dir, 'missing.lock'));
    expect(missing.message).toMatch(/read-only.*create it in advance/);
    expect(snapshot(dir)).toEqual(before);
  });

  itAsSecondUser(
    'read-only directory (other user) without the file: EACCES naming the path, nothing created',
    async () => {
      chmodSync(dir, 0o755);
      const lockPath = path.join(dir, 'none.lock');
      const result = await runNode(
        `try { await kl.lock(${JSON.stringify(lockPath)}, { timeout: 0 }); report({ ok: true }); }
       catch (e) { report({ code: e.code, path: e.path, message: e.message }); }`,
        { uid: NOBODY, gid: NOBODY },
      );
      expect(result.json, result.stderr).toMatchObject({ code: 'EACCES', path: lockPath });
      expect((result.json as { message: string }).message).toMatch(/no permission.*make its directory writable/);
      expect(readdirSync(dir)).toEqual([]);
    },
  );
});

describe('resource exhaustion', () => {
  it('EMFILE under a low `ulimit -n`: a clear error, the other handles unaffected, recovery after a release', async () => {
    const result = await runNode(
      `import { readdirSync, existsSync } from 'node:fs';
       const dir = ${JSON.stringify(dir)};
       const handles = [];
       let error;
       for (let i = 0; i < 100; i++) {
         try { handles.push(await kl.lock(dir + '/f' + i + '.lock', { timeout: 0, removeOnRelease: true })); }
         catch (e) { error = { code: e.code, message: e.message, i, leftFile: existsSync(dir + '/f' + i + '.lock') }; break; }
       }
       const allValid = handles.every((h) => h.verify());
       await handles.pop().release();
       const again = await kl.lock(dir + '/again.lock', { timeout: 0, removeOnRelease: true });
       await again.release();
       for (const h of handles) await h.release();
       report({ held: handles.length + 1, error, allValid, recovered: true, left: readdirSync(dir) });`,
      { shellSetup: 'ulimit -n 48' },
    );
    expect(result.json, result.stderr).toMatchObject({ allValid: true, recovered: true, left: [] });
    const error = (result.json as { error: { code: string; message: string; leftFile: boolean } }).error;
    expect(error.code).toBe('EMFILE');
    expect(error.message).toMatch(/too many open files.*ulimit -n/);
    expect(error.leftFile).toBe(false);
  });

  it('full file system (tiny tmpfs): the lock works, the record failure is reported, no partial record', async () => {
    const result = await runNode(
      `import { readFileSync, statSync, writeFileSync } from 'node:fs';
       const dir = ${JSON.stringify(dir)};
       // Fill every block; creating an empty file still works (inodes are left).
       try { writeFileSync(dir + '/filler', Buffer.alloc(1 << 20, 1)); } catch {}
       const lockPath = dir + '/full.lock';
       const h = await kl.lock(lockPath, { timeout: 0, owner: 'x'.repeat(200) });
       const other = await kl.tryLock(lockPath);
       report({ readOnly: h.readOnly, recordError: h.recordError && { code: h.recordError.code, message: h.recordError.message },
                size: statSync(lockPath).size, excluded: other === null, verify: h.verify() });`,
      {
        wrap: unshare('--mount', '--propagation', 'private'),
        shellSetup: `mount -t tmpfs -o size=64k tmpfs ${dir}`,
      },
    );
    expect(result.json, result.stderr).toMatchObject({
      readOnly: false,
      excluded: true,
      verify: true,
      size: 0, // empty, never half a record
      recordError: { code: 'ENOSPC' },
    });
    expect((result.json as { recordError: { message: string } }).recordError.message).toContain('full.lock');
  });
});

describe('awkward paths', () => {
  it('too long: whole path and one component, ENAMETOOLONG naming the path, nothing created', async () => {
    await expectCleanFailure(path.join(dir, 'x'.repeat(300)), { code: 'ENAMETOOLONG', hint: /too long/ });
    const deep = path.join(dir, `${'d/'.repeat(2100)}e.lock`);
    await expectCleanFailure(deep, { code: 'ENAMETOOLONG', hint: /too long/ });
  });

  it('a missing directory: ENOENT that says the directory must exist', async () => {
    await expectCleanFailure(path.join(dir, 'no', 'such', 'x.lock'), { code: 'ENOENT', hint: /create it first/ });
  });

  it('a newline in the name works and is cleaned up', async () => {
    const lockPath = path.join(dir, 'line\nbreak.lock');
    const handle = await lock(lockPath, { removeOnRelease: true });
    expect(readdirSync(dir)).toEqual(['line\nbreak.lock']);
    expect(await tryLock(lockPath)).toBeNull();
    await handle.release();
    expect(readdirSync(dir)).toEqual([]);
  });

  it('a non-UTF-8 Buffer path locks exactly those bytes and is cleaned up', async () => {
    const name = Buffer.from([0x6c, 0xff, 0xfe, 0x80, 0x2e, 0x6c, 0x6f, 0x63, 0x6b]); // "l\xff\xfe\x80.lock"
    const lockPath = Buffer.concat([Buffer.from(`${dir}/`), name]);
    const handle = await lock(lockPath, { removeOnRelease: true });
    const listed = readdirSync(dir, { encoding: 'buffer' });
    expect(listed).toHaveLength(1);
    expect(Buffer.compare(listed[0]!, name)).toBe(0);
    expect(await tryLock(lockPath)).toBeNull();
    expect(handle.verify()).toBe(true);
    await handle.release();
    expect(readdirSync(dir)).toEqual([]);
    // The same bytes as a (lossy) UTF-8 string name a different file.
    const lossy = await lock(lockPath.toString('utf8'));
    expect(readdirSync(dir, { encoding: 'buffer' })[0]!.equals(name)).toBe(false);
    await lossy.release();
  });

  it('a relative path is resolved once, against the cwd at acquisition', async () => {
    const result = await runNode(
      `const h = await kl.lock('rel.lock', { timeout: 0, removeOnRelease: true });
       process.chdir('/');
       const out = { path: h.path, verify: h.verify() };
       await h.release();
       report(out);`,
      { cwd: dir },
    );
    expect(result.json, result.stderr).toEqual({ path: path.join(dir, 'rel.lock'), verify: true });
    expect(readdirSync(dir)).toEqual([]);
  });

  it('/proc/sys and /sys files look regular but are refused (EINVAL) and never written', async () => {
    // As root, an owner record written into /proc/sys/kernel/domainname would
    // set the domain name. Run in a private UTS namespace so a regression
    // cannot touch the host's.
    const result = await runNode(
      `const before = (await import('node:fs')).readFileSync('/proc/sys/kernel/domainname', 'utf8');
       const out = { before };
       for (const p of ['/proc/sys/kernel/domainname', '/sys/kernel/mm/transparent_hugepage/enabled']) {
         try { (await kl.lock(p, { timeout: 0 })).releaseSync(); out[p] = 'locked'; }
         catch (e) { out[p] = { code: e.code, fileType: e.fileType, message: e.message }; }
       }
       out.after = (await import('node:fs')).readFileSync('/proc/sys/kernel/domainname', 'utf8');
       report(out);`,
      { wrap: unshare('--uts') },
    );
    const json = result.json as Record<string, { code: string; fileType: string; message: string } | string>;
    expect(json, result.stderr).toMatchObject({
      '/proc/sys/kernel/domainname': { code: 'EINVAL' },
      '/sys/kernel/mm/transparent_hugepage/enabled': { code: 'EINVAL' },
    });
    expect(json.after).toBe(json.before);
    const refusal = json['/proc/sys/kernel/domainname'] as { fileType: string; message: string };
    expect(refusal.fileType).toMatch(/kernel pseudo-file/);
    expect(refusal.message).toContain('/proc/sys/kernel/domainname');
  });

  it('/proc: a magic link is refused (ELOOP), a /proc directory is refused (EISDIR)', async () => {
    await expect(lock('/proc/self/fd/0', { timeout: 0 })).rejects.toMatchObject({ code: 'ELOOP' });
    await expect(lock('/proc/self', { timeout: 0 })).rejects.toMatchObject({ code: 'ELOOP' });
    await expect(lock('/proc/self/fd', { timeout: 0 })).rejects.toMatchObject({ code: 'EISDIR' });
  });

  itAsSecondUser(
    'a file owned by another user in a sticky directory is locked without changing its owner or mode',
    async () => {
      chmodSync(dir, 0o1777);
      const lockPath = path.join(dir, 'theirs.lock');
      writeFileSync(lockPath, '');
      chownSync(lockPath, NOBODY, NOBODY);
      chmodSync(lockPath, 0o600);
      const handle = await lock(lockPath, { removeOnRelease: false });
      const st = statSync(lockPath);
      expect([st.uid, st.mode & 0o777]).toEqual([NOBODY, 0o600]);
      await handle.release();
    },
  );
});

describe('hostile owner records', () => {
  it('a huge garbage file at the lock path: locked, left untouched (not ours), reading stays bounded', async () => {
    const lockPath = path.join(dir, 'huge.lock');
    writeFileSync(lockPath, Buffer.alloc(8 << 20, 0xff));
    const started = performance.now();
    expect(await readRecord(lockPath)).toBeNull();
    expect(performance.now() - started).toBeLessThan(200);
    const handle = await lock(lockPath, { owner: 'after garbage', removeOnRelease: true });
    expect(handle.recordSkipped).toBe('foreign-content');
    await handle.release();
    expect(readFileSync(lockPath).equals(Buffer.alloc(8 << 20, 0xff))).toBe(true);
  });

  it('binary, deeply nested and truncated records read as "no record"; locking over them works and writes nothing', async () => {
    const lockPath = path.join(dir, 'odd.lock');
    const contents = [
      Buffer.from([0, 1, 2, 0xc3, 0x28, 0xff, 0x1b, 0x5b]),
      `{"a":${'['.repeat(3000)}`,
      `${'{"a":'.repeat(800)}1${'}'.repeat(800)}`,
      '{"pid":4687,"owner":"trunc',
      '[{"pid":1}]',
    ];
    for (const content of contents) {
      writeFileSync(lockPath, content);
      const record = await readRecord(lockPath);
      expect(record === null || record.pid === undefined).toBe(true);
      const handle = await lock(lockPath, { owner: 'ok', removeOnRelease: true });
      // Not a record or marker: somebody's content, kept byte for byte.
      expect(handle.recordSkipped).toBe('foreign-content');
      await handle.release();
      expect(readFileSync(lockPath).equals(Buffer.from(content))).toBe(true);
    }
  });

  it('a record always fits its bound: long non-ASCII argv and a label of control characters still parse', async () => {
    const lockPath = path.join(dir, 'long.lock');
    const result = await runNode(
      `import { readFileSync } from 'node:fs';
       const h = await kl.lock(${JSON.stringify(lockPath)}, { owner: '\u0001'.repeat(300) });
       const bytes = readFileSync(${JSON.stringify(lockPath)});
       const record = kl.parseRecord(bytes);
       report({ bytes: bytes.length, owner: record?.owner.length, argv: record?.argv.length, pid: record?.pid === process.pid });
       await h.release();`,
      { args: Array.from({ length: 20 }, (_, i) => `${i}${'é'.repeat(199)}`) },
    );
    expect(result.json, result.stderr).toMatchObject({ owner: 256, pid: true });
    expect((result.json as { bytes: number }).bytes).toBeLessThanOrEqual(4096);
  });

  it('terminal escapes in a holder label never reach a timeout message', async () => {
    const lockPath = path.join(dir, 'esc.lock');
    const evil = '\x1b]0;pwned\x07\x1b[2J\x1b[31mred\r\nFAKE LOG LINE\u202egnp.exe\u0085\u009b';
    const holder = await holdInChild(lockPath, { owner: evil });
    try {
      const error = (await lock(lockPath, { timeout: 50 }).catch((e: unknown) => e)) as Error;
      expect(error.name).toBe('LockTimeoutError');
      expect(error.message).toContain(`pid ${holder.pid}`);
      expect(error.message).toContain('red');
      expect(error.message).not.toMatch(/[\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/);
    } finally {
      await holder.kill();
    }
  });

  it('the CLI (kernel-lock status) strips control characters from a hostile label; --json escapes them', async () => {
    const lockPath = path.join(dir, 'cli.lock');
    const evil = '\x1b]0;pwned\x07\x1b[2J\x1b[31mred\r\nFAKE LOG LINE\u202egnp.exe\u009b';
    const holder = await holdInChild(lockPath, { owner: evil });
    try {
      const cli = path.join(root, 'dist', 'cli.js');
      const human = spawnSync(process.execPath, [cli, 'status', lockPath], { encoding: 'utf8' });
      expect(human.status).toBe(1); // held
      expect(human.stdout).toContain('FAKE LOG LINE');
      expect(human.stdout).not.toMatch(/[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/);
      expect(human.stdout.trim().split('\n')).toHaveLength(2); // header and one row: no forged line
      const json = spawnSync(process.execPath, [cli, 'status', '--json', lockPath], { encoding: 'utf8' });
      // JSON.stringify escapes C0 controls; DEL and C1 controls (U+009B is a
      // CSI for some terminals) pass through raw today: reported in issue 5.
      expect(json.stdout).not.toMatch(/[\u0000-\u0009\u000b-\u001f]/);
      expect(JSON.stringify(JSON.parse(json.stdout))).toContain('FAKE LOG LINE');
    } finally {
      await holder.kill();
    }
  });
});
