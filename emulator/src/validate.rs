//! Twilio's validation of a create-message request, magic test numbers included.

use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime};

use super::api_error::ApiError;
use super::callbacks::Target;

/// The longest body Twilio accepts, in characters.
const MAX_BODY_CHARS: usize = 1600;
/// The most `MediaUrl` values one message can carry (error 21623,
/// <https://www.twilio.com/docs/api/errors/21623>).
const MAX_MEDIA: usize = 10;
/// The accepted `ValidityPeriod` range in seconds (the spec's `CreateMessageRequest`:
/// "integers from `1` to `36000`"; error 21624, <https://www.twilio.com/docs/api/errors/21624>).
const VALIDITY_PERIOD: std::ops::RangeInclusive<u32> = 1..=36_000;
/// The earliest a message can be scheduled: more than 5 minutes ahead (Twilio error 35114).
const MIN_SCHEDULE_AHEAD: Duration = Duration::minutes(5);
/// The latest a message can be scheduled: 35 days ahead (Twilio error 35114).
const MAX_SCHEDULE_AHEAD: Duration = Duration::days(35);

/// A validated create-message request.
#[derive(Debug, Clone)]
pub(crate) struct CreateRequest {
    pub(crate) to: String,
    pub(crate) from: Option<String>,
    pub(crate) messaging_service_sid: Option<String>,
    pub(crate) body: String,
    pub(crate) media: Vec<String>,
    pub(crate) status_callback: Option<Target>,
    pub(crate) send_at: Option<OffsetDateTime>,
}

/// The first non-empty value of `key`.
pub(crate) fn param<'a>(params: &'a [(String, String)], key: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(k, v)| k == key && !v.is_empty())
        .map(|(_, v)| v.as_str())
}

/// `+` and 1 to 15 digits, the first not zero.
fn is_e164(s: &str) -> bool {
    let Some(digits) = s.strip_prefix('+') else {
        return false;
    };
    (1..=15).contains(&digits.len())
        && digits.bytes().all(|b| b.is_ascii_digit())
        && !digits.starts_with('0')
}

/// A phone number or a channel address such as `whatsapp:+15552229999`.
fn is_address(s: &str) -> bool {
    let number = s
        .strip_prefix("whatsapp:")
        .or_else(|| s.strip_prefix("rcs:"))
        .unwrap_or(s);
    is_e164(number)
}

/// A sender: an address, a short code (3 to 8 digits) or an alphanumeric sender ID
/// (1 to 11 letters, digits and spaces, at least one letter).
fn is_sender(s: &str) -> bool {
    let short_code = (3..=8).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit());
    let alphanumeric = (1..=11).contains(&s.len())
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b' ')
        && s.bytes().any(|b| b.is_ascii_alphabetic());
    is_address(s) || short_code || alphanumeric
}

/// `prefix` followed by 32 hexadecimal digits.
pub(crate) fn is_sid(s: &str, prefix: &str) -> bool {
    s.len() == 34 && s.starts_with(prefix) && s.bytes().skip(2).all(|b| b.is_ascii_hexdigit())
}

/// The magic `From` numbers of Twilio's test credentials.
fn magic_from(from: &str) -> Result<(), ApiError> {
    match from {
        "+15005550001" => Err(ApiError::bad_request(
            21212,
            format!(
                "The 'From' number {from} is not a valid phone number, shortcode, or alphanumeric sender ID."
            ),
        )),
        "+15005550007" => Err(ApiError::bad_request(
            21606,
            "The 'From' phone number provided is not a valid message-capable Twilio phone number for this destination/account.",
        )),
        "+15005550008" => Err(ApiError::bad_request(
            21611,
            "This 'From' number has exceeded the maximum number of queued messages.",
        )),
        _ => Ok(()),
    }
}

/// The magic `To` numbers of Twilio's test credentials.
fn magic_to(to: &str) -> Result<(), ApiError> {
    match to {
        "+15005550001" => Err(ApiError::bad_request(
            21211,
            format!("The 'To' number {to} is not a valid phone number."),
        )),
        "+15005550002" => Err(ApiError::bad_request(
            21612,
            format!(
                "The 'To' phone number: {to}, is not currently reachable using the 'From' phone number via SMS."
            ),
        )),
        "+15005550003" => Err(ApiError::bad_request(
            21408,
            format!(
                "Permission to send an SMS has not been enabled for the region indicated by the 'To' number: {to}."
            ),
        )),
        "+15005550004" => Err(ApiError::bad_request(
            21610,
            "Attempt to send to unsubscribed recipient",
        )),
        "+15005550009" => Err(ApiError::bad_request(
            21614,
            format!("'To' number {to} is not a valid mobile number"),
        )),
        _ => Ok(()),
    }
}

