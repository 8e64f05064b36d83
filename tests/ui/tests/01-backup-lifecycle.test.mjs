// The whole life of a backup through the browser: add a server on the admin page, create a
// backup and watch it progress, download it and check its hash, lock and unlock it,
// restore it over changed files, delete it; then make and revoke an API key.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import {
  ADMIN_PASSWORD, ApiClient, goto, launchBrowser, newContext, sha256File, startHoard, tempDir,
  uiLogin, waitFor, watchConsole, writeRandomFile,
} from '../lib/harness.mjs';

let hoard;
let browser;
let context;
let page;
let consoleWatch;
let root;
let serverDir;
let serverId;

before(async () => {
  // 8 MiB of incompressible data read at 4 MiB/s: the backup spends about two seconds in
  // "creating", long enough to see its progress bar.
  hoard = await startHoard({ name: 'lifecycle', args: ['--io-limit-mib-s', '4'] });
  root = tempDir('lifecycle');
  serverDir = path.join(root, 'alpha');
  writeRandomFile(path.join(serverDir, 'world', 'region', 'r.0.0.mca'), 8 * 1024 * 1024);
  fs.writeFileSync(path.join(serverDir, 'server.properties'), 'motd=original\nmax-players=20\n');
  fs.writeFileSync(path.join(serverDir, 'ops.json'), '[]\n');
  browser = await launchBrowser();
  context = await newContext(browser);
  await context.grantPermissions(['clipboard-read', 'clipboard-write']);
  consoleWatch = watchConsole(context);
  page = await context.newPage();
});

after(async () => {
  await context?.close();
  await browser?.close();
  await hoard?.stop();
  if (root) fs.rmSync(root, { recursive: true, force: true });
});

