// Administration of hoard's user accounts.

import { h } from '../dom.js';
import { api, seg } from '../api.js';
import { badge, button, checkbox, confirmDialog, field, formDialog, notify, rowActions, showError, timeAgo } from '../ui.js';

export function render(ctx) {
  const { format } = ctx;
  ctx.setTitle('Users');
  const addBtn = button('Add user', { kind: 'primary', iconName: 'plus', attrs: { 'data-testid': 'add-user' } });
  const body = h('div', {}, h('p', { class: 'loading', role: 'status', text: 'Loading users…' }));
  ctx.view.append(
    h('div', { class: 'page-head' },
      h('div', {},
        h('h1', { text: 'Users' }),
        h('p', { class: 'page-sub muted', text: 'Accounts that can sign in to hoard. Give them servers as owners or subusers.' })),
      h('div', { class: 'page-actions' }, addBtn)),
    body);
  let stopped = false;
  addBtn.addEventListener('click', openAdd);

  async function load() {
    try {
      const list = await api.get('/api/application/users');
      if (stopped) return;
      draw(list.data.map((d) => d.attributes));
    } catch (err) {
      if (stopped) return;
      body.replaceChildren(h('p', { class: 'muted', text: 'The users could not be loaded.' }));
      showError(err);
    }
  }

  function draw(users) {
    const rows = users.map((u) => {
      const me = u.uuid === ctx.user.uuid;
      const actions = rowActions([
        { key: 'reset-password', label: 'Reset password', name: `Reset password of ${u.username}`, iconName: 'key', run: () => openReset(u) },
        u.admin
          ? { key: 'toggle-admin', label: 'Remove admin rights', name: `Remove admin rights of ${u.username}`, iconName: 'shield', run: () => openAdmin(u) }
          : { key: 'toggle-admin', label: 'Make admin', name: `Make ${u.username} an admin`, iconName: 'shield', run: () => openAdmin(u) },
        { key: 'delete', label: 'Delete', name: `Delete ${u.username}`, iconName: 'trash', kind: 'ghost-danger', run: () => openDelete(u) },
      ], u.username, u.uuid);
      return h('tr', { 'data-testid': 'user-row', 'data-username': u.username },
        h('td', { class: 'cell-primary', 'data-label': 'Username' },
          h('strong', { text: u.username }), me ? h('span', { class: 'muted', text: ' (you)' }) : null),
        h('td', { 'data-label': 'Role' }, u.admin ? badge('Administrator', 'accent') : badge('User', 'neutral')),
        h('td', { 'data-label': 'Created' }, timeAgo(u.created_at, format.ago, format.exact)),
        h('td', { class: 'actions-cell', 'data-label': 'Actions' }, actions));
    });
    body.replaceChildren(h('div', { class: 'card table-card' },
      h('table', { class: 'table table-responsive', 'data-testid': 'users-table' },
        h('caption', { class: 'visually-hidden', text: 'Users' }),
        h('thead', {}, h('tr', {},
          h('th', { scope: 'col', text: 'Username' }),
          h('th', { scope: 'col', text: 'Role' }),
          h('th', { scope: 'col', text: 'Created' }),
          h('th', { scope: 'col', class: 'actions-col' }, h('span', { class: 'visually-hidden', text: 'Actions' })))),
        h('tbody', {}, rows))),
    h('p', { class: 'table-foot muted', text: format.plural(users.length, 'user') }));
  }

  function openAdd() {
    const username = field('Username', { name: 'username', type: 'text', required: true, maxLength: 64, autocomplete: 'off', spellcheck: false },
      { hint: 'Letters, digits, dots, dashes and underscores.' });
    const password = field('Password', { name: 'password', type: 'password', required: true, minLength: 8, autocomplete: 'new-password' },
      { hint: 'At least 8 characters. Share it with the user; they can change it on their Account page.' });
    const admin = checkbox('Administrator', { name: 'admin', hint: 'Administrators manage every server and every user.' });
    formDialog({
      title: 'Add user',
      body: [username, password, admin],
      submitLabel: 'Add user',
      testid: 'add-user-dialog',
      onSubmit: async () => {
        const created = await api.post('/api/application/users', {
          username: username.control.value.trim(),
          password: password.control.value,
          admin: admin.control.checked,
        });
        notify(`${created.attributes.username} can now sign in.`, { type: 'success', container: document.getElementById('notices') });
        await load();
      },
    });
  }

  function openReset(u) {
    const password = field('New password', { name: 'password', type: 'password', required: true, minLength: 8, autocomplete: 'new-password' },
      { hint: 'At least 8 characters.' });
    formDialog({
      title: `Reset the password of ${u.username}`,
      intro: `${u.username} signs in with the new password from now on.`,
      body: [password],
      submitLabel: 'Set password',
      testid: 'reset-password-dialog',
      onSubmit: async () => {
        await api.patch(`/api/application/users/${seg(u.uuid)}`, { password: password.control.value });
        if (u.uuid === ctx.user.uuid) {
          // A new password ends every session of the account, this one included.
          ctx.signedOut('Your password was changed, and every session was signed out. Sign in with your new password.');
          return;
        }
        notify(`The password of ${u.username} was changed.`, { type: 'success', container: document.getElementById('notices') });
      },
    });
  }

  function openAdmin(u) {
    const making = !u.admin;
    confirmDialog({
      title: making ? `Make ${u.username} an administrator?` : `Remove the admin rights of ${u.username}?`,
      message: making
        ? `${u.username} will be able to manage every server, every user and their backups.`
        : `${u.uuid === ctx.user.uuid ? 'You keep' : `${u.username} keeps`} access only to the servers ${u.uuid === ctx.user.uuid ? 'you own or are a subuser of' : 'they own or are a subuser of'}.`,
      confirmLabel: making ? 'Make administrator' : 'Remove admin rights',
      danger: !making,
      testid: 'admin-flag-dialog',
      onConfirm: async () => {
        await api.patch(`/api/application/users/${seg(u.uuid)}`, { admin: making });
        if (u.uuid === ctx.user.uuid && !making) {
          // The admin pages are no longer yours: start again from the servers page.
          window.location.assign('/servers');
          return;
        }
        notify(making ? `${u.username} is now an administrator.` : `${u.username} is no longer an administrator.`, { type: 'success', container: document.getElementById('notices') });
        await load();
      },
    });
  }

  function openDelete(u) {
    confirmDialog({
      title: `Delete ${u.username}?`,
      message: `${u.username} can no longer sign in, and their API keys stop working. Servers they own are kept, without an owner.`,
      confirmLabel: 'Delete user',
      danger: true,
      testid: 'delete-user-dialog',
      onConfirm: async () => {
        await api.del(`/api/application/users/${seg(u.uuid)}`);
        if (u.uuid === ctx.user.uuid) {
          ctx.signedOut(`The account ${u.username} was deleted.`);
          return;
        }
        notify(`${u.username} was deleted.`, { type: 'success', container: document.getElementById('notices') });
        await load();
      },
    });
  }

  load();
  return () => { stopped = true; };
}
