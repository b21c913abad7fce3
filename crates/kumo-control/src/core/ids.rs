//! Resource ids: a prefix and 17 hex digits, time-ordered (see
//! [`kumo_model::ids::format_timed_id`]), so new rows land at the end of the store's index.

use kumo_model::ids;
use std::cell::RefCell;

/// Random bytes for names (ids, MAC addresses), drawn from the OS-seeded generator a block at
/// a time: a launch of 100 instances names about 500 things, and one call into the generator
/// per name cost more than the rest of the naming. Never for secrets: key material calls
/// the generator itself.
pub fn name_bytes<const N: usize>() -> [u8; N] {
    const BLOCK: usize = 4096;
    thread_local! {
        static POOL: RefCell<(Vec<u8>, usize)> = const { RefCell::new((Vec::new(), 0)) };
    }
    POOL.with(|p| {
        let mut p = p.borrow_mut();
        let (buf, at) = &mut *p;
        if buf.len() < BLOCK || *at + N > BLOCK {
            buf.resize(BLOCK, 0);
            // The OS random source does not fail on Linux; should it, the names stay unique
            // through the store's unique keys, and the next block draws again.
            let _ = openssl::rand::rand_bytes(buf);
            *at = 0;
        }
        let mut out = [0u8; N];
        out.copy_from_slice(&buf[*at..*at + N]);
        *at += N;
        out
    })
}

/// A fresh resource id with the given prefix.
pub fn new_id(prefix: &str) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    ids::format_timed_id(prefix, now, u64::from_le_bytes(name_bytes::<8>()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn names_do_not_repeat_across_blocks() {
        // More draws than one block holds, so the pool refills at least once.
        let seen: HashSet<[u8; 8]> = (0..2000).map(|_| name_bytes::<8>()).collect();
        assert_eq!(seen.len(), 2000);
    }

    #[test]
    fn ids_have_the_aws_form() {
        let id = new_id("vol");
        assert_eq!(id.len(), "vol-".len() + 17);
        assert!(id["vol-".len()..]
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
    }
}
