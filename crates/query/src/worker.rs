//! Query workers: every research query runs in a separate process, so that nothing a
//! query does can take the server down.
//!
//! DataFusion runs in-process by design, and some failures cannot be caught there: a
//! deep expression tree overflows the stack while planning, a failed multi-gigabyte
//! allocation aborts the process, a CPU-bound kernel ignores cancellation. The server
//! therefore keeps a pool of worker processes (`dhub query-worker`, the same binary):
//!
//! * each worker runs the governed path ([`crate::QueryService::run`]) on a thread with
//!   a large stack, under a process memory limit (`RLIMIT_DATA`) and the engine's
//!   memory pool, and caches table metadata across the queries it serves;
//! * the server gives a worker one request at a time and waits at most the time limit;
//!   a worker that overruns is killed (`SIGKILL`) and replaced, one that dies (stack
//!   overflow, out of memory) is replaced, and the researcher gets a clean error;
//! * the pool's size is the server's global concurrency: when every worker is busy the
//!   request is refused at once (HTTP 429);
//! * a worker starts with a cleared environment, dies with the server, has a CPU-time
//!   limit per request and, where the kernel has Landlock, can read only the research
//!   store and what it needs to run ([`crate::sandbox`]).
//!
//! The protocol on the worker's stdin/stdout is frames of `[kind: u8][length: u64 LE]
//! [payload]`: requests are JSON ([`WorkerRequest`]); answers are an error (`E`, JSON
//! [`QueryError`]), a table list (`T`, JSON), or a result header (`R`, JSON
//! [`ResultHeader`]) followed by the rows as one Arrow IPC stream (`I`).

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arrow::ipc::reader::StreamReader;
use arrow::ipc::writer::StreamWriter;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};
use tokio::sync::{Semaphore, TryAcquireError};

use crate::error::{ErrorCode, QueryError};
use crate::sdc::Disclosure;
use crate::service::{QueryOutput, QueryRequest, QueryService, Scope, TableInfo};

/// What the server asks a worker.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum WorkerRequest {
    /// Run a query.
    Query(QueryRequest),
    /// List the tables and views of a scope.
    Tables(Scope),
}

/// The header of a successful result.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ResultHeader {
    /// Rows.
    pub rows: usize,
    /// Arrow bytes.
    pub bytes: usize,
    /// Disclosure record.
    pub disclosure: Disclosure,
}

const MAX_FRAME: u64 = 4 << 30;

fn write_frame(w: &mut impl Write, kind: u8, payload: &[u8]) -> std::io::Result<()> {
    w.write_all(&[kind])?;
    w.write_all(&(payload.len() as u64).to_le_bytes())?;
    w.write_all(payload)?;
    w.flush()
}

/// The frame header: one kind byte, then the payload length (u64, little-endian).
const FRAME_HEAD: usize = 9;

/// The end of the stream before a header (`Ok(None)`: the peer closed), or an error.
fn frame_eof(e: std::io::Error) -> std::io::Result<Option<(u8, Vec<u8>)>> {
    if e.kind() == std::io::ErrorKind::UnexpectedEof {
        Ok(None)
    } else {
        Err(e)
    }
}

/// The kind of a frame and a zeroed buffer for its payload, from its header; a length
/// above [`MAX_FRAME`] is refused before anything is allocated.
fn frame_payload(head: &[u8; FRAME_HEAD]) -> std::io::Result<(u8, Vec<u8>)> {
    let mut len = [0u8; 8];
    len.copy_from_slice(&head[1..]);
    let len = u64::from_le_bytes(len);
    if len > MAX_FRAME {
        return Err(std::io::Error::other("frame too large"));
    }
    let buf = vec![0u8; usize::try_from(len).map_err(std::io::Error::other)?];
    Ok((head[0], buf))
}

/// Reads one frame (the worker's side, blocking); `None` when the stream ended.
fn read_frame(r: &mut impl Read) -> std::io::Result<Option<(u8, Vec<u8>)>> {
    let mut head = [0u8; FRAME_HEAD];
    if let Err(e) = r.read_exact(&mut head) {
        return frame_eof(e);
    }
    let (kind, mut buf) = frame_payload(&head)?;
    r.read_exact(&mut buf)?;
    Ok(Some((kind, buf)))
}

