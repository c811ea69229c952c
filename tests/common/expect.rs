//! Typed expectations of the test client: the refusal, booth frame or status a test waits
//! for, read with the protocol's own types ([`ServerMsg`], [`BoothMsg`]) rather than JSON
//! values.

use std::time::Duration;

use babelcast::protocol::{
    parse_booth, parse_server, BoothMember, BoothMsg, ClientMsg, ErrorCode, ServerMsg, Status,
};

use futures_util::StreamExt;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message;

use super::{WsClient, RECV_TIMEOUT};

/// How long a reader that skips frames waits for the one it looks for (channels send a
/// status heartbeat, so a reader skipping statuses would otherwise never time out).
pub const UNTIL: Duration = Duration::from_secs(30);

/// A refusal as the `error` message carries it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    pub code: ErrorCode,
    pub message: String,
    /// The refused final's client `id`, when it had one.
    pub id: Option<String>,
    /// The seq a refused edit referred to.
    pub of: Option<u64>,
}

/// Any text frame a socket receives: a server message or (publishers) a `booth` update.
#[derive(Debug, Clone, PartialEq)]
pub enum Received {
    Msg(ServerMsg<'static>),
    Booth(BoothMsg<'static>),
}

impl Received {
    /// Reads one text frame (fails on a frame that is neither a server message nor a booth
    /// update).
    pub fn parse(text: &str) -> Received {
        if let Some(msg) = parse_server(text) {
            return Received::Msg(msg);
        }
        match parse_booth(text) {
            Some(b) => Received::Booth(b),
            None => panic!("not a server message: {text}"),
        }
    }

    /// Whether this is channel metadata (status, booth state) rather than a caption event.
    pub fn is_meta(&self) -> bool {
        matches!(
            self,
            Received::Msg(ServerMsg::Status(_)) | Received::Booth(_)
        )
    }
}

/// What a connection yielded next, typed: a frame, or the end of the connection.
#[derive(Debug)]
pub enum Next {
    Frame(Received),
    /// The server sent a Close frame (its code and reason), or the socket ended without one.
    Closed(Option<CloseFrame>),
}

/// The code of an HTTP refusal, whose body is the protocol's `error` message (`None` for a
/// body that is not one).
pub fn refusal_code(body: &str) -> Option<ErrorCode> {
    match parse_server(body)? {
        ServerMsg::Error { code, .. } => Some(code),
        _ => None,
    }
}

/// The ack of a final without an `id` (or of an edit) stored with `seq`.
pub fn acked(seq: u64) -> ServerMsg<'static> {
    ServerMsg::Ack {
        seq,
        id: None,
        duplicate: false,
    }
}

/// The ack of a final with the client `id` it carried, newly stored with `seq`.
pub fn acked_id(seq: u64, id: &str) -> ServerMsg<'static> {
    ServerMsg::Ack {
        seq,
        id: Some(id.to_string().into()),
        duplicate: false,
    }
}

/// The seq of an ack (fails on any other message).
pub fn ack_seq(m: &ServerMsg<'_>) -> u64 {
    match m {
        ServerMsg::Ack { seq, .. } => *seq,
        other => panic!("expected an ack, got {other:?}"),
    }
}

/// The display name of a booth member (`on_air`, `request`), if there is one.
pub fn member_name<'a>(m: &'a Option<BoothMember<'_>>) -> Option<&'a str> {
    m.as_ref().map(|m| &*m.name)
}

/// The `publisher_id` of a booth member (`on_air`, `request`), if there is one.
pub fn member_id(m: &Option<BoothMember<'_>>) -> Option<u64> {
    m.as_ref().map(|m| m.id)
}

/// The text of a committed line (fails on any other message).
pub fn line_text<'a>(m: &'a ServerMsg<'_>) -> &'a str {
    match m {
        ServerMsg::Line { text, .. } => text,
        other => panic!("expected a line, got {other:?}"),
    }
}

/// The seq and text of a committed line (fails on any other message).
pub fn line_of<'a>(m: &'a ServerMsg<'_>) -> (u64, &'a str) {
    match m {
        ServerMsg::Line { seq, text, .. } => (*seq, text),
        other => panic!("expected a line, got {other:?}"),
    }
}

/// The `(from, to, reason)` of a handover (fails on any other message).
pub fn handover_of<'a>(m: &'a ServerMsg<'_>) -> (Option<&'a str>, Option<&'a str>, &'a str) {
    match m {
        ServerMsg::Handover {
            from, to, reason, ..
        } => (from.as_deref(), to.as_deref(), reason),
        other => panic!("expected a handover, got {other:?}"),
    }
}

/// `f`, failing the test after [`UNTIL`].
async fn until<T>(what: &str, f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(UNTIL, f)
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
}

