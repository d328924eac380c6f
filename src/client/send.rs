//! `SendMessage`: every parameter of the spec's `CreateMessageRequest`, typed, with local checks.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use time::OffsetDateTime;
use time::macros::format_description;
use url::Url;

use super::enums::{AddressRetention, ContentRetention, RiskCheck, ScheduleType, TrafficType};
use crate::endpoint::check_callback_url;
use crate::error::{Error, Result};
use crate::ids::MessagingServiceSid;

/// The most `MediaUrl`s one message may carry.
pub const MAX_MEDIA: usize = 10;
/// The longest `ValidityPeriod` Twilio accepts (10 hours).
pub const MAX_VALIDITY_PERIOD: Duration = Duration::from_secs(36_000);
/// A scheduled `SendAt` must be more than this far ahead.
pub const MIN_SCHEDULE_AHEAD: Duration = Duration::from_secs(5 * 60);
/// A scheduled `SendAt` may be at most this far ahead (35 days).
pub const MAX_SCHEDULE_AHEAD: Duration = Duration::from_secs(35 * 24 * 3600);

/// Text that may be personal data: `Debug` shows only its length.
#[derive(Clone, PartialEq, Eq)]
struct Text(String);

impl fmt::Debug for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<{} chars>", self.0.chars().count())
    }
}

/// A message to send: the parameters of `POST /Accounts/{AccountSid}/Messages.json`.
///
/// Start with [`SendMessage::new`] (the recipient), then set a sender ([`from`](Self::from) or
/// [`messaging_service`](Self::messaging_service)) and content ([`body`](Self::body),
/// [`media_url`](Self::media_url) or [`content_sid`](Self::content_sid)). The client checks the
/// combination before sending ([`validate`](Self::validate)); a bad one fails with
/// [`Error::InvalidRequest`] and no request is made. `Debug` shows the length of the body and
/// content variables, not their text. `MaxPrice` is obsolete (no effect since 2024-06-03) and
/// not offered.
///
/// ```
/// use twilio_delivery::client::SendMessage;
///
/// let msg = SendMessage::new("+15558675310")
///     .from("+15017122661")
///     .body("Your code is 123456");
/// assert!(msg.validate().is_ok());
/// ```
#[derive(Clone, PartialEq)]
#[must_use]
pub struct SendMessage {
    to: String,
    from: Option<String>,
    messaging_service_sid: Option<MessagingServiceSid>,
    body: Option<Text>,
    media_urls: Vec<Url>,
    content_sid: Option<String>,
    content_variables: Option<Text>,
    status_callback: Option<String>,
    application_sid: Option<String>,
    validity_period: Option<Duration>,
    attempt: Option<u32>,
    provide_feedback: Option<bool>,
    force_delivery: Option<bool>,
    content_retention: Option<ContentRetention>,
    address_retention: Option<AddressRetention>,
    smart_encoded: Option<bool>,
    persistent_actions: Vec<String>,
    shorten_urls: Option<bool>,
    schedule_type: Option<ScheduleType>,
    send_at: Option<OffsetDateTime>,
    send_as_mms: Option<bool>,
    risk_check: Option<RiskCheck>,
    fallback_from: Option<String>,
    traffic_type: Option<TrafficType>,
}

impl std::fmt::Debug for SendMessage {
    /// Phone numbers and message text are redacted.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SendMessage")
            .field("to", &crate::redact::Redacted)
            .field("from", &crate::redact::opt(&self.from))
            .field("messaging_service_sid", &self.messaging_service_sid)
            .field("body", &self.body)
            .field("media_urls", &self.media_urls)
            .field("content_sid", &self.content_sid)
            .field("content_variables", &self.content_variables)
            .field("status_callback", &self.status_callback)
            .field("application_sid", &self.application_sid)
            .field("validity_period", &self.validity_period)
            .field("attempt", &self.attempt)
            .field("provide_feedback", &self.provide_feedback)
            .field("force_delivery", &self.force_delivery)
            .field("content_retention", &self.content_retention)
            .field("address_retention", &self.address_retention)
            .field("smart_encoded", &self.smart_encoded)
            .field("persistent_actions", &self.persistent_actions)
            .field("shorten_urls", &self.shorten_urls)
            .field("schedule_type", &self.schedule_type)
            .field("send_at", &self.send_at)
            .field("send_as_mms", &self.send_as_mms)
            .field("risk_check", &self.risk_check)
            .field("fallback_from", &crate::redact::opt(&self.fallback_from))
            .field("traffic_type", &self.traffic_type)
            .finish()
    }
}

