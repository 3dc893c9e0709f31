//! Calendar arithmetic on days and seconds since 1970-01-01 (UTC), and the
//! fixed-width ISO formats written to the CSV files.

/// Seconds in a day.
pub(crate) const DAY: i64 = 86_400;
/// Seconds in a (365-day) year.
pub(crate) const YEAR: i64 = 365 * DAY;

/// Days since 1970-01-01 of a proleptic Gregorian date (Hinnant's algorithm).
pub(crate) const fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let m = m as i64;
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date (year, month, day) of a day number.
pub(crate) const fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// The day number of a timestamp.
#[inline]
pub(crate) const fn day_of(secs: i64) -> i64 {
    secs.div_euclid(DAY)
}

/// The last instant covered by the generated data: 2025-01-01T00:00:00Z.
pub(crate) const END_TS: i64 = days_from_civil(2025, 1, 1) * DAY;

const DIGITS2: &[u8; 200] = b"0001020304050607080910111213141516171819\
2021222324252627282930313233343536373839\
4041424344454647484950515253545556575859\
6061626364656667686970717273747576777879\
8081828384858687888990919293949596979899";

#[inline]
fn two(out: &mut [u8], v: u32) {
    let i = (v as usize % 100) * 2;
    out[0] = DIGITS2[i];
    out[1] = DIGITS2[i + 1];
}

/// `YYYY-MM-DD` for a day number (years 0..=9999).
#[inline]
pub(crate) fn date10(days: i64) -> [u8; 10] {
    let (y, m, d) = civil_from_days(days);
    let y = y.clamp(0, 9999) as u32;
    let mut out = *b"0000-00-00";
    two(&mut out[0..2], y / 100);
    two(&mut out[2..4], y % 100);
    two(&mut out[5..7], m);
    two(&mut out[8..10], d);
    out
}

/// `YYYY-MM-DDTHH:MM:SSZ` for a timestamp.
#[inline]
pub(crate) fn datetime20(secs: i64) -> [u8; 20] {
    let days = day_of(secs);
    let rem = (secs - days * DAY) as u32;
    let mut out = *b"0000-00-00T00:00:00Z";
    out[..10].copy_from_slice(&date10(days));
    two(&mut out[11..13], rem / 3600);
    two(&mut out[14..16], rem / 60 % 60);
    two(&mut out[17..19], rem % 60);
    out
}

/// `YYMMDD` for a day number (as in GS1 device identifiers).
pub(crate) fn yymmdd(days: i64) -> [u8; 6] {
    let d = date10(days);
    [d[2], d[3], d[5], d[6], d[8], d[9]]
}

/// The (approximate, 365.25-day) age in whole years at `at` for someone born at `birth`.
#[inline]
pub(crate) fn age_years(birth: i64, at: i64) -> i64 {
    (at - birth).div_euclid(DAY * 1461 / 4)
}

/// True when `y-m-d` is a real calendar date.
#[cfg(test)]
pub(crate) fn valid_date(y: i64, m: u32, d: u32) -> bool {
    if !(1..=12).contains(&m) || d == 0 {
        return false;
    }
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let days = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    d <= days[(m - 1) as usize]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        for z in (-200_000..200_000).step_by(7) {
            let (y, m, d) = civil_from_days(z);
            assert!(valid_date(y, m, d));
            assert_eq!(days_from_civil(y, m, d), z);
        }
    }

    #[test]
    fn formats() {
        assert_eq!(&date10(0), b"1970-01-01");
        assert_eq!(&date10(days_from_civil(1899, 12, 31)), b"1899-12-31");
        assert_eq!(&date10(days_from_civil(2024, 2, 29)), b"2024-02-29");
        assert_eq!(&datetime20(1_700_000_000), b"2023-11-14T22:13:20Z");
        assert_eq!(&datetime20(-1), b"1969-12-31T23:59:59Z");
        assert_eq!(&yymmdd(days_from_civil(2004, 3, 21)), b"040321");
        assert_eq!(&datetime20(END_TS), b"2025-01-01T00:00:00Z");
    }

    #[test]
    fn ages() {
        let b = days_from_civil(2000, 6, 15) * DAY;
        assert_eq!(age_years(b, days_from_civil(2010, 6, 16) * DAY), 10);
        assert_eq!(age_years(b, days_from_civil(2010, 6, 1) * DAY), 9);
    }
}
