//! The timing of an EBU-TT Live document (`begin`, `end`, `dur` on `tt:body`, TTML time
//! expressions): how long its content stays on screen after it arrives, so the line in
//! progress is committed once that has passed even if the producer sends nothing more.
//!
//! Only what can be known without the producer's clock is used: `dur`, or `end − begin`; an
//! `end` alone counts with `ttp:timeBase="clock"` and `ttp:clockMode` `utc` or `gps`, against
//! this server's UTC clock. Anything else (media time without `begin`, a local clock, ticks)
//! leaves the document untimed: only `ingest.idle_commit_ms` applies.

use std::time::Duration;

use quick_xml::events::BytesStart;
use quick_xml::name::ResolveResult;
use quick_xml::{NsReader, XmlVersion};

use super::{in_ns, not_xml, DocError, TTML_NS};

/// The TTML parameters namespace of `ttp:timeBase`, `ttp:clockMode`, `ttp:frameRate`.
const TTP_NS: &[u8] = b"http://www.w3.org/ns/ttml#parameter";

/// Frames per second of `f` and `HH:MM:SS:FF` expressions when the document names none
/// (TTML's default `ttp:frameRate`).
const DEFAULT_FRAME_RATE: f64 = 30.0;
/// Longest time a document is taken to be shown (a day): longer values are no timing at all.
const MAX_SHOWN: Duration = Duration::from_secs(24 * 3600);
/// Seconds between the GPS epoch's clock and UTC (leap seconds since 1980).
const GPS_UTC_OFFSET_SECS: f64 = 18.0;

/// The timing attributes of a document.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Timing {
    /// `ttp:timeBase` (`media` when absent, as in TTML).
    pub time_base: Option<String>,
    /// `ttp:clockMode`.
    pub clock_mode: Option<String>,
    /// `ttp:frameRate`.
    pub frame_rate: Option<String>,
    /// `begin`, `end`, `dur` of `tt:body`, as written.
    pub begin: Option<String>,
    pub end: Option<String>,
    pub dur: Option<String>,
}

impl Timing {
    /// How long after its arrival the document's content stops being shown, if its timing
    /// says (`now_utc_secs`: seconds since midnight UTC now, for an `end` on a UTC clock).
    pub fn shown_for(&self, now_utc_secs: f64) -> Option<Duration> {
        let fps = self
            .frame_rate
            .as_deref()
            .and_then(|f| f.trim().parse::<f64>().ok())
            .filter(|f| *f > 0.0 && f.is_finite())
            .unwrap_or(DEFAULT_FRAME_RATE);
        let secs = |t: &Option<String>| t.as_deref().and_then(|t| seconds(t, fps));
        let shown = if let Some(dur) = secs(&self.dur) {
            dur
        } else {
            let end = secs(&self.end)?;
            match secs(&self.begin) {
                Some(begin) => end - begin,
                None if self.time_base.as_deref() == Some("clock") => {
                    let offset = match self.clock_mode.as_deref() {
                        Some("utc") => 0.0,
                        Some("gps") => GPS_UTC_OFFSET_SECS,
                        _ => return None,
                    };
                    // `end` is a time of day: the next such moment from now.
                    (end - offset - now_utc_secs).rem_euclid(24.0 * 3600.0)
                }
                None => return None,
            }
        };
        let shown = Duration::try_from_secs_f64(shown.max(0.0)).ok()?;
        (shown <= MAX_SHOWN).then_some(shown)
    }
}

/// Records the timing attributes of the root (`root`: time base, clock mode, frame rate) or of
/// `tt:body` (`begin`, `end`, `dur`, unprefixed or in the TTML namespace).
pub(super) fn read_attrs(
    reader: &NsReader<&[u8]>,
    e: &BytesStart<'_>,
    timing: &mut Timing,
    root: bool,
) -> Result<(), DocError> {
    for a in e.attributes() {
        let a = a.map_err(not_xml)?;
        let (ns, local) = reader.resolver().resolve_attribute(a.key);
        let slot = if root {
            if !in_ns(&ns, TTP_NS)? {
                continue;
            }
            match local.as_ref() {
                b"timeBase" => &mut timing.time_base,
                b"clockMode" => &mut timing.clock_mode,
                b"frameRate" => &mut timing.frame_rate,
                _ => continue,
            }
        } else {
            if !(matches!(ns, ResolveResult::Unbound) || in_ns(&ns, TTML_NS)?) {
                continue;
            }
            match local.as_ref() {
                b"begin" => &mut timing.begin,
                b"end" => &mut timing.end,
                b"dur" => &mut timing.dur,
                _ => continue,
            }
        };
        let v = a
            .normalized_value(XmlVersion::Implicit1_0)
            .map_err(not_xml)?;
        *slot = Some(v.chars().take(64).collect());
    }
    Ok(())
}

