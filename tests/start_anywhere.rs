//! Issue 15, item 7: `babelcast serve` runs anywhere. With no config file (after `cargo
//! install`, in a container, under systemd) it runs the built-in demo event and says so; the
//! banner names the config, the store, the dashboard and the booth, and prints a secret only
//! when it was made at start. A missing named config fails saying its cause once.

mod common;

use std::process::Stdio;

use common::*;
use tokio::io::{AsyncBufReadExt, BufReader};

/// Runs `babelcast serve ARGS` in `cwd` and returns its banner (up to the admin token line)
/// and the child (killed on drop).
async fn banner(
    cwd: &std::path::Path,
    args: &[&str],
    env: &[(&str, &str)],
) -> (String, tokio::process::Child) {
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_babelcast"))
        .arg("serve")
        .args(args)
        .current_dir(cwd)
        .env_remove("BABELCAST_ADMIN_TOKEN")
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn babelcast");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut text = Vec::new();
    tokio::time::timeout(RECV_TIMEOUT, async {
        while let Some(line) = lines.next_line().await.expect("read") {
            let done = line.contains("admin token");
            text.push(line);
            if done {
                break;
            }
        }
    })
    .await
    .expect("the banner");
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    (text.join("\n"), child)
}

fn base_of(banner: &str) -> String {
    banner
        .lines()
        .next()
        .and_then(|l| l.strip_prefix("babelcast listening on "))
        .expect("first line")
        .trim()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_no_config_file_it_runs_the_demo_event() {
    let tmp = tempfile::tempdir().unwrap();
    let (text, _child) = banner(tmp.path(), &["--bind", "127.0.0.1:0", "--demo"], &[]).await;
    let base = base_of(&text);
    assert!(
        text.contains("no config file (config/babelcast.toml not found): the built-in default"),
        "{text}"
    );
    let store = std::fs::canonicalize(tmp.path())
        .unwrap()
        .join("data/transcripts.db");
    assert!(
        text.contains(&format!("store: {}", store.display())),
        "{text}"
    );
    assert!(text.contains(&format!("dashboard: {base}/admin")), "{text}");
    assert!(
        text.contains(&format!("booth: {base}/booth/demo")),
        "{text}"
    );
    // Made at start, so printed once.
    assert!(text.contains("admin token (made at start"), "{text}");
    assert!(text.contains("/channels/floor/publish?token="), "{text}");
    // The demo event serves, and --demo speaks into it.
    let events: serde_json::Value = reqwest::get(format!("{base}/v1/events"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(events["events"][0]["id"], "demo");
    assert_eq!(events["events"][0]["channels"].as_array().unwrap().len(), 7);
    let mut floor = WsClient::connect(
        &format!(
            "{}/v1/events/demo/channels/floor/listen",
            base.replacen("http", "ws", 1)
        ),
        None,
    )
    .await;
    // Partials grow word by word, then the line comes.
    while floor.recv().await["type"] != "line" {}
    assert!(store.exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configured_secrets_are_never_printed() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("babelcast.toml");
    std::fs::write(&file, config_toml(tmp.path())).unwrap();
    let (text, _child) = banner(
        tmp.path(),
        &["--bind", "127.0.0.1:0", "--config", file.to_str().unwrap()],
        &[],
    )
    .await;
    assert!(
        text.contains(&format!("config: {}", file.display())),
        "{text}"
    );
    for secret in [ADMIN_TOKEN.to_string(), token("en"), token("floor")] {
        assert!(!text.contains(&secret), "{secret} printed:\n{text}");
    }
    assert!(text.contains("admin token: set in the config"), "{text}");
    assert!(text.contains("(token from the config file)"), "{text}");
    // An admin token from the environment is not printed either.
    let (text, _child) = banner(
        tmp.path(),
        &["--bind", "127.0.0.1:0"],
        &[
            ("BABELCAST_ADMIN_TOKEN", "env-admin-secret-42"),
            ("BABELCAST_DATA", "elsewhere"),
        ],
    )
    .await;
    assert!(!text.contains("env-admin-secret-42"), "{text}");
}

#[test]
fn a_missing_config_file_says_its_cause_once() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_babelcast"))
        .args(["serve", "--config", "/nonexistent/babelcast.toml"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cannot read /nonexistent/babelcast.toml"),
        "{err}"
    );
    assert_eq!(err.matches("No such file").count(), 1, "{err}");
}

#[test]
fn check_config_with_no_file_checks_the_built_in_one() {
    let tmp = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_babelcast"))
        .arg("check-config")
        .current_dir(tmp.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("the built-in default: ok (1 events, 7 channels)"),
        "{stdout}"
    );
}
