// hoard's browser interface: session, layout and client-side routing.

import { h, icon, replace, clear } from './js/dom.js';
import { api, setCsrfToken, setUnauthorizedHandler, ApiError } from './js/api.js';
import { setNoticeArea, notify, showError, clearNotices } from './js/ui.js';
import * as format from './js/format.js';

const SIGNED_IN_KEY = 'hoard.signedIn';

const state = {
  user: null,
  cleanup: null,
  renderId: 0,
  expiredShown: false,
};

// Each page's module loads when it is first shown.
const routes = [
  { pattern: /^\/login\/?$/, load: () => import('./js/pages/login.js'), public: true, login: true },
  { pattern: /^\/(?:servers\/?)?$/, load: () => import('./js/pages/servers.js'), nav: 'servers' },
  { pattern: /^\/servers\/([^/]+)\/users\/?$/, load: () => import('./js/pages/subusers.js'), nav: 'servers' },
  { pattern: /^\/servers\/([^/]+)\/activity\/?$/, load: () => import('./js/pages/activity.js'), nav: 'servers' },
  { pattern: /^\/servers\/([^/]+)\/schedules\/?$/, load: () => import('./js/pages/schedules.js'), nav: 'servers' },
  { pattern: /^\/servers\/([^/]+)\/?$/, load: () => import('./js/pages/backups.js'), nav: 'servers' },
  { pattern: /^\/admin\/servers\/?$/, load: () => import('./js/pages/admin-servers.js'), admin: true, nav: 'admin-servers' },
  { pattern: /^\/admin\/users\/?$/, load: () => import('./js/pages/admin-users.js'), admin: true, nav: 'admin-users' },
  { pattern: /^\/admin\/notifications\/?$/, load: () => import('./js/pages/admin-notifications.js'), admin: true, nav: 'admin-notifications' },
  { pattern: /^\/account\/?$/, load: () => import('./js/pages/account.js'), nav: 'account' },
];

const view = document.getElementById('view');
const main = document.getElementById('main');
setNoticeArea(document.getElementById('notices'), document.getElementById('live'));

function currentPath() {
  return location.pathname + location.search;
}

export function navigate(path, { replace: replaceState = false, keepNotices = false } = {}) {
  if (path === currentPath() && !replaceState) {
    render({ keepNotices });
    return;
  }
  if (replaceState) history.replaceState(null, '', path);
  else history.pushState(null, '', path);
  render({ keepNotices });
}

function setUser(user, csrf) {
  state.user = user;
  setCsrfToken(csrf);
  if (user) localStorage.setItem(SIGNED_IN_KEY, '1');
  else localStorage.removeItem(SIGNED_IN_KEY);
  state.expiredShown = false;
  renderChrome();
}

/** The API said 401: the session is gone. Go to the login page, then come back here. */
function sessionExpired() {
  const wasSignedIn = Boolean(state.user);
  state.user = null;
  setCsrfToken(null);
  localStorage.removeItem(SIGNED_IN_KEY);
  renderChrome();
  if (location.pathname.startsWith('/login')) return;
  const next = currentPath();
  navigate(`/login?next=${encodeURIComponent(next)}`, { replace: true });
  if (wasSignedIn && !state.expiredShown) {
    state.expiredShown = true;
    notify('Your session has expired. Sign in again to continue where you were.', { type: 'warning', timeout: 0 });
  }
}
setUnauthorizedHandler(sessionExpired);

async function logout(btn) {
  btn.disabled = true;
  try {
    await api.post('/auth/logout', {}, { auth: false });
  } catch (err) {
    if (!(err instanceof ApiError && err.status === 401)) {
      btn.disabled = false;
      showError(err);
      return;
    }
  }
  setUser(null, null);
  navigate('/login', { replace: true });
  notify('You have signed out.', { type: 'success' });
}

function navLink(href, label, key, iconName) {
  const route = matchRoute(location.pathname);
  const current = route && route.route.nav === key;
  return h('a', { href, class: 'nav-link', 'aria-current': current ? 'page' : undefined }, icon(iconName), h('span', { text: label }));
}

function renderChrome() {
  const nav = document.getElementById('site-nav');
  const menu = document.getElementById('user-menu');
  const user = state.user;
  nav.hidden = !user;
  menu.hidden = !user;
  if (!user) {
    clear(nav);
    clear(menu);
    return;
  }
  replace(nav,
    navLink('/servers', 'Servers', 'servers', 'archive'),
    user.admin ? navLink('/admin/servers', 'Manage servers', 'admin-servers', 'server') : null,
    user.admin ? navLink('/admin/users', 'Users', 'admin-users', 'users') : null,
    user.admin ? navLink('/admin/notifications', 'Notifications', 'admin-notifications', 'bell') : null);
  const logoutBtn = h('button', { type: 'button', class: 'btn btn-ghost btn-small', 'data-testid': 'logout', 'aria-label': 'Log out' }, icon('logout'), h('span', { class: 'btn-label', text: 'Log out' }));
  logoutBtn.addEventListener('click', () => logout(logoutBtn));
  const route = matchRoute(location.pathname);
  replace(menu,
    h('a', { href: '/account', class: 'nav-link account-link', 'aria-current': route && route.route.nav === 'account' ? 'page' : undefined, 'data-testid': 'account-link' },
      icon('user'), h('span', { class: 'account-name', text: user.username }),
      user.admin ? h('span', { class: 'badge badge-accent badge-small', text: 'admin' }) : null),
    logoutBtn);
}

function matchRoute(pathname) {
  for (const route of routes) {
    const m = pathname.match(route.pattern);
    if (m) return { route, params: m.slice(1).map(decodeURIComponent) };
  }
  return null;
}

