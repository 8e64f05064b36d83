// Administration of servers: add, edit and remove the directories hoard backs up.

import { h, icon } from '../dom.js';
import { api, seg } from '../api.js';
import { badge, button, checkbox, field, formDialog, notify, rowActions, showError, select } from '../ui.js';
import { serverStateBadge } from './common.js';

const MIB = 1024 * 1024;
const GIB = 1024 * MIB;

/** Splits a byte count into the largest unit that divides it evenly (MiB or GiB). */
function splitBytes(n) {
  if (n === null || n === undefined) return ['', 'GiB'];
  if (n % GIB === 0) return [String(n / GIB), 'GiB'];
  if (n % MIB === 0) return [String(n / MIB), 'MiB'];
  return [String(+(n / MIB).toFixed(3)), 'MiB'];
}

function sizeField(label, name, value, { hint, optional = false, placeholder = '' }) {
  const [amount, unit] = splitBytes(value);
  const input = h('input', { type: 'number', name, min: 0, step: 'any', value: amount, inputMode: 'decimal', placeholder, class: 'size-amount' });
  const units = select([['MiB', 'MiB'], ['GiB', 'GiB']], { name: `${name}_unit`, value: unit });
  units.setAttribute('aria-label', `${label} unit`);
  units.classList.add('size-unit');
  const wrapper = field(label, input, { hint, optional });
  const group = h('div', { class: 'input-group' });
  input.replaceWith(group);
  group.append(input, units);
  wrapper.read = () => {
    const v = input.value.trim();
    if (v === '') return null;
    return Math.round(Number(v) * (units.value === 'GiB' ? GIB : MIB));
  };
  return wrapper;
}

