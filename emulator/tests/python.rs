//! Wire compatibility with Twilio's official Python helper library: `twilio` from PyPI creates,
//! fetches, lists (following `next_page_uri`) and gets typed errors from the emulator.
//!
//! Needs `python3 -m pip install twilio`; without it the test prints that it skipped.

mod support;

use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use support::Receiver;
use twilio_delivery_emulator::{Chaos, Emulator};

const SCRIPT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/data/twilio_python_check.py"
);

/// Whether `python3` can import `twilio`.
fn python_twilio_available() -> bool {
    Command::new("python3")
        .args(["-c", "import twilio.rest"])
        .output()
        .is_ok_and(|o| o.status.success())
}

#[tokio::test]
async fn twilio_python_creates_fetches_and_lists() {
    if !python_twilio_available() {
        println!("skipped: python twilio package not installed");
        return;
    }
    let emu = Emulator::builder()
        .seed(21)
        .chaos(Chaos::calm().step_delay(Duration::from_millis(1), Duration::from_millis(3)))
        .start()
        .await
        .unwrap();
    let rx = Receiver::start(emu.auth_token()).await;
    let callback = format!("{}/python-cb", rx.base);

    let (base, account, token) = (
        emu.base_url(),
        emu.account_sid().to_string(),
        emu.auth_token().expose().to_owned(),
    );
    let cb = callback.clone();
    let output = tokio::task::spawn_blocking(move || {
        Command::new("python3")
            .arg(SCRIPT)
            .env("EMU_BASE", base)
            .env("EMU_ACCOUNT", account)
            .env("EMU_TOKEN", token)
            .env("EMU_CALLBACK", cb)
            .env("NO_PROXY", "127.0.0.1,localhost")
            .env("no_proxy", "127.0.0.1,localhost")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "python failed: {}\n{stdout}",
        String::from_utf8_lossy(&output.stderr)
    );
    let out: Value = serde_json::from_str(stdout.trim()).unwrap();

    let created = &out["created"];
    let sid = created["sid"].as_str().unwrap();
    assert!(sid.starts_with("SM") && sid.len() == 34);
    assert_eq!(created["status"], "queued");
    assert_eq!(created["to"], "+15558675310");
    assert_eq!(created["from"], "+15005550006");
    assert_eq!(created["num_segments"], "1");
    assert_eq!(created["account_sid"], emu.account_sid().as_str());
    assert_eq!(
        created["date_created_is_datetime"], true,
        "the library parsed the RFC 2822 date"
    );
    assert!(
        created["date_created"]
            .as_str()
            .unwrap()
            .ends_with("+00:00")
    );
    assert_eq!(out["fetched"]["sid"], sid);
    assert_eq!(out["fetched"]["body"], "hello from python");

    // Five messages exist: list(limit=5, page_size=2) follows next_page_uri over three pages.
    let listed: Vec<&str> = out["listed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(listed.len(), 5);
    assert_eq!(
        listed.last(),
        Some(&sid),
        "newest first, the first created last"
    );
    let all: Vec<&str> = out["streamed_all"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(all, listed);
    let truth = emu.truth();
    assert_eq!(truth.len(), 5);
    assert!(
        listed
            .iter()
            .all(|s| truth.keys().any(|k| k.as_str() == *s))
    );

    assert_eq!(out["magic_error"]["status"], 400);
    assert_eq!(out["magic_error"]["code"], 21211);
    assert_eq!(out["auth_error"]["status"], 401);
    assert_eq!(out["auth_error"]["code"], 20003);

    emu.wait_idle(Duration::from_secs(10)).await.unwrap();
    let statuses = rx.statuses_by_sid();
    assert_eq!(statuses[sid], ["sent", "delivered"]);
    assert!(rx.received().iter().all(|r| r.signature_valid));
}
