//! Start-up and shutdown of `dhub serve`: the settings ([`ServerConfig`]), the TLS
//! crypto provider, binding every listener before anything is served, the ready file,
//! and a graceful stop on SIGTERM or Ctrl-C (in-flight queries finish and are audited;
//! open refusal counts are written).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::conn::{self, NetLimits};
use crate::error::ApiError;
use crate::governed::Governed;
use crate::governed::refusals::RefusalFlusher;
use crate::{flight, routes};

/// Server settings (from `dhub serve` flags).
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// HTTP listen address (port 0 = any free port).
    pub listen: SocketAddr,
    /// Arrow Flight SQL listen address, if Flight SQL is served (port 0 = any free port).
    pub flight_listen: Option<SocketAddr>,
    /// TLS certificate and key (PEM), if TLS (HTTP and Flight SQL).
    pub tls: Option<(PathBuf, PathBuf)>,
    /// Research store URL.
    pub store: String,
    /// Extracts area URL (released partner extracts).
    pub extracts: String,
    /// Governance store file.
    pub govern: PathBuf,
    /// How to start query workers.
    pub worker: dhub_query::WorkerCommand,
    /// Query workers = global concurrency.
    pub workers: usize,
    /// Concurrent queries per researcher.
    pub per_researcher: usize,
    /// Queries waiting for a worker at once, server-wide (0: none wait).
    pub queue: usize,
    /// Queries of one researcher waiting for a worker at once.
    pub queue_per_researcher: usize,
    /// The longest a query waits for a worker before it is refused (429).
    pub queue_wait: Duration,
    /// How long a Flight SQL answer is held for its `DoGet`.
    pub flight_answer_ttl: Duration,
    /// Per-query time limit.
    pub time_limit: Duration,
    /// Write the bound address here once listening (tests, scripts).
    pub ready_file: Option<PathBuf>,
    /// Connection caps, timeouts and the failed-authentication limit.
    pub net: NetLimits,
    /// The bearer token that opens `GET /metrics` (`None`: `/metrics` answers 404).
    pub metrics_token: Option<String>,
}

/// Chooses rustls's crypto provider for the whole process, once, before any TLS
/// configuration or listener exists: ring, dhub's one crypto library. Several rustls
/// back ends are compiled in through dependencies (ring and aws-lc-rs), and a TLS
/// configuration built without a process default fails, so leaving the choice to
/// whichever listener starts first made start-up depend on task scheduling.
fn choose_crypto_provider() {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        // fails only when another thread installed one first: either way one is chosen
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
}

/// Warns, loudly, for every listener on a non-loopback address without TLS: tokens and
/// answers would cross the network in clear text.
fn warn_plaintext(config: &ServerConfig) {
    if config.tls.is_some() {
        return;
    }
    let listeners = [
        ("HTTP", Some(config.listen)),
        ("Flight SQL", config.flight_listen),
    ];
    for (what, addr) in listeners {
        let Some(addr) = addr else { continue };
        if addr.ip().is_loopback() {
            continue;
        }
        tracing::warn!(%addr, "{what} listens on a non-loopback address without TLS");
        eprintln!(
            "dhub serve: WARNING: {what} listens on {addr}, not a loopback address, WITHOUT TLS: \
             researchers' tokens and answers cross the network in clear text. Give --tls-cert and \
             --tls-key, or listen on 127.0.0.1 behind a TLS-terminating proxy."
        );
    }
}

/// Writes the ready file whole (a temporary file renamed into place), so a reader never
/// sees half of it.
fn write_ready(path: &std::path::Path, text: &str) -> Result<(), ApiError> {
    let tmp = path.with_extension("tmp-ready");
    std::fs::write(&tmp, text)
        .and_then(|()| std::fs::rename(&tmp, path))
        .map_err(|e| ApiError::startup(format!("writing the ready file {}: {e}", path.display())))
}

/// Serves HTTP (and Flight SQL, with `flight_listen`) until SIGTERM or Ctrl-C;
/// in-flight queries finish (and are audited) before the process exits.
///
/// Start-up is all or nothing: the TLS crypto provider is chosen first, then every
/// listener is bound and every TLS configuration built; only when all of them stand are
/// the "listening" lines printed and the ready file written. Any failure, then or later
/// (a listener that stops while the server runs), ends the process with an error that
/// names the listener and the reason.
pub async fn serve(config: ServerConfig) -> Result<(), ApiError> {
    choose_crypto_provider();
    warn_plaintext(&config);
    // opening the governance store is SQLite work: on the blocking thread pool
    let opened = {
        let config = config.clone();
        tokio::task::spawn_blocking(move || Governed::open(&config)).await??
    };
    let governed = Arc::new(opened);
    // refused tokens counted per client and minute reach the audit log every few
    // seconds, and all of them when serving ends, however it ends
    let refusals = RefusalFlusher::start(&governed);
    let served = serve_with(governed, &config).await;
    refusals.finish().await;
    served
}

