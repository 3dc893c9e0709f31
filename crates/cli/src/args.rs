//! The command line, as clap derive structs. Global flags are shared by every command
//! and each has an environment variable, so a deployment sets them once; so has every
//! limit of `dhub serve` ([`ServeLimits`]). A flag that more than one command takes
//! with the same variable is one `Args` block flattened into each ([`Views`],
//! [`Quarantine`]), so its variable is declared once. Options that take one of a fixed
//! set of words are `ValueEnum`s ([`crate::choices`]).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::choices::{
    IdFormatChoice, ModeChoice, SandboxChoice, SdcPreset, SuppressionChoice, SynthFormatChoice,
};

/// dhub: a de-identified health data hub.
///
/// Data managers ingest raw extracts into pseudonymised, versioned research tables;
/// approved researchers query them under disclosure control; partners receive approved
/// extracts keyed to their project alone.
#[derive(Debug, Parser)]
#[command(name = "dhub", version, about, long_about = None, propagate_version = true)]
pub struct Cli {
    /// Flags every command shares.
    #[command(flatten)]
    pub global: Global,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Flags shared by every command.
#[derive(Debug, Args)]
pub struct Global {
    /// Research store URL (file://, memory://, s3://, az://, gs://).
    #[arg(
        long,
        global = true,
        env = "DHUB_STORE",
        default_value = "file://./dhub-data/store"
    )]
    pub store: String,

    /// Master key file (one line of 64 hex characters, mode 0600).
    #[arg(
        long = "key",
        global = true,
        env = "DHUB_KEY_FILE",
        default_value = "./dhub-keys/master.key"
    )]
    pub key: PathBuf,

    /// Governance store (SQLite file).
    #[arg(
        long,
        global = true,
        env = "DHUB_GOVERN",
        default_value = "./dhub-data/govern.db"
    )]
    pub govern: PathBuf,

    /// Ed25519 signing key of extract manifests (one line of 64 hex characters, 0600).
    #[arg(
        long,
        global = true,
        env = "DHUB_SIGNING_KEY",
        default_value = "./dhub-keys/signing.key"
    )]
    pub signing_key: PathBuf,

    /// Ed25519 key that signs audit checkpoints (one line of 64 hex characters, 0600):
    /// the data manager's, never in the database and never needed by `dhub serve`.
    #[arg(
        long,
        global = true,
        env = "DHUB_AUDIT_KEY",
        default_value = "./dhub-keys/audit.key"
    )]
    pub audit_key: PathBuf,

    /// Where signed audit checkpoints are kept, under `_audit/` (an object-store URL;
    /// default: the research store).
    #[arg(long, global = true, env = "DHUB_AUDIT_CHECKPOINTS")]
    pub audit_checkpoints: Option<String>,

    /// Where released extracts are written and served from (an object-store URL).
    #[arg(
        long,
        global = true,
        env = "DHUB_EXTRACTS",
        default_value = "file://./dhub-data/extracts"
    )]
    pub extracts: String,

    /// More log output on stderr (-v info, -vv debug); DHUB_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// The main job on the embedded defaults: key, synthetic sample, ingest, release.
    Quickstart(QuickstartArgs),
    /// Master key management.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Print the pseudonym of each value (arguments, or stdin one per line).
    Pseudonym(PseudonymArgs),
    /// Generate synthetic raw extracts (Synthea v3 CSV or the UK shared-care format).
    Synth(SynthArgs),
    /// Run an ingest pipeline: raw extracts in, de-identified Delta tables out.
    Ingest(IngestArgs),
    /// Named, immutable releases (table -> Delta version) of the research store.
    #[command(subcommand)]
    Release(ReleaseCommand),
    /// Approved research projects: release, granted tables, output policy, expiry.
    #[command(subcommand)]
    Project(ProjectCommand),
    /// Researchers and their tokens.
    #[command(subcommand)]
    Researcher(TokenHolderCommand),
    /// The tamper-evident audit log.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Innovation-hub partners and their tokens (extract downloads).
    #[command(subcommand)]
    Partner(TokenHolderCommand),
    /// Partner extracts: request, approve (four eyes), run, revoke, verify.
    #[command(subcommand)]
    Extract(ExtractCommand),
    /// Serve approved researchers: governed SQL over HTTP.
    Serve(ServeArgs),
    /// (internal) A query worker process, started by `dhub serve`.
    #[command(hide = true)]
    QueryWorker {
        /// The worker's settings (JSON).
        #[arg(long)]
        config: String,
    },
}

