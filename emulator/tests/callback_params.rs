//! The parameters of status callbacks that depend on the message: the `From` of a `canceled`
//! callback for a Messaging Service message that had no sender yet, and the channel fields of
//! WhatsApp and RCS callbacks.

mod support;

use std::time::Duration;

use support::{Api, Receiver};
use twilio_delivery_emulator::{Chaos, Emulator, EmulatorHandle};

const TO: &str = "+15558675310";
const SERVICE: &str = "MG0123456789abcdef0123456789abcdef";

async fn start(seed: u64) -> (EmulatorHandle, Api, Receiver) {
    let emu = Emulator::builder()
        .seed(seed)
        .chaos(Chaos::calm().step_delay(Duration::from_millis(1), Duration::from_millis(3)))
        .start()
        .await
        .unwrap();
    let api = Api::new(&emu);
    let rx = Receiver::start(emu.auth_token()).await;
    (emu, api, rx)
}

#[tokio::test]
async fn canceled_callback_of_a_service_message_without_sender_has_a_from() {
    let (emu, api, rx) = start(41).await;
    let send_at = support::send_at(30);
    let m = api
        .create(&[
            ("To", TO),
            ("MessagingServiceSid", SERVICE),
            ("Body", "later"),
            ("ScheduleType", "fixed"),
            ("SendAt", &send_at),
            ("StatusCallback", &format!("{}/cb", rx.base)),
        ])
        .await;
    assert_eq!(m["from"], serde_json::Value::Null);
    let sid = m["sid"].as_str().unwrap();
    let r = api
        .post(&api.message_path(sid), &[("Status", "canceled")])
        .await;
    assert_eq!(r.json["status"], "canceled");
    emu.wait_idle(Duration::from_secs(10)).await.unwrap();
    let got = rx.received();
    assert_eq!(got.len(), 1);
    let canceled = &got[0];
    assert_eq!(canceled.status(), "canceled");
    assert!(canceled.signature_valid);
    let from = canceled.param("From").expect("From on every callback");
    assert!(from.starts_with('+'), "{from}");
    assert_eq!(canceled.param("MessagingServiceSid"), Some(SERVICE));
    assert_eq!(canceled.param("To"), Some(TO));
}

#[tokio::test]
async fn whatsapp_and_rcs_callbacks_carry_the_channel_fields() {
    let (emu, api, rx) = start(42).await;
    let callback = format!("{}/cb", rx.base);
    let whatsapp = api
        .create(&[
            ("To", "whatsapp:+15558675310"),
            ("From", "whatsapp:+15005550006"),
            ("Body", "hi"),
            ("StatusCallback", &callback),
        ])
        .await["sid"]
        .as_str()
        .unwrap()
        .to_owned();
    let rcs = api
        .create(&[
            ("To", "rcs:+15558675311"),
            ("MessagingServiceSid", SERVICE),
            ("Body", "hi"),
            ("StatusCallback", &callback),
        ])
        .await["sid"]
        .as_str()
        .unwrap()
        .to_owned();
    let sms = api
        .create(&[
            ("To", TO),
            ("From", "+15005550006"),
            ("Body", "hi"),
            ("StatusCallback", &callback),
        ])
        .await["sid"]
        .as_str()
        .unwrap()
        .to_owned();
    emu.wait_idle(Duration::from_secs(10)).await.unwrap();
    let got = rx.received();
    let mut install = None;
    for r in &got {
        assert!(r.signature_valid);
        let expected = if r.sid() == whatsapp {
            Some(("whatsapp", "+15558675310"))
        } else if r.sid() == rcs {
            Some(("rcs", "+15558675311"))
        } else {
            assert_eq!(r.sid(), sms);
            None
        };
        match expected {
            Some((prefix, address)) => {
                assert_eq!(r.param("ChannelPrefix"), Some(prefix));
                assert_eq!(r.param("ChannelToAddress"), Some(address));
                let xe = r.param("ChannelInstallSid").unwrap().to_owned();
                assert!(xe.starts_with("XE") && xe.len() == 34, "{xe}");
                assert_eq!(*install.get_or_insert(xe.clone()), xe, "one installation");
            }
            None => {
                for key in ["ChannelPrefix", "ChannelInstallSid", "ChannelToAddress"] {
                    assert_eq!(r.param(key), None, "{key} on an SMS callback");
                }
            }
        }
    }
    let count = |sid: &str| got.iter().filter(|r| r.sid() == sid).count();
    assert_eq!((count(&whatsapp), count(&rcs), count(&sms)), (2, 3, 2));
}

#[tokio::test]
async fn a_service_picks_its_sender_on_the_recipients_channel() {
    let (emu, api, rx) = start(43).await;
    let callback = format!("{}/cb", rx.base);
    let mut expected = Vec::new();
    for (to, sender) in [
        ("whatsapp:+15558675310", "whatsapp:+15005550006"),
        ("rcs:+15558675311", "rcs:+15005550006"),
        (TO, "+15005550006"),
    ] {
        let m = api
            .create(&[
                ("To", to),
                ("MessagingServiceSid", SERVICE),
                ("Body", "hi"),
                ("StatusCallback", &callback),
            ])
            .await;
        expected.push((m["sid"].as_str().unwrap().to_owned(), sender, 3));
    }
    // Canceled before the service picked a sender: the callback names one on the channel too.
    let send_at = support::send_at(30);
    let scheduled = api
        .create(&[
            ("To", "whatsapp:+15558675312"),
            ("MessagingServiceSid", SERVICE),
            ("Body", "later"),
            ("ScheduleType", "fixed"),
            ("SendAt", &send_at),
            ("StatusCallback", &callback),
        ])
        .await["sid"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = api
        .post(&api.message_path(&scheduled), &[("Status", "canceled")])
        .await;
    assert_eq!(r.json["status"], "canceled");
    emu.wait_idle(Duration::from_secs(10)).await.unwrap();
    let got = rx.received();
    for (sid, sender, count) in &expected {
        let m = api.get(&api.message_path(sid)).await.json;
        assert_eq!(m["from"], *sender, "{m}");
        let callbacks: Vec<_> = got.iter().filter(|r| r.sid() == sid).collect();
        assert_eq!(callbacks.len(), *count, "{sid}");
        for r in callbacks {
            assert_eq!(r.param("From"), Some(*sender), "{} of {sid}", r.status());
            assert!(r.signature_valid);
        }
    }
    let canceled: Vec<_> = got.iter().filter(|r| r.sid() == scheduled).collect();
    assert_eq!(canceled.len(), 1);
    assert_eq!(canceled[0].status(), "canceled");
    assert_eq!(canceled[0].param("From"), Some("whatsapp:+15005550006"));
}
