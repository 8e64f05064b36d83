//! Signed download links: `/download/backups/<backup>?expires=<unix s>&user=<user>&signature=<hex>`,
//! an HMAC-SHA256 over a canonical string naming the purpose, the backup, the user and the
//! expiry, keyed with the data directory's secret. A link is reusable until it expires;
//! whether its user may still download is checked on every use.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Names the purpose so a signature can never be replayed for something else.
const PURPOSE: &str = "hoard-backup-download-v1";

fn mac(secret: &[u8; 32], backup_uuid: &str, user_uuid: &str, expires: i64) -> HmacSha256 {
    let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(format!("{PURPOSE}\n{backup_uuid}\n{user_uuid}\n{expires}").as_bytes());
    mac
}

pub fn sign(secret: &[u8; 32], backup_uuid: &str, user_uuid: &str, expires: i64) -> String {
    hex::encode(
        mac(secret, backup_uuid, user_uuid, expires)
            .finalize()
            .into_bytes(),
    )
}

/// Checks a signature in constant time.
pub fn verify(
    secret: &[u8; 32],
    backup_uuid: &str,
    user_uuid: &str,
    expires: i64,
    signature_hex: &str,
) -> bool {
    let Ok(signature) = hex::decode(signature_hex) else {
        return false;
    };
    mac(secret, backup_uuid, user_uuid, expires)
        .verify_slice(&signature)
        .is_ok()
}

/// The path and query of a link (without scheme and host).
pub fn path(secret: &[u8; 32], backup_uuid: &str, user_uuid: &str, expires: i64) -> String {
    format!(
        "/download/backups/{backup_uuid}?expires={expires}&user={user_uuid}&signature={}",
        sign(secret, backup_uuid, user_uuid, expires)
    )
}
