//! Hostile programs aimed at the host rather than at the tracer: privilege,
//! reading the user's files, IPC, Unix sockets, other executions' scratch,
//! scratch size, clean-up and deadlines. Every case runs twice, through an
//! executor with every layer (namespaces on) and through one forced into
//! the degraded mode of machines without user namespaces. After each case
//! a trivial call must still work and no fork-server may have been
//! replaced.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use egcfg_executor::{
    ExecLimits, ExecResult, Executor, ExecutorConfig, Invocation, Layer, MinIsolation, Status,
    TraceRequest,
};

/// One executor and what its cases need to know about it.
struct Mode {
    name: &'static str,
    executor: Executor,
}

/// Files the candidates aim at: outside every scratch, reachable (but not
/// writable) by any user.
struct Host {
    dir: tempfile::TempDir,
}

fn host() -> &'static Host {
    static HOST: OnceLock<Host> = OnceLock::new();
    HOST.get_or_init(|| {
        let dir = tempfile::Builder::new()
            .prefix("egcfg-hostile-")
            .tempdir()
            .unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let target = dir.path().join("target.txt");
        std::fs::write(&target, "host file").unwrap();
        std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o644)).unwrap();
        Host { dir }
    })
}

/// The executors shared by the cases (default scratch root, which the
/// next executor sweeps once this process is gone).
fn modes() -> &'static [Mode] {
    static MODES: OnceLock<Vec<Mode>> = OnceLock::new();
    MODES.get_or_init(|| both_modes(None))
}

/// An executor with every layer, and one in degraded mode. Without
/// namespaces nothing can make a 0700 home searchable, so the degraded one
/// uses the system interpreter when there is one.
fn both_modes(scratch_root: Option<&Path>) -> Vec<Mode> {
    let system = Some(PathBuf::from("/usr/bin/python3")).filter(|p| p.exists());
    vec![
        start("namespaces", true, None, scratch_root),
        start("degraded", false, system, scratch_root),
    ]
}

fn start(
    name: &'static str,
    namespaces: bool,
    python: Option<PathBuf>,
    scratch_root: Option<&Path>,
) -> Mode {
    let defaults = ExecutorConfig::default();
    let config = ExecutorConfig {
        scratch_root: scratch_root.map_or(defaults.scratch_root.clone(), Path::to_path_buf),
        pool_size: 2,
        python,
        namespaces,
        limits: ExecLimits {
            timeout: Duration::from_secs(2),
            memory_bytes: 512 << 20,
            ..ExecLimits::default()
        },
        min_isolation: MinIsolation {
            layers: vec![Layer::Seccomp, Layer::Unprivileged],
        },
        cache_capacity: 0,
        ..defaults
    };
    let executor = Executor::start(config).unwrap_or_else(|e| panic!("{name} executor: {e}"));
    assert_eq!(
        executor.caps().has(Layer::Namespaces),
        namespaces,
        "{name}: {}",
        executor.caps()
    );
    Mode { name, executor }
}

fn manager_is_root() -> bool {
    // SAFETY: getuid cannot fail.
    unsafe { libc::getuid() == 0 }
}

fn request(program: &str) -> TraceRequest {
    let h = host();
    let program = program
        .replace("HOST_DIR", &h.dir.path().to_string_lossy())
        .replace("MANAGER_PID", &std::process::id().to_string());
    TraceRequest {
        program,
        setup: None,
        invocation: Invocation::Call {
            expr: "case()".into(),
        },
    }
}

/// Traces `program`'s `case()` and checks what must hold after any case.
fn run(mode: &Mode, program: &str) -> ExecResult {
    let started = Instant::now();
    let result = mode.executor.trace(&[request(program)]).remove(0);
    let elapsed = started.elapsed();
    assert!(
        elapsed < Duration::from_millis(4500),
        "{}: took {elapsed:?}",
        mode.name
    );
    still_serving(mode);
    result
}

fn still_serving(mode: &Mode) {
    let started = Instant::now();
    let ok = mode.executor.trace(&[request("def case():\n    return 2")]);
    assert_eq!(ok[0].status, Status::Ok, "{}: {:?}", mode.name, ok[0]);
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{}: the next execution waited {:?}",
        mode.name,
        started.elapsed()
    );
    assert_eq!(
        mode.executor.server_restarts(),
        0,
        "{}: no fork-server may be replaced",
        mode.name
    );
}