function notFound() {
  document.title = 'Not found · hoard';
  replace(view, h('section', { class: 'empty-state' },
    h('h1', { tabIndex: -1, text: 'Page not found' }),
    h('p', { text: 'There is nothing at this address.' }),
    h('a', { href: '/servers', class: 'btn btn-primary' }, 'Go to your servers')));
}

function forbidden() {
  document.title = 'Not allowed · hoard';
  replace(view, h('section', { class: 'empty-state' },
    h('h1', { tabIndex: -1, text: 'Administrators only' }),
    h('p', { text: 'This page is for hoard administrators.' }),
    h('a', { href: '/servers', class: 'btn btn-primary' }, 'Go to your servers')));
}

async function render({ keepNotices = false } = {}) {
  if (state.cleanup) {
    try { state.cleanup(); } catch (err) { console.warn(err); } // eslint-disable-line no-console
    state.cleanup = null;
  }
  state.renderId += 1;
  const id = state.renderId;
  // A dialog belongs to the page it was opened on.
  for (const dialog of document.querySelectorAll('dialog')) {
    if (dialog.open) dialog.close();
    dialog.remove();
  }
  if (!keepNotices) clearNotices();
  renderChrome();
  const match = matchRoute(location.pathname);
  const query = new URLSearchParams(location.search);
  if (!match) {
    if (!state.user) {
      navigate(`/login?next=${encodeURIComponent(currentPath())}`, { replace: true, keepNotices: true });
      return;
    }
    notFound();
    focusHeading();
    return;
  }
  const { route, params } = match;
  if (!route.public && !state.user) {
    navigate(`/login?next=${encodeURIComponent(currentPath())}`, { replace: true, keepNotices: true });
    return;
  }
  if (route.login && state.user) {
    navigate(safeNext(query.get('next')), { replace: true });
    return;
  }
  if (route.admin && !state.user.admin) {
    forbidden();
    focusHeading();
    return;
  }
  let page;
  replace(view, h('p', { class: 'loading', role: 'status', text: 'Loading…' }));
  try {
    page = await route.load();
  } catch (err) {
    if (state.renderId !== id) return;
    replace(view, h('section', { class: 'empty-state' },
      h('h1', { tabIndex: -1, text: 'This page could not be loaded' }),
      h('p', { class: 'muted', text: 'Its code could not be fetched from hoard. Check that hoard is running, then reload the page.' })));
    return;
  }
  if (state.renderId !== id) return;
  clear(view);
  const ctx = {
    view,
    params,
    query,
    user: state.user,
    navigate,
    format,
    isCurrent: () => state.renderId === id,
    setTitle: (title) => { document.title = title ? `${title} · hoard` : 'hoard'; },
    /** The server ended this session (e.g. after a password change): sign in again. */
    signedOut: (message) => {
      setUser(null, null);
      navigate(`/login?next=${encodeURIComponent(currentPath())}`, { replace: true });
      notify(message, { type: 'success', timeout: 0 });
    },
    onLogin: (user, csrf) => {
      setUser(user, csrf);
      navigate(safeNext(query.get('next')), { replace: true });
    },
  };
  const cleanup = page.render(ctx);
  state.cleanup = typeof cleanup === 'function' ? cleanup : null;
  focusHeading();
}

/** Only same-site paths are followed after login. */
function safeNext(next) {
  if (next && next.startsWith('/') && !next.startsWith('//') && !next.startsWith('/login')) return next;
  return '/servers';
}

let firstRender = true;
function focusHeading() {
  // On the first load the browser's own focus is kept; later the new page's title gets it.
  if (firstRender) {
    firstRender = false;
    return;
  }
  requestAnimationFrame(() => {
    const active = document.activeElement;
    if (active && active !== view && view.contains(active)) return;
    const heading = view.querySelector('h1');
    if (heading) {
      heading.tabIndex = -1;
      heading.focus({ preventScroll: false });
    } else {
      main.focus();
    }
  });
}

// Same-site links move within the app without reloading it.
document.addEventListener('click', (event) => {
  if (event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
  const link = event.target.closest('a[href]');
  if (!link || link.target || link.hasAttribute('download')) return;
  const url = new URL(link.href, location.href);
  if (url.origin !== location.origin || url.pathname.startsWith('/api/') || url.pathname.startsWith('/download/')) return;
  if (url.hash && url.pathname === location.pathname) return;
  event.preventDefault();
  navigate(url.pathname + url.search);
});

window.addEventListener('popstate', () => render());

// Relative times ("3 minutes ago", "in 3 h") stay fresh.
setInterval(() => {
  for (const el of document.querySelectorAll('time[data-relative]')) {
    const iso = el.getAttribute('datetime');
    el.textContent = el.dataset.relative === 'until' ? format.until(iso) : format.ago(iso);
  }
}, 20000);

async function boot() {
  if (localStorage.getItem(SIGNED_IN_KEY)) {
    try {
      const me = await api.get('/api/client/account', { auth: false });
      setUser(me.attributes, me.meta && me.meta.csrf_token);
    } catch (err) {
      if (err instanceof ApiError && err.status === 401) {
        const wasOnPrivatePage = !location.pathname.startsWith('/login');
        localStorage.removeItem(SIGNED_IN_KEY);
        if (wasOnPrivatePage) {
          state.expiredShown = true;
          notify('Your session has expired. Sign in again to continue where you were.', { type: 'warning', timeout: 0 });
        }
      } else {
        showError(err);
      }
    }
  }
  render({ keepNotices: true });
}

boot();
