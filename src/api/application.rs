//! `/api/application`: administration of servers and users, for admins only.

use super::fields::Fields;
use super::http::Response;
use super::{Caller, Ctx, wire};
use crate::auth;
use crate::error::{Error, FieldError, Result};
use crate::model::{Compression, Server, ServerStatus, User};
use crate::servers::{self, ServerChanges};
use crate::{backups, store, users};
use serde_json::{Map, Value};

fn admin_item(ctx: &Ctx, server: &Server) -> Result<Value> {
    let conn = ctx.app.db.conn()?;
    let owner = server
        .owner_id
        .map(|id| store::users::by_id(&conn, id))
        .transpose()?
        .flatten();
    let count = store::backups::count(&conn, server.id)?;
    Ok(wire::admin_server(server, owner.as_ref(), count))
}

pub fn list_servers(ctx: &Ctx, caller: &Caller) -> Result<Response> {
    auth::require_admin(&caller.user)?;
    let servers = store::servers::list(&*ctx.app.db.conn()?)?;
    let items = servers
        .iter()
        .map(|s| admin_item(ctx, s))
        .collect::<Result<Vec<_>>>()?;
    Ok(Response::json(
        200,
        &wire::single_page(items, format!("{}/api/application/servers", ctx.base_url())),
    ))
}

fn parse_choice<T: std::str::FromStr<Err = String>>(
    f: &mut Fields,
    name: &str,
) -> Option<Option<T>> {
    match f.nullable_string(name)? {
        None => Some(None),
        Some(text) => match text.parse() {
            Ok(v) => Some(Some(v)),
            Err(e) => {
                f.push(FieldError::new(name, "in", format!("{e}.")));
                None
            }
        },
    }
}

/// Reads server fields from a request body (all optional; `create` checks the required).
fn server_changes(body: Map<String, Value>) -> Result<ServerChanges> {
    let mut f = Fields::new(body);
    let hooks = f.object("hooks").map(Fields::new);
    let mut changes = ServerChanges {
        name: f.string("name"),
        description: f.string("description"),
        path: f.string("path"),
        owner: f.nullable_string("owner"),
        backup_limit: f.int("backup_limit"),
        backup_quota_bytes: f.nullable_int("backup_quota_bytes"),
        max_backup_bytes: f.int("max_backup_bytes"),
        compression: parse_choice::<Compression>(&mut f, "compression"),
        status: parse_choice::<ServerStatus>(&mut f, "status"),
        skip_unreadable: f.bool("skip_unreadable"),
        ..ServerChanges::default()
    };
    if let Some(mut h) = hooks {
        changes.pre_backup = h.nullable_string("pre_backup");
        changes.post_backup = h.nullable_string("post_backup");
        changes.pre_restore = h.nullable_string("pre_restore");
        changes.post_restore = h.nullable_string("post_restore");
        if let Err(Error::Validation(errors)) = h.finish() {
            errors.into_iter().for_each(|mut e| {
                e.field = format!("hooks.{}", e.field);
                f.push(e);
            });
        }
    }
    f.finish()?;
    Ok(changes)
}

pub fn create_server(ctx: &Ctx, caller: &Caller) -> Result<Response> {
    auth::require_admin(&caller.user)?;
    let changes = server_changes(ctx.req.body_object()?)?;
    let server = servers::create(&*ctx.app.db.conn()?, &ctx.app.config.data_dir, changes)?;
    Ok(Response::json(201, &admin_item(ctx, &server)?))
}

fn find_server(ctx: &Ctx, id: &str) -> Result<Server> {
    store::servers::by_identifier(&*ctx.app.db.conn()?, id)?
        .ok_or_else(|| Error::not_found("server"))
}

pub fn show_server(ctx: &Ctx, caller: &Caller, id: &str) -> Result<Response> {
    auth::require_admin(&caller.user)?;
    Ok(Response::json(
        200,
        &admin_item(ctx, &find_server(ctx, id)?)?,
    ))
}

