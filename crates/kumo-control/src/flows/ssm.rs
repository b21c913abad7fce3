//! SSM Run Command (AWS-RunShellScript) through the guests' agents: SendCommand,
//! GetCommandInvocation, and DescribeInstanceInformation (the instances whose agent answers).

use crate::core::error::Fail;
use crate::host::{Invocation, SentCommand};
use crate::records::command::{CommandRecord, Finished};
use crate::records::instance::InstanceRecord;
use crate::Kumo;
use kumo_store::{Read, Scope};

/// SSM's answer to a bad Run Command call: its error code and message.
pub type SsmError = (String, String);

pub(crate) fn command_id() -> String {
    let mut b = [0u8; 16];
    let _ = openssl::rand::rand_bytes(&mut b);
    kumo_model::ids::format_uuid(b)
}

/// SSM SendCommand with `AWS-RunShellScript`: the commands run as root in each instance by
/// its agent.
pub fn send_command(
    k: &Kumo,
    account: &str,
    region: &str,
    document: &str,
    instance_ids: Vec<String>,
    commands: Vec<String>,
    comment: String,
) -> Result<SentCommand, SsmError> {
    let bad = |c: &str, m: String| (c.to_string(), m);
    if document.is_empty() {
        return Err(bad("ValidationException", "1 validation error detected: Value null at 'documentName' failed to satisfy constraint: Member must not be null".into()));
    }
    if document != "AWS-RunShellScript" {
        return Err(bad(
            "InvalidDocument",
            format!(
                "Document {document} does not exist in your account. Kumo runs AWS-RunShellScript."
            ),
        ));
    }
    if commands.is_empty() {
        return Err(bad(
            "InvalidParameters",
            "Parameter \"commands\" is required by AWS-RunShellScript.".into(),
        ));
    }
    if instance_ids.is_empty() {
        return Err(bad(
            "ValidationException",
            "Specify InstanceIds or Targets.".into(),
        ));
    }
    let s = Scope { account, region };
    // Only instances whose agent is online (running under a real driver) take commands.
    let offline: Vec<&str> = instance_ids
        .iter()
        .filter(|id| {
            let mine = k
                .store
                .read(|v| Ok::<_, Fail>(v.get::<InstanceRecord>(s, id)?.is_some()))
                .unwrap_or(false);
            !mine || !k.compute.driver.is_running(id)
        })
        .map(String::as_str)
        .collect();
    if !offline.is_empty() {
        return Err(bad(
            "InvalidInstanceId",
            format!(
                "Instances [[{}]] not in a valid state for account {account}",
                offline.join(", ")
            ),
        ));
    }
    let cm = &k.compute;
    let id = command_id();
    let script = commands.join("\n") + "\n";
    let rec = CommandRecord {
        id: id.clone(),
        instances: instance_ids,
        commands,
        comment,
        requested_ms: k.now_ms(),
        finished: Default::default(),
    };
    // Stored before any agent can take it, so an answer never names a command the store
    // does not have.
    k.store
        .write(true, |tx| tx.insert(s, &rec).map_err(Fail::from))
        .map_err(|f| bad(f.0.code(), f.0.message().to_string()))?;
    lock(&cm.pending_commands).push((account.to_string(), region.to_string(), id.clone()));
    for i in &rec.instances {
        cm.driver
            .guest(i)
            .ok_or_else(|| kumo_compute::ComputeError::Unknown(i.clone()))
            .and_then(|g| g.send_command(&id, &script))
            .map_err(|e| bad("InternalServerError", e.to_string()))?;
    }
    Ok(sent(k, &rec))
}

fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// What an instance's agent reports of a run that has not ended (`Pending` when the driver
/// has nothing, as after a restart).
fn live(k: &Kumo, instance: &str, command_id: &str) -> kumo_compute::CommandResult {
    k.compute
        .driver
        .command_result(instance, command_id)
        .unwrap_or_default()
}

