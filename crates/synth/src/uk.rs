//! The UK shared-care-record format: people identified by NHS number, their
//! GP events, hospital episodes, prescriptions, social care contacts and the
//! national data opt-out list. Columns are documented in the crate docs.

use dhub_deid::nhs;

use crate::names;
use crate::rng::{Rng, domain};
use crate::table::{Col, Output, Table, TableSpec};
use crate::time::{DAY, END_TS, YEAR, age_years, day_of};
use crate::ukcodes::*;
use crate::{FileReport, SynthConfig, SynthError};

use Col::{Code as Cd, Date, DateTime as Ts, Nhs, Num, Text};

pub(crate) const PERSON: usize = 0;
pub(crate) const GP_EVENT: usize = 1;
pub(crate) const HOSPITAL_EPISODE: usize = 2;
pub(crate) const PRESCRIPTION: usize = 3;
pub(crate) const SOCIAL_CARE_CONTACT: usize = 4;
pub(crate) const OPT_OUT: usize = 5;

pub(crate) const SPECS: &[TableSpec] = &[
    TableSpec {
        name: "person",
        cols: &[
            ("nhs_number", Nhs),
            ("given_name", Text),
            ("family_name", Text),
            ("date_of_birth", Date),
            ("sex", Text),
            ("ethnic_category", Text),
            ("postcode", Cd),
            ("gp_practice_code", Cd),
            ("date_of_death", Date),
        ],
    },
    TableSpec {
        name: "gp_event",
        cols: &[
            ("event_id", Num),
            ("nhs_number", Nhs),
            ("gp_practice_code", Cd),
            ("event_date", Date),
            ("recorded_at", Ts),
            ("snomed_code", Cd),
            ("description", Text),
            ("value", Num),
            ("unit", Text),
        ],
    },
    TableSpec {
        name: "hospital_episode",
        cols: &[
            ("episode_id", Num),
            ("nhs_number", Nhs),
            ("provider_code", Cd),
            ("admission_date", Date),
            ("discharge_date", Date),
            ("admission_method", Cd),
            ("treatment_function_code", Cd),
            ("primary_diagnosis", Cd),
            ("primary_diagnosis_description", Text),
            ("secondary_diagnosis", Cd),
            ("primary_procedure", Cd),
            ("primary_procedure_description", Text),
            ("procedure_date", Date),
        ],
    },
    TableSpec {
        name: "prescription",
        cols: &[
            ("prescription_id", Num),
            ("nhs_number", Nhs),
            ("gp_practice_code", Cd),
            ("issue_date", Date),
            ("dmd_code", Cd),
            ("medication_name", Text),
            ("quantity", Num),
            ("quantity_unit", Text),
        ],
    },
    TableSpec {
        name: "social_care_contact",
        cols: &[
            ("contact_id", Num),
            ("nhs_number", Nhs),
            ("local_authority_code", Cd),
            ("contact_date", Date),
            ("contact_type", Text),
            ("service_type", Text),
            ("primary_support_reason", Text),
        ],
    },
    TableSpec {
        name: "opt_out",
        cols: &[("nhs_number", Nhs)],
    },
];

/// Generates the UK shared-care-record data set.
pub(crate) fn run(
    cfg: &SynthConfig,
    progress: &dyn Fn(u64),
) -> Result<(Vec<FileReport>, u64), SynthError> {
    let out = Output::create(&cfg.out, SPECS, cfg.gzip, cfg.defects, cfg.seed)?;
    let mut g = Gen::new(cfg, out);
    for i in 0..cfg.patients {
        g.person(i)?;
        g.out.flush_defects()?;
        if (i + 1) % crate::PROGRESS_EVERY == 0 {
            progress(i + 1);
        }
    }
    progress(cfg.patients);
    g.out.finish()
}

struct Gen {
    seed: u64,
    out: Output,
    practices: Vec<Vec<[u8; 6]>>,
    trusts: Vec<Vec<[u8; 3]>>,
    region_weights: Vec<u32>,
    nhs_mul: u64,
    nhs_add: u64,
    next_event: u64,
    next_episode: u64,
    next_prescription: u64,
    next_contact: u64,
    conditions: Vec<(usize, i64)>,
    repeat: Vec<(Dmd, i64)>,
    dates: Vec<i64>,
}

