//! Browser sign-in: `POST /auth/login` sets an HttpOnly, SameSite=Strict session cookie and
//! returns the CSRF token the UI sends back on every state-changing request.

use super::fields::Fields;
use super::http::Response;
use super::{Ctx, wire};
use crate::auth;
use crate::error::{Error, Result};
use crate::model::{event, now};
use crate::store;
use serde_json::json;

pub const COOKIE: &str = "hoard_session";

fn cookie_attributes(ctx: &Ctx) -> &'static str {
    let secure = ctx
        .app
        .config
        .public_url
        .as_deref()
        .is_some_and(|u| u.starts_with("https://"))
        || ctx.req.header("x-forwarded-proto") == Some("https");
    if secure {
        "Path=/; HttpOnly; SameSite=Strict; Secure"
    } else {
        "Path=/; HttpOnly; SameSite=Strict"
    }
}

pub fn login(ctx: &Ctx) -> Result<Response> {
    let mut f = Fields::new(ctx.req.json_object()?);
    let username = f.required_string("username");
    let password = f.required_string("password");
    f.finish()?;
    let (username, password) = (username.unwrap_or_default(), password.unwrap_or_default());
    // No account has such a name: refused before it can reach the throttle or the log.
    if crate::users::check_username(&username).is_err() {
        return Err(Error::LoginFailed);
    }
    let throttle = &ctx.app.login_throttle;
    if let Some(retry_after) = throttle.retry_after(&username) {
        return Err(Error::TooManyRequests {
            detail: format!("Too many failed logins: try again in {retry_after} seconds."),
            retry_after,
        });
    }
    let conn = ctx.app.db.conn()?;
    let user = store::users::by_username(&conn, &username)?;
    let verified = match &user {
        Some(u) => auth::verify_password(&u.password_hash, &password),
        None => {
            auth::verify_dummy_password(&password);
            false
        }
    };
    let Some(user) = user.filter(|_| verified) else {
        throttle.record_failure(&username);
        store::activity::record(
            &conn,
            event::LOGIN_FAILED,
            None,
            None,
            &json!({"username": username}),
            ctx.req.ip.as_deref(),
            now(),
        )?;
        return Err(Error::LoginFailed);
    };
    throttle.clear(&username);
    let ttl = ctx.app.config.session_ttl_secs;
    store::sessions::delete_expired(&conn, now())?;
    let session = auth::create_session(&conn, &user, now(), ttl)?;
    store::activity::record(
        &conn,
        event::LOGIN,
        Some(user.id),
        None,
        &json!({}),
        ctx.req.ip.as_deref(),
        now(),
    )?;
    let mut body = wire::user(&user);
    body["meta"] = json!({"csrf_token": session.csrf_token});
    Ok(Response::json(200, &body).with_header(
        "Set-Cookie",
        format!(
            "{COOKIE}={}; Max-Age={ttl}; {}",
            session.cookie,
            cookie_attributes(ctx)
        ),
    ))
}

pub fn logout(ctx: &Ctx) -> Result<Response> {
    let caller = ctx.caller()?;
    if let Some(session) = &caller.session {
        let conn = ctx.app.db.conn()?;
        store::sessions::delete(&conn, session.id)?;
        store::activity::record(
            &conn,
            event::LOGOUT,
            Some(caller.user.id),
            None,
            &json!({}),
            ctx.req.ip.as_deref(),
            now(),
        )?;
    }
    Ok(Response::empty(204).with_header(
        "Set-Cookie",
        format!("{COOKIE}=; Max-Age=0; {}", cookie_attributes(ctx)),
    ))
}
