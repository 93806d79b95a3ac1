//! Every hostile or broken candidate of docs/sandbox.md §6, run through one
//! shared executor (timeout 2 s, memory 512 MiB). After each case: the
//! caller got the right status, a trivial traced call still works, no
//! fork-server was replaced, the canary directory outside scratch is
//! intact, the loopback listeners saw nothing, and no process of the
//! harness is left behind.

use std::io::ErrorKind;
use std::net::{TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use egcfg_executor::{
    ExecLimits, ExecResult, Executor, ExecutorConfig, Invocation, Layer, MinIsolation, Status,
    TraceRequest,
};

const SECRET: &str = "egcfg-test-secret-5b1f";

struct Fixture {
    executor: Executor,
    scratch: PathBuf,
    canary: PathBuf,
    tcp: TcpListener,
    udp: UdpSocket,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        std::env::set_var("EGCFG_TEST_SECRET", SECRET);
        // Under cargo's per-target scratch space, so runs leave nothing in /tmp.
        let canary = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("egcfg-canary-{}", std::process::id()));
        std::fs::create_dir_all(&canary).unwrap();
        std::fs::write(canary.join("keep.txt"), "canary").unwrap();
        let tcp = TcpListener::bind("127.0.0.1:0").unwrap();
        tcp.set_nonblocking(true).unwrap();
        let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
        udp.set_nonblocking(true).unwrap();
        // Our own scratch root: every child's working directory is beneath
        // it, which is how its leftovers are told from other executors'.
        let shm = PathBuf::from("/dev/shm");
        let parent = if shm.is_dir() {
            shm
        } else {
            std::env::temp_dir()
        };
        let scratch = parent.join(format!("egcfg-{}-bad-inputs", std::process::id()));
        std::fs::create_dir_all(&scratch).unwrap();
        let config = ExecutorConfig {
            scratch_root: scratch.clone(),
            pool_size: 3,
            limits: ExecLimits {
                timeout: Duration::from_secs(2),
                memory_bytes: 512 << 20,
                ..ExecLimits::default()
            },
            min_isolation: MinIsolation::none(),
            cache_capacity: 0,
            ..ExecutorConfig::default()
        };
        let executor = Executor::start(config).expect("executor starts");
        Fixture {
            executor,
            scratch,
            canary,
            tcp,
            udp,
        }
    })
}

fn has(layer: Layer) -> bool {
    fixture().executor.caps().has(layer)
}

/// Traces `program` (with the fixture's values substituted) and `call`,
/// then checks everything that must hold after any bad input.
fn run(program: &str, call: &str) -> (ExecResult, Duration) {
    let f = fixture();
    let program = program
        .replace("CANARY", &f.canary.to_string_lossy())
        .replace("TCP_PORT", &f.tcp.local_addr().unwrap().port().to_string())
        .replace("UDP_PORT", &f.udp.local_addr().unwrap().port().to_string())
        .replace("MANAGER_PID", &std::process::id().to_string());
    let started = Instant::now();
    let result = f
        .executor
        .trace(&[TraceRequest {
            program,
            setup: None,
            invocation: Invocation::Call { expr: call.into() },
        }])
        .remove(0);
    let elapsed = started.elapsed();
    assert!(
        elapsed < Duration::from_millis(4500),
        "took {elapsed:?}: a bad input must cost at most its timeout"
    );
    after_every_case();
    (result, elapsed)
}

fn after_every_case() {
    let f = fixture();
    let ok = f
        .executor
        .trace(&[TraceRequest {
            program: "def f(x):\n    return x + 1".into(),
            setup: None,
            invocation: Invocation::Call {
                expr: "f(1)".into(),
            },
        }])
        .remove(0);
    assert_eq!(ok.status, Status::Ok, "pool must keep serving: {ok:?}");
    assert_eq!(ok.ret.as_deref(), Some("2"));
    assert_eq!(
        f.executor.server_restarts(),
        0,
        "no fork-server may be killed"
    );
    assert_eq!(
        std::fs::read_to_string(f.canary.join("keep.txt"))
            .ok()
            .as_deref(),
        Some("canary"),
        "canary outside scratch changed"
    );
    match f.tcp.accept() {
        Err(e) if e.kind() == ErrorKind::WouldBlock => {}
        other => panic!("the loopback TCP listener accepted something: {other:?}"),
    }
    let mut buf = [0u8; 64];
    match f.udp.recv_from(&mut buf) {
        Err(e) if e.kind() == ErrorKind::WouldBlock => {}
        other => panic!("the loopback UDP socket received something: {other:?}"),
    }
    let stray = stray_processes();
    assert!(stray.is_empty(), "harness processes left behind: {stray:?}");
}