/// The value `case()` returned, or a panic naming the mode and result.
fn returned(mode: &Mode, r: &ExecResult) -> String {
    assert_eq!(r.status, Status::Ok, "{}: {r:?}", mode.name);
    r.ret.clone().unwrap()
}

/// Helpers every program below starts with: `attempt` returns 0 or the
/// errno of an `OSError`, `c_attempt` the errno of a failed libc call.
const ATTEMPT: &str = r#"import os, ctypes
libc = ctypes.CDLL(None, use_errno=True)
def attempt(fn):
    try:
        fn()
        return 0
    except OSError as e:
        return e.errno
def c_attempt(rc):
    return ctypes.get_errno() if rc == -1 else 0
"#;

/// Asserts that the `[...]` list `ret` holds no 0, i.e. every attempt failed.
fn all_failed(mode: &Mode, ret: &str) {
    assert!(
        !ret.trim_matches(['[', ']']).split(", ").any(|e| e == "0"),
        "{}: every attempt must fail: {ret}",
        mode.name
    );
}

#[test]
fn privilege_children_change_no_host_file_and_read_no_root_secret() {
    if !manager_is_root() {
        eprintln!("only root can make a file the children do not own");
        return;
    }
    let target = host().dir.path().join("target.txt");
    let program = ATTEMPT.to_string()
        + r#"import fcntl, struct, stat
def flags(p):
    fd = os.open(p, os.O_RDONLY)
    try:
        fcntl.ioctl(fd, 0x40086602, struct.pack('l', 0x10))
    finally:
        os.close(fd)
def read(p):
    with open(p, 'rb') as f:
        f.read()
def host_uid():
    uid = os.getuid()
    for line in open('/proc/self/uid_map'):
        inside, outside, count = map(int, line.split())
        if inside <= uid < inside + count:
            return outside + uid - inside
def case():
    p = 'HOST_DIR/target.txt'
    caps = [l for l in open('/proc/self/status') if l.startswith('CapEff')][0].split()[1]
    groups = os.getgid() != 0 and not os.getgroups()
    who = [os.path.exists(p), host_uid() != 0, groups, int(caps, 16)]
    return who + [
        attempt(lambda: os.chmod(p, 0o4777)),
        attempt(lambda: os.chown(p, 65534, 65534)),
        attempt(lambda: os.utime(p, (0, 0))),
        attempt(lambda: os.setxattr(p, 'user.egcfg', b'x')),
        attempt(lambda: os.setxattr(p, 'trusted.egcfg', b'x')),
        attempt(lambda: flags(p)),
        attempt(lambda: read('/etc/shadow')),
        attempt(lambda: read('/proc/MANAGER_PID/environ')),
        attempt(lambda: read('/proc/MANAGER_PID/maps')),
        attempt(lambda: os.mknod('null', stat.S_IFCHR | 0o666, os.makedev(1, 3))),
    ]
"#;
    for mode in modes() {
        let before = std::fs::metadata(&target).unwrap();
        let ret = returned(mode, &run(mode, &program));
        let (who, attempts) = ret.split_at(ret.match_indices(", ").nth(3).unwrap().0);
        assert_eq!(
            who, "[True, True, True, 0",
            "{}: the child must see the file, as a non-root uid and gid with no \
             supplementary groups and no capabilities",
            mode.name
        );
        all_failed(mode, attempts.trim_start_matches(", "));
        let after = std::fs::metadata(&target).unwrap();
        assert_eq!(before.mode(), after.mode(), "{}", mode.name);
        assert_eq!(before.uid(), after.uid(), "{}", mode.name);
        assert_eq!(before.mtime(), after.mtime(), "{}", mode.name);
    }
}

