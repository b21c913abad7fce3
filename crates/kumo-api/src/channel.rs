//! Session Manager's data channel: the WebSocket at a session's `StreamUrl`
//! (`/v1/data-channel/<session id>`), speaking the messages SSM's clients speak.
//!
//! A client opens the socket and sends, as text, `{"MessageSchemaVersion": "1.0",
//! "RequestId": …, "TokenValue": <the session's token>}`; from then on every message is an
//! agent message ([`Message`]): `input_stream_data` from the client (payload type 1, keys
//! typed; 3, the terminal's size as `{"cols": …, "rows": …}`), `output_stream_data` to it
//! (payload type 1, what the shell wrote), `acknowledge` both ways for every data message, and
//! `channel_closed` when the session ends. The layout is SSM Agent's (`agentmessage.go`): a
//! 4-byte header length (116), a 32-byte message type, schema version, creation time in
//! milliseconds, sequence number, flags, a 16-byte message id, the payload's SHA-256, the
//! payload type and length, then the payload; integers big-endian.
//!
//! Behind the socket is the guest's shell: once the token checks out and the terminal's size
//! is known (or half a second has passed), the guest's agent is asked for a shell on a PTY
//! of that size, and its connection back is pumped to and from the socket. A later size
//! message resizes the PTY through the guest's agent (its programs get SIGWINCH).

use crate::AppState;
use axum::extract::ws::{Message as Ws, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, State};
use axum::response::Response;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The data-channel message types.
pub const INPUT: &str = "input_stream_data";
pub const OUTPUT: &str = "output_stream_data";
pub const ACK: &str = "acknowledge";
pub const CLOSED: &str = "channel_closed";

/// Payload types.
pub const PAYLOAD_OUTPUT: u32 = 1;
pub const PAYLOAD_SIZE: u32 = 3;

const HEADER_LENGTH: u32 = 116;

/// One agent message.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub message_type: String,
    pub schema_version: u32,
    pub created_ms: u64,
    pub sequence: i64,
    pub flags: u64,
    pub message_id: [u8; 16],
    pub payload_type: u32,
    pub payload: Vec<u8>,
}

fn random_id() -> [u8; 16] {
    let mut b = [0u8; 16];
    let _ = openssl::rand::rand_bytes(&mut b);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    b
}

impl Message {
    /// A new message of `message_type`, stamped now, with a random id.
    pub fn new(message_type: &str, sequence: i64, payload_type: u32, payload: Vec<u8>) -> Message {
        Message {
            message_type: message_type.to_string(),
            schema_version: 1,
            created_ms: kumo_ec2_wire::DateTime::now().0 as u64,
            sequence,
            flags: 0,
            message_id: random_id(),
            payload_type,
            payload,
        }
    }

    /// The message id as a UUID's text. SSM Agent writes a UUID's less significant half
    /// first, so its text is bytes 8..16, then 0..8.
    pub fn id_text(&self) -> String {
        let b = &self.message_id;
        let h: String = b[8..16]
            .iter()
            .chain(&b[0..8])
            .map(|x| format!("{x:02x}"))
            .collect();
        format!(
            "{}-{}-{}-{}-{}",
            &h[0..8],
            &h[8..12],
            &h[12..16],
            &h[16..20],
            &h[20..32]
        )
    }

    /// The acknowledgement of this message.
    pub fn ack(&self) -> Message {
        let body = json!({
            "AcknowledgedMessageType": self.message_type,
            "AcknowledgedMessageId": self.id_text(),
            "AcknowledgedMessageSequenceNumber": self.sequence,
            "IsSequentialMessage": true,
        });
        Message::new(ACK, self.sequence, 0, body.to_string().into_bytes())
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(120 + self.payload.len());
        b.extend_from_slice(&HEADER_LENGTH.to_be_bytes());
        // The type, left-aligned and padded with spaces, as the agent writes it.
        let mut t = [b' '; 32];
        let n = self.message_type.len().min(32);
        t[..n].copy_from_slice(&self.message_type.as_bytes()[..n]);
        b.extend_from_slice(&t);
        b.extend_from_slice(&self.schema_version.to_be_bytes());
        b.extend_from_slice(&self.created_ms.to_be_bytes());
        b.extend_from_slice(&self.sequence.to_be_bytes());
        b.extend_from_slice(&self.flags.to_be_bytes());
        b.extend_from_slice(&self.message_id);
        b.extend_from_slice(&openssl::sha::sha256(&self.payload));
        b.extend_from_slice(&self.payload_type.to_be_bytes());
        b.extend_from_slice(&(self.payload.len() as u32).to_be_bytes());
        b.extend_from_slice(&self.payload);
        b
    }

