//! Code lists for the Synthea-shaped output: SNOMED CT, LOINC, RxNorm and CVX
//! codes with their descriptions (public terminologies, written the way
//! Synthea writes them: commas inside descriptions become double spaces),
//! Massachusetts towns with ZIP codes and coordinate boxes, and the wording of
//! generated organisation names. None of this is patient data.

/// A code and its description.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Code {
    pub code: &'static str,
    pub desc: &'static str,
}

const fn c(code: &'static str, desc: &'static str) -> Code {
    Code { code, desc }
}

/// An encounter type.
#[derive(Debug, Clone, Copy)]
pub(crate) struct EncType {
    pub class: &'static str,
    pub code: Code,
    /// `DEPARTMENTID` in claims.
    pub dept: u32,
    /// Typical length in minutes (min, max).
    pub minutes: (i64, i64),
    /// Base cost in cents.
    pub cost: i64,
}

const fn enc(
    class: &'static str,
    code: Code,
    dept: u32,
    minutes: (i64, i64),
    cost: i64,
) -> EncType {
    EncType {
        class,
        code,
        dept,
        minutes,
        cost,
    }
}

pub(crate) const WELL_CHILD: EncType = enc(
    "wellness",
    c("410620009", "Well child visit (procedure)"),
    10,
    (15, 15),
    13_689,
);
pub(crate) const GENERAL_EXAM: EncType = enc(
    "wellness",
    c("162673000", "General examination of patient (procedure)"),
    20,
    (15, 15),
    13_689,
);
pub(crate) const SYMPTOM: EncType = enc(
    "ambulatory",
    c("185345009", "Encounter for symptom"),
    1,
    (15, 30),
    8_255,
);
pub(crate) const PROBLEM: EncType = enc(
    "ambulatory",
    c("185347001", "Encounter for problem"),
    1,
    (15, 40),
    8_255,
);
pub(crate) const FOLLOW_UP: EncType = enc(
    "ambulatory",
    c("390906007", "Follow-up encounter"),
    1,
    (15, 15),
    8_255,
);
pub(crate) const HTN_FOLLOW_UP: EncType = enc(
    "ambulatory",
    c("390906007", "Hypertension follow-up encounter"),
    1,
    (15, 15),
    8_255,
);
pub(crate) const ASTHMA_FOLLOW_UP: EncType = enc(
    "ambulatory",
    c("394701000", "Asthma follow-up"),
    1,
    (15, 15),
    8_255,
);
pub(crate) const PRENATAL_INITIAL: EncType = enc(
    "ambulatory",
    c("424441002", "Prenatal initial visit"),
    1,
    (30, 60),
    8_255,
);
pub(crate) const PRENATAL: EncType = enc(
    "ambulatory",
    c("424619006", "Prenatal visit"),
    1,
    (15, 30),
    8_255,
);
pub(crate) const POSTNATAL: EncType = enc(
    "ambulatory",
    c("169762003", "Postnatal visit"),
    1,
    (15, 30),
    8_255,
);
pub(crate) const ALLERGY_ASSESSMENT: EncType = enc(
    "ambulatory",
    c("170837001", "Allergic disorder initial assessment"),
    1,
    (30, 45),
    8_255,
);
pub(crate) const CHECK_UP: EncType = enc(
    "outpatient",
    c("185349003", "Encounter for check up (procedure)"),
    2,
    (15, 30),
    13_689,
);
pub(crate) const CONSULTATION: EncType = enc(
    "outpatient",
    c("698314001", "Consultation for treatment"),
    2,
    (20, 40),
    13_689,
);
pub(crate) const EMERGENCY: EncType = enc(
    "emergency",
    c("50849002", "Emergency room admission (procedure)"),
    4,
    (60, 240),
    13_689,
);
pub(crate) const OBSTETRIC_ADMISSION: EncType = enc(
    "emergency",
    c("183460006", "Obstetric emergency hospital admission"),
    4,
    (360, 1440),
    13_689,
);
pub(crate) const INPATIENT: EncType = enc(
    "inpatient",
    c("183452005", "Encounter Inpatient"),
    3,
    (1440, 7200),
    13_689,
);
pub(crate) const ISOLATION: EncType = enc(
    "inpatient",
    c("1505002", "Hospital admission for isolation (procedure)"),
    3,
    (7200, 20160),
    13_689,
);
pub(crate) const URGENT_CARE: EncType = enc(
    "urgentcare",
    c("702927004", "Urgent care clinic (procedure)"),
    5,
    (30, 90),
    13_689,
);
pub(crate) const DEATH_CERTIFICATION: EncType = enc(
    "wellness",
    c("308646001", "Death Certification"),
    20,
    (15, 15),
    13_689,
);

/// A medication (RxNorm) with its cost per dispense in cents.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Med {
    pub code: &'static str,
    pub desc: &'static str,
    pub cost: i64,
}

const fn m(code: &'static str, desc: &'static str, cost: i64) -> Med {
    Med { code, desc, cost }
}

pub(crate) const LISINOPRIL: Med = m("314076", "lisinopril 10 MG Oral Tablet", 26);
pub(crate) const HCTZ: Med = m("310798", "Hydrochlorothiazide 25 MG Oral Tablet", 31);
pub(crate) const AMLODIPINE: Med = m("308136", "amLODIPine 2.5 MG Oral Tablet", 21);
pub(crate) const SIMVASTATIN: Med = m("316672", "Simvastatin 10 MG Oral Tablet", 17);
pub(crate) const ATORVASTATIN: Med = m("259255", "Atorvastatin 80 MG Oral Tablet", 94);
pub(crate) const METFORMIN: Med = m(
    "860975",
    "24 HR Metformin hydrochloride 500 MG Extended Release Oral Tablet",
    45,
);
pub(crate) const ALBUTEROL: Med = m(
    "2123111",
    "NDA020503 200 ACTUAT Albuterol 0.09 MG/ACTUAT Metered Dose Inhaler",
    3_698,
);
pub(crate) const FLUTICASONE: Med = m(
    "895994",
    "120 ACTUAT Fluticasone propionate 0.044 MG/ACTUAT Metered Dose Inhaler",
    12_748,
);
pub(crate) const LORATADINE: Med = m("665078", "Loratadine 5 MG Chewable Tablet", 36);
pub(crate) const EPINEPHRINE: Med = m(
    "1870230",
    "NDA020800 0.3 ML Epinephrine 1 MG/ML Auto-Injector",
    29_711,
);
pub(crate) const AMOXICILLIN_250: Med = m("308182", "Amoxicillin 250 MG Oral Capsule", 18);
pub(crate) const AMOXICILLIN_500: Med = m("308192", "Amoxicillin 500 MG Oral Tablet", 24);
pub(crate) const PENICILLIN_V: Med = m("834061", "Penicillin V Potassium 250 MG Oral Tablet", 42);
pub(crate) const ACETAMINOPHEN_325: Med = m("313782", "Acetaminophen 325 MG Oral Tablet", 5);
pub(crate) const ACETAMINOPHEN_160: Med = m("313820", "Acetaminophen 160 MG Chewable Tablet", 9);
pub(crate) const IBUPROFEN_100: Med = m("198405", "Ibuprofen 100 MG Oral Tablet", 7);
pub(crate) const NAPROXEN: Med = m("849574", "Naproxen sodium 220 MG Oral Tablet", 11);
pub(crate) const OXYCODONE_APAP: Med = m(
    "1049221",
    "Acetaminophen 325 MG / Oxycodone Hydrochloride 5 MG Oral Tablet",
    121,
);
pub(crate) const WARFARIN: Med = m("855332", "Warfarin Sodium 5 MG Oral Tablet", 48);
pub(crate) const METOPROLOL: Med = m("866924", "Metoprolol Tartrate 25 MG Oral Tablet", 12);
pub(crate) const ASPIRIN: Med = m("243670", "aspirin 81 MG Oral Tablet", 3);
pub(crate) const CLOPIDOGREL: Med = m("309362", "Clopidogrel 75 MG Oral Tablet", 67);

