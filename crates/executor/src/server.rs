//! One Python fork-server process and the framed conversation with it.
//!
//! The server is started as `python -S -s -c BOOTSTRAP HARNESS MODE` with a
//! cleared environment and a fixed `PYTHONHASHSEED`, in its own process group, with `PR_SET_PDEATHSIG`
//! (so it dies with the thread that owns it) and optionally inside fresh
//! namespaces (see `sandbox::namespaces`). Every read has a deadline: a server that does
//! not answer in time is killed with its whole process group, and its owner
//! starts a new one.

use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::config::ScratchLimits;
use crate::sandbox::namespaces::{Identity, NamespacePlan};
use crate::wire::{Job, Reply, ReplyHeader};

/// Requests larger than this are refused.
pub(crate) const FRAME_CAP: usize = 4 << 20;

/// Most invocations of one program a single child runs: enough to share
/// its start-up cost, few enough to keep the pool busy.
pub(crate) const MAX_BATCH: usize = 4;

/// The directory inside a server's own where its children's scratch
/// directories go; with namespaces the server's tmpfs is mounted on it.
pub(crate) const SCRATCH_SUBDIR: &str = "scratch";

/// The start-up reply (probe result) is small.
const HELLO_CAP: usize = 1 << 20;

/// Executes the harness with a private copy of the builtins (see
/// `python/harness.py`).
///
/// Why not `-I`: isolated mode also ignores `PYTHONHASHSEED`, so every server
/// would hash strings with its own random seed and a candidate that prints a
/// set of strings would get differently ordered traces (and verdicts)
/// depending on which server ran it. The environment is cleared, so `-E`
/// guards nothing here; `-s` drops the user site directory, and the
/// bootstrap removes the current-directory entry that `-c` puts on
/// `sys.path` (what `-P` does on Python 3.11+).
const BOOTSTRAP: &str = "import builtins,sys;sys.path[:]=[p for p in sys.path if p];exec(compile(sys.argv[1],'<egcfg>','exec'),\
{'__builtins__':dict(vars(builtins)),'__name__':'__egcfg__'})";

/// The harness source, embedded in the binary.
pub(crate) const HARNESS: &str = include_str!("python/harness.py");

/// How a server process is started (shared by all servers of a pool).
#[derive(Clone)]
pub(crate) struct Launch {
    /// The real interpreter.
    pub(crate) python: PathBuf,
    /// seccomp programs the server installs, hex encoded; empty when
    /// seccomp is off.
    pub(crate) seccomp_server: Vec<String>,
    /// seccomp programs each child installs.
    pub(crate) seccomp_child: Vec<String>,
    /// Enter user, network, IPC, UTS, PID and mount namespaces.
    pub(crate) namespaces: bool,
    /// Who the children run as.
    pub(crate) identity: Identity,
    /// Bounds on each server's scratch tmpfs (namespaces only).
    pub(crate) scratch: ScratchLimits,
    /// Limits for the start-up probe child.
    pub(crate) probe_limits: crate::wire::WireLimits,
}

/// The config frame the harness reads first.
#[derive(Serialize)]
struct ServerConfig<'a> {
    seccomp_server: &'a [String],
    seccomp_child: &'a [String],
    landlock_fd: Option<i32>,
    scratch: String,
    /// The uid and gid a child switches to before it runs anything.
    child_id: Option<u32>,
    probe_limits: &'a crate::wire::WireLimits,
}

impl ServerConfig<'_> {
    /// The serialised config frame for a harness started from `launch`,
    /// confined by the ruleset `landlock_fd` and writing beneath `scratch`;
    /// servers and one-shot runs send the same one.
    fn frame(launch: &Launch, landlock_fd: Option<i32>, scratch: &Path) -> Vec<u8> {
        let config = ServerConfig {
            seccomp_server: &launch.seccomp_server,
            seccomp_child: &launch.seccomp_child,
            landlock_fd,
            scratch: scratch.to_string_lossy().into_owned(),
            child_id: launch.identity.child_id,
            probe_limits: &launch.probe_limits,
        };
        serde_json::to_vec(&config).expect("config serialises")
    }
}

/// What a server needs to know of a request to supervise its child: no
/// program, no test text.
#[derive(Serialize)]
struct RequestHead {
    id: u64,
    invocations: usize,
    timeout_s: f64,
    wall_stretch: f64,
    kill_margin_s: f64,
    result_bytes: u64,
}

