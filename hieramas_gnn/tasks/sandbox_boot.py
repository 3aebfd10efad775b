"""Bootstrap of a sandboxed program: `python -I -S -c <this file> '<config json>'` in the box dir.

In order, before any untrusted code runs:
1. when `cfg["readonly"]` (the parent started us under `unshare` in fresh mount/pid/net/ipc
   namespaces): bind the box onto itself, remount every other mount read-only, then drop every
   capability (bounding set included) and set no_new_privs, so nothing can remount it writable;
2. rlimits (memory, CPU, file size, open files, no core, processes);
3. `os.mkfifo` / `os.mknod` (and their `posix` twins) removed, `sqlite3`/`ctypes`/... made
   unimportable, and a PEP 578 audit hook installed that confines file access to the box.
Then `main.py` runs as `__main__`. Read as text by `sandbox.py`; importing it does nothing.
"""

import json
import os
import resource
import sys


def _limit(which, value):
    soft, hard = resource.getrlimit(which)
    value = value if hard == resource.RLIM_INFINITY else min(value, hard)
    resource.setrlimit(which, (value, value))


def _set_limits(cfg):
    _limit(resource.RLIMIT_AS, cfg["memory_bytes"])
    _limit(resource.RLIMIT_CPU, cfg["cpu_s"])
    _limit(resource.RLIMIT_FSIZE, cfg["fsize_bytes"])
    _limit(resource.RLIMIT_NOFILE, cfg["nofile"])
    _limit(resource.RLIMIT_CORE, 0)
    _limit(resource.RLIMIT_NPROC, cfg["nproc"])


_MS = {"ro": 1, "nosuid": 2, "nodev": 4, "noexec": 8, "noatime": 1024, "nodiratime": 2048, "relatime": 1 << 21}
_MS_REMOUNT, _MS_BIND = 32, 4096


def _read_only_view(box):
    """Everything but `box` read-only, then drop all capabilities (needs a private mount namespace)."""
    import ctypes  # noqa: PLC0415 - trusted set-up; removed from sys.modules before the program runs

    libc = ctypes.CDLL(None, use_errno=True)

    def mount(src, target, flags):
        if libc.mount(src.encode(), target.encode(), None, flags, None) != 0:
            raise OSError(ctypes.get_errno(), f"sandbox: mount {target} failed")

    mount(box, box, _MS_BIND)
    with open("/proc/self/mountinfo", encoding="utf-8") as fh:
        points = [(f[4].replace("\\040", " "), f[5]) for f in (ln.split() for ln in fh)]
    for point, opts in points:
        flags = _MS_REMOUNT | _MS_BIND | sum(_MS.get(o, 0) for o in set(opts.split(",")))
        flags = flags & ~_MS["ro"] if point == box else flags | _MS["ro"]
        mount("none", point, flags)
    os.chdir(box)  # the cwd still named the box under the bind mount, now read-only
    if libc.prctl(38, 1, 0, 0, 0) != 0:  # PR_SET_NO_NEW_PRIVS
        raise OSError(ctypes.get_errno(), "sandbox: no_new_privs failed")
    for cap in range(64):
        libc.prctl(24, cap, 0, 0, 0)  # PR_CAPBSET_DROP (EINVAL past the last capability)
    header = (ctypes.c_uint32 * 2)(0x20080522, 0)  # _LINUX_CAPABILITY_VERSION_3, this process
    data = (ctypes.c_uint32 * 6)()  # effective, permitted, inheritable x 2 words, all zero
    if libc.capset(header, data) != 0:
        raise OSError(ctypes.get_errno(), "sandbox: dropping capabilities failed")
    for name in [m for m in sys.modules if m == "ctypes" or m.startswith(("ctypes.", "_ctypes"))]:
        del sys.modules[name]


