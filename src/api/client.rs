//! `/api/client`: the Pterodactyl client API (servers, account, API keys, backups,
//! subusers; activity is in [`super::activity`]). Handlers parse and check the request, then call domain code.

use super::fields::Fields;
use super::http::Response;
use super::{Caller, Ctx, wire};
use crate::auth::{self, Access};
use crate::backups::{self, CreateRequest};
use crate::config::ApiCompat;
use crate::error::{Error, FieldError, Result};
use crate::model::{Permission, Server};
use crate::{archive, restores, servers, store, users};
use serde_json::{Value, json};

pub(super) fn visible(ctx: &Ctx, caller: &Caller, identifier: &str) -> Result<(Server, Access)> {
    auth::visible_server(&*ctx.app.db.conn()?, &caller.user, identifier)
}

/// The server, when the caller holds `perm` on it and may act on it in its state.
pub(super) fn actionable(
    ctx: &Ctx,
    caller: &Caller,
    identifier: &str,
    perm: Permission,
) -> Result<(Server, Access)> {
    let (server, access) = visible(ctx, caller, identifier)?;
    access.require(perm)?;
    access.require_unsuspended(&server)?;
    Ok((server, access))
}

/// The space free for backups beyond the reserve.
fn free_bytes(ctx: &Ctx) -> Result<u64> {
    let free = ctx.app.storage().free_space()?;
    Ok(free.saturating_sub(ctx.app.config.space_reserve_bytes()))
}

pub fn index(ctx: &Ctx, caller: &Caller) -> Result<Response> {
    let views = servers::views(&*ctx.app.db.conn()?, &caller.user, None, free_bytes(ctx)?)?;
    let items = views
        .iter()
        .map(|v| wire::client_server(v, &caller.user))
        .collect();
    let body = wire::single_page(items, format!("{}/api/client", ctx.base_url()));
    Ok(Response::json(200, &body))
}

pub fn server(ctx: &Ctx, caller: &Caller, id: &str) -> Result<Response> {
    let (server, _) = visible(ctx, caller, id)?;
    Ok(Response::json(200, &server_body(ctx, caller, &server)?))
}

/// A server as its page shows it: its attributes, and the caller's place on it.
fn server_body(ctx: &Ctx, caller: &Caller, server: &Server) -> Result<Value> {
    let conn = ctx.app.db.conn()?;
    let view = servers::views(&conn, &caller.user, Some(server), free_bytes(ctx)?)?
        .pop()
        .ok_or_else(|| Error::not_found("server"))?;
    let mut body =
        serde_json::to_value(wire::client_server(&view, &caller.user)).map_err(Error::internal)?;
    body["meta"] = json!({
        "is_server_owner": server.owner_id == Some(caller.user.id),
        "user_permissions": view.access.permissions().iter().map(|p| p.as_str()).collect::<Vec<_>>(),
    });
    Ok(body)
}

/// Every permission a subuser may be given, with what it allows; for anyone signed in.
pub fn permissions(_ctx: &Ctx, _caller: &Caller) -> Result<Response> {
    Ok(Response::json(200, &wire::permissions()))
}

pub fn account(_ctx: &Ctx, caller: &Caller) -> Result<Response> {
    let mut body = wire::user(&caller.user);
    if let Some(session) = &caller.session {
        body["meta"] = json!({"csrf_token": session.csrf_token});
    }
    Ok(Response::json(200, &body))
}

pub fn change_password(ctx: &Ctx, caller: &Caller) -> Result<Response> {
    let mut f = Fields::new(ctx.req.body_object()?);
    let current = f.required_string("current_password");
    let password = f.required_string("password");
    let confirmation = f.string("password_confirmation");
    f.finish()?;
    let (current, password) = (current.unwrap_or_default(), password.unwrap_or_default());
    if !auth::verify_password(&caller.user.password_hash, &current) {
        return Err(Error::invalid(
            "current_password",
            "current_password",
            "The current password is not correct.",
        ));
    }
    if confirmation.is_some_and(|c| c != password) {
        return Err(Error::invalid(
            "password",
            "confirmed",
            "The password confirmation does not match.",
        ));
    }
    let keep = caller.session.as_ref().map(|s| s.id);
    users::set_password(&*ctx.app.db.conn()?, &caller.user, &password, keep)?;
    Ok(Response::empty(204))
}

pub fn list_keys(ctx: &Ctx, caller: &Caller) -> Result<Response> {
    let keys = store::keys::list_for_user(&*ctx.app.db.conn()?, caller.user.id)?;
    Ok(Response::json(
        200,
        &wire::single_page(
            keys.iter().map(wire::api_key).collect(),
            format!("{}/api/client/account/api-keys", ctx.base_url()),
        ),
    ))
}