/// Settings a worker is started with.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WorkerConfig {
    /// Research store URL.
    pub store: String,
    /// Directory of `*.sql` researcher views.
    pub views: PathBuf,
    /// Per-query limits.
    pub limits: crate::service::Limits,
    /// Memory limit of the worker process (`RLIMIT_DATA`: heap and private mappings), bytes (0 = none).
    pub address_space_bytes: u64,
    /// Enforce the Landlock sandbox ([`crate::sandbox::enforce`]) before anything else;
    /// the server sets it when the kernel supports Landlock, and a worker that cannot
    /// enforce it refuses to run.
    #[serde(default)]
    pub landlock: bool,
    /// CPU seconds the worker may spend on one request (`RLIMIT_CPU`; 0 = none).
    #[serde(default)]
    pub cpu_seconds: u64,
}

/// The worker's main loop (`dhub query-worker`): reads requests on stdin until it
/// closes, answers on stdout. Never returns an error for a bad query; only for a broken
/// pipe or an unusable configuration.
pub fn worker_main(config: WorkerConfig) -> Result<(), String> {
    // first, on the only thread there is (Landlock binds the calling thread and the
    // threads it starts later): the sandbox, no core files, the CPU budget
    crate::sandbox::no_core_files();
    if config.landlock {
        let abi = crate::sandbox::enforce(&config.store, &config.views)
            .map_err(|e| format!("refusing to run without the sandbox: {e}"))?;
        tracing::debug!(abi, "query worker sandboxed with Landlock");
    }
    crate::sandbox::arm_cpu_limit(config.cpu_seconds)?;
    if config.address_space_bytes > 0 {
        // best effort: the server's time limit and the engine's pool still hold without it
        if let Err(e) = rlimit::setrlimit(
            rlimit::Resource::AS,
            config.address_space_bytes,
            config.address_space_bytes,
        ) {
            tracing::warn!(error = %e, "could not set the worker's address-space limit");
        }
    }
    // planning recurses over the expression tree: give it a large stack
    let t = std::thread::Builder::new()
        .name("dhub-query-worker".into())
        .stack_size(256 << 20)
        .spawn(move || worker_loop(config))
        .map_err(|e| e.to_string())?;
    t.join()
        .map_err(|_| "the worker thread panicked".to_owned())?
}

fn worker_loop(config: WorkerConfig) -> Result<(), String> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_stack_size(64 << 20)
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let store = dhub_store::Store::open(&config.store).map_err(|e| e.to_string())?;
    let views = crate::service::load_views(&config.views).map_err(|e| e.detail)?;
    let service = QueryService::new(store, views, config.limits);
    let stdin = std::io::stdin();
    let stdout = std::io::stdout();
    let mut input = stdin.lock();
    let mut out = stdout.lock();
    while let Some((kind, payload)) = read_frame(&mut input).map_err(|e| e.to_string())? {
        // each request gets the whole CPU budget
        crate::sandbox::arm_cpu_limit(config.cpu_seconds)?;
        if kind != b'Q' {
            return Err(format!("unexpected frame kind {kind}"));
        }
        let req: WorkerRequest = serde_json::from_slice(&payload).map_err(|e| e.to_string())?;
        match req {
            WorkerRequest::Tables(scope) => match rt.block_on(service.tables(&scope)) {
                Ok(t) => write_frame(
                    &mut out,
                    b'T',
                    &serde_json::to_vec(&t).map_err(|e| e.to_string())?,
                ),
                Err(e) => write_frame(
                    &mut out,
                    b'E',
                    &serde_json::to_vec(&e).map_err(|e| e.to_string())?,
                ),
            },
            WorkerRequest::Query(q) => match rt.block_on(service.run(&q)) {
                Ok(o) => {
                    let header = ResultHeader {
                        rows: o.rows,
                        bytes: o.bytes,
                        disclosure: o.disclosure.clone(),
                    };
                    let mut ipc = Vec::new();
                    let written = (|| -> Result<(), arrow::error::ArrowError> {
                        let mut w = StreamWriter::try_new(&mut ipc, &o.schema)?;
                        for b in &o.batches {
                            // a compact copy: sliced arrays (LIMIT) do not always
                            // survive the IPC round trip with their offsets intact
                            let b = arrow::compute::concat_batches(&o.schema, std::iter::once(b))?;
                            w.write(&b)?;
                        }
                        w.finish()
                    })();
                    match written {
                        Ok(()) => write_frame(
                            &mut out,
                            b'R',
                            &serde_json::to_vec(&header).map_err(|e| e.to_string())?,
                        )
                        .and_then(|()| write_frame(&mut out, b'I', &ipc)),
                        Err(e) => write_frame(
                            &mut out,
                            b'E',
                            &serde_json::to_vec(&QueryError::internal(e.to_string()))
                                .map_err(|e| e.to_string())?,
                        ),
                    }
                }
                Err(e) => write_frame(
                    &mut out,
                    b'E',
                    &serde_json::to_vec(&e).map_err(|e| e.to_string())?,
                ),
            },
        }
        .map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// One running worker process.
struct Worker {
    child: Child,
    stdin: ChildStdin,
    stdout: ChildStdout,
}

/// How to start a worker: the `dhub` executable and its arguments.
#[derive(Debug, Clone)]
pub struct WorkerCommand {
    /// The executable (normally the running `dhub`).
    pub exe: PathBuf,
    /// Arguments (normally `query-worker --config JSON`).
    pub args: Vec<String>,
    /// What confines the workers (reported by `/healthz`); the worker enforces it from
    /// its settings in `args`.
    pub sandbox: crate::sandbox::SandboxStatus,
}

/// Where the spawner thread sends a started worker.
type SpawnReply = std::sync::mpsc::SyncSender<Result<Worker, QueryError>>;

/// Starts one worker process: a cleared environment (object-store settings only), and
/// death with the thread that starts it (`PR_SET_PDEATHSIG`).
fn start_worker(command: &WorkerCommand) -> Result<Worker, QueryError> {
    let mut cmd = Command::new(&command.exe);
    cmd.args(&command.args)
        .env_clear()
        .envs(crate::sandbox::worker_env())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true);
    crate::sandbox::die_with_parent(&mut cmd);
    let mut child = cmd
        .spawn()
        .map_err(|e| QueryError::internal(format!("starting a query worker: {e}")))?;
    let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
        return Err(QueryError::internal("a query worker has no pipes"));
    };
    Ok(Worker {
        child,
        stdin,
        stdout,
    })
}

