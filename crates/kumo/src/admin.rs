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
    let (region, account) = args.target.region_and_account();
    let (op, mut body) = match args.command {
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
    body["account"] = json!(account);
    body["region"] = json!(region);
    let sent = args.target.post_json(
        "ec2",
        &format!("/_kumo/admin/{op}"),
        &[("content-type", "application/json")],
        &body,
    );
    match sent {
        Ok((200, v)) => {
            println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
            ExitCode::SUCCESS
        }
        Ok((_, v)) => {
            eprintln!(
                "kumo admin {op}: {} {}",
                v.get("code").and_then(Value::as_str).unwrap_or("error"),
                v.get("message").and_then(Value::as_str).unwrap_or("")
            );
            ExitCode::from(255)
        }
        Err(e) => {
            eprintln!("kumo admin {op}: {e}");
            ExitCode::from(255)
        }
    }
}