/// One person's fixed attributes while their record is generated.
struct Person {
    nhs: [u8; 10],
    spaced: [u8; 12],
    female: bool,
    birth: i64,
    death: Option<i64>,
    end: i64,
    region: usize,
    practice: [u8; 6],
}

impl Gen {
    fn new(cfg: &SynthConfig, out: Output) -> Gen {
        let mut r = Rng::stream(cfg.seed, domain::REFERENCE, 1);
        let total: u64 = REGIONS.iter().map(|g| u64::from(g.weight)).sum();
        let mut practices = Vec::with_capacity(REGIONS.len());
        let mut trusts: Vec<Vec<[u8; 3]>> = Vec::with_capacity(REGIONS.len());
        let mut used: Vec<[u8; 3]> = Vec::new();
        const ALNUM: &[u8] = b"ABCDEFGHJKLMNPQRTVWXY0123456789";
        for (k, region) in REGIONS.iter().enumerate() {
            let n = (cfg.patients * u64::from(region.weight) / total / 1500).clamp(2, 999);
            let step = loop {
                let s = 1 + r.below(998);
                if gcd(s, 999) == 1 {
                    break s;
                }
            };
            let start = r.below(999);
            let prefix = region.practice_prefix.as_bytes();
            let list = (0..n)
                .map(|j| {
                    let seq = (start + j * step) % 999 + 1;
                    let mut code = [b'0'; 6];
                    code[..3].copy_from_slice(prefix);
                    code[3] = b'0' + (seq / 100) as u8;
                    code[4] = b'0' + (seq / 10 % 10) as u8;
                    code[5] = b'0' + (seq % 10) as u8;
                    code
                })
                .collect();
            practices.push(list);
            let mut mine = Vec::new();
            let count = 2 + r.below(2);
            while (mine.len() as u64) < count {
                let code = if prefix[0] == b'W' {
                    [b'7', b'A', b'1' + (r.below(7) as u8)]
                } else {
                    [b'R', *r.pick(ALNUM), *r.pick(ALNUM)]
                };
                if !used.contains(&code) {
                    used.push(code);
                    mine.push(code);
                }
            }
            trusts.push(mine);
            debug_assert!(k < REGIONS.len());
        }
        let (nhs_mul, nhs_add) = nhs_params(cfg.seed);
        Gen {
            seed: cfg.seed,
            out,
            practices,
            trusts,
            region_weights: REGIONS.iter().map(|g| g.weight).collect(),
            nhs_mul,
            nhs_add,
            next_event: 1,
            next_episode: 1,
            next_prescription: 1,
            next_contact: 1,
            conditions: Vec::new(),
            repeat: Vec::new(),
            dates: Vec::new(),
        }
    }

    /// The NHS number of person `idx`.
    fn nhs_number(&self, idx: u64) -> [u8; 10] {
        nhs_number_with(self.nhs_mul, self.nhs_add, idx)
    }

