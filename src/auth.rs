//! Who is asking and what they may do: password hashing, API keys, browser sessions, the
//! login throttle and the permission rules.

use crate::error::{Error, Result};
use crate::model::{Actor, ApiKey, Permission, Server, ServerStatus, Timestamp, User, event, now};
use crate::store::{self, Connection};
use argon2::Argon2;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use serde_json::json;
use sha2::{Digest, Sha256};
use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};
use subtle::ConstantTimeEq;

pub const KEY_PREFIX: &str = "ptlc_";
/// Random characters after the prefix in the public identifier.
const KEY_IDENTIFIER_CHARS: usize = 11;
/// Random characters of the secret part.
const KEY_SECRET_CHARS: usize = 32;

const BASE62: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// `n` characters drawn uniformly from [0-9A-Za-z] by the operating system's generator.
pub fn random_base62(n: usize) -> String {
    let mut out = String::with_capacity(n);
    let mut buf = [0u8; 64];
    while out.len() < n {
        getrandom::fill(&mut buf).expect("the operating system's random generator failed");
        // 248 = 4 * 62: rejecting bytes above it keeps every character equally likely.
        for &b in buf.iter().filter(|&&b| b < 248) {
            if out.len() == n {
                break;
            }
            out.push(BASE62[(b % 62) as usize] as char);
        }
    }
    out
}

pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut buf = [0u8; N];
    getrandom::fill(&mut buf).expect("the operating system's random generator failed");
    buf
}

pub fn sha256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

pub fn hash_password(password: &str) -> Result<String> {
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| Error::internal(format!("cannot hash the password: {e}")))
}

pub fn verify_password(hash: &str, password: &str) -> bool {
    Argon2::default()
        .verify_password(password.as_bytes(), hash)
        .is_ok()
}

/// Burns the time of one password check, so unknown usernames answer as slowly as known ones.
fn verify_dummy_password(password: &str) {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let hash = DUMMY.get_or_init(|| hash_password("not a real password").unwrap_or_default());
    verify_password(hash, password);
}

/// Rules a new password must meet.
pub fn check_password_strength(password: &str) -> Result<()> {
    if password.chars().count() < 8 {
        return Err(Error::invalid(
            "password",
            "min:8",
            "The password must be at least 8 characters long.",
        ));
    }
    if password.len() > 1024 {
        return Err(Error::invalid(
            "password",
            "max:1024",
            "The password must be at most 1024 bytes long.",
        ));
    }
    Ok(())
}

/// A freshly made API key: the full token to hand out once, and what is stored.
pub struct NewKey {
    pub token: String,
    pub identifier: String,
    pub secret_hash: [u8; 32],
}

pub fn generate_key() -> NewKey {
    let identifier = format!("{KEY_PREFIX}{}", random_base62(KEY_IDENTIFIER_CHARS));
    let secret = random_base62(KEY_SECRET_CHARS);
    NewKey {
        token: format!("{identifier}{secret}"),
        secret_hash: sha256(secret.as_bytes()),
        identifier,
    }
}

/// Splits a well-formed token into identifier and secret.
fn split_key(token: &str) -> Option<(&str, &str)> {
    let rest = token.strip_prefix(KEY_PREFIX)?;
    if rest.len() != KEY_IDENTIFIER_CHARS + KEY_SECRET_CHARS
        || !rest.bytes().all(|b| b.is_ascii_alphanumeric())
    {
        return None;
    }
    Some(token.split_at(KEY_PREFIX.len() + KEY_IDENTIFIER_CHARS))
}

/// The user a bearer token acts as, and its key; records the key's use.
pub fn authenticate_key(c: &Connection, token: &str, now: Timestamp) -> Result<(User, ApiKey)> {
    let (identifier, secret) = split_key(token).ok_or(Error::Unauthorized)?;
    let (key, stored_hash) =
        store::keys::by_identifier(c, identifier)?.ok_or(Error::Unauthorized)?;
    let given_hash = sha256(secret.as_bytes());
    if !bool::from(given_hash.as_slice().ct_eq(stored_hash.as_slice())) {
        return Err(Error::Unauthorized);
    }
    if claim_use_record(key.id, key.last_used_at, now) {
        store::keys::touch(c, key.id, now)?;
    }
    let user = store::users::by_id(c, key.user_id)?.ok_or(Error::Unauthorized)?;
    Ok((user, key))
}

/// Whether this request should record the key's use: at most once a minute per key, and by
/// one request only, so a burst of requests does not queue up on SQLite's write lock.
fn claim_use_record(key_id: i64, last_used_at: Option<Timestamp>, now: Timestamp) -> bool {
    static CLAIMS: std::sync::OnceLock<Mutex<HashMap<i64, Timestamp>>> = std::sync::OnceLock::new();
    if last_used_at.is_some_and(|t| now - t < 60) {
        return false;
    }
    let mut claims = CLAIMS
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    match claims.get(&key_id) {
        Some(claimed) if now - claimed < 60 => false,
        _ => {
            claims.insert(key_id, now);
            true
        }
    }
}

