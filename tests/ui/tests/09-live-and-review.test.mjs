// Pages that stay current without a reload (a backup and a restore started through the API,
// cheap 304 polls, none while hidden), the last restore's outcome and storage at a glance,
// and the review's fixes: Cancel first in destructive dialogs, what a restore really stops,
// toasts that do not move the page, labelled actions on a phone, no "null", Retry, username
// suggestions and form errors shown once.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import {
  ADMIN_PASSWORD, ApiClient, SCREENSHOT_DIR, goto, launchBrowser, newContext, startHoard, tempDir,
  uiLogin, waitFor, watchConsole, writeRandomFile,
} from '../lib/harness.mjs';

/**
 * A poll every 2 s, plus the one request it makes coming back and being drawn (some 200 ms
 * on a debug build with a backup running).
 */
const WITHIN_MS = 2200;

let hoard;
let browser;
let root;
let api;
let live;
let hooked;
let failing;

before(async () => {
  // 16 MiB of incompressible data read at 4 MiB/s: a backup spends about four seconds in
  // "creating", long enough for a poll to catch its progress.
  hoard = await startHoard({ name: 'live', args: ['--io-limit-mib-s', '4'] });
  root = tempDir('live');
  const make = (name) => {
    const dir = path.join(root, name);
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, 'server.properties'), `motd=${name}\n`);
    return dir;
  };
  const liveDir = make('live');
  writeRandomFile(path.join(liveDir, 'world', 'region', 'r.0.0.mca'), 16 * 1024 * 1024);
  api = await new ApiClient(hoard.url).login('admin', ADMIN_PASSWORD);
  // No description on purpose: it once showed as "null".
  live = await api.createServer({ name: 'Live', path: liveDir, owner: 'admin', backup_limit: 10 });
  hooked = await api.createServer({
    name: 'Hooked', description: 'Survival world', path: make('hooked'), owner: 'admin', backup_limit: 5,
    hooks: { pre_restore: 'sleep 4' },
  });
  failing = await api.createServer({ name: 'Failing', path: make('failing'), owner: 'admin', hooks: { pre_backup: 'exit 3' } });
  const b = await api.createBackup(hooked.identifier, { name: 'Hooked base' });
  await api.waitBackup(hooked.identifier, b.uuid);
  for (const username of ['alice', 'alicia', 'bob']) {
    await api.post('/api/application/users', { username, password: `${username}-password-1`, admin: false });
  }
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await hoard?.stop();
  if (root) fs.rmSync(root, { recursive: true, force: true });
});

/** A server's row on the servers page (its name is also in every admin-visible path). */
const serverRow = (p, server) => p.locator(`[data-testid="server-row"][data-identifier="${server.identifier}"]`);

/**
 * Milliseconds from `since` until `page` shows what `spec` describes: an element matching
 * `spec.scope`, whose text includes `spec.hasText`, holding an element matching `spec.inner`
 * and one whose whole text is `spec.exactText` (each when given).
 *
 * Timed in the page, at the DOM change that made it so: a locator's waitFor() looks again
 * only every 500 ms once it has waited a while, which would add up to half a second to a
 * 2 s allowance.
 */
async function shownAfter(page, spec, since, timeout = 10_000) {
  const at = await page.evaluate(({ spec, timeout }) => new Promise((resolve, reject) => {
    const holds = () => [...document.querySelectorAll(spec.scope)].some((el) =>
      (!spec.hasText || el.textContent.includes(spec.hasText))
      && (!spec.inner || el.querySelector(spec.inner))
      && (!spec.exactText || [...el.querySelectorAll('*')].some((d) => d.textContent.trim() === spec.exactText)));
    if (holds()) {
      resolve(Date.now());
      return;
    }
    const observer = new MutationObserver(() => {
      if (!holds()) return;
      observer.disconnect();
      clearTimeout(timer);
      resolve(Date.now());
    });
    observer.observe(document, { subtree: true, childList: true, attributes: true, characterData: true });
    const timer = setTimeout(() => {
      observer.disconnect();
      reject(new Error(`not shown within ${timeout} ms: ${JSON.stringify(spec)}`));
    }, timeout);
  }), { spec, timeout });
  return at - since;
}

/** What shownAfter() waits for: a backup row, and a server's row on the servers page. */
const backupRow = (name, status) => ({ scope: '[data-testid="backup-row"]', hasText: name, inner: status ? `[data-status="${status}"]` : undefined });
const serverRowSpec = (server, spec) => ({ scope: `[data-testid="server-row"][data-identifier="${server.identifier}"]`, ...spec });

