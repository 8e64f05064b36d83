// A server's schedules (when it is backed up automatically, what is left out, how the last
// run went) and its retention policy (which backups hoard deletes after a successful one).

import { h, icon, uid } from '../dom.js';
import { api, seg, ApiError } from '../api.js';
import {
  announce, badge, busy, button, checkbox, clearFieldErrors, confirmDialog, explainIfUnavailable,
  field, formDialog, keepFocus, notify, rowActions, setUnavailable, showError, showFieldErrors, showFormError, timeAgo,
} from '../ui.js';
import { serverHeader, untilTime } from './common.js';

/** How often the list is reloaded while a run is going on. */
const POLL_MS = 1000;
/** A run asked for with "Run now" is watched this long for its outcome. */
const WATCH_MS = 120000;
/** Typing pauses this long before the next runs are asked for. */
const PREVIEW_DELAY_MS = 300;

const CRON_FIELDS = ['minute', 'hour', 'day_of_month', 'month', 'day_of_week'];
const CRON_NAMES = { minute: 'minute', hour: 'hour', day_of_month: 'day of month', month: 'month', day_of_week: 'day of week' };
const WEEKDAYS = [['1', 'Monday'], ['2', 'Tuesday'], ['3', 'Wednesday'], ['4', 'Thursday'], ['5', 'Friday'], ['6', 'Saturday'], ['0', 'Sunday']];

const OUTCOMES = {
  completed: ['Completed', 'success', 'check'],
  failed: ['Failed', 'danger', 'alert'],
  skipped: ['Skipped', 'neutral', 'info'],
  missed: ['Missed', 'warning', 'warning'],
};

const RULES = [
  ['keep_last', 'Last', 'The newest backups, whatever their age.'],
  ['keep_hourly', 'Hourly', 'The newest backup of each of that many hours.'],
  ['keep_daily', 'Daily', 'The newest of each of that many days.'],
  ['keep_weekly', 'Weekly', 'The newest of each of that many weeks.'],
  ['keep_monthly', 'Monthly', 'The newest of each of that many months.'],
  ['keep_yearly', 'Yearly', 'The newest of each of that many years.'],
];

const pageNotices = () => document.getElementById('notices');
const browserZone = Intl.DateTimeFormat().resolvedOptions().timeZone;
/** A next run in the browser's time zone: "Thu 3 Dec 2026, 04:00". */
const runFormat = new Intl.DateTimeFormat('en-GB', {
  weekday: 'short', day: 'numeric', month: 'short', year: 'numeric', hour: '2-digit', minute: '2-digit',
});

const pad = (n) => String(n).padStart(2, '0');

/** The cron fields of a preset: hourly, daily at a time, weekly on a day at a time. */
function presetCron(kind, time, day) {
  const [hh, mm] = (time || '04:00').split(':').map(Number);
  const at = { minute: String(mm || 0), hour: String(hh || 0), day_of_month: '*', month: '*' };
  if (kind === 'hourly') return { minute: '0', hour: '*', day_of_month: '*', month: '*', day_of_week: '*' };
  if (kind === 'daily') return { ...at, day_of_week: '*' };
  return { ...at, day_of_week: day };
}

/** Which preset a saved schedule's cron is, so editing it shows the same plain words. */
function presetOf(cron) {
  const { minute, hour, day_of_month: dom, month, day_of_week: dow } = cron;
  const expression = CRON_FIELDS.map((f) => cron[f]).join(' ');
  const small = (v, max) => /^\d+$/.test(v) && Number(v) <= max;
  if (dom === '*' && month === '*') {
    if (minute === '0' && hour === '*' && dow === '*') return { kind: 'hourly', expression };
    if (small(minute, 59) && small(hour, 23)) {
      const time = `${pad(Number(hour))}:${pad(Number(minute))}`;
      if (dow === '*') return { kind: 'daily', time, expression };
      if (/^[0-7]$/.test(dow)) return { kind: 'weekly', time, day: dow === '7' ? '0' : dow, expression };
    }
  }
  return { kind: 'advanced', expression };
}

/** A schedule's backup task (hoard's schedules have at most one action: backup). */
function backupTask(schedule) {
  const tasks = schedule.relationships && schedule.relationships.tasks ? schedule.relationships.tasks.data : [];
  const found = tasks.map((t) => t.attributes).find((t) => t.action === 'backup');
  return found || null;
}

