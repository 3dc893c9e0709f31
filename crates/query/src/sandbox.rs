//! The query workers' sandbox: what a worker process that runs researcher SQL can
//! reach.
//!
//! A worker ([`crate::worker`]) is started by `dhub serve` with:
//!
//! * **a cleared environment**: only the object-store settings a worker needs to read a
//!   cloud store (`AWS_*`, `AZURE_*`, `GOOGLE_*`, proxies, CA bundles) and `DHUB_LOG`
//!   are passed ([`worker_env`]); nothing else of the server's environment (key file
//!   paths, governance database, tokens) reaches it;
//! * **Landlock** where the kernel supports it ([`landlock_abi`]): the worker restricts
//!   itself, before it starts any thread or reads a request ([`enforce`]), to *reading*
//!   the research store (a `file://` root), the curated views, its own executable and
//!   the system libraries, time-zone data and `/proc/self`; it can write, create,
//!   delete or execute nothing. With a `file://` store it can neither connect nor bind
//!   TCP sockets (ABI 4 and later); with a cloud store it may connect out (to reach the
//!   object store) but not listen, and may also read DNS and CA settings. From ABI 6 it
//!   can signal no process outside its sandbox and reach no abstract UNIX socket;
//! * **death with the server**: `PR_SET_PDEATHSIG` (`SIGKILL`) is set between fork and
//!   exec, from a thread that lives as long as the worker pool (the signal follows the
//!   *thread* that forked);
//! * **a CPU-time limit per request** (`RLIMIT_CPU`, re-armed before each request to the
//!   CPU time used so far plus the budget): a query that burns more CPU than that is
//!   killed by the kernel even if the server's wall-clock limit never fires; no core
//!   files (`RLIMIT_CORE` 0: a worker's memory holds research data).
//!
//! [`SandboxStatus`] says what is in force; `dhub serve` prints it at start-up and
//! `GET /healthz` reports it.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Whether the workers are sandboxed with Landlock (`dhub serve --worker-sandbox`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SandboxMode {
    /// Landlock when the kernel supports it (the default).
    #[default]
    Auto,
    /// Refuse to start when the kernel does not support Landlock.
    Required,
    /// No Landlock (the environment, death with the server and the CPU limit stay).
    Off,
}

impl std::str::FromStr for SandboxMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "auto" => Ok(Self::Auto),
            "required" => Ok(Self::Required),
            "off" => Ok(Self::Off),
            other => Err(format!(
                "`{other}` is not a sandbox mode; use auto, required or off"
            )),
        }
    }
}

/// What confines the query workers, as reported by `GET /healthz` and the start-up log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SandboxStatus {
    /// `enforced`, `unsupported` (the kernel has no Landlock) or `off` (disabled).
    pub landlock: String,
    /// The Landlock ABI version used, when enforced.
    pub abi: Option<u32>,
    /// What the worker's file-system access is.
    pub filesystem: String,
    /// What the worker's network access is.
    pub network: String,
    /// What the worker's environment is.
    pub environment: String,
    /// CPU seconds a worker may spend on one request before the kernel kills it.
    pub cpu_limit_seconds: u64,
    /// Workers are killed when the server dies (`PR_SET_PDEATHSIG`).
    pub die_with_server: bool,
}

impl SandboxStatus {
    /// One line for logs and the `x-dhub-sandbox` header.
    pub fn summary(&self) -> String {
        let landlock = match self.abi {
            Some(abi) => format!("landlock {} (ABI {abi})", self.landlock),
            None => format!("landlock {}", self.landlock),
        };
        format!(
            "{landlock}; files: {}; network: {}; environment {}; CPU limit {} s per request; {}",
            self.filesystem,
            self.network,
            self.environment,
            self.cpu_limit_seconds,
            if self.die_with_server {
                "die with the server"
            } else {
                "may outlive the server"
            }
        )
    }
}

/// The running kernel's Landlock ABI version, `None` when it has no Landlock (not built
/// in, or not enabled at boot).
#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
pub fn landlock_abi() -> Option<u32> {
    // SAFETY: landlock_create_ruleset(NULL, 0, LANDLOCK_CREATE_RULESET_VERSION) only
    // returns the ABI version (or -1 with ENOSYS/EOPNOTSUPP); it reads no memory and
    // creates no file descriptor.
    let v = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<libc::c_void>(),
            0usize,
            1u32, // LANDLOCK_CREATE_RULESET_VERSION
        )
    };
    u32::try_from(v).ok().filter(|v| *v > 0)
}