/// A new browser session: the cookie value to set and the CSRF token the UI must echo.
pub struct NewSession {
    pub cookie: String,
    pub csrf_token: String,
}

fn create_session(
    c: &Connection,
    user: &User,
    now: Timestamp,
    ttl_secs: u64,
) -> Result<NewSession> {
    let cookie = hex::encode(random_bytes::<32>());
    let csrf_token = hex::encode(random_bytes::<24>());
    store::sessions::insert(
        c,
        user.id,
        &sha256(cookie.as_bytes()),
        &csrf_token,
        now,
        now + ttl_secs as i64,
    )?;
    Ok(NewSession { cookie, csrf_token })
}

/// The session behind a cookie value, with its user.
pub fn authenticate_session(
    c: &Connection,
    cookie: &str,
    now: Timestamp,
) -> Result<(store::sessions::Session, User)> {
    if cookie.len() != 64 {
        return Err(Error::Unauthorized);
    }
    let session =
        store::sessions::find(c, &sha256(cookie.as_bytes()), now)?.ok_or(Error::Unauthorized)?;
    let user = store::users::by_id(c, session.user_id)?.ok_or(Error::Unauthorized)?;
    Ok((session, user))
}

/// Whether the CSRF header matches the session's token, compared in constant time.
pub fn csrf_matches(session: &store::sessions::Session, header: Option<&str>) -> bool {
    header.is_some_and(|h| bool::from(h.as_bytes().ct_eq(session.csrf_token.as_bytes())))
}

/// Failed logins a (username, address) pair may make per window.
const FAILURES_PER_NAME: usize = 5;
/// Failed logins one address may make per window, whatever the usernames.
const FAILURES_PER_ADDRESS: usize = 20;
/// Keys remembered before old ones are pruned, so a flood cannot grow memory without bound.
const MAX_TRACKED: usize = 10_000;

/// Counts failed logins per (username, client address) and per address, and refuses
/// further tries past a limit. Counting a username per address (not on its own) means no
/// client can lock a user out of logging in from elsewhere.
pub struct LoginThrottle {
    by_name: Failures,
    by_address: Failures,
    window: Duration,
}

/// Failure times per key, the oldest first.
struct Failures {
    times: Mutex<HashMap<String, VecDeque<Instant>>>,
    limit: usize,
}

impl Failures {
    fn new(limit: usize) -> Failures {
        Failures {
            times: Mutex::new(HashMap::new()),
            limit,
        }
    }

    fn retry_after(&self, key: &str, window: Duration) -> Option<u64> {
        let mut map = self.times.lock().unwrap_or_else(|e| e.into_inner());
        let times = map.get_mut(key)?;
        let now = Instant::now();
        while times
            .front()
            .is_some_and(|t| now.duration_since(*t) >= window)
        {
            times.pop_front();
        }
        if times.len() < self.limit {
            return None;
        }
        let oldest = *times.front()?;
        Some(
            window
                .saturating_sub(now.duration_since(oldest))
                .as_secs()
                .max(1),
        )
    }

    fn record(&self, key: String, window: Duration) {
        let mut map = self.times.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        if map.len() > MAX_TRACKED {
            // Forget failures past the window, then keys that are not locked out; a lockout
            // in force stays.
            map.retain(|_, times| {
                times.retain(|t| now.duration_since(*t) < window);
                times.len() >= self.limit
            });
        }
        map.entry(key).or_default().push_back(now);
    }

    fn clear(&self, key: &str) {
        self.times
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(key);
    }
}

impl Default for LoginThrottle {
    fn default() -> Self {
        LoginThrottle {
            by_name: Failures::new(FAILURES_PER_NAME),
            by_address: Failures::new(FAILURES_PER_ADDRESS),
            window: Duration::from_secs(60),
        }
    }
}

fn name_key(username: &str, address: &str) -> String {
    format!("{}\n{address}", username.to_lowercase())
}

impl LoginThrottle {
    /// Seconds to wait before `username` may try again from `address`, if either the pair or
    /// the address is locked out.
    pub fn retry_after(&self, username: &str, address: &str) -> Option<u64> {
        let by_name = self
            .by_name
            .retry_after(&name_key(username, address), self.window);
        let by_address = self.by_address.retry_after(address, self.window);
        by_name.max(by_address)
    }

    pub fn record_failure(&self, username: &str, address: &str) {
        self.by_name
            .record(name_key(username, address), self.window);
        self.by_address.record(address.to_string(), self.window);
    }

    /// Forgets the pair's failures after a successful login; the address keeps its count, so
    /// one good account does not reset guessing at others.
    pub fn clear(&self, username: &str, address: &str) {
        self.by_name.clear(&name_key(username, address));
    }
}

