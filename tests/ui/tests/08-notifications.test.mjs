// Notification channels through the browser, against a small HTTP receiver started here: a
// Discord channel added with the default events is listed with its URL masked, and its
// test arrives as a Discord embed; a webhook's signing secret is shown once, signs what it
// sends, and never comes back from the API; a bad URL is named beside the field; a channel
// is narrowed to one server; a channel pointed at a closed port shows why its test failed;
// deleting starts on Cancel; a non-admin sees neither the page nor its nav entry.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import {
  ADMIN_PASSWORD, SCREENSHOT_DIR, ApiClient, goto, launchBrowser, newContext, startHoard, tempDir,
  uiLogin, waitFor, watchConsole,
} from '../lib/harness.mjs';

const BASE = '/api/application/notifications';
const PLAYER_PASSWORD = 'player-password-for-tests';

let hoard;
let browser;
let root;
let api;
let alpha;
let beta;
let receiver;
let receiverUrl;
let closedPort;
/** What the receiver was sent: { method, url, headers, body }. */
const received = [];

/** A loopback port nothing listens on: taken, then given back. */
function closedLoopbackPort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

before(async () => {
  hoard = await startHoard({ name: 'notifications' });
  root = tempDir('notifications');
  api = await new ApiClient(hoard.url).login('admin', ADMIN_PASSWORD);
  const made = [];
  for (const name of ['Alpha', 'Beta']) {
    const dir = path.join(root, name.toLowerCase());
    fs.mkdirSync(dir);
    fs.writeFileSync(path.join(dir, 'server.properties'), `motd=${name}\n`);
    made.push(await api.createServer({ name, path: dir, owner: 'admin' }));
  }
  [alpha, beta] = made;
  await api.post('/api/application/users', { username: 'player', password: PLAYER_PASSWORD, admin: false });

  receiver = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      received.push({ method: req.method, url: req.url, headers: req.headers, body: Buffer.concat(chunks).toString() });
      res.writeHead(204);
      res.end();
    });
  });
  await new Promise((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  receiverUrl = `http://127.0.0.1:${receiver.address().port}`;
  closedPort = await closedLoopbackPort();

  browser = await launchBrowser();
  fs.mkdirSync(SCREENSHOT_DIR, { recursive: true });
});

after(async () => {
  await browser?.close();
  await hoard?.stop();
  await new Promise((resolve) => (receiver ? receiver.close(resolve) : resolve()));
  if (root) fs.rmSync(root, { recursive: true, force: true });
});