#[test]
fn privilege_scheduling_of_other_processes_is_refused() {
    let program = ATTEMPT.to_string()
        + &r#"
def case():
    server = os.getppid()
    idle = os.sched_param(0)
    return [
        attempt(lambda: os.setpriority(os.PRIO_PROCESS, server, 19)),
        attempt(lambda: os.setpriority(os.PRIO_PROCESS, MANAGER_PID, 19)),
        attempt(lambda: os.setpriority(os.PRIO_PGRP, 0, 19)),
        attempt(lambda: os.setpriority(os.PRIO_USER, 0, 19)),
        attempt(lambda: os.sched_setaffinity(server, {0})),
        attempt(lambda: os.sched_setaffinity(MANAGER_PID, {0})),
        attempt(lambda: os.sched_setscheduler(server, os.SCHED_IDLE, idle)),
        attempt(lambda: os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(1))),
        attempt(lambda: os.nice(-20)),
        c_attempt(libc.syscall(IOPRIO_SET, 1, server, 3 << 13)),
        c_attempt(libc.mlockall(3)),
        c_attempt(libc.syscall(FANOTIFY_INIT, 0, 0)),
    ]
"#
        .replace("IOPRIO_SET", &libc::SYS_ioprio_set.to_string())
        .replace("FANOTIFY_INIT", &libc::SYS_fanotify_init.to_string());
    for mode in modes() {
        // SAFETY: reading our own niceness.
        let nice_before = unsafe { libc::getpriority(libc::PRIO_PROCESS, 0) };
        let ret = returned(mode, &run(mode, &program));
        all_failed(mode, &ret);
        // SAFETY: as above.
        let nice_after = unsafe { libc::getpriority(libc::PRIO_PROCESS, 0) };
        assert_eq!(nice_before, nice_after, "{}", mode.name);
    }
}

/// A SysV segment, queue and semaphore set of the host, removed on drop.
struct HostIpc {
    shm: i32,
    msg: i32,
    sem: i32,
    key: i32,
}

impl HostIpc {
    fn create(key: i32) -> HostIpc {
        // SAFETY: plain SysV calls on objects this test owns; the segment
        // is attached, written and detached within this block.
        unsafe {
            let shm = libc::shmget(key, 4096, libc::IPC_CREAT | 0o600);
            assert!(shm >= 0, "shmget: {}", std::io::Error::last_os_error());
            let at = libc::shmat(shm, std::ptr::null(), 0);
            std::ptr::copy_nonoverlapping(b"host".as_ptr(), at.cast::<u8>(), 4);
            libc::shmdt(at);
            let msg = libc::msgget(key + 1, libc::IPC_CREAT | 0o600);
            let sem = libc::semget(key + 2, 1, libc::IPC_CREAT | 0o600);
            assert!(msg >= 0 && sem >= 0);
            HostIpc { shm, msg, sem, key }
        }
    }

    fn segment(&self) -> [u8; 4] {
        let mut out = [0u8; 4];
        // SAFETY: attaching our own segment read-only for a 4-byte copy.
        unsafe {
            let at = libc::shmat(self.shm, std::ptr::null(), libc::SHM_RDONLY);
            std::ptr::copy_nonoverlapping(at.cast::<u8>(), out.as_mut_ptr(), 4);
            libc::shmdt(at);
        }
        out
    }
}

impl Drop for HostIpc {
    fn drop(&mut self) {
        // SAFETY: removing the objects this test created.
        unsafe {
            libc::shmctl(self.shm, libc::IPC_RMID, std::ptr::null_mut());
            libc::msgctl(self.msg, libc::IPC_RMID, std::ptr::null_mut());
            libc::semctl(self.sem, 0, libc::IPC_RMID);
        }
    }
}

/// SysV segments of the host (a child's would outlive it).
fn host_segments() -> usize {
    std::fs::read_to_string("/proc/sysvipc/shm")
        .map(|t| t.lines().skip(1).count())
        .unwrap_or(0)
}

#[test]
fn ipc_host_objects_are_out_of_reach_and_nothing_outlives_the_child() {
    let ipc = HostIpc::create(0x0e6c_f000 + (std::process::id() as i32 & 0xfff) * 4);
    let program = ATTEMPT.to_string()
        + &r#"
def case():
    key = KEY
    return [
        c_attempt(libc.shmget(key, 0, 0)),
        c_attempt(libc.shmget(0, 1 << 20, 0o1666)),
        c_attempt(libc.msgget(key + 1, 0)),
        c_attempt(libc.semget(key + 2, 0, 0)),
        c_attempt(libc.mq_open(b'/egcfg-hostile', os.O_CREAT | os.O_RDWR, 0o600, None)),
    ]
"#
        .replace("KEY", &ipc.key.to_string());
    for mode in modes() {
        let segments = host_segments();
        let ret = returned(mode, &run(mode, &program));
        all_failed(mode, &ret);
        assert_eq!(&ipc.segment(), b"host", "{}", mode.name);
        assert_eq!(
            host_segments(),
            segments,
            "{}: a segment was left",
            mode.name
        );
        // SAFETY: a NUL-terminated name; a failed open returns -1.
        let mq = unsafe { libc::mq_open(c"/egcfg-hostile".as_ptr(), libc::O_RDONLY) };
        assert_eq!(mq, -1, "{}: a POSIX queue was left behind", mode.name);
    }
}

