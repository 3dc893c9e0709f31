//! `dhub project`, `dhub researcher`, `dhub audit`: the governance store from the CLI.
//! Every change is audited with the operating-system user as the actor.

use anyhow::{Context, bail};
use dhub_govern::{Approval, Govern, Grant, Mode, OutputPolicy, Suppression, parse_date};

use crate::args::{AuditCommand, Global, ProjectCommand, ProjectCreateArgs, TokenHolderCommand};

/// Who runs the CLI, for the audit log.
pub fn actor() -> String {
    std::env::var("DHUB_ACTOR")
        .or_else(|_| std::env::var("USER"))
        .unwrap_or_else(|_| "cli".into())
}

pub fn open(global: &Global) -> anyhow::Result<Govern> {
    Govern::open(&global.govern)
        .with_context(|| format!("opening the governance store {}", global.govern.display()))
}

/// The output policy from a preset and explicit flags (flags win).
fn policy(a: &ProjectCreateArgs) -> anyhow::Result<OutputPolicy> {
    let mut p = OutputPolicy::default();
    match a.sdc_preset.as_deref() {
        None => {}
        Some("uk-tre") => {
            p.min_cell = 10;
            p.rounding = 0;
            p.dominance_n = 2;
            p.dominance_k = 0.90;
            p.p_ratio = 0.10;
        }
        Some("opensafely") => {
            p.min_cell = 8;
            p.suppression = Suppression::Null;
            p.rounding = 5;
            p.dominance_k = 1.0;
            p.p_ratio = 0.0;
        }
        Some(other) => bail!("--sdc-preset `{other}` is not known; use uk-tre or opensafely"),
    }
    p.mode = a.mode.parse()?;
    if let Some(v) = a.min_cell {
        p.min_cell = v;
    }
    if let Some(v) = a.rounding {
        p.rounding = v;
    }
    if let Some(v) = &a.suppression {
        p.suppression = v.parse()?;
    }
    if let Some(d) = &a.dominance {
        let (n, k) = d
            .split_once(',')
            .context("--dominance takes N,K, e.g. 2,0.90")?;
        p.dominance_n = n
            .trim()
            .parse()
            .context("--dominance N must be a whole number")?;
        p.dominance_k = k
            .trim()
            .parse()
            .context("--dominance K must be a share, e.g. 0.90")?;
    }
    if let Some(v) = a.p_ratio {
        p.p_ratio = v;
    }
    if p.mode == Mode::Record || a.approved_by.is_some() {
        p.approval = match (&a.approved_by, &a.reason) {
            (Some(by), Some(reason)) => Some(Approval {
                by: by.clone(),
                reason: reason.clone(),
            }),
            _ => None,
        };
    }
    p.validate()?;
    Ok(p)
}

pub fn project(global: &Global, cmd: ProjectCommand) -> anyhow::Result<()> {
    match cmd {
        ProjectCommand::Create(a) => {
            let policy = policy(&a)?;
            let grant = Grant::parse(&a.tables)?;
            let expires = a.expires.as_deref().map(parse_date).transpose()?;
            // the release must exist and hold every granted table
            let store = dhub_store::Store::open(&global.store)?;
            let release = super::runtime()?
                .block_on(store.release(&a.release))
                .with_context(|| format!("checking release `{}`", a.release))?;
            if let Grant::Tables(ts) = &grant {
                for t in ts {
                    if !release.tables.contains_key(t) {
                        bail!(
                            "release `{}` has no table `{t}`; it has: {}",
                            a.release,
                            release
                                .tables
                                .keys()
                                .cloned()
                                .collect::<Vec<_>>()
                                .join(", ")
                        );
                    }
                }
            }
            let g = open(global)?;
            let p = g.create_project(
                &a.id,
                &a.title,
                &a.release,
                grant,
                policy,
                expires,
                &actor(),
            )?;
            println!(
                "created project {} over release {} ({} mode)",
                p.id, p.release, p.policy.mode
            );
        }
        ProjectCommand::Show { id } => {
            let p = open(global)?.project(&id)?;
            println!(
                "{}",
                serde_json::to_string_pretty(&p).context("serialising the project")?
            );
        }
        ProjectCommand::List => {
            for p in open(global)?.projects()? {
                println!(
                    "{}\t{}\trelease {}\ttables {}\t{}\texpires {}",
                    p.id,
                    p.policy.mode,
                    p.release,
                    p.tables,
                    p.title,
                    p.expires.map_or("never".to_owned(), |d| d.to_string())
                );
            }
        }
    }
    Ok(())
}