/// Validates the schedule: `ScheduleType=fixed` (else 35126,
/// <https://www.twilio.com/docs/api/errors/35126>) with a `SendAt` (else 35111,
/// <https://www.twilio.com/docs/api/errors/35111>) in ISO 8601, more than 5 minutes and at most
/// 35 days ahead (else 35114, <https://www.twilio.com/docs/api/errors/35114>). Without a
/// Messaging Service, Twilio drops the scheduling parameters and sends at once (35111's page:
/// "Without it, Twilio treats the request as non-scheduled").
fn schedule(
    params: &[(String, String)],
    has_service: bool,
    now: OffsetDateTime,
) -> Result<Option<OffsetDateTime>, ApiError> {
    let Some(kind) = param(params, "ScheduleType") else {
        return Ok(None);
    };
    if kind != "fixed" {
        return Err(ApiError::bad_request(
            35126,
            "The ScheduleType value provided is not supported for this channel",
        ));
    }
    if !has_service {
        return Ok(None);
    }
    let send_at = param(params, "SendAt").ok_or_else(|| {
        ApiError::bad_request(
            35111,
            "SendAt timestamp is missing: it is required when ScheduleType is 'fixed'",
        )
    })?;
    let unsupported = || ApiError::bad_request(35114, "Scheduling does not support this timestamp");
    let send_at = OffsetDateTime::parse(send_at, &Rfc3339).map_err(|_| unsupported())?;
    let ahead = send_at - now;
    if ahead <= MIN_SCHEDULE_AHEAD || ahead > MAX_SCHEDULE_AHEAD {
        return Err(unsupported());
    }
    Ok(Some(send_at))
}

/// `ValidityPeriod`, when given, is an integer in `1..=36000` (21624).
fn validity_period(params: &[(String, String)]) -> Result<(), ApiError> {
    match param(params, "ValidityPeriod") {
        Some(v) if !v.parse::<u32>().is_ok_and(|n| VALIDITY_PERIOD.contains(&n)) => {
            Err(ApiError::bad_request(
                21624,
                "Invalid validity period value: an integer between 1 and 36000 seconds",
            ))
        }
        _ => Ok(()),
    }
}