#[test]
fn unix_sockets_addressed_sends_never_reach_a_host_listener() {
    let path = host().dir.path().join("listener.sock");
    let listener = UnixDatagram::bind(&path).unwrap();
    listener.set_nonblocking(true).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o777)).unwrap();
    let program = ATTEMPT.to_string()
        + r#"import socket, array
def case():
    path = 'HOST_DIR/listener.sock'
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    fds = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array('i', [0]))]
    p, q = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    return [
        os.path.exists(path),
        attempt(lambda: s.sendto(b'x', path)),
        attempt(lambda: s.sendmsg([b'y'], fds, 0, path)),
        attempt(lambda: p.sendto(b'z', path)),
        attempt(lambda: p.sendmsg([b'w'], fds)),
    ]
"#;
    for mode in modes() {
        let ret = returned(mode, &run(mode, &program));
        assert_eq!(ret, "[True, 1, 1, 1, 1]", "{}", mode.name);
        let mut buf = [0u8; 16];
        assert!(
            listener.recv(&mut buf).is_err(),
            "{}: the host listener received a datagram",
            mode.name
        );
    }
}

#[test]
fn scratch_concurrent_executions_cannot_reach_each_other() {
    let writer = r#"import os, time
def case():
    with open('secret.txt', 'w') as f:
        f.write('mine')
    time.sleep(1.2)
    return 1
"#;
    let reader = ATTEMPT.to_string()
        + r#"import time
def found(root):
    hits = []
    for d, _, files in os.walk(root):
        hits += [d for f in files if f == 'secret.txt']
    return hits
def case():
    time.sleep(0.4)
    hits = found('SCRATCH') + found('..')
    for pid in os.listdir('/proc'):
        if pid.isdigit() and os.path.exists('/proc/%s/cwd/secret.txt' % pid):
            hits.append(pid)
    return [attempt(lambda: os.listdir('..')), hits]
"#;
    for mode in modes() {
        let root = mode.executor.caps().scratch_root.to_string_lossy();
        let reader = reader.replace("SCRATCH", &root);
        let results = mode.executor.trace(&[request(writer), request(&reader)]);
        assert_eq!(returned(mode, &results[0]), "1");
        let ret = returned(mode, &results[1]);
        if manager_is_root() {
            assert_eq!(ret, "[13, []]", "{}", mode.name);
        } else if mode.executor.caps().has(Layer::Namespaces) {
            // The child has the manager's own uid, which owns the server's
            // directory; the other server's scratch is in another mount
            // namespace. (Without namespaces nothing separates two children
            // of one uid: doctor says so.)
            assert!(ret.ends_with(", []]"), "{}: {ret}", mode.name);
        }
        still_serving(mode);
    }
}

#[test]
fn scratch_the_servers_directory_is_closed_to_children() {
    let planter = ATTEMPT.to_string()
        + r#"
def plant():
    with open('../planted.txt', 'w') as f:
        f.write('later runs read me')
def case():
    made = attempt(plant) == 0
    for name in ['x%d' % i for i in range(1, 200)]:
        made += attempt(lambda: os.mkdir(os.path.join('..', name))) == 0
    return made
"#;
    let later = r#"import os
def case():
    return (os.path.exists('../planted.txt'), len(os.listdir('.')))
"#;
    if !manager_is_root() {
        eprintln!("a child of a non-root manager has its uid and may write its directories");
        return;
    }
    for mode in modes() {
        assert_eq!(returned(mode, &run(mode, &planter)), "0", "{}", mode.name);
        for _ in 0..30 {
            assert_eq!(
                returned(mode, &run(mode, later)),
                "(False, 0)",
                "{}",
                mode.name
            );
        }
    }
}

