//! Server hours from a timetable: the group's scheduled actions (five-field cron expressions
//! with a capacity each) played minute by minute over a month of real calendar days.

use anyhow::{Result, bail};

/// One scheduled capacity change: at every minute `cron` matches, the group goes to `count`.
#[derive(Clone, Debug, PartialEq)]
pub struct Action {
    pub cron: String,
    pub count: u32,
}

/// A parsed cron field: the values it matches.
#[derive(Clone, Debug)]
struct Field(Vec<bool>);

impl Field {
    fn parse(text: &str, min: u32, max: u32, what: &str) -> Result<Self> {
        let mut set = vec![false; max as usize + 1];
        for part in text.split(',') {
            let (range, step) = match part.split_once('/') {
                Some((r, s)) => (r, s.parse::<u32>().ok().filter(|s| *s > 0)),
                None => (part, Some(1)),
            };
            let Some(step) = step else {
                bail!("cron {what} {text:?}: bad step");
            };
            let (lo, hi) = if range == "*" {
                (min, max)
            } else if let Some((a, b)) = range.split_once('-') {
                (number(a, what)?, number(b, what)?)
            } else {
                let v = number(range, what)?;
                (v, if part.contains('/') { max } else { v })
            };
            if lo < min || hi > max || lo > hi {
                bail!("cron {what} {text:?}: outside {min}-{max}");
            }
            for v in (lo..=hi).step_by(step as usize) {
                set[v as usize] = true;
            }
        }
        Ok(Field(set))
    }

    fn has(&self, v: u32) -> bool {
        self.0.get(v as usize).copied().unwrap_or(false)
    }
}

fn number(text: &str, what: &str) -> Result<u32> {
    text.parse()
        .map_err(|_| anyhow::anyhow!("cron {what}: {text:?} is not a number"))
}

/// Checks a five-field cron expression in the one grammar bbbctl reads (numbers, `*`,
/// ranges, lists, steps; 0 or 7 = Sunday), so that what `schedule add` accepts, `cost` can
/// play. The error says which field is wrong.
pub fn check(text: &str) -> Result<()> {
    Cron::parse(text).map(|_| ())
}

/// A cron expression as Auto Scaling reads it: minute hour day-of-month month day-of-week
/// (0 or 7 = Sunday). Day-of-month and day-of-week both restricted: either matches.
struct Cron {
    minute: Field,
    hour: Field,
    dom: Field,
    month: Field,
    dow: Field,
    dom_any: bool,
    dow_any: bool,
}

impl Cron {
    fn parse(text: &str) -> Result<Self> {
        let f: Vec<&str> = text.split_whitespace().collect();
        if f.len() != 5 {
            bail!("cron {text:?}: five fields expected");
        }
        let mut dow = Field::parse(f[4], 0, 7, "day of week")?;
        if dow.has(7) {
            dow.0[0] = true;
        }
        Ok(Cron {
            minute: Field::parse(f[0], 0, 59, "minute")?,
            hour: Field::parse(f[1], 0, 23, "hour")?,
            dom: Field::parse(f[2], 1, 31, "day of month")?,
            month: Field::parse(f[3], 1, 12, "month")?,
            dow,
            dom_any: f[2] == "*",
            dow_any: f[4] == "*",
        })
    }

    fn matches(&self, day: &Day, hour: u32, minute: u32) -> bool {
        let day_ok = match (self.dom_any, self.dow_any) {
            (true, true) => true,
            (false, true) => self.dom.has(day.dom),
            (true, false) => self.dow.has(day.dow),
            (false, false) => self.dom.has(day.dom) || self.dow.has(day.dow),
        };
        day_ok && self.month.has(day.month) && self.hour.has(hour) && self.minute.has(minute)
    }
}

/// A calendar day: year, day of month, month, day of week (0 = Sunday).
struct Day {
    year: i64,
    dom: u32,
    month: u32,
    dow: u32,
}

/// Today as a day number (days since 1970-01-01, UTC).
pub fn today() -> i64 {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default();
    (secs / 86_400) as i64
}

/// A day number as YYYY-MM-DD.
pub fn date(days: i64) -> String {
    let d = civil(days);
    format!("{:04}-{:02}-{:02}", d.year, d.month, d.dom)
}

