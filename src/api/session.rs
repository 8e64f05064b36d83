//! Browser sign-in: `POST /auth/login` sets an HttpOnly, SameSite=Strict session cookie and
//! returns the CSRF token the UI sends back on every state-changing request.

use super::fields::Fields;
use super::http::Response;
use super::{Ctx, wire};
use crate::auth;
use crate::error::{Error, Result};
use crate::model::event;
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
    // Another site can make a victim's browser send a form or text/plain body without
    // asking, but not a JSON one: requiring it stops login CSRF.
    if !ctx.req.is_json() {
        return Err(Error::UnsupportedMediaType(
            "Sign in with a JSON body (Content-Type: application/json).".into(),
        ));
    }
    let mut f = Fields::new(ctx.req.body_object()?);
    let username = f.required_string("username");
    let password = f.required_string("password");
    f.finish()?;
    let (username, password) = (username.unwrap_or_default(), password.unwrap_or_default());
    let ttl = ctx.app.config.session_ttl_secs;
    let (user, session) = auth::login(
        &*ctx.app.db.conn()?,
        &ctx.app.login_throttle,
        &auth::Login {
            username: &username,
            password: &password,
            address: ctx.req.ip.as_deref(),
        },
        ttl,
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
        store::activity::record(&conn, &ctx.actor(&caller), event::LOGOUT, None, &json!({}))?;
    }
    Ok(Response::empty(204).with_header(
        "Set-Cookie",
        format!("{COOKIE}=; Max-Age=0; {}", cookie_attributes(ctx)),
    ))
}
