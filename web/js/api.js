// The JSON API client: sends the session's CSRF token on state-changing requests, turns the
// API's error envelope into an ApiError, and hands a 401 to the session-expiry handler.

let csrfToken = null;
let onUnauthorized = () => {};

export function setCsrfToken(token) {
  csrfToken = token || null;
}

/** Called with no arguments whenever the API answers 401 (the session is gone). */
export function setUnauthorizedHandler(fn) {
  onUnauthorized = fn;
}

export class ApiError extends Error {
  constructor(status, errors, { retryAfter = null, sessionExpired = false } = {}) {
    const list = Array.isArray(errors) && errors.length ? errors : [{ detail: `The request failed (HTTP ${status}).` }];
    super(list.map((e) => e.detail || e.code || 'Unknown error').join(' '));
    this.name = 'ApiError';
    this.status = status;
    this.errors = list;
    this.code = list[0].code || null;
    this.retryAfter = retryAfter;
    this.sessionExpired = sessionExpired;
  }

  get detail() {
    return this.message;
  }

  /** Field name -> message, for validation errors that name a field. */
  get fields() {
    const out = {};
    for (const e of this.errors) {
      const field = e.meta && e.meta.source_field;
      if (field) out[field] = out[field] ? `${out[field]} ${e.detail}` : e.detail;
    }
    return out;
  }
}

const MUTATING = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

/**
 * Calls the API. Resolves to the parsed JSON body, or null for an empty answer.
 * `options.auth === false` skips the 401 handling (used by the login form).
 */
export async function request(method, path, body, options = {}) {
  const headers = { Accept: 'application/json' };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (MUTATING.has(method) && csrfToken) headers['X-CSRF-Token'] = csrfToken;
  let response;
  try {
    response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: 'same-origin',
      cache: 'no-store',
    });
  } catch (err) {
    throw new ApiError(0, [{ code: 'NetworkError', detail: 'hoard could not be reached. Check that it is running and try again.' }]);
  }
  const text = await response.text();
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = null;
    }
  }
  if (response.ok) return data;
  const errors = data && Array.isArray(data.errors) ? data.errors : null;
  if (response.status === 401 && options.auth !== false) {
    onUnauthorized();
    throw new ApiError(401, errors || [{ detail: 'Your session has expired.' }], { sessionExpired: true });
  }
  const retry = response.headers.get('Retry-After');
  throw new ApiError(response.status, errors, { retryAfter: retry ? Number(retry) : null });
}

export const api = {
  get: (path, opts) => request('GET', path, undefined, opts),
  post: (path, body, opts) => request('POST', path, body === undefined ? {} : body, opts),
  put: (path, body, opts) => request('PUT', path, body, opts),
  patch: (path, body, opts) => request('PATCH', path, body, opts),
  del: (path, opts) => request('DELETE', path, undefined, opts),
};

/** Encodes one path segment. */
export const seg = (s) => encodeURIComponent(s);
