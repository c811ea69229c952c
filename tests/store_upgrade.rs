//! Issue 15: a store written before organisers' tables existed opens, keeps its transcripts
//! and gains the new tables (definitions, credentials, admin tokens, audit, seq floors).

mod common;

use common::admin::Admin;
use common::*;

/// The tables of a store from before issue 15 (as released).
const OLD_SCHEMA: &str = "
CREATE TABLE events (
    event TEXT NOT NULL, channel TEXT NOT NULL, seq INTEGER NOT NULL, kind TEXT NOT NULL,
    ts INTEGER NOT NULL, text TEXT NOT NULL, lang TEXT NOT NULL DEFAULT '', of_seq INTEGER,
    client_id TEXT, expected_lang TEXT, author TEXT, PRIMARY KEY (event, channel, seq)
) WITHOUT ROWID;
CREATE UNIQUE INDEX events_client_id ON events (event, channel, client_id)
    WHERE client_id IS NOT NULL;
CREATE TABLE format_state (
    event TEXT NOT NULL, channel TEXT NOT NULL, format TEXT NOT NULL, last_seq INTEGER NOT NULL,
    epoch INTEGER NOT NULL, line TEXT NOT NULL, reply TEXT NOT NULL,
    PRIMARY KEY (event, channel, format)
) WITHOUT ROWID;
INSERT INTO events (event, channel, seq, kind, ts, text, lang)
    VALUES ('conf', 'en', 1, 'line', 1700000000000, 'From before the upgrade.', 'en');
";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_old_store_opens_with_its_lines_and_the_new_tables() {
    let tmp = tempfile::tempdir().unwrap();
    {
        let db = rusqlite::Connection::open(tmp.path().join("transcripts.db")).unwrap();
        db.pragma_update(None, "journal_mode", "WAL").unwrap();
        db.execute_batch(OLD_SCHEMA).unwrap();
    }
    let s = TestServer::start_in(tmp.path(), |_| {}).await;
    let mut l = s.listen("en", None).await;
    assert_eq!(l.hello["seq"], 1);
    let line = l.recv_event().await;
    assert_eq!(line["text"], "From before the upgrade.");
    let admin = Admin::new(&s.http(""));
    admin
        .create_event("summit", &[("floor", "auto", None)])
        .await;
    admin.issue("summit", "floor", "Captioner").await;
    let db = s.db();
    for table in [
        "event_defs",
        "channel_defs",
        "credentials",
        "admin_tokens",
        "audit",
        "seq_floor",
    ] {
        let n: i64 = db
            .query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0))
            .unwrap_or_else(|e| panic!("{table}: {e}"));
        assert!(n >= 0);
    }
    let audited: i64 = db
        .query_row("SELECT COUNT(*) FROM audit", [], |r| r.get(0))
        .unwrap();
    assert_eq!(audited, 2);
}
