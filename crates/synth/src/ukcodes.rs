//! Code lists for the UK shared-care-record output: SNOMED CT concepts used in
//! primary care, dm+d medicinal products, ICD-10 diagnoses, OPCS-4
//! procedures, NHS ethnic categories, and regions with real postcode outward
//! codes and local-authority codes. Public terminology and geography, not
//! patient data.

/// A SNOMED CT concept recorded in GP systems.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Snomed {
    pub code: &'static str,
    pub term: &'static str,
}

const fn s(code: &'static str, term: &'static str) -> Snomed {
    Snomed { code, term }
}

/// A dm+d virtual medicinal product: code, name, pack quantity, unit.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Dmd {
    pub code: &'static str,
    pub name: &'static str,
    pub quantity: u32,
    pub unit: &'static str,
}

const fn d(code: &'static str, name: &'static str, quantity: u32, unit: &'static str) -> Dmd {
    Dmd {
        code,
        name,
        quantity,
        unit,
    }
}

pub(crate) const AMLODIPINE: Dmd = d("319283006", "Amlodipine 5mg tablets", 28, "tablet");
pub(crate) const RAMIPRIL: Dmd = d("318902004", "Ramipril 5mg capsules", 28, "capsule");
pub(crate) const LISINOPRIL: Dmd = d("318859000", "Lisinopril 10mg tablets", 28, "tablet");
pub(crate) const LOSARTAN: Dmd = d("318956006", "Losartan 50mg tablets", 28, "tablet");
pub(crate) const METFORMIN: Dmd = d("325278007", "Metformin 500mg tablets", 56, "tablet");
pub(crate) const GLICLAZIDE: Dmd = d("325242002", "Gliclazide 80mg tablets", 56, "tablet");
pub(crate) const SITAGLIPTIN: Dmd = d("424345005", "Sitagliptin 100mg tablets", 28, "tablet");
pub(crate) const ATORVASTATIN: Dmd = d("320030001", "Atorvastatin 20mg tablets", 28, "tablet");
pub(crate) const SIMVASTATIN: Dmd = d("320000009", "Simvastatin 40mg tablets", 28, "tablet");
pub(crate) const ASPIRIN: Dmd = d(
    "319773006",
    "Aspirin 75mg dispersible tablets",
    28,
    "tablet",
);
pub(crate) const CLOPIDOGREL: Dmd = d("319799004", "Clopidogrel 75mg tablets", 28, "tablet");
pub(crate) const APIXABAN: Dmd = d("703908001", "Apixaban 5mg tablets", 56, "tablet");
pub(crate) const WARFARIN: Dmd = d("319733000", "Warfarin 1mg tablets", 28, "tablet");
pub(crate) const BISOPROLOL: Dmd = d("318590006", "Bisoprolol 5mg tablets", 28, "tablet");
pub(crate) const FUROSEMIDE: Dmd = d("317972000", "Furosemide 40mg tablets", 28, "tablet");
pub(crate) const SALBUTAMOL: Dmd = d(
    "39113611000001102",
    "Salbutamol 100micrograms/dose inhaler CFC free",
    200,
    "dose",
);
pub(crate) const BECLOMETASONE: Dmd = d(
    "35908111000001105",
    "Beclometasone 100micrograms/dose inhaler CFC free",
    200,
    "dose",
);
pub(crate) const CITALOPRAM: Dmd = d("321987003", "Citalopram 20mg tablets", 28, "tablet");
pub(crate) const FLUOXETINE: Dmd = d("321949006", "Fluoxetine 20mg capsules", 30, "capsule");
pub(crate) const MIRTAZAPINE: Dmd = d("375193003", "Mirtazapine 15mg tablets", 28, "tablet");
pub(crate) const LEVOTHYROXINE_50: Dmd = d(
    "374295007",
    "Levothyroxine sodium 50microgram tablets",
    28,
    "tablet",
);
pub(crate) const LEVOTHYROXINE_100: Dmd = d(
    "374296008",
    "Levothyroxine sodium 100microgram tablets",
    28,
    "tablet",
);
pub(crate) const PARACETAMOL: Dmd = d("322236009", "Paracetamol 500mg tablets", 100, "tablet");
pub(crate) const CO_CODAMOL: Dmd = d("322341003", "Co-codamol 30mg/500mg tablets", 100, "tablet");
pub(crate) const NAPROXEN: Dmd = d("329807003", "Naproxen 500mg tablets", 28, "tablet");
pub(crate) const DONEPEZIL: Dmd = d("323365007", "Donepezil 10mg tablets", 28, "tablet");
pub(crate) const OMEPRAZOLE: Dmd = d(
    "317291008",
    "Omeprazole 20mg gastro-resistant capsules",
    28,
    "capsule",
);
pub(crate) const LANSOPRAZOLE: Dmd = d(
    "317309001",
    "Lansoprazole 30mg gastro-resistant capsules",
    28,
    "capsule",
);
pub(crate) const TRIMETHOPRIM: Dmd = d("324431001", "Trimethoprim 200mg tablets", 6, "tablet");
pub(crate) const AMOXICILLIN: Dmd = d(
    "39732411000001106",
    "Amoxicillin 500mg capsules",
    15,
    "capsule",
);
pub(crate) const FLUCLOXACILLIN: Dmd = d(
    "39692211000001107",
    "Flucloxacillin 500mg capsules",
    28,
    "capsule",
);
pub(crate) const DOXYCYCLINE: Dmd = d("324059006", "Doxycycline 100mg capsules", 8, "capsule");
pub(crate) const PREDNISOLONE: Dmd = d("325427002", "Prednisolone 5mg tablets", 28, "tablet");