/// `dhub serve …`
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// HTTP listen address.
    #[arg(long, env = "DHUB_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: std::net::SocketAddr,
    /// Also serve Arrow Flight SQL (ADBC, polars, DBeaver) on this address.
    #[arg(long, env = "DHUB_FLIGHT_LISTEN")]
    pub flight_listen: Option<std::net::SocketAddr>,
    /// TLS certificate chain (PEM); with --tls-key, serve HTTPS (and Flight SQL over TLS).
    #[arg(long, env = "DHUB_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// TLS private key (PEM).
    #[arg(long, env = "DHUB_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// The curated researcher views.
    #[command(flatten)]
    pub views: Views,
    /// Landlock sandbox of the query workers.
    #[arg(long, env = "DHUB_WORKER_SANDBOX", value_enum, default_value_t = SandboxChoice::Auto)]
    pub worker_sandbox: SandboxChoice,
    /// Write the bound address to this file once listening.
    #[arg(long, hide = true)]
    pub ready_file: Option<PathBuf>,
    /// Bearer token that opens GET /metrics (without one, /metrics answers 404). Give
    /// it in the environment, not on the command line, where `ps` shows it.
    #[arg(long, env = "DHUB_METRICS_TOKEN", hide_env_values = true)]
    pub metrics_token: Option<String>,
    /// Workers, queue, per-query and connection limits.
    #[command(flatten)]
    pub limits: ServeLimits,
}

/// The limits of `dhub serve`, each with its environment variable: query workers and
/// their queue, each query, client connections and failed authentications.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Limits")]
pub struct ServeLimits {
    /// Query worker processes = queries running at once (more wait in the queue).
    #[arg(long, env = "DHUB_WORKERS", default_value_t = 4)]
    pub workers: usize,
    /// Queries one researcher may run at once (more wait in the queue).
    #[arg(long, env = "DHUB_PER_RESEARCHER", default_value_t = 2)]
    pub per_researcher: usize,
    /// Queries that may wait for a worker at once, server-wide; beyond it, 429 (0: none
    /// wait).
    #[arg(long, env = "DHUB_QUEUE", default_value_t = 256)]
    pub queue: usize,
    /// Queries of one researcher that may wait for a worker at once; beyond it, 429.
    #[arg(long, env = "DHUB_QUEUE_PER_RESEARCHER", default_value_t = 8)]
    pub queue_per_researcher: usize,
    /// The longest a query waits for a worker before it is refused (429), seconds.
    #[arg(long, env = "DHUB_QUEUE_WAIT", default_value_t = 30.0)]
    pub queue_wait: f64,
    /// How long a Flight SQL answer waits for its DoGet, seconds.
    #[arg(long, env = "DHUB_FLIGHT_ANSWER_TTL", default_value_t = 300)]
    pub flight_answer_ttl: u64,
    /// Time limit per query, seconds.
    #[arg(long, env = "DHUB_TIME_LIMIT", default_value_t = 60)]
    pub time_limit: u64,
    /// Memory the engine may track per query, MiB (sorts, joins, aggregates).
    #[arg(long, env = "DHUB_MEMORY_LIMIT", default_value_t = 1024)]
    pub memory_limit: usize,
    /// Memory limit of each query worker process (heap and stacks), MiB (0 = none).
    #[arg(long, env = "DHUB_WORKER_MEMORY", default_value_t = 8192)]
    pub worker_memory: u64,
    /// CPU seconds a query worker may spend on one request before the kernel kills it
    /// (RLIMIT_CPU; a backstop to --time-limit). Default: four times --time-limit.
    #[arg(long, env = "DHUB_WORKER_CPU_LIMIT")]
    pub worker_cpu_limit: Option<u64>,
    /// Most rows in a result.
    #[arg(long, env = "DHUB_MAX_ROWS", default_value_t = 1_000_000)]
    pub max_rows: usize,
    /// Most bytes in a result, MiB.
    #[arg(long, env = "DHUB_MAX_BYTES", default_value_t = 512)]
    pub max_bytes: usize,
    /// Open client connections at once, both listeners together (capped at half the
    /// open-file limit); more are closed at once.
    #[arg(long, env = "DHUB_MAX_CONNECTIONS", default_value_t = 1024)]
    pub max_connections: usize,
    /// Open connections at once from one client address.
    #[arg(long, env = "DHUB_MAX_CONNECTIONS_PER_ADDRESS", default_value_t = 128)]
    pub max_connections_per_address: usize,
    /// Seconds a client has to send a request's headers (from its first byte, or from
    /// connecting) and then its body; slower connections are closed.
    #[arg(long, env = "DHUB_HEADER_TIMEOUT", default_value_t = 10.0)]
    pub header_timeout: f64,
    /// Seconds a connection may sit with no request in progress and no traffic before
    /// it is closed (a running query keeps its connection).
    #[arg(long, env = "DHUB_IDLE_TIMEOUT", default_value_t = 60.0)]
    pub idle_timeout: f64,
    /// Failed authentications (401/403) one client address may make per --auth-window
    /// before its requests are answered 429 with Retry-After (HTTP and Flight SQL).
    #[arg(long, env = "DHUB_AUTH_FAILURES", default_value_t = 20)]
    pub auth_failures: usize,
    /// The window of --auth-failures, seconds.
    #[arg(long, env = "DHUB_AUTH_WINDOW", default_value_t = 60)]
    pub auth_window: u64,
}