    fn person(&mut self, idx: u64) -> Result<(), SynthError> {
        let mut r = Rng::stream(self.seed, domain::PATIENT, idx);
        let nhs = self.nhs_number(idx);
        let mut spaced = [b' '; 12];
        spaced[..3].copy_from_slice(&nhs[..3]);
        spaced[4..7].copy_from_slice(&nhs[3..6]);
        spaced[8..].copy_from_slice(&nhs[6..]);
        let female = r.chance(0.505);
        let age_days = match r.below(10) {
            0..=1 => r.below(18 * 365),
            2..=7 => 18 * 365 + r.below(47 * 365),
            _ => 65 * 365 + r.below(38 * 365),
        } as i64;
        let birth = day_of(END_TS - age_days * DAY - DAY) * DAY;
        let old = age_days / 365;
        let p_dead = 0.01
            + if old > 60 {
                (old - 60) as f64 * 0.008
            } else {
                0.0
            };
        let death = if r.chance(p_dead) {
            let lo = (birth + 30 * DAY).max(END_TS - 8 * YEAR);
            Some(day_of(r.range(lo.min(END_TS - 2 * DAY), END_TS - 2 * DAY)) * DAY)
        } else {
            None
        };
        let end = death.map_or(END_TS - DAY, |d| d);
        let region = r.weighted(&self.region_weights);
        let practice = *r.pick(&self.practices[region]);
        let p = Person {
            nhs,
            spaced,
            female,
            birth,
            death,
            end,
            region,
            practice,
        };

        // person row
        let mut given = String::new();
        names::given(&mut r, female, &mut given);
        if r.chance(0.03) {
            names::accent(&mut r, &mut given, 0);
        }
        let mut family = String::new();
        names::family(&mut r, &mut family);
        if r.chance(0.04) {
            // a double-barrelled or apostrophe family name
            let base = family.clone();
            family.clear();
            if r.chance(0.5) {
                names::family(&mut r, &mut family);
                family.push('-');
                family.push_str(&base);
            } else {
                family.push_str("O'");
                family.push_str(&base);
            }
        }
        let ethnic_weights: Vec<u32> = ETHNIC_CATEGORIES.iter().map(|e| e.1).collect();
        let ethnic = ETHNIC_CATEGORIES[r.weighted(&ethnic_weights)].0;
        let reg = &REGIONS[region];
        let mut postcode = [0u8; 8];
        let outward = r.pick(reg.outward).as_bytes();
        postcode[..outward.len()].copy_from_slice(outward);
        let mut n = outward.len();
        postcode[n] = b' ';
        postcode[n + 1] = b'0' + r.below(10) as u8;
        postcode[n + 2] = *r.pick(INWARD_LETTERS);
        postcode[n + 3] = *r.pick(INWARD_LETTERS);
        n += 4;
        {
            let t = &mut self.out.tables[PERSON];
            t.raw(&nhs);
            t.str(&given);
            t.str(&family);
            t.date(day_of(birth));
            t.raw(if female { b"F" } else { b"M" });
            t.raw(ethnic.as_bytes());
            t.raw(&postcode[..n]);
            t.raw(&practice);
            match death {
                Some(d) => t.date(day_of(d)),
                None => t.empty(),
            }
            t.end()?;
        }
        if r.chance(0.035) {
            let t = &mut self.out.tables[OPT_OUT];
            t.raw(&nhs);
            t.end()?;
        }

        self.gp_record(&mut r, &p)?;
        self.hospital(&mut r, &p)?;
        self.social_care(&mut r, &p)?;
        Ok(())
    }

    fn nhs_field(r: &mut Rng, t: &mut Table, p: &Person) {
        if r.chance(0.1) {
            t.raw(&p.spaced);
        } else {
            t.raw(&p.nhs);
        }
    }

    fn event(
        &mut self,
        r: &mut Rng,
        p: &Person,
        day: i64,
        concept: Snomed,
        value: Option<(f64, u8)>,
        unit: &str,
    ) -> Result<(), SynthError> {
        let id = self.next_event;
        self.next_event += 1;
        let day = day.clamp(day_of(p.birth), day_of(p.end));
        let t = &mut self.out.tables[GP_EVENT];
        t.u64(id);
        Self::nhs_field(r, t, p);
        t.raw(&p.practice);
        t.date(day);
        t.datetime(day * DAY + r.range(8 * 3600, 18 * 3600));
        t.raw(concept.code.as_bytes());
        t.str(concept.term);
        match value {
            Some((v, 0)) => {
                t.u64(v.round().max(0.0) as u64);
                t.str(unit);
            }
            Some((v, _)) => {
                t.tenths((v * 10.0).round() as i64);
                t.str(unit);
            }
            None => {
                t.empty();
                t.empty();
            }
        }
        t.end()
    }

    fn measure(&mut self, r: &mut Rng, p: &Person, day: i64, m: Measure) -> Result<(), SynthError> {
        let v = r.normal(m.mean, m.sd).clamp(m.min, m.max);
        self.event(r, p, day, m.concept, Some((v, m.decimals)), m.unit)
    }

