//! The captions a load run publishes and how its listeners read them back: text of a given
//! size carrying the publisher's timing token (`[lg:<pub>:<n>:<unix_micros>]`), and the
//! scans that find a frame's seq and token without parsing its JSON.

/// Sample sentences the captions are cut from.
const SAMPLES: [&str; 3] = [
    "The delegates agreed to continue the discussion on renewable energy after the coffee break. ",
    "各位代表同意在茶歇之后继续讨论可再生能源问题，主席感谢各国代表团的积极参与。",
    "اتفق المندوبون على مواصلة النقاش حول الطاقة المتجددة بعد استراحة القهوة، وشكر الرئيس الوفود. ",
];

/// A caption of exactly `size` bytes or a little less (never splitting a character): the
/// timestamp token, then text in the sample language.
pub fn caption(token: &str, size: usize, lang: usize) -> String {
    let mut s = String::with_capacity(size + 4);
    s.push_str(token);
    s.push(' ');
    for c in SAMPLES[lang % SAMPLES.len()].chars().cycle() {
        if s.len() + c.len_utf8() > size {
            break;
        }
        s.push(c);
    }
    s
}

/// The seq of a channel event (line, edit, handover: `{"type":"…","seq":N,…}`), read without
/// parsing the JSON; `None` for other messages (hello, status, partial).
pub(super) fn event_seq(t: &str) -> Option<u64> {
    let rest = t.strip_prefix("{\"type\":\"")?;
    let rest = &rest[rest.find('"')?..];
    let rest = rest.strip_prefix("\",\"seq\":")?;
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    rest[..digits].parse().ok()
}

/// The publisher timestamp (Unix µs) of the first `[lg:…]` token in a frame.
pub(super) fn token_micros(t: &str) -> Option<u64> {
    let i = t.find("[lg:")? + 4;
    let end = i + t[i..].find(']')?;
    t[i..end].rsplit(':').next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn captions_have_the_size_and_the_token() {
        for lang in 0..3 {
            let c = caption("[lg:0:1:1700000000000000]", 80, lang);
            assert!(c.len() <= 80 && c.len() > 75, "{lang}: {} {c}", c.len());
            assert_eq!(token_micros(&c), Some(1_700_000_000_000_000));
        }
    }

    #[test]
    fn scans_frames() {
        let f = r#"{"type":"line","seq":42,"text":"[lg:3:9:123] hi \"seq\":7","lang":"en","ts":1}"#;
        assert_eq!(event_seq(f), Some(42));
        assert_eq!(token_micros(f), Some(123));
        let h = r#"{"type":"handover","seq":9,"from":null}"#;
        assert_eq!(event_seq(h), Some(9));
        assert_eq!(event_seq(r#"{"type":"hello","event":"e","seq":3}"#), None);
        assert_eq!(event_seq(r#"{"type":"partial","text":"\"seq\":4"}"#), None);
    }
}