/// Processes working beneath our scratch root that are not a server's
/// child in flight: anything a child managed to leave behind.
fn stray_processes() -> Vec<(i32, i32)> {
    strays_beneath(&fixture().scratch)
}

fn strays_beneath(root: &std::path::Path) -> Vec<(i32, i32)> {
    let me = std::process::id() as i32;
    let scratch = root.to_string_lossy().into_owned();
    let mut procs = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let Some(rest) = stat.rsplit_once(") ").map(|(_, r)| r.to_string()) else {
            continue;
        };
        let ppid: i32 = rest
            .split(' ')
            .nth(1)
            .and_then(|p| p.parse().ok())
            .unwrap_or(0);
        let cwd = std::fs::read_link(format!("/proc/{pid}/cwd")).unwrap_or_default();
        procs.push((pid, ppid, cwd.to_string_lossy().starts_with(&scratch)));
    }
    // A server is the manager's child, or (in a PID namespace) the child
    // of the relay the manager started.
    let started: Vec<i32> = procs.iter().filter(|p| p.1 == me).map(|p| p.0).collect();
    let servers: Vec<i32> = procs
        .iter()
        .filter(|p| p.1 == me || started.contains(&p.1))
        .map(|p| p.0)
        .collect();
    procs
        .iter()
        .filter(|p| p.2 && !servers.contains(&p.1))
        .map(|p| (p.0, p.1))
        .collect()
}

