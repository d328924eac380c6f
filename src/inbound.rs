//! `InboundMessage`: a message someone sent to one of your numbers, parsed from Twilio's
//! incoming-message webhook (`POST`, form), with every raw pair kept.
//!
//! Fields follow Twilio's "Messaging webhook request" documentation: the SIDs, `From`/`To`,
//! `Body`, `NumMedia` with `MediaUrl{N}`/`MediaContentType{N}`, `NumSegments`, the
//! `OptOutType` Twilio adds when Advanced Opt-Out handled a keyword, the geographic fields it
//! derives from the numbers, shared locations and the WhatsApp fields. Parameters Twilio adds
//! later stay readable in [`raw`](InboundMessage::raw).

use std::fmt;

use crate::callback::MAX_ADDRESS;
use crate::ids::{AccountSid, MessageSid, MessagingServiceSid};

/// Why an incoming-message webhook could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InboundError {
    /// A required parameter is missing.
    #[error("missing {0}")]
    Missing(&'static str),
    /// A parameter has a value the crate cannot read.
    #[error("invalid {field}: {reason}")]
    Invalid {
        /// The parameter.
        field: &'static str,
        /// Why.
        reason: String,
    },
}

/// The keyword class Twilio's Advanced Opt-Out recognised (`OptOutType`), or that the default
/// keywords imply when Twilio did not say.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum OptOut {
    /// `STOP` (and its synonyms): the sender no longer wants messages.
    Stop,
    /// `START`: the sender wants messages again.
    Start,
    /// `HELP`.
    Help,
    /// A value this crate does not know.
    Unknown(String),
}

impl OptOut {
    /// Reads `OptOutType`.
    pub fn from_param(value: &str) -> Self {
        match value.to_ascii_uppercase().as_str() {
            "STOP" => Self::Stop,
            "START" => Self::Start,
            "HELP" => Self::Help,
            _ => Self::Unknown(value.to_owned()),
        }
    }

    /// The class of a message body that is exactly one of Twilio's default opt-out keywords
    /// (case and surrounding white space ignored): `STOP`, `STOPALL`, `UNSUBSCRIBE`, `CANCEL`,
    /// `END`, `QUIT`, `OPTOUT`, `REVOKE`; `START`, `YES`, `UNSTOP`; `HELP`, `INFO`.
    pub fn from_keyword(body: &str) -> Option<Self> {
        match body.trim().to_ascii_uppercase().as_str() {
            "STOP" | "STOPALL" | "UNSUBSCRIBE" | "CANCEL" | "END" | "QUIT" | "OPTOUT"
            | "REVOKE" => Some(Self::Stop),
            "START" | "YES" | "UNSTOP" => Some(Self::Start),
            "HELP" | "INFO" => Some(Self::Help),
            _ => None,
        }
    }
}

/// One media item of an incoming MMS.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct InboundMedia {
    /// `MediaUrl{N}`: where Twilio keeps it.
    pub url: String,
    /// `MediaContentType{N}`.
    pub content_type: Option<String>,
}

/// A location the sender shared (WhatsApp). Its `Debug` redacts it.
#[derive(Clone, PartialEq)]
#[non_exhaustive]
pub struct SharedLocation {
    /// `Latitude`, in degrees (finite, within ±90).
    pub latitude: f64,
    /// `Longitude`, in degrees (finite, within ±180).
    pub longitude: f64,
    /// `Address`, if given.
    pub address: Option<String>,
    /// `Label`, if given.
    pub label: Option<String>,
}

/// Where Twilio places a number: `FromCity`, `FromState`, `FromZip`, `FromCountry` (or `To…`).
/// Its `Debug` redacts all but the country.
#[derive(Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Place {
    /// `…City`.
    pub city: Option<String>,
    /// `…State`.
    pub state: Option<String>,
    /// `…Zip`.
    pub zip: Option<String>,
    /// `…Country`.
    pub country: Option<String>,
}

