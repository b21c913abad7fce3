//! A minimal EC2 query client with the AWS CLI's resolution rules for credentials, profile,
//! region and endpoint, so Kumo's own tools work against Kumo and against AWS alike.

use crate::xml::{self, El};
use kumo_api::sigv4;
use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::time::Duration;

/// The options every client command takes, named as the AWS CLI names them.
#[derive(clap::Args, Clone, Default)]
pub struct ClientArgs {
    /// Endpoint (else `AWS_ENDPOINT_URL_EC2`, `AWS_ENDPOINT_URL`, then AWS's regional one).
    #[arg(long)]
    pub endpoint_url: Option<String>,
    /// Region (else `AWS_REGION`, `AWS_DEFAULT_REGION`, then the profile's).
    #[arg(long)]
    pub region: Option<String>,
    /// Profile in the shared config and credentials files (else `AWS_PROFILE`, `default`).
    #[arg(long)]
    pub profile: Option<String>,
}

pub struct Client {
    scheme: String,
    host: String,
    port: u16,
    pub region: String,
    access_key: String,
    secret: String,
    token: Option<String>,
}

/// An error answered by the service: its code and message.
#[derive(Debug)]
pub struct ApiError {
    pub code: String,
    pub message: String,
}

fn home() -> PathBuf {
    std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_default()
}

/// Reads an INI file into section → key → value.
fn ini(path: PathBuf) -> HashMap<String, HashMap<String, String>> {
    let mut out: HashMap<String, HashMap<String, String>> = HashMap::new();
    let Ok(text) = std::fs::read_to_string(path) else {
        return out;
    };
    let mut section = String::new();
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('#') || line.starts_with(';') || line.is_empty() {
            continue;
        }
        if let Some(s) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = s.trim().to_string();
        } else if let Some((k, v)) = line.split_once('=') {
            out.entry(section.clone())
                .or_default()
                .insert(k.trim().to_string(), v.trim().to_string());
        }
    }
    out
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// The endpoint as the AWS CLI and SDKs choose it: `--endpoint-url`, else (unless
/// `AWS_IGNORE_CONFIGURED_ENDPOINT_URLS` is true) the service's `AWS_ENDPOINT_URL_EC2` over the
/// global `AWS_ENDPOINT_URL` over the profile's `endpoint_url`, else AWS's regional endpoint.
fn endpoint_url(
    flag: Option<&str>,
    env: impl Fn(&str) -> Option<String>,
    profile: Option<&str>,
    region: &str,
) -> String {
    if let Some(e) = flag {
        return e.to_string();
    }
    let ignore =
        env("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS").is_some_and(|v| v.eq_ignore_ascii_case("true"));
    let configured = (!ignore)
        .then(|| {
            env("AWS_ENDPOINT_URL_EC2")
                .or_else(|| env("AWS_ENDPOINT_URL"))
                .or_else(|| profile.map(str::to_string))
        })
        .flatten();
    configured.unwrap_or_else(|| format!("https://ec2.{region}.amazonaws.com"))
}

/// Why the client has no configuration to call with.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error(
        "no credentials: set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or configure profile '{0}'"
    )]
    NoCredentials(String),
    #[error("no region: use --region, AWS_REGION or the profile's region")]
    NoRegion,
    #[error("bad endpoint URL {0}")]
    Endpoint(String),
    #[error("bad port in {0}")]
    Port(String),
    #[error("unsupported scheme in {0}")]
    Scheme(String),
}

