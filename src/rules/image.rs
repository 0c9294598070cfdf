//! Container image references (`[registry/]path[:tag][@digest]`, the grammar of the
//! distribution project's reference package) and the vendor's Liferay DXP tag anatomy
//! `VERSION-RELEASE[-dIMAGE][-TIMESTAMP][-slim]` (`7.0.10-de-32`, `7.2.10-dxp-5`,
//! `7.4.13-u36-d4.1.9-20220803160915`). Parsing only: what a difference between two tags means
//! is decided in `infer`.

use std::fmt;

/// A parsed image reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRef {
    /// The repository as written, registry included when one is given (`liferay/dxp`,
    /// `registry.example:5000/liferay/dxp`).
    pub repository: String,
    pub tag: Option<String>,
    pub digest: Option<String>,
}

/// Why an image reference cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{image:?} is not a valid image reference: {reason}")]
pub struct InvalidImage {
    pub image: String,
    pub reason: &'static str,
}

impl ImageRef {
    pub fn parse(image: &str) -> Result<ImageRef, InvalidImage> {
        let bad = |reason| InvalidImage {
            image: image.to_string(),
            reason,
        };
        if image.is_empty() {
            return Err(bad("it is empty"));
        }
        if image.len() > 4096 {
            return Err(bad("it is longer than 4096 characters"));
        }
        let (name_and_tag, digest) = match image.split_once('@') {
            Some((n, d)) => (n, Some(d)),
            None => (image, None),
        };
        if let Some(d) = digest
            && !valid_digest(d)
        {
            return Err(bad(
                "the digest after @ must be ALGORITHM:HEX, like sha256: and 64 hex digits",
            ));
        }
        // A tag follows the last colon that comes after the last slash (a colon before it
        // belongs to a registry's port).
        let last_slash = name_and_tag.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match name_and_tag[last_slash..].rfind(':') {
            Some(i) => (
                &name_and_tag[..last_slash + i],
                Some(&name_and_tag[last_slash + i + 1..]),
            ),
            None => (name_and_tag, None),
        };
        if let Some(t) = tag
            && !valid_tag(t)
        {
            return Err(bad(
                "the tag must be 1 to 128 letters, digits, '_', '.' or '-', not starting with '.' or '-'",
            ));
        }
        if name.len() > 255 {
            return Err(bad("the repository name is longer than 255 characters"));
        }
        let mut components = name.split('/').collect::<Vec<_>>();
        if components.len() > 1 && is_registry(components[0]) {
            if !valid_registry(components[0]) {
                return Err(bad(
                    "the registry must be a host name with an optional :port",
                ));
            }
            components.remove(0);
        }
        if components.iter().any(|c| !valid_path_component(c)) {
            return Err(bad(
                "each part of the repository path must be lowercase letters and digits, separated by '.', '_', '__' or '-'",
            ));
        }
        Ok(ImageRef {
            repository: name.to_string(),
            tag: tag.map(str::to_string),
            digest: digest.map(str::to_string),
        })
    }

    /// The repository without Docker Hub's registry and `library/` prefix, so that
    /// `docker.io/liferay/dxp` and `liferay/dxp` compare equal.
    pub fn short_repository(&self) -> &str {
        let mut r = self.repository.as_str();
        for hub in ["docker.io/", "index.docker.io/", "registry-1.docker.io/"] {
            if let Some(rest) = r.strip_prefix(hub) {
                r = rest;
                break;
            }
        }
        r.strip_prefix("library/").unwrap_or(r)
    }
}

/// The first path component names a registry when it looks like a host.
fn is_registry(component: &str) -> bool {
    component.contains('.') || component.contains(':') || component == "localhost"
}

fn valid_registry(component: &str) -> bool {
    let (host, port) = match component.rsplit_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (component, None),
    };
    let host_ok = !host.is_empty()
        && host.split('.').all(|label| {
            !label.is_empty()
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        });
    let port_ok =
        port.is_none_or(|p| !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()));
    host_ok && port_ok
}

