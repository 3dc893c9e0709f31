-- One row per patient: sex, race, ethnicity, birth year, age and 10-year age band on
-- 2026-01-01 (from the month of birth), whether they have died, state and ZIP3.
SELECT
    person_id,
    sex,
    race,
    ethnicity,
    birth_year,
    age,
    -- literal bands (no text built per row); floor(age / 10) * 10 as "lo-hi" below 0
    CASE
        WHEN age >= 90 THEN '90+'
        WHEN age >= 0 THEN CASE CAST(age / 10 AS INT)
            WHEN 0 THEN '0-9'
            WHEN 1 THEN '10-19'
            WHEN 2 THEN '20-29'
            WHEN 3 THEN '30-39'
            WHEN 4 THEN '40-49'
            WHEN 5 THEN '50-59'
            WHEN 6 THEN '60-69'
            WHEN 7 THEN '70-79'
            WHEN 8 THEN '80-89'
        END
        ELSE concat(
            CAST(CAST(floor(age / 10.0) * 10 AS INT) AS VARCHAR),
            '-',
            CAST(CAST(floor(age / 10.0) * 10 + 9 AS INT) AS VARCHAR)
        )
    END AS age_band,
    deceased,
    state,
    zip3
FROM (
    SELECT
        id AS person_id,
        gender AS sex,
        race,
        ethnicity,
        CAST(date_part('year', birthdate) AS INT) AS birth_year,
        CAST(floor((CAST(DATE '2026-01-01' AS BIGINT) - CAST(birthdate AS BIGINT)) / 365.25) AS INT) AS age,
        deathdate IS NOT NULL AS deceased,
        state,
        zip AS zip3
    FROM patients
)
