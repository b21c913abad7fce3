//! The instance metadata service on 169.254.169.254, one listener per VPC inside the VPC's
//! network namespace. Instances are told apart by their source address.
//!
//! IMDSv1 and IMDSv2: `PUT /latest/api/token` with a TTL header gives a token, sent with IP TTL
//! set to the instance's hop limit so it does not travel further; `HttpTokens=required` refuses
//! requests without a valid token (401); `HttpEndpoint=disabled` answers 403.

use crate::Metadata;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// What one VPC's listener serves: metadata by instance address, and issued tokens. Beside
/// the metadata it carries Kumo's run-command channel (`/kumo/ssm/…`): the guest's agent
/// takes queued commands and hands back their output, without SSH or a key pair, and opens
/// Session Manager sessions: for a queued session it connects back (`POST
/// /kumo/ssm/session/<id>`), the listener answers `101 Switching Protocols`, and from then on
/// the connection carries the bytes of a shell on a PTY in the guest, both ways
/// ([`GuestStream`]).
#[derive(Default)]
pub struct Imds {
    by_ip: Mutex<HashMap<IpAddr, Arc<Metadata>>>,
    tokens: Mutex<HashMap<String, (IpAddr, Instant)>>,
    commands: Mutex<HashMap<IpAddr, std::collections::VecDeque<(String, String)>>>,
    results: Mutex<HashMap<String, crate::CommandResult>>,
    /// Sessions queued for an agent, waiting for it to connect back: by session id, the
    /// instance's address and who waits for the stream.
    sessions: Mutex<HashMap<String, (IpAddr, tokio::sync::oneshot::Sender<GuestStream>)>>,
    /// An instance's IPv6 addresses, each to its primary IPv4 address (the key of the rest).
    aliases: Mutex<HashMap<IpAddr, IpAddr>>,
}

/// A session's connection from the guest's agent: the shell's bytes both ways. `early` holds
/// what the guest sent right behind its request, before the stream was handed over.
pub struct GuestStream {
    pub stream: tokio::net::TcpStream,
    pub early: Vec<u8>,
}

/// Where a session's [`GuestStream`] arrives once the guest's agent connects back.
pub type SessionWait = tokio::sync::oneshot::Receiver<GuestStream>;

/// The agent's queue entry for a session: its id with this prefix, then `rows cols`.
const SESSION: &str = "session:";
/// The agent's queue entry for a session's new terminal size: the id with this prefix, then
/// `rows cols`; the agent sets the size of the session's PTY at once.
const RESIZE: &str = "resize:";