#[test]
fn scratch_bytes_are_bounded_and_shared_memory_is_closed() {
    let shm = ATTEMPT.to_string()
        + r#"
def case():
    path = '/dev/shm/egcfg-hostile-%d' % os.getpid()
    return attempt(lambda: open(path, 'wb').write(b'x'))
"#;
    let fill = r#"import os
def case():
    total, err = 0, 0
    for i in range(96):
        fd = os.open('f%d' % i, os.O_CREAT | os.O_WRONLY)
        try:
            os.posix_fallocate(fd, 0, 16 << 20)
            total += 16 << 20
        except OSError as e:
            err = e.errno
            break
        finally:
            os.close(fd)
    return (total >> 20, err)
"#;
    for mode in modes() {
        assert_eq!(returned(mode, &run(mode, &shm)), "13", "{}", mode.name);
        let bound = &mode.executor.caps().scratch_bound;
        if !mode.executor.caps().has(Layer::Namespaces) {
            // Nothing bounds a plain directory; doctor says so.
            assert!(bound.contains("unbounded"), "{}: {bound}", mode.name);
            continue;
        }
        assert!(bound.contains("64 MiB"), "{bound}");
        let ret = returned(mode, &run(mode, fill));
        let (mib, errno) = ret
            .trim_matches(['(', ')'])
            .split_once(", ")
            .map(|(m, e)| (m.parse::<u64>().unwrap(), e.to_string()))
            .unwrap();
        assert!(mib <= 64 && errno == "28", "ENOSPC by 64 MiB: {ret}");
    }
}

/// Entries in the servers' scratch directories below `root` (which holds
/// the executor's directory, which holds one per server, which holds its
/// scratch) once clean-up had up to `wait` to finish.
fn leftovers(root: &Path, wait: Duration) -> Vec<PathBuf> {
    let until = Instant::now() + wait;
    loop {
        let left = entries_below_servers(root);
        if left.is_empty() || Instant::now() > until {
            return left;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn entries_below_servers(root: &Path) -> Vec<PathBuf> {
    let mut left = Vec::new();
    let mut stack = vec![(root.to_path_buf(), 0)];
    while let Some((dir, depth)) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            if depth >= 3 {
                left.push(entry.path());
            }
            if depth < 3 && entry.file_type().is_ok_and(|t| t.is_dir()) {
                stack.push((entry.path(), depth + 1));
            }
        }
    }
    left
}

#[test]
fn cleanup_link_floods_and_deep_trees_cost_the_server_nothing() {
    let floods = [
        r#"import os, collections
def case():
    open('f', 'w').close()
    names = map('l{}'.format, range(230000))
    try:
        collections.deque(map(os.link, ['f'] * 230000, names), 0)
    except OSError as e:
        return e.errno
    return 0
"#,
        r#"import os
def case():
    for _ in range(3000):
        os.mkdir('d')
        os.chdir('d')
    with open('deep.txt', 'w') as f:
        f.write('x')
    return 3000
"#,
    ];
    // Executors of its own, so no other case's execution is in flight in
    // the directories it counts.
    let shm = PathBuf::from("/dev/shm");
    let parent = tempfile::Builder::new()
        .prefix("egcfg-cleanup-")
        .tempdir_in(if shm.is_dir() {
            shm
        } else {
            std::env::temp_dir()
        })
        .unwrap();
    std::fs::set_permissions(parent.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    for mode in both_modes(Some(parent.path())) {
        for program in floods {
            let r = run(&mode, program);
            assert_ne!(r.status, Status::InternalError, "{}: {r:?}", mode.name);
            assert_ne!(r.status, Status::ProtocolError, "{}: {r:?}", mode.name);
        }
        let left = leftovers(parent.path(), Duration::from_secs(20));
        assert!(left.is_empty(), "{}: scratch leaked: {left:?}", mode.name);
    }
}

#[test]
fn deadline_frames_from_the_candidate_do_not_extend_it() {
    // It blocks the soft deadline's SIGALRM, finds the nonce in its own
    // memory and keeps sending frames.
    let forger = r#"import gc, os, signal, struct, time
def case():
    signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGALRM])
    run = [o for o in gc.get_objects() if type(o).__name__ == 'Run'][0]
    body = b'{"status":"ok","ret":"1"}'
    end = time.monotonic() + 8
    while time.monotonic() < end:
        os.write(run.out_fd, struct.pack('<I', 16 + len(body)) + run.nonce + body)
        time.sleep(0.3)
"#;
    for mode in modes() {
        let started = Instant::now();
        let r = mode.executor.trace(&[request(forger)]);
        let elapsed = started.elapsed();
        assert_ne!(
            r[0].status,
            Status::InternalError,
            "{}: {:?}",
            mode.name,
            r[0]
        );
        assert!(
            elapsed < Duration::from_millis(2600),
            "{}: the job overran its 2 s: {elapsed:?}",
            mode.name,
        );
        still_serving(mode);
    }
}

