// A server's history: who did what, and when, newest first.

import { h } from '../dom.js';
import { api, seg, ApiError } from '../api.js';
import { button, poller, select, showError, timeAgo } from '../ui.js';
import { serverHeader } from './common.js';

const PER_PAGE = 50;

/** The events one may narrow the history to, in plain words. */
const FILTERS = [
  ['', 'Everything'],
  ['server:backup.start', 'Backups started'],
  ['server:backup.complete', 'Backups completed'],
  ['server:backup.fail', 'Backups failed'],
  ['server:backup.restore', 'Restores started'],
  ['server:backup.restore-complete', 'Restores completed'],
  ['server:backup.restore-failed', 'Restores failed'],
  ['server:backup.delete', 'Backups deleted'],
  ['server:backup.prune', 'Backups pruned by retention'],
  ['server:backup.download', 'Download links'],
  ['server:schedule.run', 'Schedule runs'],
  ['server:subuser.create', 'Subusers added'],
];

/** What an event says, in a sentence, from its name and properties. */
function describe(e, format) {
  const p = e.properties || {};
  const backup = p.name ? `“${p.name}”` : 'a backup';
  const took = p.duration_secs != null ? ` in ${format.duration(p.duration_secs)}` : '';
  switch (e.event) {
    case 'server:backup.start': return `Started ${backup}${p.is_scheduled ? ' (scheduled)' : ''}`;
    case 'server:backup.complete': return `Backup ${backup} completed${p.bytes != null ? `: ${format.bytes(p.bytes)}` : ''}`;
    case 'server:backup.fail': return `Backup ${backup} failed${p.error ? `: ${p.error}` : ''}`;
    case 'server:backup.delete': return `Deleted ${backup}`;
    case 'server:backup.prune': return `Pruned ${backup}${p.reason ? ` (${p.reason})` : ''}`;
    case 'server:backup.lock': return `Locked ${backup}`;
    case 'server:backup.unlock': return `Unlocked ${backup}`;
    case 'server:backup.rename': return `Renamed “${p.old_name || '?'}” to “${p.name || p.new_name || '?'}”`;
    case 'server:backup.download': return `Made a download link for ${backup}`;
    case 'server:backup.verify': return `Verified the archive of ${backup}`;
    case 'server:backup.restore': return `Started a restore${p.truncate === false ? ' (keeping other files)' : ''}`;
    case 'server:backup.restore-complete': return `Restore completed${took}${p.warning ? `, but ${p.warning}` : ''}`;
    case 'server:backup.restore-failed': return `Restore failed${took}${p.error ? `: ${p.error}` : ''}`;
    case 'server:schedule.run': return `Schedule “${p.name}” ran: ${p.outcome}${p.reason ? ` (${p.reason})` : ''}${p.catch_up ? ', catching up' : ''}`;
    case 'server:schedule.create': return `Created schedule “${p.name}”`;
    case 'server:schedule.update': return `Changed schedule “${p.name}”`;
    case 'server:schedule.delete': return `Deleted schedule “${p.name}”`;
    case 'server:schedule.execute': return `Ran schedule “${p.name}” now`;
    case 'server:task.create': case 'server:task.update': case 'server:task.delete':
      return `Changed the tasks of schedule “${p.name}”`;
    case 'server:retention.update': return 'Changed the retention policy';
    case 'server:subuser.create': return `Added subuser ${p.username || ''}`.trim();
    case 'server:subuser.update': return `Changed the permissions of ${p.username || 'a subuser'}`;
    case 'server:subuser.delete': return `Removed subuser ${p.username || ''}`.trim();
    default: return e.event;
  }
}

/** Who acted: a user (through the UI or a key), a schedule, or hoard itself. */
function who(e) {
  const actor = e.relationships && e.relationships.actor;
  const name = actor && actor.attributes ? actor.attributes.username : null;
  switch (e.actor_kind) {
    case 'schedule': return e.actor_schedule ? `Schedule “${e.actor_schedule.name}”` : 'A schedule';
    case 'api_key': return name ? `${name} (API key)` : 'An API key';
    case 'user': return name || 'A deleted user';
    default: return 'hoard';
  }
}

