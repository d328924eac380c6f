//! Incoming messages: the emulator posts Twilio's signed incoming-message webhook to an app, as
//! Twilio does when someone texts one of its numbers, and returns what the app answered.
//!
//! The request is the one Twilio documents ("Messaging webhook request"): `POST`, form-encoded,
//! to exactly the configured URL (the same exact-URL transport, validation and connection
//! overrides as status callbacks), signed with `X-Twilio-Signature` over that URL and the
//! parameters with the auth token, with `I-Twilio-Idempotency-Token` (new per attempt) and
//! `User-Agent: TwilioProxy/1.1`. When the app answers TwiML with `<Message>` elements, the
//! emulator sends those replies as outbound messages.

use std::sync::Arc;

use bytes::Bytes;
use tokio::time::Instant;

use super::EmulatorError;
use super::callbacks::{Target, idempotency_token};
use super::messages;
use super::model::{self, API_VERSION};
use super::segments;
use super::state::{Footprint, Shared, hex32, inbound_rng};
use super::transport::{self, Answer, Outgoing};
use super::truth::AttemptOutcome;
use super::twiml;
use twilio_delivery::ids::{MessageSid, MessagingServiceSid};
use twilio_delivery::inbound::OptOut;
use twilio_delivery::signature::sign;

/// The most media items of one message (Twilio's limit).
const MAX_MEDIA: usize = 10;

/// The `ProfileName` of a WhatsApp sender when none is given.
pub const DEFAULT_PROFILE_NAME: &str = "Emulator User";

/// What `OptOutType` carries.
#[derive(Debug, Clone, PartialEq, Eq)]
enum OptOutSetting {
    /// `STOP`, `START` or `HELP` when the body is one of Twilio's default keywords.
    Keywords,
    /// Exactly this value.
    Set(String),
    /// Never sent.
    Off,
}

/// An incoming message for [`EmulatorHandle::deliver_inbound`](super::EmulatorHandle::deliver_inbound):
/// where the app's incoming-message webhook is, who sent what to which number.
///
/// The emulator fills in the rest as Twilio does: a new `MessageSid` (from the seed),
/// `AccountSid`, `NumMedia`, `NumSegments`, `SmsStatus=received`, `ApiVersion`, `OptOutType`
/// for the default opt-out keywords, and `ProfileName`/`WaId` when `From` is a `whatsapp:`
/// address.
///
/// ```
/// use twilio_delivery_emulator::Inbound;
///
/// let stop = Inbound::new("http://127.0.0.1:3000/sms", "+15558675310", "+15005550006", "stop");
/// let mms = Inbound::new("http://127.0.0.1:3000/sms", "+15558675310", "+15005550006", "look")
///     .media("https://example.com/cat.jpg")
///     .media_with_type("https://example.com/file", "application/pdf");
/// # let _ = (stop, mms);
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct Inbound {
    url: String,
    from: String,
    to: String,
    body: String,
    media: Vec<(String, String)>,
    messaging_service_sid: Option<MessagingServiceSid>,
    opt_out: OptOutSetting,
    profile_name: Option<String>,
    wa_id: Option<String>,
    message_sid: Option<MessageSid>,
    params: Vec<(String, String)>,
    replies: bool,
}

impl Inbound {
    /// A message `from` someone `to` one of the app's numbers, posted to `url` (the app's
    /// incoming-message webhook, exactly as it would be configured on the number in Twilio;
    /// a `#fragment` sets Twilio's connection overrides, as for status callbacks).
    pub fn new(
        url: impl Into<String>,
        from: impl Into<String>,
        to: impl Into<String>,
        body: impl Into<String>,
    ) -> Self {
        Self {
            url: url.into(),
            from: from.into(),
            to: to.into(),
            body: body.into(),
            media: Vec::new(),
            messaging_service_sid: None,
            opt_out: OptOutSetting::Keywords,
            profile_name: None,
            wa_id: None,
            message_sid: None,
            params: Vec::new(),
            replies: true,
        }
    }

    /// Attaches a media item (`MediaUrl{N}`), its `MediaContentType{N}` guessed from the URL's
    /// extension (`application/octet-stream` when unknown). At most 10.
    pub fn media(self, url: impl Into<String>) -> Self {
        let url = url.into();
        let content_type = model::content_type(&url);
        self.media_with_type(url, content_type)
    }