#[test]
fn the_stray_detector_finds_orphans() {
    let dir = tempfile::tempdir().unwrap();
    std::process::Command::new("sh")
        .args(["-c", "(sleep 5 &)"])
        .current_dir(dir.path())
        .status()
        .unwrap();
    let strays = strays_beneath(dir.path());
    assert_eq!(strays.len(), 1, "{strays:?}");
    for (pid, _) in strays {
        // SAFETY: killing the orphan this test made.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
}

#[test]
fn case_01_infinite_loop_hits_the_line_limit() {
    let (r, _) = run(
        "def case():\n    i = 0\n    while True:\n        i += 1",
        "case()",
    );
    assert_eq!(r.status, Status::LineLimit);
    assert!(!r.events.is_empty(), "partial trace expected");
    assert!(r.lines_executed > 1_000_000 - 10);
}

#[test]
fn case_02_swallowed_soft_timeout_returns_a_partial_trace() {
    let (r, elapsed) = run(
        "import time\ndef case():\n    n = 0\n    while True:\n        try:\n            time.sleep(0.05)\n            n += 1\n        except BaseException:\n            pass",
        "case()",
    );
    assert_eq!(r.status, Status::Timeout);
    assert!(!r.events.is_empty(), "the soft deadline keeps the trace");
    assert!(elapsed >= Duration::from_millis(1700), "{elapsed:?}");
}

#[test]
fn case_03_catastrophic_regex_times_out() {
    let (r, _) = run(
        "import re\ndef case():\n    return re.match(r'(a+)+$', 'a' * 40 + 'b')",
        "case()",
    );
    assert_eq!(r.status, Status::Timeout);
}

#[test]
fn case_04_ignoring_sigalrm_and_untracing_still_times_out() {
    let (r, _) = run(
        "import signal, sys\ndef case():\n    try:\n        signal.signal(signal.SIGALRM, signal.SIG_IGN)\n    except OSError:\n        pass\n    sys.settrace(None)\n    while True:\n        pass",
        "case()",
    );
    assert_eq!(r.status, Status::Timeout);
}

#[test]
fn case_04b_blocked_sigalrm_is_hard_killed() {
    let (r, elapsed) = run(
        "import signal, sys\ndef case():\n    signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGALRM])\n    sys.settrace(None)\n    while True:\n        pass",
        "case()",
    );
    assert_eq!(r.status, Status::Timeout);
    assert!(r.events.is_empty(), "a hard kill leaves no trace");
    assert!(elapsed >= Duration::from_millis(2000), "{elapsed:?}");
}

#[test]
fn case_05_forks_are_refused_and_leave_no_stragglers() {
    let (r, _) = run(
        "import os, time\ndef case():\n    refused = 0\n    for _ in range(200):\n        try:\n            pid = os.fork()\n        except OSError as e:\n            refused += e.errno == 1\n            continue\n        if pid == 0:\n            os.setsid()\n            time.sleep(100)\n            os._exit(0)\n    return refused",
        "case()",
    );
    assert_eq!(r.status, Status::Ok, "{r:?}");
    if has(Layer::Seccomp) {
        assert_eq!(r.ret.as_deref(), Some("200"));
    }
}

#[test]
fn case_05b_fork_bomb_ends() {
    let (r, _) = run(
        "import os\ndef case():\n    while True:\n        try:\n            os.fork()\n        except OSError:\n            pass",
        "case()",
    );
    assert!(
        matches!(r.status, Status::LineLimit | Status::Timeout),
        "{:?}",
        r.status
    );
}

#[test]
fn case_06_memory_bomb_raises_memory_error() {
    let (r, _) = run(
        "def case():\n    hog = []\n    while True:\n        hog.append(bytearray(10 * 1024 * 1024))",
        "case()",
    );
    assert_eq!(r.status, Status::Exception);
    assert_eq!(r.exception.unwrap().type_name, "MemoryError");
}

/// How a path outside scratch is refused: Landlock denies it (EACCES), or
/// it is not there at all, because the mount namespace covers a directory
/// the sandbox id may not search (such as a 0700 `/root` holding the build)
/// with a tmpfs that holds only the interpreter's path (ENOENT).
const EACCES: i32 = 13;
const ENOENT: i32 = 2;

#[test]
fn case_07_huge_files_stop_at_the_size_limit_and_stay_in_scratch() {
    let (r, _) = run(
        "def case():\n    chunk = b'x' * (1 << 20)\n    big = None\n    try:\n        with open('big.bin', 'wb') as f:\n            for _ in range(1024):\n                f.write(chunk)\n    except OSError as e:\n        big = e.errno\n    try:\n        open('CANARY/outside.txt', 'w').write('x')\n        outside = 0\n    except OSError as e:\n        outside = e.errno\n    return (big, outside)",
        "case()",
    );
    assert_eq!(r.status, Status::Ok, "{r:?}");
    let ret = r.ret.as_deref().unwrap_or_default();
    if has(Layer::Landlock) {
        assert!(
            ret == format!("(27, {EACCES})") || ret == format!("(27, {ENOENT})"),
            "{ret}"
        );
        assert!(!fixture().canary.join("outside.txt").exists());
    } else {
        // Without Landlock only a covered directory keeps the write out.
        assert!(
            ret == "(27, 0)" || ret == format!("(27, {ENOENT})"),
            "{ret}"
        );
    }
}

#[test]
fn case_08_deleting_the_canary_fails() {
    let (r, _) = run(
        "import os, shutil\ndef case():\n    rc = os.system('rm -rf CANARY')\n    try:\n        shutil.rmtree('CANARY')\n        tree = 0\n    except OSError as e:\n        tree = e.errno\n    try:\n        os.unlink('CANARY/keep.txt')\n        unlink = 0\n    except OSError as e:\n        unlink = e.errno\n    return (rc != 0, tree, unlink)",
        "case()",
    );
    assert_eq!(r.status, Status::Ok, "{r:?}");
    if has(Layer::Landlock) {
        let ret = r.ret.as_deref().unwrap_or_default();
        assert!(
            [EACCES, ENOENT]
                .iter()
                .any(|errno| ret == format!("(True, {errno}, {errno})")),
            "{ret}"
        );
    }
}

#[test]
fn case_09_secrets_stay_hidden() {
    let (r, _) = run(
        "import os\ndef read(path):\n    try:\n        with open(path, 'rb') as f:\n            return f.read()\n    except OSError as e:\n        return e.errno\ndef case():\n    passwd = isinstance(read('/etc/passwd'), bytes)\n    parent = read('/proc/%d/environ' % os.getppid())\n    manager = read('/proc/MANAGER_PID/environ')\n    leaked = any('egcfg-test-secret' in v for v in os.environ.values())\n    return (passwd, parent, manager, leaked)",
        "case()",
    );
    assert_eq!(r.status, Status::Ok, "{r:?}");
    if has(Layer::Landlock) {
        // In a PID namespace with a /proc of its own the manager is not
        // even there (ENOENT); elsewhere Landlock denies it (EACCES).
        let ret = r.ret.as_deref().unwrap_or_default();
        assert!(
            ["(True, 13, 13, False)", "(True, 13, 2, False)"].contains(&ret),
            "{ret}"
        );
    } else {
        assert!(r.ret.as_deref().unwrap().ends_with("False)"));
    }
}

#[test]
fn case_10_no_network() {
    let (r, _) = run(
        "import socket\ndef attempt(fn):\n    try:\n        fn()\n        return 0\n    except OSError as e:\n        return e.errno\ndef tcp():\n    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)\n    s.settimeout(0.5)\n    s.connect(('127.0.0.1', TCP_PORT))\ndef udp():\n    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n    s.sendto(b'x', ('127.0.0.1', UDP_PORT))\ndef listen():\n    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)\n    s.bind(('127.0.0.1', 0))\n    s.listen()\ndef case():\n    return (attempt(tcp), attempt(udp), attempt(listen))",
        "case()",
    );
    assert_eq!(r.status, Status::Ok, "{r:?}");
    let ret = r.ret.unwrap();
    assert!(!ret.contains('0'), "every attempt must fail: {ret}");
    if has(Layer::Seccomp) {
        assert_eq!(ret, "(1, 1, 1)");
    }
}

#[test]
fn case_11_sys_exit_is_an_exception() {
    let (r, _) = run("import sys\ndef case():\n    sys.exit(3)", "case()");
    assert_eq!(r.status, Status::Exception);
    let exc = r.exception.unwrap();
    assert_eq!(exc.type_name, "SystemExit");
    assert_eq!(exc.line, Some(3));
}

#[test]
fn case_12_os_exit_is_a_crash_with_its_code() {
    let (r, _) = run("import os\ndef case():\n    os._exit(7)", "case()");
    assert_eq!(r.status, Status::Crashed);
    assert_eq!(r.exit_code, Some(7));
}

#[test]
fn case_13_unbounded_recursion_is_contained() {
    let (r, _) = run(
        "import sys\nsys.setrecursionlimit(10**7)\ndef case(n=0):\n    return case(n + 1)",
        "case()",
    );
    assert!(
        matches!(
            r.status,
            Status::Timeout | Status::LineLimit | Status::Crashed | Status::Exception
        ),
        "{:?}",
        r.status
    );
}

#[test]
fn case_14_segfault_is_a_crash() {
    let (r, _) = run(
        "import ctypes\ndef case():\n    return ctypes.string_at(0)",
        "case()",
    );
    assert_eq!(r.status, Status::Crashed);
    assert_eq!(r.signal, Some(11));
}

#[test]
fn case_15_output_floods_are_bounded() {
    let (r, _) = run(
        "import os\ndef case():\n    print('x' * 100_000_000)\n    os.write(1, b'y' * 100_000_000)\n    os.write(2, b'z' * 100_000_000)\n    return 1",
        "case()",
    );
    assert_eq!(r.status, Status::Ok, "{r:?}");
    assert_eq!(r.stdout.len(), 4096);
    assert!(r.stdout_bytes >= 100_000_000);
}

#[test]
fn case_16_patched_builtins_do_not_corrupt_results() {
    let (r, _) = run(
        "import builtins, json, math\ndef case():\n    builtins.len = lambda x: 0\n    builtins.print = None\n    builtins.repr = lambda x: 'forged'\n    math.sqrt = lambda x: -1\n    json.dumps = lambda *a, **k: 'forged'\n    return [1, 2, 3]",
        "case()",
    );
    assert_eq!(r.status, Status::Ok, "{r:?}");
    assert_eq!(r.ret.as_deref(), Some("[1, 2, 3]"));
    let (next, _) = run(
        "import math\ndef case():\n    return (len('abc'), math.sqrt(16))",
        "case()",
    );
    assert_eq!(
        next.ret.as_deref(),
        Some("(3, 4.0)"),
        "the next run is clean"
    );
}

#[test]
fn case_17_forged_result_frames_are_protocol_errors() {
    let (r, _) = run(
        "import os, struct, json\ndef case():\n    body = json.dumps({'status': 'ok', 'ret': '42'}).encode()\n    frame = struct.pack('<I', len(body) + 16) + b'0' * 16 + body\n    for fd in range(1, 40):\n        try:\n            os.write(fd, frame)\n        except OSError:\n            pass\n    os._exit(0)",
        "case()",
    );
    assert_eq!(r.status, Status::ProtocolError, "{r:?}");
}

#[test]
fn case_18_signals_cannot_reach_other_processes() {
    let (r, _) = run(
        "import os, signal\ndef attempt(pid, sig):\n    try:\n        os.kill(pid, sig)\n        return 0\n    except OSError as e:\n        return e.errno\ndef case():\n    return (attempt(-1, 0), attempt(1, 0), attempt(os.getppid(), signal.SIGKILL))",
        "case()",
    );
    assert_eq!(r.status, Status::Ok, "{r:?}");
    if has(Layer::Landlock) && has(Layer::Seccomp) {
        assert_eq!(r.ret.as_deref(), Some("(1, 1, 1)"));
    }
}

#[test]
fn case_19_threads_die_with_the_child() {
    let (r, _) = run(
        "import threading, time\ndef spin():\n    while True:\n        pass\ndef case():\n    for _ in range(4):\n        threading.Thread(target=spin).start()\n    time.sleep(100)",
        "case()",
    );
    assert_eq!(r.status, Status::Timeout);
}

#[test]
fn case_20_closing_every_fd_is_a_crash() {
    let (r, _) = run(
        "import os\ndef case():\n    os.closerange(0, 1024)\n    return 1",
        "case()",
    );
    assert_eq!(r.status, Status::Crashed, "{r:?}");
}

#[test]
fn case_21_subprocesses_are_refused() {
    let (r, _) = run(
        "import subprocess\ndef case():\n    try:\n        subprocess.run(['id'])\n        return 0\n    except OSError as e:\n        return e.errno",
        "case()",
    );
    assert_eq!(r.status, Status::Ok, "{r:?}");
    if has(Layer::Seccomp) {
        assert_eq!(r.ret.as_deref(), Some("1"));
    }
}

#[test]
fn case_22_huge_and_hostile_values_have_bounded_reprs() {
    let (r, _) = run(
        "import os\nclass Hostile:\n    def __init__(self):\n        self.tag = 'h'\n    def __repr__(self):\n        os._exit(99)\n    __str__ = __repr__\ndef case():\n    big = 7 ** 300000\n    text = 'x' * 10_000_000\n    table = {i: 'v' * 1000 for i in range(10_000)}\n    evil = Hostile()\n    return evil",
        "case()",
    );
    assert_eq!(r.status, Status::Ok, "__repr__ must never run: {r:?}");
    assert_eq!(r.ret.as_deref(), Some("<Hostile {'tag': 'h'}>"));
    let last = r
        .events
        .iter()
        .rev()
        .find(|e| e.function == "case" && e.locals.len() == 4)
        .expect("a snapshot with all four locals");
    let big = &last.locals[0];
    assert_eq!(big.repr, "<int 842207 bits>");
    for v in &last.locals {
        assert!(v.repr.chars().count() <= 100, "{}: {}", v.name, v.repr);
    }
}
