// The backups page works from the keyboard alone, with a visible focus ring, and every form
// control of its dialogs and of the admin forms has a label.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  ADMIN_PASSWORD, goto, newContext, useOneBackupFixture, uiLogin, watchConsole,
} from '../lib/harness.mjs';

const fixture = useOneBackupFixture({ name: 'keyboard', serverName: 'Delta', backupName: 'Keyboard backup' });

/** Presses Tab until `predicate(activeElement)` holds in the page; returns how many. */
async function tabTo(page, predicate, max = 40) {
  for (let i = 1; i <= max; i++) {
    await page.keyboard.press('Tab');
    if (await page.evaluate(predicate)) return i;
  }
  throw new Error('the control was not reached with Tab');
}

const unlabelled = () => [...document.querySelectorAll('dialog[open] input, dialog[open] select, dialog[open] textarea')]
  .filter((el) => el.type !== 'hidden' && !el.labels?.length && !el.getAttribute('aria-label') && !el.getAttribute('aria-labelledby'))
  .map((el) => el.outerHTML);

test('keyboard use and labels', { timeout: 60_000 }, async (t) => {
  const context = await newContext(fixture.browser);
  const watch = watchConsole(context);
  const page = await context.newPage();
  await uiLogin(page, fixture.hoard.url, 'admin', ADMIN_PASSWORD);
  await goto(page, `${fixture.hoard.url}/servers/${fixture.server.identifier}`);
  await page.getByTestId('backup-row').waitFor();

  await t.test('Create backup opens from the keyboard, closes on Escape and gives focus back', async () => {
    await tabTo(page, () => document.activeElement?.dataset.testid === 'create-backup');
    const ring = await page.evaluate(() => getComputedStyle(document.activeElement).outlineStyle);
    assert.equal(ring, 'solid', 'the focused button shows a focus ring');
    await page.keyboard.press('Enter');
    const dialog = page.getByRole('dialog', { name: 'Create backup' });
    await dialog.waitFor();
    assert.equal(await page.evaluate(() => document.activeElement?.name), 'name', 'focus starts in the name field');
    assert.deepEqual(await page.evaluate(unlabelled), []);
    await page.keyboard.press('Escape');
    await dialog.waitFor({ state: 'detached' });
    assert.equal(await page.evaluate(() => document.activeElement?.dataset.testid), 'create-backup');
  });

  await t.test('a row opens its details and its actions are reachable with Tab', async () => {
    await tabTo(page, () => document.activeElement?.dataset.testid === 'backup-name');
    await page.keyboard.press('Enter');
    const expanded = () => document.querySelector('[data-testid="backup-name"]')?.getAttribute('aria-expanded') === 'true';
    await page.waitForFunction(expanded, null, { timeout: 10_000 }).catch(async (err) => {
      const active = await page.evaluate(() => document.activeElement?.outerHTML.slice(0, 300));
      throw new Error(`${err.message}\nthe row did not expand; focus is on: ${active}`);
    });
    await page.getByTestId('backup-details').filter({ visible: true }).waitFor();
    await tabTo(page, () => document.activeElement?.dataset.action === 'restore');
    await page.keyboard.press('Enter');
    const dialog = page.getByRole('dialog', { name: /Restore “Keyboard backup”/ });
    await dialog.waitFor();
    assert.deepEqual(await page.evaluate(unlabelled), []);
    // A destructive dialog starts on Cancel; the checkbox is just before it, and Space
    // toggles it, and the summary follows.
    assert.equal(await page.evaluate(() => document.activeElement?.textContent), 'Cancel');
    await page.keyboard.press('Shift+Tab');
    assert.equal(await page.evaluate(() => document.activeElement?.name), 'truncate');
    await page.keyboard.press('Space');
    assert.match(await dialog.getByTestId('restore-summary').textContent(), /files that are not in the backup are kept/);
    await page.keyboard.press('Escape');
    await dialog.waitFor({ state: 'detached' });
  });

  await t.test('the admin forms label every control', async () => {
    await goto(page, `${fixture.hoard.url}/admin/servers`);
    await page.getByRole('button', { name: 'Add server' }).click();
    await page.getByRole('dialog', { name: 'Add server' }).waitFor();
    assert.deepEqual(await page.evaluate(unlabelled), []);
    await page.keyboard.press('Escape');
    await goto(page, `${fixture.hoard.url}/admin/users`);
    await page.getByRole('button', { name: 'Add user' }).click();
    await page.getByRole('dialog', { name: 'Add user' }).waitFor();
    assert.deepEqual(await page.evaluate(unlabelled), []);
    await page.keyboard.press('Escape');
    await goto(page, `${fixture.hoard.url}/servers/${fixture.server.identifier}/users`);
    await page.getByRole('button', { name: 'Add subuser' }).click();
    await page.getByRole('dialog', { name: 'Add subuser' }).waitFor();
    assert.deepEqual(await page.evaluate(unlabelled), []);
    await page.keyboard.press('Escape');
  });

  watch.check();
  await context.close();
});