impl WsClient {
    /// Sends a final without an `id`, without waiting for its answer.
    pub async fn send_final(&mut self, text: &str) {
        self.send(ClientMsg::Final {
            text: text.into(),
            id: None,
        })
        .await;
    }

    /// Sends a partial (the line in progress).
    pub async fn send_partial(&mut self, text: &str) {
        self.send(ClientMsg::Partial { text: text.into() }).await;
    }

    /// The next text frame, typed (fails on a frame that is neither a server message nor a
    /// booth update).
    pub async fn recv_frame(&mut self) -> Received {
        Received::parse(&self.recv_text().await)
    }

    /// The next text frame, typed, or the end of the connection (fails after
    /// [`RECV_TIMEOUT`]).
    pub async fn next_or_closed(&mut self) -> Next {
        loop {
            let msg = tokio::time::timeout(RECV_TIMEOUT, self.ws.next())
                .await
                .expect("timed out waiting for a message or close");
            match msg {
                Some(Ok(Message::Text(t))) => return Next::Frame(Received::parse(&t)),
                Some(Ok(Message::Close(c))) => return Next::Closed(c),
                Some(Ok(_)) => continue,
                Some(Err(_)) | None => return Next::Closed(None),
            }
        }
    }

    /// The next caption event or answer, which must be an `error` (status and booth frames
    /// are skipped).
    pub async fn next_error(&mut self) -> Refused {
        match self.next_msg().await {
            ServerMsg::Error {
                code,
                message,
                id,
                of,
            } => Refused {
                code,
                message: message.into_owned(),
                id: id.map(|i| i.into_owned()),
                of,
            },
            other => panic!("expected an error, got {other:?}"),
        }
    }

    /// The next caption event or answer, which must be an `error` with `code`.
    pub async fn expect_error(&mut self, code: ErrorCode) -> Refused {
        let e = self.next_error().await;
        assert_eq!(e.code, code, "{e:?}");
        e
    }

    /// The seq of the next caption event or answer, which must be an `ack` (of a final
    /// without an `id`, or of an edit).
    pub async fn expect_ack(&mut self) -> u64 {
        match self.next_msg().await {
            ServerMsg::Ack {
                seq,
                id: None,
                duplicate: false,
            } => seq,
            other => panic!("expected an ack, got {other:?}"),
        }
    }

    /// The next `booth` frame that satisfies `f`, skipping every other frame (booth frames
    /// are coalesced updates).
    pub async fn booth_until(&mut self, f: impl Fn(&BoothMsg) -> bool) -> BoothMsg<'static> {
        until("a booth frame", async {
            loop {
                let b = self.recv_booth().await;
                if f(&b) {
                    return b;
                }
            }
        })
        .await
    }

    /// The next `status` that satisfies `f`, skipping every other frame.
    pub async fn status_until(&mut self, f: impl Fn(&Status) -> bool) -> Status {
        until("a status frame", async {
            loop {
                if let ServerMsg::Status(st) = self.recv_msg().await {
                    if f(&st) {
                        return st;
                    }
                }
            }
        })
        .await
    }

    /// Reads committed events (lines, edits, handovers) until `n` of them arrived, skipping
    /// every other message.
    pub async fn committed(&mut self, n: usize) -> Vec<ServerMsg<'static>> {
        until(&format!("{n} events"), async {
            let mut out = Vec::with_capacity(n);
            while out.len() < n {
                let m = self.recv_msg().await;
                if matches!(
                    m,
                    ServerMsg::Line { .. } | ServerMsg::Edit { .. } | ServerMsg::Handover { .. }
                ) {
                    out.push(m);
                }
            }
            out
        })
        .await
    }

    /// The newest booth frame received until `quiet` passes without a frame (`last` if none
    /// came).
    pub async fn latest_booth(
        &mut self,
        mut last: Option<BoothMsg<'static>>,
        quiet: Duration,
    ) -> Option<BoothMsg<'static>> {
        while let Ok(r) = tokio::time::timeout(quiet, self.recv_frame()).await {
            if let Received::Booth(b) = r {
                last = Some(b);
            }
        }
        last
    }

    /// The `seq` of this connection's hello: the channel's last seq when it joined.
    pub fn hello_seq(&self) -> u64 {
        match self.hello_msg() {
            ServerMsg::Hello { seq, .. } => seq,
            other => panic!("expected a hello, got {other:?}"),
        }
    }

    /// The `publisher_id` of this publisher's hello.
    pub fn publisher_id(&self) -> u64 {
        match self.hello_msg() {
            ServerMsg::Hello {
                publisher_id: Some(id),
                ..
            } => id,
            other => panic!("a publisher's hello names its id: {other:?}"),
        }
    }
}
