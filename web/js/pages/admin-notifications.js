// Administration of notification channels: where hoard tells people that a backup or a
// restore failed, a scheduled run was skipped, storage runs low, and so on.

import { h, icon, uid } from '../dom.js';
import { api, ApiError } from '../api.js';
import {
  announce, busy, button, checkbox, confirmDialog, copyButton, field, formDialog, keepFocus,
  notify, showError, showFieldErrors, timeAgo,
} from '../ui.js';

const BASE = '/api/application/notifications';
/** How often the list is reloaded while notifications wait to be sent (or retried). */
const POLL_MS = 5000;

/** Kind -> [label, what its URL is]. */
const KINDS = {
  discord: ['Discord', 'Paste the webhook URL of a Discord channel (its settings, Integrations, Webhooks, Copy Webhook URL).'],
  ntfy: ['ntfy', 'The topic\'s https address, like ntfy.sh/my-topic.'],
  webhook: ['Webhook', 'hoard POSTs JSON to your URL, signed with HMAC-SHA256 in the X-Hoard-Signature header.'],
  healthchecks: ['Healthchecks', 'A check\'s ping URL: hoard pings its /start, then the URL itself on success or /fail, around each scheduled backup. Events do not apply.'],
};

/** Event -> [label, explanation]; in the order they are offered. */
const EVENTS = {
  backup_failed: ['Backup failed', null],
  restore_failed: ['Restore failed', null],
  schedule_skipped: ['Scheduled run skipped or missed', 'With the reason, e.g. nothing changed, or hoard was not running at the time.'],
  storage_low: ['Storage low', 'Free space, or a server\'s backup quota, is running out. At most once a day per server.'],
  jobs_recovered: ['Jobs recovered after a crash', 'hoard found backups or restores that a crash interrupted, and cleaned them up.'],
  backup_completed: ['Backup completed', null],
  restore_completed: ['Restore completed', null],
};
/** What a new channel hears, as the API's default: failures only. */
const DEFAULT_EVENTS = ['backup_failed', 'restore_failed'];

const eventLabel = (e) => (EVENTS[e] ? EVENTS[e][0] : e);
const kindLabel = (k) => (KINDS[k] ? KINDS[k][0] : k);
const pageNotices = () => document.getElementById('notices');

/**
 * Gives focus back to a control that lost it by being disabled while busy, unless the
 * user has moved on since.
 */
function refocus(control) {
  if (!document.activeElement || document.activeElement === document.body) control.focus();
}

/** A fieldset's own error line, for the choices that have no single field. */
function fieldsetError(fieldset) {
  const el = h('p', { class: 'field-error', id: uid('fs-error'), hidden: true });
  fieldset.append(el);
  return (message) => {
    el.textContent = message || '';
    el.hidden = !message;
    if (message) fieldset.setAttribute('aria-describedby', el.id);
    else fieldset.removeAttribute('aria-describedby');
  };
}

