#!/usr/bin/python3
"""Run the sandbox's isolation steps under a Docker seccomp profile, without Docker.

    scripts/seccomp-emulate.py PROFILE_JSON                 # one line per step; exit 0 if all pass
    scripts/seccomp-emulate.py PROFILE_JSON --without NAME  # the same with NAME no longer allowed
    scripts/seccomp-emulate.py PROFILE_JSON --masked-proc   # /proc masked as a container's is

There is no container engine here, so this emulates the one part of a container that decides
whether the sandbox can isolate anything: the seccomp filter. It turns a Docker-format
profile into a libseccomp filter the way the engine does for a container with no
capabilities (`cap_drop: ALL`), loads it, and then performs the same steps the sandbox's
launcher performs, in order:

- clone into new user/pid/mount/net/ipc/uts namespaces;
- write the uid and gid maps;
- make mounts private and set the hostname;
- mount a tmpfs root and a fresh /proc;
- pivot_root into the tmpfs and detach the old root;
- check Landlock;
- stack a seccomp filter of its own.

Run as root, it first drops to uid/gid 65534 with no capabilities, as the container's user
would be. With --masked-proc it also masks /proc the way container runtimes do (files
over-mounted with /dev/null, /proc/sys bound read-only), which is what systempaths=unconfined
and procMount: Unmasked turn off. AppArmor is not emulated (see deploy/README.md). CI runs it with deploy/seccomp/sandbox.json (every step must pass) and with
Docker's default profile (the clone must be refused), so the profile is shown to be both
necessary and sufficient for these steps, and with each added syscall taken out again
(`--without`; some step must then be refused), so each one is shown to be needed.

Needs python3-seccomp (Debian), the libseccomp bindings.
"""

import ctypes
import json
import os
import platform
import sys
import tempfile

import seccomp

libc = ctypes.CDLL(None, use_errno=True)

CLONE_NEWNS, CLONE_NEWUTS, CLONE_NEWIPC = 0x00020000, 0x04000000, 0x08000000
CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET = 0x10000000, 0x20000000, 0x40000000
SIGCHLD = 17
MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REC, MS_PRIVATE = 2, 4, 8, 0x4000, 0x40000
MNT_DETACH = 2
SYS = {"x86_64": {"clone": 56, "pivot_root": 155, "landlock_create_ruleset": 444},
       "aarch64": {"clone": 220, "pivot_root": 41, "landlock_create_ruleset": 444}}
GO_ARCH = {"x86_64": "amd64", "aarch64": "arm64"}
SUBARCHES = {"SCMP_ARCH_X86": seccomp.Arch.X86, "SCMP_ARCH_X32": seccomp.Arch.X32,
             "SCMP_ARCH_ARM": seccomp.Arch.ARM}
OPS = {"SCMP_CMP_NE": seccomp.NE, "SCMP_CMP_LT": seccomp.LT, "SCMP_CMP_LE": seccomp.LE,
       "SCMP_CMP_EQ": seccomp.EQ, "SCMP_CMP_GE": seccomp.GE, "SCMP_CMP_GT": seccomp.GT,
       "SCMP_CMP_MASKED_EQ": seccomp.MASKED_EQ}


def kernel_at_least(version):
    have = [int(x) for x in platform.release().split("-")[0].split(".")[:2]]
    want = [int(x) for x in version.split(".")[:2]]
    return have >= want


def action(name, errno_ret, default_errno):
    if name == "SCMP_ACT_ALLOW":
        return seccomp.ALLOW
    if name == "SCMP_ACT_ERRNO":
        return seccomp.ERRNO(errno_ret if errno_ret is not None else default_errno)
    if name in ("SCMP_ACT_KILL", "SCMP_ACT_KILL_THREAD"):
        return seccomp.KILL
    if name == "SCMP_ACT_KILL_PROCESS":
        return seccomp.KILL_PROCESS
    if name == "SCMP_ACT_LOG":
        return seccomp.LOG
    raise SystemExit(f"unsupported action {name}")