    /// Reads a message; None when it is too short or its lengths disagree. The digest is not
    /// checked: some clients write it as text.
    pub fn decode(b: &[u8]) -> Option<Message> {
        let u32_at = |o: usize| -> Option<u32> {
            Some(u32::from_be_bytes(b.get(o..o + 4)?.try_into().ok()?))
        };
        let u64_at = |o: usize| -> Option<u64> {
            Some(u64::from_be_bytes(b.get(o..o + 8)?.try_into().ok()?))
        };
        let hl = u32_at(0)? as usize;
        if hl < HEADER_LENGTH as usize {
            return None;
        }
        let message_type = String::from_utf8_lossy(b.get(4..36)?)
            .trim_matches(|c: char| c == '\0' || c == ' ')
            .to_string();
        let len = u32_at(hl)? as usize;
        let payload = b.get(hl + 4..hl + 4 + len)?.to_vec();
        Some(Message {
            message_type,
            schema_version: u32_at(36)?,
            created_ms: u64_at(40)?,
            sequence: u64_at(48)? as i64,
            flags: u64_at(56)?,
            message_id: b.get(64..80)?.try_into().ok()?,
            payload_type: u32_at(112)?,
            payload,
        })
    }
}

/// The `channel_closed` message that ends a session.
pub fn closed_message(session_id: &str, sequence: i64, output: &str) -> Message {
    let m = Message::new(CLOSED, sequence, 0, Vec::new());
    let body = json!({
        "MessageId": m.id_text(),
        "CreatedDate": kumo_ec2_wire::DateTime(m.created_ms as i64).to_iso8601(),
        "DestinationId": session_id,
        "SessionId": session_id,
        "MessageType": CLOSED,
        "SchemaVersion": 1,
        "Output": output,
    });
    Message {
        payload: body.to_string().into_bytes(),
        ..m
    }
}

/// The terminal's size in a size message.
pub fn size_of(payload: &[u8]) -> Option<(u16, u16)> {
    let v: Value = serde_json::from_slice(payload).ok()?;
    let rows = v["rows"].as_u64()?.clamp(1, 1000) as u16;
    let cols = v["cols"].as_u64()?.clamp(1, 1000) as u16;
    Some((rows, cols))
}

/// `GET /v1/data-channel/<session id>`: the WebSocket. A request that is not a WebSocket
/// handshake is answered in EC2's error envelope, as every other bad request is.
pub async fn open(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    ws: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
) -> Response {
    match ws {
        Ok(ws) => ws.on_upgrade(move |socket| session(state, id, socket)),
        Err(e) => crate::wire::http_error(
            e.status(),
            crate::wire::code_for(e.status()),
            format!("A session's data channel is a WebSocket: {}", e.body_text()),
        ),
    }
}

async fn send(ws: &mut WebSocket, m: &Message) -> bool {
    ws.send(Ws::Binary(m.encode().into())).await.is_ok()
}

/// How a session's channel ended.
enum End {
    /// The shell exited.
    Exited,
    /// The client closed the socket.
    Left,
    /// TerminateSession.
    Terminated,
    /// The guest left [`KEY_QUEUE`] messages of typed input unread.
    Stuck,
}

/// How many messages of typed input may wait for the guest to read them before the session
/// ends: a guest that reads none of its input never makes the server hold more.
const KEY_QUEUE: usize = 1024;

