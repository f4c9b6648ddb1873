//! [`Sandbox`]: the engine behind the REST API and the MCP tools.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use switchboard_protocol::sandbox::{
    ExecuteRequest, ExecutionResult, InstallOutcome, InstallRequest,
};
use switchboard_runtime::{Metrics, propagation};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::{
    Config, Error,
    config::Limits,
    error::ExecuteError,
    isolation::{CgroupLimits, Isolation, IsolationSettings, RlimitSettings},
    metrics::SandboxMetrics,
    packages::{AdminError, Installed, Packages, Pending},
    pool::{Pool, TakeError},
    sessions::{SessionRun, Sessions},
    worker::{BOOTSTRAP, InputFiles, Job, OutputLimits},
};

/// What a run may hand back from /work/outputs/: a few charts or tables, not a data set
/// (download those from a session).
const OUTPUT_LIMITS: OutputLimits = OutputLimits {
    max_files: 16,
    max_bytes: 8 << 20,
};
/// Most input files one request may carry.
const MAX_INPUT_FILES: usize = 64;

/// The program run once at start-up to check that isolation is in force.
/// (Python itself sets LC_CTYPE when it coerces the C locale to UTF-8, PEP 538.)
const SELF_TEST: &str = "import os, socket\nprint(os.getuid(), os.getgid(), os.getpid(), socket.gethostname(), len([k for k in os.environ if k != 'LC_CTYPE']))\n";
const SELF_TEST_EXPECTED: &str = "1000 1000 1 sandbox 0";

struct Inner {
    pool: Pool,
    sessions: Sessions,
    /// Packages installed at start: `None` until done, then what became of each.
    preinstall: std::sync::Mutex<Option<Vec<serde_json::Value>>>,
    preinstall_pins: Vec<String>,
    limits: Limits,
    slots: Arc<Semaphore>,
    queue_timeout: Duration,
    metrics: SandboxMetrics,
    packages: Packages,
    isolation: serde_json::Value,
    audit: switchboard_runtime::audit::Audit,
}

/// The sandbox: a pool of isolated interpreters and the package manager. Cheap to clone.
#[derive(Clone)]
pub struct Sandbox {
    inner: Arc<Inner>,
}

