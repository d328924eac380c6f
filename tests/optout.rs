//! Opt-outs through the client, against the local emulator: a STOP from a recipient makes the
//! next send to it fail locally (no request reaches the emulator), START allows it again, and a
//! 21610 answer from Twilio (the emulator's magic number +15005550004) puts the number on the
//! list.

mod common;

use std::sync::Arc;

use common::incoming;
use twilio_delivery::optout::{MemoryOptOuts, OptOutList, OptOutSource};
use twilio_delivery::{Client, Error, SendMessage};
use twilio_delivery_emulator::{Chaos, Emulator, EmulatorHandle};

const ALICE: &str = "+14155550123";

async fn emulator() -> EmulatorHandle {
    Emulator::builder()
        .seed(3)
        .chaos(Chaos::calm())
        .start()
        .await
        .unwrap()
}

fn client(emulator: &EmulatorHandle, list: Arc<dyn OptOutList>) -> Client {
    Client::builder(
        emulator.account_sid().clone(),
        emulator.auth_token().clone(),
    )
    .base_url(emulator.base_url().parse().unwrap())
    .opt_outs(list)
    .build()
    .unwrap()
}

fn sms(to: &str) -> SendMessage {
    SendMessage::new(to).from("+15005550006").body("hello")
}

#[tokio::test]
async fn stop_refuses_locally_start_allows_again() {
    let emulator = emulator().await;
    let list = Arc::new(MemoryOptOuts::new());
    let client = client(&emulator, list.clone());

    client.messages().create(&sms(ALICE)).await.unwrap();
    assert_eq!(emulator.truth().len(), 1);

    list.apply_inbound(&incoming(1, ALICE, " Stop "))
        .await
        .unwrap();
    let refused = client.messages().create(&sms(ALICE)).await.unwrap_err();
    assert!(matches!(refused, Error::OptedOut), "{refused:?}");
    assert!(refused.is_safe_to_resend() && !refused.is_retryable());
    assert_eq!(emulator.truth().len(), 1, "no request reached the emulator");
    let listed = list.opt_outs().await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(
        (listed[0].number.as_str(), listed[0].source),
        (ALICE, OptOutSource::Keyword)
    );

    list.apply_inbound(&incoming(2, ALICE, "START"))
        .await
        .unwrap();
    client.messages().create(&sms(ALICE)).await.unwrap();
    assert_eq!(emulator.truth().len(), 2);
    emulator.shutdown().await;
}

#[tokio::test]
async fn a_21610_from_twilio_suppresses_the_number() {
    let emulator = emulator().await;
    let list = Arc::new(MemoryOptOuts::new());
    let client = client(&emulator, list.clone());
    let unsubscribed = "+15005550004"; // Twilio's magic number: 21610
    let first = client
        .messages()
        .create(&sms(unsubscribed))
        .await
        .unwrap_err();
    assert_eq!(first.code(), Some(21610));
    assert!(list.is_opted_out(unsubscribed).await.unwrap());
    let listed = list.opt_outs().await.unwrap();
    assert_eq!(listed[0].source, OptOutSource::Error21610);
    let second = client
        .messages()
        .create(&sms(unsubscribed))
        .await
        .unwrap_err();
    assert!(matches!(second, Error::OptedOut));
    assert!(list.opt_in(unsubscribed).await.unwrap());
    assert!(!list.is_opted_out(unsubscribed).await.unwrap());
    emulator.shutdown().await;
}
