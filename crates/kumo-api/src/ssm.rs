//! The SSM calls tools use to find AMIs: `GetParameter` and `GetParameters` on the public
//! `/aws/service/…` parameters; and Run Command: `SendCommand` (`AWS-RunShellScript`),
//! `GetCommandInvocation`, `ListCommands` and `ListCommandInvocations` (commands and their
//! output are stored, so they outlive a restart), served by the guests' agents under a real
//! compute driver, and `DescribeInstanceInformation`, the instances whose agent answers; and
//! Session Manager: `StartSession`, `ResumeSession`, `TerminateSession`, `DescribeSessions`,
//! whose data channel is [`crate::channel`]. SSM speaks JSON (awsJson1.1), selected by
//! `X-Amz-Target`.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use kumo_control::{Invocation, Kumo, SentCommand, SsmListQuery};
use serde_json::{json, Value};

fn reply(status: StatusCode, rid: &str, body: Value) -> Response {
    let mut r = (status, body.to_string()).into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-amz-json-1.1"),
    );
    if let Ok(v) = HeaderValue::from_str(rid) {
        h.insert("x-amzn-RequestId", v);
    }
    r
}

fn error(rid: &str, code: &str, message: Option<String>) -> Response {
    let mut body = json!({ "__type": code });
    if let Some(m) = message {
        body["message"] = json!(m);
    }
    reply(StatusCode::BAD_REQUEST, rid, body)
}

fn parameter(region: &str, name: &str, value: &str) -> Value {
    json!({
        "Name": name,
        "Type": "String",
        "Value": value,
        "Version": 1,
        "LastModifiedDate": 1_733_011_200.0,
        // Public parameters have no account in their ARN.
        "ARN": format!("arn:aws:ssm:{region}::parameter{name}"),
        "DataType": "aws:ec2:image",
    })
}

/// Who calls, and where this server's data channel is (`ws://host:port`).
pub struct Caller<'a> {
    pub account: &'a str,
    pub region: &'a str,
    pub stream_base: &'a str,
}

