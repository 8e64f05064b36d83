// Schedules and retention through the browser: a schedule made from the "Every day at
// 04:00" preset shows its next five runs before it is saved and is stored with its backup
// task; a wrong cron field is named beside the expression; "Run now" makes a scheduled
// backup; a retention policy is previewed, then saved; the servers list tells when the next
// backup is and warns when a scheduled one failed. hoard and the browser share a time zone
// (Asia/Tokyo, which has no daylight saving time) so the times shown can be checked.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import {
  ADMIN_PASSWORD, SCREENSHOT_DIR, ApiClient, goto, launchBrowser, newContext, startHoard, tempDir,
  uiLogin, waitFor, watchConsole,
} from '../lib/harness.mjs';

const ZONE = 'Asia/Tokyo';
const DAY_MS = 24 * 3600 * 1000;

let hoard;
let browser;
let root;
let serverDir;
let api;
let server;

before(async () => {
  hoard = await startHoard({ name: 'schedules', args: ['--timezone', ZONE] });
  root = tempDir('schedules');
  serverDir = path.join(root, 'epsilon');
  fs.mkdirSync(path.join(serverDir, 'world'), { recursive: true });
  fs.writeFileSync(path.join(serverDir, 'world', 'level.dat'), 'level\n');
  fs.writeFileSync(path.join(serverDir, 'server.properties'), 'motd=epsilon\n');
  api = await new ApiClient(hoard.url).login('admin', ADMIN_PASSWORD);
  server = await api.createServer({ name: 'Epsilon', path: serverDir, owner: 'admin' });
  browser = await launchBrowser();
  fs.mkdirSync(SCREENSHOT_DIR, { recursive: true });
});

after(async () => {
  await browser?.close();
  await hoard?.stop();
  if (root) fs.rmSync(root, { recursive: true, force: true });
});