/// `--views` (`DHUB_VIEWS`), declared once for every command that plans researcher SQL.
#[derive(Debug, Clone, Args)]
pub struct Views {
    /// Directory of curated researcher views (*.sql) the SQL may use.
    #[arg(
        id = "views",
        long = "views",
        env = "DHUB_VIEWS",
        default_value = "./sql/views"
    )]
    pub dir: PathBuf,
}

/// `--quarantine` (`DHUB_QUARANTINE`), declared once for every command that ingests.
#[derive(Debug, Clone, Args)]
pub struct Quarantine {
    /// Quarantine area for rows that fail (identifiable: never inside the store).
    #[arg(
        id = "quarantine",
        long = "quarantine",
        env = "DHUB_QUARANTINE",
        default_value = "file://./dhub-data/quarantine"
    )]
    pub url: String,
}

/// `dhub project …`
#[derive(Debug, Subcommand)]
pub enum ProjectCommand {
    /// Create a project over a release.
    Create(Box<ProjectCreateArgs>),
    /// Show one project (JSON).
    Show {
        /// Project id.
        id: String,
    },
    /// List the projects.
    List,
}

/// `dhub project create …`
#[derive(Debug, Args)]
pub struct ProjectCreateArgs {
    /// Project id: 1-64 of a-z 0-9 _ - . (e.g. asthma-2026).
    pub id: String,
    /// The release its researchers query (`dhub release list`).
    #[arg(long)]
    pub release: String,
    /// Granted tables: `all` or a comma-separated list.
    #[arg(long)]
    pub tables: String,
    /// Aggregate (results under disclosure control) or record (row-level; needs
    /// --approved-by and --reason).
    #[arg(long, value_enum, default_value_t = ModeChoice::Aggregate)]
    pub mode: ModeChoice,
    /// Start from a preset output policy (explicit flags win).
    #[arg(long, value_enum)]
    pub sdc_preset: Option<SdcPreset>,
    /// Smallest number of distinct persons a released group may have (default 10).
    #[arg(long)]
    pub min_cell: Option<u32>,
    /// A smaller group is removed (`remove`, default) or kept with its values nulled and
    /// flagged in a `dhub_suppressed` column (`null`; the opensafely preset's choice).
    #[arg(long, value_enum)]
    pub suppression: Option<SuppressionChoice>,
    /// Round counts to a multiple of N; 0 = no rounding (default 5).
    #[arg(long)]
    pub rounding: Option<u32>,
    /// Dominance rule as N,K: the N largest contributors may hold at most K of a sum (default 2,0.90).
    #[arg(long)]
    pub dominance: Option<String>,
    /// p-ratio rule (default 0.10; 0 disables).
    #[arg(long)]
    pub p_ratio: Option<f64>,
    /// Record mode: who approved row-level access.
    #[arg(long)]
    pub approved_by: Option<String>,
    /// Record mode: why it was approved.
    #[arg(long)]
    pub reason: Option<String>,
    /// Last day of access, YYYY-MM-DD.
    #[arg(long)]
    pub expires: Option<String>,
    /// Human title.
    #[arg(long, default_value = "")]
    pub title: String,
}