/// Binds, serves and stops (see [`serve`]) over the opened governed path.
async fn serve_with(governed: Arc<Governed>, config: &ServerConfig) -> Result<(), ApiError> {
    let net = governed.net().clone();

    // bind every listener and build every TLS configuration before serving anything
    let http_listener = std::net::TcpListener::bind(config.listen)
        .and_then(|l| l.set_nonblocking(true).map(|()| l))
        .map_err(|e| ApiError::startup(format!("cannot listen on {}: {e}", config.listen)))?;
    let http_addr = http_listener
        .local_addr()
        .map_err(|e| ApiError::startup(format!("the HTTP listener's address: {e}")))?;
    let rustls = match &config.tls {
        Some((cert, key)) => Some(
            axum_server::tls_rustls::RustlsConfig::from_pem_file(cert, key)
                .await
                .map_err(|e| {
                    ApiError::startup(format!(
                        "loading the TLS certificate {} and key {}: {e}",
                        cert.display(),
                        key.display()
                    ))
                })?,
        ),
        None => None,
    };
    let flight = match config.flight_listen {
        Some(addr) => {
            let listener = flight::bind(addr).await?;
            let bound = listener.local_addr().map_err(|e| {
                ApiError::startup(format!("the Flight SQL listener's address: {e}"))
            })?;
            let registry = Arc::new(conn::Registry::default());
            let router = flight::server(governed.clone(), config.tls.as_ref(), registry.clone())?;
            Some((bound, listener, router, registry))
        }
        None => None,
    };

    // serve
    let handle: axum_server::Handle<SocketAddr> = axum_server::Handle::new();
    let grace = config.time_limit + Duration::from_secs(5);
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let h = handle.clone();
    tokio::spawn(async move {
        shutdown_signal().await;
        tracing::info!("shutting down: finishing in-flight requests");
        h.graceful_shutdown(Some(grace));
        let _ = stop_tx.send(true);
    });
    let registry = Arc::new(conn::Registry::default());
    let web = Arc::new(routes::HttpGuard {
        g: governed.clone(),
        registry: registry.clone(),
        metrics_token: config.metrics_token.as_deref().map(|t| {
            ring::digest::digest(&ring::digest::SHA256, t.trim().as_bytes())
                .as_ref()
                .to_vec()
        }),
    });
    let svc =
        routes::router(governed.clone(), web).into_make_service_with_connect_info::<SocketAddr>();
    let acceptor = conn::GuardAcceptor {
        net: net.clone(),
        registry,
    };
    let http_server = axum_server::from_tcp(http_listener)
        .map_err(|e| ApiError::startup(format!("serving on {http_addr}: {e}")))?
        .handle(handle.clone());
    let mut http_task = match rustls {
        Some(tls) => {
            let server = http_server.acceptor(
                axum_server::tls_rustls::RustlsAcceptor::new(tls)
                    .handshake_timeout(config.net.header_timeout)
                    .acceptor(acceptor),
            );
            tokio::spawn(server.serve(svc))
        }
        None => tokio::spawn(http_server.acceptor(acceptor).serve(svc)),
    };
    let mut flight_task = flight.map(|(bound, listener, router, registry)| {
        let mut rx = stop_rx.clone();
        let task = tokio::spawn(flight::serve_flight(
            router,
            listener,
            net.clone(),
            registry,
            async move {
                let _ = rx.wait_for(|stop| *stop).await;
            },
        ));
        (bound, task)
    });

    // every listener is bound and configured: announce
    let tls = config.tls.is_some();
    let scheme = if tls { "https" } else { "http" };
    tracing::info!(addr = %http_addr, "listening");
    eprintln!("dhub serve: listening on {scheme}://{http_addr}");
    let mut ready_text = http_addr.to_string();
    if let Some((f, _)) = &flight_task {
        let grpc = if tls { "grpc+tls" } else { "grpc" };
        tracing::info!(addr = %f, "Flight SQL listening");
        eprintln!("dhub serve: Flight SQL on {grpc}://{f}");
        ready_text.push_str(&format!("\n{f}"));
    }
    if let Some(p) = &config.ready_file {
        write_ready(p, &ready_text)?;
    }

    // run until shutdown; a listener that stops before it is an error that ends both
    let stopping = || *stop_rx.borrow();
    let flight_done = async {
        match &mut flight_task {
            Some((_, t)) => Some(t.await),
            None => futures::future::pending().await,
        }
    };
    tokio::select! {
        r = &mut http_task => {
            let r = match r {
                Ok(Ok(())) if stopping() => Ok(()),
                Ok(Ok(())) => Err(ApiError::startup("the HTTP listener stopped unexpectedly")),
                Ok(Err(e)) => Err(ApiError::startup(format!("serving HTTP on {http_addr}: {e}"))),
                Err(e) => Err(ApiError::startup(format!("the HTTP listener failed: {e}"))),
            };
            if r.is_err() {
                handle.shutdown();
                if let Some((_, t)) = &flight_task {
                    t.abort();
                }
                return r;
            }
            if let Some((_, t)) = flight_task {
                match t.await {
                    Ok(r) => r?,
                    Err(e) => return Err(ApiError::startup(format!("the Flight SQL listener failed: {e}"))),
                }
            }
            r
        }
        Some(r) = flight_done => {
            let r = match r {
                Ok(Ok(())) if stopping() => Ok(()),
                Ok(Ok(())) => Err(ApiError::startup("the Flight SQL listener stopped unexpectedly")),
                Ok(Err(e)) => Err(e),
                Err(e) => Err(ApiError::startup(format!("the Flight SQL listener failed: {e}"))),
            };
            if r.is_err() {
                handle.shutdown();
                http_task.abort();
                return r;
            }
            match http_task.await {
                Ok(Ok(())) => Ok(()),
                Ok(Err(e)) => Err(ApiError::startup(format!("serving HTTP on {http_addr}: {e}"))),
                Err(e) => Err(ApiError::startup(format!("the HTTP listener failed: {e}"))),
            }
        }
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => futures::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = futures::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}