impl SendMessage {
    /// A message to `to`: an E.164 number (`+15558675310`) or a channel address
    /// (`whatsapp:+15558675310`).
    pub fn new(to: impl Into<String>) -> Self {
        Self {
            to: to.into(),
            from: None,
            messaging_service_sid: None,
            body: None,
            media_urls: Vec::new(),
            content_sid: None,
            content_variables: None,
            status_callback: None,
            application_sid: None,
            validity_period: None,
            attempt: None,
            provide_feedback: None,
            force_delivery: None,
            content_retention: None,
            address_retention: None,
            smart_encoded: None,
            persistent_actions: Vec::new(),
            shorten_urls: None,
            schedule_type: None,
            send_at: None,
            send_as_mms: None,
            risk_check: None,
            fallback_from: None,
            traffic_type: None,
        }
    }

    /// `From`: the sender (a Twilio number, short code, alphanumeric ID or channel address).
    pub fn from(mut self, from: impl Into<String>) -> Self {
        self.from = Some(from.into());
        self
    }

    /// `MessagingServiceSid`: send through a Messaging Service, which picks the sender unless
    /// [`from`](Self::from) is also set. Required for scheduling and link shortening.
    pub fn messaging_service(mut self, sid: MessagingServiceSid) -> Self {
        self.messaging_service_sid = Some(sid);
        self
    }

    /// `Body`: the text (up to 1,600 characters).
    pub fn body(mut self, body: impl Into<String>) -> Self {
        self.body = Some(Text(body.into()));
        self
    }

    /// `MediaUrl`: adds one media file (call again for more, at most [`MAX_MEDIA`]).
    pub fn media_url(mut self, url: Url) -> Self {
        self.media_urls.push(url);
        self
    }

    /// `MediaUrl`: adds several media files.
    pub fn media_urls(mut self, urls: impl IntoIterator<Item = Url>) -> Self {
        self.media_urls.extend(urls);
        self
    }

    /// `ContentSid`: a Content Template (`HX…`).
    pub fn content_sid(mut self, sid: impl Into<String>) -> Self {
        self.content_sid = Some(sid.into());
        self
    }

    /// `ContentVariables`: the template's variables, sent as a JSON object of strings
    /// (`{"1":"Ada"}`). Requires [`content_sid`](Self::content_sid).
    pub fn content_variables<K, V>(mut self, vars: impl IntoIterator<Item = (K, V)>) -> Self
    where
        K: Into<String>,
        V: Into<String>,
    {
        let map: BTreeMap<String, String> = vars
            .into_iter()
            .map(|(k, v)| (k.into(), v.into()))
            .collect();
        // Serialising a map of strings cannot fail.
        self.content_variables = Some(Text(serde_json::to_string(&map).unwrap_or_default()));
        self
    }

    /// `ContentVariables` as JSON text you built yourself; it must be a JSON object.
    pub fn content_variables_json(mut self, json: impl Into<String>) -> Self {
        self.content_variables = Some(Text(json.into()));
        self
    }

    /// `StatusCallback`: where Twilio posts status callbacks, sent exactly as given (never
    /// parsed and printed again, so the host's case and the query's encoding stay what the
    /// webhook validates against). Pass a [`PublicEndpoint`](crate::endpoint::PublicEndpoint)
    /// to get the same URL the webhook is configured with, and connection overrides.
    pub fn status_callback(mut self, url: impl Into<String>) -> Self {
        self.status_callback = Some(url.into());
        self
    }

    /// `ApplicationSid`: a TwiML App (`AP…`) whose message status callback URL is used
    /// (ignored by Twilio when a status callback is set).
    pub fn application_sid(mut self, sid: impl Into<String>) -> Self {
        self.application_sid = Some(sid.into());
        self
    }

    /// `ValidityPeriod`: how long the message may wait in Twilio's queue, whole seconds from
    /// 1 s to 10 h.
    pub fn validity_period(mut self, period: Duration) -> Self {
        self.validity_period = Some(period);
        self
    }

    /// `Attempt`: the total number of attempts made to send this message, this one included.
    pub fn attempt(mut self, attempt: u32) -> Self {
        self.attempt = Some(attempt);
        self
    }

