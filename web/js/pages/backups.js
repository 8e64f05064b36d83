// A server's backups: the table with live progress, and every action on a backup.

import { h, icon, uid } from '../dom.js';
import { api, seg, ApiError } from '../api.js';
import {
  button, busy, checkbox, confirmDialog, copyButton, field, formDialog, keepFocus,
  notify, poller, rowActions, setUnavailable, explainIfUnavailable, showError, timeAgo, announce,
} from '../ui.js';
import { serverStateBadge, backupStatusBadge, serverTabs, storageSummary } from './common.js';

/** Finished with an archive recorded, whatever became of it since. */
const COMPLETED = ['completed', 'completed_with_warnings', 'missing', 'corrupt'];
/** What a status allows: downloading its archive, and restoring it. */
const DOWNLOADABLE = ['completed', 'completed_with_warnings', 'corrupt'];
const RESTORABLE = ['completed', 'completed_with_warnings'];
const ARCHIVE_TROUBLE = {
  missing: 'The archive is gone from storage or is not the size recorded: it cannot be downloaded or restored.',
  corrupt: 'Verification found that the archive no longer matches its SHA-256: it is not offered for restore.',
};

const PER_PAGE = 25;

const RESTORE_STEPS = {
  queued: 'Getting ready',
  extracting: 'Extracting and verifying the archive',
  evacuating: 'Moving the current files aside',
  installing: 'Putting the restored files in place',
  overlaying: 'Writing the restored files over the current ones',
  cleanup: 'Cleaning up',
  done: 'Finishing',
  failed: 'Rolling back',
};