pub fn create_key(ctx: &Ctx, caller: &Caller) -> Result<Response> {
    let mut f = Fields::new(ctx.req.body_object()?);
    let description = f.string("description").unwrap_or_default();
    let _ = f.string_list("allowed_ips");
    f.finish()?;
    let (key, token) = users::create_key(
        &*ctx.app.db.conn()?,
        &ctx.actor(caller),
        &caller.user,
        &description,
    )?;
    let mut body = wire::api_key(&key);
    // As Pterodactyl does: the secret alone; the key is `identifier` followed by it.
    let secret = token
        .strip_prefix(key.identifier.as_str())
        .unwrap_or(&token);
    body["meta"] = json!({"secret_token": secret});
    Ok(Response::json(200, &body))
}

pub fn delete_key(ctx: &Ctx, caller: &Caller, identifier: &str) -> Result<Response> {
    users::revoke_key(
        &*ctx.app.db.conn()?,
        &ctx.actor(caller),
        &caller.user,
        identifier,
    )?;
    Ok(Response::empty(204))
}

/// `page` and `per_page`: positive integers; `per_page` capped at 100.
pub(super) fn paging(ctx: &Ctx) -> Result<(i64, i64)> {
    let mut errors = Vec::new();
    let mut read = |name: &str, default: i64| match ctx.req.query(name) {
        None => default,
        Some(v) => match v.parse::<i64>() {
            Ok(n) if n >= 1 => n,
            _ => {
                errors.push(FieldError::new(
                    name,
                    "integer|min:1",
                    format!("The {name} parameter must be a positive integer."),
                ));
                default
            }
        },
    };
    let page = read("page", 1);
    let per_page = read("per_page", backups::DEFAULT_PER_PAGE).min(backups::MAX_PER_PAGE);
    if errors.is_empty() {
        Ok((page, per_page))
    } else {
        Err(Error::Validation(errors))
    }
}

pub fn list_backups(ctx: &Ctx, caller: &Caller, id: &str) -> Result<Response> {
    let (server, access) = visible(ctx, caller, id)?;
    access.require(Permission::BackupRead)?;
    let (page, per_page) = paging(ctx)?;
    let listing = backups::list(&*ctx.app.db.conn()?, &server, page, per_page)?;
    let meta = json!({
        "pagination": wire::pagination(&wire::Page {
            total: listing.total,
            count: listing.backups.len(),
            per_page,
            current_page: page,
            base: format!("{}/api/client/servers/{}/backups", ctx.base_url(), server.short_id),
        }),
        "backup_count": listing.backup_count,
    });
    let mut meta = meta;
    // `?include=server`: the server as GET .../servers/{server} gives it, so that a page
    // showing both stays current with one request.
    if ctx
        .req
        .query("include")
        .is_some_and(|i| i.split(',').any(|part| part == "server"))
    {
        meta["server"] = server_body(ctx, caller, &server)?;
    }
    let body = wire::List::new(
        listing
            .backups
            .iter()
            .map(|b| wire::backup(b, &access, ctx.app.config.api_compat))
            .collect(),
        meta,
    );
    Ok(Response::json(200, &body))
}

pub fn show_backup(ctx: &Ctx, caller: &Caller, id: &str, uuid: &str) -> Result<Response> {
    let (server, access) = visible(ctx, caller, id)?;
    access.require(Permission::BackupRead)?;
    let backup = backups::look_at_archive(ctx.app, &server, uuid)?;
    Ok(Response::json(
        200,
        &wire::backup(&backup, &access, ctx.app.config.api_compat),
    ))
}

pub fn create_backup(ctx: &Ctx, caller: &Caller, id: &str) -> Result<Response> {
    let (server, access) = actionable(ctx, caller, id, Permission::BackupCreate)?;
    let mut f = Fields::new(ctx.req.body_object()?);
    let name = f.string("name");
    if name
        .as_ref()
        .is_some_and(|n| n.chars().count() > backups::MAX_NAME_CHARS)
    {
        f.push(FieldError::new(
            "name",
            "max:191",
            "The name may not be longer than 191 characters.",
        ));
    }
    let ignored = f.string("ignored");
    let is_locked = f.bool("is_locked").unwrap_or(false);
    f.finish()?;
    let request = CreateRequest {
        name,
        ignored: ignored
            .as_deref()
            .map(archive::split_patterns)
            .unwrap_or_default(),
        is_locked,
    };
    let backup = backups::create(ctx.app, &ctx.actor(caller), &server, &access, request)?;
    backups::queue(ctx.app, &backup)?;
    Ok(Response::json(
        200,
        &wire::backup(&backup, &access, ctx.app.config.api_compat),
    ))
}