#[test]
fn scratch_root_the_sandbox_id_cannot_reach_is_refused_with_a_reason() {
    if !manager_is_root() {
        eprintln!("only a root manager hands its children another uid");
        return;
    }
    let private = tempfile::tempdir().unwrap();
    std::fs::set_permissions(private.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    let config = ExecutorConfig {
        scratch_root: private.path().join("inner"),
        pool_size: 1,
        ..ExecutorConfig::default()
    };
    std::fs::create_dir(&config.scratch_root).unwrap();
    let err = Executor::start(config).err().expect("refused");
    // The reason is the error's cause (the message names it once).
    let mut chain = err.to_string();
    let mut cause = std::error::Error::source(&err);
    while let Some(c) = cause {
        chain.push_str(&format!(": {c}"));
        cause = c.source();
    }
    assert!(chain.contains("cannot search"), "{chain}");
}

#[test]
fn pid_children_see_only_their_servers_processes() {
    // The server is its PID namespace's init (pid 1); where the kernel let
    // it mount a /proc of its own, nothing of the host is listed there,
    // and the manager cannot even be named.
    let mode = &modes()[0];
    let r = run(
        mode,
        "import os\ndef case():\n    pids = [int(p) for p in os.listdir('/proc') if p.isdigit()]\n    return (os.getppid(), len(pids) < 10, MANAGER_PID in pids)",
    );
    assert_eq!(r.status, Status::Ok, "{r:?}");
    assert_eq!(r.ret.as_deref(), Some("(1, True, False)"), "{r:?}");
}

#[test]
fn reads_children_read_no_user_file_yet_load_the_standard_library() {
    // The host file is world-readable in a world-searchable directory below
    // /tmp: only Landlock's read rules stand between it and the child. The
    // modules are ones the server has not loaded, so the child reads them
    // (and, for the extensions, the system libraries they link) itself.
    let program = ATTEMPT.to_string()
        + r#"import sys
def read(p):
    with open(p, 'rb') as f:
        f.read()
def case():
    lazy = ['difflib', 'fractions', 'decimal', 'unicodedata', 'cmath', 'hashlib', 'csv']
    fresh = not any(m in sys.modules for m in lazy)
    import difflib, fractions, decimal, unicodedata, cmath, hashlib, csv
    works = (
        difflib.SequenceMatcher(None, 'abc', 'abd').ratio() > 0.6
        and fractions.Fraction(1, 3) * 3 == 1
        and decimal.Decimal('1.5') + 1 == decimal.Decimal('2.5')
        and unicodedata.name('a') == 'LATIN SMALL LETTER A'
        and cmath.sqrt(-1) == 1j
        and hashlib.sha256(b'').hexdigest().startswith('e3b0c442')
        and next(csv.reader(['a,b'])) == ['a', 'b']
    )
    return [fresh, works] + [
        attempt(lambda: read('HOST_DIR/target.txt')),
        attempt(lambda: os.listdir('HOST_DIR')),
        attempt(lambda: os.listdir('/')),
        attempt(lambda: os.listdir('/dev/shm')),
    ]
"#;
    for mode in modes() {
        if !mode.executor.caps().has(Layer::Landlock) {
            eprintln!("{}: no Landlock here, so reads are not confined", mode.name);
            continue;
        }
        let ret = returned(mode, &run(mode, &program));
        let (loaded, attempts) = ret.split_at(ret.match_indices(", ").nth(1).unwrap().0);
        assert_eq!(
            loaded, "[True, True",
            "{}: the standard library must load in the child",
            mode.name
        );
        all_failed(mode, attempts.trim_start_matches(", "));
    }
}
