//! `Debug` helpers that keep message content, phone numbers and request details out of logs:
//! the types that carry them print `[redacted]` in their place (and how many raw pairs there
//! are), so `{:?}` in a log line or an error report leaks nothing.

use std::fmt;

/// Prints `[redacted]`.
pub(crate) struct Redacted;

impl fmt::Debug for Redacted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// `Some([redacted])` or `None`: whether the value is there, not what it is.
pub(crate) fn opt<T>(value: &Option<T>) -> Option<Redacted> {
    value.as_ref().map(|_| Redacted)
}

/// Prints `[N pairs]`.
pub(crate) struct Pairs(pub(crate) usize);

impl fmt::Debug for Pairs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{} pairs]", self.0)
    }
}

/// A URL with the user information of its authority (`user:password@`) printed as
/// `[redacted]@`: Twilio signs the URL with the HTTP Basic credentials in it, so a configured
/// public URL can hold a password.
pub(crate) struct Url<'a>(pub(crate) &'a str);

impl fmt::Debug for Url<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let url = self.0;
        let start = url.find("://").map_or(0, |i| i + 3);
        let rest = url.get(start..).unwrap_or_default();
        let authority = rest.find(['/', '?', '#']).map_or(rest, |end| &rest[..end]);
        match authority.rfind('@') {
            Some(at) => {
                let host_and_after = url.get(start + at + 1..).unwrap_or_default();
                let scheme = url.get(..start).unwrap_or_default();
                fmt::Debug::fmt(&format!("{scheme}[redacted]@{host_and_after}"), f)
            }
            None => fmt::Debug::fmt(url, f),
        }
    }
}

#[cfg(test)]
mod tests {
    use time::OffsetDateTime;

    use crate::callback::StatusCallback;
    use crate::client::SendMessage;
    use crate::ids::MessageSid;
    use crate::model::{MessageRecord, SentMessage};
    use crate::status::MessageStatus;

    const TO: &str = "+14155550199";
    const FROM: &str = "+14155550100";
    const TEXT: &str = "secret text";

    fn sid() -> MessageSid {
        MessageSid::new("SM0123456789abcdef0123456789abcdef").unwrap()
    }

    fn assert_clean(debug: String) {
        for leaked in [TO, FROM, TEXT] {
            assert!(!debug.contains(leaked), "{leaked} in {debug}");
        }
        assert!(debug.contains("[redacted]"), "{debug}");
    }

    #[test]
    fn numbers_and_text_never_reach_debug() {
        let mut sent = SentMessage::new(sid(), TO, MessageStatus::Queued);
        sent.from = Some(FROM.into());
        sent.body = Some(TEXT.into());
        assert_clean(format!("{sent:?}"));
        let mut record = MessageRecord::new(sid(), MessageStatus::Sent, OffsetDateTime::now_utc());
        record.to = Some(TO.into());
        record.from = Some(FROM.into());
        record.body = Some(TEXT.into());
        assert_clean(format!("{record:?}"));
        let body = format!(
            "MessageSid={}&MessageStatus=sent&To=%2B14155550199&From=%2B14155550100&Body=secret+text",
            sid()
        );
        let callback = StatusCallback::from_form(body.as_bytes(), None).unwrap();
        assert_clean(format!("{callback:?}"));
        assert_clean(format!("{:?}", callback.to_event()));
        assert_clean(format!("{:?}", SendMessage::new(TO).from(FROM).body(TEXT)));
    }

    #[test]
    fn replies_and_places_never_reach_debug() {
        use crate::inbound::InboundMessage;
        use crate::twiml::{Message, MessagingResponse, Redirect};

        let reply = MessagingResponse::new()
            .message(Message::new(TEXT).to(TO).from(FROM))
            .redirect(Redirect::new(
                "https://twilio:s3cretPW@app.example.com/next",
            ));
        let debug = format!("{reply:?}");
        assert_clean(debug.clone());
        assert!(!debug.contains("s3cretPW"), "{debug}");

        let body = format!(
            "MessageSid={}&From=%2B14155550100&To=%2B14155550199&Body=secret+text&Latitude=37.7879\
             &Longitude=-122.3917&Address=375+Beale+St&FromCity=SAN+FRANCISCO&FromZip=94105\
             &FromCountry=US",
            sid()
        );
        let m = InboundMessage::from_form(body.as_bytes()).unwrap();
        let debug = format!("{:?} {:?}", m.location.unwrap(), m.from_place);
        for leaked in ["37.78", "122.39", "Beale", "FRANCISCO", "94105"] {
            assert!(!debug.contains(leaked), "{leaked} in {debug}");
        }
        assert!(debug.contains("US"), "the country is kept: {debug}");
    }

    #[test]
    fn a_password_in_a_public_url_never_reaches_debug() {
        use crate::endpoint::PublicEndpoint;
        use crate::guard::{BasicCredentials, WebhookGuard};
        use crate::secret::AuthToken;
        use crate::signature::SignatureValidator;

        let url = "https://twilio:s3cretPW@app.example.com";
        let shown = format!("{:?}", super::Url(&format!("{url}/hooks?x=1")));
        assert_eq!(shown, r#""https://[redacted]@app.example.com/hooks?x=1""#);
        // An `@` after the authority is not user information.
        let plain = "https://app.example.com/a@b?c=d@e";
        assert_eq!(format!("{:?}", super::Url(plain)), format!("{plain:?}"));

        let endpoint = PublicEndpoint::new(url, "/twilio/status").unwrap();
        let guard = WebhookGuard::builder(SignatureValidator::new(AuthToken::new("token")))
            .endpoint(&endpoint)
            .basic_auth(BasicCredentials::new("twilio", "s3cretPW"))
            .build()
            .unwrap();
        let fixed = WebhookGuard::builder(SignatureValidator::new(AuthToken::new("token")))
            .public_url(format!("{url}/fixed"))
            .build()
            .unwrap();
        let signed = crate::signature::SignedRequest::new(
            &http::Method::POST,
            "https://twilio:s3cretPW@app.example.com/twilio/status",
            b"a=1",
        );
        for debug in [
            format!("{endpoint:?}"),
            format!("{guard:?}"),
            format!("{fixed:?}"),
            format!("{signed:?}"),
        ] {
            assert!(!debug.contains("s3cretPW"), "{debug}");
            assert!(debug.contains("[redacted]@app.example.com"), "{debug}");
        }
    }
}
