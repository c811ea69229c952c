//! Language identification of committed lines (whatlang), as BCP-47 primary tags.
//!
//! Every committed line gets a `lang`. On `auto` channels (a floor whose speakers change
//! language) the detected language is used when detection is reliable; otherwise the
//! channel's previous language carries over. On channels with a declared language, a line
//! that is confidently another language is flagged as a mismatch.

use whatlang::Lang;

/// Fewer characters than this (letters, not bytes) are too short to call a mismatch:
/// names, numbers and "OK." are legitimately foreign-looking.
pub const MIN_MISMATCH_CHARS: usize = 24;
/// CJK scripts carry much more per character, so a shorter line is already reliable.
pub const MIN_MISMATCH_CHARS_CJK: usize = 8;
/// Minimum whatlang confidence (0..1) to call a mismatch.
pub const MIN_MISMATCH_CONFIDENCE: f64 = 0.5;

/// The outcome of checking a line against its channel's language.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Detection {
    /// The tag the line is shown with.
    pub lang: String,
    /// `Some(declared)` when the line was confidently detected as another language.
    pub expected: Option<String>,
}

/// Detects the language of `text` for a channel declared as `declared` (`auto` or a tag).
/// `previous` is the language of the channel's previous line (used on `auto` channels when
/// detection is not reliable).
pub fn check(text: &str, declared: &str, previous: Option<&str>) -> Detection {
    let info = whatlang::detect(text);
    if declared == "auto" {
        let lang = match &info {
            Some(info) if info.is_reliable() || previous.is_none() => tag(info.lang()),
            _ => previous.unwrap_or("und"),
        };
        return Detection {
            lang: lang.to_string(),
            expected: None,
        };
    }
    if let Some(info) = info {
        let detected = tag(info.lang());
        if detected != declared
            && !same_macrolanguage(detected, declared)
            && info.is_reliable()
            && info.confidence() >= MIN_MISMATCH_CONFIDENCE
            && long_enough(text)
        {
            return Detection {
                lang: detected.to_string(),
                expected: Some(declared.to_string()),
            };
        }
    }
    Detection {
        lang: declared.to_string(),
        expected: None,
    }
}

fn long_enough(text: &str) -> bool {
    let letters = text.chars().filter(|c| c.is_alphabetic()).count();
    let cjk = text.chars().any(|c| {
        matches!(c as u32, 0x3040..=0x30ff | 0x3400..=0x4dbf | 0x4e00..=0x9fff | 0xac00..=0xd7af)
    });
    letters
        >= if cjk {
            MIN_MISMATCH_CHARS_CJK
        } else {
            MIN_MISMATCH_CHARS
        }
}

/// Languages whatlang cannot tell apart reliably on short text.
fn same_macrolanguage(a: &str, b: &str) -> bool {
    const GROUPS: &[&[&str]] = &[
        &["no", "nb", "nn", "da", "sv"],
        &["sr", "hr", "bs"],
        &["ms", "id"],
    ];
    GROUPS.iter().any(|g| g.contains(&a) && g.contains(&b))
}

/// Whether `tag` is a BCP-47 primary language tag babelcast knows.
pub fn is_known_tag(tag: &str) -> bool {
    TAGS.iter().any(|(_, t)| *t == tag) || EXTRA_TAGS.contains(&tag)
}

/// The BCP-47 primary tag of a whatlang language (`zh` for Mandarin).
pub fn tag(lang: Lang) -> &'static str {
    let code = lang.code();
    TAGS.iter()
        .find(|(c, _)| *c == code)
        .map(|(_, t)| *t)
        .unwrap_or(code)
}

/// Tags accepted in config that whatlang does not detect.
const EXTRA_TAGS: &[&str] = &[
    "ga", "is", "mt", "sq", "bs", "eu", "gl", "kk", "mn", "ms", "sw", "fil", "yue", "nn", "no",
];