/// A command as SendCommand and ListCommands show it.
fn sent(k: &Kumo, rec: &CommandRecord) -> SentCommand {
    let now = k.now_ms();
    let status_of = |i: &str| live(k, i, &rec.id).status;
    let each: Vec<String> = rec
        .instances
        .iter()
        .map(|i| rec.invocation_status(i, status_of, now))
        .collect();
    let ended = |s: &&String| matches!(s.as_str(), "Success" | "Failed" | "TimedOut");
    SentCommand {
        id: rec.id.clone(),
        instances: rec.instances.clone(),
        commands: rec.commands.clone(),
        comment: rec.comment.clone(),
        requested_ms: rec.requested_ms,
        status: rec.status(status_of, now),
        completed: each.iter().filter(ended).count(),
        errors: each.iter().filter(|s| s.as_str() == "Failed").count(),
    }
}

/// One instance's run of a command: its stored end, else what its agent reports now.
fn invocation(k: &Kumo, rec: &CommandRecord, instance: &str) -> Invocation {
    let now = k.now_ms();
    let result = match rec.finished.get(instance) {
        Some(f) => kumo_compute::CommandResult {
            status: f.status.clone(),
            code: f.code,
            stdout: f.stdout.clone(),
            stderr: f.stderr.clone(),
        },
        None => {
            let mut r = live(k, instance, &rec.id);
            r.status = rec.invocation_status(instance, |_| r.status.clone(), now);
            r
        }
    };
    Invocation {
        command: sent(k, rec),
        instance: instance.to_string(),
        result,
    }
}

fn load(k: &Kumo, s: Scope, id: &str) -> Option<CommandRecord> {
    k.store
        .read(|v| v.get::<CommandRecord>(s, id).map_err(Fail::from))
        .ok()
        .flatten()
}

/// SSM GetCommandInvocation.
pub fn command_invocation(
    k: &Kumo,
    account: &str,
    region: &str,
    command_id: &str,
    instance: &str,
) -> Result<Invocation, SsmError> {
    let missing = || ("InvocationDoesNotExist".to_string(), String::new());
    let rec = load(k, Scope { account, region }, command_id)
        .filter(|c| c.instances.iter().any(|i| i == instance))
        .ok_or_else(missing)?;
    Ok(invocation(k, &rec, instance))
}

/// What ListCommands and ListCommandInvocations are asked: a command, an instance, filters
/// (`InvokedAfter`, `InvokedBefore`, `Status`, `DocumentName`), a page.
#[derive(Debug, Default)]
pub struct ListQuery {
    pub command_id: Option<String>,
    pub instance_id: Option<String>,
    pub filters: Vec<(String, String)>,
    pub max_results: Option<i64>,
    pub next_token: Option<String>,
}

/// A list call's page size (`MaxResults`, 1 to `max`) and where its page starts (its
/// `NextToken`, Kumo's signed page token for the operation).
pub(crate) fn paging(
    op: &str,
    max_results: Option<i64>,
    next_token: Option<&str>,
    max: i64,
) -> Result<(Option<usize>, usize), SsmError> {
    let bad = |c: &str, m: String| (c.to_string(), m);
    let limit = match max_results {
        None => None,
        Some(n) if (1..=max).contains(&n) => Some(n as usize),
        Some(n) => {
            return Err(bad(
                "ValidationException",
                format!("1 validation error detected: Value '{n}' at 'maxResults' failed to satisfy constraint: Member must have value between 1 and {max}"),
            ))
        }
    };
    // A token is Kumo's signed page token for the operation, holding the next item's place.
    let skip = match crate::core::paging::cursor(op, next_token) {
        Ok(None) => 0,
        Ok(Some(c)) => c
            .parse::<usize>()
            .map_err(|_| bad("InvalidNextToken", String::new()))?,
        Err(_) => {
            return Err(bad(
                "InvalidNextToken",
                "The specified token is not valid.".into(),
            ))
        }
    };
    Ok((limit, skip))
}

