//! Slow clients against each adapter as the examples serve it (axum and warp through
//! `examples/shared/serve.rs`, actix-web with `client_request_timeout`): a connection that sends
//! nothing, stalls in its headers, stalls in its body or trickles its body is closed (or answered
//! 408) within the configured deadlines, and an idle kept-alive connection is closed, while 50 of them are open and a normal signed callback
//! is still answered 204 at once.

mod common;
#[allow(dead_code)]
#[path = "../examples/shared/serve.rs"]
mod serve;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use twilio_delivery::webhook::StatusWebhook;
use twilio_delivery::{MemoryStore, PublicEndpoint, SignatureValidator, adapters};

/// The deadline for request heads and for bodies in these tests.
const DEADLINE: Duration = Duration::from_secs(1);
/// How long a connection may stay silent.
const IDLE: Duration = Duration::from_secs(2);
/// How much later than the deadline a connection may be closed (a busy 2-core machine).
const SLACK: Duration = Duration::from_secs(3);

#[derive(Debug, Clone, Copy)]
enum Framework {
    Axum,
    Warp,
    ActixWeb,
}

fn endpoint(addr: SocketAddr) -> PublicEndpoint {
    PublicEndpoint::new(&format!("http://{addr}"), "/twilio/status").unwrap()
}

/// Serves the webhook as the example of `framework` does, on a thread of its own.
fn start(framework: Framework) -> SocketAddr {
    let std_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    std_listener.set_nonblocking(true).unwrap();
    let addr = std_listener.local_addr().unwrap();
    let endpoint = endpoint(addr);
    let webhook = StatusWebhook::builder(
        SignatureValidator::new(token()),
        Arc::new(MemoryStore::new()),
    )
    .endpoint(&endpoint)
    .body_read_timeout(DEADLINE)
    .build()
    .unwrap();
    let path = endpoint.path().to_owned();
    std::thread::spawn(move || match framework {
        Framework::Axum | Framework::Warp => {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(std_listener).unwrap();
                let forever = std::future::pending::<()>();
                let limits = serve::Limits {
                    header: DEADLINE,
                    idle: Some(IDLE),
                };
                if matches!(framework, Framework::Axum) {
                    let app = adapters::axum::router(webhook, &path);
                    serve::serve(listener, app, limits, forever).await;
                } else {
                    let filter = adapters::warp::filter(webhook, &path);
                    serve::serve(listener, warp::service(filter), limits, forever).await;
                }
            });
        }
        Framework::ActixWeb => {
            actix_web::rt::System::new().block_on(async move {
                actix_web::HttpServer::new(move || {
                    actix_web::App::new()
                        .configure(adapters::actix_web::configure(webhook.clone(), &path))
                })
                .client_request_timeout(DEADLINE)
                .keep_alive(DEADLINE)
                .workers(1)
                .disable_signals()
                .listen(std_listener)
                .unwrap()
                .run()
                .await
                .unwrap();
            });
        }
    });
    addr
}

/// Waits until the server closes the connection (or answers and closes), at most `limit`;
/// returns how long that took and what was answered.
async fn closed_within(stream: &mut TcpStream, limit: Duration) -> (Duration, String) {
    let started = Instant::now();
    let mut answer = Vec::new();
    let mut buf = [0u8; 1024];
    loop {
        match tokio::time::timeout_at((started + limit).into(), stream.read(&mut buf)).await {
            Ok(Ok(0) | Err(_)) => break,
            Ok(Ok(n)) => answer.extend_from_slice(&buf[..n]),
            Err(_) => panic!(
                "still open after {limit:?}; answered {:?}",
                String::from_utf8_lossy(&answer)
            ),
        }
    }
    (
        started.elapsed(),
        String::from_utf8_lossy(&answer).into_owned(),
    )
}

const HEAD: &str = "POST /twilio/status HTTP/1.1\r\nHost: 127.0.0.1\r\n";