/// A procedure with cost (cents) and length (minutes).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Proc {
    pub code: Code,
    pub cost: i64,
    pub minutes: i64,
}

const fn p(code: &'static str, desc: &'static str, cost: i64, minutes: i64) -> Proc {
    Proc {
        code: c(code, desc),
        cost,
        minutes,
    }
}

pub(crate) const MED_RECONCILIATION: Proc = p(
    "430193006",
    "Medication Reconciliation (procedure)",
    70_212,
    15,
);
pub(crate) const SOCIAL_CARE_NEEDS: Proc = p(
    "710824005",
    "Assessment of health and social care needs (procedure)",
    49_390,
    15,
);
pub(crate) const SUBSTANCE_USE: Proc = p(
    "428211000124100",
    "Assessment of substance use (procedure)",
    49_390,
    15,
);
pub(crate) const DEPRESSION_SCREEN: Proc =
    p("171207006", "Depression screening (procedure)", 49_390, 15);
pub(crate) const PHQ2_SCREEN: Proc = p(
    "454711000124102",
    "Depression screening using Patient Health Questionnaire Two-Item score (procedure)",
    49_390,
    15,
);
pub(crate) const AUDIT_C: Proc = p(
    "763302001",
    "Assessment using Alcohol Use Disorders Identification Test - Consumption (procedure)",
    49_390,
    15,
);
pub(crate) const ANXIETY: Proc = p("710841007", "Assessment of anxiety (procedure)", 49_390, 15);
pub(crate) const CRAFFT: Proc = p(
    "868187001",
    "Assessment using Car  Relax  Alone  Forget  Friends  Trouble Screening Test (procedure)",
    49_390,
    15,
);
pub(crate) const MORSE_FALL: Proc = p(
    "762993000",
    "Assessment using Morse Fall Scale (procedure)",
    49_390,
    15,
);
pub(crate) const COLONOSCOPY: Proc = p("73761001", "Colonoscopy", 1_023_617, 45);
pub(crate) const PREGNANCY_TEST: Proc = p(
    "252160004",
    "Standard pregnancy test (procedure)",
    42_519,
    15,
);
pub(crate) const FETAL_ULTRASOUND: Proc = p(
    "169230002",
    "Ultrasound scan for fetal viability (procedure)",
    67_281,
    20,
);
pub(crate) const FUNDAL_HEIGHT: Proc = p(
    "274804006",
    "Evaluation of uterine fundal height (procedure)",
    42_519,
    10,
);
pub(crate) const FETAL_HEART: Proc = p(
    "225158009",
    "Auscultation of the fetal heart (procedure)",
    42_519,
    10,
);
pub(crate) const PHYSICAL_EXAM: Proc = p(
    "5880005",
    "Physical examination procedure (procedure)",
    42_519,
    15,
);
pub(crate) const CESAREAN: Proc = p("11466000", "Cesarean section", 1_190_255, 90);
pub(crate) const RESPIRATORY_FUNCTION: Proc = p(
    "23426006",
    "Measurement of respiratory function (procedure)",
    61_538,
    15,
);
pub(crate) const THROAT_CULTURE: Proc = p("117015009", "Throat culture (procedure)", 31_227, 10);
pub(crate) const SUTURE: Proc = p("288086009", "Suture open wound", 78_133, 30);
pub(crate) const APPENDECTOMY: Proc = p("80146002", "Appendectomy", 2_519_402, 120);
pub(crate) const PCI: Proc = p(
    "415070008",
    "Percutaneous coronary intervention",
    3_104_882,
    150,
);
pub(crate) const IMMUNOTHERAPY: Proc = p("180256009", "Subcutaneous immunotherapy", 129_577, 20);
pub(crate) const ALLERGY_SCREEN: Proc = p("395142003", "Allergy screening test", 41_201, 20);
pub(crate) const CHEST_XRAY: Proc = p("399208008", "Plain chest X-ray (procedure)", 31_955, 20);
pub(crate) const ECHO: Proc = p(
    "433236007",
    "Transthoracic echocardiography (procedure)",
    52_110,
    30,
);
pub(crate) const HEAD_CT: Proc = p("303653007", "Computed tomography of head", 86_244, 30);
pub(crate) const IM_INJECTION: Proc = p("76601001", "Intramuscular injection", 22_061, 10);

/// An acute illness: its condition, where it is seen and what it brings.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Acute {
    pub cond: Code,
    pub enc: EncType,
    /// Age range in years (min, max) in which it occurs.
    pub ages: (i64, i64),
    /// Relative frequency.
    pub weight: u32,
    /// Days until the condition resolves (min, max).
    pub days: (i64, i64),
    pub meds: &'static [Med],
    pub procs: &'static [Proc],
    pub careplan: Option<Code>,
    pub imaging: Option<Imaging>,
    pub device: Option<Code>,
    /// Isolation supplies for every day of the stay.
    pub supplies: bool,
}

const fn acute(cond: Code, enc: EncType, ages: (i64, i64), weight: u32, days: (i64, i64)) -> Acute {
    Acute {
        cond,
        enc,
        ages,
        weight,
        days,
        meds: &[],
        procs: &[],
        careplan: None,
        imaging: None,
        device: None,
        supplies: false,
    }
}

pub(crate) const MYOCARDIAL_INFARCTION: Code = c("22298006", "Myocardial Infarction");
pub(crate) const RESPIRATORY_THERAPY: Code = c("53950000", "Respiratory therapy");
pub(crate) const WOUND_CARE: Code = c("225358003", "Wound care");
pub(crate) const PHYSICAL_THERAPY: Code = c("91251008", "Physical therapy procedure");
pub(crate) const INFECTIOUS_CARE_PLAN: Code = c(
    "736376001",
    "Infectious disease care plan (record artifact)",
);