/// An `InvokedAfter`/`InvokedBefore` filter's time, in milliseconds.
pub(crate) fn filter_time(v: &str) -> Result<i64, SsmError> {
    kumo_ec2_wire::DateTime::parse(v)
        .map(|d| d.0)
        .ok_or_else(|| {
            (
                "InvalidFilterValue".to_string(),
                format!("The filter value {v} is not valid."),
            )
        })
}

/// The account's commands in a region, newest first, that a query names.
type Listed = (Vec<CommandRecord>, Option<usize>, usize);

fn listed(k: &Kumo, s: Scope, op: &str, q: &ListQuery, max: i64) -> Result<Listed, SsmError> {
    let bad = |c: &str, m: String| (c.to_string(), m);
    let (limit, skip) = paging(op, q.max_results, q.next_token.as_deref(), max)?;
    let mut all: Vec<CommandRecord> = k
        .store
        .read(|v| {
            v.list::<CommandRecord>(s, &kumo_store::Query::default())
                .map_err(Fail::from)
        })
        .map_err(|f| bad("InternalServerError", f.0.message().to_string()))?;
    if let Some(id) = &q.command_id {
        if !all.iter().any(|c| &c.id == id) {
            return Err(bad("InvalidCommandId", String::new()));
        }
        all.retain(|c| &c.id == id);
    }
    if let Some(i) = &q.instance_id {
        all.retain(|c| c.instances.contains(i));
    }
    for (key, value) in &q.filters {
        match key.as_str() {
            "InvokedAfter" => {
                let t = filter_time(value)?;
                all.retain(|c| c.requested_ms >= t);
            }
            "InvokedBefore" => {
                let t = filter_time(value)?;
                all.retain(|c| c.requested_ms <= t);
            }
            "Status" => {
                let now = k.now_ms();
                all.retain(|c| c.status(|i| live(k, i, &c.id).status, now) == *value);
            }
            "DocumentName" => all.retain(|_| value == "AWS-RunShellScript"),
            _ => return Err(bad("InvalidFilterKey", String::new())),
        }
    }
    all.sort_by(|a, b| b.requested_ms.cmp(&a.requested_ms).then(a.id.cmp(&b.id)));
    Ok((all, limit, skip))
}

/// A page of `items` past `skip`, with the token of the next.
pub(crate) fn page_of<T>(
    op: &str,
    items: Vec<T>,
    limit: Option<usize>,
    skip: usize,
) -> (Vec<T>, Option<String>) {
    let rest: Vec<T> = items.into_iter().skip(skip).collect();
    match limit {
        Some(l) if rest.len() > l => {
            let page: Vec<T> = rest.into_iter().take(l).collect();
            (
                page,
                Some(crate::core::paging::token(op, &(skip + l).to_string())),
            )
        }
        _ => (rest, None),
    }
}

/// SSM ListCommands: the account's commands in the region, newest first, at most 50 a page.
pub fn list_commands(
    k: &Kumo,
    account: &str,
    region: &str,
    q: &ListQuery,
) -> Result<(Vec<SentCommand>, Option<String>), SsmError> {
    let (all, limit, skip) = listed(k, Scope { account, region }, "ListCommands", q, 50)?;
    let (page, next) = page_of("ListCommands", all, limit, skip);
    Ok((page.iter().map(|c| sent(k, c)).collect(), next))
}

/// SSM ListCommandInvocations: each instance's run of the commands, newest command first, at
/// most 50 a page.
pub fn list_invocations(
    k: &Kumo,
    account: &str,
    region: &str,
    q: &ListQuery,
) -> Result<(Vec<Invocation>, Option<String>), SsmError> {
    let (all, limit, skip) = listed(
        k,
        Scope { account, region },
        "ListCommandInvocations",
        q,
        50,
    )?;
    let each: Vec<Invocation> = all
        .iter()
        .flat_map(|c| {
            c.instances
                .iter()
                .filter(|i| q.instance_id.as_ref().is_none_or(|x| x == *i))
                .map(|i| invocation(k, c, i))
                .collect::<Vec<_>>()
        })
        .collect();
    Ok(page_of("ListCommandInvocations", each, limit, skip))
}

