// Backups that are not simply "completed" say so: one that left out what it could not read,
// one whose archive is gone, one that Verify finds corrupt; each is offered only what its
// archive can still serve. A truncating restore's dialog names what it keeps, and keeps it.
// A suspended server's subusers are offered nothing the server would refuse them.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import {
  ADMIN_PASSWORD, HOARD_BIN, ApiClient, goto, launchBrowser, newContext, startHoard, tempDir,
  uiLogin, waitFor, watchConsole, writeRandomFile,
} from '../lib/harness.mjs';

let hoard;
let browser;
let root;
let dir;
let api;
let server;
const IGNORED = ['logs/', '*.tmp'];

/** The archive of `uuid` in the data directory (`backups/<server>/<uuid>.tar.*`). */
function archiveOf(uuid) {
  const backups = path.join(hoard.dataDir, 'backups');
  for (const server of fs.readdirSync(backups)) {
    const name = fs.readdirSync(path.join(backups, server)).find((f) => f.startsWith(`${uuid}.tar`));
    if (name) return path.join(backups, server, name);
  }
  throw new Error(`no archive of ${uuid}`);
}

/**
 * Backs the server up through the CLI while `locked/` cannot be listed. As root, the CLI runs
 * without the capabilities that read past file modes, so the directory is unreadable to it
 * as it would be to an unprivileged hoard.
 */
function backupWithUnreadableDirectory(name) {
  const locked = path.join(dir, 'locked');
  fs.chmodSync(locked, 0o000);
  try {
    const cli = [HOARD_BIN, '--data-dir', hoard.dataDir, '--json', 'backup', 'create', server.identifier, '--name', name, '--wait'];
    const [cmd, ...args] = process.getuid() === 0
      ? ['setpriv', '--bounding-set', '-dac_override,-dac_read_search', ...cli]
      : cli;
    return JSON.parse(execFileSync(cmd, args, { encoding: 'utf8' })).attributes;
  } finally {
    fs.chmodSync(locked, 0o755);
  }
}

before(async () => {
  hoard = await startHoard({ name: 'archive-states' });
  root = tempDir('states');
  dir = path.join(root, 'epsilon');
  writeRandomFile(path.join(dir, 'world', 'level.dat'), 64 * 1024);
  fs.writeFileSync(path.join(dir, 'server.properties'), 'motd=epsilon\n');
  fs.mkdirSync(path.join(dir, 'logs'));
  fs.writeFileSync(path.join(dir, 'logs', 'latest.log'), 'before the backup\n');
  fs.writeFileSync(path.join(dir, 'upload.tmp'), 'before the backup\n');
  fs.writeFileSync(path.join(dir, '.pteroignore'), 'crash-reports/\n');
  fs.mkdirSync(path.join(dir, 'crash-reports'));
  fs.writeFileSync(path.join(dir, 'crash-reports', 'crash-1.txt'), 'before the backup\n');
  fs.mkdirSync(path.join(dir, 'locked'));
  fs.writeFileSync(path.join(dir, 'locked', 'secret.dat'), 'secret\n');

  api = await new ApiClient(hoard.url).login('admin', ADMIN_PASSWORD);
  server = await api.createServer({ name: 'Epsilon', path: dir, owner: 'admin', skip_unreadable: true });
  const id = server.identifier;
  // First, while the CLI's backup throttle (the default; the test hoard's is off) allows it.
  const partial = backupWithUnreadableDirectory('Partly unreadable');
  assert.equal(partial.status, 'completed_with_warnings', JSON.stringify(partial));
  for (const name of ['Kept patterns', 'Gone from storage', 'Flipped byte']) {
    const body = { name };
    if (name === 'Kept patterns') body.ignored = IGNORED.join('\n');
    const b = await api.createBackup(id, body);
    assert.equal((await api.waitBackup(id, b.uuid)).status, 'completed', name);
  }

  const list = (await api.get(`/api/client/servers/${id}/backups`)).data.map((d) => d.attributes);
  const uuidOf = (name) => list.find((b) => b.name === name).uuid;
  fs.rmSync(archiveOf(uuidOf('Gone from storage')));
  // The check before a download link finds the archive gone.
  await assert.rejects(api.get(`/api/client/servers/${id}/backups/${uuidOf('Gone from storage')}/download`), (err) => err.status === 400);
  const flipped = archiveOf(uuidOf('Flipped byte'));
  const bytes = fs.readFileSync(flipped);
  bytes[bytes.length >> 1] ^= 0xff;
  fs.writeFileSync(flipped, bytes);
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await hoard?.stop();
  if (root) fs.rmSync(root, { recursive: true, force: true });
});