/// The running kernel's Landlock ABI version: never on this platform.
#[cfg(not(target_os = "linux"))]
pub fn landlock_abi() -> Option<u32> {
    None
}

fn is_local(store: &str) -> bool {
    store.starts_with("file://")
}

/// Decides the sandbox of the workers of a server over `store`: whether each worker
/// must enforce Landlock, and the status to report. `Err` with a message when `mode` is
/// `required` and the kernel cannot.
pub fn plan(
    mode: SandboxMode,
    store: &str,
    cpu_limit_seconds: u64,
) -> Result<(bool, SandboxStatus), String> {
    let abi = match mode {
        SandboxMode::Off => None,
        SandboxMode::Auto => landlock_abi(),
        SandboxMode::Required => Some(landlock_abi().ok_or_else(|| {
            "--worker-sandbox required, but this kernel does not support Landlock (Linux 5.13 or later with `landlock` in the boot LSM list); use --worker-sandbox auto or off".to_owned()
        })?),
    };
    let local = is_local(store);
    let (landlock, filesystem, network) = match abi {
        Some(v) => (
            "enforced",
            "read-only: the research store, the views, the dhub executable and system libraries; nothing writable".to_owned(),
            if local {
                if v >= 4 {
                    "no TCP connect or bind".to_owned()
                } else {
                    "not restricted (Landlock ABI 4 or later restricts TCP)".to_owned()
                }
            } else if v >= 4 {
                "outgoing only (to reach the cloud object store); no TCP bind".to_owned()
            } else {
                "not restricted (cloud object store)".to_owned()
            },
        ),
        None => (
            if mode == SandboxMode::Off {
                "off"
            } else {
                "unsupported"
            },
            "not restricted beyond the account's own permissions".to_owned(),
            "not restricted".to_owned(),
        ),
    };
    Ok((
        abi.is_some(),
        SandboxStatus {
            landlock: landlock.to_owned(),
            abi,
            filesystem,
            network,
            environment: "cleared (object-store settings only)".to_owned(),
            cpu_limit_seconds,
            die_with_server: cfg!(target_os = "linux"),
        },
    ))
}

/// Whether the server's environment variable `name` is passed to workers: object-store
/// credentials and endpoints, proxies, CA bundles and the log filter. Nothing else.
pub fn passes_to_worker(name: &str) -> bool {
    const PREFIXES: &[&str] = &["AWS_", "AZURE_", "AZURITE_", "GOOGLE_"];
    const NAMES: &[&str] = &[
        "DHUB_LOG",
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "NO_PROXY",
        "ALL_PROXY",
        "http_proxy",
        "https_proxy",
        "no_proxy",
        "all_proxy",
        "SSL_CERT_FILE",
        "SSL_CERT_DIR",
    ];
    PREFIXES.iter().any(|p| name.starts_with(p)) || NAMES.contains(&name)
}

/// The environment a worker is started with: [`passes_to_worker`] of this process's.
pub fn worker_env() -> Vec<(std::ffi::OsString, std::ffi::OsString)> {
    std::env::vars_os()
        .filter(|(k, _)| k.to_str().is_some_and(passes_to_worker))
        .collect()
}