/// Pelican's rename: `{"name": ...}`, with the permission that lets a user delete the
/// backup.
pub fn rename_backup(ctx: &Ctx, caller: &Caller, id: &str, uuid: &str) -> Result<Response> {
    let (server, access) = actionable(ctx, caller, id, Permission::BackupDelete)?;
    let mut f = Fields::new(ctx.req.body_object()?);
    let name = f.required_string("name");
    f.finish()?;
    let name = name.unwrap_or_default();
    let backup = backups::rename(ctx.app, &ctx.actor(caller), &server, uuid, &name)?;
    Ok(Response::json(
        200,
        &wire::backup(&backup, &access, ctx.app.config.api_compat),
    ))
}

pub fn delete_backup(ctx: &Ctx, caller: &Caller, id: &str, uuid: &str) -> Result<Response> {
    let (server, _) = actionable(ctx, caller, id, Permission::BackupDelete)?;
    backups::delete(ctx.app, &ctx.actor(caller), &server, uuid)?;
    Ok(Response::empty(204))
}

/// 204 as the reference says; a real Pterodactyl panel answers 200 with the backup.
pub fn toggle_lock(ctx: &Ctx, caller: &Caller, id: &str, uuid: &str) -> Result<Response> {
    let (server, access) = actionable(ctx, caller, id, Permission::BackupDelete)?;
    backups::toggle_lock(ctx.app, &ctx.actor(caller), &server, uuid)?;
    match ctx.app.config.api_compat {
        ApiCompat::Hoard => Ok(Response::empty(204)),
        ApiCompat::Pterodactyl => {
            let backup = backups::get(&*ctx.app.db.conn()?, &server, uuid)?;
            Ok(Response::json(
                200,
                &wire::backup(&backup, &access, ApiCompat::Pterodactyl),
            ))
        }
    }
}

pub fn download_link(ctx: &Ctx, caller: &Caller, id: &str, uuid: &str) -> Result<Response> {
    let (server, _) = actionable(ctx, caller, id, Permission::BackupDownload)?;
    let path = backups::download_link(ctx.app, &ctx.actor(caller), &caller.user, &server, uuid)?;
    let url = format!("{}{path}", ctx.base_url());
    Ok(Response::json(
        200,
        &wire::item("signed_url", json!({"url": url})),
    ))
}

pub fn restore_backup(ctx: &Ctx, caller: &Caller, id: &str, uuid: &str) -> Result<Response> {
    let (server, access) = actionable(ctx, caller, id, Permission::BackupRestore)?;
    backups::get(&*ctx.app.db.conn()?, &server, uuid)?;
    let mut f = Fields::new(ctx.req.body_object()?);
    let truncate = f.bool("truncate").unwrap_or(true);
    let allow_corrupt = f.bool("allow_corrupt").unwrap_or(false);
    f.finish()?;
    if allow_corrupt && !access.is_full() {
        return Err(Error::Forbidden(
            "Only the server's owner or an administrator may restore a corrupt backup.".into(),
        ));
    }
    restores::start(
        ctx.app,
        &ctx.actor(caller),
        &server,
        uuid,
        truncate,
        allow_corrupt,
    )?;
    // The restore runs on: the reference says so with 202, a real Pterodactyl panel with 204.
    Ok(Response::empty(match ctx.app.config.api_compat {
        ApiCompat::Hoard => 202,
        ApiCompat::Pterodactyl => 204,
    }))
}

pub fn verify_backup(ctx: &Ctx, caller: &Caller, id: &str, uuid: &str) -> Result<Response> {
    let (server, access) = visible(ctx, caller, id)?;
    access.require(Permission::BackupRead)?;
    let backup = backups::verify(ctx.app, &ctx.actor(caller), &server, &access, uuid)?;
    Ok(Response::json(
        202,
        &wire::backup(&backup, &access, ctx.app.config.api_compat),
    ))
}

/// Subuser management is for the owner and admins.
fn manageable(ctx: &Ctx, caller: &Caller, id: &str) -> Result<Server> {
    let (server, access) = visible(ctx, caller, id)?;
    if !access.is_full() {
        return Err(Error::Forbidden(
            "Only the server's owner or an administrator can manage its subusers.".into(),
        ));
    }
    Ok(server)
}

fn subuser_target(ctx: &Ctx, server: &Server, user_uuid: &str) -> Result<crate::model::Subuser> {
    let conn = ctx.app.db.conn()?;
    let user =
        store::users::by_uuid(&conn, user_uuid)?.ok_or_else(|| Error::not_found("subuser"))?;
    store::subusers::get(&conn, server.id, user.id)?.ok_or_else(|| Error::not_found("subuser"))
}

