//! Language identification: a line in the wrong language for its channel is flagged (on the
//! line and in a metric); lines on an `auto` floor carry the detected language.
mod common;
use common::*;

async fn mismatch_metric(s: &TestServer, channel: &str) -> u64 {
    let text = reqwest::get(s.http("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let prefix =
        format!("babelcast_lang_mismatch_total{{event=\"{EVENT}\",channel=\"{channel}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("no {prefix} in metrics:\n{text}"))
        .trim()
        .parse()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn french_on_the_english_channel_is_flagged() {
    let s = TestServer::start().await;
    let mut l = s.listen("en", None).await;
    let mut p = s.publish("en").await;
    assert_eq!(mismatch_metric(&s, "en").await, 0);

    p.final_line(
        "Good morning, ladies and gentlemen, and welcome to the conference.",
        None,
    )
    .await;
    let line = l.recv_type("line").await;
    assert_eq!(line["lang"], "en");
    assert!(line.get("expected_lang").is_none(), "{line}");

    let french = "Bonjour à tous, nous sommes très heureux de vous accueillir aujourd'hui dans cette belle ville.";
    p.final_line(french, None).await;
    let line = l.recv_type("line").await;
    assert_eq!(line["text"], french);
    assert_eq!(line["lang"], "fr", "{line}");
    assert_eq!(line["expected_lang"], "en", "{line}");
    assert_eq!(mismatch_metric(&s, "en").await, 1);

    // Too short to be sure: not flagged.
    p.final_line("Merci.", None).await;
    let line = l.recv_type("line").await;
    assert!(line.get("expected_lang").is_none(), "{line}");
    assert_eq!(mismatch_metric(&s, "en").await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn floor_lines_carry_the_detected_language() {
    let s = TestServer::start().await;
    let mut l = s.listen("floor", None).await;
    let mut p = s.publish("floor").await;
    p.final_line(
        "Thank you, Madam Chair. Let me begin with the economic outlook for the coming year.",
        None,
    )
    .await;
    p.final_line(
        "谢谢主席女士。我想先谈一谈明年的经济形势和中小企业面临的挑战。",
        None,
    )
    .await;
    let en = l.recv_type("line").await;
    let zh = l.recv_type("line").await;
    assert_eq!(en["lang"], "en", "{en}");
    assert_eq!(zh["lang"], "zh", "{zh}");
    assert!(en.get("expected_lang").is_none() && zh.get("expected_lang").is_none());
    assert_eq!(mismatch_metric(&s, "floor").await, 0);
}