/// Files and directories a worker may read (and, `exec`, execute) besides the store
/// and the views.
fn system_paths(local: bool) -> Vec<(PathBuf, bool)> {
    let mut out: Vec<(PathBuf, bool)> = [
        "/lib",
        "/lib64",
        "/usr/lib",
        "/usr/lib64",
        "/usr/local/lib",
        "/etc/ld.so.cache",
    ]
    .iter()
    .map(|p| (PathBuf::from(p), true))
    .collect();
    out.extend(
        [
            "/etc/localtime",
            "/usr/share/zoneinfo",
            "/dev/null",
            "/dev/urandom",
            "/proc/self",
            "/sys/fs/cgroup",
            "/sys/devices/system/cpu",
        ]
        .iter()
        .map(|p| (PathBuf::from(p), false)),
    );
    if let Ok(exe) = std::env::current_exe() {
        out.push((exe, true));
    }
    if !local {
        // name resolution and TLS roots to reach a cloud object store
        out.extend(
            [
                "/etc/resolv.conf",
                "/etc/hosts",
                "/etc/nsswitch.conf",
                "/etc/host.conf",
                "/etc/gai.conf",
                "/etc/services",
                "/etc/ssl",
                "/etc/pki",
                "/etc/ca-certificates",
                "/usr/share/ca-certificates",
                "/usr/local/share/ca-certificates",
            ]
            .iter()
            .map(|p| (PathBuf::from(p), false)),
        );
        // credential and CA files the object store is told about
        for var in [
            "SSL_CERT_FILE",
            "SSL_CERT_DIR",
            "AWS_WEB_IDENTITY_TOKEN_FILE",
            "AZURE_FEDERATED_TOKEN_FILE",
            "GOOGLE_APPLICATION_CREDENTIALS",
            "GOOGLE_SERVICE_ACCOUNT",
            "GOOGLE_SERVICE_ACCOUNT_PATH",
        ] {
            if let Some(v) = std::env::var_os(var) {
                let p = PathBuf::from(v);
                if p.is_absolute() {
                    out.push((p, false));
                }
            }
        }
    }
    out
}

/// Restricts the calling thread, and every thread it starts afterwards, to reading
/// `store` (a `file://` root; cloud stores are reached over the network), `views` and
/// what the process needs to run. Call it before starting any thread. Returns the ABI
/// enforced; `Err` when Landlock could not be enforced (the worker then refuses to run).
#[cfg(target_os = "linux")]
pub fn enforce(store: &str, views: &Path) -> Result<u32, String> {
    use landlock::{
        ABI, Access, AccessFs, AccessNet, BitFlags, PathBeneath, PathFd, Ruleset, RulesetAttr,
        RulesetCreatedAttr, RulesetStatus, Scope,
    };
    let kernel = landlock_abi().ok_or("this kernel does not support Landlock")?;
    let abi = ABI::from(i32::try_from(kernel).unwrap_or(i32::MAX));
    let local = is_local(store);
    let e = |e: landlock::RulesetError| format!("Landlock: {e}");
    let mut rs = Ruleset::default()
        .handle_access(AccessFs::from_all(abi))
        .map_err(e)?;
    let net: BitFlags<AccessNet> = if local {
        AccessNet::from_all(abi)
    } else {
        AccessNet::from_all(abi) & AccessNet::BindTcp
    };
    if !net.is_empty() {
        rs = rs.handle_access(net).map_err(e)?;
    }
    let scopes = Scope::from_all(abi);
    if !scopes.is_empty() {
        rs = rs.scope(scopes).map_err(e)?;
    }
    let mut created = rs.create().map_err(e)?;
    let read = AccessFs::ReadFile | AccessFs::ReadDir;
    let mut paths = system_paths(local);
    if local {
        let root = url::Url::parse(store)
            .ok()
            .and_then(|u| u.to_file_path().ok())
            .ok_or_else(|| format!("the store URL {store} is not a local path"))?;
        paths.push((root, false));
    }
    paths.push((views.to_path_buf(), false));
    for (path, exec) in paths {
        let Ok(meta) = std::fs::metadata(&path) else {
            continue; // not on this system
        };
        let Ok(fd) = PathFd::new(&path) else {
            continue;
        };
        let mut access = if meta.is_dir() {
            read
        } else {
            BitFlags::from(AccessFs::ReadFile)
        };
        if exec {
            access |= AccessFs::Execute;
        }
        created = created.add_rule(PathBeneath::new(fd, access)).map_err(e)?;
    }
    let status = created.restrict_self().map_err(e)?;
    match status.ruleset {
        RulesetStatus::NotEnforced => Err("Landlock was not enforced".into()),
        _ => Ok(kernel),
    }
}

/// Landlock is Linux-only.
#[cfg(not(target_os = "linux"))]
pub fn enforce(_store: &str, _views: &Path) -> Result<u32, String> {
    Err("Landlock is only available on Linux".into())
}

