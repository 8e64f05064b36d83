// Shared interface pieces: notices, dialogs, busy buttons, copy buttons, badges and form
// fields.

import { h, icon, uid, clear } from './dom.js';
import { ApiError } from './api.js';

// ---------------------------------------------------------------------------------------
// Notices. The page's are toasts: they overlay the page in a corner and never move its
// content (a table row must not slide away under the pointer). Errors stay until dismissed;
// others fade, but not while the pointer or focus is on them. A dialog's notices are shown
// inside it, above its fields.

let pageNotices = null;
let liveRegion = null;
/** More toasts than this and the oldest go: a pile helps nobody. */
const MAX_TOASTS = 3;

export function setNoticeArea(el, live) {
  pageNotices = el;
  liveRegion = live;
}

/** Announces text to screen readers without showing anything. */
export function announce(text) {
  if (!liveRegion) return;
  liveRegion.textContent = '';
  setTimeout(() => { liveRegion.textContent = text; }, 30);
}

function openDialogNotices() {
  const open = [...document.querySelectorAll('dialog[open]')];
  const top = open[open.length - 1];
  return top ? top.querySelector('.dialog-notices') : null;
}

/** Removes a notice after `ms`, counting only the time nobody is pointing at or in it. */
function fadeAfter(notice, ms) {
  let left = ms;
  let started = Date.now();
  let timer = setTimeout(() => notice.remove(), left);
  const hold = () => {
    if (!timer) return;
    clearTimeout(timer);
    timer = null;
    left -= Date.now() - started;
  };
  const resume = () => {
    if (timer || notice.matches(':hover') || notice.contains(document.activeElement)) return;
    started = Date.now();
    timer = setTimeout(() => notice.remove(), Math.max(left, 2000));
  };
  notice.addEventListener('pointerenter', hold);
  notice.addEventListener('focusin', hold);
  notice.addEventListener('pointerleave', resume);
  notice.addEventListener('focusout', () => setTimeout(resume));
}

/**
 * Shows a message. `type`: error | success | info | warning. `container` defaults to the
 * open dialog's message area, else the page's toasts.
 */
export function notify(message, { type = 'info', container = null, title = null, timeout = null } = {}) {
  const area = container || openDialogNotices() || pageNotices;
  if (!area) return null;
  const isError = type === 'error';
  // The same message again replaces the one shown rather than stacking beside it.
  for (const old of area.querySelectorAll(':scope > .notice')) {
    if (old.dataset.message === `${type}:${title || ''}:${message}`) old.remove();
  }
  const notice = h('div', {
    class: ['notice', `notice-${type}`],
    role: isError ? 'alert' : 'status',
    'data-testid': `notice-${type}`,
    'data-message': `${type}:${title || ''}:${message}`,
  },
  icon(isError ? 'alert' : type === 'success' ? 'check' : type === 'warning' ? 'warning' : 'info', 'notice-icon'),
  h('div', { class: 'notice-text' },
    title ? h('strong', { class: 'notice-title', text: title }) : null,
    h('p', { class: 'notice-message', text: message })),
  h('button', {
    type: 'button',
    class: 'icon-btn notice-close',
    'aria-label': 'Dismiss',
    title: 'Dismiss',
    on: { click: () => notice.remove() },
  }, icon('x')));
  area.append(notice);
  if (area === pageNotices) {
    const shown = area.querySelectorAll(':scope > .notice');
    for (let i = 0; i < shown.length - MAX_TOASTS; i++) shown[i].remove();
  }
  const ms = timeout ?? (type === 'success' || type === 'info' ? 8000 : null);
  if (ms) fadeAfter(notice, ms);
  return notice;
}