/// One slow client of each kind; each must be cut off within the deadline plus slack.
async fn slow_client(addr: SocketAddr, kind: usize) {
    let mut s = TcpStream::connect(addr).await.unwrap();
    match kind {
        // Connects and sends nothing.
        0 => {}
        // Stalls in the middle of its headers.
        1 => s.write_all(HEAD.as_bytes()).await.unwrap(),
        // Sends its headers, then 10 of the 200 bytes it declared.
        2 => {
            let head = format!(
                "{HEAD}Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 200\r\n\r\nMessageSid"
            );
            s.write_all(head.as_bytes()).await.unwrap();
        }
        // A whole (unsigned) request, then silence on the kept-alive connection.
        4 => {
            let request = format!(
                "{HEAD}Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 3\r\n\r\na=b"
            );
            s.write_all(request.as_bytes()).await.unwrap();
            let (_, answer) = closed_within(&mut s, IDLE + SLACK).await;
            assert!(answer.starts_with("HTTP/1.1 403"), "kind 4: {answer}");
            return;
        }
        // Trickles its body, a byte every 200 ms (40 s for the whole body).
        _ => {
            let head = format!(
                "{HEAD}Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 200\r\n\r\n"
            );
            s.write_all(head.as_bytes()).await.unwrap();
            let (mut read, mut write) = s.into_split();
            let trickle = tokio::spawn(async move {
                for _ in 0..200 {
                    if write.write_all(b"a").await.is_err() {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            });
            let started = Instant::now();
            let mut buf = Vec::new();
            let read_all = tokio::time::timeout(DEADLINE + SLACK, read.read_to_end(&mut buf)).await;
            trickle.abort();
            assert!(
                read_all.is_ok(),
                "trickled body still open after {:?}",
                started.elapsed()
            );
            let answer = String::from_utf8_lossy(&buf);
            assert!(
                answer.is_empty() || answer.starts_with("HTTP/1.1 408"),
                "{answer}"
            );
            return;
        }
    }
    let (_, answer) = closed_within(&mut s, DEADLINE + SLACK).await;
    assert!(
        answer.is_empty()
            || answer.starts_with("HTTP/1.1 408")
            || answer.starts_with("HTTP/1.1 400"),
        "kind {kind}: {answer}"
    );
}

/// A normal signed callback, answered 204 promptly.
async fn normal_callback(addr: SocketAddr, n: u32) -> Duration {
    let url = endpoint(addr).signed_url();
    let pairs = callback_pairs(&sid(n), "delivered", None);
    let (body, signature) = signed(&url, &pairs);
    let started = Instant::now();
    let response = reqwest::Client::new()
        .post(&url)
        .header("content-type", "application/x-www-form-urlencoded")
        .header("x-twilio-signature", signature)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    started.elapsed()
}

async fn resists_slow_clients(framework: Framework) {
    let addr = start(framework);
    // Wait for the server.
    for _ in 0..100 {
        if TcpStream::connect(addr).await.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let slow: Vec<_> = (0..48)
        .map(|i| tokio::spawn(slow_client(addr, i % 4)))
        .collect();
    tokio::time::sleep(Duration::from_millis(200)).await;
    // With the slow clients holding their sockets, normal callbacks go through.
    for n in 0..5 {
        let took = normal_callback(addr, n).await;
        assert!(
            took < DEADLINE,
            "{framework:?}: a normal callback took {took:?}"
        );
    }
    for task in slow {
        task.await.unwrap_or_else(|e| panic!("{framework:?}: {e}"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn axum_as_served_by_the_example_cuts_off_slow_clients() {
    resists_slow_clients(Framework::Axum).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn warp_as_served_by_the_example_cuts_off_slow_clients() {
    resists_slow_clients(Framework::Warp).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn actix_web_as_served_by_the_example_cuts_off_slow_clients() {
    resists_slow_clients(Framework::ActixWeb).await;
}