/// A long-term condition: its SNOMED CT concept, prevalence, onset ages,
/// repeat medicines, and the measurements taken at its annual review.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LongTerm {
    pub concept: Snomed,
    pub prevalence: f64,
    pub onset: (i64, i64),
    pub meds: &'static [Dmd],
    pub review: &'static [Measure],
}

/// A measured value with its concept, unit and distribution.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Measure {
    pub concept: Snomed,
    pub unit: &'static str,
    pub mean: f64,
    pub sd: f64,
    pub min: f64,
    pub max: f64,
    /// Decimals written.
    pub decimals: u8,
}

#[allow(clippy::too_many_arguments)]
const fn me(
    code: &'static str,
    term: &'static str,
    unit: &'static str,
    mean: f64,
    sd: f64,
    min: f64,
    max: f64,
    decimals: u8,
) -> Measure {
    Measure {
        concept: s(code, term),
        unit,
        mean,
        sd,
        min,
        max,
        decimals,
    }
}

pub(crate) const SYSTOLIC: Measure = me(
    "271649006",
    "Systolic blood pressure",
    "mmHg",
    132.0,
    15.0,
    90.0,
    200.0,
    0,
);
pub(crate) const DIASTOLIC: Measure = me(
    "271650006",
    "Diastolic blood pressure",
    "mmHg",
    80.0,
    9.0,
    50.0,
    120.0,
    0,
);
pub(crate) const WEIGHT: Measure = me("27113001", "Body weight", "kg", 78.0, 16.0, 40.0, 180.0, 1);
pub(crate) const HEIGHT: Measure = me(
    "50373000",
    "Body height measure",
    "cm",
    170.0,
    9.0,
    140.0,
    205.0,
    0,
);
pub(crate) const BMI: Measure = me(
    "60621009",
    "Body mass index",
    "kg/m2",
    27.0,
    5.0,
    16.0,
    55.0,
    1,
);
pub(crate) const HEART_RATE: Measure = me(
    "364075005",
    "Heart rate",
    "/min",
    74.0,
    11.0,
    45.0,
    130.0,
    0,
);
pub(crate) const HBA1C: Measure = me(
    "999791000000106",
    "Haemoglobin A1c level - IFCC standardised",
    "mmol/mol",
    52.0,
    12.0,
    30.0,
    120.0,
    0,
);
pub(crate) const CHOLESTEROL: Measure = me(
    "1005671000000105",
    "Serum cholesterol level",
    "mmol/L",
    5.0,
    1.0,
    2.5,
    9.5,
    1,
);
pub(crate) const EGFR: Measure = me(
    "1011481000000105",
    "eGFR (estimated glomerular filtration rate) using creatinine Chronic Kidney Disease Epidemiology Collaboration equation per 1.73 square metres",
    "mL/min/1.73m2",
    62.0,
    18.0,
    10.0,
    120.0,
    0,
);
pub(crate) const CREATININE: Measure = me(
    "1000731000000107",
    "Serum creatinine level",
    "umol/L",
    88.0,
    22.0,
    40.0,
    400.0,
    0,
);
pub(crate) const ALCOHOL: Measure = me(
    "160573003",
    "Alcohol intake",
    "U/week",
    8.0,
    7.0,
    0.0,
    60.0,
    0,
);

