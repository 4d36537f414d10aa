//! Time for Logs Insights: the `YYYY-MM-DD HH:MM:SS.mmm` form Insights shows
//! timestamps in (UTC), and the periods `bin`, `datefloor` and `dateceil` round to.

const MS_PER_DAY: i64 = 86_400_000;

/// A period such as `5m` or `1mo`. Months, quarters and years are calendar
/// periods, the rest a fixed number of milliseconds counted from the epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Period {
    Millis(i64),
    Months(i64),
}

impl Period {
    /// A period as written in a query: a positive whole number and a unit.
    pub(super) fn parse(text: &str) -> Option<Period> {
        let split = text.find(|c: char| !c.is_ascii_digit())?;
        let (count, unit) = text.split_at(split);
        // The cap keeps calendar arithmetic far from overflow; a billion years is plenty.
        let count: i64 = count
            .parse()
            .ok()
            .filter(|n| (1..=1_000_000_000).contains(n))?;
        let millis = |per: i64| count.checked_mul(per).map(Period::Millis);
        match unit.to_ascii_lowercase().as_str() {
            "ms" | "msec" | "msecs" | "millisecond" | "milliseconds" => millis(1),
            "s" | "sec" | "secs" | "second" | "seconds" => millis(1000),
            "m" | "min" | "mins" | "minute" | "minutes" => millis(60_000),
            "h" | "hr" | "hrs" | "hour" | "hours" => millis(3_600_000),
            "d" | "day" | "days" => millis(MS_PER_DAY),
            "w" | "week" | "weeks" => millis(7 * MS_PER_DAY),
            "mo" | "mon" | "month" | "months" => Some(Period::Months(count)),
            "q" | "qtr" | "quarter" | "quarters" => count.checked_mul(3).map(Period::Months),
            "y" | "yr" | "year" | "years" => count.checked_mul(12).map(Period::Months),
            _ => None,
        }
    }

    /// The start of the period `ms` falls in.
    pub(super) fn floor(self, ms: i64) -> i64 {
        match self {
            Period::Millis(p) => ms.saturating_sub(ms.rem_euclid(p)),
            Period::Months(n) => {
                let (year, month, _) = civil_from_days(ms.div_euclid(MS_PER_DAY));
                let months = year * 12 + month - 1;
                month_start(months - months.rem_euclid(n))
            }
        }
    }

    /// The end of the period `ms` falls in, or `ms` itself on a boundary.
    pub(super) fn ceil(self, ms: i64) -> i64 {
        let floor = self.floor(ms);
        if floor == ms {
            return ms;
        }
        match self {
            Period::Millis(p) => floor.saturating_add(p),
            Period::Months(n) => {
                let (year, month, _) = civil_from_days(floor.div_euclid(MS_PER_DAY));
                month_start(year * 12 + month - 1 + n)
            }
        }
    }
}

/// Midnight UTC on the first of the month `months` after January of year 0.
fn month_start(months: i64) -> i64 {
    let days = days_from_civil(months.div_euclid(12), months.rem_euclid(12) + 1, 1);
    days.saturating_mul(MS_PER_DAY)
}

/// Epoch milliseconds as Insights shows them: `2024-03-01 12:00:05.250`, UTC.
pub(super) fn format_timestamp(ms: i64) -> String {
    let days = ms.div_euclid(MS_PER_DAY);
    let of_day = ms.rem_euclid(MS_PER_DAY);
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}.{:03}",
        of_day / 3_600_000,
        of_day / 60_000 % 60,
        of_day / 1000 % 60,
        of_day % 1000
    )
}

/// The proleptic Gregorian (year, month, day) of a count of days since 1970-01-01.
/// Counting in 400-year eras keeps it exact for any `i64` day a timestamp makes.
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let shifted = days + 719_468; // days since 0000-03-01
    let era = shifted.div_euclid(146_097);
    let day_of_era = shifted.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    // Months counted from March, so the leap day ends the year.
    let march_month = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * march_month + 2) / 5 + 1;
    let month = if march_month < 10 {
        march_month + 3
    } else {
        march_month - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Days since 1970-01-01 of a proleptic Gregorian date; the inverse of `civil_from_days`.
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year.rem_euclid(400);
    let march_month = if month > 2 { month - 3 } else { month + 9 };
    let day_of_year = (153 * march_month + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: i64 = 1_709_294_405_250; // 2024-03-01 12:00:05.250

    #[test]
    fn timestamps_show_as_insights_does() {
        assert_eq!(format_timestamp(0), "1970-01-01 00:00:00.000");
        assert_eq!(format_timestamp(T), "2024-03-01 12:00:05.250");
        assert_eq!(format_timestamp(-1), "1969-12-31 23:59:59.999");
        assert_eq!(format_timestamp(951_782_400_000), "2000-02-29 00:00:00.000");
        format_timestamp(i64::MIN);
        format_timestamp(i64::MAX);
    }

    #[test]
    fn civil_dates_round_trip() {
        for days in (-800_000..800_000).step_by(997) {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
    }

    #[test]
    fn periods_floor_and_ceil() {
        let p = |t| Period::parse(t).unwrap();
        assert_eq!(
            format_timestamp(p("5m").floor(T)),
            "2024-03-01 12:00:00.000"
        );
        assert_eq!(format_timestamp(p("5m").ceil(T)), "2024-03-01 12:05:00.000");
        assert_eq!(
            format_timestamp(p("30s").floor(T)),
            "2024-03-01 12:00:00.000"
        );
        assert_eq!(
            format_timestamp(p("1d").floor(T)),
            "2024-03-01 00:00:00.000"
        );
        assert_eq!(
            format_timestamp(p("1mo").floor(T)),
            "2024-03-01 00:00:00.000"
        );
        assert_eq!(
            format_timestamp(p("1mo").ceil(T)),
            "2024-04-01 00:00:00.000"
        );
        assert_eq!(
            format_timestamp(p("1q").floor(T)),
            "2024-01-01 00:00:00.000"
        );
        assert_eq!(format_timestamp(p("1y").ceil(T)), "2025-01-01 00:00:00.000");
        assert_eq!(p("1h").floor(3_600_000), 3_600_000);
        assert_eq!(p("1h").ceil(3_600_000), 3_600_000);
        assert_eq!(Period::parse("0m"), None);
        assert_eq!(Period::parse("5"), None);
        assert_eq!(Period::parse("5parsecs"), None);
        assert_eq!(Period::parse("99999999999999999999m"), None);
        assert_eq!(Period::parse("2000000000y"), None);
        for ms in [i64::MIN, i64::MAX] {
            for period in ["1ms", "7d", "1mo", "1000000000y", "1000000000w"] {
                p(period).floor(ms);
                p(period).ceil(ms);
            }
        }
    }
}