/** Shows an error (an ApiError's detail, or any error's message); ignores expired sessions. */
export function showError(err, options = {}) {
  if (err instanceof ApiError && err.sessionExpired) return null;
  if (!(err instanceof ApiError)) console.warn(err); // eslint-disable-line no-console
  let message = err && err.message ? err.message : String(err);
  if (err instanceof ApiError && err.status === 429 && err.retryAfter) {
    if (!/try again/i.test(message)) message += ` Try again in ${err.retryAfter} s.`;
  }
  return notify(message, { ...options, type: 'error' });
}

export function clearNotices(container = pageNotices) {
  if (container) clear(container);
}

// ---------------------------------------------------------------------------------------
// Buttons

/** A button; `icon` adds an icon before the label, `iconOnly` keeps the label for AT only. */
export function button(label, { kind = 'secondary', iconName = null, iconOnly = false, type = 'button', onClick = null, attrs = {} } = {}) {
  const btn = h('button', {
    type,
    ...attrs,
    class: ['btn', `btn-${kind}`, iconOnly && 'btn-icon', attrs.class],
    ...(iconOnly ? { 'aria-label': label, 'data-tip': attrs['data-tip'] || label } : {}),
  },
  iconName ? icon(iconName) : null,
  iconOnly ? null : h('span', { class: 'btn-label', text: label }));
  if (onClick) btn.addEventListener('click', onClick);
  return btn;
}

/**
 * A row's actions. Where the pointer can hover, each is an icon button named by a tooltip;
 * on narrow and touch screens, which have no tooltips, one "Actions" button opens a menu
 * that names each action and says why one is unavailable. `items` lists
 * `{ key, label, name, iconName, kind, reason, run(btn) }`, or `{ key, label, name,
 * iconName, href }` for a link: `label` is shown, `name` (the label by default) is the icon
 * button's accessible name when the label needs the row's name beside it. `name` names the
 * row; `focusKey` tells its controls from other rows' across a redraw.
 */
export function rowActions(items, name, focusKey) {
  const wrap = h('div', { class: 'row-actions' });
  for (const item of items) {
    if (item.href) {
      wrap.append(h('a', {
        href: item.href,
        class: 'btn btn-ghost btn-icon row-action',
        'aria-label': item.name || item.label,
        'data-tip': item.label,
        'data-focus-key': `${item.key}:${focusKey}`,
        'data-action': item.key,
      }, icon(item.iconName)));
      continue;
    }
    const btn = button(item.name || item.label, {
      kind: item.kind || 'ghost',
      iconName: item.iconName,
      iconOnly: true,
      attrs: { class: 'row-action', 'data-tip': item.label, 'data-focus-key': `${item.key}:${focusKey}`, 'data-action': item.key },
    });
    setUnavailable(btn, item.reason || null);
    btn.addEventListener('click', () => { if (!explainIfUnavailable(btn)) item.run(btn); });
    wrap.append(btn);
  }
  if (items.length) wrap.append(actionsMenuButton(items, name, focusKey));
  return wrap;
}

function actionsMenuButton(items, name, focusKey) {
  const trigger = h('button', {
    type: 'button',
    class: 'btn btn-secondary btn-small row-menu-btn',
    'aria-haspopup': 'menu',
    'aria-expanded': 'false',
    'aria-label': `Actions for ${name}`,
    'data-focus-key': `menu:${focusKey}`,
    'data-testid': 'row-menu',
  }, h('span', { class: 'btn-label', text: 'Actions' }), icon('more', 'icon-more'));
  trigger.addEventListener('click', () => openMenu(trigger, items, name));
  return trigger;
}

