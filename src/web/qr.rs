//! QR codes as SVG for the hall screen: one per event (`/e/{event}`) and per channel
//! (`/e/{event}?channel={id}`), pointing at the server's public URL.
//!
//! Only links to configured events and channels are encoded, so the route cannot be used to
//! make QR codes for arbitrary URLs.

use qrcode::render::svg;
use qrcode::{EcLevel, QrCode};

/// Smallest rendered side in SVG user units (the image scales; this only sets the grid).
const MIN_SIDE: u32 = 256;

/// The attendee link a QR code encodes.
pub fn attendee_url(public_url: &str, event: &str, channel: Option<&str>) -> String {
    let mut url = format!("{public_url}/e/{}", encode(event));
    if let Some(c) = channel {
        url.push_str("?channel=");
        url.push_str(&encode(c));
    }
    url
}

/// Percent-encodes everything but unreserved characters (ids are usually plain already).
fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// An SVG QR code for `text` (medium error correction: survives a glare spot on a screen).
pub fn svg(text: &str) -> Option<String> {
    let code = QrCode::with_error_correction_level(text.as_bytes(), EcLevel::M).ok()?;
    Some(
        code.render::<svg::Color>()
            .min_dimensions(MIN_SIDE, MIN_SIDE)
            .quiet_zone(true)
            .dark_color(svg::Color("#000"))
            .light_color(svg::Color("#fff"))
            .build(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_the_deep_link() {
        assert_eq!(
            attendee_url("https://cap.example", "demo", Some("zh")),
            "https://cap.example/e/demo?channel=zh"
        );
        assert_eq!(attendee_url("http://h", "a b", None), "http://h/e/a%20b");
        let s = svg("https://cap.example/e/demo?channel=zh").unwrap();
        assert!(s.contains("<svg") && s.contains("<path"));
    }
}
