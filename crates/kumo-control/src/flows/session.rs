//! Session Manager: SSM StartSession, ResumeSession, TerminateSession and DescribeSessions,
//! and the control plane's side of a session's data channel (its token checked, the guest's
//! agent asked for a shell).
//!
//! A session is a [`SessionRecord`]: `Connecting` from StartSession until a client opens the
//! data channel with the session's token, `Connected` while one is open, then `Terminated`
//! (TerminateSession, the shell's exit, the client leaving) or `Failed` (the agent never
//! connected back). Which sessions have a live channel is this process's knowledge
//! ([`Live`]): after a restart none has, and an active record without one is shown (and
//! stored, at its next touch) as `Terminated`.

use super::ssm::{filter_time, page_of, paging, SsmError};
use crate::core::error::Fail;
use crate::records::instance::InstanceRecord;
use crate::records::session::SessionRecord;
use crate::Kumo;
use kumo_compute::services::imds::SessionWait;
use kumo_store::{Read, Scope};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// The one document Kumo's sessions run: a shell.
pub const SHELL_DOCUMENT: &str = "SSM-SessionManagerRunShell";

/// A session's data channel while it is open: its account and region, and how to close it.
pub struct Live {
    pub account: String,
    pub region: String,
    /// Ends the channel (TerminateSession); set when a client opens it.
    pub close: Option<Arc<dyn Fn() + Send + Sync>>,
    /// The instance, once the channel is connected to its agent.
    pub target: Option<String>,
}

/// The sessions started in this process, by id.
#[derive(Default)]
pub struct Sessions(Mutex<HashMap<String, Live>>);

impl Sessions {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Live>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Every session is forgotten and its open channel closed (a reset).
    pub(crate) fn close_all(&self) {
        let all: Vec<Live> = self.lock().drain().map(|(_, l)| l).collect();
        for close in all.into_iter().filter_map(|l| l.close) {
            close();
        }
    }
}

/// What StartSession and ResumeSession answer: the session and the token its data channel
/// takes (the channel's address is the API layer's, which serves it).
#[derive(Debug, Clone)]
pub struct Opened {
    pub session_id: String,
    pub token: String,
}

/// A session as DescribeSessions shows it.
#[derive(Debug, Clone)]
pub struct SessionView {
    pub id: String,
    pub target: String,
    pub status: String,
    pub start_ms: i64,
    pub end_ms: Option<i64>,
    pub document: String,
    pub owner: String,
    pub reason: Option<String>,
}

fn bad(code: &str, message: impl Into<String>) -> SsmError {
    (code.to_string(), message.into())
}

/// `n` random hex digits, straight from the generator: a token is a secret.
fn hex(n: usize) -> String {
    let mut b = vec![0u8; n.div_ceil(2)];
    let _ = openssl::rand::rand_bytes(&mut b);
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    h[..n].to_string()
}

/// The owner's name as it starts a session id: the ARN's last part (`root` for an account's
/// root).
fn owner_name(owner: &str) -> &str {
    owner.rsplit([':', '/']).next().unwrap_or("root")
}

/// A StartSession call: who asks (an ARN) and its members.
pub struct StartRequest<'a> {
    pub owner: &'a str,
    pub target: Option<&'a str>,
    pub document: Option<&'a str>,
    pub reason: Option<&'a str>,
}

/// SSM StartSession: a shell in a running instance whose agent is online.
pub fn start(
    k: &Kumo,
    account: &str,
    region: &str,
    req: &StartRequest,
) -> Result<Opened, SsmError> {
    let (owner, target, document, reason) = (req.owner, req.target, req.document, req.reason);
    let Some(target) = target.filter(|t| !t.is_empty()) else {
        return Err(bad("ValidationException", "1 validation error detected: Value null at 'target' failed to satisfy constraint: Member must not be null"));
    };
    let document = document.unwrap_or(SHELL_DOCUMENT);
    if document != SHELL_DOCUMENT {
        return Err(bad(
            "InvalidDocument",
            format!("Kumo's sessions run {SHELL_DOCUMENT}: a shell. {document} is not served."),
        ));
    }
    if let Some(r) = reason {
        if r.is_empty() || r.chars().count() > 256 {
            return Err(bad("ValidationException", "1 validation error detected: Value at 'reason' failed to satisfy constraint: Member must have length between 1 and 256"));
        }
    }
    let s = Scope { account, region };
    let mine = k
        .store
        .read(|v| Ok::<_, Fail>(v.get::<InstanceRecord>(s, target)?.is_some()))
        .unwrap_or(false);
    if !mine || !k.compute.driver.is_running(target) {
        return Err(bad(
            "TargetNotConnected",
            format!("{target} is not connected."),
        ));
    }
    let rec = SessionRecord {
        id: crate::core::ids::new_id(owner_name(owner)),
        target: target.to_string(),
        owner: owner.to_string(),
        document: document.to_string(),
        reason: reason.map(str::to_string),
        status: "Connecting".into(),
        start_ms: k.now_ms(),
        end_ms: None,
        token: hex(64),
    };
    k.store
        .write(true, |tx| tx.insert(s, &rec).map_err(Fail::from))
        .map_err(|f| bad("InternalServerError", f.0.message()))?;
    k.sessions.lock().insert(
        rec.id.clone(),
        Live {
            account: account.to_string(),
            region: region.to_string(),
            close: None,
            target: None,
        },
    );
    Ok(Opened {
        session_id: rec.id,
        token: rec.token,
    })
}