    /// Attaches a media item with its content type. At most 10.
    pub fn media_with_type(
        mut self,
        url: impl Into<String>,
        content_type: impl Into<String>,
    ) -> Self {
        self.media.push((url.into(), content_type.into()));
        self
    }

    /// The Messaging Service the receiving number belongs to (`MessagingServiceSid`).
    pub fn messaging_service_sid(mut self, sid: MessagingServiceSid) -> Self {
        self.messaging_service_sid = Some(sid);
        self
    }

    /// Sends exactly this `OptOutType` (e.g. `STOP` for a custom opt-out keyword). By default
    /// it is `STOP`, `START` or `HELP` when the whole body, trimmed and in any case, is one of
    /// Twilio's default keywords (`STOP`, `STOPALL`, `UNSUBSCRIBE`, `CANCEL`, `END`, `QUIT`,
    /// `OPTOUT`, `REVOKE`; `START`, `YES`, `UNSTOP`; `HELP`, `INFO`), and absent otherwise.
    pub fn opt_out_type(mut self, value: impl Into<String>) -> Self {
        self.opt_out = OptOutSetting::Set(value.into());
        self
    }

    /// Never sends `OptOutType`, whatever the body (Advanced Opt-Out turned off).
    pub fn no_opt_out_type(mut self) -> Self {
        self.opt_out = OptOutSetting::Off;
        self
    }

    /// The sender's WhatsApp profile name (`ProfileName`, sent when `From` is a `whatsapp:`
    /// address; default [`DEFAULT_PROFILE_NAME`]).
    pub fn profile_name(mut self, name: impl Into<String>) -> Self {
        self.profile_name = Some(name.into());
        self
    }

    /// The sender's WhatsApp id (`WaId`, sent when `From` is a `whatsapp:` address; default
    /// the number after `whatsapp:` without its `+`).
    pub fn wa_id(mut self, wa_id: impl Into<String>) -> Self {
        self.wa_id = Some(wa_id.into());
        self
    }

    /// Delivers under this `MessageSid` instead of a new one: a duplicate delivery of a message
    /// already delivered (Twilio's retries), or a SID of your choosing.
    /// [`EmulatorHandle::redeliver_inbound`](super::EmulatorHandle::redeliver_inbound) resends
    /// an earlier delivery exactly.
    pub fn message_sid(mut self, sid: MessageSid) -> Self {
        self.message_sid = Some(sid);
        self
    }

    /// Adds a parameter, or replaces one the emulator generates (e.g. `FromCity`, `Latitude`,
    /// `ButtonText`, or a different `NumSegments`). The signature covers it.
    pub fn param(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.params.push((name.into(), value.into()));
        self
    }

    /// Whether the `<Message>` elements of the app's TwiML answer are sent as outbound
    /// messages (default `true`).
    pub fn send_replies(mut self, on: bool) -> Self {
        self.replies = on;
        self
    }

    /// The `OptOutType` to send, if any.
    fn opt_out_value(&self) -> Option<String> {
        match &self.opt_out {
            OptOutSetting::Set(value) => Some(value.clone()),
            OptOutSetting::Off => None,
            OptOutSetting::Keywords => match OptOut::from_keyword(&self.body)? {
                OptOut::Stop => Some("STOP".to_owned()),
                OptOut::Start => Some("START".to_owned()),
                OptOut::Help => Some("HELP".to_owned()),
                _ => None,
            },
        }
    }

