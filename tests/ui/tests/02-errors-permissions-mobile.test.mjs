// API errors reach the user; an expired session returns to where it was; a subuser with
// only backup.read is offered nothing it may not do (only Verify); the page fits a 360 px screen.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import {
  ADMIN_PASSWORD, ApiClient, goto, launchBrowser, newContext, startHoard, tempDir, uiLogin,
  waitFor, watchConsole, writeRandomFile,
} from '../lib/harness.mjs';

let hoard;
let browser;
let root;
let admin;
let server;
const VIEWER_PASSWORD = 'viewer-password-1';

before(async () => {
  hoard = await startHoard({ name: 'errors' });
  root = tempDir('errors');
  const dir = path.join(root, 'beta');
  writeRandomFile(path.join(dir, 'world', 'level.dat'), 64 * 1024);
  fs.writeFileSync(path.join(dir, 'server.properties'), 'motd=beta\n');
  admin = await new ApiClient(hoard.url).login('admin', ADMIN_PASSWORD);
  server = await admin.createServer({
    name: 'Beta Creative With A Rather Long Name For Small Screens',
    path: dir,
    owner: 'admin',
    backup_limit: 1,
  });
  await admin.post('/api/application/users', { username: 'viewer', password: VIEWER_PASSWORD, admin: false });
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await hoard?.stop();
  if (root) fs.rmSync(root, { recursive: true, force: true });
});