pub(crate) const ACUTES: &[Acute] = &[
    acute(
        c("444814009", "Viral sinusitis (disorder)"),
        SYMPTOM,
        (0, 100),
        30,
        (7, 21),
    ),
    Acute {
        meds: &[ACETAMINOPHEN_325],
        procs: &[RESPIRATORY_FUNCTION],
        careplan: Some(RESPIRATORY_THERAPY),
        imaging: Some(CHEST_DX),
        ..acute(
            c("10509002", "Acute bronchitis (disorder)"),
            SYMPTOM,
            (0, 100),
            14,
            (7, 21),
        )
    },
    acute(
        c("195662009", "Acute viral pharyngitis (disorder)"),
        SYMPTOM,
        (0, 100),
        18,
        (5, 14),
    ),
    Acute {
        meds: &[PENICILLIN_V],
        procs: &[THROAT_CULTURE],
        ..acute(
            c("43878008", "Streptococcal sore throat (disorder)"),
            SYMPTOM,
            (3, 40),
            8,
            (7, 14),
        )
    },
    Acute {
        meds: &[AMOXICILLIN_250],
        ..acute(
            c("75498004", "Acute bacterial sinusitis (disorder)"),
            SYMPTOM,
            (0, 100),
            6,
            (10, 21),
        )
    },
    Acute {
        meds: &[AMOXICILLIN_500, ACETAMINOPHEN_160],
        ..acute(c("65363002", "Otitis media"), SYMPTOM, (0, 10), 14, (7, 14))
    },
    acute(
        c("36971009", "Sinusitis (disorder)"),
        SYMPTOM,
        (10, 100),
        5,
        (10, 30),
    ),
    Acute {
        imaging: Some(HEAD_CT_STUDY),
        ..acute(
            c("62106007", "Concussion with no loss of consciousness"),
            URGENT_CARE,
            (5, 80),
            3,
            (14, 42),
        )
    },
    Acute {
        meds: &[OXYCODONE_APAP],
        imaging: Some(CHEST_DX),
        ..acute(
            c("33737001", "Fracture of rib"),
            EMERGENCY,
            (15, 100),
            2,
            (42, 84),
        )
    },
    Acute {
        meds: &[NAPROXEN],
        careplan: Some(PHYSICAL_THERAPY),
        ..acute(
            c("44465007", "Sprain of ankle"),
            URGENT_CARE,
            (8, 70),
            5,
            (14, 42),
        )
    },
    Acute {
        procs: &[SUTURE],
        careplan: Some(WOUND_CARE),
        ..acute(
            c("283371005", "Laceration of forearm"),
            URGENT_CARE,
            (3, 80),
            3,
            (10, 21),
        )
    },
    Acute {
        procs: &[APPENDECTOMY],
        meds: &[OXYCODONE_APAP],
        ..acute(
            c("74400008", "Appendicitis"),
            EMERGENCY,
            (5, 60),
            2,
            (14, 28),
        )
    },
    acute(
        c("55680006", "Drug overdose"),
        EMERGENCY,
        (15, 60),
        1,
        (1, 3),
    ),
    Acute {
        supplies: true,
        careplan: Some(INFECTIOUS_CARE_PLAN),
        ..acute(
            c("840539006", "COVID-19"),
            ISOLATION,
            (30, 100),
            2,
            (14, 35),
        )
    },
    Acute {
        procs: &[PCI],
        meds: &[CLOPIDOGREL],
        imaging: Some(ECHO_STUDY),
        device: Some(c("705643001", "Coronary artery stent (physical object)")),
        ..acute(MYOCARDIAL_INFARCTION, EMERGENCY, (40, 100), 2, (30, 90))
    },
    acute(
        c("196416002", "Impacted molars"),
        INPATIENT,
        (16, 30),
        2,
        (7, 14),
    ),
    acute(
        c("68566005", "Urinary tract infectious disease (disorder)"),
        SYMPTOM,
        (15, 100),
        5,
        (5, 10),
    ),
];

/// Observations attached to a chronic condition's follow-up visits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Panel {
    None,
    BloodPressure,
    Lipids,
    A1c,
    Cbc,
    Metabolic,
}

/// A chronic condition with its treatment.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Chronic {
    pub cond: Code,
    /// Probability that a person who reaches `onset.1` years develops it.
    pub prevalence: f64,
    /// Age range of onset in years.
    pub onset: (i64, i64),
    /// Medication choices; one (sometimes two) is prescribed.
    pub meds: &'static [Med],
    pub careplan: Option<Code>,
    pub follow_up: EncType,
    pub panel: Panel,
    pub device: Option<Code>,
}

const fn chronic(cond: Code, prevalence: f64, onset: (i64, i64)) -> Chronic {
    Chronic {
        cond,
        prevalence,
        onset,
        meds: &[],
        careplan: None,
        follow_up: FOLLOW_UP,
        panel: Panel::None,
        device: None,
    }
}

pub(crate) const DIABETES_PLAN: Code = c("698360004", "Diabetes self management plan");
pub(crate) const ASTHMA_PLAN: Code = c("699728000", "Asthma self management");

pub(crate) const CHRONICS: &[Chronic] = &[
    Chronic {
        meds: &[LISINOPRIL, HCTZ, AMLODIPINE],
        careplan: Some(c("443402002", "Lifestyle education regarding hypertension")),
        follow_up: HTN_FOLLOW_UP,
        panel: Panel::BloodPressure,
        ..chronic(c("59621000", "Hypertension"), 0.32, (25, 75))
    },
    Chronic {
        meds: &[SIMVASTATIN, ATORVASTATIN],
        panel: Panel::Lipids,
        ..chronic(c("55822004", "Hyperlipidemia"), 0.22, (30, 75))
    },
    Chronic {
        careplan: Some(DIABETES_PLAN),
        panel: Panel::A1c,
        ..chronic(c("15777000", "Prediabetes"), 0.16, (25, 70))
    },
    Chronic {
        meds: &[METFORMIN],
        careplan: Some(DIABETES_PLAN),
        panel: Panel::A1c,
        device: Some(c("337414009", "Blood glucose meter (physical object)")),
        ..chronic(
            c("44054006", "Diabetes mellitus type 2 (disorder)"),
            0.1,
            (35, 75),
        )
    },
    Chronic {
        meds: &[FLUTICASONE, ALBUTEROL],
        careplan: Some(ASTHMA_PLAN),
        follow_up: ASTHMA_FOLLOW_UP,
        ..chronic(c("233678006", "Childhood asthma"), 0.08, (2, 10))
    },
    Chronic {
        meds: &[ALBUTEROL, FLUTICASONE],
        careplan: Some(ASTHMA_PLAN),
        follow_up: ASTHMA_FOLLOW_UP,
        ..chronic(c("195967001", "Asthma"), 0.05, (18, 50))
    },
    Chronic {
        panel: Panel::Cbc,
        ..chronic(c("271737000", "Anemia (disorder)"), 0.06, (15, 70))
    },
    Chronic {
        meds: &[NAPROXEN],
        careplan: Some(PHYSICAL_THERAPY),
        ..chronic(c("239872002", "Osteoarthritis of hip"), 0.08, (50, 85))
    },
    chronic(
        c("40055000", "Chronic sinusitis (disorder)"),
        0.05,
        (10, 60),
    ),
    Chronic {
        meds: &[IBUPROFEN_100],
        ..chronic(
            c(
                "124171000119105",
                "Chronic intractable migraine without aura",
            ),
            0.03,
            (15, 45),
        )
    },
    Chronic {
        meds: &[WARFARIN, METOPROLOL],
        ..chronic(c("49436004", "Atrial fibrillation"), 0.05, (60, 90))
    },
    Chronic {
        panel: Panel::Metabolic,
        ..chronic(
            c("431855005", "Chronic kidney disease stage 1 (disorder)"),
            0.05,
            (50, 85),
        )
    },
    chronic(
        c("162864005", "Body mass index 30+ - obesity (finding)"),
        0.12,
        (20, 60),
    ),
    Chronic {
        meds: &[ASPIRIN, CLOPIDOGREL],
        device: Some(c(
            "72506001",
            "Implantable defibrillator  device (physical object)",
        )),
        ..chronic(
            c("414545008", "Ischemic heart disease (disorder)"),
            0.05,
            (50, 85),
        )
    },
    Chronic {
        meds: &[LORATADINE],
        ..chronic(
            c(
                "232353008",
                "Perennial allergic rhinitis with seasonal variation",
            ),
            0.06,
            (3, 30),
        )
    },
    Chronic {
        meds: &[LORATADINE],
        ..chronic(c("367498001", "Seasonal allergic rhinitis"), 0.06, (3, 40))
    },
];

/// Social findings recorded at adult check-ups, with their per-visit probability.
pub(crate) const FINDINGS: &[(Code, f64)] = &[
    (c("160903007", "Full-time employment (finding)"), 0.42),
    (c("160904001", "Part-time employment (finding)"), 0.08),
    (c("73595000", "Stress (finding)"), 0.16),
    (c("423315002", "Limited social contact (finding)"), 0.07),
    (c("422650009", "Social isolation (finding)"), 0.05),
    (c("314529007", "Medication review due (situation)"), 0.10),
    (c("741062008", "Not in labor force (finding)"), 0.07),
    (
        c("706893006", "Victim of intimate partner abuse (finding)"),
        0.01,
    ),
    (c("266948004", "Has a criminal record (finding)"), 0.02),
    (c("224299000", "Received higher education (finding)"), 0.08),
    (c("73438004", "Unemployed (finding)"), 0.04),
    (
        c(
            "424393004",
            "Reports of violence in the environment (finding)",
        ),
        0.02,
    ),
    (
        c(
            "10939881000119105",
            "Unhealthy alcohol drinking behavior (finding)",
        ),
        0.03,
    ),
];