impl RequestHead {
    fn of(job: &Job) -> RequestHead {
        RequestHead {
            id: job.id,
            invocations: job.invocations.len(),
            timeout_s: job.limits.timeout_s,
            wall_stretch: job.limits.wall_stretch,
            kill_margin_s: job.limits.kill_margin_s,
            result_bytes: job.limits.result_bytes,
        }
    }
}

/// Why talking to a server failed. Except for `Refused`, the server is
/// unusable afterwards.
#[derive(Debug)]
pub(crate) enum ServerFailure {
    /// The request was not sent (too large); the server is fine.
    Refused(String),
    /// No complete reply before the deadline.
    Unresponsive(Duration),
    /// The pipe broke or the reply was malformed.
    Broken(String),
}

impl std::fmt::Display for ServerFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ServerFailure::Refused(why) => f.write_str(why),
            ServerFailure::Unresponsive(d) => {
                write!(
                    f,
                    "fork-server gave no answer within {:.1} s; it was replaced",
                    d.as_secs_f64()
                )
            }
            ServerFailure::Broken(why) => write!(f, "fork-server failed ({why}); it was replaced"),
        }
    }
}

/// A running server.
pub(crate) struct Server {
    child: Child,
    input: ChildStdin,
    output: ChildStdout,
    next_id: u64,
    /// The start-up probe's reply (what an isolated child could do).
    pub(crate) hello: Reply,
}

impl Server {
    /// Starts a server whose children write beneath `dir` (in its
    /// [`SCRATCH_SUBDIR`], which must exist) and restrict themselves with
    /// `landlock` (a ruleset descriptor) when given.
    pub(crate) fn spawn(
        launch: &Arc<Launch>,
        dir: PathBuf,
        landlock: Option<OwnedFd>,
        startup_deadline: Duration,
    ) -> Result<Server, String> {
        let landlock_fd = landlock.as_ref().map(|fd| fd.as_raw_fd());
        let scratch = dir.join(SCRATCH_SUBDIR);
        let mut command = command(launch, landlock_fd, &scratch, "server")?;
        let mut child = command
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", launch.python.display()))?;
        drop(landlock);
        let input = child.stdin.take().expect("piped stdin");
        let output = child.stdout.take().expect("piped stdout");
        let mut stderr = child.stderr.take().expect("piped stderr");
        let mut server = Server {
            child,
            input,
            output,
            next_id: 1,
            hello: Reply {
                header: ReplyHeader::default(),
                body: Vec::new(),
            },
        };
        let frame = ServerConfig::frame(launch, landlock_fd, &scratch);
        let hello = server
            .write_frame(&frame)
            .and_then(|()| server.read_reply(startup_deadline, HELLO_CAP));
        match hello {
            Ok(reply) => {
                server.hello = reply;
                Ok(server)
            }
            Err(failure) => {
                server.kill();
                let mut text = String::new();
                let _ = stderr.read_to_string(&mut text);
                let text = text.trim();
                Err(if text.is_empty() {
                    failure.to_string()
                } else {
                    format!("{failure}: {}", tail(text, 2000))
                })
            }
        }
    }

    /// Sends `job` and waits at most `deadline` for the reply.
    pub(crate) fn request(
        &mut self,
        job: &mut Job,
        deadline: Duration,
    ) -> Result<Reply, ServerFailure> {
        job.id = self.next_id;
        self.next_id += 1;
        let body = serde_json::to_vec(job).expect("jobs serialise");
        if body.len() > FRAME_CAP {
            return Err(ServerFailure::Refused(format!(
                "request of {} bytes exceeds the {} byte frame cap",
                body.len(),
                FRAME_CAP
            )));
        }
        // The server reads only the head; the job itself it passes to the
        // child undecoded (see the harness's `read_request`).
        let head = serde_json::to_vec(&RequestHead::of(job)).expect("heads serialise");
        let mut frame = Vec::with_capacity(4 + head.len() + body.len());
        frame.extend_from_slice(&(head.len() as u32).to_le_bytes());
        frame.extend_from_slice(&head);
        frame.extend_from_slice(&body);
        self.write_frame(&frame)?;
        let reply = self.read_reply(deadline, job.reply_cap())?;
        if reply.header.id != Some(job.id) {
            return Err(ServerFailure::Broken(format!(
                "reply for request {:?}, expected {}",
                reply.header.id, job.id
            )));
        }
        Ok(reply)
    }

