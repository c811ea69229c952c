//! Partial coalescing: partials go through one slot per channel, so a listener that cannot
//! keep up only ever gets the newest one, never a backlog of stale ones.
mod common;
use common::*;
use serde_json::json;

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
        p.send_json(json!({"type": "partial", "text": partial(n)}))
            .await;
    }
    // A refused message is answered in order: once it is, every partial has been applied.
    p.send_text("{not json").await;
    assert_eq!(p.recv_event().await["code"], "bad_json");

    // Now the listener reads: it gets a few partials, in order, ending with the newest.
    let mut got = Vec::new();
    while got.last() != Some(&PARTIALS) {
        let v = slow.recv_event().await;
        assert_eq!(v["type"], "partial", "{v}");
        let text = v["text"].as_str().unwrap();
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
    assert_eq!(
        p.final_line("The finished sentence.", None).await["type"],
        "ack"
    );
    // A repeat of the newest partial is harmless (a partial replaces the previous one, and the
    // direct fan-out may hand a socket back to its session mid-partial); an older one is not.
    let newest = partial(PARTIALS);
    let next = loop {
        let v = slow.recv_event().await;
        if v["type"] == "partial" && v["text"] == newest.as_str() {
            continue;
        }
        break v;
    };
    assert_eq!(next["type"], "line", "{next}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_joining_listener_gets_the_current_partial_after_history() {
    let s = TestServer::start().await;
    let mut p = s.publish("en").await;
    p.final_line("The first sentence.", None).await;
    p.send_json(json!({"type": "partial", "text": "And the sec"}))
        .await;
    p.send_json(json!({"type": "partial", "text": "And the second"}))
        .await;
    // Barrier: once the refusal is back, both partials were applied.
    p.send_text("[").await;
    assert_eq!(p.recv_event().await["code"], "bad_json");
    let mut l = s.listen("en", None).await;
    assert_eq!(l.recv_event().await["text"], "The first sentence.");
    let v = l.recv_event().await;
    assert_eq!(
        (v["type"].as_str(), v["text"].as_str()),
        (Some("partial"), Some("And the second"))
    );
    // The final completing it clears the partial after the line appears.
    p.final_line("And the second sentence.", None).await;
    assert_eq!(l.recv_event().await["type"], "line");
    let v = l.recv_event().await;
    assert_eq!(
        (v["type"].as_str(), v["text"].as_str()),
        (Some("partial"), Some(""))
    );
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
            p.send_json(json!({"type": "partial", "text": format!("partial {n}")}))
                .await;
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
    // Answered in order: every partial has been applied once this comes back.
    p.send_text("{not json").await;
    assert_eq!(p.recv_event().await["code"], "bad_json");

    let newest = format!("partial {BURST}");
    let mut readers = tokio::task::JoinSet::new();
    for mut l in listeners {
        let newest = newest.clone();
        readers.spawn(async move {
            loop {
                let v = l.recv_event().await;
                if v["type"] == "partial" && v["text"] == newest.as_str() {
                    return;
                }
            }
        });
    }
    while let Some(r) = readers.join_next().await {
        r.expect("every listener ends with the newest partial");
    }
}