pub fn researcher(global: &Global, cmd: TokenHolderCommand) -> anyhow::Result<()> {
    holders(global, cmd, "researcher")
}

pub fn partner(global: &Global, cmd: TokenHolderCommand) -> anyhow::Result<()> {
    holders(global, cmd, "partner")
}

/// `dhub researcher …` and `dhub partner …`: the same commands over two kinds of token.
fn holders(global: &Global, cmd: TokenHolderCommand, kind: &str) -> anyhow::Result<()> {
    let g = open(global)?;
    let partner = kind == "partner";
    match cmd {
        TokenHolderCommand::Add {
            name,
            project,
            expires,
            allow_past_expiry,
        } => {
            let expires = expires.as_deref().map(parse_date).transpose()?;
            // a token that expired before it was issued can only be a mistyped date
            let today = chrono::Utc::now().date_naive();
            if let Some(d) = expires.filter(|d| *d < today && !allow_past_expiry) {
                anyhow::bail!(
                    "--expires {d} is in the past (today is {today}): the token would never work; give today or a later date"
                );
            }
            let token = if partner {
                g.add_partner(&name, &project, expires, &actor())?
            } else {
                g.add_researcher(&name, &project, expires, &actor())?
            };
            print_new_token(kind, &name, &project, &token);
        }
        TokenHolderCommand::Revoke { name } => {
            if partner {
                g.revoke_partner(&name, &actor())?;
            } else {
                g.revoke_researcher(&name, &actor())?;
            }
            eprintln!("revoked the token of {kind} {name}");
        }
        TokenHolderCommand::List => list_holders(if partner {
            g.partners()?
        } else {
            g.researchers()?
        }),
    }
    Ok(())
}

fn print_new_token(kind: &str, name: &str, project: &str, token: &str) {
    eprintln!(
        "{kind} {name} added to project {project}; their token is on stdout, shown this once (only its hash is kept)"
    );
    println!("{token}");
}

fn list_holders(holders: Vec<dhub_govern::Researcher>) {
    for r in holders {
        println!(
            "{}\t{}\tcreated {}\texpires {}\t{}",
            r.name,
            r.project,
            r.created.format("%Y-%m-%d"),
            r.expires.map_or("never".to_owned(), |d| d.to_string()),
            if r.revoked.is_some() {
                "REVOKED"
            } else {
                "active"
            }
        );
    }
}

pub fn audit(global: &Global, cmd: AuditCommand) -> anyhow::Result<()> {
    let g = open(global)?;
    match cmd {
        AuditCommand::Verify => match g.audit_verify()? {
            Ok(n) => println!("audit log intact: {n} entries"),
            Err(b) => bail!("the audit log has been tampered with: {b}"),
        },
        AuditCommand::Tail { n } => {
            for e in g.audit_tail(n)? {
                println!(
                    "{}",
                    serde_json::json!({"seq": e.seq, "entry": e.entry, "hash": e.hash})
                );
            }
        }
        AuditCommand::Review { project } => {
            let queries: Vec<(i64, String)> = g
                .audit_find("query", "project", &project)?
                .into_iter()
                .filter(|e| e.entry.get("outcome").and_then(|v| v.as_str()) == Some("ok"))
                .filter_map(|e| {
                    e.entry
                        .get("sql")
                        .and_then(|v| v.as_str())
                        .map(|s| (e.seq, s.to_owned()))
                })
                .collect();
            let groups = dhub_query::review::differencing_groups(&queries);
            eprintln!(
                "{} answered queries of project {project}; {} group(s) of queries differ by one predicate",
                queries.len(),
                groups.len()
            );
            for grp in groups {
                println!(
                    "{}",
                    serde_json::to_string(&grp).context("serialising a review group")?
                );
            }
        }
        AuditCommand::Export { out } => {
            let n = g.audit_export(&out)?;
            eprintln!("wrote {n} audit entries to {}", out.display());
        }
    }
    Ok(())
}
