//! Integration tests of dhub-synth: file names and headers against the real
//! Synthea sample, referential integrity of both formats, determinism, NHS
//! numbers, the defects ground truth, no collision with the real sample's
//! names and SSNs, and gzip output.

// Test code: a failed unwrap is a failed test, with its location.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::path::{Path, PathBuf};

use dhub_synth::{Format, SynthConfig, SynthReport, generate};

/// The real Synthea export: `../shared/data/synthea-27` next to the repository.
fn real_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/synthea-27");
    assert!(
        dir.join("patients.csv").is_file(),
        "the real Synthea sample is missing: expected {} (the repository's ../shared/data/synthea-27); \
         these tests compare against it and cannot run without it",
        dir.display()
    );
    dir
}

fn run(
    format: Format,
    patients: u64,
    seed: u64,
    defects: f64,
    gzip: bool,
) -> (tempfile::TempDir, PathBuf, SynthReport) {
    let tmp = tempfile::tempdir().expect("temporary directory");
    let out = tmp.path().join("out");
    let cfg = SynthConfig {
        format,
        patients,
        seed,
        out: out.clone(),
        defects,
        gzip,
    };
    let calls = std::cell::Cell::new(0u64);
    let report = generate(&cfg, &|n| {
        assert!(n <= patients);
        calls.set(calls.get() + 1);
    })
    .expect("generate");
    assert!(calls.get() >= 1, "progress is reported at least once");
    (tmp, out, report)
}

fn read_bytes(path: &Path) -> Vec<u8> {
    let raw = std::fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    if path.extension().is_some_and(|e| e == "gz") {
        let mut out = Vec::new();
        flate2::read::MultiGzDecoder::new(&raw[..])
            .read_to_end(&mut out)
            .expect("gunzip");
        out
    } else {
        raw
    }
}

/// The physical lines of a file (each must end with `\n`), without their `\n`.
fn lines(bytes: &[u8]) -> Vec<&[u8]> {
    assert_eq!(bytes.last(), Some(&b'\n'), "file must end with a newline");
    bytes[..bytes.len() - 1].split(|&b| b == b'\n').collect()
}

#[derive(Debug, PartialEq)]
enum LineError {
    Utf8,
    Unterminated,
    StrayQuote,
}

/// A strict parser for one CSV line (no record spans lines).
fn parse_line(line: &[u8]) -> Result<Vec<String>, LineError> {
    let s = std::str::from_utf8(line).map_err(|_| LineError::Utf8)?;
    let mut fields = Vec::new();
    let mut cur = String::new();
    let mut chars = s.chars().peekable();
    loop {
        if chars.peek() == Some(&'"') {
            chars.next();
            loop {
                match chars.next() {
                    None => return Err(LineError::Unterminated),
                    Some('"') if chars.peek() == Some(&'"') => {
                        chars.next();
                        cur.push('"');
                    }
                    Some('"') => break,
                    Some(c) => cur.push(c),
                }
            }
            match chars.next() {
                None => {
                    fields.push(cur);
                    return Ok(fields);
                }
                Some(',') => fields.push(std::mem::take(&mut cur)),
                Some(_) => return Err(LineError::StrayQuote),
            }
        } else {
            loop {
                match chars.next() {
                    None => {
                        fields.push(cur);
                        return Ok(fields);
                    }
                    Some(',') => {
                        fields.push(std::mem::take(&mut cur));
                        break;
                    }
                    Some('"') => return Err(LineError::StrayQuote),
                    Some(c) => cur.push(c),
                }
            }
        }
    }
}

