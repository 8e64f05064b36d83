// Pieces several pages share: status badges, permission descriptions and a server's header.

import { h, icon } from '../dom.js';
import { badge } from '../ui.js';

export const PERMISSIONS = [
  ['backup.read', 'View backups', 'See the server and its list of backups, with their status, size and checksum.'],
  ['backup.create', 'Create backups', 'Start new backups of the server.'],
  ['backup.download', 'Download backups', 'Get download links for finished backup archives.'],
  ['backup.delete', 'Delete and lock backups', 'Delete backups, and lock or unlock them (locked backups cannot be deleted).'],
  ['backup.restore', 'Restore backups', 'Replace the server\'s files with a backup\'s contents.'],
  ['schedule.read', 'View schedules', 'See when the server is backed up automatically, and how the last scheduled backups went.'],
  ['schedule.create', 'Create schedules', 'Add new automatic backup schedules.'],
  ['schedule.update', 'Change schedules', 'Edit, pause and resume schedules, and run one now.'],
  ['schedule.delete', 'Delete schedules', 'Remove schedules (their backups are kept).'],
  ['activity.read', 'View activity', 'See who did what on the server: backups, restores, deletions, downloads, schedules and subuser changes.'],
];

export function permissionLabel(name) {
  const found = PERMISSIONS.find(([n]) => n === name);
  return found ? found[1] : name;
}

/** The server's state as a badge, or null when it is simply ready. */
export function serverStateBadge(server) {
  const status = server.status;
  if (status === 'restoring_backup' || server.restore) return badge('Restoring', 'info', { 'data-testid': 'server-state' });
  if (status === 'installing' || server.is_installing) return badge('Installing', 'warning', { 'data-testid': 'server-state' });
  if (status === 'suspended' || server.is_suspended) return badge('Suspended', 'danger', { 'data-testid': 'server-state' });
  return null;
}

export function backupStatusBadge(status, { small = false, title = null } = {}) {
  const cls = small ? 'badge-small' : '';
  if (status === 'creating') return h('span', { class: ['badge', 'badge-info', 'badge-live', cls], title }, h('span', { class: 'pulse', 'aria-hidden': 'true' }), 'Creating');
  if (status === 'completed') return h('span', { class: ['badge', 'badge-success', cls], title }, icon('check'), 'Completed');
  if (status === 'failed') return h('span', { class: ['badge', 'badge-danger', cls], title }, icon('alert'), 'Failed');
  if (status === 'completed_with_warnings') return h('span', { class: ['badge', 'badge-warning', cls], title: title || 'Completed without the files it could not read' }, icon('warning'), 'Incomplete');
  if (status === 'missing') return h('span', { class: ['badge', 'badge-danger', cls], title: title || 'The archive is gone from storage or not the size recorded' }, icon('alert'), 'Missing');
  if (status === 'corrupt') return h('span', { class: ['badge', 'badge-danger', cls], title: title || 'The archive no longer matches its SHA-256' }, icon('alert'), 'Corrupt');
  return badge(status || 'Unknown', 'neutral');
}

/** A fieldset of permission checkboxes with an explanation each; `values()` reads it. */
export function permissionFieldset(selected = ['backup.read']) {
  const boxes = [];
  const fieldset = h('fieldset', { class: 'fieldset perms' },
    h('legend', { text: 'Permissions' }),
    PERMISSIONS.map(([name, label, hint]) => {
      const id = `perm-${name.replace('.', '-')}-${Math.random().toString(36).slice(2, 7)}`;
      const input = h('input', { type: 'checkbox', id, name: 'permissions', value: name, checked: selected.includes(name), 'aria-describedby': `${id}-hint` });
      boxes.push(input);
      return h('div', { class: 'check' }, input,
        h('div', { class: 'check-text' },
          h('label', { htmlFor: id }, label, ' ', h('code', { class: 'perm-code', text: name })),
          h('p', { id: `${id}-hint`, class: 'field-hint', text: hint })));
    }));
  return { el: fieldset, values: () => boxes.filter((b) => b.checked).map((b) => b.value) };
}

/**
 * The tabs of a server's pages: Schedules for those who may see them, Subusers for the
 * owner and administrators. Null when Backups would be the only tab.
 */
export function serverTabs({ identifier, current, canManage, perms }) {
  const seg = encodeURIComponent(identifier);
  const tab = (href, key, iconName, label) => h('a', { href, class: 'tab', 'aria-current': current === key ? 'page' : undefined }, icon(iconName), label);
  const extra = [
    perms.has('schedule.read') ? tab(`/servers/${seg}/schedules`, 'schedules', 'clock', 'Schedules') : null,
    perms.has('activity.read') ? tab(`/servers/${seg}/activity`, 'activity', 'info', 'History') : null,
    canManage ? tab(`/servers/${seg}/users`, 'users', 'users', 'Subusers') : null,
  ].filter(Boolean);
  if (!extra.length) return null;
  return h('nav', { class: 'tabs', 'aria-label': 'Server sections' }, tab(`/servers/${seg}`, 'backups', 'archive', 'Backups'), extra);
}

/** Heading and tabs shared by a server's pages. */
export function serverHeader(server, { identifier, current, canManage, perms, actions = null }) {
  return h('div', { class: 'server-head' },
    h('div', { class: 'page-head' },
      h('div', { class: 'page-head-text' },
        h('nav', { class: 'breadcrumb', 'aria-label': 'Breadcrumb' }, h('a', { href: '/servers' }, icon('arrowLeft'), 'Servers')),
        h('div', { class: 'title-row' }, h('h1', { class: 'server-title', text: server.name }), serverStateBadge(server)),
        h('p', { class: 'page-sub muted' }, h('span', { class: 'mono', text: server.identifier }),
          server.description ? ` · ${server.description}` : '')),
      actions ? h('div', { class: 'page-actions' }, actions) : null),
    serverTabs({ identifier, current, canManage, perms }));
}

/**
 * A server's storage at a glance: what its backups use, of its quota when it has one, the
 * space free for backups, and hoard's warning when space runs low. `storage` is null
 * without the permission to see backups.
 */
export function storageSummary(storage, format) {
  if (!storage) return h('span', { class: 'muted', title: 'Seeing storage needs the permission to view backups.', text: '—' });
  const { used_bytes: used, quota_bytes: quota, free_bytes: free, warning } = storage;
  const meter = quota
    ? h('meter', { class: 'meter', min: 0, max: quota, value: Math.min(used, quota), low: quota * 0.7, high: quota * 0.9, optimum: 0, 'aria-label': `${format.bytes(used)} of the ${format.bytes(quota)} quota used` })
    : null;
  return h('div', { class: ['storage', warning && 'has-warning'], 'data-testid': 'storage' },
    h('span', { class: 'storage-used', 'data-testid': 'storage-used' },
      quota ? `${format.bytes(used)} of ${format.bytes(quota)}` : `${format.bytes(used)} used`,
      quota ? null : h('span', { class: 'muted', text: ' · no quota' })),
    meter,
    h('span', { class: 'storage-free muted', 'data-testid': 'storage-free', text: `${format.bytes(free)} free` }),
    warning ? h('span', { class: 'storage-warning', role: 'note', 'data-testid': 'storage-warning' }, icon('warning'), h('span', { text: warning })) : null);
}

/**
 * When something is due, as "in 3 h" with the exact local time on hover; the app keeps the
 * words fresh.
 */
export function untilTime(iso, format, attrs = {}) {
  return h('time', { datetime: iso, title: format.exact(iso), 'data-relative': 'until', text: format.until(iso), ...attrs });
}
