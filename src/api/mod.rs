//! The HTTP API: requests from the transport ([`transport`]) are routed on method and path,
//! authenticated, and handed to the handlers, which parse and check the request and
//! then call domain code. Errors become the contract's wire format in one place
//! ([`http::error_response`]).

mod activity;
mod application;
mod client;
mod download;
mod fields;
pub mod http;
mod notifications;
mod schedules;
mod session;
mod transport;
pub mod wire;

use crate::app::App;
use crate::auth;
use crate::error::Error;
use crate::model::{User, now};
use crate::store::sessions::Session;
use http::{Failure, Method, Request, Response};
use std::panic::AssertUnwindSafe;

pub use download::file_name as download_file_name;
pub use transport::HttpServer;

/// Per-request context handed to handlers.
pub struct Ctx<'a> {
    pub app: &'a App,
    pub req: &'a Request,
}

/// The authenticated caller: a user, and the browser session when the cookie was used.
pub struct Caller {
    pub user: User,
    pub session: Option<Session>,
    /// The API key used, if any.
    pub api_key_id: Option<i64>,
}

impl Ctx<'_> {
    /// Authenticates by bearer key or session cookie; a cookie on a state-changing request
    /// must come with the session's CSRF token in `X-CSRF-Token`.
    pub fn caller(&self) -> Result<Caller, Error> {
        let conn = self.app.db.conn()?;
        if let Some(header) = self.req.header("authorization") {
            let token = header
                .strip_prefix("Bearer ")
                .or_else(|| header.strip_prefix("bearer "))
                .ok_or(Error::Unauthorized)?;
            let (user, key) = auth::authenticate_key(&conn, token.trim(), now())?;
            return Ok(Caller {
                user,
                session: None,
                api_key_id: Some(key.id),
            });
        }
        let cookie = self
            .req
            .cookie(session::COOKIE)
            .ok_or(Error::Unauthorized)?;
        let (session, user) = auth::authenticate_session(&conn, cookie, now())?;
        if self.req.method.is_mutating()
            && !auth::csrf_matches(&session, self.req.header("x-csrf-token"))
        {
            return Err(Error::Forbidden(
                "This request needs the session's CSRF token in the X-CSRF-Token header.".into(),
            ));
        }
        Ok(Caller {
            user,
            session: Some(session),
            api_key_id: None,
        })
    }

    pub fn actor(&self, caller: &Caller) -> crate::model::Actor {
        let ip = self.req.ip.clone();
        match caller.api_key_id {
            Some(key_id) => crate::model::Actor::ApiKey {
                user_id: caller.user.id,
                key_id,
                ip,
            },
            None => crate::model::Actor::user(&caller.user, ip),
        }
    }

    /// Base of absolute links: the configured public URL, else this request's host.
    pub fn base_url(&self) -> String {
        self.app
            .config
            .public_url
            .clone()
            .unwrap_or_else(|| self.req.base_url())
    }
}