    /// `ProvideFeedback`: whether you will report delivery feedback.
    pub fn provide_feedback(mut self, yes: bool) -> Self {
        self.provide_feedback = Some(yes);
        self
    }

    /// `ForceDelivery`: reserved by Twilio.
    pub fn force_delivery(mut self, yes: bool) -> Self {
        self.force_delivery = Some(yes);
        self
    }

    /// `ContentRetention`.
    pub fn content_retention(mut self, retention: ContentRetention) -> Self {
        self.content_retention = Some(retention);
        self
    }

    /// `AddressRetention`.
    pub fn address_retention(mut self, retention: AddressRetention) -> Self {
        self.address_retention = Some(retention);
        self
    }

    /// `SmartEncoded`: replace Unicode characters that have a GSM-7 look-alike.
    pub fn smart_encoded(mut self, yes: bool) -> Self {
        self.smart_encoded = Some(yes);
        self
    }

    /// `PersistentAction`: adds a rich action for non-SMS channels (call again for more).
    pub fn persistent_action(mut self, action: impl Into<String>) -> Self {
        self.persistent_actions.push(action.into());
        self
    }

    /// `ShortenUrls`: shorten links in the body (needs a Messaging Service).
    pub fn shorten_urls(mut self, yes: bool) -> Self {
        self.shorten_urls = Some(yes);
        self
    }

    /// Schedules the message: `ScheduleType=fixed` and `SendAt=at`. Needs a Messaging Service;
    /// `at` must be more than 5 minutes and at most 35 days ahead.
    pub fn schedule_at(mut self, at: OffsetDateTime) -> Self {
        self.schedule_type = Some(ScheduleType::Fixed);
        self.send_at = Some(at);
        self
    }

    /// `ScheduleType` alone; prefer [`schedule_at`](Self::schedule_at).
    pub fn schedule_type(mut self, schedule_type: ScheduleType) -> Self {
        self.schedule_type = Some(schedule_type);
        self
    }

    /// `SendAt` alone; prefer [`schedule_at`](Self::schedule_at).
    pub fn send_at(mut self, at: OffsetDateTime) -> Self {
        self.send_at = Some(at);
        self
    }

    /// `SendAsMms`: deliver as one MMS even without media.
    pub fn send_as_mms(mut self, yes: bool) -> Self {
        self.send_as_mms = Some(yes);
        self
    }

    /// `RiskCheck`.
    pub fn risk_check(mut self, check: RiskCheck) -> Self {
        self.risk_check = Some(check);
        self
    }

    /// `FallbackFrom`: the SMS sender used when RCS cannot reach the recipient (needs a
    /// Messaging Service with an RCS sender).
    pub fn fallback_from(mut self, from: impl Into<String>) -> Self {
        self.fallback_from = Some(from.into());
        self
    }

    /// `TrafficType`.
    pub fn traffic_type(mut self, traffic_type: TrafficType) -> Self {
        self.traffic_type = Some(traffic_type);
        self
    }

    /// The recipient.
    pub fn to(&self) -> &str {
        &self.to
    }

    /// The sender, if set.
    pub fn sender(&self) -> Option<&str> {
        self.from.as_deref()
    }

    /// The Messaging Service, if set.
    pub fn messaging_service_sid(&self) -> Option<&MessagingServiceSid> {
        self.messaging_service_sid.as_ref()
    }

    /// The recipient (`To`).
    pub fn to_number(&self) -> &str {
        &self.to
    }

    /// The text, if set.
    pub fn body_text(&self) -> Option<&str> {
        self.body.as_ref().map(|t| t.0.as_str())
    }

    /// The status callback URL, if set.
    pub fn status_callback_url(&self) -> Option<&str> {
        self.status_callback.as_deref()
    }

    /// Checks the parameters locally, as [`Messages::create`](super::Messages::create) does
    /// before sending.
    ///
    /// # Errors
    /// [`Error::InvalidRequest`] naming the parameter: no recipient; no sender (`From` or
    /// `MessagingServiceSid`); no content (`Body`, `MediaUrl` or `ContentSid`); more than 10
    /// media or a non-HTTP(S) media URL; a malformed `ContentSid`/`ApplicationSid`;
    /// `ContentVariables` without `ContentSid` or not a JSON object; a `StatusCallback` that is
    /// not HTTP(S) or has an underscore in its host; `ValidityPeriod` outside 1..=36000 whole
    /// seconds; `Attempt` 0; `ShortenUrls`/`FallbackFrom` without a Messaging Service;
    /// `ScheduleType` without `SendAt` or the reverse; `SendAt` without a Messaging Service or
    /// outside (now + 5 min, now + 35 days].
    pub fn validate(&self) -> Result<()> {
        self.validate_at(OffsetDateTime::now_utc())
    }

