//! Disclosure control over HTTP, for the holes closed in issue 17: an execution error is
//! no side channel (the answers with a hidden condition true and false are byte for byte
//! the same but for the query id), aggregates restricted to a few persons are
//! suppressed cell by cell (order statistics too), extreme percentiles and identifier
//! literals are refused, and a
//! user's malformed or oversized regular expression is a 400 with a message.

use crate::support::*;

/// The status and the body without its query id.
fn answer(r: &Resp) -> (u16, String) {
    let mut v = r.json();
    if let Some(o) = v.as_object_mut() {
        o.remove("query_id");
    }
    (r.status, v.to_string())
}

#[test]
fn errors_are_no_side_channel_and_restricted_aggregates_are_suppressed() {
    let dir = released_store("synthea", "synthea", 300, 5, "r1");
    let d = dir.path();
    create_project(d, "agg", false);
    let t = add_researcher(d, "ada", "agg");
    let s = Server::start(d, &[]);
    let q = |sql: &str| query_as(&s.base, &t, sql, "json");

    // the hidden condition: true for a few persons, false for everyone
    let (yes, no) = (
        "race = 'native' AND ethnicity = 'hispanic'",
        "race = 'martian'",
    );
    let few = q(&format!("SELECT count(*) FROM patients WHERE {yes}"));
    assert_eq!(few.status, 200, "{}", text(&few.body));
    for failing in [
        "CAST(healthcare_expenses AS BIGINT) / 0",
        "CAST(healthcare_expenses AS BIGINT) % 0",
        "CAST(concat('x', gender) AS INT)",
        "CAST(to_date(concat('x', gender)) AS VARCHAR)",
        "CAST(make_date(2020, 13, 1 + CAST(healthcare_expenses * 0 AS INT)) AS VARCHAR)",
        "sqrt(-1 - healthcare_expenses)",
        "CAST(healthcare_expenses * 1e30 AS BIGINT)",
        "(CAST(healthcare_expenses * 0 AS BIGINT) - 9223372036854775807 - 1) / -1",
        "CAST(regexp_like('a', concat('(', gender)) AS INT)",
        "CAST(abs(CAST(healthcare_expenses * 0 AS BIGINT) - 9223372036854775807 - 1) AS DOUBLE)",
    ] {
        let sql = |cond: &str| {
            format!(
                "SELECT gender, count(*) FROM patients WHERE (CASE WHEN {cond} THEN {failing} ELSE NULL END) IS NULL OR gender IS NOT NULL GROUP BY gender ORDER BY gender"
            )
        };
        let (a, b) = (q(&sql(yes)), q(&sql(no)));
        assert_eq!(a.status, 200, "{failing}: {}", text(&a.body));
        assert_eq!(answer(&a), answer(&b), "{failing}");
    }

    // an aggregate restricted to a few persons by FILTER or CASE: the cell is NULL and
    // the disclosure record says so
    for sql in [
        format!("SELECT count(*) AS n, avg(healthcare_expenses) FILTER (WHERE {yes}) AS v FROM patients"),
        format!("SELECT count(*) AS n, avg(CASE WHEN {yes} THEN healthcare_expenses END) AS v FROM patients"),
        format!("SELECT count(*) AS n, sum(CASE WHEN {yes} THEN healthcare_expenses ELSE 1 END) AS v FROM patients"),
        format!("SELECT count(*) AS n, median(healthcare_expenses) FILTER (WHERE {yes}) AS v FROM patients"),
        "SELECT count(*) AS n, percentile_cont(0.99) WITHIN GROUP (ORDER BY healthcare_expenses) AS v FROM patients".to_owned(),
    ] {
        let r = q(&sql);
        assert_eq!(r.status, 200, "{sql}: {}", text(&r.body));
        let body = r.json();
        assert_eq!(body["rows"][0][0], 300, "{body}");
        assert!(body["rows"][0][1].is_null(), "{sql}: {body}");
        let fired = body["disclosure"]["rules"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["rule"] == "restricted_cells" && r["fired"] == true);
        assert!(fired, "{body}");
    }

    // refused: identifier literals, order statistics
    for (sql, says) in [
        (
            "SELECT count(*), avg(healthcare_expenses) FILTER (WHERE id = '0123456789abcdef0123456789abcdef') FROM patients",
            "person identifier with a literal",
        ),
        (
            "SELECT count(*) FROM encounters WHERE patient IN ('0123456789abcdef0123456789abcdef')",
            "person identifier with a literal",
        ),
        (
            "SELECT approx_percentile_cont(healthcare_expenses, 1.0) FROM patients",
            "minimum or maximum",
        ),
        (
            "SELECT percentile_cont(0.0) WITHIN GROUP (ORDER BY healthcare_expenses) FROM patients",
            "minimum or maximum",
        ),
    ] {
        let r = q(sql);
        assert_eq!(r.status, 400, "{sql}: {}", text(&r.body));
        assert_eq!(r.code(), "refused", "{sql}");
        assert!(r.message().contains(says), "{sql}: {}", r.message());
    }

    // a malformed or oversized regular expression is the researcher's error: 400
    for pattern in ["(a{1000}){1000}", "(unclosed"] {
        let r = q(&format!(
            "SELECT gender, count(*) FROM patients WHERE regexp_like(gender, '{pattern}') GROUP BY gender"
        ));
        assert_eq!(r.status, 400, "{pattern}: {}", text(&r.body));
        assert!(
            r.message().contains("regular expression"),
            "{}",
            r.message()
        );
    }
}
