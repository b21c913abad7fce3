//! The form body of an EC2 request, as a tree: `Filter.1.Value.2=x` becomes
//! `Filter → 1 → Value → 2 = x`. The generated decoders walk this tree guided by the model.
//!
//! Building the tree is linear in the body: a level with many keys is indexed by a hash map
//! while it is built, so a body of a hundred thousand sibling keys costs what its bytes cost,
//! not the square of its keys. The number of parameters and the list indexes are capped, so no
//! body can make the decoders that follow do more than a bounded amount of work.

use crate::error::Ec2Error;
use std::collections::HashMap;

/// Deeper keys than this are never part of a valid EC2 request; refusing them bounds the
/// work (and the recursion) any body can cause.
const MAX_DEPTH: usize = 16;

/// The most parameters one request may carry. AWS documents no number; the largest requests
/// its documented limits allow stay well below it (CreateTags on 1,000 resources with 50
/// tags is 1,100 parameters; DescribeInstanceStatus takes 100 ids, a filter 200 values).
pub const MAX_PARAMETERS: usize = 10_000;

/// The largest list index (`Name.N`) accepted: no list can hold more items than a request
/// holds parameters.
pub const MAX_LIST_INDEX: u32 = MAX_PARAMETERS as u32;

/// A level switches from a scan of its keys to a hash map once it has this many.
const INDEX_FROM: usize = 16;

/// One node of the parameter tree.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Node {
    /// The value given for exactly this key, if any.
    pub value: Option<String>,
    /// Sub-keys in the order they first appeared.
    pub children: Vec<(String, Node)>,
}

/// A node while the tree is built: its children, and for a wide level their positions by key.
#[derive(Default)]
struct Building {
    value: Option<String>,
    children: Vec<(String, Building)>,
    index: Option<HashMap<String, usize>>,
}

impl Building {
    fn child_mut(&mut self, key: &str) -> &mut Building {
        let found = match &self.index {
            Some(index) => index.get(key).copied(),
            // Clients send keys in order, so the match, when there is one, is usually the last.
            None => self.children.iter().rposition(|(k, _)| k == key),
        };
        let i = match found {
            Some(i) => i,
            None => {
                let i = self.children.len();
                self.children.push((key.to_string(), Building::default()));
                match &mut self.index {
                    Some(index) => {
                        index.insert(key.to_string(), i);
                    }
                    None if self.children.len() >= INDEX_FROM => {
                        let index = self
                            .children
                            .iter()
                            .enumerate()
                            .map(|(i, (k, _))| (k.clone(), i))
                            .collect();
                        self.index = Some(index);
                    }
                    None => {}
                }
                i
            }
        };
        &mut self.children[i].1
    }

    fn finish(self) -> Node {
        Node {
            value: self.value,
            children: self
                .children
                .into_iter()
                .map(|(k, b)| (k, b.finish()))
                .collect(),
        }
    }
}

/// AWS's answer to a body that does not keep to the query protocol's bounds.
fn malformed(detail: &str) -> Ec2Error {
    Ec2Error::new(
        "InvalidQueryParameter",
        format!("The AWS query string is malformed or does not adhere to AWS standards: {detail}"),
    )
}

impl Node {
    /// Parses an `application/x-www-form-urlencoded` body (or query string).
    pub fn parse(body: &[u8]) -> Result<Node, Ec2Error> {
        // Counting the pairs first costs one scan for `&` and refuses an oversized body before
        // any of it is decoded.
        let pairs = body.split(|&b| b == b'&').filter(|p| !p.is_empty()).count();
        if pairs > MAX_PARAMETERS {
            return Err(malformed(&format!(
                "the request has {pairs} parameters, more than {MAX_PARAMETERS}."
            )));
        }
        let mut root = Building::default();
        for (key, value) in form_urlencoded::parse(body) {
            if key.is_empty() {
                continue;
            }
            if key.split('.').count() > MAX_DEPTH {
                return Err(Ec2Error::new(
                    "UnknownParameter",
                    format!("The parameter {key} is not recognized"),
                ));
            }
            let mut node = &mut root;
            for seg in key.split('.') {
                node = node.child_mut(seg);
            }
            node.value = Some(value.into_owned());
        }
        Ok(root.finish())
    }