test('schedules and retention', { timeout: 120_000 }, async (t) => {
  const base = hoard.url;
  const id = server.identifier;
  const schedulesApi = `/api/client/servers/${id}/schedules`;
  const context = await newContext(browser, { timezoneId: ZONE });
  const watch = watchConsole(context);
  const page = await context.newPage();
  await uiLogin(page, base, 'admin', ADMIN_PASSWORD);
  const row = () => page.getByTestId('schedule-row').filter({ hasText: 'Nightly' });

  await t.test('the Schedules tab is reachable from the server\'s backups', async () => {
    const serverRow = page.getByTestId('server-row').filter({ hasText: 'Epsilon' });
    await serverRow.waitFor();
    await serverRow.getByRole('link', { name: 'Epsilon' }).click();
    await page.getByTestId('backups-empty').waitFor();
    await page.getByRole('link', { name: 'Schedules' }).click();
    await page.waitForURL((u) => u.pathname === `/servers/${id}/schedules`);
    await page.getByTestId('schedules-empty').waitFor();
    assert.equal(await page.getByRole('link', { name: 'Schedules' }).getAttribute('aria-current'), 'page');
    assert.match(await page.getByTestId('schedule-timezone').textContent(), /Asia\/Tokyo, which is also yours/);
  });

  await t.test('a wrong cron field is named beside the expression', async () => {
    await page.getByRole('button', { name: 'New schedule' }).click();
    const dialog = page.getByRole('dialog', { name: 'New schedule' });
    await dialog.getByTestId('schedule-next-runs').waitFor();
    const unlabelled = await dialog.locator('input, select, textarea').evaluateAll((els) => els
      .filter((el) => !el.labels?.length && !el.getAttribute('aria-label')).map((el) => el.outerHTML));
    assert.deepEqual(unlabelled, [], 'every control has a label');
    await dialog.getByLabel('Advanced: a cron expression').check();
    const expression = dialog.getByLabel('Cron expression', { exact: true });
    assert.equal(await expression.inputValue(), '0 4 * * *', 'the expression starts from the preset');
    await expression.fill('70 4 * * *');
    const error = dialog.getByTestId('schedule-when-error');
    await error.waitFor();
    assert.match(await error.textContent(), /minute.*70/);
    assert.equal(await expression.getAttribute('aria-invalid'), 'true');
    assert.ok((await expression.getAttribute('aria-describedby')).includes(await error.getAttribute('id')), 'the error describes the field');
    await expression.fill('30 3 * * 1-5');
    await error.waitFor({ state: 'hidden' });
    await waitFor(async () => /Monday/.test(await dialog.getByTestId('schedule-preview-description').textContent()),
      { timeoutMs: 5000, what: 'the description of the corrected expression' });
    await expression.fill('30 3 * *');
    await error.waitFor();
    assert.match(await error.textContent(), /five fields/);
    await dialog.getByRole('button', { name: 'Cancel' }).click();
    await dialog.waitFor({ state: 'detached' });
  });

  await t.test('"Every day at 04:00" shows the next five runs before saving, then is stored with its task', async () => {
    await page.getByRole('button', { name: 'New schedule' }).click();
    const dialog = page.getByRole('dialog', { name: 'New schedule' });
    await dialog.getByLabel('Name').fill('Nightly');
    await dialog.getByLabel('Every day at 04:00').check();
    const runs = dialog.getByTestId('schedule-next-runs').locator('time');
    await waitFor(async () => (await runs.count()) === 5, { timeoutMs: 5000, what: 'five next runs' });
    assert.equal(await dialog.getByTestId('schedule-preview-description').textContent(), 'At 04:00.');
    const times = await runs.evaluateAll((els) => els.map((el) => ({
      iso: el.getAttribute('datetime'),
      text: el.textContent,
      // In the page's time zone, which is hoard's.
      local: [new Date(el.getAttribute('datetime')).getHours(), new Date(el.getAttribute('datetime')).getMinutes()],
    })));
    for (const run of times) {
      assert.deepEqual(run.local, [4, 0], `${run.iso} is at 04:00 local time`);
      assert.match(run.text, /, 04:00$/);
    }
    for (let i = 1; i < times.length; i++) {
      assert.equal(Date.parse(times[i].iso) - Date.parse(times[i - 1].iso), DAY_MS, 'consecutive days');
    }
    assert.ok(Date.parse(times[0].iso) > Date.now() && Date.parse(times[0].iso) - Date.now() <= DAY_MS, 'the first run is within a day');
    const fromApi = await api.post(`${schedulesApi}/preview`, { minute: '0', hour: '4', day_of_month: '*', month: '*', day_of_week: '*' });
    assert.deepEqual(times.map((r) => r.iso), fromApi.attributes.next_runs);

    await dialog.getByLabel(/Files to ignore/).fill('logs/\n*.tmp\n');
    assert.equal(await dialog.getByLabel('Active').isChecked(), true);
    await dialog.getByRole('button', { name: 'Create schedule' }).click();
    await dialog.waitFor({ state: 'detached' });

    await row().waitFor();
    assert.equal(await row().getByTestId('schedule-description').textContent(), 'At 04:00.');
    const next = row().getByTestId('schedule-next-run');
    assert.match(await next.textContent(), /^in \d+ (min|h)$/);
    assert.match(await next.getAttribute('title'), /04:00:00/);
    assert.equal(await row().getByTestId('schedule-last-run').getAttribute('data-outcome'), 'none');

    const list = (await api.get(schedulesApi)).data.map((d) => d.attributes);
    assert.equal(list.length, 1);
    const s = list[0];
    assert.equal(s.name, 'Nightly');
    assert.equal(['minute', 'hour', 'day_of_month', 'month', 'day_of_week'].map((f) => s.cron[f]).join(' '), '0 4 * * *');
    assert.equal(s.is_active, true);
    const tasks = s.relationships.tasks.data.map((d) => d.attributes);
    assert.equal(tasks.length, 1, 'one backup task');
    assert.equal(tasks[0].action, 'backup');
    assert.equal(tasks[0].payload, 'logs/\n*.tmp');
    assert.equal(tasks[0].time_offset, 0);
  });

  await t.test('editing keeps the preset in plain words; deleting starts on Cancel', async () => {
    await row().getByRole('button', { name: 'Edit Nightly' }).click();
    const dialog = page.getByRole('dialog', { name: 'Edit “Nightly”' });
    assert.equal(await dialog.getByLabel('Every day at 04:00').isChecked(), true);
    assert.equal(await dialog.getByLabel(/Files to ignore/).inputValue(), 'logs/\n*.tmp');
    await page.keyboard.press('Escape');
    await dialog.waitFor({ state: 'detached' });

    await row().getByRole('button', { name: 'Delete Nightly' }).click();
    const confirm = page.getByRole('dialog', { name: 'Delete “Nightly”?' });
    await confirm.waitFor();
    assert.equal(await page.evaluate(() => document.activeElement?.textContent), 'Cancel');
    await page.keyboard.press('Enter');
    await confirm.waitFor({ state: 'detached' });
    assert.equal((await api.get(schedulesApi)).data.length, 1, 'Enter on Cancel deletes nothing');
  });

  await t.test('"Run now" leads to a completed run and a scheduled backup', async () => {
    await row().getByRole('button', { name: 'Run now' }).click();
    await waitFor(async () => (await row().getByTestId('schedule-last-run').getAttribute('data-outcome')) === 'completed',
      { timeoutMs: 30_000, what: 'the run to complete' });
    await page.getByTestId('notice-success').filter({ hasText: 'The run of “Nightly” made a backup' }).waitFor();
    await page.getByRole('link', { name: 'Backups' }).click();
    const backup = page.getByTestId('backup-row').filter({ has: page.getByTestId('scheduled-mark') });
    await backup.waitFor();
    assert.equal(await backup.getByTestId('backup-status').getAttribute('data-status'), 'completed');
  });

  await t.test('a retention policy is previewed, then saved', async () => {
    for (const name of ['Manual one', 'Manual two']) {
      const b = await api.createBackup(id, { name });
      assert.equal((await api.waitBackup(id, b.uuid)).status, 'completed');
    }
    await goto(page, `${base}/servers/${id}/schedules`);
    await row().waitFor();
    const save = page.getByTestId('retention-save');
    await page.getByTestId('retention-status').filter({ hasText: 'No policy' }).waitFor();
    assert.equal(await save.getAttribute('aria-disabled'), 'true', 'saving waits for a preview');

    await page.getByLabel('Keep last').fill('1');
    await page.getByRole('button', { name: 'Preview' }).click();
    const rows = page.getByTestId('retention-row');
    await waitFor(async () => (await rows.count()) === 3, { timeoutMs: 5000, what: 'a verdict for each of the three backups' });
    const verdicts = await rows.evaluateAll((els) => els.map((el) => ({
      name: el.dataset.name,
      verdict: el.dataset.verdict,
      reasons: el.querySelector('[data-testid="retention-reasons"]').textContent,
    })));
    assert.equal(verdicts[0].name, 'Manual two', 'newest first');
    assert.equal(verdicts[0].verdict, 'keep');
    assert.match(verdicts[0].reasons, /last 1|newest successful/);
    for (const v of verdicts.slice(1)) {
      assert.equal(v.verdict, 'delete', `${v.name} would be deleted`);
      assert.notEqual(v.reasons.trim(), '—', `${v.name} says why`);
    }
    assert.match(await page.getByTestId('retention-counts').textContent(), /1 kept, 2 deleted/);

    // Changing a rule after the preview asks for a new one before saving.
    await page.getByLabel('Keep daily').fill('3');
    assert.equal(await save.getAttribute('aria-disabled'), 'true');
    await page.getByLabel('Keep daily').fill('');
    assert.equal(await save.getAttribute('aria-disabled'), null);
    await save.click();
    await page.getByTestId('notice-success').filter({ hasText: 'Retention policy saved: keep the last 1.' }).waitFor();
    assert.equal(await page.getByTestId('retention-status').textContent(), 'In force: keep the last 1.');
    const policy = (await api.get(`/api/client/servers/${id}/retention`)).attributes;
    assert.equal(policy.is_set, true);
    assert.equal(policy.keep_last, 1);
    assert.equal(policy.keep_daily, null);
  });

  await t.test('screenshots of the schedules page at desktop and phone width', async () => {
    await page.evaluate(() => window.scrollTo(0, 0));
    await page.mouse.move(0, 0);
    const desktop = path.join(SCREENSHOT_DIR, 'schedules-desktop.png');
    await page.screenshot({ path: desktop, fullPage: true });
    assert.ok(fs.statSync(desktop).size > 10_000);

    const mobile = await newContext(browser, { viewport: { width: 360, height: 780 }, isMobile: true, hasTouch: true, timezoneId: ZONE });
    const mWatch = watchConsole(mobile);
    const p = await mobile.newPage();
    await uiLogin(p, base, 'admin', ADMIN_PASSWORD);
    await goto(p, `${base}/servers/${id}/schedules`);
    await p.getByTestId('schedule-row').waitFor();
    await p.getByTestId('retention-status').filter({ hasText: 'In force' }).waitFor();
    await p.getByRole('button', { name: 'Preview' }).click();
    await p.getByTestId('retention-row').first().waitFor();
    const width = await p.evaluate(() => document.documentElement.scrollWidth);
    assert.ok(width <= 360, `no horizontal overflow (document is ${width} px wide)`);
    await p.getByRole('button', { name: 'New schedule' }).click();
    await p.getByRole('dialog', { name: 'New schedule' }).getByTestId('schedule-next-runs').waitFor();
    await p.screenshot({ path: path.join(SCREENSHOT_DIR, 'schedules-mobile-dialog.png') });
    await p.keyboard.press('Escape');
    await p.evaluate(() => window.scrollTo(0, 0));
    await p.screenshot({ path: path.join(SCREENSHOT_DIR, 'schedules-mobile.png'), fullPage: true });
    mWatch.check();
    await mobile.close();
  });

  await t.test('the servers list shows the next backup, and warns when a scheduled one failed', async () => {
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Servers', exact: true }).click();
    const serverRow = page.getByTestId('server-row').filter({ hasText: 'Epsilon' });
    await serverRow.waitFor();
    assert.match(await serverRow.getByTestId('server-next-backup').textContent(), /^Next backup in \d+ (min|h)$/);
    assert.equal(await serverRow.getByTestId('server-schedule-problem').count(), 0);

    await api.patch(`/api/application/servers/${id}`, { hooks: { pre_backup: 'echo "world save failed" >&2; exit 1' } });
    const [s] = (await api.get(schedulesApi)).data.map((d) => d.attributes);
    await api.post(`${schedulesApi}/${s.id}/execute`);
    await waitFor(async () => {
      const now = (await api.get(`${schedulesApi}/${s.id}`)).attributes;
      return !now.is_processing && now.last_run && now.last_run.outcome === 'failed';
    }, { timeoutMs: 30_000, what: 'the scheduled run to fail' });
    await goto(page, `${base}/servers`);
    const problem = page.getByTestId('server-row').filter({ hasText: 'Epsilon' }).getByTestId('server-schedule-problem');
    await problem.waitFor();
    assert.match(await problem.textContent(), /^Last scheduled backup failed: .+/);
    assert.equal(await problem.getAttribute('href'), `/servers/${id}/schedules`);
    await page.mouse.move(0, 0);
    await page.screenshot({ path: path.join(SCREENSHOT_DIR, 'servers-schedule-problem.png') });
  });

  // The only console errors allowed: Chromium's log lines for the wrong cron fields.
  watch.check([{ status: 422, url: `${schedulesApi}/preview` }]);
  await context.close();
});