/// A parsed table.
struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    fn load(path: &Path) -> Table {
        let bytes = read_bytes(path);
        let mut ls = lines(&bytes).into_iter();
        let header = parse_line(ls.next().expect("header")).expect("header parses");
        let rows = ls
            .enumerate()
            .map(|(i, l)| {
                let f = parse_line(l)
                    .unwrap_or_else(|e| panic!("{} line {}: {e:?}", path.display(), i + 2));
                assert_eq!(f.len(), header.len(), "{} line {}", path.display(), i + 2);
                f
            })
            .collect();
        Table { header, rows }
    }

    fn col(&self, name: &str) -> usize {
        self.header
            .iter()
            .position(|h| h == name)
            .unwrap_or_else(|| panic!("no column {name} in {:?}", self.header))
    }

    fn values(&self, name: &str) -> impl Iterator<Item = &str> {
        let c = self.col(name);
        self.rows.iter().map(move |r| r[c].as_str())
    }
}

fn valid_ymd(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return false;
    }
    let num = |r: std::ops::Range<usize>| -> Option<u32> {
        let t = &s[r];
        t.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| t.parse().ok())
            .flatten()
    };
    let (Some(y), Some(m), Some(d)) = (num(0..4), num(5..7), num(8..10)) else {
        return false;
    };
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
    (1..=12).contains(&m) && d >= 1 && d <= days[(m - 1) as usize]
}

/// `YYYY-MM-DD` or `YYYY-MM-DDTHH:MM:SSZ` with a real date and time.
fn valid_date(s: &str) -> bool {
    match s.len() {
        10 => valid_ymd(s),
        20 => {
            let b = s.as_bytes();
            let two = |i: usize| -> Option<u32> {
                (b[i].is_ascii_digit() && b[i + 1].is_ascii_digit())
                    .then(|| u32::from(b[i] - b'0') * 10 + u32::from(b[i + 1] - b'0'))
            };
            valid_ymd(&s[..10])
                && b[10] == b'T'
                && b[13] == b':'
                && b[16] == b':'
                && b[19] == b'Z'
                && two(11).is_some_and(|h| h < 24)
                && two(14).is_some_and(|m| m < 60)
                && two(17).is_some_and(|x| x < 60)
        }
        _ => false,
    }
}

fn is_date_column(format: Format, name: &str) -> bool {
    match format {
        Format::Synthea => matches!(
            name,
            "START"
                | "STOP"
                | "DATE"
                | "BIRTHDATE"
                | "DEATHDATE"
                | "START_YEAR"
                | "END_YEAR"
                | "CURRENTILLNESSDATE"
                | "SERVICEDATE"
                | "LASTBILLEDDATE1"
                | "LASTBILLEDDATE2"
                | "LASTBILLEDDATEP"
                | "FROMDATE"
                | "TODATE"
        ),
        Format::Uk => name.ends_with("_date") || name.starts_with("date_") || name.ends_with("_at"),
    }
}

/// The defect a line shows, or `None` for a good line.
fn classify(format: Format, header: &[String], line: &[u8]) -> Option<&'static str> {
    match parse_line(line) {
        Err(LineError::Utf8) => Some("invalid_utf8"),
        Err(LineError::Unterminated) => Some("unterminated_quote"),
        Err(LineError::StrayQuote) => Some("stray_quote"),
        Ok(f) if f.len() != header.len() => Some("wrong_column_count"),
        Ok(f) => {
            let bad_date = header
                .iter()
                .zip(&f)
                .any(|(h, v)| is_date_column(format, h) && !v.is_empty() && !valid_date(v));
            let bad_nhs = header
                .iter()
                .zip(&f)
                .any(|(h, v)| h == "nhs_number" && !dhub_deid::nhs::is_valid(v));
            if bad_date {
                Some("unparseable_date")
            } else if bad_nhs {
                Some("invalid_nhs_number")
            } else {
                None
            }
        }
    }
}

fn data_files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("read dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n != "_defects.csv")
        .collect();
    names.sort();
    names
}