    /// Removes a top-level key and returns its value: how `Action` and `Version` are taken out
    /// before the rest is decoded as the operation's input.
    pub fn take(&mut self, key: &str) -> Option<String> {
        let i = self.children.iter().position(|(k, _)| k == key)?;
        self.children.remove(i).1.value
    }

    pub fn get(&self, key: &str) -> Option<&Node> {
        self.children.iter().find(|(k, _)| k == key).map(|(_, n)| n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_the_tree() {
        let n = Node::parse(b"Action=DescribeKeyPairs&Filter.1.Name=tag%3AName&Filter.1.Value.1=a+b&Filter.1.Value.2=c").unwrap();
        let f = n.get("Filter").unwrap().get("1").unwrap();
        assert_eq!(f.get("Name").unwrap().value.as_deref(), Some("tag:Name"));
        let v = f.get("Value").unwrap();
        assert_eq!(v.get("1").unwrap().value.as_deref(), Some("a b"));
        assert_eq!(v.get("2").unwrap().value.as_deref(), Some("c"));
    }

    #[test]
    fn take_removes_action() {
        let mut n = Node::parse(b"Action=X&Version=2016-11-15&A=1").unwrap();
        assert_eq!(n.take("Action").as_deref(), Some("X"));
        assert_eq!(n.take("Version").as_deref(), Some("2016-11-15"));
        assert_eq!(n.children.len(), 1);
    }

    #[test]
    fn refuses_deep_keys() {
        let key = vec!["a"; 100].join(".");
        let err = Node::parse(format!("{key}=1").as_bytes()).unwrap_err();
        assert_eq!(err.code(), "UnknownParameter");
    }

    #[test]
    fn wide_levels_keep_order_and_the_last_value() {
        // More siblings than the scan handles: the indexed level must behave the same.
        let mut body = String::new();
        for i in (0..200).rev() {
            body.push_str(&format!("K{i}.Sub=a&"));
        }
        body.push_str("K7.Sub=b&K7.Other=c");
        let n = Node::parse(body.as_bytes()).unwrap();
        assert_eq!(n.children.len(), 200);
        assert_eq!(n.children[0].0, "K199");
        assert_eq!(n.children[199].0, "K0");
        let k7 = n.get("K7").unwrap();
        assert_eq!(k7.get("Sub").unwrap().value.as_deref(), Some("b"));
        assert_eq!(k7.get("Other").unwrap().value.as_deref(), Some("c"));
    }

    #[test]
    fn parameter_cap() {
        let at_cap: String = (0..MAX_PARAMETERS).map(|i| format!("k{i}=1&")).collect();
        assert_eq!(
            Node::parse(at_cap.as_bytes()).unwrap().children.len(),
            MAX_PARAMETERS
        );
        let over = format!("{at_cap}extra=1");
        let e = Node::parse(over.as_bytes()).unwrap_err();
        assert_eq!(e.code(), "InvalidQueryParameter");
        assert!(e.message().contains("10001 parameters"), "{}", e.message());
    }

    #[test]
    fn many_distinct_siblings() {
        // The attack's shape, at the cap: distinct keys at one level all land, in order (how
        // fast is `bench`'s business: `kumo bench --scenario big-bodies`).
        let body: String = (0..MAX_PARAMETERS)
            .map(|i| format!("Key{i:06}=v{i}&"))
            .collect();
        let n = Node::parse(body.as_bytes()).unwrap();
        assert_eq!(n.children.len(), MAX_PARAMETERS);
        assert_eq!(n.children[9_999].0, "Key009999");
        assert_eq!(n.get("Key004242").unwrap().value.as_deref(), Some("v4242"));
    }
}
