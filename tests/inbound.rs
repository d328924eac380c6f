//! Incoming messages end to end through the emulator, under each adapter: the emulator posts a
//! signed incoming-message webhook, the app records it once (a redelivery changes nothing and
//! publishes nothing), answers TwiML (which the emulator turns into a reply), and a STOP
//! suppresses the sender so that the next send to it is refused without reaching Twilio.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use common::DownStore;
use twilio_delivery::feed::FeedStore;
use twilio_delivery::guard::WebhookGuard;
use twilio_delivery::inbound_webhook::InboundWebhook;
use twilio_delivery::optout::{MemoryOptOuts, OptOutError, OptOutList, OptOutSource, Suppression};
use twilio_delivery::twiml::{Message, MessagingResponse};
use twilio_delivery::{
    Client, Error, MemoryStore, MessageStatus, PublicEndpoint, SendMessage, SignatureValidator,
    StatusStore, adapters,
};
use twilio_delivery_emulator::{Chaos, Emulator, EmulatorHandle, Inbound};

const ALICE: &str = "+14155550123";
const APP_NUMBER: &str = "+15005550006";

#[derive(Debug, Clone, Copy)]
enum Framework {
    Axum,
    ActixWeb,
    Warp,
}

/// An emulator with no chaos, seeded with `seed`.
async fn calm_emulator(seed: u64) -> EmulatorHandle {
    Emulator::builder()
        .seed(seed)
        .chaos(Chaos::calm())
        .start()
        .await
        .unwrap()
}

/// Serves the incoming-message handler at `/twilio/incoming` with `framework`.
fn serve(framework: Framework, inbound: InboundWebhook, listener: std::net::TcpListener) {
    std::thread::spawn(move || match framework {
        Framework::ActixWeb => actix_web::rt::System::new().block_on(async move {
            actix_web::HttpServer::new(move || {
                actix_web::App::new().service(adapters::actix_web::inbound_resource(
                    inbound.clone(),
                    "/twilio/incoming",
                ))
            })
            .workers(1)
            .disable_signals()
            .listen(listener)
            .unwrap()
            .run()
            .await
            .unwrap();
        }),
        other => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(async move {
                listener.set_nonblocking(true).unwrap();
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                if matches!(other, Framework::Axum) {
                    let app: axum::Router =
                        adapters::axum::inbound_router(inbound, "/twilio/incoming");
                    axum::serve(listener, app).await.unwrap();
                } else {
                    let filter = adapters::warp::inbound_filter(inbound, "/twilio/incoming");
                    warp::serve(filter).incoming(listener).run().await;
                }
            }),
    });
}

async fn app(framework: Framework, emulator: &EmulatorHandle) -> (String, Arc<MemoryStore>) {
    let store = Arc::new(MemoryStore::new());
    let (url, _) = app_with(framework, emulator, store.clone(), store.clone());
    (url, store)
}

/// Serves the app over `store`, with `list` as its opt-out list; its callback URL, and how many
/// messages its replier was called for.
fn app_with(
    framework: Framework,
    emulator: &EmulatorHandle,
    store: Arc<dyn StatusStore>,
    list: Arc<dyn OptOutList>,
) -> (String, Arc<AtomicUsize>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    let endpoint = PublicEndpoint::new(&format!("http://{addr}"), "/twilio/incoming").unwrap();
    let guard = WebhookGuard::builder(SignatureValidator::new(emulator.auth_token().clone()))
        .endpoint(&endpoint)
        .build()
        .unwrap();
    let replied = Arc::new(AtomicUsize::new(0));
    let counted = replied.clone();
    let inbound = InboundWebhook::builder(guard, store)
        .opt_outs(list)
        .reply(move |message| {
            counted.fetch_add(1, Ordering::SeqCst);
            async move {
                if message.opt_out().is_some() {
                    return MessagingResponse::new();
                }
                MessagingResponse::new()
                    .message(Message::new(format!("Thanks, you said: {}", message.body)))
            }
        })
        .build();
    serve(framework, inbound, listener);
    (endpoint.callback_url(), replied)
}