pub fn list_subusers(ctx: &Ctx, caller: &Caller, id: &str) -> Result<Response> {
    let server = manageable(ctx, caller, id)?;
    let subusers = store::subusers::list(&*ctx.app.db.conn()?, server.id)?;
    Ok(Response::json(
        200,
        &wire::single_page(
            subusers.iter().map(wire::subuser).collect(),
            format!("{}/api/client/servers/{id}/users", ctx.base_url()),
        ),
    ))
}

/// The required `permissions` list; a missing or invalid one is recorded in `f`.
fn read_permissions(f: &mut Fields) -> Option<Vec<Permission>> {
    let Some(names) = f.string_list("permissions") else {
        f.push(FieldError::new(
            "permissions",
            "required",
            "The permissions field is required: a list such as [\"backup.read\"].",
        ));
        return None;
    };
    match servers::parse_permissions(&names) {
        Ok(perms) => Some(perms),
        Err(Error::Validation(errors)) => {
            errors.into_iter().for_each(|e| f.push(e));
            None
        }
        Err(_) => None,
    }
}

pub fn add_subuser(ctx: &Ctx, caller: &Caller, id: &str) -> Result<Response> {
    let server = manageable(ctx, caller, id)?;
    let mut f = Fields::new(ctx.req.body_object()?);
    let username = f.required_string("username");
    let permissions = read_permissions(&mut f);
    f.finish()?;
    let (username, permissions) = (
        username.unwrap_or_default(),
        permissions.unwrap_or_default(),
    );
    let conn = ctx.app.db.conn()?;
    let user = store::users::by_username(&conn, &username)?.ok_or_else(|| {
        Error::invalid(
            "username",
            "exists",
            format!("There is no user '{username}'."),
        )
    })?;
    if store::subusers::get(&conn, server.id, user.id)?.is_some() {
        return Err(Error::invalid(
            "username",
            "unique",
            format!("'{username}' is already a subuser of this server."),
        ));
    }
    servers::set_subuser(&conn, &ctx.actor(caller), &server, &user, &permissions)?;
    let subuser = store::subusers::get(&conn, server.id, user.id)?
        .ok_or_else(|| Error::not_found("subuser"))?;
    Ok(Response::json(200, &wire::subuser(&subuser)))
}

/// Usernames to suggest while the owner types one, by prefix: at least two characters, at
/// most ten names, so the list of accounts cannot be read off in one go.
pub fn suggest_subusers(ctx: &Ctx, caller: &Caller, id: &str) -> Result<Response> {
    manageable(ctx, caller, id)?;
    let prefix = ctx.req.query("q").unwrap_or_default().trim();
    let names = if prefix.chars().count() < 2 {
        Vec::new()
    } else {
        store::users::usernames_starting(&*ctx.app.db.conn()?, prefix, 10)?
    };
    Ok(Response::json(
        200,
        &json!({"object": "list", "data": names}),
    ))
}

pub fn show_subuser(ctx: &Ctx, caller: &Caller, id: &str, user_uuid: &str) -> Result<Response> {
    let server = manageable(ctx, caller, id)?;
    Ok(Response::json(
        200,
        &wire::subuser(&subuser_target(ctx, &server, user_uuid)?),
    ))
}

pub fn update_subuser(ctx: &Ctx, caller: &Caller, id: &str, user_uuid: &str) -> Result<Response> {
    let server = manageable(ctx, caller, id)?;
    let existing = subuser_target(ctx, &server, user_uuid)?;
    let mut f = Fields::new(ctx.req.body_object()?);
    let permissions = read_permissions(&mut f);
    f.finish()?;
    let conn = ctx.app.db.conn()?;
    servers::set_subuser(
        &conn,
        &ctx.actor(caller),
        &server,
        &existing.user,
        &permissions.unwrap_or_default(),
    )?;
    let subuser = store::subusers::get(&conn, server.id, existing.user.id)?
        .ok_or_else(|| Error::not_found("subuser"))?;
    Ok(Response::json(200, &wire::subuser(&subuser)))
}

pub fn remove_subuser(ctx: &Ctx, caller: &Caller, id: &str, user_uuid: &str) -> Result<Response> {
    let server = manageable(ctx, caller, id)?;
    let existing = subuser_target(ctx, &server, user_uuid)?;
    servers::remove_subuser(
        &*ctx.app.db.conn()?,
        &ctx.actor(caller),
        &server,
        &existing.user,
    )?;
    Ok(Response::empty(204))
}
