//! Invented person names from a closed syllable grammar.
//!
//! Every given name is `START + MID + END` and every family name
//! `LSTART + LMID + LEND`, always three parts, so the generator produces
//! invented names ("Calinella", "Thornerwick") rather than names drawn from a
//! census list. A unit test checks that no name of the real Synthea sample can
//! be produced by this grammar; Synthea-style digits are appended on top.

use crate::rng::Rng;

const F_START: &[&str] = &[
    "Ab", "Al", "Am", "Ar", "Bel", "Bri", "Cal", "Cor", "Dar", "Del", "El", "Em", "Fal", "Fen",
    "Gal", "Gwen", "Hal", "Hes", "Il", "Is", "Jal", "Jor", "Kal", "Kel", "Lor", "Lys", "Mar",
    "Mel", "Nal", "Nor", "Or", "Pel", "Quel", "Ros", "Sel", "Syl", "Tal", "Tor", "Ul", "Val",
    "Wen", "Yl", "Zan", "Zel",
];
const F_MID: &[&str] = &[
    "a", "e", "i", "o", "u", "an", "en", "in", "ar", "er", "or", "el", "il", "av", "ev", "ith",
    "ad", "om",
];
const F_END_FEMALE: &[&str] = &[
    "a", "ia", "ella", "ine", "ys", "wen", "ra", "na", "lie", "ette", "isse", "anne", "ora", "ina",
];
const F_END_MALE: &[&str] = &[
    "an", "on", "us", "or", "ric", "ian", "as", "ek", "en", "ius", "ard", "ot", "ando", "mir",
];
const L_START: &[&str] = &[
    "Ash", "Bram", "Brack", "Carr", "Cress", "Dun", "Dray", "Eld", "Fair", "Fen", "Gold", "Grim",
    "Hart", "Holt", "Ink", "Kirk", "Lang", "Lark", "Marsh", "Mor", "Nor", "Oak", "Pen", "Quill",
    "Rook", "Stan", "Thorn", "Umber", "Vane", "Wick", "Yar", "Zell", "Bex", "Cald", "Hob", "Ty",
];
const L_MID: &[&str] = &["a", "e", "i", "o", "er", "en", "el", "ing", "ow", "am"];
const L_END: &[&str] = &[
    "by", "ford", "ham", "ley", "ton", "well", "wick", "worth", "more", "dale", "field", "ridge",
    "stead", "combe", "holm", "thwaite", "gate", "mere", "shaw", "wood", "bury", "croft", "hurst",
    "mond",
];

/// Appends an invented given name.
pub(crate) fn given(r: &mut Rng, female: bool, out: &mut String) {
    out.push_str(r.pick(F_START).as_ref());
    out.push_str(r.pick(F_MID).as_ref());
    out.push_str(
        r.pick(if female { F_END_FEMALE } else { F_END_MALE })
            .as_ref(),
    );
}

/// Appends an invented family name.
pub(crate) fn family(r: &mut Rng, out: &mut String) {
    out.push_str(r.pick(L_START).as_ref());
    out.push_str(r.pick(L_MID).as_ref());
    out.push_str(r.pick(L_END).as_ref());
}

/// Appends Synthea-style digits (1 to 999, no leading zero).
pub(crate) fn digits(r: &mut Rng, out: &mut String) {
    let n = 1 + r.below(999);
    out.push_str(itoa::Buffer::new().format(n));
}

/// Replaces one lowercase vowel (or `n`) of the name part after `from` by an
/// accented letter, for names like `Marínella`.
pub(crate) fn accent(r: &mut Rng, s: &mut String, from: usize) {
    let eligible: Vec<usize> = s[from..]
        .char_indices()
        .skip(1)
        .filter(|(_, c)| matches!(c, 'a' | 'e' | 'i' | 'o' | 'u' | 'n'))
        .map(|(i, _)| from + i)
        .collect();
    if eligible.is_empty() {
        return;
    }
    let at = eligible[r.index(eligible.len())];
    let repl = match s.as_bytes()[at] {
        b'a' => {
            if r.chance(0.5) {
                "á"
            } else {
                "ä"
            }
        }
        b'e' => {
            if r.chance(0.5) {
                "é"
            } else {
                "ë"
            }
        }
        b'i' => "í",
        b'o' => {
            if r.chance(0.5) {
                "ó"
            } else {
                "ö"
            }
        }
        b'u' => "ú",
        _ => "ñ",
    };
    s.replace_range(at..at + 1, repl);
}

/// Appends a Synthea-style full name `Given123 Family456`.
pub(crate) fn full_with_digits(r: &mut Rng, female: bool, accented: bool, out: &mut String) {
    let start = out.len();
    given(r, female, out);
    if accented {
        accent(r, out, start);
    }
    digits(r, out);
    out.push(' ');
    let start = out.len();
    family(r, out);
    if accented && r.chance(0.5) {
        accent(r, out, start);
    }
    digits(r, out);
}

