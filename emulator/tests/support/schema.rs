//! A small JSON-schema check against the spec extract in tests/data: property names (all present,
//! none extra), types, nullability, enums, patterns, lengths and the spec's formats.

use regex::Regex;
use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc2822;

/// The spec extract (an unchanged copy of Twilio's OpenAPI, MIT).
pub fn spec() -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/data/twilio-oai/messages_v2010.json"
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

const LIST: &str = "/2010-04-01/Accounts/{AccountSid}/Messages.json";
const ONE: &str = "/2010-04-01/Accounts/{AccountSid}/Messages/{Sid}.json";
const MEDIA_LIST: &str = "/2010-04-01/Accounts/{AccountSid}/Messages/{MessageSid}/Media.json";
const MEDIA: &str = "/2010-04-01/Accounts/{AccountSid}/Messages/{MessageSid}/Media/{Sid}.json";
const FEEDBACK: &str = "/2010-04-01/Accounts/{AccountSid}/Messages/{MessageSid}/Feedback.json";

/// The response schema of an operation.
pub fn response_schema(spec: &Value, path: &str, method: &str, status: &str) -> Value {
    spec["paths"][path][method]["responses"][status]["content"]["application/json"]["schema"]
        .clone()
}

pub fn create_schema(spec: &Value) -> Value {
    response_schema(spec, LIST, "post", "201")
}
pub fn list_schema(spec: &Value) -> Value {
    response_schema(spec, LIST, "get", "200")
}
pub fn fetch_schema(spec: &Value) -> Value {
    response_schema(spec, ONE, "get", "200")
}
pub fn update_schema(spec: &Value) -> Value {
    response_schema(spec, ONE, "post", "200")
}
pub fn media_list_schema(spec: &Value) -> Value {
    response_schema(spec, MEDIA_LIST, "get", "200")
}
pub fn media_schema(spec: &Value) -> Value {
    response_schema(spec, MEDIA, "get", "200")
}
pub fn feedback_schema(spec: &Value) -> Value {
    response_schema(spec, FEEDBACK, "post", "200")
}
/// Whether the spec lists a response status for an operation.
pub fn has_response(spec: &Value, path: &str, method: &str, status: &str) -> bool {
    !spec["paths"][path][method]["responses"][status].is_null()
}
pub const MEDIA_PATH: &str = MEDIA;

fn resolve<'a>(spec: &'a Value, schema: &'a Value) -> &'a Value {
    match schema.get("$ref").and_then(Value::as_str) {
        Some(r) => {
            let name = r.trim_start_matches("#/components/schemas/");
            let target = &spec["components"]["schemas"][name];
            assert!(!target.is_null(), "unresolved $ref {r}");
            resolve(spec, target)
        }
        None => schema,
    }
}

fn check_format(format: &str, s: &str, at: &str, errors: &mut Vec<String>) {
    let ok = match format {
        "date-time-rfc-2822" => {
            let re = Regex::new(
                r"^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{2} (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} \d{2}:\d{2}:\d{2} \+0000$",
            )
            .unwrap();
            re.is_match(s) && OffsetDateTime::parse(s, &Rfc2822).is_ok()
        }
        // Twilio's URIs are relative to https://api.twilio.com.
        "uri" => s.starts_with("/2010-04-01/"),
        "phone-number" => {
            Regex::new(r"^(whatsapp:|rcs:)?\+[1-9][0-9]{1,14}$|^[0-9]{3,8}$|^[A-Za-z0-9 ]{1,11}$")
                .unwrap()
                .is_match(s)
        }
        "currency" => Regex::new(r"^[A-Z]{3}$").unwrap().is_match(s),
        _ => true,
    };
    if !ok {
        errors.push(format!("{at}: {s:?} is not a valid {format}"));
    }
}

/// Checks `value` against `schema`; returns every mismatch.
pub fn check(spec: &Value, schema: &Value, value: &Value, at: &str) -> Vec<String> {
    let mut errors = Vec::new();
    check_into(spec, schema, value, at, &mut errors);
    errors
}