    fn write_frame(&mut self, payload: &[u8]) -> Result<(), ServerFailure> {
        let len = (payload.len() as u32).to_le_bytes();
        self.input
            .write_all(&len)
            .and_then(|()| self.input.write_all(payload))
            .and_then(|()| self.input.flush())
            .map_err(|e| ServerFailure::Broken(format!("write: {e}")))
    }

    fn read_reply(&mut self, deadline: Duration, cap: usize) -> Result<Reply, ServerFailure> {
        let until = Instant::now() + deadline;
        let mut len = [0u8; 4];
        self.read_exact_until(&mut len, until, deadline)?;
        let n = u32::from_le_bytes(len) as usize;
        if !(4..=cap).contains(&n) {
            return Err(ServerFailure::Broken(format!("reply frame of {n} bytes")));
        }
        let mut frame = vec![0u8; n];
        self.read_exact_until(&mut frame, until, deadline)?;
        let header_len = u32::from_le_bytes(frame[0..4].try_into().expect("4 bytes")) as usize;
        if header_len > n - 4 {
            return Err(ServerFailure::Broken(
                "reply header overruns its frame".into(),
            ));
        }
        let header: ReplyHeader = serde_json::from_slice(&frame[4..4 + header_len])
            .map_err(|e| ServerFailure::Broken(format!("reply header: {e}")))?;
        let body = frame.split_off(4 + header_len);
        Ok(Reply { header, body })
    }

