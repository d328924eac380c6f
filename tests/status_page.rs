//! The live status page: its JSON routes over real HTTP, and the page itself in headless
//! Chromium (driven through chromedriver's WebDriver API), showing a status change arriving
//! live without a reload. Skips, saying so, when chromedriver is not installed.

mod common;

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use serde_json::{Value, json};
use twilio_delivery::model::{EventSource, SentMessage, StatusEvent};
use twilio_delivery::notify::{Notifier, StatusChange};
use twilio_delivery::store::StatusStore;
use twilio_delivery::{MemoryStore, MessageStatus, status_page};

struct App {
    base: String,
    store: Arc<MemoryStore>,
    notifier: Notifier,
}

async fn start() -> App {
    let store = Arc::new(MemoryStore::new());
    let notifier = Notifier::new(64);
    for n in 1..=3 {
        store
            .record_sent(&SentMessage::new(
                sid(n),
                format!("+1415555010{n}"),
                MessageStatus::Queued,
            ))
            .await
            .unwrap();
        store
            .apply(&StatusEvent::new(
                sid(n),
                MessageStatus::Sent,
                EventSource::Callback,
            ))
            .await
            .unwrap();
    }
    let app: axum::Router = axum::Router::new().nest(
        "/status",
        status_page::router(store.clone(), notifier.clone()),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}/status", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    App {
        base,
        store,
        notifier,
    }
}

/// Applies a status and publishes the change, as the webhook does.
async fn deliver(app: &App, n: u32) {
    let event = StatusEvent::new(sid(n), MessageStatus::Delivered, EventSource::Callback);
    let applied = app.store.apply(&event).await.unwrap();
    let change =
        StatusChange::from_applied(&sid(n), &applied, None, EventSource::Callback).unwrap();
    app.notifier.publish(change);
}

#[tokio::test]
async fn json_routes_list_messages_with_timelines() {
    let app = start().await;
    let http = reqwest::Client::new();
    let list: Value = http
        .get(format!("{}/messages.json", app.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list.as_array().unwrap().len(), 3);
    let one: Value = http
        .get(format!("{}/messages/{}.json", app.base, sid(2)))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(one["status"], "sent");
    assert_eq!(one["timeline"][0]["status"], "sent");
    for bad in [
        "messages/nope.json",
        "messages/SM00000000000000000000000000000099.json",
    ] {
        let r = http
            .get(format!("{}/{bad}", app.base))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 404, "{bad}");
    }
    let page = http.get(&app.base).send().await.unwrap();
    assert!(
        page.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
}

/// A chromedriver process, killed on drop.
struct Driver {
    child: Child,
    url: String,
    _profile: tempfile::TempDir,
}

impl Driver {
    /// Starts chromedriver on a free port of 127.0.0.1 and waits until it is ready. The port is
    /// picked, then released for chromedriver to bind, so another process may take it first:
    /// chromedriver then exits, and it is started again on another port (five tries).
    async fn start(bin: &str) -> Self {
        let http = reqwest::Client::new();
        for _ in 0..5 {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            let child = Command::new(bin)
                .arg(format!("--port={port}"))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            let mut driver = Driver {
                child,
                url: format!("http://127.0.0.1:{port}"),
                _profile: tempfile::tempdir().unwrap(),
            };
            let deadline = Instant::now() + Duration::from_secs(20);
            loop {
                // Ready only by chromedriver's own answer, not by whatever else may listen.
                let status = http.get(format!("{}/status", driver.url)).send().await;
                let ready = match status {
                    Ok(r) => r.json::<Value>().await.ok(),
                    Err(_) => None,
                }
                .is_some_and(|v| v["value"]["ready"] == json!(true));
                if ready {
                    return driver;
                }
                if driver.child.try_wait().unwrap().is_some() {
                    break; // It exited: most likely the port was taken. Try another.
                }
                assert!(Instant::now() < deadline, "chromedriver did not start");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        panic!("chromedriver exited on start five times");
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn find(env: &str, paths: &[&str]) -> Option<String> {
    std::env::var(env).ok().or_else(|| {
        paths
            .iter()
            .find(|p| std::path::Path::new(p).exists())
            .map(|p| (*p).to_owned())
    })
}

/// A WebDriver session of chromedriver.
struct Session {
    http: reqwest::Client,
    url: String,
}

impl Session {
    async fn call(&self, method: reqwest::Method, path: &str, body: Value) -> Value {
        let r = self
            .http
            .request(method, format!("{}{path}", self.url))
            .json(&body)
            .send()
            .await
            .unwrap();
        r.json::<Value>().await.unwrap()["value"].clone()
    }

    async fn eval(&self, script: &str) -> Value {
        self.call(
            reqwest::Method::POST,
            "/execute/sync",
            json!({"script": script, "args": []}),
        )
        .await
    }

    /// Polls `script` until it returns `want`, for up to 15 s.
    async fn wait_for(&self, script: &str, want: Value) {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let got = self.eval(script).await;
            if got == want {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{script}: got {got}, want {want}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

#[tokio::test]
async fn the_page_shows_a_status_change_arriving_live_in_chromium() {
    let (Some(driver_bin), Some(chromium)) = (
        find("CHROMEDRIVER", &["/usr/bin/chromedriver"]),
        find(
            "CHROMIUM",
            &["/usr/bin/chromium", "/usr/bin/chromium-browser"],
        ),
    ) else {
        common::skip::service_missing("chromium/chromedriver not installed");
        return;
    };
    let app = start().await;
    let driver = Driver::start(&driver_bin).await;
    let http = reqwest::Client::new();
    let caps = json!({"capabilities": {"alwaysMatch": {"browserName": "chrome", "goog:chromeOptions": {
        "binary": chromium,
        "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
                 "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 format!("--user-data-dir={}", driver._profile.path().display())]}}}});
    let root = Session {
        http: http.clone(),
        url: driver.url.clone(),
    };
    let created = root.call(reqwest::Method::POST, "/session", caps).await;
    let id = created["sessionId"]
        .as_str()
        .unwrap_or_else(|| panic!("no session: {created}"));
    let session = Session {
        http,
        url: format!("{}/session/{id}", driver.url),
    };
    session
        .call(reqwest::Method::POST, "/url", json!({"url": app.base}))
        .await;

    // It loads and lists the messages, and its event stream connects.
    session
        .wait_for(
            "return document.querySelectorAll('#rows tr').length",
            json!(3),
        )
        .await;
    session
        .wait_for(
            "return document.getElementById('conn').textContent",
            json!("live"),
        )
        .await;
    let status = format!(
        "return document.getElementById('m-{}').dataset.status",
        sid(2)
    );
    assert_eq!(session.eval(&status).await, json!("sent"));
    // Mark the document, so that a reload would be noticed.
    session.eval("window.__marker = 42; return 0").await;
    deliver(&app, 2).await;
    session.wait_for(&status, json!("delivered")).await;
    assert_eq!(
        session.eval("return window.__marker").await,
        json!(42),
        "updated live, without a reload"
    );
    let timeline = session
        .eval(&format!(
            "return document.querySelector('#m-{} .timeline').textContent",
            sid(2)
        ))
        .await;
    assert!(
        timeline.as_str().unwrap().contains("delivered"),
        "{timeline}"
    );
    session.call(reqwest::Method::DELETE, "", json!({})).await;
}
