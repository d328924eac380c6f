//! Reading the `<Message>` elements of the TwiML an app answers to an incoming message, so the
//! emulator can send the replies it asks for.
//!
//! A small reader, not a validating XML parser: it finds each `<Message>` element, its `to`,
//! `from` and `action` (or `statusCallback`) attributes, and its text, or the text of its
//! `<Body>` and `<Media>` children. Entities (`&lt;`, `&#233;`, …) and CDATA sections are
//! decoded; comments and other elements are skipped.

/// One `<Message>` of a TwiML reply.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ReplyMessage {
    /// The `to` attribute.
    pub(crate) to: Option<String>,
    /// The `from` attribute.
    pub(crate) from: Option<String>,
    /// The `action` (or `statusCallback`) attribute: where its status callbacks go.
    pub(crate) status_callback: Option<String>,
    /// The text, trimmed.
    pub(crate) body: String,
    /// The `<Media>` URLs.
    pub(crate) media: Vec<String>,
}

/// A start tag: its attributes (decoded), whether it ends with `/>`, and the text after it.
struct Tag<'a> {
    attributes: Vec<(String, String)>,
    self_closing: bool,
    rest: &'a str,
}

/// The `<Message>` elements of `xml`, in document order; empty ones (no text and no media) are
/// left out, as Twilio sends nothing for them.
pub(crate) fn messages(xml: &str) -> Vec<ReplyMessage> {
    let mut out = Vec::new();
    let mut rest = xml;
    while let Some(tag) = open_tag(rest, "Message") {
        let mut message = ReplyMessage::default();
        let after = tag.rest;
        for (name, value) in tag.attributes {
            match name.as_str() {
                "to" => message.to = Some(value),
                "from" => message.from = Some(value),
                "action" | "statusCallback" => message.status_callback = Some(value),
                _ => {}
            }
        }
        let content = if tag.self_closing {
            rest = after;
            ""
        } else {
            let (content, next) = after.split_once("</Message>").unwrap_or((after, ""));
            rest = next;
            content
        };
        if open_tag(content, "Body").is_some() || open_tag(content, "Media").is_some() {
            message.body = children(content, "Body").join("");
            message.media = children(content, "Media");
        } else {
            message.body = text(content);
        }
        message.body = message.body.trim().to_owned();
        if !message.body.is_empty() || !message.media.is_empty() {
            out.push(message);
        }
    }
    out
}

/// The decoded, trimmed text of every `<name>` element in `xml`.
fn children(xml: &str, name: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = xml;
    let close = format!("</{name}>");
    while let Some(tag) = open_tag(rest, name) {
        if tag.self_closing {
            rest = tag.rest;
            continue;
        }
        let (content, next) = tag
            .rest
            .split_once(close.as_str())
            .unwrap_or((tag.rest, ""));
        out.push(text(content).trim().to_owned());
        rest = next;
    }
    out
}

/// Finds the next start tag `<name …>` in `xml`.
fn open_tag<'a>(xml: &'a str, name: &str) -> Option<Tag<'a>> {
    let needle = format!("<{name}");
    let mut from = 0;
    loop {
        let start = from + xml.get(from..)?.find(needle.as_str())?;
        let after_name = xml.get(start + needle.len()..)?;
        match after_name.chars().next() {
            Some(c) if c == '>' || c == '/' || c.is_whitespace() => return attributes(after_name),
            // `<MessageX` or the end of the text: not this element.
            _ => from = start + needle.len(),
        }
    }
}

/// Reads attributes up to the end of a start tag; `None` when the tag never ends.
fn attributes(mut s: &str) -> Option<Tag<'_>> {
    let mut pairs = Vec::new();
    loop {
        s = s.trim_start();
        if let Some(rest) = s.strip_prefix("/>") {
            return Some(Tag {
                attributes: pairs,
                self_closing: true,
                rest,
            });
        }
        if let Some(rest) = s.strip_prefix('>') {
            return Some(Tag {
                attributes: pairs,
                self_closing: false,
                rest,
            });
        }
        let end = s.find(|c: char| c == '=' || c == '>' || c == '/' || c.is_whitespace())?;
        let (name, after) = s.split_at(end);
        let after = after.trim_start();
        let Some(value_part) = after.strip_prefix('=') else {
            // An attribute without a value (not XML): skip its name.
            s = if name.is_empty() {
                after.get(1..)?
            } else {
                after
            };
            continue;
        };
        let value_part = value_part.trim_start();
        let quote = value_part.chars().next()?;
        if quote != '"' && quote != '\'' {
            return None;
        }
        let inner = value_part.get(1..)?;
        let close = inner.find(quote)?;
        pairs.push((name.to_owned(), text(inner.get(..close)?)));
        s = inner.get(close + 1..)?;
    }
}

