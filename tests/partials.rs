//! Partial coalescing: partials go through one slot per channel, so a listener that cannot
//! keep up only ever gets the newest one, never a backlog of stale ones.
mod common;
use babelcast::protocol::{ClientMsg, ErrorCode, ServerMsg};
use common::*;

fn partial_msg(text: impl Into<String>) -> ClientMsg {
    ClientMsg::Partial { text: text.into() }
}

/// Sends a malformed frame and waits for its refusal: the server answers in order, so every
/// message sent before has been applied once it is back.
async fn barrier(p: &mut WsClient) {
    p.send_text("{not json").await;
    match p.next_msg().await {
        ServerMsg::Error { code, .. } => assert_eq!(code, ErrorCode::BadJson),
        other => panic!("expected the refusal, got {other:?}"),
    }
}

const PARTIALS: usize = 1000;

/// Characters per partial: 1,000 of them are ~12 MB, several times what loopback socket
/// buffers absorb, so the server cannot simply write them all while the listener sleeps.
const PARTIAL_CHARS: usize = 12_000;

fn partial(n: usize) -> String {
    format!("p{n:04} {}", "word ".repeat((PARTIAL_CHARS - 6) / 5))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listener_that_does_not_read_gets_few_partials_and_the_newest_last() {
    let s = TestServer::start_with(|c| {
        c.limits.max_caption_chars = PARTIAL_CHARS;
        // A burst far beyond any typist's rate, on purpose.
        c.limits.publisher_rate = 0.0;
    })
    .await;
    let mut slow = s.listen_slow("en", None).await;
    let mut p = s.publish("en").await;
    for n in 1..=PARTIALS {
        p.send(partial_msg(partial(n))).await;
    }
    barrier(&mut p).await;

    // Now the listener reads: it gets a few partials, in order, ending with the newest.
    let mut got = Vec::new();
    while got.last() != Some(&PARTIALS) {
        let ServerMsg::Partial { text } = slow.next_msg().await else {
            panic!("only partials are sent");
        };
        let n: usize = text[1..5].parse().unwrap();
        assert_eq!(text, partial(n), "partial text must arrive exactly as sent");
        if let Some(&prev) = got.last() {
            assert!(n > prev, "partial {n} arrived after {prev}");
        }
        got.push(n);
    }
    eprintln!("slow listener got {} of {PARTIALS} partials", got.len());
    assert!(
        got.len() < PARTIALS / 2,
        "partials were not coalesced: the slow listener got {} of {PARTIALS}",
        got.len()
    );
    // The newest partial is the last one: a line now comes next, not an older partial.
    assert!(matches!(
        p.publish_final("The finished sentence.", None).await,
        ServerMsg::Ack { .. }
    ));
    // A repeat of the newest partial is harmless (a partial replaces the previous one, and the
    // direct fan-out may hand a socket back to its session mid-partial); an older one is not.
    let newest = partial(PARTIALS);
    let next = loop {
        match slow.next_msg().await {
            ServerMsg::Partial { text } if text == newest => continue,
            other => break other,
        }
    };
    assert!(matches!(next, ServerMsg::Line { .. }), "{next:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_joining_listener_gets_the_current_partial_after_history() {
    let s = TestServer::start().await;
    let mut p = s.publish("en").await;
    p.publish_final("The first sentence.", None).await;
    p.send(partial_msg("And the sec")).await;
    p.send(partial_msg("And the second")).await;
    barrier(&mut p).await;
    let mut l = s.listen("en", None).await;
    assert_eq!(l.next_line().await, (1, "The first sentence.".into()));
    assert_eq!(
        l.next_msg().await,
        ServerMsg::Partial {
            text: "And the second".into()
        }
    );
    // The final completing it clears the partial after the line appears.
    p.publish_final("And the second sentence.", None).await;
    assert_eq!(l.next_line().await.1, "And the second sentence.");
    assert_eq!(l.next_msg().await, ServerMsg::Partial { text: "".into() });
}

/// Listeners that join while partials change as fast as a publisher can send them each end
/// with the newest partial: none is left showing an older one because it joined the channel's
/// fan-out in the instant a partial changed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listeners_joining_during_a_partial_burst_end_with_the_newest() {
    const JOINERS: usize = 200;
    const BURST: usize = 400;
    let s = TestServer::start_with(|c| c.limits.publisher_rate = 0.0).await;
    let url = s.ws(&TestServer::channel_path("en", "listen"));
    let mut p = s.publish("en").await;
    let publisher = tokio::spawn(async move {
        for n in 1..=BURST {
            p.send(partial_msg(format!("partial {n}"))).await;
            if n % 8 == 0 {
                tokio::task::yield_now().await;
            }
        }
        p
    });
    let mut joins = tokio::task::JoinSet::new();
    for _ in 0..JOINERS {
        let url = url.clone();
        joins.spawn(async move { WsClient::connect(&url, None).await });
    }
    let mut listeners = Vec::new();
    while let Some(l) = joins.join_next().await {
        listeners.push(l.expect("connect"));
    }
    let mut p = publisher.await.expect("publisher");
    barrier(&mut p).await;

    let newest = format!("partial {BURST}");
    let mut readers = tokio::task::JoinSet::new();
    for mut l in listeners {
        let newest = newest.clone();
        readers.spawn(async move {
            loop {
                if let ServerMsg::Partial { text } = l.next_msg().await {
                    if text == newest {
                        return;
                    }
                }
            }
        });
    }
    while let Some(r) = readers.join_next().await {
        r.expect("every listener ends with the newest partial");
    }
}