const BP_REVIEW: &[Measure] = &[SYSTOLIC, DIASTOLIC, WEIGHT];
const DIABETES_REVIEW: &[Measure] = &[HBA1C, SYSTOLIC, DIASTOLIC, WEIGHT, BMI, CHOLESTEROL, EGFR];
const CVD_REVIEW: &[Measure] = &[SYSTOLIC, DIASTOLIC, CHOLESTEROL, HEART_RATE];
const CKD_REVIEW: &[Measure] = &[EGFR, CREATININE, SYSTOLIC, DIASTOLIC];
const RESP_REVIEW: &[Measure] = &[HEART_RATE, WEIGHT];
const PLAIN_REVIEW: &[Measure] = &[WEIGHT];

const fn lt(
    code: &'static str,
    term: &'static str,
    prevalence: f64,
    onset: (i64, i64),
    meds: &'static [Dmd],
    review: &'static [Measure],
) -> LongTerm {
    LongTerm {
        concept: s(code, term),
        prevalence,
        onset,
        meds,
        review,
    }
}

pub(crate) const LONG_TERM: &[LongTerm] = &[
    lt(
        "38341003",
        "Hypertension",
        0.30,
        (30, 80),
        &[AMLODIPINE, RAMIPRIL, LISINOPRIL, LOSARTAN],
        BP_REVIEW,
    ),
    lt(
        "44054006",
        "Type 2 diabetes mellitus",
        0.10,
        (35, 80),
        &[METFORMIN, GLICLAZIDE, SITAGLIPTIN],
        DIABETES_REVIEW,
    ),
    lt(
        "55822004",
        "Hyperlipidaemia",
        0.15,
        (35, 80),
        &[ATORVASTATIN, SIMVASTATIN],
        CVD_REVIEW,
    ),
    lt(
        "195967001",
        "Asthma",
        0.09,
        (3, 50),
        &[SALBUTAMOL, BECLOMETASONE],
        RESP_REVIEW,
    ),
    lt(
        "13645005",
        "Chronic obstructive pulmonary disease",
        0.05,
        (45, 85),
        &[SALBUTAMOL, BECLOMETASONE],
        RESP_REVIEW,
    ),
    lt(
        "49436004",
        "Atrial fibrillation",
        0.05,
        (55, 90),
        &[APIXABAN, WARFARIN, BISOPROLOL],
        CVD_REVIEW,
    ),
    lt(
        "84114007",
        "Heart failure",
        0.03,
        (60, 90),
        &[FUROSEMIDE, BISOPROLOL],
        CVD_REVIEW,
    ),
    lt(
        "414545008",
        "Ischaemic heart disease",
        0.06,
        (50, 85),
        &[ASPIRIN, CLOPIDOGREL, ATORVASTATIN],
        CVD_REVIEW,
    ),
    lt(
        "35489007",
        "Depressive disorder",
        0.12,
        (15, 70),
        &[CITALOPRAM, FLUOXETINE, MIRTAZAPINE],
        PLAIN_REVIEW,
    ),
    lt(
        "197480006",
        "Anxiety disorder",
        0.08,
        (15, 70),
        &[CITALOPRAM],
        PLAIN_REVIEW,
    ),
    lt(
        "709044004",
        "Chronic kidney disease",
        0.06,
        (55, 90),
        &[],
        CKD_REVIEW,
    ),
    lt(
        "396275006",
        "Osteoarthritis",
        0.12,
        (45, 90),
        &[PARACETAMOL, CO_CODAMOL, NAPROXEN],
        PLAIN_REVIEW,
    ),
    lt(
        "69896004",
        "Rheumatoid arthritis",
        0.01,
        (30, 70),
        &[NAPROXEN, PREDNISOLONE],
        PLAIN_REVIEW,
    ),
    lt(
        "40930008",
        "Hypothyroidism",
        0.04,
        (25, 80),
        &[LEVOTHYROXINE_50, LEVOTHYROXINE_100],
        PLAIN_REVIEW,
    ),
    lt(
        "230690007",
        "Stroke",
        0.02,
        (55, 90),
        &[CLOPIDOGREL, ATORVASTATIN],
        CVD_REVIEW,
    ),
    lt(
        "52448006",
        "Dementia",
        0.04,
        (70, 95),
        &[DONEPEZIL],
        PLAIN_REVIEW,
    ),
];