async fn session(state: Arc<AppState>, id: String, mut ws: WebSocket) {
    // The token, first.
    let token = match tokio::time::timeout(Duration::from_secs(10), ws.recv()).await {
        Ok(Some(Ok(Ws::Text(t)))) => serde_json::from_str::<Value>(&t)
            .ok()
            .and_then(|v| v["TokenValue"].as_str().map(str::to_string)),
        Ok(Some(Ok(Ws::Binary(b)))) => serde_json::from_slice::<Value>(&b)
            .ok()
            .and_then(|v| v["TokenValue"].as_str().map(str::to_string)),
        _ => None,
    };
    let Some(token) = token else {
        let _ = ws.send(Ws::Close(None)).await;
        return;
    };
    // The terminal's size, if the client says it soon; keys typed meanwhile wait.
    let (mut rows, mut cols) = (24u16, 80u16);
    let mut typed: Vec<u8> = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_millis(500);
    while let Ok(Some(Ok(frame))) = tokio::time::timeout_at(deadline, ws.recv()).await {
        let Ws::Binary(b) = frame else { continue };
        let Some(m) = Message::decode(&b) else {
            continue;
        };
        if m.message_type != INPUT {
            continue;
        }
        if !send(&mut ws, &m.ack()).await {
            return;
        }
        match m.payload_type {
            PAYLOAD_SIZE => {
                if let Some((r, c)) = size_of(&m.payload) {
                    (rows, cols) = (r, c);
                }
                break;
            }
            PAYLOAD_OUTPUT => typed.extend_from_slice(&m.payload),
            _ => {}
        }
    }
    let stop = Arc::new(tokio::sync::Notify::new());
    let close: Arc<dyn Fn() + Send + Sync> = {
        let stop = stop.clone();
        Arc::new(move || stop.notify_one())
    };
    let kumo = state.clone();
    let sid = id.clone();
    let connected = tokio::task::spawn_blocking(move || {
        kumo.kumo
            .ssm_session_connect(&sid, &token, rows, cols, close)
    })
    .await;
    let mut seq: i64 = 0;
    let wait = match connected {
        Ok(Ok(w)) => w,
        Ok(Err((code, message))) => {
            tracing::info!(session = %id, code, message, "a data channel was refused");
            let _ = send(&mut ws, &closed_message(&id, 0, &message)).await;
            let _ = ws.send(Ws::Close(None)).await;
            return;
        }
        Err(_) => return,
    };
    let guest = match tokio::time::timeout(Duration::from_secs(30), wait).await {
        Ok(Ok(g)) => g,
        _ => {
            let _ = send(
                &mut ws,
                &closed_message(&id, 0, "The instance's agent did not open the session."),
            )
            .await;
            let _ = ws.send(Ws::Close(None)).await;
            ended(&state, &id, "Failed").await;
            return;
        }
    };
    // The guest's side: its output is read here; what the client types goes through a queue
    // to a writer of its own, so a guest that does not read its input never stalls its
    // output, nor a TerminateSession.
    let (mut from_guest, mut to_guest) = guest.stream.into_split();
    let (keys, mut queued) = tokio::sync::mpsc::channel::<Vec<u8>>(KEY_QUEUE);
    let writer = tokio::spawn(async move {
        while let Some(k) = queued.recv().await {
            if to_guest.write_all(&k).await.is_err() {
                break;
            }
        }
    });
    if !typed.is_empty() {
        let _ = keys.try_send(typed);
    }
    let mut pending = guest.early;
    let mut buf = vec![0u8; 16 * 1024];
    let end = loop {
        if !pending.is_empty() {
            let m = Message::new(OUTPUT, seq, PAYLOAD_OUTPUT, std::mem::take(&mut pending));
            seq += 1;
            // A client that does not read stalls this send; a TerminateSession still ends it.
            tokio::select! {
                sent = send(&mut ws, &m) => if !sent { break End::Left },
                _ = stop.notified() => break End::Terminated,
            }
        }
        tokio::select! {
            frame = ws.recv() => match frame {
                Some(Ok(Ws::Binary(b))) => {
                    let Some(m) = Message::decode(&b) else { continue };
                    if m.message_type != INPUT {
                        continue;
                    }
                    let ack = m.ack();
                    let acked = tokio::select! {
                        sent = send(&mut ws, &ack) => sent,
                        _ = stop.notified() => break End::Terminated,
                    };
                    if !acked {
                        break End::Left;
                    }
                    if m.payload_type == PAYLOAD_SIZE {
                        match size_of(&m.payload) {
                            Some(size) if size != (rows, cols) => {
                                (rows, cols) = size;
                                let (kumo, sid) = (state.clone(), id.clone());
                                tokio::task::spawn_blocking(move || {
                                    kumo.kumo.ssm_session_resize(&sid, size.0, size.1)
                                });
                            }
                            _ => {}
                        }
                    } else if m.payload_type == PAYLOAD_OUTPUT {
                        match keys.try_send(m.payload) {
                            Ok(()) => {}
                            Err(tokio::sync::mpsc::error::TrySendError::Full(_)) => break End::Stuck,
                            Err(tokio::sync::mpsc::error::TrySendError::Closed(_)) => break End::Exited,
                        }
                    }
                }
                Some(Ok(Ws::Close(_))) | None | Some(Err(_)) => break End::Left,
                Some(Ok(_)) => {}
            },
            n = from_guest.read(&mut buf) => match n {
                Ok(0) | Err(_) => break End::Exited,
                Ok(n) => pending = buf[..n].to_vec(),
            },
            _ = stop.notified() => break End::Terminated,
        }
    };
    // The guest's side goes: the connection closes, and the guest's session script hangs the
    // PTY up.
    writer.abort();
    drop(from_guest);
    let why = match end {
        End::Stuck => "The instance did not read the input sent to it.",
        _ => "",
    };
    if !matches!(end, End::Left) {
        let closing = async {
            let _ = send(&mut ws, &closed_message(&id, seq, why)).await;
            let _ = ws.send(Ws::Close(None)).await;
        };
        let _ = tokio::time::timeout(Duration::from_secs(5), closing).await;
    }
    if !matches!(end, End::Terminated) {
        ended(&state, &id, "Terminated").await;
    }
}

