//! `/activity`: a server's activity log and the caller's own, in Pterodactyl's shapes.

use super::client::{paging, visible};
use super::http::Response;
use super::{Caller, Ctx, wire};
use crate::activity::{self, Listing, Query};
use crate::error::Result;
use serde_json::json;

pub fn server(ctx: &Ctx, caller: &Caller, id: &str) -> Result<Response> {
    let (server, access) = visible(ctx, caller, id)?;
    let (page, per_page) = paging(ctx)?;
    let q = Query {
        event: event_filter(ctx),
        page,
        per_page,
    };
    let listing = activity::for_server(&*ctx.app.db.conn()?, &server, &access, &q)?;
    let base = format!(
        "{}/api/client/servers/{}/activity",
        ctx.base_url(),
        server.short_id
    );
    Ok(respond(caller, listing, &q, base))
}

pub fn account(ctx: &Ctx, caller: &Caller) -> Result<Response> {
    let (page, per_page) = paging(ctx)?;
    let q = Query {
        event: event_filter(ctx),
        page,
        per_page,
    };
    let listing = activity::for_account(&*ctx.app.db.conn()?, &caller.user, &q)?;
    let base = format!("{}/api/client/account/activity", ctx.base_url());
    Ok(respond(caller, listing, &q, base))
}

/// `filter[event]`: an exact event name; empty means no filter.
fn event_filter<'a>(ctx: &'a Ctx) -> Option<&'a str> {
    ctx.req.query("filter[event]").filter(|e| !e.is_empty())
}

/// The page as a list; its links keep the filter.
fn respond(caller: &Caller, listing: Listing, q: &Query, mut base: String) -> Response {
    if let Some(event) = q.event {
        let encoded =
            percent_encoding::utf8_percent_encode(event, percent_encoding::NON_ALPHANUMERIC);
        base = format!("{base}?filter%5Bevent%5D={encoded}");
    }
    let items = listing
        .entries
        .iter()
        .map(|e| {
            let actor = e.user_id.and_then(|id| listing.actors.get(&id));
            wire::activity(e, actor, &caller.user)
        })
        .collect::<Vec<_>>();
    let meta = json!({
        "pagination": wire::pagination(&wire::Page {
            total: listing.total,
            count: items.len(),
            per_page: q.per_page,
            current_page: q.page,
            base,
        }),
    });
    Response::json(200, &wire::List::new(items, meta))
}
