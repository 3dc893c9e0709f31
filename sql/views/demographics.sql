-- One row per patient: sex, race, ethnicity, birth year, age and 10-year age band on
-- 2026-01-01 (from the month of birth), whether they have died, state and ZIP3.
SELECT
    id AS person_id,
    gender AS sex,
    race,
    ethnicity,
    CAST(date_part('year', birthdate) AS INT) AS birth_year,
    CAST(floor((CAST(DATE '2026-01-01' AS BIGINT) - CAST(birthdate AS BIGINT)) / 365.25) AS INT) AS age,
    CASE
        WHEN (CAST(DATE '2026-01-01' AS BIGINT) - CAST(birthdate AS BIGINT)) / 365.25 >= 90 THEN '90+'
        ELSE concat(
            CAST(CAST(floor((CAST(DATE '2026-01-01' AS BIGINT) - CAST(birthdate AS BIGINT)) / 3652.5) * 10 AS INT) AS VARCHAR),
            '-',
            CAST(CAST(floor((CAST(DATE '2026-01-01' AS BIGINT) - CAST(birthdate AS BIGINT)) / 3652.5) * 10 + 9 AS INT) AS VARCHAR)
        )
    END AS age_band,
    deathdate IS NOT NULL AS deceased,
    state,
    zip AS zip3
FROM patients