/// The record as this process knows it: an active one with no live channel here ended with
/// an earlier server.
fn seen(k: &Kumo, mut r: SessionRecord) -> SessionRecord {
    if r.active() && !k.sessions.lock().contains_key(&r.id) {
        r.status = "Terminated".into();
    }
    r
}

/// Moves a session to `status` (an end, stamped now), unless it has already ended.
fn end(k: &Kumo, s: Scope, id: &str, status: &str) {
    let now = k.now_ms();
    let wrote = k.store.write(true, |tx| {
        let Some(mut r) = tx.get::<SessionRecord>(s, id)? else {
            return Ok::<_, Fail>(());
        };
        if r.active() {
            r.status = status.to_string();
            r.end_ms = Some(now);
            tx.update(s, &r)?;
        }
        Ok(())
    });
    if let Err(f) = wrote {
        tracing::warn!(session = id, error = %f.0.message(), "cannot record a session's end");
    }
}

/// SSM TerminateSession: the session ends and its data channel closes. Idempotent, as SSM's
/// is: an ended or unknown session's id is answered as it is.
pub fn terminate(k: &Kumo, account: &str, region: &str, id: &str) -> Result<String, SsmError> {
    if id.is_empty() {
        return Err(bad("ValidationException", "1 validation error detected: Value null at 'sessionId' failed to satisfy constraint: Member must not be null"));
    }
    // Only the caller's own session: another account's is left as it is.
    let live = {
        let mut all = k.sessions.lock();
        match all.get(id) {
            Some(l) if l.account == account && l.region == region => all.remove(id),
            _ => None,
        }
    };
    end(k, Scope { account, region }, id, "Terminated");
    if let Some(close) = live.and_then(|l| l.close) {
        close();
    }
    Ok(id.to_string())
}

/// SSM ResumeSession: a new token for an active session's data channel.
pub fn resume(k: &Kumo, account: &str, region: &str, id: &str) -> Result<Opened, SsmError> {
    let s = Scope { account, region };
    let token = hex(64);
    let resumed = k
        .store
        .write(true, |tx| {
            let Some(r) = tx.get::<SessionRecord>(s, id)? else {
                return Ok::<_, Fail>(false);
            };
            let mut r = seen(k, r);
            if !r.active() {
                return Ok(false);
            }
            r.token = token.clone();
            tx.update(s, &r)?;
            Ok(true)
        })
        .map_err(|f| bad("InternalServerError", f.0.message()))?;
    if !resumed {
        return Err(bad(
            "DoesNotExistException",
            format!("Session with id {id} does not exist or is no longer active."),
        ));
    }
    Ok(Opened {
        session_id: id.to_string(),
        token,
    })
}

/// A DescribeSessions query.
#[derive(Debug, Default)]
pub struct DescribeQuery {
    pub state: Option<String>,
    pub filters: Vec<(String, String)>,
    pub max_results: Option<i64>,
    pub next_token: Option<String>,
}

/// SSM DescribeSessions: the account's sessions in the region, `Active` or `History`,
/// newest first, at most 200 a page.
pub fn describe(
    k: &Kumo,
    account: &str,
    region: &str,
    q: &DescribeQuery,
) -> Result<(Vec<SessionView>, Option<String>), SsmError> {
    let active = match q.state.as_deref() {
        None => return Err(bad("ValidationException", "1 validation error detected: Value null at 'state' failed to satisfy constraint: Member must not be null")),
        Some("Active") => true,
        Some("History") => false,
        Some(other) => return Err(bad("ValidationException", format!("1 validation error detected: Value '{other}' at 'state' failed to satisfy constraint: Member must satisfy enum value set: [Active, History]"))),
    };
    let (limit, skip) = paging(
        "DescribeSessions",
        q.max_results,
        q.next_token.as_deref(),
        200,
    )?;
    let s = Scope { account, region };
    let mut all: Vec<SessionRecord> = k
        .store
        .read(|v| {
            v.list::<SessionRecord>(s, &kumo_store::Query::default())
                .map_err(Fail::from)
        })
        .map_err(|f| bad("InternalServerError", f.0.message()))?
        .into_iter()
        .map(|r| seen(k, r))
        .filter(|r| r.active() == active)
        .collect();
    for (key, value) in &q.filters {
        match key.as_str() {
            "InvokedAfter" => {
                let t = filter_time(value)?;
                all.retain(|r| r.start_ms >= t);
            }
            "InvokedBefore" => {
                let t = filter_time(value)?;
                all.retain(|r| r.start_ms <= t);
            }
            "Target" => all.retain(|r| &r.target == value),
            "Owner" => all.retain(|r| &r.owner == value),
            "Status" => all.retain(|r| &r.status == value),
            "SessionId" => all.retain(|r| &r.id == value),
            "AccessType" => all.retain(|_| value == "Standard"),
            _ => return Err(bad("ValidationException", format!("1 validation error detected: Value '{key}' at 'filters.1.member.key' failed to satisfy constraint: Member must satisfy enum value set: [InvokedAfter, InvokedBefore, Target, Owner, Status, SessionId, AccessType]"))),
        }
    }
    all.sort_by(|a, b| b.start_ms.cmp(&a.start_ms).then(a.id.cmp(&b.id)));
    let (page, next) = page_of("DescribeSessions", all, limit, skip);
    Ok((
        page.into_iter()
            .map(|r| SessionView {
                id: r.id,
                target: r.target,
                status: r.status,
                start_ms: r.start_ms,
                end_ms: r.end_ms,
                document: r.document,
                owner: r.owner,
                reason: r.reason,
            })
            .collect(),
        next,
    ))
}

