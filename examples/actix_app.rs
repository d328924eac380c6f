//! An actix-web app that sends SMS through Twilio and knows what became of each one.
//!
//! Two listeners:
//! - **public** (`BIND_ADDR`, default `127.0.0.1:3000`; put it behind your tunnel or proxy):
//!   only `POST /twilio/status`, the signed status webhook;
//! - **admin** (`ADMIN_ADDR`, default `127.0.0.1:3001`; keep it private): `POST /send` with
//!   `{"to": "+15558675310", "body": "Hello"}` and `GET /messages/{sid}`.
//!
//! The reconciler polls Twilio for messages still not final after 15 minutes.
//!
//! ```text
//! TWILIO_ACCOUNT_SID=AC... TWILIO_AUTH_TOKEN=... TWILIO_FROM=+15017122661 \
//! PUBLIC_BASE_URL=https://your-tunnel.example.com \
//! cargo run --example actix_app --features actix-web,sqlite
//! ```
//!
//! `PUBLIC_BASE_URL` is where Twilio reaches the public listener (with any path prefix your
//! proxy strips). Optional: `DATABASE_URL` (`sqlite:path`, default `sqlite:twilio-delivery.db`,
//! or `postgres://...` with `--features postgres`), `TWILIO_API_BASE` (e.g. the local emulator)
//! and `RUST_LOG`. Ctrl-C or SIGTERM stops it gracefully: requests in flight are answered,
//! then the reconciler stops.

mod shared;

use std::error::Error;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::{App, HttpResponse, HttpServer, web};
use serde_json::Value;
use shared::{AppError, AppState, Config, SendRequest, message, send};
use twilio_delivery::reconcile::Reconciler;
use twilio_delivery::webhook::StatusWebhook;
use twilio_delivery::{Client, SignatureValidator, adapters};

/// How long a client may take to send its request head, and to start the next request on a
/// keep-alive connection (actix answers 408 and closes the connection after it).
const HEAD_TIMEOUT: Duration = Duration::from_secs(5);

fn main() -> ExitCode {
    shared::init_tracing();
    match actix_web::rt::System::new().block_on(run()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("actix_app: {}", shared::report(&*e));
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), Box<dyn Error>> {
    let config = Config::from_env()?;
    let store = shared::open_store(&config.database_url).await?;

    // One endpoint: the StatusCallback URL sent to Twilio and the URL the webhook validates,
    // byte for byte. The recommended overrides make Twilio retry 5xx answers and timeouts.
    let endpoint = config
        .endpoint("/twilio/status")?
        .with_recommended_overrides();
    let webhook = StatusWebhook::builder(
        SignatureValidator::new(config.auth_token.clone()),
        store.clone(),
    )
    .endpoint(&endpoint)
    // Callbacks of any other account are refused (403).
    .account_sid(config.account_sid.clone())
    .build()?;

    let mut client = Client::builder(config.account_sid.clone(), config.auth_token.clone());
    if let Some(base) = &config.api_base {
        client = client.base_url(base.clone());
    }
    let client = client.build()?;

    // Every 5 minutes, poll Twilio for messages still not final after 15 minutes.
    let reconciler = Reconciler::builder(client.clone(), store.clone())
        .build()?
        .spawn();

    let path = endpoint.path().to_owned();
    let public = HttpServer::new(move || {
        App::new().configure(adapters::actix_web::configure(webhook.clone(), &path))
    })
    .client_request_timeout(HEAD_TIMEOUT)
    .keep_alive(HEAD_TIMEOUT)
    // Signals are handled below, for both servers at once.
    .disable_signals()
    .bind(config.bind_addr)
    .map_err(|e| format!("cannot listen on BIND_ADDR {}: {e}", config.bind_addr))?;
    let state = AppState {
        client,
        store,
        endpoint,
        from: config.from.clone(),
    };
    let admin = HttpServer::new(move || {
        App::new()
            .app_data(web::Data::new(state.clone()))
            .route("/send", web::post().to(send_route))
            .route("/messages/{sid}", web::get().to(message_route))
    })
    .client_request_timeout(HEAD_TIMEOUT)
    .disable_signals()
    .bind(config.admin_addr)
    .map_err(|e| format!("cannot listen on ADMIN_ADDR {}: {e}", config.admin_addr))?;
    eprintln!(
        "webhook on {}; admin (send, messages) on {}",
        urls(&public.addrs()),
        urls(&admin.addrs())
    );
    let (public, admin) = (public.run(), admin.run());
    let (public_handle, admin_handle) = (public.handle(), admin.handle());
    actix_web::rt::spawn(async move {
        shared::shutdown_signal().await;
        tokio::join!(public_handle.stop(true), admin_handle.stop(true));
    });
    let (public, admin) = tokio::join!(public, admin);
    public?;
    admin?;
    reconciler.shutdown().await;
    Ok(())
}

/// `http://` URLs of the addresses a server listens on (`http://127.0.0.1:3000`, or
/// `http://[::1]:3000` for IPv6).
fn urls(addrs: &[SocketAddr]) -> String {
    let urls: Vec<String> = addrs.iter().map(|a| format!("http://{a}")).collect();
    urls.join(", ")
}

async fn send_route(state: web::Data<AppState>, request: web::Json<SendRequest>) -> HttpResponse {
    reply(
        StatusCode::CREATED,
        send(&state, request.into_inner()).await,
    )
}

async fn message_route(state: web::Data<AppState>, sid: web::Path<String>) -> HttpResponse {
    reply(StatusCode::OK, message(&state, &sid).await)
}

fn reply(ok: StatusCode, result: Result<Value, AppError>) -> HttpResponse {
    match result {
        Ok(body) => HttpResponse::build(ok).json(body),
        Err(e) => {
            let status =
                StatusCode::from_u16(e.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            HttpResponse::build(status).json(e.body)
        }
    }
}
