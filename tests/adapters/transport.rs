//! How the suite reaches an adapter: a real server on 127.0.0.1 (one thread and runtime of its
//! own per server) spoken to with reqwest, or the framework's own in-process test harness.

#![allow(unreachable_pub)]

use std::net::{SocketAddr, TcpListener};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use actix_web::{App, HttpServer, web};
use axum::Router;
use bytes::Bytes;
use futures_util::StreamExt;
use http::Method;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tower::ServiceExt;
use twilio_delivery::adapters;
use twilio_delivery::webhook::StatusWebhook;
use warp::Filter;
use warp::filters::BoxedFilter;

/// Which adapter, reached how.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    AxumHttp,
    ActixHttp,
    WarpHttp,
    AxumTower,
    ActixTest,
    WarpTest,
}

impl Kind {
    pub const ALL: [Kind; 6] = [
        Kind::AxumHttp,
        Kind::ActixHttp,
        Kind::WarpHttp,
        Kind::AxumTower,
        Kind::ActixTest,
        Kind::WarpTest,
    ];
}

/// A request as the suite describes it.
#[derive(Debug, Clone)]
pub struct Req {
    pub method: Method,
    /// Path and raw query, sent exactly as written.
    pub target: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub framing: Framing,
}

/// How the body goes on the wire. Real HTTP sends every framing as described; axum's
/// harness streams the body; the actix and warp harnesses always send the whole body with a
/// `Content-Length` (the declared one, for `DeclaredLength`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// `Content-Length` and the whole body.
    Length,
    /// `Transfer-Encoding: chunked`, 100-byte chunks, then the last chunk.
    Chunked,
    /// Chunked, but the last chunk never comes: the connection stays open.
    ChunkedStalled,
    /// `Content-Length` claims this many bytes; only the body is sent, then nothing.
    DeclaredLength(u64),
}

impl Req {
    /// The request with header `name` set to `value` (replacing any value it had).
    pub fn header_replaced(mut self, name: &str, value: &str) -> Req {
        self.headers.retain(|(k, _)| !k.eq_ignore_ascii_case(name));
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }
}

/// The parts of a response the suite compares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resp {
    pub status: u16,
    /// Header names lower-case.
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// The webhook mounted on `prefix` + `path` in one framework.
pub enum Mounted {
    Http {
        client: reqwest::Client,
        server: Server,
    },
    AxumTower(Router),
    ActixTest {
        webhook: StatusWebhook,
        prefix: String,
        path: String,
    },
    WarpTest(BoxedFilter<(warp::reply::Response,)>),
}

/// The app each framework serves: the webhook on `path`, nested under `prefix` when not empty,
/// next to an unrelated route.
fn axum_app(webhook: StatusWebhook, prefix: &str, path: &str) -> Router {
    let hook = adapters::axum::router(webhook, path);
    let hook = if prefix.is_empty() {
        hook
    } else {
        Router::new().nest(prefix, hook)
    };
    Router::new()
        .route("/other", axum::routing::get(|| async { "other" }))
        .merge(hook)
}

fn actix_app(
    webhook: StatusWebhook,
    prefix: &str,
    path: &str,
) -> App<
    impl actix_web::dev::ServiceFactory<
        actix_web::dev::ServiceRequest,
        Config = (),
        Response = actix_web::dev::ServiceResponse,
        Error = actix_web::Error,
        InitError = (),
    > + use<>,
> {
    let app = App::new().route("/other", web::get().to(|| async { "other" }));
    if prefix.is_empty() {
        app.configure(adapters::actix_web::configure(webhook, path))
    } else {
        app.service(web::scope(prefix).service(adapters::actix_web::resource(webhook, path)))
    }
}

fn warp_app(
    webhook: StatusWebhook,
    prefix: &str,
    path: &str,
) -> BoxedFilter<(warp::reply::Response,)> {
    use warp::Reply;
    let other = warp::path!("other").map(|| "other".into_response());
    let hook = adapters::warp::filter(webhook, path);
    let hook = match prefix.trim_start_matches('/') {
        "" => hook.boxed(),
        segment => warp::path(segment.to_owned()).and(hook).boxed(),
    };
    other.or(hook).unify().boxed()
}

impl Mounted {
    pub async fn mount(kind: Kind, webhook: StatusWebhook, prefix: &str, path: &str) -> Mounted {
        match kind {
            Kind::AxumHttp | Kind::ActixHttp | Kind::WarpHttp => Mounted::Http {
                client: reqwest::Client::new(),
                server: Server::start(kind, webhook, prefix, path),
            },
            Kind::AxumTower => Mounted::AxumTower(axum_app(webhook, prefix, path)),
            Kind::ActixTest => Mounted::ActixTest {
                webhook,
                prefix: prefix.to_owned(),
                path: path.to_owned(),
            },
            Kind::WarpTest => Mounted::WarpTest(warp_app(webhook, prefix, path)),
        }
    }

