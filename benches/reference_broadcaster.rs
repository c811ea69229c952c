//! The bare reference broadcaster: the floor for CPU per delivery on this machine, not a
//! usable server.
//!
//! It speaks just enough of babelcast's listener and publisher protocol for `babelcast load`:
//! a minimal WebSocket handshake, `hello` and `status` on join, `line`/`partial` frames and
//! `ack`s, and sound: a feed's Opus packets (`…/audio/publish`) framed once with the 16-byte
//! listener header and written to the listeners that asked (`?audio=1`). Listener sockets go into a plain list: no per-client task, no queue, no buffer. The
//! publishing task serialises each caption once, encodes one WebSocket frame, and writes it
//! with one non-blocking `write` per socket; a socket that cannot take the whole frame at once
//! is dropped. Nothing is stored.
//!
//! Run: `cargo run --release --example reference_broadcaster -- 127.0.0.1:9100`; it prints
//! `listening on ADDR` and serves until killed.

use std::collections::HashMap;
use std::io::Write;
use std::sync::{Arc, Mutex};

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::Role;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

/// One channel: its seq and its listeners' sockets (non-blocking), with whether each asked
/// for sound.
#[derive(Default)]
struct Chan {
    seq: u64,
    packet: u32,
    listeners: Vec<(std::net::TcpStream, bool)>,
}

type Chans = Arc<Mutex<HashMap<String, Chan>>>;

/// A server-to-client text frame: header and payload in one buffer, for one `write`.
fn ws_frame(payload: &[u8]) -> Vec<u8> {
    frame(0x81, payload)
}