test('errors, sessions, permissions and small screens', { timeout: 120_000 }, async (t) => {
  const base = hoard.url;
  const id = server.identifier;
  const context = await newContext(browser);
  const watch = watchConsole(context);
  const page = await context.newPage();
  await uiLogin(page, base, 'admin', ADMIN_PASSWORD);

  await t.test('the owner adds a read-only subuser on the subusers page', async () => {
    await goto(page, `${base}/servers/${id}/users`);
    await page.getByRole('button', { name: 'Add subuser' }).click();
    const dialog = page.getByRole('dialog', { name: 'Add subuser' });
    // Each permission comes with a one-line explanation.
    for (const perm of ['backup.read', 'backup.create', 'backup.download', 'backup.delete', 'backup.restore']) {
      assert.ok((await dialog.textContent()).includes(perm), `${perm} is offered`);
    }
    assert.equal(await dialog.getByLabel(/View backups/).isChecked(), true);
    assert.equal(await dialog.getByLabel(/Create backups/).isChecked(), false);
    await dialog.getByLabel('Username').fill('viewer');
    await dialog.getByRole('button', { name: 'Add subuser' }).click();
    await dialog.waitFor({ state: 'detached' });
    const row = page.getByTestId('subuser-row').filter({ hasText: 'viewer' });
    await row.waitFor();
    assert.equal(await row.locator('.chip').count(), 1);
    assert.match(await row.textContent(), /View backups/);
    const subusers = await admin.get(`/api/client/servers/${id}/users`);
    assert.deepEqual(subusers.data.map((s) => [s.attributes.username, s.attributes.permissions]), [['viewer', ['backup.read']]]);
  });

  await t.test('an API error is shown with its detail and can be dismissed', async () => {
    await goto(page, `${base}/servers/${id}`);
    await page.getByTestId('backups-empty').waitFor();
    assert.equal(await page.getByTestId('create-backup').getAttribute('aria-disabled'), null);
    // Someone else fills the server's only slot while this page sits idle.
    const other = await admin.createBackup(id, { name: 'Made elsewhere' });
    await admin.waitBackup(id, other.uuid);

    await page.getByRole('button', { name: 'Create backup' }).click();
    const dialog = page.getByRole('dialog', { name: 'Create backup' });
    await dialog.getByRole('button', { name: 'Start backup' }).click();
    const notice = dialog.getByTestId('notice-error');
    await notice.waitFor();
    assert.match(await notice.textContent(), /This server has reached its backup limit\./);
    assert.equal(await notice.getAttribute('role'), 'alert');
    await notice.getByRole('button', { name: 'Dismiss' }).click();
    await notice.waitFor({ state: 'detached' });
    await dialog.getByRole('button', { name: 'Cancel' }).click();
    await dialog.waitFor({ state: 'detached' });

    await goto(page, page.url());
    await page.getByTestId('backup-row').filter({ hasText: 'Made elsewhere' }).waitFor();
    assert.equal(await page.getByTestId('create-backup').getAttribute('aria-disabled'), 'true');
    assert.match(await page.getByTestId('create-reason').textContent(), /reached its limit of 1 backup/);
    assert.match(await page.getByTestId('backup-count').textContent(), /^1 of 1 backup$/);
  });

  await t.test('an expired session goes to the login page, then back', async () => {
    await context.clearCookies();
    await page.getByRole('link', { name: 'Subusers' }).click();
    await page.waitForURL((u) => u.pathname === '/login');
    assert.equal(new URL(page.url()).searchParams.get('next'), `/servers/${id}/users`);
    assert.match(await page.getByTestId('notice-warning').textContent(), /session has expired/);
    await page.getByLabel('Username').fill('admin');
    await page.getByLabel('Password').fill(ADMIN_PASSWORD);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.waitForURL((u) => u.pathname === `/servers/${id}/users`);
    await page.getByTestId('subuser-row').filter({ hasText: 'viewer' }).waitFor();

    // Expiry in the middle of a dialog: the page's next poll finds out, and the dialog goes
    // away with the page.
    await page.getByRole('button', { name: 'Add subuser' }).click();
    const dialog = page.getByRole('dialog', { name: 'Add subuser' });
    await dialog.getByLabel('Username').fill('viewer');
    await context.clearCookies();
    await page.waitForURL((u) => u.pathname === '/login' && u.searchParams.get('next') === `/servers/${id}/users`);
    await dialog.waitFor({ state: 'detached' });
    assert.equal(await page.locator('dialog[open]').count(), 0);
    await page.getByLabel('Username').fill('admin');
    await page.getByLabel('Password').fill(ADMIN_PASSWORD);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByTestId('subuser-row').filter({ hasText: 'viewer' }).waitFor();
  });

  await t.test('a wrong password is refused with a message', async () => {
    const other = await newContext(browser);
    const otherWatch = watchConsole(other);
    const p = await other.newPage();
    await goto(p, `${base}/login`);
    await p.getByLabel('Username').fill('admin');
    await p.getByLabel('Password').fill('not-the-password');
    await p.getByRole('button', { name: 'Sign in' }).click();
    assert.match(await p.getByTestId('notice-error').textContent(), /username or password is not correct/);
    assert.equal(new URL(p.url()).pathname, '/login');
    otherWatch.check([{ status: 401, url: '/auth/login' }]);
    await other.close();
  });

  // The only console errors allowed: Chromium's log lines for the two failures provoked
  // above (the 400 at the limit, the 401 of the expired session).
  watch.check([{ status: 400, url: `/api/client/servers/${id}/backups` }, { status: 401, url: '/api/client/' }]);
  await context.close();

  await t.test('a read-only subuser on a 360 px screen is offered only Verify, and no overflow', async () => {
    const mobile = await newContext(browser, { viewport: { width: 360, height: 740 }, isMobile: true, hasTouch: true });
    const mWatch = watchConsole(mobile);
    const p = await mobile.newPage();
    await uiLogin(p, base, 'viewer', VIEWER_PASSWORD);
    const fits = async (where) => {
      const width = await p.evaluate(() => document.documentElement.scrollWidth);
      assert.ok(width <= 360, `${where}: the document is ${width} px wide at a 360 px viewport`);
    };

    const serverRow = p.getByTestId('server-row');
    await serverRow.waitFor();
    assert.equal(await serverRow.count(), 1);
    assert.equal((await serverRow.textContent()).includes(server.path), false, 'paths are for admins');
    await fits('servers page');
    assert.equal(await p.getByRole('link', { name: 'Manage servers' }).count(), 0);

    await serverRow.getByRole('link').first().click();
    const row = p.getByTestId('backup-row').filter({ hasText: 'Made elsewhere' });
    await row.waitFor();
    assert.equal(await row.getByTestId('backup-status').getAttribute('data-status'), 'completed');
    for (const name of ['Download', 'Restore', 'Lock', 'Unlock', 'Delete']) {
      assert.equal(await p.getByRole('button', { name, exact: true }).count(), 0, `${name} is not offered`);
    }
    assert.equal(await p.getByRole('button', { name: 'Create backup' }).count(), 0, 'Create is not offered');
    assert.equal(await p.getByRole('link', { name: 'Subusers' }).count(), 0, 'subusers are for the owner');
    assert.deepEqual(await row.locator('[data-action]').evaluateAll((els) => els.map((e) => e.dataset.action)), ['verify'],
      'verifying needs only backup.read');
    await fits('backups page');
    // A phone has no tooltips: the actions are in a menu that names them.
    await row.getByRole('button', { name: 'Actions for Made elsewhere' }).click();
    await p.getByRole('menu', { name: 'Actions for Made elsewhere' }).getByRole('menuitem', { name: 'Verify' }).click();
    const uuid = await row.getAttribute('data-uuid');
    await waitFor(async () => (await admin.get(`/api/client/servers/${id}/backups/${uuid}`)).attributes.verified_at,
      { timeoutMs: 30_000, what: 'the subuser\'s verification to finish' });

    await row.getByTestId('backup-name').click();
    await p.getByTestId('backup-details').filter({ visible: true }).waitFor();
    await fits('backups page with details open');

    await goto(p, `${base}/admin/servers`);
    await p.getByRole('heading', { name: 'Administrators only' }).waitFor();
    await goto(p, `${base}/account`);
    await p.getByRole('heading', { name: 'API keys' }).waitFor();
    await fits('account page');
    mWatch.check();
    await mobile.close();
  });

  const adminContext = await newContext(browser);
  const adminWatch = watchConsole(adminContext);
  const ap = await adminContext.newPage();
  await uiLogin(ap, base, 'admin', ADMIN_PASSWORD);

  await t.test('an admin adds a user, resets their password, makes them admin and deletes them', async () => {
    await ap.getByRole('link', { name: 'Users' }).click();
    await ap.getByRole('button', { name: 'Add user' }).click();
    let dialog = ap.getByRole('dialog', { name: 'Add user' });
    await dialog.getByLabel('Username').fill('helper');
    await dialog.getByLabel('Password').fill('helper-pass-1');
    await dialog.getByRole('button', { name: 'Add user' }).click();
    await dialog.waitFor({ state: 'detached' });
    const row = ap.getByTestId('user-row').filter({ hasText: 'helper' });
    await row.waitFor();
    assert.match(await row.textContent(), /User/);
    await new ApiClient(base).login('helper', 'helper-pass-1');

    await row.getByRole('button', { name: 'Reset password of helper' }).click();
    dialog = ap.getByRole('dialog', { name: 'Reset the password of helper' });
    await dialog.getByLabel('New password').fill('helper-pass-2');
    await dialog.getByRole('button', { name: 'Set password' }).click();
    await dialog.waitFor({ state: 'detached' });
    await new ApiClient(base).login('helper', 'helper-pass-2');
    await assert.rejects(new ApiClient(base).login('helper', 'helper-pass-1'), /401/);

    await row.getByRole('button', { name: 'Make helper an admin' }).click();
    dialog = ap.getByRole('dialog', { name: 'Make helper an administrator?' });
    await dialog.getByRole('button', { name: 'Make administrator' }).click();
    await dialog.waitFor({ state: 'detached' });
    await row.getByText('Administrator').waitFor();
    const listed = async () => (await admin.get('/api/application/users')).data.map((u) => u.attributes);
    assert.equal((await listed()).find((u) => u.username === 'helper').admin, true);

    await row.getByRole('button', { name: 'Delete helper' }).click();
    dialog = ap.getByRole('dialog', { name: 'Delete helper?' });
    await dialog.getByRole('button', { name: 'Delete user' }).click();
    await dialog.waitFor({ state: 'detached' });
    await row.waitFor({ state: 'detached' });
    assert.deepEqual((await listed()).map((u) => u.username).sort(), ['admin', 'viewer']);
  });

  await t.test('removing a server that has backups takes the explicit choice to delete them', async () => {
    await ap.getByRole('link', { name: 'Manage servers' }).click();
    const row = ap.getByTestId('admin-server-row').filter({ hasText: 'Beta Creative' });
    await row.getByRole('button', { name: /^Remove Beta Creative/ }).click();
    const dialog = ap.getByRole('dialog', { name: /^Remove Beta Creative/ });
    const also = dialog.getByLabel('Also delete its 1 backup');
    assert.equal(await also.isChecked(), false);
    await dialog.getByRole('button', { name: 'Remove server' }).click();
    const notice = dialog.getByTestId('notice-error');
    await notice.waitFor();
    assert.match(await notice.textContent(), /has 1 backup/);
    await also.check();
    await dialog.getByRole('button', { name: 'Remove server' }).click();
    await dialog.waitFor({ state: 'detached' });
    await row.waitFor({ state: 'detached' });
    assert.deepEqual((await admin.get('/api/application/servers')).data, []);
  });

  adminWatch.check([{ status: 409, url: `/api/application/servers/${id}` }]);
  await adminContext.close();
});
