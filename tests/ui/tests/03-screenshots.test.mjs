// Screenshots of the backups page with every kind of backup on it (creating, completed with
// a warning, failed, locked), at desktop and phone widths and in the dark theme. They land
// in target/ui-screenshots/. With UPDATE_DOCS=1 the desktop one also replaces
// docs/backups-page.png, the picture in the README (a plain test run changes no tracked file).

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import {
  ADMIN_PASSWORD, REPO_ROOT, SCREENSHOT_DIR, ApiClient, goto, launchBrowser, newContext,
  startHoard, tempDir, uiLogin, watchConsole, writeRandomFile,
} from '../lib/harness.mjs';

let hoard;
let browser;
let root;
let server;

function luminance(rgb) {
  const [r, g, b] = rgb.match(/\d+(\.\d+)?/g).slice(0, 3).map(Number);
  return (0.2126 * r + 0.7152 * g + 0.0722 * b) / 255;
}

before(async () => {
  // Reading at 2 MiB/s, the 40 MiB "Weekly full backup" stays in "creating" for about
  // 20 seconds: the whole time the screenshots take.
  hoard = await startHoard({ name: 'screenshots', args: ['--io-limit-mib-s', '2'] });
  root = tempDir('shots');
  const dir = path.join(root, 'survival');
  writeRandomFile(path.join(dir, 'world', 'region', 'r.0.0.mca'), 512 * 1024);
  writeRandomFile(path.join(dir, 'world', 'level.dat'), 24 * 1024);
  fs.writeFileSync(path.join(dir, 'server.properties'), 'motd=A Minecraft Server\ndifficulty=normal\n');
  fs.mkdirSync(path.join(dir, 'logs'));
  fs.writeFileSync(path.join(dir, 'logs', 'latest.log'), '[Server thread/INFO]: Done (3.2s)!\n'.repeat(2000));
  execFileSync('mkfifo', [path.join(dir, 'console.pipe')]); // a FIFO: skipped with a warning
  writeRandomFile(path.join(dir, 'world', 'DIM-1', 'big-region.mca'), 40 * 1024 * 1024);

  const api = await new ApiClient(hoard.url).login('admin', ADMIN_PASSWORD);
  server = await api.createServer({ name: 'Survival SMP', description: 'Vanilla 1.21 world', path: dir, owner: 'admin' });
  const id = server.identifier;
  const quick = 'world/DIM-1/\n';
  const locked = await api.createBackup(id, { name: 'Before the 1.21 update', ignored: quick, is_locked: true });
  await api.waitBackup(id, locked.uuid);
  await api.patch(`/api/application/servers/${id}`, { hooks: { pre_backup: 'echo "world save failed" >&2; exit 1' } });
  const failed = await api.createBackup(id, { name: 'Pre-mod install' });
  assert.equal((await api.waitBackup(id, failed.uuid)).status, 'failed');
  await api.patch(`/api/application/servers/${id}`, { hooks: { pre_backup: null } });
  const nightly = await api.createBackup(id, { ignored: quick });
  const done = await api.waitBackup(id, nightly.uuid);
  assert.equal(done.status, 'completed');
  assert.ok(done.warnings.some((w) => w.includes('console.pipe')), 'the FIFO is reported as a warning');
  await api.createBackup(id, { name: 'Weekly full backup' });
  browser = await launchBrowser();
  fs.mkdirSync(SCREENSHOT_DIR, { recursive: true });
});

after(async () => {
  await browser?.close();
  await hoard?.stop();
  if (root) fs.rmSync(root, { recursive: true, force: true });
});

async function openBackups(options) {
  const context = await newContext(browser, options);
  const watch = watchConsole(context);
  const page = await context.newPage();
  await uiLogin(page, hoard.url, 'admin', ADMIN_PASSWORD);
  await goto(page, `${hoard.url}/servers/${server.identifier}`);
  const creating = page.getByTestId('backup-row').filter({ hasText: 'Weekly full backup' });
  await creating.getByTestId('backup-progress').waitFor();
  // Wait for a measured rate, so the progress line is complete in the picture.
  await page.waitForFunction(() => /%.*\/s/.test(document.querySelector('[data-testid="backup-progress-text"]')?.textContent || ''), null, { timeout: 10_000 });
  await page.mouse.move(0, 0);
  return { context, page, watch };
}

async function checkStates(page) {
  const rows = page.getByTestId('backup-row');
  assert.equal(await rows.count(), 4);
  const statusOf = (name) => rows.filter({ hasText: name }).getByTestId('backup-status').getAttribute('data-status');
  assert.equal(await statusOf('Weekly full backup'), 'creating');
  assert.equal(await statusOf('Pre-mod install'), 'failed');
  assert.equal(await statusOf('Before the 1.21 update'), 'completed');
  const failed = rows.filter({ hasText: 'Pre-mod install' });
  assert.match(await failed.locator('[title*="pre_backup hook"]').first().getAttribute('title'), /pre_backup hook exited with status 1/);
  await rows.filter({ hasText: 'Before the 1.21 update' }).getByTestId('locked-icon').waitFor();
  const marker = rows.filter({ hasText: 'Backup at' }).getByTestId('warnings-marker');
  assert.match(await marker.getAttribute('title'), /console\.pipe: skipped/);
}

function assertPng(file) {
  const bytes = fs.readFileSync(file);
  assert.deepEqual([...bytes.subarray(1, 4)], [0x50, 0x4e, 0x47], `${file} is a PNG`);
  assert.ok(bytes.length > 10_000, `${file} has content`);
}

test('screenshots of the backups page', { timeout: 90_000 }, async (t) => {
  await t.test('desktop, light theme', async () => {
    const { context, page, watch } = await openBackups({ viewport: { width: 1280, height: 760 }, colorScheme: 'light' });
    await checkStates(page);
    assert.ok(luminance(await page.evaluate(() => getComputedStyle(document.body).backgroundColor)) > 0.8, 'light background');
    const file = path.join(SCREENSHOT_DIR, 'backups-desktop.png');
    await page.screenshot({ path: file });
    assertPng(file);
    if (process.env.UPDATE_DOCS === '1') {
      fs.mkdirSync(path.join(REPO_ROOT, 'docs'), { recursive: true });
      fs.copyFileSync(file, path.join(REPO_ROOT, 'docs', 'backups-page.png'));
    }
    watch.check();
    await context.close();
  });

  await t.test('phone width', async () => {
    const { context, page, watch } = await openBackups({ viewport: { width: 360, height: 780 }, isMobile: true, hasTouch: true, colorScheme: 'light' });
    await checkStates(page);
    const width = await page.evaluate(() => document.documentElement.scrollWidth);
    assert.ok(width <= 360, `no horizontal overflow (document is ${width} px wide)`);
    const file = path.join(SCREENSHOT_DIR, 'backups-mobile.png');
    await page.screenshot({ path: file, fullPage: true });
    assertPng(file);
    watch.check();
    await context.close();
  });

  await t.test('dark theme', async () => {
    const { context, page, watch } = await openBackups({ viewport: { width: 1280, height: 760 }, colorScheme: 'dark' });
    await checkStates(page);
    assert.ok(luminance(await page.evaluate(() => getComputedStyle(document.body).backgroundColor)) < 0.15, 'dark background');
    await page.getByTestId('backup-row').filter({ hasText: 'Pre-mod install' }).getByTestId('backup-name').click();
    await page.getByTestId('backup-error').waitFor();
    const file = path.join(SCREENSHOT_DIR, 'backups-dark.png');
    await page.screenshot({ path: file });
    assertPng(file);
    watch.check();
    await context.close();
  });
});