/// `dhub researcher …` and `dhub partner …`: people who hold a token for one project
/// (researchers run SQL; partners download their project's released extracts).
#[derive(Debug, Subcommand)]
pub enum TokenHolderCommand {
    /// Add a person to a project; prints their token once, as the only line on stdout.
    Add {
        /// Unique name (a-z 0-9 _ - .).
        name: String,
        /// Their project.
        #[arg(long)]
        project: String,
        /// Last day the token works, YYYY-MM-DD (today or later).
        #[arg(long)]
        expires: Option<String>,
        /// (tests) Accept an --expires date in the past: the token is born expired.
        #[arg(long, hide = true)]
        allow_past_expiry: bool,
    },
    /// Revoke a person's token.
    Revoke {
        /// Their name.
        name: String,
    },
    /// List them (never their tokens).
    List,
}

/// `dhub extract …`
#[derive(Debug, Subcommand)]
pub enum ExtractCommand {
    /// Request an extract from a spec (sql/extracts/NAME.toml, its .sql beside it);
    /// prints the new extract id as the only line on stdout.
    Request {
        /// The spec's .toml file.
        spec: PathBuf,
        /// Who requests it.
        #[arg(long)]
        by: String,
        /// The curated researcher views.
        #[command(flatten)]
        views: Views,
    },
    /// Approve a pending extract (the approver must not be the requester).
    Approve {
        /// Extract id.
        id: String,
        /// Who approves it.
        #[arg(long)]
        by: String,
    },
    /// Run an approved extract: query, re-key, k-anonymity check, files, signed manifest.
    Run {
        /// Extract id.
        id: String,
        /// The curated researcher views.
        #[command(flatten)]
        views: Views,
        /// Memory the query engine may use, MiB (sorts, joins, aggregates).
        #[arg(long, env = "DHUB_EXTRACT_MEMORY_LIMIT", default_value_t = 512)]
        memory_limit: usize,
        /// Write a JSON report (manifest summary, seconds, peak RSS) here.
        #[arg(long)]
        report: Option<PathBuf>,
    },
    /// Revoke an extract: it can no longer be run or downloaded.
    Revoke {
        /// Extract id.
        id: String,
        /// Who revokes it (default: the operating-system user).
        #[arg(long)]
        by: Option<String>,
    },
    /// List extracts (tab-separated: id, status, project, name, recipient, requested by, approved by).
    List {
        /// Only this project's.
        #[arg(long)]
        project: Option<String>,
    },
    /// Show one extract (JSON, with its frozen spec, SQL and manifest).
    Show {
        /// Extract id.
        id: String,
    },
    /// Verify a downloaded extract: the manifest signature and every file's SHA-256.
    Verify {
        /// The directory holding manifest.json, manifest.sig and the files.
        dir: PathBuf,
        /// The hub's signing public key (64 hex characters, `dhub keys public`).
        #[arg(long)]
        public_key: String,
    },
}

/// `dhub audit …`
#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Check the hash chain, the signed checkpoints and that every project, researcher
    /// and partner has its creation entry; exit 0 with the entry count when all hold.
    Verify {
        /// The audit public key to check checkpoints with (64 hex characters, `dhub keys
        /// public-audit`); default: derived from the --audit-key file when it exists.
        #[arg(long, env = "DHUB_AUDIT_PUBLIC_KEY")]
        public_key: Option<String>,
    },
    /// Verify the log, then sign its head with the --audit-key and store the checkpoint
    /// (create-only) under `_audit/` of --audit-checkpoints (default: the store). Run it
    /// from cron: entries after the newest checkpoint are only hash-chained.
    Checkpoint,
    /// Print the last N entries (JSON lines).
    Tail {
        /// How many.
        #[arg(short = 'n', default_value_t = 20)]
        n: usize,
    },
    /// List a project's queries that differ only by one predicate (differencing review).
    Review {
        /// The project.
        #[arg(long)]
        project: String,
    },
    /// Write the whole log to a Parquet file.
    Export {
        /// Output file.
        #[arg(long)]
        out: PathBuf,
    },
}

/// `dhub ingest …`
#[derive(Debug, Args)]
pub struct IngestArgs {
    /// The pipeline spec (TOML), e.g. pipelines/synthea.toml.
    pub pipeline: PathBuf,
    /// Directory or object-store URL holding the spec's source files.
    #[arg(long, default_value = ".")]
    pub source: String,
    /// Where rows that fail go.
    #[command(flatten)]
    pub quarantine: Quarantine,
    /// National data opt-out list: one id per line (NHS number or source person id).
    #[arg(long)]
    pub opt_out: Option<PathBuf>,
    /// Write the run report (JSON) here.
    #[arg(long)]
    pub report: Option<PathBuf>,
    /// Override every table's max_reject_rate for this run (0 to 1; 0.05 = 5%).
    #[arg(long, value_parser = parse_rate)]
    pub max_reject_rate: Option<f64>,
    /// Roll Parquet data files at this many MiB.
    #[arg(long, default_value_t = 128)]
    pub target_file_mib: u64,
}

