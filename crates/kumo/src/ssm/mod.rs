//! `kumo ssm send-command INSTANCE -- CMD…`: runs a shell command in an instance through its
//! agent (SSM SendCommand, then GetCommandInvocation until it finishes), without SSH or a key
//! pair. Prints the command's output and exits with its status.
//!
//! `kumo ssm start-session INSTANCE`: an interactive shell in the instance, as `aws ssm
//! start-session` gives with AWS's plugin: SSM StartSession, then the session's data channel
//! (a WebSocket speaking the agent messages of [`kumo_api::channel`]) between this terminal,
//! put in raw mode, and a PTY in the guest.

mod session;

use serde_json::{json, Value};
use std::process::ExitCode;
use std::time::{Duration, Instant};

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Sub,
    #[command(flatten)]
    target: crate::http::Target,
}

#[derive(clap::Subcommand)]
enum Sub {
    /// Run a shell command as root in an instance and print its output.
    SendCommand {
        instance: String,
        /// How long to wait for it, in seconds.
        #[arg(long, default_value_t = 120)]
        timeout: u64,
        /// The command and its arguments, after `--`, each passed to it as given; or one
        /// argument, a shell command line (`-- 'dmesg | tail'`).
        #[arg(last = true, required = true)]
        command: Vec<String>,
    },
    /// An interactive shell in an instance (as ssm-user, through its agent): SSM StartSession
    /// and its data channel, as `aws ssm start-session` with AWS's plugin.
    StartSession {
        instance: String,
        /// The reason, as DescribeSessions shows it.
        #[arg(long)]
        reason: Option<String>,
    },
}

/// One SSM JSON call, signed for `ssm`.
pub(crate) fn call(
    target: &crate::http::Target,
    name: &str,
    body: &Value,
) -> Result<(u16, Value), crate::http::HttpError> {
    let t = format!("AmazonSSM.{name}");
    target.post_json(
        "ssm",
        "/",
        &[
            ("content-type", "application/x-amz-json-1.1"),
            ("x-amz-target", t.as_str()),
        ],
        body,
    )
}

/// An SSM error answer as one line.
pub(crate) fn ssm_error(v: &Value) -> String {
    format!(
        "{}: {}",
        v["__type"]
            .as_str()
            .or_else(|| v["code"].as_str())
            .unwrap_or("error"),
        v["message"].as_str().unwrap_or("")
    )
}

/// The shell line that runs `argv` as given: one argument is already a command line; several
/// are quoted so that each reaches the command intact (spaces, quotes and `;` included).
pub fn command_line(argv: &[String]) -> String {
    if let [line] = argv {
        return line.clone();
    }
    argv.iter()
        .map(|a| {
            let plain = !a.is_empty()
                && a.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_@%+=:,./-".contains(c));
            if plain {
                a.clone()
            } else {
                format!("'{}'", a.replace('\'', r"'\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

pub fn run(args: Args) -> ExitCode {
    let (instance, timeout, command) = match args.command {
        Sub::SendCommand {
            instance,
            timeout,
            command,
        } => (instance, timeout, command),
        Sub::StartSession { instance, reason } => {
            return session::run(&args.target, &instance, reason.as_deref())
        }
    };
    let fail = |msg: String| {
        eprintln!("kumo ssm: {msg}");
        ExitCode::FAILURE
    };
    let sent = call(
        &args.target,
        "SendCommand",
        &json!({ "InstanceIds": [instance], "DocumentName": "AWS-RunShellScript", "Parameters": { "commands": [command_line(&command)] } }),
    );
    let id = match sent {
        Ok((200, v)) => v["Command"]["CommandId"].as_str().unwrap_or("").to_string(),
        Ok((_, v)) => return fail(ssm_error(&v)),
        Err(e) => return fail(e.to_string()),
    };
    let deadline = Instant::now() + Duration::from_secs(timeout);
    loop {
        match call(
            &args.target,
            "GetCommandInvocation",
            &json!({ "CommandId": id, "InstanceId": instance }),
        ) {
            Ok((200, v)) if matches!(v["Status"].as_str(), Some("Success") | Some("Failed")) => {
                print!("{}", v["StandardOutputContent"].as_str().unwrap_or(""));
                eprint!("{}", v["StandardErrorContent"].as_str().unwrap_or(""));
                let code = v["ResponseCode"].as_i64().unwrap_or(1);
                return ExitCode::from(code.clamp(0, 255) as u8);
            }
            Ok((200, _)) => {}
            Ok((_, v)) => return fail(ssm_error(&v)),
            Err(e) => return fail(e.to_string()),
        }
        if Instant::now() > deadline {
            return fail(format!("command {id} did not finish in {timeout} s"));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argv_reaches_the_command_intact() {
        let argv = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            command_line(&argv(&["sh", "-c", "echo \"a  b\"; exit 3"])),
            r#"sh -c 'echo "a  b"; exit 3'"#
        );
        assert_eq!(
            command_line(&argv(&["echo", "it's", ""])),
            r"echo 'it'\''s' ''"
        );
        assert_eq!(command_line(&argv(&["dmesg | tail -1"])), "dmesg | tail -1");
    }
}
