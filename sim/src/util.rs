//! Small helpers shared by the whole crate: timestamps, identifiers and access to the common
//! fields of objects kept as JSON. No Kubernetes semantics live here.

use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};

/// The current time as an RFC 3339 timestamp with millisecond precision.
pub fn now_ts() -> String {
    fmt_ts(jiff::Timestamp::now())
}

/// A timestamp formatted the way this server writes them.
pub fn fmt_ts(t: jiff::Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// Parses an RFC 3339 timestamp.
pub fn parse_ts(s: &str) -> Option<jiff::Timestamp> {
    s.parse().ok()
}

/// Milliseconds elapsed since the RFC 3339 timestamp `s` (0 when in the future or unparsable).
pub fn millis_since(s: &str) -> u64 {
    parse_ts(s)
        .map(|t| {
            let d = jiff::Timestamp::now().as_millisecond() - t.as_millisecond();
            d.max(0) as u64
        })
        .unwrap_or(0)
}

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A process-unique, random-looking 64-bit number (splitmix64 over a counter and the clock).
pub fn unique_u64() -> u64 {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let seed = jiff::Timestamp::now().as_nanosecond() as u64;
    splitmix64(seed ^ n.wrapping_mul(0x9E37_79B9_7F4A_7C15))
}

/// One step of the splitmix64 generator.
pub fn splitmix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A UUID-shaped unique identifier.
pub fn new_uid() -> String {
    let a = unique_u64();
    let b = unique_u64();
    format!(
        "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0xfff,
        b >> 52,
        b & 0xffff_ffff_ffff
    )
}

const SAFE_ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

/// `n` characters from the alphabet Kubernetes uses for generated names, derived from `x`.
pub fn safe_encode(mut x: u64, n: usize) -> String {
    let mut s = String::with_capacity(n);
    for _ in 0..n {
        s.push(SAFE_ALPHABET[(x % SAFE_ALPHABET.len() as u64) as usize] as char);
        x /= SAFE_ALPHABET.len() as u64;
        if x == 0 {
            x = splitmix64(s.len() as u64);
        }
    }
    s
}

/// A random suffix for generated names (5 characters).
pub fn random_suffix() -> String {
    safe_encode(unique_u64(), 5)
}

/// FNV-1a 64-bit hash.
pub fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= *b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// `metadata.name` of an object ("" when missing).
pub fn name(obj: &Value) -> &str {
    obj.pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("")
}

/// `metadata.namespace` of an object ("" when missing).
pub fn namespace(obj: &Value) -> &str {
    obj.pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .unwrap_or("")
}

/// `metadata.uid` of an object ("" when missing).
pub fn uid(obj: &Value) -> &str {
    obj.pointer("/metadata/uid")
        .and_then(Value::as_str)
        .unwrap_or("")
}

/// A string field at a JSON pointer.
pub fn str_at<'a>(obj: &'a Value, ptr: &str) -> Option<&'a str> {
    obj.pointer(ptr).and_then(Value::as_str)
}

/// An integer field at a JSON pointer.
pub fn i64_at(obj: &Value, ptr: &str) -> Option<i64> {
    obj.pointer(ptr).and_then(Value::as_i64)
}

/// `metadata.labels` as an ordered map.
pub fn labels(obj: &Value) -> BTreeMap<String, String> {
    string_map(obj.pointer("/metadata/labels"))
}

/// An object of strings as an ordered map (non-strings are skipped).
pub fn string_map(v: Option<&Value>) -> BTreeMap<String, String> {
    v.and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

/// An annotation of an object.
pub fn annotation<'a>(obj: &'a Value, key: &str) -> Option<&'a str> {
    obj.pointer("/metadata/annotations")
        .and_then(|a| a.get(key))
        .and_then(Value::as_str)
}

/// The object at `key` in `parent`, created empty if missing or not an object.
pub fn obj_mut<'a>(parent: &'a mut Value, key: &str) -> &'a mut Map<String, Value> {
    if !parent.is_object() {
        *parent = Value::Object(Map::new());
    }
    let map = parent.as_object_mut().expect("just made an object");
    let entry = map
        .entry(key.to_string())
        .or_insert_with(|| Value::Object(Map::new()));
    if !entry.is_object() {
        *entry = Value::Object(Map::new());
    }
    entry.as_object_mut().expect("just made an object")
}

/// `metadata` of an object as a mutable map.
pub fn meta_mut(obj: &mut Value) -> &mut Map<String, Value> {
    obj_mut(obj, "metadata")
}

/// Whether the object carries a deletionTimestamp.
pub fn is_terminating(obj: &Value) -> bool {
    obj.pointer("/metadata/deletionTimestamp")
        .is_some_and(|v| !v.is_null())
}

/// The owner references of an object.
pub fn owner_refs(obj: &Value) -> &[Value] {
    obj.pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

/// The uid of the controlling owner of an object, if any.
pub fn controller_uid(obj: &Value) -> Option<&str> {
    owner_refs(obj)
        .iter()
        .find(|r| {
            r.get("controller")
                .and_then(Value::as_bool)
                .unwrap_or(false)
        })
        .and_then(|r| r.get("uid"))
        .and_then(Value::as_str)
}

/// An owner reference pointing at `owner` and marking it as the controller.
pub fn controller_ref(owner: &Value) -> Value {
    serde_json::json!({
        "apiVersion": owner.get("apiVersion").cloned().unwrap_or(Value::Null),
        "kind": owner.get("kind").cloned().unwrap_or(Value::Null),
        "name": name(owner),
        "uid": uid(owner),
        "controller": true,
        "blockOwnerDeletion": true,
    })
}

/// Parses an int-or-percent value (`2`, `"25%"`) against a total; percentages round up when
/// `round_up`, down otherwise.
pub fn int_or_percent(v: Option<&Value>, total: i64, round_up: bool, default: i64) -> i64 {
    match v {
        Some(Value::Number(n)) => n.as_i64().unwrap_or(default),
        Some(Value::String(s)) => {
            if let Some(p) = s.strip_suffix('%') {
                let p: i64 = p.trim().parse().unwrap_or(0);
                if round_up {
                    (p * total + 99) / 100
                } else {
                    p * total / 100
                }
            } else {
                s.parse().unwrap_or(default)
            }
        }
        _ => default,
    }
}