async fn end_to_end(framework: Framework) {
    let emulator = calm_emulator(5).await;
    let (url, store) = app(framework, &emulator).await;

    let first = emulator
        .deliver_inbound(Inbound::new(&url, ALICE, APP_NUMBER, "Hello & <hi>"))
        .await
        .unwrap();
    assert_eq!(first.status(), Some(200), "{framework:?}: {}", first.body);
    assert!(
        first
            .content_type
            .as_deref()
            .is_some_and(|c| c.starts_with("text/xml"))
    );
    assert!(
        first
            .body
            .contains("<Message>Thanks, you said: Hello &amp; &lt;hi&gt;</Message>"),
        "{}",
        first.body
    );
    assert_eq!(first.replies.len(), 1, "the emulator sent the TwiML reply");
    assert_eq!(first.replies[0].to, ALICE);

    // Twilio delivers again: the message stays recorded once and is not answered twice.
    let again = emulator
        .redeliver_inbound(&first.message_sid)
        .await
        .unwrap();
    assert_eq!(again.status(), Some(200));
    assert_eq!(
        again.body,
        r#"<?xml version="1.0" encoding="UTF-8"?><Response/>"#
    );
    let record = store.get(&first.message_sid).await.unwrap().unwrap();
    assert_eq!(record.status, MessageStatus::Received);
    assert_eq!(record.from.as_deref(), Some(ALICE));
    assert_eq!(record.body.as_deref(), Some("Hello & <hi>"));
    let changes = store.changes_after(0, 100).await.unwrap();
    let mine: Vec<_> = changes
        .iter()
        .filter(|c| c.change.sid == first.message_sid)
        .collect();
    assert_eq!(mine.len(), 1, "{framework:?}: one change on the feed");

    // STOP: suppressed; a send to Alice is refused before reaching the emulator.
    let stop = emulator
        .deliver_inbound(Inbound::new(&url, ALICE, APP_NUMBER, "STOP"))
        .await
        .unwrap();
    assert_eq!(stop.status(), Some(200));
    assert!(stop.replies.is_empty());
    assert!(store.is_opted_out(ALICE).await.unwrap());
    let client = Client::builder(
        emulator.account_sid().clone(),
        emulator.auth_token().clone(),
    )
    .base_url(emulator.base_url().parse().unwrap())
    .opt_outs(store.clone())
    .build()
    .unwrap();
    let before = emulator.truth().len();
    let refused = client
        .messages()
        .create(&SendMessage::new(ALICE).from(APP_NUMBER).body("sale!"))
        .await
        .unwrap_err();
    assert!(matches!(refused, Error::OptedOut));
    assert_eq!(
        emulator.truth().len(),
        before,
        "nothing reached the emulator"
    );

    // A forged request is refused and records nothing.
    let forged = reqwest::Client::new()
        .post(url.split('#').next().unwrap())
        .header("content-type", "application/x-www-form-urlencoded")
        .header("x-twilio-signature", "AAAAAAAAAAAAAAAAAAAAAAAAAAA=")
        .body("MessageSid=SM0123456789abcdef0123456789abcdef&From=%2B1&To=%2B2&Body=x")
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 403);

    // Any other method: 405, saying which one is allowed.
    let get = reqwest::Client::new()
        .get(url.split('#').next().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(get.status(), 405, "{framework:?}");
    assert_eq!(
        get.headers().get("allow").map(|v| v.as_bytes()),
        Some(&b"POST"[..]),
        "{framework:?}"
    );
    emulator.shutdown().await;
}

/// An opt-out list that cannot be written until it is told it can.
#[derive(Debug)]
struct Flaky {
    list: Arc<MemoryStore>,
    down: std::sync::atomic::AtomicBool,
}

