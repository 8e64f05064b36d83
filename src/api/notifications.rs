//! `/api/application/notifications`: notification channels, for admins only. URLs and
//! secrets are shown masked once saved; a webhook's signing secret is shown once, when the
//! channel is created.

use super::fields::Fields;
use super::http::Response;
use super::{Caller, Ctx, wire};
use crate::auth;
use crate::error::{Error, Result};
use crate::notify::{self, ChannelRequest};
use serde_json::json;

fn id(text: &str) -> Result<i64> {
    text.parse()
        .map_err(|_| Error::not_found("notification channel"))
}

fn request(ctx: &Ctx) -> Result<ChannelRequest> {
    let mut f = Fields::new(ctx.req.body_object()?);
    let request = ChannelRequest {
        name: f.string("name"),
        kind: f.string("kind"),
        url: f.string("url"),
        secret: f.string("secret"),
        events: f.string_list("events"),
        servers: f.nullable_string_list("servers"),
        is_enabled: f.bool("is_enabled"),
    };
    f.finish()?;
    Ok(request)
}

fn item(ctx: &Ctx, channel: &crate::store::notifications::Channel) -> Result<serde_json::Value> {
    let servers = notify::server_identifiers(&*ctx.app.db.conn()?, channel)?;
    Ok(wire::notification_channel(channel, servers))
}

pub fn list(ctx: &Ctx, caller: &Caller) -> Result<Response> {
    auth::require_admin(&caller.user)?;
    let channels = notify::list(&*ctx.app.db.conn()?)?;
    let items = channels
        .iter()
        .map(|c| item(ctx, c))
        .collect::<Result<Vec<_>>>()?;
    let mut body = wire::list(items);
    body["meta"] = json!({"events": notify::Event::CHOOSABLE.map(|e| e.as_str())});
    Ok(Response::json(200, &body))
}

pub fn show(ctx: &Ctx, caller: &Caller, channel: &str) -> Result<Response> {
    auth::require_admin(&caller.user)?;
    let channel = notify::get(&*ctx.app.db.conn()?, id(channel)?)?;
    Ok(Response::json(200, &item(ctx, &channel)?))
}

pub fn create(ctx: &Ctx, caller: &Caller) -> Result<Response> {
    auth::require_admin(&caller.user)?;
    let request = request(ctx)?;
    let channel = notify::create(&*ctx.app.db.conn()?, &request)?;
    let mut body = item(ctx, &channel)?;
    // Shown once, so the receiver can be set up to check signatures.
    if let Some(secret) = &channel.secret {
        body["meta"] = json!({"secret": secret});
    }
    Ok(Response::json(200, &body))
}

pub fn update(ctx: &Ctx, caller: &Caller, channel: &str) -> Result<Response> {
    auth::require_admin(&caller.user)?;
    let request = request(ctx)?;
    let conn = ctx.app.db.conn()?;
    let id = id(channel)?;
    let before = notify::get(&conn, id)?;
    let channel = notify::update(&conn, id, &request)?;
    let mut body = item(ctx, &channel)?;
    // A channel that became a webhook got a secret made for it: shown this once.
    if before.secret.is_none()
        && request.secret.is_none()
        && let Some(secret) = &channel.secret
    {
        body["meta"] = json!({"secret": secret});
    }
    Ok(Response::json(200, &body))
}

pub fn delete(ctx: &Ctx, caller: &Caller, channel: &str) -> Result<Response> {
    auth::require_admin(&caller.user)?;
    notify::delete(&*ctx.app.db.conn()?, id(channel)?)?;
    Ok(Response::empty(204))
}

/// Sends a test notification now; 200 with whether it arrived and, if not, why.
pub fn test(ctx: &Ctx, caller: &Caller, channel: &str) -> Result<Response> {
    auth::require_admin(&caller.user)?;
    let sent = notify::send_test(ctx.app, id(channel)?)?;
    Ok(Response::json(
        200,
        &wire::item(
            "notification_test",
            json!({"delivered": sent.is_ok(), "error": sent.err()}),
        ),
    ))
}