/// A short illness seen in general practice, with its usual antibiotic or analgesic.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Minor {
    pub concept: Snomed,
    pub med: Option<Dmd>,
}

pub(crate) const MINOR: &[Minor] = &[
    Minor {
        concept: s("68566005", "Urinary tract infectious disease"),
        med: Some(TRIMETHOPRIM),
    },
    Minor {
        concept: s("195662009", "Acute viral pharyngitis"),
        med: None,
    },
    Minor {
        concept: s("43878008", "Streptococcal sore throat"),
        med: Some(AMOXICILLIN),
    },
    Minor {
        concept: s("10509002", "Acute bronchitis"),
        med: Some(DOXYCYCLINE),
    },
    Minor {
        concept: s("65363002", "Otitis media"),
        med: Some(AMOXICILLIN),
    },
    Minor {
        concept: s("444814009", "Viral sinusitis"),
        med: None,
    },
    Minor {
        concept: s("25064002", "Headache"),
        med: Some(PARACETAMOL),
    },
    Minor {
        concept: s("161891005", "Backache"),
        med: Some(NAPROXEN),
    },
    Minor {
        concept: s("29857009", "Chest pain"),
        med: None,
    },
    Minor {
        concept: s("49727002", "Cough"),
        med: None,
    },
    Minor {
        concept: s("128045006", "Cellulitis"),
        med: Some(FLUCLOXACILLIN),
    },
    Minor {
        concept: s("271807003", "Eruption of skin"),
        med: None,
    },
    Minor {
        concept: s("21522001", "Abdominal pain"),
        med: Some(OMEPRAZOLE),
    },
];

pub(crate) const SMOKER: Snomed = s("77176002", "Smoker");
pub(crate) const EX_SMOKER: Snomed = s("8517006", "Ex-smoker");
pub(crate) const NEVER_SMOKED: Snomed = s("266919005", "Never smoked tobacco");
pub(crate) const MEDICATION_REVIEW: Snomed = s("182836005", "Review of medication");

/// An ICD-10 code and its description.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Icd {
    pub code: &'static str,
    pub desc: &'static str,
}

/// A hospital episode type.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Episode {
    pub diagnosis: Icd,
    /// OPCS-4 procedure (code, description), when one is usually done.
    pub procedure: Option<(&'static str, &'static str)>,
    /// Admission method (HES code).
    pub method: &'static str,
    /// Treatment function code.
    pub specialty: &'static str,
    pub ages: (i64, i64),
    /// 0 = anyone, 1 = men, 2 = women.
    pub sex: u8,
    pub weight: u32,
    /// Length of stay in days (min, max).
    pub stay: (i64, i64),
}

#[allow(clippy::too_many_arguments)]
const fn ep(
    code: &'static str,
    desc: &'static str,
    procedure: Option<(&'static str, &'static str)>,
    method: &'static str,
    specialty: &'static str,
    ages: (i64, i64),
    sex: u8,
    weight: u32,
    stay: (i64, i64),
) -> Episode {
    Episode {
        diagnosis: Icd { code, desc },
        procedure,
        method,
        specialty,
        ages,
        sex,
        weight,
        stay,
    }
}

