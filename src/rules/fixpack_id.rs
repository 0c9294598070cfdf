//! Fix pack identifiers such as `de-28` or `de-28-7010`: parsing and display.
//! Which product line an id belongs to (and its default build) is the catalog's business.

use std::fmt;

/// A parsed fix pack id: letters, a number and an optional build, e.g. `de-28-7010`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FixPackId {
    pub prefix: String,
    pub number: u32,
    pub build: Option<String>,
}

/// Why a fix pack id could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "malformed fix pack id {id:?}: expected letters, a number and an optional build, like de-28 or de-28-7010"
)]
pub struct MalformedFixPackId {
    pub id: String,
}

impl FixPackId {
    pub fn parse(id: &str) -> Result<Self, MalformedFixPackId> {
        let bad = || MalformedFixPackId { id: id.to_string() };
        let mut parts = id.split('-');
        let prefix = parts.next().filter(|p| is_letters(p)).ok_or_else(bad)?;
        let number = parts
            .next()
            .filter(|n| is_digits(n, 4))
            .and_then(|n| n.parse::<u32>().ok())
            .ok_or_else(bad)?;
        let build = match parts.next() {
            None => None,
            Some(b) if is_digits(b, 8) => Some(b.to_string()),
            Some(_) => return Err(bad()),
        };
        if parts.next().is_some() {
            return Err(bad());
        }
        Ok(Self {
            prefix: prefix.to_string(),
            number,
            build,
        })
    }

    /// The id of another fix pack of the same line, written in this id's style.
    pub fn sibling(&self, number: u32) -> FixPackId {
        FixPackId {
            prefix: self.prefix.clone(),
            number,
            build: self.build.clone(),
        }
    }
}

impl fmt::Display for FixPackId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{:02}", self.prefix, self.number)?;
        if let Some(build) = &self.build {
            write!(f, "-{build}")?;
        }
        Ok(())
    }
}

fn is_letters(s: &str) -> bool {
    !s.is_empty() && s.len() <= 16 && s.bytes().all(|b| b.is_ascii_lowercase())
}

fn is_digits(s: &str, max_len: usize) -> bool {
    !s.is_empty() && s.len() <= max_len && s.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_short_and_long_forms() {
        let short = FixPackId::parse("de-28").unwrap();
        assert_eq!(
            (short.prefix.as_str(), short.number, short.build),
            ("de", 28, None)
        );
        let long = FixPackId::parse("dxp-5-7110").unwrap();
        assert_eq!(long.build.as_deref(), Some("7110"));
        assert_eq!(long.to_string(), "dxp-05-7110");
        assert_eq!(FixPackId::parse("de-8").unwrap().to_string(), "de-08");
    }

    #[test]
    fn rejects_malformed_ids() {
        for id in [
            "",
            "de",
            "de-",
            "-28",
            "de28",
            "DE-28",
            "de-28-",
            "de-x",
            "de-28-70a0",
            "de-28-7010-1",
            "de-12345",
            "d3-28",
            " de-28",
        ] {
            assert!(FixPackId::parse(id).is_err(), "{id:?} should be malformed");
        }
    }
}