    fn prescribe(&mut self, r: &mut Rng, p: &Person, day: i64, med: Dmd) -> Result<(), SynthError> {
        let id = self.next_prescription;
        self.next_prescription += 1;
        let t = &mut self.out.tables[PRESCRIPTION];
        t.u64(id);
        Self::nhs_field(r, t, p);
        t.raw(&p.practice);
        t.date(day.clamp(day_of(p.birth), day_of(p.end)));
        t.raw(med.code.as_bytes());
        t.str(med.name);
        t.u64(u64::from(med.quantity));
        t.raw(med.unit.as_bytes());
        t.end()
    }

    fn gp_record(&mut self, r: &mut Rng, p: &Person) -> Result<(), SynthError> {
        let end_day = day_of(p.end);
        let birth_day = day_of(p.birth);
        let window = (p.end - 10 * YEAR).max(p.birth);
        let age_end = age_years(p.birth, p.end);
        // long-term conditions: diagnosis, annual reviews, repeat medicines
        self.conditions.clear();
        self.repeat.clear();
        for (k, lt) in LONG_TERM.iter().enumerate() {
            if age_end < lt.onset.0 {
                continue;
            }
            let reach =
                ((age_end - lt.onset.0 + 1) as f64 / (lt.onset.1 - lt.onset.0 + 1) as f64).min(1.0);
            if !r.chance(lt.prevalence * reach) {
                continue;
            }
            let onset_age = r.range(lt.onset.0, lt.onset.1.min(age_end));
            let onset = (p.birth + onset_age * YEAR + r.range(0, 364) * DAY).min(p.end);
            self.conditions.push((k, onset));
            self.event(r, p, day_of(onset), lt.concept, None, "")?;
            if !lt.meds.is_empty() && r.chance(0.85) {
                self.repeat.push((*r.pick(lt.meds), onset));
                if lt.meds.len() > 1 && r.chance(0.2) {
                    self.repeat.push((*r.pick(lt.meds), onset));
                }
            }
            let mut ts = onset.max(p.end - 5 * YEAR) + r.range(30, 200) * DAY;
            while ts < p.end {
                for &m in lt.review {
                    self.measure(r, p, day_of(ts), m)?;
                }
                ts += r.range(330, 420) * DAY;
            }
        }
        let n_conditions = self.conditions.len();
        // gastro-protection alongside anti-inflammatories and antiplatelets
        if self
            .repeat
            .iter()
            .any(|(m, _)| m.code == NAPROXEN.code || m.code == ASPIRIN.code)
            && r.chance(0.5)
        {
            let ppi = if r.chance(0.6) {
                OMEPRAZOLE
            } else {
                LANSOPRAZOLE
            };
            let since = self.repeat[0].1;
            self.repeat.push((ppi, since));
        }
        let mut k = 0;
        while k < self.repeat.len() {
            let (med, since) = self.repeat[k];
            let gap = if med.quantity >= 56 { 56 } else { 28 };
            let mut day = day_of(since.max(p.end - YEAR)) + r.range(0, gap - 1);
            while day <= end_day {
                self.prescribe(r, p, day, med)?;
                day += gap + r.range(-2, 4);
            }
            k += 1;
        }
        if !self.repeat.is_empty() {
            let mut ts = (p.end - 3 * YEAR).max(p.birth) + r.range(0, 364) * DAY;
            while ts < p.end {
                self.event(r, p, day_of(ts), MEDICATION_REVIEW, None, "")?;
                ts += YEAR;
            }
        }
        // smoking status, alcohol and vital signs of adults
        if age_end >= 16 {
            let status = match r.below(10) {
                0..=1 => SMOKER,
                2..=4 => EX_SMOKER,
                _ => NEVER_SMOKED,
            };
            let from = window.max(p.birth + 16 * YEAR);
            let mut ts = from + r.range(0, 3 * 365) * DAY;
            let mut first = true;
            while ts < p.end {
                self.event(r, p, day_of(ts), status, None, "")?;
                if first {
                    self.measure(r, p, day_of(ts), HEIGHT)?;
                    if r.chance(0.5) {
                        self.measure(r, p, day_of(ts), ALCOHOL)?;
                    }
                    first = false;
                }
                for m in [SYSTOLIC, DIASTOLIC, WEIGHT, BMI] {
                    self.measure(r, p, day_of(ts), m)?;
                }
                ts += r.range(2 * 365, 4 * 365) * DAY;
            }
        }
        // minor illnesses
        let years = (p.end - window) as f64 / YEAR as f64;
        let n = r.poisson(0.7 * years);
        for _ in 0..n {
            let day = r.range(day_of(window), end_day).max(birth_day);
            let m = r.pick(MINOR);
            self.event(r, p, day, m.concept, None, "")?;
            if let Some(med) = m.med
                && r.chance(0.6)
            {
                self.prescribe(r, p, day, med)?;
            }
        }
        debug_assert!(n_conditions <= LONG_TERM.len());
        Ok(())
    }