pub(crate) const EPISODES: &[Episode] = &[
    ep(
        "I21.9",
        "Acute myocardial infarction, unspecified",
        Some((
            "K75.1",
            "Percutaneous transluminal balloon angioplasty and insertion of 1-2 drug-eluting stents into coronary artery",
        )),
        "21",
        "320",
        (45, 100),
        0,
        5,
        (2, 8),
    ),
    ep(
        "I50.0",
        "Congestive heart failure",
        None,
        "21",
        "300",
        (60, 100),
        0,
        5,
        (3, 14),
    ),
    ep(
        "I48.9",
        "Atrial fibrillation and atrial flutter, unspecified",
        None,
        "22",
        "320",
        (55, 100),
        0,
        4,
        (1, 5),
    ),
    ep(
        "I63.9",
        "Cerebral infarction, unspecified",
        None,
        "21",
        "300",
        (55, 100),
        0,
        4,
        (4, 21),
    ),
    ep(
        "J18.9",
        "Pneumonia, unspecified",
        None,
        "21",
        "340",
        (0, 100),
        0,
        8,
        (2, 10),
    ),
    ep(
        "J44.1",
        "Chronic obstructive pulmonary disease with acute exacerbation, unspecified",
        None,
        "21",
        "340",
        (45, 100),
        0,
        5,
        (2, 9),
    ),
    ep(
        "J45.9",
        "Asthma, unspecified",
        None,
        "21",
        "340",
        (3, 60),
        0,
        3,
        (1, 4),
    ),
    ep(
        "K35.8",
        "Acute appendicitis, other and unspecified",
        Some(("H01.9", "Emergency excision of appendix, unspecified")),
        "21",
        "100",
        (5, 60),
        0,
        4,
        (1, 5),
    ),
    ep(
        "K80.2",
        "Calculus of gallbladder without cholecystitis",
        Some(("J18.3", "Total cholecystectomy NEC")),
        "11",
        "100",
        (25, 85),
        0,
        4,
        (0, 3),
    ),
    ep(
        "K40.9",
        "Unilateral or unspecified inguinal hernia, without obstruction or gangrene",
        Some(("T20.9", "Primary repair of inguinal hernia, unspecified")),
        "11",
        "100",
        (20, 90),
        1,
        3,
        (0, 2),
    ),
    ep(
        "N39.0",
        "Urinary tract infection, site not specified",
        None,
        "21",
        "300",
        (0, 100),
        0,
        5,
        (1, 6),
    ),
    ep(
        "S72.0",
        "Fracture of neck of femur",
        Some((
            "W46.1",
            "Primary prosthetic replacement of head of femur using cement",
        )),
        "21",
        "110",
        (65, 100),
        0,
        4,
        (5, 21),
    ),
    ep(
        "S52.5",
        "Fracture of lower end of radius",
        None,
        "21",
        "110",
        (5, 95),
        0,
        3,
        (0, 2),
    ),
    ep(
        "M16.1",
        "Other primary coxarthrosis",
        Some((
            "W37.1",
            "Primary total prosthetic replacement of hip joint using cement",
        )),
        "11",
        "110",
        (55, 90),
        0,
        3,
        (2, 6),
    ),
    ep(
        "M17.1",
        "Other primary gonarthrosis",
        Some((
            "W40.1",
            "Primary total prosthetic replacement of knee joint using cement",
        )),
        "11",
        "110",
        (55, 90),
        0,
        3,
        (2, 6),
    ),
    ep(
        "H25.9",
        "Senile cataract, unspecified",
        Some(("C71.2", "Phakoemulsification of lens")),
        "11",
        "130",
        (60, 100),
        0,
        5,
        (0, 0),
    ),
    ep(
        "C50.9",
        "Malignant neoplasm of breast, unspecified",
        Some(("B28.9", "Other excision of breast, unspecified")),
        "11",
        "103",
        (35, 90),
        2,
        2,
        (0, 3),
    ),
    ep(
        "C18.9",
        "Malignant neoplasm of colon, unspecified",
        Some((
            "H22.9",
            "Diagnostic endoscopic examination of colon, unspecified",
        )),
        "11",
        "301",
        (50, 95),
        0,
        2,
        (0, 2),
    ),
    ep(
        "R07.4",
        "Chest pain, unspecified",
        None,
        "21",
        "300",
        (30, 100),
        0,
        6,
        (0, 2),
    ),
    ep(
        "R10.4",
        "Other and unspecified abdominal pain",
        None,
        "21",
        "100",
        (5, 100),
        0,
        5,
        (0, 3),
    ),
    ep(
        "A09.9",
        "Gastroenteritis and colitis of unspecified origin",
        None,
        "21",
        "300",
        (0, 100),
        0,
        4,
        (1, 4),
    ),
    ep(
        "U07.1",
        "COVID-19, virus identified",
        None,
        "21",
        "340",
        (18, 100),
        0,
        3,
        (3, 14),
    ),
    ep(
        "L03.1",
        "Cellulitis of other parts of limb",
        None,
        "21",
        "300",
        (18, 100),
        0,
        3,
        (2, 7),
    ),
    ep(
        "O80.0",
        "Spontaneous vertex delivery",
        Some(("R24.9", "Normal delivery, unspecified")),
        "31",
        "501",
        (18, 45),
        2,
        6,
        (0, 2),
    ),
    ep(
        "O82.0",
        "Delivery by elective caesarean section",
        Some(("R17.9", "Elective caesarean delivery, unspecified")),
        "13",
        "501",
        (18, 45),
        2,
        2,
        (2, 4),
    ),
];

