//! Decoding the parameter tree into typed inputs. The generated code calls these for every
//! member; the messages are AWS's.

use crate::error::Ec2Error;
use crate::query::Node;
use crate::types::{Blob, DateTime};
use base64::Engine;
use std::fmt;

/// Where a value sits in the request (`Filter.1.Name`), built only when an error names it.
#[derive(Clone, Copy)]
pub struct Path<'a> {
    parent: Option<&'a Path<'a>>,
    key: &'a str,
}

impl<'a> Path<'a> {
    pub const ROOT: Path<'static> = Path {
        parent: None,
        key: "",
    };

    pub fn child<'b>(&'b self, key: &'b str) -> Path<'b> {
        Path {
            parent: Some(self),
            key,
        }
    }
}

impl fmt::Display for Path<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(p) = self.parent {
            if p.parent.is_some() {
                write!(f, "{p}.")?;
            }
        }
        f.write_str(self.key)
    }
}

/// A type that can be read from the parameter tree.
pub trait Decode: Sized {
    fn decode(node: &Node, path: &Path) -> Result<Self, Ec2Error>;
}

pub fn missing(path: &Path) -> Ec2Error {
    Ec2Error::missing_parameter(&path.to_string())
}

pub fn unknown(path: &Path) -> Ec2Error {
    Ec2Error::new(
        "UnknownParameter",
        format!("The parameter {path} is not recognized"),
    )
}

fn invalid(path: &Path, value: &str) -> Ec2Error {
    Ec2Error::invalid_value(format!("Value ({value}) for parameter {path} is invalid."))
}

/// A structure without members accepts no sub-keys.
pub fn no_members(node: &Node, path: &Path) -> Result<(), Ec2Error> {
    match node.children.first() {
        Some((k, _)) => Err(unknown(&path.child(k))),
        None => Ok(()),
    }
}

/// The scalar text at `node`. A scalar has no sub-keys.
fn text<'n>(node: &'n Node, path: &Path) -> Result<&'n str, Ec2Error> {
    if let Some((k, _)) = node.children.first() {
        return Err(unknown(&path.child(k)));
    }
    node.value.as_deref().ok_or_else(|| missing(path))
}

impl Decode for String {
    fn decode(node: &Node, path: &Path) -> Result<Self, Ec2Error> {
        text(node, path).map(str::to_string)
    }
}

impl Decode for bool {
    fn decode(node: &Node, path: &Path) -> Result<Self, Ec2Error> {
        let t = text(node, path)?;
        if t.eq_ignore_ascii_case("true") {
            Ok(true)
        } else if t.eq_ignore_ascii_case("false") {
            Ok(false)
        } else {
            Err(invalid(path, t))
        }
    }
}

macro_rules! decode_number {
    ($($t:ty),*) => {$(
        impl Decode for $t {
            fn decode(node: &Node, path: &Path) -> Result<Self, Ec2Error> {
                let t = text(node, path)?;
                t.trim().parse().map_err(|_| invalid(path, t))
            }
        }
    )*};
}
decode_number!(i32, i64);

impl Decode for f64 {
    fn decode(node: &Node, path: &Path) -> Result<Self, Ec2Error> {
        let t = text(node, path)?;
        match t.trim().parse::<f64>() {
            Ok(v) if v.is_finite() => Ok(v),
            _ => Err(invalid(path, t)),
        }
    }
}

impl Decode for DateTime {
    fn decode(node: &Node, path: &Path) -> Result<Self, Ec2Error> {
        let t = text(node, path)?;
        DateTime::parse(t.trim()).ok_or_else(|| invalid(path, t))
    }
}

impl Decode for Blob {
    fn decode(node: &Node, path: &Path) -> Result<Self, Ec2Error> {
        let t = text(node, path)?;
        base64::engine::general_purpose::STANDARD
            .decode(t.trim())
            .map(Blob)
            .map_err(|_| Ec2Error::invalid_value(format!("Invalid BASE64 encoding of {path}")))
    }
}

