//! The stored message and its JSON shape (`api.v2010.account.message`), its media
//! (`api.v2010.account.message.media`) and feedback (`api.v2010.account.message.message_feedback`),
//! and the list envelope.

use std::sync::Arc;

use serde::Serialize;
use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc2822;
use tokio::sync::Notify;

use twilio_delivery::ids::MessageSid;
use twilio_delivery::status::MessageStatus;

/// Twilio's API version, in every URI and callback.
pub(crate) const API_VERSION: &str = "2010-04-01";

/// A message as the emulator keeps it.
#[derive(Debug)]
pub(crate) struct StoredMessage {
    pub(crate) seq: u64,
    pub(crate) sid: MessageSid,
    pub(crate) to: String,
    pub(crate) from: Option<String>,
    pub(crate) body: String,
    pub(crate) num_media: usize,
    pub(crate) segments: u32,
    /// The Messaging Service named in the request, or the account's default one.
    pub(crate) service_sid: String,
    /// Whether the request named a Messaging Service (it then picks the sender).
    pub(crate) via_service: bool,
    pub(crate) status: MessageStatus,
    pub(crate) error_code: Option<u16>,
    pub(crate) date_created: OffsetDateTime,
    pub(crate) date_updated: OffsetDateTime,
    pub(crate) date_sent: Option<OffsetDateTime>,
    pub(crate) price: Option<String>,
    /// Wakes the lifecycle of a scheduled message when it is canceled.
    pub(crate) cancel: Option<Arc<Notify>>,
    /// Whether the lifecycle is over (a message left at `sent` can then be deleted).
    pub(crate) lifecycle_done: bool,
    /// One entry per `MediaUrl`, until deleted.
    pub(crate) media: Vec<StoredMedia>,
    /// The feedback reported for the message, if any.
    pub(crate) feedback: Option<StoredFeedback>,
}

/// A Media subresource of a message.
#[derive(Debug, Clone)]
pub(crate) struct StoredMedia {
    pub(crate) sid: String,
    pub(crate) content_type: String,
    pub(crate) date_created: OffsetDateTime,
}

/// The Message Feedback subresource.
#[derive(Debug, Clone)]
pub(crate) struct StoredFeedback {
    pub(crate) outcome: &'static str,
    pub(crate) date_created: OffsetDateTime,
    pub(crate) date_updated: OffsetDateTime,
}

/// The MIME type Twilio would report for a `MediaUrl`. Twilio takes it from the media it
/// downloads; the emulator downloads nothing and guesses from the file extension
/// (`application/octet-stream` when it cannot tell).
pub(crate) fn content_type(media_url: &str) -> &'static str {
    let path = media_url.split(['?', '#']).next().unwrap_or(media_url);
    let extension = path
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default();
    match extension.as_str() {
        "jpg" | "jpeg" => "image/jpeg",
        "png" => "image/png",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "mp4" => "video/mp4",
        "mp3" => "audio/mpeg",
        "ogg" => "audio/ogg",
        "pdf" => "application/pdf",
        "vcf" => "text/vcard",
        "txt" => "text/plain",
        _ => "application/octet-stream",
    }
}

/// The JSON of one message, field for field as in the spec.
#[derive(Serialize)]
struct MessageJson<'a> {
    account_sid: &'a str,
    api_version: &'static str,
    body: &'a str,
    date_created: Option<String>,
    date_sent: Option<String>,
    date_updated: Option<String>,
    direction: &'static str,
    error_code: Option<u16>,
    error_message: Option<&'static str>,
    from: Option<&'a str>,
    messaging_service_sid: Option<&'a str>,
    num_media: String,
    num_segments: String,
    price: Option<&'a str>,
    price_unit: &'static str,
    sid: &'a str,
    status: &'a str,
    subresource_uris: SubresourceUris,
    to: &'a str,
    uri: String,
}

#[derive(Serialize)]
struct SubresourceUris {
    media: String,
}

/// An RFC 2822 date as Twilio writes it: `Thu, 24 Aug 2023 05:01:45 +0000`.
pub(crate) fn rfc2822(t: OffsetDateTime) -> Option<String> {
    t.format(&Rfc2822).ok()
}

/// The description Twilio gives for an error code: the library's table
/// ([`twilio_delivery::ErrorCode`]), so the emulator and the crate never disagree.
pub(crate) fn error_message(code: u16) -> Option<&'static str> {
    twilio_delivery::ErrorCode::new(u32::from(code)).description()
}

/// The price of a sent message in Twilio's format (`-0.00790`): 0.0079 USD per SMS segment,
/// 0.02 USD per MMS.
pub(crate) fn price(segments: u32, num_media: usize) -> String {
    let hundred_thousandths: u64 = if num_media > 0 {
        2000
    } else {
        790 * u64::from(segments.max(1))
    };
    format!(
        "-{}.{:05}",
        hundred_thousandths / 100_000,
        hundred_thousandths % 100_000
    )
}