/// Secondary diagnoses recorded alongside a long-term condition.
pub(crate) const SECONDARY: &[(&str, Icd)] = &[
    (
        "38341003",
        Icd {
            code: "I10",
            desc: "Essential (primary) hypertension",
        },
    ),
    (
        "44054006",
        Icd {
            code: "E11.9",
            desc: "Type 2 diabetes mellitus without complications",
        },
    ),
    (
        "195967001",
        Icd {
            code: "J45.9",
            desc: "Asthma, unspecified",
        },
    ),
    (
        "709044004",
        Icd {
            code: "N18.3",
            desc: "Chronic kidney disease, stage 3",
        },
    ),
    (
        "55822004",
        Icd {
            code: "E78.0",
            desc: "Pure hypercholesterolaemia",
        },
    ),
    (
        "35489007",
        Icd {
            code: "F32.9",
            desc: "Depressive episode, unspecified",
        },
    ),
    (
        "52448006",
        Icd {
            code: "F03",
            desc: "Unspecified dementia",
        },
    ),
    (
        "414545008",
        Icd {
            code: "I25.9",
            desc: "Chronic ischaemic heart disease, unspecified",
        },
    ),
];

/// NHS ethnic category codes with relative frequencies.
pub(crate) const ETHNIC_CATEGORIES: &[(&str, u32)] = &[
    ("A", 740),
    ("B", 9),
    ("C", 62),
    ("D", 9),
    ("E", 4),
    ("F", 8),
    ("G", 8),
    ("H", 31),
    ("J", 27),
    ("K", 11),
    ("L", 16),
    ("M", 11),
    ("N", 25),
    ("P", 5),
    ("R", 8),
    ("S", 12),
    ("Z", 14),
];

/// A region: postcode outward codes, the letter and area digits of its GP
/// practice codes, its local-authority code, and its share of the population.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Region {
    #[cfg_attr(not(test), allow(dead_code))]
    pub name: &'static str,
    pub outward: &'static [&'static str],
    pub practice_prefix: &'static str,
    pub local_authority: &'static str,
    pub weight: u32,
}

pub(crate) const REGIONS: &[Region] = &[
    Region {
        name: "Leeds",
        outward: &[
            "LS1", "LS2", "LS4", "LS6", "LS7", "LS8", "LS9", "LS11", "LS12", "LS15", "LS17", "LS28",
        ],
        practice_prefix: "B86",
        local_authority: "E08000035",
        weight: 8,
    },
    Region {
        name: "Manchester",
        outward: &[
            "M1", "M4", "M8", "M13", "M14", "M15", "M16", "M20", "M21", "M22", "M40",
        ],
        practice_prefix: "P84",
        local_authority: "E08000003",
        weight: 8,
    },
    Region {
        name: "Birmingham",
        outward: &[
            "B1", "B5", "B8", "B10", "B11", "B12", "B15", "B16", "B23", "B29",
        ],
        practice_prefix: "M85",
        local_authority: "E08000025",
        weight: 11,
    },
    Region {
        name: "Lambeth",
        outward: &["SW1A", "SW2", "SW4", "SW9", "SE1", "SE5", "SE11", "SE27"],
        practice_prefix: "G85",
        local_authority: "E09000022",
        weight: 6,
    },
    Region {
        name: "Tower Hamlets",
        outward: &["E1", "E2", "E3", "E14", "EC1A", "N1", "WC1N"],
        practice_prefix: "F84",
        local_authority: "E09000030",
        weight: 6,
    },
    Region {
        name: "Newcastle",
        outward: &["NE1", "NE2", "NE4", "NE6", "NE15"],
        practice_prefix: "A87",
        local_authority: "E08000021",
        weight: 4,
    },
    Region {
        name: "Bristol",
        outward: &["BS1", "BS2", "BS3", "BS5", "BS6", "BS7", "BS16"],
        practice_prefix: "L81",
        local_authority: "E06000023",
        weight: 5,
    },
    Region {
        name: "Sheffield",
        outward: &["S1", "S2", "S5", "S7", "S10", "S11"],
        practice_prefix: "C88",
        local_authority: "E08000019",
        weight: 6,
    },
    Region {
        name: "Liverpool",
        outward: &["L1", "L3", "L4", "L8", "L15", "L17"],
        practice_prefix: "N82",
        local_authority: "E08000012",
        weight: 5,
    },
    Region {
        name: "Nottingham",
        outward: &["NG1", "NG3", "NG5", "NG7"],
        practice_prefix: "C84",
        local_authority: "E06000018",
        weight: 4,
    },
    Region {
        name: "Norfolk",
        outward: &["NR1", "NR2", "NR3", "NR5"],
        practice_prefix: "D82",
        local_authority: "E10000020",
        weight: 3,
    },
    Region {
        name: "Southampton",
        outward: &["SO14", "SO15", "SO16", "SO17"],
        practice_prefix: "J82",
        local_authority: "E06000045",
        weight: 3,
    },
    Region {
        name: "Cardiff",
        outward: &["CF10", "CF11", "CF14", "CF23", "CF24"],
        practice_prefix: "W97",
        local_authority: "W06000015",
        weight: 4,
    },
];