export function render(ctx) {
  const { format } = ctx;
  ctx.setTitle('Manage servers');
  const addBtn = button('Add server', { kind: 'primary', iconName: 'plus', attrs: { 'data-testid': 'add-server' } });
  const body = h('div', {}, h('p', { class: 'loading', role: 'status', text: 'Loading servers…' }));
  ctx.view.append(
    h('div', { class: 'page-head' },
      h('div', {},
        h('h1', { text: 'Manage servers' }),
        h('p', { class: 'page-sub muted', text: 'The directories hoard backs up, their owners and their limits.' })),
      h('div', { class: 'page-actions' }, addBtn)),
    body);
  let stopped = false;
  let users = [];
  let servers = [];

  addBtn.addEventListener('click', () => openForm(null));

  async function load() {
    try {
      const [s, u] = await Promise.all([api.get('/api/application/servers'), api.get('/api/application/users')]);
      if (stopped) return;
      servers = s.data.map((d) => d.attributes);
      users = u.data.map((d) => d.attributes);
      draw();
    } catch (err) {
      if (stopped) return;
      body.replaceChildren(h('p', { class: 'muted', text: 'The servers could not be loaded.' }));
      showError(err);
    }
  }

  function draw() {
    if (!servers.length) {
      body.replaceChildren(h('div', { class: 'empty-state card' },
        icon('server', 'empty-icon'),
        h('h2', { text: 'No servers yet' }),
        h('p', { class: 'muted', text: 'Add a game server\'s directory to start backing it up.' })));
      return;
    }
    const rows = servers.map((s) => {
      const actions = rowActions([
        { key: 'edit', label: 'Edit', name: `Edit ${s.name}`, iconName: 'edit', run: () => openForm(s) },
        { key: 'subusers', label: 'Subusers', name: `Subusers of ${s.name}`, iconName: 'users', href: `/servers/${seg(s.identifier)}/users` },
        { key: 'remove', label: 'Remove', name: `Remove ${s.name}`, iconName: 'trash', kind: 'ghost-danger', run: () => openRemove(s) },
      ], s.name, s.identifier);
      return h('tr', { 'data-testid': 'admin-server-row', 'data-identifier': s.identifier, 'data-name': s.name },
        h('td', { class: 'cell-primary', 'data-label': 'Server' },
          h('a', { href: `/servers/${seg(s.identifier)}`, class: 'server-link', text: s.name }),
          h('span', { class: 'server-id muted mono', text: s.identifier })),
        h('td', { 'data-label': 'Path' }, h('code', { class: 'path', text: s.path })),
        h('td', { 'data-label': 'Owner' }, s.owner ? s.owner : h('span', { class: 'muted', text: 'Nobody' })),
        h('td', { 'data-label': 'Backups' }, s.backup_limit === 0 ? `${s.backup_count} · disabled` : `${s.backup_count} of ${s.backup_limit}`),
        h('td', { 'data-label': 'Limits' },
          h('span', { class: 'limits' }, `${format.bytes(s.max_backup_bytes)} each`,
            h('br', {}), h('span', { class: 'muted', text: s.backup_quota_bytes === null ? 'no quota' : `${format.bytes(s.backup_quota_bytes)} quota` }))),
        h('td', { 'data-label': 'Compression' }, s.compression || h('span', { class: 'muted', text: 'default' })),
        h('td', { 'data-label': 'State' }, serverStateBadge(s) || badge('Ready', 'neutral', { class: 'badge badge-neutral badge-quiet' })),
        h('td', { class: 'actions-cell', 'data-label': 'Actions' }, actions));
    });
    body.replaceChildren(h('div', { class: 'card table-card' },
      h('table', { class: 'table table-responsive', 'data-testid': 'admin-servers-table' },
        h('caption', { class: 'visually-hidden', text: 'Servers' }),
        h('thead', {}, h('tr', {},
          ['Server', 'Path', 'Owner', 'Backups', 'Limits', 'Compression', 'State'].map((t) => h('th', { scope: 'col', text: t })),
          h('th', { scope: 'col', class: 'actions-col' }, h('span', { class: 'visually-hidden', text: 'Actions' })))),
        h('tbody', {}, rows))),
    h('p', { class: 'table-foot muted', text: format.plural(servers.length, 'server') }));
  }

  function openForm(server) {
    const editing = Boolean(server);
    const s = server || {};
    const hooks = s.hooks || {};
    const name = field('Name', { name: 'name', type: 'text', required: true, maxLength: 191, value: s.name || '', autocomplete: 'off' });
    const path = field('Path', { name: 'path', type: 'text', required: true, value: s.path || '', spellcheck: false, autocomplete: 'off', placeholder: '/srv/minecraft', class: 'mono' },
      { hint: 'The server\'s directory on this machine, as an absolute path.' });
    const description = field('Description', h('textarea', { name: 'description', rows: 2, value: s.description || '' }), { optional: true });
    const owner = field('Owner', select([['', 'Nobody (administrators only)'], ...users.map((u) => [u.username, u.username])], { name: 'owner', value: s.owner || (editing ? '' : ctx.user.username) }),
      { hint: 'The owner sees the server and manages its subusers.' });
    const limit = field('Backup limit', { name: 'backup_limit', type: 'number', min: 0, max: 10000, step: 1, required: true, value: String(s.backup_limit ?? 10), inputMode: 'numeric' },
      { hint: 'How many backups the server may keep; failed ones do not count. 0 disables backups.' });
    const maxSize = sizeField('Maximum backup size', 'max_backup_bytes', s.max_backup_bytes ?? 10 * GIB, { hint: 'A backup whose archive grows past this fails.' });
    const quota = sizeField('Backup quota', 'backup_quota_bytes', s.backup_quota_bytes ?? null, { optional: true, placeholder: 'No quota', hint: 'Total size of all completed backups of this server. Empty for no quota.' });
    const compression = field('Compression', select([['', 'hoard\'s default'], ['zstd', 'zstd (fast, small)'], ['gzip', 'gzip (widely readable)'], ['none', 'none (plain tar)']], { name: 'compression', value: s.compression || '' }));
    const skipUnreadable = checkbox('Back up what can be read', {
      name: 'skip_unreadable',
      checked: Boolean(s.skip_unreadable),
      hint: 'When files or folders cannot be read, leave them out and mark the backup incomplete, instead of failing it.',
    });
    const restoring = s.status === 'restoring_backup';
    const status = field('State', select([['', 'Ready'], ['installing', 'Installing'], ['suspended', 'Suspended'], ...(restoring ? [['restoring_backup', 'Restoring a backup']] : [])], { name: 'status', value: s.status || '' }),
      { hint: restoring ? 'The state cannot change while a restore runs.' : 'Installing and suspended servers cannot be backed up or restored.' });
    status.control.disabled = restoring;
    const hook = (key, label, hint) => field(label, { name: `hooks.${key}`, type: 'text', value: hooks[key] || '', spellcheck: false, autocomplete: 'off', class: 'mono', placeholder: 'e.g. ./save-all.sh' }, { optional: true, hint });
    const hookFields = [
      hook('pre_backup', 'Before a backup', 'If it fails, the backup fails.'),
      hook('post_backup', 'After a backup', null),
      hook('pre_restore', 'Before a restore', 'Stop the game server here. If it fails, nothing is restored.'),
      hook('post_restore', 'After a restore', null),
    ];
    const hasHooks = Object.values(hooks).some(Boolean);
    const hooksBox = h('details', { class: 'disclosure', open: hasHooks || undefined },
      h('summary', {}, 'Hooks', h('span', { class: 'muted', text: ' · shell commands run in the server directory' })),
      h('div', { class: 'form-grid' }, hookFields));

    formDialog({
      title: editing ? `Edit ${s.name}` : 'Add server',
      wide: true,
      testid: editing ? 'edit-server-dialog' : 'add-server-dialog',
      body: [
        h('div', { class: 'form-grid' }, name, owner),
        path,
        description,
        h('div', { class: 'form-grid' }, limit, compression, maxSize, quota),
        skipUnreadable,
        status,
        hooksBox,
      ],
      submitLabel: editing ? 'Save changes' : 'Add server',
      onSubmit: async () => {
        const payload = {
          name: name.control.value.trim(),
          path: path.control.value.trim(),
          description: description.control.value,
          owner: owner.control.value || null,
          backup_limit: Number(limit.control.value),
          max_backup_bytes: maxSize.read(),
          backup_quota_bytes: quota.read(),
          compression: compression.control.value || null,
          skip_unreadable: skipUnreadable.control.checked,
          hooks: Object.fromEntries(hookFields.map((f) => [f.control.name.slice(6), f.control.value.trim() || null])),
        };
        if (!restoring) payload.status = status.control.value || null;
        if (payload.max_backup_bytes === null) delete payload.max_backup_bytes;
        let result;
        if (editing) result = await api.patch(`/api/application/servers/${seg(s.identifier)}`, payload);
        else result = await api.post('/api/application/servers', payload);
        const saved = result.attributes;
        notify(editing ? `${saved.name} saved.` : `${saved.name} added. Open it from the Servers page to create its first backup.`, { type: 'success', container: document.getElementById('notices') });
        await load();
      },
    });
  }

  function openRemove(s) {
    const also = s.backup_count > 0
      ? checkbox(`Also delete its ${format.plural(s.backup_count, 'backup')}`, {
        name: 'delete_backups',
        hint: 'Their archives are deleted from disk for good. Unticked, hoard refuses to remove a server that still has backups.',
      })
      : null;
    formDialog({
      title: `Remove ${s.name}?`,
      intro: h('p', { class: 'dialog-intro' }, 'hoard stops backing up ', h('strong', { text: s.name }), '. The files in ',
        h('code', { class: 'path', text: s.path }), ' are not touched.'),
      body: also ? [also] : [],
      submitLabel: 'Remove server',
      submitKind: 'danger',
      testid: 'remove-server-dialog',
      onSubmit: async () => {
        const del = also && also.control.checked;
        await api.del(`/api/application/servers/${seg(s.identifier)}?delete_backups=${del ? 'true' : 'false'}`);
        notify(del ? `${s.name} and its backups were removed.` : `${s.name} was removed.`, { type: 'success', container: document.getElementById('notices') });
        await load();
      },
    });
  }

  load().then(() => {
    if (!stopped && ctx.query.get('add')) {
      history.replaceState(null, '', '/admin/servers');
      openForm(null);
    }
  });
  return () => { stopped = true; };
}