    /// The form parameters Twilio sends for this message, in the order Twilio sends them.
    fn params(&self, sid: &MessageSid, account_sid: &str) -> Vec<(String, String)> {
        let sid = sid.to_string();
        let whatsapp = self.from.strip_prefix("whatsapp:");
        let num_segments = if self.media.is_empty() {
            segments::count(&self.body)
        } else {
            1
        };
        let mut p: Vec<(String, String)> = vec![
            ("SmsMessageSid".into(), sid.clone()),
            ("NumMedia".into(), self.media.len().to_string()),
        ];
        if let Some(number) = whatsapp {
            p.push((
                "ProfileName".into(),
                self.profile_name
                    .clone()
                    .unwrap_or_else(|| DEFAULT_PROFILE_NAME.to_owned()),
            ));
            p.push((
                "WaId".into(),
                self.wa_id
                    .clone()
                    .unwrap_or_else(|| number.trim_start_matches('+').to_owned()),
            ));
        }
        p.push(("SmsSid".into(), sid.clone()));
        p.push(("SmsStatus".into(), "received".into()));
        p.push(("Body".into(), self.body.clone()));
        p.push(("To".into(), self.to.clone()));
        if let Some(service) = &self.messaging_service_sid {
            p.push(("MessagingServiceSid".into(), service.to_string()));
        }
        if let Some(opt_out) = self.opt_out_value() {
            p.push(("OptOutType".into(), opt_out));
        }
        p.push(("NumSegments".into(), num_segments.to_string()));
        p.push(("MessageSid".into(), sid));
        p.push(("AccountSid".into(), account_sid.to_owned()));
        p.push(("From".into(), self.from.clone()));
        for (n, (url, content_type)) in self.media.iter().enumerate() {
            p.push((format!("MediaContentType{n}"), content_type.clone()));
            p.push((format!("MediaUrl{n}"), url.clone()));
        }
        p.push(("ApiVersion".into(), API_VERSION.into()));
        for (name, value) in &self.params {
            match p.iter_mut().find(|(k, _)| k == name) {
                Some(pair) => pair.1 = value.clone(),
                None => p.push((name.clone(), value.clone())),
            }
        }
        p
    }

    /// Checks what Twilio would never send: an invalid URL, an empty `From` or `To`, more
    /// than 10 media items.
    fn check(&self) -> Result<Target, EmulatorError> {
        let invalid = |reason: &str| EmulatorError::InvalidInbound(reason.to_owned());
        let target = Target::parse(&self.url).ok_or_else(|| {
            invalid("the webhook URL is not a valid, properly encoded http(s) URL of at most 4000 characters")
        })?;
        if self.from.trim().is_empty() {
            return Err(invalid("From is empty"));
        }
        if self.to.trim().is_empty() {
            return Err(invalid("To is empty"));
        }
        if self.media.len() > MAX_MEDIA {
            return Err(invalid("more than 10 media items"));
        }
        Ok(target)
    }
}

/// A message the emulator sent because the app's TwiML answer asked for it (`<Message>`).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TwimlReply {
    /// The recipient: the element's `to`, else the incoming message's `From`.
    pub to: String,
    /// The sender: the element's `from`, else the incoming message's `To`.
    pub from: String,
    /// The text (`<Message>` text or `<Body>`), trimmed.
    pub body: String,
    /// The `<Media>` URLs.
    pub media: Vec<String>,
    /// The outbound message created (its lifecycle and status callbacks run as for any other),
    /// or `None` when it was refused.
    pub message_sid: Option<MessageSid>,
    /// The Twilio error code the reply was refused with (e.g. 21211 for an invalid `to`).
    pub error_code: Option<u32>,
}

/// One delivery attempt of an incoming message, and what the app answered.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct InboundDelivery {
    /// The `MessageSid` sent.
    pub message_sid: MessageSid,
    /// The URL requested and signed: the configured URL without its `#fragment`.
    pub url: String,
    /// Every form parameter sent, in wire order.
    pub params: Vec<(String, String)>,
    /// Whether this `MessageSid` had been delivered before (a duplicate delivery).
    pub redelivery: bool,
    /// 1 for the first try, 2 for the first retry (as the URL's connection overrides allow).
    pub attempt: u32,
    /// The `I-Twilio-Idempotency-Token` sent.
    pub idempotency_token: String,
    /// What happened: [`AttemptOutcome::Response`] with the app's HTTP status, or how the
    /// attempt failed.
    pub outcome: AttemptOutcome,
    /// The `Content-Type` the app answered with.
    pub content_type: Option<String>,
    /// The body the app answered (its TwiML), decoded as UTF-8 (invalid bytes replaced).
    pub body: String,
    /// The messages sent for the `<Message>` elements of a 2xx TwiML answer (or the text of a
    /// 2xx `text/plain` answer), in order.
    pub replies: Vec<TwimlReply>,
    /// What a redelivery needs besides the parameters.
    resend: Resend,
}

/// What [`redeliver`] reuses: the URL as configured (fragment included) and whether replies
/// are sent.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Resend {
    configured_url: String,
    replies: bool,
}