    /// [`validate`](Self::validate) with an explicit "now" (for tests of scheduling).
    ///
    /// # Errors
    /// As [`validate`](Self::validate).
    pub fn validate_at(&self, now: OffsetDateTime) -> Result<()> {
        if self.to.trim().is_empty() {
            return Err(Error::invalid("To", "a recipient is required"));
        }
        if self.from.as_deref().is_some_and(|f| f.trim().is_empty()) {
            return Err(Error::invalid("From", "must not be empty"));
        }
        if self.from.is_none() && self.messaging_service_sid.is_none() {
            return Err(Error::invalid(
                "From",
                "a sender is required: set From or MessagingServiceSid",
            ));
        }
        let has_body = self.body.as_ref().is_some_and(|b| !b.0.is_empty());
        if !has_body && self.media_urls.is_empty() && self.content_sid.is_none() {
            return Err(Error::invalid(
                "Body",
                "content is required: set Body, MediaUrl or ContentSid",
            ));
        }
        if self.media_urls.len() > MAX_MEDIA {
            return Err(Error::invalid(
                "MediaUrl",
                format!(
                    "at most {MAX_MEDIA} media per message, got {}",
                    self.media_urls.len()
                ),
            ));
        }
        if self
            .media_urls
            .iter()
            .any(|u| !matches!(u.scheme(), "http" | "https") || !u.has_host())
        {
            return Err(Error::invalid("MediaUrl", "must be an http or https url"));
        }
        if let Some(sid) = &self.content_sid {
            check_sid("ContentSid", "HX", sid)?;
        }
        if let Some(vars) = &self.content_variables {
            if self.content_sid.is_none() {
                return Err(Error::invalid("ContentVariables", "requires ContentSid"));
            }
            let is_object =
                serde_json::from_str::<serde_json::Value>(&vars.0).is_ok_and(|v| v.is_object());
            if !is_object {
                return Err(Error::invalid("ContentVariables", "must be a json object"));
            }
        }
        if let Some(sid) = &self.application_sid {
            check_sid("ApplicationSid", "AP", sid)?;
        }
        if let Some(url) = &self.status_callback {
            check_callback_url(url).map_err(|reason| Error::invalid("StatusCallback", reason))?;
        }
        if let Some(p) = self.validity_period
            && (p.subsec_nanos() != 0 || p.is_zero() || p > MAX_VALIDITY_PERIOD)
        {
            return Err(Error::invalid(
                "ValidityPeriod",
                "must be whole seconds from 1 to 36000",
            ));
        }
        if self.attempt == Some(0) {
            return Err(Error::invalid("Attempt", "must be at least 1"));
        }
        let has_service = self.messaging_service_sid.is_some();
        if self.shorten_urls == Some(true) && !has_service {
            return Err(Error::invalid(
                "ShortenUrls",
                "requires MessagingServiceSid",
            ));
        }
        if self.fallback_from.is_some() && !has_service {
            return Err(Error::invalid(
                "FallbackFrom",
                "requires MessagingServiceSid",
            ));
        }
        match (&self.schedule_type, self.send_at) {
            (None, None) => {}
            (Some(_), None) => return Err(Error::invalid("ScheduleType", "requires SendAt")),
            (None, Some(_)) => return Err(Error::invalid("SendAt", "requires ScheduleType")),
            (Some(_), Some(at)) => {
                if !has_service {
                    return Err(Error::invalid("SendAt", "requires MessagingServiceSid"));
                }
                if at <= now + MIN_SCHEDULE_AHEAD {
                    return Err(Error::invalid(
                        "SendAt",
                        "must be more than 5 minutes in the future",
                    ));
                }
                if at > now + MAX_SCHEDULE_AHEAD {
                    return Err(Error::invalid(
                        "SendAt",
                        "must be at most 35 days in the future",
                    ));
                }
            }
        }
        Ok(())
    }