BLOCKED = {
    "socket.__new__", "socket.connect", "socket.bind", "socket.getaddrinfo", "socket.gethostbyname",
    "socket.gethostbyaddr", "socket.sendto", "subprocess.Popen", "os.system", "os.exec", "os.posix_spawn",
    "os.spawn", "os.fork", "os.forkpty", "os.startfile", "pty.spawn", "ctypes.dlopen", "ctypes.dlsym",
    "ctypes.cdata", "ctypes.call_function", "ctypes.addressof", "urllib.Request", "http.client.connect",
    "ftplib.connect", "smtplib.connect", "imaplib.open", "poplib.connect", "nntplib.connect",
    "telnetlib.Telnet.open", "webbrowser.open", "os.chroot", "sys.setprofile", "sys.settrace", "mmap.__new__",
    "sqlite3.connect", "sqlite3.connect/handle", "sqlite3.enable_load_extension", "sqlite3.load_extension",
    "syslog.openlog", "syslog.syslog", "gc.get_objects", "gc.get_referrers", "gc.get_referents",
    "sys._current_frames", "cpython.run_command", "cpython.run_file", "cpython.run_module",
    "cpython.run_startup", "os.add_dll_directory",
}
# Modules whose C code creates files or processes, or runs code without this hook (subinterpreters).
DENIED_MODULES = {
    "sqlite3", "_sqlite3", "ctypes", "_ctypes", "mmap", "_posixsubprocess", "posix", "nt", "_socket", "_ssl",
    "_posixshmem", "_multiprocessing", "_dbm", "_gdbm", "dbm", "syslog", "_xxsubinterpreters",
    "_xxinterpchannels", "_testcapi", "_testinternalcapi", "_testmultiphase", "_testbuffer",
    "_testimportmultiple", "_testclinic", "_ctypes_test", "_xxtestfuzz", "xxsubtype", "_tkinter",
}
REMOVED = ("mkfifo", "mknod", "memfd_create", "eventfd", "pidfd_open", "setns", "unshare")
PATH_EVENTS = {  # event -> argument positions that are paths written or changed
    "os.remove": (0,), "os.rmdir": (0,), "os.mkdir": (0,), "os.rename": (0, 1), "os.link": (0, 1),
    "os.symlink": (0, 1), "os.truncate": (0,), "os.chmod": (0,), "os.chown": (0,), "os.utime": (0,),
    "os.setxattr": (0,), "os.removexattr": (0,), "shutil.rmtree": (0,), "shutil.chown": (0,),
    "os.listdir": (0,), "os.scandir": (0,), "glob.glob": (0,), "os.chdir": (0,), "os.listxattr": (0,),
    "os.getxattr": (0,), "shutil.copyfile": (0, 1), "shutil.copymode": (0, 1), "shutil.copystat": (0, 1),
    "shutil.move": (0, 1), "shutil.make_archive": (0, 2),
}
_READ_EVENTS = ("os.listdir", "os.scandir", "glob.glob", "os.chdir", "os.listxattr", "os.getxattr")
_W = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND


def _strip_dangerous_functions():
    """Functions that create files (or escape) without an audit event; re-import of posix is denied."""
    import _imp  # noqa: PLC0415
    posix = sys.modules.get("posix")
    for mod in (os, posix):
        for name in REMOVED:
            if mod is not None and hasattr(mod, name):
                delattr(mod, name)
    for name in ("create_builtin", "create_dynamic", "exec_builtin", "exec_dynamic"):
        original = getattr(_imp, name)
        setattr(_imp, name, _guarded(original))


def _guarded(original):
    def guarded(spec_or_mod, *rest):
        sys.audit("import", getattr(spec_or_mod, "name", getattr(spec_or_mod, "__name__", "")), None, None, None, None)
        return original(spec_or_mod, *rest)
    return guarded


def _make_hook(box, read_roots):
    realpath, join, sep, isdir = os.path.realpath, os.path.join, os.sep, os.path.isdir
    own_pid = os.getpid()

    def inside(path, roots, dir_fd=None):
        if isinstance(path, int):
            return True  # an already open descriptor: it passed the check when it was opened
        path = os.fsdecode(path)
        if dir_fd is not None and not os.path.isabs(path):
            path = join(os.readlink(f"/proc/self/fd/{dir_fd}"), path)
        p = realpath(path)
        return any(p == r or p.startswith(r + sep) for r in roots)

    def hook(event, args):
        if event == "open":
            path, mode, flags = args
            if path is None or isinstance(path, int):
                return
            write = bool((mode and any(c in mode for c in "wax+")) or (flags and flags & _W))
            if not inside(path, (box,) if write else read_roots):
                raise PermissionError(f"sandbox: {'write' if write else 'read'} outside the sandbox: {path}")
            if not inside(path, (box,)) and isdir(path):  # a directory fd would let dir_fd= calls escape
                raise PermissionError(f"sandbox: opening a directory outside the sandbox: {path}")
        elif event == "import":
            if args[0] in DENIED_MODULES or str(args[0]).split(".")[0] in DENIED_MODULES:
                raise PermissionError(f"sandbox: import of {args[0]} is not allowed")
        elif event in BLOCKED:
            raise PermissionError(f"sandbox: {event} is not allowed")
        elif event in PATH_EVENTS:
            dir_fd = args[-1] if event in ("os.remove", "os.rmdir", "os.mkdir", "shutil.rmtree") else None
            roots = read_roots if event in _READ_EVENTS else (box,)
            for i in PATH_EVENTS[event]:
                if i < len(args) and args[i] is not None and not inside(args[i], roots, dir_fd if isinstance(dir_fd, int) and dir_fd >= 0 else None):
                    raise PermissionError(f"sandbox: {event} outside the sandbox: {args[i]}")
        elif event in ("os.kill", "os.killpg", "signal.pthread_kill"):
            if args[0] not in (0, own_pid):
                raise PermissionError(f"sandbox: {event} of another process is not allowed")

    return hook


def main():
    cfg = json.loads(sys.argv[1])
    box = os.path.realpath(os.getcwd())
    if cfg.get("readonly"):
        _read_only_view(box)
    _set_limits(cfg)
    stdlib = os.path.realpath(os.path.dirname(os.__file__))
    read_roots = (box, stdlib, "/dev/null", "/dev/urandom")
    with open("main.py", encoding="utf-8") as fh:
        source = fh.read()
    code = compile(source, "main.py", "exec")
    sys.argv = ["main.py"]
    _strip_dangerous_functions()
    sys.addaudithook(_make_hook(box, read_roots))
    exec(code, {"__name__": "__main__", "__file__": "main.py", "__builtins__": __builtins__})


if __name__ == "__main__":
    main()