test('incomplete, missing and corrupt backups, and what a restore keeps', { timeout: 90_000 }, async (t) => {
  const context = await newContext(browser);
  const watch = watchConsole(context);
  const page = await context.newPage();
  await uiLogin(page, hoard.url, 'admin', ADMIN_PASSWORD);
  await goto(page, `${hoard.url}/servers/${server.identifier}`);
  const row = (name) => page.getByTestId('backup-row').filter({ hasText: name });
  const status = (name) => row(name).getByTestId('backup-status');
  const offered = async (name) => {
    const actions = await row(name).locator('[data-action]').evaluateAll((els) => els.map((e) => e.dataset.action));
    return actions.sort();
  };
  await row('Kept patterns').waitFor();

  await t.test('a backup that left out what it could not read is Incomplete, with the reason', async () => {
    assert.equal(await status('Partly unreadable').getAttribute('data-status'), 'completed_with_warnings');
    assert.match(await status('Partly unreadable').textContent(), /Incomplete/);
    const marker = row('Partly unreadable').getByTestId('warnings-marker');
    assert.match(await marker.getAttribute('title'), /locked: could not be read/);
    assert.deepEqual(await offered('Partly unreadable'), ['delete', 'download', 'lock', 'restore', 'verify']);
  });

  await t.test('a backup whose archive is gone is Missing, and offers neither download nor restore', async () => {
    assert.equal(await status('Gone from storage').getAttribute('data-status'), 'missing');
    assert.match(await status('Gone from storage').textContent(), /Missing/);
    assert.match(await status('Gone from storage').textContent(), /gone from storage/);
    assert.deepEqual(await offered('Gone from storage'), ['delete', 'lock', 'verify']);
  });

  await t.test('Verify finds a flipped byte: the backup turns Corrupt and is no longer offered for restore', async () => {
    assert.equal(await status('Flipped byte').getAttribute('data-status'), 'completed');
    assert.deepEqual(await offered('Flipped byte'), ['delete', 'download', 'lock', 'restore', 'verify']);
    await row('Flipped byte').getByRole('button', { name: 'Verify' }).click();
    await row('Flipped byte').locator('[data-status="corrupt"]').waitFor({ timeout: 30_000 });
    assert.match(await status('Flipped byte').textContent(), /Corrupt/);
    assert.match(await status('Flipped byte').textContent(), /no longer matches its SHA-256/);
    await page.getByTestId('notice-error').filter({ hasText: 'Backup “Flipped byte” is corrupt' }).waitFor();
    assert.deepEqual(await offered('Flipped byte'), ['delete', 'download', 'lock', 'verify']);
    // The untouched archives still verify.
    await row('Kept patterns').getByRole('button', { name: 'Verify' }).click();
    await waitFor(async () => (await api.get(`/api/client/servers/${server.identifier}/backups/${await row('Kept patterns').getAttribute('data-uuid')}`)).attributes.verified_at,
      { timeoutMs: 30_000, what: 'the verification of “Kept patterns”' });
    assert.equal(await status('Kept patterns').getAttribute('data-status'), 'completed');
  });

  await t.test('the restore dialog names what a truncating restore keeps, and the restore keeps it', async () => {
    fs.writeFileSync(path.join(dir, 'logs', 'latest.log'), 'written after the backup\n');
    fs.writeFileSync(path.join(dir, 'upload.tmp'), 'written after the backup\n');
    fs.writeFileSync(path.join(dir, 'crash-reports', 'crash-2.txt'), 'written after the backup\n');
    fs.writeFileSync(path.join(dir, 'server.properties'), 'motd=changed\n');
    fs.writeFileSync(path.join(dir, 'stray.txt'), 'not in the backup\n');

    await row('Kept patterns').getByRole('button', { name: 'Restore' }).click();
    const dialog = page.getByRole('dialog', { name: /Restore “Kept patterns”/ });
    const kept = dialog.getByTestId('restore-kept');
    assert.equal(await kept.isVisible(), true, 'shown for a truncating restore');
    assert.deepEqual(await kept.locator('li code').allTextContents(), IGNORED);
    assert.match(await kept.textContent(), /\.pteroignore rules the backup was made with/);
    assert.match(await dialog.getByTestId('restore-summary').textContent(), /except what the backup left out/);
    await dialog.getByLabel('Delete all files before restoring').uncheck();
    assert.equal(await kept.isVisible(), false, 'an overlay deletes nothing, so there is nothing to single out');
    await dialog.getByLabel('Delete all files before restoring').check();
    assert.equal(await kept.isVisible(), true);
    await dialog.getByRole('button', { name: 'Restore backup' }).click();
    await dialog.waitFor({ state: 'detached' });

    const outcome = await waitFor(async () => {
      const s = (await api.get(`/api/client/servers/${server.identifier}`)).attributes;
      return !s.restore && s.last_restore;
    }, { timeoutMs: 30_000, what: 'the restore to end' });
    assert.equal(outcome.successful, true, JSON.stringify(outcome));
    // Reported even when the restore ended before the page's first look at it.
    await page.getByTestId('last-restore').filter({ hasText: '“Kept patterns” was restored' }).waitFor();
    const read = (p) => fs.readFileSync(path.join(dir, p), 'utf8');
    assert.equal(read('server.properties'), 'motd=epsilon\n');
    assert.equal(fs.existsSync(path.join(dir, 'stray.txt')), false, 'what no rule keeps is deleted');
    assert.equal(read('logs/latest.log'), 'written after the backup\n');
    assert.equal(read('upload.tmp'), 'written after the backup\n');
    assert.equal(read('crash-reports/crash-2.txt'), 'written after the backup\n');
  });

  await t.test('a backup without patterns still says what .pteroignore keeps, and that what it could not read is kept', async () => {
    const restore = row('Partly unreadable').getByRole('button', { name: 'Restore' });
    await waitFor(async () => (await restore.getAttribute('aria-disabled')) === null,
      { timeoutMs: 10_000, what: 'the page to see the last restore end' });
    await restore.click();
    const dialog = page.getByRole('dialog', { name: /Restore “Partly unreadable”/ });
    const kept = dialog.getByTestId('restore-kept');
    assert.equal(await kept.locator('li').count(), 0);
    assert.match(await kept.textContent(), /\.pteroignore rules the backup was made with/);
    assert.match(await kept.getByTestId('restore-kept-unreadable').textContent(), /could not read/);
    await page.keyboard.press('Escape');
    await dialog.waitFor({ state: 'detached' });
  });

  watch.check();
  await context.close();
});

