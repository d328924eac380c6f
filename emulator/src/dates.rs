//! Date filters of list requests (`DateSent`, `DateSent<`, `DateSent>`, `DateCreated…`): the
//! formats the spec documents and uses in its own examples, and how a value compares.
//!
//! The spec (`GET Messages.json`, parameter `DateSent>`) gives these example values:
//! `2008-01-02`, `06/11/2019 22:05:25 MST`, `2019-06-11 22:05:25.000` and
//! `Wed, 19 Jun 2019 22:04:00 -0000`; its description says the dates are GMT. Twilio does not
//! document how a time of day is compared: the emulator compares instants, and a bare date
//! compares by day.

use time::format_description::well_known::{Rfc2822, Rfc3339};
use time::macros::format_description;
use time::{Date, OffsetDateTime, PrimitiveDateTime, UtcOffset};

/// A filter value: a day or an instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum When {
    Day(Date),
    Instant(OffsetDateTime),
}

/// The offset of a time-zone abbreviation used in US examples (`MST` in the spec).
fn zone(abbreviation: &str) -> Option<UtcOffset> {
    let hours = match abbreviation.to_ascii_uppercase().as_str() {
        "UTC" | "GMT" | "Z" => 0,
        "EST" => -5,
        "EDT" | "AST" => -4,
        "CST" => -6,
        "CDT" => -5,
        "MST" => -7,
        "MDT" => -6,
        "PST" => -8,
        "PDT" => -7,
        "AKST" => -9,
        "AKDT" => -8,
        "HST" => -10,
        _ => return None,
    };
    UtcOffset::from_hms(hours, 0, 0).ok()
}

/// `06/11/2019 22:05:25 MST` (month/day/year, an optional zone abbreviation, GMT without one).
fn us_style(s: &str) -> Option<OffsetDateTime> {
    let (datetime, offset) = match s.rsplit_once(' ') {
        Some((rest, abbreviation)) if abbreviation.bytes().all(|b| b.is_ascii_alphabetic()) => {
            (rest, zone(abbreviation)?)
        }
        _ => (s, UtcOffset::UTC),
    };
    PrimitiveDateTime::parse(
        datetime,
        format_description!("[month]/[day]/[year] [hour]:[minute]:[second]"),
    )
    .ok()
    .map(|t| t.assume_offset(offset))
}

/// `2019-06-11 22:05:25.000` or `2019-06-11 22:05:25` (GMT).
fn sql_style(s: &str) -> Option<OffsetDateTime> {
    PrimitiveDateTime::parse(
        s,
        format_description!("[year]-[month]-[day] [hour]:[minute]:[second].[subsecond]"),
    )
    .or_else(|_| {
        PrimitiveDateTime::parse(
            s,
            format_description!("[year]-[month]-[day] [hour]:[minute]:[second]"),
        )
    })
    .ok()
    .map(PrimitiveDateTime::assume_utc)
}

/// The GMT day of `t`; `None` when that day is outside the years `time` represents (an
/// instant late on 31 December 9999 west of GMT is already in the year 10000 there).
fn gmt_date(t: OffsetDateTime) -> Option<Date> {
    t.checked_to_offset(UtcOffset::UTC)
        .map(OffsetDateTime::date)
}

impl When {
    /// Parses `YYYY-MM-DD`, `MM/DD/YYYY`, RFC 3339 / ISO 8601, RFC 2822 (`-0000` included),
    /// `MM/DD/YYYY hh:mm:ss ZONE` and `YYYY-MM-DD hh:mm:ss[.fff]`; `None` for anything else,
    /// and for an instant whose GMT time falls after the year 9999 (it cannot be compared).
    /// An instant is kept in GMT.
    pub(crate) fn parse(s: &str) -> Option<Self> {
        let s = s.trim();
        if let Ok(d) = Date::parse(s, format_description!("[year]-[month]-[day]")) {
            return Some(Self::Day(d));
        }
        if let Ok(d) = Date::parse(s, format_description!("[month]/[day]/[year]")) {
            return Some(Self::Day(d));
        }
        OffsetDateTime::parse(s, &Rfc3339)
            .ok()
            .or_else(|| OffsetDateTime::parse(s, &Rfc2822).ok())
            .or_else(|| us_style(s))
            .or_else(|| sql_style(s))
            .and_then(|t| t.checked_to_offset(UtcOffset::UTC))
            .map(Self::Instant)
    }

    /// Whether `t` falls on this day (an instant names its day in GMT).
    pub(crate) fn same_day(self, t: OffsetDateTime) -> bool {
        let day = match self {
            Self::Day(d) => Some(d),
            Self::Instant(i) => gmt_date(i),
        };
        day.is_some() && gmt_date(t) == day
    }

    /// Whether `t` is on or before this day or instant.
    pub(crate) fn on_or_before(self, t: OffsetDateTime) -> bool {
        match self {
            Self::Day(d) => gmt_date(t).is_some_and(|day| day <= d),
            Self::Instant(i) => t <= i,
        }
    }

    /// Whether `t` is on or after this day or instant.
    pub(crate) fn on_or_after(self, t: OffsetDateTime) -> bool {
        match self {
            Self::Day(d) => gmt_date(t).is_some_and(|day| day >= d),
            Self::Instant(i) => t >= i,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn every_format_of_the_spec_examples() {
        assert_eq!(
            When::parse("2008-01-02"),
            Some(When::Day(time::macros::date!(2008 - 01 - 02)))
        );
        assert_eq!(
            When::parse("06/11/2019 22:05:25 MST"),
            Some(When::Instant(datetime!(2019-06-12 05:05:25 UTC)))
        );
        assert_eq!(
            When::parse("2019-06-11 22:05:25.000"),
            Some(When::Instant(datetime!(2019-06-11 22:05:25 UTC)))
        );
        assert_eq!(
            When::parse("Wed, 19 Jun 2019 22:04:00 -0000"),
            Some(When::Instant(datetime!(2019-06-19 22:04:00 UTC)))
        );
        assert_eq!(
            When::parse("2019-06-11T22:05:25Z"),
            Some(When::Instant(datetime!(2019-06-11 22:05:25 UTC)))
        );
        assert_eq!(
            When::parse("06/11/2019"),
            Some(When::Day(time::macros::date!(2019 - 06 - 11)))
        );
        for bad in [
            "9999-12-31T23:00:00-05:00",
            "12/31/9999 23:00:00 EST",
            "Fri, 31 Dec 9999 23:00:00 -0500",
            "yesterday",
            "06/11/2019 22:05:25 XYZ",
            "2019-13-01",
            "",
            "\0",
        ] {
            assert_eq!(When::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn comparisons() {
        let t = datetime!(2019-06-11 22:05:25 UTC);
        let day = When::parse("2019-06-11").unwrap();
        assert!(day.same_day(t) && day.on_or_before(t) && day.on_or_after(t));
        let later = When::parse("06/11/2019 22:05:25 MST").unwrap();
        assert!(later.on_or_before(t) && !later.on_or_after(t));
        assert!(!later.same_day(t), "22:05 MST is the next day in GMT");
        let last = When::parse("9999-12-31T22:00:00-01:00").unwrap();
        assert!(!last.same_day(t) && last.on_or_before(t) && !last.on_or_after(t));
        assert!(When::parse("12/31/9999").unwrap().on_or_before(t));
    }
}