pub fn handle(kumo: &Kumo, target: &str, caller: &Caller, body: &[u8], rid: &str) -> Response {
    let (account, region) = (caller.account, caller.region);
    let Ok(input) = serde_json::from_slice::<Value>(body) else {
        return error(
            rid,
            "SerializationException",
            Some("The request body is not valid JSON.".into()),
        );
    };
    match target.strip_prefix("AmazonSSM.") {
        Some("GetParameter") => {
            let Some(name) = input.get("Name").and_then(Value::as_str) else {
                return error(rid, "ValidationException", Some("1 validation error detected: Value null at 'name' failed to satisfy constraint: Member must not be null".into()));
            };
            match kumo.ssm_parameter(region, name) {
                Some((n, v)) => reply(
                    StatusCode::OK,
                    rid,
                    json!({ "Parameter": parameter(region, &n, &v) }),
                ),
                None => error(rid, "ParameterNotFound", None),
            }
        }
        Some("GetParameters") => {
            let names: Vec<&str> = input
                .get("Names")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            let mut found = Vec::new();
            let mut invalid = Vec::new();
            for n in names {
                match kumo.ssm_parameter(region, n) {
                    Some((n, v)) => found.push(parameter(region, &n, &v)),
                    None => invalid.push(json!(n)),
                }
            }
            reply(
                StatusCode::OK,
                rid,
                json!({ "Parameters": found, "InvalidParameters": invalid }),
            )
        }
        Some("SendCommand") => {
            let strings = |v: &Value| -> Vec<String> {
                v.as_array()
                    .map(|a| {
                        a.iter()
                            .filter_map(|x| x.as_str().map(str::to_string))
                            .collect()
                    })
                    .unwrap_or_default()
            };
            let sent = kumo.ssm_send_command(
                account,
                region,
                input["DocumentName"].as_str().unwrap_or(""),
                strings(&input["InstanceIds"]),
                strings(&input["Parameters"]["commands"]),
                input["Comment"].as_str().unwrap_or("").to_string(),
            );
            match sent {
                Ok(c) => reply(StatusCode::OK, rid, json!({ "Command": command(&c) })),
                Err((code, msg)) => error(rid, &code, (!msg.is_empty()).then_some(msg)),
            }
        }
        Some("GetCommandInvocation") => {
            let inv = kumo.ssm_command_invocation(
                account,
                region,
                input["CommandId"].as_str().unwrap_or(""),
                input["InstanceId"].as_str().unwrap_or(""),
            );
            match inv {
                Ok(i) => reply(StatusCode::OK, rid, invocation(&i)),
                Err((code, msg)) => error(rid, &code, (!msg.is_empty()).then_some(msg)),
            }
        }
        Some("ListCommands") => {
            match kumo.ssm_list_commands(account, region, &list_query(&input)) {
                Ok((commands, next)) => page(
                    rid,
                    "Commands",
                    commands.iter().map(command).collect(),
                    next,
                ),
                Err((code, msg)) => error(rid, &code, (!msg.is_empty()).then_some(msg)),
            }
        }
        Some("ListCommandInvocations") => {
            let details = input["Details"].as_bool().unwrap_or(false);
            match kumo.ssm_list_invocations(account, region, &list_query(&input)) {
                Ok((invocations, next)) => {
                    let list: Vec<Value> = invocations
                        .iter()
                        .map(|i| listed_invocation(i, details))
                        .collect();
                    page(rid, "CommandInvocations", list, next)
                }
                Err((code, msg)) => error(rid, &code, (!msg.is_empty()).then_some(msg)),
            }
        }
        Some("DescribeInstanceInformation") => {
            instance_information(kumo, &input, account, region, rid)
        }
        Some("StartSession") => {
            let text = |k: &str| input[k].as_str();
            let owner = format!("arn:aws:iam::{account}:root");
            let req = kumo_control::StartSessionRequest {
                owner: &owner,
                target: text("Target"),
                document: text("DocumentName"),
                reason: text("Reason"),
            };
            match kumo.ssm_start_session(account, region, &req) {
                Ok(o) => reply(StatusCode::OK, rid, opened(&o, caller.stream_base)),
                Err((code, msg)) => error(rid, &code, (!msg.is_empty()).then_some(msg)),
            }
        }
        Some("ResumeSession") => {
            let id = input["SessionId"].as_str().unwrap_or("");
            match kumo.ssm_resume_session(account, region, id) {
                Ok(o) => reply(StatusCode::OK, rid, opened(&o, caller.stream_base)),
                Err((code, msg)) => error(rid, &code, (!msg.is_empty()).then_some(msg)),
            }
        }
        Some("TerminateSession") => {
            let id = input["SessionId"].as_str().unwrap_or("");
            match kumo.ssm_terminate_session(account, region, id) {
                Ok(id) => reply(StatusCode::OK, rid, json!({ "SessionId": id })),
                Err((code, msg)) => error(rid, &code, (!msg.is_empty()).then_some(msg)),
            }
        }
        Some("DescribeSessions") => describe_sessions(kumo, &input, account, region, rid),
        _ => error(
            rid,
            "InvalidAction",
            Some(format!("Kumo does not serve {target}.")),
        ),
    }
}