test('notification channels', { timeout: 120_000 }, async (t) => {
  const base = hoard.url;
  const context = await newContext(browser);
  const watch = watchConsole(context);
  const page = await context.newPage();
  await uiLogin(page, base, 'admin', ADMIN_PASSWORD);
  const row = (name) => page.locator(`[data-testid="channel-row"][data-name="${name}"]`);
  const channels = async () => (await api.get(BASE)).data.map((d) => d.attributes);
  const dialog = page.getByTestId('channel-dialog');

  await t.test('the Notifications page is in the admin nav and explains itself when empty', async () => {
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Notifications' }).click();
    await page.waitForURL((u) => u.pathname === '/admin/notifications');
    await page.getByTestId('channels-empty').waitFor();
    assert.match(await page.getByTestId('channels-empty').textContent(), /hear when a backup fails/);
    assert.equal(await page.getByRole('link', { name: 'Notifications' }).getAttribute('aria-current'), 'page');
  });

  await t.test('a Discord channel with the default events is listed with its URL masked', async () => {
    await page.getByRole('button', { name: 'Add channel' }).click();
    await dialog.waitFor();
    const unlabelled = await dialog.locator('input, select, textarea').evaluateAll((els) => els
      .filter((el) => !el.labels?.length && !el.getAttribute('aria-label')).map((el) => el.outerHTML));
    assert.deepEqual(unlabelled, [], 'every control has a label');
    assert.equal(await dialog.getByLabel('Discord').isChecked(), true, 'Discord is the first choice');
    const checked = await dialog.getByTestId('channel-events-field').locator('input:checked').evaluateAll((els) => els.map((e) => e.value));
    assert.deepEqual(checked, ['backup_failed', 'restore_failed'], 'failures only by default');
    assert.equal(await dialog.getByLabel('All servers').isChecked(), true);
    assert.equal(await dialog.getByLabel('Enabled').isChecked(), true);
    await dialog.getByLabel('Name').fill('Ops Discord');
    await dialog.getByLabel('URL').fill(`${receiverUrl}/api/webhooks/123/secretTOKEN`);
    await dialog.getByRole('button', { name: 'Add channel' }).click();
    await dialog.waitFor({ state: 'detached' });

    const r = row('Ops Discord');
    await r.waitFor();
    const shown = await r.getByTestId('channel-url').textContent();
    assert.equal(shown, `${receiverUrl}/…OKEN`);
    assert.ok(!(await r.textContent()).includes('secretTOKEN'), 'the token is not shown');
    assert.equal(await r.getByTestId('channel-kind').textContent(), 'Discord');
    assert.deepEqual(await r.getByTestId('channel-events').locator('li').allTextContents(), ['Backup failed', 'Restore failed']);
    assert.equal(await r.getByTestId('channel-servers').textContent(), 'All servers');
    assert.equal(await r.getByTestId('channel-delivery').textContent(), 'Nothing sent yet');
    const [saved] = await channels();
    assert.equal(saved.kind, 'discord');
    assert.deepEqual(saved.events, ['backup_failed', 'restore_failed']);
    assert.equal(saved.servers, null);
  });

  await t.test('Send test says Delivered, and the receiver got a Discord embed', async () => {
    const r = row('Ops Discord');
    await r.getByRole('button', { name: 'Send test' }).click();
    await r.getByTestId('test-result').filter({ hasText: 'Delivered' }).waitFor();
    assert.match(await r.getByTestId('channel-delivery').textContent(), /^Delivered just now/);
    const sent = received.at(-1);
    assert.equal(sent.method, 'POST');
    assert.equal(sent.url, '/api/webhooks/123/secretTOKEN');
    const body = JSON.parse(sent.body);
    assert.equal(body.embeds.length, 1);
    assert.equal(body.embeds[0].title, 'Test notification');
    assert.match(body.embeds[0].description, /Ops Discord/);
    assert.equal(await page.evaluate(() => document.activeElement?.textContent), 'Send test', 'focus stays on the button');
  });

  let secret;
  await t.test('a webhook\'s signing secret is shown once, signs its requests, and the API never returns it', async () => {
    await page.getByRole('button', { name: 'Add channel' }).click();
    await dialog.getByLabel('Webhook').check();
    await dialog.getByLabel('Name').fill('Hook');
    await dialog.getByLabel('URL').fill(`${receiverUrl}/hook`);
    await dialog.getByLabel('Restore completed').check();
    await dialog.getByRole('button', { name: 'Add channel' }).click();
    const secretDialog = page.getByTestId('secret-dialog');
    await secretDialog.waitFor();
    assert.match(await secretDialog.textContent(), /does not show it again/);
    secret = await secretDialog.getByTestId('channel-secret').textContent();
    assert.match(secret, /^[A-Za-z0-9]{32}$/);
    assert.equal(await page.evaluate(() => document.activeElement?.getAttribute('aria-label')), 'Copy signing secret');
    assert.equal(await secretDialog.getByRole('button', { name: 'Cancel' }).count(), 0, 'nothing to cancel');
    await page.screenshot({ path: path.join(SCREENSHOT_DIR, 'notifications-secret.png') });
    await secretDialog.getByRole('button', { name: 'Done' }).click();
    await secretDialog.waitFor({ state: 'detached' });

    const hook = (await channels()).find((c) => c.name === 'Hook');
    assert.equal(hook.has_secret, true);
    for (const answer of [await api.get(BASE), await api.get(`${BASE}/${hook.id}`)]) {
      assert.ok(!JSON.stringify(answer).includes(secret), 'the secret is not in the answer');
    }
    await page.reload();
    await row('Hook').waitFor();
    assert.ok(!(await page.content()).includes(secret), 'nor on the page');

    await row('Hook').getByRole('button', { name: 'Send test' }).click();
    await row('Hook').getByTestId('test-result').filter({ hasText: 'Delivered' }).waitFor();
    const sent = received.at(-1);
    assert.equal(sent.url, '/hook');
    const expected = `sha256=${crypto.createHmac('sha256', secret).update(sent.body).digest('hex')}`;
    assert.equal(sent.headers['x-hoard-signature'], expected, 'signed with the secret shown');
  });

  await t.test('a bad URL is named beside the field, once; Healthchecks hides the events', async () => {
    await page.getByRole('button', { name: 'Add channel' }).click();
    await dialog.getByLabel('Healthchecks').check();
    assert.equal(await dialog.getByTestId('channel-events-field').isVisible(), false, 'events do not apply to Healthchecks');
    await dialog.getByLabel('ntfy').check();
    assert.equal(await dialog.getByTestId('channel-events-field').isVisible(), true);
    await dialog.getByLabel('Name').fill('Phone');
    const urlInput = dialog.getByLabel('URL');
    await urlInput.fill('ntfy.sh/my-topic');
    const eventsField = dialog.getByTestId('channel-events-field');
    await eventsField.getByLabel('Backup failed').uncheck();
    await eventsField.getByLabel('Restore failed').uncheck();
    await dialog.getByRole('button', { name: 'Add channel' }).click();
    const error = urlInput.locator('xpath=..').locator('.field-error');
    await error.waitFor();
    assert.match(await error.textContent(), /http:\/\/ or https:\/\//);
    const eventsError = eventsField.locator('.field-error');
    assert.match(await eventsError.textContent(), /at least one event/);
    assert.equal(await eventsField.getAttribute('aria-describedby'), await eventsError.getAttribute('id'));
    assert.equal(await urlInput.getAttribute('aria-invalid'), 'true');
    assert.ok((await urlInput.getAttribute('aria-describedby')).includes(await error.getAttribute('id')), 'the error describes the field');
    assert.equal(await page.evaluate(() => document.activeElement?.getAttribute('name')), 'url', 'focus is on the field');
    assert.equal(await dialog.locator('.dialog-notices .notice').count(), 0, 'not also as a notice in the dialog');
    assert.equal(await page.locator('#notices .notice-error').count(), 0, 'nor on the page');

    await eventsField.getByLabel('Backup failed').check();
    await urlInput.fill(`http://127.0.0.1:${closedPort}/phone-topic`);
    await dialog.getByRole('button', { name: 'Add channel' }).click();
    await dialog.waitFor({ state: 'detached' });
    await row('Phone').waitFor();
  });

  await t.test('a channel narrowed to one server keeps its saved URL', async () => {
    await row('Ops Discord').getByRole('button', { name: 'Edit Ops Discord' }).click();
    await dialog.waitFor();
    const urlInput = dialog.getByLabel('URL');
    assert.equal(await urlInput.inputValue(), '', 'the saved URL is not filled in');
    assert.equal(await urlInput.getAttribute('placeholder'), `${receiverUrl}/…OKEN`);
    assert.equal(await dialog.getByTestId('channel-server-picks').isVisible(), false);
    // Choosing "only these" without a server is refused beside the choice.
    await dialog.getByLabel('Only the servers chosen below').check();
    await dialog.getByRole('button', { name: 'Save changes' }).click();
    await dialog.getByText('Choose at least one server, or All servers.').waitFor();
    await dialog.getByTestId('channel-server-picks').getByLabel('Beta').check();
    await dialog.getByRole('button', { name: 'Save changes' }).click();
    await dialog.waitFor({ state: 'detached' });

    await waitFor(async () => (await row('Ops Discord').getByTestId('channel-servers').textContent()) === 'Beta', { timeoutMs: 5000, what: 'the server list to say Beta' });
    const saved = (await channels()).find((c) => c.name === 'Ops Discord');
    assert.deepEqual(saved.servers, [beta.identifier]);
    assert.notEqual(alpha.identifier, beta.identifier);
    assert.equal(saved.url, `${receiverUrl}/…OKEN`, 'the URL is unchanged');
    await row('Ops Discord').getByRole('button', { name: 'Send test' }).click();
    await row('Ops Discord').getByTestId('test-result').filter({ hasText: 'Delivered' }).waitFor();
    assert.equal(received.at(-1).url, '/api/webhooks/123/secretTOKEN', 'still sent to the saved URL');
  });

  await t.test('a channel pointed at a closed port shows why its test failed', async () => {
    const r = row('Phone');
    await r.getByRole('button', { name: 'Send test' }).click();
    await r.getByTestId('test-result').filter({ hasText: 'Not delivered' }).waitFor();
    const error = r.getByTestId('channel-error');
    assert.match(await error.textContent(), new RegExp(`cannot reach http://127\\.0\\.0\\.1:${closedPort}/…opic`));
    assert.ok(!(await error.textContent()).includes('phone-topic'), 'the error masks the URL too');
    const saved = (await channels()).find((c) => c.name === 'Phone');
    assert.match(saved.last_error, /cannot reach/);

    await r.getByLabel('Phone is enabled').uncheck();
    await waitFor(async () => (await channels()).find((c) => c.name === 'Phone').is_enabled === false, { timeoutMs: 5000, what: 'the channel to be disabled' });
  });

  await t.test('a channel that becomes a webhook shows its new secret once', async () => {
    await row('Phone').getByRole('button', { name: 'Edit Phone' }).click();
    await dialog.getByLabel('Webhook').check();
    await dialog.getByRole('button', { name: 'Save changes' }).click();
    const secretDialog = page.getByTestId('secret-dialog');
    await secretDialog.waitFor();
    assert.match(await secretDialog.getByTestId('channel-secret').textContent(), /^[A-Za-z0-9]{32}$/);
    await page.keyboard.press('Escape');
    await secretDialog.waitFor({ state: 'detached' });
    assert.equal(await page.evaluate(() => document.activeElement?.getAttribute('aria-label')), 'Edit Phone', 'focus returns to the row');
    const phone = (await channels()).find((c) => c.name === 'Phone');
    assert.equal(phone.kind, 'webhook');
    assert.equal(phone.has_secret, true);
    assert.equal(phone.is_enabled, false, 'the rest is unchanged');
  });

  await t.test('screenshots of the page and its dialog at desktop and phone width', async () => {
    await page.mouse.move(0, 0);
    await page.screenshot({ path: path.join(SCREENSHOT_DIR, 'notifications-desktop.png'), fullPage: true });
    await row('Hook').getByRole('button', { name: 'Edit Hook' }).click();
    await dialog.waitFor();
    await page.screenshot({ path: path.join(SCREENSHOT_DIR, 'notifications-dialog-desktop.png') });
    await page.keyboard.press('Escape');
    await dialog.waitFor({ state: 'detached' });

    const mobile = await newContext(browser, { viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });
    const mWatch = watchConsole(mobile);
    const p = await mobile.newPage();
    await uiLogin(p, base, 'admin', ADMIN_PASSWORD);
    await goto(p, `${base}/admin/notifications`);
    await p.getByTestId('channel-row').first().waitFor();
    const width = await p.evaluate(() => document.documentElement.scrollWidth);
    assert.ok(width <= 390, `no horizontal overflow (document is ${width} px wide)`);
    await p.screenshot({ path: path.join(SCREENSHOT_DIR, 'notifications-mobile.png'), fullPage: true });
    await p.getByRole('button', { name: 'Add channel' }).click();
    await p.getByTestId('channel-dialog').waitFor();
    await p.screenshot({ path: path.join(SCREENSHOT_DIR, 'notifications-mobile-dialog.png') });
    mWatch.check();
    await mobile.close();
  });

  await t.test('deleting starts on Cancel', async () => {
    await row('Hook').getByRole('button', { name: 'Delete Hook' }).click();
    const confirm = page.getByTestId('delete-channel-dialog');
    await confirm.waitFor();
    assert.equal(await page.evaluate(() => document.activeElement?.textContent), 'Cancel');
    await page.keyboard.press('Enter');
    await confirm.waitFor({ state: 'detached' });
    assert.ok((await channels()).some((c) => c.name === 'Hook'), 'Enter on Cancel deletes nothing');

    await row('Hook').getByRole('button', { name: 'Delete Hook' }).click();
    await confirm.getByRole('button', { name: 'Delete channel' }).click();
    await confirm.waitFor({ state: 'detached' });
    await row('Hook').waitFor({ state: 'detached' });
    assert.ok(!(await channels()).some((c) => c.name === 'Hook'));
    await page.getByTestId('notice-success').filter({ hasText: 'Hook was deleted.' }).waitFor();
  });

  await t.test('a non-admin has no Notifications entry and is not allowed on the page', async () => {
    const other = await newContext(browser);
    const oWatch = watchConsole(other);
    const p = await other.newPage();
    await uiLogin(p, base, 'player', PLAYER_PASSWORD);
    const nav = p.getByRole('navigation', { name: 'Main' });
    await nav.getByRole('link', { name: 'Servers', exact: true }).waitFor();
    assert.equal(await nav.getByRole('link', { name: 'Notifications' }).count(), 0);
    await goto(p, `${base}/admin/notifications`);
    await p.getByRole('heading', { name: 'Administrators only' }).waitFor();
    oWatch.check();
    await other.close();
  });

  // The only console errors allowed: Chromium's log line for the bad URL.
  watch.check([{ status: 422, url: BASE }]);
  await context.close();
});