    fn hospital(&mut self, r: &mut Rng, p: &Person) -> Result<(), SynthError> {
        let window = (p.end - 10 * YEAR).max(p.birth);
        let age = age_years(p.birth, p.end);
        let rate = match age {
            0..=17 => 0.03,
            18..=59 => 0.05,
            60..=74 => 0.12,
            _ => 0.25,
        };
        let years = (p.end - window) as f64 / YEAR as f64;
        let n = r.poisson(rate * years)
            + u32::from(p.female && (20..=50).contains(&age) && r.chance(0.3));
        let weights: Vec<u32> = EPISODES.iter().map(|e| e.weight).collect();
        for _ in 0..n {
            let day = r.range(day_of(window), day_of(p.end));
            let age_then = age_years(p.birth, day * DAY);
            let mut chosen = None;
            for _ in 0..12 {
                let e = &EPISODES[r.weighted(&weights)];
                let sex_ok = match e.sex {
                    1 => !p.female,
                    2 => p.female,
                    _ => true,
                };
                if sex_ok
                    && (e.ages.0..=e.ages.1).contains(&age_then)
                    && (e.diagnosis.code != "U07.1"
                        || day >= crate::time::days_from_civil(2020, 3, 1))
                {
                    chosen = Some(*e);
                    break;
                }
            }
            let Some(e) = chosen else { continue };
            let stay = r.range(e.stay.0, e.stay.1);
            let discharge = (day + stay).min(day_of(p.end));
            let id = self.next_episode;
            self.next_episode += 1;
            let trust = *r.pick(&self.trusts[p.region]);
            let secondary = self
                .conditions
                .iter()
                .filter(|(_, onset)| day_of(*onset) <= day)
                .find_map(|(k, _)| {
                    SECONDARY
                        .iter()
                        .find(|(c, _)| *c == LONG_TERM[*k].concept.code)
                })
                .map(|(_, icd)| *icd);
            let t = &mut self.out.tables[HOSPITAL_EPISODE];
            t.u64(id);
            Self::nhs_field(r, t, p);
            t.raw(&trust);
            t.date(day);
            t.date(discharge);
            t.raw(e.method.as_bytes());
            t.raw(e.specialty.as_bytes());
            t.raw(e.diagnosis.code.as_bytes());
            t.str(e.diagnosis.desc);
            match secondary {
                Some(icd) if r.chance(0.7) => t.raw(icd.code.as_bytes()),
                _ => t.empty(),
            }
            match e.procedure {
                Some((code, desc)) if r.chance(0.9) => {
                    t.raw(code.as_bytes());
                    t.str(desc);
                    t.date(r.range(day, discharge));
                }
                _ => {
                    t.empty();
                    t.empty();
                    t.empty();
                }
            }
            t.end()?;
        }
        Ok(())
    }