export function render(ctx) {
  const { format } = ctx;
  const identifier = ctx.params[0];
  const base = `/api/client/servers/${seg(identifier)}`;
  const root = h('div', {}, h('p', { class: 'loading', role: 'status', text: 'Loading history…' }));
  ctx.view.append(root);
  let stopped = false;
  let poll = null;
  let page = 1;
  let filter = '';
  const list = h('div', { 'data-testid': 'activity' });

  function url() {
    const q = new URLSearchParams({ page: String(page), per_page: String(PER_PAGE) });
    if (filter) q.set('filter[event]', filter);
    return `${base}/activity?${q}`;
  }

  async function load() {
    try {
      const s = await api.get(base);
      if (stopped) return;
      const server = s.attributes;
      const perms = new Set((s.meta && s.meta.user_permissions) || []);
      const canManage = (s.meta && s.meta.is_server_owner) || ctx.user.admin;
      ctx.setTitle(`${server.name} · History`);
      const choose = select(FILTERS, { name: 'event', value: filter });
      choose.setAttribute('aria-label', 'Show');
      choose.dataset.testid = 'activity-filter';
      choose.addEventListener('change', () => { filter = choose.value; page = 1; poll.now(); });
      root.replaceChildren(
        serverHeader(server, { identifier, current: 'activity', canManage, perms }),
        h('div', { class: 'history-filter' }, h('label', { class: 'muted', text: 'Show' }, choose)),
        list);
      // Every 2 s while the tab is visible: what happens elsewhere shows up.
      poll = poller(loadPage, 2000);
    } catch (err) {
      if (stopped) return;
      const missing = err instanceof ApiError && err.status === 404;
      root.replaceChildren(h('section', { class: 'empty-state card' },
        h('h1', { text: missing ? 'Server not found' : 'History could not be loaded' }),
        h('p', { class: 'muted', text: err.message }),
        h('a', { href: '/servers', class: 'btn btn-primary', text: 'Back to your servers' })));
      if (!missing) showError(err);
    }
  }

  async function loadPage() {
    try {
      const { data, changed } = await api.poll(url());
      if (stopped || !changed) return;
      draw(data);
    } catch (err) {
      if (stopped) return;
      if (err instanceof ApiError && err.status === 403) {
        list.replaceChildren(h('div', { class: 'empty-state card' },
          h('h2', { text: 'You cannot see this server\'s history' }),
          h('p', { class: 'muted', text: 'It needs the "View activity" permission: ask the server\'s owner.' })));
        poll.stop();
        return;
      }
      showError(err);
    }
  }

  function draw(data) {
    const events = data.data.map((d) => d.attributes);
    const pagination = data.meta && data.meta.pagination;
    if (!events.length) {
      list.replaceChildren(h('div', { class: 'empty-state card' },
        h('h2', { text: filter ? 'Nothing of this kind yet' : 'Nothing has happened yet' }),
        h('p', { class: 'muted', text: 'Backups, restores, deletions, downloads, schedule runs and subuser changes appear here.' })));
      return;
    }
    const rows = events.map((e) => h('tr', { 'data-testid': 'activity-row', 'data-event': e.event },
      h('td', { 'data-label': 'When' }, timeAgo(e.timestamp, format.ago, format.exact)),
      h('td', { 'data-label': 'Who', text: who(e) }),
      h('td', { class: 'cell-primary activity-what', 'data-label': 'What', text: describe(e, format) }),
      h('td', { class: 'muted mono', 'data-label': 'From', text: e.ip || '' })));
    const pages = pagination ? pagination.total_pages : 1;
    const nav = pages > 1 ? h('div', { class: 'pager' },
      button('Newer', { attrs: { disabled: page <= 1 }, onClick: () => { page -= 1; poll.now(); } }),
      h('span', { class: 'muted', text: `Page ${page} of ${pages}` }),
      button('Older', { attrs: { disabled: page >= pages }, onClick: () => { page += 1; poll.now(); } })) : null;
    list.replaceChildren(
      h('div', { class: 'card table-card' },
        h('table', { class: 'table table-responsive activity-table' },
          h('thead', {}, h('tr', {}, h('th', { text: 'When' }), h('th', { text: 'Who' }), h('th', { text: 'What' }), h('th', { text: 'From' }))),
          h('tbody', {}, rows))),
      ...(nav ? [nav] : []));
  }

  load();
  return () => {
    stopped = true;
    if (poll) poll.stop();
  };
}
