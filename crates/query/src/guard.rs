//! The SQL guard: the statement is checked as parsed SQL, **before** any planning, so
//! that nothing a researcher sends can open a file, change state or touch a table the
//! project was not granted while DataFusion resolves names.
//!
//! Admitted: exactly one statement that is a read-only query (`SELECT`, `WITH`,
//! `VALUES`, set operations) or `EXPLAIN` of one (not `EXPLAIN ANALYZE`, which runs
//! the query and prints per-operator row counts). Refused, with a message saying what is
//! allowed: DDL, DML, `COPY`, `CREATE EXTERNAL TABLE`, `SET`/`RESET`/`SHOW`, `PREPARE`,
//! transactions, `DESCRIBE`, `SELECT … INTO`, stacked statements, URL or path tables
//! (`FROM '/etc/passwd'`), table functions other than `generate_series`/`range`/`unnest`,
//! the functions in [`DENIED_FUNCTIONS`], and any table or view the project may not see
//! (the same message as for a table that does not exist, so nothing leaks).
//!
//! The statement's size is bounded before parsing ([`GuardLimits`]): its bytes, its
//! tokens (a flat chain of 20,000 `OR` terms passes the parser's nesting limit but
//! builds an expression tree deep enough to overflow a stack later) and its expression
//! nodes.

use std::collections::HashSet;
use std::ops::ControlFlow;

use datafusion::sql::parser::{DFParserBuilder, Statement as DfStatement};
use datafusion::sql::sqlparser::ast::{
    Expr, ObjectName, Query, Select, SetExpr, Statement, TableFactor, Visit, Visitor,
};
use datafusion::sql::sqlparser::dialect::GenericDialect;
use datafusion::sql::sqlparser::tokenizer::{Token, Tokenizer};

use crate::error::QueryError;

/// What the guard admits, in one sentence, for refusal messages.
pub const ALLOWED: &str = "only one read-only query is allowed: SELECT, WITH … SELECT, VALUES, UNION/INTERSECT/EXCEPT of those, or EXPLAIN of one";

/// Functions refused by name (they reveal the server, not the data).
pub const DENIED_FUNCTIONS: &[&str] = &["version", "current_user", "session_user", "user"];

/// Table functions a query may call in `FROM`.
pub const ALLOWED_TABLE_FUNCTIONS: &[&str] = &["generate_series", "range", "unnest"];

/// Size bounds checked before and just after parsing.
#[derive(Debug, Clone, Copy, serde::Serialize, serde::Deserialize)]
pub struct GuardLimits {
    /// Largest statement, bytes.
    pub max_sql_bytes: usize,
    /// Most tokens (words, literals, operators).
    pub max_tokens: usize,
    /// Most expression nodes in the parsed statement.
    pub max_expr_nodes: usize,
}

impl Default for GuardLimits {
    fn default() -> Self {
        Self {
            max_sql_bytes: 64 * 1024,
            max_tokens: 8_000,
            max_expr_nodes: 4_000,
        }
    }
}

/// A statement that passed the guard.
#[derive(Debug)]
pub struct Guarded {
    /// The parsed statement, ready for planning.
    pub statement: DfStatement,
    /// Whether it is an `EXPLAIN`.
    pub explain: bool,
}

/// The names a project's queries may use as tables.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    /// Granted tables and views (lower case).
    pub tables: HashSet<String>,
}

impl Catalog {
    fn allows(&self, name: &str) -> bool {
        self.tables.contains(name)
    }
}

fn not_found(name: &str) -> QueryError {
    QueryError::new(
        crate::error::ErrorCode::NotFound,
        format!(
            "table or view `{name}` does not exist or is not granted to this project; GET /v1/tables lists what you can query"
        ),
    )
}