    fn social_care(&mut self, r: &mut Rng, p: &Person) -> Result<(), SynthError> {
        let age = age_years(p.birth, p.end);
        let prob = if age >= 65 {
            0.15
        } else if age >= 18 {
            0.03
        } else {
            0.0
        };
        if !r.chance(prob) {
            return Ok(());
        }
        let n = 1 + r.below(6) as usize;
        let from = day_of((p.end - 5 * YEAR).max(p.birth + 18 * YEAR));
        let to = day_of(p.end);
        if from > to {
            return Ok(());
        }
        self.dates.clear();
        for _ in 0..n {
            self.dates.push(r.range(from, to));
        }
        self.dates.sort_unstable();
        let service = *r.pick(SERVICES);
        let reason = *r.pick(SUPPORT_REASONS);
        let la = REGIONS[p.region].local_authority;
        for k in 0..n {
            let contact_type = match k {
                0 => CONTACT_TYPES[0],
                1 => CONTACT_TYPES[1],
                2 => CONTACT_TYPES[3],
                _ if k == n - 1 && p.death.is_some() => CONTACT_TYPES[4],
                _ => CONTACT_TYPES[2],
            };
            let id = self.next_contact;
            self.next_contact += 1;
            let day = self.dates[k];
            let t = &mut self.out.tables[SOCIAL_CARE_CONTACT];
            t.u64(id);
            Self::nhs_field(r, t, p);
            t.raw(la.as_bytes());
            t.date(day);
            t.str(contact_type);
            t.str(service);
            t.str(reason);
            t.end()?;
        }
        Ok(())
    }
}

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 { a } else { gcd(b, a % b) }
}

/// People per block of NHS-number stems (100,000 stems, nine numbers each).
const BLOCK: u64 = 900_000;

/// The seed-dependent parameters of the NHS-number permutation.
fn nhs_params(seed: u64) -> (u64, u64) {
    let mut s = Rng::stream(seed, domain::SSN, 1);
    let mul = loop {
        let m = 1 + s.below(BLOCK - 1);
        if !m.is_multiple_of(2) && !m.is_multiple_of(3) && !m.is_multiple_of(5) {
            break m;
        }
    };
    (mul, s.below(BLOCK))
}

/// The NHS number of person `idx`: unique for the first 810 million people,
/// valid under modulus 11, and in the unissued `99` range (the first 900,000
/// people get numbers in the `999` range reserved for testing).
///
/// The index is first permuted within blocks of 900,000 people; position `k`
/// of block `b` then takes the `k % 9`-th valid final digit of the 8-digit
/// stem `(999 - b) * 100_000 + k / 9`: of the ten possible final digits at
/// most one has no check digit, so nine always exist.
fn nhs_number_with(mul: u64, add: u64, idx: u64) -> [u8; 10] {
    let block = (idx / BLOCK) % 900;
    let k = (idx % BLOCK * mul + add) % BLOCK;
    let j = k % 9;
    let stem = (999 - block) * 100_000 + k / 9;
    let mut nine = [0u8; 9];
    for (k, d) in nine[..8].iter_mut().enumerate() {
        *d = (stem / 10u64.pow(7 - k as u32) % 10) as u8;
    }
    let mut found = 0;
    for last in 0..10u8 {
        nine[8] = last;
        if let Some(check) = nhs::check_digit(&nine) {
            if found == j {
                let mut out = [0u8; 10];
                for (o, d) in out
                    .iter_mut()
                    .zip(nine.iter().chain(std::iter::once(&check)))
                {
                    *o = b'0' + d;
                }
                return out;
            }
            found += 1;
        }
    }
    // unreachable: at most one final digit of ten lacks a check digit
    [b'9'; 10]
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn nhs_numbers_are_unique_and_valid() {
        for seed in [0, 3, u64::MAX] {
            let (mul, add) = nhs_params(seed);
            let mut seen = HashSet::new();
            for idx in (0..2_000_000u64).step_by(7).chain(1_000_000..1_010_000) {
                let n = nhs_number_with(mul, add, idx);
                let s = String::from_utf8(n.to_vec()).unwrap_or_default();
                assert!(nhs::is_valid(&s), "{s}");
                assert!(s.starts_with("99"), "{s}");
                if idx < 900_000 {
                    assert!(s.starts_with("999"), "{s}");
                }
                seen.insert((idx, s));
            }
            let numbers: HashSet<&String> = seen.iter().map(|(_, s)| s).collect();
            let indices: HashSet<u64> = seen.iter().map(|(i, _)| *i).collect();
            assert_eq!(numbers.len(), indices.len());
        }
    }
}