/// Makes the child of `cmd` receive `SIGKILL` when the thread that starts it exits
/// (the server's worker spawner lives as long as the pool), and refuse to start if the
/// server is already gone.
#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
pub fn die_with_parent(cmd: &mut tokio::process::Command) {
    let parent = libc::pid_t::try_from(std::process::id()).unwrap_or(0);
    // SAFETY: the closure runs in the child between fork and exec and calls only
    // async-signal-safe functions (prctl, getppid) without allocating.
    unsafe {
        cmd.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            if libc::getppid() != parent {
                // the server died between fork and prctl
                return Err(std::io::Error::other("the server exited"));
            }
            Ok(())
        });
    }
}

/// No parent-death signal on this platform.
#[cfg(not(target_os = "linux"))]
pub fn die_with_parent(_cmd: &mut tokio::process::Command) {}

/// CPU seconds (user and system) this process has used.
#[cfg(unix)]
#[allow(unsafe_code)]
fn cpu_seconds_used() -> u64 {
    // SAFETY: getrusage writes one `rusage` into the zeroed struct we own.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: as above; RUSAGE_SELF is always valid.
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) } != 0 {
        return 0;
    }
    let secs = |t: libc::timeval| u64::try_from(t.tv_sec).unwrap_or(0);
    secs(ru.ru_utime) + secs(ru.ru_stime) + 1
}