/// Validates a create-message request as Twilio does, in Twilio's order: required parameters,
/// magic numbers and formats, body and media limits, the status callback URL, scheduling.
pub(crate) fn create(
    params: &[(String, String)],
    now: OffsetDateTime,
) -> Result<CreateRequest, ApiError> {
    let to = param(params, "To")
        .ok_or_else(|| ApiError::bad_request(21604, "A 'To' phone number is required."))?;
    let from = param(params, "From");
    let service = param(params, "MessagingServiceSid");
    if from.is_none() && service.is_none() {
        return Err(ApiError::bad_request(
            21603,
            "A 'From' phone number is required.",
        ));
    }
    let body = param(params, "Body").unwrap_or("");
    let media: Vec<&str> = params
        .iter()
        .filter(|(k, v)| k == "MediaUrl" && !v.is_empty())
        .map(|(_, v)| v.as_str())
        .collect();
    if body.is_empty() && media.is_empty() && param(params, "ContentSid").is_none() {
        return Err(ApiError::bad_request(21602, "Message body is required."));
    }
    // 21705, https://www.twilio.com/docs/api/errors/21705: "The MessagingServiceSid provided
    // with the request does not match a valid Sid pattern (MGxxx)".
    if let Some(sid) = service
        && !is_sid(sid, "MG")
    {
        return Err(ApiError::bad_request(
            21705,
            "The Messaging Service is invalid: MessagingServiceSid must be MG followed by 32 hexadecimal digits",
        ));
    }
    if let Some(from) = from {
        magic_from(from)?;
        if !is_sender(from) {
            return Err(ApiError::bad_request(
                21212,
                format!(
                    "The 'From' number {from} is not a valid phone number, shortcode, or alphanumeric sender ID."
                ),
            ));
        }
    }
    magic_to(to)?;
    if !is_address(to) {
        return Err(ApiError::bad_request(
            21211,
            format!("The 'To' number {to} is not a valid phone number."),
        ));
    }
    if body.chars().count() > MAX_BODY_CHARS {
        return Err(ApiError::bad_request(
            21617,
            "The concatenated message body exceeds the 1600 character limit.",
        ));
    }
    if media.len() > MAX_MEDIA {
        return Err(ApiError::bad_request(
            21623,
            "Number of media files exceeds allowed limit: at most 10",
        ));
    }
    if media
        .iter()
        .any(|m| !m.starts_with("http://") && !m.starts_with("https://"))
    {
        return Err(ApiError::bad_request(21620, "Invalid media URL(s)"));
    }
    let status_callback = param(params, "StatusCallback")
        .map(|url| {
            Target::parse(url).ok_or_else(|| {
                ApiError::bad_request(
                    21609,
                    "Invalid 'StatusCallback': not a valid, properly encoded URL of at most 4000 characters",
                )
            })
        })
        .transpose()?;
    validity_period(params)?;
    let send_at = schedule(params, service.is_some(), now)?;
    Ok(CreateRequest {
        to: to.to_owned(),
        from: from.map(str::to_owned),
        messaging_service_sid: service.map(str::to_owned),
        body: body.to_owned(),
        media: media.into_iter().map(str::to_owned).collect(),
        status_callback,
        send_at,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn code(pairs: &[(&str, &str)]) -> u32 {
        create(&p(pairs), OffsetDateTime::now_utc())
            .unwrap_err()
            .code
    }

    #[test]
    fn required_parameters_in_order() {
        assert_eq!(code(&[]), 21604);
        assert_eq!(code(&[("To", "+15558675310")]), 21603);
        assert_eq!(
            code(&[("To", "+15558675310"), ("From", "+15005550006")]),
            21602
        );
    }

    #[test]
    fn formats() {
        let ok = |to: &str, from: &str| {
            create(
                &p(&[("To", to), ("From", from), ("Body", "x")]),
                OffsetDateTime::now_utc(),
            )
        };
        assert!(ok("+15558675310", "+15005550006").is_ok());
        assert!(ok("whatsapp:+15558675310", "whatsapp:+15005550006").is_ok());
        assert!(ok("+15558675310", "ACME Inc").is_ok());
        assert!(ok("+15558675310", "12345").is_ok());
        assert_eq!(ok("5558675310", "+15005550006").unwrap_err().code, 21211);
        assert_eq!(ok("+15558675310", "!!").unwrap_err().code, 21212);
        assert_eq!(ok("+15558675310", "TwelveLetters").unwrap_err().code, 21212);
    }

    #[test]
    fn documented_codes() {
        let base = [
            ("To", "+15558675310"),
            ("From", "+15005550006"),
            ("Body", "x"),
        ];
        let with = |extra: &[(&str, &str)]| {
            let mut pairs = base.to_vec();
            pairs.extend_from_slice(extra);
            code(&pairs)
        };
        assert_eq!(with(&[("StatusCallback", "https://bad_host/cb")]), 21609);
        assert_eq!(with(&[("StatusCallback", "http://h/it's a space")]), 21609);
        assert_eq!(with(&[("ValidityPeriod", "0")]), 21624);
        assert_eq!(with(&[("ValidityPeriod", "36001")]), 21624);
        assert_eq!(with(&[("ValidityPeriod", "ten")]), 21624);
        let eleven = vec![("MediaUrl", "https://x/a.png"); 11];
        assert_eq!(with(&eleven), 21623);
        let service = [
            ("To", "+15558675310"),
            ("MessagingServiceSid", "MG0123456789abcdef0123456789abcdef"),
            ("Body", "x"),
        ];
        let scheduled = |extra: &[(&str, &str)]| {
            let mut pairs = service.to_vec();
            pairs.extend_from_slice(extra);
            code(&pairs)
        };
        assert_eq!(scheduled(&[("ScheduleType", "fixed")]), 35111);
        assert_eq!(scheduled(&[("ScheduleType", "later")]), 35126);
        assert_eq!(
            code(&[
                ("To", "+15558675310"),
                ("MessagingServiceSid", "MGnope"),
                ("Body", "x")
            ]),
            21705
        );
        let ok = create(
            &p(&[
                ("To", "+15558675310"),
                ("From", "+15005550006"),
                ("Body", "x"),
                ("ValidityPeriod", "36000"),
                ("ScheduleType", "fixed"),
            ]),
            OffsetDateTime::now_utc(),
        )
        .unwrap();
        assert_eq!(ok.send_at, None, "without a service, scheduling is dropped");
    }

    #[test]
    fn scheduling_window() {
        let now = OffsetDateTime::now_utc();
        let at = |ahead: Duration| {
            let send_at = (now + ahead).format(&Rfc3339).unwrap();
            create(
                &p(&[
                    ("To", "+15558675310"),
                    ("MessagingServiceSid", "MG0123456789abcdef0123456789abcdef"),
                    ("Body", "x"),
                    ("ScheduleType", "fixed"),
                    ("SendAt", &send_at),
                ]),
                now,
            )
        };
        assert!(at(Duration::minutes(6)).unwrap().send_at.is_some());
        assert_eq!(at(Duration::minutes(4)).unwrap_err().code, 35114);
        assert_eq!(at(Duration::days(36)).unwrap_err().code, 35114);
    }
}