/** Opens the menu of `items` under `trigger`, in the top layer so no card clips it. */
function openMenu(trigger, items, name) {
  const entries = items.map((item) => {
    const entry = h(item.href ? 'a' : 'button', {
      type: item.href ? undefined : 'button',
      href: item.href,
      role: 'menuitem',
      class: ['row-menu-item', item.kind === 'ghost-danger' && 'is-danger'],
      'data-menu-action': item.key,
      'aria-disabled': item.reason ? 'true' : undefined,
      tabIndex: -1,
    }, icon(item.iconName), h('span', { class: 'row-menu-text' },
      h('span', { class: 'row-menu-label', text: item.label }),
      item.reason ? h('span', { class: 'row-menu-reason', text: item.reason }) : null));
    entry.addEventListener('click', () => {
      if (item.reason) return;
      menu.hidePopover();
      // A link is followed by the app's own navigation.
      if (item.run) item.run(trigger);
    });
    return entry;
  });
  const menu = h('div', { class: 'row-menu', role: 'menu', popover: 'auto', 'aria-label': `Actions for ${name}`, 'data-testid': 'row-menu-list' }, entries);
  const move = (delta) => {
    const i = entries.indexOf(document.activeElement);
    entries[(i + delta + entries.length) % entries.length].focus();
  };
  menu.addEventListener('keydown', (e) => {
    if (e.key === 'ArrowDown') move(1);
    else if (e.key === 'ArrowUp') move(-1);
    else if (e.key === 'Home') entries[0].focus();
    else if (e.key === 'End') entries[entries.length - 1].focus();
    else if (e.key === 'Tab') menu.hidePopover();
    else return;
    e.preventDefault();
  });
  menu.addEventListener('toggle', (e) => {
    if (e.newState !== 'closed') return;
    trigger.setAttribute('aria-expanded', 'false');
    const focusWasInside = menu.contains(document.activeElement) || document.activeElement === document.body;
    menu.remove();
    if (!focusWasInside) return;
    // Back to the button, or to its twin if a refresh redrew the row meanwhile.
    const target = trigger.isConnected ? trigger : document.querySelector(`[data-focus-key="${CSS.escape(trigger.dataset.focusKey)}"]`);
    if (target) target.focus();
  });
  document.body.append(menu);
  menu.showPopover();
  trigger.setAttribute('aria-expanded', 'true');
  const rect = trigger.getBoundingClientRect();
  const width = menu.offsetWidth;
  const height = menu.offsetHeight;
  const left = Math.min(Math.max(8, rect.right - width), window.innerWidth - width - 8);
  const below = rect.bottom + 4 + height <= window.innerHeight - 8;
  menu.style.left = `${left}px`;
  menu.style.top = `${below ? rect.bottom + 4 : Math.max(8, rect.top - 4 - height)}px`;
  entries[0].focus();
}

/** Runs `fn` with `btn` disabled and marked busy; returns what `fn` returns. */
export async function busy(btn, fn) {
  const buttons = Array.isArray(btn) ? btn : [btn];
  const before = buttons.map((b) => b && b.disabled);
  for (const b of buttons) {
    if (!b) continue;
    b.disabled = true;
    b.setAttribute('aria-busy', 'true');
    b.classList.add('is-busy');
  }
  try {
    return await fn();
  } finally {
    buttons.forEach((b, i) => {
      if (!b) return;
      b.disabled = before[i];
      b.removeAttribute('aria-busy');
      b.classList.remove('is-busy');
    });
  }
}

/** Marks a button unavailable while keeping it focusable so its reason can be read. */
export function setUnavailable(btn, reason) {
  if (reason) {
    btn.setAttribute('aria-disabled', 'true');
    btn.dataset.tip = reason;
    btn.title = reason;
  } else {
    btn.removeAttribute('aria-disabled');
  }
  return btn;
}

export function isUnavailable(btn) {
  return btn.getAttribute('aria-disabled') === 'true';
}

/**
 * For a click on an unavailable button: shows why (touch screens have no tooltips) and
 * returns true; returns false when the button is available.
 */
export function explainIfUnavailable(btn) {
  if (!isUnavailable(btn)) return false;
  const reason = btn.dataset.tip || btn.title;
  if (reason) notify(reason, { type: 'info', timeout: 6000 });
  return true;
}

