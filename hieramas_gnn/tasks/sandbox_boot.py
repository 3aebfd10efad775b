"""Bootstrap of a sandboxed program: `python -I -S -c <this file> '<limits json>'` in the box dir.

Sets rlimits, installs an audit hook (PEP 578) that confines the program, then runs `main.py`
as `__main__`. Read as text by `sandbox.py`; running it in-process is a no-op unless it is
`__main__` (importing it never touches the importing process).
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


BLOCKED = {
    "socket.__new__", "socket.connect", "socket.bind", "socket.getaddrinfo", "socket.gethostbyname",
    "socket.gethostbyaddr", "socket.sendto", "subprocess.Popen", "os.system", "os.exec", "os.posix_spawn",
    "os.spawn", "os.fork", "os.forkpty", "os.startfile", "pty.spawn", "ctypes.dlopen", "ctypes.dlsym",
    "ctypes.cdata", "ctypes.call_function", "ctypes.addressof", "urllib.Request", "http.client.connect",
    "ftplib.connect", "smtplib.connect", "imaplib.open", "poplib.connect", "nntplib.connect",
    "telnetlib.Telnet.open", "webbrowser.open", "os.chroot", "sys.setprofile", "sys.settrace", "mmap.__new__",
}
PATH_EVENTS = {  # event -> argument positions that are paths written or changed
    "os.remove": (0,), "os.rmdir": (0,), "os.mkdir": (0,), "os.rename": (0, 1), "os.link": (0, 1),
    "os.symlink": (0, 1), "os.truncate": (0,), "os.chmod": (0,), "os.chown": (0,), "os.utime": (0,),
    "os.setxattr": (0,), "os.removexattr": (0,), "shutil.rmtree": (0,), "shutil.chown": (0,),
    "os.listdir": (0,), "os.scandir": (0,), "glob.glob": (0,), "os.chdir": (0,),
}
_W = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND


def _make_hook(box, read_roots):
    realpath, join, sep = os.path.realpath, os.path.join, os.sep
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
            if path is None:
                return
            write = bool((mode and any(c in mode for c in "wax+")) or (flags and flags & _W))
            if not inside(path, (box,) if write else read_roots):
                raise PermissionError(f"sandbox: {'write' if write else 'read'} outside the sandbox: {path}")
        elif event in BLOCKED:
            raise PermissionError(f"sandbox: {event} is not allowed")
        elif event in PATH_EVENTS:
            dir_fd = args[-1] if event in ("os.remove", "os.rmdir", "os.mkdir", "shutil.rmtree") else None
            roots = read_roots if event in ("os.listdir", "os.scandir", "glob.glob", "os.chdir") else (box,)
            for i in PATH_EVENTS[event]:
                if i < len(args) and args[i] is not None and not inside(args[i], roots, dir_fd if isinstance(dir_fd, int) and dir_fd >= 0 else None):
                    raise PermissionError(f"sandbox: {event} outside the sandbox: {args[i]}")
        elif event in ("os.kill", "os.killpg", "signal.pthread_kill"):
            if args[0] not in (0, own_pid):
                raise PermissionError(f"sandbox: {event} of another process is not allowed")

    return hook


def main():
    cfg = json.loads(sys.argv[1])
    _set_limits(cfg)
    box = os.path.realpath(os.getcwd())
    stdlib = os.path.realpath(os.path.dirname(os.__file__))
    read_roots = (box, stdlib, "/dev/null", "/dev/urandom")
    with open("main.py", encoding="utf-8") as fh:
        source = fh.read()
    code = compile(source, "main.py", "exec")
    sys.argv = ["main.py"]
    sys.addaudithook(_make_hook(box, read_roots))
    exec(code, {"__name__": "__main__", "__file__": "main.py", "__builtins__": __builtins__})


if __name__ == "__main__":
    main()
