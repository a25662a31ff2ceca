//! Numbers as a person reads them on a dashboard card.

/// `1234567` → `1,234,567`.
pub fn thousands(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3 + 1);
    if n < 0 {
        out.push('-');
    }
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Token counts the way ML papers write them: `950`, `12.3K`, `4.56M`, `1.23B`, `2.1T`.
pub fn tokens(n: f64) -> String {
    if !n.is_finite() {
        return "—".into();
    }
    let a = n.abs();
    let (value, unit) = match a {
        _ if a >= 1e12 => (n / 1e12, "T"),
        _ if a >= 1e9 => (n / 1e9, "B"),
        _ if a >= 1e6 => (n / 1e6, "M"),
        _ if a >= 1e3 => (n / 1e3, "K"),
        _ => return format!("{n:.0}"),
    };
    format!("{}{unit}", three_figures(value))
}

fn three_figures(v: f64) -> String {
    match v.abs() {
        a if a >= 100.0 => format!("{v:.0}"),
        a if a >= 10.0 => format!("{v:.1}"),
        _ => format!("{v:.2}"),
    }
}

/// A loss with four decimals; `NaN`/`Inf` spelled out, `—` when there is none.
pub fn loss(v: Option<f64>) -> String {
    match v {
        Some(x) if x.is_nan() => "NaN".into(),
        Some(x) if x.is_infinite() => if x > 0.0 { "Inf" } else { "-Inf" }.into(),
        Some(x) => format!("{x:.4}"),
        None => "—".into(),
    }
}

/// Any metric compactly: scientific for tiny values such as learning rates.
pub fn metric(v: Option<f64>) -> String {
    match v {
        Some(x) if !x.is_finite() => loss(Some(x)),
        Some(0.0) => "0".into(),
        Some(x) if x.abs() < 1e-2 || x.abs() >= 1e6 => format!("{x:.2e}"),
        Some(x) => format!("{x:.4}")
            .trim_end_matches('0')
            .trim_end_matches('.')
            .to_string(),
        None => "—".into(),
    }
}

/// `3725` → `1h 2m`; `90061` → `1d 1h`; `42` → `42s`.
pub fn duration(seconds: f64) -> String {
    if !seconds.is_finite() || seconds < 0.0 {
        return "—".into();
    }
    let s = seconds as u64;
    let (d, h, m) = (s / 86_400, s % 86_400 / 3600, s % 3600 / 60);
    match () {
        _ if d > 0 => format!("{d}d {h}h"),
        _ if h > 0 => format!("{h}h {m}m"),
        _ if m > 0 => format!("{m}m {}s", s % 60),
        _ => format!("{s}s"),
    }
}

/// A trainer timestamp compactly, in UTC: `01-09 18:14:27`; text that is not a time is
/// shown as written.
pub fn short_time(text: &str) -> String {
    match super::time::parse_iso8601(text) {
        Some(t) => super::time::format_iso8601(t)[5..].replace('T', " "),
        None => text.to_string(),
    }
}

/// File sizes: `512 B`, `3.4 MB`, `1.20 GB`.
pub fn bytes(n: u64) -> String {
    let f = n as f64;
    match n {
        _ if f >= 1e9 => format!("{} GB", three_figures(f / 1e9)),
        _ if f >= 1e6 => format!("{} MB", three_figures(f / 1e6)),
        _ if f >= 1e3 => format!("{} KB", three_figures(f / 1e3)),
        _ => format!("{n} B"),
    }
}

/// Names in one line: `a, b, c`, or the first `most` of them and `… and 4 more`.
pub fn listed<'a>(names: impl IntoIterator<Item = &'a str>, most: usize) -> String {
    let names: Vec<&str> = names.into_iter().collect();
    let shown = names[..names.len().min(most)].join(", ");
    match names.len().saturating_sub(most) {
        0 => shown,
        more => format!("{shown} … and {more} more"),
    }
}

/// Percent-encodes one URL path segment. Run ids may hold spaces, `/`, `?` or any unicode,
/// and each must stay one segment of `/run/{run_id}`.
pub fn path_segment(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Reverses [`path_segment`]; malformed escapes are kept as written rather than rejected.
pub fn decode_path_segment(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_list_of_names_stays_one_line() {
        assert_eq!(listed(["lr"], 3), "lr");
        assert_eq!(listed(["a", "b", "c"], 3), "a, b, c");
        assert_eq!(listed(["a", "b", "c", "d", "e"], 2), "a, b … and 3 more");
        assert_eq!(listed([], 3), "");
    }

    #[test]
    fn numbers_read_like_a_dashboard() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(thousands(-1000), "-1,000");
        assert_eq!(tokens(950.0), "950");
        assert_eq!(tokens(12_345.0), "12.3K");
        assert_eq!(tokens(1_230_000_000.0), "1.23B");
        assert_eq!(loss(Some(2.345_67)), "2.3457");
        assert_eq!(loss(Some(f64::NAN)), "NaN");
        assert_eq!(loss(Some(f64::INFINITY)), "Inf");
        assert_eq!(loss(None), "—");
        assert_eq!(metric(Some(3e-5)), "3.00e-5");
        assert_eq!(metric(Some(0.5)), "0.5");
        assert_eq!(duration(42.0), "42s");
        assert_eq!(duration(3725.0), "1h 2m");
        assert_eq!(duration(90_061.0), "1d 1h");
        assert_eq!(bytes(3_400_000), "3.40 MB");
        assert_eq!(short_time("2026-01-09T18:14:27+00:00"), "01-09 18:14:27");
        assert_eq!(short_time("2026-01-09T19:14:27.5+01:00"), "01-09 18:14:27");
        assert_eq!(short_time("soon"), "soon");
    }

    #[test]
    fn run_ids_survive_the_url() {
        for id in ["500m_20260109_144733", "a b/c?d#e%f", "модель 1", "", "%zz"] {
            let encoded = path_segment(id);
            assert!(!encoded.contains(['/', '?', '#', ' ']), "{encoded}");
            assert_eq!(decode_path_segment(&encoded), id);
        }
        assert_eq!(decode_path_segment("%zz%4"), "%zz%4");
    }
}