/** Ignored patterns as the task stores them: one per line, without blank lines. */
function patterns(text) {
  return text.split('\n').map((l) => l.trim()).filter(Boolean).join('\n');
}

export function render(ctx) {
  const { format } = ctx;
  const identifier = ctx.params[0];
  const base = `/api/client/servers/${seg(identifier)}`;

  const st = {
    server: null,
    perms: new Set(),
    schedules: [],
    timezone: null,
    /** Schedule id -> { since: last_run_at before "Run now", until: when to give up }. */
    watching: new Map(),
    timer: null,
    stopped: false,
  };

  const root = h('div', { class: 'schedules-page' }, h('p', { class: 'loading', role: 'status', text: 'Loading schedules…' }));
  ctx.view.append(root);

  const newBtn = button('New schedule', { kind: 'primary', iconName: 'plus', attrs: { 'data-testid': 'new-schedule', 'data-focus-key': 'new-schedule' } });
  newBtn.addEventListener('click', () => openEditor(null));
  const zoneNote = h('p', { class: 'muted small section-note', 'data-testid': 'schedule-timezone' });
  const listSlot = h('div', {});
  const schedulesSection = h('section', { class: 'page-section', 'aria-labelledby': 'schedules-title' },
    h('div', { class: 'section-head' }, h('h2', { id: 'schedules-title', text: 'Schedules' })),
    zoneNote,
    listSlot);

  // --- Loading -------------------------------------------------------------------------
  async function load() {
    try {
      const server = await api.get(base);
      if (st.stopped || !ctx.isCurrent()) return;
      st.server = server.attributes;
      st.perms = new Set((server.meta && server.meta.user_permissions) || []);
      const canManage = (server.meta && server.meta.is_server_owner) || ctx.user.admin;
      ctx.setTitle(`${st.server.name} · Schedules`);
      const header = serverHeader(st.server, {
        identifier, current: 'schedules', canManage, perms: st.perms, actions: st.perms.has('schedule.create') ? newBtn : null,
      });
      if (!st.perms.has('schedule.read')) {
        root.replaceChildren(header, h('div', { class: 'empty-state card' },
          h('h2', { text: 'You may not see this server\'s schedules' }),
          h('p', { class: 'muted', text: 'Ask the server\'s owner for the permission to view schedules.' })));
        return;
      }
      // replaceChildren() would print a null as "null": the retention section is passed only
      // to those who may see it.
      root.replaceChildren(header, schedulesSection, ...(st.perms.has('backup.read') ? [retention.section] : []));
      await loadSchedules();
      if (st.perms.has('backup.read')) await retention.load();
    } catch (err) {
      if (st.stopped) return;
      const status = err instanceof ApiError ? err.status : 0;
      root.replaceChildren(h('section', { class: 'empty-state card' },
        h('h1', { text: status === 404 ? 'Server not found' : 'Schedules could not be loaded' }),
        h('p', { class: 'muted', text: err.message }),
        h('a', { href: '/servers', class: 'btn btn-primary', text: 'Back to your servers' })));
      if (status !== 404) showError(err);
    }
  }

  async function loadSchedules() {
    clearTimeout(st.timer);
    try {
      const list = await api.get(`${base}/schedules`);
      if (st.stopped || !ctx.isCurrent()) return;
      st.timezone = list.meta && list.meta.timezone;
      st.schedules = list.data.map((d) => d.attributes);
      reportRuns();
      drawSchedules();
    } catch (err) {
      if (st.stopped) return;
      showError(err);
    }
    const busyNow = st.schedules.some((s) => s.is_processing) || st.watching.size > 0;
    if (busyNow && !st.stopped) st.timer = setTimeout(loadSchedules, POLL_MS);
  }

  /** Tells how a run started here ended, once the list shows its outcome. */
  function reportRuns() {
    const now = Date.now();
    for (const [id, watch] of st.watching) {
      const s = st.schedules.find((x) => x.id === id);
      if (!s || now > watch.until) {
        st.watching.delete(id);
        continue;
      }
      if (s.is_processing || !s.last_run || s.last_run_at === watch.since) continue;
      st.watching.delete(id);
      const r = s.last_run;
      const type = { completed: 'success', failed: 'error', skipped: 'info', missed: 'warning' }[r.outcome] || 'info';
      const words = { completed: 'made a backup', failed: 'failed', skipped: 'was skipped', missed: 'was missed' }[r.outcome] || r.outcome;
      notify(`The run of “${s.name}” ${words}${r.reason ? `: ${r.reason}` : '.'}`, { type, container: pageNotices() });
    }
  }

  // --- The list of schedules -----------------------------------------------------------
  function drawSchedules() {
    const zone = st.timezone || 'UTC';
    zoneNote.textContent = zone === browserZone
      ? `Schedules run in hoard's time zone, ${zone}, which is also yours.`
      : `Schedules run in hoard's time zone, ${zone}; times on this page are shown in yours, ${browserZone}.`;
    if (!st.schedules.length) {
      listSlot.replaceChildren(h('div', { class: 'empty-state card', 'data-testid': 'schedules-empty' },
        icon('clock', 'empty-icon'),
        h('h2', { text: 'No schedules yet' }),
        h('p', { class: 'muted', text: st.perms.has('schedule.create')
          ? 'Add one to back this server up automatically, for example every day at 04:00.'
          : 'Nobody has set up automatic backups of this server yet.' })));
      return;
    }
    keepFocus(listSlot, () => {
      listSlot.replaceChildren(h('div', { class: 'card table-card' },
        h('table', { class: 'table table-responsive schedules-table', 'data-testid': 'schedules-table' },
          h('caption', { class: 'visually-hidden', text: 'Schedules of this server' }),
          h('thead', {}, h('tr', {},
            h('th', { scope: 'col', text: 'Schedule' }),
            h('th', { scope: 'col', text: 'Next run' }),
            h('th', { scope: 'col', text: 'Last run' }),
            h('th', { scope: 'col', text: 'Active' }),
            h('th', { scope: 'col', class: 'actions-col' }, h('span', { class: 'visually-hidden', text: 'Actions' })))),
          h('tbody', {}, st.schedules.map(scheduleRow)))));
    });
  }

  function scheduleRow(s) {
    const task = backupTask(s);
    const ignoredCount = task && task.payload ? patterns(task.payload).split('\n').length : 0;
    const nameCell = h('td', { class: 'cell-primary', 'data-label': 'Schedule' },
      h('strong', { class: 'schedule-name', text: s.name }),
      h('p', { class: 'schedule-when', 'data-testid': 'schedule-description', text: s.description || CRON_FIELDS.map((f) => s.cron[f]).join(' ') }),
      h('p', { class: 'muted small schedule-extra' },
        h('code', { text: CRON_FIELDS.map((f) => s.cron[f]).join(' ') }),
        s.only_if_changed ? ' · only if files changed' : '',
        ignoredCount ? ` · ${format.plural(ignoredCount, 'ignored pattern')}` : ''),
      task ? null : h('p', { class: 'schedule-warning', text: 'No backup task: this schedule does nothing until it is saved again.' }));

    let next;
    if (!s.is_active) next = h('span', { class: 'muted', text: 'Paused' });
    else if (s.next_run_at) next = untilTime(s.next_run_at, format, { 'data-testid': 'schedule-next-run' });
    else next = h('span', { class: 'muted', text: '—' });

    const canUpdate = st.perms.has('schedule.update');
    const activeId = uid('active');
    const active = h('input', {
      type: 'checkbox', role: 'switch', class: 'switch', id: activeId, checked: s.is_active, disabled: !canUpdate,
      'data-focus-key': `active:${s.id}`, 'data-testid': 'schedule-active',
    });
    active.addEventListener('change', () => setActive(s, active));
    const activeCell = h('td', { 'data-label': 'Active' },
      h('label', { htmlFor: activeId, class: 'visually-hidden', text: `${s.name} is active` }), active);

    const actions = h('div', { class: 'row-actions' });
    const more = [];
    if (canUpdate) {
      const run = button('Run now', { kind: 'secondary', iconName: 'play', attrs: { 'data-focus-key': `run:${s.id}`, 'data-action': 'run' } });
      let reason = null;
      if (s.is_processing || st.watching.has(s.id)) reason = 'This schedule is running.';
      else if (!task) reason = 'It has no backup task to run.';
      run.classList.add('btn-small');
      setUnavailable(run, reason);
      run.addEventListener('click', () => { if (!explainIfUnavailable(run)) runNow(s, run); });
      actions.append(run);
      more.push({ key: 'edit', label: 'Edit', name: `Edit ${s.name}`, iconName: 'edit', run: () => openEditor(s) });
    }
    if (st.perms.has('schedule.delete')) {
      more.push({ key: 'delete', label: 'Delete', name: `Delete ${s.name}`, iconName: 'trash', kind: 'ghost-danger', run: () => openDelete(s) });
    }
    // Edit and Delete are icons, or a labelled menu on narrow and touch screens.
    if (more.length) actions.append(...rowActions(more, s.name, s.id).childNodes);
    if (!actions.childElementCount) actions.append(h('span', { class: 'muted no-actions', text: '—' }));

    return h('tr', { 'data-testid': 'schedule-row', 'data-id': s.id, 'data-name': s.name, class: !s.is_active ? 'is-paused' : null },
      nameCell,
      h('td', { 'data-label': 'Next run' }, next),
      h('td', { 'data-label': 'Last run', 'data-testid': 'schedule-last-run', 'data-outcome': s.is_processing ? 'running' : (s.last_run ? s.last_run.outcome : 'none') }, lastRun(s)),
      activeCell,
      h('td', { class: 'actions-cell', 'data-label': 'Actions' }, actions));
  }

  function lastRun(s) {
    if (s.is_processing) {
      return h('span', { class: 'badge badge-info badge-live' }, h('span', { class: 'pulse', 'aria-hidden': 'true' }), 'Running');
    }
    const r = s.last_run;
    if (!r) return h('span', { class: 'muted', text: 'Not run yet' });
    const [label, kind, iconName] = OUTCOMES[r.outcome] || [r.outcome, 'neutral', 'info'];
    return h('div', { class: 'last-run' },
      h('div', { class: 'status-line' }, h('span', { class: ['badge', `badge-${kind}`, 'badge-small'] }, icon(iconName), label), timeAgo(r.at, format.ago, format.exact)),
      r.reason ? h('p', { class: ['last-run-reason', r.outcome === 'failed' && 'is-error'], 'data-testid': 'schedule-last-reason', text: r.reason }) : null,
      r.catch_up ? h('p', { class: 'muted small', text: 'A catch-up run: its time came while hoard was not running.' }) : null);
  }

  async function setActive(s, input) {
    const wanted = input.checked;
    try {
      await busy(input, () => api.post(`${base}/schedules/${s.id}`, { is_active: wanted }));
      announce(wanted ? `${s.name} is active again.` : `${s.name} is paused.`);
    } catch (err) {
      input.checked = !wanted;
      showError(err);
    }
    await loadSchedules();
  }

  async function runNow(s, btn) {
    try {
      await busy(btn, () => api.post(`${base}/schedules/${s.id}/execute`));
      st.watching.set(s.id, { since: s.last_run_at, until: Date.now() + WATCH_MS });
      announce(`${s.name} is running.`);
    } catch (err) {
      showError(err);
    }
    await loadSchedules();
  }

  function openDelete(s) {
    confirmDialog({
      title: `Delete “${s.name}”?`,
      message: 'The schedule stops for good. The backups it made are kept.',
      confirmLabel: 'Delete schedule',
      danger: true,
      focusCancel: true,
      testid: 'delete-schedule-dialog',
      onConfirm: async () => {
        await api.del(`${base}/schedules/${s.id}`);
        notify(`Schedule “${s.name}” deleted.`, { type: 'success', container: pageNotices() });
        await loadSchedules();
      },
    });
  }

  // --- Creating and editing ------------------------------------------------------------
  function openEditor(s) {
    const initial = s ? presetOf(s.cron) : { kind: 'daily', time: '04:00', expression: '0 4 * * *' };
    const task = s ? backupTask(s) : null;
    let savedId = s ? s.id : null;

    const name = field('Name', { name: 'name', type: 'text', required: true, maxLength: 191, autocomplete: 'off', placeholder: 'e.g. Nightly backup', value: s ? s.name : '' });

    // "When": a preset in plain words, or a cron expression.
    const time = field('Time', { name: 'time', type: 'time', value: initial.time || '04:00' }, { className: 'when-time' });
    const daySelect = h('select', { name: 'day' }, WEEKDAYS.map(([v, label]) => h('option', { value: v, selected: v === (initial.day || '1'), text: label })));
    const day = field('Day', daySelect, { className: 'when-day' });
    const expression = field('Cron expression', { name: 'expression', type: 'text', class: 'mono', autocomplete: 'off', spellcheck: false, value: initial.expression },
      { hint: 'Five fields: minute, hour, day of month, month, day of week. For example 30 3 * * 1-5 is 03:30 on weekdays.', className: 'when-expression' });
    const radioName = uid('when');
    const presets = {};
    const presetLabels = {};
    const options = ['hourly', 'daily', 'weekly', 'advanced'].map((kind) => {
      const id = uid('preset');
      presets[kind] = h('input', { type: 'radio', name: radioName, id, value: kind, checked: kind === initial.kind });
      presetLabels[kind] = h('label', { htmlFor: id });
      return h('div', { class: 'radio' }, presets[kind], presetLabels[kind]);
    });
    const whenError = h('p', { class: 'field-error', id: uid('when-error'), hidden: true, 'data-testid': 'schedule-when-error' });
    const when = h('fieldset', { class: 'fieldset when' },
      h('legend', { text: 'When' }),
      h('div', { class: 'presets' }, options),
      h('div', { class: 'when-details' }, time, day, expression),
      whenError);
    const previewBox = h('div', { class: 'schedule-preview', 'aria-live': 'polite', 'data-testid': 'schedule-preview' });

    const kind = () => Object.keys(presets).find((k) => presets[k].checked);
    const dayName = () => WEEKDAYS.find(([v]) => v === daySelect.value)[1];
    function drawWhen() {
      const t = time.control.value || '04:00';
      presetLabels.hourly.textContent = 'Every hour, on the hour';
      presetLabels.daily.textContent = `Every day at ${t}`;
      presetLabels.weekly.textContent = `Every week on ${dayName()} at ${t}`;
      presetLabels.advanced.textContent = 'Advanced: a cron expression';
      const k = kind();
      time.hidden = !(k === 'daily' || k === 'weekly');
      day.hidden = k !== 'weekly';
      expression.hidden = k !== 'advanced';
    }

    /** The cron fields the form describes, or `{ error }` for an expression that is not five fields. */
    function cron() {
      const k = kind();
      if (k !== 'advanced') return presetCron(k, time.control.value, daySelect.value);
      const parts = expression.control.value.trim().split(/\s+/).filter(Boolean);
      if (parts.length !== 5) return { error: 'Write five fields separated by spaces: minute, hour, day of month, month and day of week.' };
      return Object.fromEntries(CRON_FIELDS.map((f, i) => [f, parts[i]]));
    }

    /** Shows a problem with "When" beside it (on the expression when that is what is wrong). */
    function showWhenError(message) {
      const target = kind() === 'advanced' ? expression.control : null;
      whenError.textContent = message || '';
      whenError.hidden = !message;
      for (const input of [expression.control, time.control]) {
        input.removeAttribute('aria-invalid');
        const described = (input.getAttribute('aria-describedby') || '').split(' ').filter((x) => x && x !== whenError.id);
        if (message && input === target) described.push(whenError.id);
        if (described.length) input.setAttribute('aria-describedby', described.join(' '));
        else input.removeAttribute('aria-describedby');
      }
      if (message && target) target.setAttribute('aria-invalid', 'true');
    }

    /** An API error about a cron field, in words that name the part of the expression. */
    function cronMessage(err) {
      const fields = err instanceof ApiError ? err.fields : {};
      const bad = CRON_FIELDS.filter((f) => fields[f]);
      if (!bad.length) return null;
      return bad.map((f) => (kind() === 'advanced' ? `The ${CRON_NAMES[f]} (field ${CRON_FIELDS.indexOf(f) + 1}): ${fields[f]}` : fields[f])).join(' ');
    }

    let previewTimer = null;
    let previewSeq = 0;
    let closed = false;
    async function runPreview() {
      clearTimeout(previewTimer);
      previewSeq += 1;
      const mine = previewSeq;
      const c = cron();
      if (c.error) {
        showWhenError(c.error);
        previewBox.replaceChildren(h('p', { class: 'muted', text: 'The next runs appear here once the expression is complete.' }));
        return;
      }
      previewBox.setAttribute('aria-busy', 'true');
      try {
        const p = (await api.post(`${base}/schedules/preview`, c)).attributes;
        if (closed || mine !== previewSeq) return;
        showWhenError(null);
        const zone = p.timezone === browserZone ? '' : ` (in your time zone; hoard counts in ${p.timezone})`;
        previewBox.replaceChildren(
          h('p', { class: 'preview-description' }, h('strong', { 'data-testid': 'schedule-preview-description', text: p.description || p.expression }),
            ' ', h('code', { class: 'muted', text: p.expression })),
          h('p', { class: 'preview-title muted small', text: `Next ${format.plural(p.next_runs.length, 'run')}${zone}:` }),
          p.next_runs.length
            ? h('ol', { class: 'next-runs', 'data-testid': 'schedule-next-runs' },
              p.next_runs.map((iso) => h('li', {}, h('time', { datetime: iso, text: runFormat.format(new Date(iso)) }))))
            : h('p', { class: 'muted', text: 'This expression never matches a date.' }));
      } catch (err) {
        if (closed || mine !== previewSeq) return;
        const message = cronMessage(err);
        if (!message) showError(err);
        showWhenError(message);
        previewBox.replaceChildren(h('p', { class: 'muted', text: 'Fix the time above to see the next runs.' }));
      } finally {
        if (mine === previewSeq) previewBox.removeAttribute('aria-busy');
      }
    }
    function onWhenChange() {
      // The expression follows the preset, so switching to Advanced starts from it.
      if (kind() !== 'advanced') {
        const c = cron();
        expression.control.value = CRON_FIELDS.map((f) => c[f]).join(' ');
      }
      drawWhen();
      clearTimeout(previewTimer);
      previewTimer = setTimeout(runPreview, PREVIEW_DELAY_MS);
    }
    for (const input of [time.control, daySelect, expression.control, ...Object.values(presets)]) {
      input.addEventListener('input', onWhenChange);
      input.addEventListener('change', onWhenChange);
    }

    const onlyChanged = checkbox('Only if files changed since the last successful backup', {
      name: 'only_if_changed',
      checked: s ? s.only_if_changed : false,
      hint: 'When nothing changed, the run is skipped and says so under Last run.',
    });
    const ignored = field('Files to ignore', h('textarea', { name: 'payload', rows: 3, spellcheck: false, placeholder: 'logs/\n*.tmp\ncache/**', value: task ? task.payload || '' : '' }),
      { optional: true, hint: 'One pattern per line, like .gitignore. A .pteroignore file in the server\'s root directory also applies.' });
    const active = checkbox('Active', {
      name: 'is_active',
      isSwitch: true,
      checked: s ? s.is_active : true,
      hint: 'A paused schedule keeps its settings but does not run.',
    });

    drawWhen();
    formDialog({
      title: s ? `Edit “${s.name}”` : 'New schedule',
      body: [name, when, previewBox, onlyChanged, ignored, active],
      submitLabel: s ? 'Save schedule' : 'Create schedule',
      testid: 'schedule-dialog',
      wide: true,
      onClose: () => {
        closed = true;
        clearTimeout(previewTimer);
      },
      onSubmit: async (form, dlg) => {
        const c = cron();
        if (c.error) {
          showWhenError(c.error);
          expression.control.focus();
          return false;
        }
        const body = {
          name: name.control.value.trim(),
          ...c,
          is_active: active.control.checked,
          only_if_changed: onlyChanged.control.checked,
        };
        const payload = patterns(ignored.control.value);
        let saved;
        try {
          // After a failed first attempt the schedule may exist already: save over it.
          saved = savedId
            ? (await api.post(`${base}/schedules/${savedId}`, body)).attributes
            : (await api.post(`${base}/schedules`, body)).attributes;
        } catch (err) {
          const message = cronMessage(err);
          if (!message) throw err;
          // Each message once: the cron fields' beside the expression, the others' where
          // they belong or, with no place of their own, above the form.
          const placed = showFieldErrors(form, err);
          showWhenError(message);
          const rest = err.errors.filter((e) => {
            const f = e.meta && e.meta.source_field;
            return !(f && (placed.has(f) || CRON_FIELDS.includes(f)));
          });
          if (rest.length) notify(rest.map((e) => e.detail || e.code).join(' '), { type: 'error', container: dlg.notices });
          (kind() === 'advanced' ? expression.control : time.control).focus();
          return false;
        }
        savedId = saved.id;
        // A schedule does nothing without its backup task, which carries the ignored files.
        const existing = backupTask(saved);
        if (existing) {
          if ((existing.payload || '') !== payload) await api.post(`${base}/schedules/${saved.id}/tasks/${existing.id}`, { payload });
        } else {
          await api.post(`${base}/schedules/${saved.id}/tasks`, { action: 'backup', payload, time_offset: 0 });
        }
        notify(s ? `Schedule “${saved.name}” saved.` : `Schedule “${saved.name}” created: ${saved.description || 'it runs as set'}`, { type: 'success', container: pageNotices() });
        await loadSchedules();
        return true;
      },
    });
    runPreview();
  }

  // --- Retention -----------------------------------------------------------------------
  const retention = retentionPanel();

  function retentionPanel() {
    const form = h('form', { class: 'retention-form', 'aria-labelledby': 'retention-title', novalidate: true });
    const notices = h('div', { class: 'form-notices' });
    const status = h('p', { class: 'retention-status', 'data-testid': 'retention-status' });
    const inputs = {};
    const rules = RULES.map(([key, label, hint]) => {
      const f = field(`Keep ${label.toLowerCase()}`, { name: key, type: 'number', min: 0, step: 1, inputMode: 'numeric', placeholder: '—' }, { hint });
      inputs[key] = f.control;
      return f;
    });
    const within = field('Keep within', { name: 'keep_within', type: 'text', autocomplete: 'off', spellcheck: false, placeholder: 'e.g. 30d', class: 'mono' },
      { hint: 'Every backup younger than this: 2y, 6m, 30d, 12h or a mix like 1y6m.' });
    inputs.keep_within = within.control;
    const previewBtn = button('Preview', { kind: 'secondary', type: 'submit', attrs: { 'data-testid': 'retention-preview-button' } });
    const saveBtn = button('Save policy', { kind: 'primary', attrs: { 'data-testid': 'retention-save' } });
    const saveReasonId = uid('reason');
    const saveReason = h('p', { id: saveReasonId, class: 'muted small', 'data-testid': 'retention-save-reason' });
    saveBtn.setAttribute('aria-describedby', saveReasonId);
    const result = h('div', { class: 'retention-result', 'data-testid': 'retention-preview', 'aria-live': 'polite' });
    const zoneHint = h('span', {});
    form.append(notices,
      h('div', { class: 'retention-grid' }, rules, within),
      h('div', { class: 'form-actions retention-actions' }, previewBtn, saveBtn, saveReason));
    const section = h('section', { class: 'page-section', 'aria-labelledby': 'retention-title' },
      h('div', { class: 'section-head' }, h('h2', { id: 'retention-title', text: 'Retention' })),
      h('div', { class: 'card card-pad' },
        h('p', { class: 'retention-explain' },
          'As with restic: a backup is kept when any rule keeps it, and the rest are deleted right after the next successful backup. ',
          'Locked backups and the newest successful one are never deleted. ', zoneHint),
        status,
        form,
        result));

    let previewedKey = null;
    let saved = null;

    function policy() {
      const out = {};
      for (const [key] of RULES) {
        const v = inputs[key].value.trim();
        out[key] = v === '' ? null : Number(v);
      }
      const w = inputs.keep_within.value.trim();
      out.keep_within = w === '' ? null : w;
      return out;
    }
    const keyOf = (p) => JSON.stringify(p);

    function describe(p) {
      const parts = [];
      if (p.keep_last) parts.push(`the last ${p.keep_last}`);
      for (const [key, label] of RULES.slice(1)) if (p[key]) parts.push(`${p[key]} ${label.toLowerCase()}`);
      if (p.keep_within) parts.push(`everything within ${p.keep_within}`);
      return parts.join(', ');
    }

    function drawStatus() {
      const words = saved ? describe(saved) : '';
      status.textContent = words
        ? `In force: keep ${words}.`
        : 'No policy: every backup is kept until someone deletes it.';
    }

    function drawSave() {
      const canSave = st.perms.has('backup.delete');
      saveBtn.hidden = !canSave;
      let reason = null;
      if (!canSave) reason = 'Changing the policy needs the permission to delete backups.';
      else if (previewedKey !== keyOf(policy())) reason = 'Preview these rules first, to see what they would delete.';
      setUnavailable(saveBtn, canSave ? reason : null);
      if (!canSave || !reason) {
        saveBtn.removeAttribute('title');
        delete saveBtn.dataset.tip;
      }
      saveReason.textContent = reason || '';
      saveReason.hidden = !reason;
    }

    function fill(p) {
      for (const [key] of RULES) inputs[key].value = p[key] === null || p[key] === undefined ? '' : String(p[key]);
      inputs.keep_within.value = p.keep_within || '';
    }

    async function load() {
      try {
        const r = (await api.get(`${base}/retention`)).attributes;
        if (st.stopped) return;
        saved = r.is_set ? r : null;
        zoneHint.textContent = `Hours, days, weeks, months and years are counted in ${r.timezone}.`;
        fill(r);
        drawStatus();
        drawSave();
      } catch (err) {
        if (!st.stopped) showError(err, { container: notices });
      }
    }

    function drawResult(list) {
      const verdicts = list.data.map((d) => d.attributes);
      const { keep, delete: del } = list.meta;
      if (!verdicts.length) {
        result.replaceChildren(h('p', { class: 'muted', text: 'This server has no backups yet, so nothing would be deleted.' }));
        return;
      }
      const rows = verdicts.map((v) => h('tr', { 'data-testid': 'retention-row', 'data-verdict': v.keep ? 'keep' : 'delete', 'data-name': v.name },
        h('td', { class: 'cell-primary', 'data-label': 'Backup' }, h('span', { class: 'backup-name', text: v.name }),
          v.is_locked ? h('span', { class: 'lock-mark', role: 'img', 'aria-label': 'Locked', title: 'Locked' }, icon('lock')) : null),
        h('td', { 'data-label': 'Created' }, timeAgo(v.created_at, format.ago, format.exact)),
        h('td', { 'data-label': 'Verdict' }, v.keep ? badge('Keep', 'success') : badge('Delete', 'danger')),
        h('td', { 'data-label': 'Why', class: 'retention-reasons', 'data-testid': 'retention-reasons', text: v.reasons.join('; ') || '—' })));
      result.replaceChildren(
        h('p', { class: 'retention-counts', 'data-testid': 'retention-counts' },
          h('strong', { text: `${keep} kept` }), ', ', h('strong', { text: `${del} deleted` }),
          del ? ' once the next backup succeeds, with these rules in force.' : ': these rules delete nothing now.'),
        h('div', { class: 'card table-card' },
          h('table', { class: 'table table-responsive retention-table' },
            h('caption', { class: 'visually-hidden', text: 'What the policy would do with each backup, newest first' }),
            h('thead', {}, h('tr', {},
              h('th', { scope: 'col', text: 'Backup' }),
              h('th', { scope: 'col', text: 'Created' }),
              h('th', { scope: 'col', text: 'Verdict' }),
              h('th', { scope: 'col', text: 'Why' }))),
            h('tbody', {}, rows))));
    }

    // A preview of other rules than those in the form is dimmed until it is run again.
    form.addEventListener('input', () => {
      result.classList.toggle('is-stale', Boolean(previewedKey) && previewedKey !== keyOf(policy()));
      drawSave();
    });
    form.addEventListener('submit', async (event) => {
      event.preventDefault();
      notices.replaceChildren();
      clearFieldErrors(form);
      const p = policy();
      try {
        const list = await busy(previewBtn, () => api.post(`${base}/retention/preview`, p));
        previewedKey = keyOf(p);
        result.classList.remove('is-stale');
        drawResult(list);
      } catch (err) {
        showFormError(form, err, notices);
      }
      drawSave();
    });
    saveBtn.addEventListener('click', async () => {
      if (explainIfUnavailable(saveBtn)) return;
      notices.replaceChildren();
      clearFieldErrors(form);
      try {
        const r = (await busy(saveBtn, () => api.put(`${base}/retention`, policy()))).attributes;
        saved = r.is_set ? r : null;
        fill(r);
        previewedKey = keyOf(policy());
        drawStatus();
        notify(saved ? `Retention policy saved: keep ${describe(saved)}.` : 'Retention policy removed: backups are kept until someone deletes them.',
          { type: 'success', container: notices });
      } catch (err) {
        showFormError(form, err, notices);
      }
      drawSave();
    });

    return { section, load };
  }

  load();
  return () => {
    st.stopped = true;
    clearTimeout(st.timer);
  };
}
