//! `kumo admin …`: operator actions on a running server (any open-auth one; a strict one
//! started with `--enable-admin`, signed with the AWS CLI's environment credentials).

use clap::Subcommand;
use serde_json::{json, Value};
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Admin,
    #[command(flatten)]
    target: crate::http::Target,
}

#[derive(Subcommand)]
enum Admin {
    /// Show an instance's CPU credit ledger.
    Credits { instance: String },
    /// Schedule an event (instance-stop, instance-retirement, system-reboot, instance-reboot,
    /// system-maintenance) some seconds from now.
    ScheduleEvent {
        instance: String,
        #[arg(long)]
        code: String,
        #[arg(long = "in", default_value_t = 3600)]
        in_seconds: i64,
    },
    /// Power the guest off from inside, as `shutdown -h now` would.
    GuestShutdown { instance: String },
    /// Move a `--test-clock` server's clock forward.
    AdvanceClock { seconds: i64 },
}

pub fn run(args: Args) -> ExitCode {
    let (op, body) = match args.command {
        Admin::Credits { instance } => ("credits", json!({ "instance": instance })),
        Admin::ScheduleEvent {
            instance,
            code,
            in_seconds,
        } => (
            "schedule-event",
            json!({ "instance": instance, "code": code, "in_seconds": in_seconds }),
        ),
        Admin::GuestShutdown { instance } => ("guest-shutdown", json!({ "instance": instance })),
        Admin::AdvanceClock { seconds } => ("advance-clock", json!({ "seconds": seconds })),
    };
    match call(&args.target, op, &body) {
        Ok(v) => {
            println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("kumo admin {op}: {e}");
            ExitCode::from(255)
        }
    }
}

/// One admin call (`/_kumo/admin/<op>`) in the target's account and region: its JSON answer,
/// or the error as one line.
pub fn call(target: &crate::http::Target, op: &str, body: &Value) -> Result<Value, String> {
    let (region, account) = target.region_and_account();
    let mut body = body.clone();
    body["account"] = json!(account);
    body["region"] = json!(region);
    match target.post_json(
        "ec2",
        &format!("/_kumo/admin/{op}"),
        &[("content-type", "application/json")],
        &body,
    ) {
        Ok((200, v)) => Ok(v),
        Ok((_, v)) => Err(format!(
            "{} {}",
            v.get("code").and_then(Value::as_str).unwrap_or("error"),
            v.get("message").and_then(Value::as_str).unwrap_or("")
        )),
        Err(e) => Err(e.to_string()),
    }
}