test('pages stay current', { timeout: 120_000 }, async (t) => {
  const base = hoard.url;
  const context = await newContext(browser);
  const watch = watchConsole(context);
  const page = await context.newPage();
  await uiLogin(page, base, 'admin', ADMIN_PASSWORD);
  const list = await context.newPage();
  await goto(list, `${base}/servers`);
  await list.getByTestId('server-row').first().waitFor();
  await goto(page, `${base}/servers/${live.identifier}`);
  await page.getByTestId('backups-empty').waitFor();

  await t.test('a backup started through the API shows up, progresses and completes without a reload', async (st) => {
    // Timed from the API's answer: the backup is stored by then.
    const started = await api.createBackup(live.identifier, { name: 'From the API' });
    const t0 = Date.now();
    const row = page.getByTestId('backup-row').filter({ hasText: 'From the API' });
    // Both pages watched at once, each timed when it changed.
    const [appeared, listed] = await Promise.all([
      shownAfter(page, backupRow('From the API', 'creating'), t0),
      shownAfter(list, serverRowSpec(live, { hasText: 'Creating' }), t0),
    ]);
    assert.ok(appeared <= WITHIN_MS, `the new backup appeared after ${appeared} ms`);
    assert.ok(listed <= WITHIN_MS, `the servers list showed it after ${listed} ms`);

    // Its progress moves while it runs: two different readings, each a poll apart.
    const text = row.getByTestId('backup-progress-text');
    const first = await waitFor(async () => {
      const s = await text.textContent();
      return /\d+%/.test(s) && s;
    }, { timeoutMs: WITHIN_MS, what: 'a percentage' });
    await waitFor(async () => (await text.textContent()) !== first && /\d+%/.test(await text.textContent()),
      { timeoutMs: WITHIN_MS, what: 'the percentage to move on' });
    assert.ok(Number(await row.getByTestId('backup-progress').getAttribute('value')) > 0);

    const done = await api.waitBackup(live.identifier, started.uuid);
    const t1 = Date.now();
    assert.equal(done.status, 'completed');
    const [completed, listedDone] = await Promise.all([
      shownAfter(page, backupRow('From the API', 'completed'), t1),
      shownAfter(list, serverRowSpec(live, { exactText: 'Completed' }), t1),
    ]);
    assert.ok(completed <= WITHIN_MS, `Completed showed ${completed} ms after the backup completed`);
    assert.ok(listedDone <= WITHIN_MS, `the servers list showed Completed after ${listedDone} ms`);
    st.diagnostic(`shown after: new ${appeared} ms, in the list ${listed} ms; completed ${completed} ms, in the list ${listedDone} ms`);
  });

  await t.test('an unchanged poll is one request every 2 s, answered 304; none while the tab is hidden', async (st) => {
    const seen = [];
    const record = (r) => {
      const u = new URL(r.url());
      if (u.pathname.startsWith('/api/')) seen.push({ path: u.pathname + u.search, status: r.status(), at: Date.now() });
    };
    page.on('response', record);
    await page.waitForTimeout(6500);
    page.off('response', record);
    const all = JSON.stringify(seen);
    assert.ok(seen.length >= 3 && seen.length <= 4, `${seen.length} requests in 6.5 s: ${all}`);
    // One request per poll: the page of backups shown, with the server in it, answered 304.
    const listPath = `/api/client/servers/${live.identifier}/backups`;
    for (const r of seen) {
      const u = new URL(r.path, base);
      assert.equal(u.pathname, listPath, `an unchanged poll asks for the list alone: ${all}`);
      assert.equal(u.searchParams.get('include'), 'server', `the server comes with the list: ${all}`);
      assert.equal(u.searchParams.get('page'), '1', `the page shown: ${all}`);
      assert.equal(r.status, 304, `answered 304: ${all}`);
    }
    for (let i = 1; i < seen.length; i++) {
      assert.ok(seen[i].at - seen[i - 1].at >= 1900, `polls ${seen[i].at - seen[i - 1].at} ms apart`);
    }
    st.diagnostic(`idle: ${seen.length} requests in 6.5 s, ${seen.slice(1).map((r, i) => r.at - seen[i].at).join(', ')} ms apart, all ${seen[0].path} → 304`);

    // The tab goes to the background: no request at all until it is back.
    const hidden = [];
    const recordHidden = (r) => { if (new URL(r.url()).pathname.startsWith('/api/')) hidden.push(r.url()); };
    page.on('request', recordHidden);
    await page.evaluate(() => {
      Object.defineProperty(document, 'visibilityState', { configurable: true, get: () => 'hidden' });
      Object.defineProperty(document, 'hidden', { configurable: true, get: () => true });
      document.dispatchEvent(new Event('visibilitychange'));
    });
    await api.createBackup(live.identifier, { name: 'While hidden' });
    await page.waitForTimeout(4500);
    assert.deepEqual(hidden, []);
    const back = Date.now();
    await page.evaluate(() => {
      delete document.visibilityState;
      delete document.hidden;
      document.dispatchEvent(new Event('visibilitychange'));
    });
    page.off('request', recordHidden);
    const caughtUp = await shownAfter(page, backupRow('While hidden'), back);
    assert.ok(caughtUp <= 1000, `back in view, the page caught up after ${caughtUp} ms`);
    st.diagnostic(`back in view, caught up after ${caughtUp} ms`);
    await waitFor(async () => (await api.get(`/api/client/servers/${live.identifier}`)).attributes.last_backup.status !== 'creating',
      { what: 'the backup made while hidden to end' });
  });

  await t.test('a page opened before a restore shows its banner, disables the buttons, then keeps the outcome', async (st) => {
    await goto(page, `${base}/servers/${hooked.identifier}`);
    const row = page.getByTestId('backup-row').filter({ hasText: 'Hooked base' });
    await row.waitFor();
    assert.equal(await row.getByRole('button', { name: 'Restore' }).getAttribute('aria-disabled'), null);
    await api.post(`/api/client/servers/${hooked.identifier}/backups/${await row.getAttribute('data-uuid')}/restore`, { truncate: false });
    const t0 = Date.now();
    const banner = page.getByTestId('restore-banner');
    const shown = await shownAfter(page, { scope: '[data-testid="restore-banner"]' }, t0);
    assert.ok(shown <= WITHIN_MS, `the banner showed after ${shown} ms`);
    st.diagnostic(`the restore banner showed after ${shown} ms`);
    assert.match(await banner.textContent(), /Restoring “Hooked base”/);
    assert.match(await banner.textContent(), /pre-restore hook runs before any file is touched/);
    assert.doesNotMatch(await banner.textContent(), /stays stopped/);
    assert.equal(await row.getByRole('button', { name: 'Restore' }).getAttribute('aria-disabled'), 'true');
    assert.equal(await page.getByTestId('create-backup').getAttribute('aria-disabled'), 'true');
    // The bar's track is not the banner's colour, so a few percent show.
    const [track, ground] = await banner.evaluate((el) => [getComputedStyle(el.querySelector('progress')).backgroundColor, getComputedStyle(el).backgroundColor]);
    assert.notEqual(track, ground);
    fs.mkdirSync(SCREENSHOT_DIR, { recursive: true });
    await page.screenshot({ path: path.join(SCREENSHOT_DIR, 'restore-banner-desktop.png') });

    const outcome = page.getByTestId('last-restore');
    await outcome.waitFor({ timeout: 20_000 });
    await banner.waitFor({ state: 'detached' });
    assert.equal(await outcome.getAttribute('data-outcome'), 'success');
    assert.match(await outcome.textContent(), /Last restore“Hooked base” was restored/);
    assert.equal(await row.getByRole('button', { name: 'Restore' }).getAttribute('aria-disabled'), null);
    // It stays: after a reload, and long after the old notice would have faded.
    await goto(page, page.url());
    await outcome.waitFor();
    assert.match(await outcome.textContent(), /“Hooked base” was restored/);
  });

  watch.check();
  await context.close();
});

