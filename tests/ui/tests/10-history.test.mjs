// A server's History tab: what happened, who did it, newest first; it follows what happens
// elsewhere while it is open; it narrows to one kind of event; a subuser without
// activity.read has no tab and is told why.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import {
  ADMIN_PASSWORD, SCREENSHOT_DIR, ApiClient, goto, launchBrowser, newContext, startHoard, tempDir,
  uiLogin, waitFor, watchConsole,
} from '../lib/harness.mjs';

let hoard;
let browser;
let root;
let api;
let server;

before(async () => {
  hoard = await startHoard({ name: 'history' });
  root = tempDir('history');
  const dir = path.join(root, 'zeta');
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'server.properties'), 'motd=zeta\n');
  api = await new ApiClient(hoard.url).login('admin', ADMIN_PASSWORD);
  server = await api.createServer({ name: 'Zeta', path: dir, owner: 'admin' });
  await api.post('/api/application/users', { username: 'watcher', password: 'watcher-password-1' });
  await api.post(`/api/client/servers/${server.identifier}/users`, { username: 'watcher', permissions: ['backup.read'] });
  browser = await launchBrowser();
  fs.mkdirSync(SCREENSHOT_DIR, { recursive: true });
});

after(async () => {
  await browser?.close();
  await hoard?.stop();
  if (root) fs.rmSync(root, { recursive: true, force: true });
});

test('the History tab', { timeout: 90_000 }, async (t) => {
  const id = server.identifier;
  const first = await api.createBackup(id, { name: 'Before the update' });
  await api.waitBackup(id, first.uuid);
  await api.post(`/api/client/servers/${id}/backups/${first.uuid}/lock`);

  const context = await newContext(browser);
  const watch = watchConsole(context);
  const page = await context.newPage();
  await uiLogin(page, hoard.url, 'admin', ADMIN_PASSWORD);
  const rows = () => page.getByTestId('activity-row');

  await t.test('lists what happened, who did it, newest first', async () => {
    await goto(page, `${hoard.url}/servers/${id}`);
    await page.getByRole('link', { name: 'History' }).click();
    await page.waitForURL(`**/servers/${id}/activity`);
    await rows().first().waitFor();
    const texts = await rows().allInnerTexts();
    assert.match(texts[0], /Locked “Before the update”/);
    assert.match(texts[0], /admin/);
    assert.ok(texts.some((r) => /Backup “Before the update” completed/.test(r)), texts.join('\n'));
    assert.ok(texts.some((r) => /Started “Before the update”/.test(r)), texts.join('\n'));
  });

  await t.test('follows what happens elsewhere without a reload', async () => {
    const before = await rows().count();
    const second = await api.createBackup(id, { name: 'Made elsewhere' });
    await waitFor(async () => (await rows().first().innerText()).includes('Made elsewhere'), { timeoutMs: 10_000, what: 'the new event' });
    await api.waitBackup(id, second.uuid);
    await waitFor(async () => /Backup “Made elsewhere” completed/.test(await rows().first().innerText()), { timeoutMs: 10_000, what: 'its completion' });
    assert.ok(await rows().count() > before);
  });

  await t.test('narrows to one kind of event', async () => {
    await page.getByTestId('activity-filter').selectOption('server:backup.complete');
    await waitFor(async () => {
      const events = await rows().evaluateAll((els) => els.map((e) => e.dataset.event));
      return events.length === 2 && events.every((e) => e === 'server:backup.complete');
    }, { what: 'only completions' });
    await page.screenshot({ path: path.join(SCREENSHOT_DIR, 'history-desktop.png'), fullPage: true });
  });

  await t.test('a subuser without activity.read has no tab and is told why', async () => {
    const other = await newContext(browser);
    const p = await other.newPage();
    await uiLogin(p, hoard.url, 'watcher', 'watcher-password-1');
    await goto(p, `${hoard.url}/servers/${id}`);
    await p.getByTestId('backup-row').first().waitFor();
    assert.equal(await p.getByRole('link', { name: 'History' }).count(), 0);
    await goto(p, `${hoard.url}/servers/${id}/activity`);
    await p.getByText('You cannot see this server\'s history').waitFor();
    await other.close();
  });

  watch.check();
  await context.close();
});