/// Street-type words used in generated street addresses.
pub(crate) const STREET_SUFFIX: &[&str] = &[
    "Street",
    "Avenue",
    "Road",
    "Lane",
    "Way",
    "Court",
    "Drive",
    "Lock",
    "Neck",
    "Underpass",
    "Union",
    "Throughway",
    "Landing",
    "Ville",
    "Dam",
    "Vale",
    "Junction",
    "Glen",
    "Hollow",
    "Promenade",
    "Rue",
    "Club",
    "Terrace",
    "Manor",
    "Wall",
    "Divide",
    "Crossroad",
    "Light",
    "Trail",
    "Ramp",
    "Gateway",
    "Station",
    "Mill",
    "Fork",
    "Crossing",
    "Camp",
    "Gardens",
    "Heights",
    "Knoll",
    "Harbor",
    "Ferry",
    "Path",
    "Row",
    "Pass",
    "Branch",
    "Ridge",
    "Meadow",
    "Port",
    "Green",
    "Park",
    "Grove",
    "Bypass",
    "Corner",
    "Village",
    "Plaza",
];

#[cfg(test)]
pub(crate) mod grammar {
    //! Recognisers for the grammar, used to prove real names cannot be generated.
    use super::*;

    fn parse(s: &str, parts: &[&[&str]]) -> bool {
        match parts.split_first() {
            None => s.is_empty(),
            Some((first, rest)) => first
                .iter()
                .any(|p| s.strip_prefix(p).is_some_and(|tail| parse(tail, rest))),
        }
    }

    pub(crate) fn strip_accents(s: &str) -> String {
        s.chars()
            .map(|c| match c {
                'á' | 'ä' | 'à' | 'â' => 'a',
                'é' | 'ë' | 'è' | 'ê' => 'e',
                'í' | 'ï' | 'ì' | 'î' => 'i',
                'ó' | 'ö' | 'ò' | 'ô' => 'o',
                'ú' | 'ü' | 'ù' | 'û' => 'u',
                'ñ' => 'n',
                c => c,
            })
            .collect()
    }

    /// True when the grammar can produce `s` (accents and trailing digits ignored) as a given name.
    pub(crate) fn is_given(s: &str) -> bool {
        let s = strip_accents(s.trim_end_matches(|c: char| c.is_ascii_digit()));
        parse(&s, &[F_START, F_MID, F_END_FEMALE]) || parse(&s, &[F_START, F_MID, F_END_MALE])
    }

    /// True when the grammar can produce `s` (accents and trailing digits ignored) as a family name.
    pub(crate) fn is_family(s: &str) -> bool {
        let s = strip_accents(s.trim_end_matches(|c: char| c.is_ascii_digit()));
        parse(&s, &[L_START, L_MID, L_END])
    }
}

#[cfg(test)]
mod tests {
    use super::grammar::*;
    use super::*;

    #[test]
    fn generated_names_parse() {
        let mut r = Rng::new(5);
        for i in 0..2000 {
            let mut s = String::new();
            given(&mut r, i % 2 == 0, &mut s);
            if i % 3 == 0 {
                accent(&mut r, &mut s, 0);
            }
            digits(&mut r, &mut s);
            assert!(is_given(&s), "{s}");
            let mut f = String::new();
            family(&mut r, &mut f);
            assert!(is_family(&f), "{f}");
        }
    }

    #[test]
    fn accents_make_valid_utf8_names() {
        let mut r = Rng::new(11);
        let mut seen_non_ascii = false;
        for _ in 0..200 {
            let mut s = String::new();
            full_with_digits(&mut r, true, true, &mut s);
            seen_non_ascii |= !s.is_ascii();
            assert!(s.contains(' '));
        }
        assert!(seen_non_ascii);
    }

    #[test]
    fn real_sample_names_cannot_be_generated() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../../shared/data/synthea-27/patients.csv"
        );
        let text = std::fs::read_to_string(path).unwrap_or_else(|e| {
            panic!("the real Synthea sample is required at {path} (../shared/data/synthea-27): {e}")
        });
        let mut lines = text.lines();
        let header: Vec<&str> = lines
            .next()
            .map(|h| h.split(',').collect())
            .unwrap_or_default();
        let col = |name: &str| header.iter().position(|h| *h == name).expect("column");
        let (first, last, maiden) = (col("FIRST"), col("LAST"), col("MAIDEN"));
        let mut checked = 0;
        for line in lines {
            let f: Vec<&str> = line.split(',').collect();
            assert!(
                !is_given(f[first]),
                "grammar can produce real given name {}",
                f[first]
            );
            assert!(
                !is_family(f[last]),
                "grammar can produce real family name {}",
                f[last]
            );
            if !f[maiden].is_empty() {
                assert!(
                    !is_family(f[maiden]),
                    "grammar can produce real name {}",
                    f[maiden]
                );
            }
            checked += 1;
        }
        assert!(checked > 0);
    }
}
