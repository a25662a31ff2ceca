//! The server's local clock. The trainer writes its timestamps in local time without a zone;
//! read as UTC (as `analysis::time` reads every zone-less time), they compare with "now" only
//! when now is read the same way: local time, as if it were UTC.

#![allow(unsafe_code)]

/// Seconds the local time zone is ahead of UTC at this moment (0 where it cannot be told).
pub fn local_offset_seconds() -> i64 {
    #[cfg(unix)]
    {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as libc::time_t)
            .unwrap_or(0);
        // SAFETY: a zeroed `tm` is a valid value to be overwritten; both pointers are to
        // live locals, and `localtime_r` keeps no reference to either after returning.
        let mut tm: libc::tm = unsafe { std::mem::zeroed() };
        let filled = unsafe { !libc::localtime_r(&now, &mut tm).is_null() };
        if filled {
            return tm.tm_gmtoff;
        }
    }
    0
}

/// Now in seconds since the epoch: true UTC, and local time read as if it were UTC.
pub fn now() -> (f64, f64) {
    let utc = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0);
    (utc, utc + local_offset_seconds() as f64)
}

/// A timestamp that carries its zone (`Z`, `+02:00`) reads as true UTC; one without it is
/// the trainer's local time.
pub fn has_zone(timestamp: &str) -> bool {
    let t = timestamp.trim();
    t.ends_with(['Z', 'z']) || t.get(19..).is_some_and(|rest| rest.contains(['+', '-']))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zones_are_told_apart() {
        assert!(has_zone("2026-01-09T14:47:33Z"));
        assert!(has_zone("2026-01-09T14:47:33.5+02:00"));
        assert!(has_zone("2026-01-09T14:47:33-05:00"));
        assert!(!has_zone("2026-01-09T14:47:33.123456"));
        assert!(!has_zone("2026-01-09 14:47:33"));
        let (utc, local) = now();
        assert!((local - utc).abs() <= 14.0 * 3600.0);
    }
}