fn valid_path_component(c: &str) -> bool {
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let bytes = c.as_bytes();
    if bytes.is_empty() || !alnum(bytes[0]) || !alnum(bytes[bytes.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < bytes.len() {
        if alnum(bytes[i]) {
            i += 1;
            continue;
        }
        // A separator: '.', '_', '__' or a run of '-'.
        let start = i;
        match bytes[i] {
            b'.' => i += 1,
            b'_' => {
                i += 1;
                if i < bytes.len() && bytes[i] == b'_' {
                    i += 1;
                }
            }
            b'-' => {
                while i < bytes.len() && bytes[i] == b'-' {
                    i += 1;
                }
            }
            _ => return false,
        }
        if i == start || i >= bytes.len() || !alnum(bytes[i]) {
            return false;
        }
    }
    true
}

fn valid_tag(t: &str) -> bool {
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    !t.is_empty()
        && t.len() <= 128
        && word(t.as_bytes()[0])
        && t.bytes().all(|b| word(b) || b == b'.' || b == b'-')
}

fn valid_digest(d: &str) -> bool {
    let Some((algorithm, hex)) = d.split_once(':') else {
        return false;
    };
    let algorithm_ok = !algorithm.is_empty()
        && algorithm.split(['+', '.', '_', '-']).all(|part| {
            !part.is_empty()
                && part
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        });
    algorithm_ok && hex.len() >= 32 && hex.bytes().all(|b| b.is_ascii_hexdigit())
}

/// A Liferay DXP image tag, by the vendor's anatomy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DxpTag {
    /// The product version, e.g. `7.0.10` (numbers as written).
    pub version: Vec<String>,
    /// The release's letters, e.g. `de`, `dxp`, `u`, `sp`, `ga`.
    pub release_letters: String,
    /// Whether the release is written with a dash (`de-32`) or without (`u36`).
    pub release_dash: bool,
    /// The release number as written, e.g. `32`.
    pub release_number: String,
    /// The image's own version (the container's OS and scripts), e.g. `4.1.9` of `-d4.1.9`.
    pub image_version: Option<String>,
    /// The image's build timestamp, 14 digits.
    pub timestamp: Option<String>,
    /// The `-slim` variant.
    pub slim: bool,
}

impl DxpTag {
    /// Reads a tag; `None` when it does not follow the anatomy.
    pub fn parse(tag: &str) -> Option<DxpTag> {
        let mut parts = tag.split('-').peekable();
        let version: Vec<String> = parts.next()?.split('.').map(str::to_string).collect();
        if version.len() != 3 || !version.iter().all(|n| is_number(n, 4)) {
            return None;
        }
        let first = parts.next()?;
        let (release_letters, release_dash, release_number) = if is_letters(first) {
            let number = parts.next().filter(|n| is_number(n, 4))?;
            (first.to_string(), true, number.to_string())
        } else {
            let split = first.find(|c: char| c.is_ascii_digit())?;
            let (letters, number) = first.split_at(split);
            if !is_letters(letters) || !is_number(number, 4) {
                return None;
            }
            (letters.to_string(), false, number.to_string())
        };
        let mut tag_out = DxpTag {
            version,
            release_letters,
            release_dash,
            release_number,
            image_version: None,
            timestamp: None,
            slim: false,
        };
        for part in parts {
            if let Some(v) = part.strip_prefix('d')
                && tag_out.image_version.is_none()
                && tag_out.timestamp.is_none()
                && !tag_out.slim
                && !v.is_empty()
                && v.split('.').all(|n| is_number(n, 4))
            {
                tag_out.image_version = Some(v.to_string());
            } else if part.len() == 14
                && part.bytes().all(|b| b.is_ascii_digit())
                && tag_out.timestamp.is_none()
                && !tag_out.slim
            {
                tag_out.timestamp = Some(part.to_string());
            } else if part == "slim" && !tag_out.slim {
                tag_out.slim = true;
            } else {
                return None;
            }
        }
        Some(tag_out)
    }

    /// The fix pack id the release names within its product version: `de-32-7010` for
    /// `7.0.10-de-32`, `u-36-7413` for `7.4.13-u36`.
    pub fn fix_pack_id(&self) -> String {
        format!(
            "{}-{}-{}",
            self.release_letters,
            self.release_number,
            self.version.concat()
        )
    }

    /// `7.0` of `7.0.10`.
    pub fn major_minor(&self) -> (&str, &str) {
        (&self.version[0], &self.version[1])
    }

    /// The image variant: its own version, timestamp and slimness, as written.
    pub fn variant(&self) -> String {
        let mut out = String::new();
        if let Some(v) = &self.image_version {
            out.push_str(&format!("-d{v}"));
        }
        if let Some(t) = &self.timestamp {
            out.push_str(&format!("-{t}"));
        }
        if self.slim {
            out.push_str("-slim");
        }
        out
    }
}

impl fmt::Display for DxpTag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let dash = if self.release_dash { "-" } else { "" };
        write!(
            f,
            "{}-{}{dash}{}{}",
            self.version.join("."),
            self.release_letters,
            self.release_number,
            self.variant()
        )
    }
}