/// The character data of `xml`: tags and comments removed, entities and CDATA decoded.
fn text(xml: &str) -> String {
    let mut out = String::with_capacity(xml.len());
    let mut rest = xml;
    while let Some(c) = rest.chars().next() {
        if let Some(after) = rest.strip_prefix("<![CDATA[") {
            let (data, next) = after.split_once("]]>").unwrap_or((after, ""));
            out.push_str(data);
            rest = next;
        } else if let Some(after) = rest.strip_prefix("<!--") {
            rest = after.split_once("-->").map_or("", |(_, next)| next);
        } else if c == '<' {
            rest = rest.split_once('>').map_or("", |(_, next)| next);
        } else if c == '&' {
            let decoded = rest
                .find(';')
                .filter(|&end| end <= 12)
                .and_then(|end| Some((entity(rest.get(1..end)?)?, end)));
            match decoded {
                Some((ch, end)) => {
                    out.push(ch);
                    rest = rest.get(end + 1..).unwrap_or_default();
                }
                None => {
                    out.push('&');
                    rest = rest.get(1..).unwrap_or_default();
                }
            }
        } else {
            out.push(c);
            rest = rest.get(c.len_utf8()..).unwrap_or_default();
        }
    }
    out
}

/// The character an entity name (between `&` and `;`) stands for.
fn entity(name: &str) -> Option<char> {
    match name {
        "lt" => Some('<'),
        "gt" => Some('>'),
        "amp" => Some('&'),
        "quot" => Some('"'),
        "apos" => Some('\''),
        _ => {
            let code =
                if let Some(hex) = name.strip_prefix("#x").or_else(|| name.strip_prefix("#X")) {
                    u32::from_str_radix(hex, 16).ok()?
                } else {
                    name.strip_prefix('#')?.parse().ok()?
                };
            char::from_u32(code)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_and_nested_messages() {
        let xml = r#"<?xml version="1.0" encoding="UTF-8"?>
<Response>
  <Message>Thanks &amp; welcome &lt;3 caf&#233; &#x263A;</Message>
  <Message to="+15551230000" from='+15005550006' action="http://127.0.0.1:9/cb">
    <Body>Your <![CDATA[<code>]]> is 42</Body>
    <Media>https://example.com/a.jpg?x=1&amp;y=2</Media>
  </Message>
  <Message/>
  <Message></Message>
  <Redirect>http://example.com/next</Redirect>
</Response>"#;
        let m = messages(xml);
        assert_eq!(m.len(), 2, "{m:?}");
        assert_eq!(m[0].body, "Thanks & welcome <3 café ☺");
        assert_eq!(m[0].to, None);
        assert_eq!(m[1].body, "Your <code> is 42");
        assert_eq!(m[1].to.as_deref(), Some("+15551230000"));
        assert_eq!(m[1].from.as_deref(), Some("+15005550006"));
        assert_eq!(
            m[1].status_callback.as_deref(),
            Some("http://127.0.0.1:9/cb")
        );
        assert_eq!(m[1].media, ["https://example.com/a.jpg?x=1&y=2"]);
    }

    #[test]
    fn media_only_and_empty_responses() {
        assert!(messages("<Response/>").is_empty());
        assert!(messages("<Response></Response>").is_empty());
        assert!(messages("<Response><Messages>x</Messages></Response>").is_empty());
        let m = messages("<Response><Message><Media>http://h/a.png</Media></Message></Response>");
        assert_eq!(m.len(), 1);
        assert_eq!(m[0].body, "");
        assert_eq!(m[0].media, ["http://h/a.png"]);
    }

    #[test]
    fn malformed_input_never_panics() {
        for xml in [
            "<Message",
            "<Message to=",
            "<Message to=\"x",
            "<Message to=x>hi</Message>",
            "<Message>unterminated &amp",
            "<Message>&#xZZ; &#99999999; &bogus;</Message>",
            "<Message><![CDATA[open",
            "<Message><!-- open",
            "<Message>é<",
        ] {
            let _ = messages(xml);
        }
        let m = messages("<Message>&#xZZ; &bogus; ok</Message>");
        assert_eq!(m[0].body, "&#xZZ; &bogus; ok");
    }
}