def build_filter(profile):
    """The filter a container with no capabilities gets from this profile (moby's rules:
    `includes.caps` needs a capability we lack, `excludes.caps` then does not exclude)."""
    default_errno = profile.get("defaultErrnoRet", 1)
    filt = seccomp.SyscallFilter(defaction=action(profile["defaultAction"], None, default_errno))
    machine = platform.machine()
    native = {"x86_64": "SCMP_ARCH_X86_64", "aarch64": "SCMP_ARCH_AARCH64"}[machine]
    for entry in profile.get("archMap", []):
        if entry["architecture"] == native:
            for sub in entry.get("subArchitectures", []):
                if sub in SUBARCHES:
                    filt.add_arch(SUBARCHES[sub])
    for rule in profile["syscalls"]:
        inc, exc = rule.get("includes", {}), rule.get("excludes", {})
        if inc.get("caps"):
            continue
        if inc.get("arches") and GO_ARCH[machine] not in inc["arches"]:
            continue
        if GO_ARCH[machine] in exc.get("arches", []):
            continue
        if inc.get("minKernel") and not kernel_at_least(inc["minKernel"]):
            continue
        act = action(rule["action"], rule.get("errnoRet"), default_errno)
        args = [seccomp.Arg(a["index"], OPS[a["op"]], a["value"], a.get("valueTwo", 0))
                if a["op"] == "SCMP_CMP_MASKED_EQ"
                else seccomp.Arg(a["index"], OPS[a["op"]], a["value"])
                for a in rule.get("args") or []]
        for name in rule["names"]:
            try:
                filt.add_rule(act, name, *args)
            except (ValueError, RuntimeError, OSError):
                pass  # a syscall this libseccomp or arch does not know: the engine skips it too
    return filt


def check(step, ok):
    if not ok:
        raise StepFailed(step, ctypes.get_errno())


class StepFailed(Exception):
    def __init__(self, step, errno):
        super().__init__(step)
        self.step, self.errno = step, errno


