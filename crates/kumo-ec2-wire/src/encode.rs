//! Writing responses as EC2 does: a `<{Action}Response>` root in the 2016-11-15 namespace,
//! `<requestId>`, then the output members; lists as `<item>` children.

use crate::error::Ec2Error;
use crate::generated::operations::XML_NAMESPACE;
use crate::types::{Blob, DateTime};
use crate::RequestContext;
use base64::Engine;
use std::io::Write;

/// A value that can be written as the content of an XML element.
pub trait Encode {
    fn encode(&self, w: &mut XmlWriter);
}

/// An append-only XML buffer.
#[derive(Default)]
pub struct XmlWriter {
    buf: Vec<u8>,
}

impl XmlWriter {
    pub fn new() -> Self {
        XmlWriter {
            buf: Vec::with_capacity(1024),
        }
    }

    pub fn into_bytes(self) -> Vec<u8> {
        self.buf
    }

    pub fn raw(&mut self, s: &str) {
        self.buf.extend_from_slice(s.as_bytes());
    }

    /// Text content, escaped. Newlines are kept (key material is multi-line PEM).
    pub fn text(&mut self, s: &str) {
        let mut last = 0;
        for (i, b) in s.bytes().enumerate() {
            let esc: &[u8] = match b {
                b'&' => b"&amp;",
                b'<' => b"&lt;",
                b'>' => b"&gt;",
                b'"' => b"&quot;",
                b'\'' => b"&apos;",
                b'\r' => b"&#xD;",
                _ => continue,
            };
            self.buf.extend_from_slice(&s.as_bytes()[last..i]);
            self.buf.extend_from_slice(esc);
            last = i + 1;
        }
        self.buf.extend_from_slice(&s.as_bytes()[last..]);
    }

    /// `<name>value</name>`.
    pub fn field<T: Encode + ?Sized>(&mut self, name: &str, value: &T) {
        self.buf.push(b'<');
        self.raw(name);
        self.buf.push(b'>');
        value.encode(self);
        self.buf.extend_from_slice(b"</");
        self.raw(name);
        self.buf.push(b'>');
    }

    /// `<name><item>…</item>…</name>`, or `<name/>` for an empty list.
    pub fn list<T: Encode>(&mut self, name: &str, item: &str, values: &[T]) {
        if values.is_empty() {
            self.buf.push(b'<');
            self.raw(name);
            self.buf.extend_from_slice(b"/>");
            return;
        }
        self.buf.push(b'<');
        self.raw(name);
        self.buf.push(b'>');
        for v in values {
            self.field(item, v);
        }
        self.buf.extend_from_slice(b"</");
        self.raw(name);
        self.buf.push(b'>');
    }
}

impl Encode for String {
    fn encode(&self, w: &mut XmlWriter) {
        w.text(self);
    }
}

impl Encode for str {
    fn encode(&self, w: &mut XmlWriter) {
        w.text(self);
    }
}

impl Encode for bool {
    fn encode(&self, w: &mut XmlWriter) {
        w.raw(if *self { "true" } else { "false" });
    }
}

macro_rules! encode_display {
    ($($t:ty),*) => {$(
        impl Encode for $t {
            fn encode(&self, w: &mut XmlWriter) {
                let _ = write!(w.buf, "{}", self);
            }
        }
    )*};
}
encode_display!(i32, i64, f64);

impl Encode for DateTime {
    fn encode(&self, w: &mut XmlWriter) {
        w.raw(&self.to_iso8601());
    }
}

impl Encode for Blob {
    fn encode(&self, w: &mut XmlWriter) {
        w.raw(&base64::engine::general_purpose::STANDARD.encode(&self.0));
    }
}

fn open(ctx: &RequestContext, root: &str) -> XmlWriter {
    let mut w = XmlWriter::new();
    w.raw("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<");
    w.raw(root);
    w.raw(" xmlns=\"");
    w.raw(XML_NAMESPACE);
    w.raw("\">");
    w.field("requestId", ctx.request_id.as_str());
    w
}

/// The whole response of an operation with an output shape.
pub fn response<T: Encode>(
    ctx: &RequestContext,
    root: &str,
    output: &T,
) -> Result<Vec<u8>, Ec2Error> {
    if ctx.dry_run {
        return Err(Ec2Error::dry_run());
    }
    let mut w = open(ctx, root);
    output.encode(&mut w);
    w.raw("</");
    w.raw(root);
    w.raw(">");
    Ok(w.into_bytes())
}

/// The response of an operation without an output shape: `<return>true</return>`.
pub fn response_return(ctx: &RequestContext, root: &str) -> Result<Vec<u8>, Ec2Error> {
    response(ctx, root, &ReturnTrue)
}

struct ReturnTrue;

impl Encode for ReturnTrue {
    fn encode(&self, w: &mut XmlWriter) {
        w.field("return", &true);
    }
}

/// AWS's error envelope. Note `RequestID`, not `requestId`.
pub fn error_body(err: &Ec2Error, request_id: &str) -> Vec<u8> {
    let mut w = XmlWriter::new();
    w.raw("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response><Errors><Error>");
    w.field("Code", err.code());
    w.field("Message", err.message());
    w.raw("</Error></Errors>");
    w.field("RequestID", request_id);
    w.raw("</Response>");
    w.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_text() {
        let mut w = XmlWriter::new();
        w.field("k", "a<b>&'\"\nc");
        assert_eq!(
            String::from_utf8(w.into_bytes()).unwrap(),
            "<k>a&lt;b&gt;&amp;&apos;&quot;\nc</k>"
        );
    }

    #[test]
    fn empty_list_is_self_closing() {
        let mut w = XmlWriter::new();
        w.list::<String>("tagSet", "item", &[]);
        w.list("keySet", "item", &["a".to_string()]);
        assert_eq!(
            String::from_utf8(w.into_bytes()).unwrap(),
            "<tagSet/><keySet><item>a</item></keySet>"
        );
    }

    #[test]
    fn error_envelope() {
        let e = Ec2Error::new("InvalidKeyPair.NotFound", "The key pair 'x' does not exist");
        let body = String::from_utf8(error_body(&e, "rid")).unwrap();
        assert!(body.ends_with("<Response><Errors><Error><Code>InvalidKeyPair.NotFound</Code><Message>The key pair &apos;x&apos; does not exist</Message></Error></Errors><RequestID>rid</RequestID></Response>"), "{body}");
    }

    #[test]
    fn dry_run_answers_412() {
        let ctx = RequestContext {
            dry_run: true,
            ..Default::default()
        };
        let e = response_return(&ctx, "CreateTagsResponse").unwrap_err();
        assert_eq!((e.code(), e.status()), ("DryRunOperation", 412));
    }
}
