# egcfg fork-server and tracer. Embedded in the egcfg binary and started as
#   python -S -s -c BOOTSTRAP HARNESS MODE  (cleared env, PYTHONHASHSEED=0)
# where BOOTSTRAP executes this source with a private copy of the builtins,
# so a candidate that patches `builtins` cannot change how results are built.
#
# MODE "server": read a config frame, install the server's seccomp filter,
# answer with a hello frame (the result of an isolated probe child), then
# serve requests, forking one sandboxed child per request. A request frame
# is a u32 header length, a JSON header (id, deadline, result cap, how many
# invocations: no text of the job) and the job's JSON, which the server
# reads into one reused buffer, never decodes, and zeroes once it has
# forked the child that decodes it: no test text of one request is in the
# server's memory (freed memory included) when it forks the next child. A request holds
# one program and its invocations; the child runs them one after the other,
# each in a fresh namespace with its own deadline and line budget.
# MODE "oneshot": read a config frame and one request, run it in this very
# process (the spawn-per-execution baseline of `egcfg bench exec`).
#
# Frames are a u32 little-endian length followed by the payload, both ways.
# A child writes one frame per invocation on a pipe of its own: its 16-byte
# nonce, then the result (JSON, NUL, trace event lines). A reply to the
# manager is a u32 header length, a JSON header (how many invocations
# finished, resource use, and the server's verdict on the invocation it
# stopped at), then each finished result behind its u32 length.

import ast
import builtins
import ctypes
import errno
import io
import json
import mmap
import os
import resource
import select
import shutil
import signal
import struct
import sys
import time

# Pre-imported so children start warm (lowers the per-execution cost) and
# candidates' imports are cheap.
# Only the modules MBPP/HumanEval-style code imports most: every megabyte of
# server heap makes each fork dearer.
import bisect, collections, copy, functools, heapq, itertools, math  # noqa: E401,F401
import operator, random, re, string, typing, threading, tempfile  # noqa: E401,F401

# --- bound at import: candidates may patch the originals ---------------------
_len = len
_max = max
_min = min
_type = type
_isinstance = isinstance
_issubclass = issubclass
_str = str
_int_repr = int.__repr__
_float_repr = float.__repr__
_str_repr = str.__repr__
_bytes_repr = bytes.__repr__
_object_getattribute = object.__getattribute__
_dict_items = dict.items
_list_repr = list.__repr__
_tuple_repr = tuple.__repr__
_set_repr = set.__repr__
_dict_repr = dict.__repr__
_dict_len = dict.__len__
_list_len = list.__len__
_tuple_len = tuple.__len__
_set_len = set.__len__
_frozenset_len = frozenset.__len__
_write = os.write
_read = os.read
_exit = os._exit
_pack = struct.pack
_unpack = struct.unpack
_monotonic = time.monotonic
_settrace = sys.settrace
_gettrace = sys.gettrace
_encode = json.JSONEncoder(ensure_ascii=False, check_circular=False, allow_nan=True,
                           separators=(",", ":")).encode
_loads = json.loads
_type_name_of = _type.__dict__["__name__"].__get__
_type_mro_of = _type.__dict__["__mro__"].__get__
_type_dict_of = _type.__dict__["__dict__"].__get__
_exc_args_of = BaseException.__dict__["args"].__get__
_GetSetType = _type(_type.__dict__["__name__"])
_str_translate = str.translate
_str_encode = str.encode
_str_isidentifier = str.isidentifier
_str_eq = str.__eq__
_FunctionType = _type(lambda: None)
_ModuleType = _type(sys)
_BuiltinFunctionType = _type(len)
_MethodType = _type(io.BytesIO().read)

FRAME_CAP = 4 << 20
CAND = "<cand>"


# --- framing ---------------------------------------------------------------
def read_exact(fd, n):
    chunks = []
    while n > 0:
        b = _read(fd, min(n, 1 << 20))
        if not b:
            return None
        chunks.append(b)
        n -= _len(b)
    return b"".join(chunks)


def read_frame(fd):
    head = read_exact(fd, 4)
    if head is None:
        return None
    (n,) = _unpack("<I", head)
    if n > FRAME_CAP + 4096:
        raise ValueError("frame of %d bytes exceeds the cap" % n)
    return read_exact(fd, n)


def write_all(fd, data):
    view = memoryview(data)
    while view:
        n = _write(fd, view)
        view = view[n:]


def write_frame(fd, payload):
    write_all(fd, _pack("<I", _len(payload)) + payload)


# --- isolation (installed by each child) ------------------------------------
_libc = ctypes.CDLL(None, use_errno=True)
_syscall = _libc.syscall
_syscall.restype = ctypes.c_long
_prctl = _libc.prctl
_prctl.restype = ctypes.c_int
_prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]

PR_SET_PDEATHSIG = 1
PR_CAPBSET_DROP = 24
PR_SET_NO_NEW_PRIVS = 38
PR_SET_SECCOMP = 22
SECCOMP_MODE_FILTER = 2
SYS_LANDLOCK_RESTRICT_SELF = {"x86_64": 446, "aarch64": 446}.get(os.uname().machine, 446)
SYS_CAPSET = {"x86_64": 126, "aarch64": 91}.get(os.uname().machine, 126)
_LINUX_CAPABILITY_VERSION_3 = 0x20080522


class SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def seccomp_programs(hexes):
    """ctypes `struct sock_fprog`s (and their buffers) from hex BPF."""
    progs = []
    for hexbpf in hexes or []:
        raw = bytes.fromhex(hexbpf)
        buf = ctypes.create_string_buffer(raw, _len(raw))
        progs.append((SockFprog(_len(raw) // 8, ctypes.addressof(buf)), buf))
    return progs


def install_filters(progs):
    for prog, _ in progs:
        if _prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.addressof(prog), 0, 0) != 0:
            return "seccomp filter refused: errno %d" % ctypes.get_errno()
    return None


class Isolation:
    """The layers, built once per server from the config: the server's own
    seccomp filter (inherited by every child) and what each child installs
    after its set-up."""

    def __init__(self, config):
        self.server_filters = seccomp_programs(config.get("seccomp_server"))
        self.child_filters = seccomp_programs(config.get("seccomp_child"))
        self.landlock_fd = config.get("landlock_fd")
        self.child_id = config.get("child_id")
        # capset(2) arguments for "no capabilities at all", built once.
        self.cap_header = (ctypes.c_uint32 * 2)(_LINUX_CAPABILITY_VERSION_3, 0)
        self.cap_data = (ctypes.c_uint32 * 6)()

    def install_server(self):
        """no_new_privs (inherited; Landlock and seccomp need it), an empty
        capability bounding set (inherited; nothing can gain a capability
        again) and the server's filter. Returns an error string or None."""
        if _prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
            return "prctl(PR_SET_NO_NEW_PRIVS) failed: errno %d" % ctypes.get_errno()
        cap = 0
        while _prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) == 0:
            cap += 1  # until EINVAL (past the last), or EPERM (no CAP_SETPCAP: no capabilities)
        if self.child_id is not None:
            # The group part of the children's drop, done once: the server
            # keeps uid 0 and its capabilities, so it needs no group.
            # (Each credential change costs a child ≈15 µs.)
            try:
                os.setgroups([])
                os.setresgid(self.child_id, self.child_id, self.child_id)
            except OSError as e:
                return "cannot switch to gid %d: %s" % (self.child_id, e)
            # Changing credentials cleared the parent-death signal the
            # manager set before the exec: without it again, a server whose
            # manager was killed would live on and run what was queued.
            if _prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
                return "prctl(PR_SET_PDEATHSIG) failed: errno %d" % ctypes.get_errno()
        return install_filters(self.server_filters)

    def drop_privileges(self):
        """Become the sandbox id (when the manager is root; the server
        already switched groups), which clears every capability, or else
        drop the capabilities a child of a user namespace holds. Raises
        OSError."""
        if self.child_id is not None:
            os.setresuid(self.child_id, self.child_id, self.child_id)
        elif _syscall(SYS_CAPSET, self.cap_header, self.cap_data) != 0:
            raise OSError(ctypes.get_errno(), "capset")

    def install(self, limits, scratch):
        """rlimits, Landlock, the child's filter. Returns an error string or
        None. Must run after every fd and signal set-up."""
        as_bytes = limits["memory_bytes"]
        cpu = int(limits["timeout_s"]) + 2
        for res, val in (
            (resource.RLIMIT_AS, as_bytes),
            (resource.RLIMIT_CPU, cpu),
            (resource.RLIMIT_FSIZE, limits["file_size_bytes"]),
            (resource.RLIMIT_NOFILE, limits["open_files"]),
            (resource.RLIMIT_CORE, 0),
        ):
            resource.setrlimit(res, (val, val))
        if not self.child_filters and os.getuid() != 0:
            # Only without seccomp (which denies fork): NPROC counts every
            # thread of every process of the uid, so it would stop threads.
            resource.setrlimit(resource.RLIMIT_NPROC, (0, 0))
        if self.landlock_fd is not None:
            if _syscall(SYS_LANDLOCK_RESTRICT_SELF, self.landlock_fd, 0) != 0:
                return "landlock_restrict_self failed: errno %d" % ctypes.get_errno()
            os.close(self.landlock_fd)
        return install_filters(self.child_filters)


# --- bounded output ----------------------------------------------------------
class Sink(io.RawIOBase):
    """Counts everything written and keeps the first `cap` bytes."""

    def __init__(self, cap):
        self.cap = cap
        self.kept = bytearray()
        self.total = 0

    def writable(self):
        return True

    def write(self, b):
        n = memoryview(b).nbytes
        self.total += n
        room = self.cap - _len(self.kept)
        if room > 0:
            self.kept += bytes(memoryview(b)[:room])
        return n


def text_stream(sink):
    return io.TextIOWrapper(io.BufferedWriter(sink, 8192), encoding="utf-8",
                            errors="backslashreplace", newline="\n", write_through=True)


class Streams:
    """A child's standard streams, built once in the server (never used
    there) so each forked child finds them ready and empty."""

    def __init__(self):
        self.sink = Sink(0)
        self.stdout = text_stream(self.sink)
        self.stderr = text_stream(Sink(0))
        self.stdin = io.TextIOWrapper(io.FileIO(0, "r", closefd=False), encoding="utf-8")

    def install(self):
        """Make these the process's standard streams. A server does this once
        it has started (it never prints), so children need not."""
        sys.stdout = sys.__stdout__ = self.stdout
        sys.stderr = sys.__stderr__ = self.stderr
        sys.stdin = sys.__stdin__ = self.stdin


STREAMS = None


# --- safe bounded repr --------------------------------------------------------
class Repr:
    """Python-style reprs that never call user code and stay within bounds."""

    def __init__(self, chars, items, depth):
        self.chars = chars
        self.items = items
        self.depth = depth

    def __call__(self, v):
        s = self.walk(v, self.depth)
        if _len(s) > self.chars:
            s = s[: self.chars] + "...(+%d)" % (_len(s) - self.chars)
        return s

    def walk(self, v, depth):
        t = _type(v)
        if t is int:
            if v.bit_length() > 200:
                return "<int %d bits>" % v.bit_length()
            return _int_repr(v)
        if t is str:
            if _len(v) > self.chars:
                return _str_repr(v[: self.chars]) + "...(+%d)" % (_len(v) - self.chars)
            return _str_repr(v)
        if t is bool or v is None:
            return "True" if v is True else "False" if v is False else "None"
        if t is float:
            return _float_repr(v)
        if t is list:
            n = _list_len(v)
            if depth > 0:
                fast = self.flat(v[: self.items], _list_repr)
                if fast is not None:
                    return fast if n <= self.items else fast[:-1] + ", ...(+%d)]" % (n - self.items)
            return self.seq(list.__iter__(v), "[", "]", depth, n)
        if t is tuple:
            n = _tuple_len(v)
            if depth > 0 and n <= self.items:
                fast = self.flat(v, _tuple_repr)
                if fast is not None:
                    return fast
            return self.seq(tuple.__iter__(v), "(", ",)" if n == 1 else ")", depth, n)
        if t is dict:
            if depth > 0 and _dict_len(v) <= self.items:
                fast = self.flat_dict(v)
                if fast is not None:
                    return fast
            return self.mapping(v, depth, "{", "}")
        if t is set:
            n = _set_len(v)
            if depth > 0 and 0 < n <= self.items:
                fast = self.flat(v, _set_repr)
                if fast is not None:
                    return fast
            return self.seq(set.__iter__(v), "{", "}", depth, n) if n else "set()"
        if t is frozenset:
            return "frozenset(" + self.seq(frozenset.__iter__(v), "{", "}", depth, _frozenset_len(v)) + ")"
        if t is bytes or t is bytearray:
            head = bytes(v[: self.chars])
            s = _bytes_repr(head)
            if t is bytearray:
                s = "bytearray(" + s + ")"
            if _len(v) > self.chars:
                s += "...(+%d)" % (_len(v) - self.chars)
            return s
        if t is complex or t is range:
            return t.__repr__(v)
        if t is slice:  # its C repr would call its parts' __repr__
            return "slice(%s, %s, %s)" % (self.walk(v.start, depth - 1), self.walk(v.stop, depth - 1),
                                          self.walk(v.step, depth - 1))
        return self.other(v, t, depth)

    def flat(self, items, c_repr):
        """The C repr of a container of plain numbers, or of short strings
        (no user code can run there); None when the slow walk is needed."""
        numbers = strings = True
        for x in items:  # identity tests only: hashing a type may run its metaclass
            t = _type(x)
            if t is str:
                numbers = False
                strings = strings and _len(x) <= self.chars
            else:
                strings = False
                if not (t is int or t is float or t is bool or x is None):
                    return None
        if numbers or strings:
            try:
                return c_repr(items)
            except ValueError:  # an int too long to print
                return None
        return None

    def flat_dict(self, v):
        for x in itertools.chain(dict.keys(v), dict.values(v)):
            t = _type(x)
            if t is str:
                if _len(x) > self.chars:
                    return None
            elif not (t is int or t is float or t is bool or x is None):
                return None
        if True:
            try:
                return _dict_repr(v)
            except ValueError:
                return None
        return None

    def seq(self, items, open_, close, depth, n):
        """`items` is an iterator from the base type, never the object's own."""
        if depth <= 0:
            return open_ + "..." + close
        parts = []
        for i, x in enumerate(items):
            if i >= self.items:
                parts.append("...(+%d)" % (n - i))
                break
            parts.append(self.walk(x, depth - 1))
        return open_ + ", ".join(parts) + close

    def mapping(self, v, depth, open_, close):
        if depth <= 0:
            return open_ + "..." + close
        n = dict.__len__(v)
        parts = []
        for i, (k, x) in enumerate(_dict_items(v)):
            if i >= self.items:
                parts.append("...(+%d)" % (n - i))
                break
            parts.append(self.walk(k, depth - 1) + ": " + self.walk(x, depth - 1))
        return open_ + ", ".join(parts) + close

    def other(self, v, t, depth):
        name = type_name(t)
        if _issubclass(t, BaseException):
            args = _exc_args_of(v)
            if _type(args) is not tuple:
                return "<%s>" % name
            if _len(args) == 1:
                return name + "(" + self.walk(args[0], depth - 1) + ")"
            return name + self.walk(args, depth)
        if _issubclass(t, dict):
            return name + "(" + self.mapping(v, depth, "{", "}") + ")"
        for base in (list, set, frozenset, collections.deque):
            if _issubclass(t, base):
                return name + "(" + self.seq(base.__iter__(v), "[", "]", depth, base.__len__(v)) + ")"
        if _issubclass(t, tuple):
            fields = getattr_static(t, "_fields")
            if _type(fields) is tuple and _len(fields) == _tuple_len(v) and \
                    all(_type(f) is str for f in fields):
                fields = tuple(clean(f) for f in fields)
                if depth <= 0:
                    return name + "(...)"
                return name + "(" + ", ".join(
                    "%s=%s" % (f, self.walk(x, depth - 1)) for f, x in zip(fields, tuple.__iter__(v))
                ) + ")"
            return name + self.seq(tuple.__iter__(v), "(", ")", depth, _tuple_len(v))
        if t is _FunctionType:
            return "<function %s>" % plain_text(_object_getattribute(v, "__qualname__"))
        if t is _ModuleType:
            return "<module %s>" % plain_text(_module_name(v))
        if _issubclass(t, type):
            return "<class %s>" % type_name(v)
        if t is _BuiltinFunctionType or t is _MethodType:
            return "<built-in %s>" % plain_text(_object_getattribute(v, "__name__"))
        attrs = instance_dict(v, t)
        if attrs is not None and depth > 0:
            return "<%s %s>" % (name, self.mapping(attrs, depth - 1, "{", "}"))
        return "<%s>" % name


def getattr_static(t, name):
    """`name` from the class dicts along `t`'s MRO, read through `type`'s
    own descriptors so no metaclass property or hook runs."""
    for klass in _type_mro_of(t):
        d = _type_dict_of(klass)
        if name in d:
            return d[name]
    return None


def type_name(t):
    try:
        return clean(_type_name_of(t))
    except BaseException:
        return "?"


def plain_text(x):
    """`x` when it is an exact str (a subclass's methods are user code)."""
    return clean(x) if _type(x) is str else "?"


def instance_dict(v, t):
    """The instance `__dict__` through the C descriptor `type` made for it,
    never a user property of that name; None when there is none."""
    d = getattr_static(t, "__dict__")
    if _type(d) is not _GetSetType:
        return None
    try:
        attrs = d.__get__(v, t)
    except BaseException:
        return None
    return attrs if _type(attrs) is dict else None


def _module_name(m):
    d = _object_getattribute(m, "__dict__")
    return dict.get(d, "__name__") if _type(d) is dict else None



_CONTROL = {c: " " for c in (0, 10, 13, 0x1c, 0x1d, 0x1e, 0x1f)}


def clean(text):
    """`text` (an exact str) without the characters that separate trace
    fields, and with lone surrogates escaped so it encodes as UTF-8."""
    text = _str_translate(text, _CONTROL)
    try:
        _str_encode(text, "utf-8")
    except UnicodeEncodeError:
        text = _str_encode(text, "utf-8", "backslashreplace").decode("utf-8")
    return text


class NotJson(Exception):
    pass


class CompatRepr:
    """The reference format's values: the repr of a JSON round trip of the
    value (tuples become lists, int keys strings), the safe repr as a string
    when the value is not JSON; module functions as '<Function NAME>'."""

    def __init__(self, srepr, chars):
        self.srepr = srepr
        self.chars = chars

    def value(self, v):
        t = _type(v)
        if t is _FunctionType:
            return "'<Function %s>'" % plain_text(_object_getattribute(v, "__name__")), "Function"
        try:
            s = self.walk(v, 12)
        except NotJson:
            s = _str_repr(self.srepr(v))
        if _len(s) > self.chars:
            s = s[: self.chars] + "...(+%d)" % (_len(s) - self.chars)
        return s, type_name(t)

    def walk(self, v, depth):
        t = _type(v)
        if depth <= 0:
            raise NotJson
        if t is str:
            return _str_repr(v[: self.chars + 1])
        if t is int:
            if v.bit_length() > 200:
                raise NotJson
            return _int_repr(v)
        if t is bool or v is None:
            return "True" if v is True else "False" if v is False else "None"
        if t is float:
            return _float_repr(v)
        if t is list or t is tuple:
            return "[" + ", ".join(self.walk(x, depth - 1) for x in v[:1000]) + "]"
        if t is dict:
            parts = []
            for k, x in _dict_items(v):
                kt = _type(k)
                if kt is str:
                    ks = _str_repr(k)
                elif kt is bool or k is None:
                    ks = "'true'" if k is True else "'false'" if k is False else "'null'"
                elif kt is int or kt is float:
                    ks = _str_repr(_float_repr(k) if kt is float else _int_repr(k))
                else:
                    raise NotJson
                parts.append(ks + ": " + self.walk(x, depth - 1))
                if _len(parts) >= 1000:
                    break
            return "{" + ", ".join(parts) + "}"
        raise NotJson


class ReprlibStyle:
    """reprlib.Repr's default truncation, re-implemented over safe reprs."""

    def __init__(self, srepr):
        self.srepr = srepr

    def __call__(self, v, level=6):
        t = _type(v)
        if level <= 0 and (t is list or t is tuple or t is dict or t is set or t is frozenset):
            return "[...]" if t is list else "(...)" if t is tuple else \
                "frozenset({...})" if t is frozenset else "{...}"
        if t is list:
            return self.items(v, level, "[", "]", 6)
        if t is tuple:
            return self.items(v, level, "(", ",)" if _len(v) == 1 else ")", 6)
        if t is set:
            return self.items(sorted_safe(v), level, "{", "}", 6) if v else "set()"
        if t is frozenset:
            return "frozenset(" + self.items(sorted_safe(v), level, "{", "}", 6) + ")" if v else "frozenset()"
        if t is dict:
            if not v:
                return "{}"
            keys = sorted_safe(list(dict.keys(v)))
            parts = ["%s: %s" % (self(k, level - 1), self(dict.__getitem__(v, k), level - 1)) for k in keys[:4]]
            if _len(keys) > 4:
                parts.append("...")
            return "{" + ", ".join(parts) + "}"
        if t is str:
            s = _str_repr(v[:30])
            if _len(s) > 30:
                i = max(0, (30 - 3) // 2)
                j = max(0, 30 - 3 - i)
                s = _str_repr(v[:i] + v[_len(v) - j:])
                s = s[:i] + "..." + s[_len(s) - j:]
            return s
        if t is int:
            s = self.srepr(v)
            if _len(s) > 40:
                s = s[:18] + "..." + s[_len(s) - 19:]
            return s
        s = self.srepr(v)
        if _len(s) > 30:
            s = s[:13] + "..." + s[_len(s) - 14:]
        return s

    def items(self, v, level, open_, close, cap):
        parts = [self(x, level - 1) for x in list(v)[:cap]]
        if _len(v) > cap:
            parts.append("...")
        return open_ + ", ".join(parts) + close


def sorted_safe(xs):
    xs = list(xs)
    if not xs:
        return xs
    first = _type(xs[0])
    if (first is int or first is float or first is str) and all(_type(x) is first for x in xs):
        return sorted(xs)
    return xs


# --- the tracer ---------------------------------------------------------------
SKIP_TYPES = (_FunctionType, _ModuleType, _BuiltinFunctionType)
BIG_INT = 1 << 60
NUMBERS = frozenset((int, float, bool, type(None)))
STRINGS = frozenset((str,))
SCALARS = NUMBERS | STRINGS
PLAIN_TYPES = frozenset((int, str, float, bool, list, tuple, dict, set, frozenset, bytes, type(None)))
BUILTIN_NAMES = {t: t.__name__ for t in (int, str, float, bool, list, tuple, dict, set, frozenset,
                                         bytes, bytearray, type(None), complex, range)}
KIND = {"call": 0, "line": 1, "return": 2, "exception": 3}


class Run:
    """One execution inside the child: runs the code, records the trace and
    always ends by writing a result frame and calling os._exit."""

    def __init__(self, job, nonce, out_fd):
        self.job = job
        self.nonce = nonce
        self.out_fd = out_fd
        lim = job["limits"]
        self.limits = lim
        r = lim["repr"]
        self.srepr = Repr(r["chars"], r["items"], r["depth"])
        self.max_vars = r["vars"]
        self.compat = CompatRepr(self.srepr, max(r["chars"] * 8, 1000)) if lim["compat_values"] else None
        self.rlrepr = ReprlibStyle(self.srepr)
        self.head = lim["head_events"]
        self.max_lines = lim["max_lines"]
        self.stdout = None
        self.sink = None
        self.iso_ms = 0.0
        self.begin()

    def begin(self):
        """Fresh per-invocation state (a child may run several invocations
        of one program, each reported in its own frame)."""
        self.events = []
        self.hits = {}
        self.samples_left = self.limits["max_samples"]
        self.outer_left = 64
        self.counts = lambda: (0, 0, 0, 0)
        self.tracer = None
        self.ret = None
        self.value = NO_VALUE
        self.exc = None
        self.tampered = False
        self.started = _monotonic()
        if self.sink is not None:
            try:
                self.stdout.flush()
            except BaseException:
                pass
            self.sink.kept = bytearray()
            self.sink.total = 0

    def snapshot(self, frame, plain_names=False, module=None):
        """A frame's variables as name \x1d repr \x1d type (\x1d compat),
        joined by \x1e, and how many were left out by the cap.
        `plain_names`: every name is known to be an identifier; `module`:
        the frame runs module code (None: look it up)."""
        out = []
        append = out.append
        more = 0
        srepr = self.srepr
        compat = self.compat
        room = self.max_vars
        chars = srepr.chars
        names = BUILTIN_NAMES
        if module is None:
            module = _str_eq(frame.f_code.co_name, "<module>")
        for name, v in _dict_items(frame.f_locals):
            if _type(name) is not str:
                continue  # globals() may hold any key; only names are variables
            if name and name[0] == "_" and name[:2] == "__" and name[-2:] == "__":
                continue
            t = _type(v)
            # The common scalar cases inline; everything else via srepr.
            if t is int:
                r = _int_repr(v) if -BIG_INT < v < BIG_INT else srepr(v)
            elif t is str:
                r = _str_repr(v) if _len(v) <= chars else srepr(v)
            elif t is bool:
                r = "True" if v else "False"
            elif v is None:
                r = "None"
            elif t is float:
                r = _float_repr(v)
            elif _type(t) is not _type:  # hashing t could run its metaclass
                r = srepr(v)
            elif t in PLAIN_TYPES:
                r = srepr(v)
            elif t in SKIP_TYPES or _issubclass(t, type):
                if compat is None or t is not _FunctionType or not module:
                    continue
                r = srepr(v)
            else:
                r = srepr(v)
            if not room:
                more += 1
                continue
            room -= 1
            if not plain_names and not _str_isidentifier(name):
                name = clean(name)
            if compat is None:
                tn = names.get(t) if _type(t) is _type else None
                append("%s\x1d%s\x1d%s" % (name, r, tn or type_name(t)))
            else:
                c, ct = compat.value(v)
                append("%s\x1d%s\x1d%s\x1d%s" % (name, r, ct, c))
        return "\x1e".join(out), more

    def record(self, frame, kind, fid, depth, arg, index, code_info):
        """Append one event as a line of \x1f-separated fields:
        index, kind, line, depth, frame id, function, locals, more, value,
        compat value, caller (line \x1c depth \x1c locals)."""
        fname, plain_names, module = code_info
        locs, more = self.snapshot(frame, plain_names, module)
        value = cvalue = caller = ""
        if kind == 2:
            value = self.srepr(arg)
            if self.compat is not None:
                cvalue = self.rlrepr(arg)
        elif kind == 3:
            et, ev = arg[0], arg[1]
            value = type_name(et) + ": " + clean(self.message(ev))
            if self.compat is not None:
                cvalue = "(<class '%s'>, %s, <traceback object>)" % (type_name(et), self.srepr(ev))
        if self.compat is not None and kind >= 2:
            back = frame.f_back
            if back is not None and _str_eq(back.f_code.co_filename, CAND):
                clocs, _ = self.snapshot(back)
                caller = "%d\x1c%d\x1c%s" % (back.f_lineno or 0, depth - 1, clocs)
        self.events.append("%d\x1f%d\x1f%d\x1f%d\x1f%d\x1f%s\x1f%s\x1f%d\x1f%s\x1f%s\x1f%s" % (
            index, kind, frame.f_lineno or frame.f_code.co_firstlineno, depth, fid,
            fname, locs, more, value, cvalue, caller))

    def message(self, ev):
        try:
            args = _exc_args_of(ev)
        except BaseException:
            return ""
        if _type(args) is tuple and _len(args) == 1 and _type(args[0]) is str:
            s = args[0]
            return s if _len(s) <= 300 else s[:300] + "...(+%d)" % (_len(s) - 300)
        if _type(args) is tuple and _len(args) == 0:
            return ""
        if _type(args) is tuple and _len(args) == 1:
            return self.srepr(args[0])
        return self.srepr(args)

    def make_tracer(self):
        """The global trace function: it traces only frames of the candidate,
        each with a closure that knows its frame id and depth. Counters
        live in closure cells (the hot path); `counts` reads them."""
        run = self
        record = self.record
        hits = self.hits
        hits_get = hits.get
        head = self.head
        max_lines = self.max_lines
        n_events = n_lines = elided = depth_now = frame_ids = 0
        next_sample = self.head * 2
        samples_left = self.samples_left
        outer_left = self.outer_left

        def counts():
            return n_events, n_lines, elided, depth_now

        def local_for(fid, depth, code_info):
            def local(frame, event, arg):
                nonlocal n_events, n_lines, elided, next_sample, samples_left, outer_left, depth_now
                n_events += 1
                if event == "line":
                    ln = frame.f_lineno
                    hits[ln] = hits_get(ln, 0) + 1
                    n_lines += 1
                    if n_lines > max_lines:
                        run.finish("line_limit")
                    if n_events <= head:
                        record(frame, 1, fid, depth, None, n_events, code_info)
                    elif n_events == next_sample and samples_left > 0:
                        samples_left -= 1
                        next_sample *= 2
                        record(frame, 1, fid, depth, None, n_events, code_info)
                    else:
                        elided += 1
                    return local
                kind = KIND[event]
                if n_events <= head:
                    record(frame, kind, fid, depth, arg, n_events, code_info)
                elif kind >= 2 and depth <= 2 and outer_left > 0:
                    outer_left -= 1
                    record(frame, kind, fid, depth, arg, n_events, code_info)
                elif n_events == next_sample and samples_left > 0:
                    samples_left -= 1
                    next_sample *= 2
                    record(frame, kind, fid, depth, arg, n_events, code_info)
                else:
                    elided += 1
                if kind == 2:
                    depth_now -= 1
                    if not frame.f_trace_lines:  # line events switched off
                        run.tampered = True
                return local
            return local

        def on_call(frame, event, arg):
            nonlocal depth_now, frame_ids
            code = frame.f_code
            if not _str_eq(code.co_filename, CAND):
                return None
            depth_now += 1
            frame_ids += 1
            # What the snapshots need of the code object, once per call
            # (reading frame.f_code is an audited event): its escaped name
            # (code.replace() can make any text a name) and whether all
            # its variable names are identifiers.
            module = _str_eq(code.co_name, "<module>")
            plain_names = not module and all(
                map(_str_isidentifier, code.co_varnames + code.co_cellvars + code.co_freevars))
            local = local_for(frame_ids, depth_now, (plain_text(code.co_name), plain_names, module))
            local(frame, event, arg)
            return local

        self.counts = counts
        self.tracer = on_call
        return on_call

    def result(self, status):
        _, n_lines, elided, _ = self.counts()
        res = {
            "status": status,
            "ret": self.ret,
            "exception": self.exc,
            "elided": elided,
            "line_hits": sorted(self.hits.items()),
            "lines_executed": n_lines,
            "stdout": "",
            "stdout_bytes": 0,
            "trace_tampered": self.tampered,
            "iso_ms": self.iso_ms,
            "wall_ms": (_monotonic() - self.started) * 1000.0,
        }
        if self.value is not NO_VALUE:
            res["value"] = self.value
        if self.sink is not None:
            try:
                self.stdout.flush()
            except BaseException:
                pass
            res["stdout"] = bytes(self.sink.kept).decode("utf-8", "replace")
            res["stdout_bytes"] = self.sink.total
        return res

    def check_tracer(self):
        """Note whether the candidate switched the tracer off or replaced it."""
        if self.tracer is not None and _gettrace() is not self.tracer:
            self.tampered = True

    def check_balanced(self):
        """After the traced code ran to its end: every candidate frame that
        started must have returned through our tracer; a frame whose tracer
        was removed never reports its return."""
        if self.tracer is not None and self.counts()[3] != 0:
            self.tampered = True

    def emit(self, status):
        """Write this invocation's result frame."""
        res = self.result(status)
        payload = json_bytes(res) + b"\0" + "\n".join(self.events).encode("utf-8", "replace")
        if _len(payload) > self.limits["result_bytes"]:
            res["status"] = "result_too_large"
            res.pop("value", None)
            payload = json_bytes(res)
        write_frame(self.out_fd, self.nonce + payload)

    def finish(self, status):
        """Write the current invocation's result and leave (later invocations
        are rerun by the manager); never returns, cannot be caught."""
        global CURRENT_RUN
        self.check_tracer()
        _settrace(None)
        if CURRENT_RUN is None:  # already finishing
            _exit(0)
        CURRENT_RUN = None
        try:
            self.emit(status)
        except BaseException:
            _exit(101)
        _exit(0)

    def exception_info(self, e, tb):
        line = None
        while tb is not None:
            if _str_eq(tb.tb_frame.f_code.co_filename, CAND):
                line = tb.tb_lineno
            tb = tb.tb_next
        if _isinstance(e, SyntaxError) and line is None:
            line = e.lineno if _type(e.lineno) is int else None
        return {"type": type_name(_type(e)), "message": self.message(e), "line": line}


def json_bytes(obj):
    """`obj` as UTF-8 JSON; text the candidate chose (an exception message
    with a lone surrogate) is escaped rather than failing the harness."""
    try:
        return _encode(obj).encode("utf-8")
    except UnicodeEncodeError:
        return _encode(escape_surrogates(obj)).encode("utf-8")


def escape_surrogates(obj):
    """`obj` (result JSON: dicts, lists, scalars) with every str made
    UTF-8 safe."""
    t = _type(obj)
    if t is str:
        return _str_encode(obj, "utf-8", "backslashreplace").decode("utf-8")
    if t is dict:
        return {escape_surrogates(k): escape_surrogates(v) for k, v in _dict_items(obj)}
    if t is list or t is tuple:
        return [escape_surrogates(v) for v in obj]
    return obj


def compile_candidate(source, call):
    """Compile the candidate, with `call` (if any) appended as its last line;
    the call's value lands in __egcfg_ret__. The closing parenthesis goes on
    a line of its own so a trailing comment in the call cannot swallow it;
    line numbers stay those of `program + "\n" + call`."""
    if call is None:
        return compile(source, CAND, "exec")
    return compile(source + "\n__egcfg_ret__ = (" + call + "\n)", CAND, "exec")


def run_job(run):
    """Run the job described by run.job inside the (already isolated) child."""
    job = run.job
    op = job["op"]
    if op == "prepare":
        res = {"status": "ok", "prepared": [prepare(p) for p in job["partials"]]}
        write_frame(run.out_fd, run.nonce + _encode(res).encode("utf-8"))
        _exit(0)
    if op == "plan":
        res = {"status": "ok", "plans": plan_tests(job["tests"])}
        write_frame(run.out_fd, run.nonce + _encode(res).encode("utf-8"))
        _exit(0)
    if op == "call_expr":
        res = {"status": "ok", "expr": call_expression(job["assert"])}
        write_frame(run.out_fd, run.nonce + _encode(res).encode("utf-8"))
        _exit(0)
    if op == "probe":
        res = {"status": "ok", "probe": probe_layers()}
        write_frame(run.out_fd, run.nonce + _encode(res).encode("utf-8"))
        _exit(0)
    if op == "trace":
        watch_untraced_code()
    for inv in job["invocations"]:
        run_invocation(run, op == "trace", inv)
    _exit(0)


AUDITED_TAMPERING = frozenset(("compile", "exec", "code.__new__", "function.__new__",
                               "sys.settrace", "sys.setprofile"))


def watch_untraced_code():
    """An audit hook (it cannot be removed) that marks the trace tampered
    when candidate code compiles or runs code of its own (which runs under
    another file name, untraced) or replaces the tracer."""
    getframe = sys._getframe

    def audit(event, args):
        if event in AUDITED_TAMPERING and CURRENT_RUN is not None:
            try:
                caller = getframe(1)
            except BaseException:
                return
            if _str_eq(caller.f_code.co_filename, CAND):
                CURRENT_RUN.tampered = True

    sys.addaudithook(audit)


def run_invocation(run, traced, inv):
    """One invocation of the job's program in a fresh namespace, with its own
    deadline, line budget and result frame. Aborts end the child."""
    global CURRENT_RUN
    job = run.job
    run.begin()
    stdin = inv.get("stdin")
    if stdin is not None:
        mfd = os.memfd_create("stdin")
        write_all(mfd, stdin.encode("utf-8"))
        os.lseek(mfd, 0, 0)
        os.dup2(mfd, 0)
        os.close(mfd)
        sys.stdin = sys.__stdin__ = io.TextIOWrapper(io.FileIO(0, "r", closefd=False), encoding="utf-8")
    random.seed(0)
    CURRENT_RUN = run
    arm_soft_deadline(job["limits"])
    status = execute(run, traced, job, inv)
    signal.setitimer(signal.ITIMER_REAL, 0)
    CURRENT_RUN = None
    run.emit(status)


def execute(run, traced, job, inv):
    """Compile and run; returns the status (aborts never return)."""
    ns = {"__name__": "__main__", "__builtins__": sys.modules["builtins"]}
    call = inv.get("call")
    try:
        setup = compile(job["setup"], "<setup>", "exec") if job.get("setup") else None
        code = compile_candidate(job["program"], call)
        test = compile(inv["test"], "<test>", "exec") if inv.get("test") else None
    except SyntaxError as e:
        run.exc = {"type": type_name(_type(e)), "message": clean(_str(e.msg)[:300]),
                   "line": e.lineno if _type(e.lineno) is int else None}
        return "syntax_error"
    except (ValueError, RecursionError, MemoryError) as e:
        run.exc = {"type": type_name(_type(e)), "message": run.message(e), "line": None}
        return "syntax_error"
    try:
        if setup is not None:
            exec(setup, ns)
        if traced:
            _settrace(run.make_tracer())
            try:
                exec(code, ns)
            finally:
                run.check_tracer()
                _settrace(None)
                run.check_balanced()
            if call is not None:
                run.ret = run.srepr(ns.get("__egcfg_ret__"))
        else:
            exec(code, ns)
            if test is not None:
                exec(test, ns)
            if call is not None:
                ret = dict.get(ns, "__egcfg_ret__")
                run.value = encode_value(ret)
                run.ret = run.srepr(ret)
    except SystemExit as e:
        _settrace(None)
        if inv.get("stdin") is not None and (e.code is None or e.code == 0):
            return "ok"
        run.exc = run.exception_info(e, e.__traceback__)
        return "exception"
    except BaseException as e:
        _settrace(None)
        run.exc = run.exception_info(e, e.__traceback__)
        return "exception"
    return "ok"



# --- plain-data values, judged outside the candidate's process -----------------
class Unencodable(Exception):
    pass


NO_VALUE = object()  # an invocation without a planned value


ENCODE_NODES = 200000
HEAP_TYPE = 1 << 9  # Py_TPFLAGS_HEAPTYPE: classes made at run time (`class`)
_type_flags_of = _type.__dict__["__flags__"].__get__
ENCODE_DEPTH = 100
_deque = collections.deque
_float_bits = lambda x: _unpack("<Q", _pack("<d", x))[0]  # noqa: E731
_complex_real = complex.__dict__["real"].__get__
_complex_imag = complex.__dict__["imag"].__get__


def encode_value(v):
    """`v` as tagged JSON plain data (see `pyvalue.rs`), read through the
    builtin base types' own C methods so no user method runs: a subclass
    of a builtin type is encoded by its builtin value. Any other object
    becomes {"unsupported": type name}; the manager never compares it
    equal to anything."""
    budget = [ENCODE_NODES]

    def enc(x, depth):
        budget[0] -= 1
        if budget[0] < 0 or depth > ENCODE_DEPTH:
            raise Unencodable("too large or too deep")
        t = _type(x)
        if x is None or t is bool:
            return x
        if _issubclass(t, str):
            x = str.__str__(x)
            if str.isascii(x):
                return x
            try:
                _str_encode(x, "utf-8")
                return x
            except UnicodeEncodeError:
                return ["ustr", [ord(c) for c in x]]
        if _issubclass(t, int):
            return ["int", int.__format__(x, "x")]
        if _issubclass(t, float):
            return ["float", _float_bits(x)]
        if _issubclass(t, complex):
            return ["complex", _float_bits(_complex_real(x)), _float_bits(_complex_imag(x))]
        if _issubclass(t, bytes):
            return ["bytes", bytes.hex(x)]
        if _issubclass(t, bytearray):
            return ["bytes", bytearray.hex(x)]
        if _issubclass(t, list):
            return ["list", [enc(i, depth + 1) for i in list.__iter__(x)]]
        if _issubclass(t, tuple):
            return ["tuple", [enc(i, depth + 1) for i in tuple.__iter__(x)]]
        if _issubclass(t, set):
            return ["set", [enc(i, depth + 1) for i in set.__iter__(x)]]
        if _issubclass(t, frozenset):
            return ["set", [enc(i, depth + 1) for i in frozenset.__iter__(x)]]
        if _issubclass(t, dict):
            return ["dict", [[enc(k, depth + 1), enc(i, depth + 1)] for k, i in _dict_items(x)]]
        if _issubclass(t, _deque):
            return ["deque", [enc(i, depth + 1) for i in _deque.__iter__(x)]]
        raise Unencodable(type_name(t))

    try:
        return enc(v, 0)
    except (Unencodable, RecursionError, MemoryError, ValueError) as e:
        reason = e.args[0] if e.args and _type(e.args[0]) is str else type_name(_type(e))
        out = {"unsupported": reason}
        truth = plain_truth(v)
        if truth is not None:
            out["truth"] = truth
        return out


def plain_truth(v):
    """`bool(v)` when no user code decides it: no class in the MRO defines
    `__bool__` or `__len__` (then it is True), or the one that does is a
    static C type. None otherwise."""
    for klass in _type_mro_of(_type(v)):
        d = _type_dict_of(klass)
        if "__bool__" in d or "__len__" in d:
            if _type_flags_of(klass) & HEAP_TYPE:
                return None
            try:
                return bool(v)
            except BaseException:
                return None
    return True


PLAN_KINDS = {ast.Eq: "eq", ast.NotEq: "ne", ast.Is: "is", ast.IsNot: "is_not"}
LITERAL_WRAPPERS = {"set": set, "frozenset": frozenset, "tuple": tuple, "list": list, "sorted": sorted}
JUDGING_NODES = (ast.Compare, ast.BoolOp, ast.IfExp, ast.Lambda, ast.ListComp, ast.SetComp,
                 ast.DictComp, ast.GeneratorExp, ast.NamedExpr, ast.Await, ast.Yield, ast.YieldFrom)


def literal(node):
    """(True, value) when `node` is a literal, or a literal wrapped in
    set()/frozenset()/tuple()/list()/sorted(); (False, None) otherwise."""
    try:
        return True, ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, RecursionError, MemoryError):
        pass
    if _isinstance(node, ast.Call) and _isinstance(node.func, ast.Name) and not node.keywords \
            and _len(node.args) == 1 and node.func.id in LITERAL_WRAPPERS:
        found, inner = literal(node.args[0])
        if found:
            try:
                return True, LITERAL_WRAPPERS[node.func.id](inner)
            except (TypeError, ValueError):
                pass
    return False, None


def answer_only(node):
    """Whether evaluating `node` in the candidate's process yields only the
    candidate's answer: nothing in it compares, tests truth or branches
    (where an always-equal object or a patched builtin could decide)."""
    return not any(_isinstance(n, JUDGING_NODES) or _isinstance(n, ast.UnaryOp) and _isinstance(n.op, ast.Not)
                   for n in ast.walk(node))


def test_plan(code):
    """How the manager judges an `assert` test from plain data: a list of
    one check (see `plan_assert`). None when the test has another shape."""
    src = code.strip()
    try:
        tree = ast.parse(src)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None
    if _len(tree.body) != 1 or not _isinstance(tree.body[0], ast.Assert):
        return None
    plan = plan_assert(tree.body[0], src)
    if plan is HOLDS:
        return [runs()]
    return None if plan is None else [plan]


HOLDS = object()  # an assert that holds whatever the program does


def runs():
    """The check of a test that holds when the program runs to its end."""
    return {"kind": "truthy", "call": "True", "negate": False}


def script_plan(code):
    """The checks of a HumanEval-style test script: module-level constants
    and imports, `def check(candidate)` whose body is asserts of planned
    shapes, and `check(NAME)`. Each assert becomes one check with
    `candidate` read as NAME. None for any other script (its remaining
    statements could decide the verdict inside the candidate's process)."""
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None
    body = tree.body
    if _len(body) < 2:
        return None
    last = body[-1]
    if not (_isinstance(last, ast.Expr) and _isinstance(last.value, ast.Call)
            and _isinstance(last.value.func, ast.Name) and not last.value.keywords
            and _len(last.value.args) == 1 and _isinstance(last.value.args[0], ast.Name)):
        return None
    checker, entry = last.value.func.id, last.value.args[0].id
    functions = [s for s in body[:-1] if _isinstance(s, ast.FunctionDef)]
    if _len(functions) != 1 or functions[0].name != checker:
        return None
    check = functions[0]
    args = check.args
    if check.decorator_list or _len(args.args) != 1 or args.posonlyargs or args.kwonlyargs \
            or args.vararg or args.kwarg or args.defaults:
        return None
    param = args.args[0].arg
    for stmt in body[:-1]:
        if stmt is check:
            continue
        if _isinstance(stmt, ast.Assign) and literal(stmt.value)[0] \
                and all(_isinstance(t, ast.Name) and t.id not in (checker, entry, param) for t in stmt.targets):
            continue
        if _isinstance(stmt, ast.Expr) and _isinstance(stmt.value, ast.Constant):
            continue  # a docstring
        if _isinstance(stmt, (ast.Import, ast.ImportFrom)):
            continue  # no planned call reads what it binds (see below)
        return None
    plans = []
    for stmt in check.body:
        if _isinstance(stmt, ast.Expr) and _isinstance(stmt.value, ast.Constant) or _isinstance(stmt, ast.Pass):
            continue
        if not _isinstance(stmt, ast.Assert):
            return None
        renamed = Rename(param, entry).apply(stmt)
        plan = None if renamed is None else plan_assert(renamed, None)
        if plan is None:
            return None
        if plan is not HOLDS and not free_names(ast.parse(plan["call"], mode="eval")) <= EXPECTED_BUILTINS | {entry}:
            return None  # the call reads a name the script binds (an import, a constant)
        if plan is not HOLDS:
            plans.append(plan)
    return plans or [runs()]


class Rename(ast.NodeTransformer):
    """Reads the check function's parameter as the entry point's name;
    `apply` gives None when the parameter is bound anew inside."""

    def __init__(self, old, new):
        self.old, self.new = old, new
        self.rebound = False

    def apply(self, node):
        out = self.visit(node)
        return None if self.rebound else out

    def visit_Name(self, node):
        if node.id == self.old:
            if not _isinstance(node.ctx, ast.Load):
                self.rebound = True
            return ast.copy_location(ast.Name(id=self.new, ctx=node.ctx), node)
        return node


# Builtins an expected value may use: pure functions and types. Anything
# that reads or changes the world (open, input, __import__, exec, ...) or
# reaches objects' insides (getattr, vars, globals) is left out.
EXPECTED_BUILTINS = frozenset((
    "abs", "all", "any", "ascii", "bin", "bool", "bytes", "chr", "complex", "dict", "divmod",
    "enumerate", "filter", "float", "format", "frozenset", "hex", "int", "len", "list", "map",
    "max", "min", "oct", "ord", "pow", "range", "repr", "reversed", "round", "set", "slice",
    "sorted", "str", "sum", "tuple", "zip"))


def free_names(node):
    """Names `node` reads that it does not bind itself (comprehension
    variables are bound)."""
    bound = set()
    for n in ast.walk(node):
        if _isinstance(n, ast.comprehension):
            for t in ast.walk(n.target):
                if _isinstance(t, ast.Name):
                    bound.add(t.id)
    return {n.id for n in ast.walk(node) if _isinstance(n, ast.Name) and n.id not in bound}


def independent(node):
    """Whether `node` means the same without the program: it reads only
    the builtins above and no private attribute, and defines no code."""
    for n in ast.walk(node):
        if _isinstance(n, (ast.Lambda, ast.NamedExpr, ast.Await, ast.Yield, ast.YieldFrom)):
            return False
        if _isinstance(n, ast.Attribute) and n.attr.startswith("_"):
            return False
    return free_names(node) <= EXPECTED_BUILTINS


def expected_value(node):
    """(True, value) for a literal, or for an expression independent of the
    program, evaluated here (in the planner, never in a candidate's
    process) with only the builtins above; (False, None) otherwise."""
    found, value = literal(node)
    if found:
        return found, value
    if not independent(node):
        return False, None
    env = {"__builtins__": {name: BUILTIN_VALUES[name] for name in EXPECTED_BUILTINS}}
    try:
        return True, eval(compile(ast.Expression(body=node), "<expected>", "eval"), env)
    except BaseException:
        return False, None


BUILTIN_VALUES = {name: getattr(builtins, name) for name in EXPECTED_BUILTINS}


def plan_assert(stmt, src):
    """How the manager judges one `assert` statement from plain data: the
    expression the child evaluates (`call`) and the check applied to its
    encoded value (`kind`, `expected`, `negate`, tolerances). HOLDS for an
    assert of a true constant; None when the assert has another shape.
    `src` is the statement's source, for the call's text (None: unparse)."""
    node = stmt.test
    negate = False
    while _isinstance(node, ast.UnaryOp) and _isinstance(node.op, ast.Not):
        node, negate = node.operand, not negate
    found, value = literal(stmt.test)
    if found:
        return HOLDS if value else None
    plan = None
    if _isinstance(node, ast.Compare) and _len(node.ops) == 1 and _type(node.ops[0]) in PLAN_KINDS:
        kind = PLAN_KINDS[_type(node.ops[0])]
        for call, other in ((node.left, node.comparators[0]), (node.comparators[0], node.left)):
            if literal(call)[0] or not answer_only(call):
                continue
            found, value = expected_value(other)
            if found:
                if kind in ("is", "is_not") and not (value is None or value is True or value is False):
                    return None
                expected = encode_value(value)
                if _type(expected) is dict:  # no plain data: cannot be judged outside
                    return None
                plan = {"kind": kind, "call": call, "expected": expected}
                break
    elif _isinstance(node, ast.Call) and ast.unparse(node.func) == "math.isclose" and _len(node.args) == 2:
        tolerances = {"rel_tol": 1e-09, "abs_tol": 0.0}
        for kw in node.keywords:
            found, value = expected_value(kw.value)
            if kw.arg not in tolerances or not found or _type(value) not in (int, float):
                return None
            tolerances[kw.arg] = float(value)
        for call, other in ((node.args[0], node.args[1]), (node.args[1], node.args[0])):
            found, value = expected_value(other)
            if found and _type(value) in (int, float) and not literal(call)[0] and answer_only(call):
                plan = {"kind": "isclose", "call": call, "expected": encode_value(value)}
                plan.update(tolerances)
                break
    elif answer_only(node) and not literal(node)[0]:
        plan = {"kind": "truthy", "call": node}
    if plan is None:
        return None
    seg = ast.get_source_segment(src, plan["call"]) if src is not None else None
    plan["call"] = seg if seg is not None else ast.unparse(plan["call"])
    plan["negate"] = negate
    return plan


def plan_tests(tests):
    """One plan (a list of checks, all of which must hold) or None per
    test; a test is [kind, code] with kind "assert" or "script"."""
    return [test_plan(code) if kind == "assert" else script_plan(code) for kind, code in tests]


# --- prepare (docs/method.md §5) and call expressions -----------------------
def parses(lines):
    try:
        ast.parse("\n".join(lines))
        return True
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return False


def indent_of(line):
    return line[: _len(line) - _len(line.lstrip())]


def truncate(text):
    text = re.sub(r"```[A-Za-z0-9_+-]*", "", text)
    lines = text.split("\n")
    while True:
        if parses(lines):
            return lines
        if lines and parses(lines + [indent_of(lines[-1]) + "pass"]):
            return lines + [indent_of(lines[-1]) + "pass"]
        if not lines:
            return None
        last = lines.pop()
        if not lines:
            return None
        if parses(lines):
            return lines
        if parses(lines + [indent_of(last) + "pass"]):
            return lines + [indent_of(last) + "pass"]


def strip_docstrings(tree):
    for node in ast.walk(tree):
        if _isinstance(node, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            body = node.body
            if body and _isinstance(body[0], ast.Expr) and _isinstance(body[0].value, ast.Constant) \
                    and _isinstance(body[0].value.value, str):
                body.pop(0)
                if not body and not _isinstance(node, ast.Module):
                    body.append(ast.Pass())


def prepare(partial):
    try:
        lines = truncate(partial)
        if lines is None:
            return None
        tree = ast.parse("\n".join(lines))
        strip_docstrings(tree)
        out = ast.unparse(tree).strip()
        return out or None
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None


def call_expression(stmt):
    try:
        tree = ast.parse(stmt.strip())
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None
    if _len(tree.body) != 1 or not _isinstance(tree.body[0], ast.Assert):
        return None
    node = tree.body[0].test
    while _isinstance(node, ast.UnaryOp) and _isinstance(node.op, ast.Not):
        node = node.operand
    if _isinstance(node, ast.Compare):
        node = node.left
    seg = ast.get_source_segment(stmt.strip(), node)
    return seg if seg is not None else ast.unparse(node)


# --- time that counts ---------------------------------------------------------
# A deadline counts the time a program ran or slept, not the time it waited in
# a run queue for a CPU (the second field of its /proc schedstat): a candidate
# traced while the model decodes on the same cores must not time out for want
# of a core, or what the model is shown would depend on the machine's load.
# The wall clock still bounds every deadline, at `wall_stretch` times itself.
def run_delay_s(fd):
    """Seconds the task whose schedstat `fd` holds open has waited for a CPU
    (0 without the file: the deadline is then plain wall-clock time)."""
    if fd is None:
        return 0.0
    try:
        return int(os.pread(fd, 128, 0).split()[1]) / 1e9
    except (OSError, ValueError, IndexError):
        return 0.0


def open_schedstat(path):
    """A task's schedstat, open for `run_delay_s`; None where it cannot be
    opened."""
    try:
        return os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None


class Deadline:
    """`budget_s` of time that counts from now, within `stretch` times it of
    wall-clock time; `left()` says how much is left (at most 0 when out)."""

    def __init__(self, budget_s, stretch, schedstat_fd):
        self.budget = budget_s
        self.fd = schedstat_fd
        self.start = _monotonic()
        self.waited_at_start = run_delay_s(schedstat_fd)
        self.wall_end = self.start + budget_s * _max(stretch, 1.0)

    def left(self):
        now = _monotonic()
        waited = run_delay_s(self.fd) - self.waited_at_start
        return _min(self.start + self.budget + waited, self.wall_end) - now


# --- the child ----------------------------------------------------------------
def arm_soft_deadline(limits):
    """Arms the soft deadline (0.9 of the timeout) for the set-up or the
    next invocation."""
    global SOFT_DEADLINE
    SOFT_DEADLINE = Deadline(limits["timeout_s"] * 0.9, limits["wall_stretch"], SCHEDSTAT)
    signal.setitimer(signal.ITIMER_REAL, SOFT_DEADLINE.budget)


def on_alarm(*_):
    """The soft deadline: installed once per server, armed per child. Time
    the child spent waiting for a CPU does not count: the timer is armed
    again for what is left."""
    if CURRENT_RUN is None:
        return
    left = SOFT_DEADLINE.left() if SOFT_DEADLINE is not None else 0.0
    if left > 0.001:
        signal.setitimer(signal.ITIMER_REAL, left)
        return
    CURRENT_RUN.finish("timeout")


CURRENT_RUN = None
SOFT_DEADLINE = None
# The child's own schedstat, opened before its isolation (after which it
# could not open it); None where /proc is not there.
SCHEDSTAT = None


def child_main(job, nonce, out_fd, iso, scratch, keep_fds, oneshot=False):
    """Set up and run one execution; never returns. `job` is the decoded
    job, or a memoryview of its JSON, which the child decodes itself."""
    global CURRENT_RUN, SCHEDSTAT
    try:
        t0 = _monotonic()
        if _type(job) is memoryview:
            job = _loads(bytes(job))
        run = Run(job, nonce, out_fd)
        if not oneshot:
            os.setsid()
        iso.drop_privileges()
        # After the drop: changing credentials clears the parent-death signal.
        if not oneshot and _prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
            _exit(102)
        keep = sorted(set(keep_fds) | {0, 1, 2, out_fd})
        lo = 3
        for fd in keep:
            if fd >= lo:
                os.closerange(lo, fd)
                lo = fd + 1
        os.closerange(lo, 4096)
        os.chdir(scratch)
        lim = job["limits"]
        # Streams built by the server before the fork, still empty here.
        run.sink = STREAMS.sink
        run.sink.cap = lim["stdout_bytes"]
        run.stdout = STREAMS.stdout
        if oneshot:
            STREAMS.install()
        # The environment was cleared by the manager (PATH, LANG only).
        tempfile.tempdir = scratch
        SCHEDSTAT = open_schedstat("/proc/thread-self/schedstat")
        CURRENT_RUN = run  # set-up itself is under the soft deadline
        arm_soft_deadline(lim)
        err = iso.install(lim, scratch)
        run.iso_ms = (_monotonic() - t0) * 1000.0
        if err is not None:
            res = run.result("internal_error")
            res["detail"] = "isolation failed: " + err
            write_frame(out_fd, nonce + _encode(res).encode("utf-8"))
            _exit(0)
        sys.setrecursionlimit(10000)
        run_job(run)
    except BaseException as e:  # the harness itself failed
        try:
            res = {"status": "internal_error", "detail": "harness: %s: %s" % (type_name(_type(e)), _str(e)[:300])}
            write_frame(out_fd, nonce + _encode(res).encode("utf-8"))
        except BaseException:
            pass
    _exit(0)


# --- scratch ------------------------------------------------------------------------
class Scratch:
    """Each execution's scratch directory: an unpredictable name beneath the
    server's scratch (a size-bounded tmpfs of its own where the server has
    a mount namespace), which the child may pass through but neither list
    nor write; 0700 and owned by the child's uid. A directory left non-empty
    is moved aside and emptied by a forked cleaner, so no candidate can make
    the server slow or fail."""

    def __init__(self, config):
        self.root = config["scratch"]
        self.owner = config.get("child_id")
        self.cleaners = []

    def make(self):
        path = os.path.join(self.root, os.urandom(16).hex())
        try:
            os.mkdir(path, 0o700)
        except OSError as e:
            if e.errno != errno.ENOSPC or not self.cleaners:
                raise
            # The last execution filled the scratch: its cleaner frees it
            # (within the tmpfs's inode bound) before this one starts.
            self.reap(wait=True)
            os.mkdir(path, 0o700)
        if self.owner is not None:
            os.chown(path, self.owner, self.owner)
        return path

    def drop(self, path):
        self.reap()
        try:
            os.rmdir(path)
            return
        except OSError:
            pass
        trash = os.path.join(self.root, "trash-" + os.urandom(16).hex())
        os.rename(path, trash)
        pid = os.fork()
        if pid == 0:
            try:
                remove_tree(trash)
            finally:
                _exit(0)
        self.cleaners.append(pid)

    def reap(self, wait=False):
        for pid in list(self.cleaners):
            try:
                done, _ = os.waitpid(pid, 0 if wait else os.WNOHANG)
            except ChildProcessError:
                done = pid
            if done:
                self.cleaners.remove(pid)


def remove_tree(top):
    """Delete the tree at `top` without recursion and without long paths:
    each deeper directory is first renamed to the top level (under a name
    no candidate could have guessed), so depth costs nothing; a pass over a
    directory that deletes nothing ends with it."""
    top_fd = os.open(top, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    token = os.urandom(8).hex()
    pending = [None]
    queued = set()
    while pending:
        name = pending.pop()
        if name is not None:
            try:  # a directory this loop found or moved here, never a link
                os.chmod(name, 0o700, dir_fd=top_fd)
            except OSError:
                pass  # root needs no permission
        try:
            fd = top_fd if name is None else os.open(
                name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=top_fd)
        except OSError:
            continue
        progress = True
        while progress:
            progress = False
            for entry in list(os.scandir(fd)):
                try:
                    if not entry.is_dir(follow_symlinks=False):
                        os.unlink(entry.name, dir_fd=fd)
                        progress = True
                        continue
                    if name is None:
                        flat = entry.name
                    else:
                        flat = ".%s-%d" % (token, _len(queued))
                        os.rename(entry.name, flat, src_dir_fd=fd, dst_dir_fd=top_fd)
                        progress = True
                    if flat not in queued:
                        queued.add(flat)
                        pending.append(flat)
                except OSError:
                    pass
        if name is not None:
            os.close(fd)
            try:
                os.rmdir(name, dir_fd=top_fd)
            except OSError:
                pass
    os.close(top_fd)
    try:
        os.rmdir(top)
    except OSError:
        pass


# --- the server -----------------------------------------------------------------
class Server:
    def __init__(self, config, req_fd, rep_fd):
        self.config = config
        self.req_fd = req_fd
        self.rep_fd = rep_fd
        self.iso = Isolation(config)
        self.scratch = Scratch(config)
        self.keep = [config["landlock_fd"]] if config.get("landlock_fd") is not None else []
        # The one buffer a request's job ever occupies in the server: an
        # anonymous mapping, so its untouched pages cost a fork nothing,
        # and MADV_DONTNEED both zeroes the pages a job used and returns
        # them.
        self.request = mmap.mmap(-1, FRAME_CAP + 4096)
        self.request_view = memoryview(self.request)
        self.request_used = 0

    def reply(self, header, body=b""):
        h = _encode(header).encode("utf-8")
        write_frame(self.rep_fd, _pack("<I", _len(h)) + h + body)

    def execute(self, head, job):
        """Fork a child for `job` (a dict, or a view of the request buffer
        holding its JSON, which only the child decodes) and supervise it.
        `head` gives the id, the invocation count, the timeout, the margin
        past it before the hard kill, the wall-clock stretch and the result
        cap. The child writes one frame per invocation, each with
        its own deadline. Returns (header, body): the body holds the
        verified frames' payloads, each behind its u32 length;
        header["done"] counts them, and when the child stopped early
        header["status"] tells what happened to the next invocation."""
        scratch = self.scratch.make()
        nonce = os.urandom(16)
        rfd, wfd = os.pipe()
        expected = _max(head["invocations"], 1)
        timeout = head["timeout_s"]
        cap = head["result_bytes"] + 16 + 65536
        t0 = _monotonic()
        pid = os.fork()
        if pid == 0:
            os.close(rfd)
            child_main(job, nonce, wfd, self.iso, scratch, self.keep)
        self.forget_request()  # the child has its copy
        os.close(wfd)
        try:
            pidfd = os.pidfd_open(pid)
        except OSError:
            pidfd = None
        poller = select.poll()
        poller.register(rfd, select.POLLIN)
        if pidfd is not None:
            poller.register(pidfd, select.POLLIN)
        buf = bytearray()
        pos = 0
        frames = []
        started = t0
        # The deadlines are the server's: a frame starts the next
        # invocation's budget, never beyond the job's total, and frames
        # past the last invocation are not read. Neither counts the time
        # the child waited for a CPU (read where the child cannot forge it).
        stat_fd = open_schedstat("/proc/%d/schedstat" % pid)
        stretch = head["wall_stretch"]
        hard = timeout + head["kill_margin_s"]
        job_deadline = Deadline(expected * hard, stretch, stat_fd)
        invocation = Deadline(hard, stretch, stat_fd)
        eof = exited = False
        stop = None
        while not (eof and exited) and stop is None and _len(frames) < expected:
            remaining = _min(invocation.left(), job_deadline.left())
            if remaining <= 0:
                stop = ("timeout", "killed after %.1f s" % timeout)
                break
            for fd, _ in poller.poll(remaining * 1000.0):
                if fd != rfd:
                    exited = True
                    poller.unregister(pidfd)
                    continue
                data = _read(rfd, 1 << 16)
                if not data:
                    eof = True
                    poller.unregister(rfd)
                    continue
                buf += data
                while _len(buf) - pos >= 4:
                    (n,) = _unpack("<I", bytes(buf[pos:pos + 4]))
                    if n > cap:
                        stop = ("result_too_large", "result frame over the cap")
                        break
                    if _len(buf) - pos - 4 < n:
                        break
                    frame = bytes(buf[pos + 4:pos + 4 + n])
                    pos += 4 + n
                    if n < 16 or frame[:16] != nonce:
                        stop = ("protocol_error", "result frame with a wrong length or nonce")
                        break
                    frames.append(frame[16:])
                    started = _monotonic()
                    invocation = Deadline(hard, stretch, stat_fd)
                    if _len(frames) == expected:
                        break
                if stop is not None or _len(frames) == expected:
                    break
            if pidfd is None and eof:
                exited = True
        for target in (lambda: os.killpg(pid, signal.SIGKILL), lambda: os.kill(pid, signal.SIGKILL)):
            try:
                target()
            except OSError:
                pass
        _, wstatus, rusage = os.wait4(pid, 0)
        try:
            os.killpg(pid, signal.SIGKILL)  # anything the child left in its group
        except OSError:
            pass
        end = _monotonic()
        os.close(rfd)
        for fd in (pidfd, stat_fd):
            if fd is not None:
                os.close(fd)
        self.scratch.drop(scratch)
        header = {"id": head["id"], "done": _len(frames), "wall_ms": (end - started) * 1000.0,
                  "maxrss_kb": rusage.ru_maxrss}
        if _len(frames) < expected:
            if stop is None and pos < _len(buf):
                stop = ("protocol_error", "truncated or garbled result frame")
            if stop is not None:
                header["status"], header["detail"] = stop
            else:
                header["status"] = "crashed"
                if os.WIFSIGNALED(wstatus):
                    header["signal"] = os.WTERMSIG(wstatus)
                elif os.WIFEXITED(wstatus):
                    header["exit_code"] = os.WEXITSTATUS(wstatus)
        return header, b"".join(_pack("<I", _len(f)) + f for f in frames)

    def probe(self):
        """Run one child that installs the isolation and tests its effect."""
        limits = self.config["probe_limits"]
        head = {"id": 0, "invocations": 1, "timeout_s": limits["timeout_s"],
                "wall_stretch": limits["wall_stretch"],
                "kill_margin_s": limits["kill_margin_s"],
                "result_bytes": limits["result_bytes"]}
        return self.execute(head, {"id": 0, "op": "probe", "limits": limits})

    def read_request(self):
        """The next request's header, and a view of its job's JSON in the
        request buffer (read there directly, with no copy on the heap);
        None at the end of input."""
        frame = read_exact(self.req_fd, 4)
        if frame is None:
            return None
        (n,) = _unpack("<I", frame)
        head_len = _unpack("<I", read_exact(self.req_fd, 4))[0]
        size = n - 4 - head_len
        if head_len > 4096 or not 0 <= size <= _len(self.request):
            raise ValueError("malformed request frame of %d bytes" % n)
        head = _loads(read_exact(self.req_fd, head_len))
        view = self.request_view[:size]
        self.request_used = _max(self.request_used, size)
        filled = 0
        while filled < size:
            got = os.readv(self.req_fd, [view[filled:]])
            if got == 0:
                return None
            filled += got
        return head, view

    def forget_request(self):
        """Zero the part of the request buffer a request used (its pages
        read as zeros from now on)."""
        if self.request_used:
            self.request.madvise(mmap.MADV_DONTNEED, 0, self.request_used)
            self.request_used = 0

    def manager_gone(self):
        """Whether nobody writes requests any more (the request pipe has no
        writer), so no one will read replies. It also covers a manager that
        died before `install_server` set the parent-death signal again (a
        server in a PID namespace of its own always reads its parent as 0,
        so `getppid` cannot tell)."""
        poller = select.poll()
        poller.register(self.req_fd, 0)
        return any(ev & select.POLLHUP for _, ev in poller.poll(0))

    def serve(self):
        while True:
            request = self.read_request()
            if request is None or self.manager_gone():
                return
            head, job = request
            try:
                header, body = self.execute(head, job)
            except BaseException as e:
                header, body = {"id": head.get("id"), "status": "internal_error",
                                "detail": "server: %s: %s" % (type_name(_type(e)), _str(e)[:300])}, b""
            finally:
                self.forget_request()
            self.reply(header, body)


def probe_layers():
    """What an isolated child can still do (run inside one)."""
    import socket

    def outcome(action):
        """"allowed", or the errno name `action` failed with."""
        try:
            action()
            return "allowed"
        except OSError as e:
            return errno.errorcode.get(e.errno, str(e.errno))

    def fork_and_reap():
        pid = os.fork()
        if pid == 0:
            _exit(0)
        os.waitpid(pid, 0)

    def write_outside():
        path = "/dev/shm/.egcfg-probe-%d" % os.getpid()
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
        os.unlink(path)

    found = {"uid": os.getuid()}
    found["inet_socket"] = outcome(lambda: socket.socket(socket.AF_INET, socket.SOCK_STREAM))
    try:
        fd = os.open("/proc/self/status", os.O_RDONLY)
        status = os.read(fd, 8192).decode()
        os.close(fd)
        fields = dict(l.split(":", 1) for l in status.splitlines() if ":" in l)
        found["seccomp_mode"] = fields["Seccomp"].strip()
        found["cap_eff"] = fields["CapEff"].strip()
    except (OSError, KeyError):
        found["seccomp_mode"] = "unknown"
    found["fork"] = outcome(fork_and_reap)
    found["write_outside"] = outcome(write_outside)
    found["read_outside"] = outcome(lambda: os.listdir("/"))
    return found


def main():
    global STREAMS
    mode = sys.argv[2] if _len(sys.argv) > 2 else "server"
    req_fd = os.dup(0)
    rep_fd = os.dup(1)
    devnull = os.open("/dev/null", os.O_RDWR)
    os.dup2(devnull, 0)
    os.dup2(devnull, 1)
    config = _loads(read_frame(req_fd))
    if mode == "oneshot":
        job = _loads(read_frame(req_fd))
        iso = Isolation(config)
        err = iso.install_server()
        if err is not None:
            sys.stderr.write("egcfg harness: %s\n" % err)
            _exit(1)
        scratch = Scratch(config).make()
        keep = [config["landlock_fd"]] if config.get("landlock_fd") is not None else []
        STREAMS = Streams()
        signal.signal(signal.SIGALRM, on_alarm)
        child_main(job, bytes.fromhex(job["nonce"]), rep_fd, iso, scratch, keep + [devnull], oneshot=True)
    STREAMS = Streams()
    signal.signal(signal.SIGALRM, on_alarm)
    server = Server(config, req_fd, rep_fd)
    err = server.iso.install_server()
    if err is not None:
        sys.stderr.write("egcfg harness: %s\n" % err)
        _exit(1)
    header, body = server.probe()
    header["python"] = "%d.%d.%d" % sys.version_info[:3]
    header["executable"] = sys.executable
    header["pid"] = os.getpid()
    server.reply(header, body)
    os.dup2(devnull, 2)
    STREAMS.install()
    server.serve()


# Only when started by the bootstrap (see server.rs); an import (the unit
# tests in test_harness.py) gets the functions alone.
if __name__ == "__egcfg__":
    main()