/// The day number of a YYYY-MM-DD date (`None` if it is not one).
pub fn day_number(date: &str) -> Option<i64> {
    let mut it = date.get(..10)?.split('-');
    let (y, m, d): (i64, i64, i64) = (
        it.next()?.parse().ok()?,
        it.next()?.parse().ok()?,
        it.next()?.parse().ok()?,
    );
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    Some(era * 146_097 + doe - 719_468)
}

/// The civil date of a day number (days since 1970-01-01), Howard Hinnant's algorithm.
fn civil(days: i64) -> Day {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let dom = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    Day {
        year: yoe + era * 400 + i64::from(month <= 2),
        dom,
        month,
        dow: (days + 4).rem_euclid(7) as u32, // 1970-01-01 was a Thursday
    }
}

/// Average number of servers over 30 days starting at day number `start` (days since
/// 1970-01-01), when the group starts at `initial` and follows `actions`. The 30 days before
/// are played first, so the count at the start is the one the timetable leaves there.
pub fn average_servers(initial: u32, actions: &[Action], start: i64) -> Result<f64> {
    let crons: Vec<(Cron, u32)> = actions
        .iter()
        .map(|a| Ok((Cron::parse(&a.cron)?, a.count)))
        .collect::<Result<_>>()?;
    let mut count = initial;
    let mut minutes_counted = 0u64;
    let mut server_minutes = 0u64;
    for d in (start - 30)..(start + 30) {
        let day = civil(d);
        for hour in 0..24 {
            for minute in 0..60 {
                for (cron, n) in &crons {
                    if cron.matches(&day, hour, minute) {
                        count = *n;
                    }
                }
                if d >= start {
                    minutes_counted += 1;
                    server_minutes += u64::from(count);
                }
            }
        }
    }
    Ok(server_minutes as f64 / minutes_counted as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2026-11-30, a Monday.
    const MONDAY: i64 = 20_787;

    #[test]
    fn calendar_is_right() {
        let d = civil(MONDAY);
        assert_eq!((d.year, d.dom, d.month, d.dow), (2026, 30, 11, 1));
        let d = civil(0);
        assert_eq!((d.dom, d.month, d.dow), (1, 1, 4));
    }

    #[test]
    fn dates_round_trip() {
        assert_eq!(date(MONDAY), "2026-11-30");
        assert_eq!(day_number("2026-11-30"), Some(MONDAY));
        assert_eq!(
            day_number("2024-02-29").map(date).as_deref(),
            Some("2024-02-29")
        );
        assert_eq!(day_number("1970-01-01"), Some(0));
        assert_eq!(day_number("soon"), None);
    }

    #[test]
    fn no_schedule_keeps_the_count() {
        assert_eq!(average_servers(3, &[], MONDAY).unwrap(), 3.0);
    }

    #[test]
    fn weekday_daytime_timetable() {
        // 10 servers on weekdays 08:00-18:00, 2 otherwise: 30 days from Monday 30 Nov hold
        // 22 weekdays (30 Nov to 29 Dec): (22*10 h*10 + (720-220 h)*2) / 720.
        let actions = [
            Action {
                cron: "0 8 * * 1-5".into(),
                count: 10,
            },
            Action {
                cron: "0 18 * * 1-5".into(),
                count: 2,
            },
        ];
        let avg = average_servers(2, &actions, MONDAY).unwrap();
        let expected = (220.0 * 10.0 + 500.0 * 2.0) / 720.0;
        assert!((avg - expected).abs() < 1e-9, "{avg} vs {expected}");
    }

    #[test]
    fn the_count_before_the_period_comes_from_the_timetable() {
        // Scaled to 0 every night at 20:00 and never up again: 4 servers only until 20:00
        // of the first day, although the group "starts" at 4.
        let actions = [Action {
            cron: "0 20 * * *".into(),
            count: 0,
        }];
        assert_eq!(average_servers(4, &actions, MONDAY).unwrap(), 0.0);
    }

    #[test]
    fn steps_lists_and_sunday_as_seven() {
        let c = Cron::parse("*/15 9,17 1 * 7").unwrap();
        let sunday = civil(day_number("2026-12-06").unwrap());
        let first = civil(day_number("2026-12-01").unwrap());
        assert_eq!((sunday.dow, first.dow), (0, 2));
        assert!(c.matches(&sunday, 9, 45));
        assert!(c.matches(&first, 17, 0));
        assert!(!c.matches(&first, 17, 5));
        assert!(Cron::parse("61 * * * *").is_err());
        assert!(Cron::parse("* * *").is_err());
    }
}
