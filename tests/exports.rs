//! Transcript exports read by real subtitle parsers: hostile captions (every kind of line
//! break, timing arrows of any length, text shaped like cues, markup, bidi controls) published
//! faster than the minimum cue duration, then the WebVTT export loaded through a `<track>` in
//! headless Chromium (its WebVTT parser: cue count, ids, times, text) and the SRT export parsed
//! by the PyPI `srt` package in strict mode. Each caption is one cue with its text, nothing is
//! injected, and cues never overlap. Neither parser may be missing: `.ci/run` installs both.
#[path = "common/browser.rs"]
mod browser;
mod common;

use std::io::Write;
use std::process::{Command, Stdio};

use browser::Browser;
use common::*;
use serde_json::{json, Value};

/// A caption as published, as WebVTT readers get it back (exact but for line breaks: every
/// kind becomes `\n`, and blank lines go), and as SRT readers get it (the same, with the two
/// documented substitutions).
struct Hostile {
    sent: &'static str,
    vtt: &'static str,
    srt: &'static str,
}

const HOSTILE: &[Hostile] = &[
    Hostile {
        sent: "ok\n\n99\n00:00:05,000 ---> 00:00:09,000\nINJECTED",
        vtt: "ok\n99\n00:00:05,000 ---> 00:00:09,000\nINJECTED",
        srt: "ok\n99 00:00:05,000 -> 00:00:09,000\nINJECTED",
    },
    Hostile {
        sent: "arrows: a --> b ---> c ----> d -- > e - > f -> g",
        vtt: "arrows: a --> b ---> c ----> d -- > e - > f -> g",
        srt: "arrows: a -> b -> c -> d -> e -> f -> g",
    },
    Hostile {
        sent: "-->",
        vtt: "-->",
        srt: "->",
    },
    Hostile {
        sent: "one\rtwo\r\rthree\r\nfour\n\r\nfive",
        vtt: "one\ntwo\nthree\nfour\nfive",
        srt: "one\ntwo\nthree\nfour\nfive",
    },
    Hostile {
        sent: "ls\u{2028}ps\u{2029}nel\u{85}vt\u{0B}ff\u{0C}fs\u{1C}gs\u{1D}rs\u{1E}end",
        vtt: "ls\nps\nnel\nvt\nff\nfs\ngs\nrs\nend",
        srt: "ls\nps\nnel\nvt\nff\nfs\ngs\nrs\nend",
    },
    Hostile {
        sent: "WEBVTT\n\nNOTE not a note\n\nSTYLE\n::cue { color: red }\n\nREGION\nid:fake",
        vtt: "WEBVTT\nNOTE not a note\nSTYLE\n::cue { color: red }\nREGION\nid:fake",
        srt: "WEBVTT\nNOTE not a note\nSTYLE\n::cue { color: red }\nREGION\nid:fake",
    },
    Hostile {
        sent:
            "1\n00:00:01.000 --> 00:00:02.000 line:0\nfake cue\n \n2\n00:00:02,000 --> 00:00:03,000",
        vtt: "1\n00:00:01.000 --> 00:00:02.000 line:0\nfake cue\n2\n00:00:02,000 --> 00:00:03,000",
        srt: "1 00:00:01.000 -> 00:00:02.000 line:0\nfake cue\n2 00:00:02,000 -> 00:00:03,000",
    },
    Hostile {
        sent: "<b>bold</b> & <i>it</i> <c.red>x</c> <00:00:01.000> &amp; &lt; <v Boss>",
        vtt: "<b>bold</b> & <i>it</i> <c.red>x</c> <00:00:01.000> &amp; &lt; <v Boss>",
        srt: "<b>bold</b> & <i>it</i> <c.red>x</c> <00:00:01.000> &amp; &lt; <v Boss>",
    },
    Hostile {
        sent: "\u{202E}desrever\u{202C} \u{2067}isolate\u{2069} \u{200F}שלום\u{200E} \u{202B}open",
        vtt: "\u{202E}desrever\u{202C} \u{2067}isolate\u{2069} \u{200F}שלום\u{200E} \u{202B}open",
        srt: "\u{202E}desrever\u{202C} \u{2067}isolate\u{2069} \u{200F}שלום\u{200E} \u{202B}open",
    },
    Hostile {
        sent: "Step\n2\n1.5.2 is out\n3\n1。2。3",
        vtt: "Step\n2\n1.5.2 is out\n3\n1。2。3",
        srt: "Step\n2 1.5.2 is out\n3 1。2。3",
    },
    Hostile {
        sent: "   leading spaces\n\t\ttabs\nends with a break\n",
        vtt: "   leading spaces\n\t\ttabs\nends with a break",
        srt: "   leading spaces\n\t\ttabs\nends with a break",
    },
    Hostile {
        sent: "大家好，欢迎。最后一行。",
        vtt: "大家好，欢迎。最后一行。",
        srt: "大家好，欢迎。最后一行。",
    },
];

/// Publishes every hostile caption on `en` as fast as acks come back (far faster than a cue
/// lasts), and returns the server.
async fn server_with_hostile_captions() -> TestServer {
    let s = TestServer::start().await;
    let mut p = s.publish("en").await;
    for (i, h) in HOSTILE.iter().enumerate() {
        let ack = p.final_line(h.sent, None).await;
        assert_eq!(ack["seq"], i + 1, "{ack}");
    }
    s
}

async fn export(s: &TestServer, format: &str) -> String {
    let url = s.http(&TestServer::channel_path(
        "en",
        &format!("transcript?format={format}"),
    ));
    let r = reqwest::get(url).await.unwrap();
    assert_eq!(r.status(), 200);
    r.text().await.unwrap()
}