#[test]
fn synthea_file_names_and_headers_equal_the_real_export() {
    let real = real_dir();
    let (_tmp, out, report) = run(Format::Synthea, 20, 1, 0.0, false);
    let real_names: Vec<String> = data_files(&real)
        .into_iter()
        .filter(|n| n.ends_with(".csv"))
        .collect();
    assert_eq!(real_names.len(), 18, "the real sample has 18 tables");
    assert_eq!(data_files(&out), real_names);
    for name in &real_names {
        let want = read_bytes(&real.join(name));
        let got = read_bytes(&out.join(name));
        let want_header = lines(&want)[0];
        let got_header = lines(&got)[0];
        assert_eq!(
            String::from_utf8_lossy(got_header),
            String::from_utf8_lossy(want_header),
            "header of {name}"
        );
    }
    let names: Vec<&str> = report.files.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(
        names,
        real_names.iter().map(String::as_str).collect::<Vec<_>>()
    );
    for f in &report.files {
        let bytes = read_bytes(&out.join(&f.name));
        assert_eq!(f.bytes, bytes.len() as u64, "{}", f.name);
        assert_eq!(f.rows, lines(&bytes).len() as u64 - 1, "{}", f.name);
    }
    assert_eq!(
        std::fs::read(out.join("_defects.csv")).expect("defects file"),
        b"file,line,kind\n"
    );
}