export function render(ctx) {
  const { format } = ctx;
  const identifier = ctx.params[0];
  const base = `/api/client/servers/${seg(identifier)}`;

  const st = {
    server: null,
    meta: null,
    perms: new Set(),
    backups: [],
    pagination: null,
    backupCount: 0,
    page: Math.max(1, Number(ctx.query.get('page')) || 1),
    expanded: new Set(),
    samples: new Map(),
    statuses: new Map(),
    restore: null,
    rows: new Map(),
    /** The restore this page saw running, whose end is announced. */
    watching: null,
    /** The list URL last loaded: the page of backups shown. */
    listUrl: null,
    /** Names of backups that are not on the page shown (for the last restore's outcome). */
    names: new Map(),
    /** The 403 refusing this user the list (no backup.read): polls then ask for the server alone. */
    listDenied: null,
    stopped: false,
    lastError: null,
  };

  // --- Static page skeleton ------------------------------------------------------------
  const title = h('h1', { class: 'server-title' }, 'Server');
  const stateSlot = h('span', { class: 'server-state' });
  const subline = h('p', { class: 'page-sub muted' });
  const tabs = h('div', {});
  const banner = h('div', { class: 'banner-slot' });
  const storageSlot = h('div', { class: 'storage-slot' });
  const createBtn = button('Create backup', { kind: 'primary', iconName: 'plus', attrs: { 'data-testid': 'create-backup', 'data-focus-key': 'create' } });
  const createReasonId = uid('reason');
  const createReason = h('p', { id: createReasonId, class: 'create-reason muted', 'data-testid': 'create-reason', hidden: true });
  const tbody = h('tbody', {});
  const table = h('table', { class: 'table table-responsive backups-table', 'data-testid': 'backups-table' },
    h('caption', { class: 'visually-hidden', text: 'Backups, newest first' }),
    h('thead', {}, h('tr', {},
      h('th', { scope: 'col', text: 'Name' }),
      h('th', { scope: 'col', text: 'Status' }),
      h('th', { scope: 'col', class: 'num', text: 'Size' }),
      h('th', { scope: 'col', text: 'SHA-256' }),
      h('th', { scope: 'col', text: 'Created' }),
      h('th', { scope: 'col', class: 'actions-col' }, h('span', { class: 'visually-hidden', text: 'Actions' })))),
    tbody);
  const empty = h('div', { class: 'empty-state', hidden: true, 'data-testid': 'backups-empty' },
    icon('archive', 'empty-icon'),
    h('h2', { text: 'No backups yet' }),
    h('p', { class: 'muted', text: 'Backups you create appear here, newest first.' }));
  const tableCard = h('div', { class: 'card table-card', hidden: true }, table, empty);
  const footer = h('div', { class: 'table-foot' });
  const content = h('div', { class: 'backups-page', hidden: true },
    h('div', { class: 'page-head' },
      h('div', { class: 'page-head-text' },
        h('nav', { class: 'breadcrumb', 'aria-label': 'Breadcrumb' }, h('a', { href: '/servers' }, icon('arrowLeft'), 'Servers')),
        h('div', { class: 'title-row' }, title, stateSlot),
        subline),
      h('div', { class: 'page-actions' }, createBtn)),
    createReason,
    tabs,
    banner,
    storageSlot,
    tableCard,
    footer);
  const loadingEl = h('p', { class: 'loading', role: 'status', text: 'Loading backups…' });
  ctx.view.append(loadingEl, content);

  createBtn.setAttribute('aria-describedby', createReasonId);
  createBtn.addEventListener('click', () => {
    if (!explainIfUnavailable(createBtn)) openCreate();
  });

  // --- Loading and polling -------------------------------------------------------------
  /**
   * Brings the page up to date with one request: the page of backups shown, with the server
   * in `meta.server` (`?include=server`). hoard's tag follows one revision of everything it
   * stores, so an idle poll is that one request answered 304, and a change elsewhere shows
   * within a poll period plus that one request.
   *
   * Without backup.read the list is refused (403): the page then asks for the server alone,
   * as it did before, and goes back to the list once the server says backup.read is given.
   */
  async function loadOnce() {
    const listUrl = `${base}/backups?page=${st.page}&per_page=${PER_PAGE}&include=server`;
    try {
      let server = null;
      let list = null;
      if (st.listDenied) {
        server = await api.poll(base);
        if ((server.data.meta?.user_permissions || []).includes('backup.read')) st.listDenied = false;
        else if (!server.changed && st.server) return;
        else throw st.listDenied;
      }
      if (!st.listDenied) {
        let answer;
        try {
          answer = await api.poll(listUrl);
        } catch (err) {
          if (!(err instanceof ApiError && err.status === 403)) throw err;
          // May see the server but not its backups: the server alone says which (a 404 or
          // a failure there is the one to show), then the refusal is reported as before.
          st.listDenied = err;
          await api.poll(base);
          throw err;
        }
        if (!answer.changed && st.server && st.listUrl === listUrl) return;
        list = answer.data;
        server = list.meta.server;
      }
      if (st.stopped || !ctx.isCurrent()) return;
      if (list.meta.pagination.total_pages < st.page && st.page > 1) {
        st.page = list.meta.pagination.total_pages;
        history.replaceState(null, '', st.page > 1 ? `${location.pathname}?page=${st.page}` : location.pathname);
        return loadOnce();
      }
      st.lastError = null;
      st.listUrl = listUrl;
      apply(server, list);
      draw();
    } catch (err) {
      if (st.stopped) return;
      st.listUrl = null;
      if (!st.server) {
        loadingEl.remove();
        const status = err instanceof ApiError ? err.status : 0;
        const notFound = status === 404 || status === 403;
        const heading = { 404: 'Server not found', 403: 'You may not see this server\'s backups' }[status] || 'This server could not be loaded';
        ctx.view.append(h('section', { class: 'empty-state card' },
          h('h1', { text: heading }),
          h('p', { class: 'muted', text: err.message }),
          h('a', { href: '/servers', class: 'btn btn-primary', text: 'Back to your servers' })));
        if (!notFound) showError(err);
        stop();
        return;
      }
      if (st.lastError !== err.message) showError(err);
      st.lastError = err.message;
    }
    if (st.server && st.server.last_restore) await nameLastRestored();
  }

  /** Finds the name of the last restored backup when it is not on the page shown. */
  async function nameLastRestored() {
    const uuid = st.server.last_restore.backup_uuid;
    if (st.backups.some((b) => b.uuid === uuid) || st.names.has(uuid)) return;
    // With a single page, a backup not on it is deleted: there is nothing to ask.
    if (st.pagination.total_pages <= 1) return;
    try {
      st.names.set(uuid, (await api.get(`${base}/backups/${seg(uuid)}`)).attributes.name);
    } catch (err) {
      // Deleted since, or not to be seen: the outcome then names no backup.
      st.names.set(uuid, null);
    }
    if (!st.stopped) drawBanner();
  }

  function apply(server, list) {
    st.server = server.attributes;
    st.meta = server.meta || {};
    st.perms = new Set(st.meta.user_permissions || []);
    st.restore = server.attributes.restore || null;
    st.pagination = list.meta.pagination;
    st.backupCount = list.meta.backup_count;
    const backups = list.data.map((d) => d.attributes);
    const now = Date.now();
    for (const b of backups) {
      const before = st.statuses.get(b.uuid);
      if (before === 'creating' && b.status === 'completed') {
        notify(`Backup “${b.name}” completed (${format.bytes(b.bytes)}).`, { type: 'success' });
      } else if (before === 'creating' && b.status === 'completed_with_warnings') {
        notify(`Backup “${b.name}” completed without the files it could not read: see its warnings.`, { type: 'warning' });
      } else if (before === 'creating' && b.status === 'failed') {
        notify(b.error || 'The backup failed.', { type: 'error', title: `Backup “${b.name}” failed` });
      } else if (before && before !== b.status && ARCHIVE_TROUBLE[b.status]) {
        notify(ARCHIVE_TROUBLE[b.status], { type: 'error', title: `Backup “${b.name}” is ${b.status}` });
      }
      st.statuses.set(b.uuid, b.status);
      if (b.status === 'creating' && b.progress) {
        const prev = st.samples.get(b.uuid);
        const sample = { bytes: b.progress.bytes_processed, t: now, rate: prev ? prev.rate : null };
        if (prev && now - prev.t > 250 && sample.bytes >= prev.bytes) {
          const inst = ((sample.bytes - prev.bytes) * 1000) / (now - prev.t);
          sample.rate = prev.rate ? prev.rate * 0.5 + inst * 0.5 : inst;
        } else if (!prev && b.progress.eta_seconds > 0) {
          sample.rate = (b.progress.bytes_total - b.progress.bytes_processed) / b.progress.eta_seconds;
        }
        if (!prev || now - prev.t > 250) st.samples.set(b.uuid, sample);
      } else {
        st.samples.delete(b.uuid);
      }
    }
    st.backups = backups;
  }

  function backupName(uuid) {
    const b = st.backups.find((x) => x.uuid === uuid);
    const name = b ? b.name : st.names.get(uuid);
    return name ? `“${name}”` : 'a backup';
  }

  // --- Drawing -------------------------------------------------------------------------
  function draw() {
    loadingEl.remove();
    content.hidden = false;
    tableCard.hidden = false;
    const s = st.server;
    ctx.setTitle(`${s.name} · Backups`);
    if (title.textContent !== s.name) title.textContent = s.name;
    stateSlot.replaceChildren(serverStateBadge(s) || '');
    // replaceChildren() would print a null as "null": only what is there is passed.
    subline.replaceChildren(...[
      h('span', { class: 'mono', text: s.identifier }),
      s.description ? h('span', { text: ` · ${s.description}` }) : null,
      st.meta.is_server_owner ? h('span', { text: ' · You own this server' }) : null,
    ].filter(Boolean));
    // Drawn once: polling redraws the rows, not the tabs.
    if (!tabs.firstChild) {
      const canManage = st.meta.is_server_owner || ctx.user.admin;
      const nav = serverTabs({ identifier, current: 'backups', canManage, perms: st.perms });
      if (nav) tabs.append(nav);
    }
    drawCreate();
    drawBanner();
    storageSlot.replaceChildren(...(s.storage ? [h('div', { class: 'storage-line' }, h('span', { class: 'storage-title' }, icon('database'), 'Storage'), storageSummary(s.storage, format))] : []));
    drawRows();
    drawFooter();
  }

  function createBlocker() {
    const s = st.server;
    const limit = s.feature_limits ? s.feature_limits.backups : 0;
    if (limit === 0) return 'Backups are disabled for this server.';
    if (s.status === 'restoring_backup' || st.restore) return 'A restore is in progress: wait for it to finish.';
    if (s.status === 'installing') return 'The server is installing: backups can start once it is done.';
    if (frozen()) return 'The server is suspended, so no backups can be created.';
    if (st.backupCount >= limit) return `This server has reached its limit of ${format.plural(limit, 'backup')}. Delete one to make room.`;
    if (st.backups.some((b) => b.status === 'creating')) return 'A backup is being created: wait for it to finish.';
    return null;
  }

  /** A suspended server lets only administrators change, restore or download its backups. */
  function frozen() {
    return st.server.status === 'suspended' && !ctx.user.admin;
  }

  function drawCreate() {
    const allowed = st.perms.has('backup.create');
    createBtn.hidden = !allowed;
    const reason = allowed ? createBlocker() : null;
    setUnavailable(createBtn, reason);
    if (!reason) {
      createBtn.removeAttribute('title');
      delete createBtn.dataset.tip;
    }
    createReason.hidden = !reason;
    createReason.textContent = reason || '';
  }

  /** Where the server is marked restoring: the running restore, else the last outcome. */
  function drawBanner() {
    const r = st.restore;
    if (!r) {
      drawOutcome();
      return;
    }
    st.watching = r.uuid;
    const hooks = st.server.hooks || {};
    const step = r.step === 'queued' && hooks.pre_restore ? 'Running the pre-restore hook' : (RESTORE_STEPS[r.step] || r.step);
    const pct = Math.floor(r.percent || 0);
    const bits = [`${pct}%`];
    if (r.bytes_total) bits.push(`${format.bytes(r.bytes_processed)} of ${format.bytes(r.bytes_total)}`);
    const eta = format.duration(r.eta_seconds);
    if (eta && r.step === 'extracting') bits.push(`about ${eta} left`);
    let box = banner.querySelector('[data-testid="restore-banner"]');
    if (!box) {
      box = h('section', { class: 'banner banner-info', role: 'status', 'aria-live': 'polite', 'data-testid': 'restore-banner' },
        h('div', { class: 'banner-icon' }, icon('restore')),
        h('div', { class: 'banner-body' },
          h('p', { class: 'banner-title' }),
          h('p', { class: 'banner-step' }),
          h('progress', { max: 100, class: 'progress', 'aria-label': 'Restore progress' }),
          h('p', { class: 'banner-note', 'data-testid': 'restore-banner-note' })));
      banner.replaceChildren(box);
    }
    box.querySelector('.banner-title').textContent = `Restoring ${backupName(r.backup_uuid)}${r.truncate ? ' (deleting current files first)' : ''}`;
    box.querySelector('.banner-note').textContent = restoreNote(hooks);
    box.classList.toggle('is-unguarded', !hooks.pre_restore);
    const bar = box.querySelector('progress');
    if (r.step === 'queued' || !r.bytes_total) {
      box.querySelector('.banner-step').textContent = step;
      bar.removeAttribute('value');
    } else {
      box.querySelector('.banner-step').textContent = `${step} · ${bits.join(' · ')}`;
      bar.value = r.percent || 0;
    }
  }

  /** What the server goes through during a restore: hoard itself stops and starts nothing. */
  function restoreNote(hooks) {
    const before = hooks.pre_restore
      ? 'The pre-restore hook runs before any file is touched.'
      : 'No pre-restore hook is set, so nothing stopped the game: if it is running, it keeps running while its files are replaced.';
    const after = hooks.post_restore
      ? 'The post-restore hook runs once the files are in place.'
      : 'Nothing is started afterwards.';
    return `${before} ${after} New backups wait until the restore is done; if anything fails, the current files are kept.`;
  }

  /** The outcome of the last restore, shown until the next one starts. */
  function drawOutcome() {
    const last = st.server.last_restore;
    if (!last || !last.finished_at) {
      banner.replaceChildren();
      return;
    }
    const name = backupName(last.backup_uuid);
    const when = timeAgo(last.finished_at, format.ago, format.exact);
    let kind;
    let title;
    let detail = null;
    if (!last.successful) {
      kind = 'danger';
      title = ['The restore of ', name, ' failed ', when, ': the server\'s files were left as they were.'];
      detail = [h('p', { 'data-testid': 'last-restore-error', text: last.error || 'No reason was recorded.' }),
        last.error_detail ? h('pre', { class: 'details-output', text: last.error_detail }) : null];
    } else if (last.warning) {
      kind = 'warning';
      title = [name, ' was restored ', when, ', but ', last.warning, '.'];
      detail = h('p', { text: 'Check the server\'s files before starting it again.' });
    } else {
      kind = 'success';
      title = [name, ' was restored ', when, '.'];
    }
    const sig = JSON.stringify([last, name]);
    const shown = banner.querySelector('[data-testid="last-restore"]');
    if (shown && shown.dataset.sig === sig) return;
    const box = h('section', {
      class: ['outcome', `outcome-${kind}`],
      'data-testid': 'last-restore',
      'data-outcome': kind,
      'data-uuid': last.uuid,
      'data-sig': sig,
    },
    icon(kind === 'success' ? 'check' : kind === 'warning' ? 'warning' : 'alert', 'outcome-icon'),
    h('div', { class: 'outcome-body' },
      h('p', { class: 'outcome-label', text: 'Last restore' }),
      h('p', { class: 'outcome-title' }, ...title),
      detail));
    banner.replaceChildren(box);
    // Said aloud only when it ends under the user's eyes, not for an old outcome.
    if (st.watching === last.uuid) announce(`Restore finished. ${box.querySelector('.outcome-title').textContent}`);
    st.watching = null;
  }

  function drawFooter() {
    const s = st.server;
    const limit = s.feature_limits ? s.feature_limits.backups : 0;
    const p = st.pagination;
    const failed = st.backups.filter((b) => b.status === 'failed').length;
    const countText = limit === 0
      ? `${format.plural(st.backupCount, 'backup')} · backups are disabled for this server`
      : `${st.backupCount} of ${format.plural(limit, 'backup')}`;
    const parts = [h('p', { class: 'muted', 'data-testid': 'backup-count', text: countText }),
      failed ? h('p', { class: 'muted small', text: 'Failed backups do not count against the limit.' }) : null];
    if (p && p.total_pages > 1) {
      const prev = button('Previous', { kind: 'secondary', attrs: { class: 'btn-small', disabled: p.current_page <= 1 } });
      const next = button('Next', { kind: 'secondary', attrs: { class: 'btn-small', disabled: p.current_page >= p.total_pages } });
      prev.addEventListener('click', () => goPage(p.current_page - 1));
      next.addEventListener('click', () => goPage(p.current_page + 1));
      parts.push(h('nav', { class: 'pager', 'aria-label': 'Pages' }, prev, h('span', { class: 'muted', text: `Page ${p.current_page} of ${p.total_pages}` }), next));
    }
    footer.replaceChildren(h('div', { class: 'table-foot-text' }, parts[0], parts[1]), parts[2] || '');
  }

  function goPage(n) {
    st.page = n;
    history.replaceState(null, '', n > 1 ? `${location.pathname}?page=${n}` : location.pathname);
    poll.now();
  }

  function drawRows() {
    empty.hidden = st.backups.length > 0;
    table.hidden = st.backups.length === 0;
    keepFocus(tbody, () => {
      const nodes = [];
      const seen = new Set();
      for (const b of st.backups) {
        seen.add(b.uuid);
        const sig = signature(b);
        let entry = st.rows.get(b.uuid);
        if (!entry || entry.sig !== sig) {
          entry = buildRow(b, sig);
          st.rows.set(b.uuid, entry);
        }
        updateLive(entry, b);
        nodes.push(entry.row, entry.details);
      }
      for (const key of [...st.rows.keys()]) if (!seen.has(key)) st.rows.delete(key);
      const current = [...tbody.children];
      if (current.length !== nodes.length || current.some((n, i) => n !== nodes[i])) tbody.replaceChildren(...nodes);
    });
  }

  function signature(b) {
    return JSON.stringify([b.name, b.status, b.is_locked, b.sha256_hash, b.bytes, b.error, b.warnings, b.completed_at, b.verified_at, b.verification,
      st.expanded.has(b.uuid), [...st.perms], Boolean(st.restore), st.server.status,
      st.backups.some((x) => x.status === 'creating'), st.restore && st.restore.backup_uuid]);
  }

  function buildRow(b, sig) {
    const detailsId = `details-${b.uuid}`;
    const expanded = st.expanded.has(b.uuid);
    const toggle = h('button', {
      type: 'button',
      class: 'row-toggle',
      'aria-expanded': String(expanded),
      'aria-controls': detailsId,
      'data-focus-key': `toggle:${b.uuid}`,
      title: 'Show details',
      'data-testid': 'backup-name',
    }, icon('chevron', 'chev'), h('span', { class: 'backup-name', text: b.name }));
    toggle.addEventListener('click', () => {
      if (st.expanded.has(b.uuid)) st.expanded.delete(b.uuid);
      else st.expanded.add(b.uuid);
      drawRows();
    });
    const nameCell = h('td', { class: 'cell-primary', 'data-label': 'Name' },
      h('div', { class: 'name-wrap' }, toggle,
        b.is_locked ? h('span', { class: 'lock-mark', role: 'img', 'aria-label': 'Locked', title: 'Locked: it cannot be deleted until it is unlocked', 'data-testid': 'locked-icon' }, icon('lock')) : null,
        b.is_scheduled ? h('span', { class: 'badge badge-neutral badge-small', title: 'Made by a schedule', 'data-testid': 'scheduled-mark' }, icon('clock'), 'Scheduled') : null));

    // Status
    const statusCell = h('td', { 'data-label': 'Status', 'data-testid': 'backup-status', 'data-status': b.status });
    const live = {};
    if (b.status === 'creating') {
      live.progress = h('progress', { class: 'progress', max: 100, 'aria-label': `Progress of ${b.name}`, 'data-testid': 'backup-progress' });
      live.text = h('span', { class: 'progress-text', 'data-testid': 'backup-progress-text' });
      statusCell.append(h('div', { class: 'status-line' }, backupStatusBadge('creating')), h('div', { class: 'progress-wrap' }, live.progress, live.text));
    } else if (b.status === 'failed') {
      statusCell.append(h('div', { class: 'status-line' }, backupStatusBadge('failed', { title: b.error || 'The backup failed.' })));
      if (b.error) statusCell.append(h('p', { class: 'status-error', title: b.error, text: b.error }));
    } else if (ARCHIVE_TROUBLE[b.status]) {
      statusCell.append(h('div', { class: 'status-line' }, backupStatusBadge(b.status)),
        h('p', { class: 'status-error', text: ARCHIVE_TROUBLE[b.status] }));
    } else {
      statusCell.append(h('div', { class: 'status-line' }, backupStatusBadge(b.status)));
    }
    if (b.verification) {
      statusCell.append(h('p', { class: 'muted small', 'data-testid': 'backup-verifying', text: `Verifying… ${Math.floor(b.verification.percent)}%` }));
    }
    if (b.warnings && b.warnings.length) {
      const label = `${format.plural(b.warnings.length, 'warning')}: ${b.warnings.join('; ')}`;
      const marker = h('button', {
        type: 'button',
        class: 'warn-marker',
        'aria-label': label,
        title: b.warnings.join('\n'),
        'aria-controls': detailsId,
        'aria-expanded': String(expanded),
        'data-testid': 'warnings-marker',
        'data-focus-key': `warn:${b.uuid}`,
      }, icon('warning'), String(b.warnings.length));
      marker.addEventListener('click', () => toggle.click());
      statusCell.querySelector('.status-line').append(marker);
    }

    // Size, hash, created
    live.size = h('span', {});
    const sizeCell = h('td', { class: 'num', 'data-label': 'Size', 'data-testid': 'backup-size' }, live.size);
    const shaCell = h('td', { 'data-label': 'SHA-256' });
    if (b.sha256_hash) {
      shaCell.append(h('span', { class: 'sha' },
        h('code', { class: 'mono', title: b.sha256_hash, 'data-testid': 'backup-sha', 'data-sha': b.sha256_hash, text: b.sha256_hash.slice(0, 12) }),
        copyButton(b.sha256_hash, 'Copy SHA-256')));
    } else {
      shaCell.append(h('span', { class: 'muted', text: '—' }));
    }
    const createdCell = h('td', { 'data-label': 'Created' }, timeAgo(b.created_at, format.ago, format.exact));

    const row = h('tr', {
      class: ['backup-row', `is-${b.status}`, b.is_locked && 'is-locked', expanded && 'is-expanded'],
      'data-testid': 'backup-row',
      'data-uuid': b.uuid,
      'data-name': b.name,
    }, nameCell, statusCell, sizeCell, shaCell, createdCell, h('td', { class: 'actions-cell', 'data-label': 'Actions' }, actions(b)));

    const details = h('tr', { class: 'details-row', id: detailsId, hidden: !expanded, 'data-testid': 'backup-details' },
      h('td', { colSpan: 6 }, expanded ? detailsPanel(b) : null));
    return { row, details, live, sig };
  }

  function updateLive(entry, b) {
    const { live } = entry;
    if (b.status === 'creating' && live.progress) {
      const p = b.progress || {};
      if (!p.bytes_total) {
        live.progress.removeAttribute('value');
        live.text.textContent = 'Preparing…';
        live.size.textContent = '—';
        return;
      }
      live.progress.value = p.percent || 0;
      const sample = st.samples.get(b.uuid);
      const bits = [`${Math.floor(p.percent || 0)}%`];
      const r = sample ? format.rate(sample.rate) : null;
      if (r) bits.push(r);
      const eta = format.duration(p.eta_seconds);
      if (eta !== null) bits.push(`${eta} left`);
      live.text.textContent = bits.join(' · ');
      live.size.replaceChildren(format.bytes(p.bytes_processed), h('span', { class: 'size-total muted', text: `of ${format.bytes(p.bytes_total)}` }));
    } else if (COMPLETED.includes(b.status)) {
      live.size.textContent = format.bytes(b.bytes);
    } else {
      live.size.textContent = '—';
      live.size.className = 'muted';
    }
  }

  function detailsPanel(b) {
    const item = (label, ...value) => [h('dt', { text: label }), h('dd', {}, ...value)];
    const took = b.completed_at ? (Date.parse(b.completed_at) - Date.parse(b.created_at)) / 1000 : null;
    return h('div', { class: 'details' },
      b.status === 'failed'
        ? h('div', { class: 'details-error', role: 'note' }, icon('alert'), h('div', {}, h('strong', { text: 'Why it failed' }), h('p', { 'data-testid': 'backup-error', text: b.error || 'No reason was recorded.' }),
          b.error_detail ? h('pre', { class: 'details-output', 'data-testid': 'backup-error-detail', text: b.error_detail }) : null))
        : null,
      b.warnings && b.warnings.length
        ? h('div', { class: 'details-warnings' }, icon('warning'),
          h('div', {}, h('strong', { text: format.plural(b.warnings.length, 'warning') }),
            h('ul', {}, b.warnings.map((w) => h('li', { text: w })))))
        : null,
      h('dl', { class: 'details-grid' },
        item('UUID', h('code', { class: 'mono wrap', text: b.uuid })),
        item('SHA-256', b.sha256_hash
          ? h('span', { class: 'sha-full' }, h('code', { class: 'mono wrap', text: b.sha256_hash }), copyButton(b.sha256_hash, 'Copy SHA-256'))
          : h('span', { class: 'muted', text: b.status === 'creating' ? 'Computed when the backup completes' : '—' })),
        item('Size', COMPLETED.includes(b.status) ? `${format.bytes(b.bytes)} (${b.bytes.toLocaleString('en')} bytes)` : '—'),
        item('Last verified', b.verified_at ? format.exact(b.verified_at) : '—'),
        item('Compression', b.compression || '—'),
        item('Created', format.exact(b.created_at)),
        item('Finished', b.completed_at ? `${format.exact(b.completed_at)}${took !== null ? ` (took ${format.duration(took)})` : ''}` : '—'),
        item('Locked', b.is_locked ? 'Yes: it cannot be deleted until it is unlocked' : 'No'),
        item('Ignored patterns', b.ignored_files && b.ignored_files.length
          ? h('ul', { class: 'pattern-list' }, b.ignored_files.map((p) => h('li', {}, h('code', { text: p }))))
          : h('span', { class: 'muted', text: 'None (a .pteroignore file in the server root still applies)' }))));
  }

  // --- Row actions ---------------------------------------------------------------------
  function actions(b) {
    const items = [];
    const suspended = frozen() ? 'The server is suspended.' : null;
    if (b.status === 'failed' && st.perms.has('backup.create')) {
      items.push({ key: 'retry', label: 'Retry', iconName: 'retry', reason: createBlocker(), run: (btn) => retry(b, btn) });
    }
    if (DOWNLOADABLE.includes(b.status) && st.perms.has('backup.download')) {
      items.push({ key: 'download', label: 'Download', iconName: 'download', reason: suspended, run: (btn) => download(b, btn) });
    }
    if (COMPLETED.includes(b.status) && st.perms.has('backup.read')) {
      items.push({ key: 'verify', label: 'Verify', iconName: 'check', reason: b.verification ? 'This backup is being verified.' : null, run: (btn) => verify(b, btn) });
    }
    if (RESTORABLE.includes(b.status) && st.perms.has('backup.restore')) {
      const s = st.server;
      let reason = null;
      if (st.restore || s.status === 'restoring_backup') reason = 'A restore is already running.';
      else if (s.status === 'installing') reason = 'The server is installing.';
      else if (suspended) reason = suspended;
      else if (st.backups.some((x) => x.status === 'creating')) reason = 'Wait for the running backup to finish.';
      items.push({ key: 'restore', label: 'Restore', iconName: 'restore', reason, run: () => openRestore(b) });
    }
    if (b.status !== 'creating' && st.perms.has('backup.delete')) {
      if (COMPLETED.includes(b.status)) {
        items.push({ key: 'lock', label: b.is_locked ? 'Unlock' : 'Lock', iconName: b.is_locked ? 'unlock' : 'lock', reason: suspended, run: (btn) => toggleLock(b, btn) });
      }
      let reason = null;
      if (suspended) reason = suspended;
      else if (b.is_locked && COMPLETED.includes(b.status)) reason = 'Locked backups cannot be deleted: unlock it first.';
      else if (st.restore && st.restore.backup_uuid === b.uuid) reason = 'This backup is being restored.';
      items.push({ key: 'delete', label: 'Delete', iconName: 'trash', kind: 'ghost-danger', reason, run: () => openDelete(b) });
    }
    if (!items.length) return h('span', { class: 'muted no-actions', text: b.status === 'creating' ? '' : '—' });
    return rowActions(items, b.name, b.uuid);
  }

  /** A failed backup again, with the same name and ignored files, as a new backup. */
  async function retry(b, btn) {
    const body = { name: b.name };
    if (b.ignored_files && b.ignored_files.length) body.ignored = b.ignored_files.join('\n');
    try {
      const created = (await busy(btn, () => api.post(`${base}/backups`, body))).attributes;
      st.statuses.set(created.uuid, created.status);
      notify(`Backup “${created.name}” started again.`, { type: 'success' });
      if (st.page !== 1) st.page = 1;
      await poll.now();
    } catch (err) {
      showError(err);
    }
  }

  async function download(b, btn) {
    try {
      const link = await busy(btn, () => api.get(`${base}/backups/${seg(b.uuid)}/download`));
      const a = h('a', { href: link.attributes.url, download: '', class: 'visually-hidden', tabIndex: -1 });
      document.body.append(a);
      a.click();
      a.remove();
      announce(`Downloading ${b.name}.`);
    } catch (err) {
      showError(err);
    }
  }

  async function verify(b, btn) {
    try {
      await busy(btn, () => api.post(`${base}/backups/${seg(b.uuid)}/verify`));
      announce(`Verifying ${b.name}.`);
      await poll.now();
    } catch (err) {
      showError(err);
    }
  }

  async function toggleLock(b, btn) {
    if (b.is_locked) {
      confirmDialog({
        title: `Unlock “${b.name}”?`,
        message: 'Once unlocked, this backup can be deleted, by you or anyone else allowed to delete backups of this server.',
        confirmLabel: 'Unlock backup',
        testid: 'unlock-dialog',
        onConfirm: async () => {
          await api.post(`${base}/backups/${seg(b.uuid)}/lock`);
          notify(`“${b.name}” is unlocked.`, { type: 'success' });
          await poll.now();
        },
      });
      return;
    }
    try {
      await busy(btn, () => api.post(`${base}/backups/${seg(b.uuid)}/lock`));
      notify(`“${b.name}” is locked: it cannot be deleted until it is unlocked.`, { type: 'success' });
      await poll.now();
    } catch (err) {
      showError(err);
    }
  }

  function openDelete(b) {
    confirmDialog({
      title: `Delete “${b.name}”?`,
      message: h('div', { class: 'dialog-intro' },
        h('p', {}, 'The backup ', h('strong', { text: b.name }),
          COMPLETED.includes(b.status) ? ` (${format.bytes(b.bytes)}, created ${format.ago(b.created_at)})` : '',
          ' will be deleted for good. This cannot be undone.')),
      confirmLabel: 'Delete backup',
      danger: true,
      testid: 'delete-dialog',
      onConfirm: async () => {
        await api.del(`${base}/backups/${seg(b.uuid)}`);
        st.expanded.delete(b.uuid);
        notify(`Backup “${b.name}” deleted.`, { type: 'success' });
        await poll.now();
      },
    });
  }

  function openRestore(b) {
    const truncate = checkbox('Delete all files before restoring', {
      name: 'truncate',
      checked: true,
      hint: 'Recommended: the server ends up as it was when the backup was taken, apart from what the backup left out.',
    });
    const summary = h('ul', { class: 'summary-list', 'data-testid': 'restore-summary' });
    // A truncating restore leaves in place whatever the backup's own exclusions left out.
    const patterns = b.ignored_files || [];
    const kept = h('div', { 'data-testid': 'restore-kept' },
      h('h3', { class: 'summary-title', text: 'Kept as they are' }),
      h('div', { class: 'summary-list kept-list' },
        patterns.length
          ? [h('p', { text: 'Files matching the patterns this backup was made without:' }),
            h('ul', { class: 'pattern-list' }, patterns.map((p) => h('li', {}, h('code', { text: p }))))]
          : null,
        h('p', {}, 'Files matched by the ', h('code', { text: '.pteroignore' }), ' rules the backup was made with (the file inside the backup).'),
        b.status === 'completed_with_warnings'
          ? h('p', { 'data-testid': 'restore-kept-unreadable', text: 'Files this backup could not read (named in its warnings): the server\'s current copies are kept, not the backup\'s incomplete ones.' })
          : null));
    const hooks = st.server.hooks || {};
    const drawSummary = () => {
      const steps = [
        hooks.pre_restore
          ? 'The server\'s pre-restore hook runs first; if it fails, nothing is restored.'
          : 'Nothing is stopped first: this server has no pre-restore hook.',
        'The server is marked as restoring until the restore finishes; no backups can start meanwhile.',
        `The archive (${format.bytes(b.bytes)}) is extracted and its SHA-256 checked.`,
        truncate.control.checked
          ? 'Every file now in the server directory is deleted, except what the backup left out (below), then the backup\'s files are put in their place.'
          : 'The backup\'s files overwrite the current ones; files that are not in the backup are kept.',
        'If any step fails, the server\'s current files are kept as they are.',
        hooks.post_restore
          ? 'Then the post-restore hook runs, whether the restore succeeded or not.'
          : 'Nothing is started afterwards: this server has no post-restore hook.',
      ];
      summary.replaceChildren(...steps.map((t) => h('li', { text: t })));
      kept.hidden = !truncate.control.checked;
    };
    truncate.control.addEventListener('change', drawSummary);
    drawSummary();
    formDialog({
      title: `Restore “${b.name}”?`,
      intro: h('div', { class: 'dialog-intro' },
        h('p', {}, 'The server\'s files will be replaced with the contents of this backup, taken ',
          h('time', { datetime: b.created_at, title: format.exact(b.created_at), text: format.ago(b.created_at) }), '.'),
        // hoard stops nothing by itself: only a pre-restore hook can.
        hooks.pre_restore
          ? h('p', { class: 'callout callout-info', 'data-testid': 'restore-stop' }, icon('info'),
            h('span', { text: 'This server\'s pre-restore hook runs first, before any file is touched (it is there to stop the game).' }))
          : h('p', { class: 'callout callout-warning', 'data-testid': 'restore-stop' }, icon('warning'),
            h('span', {}, h('strong', { text: 'The game keeps running. ' }),
              'This server has no pre-restore hook, and hoard stops nothing by itself: stop the game server before restoring, or it may write over the restored files or crash while they are replaced.'))),
      body: [truncate, h('h3', { class: 'summary-title', text: 'What will happen' }), summary, kept],
      submitLabel: 'Restore backup',
      submitKind: 'danger',
      testid: 'restore-dialog',
      onSubmit: async () => {
        await api.post(`${base}/backups/${seg(b.uuid)}/restore`, { truncate: truncate.control.checked });
        notify(`Restore of “${b.name}” started.`, { type: 'success' });
        await poll.now();
      },
    });
  }

  function openCreate() {
    const name = field('Name', { name: 'name', type: 'text', maxLength: 191, placeholder: format.defaultBackupName(), autocomplete: 'off' },
      { optional: true, hint: 'Leave it empty to use the name shown, with the time in UTC.' });
    const clock = setInterval(() => { name.control.placeholder = format.defaultBackupName(); }, 1000);
    const ignored = field('Ignored files', h('textarea', { name: 'ignored', rows: 4, spellcheck: false, placeholder: 'logs/\n*.tmp\ncache/**' }),
      { optional: true, hint: 'One pattern per line, like .gitignore. A .pteroignore file in the server\'s root directory also applies.' });
    const canLock = st.perms.has('backup.delete');
    const locked = checkbox('Locked', {
      name: 'is_locked',
      isSwitch: true,
      disabled: !canLock,
      hint: canLock
        ? 'A locked backup cannot be deleted until someone unlocks it.'
        : 'Locking needs the permission to delete backups, which you do not have.',
    });
    formDialog({
      title: 'Create backup',
      intro: 'hoard archives the server\'s directory in the background; you can follow its progress in the table.',
      body: [name, ignored, locked],
      submitLabel: 'Start backup',
      testid: 'create-dialog',
      onClose: () => clearInterval(clock),
      onSubmit: async () => {
        const body = { is_locked: locked.control.checked };
        const n = name.control.value.trim();
        if (n) body.name = n;
        const ig = ignored.control.value.trim();
        if (ig) body.ignored = ig;
        const created = await api.post(`${base}/backups`, body);
        const b = created.attributes;
        st.statuses.set(b.uuid, b.status);
        notify(`Backup “${b.name}” started.`, { type: 'success' });
        if (st.page !== 1) st.page = 1;
        await poll.now();
      },
    });
  }

  // Every 2 s while the tab is visible: backups started by schedules, the CLI or another
  // browser, their progress and a restore all show up without a reload.
  const poll = poller(loadOnce, 2000);
  function stop() {
    st.stopped = true;
    poll.stop();
  }
  return stop;
}