/// Checks `sql` against the guard; returns the parsed statement to plan.
pub fn check(sql: &str, catalog: &Catalog, limits: &GuardLimits) -> Result<Guarded, QueryError> {
    if sql.len() > limits.max_sql_bytes {
        return Err(QueryError::refused(format!(
            "the statement is {} bytes; the limit is {} bytes",
            sql.len(),
            limits.max_sql_bytes
        )));
    }
    if sql.trim().is_empty() {
        return Err(QueryError::refused(format!(
            "the statement is empty; {ALLOWED}"
        )));
    }
    let dialect = GenericDialect {};
    let tokens = Tokenizer::new(&dialect, sql)
        .tokenize()
        .map_err(|e| QueryError::refused(format!("the SQL could not be read: {e}")))?;
    let significant = tokens
        .iter()
        .filter(|t| !matches!(t, Token::Whitespace(_)))
        .count();
    if significant > limits.max_tokens {
        return Err(QueryError::refused(format!(
            "the statement has {significant} tokens; the limit is {}: simplify it (for long lists of values use IN (…) or a join)",
            limits.max_tokens
        )));
    }
    let mut statements = DFParserBuilder::new(sql)
        .with_dialect(&dialect)
        .build()
        .and_then(|mut p| p.parse_statements())
        .map_err(|e| {
            QueryError::refused(format!("the SQL could not be parsed ({ALLOWED})"))
                .with_detail(e.to_string())
        })?;
    if statements.len() != 1 {
        return Err(QueryError::refused(format!(
            "{} statements were sent; {ALLOWED}",
            statements.len()
        )));
    }
    let Some(statement) = statements.pop_front() else {
        return Err(QueryError::refused(ALLOWED));
    };
    let (query, explain) = match &statement {
        DfStatement::Statement(s) => match s.as_ref() {
            Statement::Query(q) => (q.as_ref(), false),
            other => return Err(refuse_statement(other)),
        },
        DfStatement::Explain(e) => {
            if e.options.analyze {
                return Err(QueryError::refused(
                    "EXPLAIN ANALYZE runs the query and reports row counts per operator, which bypasses disclosure control; use EXPLAIN",
                ));
            }
            match e.statement.as_ref() {
                DfStatement::Statement(s) => match s.as_ref() {
                    Statement::Query(q) => (q.as_ref(), true),
                    other => return Err(refuse_statement(other)),
                },
                _ => {
                    return Err(QueryError::refused(format!(
                        "EXPLAIN of that statement is not allowed; {ALLOWED}"
                    )));
                }
            }
        }
        DfStatement::CreateExternalTable(_) => {
            return Err(QueryError::refused(format!(
                "CREATE EXTERNAL TABLE is not allowed; {ALLOWED}"
            )));
        }
        DfStatement::CopyTo(_) => {
            return Err(QueryError::refused(format!(
                "COPY is not allowed; {ALLOWED}"
            )));
        }
        DfStatement::Reset(_) => {
            return Err(QueryError::refused(format!(
                "RESET is not allowed; {ALLOWED}"
            )));
        }
    };
    let mut v = GuardVisitor {
        catalog,
        ctes: HashSet::new(),
        exprs: 0,
        max_exprs: limits.max_expr_nodes,
    };
    collect_ctes(query, &mut v.ctes);
    if let ControlFlow::Break(e) = query.visit(&mut v) {
        return Err(e);
    }
    Ok(Guarded { statement, explain })
}

fn refuse_statement(s: &Statement) -> QueryError {
    let what = match s {
        Statement::Insert(_)
        | Statement::Update(_)
        | Statement::Delete(_)
        | Statement::Merge(_)
        | Statement::Truncate(_) => "data changes (INSERT, UPDATE, DELETE, MERGE, TRUNCATE) are",
        Statement::CreateTable(_)
        | Statement::CreateView(_)
        | Statement::CreateIndex(_)
        | Statement::CreateSchema { .. }
        | Statement::CreateDatabase { .. }
        | Statement::CreateFunction(_)
        | Statement::Drop { .. }
        | Statement::AlterTable(_) => "schema changes (CREATE, DROP, ALTER) are",
        Statement::Copy { .. } => "COPY is",
        Statement::Set(_) => "SET is",
        Statement::Prepare { .. } | Statement::Execute { .. } | Statement::Deallocate { .. } => {
            "prepared statements (PREPARE, EXECUTE) are"
        }
        Statement::StartTransaction { .. }
        | Statement::Commit { .. }
        | Statement::Rollback { .. } => "transactions are",
        Statement::ExplainTable { .. } => "DESCRIBE is",
        Statement::ShowTables { .. }
        | Statement::ShowColumns { .. }
        | Statement::ShowVariable { .. }
        | Statement::ShowFunctions { .. } => "SHOW is",
        Statement::Explain { analyze: true, .. } => "EXPLAIN ANALYZE is",
        _ => "that statement is",
    };
    QueryError::refused(format!(
        "{what} not allowed; {ALLOWED} (tables and columns: GET /v1/tables or information_schema)"
    ))
}

fn collect_ctes(q: &Query, out: &mut HashSet<String>) {
    struct C<'a>(&'a mut HashSet<String>);
    impl Visitor for C<'_> {
        type Break = ();
        fn pre_visit_query(&mut self, q: &Query) -> ControlFlow<()> {
            if let Some(w) = &q.with {
                for t in &w.cte_tables {
                    self.0.insert(ident_name(&t.alias.name));
                }
            }
            ControlFlow::Continue(())
        }
    }
    let _ = q.visit(&mut C(out));
}