pub fn update_server(ctx: &Ctx, caller: &Caller, id: &str) -> Result<Response> {
    auth::require_admin(&caller.user)?;
    let server = find_server(ctx, id)?;
    let changes = server_changes(ctx.req.body_object()?)?;
    let updated = servers::update(
        &*ctx.app.db.conn()?,
        &ctx.app.config.data_dir,
        &server,
        changes,
    )?;
    Ok(Response::json(200, &admin_item(ctx, &updated)?))
}

pub fn delete_server(ctx: &Ctx, caller: &Caller, id: &str) -> Result<Response> {
    auth::require_admin(&caller.user)?;
    let server = find_server(ctx, id)?;
    let delete_backups = match ctx.req.query("delete_backups") {
        None | Some("false") | Some("0") => false,
        Some("true") | Some("1") => true,
        Some(_) => {
            return Err(Error::invalid(
                "delete_backups",
                "boolean",
                "The delete_backups parameter must be true or false.",
            ));
        }
    };
    backups::delete_server(ctx.app, &ctx.actor(caller), &server, delete_backups)?;
    Ok(Response::empty(204))
}

pub fn list_users(ctx: &Ctx, caller: &Caller) -> Result<Response> {
    auth::require_admin(&caller.user)?;
    let users = store::users::list(&*ctx.app.db.conn()?)?;
    Ok(Response::json(
        200,
        &wire::single_page(
            users.iter().map(wire::user).collect(),
            format!("{}/api/application/users", ctx.base_url()),
        ),
    ))
}

pub fn create_user(ctx: &Ctx, caller: &Caller) -> Result<Response> {
    auth::require_admin(&caller.user)?;
    let mut f = Fields::new(ctx.req.body_object()?);
    let username = f.required_string("username");
    let password = f.required_string("password");
    let admin = f.bool("admin").unwrap_or(false);
    f.finish()?;
    let user = users::create(
        &*ctx.app.db.conn()?,
        &ctx.actor(caller),
        &username.unwrap_or_default(),
        &password.unwrap_or_default(),
        admin,
    )?;
    Ok(Response::json(201, &wire::user(&user)))
}

fn find_user(ctx: &Ctx, uuid: &str) -> Result<User> {
    store::users::by_uuid(&*ctx.app.db.conn()?, uuid)?.ok_or_else(|| Error::not_found("user"))
}

pub fn show_user(ctx: &Ctx, caller: &Caller, uuid: &str) -> Result<Response> {
    auth::require_admin(&caller.user)?;
    Ok(Response::json(200, &wire::user(&find_user(ctx, uuid)?)))
}

pub fn update_user(ctx: &Ctx, caller: &Caller, uuid: &str) -> Result<Response> {
    auth::require_admin(&caller.user)?;
    let user = find_user(ctx, uuid)?;
    let mut f = Fields::new(ctx.req.body_object()?);
    let username = f.string("username");
    let password = f.string("password");
    let admin = f.bool("admin");
    f.finish()?;
    let mut conn = ctx.app.db.conn()?;
    let tx = conn.transaction()?;
    let mut updated = users::update(
        &tx,
        &user,
        username.as_deref().unwrap_or(&user.username),
        admin.unwrap_or(user.is_admin),
    )?;
    if let Some(password) = password {
        let keep = caller
            .session
            .as_ref()
            .filter(|_| caller.user.id == user.id)
            .map(|s| s.id);
        users::set_password(&tx, &updated, &password, keep)?;
        updated = store::users::by_id(&tx, user.id)?.ok_or_else(|| Error::not_found("user"))?;
    }
    tx.commit()?;
    Ok(Response::json(200, &wire::user(&updated)))
}

pub fn delete_user(ctx: &Ctx, caller: &Caller, uuid: &str) -> Result<Response> {
    auth::require_admin(&caller.user)?;
    let user = find_user(ctx, uuid)?;
    users::delete(&*ctx.app.db.conn()?, &ctx.actor(caller), &user)?;
    Ok(Response::empty(204))
}
