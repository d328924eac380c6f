//! TwiML for messaging: the reply to an incoming-message webhook.
//!
//! [`MessagingResponse`] builds `<Response>` with `<Message>` and `<Redirect>` verbs, every text
//! and attribute XML-escaped, serialised as Twilio's helper libraries do (twilio-node's output,
//! byte for byte, for the documented examples). Serve it with [`CONTENT_TYPE`]; an empty
//! response ([`MessagingResponse::new`] with nothing added) tells Twilio not to reply.
//!
//! ```
//! use twilio_delivery::twiml::{Message, MessagingResponse};
//!
//! let twiml = MessagingResponse::new()
//!     .message(Message::new("Store Location: 123 Easy St.").media("https://demo.twilio.com/owl.png"));
//! assert_eq!(
//!     twiml.to_xml(),
//!     "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response><Message><Body>Store Location: 123 Easy St.</Body>\
//!      <Media>https://demo.twilio.com/owl.png</Media></Message></Response>"
//! );
//! ```

use std::fmt::{self, Write as _};

use crate::redact;

/// The content type TwiML is served with.
pub const CONTENT_TYPE: &str = "text/xml; charset=utf-8";

/// How Twilio requests an `action` or `<Redirect>` URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Method {
    /// `GET`
    Get,
    /// `POST` (Twilio's default)
    Post,
}

impl Method {
    fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
        }
    }
}

/// A `<Response>` for an incoming message: replies and redirects, in order. Its `Debug`
/// redacts numbers and text.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[must_use]
pub struct MessagingResponse {
    verbs: Vec<Verb>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Verb {
    Message(Message),
    Redirect(Redirect),
}

/// A `<Message>`: a reply with text and/or media, optionally to another number.
#[derive(Clone, Default, PartialEq, Eq)]
#[must_use]
pub struct Message {
    body: Option<String>,
    media: Vec<String>,
    to: Option<String>,
    from: Option<String>,
    action: Option<String>,
    method: Option<Method>,
}

/// A `<Redirect>`: Twilio fetches more TwiML from a URL.
#[derive(Clone, PartialEq, Eq)]
#[must_use]
pub struct Redirect {
    url: String,
    method: Option<Method>,
}

impl fmt::Debug for Message {
    /// Text, numbers and media URLs are redacted.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Message")
            .field("body", &redact::opt(&self.body))
            .field("media", &self.media.len())
            .field("to", &redact::opt(&self.to))
            .field("from", &redact::opt(&self.from))
            .field("action", &self.action.as_deref().map(redact::Url))
            .field("method", &self.method)
            .finish()
    }
}

impl fmt::Debug for Redirect {
    /// A password in the URL is redacted.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Redirect")
            .field("url", &redact::Url(&self.url))
            .field("method", &self.method)
            .finish()
    }
}

impl MessagingResponse {
    /// An empty response: no reply.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a `<Message>`.
    pub fn message(mut self, message: Message) -> Self {
        self.verbs.push(Verb::Message(message));
        self
    }

    /// Adds a `<Redirect>`.
    pub fn redirect(mut self, redirect: Redirect) -> Self {
        self.verbs.push(Verb::Redirect(redirect));
        self
    }

    /// Whether nothing was added (Twilio sends no reply).
    pub fn is_empty(&self) -> bool {
        self.verbs.is_empty()
    }

    /// The TwiML document.
    pub fn to_xml(&self) -> String {
        let mut xml = String::from(r#"<?xml version="1.0" encoding="UTF-8"?>"#);
        if self.verbs.is_empty() {
            xml.push_str("<Response/>");
            return xml;
        }
        xml.push_str("<Response>");
        for verb in &self.verbs {
            match verb {
                Verb::Message(m) => m.write(&mut xml),
                Verb::Redirect(r) => r.write(&mut xml),
            }
        }
        xml.push_str("</Response>");
        xml
    }

    /// The TwiML as an HTTP 200 response with [`CONTENT_TYPE`].
    pub fn to_http(&self) -> http::Response<String> {
        let mut response = http::Response::new(self.to_xml());
        response.headers_mut().insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static(CONTENT_TYPE),
        );
        response
    }
}

impl Message {
    /// A message with this text.
    pub fn new(body: impl Into<String>) -> Self {
        Self {
            body: Some(body.into()),
            ..Self::default()
        }
    }

    /// A message with no text yet (add [`media`](Self::media)).
    pub fn empty() -> Self {
        Self::default()
    }

    /// Attaches media by URL (up to 10 in a message; Twilio enforces it).
    pub fn media(mut self, url: impl Into<String>) -> Self {
        self.media.push(url.into());
        self
    }

    /// `to`: send to this number instead of the sender of the incoming message.
    pub fn to(mut self, to: impl Into<String>) -> Self {
        self.to = Some(to.into());
        self
    }

    /// `from`: send from this number instead of the one the message came to.
    pub fn from(mut self, from: impl Into<String>) -> Self {
        self.from = Some(from.into());
        self
    }

    /// `action`: where Twilio posts this reply's status.
    pub fn action(mut self, url: impl Into<String>) -> Self {
        self.action = Some(url.into());
        self
    }

    /// `method` for `action`.
    pub fn method(mut self, method: Method) -> Self {
        self.method = Some(method);
        self
    }

