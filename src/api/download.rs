//! `GET|HEAD /download/backups/<uuid>`: serves an archive to the holder of a signed link,
//! streamed from disk, with single-range support for resumed downloads.

use super::Ctx;
use super::http::{Body, Response};
use crate::error::{Error, Result};
use crate::model::{Backup, BackupStatus, Permission, now};
use crate::{auth, links, store};
use http_range_header::RangeUnsatisfiableError;
use serde_json::json;
use std::io::{Seek, SeekFrom};

fn refused(detail: &str) -> Error {
    Error::InvalidSignature(detail.to_string())
}

/// `<short id>-<name slug>-<yyyymmdd-hhmmss>.<ext>`.
pub fn file_name(server_short_id: &str, backup: &Backup) -> String {
    let mut slug = String::new();
    for c in backup.name.chars().flat_map(char::to_lowercase) {
        if c.is_ascii_alphanumeric() {
            slug.push(c);
        } else if !slug.ends_with('-') && !slug.is_empty() {
            slug.push('-');
        }
        if slug.len() >= 60 {
            break;
        }
    }
    let slug = slug.trim_end_matches('-');
    let slug = if slug.is_empty() { "backup" } else { slug };
    let when =
        jiff::Timestamp::from_second(backup.created_at).unwrap_or(jiff::Timestamp::UNIX_EPOCH);
    format!(
        "{server_short_id}-{slug}-{}.{}",
        when.strftime("%Y%m%d-%H%M%S"),
        backup.compression.extension()
    )
}

pub fn serve(ctx: &Ctx, backup_uuid: &str) -> Result<Response> {
    let query = |name| ctx.req.query(name).unwrap_or_default();
    let expires: i64 = query("expires")
        .parse()
        .map_err(|_| refused("This download link is malformed: request a new one."))?;
    let user_uuid = query("user");
    let link = links::Link {
        backup_uuid,
        user_uuid,
        expires,
        nonce: query("nonce"),
    };
    if !link.verify(&ctx.app.secret, query("signature")) {
        return Err(refused("This download link is invalid: request a new one."));
    }
    if expires < now() {
        return Err(refused(
            "This download link has expired: request a new one.",
        ));
    }
    let conn = ctx.app.db.conn()?;
    let backup = store::backups::by_uuid(&conn, backup_uuid)?
        .filter(|b| b.status.is_completed() && b.status != BackupStatus::Missing)
        .ok_or_else(|| Error::not_found("backup"))?;
    let user = store::users::by_uuid(&conn, user_uuid)?
        .ok_or_else(|| refused("The user this link was made for no longer exists."))?;
    let server = store::servers::by_id(&conn, backup.server_id)?
        .ok_or_else(|| Error::not_found("backup"))?;
    let access = auth::access(&conn, &user, &server)?
        .filter(|a| a.has(Permission::BackupDownload))
        .ok_or_else(|| {
            refused("The user this link was made for may no longer download this backup.")
        })?;
    access.require_unsuspended(&server)?;
    drop(conn);
    let path = backup
        .storage_path
        .as_deref()
        .and_then(|p| ctx.app.storage().resolve(p))
        .ok_or_else(|| Error::not_found("backup archive"))?;
    let mut file = std::fs::File::open(&path).map_err(|e| {
        log::error!(
            "backup {} has no readable archive at {}: {e}",
            backup.uuid,
            path.display()
        );
        Error::not_found("backup archive")
    })?;
    let size = file.metadata()?.len();
    let etag = format!("\"{}\"", backup.sha256_hash.as_deref().unwrap_or_default());
    let headers = |r: Response| {
        r.with_header("Content-Type", backup.compression.mime_type())
            .with_header(
                "Content-Disposition",
                format!(
                    "attachment; filename=\"{}\"",
                    file_name(&server.short_id, &backup)
                ),
            )
            .with_header("ETag", etag.clone())
            .with_header("Accept-Ranges", "bytes")
            .with_header("Cache-Control", "private, no-store")
            .with_header("Referrer-Policy", "no-referrer")
    };
    // If-Range: a resume against a different file gets the whole file instead.
    let range = ctx
        .req
        .header("range")
        .filter(|_| ctx.req.header("if-range").is_none_or(|v| v == etag));
    if let Some(range) = range {
        match http_range_header::parse_range_header(range).and_then(|r| r.validate(size)) {
            Ok(ranges) if ranges.len() == 1 => {
                let (start, end) = (*ranges[0].start(), *ranges[0].end());
                file.seek(SeekFrom::Start(start))?;
                let partial = Response {
                    status: 206,
                    headers: Vec::new(),
                    body: Body::File {
                        file,
                        len: end - start + 1,
                    },
                };
                return Ok(headers(partial)
                    .with_header("Content-Range", format!("bytes {start}-{end}/{size}")));
            }
            Err(RangeUnsatisfiableError::Unsatisfiable) => {
                let body = json!({"errors": [{
                    "code": "RangeNotSatisfiableException",
                    "status": "416",
                    "detail": format!("The requested range is outside the file's {size} bytes."),
                }]});
                return Ok(Response::json(416, &body)
                    .with_header("Content-Range", format!("bytes */{size}")));
            }
            // Several ranges, or a malformed header: the whole file, as the spec allows.
            _ => {}
        }
    }
    let full = Response {
        status: 200,
        headers: Vec::new(),
        body: Body::File { file, len: size },
    };
    Ok(headers(full))
}
