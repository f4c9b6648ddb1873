//! Time logic, free of MCP: time-zone lookup and conversion on jiff's bundled tz database.
//!
//! The database is compiled into the binary (`tzdb-bundle-always`), so answers do not depend
//! on the host's `/usr/share/zoneinfo` — a minimal container image has none.

use jiff::{Timestamp, ZonedDateTime, civil, tz::TimeZone};
use schemars::JsonSchema;
use serde::Serialize;

/// A moment in one time zone.
#[derive(Debug, Clone, Serialize, JsonSchema, PartialEq)]
pub struct ZonedTime {
    /// The IANA time zone name, e.g. `Europe/Berlin`.
    pub timezone: String,
    /// ISO 8601 / RFC 3339 timestamp with UTC offset, e.g. `2026-11-25T14:03:07+01:00`.
    pub datetime: String,
    /// The UTC offset in effect, e.g. `+01:00`.
    pub utc_offset: String,
    /// English day name, e.g. `Wednesday`.
    pub day_of_week: String,
    /// Whether daylight saving time is in effect.
    pub is_dst: bool,
}

/// The same moment in two zones.
#[derive(Debug, Clone, Serialize, JsonSchema, PartialEq)]
pub struct Conversion {
    pub source: ZonedTime,
    pub target: ZonedTime,
    /// Target offset minus source offset, e.g. `+9h`, `-5h30m`, `+0h`.
    pub time_difference: String,
}

/// Look up an IANA time zone; the error says what is accepted and suggests close names.
pub fn zone(name: &str) -> Result<TimeZone, String> {
    let name = name.trim();
    if name.is_empty() {
        return Err(
            "time zone is empty; expected an IANA name such as 'UTC', 'Europe/Berlin' or 'America/New_York'"
                .to_owned(),
        );
    }
    TimeZone::get(name).map_err(|_| {
        let suggestions = suggest(name);
        let hint = if suggestions.is_empty() {
            String::new()
        } else {
            format!(" Did you mean {}?", suggestions.join(", "))
        };
        format!(
            "unknown time zone '{name}'; expected an IANA name such as 'UTC', 'Europe/Berlin' or 'America/New_York'.{hint}"
        )
    })
}

/// Up to three zone names that contain the last path segment of `name` (case-insensitive).
fn suggest(name: &str) -> Vec<String> {
    let needle = name
        .rsplit('/')
        .next()
        .unwrap_or(name)
        .to_ascii_lowercase()
        .replace(' ', "_");
    if needle.len() < 3 {
        return Vec::new();
    }
    let mut found: Vec<String> = jiff::tz::db()
        .available()
        .map(|n| n.as_str().to_owned())
        .filter(|n| n.to_ascii_lowercase().contains(&needle))
        .collect();
    found.sort();
    found.truncate(3);
    found.into_iter().map(|n| format!("'{n}'")).collect()
}

fn describe(zoned: &ZonedDateTime, name: &str) -> ZonedTime {
    let info = zoned.time_zone().to_offset_info(zoned.timestamp());
    ZonedTime {
        timezone: name.to_owned(),
        datetime: zoned
            .timestamp()
            .display_with_offset(zoned.offset())
            .to_string(),
        utc_offset: zoned.offset().to_string(),
        day_of_week: format!("{:?}", zoned.weekday()),
        is_dst: info.dst().is_dst(),
    }
}

/// The time at `now` in zone `name`.
pub fn at(now: Timestamp, name: &str) -> Result<ZonedTime, String> {
    let tz = zone(name)?;
    Ok(describe(&now.to_zoned_datetime(tz), name.trim()))
}

/// Convert `time` (`HH:MM`, 24-hour, on today's date in the source zone) between zones.
pub fn convert(
    now: Timestamp,
    time: &str,
    source: &str,
    target: &str,
) -> Result<Conversion, String> {
    let source_tz = zone(source).map_err(|e| format!("source_timezone: {e}"))?;
    let target_tz = zone(target).map_err(|e| format!("target_timezone: {e}"))?;
    let clock = parse_hhmm(time)?;
    let today = now.to_zoned_datetime(source_tz.clone()).date();
    let source_time = civil::DateTime::from_parts(today, clock)
        .to_zoned_datetime(source_tz)
        .map_err(|e| format!("time '{time}' cannot be placed in {source}: {e}"))?;
    let target_time = source_time.with_time_zone(target_tz);
    let diff = target_time.offset().seconds() - source_time.offset().seconds();
    Ok(Conversion {
        source: describe(&source_time, source.trim()),
        target: describe(&target_time, target.trim()),
        time_difference: format_difference(diff),
    })
}

fn parse_hhmm(time: &str) -> Result<civil::Time, String> {
    let bad = || {
        format!("time '{time}' is not a time of day; expected HH:MM in 24-hour form, e.g. 14:30")
    };
    let (h, m) = time.trim().split_once(':').ok_or_else(bad)?;
    if h.is_empty() || h.len() > 2 || m.len() != 2 {
        return Err(bad());
    }
    let hour: i8 = h.parse().map_err(|_| bad())?;
    let minute: i8 = m.parse().map_err(|_| bad())?;
    civil::Time::new(hour, minute, 0, 0).map_err(|_| bad())
}

fn format_difference(seconds: i32) -> String {
    let sign = if seconds < 0 { '-' } else { '+' };
    let minutes = seconds.unsigned_abs() / 60;
    let (h, m) = (minutes / 60, minutes % 60);
    if m == 0 {
        format!("{sign}{h}h")
    } else {
        format!("{sign}{h}h{m:02}m")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn noon_utc() -> Timestamp {
        "2026-07-01T12:00:00Z".parse().expect("timestamp")
    }

    #[test]
    fn current_time_carries_offset_and_dst() {
        let t = at(noon_utc(), "Europe/Berlin").expect("zone");
        assert_eq!(t.datetime, "2026-07-01T14:00:00+02:00");
        assert_eq!(t.utc_offset, "+02");
        assert!(t.is_dst);
        assert_eq!(t.day_of_week, "Wednesday");
        let t = at(noon_utc(), "UTC").expect("zone");
        assert_eq!(t.datetime, "2026-07-01T12:00:00+00:00");
        assert!(!t.is_dst);
    }

    #[test]
    fn unknown_zone_names_what_is_accepted_and_suggests() {
        let e = at(noon_utc(), "Berlin").expect_err("not an IANA name");
        assert!(e.contains("IANA"), "{e}");
        assert!(e.contains("Europe/Berlin"), "{e}");
        assert!(at(noon_utc(), "").is_err());
    }

    #[test]
    fn conversion_handles_half_hour_zones() {
        let c = convert(noon_utc(), "09:15", "UTC", "Asia/Kolkata").expect("converts");
        assert_eq!(c.target.datetime, "2026-07-01T14:45:00+05:30");
        assert_eq!(c.time_difference, "+5h30m");
        let c = convert(noon_utc(), "09:00", "America/New_York", "Asia/Tokyo").expect("converts");
        assert_eq!(c.time_difference, "+13h");
    }

    #[test]
    fn bad_times_are_rejected_with_the_form() {
        for bad in ["25:00", "9", "09:5", "ab:cd", "09:60", ""] {
            let e = convert(noon_utc(), bad, "UTC", "UTC").expect_err(bad);
            assert!(e.contains("HH:MM"), "{bad}: {e}");
        }
        let e = convert(noon_utc(), "09:00", "Nowhere/City", "UTC").expect_err("zone");
        assert!(e.starts_with("source_timezone"), "{e}");
    }
}