/// A message someone sent to one of your numbers.
#[derive(Clone, PartialEq)]
#[non_exhaustive]
pub struct InboundMessage {
    /// `MessageSid` (`SmsMessageSid`/`SmsSid` in older requests).
    pub sid: MessageSid,
    /// `AccountSid`.
    pub account_sid: Option<AccountSid>,
    /// `MessagingServiceSid`, when the number belongs to a Messaging Service.
    pub messaging_service_sid: Option<MessagingServiceSid>,
    /// `From`: the sender (`whatsapp:+1…` on WhatsApp).
    pub from: String,
    /// `To`: your number.
    pub to: String,
    /// `Body` (may be empty for media-only messages).
    pub body: String,
    /// `NumSegments`.
    pub num_segments: Option<u32>,
    /// `MediaUrl{N}` and `MediaContentType{N}`, for N below `NumMedia`.
    pub media: Vec<InboundMedia>,
    /// `OptOutType`, when Twilio's Advanced Opt-Out recognised a keyword.
    pub opt_out_type: Option<OptOut>,
    /// `FromCity`, `FromState`, `FromZip`, `FromCountry`.
    pub from_place: Place,
    /// `ToCity`, `ToState`, `ToZip`, `ToCountry`.
    pub to_place: Place,
    /// `Latitude`/`Longitude`/`Address`/`Label`, when a location was shared.
    pub location: Option<SharedLocation>,
    /// `ProfileName` (WhatsApp).
    pub profile_name: Option<String>,
    /// `WaId`: the sender's WhatsApp id.
    pub wa_id: Option<String>,
    /// `Forwarded` (WhatsApp).
    pub forwarded: Option<bool>,
    /// `FrequentlyForwarded` (WhatsApp).
    pub frequently_forwarded: Option<bool>,
    /// `ButtonText`: the quick-reply button the sender tapped (WhatsApp).
    pub button_text: Option<String>,
    /// Every form pair, decoded, in wire order (unknown parameters included).
    pub raw: Vec<(String, String)>,
}

impl fmt::Debug for SharedLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedLocation")
            .field("latitude", &crate::redact::Redacted)
            .field("longitude", &crate::redact::Redacted)
            .field("address", &crate::redact::opt(&self.address))
            .field("label", &crate::redact::opt(&self.label))
            .finish()
    }
}

impl fmt::Debug for Place {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Place")
            .field("city", &crate::redact::opt(&self.city))
            .field("state", &crate::redact::opt(&self.state))
            .field("zip", &crate::redact::opt(&self.zip))
            .field("country", &self.country)
            .finish()
    }
}

impl fmt::Debug for InboundMessage {
    /// Numbers, text, names and locations are redacted.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InboundMessage")
            .field("sid", &self.sid)
            .field("account_sid", &self.account_sid)
            .field("messaging_service_sid", &self.messaging_service_sid)
            .field("from", &crate::redact::Redacted)
            .field("to", &crate::redact::Redacted)
            .field("body", &crate::redact::Redacted)
            .field("num_segments", &self.num_segments)
            .field("media", &self.media.len())
            .field("opt_out_type", &self.opt_out_type)
            .field("location", &crate::redact::opt(&self.location))
            .field("raw", &crate::redact::Pairs(self.raw.len()))
            .finish_non_exhaustive()
    }
}

/// The most media items Twilio attaches to one message.
const MAX_MEDIA: usize = 10;