fn check_into(spec: &Value, schema: &Value, value: &Value, at: &str, errors: &mut Vec<String>) {
    let schema = resolve(spec, schema);
    if value.is_null() {
        if schema.get("nullable") != Some(&Value::Bool(true)) {
            errors.push(format!("{at}: null but not nullable"));
        }
        return;
    }
    let ty = schema.get("type").and_then(Value::as_str).unwrap_or("");
    match ty {
        "string" => {
            let Some(s) = value.as_str() else {
                errors.push(format!("{at}: expected string, got {value}"));
                return;
            };
            if let Some(values) = schema.get("enum").and_then(Value::as_array)
                && !values.iter().any(|v| v.as_str() == Some(s))
            {
                errors.push(format!("{at}: {s:?} not in enum"));
            }
            if let Some(p) = schema.get("pattern").and_then(Value::as_str)
                && !Regex::new(p).unwrap().is_match(s)
            {
                errors.push(format!("{at}: {s:?} does not match {p}"));
            }
            let len = s.chars().count() as u64;
            if schema
                .get("minLength")
                .and_then(Value::as_u64)
                .is_some_and(|m| len < m)
                || schema
                    .get("maxLength")
                    .and_then(Value::as_u64)
                    .is_some_and(|m| len > m)
            {
                errors.push(format!("{at}: length {len} out of bounds"));
            }
            if let Some(f) = schema.get("format").and_then(Value::as_str) {
                check_format(f, s, at, errors);
            }
        }
        "integer" => {
            if !(value.is_i64() || value.is_u64()) {
                errors.push(format!("{at}: expected integer, got {value}"));
            }
        }
        "boolean" => {
            if !value.is_boolean() {
                errors.push(format!("{at}: expected boolean, got {value}"));
            }
        }
        "array" => {
            let Some(items) = value.as_array() else {
                errors.push(format!("{at}: expected array, got {value}"));
                return;
            };
            for (i, item) in items.iter().enumerate() {
                check_into(spec, &schema["items"], item, &format!("{at}[{i}]"), errors);
            }
        }
        "object" => {
            let Some(map) = value.as_object() else {
                errors.push(format!("{at}: expected object, got {value}"));
                return;
            };
            if schema.get("format").and_then(Value::as_str) == Some("uri-map") {
                for (k, v) in map {
                    match v.as_str() {
                        Some(s) => check_format("uri", s, &format!("{at}.{k}"), errors),
                        None => errors.push(format!("{at}.{k}: expected a URI string")),
                    }
                }
            }
            if let Some(props) = schema.get("properties").and_then(Value::as_object) {
                for (name, prop) in props {
                    match map.get(name) {
                        Some(v) => check_into(spec, prop, v, &format!("{at}.{name}"), errors),
                        None => errors.push(format!("{at}: missing property {name}")),
                    }
                }
                for name in map.keys() {
                    if !props.contains_key(name) {
                        errors.push(format!("{at}: property {name} is not in the spec"));
                    }
                }
            }
        }
        other => errors.push(format!("{at}: schema type {other:?} not handled")),
    }
}

/// Asserts a value conforms.
pub fn assert_conforms(spec: &Value, schema: &Value, value: &Value) {
    assert!(!schema.is_null(), "no schema");
    let errors = check(spec, schema, value, "$");
    assert!(errors.is_empty(), "{errors:#?}\nin {value:#}");
}

/// Asserts Twilio's error JSON: exactly code, message, more_info, status (+ detail on 401).
pub fn assert_error(reply_status: u16, body: &Value, code: u64) {
    let map = body
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {body}"));
    assert_eq!(body["code"].as_u64(), Some(code), "{body}");
    assert_eq!(
        body["status"].as_u64(),
        Some(u64::from(reply_status)),
        "{body}"
    );
    assert!(
        body["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    assert_eq!(
        body["more_info"].as_str(),
        Some(format!("https://www.twilio.com/docs/errors/{code}").as_str())
    );
    let mut keys: Vec<&str> = map.keys().map(String::as_str).collect();
    keys.sort_unstable();
    if reply_status == 401 {
        assert_eq!(keys, ["code", "detail", "message", "more_info", "status"]);
        assert!(body["detail"].as_str().is_some());
    } else {
        assert_eq!(keys, ["code", "message", "more_info", "status"]);
    }
}
