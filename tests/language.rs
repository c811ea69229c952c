//! Language identification: a line in the wrong language for its channel is flagged (on the
//! line and in a metric); lines on an `auto` floor carry the detected language.
mod common;
use babelcast::protocol::ServerMsg;
use common::*;

/// The next line's text, language and expected language (when flagged).
async fn next_line(l: &mut WsClient) -> (String, String, Option<String>) {
    match l.next_msg().await {
        ServerMsg::Line {
            text,
            lang,
            expected_lang,
            ..
        } => (
            text.into_owned(),
            lang.into_owned(),
            expected_lang.map(|e| e.into_owned()),
        ),
        other => panic!("expected a line, got {other:?}"),
    }
}

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

    let good_morning = "Good morning, ladies and gentlemen, and welcome to the conference.";
    p.publish_final(good_morning, None).await;
    assert_eq!(
        next_line(&mut l).await,
        (good_morning.into(), "en".into(), None)
    );

    let french = "Bonjour à tous, nous sommes très heureux de vous accueillir aujourd'hui dans cette belle ville.";
    p.publish_final(french, None).await;
    assert_eq!(
        next_line(&mut l).await,
        (french.into(), "fr".into(), Some("en".into()))
    );
    assert_eq!(mismatch_metric(&s, "en").await, 1);

    // Too short to be sure: not flagged.
    p.publish_final("Merci.", None).await;
    let (_, _, expected) = next_line(&mut l).await;
    assert_eq!(expected, None);
    assert_eq!(mismatch_metric(&s, "en").await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn floor_lines_carry_the_detected_language() {
    let s = TestServer::start().await;
    let mut l = s.listen("floor", None).await;
    let mut p = s.publish("floor").await;
    let english =
        "Thank you, Madam Chair. Let me begin with the economic outlook for the coming year.";
    let chinese = "谢谢主席女士。我想先谈一谈明年的经济形势和中小企业面临的挑战。";
    p.publish_final(english, None).await;
    p.publish_final(chinese, None).await;
    assert_eq!(next_line(&mut l).await, (english.into(), "en".into(), None));
    assert_eq!(next_line(&mut l).await, (chinese.into(), "zh".into(), None));
    assert_eq!(mismatch_metric(&s, "floor").await, 0);
}
