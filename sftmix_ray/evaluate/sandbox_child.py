"""What runs inside a sandboxed process: confine it, then play one role.

The evaluator starts `python -I -S -c <boot>` with `key=value` arguments (limits, fds, role);
stdin brings this module and the wire module, compiled, then the source to run. Confinement
happens here, before any of that source runs, in this order (each step needs the privileges the
next one gives up):
1. resource limits (CPU time, address space, file size, open files, processes, no core dumps);
2. namespaces: as root, mount + network + IPC; otherwise user + network (network alone if not);
3. with a mount namespace (see `_build_mounts`): every inherited mount read-only, private tmpfs
   scratch over /tmp, /var/tmp and /dev/shm, and the interpreter's prefix re-exposed read-only
   through a traversable tmpfs if it sits under a root-only directory such as /root;
4. as root: the fresh uid, with no capability left at all (bounding set emptied too);
5. no_new_privs, and a seccomp filter: socket(AF_UNIX, ...), io_uring_setup and every system
   call of another ABI (32-bit int 0x80, x32) fail with EACCES.
The layers that took effect go to the status pipe before the source is read.

Roles: `plain` runs the source and then writes `done` (the program's own word, see sandbox.py);
`candidate` runs the model's code with its status pipe closed and answers calls over the wire;
`harness` runs the benchmark's tests against a proxy and writes `passed` once `check` returns.

Standard library only, no package imports (`sftmix_ray` is not importable in the sandbox), and
nothing slow to import, since every program pays for it twice: the launcher registers the wire
module as `sandbox_wire` before running this code.
"""

import ctypes
import os
import resource
import stat
import sys

CLONE_NEWNS, CLONE_NEWIPC, CLONE_NEWUSER, CLONE_NEWNET = 0x20000, 0x8000000, 0x10000000, 0x40000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REMOUNT = 1, 2, 4, 8, 32
MS_NOATIME, MS_NODIRATIME, MS_BIND, MS_REC, MS_PRIVATE, MS_RELATIME = (
    1 << 10, 1 << 11, 1 << 12, 1 << 14, 1 << 18, 1 << 21)
_KEPT_FLAGS = {"nosuid": MS_NOSUID, "nodev": MS_NODEV, "noexec": MS_NOEXEC,
               "noatime": MS_NOATIME, "nodiratime": MS_NODIRATIME, "relatime": MS_RELATIME}
PR_SET_DUMPABLE, PR_SET_KEEPCAPS, PR_CAPBSET_DROP, PR_SET_SECCOMP, PR_SET_NO_NEW_PRIVS = (
    4, 8, 24, 22, 38)
CAP_DAC_READ_SEARCH = 2
SCRATCH = ("/tmp", "/var/tmp", "/dev/shm")
WORKDIR = "/tmp/work"  # inside the private /tmp, so the same path for every program
# (audit arch, socket's number) per machine; io_uring_setup is 425 on every arch since 5.1.
_SECCOMP_ARCH = {"x86_64": (0xC000003E, 41), "aarch64": (0xC00000B7, 198)}
_NR_IO_URING_SETUP, _AF_UNIX, _EACCES = 425, 1, 13

_libc = ctypes.CDLL(None, use_errno=True)


def _ok(result: int, what: str) -> None:
    if result != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"sandbox: {what}: {os.strerror(err)}")


def _mount(source, target: str, fstype, flags: int, data=None) -> None:
    args = [s.encode() if isinstance(s, str) else s for s in (source, target, fstype, data)]
    _ok(_libc.mount(args[0], args[1], args[2], ctypes.c_ulong(flags), args[3]),
        f"mount {target}")


def _set_limits(cfg: dict) -> None:
    for limit, value in ((resource.RLIMIT_CPU, cfg["cpu"]), (resource.RLIMIT_AS, cfg["memory"]),
                         (resource.RLIMIT_FSIZE, cfg["fsize"]),
                         (resource.RLIMIT_NPROC, cfg["nproc"]), (resource.RLIMIT_NOFILE, 64),
                         (resource.RLIMIT_CORE, 0)):
        resource.setrlimit(limit, (value, value))


def _unshare(as_root: bool) -> set:
    if as_root:
        if _libc.unshare(CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWIPC) == 0:
            return {"net", "ipc", "mounts"}
        return {"net"} if _libc.unshare(CLONE_NEWNET) == 0 else set()
    # A user namespace first: from one, a process cannot ptrace or open /proc/<pid>/fd of the
    # evaluator's same-uid processes, which is all that guards the verdict without the uid layer.
    if _libc.unshare(CLONE_NEWUSER | CLONE_NEWNET) == 0:
        return {"userns", "net"}
    return {"net"} if _libc.unshare(CLONE_NEWNET) == 0 else set()


