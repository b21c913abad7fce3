//! Pagination as EC2 does it: `MaxResults` bounded per operation, counted in items, and an
//! opaque `NextToken` that only this operation accepts.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use kumo_ec2_wire::Ec2Error;

/// Checks `MaxResults` against the operation's documented range.
pub fn max_results(value: Option<i32>, min: i32, max: i32) -> Result<Option<usize>, Ec2Error> {
    match value {
        None => Ok(None),
        Some(v) if v < min => Err(Ec2Error::invalid_value(format!(
            "Value ( {v} ) for parameter maxResults is invalid. Expecting a value greater than {min}."
        ))),
        Some(v) if v > max => Err(Ec2Error::invalid_value(format!(
            "Value ( {v} ) for parameter maxResults is invalid. Expecting a value less than or equal to {max}."
        ))),
        Some(v) => Ok(Some(v as usize)),
    }
}

/// A token carrying `cursor` (the last item of the page) for `op`.
pub fn token(op: &str, cursor: &str) -> String {
    URL_SAFE_NO_PAD.encode(format!("kumo1\n{op}\n{cursor}"))
}

/// The cursor inside a token; a token from elsewhere (another operation, another server,
/// garbage) is refused.
pub fn cursor(op: &str, token: Option<&str>) -> Result<Option<String>, Ec2Error> {
    let Some(t) = token else { return Ok(None) };
    let bad = || {
        Ec2Error::invalid_value(format!(
            "Value ( {t} ) for parameter NextToken is invalid. The token is invalid."
        ))
    };
    let raw = URL_SAFE_NO_PAD.decode(t).map_err(|_| bad())?;
    let text = String::from_utf8(raw).map_err(|_| bad())?;
    let mut parts = text.splitn(3, '\n');
    match (parts.next(), parts.next(), parts.next()) {
        (Some("kumo1"), Some(o), Some(c)) if o == op && !c.is_empty() => Ok(Some(c.to_string())),
        _ => Err(bad()),
    }
}

/// Cuts `items` (already in cursor order and past the cursor) to one page, and makes the
/// token for the next page when more remain.
pub fn page<T>(
    mut items: Vec<T>,
    limit: usize,
    op: &str,
    key: impl Fn(&T) -> String,
) -> (Vec<T>, Option<String>) {
    if items.len() <= limit {
        return (items, None);
    }
    items.truncate(limit);
    let next = items.last().map(|last| token(op, &key(last)));
    (items, next)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_are_scoped() {
        let t = token("DescribeTags", "key-1\u{0}env");
        assert_eq!(
            cursor("DescribeTags", Some(&t)).unwrap().as_deref(),
            Some("key-1\u{0}env")
        );
        assert_eq!(
            cursor("DescribeInstanceTypes", Some(&t))
                .unwrap_err()
                .code(),
            "InvalidParameterValue"
        );
        assert!(cursor("DescribeTags", Some("garbage!")).is_err());
        assert!(cursor("DescribeTags", Some("")).is_err());
    }

    #[test]
    fn max_results_bounds() {
        assert_eq!(max_results(Some(5), 5, 100).unwrap(), Some(5));
        assert!(max_results(Some(4), 5, 100)
            .unwrap_err()
            .message()
            .contains("greater than 5"));
        assert!(max_results(Some(101), 5, 100).is_err());
    }

    #[test]
    fn pages() {
        let (p, next) = page(vec![1, 2, 3], 2, "Op", |i| i.to_string());
        assert_eq!(p, vec![1, 2]);
        assert_eq!(cursor("Op", next.as_deref()).unwrap().as_deref(), Some("2"));
        let (_, next) = page(vec![1, 2], 2, "Op", |i| i.to_string());
        assert!(next.is_none());
    }
}
