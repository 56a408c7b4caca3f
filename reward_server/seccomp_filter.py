"""The code sandbox's seccomp filter: a classic BPF program for `bwrap --seccomp FD`.

It narrows the kernel surface a sandboxed program can reach, on top of the namespaces:
- refused with EPERM: `ptrace`, `mount`, `umount2`, `pivot_root`, `unshare`, `setns`,
  the key-ring calls (`keyctl`, `add_key`, `request_key`), `bpf`, `userfaultfd`,
  `perf_event_open`, `io_uring_*` and `open_by_handle_at`: calls no test program needs
  and a common way into kernel bugs;
- `clone` with any namespace flag (no nested user namespace, even where bwrap cannot
  forbid them itself); `clone3`, whose flags a filter cannot read, answers ENOSYS so
  that the C library falls back to `clone`;
- `socket` for any family but AF_UNIX (the network namespace has nothing to reach, and
  the other families are kernel surface);
- the x32 ABI and any architecture but the native one (a 32-bit `int 0x80` entry would
  otherwise have other system-call numbers).
Everything else is allowed: threads, fork, subprocesses, pipes, AF_UNIX sockets and
`multiprocessing` keep working. Built for x86_64 and aarch64; elsewhere `build()` gives
None and the sandbox runs without a filter (its `status()` says so).

Constants are the kernel's: `struct seccomp_data` offsets (nr at 0, arch at 4, args
from 16, little-endian), AUDIT_ARCH_* and the system-call tables of both architectures.
"""

from __future__ import annotations

import errno
import platform
import struct
from functools import cache

# Classic BPF opcodes (linux/filter.h): load word absolute, jumps against a constant,
# return a constant.
_LD_ABS_W = 0x20
_JEQ = 0x15
_JGE = 0x35
_JSET = 0x45
_RET = 0x06
_ALLOW = 0x7FFF0000  # SECCOMP_RET_ALLOW
_ERRNO = 0x00050000  # SECCOMP_RET_ERRNO | errno

_NR, _ARCH, _ARG0 = 0, 4, 16
_X32_BIT = 0x40000000
# CLONE_NEWNS, NEWCGROUP, NEWUTS, NEWIPC, NEWUSER, NEWPID, NEWNET
_CLONE_NAMESPACES = 0x00020000 | 0x02000000 | 0x04000000 | 0x08000000 | 0x10000000 | (
    0x20000000 | 0x40000000
)
_AF_UNIX = 1

# machine: (column in the tables below, AUDIT_ARCH_*)
_ARCHES = {"x86_64": (0, 0xC000003E), "aarch64": (1, 0xC00000B7)}
# name: (x86_64 number, aarch64 number)
DENIED = {
    "ptrace": (101, 117),
    "mount": (165, 40),
    "umount2": (166, 39),
    "pivot_root": (155, 41),
    "unshare": (272, 97),
    "setns": (308, 268),
    "keyctl": (250, 219),
    "add_key": (248, 217),
    "request_key": (249, 218),
    "bpf": (321, 280),
    "userfaultfd": (323, 282),
    "perf_event_open": (298, 241),
    "open_by_handle_at": (304, 265),
    "io_uring_setup": (425, 425),
    "io_uring_enter": (426, 426),
    "io_uring_register": (427, 427),
}
_CLONE = (56, 220)
_CLONE3 = (435, 435)
_SOCKET = (41, 198)


def _op(code: int, k: int, jump_true: int = 0, jump_false: int = 0) -> bytes:
    """One `struct sock_filter` (u16 code, u8 jt, u8 jf, u32 k)."""
    return struct.pack("<HBBI", code, jump_true, jump_false, k)


@cache
def build(machine: str | None = None) -> bytes | None:
    """The filter for this machine's architecture (or `machine`), or None if unsupported."""
    machine = machine or platform.machine()
    if machine not in _ARCHES:
        return None
    column, audit_arch = _ARCHES[machine]
    allow = _op(_RET, _ALLOW)
    deny = _op(_RET, _ERRNO | errno.EPERM)
    # Jumps are relative and forward: (0, 1) means "equal: the next op, else skip one".
    program = [_op(_LD_ABS_W, _ARCH), _op(_JEQ, audit_arch, 1, 0), deny, _op(_LD_ABS_W, _NR)]
    if machine == "x86_64":
        program += [_op(_JGE, _X32_BIT, 0, 1), deny]
    for numbers in DENIED.values():
        program += [_op(_JEQ, numbers[column], 0, 1), deny]
    program += [_op(_JEQ, _CLONE3[column], 0, 1), _op(_RET, _ERRNO | errno.ENOSYS)]
    program += [_op(_JEQ, _CLONE[column], 0, 4), _op(_LD_ABS_W, _ARG0),
                _op(_JSET, _CLONE_NAMESPACES, 0, 1), deny, allow]
    program += [_op(_JEQ, _SOCKET[column], 0, 4), _op(_LD_ABS_W, _ARG0),
                _op(_JEQ, _AF_UNIX, 0, 1), allow, deny]
    program.append(allow)
    return b"".join(program)
