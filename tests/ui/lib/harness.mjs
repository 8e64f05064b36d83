// Shared setup for the browser tests: a hoard of our own on a free port with a temporary
// data directory, Debian's Chromium driven by playwright-core, a small API client for
// arranging state, and watchers for console errors.

import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before } from 'node:test';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
export const HOARD_BIN = process.env.HOARD_BIN || path.join(REPO_ROOT, 'target/debug/hoard');
export const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
export const SCREENSHOT_DIR = path.join(REPO_ROOT, 'target/ui-screenshots');
export const LOG_DIR = path.join(REPO_ROOT, 'target/ui-test-logs');
export const ADMIN_PASSWORD = 'admin-password-for-tests';
export const CSP = "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; "
  + "form-action 'self'; frame-ancestors 'none'";

const CHROMIUM_ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
  '--disable-component-update', '--disable-sync', '--no-first-run',
];

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** A temporary directory, removed by the returned cleanup list's owner. */
export function tempDir(prefix) {
  return fs.mkdtempSync(path.join(os.tmpdir(), `hoard-ui-${prefix}-`));
}

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/**
 * Starts `hoard serve` on a free loopback port with a fresh data directory. `args` are
 * extra serve flags. Resolves once it answers HTTP.
 */
export async function startHoard({ args = [], name = 'hoard' } = {}) {
  if (!fs.existsSync(HOARD_BIN)) {
    throw new Error(`hoard binary not found at ${HOARD_BIN}: build it (cargo build) or set HOARD_BIN`);
  }
  const dataDir = tempDir('data');
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  let log = '';
  const proc = spawn(HOARD_BIN, [
    '--data-dir', dataDir, 'serve',
    '--listen', `127.0.0.1:${port}`,
    '--throttle-backups', '0',
    '--space-reserve-mib', '0',
    '--shutdown-grace-secs', '2',
    ...args,
  ], {
    env: { ...process.env, HOARD_ADMIN_PASSWORD: ADMIN_PASSWORD },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const keep = (chunk) => {
    log += chunk.toString();
    if (log.length > 200_000) log = log.slice(-100_000);
  };
  proc.stdout.on('data', keep);
  proc.stderr.on('data', keep);
  let exited = null;
  proc.on('exit', (code, signal) => { exited = { code, signal }; });

  const deadline = Date.now() + 20_000;
  for (;;) {
    if (exited) throw new Error(`hoard exited early (${JSON.stringify(exited)}):\n${log}`);
    try {
      const res = await fetch(`${url}/`);
      if (res.ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      proc.kill('SIGKILL');
      throw new Error(`hoard did not start within 20 s:\n${log}`);
    }
    await sleep(100);
  }

  return {
    url,
    port,
    dataDir,
    log: () => log,
    async stop() {
      if (!exited) {
        proc.kill('SIGTERM');
        const until = Date.now() + 8000;
        while (!exited && Date.now() < until) await sleep(50);
        if (!exited) proc.kill('SIGKILL');
        while (!exited) await sleep(20);
      }
      fs.rmSync(dataDir, { recursive: true, force: true });
      // Kept for reading after a failure.
      fs.mkdirSync(LOG_DIR, { recursive: true });
      fs.writeFileSync(path.join(LOG_DIR, `${name}.log`), log);
    },
  };
}

/** Launches Debian's Chromium (a fresh temporary profile) through playwright-core. */
export async function launchBrowser() {
  if (!fs.existsSync(CHROMIUM)) throw new Error(`Chromium not found at ${CHROMIUM}: apt-get install chromium`);
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });
}

/** A new browser context (its own cookies), desktop-sized unless told otherwise. */
export async function newContext(browser, options = {}) {
  const context = await browser.newContext({
    viewport: { width: 1280, height: 800 },
    acceptDownloads: true,
    ...options,
  });
  const pending = new Map();
  context.on('request', (r) => pending.set(r, Date.now()));
  context.on('requestfinished', (r) => pending.delete(r));
  context.on('requestfailed', (r) => pending.delete(r));
  /** Requests still without an answer, for diagnosing a page that does not load. */
  context.pendingRequests = () => [...pending].map(([r, t]) => `${r.method()} ${r.url()} (${Date.now() - t} ms)`);
  return context;
}

/**
 * Records console errors and uncaught exceptions of every page of `context`.
 * `check(allowed)` throws unless every recorded problem is an allowed network failure:
 * `allowed` lists `{ status, url }` (url: substring) for API errors a test provokes on
 * purpose, which Chromium logs as "Failed to load resource: ... status of N".
 */
export function watchConsole(context) {
  const problems = [];
  const attach = (page) => {
    page.on('console', (msg) => {
      if (msg.type() === 'error') problems.push({ kind: 'console', text: msg.text(), url: msg.location().url || '' });
    });
    page.on('pageerror', (err) => problems.push({ kind: 'pageerror', text: String(err && err.stack ? err.stack : err), url: '' }));
  };
  context.pages().forEach(attach);
  context.on('page', attach);
  return {
    problems,
    check(allowed = []) {
      const unexpected = problems.filter((p) => {
        if (p.kind !== 'console') return true;
        const m = p.text.match(/Failed to load resource: the server responded with a status of (\d+)/);
        if (!m) return true;
        return !allowed.some((a) => Number(m[1]) === a.status && p.url.includes(a.url));
      });
      if (unexpected.length) {
        throw new Error(`unexpected console errors:\n${unexpected.map((p) => `  [${p.kind}] ${p.text} ${p.url}`).join('\n')}`);
      }
    },
  };
}

/**
 * Opens `url` in `page`. A load that does not finish fails the test, naming the requests
 * hoard left unanswered.
 */
export async function goto(page, url, { timeout = 10_000 } = {}) {
  try {
    return await page.goto(url, { timeout });
  } catch (err) {
    const pending = page.context().pendingRequests ? page.context().pendingRequests() : [];
    err.message += `\nrequests still pending: ${pending.join(', ') || 'none'}`;
    throw err;
  }
}

/** Signs in through the login page and waits to land on `landing` (a path). */
export async function uiLogin(page, base, username, password, landing = '/servers') {
  await goto(page, `${base}/login`);
  await page.getByLabel('Username').fill(username);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForURL((u) => u.pathname === landing);
}

/** A cookie-session client of the API, for arranging and checking state from the test. */
export class ApiClient {
  constructor(base) {
    this.base = base;
    this.cookie = null;
    this.csrf = null;
  }

  async login(username, password) {
    const res = await fetch(`${this.base}/auth/login`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ username, password }),
    });
    if (res.status !== 200) throw new Error(`login as ${username} failed: ${res.status} ${await res.text()}`);
    const body = await res.json();
    this.csrf = body.meta.csrf_token;
    this.cookie = res.headers.getSetCookie().map((c) => c.split(';')[0]).join('; ');
    return this;
  }

  async request(method, pathname, body) {
    const headers = { Accept: 'application/json', Cookie: this.cookie };
    if (method !== 'GET') headers['X-CSRF-Token'] = this.csrf;
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    const res = await fetch(`${this.base}${pathname}`, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    const data = text ? JSON.parse(text) : null;
    if (!res.ok) {
      const err = new Error(`${method} ${pathname} -> ${res.status}: ${text}`);
      err.status = res.status;
      err.body = data;
      throw err;
    }
    return data;
  }

  get(p) { return this.request('GET', p); }
  post(p, b = {}) { return this.request('POST', p, b); }
  patch(p, b) { return this.request('PATCH', p, b); }
  del(p) { return this.request('DELETE', p); }

  async createServer(attrs) {
    return (await this.post('/api/application/servers', attrs)).attributes;
  }

  async createBackup(identifier, attrs = {}) {
    return (await this.post(`/api/client/servers/${identifier}/backups`, attrs)).attributes;
  }

  /** Waits until a backup leaves "creating"; returns its final attributes. */
  async waitBackup(identifier, uuid, timeoutMs = 60_000) {
    const until = Date.now() + timeoutMs;
    for (;;) {
      const b = (await this.get(`/api/client/servers/${identifier}/backups/${uuid}`)).attributes;
      if (b.status !== 'creating') return b;
      if (Date.now() > until) throw new Error(`backup ${uuid} still creating after ${timeoutMs} ms`);
      await sleep(150);
    }
  }
}

