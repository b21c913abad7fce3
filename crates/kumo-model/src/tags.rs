//! AWS's tag rules: at most 50 user tags per resource, keys up to 128 characters, values up to
//! 256, and the `aws:` prefix reserved.

/// The most user tags one resource may carry.
pub const MAX_TAGS: usize = 50;
pub const MAX_KEY_CHARS: usize = 128;
pub const MAX_VALUE_CHARS: usize = 256;

/// Why a tag was refused: (AWS error code, message).
pub type TagError = (&'static str, String);

/// Checks one tag as CreateTags (and TagSpecifications) do.
pub fn check_tag(key: &str, value: &str) -> Result<(), TagError> {
    if key.is_empty() {
        return Err((
            "InvalidParameterValue",
            "Value ( '' ) for parameter Tag key is invalid. Tag key cannot be null or empty."
                .to_string(),
        ));
    }
    if key.chars().count() > MAX_KEY_CHARS {
        return Err((
            "InvalidParameterValue",
            format!("Tag key exceeds the maximum length of {MAX_KEY_CHARS} characters"),
        ));
    }
    if value.chars().count() > MAX_VALUE_CHARS {
        return Err((
            "InvalidParameterValue",
            format!("Tag value exceeds the maximum length of {MAX_VALUE_CHARS} characters"),
        ));
    }
    if key.len() >= 4 && key[..4].eq_ignore_ascii_case("aws:") {
        return Err((
            "InvalidParameterValue",
            format!("Value ( {key} ) for parameter key is invalid. Tag keys starting with 'aws:' are reserved for internal use"),
        ));
    }
    Ok(())
}

/// Checks the size of the tag set a resource would have after a change.
pub fn check_count(count: usize) -> Result<(), TagError> {
    if count > MAX_TAGS {
        return Err((
            "TagLimitExceeded",
            format!("The resultant tag set must not have more than {MAX_TAGS} user tags."),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits() {
        assert!(check_tag(&"k".repeat(128), &"v".repeat(256)).is_ok());
        assert_eq!(
            check_tag(&"k".repeat(129), "").unwrap_err().0,
            "InvalidParameterValue"
        );
        assert_eq!(
            check_tag("k", &"v".repeat(257)).unwrap_err().0,
            "InvalidParameterValue"
        );
        assert!(check_tag("AWS:x", "").unwrap_err().1.contains("reserved"));
        assert!(check_count(50).is_ok());
        assert_eq!(check_count(51).unwrap_err().0, "TagLimitExceeded");
    }
}
