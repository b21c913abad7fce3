//! A signed JSON POST over plain HTTP to a Kumo, for the operator commands (`kumo admin`,
//! `kumo ssm`).

use kumo_api::sigv4;
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::net::TcpStream;

/// Where an operator command (`kumo admin`, `kumo ssm`) acts: the server, and the instance's
/// region and account.
#[derive(clap::Args)]
pub struct Target {
    /// The server.
    #[arg(long, global = true, default_value = "http://127.0.0.1:4566")]
    pub endpoint_url: String,
    /// The instance's region (else AWS_REGION, AWS_DEFAULT_REGION, us-east-1).
    #[arg(long, global = true)]
    pub region: Option<String>,
    /// The instance's account on an open-auth server (else a 12-digit AWS_ACCESS_KEY_ID, else
    /// 000000000000). A strict server takes the account of the signing key.
    #[arg(long, global = true)]
    pub account: Option<String>,
}

fn env(k: &str) -> Option<String> {
    std::env::var(k).ok().filter(|v| !v.is_empty())
}

impl Target {
    /// The region and account: the flags, else the AWS CLI's environment (a 12-digit access
    /// key is its own account, as Kumo's open auth reads it).
    pub fn region_and_account(&self) -> (String, String) {
        let region = self
            .region
            .clone()
            .or_else(|| env("AWS_REGION"))
            .or_else(|| env("AWS_DEFAULT_REGION"))
            .unwrap_or_else(|| "us-east-1".into());
        let account = self
            .account
            .clone()
            .or_else(|| {
                env("AWS_ACCESS_KEY_ID")
                    .filter(|k| k.len() == 12 && k.bytes().all(|b| b.is_ascii_digit()))
            })
            .unwrap_or_else(|| "000000000000".into());
        (region, account)
    }

    /// The key that signs: the AWS CLI's environment credentials (which a strict server
    /// checks), unless `--account` names the account for an open server, which reads it from
    /// a 12-digit key and accepts any secret.
    fn keys(&self) -> (String, String, Option<String>) {
        let (_, account) = self.region_and_account();
        match (
            self.account.is_none(),
            env("AWS_ACCESS_KEY_ID"),
            env("AWS_SECRET_ACCESS_KEY"),
        ) {
            (true, Some(k), Some(s)) => (k, s, env("AWS_SESSION_TOKEN")),
            _ => (account, "kumo".into(), None),
        }
    }

    /// POSTs `body` to `path`, signed for `service` in the target's region, with extra
    /// headers; returns the status and the JSON answer. An error in EC2's XML envelope comes
    /// back as `{"code": …, "message": …}`.
    pub fn post_json(
        &self,
        service: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &Value,
    ) -> Result<(u16, Value), HttpError> {
        let host = self
            .endpoint_url
            .strip_prefix("http://")
            .ok_or(HttpError::NotHttp)?
            .split('/')
            .next()
            .unwrap_or("")
            .to_string();
        let (region, _) = self.region_and_account();
        let (key, secret, token) = self.keys();
        let signer = sigv4::Signer {
            access_key: &key,
            secret: &secret,
            token: token.as_deref(),
            region: &region,
            service,
        };
        let text = body.to_string();
        let auth = sigv4::authorize(
            &signer,
            &sigv4::Outgoing {
                method: "POST",
                path,
                query: "",
                host: &host,
                headers,
                body: text.as_bytes(),
            },
            kumo_ec2_wire::DateTime::now().0,
        );
        let mut req = format!("POST {path} HTTP/1.1\r\nhost: {host}\r\n");
        for (k, v) in headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        for (k, v) in &auth {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        req.push_str(&format!(
            "content-length: {}\r\nconnection: close\r\n\r\n{text}",
            text.len()
        ));
        let io = |source| HttpError::Io {
            host: host.clone(),
            source,
        };
        let mut conn = TcpStream::connect(&host).map_err(io)?;
        conn.write_all(req.as_bytes()).map_err(io)?;
        let mut raw = Vec::new();
        conn.read_to_end(&mut raw).map_err(io)?;
        let raw = String::from_utf8_lossy(&raw);
        let (head, body) = raw.split_once("\r\n\r\n").ok_or(HttpError::Truncated)?;
        let status = head.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
        Ok((status, answer(body)))
    }
}

/// Why a call to the server got no answer.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("the endpoint must be http://")]
    NotHttp,
    #[error("{host}: {source}")]
    Io {
        host: String,
        #[source]
        source: std::io::Error,
    },
    #[error("truncated response")]
    Truncated,
}

/// A response body as JSON: JSON as it is, EC2's XML error envelope as its code and message.
fn answer(body: &str) -> Value {
    let body = body.trim();
    if body.starts_with('<') {
        let err = crate::xml::parse(body).ok();
        let err = err
            .as_ref()
            .and_then(|r| r.child("Errors"))
            .and_then(|e| e.child("Error"));
        return json!({
            "code": err.and_then(|e| e.text_of("Code")).unwrap_or("error"),
            "message": err.and_then(|e| e.text_of("Message")).unwrap_or(""),
        });
    }
    serde_json::from_str(body).unwrap_or(Value::Null)
}

#[cfg(test)]
mod tests {
    use super::answer;

    #[test]
    fn xml_errors_become_code_and_message() {
        let v = answer("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response><Errors><Error><Code>UnauthorizedOperation</Code><Message>No.</Message></Error></Errors><RequestID>r</RequestID></Response>");
        assert_eq!(v["code"], "UnauthorizedOperation");
        assert_eq!(v["message"], "No.");
        assert_eq!(answer("{\"a\":1}")["a"], 1);
    }
}
