//! EBU-TT Live over WebSocket: TTML documents in, partials and lines out to listeners, acks
//! back to the producer (on babelcast's URL; nothing on the toolkit's); malformed and
//! out-of-order documents refused with an error frame while nothing is stored and the
//! connection stays open; resends after a reconnect stored once.
mod common;
use common::*;
use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// An EBU-TT Live document of sequence `seq_id` whose `tt:p`s hold `paragraphs` (inner XML).
fn doc(seq_id: &str, number: u64, paragraphs: &[&str]) -> String {
    let ps: String = paragraphs
        .iter()
        .enumerate()
        .map(|(i, p)| format!("<tt:p xml:id=\"sub{i}\" region=\"bottom\">{p}</tt:p>"))
        .collect();
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<tt:tt xmlns:tt="http://www.w3.org/ns/ttml" xmlns:ttp="http://www.w3.org/ns/ttml#parameter" xmlns:tts="http://www.w3.org/ns/ttml#styling" xmlns:ebuttm="urn:ebu:tt:metadata" xmlns:ebuttp="urn:ebu:tt:parameters" xml:lang="en" ttp:timeBase="clock" ttp:clockMode="local" ebuttp:sequenceIdentifier="{seq_id}" ebuttp:sequenceNumber="{number}">
  <tt:head><tt:metadata><ebuttm:documentMetadata/></tt:metadata></tt:head>
  <tt:body dur="00:00:10"><tt:div>{ps}</tt:div></tt:body>
</tt:tt>"#
    )
}

fn publish_url(s: &TestServer, channel: &str) -> String {
    s.ws(&format!(
        "{}?token={}",
        TestServer::channel_path(channel, "ebu-tt/publish"),
        token(channel)
    ))
}

/// Connects an EBU-TT Live producer to `url` and reads its hello.
async fn producer(url: &str) -> Ws {
    let (mut ws, _) = tokio_tungstenite::connect_async(url)
        .await
        .expect("connect");
    let hello = next(&mut ws).await;
    assert_eq!(hello["type"], "hello", "{hello}");
    assert_eq!(hello["role"], "publish", "{hello}");
    ws
}

/// The next JSON message of a producer socket.
async fn next(ws: &mut Ws) -> Value {
    loop {
        let msg = tokio::time::timeout(RECV_TIMEOUT, ws.next())
            .await
            .expect("timed out waiting for a message")
            .expect("connection ended")
            .expect("websocket error");
        match msg {
            Message::Text(t) => return serde_json::from_str(&t).expect("JSON"),
            Message::Close(c) => panic!("connection closed: {c:?}"),
            _ => continue,
        }
    }
}

async fn send(ws: &mut Ws, text: &str) {
    ws.send(Message::Text(text.into())).await.expect("send");
}

/// The next ack; its `seq`.
async fn ack(ws: &mut Ws) -> (u64, Value) {
    let v = next(ws).await;
    assert_eq!(v["type"], "ack", "expected an ack, got {v}");
    assert!(v["id"].as_str().unwrap().starts_with("ebutt-"), "{v}");
    (v["seq"].as_u64().unwrap(), v)
}

/// The next error; its code.
async fn error(ws: &mut Ws) -> String {
    let v = next(ws).await;
    assert_eq!(v["type"], "error", "expected an error, got {v}");
    assert!(!v["message"].as_str().unwrap().is_empty(), "{v}");
    v["code"].as_str().unwrap().to_string()
}

/// A listener's next caption event: a `line` or a non-empty `partial` (an empty partial, the
/// clear that a commit makes, and handovers are skipped).
async fn caption(l: &mut WsClient) -> (String, String) {
    loop {
        let v = l.recv_event().await;
        let ty = v["type"].as_str().unwrap().to_string();
        let text = v["text"].as_str().unwrap_or("").to_string();
        match ty.as_str() {
            "handover" => continue,
            "partial" if text.is_empty() => continue,
            "line" | "partial" => return (ty, text),
            _ => panic!("unexpected {v}"),
        }
    }
}

/// The lines of the channel's transcript (without the handovers between publishers).
async fn transcript(s: &TestServer, channel: &str) -> String {
    let url = s.http(&format!(
        "{}?format=txt",
        TestServer::channel_path(channel, "transcript")
    ));
    let txt = reqwest::get(url).await.unwrap().text().await.unwrap();
    txt.lines()
        .filter(|l| !l.starts_with("[handover:"))
        .map(|l| format!("{l}\n"))
        .collect()
}

