//! The activity log as users read it: a server's events for those who hold `activity.read`
//! on it, and each user's own events across servers and their account.

use crate::auth::Access;
use crate::error::Result;
use crate::model::{Permission, Server, User};
use crate::store::{self, Connection, activity::Entry, activity::Scope};
use std::collections::HashMap;

/// One page of events, newest first, with the users who acted in them.
pub struct Listing {
    pub entries: Vec<Entry>,
    pub total: i64,
    /// The acting users still on record, by id; a deleted user's events have no actor.
    pub actors: HashMap<i64, User>,
}

/// Which events to list: an exact event name, as Pterodactyl's `filter[event]` matches.
pub struct Query<'a> {
    pub event: Option<&'a str>,
    pub page: i64,
    pub per_page: i64,
}

/// What happened on a server, for a caller allowed to read its activity.
pub fn for_server(c: &Connection, server: &Server, access: &Access, q: &Query) -> Result<Listing> {
    access.require(Permission::ActivityRead)?;
    listing(c, Scope::Server(server.id), q)
}

/// What the user did, wherever they did it.
pub fn for_account(c: &Connection, user: &User, q: &Query) -> Result<Listing> {
    listing(c, Scope::User(user.id), q)
}

fn listing(c: &Connection, scope: Scope, q: &Query) -> Result<Listing> {
    let offset = (q.page - 1).saturating_mul(q.per_page);
    let (total, entries) = store::activity::page(c, scope, q.event, q.per_page, offset)?;
    let mut actors = HashMap::new();
    for id in entries.iter().filter_map(|e| e.user_id) {
        if !actors.contains_key(&id)
            && let Some(user) = store::users::by_id(c, id)?
        {
            actors.insert(id, user);
        }
    }
    Ok(Listing {
        entries,
        total,
        actors,
    })
}
