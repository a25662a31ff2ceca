//! Wall-clock times as the trainer writes them, to and from seconds since the Unix epoch.
//!
//! The trainer writes ISO 8601 (`2026-01-09T14:47:33`, with or without fractional seconds,
//! `Z` or a `+HH:MM` offset), its report time as `20260109_144733`, and SQLite writes
//! `YYYY-MM-DD HH:MM:SS`. Times without an offset
//! are UTC, as SQLite's `CURRENT_TIMESTAMP` is. Written by hand so the browser build carries
//! no date library.

/// Seconds since the Unix epoch, or `None` when the text is not a time we understand.
pub fn parse_iso8601(text: &str) -> Option<f64> {
    let s = text.trim();
    let b = s.as_bytes();
    // The trainer's report time, which the runs row carries as `start_time`: `20260109_144733`.
    if b.len() == 15
        && b[8] == b'_'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 8 || c.is_ascii_digit())
    {
        let iso = format!(
            "{}-{}-{}T{}:{}:{}",
            &s[0..4],
            &s[4..6],
            &s[6..8],
            &s[9..11],
            &s[11..13],
            &s[13..15]
        );
        return parse_iso8601(&iso);
    }
    if b.len() < 19 || b[4] != b'-' || b[7] != b'-' || b[13] != b':' || b[16] != b':' {
        return None;
    }
    if b[10] != b'T' && b[10] != b' ' && b[10] != b't' {
        return None;
    }
    let num = |range: std::ops::Range<usize>| -> Option<i64> {
        let part = s.get(range)?;
        part.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| part.parse().ok())?
    };
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 {
        return None;
    }
    if second > 60 {
        return None;
    }
    let mut rest = &s[19..];
    let mut fraction = 0.0;
    if let Some(after_dot) = rest.strip_prefix('.') {
        let digits = after_dot.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        // Parsed as the decimal "0.<digits>" (exactly rounded), on the stack: this runs for
        // every logged step when a run is read.
        let mut buf = [b'0'; 40];
        buf[1] = b'.';
        let kept = digits.min(buf.len() - 2);
        buf[2..2 + kept].copy_from_slice(&after_dot.as_bytes()[..kept]);
        fraction = std::str::from_utf8(&buf[..2 + kept]).ok()?.parse().ok()?;
        rest = &after_dot[digits..];
    }
    let offset_seconds = match rest {
        "" | "Z" | "z" => 0,
        _ => {
            let sign = match rest.as_bytes()[0] {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            // `hh:mm` or `hhmm`: four digits once the colons are left out.
            let mut tz = [0_i64; 4];
            let mut n = 0;
            for c in rest[1..].bytes().filter(|c| *c != b':') {
                if n == 4 || !c.is_ascii_digit() {
                    return None;
                }
                tz[n] = i64::from(c - b'0');
                n += 1;
            }
            if n != 4 {
                return None;
            }
            let (h, m) = (tz[0] * 10 + tz[1], tz[2] * 10 + tz[3]);
            sign * (h * 3600 + m * 60)
        }
    };
    let days = days_from_civil(year, month, day);
    let seconds = days * 86_400 + hour * 3600 + minute * 60 + second - offset_seconds;
    Some(seconds as f64 + fraction)
}

/// `2026-01-09T14:47:33` (UTC, whole seconds), the form the trainer writes.
pub fn format_iso8601(epoch_seconds: f64) -> String {
    let total = epoch_seconds.floor() as i64;
    let (days, secs) = (total.div_euclid(86_400), total.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

// Howard Hinnant's civil-calendar algorithms: exact for the proleptic Gregorian calendar.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_form_the_trainer_and_sqlite_write() {
        let base = parse_iso8601("2026-01-09T14:47:33").unwrap();
        assert_eq!(base, 1_767_970_053.0);
        assert_eq!(parse_iso8601("2026-01-09 14:47:33"), Some(base));
        // The trainer's report time (issue 13: real runs rows carry it as start_time).
        assert_eq!(parse_iso8601("20260109_144733"), Some(base));
        assert_eq!(parse_iso8601("20261309_144733"), None);
        assert_eq!(parse_iso8601("2026010x_144733"), None);
        assert_eq!(parse_iso8601("2026-01-09T14:47:33Z"), Some(base));
        assert_eq!(parse_iso8601("2026-01-09T14:47:33+00:00"), Some(base));
        assert_eq!(parse_iso8601("2026-01-09T15:47:33+01:00"), Some(base));
        assert_eq!(
            parse_iso8601("2026-01-09T14:47:33.250000"),
            Some(base + 0.25)
        );
        assert_eq!(
            parse_iso8601("2026-01-09T14:47:33.5-00:30"),
            Some(base + 1800.5)
        );
    }

    #[test]
    fn rejects_what_is_not_a_time() {
        for bad in [
            "",
            "yesterday",
            "2026-13-09T14:47:33",
            "2026-01-09T24:00:00",
            "2026-01-09T14:47",
            "2026-01-09T14:47:33.",
            "2026-01-09T14:47:33+1",
            "2026-01-09X14:47:33",
            "２０２６-01-09T14:47:33",
        ] {
            assert_eq!(parse_iso8601(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn formats_back_what_it_parses() {
        for t in [
            "1970-01-01T00:00:00",
            "2000-02-29T23:59:59",
            "2026-01-09T14:47:33",
        ] {
            assert_eq!(format_iso8601(parse_iso8601(t).unwrap()), t);
        }
    }
}
