//! Secrets never leak: publish tokens, the admin token and access codes (right or wrong) appear
//! in no log line (at any level), no metric and no error message. This file holds one test so
//! that it alone owns the process-wide log capture.
mod common;
use std::io::Write;
use std::sync::{Arc, Mutex};

use common::raw;
use common::*;

const CODE: &str = "venue-code-5150";
const WRONG: &str = "guessed-secret-7781";

/// Everything logged, as text.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_reaches_logs_metrics_or_errors() {
    let capture = Capture::default();
    let writer = capture.clone();
    // Everything at every level, from every crate, except the test's own clients (which
    // log the requests they send).
    tracing_subscriber::fmt()
        .with_env_filter(
            "trace,tungstenite::handshake::client=off,reqwest=off,hyper_util::client=off",
        )
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .init();

    let s = TestServer::start_with(|c| c.events[0].access_code = Some(CODE.into())).await;
    let en = token("en");
    let publish = s.ws(&TestServer::channel_path("en", "publish"));
    let listen = s.ws(&TestServer::channel_path("en", "listen"));
    let captions = s.http(&TestServer::channel_path("en", "captions"));
    let mut bodies = Vec::new();

    // A publisher with its token in the query string (as browsers must), and one refused.
    let mut p = WsClient::connect(&format!("{publish}?token={en}&name=Ana"), None).await;
    assert_eq!(p.final_line("Good morning.", None).await["seq"], 1);
    let (_, body) = raw::refusal(raw::ws(s.addr, &format!("{publish}?token={WRONG}"), &[]).await);
    bodies.push(body.to_string());
    let (_, body) = raw::refusal(
        raw::ws(
            s.addr,
            &publish,
            &[("authorization", &format!("Bearer {WRONG}"))],
        )
        .await,
    );
    bodies.push(body.to_string());
    // Listeners with the right and a wrong access code.
    let mut l = WsClient::connect(&format!("{listen}?code={CODE}&since=0"), None).await;
    assert_eq!(l.recv_type("line").await["seq"], 1);
    let (_, body) = raw::refusal(raw::ws(s.addr, &format!("{listen}?code={WRONG}"), &[]).await);
    bodies.push(body.to_string());
    // HTTP publishing, right and wrong, and a refused message.
    let client = reqwest::Client::new();
    for t in [en.as_str(), WRONG] {
        let r = client
            .post(format!("{captions}?token={t}"))
            .body("A line over HTTP.")
            .send()
            .await
            .unwrap();
        bodies.push(r.text().await.unwrap());
    }
    let r = client
        .post(&captions)
        .bearer_auth(&en)
        .header("content-type", "application/json")
        .body(format!(
            "{{\"type\":\"final\",\"text\":\"{WRONG}\",\"bogus\":"
        ))
        .send()
        .await
        .unwrap();
    bodies.push(r.text().await.unwrap());
    // The admin API, right and wrong.
    for t in [ADMIN_TOKEN, WRONG] {
        let r = client
            .get(s.http("/v1/admin/channels"))
            .bearer_auth(t)
            .send()
            .await
            .unwrap();
        bodies.push(r.text().await.unwrap());
    }
    let transcript = TestServer::channel_path("en", "transcript");
    bodies.push(
        raw::get(s.addr, &format!("{transcript}?code={WRONG}"))
            .await
            .body,
    );
    let metrics = raw::get(s.addr, "/metrics").await.body;
    p.ws.close(None).await.ok();
    l.ws.close(None).await.ok();
    let mut s = s;
    s.stop().await;

    let logs = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
    assert!(logs.contains("publisher connected"), "logging was captured");
    for secret in [en.as_str(), ADMIN_TOKEN, CODE, WRONG] {
        assert!(!logs.contains(secret), "{secret} logged:\n{logs}");
        assert!(!metrics.contains(secret), "{secret} in /metrics");
        for b in &bodies {
            assert!(!b.contains(secret), "{secret} in an error: {b}");
        }
    }
}