def _unescape(path: str) -> str:
    """A mountinfo path: spaces, tabs, newlines and backslashes arrive as octal escapes."""
    for code in ("040", "011", "012", "134"):
        path = path.replace("\\" + code, chr(int(code, 8)))
    return path


def _read_only_everything() -> None:
    """Every mount this namespace inherited becomes read-only here (a per-mount flag of this
    namespace's copy; the evaluator's mounts are untouched), so the program can write nowhere but
    the scratch tmpfs mounted next: nothing it writes can outlive its namespace."""
    with open("/proc/self/mountinfo") as f:
        mounts = [line.split() for line in f]
    for fields in mounts:
        flags = MS_BIND | MS_REMOUNT | MS_RDONLY
        flags |= sum(_KEPT_FLAGS.get(o, 0) for o in set(fields[5].split(",")))
        try:
            _mount(None, _unescape(fields[4]), None, flags)
        except FileNotFoundError:  # under a mount stacked later over a parent: unreachable
            continue


def _closed_ancestor(path: str) -> str | None:
    """The highest directory above `path` that other users may not traverse (e.g. /root)."""
    parts = path.strip("/").split("/")[:-1]
    for i in range(1, len(parts) + 1):
        above = "/" + "/".join(parts[:i])
        if not os.stat(above).st_mode & stat.S_IXOTH:
            return above
    return None


def _make_path(path: str) -> None:
    """Create the missing directories down to `path`, traversable but not listable by others
    (0711), so the tmpfs laid over /root shows nothing."""
    current = ""
    for part in path.strip("/").split("/"):
        current += "/" + part
        if not os.path.isdir(current):
            os.mkdir(current)
            os.chmod(current, 0o711)


def _build_mounts(scratch_bytes: int, uid: int) -> None:
    """The filesystem the program sees (this process is root in a fresh mount namespace)."""
    prefixes = sorted({os.path.realpath(p) for p in (sys.base_prefix, sys.base_exec_prefix)})
    # Handles taken before anything covers the prefixes: binding /proc/self/fd/N reaches a
    # directory by its handle even once its path is hidden under a tmpfs.
    handles = [(p, os.open(p, os.O_PATH | os.O_DIRECTORY)) for p in prefixes]
    closed = {a for a in (_closed_ancestor(p) for p in prefixes) if a}
    # Private first, or the mounts below would propagate back to the evaluator's namespace.
    _mount(None, "/", None, MS_REC | MS_PRIVATE)
    _read_only_everything()
    scratch = sorted({os.path.realpath(d) for d in SCRATCH if os.path.isdir(d)})
    for d in scratch:
        # nr_inodes bounds the kernel memory that empty files could take, which size does not
        _mount("tmpfs", d, "tmpfs", MS_NOSUID | MS_NODEV,
               f"size={scratch_bytes},nr_inodes=16k,mode=1777")
    closed = {a for a in closed if not any(a == d or a.startswith(d + "/") for d in scratch)}
    for top in closed:
        _mount("tmpfs", top, "tmpfs", MS_NOSUID | MS_NODEV, "size=1m,mode=0711")
    covered = scratch + sorted(closed)
    sealed = MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV
    for prefix, fd in handles:
        if any(prefix.startswith(c + "/") for c in covered):
            _make_path(prefix)
            _mount(f"/proc/self/fd/{fd}", prefix, None, MS_BIND | MS_REC)
            _mount(None, prefix, None, sealed)
        os.close(fd)
    for top in closed:
        _mount(None, top, None, sealed)
    os.mkdir(WORKDIR, 0o700)
    os.chown(WORKDIR, uid, uid)
    os.chdir(WORKDIR)
    os.environ.update(HOME=WORKDIR, TMPDIR=WORKDIR)


def _capabilities() -> dict:
    with open("/proc/self/status") as f:
        return {k: int(v, 16) for k, v in (line.split(":") for line in f)
                if k in ("CapInh", "CapPrm", "CapEff", "CapAmb")}


def _drop_to(uid: int, keep_search: bool) -> set:
    """Become `uid` with no capability. Only without a mount namespace (so no re-exposed
    prefix) is CAP_DAC_READ_SEARCH kept, so the interpreter can still import its library from a
    root-only prefix: the degraded mode, reported by the missing `nocaps` layer."""
    with open("/proc/sys/kernel/cap_last_cap") as f:
        last = int(f.read())
    for cap in range(last + 1):  # the bounding set: nothing can be regained through exec either
        if not (keep_search and cap == CAP_DAC_READ_SEARCH):
            _ok(_libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0), "drop bounding capability")
    _libc.prctl(PR_SET_KEEPCAPS, int(keep_search), 0, 0, 0)
    os.setgroups([])
    os.setgid(uid)
    os.setuid(uid)  # without keepcaps, leaving uid 0 clears every capability
    keep = 1 << CAP_DAC_READ_SEARCH if keep_search else 0
    if keep_search:
        header = (ctypes.c_uint32 * 2)(0x20080522, 0)
        _ok(_libc.capset(header, (ctypes.c_uint32 * 6)(keep, keep, 0, 0, 0, 0)), "capset")
    caps = _capabilities()
    if caps != {"CapInh": 0, "CapPrm": keep, "CapEff": keep, "CapAmb": 0}:
        raise SystemExit(f"sandbox: capabilities left after dropping privileges: {caps}")
    return {"uid"} if keep_search else {"uid", "nocaps"}