def child(report_fd, root, uid, gid):
    """Pid 1 of the new namespaces: the launcher's steps, each reported as it passes."""
    nr = SYS[platform.machine()]
    done = []
    try:
        with open("/proc/self/setgroups", "w") as f:
            f.write("deny")
        with open("/proc/self/uid_map", "w") as f:
            f.write(f"1000 {uid} 1")
        with open("/proc/self/gid_map", "w") as f:
            f.write(f"1000 {gid} 1")
        done.append("uid/gid map")
        check("private mounts", libc.mount(None, b"/", None, MS_REC | MS_PRIVATE, None) == 0)
        done.append("private mounts")
        check("sethostname", libc.sethostname(b"sandbox", 7) == 0)
        done.append("sethostname")
        check("mount tmpfs root", libc.mount(b"tmpfs", root.encode(), b"tmpfs", MS_NOSUID | MS_NODEV, b"size=1m") == 0)
        done.append("mount tmpfs root")
        os.mkdir(f"{root}/proc")
        os.mkdir(f"{root}/old")
        check("mount fresh /proc", libc.mount(b"proc", f"{root}/proc".encode(), b"proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, None) == 0)
        done.append("mount fresh /proc")
        check("pivot_root", libc.syscall(nr["pivot_root"], root.encode(), f"{root}/old".encode()) == 0)
        os.chdir("/")
        check("umount old root", libc.umount2(b"/old", MNT_DETACH) == 0)
        done.append("pivot_root")
        abi = libc.syscall(nr["landlock_create_ruleset"], None, 0, 1)
        check("landlock", abi >= 1)
        done.append(f"landlock (ABI {abi})")
        seccomp.SyscallFilter(defaction=seccomp.ALLOW).load()
        done.append("stack a seccomp filter")
        os.write(report_fd, json.dumps({"passed": done}).encode())
        os._exit(0)
    except StepFailed as failed:
        os.write(report_fd, json.dumps({"passed": done, "failed": failed.step, "errno": failed.errno}).encode())
    except Exception as error:  # report anything else as the next step's failure
        os.write(report_fd, json.dumps({"passed": done, "failed": repr(error), "errno": 0}).encode())
    os._exit(1)


# Paths runtimes mask (runc's defaults, as Docker and containerd set them): files get /dev/null
# over them, directories are bound read-only.
MASKED_FILES = ["/proc/kcore", "/proc/keys", "/proc/timer_list", "/proc/latency_stats", "/proc/sched_debug"]
READONLY_DIRS = ["/proc/sys", "/proc/bus", "/proc/fs", "/proc/irq"]
MS_RDONLY, MS_REMOUNT, MS_BIND = 1, 32, 4096


def mask_proc():
    """In a private mount namespace of our own (needs root), mask /proc like a container."""
    if libc.unshare(CLONE_NEWNS) != 0 or libc.mount(None, b"/", None, MS_REC | MS_PRIVATE, None) != 0:
        raise SystemExit(f"--masked-proc needs root: {os.strerror(ctypes.get_errno())}")
    masked = []
    for path in MASKED_FILES:
        if os.path.exists(path) and libc.mount(b"/dev/null", path.encode(), None, MS_BIND, None) == 0:
            masked.append(path)
    for path in READONLY_DIRS:
        if os.path.isdir(path) and libc.mount(path.encode(), path.encode(), None, MS_BIND | MS_REC, None) == 0:
            libc.mount(None, path.encode(), None, MS_REMOUNT | MS_BIND | MS_RDONLY, None)
            masked.append(path + " (ro)")
    print(f"  masked  {', '.join(masked)}")


def main(profile_path, without=None, masked_proc=False):
    with open(profile_path) as f:
        profile = json.load(f)
    if masked_proc:
        mask_proc()
    if without:
        # Drop NAME from every unconditional allow rule: it falls back to the default action.
        for rule in profile["syscalls"]:
            if rule["action"] == "SCMP_ACT_ALLOW" and not rule.get("args") and not rule.get("includes") and not rule.get("excludes"):
                rule["names"] = [n for n in rule["names"] if n != without]
    if os.geteuid() == 0:
        # The container's user: uid/gid 65534, no capabilities.
        os.setgroups([])
        os.setgid(65534)
        os.setuid(65534)
        # Changing uid made the process non-dumpable, which makes its /proc files root's; a
        # container's process starts as its uid and stays dumpable.
        libc.prctl(4, 1, 0, 0, 0)  # PR_SET_DUMPABLE
    uid, gid = os.getuid(), os.getgid()
    build_filter(profile).load()  # also sets no_new_privs
    root = tempfile.mkdtemp(prefix="seccomp-emulate-")
    read_fd, write_fd = os.pipe()
    flags = CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS | SIGCHLD
    pid = libc.syscall(SYS[platform.machine()]["clone"], flags, None, None, None, None)
    if pid == 0:
        os.close(read_fd)
        child(write_fd, root, uid, gid)
    errno = ctypes.get_errno()
    os.close(write_fd)
    if pid < 0:
        result = {"passed": [], "failed": "clone with CLONE_NEWUSER|NEWPID|NEWNS|NEWNET|NEWIPC|NEWUTS", "errno": errno}
    else:
        data = b""
        while chunk := os.read(read_fd, 4096):
            data += chunk
        os.waitpid(pid, 0)
        result = json.loads(data or b'{"passed": [], "failed": "child vanished", "errno": 0}')
        result["passed"].insert(0, "clone into new user/pid/mount/net/ipc/uts namespaces")
    os.rmdir(root)
    for step in result["passed"]:
        print(f"  ok      {step}")
    if "failed" in result:
        print(f"  REFUSED {result['failed']}: {os.strerror(result['errno']) if result['errno'] else ''}")
        return 1
    return 0


if __name__ == "__main__":
    if len(sys.argv) == 2:
        sys.exit(main(sys.argv[1]))
    if len(sys.argv) == 4 and sys.argv[2] == "--without":
        sys.exit(main(sys.argv[1], sys.argv[3]))
    if len(sys.argv) == 3 and sys.argv[2] == "--masked-proc":
        sys.exit(main(sys.argv[1], masked_proc=True))
    print(__doc__, file=sys.stderr)
    sys.exit(2)
