//! List paging (`limit` and `continue`) as the API server does it: a page of at most `limit`
//! objects in key order, and a continue token (base64url of `{"v", "rv", "start"}`, the form
//! kube-apiserver uses) from which the next page is read at the resourceVersion of the first
//! page. Decoding and cutting pages only; the snapshot itself comes from the store, and an
//! expired token's 410 from there.

use crate::error::ApiError;
use crate::util;
use serde_json::{Value, json};
use std::sync::Arc;

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

fn encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..=chunk.len() {
            out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

fn decode(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in s.trim_end_matches('=').bytes() {
        let v = match c {
            b'+' => 62,
            b'/' => 63,
            _ => ALPHABET.iter().position(|a| *a == c)? as u32,
        };
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

/// Where a continued list resumes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Continue {
    /// The resourceVersion of the first page.
    pub rv: u64,
    /// The key (`namespace/name`) of the last object already returned.
    pub after: String,
}

impl Continue {
    /// The token for this position.
    pub fn token(&self) -> String {
        let v =
            json!({"v": "meta.k8s.io/v1", "rv": self.rv, "start": format!("{}\u{0}", self.after)});
        encode(v.to_string().as_bytes())
    }

    /// Decodes a token; 400 when it is not one of ours.
    pub fn parse(token: &str) -> Result<Continue, ApiError> {
        let bad = || ApiError::bad_request(format!("continue key is not valid: {token}"));
        let v: Value = decode(token)
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or_else(bad)?;
        if v["v"] != "meta.k8s.io/v1" {
            return Err(bad());
        }
        let rv = v["rv"].as_u64().ok_or_else(bad)?;
        let start = v["start"].as_str().ok_or_else(bad)?;
        Ok(Continue {
            rv,
            after: start.strip_suffix('\u{0}').unwrap_or(start).to_string(),
        })
    }
}

/// The key objects are listed in.
pub fn key_of(obj: &Value) -> String {
    format!("{}/{}", util::namespace(obj), util::name(obj))
}

/// One page: its objects, the token of the next page, and how many objects remain.
pub struct Page {
    /// The objects of this page.
    pub items: Vec<Arc<Value>>,
    /// The token of the next page, when there is one.
    pub next: Option<String>,
    /// The number of selected objects after this page.
    pub remaining: usize,
}

/// Cuts the page after `after` (exclusive) of at most `limit` objects (0: all) from `items`
/// (in key order, already filtered), read at resourceVersion `rv`.
pub fn page(items: Vec<Arc<Value>>, after: Option<&str>, limit: usize, rv: u64) -> Page {
    // Keys compare as (namespace, name), the order of the store's tables.
    let split = |k: &str| -> (String, String) {
        let (ns, name) = k.split_once('/').unwrap_or(("", k));
        (ns.to_string(), name.to_string())
    };
    let mut rest: Vec<Arc<Value>> = match after.map(split) {
        Some(a) => items
            .into_iter()
            .filter(|o| split(&key_of(o)) > a)
            .collect(),
        None => items,
    };
    if limit == 0 || rest.len() <= limit {
        return Page {
            items: rest,
            next: None,
            remaining: 0,
        };
    }
    let tail = rest.split_off(limit);
    let after = key_of(rest.last().expect("limit > 0"));
    Page {
        next: Some(Continue { rv, after }.token()),
        remaining: tail.len(),
        items: rest,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip() {
        for after in ["", "default/a", "ns/with-long-name-0123456789"] {
            let c = Continue {
                rv: 12345,
                after: after.into(),
            };
            assert_eq!(Continue::parse(&c.token()).unwrap(), c);
        }
        assert!(Continue::parse("not a token").is_err());
        assert_eq!(decode(&encode(b"hello!?")).unwrap(), b"hello!?");
    }

    #[test]
    fn pages_follow_key_order() {
        let objs: Vec<Arc<Value>> = ["a", "b", "c"]
            .iter()
            .map(|n| Arc::new(json!({"metadata": {"name": n, "namespace": "d"}})))
            .collect();
        let p = page(objs.clone(), None, 2, 7);
        assert_eq!(p.items.len(), 2);
        assert_eq!(p.remaining, 1);
        let c = Continue::parse(&p.next.unwrap()).unwrap();
        assert_eq!(
            c,
            Continue {
                rv: 7,
                after: "d/b".into()
            }
        );
        let p = page(objs, Some(&c.after), 2, 7);
        assert_eq!(util::name(&p.items[0]), "c");
        assert!(p.next.is_none());
        // Namespace first: `a-b/y` comes after `a/x`, as in the store.
        let objs: Vec<Arc<Value>> = [("a", "x"), ("a-b", "y")]
            .iter()
            .map(|(ns, n)| Arc::new(json!({"metadata": {"name": n, "namespace": ns}})))
            .collect();
        let p = page(objs, Some("a/x"), 5, 7);
        assert_eq!(util::name(&p.items[0]), "y");
    }
}