pub(crate) const NORMAL_PREGNANCY: Code = c("72892002", "Normal pregnancy");
pub(crate) const ANTENATAL_CARE: Code = c("134435003", "Routine antenatal care");
pub(crate) const SELF_CARE: Code = c("384758001", "Self-care interventions (procedure)");
pub(crate) const FOOD_ALLERGY_DIET: Code = c("409002", "Food allergy diet");

/// How an observation's value is generated.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Value {
    /// Normal (mean, sd) clamped to (min, max), one decimal.
    Num(f64, f64, f64, f64),
    /// One of the texts.
    Text(&'static [&'static str]),
}

/// An observation (LOINC unless stated).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Obs {
    pub category: &'static str,
    pub code: Code,
    pub units: &'static str,
    pub value: Value,
}

const fn o(
    category: &'static str,
    code: &'static str,
    desc: &'static str,
    units: &'static str,
    value: Value,
) -> Obs {
    Obs {
        category,
        code: c(code, desc),
        units,
        value,
    }
}

const VS: &str = "vital-signs";
const LAB: &str = "laboratory";
const SURVEY: &str = "survey";

pub(crate) const HEIGHT: Code = c("8302-2", "Body Height");
pub(crate) const WEIGHT: Code = c("29463-7", "Body Weight");
pub(crate) const BMI: Code = c("39156-5", "Body Mass Index");
pub(crate) const BMI_PERCENTILE: Obs = o(
    VS,
    "59576-9",
    "Body mass index (BMI) [Percentile] Per age and gender",
    "%",
    Value::Num(55.0, 25.0, 1.0, 99.0),
);
pub(crate) const WEIGHT_FOR_LENGTH: Obs = o(
    VS,
    "77606-2",
    "Weight-for-length Per age and sex",
    "%",
    Value::Num(50.0, 25.0, 1.0, 99.0),
);
pub(crate) const HEAD_CIRCUMFERENCE: Code = c("9843-4", "Head Occipital-frontal circumference");
pub(crate) const DIASTOLIC: Obs = o(
    VS,
    "8462-4",
    "Diastolic Blood Pressure",
    "mm[Hg]",
    Value::Num(78.0, 9.0, 55.0, 110.0),
);
pub(crate) const SYSTOLIC: Obs = o(
    VS,
    "8480-6",
    "Systolic Blood Pressure",
    "mm[Hg]",
    Value::Num(122.0, 14.0, 90.0, 185.0),
);
pub(crate) const HEART_RATE: Obs = o(
    VS,
    "8867-4",
    "Heart rate",
    "/min",
    Value::Num(76.0, 11.0, 50.0, 120.0),
);
pub(crate) const RESPIRATORY_RATE: Obs = o(
    VS,
    "9279-1",
    "Respiratory rate",
    "/min",
    Value::Num(15.0, 2.0, 11.0, 24.0),
);
pub(crate) const PAIN: Obs = o(
    VS,
    "72514-3",
    "Pain severity - 0-10 verbal numeric rating [Score] - Reported",
    "{score}",
    Value::Num(1.5, 1.5, 0.0, 10.0),
);
pub(crate) const TEMPERATURE: Obs = o(
    VS,
    "8310-5",
    "Body temperature",
    "Cel",
    Value::Num(37.6, 0.7, 36.1, 40.2),
);
pub(crate) const TOBACCO: Obs = o(
    SURVEY,
    "72166-2",
    "Tobacco smoking status NHIS",
    "",
    Value::Text(&[
        "Never smoker",
        "Never smoker",
        "Never smoker",
        "Former smoker",
        "Every day smoker",
    ]),
);
pub(crate) const PHQ2: Obs = o(
    SURVEY,
    "55758-7",
    "Patient Health Questionnaire 2 item (PHQ-2) total score [Reported]",
    "{score}",
    Value::Num(0.8, 1.2, 0.0, 6.0),
);
pub(crate) const GAD7: Obs = o(
    SURVEY,
    "70274-6",
    "Generalized anxiety disorder 7 item (GAD-7) total score [Reported.PHQ]",
    "{score}",
    Value::Num(3.0, 3.0, 0.0, 21.0),
);
pub(crate) const AUDIT_C_SCORE: Obs = o(
    SURVEY,
    "75626-2",
    "Total score [AUDIT-C]",
    "{score}",
    Value::Num(2.0, 2.0, 0.0, 12.0),
);
pub(crate) const HARK: Obs = o(
    SURVEY,
    "76504-0",
    "Total score [HARK]",
    "{score}",
    Value::Num(0.2, 0.6, 0.0, 4.0),
);
pub(crate) const DAST10: Obs = o(
    SURVEY,
    "82667-7",
    "Total score [DAST-10]",
    "{score}",
    Value::Num(0.5, 1.0, 0.0, 10.0),
);
pub(crate) const MORSE: Obs = o(
    SURVEY,
    "59460-6",
    "Fall risk total [Morse Fall Scale]",
    "{#}",
    Value::Num(25.0, 15.0, 0.0, 125.0),
);
pub(crate) const HOUSEHOLD: Obs = o(
    SURVEY,
    "63512-8",
    "How many family members  including yourself  do you currently live with?",
    "{#}",
    Value::Num(2.6, 1.3, 1.0, 9.0),
);
pub(crate) const HOUSING: Obs = o(
    SURVEY,
    "71802-3",
    "What is your housing situation today?",
    "",
    Value::Text(&[
        "I have housing",
        "I have housing",
        "I have housing",
        "I do not have housing (staying with others  in a hotel  in a shelter  living outside on the street  on a beach  in a car  or in a park)",
    ]),
);
pub(crate) const WORK: Obs = o(
    SURVEY,
    "67875-5",
    "What is your current work situation?",
    "",
    Value::Text(&[
        "Full-time work",
        "Part-time or temporary work",
        "Unemployed",
        "Otherwise unemployed but not seeking work (ex: student  retired  disabled  unpaid primary care giver)",
    ]),
);
pub(crate) const STRESS: Obs = o(
    SURVEY,
    "93038-8",
    "Stress is when someone feels tense  nervous  anxious or can't sleep at night because their mind is troubled. How stressed are you?",
    "",
    Value::Text(&[
        "Not at all",
        "A little bit",
        "Somewhat",
        "Quite a bit",
        "Very much",
    ]),
);
pub(crate) const QOLS: Obs = o(
    "",
    "QOLS",
    "QOLS",
    "{score}",
    Value::Num(0.85, 0.1, 0.1, 1.0),
);

