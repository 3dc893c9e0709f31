//! `dhub keys generate`, `dhub keys id`, `dhub keys generate-signing`, `dhub keys public`,
//! `dhub keys generate-audit`, `dhub keys public-audit`.

use std::path::Path;

use anyhow::Context;
use dhub_deid::MasterKey;

use crate::args::{Global, KeysCommand};

pub fn run(global: &Global, cmd: KeysCommand) -> anyhow::Result<()> {
    match cmd {
        KeysCommand::Generate { out } => {
            let path = out.as_deref().unwrap_or(&global.key);
            let id = generate(path)?;
            println!("created master key {id} at {}", path.display());
            eprintln!(
                "Keep this file outside the research store, readable by the data manager alone (mode 0600),\n\
                 and back it up offline: without it no pseudonym can be reproduced."
            );
            Ok(())
        }
        KeysCommand::Id => {
            let key = load(&global.key)?;
            println!("{}", key.key_id());
            Ok(())
        }
        KeysCommand::GenerateSigning { out } => {
            let path = out.as_deref().unwrap_or(&global.signing_key);
            let key = dhub_extract::SigningKey::generate(path)?;
            eprintln!(
                "created the extract signing key at {} (mode 0600). Give partners its public key:\n  {}",
                path.display(),
                key.public_hex()
            );
            Ok(())
        }
        KeysCommand::Public => {
            let key = dhub_extract::SigningKey::load(&global.signing_key)?;
            println!("{}", key.public_hex());
            Ok(())
        }
        KeysCommand::GenerateAudit { out } => {
            let path = out.as_deref().unwrap_or(&global.audit_key);
            if path.exists() {
                anyhow::bail!(
                    "an audit key already exists at {} and is never overwritten: the checkpoints it signed verify only with it (`dhub keys public-audit` prints its public key)",
                    path.display()
                );
            }
            let key = dhub_extract::SigningKey::generate(path)?;
            eprintln!(
                "created the audit checkpoint key at {} (mode 0600). Keep it from the database and from the account that runs `dhub serve`;\n\
                 give whoever audits the hub its public key:\n  {}\n\
                 then run `dhub audit checkpoint` now and from cron.",
                path.display(),
                key.public_hex()
            );
            Ok(())
        }
        KeysCommand::PublicAudit => {
            let key = super::govern::load_audit_key(&global.audit_key)?;
            println!("{}", key.public_hex());
            Ok(())
        }
    }
}

/// Creates a new key file at `path` and returns its key id.
pub fn generate(path: &Path) -> anyhow::Result<dhub_deid::KeyId> {
    let key = MasterKey::generate().context("generating a master key")?;
    key.save_new(path)?;
    tracing::info!(key_id = %key.key_id(), path = %path.display(), "master key created");
    Ok(key.key_id())
}

/// Loads the master key named by --key / DHUB_KEY_FILE.
pub fn load(path: &Path) -> anyhow::Result<MasterKey> {
    Ok(MasterKey::load(path)?)
}
