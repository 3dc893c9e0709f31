//! Output helpers: progress bars on a terminal only, and broken-pipe detection.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// A progress bar of `len` units on stderr, hidden when stderr is not a terminal.
pub fn progress_bar(len: u64, what: &str) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr());
    if !std::io::stderr().is_terminal() {
        bar.set_draw_target(ProgressDrawTarget::hidden());
    }
    let style = ProgressStyle::with_template(
        "{msg} [{elapsed_precise}] {wide_bar} {human_pos}/{human_len} ({per_sec}, eta {eta})",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style);
    bar.set_message(what.to_owned());
    bar
}

/// True when the error chain ends in a closed pipe (the reader went away).
pub fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// Bytes as a short human figure (`12.3 MB`).
pub fn human_bytes(n: u64) -> String {
    let n = n as f64;
    if n >= 1e9 {
        format!("{:.2} GB", n / 1e9)
    } else if n >= 1e6 {
        format!("{:.1} MB", n / 1e6)
    } else if n >= 1e3 {
        format!("{:.1} kB", n / 1e3)
    } else {
        format!("{n} B")
    }
}

/// This process's peak resident set size in bytes (Linux `VmHWM`; `None` elsewhere).
pub fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line
        .trim_start_matches("VmHWM:")
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kb * 1024)
}

/// Tunes the C allocator for long streaming batch jobs (`dhub ingest`, `dhub extract
/// run`): allocations up to 256 MiB come from the heap instead of fresh `mmap`s. The
/// Parquet writer grows its page buffers past glibc's 32 MiB mmap ceiling, and with the
/// default every such buffer was mapped, zero-filled by the kernel and unmapped again:
/// about 15% of an ingest's time (BENCHMARKS.md). Freed heap memory is kept for reuse
/// instead of being trimmed back to the system (up to 1 GiB): with the default 128 KiB
/// trim threshold each batch's buffers were page-faulted and zero-filled afresh, about
/// 2% of an ingest's CPU time. Peak RSS stays bounded (the heap is reused batch after
/// batch). Not used by `dhub serve`, whose query workers keep the default so freed
/// memory goes back to the system.
pub fn tune_allocator_for_batch_jobs() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[allow(unsafe_code)]
    // SAFETY: mallopt only changes glibc malloc parameters; it is called before this
    // command starts any thread, and takes no pointers.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 256 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 30);
    }
}