/// DescribeInstanceInformation: the instances whose agent is online, filtered by instance id
/// (`Filters` with key `InstanceIds`, or the older `InstanceInformationFilterList` with key
/// `InstanceIds`), paged by `MaxResults` (5 to 50).
fn instance_information(
    kumo: &Kumo,
    input: &Value,
    account: &str,
    region: &str,
    rid: &str,
) -> Response {
    let mut wanted: Option<Vec<String>> = None;
    let filters = input["Filters"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|f| (&f["Key"], &f["Values"]));
    let old = input["InstanceInformationFilterList"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|f| (&f["key"], &f["valueSet"]));
    for (key, values) in filters.chain(old) {
        match key.as_str() {
            Some("InstanceIds") => {
                let ids: Vec<String> = values
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect();
                wanted.get_or_insert_with(Vec::new).extend(ids);
            }
            other => {
                return error(
                    rid,
                    "InvalidFilterKey",
                    Some(format!(
                        "Kumo filters instance information by InstanceIds only, not {}.",
                        other.unwrap_or("")
                    )),
                );
            }
        }
    }
    let limit = match input.get("MaxResults").and_then(Value::as_i64) {
        None => 50,
        Some(n @ 5..=50) => n as usize,
        Some(n) => {
            return error(rid, "ValidationException", Some(format!("1 validation error detected: Value '{n}' at 'maxResults' failed to satisfy constraint: Member must have value between 5 and 50")));
        }
    };
    let after = input["NextToken"].as_str().unwrap_or("");
    let all: Vec<_> = kumo
        .ssm_instance_information(account, region)
        .into_iter()
        .filter(|i| wanted.as_ref().is_none_or(|w| w.contains(&i.instance_id)))
        .filter(|i| after.is_empty() || i.instance_id.as_str() > after)
        .collect();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0);
    let page: Vec<Value> = all
        .iter()
        .take(limit)
        .map(|i| {
            json!({
                "InstanceId": i.instance_id,
                "PingStatus": "Online",
                "LastPingDateTime": now,
                "AgentVersion": env!("CARGO_PKG_VERSION"),
                "IsLatestVersion": true,
                // The guest Kumo boots, whatever the image's name says.
                "PlatformType": "Linux",
                "PlatformName": "Debian GNU/Linux",
                "PlatformVersion": "12",
                "ResourceType": "EC2Instance",
                "IPAddress": i.ip,
                "ComputerName": i.computer_name,
            })
        })
        .collect();
    let mut body = json!({ "InstanceInformationList": page });
    if all.len() > limit {
        body["NextToken"] = json!(all[limit - 1].instance_id);
    }
    reply(StatusCode::OK, rid, body)
}

/// A list call's page: its items under `key`, and the next page's token if there is one.
fn page(rid: &str, key: &str, items: Vec<Value>, next: Option<String>) -> Response {
    let mut body = json!({ key: items });
    if let Some(t) = next {
        body["NextToken"] = json!(t);
    }
    reply(StatusCode::OK, rid, body)
}