async function writeClipboard(text) {
  if (navigator.clipboard && window.isSecureContext) {
    try {
      await navigator.clipboard.writeText(text);
      return true;
    } catch {
      // Fall back below (the permission can be refused).
    }
  }
  const area = h('textarea', { class: 'clipboard-helper', readOnly: true, value: text });
  document.body.append(area);
  area.select();
  let ok = false;
  try {
    ok = document.execCommand('copy');
  } catch {
    ok = false;
  }
  area.remove();
  return ok;
}

/** An icon button that copies `text` and confirms it. */
export function copyButton(text, label = 'Copy') {
  const btn = h('button', {
    type: 'button',
    class: 'btn btn-ghost btn-icon btn-copy',
    'aria-label': label,
    'data-tip': label,
    'data-copy': text,
  }, icon('copy'));
  btn.addEventListener('click', async () => {
    const ok = await writeClipboard(text);
    btn.classList.toggle('is-copied', ok);
    btn.dataset.tip = ok ? 'Copied' : 'Copy failed: select the text instead';
    clear(btn).append(icon(ok ? 'check' : 'copy'));
    announce(ok ? 'Copied to the clipboard.' : 'Copying failed.');
    setTimeout(() => {
      btn.classList.remove('is-copied');
      btn.dataset.tip = label;
      clear(btn).append(icon('copy'));
    }, 1800);
  });
  return btn;
}

export function badge(text, kind = 'neutral', attrs = {}) {
  return h('span', { class: ['badge', `badge-${kind}`], ...attrs }, text);
}

// ---------------------------------------------------------------------------------------
// Polling

/**
 * Runs `fn` now, then every `ms` while the page is visible, so it reflects changes made
 * elsewhere: never while the tab is hidden, and at once on coming back if a run is due.
 * Runs never overlap and start at least `ms` apart. Returns `{ now, stop }`: `now()` runs
 * it at once (after the user changed something) and resolves when that run is over.
 * `fn` handles its own errors: a failed run is shown by the page, and the next one comes.
 */
export function poller(fn, ms = 2000) {
  let timer = null;
  let running = null;
  let again = false;
  let stopped = false;
  let lastStart = 0;

  function plan() {
    clearTimeout(timer);
    timer = null;
    if (stopped || running || document.visibilityState === 'hidden') return;
    timer = setTimeout(now, Math.max(0, lastStart + ms - Date.now()));
  }

  function now() {
    if (stopped) return Promise.resolve();
    if (running) {
      again = true;
      return running;
    }
    clearTimeout(timer);
    running = (async () => {
      do {
        again = false;
        lastStart = Date.now();
        await fn();
      } while (again && !stopped);
    })().finally(() => {
      running = null;
      plan();
    });
    return running;
  }

  const onVisibility = () => plan();
  document.addEventListener('visibilitychange', onVisibility);
  now();
  return {
    now,
    stop() {
      stopped = true;
      clearTimeout(timer);
      document.removeEventListener('visibilitychange', onVisibility);
    },
  };
}

// ---------------------------------------------------------------------------------------
// Form fields

/**
 * A labelled control. `control` is an element or an options object for an <input>.
 * Returns the wrapper; the control is `wrapper.control`.
 */
export function field(label, control, { hint = null, id = null, optional = false, className = '' } = {}) {
  const input = control instanceof Element ? control : h('input', control);
  input.id = input.id || id || uid('f');
  const hintId = hint ? `${input.id}-hint` : null;
  const errorId = `${input.id}-error`;
  if (hintId) input.setAttribute('aria-describedby', hintId);
  const wrapper = h('div', { class: ['field', className] },
    h('label', { htmlFor: input.id, class: 'field-label' }, label,
      optional ? h('span', { class: 'field-optional', text: ' (optional)' }) : null),
    input,
    hint ? h('p', { id: hintId, class: 'field-hint' }, hint) : null,
    h('p', { id: errorId, class: 'field-error', hidden: true }));
  wrapper.control = input;
  return wrapper;
}