class _SockFilter(ctypes.Structure):
    _fields_ = [("code", ctypes.c_uint16), ("jt", ctypes.c_uint8), ("jf", ctypes.c_uint8),
                ("k", ctypes.c_uint32)]


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.POINTER(_SockFilter))]


def _install_seccomp() -> bool:
    """A filesystem socket is reached by connect(), which no namespace stops: refuse creating
    AF_UNIX sockets at all (nothing in the sandbox has a legitimate use for one)."""
    if os.uname().machine not in _SECCOMP_ARCH:
        return False
    arch, nr_socket = _SECCOMP_ARCH[os.uname().machine]
    ld, jeq, jge, ret = 0x20, 0x15, 0x35, 0x06
    allow, deny = 0x7FFF0000, 0x00050000 | _EACCES
    program = [  # (code, k, jump-if-true, jump-if-false) as absolute targets; 8 allow, 9 deny
        (ld, 4, None, None),                      # 0: seccomp_data.arch
        (jeq, arch, 2, 9),                        # 1: another ABI: deny
        (ld, 0, None, None),                      # 2: seccomp_data.nr
        (jge, 0x40000000, 9, 4),                  # 3: the x32 ABI: deny
        (jeq, _NR_IO_URING_SETUP, 9, 5),          # 4: io_uring would bypass the filter
        (jeq, nr_socket, 6, 8),                   # 5: socket() ...
        (ld, 16, None, None),                     # 6: ... its family, args[0] (low word)
        (jeq, _AF_UNIX, 9, 8),                    # 7: AF_UNIX: deny
        (ret, allow, None, None),                 # 8
        (ret, deny, None, None),                  # 9
    ]
    insns = (_SockFilter * len(program))(*[
        _SockFilter(code, 0 if t is None else t - i - 1, 0 if f is None else f - i - 1, k)
        for i, (code, k, t, f) in enumerate(program)])
    fprog = _SockFprog(len(program), insns)
    return _libc.prctl(PR_SET_SECCOMP, 2, ctypes.byref(fprog), 0, 0) == 0


def confine(cfg: dict) -> set:
    """Confine this process as the module docstring says; the layers that took effect."""
    _set_limits(cfg)
    as_root = cfg["uid"] >= 0
    layers = _unshare(as_root)
    if "mounts" in layers:
        _build_mounts(cfg["scratch"], cfg["uid"])
    if as_root:
        layers |= _drop_to(cfg["uid"], keep_search="mounts" not in layers)
    if cfg["role"] == "harness":  # no same-uid process may read its memory or its pipes
        _libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)
    _ok(_libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "no_new_privs")
    if _install_seccomp():
        layers.add("seccomp")
    return layers


def _play(cfg: dict, source: str, status: int) -> None:
    wire = sys.modules["sandbox_wire"]
    namespace = {"__name__": "__main__"}
    if cfg["role"] == "candidate":
        os.close(status)  # nothing the candidate runs can write a status
        exec(compile(source, "solution.py", "exec"), namespace)
        sys.stdout.flush()
        wire.serve(namespace, cfg["entry"], cfg["request"], cfg["reply"])
    elif cfg["role"] == "harness":
        exec(compile(source, "tests.py", "exec"), namespace)
        broken: list = []
        candidate = wire.proxy(cfg["entry"], cfg["request"], cfg["reply"], cfg["reply_cap"],
                               broken)
        namespace[cfg["entry"]] = candidate
        namespace["check"](candidate)
        if not broken:
            os.write(status, b"passed\n")
    else:
        exec(compile(source, "program.py", "exec"), namespace)
        sys.stdout.flush()
        os.write(status, b"done\n")


def main() -> None:
    cfg = {k: v if k in ("role", "entry") else int(v)
           for k, v in (arg.split("=", 1) for arg in sys.argv[1:])}
    del sys.argv[1:]
    status = cfg["status"]
    os.write(status, f"layers {','.join(sorted(confine(cfg)))}\n".encode())
    source = sys.stdin.buffer.read().decode("utf-8", "surrogatepass")  # what the boot left
    sys.stdin.close()
    try:
        _play(cfg, source, status)
    finally:  # stdout and stderr share a pipe: what was printed goes before the traceback
        sys.stdout.flush()


if __name__ == "__main__":
    main()
