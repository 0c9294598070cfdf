//! Enforcement of a CRD's `x-kubernetes-validations` CEL rules (including transition rules
//! with `oldSelf`) through `kube-cel`. Compiled schemas are cached per schema text. Only
//! evaluation lives here; when rules run is decided by `crd`.

use crate::resources::ResourceType;
use serde_json::Value;
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

thread_local! {
    static VALIDATOR: kube_cel::Validator = kube_cel::Validator::new();
    static COMPILED: RefCell<HashMap<u64, Rc<kube_cel::CompiledSchema>>> = RefCell::new(HashMap::new());
}

/// Evaluates the rules of `schema` on `obj` (and `old` for transition rules); pushes
/// `(field, message)` for each failure.
pub fn validate(
    rt: &ResourceType,
    schema: &Value,
    obj: &Value,
    old: Option<&Value>,
    errors: &mut Vec<(String, String)>,
) {
    let text = schema.to_string();
    if !text.contains("x-kubernetes-validations") {
        return;
    }
    let key = crate::util::fnv1a(text.as_bytes());
    let compiled = COMPILED.with(|c| {
        c.borrow_mut()
            .entry(key)
            .or_insert_with(|| Rc::new(kube_cel::compile_schema(schema)))
            .clone()
    });
    let root = kube_cel::RootContext {
        api_version: obj
            .get("apiVersion")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
        api_group: rt.group.clone(),
        kind: rt.kind.clone(),
    };
    let result =
        VALIDATOR.with(|v| v.validate_compiled_with_context(&compiled, obj, old, Some(&root)));
    if let Err(errs) = result {
        for e in errs.as_slice() {
            let field = if e.field_path.is_empty() {
                "<root>".to_string()
            } else {
                e.field_path.clone()
            };
            errors.push((field, format!("Invalid value: \"object\": {}", e.message)));
        }
    }
}
