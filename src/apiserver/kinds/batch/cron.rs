//! Cron schedules as upstream's CronJobs read them (robfig/cron v3 `ParseStandard`): five
//! fields (minute, hour, day of month, month, day of week) with ranges, steps, lists and
//! names, `?` for `*`, the `@yearly`..`@hourly` descriptors and `@every <duration>`, and a
//! `TZ=`/`CRON_TZ=` prefix. Errors carry robfig's wording, which upstream's validation
//! and Events quote. [`Schedule::next`] gives the next activation after an instant, in the
//! schedule's time zone (its prefix's, or the one passed in).
//!
//! Written here rather than taken from a crate: the validation messages must be robfig's,
//! and the day-of-month/day-of-week rule (either matches when both are restricted) is
//! robfig's too.

use jiff::civil::{DateTime, Time};
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan};

/// Why a schedule does not parse; the text is robfig/cron's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct CronError(pub String);

/// The bit robfig sets for a `*`/`?` field (used by the day-matching rule).
const STAR: u64 = 1 << 63;

/// A parsed schedule.
#[derive(Debug, Clone)]
pub enum Schedule {
    /// The five fields as bit sets.
    Spec {
        /// Minutes 0-59.
        minute: u64,
        /// Hours 0-23.
        hour: u64,
        /// Days of month 1-31.
        dom: u64,
        /// Months 1-12.
        month: u64,
        /// Days of week 0-6 (Sunday 0).
        dow: u64,
        /// The zone of a `TZ=`/`CRON_TZ=` prefix.
        zone: Option<TimeZone>,
    },
    /// `@every <duration>`: a fixed period (whole seconds, at least one).
    Every(i64),
}

struct Bounds {
    min: u32,
    max: u32,
    names: &'static [&'static str],
}

const MINUTES: Bounds = Bounds {
    min: 0,
    max: 59,
    names: &[],
};
const HOURS: Bounds = Bounds {
    min: 0,
    max: 23,
    names: &[],
};
const DOM: Bounds = Bounds {
    min: 1,
    max: 31,
    names: &[],
};
const MONTHS: Bounds = Bounds {
    min: 1,
    max: 12,
    names: &[
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ],
};
const DOW: Bounds = Bounds {
    min: 0,
    max: 6,
    names: &["sun", "mon", "tue", "wed", "thu", "fri", "sat"],
};

fn must_int(s: &str) -> Result<u32, CronError> {
    let n: i64 = s.parse().map_err(|_| {
        CronError(format!(
            "failed to parse int from {s}: strconv.Atoi: parsing {s:?}: invalid syntax"
        ))
    })?;
    if n < 0 {
        return Err(CronError(format!("negative number ({n}) not allowed: {s}")));
    }
    Ok(n as u32)
}

fn int_or_name(s: &str, b: &Bounds) -> Result<u32, CronError> {
    let lower = s.to_lowercase();
    if let Some(i) = b.names.iter().position(|n| *n == lower) {
        return Ok(i as u32 + b.min);
    }
    must_int(s)
}

fn range(expr: &str, b: &Bounds) -> Result<u64, CronError> {
    let range_step: Vec<&str> = expr.split('/').collect();
    let low_high: Vec<&str> = range_step[0].split('-').collect();
    let single = low_high.len() == 1;
    let (start, mut end, mut extra);
    if low_high[0] == "*" || low_high[0] == "?" {
        (start, end, extra) = (b.min, b.max, STAR);
    } else {
        start = int_or_name(low_high[0], b)?;
        end = match low_high.len() {
            1 => start,
            2 => int_or_name(low_high[1], b)?,
            _ => return Err(CronError(format!("too many hyphens: {expr}"))),
        };
        extra = 0;
    }
    let step = match range_step.len() {
        1 => 1,
        2 => {
            let step = must_int(range_step[1])?;
            if single {
                end = b.max;
            }
            if step > 1 {
                extra = 0;
            }
            step
        }
        _ => return Err(CronError(format!("too many slashes: {expr}"))),
    };
    if start < b.min {
        return Err(CronError(format!(
            "beginning of range ({start}) below minimum ({}): {expr}",
            b.min
        )));
    }
    if end > b.max {
        return Err(CronError(format!(
            "end of range ({end}) above maximum ({}): {expr}",
            b.max
        )));
    }
    if start > end {
        return Err(CronError(format!(
            "beginning of range ({start}) beyond end of range ({end}): {expr}"
        )));
    }
    if step == 0 {
        return Err(CronError(format!(
            "step of range should be a positive number: {expr}"
        )));
    }
    let mut bits = extra;
    let mut i = start;
    while i <= end {
        bits |= 1 << i;
        i += step;
    }
    Ok(bits)
}

fn field(f: &str, b: &Bounds) -> Result<u64, CronError> {
    let mut bits = 0;
    for expr in f.split(',') {
        bits |= range(expr, b)?;
    }
    Ok(bits)
}