test('what the review found, fixed', { timeout: 120_000 }, async (t) => {
  const base = hoard.url;
  const context = await newContext(browser);
  const watch = watchConsole(context);
  const page = await context.newPage();
  await uiLogin(page, base, 'admin', ADMIN_PASSWORD);
  fs.mkdirSync(SCREENSHOT_DIR, { recursive: true });

  await t.test('Enter twice on Delete does not delete: the dialog starts on Cancel', async () => {
    await goto(page, `${base}/servers/${live.identifier}`);
    const row = page.getByTestId('backup-row').filter({ hasText: 'From the API' });
    await row.getByRole('button', { name: 'Delete' }).focus();
    await page.keyboard.press('Enter');
    const dialog = page.getByRole('dialog', { name: /Delete “From the API”/ });
    await dialog.waitFor();
    assert.equal(await page.evaluate(() => document.activeElement.textContent), 'Cancel');
    await page.keyboard.press('Enter');
    await dialog.waitFor({ state: 'detached' });
    const uuid = await row.getAttribute('data-uuid');
    assert.equal((await api.get(`/api/client/servers/${live.identifier}/backups/${uuid}`)).attributes.status, 'completed');
  });

  await t.test('the restore dialog says what really happens, with and without a pre-restore hook; Enter toggles its checkbox', async () => {
    const row = page.getByTestId('backup-row').filter({ hasText: 'From the API' });
    await row.getByRole('button', { name: 'Restore' }).click();
    let dialog = page.getByRole('dialog', { name: /Restore “From the API”/ });
    await dialog.waitFor();
    assert.equal(await page.evaluate(() => document.activeElement.textContent), 'Cancel', 'a destructive dialog starts on Cancel');
    const warning = dialog.getByTestId('restore-stop');
    assert.match(await warning.textContent(), /The game keeps running/);
    assert.match(await warning.textContent(), /no pre-restore hook, and hoard stops nothing by itself/);
    assert.doesNotMatch(await dialog.textContent(), /will be stopped/);
    assert.match(await dialog.getByTestId('restore-summary').textContent(), /Nothing is stopped first/);
    const box = dialog.getByLabel('Delete all files before restoring');
    await box.focus();
    await page.keyboard.press('Enter');
    assert.equal(await box.isChecked(), false, 'Enter toggled the checkbox');
    assert.equal(await dialog.isVisible(), true, 'and did not submit');
    await page.screenshot({ path: path.join(SCREENSHOT_DIR, 'restore-dialog-no-hook.png') });
    await page.keyboard.press('Escape');
    await dialog.waitFor({ state: 'detached' });

    await goto(page, `${base}/servers/${hooked.identifier}`);
    await page.getByTestId('backup-row').getByRole('button', { name: 'Restore' }).click();
    dialog = page.getByRole('dialog', { name: /Restore “Hooked base”/ });
    assert.match(await dialog.getByTestId('restore-stop').textContent(), /pre-restore hook runs first, before any file is touched/);
    assert.doesNotMatch(await dialog.textContent(), /game keeps running/);
    await page.keyboard.press('Escape');
    await dialog.waitFor({ state: 'detached' });
  });

  await t.test('no "null" where a description is missing, on any page', async () => {
    for (const [p, ready] of [
      [`/servers/${live.identifier}`, 'backup-row'],
      [`/servers/${hooked.identifier}`, 'backup-row'],
      [`/servers/${live.identifier}/users`, null],
      [`/servers/${hooked.identifier}/users`, null],
      [`/servers/${live.identifier}/schedules`, null],
      ['/servers', 'server-row'],
    ]) {
      await goto(page, `${base}${p}`);
      if (ready) await page.getByTestId(ready).first().waitFor();
      else await page.getByRole('heading', { level: 1 }).waitFor();
      await page.waitForTimeout(300);
      assert.doesNotMatch(await page.locator('#view').innerText(), /\bnull\b/, `${p} shows no "null"`);
    }
    assert.match(await serverRow(page, hooked).textContent(), /Survival world/);

    // A subuser who may see schedules but not backups, on a server with a description.
    await api.post(`/api/client/servers/${hooked.identifier}/users`, { username: 'bob', permissions: ['schedule.read'] });
    const other = await newContext(browser);
    const otherWatch = watchConsole(other);
    const p = await other.newPage();
    await uiLogin(p, base, 'bob', 'bob-password-1');
    await goto(p, `${base}/servers/${hooked.identifier}/schedules`);
    await p.getByRole('heading', { name: 'Hooked', level: 1 }).waitFor();
    await p.waitForTimeout(300);
    assert.match(await p.locator('#view').innerText(), /Survival world/);
    assert.doesNotMatch(await p.locator('#view').innerText(), /\bnull\b/, 'a subuser\'s schedules page shows no "null"');
    otherWatch.check();
    await other.close();
  });

  await t.test('storage at a glance, with the warning when there is one', async () => {
    // A quota the backups already fill.
    const used = (await api.get(`/api/client/servers/${hooked.identifier}`)).attributes.storage.used_bytes;
    await api.patch(`/api/application/servers/${hooked.identifier}`, { backup_quota_bytes: used });
    await goto(page, `${base}/servers`);
    const cell = serverRow(page, hooked).getByTestId('storage');
    await cell.getByTestId('storage-warning').waitFor();
    assert.match(await cell.getByTestId('storage-used').textContent(), /^(.+) of \1$/);
    assert.match(await cell.getByTestId('storage-free').textContent(), /free$/);
    assert.match(await cell.getByTestId('storage-warning').textContent(), /quota/);
    const liveCell = serverRow(page, live).getByTestId('storage');
    assert.match(await liveCell.getByTestId('storage-used').textContent(), /MiB used · no quota/);
    assert.equal(await liveCell.getByTestId('storage-warning').count(), 0);
    await page.screenshot({ path: path.join(SCREENSHOT_DIR, 'servers-storage-desktop.png'), fullPage: true });
    await goto(page, `${base}/servers/${hooked.identifier}`);
    await page.getByTestId('storage-warning').waitFor();
    await page.getByTestId('last-restore').waitFor();
    await page.screenshot({ path: path.join(SCREENSHOT_DIR, 'server-outcome-storage-desktop.png'), fullPage: true });
    await api.patch(`/api/application/servers/${hooked.identifier}`, { backup_quota_bytes: null });
  });

  await t.test('notices are toasts: the table does not move, and they do not pile up', async () => {
    await goto(page, `${base}/servers/${live.identifier}`);
    const table = page.getByTestId('backups-table');
    const row = page.getByTestId('backup-row').filter({ hasText: 'From the API' });
    await row.waitFor();
    const before = await table.boundingBox();
    await row.getByRole('button', { name: 'Lock' }).click();
    const toast = page.getByTestId('notice-success').filter({ hasText: 'is locked' });
    await toast.waitFor();
    assert.deepEqual(await table.boundingBox(), before, 'the table stayed where it was');
    assert.equal(await toast.evaluate((el) => getComputedStyle(el.parentElement).position), 'fixed');
    await page.screenshot({ path: path.join(SCREENSHOT_DIR, 'toast-desktop.png') });
    // Explaining the same unavailable button again replaces its notice.
    const del = row.getByRole('button', { name: 'Delete' });
    // (Playwright will not click what is marked unavailable: the click is dispatched.)
    await del.dispatchEvent('click');
    await del.dispatchEvent('click');
    await del.dispatchEvent('click');
    assert.equal(await page.getByTestId('notice-info').count(), 1);
    assert.ok(await page.locator('#notices > .notice').count() <= 3);
    await row.getByRole('button', { name: 'Unlock' }).click();
    const dialog = page.getByRole('dialog', { name: /Unlock/ });
    await dialog.getByRole('button', { name: 'Unlock backup' }).click();
    await dialog.waitFor({ state: 'detached' });
  });

  await t.test('a failed backup can be retried', async () => {
    const failed = await api.createBackup(failing.identifier, { name: 'Needs a retry', ignored: 'cache/' });
    assert.equal((await api.waitBackup(failing.identifier, failed.uuid)).status, 'failed');
    await api.patch(`/api/application/servers/${failing.identifier}`, { hooks: { pre_backup: null } });
    await goto(page, `${base}/servers/${failing.identifier}`);
    const row = page.getByTestId('backup-row').filter({ hasText: 'Needs a retry' });
    await row.getByRole('button', { name: 'Retry', exact: true }).click();
    await page.getByTestId('notice-success').filter({ hasText: 'started again' }).waitFor();
    await page.locator('[data-testid="backup-row"][data-name="Needs a retry"] [data-status="completed"]').waitFor({ timeout: 20_000 });
    const all = (await api.get(`/api/client/servers/${failing.identifier}/backups`)).data.map((d) => d.attributes);
    const again = all.find((b) => b.status === 'completed');
    assert.equal(again.name, 'Needs a retry');
    assert.deepEqual(again.ignored_files, ['cache/']);
  });

  await t.test('adding a subuser suggests usernames; a wrong one is named once, beside the field', async () => {
    await goto(page, `${base}/servers/${live.identifier}/users`);
    await page.getByRole('button', { name: 'Add subuser' }).click();
    const dialog = page.getByRole('dialog', { name: 'Add subuser' });
    const input = dialog.getByLabel('Username');
    await input.pressSequentially('ali');
    const listId = await input.getAttribute('list');
    await waitFor(async () => (await page.locator(`datalist#${listId} option`).count()) === 2, { timeoutMs: 5000, what: 'two suggestions' });
    assert.deepEqual(await page.locator(`datalist#${listId} option`).evaluateAll((els) => els.map((e) => e.value)), ['alice', 'alicia']);

    await input.fill('nobody-here');
    await dialog.getByRole('button', { name: 'Add subuser' }).click();
    await waitFor(async () => (await input.getAttribute('aria-invalid')) === 'true' || (await dialog.getByTestId('notice-error').count()) > 0,
      { timeoutMs: 5000, what: 'the error' });
    const text = await dialog.textContent();
    const message = (await dialog.locator('.field-error:not([hidden]), [data-testid="notice-error"] .notice-message').first().textContent()).trim();
    assert.ok(message.length > 5);
    assert.equal(text.split(message).length - 1, 1, `"${message}" is shown once`);
    await input.fill('alicia');
    await dialog.getByRole('button', { name: 'Add subuser' }).click();
    await dialog.waitFor({ state: 'detached' });
    await page.getByTestId('subuser-row').filter({ hasText: 'alicia' }).waitFor();
  });

  watch.check([{ status: 404, url: `/api/client/servers/${live.identifier}/users` }, { status: 422, url: `/api/client/servers/${live.identifier}/users` },
    { status: 400, url: `/api/client/servers/${live.identifier}/users` }]);
  await context.close();

  await t.test('at 390 px every row action has a label, in a menu', async () => {
    const mobile = await newContext(browser, { viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });
    const mWatch = watchConsole(mobile);
    const p = await mobile.newPage();
    await uiLogin(p, base, 'admin', ADMIN_PASSWORD);
    await p.screenshot({ path: path.join(SCREENSHOT_DIR, 'servers-storage-390.png'), fullPage: true });
    await goto(p, `${base}/servers/${live.identifier}`);
    const row = p.getByTestId('backup-row').filter({ hasText: 'From the API' });
    await row.waitFor();
    assert.equal(await row.getByRole('button', { name: 'Delete' }).count(), 0, 'no bare icons');
    const trigger = row.getByRole('button', { name: 'Actions for From the API' });
    assert.equal(await trigger.getAttribute('aria-expanded'), 'false');
    await trigger.click();
    const menu = p.getByRole('menu', { name: 'Actions for From the API' });
    await menu.waitFor();
    assert.equal(await trigger.getAttribute('aria-expanded'), 'true');
    assert.deepEqual(await menu.getByRole('menuitem').allInnerTexts(), ['Download', 'Verify', 'Restore', 'Lock', 'Delete']);
    const box = await menu.boundingBox();
    assert.ok(box.x >= 0 && box.x + box.width <= 390, 'the menu fits the screen');
    await p.screenshot({ path: path.join(SCREENSHOT_DIR, 'row-menu-390.png') });
    await p.keyboard.press('ArrowDown');
    assert.equal(await p.evaluate(() => document.activeElement.textContent), 'Verify');
    await p.keyboard.press('Escape');
    await menu.waitFor({ state: 'detached' });
    assert.equal(await p.evaluate(() => document.activeElement.getAttribute('aria-label')), 'Actions for From the API');

    // An action from the menu: Lock, whose toast stays in view on a scrolled page.
    await p.evaluate(() => window.scrollTo(0, document.body.scrollHeight));
    await trigger.click();
    await menu.getByRole('menuitem', { name: 'Lock' }).click();
    const toast = p.getByTestId('notice-success').filter({ hasText: 'is locked' });
    await toast.waitFor();
    const tb = await toast.boundingBox();
    assert.ok(tb.y >= 0 && tb.y + tb.height <= 844, 'the toast is on screen');
    await trigger.click();
    const del = menu.getByRole('menuitem', { name: /Delete/ });
    assert.equal(await del.getAttribute('aria-disabled'), 'true');
    assert.match(await del.textContent(), /unlock it first/, 'the reason is written out');
    await p.screenshot({ path: path.join(SCREENSHOT_DIR, 'row-menu-reason-390.png') });
    await p.keyboard.press('Escape');
    const width = await p.evaluate(() => document.documentElement.scrollWidth);
    assert.ok(width <= 390, `the page is ${width} px wide`);
    await p.screenshot({ path: path.join(SCREENSHOT_DIR, 'server-page-390.png'), fullPage: true });
    await goto(p, `${base}/servers/${hooked.identifier}`);
    await p.getByTestId('last-restore').waitFor();
    await p.screenshot({ path: path.join(SCREENSHOT_DIR, 'server-outcome-390.png'), fullPage: true });
    mWatch.check();
    await mobile.close();
  });
});
