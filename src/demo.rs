//! `serve --demo`: replays a built-in bilingual speech into the demo event at speaking pace,
//! with partials growing word by word, so a newcomer sees captions flowing at once.
//!
//! The speech goes through the same admission path as a real publisher (validation, language
//! identification, store, ack), so the demo exercises the whole relay.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::hub::Hub;
use crate::ingest::{Admitted, Ingest, Publisher};
use crate::protocol::ClientMsg;

/// The demo event id.
pub const EVENT: &str = "demo";
/// Pause between words of a growing partial (about 150 words a minute).
const WORD_PAUSE: Duration = Duration::from_millis(380);
/// Pause after each committed sentence.
const SENTENCE_PAUSE: Duration = Duration::from_millis(700);
/// How far the interpretation booths lag behind the floor (décalage).
const BOOTH_LAG: Duration = Duration::from_millis(1800);

/// The speech: (original language, English, Chinese). The floor hears the original.
const SPEECH: &[(&str, &str, &str)] = &[
    (
        "en",
        "Good morning, everyone, and welcome to the World SME Conference.",
        "大家早上好，欢迎参加世界中小企业大会。",
    ),
    (
        "en",
        "Small and medium enterprises employ two out of every three workers in the world.",
        "中小企业雇用了全世界三分之二的劳动者。",
    ),
    (
        "en",
        "Yet many of them still struggle to reach customers beyond their own city.",
        "然而，许多企业仍然难以把产品卖到本地以外的市场。",
    ),
    (
        "zh",
        "Today I want to talk about three things: finance, skills and trust.",
        "今天我想谈三件事：融资、技能和信任。",
    ),
    (
        "zh",
        "First, finance. A bakery should not need a lawyer to borrow money for a new oven.",
        "第一是融资。一家面包店借钱买新烤箱，不应该需要请律师。",
    ),
    (
        "zh",
        "Second, skills. Every young apprentice deserves a mentor who answers the phone.",
        "第二是技能。每一位年轻学徒都应该有一位随时愿意帮忙的导师。",
    ),
    (
        "en",
        "Third, trust. Contracts are only as strong as the courts that enforce them.",
        "第三是信任。合同的力量取决于执行合同的法院。",
    ),
    (
        "en",
        "Thank you. I look forward to our discussion this afternoon.",
        "谢谢大家。期待今天下午与各位深入交流。",
    ),
];

/// Splits a sentence into the growing prefixes a live captioner would send.
fn growing(text: &str, lang: &str) -> Vec<String> {
    let mut out = Vec::new();
    if lang == "zh" {
        let chars: Vec<char> = text.chars().collect();
        let mut i = 0;
        while i < chars.len() {
            i = (i + 3).min(chars.len());
            out.push(chars[..i].iter().collect());
        }
    } else {
        let mut acc = String::new();
        for w in text.split_whitespace() {
            if !acc.is_empty() {
                acc.push(' ');
            }
            acc.push_str(w);
            out.push(acc.clone());
        }
    }
    out
}

/// Runs the demo until shutdown. Does nothing if the config has no `demo` event.
pub async fn run(hub: Arc<Hub>, ingest: Arc<Ingest>, shutdown: CancellationToken) {
    let Some(event) = hub.event(EVENT) else {
        tracing::warn!("--demo needs an event with id \"demo\" in the config");
        return;
    };
    let mut tasks = Vec::new();
    for (channel, lag) in [
        ("floor", Duration::ZERO),
        ("en", BOOTH_LAG),
        ("zh", BOOTH_LAG),
    ] {
        if !event.channels.iter().any(|c| c == channel) {
            continue;
        }
        tasks.push(tokio::spawn(speak(
            hub.clone(),
            ingest.clone(),
            channel,
            lag,
            shutdown.clone(),
        )));
    }
    for t in tasks {
        let _ = t.await;
    }
}

async fn speak(
    hub: Arc<Hub>,
    ingest: Arc<Ingest>,
    channel: &'static str,
    lag: Duration,
    shutdown: CancellationToken,
) {
    let Some(ch) = hub.channel(EVENT, channel) else {
        return;
    };
    // The demo speaker is the channel's booth publisher: the channel shows as on air.
    let name = format!("demo {channel} booth");
    let (guard, _) = ch.publisher_join(&name);
    let me = Publisher {
        id: guard.id(),
        name: &name,
        credential: None,
    };
    let pause = |d: Duration| {
        let s = shutdown.clone();
        async move {
            tokio::select! {
                _ = tokio::time::sleep(d) => true,
                _ = s.cancelled() => false,
            }
        }
    };
    if !pause(lag).await {
        return;
    }
    loop {
        for (original, en, zh) in SPEECH {
            let (text, lang) = match channel {
                "floor" if *original == "zh" => (*zh, "zh"),
                "floor" | "en" => (*en, "en"),
                _ => (*zh, "zh"),
            };
            for prefix in growing(text, lang) {
                let _ = ingest
                    .admit(&ch, ClientMsg::Partial { text: prefix }, Some(me))
                    .await;
                if !pause(WORD_PAUSE).await {
                    return;
                }
            }
            let fin = ClientMsg::Final {
                text: text.to_string(),
                id: None,
            };
            if let Ok(Admitted::Pending(rx)) = ingest.admit(&ch, fin, Some(me)).await {
                if let Err(e) = crate::ingest::resolve(rx).await {
                    tracing::warn!(error = %e, "demo line was not stored");
                }
            }
            if !pause(SENTENCE_PAUSE).await {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partials_grow_to_the_sentence() {
        let g = growing("Good morning, everyone.", "en");
        assert_eq!(g, ["Good", "Good morning,", "Good morning, everyone."]);
        let z = growing("大家早上好。", "zh");
        assert_eq!(z.last().unwrap(), "大家早上好。");
    }
}
