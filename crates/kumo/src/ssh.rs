//! `kumo ssh INSTANCE [-i key.pem] [-l user] [-- command…]`: logs in to an instance by its id,
//! from the host the server runs on, wherever the instance is.
//!
//! The server says how the host reaches it (`/_kumo/admin/reach`): its public address if it
//! has one, else its private one, sent from the host's own address on the link into the
//! instance's VPC (`ssh -b`), so another VPC on the host with the same CIDR (every account's
//! default VPC is 172.31.0.0/16) never answers instead. Either way the packets cross the VPC's
//! forward path, and its security groups apply, as to any traffic from the host. The host key
//! is checked against the keys the guest printed on its console (as cloud-init prints them on
//! EC2, `-----BEGIN SSH HOST KEY KEYS-----`), under the instance's id, so a later instance at
//! the same address is never mistaken for this one and the user's known_hosts stays as it is.
//! The login user is the image's (`ec2-user`, `admin`, `ubuntu`) unless `-l` names another.

use serde_json::{json, Value};
use std::path::PathBuf;
use std::process::{Command, ExitCode};

#[derive(clap::Args)]
pub struct Args {
    /// The instance's id.
    instance: String,
    /// The private key (the key pair's `.pem`); else ssh's own default keys and agent.
    #[arg(short = 'i')]
    identity: Option<PathBuf>,
    /// The user to log in as [default: the image's login user].
    #[arg(short = 'l')]
    user: Option<String>,
    /// A command to run instead of a login shell, after `--`: its arguments, each passed as
    /// given, or one argument, a shell command line (`-- 'dmesg | tail'`).
    #[arg(last = true)]
    command: Vec<String>,
    #[command(flatten)]
    target: crate::http::Target,
}

/// What the server says of the way to an instance.
#[derive(Debug, PartialEq)]
struct Way {
    /// The address to connect to.
    addr: String,
    /// The host address to send from, for a private address.
    bind: Option<String>,
    user: String,
    host_keys: Vec<String>,
}

fn way(reach: &Value) -> Result<Way, String> {
    let text = |k: &str| reach[k].as_str().map(str::to_string);
    let id = text("instance_id").unwrap_or_default();
    let host_keys: Vec<String> = reach["host_keys"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|k| k.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let nowhere = || {
        format!("{id} runs no guest this host can reach (a server with `--driver null` boots none)")
    };
    if reach["runs_guests"] == false {
        return Err(nowhere());
    }
    let (addr, bind) = match (text("public_ip"), text("private_ip"), text("source")) {
        (Some(public), _, _) => (public, None),
        (None, Some(private), Some(source)) => (private, Some(source)),
        _ => return Err(nowhere()),
    };
    if host_keys.is_empty() {
        return Err(format!(
            "{id} has printed no SSH host keys on its console yet (is it still booting?)"
        ));
    }
    Ok(Way {
        addr,
        bind,
        user: text("user").unwrap_or_else(|| "ec2-user".into()),
        host_keys,
    })
}

/// The ssh command line for `way`, with the known-hosts file `known` that holds its keys.
fn ssh_args(instance: &str, w: &Way, known: &str, args: &Args) -> Vec<String> {
    let mut a: Vec<String> = [
        "-o",
        &format!("HostKeyAlias={instance}"),
        "-o",
        &format!("UserKnownHostsFile={known}"),
        "-o",
        "GlobalKnownHostsFile=/dev/null",
        "-o",
        "StrictHostKeyChecking=yes",
        "-o",
        "CheckHostIP=no",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    if let Some(i) = &args.identity {
        a.extend(["-i".into(), i.display().to_string()]);
    }
    if let Some(b) = &w.bind {
        a.extend(["-b".into(), b.clone()]);
    }
    let user = args.user.clone().unwrap_or_else(|| w.user.clone());
    a.extend(["-l".into(), user, w.addr.clone()]);
    if !args.command.is_empty() {
        // ssh joins its arguments into one line for the remote shell: each is quoted, so each
        // arrives as given (one argument is a command line already, as with ssh).
        a.extend(["--".into(), crate::ssm::command_line(&args.command)]);
    }
    a
}

/// The instance's host keys as a known_hosts file of its own, in a directory only this user
/// can reach (`~/.cache/kumo/ssh`, mode 0700), written whole and renamed into place: nobody
/// else can swap the keys ssh checks. It is kept, and rewritten at each login.
fn known_hosts(instance: &str, lines: &str) -> std::io::Result<std::path::PathBuf> {
    use std::io::Write;
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
    let home = std::env::var_os("HOME").unwrap_or_else(|| "/root".into());
    let dir = std::path::Path::new(&home).join(".cache/kumo/ssh");
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)?;
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))?;
    let path = dir.join(format!("{instance}.known_hosts"));
    let tmp = dir.join(format!(".{instance}.{}", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)?;
    f.write_all(lines.as_bytes())?;
    std::fs::rename(&tmp, &path)?;
    Ok(path)
}

