"""What runs inside a sandboxed process: confine it, then play one role.

The evaluator starts `python -I -B -S -c <boot>` with `key=value` arguments (limits, fds, role,
the uid to become or -1); stdin brings this module and the wire module, compiled, then the source
to run. Confinement happens here, before any of that source runs, in this order (each step needs
the privileges the next one gives up):
1. resource limits (CPU time, address space, file size, open files, processes, no core dumps);
2. namespaces, the first combination the kernel (and any seccomp or LSM policy above us) allows:
   as root, mount + network + IPC, else as many of them as are allowed; without a uid of its own
   (uid -1), a user namespace too (with network + IPC where allowed);
3. with a mount namespace (see `_build_mounts`): every inherited mount read-only, private tmpfs
   scratch over /tmp, /var/tmp and /dev/shm, and the interpreter's prefix re-exposed read-only
   through a traversable tmpfs if it sits under a root-only directory such as /root. If the very
   first mount call is refused, there is no `mounts` layer; a later refusal is an error;
4. no capability left: the bounding set emptied where CAP_SETPCAP allows it (`nocaps`), the uid
   changed (as root, uid >= 0), then every set cleared. Without a mount namespace, a prefix under
   a root-only directory stays importable through a directory handle opened before the change
   (`_reroute`), never through a capability;
5. no_new_privs, and a seccomp filter: socket(AF_UNIX, ...), io_uring_setup, the keyring calls,
   open_by_handle_at and every system call of another ABI (32-bit int 0x80, x32) fail with EACCES.
The layers that took effect go to the status pipe before the source is read; if confinement fails
(a later mount refused, a uid change or capset refused, a capability left), `error <cause>` goes
there instead and the process exits: the evaluator raises it, since no program could be judged.

Roles: `plain` runs the source and then writes `done` (the program's own word, see sandbox.py);
`candidate` runs the model's code with its status pipe closed and answers calls over the wire;
`harness` runs the benchmark's tests against a proxy and writes `passed` once `check` returns.

Standard library only, no package imports (`sftmix_ray` is not importable in the sandbox), and
nothing slow to import, since every program pays for it twice: the launcher registers the wire
module as `sandbox_wire` before running this code.
"""

import ctypes
import errno
import os
import resource
import stat
import sys

CLONE_NEWNS, CLONE_NEWIPC, CLONE_NEWUSER, CLONE_NEWNET = 0x20000, 0x8000000, 0x10000000, 0x40000000
# Tried in order; the first the kernel and any policy above us allow wins (root without
# CAP_SYS_ADMIN, or with unshare refused by seccomp or AppArmor, gets none of the first list).
_ROOT_TRIES = ((CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWIPC, "mounts net ipc"),
               (CLONE_NEWNS | CLONE_NEWNET, "mounts net"), (CLONE_NEWNS, "mounts"),
               (CLONE_NEWNET | CLONE_NEWIPC, "net ipc"), (CLONE_NEWNET, "net"))
_USER_TRIES = ((CLONE_NEWUSER | CLONE_NEWNET | CLONE_NEWIPC, "userns net ipc"),
               (CLONE_NEWUSER | CLONE_NEWNET, "userns net"), (CLONE_NEWUSER, "userns"))
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REMOUNT = 1, 2, 4, 8, 32
MS_NOATIME, MS_NODIRATIME, MS_BIND, MS_REC, MS_PRIVATE, MS_RELATIME = (
    1 << 10, 1 << 11, 1 << 12, 1 << 14, 1 << 18, 1 << 21)
_KEPT_FLAGS = {"nosuid": MS_NOSUID, "nodev": MS_NODEV, "noexec": MS_NOEXEC,
               "noatime": MS_NOATIME, "nodiratime": MS_NODIRATIME, "relatime": MS_RELATIME}
