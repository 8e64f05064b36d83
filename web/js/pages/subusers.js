// A server's subusers: who else may see it, and what each may do.

import { h, icon, uid } from '../dom.js';
import { api, seg, ApiError } from '../api.js';
import { button, confirmDialog, field, formDialog, keepFocus, notify, poller, rowActions, showError, timeAgo } from '../ui.js';
import { permissionFieldset, permissionLabel, serverHeader, PERMISSIONS } from './common.js';

export function render(ctx) {
  const { format } = ctx;
  const identifier = ctx.params[0];
  const base = `/api/client/servers/${seg(identifier)}`;
  const root = h('div', {}, h('p', { class: 'loading', role: 'status', text: 'Loading subusers…' }));
  ctx.view.append(root);
  let stopped = false;
  let server = null;
  let poll = null;
  let drawn = false;
  let lastError = null;
  const body = h('div', {});

  async function load() {
    try {
      const s = await api.get(base);
      if (stopped) return;
      server = s.attributes;
      const canManage = (s.meta && s.meta.is_server_owner) || ctx.user.admin;
      ctx.setTitle(`${server.name} · Subusers`);
      const addBtn = button('Add subuser', { kind: 'primary', iconName: 'plus', attrs: { 'data-testid': 'add-subuser' } });
      addBtn.addEventListener('click', openAdd);
      const perms = new Set((s.meta && s.meta.user_permissions) || []);
      root.replaceChildren(serverHeader(server, { identifier, current: 'users', canManage, perms, actions: canManage ? addBtn : null }), body);
      if (!canManage) {
        body.replaceChildren(h('div', { class: 'empty-state card' },
          h('h2', { text: 'Only the owner manages subusers' }),
          h('p', { class: 'muted', text: 'Ask the server\'s owner or an administrator to change who has access.' })));
        return;
      }
      // Every 2 s while the tab is visible: changes made elsewhere show up.
      poll = poller(loadList, 2000);
    } catch (err) {
      if (stopped) return;
      const missing = err instanceof ApiError && err.status === 404;
      root.replaceChildren(h('section', { class: 'empty-state card' },
        h('h1', { text: missing ? 'Server not found' : 'Subusers could not be loaded' }),
        h('p', { class: 'muted', text: err.message }),
        h('a', { href: '/servers', class: 'btn btn-primary', text: 'Back to your servers' })));
      if (!missing) showError(err);
    }
  }

  async function loadList() {
    try {
      const { data: list, changed } = await api.poll(`${base}/users`);
      if (stopped || (drawn && !changed)) return;
      keepFocus(body, () => draw(list.data.map((d) => d.attributes)));
      drawn = true;
      lastError = null;
    } catch (err) {
      if (stopped) return;
      if (lastError !== err.message) showError(err);
      lastError = err.message;
    }
  }

  function draw(users) {
    if (!users.length) {
      body.replaceChildren(h('div', { class: 'empty-state card' },
        icon('users', 'empty-icon'),
        h('h2', { text: 'No subusers' }),
        h('p', { class: 'muted', text: 'Add other hoard users to let them see this server\'s backups, and choose what else they may do.' })));
      return;
    }
    const rows = users.map((u) => {
      const actions = rowActions([
        { key: 'edit', label: 'Edit permissions', name: `Edit permissions of ${u.username}`, iconName: 'edit', run: () => openEdit(u) },
        { key: 'remove', label: 'Remove', name: `Remove ${u.username}`, iconName: 'trash', kind: 'ghost-danger', run: () => openRemove(u) },
      ], u.username, u.uuid);
      return h('tr', { 'data-testid': 'subuser-row', 'data-username': u.username },
        h('td', { class: 'cell-primary', 'data-label': 'User' }, h('strong', { text: u.username })),
        h('td', { 'data-label': 'Permissions' },
          h('ul', { class: 'chips', 'aria-label': `Permissions of ${u.username}` },
            u.permissions.length
              ? PERMISSIONS.filter(([p]) => u.permissions.includes(p)).map(([p]) => h('li', { class: 'chip', title: p, text: permissionLabel(p) }))
              : h('li', { class: 'muted', text: 'None' }))),
        h('td', { 'data-label': 'Added' }, timeAgo(u.created_at, format.ago, format.exact)),
        h('td', { class: 'actions-cell', 'data-label': 'Actions' }, actions));
    });
    body.replaceChildren(h('div', { class: 'card table-card' },
      h('table', { class: 'table table-responsive', 'data-testid': 'subusers-table' },
        h('caption', { class: 'visually-hidden', text: 'Subusers of this server' }),
        h('thead', {}, h('tr', {},
          h('th', { scope: 'col', text: 'User' }),
          h('th', { scope: 'col', text: 'Permissions' }),
          h('th', { scope: 'col', text: 'Added' }),
          h('th', { scope: 'col', class: 'actions-col' }, h('span', { class: 'visually-hidden', text: 'Actions' })))),
        h('tbody', {}, rows))),
    h('p', { class: 'table-foot muted', text: format.plural(users.length, 'subuser') }));
  }

  function openAdd() {
    const listId = uid('suggestions');
    const suggestions = h('datalist', { id: listId });
    const username = field('Username', { name: 'username', type: 'text', required: true, autocomplete: 'off', spellcheck: false, list: listId },
      { hint: 'An existing hoard user: names are suggested as you type two letters or more. Administrators can add users on the Users page.' });
    username.append(suggestions);
    let asked = '';
    let wait = null;
    // Asks hoard for matching names once typing pauses, newest question only.
    username.control.addEventListener('input', () => {
      clearTimeout(wait);
      const q = username.control.value.trim();
      if (q.length < 2) {
        suggestions.replaceChildren();
        return;
      }
      wait = setTimeout(async () => {
        asked = q;
        try {
          const found = await api.get(`${base}/users/suggest?q=${encodeURIComponent(q)}`);
          if (asked !== q) return;
          suggestions.replaceChildren(...found.data.map((name) => h('option', { value: name })));
        } catch {
          // Suggestions are a help only: typing the full name still works.
          suggestions.replaceChildren();
        }
      }, 200);
    });
    const perms = permissionFieldset(['backup.read']);
    formDialog({
      title: 'Add subuser',
      body: [username, perms.el],
      submitLabel: 'Add subuser',
      testid: 'add-subuser-dialog',
      wide: true,
      onSubmit: async () => {
        const name = username.control.value.trim();
        await api.post(`${base}/users`, { username: name, permissions: perms.values() });
        notify(`${name} can now access ${server.name}.`, { type: 'success', container: document.getElementById('notices') });
        await poll.now();
      },
    });
  }

  function openEdit(u) {
    const perms = permissionFieldset(u.permissions);
    formDialog({
      title: `Permissions of ${u.username}`,
      body: [perms.el],
      submitLabel: 'Save permissions',
      testid: 'edit-subuser-dialog',
      wide: true,
      onSubmit: async () => {
        await api.post(`${base}/users/${seg(u.uuid)}`, { permissions: perms.values() });
        notify(`Permissions of ${u.username} saved.`, { type: 'success', container: document.getElementById('notices') });
        await poll.now();
      },
    });
  }

  function openRemove(u) {
    confirmDialog({
      title: `Remove ${u.username}?`,
      message: `${u.username} will no longer see ${server.name} or its backups. Their hoard account stays.`,
      confirmLabel: 'Remove subuser',
      danger: true,
      testid: 'remove-subuser-dialog',
      onConfirm: async () => {
        await api.del(`${base}/users/${seg(u.uuid)}`);
        notify(`${u.username} was removed from ${server.name}.`, { type: 'success', container: document.getElementById('notices') });
        await poll.now();
      },
    });
  }

  load();
  return () => {
    stopped = true;
    if (poll) poll.stop();
  };
}
