//! Digests for the dashboard's own files in its state directory: names that stay the same
//! for the same thing between servers, and checksums that catch a file cut short. Neither
//! stands against an adversary — the state directory is the dashboard's own.

/// FNV-1a of `text`, as sixteen hex digits: the same on every machine and version.
pub fn text(text: &str) -> String {
    let hash = text.bytes().fold(FNV_OFFSET, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(FNV_PRIME)
    });
    format!("{hash:016x}")
}

/// A file name for `label` as far as it is safe in one — ASCII letters, digits, `_` and
/// the characters of `also`, at most `max` of them — told apart by the digest of `key`.
pub fn file_name(label: &str, also: &str, max: usize, key: &str) -> String {
    let safe: String = label
        .chars()
        .map(
            |c| match c.is_ascii_alphanumeric() || c == '_' || also.contains(c) {
                true => c,
                false => '_',
            },
        )
        .take(max)
        .collect();
    format!("{safe}-{}", text(key))
}

/// A checksum of `bytes`, eight at a time (megabytes of a kept run are checked while
/// someone waits for a chart).
pub fn checksum(bytes: &[u8]) -> u64 {
    let mut chunks = bytes.chunks_exact(8);
    let mix = |h: u64, x: u64| (h ^ x).wrapping_mul(FNV_PRIME).rotate_left(29);
    let h = chunks.by_ref().fold(FNV_OFFSET, |h, c| {
        mix(h, u64::from_le_bytes(c.try_into().expect("8 bytes")))
    });
    chunks
        .remainder()
        .iter()
        .fold(mix(h, bytes.len() as u64), |h, b| mix(h, u64::from(*b)))
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_fnv_1a() {
        // The published FNV-1a 64 test vectors.
        assert_eq!(text(""), "cbf29ce484222325");
        assert_eq!(text("a"), "af63dc4c8601ec8c");
        assert_eq!(text("foobar"), "85944171f73967e8");
    }

    #[test]
    fn a_file_name_keeps_what_is_safe_and_tells_labels_apart() {
        assert_eq!(
            file_name("run/1 é", "", 60, "k"),
            format!("run_1__-{}", text("k"))
        );
        assert!(file_name("a.b-c", "-.", 60, "k").starts_with("a.b-c-"));
        assert!(file_name("a.b-c", "", 60, "k").starts_with("a_b_c-"));
        assert_eq!(
            file_name("abcdef", "", 3, "k"),
            format!("abc-{}", text("k"))
        );
        assert_ne!(
            file_name("a/b", "", 60, "a/b"),
            file_name("a_b", "", 60, "a_b")
        );
    }

    #[test]
    fn a_checksum_sees_a_changed_or_shortened_payload() {
        let bytes: Vec<u8> = (0..1000u32).map(|i| (i * 7) as u8).collect();
        let sum = checksum(&bytes);
        assert_eq!(sum, checksum(&bytes.clone()));
        let mut changed = bytes.clone();
        changed[500] ^= 1;
        assert_ne!(sum, checksum(&changed));
        assert_ne!(sum, checksum(&bytes[..999]));
        assert_ne!(checksum(&[0; 8]), checksum(&[0; 9]));
    }
}
