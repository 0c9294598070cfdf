//! Conversion between the two APIs of Events: `events.k8s.io/v1` objects are stored as core
//! `v1` Events (as a real API server does), so that an event written by a controller through
//! one API is listed by `kubectl describe` through the other. Field mapping only.

use crate::resources::{ResKey, keys};
use serde_json::{Map, Value, json};

/// The table a type's objects are stored in.
pub fn storage_key(res: &ResKey) -> ResKey {
    if *res == *keys::EVENTS_V1 {
        keys::EVENTS.clone()
    } else {
        res.clone()
    }
}

fn copy(from: &Value, to: &mut Map<String, Value>, pairs: &[(&str, &str)]) {
    for (src, dst) in pairs {
        if let Some(v) = from.get(*src).filter(|v| !v.is_null()) {
            to.insert(dst.to_string(), v.clone());
        }
    }
}

/// An `events.k8s.io/v1` Event as a core `v1` Event.
pub fn event_to_core(v: &Value) -> Value {
    let mut out = Map::new();
    out.insert("apiVersion".into(), json!("v1"));
    out.insert("kind".into(), json!("Event"));
    copy(
        v,
        &mut out,
        &[
            ("metadata", "metadata"),
            ("regarding", "involvedObject"),
            ("related", "related"),
            ("note", "message"),
            ("reason", "reason"),
            ("type", "type"),
            ("action", "action"),
            ("eventTime", "eventTime"),
            ("series", "series"),
            ("reportingController", "reportingComponent"),
            ("reportingInstance", "reportingInstance"),
            ("deprecatedSource", "source"),
            ("deprecatedFirstTimestamp", "firstTimestamp"),
            ("deprecatedLastTimestamp", "lastTimestamp"),
            ("deprecatedCount", "count"),
        ],
    );
    // As the real API server converts: the core fields an events.k8s.io Event has no value
    // for (`count`, `source`, `firstTimestamp`, `lastTimestamp`) come only from its
    // `deprecated*` fields; a repeated Event says how often in `series`.
    Value::Object(out)
}

/// A core `v1` Event as an `events.k8s.io/v1` Event.
pub fn core_to_event(v: &Value) -> Value {
    let mut out = Map::new();
    out.insert("apiVersion".into(), json!("events.k8s.io/v1"));
    out.insert("kind".into(), json!("Event"));
    copy(
        v,
        &mut out,
        &[
            ("metadata", "metadata"),
            ("involvedObject", "regarding"),
            ("related", "related"),
            ("message", "note"),
            ("reason", "reason"),
            ("type", "type"),
            ("action", "action"),
            ("eventTime", "eventTime"),
            ("series", "series"),
            ("reportingComponent", "reportingController"),
            ("reportingInstance", "reportingInstance"),
            ("source", "deprecatedSource"),
            ("firstTimestamp", "deprecatedFirstTimestamp"),
            ("lastTimestamp", "deprecatedLastTimestamp"),
            ("count", "deprecatedCount"),
        ],
    );
    Value::Object(out)
}

/// Converts a stored object to the form of the requested type.
pub fn from_storage(res: &ResKey, v: &Value) -> Option<Value> {
    (*res == *keys::EVENTS_V1).then(|| core_to_event(v))
}

/// Converts an object of the requested type to its stored form.
pub fn to_storage(res: &ResKey, v: Value) -> Value {
    if *res == *keys::EVENTS_V1 {
        event_to_core(&v)
    } else {
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_round_trip() {
        let v1 = json!({"apiVersion": "events.k8s.io/v1", "kind": "Event", "metadata": {"name": "e"},
            "regarding": {"kind": "Pod", "name": "p"}, "note": "hello", "reason": "Started", "type": "Normal",
            "action": "Start", "eventTime": "2026-01-01T00:00:00.000000Z", "reportingController": "ctl", "reportingInstance": "i"});
        let core = event_to_core(&v1);
        assert_eq!(core["involvedObject"]["name"], "p");
        assert_eq!(core["message"], "hello");
        assert_eq!(core["reportingComponent"], "ctl");
        // The real server fills no deprecated field from the new ones.
        for k in ["source", "count", "firstTimestamp", "lastTimestamp"] {
            assert!(core.get(k).is_none(), "{k}: {core}");
        }
        let repeated = json!({"series": {"count": 3, "lastObservedTime": "2026-01-01T00:00:01.000000Z"}, "note": "x"});
        assert_eq!(event_to_core(&repeated)["series"]["count"], 3);
        let back = core_to_event(&core);
        for k in [
            "regarding",
            "note",
            "reason",
            "type",
            "action",
            "eventTime",
            "reportingController",
        ] {
            assert_eq!(back[k], v1[k], "{k}");
        }
    }
}