/// `dhub release …`
#[derive(Debug, Subcommand)]
pub enum ReleaseCommand {
    /// Record the newest version of every table as release NAME (never overwritten).
    Create {
        /// Release name: 1-64 of a-z 0-9 _ - (e.g. 2026-q4).
        name: String,
    },
    /// List the releases, oldest first.
    List,
    /// Print a release document (JSON).
    Show {
        /// Release name.
        name: String,
    },
}

/// `dhub keys …`
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Create a new master key file (mode 0600); never overwrites an existing one.
    Generate {
        /// Where to write the key (default: the --key path).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Print the key id of the --key file.
    Id,
    /// Create the Ed25519 signing key of extracts (mode 0600); never overwrites.
    GenerateSigning {
        /// Where to write the key (default: the --signing-key path).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Print the signing public key (64 hex characters) as the only line on stdout,
    /// for partners to verify extracts with.
    Public,
    /// Create the Ed25519 key that signs audit checkpoints (mode 0600); never overwrites.
    GenerateAudit {
        /// Where to write the key (default: the --audit-key path).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Print the audit checkpoint public key (64 hex characters) as the only line on
    /// stdout, for `dhub audit verify --public-key` by whoever audits the hub.
    PublicAudit,
}

/// `dhub pseudonym …`
#[derive(Debug, Args)]
pub struct PseudonymArgs {
    /// Entity whose pseudonym key to use (person, encounter, provider, …).
    #[arg(long)]
    pub entity: String,

    /// How values are normalised before hashing.
    #[arg(long, value_parser = IdFormatChoice::parser(), default_value = "text")]
    pub format: IdFormatChoice,

    /// Values to pseudonymise. Prefer stdin for real identifiers: command-line
    /// arguments are visible to other users in the process list.
    pub values: Vec<String>,
}

/// `dhub synth …`
#[derive(Debug, Args)]
pub struct SynthArgs {
    /// Output format.
    #[arg(long, value_enum, ignore_case = true, default_value_t = SynthFormatChoice::Synthea)]
    pub format: SynthFormatChoice,
    /// Number of patients.
    #[arg(long, default_value_t = 1000)]
    pub patients: u64,
    /// Random seed: the same format, patients and seed give byte-identical files.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Output directory (created; must be empty if it exists).
    #[arg(long)]
    pub out: PathBuf,
    /// Share of rows to corrupt realistically (0 to 0.5); ground truth in _defects.csv.
    #[arg(long, default_value_t = 0.0)]
    pub defects: f64,
    /// Write gzip-compressed files (NAME.csv.gz).
    #[arg(long)]
    pub gzip: bool,
}

/// `dhub quickstart`
#[derive(Debug, Args)]
pub struct QuickstartArgs {
    /// Patients in the synthetic sample.
    #[arg(long, default_value_t = 1000)]
    pub patients: u64,
    /// Directory for the raw synthetic sample.
    #[arg(long, default_value = "./dhub-data/raw/synthea")]
    pub raw: PathBuf,
    /// Where rows that fail go.
    #[command(flatten)]
    pub quarantine: Quarantine,
}

fn parse_rate(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if (0.0..=1.0).contains(&v) => Ok(v),
        _ => Err(format!(
            "`{s}` is not a share between 0 and 1 (e.g. 0.05 for 5%)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use clap::{CommandFactory, Parser};

    use super::*;

    #[test]
    fn the_command_line_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn serve_limits_keep_their_defaults() {
        let cli = Cli::try_parse_from(["dhub", "serve"]).unwrap();
        let Command::Serve(a) = cli.command else {
            panic!("not serve")
        };
        let l = a.limits;
        assert_eq!(
            (l.workers, l.per_researcher, l.time_limit, l.memory_limit),
            (4, 2, 60, 1024)
        );
        assert_eq!(
            (l.worker_memory, l.max_rows, l.max_bytes),
            (8192, 1_000_000, 512)
        );
        assert_eq!(a.views.dir, PathBuf::from("./sql/views"));
        assert_eq!(a.worker_sandbox, SandboxChoice::Auto);
        let e = Cli::try_parse_from(["dhub", "serve", "--worker-sandbox", "of"]).unwrap_err();
        assert_eq!(e.kind(), clap::error::ErrorKind::InvalidValue);
    }
}