pub(crate) const METABOLIC_PANEL: &[Obs] = &[
    o(
        LAB,
        "2339-0",
        "Glucose",
        "mg/dL",
        Value::Num(92.0, 14.0, 60.0, 250.0),
    ),
    o(
        LAB,
        "6299-2",
        "Urea Nitrogen",
        "mg/dL",
        Value::Num(14.0, 4.0, 6.0, 40.0),
    ),
    o(
        LAB,
        "38483-4",
        "Creatinine",
        "mg/dL",
        Value::Num(1.0, 0.25, 0.4, 4.0),
    ),
    o(
        LAB,
        "49765-1",
        "Calcium",
        "mg/dL",
        Value::Num(9.4, 0.4, 8.0, 11.0),
    ),
    o(
        LAB,
        "2947-0",
        "Sodium",
        "mmol/L",
        Value::Num(140.0, 2.0, 130.0, 150.0),
    ),
    o(
        LAB,
        "6298-4",
        "Potassium",
        "mmol/L",
        Value::Num(4.3, 0.4, 3.3, 5.5),
    ),
    o(
        LAB,
        "2069-3",
        "Chloride",
        "mmol/L",
        Value::Num(104.0, 2.0, 96.0, 112.0),
    ),
    o(
        LAB,
        "20565-8",
        "Carbon Dioxide",
        "mmol/L",
        Value::Num(25.0, 2.0, 20.0, 30.0),
    ),
];
pub(crate) const LIPID_PANEL: &[Obs] = &[
    o(
        LAB,
        "2093-3",
        "Total Cholesterol",
        "mg/dL",
        Value::Num(190.0, 30.0, 120.0, 320.0),
    ),
    o(
        LAB,
        "2571-8",
        "Triglycerides",
        "mg/dL",
        Value::Num(130.0, 40.0, 40.0, 400.0),
    ),
    o(
        LAB,
        "18262-6",
        "Low Density Lipoprotein Cholesterol",
        "mg/dL",
        Value::Num(110.0, 28.0, 50.0, 230.0),
    ),
    o(
        LAB,
        "2085-9",
        "High Density Lipoprotein Cholesterol",
        "mg/dL",
        Value::Num(55.0, 12.0, 25.0, 100.0),
    ),
];
pub(crate) const A1C: Obs = o(
    LAB,
    "4548-4",
    "Hemoglobin A1c/Hemoglobin.total in Blood",
    "%",
    Value::Num(6.0, 0.8, 4.5, 11.0),
);
pub(crate) const CBC_PANEL: &[Obs] = &[
    o(
        LAB,
        "6690-2",
        "Leukocytes [#/volume] in Blood by Automated count",
        "10*3/uL",
        Value::Num(7.0, 1.8, 3.0, 14.0),
    ),
    o(
        LAB,
        "789-8",
        "Erythrocytes [#/volume] in Blood by Automated count",
        "10*6/uL",
        Value::Num(4.7, 0.4, 3.5, 6.0),
    ),
    o(
        LAB,
        "718-7",
        "Hemoglobin [Mass/volume] in Blood",
        "g/dL",
        Value::Num(13.8, 1.4, 8.0, 18.0),
    ),
    o(
        LAB,
        "4544-3",
        "Hematocrit [Volume Fraction] of Blood by Automated count",
        "%",
        Value::Num(41.0, 4.0, 28.0, 52.0),
    ),
    o(
        LAB,
        "787-2",
        "MCV [Entitic volume] by Automated count",
        "fL",
        Value::Num(89.0, 5.0, 70.0, 105.0),
    ),
    o(
        LAB,
        "785-6",
        "MCH [Entitic mass] by Automated count",
        "pg",
        Value::Num(29.5, 2.0, 24.0, 35.0),
    ),
    o(
        LAB,
        "786-4",
        "MCHC [Mass/volume] by Automated count",
        "g/dL",
        Value::Num(33.5, 1.0, 30.0, 37.0),
    ),
    o(
        LAB,
        "21000-5",
        "Erythrocyte distribution width [Entitic volume] by Automated count",
        "fL",
        Value::Num(43.0, 3.0, 35.0, 55.0),
    ),
    o(
        LAB,
        "777-3",
        "Platelets [#/volume] in Blood by Automated count",
        "10*3/uL",
        Value::Num(260.0, 60.0, 120.0, 450.0),
    ),
    o(
        LAB,
        "32623-1",
        "Platelet mean volume [Entitic volume] in Blood by Automated count",
        "fL",
        Value::Num(10.5, 1.0, 8.0, 13.0),
    ),
];
pub(crate) const CAUSE_OF_DEATH: Code = c(
    "69453-9",
    "Cause of Death [US Standard Certificate of Death]",
);

/// A vaccine (CVX) and the ages in months at which children receive it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Vaccine {
    pub code: Code,
    pub months: &'static [u32],
}

const fn v(code: &'static str, desc: &'static str, months: &'static [u32]) -> Vaccine {
    Vaccine {
        code: c(code, desc),
        months,
    }
}

pub(crate) const CHILD_VACCINES: &[Vaccine] = &[
    v("08", "Hep B  adolescent or pediatric", &[0, 1, 6]),
    v("20", "DTaP", &[2, 4, 6, 15, 48]),
    v("10", "IPV", &[2, 4, 6, 48]),
    v("49", "Hib (PRP-OMP)", &[2, 4, 12]),
    v("133", "Pneumococcal conjugate PCV 13", &[2, 4, 6, 12]),
    v("119", "rotavirus  monovalent", &[2, 4]),
    v("03", "MMR", &[12, 48]),
    v("21", "varicella", &[12, 48]),
    v("83", "Hep A  ped/adol  2 dose", &[12, 18]),
    v("115", "Tdap", &[132]),
    v("62", "HPV  quadrivalent", &[132, 144]),
    v("114", "meningococcal MCV4P", &[132, 192]),
];
pub(crate) const FLU: Code = c("140", "Influenza  seasonal  injectable  preservative free");
pub(crate) const TD: Code = c("113", "Td (adult) preservative free");
pub(crate) const PNEUMO: Code = c("33", "pneumococcal polysaccharide vaccine  23 valent");
pub(crate) const ZOSTER: Code = c("121", "zoster");
pub(crate) const COVID_VACCINE: Code = c(
    "208",
    "SARS-COV-2 (COVID-19) vaccine  mRNA  spike protein  LNP  preservative free  30 mcg/0.3mL dose",
);
/// Cost of one immunization in cents.
pub(crate) const IMMUNIZATION_COST: i64 = 13_689;

/// An allergen: code, system, description, category.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Allergen {
    pub code: Code,
    pub system: &'static str,
    pub category: &'static str,
}

const fn a(
    code: &'static str,
    system: &'static str,
    desc: &'static str,
    category: &'static str,
) -> Allergen {
    Allergen {
        code: c(code, desc),
        system,
        category,
    }
}

pub(crate) const ALLERGENS: &[Allergen] = &[
    a("111088007", "SNOMED-CT", "Latex (substance)", "environment"),
    a("84489001", "SNOMED-CT", "Mold (organism)", "environment"),
    a(
        "260147004",
        "SNOMED-CT",
        "House dust mite (organism)",
        "environment",
    ),
    a(
        "264287008",
        "SNOMED-CT",
        "Animal dander (substance)",
        "environment",
    ),
    a(
        "256277009",
        "SNOMED-CT",
        "Grass pollen (substance)",
        "environment",
    ),
    a(
        "288328004",
        "SNOMED-CT",
        "Bee venom (substance)",
        "environment",
    ),
    a("762952008", "SNOMED-CT", "Peanut (substance)", "food"),
    a(
        "102263004",
        "SNOMED-CT",
        "Eggs (edible) (substance)",
        "food",
    ),
    a("3718001", "SNOMED-CT", "Cow's milk (substance)", "food"),
    a("735029006", "SNOMED-CT", "Shellfish (substance)", "food"),
    a("227493005", "SNOMED-CT", "Cashew nut (substance)", "food"),
    a(
        "442571000124108",
        "SNOMED-CT",
        "Tree nut (substance)",
        "food",
    ),
    a("7980", "RxNorm", "Penicillin G", "medication"),
    a("1191", "RxNorm", "Aspirin", "medication"),
];

pub(crate) const REACTIONS: &[Code] = &[
    c("247472004", "Wheal (finding)"),
    c("271807003", "Eruption of skin (disorder)"),
    c("418290006", "Itching (finding)"),
    c("76067001", "Sneezing"),
    c("267036007", "Dyspnea (finding)"),
    c("402387002", "Allergic angioedema (disorder)"),
    c("49727002", "Cough (finding)"),
    c("878820003", "Rhinoconjunctivitis (disorder)"),
    c("39579001", "Anaphylaxis (disorder)"),
    c("422587007", "Nausea (finding)"),
    c("43116000", "Eczema (disorder)"),
    c("62315008", "Diarrhea (finding)"),
    c("21522001", "Abdominal pain (finding)"),
    c("64305001", "Urticaria (disorder)"),
];

