//! The seccomp filter as data: which syscalls are denied, on which argument
//! values, with which errno, for one architecture. agent-init turns it into
//! BPF (seccompiler); the golden tests here run on any machine.
//!
//! Actions are errnos only, never kill (gVisor kills the thread for any other
//! action, and a killed tool is a worse failure than an `EPERM`).

use crate::resolved::Policy;
use crate::syscalls::{self, Arch};

pub const EPERM: u32 = 1;
pub const ENOSYS: u32 = 38;

/// `unshare`/`clone` flags that create namespaces.
pub const CLONE_NEW_FLAGS: &[(&str, u64)] = &[
    ("CLONE_NEWNS", 0x0002_0000),
    ("CLONE_NEWCGROUP", 0x0200_0000),
    ("CLONE_NEWUTS", 0x0400_0000),
    ("CLONE_NEWIPC", 0x0800_0000),
    ("CLONE_NEWUSER", 0x1000_0000),
    ("CLONE_NEWPID", 0x2000_0000),
    ("CLONE_NEWNET", 0x4000_0000),
];
/// `unshare` only: in `clone` this bit is part of the exit signal.
pub const CLONE_NEWTIME: u64 = 0x80;

pub const TIOCSTI: u64 = 0x5412;
pub const TIOCLINUX: u64 = 0x541C;

/// Denied unconditionally with `EPERM`, and why.
pub const ALWAYS_DENIED: &[(&str, &str)] = &[
    (
        "io_uring_setup",
        "io_uring opens files without any libc call",
    ),
    ("io_uring_enter", "io_uring"),
    ("io_uring_register", "io_uring"),
    ("ptrace", "reads the harness's memory"),
    ("process_vm_readv", "reads the harness's memory"),
    ("process_vm_writev", "writes the harness's memory"),
    ("name_to_handle_at", "file handles bypass path checks"),
    ("open_by_handle_at", "file handles bypass path checks"),
    ("pidfd_getfd", "steals the harness's file descriptors"),
    ("kcmp", "probes other processes' file descriptors"),
    ("bpf", "kernel attack surface"),
    (
        "perf_event_open",
        "kernel attack surface, reads other processes",
    ),
    ("userfaultfd", "kernel exploit primitive"),
    ("add_key", "keyrings"),
    ("keyctl", "keyrings"),
    ("request_key", "keyrings"),
    ("mount", "mount family"),
    ("umount2", "mount family"),
    ("pivot_root", "mount family"),
    ("fsopen", "mount family"),
    ("fsconfig", "mount family"),
    ("fsmount", "mount family"),
    ("fspick", "mount family"),
    ("move_mount", "mount family"),
    ("open_tree", "mount family"),
    ("mount_setattr", "mount family"),
    ("setns", "joins namespaces"),
    ("kexec_load", "replaces the kernel"),
    ("kexec_file_load", "replaces the kernel"),
    ("init_module", "loads kernel modules"),
    ("finit_module", "loads kernel modules"),
    ("delete_module", "unloads kernel modules"),
];

/// One argument test; a rule matches when all its tests do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArgTest {
    /// `(arg & mask) == value`, on the full 64 bits.
    MaskedEq { arg: u8, mask: u64, value: u64 },
    /// The low 32 bits of `arg` equal `value` (ioctl request numbers).
    Eq32 { arg: u8, value: u32 },
}

/// One syscall the filter denies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denial {
    pub name: &'static str,
    pub nr: i64,
    pub errno: u32,
    /// Empty: always. Otherwise: when any one of these tests matches.
    pub when: Vec<ArgTest>,
    pub why: &'static str,
}

/// The x32 syscall bit (x86_64): numbers with it set are the x32 table.
pub const X32_SYSCALL_BIT: u32 = 0x4000_0000;

/// What the filter answers for syscalls the deny-list cannot name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArchGuard {
    /// A syscall of another architecture (on x86_64: an i386 `int 0x80`)
    /// gets this errno in every filter. seccompiler's arch check answers
    /// `KILL_PROCESS`; agent-init patches that instruction to this errno
    /// (kill is not an errno: gVisor and the design ask for errnos only).
    pub foreign_arch_errno: u32,
    /// x86_64: a number with [`X32_SYSCALL_BIT`] set gets this errno, from
    /// a filter of its own (seccompiler does not check them, and x32 is a
    /// second syscall table that would bypass the deny-list where the
    /// kernel enables it). `None` where there is no such table.
    pub x32_errno: Option<u32>,
}

/// The whole filter for one architecture.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeccompPlan {
    pub arch: Arch,
    pub denials: Vec<Denial>,
    pub guard: ArchGuard,
}

impl SeccompPlan {
    /// The denials with one errno, for filters that take one action each.
    pub fn with_errno(&self, errno: u32) -> impl Iterator<Item = &Denial> {
        self.denials.iter().filter(move |d| d.errno == errno)
    }
}