test('without backup.read, a subuser is told the backups are hidden, not that there are none', { timeout: 30_000 }, async () => {
  const id = server.identifier;
  const password = 'fetcher-password-1';
  await api.post('/api/application/users', { username: 'fetcher', password, admin: false });
  await api.post(`/api/client/servers/${id}/users`, { username: 'fetcher', permissions: ['backup.download'] });

  const context = await newContext(browser);
  const watch = watchConsole(context);
  const page = await context.newPage();
  await uiLogin(page, hoard.url, 'fetcher', password);
  const serverRow = page.getByTestId('server-row').filter({ hasText: 'Epsilon' });
  await serverRow.waitFor();
  const lastCell = serverRow.locator('td[data-label="Last backup"]');
  assert.equal((await lastCell.textContent()).trim(), '—', 'the last backup is hidden, and not called "Never"');
  assert.match(await lastCell.locator('[title]').getAttribute('title'), /permission to view/);
  await serverRow.getByRole('link', { name: 'Epsilon' }).click();
  await page.getByRole('heading', { name: 'You may not see this server\'s backups' }).waitFor();
  watch.check([{ status: 403, url: `/api/client/servers/${id}/backups` }]);
  await context.close();
});

test('a suspended server offers its subusers no change, restore or download; admins keep them', { timeout: 60_000 }, async () => {
  const id = server.identifier;
  const password = 'keeper-password-1';
  await api.post('/api/application/users', { username: 'keeper', password, admin: false });
  await api.post(`/api/client/servers/${id}/users`, {
    username: 'keeper',
    permissions: ['backup.read', 'backup.create', 'backup.download', 'backup.delete', 'backup.restore'],
  });
  await api.patch(`/api/application/servers/${id}`, { status: 'suspended' });

  const context = await newContext(browser);
  const watch = watchConsole(context);
  const page = await context.newPage();
  await uiLogin(page, hoard.url, 'keeper', password);
  await goto(page, `${hoard.url}/servers/${id}`);
  const row = page.getByTestId('backup-row').filter({ hasText: 'Kept patterns' });
  await row.waitFor();
  assert.equal(await page.getByTestId('server-state').textContent(), 'Suspended');
  assert.equal(await page.getByTestId('create-backup').getAttribute('aria-disabled'), 'true');
  assert.match(await page.getByTestId('create-reason').textContent(), /suspended/);
  for (const name of ['Download', 'Restore', 'Lock', 'Delete']) {
    const btn = row.getByRole('button', { name, exact: true });
    assert.equal(await btn.getAttribute('aria-disabled'), 'true', `${name} is unavailable`);
    assert.match(await btn.getAttribute('title'), /suspended/, `${name} says why`);
  }
  // Clicking explains instead of sending a request the server would refuse (409).
  const sent = [];
  page.on('request', (r) => { if (r.url().includes('/download')) sent.push(r.url()); });
  await row.getByRole('button', { name: 'Download', exact: true }).click({ force: true });
  await page.getByTestId('notice-info').filter({ hasText: 'The server is suspended.' }).waitFor();
  assert.deepEqual(sent, []);
  assert.equal(await row.getByRole('button', { name: 'Verify' }).getAttribute('aria-disabled'), null, 'verifying changes nothing');
  watch.check();
  await context.close();

  const adminContext = await newContext(browser);
  const adminWatch = watchConsole(adminContext);
  const adminPage = await adminContext.newPage();
  await uiLogin(adminPage, hoard.url, 'admin', ADMIN_PASSWORD);
  await goto(adminPage, `${hoard.url}/servers/${id}`);
  const adminRow = adminPage.getByTestId('backup-row').filter({ hasText: 'Kept patterns' });
  await adminRow.waitFor();
  assert.equal(await adminPage.getByTestId('create-backup').getAttribute('aria-disabled'), null);
  for (const name of ['Download', 'Restore', 'Lock', 'Delete']) {
    assert.equal(await adminRow.getByRole('button', { name, exact: true }).getAttribute('aria-disabled'), null, `${name} is offered to admins`);
  }
  adminWatch.check();
  await adminContext.close();
});