/// The relative URI of the Messages list of an account.
pub(crate) fn list_path(account_sid: &str) -> String {
    format!("/{API_VERSION}/Accounts/{account_sid}/Messages.json")
}

impl StoredMessage {
    /// The relative URI of this message.
    fn uri(&self, account_sid: &str) -> String {
        format!(
            "/{API_VERSION}/Accounts/{account_sid}/Messages/{}.json",
            self.sid
        )
    }

    /// Whether Twilio still has to pick a sender (Messaging Service sends before `queued`):
    /// `from` is null and `num_segments` is `"0"` until then.
    fn sender_pending(&self) -> bool {
        self.via_service
            && self.from.is_none()
            && matches!(
                self.status,
                MessageStatus::Accepted | MessageStatus::Scheduled | MessageStatus::Canceled
            )
    }

    /// The message's JSON, exactly the shape of the spec's `api.v2010.account.message`.
    pub(crate) fn to_json(&self, account_sid: &str) -> Value {
        let segments = if self.sender_pending() {
            0
        } else {
            self.segments
        };
        let json = MessageJson {
            account_sid,
            api_version: API_VERSION,
            body: &self.body,
            date_created: rfc2822(self.date_created),
            date_sent: self.date_sent.and_then(rfc2822),
            date_updated: rfc2822(self.date_updated),
            direction: "outbound-api",
            error_code: self.error_code,
            error_message: self.error_code.and_then(error_message),
            from: self.from.as_deref(),
            messaging_service_sid: Some(&self.service_sid),
            num_media: self.num_media.to_string(),
            num_segments: segments.to_string(),
            price: self.price.as_deref(),
            price_unit: "USD",
            sid: self.sid.as_str(),
            status: self.status.as_str(),
            subresource_uris: SubresourceUris {
                media: media_list_path(account_sid, self.sid.as_str()),
            },
            to: &self.to,
            uri: self.uri(account_sid),
        };
        serde_json::to_value(json).unwrap_or(Value::Null)
    }
}

/// The relative URI of a message's Media list.
pub(crate) fn media_list_path(account_sid: &str, message_sid: &str) -> String {
    format!("/{API_VERSION}/Accounts/{account_sid}/Messages/{message_sid}/Media.json")
}

impl StoredMedia {
    /// The media's JSON, exactly the shape of the spec's `api.v2010.account.message.media`.
    pub(crate) fn to_json(&self, account_sid: &str, message_sid: &str) -> Value {
        serde_json::json!({
            "account_sid": account_sid,
            "content_type": self.content_type,
            "date_created": rfc2822(self.date_created),
            "date_updated": rfc2822(self.date_created),
            "parent_sid": message_sid,
            "sid": self.sid,
            "uri": format!(
                "/{API_VERSION}/Accounts/{account_sid}/Messages/{message_sid}/Media/{}.json",
                self.sid
            ),
        })
    }
}

impl StoredFeedback {
    /// The feedback's JSON, exactly the shape of the spec's
    /// `api.v2010.account.message.message_feedback`.
    pub(crate) fn to_json(&self, account_sid: &str, message_sid: &str) -> Value {
        serde_json::json!({
            "account_sid": account_sid,
            "message_sid": message_sid,
            "outcome": self.outcome,
            "date_created": rfc2822(self.date_created),
            "date_updated": rfc2822(self.date_updated),
            "uri": format!(
                "/{API_VERSION}/Accounts/{account_sid}/Messages/{message_sid}/Feedback.json"
            ),
        })
    }
}

/// One page of a list, with Twilio's envelope.
#[derive(Debug, Serialize)]
pub(crate) struct Page {
    pub(crate) messages: Vec<Value>,
    pub(crate) page: u64,
    pub(crate) page_size: u64,
    pub(crate) start: u64,
    pub(crate) end: u64,
    pub(crate) uri: String,
    pub(crate) first_page_uri: String,
    pub(crate) next_page_uri: Option<String>,
    pub(crate) previous_page_uri: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prices_and_dates() {
        assert_eq!(price(1, 0), "-0.00790");
        assert_eq!(price(3, 0), "-0.02370");
        assert_eq!(price(1, 2), "-0.02000");
        let t = time::macros::datetime!(2023-08-24 05:01:45 UTC);
        assert_eq!(rfc2822(t).unwrap(), "Thu, 24 Aug 2023 05:01:45 +0000");
    }

    #[test]
    fn media_content_types_from_extensions() {
        assert_eq!(content_type("https://x/a.JPG?size=2"), "image/jpeg");
        assert_eq!(content_type("https://x/a.png#f"), "image/png");
        assert_eq!(content_type("https://x/a"), "application/octet-stream");
        assert_eq!(
            content_type("https://example.com"),
            "application/octet-stream"
        );
    }
}