/// One round of the events worker: the runs that ended since the last are stored, so their
/// output outlives the agent's memory (a stop, a restart).
pub fn collect(k: &Kumo) {
    let pending: Vec<(String, String, String)> = lock(&k.compute.pending_commands).clone();
    if pending.is_empty() {
        return;
    }
    let now = k.now_ms();
    let mut done = Vec::new();
    for (account, region, id) in pending {
        let s = Scope {
            account: &account,
            region: &region,
        };
        let Some(rec) = load(k, s, &id) else {
            done.push(id);
            continue;
        };
        let ended: Vec<(String, Finished)> = rec
            .instances
            .iter()
            .filter(|i| !rec.finished.contains_key(*i))
            .filter_map(|i| {
                let r = k.compute.driver.command_result(i, &id)?;
                matches!(r.status.as_str(), "Success" | "Failed").then(|| {
                    (
                        i.clone(),
                        Finished {
                            status: r.status,
                            code: r.code,
                            stdout: r.stdout,
                            stderr: r.stderr,
                            finished_ms: now,
                        },
                    )
                })
            })
            .collect();
        let mut rec = rec;
        if !ended.is_empty() {
            let wrote = k.store.write(true, |tx| {
                let Some(mut cur) = tx.get::<CommandRecord>(s, &id)? else {
                    return Ok::<_, Fail>(None);
                };
                for (i, f) in &ended {
                    cur.finished.entry(i.clone()).or_insert_with(|| f.clone());
                }
                tx.update(s, &cur)?;
                Ok(Some(cur))
            });
            match wrote {
                Ok(Some(cur)) => rec = cur,
                Ok(None) => {}
                Err(f) => {
                    tracing::warn!(command = %id, error = %f.0.message(), "cannot store a command's output")
                }
            }
        }
        if rec.done(now) {
            done.push(id);
        }
    }
    lock(&k.compute.pending_commands).retain(|(_, _, id)| !done.contains(id));
}

/// An instance whose agent is online, as DescribeInstanceInformation shows it.
#[derive(Debug, Clone)]
pub struct AgentInfo {
    pub instance_id: String,
    pub ip: String,
    pub computer_name: String,
}

/// The instances of the account and region whose agent is online: they run under a real
/// driver, whose guests' init runs the agent. In instance id order.
pub fn instance_information(k: &Kumo, account: &str, region: &str) -> Vec<AgentInfo> {
    let s = Scope { account, region };
    let mut out: Vec<AgentInfo> = k
        .compute
        .owned()
        .into_iter()
        .filter(|(id, (a, r))| a == account && r == region && k.compute.driver.is_running(id))
        .filter_map(|(id, _)| {
            let found = k.store.read(|v| {
                let Some(r) = v.get::<InstanceRecord>(s, &id)? else {
                    return Ok::<_, Fail>(None);
                };
                let c = crate::repo::instance::context(v, s, &[&r])?;
                let ip = c
                    .enis_of(&r)
                    .find(|e| e.attachment.as_ref().is_some_and(|a| a.device_index == 0))
                    .and_then(|e| e.addresses.iter().find(|a| a.primary))
                    .map(|a| a.addr.clone())
                    .unwrap_or_default();
                let name = crate::repo::instance::instance_dns_name(region, &r, &ip);
                Ok(Some((ip, name)))
            });
            let (ip, computer_name) = found.ok().flatten()?;
            Some(AgentInfo {
                instance_id: id,
                ip,
                computer_name,
            })
        })
        .collect();
    out.sort_by(|a, b| a.instance_id.cmp(&b.instance_id));
    out
}
