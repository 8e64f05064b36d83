// The servers the user can see, with their backup state at a glance.

import { h, icon } from '../dom.js';
import { api } from '../api.js';
import { badge, keepFocus, poller, showError, timeAgo } from '../ui.js';
import { serverStateBadge, backupStatusBadge, storageSummary, untilTime } from './common.js';

export function render(ctx) {
  const { format, user } = ctx;
  ctx.setTitle('Servers');
  const body = h('div', { class: 'servers-body' }, h('p', { class: 'loading', role: 'status', text: 'Loading servers…' }));
  ctx.view.append(
    h('div', { class: 'page-head' },
      h('div', {},
        h('h1', { text: 'Servers' }),
        h('p', { class: 'page-sub muted', text: 'Pick a server to see, create and restore its backups.' })),
      user.admin ? h('a', { class: 'btn btn-primary', href: '/admin/servers?add=1' }, icon('plus'), h('span', { class: 'btn-label', text: 'Add server' })) : null),
    body);

  let stopped = false;
  let shown = false;
  let lastError = null;

  /**
   * Brings the list up to date. hoard's tags follow one revision of everything it stores:
   * when the list is answered 304, the paths have not changed either.
   */
  async function load() {
    try {
      const { data: list, changed } = await api.poll('/api/client');
      if (shown && !changed) return;
      const admin = user.admin ? await api.get('/api/application/servers') : null;
      if (stopped || !ctx.isCurrent()) return;
      const paths = new Map();
      if (admin) for (const s of admin.data) paths.set(s.attributes.identifier, s.attributes.path);
      keepFocus(body, () => draw(list.data.map((s) => s.attributes), paths));
      shown = true;
      lastError = null;
    } catch (err) {
      if (stopped) return;
      shown = false;
      if (!body.querySelector('table')) body.replaceChildren(h('p', { class: 'muted', text: 'The servers could not be loaded.' }));
      if (lastError !== err.message) showError(err);
      lastError = err.message;
    }
  }

  /** Without backup.read the API leaves `last_backup` out, which must not read as "Never". */
  function lastBackup(last, count) {
    if (last) return h('div', { class: 'last-backup' }, backupStatusBadge(last.status, { small: true }), ' ', timeAgo(last.created_at, format.ago, format.exact));
    if (count > 0) return h('span', { class: 'muted', title: 'Seeing backups needs the permission to view them.', text: '—' });
    return h('span', { class: 'muted', text: 'Never' });
  }

  /**
   * The next scheduled backup, and a warning when the last scheduled run failed or was
   * missed. `schedules` is null without the permission to see schedules.
   */
  function nextBackup(s) {
    const sch = s.schedules;
    if (!sch) return h('span', { class: 'muted', title: 'Seeing schedules needs the permission to view them.', text: '—' });
    const href = `/servers/${encodeURIComponent(s.identifier)}/schedules`;
    let when;
    if (sch.next_run_at) when = h('span', { 'data-testid': 'server-next-backup' }, 'Next backup ', untilTime(sch.next_run_at, format));
    else when = h('span', { class: 'muted', 'data-testid': 'server-next-backup', text: sch.count ? 'No active schedule' : 'No schedule' });
    const p = sch.problem;
    let problem = null;
    if (p) {
      const text = p.outcome === 'missed'
        ? `Last scheduled backup was missed${p.reason ? `: ${p.reason}` : ''}`
        : `Last scheduled backup failed${p.reason ? `: ${p.reason}` : ''}`;
      problem = h('a', { href, class: 'schedule-problem', 'data-focus-key': `problem:${s.identifier}`, 'data-testid': 'server-schedule-problem', title: `${p.schedule}, ${format.exact(p.at)}` },
        icon('warning'), h('span', { text }));
    }
    return h('div', { class: 'next-backup' }, when, problem);
  }

  function draw(servers, paths) {
    if (!servers.length) {
      body.replaceChildren(h('div', { class: 'empty-state card' },
        icon('archive', 'empty-icon'),
        h('h2', { text: 'No servers yet' }),
        user.admin
          ? h('p', {}, 'Add a game server directory and hoard will back it up. ',
            h('a', { href: '/admin/servers?add=1', text: 'Add your first server' }), '.')
          : h('p', { text: 'Ask an administrator to give you access to a server.' })));
      return;
    }
    const showPath = paths.size > 0;
    const rows = servers.map((s) => {
      const limit = s.feature_limits ? s.feature_limits.backups : 0;
      const last = s.last_backup;
      const meter = limit > 0
        ? h('meter', { class: 'meter', min: 0, max: limit, value: Math.min(s.backup_count, limit), 'aria-label': `${s.backup_count} of ${limit} backups used`, low: limit * 0.7, high: limit * 0.9, optimum: 0 })
        : null;
      return h('tr', { 'data-testid': 'server-row', 'data-identifier': s.identifier },
        h('td', { 'data-label': 'Server', class: 'cell-primary' },
          h('a', { href: `/servers/${encodeURIComponent(s.identifier)}`, class: 'server-link', 'data-focus-key': `server:${s.identifier}` }, s.name),
          h('span', { class: 'server-id muted mono', text: s.identifier }),
          s.description ? h('p', { class: 'server-desc muted', text: s.description }) : null),
        showPath ? h('td', { 'data-label': 'Path' }, h('code', { class: 'path', text: paths.get(s.identifier) || '—' })) : null,
        h('td', { 'data-label': 'Backups' },
          h('div', { class: 'usage' },
            h('span', { class: 'usage-text', 'data-testid': 'server-backup-count' },
              limit > 0 ? `${s.backup_count} of ${limit}` : (s.backup_count ? `${s.backup_count} (disabled)` : 'Disabled')),
            meter)),
        h('td', { 'data-label': 'Storage' }, storageSummary(s.storage, format)),
        h('td', { 'data-label': 'Last backup' },
          lastBackup(last, s.backup_count)),
        h('td', { 'data-label': 'Schedule' }, nextBackup(s)),
        h('td', { 'data-label': 'State' }, serverStateBadge(s) || badge('Ready', 'neutral', { class: 'badge badge-neutral badge-quiet' })));
    });
    body.replaceChildren(h('div', { class: 'card table-card' },
      h('table', { class: 'table table-responsive', 'data-testid': 'servers-table' },
        h('caption', { class: 'visually-hidden', text: 'Your servers' }),
        h('thead', {}, h('tr', {},
          h('th', { scope: 'col', text: 'Server' }),
          showPath ? h('th', { scope: 'col', text: 'Path' }) : null,
          h('th', { scope: 'col', text: 'Backups' }),
          h('th', { scope: 'col', text: 'Storage' }),
          h('th', { scope: 'col', text: 'Last backup' }),
          h('th', { scope: 'col', text: 'Schedule' }),
          h('th', { scope: 'col', text: 'State' }))),
        h('tbody', {}, rows))),
    h('p', { class: 'table-foot muted', text: format.plural(servers.length, 'server') }));
  }

  // Every 2 s while the tab is visible: backups, restores and servers added elsewhere show up.
  const poll = poller(load, 2000);
  return () => {
    stopped = true;
    poll.stop();
  };
}