#[twilio_delivery::async_trait]
impl OptOutList for Flaky {
    async fn is_opted_out(&self, number: &str) -> Result<bool, OptOutError> {
        self.list.is_opted_out(number).await
    }
    async fn opt_out(&self, number: &str, source: OptOutSource) -> Result<bool, OptOutError> {
        if self.down.load(Ordering::Acquire) {
            return Err(OptOutError(Box::new(std::io::Error::other("list down"))));
        }
        self.list.opt_out(number, source).await
    }
    async fn opt_in(&self, number: &str) -> Result<bool, OptOutError> {
        if self.down.load(Ordering::Acquire) {
            return Err(OptOutError(Box::new(std::io::Error::other("list down"))));
        }
        self.list.opt_in(number).await
    }
    async fn opt_outs(&self) -> Result<Vec<Suppression>, OptOutError> {
        self.list.opt_outs().await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_the_list_cannot_take_is_answered_503_and_taken_on_redelivery() {
    let emulator = calm_emulator(6).await;
    let store = Arc::new(MemoryStore::new());
    let flaky = Arc::new(Flaky {
        list: store.clone(),
        down: std::sync::atomic::AtomicBool::new(true),
    });
    let (url, replied) = app_with(Framework::Axum, &emulator, store.clone(), flaky.clone());

    let stop = emulator
        .deliver_inbound(Inbound::new(&url, ALICE, APP_NUMBER, "STOP"))
        .await
        .unwrap();
    assert_eq!(stop.status(), Some(503), "{}", stop.body);
    assert!(!store.is_opted_out(ALICE).await.unwrap());
    // Twilio delivers it again (a retry, or the fallback URL): now the list takes it.
    flaky.down.store(false, Ordering::Release);
    let again = emulator.redeliver_inbound(&stop.message_sid).await.unwrap();
    assert_eq!(again.status(), Some(200));
    assert!(store.is_opted_out(ALICE).await.unwrap());
    assert_eq!(
        replied.load(Ordering::SeqCst),
        1,
        "the redelivery is answered: the 503 recorded nothing"
    );
    emulator.shutdown().await;
}

/// A START handled, then a STOP, then the START delivered again (a Twilio retry after a lost
/// answer): the sender stays opted out, and the repeat is not answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redelivered_start_does_not_undo_a_later_stop() {
    let emulator = calm_emulator(7).await;
    let store = Arc::new(MemoryStore::new());
    let (url, replied) = app_with(Framework::Axum, &emulator, store.clone(), store.clone());
    let start = emulator
        .deliver_inbound(Inbound::new(&url, ALICE, APP_NUMBER, "START"))
        .await
        .unwrap();
    assert_eq!(start.status(), Some(200), "{}", start.body);
    let stop = emulator
        .deliver_inbound(Inbound::new(&url, ALICE, APP_NUMBER, "STOP"))
        .await
        .unwrap();
    assert_eq!(stop.status(), Some(200), "{}", stop.body);
    assert!(store.is_opted_out(ALICE).await.unwrap());

    let again = emulator
        .redeliver_inbound(&start.message_sid)
        .await
        .unwrap();
    assert_eq!(again.status(), Some(200));
    assert!(
        store.is_opted_out(ALICE).await.unwrap(),
        "the older START did not undo the STOP"
    );
    assert_eq!(
        replied.load(Ordering::SeqCst),
        2,
        "the repeat is not answered"
    );
    emulator.shutdown().await;
}

/// A START the list took whose record failed (503), then the sender's STOP, then Twilio
/// delivers the START again: the sender stays opted out (the list applies a message's keyword
/// once), and the redelivery, now recorded, is answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redelivered_keyword_whose_record_failed_does_not_undo_a_later_one() {
    let emulator = calm_emulator(8).await;
    let store = Arc::new(DownStore::default());
    let list = Arc::new(MemoryOptOuts::new());
    let (url, replied) = app_with(Framework::Axum, &emulator, store.clone(), list.clone());

    let start = emulator
        .deliver_inbound(Inbound::new(&url, ALICE, APP_NUMBER, "START"))
        .await
        .unwrap();
    assert_eq!(start.status(), Some(503), "{}", start.body);
    store.up.store(true, Ordering::Release);
    let stop = emulator
        .deliver_inbound(Inbound::new(&url, ALICE, APP_NUMBER, "STOP"))
        .await
        .unwrap();
    assert_eq!(stop.status(), Some(200), "{}", stop.body);
    assert!(list.is_opted_out(ALICE).await.unwrap());

    let again = emulator
        .redeliver_inbound(&start.message_sid)
        .await
        .unwrap();
    assert_eq!(again.status(), Some(200), "{}", again.body);
    assert!(
        list.is_opted_out(ALICE).await.unwrap(),
        "the older START undid the later STOP"
    );
    assert!(store.get(&start.message_sid).await.unwrap().is_some());
    assert_eq!(
        replied.load(Ordering::SeqCst),
        2,
        "the STOP and the redelivered START are answered"
    );
    emulator.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn through_axum() {
    end_to_end(Framework::Axum).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn through_actix_web() {
    end_to_end(Framework::ActixWeb).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn through_warp() {
    end_to_end(Framework::Warp).await;
}
