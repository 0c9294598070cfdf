//! The names the operator derives from others (green's workload from the target's, a surge
//! pod from the target's and the plan's, a twin Service from a Service's, a check's Job, a
//! ReplicaSet for a pending template): `<base>-<suffix>` when that is a valid name of its kind,
//! else the base cut short with a hash of the full name, so that two long names never share a
//! derived one. Pure. It does not say which rule a kind's names follow (the caller passes it),
//! nor check the names the operator copies unchanged (the CRD's schema does that).

/// What a derived name must be, as the API server validates the kind it names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// A DNS-1123 subdomain (lowercase letters, digits, `-` and `.`, each dot-separated part
    /// beginning and ending with a letter or digit) of at most this many characters.
    Subdomain(usize),
    /// A DNS-1123 label (lowercase letters, digits and `-`, beginning and ending with a
    /// letter or digit) of at most this many characters.
    Label(usize),
    /// A DNS-1035 label of at most 63 characters: a DNS-1123 label that begins with a letter
    /// (a Service's name).
    Dns1035,
}

impl Rule {
    /// The longest name the rule allows.
    pub fn max(self) -> usize {
        match self {
            Rule::Subdomain(max) | Rule::Label(max) => max,
            Rule::Dns1035 => 63,
        }
    }

    fn dots(self) -> bool {
        matches!(self, Rule::Subdomain(_))
    }

    /// True when `name` is valid under the rule.
    pub fn allows(self, name: &str) -> bool {
        let starts_right = match self {
            Rule::Dns1035 => name.starts_with(|c: char| c.is_ascii_lowercase()),
            _ => true,
        };
        let part_ok = |part: &str| {
            let alnum = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
            part.starts_with(alnum)
                && part.ends_with(alnum)
                && part.chars().all(|c| alnum(c) || c == '-')
        };
        let parts_ok = match self.dots() {
            true => name.split('.').all(part_ok),
            false => part_ok(name),
        };
        name.len() <= self.max() && starts_right && parts_ok
    }
}

/// Length of the hash in a cut name (hex digits of a 32-bit hash).
const HASH_LEN: usize = 8;

/// The name `<base>-<suffix>` when `rule` allows it; else `base`, made valid and cut to fit,
/// then `-<8 hex digits of a hash of the full name>-<suffix>`. Stable (the same inputs give
/// the same name on every build and platform), never ending in `-` or `.`, always allowed by
/// `rule`. A suffix too long to leave room for the hash is cut too. Limits under 16 are not
/// supported.
pub fn derive(base: &str, suffix: &str, rule: Rule) -> String {
    let plain = format!("{base}-{suffix}");
    if rule.allows(&plain) {
        return plain;
    }
    let hash = format!("{:08x}", fnv1a(&[&plain]));
    let max = rule.max();
    debug_assert!(max >= 16, "a limit of {max} leaves no room for a hash");
    // The tail is `-<hash>-<suffix>`, leaving at least one character of the base.
    let mut tail = sanitize(suffix, rule);
    let room_for_suffix = max.saturating_sub(1 + 1 + HASH_LEN + 1);
    tail.truncate(room_for_suffix);
    let tail = tail.trim_end_matches(['-', '.']);
    let tail = match tail.is_empty() {
        true => format!("-{hash}"),
        false => format!("-{hash}-{tail}"),
    };
    let mut head = sanitize(base, rule);
    if rule == Rule::Dns1035 {
        head = head
            .trim_start_matches(|c: char| !c.is_ascii_lowercase())
            .to_string();
    }
    head.truncate(max.saturating_sub(tail.len()));
    let mut head = head.trim_end_matches(['-', '.']).to_string();
    if head.is_empty() {
        head.push('x');
    }
    format!("{head}{tail}")
}

/// `s` in the characters `rule` allows: lowercase, anything else a `-`, a dot kept only
/// between two letters or digits (and only in a subdomain), beginning with a letter or a
/// digit. ASCII, so that it can be cut at any byte.
fn sanitize(s: &str, rule: Rule) -> String {
    let alnum = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
    let mapped: Vec<char> = s
        .chars()
        .map(|c| c.to_ascii_lowercase())
        .map(|c| match c {
            c if alnum(c) => c,
            '.' if rule.dots() => '.',
            _ => '-',
        })
        .collect();
    let fixed: String = mapped
        .iter()
        .enumerate()
        .map(|(i, &c)| {
            let between =
                i > 0 && alnum(mapped[i - 1]) && mapped.get(i + 1).copied().is_some_and(alnum);
            if c == '.' && !between { '-' } else { c }
        })
        .collect();
    fixed.trim_start_matches(|c: char| !alnum(c)).to_string()
}