    fn read_exact_until(
        &mut self,
        buf: &mut [u8],
        until: Instant,
        budget: Duration,
    ) -> Result<(), ServerFailure> {
        let fd = self.output.as_raw_fd();
        let mut filled = 0;
        while filled < buf.len() {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(ServerFailure::Unresponsive(budget));
            }
            let mut pfd = libc::pollfd {
                fd,
                events: libc::POLLIN,
                revents: 0,
            };
            let ms = left.as_millis().clamp(1, i32::MAX as u128) as i32;
            // SAFETY: one valid pollfd for the duration of the call.
            let ready = unsafe { libc::poll(&mut pfd, 1, ms) };
            if ready < 0 {
                let err = std::io::Error::last_os_error();
                if err.kind() == std::io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(ServerFailure::Broken(format!("poll: {err}")));
            }
            if ready == 0 {
                continue;
            }
            match self.output.read(&mut buf[filled..]) {
                Ok(0) => return Err(ServerFailure::Broken("the server exited".into())),
                Ok(n) => filled += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(ServerFailure::Broken(format!("read: {e}"))),
            }
        }
        Ok(())
    }

    /// Kills the server's whole process group and reaps it.
    pub(crate) fn kill(&mut self) {
        let pid = self.child.id() as i32;
        // SAFETY: signalling our own child's process group.
        unsafe {
            libc::killpg(pid, libc::SIGKILL);
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

/// How many nice steps the sandbox runs below the process that starts it.
const SANDBOX_NICE: i32 = 10;

/// The interpreter command line with the environment, pipes, process
/// group, lowered priority, parent-death signal, inherited Landlock descriptor and namespaces
/// every harness process gets.
fn command(
    launch: &Launch,
    landlock_fd: Option<i32>,
    scratch: &Path,
    mode: &str,
) -> Result<Command, String> {
    let mut command = Command::new(&launch.python);
    command
        .args(["-S", "-s", "-c", BOOTSTRAP, HARNESS, mode])
        .env_clear()
        .env("PYTHONHASHSEED", "0")
        .env("PATH", "/usr/local/bin:/usr/bin:/bin")
        .env("LANG", "C.UTF-8")
        .env("OMP_NUM_THREADS", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    let plan = launch
        .namespaces
        .then(|| NamespacePlan::new(launch.identity, &launch.python, scratch, launch.scratch))
        .transpose()
        .map_err(|e| format!("cannot plan the namespaces: {e}"))?;
    // SAFETY: getpid cannot fail.
    let parent = unsafe { libc::getpid() };
    // SAFETY: the closure runs between fork and exec and only makes
    // async-signal-safe calls on values prepared before the fork.
    unsafe {
        command.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) != 0
                || libc::getppid() != parent
            {
                return Err(std::io::Error::other("parent gone"));
            }
            // Candidates must not take the cores from the model's decode
            // threads: the interpreter and every program it forks run
            // SANDBOX_NICE steps below the thread that started it (nice is
            // inherited across fork, and raising it needs no privilege).
            // Best effort: a failure leaves the priority as it was.
            let _ = libc::nice(SANDBOX_NICE);
            if let Some(fd) = landlock_fd {
                if libc::fcntl(fd, libc::F_SETFD, 0) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            if let Some(plan) = &plan {
                plan.enter(landlock_fd)?;
            }
            Ok(())
        });
    }
    Ok(command)
}

/// Runs `job` in a fresh interpreter that applies the same isolation to
/// itself (the spawn-per-execution baseline of the benchmark).
pub(crate) fn run_oneshot(
    launch: &Launch,
    dir: PathBuf,
    landlock: Option<OwnedFd>,
    job: &mut Job,
    deadline: Duration,
) -> crate::result::ExecResult {
    match run_oneshot_body(launch, dir, landlock, job, deadline) {
        Ok(body) => crate::wire::parse_body(&body),
        Err((status, detail)) => crate::result::ExecResult::failure(status, detail),
    }
}

/// Runs `job` in a fresh interpreter (as [`run_oneshot`]) and returns the
/// body of its verified result frame, or the failure's status and detail.
pub(crate) fn run_oneshot_body(
    launch: &Launch,
    dir: PathBuf,
    landlock: Option<OwnedFd>,
    job: &mut Job,
    deadline: Duration,
) -> Result<Vec<u8>, (crate::result::Status, String)> {
    use crate::result::Status;
    let landlock_fd = landlock.as_ref().map(|fd| fd.as_raw_fd());
    let mut nonce = [0u8; 16];
    if std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut nonce))
        .is_err()
    {
        return Err((Status::InternalError, "cannot read /dev/urandom".into()));
    }
    job.nonce = Some(nonce.iter().map(|b| format!("{b:02x}")).collect());
    let scratch = dir.join(SCRATCH_SUBDIR);
    let spawned = command(launch, landlock_fd, &scratch, "oneshot")
        .and_then(|mut c| c.stderr(Stdio::null()).spawn().map_err(|e| e.to_string()));
    let mut child = match spawned {
        Ok(child) => child,
        Err(e) => return Err((Status::InternalError, format!("spawn: {e}"))),
    };
    drop(landlock);
    let mut input = child.stdin.take().expect("piped stdin");
    let frames = [
        ServerConfig::frame(launch, landlock_fd, &scratch),
        serde_json::to_vec(job).expect("jobs serialise"),
    ];
    for frame in &frames {
        let _ = input
            .write_all(&(frame.len() as u32).to_le_bytes())
            .and_then(|()| input.write_all(frame));
    }
    drop(input);
    let mut output = child.stdout.take().expect("piped stdout");
    let until = Instant::now() + deadline;
    let mut buf = Vec::new();
    let read = read_to_end_until(&mut output, &mut buf, until, job.reply_cap());
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);
    if let Err(e) = read {
        return Err((Status::Timeout, e));
    }
    if buf.len() < 20
        || buf[4..20] != nonce
        || u32::from_le_bytes(buf[0..4].try_into().expect("4 bytes")) as usize != buf.len() - 4
    {
        return Err((Status::ProtocolError, "bad one-shot result frame".into()));
    }
    Ok(buf.split_off(20))
}

fn read_to_end_until(
    output: &mut ChildStdout,
    buf: &mut Vec<u8>,
    until: Instant,
    cap: usize,
) -> Result<(), String> {
    let fd = output.as_raw_fd();
    let mut chunk = [0u8; 65536];
    loop {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err("no result before the deadline".into());
        }
        let mut pfd = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        let ms = left.as_millis().clamp(1, i32::MAX as u128) as i32;
        // SAFETY: one valid pollfd for the duration of the call.
        if unsafe { libc::poll(&mut pfd, 1, ms) } <= 0 {
            continue;
        }
        match output.read(&mut chunk) {
            Ok(0) => return Ok(()),
            Ok(n) if buf.len() + n <= cap => buf.extend_from_slice(&chunk[..n]),
            Ok(_) => return Err("result over the frame cap".into()),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(format!("read: {e}")),
        }
    }
}

fn tail(text: &str, max: usize) -> &str {
    let start = text.len().saturating_sub(max);
    let start = (start..text.len())
        .find(|&i| text.is_char_boundary(i))
        .unwrap_or(0);
    &text[start..]
}