/// Go's `time.ParseDuration` for the forms `@every` takes (`1h30m`, `90s`, `1.5h`).
fn go_duration(s: &str) -> Option<f64> {
    let mut rest = s;
    let mut total = 0.0;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let n = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let num: f64 = rest[..n].parse().ok()?;
        rest = &rest[n..];
        let u = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit = match &rest[..u] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        total += num * unit;
        rest = &rest[u..];
    }
    Some(total)
}

/// The fixed field sets of a descriptor.
fn descriptor(d: &str, zone: Option<TimeZone>) -> Result<Schedule, CronError> {
    let all = |b: &Bounds| range("*", b).unwrap_or(0);
    let one = |n: u32| 1u64 << n;
    let (minute, hour, dom, month, dow) = match d {
        "@yearly" | "@annually" => (one(0), one(0), one(1), one(1), all(&DOW)),
        "@monthly" => (one(0), one(0), one(1), all(&MONTHS), all(&DOW)),
        "@weekly" => (one(0), one(0), all(&DOM), all(&MONTHS), one(0)),
        "@daily" | "@midnight" => (one(0), one(0), all(&DOM), all(&MONTHS), all(&DOW)),
        "@hourly" => (one(0), all(&HOURS), all(&DOM), all(&MONTHS), all(&DOW)),
        _ => {
            if let Some(p) = d.strip_prefix("@every ") {
                let secs = go_duration(p.trim()).ok_or_else(|| {
                    CronError(format!(
                        "failed to parse duration {d}: time: invalid duration {:?}",
                        p.trim()
                    ))
                })?;
                return Ok(Schedule::Every((secs.floor() as i64).max(1)));
            }
            return Err(CronError(format!("unrecognized descriptor: {d}")));
        }
    };
    Ok(Schedule::Spec {
        minute,
        hour,
        dom,
        month,
        dow,
        zone,
    })
}

impl Schedule {
    /// Parses `spec` as robfig's `ParseStandard` does.
    pub fn parse(spec: &str) -> Result<Schedule, CronError> {
        let mut spec = spec.trim_start();
        if spec.is_empty() {
            return Err(CronError("empty spec string".into()));
        }
        let mut zone = None;
        if spec.starts_with("TZ=") || spec.starts_with("CRON_TZ=") {
            let eq = spec.find('=').unwrap_or(0);
            let end = spec.find(' ').unwrap_or(spec.len());
            let name = &spec[eq + 1..end];
            zone = Some(
                load_zone(name)
                    .map_err(|e| CronError(format!("provided bad location {name}: {e}")))?,
            );
            spec = spec[end..].trim();
        }
        if spec.starts_with('@') {
            return descriptor(spec, zone);
        }
        let fields: Vec<&str> = spec.split_whitespace().collect();
        if fields.len() != 5 {
            return Err(CronError(format!(
                "expected exactly 5 fields, found {}: [{}]",
                fields.len(),
                fields.join(" ")
            )));
        }
        Ok(Schedule::Spec {
            minute: field(fields[0], &MINUTES)?,
            hour: field(fields[1], &HOURS)?,
            dom: field(fields[2], &DOM)?,
            month: field(fields[3], &MONTHS)?,
            dow: field(fields[4], &DOW)?,
            zone,
        })
    }

    /// The first activation strictly after `after`, read in the schedule's own zone (a
    /// `TZ=` prefix) or else in `tz`; `None` if there is none within five years
    /// (`0 0 30 2 *`).
    pub fn next(&self, after: Timestamp, tz: &TimeZone) -> Option<Timestamp> {
        let (minute, hour, dom, month, dow, zone) = match self {
            Schedule::Every(p) => {
                // robfig: the next whole second after adding the period.
                return Timestamp::from_second(after.as_second() + p).ok();
            }
            Schedule::Spec {
                minute,
                hour,
                dom,
                month,
                dow,
                zone,
            } => (*minute, *hour, *dom, *month, *dow, zone),
        };
        let tz = zone.as_ref().unwrap_or(tz);
        let local = after.to_zoned(tz.clone()).datetime();
        let mut dt = local
            .with()
            .second(0)
            .subsec_nanosecond(0)
            .build()
            .ok()?
            .checked_add(1.minute())
            .ok()?;
        let limit = dt.year() + 5;
        let has = |bits: u64, n: i64| bits & (1u64 << n) != 0;
        let day_ok = |d: &DateTime| {
            let dom_m = has(dom, i64::from(d.day()));
            let dow_m = has(dow, i64::from(d.weekday().to_sunday_zero_offset()));
            if dom & STAR != 0 || dow & STAR != 0 {
                dom_m && dow_m
            } else {
                dom_m || dow_m
            }
        };
        loop {
            if dt.year() > limit {
                return None;
            }
            if !has(month, i64::from(dt.month())) {
                let first = dt.date().first_of_month().checked_add(1.month()).ok()?;
                dt = DateTime::from_parts(first, Time::midnight());
                continue;
            }
            if !day_ok(&dt) {
                dt = DateTime::from_parts(dt.date().tomorrow().ok()?, Time::midnight());
                continue;
            }
            if !has(hour, i64::from(dt.hour())) {
                dt = dt
                    .with()
                    .minute(0)
                    .build()
                    .ok()?
                    .checked_add(1.hour())
                    .ok()?;
                continue;
            }
            if !has(minute, i64::from(dt.minute())) {
                dt = dt.checked_add(1.minute()).ok()?;
                continue;
            }
            let ts = dt.to_zoned(tz.clone()).ok()?.timestamp();
            if ts > after {
                return Some(ts);
            }
            dt = dt.checked_add(1.minute()).ok()?;
        }
    }
}