/// A list call's `Filters`, as `{key, value}` pairs.
fn key_values(input: &Value) -> Vec<(String, String)> {
    input["Filters"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|f| {
            (
                f["key"].as_str().unwrap_or("").to_string(),
                f["value"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

/// The command, instance, filters and page of a ListCommands or ListCommandInvocations call.
fn list_query(input: &Value) -> SsmListQuery {
    let text = |k: &str| input[k].as_str().map(str::to_string);
    SsmListQuery {
        command_id: text("CommandId"),
        instance_id: text("InstanceId"),
        filters: key_values(input),
        max_results: input["MaxResults"].as_i64(),
        next_token: text("NextToken"),
    }
}

/// One instance's run as ListCommandInvocations lists it; with `Details`, its plugin's
/// output.
fn listed_invocation(i: &Invocation, details: bool) -> Value {
    let r = &i.result;
    let mut v = json!({
        "CommandId": i.command.id,
        "InstanceId": i.instance,
        "InstanceName": "",
        "Comment": i.command.comment,
        "DocumentName": "AWS-RunShellScript",
        "DocumentVersion": "$DEFAULT",
        "RequestedDateTime": i.command.requested_ms as f64 / 1000.0,
        "Status": r.status,
        "StatusDetails": r.status,
        "StandardOutputUrl": "",
        "StandardErrorUrl": "",
        "CommandPlugins": [],
        "ServiceRole": "",
        "NotificationConfig": { "NotificationArn": "", "NotificationEvents": [], "NotificationType": "" },
        "CloudWatchOutputConfig": { "CloudWatchLogGroupName": "", "CloudWatchOutputEnabled": false },
    });
    if details {
        v["CommandPlugins"] = json!([{
            "Name": "aws:runShellScript",
            "Status": r.status,
            "StatusDetails": r.status,
            "ResponseCode": r.code,
            "Output": format!("{}{}", r.stdout, r.stderr),
            "StandardOutputUrl": "",
            "StandardErrorUrl": "",
            "OutputS3Region": "",
            "OutputS3BucketName": "",
            "OutputS3KeyPrefix": "",
        }]);
    }
    v
}

/// A sent command as SendCommand and ListCommands show it.
fn command(c: &SentCommand) -> Value {
    json!({
        "CommandId": c.id,
        "DocumentName": "AWS-RunShellScript",
        "DocumentVersion": "$DEFAULT",
        "Comment": c.comment,
        "Parameters": { "commands": c.commands },
        "InstanceIds": c.instances,
        "Targets": [],
        "RequestedDateTime": c.requested_ms as f64 / 1000.0,
        "Status": c.status,
        "StatusDetails": c.status,
        "TargetCount": c.instances.len(),
        "CompletedCount": c.completed,
        "ErrorCount": c.errors,
        "DeliveryTimedOutCount": 0,
        "MaxConcurrency": "50",
        "MaxErrors": "0",
        "TimeoutSeconds": 3600,
    })
}

/// One instance's run of a command, as GetCommandInvocation answers it.
fn invocation(i: &Invocation) -> Value {
    let r = &i.result;
    json!({
        "CommandId": i.command.id,
        "InstanceId": i.instance,
        "Comment": i.command.comment,
        "DocumentName": "AWS-RunShellScript",
        "DocumentVersion": "$DEFAULT",
        "PluginName": "aws:runShellScript",
        "ResponseCode": r.code,
        "ExecutionStartDateTime": "",
        "ExecutionElapsedTime": "",
        "ExecutionEndDateTime": "",
        "Status": r.status,
        "StatusDetails": r.status,
        "StandardOutputContent": r.stdout,
        "StandardOutputUrl": "",
        "StandardErrorContent": r.stderr,
        "StandardErrorUrl": "",
        "CloudWatchOutputConfig": { "CloudWatchLogGroupName": "", "CloudWatchOutputEnabled": false },
        "RequestedCommands": i.command.commands,
        "RequestedDateTime": i.command.requested_ms as f64 / 1000.0,
    })
}

/// StartSession's and ResumeSession's answer: the session's data channel is
/// [`crate::channel`] on this server, at `base` (`ws://<the Host the client used>`).
fn opened(o: &kumo_control::OpenedSession, base: &str) -> Value {
    let url = format!(
        "{base}/v1/data-channel/{}?role=publish_subscribe&cell-number=1",
        o.session_id
    );
    json!({ "SessionId": o.session_id, "TokenValue": o.token, "StreamUrl": url })
}

/// DescribeSessions: `State` (`Active` or `History`), `Filters` as `{key, value}` pairs,
/// `MaxResults` (1 to 200), `NextToken`.
fn describe_sessions(
    kumo: &Kumo,
    input: &Value,
    account: &str,
    region: &str,
    rid: &str,
) -> Response {
    let q = kumo_control::SessionQuery {
        state: input["State"].as_str().map(str::to_string),
        filters: key_values(input),
        max_results: input["MaxResults"].as_i64(),
        next_token: input["NextToken"].as_str().map(str::to_string),
    };
    match kumo.ssm_describe_sessions(account, region, &q) {
        Ok((sessions, next)) => {
            let list: Vec<Value> = sessions
                .iter()
                .map(|s| {
                    let mut v = json!({
                        "SessionId": s.id,
                        "Target": s.target,
                        "Status": s.status,
                        "StartDate": s.start_ms as f64 / 1000.0,
                        "DocumentName": s.document,
                        "Owner": s.owner,
                    });
                    if let Some(e) = s.end_ms {
                        v["EndDate"] = json!(e as f64 / 1000.0);
                    }
                    if let Some(r) = &s.reason {
                        v["Reason"] = json!(r);
                    }
                    v
                })
                .collect();
            page(rid, "Sessions", list, next)
        }
        Err((code, msg)) => error(rid, &code, (!msg.is_empty()).then_some(msg)),
    }
}
