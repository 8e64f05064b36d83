// The sign-in page.

import { h, icon } from '../dom.js';
import { api, ApiError } from '../api.js';
import { field, busy, notify, showError, clearNotices } from '../ui.js';

export function render(ctx) {
  ctx.setTitle('Sign in');
  const username = field('Username', { name: 'username', type: 'text', autocomplete: 'username', required: true, spellcheck: false, autocapitalize: 'none' });
  const password = field('Password', { name: 'password', type: 'password', autocomplete: 'current-password', required: true });
  const submit = h('button', { type: 'submit', class: 'btn btn-primary btn-block' }, h('span', { class: 'btn-label', text: 'Sign in' }));
  const errors = h('div', { class: 'form-notices' });
  const form = h('form', { class: 'login-form', 'aria-labelledby': 'login-title' },
    errors, username, password, submit);

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    clearNotices(errors);
    try {
      const body = await busy(submit, () => api.post('/auth/login', {
        username: username.control.value.trim(),
        password: password.control.value,
      }, { auth: false }));
      clearNotices();
      ctx.onLogin(body.attributes, body.meta && body.meta.csrf_token);
    } catch (err) {
      if (err instanceof ApiError && err.status === 401) {
        notify('The username or password is not correct.', { type: 'error', container: errors });
        password.control.select();
      } else {
        showError(err, { container: errors });
      }
    }
  });

  ctx.view.append(h('section', { class: 'login' },
    h('div', { class: 'login-card card' },
      h('div', { class: 'login-brand' },
        h('img', { src: '/favicon.svg', alt: '', width: 48, height: 48 }),
        h('h1', { id: 'login-title', text: 'Sign in to hoard' }),
        h('p', { class: 'muted', text: 'Backups for your game servers.' })),
      form),
    h('p', { class: 'login-foot muted' }, icon('info'), ' Forgot your password? A hoard administrator can reset it.')));
  username.control.focus();
}