/// whatlang's ISO 639-3 codes mapped to BCP-47 primary tags.
const TAGS: &[(&str, &str)] = &[
    ("epo", "eo"),
    ("eng", "en"),
    ("rus", "ru"),
    ("cmn", "zh"),
    ("spa", "es"),
    ("por", "pt"),
    ("ita", "it"),
    ("ben", "bn"),
    ("fra", "fr"),
    ("deu", "de"),
    ("ukr", "uk"),
    ("kat", "ka"),
    ("ara", "ar"),
    ("hin", "hi"),
    ("jpn", "ja"),
    ("heb", "he"),
    ("yid", "yi"),
    ("pol", "pl"),
    ("amh", "am"),
    ("jav", "jv"),
    ("kor", "ko"),
    ("nob", "nb"),
    ("dan", "da"),
    ("swe", "sv"),
    ("fin", "fi"),
    ("tur", "tr"),
    ("nld", "nl"),
    ("hun", "hu"),
    ("ces", "cs"),
    ("ell", "el"),
    ("bul", "bg"),
    ("bel", "be"),
    ("mar", "mr"),
    ("kan", "kn"),
    ("ron", "ro"),
    ("slv", "sl"),
    ("hrv", "hr"),
    ("srp", "sr"),
    ("mkd", "mk"),
    ("lit", "lt"),
    ("lav", "lv"),
    ("est", "et"),
    ("tam", "ta"),
    ("vie", "vi"),
    ("urd", "ur"),
    ("tha", "th"),
    ("guj", "gu"),
    ("uzb", "uz"),
    ("pan", "pa"),
    ("aze", "az"),
    ("ind", "id"),
    ("tel", "te"),
    ("pes", "fa"),
    ("mal", "ml"),
    ("ori", "or"),
    ("mya", "my"),
    ("nep", "ne"),
    ("sin", "si"),
    ("khm", "km"),
    ("tuk", "tk"),
    ("aka", "ak"),
    ("zul", "zu"),
    ("sna", "sn"),
    ("afr", "af"),
    ("lat", "la"),
    ("slk", "sk"),
    ("cat", "ca"),
    ("tgl", "tl"),
    ("hye", "hy"),
    ("cym", "cy"),
];

/// The name of a language in itself, for pickers and default channel labels.
pub fn native_name(tag: &str) -> Option<&'static str> {
    Some(match tag {
        "auto" => "Floor",
        "en" => "English",
        "zh" => "中文",
        "fr" => "Français",
        "es" => "Español",
        "ar" => "العربية",
        "ru" => "Русский",
        "de" => "Deutsch",
        "it" => "Italiano",
        "pt" => "Português",
        "ja" => "日本語",
        "ko" => "한국어",
        "hi" => "हिन्दी",
        "tr" => "Türkçe",
        "pl" => "Polski",
        "nl" => "Nederlands",
        "uk" => "Українська",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_channels_follow_the_speaker() {
        let en = check(
            "Good morning and welcome to the conference on small businesses.",
            "auto",
            None,
        );
        assert_eq!(en.lang, "en");
        let zh = check("大家早上好，欢迎参加中小企业大会。", "auto", Some("en"));
        assert_eq!(zh.lang, "zh");
        assert_eq!(zh.expected, None);
    }

    #[test]
    fn confident_mismatch_is_flagged() {
        let d = check(
            "Mesdames et messieurs, bienvenue à cette conférence sur les petites entreprises.",
            "en",
            None,
        );
        assert_eq!(d.lang, "fr");
        assert_eq!(d.expected.as_deref(), Some("en"));
    }

    #[test]
    fn french_sentences_on_an_english_channel_are_flagged() {
        for text in [
            "Mesdames et messieurs, bienvenue à cette conférence sur les petites entreprises.",
            "Nous allons parler du financement, des compétences et de la confiance aujourd'hui.",
            "Les petites entreprises emploient la majorité des travailleurs dans le monde entier.",
        ] {
            let d = check(text, "en", None);
            assert_eq!(d.expected.as_deref(), Some("en"), "{text}: {d:?}");
        }
    }

    #[test]
    fn short_lines_are_not_flagged() {
        let d = check("Merci.", "en", None);
        assert_eq!(d.lang, "en");
        assert_eq!(d.expected, None);
    }

    #[test]
    fn every_detected_language_has_a_two_letter_tag() {
        for (code, tag) in TAGS {
            assert_eq!(tag.len(), 2, "{code}");
        }
        assert!(is_known_tag("zh") && is_known_tag("ar") && !is_known_tag("english"));
    }
}