#[test]
fn synthea_referential_integrity_dates_and_volumes() {
    let n = 300;
    let (_tmp, out, report) = run(Format::Synthea, n, 11, 0.0, false);
    assert_eq!(report.defects, 0);
    let t = |name: &str| Table::load(&out.join(format!("{name}.csv")));
    let patients = t("patients");
    let organizations = t("organizations");
    let providers = t("providers");
    let payers = t("payers");
    let encounters = t("encounters");
    let claims = t("claims");
    let transactions = t("claims_transactions");

    let ids = |table: &Table, col: &str| -> HashSet<String> {
        let v: Vec<String> = table.values(col).map(str::to_string).collect();
        let set: HashSet<String> = v.iter().cloned().collect();
        assert_eq!(set.len(), v.len(), "{col} must be unique");
        set
    };
    let patient_ids = ids(&patients, "Id");
    let org_ids = ids(&organizations, "Id");
    let provider_ids = ids(&providers, "Id");
    let payer_ids = ids(&payers, "Id");
    let encounter_ids = ids(&encounters, "Id");
    let claim_ids = ids(&claims, "Id");
    assert_eq!(patient_ids.len() as u64, n);

    // life spans, as dates
    let mut life: HashMap<String, (String, String)> = HashMap::new();
    let (pi, bi, di) = (
        patients.col("Id"),
        patients.col("BIRTHDATE"),
        patients.col("DEATHDATE"),
    );
    for r in &patients.rows {
        assert!(valid_date(&r[bi]));
        let end = if r[di].is_empty() {
            "2025-01-01".to_string()
        } else {
            r[di].clone()
        };
        assert!(r[bi] <= end);
        life.insert(r[pi].clone(), (r[bi].clone(), end));
    }
    let ssn = patients.col("SSN");
    for r in &patients.rows {
        let s = r[ssn].as_bytes();
        assert!(
            s.len() == 11 && s.starts_with(b"999-0") && s[6] == b'-',
            "{}",
            r[ssn]
        );
    }
    for org in providers.values("ORGANIZATION") {
        assert!(org_ids.contains(org));
    }

    let mut enc_patient: HashMap<&str, &str> = HashMap::new();
    let c = |name: &str| encounters.col(name);
    for r in &encounters.rows {
        assert!(patient_ids.contains(&r[c("PATIENT")]));
        assert!(org_ids.contains(&r[c("ORGANIZATION")]));
        assert!(provider_ids.contains(&r[c("PROVIDER")]));
        assert!(payer_ids.contains(&r[c("PAYER")]));
        assert!(r[c("START")] <= r[c("STOP")]);
        enc_patient.insert(&r[c("Id")], &r[c("PATIENT")]);
    }

    // every dated row lies within its patient's life
    let within = |table: &str, patient: &str, date: &str| {
        if date.is_empty() {
            return;
        }
        assert!(valid_date(date), "{table}: {date}");
        let (birth, end) = &life[patient];
        assert!(
            &date[..10] >= birth.as_str() && &date[..10] <= end.as_str(),
            "{table}: {date} outside {birth}..{end}"
        );
    };
    for name in [
        "allergies",
        "careplans",
        "conditions",
        "devices",
        "encounters",
        "imaging_studies",
        "immunizations",
        "medications",
        "observations",
        "procedures",
        "supplies",
    ] {
        let table = t(name);
        let pc = table.col("PATIENT");
        let ec = if name == "encounters" {
            table.col("Id")
        } else {
            table.col("ENCOUNTER")
        };
        let dates: Vec<usize> = (0..table.header.len())
            .filter(|&i| is_date_column(Format::Synthea, &table.header[i]))
            .collect();
        assert!(!dates.is_empty());
        for r in &table.rows {
            assert!(patient_ids.contains(&r[pc]), "{name}: patient");
            assert!(
                encounter_ids.contains(&r[ec]),
                "{name}: encounter {}",
                r[ec]
            );
            assert_eq!(
                enc_patient[r[ec].as_str()],
                r[pc].as_str(),
                "{name}: encounter of another patient"
            );
            for &d in &dates {
                within(name, &r[pc], &r[d]);
            }
        }
        if name == "medications" {
            for p in table.values("PAYER") {
                assert!(payer_ids.contains(p));
            }
        }
    }
    let transitions = t("payer_transitions");
    for r in &transitions.rows {
        let p = &r[transitions.col("PATIENT")];
        assert!(patient_ids.contains(p));
        assert!(payer_ids.contains(&r[transitions.col("PAYER")]));
        let sec = &r[transitions.col("SECONDARY_PAYER")];
        assert!(sec.is_empty() || payer_ids.contains(sec));
        within("payer_transitions", p, &r[transitions.col("START_YEAR")]);
        within("payer_transitions", p, &r[transitions.col("END_YEAR")]);
    }
    let cc = |name: &str| claims.col(name);
    for r in &claims.rows {
        let p = &r[cc("PATIENTID")];
        assert!(patient_ids.contains(p));
        assert!(provider_ids.contains(&r[cc("PROVIDERID")]));
        assert!(provider_ids.contains(&r[cc("SUPERVISINGPROVIDERID")]));
        for col in ["PRIMARYPATIENTINSURANCEID", "SECONDARYPATIENTINSURANCEID"] {
            let v = &r[cc(col)];
            assert!(v == "0" || payer_ids.contains(v), "{col} {v}");
        }
        assert_eq!(enc_patient[r[cc("APPOINTMENTID")].as_str()], p.as_str());
        for col in [
            "CURRENTILLNESSDATE",
            "SERVICEDATE",
            "LASTBILLEDDATE1",
            "LASTBILLEDDATE2",
            "LASTBILLEDDATEP",
        ] {
            within("claims", p, &r[cc(col)]);
        }
    }
    let tc = |name: &str| transactions.col(name);
    let mut charge_ids = HashSet::new();
    for r in &transactions.rows {
        let p = &r[tc("PATIENTID")];
        assert!(claim_ids.contains(&r[tc("CLAIMID")]));
        assert!(patient_ids.contains(p));
        assert!(org_ids.contains(&r[tc("PLACEOFSERVICE")]));
        assert!(provider_ids.contains(&r[tc("PROVIDERID")]));
        assert_eq!(enc_patient[r[tc("APPOINTMENTID")].as_str()], p.as_str());
        let ins = &r[tc("PATIENTINSURANCEID")];
        assert!(ins.is_empty() || ins == p);
        assert!(
            charge_ids.insert(r[tc("CHARGEID")].clone()),
            "CHARGEID unique"
        );
        within("claims_transactions", p, &r[tc("FROMDATE")]);
        within("claims_transactions", p, &r[tc("TODATE")]);
    }

    // per-patient volumes in the range of the real sample (22 encounters, 37 observations)
    let per = |name: &str| t(name).rows.len() as f64 / n as f64;
    let (enc, obs) = (per("encounters"), per("observations"));
    assert!((15.0..=32.0).contains(&enc), "encounters per patient {enc}");
    assert!(
        (25.0..=55.0).contains(&obs),
        "observations per patient {obs}"
    );
}