/// Every route, with its path parameters.
enum Route<'a> {
    Login,
    Logout,
    ClientIndex,
    Permissions,
    Account,
    AccountPassword,
    AccountActivity,
    ApiKeys,
    ApiKey(&'a str),
    Server(&'a str),
    ServerActivity(&'a str),
    Backups(&'a str),
    Backup(&'a str, &'a str),
    BackupDownload(&'a str, &'a str),
    BackupRestore(&'a str, &'a str),
    BackupLock(&'a str, &'a str),
    BackupRename(&'a str, &'a str),
    BackupVerify(&'a str, &'a str),
    Subusers(&'a str),
    SubuserSuggestions(&'a str),
    Subuser(&'a str, &'a str),
    Schedules(&'a str),
    SchedulePreview(&'a str),
    Schedule(&'a str, &'a str),
    ScheduleExecute(&'a str, &'a str),
    Tasks(&'a str, &'a str),
    Task(&'a str, &'a str, &'a str),
    Retention(&'a str),
    RetentionPreview(&'a str),
    AppServers,
    AppServer(&'a str),
    AppUsers,
    AppUser(&'a str),
    Notifications,
    Notification(&'a str),
    NotificationTest(&'a str),
    Download(&'a str),
    Ui,
}

use Method::{Delete, Get, Head, Patch, Post, Put};

/// The route for a path, and the methods it answers; None for an unknown API path.
fn route<'a>(segs: &'a [&'a str]) -> Option<(Route<'a>, &'static [Method])> {
    Some(match segs {
        ["auth", "login"] => (Route::Login, &[Post]),
        ["auth", "logout"] => (Route::Logout, &[Post]),
        ["api", "client"] => (Route::ClientIndex, &[Get]),
        ["api", "client", "permissions"] => (Route::Permissions, &[Get]),
        ["api", "client", "account"] => (Route::Account, &[Get]),
        ["api", "client", "account", "password"] => (Route::AccountPassword, &[Put]),
        ["api", "client", "account", "activity"] => (Route::AccountActivity, &[Get]),
        ["api", "client", "account", "api-keys"] => (Route::ApiKeys, &[Get, Post]),
        ["api", "client", "account", "api-keys", id] => (Route::ApiKey(id), &[Delete]),
        ["api", "client", "servers", s] => (Route::Server(s), &[Get]),
        ["api", "client", "servers", s, "activity"] => (Route::ServerActivity(s), &[Get]),
        ["api", "client", "servers", s, "backups"] => (Route::Backups(s), &[Get, Post]),
        ["api", "client", "servers", s, "backups", b] => (Route::Backup(s, b), &[Get, Delete]),
        ["api", "client", "servers", s, "backups", b, "download"] => {
            (Route::BackupDownload(s, b), &[Get])
        }
        ["api", "client", "servers", s, "backups", b, "restore"] => {
            (Route::BackupRestore(s, b), &[Post])
        }
        ["api", "client", "servers", s, "backups", b, "lock"] => (Route::BackupLock(s, b), &[Post]),
        ["api", "client", "servers", s, "backups", b, "rename"] => {
            (Route::BackupRename(s, b), &[Put])
        }
        ["api", "client", "servers", s, "backups", b, "verify"] => {
            (Route::BackupVerify(s, b), &[Post])
        }
        ["api", "client", "servers", s, "users"] => (Route::Subusers(s), &[Get, Post]),
        ["api", "client", "servers", s, "users", "suggest"] => {
            (Route::SubuserSuggestions(s), &[Get])
        }
        ["api", "client", "servers", s, "users", u] => (Route::Subuser(s, u), &[Get, Post, Delete]),
        ["api", "client", "servers", s, "schedules"] => (Route::Schedules(s), &[Get, Post]),
        ["api", "client", "servers", s, "schedules", "preview"] => {
            (Route::SchedulePreview(s), &[Post])
        }
        ["api", "client", "servers", s, "schedules", id] => {
            (Route::Schedule(s, id), &[Get, Post, Delete])
        }
        ["api", "client", "servers", s, "schedules", id, "execute"] => {
            (Route::ScheduleExecute(s, id), &[Post])
        }
        ["api", "client", "servers", s, "schedules", id, "tasks"] => (Route::Tasks(s, id), &[Post]),
        ["api", "client", "servers", s, "schedules", id, "tasks", t] => {
            (Route::Task(s, id, t), &[Post, Delete])
        }
        ["api", "client", "servers", s, "retention"] => (Route::Retention(s), &[Get, Put]),
        ["api", "client", "servers", s, "retention", "preview"] => {
            (Route::RetentionPreview(s), &[Post])
        }
        ["api", "application", "servers"] => (Route::AppServers, &[Get, Post]),
        ["api", "application", "servers", s] => (Route::AppServer(s), &[Get, Patch, Delete]),
        ["api", "application", "users"] => (Route::AppUsers, &[Get, Post]),
        ["api", "application", "users", u] => (Route::AppUser(u), &[Get, Patch, Delete]),
        ["api", "application", "notifications"] => (Route::Notifications, &[Get, Post]),
        ["api", "application", "notifications", n] => {
            (Route::Notification(n), &[Get, Patch, Delete])
        }
        ["api", "application", "notifications", n, "test"] => (Route::NotificationTest(n), &[Post]),
        ["download", "backups", b] => (Route::Download(b), &[Get, Head]),
        ["api", ..] | ["auth", ..] | ["download", ..] => return None,
        _ => (Route::Ui, &[Get, Head]),
    })
}

fn dispatch(ctx: &Ctx) -> Result<Response, Failure> {
    let Some(segments) = &ctx.req.segments else {
        return Err(Error::not_found("route").into());
    };
    let segs: Vec<&str> = segments.iter().map(String::as_str).collect();
    let Some((route, allowed)) = route(&segs) else {
        return Err(Error::NotFound("The requested route does not exist.".into()).into());
    };
    let method = ctx.req.method;
    if !allowed.contains(&method) {
        return Err(Failure::MethodNotAllowed(allowed.to_vec()));
    }
    let response = match (route, method) {
        (Route::Login, _) => session::login(ctx)?,
        (Route::Logout, _) => session::logout(ctx)?,
        (Route::Download(b), _) => download::serve(ctx, b)?,
        (Route::Ui, _) => crate::web::serve(ctx.req),
        (route, method) => {
            let caller = ctx.caller()?;
            let c = &caller;
            // Taken before the handler reads anything: a change made meanwhile can only
            // make the next poll fetch again, never hide itself behind this tag.
            let tag = match (&route, method) {
                (Route::BackupDownload(..), _) => None,
                (_, Get) => Some(entity_tag(ctx, c)?),
                _ => None,
            };
            if let Some(tag) = &tag
                && ctx
                    .req
                    .header("if-none-match")
                    .is_some_and(|v| tag_matches(v, tag))
            {
                return Ok(Response::empty(304)
                    .with_header("ETag", tag.clone())
                    .with_header("Cache-Control", "private, no-cache"));
            }
            let response = match (route, method) {
                (Route::ClientIndex, _) => client::index(ctx, c)?,
                (Route::Permissions, _) => client::permissions(ctx, c)?,
                (Route::Account, _) => client::account(ctx, c)?,
                (Route::AccountPassword, _) => client::change_password(ctx, c)?,
                (Route::AccountActivity, _) => activity::account(ctx, c)?,
                (Route::ApiKeys, Get) => client::list_keys(ctx, c)?,
                (Route::ApiKeys, _) => client::create_key(ctx, c)?,
                (Route::ApiKey(id), _) => client::delete_key(ctx, c, id)?,
                (Route::Server(s), _) => client::server(ctx, c, s)?,
                (Route::ServerActivity(s), _) => activity::server(ctx, c, s)?,
                (Route::Backups(s), Get) => client::list_backups(ctx, c, s)?,
                (Route::Backups(s), _) => client::create_backup(ctx, c, s)?,
                (Route::Backup(s, b), Get) => client::show_backup(ctx, c, s, b)?,
                (Route::Backup(s, b), _) => client::delete_backup(ctx, c, s, b)?,
                (Route::BackupDownload(s, b), _) => client::download_link(ctx, c, s, b)?,
                (Route::BackupRestore(s, b), _) => client::restore_backup(ctx, c, s, b)?,
                (Route::BackupLock(s, b), _) => client::toggle_lock(ctx, c, s, b)?,
                (Route::BackupRename(s, b), _) => client::rename_backup(ctx, c, s, b)?,
                (Route::BackupVerify(s, b), _) => client::verify_backup(ctx, c, s, b)?,
                (Route::Subusers(s), Get) => client::list_subusers(ctx, c, s)?,
                (Route::Subusers(s), _) => client::add_subuser(ctx, c, s)?,
                (Route::SubuserSuggestions(s), _) => client::suggest_subusers(ctx, c, s)?,
                (Route::Subuser(s, u), Get) => client::show_subuser(ctx, c, s, u)?,
                (Route::Subuser(s, u), Post) => client::update_subuser(ctx, c, s, u)?,
                (Route::Subuser(s, u), _) => client::remove_subuser(ctx, c, s, u)?,
                (Route::Schedules(s), Get) => schedules::list(ctx, c, s)?,
                (Route::Schedules(s), _) => schedules::create(ctx, c, s)?,
                (Route::SchedulePreview(s), _) => schedules::preview(ctx, c, s)?,
                (Route::Schedule(s, id), Get) => schedules::show(ctx, c, s, id)?,
                (Route::Schedule(s, id), Post) => schedules::update(ctx, c, s, id)?,
                (Route::Schedule(s, id), _) => schedules::delete(ctx, c, s, id)?,
                (Route::ScheduleExecute(s, id), _) => schedules::execute(ctx, c, s, id)?,
                (Route::Tasks(s, id), _) => schedules::create_task(ctx, c, s, id)?,
                (Route::Task(s, id, t), Post) => schedules::update_task(ctx, c, s, id, t)?,
                (Route::Task(s, id, t), _) => schedules::delete_task(ctx, c, s, id, t)?,
                (Route::Retention(s), Get) => schedules::show_retention(ctx, c, s)?,
                (Route::Retention(s), _) => schedules::set_retention(ctx, c, s)?,
                (Route::RetentionPreview(s), _) => schedules::preview_retention(ctx, c, s)?,
                (Route::AppServers, Get) => application::list_servers(ctx, c)?,
                (Route::AppServers, _) => application::create_server(ctx, c)?,
                (Route::AppServer(s), Get) => application::show_server(ctx, c, s)?,
                (Route::AppServer(s), Patch) => application::update_server(ctx, c, s)?,
                (Route::AppServer(s), _) => application::delete_server(ctx, c, s)?,
                (Route::AppUsers, Get) => application::list_users(ctx, c)?,
                (Route::AppUsers, _) => application::create_user(ctx, c)?,
                (Route::AppUser(u), Get) => application::show_user(ctx, c, u)?,
                (Route::AppUser(u), Patch) => application::update_user(ctx, c, u)?,
                (Route::AppUser(u), _) => application::delete_user(ctx, c, u)?,
                (Route::Notifications, Get) => notifications::list(ctx, c)?,
                (Route::Notifications, _) => notifications::create(ctx, c)?,
                (Route::Notification(n), Get) => notifications::show(ctx, c, n)?,
                (Route::Notification(n), Patch) => notifications::update(ctx, c, n)?,
                (Route::Notification(n), _) => notifications::delete(ctx, c, n)?,
                (Route::NotificationTest(n), _) => notifications::test(ctx, c, n)?,
                (Route::Login | Route::Logout | Route::Download(_) | Route::Ui, _) => {
                    unreachable!("answered above")
                }
            };
            match tag {
                Some(tag) if response.status == 200 => response
                    .with_header("ETag", tag)
                    .with_header("Cache-Control", "private, no-cache"),
                _ => response,
            }
        }
    };
    Ok(response)
}

/// The entity tag of what a GET answers: it changes whenever anything stored changes (the
/// database's revision), and differs between callers, requests and runs of hoard.
fn entity_tag(ctx: &Ctx, caller: &Caller) -> Result<String, Error> {
    use sha2::{Digest, Sha256};
    static RUN: std::sync::OnceLock<[u8; 16]> = std::sync::OnceLock::new();
    let run = RUN.get_or_init(auth::random_bytes::<16>);
    let revision = crate::store::revision(&*ctx.app.db.conn()?)?;
    // Free space is shown too, and changes without the database: counted in steps of 64 MiB.
    let free_steps = ctx.app.storage().free_space().unwrap_or(0) >> 26;
    let mut hasher = Sha256::new();
    hasher.update(run);
    hasher.update(revision.to_le_bytes());
    hasher.update(free_steps.to_le_bytes());
    hasher.update(caller.user.id.to_le_bytes());
    hasher.update(ctx.req.path.as_bytes());
    for (name, value) in &ctx.req.query {
        hasher.update([0]);
        hasher.update(name.as_bytes());
        hasher.update([1]);
        hasher.update(value.as_bytes());
    }
    Ok(format!("\"{}\"", hex::encode(&hasher.finalize()[..12])))
}

/// Whether an If-None-Match header names `tag` (or is `*`).
fn tag_matches(header: &str, tag: &str) -> bool {
    header
        .split(',')
        .map(|t| t.trim().trim_start_matches("W/"))
        .any(|t| t == tag || t == "*")
}

/// Handles one request, turning errors and panics into the wire format.
pub fn handle(app: &App, req: &Request) -> Response {
    let ctx = Ctx { app, req };
    match std::panic::catch_unwind(AssertUnwindSafe(|| dispatch(&ctx))) {
        Ok(Ok(response)) => response,
        Ok(Err(failure)) => http::error_response(failure),
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            log::error!(
                "handler panicked on {} {}: {what}",
                req.method.as_str(),
                req.path
            );
            http::error_response(Failure::Domain(Error::Internal("handler panicked".into())))
        }
    }
}
