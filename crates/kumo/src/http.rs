//! A JSON POST over plain HTTP to a Kumo on loopback, for the operator commands (`kumo admin`,
//! `kumo ssm`).

use serde_json::Value;
use std::io::{Read, Write};
use std::net::TcpStream;

/// POSTs `body` to `path` with extra headers; returns the status and the JSON answer.
pub fn post_json(
    endpoint: &str,
    path: &str,
    headers: &[(&str, String)],
    body: &Value,
) -> Result<(u16, Value), String> {
    let host = endpoint
        .strip_prefix("http://")
        .ok_or("the endpoint must be http://")?
        .split('/')
        .next()
        .unwrap_or("");
    let mut conn =
        TcpStream::connect(host).map_err(|e| format!("cannot connect to {host}: {e}"))?;
    let text = body.to_string();
    let mut req = format!("POST {path} HTTP/1.1\r\nHost: {host}\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str(&format!(
        "Content-Length: {}\r\nConnection: close\r\n\r\n{text}",
        text.len()
    ));
    conn.write_all(req.as_bytes()).map_err(|e| e.to_string())?;
    let mut raw = Vec::new();
    conn.read_to_end(&mut raw).map_err(|e| e.to_string())?;
    let raw = String::from_utf8_lossy(&raw);
    let (head, body) = raw.split_once("\r\n\r\n").ok_or("truncated response")?;
    let status = head.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
    Ok((
        status,
        serde_json::from_str(body.trim()).unwrap_or(Value::Null),
    ))
}

/// Where an operator command (`kumo admin`, `kumo ssm`) acts: the server, and the instance's
/// region and account.
#[derive(clap::Args)]
pub struct Target {
    /// The server.
    #[arg(long, global = true, default_value = "http://127.0.0.1:4566")]
    pub endpoint_url: String,
    /// The instance's region (else AWS_REGION, AWS_DEFAULT_REGION, us-east-1).
    #[arg(long, global = true)]
    region: Option<String>,
    /// The instance's account (else a 12-digit AWS_ACCESS_KEY_ID, else 000000000000).
    #[arg(long, global = true)]
    account: Option<String>,
}

impl Target {
    /// The region and account: the flags, else the AWS CLI's environment (a 12-digit access
    /// key is its own account, as Kumo's open auth reads it).
    pub fn region_and_account(&self) -> (String, String) {
        let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
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
}
