//! `kumo ssm send-command INSTANCE -- CMD…`: runs a shell command in an instance through its
//! agent (SSM SendCommand, then GetCommandInvocation until it finishes), without SSH or a key
//! pair. Prints the command's output and exits with its status.

use serde_json::{json, Value};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::ExitCode;
use std::time::{Duration, Instant};

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Sub,
    /// The server.
    #[arg(long, global = true, default_value = "http://127.0.0.1:4566")]
    endpoint_url: String,
    /// The instance's region (else AWS_REGION, AWS_DEFAULT_REGION, us-east-1).
    #[arg(long, global = true)]
    region: Option<String>,
    /// The instance's account (else a 12-digit AWS_ACCESS_KEY_ID, else 000000000000).
    #[arg(long, global = true)]
    account: Option<String>,
}

#[derive(clap::Subcommand)]
enum Sub {
    /// Run a shell command as root in an instance and print its output.
    SendCommand {
        instance: String,
        /// How long to wait for it, in seconds.
        #[arg(long, default_value_t = 120)]
        timeout: u64,
        /// The command and its arguments, after `--`.
        #[arg(last = true, required = true)]
        command: Vec<String>,
    },
}

/// One SSM JSON call (open auth: the credential names the account and region).
fn call(
    endpoint: &str,
    account: &str,
    region: &str,
    target: &str,
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
    let req = format!(
        "POST / HTTP/1.1\r\nHost: {host}\r\nX-Amz-Target: AmazonSSM.{target}\r\nContent-Type: application/x-amz-json-1.1\r\nAuthorization: AWS4-HMAC-SHA256 Credential={account}/20260101/{region}/ssm/aws4_request, SignedHeaders=host, Signature=0\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}",
        text.len()
    );
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

pub fn run(args: Args) -> ExitCode {
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let region = args
        .region
        .or_else(|| env("AWS_REGION"))
        .or_else(|| env("AWS_DEFAULT_REGION"))
        .unwrap_or_else(|| "us-east-1".into());
    let account = args
        .account
        .or_else(|| {
            env("AWS_ACCESS_KEY_ID")
                .filter(|k| k.len() == 12 && k.bytes().all(|b| b.is_ascii_digit()))
        })
        .unwrap_or_else(|| "000000000000".into());
    let Sub::SendCommand {
        instance,
        timeout,
        command,
    } = args.command;
    let fail = |msg: String| {
        eprintln!("kumo ssm: {msg}");
        ExitCode::FAILURE
    };
    let sent = call(
        &args.endpoint_url,
        &account,
        &region,
        "SendCommand",
        &json!({ "InstanceIds": [instance], "DocumentName": "AWS-RunShellScript", "Parameters": { "commands": [command.join(" ")] } }),
    );
    let id = match sent {
        Ok((200, v)) => v["Command"]["CommandId"].as_str().unwrap_or("").to_string(),
        Ok((_, v)) => {
            return fail(format!(
                "{}: {}",
                v["__type"].as_str().unwrap_or("error"),
                v["message"].as_str().unwrap_or("")
            ))
        }
        Err(e) => return fail(e),
    };
    let deadline = Instant::now() + Duration::from_secs(timeout);
    loop {
        match call(
            &args.endpoint_url,
            &account,
            &region,
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
            Ok((_, v)) => {
                return fail(format!(
                    "{}: {}",
                    v["__type"].as_str().unwrap_or("error"),
                    v["message"].as_str().unwrap_or("")
                ))
            }
            Err(e) => return fail(e),
        }
        if Instant::now() > deadline {
            return fail(format!("command {id} did not finish in {timeout} s"));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}
