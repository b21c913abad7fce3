//! SSM Run Command (AWS-RunShellScript) through the guests' agents: SendCommand,
//! GetCommandInvocation, and DescribeInstanceInformation (the instances whose agent answers).

use crate::core::error::Fail;
use crate::host::{Invocation, SentCommand};
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
    for i in &instance_ids {
        cm.driver
            .guest(i)
            .ok_or_else(|| kumo_compute::ComputeError::Unknown(i.clone()))
            .and_then(|g| g.send_command(&id, &script))
            .map_err(|e| bad("InternalServerError", e.to_string()))?;
    }
    let sent = SentCommand {
        id: id.clone(),
        account: account.to_string(),
        instances: instance_ids,
        commands,
        comment,
        requested_ms: k.now_ms(),
    };
    cm.commands
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(id, sent.clone());
    Ok(sent)
}

/// SSM GetCommandInvocation.
pub fn command_invocation(
    k: &Kumo,
    account: &str,
    command_id: &str,
    instance: &str,
) -> Result<Invocation, SsmError> {
    let missing = || ("InvocationDoesNotExist".to_string(), String::new());
    let cm = &k.compute;
    let command = cm
        .commands
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get(command_id)
        .cloned()
        .filter(|c| c.account == account && c.instances.iter().any(|i| i == instance))
        .ok_or_else(missing)?;
    let result = cm
        .driver
        .command_result(instance, command_id)
        .unwrap_or_default();
    Ok(Invocation {
        command,
        instance: instance.to_string(),
        result,
    })
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