/// The IPv6 addresses among an interface's routed prefixes (its `/128`s).
pub(crate) fn v6_of(prefixes: &[String]) -> Vec<IpAddr> {
    prefixes
        .iter()
        .filter_map(|p| p.strip_suffix("/128"))
        .filter_map(|a| a.parse::<std::net::Ipv6Addr>().ok())
        .map(IpAddr::V6)
        .collect()
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Imds {
    pub fn set(&self, ip: IpAddr, md: Metadata) {
        lock(&self.by_ip).insert(ip, Arc::new(md));
    }

    /// Replaces the IPv6 addresses that stand for the instance at `ip`: a request from one is
    /// the instance's, on the IPv6 endpoint, while its metadata allows that endpoint.
    pub fn set_aliases(&self, ip: IpAddr, v6: &[IpAddr]) {
        let mut a = lock(&self.aliases);
        a.retain(|_, to| *to != ip);
        for x in v6 {
            a.insert(*x, ip);
        }
    }

    /// Who a connection is from: an IPv4 peer is itself; an IPv6 peer is the instance it is
    /// an address of, when that instance's metadata answers over IPv6; else no one (the
    /// connection is closed unanswered, as AWS's disabled endpoint does not answer).
    fn identity(&self, peer: IpAddr) -> Option<IpAddr> {
        if peer.is_ipv4() {
            return Some(peer);
        }
        let v4 = *lock(&self.aliases).get(&peer)?;
        lock(&self.by_ip)
            .get(&v4)
            .is_some_and(|m| m.http_protocol_ipv6)
            .then_some(v4)
    }

    pub fn remove(&self, ip: &IpAddr) {
        lock(&self.by_ip).remove(ip);
        lock(&self.aliases).retain(|_, to| to != ip);
        lock(&self.tokens).retain(|_, (owner, _)| owner != ip);
        // A session its agent never opened is not opened by the next guest at the address.
        lock(&self.sessions).retain(|_, (owner, _)| owner != ip);
        if let Some(q) = lock(&self.commands).get_mut(ip) {
            q.retain(|(id, _)| !id.starts_with(SESSION) && !id.starts_with(RESIZE));
        }
    }

    pub fn is_empty(&self) -> bool {
        lock(&self.by_ip).is_empty()
    }

    /// Queues a shell script for the agent of the instance at `ip`.
    pub fn queue(&self, ip: IpAddr, command_id: &str, script: &str) {
        lock(&self.results).insert(command_id.to_string(), crate::CommandResult::default());
        lock(&self.commands)
            .entry(ip)
            .or_default()
            .push_back((command_id.to_string(), script.to_string()));
    }

    /// Queues a Session Manager session for the agent of the instance at `ip`, with the
    /// terminal's size: the agent connects back and the stream arrives on the receiver.
    pub fn queue_session(&self, ip: IpAddr, session_id: &str, rows: u16, cols: u16) -> SessionWait {
        let (tx, rx) = tokio::sync::oneshot::channel();
        lock(&self.sessions).insert(session_id.to_string(), (ip, tx));
        lock(&self.commands).entry(ip).or_default().push_back((
            format!("{SESSION}{session_id}"),
            format!("{} {}", rows.max(1), cols.max(1)),
        ));
        rx
    }

    /// Queues a session's new terminal size for the agent of the instance at `ip`; a newer
    /// size replaces one the agent has not taken yet.
    pub fn queue_resize(&self, ip: IpAddr, session_id: &str, rows: u16, cols: u16) {
        let key = format!("{RESIZE}{session_id}");
        let mut all = lock(&self.commands);
        let q = all.entry(ip).or_default();
        q.retain(|(id, _)| *id != key);
        q.push_back((key, format!("{} {}", rows.max(1), cols.max(1))));
    }

    pub fn result(&self, command_id: &str) -> Option<crate::CommandResult> {
        lock(&self.results).get(command_id).cloned()
    }

    /// The agent's side: the next command, and its output and exit status.
    fn agent(&self, method: &str, path: &str, body: &[u8], peer: IpAddr) -> Response {
        let rest = path.trim_start_matches("/kumo/ssm/");
        if rest == "next" {
            let next = lock(&self.commands)
                .get_mut(&peer)
                .and_then(|q| q.pop_front());
            return match next {
                Some((id, size)) if id.starts_with(SESSION) || id.starts_with(RESIZE) => {
                    Response::ok(format!("{id}\n{size}\n").into_bytes())
                }
                Some((id, script)) => {
                    if let Some(r) = lock(&self.results).get_mut(&id) {
                        r.status = "InProgress".into();
                    }
                    Response::ok(format!("{id}\n{script}").into_bytes())
                }
                None => Response::status(404, "Not Found"),
            };
        }
        let Some((what, id)) = rest.split_once('/') else {
            return Response::status(404, "Not Found");
        };
        if method != "PUT" {
            return Response::status(405, "Method Not Allowed");
        }
        let mut results = lock(&self.results);
        let Some(r) = results.get_mut(id) else {
            return Response::status(404, "Not Found");
        };
        let text = String::from_utf8_lossy(body).into_owned();
        match what {
            "out" => r.stdout = text,
            "err" => r.stderr = text,
            "exit" => {
                r.code = text.trim().parse().unwrap_or(-1);
                r.status = if r.code == 0 { "Success" } else { "Failed" }.into();
            }
            _ => return Response::status(404, "Not Found"),
        }
        Response::ok(Vec::new())
    }

    /// Serves connections until the listener fails.
    pub async fn serve(self: Arc<Self>, listener: tokio::net::TcpListener) {
        loop {
            let (stream, peer) = match listener.accept().await {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!(error = %e, "IMDS listener stopped");
                    return;
                }
            };
            let me = self.clone();
            let Some(peer) = me.identity(peer.ip()) else {
                continue;
            };
            tokio::spawn(async move {
                if let Err(e) = me.connection(stream, peer).await {
                    tracing::debug!(error = %e, "IMDS connection ended");
                }
            });
        }
    }

    async fn connection(
        &self,
        mut stream: tokio::net::TcpStream,
        peer: IpAddr,
    ) -> std::io::Result<()> {
        let mut buf = Vec::with_capacity(1024);
        let mut chunk = [0u8; 1024];
        loop {
            let head_end = loop {
                if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                    break p;
                }
                if buf.len() > 16 * 1024 {
                    return Ok(());
                }
                let n = tokio::time::timeout(Duration::from_secs(30), stream.read(&mut chunk))
                    .await
                    .map_err(|_| std::io::Error::from(std::io::ErrorKind::TimedOut))??;
                if n == 0 {
                    return Ok(());
                }
                buf.extend_from_slice(&chunk[..n]);
            };
            let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
            let mut lines = head.split("\r\n");
            let first = lines.next().unwrap_or("");
            let mut parts = first.split(' ');
            let method = parts.next().unwrap_or("").to_string();
            let path = parts.next().unwrap_or("/").to_string();
            let headers: Vec<(String, String)> = lines
                .filter_map(|l| l.split_once(':'))
                .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
                .collect();
            let body_len: usize = header(&headers, "content-length")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            while buf.len() < head_end + 4 + body_len {
                let n = stream.read(&mut chunk).await?;
                if n == 0 {
                    return Ok(());
                }
                buf.extend_from_slice(&chunk[..n]);
            }
            let body: Vec<u8> = buf[head_end + 4..head_end + 4 + body_len].to_vec();
            buf.drain(..head_end + 4 + body_len);
            let close =
                header(&headers, "connection").is_some_and(|v| v.eq_ignore_ascii_case("close"));
            let agent = path.starts_with("/kumo/ssm/") && lock(&self.by_ip).contains_key(&peer);
            if let (true, "POST", Some(id)) = (
                agent,
                method.as_str(),
                path.strip_prefix("/kumo/ssm/session/"),
            ) {
                // A session's stream: handed over to whoever waits for it, and this
                // connection is no longer HTTP.
                let waiting = {
                    let mut sessions = lock(&self.sessions);
                    match sessions.get(id) {
                        Some((ip, _)) if *ip == peer => sessions.remove(id),
                        _ => None,
                    }
                };
                let Some((_, tx)) = waiting else {
                    stream
                        .write_all(&Response::status(404, "Not Found").bytes(true))
                        .await?;
                    return Ok(());
                };
                stream
                    .write_all(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: kumo-session\r\nConnection: Upgrade\r\n\r\n")
                    .await?;
                let _ = tx.send(GuestStream { stream, early: buf });
                return Ok(());
            }
            let resp = if agent {
                self.agent(&method, &path, &body, peer)
            } else if let Some(name) = path.strip_prefix("/kumo/guest/") {
                let file = lock(&self.by_ip)
                    .get(&peer)
                    .and_then(|md| md.guest.get(name).cloned());
                match file {
                    Some(f) => Response::ok(f.into_bytes()),
                    None => Response::status(404, "Not Found"),
                }
            } else {
                self.answer(&method, &path, &headers, peer)
            };
            if let Some(ttl) = resp.ttl {
                stream.set_ttl(ttl)?;
            }
            stream.write_all(&resp.bytes(close)).await?;
            if close {
                return Ok(());
            }
        }
    }

    fn answer(
        &self,
        method: &str,
        path: &str,
        headers: &[(String, String)],
        peer: IpAddr,
    ) -> Response {
        let Some(md) = lock(&self.by_ip).get(&peer).cloned() else {
            return Response::status(404, "Not Found");
        };
        if md.http_endpoint == "disabled" {
            return Response::status(403, "Forbidden");
        }
        let path = path.split('?').next().unwrap_or("/");
        if path == "/latest/api/token" {
            if method != "PUT" {
                return Response::status(405, "Method Not Allowed");
            }
            if header(headers, "x-forwarded-for").is_some() {
                return Response::status(403, "Forbidden");
            }
            let ttl: Option<u64> = header(headers, "x-aws-ec2-metadata-token-ttl-seconds")
                .and_then(|v| v.parse().ok())
                .filter(|t| (1..=21600).contains(t));
            let Some(ttl) = ttl else {
                return Response::status(400, "Bad Request");
            };
            let token = new_token();
            lock(&self.tokens).insert(
                token.clone(),
                (peer, Instant::now() + Duration::from_secs(ttl)),
            );
            let mut r = Response::ok(token.into_bytes());
            r.extra = vec![(
                "X-Aws-Ec2-Metadata-Token-Ttl-Seconds".into(),
                ttl.to_string(),
            )];
            r.ttl = Some(md.hop_limit.max(1));
            return r;
        }
        if method != "GET" && method != "HEAD" {
            return Response::status(405, "Method Not Allowed");
        }
        match header(headers, "x-aws-ec2-metadata-token") {
            Some(t) => {
                let valid = lock(&self.tokens)
                    .get(t)
                    .is_some_and(|(ip, until)| *ip == peer && Instant::now() < *until);
                if !valid {
                    return Response::status(401, "Unauthorized");
                }
            }
            None if md.http_tokens == "required" => return Response::status(401, "Unauthorized"),
            None => {}
        }
        lookup(&md, path)
    }
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

fn new_token() -> String {
    use std::io::Read;
    let mut b = [0u8; 24];
    let _ = std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut b));
    let mut s = String::with_capacity(64);
    for x in b {
        s.push_str(&format!("{x:02x}"));
    }
    s
}

