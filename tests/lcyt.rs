//! The real `lcyt` package (npm: a YouTube Live caption sender) run against babelcast's YouTube
//! ingest: its clock sync (an empty post under seq 0), one caption, then a batch, with `seq`
//! from 0; every caption in the transcript once, in order, and no partial left.
//!
//! `.ci/run` installs it (`npm install --prefix target/real-senders lcyt@2.5.0`, Node.js from
//! the machine). In CI a missing package or `node` fails the test; elsewhere it is skipped
//! with a notice.
mod common;
use common::*;
use std::path::PathBuf;

/// The installed package, or `None` (skip) outside CI.
fn lcyt() -> Option<PathBuf> {
    let module =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/real-senders/node_modules/lcyt");
    let node = std::process::Command::new("node")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if node && module.join("package.json").is_file() {
        return Some(module);
    }
    let how = "npm install --prefix target/real-senders lcyt@2.5.0 (Node.js needed)";
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("the lcyt package is not installed; .ci/run installs it: {how}");
    }
    eprintln!("SKIPPED: lcyt is not installed ({how}); the real-sender test did not run");
    None
}

/// What the sender does, with lcyt's own API (fails on any answer but 200).
const SCRIPT: &str = r#"
const { YoutubeLiveCaptionSender } = require(process.env.LCYT);
(async () => {
  const sender = new YoutubeLiveCaptionSender({ ingestionUrl: process.env.INGEST_URL });
  sender.start();
  const sync = await sender.sync();
  if (sync.statusCode !== 200 || !sync.serverTimestamp) throw new Error('sync: ' + JSON.stringify(sync));
  const one = await sender.send('Hello from lcyt');
  const batch = await sender.sendBatch([{ text: 'One' }, { text: 'Two<br>rows' }]);
  for (const r of [one, batch]) {
    if (r.statusCode !== 200) throw new Error('status ' + r.statusCode + ': ' + r.response);
  }
  if (one.sequence !== 0 || batch.sequence !== 1) throw new Error('seqs ' + one.sequence + ' ' + batch.sequence);
  sender.end();
})().catch((e) => { console.error(e); process.exit(1); });
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lcyt_sender_s_captions_are_stored_once_in_order() {
    let Some(module) = lcyt() else {
        return;
    };
    let s = TestServer::start_with(|c| c.ingest.idle_commit_ms = 200).await;
    let mut l = s.listen("en", None).await;
    let url = s.http(&format!(
        "{}?token={}",
        TestServer::channel_path("en", "captions/youtube"),
        token("en")
    ));
    let out = tokio::process::Command::new("node")
        .arg("-e")
        .arg(SCRIPT)
        .env("LCYT", &module)
        .env("INGEST_URL", &url)
        .output()
        .await
        .expect("run node");
    assert!(
        out.status.success(),
        "lcyt failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let want = ["Hello from lcyt", "One", "Two\nrows"];
    let mut got = Vec::new();
    while got.len() < want.len() {
        let v = l.recv_event().await;
        match v["type"].as_str() {
            Some("line") => got.push(v["text"].as_str().unwrap().to_string()),
            Some("partial") => assert_eq!(v["text"], "", "YouTube captions have no partial"),
            _ => panic!("unexpected {v}"),
        }
    }
    assert_eq!(got, want);
    let lines: i64 = s
        .db()
        .query_row("SELECT COUNT(*) FROM events WHERE kind = 'line'", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(lines, 3, "each caption stored once");
}
