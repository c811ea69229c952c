//! UTC timestamps as Zoom and YouTube write them, `YYYY-MM-DDTHH:MM:SS.mmm`, to and from Unix
//! milliseconds (proleptic Gregorian calendar, no time zone, no leap seconds).

/// Length of a timestamp in bytes.
pub const LEN: usize = 23;

/// Days since 1970-01-01 of a civil date (Howard Hinnant's `days_from_civil`).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The civil date of a day count since 1970-01-01 (Howard Hinnant's `civil_from_days`).
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (
        if m <= 2 {
            yoe + era * 400 + 1
        } else {
            yoe + era * 400
        },
        m,
        d,
    )
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Formats Unix milliseconds as `YYYY-MM-DDTHH:MM:SS.mmm` (UTC).
pub fn format(ms: i64) -> String {
    let days = ms.div_euclid(86_400_000);
    let rem = ms.rem_euclid(86_400_000);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}",
        rem / 3_600_000,
        rem / 60_000 % 60,
        rem / 1000 % 60,
        rem % 1000
    )
}

/// Parses exactly `YYYY-MM-DDTHH:MM:SS.mmm` (UTC) into Unix milliseconds.
pub fn parse(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() != LEN {
        return None;
    }
    let shape = b"dddd-dd-ddTdd:dd:dd.ddd";
    for (c, want) in b.iter().zip(shape) {
        let ok = match want {
            b'd' => c.is_ascii_digit(),
            w => c == w,
        };
        if !ok {
            return None;
        }
    }
    let num = |r: std::ops::Range<usize>| -> i64 {
        b[r].iter().fold(0, |n, c| n * 10 + i64::from(c - b'0'))
    };
    let (y, mo, d) = (num(0..4), num(5..7), num(8..10));
    let (h, mi, sec, ms) = (num(11..13), num(14..16), num(17..19), num(20..23));
    if !(1..=12).contains(&mo) || d < 1 || d > days_in_month(y, mo) || h > 23 || mi > 59 || sec > 59
    {
        return None;
    }
    Some(((days_from_civil(y, mo, d) * 24 + h) * 60 + mi) * 60_000 + sec * 1000 + ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_instants() {
        assert_eq!(format(0), "1970-01-01T00:00:00.000");
        assert_eq!(format(1_356_307_206_873), "2012-12-24T00:00:06.873");
        assert_eq!(parse("2012-12-24T00:00:06.873"), Some(1_356_307_206_873));
        assert_eq!(parse("2024-02-29T23:59:59.999"), Some(1_709_251_199_999));
    }

    #[test]
    fn round_trips() {
        let mut ms = -86_400_000 * 365 * 3;
        while ms < 4_102_444_800_000 {
            assert_eq!(parse(&format(ms)), Some(ms), "{}", format(ms));
            ms += 7_919_993_337;
        }
    }

    #[test]
    fn refuses_anything_else() {
        for bad in [
            "",
            "2012-12-24T00:00:06",
            "2012-12-24 00:00:06.873",
            "2012-13-24T00:00:06.873",
            "2023-02-29T00:00:06.873",
            "2012-12-24T24:00:06.873",
            "2012-12-24T00:60:06.873",
            "2012-12-24T00:00:60.873",
            "2012-12-24T00:00:06.8731",
            "２０１２-12-24T00:00:06.873",
        ] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }
}