/// COVID-19 isolation supplies (code, per-day quantity range).
pub(crate) const ISOLATION_SUPPLIES: &[(Code, (i64, i64))] = &[
    (
        c(
            "409534002",
            "Disposable air-purifying respirator (physical object)",
        ),
        (1, 3),
    ),
    (
        c(
            "713779008",
            "Nitrile examination/treatment glove  non-powdered  sterile (physical object)",
        ),
        (12, 30),
    ),
    (
        c("469673003", "Isolation gown  single-use (physical object)"),
        (2, 6),
    ),
    (c("706724001", "Face shield (physical object)"), (1, 2)),
];
pub(crate) const GLUCOSE_STRIPS: Code = c(
    "337388004",
    "Blood glucose testing strips (physical object)",
);

/// An imaging study shape.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Imaging {
    pub bodysite: Code,
    pub modality: Code,
    pub sop: Code,
    pub procedure: Proc,
}

pub(crate) const CHEST_DX: Imaging = Imaging {
    bodysite: c("51185008", "Chest"),
    modality: c("DX", "Digital Radiography"),
    sop: c("1.2.840.10008.5.1.4.1.1.1.1", "Digital X-Ray Image Storage"),
    procedure: CHEST_XRAY,
};
pub(crate) const ECHO_STUDY: Imaging = Imaging {
    bodysite: c("80891009", "Heart structure"),
    modality: c("US", "Ultrasound"),
    sop: c("1.2.840.10008.5.1.4.1.1.6.1", "Ultrasound Image Storage"),
    procedure: ECHO,
};
pub(crate) const HEAD_CT_STUDY: Imaging = Imaging {
    bodysite: c("69536005", "Head"),
    modality: c("CT", "Computed Tomography"),
    sop: c("1.2.840.10008.5.1.4.1.1.2", "CT Image Storage"),
    procedure: HEAD_CT,
};

/// A Massachusetts town: name, county, ZIP codes, centre latitude and longitude.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Town {
    pub name: &'static str,
    pub county: &'static str,
    pub zips: &'static [&'static str],
    pub lat: f64,
    pub lon: f64,
}

const fn t(
    name: &'static str,
    county: &'static str,
    zips: &'static [&'static str],
    lat: f64,
    lon: f64,
) -> Town {
    Town {
        name,
        county,
        zips,
        lat,
        lon,
    }
}

pub(crate) const TOWNS: &[Town] = &[
    t(
        "Boston",
        "Suffolk County",
        &[
            "02108", "02111", "02115", "02116", "02118", "02119", "02120", "02121", "02124",
            "02125", "02127", "02128", "02130", "02131", "02132", "02134", "02135", "02136",
        ],
        42.332,
        -71.070,
    ),
    t("Chelsea", "Suffolk County", &["02150"], 42.392, -71.033),
    t("Revere", "Suffolk County", &["02151"], 42.412, -71.012),
    t("Winthrop", "Suffolk County", &["02152"], 42.376, -70.983),
    t(
        "Cambridge",
        "Middlesex County",
        &["02138", "02139", "02140", "02141", "02142"],
        42.375,
        -71.111,
    ),
    t(
        "Somerville",
        "Middlesex County",
        &["02143", "02144", "02145"],
        42.390,
        -71.101,
    ),
    t(
        "Lowell",
        "Middlesex County",
        &["01850", "01851", "01852", "01854"],
        42.636,
        -71.318,
    ),
    t(
        "Newton",
        "Middlesex County",
        &["02458", "02459", "02460", "02461", "02465", "02466"],
        42.337,
        -71.209,
    ),
    t(
        "Framingham",
        "Middlesex County",
        &["01701", "01702"],
        42.279,
        -71.416,
    ),
    t(
        "Waltham",
        "Middlesex County",
        &["02451", "02452", "02453"],
        42.376,
        -71.235,
    ),
    t("Malden", "Middlesex County", &["02148"], 42.425, -71.066),
    t("Medford", "Middlesex County", &["02155"], 42.418, -71.106),
    t("Everett", "Middlesex County", &["02149"], 42.408, -71.054),
    t("Woburn", "Middlesex County", &["01801"], 42.479, -71.152),
    t(
        "Burlington",
        "Middlesex County",
        &["01803"],
        42.505,
        -71.196,
    ),
    t(
        "Lexington",
        "Middlesex County",
        &["02420", "02421"],
        42.443,
        -71.229,
    ),
    t(
        "Arlington",
        "Middlesex County",
        &["02474", "02476"],
        42.415,
        -71.156,
    ),
    t(
        "Marlborough",
        "Middlesex County",
        &["01752"],
        42.346,
        -71.552,
    ),
    t("Natick", "Middlesex County", &["01760"], 42.283, -71.349),
    t("Watertown", "Middlesex County", &["02472"], 42.371, -71.183),
    t(
        "Chelmsford",
        "Middlesex County",
        &["01824"],
        42.600,
        -71.367,
    ),
    t("Billerica", "Middlesex County", &["01821"], 42.558, -71.269),
    t(
        "Worcester",
        "Worcester County",
        &[
            "01602", "01603", "01604", "01605", "01606", "01607", "01609", "01610",
        ],
        42.263,
        -71.802,
    ),
    t("Fitchburg", "Worcester County", &["01420"], 42.583, -71.802),
    t(
        "Leominster",
        "Worcester County",
        &["01453"],
        42.525,
        -71.760,
    ),
    t(
        "Shrewsbury",
        "Worcester County",
        &["01545"],
        42.296,
        -71.713,
    ),
    t(
        "Springfield",
        "Hampden County",
        &["01103", "01104", "01105", "01107", "01108", "01109"],
        42.101,
        -72.590,
    ),
    t("Holyoke", "Hampden County", &["01040"], 42.204, -72.616),
    t(
        "Chicopee",
        "Hampden County",
        &["01013", "01020"],
        42.149,
        -72.608,
    ),
    t("Westfield", "Hampden County", &["01085"], 42.125, -72.749),
    t("Agawam", "Hampden County", &["01001"], 42.070, -72.615),
    t(
        "Lynn",
        "Essex County",
        &["01901", "01902", "01904", "01905"],
        42.467,
        -70.949,
    ),
    t("Salem", "Essex County", &["01970"], 42.519, -70.897),
    t("Peabody", "Essex County", &["01960"], 42.528, -70.929),
    t("Beverly", "Essex County", &["01915"], 42.558, -70.880),
    t(
        "Haverhill",
        "Essex County",
        &["01830", "01832", "01835"],
        42.776,
        -71.077,
    ),
    t(
        "Lawrence",
        "Essex County",
        &["01840", "01841", "01843"],
        42.707,
        -71.163,
    ),
    t("Methuen", "Essex County", &["01844"], 42.726, -71.191),
    t("Andover", "Essex County", &["01810"], 42.658, -71.137),
    t("Gloucester", "Essex County", &["01930"], 42.616, -70.662),
    t(
        "Brockton",
        "Plymouth County",
        &["02301", "02302"],
        42.083,
        -71.018,
    ),
    t("Plymouth", "Plymouth County", &["02360"], 41.958, -70.667),
    t(
        "Quincy",
        "Norfolk County",
        &["02169", "02170", "02171"],
        42.253,
        -71.002,
    ),
    t("Braintree", "Norfolk County", &["02184"], 42.207, -71.000),
    t(
        "Weymouth",
        "Norfolk County",
        &["02188", "02189", "02190", "02191"],
        42.221,
        -70.940,
    ),
    t(
        "Needham",
        "Norfolk County",
        &["02492", "02494"],
        42.281,
        -71.237,
    ),
    t("Dedham", "Norfolk County", &["02026"], 42.242, -71.166),
    t("Norwood", "Norfolk County", &["02062"], 42.195, -71.200),
    t("Milton", "Norfolk County", &["02186"], 42.250, -71.066),
    t(
        "Brookline",
        "Norfolk County",
        &["02445", "02446"],
        42.332,
        -71.121,
    ),
    t("Franklin", "Norfolk County", &["02038"], 42.083, -71.397),
    t(
        "New Bedford",
        "Bristol County",
        &["02740", "02744", "02745", "02746"],
        41.636,
        -70.934,
    ),
    t(
        "Fall River",
        "Bristol County",
        &["02720", "02721", "02723", "02724"],
        41.701,
        -71.155,
    ),
    t("Taunton", "Bristol County", &["02780"], 41.900, -71.090),
    t("Attleboro", "Bristol County", &["02703"], 41.944, -71.285),
    t(
        "Dartmouth",
        "Bristol County",
        &["02747", "02748"],
        41.614,
        -70.997,
    ),
    t(
        "Barnstable",
        "Barnstable County",
        &["02630", "02601"],
        41.700,
        -70.300,
    ),
    t("Falmouth", "Barnstable County", &["02540"], 41.551, -70.615),
    t(
        "Pittsfield",
        "Berkshire County",
        &["01201"],
        42.450,
        -73.245,
    ),
    t(
        "Northampton",
        "Hampshire County",
        &["01060", "01062"],
        42.325,
        -72.641,
    ),
    t(
        "Amherst",
        "Hampshire County",
        &["01002", "01003"],
        42.373,
        -72.520,
    ),
    t("Greenfield", "Franklin County", &["01301"], 42.588, -72.599),
    t("Nantucket", "Nantucket County", &["02554"], 41.283, -70.099),
];

