-- One row per recorded condition episode: the person, the SNOMED CT code and
-- description, start and end dates, the year it started, how many days it lasted (null
-- while still active) and the class of the encounter that recorded it.
SELECT
    c.patient AS person_id,
    c.code,
    c.description,
    c.start,
    c.stop,
    CAST(date_part('year', c.start) AS INT) AS start_year,
    CAST(c.stop AS BIGINT) - CAST(c.start AS BIGINT) AS duration_days,
    e.encounterclass
FROM conditions c
LEFT JOIN encounters e ON e.id = c.encounter