#[test]
fn uk_referential_integrity_and_nhs_numbers() {
    let n = 3000;
    let (_tmp, out, report) = run(Format::Uk, n, 5, 0.0, false);
    assert_eq!(
        report
            .files
            .iter()
            .map(|f| f.name.as_str())
            .collect::<Vec<_>>(),
        [
            "person.csv",
            "gp_event.csv",
            "hospital_episode.csv",
            "prescription.csv",
            "social_care_contact.csv",
            "opt_out.csv"
        ]
    );
    let t = |name: &str| Table::load(&out.join(format!("{name}.csv")));
    let person = t("person");
    let mut people: HashMap<String, (String, String, String)> = HashMap::new();
    let pc = |name: &str| person.col(name);
    for r in &person.rows {
        let nhs = &r[pc("nhs_number")];
        assert!(
            nhs.len() == 10 && nhs.bytes().all(|b| b.is_ascii_digit()),
            "{nhs}"
        );
        assert!(dhub_deid::nhs::is_valid(nhs), "invalid NHS number {nhs}");
        let birth = &r[pc("date_of_birth")];
        let death = &r[pc("date_of_death")];
        assert!(valid_date(birth) && (death.is_empty() || (valid_date(death) && death >= birth)));
        assert!(matches!(r[pc("sex")].as_str(), "M" | "F"));
        let practice = r[pc("gp_practice_code")].as_bytes();
        assert!(
            practice.len() == 6
                && practice[0].is_ascii_uppercase()
                && practice[1..].iter().all(u8::is_ascii_digit)
        );
        let postcode = &r[pc("postcode")];
        let (outward, inward) = postcode.split_once(' ').expect("postcode has a space");
        let ob = outward.as_bytes();
        assert!(
            (2..=4).contains(&ob.len())
                && ob[0].is_ascii_uppercase()
                && ob.iter().any(u8::is_ascii_digit),
            "{postcode}"
        );
        let ib = inward.as_bytes();
        assert!(
            ib.len() == 3
                && ib[0].is_ascii_digit()
                && ib[1..].iter().all(|c| b"ABDEFGHJLNPQRSTUWXYZ".contains(c)),
            "{postcode}"
        );
        let end = if death.is_empty() {
            "2025-01-01".to_string()
        } else {
            death.clone()
        };
        let prev = people.insert(
            nhs.clone(),
            (birth.clone(), end, r[pc("gp_practice_code")].clone()),
        );
        assert!(prev.is_none(), "duplicate NHS number {nhs}");
    }
    assert_eq!(people.len() as u64, n);
    let owner = |raw: &str| -> &(String, String, String) {
        let norm =
            dhub_deid::nhs::normalise(raw).unwrap_or_else(|| panic!("invalid NHS number {raw}"));
        let key = String::from_utf8(norm.to_vec()).expect("digits");
        people
            .get(&key)
            .unwrap_or_else(|| panic!("unknown NHS number {raw}"))
    };
    let within = |p: &(String, String, String), d: &str| {
        assert!(valid_date(d), "{d}");
        assert!(
            &d[..10] >= p.0.as_str() && &d[..10] <= p.1.as_str(),
            "{d} outside {}..{}",
            p.0,
            p.1
        );
    };
    let unique = |table: &Table, col: &str| {
        let v: HashSet<&str> = table.values(col).collect();
        assert_eq!(v.len(), table.rows.len(), "{col} unique");
    };

    let gp = t("gp_event");
    unique(&gp, "event_id");
    let mut spaced = 0;
    for r in &gp.rows {
        let p = owner(&r[gp.col("nhs_number")]);
        spaced += usize::from(r[gp.col("nhs_number")].contains(' '));
        assert_eq!(r[gp.col("gp_practice_code")], p.2);
        within(p, &r[gp.col("event_date")]);
        assert!(valid_date(&r[gp.col("recorded_at")]));
        assert!(r[gp.col("snomed_code")].bytes().all(|b| b.is_ascii_digit()));
        let value = &r[gp.col("value")];
        assert_eq!(value.is_empty(), r[gp.col("unit")].is_empty());
        assert!(value.is_empty() || value.parse::<f64>().is_ok());
    }
    assert!(
        spaced > 0 && spaced < gp.rows.len() / 4,
        "a share of event rows writes spaced NHS numbers"
    );

    let hes = t("hospital_episode");
    unique(&hes, "episode_id");
    for r in &hes.rows {
        let p = owner(&r[hes.col("nhs_number")]);
        let (adm, dis) = (&r[hes.col("admission_date")], &r[hes.col("discharge_date")]);
        within(p, adm);
        within(p, dis);
        assert!(adm <= dis);
        let prov = r[hes.col("provider_code")].as_bytes();
        assert!(
            prov.len() == 3 && (prov[0] == b'R' || prov.starts_with(b"7A")),
            "{:?}",
            r[hes.col("provider_code")]
        );
        let icd = r[hes.col("primary_diagnosis")].as_bytes();
        assert!(icd.len() >= 3 && icd[0].is_ascii_uppercase() && icd[1].is_ascii_digit());
        let opcs = &r[hes.col("primary_procedure")];
        let pdate = &r[hes.col("procedure_date")];
        if opcs.is_empty() {
            assert!(pdate.is_empty());
        } else {
            let o = opcs.as_bytes();
            assert!(
                o.len() == 5 && o[0].is_ascii_uppercase() && o[3] == b'.',
                "{opcs}"
            );
            assert!(pdate >= adm && pdate <= dis);
        }
    }

    let rx = t("prescription");
    unique(&rx, "prescription_id");
    for r in &rx.rows {
        let p = owner(&r[rx.col("nhs_number")]);
        within(p, &r[rx.col("issue_date")]);
        assert!(r[rx.col("dmd_code")].bytes().all(|b| b.is_ascii_digit()));
        assert!(r[rx.col("quantity")].parse::<u32>().is_ok_and(|q| q > 0));
    }
    let sc = t("social_care_contact");
    unique(&sc, "contact_id");
    for r in &sc.rows {
        let p = owner(&r[sc.col("nhs_number")]);
        within(p, &r[sc.col("contact_date")]);
        let la = r[sc.col("local_authority_code")].as_bytes();
        assert!(la.len() == 9 && matches!(la[0], b'E' | b'W'));
    }
    let opt = t("opt_out");
    let opted: HashSet<&str> = opt.values("nhs_number").collect();
    assert_eq!(opted.len(), opt.rows.len());
    for nhs in &opted {
        assert!(people.contains_key(*nhs), "opted-out {nhs} is a person");
    }
    let share = opted.len() as f64 / n as f64;
    assert!((0.02..=0.05).contains(&share), "opt-out share {share}");
    assert!(
        gp.rows.len() as u64 > 10 * n
            && !hes.rows.is_empty()
            && !rx.rows.is_empty()
            && !sc.rows.is_empty()
    );
}

