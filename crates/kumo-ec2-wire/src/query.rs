//! The form body of an EC2 request, as a tree: `Filter.1.Value.2=x` becomes
//! `Filter → 1 → Value → 2 = x`. The generated decoders walk this tree guided by the model.

use crate::error::Ec2Error;

/// Deeper keys than this are never part of a valid EC2 request; refusing them bounds the
/// work (and the recursion) any body can cause.
const MAX_DEPTH: usize = 16;

/// One node of the parameter tree.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Node {
    /// The value given for exactly this key, if any.
    pub value: Option<String>,
    /// Sub-keys in the order they first appeared.
    pub children: Vec<(String, Node)>,
}

impl Node {
    /// Parses an `application/x-www-form-urlencoded` body (or query string).
    pub fn parse(body: &[u8]) -> Result<Node, Ec2Error> {
        let mut root = Node::default();
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
        Ok(root)
    }

    fn child_mut(&mut self, key: &str) -> &mut Node {
        // Clients send keys in order, so the match, when there is one, is usually the last.
        let pos = self.children.iter().rposition(|(k, _)| k == key);
        let i = match pos {
            Some(i) => i,
            None => {
                self.children.push((key.to_string(), Node::default()));
                self.children.len() - 1
            }
        };
        &mut self.children[i].1
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
}