/// Compute the filter for `arch`. Syscalls that do not exist on `arch` are
/// left out (the filter cannot name them).
pub fn plan(policy: &Policy, arch: Arch) -> SeccompPlan {
    let mut denials = Vec::new();
    let mut push = |name: &'static str, errno: u32, when: Vec<ArgTest>, why: &'static str| {
        if let Some(nr) = syscalls::number(name, arch)
            && !denials.iter().any(|d: &Denial| d.nr == nr)
        {
            denials.push(Denial {
                name,
                nr,
                errno,
                when,
                why,
            });
        }
    };
    // clone3 passes its flags in memory, where BPF cannot look: answer ENOSYS
    // so libc falls back to clone(2), whose flags are in a register.
    push(
        "clone3",
        ENOSYS,
        vec![],
        "flags in memory; libc falls back to clone",
    );
    for (name, why) in ALWAYS_DENIED {
        push(name, EPERM, vec![], why);
    }
    let ns = |extra: &[u64]| -> Vec<ArgTest> {
        CLONE_NEW_FLAGS
            .iter()
            .map(|&(_, f)| f)
            .chain(extra.iter().copied())
            .map(|f| ArgTest::MaskedEq {
                arg: 0,
                mask: f,
                value: f,
            })
            .collect()
    };
    push("unshare", EPERM, ns(&[CLONE_NEWTIME]), "creates namespaces");
    push("clone", EPERM, ns(&[]), "creates namespaces");
    push(
        "ioctl",
        EPERM,
        vec![
            ArgTest::Eq32 {
                arg: 1,
                value: TIOCSTI as u32,
            },
            ArgTest::Eq32 {
                arg: 1,
                value: TIOCLINUX as u32,
            },
        ],
        "TIOCSTI/TIOCLINUX type into another process's terminal",
    );
    for name in &policy.seccomp.extra_deny {
        if let Some(&(n, _, _)) = syscalls::TABLE.iter().find(|(n, _, _)| n == name) {
            push(n, EPERM, vec![], "denied by the policy's seccomp.deny");
        }
    }
    let guard = ArchGuard {
        foreign_arch_errno: EPERM,
        x32_errno: (arch == Arch::X86_64).then_some(EPERM),
    };
    SeccompPlan {
        arch,
        denials,
        guard,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::expand::ExpandContext;

    fn policy(extra: &str) -> Policy {
        let text = crate::testing::policy_toml(
            "1000:1000",
            "",
            "",
            &format!("[seccomp]\ndeny = [{extra}]"),
        );
        crate::load::load_str(&text, "t.toml", &ExpandContext::default()).unwrap()
    }

    #[test]
    fn golden_x86_64() {
        let p = plan(&policy(""), Arch::X86_64);
        let enosys: Vec<_> = p.with_errno(ENOSYS).map(|d| (d.name, d.nr)).collect();
        assert_eq!(enosys, vec![("clone3", 435)]);
        let names: Vec<_> = p.with_errno(EPERM).map(|d| d.name).collect();
        for must in [
            "io_uring_setup",
            "ptrace",
            "process_vm_readv",
            "open_by_handle_at",
            "bpf",
            "perf_event_open",
            "userfaultfd",
            "keyctl",
            "mount",
            "setns",
            "unshare",
            "clone",
            "ioctl",
            "kexec_load",
            "finit_module",
        ] {
            assert!(names.contains(&must), "{must} missing");
        }
        let unshare = p.denials.iter().find(|d| d.name == "unshare").unwrap();
        assert_eq!(unshare.nr, 272);
        assert!(unshare.when.contains(&ArgTest::MaskedEq {
            arg: 0,
            mask: 0x1000_0000,
            value: 0x1000_0000
        }));
        assert!(unshare.when.contains(&ArgTest::MaskedEq {
            arg: 0,
            mask: 0x80,
            value: 0x80
        }));
        let clone = p.denials.iter().find(|d| d.name == "clone").unwrap();
        assert_eq!(clone.nr, 56);
        assert!(
            !clone
                .when
                .iter()
                .any(|t| matches!(t, ArgTest::MaskedEq { mask: 0x80, .. }))
        );
        let ioctl = p.denials.iter().find(|d| d.name == "ioctl").unwrap();
        assert_eq!(
            ioctl.when,
            vec![
                ArgTest::Eq32 {
                    arg: 1,
                    value: 0x5412
                },
                ArgTest::Eq32 {
                    arg: 1,
                    value: 0x541C
                }
            ]
        );
    }

    #[test]
    fn golden_arch_guards() {
        let x86 = plan(&policy(""), Arch::X86_64);
        assert_eq!(
            x86.guard,
            ArchGuard {
                foreign_arch_errno: EPERM,
                x32_errno: Some(EPERM)
            }
        );
        let arm = plan(&policy(""), Arch::Aarch64);
        assert_eq!(
            arm.guard,
            ArchGuard {
                foreign_arch_errno: EPERM,
                x32_errno: None
            }
        );
    }

    #[test]
    fn golden_aarch64_numbers_differ() {
        let p = plan(&policy(""), Arch::Aarch64);
        let get = |n: &str| p.denials.iter().find(|d| d.name == n).map(|d| d.nr);
        assert_eq!(get("ptrace"), Some(117));
        assert_eq!(get("clone"), Some(220));
        assert_eq!(get("unshare"), Some(97));
        assert_eq!(get("io_uring_setup"), Some(425));
        assert_eq!(get("clone3"), Some(435));
    }

    #[test]
    fn policy_extras_are_added_once() {
        let p = plan(&policy("\"chroot\", \"ptrace\""), Arch::X86_64);
        assert_eq!(p.denials.iter().filter(|d| d.name == "chroot").count(), 1);
        assert_eq!(p.denials.iter().filter(|d| d.name == "ptrace").count(), 1);
    }
}
