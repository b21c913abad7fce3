//! The `#cloud-config` user data the guest init understands, turned into a shell script the
//! init runs as root, once per instance: `write_files` (content as text or base64, owner,
//! permissions, append, defer), `users` (`default`, name, groups, shell, sudo,
//! `ssh_authorized_keys`) and `runcmd` (strings for the shell, lists as argv), in cloud-init's
//! order. Other keys are logged as not supported, never silently dropped.

use yaml_rust2::{Yaml, YamlLoader};

/// Quotes a string for POSIX sh.
fn q(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

fn b64(data: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for c in data.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= c.len() {
                out.push(T[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn text(y: &Yaml) -> Option<String> {
    match y {
        Yaml::String(s) => Some(s.clone()),
        Yaml::Integer(i) => Some(i.to_string()),
        Yaml::Real(r) => Some(r.clone()),
        Yaml::Boolean(b) => Some(b.to_string()),
        _ => None,
    }
}

fn strings(y: &Yaml) -> Vec<String> {
    match y {
        Yaml::Array(a) => a.iter().filter_map(text).collect(),
        Yaml::String(s) => s
            .split(',')
            .map(|x| x.trim().to_string())
            .filter(|x| !x.is_empty())
            .collect(),
        _ => Vec::new(),
    }
}

fn write_file(out: &mut String, f: &Yaml) {
    let Some(path) = text(&f["path"]) else {
        out.push_str("log 'cloud-config: a write_files entry has no path'\n");
        return;
    };
    let content = text(&f["content"]).unwrap_or_default();
    let encoding = text(&f["encoding"]).unwrap_or_default();
    let data = match encoding.as_str() {
        "b64" | "base64" => content.split_whitespace().collect::<String>(),
        "" | "text/plain" => b64(content.as_bytes()),
        other => {
            out.push_str(&format!(
                "log {}\n",
                q(&format!(
                    "cloud-config: write_files encoding {other} is not supported ({path})"
                ))
            ));
            return;
        }
    };
    let redirect = if f["append"].as_bool() == Some(true) {
        ">>"
    } else {
        ">"
    };
    out.push_str(&format!("mkdir -p \"$(dirname {p})\"\n", p = q(&path)));
    out.push_str(&format!(
        "printf '%s' {} | base64 -d {redirect} {}\n",
        q(&data),
        q(&path)
    ));
    if let Some(perm) = text(&f["permissions"]) {
        out.push_str(&format!(
            "chmod {} {}\n",
            q(perm.trim_start_matches("0o")),
            q(&path)
        ));
    }
    let owner = text(&f["owner"]).unwrap_or_else(|| "root:root".into());
    out.push_str(&format!("chown {} {}\n", q(&owner), q(&path)));
    out.push_str(&format!(
        "log {}\n",
        q(&format!("cloud-config: wrote {path}"))
    ));
}

fn user(out: &mut String, u: &Yaml) {
    if let Some(name) = u.as_str() {
        if name != "default" {
            out.push_str(&format!(
                "id {n} >/dev/null 2>&1 || useradd -m -s /bin/bash {n}\n",
                n = q(name)
            ));
        }
        return;
    }
    let Some(name) = text(&u["name"]) else {
        out.push_str("log 'cloud-config: a users entry has no name'\n");
        return;
    };
    let n = q(&name);
    let shell = text(&u["shell"]).unwrap_or_else(|| "/bin/bash".into());
    out.push_str(&format!(
        "id {n} >/dev/null 2>&1 || useradd -m -s {} {n}\n",
        q(&shell)
    ));
    let groups = strings(&u["groups"]);
    for g in &groups {
        out.push_str(&format!(
            "getent group {g} >/dev/null || groupadd {g}\n",
            g = q(g)
        ));
    }
    if !groups.is_empty() {
        out.push_str(&format!("usermod -aG {} {n}\n", q(&groups.join(","))));
    }
    let sudo: Vec<String> = match &u["sudo"] {
        Yaml::Boolean(false) | Yaml::BadValue | Yaml::Null => Vec::new(),
        other => strings(other),
    };
    if !sudo.is_empty() {
        let lines: String = sudo.iter().map(|r| format!("{name} {r}\n")).collect();
        let file = format!("/etc/sudoers.d/90-cloud-init-{name}");
        out.push_str(&format!(
            "printf '%s' {} > {f}\nchmod 440 {f}\n",
            q(&lines),
            f = q(&file)
        ));
    }
    let keys = strings(&u["ssh_authorized_keys"]);
    if !keys.is_empty() {
        let all: String = keys.iter().map(|k| format!("{k}\n")).collect();
        out.push_str(&format!(
            "H=$(getent passwd {n} | cut -d: -f6); mkdir -p \"$H/.ssh\"; printf '%s' {} >> \"$H/.ssh/authorized_keys\"; chown -R {n}: \"$H/.ssh\"; chmod 700 \"$H/.ssh\"; chmod 600 \"$H/.ssh/authorized_keys\"\n",
            q(&all)
        ));
    }
    out.push_str(&format!(
        "log {}\n",
        q(&format!("cloud-config: user {name}"))
    ));
}

/// Why a `#cloud-config` document cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum CloudConfigError {
    #[error("cloud-config is not valid YAML: {0}")]
    Yaml(#[from] yaml_rust2::ScanError),
    #[error("cloud-config is not a mapping")]
    NotAMapping,
}

/// The script for a `#cloud-config` document, or why it cannot be read.
pub fn to_script(doc: &str) -> Result<String, CloudConfigError> {
    let docs = YamlLoader::load_from_str(doc)?;
    let Some(c) = docs.first() else {
        return Ok(String::new());
    };
    let Some(top) = c.as_hash() else {
        return Err(CloudConfigError::NotAMapping);
    };
    let mut out = String::from("#!/bin/sh\n# Kumo: this instance's #cloud-config, as shell.\nlog() { echo \"[kumo-init] $*\"; }\n");
    for k in top.keys().filter_map(Yaml::as_str) {
        if !matches!(k, "write_files" | "users" | "runcmd") {
            out.push_str(&format!(
                "log {}\n",
                q(&format!(
                    "cloud-config: {k} is not supported by Kumo's init; skipped"
                ))
            ));
        }
    }
    let files: Vec<&Yaml> = c["write_files"]
        .as_vec()
        .map(|v| v.iter().collect())
        .unwrap_or_default();
    for f in files.iter().filter(|f| f["defer"].as_bool() != Some(true)) {
        write_file(&mut out, f);
    }
    for u in c["users"].as_vec().into_iter().flatten() {
        user(&mut out, u);
    }
    for f in files.iter().filter(|f| f["defer"].as_bool() == Some(true)) {
        write_file(&mut out, f);
    }
    for cmd in c["runcmd"].as_vec().into_iter().flatten() {
        let line = match cmd {
            Yaml::Array(argv) => argv
                .iter()
                .filter_map(text)
                .map(|a| q(&a))
                .collect::<Vec<_>>()
                .join(" "),
            other => match text(other) {
                Some(s) => format!("sh -c {}", q(&s)),
                None => continue,
            },
        };
        out.push_str(&format!("{line}\n"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_the_standard() {
        assert_eq!(b64(b""), "");
        assert_eq!(b64(b"f"), "Zg==");
        assert_eq!(b64(b"fo"), "Zm8=");
        assert_eq!(b64(b"foo"), "Zm9v");
        assert_eq!(b64(b"hello\n'x'"), "aGVsbG8KJ3gn");
    }

    #[test]
    fn the_supported_keys_become_shell() {
        let doc = "#cloud-config\nwrite_files:\n  - path: /etc/app.conf\n    content: |\n      port=8080\n      name='x'\n    permissions: '0600'\n  - path: /home/bob/later\n    content: hi\n    owner: bob:bob\n    defer: true\nusers:\n  - default\n  - name: bob\n    groups: [adm, wheel]\n    sudo: ALL=(ALL) NOPASSWD:ALL\n    ssh_authorized_keys:\n      - ssh-ed25519 AAAA bob\nruncmd:\n  - echo one > /tmp/one\n  - [touch, /tmp/it's]\npackages: [nginx]\n";
        let s = to_script(doc).unwrap();
        assert!(s.contains(&format!(
            "printf '%s' '{}' | base64 -d > '/etc/app.conf'",
            b64(b"port=8080\nname='x'\n")
        )));
        assert!(s.contains("chmod '0600' '/etc/app.conf'"));
        assert!(s.contains("useradd -m -s '/bin/bash' 'bob'"));
        assert!(s.contains("usermod -aG 'adm,wheel' 'bob'"));
        assert!(s.contains("bob ALL=(ALL) NOPASSWD:ALL"));
        assert!(s.contains("ssh-ed25519 AAAA bob"));
        assert!(s.contains("sh -c 'echo one > /tmp/one'"));
        assert!(s.contains("'touch' '/tmp/it'\\''s'"));
        assert!(s.contains("packages is not supported"));
        // Deferred files come after the users they belong to.
        assert!(s.find("'/home/bob/later'").unwrap() > s.find("useradd").unwrap());
        assert!(s.find("useradd").unwrap() > s.find("'/etc/app.conf'").unwrap());
    }

    #[test]
    fn bad_documents_are_refused() {
        assert!(to_script("write_files: [").is_err());
        assert!(to_script("- a\n- b\n").is_err());
    }
}