impl Sandbox {
    /// Prepare isolation, fill the pool and run a self-test program. Fails — and the service
    /// must not start — when the host refuses the isolation, or lacks a layer the
    /// configuration does not explicitly let it run without.
    pub async fn start(
        config: &Config,
        metrics: &Metrics,
        shutdown: CancellationToken,
    ) -> Result<Self, Error> {
        // Not dumpable: no other process of our uid (pip, a build; only CAP_SYS_PTRACE) may
        // open our descriptors through /proc/<pid>/fd or trace us, and with them every idle
        // worker's stdin, stdout and stderr. Workers undo the inheritance at once and redo it
        // after execve (`bootstrap.py`).
        // SAFETY: a plain prctl on this process.
        if unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) } != 0 {
            return Err(Error::Isolation(format!(
                "prctl(PR_SET_DUMPABLE, 0): {}",
                std::io::Error::last_os_error()
            )));
        }
        // SAFETY: plain getter.
        let root = unsafe { libc::geteuid() } == 0;
        let run_as = root.then_some((config.installer_uid, config.installer_gid));
        prepare_packages_dir(&config.packages.dir)?;
        let state = open_state_dir(&config.packages)?;
        let limits = config.limits.clone();
        let settings = IsolationSettings {
            python: config.python.clone(),
            python_args: ["-I", "-S", "-B", "-c", BOOTSTRAP]
                .map(String::from)
                .to_vec(),
            ro_paths: config.ro_paths.clone(),
            packages_dir: Some(config.packages.dir.clone()),
            host_uid: config.host_uid,
            host_gid: config.host_gid,
            scratch_bytes: limits.scratch_bytes,
            exec_scratch: config.allow_exec_scratch,
            allow_weaker: config.allow_weaker_isolation.clone(),
            rlimits: RlimitSettings {
                cpu_seconds: limits.cpu_seconds,
                file_bytes: limits.max_file_bytes,
                processes: limits.max_processes,
                open_files: 256,
                memory_bytes: limits.memory_bytes,
            },
            cgroup: CgroupLimits {
                memory_bytes: limits.memory_bytes,
                processes: limits.max_processes,
                cpu_quota_us: (limits.cpus * 100_000.0) as u64,
            },
        };
        let isolation = tokio::task::spawn_blocking(move || Isolation::prepare(&settings))
            .await
            .map_err(|e| Error::Config(format!("preparing isolation: {e}")))??;
        let description = isolation.describe();
        let degraded = isolation.degraded();
        let sandbox_metrics = SandboxMetrics::register(metrics, config.pool_size);
        sandbox_metrics.isolation(&degraded);
        let pool = Pool::start(
            isolation,
            config.pool_size,
            sandbox_metrics.pool.clone(),
            shutdown.child_token(),
        )
        .map_err(|e| Error::Config(format!("starting the spawner thread: {e}")))?;
        let packages = Packages::new(
            &config.python,
            &config.packages,
            run_as,
            state,
            sandbox_metrics.decisions.clone(),
        );
        let sessions = Sessions::start(
            pool.clone(),
            config.sessions.clone(),
            limits.clone(),
            config.queue_timeout,
            metrics,
            shutdown.child_token(),
        );
        let sandbox = Sandbox {
            inner: Arc::new(Inner {
                sessions,
                preinstall: std::sync::Mutex::new(None),
                preinstall_pins: config.packages.preinstall.clone(),
                pool,
                limits,
                slots: Arc::new(Semaphore::new(config.max_concurrent)),
                queue_timeout: config.queue_timeout,
                metrics: sandbox_metrics,
                packages,
                isolation: description.clone(),
                audit: config.http.audit.clone(),
            }),
        };
        if let Err(error) = sandbox.self_test().await {
            sandbox.shutdown().await;
            return Err(error);
        }
        for layer in &degraded {
            tracing::warn!(
                layer = %layer.layer,
                why = %layer.why,
                "isolation layer not enforced: running without it because allow_weaker_isolation names it"
            );
        }
        tracing::info!(isolation = %description, "sandbox isolation in force");
        sandbox.start_preinstall();
        Ok(sandbox)
    }

    async fn self_test(&self) -> Result<(), Error> {
        let worker =
            match tokio::time::timeout(Duration::from_secs(60), self.inner.pool.take(true)).await {
                Ok(Ok(worker)) => worker,
                Ok(Err(TakeError::Failing { message, hint })) => {
                    return Err(Error::Isolation(match hint {
                        Some(hint) => format!("{message}; {hint}"),
                        None => message,
                    }));
                }
                Ok(Err(TakeError::Stopped)) => {
                    return Err(Error::Isolation("stopped during start-up".into()));
                }
                Err(_) => {
                    return Err(Error::Isolation(
                        "no sandboxed interpreter became ready within 60 s".into(),
                    ));
                }
            };
        let finished = worker
            .run(Job {
                code: SELF_TEST.into(),
                stdin: None,
                timeout: Duration::from_secs(10),
                max_output_bytes: 4096,
                files: InputFiles::default(),
                outputs: OUTPUT_LIMITS,
                abandoned: CancellationToken::new(),
            })
            .await;
        let leftovers = finished.leftovers;
        tokio::task::spawn_blocking(move || leftovers.release());
        self.inner.pool.replenish();
        let out = finished.result.stdout.trim();
        if out != SELF_TEST_EXPECTED {
            return Err(Error::Isolation(format!(
                "the isolation self-test printed {out:?} (stderr {:?}), expected {SELF_TEST_EXPECTED:?} (uid gid pid hostname #env)",
                finished.result.stderr.trim()
            )));
        }
        Ok(())
    }

    /// Where executions, package requests and approvals are recorded.
    pub fn audit(&self) -> &switchboard_runtime::audit::Audit {
        &self.inner.audit
    }

    /// The code-interpreter sessions.
    pub(crate) fn sessions(&self) -> &Sessions {
        &self.inner.sessions
    }

    /// Run one program: in a fresh isolated interpreter, or in session `request.session_id`
    /// of `owner`.
    pub async fn execute(
        &self,
        request: ExecuteRequest,
        owner: &str,
    ) -> Result<ExecutionResult, ExecuteError> {
        let result = self.execute_inner(request, owner).await;
        if let Err(error) = &result {
            self.inner.metrics.count(match error {
                ExecuteError::BadRequest(_)
                | ExecuteError::TooLarge(_)
                | ExecuteError::NoSession(_)
                | ExecuteError::SessionEnded(_)
                | ExecuteError::NotFound(_) => "rejected",
                ExecuteError::Busy(_) | ExecuteError::Unavailable(_) | ExecuteError::TooMany(_) => {
                    "unavailable"
                }
                ExecuteError::Lost(_) => "lost",
            });
        }
        result
    }

    async fn execute_inner(
        &self,
        request: ExecuteRequest,
        owner: &str,
    ) -> Result<ExecutionResult, ExecuteError> {
        let limits = &self.inner.limits;
        let timeout = match request.timeout_seconds {
            None => limits.default_timeout,
            Some(t) if t.is_finite() && t > 0.0 => {
                Duration::from_secs_f64(t.min(1e6)).min(limits.max_timeout)
            }
            Some(t) => {
                return Err(ExecuteError::BadRequest(format!(
                    "timeout_seconds must be a positive number of seconds (at most {}); got {t}",
                    limits.max_timeout.as_secs_f64()
                )));
            }
        };
        let files = InputFiles::new(
            &request.files,
            MAX_INPUT_FILES,
            limits.max_file_bytes,
            limits.scratch_bytes / 2,
        )
        .map_err(ExecuteError::BadRequest)?;
        let waited = Instant::now();
        let busy = || {
            ExecuteError::Busy(format!(
                "every sandboxed interpreter stayed busy for {}s; try again shortly",
                self.inner.queue_timeout.as_secs_f64()
            ))
        };
        let permit = tokio::time::timeout(
            self.inner.queue_timeout,
            self.inner.slots.clone().acquire_owned(),
        )
        .await
        .map_err(|_| busy())?
        .map_err(|_| ExecuteError::Unavailable("the sandbox is shutting down".into()))?;
        if let Some(id) = &request.session_id {
            let run = SessionRun {
                code: request.code,
                stdin: request.stdin,
                files,
                timeout,
                max_output_bytes: limits.max_output_bytes,
                outputs: OUTPUT_LIMITS,
            };
            let result = self.inner.sessions.execute(owner, id, run).await;
            drop(permit);
            if let Ok(result) = &result {
                let outcome = self.inner.metrics.record(result, None);
                tracing::debug!(
                    outcome,
                    session = %id,
                    exit_code = result.exit_code,
                    duration_ms = result.duration_ms,
                    "program finished"
                );
            }
            return result;
        }
        let left = self.inner.queue_timeout.saturating_sub(waited.elapsed());
        let worker = match tokio::time::timeout(left, self.inner.pool.take(false)).await {
            Ok(Ok(worker)) => worker,
            Ok(Err(error)) => return Err(ExecuteError::Unavailable(error.to_string())),
            Err(_) => return Err(busy()),
        };
        let job = Job {
            code: request.code,
            stdin: request.stdin,
            timeout,
            max_output_bytes: limits.max_output_bytes,
            files,
            outputs: OUTPUT_LIMITS,
            abandoned: CancellationToken::new(),
        };
        // When this request is dropped before the answer (the caller cancelled its call or
        // task, or closed the connection), the program is killed: nobody reads its result, and
        // it would otherwise hold an interpreter and its CPU until its own time limit.
        let _abandon_when_dropped = job.abandoned.clone().drop_guard();
        let inner = self.inner.clone();
        // Its own task, so that the worker is always reaped and its groups released, however the
        // request ends. It runs in the request's span (the caller's trace), so its log lines
        // carry the trace id.
        let request_span = tracing::Span::current();
        let trace_id = propagation::trace_id(&request_span);
        let run = tokio::spawn(
            async move {
                let finished = worker.run(job).await;
                drop(permit);
                let result = &finished.result;
                let outcome = inner.metrics.record(result, finished.killed);
                tracing::debug!(
                    outcome,
                    exit_code = result.exit_code,
                    duration_ms = result.duration_ms,
                    "program finished"
                );
                let leftovers = finished.leftovers;
                // After the answer: start the replacement, release the namespace and groups.
                // Not in the request's span, which would then stay open (and its exported
                // duration grow) until the clean-up is done: the trace id is named instead.
                tokio::spawn(async move {
                    tokio::task::yield_now().await;
                    inner.pool.replenish();
                    let strays = tokio::task::spawn_blocking(move || leftovers.release()).await;
                    if let Ok(strays) = strays
                        && !strays.is_empty()
                    {
                        tracing::error!(
                            ?strays,
                            trace_id = trace_id.map(tracing::field::display),
                            "processes outlived their sandbox's PID 1 and were killed"
                        );
                    }
                });
                finished.result
            }
            .instrument(request_span),
        );
        run.await.map_err(|e| {
            ExecuteError::Lost(format!(
                "the program may have started, and its result was lost: {e}"
            ))
        })
    }

    pub(crate) async fn install(&self, request: &InstallRequest) -> InstallOutcome {
        self.inner.packages.request(request).await
    }

    pub(crate) async fn approve(
        &self,
        id: &str,
        token: Option<&str>,
    ) -> Result<InstallOutcome, AdminError> {
        self.inner.packages.approve(id, token).await
    }

    pub(crate) fn reject(
        &self,
        id: &str,
        token: Option<&str>,
    ) -> Result<InstallOutcome, AdminError> {
        self.inner.packages.reject(id, token)
    }

    pub(crate) fn pending(&self) -> Vec<Pending> {
        self.inner.packages.pending_list()
    }

    pub(crate) fn installed(&self) -> Vec<Installed> {
        self.inner.packages.installed()
    }

    /// Destroy the idle interpreters and release the host resources (cgroups). Programs
    /// still running finish on their own; the service stops accepting them first.
    pub async fn shutdown(&self) {
        self.inner.pool.shutdown().await;
    }

    /// The isolation in force (as on `/ready`).
    pub fn isolation(&self) -> serde_json::Value {
        self.inner.isolation.clone()
    }

    pub(crate) fn readiness(&self) -> SandboxReadiness {
        SandboxReadiness(self.clone())
    }
}

mod dirs;
mod readiness;

use dirs::{open_state_dir, prepare_packages_dir};
pub(crate) use readiness::SandboxReadiness;