impl Client {
    pub fn new(args: &ClientArgs) -> Result<Client, ConfigError> {
        let profile = args
            .profile
            .clone()
            .or_else(|| env("AWS_PROFILE"))
            .unwrap_or_else(|| "default".into());
        let config = ini(env("AWS_CONFIG_FILE")
            .map(PathBuf::from)
            .unwrap_or_else(|| home().join(".aws/config")));
        let creds = ini(env("AWS_SHARED_CREDENTIALS_FILE")
            .map(PathBuf::from)
            .unwrap_or_else(|| home().join(".aws/credentials")));
        let config_section = config
            .get(&if profile == "default" {
                "default".to_string()
            } else {
                format!("profile {profile}")
            })
            .cloned()
            .unwrap_or_default();
        let cred_section = creds.get(&profile).cloned().unwrap_or_default();
        let (access_key, secret, token) =
            match (env("AWS_ACCESS_KEY_ID"), env("AWS_SECRET_ACCESS_KEY")) {
                (Some(k), Some(s)) if args.profile.is_none() => (k, s, env("AWS_SESSION_TOKEN")),
                _ => {
                    let get = |k: &str| {
                        cred_section
                            .get(k)
                            .or_else(|| config_section.get(k))
                            .cloned()
                    };
                    match (get("aws_access_key_id"), get("aws_secret_access_key")) {
                        (Some(k), Some(s)) => (k, s, get("aws_session_token")),
                        _ => return Err(ConfigError::NoCredentials(profile)),
                    }
                }
            };
        let region = args
            .region
            .clone()
            .or_else(|| env("AWS_REGION"))
            .or_else(|| env("AWS_DEFAULT_REGION"))
            .or_else(|| config_section.get("region").cloned())
            .ok_or(ConfigError::NoRegion)?;
        let endpoint = endpoint_url(
            args.endpoint_url.as_deref(),
            env,
            config_section.get("endpoint_url").map(String::as_str),
            &region,
        );
        let (scheme, rest) = endpoint
            .split_once("://")
            .ok_or_else(|| ConfigError::Endpoint(endpoint.clone()))?;
        let hostport = rest.split('/').next().unwrap_or(rest);
        let (host, port) = match hostport.rsplit_once(':') {
            Some((h, p)) => (
                h.to_string(),
                p.parse().map_err(|_| ConfigError::Port(endpoint.clone()))?,
            ),
            None => (
                hostport.to_string(),
                if scheme == "https" { 443 } else { 80 },
            ),
        };
        if scheme != "http" && scheme != "https" {
            return Err(ConfigError::Scheme(endpoint.clone()));
        }
        Ok(Client {
            scheme: scheme.into(),
            host,
            port,
            region,
            access_key,
            secret,
            token,
        })
    }