pub fn run(args: Args) -> ExitCode {
    let fail = |msg: String| {
        eprintln!("kumo ssh: {msg}");
        ExitCode::from(255)
    };
    let reach =
        match crate::admin::call(&args.target, "reach", &json!({ "instance": args.instance })) {
            Ok(v) => v,
            Err(e) => return fail(e),
        };
    let w = match way(&reach) {
        Ok(w) => w,
        Err(e) => return fail(e),
    };
    let lines: String = w
        .host_keys
        .iter()
        .map(|k| format!("{} {k}\n", args.instance))
        .collect();
    let known = match known_hosts(&args.instance, &lines) {
        Ok(k) => k,
        Err(e) => return fail(format!("cannot write the instance's known_hosts: {e}")),
    };
    let status = Command::new("ssh")
        .args(ssh_args(
            &args.instance,
            &w,
            &known.to_string_lossy(),
            &args,
        ))
        .status();
    match status {
        Ok(s) => ExitCode::from(s.code().unwrap_or(255).clamp(0, 255) as u8),
        Err(e) => fail(format!("cannot run ssh: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reach(public: Option<&str>, source: Option<&str>, keys: &[&str]) -> Value {
        json!({ "instance_id": "i-0123456789abcdef0", "private_ip": "172.31.0.4",
                "public_ip": public, "source": source, "user": "admin", "host_keys": keys,
                "runs_guests": true })
    }

    #[test]
    fn a_private_address_is_reached_from_the_vpc_link_and_a_public_one_directly() {
        let w = way(&reach(
            None,
            Some("100.127.0.5"),
            &["ssh-ed25519 AAAA root@h"],
        ))
        .unwrap();
        assert_eq!(
            (w.addr.as_str(), w.bind.as_deref()),
            ("172.31.0.4", Some("100.127.0.5"))
        );
        let w = way(&reach(
            Some("198.51.100.9"),
            Some("100.127.0.5"),
            &["ssh-ed25519 AAAA"],
        ))
        .unwrap();
        assert_eq!((w.addr.as_str(), w.bind), ("198.51.100.9", None));
        // No guest, or no keys yet: said, not guessed.
        assert!(way(&reach(None, None, &["ssh-ed25519 AAAA"]))
            .unwrap_err()
            .contains("null"));
        let mut null = reach(Some("198.51.100.9"), None, &[]);
        null["runs_guests"] = json!(false);
        assert!(way(&null).unwrap_err().contains("null"));
        assert!(way(&reach(None, Some("100.127.0.5"), &[]))
            .unwrap_err()
            .contains("booting"));
    }

    #[test]
    fn the_host_key_is_checked_under_the_instance_id() {
        let args = Args {
            instance: "i-0123456789abcdef0".into(),
            identity: Some("k.pem".into()),
            user: None,
            command: vec!["sh".into(), "-c".into(), "echo hi".into()],
            target: crate::http::Target {
                endpoint_url: "http://127.0.0.1:4566".into(),
                region: None,
                account: None,
            },
        };
        let w = way(&reach(None, Some("100.127.0.5"), &["ssh-ed25519 AAAA"])).unwrap();
        let a = ssh_args(&args.instance, &w, "/tmp/k", &args).join(" ");
        assert_eq!(
            a,
            "-o HostKeyAlias=i-0123456789abcdef0 -o UserKnownHostsFile=/tmp/k \
             -o GlobalKnownHostsFile=/dev/null -o StrictHostKeyChecking=yes -o CheckHostIP=no \
             -i k.pem -b 100.127.0.5 -l admin 172.31.0.4 -- sh -c 'echo hi'"
        );
    }
}
