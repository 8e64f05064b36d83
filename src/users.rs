//! Accounts and API keys: the rules around them (name format, password strength, the last
//! admin), on top of the store.

use crate::auth;
use crate::error::{Error, Result};
use crate::model::{Actor, ApiKey, User, event, now};
use crate::store::{self, Connection};
use serde_json::json;

/// Keys one account may hold.
pub const MAX_KEYS_PER_USER: usize = 25;
pub const MAX_KEY_DESCRIPTION: usize = 500;

pub fn check_username(username: &str) -> Result<()> {
    let ok = (1..=64).contains(&username.len())
        && username
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(
            "username",
            "regex",
            "The username must be 1 to 64 characters of letters, digits, '.', '_' and '-'.",
        ))
    }
}

fn taken(username: &str) -> Error {
    Error::invalid(
        "username",
        "unique",
        format!("The username '{username}' is already taken."),
    )
}

pub fn create(
    c: &Connection,
    actor: &Actor,
    username: &str,
    password: &str,
    is_admin: bool,
) -> Result<User> {
    check_username(username)?;
    auth::check_password_strength(password)?;
    if store::users::by_username(c, username)?.is_some() {
        return Err(taken(username));
    }
    let hash = auth::hash_password(password)?;
    let user = store::users::insert(
        c,
        &uuid::Uuid::new_v4().to_string(),
        username,
        &hash,
        is_admin,
        now(),
    )?;
    store::activity::record(
        c,
        actor,
        "user:create",
        None,
        &json!({"username": username, "admin": is_admin}),
    )?;
    Ok(user)
}

pub fn find(c: &Connection, username: &str) -> Result<User> {
    store::users::by_username(c, username)?
        .ok_or_else(|| Error::not_found(format_args!("user '{username}'")))
}

/// Changes name and admin flag; refuses to remove the last admin.
pub fn update(c: &Connection, user: &User, username: &str, is_admin: bool) -> Result<User> {
    check_username(username)?;
    if let Some(other) = store::users::by_username(c, username)?
        && other.id != user.id
    {
        return Err(taken(username));
    }
    if user.is_admin && !is_admin && store::users::admin_count(c)? <= 1 {
        return Err(Error::Conflict(
            "hoard needs at least one administrator: make another user an admin first.".into(),
        ));
    }
    store::users::update_profile(c, user.id, username, is_admin, now())?;
    store::users::by_id(c, user.id)?.ok_or_else(|| Error::not_found("user"))
}

/// Sets a new password and ends the user's browser sessions, except `keep_session` (the
/// one that asked for the change, so changing your own password does not sign you out).
pub fn set_password(
    c: &Connection,
    user: &User,
    password: &str,
    keep_session: Option<i64>,
) -> Result<()> {
    auth::check_password_strength(password)?;
    let hash = auth::hash_password(password)?;
    store::users::update_password(c, user.id, &hash, now())?;
    store::sessions::delete_for_user(c, user.id, keep_session)?;
    Ok(())
}

pub fn delete(c: &Connection, actor: &Actor, user: &User) -> Result<()> {
    if user.is_admin && store::users::admin_count(c)? <= 1 {
        return Err(Error::Conflict(
            "Cannot remove the last administrator.".into(),
        ));
    }
    store::users::delete(c, user.id)?;
    store::activity::record(
        c,
        actor,
        "user:delete",
        None,
        &json!({"username": user.username}),
    )?;
    Ok(())
}

/// Makes a key for `user`; the returned token is the only copy of its secret.
pub fn create_key(
    c: &Connection,
    actor: &Actor,
    user: &User,
    description: &str,
) -> Result<(ApiKey, String)> {
    if description.chars().count() > MAX_KEY_DESCRIPTION {
        return Err(Error::invalid(
            "description",
            "max:500",
            "The description must be at most 500 characters.",
        ));
    }
    if store::keys::list_for_user(c, user.id)?.len() >= MAX_KEYS_PER_USER {
        return Err(Error::BadRequest(format!(
            "You have reached the limit of {MAX_KEYS_PER_USER} API keys: delete one first."
        )));
    }
    let key = auth::generate_key();
    let stored = store::keys::insert(
        c,
        user.id,
        &key.identifier,
        &key.secret_hash,
        description,
        now(),
    )?;
    store::activity::record(
        c,
        &account_actor(actor, user),
        event::KEY_CREATE,
        None,
        &json!({"identifier": key.identifier}),
    )?;
    Ok((stored, key.token))
}

pub fn revoke_key(c: &Connection, actor: &Actor, user: &User, identifier: &str) -> Result<()> {
    if !store::keys::delete(c, user.id, identifier)? {
        return Err(Error::not_found("API key"));
    }
    store::activity::record(
        c,
        &account_actor(actor, user),
        event::KEY_DELETE,
        None,
        &json!({"identifier": identifier}),
    )?;
    Ok(())
}

/// Key events belong to the key owner's account history, also when the command line (hoard
/// itself) made them.
fn account_actor(actor: &Actor, user: &User) -> Actor {
    match actor {
        Actor::Hoard => Actor::on_behalf_of(Some(user.id)),
        user_actor => user_actor.clone(),
    }
}
