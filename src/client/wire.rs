//! Serde helpers for Twilio's JSON quirks: RFC 2822 dates, numbers sent as strings, loose maps.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serializer};
use time::format_description::well_known::Rfc2822;
use time::{OffsetDateTime, UtcOffset};

/// `Option<OffsetDateTime>` as an RFC 2822 string (`"Thu, 24 Aug 2023 05:01:45 +0000"`), in UTC.
/// `null`, a missing field and `""` read as `None`.
pub(crate) mod rfc2822_opt {
    use super::*;

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<OffsetDateTime>, D::Error> {
        let Some(s) = Option::<String>::deserialize(d)? else {
            return Ok(None);
        };
        let s = s.trim();
        if s.is_empty() {
            return Ok(None);
        }
        let t = OffsetDateTime::parse(s, &Rfc2822)
            .map_err(|_| de::Error::custom("date is not an rfc 2822 timestamp"))?;
        // In UTC the date may fall outside the years `time` can hold (9999 in another zone).
        t.checked_to_offset(UtcOffset::UTC)
            .map(Some)
            .ok_or_else(|| de::Error::custom("date is out of range in utc"))
    }

    pub(crate) fn serialize<S: Serializer>(
        t: &Option<OffsetDateTime>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match t {
            None => s.serialize_none(),
            Some(t) => {
                let text = t
                    .checked_to_offset(UtcOffset::UTC)
                    .and_then(|t| t.format(&Rfc2822).ok())
                    .ok_or_else(|| {
                        serde::ser::Error::custom("date cannot be written as rfc 2822")
                    })?;
                s.serialize_str(&text)
            }
        }
    }
}

/// `Option<u32>` sent as a string (`"1"`) or a number; `null`, missing and `""` read as `None`.
pub(crate) mod u32_lenient_opt {
    use super::*;

    struct V;

    impl<'de> Visitor<'de> for V {
        type Value = Option<u32>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a non-negative integer or a string holding one")
        }

        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_any(self)
        }

        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
            u32::try_from(v)
                .map(Some)
                .map_err(|_| E::custom("integer out of range"))
        }

        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
            u32::try_from(v)
                .map(Some)
                .map_err(|_| E::custom("integer out of range"))
        }

        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            let v = v.trim();
            if v.is_empty() {
                return Ok(None);
            }
            v.parse::<u32>()
                .map(Some)
                .map_err(|_| E::custom("string is not a non-negative integer"))
        }
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
        d.deserialize_option(V)
    }

    pub(crate) fn serialize<S: Serializer>(v: &Option<u32>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            None => s.serialize_none(),
            Some(n) => s.collect_str(n),
        }
    }
}

/// A JSON object of URIs; entries whose value is not a string are skipped, `null` reads as `None`.
pub(crate) mod uri_map_opt {
    use super::*;

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<BTreeMap<String, String>>, D::Error> {
        let raw = Option::<BTreeMap<String, serde_json::Value>>::deserialize(d)?;
        Ok(raw.map(|m| {
            m.into_iter()
                .filter_map(|(k, v)| match v {
                    serde_json::Value::String(s) => Some((k, s)),
                    _ => None,
                })
                .collect()
        }))
    }
}

/// A list that may arrive as `null`; `null` and a missing field read as empty.
pub(crate) fn vec_or_null<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Ok(Option::<Vec<T>>::deserialize(d)?.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Serialize;

    #[derive(Deserialize, Serialize, Debug, PartialEq)]
    struct T {
        #[serde(default, with = "rfc2822_opt")]
        d: Option<OffsetDateTime>,
        #[serde(default, with = "u32_lenient_opt")]
        n: Option<u32>,
    }

    #[test]
    fn dates_and_lenient_numbers() {
        let t: T =
            serde_json::from_str(r#"{"d":"Thu, 24 Aug 2023 05:01:45 +0000","n":"3"}"#).unwrap();
        assert_eq!(t.d, Some(time::macros::datetime!(2023-08-24 05:01:45 UTC)));
        assert_eq!(t.n, Some(3));
        assert_eq!(
            serde_json::to_string(&t).unwrap(),
            r#"{"d":"Thu, 24 Aug 2023 05:01:45 +0000","n":"3"}"#
        );
        let t: T =
            serde_json::from_str(r#"{"d":"Thu, 24 Aug 2023 07:01:45 +0200","n":7}"#).unwrap();
        assert_eq!(t.d, Some(time::macros::datetime!(2023-08-24 05:01:45 UTC)));
        assert_eq!(t.d.unwrap().offset(), UtcOffset::UTC);
        assert_eq!(t.n, Some(7));
        let t: T = serde_json::from_str(r#"{"d":null,"n":""}"#).unwrap();
        assert_eq!(t, T { d: None, n: None });
        let t: T = serde_json::from_str(r#"{}"#).unwrap();
        assert_eq!(t, T { d: None, n: None });
        assert!(serde_json::from_str::<T>(r#"{"n":"-1"}"#).is_err());
        assert!(serde_json::from_str::<T>(r#"{"n":-1}"#).is_err());
        assert!(serde_json::from_str::<T>(r#"{"d":"2023-08-24"}"#).is_err());
        // Past the last year `time` holds once moved to UTC: an error, not a panic.
        assert!(serde_json::from_str::<T>(r#"{"d":"Fri, 31 Dec 9999 23:59:59 -0100"}"#).is_err());
        let last = serde_json::from_str::<T>(r#"{"d":"Fri, 31 Dec 9999 23:59:59 +0100"}"#);
        assert!(last.unwrap().d.is_some());
        let unwritable = T {
            d: Some(time::macros::datetime!(9999-12-31 23:00 -05:00)),
            n: None,
        };
        assert!(serde_json::to_string(&unwritable).is_err());
    }
}
