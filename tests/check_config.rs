//! `babelcast check-config`: a bad file exits non-zero naming the key and line; a good one
//! exits 0.
mod common;
use std::process::Command;

use common::*;

fn check(text: &str) -> std::process::Output {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("babelcast.toml");
    std::fs::write(&file, text).unwrap();
    Command::new(env!("CARGO_BIN_EXE_babelcast"))
        .arg("check-config")
        .arg(&file)
        .output()
        .expect("run babelcast check-config")
}

#[test]
fn a_good_config_passes() {
    let tmp = tempfile::tempdir().unwrap();
    let out = check(&config_toml(tmp.path()));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("ok"), "{stdout}");
}

#[test]
fn the_shipped_config_passes() {
    let out = Command::new(env!("CARGO_BIN_EXE_babelcast"))
        .arg("check-config")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/config/babelcast.toml"
        ))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_bad_value_is_named_with_its_key_and_line() {
    let out = check(
        "[[events]]\nid = \"conf\"\n\n[[events.channels]]\nid = \"en\"\nlang = \"english\"\n",
    );
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("events[0].channels[0].lang"), "{stderr}");
    assert!(stderr.contains("line 6"), "{stderr}");
}

#[test]
fn an_unknown_key_is_named_with_its_line() {
    let out = check("[server]\nbind = \"127.0.0.1:8080\"\nshutdown_grace = 3\n");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("shutdown_grace"), "{stderr}");
    assert!(stderr.contains("line 3"), "{stderr}");
}

#[test]
fn a_missing_file_fails() {
    let out = Command::new(env!("CARGO_BIN_EXE_babelcast"))
        .args(["check-config", "/nonexistent/babelcast.toml"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(!out.stderr.is_empty());
}