/// Letters allowed in the inward code of a postcode (no C, I, K, M, O, V).
pub(crate) const INWARD_LETTERS: &[u8] = b"ABDEFGHJLNPQRSTUWXYZ";

/// Adult social care: contact types, services and primary support reasons.
pub(crate) const CONTACT_TYPES: &[&str] = &[
    "Request for support",
    "Assessment",
    "Review",
    "Service start",
    "Service end",
];
pub(crate) const SERVICES: &[&str] = &[
    "Home care",
    "Reablement",
    "Day care",
    "Residential care",
    "Nursing care",
    "Direct payment",
    "Equipment and adaptations",
    "Carer support",
];
pub(crate) const SUPPORT_REASONS: &[&str] = &[
    "Physical support: personal care support",
    "Physical support: access and mobility only",
    "Sensory support: support for visual impairment",
    "Support with memory and cognition",
    "Learning disability support",
    "Mental health support",
    "Social support: substance misuse support",
    "Social support: support for social isolation/other",
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codes::checks::snomed_ok;

    #[test]
    fn snomed_and_dmd_check_digits() {
        let mut all: Vec<&str> = Vec::new();
        for l in LONG_TERM {
            all.push(l.concept.code);
            all.extend(l.meds.iter().map(|m| m.code));
            all.extend(l.review.iter().map(|m| m.concept.code));
        }
        for m in MINOR {
            all.push(m.concept.code);
            all.extend(m.med.map(|d| d.code));
        }
        all.extend([
            SMOKER.code,
            EX_SMOKER.code,
            NEVER_SMOKED.code,
            MEDICATION_REVIEW.code,
        ]);
        all.extend([
            HEIGHT.concept.code,
            BMI.concept.code,
            ALCOHOL.concept.code,
            OMEPRAZOLE.code,
            LANSOPRAZOLE.code,
        ]);
        for code in all {
            assert!(snomed_ok(code), "{code}");
        }
    }

    #[test]
    fn icd10_and_opcs4_shapes() {
        let icd = |c: &str| {
            let b = c.as_bytes();
            b.len() >= 3
                && b[0].is_ascii_uppercase()
                && b[1].is_ascii_digit()
                && b[2].is_ascii_digit()
                && (b.len() == 3 || (b.len() == 5 && b[3] == b'.' && b[4].is_ascii_digit()))
        };
        let opcs = |c: &str| {
            let b = c.as_bytes();
            b.len() == 5
                && b[0].is_ascii_uppercase()
                && b[1].is_ascii_digit()
                && b[2].is_ascii_digit()
                && b[3] == b'.'
                && b[4].is_ascii_digit()
        };
        for e in EPISODES {
            assert!(icd(e.diagnosis.code), "{}", e.diagnosis.code);
            if let Some((p, _)) = e.procedure {
                assert!(opcs(p), "{p}");
            }
        }
        for (_, i) in SECONDARY {
            assert!(icd(i.code), "{}", i.code);
        }
    }

    #[test]
    fn regions_are_well_formed() {
        for r in REGIONS {
            assert_eq!(r.practice_prefix.len(), 3, "{}", r.name);
            assert_eq!(r.local_authority.len(), 9);
            for o in r.outward {
                let b = o.as_bytes();
                assert!(
                    (2..=4).contains(&b.len()) && b[0].is_ascii_uppercase(),
                    "{o}"
                );
            }
        }
    }
}