    /// Sends `req`, failing the test if no answer comes within 5 s (an adapter that waits
    /// for a body it should have refused).
    pub async fn send(&self, req: &Req) -> Resp {
        let answer = tokio::time::timeout(Duration::from_secs(5), self.exchange(req)).await;
        answer.unwrap_or_else(|_| panic!("no answer within 5 s to {} {}", req.method, req.target))
    }

    async fn exchange(&self, req: &Req) -> Resp {
        match self {
            Mounted::Http { server, .. } if req.framing != Framing::Length => {
                raw_http(server.addr, req).await
            }
            Mounted::Http { server, client } => {
                let mut r = client.request(
                    req.method.clone(),
                    format!("http://{}{}", server.addr, req.target),
                );
                for (k, v) in &req.headers {
                    r = r.header(k, v);
                }
                let resp = r.body(req.body.clone()).send().await.unwrap();
                let status = resp.status().as_u16();
                let headers = lower(resp.headers());
                Resp {
                    status,
                    headers,
                    body: resp.text().await.unwrap(),
                }
            }
            Mounted::AxumTower(router) => {
                let mut b = http::Request::builder()
                    .method(req.method.clone())
                    .uri(&req.target);
                for (k, v) in &req.headers {
                    b = b.header(k, v);
                }
                let pieces: Vec<Bytes> = req.body.chunks(100).map(Bytes::copy_from_slice).collect();
                let chunks = || {
                    futures_util::stream::iter(
                        pieces.clone().into_iter().map(Ok::<_, std::io::Error>),
                    )
                };
                let stalled = || chunks().chain(futures_util::stream::pending());
                let body = match req.framing {
                    Framing::Length => {
                        b = b.header("content-length", req.body.len());
                        axum::body::Body::from(req.body.clone())
                    }
                    Framing::Chunked => axum::body::Body::from_stream(chunks()),
                    Framing::ChunkedStalled => axum::body::Body::from_stream(stalled()),
                    Framing::DeclaredLength(n) => {
                        b = b.header("content-length", n);
                        axum::body::Body::from_stream(stalled())
                    }
                };
                let resp = router.clone().oneshot(b.body(body).unwrap()).await.unwrap();
                let (parts, body) = resp.into_parts();
                let body = axum::body::to_bytes(body, usize::MAX).await.unwrap();
                Resp {
                    status: parts.status.as_u16(),
                    headers: lower(&parts.headers),
                    body: String::from_utf8(body.to_vec()).unwrap(),
                }
            }
            Mounted::ActixTest {
                webhook,
                prefix,
                path,
            } => {
                let app =
                    actix_web::test::init_service(actix_app(webhook.clone(), prefix, path)).await;
                let method =
                    actix_web::http::Method::from_bytes(req.method.as_str().as_bytes()).unwrap();
                let mut r = actix_web::test::TestRequest::default()
                    .method(method)
                    .uri(&req.target);
                for (k, v) in &req.headers {
                    r = r.append_header((k.as_str(), v.as_str()));
                }
                let mut r = r.set_payload(req.body.clone());
                if let Framing::DeclaredLength(n) = req.framing {
                    r = r.insert_header(("content-length", n.to_string()));
                }
                let r = r.to_request();
                let resp = actix_web::test::call_service(&app, r).await;
                let status = resp.status().as_u16();
                let headers = resp
                    .headers()
                    .iter()
                    .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap().to_owned()))
                    .collect();
                let body = actix_web::test::read_body(resp).await;
                Resp {
                    status,
                    headers,
                    body: String::from_utf8(body.to_vec()).unwrap(),
                }
            }
            Mounted::WarpTest(filter) => {
                let mut r = warp::test::request()
                    .method(req.method.as_str())
                    .path(&req.target);
                for (k, v) in &req.headers {
                    r = r.header(k.as_str(), v.as_str());
                }
                let mut r = r.body(&req.body);
                if let Framing::DeclaredLength(n) = req.framing {
                    r = r.header("content-length", n.to_string());
                }
                let resp = r.reply(filter).await;
                Resp {
                    status: resp.status().as_u16(),
                    headers: lower(resp.headers()),
                    body: String::from_utf8(resp.body().to_vec()).unwrap(),
                }
            }
        }
    }
}

fn lower(headers: &http::HeaderMap) -> Vec<(String, String)> {
    headers
        .iter()
        .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap().to_owned()))
        .collect()
}

/// Sends `req` over a fresh connection by hand, framed as asked (no client library sends a
/// stalled or lying body), and reads one response.
async fn raw_http(addr: SocketAddr, req: &Req) -> Resp {
    let mut conn = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut wire = format!("{} {} HTTP/1.1\r\nhost: {addr}\r\n", req.method, req.target);
    for (k, v) in &req.headers {
        wire.push_str(&format!("{k}: {v}\r\n"));
    }
    let mut wire = match req.framing {
        Framing::DeclaredLength(n) => format!("{wire}content-length: {n}\r\n\r\n").into_bytes(),
        _ => format!("{wire}transfer-encoding: chunked\r\n\r\n").into_bytes(),
    };
    match req.framing {
        Framing::DeclaredLength(_) => wire.extend_from_slice(&req.body),
        _ => {
            for chunk in req.body.chunks(100) {
                wire.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
                wire.extend_from_slice(chunk);
                wire.extend_from_slice(b"\r\n");
            }
        }
    }
    if req.framing == Framing::Chunked {
        wire.extend_from_slice(b"0\r\n\r\n");
    }
    // The server may answer 413 and close before taking the whole body.
    let _ = conn.write_all(&wire).await;
    let read = tokio::time::timeout(Duration::from_secs(5), read_response(&mut conn)).await;
    read.unwrap_or_else(|_| {
        panic!(
            "no answer within 5 s to {:?} ({:?})",
            req.target, req.framing
        )
    })
}

