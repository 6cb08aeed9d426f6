//! The `Range` header of file downloads: one `bytes=` range, so an interrupted transfer
//! resumes where it stopped.

/// Parses a single `bytes=` range against `size`; `None` if unsatisfiable or malformed.
pub fn parse(value: &str, size: u64) -> Option<(u64, u64)> {
    let spec = value.strip_prefix("bytes=")?.trim();
    if spec.contains(',') || size == 0 {
        return None;
    }
    let (a, b) = spec.split_once('-')?;
    let (start, end) = match (a.trim(), b.trim()) {
        ("", suffix) => {
            let n: u64 = suffix.parse().ok()?;
            if n == 0 {
                return None;
            }
            (size.saturating_sub(n), size - 1)
        }
        (s, "") => (s.parse().ok()?, size - 1),
        (s, e) => (s.parse().ok()?, e.parse::<u64>().ok()?.min(size - 1)),
    };
    (start <= end && start < size).then_some((start, end))
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn ranges() {
        assert_eq!(parse("bytes=0-", 10), Some((0, 9)));
        assert_eq!(parse("bytes=4-", 10), Some((4, 9)));
        assert_eq!(parse("bytes=2-5", 10), Some((2, 5)));
        assert_eq!(parse("bytes=2-50", 10), Some((2, 9)));
        assert_eq!(parse("bytes=-3", 10), Some((7, 9)));
        assert_eq!(parse("bytes=10-", 10), None);
        assert_eq!(parse("bytes=5-2", 10), None);
        assert_eq!(parse("bytes=0-1,3-4", 10), None);
        assert_eq!(parse("items=0-1", 10), None);
    }
}