/// Seconds of a TTML time expression: clock time (`HH:MM:SS`, `HH:MM:SS.fff`,
/// `HH:MM:SS:FF`) or offset time (`12.5s`, `400ms`, `2m`, `1h`, `25f`). `None` for anything
/// else (ticks included).
pub fn seconds(expr: &str, fps: f64) -> Option<f64> {
    let t = expr.trim();
    if t.contains(':') {
        let parts: Vec<&str> = t.split(':').collect();
        let num = |s: &str| -> Option<f64> {
            (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit() || b == b'.'))
                .then(|| s.parse().ok())
                .flatten()
        };
        let (h, m, s) = (num(parts[0])?, num(parts.get(1)?)?, num(parts.get(2)?)?);
        let frames = match parts.get(3) {
            Some(f) => num(f)? / fps,
            None => 0.0,
        };
        if parts.len() > 4 || m >= 60.0 || s >= 61.0 {
            return None;
        }
        return Some(h * 3600.0 + m * 60.0 + s + frames);
    }
    let split = t.find(|c: char| c.is_ascii_alphabetic())?;
    let (count, metric) = t.split_at(split);
    if count.is_empty() || !count.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return None;
    }
    let n: f64 = count.parse().ok()?;
    let scale = match metric {
        "h" => 3600.0,
        "m" => 60.0,
        "s" => 1.0,
        "ms" => 0.001,
        "f" => 1.0 / fps,
        _ => return None,
    };
    Some(n * scale).filter(|s| s.is_finite())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn timing(begin: Option<&str>, end: Option<&str>, dur: Option<&str>) -> Timing {
        Timing {
            begin: begin.map(Into::into),
            end: end.map(Into::into),
            dur: dur.map(Into::into),
            ..Timing::default()
        }
    }

    #[test]
    fn time_expressions() {
        assert_eq!(seconds("00:00:05", 30.0), Some(5.0));
        assert_eq!(seconds("01:02:03.5", 30.0), Some(3723.5));
        assert_eq!(seconds("00:00:01:15", 30.0), Some(1.5));
        assert_eq!(seconds("49403721ms", 30.0), Some(49403.721));
        assert_eq!(seconds("2.5s", 30.0), Some(2.5));
        assert_eq!(seconds("2m", 30.0), Some(120.0));
        assert_eq!(seconds("50f", 25.0), Some(2.0));
        for bad in ["", "5", "5x", "10t", "aa:bb:cc", "00:99:00", "-1s", "1:2"] {
            assert_eq!(seconds(bad, 30.0), None, "{bad:?}");
        }
    }

    #[test]
    fn how_long_a_document_is_shown() {
        let secs = |t: Timing| t.shown_for(0.0).map(|d| d.as_secs_f64());
        // The toolkit's producer: a begin on the producer's clock and a duration.
        assert_eq!(
            secs(timing(Some("49403721ms"), None, Some("00:00:01"))),
            Some(1.0)
        );
        assert_eq!(secs(timing(Some("10s"), Some("14s"), None)), Some(4.0));
        assert_eq!(secs(timing(Some("14s"), Some("10s"), None)), Some(0.0));
        // An end alone is a time on the producer's clock: known on a UTC clock only.
        assert_eq!(secs(timing(None, Some("10s"), None)), None);
        let mut utc = timing(None, Some("12:00:10"), None);
        utc.time_base = Some("clock".into());
        utc.clock_mode = Some("utc".into());
        assert_eq!(utc.shown_for(12.0 * 3600.0).map(|d| d.as_secs()), Some(10));
        utc.clock_mode = Some("local".into());
        assert_eq!(utc.shown_for(12.0 * 3600.0), None);
        assert_eq!(secs(timing(None, None, None)), None);
        assert_eq!(secs(timing(None, None, Some("48h"))), None, "over a day");
    }
}