fn assert_same_dirs(a: &Path, b: &Path) {
    let names = data_files(a);
    assert_eq!(names, data_files(b));
    for name in names
        .iter()
        .chain(std::iter::once(&"_defects.csv".to_string()))
    {
        let (x, y) = (
            std::fs::read(a.join(name)).expect("a"),
            std::fs::read(b.join(name)).expect("b"),
        );
        assert!(x == y, "{name} differs between two runs with the same seed");
    }
}

#[test]
fn same_seed_same_bytes_other_seed_other_people() {
    for format in [Format::Synthea, Format::Uk] {
        let n = if format == Format::Synthea { 40 } else { 400 };
        let (_t1, a, _) = run(format, n, 42, 0.05, false);
        let (_t2, b, _) = run(format, n, 42, 0.05, false);
        assert_same_dirs(&a, &b);
        let (_t3, c, _) = run(format, n, 43, 0.05, false);
        let (file, key) = match format {
            Format::Synthea => ("patients.csv", "Id"),
            Format::Uk => ("person.csv", "nhs_number"),
        };
        let clean = |dir: &Path| -> HashSet<String> {
            // read without the defect layer: keep only the lines that parse
            let bytes = read_bytes(&dir.join(file));
            let ls = lines(&bytes);
            let header = parse_line(ls[0]).expect("header");
            let k = header.iter().position(|h| h == key).expect("key column");
            ls[1..]
                .iter()
                .filter_map(|l| parse_line(l).ok())
                .filter(|f| f.len() == header.len())
                .map(|f| f[k].clone())
                .collect()
        };
        let (ka, kc) = (clean(&a), clean(&c));
        assert!(ka.len() as u64 > n / 2 && kc.len() as u64 > n / 2);
        let shared = ka.intersection(&kc).count();
        assert!(
            shared * 20 < ka.len(),
            "{format}: another seed must give other people ({shared} shared)"
        );
        assert_ne!(
            std::fs::read(a.join(file)).ok(),
            std::fs::read(c.join(file)).ok()
        );
    }
}