fn last_seq(s: &TestServer, channel: &str) -> u64 {
    s.server().hub().channel(EVENT, channel).unwrap().last_seq()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn documents_become_partials_and_lines_in_order() {
    let s = TestServer::start().await;
    let mut l = s.listen("en", None).await;
    let mut p = producer(&publish_url(&s, "en")).await;
    let part = |t: &str| ("partial".to_string(), t.to_string());
    let line = |t: &str| ("line".to_string(), t.to_string());

    // A growing line is the line in progress.
    send(&mut p, &doc("BBC1", 1, &["<tt:span>Good</tt:span>"])).await;
    assert_eq!(caption(&mut l).await, part("Good"));
    send(
        &mut p,
        &doc(
            "BBC1",
            2,
            &["<tt:span>Good</tt:span> <tt:span>evening</tt:span>"],
        ),
    )
    .await;
    assert_eq!(caption(&mut l).await, part("Good evening"));

    // A new row below it completes it: committed, acked, then the new line in progress.
    send(
        &mut p,
        &doc(
            "BBC1",
            3,
            &["Good evening", "and <tt:span>welcome</tt:span>"],
        ),
    )
    .await;
    let (first, _) = ack(&mut p).await;
    assert_eq!(caption(&mut l).await, line("Good evening"));
    assert_eq!(caption(&mut l).await, part("and welcome"));

    // A new subtitle that does not continue the line in progress commits it first; entities
    // and a line break inside a paragraph.
    send(
        &mut p,
        &doc("BBC1", 4, &["Tom &amp; Jerry<tt:br/>on &lt;stage&gt;"]),
    )
    .await;
    let (second, _) = ack(&mut p).await;
    let (third, _) = ack(&mut p).await;
    assert_eq!((second, third), (first + 1, first + 2));
    assert_eq!(caption(&mut l).await, line("and welcome"));
    assert_eq!(caption(&mut l).await, line("Tom & Jerry"));
    assert_eq!(caption(&mut l).await, part("on <stage>"));

    // A clear (no text) commits the line in progress.
    send(&mut p, &doc("BBC1", 5, &[])).await;
    assert_eq!(ack(&mut p).await.0, first + 3);
    assert_eq!(caption(&mut l).await, line("on <stage>"));

    assert_eq!(
        transcript(&s, "en").await,
        "Good evening\nand welcome\nTom & Jerry\non <stage>\n"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chinese_text_arrives_exactly() {
    let s = TestServer::start().await;
    let mut l = s.listen("zh", None).await;
    let mut p = producer(&publish_url(&s, "zh")).await;
    send(
        &mut p,
        &doc("zh-live", 1, &["女士们，先生们，", "早上好。"]),
    )
    .await;
    ack(&mut p).await;
    assert_eq!(
        caption(&mut l).await,
        ("line".into(), "女士们，先生们，".into())
    );
    assert_eq!(caption(&mut l).await, ("partial".into(), "早上好。".into()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_or_wrong_token_or_channel_is_refused_before_the_upgrade() {
    let s = TestServer::start().await;
    let path = TestServer::channel_path("en", "ebu-tt/publish");
    assert_eq!(refused_handshake(&s.ws(&path), None).await, 401);
    assert_eq!(
        refused_handshake(&s.ws(&format!("{path}?token=wrong-token")), None).await,
        401
    );
    // Another channel's token does not open this one.
    assert_eq!(
        refused_handshake(&s.ws(&path), Some(&token("zh"))).await,
        401
    );
    let missing = format!("/v1/events/{EVENT}/channels/nope/ebu-tt/publish");
    assert_eq!(
        refused_handshake(&s.ws(&missing), Some(&token("en"))).await,
        404
    );
    // The toolkit's URL shape is guarded the same way.
    assert_eq!(
        refused_handshake(
            &s.ws(&format!("/Seq1/publish?event={EVENT}&channel=en")),
            None
        )
        .await,
        401
    );
    assert_eq!(
        refused_handshake(&s.ws(&format!("/Seq1/publish?token={}", token("en"))), None).await,
        404
    );
    // The bearer header works like ?token=.
    let url = s.ws(&path);
    let mut req = tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(
        url.as_str(),
    )
    .unwrap();
    req.headers_mut().insert(
        "authorization",
        format!("Bearer {}", token("en")).parse().unwrap(),
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(req)
        .await
        .expect("connect");
    assert_eq!(next(&mut ws).await["type"], "hello");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_and_out_of_order_documents_get_errors_and_nothing_is_stored() {
    let s = TestServer::start_with(|c| c.limits.max_caption_chars = 40).await;
    let mut p = producer(&publish_url(&s, "en")).await;
    let before = last_seq(&s, "en");

    let long = "x".repeat(41);
    let cases = [
        ("this is not XML".to_string(), "bad_xml"),
        (
            "{\"type\":\"final\",\"text\":\"json\"}".to_string(),
            "bad_xml",
        ),
        (doc("S", 1, &["unclosed <tt:span>span</tt:p>"]), "bad_xml"),
        (doc("S", 1, &["&nbsp;unknown entity"]), "bad_xml"),
        (
            "<html><body><p>Not TTML</p></body></html>".to_string(),
            "bad_document",
        ),
        (
            doc("S", 1, &["x"]).replace(r#" ebuttp:sequenceNumber="1""#, ""),
            "bad_document",
        ),
        (
            doc("S", 1, &["x"]).replace(
                r#"ebuttp:sequenceNumber="1""#,
                r#"ebuttp:sequenceNumber="one""#,
            ),
            "bad_document",
        ),
        (doc("S", 1, &["short", &long]), "text_too_long"),
    ];
    for (bad, code) in &cases {
        send(&mut p, bad).await;
        assert_eq!(&error(&mut p).await, code, "{bad}");
    }
    // A binary frame that is not UTF-8.
    p.send(Message::Binary(vec![0xff, 0xfe, 0x00].into()))
        .await
        .unwrap();
    assert_eq!(error(&mut p).await, "bad_xml");
    assert_eq!(last_seq(&s, "en"), before, "nothing was stored");

    // The connection is still open and a good document works (also as a binary frame).
    p.send(Message::Binary(
        doc("S", 5, &["One", "Two"]).into_bytes().into(),
    ))
    .await
    .unwrap();
    let (one, _) = ack(&mut p).await;
    // An older sequence number (a resent window of documents) is refused, whatever it
    // carries; 1 would start the sequence over.
    send(&mut p, &doc("S", 4, &["Stale", "Stale too"])).await;
    assert_eq!(error(&mut p).await, "seq_out_of_order");
    send(&mut p, &doc("S", 2, &[])).await;
    assert_eq!(error(&mut p).await, "seq_out_of_order");
    assert_eq!(last_seq(&s, "en"), one);
    // Another sequence on the same channel counts its own numbers, and replaces this one:
    // its line in progress is committed first.
    send(&mut p, &doc("Other", 2, &["Three", "Four"])).await;
    assert_eq!(ack(&mut p).await.0, one + 2);
    assert_eq!(transcript(&s, "en").await, "One\nTwo\nThree\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reconnect_that_resends_the_last_documents_does_not_duplicate_lines() {
    let s = TestServer::start().await;
    let url = publish_url(&s, "en");
    let mut p = producer(&url).await;
    send(&mut p, &doc("Live", 10, &["Alpha"])).await;
    send(&mut p, &doc("Live", 11, &["Alpha", "Bravo"])).await;
    let (alpha, _) = ack(&mut p).await;
    send(&mut p, &doc("Live", 12, &["Bravo", "Charlie"])).await;
    let (bravo, first) = ack(&mut p).await;
    assert_eq!(bravo, alpha + 1);
    drop(p);
    // The connection ended mid-line: its line in progress is committed.
    poll_until("the line in progress to be committed", || async {
        (transcript(&s, "en").await == "Alpha\nBravo\nCharlie\n").then_some(())
    })
    .await;

    // The producer reconnects and sends its last documents again.
    let mut p = producer(&url).await;
    send(&mut p, &doc("Live", 11, &["Alpha", "Bravo"])).await;
    assert_eq!(error(&mut p).await, "seq_out_of_order");
    send(&mut p, &doc("Live", 12, &["Bravo", "Charlie"])).await;
    let (again, v) = ack(&mut p).await;
    assert_eq!(again, bravo, "the resent line keeps its seq");
    assert_eq!(v["duplicate"], true, "{v}");
    assert_eq!(v["id"], first["id"]);

    // Then goes on: Charlie, still on screen, is not committed again.
    send(&mut p, &doc("Live", 13, &["Charlie", "Delta"])).await;
    send(&mut p, &doc("Live", 14, &[])).await;
    let (charlie, _) = ack(&mut p).await;
    assert_eq!(
        transcript(&s, "en").await,
        "Alpha\nBravo\nCharlie\nDelta\n",
        "nothing stored twice"
    );

    // A producer that restarts its sequence at 1 starts over; an earlier line's text is
    // stored again, not taken for a duplicate.
    send(&mut p, &doc("Live", 1, &["Alpha", "Delta"])).await;
    let (restart, v) = ack(&mut p).await;
    assert_eq!(restart, charlie + 1);
    assert!(v.get("duplicate").is_none(), "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_toolkit_url_shape_and_the_booth_rules() {
    let s = TestServer::start().await;
    let mut l = s.listen("en", None).await;
    // An interpreter in the booth console is on air: the producer is on standby.
    let mut booth = s.publish_as("en", "Anna").await;
    let url = s.ws(&format!(
        "/TestSequence1/publish?event={EVENT}&channel=en&token={}",
        token("en")
    ));
    // On this URL babelcast sends the producer nothing (EBU Tech 3370 carriage): no hello,
    // no acks, and the refusal below is only logged.
    let (mut p, _) = tokio_tungstenite::connect_async(&url)
        .await
        .expect("connect");
    send(
        &mut p,
        &doc("TestSequence1", 1, &["It only took me six days."]),
    )
    .await;
    // Once the interpreter leaves, the producer speaks.
    booth.ws.close(None).await.unwrap();
    drop(booth);
    poll_until("the interpreter to leave", || async {
        (!s.server()
            .hub()
            .channel(EVENT, "en")
            .unwrap()
            .booth
            .any_on_air())
        .then_some(())
    })
    .await;
    // The line refused meanwhile is shown with the next document, even a repeat of it.
    send(
        &mut p,
        &doc("TestSequence1", 2, &["It only took me six days."]),
    )
    .await;
    assert_eq!(
        caption(&mut l).await,
        ("partial".into(), "It only took me six days.".into())
    );
    send(&mut p, &doc("TestSequence1", 3, &[])).await;
    assert_eq!(
        caption(&mut l).await,
        ("line".into(), "It only took me six days.".into())
    );
    // Closing: the server's Close frame is the only thing the producer ever received.
    p.send(Message::Close(None)).await.unwrap();
    while let Some(msg) = p.next().await {
        match msg {
            Ok(Message::Close(_)) | Err(_) => break,
            Ok(Message::Ping(_) | Message::Pong(_)) => continue,
            Ok(other) => panic!("the producer was sent {other:?}"),
        }
    }
}

/// A sequence survives `kill -9`: the producer's resend of its last document after the
/// restart is acked as duplicates (nothing stored twice) and its next document goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resend_after_kill_9_does_not_duplicate_lines() {
    let tmp = tempfile::tempdir().unwrap();
    let url = |addr: std::net::SocketAddr| {
        format!(
            "ws://{addr}{}?token={}",
            TestServer::channel_path("en", "ebu-tt/publish"),
            token("en")
        )
    };
    let mut bin = BinServer::start(tmp.path()).await;
    let mut p = producer(&url(bin.addr)).await;
    send(&mut p, &doc("live-1", 1, &["First row.<tt:br/>Second"])).await;
    let (seq1, _) = ack(&mut p).await;
    let last = doc("live-1", 2, &["Second row.<tt:br/>Third"]);
    send(&mut p, &last).await;
    let (seq2, second) = ack(&mut p).await;
    assert_eq!((seq1, seq2), (1, 2));
    bin.kill9().await;

    let bin = BinServer::start(tmp.path()).await;
    let mut p = producer(&url(bin.addr)).await;
    // The producer did not know what arrived and sends its last document again.
    send(&mut p, &last).await;
    let (seq, again) = ack(&mut p).await;
    assert_eq!(seq, 2, "acked with the seq it was stored under");
    assert_eq!(again["duplicate"], true, "{again}");
    assert_eq!(again["id"], second["id"]);
    send(&mut p, &doc("live-1", 3, &["Third row.", "Fourth"])).await;
    let (seq, _) = ack(&mut p).await;
    assert_eq!(seq, 3);

    let db = open_db(tmp.path());
    let lines: Vec<String> = db
        .prepare("SELECT text FROM events WHERE channel = 'en' AND kind = 'line' ORDER BY seq")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(lines, ["First row.", "Second row.", "Third row."]);
}