/// A small stable hash (FNV-1a, 32 bits) of the parts, each ended by a NUL.
pub fn fnv1a(parts: &[&str]) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for part in parts {
        for b in part.bytes().chain([0]) {
            h ^= u32::from(b);
            h = h.wrapping_mul(0x0100_0193);
        }
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    const RULES: [Rule; 4] = [
        Rule::Subdomain(253),
        Rule::Subdomain(63),
        Rule::Label(52),
        Rule::Dns1035,
    ];

    #[test]
    fn a_name_that_fits_is_left_as_it_is() {
        assert_eq!(
            derive("liferay", "green", Rule::Subdomain(242)),
            "liferay-green"
        );
        assert_eq!(
            derive("liferay-headless", "green", Rule::Dns1035),
            "liferay-headless-green"
        );
        assert_eq!(
            derive("liferay", "surge-p1", Rule::Subdomain(253)),
            "liferay-surge-p1"
        );
        assert_eq!(
            derive("portal.v2", "green", Rule::Subdomain(253)),
            "portal.v2-green"
        );
        // Exactly at the limit still fits.
        let base = "a".repeat(57);
        assert_eq!(
            derive(&base, "green", Rule::Dns1035),
            format!("{base}-green")
        );
    }

    #[test]
    fn a_long_name_is_cut_to_the_limit_with_a_hash_and_keeps_its_suffix() {
        for rule in RULES {
            let base = format!("liferay-{}", "x".repeat(300));
            let name = derive(&base, "green", rule);
            assert!(rule.allows(&name), "{rule:?}: {name}");
            assert_eq!(name.len(), rule.max(), "{rule:?}: {name}");
            assert!(name.starts_with("liferay-x"), "{name}");
            assert!(name.ends_with("-green"), "{name}");
            let hash = &name[name.len() - "-green".len() - HASH_LEN..][..HASH_LEN];
            assert!(hash.chars().all(|c| c.is_ascii_hexdigit()), "{name}");
            // Stable.
            assert_eq!(name, derive(&base, "green", rule));
        }
    }

    #[test]
    fn two_long_names_that_share_a_prefix_stay_apart() {
        for rule in RULES {
            let a = format!("{}a", "n".repeat(260));
            let b = format!("{}b", "n".repeat(260));
            assert_ne!(derive(&a, "green", rule), derive(&b, "green", rule));
            // And the same base with two suffixes.
            assert_ne!(derive(&a, "surge-p1", rule), derive(&a, "surge-p2", rule));
        }
    }

    #[test]
    fn a_cut_never_ends_in_a_dash_or_a_dot() {
        for rule in RULES {
            for len in 40..270 {
                for filler in ["a-", "a.", "-", "ab.c-"] {
                    let base: String = filler.chars().cycle().take(len).collect();
                    let name = derive(&base, "green", rule);
                    assert!(rule.allows(&name), "{rule:?} {len} {filler:?}: {name}");
                    assert!(!name.contains("-."), "{name}");
                    assert!(!name.contains(".-"), "{name}");
                }
            }
        }
    }

    #[test]
    fn what_a_rule_does_not_allow_is_made_valid() {
        let name = derive("Liferay_Portal", "green", Rule::Dns1035);
        assert!(Rule::Dns1035.allows(&name), "{name}");
        assert!(name.starts_with("liferay-portal-"), "{name}");
        // A dot is not allowed in a label; a leading digit not in a Service's name.
        let name = derive("1.liferay", "green", Rule::Dns1035);
        assert!(Rule::Dns1035.allows(&name), "{name}");
        let name = derive("portal.v2", "green", Rule::Label(52));
        assert!(Rule::Label(52).allows(&name), "{name}");
        // A suffix longer than the limit is cut, the hash kept.
        let name = derive("liferay", &"s".repeat(100), Rule::Label(52));
        assert!(Rule::Label(52).allows(&name), "{name}");
        assert!(name.starts_with("l"), "{name}");
        assert_ne!(name, derive("liferay", &"s".repeat(101), Rule::Label(52)));
    }

    #[test]
    fn the_rules_say_what_the_api_server_says() {
        assert!(Rule::Subdomain(253).allows("a.b-c"));
        assert!(!Rule::Subdomain(253).allows("a..b"));
        assert!(!Rule::Subdomain(253).allows("a.-b"));
        assert!(!Rule::Subdomain(253).allows("a-"));
        assert!(!Rule::Subdomain(253).allows(&"a".repeat(254)));
        assert!(!Rule::Label(63).allows("a.b"));
        assert!(Rule::Label(63).allows("1a"));
        assert!(!Rule::Dns1035.allows("1a"));
        assert!(!Rule::Dns1035.allows(&"a".repeat(64)));
        assert!(!Rule::Dns1035.allows(""));
    }
}
