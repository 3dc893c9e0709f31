-- Cardiometabolic cohort for an innovation-hub partner: one row per patient with sex, a
-- broad age group (on 2026-01-01), and counts of their encounters and of their
-- diabetes, hypertension and hyperlipidaemia diagnoses (SNOMED CT 44054006, 59621000,
-- 55822004). `patient` is re-keyed to the project's own pseudonym by [rekey] in the spec;
-- sex and age group are the quasi-identifiers the k-anonymity check runs over.
SELECT
    d.person_id AS patient,
    d.sex,
    CASE
        WHEN d.age < 18 THEN '0-17'
        WHEN d.age < 40 THEN '18-39'
        WHEN d.age < 65 THEN '40-64'
        ELSE '65+'
    END AS age_group,
    count(DISTINCT e.id) AS encounters,
    count(DISTINCT CASE WHEN c.code = '44054006' THEN c.start END) AS diabetes_diagnoses,
    count(DISTINCT CASE WHEN c.code = '59621000' THEN c.start END) AS hypertension_diagnoses,
    count(DISTINCT CASE WHEN c.code = '55822004' THEN c.start END) AS hyperlipidaemia_diagnoses
FROM demographics d
LEFT JOIN encounters e ON e.patient = d.person_id
LEFT JOIN conditions c ON c.patient = d.person_id
GROUP BY d.person_id, d.sex, d.age
