//! Runs every `sql/test_files/*.slt` against the governed query path (see the crate
//! docs). `-- --complete` rewrites the expected results; any other argument filters
//! files by name.

#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::process::ExitCode;

use dhub_sqllogictest::{Db, fixture, repo, scope_of};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--") || a == "--complete")
        .collect();
    let complete = args.iter().any(|a| a == "--complete");
    let filters: Vec<&String> = args.iter().filter(|a| *a != "--complete").collect();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let dir = repo().join("sql/test_files");
    let mut files: Vec<_> = match std::fs::read_dir(&dir) {
        Ok(rd) => rd
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "slt"))
            .collect(),
        Err(e) => {
            eprintln!("{}: {e}", dir.display());
            return ExitCode::FAILURE;
        }
    };
    files.sort();
    files.retain(|f| {
        filters.is_empty()
            || filters
                .iter()
                .any(|x| f.to_string_lossy().contains(x.as_str()))
    });
    if files.is_empty() {
        eprintln!("no .slt files matched in {}", dir.display());
        return ExitCode::FAILURE;
    }
    let fx = match rt.block_on(fixture()) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("building the golden-file dataset failed: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut failed = 0;
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap_or_default();
        let scope = match scope_of(&text, &fx.release) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("{}: {e}", f.display());
                failed += 1;
                continue;
            }
        };
        let db = Db {
            service: fx.service.clone(),
            scope,
        };
        let mut runner = sqllogictest::Runner::new(move || {
            let db = db.clone();
            async move { Ok::<_, dhub_query::QueryError>(db) }
        });
        let res: Result<(), String> = rt.block_on(async {
            if complete {
                runner
                    .update_test_file(
                        f,
                        " ",
                        sqllogictest::default_validator,
                        sqllogictest::default_normalizer,
                        sqllogictest::default_column_validator,
                    )
                    .await
                    .map_err(|e| e.to_string())
            } else {
                runner
                    .run_file_async(f)
                    .await
                    .map_err(|e| e.display(true).to_string())
            }
        });
        match res {
            Ok(()) => println!(
                "ok      {}",
                f.file_name().unwrap_or_default().to_string_lossy()
            ),
            Err(e) => {
                failed += 1;
                println!("FAILED  {}\n{e}", f.display());
            }
        }
    }
    if failed > 0 {
        println!(
            "{failed} of {} golden files failed (rerun with `-- --complete` to accept new output)",
            files.len()
        );
        ExitCode::FAILURE
    } else {
        println!("{} golden files passed", files.len());
        ExitCode::SUCCESS
    }
}