/// Lists arrive flattened as `Name.1`, `Name.2`, …; the items come back in index order.
impl<T: Decode> Decode for Vec<T> {
    fn decode(node: &Node, path: &Path) -> Result<Self, Ec2Error> {
        if node.value.is_some() && node.children.is_empty() {
            // `Name=x` where `Name.1=x` was meant.
            return Err(unknown(path));
        }
        let mut items: Vec<(u32, &String, &Node)> = Vec::with_capacity(node.children.len());
        for (k, child) in &node.children {
            match k.parse::<u32>() {
                Ok(i) if i > crate::query::MAX_LIST_INDEX => {
                    return Err(Ec2Error::new(
                        "InvalidQueryParameter",
                        format!(
                            "The AWS query string is malformed or does not adhere to AWS standards: the index of {} is more than {}.",
                            path.child(k),
                            crate::query::MAX_LIST_INDEX
                        ),
                    ))
                }
                Ok(i) if i >= 1 && !k.starts_with('0') => items.push((i, k, child)),
                _ => return Err(unknown(&path.child(k))),
            }
        }
        items.sort_by_key(|(i, _, _)| *i);
        items
            .into_iter()
            .map(|(_, k, child)| T::decode(child, &path.child(k)))
            .collect()
    }
}

/// A string member whose shape is an enum: the value must be one of the model's.
pub fn enum_value(node: &Node, path: &Path, allowed: &[&str]) -> Result<String, Ec2Error> {
    let t = text(node, path)?;
    if allowed.contains(&t) {
        Ok(t.to_string())
    } else {
        Err(invalid(path, t))
    }
}

/// A list of enum values.
pub fn enum_list(node: &Node, path: &Path, allowed: &[&str]) -> Result<Vec<String>, Ec2Error> {
    let raw = Vec::<String>::decode(node, path)?;
    for v in &raw {
        if !allowed.contains(&v.as_str()) {
            return Err(invalid(path, v));
        }
    }
    Ok(raw)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(body: &str) -> Node {
        Node::parse(body.as_bytes()).unwrap()
    }

    #[test]
    fn path_display() {
        let root = Path::ROOT;
        let a = root.child("Filter");
        let b = a.child("1");
        let c = b.child("Name");
        assert_eq!(c.to_string(), "Filter.1.Name");
        assert_eq!(a.to_string(), "Filter");
    }

    #[test]
    fn lists_sort_by_index() {
        let n = node("L.2=b&L.1=a&L.10=c");
        let v = Vec::<String>::decode(n.get("L").unwrap(), &Path::ROOT.child("L")).unwrap();
        assert_eq!(v, ["a", "b", "c"]);
    }

    #[test]
    fn list_indexes_are_capped() {
        let n = node("L.10000=a&L.10001=b");
        let e = Vec::<String>::decode(n.get("L").unwrap(), &Path::ROOT.child("L")).unwrap_err();
        assert_eq!(e.code(), "InvalidQueryParameter");
        assert!(e.message().contains("L.10001"), "{}", e.message());
        let n = node("L.10000=a&L.1=b");
        let v = Vec::<String>::decode(n.get("L").unwrap(), &Path::ROOT.child("L")).unwrap();
        assert_eq!(v, ["b", "a"]);
    }

    #[test]
    fn list_rejects_non_numeric_index() {
        let n = node("L.x=b");
        let e = Vec::<String>::decode(n.get("L").unwrap(), &Path::ROOT.child("L")).unwrap_err();
        assert_eq!(e.code(), "UnknownParameter");
        assert!(e.message().contains("L.x"), "{}", e.message());
    }

    #[test]
    fn bad_scalars_are_invalid_values() {
        let n = node("B=maybe&I=12x&D=2026-99-01T00:00:00Z&X=%%%");
        let p = Path::ROOT;
        assert_eq!(
            bool::decode(n.get("B").unwrap(), &p.child("B"))
                .unwrap_err()
                .code(),
            "InvalidParameterValue"
        );
        assert_eq!(
            i32::decode(n.get("I").unwrap(), &p.child("I"))
                .unwrap_err()
                .code(),
            "InvalidParameterValue"
        );
        assert_eq!(
            DateTime::decode(n.get("D").unwrap(), &p.child("D"))
                .unwrap_err()
                .code(),
            "InvalidParameterValue"
        );
        assert_eq!(
            Blob::decode(n.get("X").unwrap(), &p.child("X"))
                .unwrap_err()
                .code(),
            "InvalidParameterValue"
        );
    }

    #[test]
    fn enum_values_are_checked() {
        let n = node("K=rsa&J=dsa");
        let p = Path::ROOT;
        assert_eq!(
            enum_value(n.get("K").unwrap(), &p.child("K"), &["rsa", "ed25519"]).unwrap(),
            "rsa"
        );
        let e = enum_value(n.get("J").unwrap(), &p.child("J"), &["rsa", "ed25519"]).unwrap_err();
        assert_eq!(e.message(), "Value (dsa) for parameter J is invalid.");
    }
}
