//! The shortest path through the relay: publish a final, a listener receives it.
mod common;
use babelcast::protocol::{ClientMsg, ServerMsg};
use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_final_reaches_a_listener_and_is_acked() {
    let s = TestServer::start().await;
    let mut l = s.listen("en", None).await;
    let mut p = s.publish("en").await;
    p.send(ClientMsg::Partial {
        text: "Hello wor".into(),
    })
    .await;
    assert_eq!(
        l.next_msg().await,
        ServerMsg::Partial {
            text: "Hello wor".into()
        }
    );
    let ack = p
        .publish_final("Hello world, and welcome to the conference.", Some("c1"))
        .await;
    assert_eq!(
        ack,
        ServerMsg::Ack {
            seq: 1,
            id: Some("c1".into()),
            duplicate: false
        }
    );
    let ServerMsg::Line {
        seq, text, lang, ..
    } = l.next_msg().await
    else {
        panic!("expected the line");
    };
    assert_eq!(seq, 1);
    assert_eq!(text, "Hello world, and welcome to the conference.");
    assert_eq!(lang, "en");
}