fn ident_name(i: &datafusion::sql::sqlparser::ast::Ident) -> String {
    if i.quote_style.is_some() {
        i.value.clone()
    } else {
        i.value.to_ascii_lowercase()
    }
}

struct GuardVisitor<'a> {
    catalog: &'a Catalog,
    ctes: HashSet<String>,
    exprs: usize,
    max_exprs: usize,
}

impl GuardVisitor<'_> {
    /// Resolves a table reference; `Err` when it may not be used.
    fn check_name(&self, name: &ObjectName) -> Result<(), QueryError> {
        let mut parts = Vec::new();
        for p in &name.0 {
            let Some(i) = p.as_ident() else {
                return Err(QueryError::refused("that table reference is not allowed"));
            };
            if matches!(i.quote_style, Some(q) if q != '"') {
                return Err(QueryError::refused(format!(
                    "files and URLs cannot be queried, only the project's tables; {ALLOWED}"
                )));
            }
            if i.value.contains(['/', '\\', ':']) || i.value.contains("..") {
                return Err(QueryError::refused(format!(
                    "files and URLs cannot be queried, only the project's tables; {ALLOWED}"
                )));
            }
            parts.push(ident_name(i));
        }
        let shown = parts.join(".");
        let (schema, table) = match parts.as_slice() {
            [t] => (None, t.as_str()),
            [s, t] => (Some(s.as_str()), t.as_str()),
            [c, s, t] if c == "datafusion" => (Some(s.as_str()), t.as_str()),
            _ => return Err(not_found(&shown)),
        };
        match schema {
            None if self.ctes.contains(table) || self.catalog.allows(table) => Ok(()),
            Some("public") if self.catalog.allows(table) => Ok(()),
            Some("information_schema")
                if matches!(table, "tables" | "columns" | "views" | "schemata") =>
            {
                Ok(())
            }
            _ => Err(not_found(&shown)),
        }
    }
}