impl InboundMessage {
    /// Parses the webhook's form pairs.
    ///
    /// # Errors
    /// [`InboundError`] when `MessageSid` (or its legacy names), `From` or `To` is missing,
    /// `From` or `To` is longer than [`MAX_ADDRESS`] bytes, or a SID, a count or a location is
    /// malformed (a coordinate that is not a finite number of degrees within ±90 latitude, ±180
    /// longitude).
    pub fn from_pairs(pairs: Vec<(String, String)>) -> Result<Self, InboundError> {
        let get = |name: &str| {
            pairs
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
        };
        let non_empty = |name: &str| get(name).filter(|v| !v.is_empty()).map(str::to_owned);
        let sid = ["MessageSid", "SmsMessageSid", "SmsSid"]
            .iter()
            .find_map(|name| get(name).filter(|v| !v.is_empty()))
            .ok_or(InboundError::Missing("MessageSid"))?;
        let sid = MessageSid::new(sid).map_err(|e| invalid("MessageSid", e))?;
        let account_sid = non_empty("AccountSid")
            .map(AccountSid::new)
            .transpose()
            .map_err(|e| invalid("AccountSid", e))?;
        let messaging_service_sid = non_empty("MessagingServiceSid")
            .map(MessagingServiceSid::new)
            .transpose()
            .map_err(|e| invalid("MessagingServiceSid", e))?;
        let count = |name: &'static str| {
            non_empty(name)
                .map(|v| v.parse::<u32>().map_err(|e| invalid(name, e)))
                .transpose()
        };
        let num_media = count("NumMedia")?.unwrap_or(0) as usize;
        if num_media > MAX_MEDIA {
            return Err(invalid("NumMedia", "more than 10"));
        }
        let media = (0..num_media)
            .map(|n| {
                let url = non_empty(&format!("MediaUrl{n}"))
                    .ok_or(InboundError::Missing("MediaUrl{N}"))?;
                let content_type = non_empty(&format!("MediaContentType{n}"));
                Ok(InboundMedia { url, content_type })
            })
            .collect::<Result<Vec<_>, InboundError>>()?;
        let place = |prefix: &str| Place {
            city: non_empty(&format!("{prefix}City")),
            state: non_empty(&format!("{prefix}State")),
            zip: non_empty(&format!("{prefix}Zip")),
            country: non_empty(&format!("{prefix}Country")),
        };
        // Degrees, finite and on the globe: `NaN`, `inf` and `1e400` parse as `f64` too.
        let coordinate = |name: &'static str, limit: f64| {
            non_empty(name)
                .map(|v| match v.parse::<f64>() {
                    Ok(x) if x.is_finite() && x.abs() <= limit => Ok(x),
                    Ok(_) => Err(invalid(name, format_args!("not within ±{limit} degrees"))),
                    Err(e) => Err(invalid(name, e)),
                })
                .transpose()
        };
        let location = match (
            coordinate("Latitude", 90.0)?,
            coordinate("Longitude", 180.0)?,
        ) {
            (Some(latitude), Some(longitude)) => Some(SharedLocation {
                latitude,
                longitude,
                address: non_empty("Address"),
                label: non_empty("Label"),
            }),
            _ => None,
        };
        let flag = |name: &str| non_empty(name).map(|v| v.eq_ignore_ascii_case("true"));
        let address = |name: &'static str| match non_empty(name) {
            None => Err(InboundError::Missing(name)),
            Some(a) if a.len() > MAX_ADDRESS => Err(invalid(
                name,
                format_args!("longer than {MAX_ADDRESS} bytes"),
            )),
            Some(a) => Ok(a),
        };
        Ok(Self {
            sid,
            account_sid,
            messaging_service_sid,
            from: address("From")?,
            to: address("To")?,
            body: get("Body").unwrap_or_default().to_owned(),
            num_segments: count("NumSegments")?,
            media,
            opt_out_type: non_empty("OptOutType").map(|v| OptOut::from_param(&v)),
            from_place: place("From"),
            to_place: place("To"),
            location,
            profile_name: non_empty("ProfileName"),
            wa_id: non_empty("WaId"),
            forwarded: flag("Forwarded"),
            frequently_forwarded: flag("FrequentlyForwarded"),
            button_text: non_empty("ButtonText"),
            raw: pairs,
        })
    }

    /// Parses a raw form body.
    ///
    /// # Errors
    /// As [`from_pairs`](Self::from_pairs).
    pub fn from_form(body: &[u8]) -> Result<Self, InboundError> {
        Self::from_pairs(form_urlencoded::parse(body).into_owned().collect())
    }

    /// The message's record in a store: status `received`, `to` your number, `from` the
    /// sender, the text and the SIDs ([`StatusStore::record_inbound`](crate::store::StatusStore::record_inbound)).
    pub fn to_record(&self) -> crate::model::SentMessage {
        let mut record = crate::model::SentMessage::new(
            self.sid.clone(),
            self.to.clone(),
            crate::status::MessageStatus::Received,
        );
        record.account_sid.clone_from(&self.account_sid);
        record.from = Some(self.from.clone());
        record
            .messaging_service_sid
            .clone_from(&self.messaging_service_sid);
        record.body = Some(self.body.clone());
        record.num_segments = self.num_segments;
        record
    }

    /// What this message means for the sender's consent: Twilio's `OptOutType` when it sent
    /// one, else the default keywords read from the body.
    pub fn opt_out(&self) -> Option<OptOut> {
        self.opt_out_type
            .clone()
            .or_else(|| OptOut::from_keyword(&self.body))
    }
}

