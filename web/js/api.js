// The JSON API client: sends the session's CSRF token on state-changing requests, turns the
// API's error envelope into an ApiError, and hands a 401 to the session-expiry handler.

let csrfToken = null;
let onUnauthorized = () => {};

/**
 * The last answer to each GET, by URL: `{ tag, text }`. A poll of that URL names the tag in
 * If-None-Match, and hoard answers 304 without a body when nothing stored changed, so
 * polling an unchanged page costs hoard no serialising and the network no payload. The
 * body is kept as text and parsed for each caller, who may then change it freely.
 *
 * Only polls are conditional: hoard's tag follows the servers, backups, restores, users,
 * subusers, schedules and notification channels, but not API keys, the activity log or
 * notification deliveries, whose lists a plain GET therefore always fetches in full.
 */
const answers = new Map();
/** Enough for the URLs one page polls and a few it visited; the oldest go first. */
const MAX_ANSWERS = 60;

function remember(path, tag, text) {
  answers.delete(path);
  answers.set(path, { tag, text });
  if (answers.size > MAX_ANSWERS) answers.delete(answers.keys().next().value);
}

export function setCsrfToken(token) {
  csrfToken = token || null;
  // A tag belongs to one user's session: another sign-in starts afresh.
  answers.clear();
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
 * Calls the API. Resolves to `{ data, changed }`: the parsed JSON body (null for an empty
 * answer), and whether it differs from the last answer to the same GET (false when hoard
 * answered 304 Not Modified to a GET made with `options.conditional`).
 * `options.auth === false` skips the 401 handling (used by the login form).
 */
export async function exchange(method, path, body, options = {}) {
  const headers = { Accept: 'application/json' };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (MUTATING.has(method) && csrfToken) headers['X-CSRF-Token'] = csrfToken;
  const known = method === 'GET' && options.conditional ? answers.get(path) : null;
  if (known) headers['If-None-Match'] = known.tag;
  let response;
  try {
    response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: 'same-origin',
      // The browser's own cache stays out of it: the conditional request above is ours.
      cache: 'no-store',
    });
  } catch (err) {
    throw new ApiError(0, [{ code: 'NetworkError', detail: 'hoard could not be reached. Check that it is running and try again.' }]);
  }
  if (response.status === 304 && known) return { data: parse(known.text), changed: false };
  const text = await response.text();
  const data = parse(text);
  if (response.ok) {
    const tag = method === 'GET' ? response.headers.get('ETag') : null;
    if (tag) remember(path, tag, text);
    else if (method === 'GET') answers.delete(path);
    return { data, changed: true };
  }
  const errors = data && Array.isArray(data.errors) ? data.errors : null;
  if (response.status === 401 && options.auth !== false) {
    onUnauthorized();
    throw new ApiError(401, errors || [{ detail: 'Your session has expired.' }], { sessionExpired: true });
  }
  const retry = response.headers.get('Retry-After');
  throw new ApiError(response.status, errors, { retryAfter: retry ? Number(retry) : null });
}

function parse(text) {
  if (!text) return null;
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}

/** Calls the API; resolves to the parsed JSON body, or null for an empty answer. */
export async function request(method, path, body, options) {
  return (await exchange(method, path, body, options)).data;
}

export const api = {
  get: (path, opts) => request('GET', path, undefined, opts),
  /**
   * A conditional GET for a page that polls: `{ data, changed }`, where `changed` is false
   * when hoard answered 304 and `data` is then the last answer again.
   */
  poll: (path, opts) => exchange('GET', path, undefined, { ...opts, conditional: true }),
  post: (path, body, opts) => request('POST', path, body === undefined ? {} : body, opts),
  put: (path, body, opts) => request('PUT', path, body, opts),
  patch: (path, body, opts) => request('PATCH', path, body, opts),
  del: (path, opts) => request('DELETE', path, undefined, opts),
};

/** Encodes one path segment. */
export const seg = (s) => encodeURIComponent(s);