    fn write(&self, xml: &mut String) {
        xml.push_str("<Message");
        attribute(xml, "to", self.to.as_deref());
        attribute(xml, "from", self.from.as_deref());
        attribute(xml, "action", self.action.as_deref());
        attribute(xml, "method", self.method.map(Method::as_str));
        if self.media.is_empty() {
            match &self.body {
                Some(body) => {
                    xml.push('>');
                    escape_into(xml, body);
                    xml.push_str("</Message>");
                }
                None => xml.push_str("/>"),
            }
            return;
        }
        // With media, the text goes in a <Body> noun, as the helper libraries write it.
        xml.push('>');
        if let Some(body) = &self.body {
            element(xml, "Body", body);
        }
        for url in &self.media {
            element(xml, "Media", url);
        }
        xml.push_str("</Message>");
    }
}

impl Redirect {
    /// A redirect to `url`.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            method: None,
        }
    }

    /// The method Twilio uses to fetch `url`.
    pub fn method(mut self, method: Method) -> Self {
        self.method = Some(method);
        self
    }

    fn write(&self, xml: &mut String) {
        xml.push_str("<Redirect");
        attribute(xml, "method", self.method.map(Method::as_str));
        xml.push('>');
        escape_into(xml, &self.url);
        xml.push_str("</Redirect>");
    }
}

fn attribute(xml: &mut String, name: &str, value: Option<&str>) {
    if let Some(value) = value {
        let _ = write!(xml, " {name}=\"");
        escape_attribute_into(xml, value);
        xml.push('"');
    }
}

fn element(xml: &mut String, name: &str, text: &str) {
    let _ = write!(xml, "<{name}>");
    escape_into(xml, text);
    let _ = write!(xml, "</{name}>");
}

/// Appends element text XML-escaped as twilio-node writes it (`&`, `<`, `>` and CR as
/// references), dropping the characters XML 1.0 cannot hold at all.
fn escape_into(xml: &mut String, text: &str) {
    escape(xml, text, false);
}

/// Appends an attribute value escaped as twilio-node writes it (`&`, `<`, `"`, tab, LF and CR).
fn escape_attribute_into(xml: &mut String, text: &str) {
    escape(xml, text, true);
}

fn escape(xml: &mut String, text: &str, attribute: bool) {
    for c in text.chars() {
        match c {
            '&' => xml.push_str("&amp;"),
            '<' => xml.push_str("&lt;"),
            '>' if !attribute => xml.push_str("&gt;"),
            '"' if attribute => xml.push_str("&quot;"),
            '\t' if attribute => xml.push_str("&#x9;"),
            '\n' if attribute => xml.push_str("&#xA;"),
            '\r' => xml.push_str("&#xD;"),
            '\t' | '\n' => xml.push(c),
            c if c < ' ' || c == '\u{FFFE}' || c == '\u{FFFF}' => {}
            c => xml.push(c),
        }
    }
}

#[cfg(feature = "axum")]
impl axum::response::IntoResponse for MessagingResponse {
    fn into_response(self) -> axum::response::Response {
        ([(http::header::CONTENT_TYPE, CONTENT_TYPE)], self.to_xml()).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Expected strings printed by twilio-node 6 (`new twiml.MessagingResponse()`, the same
    // calls, `.toString()`), Twilio's documented examples first.
    #[test]
    fn matches_twilio_node_for_the_documented_examples() {
        let robots = MessagingResponse::new()
            .message(Message::new("The Robots are coming! Head for the hills!"));
        assert_eq!(
            robots.to_xml(),
            r#"<?xml version="1.0" encoding="UTF-8"?><Response><Message>The Robots are coming! Head for the hills!</Message></Response>"#
        );
        let owl = MessagingResponse::new().message(
            Message::new("Store Location: 123 Easy St.").media("https://demo.twilio.com/owl.png"),
        );
        assert_eq!(
            owl.to_xml(),
            r#"<?xml version="1.0" encoding="UTF-8"?><Response><Message><Body>Store Location: 123 Easy St.</Body><Media>https://demo.twilio.com/owl.png</Media></Message></Response>"#
        );
        assert_eq!(
            MessagingResponse::new().to_xml(),
            r#"<?xml version="1.0" encoding="UTF-8"?><Response/>"#
        );
        let full = MessagingResponse::new()
            .message(
                Message::new("Tom & Jerry <3 \"quotes\" it's")
                    .to("+15558675310")
                    .from("+15017122661")
                    .action("https://example.com/cb?a=1&b=2")
                    .method(Method::Post),
            )
            .redirect(Redirect::new("https://demo.twilio.com/welcome/sms/").method(Method::Get));
        assert_eq!(
            full.to_xml(),
            r#"<?xml version="1.0" encoding="UTF-8"?><Response><Message to="+15558675310" from="+15017122661" action="https://example.com/cb?a=1&amp;b=2" method="POST">Tom &amp; Jerry &lt;3 "quotes" it's</Message><Redirect method="GET">https://demo.twilio.com/welcome/sms/</Redirect></Response>"#
        );
    }

    #[test]
    fn hostile_text_stays_text() {
        let evil = MessagingResponse::new().message(Message::new(
            "</Message><Redirect>https://evil.example</Redirect>",
        ));
        // twilio-node prints the same.
        assert_eq!(
            evil.to_xml(),
            r#"<?xml version="1.0" encoding="UTF-8"?><Response><Message>&lt;/Message&gt;&lt;Redirect&gt;https://evil.example&lt;/Redirect&gt;</Message></Response>"#
        );
        let attr =
            MessagingResponse::new().message(Message::new("x").to("\"><Redirect>a\u{0}\u{1b}"));
        let xml = attr.to_xml();
        assert!(xml.contains(r#"to="&quot;>&lt;Redirect>a""#), "{xml}");
        assert_eq!(xml.matches('<').count(), 5, "{xml}");
        let http = attr.to_http();
        assert_eq!(http.headers()[http::header::CONTENT_TYPE], CONTENT_TYPE);
    }
}