/** Writes `size` bytes of random (incompressible) data. */
export function writeRandomFile(file, size) {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, crypto.randomBytes(size));
}

export function sha256File(file) {
  return crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex');
}

/** Polls `fn` until it returns a truthy value; returns it, or throws after `timeoutMs`. */
export async function waitFor(fn, { timeoutMs = 30_000, intervalMs = 100, what = 'condition' } = {}) {
  const until = Date.now() + timeoutMs;
  let last;
  for (;;) {
    try {
      last = await fn();
      if (last) return last;
    } catch (err) {
      last = err;
    }
    if (Date.now() > until) throw new Error(`timed out waiting for ${what} (last: ${last && last.message ? last.message : last})`);
    await sleep(intervalMs);
  }
}

/**
 * Registers the `before` and `after` hooks of a suite that needs `oneBackupFixture`, and
 * returns the object they fill in (`hoard`, `browser`, `server`) and tear down.
 */
export function useOneBackupFixture(options) {
  const fixture = {};
  before(async () => {
    Object.assign(fixture, await oneBackupFixture(options));
  });
  after(async () => {
    await fixture.stop?.();
  });
  return fixture;
}

/**
 * A hoard with one server (a directory holding `server.properties`) that has one finished
 * backup, and a browser: the setup several suites share. `stop()` tears all of it down.
 */
async function oneBackupFixture({ name, serverName, backupName }) {
  const hoard = await startHoard({ name });
  const root = tempDir(name);
  const dir = path.join(root, serverName.toLowerCase());
  fs.mkdirSync(dir);
  fs.writeFileSync(path.join(dir, 'server.properties'), `motd=${serverName}\n`);
  const api = await new ApiClient(hoard.url).login('admin', ADMIN_PASSWORD);
  const server = await api.createServer({ name: serverName, path: dir, owner: 'admin' });
  const b = await api.createBackup(server.identifier, { name: backupName });
  await api.waitBackup(server.identifier, b.uuid);
  const browser = await launchBrowser();
  return {
    hoard,
    browser,
    server,
    async stop() {
      await browser.close();
      await hoard.stop();
      fs.rmSync(root, { recursive: true, force: true });
    },
  };
}
