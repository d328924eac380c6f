//! The wire-compatibility runs with Twilio's official helper libraries (tests/node.rs,
//! tests/python.rs): whether the library is installed, running its script against an emulator,
//! and the checks both scripts' reports must pass.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use twilio_delivery_emulator::{Chaos, Emulator, EmulatorHandle};

/// Whether a test may run: `Ok` when the tool is there. Without it, the test fails under CI
/// (the `CI` environment variable is set) and is skipped, saying why, elsewhere.
pub fn required(check: Result<(), String>, what: &str) -> bool {
    match check {
        Ok(()) => true,
        Err(reason) if std::env::var_os("CI").is_some() => panic!(
            "the {what} wire-compatibility test cannot run under CI: {reason}. \
             .ci/run installs it (see emulator/README.md, \"Wire-compatibility tests\")"
        ),
        Err(reason) => {
            println!("skipped: {reason} (set CI=1 to make this a failure)");
            false
        }
    }
}

/// Runs `program args` in `dir`; `Err` with what went wrong if it is missing or fails.
pub fn probe(program: &str, args: &[&str], dir: &Path) -> Result<(), String> {
    match Command::new(program).args(args).current_dir(dir).output() {
        Err(e) => Err(format!("{program} cannot be run: {e}")),
        Ok(o) if o.status.success() => Ok(()),
        Ok(o) => Err(format!(
            "`{program} {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&o.stderr).trim()
        )),
    }
}

/// An emulator with fast lifecycles, for a script to drive.
pub async fn emulator(seed: u64) -> EmulatorHandle {
    Emulator::builder()
        .seed(seed)
        .chaos(Chaos::calm().step_delay(Duration::from_millis(1), Duration::from_millis(3)))
        .start()
        .await
        .unwrap()
}

/// Runs a check script against `emu` (EMU_BASE, EMU_ACCOUNT, EMU_TOKEN; no proxy) and parses
/// the JSON report it prints.
pub async fn run_script(emu: &EmulatorHandle, program: &str, script: &str, dir: &Path) -> Value {
    let mut command = Command::new(program);
    command
        .arg(script)
        .current_dir(dir)
        .env("EMU_BASE", emu.base_url())
        .env("EMU_ACCOUNT", emu.account_sid().as_str())
        .env("EMU_TOKEN", emu.auth_token().expose())
        .env("NO_PROXY", "127.0.0.1,localhost")
        .env("no_proxy", "127.0.0.1,localhost");
    for proxy in [
        "HTTP_PROXY",
        "http_proxy",
        "HTTPS_PROXY",
        "https_proxy",
        "ALL_PROXY",
        "all_proxy",
    ] {
        command.env_remove(proxy);
    }
    let output = tokio::task::spawn_blocking(move || command.output())
        .await
        .unwrap()
        .unwrap_or_else(|e| panic!("{program} cannot be run: {e}"));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{program} {script} failed ({}):\n{}\n{stdout}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_str(stdout.trim())
        .unwrap_or_else(|e| panic!("{program} printed no JSON report ({e}): {stdout}"))
}

/// The `{status, code}` a script reported for a failed call.
fn error(out: &Value, name: &str) -> (u64, u64) {
    let e = &out["errors"][name];
    (
        e["status"].as_u64().unwrap_or_default(),
        e["code"].as_u64().unwrap_or_default(),
    )
}

