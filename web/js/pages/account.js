// The signed-in user's account: password and API keys.

import { h, icon } from '../dom.js';
import { api, seg } from '../api.js';
import {
  button, busy, clearFieldErrors, confirmDialog, copyButton, field, notify, showError,
  showFormError, timeAgo, clearNotices,
} from '../ui.js';

export function render(ctx) {
  const { format, user } = ctx;
  ctx.setTitle('Account');
  let stopped = false;

  // --- Password ----------------------------------------------------------------------
  const current = field('Current password', { name: 'current_password', type: 'password', required: true, autocomplete: 'current-password' });
  const next = field('New password', { name: 'password', type: 'password', required: true, minLength: 8, autocomplete: 'new-password' }, { hint: 'At least 8 characters.' });
  const confirm = field('Confirm new password', { name: 'password_confirmation', type: 'password', required: true, autocomplete: 'new-password' });
  const pwNotices = h('div', { class: 'form-notices' });
  const pwSubmit = h('button', { type: 'submit', class: 'btn btn-primary' }, h('span', { class: 'btn-label', text: 'Change password' }));
  const pwForm = h('form', { class: 'stack', 'aria-labelledby': 'pw-title' }, pwNotices,
    h('input', { type: 'text', name: 'username', autocomplete: 'username', value: user.username, readOnly: true, hidden: true, tabIndex: -1 }),
    current, next, confirm, h('div', { class: 'form-actions' }, pwSubmit));
  pwForm.addEventListener('submit', async (event) => {
    event.preventDefault();
    clearNotices(pwNotices);
    clearFieldErrors(pwForm);
    if (next.control.value !== confirm.control.value) {
      notify('The new password and its confirmation differ.', { type: 'error', container: pwNotices });
      confirm.control.setAttribute('aria-invalid', 'true');
      confirm.control.focus();
      return;
    }
    try {
      await busy(pwSubmit, () => api.put('/api/client/account/password', {
        current_password: current.control.value,
        password: next.control.value,
        password_confirmation: confirm.control.value,
      }));
      // hoard keeps this session and ends the account's other ones.
      pwForm.reset();
      notify('Your password was changed. Other browsers signed in to this account were signed out.', { type: 'success', timeout: 12000, container: pwNotices });
    } catch (err) {
      showFormError(pwForm, err, pwNotices);
    }
  });

  // --- API keys ----------------------------------------------------------------------
  const description = field('Description', { name: 'description', type: 'text', maxLength: 500, autocomplete: 'off', placeholder: 'e.g. Nightly backup script' },
    { hint: 'What the key is for, so you recognise it later.' });
  const keyNotices = h('div', { class: 'form-notices' });
  const keySubmit = h('button', { type: 'submit', class: 'btn btn-primary' }, icon('plus'), h('span', { class: 'btn-label', text: 'Create API key' }));
  const keyForm = h('form', { class: 'key-form', 'aria-label': 'Create an API key' }, description, h('div', { class: 'form-actions' }, keySubmit));
  const secretSlot = h('div', {});
  const keyList = h('div', {}, h('p', { class: 'loading', role: 'status', text: 'Loading API keys…' }));
  keyForm.addEventListener('submit', async (event) => {
    event.preventDefault();
    clearNotices(keyNotices);
    try {
      const created = await busy(keySubmit, () => api.post('/api/client/account/api-keys', { description: description.control.value.trim() }));
      keyForm.reset();
      showSecret(created);
      await loadKeys();
    } catch (err) {
      showFormError(keyForm, err, keyNotices);
    }
  });

  function showSecret(created) {
    // The key is the identifier followed by the secret, which the API shows only now.
    const token = created.attributes.identifier + created.meta.secret_token;
    const done = button('I have saved it', { kind: 'secondary' });
    const panel = h('section', { class: 'secret-panel', role: 'status', 'data-testid': 'new-api-key', 'aria-labelledby': 'secret-title' },
      h('h3', { id: 'secret-title' }, icon('key'), 'Your new API key'),
      h('p', { class: 'callout callout-warning' }, icon('warning'),
        h('span', { text: 'Copy it now: this is the only time hoard shows it. Anyone with this key acts as you, so keep it secret.' })),
      h('div', { class: 'secret-row' },
        h('code', { class: 'secret mono', 'data-testid': 'api-key-secret', text: token }),
        copyButton(token, 'Copy API key')),
      h('p', { class: 'muted small' }, 'Send it as ', h('code', { text: 'Authorization: Bearer <key>' }), '.'),
      h('div', { class: 'form-actions' }, done));
    done.addEventListener('click', () => {
      panel.remove();
      description.control.focus();
    });
    secretSlot.replaceChildren(panel);
    panel.querySelector('.btn-copy').focus();
  }

  async function loadKeys() {
    try {
      const list = await api.get('/api/client/account/api-keys');
      if (stopped) return;
      drawKeys(list.data.map((d) => d.attributes));
    } catch (err) {
      if (stopped) return;
      keyList.replaceChildren(h('p', { class: 'muted', text: 'The API keys could not be loaded.' }));
      showError(err);
    }
  }

  function drawKeys(keys) {
    if (!keys.length) {
      keyList.replaceChildren(h('p', { class: 'muted empty-line', text: 'You have no API keys.' }));
      return;
    }
    const rows = keys.map((k) => {
      const del = button(`Delete key ${k.description || k.identifier}`, { kind: 'ghost-danger', iconName: 'trash', iconOnly: true, attrs: { 'data-tip': 'Delete' } });
      del.addEventListener('click', () => confirmDialog({
        title: 'Delete this API key?',
        message: h('p', { class: 'dialog-intro' }, 'Scripts using the key ', h('code', { text: k.identifier }),
          k.description ? ` (${k.description})` : '', ' stop working at once. This cannot be undone.'),
        confirmLabel: 'Delete key',
        danger: true,
        testid: 'delete-key-dialog',
        onConfirm: async () => {
          await api.del(`/api/client/account/api-keys/${seg(k.identifier)}`);
          notify('The API key was deleted.', { type: 'success', container: document.getElementById('notices') });
          await loadKeys();
        },
      }));
      return h('tr', { 'data-testid': 'api-key-row', 'data-identifier': k.identifier },
        h('td', { class: 'cell-primary', 'data-label': 'Description' }, k.description || h('span', { class: 'muted', text: 'No description' })),
        h('td', { 'data-label': 'Key' }, h('code', { class: 'mono', text: k.identifier })),
        h('td', { 'data-label': 'Last used' }, k.last_used_at ? timeAgo(k.last_used_at, format.ago, format.exact) : h('span', { class: 'muted', text: 'Never' })),
        h('td', { 'data-label': 'Created' }, timeAgo(k.created_at, format.ago, format.exact)),
        h('td', { class: 'actions-cell', 'data-label': 'Actions' }, h('div', { class: 'row-actions' }, del)));
    });
    keyList.replaceChildren(h('table', { class: 'table table-responsive', 'data-testid': 'api-keys-table' },
      h('caption', { class: 'visually-hidden', text: 'Your API keys' }),
      h('thead', {}, h('tr', {},
        ['Description', 'Key', 'Last used', 'Created'].map((t) => h('th', { scope: 'col', text: t })),
        h('th', { scope: 'col', class: 'actions-col' }, h('span', { class: 'visually-hidden', text: 'Actions' })))),
      h('tbody', {}, rows)));
  }

  ctx.view.append(
    h('div', { class: 'page-head' },
      h('div', {},
        h('h1', { text: 'Account' }),
        h('p', { class: 'page-sub muted' }, 'Signed in as ', h('strong', { text: user.username }), user.admin ? ', an administrator.' : '.'))),
    h('div', { class: 'account-grid' },
      h('section', { class: 'card card-pad', 'aria-labelledby': 'pw-title' },
        h('h2', { id: 'pw-title', text: 'Change password' }),
        pwForm),
      h('section', { class: 'card card-pad', 'aria-labelledby': 'keys-title' },
        h('h2', { id: 'keys-title', text: 'API keys' }),
        h('p', { class: 'muted', text: 'Keys let scripts and panels use hoard\'s API as you, with your access to servers.' }),
        keyNotices,
        keyForm,
        secretSlot,
        keyList)));
  loadKeys();
  return () => { stopped = true; };
}