/// A frame whose first byte is `op` (0x81 text, 0x82 binary), for one `write`.
fn frame(op: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 10);
    out.push(op);
    match payload.len() {
        n if n < 126 => out.push(n as u8),
        n if n < 65536 => {
            out.push(126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(payload);
    out
}

/// Writes `json` once to every socket; drops those that could not take all of it.
fn broadcast(chan: &mut Chan, json: &str) {
    let bytes = ws_frame(json.as_bytes());
    chan.listeners
        .retain(|(s, _)| matches!((&*s).write(&bytes), Ok(n) if n == bytes.len()));
}

/// Frames an Opus packet once (babelcast's 16-byte listener header) and writes it to every
/// socket that asked for sound; drops those that could not take all of it.
fn broadcast_sound(chan: &mut Chan, opus: &[u8]) {
    chan.packet = chan.packet.wrapping_add(1);
    let mut payload = Vec::with_capacity(16 + opus.len());
    payload.extend_from_slice(&[1, 0, 0, 1]);
    payload.extend_from_slice(&chan.packet.to_be_bytes());
    payload.extend_from_slice(&now_ms().to_be_bytes()[2..]);
    payload.extend_from_slice(&960u16.to_be_bytes());
    payload.extend_from_slice(opus);
    let bytes = frame(0x82, &payload);
    chan.listeners
        .retain(|(s, sound)| !*sound || matches!((&*s).write(&bytes), Ok(n) if n == bytes.len()));
}

fn hello(event: &str, channel: &str, role: &str, seq: u64) -> String {
    json!({"type": "hello", "event": event, "channel": channel, "lang": "en",
           "label": "reference", "role": role, "seq": seq})
    .to_string()
}

fn status() -> String {
    json!({"type": "status", "listeners": 0, "publishers": 1, "on_air": true}).to_string()
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Reads the request head; returns (path, Sec-WebSocket-Key).
async fn read_head(stream: &mut TcpStream) -> Option<(String, String)> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 || buf.len() > 8192 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let head = String::from_utf8_lossy(&buf);
    let mut lines = head.split("\r\n");
    let path = lines.next()?.split(' ').nth(1)?.to_string();
    let key = lines.find_map(|l| {
        let (name, value) = l.split_once(':')?;
        name.trim()
            .eq_ignore_ascii_case("sec-websocket-key")
            .then(|| value.trim().to_string())
    })?;
    Some((path, key))
}

async fn handle(mut stream: TcpStream, chans: Chans) {
    let _ = stream.set_nodelay(true);
    let Some((path, key)) = read_head(&mut stream).await else {
        return;
    };
    let (route, query) = path.split_once('?').unwrap_or((&path, ""));
    let parts: Vec<&str> = route.split('/').collect();
    // /v1/events/{event}/channels/{channel}/{listen|publish|audio/publish}
    let (event, channel, role) = match parts.as_slice() {
        ["", "v1", "events", e, "channels", c, r] => (e.to_string(), c.to_string(), r.to_string()),
        ["", "v1", "events", e, "channels", c, "audio", "publish"] => {
            (e.to_string(), c.to_string(), "feed".to_string())
        }
        _ => return,
    };
    let sound = query.split('&').any(|kv| kv == "audio=1");
    let response = format!(
        "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Accept: {}\r\n\r\n",
        derive_accept_key(key.as_bytes())
    );
    if stream.write_all(response.as_bytes()).await.is_err() {
        return;
    }
    let key = format!("{event}/{channel}");
    if role == "listen" {
        let Ok(std) = stream.into_std() else { return };
        let mut map = chans.lock().unwrap();
        let chan = map.entry(key).or_default();
        let mut greeting = ws_frame(hello(&event, &channel, "listen", chan.seq).as_bytes());
        greeting.extend(ws_frame(status().as_bytes()));
        if matches!((&std).write(&greeting), Ok(n) if n == greeting.len()) {
            chan.listeners.push((std, sound));
        }
        return;
    }
    if role == "feed" {
        let mut ws = WebSocketStream::from_raw_socket(stream, Role::Server, None).await;
        let seq = chans.lock().unwrap().entry(key.clone()).or_default().seq;
        for m in [hello(&event, &channel, "feed", seq), status()] {
            if ws.send(Message::Text(m.into())).await.is_err() {
                return;
            }
        }
        while let Some(Ok(msg)) = ws.next().await {
            if let Message::Binary(b) = msg {
                if b.len() > 1 && b[0] == 1 {
                    broadcast_sound(
                        chans.lock().unwrap().entry(key.clone()).or_default(),
                        &b[1..],
                    );
                }
            }
        }
        return;
    }
    // The publisher: parse its messages; the fan-out runs right here, in its task.
    let mut ws = WebSocketStream::from_raw_socket(stream, Role::Server, None).await;
    let seq = chans.lock().unwrap().entry(key.clone()).or_default().seq;
    let greeting = [hello(&event, &channel, "publish", seq), status()];
    for m in greeting {
        if ws.send(Message::Text(m.into())).await.is_err() {
            return;
        }
    }
    while let Some(Ok(msg)) = ws.next().await {
        let Message::Text(text) = msg else { continue };
        let Ok(v) = serde_json::from_str::<Value>(&text) else {
            continue;
        };
        let text = v["text"].as_str().unwrap_or("");
        let reply = match v["type"].as_str() {
            Some("final") => {
                let mut map = chans.lock().unwrap();
                let chan = map.entry(key.clone()).or_default();
                chan.seq += 1;
                let seq = chan.seq;
                // Field order as babelcast sends it (json! would sort the keys).
                let line = format!(
                    r#"{{"type":"line","seq":{seq},"text":{},"lang":"en","ts":{}}}"#,
                    Value::from(text),
                    now_ms()
                );
                broadcast(chan, &line);
                drop(map);
                Some(json!({"type": "ack", "seq": seq, "id": v["id"]}).to_string())
            }
            Some("partial") => {
                let partial = format!(r#"{{"type":"partial","text":{}}}"#, Value::from(text));
                let mut map = chans.lock().unwrap();
                broadcast(map.entry(key.clone()).or_default(), &partial);
                None
            }
            _ => None,
        };
        if let Some(reply) = reply {
            if ws.send(Message::Text(reply.into())).await.is_err() {
                return;
            }
        }
    }
}

fn main() {
    let bind = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:0".into());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    rt.block_on(async {
        let listener = TcpListener::bind(&bind).await.expect("bind");
        println!("listening on {}", listener.local_addr().expect("address"));
        let chans: Chans = Arc::default();
        loop {
            match listener.accept().await {
                Ok((stream, _)) => {
                    tokio::spawn(handle(stream, chans.clone()));
                }
                Err(_) => tokio::time::sleep(std::time::Duration::from_millis(50)).await,
            }
        }
    });
}
