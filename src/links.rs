//! Signed download links:
//! `/download/backups/<backup>?expires=<unix s>&user=<user>&nonce=<hex>&signature=<hex>`, an
//! HMAC-SHA256 over a canonical string naming the purpose, the backup, the user, the expiry
//! and a random nonce (every request for a link makes a new one), keyed with the data
//! directory's secret. A link is reusable until it expires; whether its user may still
//! download is checked on every use.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Names the purpose so a signature can never be replayed for something else.
const PURPOSE: &str = "hoard-backup-download-v2";

/// What a link says, besides its signature.
pub struct Link<'a> {
    pub backup_uuid: &'a str,
    pub user_uuid: &'a str,
    pub expires: i64,
    pub nonce: &'a str,
}

impl Link<'_> {
    fn mac(&self, secret: &[u8; 32]) -> HmacSha256 {
        let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC takes any key length");
        let Link {
            backup_uuid,
            user_uuid,
            expires,
            nonce,
        } = self;
        mac.update(format!("{PURPOSE}\n{backup_uuid}\n{user_uuid}\n{expires}\n{nonce}").as_bytes());
        mac
    }

    /// Checks a signature in constant time.
    pub fn verify(&self, secret: &[u8; 32], signature_hex: &str) -> bool {
        let Ok(signature) = hex::decode(signature_hex) else {
            return false;
        };
        self.mac(secret).verify_slice(&signature).is_ok()
    }
}

/// A new link's path and query (without scheme and host).
pub fn path(secret: &[u8; 32], backup_uuid: &str, user_uuid: &str, expires: i64) -> String {
    let nonce = uuid::Uuid::new_v4().simple().to_string();
    let link = Link {
        backup_uuid,
        user_uuid,
        expires,
        nonce: &nonce,
    };
    let signature = hex::encode(link.mac(secret).finalize().into_bytes());
    format!(
        "/download/backups/{backup_uuid}?expires={expires}&user={user_uuid}&nonce={nonce}&signature={signature}"
    )
}