/// Why a time zone name does not load (Go's `time.LoadLocation` wording).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown time zone {0}")]
pub struct UnknownZone(pub String);

/// The IANA zone `name` (`UTC` and the empty name are UTC, as in Go).
pub fn load_zone(name: &str) -> Result<TimeZone, UnknownZone> {
    if name.is_empty() || name == "UTC" {
        return Ok(TimeZone::UTC);
    }
    if name == "Local" {
        return Ok(TimeZone::system());
    }
    TimeZone::get(name).map_err(|_| UnknownZone(name.into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn robfig_messages() {
        let err = |s: &str| Schedule::parse(s).unwrap_err().0;
        assert_eq!(err(""), "empty spec string");
        assert_eq!(err("foo"), "expected exactly 5 fields, found 1: [foo]");
        assert_eq!(
            err("61 * * * *"),
            "end of range (61) above maximum (59): 61"
        );
        assert_eq!(
            err("x * * * *"),
            "failed to parse int from x: strconv.Atoi: parsing \"x\": invalid syntax"
        );
        assert_eq!(err("@often"), "unrecognized descriptor: @often");
        assert_eq!(
            err("5-1 * * * *"),
            "beginning of range (5) beyond end of range (1): 5-1"
        );
        assert!(err("TZ=Mars/Olympus * * * * *").starts_with("provided bad location Mars/Olympus"));
        assert!(Schedule::parse("*/1 * * * *").is_ok());
        assert!(Schedule::parse("0 9 * JAN-mar mon-FRI").is_ok());
        assert!(Schedule::parse("@hourly").is_ok());
        assert!(Schedule::parse("@every 90s").is_ok());
    }

    #[test]
    fn next_activations() {
        let utc = TimeZone::UTC;
        let every = Schedule::parse("*/1 * * * *").unwrap();
        assert_eq!(
            every.next(ts("2026-01-01T10:00:30Z"), &utc),
            Some(ts("2026-01-01T10:01:00Z"))
        );
        assert_eq!(
            every.next(ts("2026-01-01T10:01:00Z"), &utc),
            Some(ts("2026-01-01T10:02:00Z"))
        );
        let quarter = Schedule::parse("15,45 3 * * *").unwrap();
        assert_eq!(
            quarter.next(ts("2026-01-01T03:50:00Z"), &utc),
            Some(ts("2026-01-02T03:15:00Z"))
        );
        // Both day fields restricted: either matches (1st of the month or a Monday).
        let either = Schedule::parse("0 0 1 * 1").unwrap();
        assert_eq!(
            either.next(ts("2026-01-01T00:00:00Z"), &utc),
            Some(ts("2026-01-05T00:00:00Z"))
        );
        assert_eq!(
            Schedule::parse("0 0 30 2 *")
                .unwrap()
                .next(ts("2026-01-01T00:00:00Z"), &utc),
            None
        );
    }

    #[test]
    fn time_zones() {
        let ny = load_zone("America/New_York").unwrap();
        let nine = Schedule::parse("0 9 * * *").unwrap();
        // 09:00 in New York in January is 14:00 UTC; in July 13:00 UTC.
        assert_eq!(
            nine.next(ts("2026-01-10T00:00:00Z"), &ny),
            Some(ts("2026-01-10T14:00:00Z"))
        );
        assert_eq!(
            nine.next(ts("2026-07-10T00:00:00Z"), &ny),
            Some(ts("2026-07-10T13:00:00Z"))
        );
        let prefixed = Schedule::parse("TZ=Asia/Tokyo 0 9 * * *").unwrap();
        assert_eq!(
            prefixed.next(ts("2026-01-10T00:00:00Z"), &TimeZone::UTC),
            Some(ts("2026-01-11T00:00:00Z"))
        );
        assert_eq!(
            load_zone("Nowhere/City").unwrap_err().to_string(),
            "unknown time zone Nowhere/City"
        );
    }
}