    fn host_header(&self) -> String {
        let default = if self.scheme == "https" { 443 } else { 80 };
        if self.port == default {
            self.host.clone()
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// Calls an EC2 action with form parameters; returns the response root.
    pub fn call(&self, action: &str, params: &[(String, String)]) -> Result<El, ApiError> {
        let mut body = form_urlencoded::Serializer::new(String::new());
        body.append_pair("Action", action)
            .append_pair("Version", "2016-11-15");
        for (k, v) in params {
            body.append_pair(k, v);
        }
        let body = body.finish();
        let content_type = "application/x-www-form-urlencoded; charset=utf-8";
        let signer = sigv4::Signer {
            access_key: &self.access_key,
            secret: &self.secret,
            token: self.token.as_deref(),
            region: &self.region,
            service: "ec2",
        };
        let host = self.host_header();
        let auth = sigv4::authorize(
            &signer,
            &sigv4::Outgoing {
                method: "POST",
                path: "/",
                query: "",
                host: &host,
                headers: &[("content-type", content_type)],
                body: body.as_bytes(),
            },
            kumo_ec2_wire::DateTime::now().0,
        );
        let mut req =
            format!("POST / HTTP/1.1\r\nhost: {host}\r\ncontent-type: {content_type}\r\n");
        for (n, v) in &auth {
            req.push_str(&format!("{n}: {v}\r\n"));
        }
        req.push_str(&format!(
            "content-length: {}\r\nconnection: close\r\nuser-agent: kumo\r\n\r\n{body}",
            body.len()
        ));
        let (status, text) = self
            .send(req.as_bytes())
            .and_then(|raw| parse_http(&raw))
            .map_err(|e| ApiError {
                code: "RequestError".into(),
                message: e.to_string(),
            })?;
        let root = xml::parse(&text).map_err(|e| ApiError {
            code: "ResponseError".into(),
            message: format!("unreadable response: {e}"),
        })?;
        if status >= 300 {
            let err = root.child("Errors").and_then(|e| e.child("Error"));
            return Err(ApiError {
                code: err
                    .and_then(|e| e.text_of("Code"))
                    .unwrap_or("HTTP")
                    .to_string(),
                message: err
                    .and_then(|e| e.text_of("Message"))
                    .map(str::to_string)
                    .unwrap_or_else(|| format!("HTTP status {status}")),
            });
        }
        Ok(root)
    }

    fn send(&self, req: &[u8]) -> Result<Vec<u8>, Transport> {
        let stream = TcpStream::connect((self.host.as_str(), self.port))
            .map_err(|e| Transport::Connect(format!("{}:{}", self.host, self.port), e))?;
        stream
            .set_read_timeout(Some(Duration::from_secs(60)))
            .map_err(Transport::Io)?;
        let mut out = Vec::new();
        if self.scheme == "https" {
            let connector = openssl::ssl::SslConnector::builder(openssl::ssl::SslMethod::tls())
                .map_err(|e| Transport::Tls(self.host.clone(), e.to_string()))?
                .build();
            let mut tls = connector
                .connect(&self.host, stream)
                .map_err(|e| Transport::Tls(self.host.clone(), e.to_string()))?;
            tls.write_all(req).map_err(Transport::Io)?;
            tls.read_to_end(&mut out).map_err(Transport::Io)?;
        } else {
            let mut s = stream;
            s.write_all(req).map_err(Transport::Io)?;
            s.read_to_end(&mut out).map_err(Transport::Io)?;
        }
        Ok(out)
    }

    /// Calls a paginated action until the last page, handing each page to `page`.
    pub fn paginate(
        &self,
        action: &str,
        params: &[(String, String)],
        mut page: impl FnMut(&El),
    ) -> Result<(), ApiError> {
        let mut token: Option<String> = None;
        loop {
            let mut p = params.to_vec();
            if let Some(t) = &token {
                p.push(("NextToken".into(), t.clone()));
            }
            let root = self.call(action, &p)?;
            page(&root);
            match root.text_of("nextToken").filter(|t| !t.is_empty()) {
                Some(t) if Some(t) != token.as_deref() => token = Some(t.to_string()),
                _ => return Ok(()),
            }
        }
    }
}

/// Why a request got no HTTP answer to read.
#[derive(Debug, thiserror::Error)]
enum Transport {
    #[error("cannot connect to {0}: {1}")]
    Connect(String, #[source] std::io::Error),
    #[error("TLS with {0} failed: {1}")]
    Tls(String, String),
    #[error("{0}")]
    Io(#[source] std::io::Error),
    #[error("{0}")]
    Malformed(&'static str),
}

/// Splits an HTTP/1.1 response into status and body (content-length or chunked).
fn parse_http(raw: &[u8]) -> Result<(u16, String), Transport> {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or(Transport::Malformed("truncated HTTP response"))?;
    let head = String::from_utf8_lossy(&raw[..end]).to_string();
    let status: u16 = head
        .get(9..12)
        .and_then(|s| s.parse().ok())
        .ok_or(Transport::Malformed("bad HTTP status line"))?;
    let mut body = raw[end + 4..].to_vec();
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        let mut out = Vec::new();
        let mut rest = &body[..];
        while let Some(nl) = rest.windows(2).position(|w| w == b"\r\n") {
            let size = usize::from_str_radix(String::from_utf8_lossy(&rest[..nl]).trim(), 16)
                .map_err(|_| Transport::Malformed("bad chunk size"))?;
            rest = &rest[nl + 2..];
            if size == 0 || rest.len() < size {
                break;
            }
            out.extend_from_slice(&rest[..size]);
            rest = &rest[(size + 2).min(rest.len())..];
        }
        body = out;
    }
    Ok((status, String::from_utf8_lossy(&body).into_owned()))
}

#[cfg(test)]
mod tests {
    use super::{endpoint_url, parse_http};

    #[test]
    fn endpoint_precedence() {
        let vars = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| v.to_string())
            }
        };
        let both = vars(&[
            ("AWS_ENDPOINT_URL", "http://global"),
            ("AWS_ENDPOINT_URL_EC2", "http://ec2"),
        ]);
        assert_eq!(
            endpoint_url(None, both, Some("http://profile"), "r"),
            "http://ec2"
        );
        assert_eq!(
            endpoint_url(Some("http://flag"), both, None, "r"),
            "http://flag"
        );
        let global = vars(&[("AWS_ENDPOINT_URL", "http://global")]);
        assert_eq!(
            endpoint_url(None, global, Some("http://profile"), "r"),
            "http://global"
        );
        assert_eq!(
            endpoint_url(None, vars(&[]), Some("http://profile"), "r"),
            "http://profile"
        );
        let ignored = vars(&[
            ("AWS_ENDPOINT_URL_EC2", "http://ec2"),
            ("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "true"),
        ]);
        assert_eq!(
            endpoint_url(None, ignored, Some("http://profile"), "eu-west-1"),
            "https://ec2.eu-west-1.amazonaws.com"
        );
        assert_eq!(
            endpoint_url(Some("http://flag"), ignored, None, "r"),
            "http://flag"
        );
    }

    #[test]
    fn http_bodies() {
        let (s, b) = parse_http(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc").unwrap();
        assert_eq!((s, b.as_str()), (200, "abc"));
        let (s, b) = parse_http(b"HTTP/1.1 400 Bad\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n").unwrap();
        assert_eq!((s, b.as_str()), (400, "abcde"));
    }
}