/// Birthplaces abroad: city, region, country code.
pub(crate) const FOREIGN_BIRTHPLACES: &[(&str, &str, &str)] = &[
    ("Guadalajara", "Jalisco", "MX"),
    ("Santo Domingo", "National District", "DO"),
    ("Lisbon", "Lisbon", "PT"),
    ("Mumbai", "Maharashtra", "IN"),
    ("Shanghai", "Shanghai Municipality", "CN"),
    ("Port-au-Prince", "Ouest", "HT"),
    ("Kingston", "Kingston Parish", "JM"),
    ("Ho Chi Minh City", "Ho Chi Minh", "VN"),
    ("San Salvador", "San Salvador", "SV"),
    ("Manila", "National Capital Region", "PH"),
    ("Praia", "Santiago", "CV"),
    ("Bogota", "Cundinamarca", "CO"),
];

/// Provider specialities and their relative frequency.
pub(crate) const SPECIALITIES: &[(&str, u32)] = &[
    ("GENERAL PRACTICE", 40),
    ("INTERNAL MEDICINE", 18),
    ("NURSE PRACTITIONER", 12),
    ("PHYSICAL THERAPY", 7),
    ("AUDIOLOGIST", 4),
    ("CLINICAL PSYCHOLOGIST", 3),
    ("CLINICAL SOCIAL WORKER", 3),
    ("EMERGENCY MEDICINE", 4),
    ("FAMILY PRACTICE", 3),
    ("OPTOMETRY", 2),
    ("PHYSICIAN ASSISTANT", 4),
    ("PSYCHIATRY", 2),
    ("CHIROPRACTIC", 1),
];

/// Upper-case street names for organisation addresses.
pub(crate) const ORG_STREETS: &[&str] = &[
    "MAIN STREET",
    "MAIN ST",
    "PARK STREET",
    "HIGH STREET",
    "WASHINGTON ST",
    "ELM STREET",
    "CENTRAL AVE",
    "BOSTON RD",
    "ROUTE 9",
    "STATE ST",
    "SCHOOL STREET",
    "CHURCH ST",
    "MAPLE AVE",
    "UNION STREET",
    "PLEASANT ST",
    "WATER STREET",
    "SUMMER ST",
    "WINTER STREET",
    "MILL RD",
    "NORTH ST",
    "SOUTH ST",
    "LOCUST STREET",
    "WARREN AVE",
    "NEW STATE HWY",
    "COMMONWEALTH AVE",
];

/// Organisation name patterns: `{T}` is the town, `{F}` a family name.
pub(crate) const CLINIC_NAMES: &[&str] = &[
    "{T} FAMILY HEALTH CENTER",
    "{T} MEDICAL GROUP",
    "{F} MEDICAL ASSOCIATES PC",
    "{T} PEDIATRICS INC",
    "{T} PRIMARY CARE LLC",
    "{F} & {G} INTERNAL MEDICINE",
    "{T} COMMUNITY HEALTH CENTER INC",
    "{T} URGENT CARE LLC",
];
pub(crate) const HOSPITAL_NAMES: &[&str] = &[
    "{T} GENERAL HOSPITAL",
    "{F} MEMORIAL HOSPITAL",
    "{T} MEDICAL CENTER",
    "{T} COMMUNITY HOSPITAL INC",
    "{F} REGIONAL HOSPITAL",
];

/// Telephone area codes of Massachusetts.
pub(crate) const AREA_CODES: &[&str] = &["617", "508", "413", "978", "781", "774", "339", "351"];

/// The payers: name, kind, address, city, state, ZIP, phone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PayerKind {
    Medicare,
    Medicaid,
    Dual,
    Private,
    None,
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct PayerDef {
    pub name: &'static str,
    pub kind: PayerKind,
    pub address: &'static str,
    pub city: &'static str,
    pub state: &'static str,
    pub zip: &'static str,
    pub phone: &'static str,
    /// Share of a bill the payer covers, in per cent.
    pub coverage: i64,
    /// Monthly premium in cents.
    pub premium: i64,
}

#[allow(clippy::too_many_arguments)]
const fn payer(
    name: &'static str,
    kind: PayerKind,
    address: &'static str,
    city: &'static str,
    state: &'static str,
    zip: &'static str,
    phone: &'static str,
    coverage: i64,
    premium: i64,
) -> PayerDef {
    PayerDef {
        name,
        kind,
        address,
        city,
        state,
        zip,
        phone,
        coverage,
        premium,
    }
}

/// Public programmes keep their names; private insurers are invented.
pub(crate) const PAYERS: &[PayerDef] = &[
    payer(
        "Dual Eligible",
        PayerKind::Dual,
        "200 Independence Ave SW",
        "Washington",
        "DC",
        "20201",
        "1-800-555-0101",
        100,
        0,
    ),
    payer(
        "Medicare",
        PayerKind::Medicare,
        "200 Independence Ave SW",
        "Washington",
        "DC",
        "20201",
        "1-800-555-0102",
        80,
        17_490,
    ),
    payer(
        "Medicaid",
        PayerKind::Medicaid,
        "200 Independence Ave SW",
        "Washington",
        "DC",
        "20201",
        "1-800-555-0103",
        100,
        0,
    ),
    payer(
        "Granite Mutual Health",
        PayerKind::Private,
        "40 Harbor Point Dr",
        "Portsmouth",
        "NH",
        "03801",
        "1-800-555-0111",
        75,
        31_250,
    ),
    payer(
        "Bayside Health Plan",
        PayerKind::Private,
        "1200 Seaport Blvd",
        "Providence",
        "RI",
        "02903",
        "1-800-555-0112",
        70,
        29_800,
    ),
    payer(
        "Northway Assurance",
        PayerKind::Private,
        "77 Commerce Way",
        "Hartford",
        "CT",
        "06103",
        "1-800-555-0113",
        80,
        35_400,
    ),
    payer(
        "Keystone Care Partners",
        PayerKind::Private,
        "500 Market St",
        "Harrisburg",
        "PA",
        "17101",
        "1-800-555-0114",
        65,
        27_100,
    ),
    payer(
        "Harborview Insurance",
        PayerKind::Private,
        "9 Lighthouse Ln",
        "Portland",
        "ME",
        "04101",
        "1-800-555-0115",
        70,
        30_900,
    ),
    payer(
        "Summit Benefit Group",
        PayerKind::Private,
        "3100 Ridge Pkwy",
        "Albany",
        "NY",
        "12207",
        "1-800-555-0116",
        85,
        38_700,
    ),
    payer("NO_INSURANCE", PayerKind::None, "", "", "", "", "", 0, 0),
];

