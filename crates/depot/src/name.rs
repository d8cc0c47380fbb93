//! Database names: validated once, never turned into paths.

use crate::StoreError;

/// Longest accepted database name, in bytes.
pub const MAX_NAME_LEN: usize = 200;

/// Accepts 1 to 200 bytes of ASCII letters, digits and `-_.:@`, not starting with `.`.
///
/// Names are keys, never file names, but keeping them plain makes them safe to log, to put in URLs
/// and to use as keys in any backend.
pub fn validate_name(name: &str) -> Result<(), StoreError> {
    let bad = |why: &str| Err(StoreError::InvalidArgument(format!("database name {name:?} {why}")));
    if name.is_empty() {
        return bad("is empty");
    }
    if name.len() > MAX_NAME_LEN {
        return bad("is longer than 200 bytes");
    }
    if name.starts_with('.') {
        return bad("starts with '.'");
    }
    if let Some(c) = name.chars().find(|c| !(c.is_ascii_alphanumeric() || "-_.:@".contains(*c))) {
        return bad(&format!("contains {c:?}; allowed are ASCII letters, digits and -_.:@"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_plain_names() {
        for n in ["a", "actor-123", "tenant:42@eu", "x_y.z", &"n".repeat(200)] {
            assert!(validate_name(n).is_ok(), "{n}");
        }
    }

    #[test]
    fn refuses_paths_and_odd_characters() {
        for n in ["", ".hidden", "../x", "a/b", "a\\b", "a b", "é", "a\0b", &"n".repeat(201)] {
            assert!(matches!(validate_name(n), Err(StoreError::InvalidArgument(_))), "{n:?}");
        }
    }
}