PR_SET_DUMPABLE, PR_CAPBSET_DROP, PR_SET_SECCOMP, PR_SET_NO_NEW_PRIVS = 4, 24, 22, 38
SCRATCH = ("/tmp", "/var/tmp", "/dev/shm")
WORKDIR = "/tmp/work"  # inside the private /tmp, so the same path for every program
# Per machine: the audit arch, socket's number, then the calls refused outright: add_key,
# request_key and keyctl (a key outlives the process, in the uid's keyring or the session keyring
# it shares with the evaluator), open_by_handle_at (opens a file by handle, past path checks),
# io_uring_setup (425 everywhere since 5.1; io_uring would bypass the filter).
_SECCOMP = {"x86_64": (0xC000003E, 41, (248, 249, 250, 304, 425)),
            "aarch64": (0xC00000B7, 198, (217, 218, 219, 265, 425))}
_AF_UNIX = 1
_LD, _JEQ, _JGE, _RET = 0x20, 0x15, 0x35, 0x06

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


def _unshare(tries) -> set:
    for flags, names in tries:
        if _libc.unshare(flags) == 0:
            return set(names.split())
    return set()


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


def _prefixes() -> list[str]:
    return sorted({os.path.realpath(p) for p in (sys.base_prefix, sys.base_exec_prefix)})


def _make_path(path: str) -> None:
    """Create the missing directories down to `path`, traversable but not listable by others
    (0711), so the tmpfs laid over /root shows nothing."""
    current = ""
    for part in path.strip("/").split("/"):
        current += "/" + part
        if not os.path.isdir(current):
            os.mkdir(current)
            os.chmod(current, 0o711)


def _build_mounts(scratch_bytes: int, uid: int) -> bool:
    """The filesystem the program sees (this process is root in a fresh mount namespace); False,
    with nothing changed, where mount is refused altogether (seccomp, AppArmor)."""
    try:  # private first, or the mounts below would propagate back to the evaluator's namespace
        _mount(None, "/", None, MS_REC | MS_PRIVATE)
    except OSError:
        return False
    prefixes = _prefixes()
    # Handles taken before anything covers the prefixes: binding /proc/self/fd/N reaches a
    # directory by its handle even once its path is hidden under a tmpfs.
    handles = [(p, os.open(p, os.O_PATH | os.O_DIRECTORY)) for p in prefixes]
    closed = {a for a in (_closed_ancestor(p) for p in prefixes) if a}
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
    return True


def _closed_prefixes() -> list[tuple[str, str]]:
    """(a name of the prefix, /proc/self/fd/N) for each prefix under a root-only directory, the
    handle opened while still root."""
    routes = []
    for prefix in _prefixes():
        if _closed_ancestor(prefix):
            via = f"/proc/self/fd/{os.open(prefix, os.O_PATH | os.O_DIRECTORY)}"
            routes += [(name, via) for name in {prefix, sys.base_prefix, sys.base_exec_prefix}
                       if os.path.realpath(name) == prefix]
    return routes


def _reroute(routes: list[tuple[str, str]]) -> None:
    """Imports reach each such prefix through /proc/self/fd/N: that link leads to the directory
    by its handle, so only the prefix's own modes are checked, not the root-only ones above it.
    The library stays importable without a mount namespace and without CAP_DAC_READ_SEARCH
    (which would open every file on the machine to the program)."""
    def moved(path: str) -> str:
        for name, via in routes:
            if path == name or path.startswith(name + "/"):
                return via + path[len(name):]
        return path

    if routes:
        sys.path[:] = map(moved, sys.path)
        for module in list(sys.modules.values()):  # packages imported already (encodings, ctypes)
            if isinstance(getattr(module, "__path__", None), list):
                module.__path__[:] = map(moved, module.__path__)
        sys.path_importer_cache.clear()


def _capabilities() -> dict:
    with open("/proc/self/status") as f:
        return {k: int(v, 16) for k, v in (line.split(":") for line in f)
                if k in ("CapInh", "CapPrm", "CapEff", "CapAmb")}