/// Cue times in order and never overlapping: each ends after it starts, and no later than
/// the next one starts.
fn assert_timeline(times: &[(i64, i64)], what: &str) {
    for (i, (start, end)) in times.iter().enumerate() {
        assert!(end > start, "{what}: cue {i} lasts nothing: {times:?}");
        if let Some((next, _)) = times.get(i + 1) {
            assert!(end <= next, "{what}: cue {i} overlaps the next: {times:?}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_reads_the_webvtt_export_cue_for_caption() {
    let s = server_with_hostile_captions().await;
    let vtt = export(&s, "vtt").await;
    let b = Browser::start().await;
    b.goto(&s.http("/")).await;
    // A <track> of a <video>: Chromium fetches and parses the file as a player would.
    let cues = b
        .js_async(
            r#"const [url, done] = arguments;
            const video = document.createElement('video');
            const track = document.createElement('track');
            track.kind = 'subtitles';
            track.src = url;
            video.appendChild(track);
            document.body.appendChild(video);
            track.addEventListener('load', () => done(Array.from(track.track.cues).map(c =>
                [c.id, Math.round(c.startTime * 1000), Math.round(c.endTime * 1000),
                 c.getCueAsHTML().textContent, c.text])));
            track.addEventListener('error', () => done('the track did not load'));
            track.track.mode = 'hidden';"#,
            vec![json!(TestServer::channel_path(
                "en",
                "transcript?format=vtt"
            ))],
        )
        .await;
    b.close().await;
    let cues = cues
        .as_array()
        .unwrap_or_else(|| panic!("{cues}\n{vtt}"))
        .clone();
    assert_eq!(cues.len(), HOSTILE.len(), "one cue per caption:\n{vtt}");
    let mut times = Vec::new();
    for (i, (cue, h)) in cues.iter().zip(HOSTILE).enumerate() {
        assert_eq!(cue[0], json!((i + 1).to_string()), "cue id is the seq");
        assert_eq!(
            cue[3].as_str(),
            Some(h.vtt),
            "cue {i}: Chromium's text differs from the caption:\n{vtt}"
        );
        // The raw cue text has no line the parser could take for something else.
        let raw = cue[4].as_str().unwrap();
        assert!(!raw.contains("-->"), "{raw:?}");
        times.push((cue[1].as_i64().unwrap(), cue[2].as_i64().unwrap()));
    }
    assert_eq!(times[0].0, 0);
    assert_timeline(&times, "WebVTT");
}

/// The PyPI `srt` package's strict parse of `text`: `[index, start ms, end ms, content]` per
/// subtitle, or the parser's error.
fn strict_srt_parse(text: &str) -> Result<Vec<Value>, String> {
    const SCRIPT: &str = r#"
import json, sys
try:
    import srt
except ImportError:
    print("MISSING", file=sys.stderr)
    sys.exit(3)
text = sys.stdin.buffer.read().decode("utf-8")
try:
    subs = list(srt.parse(text, ignore_errors=False))
except srt.SRTParseError as e:
    print(str(e), file=sys.stderr)
    sys.exit(2)
ms = lambda d: d // __import__("datetime").timedelta(milliseconds=1)
print(json.dumps([[s.index, ms(s.start), ms(s.end), s.content] for s in subs]))
"#;
    let mut child = Command::new("python3")
        .args(["-c", SCRIPT])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 runs (.ci/run installs it with the srt package)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    match out.status.code() {
        Some(0) => Ok(serde_json::from_slice(&out.stdout).expect("the script prints JSON")),
        Some(3) => panic!(
            "the PyPI package `srt` is missing: `python3 -m pip install srt==3.5.3` (.ci/run installs it)"
        ),
        _ => Err(stderr.into_owned()),
    }
}

#[test]
fn the_strict_srt_parser_is_strict() {
    // The check below means something: the parser refuses what the old export wrote.
    let old = "1\n00:00:00,000 --> 00:00:01,000\nok\n99\n00:00:05,000 x\n\n";
    assert!(strict_srt_parse(old).is_err());
    let fine = "1\n00:00:00,000 --> 00:00:01,000\nok\n\n";
    assert_eq!(strict_srt_parse(fine).unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_strict_srt_parser_reads_the_srt_export_cue_for_caption() {
    let s = server_with_hostile_captions().await;
    let srt = export(&s, "srt").await;
    let subs = strict_srt_parse(&srt)
        .unwrap_or_else(|e| panic!("the strict parser refused the export: {e}\n{srt}"));
    assert_eq!(
        subs.len(),
        HOSTILE.len(),
        "one subtitle per caption:\n{srt}"
    );
    let mut times = Vec::new();
    for (i, (sub, h)) in subs.iter().zip(HOSTILE).enumerate() {
        assert_eq!(sub[0], json!(i + 1), "{srt}");
        assert_eq!(sub[3].as_str(), Some(h.srt), "subtitle {i}:\n{srt}");
        times.push((sub[1].as_i64().unwrap(), sub[2].as_i64().unwrap()));
    }
    assert_eq!(times[0].0, 0);
    assert_timeline(&times, "SRT");
    // The JSON export has the same timeline, and the caption text exactly as sent.
    let json: Value = serde_json::from_str(&export(&s, "json").await).unwrap();
    let lines = json["lines"].as_array().unwrap();
    for (i, (line, h)) in lines.iter().zip(HOSTILE).enumerate() {
        assert_eq!(line["text"], h.sent);
        assert_eq!(
            (line["start_ms"].as_i64(), line["end_ms"].as_i64()),
            (Some(times[i].0), Some(times[i].1))
        );
    }
}