/// A document, or the listing of a directory, of a tree of `path → value`.
fn tree(map: &std::collections::BTreeMap<String, String>, rest: &str) -> Option<String> {
    if let Some(v) = map.get(rest.trim_end_matches('/')) {
        if !rest.ends_with('/') {
            return Some(v.clone());
        }
    }
    let prefix = if rest.is_empty() || rest.ends_with('/') {
        rest.to_string()
    } else {
        format!("{rest}/")
    };
    // A listing given outright (`public-keys/` answers `0=key-name`, not `0/`).
    if let Some(listing) = map.get(&prefix) {
        return Some(listing.clone());
    }
    let mut entries: Vec<String> = Vec::new();
    for k in map.keys() {
        if let Some(tail) = k.strip_prefix(&prefix) {
            let entry = match tail.split_once('/') {
                Some((dir, _)) => format!("{dir}/"),
                None => tail.to_string(),
            };
            if !entry.is_empty() && !entries.contains(&entry) {
                entries.push(entry);
            }
        }
    }
    (!entries.is_empty()).then(|| entries.join("\n"))
}

fn lookup(md: &Metadata, path: &str) -> Response {
    let found = match path {
        "/" => Some("latest".to_string()),
        "/latest" | "/latest/" => {
            let mut l = vec!["dynamic", "meta-data"];
            if md.user_data.is_some() {
                l.push("user-data");
            }
            Some(l.join("\n"))
        }
        "/latest/user-data" | "/latest/user-data/" => {
            return match &md.user_data {
                Some(u) => Response::ok(u.clone()),
                None => Response::status(404, "Not Found"),
            }
        }
        p => {
            if let Some(rest) = p.strip_prefix("/latest/meta-data") {
                tree(&md.meta, rest.trim_start_matches('/'))
            } else if let Some(rest) = p.strip_prefix("/latest/dynamic") {
                tree(&md.dynamic, rest.trim_start_matches('/'))
            } else {
                None
            }
        }
    };
    match found {
        Some(v) => Response::ok(v.into_bytes()),
        None => Response::status(404, "Not Found"),
    }
}