#[cfg(test)]
pub(crate) mod checks {
    //! Check digits of SNOMED CT (Verhoeff) and LOINC (mod 10) identifiers.

    const D: [[u8; 10]; 10] = [
        [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
        [1, 2, 3, 4, 0, 6, 7, 8, 9, 5],
        [2, 3, 4, 0, 1, 7, 8, 9, 5, 6],
        [3, 4, 0, 1, 2, 8, 9, 5, 6, 7],
        [4, 0, 1, 2, 3, 9, 5, 6, 7, 8],
        [5, 9, 8, 7, 6, 0, 4, 3, 2, 1],
        [6, 5, 9, 8, 7, 1, 0, 4, 3, 2],
        [7, 6, 5, 9, 8, 2, 1, 0, 4, 3],
        [8, 7, 6, 5, 9, 3, 2, 1, 0, 4],
        [9, 8, 7, 6, 5, 4, 3, 2, 1, 0],
    ];
    const P: [[u8; 10]; 8] = [
        [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
        [1, 5, 7, 6, 2, 8, 3, 0, 9, 4],
        [5, 8, 0, 3, 7, 9, 6, 1, 4, 2],
        [8, 9, 1, 6, 0, 4, 3, 5, 2, 7],
        [9, 4, 5, 3, 1, 2, 6, 8, 7, 0],
        [4, 2, 8, 6, 5, 7, 3, 9, 0, 1],
        [2, 7, 9, 3, 8, 0, 6, 4, 1, 5],
        [7, 0, 4, 6, 9, 1, 3, 2, 5, 8],
    ];

    /// A SNOMED CT identifier: 6 to 18 digits, valid Verhoeff check digit.
    pub(crate) fn snomed_ok(code: &str) -> bool {
        if !(6..=18).contains(&code.len()) || !code.bytes().all(|b| b.is_ascii_digit()) {
            return false;
        }
        let mut c = 0u8;
        for (i, b) in code.bytes().rev().enumerate() {
            c = D[usize::from(c)][usize::from(P[i % 8][usize::from(b - b'0')])];
        }
        c == 0
    }

    /// A LOINC code `NNNNN-C` with its mod-10 check digit.
    pub(crate) fn loinc_ok(code: &str) -> bool {
        let Some((num, check)) = code.split_once('-') else {
            return false;
        };
        if check.len() != 1
            || num.is_empty()
            || !num.bytes().chain(check.bytes()).all(|b| b.is_ascii_digit())
        {
            return false;
        }
        let mut sum = 0u32;
        for (i, b) in num.bytes().rev().enumerate() {
            let d = u32::from(b - b'0');
            sum += if i % 2 == 0 {
                let x = d * 2;
                x / 10 + x % 10
            } else {
                d
            };
        }
        (10 - sum % 10) % 10 == u32::from(check.as_bytes()[0] - b'0')
    }
}

#[cfg(test)]
mod tests {
    use super::checks::*;
    use super::*;

    fn all_snomed() -> Vec<Code> {
        let mut v = Vec::new();
        for e in [
            WELL_CHILD,
            GENERAL_EXAM,
            SYMPTOM,
            PROBLEM,
            FOLLOW_UP,
            HTN_FOLLOW_UP,
            ASTHMA_FOLLOW_UP,
            PRENATAL_INITIAL,
            PRENATAL,
            POSTNATAL,
            ALLERGY_ASSESSMENT,
            CHECK_UP,
            CONSULTATION,
            EMERGENCY,
            OBSTETRIC_ADMISSION,
            INPATIENT,
            ISOLATION,
            URGENT_CARE,
            DEATH_CERTIFICATION,
        ] {
            v.push(e.code);
        }
        for pr in [
            MED_RECONCILIATION,
            SOCIAL_CARE_NEEDS,
            SUBSTANCE_USE,
            DEPRESSION_SCREEN,
            PHQ2_SCREEN,
            AUDIT_C,
            ANXIETY,
            CRAFFT,
            MORSE_FALL,
            COLONOSCOPY,
            PREGNANCY_TEST,
            FETAL_ULTRASOUND,
            FUNDAL_HEIGHT,
            FETAL_HEART,
            PHYSICAL_EXAM,
            CESAREAN,
            RESPIRATORY_FUNCTION,
            THROAT_CULTURE,
            SUTURE,
            APPENDECTOMY,
            PCI,
            IMMUNOTHERAPY,
            ALLERGY_SCREEN,
            CHEST_XRAY,
            ECHO,
            HEAD_CT,
            IM_INJECTION,
        ] {
            v.push(pr.code);
        }
        for ac in ACUTES {
            v.push(ac.cond);
            v.extend(ac.careplan);
            v.extend(ac.device);
            v.extend(ac.imaging.map(|i| i.bodysite));
        }
        for ch in CHRONICS {
            v.push(ch.cond);
            v.extend(ch.careplan);
            v.extend(ch.device);
        }
        v.extend(FINDINGS.iter().map(|f| f.0));
        v.extend([
            NORMAL_PREGNANCY,
            ANTENATAL_CARE,
            SELF_CARE,
            FOOD_ALLERGY_DIET,
            GLUCOSE_STRIPS,
        ]);
        v.extend(
            ALLERGENS
                .iter()
                .filter(|a| a.system == "SNOMED-CT")
                .map(|a| a.code),
        );
        v.extend(REACTIONS.iter().copied());
        v.extend(ISOLATION_SUPPLIES.iter().map(|s| s.0));
        v
    }

    #[test]
    fn snomed_codes_have_valid_check_digits() {
        assert!(snomed_ok("22298006"));
        assert!(!snomed_ok("22298007"));
        for code in all_snomed() {
            assert!(snomed_ok(code.code), "{} {}", code.code, code.desc);
        }
    }

    #[test]
    fn loinc_codes_have_valid_check_digits() {
        assert!(loinc_ok("8302-2"));
        assert!(!loinc_ok("8302-3"));
        let mut all: Vec<Obs> = vec![
            BMI_PERCENTILE,
            WEIGHT_FOR_LENGTH,
            DIASTOLIC,
            SYSTOLIC,
            HEART_RATE,
            RESPIRATORY_RATE,
            PAIN,
            TEMPERATURE,
            TOBACCO,
            PHQ2,
            GAD7,
            AUDIT_C_SCORE,
            HARK,
            DAST10,
            MORSE,
            HOUSEHOLD,
            HOUSING,
            WORK,
            STRESS,
            A1C,
        ];
        all.extend_from_slice(METABOLIC_PANEL);
        all.extend_from_slice(LIPID_PANEL);
        all.extend_from_slice(CBC_PANEL);
        for ob in all {
            assert!(loinc_ok(ob.code.code), "{} {}", ob.code.code, ob.code.desc);
        }
        for code in [HEIGHT, WEIGHT, BMI, HEAD_CIRCUMFERENCE, CAUSE_OF_DEATH] {
            assert!(loinc_ok(code.code), "{}", code.code);
        }
    }

    #[test]
    fn descriptions_have_no_commas_like_synthea() {
        for code in all_snomed() {
            assert!(!code.desc.contains(','), "{}", code.desc);
        }
        for t in TOWNS {
            assert!(!t.zips.is_empty());
        }
    }
}