    /// The form pairs sent on the wire, in a fixed order; arrays become repeated keys,
    /// booleans `true`/`false`, `SendAt` ISO-8601 UTC (`2024-05-01T12:00:00Z`).
    ///
    /// # Errors
    /// [`Error::InvalidRequest`] if `SendAt` cannot be formatted (a year outside 0..=9999).
    pub fn form_pairs(&self) -> Result<Vec<(&'static str, String)>> {
        let mut p: Vec<(&'static str, String)> = vec![("To", self.to.clone())];
        let mut opt = |k: &'static str, v: Option<String>| {
            if let Some(v) = v {
                p.push((k, v));
            }
        };
        opt("From", self.from.clone());
        opt(
            "MessagingServiceSid",
            self.messaging_service_sid.as_ref().map(|s| s.to_string()),
        );
        opt("Body", self.body.as_ref().map(|b| b.0.clone()));
        opt("ContentSid", self.content_sid.clone());
        opt(
            "ContentVariables",
            self.content_variables.as_ref().map(|v| v.0.clone()),
        );
        opt("StatusCallback", self.status_callback.clone());
        opt("ApplicationSid", self.application_sid.clone());
        opt(
            "ValidityPeriod",
            self.validity_period.map(|d| d.as_secs().to_string()),
        );
        opt("Attempt", self.attempt.map(|a| a.to_string()));
        opt("ProvideFeedback", self.provide_feedback.map(bool_str));
        opt("ForceDelivery", self.force_delivery.map(bool_str));
        opt(
            "ContentRetention",
            self.content_retention.as_ref().map(|v| v.to_string()),
        );
        opt(
            "AddressRetention",
            self.address_retention.as_ref().map(|v| v.to_string()),
        );
        opt("SmartEncoded", self.smart_encoded.map(bool_str));
        opt("ShortenUrls", self.shorten_urls.map(bool_str));
        opt(
            "ScheduleType",
            self.schedule_type.as_ref().map(|v| v.to_string()),
        );
        opt("SendAt", self.send_at.map(format_send_at).transpose()?);
        opt("SendAsMms", self.send_as_mms.map(bool_str));
        opt("RiskCheck", self.risk_check.as_ref().map(|v| v.to_string()));
        opt("FallbackFrom", self.fallback_from.clone());
        opt(
            "TrafficType",
            self.traffic_type.as_ref().map(|v| v.to_string()),
        );
        for url in &self.media_urls {
            p.push(("MediaUrl", url.to_string()));
        }
        for action in &self.persistent_actions {
            p.push(("PersistentAction", action.clone()));
        }
        Ok(p)
    }

    /// The form-urlencoded request body.
    pub(crate) fn to_form(&self) -> Result<String> {
        let pairs = self.form_pairs()?;
        Ok(form_urlencoded::Serializer::new(String::new())
            .extend_pairs(pairs)
            .finish())
    }
}

fn bool_str(b: bool) -> String {
    if b { "true" } else { "false" }.to_owned()
}

/// `SendAt` as ISO-8601 in UTC, whole seconds: `2024-05-01T12:00:00Z`.
fn format_send_at(at: OffsetDateTime) -> Result<String> {
    at.checked_to_offset(time::UtcOffset::UTC)
        .and_then(|at| {
            at.format(format_description!(
                "[year]-[month]-[day]T[hour]:[minute]:[second]Z"
            ))
            .ok()
        })
        .ok_or_else(|| Error::invalid("SendAt", "cannot be formatted as iso-8601"))
}