fn check_defects(format: Format, patients: u64, rate: f64) {
    let (_tmp, out, report) = run(format, patients, 9, rate, false);
    let truth_bytes = std::fs::read(out.join("_defects.csv")).expect("_defects.csv");
    let truth_lines = lines(&truth_bytes);
    assert_eq!(truth_lines[0], b"file,line,kind");
    let mut truth: HashMap<(String, usize), String> = HashMap::new();
    for l in &truth_lines[1..] {
        let f = parse_line(l).expect("defects line");
        assert_eq!(f.len(), 3);
        let line: usize = f[1].parse().expect("line number");
        assert!(line >= 2, "the header is never defective");
        let prev = truth.insert((f[0].clone(), line), f[2].clone());
        assert!(prev.is_none(), "one defect per line");
    }
    assert_eq!(truth.len() as u64, report.defects);
    let mut total_rows = 0usize;
    let mut kinds: HashMap<String, usize> = HashMap::new();
    for name in data_files(&out) {
        let bytes = read_bytes(&out.join(&name));
        let ls = lines(&bytes);
        let header = parse_line(ls[0]).expect("the header is intact");
        for (i, l) in ls.iter().enumerate().skip(1) {
            let line = i + 1;
            let seen = classify(format, &header, l);
            match truth.get(&(name.clone(), line)) {
                Some(kind) => {
                    assert_eq!(
                        seen,
                        Some(kind.as_str()),
                        "{name} line {line} is listed as {kind}: {}",
                        String::from_utf8_lossy(l)
                    );
                    *kinds.entry(kind.clone()).or_default() += 1;
                }
                None => assert_eq!(
                    seen,
                    None,
                    "{name} line {line} is not listed but is bad: {}",
                    String::from_utf8_lossy(l)
                ),
            }
        }
        total_rows += ls.len() - 1;
    }
    for key in truth.keys() {
        assert!(out.join(&key.0).is_file(), "listed file {} exists", key.0);
    }
    let observed = truth.len() as f64 / total_rows as f64;
    assert!(
        (observed - rate).abs() < rate * 0.25,
        "defect share {observed} for rate {rate}"
    );
    let mut expected = vec![
        "invalid_utf8",
        "unparseable_date",
        "unterminated_quote",
        "wrong_column_count",
    ];
    if format == Format::Uk {
        expected.push("invalid_nhs_number");
    }
    for k in expected {
        assert!(
            kinds.get(k).copied().unwrap_or(0) > 0,
            "{format}: no {k} defect in {kinds:?}"
        );
    }
    assert_eq!(
        kinds.len(),
        if format == Format::Uk { 5 } else { 4 },
        "{kinds:?}"
    );
}

#[test]
fn defects_ground_truth_synthea() {
    check_defects(Format::Synthea, 120, 0.02);
}

#[test]
fn defects_ground_truth_uk() {
    check_defects(Format::Uk, 3000, 0.02);
}

