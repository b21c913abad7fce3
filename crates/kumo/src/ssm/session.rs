//! `kumo ssm start-session INSTANCE`: SSM StartSession, then the session's data channel
//! between this terminal and a PTY in the guest.
//!
//! The terminal is put in raw mode (`stty raw -echo`, restored at the end, however the
//! session ends: a SIGTERM or SIGHUP ends it too), so every key, Ctrl-C included, goes to the
//! guest's shell, as with AWS's session-manager-plugin; the terminal's size is sent first and
//! again at each SIGWINCH. One thread reads the keyboard; the main one reads the socket with
//! a short timeout and sends what was typed in between.

use kumo_api::channel::{self, Message};
use serde_json::json;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::Duration;
use tungstenite::Message as Ws;

/// The terminal, in raw mode until dropped.
struct Raw {
    saved: Option<String>,
}

fn stty(args: &[&str]) -> Option<String> {
    let out = Command::new("stty")
        .args(args)
        .stdin(Stdio::inherit())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

impl Raw {
    /// Raw mode when standard input is a terminal.
    fn enter() -> Raw {
        let saved = stty(&["-g"]);
        if saved.is_some() {
            stty(&["raw", "-echo"]);
        }
        Raw { saved }
    }
}

impl Drop for Raw {
    fn drop(&mut self) {
        if let Some(s) = &self.saved {
            stty(&[s]);
        }
    }
}

/// The terminal's rows and columns (24 × 80 when it is not one).
fn size() -> (u64, u64) {
    stty(&["size"])
        .and_then(|s| {
            let (r, c) = s.split_once(' ')?;
            Some((r.parse().ok()?, c.parse().ok()?))
        })
        .unwrap_or((24, 80))
}

/// Set by the signals the session handles: the window changed, or the session must end.
static RESIZED: AtomicBool = AtomicBool::new(false);
static ENDED: AtomicBool = AtomicBool::new(false);

/// SIGWINCH marks a resize; SIGTERM and SIGHUP end the session (the loop sees the flag within
/// its read timeout), so the terminal is restored rather than left raw. Tokio's signal
/// handling, on a thread of its own.
fn handle_signals() {
    use tokio::signal::unix::{signal, SignalKind};
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
    {
        Ok(rt) => rt,
        Err(_) => return,
    };
    // Registered before this returns, so none is missed once the session has started.
    let signals = rt.block_on(async {
        Some((
            signal(SignalKind::window_change()).ok()?,
            signal(SignalKind::terminate()).ok()?,
            signal(SignalKind::hangup()).ok()?,
        ))
    });
    let Some((mut winch, mut term, mut hup)) = signals else {
        return;
    };
    std::thread::spawn(move || {
        rt.block_on(async {
            loop {
                tokio::select! {
                    _ = winch.recv() => RESIZED.store(true, Ordering::Relaxed),
                    _ = term.recv() => ENDED.store(true, Ordering::Relaxed),
                    _ = hup.recv() => ENDED.store(true, Ordering::Relaxed),
                }
            }
        })
    });
}

/// The data channel's message with the terminal's size.
fn size_message(seq: i64) -> Message {
    let (rows, cols) = size();
    Message::new(
        channel::INPUT,
        seq,
        channel::PAYLOAD_SIZE,
        json!({ "cols": cols, "rows": rows })
            .to_string()
            .into_bytes(),
    )
}

fn uuid() -> String {
    let mut b = [0u8; 16];
    let _ = openssl::rand::rand_bytes(&mut b);
    kumo_model::ids::format_uuid(b)
}

pub fn run(target: &crate::http::Target, instance: &str, reason: Option<&str>) -> ExitCode {
    let fail = |msg: String| {
        eprintln!("kumo ssm start-session: {msg}");
        ExitCode::from(255)
    };
    let mut body = json!({ "Target": instance });
    if let Some(r) = reason {
        body["Reason"] = json!(r);
    }
    let (id, token, url) = match super::call(target, "StartSession", &body) {
        Ok((200, v)) => (
            v["SessionId"].as_str().unwrap_or("").to_string(),
            v["TokenValue"].as_str().unwrap_or("").to_string(),
            v["StreamUrl"].as_str().unwrap_or("").to_string(),
        ),
        Ok((_, v)) => return fail(super::ssm_error(&v)),
        Err(e) => return fail(e.to_string()),
    };
    let Some(host) = url
        .strip_prefix("ws://")
        .and_then(|r| r.split('/').next())
        .map(str::to_string)
    else {
        return fail(format!("cannot open the data channel at {url}"));
    };
    let stream = match TcpStream::connect(&host) {
        Ok(s) => s,
        Err(e) => return fail(format!("{host}: {e}")),
    };
    let mut ws = match tungstenite::client(url.as_str(), stream) {
        Ok((ws, _)) => ws,
        Err(e) => return fail(format!("the data channel: {e}")),
    };
    let _ = ws
        .get_ref()
        .set_read_timeout(Some(Duration::from_millis(20)));
    print!("\r\nStarting session with SessionId: {id}\r\n\r\n");
    let _ = std::io::stdout().flush();
    let open = json!({ "MessageSchemaVersion": "1.0", "RequestId": uuid(), "TokenValue": token,
                       "ClientId": uuid(), "ClientVersion": concat!("kumo-", env!("CARGO_PKG_VERSION")) });
    handle_signals();
    let size_msg = size_message(0);
    if ws.send(Ws::Text(open.to_string().into())).is_err()
        || ws.send(Ws::Binary(size_msg.encode().into())).is_err()
    {
        return fail("the data channel closed at once".into());
    }
    let raw = Raw::enter();
    let (keys, typed) = mpsc::channel::<Vec<u8>>();
    std::thread::spawn(move || {
        let mut stdin = std::io::stdin();
        let mut buf = [0u8; 1024];
        while let Ok(n) = stdin.read(&mut buf) {
            if n == 0 || keys.send(buf[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    let mut seq = 1i64;
    let mut out = std::io::stdout();
    let mut why = None;
    'session: loop {
        match ws.read() {
            Ok(Ws::Binary(b)) => {
                let Some(m) = Message::decode(&b) else {
                    continue;
                };
                match m.message_type.as_str() {
                    channel::OUTPUT => {
                        let _ = out.write_all(&m.payload);
                        let _ = out.flush();
                        if ws.send(Ws::Binary(m.ack().encode().into())).is_err() {
                            break 'session;
                        }
                    }
                    channel::CLOSED => {
                        let v: serde_json::Value =
                            serde_json::from_slice(&m.payload).unwrap_or_default();
                        why = v["Output"]
                            .as_str()
                            .filter(|o| !o.is_empty())
                            .map(str::to_string);
                        break 'session;
                    }
                    _ => {}
                }
            }
            Ok(Ws::Close(_)) => break,
            Ok(_) => {}
            // A read with a timeout is not restarted after a signal (SIGWINCH): EINTR.
            Err(tungstenite::Error::Io(e))
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock
                        | std::io::ErrorKind::TimedOut
                        | std::io::ErrorKind::Interrupted
                ) => {}
            Err(_) => break,
        }
        if ENDED.load(Ordering::Relaxed) {
            break;
        }
        if RESIZED.swap(false, Ordering::Relaxed) {
            let m = size_message(seq);
            seq += 1;
            if ws.send(Ws::Binary(m.encode().into())).is_err() {
                break 'session;
            }
        }
        while let Ok(k) = typed.try_recv() {
            let m = Message::new(channel::INPUT, seq, channel::PAYLOAD_OUTPUT, k);
            seq += 1;
            if ws.send(Ws::Binary(m.encode().into())).is_err() {
                break 'session;
            }
        }
    }
    drop(raw);
    let failed = why.is_some();
    if let Some(w) = why {
        eprint!("\r\n{w}\r\n");
    }
    print!("\r\n\r\nExiting session with sessionId: {id}.\r\n\r\n");
    let _ = out.flush();
    // A session that ended with a reason (its agent never opened it, say) is a failure.
    if failed {
        ExitCode::from(255)
    } else {
        ExitCode::SUCCESS
    }
}
