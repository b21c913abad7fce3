//! The one filter engine behind every Describe call: `Filter.N.Name` / `Filter.N.Value.M`.
//!
//! Filters are ANDed, the values of one filter are ORed, and a multi-valued field matches when
//! any of its values does. Values may use `*` and `?` wildcards (`\` escapes them). `tag:K`,
//! `tag-key` and `tag-value` work for every resource that has tags.

/// A filter as a request gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    pub name: String,
    pub values: Vec<String>,
}

/// A filter the engine refused: (AWS error code, message).
pub type FilterError = (&'static str, String);

/// The longest filter value AWS accepts.
pub const MAX_VALUE_CHARS: usize = 255;

/// What a resource exposes to the engine, for the field names `F` (one operation's filter
/// names: an enum, so that a resource's `field` can match every name without a wildcard).
pub trait Filterable<F> {
    /// Calls `out` with each value of the field. `f` is one the caller accepted when compiling.
    fn field(&self, f: F, out: &mut dyn FnMut(&str));
    /// The resource's tags, as (key, value).
    fn tags(&self) -> &[(String, String)] {
        &[]
    }
}

#[derive(Debug, Clone)]
enum Pattern {
    Exact(String),
    Glob(Vec<Tok>),
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Char(char),
    One,
    Any,
}

#[derive(Debug, Clone)]
enum Target<F> {
    Field(F),
    Tag(String),
    TagKey,
    TagValue,
}

/// A compiled set of filters over the field names `F`.
#[derive(Debug, Clone)]
pub struct Filters<F> {
    items: Vec<(Target<F>, Vec<Pattern>)>,
}

impl<F: Copy + PartialEq> Filters<F> {
    /// Compiles `filters`, accepting the field names `accept` knows; `tags` says whether the
    /// resource has tags (and so `tag:K`, `tag-key`, `tag-value`).
    pub fn compile(
        filters: &[Filter],
        accept: impl Fn(&str) -> Option<F>,
        tags: bool,
    ) -> Result<Filters<F>, FilterError> {
        let mut items = Vec::with_capacity(filters.len());
        for f in filters {
            let target = if let Some(field) = accept(&f.name) {
                Target::Field(field)
            } else if tags && f.name == "tag-key" {
                Target::TagKey
            } else if tags && f.name == "tag-value" {
                Target::TagValue
            } else if let Some(k) = f.name.strip_prefix("tag:").filter(|_| tags) {
                Target::Tag(k.to_string())
            } else {
                return Err((
                    "InvalidParameterValue",
                    format!("The filter '{}' is invalid", f.name),
                ));
            };
            let mut patterns = Vec::with_capacity(f.values.len());
            for v in &f.values {
                if v.chars().count() > MAX_VALUE_CHARS {
                    return Err((
                        "FilterLimitExceeded",
                        format!(
                            "The maximum length for a filter value is {MAX_VALUE_CHARS} characters"
                        ),
                    ));
                }
                patterns.push(compile_pattern(v));
            }
            items.push((target, patterns));
        }
        Ok(Filters { items })
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    pub fn matches(&self, r: &dyn Filterable<F>) -> bool {
        self.items.iter().all(|(target, patterns)| {
            let mut hit = false;
            let mut test = |v: &str| {
                if !hit && patterns.iter().any(|p| p.matches(v)) {
                    hit = true;
                }
            };
            match target {
                Target::Field(field) => r.field(*field, &mut test),
                Target::TagKey => r.tags().iter().for_each(|(k, _)| test(k)),
                Target::TagValue => r.tags().iter().for_each(|(_, v)| test(v)),
                Target::Tag(key) => r
                    .tags()
                    .iter()
                    .filter(|(k, _)| k == key)
                    .for_each(|(_, v)| test(v)),
            }
            hit
        })
    }

    /// The values of field `name` when every value of every such filter is exact (no
    /// wildcard): an index can then answer it. `None` when the field is not filtered on or a
    /// value is a pattern.
    pub fn exact(&self, field: F) -> Option<Vec<&str>> {
        let mut found: Option<Vec<&str>> = None;
        for (target, patterns) in &self.items {
            if matches!(target, Target::Field(n) if *n == field) {
                let vals: Option<Vec<&str>> = patterns
                    .iter()
                    .map(|p| match p {
                        Pattern::Exact(s) => Some(s.as_str()),
                        Pattern::Glob(_) => None,
                    })
                    .collect();
                let vals = vals?;
                // Two filters on the same field must both hold: keep the intersection.
                found = Some(match found {
                    None => vals,
                    Some(prev) => prev.into_iter().filter(|v| vals.contains(v)).collect(),
                });
            }
        }
        found
    }

    /// The first `tag:K` filter whose values are all exact, for an index lookup.
    pub fn exact_tag(&self) -> Option<(&str, Vec<&str>)> {
        self.items
            .iter()
            .find_map(|(target, patterns)| match target {
                Target::Tag(k) => {
                    let vals: Option<Vec<&str>> = patterns
                        .iter()
                        .map(|p| match p {
                            Pattern::Exact(s) => Some(s.as_str()),
                            Pattern::Glob(_) => None,
                        })
                        .collect();
                    Some((k.as_str(), vals?))
                }
                _ => None,
            })
    }
}

fn compile_pattern(v: &str) -> Pattern {
    if !v.contains(['*', '?', '\\']) {
        return Pattern::Exact(v.to_string());
    }
    let mut toks = Vec::with_capacity(v.len());
    let mut chars = v.chars();
    while let Some(c) = chars.next() {
        toks.push(match c {
            '*' => Tok::Any,
            '?' => Tok::One,
            '\\' => Tok::Char(chars.next().unwrap_or('\\')),
            c => Tok::Char(c),
        });
    }
    Pattern::Glob(toks)
}

impl Pattern {
    fn matches(&self, v: &str) -> bool {
        match self {
            Pattern::Exact(s) => s == v,
            Pattern::Glob(toks) => {
                let chars: Vec<char> = v.chars().collect();
                glob(toks, &chars)
            }
        }
    }
}

/// Wildcard match with the classic single-backtrack algorithm: linear for one `*`, never
/// exponential.
fn glob(p: &[Tok], s: &[char]) -> bool {
    let (mut pi, mut si) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while si < s.len() {
        match p.get(pi) {
            Some(Tok::Any) => {
                star = Some((pi, si));
                pi += 1;
            }
            Some(Tok::One) => {
                pi += 1;
                si += 1;
            }
            Some(Tok::Char(c)) if *c == s[si] => {
                pi += 1;
                si += 1;
            }
            _ => match star {
                Some((sp, ss)) => {
                    pi = sp + 1;
                    si = ss + 1;
                    star = Some((sp, ss + 1));
                }
                None => return false,
            },
        }
    }
    p[pi..].iter().all(|t| *t == Tok::Any)
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Key {
        name: String,
        tags: Vec<(String, String)>,
    }

    #[derive(Debug, Clone, Copy, PartialEq)]
    struct KeyName;

    fn key_name(n: &str) -> Option<KeyName> {
        (n == "key-name").then_some(KeyName)
    }

    fn none(_: &str) -> Option<KeyName> {
        None
    }

    impl Filterable<KeyName> for Key {
        fn field(&self, KeyName: KeyName, out: &mut dyn FnMut(&str)) {
            out(&self.name)
        }
        fn tags(&self) -> &[(String, String)] {
            &self.tags
        }
    }

    fn f(name: &str, values: &[&str]) -> Filter {
        Filter {
            name: name.into(),
            values: values.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn key(name: &str, tags: &[(&str, &str)]) -> Key {
        Key {
            name: name.into(),
            tags: tags
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    #[test]
    fn wildcards() {
        let p = compile_pattern("k*");
        assert!(p.matches("k") && p.matches("kumo") && !p.matches("ak"));
        let p = compile_pattern("a?c");
        assert!(p.matches("abc") && !p.matches("ac") && !p.matches("abbc"));
        let p = compile_pattern("*b*b*");
        assert!(p.matches("abab") && !p.matches("ab"));
        let p = compile_pattern("a\\*");
        assert!(p.matches("a*") && !p.matches("ab"));
    }

    #[test]
    fn and_of_or() {
        let fs = Filters::compile(
            &[f("key-name", &["a*", "zz"]), f("tag:env", &["dev"])],
            key_name,
            true,
        )
        .unwrap();
        assert!(fs.matches(&key("abc", &[("env", "dev")])));
        assert!(fs.matches(&key("zz", &[("env", "dev")])));
        assert!(!fs.matches(&key("abc", &[("env", "prod")])));
        assert!(!fs.matches(&key("b", &[("env", "dev")])));
    }

    #[test]
    fn tag_key_and_value() {
        let fs = Filters::compile(
            &[f("tag-key", &["env"]), f("tag-value", &["d*"])],
            none,
            true,
        )
        .unwrap();
        assert!(fs.matches(&key("x", &[("env", "dev")])));
        assert!(!fs.matches(&key("x", &[("team", "dev")])));
    }

    #[test]
    fn unknown_filter_is_invalid() {
        let e = Filters::compile(&[f("public-ip", &["1"])], key_name, true).unwrap_err();
        assert_eq!(
            e,
            (
                "InvalidParameterValue",
                "The filter 'public-ip' is invalid".to_string()
            )
        );
        assert!(Filters::compile(&[f("tag:x", &["1"])], none, false).is_err());
    }

    #[test]
    fn exact_values_for_indexes() {
        let fs = Filters::compile(
            &[f("key-name", &["a", "b"]), f("tag:env", &["dev"])],
            key_name,
            true,
        )
        .unwrap();
        assert_eq!(fs.exact(KeyName), Some(vec!["a", "b"]));
        assert_eq!(fs.exact_tag(), Some(("env", vec!["dev"])));
        let fs = Filters::compile(&[f("key-name", &["a*"])], key_name, true).unwrap();
        assert_eq!(fs.exact(KeyName), None);
    }

    #[test]
    fn long_values_are_refused() {
        let long = "x".repeat(256);
        let e = Filters::compile(&[f("key-name", &[&long])], key_name, false).unwrap_err();
        assert_eq!(e.0, "FilterLimitExceeded");
    }
}