#[test]
fn no_name_or_ssn_of_the_real_sample_is_generated() {
    let real = Table::load(&real_dir().join("patients.csv"));
    let real_names: HashSet<(String, String)> = real
        .rows
        .iter()
        .map(|r| (r[real.col("FIRST")].clone(), r[real.col("LAST")].clone()))
        .collect();
    let real_ssns: HashSet<&str> = real.values("SSN").collect();
    assert_eq!(real_names.len(), real.rows.len());

    // the helper computes exactly what the generator writes
    let (_tmp, out, _) = run(Format::Synthea, 150, 3, 0.0, false);
    let written = Table::load(&out.join("patients.csv"));
    let helper = dhub_synth::testing::synthea_identities(3, 150);
    for (r, (first, last, ssn)) in written.rows.iter().zip(&helper) {
        assert_eq!(
            (
                &r[written.col("FIRST")],
                &r[written.col("LAST")],
                &r[written.col("SSN")]
            ),
            (first, last, ssn)
        );
    }

    let generated = dhub_synth::testing::synthea_identities(1, 20_000);
    let mut ssns = HashSet::new();
    for (first, last, ssn) in &generated {
        assert!(
            !real_names.contains(&(first.clone(), last.clone())),
            "{first} {last} is in the real sample"
        );
        assert!(
            !real_ssns.contains(ssn.as_str()),
            "SSN {ssn} is in the real sample"
        );
        assert!(
            ssns.insert(ssn.clone()),
            "SSN {ssn} repeats within 20,000 patients"
        );
        assert!(
            first.chars().last().is_some_and(|c| c.is_ascii_digit())
                && last.chars().last().is_some_and(|c| c.is_ascii_digit())
        );
    }
    assert!(
        generated
            .iter()
            .any(|(f, l, _)| !f.is_ascii() || !l.is_ascii()),
        "some names are accented"
    );
}

#[test]
fn gzip_output_decompresses_to_the_plain_output() {
    for format in [Format::Synthea, Format::Uk] {
        let n = if format == Format::Synthea { 30 } else { 300 };
        let (_t1, plain, r1) = run(format, n, 8, 0.03, false);
        let (_t2, gz, r2) = run(format, n, 8, 0.03, true);
        assert_eq!(r1.defects, r2.defects);
        for (a, b) in r1.files.iter().zip(&r2.files) {
            assert_eq!(format!("{}.gz", a.name), b.name);
            assert_eq!(a.rows, b.rows);
            assert_eq!(
                b.bytes,
                std::fs::metadata(gz.join(&b.name)).expect("gz file").len()
            );
            let original = std::fs::read(plain.join(&a.name)).expect("plain");
            assert!(
                read_bytes(&gz.join(&b.name)) == original,
                "{} differs after gunzip",
                b.name
            );
        }
        let truth_plain =
            String::from_utf8(std::fs::read(plain.join("_defects.csv")).expect("plain defects"))
                .expect("utf8");
        let truth_gz =
            String::from_utf8(std::fs::read(gz.join("_defects.csv")).expect("gz defects"))
                .expect("utf8");
        assert_eq!(truth_gz.replace(".csv.gz,", ".csv,"), truth_plain);
    }
}

#[test]
fn refuses_a_non_empty_output_directory() {
    let tmp = tempfile::tempdir().expect("tempdir");
    std::fs::write(tmp.path().join("keep.txt"), b"x").expect("write");
    let cfg = SynthConfig {
        format: Format::Synthea,
        patients: 1,
        seed: 1,
        out: tmp.path().to_path_buf(),
        defects: 0.0,
        gzip: false,
    };
    let err = generate(&cfg, &|_| {}).expect_err("non-empty directory");
    let msg = err.to_string();
    assert!(
        msg.contains("not empty") && msg.contains(&tmp.path().display().to_string()),
        "{msg}"
    );
    assert_eq!(
        std::fs::read_dir(tmp.path()).expect("dir").count(),
        1,
        "nothing was written"
    );
}