struct Response {
    code: u16,
    reason: &'static str,
    body: Vec<u8>,
    extra: Vec<(String, String)>,
    ttl: Option<u32>,
}

impl Response {
    fn ok(body: Vec<u8>) -> Self {
        Response {
            code: 200,
            reason: "OK",
            body,
            extra: Vec::new(),
            ttl: None,
        }
    }

    /// An error page, as the IMDS writes them.
    fn status(code: u16, reason: &'static str) -> Self {
        let body = format!(
            "<?xml version=\"1.0\" encoding=\"iso-8859-1\"?>\n<!DOCTYPE html PUBLIC \"-//W3C//DTD XHTML 1.0 Transitional//EN\"\n\t\"http://www.w3.org/TR/xhtml1/DTD/xhtml1-transitional.dtd\">\n<html xmlns=\"http://www.w3.org/1999/xhtml\" xml:lang=\"en\" lang=\"en\">\n <head>\n  <title>{code} - {reason}</title>\n </head>\n <body>\n  <h1>{code} - {reason}</h1>\n </body>\n</html>\n"
        );
        Response {
            code,
            reason,
            body: body.into_bytes(),
            extra: Vec::new(),
            ttl: None,
        }
    }

    fn bytes(&self, close: bool) -> Vec<u8> {
        let ctype = if self.code == 200 {
            "text/plain"
        } else {
            "text/html"
        };
        let mut head = format!(
            "HTTP/1.1 {} {}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nServer: EC2ws\r\nConnection: {}\r\n",
            self.code,
            self.reason,
            self.body.len(),
            if close { "close" } else { "keep-alive" }
        );
        for (k, v) in &self.extra {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str("\r\n");
        let mut out = head.into_bytes();
        out.extend_from_slice(&self.body);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ipv6_peer_is_its_instance_only_while_the_ipv6_endpoint_is_on() {
        let imds = Imds::default();
        let me: IpAddr = "10.0.1.5".parse().unwrap();
        let six: IpAddr = "2001:db8::5".parse().unwrap();
        imds.set(me, md());
        imds.set_aliases(me, &[six]);
        assert_eq!(imds.identity(me), Some(me));
        // HttpProtocolIpv6 disabled: no one answers an IPv6 peer.
        assert_eq!(imds.identity(six), None);
        imds.set(
            me,
            Metadata {
                http_protocol_ipv6: true,
                ..md()
            },
        );
        assert_eq!(imds.identity(six), Some(me));
        // An address the instance no longer has, or an unknown one, is no one.
        imds.set_aliases(me, &[]);
        assert_eq!(imds.identity(six), None);
        imds.set_aliases(me, &[six]);
        imds.remove(&me);
        assert_eq!(imds.identity(six), None);
        assert_eq!(
            v6_of(&["10.0.1.16/28".into(), "2001:db8::5/128".into()]),
            vec![six]
        );
    }

    fn md() -> Metadata {
        let mut m = Metadata {
            http_tokens: "optional".into(),
            http_endpoint: "enabled".into(),
            hop_limit: 1,
            ..Metadata::default()
        };
        m.meta.insert("instance-id".into(), "i-0123".into());
        m.meta.insert(
            "network/interfaces/macs/0a:00:00:00:00:01/local-ipv4s".into(),
            "10.0.1.5".into(),
        );
        m.meta.insert(
            "public-keys/0/openssh-key".into(),
            "ssh-ed25519 AAAA k".into(),
        );
        m
    }

    #[test]
    fn documents_and_listings() {
        let m = md();
        assert_eq!(tree(&m.meta, "instance-id").as_deref(), Some("i-0123"));
        let top = tree(&m.meta, "").unwrap();
        assert_eq!(top, "instance-id\nnetwork/\npublic-keys/");
        assert_eq!(
            tree(&m.meta, "network/interfaces/macs/").as_deref(),
            Some("0a:00:00:00:00:01/")
        );
        assert_eq!(
            tree(&m.meta, "public-keys/0").as_deref(),
            Some("openssh-key")
        );
        assert_eq!(tree(&m.meta, "nope"), None);
        let mut keys = m.meta.clone();
        keys.insert("public-keys/".into(), "0=my-key".into());
        assert_eq!(tree(&keys, "public-keys/").as_deref(), Some("0=my-key"));
        assert_eq!(tree(&keys, "public-keys").as_deref(), Some("0=my-key"));
        assert_eq!(
            tree(&keys, "public-keys/0/").as_deref(),
            Some("openssh-key")
        );
    }

    #[test]
    fn tokens_and_modes() {
        let imds = Imds::default();
        let me: IpAddr = "10.0.1.5".parse().unwrap();
        let other: IpAddr = "10.0.1.6".parse().unwrap();
        let mut m = md();
        m.http_tokens = "required".into();
        imds.set(me, m);
        assert_eq!(
            imds.answer("GET", "/latest/meta-data/instance-id", &[], me)
                .code,
            401
        );
        assert_eq!(imds.answer("PUT", "/latest/api/token", &[], me).code, 400);
        let ttl = vec![(
            "x-aws-ec2-metadata-token-ttl-seconds".to_string(),
            "60".to_string(),
        )];
        let t = imds.answer("PUT", "/latest/api/token", &ttl, me);
        assert_eq!((t.code, t.ttl), (200, Some(1)));
        let token = String::from_utf8(t.body).unwrap();
        let with = vec![("x-aws-ec2-metadata-token".to_string(), token.clone())];
        let r = imds.answer("GET", "/latest/meta-data/instance-id", &with, me);
        assert_eq!((r.code, r.body), (200, b"i-0123".to_vec()));
        // A token is good only from the address it was issued to; unknown addresses get 404.
        assert_eq!(
            imds.answer("GET", "/latest/meta-data/instance-id", &with, other)
                .code,
            404
        );
        let mut fwd = ttl.clone();
        fwd.push(("x-forwarded-for".into(), "1.2.3.4".into()));
        assert_eq!(imds.answer("PUT", "/latest/api/token", &fwd, me).code, 403);
        let mut off = md();
        off.http_endpoint = "disabled".into();
        imds.set(me, off);
        assert_eq!(
            imds.answer("GET", "/latest/meta-data/instance-id", &[], me)
                .code,
            403
        );
    }

    #[test]
    fn a_session_resize_is_the_agents_next_entry_newest_size_only() {
        let imds = Imds::default();
        let me: IpAddr = "10.0.1.5".parse().unwrap();
        imds.set(me, md());
        imds.queue_resize(me, "root-0a", 24, 80);
        imds.queue_resize(me, "root-0a", 50, 0);
        let next = imds.agent("GET", "/kumo/ssm/next", &[], me);
        assert_eq!(next.code, 200);
        assert_eq!(
            String::from_utf8(next.body).unwrap(),
            "resize:root-0a\n50 1\n"
        );
        assert_eq!(imds.agent("GET", "/kumo/ssm/next", &[], me).code, 404);
        // Another guest at the address later never gets it.
        imds.queue_resize(me, "root-0a", 30, 100);
        imds.remove(&me);
        imds.set(me, md());
        assert_eq!(imds.agent("GET", "/kumo/ssm/next", &[], me).code, 404);
    }
}