/// Allows this process `budget` more CPU seconds (`RLIMIT_CPU`, soft limit) before the
/// kernel kills it (`SIGXCPU`); `0` = no limit. Called before each request.
pub fn arm_cpu_limit(budget: u64) -> Result<(), String> {
    if budget == 0 {
        return Ok(());
    }
    #[cfg(unix)]
    {
        let (_, hard) = rlimit::getrlimit(rlimit::Resource::CPU).map_err(|e| e.to_string())?;
        let soft = cpu_seconds_used().saturating_add(budget).min(hard);
        rlimit::setrlimit(rlimit::Resource::CPU, soft, hard).map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// No core files: a worker's memory holds research data.
pub fn no_core_files() {
    if let Err(e) = rlimit::setrlimit(rlimit::Resource::CORE, 0, 0) {
        tracing::warn!(error = %e, "could not turn off the worker's core files");
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::print_stdout)]
    use super::*;

    const CHILD: &str = "DHUB_SANDBOX_TEST_CHILD";

    #[test]
    fn only_object_store_settings_pass_to_workers() {
        for pass in [
            "AWS_ACCESS_KEY_ID",
            "AWS_ENDPOINT",
            "AZURE_STORAGE_USE_EMULATOR",
            "GOOGLE_SERVICE_ACCOUNT",
            "DHUB_LOG",
            "HTTPS_PROXY",
        ] {
            assert!(passes_to_worker(pass), "{pass}");
        }
        for block in [
            "DHUB_KEY_FILE",
            "DHUB_SIGNING_KEY",
            "DHUB_GOVERN",
            "DHUB_STORE",
            "HOME",
            "PATH",
            "LD_PRELOAD",
            "SECRET",
            "XAWS_KEY",
        ] {
            assert!(!passes_to_worker(block), "{block}");
        }
    }

    #[test]
    fn the_plan_follows_the_kernel_and_the_mode() {
        let (on, s) = plan(SandboxMode::Off, "file:///s", 7).unwrap();
        assert!(!on);
        assert_eq!(s.landlock, "off");
        assert_eq!(s.cpu_limit_seconds, 7);
        let (on, s) = plan(SandboxMode::Auto, "file:///s", 7).unwrap();
        match landlock_abi() {
            Some(v) => {
                assert!(on);
                assert_eq!(s.landlock, "enforced");
                assert_eq!(s.abi, Some(v));
                assert!(plan(SandboxMode::Required, "file:///s", 7).unwrap().0);
            }
            None => {
                assert!(!on);
                assert_eq!(s.landlock, "unsupported");
                let e = plan(SandboxMode::Required, "file:///s", 7).unwrap_err();
                assert!(e.contains("does not support Landlock"), "{e}");
            }
        }
    }

    /// Runs in a child process (the test binary started again with [`CHILD`] set):
    /// sandboxes its thread over a store and reports what it could reach.
    #[test]
    fn sandboxed_child() {
        let Some(dir) = std::env::var_os(CHILD) else {
            return; // only meaningful in the child started below
        };
        let dir = PathBuf::from(dir);
        let store = url::Url::from_directory_path(dir.join("store")).unwrap();
        let abi = enforce(store.as_str().trim_end_matches('/'), &dir.join("views")).unwrap();
        let can = |p: &Path| std::fs::read(p).is_ok();
        let listing = |p: &Path| std::fs::read_dir(p).is_ok();
        println!("abi={abi}");
        println!("store_file={}", can(&dir.join("store/t/part-0.parquet")));
        println!("store_list={}", listing(&dir.join("store")));
        println!("view={}", can(&dir.join("views/v.sql")));
        println!("outside_file={}", can(&dir.join("master.key")));
        println!("outside_list={}", listing(&dir));
        println!("etc_passwd={}", can(Path::new("/etc/passwd")));
        println!(
            "store_write={}",
            std::fs::write(dir.join("store/new"), b"x").is_ok()
        );
        println!(
            "store_overwrite={}",
            std::fs::OpenOptions::new()
                .write(true)
                .open(dir.join("store/t/part-0.parquet"))
                .is_ok()
        );
        println!(
            "tmp_write={}",
            std::fs::write(std::env::temp_dir().join("dhub-sandbox-escape"), b"x").is_ok()
        );
        let port = std::env::var("DHUB_SANDBOX_TEST_PORT").unwrap();
        println!(
            "tcp_connect={}",
            std::net::TcpStream::connect(("127.0.0.1", port.parse::<u16>().unwrap())).is_ok()
        );
        println!("CHILD-DONE");
    }

    /// A worker-style sandbox reads the store and the views, and nothing else: not a
    /// key file beside the store, not /etc/passwd; it writes nothing and opens no TCP
    /// connection. On a kernel without Landlock, the plan says `unsupported` instead
    /// (tested above) and this test checks that `enforce` refuses.
    #[test]
    fn landlock_confines_a_worker_to_reading_the_store() {
        if landlock_abi().is_none() {
            let t = tempfile::tempdir().unwrap();
            assert!(enforce("file:///nonexistent", t.path()).is_err());
            return;
        }
        let t = tempfile::tempdir().unwrap();
        let d = t.path();
        std::fs::create_dir_all(d.join("store/t")).unwrap();
        std::fs::write(d.join("store/t/part-0.parquet"), b"rows").unwrap();
        std::fs::create_dir_all(d.join("views")).unwrap();
        std::fs::write(d.join("views/v.sql"), b"SELECT 1").unwrap();
        std::fs::write(d.join("master.key"), b"00").unwrap();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "sandbox::tests::sandboxed_child",
                "--exact",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD, d)
            .env("DHUB_SANDBOX_TEST_PORT", port.to_string())
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && text.contains("CHILD-DONE"),
            "child failed: {text}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let seen = |k: &str| -> String {
            // libtest prints the test's name on the first line's start
            text.split_whitespace()
                .find_map(|w| w.strip_prefix(&format!("{k}=")))
                .unwrap_or_else(|| panic!("{k} missing: {text}"))
                .to_owned()
        };
        assert_eq!(seen("abi"), landlock_abi().unwrap().to_string());
        // what a worker needs
        assert_eq!(seen("store_file"), "true");
        assert_eq!(seen("store_list"), "true");
        assert_eq!(seen("view"), "true");
        // nothing else
        assert_eq!(seen("outside_file"), "false");
        assert_eq!(seen("outside_list"), "false");
        assert_eq!(seen("etc_passwd"), "false");
        assert_eq!(seen("store_write"), "false");
        assert_eq!(seen("store_overwrite"), "false");
        assert_eq!(seen("tmp_write"), "false");
        if landlock_abi().unwrap() >= 4 {
            assert_eq!(seen("tcp_connect"), "false");
        }
        // and the same reads work without the sandbox (the test is not vacuous)
        assert!(std::fs::read(d.join("master.key")).is_ok());
        assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_ok());
        assert!(!std::env::temp_dir().join("dhub-sandbox-escape").exists());
    }
}
