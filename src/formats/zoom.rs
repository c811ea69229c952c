//! Zoom's third-party closed-caption API: `POST {caption URL}&seq=N&lang=en-US` with a
//! `text/plain` UTF-8 body appended to the caption in progress (a line break commits it), and
//! `GET {caption URL with /seq after the path}` answering the last accepted seq.
//!
//! Ingest applies Zoom posts with [`super::line::LineBuffer`] (no corrections); egress builds
//! requests with [`post_url`], [`seq_url`] and [`lang_code`].

use super::with_params;

/// Zoom's language code for a BCP-47 primary tag. Zoom writes Japanese as `jp-JP`; tags Zoom
/// does not list get `xx-XX`.
pub fn lang_code(primary: &str) -> String {
    let known = match primary {
        "en" => "en-US",
        "de" => "de-DE",
        "ja" | "jp" => "jp-JP",
        "es" => "es-ES",
        "fr" => "fr-FR",
        "zh" => "zh-CN",
        "it" => "it-IT",
        "ko" => "ko-KR",
        "pt" => "pt-PT",
        "ru" => "ru-RU",
        "nl" => "nl-NL",
        "uk" => "uk-UA",
        "vi" => "vi-VN",
        "ar" => "ar-SA",
        "pl" => "pl-PL",
        "tr" => "tr-TR",
        "id" => "id-ID",
        "hi" => "hi-IN",
        "sv" => "sv-SE",
        "cs" => "cs-CZ",
        "he" => "he-IL",
        "th" => "th-TH",
        "el" => "el-GR",
        "da" => "da-DK",
        "fi" => "fi-FI",
        "nb" | "no" => "nb-NO",
        "hu" => "hu-HU",
        "ro" => "ro-RO",
        "ms" => "ms-MY",
        "fa" => "fa-IR",
        "et" => "et-EE",
        "tl" => "tl-PH",
        _ => "",
    };
    if known.is_empty() {
        format!("{primary}-{}", primary.to_ascii_uppercase())
    } else {
        known.to_string()
    }
}

/// The URL of one caption post.
pub fn post_url(caption_url: &str, seq: u64, lang: &str) -> String {
    with_params(caption_url, &[("seq", &seq.to_string()), ("lang", lang)])
}

/// The URL that answers the last accepted seq: `/seq` appended to the caption URL's path
/// (`…/closedcaption?id=…` becomes `…/closedcaption/seq?id=…`).
pub fn seq_url(caption_url: &str) -> String {
    let (path, query) = match caption_url.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (caption_url, None),
    };
    let mut out = format!("{}/seq", path.trim_end_matches('/'));
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

/// Reads the answer of the seq URL: a plain integer.
pub fn parse_seq_answer(body: &str) -> Option<u64> {
    // A seq near the top of u64 cannot be followed by seq + 1: treat it as garbage.
    body.trim().parse().ok().filter(|&n: &u64| n < u64::MAX / 2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn japanese_is_jp_jp() {
        assert_eq!(lang_code("ja"), "jp-JP");
        assert_eq!(lang_code("en"), "en-US");
        assert_eq!(lang_code("zh"), "zh-CN");
        assert_eq!(lang_code("sw"), "sw-SW");
    }

    #[test]
    fn urls() {
        let base = "https://wmcc.zoom.us/closedcaption?id=200610693&ns=GZHkEA==&expire=86400";
        assert_eq!(
            post_url(base, 7, "jp-JP"),
            format!("{base}&seq=7&lang=jp-JP")
        );
        assert_eq!(
            seq_url(base),
            "https://wmcc.zoom.us/closedcaption/seq?id=200610693&ns=GZHkEA==&expire=86400"
        );
        assert_eq!(seq_url("http://h/cc/zoom"), "http://h/cc/zoom/seq");
        assert_eq!(parse_seq_answer("42\n"), Some(42));
        assert_eq!(parse_seq_answer("x"), None);
    }
}
