//! Issue 15: deleted transcripts leave the disk. After "delete transcripts" (and a restart),
//! the text of the deleted lines is in no file under `storage.dir`: not in the database, not
//! in its write-ahead log, not in the caption formats' saved lines in progress. Lines past
//! `storage.retention_days` go the same way. An audit entry stays; seqs are never reused.

mod common;

use std::path::Path;

use babelcast::protocol::{ClientMsg, ServerMsg};
use common::admin::{refused, Admin};
use common::*;
use serde_json::json;

/// Every file under `dir` (recursively) that holds `needle`, with its size.
fn files_holding(dir: &Path, needle: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).expect("read dir") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let bytes = std::fs::read(&path).unwrap_or_default();
            if bytes.windows(needle.len()).any(|w| w == needle.as_bytes()) {
                found.push(format!("{} ({} bytes)", path.display(), bytes.len()));
            }
        }
    }
    found
}

/// The files of the store (database, WAL, shared memory), for the failure message.
fn listing(dir: &Path) -> String {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            format!(
                "{} {}",
                e.file_name().to_string_lossy(),
                e.metadata().unwrap().len()
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleted_transcripts_are_gone_from_every_file() {
    let mut s = TestServer::start().await;
    let admin = Admin::new(&s.http(""));
    admin
        .create_event(
            "summit",
            &[("floor", "auto", None), ("en", "en", Some("floor"))],
        )
        .await;
    let floor = admin.issue("summit", "floor", "Captioner").await;
    let en = admin.issue("summit", "en", "Interpreter").await;
    // Lines over WebSocket, a correction, and a Zoom line in progress (saved as its stream's
    // state, not as a line).
    let mut p = WsClient::connect(
        &s.ws("/v1/events/summit/channels/floor/publish"),
        floor["token"].as_str(),
    )
    .await;
    let secret_lines = [
        "Quarterly-figures-Zephyrine-0193 were discussed.",
        "Codename Marmalade-Osprey-7741 is confidential.",
    ];
    let mut last = 0;
    for (i, text) in secret_lines.iter().enumerate() {
        let ack = p.publish_final(text, Some(&format!("l{i}"))).await;
        last = ack_seq(&ack);
    }
    p.send(ClientMsg::Edit {
        of: last,
        text: "Corrected-Kingfisher-5520 text.".into(),
    })
    .await;
    let ack = p.next_msg().await;
    assert!(matches!(ack, ServerMsg::Ack { .. }), "{ack:?}");
    let zoom = reqwest::Client::new()
        .post(s.http(&format!(
            "/v1/events/summit/channels/en/captions/zoom?seq=1&lang=en-US&token={}",
            en["token"].as_str().unwrap()
        )))
        .body("In-progress-Quokka-3387 words")
        .send()
        .await
        .unwrap();
    assert_eq!(zoom.status(), 200);
    let markers = [
        "Zephyrine-0193",
        "Marmalade-Osprey-7741",
        "Kingfisher-5520",
        "Quokka-3387",
    ];
    // Before: every one of them is on disk (the test can fail).
    for m in markers {
        assert!(
            !files_holding(&s.dir, m).is_empty(),
            "{m} was never written"
        );
    }

    // Refused while the event is live; then ended and deleted.
    refused(
        &admin.delete("/v1/admin/events/summit/transcripts").await,
        409,
        "bad_state",
    );
    assert_eq!(
        admin.post("/v1/admin/events/summit/end", json!({})).await.0,
        200
    );
    let (status, v) = admin.delete("/v1/admin/events/summit/transcripts").await;
    assert_eq!(status, 200, "{v}");
    assert!(v["deleted"].as_u64().unwrap() >= 3, "{v}");

    // At once: nothing in the database or its log, nothing served.
    for m in markers {
        assert_eq!(
            files_holding(&s.dir, m),
            Vec::<String>::new(),
            "{m}: {}",
            listing(&s.dir)
        );
    }
    let txt = reqwest::Client::new()
        .get(s.http("/v1/events/summit/channels/floor/transcript?format=txt"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(txt, "");
    let mut l = WsClient::connect(&s.ws("/v1/events/summit/channels/floor/listen"), None).await;
    assert_eq!(l.hello_seq(), last + 1, "the seq stays: {}", l.hello);
    drop(l.ws.close(None).await);
    drop(p);

    // After a restart too, and the audit entry stays (without the text).
    s.restart().await;
    for m in markers {
        assert_eq!(
            files_holding(&s.dir, m),
            Vec::<String>::new(),
            "{m}: {}",
            listing(&s.dir)
        );
    }
    let admin = Admin::new(&s.http(""));
    let (_, audit) = admin.get("/v1/admin/audit").await;
    let entry = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "transcripts.delete")
        .expect("the deletion is in the audit log")
        .clone();
    assert_eq!(entry["target"], "summit");
    assert_eq!(entry["actor"], "config");
    // A listener coming back with the seq it had sees a channel that kept its numbering.
    let l = WsClient::connect(&s.ws("/v1/events/summit/channels/floor/listen"), None).await;
    assert_eq!(l.hello_seq(), last + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lines_past_the_retention_period_are_deleted() {
    let mut s = TestServer::start().await;
    let mut p = s.publish("en").await;
    let old = p
        .publish_final("Old-Pangolin-4410 remark.", Some("o1"))
        .await;
    let old_seq = ack_seq(&old);
    let fresh = ack_seq(
        &p.publish_final("Fresh-Heron-8821 remark.", Some("f1"))
            .await,
    );
    drop(p);
    s.stop().await;
    // The first line is three days old.
    {
        let db = rusqlite::Connection::open(s.dir.join("transcripts.db")).unwrap();
        let three_days = 3 * 86_400_000;
        db.execute(
            "UPDATE events SET ts = ts - ?1 WHERE event = ?2 AND channel = 'en' AND seq <= ?3",
            rusqlite::params![three_days, EVENT, old_seq],
        )
        .unwrap();
    }
    s.restart_with(|c| c.storage.retention_days = 2).await;
    let admin = Admin::new(&s.http(""));
    let entry = poll_until("the retention run", || {
        let admin = admin.clone();
        async move {
            let (_, audit) = admin.get("/v1/admin/audit").await;
            audit["entries"]
                .as_array()
                .unwrap()
                .iter()
                .find(|e| e["action"] == "transcripts.expire")
                .cloned()
        }
    })
    .await;
    assert_eq!(entry["actor"], "retention");
    assert_eq!(
        files_holding(&s.dir, "Old-Pangolin-4410"),
        Vec::<String>::new()
    );
    assert!(!files_holding(&s.dir, "Fresh-Heron-8821").is_empty());
    // Numbering goes on after the kept line.
    let mut p = s.publish("en").await;
    assert_eq!(p.publish_final("Next.", None).await, acked(fresh + 1));
}