/// The checks every script's report must pass: what the library parsed, paging, updates,
/// deletes, media, feedback, the documented errors, and callbacks its own validator accepted.
pub fn check_report(out: &Value, emu: &EmulatorHandle, body: &str) {
    let created = &out["created"];
    let sid = created["sid"].as_str().unwrap();
    assert!(sid.starts_with("SM") && sid.len() == 34, "{created}");
    assert_eq!(created["status"], "queued");
    assert_eq!(created["to"], "+15558675310");
    assert_eq!(created["from"], "+15005550006");
    assert_eq!(created["num_segments"], "1");
    assert_eq!(created["account_sid"], emu.account_sid().as_str());
    assert!(
        created["messaging_service_sid"]
            .as_str()
            .is_some_and(|s| s.starts_with("MG")),
        "a default Messaging Service SID: {created}"
    );
    assert_eq!(
        created["date_created_is_date"], true,
        "the library parsed the RFC 2822 date"
    );
    assert_eq!(out["fetched"]["sid"], sid);
    assert_eq!(out["fetched"]["body"], body);

    // Five messages existed when listing: pages of two, newest first, the first created last.
    let sids = |key: &str| -> Vec<String> {
        out[key]
            .as_array()
            .unwrap_or_else(|| panic!("{key}: {out}"))
            .iter()
            .map(|v| v.as_str().unwrap().to_owned())
            .collect()
    };
    let listed = sids("listed");
    assert_eq!(listed.len(), 5, "{listed:?}");
    assert_eq!(listed.last().map(String::as_str), Some(sid));
    assert_eq!(
        sids("listed_all"),
        listed,
        "following next_page_uri to the end"
    );

    let media = &out["media"];
    assert!(media["message_sid"].as_str().unwrap().starts_with("MM"));
    assert_eq!(media["count"], 2);
    assert_eq!(
        media["content_types"],
        serde_json::json!(["image/jpeg", "image/png"])
    );
    assert!(media["fetched_sid"].as_str().unwrap().starts_with("ME"));
    assert_eq!(media["fetched_parent"], media["message_sid"]);
    assert_eq!(media["removed"], true);
    assert_eq!(media["left"], 1);
    assert_eq!(out["feedback"], "confirmed");

    assert_eq!(out["idle"], 200);
    assert_eq!(out["redacted_body"], "");
    assert_eq!(out["scheduled_status"], "scheduled");
    assert_eq!(out["canceled_status"], "canceled");
    assert_eq!(error(out, "magic_to"), (400, 21211));
    assert_eq!(error(out, "auth"), (401, 20003));
    assert_eq!(error(out, "bad_callback"), (400, 21609));
    assert_eq!(error(out, "bad_update"), (400, 30400));
    assert_eq!(error(out, "not_found"), (404, 20404));
    assert_eq!(out["deleted"], true);
    assert_eq!(
        out["after_delete"]["code"], 20404,
        "a deleted message is gone"
    );
    assert_eq!(out["idle_again"], 200);

    // Callbacks: sent and delivered for the first message and the MMS, canceled for the
    // scheduled one; each requested at the configured URL (a `'` in its query) and accepted by
    // the library's own validator.
    let callbacks = out["callbacks"].as_array().unwrap();
    let statuses: Vec<(String, String)> = callbacks
        .iter()
        .map(|c| {
            (
                c["sid"].as_str().unwrap_or_default().to_owned(),
                c["status"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    assert_eq!(callbacks.len(), 5, "{statuses:?}");
    let of = |s: &str| {
        statuses
            .iter()
            .filter(|(sid, _)| sid == s)
            .map(|(_, st)| st.as_str())
            .collect::<Vec<_>>()
    };
    assert_eq!(of(sid), ["sent", "delivered"]);
    assert_eq!(
        of(media["message_sid"].as_str().unwrap()),
        ["sent", "delivered"]
    );
    assert_eq!(statuses.iter().filter(|(_, s)| s == "canceled").count(), 1);
    for c in callbacks {
        assert_eq!(c["valid"], true, "the library's validator refused {c}");
        assert!(
            c["url"]
                .as_str()
                .unwrap()
                .ends_with("/status?tenant='acme'&x=(1)!*&e=%41"),
            "requested as configured: {c}"
        );
    }

    let truth = emu.truth();
    assert_eq!(truth.len(), 7, "refused creates make nothing");
    let status_of = |s: &str| {
        truth
            .iter()
            .find(|(k, _)| k.as_str() == s)
            .map(|(_, t)| t.status.to_string())
    };
    assert_eq!(status_of(sid).as_deref(), Some("delivered"));
    assert_eq!(
        truth
            .values()
            .filter(|t| t.status.as_str() == "canceled")
            .count(),
        1
    );
}