/// A browser sign-in: who, and from which client address (the connection's peer, never a
/// header a client could choose).
pub struct Login<'a> {
    pub username: &'a str,
    pub password: &'a str,
    pub address: Option<&'a str>,
}

/// Checks a sign-in against the throttle and the password, records it, and opens a session.
/// Unknown usernames take as long as wrong passwords, so timing does not tell which
/// accounts exist.
pub fn login(
    c: &Connection,
    throttle: &LoginThrottle,
    login: &Login,
    session_ttl_secs: u64,
) -> Result<(User, NewSession)> {
    // No account has such a name: refused before it can reach the throttle or the log.
    if crate::users::check_username(login.username).is_err() {
        return Err(Error::LoginFailed);
    }
    let address = login.address.unwrap_or("unknown");
    if let Some(retry_after) = throttle.retry_after(login.username, address) {
        return Err(Error::TooManyRequests {
            detail: format!(
                "Too many failed logins: try again in {}.",
                crate::units::duration_words(retry_after as i64)
            ),
            retry_after,
        });
    }
    let user = store::users::by_username(c, login.username)?;
    let verified = match &user {
        Some(u) => verify_password(&u.password_hash, login.password),
        None => {
            verify_dummy_password(login.password);
            false
        }
    };
    let ip = login.address.map(str::to_string);
    let Some(user) = user.filter(|_| verified) else {
        throttle.record_failure(login.username, address);
        store::activity::record(
            c,
            &Actor::Anonymous { ip },
            event::LOGIN_FAILED,
            None,
            &json!({"username": login.username}),
        )?;
        return Err(Error::LoginFailed);
    };
    throttle.clear(login.username, address);
    store::sessions::delete_expired(c, now())?;
    let session = create_session(c, &user, now(), session_ttl_secs)?;
    store::activity::record(c, &Actor::user(&user, ip), event::LOGIN, None, &json!({}))?;
    Ok((user, session))
}

/// What a user may do on one server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Access {
    /// Everything, on every server, suspended or not.
    Admin,
    /// Everything on their own server.
    Owner,
    Subuser(Vec<Permission>),
}

impl Access {
    pub fn has(&self, perm: Permission) -> bool {
        match self {
            Access::Admin | Access::Owner => true,
            Access::Subuser(perms) => perms.contains(&perm),
        }
    }

    /// Ok when the permission is held; a 403 otherwise.
    pub fn require(&self, perm: Permission) -> Result<()> {
        if self.has(perm) {
            Ok(())
        } else {
            Err(Error::permission())
        }
    }

    /// Ok unless the server is suspended and the caller is not an admin (409): a suspended
    /// server's users may look at its backups but not create, restore, delete, lock or
    /// download them.
    pub fn require_unsuspended(&self, server: &Server) -> Result<()> {
        if server.status == Some(ServerStatus::Suspended) && *self != Access::Admin {
            return Err(Error::Conflict(
                "This server is suspended: only an administrator can change or download its backups.".into(),
            ));
        }
        Ok(())
    }

    pub fn permissions(&self) -> Vec<Permission> {
        match self {
            Access::Admin | Access::Owner => Permission::ALL.to_vec(),
            Access::Subuser(perms) => perms.clone(),
        }
    }

    /// Admin or owner: whoever manages the server (its subusers, its hooks' output).
    pub fn is_full(&self) -> bool {
        matches!(self, Access::Admin | Access::Owner)
    }
}

/// The user's access to a server, or None when they may not even see it.
pub fn access(c: &Connection, user: &User, server: &Server) -> Result<Option<Access>> {
    if user.is_admin || server.owner_id == Some(user.id) {
        return Ok(access_given(user, server, None));
    }
    let subuser = store::subusers::permissions(c, server.id, user.id)?;
    Ok(access_given(user, server, subuser))
}

/// The user's access to a server, knowing their permissions on it as a subuser, if any.
pub fn access_given(
    user: &User,
    server: &Server,
    subuser_permissions: Option<Vec<Permission>>,
) -> Option<Access> {
    if user.is_admin {
        Some(Access::Admin)
    } else if server.owner_id == Some(user.id) {
        Some(Access::Owner)
    } else {
        subuser_permissions.map(Access::Subuser)
    }
}

/// Finds a server by UUID or short id that the user can see, else 404.
pub fn visible_server(c: &Connection, user: &User, identifier: &str) -> Result<(Server, Access)> {
    let server =
        store::servers::by_identifier(c, identifier)?.ok_or_else(|| Error::not_found("server"))?;
    match access(c, user, &server)? {
        Some(access) => Ok((server, access)),
        None => Err(Error::not_found("server")),
    }
}

pub fn require_admin(user: &User) -> Result<()> {
    if user.is_admin {
        Ok(())
    } else {
        Err(Error::Forbidden(
            "This action needs an administrator.".into(),
        ))
    }
}