/** A checkbox (or switch) with its label beside it and an optional explanation. */
export function checkbox(label, { name, checked = false, hint = null, isSwitch = false, disabled = false, value = null } = {}) {
  const id = uid('c');
  const hintId = hint ? `${id}-hint` : null;
  const input = h('input', {
    type: 'checkbox', id, name, checked, disabled,
    value: value ?? undefined,
    role: isSwitch ? 'switch' : undefined,
    class: isSwitch ? 'switch' : undefined,
    'aria-describedby': hintId || undefined,
  });
  const wrapper = h('div', { class: ['check', isSwitch && 'check-switch'] },
    input,
    h('div', { class: 'check-text' },
      h('label', { htmlFor: id, text: label }),
      hint ? h('p', { id: hintId, class: 'field-hint' }, hint) : null));
  wrapper.control = input;
  return wrapper;
}

export function select(options, { name, value = '' } = {}) {
  return h('select', { name },
    options.map(([v, text]) => h('option', { value: v, selected: v === value, text })));
}

/**
 * Shows the API's per-field messages next to the fields of `form`; returns the names of the
 * fields that got their message.
 */
export function showFieldErrors(form, err) {
  clearFieldErrors(form);
  const placed = new Set();
  if (!(err instanceof ApiError)) return placed;
  for (const [name, message] of Object.entries(err.fields)) {
    const input = form.querySelector(`[name="${CSS.escape(name)}"]`);
    if (!input) continue;
    input.setAttribute('aria-invalid', 'true');
    const errorEl = document.getElementById(`${input.id}-error`);
    if (errorEl) {
      errorEl.textContent = message;
      errorEl.hidden = false;
      const described = (input.getAttribute('aria-describedby') || '').split(' ').filter(Boolean);
      if (!described.includes(errorEl.id)) input.setAttribute('aria-describedby', [...described, errorEl.id].join(' '));
      placed.add(name);
    }
  }
  return placed;
}

/**
 * Shows a failed form's error once: each message that names a field beside that field, and
 * only the others in `container`.
 */
export function showFormError(form, err, container) {
  const placed = showFieldErrors(form, err);
  if (!placed.size) return showError(err, { container });
  const rest = err.errors.filter((e) => !(e.meta && placed.has(e.meta.source_field)));
  if (!rest.length) return null;
  return notify(rest.map((e) => e.detail || e.code).join(' '), { type: 'error', container });
}

export function clearFieldErrors(form) {
  for (const input of form.querySelectorAll('[aria-invalid="true"]')) input.removeAttribute('aria-invalid');
  for (const el of form.querySelectorAll('.field-error')) {
    el.hidden = true;
    el.textContent = '';
  }
}

// ---------------------------------------------------------------------------------------
// Dialogs

/**
 * Opens a modal dialog holding a form. `onSubmit(form, ctx)` runs with the submit button
 * busy; a thrown error is shown inside the dialog; resolving closes it, unless it returns
 * `false`. Focus starts in the first field, else on the submit button; a destructive one
 * (`submitKind: 'danger'`) starts on Cancel, so a stray or repeated Enter changes nothing.
 * Returns { dialog, form, close }.
 */
