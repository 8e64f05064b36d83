// The interface is served under a strict Content-Security-Policy, obeys it, and never
// reaches beyond the hoard it was loaded from.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import {
  ADMIN_PASSWORD, CSP, REPO_ROOT, goto, newContext, useOneBackupFixture, uiLogin, watchConsole,
} from '../lib/harness.mjs';

const fixture = useOneBackupFixture({ name: 'security', serverName: 'Gamma', backupName: 'Only backup' });

test('the app shell carries the Content-Security-Policy, deep links included', async () => {
  for (const p of ['/', '/servers/abcdef12', '/admin/users', '/app.js', '/style.css']) {
    const res = await fetch(`${fixture.hoard.url}${p}`);
    assert.equal(res.status, 200, p);
    assert.equal(res.headers.get('content-security-policy'), CSP, `CSP on ${p}`);
  }
  const shell = await (await fetch(`${fixture.hoard.url}/servers/abcdef12`)).text();
  assert.match(shell, /<script type="module" src="\/app\.js"><\/script>/);
});

test('the web files hold no inline script or style', () => {
  const web = path.join(REPO_ROOT, 'web');
  const files = fs.readdirSync(web, { recursive: true }).map((f) => path.join(web, f)).filter((f) => fs.statSync(f).isFile());
  assert.ok(files.some((f) => f.endsWith('index.html')));
  for (const file of files.filter((f) => f.endsWith('.html'))) {
    const html = fs.readFileSync(file, 'utf8');
    assert.doesNotMatch(html, /<script(?![^>]*\bsrc=)[^>]*>/i, `${file}: inline script`);
    assert.doesNotMatch(html, /<style/i, `${file}: style element`);
    assert.doesNotMatch(html, /\sstyle=/i, `${file}: style attribute`);
    assert.doesNotMatch(html, /\son[a-z]+=/i, `${file}: inline event handler`);
    assert.doesNotMatch(html, /https?:\/\//i, `${file}: external reference`);
  }
  for (const file of files.filter((f) => f.endsWith('.js'))) {
    const js = fs.readFileSync(file, 'utf8');
    assert.doesNotMatch(js, /setAttribute\(\s*['"]style['"]/, `${file}: style attribute`);
    assert.doesNotMatch(js, /\.innerHTML\s*=|insertAdjacentHTML|document\.write/, `${file}: HTML from strings`);
    assert.doesNotMatch(js, /\beval\(|new Function\(/, `${file}: eval`);
    assert.doesNotMatch(js, /https?:\/\/(?!www\.w3\.org\/2000\/svg)/, `${file}: external URL`);
  }
  for (const file of files.filter((f) => f.endsWith('.css'))) {
    assert.doesNotMatch(fs.readFileSync(file, 'utf8'), /@import|url\(\s*['"]?https?:/i, `${file}: external resource`);
  }
});

test('every page loads without leaving localhost or breaking the policy', { timeout: 60_000 }, async () => {
  const context = await newContext(fixture.browser);
  const watch = watchConsole(context);
  const requests = [];
  context.on('request', (r) => requests.push(r.url()));
  // Records policy violations the page reports (loaded before any page script runs).
  await context.addInitScript(() => {
    window.__cspViolations = [];
    document.addEventListener('securitypolicyviolation', (e) => {
      window.__cspViolations.push(`${e.violatedDirective} ${e.blockedURI}`);
    });
  });
  const page = await context.newPage();
  const violations = [];
  const collect = async () => violations.push(...await page.evaluate(() => window.__cspViolations));

  await uiLogin(page, fixture.hoard.url, 'admin', ADMIN_PASSWORD);
  await page.getByTestId('server-row').waitFor();
  await collect();
  const visits = [
    [`/servers/${fixture.server.identifier}`, () => page.getByTestId('backup-row').waitFor()],
    [`/servers/${fixture.server.identifier}/users`, () => page.getByRole('heading', { name: 'No subusers' }).waitFor()],
    ['/admin/servers', () => page.getByTestId('admin-server-row').waitFor()],
    ['/admin/users', () => page.getByTestId('user-row').waitFor()],
    ['/account', () => page.getByRole('heading', { name: 'API keys' }).waitFor()],
    ['/no/such/page', () => page.getByRole('heading', { name: 'Page not found' }).waitFor()],
  ];
  for (const [p, ready] of visits) {
    await goto(page, `${fixture.hoard.url}${p}`);
    await ready();
    await collect();
  }
  // Dialogs and the details panel build their parts from script too.
  await goto(page, `${fixture.hoard.url}/servers/${fixture.server.identifier}`);
  await page.getByTestId('backup-name').click();
  await page.getByTestId('backup-details').filter({ visible: true }).waitFor();
  await page.getByRole('button', { name: 'Create backup' }).click();
  await page.getByRole('dialog', { name: 'Create backup' }).waitFor();
  await page.keyboard.press('Escape');
  await page.getByRole('dialog').waitFor({ state: 'detached' });
  await collect();

  assert.ok(requests.length > 10, 'requests were recorded');
  const outside = requests.filter((u) => !['127.0.0.1', 'localhost'].includes(new URL(u).hostname));
  assert.deepEqual(outside, [], 'no request leaves localhost');
  assert.ok(requests.some((u) => u.endsWith('/favicon.svg')), 'the favicon is served by hoard');
  assert.deepEqual(violations, [], 'no Content-Security-Policy violations');
  watch.check();
  await context.close();
});
