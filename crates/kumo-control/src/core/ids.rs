//! Resource ids: a prefix and 17 hex digits, time-ordered (see
//! [`kumo_model::ids::format_timed_id`]), so new rows land at the end of the store's index.

use kumo_model::ids;

/// A fresh resource id with the given prefix.
pub fn new_id(prefix: &str) -> String {
    let mut b = [0u8; 8];
    // The OS random source does not fail on Linux; a zero id would still be unique-checked.
    let _ = openssl::rand::rand_bytes(&mut b);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    ids::format_timed_id(prefix, now, u64::from_le_bytes(b))
}
