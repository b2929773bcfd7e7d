//! A small JSON Schema checker for tool arguments: `type`, `required`, `properties`, `additionalProperties`, `enum`, `items`, bounds; pure.
//!
//! It is deliberately partial: keywords it does not know (`$ref`, `allOf`, `if`, formats...) are
//! passed over, never guessed at, and no `$ref` is ever fetched. What it does check is enough to
//! turn a call with missing or mistyped arguments into an `isError` result before the tool runs.

use serde_json::Value;

/// Nesting beyond this is not descended into: bounds the work an argument object can cause.
const MAX_DEPTH: usize = 32;

/// Checks `value` against `schema`; the error names the argument path and the rule broken.
pub fn validate(schema: &Value, value: &Value) -> Result<(), String> {
    check(schema, value, "arguments", 0)
}

fn check(schema: &Value, value: &Value, path: &str, depth: usize) -> Result<(), String> {
    let Some(schema) = schema.as_object() else {
        return Ok(()); // `true` or a non-object schema: nothing to enforce.
    };
    if depth > MAX_DEPTH {
        return Ok(());
    }
    if let Some(t) = schema.get("type") {
        let ok = match t {
            Value::String(t) => is_type(value, t),
            Value::Array(ts) => ts
                .iter()
                .filter_map(Value::as_str)
                .any(|t| is_type(value, t)),
            _ => true,
        };
        if !ok {
            return Err(format!("{path} must be of type {}", type_name(t)));
        }
    }
    if let Some(Value::Array(options)) = schema.get("enum") {
        if !options.contains(value) {
            return Err(format!(
                "{path} must be one of {}",
                Value::Array(options.clone())
            ));
        }
    }
    if let Some(c) = schema.get("const") {
        if c != value {
            return Err(format!("{path} must equal {c}"));
        }
    }
    match value {
        Value::Object(obj) => {
            if let Some(Value::Array(required)) = schema.get("required") {
                for name in required.iter().filter_map(Value::as_str) {
                    if !obj.contains_key(name) {
                        return Err(format!("{path}.{name} is required"));
                    }
                }
            }
            let props = schema.get("properties").and_then(Value::as_object);
            for (key, v) in obj {
                match props.and_then(|p| p.get(key)) {
                    Some(sub) => check(sub, v, &format!("{path}.{key}"), depth + 1)?,
                    None => match schema.get("additionalProperties") {
                        Some(Value::Bool(false)) => {
                            return Err(format!("{path}.{key} is not an accepted argument"))
                        }
                        Some(sub @ Value::Object(_)) => {
                            check(sub, v, &format!("{path}.{key}"), depth + 1)?
                        }
                        _ => {}
                    },
                }
            }
        }
        Value::Array(items) => {
            if let Some(item_schema) = schema.get("items") {
                for (i, item) in items.iter().enumerate() {
                    check(item_schema, item, &format!("{path}[{i}]"), depth + 1)?;
                }
            }
            if let Some(min) = schema.get("minItems").and_then(Value::as_u64) {
                if (items.len() as u64) < min {
                    return Err(format!("{path} needs at least {min} items"));
                }
            }
            if let Some(max) = schema.get("maxItems").and_then(Value::as_u64) {
                if items.len() as u64 > max {
                    return Err(format!("{path} allows at most {max} items"));
                }
            }
        }
        Value::String(s) => {
            let len = s.chars().count() as u64;
            if let Some(min) = schema.get("minLength").and_then(Value::as_u64) {
                if len < min {
                    return Err(format!("{path} must be at least {min} characters"));
                }
            }
            if let Some(max) = schema.get("maxLength").and_then(Value::as_u64) {
                if len > max {
                    return Err(format!("{path} must be at most {max} characters"));
                }
            }
        }
        Value::Number(n) => {
            let x = n.as_f64().unwrap_or(f64::NAN);
            if let Some(min) = schema.get("minimum").and_then(Value::as_f64) {
                if x < min {
                    return Err(format!("{path} must be >= {min}"));
                }
            }
            if let Some(max) = schema.get("maximum").and_then(Value::as_f64) {
                if x > max {
                    return Err(format!("{path} must be <= {max}"));
                }
            }
        }
        _ => {}
    }
    Ok(())
}

fn is_type(value: &Value, t: &str) -> bool {
    match t {
        "object" => value.is_object(),
        "array" => value.is_array(),
        "string" => value.is_string(),
        "boolean" => value.is_boolean(),
        "null" => value.is_null(),
        "number" => value.is_number(),
        "integer" => match value {
            Value::Number(n) => {
                n.is_i64() || n.is_u64() || n.as_f64().is_some_and(|f| f.fract() == 0.0)
            }
            _ => false,
        },
        _ => true,
    }
}

fn type_name(t: &Value) -> String {
    match t {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn checks_required_types_and_extra_keys() {
        let schema = json!({
            "type":"object",
            "properties":{"n":{"type":"integer","minimum":1},"tags":{"type":"array","items":{"type":"string"}}},
            "required":["n"],
            "additionalProperties":false
        });
        assert!(validate(&schema, &json!({"n":2,"tags":["a"]})).is_ok());
        assert_eq!(
            validate(&schema, &json!({})).unwrap_err(),
            "arguments.n is required"
        );
        assert_eq!(
            validate(&schema, &json!({"n":"2"})).unwrap_err(),
            "arguments.n must be of type integer"
        );
        assert_eq!(
            validate(&schema, &json!({"n":0})).unwrap_err(),
            "arguments.n must be >= 1"
        );
        assert_eq!(
            validate(&schema, &json!({"n":1,"tags":[1]})).unwrap_err(),
            "arguments.tags[0] must be of type string"
        );
        assert_eq!(
            validate(&schema, &json!({"n":1,"x":1})).unwrap_err(),
            "arguments.x is not an accepted argument"
        );
    }

    #[test]
    fn passes_over_unknown_keywords() {
        let schema =
            json!({"type":"object","allOf":[{"required":["zzz"]}],"$ref":"https://evil.example/s"});
        assert!(validate(&schema, &json!({})).is_ok());
    }
}