export function render(ctx) {
  const { format } = ctx;
  ctx.setTitle('Notifications');
  const addBtn = button('Add channel', { kind: 'primary', iconName: 'plus', attrs: { 'data-testid': 'add-channel', 'data-focus-key': 'add-channel' } });
  const body = h('div', {}, h('p', { class: 'loading', role: 'status', text: 'Loading channels…' }));
  ctx.view.append(
    h('div', { class: 'page-head' },
      h('div', {},
        h('h1', { text: 'Notifications' }),
        h('p', { class: 'page-sub muted', text: 'Where hoard tells you that a backup or a restore failed, storage runs low, and more.' })),
      h('div', { class: 'page-actions' }, addBtn)),
    body);

  let stopped = false;
  let timer = null;
  let channels = [];
  let servers = [];
  let events = Object.keys(EVENTS);
  /** Channel id -> whether its last "Send test" here arrived. */
  const tests = new Map();

  addBtn.addEventListener('click', () => openForm(null));

  async function load() {
    clearTimeout(timer);
    try {
      const [list, s] = await Promise.all([api.get(BASE), api.get('/api/application/servers')]);
      if (stopped) return;
      channels = list.data.map((d) => d.attributes);
      servers = s.data.map((d) => d.attributes);
      // Events the API knows but this page has no words for are still offered, by name.
      const known = (list.meta && list.meta.events) || [];
      events = [...Object.keys(EVENTS).filter((e) => known.includes(e)), ...known.filter((e) => !EVENTS[e])];
      draw();
    } catch (err) {
      if (stopped) return;
      body.replaceChildren(h('p', { class: 'muted', text: 'The notification channels could not be loaded.' }));
      showError(err);
    }
    // Deliveries that failed are retried in the background: follow them until they are done.
    if (!stopped && channels.some((c) => c.pending > 0)) timer = setTimeout(load, POLL_MS);
  }

  function serverName(identifier) {
    const found = servers.find((s) => s.identifier === identifier);
    return found ? found.name : identifier;
  }

  function draw() {
    if (!channels.length) {
      body.replaceChildren(h('div', { class: 'empty-state card', 'data-testid': 'channels-empty' },
        icon('bell', 'empty-icon'),
        h('h2', { text: 'No notification channels yet' }),
        h('p', { class: 'muted', text: 'Add a Discord or ntfy channel, a webhook or a Healthchecks check to hear when a backup fails, without watching hoard.' })));
      return;
    }
    keepFocus(body, () => {
      body.replaceChildren(h('div', { class: 'card table-card' },
        h('table', { class: 'table table-responsive channels-table', 'data-testid': 'channels-table' },
          h('caption', { class: 'visually-hidden', text: 'Notification channels' }),
          h('thead', {}, h('tr', {},
            ['Channel', 'Events', 'Servers', 'Delivery', 'Enabled'].map((t) => h('th', { scope: 'col', text: t })),
            h('th', { scope: 'col', class: 'actions-col' }, h('span', { class: 'visually-hidden', text: 'Actions' })))),
          h('tbody', {}, channels.map(row)))),
      h('p', { class: 'table-foot muted', text: format.plural(channels.length, 'channel') }));
    });
  }

  function eventsCell(c) {
    if (c.kind === 'healthchecks') return h('span', { class: 'muted', text: 'Pinged around scheduled backups' });
    if (!c.events.length) return h('span', { class: 'channel-warning', text: 'No events: it is sent nothing' });
    if (events.every((e) => c.events.includes(e))) return 'All events';
    // In the order they are offered, whatever order they were saved in.
    const chosen = events.filter((e) => c.events.includes(e));
    return h('ul', { class: 'chips' }, chosen.map((e) => h('li', { class: 'chip', text: eventLabel(e) })));
  }

  function serversCell(c) {
    if (c.servers === null) return 'All servers';
    if (!c.servers.length) return h('span', { class: 'channel-warning', text: 'No servers: it is sent nothing' });
    return h('ul', { class: 'chips' }, c.servers.map((id) => h('li', { class: 'chip', text: serverName(id) })));
  }

  function deliveryCell(c) {
    const parts = [];
    if (c.last_delivery_at) parts.push(h('p', {}, 'Delivered ', timeAgo(c.last_delivery_at, format.ago, format.exact)));
    if (c.last_error) {
      parts.push(h('p', { class: 'channel-error', 'data-testid': 'channel-error' },
        icon('warning'),
        h('span', {}, h('span', { text: c.last_error }), ' ', timeAgo(c.last_error_at, format.ago, format.exact))));
    }
    if (!parts.length) parts.push(h('p', { class: 'muted', text: 'Nothing sent yet' }));
    if (c.pending > 0) {
      parts.push(h('p', { class: 'muted small', 'data-testid': 'channel-pending', text: `${format.plural(c.pending, 'notification')} waiting to be sent` }));
    }
    return h('div', { class: 'channel-delivery' }, parts);
  }

  function row(c) {
    const enabledId = uid('enabled');
    const enabled = h('input', {
      type: 'checkbox', role: 'switch', class: 'switch', id: enabledId, checked: c.is_enabled,
      'data-focus-key': `enabled:${c.id}`, 'data-testid': 'channel-enabled',
    });
    enabled.addEventListener('change', () => setEnabled(c, enabled));

    const test = button('Send test', { kind: 'secondary', iconName: 'bell', attrs: { 'data-focus-key': `test:${c.id}`, 'data-action': 'test' } });
    test.classList.add('btn-small');
    test.addEventListener('click', () => sendTest(c, test));
    const edit = button(`Edit ${c.name}`, { kind: 'ghost', iconName: 'edit', iconOnly: true, attrs: { 'data-tip': 'Edit', 'data-focus-key': `edit:${c.id}`, 'data-action': 'edit' } });
    edit.addEventListener('click', () => openForm(c));
    const remove = button(`Delete ${c.name}`, { kind: 'ghost-danger', iconName: 'trash', iconOnly: true, attrs: { 'data-tip': 'Delete', 'data-focus-key': `delete:${c.id}`, 'data-action': 'delete' } });
    remove.addEventListener('click', () => openDelete(c));

    const tested = tests.get(c.id);
    let result = null;
    if (tested !== undefined) {
      result = h('p', { class: 'test-result', 'data-testid': 'test-result' }, tested
        ? h('span', { class: 'badge badge-success badge-small' }, icon('check'), 'Delivered')
        : h('span', { class: 'badge badge-danger badge-small' }, icon('alert'), 'Not delivered'));
    }

    return h('tr', { 'data-testid': 'channel-row', 'data-id': c.id, 'data-name': c.name, class: c.is_enabled ? null : 'is-off' },
      h('td', { class: 'cell-primary', 'data-label': 'Channel' },
        h('div', { class: 'channel-title' },
          h('strong', { class: 'channel-name', text: c.name }),
          h('span', { class: 'badge badge-neutral badge-small', 'data-testid': 'channel-kind', text: kindLabel(c.kind) })),
        h('code', { class: 'channel-url', 'data-testid': 'channel-url', text: c.url })),
      h('td', { 'data-label': 'Events', 'data-testid': 'channel-events' }, eventsCell(c)),
      h('td', { class: 'channel-servers', 'data-label': 'Servers', 'data-testid': 'channel-servers' }, serversCell(c)),
      h('td', { 'data-label': 'Delivery', 'data-testid': 'channel-delivery' }, deliveryCell(c)),
      h('td', { 'data-label': 'Enabled' },
        h('label', { htmlFor: enabledId, class: 'visually-hidden', text: `${c.name} is enabled` }), enabled),
      h('td', { class: 'actions-cell', 'data-label': 'Actions' },
        h('div', { class: 'channel-actions' }, h('div', { class: 'row-actions' }, test, edit, remove), result)));
  }

  async function setEnabled(c, input) {
    const wanted = input.checked;
    try {
      await busy(input, () => api.patch(`${BASE}/${c.id}`, { is_enabled: wanted }));
      announce(wanted ? `${c.name} is enabled.` : `${c.name} is disabled: it is sent nothing.`);
    } catch (err) {
      input.checked = !wanted;
      showError(err);
    }
    refocus(input);
    await load();
  }

  async function sendTest(c, btn) {
    try {
      const sent = (await busy(btn, () => api.post(`${BASE}/${c.id}/test`))).attributes;
      tests.set(c.id, sent.delivered);
      // The error itself appears in the row's Delivery column, as the channel's last error.
      announce(sent.delivered ? `The test reached ${c.name}.` : `The test did not reach ${c.name}: ${sent.error}`);
    } catch (err) {
      showError(err);
    }
    refocus(btn);
    await load();
  }

  function openDelete(c) {
    const waiting = c.pending > 0 ? ` The ${format.plural(c.pending, 'notification')} waiting for it ${c.pending === 1 ? 'is' : 'are'} dropped.` : '';
    confirmDialog({
      title: `Delete ${c.name}?`,
      message: `hoard stops sending notifications to it.${waiting}`,
      confirmLabel: 'Delete channel',
      danger: true,
      focusCancel: true,
      testid: 'delete-channel-dialog',
      onConfirm: async () => {
        await api.del(`${BASE}/${c.id}`);
        tests.delete(c.id);
        notify(`${c.name} was deleted.`, { type: 'success', container: pageNotices() });
        await load();
      },
    });
  }

  function showSecret(c, secret) {
    const { form, submit } = formDialog({
      title: `Signing secret of ${c.name}`,
      intro: h('p', { class: 'callout callout-warning dialog-intro' }, icon('warning'),
        h('span', { text: 'Copy it now: hoard does not show it again. Anyone with it can sign requests your receiver would trust.' })),
      body: [
        h('div', { class: 'secret-row' },
          h('code', { class: 'secret mono', 'data-testid': 'channel-secret', text: secret }),
          copyButton(secret, 'Copy signing secret')),
        h('p', { class: 'muted small secret-how' },
          'Each request carries ', h('code', { text: 'X-Hoard-Signature: sha256=<hex>' }),
          ', the HMAC-SHA256 of its body with this secret.'),
      ],
      submitLabel: 'Done',
      testid: 'secret-dialog',
      onSubmit: () => {},
    });
    // Nothing here can be cancelled: Done is the only way on.
    form.querySelector('.dialog-actions .btn-secondary').remove();
    (form.querySelector('.btn-copy') || submit).focus();
  }

  function openForm(channel) {
    const editing = Boolean(channel);
    const c = channel || { kind: 'discord', name: '', events: DEFAULT_EVENTS, servers: null, is_enabled: true };

    // Kind: one radio each, with what its URL is.
    const kindName = uid('kind');
    const kindRadios = {};
    const kindField = h('fieldset', { class: 'fieldset choices kind-choices' },
      h('legend', { text: 'Kind' }),
      Object.entries(KINDS).map(([kind, [label, hint]]) => {
        const id = uid('kind');
        kindRadios[kind] = h('input', { type: 'radio', name: kindName, id, value: kind, checked: kind === c.kind, 'aria-describedby': `${id}-hint` });
        return h('div', { class: 'check choice' }, kindRadios[kind],
          h('div', { class: 'check-text' },
            h('label', { htmlFor: id, text: label }),
            h('p', { id: `${id}-hint`, class: 'field-hint', text: hint })));
      }));
    const kind = () => Object.keys(kindRadios).find((k) => kindRadios[k].checked);

    const name = field('Name', { name: 'name', type: 'text', required: true, maxLength: 191, autocomplete: 'off', value: c.name, placeholder: 'e.g. Admins on Discord' });
    const url = field('URL', {
      name: 'url', type: 'text', inputMode: 'url', required: !editing, autocomplete: 'off', spellcheck: false, class: 'mono',
      placeholder: editing ? c.url : '',
    }, { hint: editing ? 'Leave it blank to keep the saved address (shown masked).' : 'Saved, then only shown masked.' });

    // Events, for every kind but Healthchecks.
    const eventBoxes = events.map((e) => {
      const [label, hint] = EVENTS[e] || [e, null];
      return checkbox(label, { name: 'event', value: e, checked: c.events.includes(e), hint });
    });
    const eventsField = h('fieldset', { class: 'fieldset', 'data-testid': 'channel-events-field' },
      h('legend', { text: 'Events' }),
      h('p', { class: 'field-hint fieldset-hint', text: 'What this channel is told of. A new channel starts with failures only.' }),
      h('div', { class: 'event-grid' }, eventBoxes));
    const eventsError = fieldsetError(eventsField);

    // Servers: all of them (also those added later), or the chosen ones.
    const scopeName = uid('scope');
    const allId = uid('scope');
    const someId = uid('scope');
    const all = h('input', { type: 'radio', name: scopeName, id: allId, value: 'all', checked: c.servers === null });
    const some = h('input', { type: 'radio', name: scopeName, id: someId, value: 'some', checked: c.servers !== null, disabled: !servers.length && c.servers === null });
    const serverBoxes = servers.map((s) => checkbox(s.name, { name: 'server', value: s.identifier, checked: Boolean(c.servers && c.servers.includes(s.identifier)) }));
    const serverList = h('div', { class: 'server-picks', 'data-testid': 'channel-server-picks' }, serverBoxes);
    const serversField = h('fieldset', { class: 'fieldset choices', 'data-testid': 'channel-servers-field' },
      h('legend', { text: 'Servers' }),
      h('div', { class: 'check choice' }, all,
        h('div', { class: 'check-text' },
          h('label', { htmlFor: allId, text: 'All servers' }),
          h('p', { class: 'field-hint', text: 'Including servers added later.' }))),
      h('div', { class: 'check choice' }, some,
        h('div', { class: 'check-text' },
          h('label', { htmlFor: someId, text: 'Only the servers chosen below' }),
          servers.length ? null : h('p', { class: 'field-hint', text: 'There are no servers yet.' }))),
      serverList);
    const serversError = fieldsetError(serversField);

    const enabled = checkbox('Enabled', { name: 'is_enabled', isSwitch: true, checked: c.is_enabled, hint: 'A disabled channel keeps its settings but is sent nothing.' });

    function drawChoices() {
      eventsField.hidden = kind() === 'healthchecks';
      serverList.hidden = !some.checked;
    }
    for (const input of [...Object.values(kindRadios), all, some]) input.addEventListener('change', drawChoices);
    drawChoices();

    /**
     * Shows the API's field errors beside their fields and returns the control to focus;
     * null when one of them has no place in this form.
     */
    function showInline(form, err) {
      const fields = err instanceof ApiError && err.status === 422 ? err.fields : {};
      const names = Object.keys(fields);
      if (!names.length || !names.every((n) => ['name', 'url', 'events', 'servers'].includes(n))) return null;
      showFieldErrors(form, err);
      if (fields.events) eventsError(fields.events);
      if (fields.servers) serversError(fields.servers);
      return form.querySelector('[aria-invalid="true"]')
        || (fields.events ? eventBoxes[0].control : null)
        || (serverBoxes[0] ? serverBoxes[0].control : all);
    }

    /** A signing secret to show once this form has closed (and given focus back). */
    let reveal = null;
    formDialog({
      title: editing ? `Edit ${c.name}` : 'Add a notification channel',
      wide: true,
      testid: 'channel-dialog',
      body: [kindField, h('div', { class: 'form-grid' }, name, url), eventsField, serversField, enabled],
      submitLabel: editing ? 'Save changes' : 'Add channel',
      onSubmit: async (form) => {
        eventsError(null);
        serversError(null);
        const k = kind();
        const payload = { kind: k, name: name.control.value.trim(), is_enabled: enabled.control.checked };
        const address = url.control.value.trim();
        if (address || !editing) payload.url = address;
        if (k !== 'healthchecks') payload.events = eventBoxes.filter((b) => b.control.checked).map((b) => b.control.value);
        payload.servers = all.checked ? null : serverBoxes.filter((b) => b.control.checked).map((b) => b.control.value);
        if (payload.servers && !payload.servers.length) {
          serversError('Choose at least one server, or All servers.');
          (serverBoxes[0] ? serverBoxes[0].control : all).focus();
          return false;
        }
        let saved;
        try {
          saved = editing ? await api.patch(`${BASE}/${c.id}`, payload) : await api.post(BASE, payload);
        } catch (err) {
          // A field's problem is said once, beside it; anything else goes to the dialog's notices.
          const target = showInline(form, err);
          if (!target) throw err;
          target.focus();
          return false;
        }
        const s = saved.attributes;
        // A new webhook, or a channel that became one, has a secret the API shows only now.
        if (saved.meta && saved.meta.secret) reveal = { channel: s, secret: saved.meta.secret };
        tests.delete(s.id);
        notify(editing ? `${s.name} saved.` : `${s.name} added. Send it a test to check that it arrives.`, { type: 'success', container: pageNotices() });
        await load();
        return true;
      },
      onClose: () => {
        if (reveal) setTimeout(() => { if (!stopped) showSecret(reveal.channel, reveal.secret); });
      },
    });
  }

  load();
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}