fn is_letters(s: &str) -> bool {
    !s.is_empty() && s.len() <= 16 && s.bytes().all(|b| b.is_ascii_lowercase())
}

fn is_number(s: &str, max_len: usize) -> bool {
    !s.is_empty() && s.len() <= max_len && s.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_vendor_tags() {
        let t = DxpTag::parse("7.0.10-de-32").unwrap();
        assert_eq!(t.fix_pack_id(), "de-32-7010");
        assert_eq!(t.variant(), "");
        let t = DxpTag::parse("7.2.10-dxp-5").unwrap();
        assert_eq!(t.fix_pack_id(), "dxp-5-7210");
        let t = DxpTag::parse("7.4.13-u36-d4.1.9-20220803160915").unwrap();
        assert_eq!(t.fix_pack_id(), "u-36-7413");
        assert_eq!(t.image_version.as_deref(), Some("4.1.9"));
        assert_eq!(t.timestamp.as_deref(), Some("20220803160915"));
        let t = DxpTag::parse("7.4.13-u92-slim").unwrap();
        assert!(t.slim);
        for tag in [
            "7.4.13-u36-d4.1.9-20220803160915",
            "7.0.10-de-32",
            "7.4.13-u92-slim",
        ] {
            assert_eq!(DxpTag::parse(tag).unwrap().to_string(), tag);
        }
    }

    #[test]
    fn other_tags_are_not_dxp_tags() {
        for tag in [
            "latest",
            "7.0.10",
            "7.0-de-32",
            "7.0.10-32",
            "7.0.10-de",
            "7.0.10-de-32-extra",
            "2024.q1.1",
            "7.0.10-DE-32",
            "7.0.10-de-32-slim-slim",
            "v7.0.10-de-32",
        ] {
            assert_eq!(DxpTag::parse(tag), None, "{tag}");
        }
    }

    #[test]
    fn image_references() {
        let r = ImageRef::parse("liferay/dxp:7.0.10-de-32").unwrap();
        assert_eq!(
            (r.repository.as_str(), r.tag.as_deref()),
            ("liferay/dxp", Some("7.0.10-de-32"))
        );
        let r = ImageRef::parse("registry.example:5000/liferay/dxp:7.0.10-de-32").unwrap();
        assert_eq!(r.repository, "registry.example:5000/liferay/dxp");
        assert_eq!(r.short_repository(), "registry.example:5000/liferay/dxp");
        let r = ImageRef::parse("docker.io/liferay/dxp").unwrap();
        assert_eq!(
            (r.short_repository(), r.tag.as_deref()),
            ("liferay/dxp", None)
        );
        let digest = format!("sha256:{}", "a".repeat(64));
        let r = ImageRef::parse(&format!("nginx@{digest}")).unwrap();
        assert_eq!(r.digest.as_deref(), Some(digest.as_str()));
        for bad in [
            "",
            "Liferay/DXP:1",
            "liferay/dxp:",
            "liferay//dxp",
            "liferay/dxp:-x",
            "liferay/dxp@sha256:12",
            "liferay/dxp:7.0 10",
            "-liferay/dxp",
            "liferay/dxp:a:b",
        ] {
            assert!(ImageRef::parse(bad).is_err(), "{bad:?}");
        }
    }
}