export function formDialog({
  title, intro = null, body = [], submitLabel = 'Save', submitKind = 'primary',
  cancelLabel = 'Cancel', onSubmit, testid = null, wide = false, onClose = null, focusCancel = submitKind === 'danger',
}) {
  const titleId = uid('dlg');
  const opener = document.activeElement;
  const notices = h('div', { class: 'dialog-notices' });
  const submit = h('button', { type: 'submit', class: ['btn', `btn-${submitKind}`] }, h('span', { class: 'btn-label', text: submitLabel }));
  const cancel = h('button', { type: 'button', class: 'btn btn-secondary', text: cancelLabel });
  const form = h('form', { class: 'dialog-form' },
    h('header', { class: 'dialog-head' },
      h('h2', { id: titleId, text: title }),
      h('button', { type: 'button', class: 'icon-btn dialog-x', 'aria-label': 'Close', title: 'Close', on: { click: () => close() } }, icon('x'))),
    h('div', { class: 'dialog-body' },
      notices,
      intro ? (typeof intro === 'string' ? h('p', { class: 'dialog-intro', text: intro }) : intro) : null,
      body),
    h('footer', { class: 'dialog-actions' }, cancel, submit));
  const dialog = h('dialog', {
    class: ['dialog', wide && 'dialog-wide'],
    'aria-labelledby': titleId,
    'data-testid': testid || undefined,
  }, form);
  let closed = false;
  function close() {
    if (closed) return;
    closed = true;
    if (dialog.open) dialog.close();
    dialog.remove();
    if (onClose) onClose();
    // Back to the control that opened the dialog, or its re-drawn twin.
    let target = opener && opener.isConnected ? opener : null;
    if (!target && opener && opener.dataset && opener.dataset.focusKey) {
      target = document.querySelector(`[data-focus-key="${CSS.escape(opener.dataset.focusKey)}"]`);
    }
    if (target && typeof target.focus === 'function') target.focus();
  }
  cancel.addEventListener('click', close);
  dialog.addEventListener('close', close);
  dialog.addEventListener('cancel', (e) => {
    if (submit.disabled && submit.classList.contains('is-busy')) e.preventDefault();
  });
  // Enter on a checkbox toggles it, as Space does, instead of submitting the whole form.
  form.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && e.target instanceof HTMLInputElement && (e.target.type === 'checkbox' || e.target.type === 'radio')) {
      e.preventDefault();
      if (e.target.type === 'checkbox' || !e.target.checked) e.target.click();
    }
  });
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    if (submit.classList.contains('is-busy')) return;
    clear(notices);
    clearFieldErrors(form);
    try {
      const result = await busy([submit, cancel], () => onSubmit(form, { dialog, close, notices, submit }));
      if (result !== false) close();
    } catch (err) {
      showFormError(form, err, notices);
      const invalid = form.querySelector('[aria-invalid="true"]');
      if (invalid) invalid.focus();
    }
  });
  document.body.append(dialog);
  dialog.showModal();
  const first = form.querySelector('.dialog-body input:not([type=hidden]):not([disabled]), .dialog-body textarea, .dialog-body select');
  if (focusCancel) cancel.focus();
  else if (first) first.focus();
  else submit.focus();
  return { dialog, form, close, submit, notices };
}

/** A confirmation dialog; `onConfirm` runs with the confirm button busy. */
export function confirmDialog({ title, message, confirmLabel = 'Confirm', danger = false, onConfirm, testid = null, extra = [], focusCancel = danger }) {
  return formDialog({
    focusCancel,
    title,
    intro: typeof message === 'string' ? h('p', { class: 'dialog-intro', text: message }) : message,
    body: extra,
    submitLabel: confirmLabel,
    submitKind: danger ? 'danger' : 'primary',
    onSubmit: (form, ctx) => onConfirm(form, ctx),
    testid,
  });
}

/** Keeps keyboard focus on the "same" control across a re-render, by data-focus-key. */
export function keepFocus(container, fn) {
  const active = document.activeElement;
  const key = active && container.contains(active) ? active.dataset.focusKey : null;
  fn();
  if (key && (!document.activeElement || document.activeElement === document.body || !container.contains(document.activeElement))) {
    const again = container.querySelector(`[data-focus-key="${CSS.escape(key)}"]`);
    if (again) again.focus({ preventScroll: true });
  }
}

/** A <time> that shows a relative time and the exact one on hover; kept fresh by the app. */
export function timeAgo(iso, ago, exact) {
  if (!iso) return h('span', { class: 'muted', text: '—' });
  return h('time', { datetime: iso, title: exact(iso), 'data-relative': '', text: ago(iso) });
}