def _drop_to(uid: int) -> set:
    """Become `uid` (unless -1) with no capability in any set. The bounding set is emptied where
    CAP_SETPCAP allows it (`nocaps`); where it does not (EPERM), no_new_privs, set next, still
    keeps exec from granting any."""
    with open("/proc/sys/kernel/cap_last_cap") as f:
        last = int(f.read())
    emptied = True
    for cap in range(last + 1):  # nothing can be regained through exec either
        if _libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
            err = ctypes.get_errno()
            if err != errno.EPERM:  # only a missing CAP_SETPCAP is a mode; anything else, a fault
                raise OSError(err, f"sandbox: drop bounding capability: {os.strerror(err)}")
            emptied = False
            break
    if uid >= 0:
        os.setgroups([])
        os.setgid(uid)
        os.setuid(uid)  # leaving uid 0 clears the permitted, effective and ambient sets
    header = (ctypes.c_uint32 * 2)(0x20080522, 0)  # and this the inheritable set, which it keeps
    _ok(_libc.capset(header, (ctypes.c_uint32 * 6)()), "capset")
    caps = _capabilities()
    if any(caps.values()):
        raise OSError(errno.EPERM, f"capabilities left after dropping privileges: {caps}")
    return ({"uid"} if uid >= 0 else set()) | ({"nocaps"} if emptied else set())


class _SockFilter(ctypes.Structure):
    _fields_ = [("code", ctypes.c_uint16), ("jt", ctypes.c_uint8), ("jf", ctypes.c_uint8),
                ("k", ctypes.c_uint32)]


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.POINTER(_SockFilter))]


def install_filter(checks: list, error: int) -> bool:
    """A seccomp filter: `checks` are (code, k, jump-if-true, jump-if-false), jumps as absolute
    indices or "allow" / "deny" (the call fails with `error`), followed by those two returns."""
    where = {"allow": len(checks), "deny": len(checks) + 1}
    program = [*checks, (_RET, 0x7FFF0000, None, None), (_RET, 0x00050000 | error, None, None)]
    insns = (_SockFilter * len(program))(*[
        _SockFilter(code, 0 if t is None else where.get(t, t) - i - 1,
                    0 if f is None else where.get(f, f) - i - 1, k)
        for i, (code, k, t, f) in enumerate(program)])
    fprog = _SockFprog(len(program), insns)
    return _libc.prctl(PR_SET_SECCOMP, 2, ctypes.byref(fprog), 0, 0) == 0


def _install_seccomp() -> bool:
    """A filesystem socket is reached by connect(), which no namespace stops: refuse creating
    AF_UNIX sockets at all (nothing in the sandbox has a legitimate use for one)."""
    if os.uname().machine not in _SECCOMP:
        return False
    arch, nr_socket, refused = _SECCOMP[os.uname().machine]
    checks = [(_LD, 4, None, None), (_JEQ, arch, 2, "deny"),  # seccomp_data.arch: another ABI
              (_LD, 0, None, None), (_JGE, 0x40000000, "deny", 4)]  # .nr; the x32 ABI
    for nr in refused:
        checks.append((_JEQ, nr, "deny", len(checks) + 1))
    checks.append((_JEQ, nr_socket, len(checks) + 1, "allow"))
    checks += [(_LD, 16, None, None), (_JEQ, _AF_UNIX, "deny", "allow")]  # socket's family
    return install_filter(checks, errno.EACCES)


def confine(cfg: dict) -> set:
    """Confine this process as the module docstring says; the layers that took effect."""
    _set_limits(cfg)
    uid = cfg["uid"]
    layers = _unshare(_ROOT_TRIES if os.geteuid() == 0 else ())
    if "mounts" in layers and not _build_mounts(cfg["scratch"], uid):
        layers.discard("mounts")
    if uid < 0:  # no uid of its own: a user namespace keeps it from the evaluator's /proc/<pid>/fd
        layers |= _unshare(_USER_TRIES)
    handles = _closed_prefixes() if uid >= 0 and "mounts" not in layers else []
    layers |= _drop_to(uid)
    _reroute(handles)
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
    try:
        layers = confine(cfg)
    except BaseException as exc:  # no program can be judged like this: the evaluator's error
        cause = " ".join(f"{type(exc).__name__}: {exc}".split())[:500]
        os.write(status, f"error {cause}\n".encode())
        os._exit(70)
    os.write(status, f"layers {','.join(sorted(layers))}\n".encode())
    source = sys.stdin.buffer.read().decode("utf-8", "surrogatepass")  # what the boot left
    sys.stdin.close()
    try:
        _play(cfg, source, status)
    finally:  # stdout and stderr share a pipe: what was printed goes before the traceback
        sys.stdout.flush()


if __name__ == "__main__":
    main()