impl InboundDelivery {
    /// The HTTP status the app answered, if it answered.
    pub fn status(&self) -> Option<u16> {
        match self.outcome {
            AttemptOutcome::Response(status) => Some(status),
            _ => None,
        }
    }

    /// A parameter that was sent.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

impl Footprint for InboundDelivery {
    /// Its size and the text it owns: the parameters sent (the body, up to what the request
    /// carried), the app's answer (up to 64 KiB), the replies, the URLs and the token.
    fn footprint(&self) -> usize {
        let pair = size_of::<(String, String)>();
        let params: usize = self
            .params
            .iter()
            .map(|(k, v)| pair + k.len() + v.len())
            .sum();
        let replies: usize = self
            .replies
            .iter()
            .map(|r| {
                size_of::<TwimlReply>()
                    + r.to.len()
                    + r.from.len()
                    + r.body.len()
                    + r.media
                        .iter()
                        .map(|m| size_of::<String>() + m.len())
                        .sum::<usize>()
                    + r.message_sid.as_ref().map_or(0, |sid| sid.as_str().len())
            })
            .sum();
        size_of::<Self>()
            + self.message_sid.as_str().len()
            + self.url.len()
            + params
            + self.idempotency_token.len()
            + self.outcome.text_len()
            + self.content_type.as_ref().map_or(0, String::len)
            + self.body.len()
            + replies
            + self.resend.configured_url.len()
    }
}

/// The sequence number of the next incoming-message delivery.
fn next_seq(shared: &Shared) -> u64 {
    let mut inner = shared.lock();
    let seq = inner.next_inbound;
    inner.next_inbound = seq.wrapping_add(1);
    seq
}

/// A new `MessageSid` for the `seq`-th delivery: `MM` with media, `SM` without, 32 hex digits
/// from the seed.
fn new_sid(shared: &Shared, seq: u64, mms: bool) -> Result<MessageSid, EmulatorError> {
    let mut rng = inbound_rng(shared.settings.seed, seq);
    let prefix = if mms { "MM" } else { "SM" };
    MessageSid::new(format!("{prefix}{}", hex32(&mut rng)))
        .map_err(|_| EmulatorError::InvalidInbound("could not make a message SID".into()))
}

/// Delivers `inbound` (see [`EmulatorHandle::deliver_inbound`](super::EmulatorHandle::deliver_inbound)).
pub(crate) async fn deliver(
    shared: &Arc<Shared>,
    inbound: &Inbound,
) -> Result<InboundDelivery, EmulatorError> {
    let target = inbound.check()?;
    let seq = next_seq(shared);
    let sid = match &inbound.message_sid {
        Some(sid) => sid.clone(),
        None => new_sid(shared, seq, !inbound.media.is_empty())?,
    };
    let params = inbound.params(&sid, shared.credentials.account_sid.as_str());
    let resend = Resend {
        configured_url: inbound.url.clone(),
        replies: inbound.replies,
    };
    send(shared, &target, sid, seq, params, resend).await
}

/// Resends the last delivery of `sid` exactly (same URL and overrides, same parameters).
pub(crate) async fn redeliver(
    shared: &Arc<Shared>,
    sid: &MessageSid,
) -> Result<InboundDelivery, EmulatorError> {
    let (params, resend) = shared
        .lock()
        .inbound_log
        .iter()
        .rev()
        .find(|d| &d.message_sid == sid)
        .map(|d| (d.params.clone(), d.resend.clone()))
        .ok_or_else(|| EmulatorError::UnknownInbound(sid.clone()))?;
    let target = Target::parse(&resend.configured_url).ok_or_else(|| {
        EmulatorError::InvalidInbound("the logged webhook URL is no longer valid".into())
    })?;
    let seq = next_seq(shared);
    send(shared, &target, sid.clone(), seq, params, resend).await
}

/// Posts the signed form, retrying as the URL's overrides say, logs every attempt, and sends
/// the replies of a TwiML answer.
async fn send(
    shared: &Arc<Shared>,
    target: &Target,
    sid: MessageSid,
    seq: u64,
    params: Vec<(String, String)>,
    resend: Resend,
) -> Result<InboundDelivery, EmulatorError> {
    let (epoch, redelivery) = {
        let inner = shared.lock();
        let seen = inner.inbound_log.iter().any(|d| d.message_sid == sid);
        (inner.epoch, seen)
    };
    let signature = sign(&shared.credentials.auth_token, &target.url.signed, &params);
    let body: Bytes = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params.iter())
        .finish()
        .into();
    let o = target.overrides;
    let deadline = Instant::now() + o.total_timeout;
    let attempts = o.retries.saturating_add(1);
    // The delivery index of the idempotency token: distinct from any status callback's.
    let delivery_index = u32::MAX - u32::try_from(seq & 0x7FFF_FFFF).unwrap_or(0);
    let mut last: Option<InboundDelivery> = None;
    for attempt in 1..=attempts {
        if deadline.saturating_duration_since(Instant::now()).is_zero() {
            break;
        }
        let token = idempotency_token(shared.settings.seed, &sid, delivery_index, attempt);
        let outgoing = Outgoing {
            url: &target.url,
            signature: &signature,
            idempotency_token: &token,
            body: body.clone(),
        };
        let result =
            transport::send_reading(&outgoing, o.connect_timeout, o.read_timeout, deadline).await;
        let (outcome, answer) = match result {
            Ok(answer) => (AttemptOutcome::Response(answer.status), Some(answer)),
            Err(outcome) => (outcome, None),
        };
        let retry = attempt < attempts && o.policy.retries(&outcome);
        let (content_type, text) = answer
            .as_ref()
            .map(|a| {
                (
                    a.content_type.clone(),
                    String::from_utf8_lossy(&a.body).into_owned(),
                )
            })
            .unwrap_or_default();
        let mut delivery = InboundDelivery {
            message_sid: sid.clone(),
            url: target.url.signed.clone(),
            params: params.clone(),
            redelivery,
            attempt,
            idempotency_token: token,
            outcome,
            content_type,
            body: text,
            replies: Vec::new(),
            resend: resend.clone(),
        };
        if !retry
            && resend.replies
            && shared.lock().epoch == epoch
            && let Some(answer) = &answer
        {
            delivery.replies = send_replies(shared, answer, &params);
        }
        shared.record_inbound(epoch, delivery.clone());
        last = Some(delivery);
        if !retry {
            break;
        }
    }
    match last {
        Some(d) if d.status().is_some() => Ok(d),
        Some(d) => Err(EmulatorError::InboundNotAnswered {
            message_sid: d.message_sid,
            outcome: d.outcome,
        }),
        None => Err(EmulatorError::InboundNotAnswered {
            message_sid: sid,
            outcome: AttemptOutcome::Timeout,
        }),
    }
}

