//! Fan-out: 500 listeners on one channel each receive every committed line exactly once, in
//! seq order, with partials interleaved; and 2,500, which the channel's fan-out splits into
//! shards written by several worker threads at once.
mod common;
use babelcast::protocol::{ClientMsg, ServerMsg};
use common::*;

const FINALS: u64 = 50;

fn text(n: u64) -> String {
    format!("Line number {n} of the fan-out test, with some words to carry.")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_listener_gets_every_line_once_in_order() {
    fan_out(500).await;
}

/// More listeners than one fan-out shard takes (`SHARD_MIN`, 2,048): two worker threads write
/// to halves of the channel at once, and every socket still gets every frame once, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sharded_fan_out_keeps_every_listener_in_order() {
    fan_out(2_500).await;
}

async fn fan_out(n: usize) {
    let s = TestServer::start().await;
    let url = s.ws(&TestServer::channel_path("en", "listen"));

    // Connect everyone before publishing (each connect reads hello + status).
    let mut connects = tokio::task::JoinSet::new();
    for _ in 0..n {
        let url = url.clone();
        connects.spawn(async move { WsClient::connect(&url, None).await });
    }
    let mut listeners = Vec::with_capacity(n);
    while let Some(c) = connects.join_next().await {
        let c = c.expect("connect task");
        assert!(matches!(c.hello_msg(), ServerMsg::Hello { seq: 0, .. }));
        listeners.push(c);
    }
    let channel = s.server().hub().channel(EVENT, "en").expect("channel");
    assert_eq!(channel.listeners(), n as u64);

    // Each listener reads until the last line, recording the lines it saw.
    let mut readers = tokio::task::JoinSet::new();
    for mut l in listeners {
        readers.spawn(async move {
            let mut seqs = Vec::new();
            let mut partials = 0usize;
            loop {
                match l.next_msg().await {
                    ServerMsg::Line { seq, text: t, .. } => {
                        assert_eq!(t, text(seq), "text of line {seq}");
                        seqs.push(seq);
                        if seq == FINALS {
                            return (seqs, partials);
                        }
                    }
                    ServerMsg::Partial { .. } => partials += 1,
                    other => panic!("unexpected message {other:?}"),
                }
            }
        });
    }

    let mut p = s.publish("en").await;
    for n in 1..=FINALS {
        p.send(ClientMsg::Partial {
            text: format!("Line number {n}"),
        })
        .await;
        p.send(ClientMsg::Final {
            text: text(n),
            id: Some(format!("f{n}")),
        })
        .await;
    }
    for n in 1..=FINALS {
        assert_eq!(
            p.next_msg().await,
            ServerMsg::Ack {
                seq: n,
                id: Some(format!("f{n}").into()),
                duplicate: false
            }
        );
    }

    let expected: Vec<u64> = (1..=FINALS).collect();
    let mut done = 0;
    while let Some(r) = readers.join_next().await {
        let (seqs, _partials) = r.expect("listener task");
        assert_eq!(
            seqs, expected,
            "a listener missed, repeated or reordered lines"
        );
        done += 1;
    }
    assert_eq!(done, n);
}
