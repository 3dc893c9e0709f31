//! `dhub project`, `dhub researcher`, `dhub audit`: the governance store from the CLI.
//! Every change is audited with the operating-system user as the actor, and followed by
//! a signed checkpoint of the audit log when the audit key is at hand.

use std::path::Path;

use anyhow::{Context, anyhow, bail};
use dhub_govern::audit::CHECKPOINT_DIR;
use dhub_govern::{
    Approval, Checkpoint, Govern, Grant, Mode, NewProject, OutputPolicy, parse_date,
};
use dhub_store::Location;

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
    if let Some(preset) = a.sdc_preset {
        preset.apply(&mut p);
    }
    p.mode = a.mode.into();
    if let Some(v) = a.min_cell {
        p.min_cell = v;
    }
    if let Some(v) = a.rounding {
        p.rounding = v;
    }
    if let Some(v) = a.suppression {
        p.suppression = v.into();
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
                &NewProject {
                    id: a.id.clone(),
                    title: a.title.clone(),
                    release: a.release.clone(),
                    tables: grant,
                    policy,
                    expires,
                },
                &actor(),
            )?;
            println!(
                "created project {} over release {} ({} mode)",
                p.id, p.release, p.policy.mode
            );
            after_change(global, &g)?;
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
            after_change(global, &g)?;
        }
        TokenHolderCommand::Revoke { name } => {
            if partner {
                g.revoke_partner(&name, &actor())?;
            } else {
                g.revoke_researcher(&name, &actor())?;
            }
            eprintln!("revoked the token of {kind} {name}");
            after_change(global, &g)?;
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
        AuditCommand::Verify { public_key } => verify(global, &g, public_key.as_deref())?,
        AuditCommand::Checkpoint => {
            let key = load_audit_key(&global.audit_key)?;
            match write_checkpoint(global, &g, &key)? {
                Some(c) => println!(
                    "audit checkpoint: entry {} hash {} {} {}",
                    c.seq,
                    c.hash,
                    if c.written {
                        "signed into"
                    } else {
                        "already in"
                    },
                    c.location
                ),
                None => println!("the audit log is empty: nothing to checkpoint"),
            }
        }
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

// ---- signed checkpoints of the audit log ----------------------------------------------

/// The audit checkpoint key, with the command that makes one when it is missing.
pub fn load_audit_key(path: &Path) -> anyhow::Result<dhub_extract::SigningKey> {
    if !path.exists() {
        bail!(
            "no audit key at {}: make one with `dhub keys generate-audit` (or point --audit-key / DHUB_AUDIT_KEY at yours)",
            path.display()
        );
    }
    dhub_extract::SigningKey::load(path)
        .with_context(|| format!("loading the audit key {}", path.display()))
}

/// Where the checkpoints live: `_audit/` under --audit-checkpoints, else the store.
fn checkpoint_location(global: &Global) -> anyhow::Result<Location> {
    let url = global.audit_checkpoints.as_deref().unwrap_or(&global.store);
    Location::parse(url).with_context(|| format!("opening the audit checkpoints at {url}"))
}

/// Every checkpoint document under `_audit/`, opened with `public_key`; the first that
/// does not open is the error.
async fn read_checkpoints(
    loc: &Location,
    public_key: &[u8; 32],
) -> anyhow::Result<Result<Vec<Checkpoint>, String>> {
    let mut out = Vec::new();
    for name in loc.list_names(CHECKPOINT_DIR).await? {
        let Some(bytes) = loc.get_bytes(&format!("{CHECKPOINT_DIR}/{name}")).await? else {
            continue;
        };
        match Checkpoint::open(&name, &bytes, public_key) {
            Ok(c) => out.push(c),
            Err(e) => return Ok(Err(e)),
        }
    }
    Ok(Ok(out))
}

/// A checkpoint made (or found already made) by [`write_checkpoint`].
struct Made {
    seq: i64,
    hash: String,
    written: bool,
    location: String,
}

/// Verifies the log against the existing checkpoints, then signs its head and stores
/// the checkpoint with a create-only put. `None` when the log is empty.
fn write_checkpoint(
    global: &Global,
    g: &Govern,
    key: &dhub_extract::SigningKey,
) -> anyhow::Result<Option<Made>> {
    let loc = checkpoint_location(global)?;
    let rt = super::runtime()?;
    let existing = rt
        .block_on(read_checkpoints(&loc, &key.public_key()))?
        .map_err(|e| anyhow!("the audit checkpoints have been tampered with: {e}"))?;
    let v = match g.audit_verify_with(&existing)? {
        Ok(v) => v,
        Err(b) => bail!(
            "the audit log does not verify, so its head is not signed: {b}; `dhub audit verify` says the same"
        ),
    };
    if v.entries == 0 {
        return Ok(None);
    }
    let cp = Checkpoint {
        seq: v.entries,
        hash: v.head_hash,
        time: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        public_key: key.public_hex(),
    };
    let name = format!("{CHECKPOINT_DIR}/{}", Checkpoint::object_name(cp.seq));
    let doc = cp.document(&key.sign(&cp.signed_bytes()));
    let written = rt.block_on(loc.put_new(&name, doc))?;
    if !written {
        // made meanwhile (or before, and already checked above): it must agree
        let bytes = rt
            .block_on(loc.get_bytes(&name))?
            .ok_or_else(|| anyhow!("checkpoint {name} vanished while it was written"))?;
        let there = Checkpoint::open(&Checkpoint::object_name(cp.seq), &bytes, &key.public_key())
            .map_err(|e| anyhow!("the audit checkpoints have been tampered with: {e}"))?;
        if there.hash != cp.hash {
            bail!(
                "checkpoint {name} already holds another hash for entry {}: the log was rewritten after it was signed",
                cp.seq
            );
        }
    }
    Ok(Some(Made {
        seq: cp.seq,
        hash: cp.hash,
        written,
        location: loc.child_url(CHECKPOINT_DIR).to_string(),
    }))
}

/// After a change to the governance store: a checkpoint when the audit key is here.
pub fn after_change(global: &Global, g: &Govern) -> anyhow::Result<()> {
    if !global.audit_key.exists() {
        eprintln!(
            "note: no audit key at {}, so no signed checkpoint of the audit log was made (`dhub keys generate-audit` makes one)",
            global.audit_key.display()
        );
        return Ok(());
    }
    let key = load_audit_key(&global.audit_key)?;
    if let Some(c) = write_checkpoint(global, g, &key)
        .context("the change was made, but the audit log was not checkpointed")?
    {
        eprintln!("audit checkpoint signed at entry {}", c.seq);
    }
    Ok(())
}

/// `dhub audit verify`: the chain, the governance records and the signed checkpoints.
fn verify(global: &Global, g: &Govern, public_key: Option<&str>) -> anyhow::Result<()> {
    let public_key: Option<[u8; 32]> = match public_key {
        Some(h) => Some(
            dhub_govern::audit::unhex(h)
                .and_then(|b| <[u8; 32]>::try_from(b.as_slice()).ok())
                .context(
                    "--public-key must be 64 hexadecimal characters (`dhub keys public-audit` prints it)",
                )?,
        ),
        None if global.audit_key.exists() => {
            Some(load_audit_key(&global.audit_key)?.public_key())
        }
        None => None,
    };
    let loc = checkpoint_location(global)?;
    let where_ = loc.child_url(CHECKPOINT_DIR);
    let rt = super::runtime()?;
    let checkpoints = match &public_key {
        Some(pk) => rt
            .block_on(read_checkpoints(&loc, pk))?
            .map_err(|e| anyhow!("the audit checkpoints have been tampered with: {e}"))?,
        None => {
            let n = rt.block_on(loc.list_names(CHECKPOINT_DIR))?.len();
            if n > 0 {
                bail!(
                    "{where_} holds {n} signed audit checkpoint(s) but there is no key to check them with: give --public-key (`dhub keys public-audit` prints it) or --audit-key"
                );
            }
            Vec::new()
        }
    };
    let v = match g.audit_verify_with(&checkpoints)? {
        Ok(v) => v,
        Err(b) => bail!("the audit log has been tampered with: {b}"),
    };
    if public_key.is_some() && checkpoints.is_empty() && v.entries > 0 {
        bail!(
            "the audit log has {} entries but {where_} holds no signed checkpoint although there is an audit key: the checkpoints were deleted, or none was made yet (`dhub audit checkpoint` makes one)",
            v.entries
        );
    }
    println!(
        "audit log intact: {} entries; {} project, researcher and partner records match their entries",
        v.entries, v.records
    );
    match v.newest_checkpoint {
        Some(n) => println!(
            "{} signed checkpoint(s) at {where_} agree with it; the newest covers entry {n}, so {} later entries are only hash-chained",
            v.checkpoints,
            v.entries - n
        ),
        None => eprintln!(
            "warning: no signed checkpoint was checked, so a cut, emptied or re-chained log would not show; `dhub keys generate-audit` and `dhub audit checkpoint` (from cron) close that"
        ),
    }
    Ok(())
}
