//! A small XML reader for AWS responses: elements and text, no attributes, no DTDs.

/// An element: its local name, its text, its children.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct El {
    pub name: String,
    pub text: String,
    pub children: Vec<El>,
}

impl El {
    pub fn child(&self, name: &str) -> Option<&El> {
        self.children.iter().find(|c| c.name == name)
    }

    /// The text of a direct child.
    pub fn text_of(&self, name: &str) -> Option<&str> {
        self.child(name).map(|c| c.text.as_str())
    }

    /// The `<item>`s of a list child.
    pub fn items<'a>(&'a self, list: &str) -> impl Iterator<Item = &'a El> + 'a {
        self.child(list).into_iter().flat_map(|l| l.children.iter())
    }
}

fn unescape(s: &str) -> String {
    if !s.contains('&') {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        let Some(end) = rest.find(';') else { break };
        let ent = &rest[1..end];
        let ch = match ent {
            "lt" => Some('<'),
            "gt" => Some('>'),
            "amp" => Some('&'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            e if e.starts_with("#x") => u32::from_str_radix(&e[2..], 16)
                .ok()
                .and_then(char::from_u32),
            e if e.starts_with('#') => e[1..].parse().ok().and_then(char::from_u32),
            _ => None,
        };
        match ch {
            Some(c) => {
                out.push(c);
                rest = &rest[end + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// Why a document is not XML Kumo can read.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct XmlError(&'static str);

/// Parses a document into its root element.
pub fn parse(doc: &str) -> Result<El, XmlError> {
    let bad = XmlError;
    let mut stack: Vec<El> = vec![El::default()];
    let mut rest = doc;
    while !rest.is_empty() {
        let Some(lt) = rest.find('<') else {
            if let Some(top) = stack.last_mut() {
                top.text.push_str(&unescape(rest));
            }
            break;
        };
        if lt > 0 {
            if let Some(top) = stack.last_mut() {
                top.text.push_str(&unescape(&rest[..lt]));
            }
        }
        rest = &rest[lt..];
        if let Some(r) = rest.strip_prefix("<?") {
            rest = &r[r.find("?>").ok_or(bad("unterminated declaration"))? + 2..];
        } else if let Some(r) = rest.strip_prefix("<!--") {
            rest = &r[r.find("-->").ok_or(bad("unterminated comment"))? + 3..];
        } else if let Some(r) = rest.strip_prefix("</") {
            let gt = r.find('>').ok_or(bad("unterminated end tag"))?;
            let done = stack.pop().ok_or(bad("unbalanced end tag"))?;
            let parent = stack.last_mut().ok_or(bad("unbalanced end tag"))?;
            parent.children.push(done);
            rest = &r[gt + 1..];
        } else {
            let gt = rest.find('>').ok_or(bad("unterminated tag"))?;
            let tag = &rest[1..gt];
            let self_closing = tag.ends_with('/');
            let tag = tag.trim_end_matches('/');
            let name = tag.split_whitespace().next().unwrap_or("");
            let name = name.rsplit(':').next().unwrap_or(name).to_string();
            let el = El {
                name,
                ..El::default()
            };
            if self_closing {
                stack.last_mut().ok_or(bad("no parent"))?.children.push(el);
            } else {
                stack.push(el);
            }
            rest = &rest[gt + 1..];
        }
    }
    let mut top = stack.pop().ok_or(bad("empty document"))?;
    if !stack.is_empty() {
        return Err(bad("unclosed element"));
    }
    top.children.pop().ok_or(bad("no root element"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_aws_shapes() {
        let doc = r#"<?xml version="1.0" encoding="UTF-8"?>
<DescribeSubnetsResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"><requestId>r</requestId>
<subnetSet><item><subnetId>subnet-1</subnetId><tagSet/><cidrBlock>10.0.0.0/24</cidrBlock></item></subnetSet></DescribeSubnetsResponse>"#;
        let root = parse(doc).unwrap();
        assert_eq!(root.name, "DescribeSubnetsResponse");
        let items: Vec<&El> = root.items("subnetSet").collect();
        assert_eq!(items.len(), 1);
        assert_eq!(items[0].text_of("cidrBlock"), Some("10.0.0.0/24"));
        assert!(items[0].child("tagSet").unwrap().children.is_empty());
    }

    #[test]
    fn unescapes_text() {
        let root = parse("<a>x &lt;&amp;&gt; &#65;&#x42;</a>").unwrap();
        assert_eq!(root.text, "x <&> AB");
        assert!(parse("<a><b></a>").is_err());
    }
}