/// The pool of worker processes.
pub struct WorkerPool {
    command: WorkerCommand,
    /// The thread that starts every worker: `PR_SET_PDEATHSIG` fires when the *thread*
    /// that forked exits, so workers are started from one that lives as long as the
    /// pool, never from a runtime thread that may retire.
    spawner: Mutex<Option<std::sync::mpsc::Sender<SpawnReply>>>,
    idle: Mutex<Vec<Worker>>,
    slots: Arc<Semaphore>,
    size: usize,
    time: Duration,
}

impl std::fmt::Debug for WorkerPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkerPool")
            .field("size", &self.size)
            .finish_non_exhaustive()
    }
}

fn busy() -> QueryError {
    QueryError::new(
        ErrorCode::Busy,
        "every query slot is busy; retry in a moment",
    )
}

/// Reads one frame (the server's side, async): the same framing as [`read_frame`].
async fn read_frame_async(r: &mut ChildStdout) -> std::io::Result<Option<(u8, Vec<u8>)>> {
    let mut head = [0u8; FRAME_HEAD];
    if let Err(e) = r.read_exact(&mut head).await {
        return frame_eof(e);
    }
    let (kind, mut buf) = frame_payload(&head)?;
    r.read_exact(&mut buf).await?;
    Ok(Some((kind, buf)))
}

/// An answer from a worker.
#[derive(Debug)]
pub enum Answer {
    /// A query result.
    Result(QueryOutput),
    /// A table list.
    Tables(Vec<TableInfo>),
}

impl WorkerPool {
    /// A pool of `size` workers started with `command`; `time` is the per-query limit.
    pub fn new(command: WorkerCommand, size: usize, time: Duration) -> Self {
        let size = size.max(1);
        Self {
            command,
            spawner: Mutex::new(None),
            idle: Mutex::new(Vec::new()),
            slots: Arc::new(Semaphore::new(size)),
            size,
            time,
        }
    }

    /// Global concurrency.
    pub fn size(&self) -> usize {
        self.size
    }

    /// Slots free now.
    pub fn available(&self) -> usize {
        self.slots.available_permits()
    }

    /// What confines the workers.
    pub fn sandbox(&self) -> &crate::sandbox::SandboxStatus {
        &self.command.sandbox
    }