/// Reads one HTTP/1.1 response: a 204, or one with a `Content-Length`.
async fn read_response(conn: &mut tokio::net::TcpStream) -> Resp {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let text = String::from_utf8_lossy(&buf).into_owned();
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap();
            let headers: Vec<(String, String)> = head
                .lines()
                .skip(1)
                .filter_map(|l| l.split_once(':'))
                .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
                .collect();
            let length = headers
                .iter()
                .find(|(k, _)| k == "content-length")
                .map(|(_, v)| v.parse::<usize>().unwrap());
            let complete = match length {
                Some(n) => body.len() >= n,
                None => status == 204 || status == 304,
            };
            if complete {
                return Resp {
                    status,
                    headers,
                    body: body.to_owned(),
                };
            }
        }
        match conn.read(&mut chunk).await {
            Ok(0) | Err(_) => panic!("connection closed mid-response: {text:?}"),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

/// A server running in a thread of its own with its own runtime; stopped when dropped.
pub struct Server {
    pub addr: SocketAddr,
    stop: Option<Box<dyn FnOnce() + Send>>,
    thread: Option<JoinHandle<()>>,
}

/// A listener on a free port of 127.0.0.1, and its address.
pub fn listener() -> (TcpListener, SocketAddr) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.set_nonblocking(true).unwrap();
    let addr = l.local_addr().unwrap();
    (l, addr)
}

fn tokio_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

impl Server {
    /// A real server of an HTTP kind serving the webhook on `prefix` + `path`.
    pub fn start(kind: Kind, webhook: StatusWebhook, prefix: &str, path: &str) -> Server {
        Server::start_on(kind, listener(), webhook, prefix, path)
    }

    /// As [`start`](Self::start), on a listener bound beforehand (so the webhook can be told
    /// its public URL).
    pub fn start_on(
        kind: Kind,
        bound: (TcpListener, SocketAddr),
        webhook: StatusWebhook,
        prefix: &str,
        path: &str,
    ) -> Server {
        match kind {
            Kind::AxumHttp => Server::axum_on(bound, axum_app(webhook, prefix, path)),
            Kind::ActixHttp => Server::actix_on(bound, webhook, prefix, path),
            Kind::WarpHttp => Server::warp_on(bound, warp_app(webhook, prefix, path)),
            other => panic!("{other:?} has no server"),
        }
    }

    fn axum_on((l, addr): (TcpListener, SocketAddr), app: Router) -> Server {
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            tokio_runtime().block_on(async move {
                let l = tokio::net::TcpListener::from_std(l).unwrap();
                axum::serve(l, app)
                    .with_graceful_shutdown(async {
                        let _ = rx.await;
                    })
                    .await
                    .unwrap();
            })
        });
        Server {
            addr,
            stop: Some(Box::new(move || {
                let _ = tx.send(());
            })),
            thread: Some(thread),
        }
    }

    fn warp_on(
        (l, addr): (TcpListener, SocketAddr),
        filter: BoxedFilter<(warp::reply::Response,)>,
    ) -> Server {
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            tokio_runtime().block_on(async move {
                let l = tokio::net::TcpListener::from_std(l).unwrap();
                warp::serve(filter)
                    .incoming(l)
                    .graceful(async {
                        let _ = rx.await;
                    })
                    .run()
                    .await;
            })
        });
        Server {
            addr,
            stop: Some(Box::new(move || {
                let _ = tx.send(());
            })),
            thread: Some(thread),
        }
    }

    /// actix-web runs its own system (runtime) in the server thread.
    fn actix_on(
        (l, addr): (TcpListener, SocketAddr),
        webhook: StatusWebhook,
        prefix: &str,
        path: &str,
    ) -> Server {
        let (prefix, path) = (prefix.to_owned(), path.to_owned());
        let (handle_tx, handle_rx) = mpsc::channel();
        let thread = std::thread::spawn(move || {
            actix_web::rt::System::new().block_on(async move {
                let server = HttpServer::new(move || actix_app(webhook.clone(), &prefix, &path))
                    .workers(2)
                    .disable_signals()
                    .shutdown_timeout(1)
                    .listen(l)
                    .unwrap()
                    .run();
                handle_tx.send(server.handle()).unwrap();
                server.await.unwrap();
            })
        });
        let handle = handle_rx.recv().unwrap();
        Server {
            addr,
            stop: Some(Box::new(move || drop(handle.stop(true)))),
            thread: Some(thread),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            stop();
        }
        if let Some(thread) = self.thread.take() {
            thread.join().unwrap();
        }
    }
}