impl Visitor for GuardVisitor<'_> {
    type Break = QueryError;

    fn pre_visit_query(&mut self, q: &Query) -> ControlFlow<QueryError> {
        if let SetExpr::Insert(_) | SetExpr::Update(_) | SetExpr::Delete(_) | SetExpr::Merge(_) =
            q.body.as_ref()
        {
            return ControlFlow::Break(QueryError::refused(format!(
                "data changes are not allowed; {ALLOWED}"
            )));
        }
        if !q.locks.is_empty() {
            return ControlFlow::Break(QueryError::refused(format!(
                "FOR UPDATE/SHARE is not allowed; {ALLOWED}"
            )));
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_select(&mut self, s: &Select) -> ControlFlow<QueryError> {
        if s.into.is_some() {
            return ControlFlow::Break(QueryError::refused(format!(
                "SELECT … INTO creates a table and is not allowed; {ALLOWED}"
            )));
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_statement(&mut self, s: &Statement) -> ControlFlow<QueryError> {
        ControlFlow::Break(refuse_statement(s))
    }

    fn pre_visit_table_factor(&mut self, t: &TableFactor) -> ControlFlow<QueryError> {
        let r = match t {
            TableFactor::Table { name, args, .. } => {
                if args.is_some() {
                    let f = name
                        .0
                        .last()
                        .and_then(|p| p.as_ident())
                        .map(ident_name)
                        .unwrap_or_default();
                    if name.0.len() == 1 && ALLOWED_TABLE_FUNCTIONS.contains(&f.as_str()) {
                        Ok(())
                    } else {
                        Err(QueryError::refused(format!(
                            "table function `{name}` is not allowed (allowed: {})",
                            ALLOWED_TABLE_FUNCTIONS.join(", ")
                        )))
                    }
                } else {
                    self.check_name(name)
                }
            }
            TableFactor::Derived { .. }
            | TableFactor::NestedJoin { .. }
            | TableFactor::UNNEST { .. } => Ok(()),
            _ => Err(QueryError::refused(format!(
                "that kind of FROM item is not allowed; use tables, views, subqueries, joins or UNNEST ({ALLOWED})"
            ))),
        };
        match r {
            Ok(()) => ControlFlow::Continue(()),
            Err(e) => ControlFlow::Break(e),
        }
    }

    fn pre_visit_expr(&mut self, e: &Expr) -> ControlFlow<QueryError> {
        self.exprs += 1;
        if self.exprs > self.max_exprs {
            return ControlFlow::Break(QueryError::refused(format!(
                "the statement has more than {} expressions; simplify it",
                self.max_exprs
            )));
        }
        if let Expr::Function(f) = e {
            let name = f
                .name
                .0
                .last()
                .and_then(|p| p.as_ident())
                .map(ident_name)
                .unwrap_or_default();
            if DENIED_FUNCTIONS.contains(&name.as_str()) {
                return ControlFlow::Break(QueryError::refused(format!(
                    "function `{name}` is not available to research queries"
                )));
            }
            if f.name.0.len() > 1 {
                return ControlFlow::Break(QueryError::refused(
                    "qualified function names are not allowed",
                ));
            }
        }
        ControlFlow::Continue(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cat() -> Catalog {
        Catalog {
            tables: ["patients", "encounters", "demographics"]
                .into_iter()
                .map(str::to_owned)
                .collect(),
        }
    }

    fn ok(sql: &str) {
        if let Err(e) = check(sql, &cat(), &GuardLimits::default()) {
            panic!("refused {sql:?}: {e}");
        }
    }

    fn refused(sql: &str) -> String {
        match check(sql, &cat(), &GuardLimits::default()) {
            Ok(_) => panic!("admitted {sql:?}"),
            Err(e) => e.message,
        }
    }

    #[test]
    fn read_only_queries_pass() {
        ok("SELECT gender, count(*) FROM patients GROUP BY gender");
        ok("with x as (select * from patients) select count(*) from x join encounters e on true");
        ok("VALUES (1), (2)");
        ok("SELECT 1 UNION ALL SELECT 2 EXCEPT SELECT 3");
        ok("EXPLAIN SELECT count(*) FROM public.patients");
        ok("SELECT * FROM generate_series(1, 10)");
        ok("SELECT table_name FROM information_schema.tables");
        ok("SELECT * FROM \"patients\"");
        ok("SELECT * FROM datafusion.public.demographics");
        ok(
            "SELECT (SELECT count(*) FROM encounters) FROM patients WHERE id IN (SELECT patient FROM encounters)",
        );
    }

    #[test]
    fn everything_else_is_refused() {
        for sql in [
            "INSERT INTO patients VALUES (1)",
            "DELETE FROM patients",
            "UPDATE patients SET id = 1",
            "DROP TABLE patients",
            "CREATE TABLE x AS SELECT 1",
            "CREATE VIEW v AS SELECT 1",
            "CREATE EXTERNAL TABLE t STORED AS CSV LOCATION '/etc/passwd'",
            "COPY patients TO '/tmp/x.csv'",
            "COPY (SELECT 1) TO 'file:///tmp/x.parquet'",
            "SET datafusion.execution.batch_size = 1",
            "RESET datafusion.execution.batch_size",
            "SHOW TABLES",
            "DESCRIBE patients",
            "PREPARE p AS SELECT 1",
            "EXECUTE p",
            "BEGIN",
            "COMMIT",
            "EXPLAIN ANALYZE SELECT * FROM patients",
            "SELECT 1; SELECT 2",
            "SELECT 1; DROP TABLE patients",
            "SELECT * INTO t FROM patients",
            "SELECT * FROM '/etc/passwd'",
            "SELECT * FROM 'file:///etc/passwd'",
            "SELECT * FROM 's3://bucket/x.parquet'",
            "SELECT * FROM \"/etc/passwd\"",
            "SELECT * FROM \"../store/patients\"",
            "SELECT * FROM read_csv('/etc/passwd')",
            "SELECT * FROM read_parquet('x')",
            "SELECT version()",
            "SELECT * FROM claims",
            "SELECT * FROM other_schema.patients",
            "SELECT * FROM information_schema.df_settings",
            "",
            "   ",
            "-- just a comment",
        ] {
            let m = refused(sql);
            assert!(!m.is_empty(), "{sql}");
        }
        // other projects' tables look exactly like missing ones
        let a = refused("SELECT * FROM claims");
        let b = refused("SELECT * FROM no_such_table_at_all");
        assert_eq!(
            a.replace("claims", "X"),
            b.replace("no_such_table_at_all", "X")
        );
    }

    #[test]
    fn size_bounds_hold_before_parsing() {
        let ors = format!("SELECT 1 WHERE {}", vec!["1=1"; 20_000].join(" OR "));
        assert!(refused(&ors).contains("bytes"));
        let ors = format!("SELECT 1 WHERE {}", vec!["1=1"; 3_000].join(" OR "));
        assert!(refused(&ors).contains("tokens"));
        let plus = format!("SELECT {}", vec!["1"; 5_000].join("+"));
        assert!(refused(&plus).contains("tokens"));
        let exprs = format!("SELECT {}", vec!["1"; 2_500].join("+"));
        assert!(
            refused(&exprs).contains("expressions"),
            "{}",
            refused(&exprs)
        );
        let big = format!("SELECT '{}'", "x".repeat(100_000));
        assert!(refused(&big).contains("bytes"));
        let nested = format!("SELECT {}1{}", "(".repeat(200), ")".repeat(200));
        refused(&nested);
    }
}