test('a backup from creation to deletion, and an API key', { timeout: 120_000 }, async (t) => {
  const base = hoard.url;
  await uiLogin(page, base, 'admin', ADMIN_PASSWORD);

  await t.test('adds a server on the admin page', async () => {
    await page.getByRole('link', { name: 'Manage servers' }).click();
    await page.getByRole('heading', { name: 'Manage servers' }).waitFor();
    await page.getByRole('button', { name: 'Add server' }).click();
    const dialog = page.getByRole('dialog', { name: 'Add server' });
    await dialog.getByLabel('Name').fill('Alpha');
    await dialog.getByLabel('Path').fill(serverDir);
    await dialog.getByLabel('Backup limit').fill('5');
    await dialog.getByRole('button', { name: 'Add server' }).click();
    await dialog.waitFor({ state: 'detached' });
    const row = page.getByTestId('admin-server-row').filter({ hasText: 'Alpha' });
    await row.waitFor();
    assert.match(await row.textContent(), new RegExp(serverDir.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')));
    assert.match(await row.textContent(), /0 of 5/);
  });

  await t.test('the servers page shows it with its path and backup count', async () => {
    await page.getByRole('link', { name: 'Servers', exact: true }).click();
    const row = page.getByTestId('server-row').filter({ hasText: 'Alpha' });
    await row.waitFor();
    assert.match(await row.textContent(), /0 of 5/);
    assert.ok((await row.textContent()).includes(serverDir), 'admins see the server path');
    assert.match(await row.textContent(), /Never/);
    await row.getByRole('link', { name: 'Alpha' }).click();
    await page.getByRole('heading', { name: 'Alpha', level: 1 }).waitFor();
    serverId = new URL(page.url()).pathname.split('/')[2];
    assert.match(serverId, /^[0-9a-f]{8}$/);
    await page.getByTestId('backups-empty').waitFor();
  });

  let sha;
  const row = () => page.getByTestId('backup-row').filter({ hasText: 'First backup' });

  await t.test('creates a backup, sees its progress and then Completed', async () => {
    await page.getByRole('button', { name: 'Create backup' }).click();
    const dialog = page.getByRole('dialog', { name: 'Create backup' });
    const placeholder = await dialog.getByLabel('Name').getAttribute('placeholder');
    assert.match(placeholder, /^Backup at \d{4}-\d\d-\d\d \d\d:\d\d:\d\d$/);
    assert.match(await dialog.textContent(), /\.pteroignore/);
    await dialog.getByLabel('Name').fill('First backup');
    await dialog.getByRole('button', { name: 'Start backup' }).click();
    await dialog.waitFor({ state: 'detached' });

    const progress = row().getByTestId('backup-progress');
    await progress.waitFor({ state: 'visible', timeout: 5000 });
    assert.equal(await row().getByTestId('backup-status').getAttribute('data-status'), 'creating');
    assert.match(await row().getByTestId('backup-status').textContent(), /Creating/);
    // While it runs, the create button explains why it is unavailable.
    assert.equal(await page.getByTestId('create-backup').getAttribute('aria-disabled'), 'true');
    await waitFor(async () => /\d+%/.test(await row().getByTestId('backup-progress-text').textContent()),
      { timeoutMs: 5000, what: 'a percentage beside the progress bar' });

    await row().locator('[data-status="completed"]').waitFor({ timeout: 30_000 });
    assert.match(await row().getByTestId('backup-status').textContent(), /Completed/);
    assert.equal(await row().getByTestId('backup-progress').count(), 0);
    assert.match(await row().getByTestId('backup-size').textContent(), /^8\.\d MiB$/);
    assert.match(await page.getByTestId('backup-count').textContent(), /^1 of 5 backups$/);

    const shaEl = row().getByTestId('backup-sha');
    sha = await shaEl.getAttribute('data-sha');
    assert.match(sha, /^[0-9a-f]{64}$/);
    assert.equal(await shaEl.textContent(), sha.slice(0, 12));
    assert.equal(await shaEl.getAttribute('title'), sha);
    await row().getByRole('button', { name: 'Copy SHA-256' }).click();
    assert.equal(await page.evaluate(() => navigator.clipboard.readText()), sha);
  });

  await t.test('once nothing is running, a poll is one request answered 304', async () => {
    const seen = [];
    const record = (r) => {
      const url = new URL(r.url());
      if (url.pathname.startsWith('/api/')) seen.push([url.pathname + url.search, r.status()]);
    };
    page.on('response', record);
    await page.waitForTimeout(2500);
    page.off('response', record);
    assert.ok(seen.length >= 1 && seen.length <= 2, JSON.stringify(seen));
    for (const r of seen) assert.deepEqual(r, [`/api/client/servers/${serverId}/backups?page=1&per_page=25&include=server`, 304]);
  });

  await t.test('downloads the archive, whose SHA-256 is the one shown', async () => {
    const [download] = await Promise.all([
      page.waitForEvent('download'),
      row().getByRole('button', { name: 'Download' }).click(),
    ]);
    const file = await download.path();
    assert.ok(fs.statSync(file).size > 8 * 1024 * 1024, 'the archive holds the 8 MiB of random data');
    assert.equal(sha256File(file), sha);
  });

  await t.test('locks it: Delete becomes unavailable; unlocking asks first', async () => {
    await row().getByRole('button', { name: 'Lock' }).click();
    await row().getByTestId('locked-icon').waitFor();
    const del = row().getByRole('button', { name: 'Delete' });
    assert.equal(await del.isDisabled(), true);
    assert.match(await del.getAttribute('title'), /unlock/i);

    await row().getByRole('button', { name: 'Unlock' }).click();
    const dialog = page.getByRole('dialog', { name: /Unlock “First backup”/ });
    await dialog.getByRole('button', { name: 'Unlock backup' }).click();
    await dialog.waitFor({ state: 'detached' });
    await row().getByTestId('locked-icon').waitFor({ state: 'detached' });
    assert.equal(await row().getByRole('button', { name: 'Delete' }).isDisabled(), false);
  });

  await t.test('edits the server on the admin page to add a pre-restore hook', async () => {
    await page.getByRole('link', { name: 'Manage servers' }).click();
    const serverRow = page.getByTestId('admin-server-row').filter({ hasText: 'Alpha' });
    await serverRow.getByRole('button', { name: 'Edit Alpha' }).click();
    const dialog = page.getByRole('dialog', { name: 'Edit Alpha' });
    assert.equal(await dialog.getByLabel('Path').inputValue(), fs.realpathSync(serverDir));
    await dialog.getByText('Hooks').click();
    // Keeps the restore busy long enough to watch its banner.
    await dialog.getByLabel('Before a restore').fill('sleep 2');
    await dialog.getByRole('button', { name: 'Save changes' }).click();
    await dialog.waitFor({ state: 'detached' });
    const api = await new ApiClient(base).login('admin', ADMIN_PASSWORD);
    const saved = (await api.get(`/api/application/servers/${serverId}`)).attributes;
    assert.equal(saved.hooks.pre_restore, 'sleep 2');
    assert.equal(saved.backup_limit, 5, 'other settings are kept');
    await goto(page, `${base}/servers/${serverId}`);
    await row().waitFor();
  });

  await t.test('restores it over changed files, deleting files first', async () => {
    const mca = path.join(serverDir, 'world', 'region', 'r.0.0.mca');
    const mcaSha = sha256File(mca);
    fs.writeFileSync(path.join(serverDir, 'server.properties'), 'motd=changed after the backup\n');
    fs.writeFileSync(path.join(serverDir, 'new-after-backup.txt'), 'should disappear\n');
    fs.rmSync(path.join(serverDir, 'ops.json'));

    await row().getByRole('button', { name: 'Restore' }).click();
    const dialog = page.getByRole('dialog', { name: /Restore “First backup”/ });
    assert.match(await dialog.textContent(), /files will be replaced with the contents of this backup/);
    assert.match(await dialog.getByTestId('restore-stop').textContent(), /pre-restore hook runs first/);
    const truncate = dialog.getByLabel('Delete all files before restoring');
    assert.equal(await truncate.isChecked(), true, 'the checkbox is checked by default');
    assert.match(await dialog.getByTestId('restore-summary').textContent(), /Every file now in the server directory is deleted/);
    await dialog.getByRole('button', { name: 'Restore backup' }).click();
    await dialog.waitFor({ state: 'detached' });

    const banner = page.getByTestId('restore-banner');
    await banner.waitFor({ timeout: 5000 });
    assert.match(await banner.textContent(), /Restoring “First backup” \(deleting current files first\)/);
    assert.equal(await banner.locator('progress').count(), 1);
    assert.match(await page.getByTestId('create-reason').textContent(), /restore is in progress/);
    assert.equal(await page.getByTestId('server-state').textContent(), 'Restoring');

    await waitFor(() => !fs.existsSync(path.join(serverDir, 'new-after-backup.txt'))
      && fs.existsSync(path.join(serverDir, 'ops.json'))
      && fs.readFileSync(path.join(serverDir, 'server.properties'), 'utf8') === 'motd=original\nmax-players=20\n',
    { timeoutMs: 30_000, what: 'the server files to be restored' });
    assert.equal(sha256File(mca), mcaSha);
    // The page notices the restore ended: no banner, and actions are offered again.
    await banner.waitFor({ state: 'detached', timeout: 10_000 });
    const outcome = page.getByTestId('last-restore');
    await outcome.waitFor();
    assert.equal(await outcome.getAttribute('data-outcome'), 'success');
    assert.match(await outcome.textContent(), /“First backup” was restored/);
    await waitFor(async () => (await row().getByRole('button', { name: 'Restore' }).getAttribute('aria-disabled')) === null,
      { timeoutMs: 10_000, what: 'Restore to be offered again' });
  });

  await t.test('deletes it after a confirmation naming it', async () => {
    await row().getByRole('button', { name: 'Delete' }).click();
    const dialog = page.getByRole('dialog', { name: 'Delete “First backup”?' });
    assert.match(await dialog.textContent(), /First backup/);
    await dialog.getByRole('button', { name: 'Delete backup' }).click();
    await dialog.waitFor({ state: 'detached' });
    await row().waitFor({ state: 'detached' });
    await page.getByTestId('backups-empty').waitFor();
    assert.match(await page.getByTestId('backup-count').textContent(), /^0 of 5 backups$/);
  });

  await t.test('creates an API key that works until it is revoked', async () => {
    await page.getByTestId('account-link').click();
    await page.getByRole('heading', { name: 'Account', level: 1 }).waitFor();
    await page.getByLabel('Description').fill('Nightly script');
    await page.getByRole('button', { name: 'Create API key' }).click();
    const secret = (await page.getByTestId('api-key-secret').textContent()).trim();
    assert.ok(secret.length > 20, 'the secret is shown');
    assert.match(await page.getByTestId('new-api-key').textContent(), /only time/);

    const withKey = () => fetch(`${base}/api/client`, { headers: { Authorization: `Bearer ${secret}`, Accept: 'application/json' } });
    const ok = await withKey();
    assert.equal(ok.status, 200);
    const list = await ok.json();
    assert.deepEqual(list.data.map((s) => s.attributes.name), ['Alpha']);

    const keyRow = page.getByTestId('api-key-row').filter({ hasText: 'Nightly script' });
    await keyRow.waitFor();
    assert.match(await keyRow.textContent(), /Nightly script/);
    await keyRow.getByRole('button', { name: /Delete key/ }).click();
    const dialog = page.getByRole('dialog', { name: 'Delete this API key?' });
    await dialog.getByRole('button', { name: 'Delete key' }).click();
    await dialog.waitFor({ state: 'detached' });
    await keyRow.waitFor({ state: 'detached' });
    assert.equal((await withKey()).status, 401);
  });

  await t.test('changes the password, then logs out', async () => {
    const newPassword = 'a-new-admin-password';
    await page.getByLabel('Current password').fill(ADMIN_PASSWORD);
    await page.getByLabel('New password', { exact: true }).fill(newPassword);
    await page.getByLabel('Confirm new password').fill(newPassword);
    await page.getByRole('button', { name: 'Change password' }).click();
    // This session stays signed in; the old password no longer works.
    await page.getByTestId('notice-success').filter({ hasText: 'Your password was changed' }).waitFor();
    await page.getByRole('heading', { name: 'Account', level: 1 }).waitFor();
    await new ApiClient(base).login('admin', newPassword);
    await assert.rejects(new ApiClient(base).login('admin', ADMIN_PASSWORD), /401/);
    await goto(page, `${base}/account`);
    await page.getByRole('heading', { name: 'Account', level: 1 }).waitFor();

    await page.getByRole('button', { name: 'Log out' }).click();
    await page.waitForURL((u) => u.pathname === '/login');
    await goto(page, `${base}/account`);
    await page.waitForURL((u) => u.pathname === '/login' && u.searchParams.get('next') === '/account');
    await page.getByLabel('Username').fill('admin');
    await page.getByLabel('Password').fill(newPassword);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('heading', { name: 'Account', level: 1 }).waitFor();
  });

  consoleWatch.check();
});
