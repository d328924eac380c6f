//! The `twilio-emulator` binary as another language's CI would run it: configured through
//! environment variables and flags, driven over HTTP, read through the admin endpoints.

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use serde_json::Value;
use support::{Receiver, basic};
use twilio_delivery::AuthToken;

const BIN: &str = env!("CARGO_BIN_EXE_twilio-emulator");
const ACCOUNT: &str = "AC00000000000000000000000000000a11";
const TOKEN: &str = "standalone-token";
const KEY: &str = "SK00000000000000000000000000000b22";

/// The child process, killed when dropped.
struct Running {
    child: Child,
    base: String,
    banner: Vec<String>,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts the binary and reads its banner up to the last line.
fn spawn(args: &[&str], env: &[(&str, &str)]) -> Running {
    let mut command = Command::new(BIN);
    command
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    for (k, v) in env {
        command.env(k, v);
    }
    let mut child = command.spawn().expect("the twilio-emulator binary runs");
    let stdout = child.stdout.take().unwrap();
    let mut banner = Vec::new();
    for line in BufReader::new(stdout).lines() {
        let line = line.unwrap();
        let done = line.starts_with("Ctrl-C");
        banner.push(line);
        if done {
            break;
        }
    }
    let base = banner
        .first()
        .and_then(|l| l.strip_prefix("twilio-emulator listening on "))
        .unwrap_or_else(|| panic!("no banner: {banner:?}"))
        .to_owned();
    Running {
        child,
        base,
        banner,
    }
}

async fn call(
    http: &reqwest::Client,
    method: reqwest::Method,
    url: &str,
    auth: &str,
    form: &[(&str, &str)],
) -> (u16, Value) {
    let body = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(form)
        .finish();
    let r = http
        .request(method, url)
        .header("Authorization", auth)
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let bytes = r.bytes().await.unwrap();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

#[tokio::test]
async fn configured_by_environment_and_flags_driven_over_http() {
    let rx = Receiver::start(&AuthToken::new(TOKEN)).await;
    let default_callback = format!("{}/default-cb?who='env'", rx.base);
    let run = tokio::task::spawn_blocking({
        let default_callback = default_callback.clone();
        move || {
            spawn(
                &["--port", "0", "--seed", "9", "--step-delay=1..3"],
                &[
                    ("TWILIO_EMULATOR_ACCOUNT_SID", ACCOUNT),
                    ("TWILIO_EMULATOR_AUTH_TOKEN", TOKEN),
                    ("TWILIO_EMULATOR_API_KEYS", &format!("{KEY}:key-secret")),
                    (
                        "TWILIO_EMULATOR_RECIPIENTS",
                        "+15550000009=undelivered:30007",
                    ),
                    ("TWILIO_EMULATOR_STATUS_CALLBACK", &default_callback),
                    ("TWILIO_EMULATOR_TIME_SCALE", "0"),
                    ("TWILIO_EMULATOR_SEED", "1"),
                ],
            )
        }
    })
    .await
    .unwrap();
    let banner = run.banner.join("\n");
    assert!(
        banner.contains(ACCOUNT) && banner.contains(TOKEN),
        "{banner}"
    );
    assert!(banner.contains("seed:        9"), "the flag wins: {banner}");
    for client in ["twilio-node", "twilio-python", "twilio-delivery"] {
        assert!(banner.contains(client), "{client} in {banner}");
    }
    assert!(banner.contains(&format!("client.api.baseUrl = '{}'", run.base)));

    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let messages = format!("{}/2010-04-01/Accounts/{ACCOUNT}/Messages.json", run.base);
    let with_key = basic(KEY, "key-secret");
    let with_token = basic(ACCOUNT, TOKEN);
    let (status, m) = call(
        &http,
        reqwest::Method::POST,
        &messages,
        &with_key,
        &[
            ("To", "+15550000009"),
            ("From", "+15005550006"),
            ("Body", "hi"),
        ],
    )
    .await;
    assert_eq!(status, 201, "{m}");
    let sid = m["sid"].as_str().unwrap().to_owned();
    let send_at = (time::OffsetDateTime::now_utc() + time::Duration::hours(2))
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let (status, scheduled) = call(
        &http,
        reqwest::Method::POST,
        &messages,
        &with_token,
        &[
            ("To", "+15558675310"),
            ("MessagingServiceSid", "MG0123456789abcdef0123456789abcdef"),
            ("Body", "in two hours, at once with time scale 0"),
            ("ScheduleType", "fixed"),
            ("SendAt", &send_at),
        ],
    )
    .await;
    assert_eq!(status, 201, "{scheduled}");
    assert_eq!(scheduled["status"], "scheduled");

    let admin = |path: &str| format!("{}/emulator/{path}", run.base);
    let (status, _) = call(
        &http,
        reqwest::Method::POST,
        &admin("wait-idle"),
        &with_token,
        &[("Timeout", "20")],
    )
    .await;
    assert_eq!(status, 200);
    let (_, truth) = call(
        &http,
        reqwest::Method::GET,
        &admin("truth"),
        &with_token,
        &[],
    )
    .await;
    let truth = truth["truth"].as_array().unwrap().clone();
    assert_eq!(truth.len(), 2);
    assert_eq!(truth[0]["sid"], sid.as_str());
    assert_eq!(truth[0]["status"], "undelivered", "the recipient rule");
    assert_eq!(truth[0]["error_code"], 30007);
    assert_eq!(truth[1]["status"], "delivered");
    let (_, log) = call(
        &http,
        reqwest::Method::GET,
        &admin("callbacks"),
        &with_token,
        &[],
    )
    .await;
    assert_eq!(log["callbacks"].as_array().unwrap().len(), 5);

    // Callbacks went to the default status callback, exactly as configured, signed with the
    // configured auth token.
    let got = rx.received();
    assert_eq!(got.len(), 5);
    assert!(got.iter().all(|r| r.signature_valid), "{got:?}");
    assert!(
        got.iter()
            .all(|r| r.path_and_query == "/default-cb?who='env'")
    );
    let (status, _) = call(
        &http,
        reqwest::Method::GET,
        &messages,
        "Basic bm9wZTpub3Bl",
        &[],
    )
    .await;
    assert_eq!(status, 401);
}

#[test]
fn help_and_bad_options() {
    let help = Command::new(BIN).arg("--help").output().unwrap();
    assert!(help.status.success());
    let text = String::from_utf8_lossy(&help.stdout);
    for needle in [
        "TWILIO_EMULATOR_AUTH_TOKEN",
        "--recipient",
        "--time-scale",
        "/emulator/truth",
        "/emulator/time/advance",
        "/emulator/inbound",
        "OptOutType",
    ] {
        assert!(text.contains(needle), "{needle} in --help");
    }
    let bad = Command::new(BIN).arg("--nope").output().unwrap();
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("unknown argument"));
    let bad = Command::new(BIN)
        .env("TWILIO_EMULATOR_STATUS_CALLBACK", "http://bad_host/cb")
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("status callback"));
}
