// Pieces several pages share: status badges and permission descriptions.

import { h, icon } from '../dom.js';
import { badge } from '../ui.js';

export const PERMISSIONS = [
  ['backup.read', 'View backups', 'See the server and its list of backups, with their status, size and checksum.'],
  ['backup.create', 'Create backups', 'Start new backups of the server.'],
  ['backup.download', 'Download backups', 'Get download links for finished backup archives.'],
  ['backup.delete', 'Delete and lock backups', 'Delete backups, and lock or unlock them (locked backups cannot be deleted).'],
  ['backup.restore', 'Restore backups', 'Replace the server\'s files with a backup\'s contents.'],
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
  return badge(status || 'Unknown', 'neutral');
}
