//! One endpoint for several accounts: each callback is checked with the keys of the account it
//! names, a subaccount rotating its token is accepted with either token, and a callback of an
//! account the app does not serve, or signed with another account's token, is refused.

mod common;

use std::sync::Arc;

use common::*;
use http::{HeaderMap, HeaderValue, Method};
use twilio_delivery::accounts::AccountKeys;
use twilio_delivery::signature::sign;
use twilio_delivery::webhook::{StatusWebhook, WebhookRequest};
use twilio_delivery::{AccountSid, AuthToken, MemoryStore, SignatureValidator, WebhookGuard};

const SUB: &str = "ACfedcba9876543210fedcba9876543210";
const STRANGER: &str = "AC11111111111111111111111111111111";
const BASE: &str = "https://hooks.example.com";
const TARGET: &str = "/twilio/status";

fn keys() -> Arc<AccountKeys> {
    Arc::new(
        AccountKeys::new()
            .with(
                AccountSid::new(ACCOUNT).unwrap(),
                SignatureValidator::new(token()),
            )
            .with(
                AccountSid::new(SUB).unwrap(),
                SignatureValidator::builder()
                    .key("new", AuthToken::new("sub-new"))
                    .key("old", AuthToken::new("sub-old"))
                    .build()
                    .unwrap(),
            ),
    )
}

/// A callback of `account` signed with `key`: (body, headers).
fn callback(account: &str, n: u32, key: &str) -> (String, HeaderMap) {
    let mut pairs = callback_pairs(&sid(n), "delivered", None);
    for (k, v) in &mut pairs {
        if k == "AccountSid" {
            *v = account.to_owned();
        }
    }
    let signature = sign(&AuthToken::new(key), &format!("{BASE}{TARGET}"), &pairs);
    let mut h = HeaderMap::new();
    h.insert(
        "x-twilio-signature",
        HeaderValue::from_str(&signature).unwrap(),
    );
    h.insert(
        "content-type",
        HeaderValue::from_static("application/x-www-form-urlencoded"),
    );
    (form_body(&pairs), h)
}

#[tokio::test]
async fn each_callback_is_checked_with_its_own_accounts_keys() {
    let webhook = StatusWebhook::builder(
        // Ignored once accounts are set: the resolver chooses the keys.
        SignatureValidator::new(AuthToken::new("unused")),
        Arc::new(MemoryStore::new()),
    )
    .public_url(BASE)
    .accounts(keys())
    .build()
    .unwrap();
    let guard = WebhookGuard::builder(SignatureValidator::new(AuthToken::new("unused")))
        .public_url(BASE)
        .accounts(keys())
        .build()
        .unwrap();
    let cases = [
        (ACCOUNT, 1, TOKEN, 204),
        (SUB, 2, "sub-new", 204),
        (SUB, 3, "sub-old", 204),
        (ACCOUNT, 4, "sub-new", 403), // another account's token
        (SUB, 5, TOKEN, 403),
        (STRANGER, 6, TOKEN, 403), // an account the app does not serve
        (STRANGER, 7, "unused", 403),
    ];
    for (account, n, key, expected) in cases {
        let (body, headers) = callback(account, n, key);
        let status = webhook
            .handle(WebhookRequest::new(
                &Method::POST,
                TARGET,
                &headers,
                body.as_bytes(),
            ))
            .await
            .status
            .as_u16();
        assert_eq!(status, expected, "webhook: {account} signed with {key}");
        let guarded = guard
            .check(&Method::POST, TARGET, &headers, body.as_bytes())
            .await;
        assert_eq!(
            guarded.is_ok(),
            expected == 204,
            "guard: {account} signed with {key}"
        );
    }
}
