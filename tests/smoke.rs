//! The shortest path through the relay: publish a final, a listener receives it.
mod common;
use common::*;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_final_reaches_a_listener_and_is_acked() {
    let s = TestServer::start().await;
    let mut l = s.listen("en", None).await;
    let mut p = s.publish("en").await;
    p.send_json(json!({"type": "partial", "text": "Hello wor"}))
        .await;
    let partial = l.recv_type("partial").await;
    assert_eq!(partial["text"], "Hello wor");
    let ack = p
        .final_line("Hello world, and welcome to the conference.", Some("c1"))
        .await;
    assert_eq!(ack["type"], "ack");
    assert_eq!(ack["seq"], 1);
    assert_eq!(ack["id"], "c1");
    let line = l.recv_type("line").await;
    assert_eq!(line["seq"], 1);
    assert_eq!(line["text"], "Hello world, and welcome to the conference.");
    assert_eq!(line["lang"], "en");
}
