//! Java version strings (`1.8.0_292`, `8u292`, `8`, `11.0.12`, `17`, `21.0.1+12`) reduced to
//! their major version. Nothing else about Java is decided here.

/// The major version of a Java version string, or `None` when it is not one.
pub fn major_version(version: &str) -> Option<u32> {
    let (major_digits, rest) = match version.strip_prefix("1.") {
        // Legacy scheme: 1.<major>[.<minor>[_<update>]]
        Some(legacy) => split_digits(legacy),
        None => split_digits(version),
    };
    let major: u32 = major_digits.parse().ok().filter(|m| *m > 0)?;
    if major_digits.len() > 3 || !valid_suffix(rest) {
        return None;
    }
    Some(major)
}

fn split_digits(s: &str) -> (&str, &str) {
    let end = s
        .bytes()
        .position(|b| !b.is_ascii_digit())
        .unwrap_or(s.len());
    s.split_at(end)
}

/// What may follow the major number: `u<update>` or `.<n>` groups, then `_<update>`, then a
/// `+build` or `-qualifier` made of letters, digits and dots.
fn valid_suffix(mut rest: &str) -> bool {
    if let Some(update) = rest.strip_prefix('u') {
        let (digits, tail) = split_digits(update);
        if digits.is_empty() {
            return false;
        }
        rest = tail;
    } else {
        while let Some(group) = rest.strip_prefix('.') {
            let (digits, tail) = split_digits(group);
            if digits.is_empty() {
                return false;
            }
            rest = tail;
        }
        if let Some(update) = rest.strip_prefix('_') {
            let (digits, tail) = split_digits(update);
            if digits.is_empty() {
                return false;
            }
            rest = tail;
        }
    }
    match rest.as_bytes().first() {
        None => true,
        Some(b'+' | b'-') => {
            rest.len() > 1
                && rest[1..]
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-' || b == b'+')
        }
        Some(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::major_version;

    #[test]
    fn reads_every_documented_form() {
        let cases = [
            ("1.8.0_292", 8),
            ("8u292", 8),
            ("8", 8),
            ("1.8", 8),
            ("11.0.12", 11),
            ("17", 17),
            ("21.0.1+12", 21),
            ("17.0.2-ea", 17),
            ("1.7.0_80", 7),
            ("11.0.12+7-LTS", 11),
        ];
        for (input, major) in cases {
            assert_eq!(major_version(input), Some(major), "{input}");
        }
    }

    #[test]
    fn rejects_what_is_not_a_version() {
        for input in [
            "", "eleven", "v11", "11.", "11..2", "8u", "1.", "0", "11 ", " 11", "11.0.12+", "11_",
            "java11", "1234",
        ] {
            assert_eq!(major_version(input), None, "{input:?}");
        }
    }
}