fn check_sid(field: &'static str, prefix: &str, sid: &str) -> Result<()> {
    let ok = sid.len() == 34
        && sid.starts_with(prefix)
        && sid.bytes().skip(2).all(|b| b.is_ascii_hexdigit());
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(
            field,
            format!("must be {prefix} followed by 32 hexadecimal digits"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn base() -> SendMessage {
        SendMessage::new("+15558675310")
            .from("+15017122661")
            .body("hi")
    }

    fn field(r: Result<()>) -> &'static str {
        match r {
            Err(Error::InvalidRequest { field, .. }) => field,
            other => panic!("expected InvalidRequest, got {other:?}"),
        }
    }

    #[test]
    fn local_checks_name_the_field() {
        let now = datetime!(2025-01-01 00:00 UTC);
        let mg = MessagingServiceSid::new("MG0123456789abcdef0123456789abcdef").unwrap();
        assert!(base().validate_at(now).is_ok());
        assert_eq!(
            field(SendMessage::new(" ").from("x").body("b").validate_at(now)),
            "To"
        );
        assert_eq!(
            field(SendMessage::new("+1").body("b").validate_at(now)),
            "From"
        );
        assert_eq!(
            field(SendMessage::new("+1").from("+2").validate_at(now)),
            "Body"
        );
        assert_eq!(
            field(SendMessage::new("+1").from("+2").body("").validate_at(now)),
            "Body"
        );
        let url = Url::parse("https://example.com/a.png").unwrap();
        let many = base().media_urls(std::iter::repeat_n(url.clone(), 11));
        assert_eq!(field(many.validate_at(now)), "MediaUrl");
        assert!(
            base()
                .media_urls(std::iter::repeat_n(url, 10))
                .validate_at(now)
                .is_ok()
        );
        assert_eq!(
            field(base().content_variables([("1", "a")]).validate_at(now)),
            "ContentVariables"
        );
        let hx = "HX0123456789abcdef0123456789abcdef";
        assert!(
            base()
                .content_sid(hx)
                .content_variables([("1", "a")])
                .validate_at(now)
                .is_ok()
        );
        assert_eq!(
            field(
                base()
                    .content_sid(hx)
                    .content_variables_json("[1]")
                    .validate_at(now)
            ),
            "ContentVariables"
        );
        assert_eq!(
            field(base().content_sid("HXnope").validate_at(now)),
            "ContentSid"
        );
        assert_eq!(
            field(base().application_sid("AP1").validate_at(now)),
            "ApplicationSid"
        );
        assert_eq!(
            field(
                base()
                    .validity_period(Duration::from_secs(36_001))
                    .validate_at(now)
            ),
            "ValidityPeriod"
        );
        assert_eq!(
            field(
                base()
                    .validity_period(Duration::from_millis(1500))
                    .validate_at(now)
            ),
            "ValidityPeriod"
        );
        assert_eq!(field(base().attempt(0).validate_at(now)), "Attempt");
        assert_eq!(
            field(base().shorten_urls(true).validate_at(now)),
            "ShortenUrls"
        );
        assert_eq!(
            field(base().fallback_from("+1").validate_at(now)),
            "FallbackFrom"
        );
        let cb = "https://my_host.example.com/cb";
        assert_eq!(
            field(base().status_callback(cb).validate_at(now)),
            "StatusCallback"
        );
        let cb = "ftp://example.com/cb";
        assert_eq!(
            field(base().status_callback(cb).validate_at(now)),
            "StatusCallback"
        );

        // Scheduling: window (now+5min, now+35d], a service, both parameters.
        let sched = |at| base().messaging_service(mg.clone()).schedule_at(at);
        assert_eq!(
            field(sched(now + Duration::from_secs(300)).validate_at(now)),
            "SendAt"
        );
        assert!(
            sched(now + Duration::from_secs(301))
                .validate_at(now)
                .is_ok()
        );
        assert!(sched(now + MAX_SCHEDULE_AHEAD).validate_at(now).is_ok());
        assert_eq!(
            field(sched(now + MAX_SCHEDULE_AHEAD + Duration::from_secs(1)).validate_at(now)),
            "SendAt"
        );
        let no_service = base().schedule_at(now + Duration::from_secs(3600));
        assert_eq!(field(no_service.validate_at(now)), "SendAt");
        let only_at = base()
            .messaging_service(mg.clone())
            .send_at(now + Duration::from_secs(3600));
        assert_eq!(field(only_at.validate_at(now)), "SendAt");
        let only_type = base()
            .messaging_service(mg)
            .schedule_type(ScheduleType::Fixed);
        assert_eq!(field(only_type.validate_at(now)), "ScheduleType");
    }

    #[test]
    fn debug_hides_the_text() {
        let d = format!("{:?}", base().body("my one-time code 123456"));
        assert!(!d.contains("123456"));
        assert!(d.contains("<23 chars>"));
    }

    #[test]
    fn send_at_is_iso8601_utc_whole_seconds() {
        let at = datetime!(2025-05-01 14:00:00.250 +02:00);
        assert_eq!(format_send_at(at).unwrap(), "2025-05-01T12:00:00Z");
        // In UTC this is past the last year `time` holds: an error, not a panic.
        assert!(format_send_at(datetime!(9999-12-31 23:00 -05:00)).is_err());
    }
}
