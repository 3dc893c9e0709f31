-- Cardiometabolic cohort for an innovation-hub partner: one row per patient with sex,
-- 10-year age band, whether they have died, and counts of their encounters and of their
-- diabetes, hypertension and hyperlipidaemia diagnoses (SNOMED CT 44054006, 59621000,
-- 55822004). `patient` is re-keyed to the project's own pseudonym by [rekey] in the spec.
SELECT
    d.person_id AS patient,
    d.sex,
    d.age_band,
    d.deceased,
    count(DISTINCT e.id) AS encounters,
    count(DISTINCT CASE WHEN c.code = '44054006' THEN c.start END) AS diabetes_diagnoses,
    count(DISTINCT CASE WHEN c.code = '59621000' THEN c.start END) AS hypertension_diagnoses,
    count(DISTINCT CASE WHEN c.code = '55822004' THEN c.start END) AS hyperlipidaemia_diagnoses
FROM demographics d
LEFT JOIN encounters e ON e.patient = d.person_id
LEFT JOIN conditions c ON c.patient = d.person_id
GROUP BY d.person_id, d.sex, d.age_band, d.deceased
