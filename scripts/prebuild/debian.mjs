// Debian packages of another release or architecture than the host's,
// fetched with apt itself from the Debian archive the host's apt is already
// configured with, but through a private apt state (its own package lists,
// no dpkg database): nothing on the host changes, no root is needed, and the
// host's own apt sources and settings (proxies included) apply. The packages
// are only unpacked (dpkg-deb -x), never configured: enough to run a program
// on that release's libraries.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { cached, run } from './cache.mjs';

const DEFAULT_KEYRING = '/usr/share/keyrings/debian-archive-keyring.gpg';

/** The Debian archive (not the security one) the host's apt uses: { uri, keyring }. */
export function hostDebianArchive() {
  const entries = [];
  const dir = '/etc/apt/sources.list.d';
  const files = fs.existsSync(dir) ? fs.readdirSync(dir).map((name) => path.join(dir, name)) : [];
  for (const file of ['/etc/apt/sources.list', ...files]) {
    if (!fs.existsSync(file)) continue;
    const text = fs.readFileSync(file, 'utf8');
    if (file.endsWith('.sources')) entries.push(...deb822(text));
    else if (file.endsWith('.list')) entries.push(...oneLine(text));
  }
  const archive = entries.find(
    (entry) =>
      entry.types.includes('deb') &&
      entry.components.includes('main') &&
      /\/debian\/?$/.test(entry.uri) &&
      entry.suites.some((suite) => !suite.includes('security')),
  );
  if (!archive) throw new Error("no Debian archive (…/debian with component main) in apt's sources on this host");
  return { uri: archive.uri.replace(/\/$/, ''), keyring: archive.keyring ?? DEFAULT_KEYRING };
}

function deb822(text) {
  return text
    .split(/\n\s*\n/)
    .map((block) => {
      const fields = {};
      for (const line of block.split('\n')) {
        const match = line.match(/^([A-Za-z-]+):\s*(.*)$/);
        if (match) fields[match[1].toLowerCase()] = match[2].trim();
      }
      return fields;
    })
    .filter((fields) => fields.uris && fields.enabled !== 'no')
    .map((fields) => ({
      types: (fields.types ?? '').split(/\s+/),
      uri: fields.uris.split(/\s+/)[0],
      suites: (fields.suites ?? '').split(/\s+/),
      components: (fields.components ?? '').split(/\s+/),
      keyring: fields['signed-by']?.startsWith('/') ? fields['signed-by'] : undefined,
    }));
}

function oneLine(text) {
  return text
    .split('\n')
    .map((line) => line.replace(/#.*/, '').trim())
    .map((line) => line.match(/^(deb)\s+(?:\[([^\]]*)\]\s+)?(\S+)\s+(\S+)\s+(.+)$/))
    .filter(Boolean)
    .map(([, type, options, uri, suite, components]) => ({
      types: [type],
      uri,
      suites: [suite],
      components: components.split(/\s+/),
      keyring: options?.match(/signed-by=(\S+)/)?.[1],
    }));
}

/**
 * Downloads .deb files of `suite` into a cache entry and returns its directory.
 * `closure` packages come with every dependency (as for an install into an
 * empty system, without recommends); `alone` packages without any.
 * Package names may carry an architecture (`musl:arm64`); the first of
 * `architectures` is the native one.
 */
export function debianPackages(suite, architectures, { closure = [], alone = [] }) {
  const key = `${suite}-${architectures.join('+')}-${[...closure, ...alone].join('+').replace(/[^\w.+-]/g, '_')}`;
  return cached(`debian/${key}`, (into) => {
    const state = fs.mkdtempSync(path.join(os.tmpdir(), 'kernel-lock-apt-'));
    try {
      const { uri, keyring } = hostDebianArchive();
      for (const sub of ['lists/partial', 'archives/partial', 'sources']) {
        fs.mkdirSync(path.join(state, sub), { recursive: true });
      }
      fs.writeFileSync(path.join(state, 'status'), '');
      fs.writeFileSync(
        path.join(state, 'sources', 'debian.sources'),
        `Types: deb\nURIs: ${uri}\nSuites: ${suite}\nComponents: main\nSigned-By: ${keyring}\n`,
      );
      const apt = [
        `-oDir::State=${state}`,
        `-oDir::State::Lists=${path.join(state, 'lists')}`,
        `-oDir::State::status=${path.join(state, 'status')}`,
        `-oDir::Cache=${state}`,
        `-oDir::Cache::Archives=${path.join(state, 'archives')}`,
        '-oDir::Etc::SourceList=/dev/null',
        `-oDir::Etc::SourceParts=${path.join(state, 'sources')}`,
        '-oDir::Etc::Preferences=/dev/null',
        `-oDir::Etc::PreferencesParts=${path.join(state, 'sources')}`,
        `-oAPT::Architecture=${architectures[0]}`,
        `-oAPT::Architectures=${architectures.join(',')}`,
        '-oDebug::NoLocking=1',
        '-oAPT::Sandbox::User=root',
        '-qq',
      ];
      run('apt-get', [...apt, 'update']);
      if (closure.length > 0) {
        run('apt-get', [...apt, '-y', '--download-only', '--no-install-recommends', 'install', ...closure]);
      }
      if (alone.length > 0) run('apt-get', [...apt, 'download', ...alone], { cwd: path.join(state, 'archives') });
      for (const name of fs.readdirSync(path.join(state, 'archives'))) {
        if (name.endsWith('.deb')) fs.renameSync(path.join(state, 'archives', name), path.join(into, name));
      }
    } finally {
      fs.rmSync(state, { recursive: true, force: true });
    }
  });
}

/**
 * The .deb files in `debs` (a debianPackages() directory) for `arch` (and
 * architecture-independent ones), limited to the package names in `only`, or
 * all but those in `except`.
 */
export function debsFor(debs, arch, { only, except = [] } = {}) {
  return fs
    .readdirSync(debs)
    .filter((file) => file.endsWith('.deb'))
    .filter((file) => {
      const [name, , rest] = file.split('_');
      if (rest !== `${arch}.deb` && rest !== 'all.deb') return false;
      return only ? only.includes(name) : !except.includes(name);
    })
    .map((file) => path.join(debs, file));
}

/** Unpacks .deb files into `root` without running any of their scripts. */
export function unpack(debFiles, root) {
  for (const deb of debFiles) run('dpkg-deb', ['-x', deb, root]);
}