fn invalid(field: &'static str, reason: impl fmt::Display) -> InboundError {
    InboundError::Invalid {
        field,
        reason: reason.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An incoming MMS with every documented field, as Twilio's "Messaging webhook request"
    /// page lists them, plus one parameter the crate does not know.
    const EVERYTHING: &str = "ToCountry=US&ToState=CA&SmsMessageSid=SM1f0e8ae6ade43cb3c0ce4525424e404f\
&NumMedia=2&ToCity=SAN+FRANCISCO&FromZip=94105&SmsSid=SM1f0e8ae6ade43cb3c0ce4525424e404f\
&FromState=CA&SmsStatus=received&FromCity=SAN+FRANCISCO&Body=Hello+%26+bye&FromCountry=US\
&To=%2B15017122661&MessagingServiceSid=MG0123456789abcdef0123456789abcdef&ToZip=94105\
&NumSegments=1&MessageSid=SM1f0e8ae6ade43cb3c0ce4525424e404f&AccountSid=AC0123456789abcdef0123456789abcdef\
&From=%2B15558675310&ApiVersion=2010-04-01&MediaUrl0=https%3A%2F%2Fapi.twilio.com%2Fm0\
&MediaContentType0=image%2Fjpeg&MediaUrl1=https%3A%2F%2Fapi.twilio.com%2Fm1&MediaContentType1=video%2Fmp4\
&OptOutType=STOP&Latitude=37.7879&Longitude=-122.3917&Address=375+Beale+St&Label=Twilio\
&ProfileName=Ada&WaId=15558675310&Forwarded=true&FrequentlyForwarded=false&ButtonText=Yes\
&SomethingNew=kept";

    #[test]
    fn reads_every_documented_field_and_keeps_unknown_ones() {
        let m = InboundMessage::from_form(EVERYTHING.as_bytes()).unwrap();
        assert_eq!(m.sid.as_str(), "SM1f0e8ae6ade43cb3c0ce4525424e404f");
        assert_eq!(
            m.account_sid.as_ref().unwrap().as_str(),
            "AC0123456789abcdef0123456789abcdef"
        );
        assert!(m.messaging_service_sid.is_some());
        assert_eq!(
            (m.from.as_str(), m.to.as_str()),
            ("+15558675310", "+15017122661")
        );
        assert_eq!(m.body, "Hello & bye");
        assert_eq!(m.num_segments, Some(1));
        assert_eq!(m.media.len(), 2);
        assert_eq!(m.media[1].url, "https://api.twilio.com/m1");
        assert_eq!(m.media[1].content_type.as_deref(), Some("video/mp4"));
        assert_eq!(m.opt_out_type, Some(OptOut::Stop));
        assert_eq!(m.from_place.city.as_deref(), Some("SAN FRANCISCO"));
        assert_eq!(m.to_place.zip.as_deref(), Some("94105"));
        let loc = m.location.as_ref().unwrap();
        assert_eq!((loc.latitude, loc.longitude), (37.7879, -122.3917));
        assert_eq!(loc.label.as_deref(), Some("Twilio"));
        assert_eq!(m.profile_name.as_deref(), Some("Ada"));
        assert_eq!(m.wa_id.as_deref(), Some("15558675310"));
        assert_eq!(
            (m.forwarded, m.frequently_forwarded),
            (Some(true), Some(false))
        );
        assert_eq!(m.button_text.as_deref(), Some("Yes"));
        assert!(
            m.raw
                .iter()
                .any(|(k, v)| k == "SomethingNew" && v == "kept")
        );
        let debug = format!("{m:?}");
        assert!(
            !debug.contains("8675310") && !debug.contains("Hello"),
            "{debug}"
        );
    }

    #[test]
    fn refuses_what_it_cannot_read_without_panicking() {
        let parse = |s: &str| InboundMessage::from_form(s.as_bytes());
        let ok = "MessageSid=SM1f0e8ae6ade43cb3c0ce4525424e404f&From=%2B1555&To=%2B1501";
        assert!(parse(ok).is_ok());
        assert_eq!(
            parse("From=a&To=b"),
            Err(InboundError::Missing("MessageSid"))
        );
        let longest = format!("%2B{}", "1".repeat(MAX_ADDRESS - 1));
        let sid = "MessageSid=SM1f0e8ae6ade43cb3c0ce4525424e404f";
        let m = parse(&format!("{sid}&From={longest}&To={longest}")).unwrap();
        assert_eq!(m.from.len(), MAX_ADDRESS);
        assert_eq!(
            parse(&format!("{sid}&From={longest}&To={longest}2")),
            Err(invalid("To", "longer than 256 bytes"))
        );
        assert!(parse(&format!("{sid}&From={longest}1&To=%2B1501")).is_err());
        assert!(parse(&format!("{ok}&NumMedia=11")).is_err());
        assert!(parse(&format!("{ok}&NumMedia=1")).is_err());
        assert!(parse(&format!("{ok}&NumMedia=-1")).is_err());
        assert!(parse(&format!("{ok}&Latitude=north&Longitude=1")).is_err());
        for (lat, lon) in [("NaN", "1"), ("1", "inf"), ("-inf", "1"), ("1e400", "1")] {
            let form = format!("{ok}&Latitude={lat}&Longitude={lon}");
            assert!(parse(&form).is_err(), "{form}");
        }
        assert!(parse(&format!("{ok}&Latitude=90.5&Longitude=1")).is_err());
        assert!(parse(&format!("{ok}&Latitude=1&Longitude=-180.5")).is_err());
        let edge = parse(&format!("{ok}&Latitude=-90&Longitude=180")).unwrap();
        let edge = edge.location.unwrap();
        assert_eq!((edge.latitude, edge.longitude), (-90.0, 180.0));
        assert!(parse("MessageSid=XX&From=a&To=b").is_err());
        assert!(parse("\u{0}&&==%%").is_err());
    }

    #[test]
    fn opt_out_comes_from_twilio_or_the_default_keywords() {
        let with = |extra: &str| {
            InboundMessage::from_form(
                format!("MessageSid=SM1f0e8ae6ade43cb3c0ce4525424e404f&From=a&To=b&{extra}")
                    .as_bytes(),
            )
            .unwrap()
            .opt_out()
        };
        assert_eq!(with("Body=+stop+"), Some(OptOut::Stop));
        assert_eq!(with("Body=Unsubscribe"), Some(OptOut::Stop));
        assert_eq!(with("Body=start"), Some(OptOut::Start));
        assert_eq!(with("Body=help"), Some(OptOut::Help));
        assert_eq!(with("Body=please+stop+it"), None);
        assert_eq!(with("Body=hi&OptOutType=START"), Some(OptOut::Start));
    }
}