/// The data channel's side: a client presents the session's token. The session is then
/// `Connected`, `close` ends the channel at a TerminateSession, and the guest's agent is asked
/// for a shell on a `rows` × `cols` PTY, whose stream the receiver gives.
pub fn connect(
    k: &Kumo,
    id: &str,
    token: &str,
    rows: u16,
    cols: u16,
    close: Arc<dyn Fn() + Send + Sync>,
) -> Result<SessionWait, SsmError> {
    // One channel per session: the first client to present the token takes it, and its
    // `close` is in place before the session is `Connected`, so a TerminateSession from then
    // on reaches it.
    let (account, region) = {
        let mut all = k.sessions.lock();
        match all.get_mut(id) {
            Some(l) if l.close.is_none() => {
                l.close = Some(close);
                (l.account.clone(), l.region.clone())
            }
            _ => {
                return Err(bad(
                    "DoesNotExistException",
                    format!("Session {id} is not active."),
                ))
            }
        }
    };
    let s = Scope {
        account: &account,
        region: &region,
    };
    let target = k
        .store
        .write(true, |tx| {
            let Some(mut r) = tx.get::<SessionRecord>(s, id)? else {
                return Ok::<_, Fail>(None);
            };
            if r.status != "Connecting" || r.token != token {
                return Ok(None);
            }
            r.status = "Connected".into();
            tx.update(s, &r)?;
            Ok(Some(r.target))
        })
        .map_err(|f| bad("InternalServerError", f.0.message()))?;
    let Some(target) = target else {
        if let Some(l) = k.sessions.lock().get_mut(id) {
            l.close = None;
        }
        return Err(bad("AccessDenied", "The session's token is not valid."));
    };
    // Terminated meanwhile: no shell is asked for.
    match k.sessions.lock().get_mut(id) {
        Some(l) => l.target = Some(target.clone()),
        None => {
            return Err(bad(
                "DoesNotExistException",
                format!("Session {id} is not active."),
            ))
        }
    }
    let opened = k
        .compute
        .driver
        .guest(&target)
        .ok_or_else(|| kumo_compute::ComputeError::Unknown(target.clone()))
        .and_then(|g| g.open_session(id, rows, cols));
    match opened {
        Ok(w) => Ok(w),
        Err(e) => {
            closed(k, id, "Failed");
            Err(bad(
                "TargetNotConnected",
                format!("{target} is not connected: {e}"),
            ))
        }
    }
}

/// The client's terminal changed size: the guest's agent resizes the session's PTY (its
/// programs get SIGWINCH, as under AWS's agent). A session not connected is left as it is.
pub fn resize(k: &Kumo, id: &str, rows: u16, cols: u16) {
    let target = k.sessions.lock().get(id).and_then(|l| l.target.clone());
    let Some(guest) = target.and_then(|t| k.compute.driver.guest(&t)) else {
        return;
    };
    if let Err(e) = guest.resize_session(id, rows, cols) {
        tracing::debug!(session = id, error = %e, "cannot resize a session's terminal");
    }
}

/// The data channel closed (the shell exited, the client left, or the agent never came):
/// the session ends as `status` (`Terminated` or `Failed`).
pub fn closed(k: &Kumo, id: &str, status: &str) {
    let Some(l) = k.sessions.lock().remove(id) else {
        return;
    };
    end(
        k,
        Scope {
            account: &l.account,
            region: &l.region,
        },
        id,
        status,
    );
}

#[cfg(test)]
mod tests {
    #[test]
    fn session_ids_start_with_the_owner_name() {
        assert_eq!(super::owner_name("arn:aws:iam::123456789012:root"), "root");
        assert_eq!(
            super::owner_name("arn:aws:iam::123456789012:user/alice"),
            "alice"
        );
        let h = super::hex(17);
        assert_eq!(h.len(), 17);
        assert!(h.bytes().all(|b| b.is_ascii_hexdigit()));
    }
}