    fn spawn(&self) -> Result<Worker, QueryError> {
        let stopped = || QueryError::internal("the query worker spawner stopped");
        let tx = {
            let mut spawner = self
                .spawner
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            match &*spawner {
                Some(tx) => tx.clone(),
                None => {
                    // tokio's Command needs the runtime; without one it cannot run anyway
                    let Ok(handle) = tokio::runtime::Handle::try_current() else {
                        return start_worker(&self.command);
                    };
                    let (tx, rx) = std::sync::mpsc::channel::<SpawnReply>();
                    let command = self.command.clone();
                    std::thread::Builder::new()
                        .name("dhub-worker-spawner".into())
                        .spawn(move || {
                            let _runtime = handle.enter();
                            for reply in rx {
                                let _ = reply.send(start_worker(&command));
                            }
                        })
                        .map_err(|e| {
                            QueryError::internal(format!("starting the worker spawner: {e}"))
                        })?;
                    *spawner = Some(tx.clone());
                    tx
                }
            }
        };
        let (reply, started) = std::sync::mpsc::sync_channel(1);
        tx.send(reply).map_err(|_| stopped())?;
        started.recv().map_err(|_| stopped())?
    }

    /// Starts every worker now (so the first queries do not pay for it).
    pub fn warm(&self) -> Result<(), QueryError> {
        let mut idle = self
            .idle
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        while idle.len() < self.size {
            idle.push(self.spawn()?);
        }
        Ok(())
    }

    /// Runs `req` on a free worker within the time limit. `Busy` when none is free.
    pub async fn ask(&self, req: &WorkerRequest) -> Result<Answer, QueryError> {
        let permit = match self.slots.clone().try_acquire_owned() {
            Ok(p) => p,
            Err(TryAcquireError::NoPermits) | Err(TryAcquireError::Closed) => return Err(busy()),
        };
        let worker = self
            .idle
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .pop();
        let mut worker = match worker {
            Some(w) => w,
            None => self.spawn()?,
        };
        let payload = serde_json::to_vec(req).map_err(|e| QueryError::internal(e.to_string()))?;
        let time = self.time + Duration::from_secs(2);
        let exchange = async {
            let mut frame = Vec::with_capacity(payload.len() + 9);
            frame.push(b'Q');
            frame.extend_from_slice(&(payload.len() as u64).to_le_bytes());
            frame.extend_from_slice(&payload);
            worker.stdin.write_all(&frame).await?;
            worker.stdin.flush().await?;
            let first = read_frame_async(&mut worker.stdout).await?;
            let second = match &first {
                Some((b'R', _)) => read_frame_async(&mut worker.stdout).await?,
                _ => None,
            };
            Ok::<_, std::io::Error>((first, second))
        };
        let res = tokio::time::timeout(time, exchange).await;
        let answer = match res {
            Err(_) => {
                // overran: kill it; a fresh one takes its place on the next request
                let _ = worker.child.kill().await;
                drop(permit);
                return Err(crate::service::timeout(self.time));
            }
            Ok(Err(e)) => {
                let _ = worker.child.kill().await;
                drop(permit);
                return Err(died(&e.to_string()));
            }
            Ok(Ok((None, _))) => {
                let status = worker.child.wait().await.ok();
                drop(permit);
                return Err(died(&format!("worker exited: {status:?}")));
            }
            Ok(Ok((Some((kind, body)), second))) => decode(kind, &body, second)?,
        };
        self.idle
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(worker);
        drop(permit);
        answer
    }
}

fn died(detail: &str) -> QueryError {
    QueryError::new(
        ErrorCode::ResourcesExhausted,
        "the query was stopped because it broke a resource bound (memory, CPU time, stack depth or size); simplify it, filter earlier or aggregate",
    )
    .with_detail(format!("query worker died: {detail}"))
}

fn decode(
    kind: u8,
    body: &[u8],
    second: Option<(u8, Vec<u8>)>,
) -> Result<Result<Answer, QueryError>, QueryError> {
    let bad = |m: String| QueryError::internal(format!("worker protocol: {m}"));
    match kind {
        b'E' => Ok(Err(
            serde_json::from_slice::<QueryError>(body).map_err(|e| bad(e.to_string()))?
        )),
        b'T' => Ok(Ok(Answer::Tables(
            serde_json::from_slice(body).map_err(|e| bad(e.to_string()))?,
        ))),
        b'R' => {
            let header: ResultHeader =
                serde_json::from_slice(body).map_err(|e| bad(e.to_string()))?;
            let Some((b'I', ipc)) = second else {
                return Err(bad("result without rows".into()));
            };
            let reader = StreamReader::try_new(std::io::Cursor::new(ipc), None)
                .map_err(|e| bad(e.to_string()))?;
            let schema = reader.schema();
            let batches = reader
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| bad(e.to_string()))?;
            Ok(Ok(Answer::Result(QueryOutput {
                schema,
                batches,
                rows: header.rows,
                bytes: header.bytes,
                disclosure: header.disclosure,
            })))
        }
        other => Err(bad(format!("unknown frame {other}"))),
    }
}