async fn ended(state: &Arc<AppState>, id: &str, status: &'static str) {
    let (state, id) = (state.clone(), id.to_string());
    let _ = tokio::task::spawn_blocking(move || state.kumo.ssm_session_closed(&id, status)).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_round_trips_in_the_agents_layout() {
        let m = Message::new(OUTPUT, 7, PAYLOAD_OUTPUT, b"hello".to_vec());
        let b = m.encode();
        assert_eq!(b.len(), 120 + 5);
        assert_eq!(&b[0..4], &116u32.to_be_bytes());
        assert_eq!(&b[4..22], b"output_stream_data");
        assert!(b[22..36].iter().all(|&c| c == b' '));
        assert_eq!(&b[48..56], &7i64.to_be_bytes());
        assert_eq!(&b[80..112], &openssl::sha::sha256(b"hello"));
        assert_eq!(&b[112..116], &1u32.to_be_bytes());
        assert_eq!(&b[116..120], &5u32.to_be_bytes());
        assert_eq!(Message::decode(&b), Some(m));
        assert_eq!(Message::decode(&b[..119]), None);
    }

    #[test]
    fn a_clients_message_with_a_nul_padded_type_and_text_digest_reads() {
        // As the ssm-session library writes an input: the type right-aligned after NULs, the
        // digest as hex text.
        let mut b = vec![0u8; 120];
        b[0..4].copy_from_slice(&116u32.to_be_bytes());
        let t = b"input_stream_data";
        b[36 - t.len()..36].copy_from_slice(t);
        b[36..40].copy_from_slice(&1u32.to_be_bytes());
        b[48..56].copy_from_slice(&3i64.to_be_bytes());
        b[80..112].copy_from_slice(b"0123456789abcdef0123456789abcdef");
        b[112..116].copy_from_slice(&PAYLOAD_SIZE.to_be_bytes());
        let payload = br#"{"cols":197,"rows":34}"#;
        b[116..120].copy_from_slice(&(payload.len() as u32).to_be_bytes());
        b.extend_from_slice(payload);
        let m = Message::decode(&b).unwrap();
        assert_eq!((m.message_type.as_str(), m.sequence), (INPUT, 3));
        assert_eq!(size_of(&m.payload), Some((34, 197)));
        // Its acknowledgement names it by its id's text and sequence.
        let ack: Value = serde_json::from_slice(&m.ack().payload).unwrap();
        assert_eq!(ack["AcknowledgedMessageType"], INPUT);
        assert_eq!(ack["AcknowledgedMessageSequenceNumber"], 3);
        assert_eq!(
            ack["AcknowledgedMessageId"],
            "00000000-0000-0000-0000-000000000000"
        );
    }

    #[test]
    fn message_ids_read_as_the_agent_writes_them() {
        let mut m = Message::new(OUTPUT, 0, 1, Vec::new());
        m.message_id = [
            0x9f, 0x01, 0xa3, 0x7d, 0xbf, 0xfe, 0xfc, 0xe1, 0x73, 0x0f, 0x66, 0x49, 0x14, 0x53,
            0x4e, 0x2a,
        ];
        assert_eq!(m.id_text(), "730f6649-1453-4e2a-9f01-a37dbffefce1");
    }

    #[test]
    fn the_closing_message_names_the_session() {
        let m = closed_message("root-0123456789abcdef0", 4, "");
        let v: Value = serde_json::from_slice(&m.payload).unwrap();
        assert_eq!(v["SessionId"], "root-0123456789abcdef0");
        assert_eq!(v["MessageType"], CLOSED);
        assert_eq!(m.message_type, CLOSED);
    }
}
