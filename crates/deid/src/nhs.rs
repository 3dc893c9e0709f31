//! NHS numbers: normalisation and the modulus-11 check.
//!
//! An NHS number is ten digits; the tenth is a check digit over the first nine
//! (weights 10 down to 2, `11 - (sum mod 11)`, where 11 becomes 0 and 10 means the
//! number is invalid). People write them with spaces (`943 476 5919`) or hyphens
//! (`943-476-5919`); normalising removes those and surrounding white space.

/// The check digit for the first nine digits of an NHS number, or `None` when no
/// valid NHS number starts with these nine digits (the computed digit would be 10).
///
/// ```
/// assert_eq!(dhub_deid::nhs::check_digit(&[9, 4, 3, 4, 7, 6, 5, 9, 1]), Some(9));
/// ```
pub fn check_digit(first_nine: &[u8; 9]) -> Option<u8> {
    let sum: u32 = first_nine
        .iter()
        .zip((2..=10u32).rev())
        .map(|(&d, w)| u32::from(d) * w)
        .sum();
    match 11 - (sum % 11) {
        11 => Some(0),
        10 => None,
        d => u8::try_from(d).ok(),
    }
}

/// Normalises an NHS number into its ten ASCII digits: surrounding white space is
/// trimmed, inner spaces and hyphens are removed. Returns `None` unless exactly ten
/// digits remain and they pass the modulus-11 check.
///
/// ```
/// use dhub_deid::nhs::normalise;
/// assert_eq!(normalise(" 943 476-5919 ").as_ref().map(|d| &d[..]), Some(&b"9434765919"[..]));
/// assert_eq!(normalise("9434765918"), None); // wrong check digit
/// ```
pub fn normalise(raw: &str) -> Option<[u8; 10]> {
    let mut out = [0u8; 10];
    let mut n = 0usize;
    for b in raw.trim().bytes() {
        match b {
            b'0'..=b'9' => {
                if n == 10 {
                    return None;
                }
                out[n] = b;
                n += 1;
            }
            b' ' | b'-' => {}
            _ => return None,
        }
    }
    if n != 10 {
        return None;
    }
    let mut digits = [0u8; 9];
    for (d, b) in digits.iter_mut().zip(&out[..9]) {
        *d = b - b'0';
    }
    (check_digit(&digits) == Some(out[9] - b'0')).then_some(out)
}

/// True when `raw` normalises to a valid NHS number.
pub fn is_valid(raw: &str) -> bool {
    normalise(raw).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_valid_numbers() {
        for n in [
            "9434765919",
            "943 476 5919",
            "943-476-5919",
            "4010232137",
            " 4010232137\t",
        ] {
            assert!(is_valid(n), "{n} should be valid");
        }
    }

    #[test]
    fn invalid_numbers() {
        for n in [
            "",
            "9434765918",
            "943476591",
            "94347659190",
            "943476591X",
            "943_476_5919",
            "９４３４７６５９１９",
        ] {
            assert!(!is_valid(n), "{n:?} should be invalid");
        }
    }

    #[test]
    fn remainder_ten_has_no_check_digit() {
        // 1,2,3,4,5,6,7,8,1: sum = 10+18+24+28+30+30+28+24+2 = 194, 194 mod 11 = 7 -> 4
        assert_eq!(check_digit(&[1, 2, 3, 4, 5, 6, 7, 8, 1]), Some(4));
        // find a prefix whose remainder is 1 (check digit 10): none may validate
        let mut found = false;
        for last in 0..10u8 {
            let p = [0, 0, 0, 0, 0, 0, 0, 0, last];
            if check_digit(&p).is_none() {
                found = true;
                for d in 0..10 {
                    let s = format!("00000000{last}{d}");
                    assert!(!is_valid(&s));
                }
            }
        }
        assert!(found);
    }
}
