//! Shared helpers for the client's integration tests: a client pointed at a wiremock server on
//! 127.0.0.1, the spec extract's examples, and form-body decoding.
#![allow(dead_code, unreachable_pub)]

use std::time::Duration;

use serde_json::Value;
use twilio_delivery::client::{Client, RetryPolicy};
use twilio_delivery::{AccountSid, AuthToken};
use url::Url;
use wiremock::MockServer;

pub const AC: &str = "ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
pub const TOKEN: &str = "auth-token-f7e6d5c4b3a2918071605f4e";
pub const SM: &str = "SMb7c0a2ce80504485a6f653a7110836f5";
pub const MESSAGES_PATH: &str =
    "/2010-04-01/Accounts/ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa/Messages.json";
pub const MESSAGE_PATH: &str = "/2010-04-01/Accounts/ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa/Messages/SMb7c0a2ce80504485a6f653a7110836f5.json";

/// A retry policy with the default rules and sub-millisecond backoff.
pub fn fast_retry() -> RetryPolicy {
    RetryPolicy::builder()
        .max_attempts(3)
        .base_delay(Duration::from_micros(100))
        .max_delay(Duration::from_millis(1))
        .build()
}

/// A client authenticating with `AC`/`TOKEN` against the mock server.
pub fn client(server: &MockServer) -> Client {
    client_with(server, fast_retry())
}

pub fn client_with(server: &MockServer, retry: RetryPolicy) -> Client {
    Client::builder(AccountSid::new(AC).unwrap(), AuthToken::new(TOKEN))
        .base_url(Url::parse(&server.uri()).unwrap())
        .retry_policy(retry)
        .build()
        .unwrap()
}

/// The spec extract shipped in tests/data (an unchanged copy of twilio-oai's Messages paths).
pub fn spec() -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/twilio-oai/messages_v2010.json"
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Every response example of one operation: (example name, JSON).
pub fn examples(spec: &Value, path: &str, method: &str, status: &str) -> Vec<(String, Value)> {
    let ex = &spec["paths"][path][method]["responses"][status]["content"]["application/json"]["examples"];
    ex.as_object()
        .unwrap_or_else(|| panic!("no examples for {method} {path} {status}"))
        .iter()
        .map(|(k, v)| (k.clone(), v["value"].clone()))
        .collect()
}

pub const SPEC_LIST: &str = "/2010-04-01/Accounts/{AccountSid}/Messages.json";
pub const SPEC_INSTANCE: &str = "/2010-04-01/Accounts/{AccountSid}/Messages/{Sid}.json";

/// The decoded form pairs of a request body, in wire order.
pub fn form_pairs(body: &[u8]) -> Vec<(String, String)> {
    form_urlencoded::parse(body).into_owned().collect()
}