/// Whether a `Content-Type` is `essence` (parameters and case ignored).
fn is_type(content_type: Option<&str>, essences: &[&str]) -> bool {
    content_type
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| essences.iter().any(|e| v.trim().eq_ignore_ascii_case(e)))
}

/// Sends the messages a 2xx answer asks for: the `<Message>` elements of TwiML (any XML
/// content type, or a body that starts with `<`), or the text of a `text/plain` answer.
fn send_replies(
    shared: &Arc<Shared>,
    answer: &Answer,
    inbound: &[(String, String)],
) -> Vec<TwimlReply> {
    if !(200..300).contains(&answer.status) {
        return Vec::new();
    }
    let text = String::from_utf8_lossy(&answer.body);
    let content_type = answer.content_type.as_deref();
    let wanted = if is_type(content_type, &["text/plain"]) {
        let body = text.trim();
        if body.is_empty() {
            Vec::new()
        } else {
            vec![twiml::ReplyMessage {
                body: body.to_owned(),
                ..twiml::ReplyMessage::default()
            }]
        }
    } else if is_type(content_type, &["text/xml", "application/xml"])
        || text.trim_start().starts_with('<')
    {
        twiml::messages(&text)
    } else {
        Vec::new()
    };
    let get = |name: &str| {
        inbound
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    wanted
        .into_iter()
        .map(|m| {
            let to = m.to.unwrap_or_else(|| get("From"));
            let from = m.from.unwrap_or_else(|| get("To"));
            let mut params = vec![
                ("To".to_owned(), to.clone()),
                ("From".to_owned(), from.clone()),
            ];
            if !m.body.is_empty() {
                params.push(("Body".to_owned(), m.body.clone()));
            }
            params.extend(m.media.iter().map(|u| ("MediaUrl".to_owned(), u.clone())));
            if let Some(callback) = &m.status_callback {
                params.push(("StatusCallback".to_owned(), callback.clone()));
            }
            let (message_sid, error_code) = match messages::create_message(shared, &params) {
                Ok((sid, _)) => (Some(sid), None),
                Err(e) => (None, Some(e.code)),
            };
            TwimlReply {
                to,
                from,
                body: m.body,
                media: m.media,
                message_sid,
                error_code,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sid() -> MessageSid {
        MessageSid::new("SM0123456789abcdef0123456789abcdef").unwrap()
    }

    fn get<'a>(p: &'a [(String, String)], k: &str) -> Option<&'a str> {
        p.iter().find(|(key, _)| key == k).map(|(_, v)| v.as_str())
    }

    #[test]
    fn default_keywords_set_opt_out_type() {
        for (body, expected) in [
            ("STOP", Some("STOP")),
            ("  stopall \n", Some("STOP")),
            ("Unsubscribe", Some("STOP")),
            ("cancel", Some("STOP")),
            ("end", Some("STOP")),
            ("quit", Some("STOP")),
            ("optout", Some("STOP")),
            ("revoke", Some("STOP")),
            ("start", Some("START")),
            ("YES", Some("START")),
            ("unstop", Some("START")),
            ("help", Some("HELP")),
            ("Info", Some("HELP")),
            ("stop please", None),
            ("hello", None),
        ] {
            let p = Inbound::new("http://h/sms", "+1", "+2", body).params(&sid(), "AC");
            assert_eq!(get(&p, "OptOutType"), expected, "{body:?}");
        }
        let off = Inbound::new("http://h/sms", "+1", "+2", "STOP").no_opt_out_type();
        assert_eq!(get(&off.params(&sid(), "AC"), "OptOutType"), None);
        let custom = Inbound::new("http://h/sms", "+1", "+2", "arret").opt_out_type("STOP");
        assert_eq!(
            get(&custom.params(&sid(), "AC"), "OptOutType"),
            Some("STOP")
        );
    }

    #[test]
    fn whatsapp_fields_media_and_overrides() {
        let p = Inbound::new("http://h/sms", "whatsapp:+15551234567", "whatsapp:+1", "hi")
            .media("https://example.com/a.png")
            .media_with_type("https://example.com/doc", "application/pdf")
            .param("NumSegments", "3")
            .param("FromCity", "SPRINGFIELD")
            .params(&sid(), "AC1");
        assert_eq!(get(&p, "WaId"), Some("15551234567"));
        assert_eq!(get(&p, "ProfileName"), Some(DEFAULT_PROFILE_NAME));
        assert_eq!(get(&p, "NumMedia"), Some("2"));
        assert_eq!(get(&p, "MediaContentType0"), Some("image/png"));
        assert_eq!(get(&p, "MediaUrl1"), Some("https://example.com/doc"));
        assert_eq!(get(&p, "MediaContentType1"), Some("application/pdf"));
        assert_eq!(get(&p, "NumSegments"), Some("3"));
        assert_eq!(get(&p, "FromCity"), Some("SPRINGFIELD"));
        assert_eq!(get(&p, "SmsStatus"), Some("received"));
        assert_eq!(p.iter().filter(|(k, _)| k == "NumSegments").count(), 1);
        let sms = Inbound::new("http://h/sms", "+15551234567", "+1", "hi").params(&sid(), "AC1");
        assert_eq!(get(&sms, "WaId"), None);
        assert_eq!(get(&sms, "ProfileName"), None);
    }

    #[test]
    fn check_refuses_what_twilio_never_sends() {
        assert!(Inbound::new("not a url", "+1", "+2", "x").check().is_err());
        assert!(
            Inbound::new("http://h/a b", "+1", "+2", "x")
                .check()
                .is_err()
        );
        assert!(Inbound::new("http://h/", " ", "+2", "x").check().is_err());
        assert!(Inbound::new("http://h/", "+1", "", "x").check().is_err());
        let mut many = Inbound::new("http://h/", "+1", "+2", "x");
        for n in 0..11 {
            many = many.media(format!("http://h/{n}.jpg"));
        }
        assert!(many.check().is_err());
        assert!(
            Inbound::new("http://h/sms#rc=2", "+1", "+2", "x")
                .check()
                .is_ok()
        );
    }
}
