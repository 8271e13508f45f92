//! Step 6, the seccomp deny-list ([`policy::seccomp_plan::plan`]).
//!
//! seccompiler 0.5 takes one match action per filter, so the plan becomes
//! stacked filters (the kernel runs them all and takes the strictest result,
//! and every result here is an errno or allow):
//! 1. `clone3` → `ENOSYS` (its flags are in memory; glibc falls back to
//!    `clone`, whose flags filter 2 can see);
//! 2. the deny-list → `EPERM`;
//! 3. the plan's x32 guard ([`policy::seccomp_plan::ArchGuard`]): on x86_64
//!    every x32 number (`nr & 0x40000000`) → `EPERM`.
//!
//! seccompiler's arch check answers a foreign-arch syscall (on x86_64: an
//! i386 `int 0x80`) with `KILL_PROCESS`; the plan asks for an errno
//! (`ArchGuard::foreign_arch_errno`), so agent-init rewrites that one
//! instruction after checking it is exactly what seccompiler emits
//! (`ld arch; jeq ARCH,1,0; ret KILL_PROCESS`). A foreign-arch syscall then
//! fails with that errno in all three filters.

use crate::log::debug;
use policy::seccomp_plan::{ArchGuard, ArgTest, ENOSYS, EPERM, SeccompPlan, X32_SYSCALL_BIT, plan};
use policy::syscalls::Arch;
use policy::{EnforceMode, Policy};
use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule, TargetArch, sock_filter,
};
use std::collections::BTreeMap;
use std::fmt;

/// What failed.
#[derive(Debug)]
pub enum SeccompError {
    /// The host architecture has no plan.
    UnsupportedArch(&'static str),
    /// Compiling a filter failed.
    Compile(seccompiler::BackendError),
    /// seccompiler's prologue is not what we patch.
    UnexpectedPrologue,
    /// `seccomp(SECCOMP_SET_MODE_FILTER)` failed.
    Apply {
        filter: &'static str,
        source: seccompiler::Error,
    },
}

impl fmt::Display for SeccompError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SeccompError::UnsupportedArch(a) => write!(
                f,
                "seccomp: no filter for architecture {a} (x86_64 and aarch64 only). Fix: `[seccomp] mode = \"off\"`"
            ),
            SeccompError::Compile(e) => write!(f, "seccomp: compiling the filter: {e}"),
            SeccompError::UnexpectedPrologue => write!(
                f,
                "seccomp: seccompiler's arch check is not the expected 3 instructions; refusing to patch it"
            ),
            SeccompError::Apply { filter, source } => write!(
                f,
                "seccomp(SECCOMP_SET_MODE_FILTER) for the {filter} filter: {source}. Fix: a kernel with seccomp filters, or `[seccomp] mode = \"off\"`/\"best-effort\""
            ),
        }
    }
}

impl std::error::Error for SeccompError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            SeccompError::Compile(e) => Some(e),
            SeccompError::Apply { source, .. } => Some(source),
            SeccompError::UnsupportedArch(_) | SeccompError::UnexpectedPrologue => None,
        }
    }
}

const BPF_LD_W_ABS: u16 = 0x20;
const BPF_JMP_JEQ_K: u16 = 0x15;
const BPF_JMP_JSET_K: u16 = 0x45;
const BPF_RET_K: u16 = 0x06;
const SECCOMP_RET_ERRNO: u32 = 0x0005_0000;
const SECCOMP_RET_ALLOW: u32 = 0x7fff_0000;
const SECCOMP_RET_KILL_PROCESS: u32 = 0x8000_0000;
const AUDIT_ARCH_X86_64: u32 = 62 | 0x8000_0000 | 0x4000_0000;

fn stmt(code: u16, k: u32) -> sock_filter {
    sock_filter {
        code,
        jt: 0,
        jf: 0,
        k,
    }
}
fn jump(code: u16, k: u32, jt: u8, jf: u8) -> sock_filter {
    sock_filter { code, jt, jf, k }
}

/// Compiled filters, in the order they are installed.
pub struct Filters {
    pub programs: Vec<(&'static str, BpfProgram)>,
    pub denied: usize,
    pub best_effort: bool,
}

fn target(arch: Arch) -> TargetArch {
    match arch {
        Arch::X86_64 => TargetArch::x86_64,
        Arch::Aarch64 => TargetArch::aarch64,
    }
}

fn compile_one(plan: &SeccompPlan, errno: u32) -> Result<Option<BpfProgram>, SeccompError> {
    let cerr = SeccompError::Compile;
    let mut rules: BTreeMap<i64, Vec<SeccompRule>> = BTreeMap::new();
    for d in plan.with_errno(errno) {
        let mut chain = Vec::new();
        for t in &d.when {
            let cond = match *t {
                ArgTest::MaskedEq { arg, mask, value } => SeccompCondition::new(
                    arg,
                    SeccompCmpArgLen::Qword,
                    SeccompCmpOp::MaskedEq(mask),
                    value,
                ),
                ArgTest::Eq32 { arg, value } => SeccompCondition::new(
                    arg,
                    SeccompCmpArgLen::Dword,
                    SeccompCmpOp::Eq,
                    u64::from(value),
                ),
            }
            .map_err(cerr)?;
            chain.push(SeccompRule::new(vec![cond]).map_err(cerr)?);
        }
        rules.insert(d.nr, chain);
    }
    if rules.is_empty() {
        return Ok(None);
    }
    let filter = SeccompFilter::new(
        rules,
        SeccompAction::Allow,
        SeccompAction::Errno(errno),
        target(plan.arch),
    )
    .map_err(cerr)?;
    let mut prog: BpfProgram = filter.try_into().map_err(cerr)?;
    // Patch the arch check's KILL_PROCESS into an errno (see the module doc).
    let ok = prog.len() > 3
        && prog[0] == stmt(BPF_LD_W_ABS, 4)
        && prog[1].code == BPF_JMP_JEQ_K
        && (prog[1].jt, prog[1].jf) == (1, 0)
        && prog[2] == stmt(BPF_RET_K, SECCOMP_RET_KILL_PROCESS);
    if !ok {
        return Err(SeccompError::UnexpectedPrologue);
    }
    prog[2] = stmt(BPF_RET_K, SECCOMP_RET_ERRNO | plan.guard.foreign_arch_errno);
    Ok(Some(prog))
}

/// The x32 guard (x86_64 only): `nr & 0x40000000` → `x32_errno`; foreign
/// arch → `foreign_arch_errno`.
pub fn x32_guard(guard: ArchGuard, x32_errno: u32) -> BpfProgram {
    let foreign = guard.foreign_arch_errno;
    vec![
        stmt(BPF_LD_W_ABS, 4),                          // A = arch
        jump(BPF_JMP_JEQ_K, AUDIT_ARCH_X86_64, 1, 0),   // x86_64?
        stmt(BPF_RET_K, SECCOMP_RET_ERRNO | foreign),   // foreign arch
        stmt(BPF_LD_W_ABS, 0),                          // A = nr
        jump(BPF_JMP_JSET_K, X32_SYSCALL_BIT, 0, 1),    // x32 bit set?
        stmt(BPF_RET_K, SECCOMP_RET_ERRNO | x32_errno), // x32 number
        stmt(BPF_RET_K, SECCOMP_RET_ALLOW),
    ]
}

/// Compile the policy's filters for the host (step 6, first half).
pub fn compile(policy: &Policy) -> Result<Option<Filters>, SeccompError> {
    if policy.seccomp.mode == EnforceMode::Off {
        return Ok(None);
    }
    let arch = Arch::host().ok_or(SeccompError::UnsupportedArch(std::env::consts::ARCH))?;
    let p = plan(policy, arch);
    let mut programs = Vec::new();
    if let Some(f) = compile_one(&p, ENOSYS)? {
        programs.push(("ENOSYS (clone3)", f));
    }
    if let Some(f) = compile_one(&p, EPERM)? {
        programs.push(("EPERM deny-list", f));
    }
    if let Some(x32_errno) = p.guard.x32_errno {
        programs.push(("x32 guard", x32_guard(p.guard, x32_errno)));
    }
    for (name, prog) in &programs {
        debug!("seccomp: {name} filter, {} instructions", prog.len());
    }
    Ok(Some(Filters {
        programs,
        denied: p.denials.len(),
        best_effort: policy.seccomp.mode == EnforceMode::BestEffort,
    }))
}

/// Install the filters (step 6, second half; after `no_new_privs`).
/// In `best-effort` a failure is returned as a warning line instead.
pub fn apply_filters(filters: Option<Filters>) -> Result<String, SeccompError> {
    let Some(filters) = filters else {
        return Ok("off (policy)".into());
    };
    for (name, prog) in &filters.programs {
        if let Err(source) = seccompiler::apply_filter(prog) {
            let err = SeccompError::Apply {
                filter: name,
                source,
            };
            if filters.best_effort {
                return Ok(format!("NOT enforced (best-effort): {err}"));
            }
            return Err(err);
        }
    }
    Ok(format!(
        "{} filters, {} syscalls denied with errnos (clone3 ENOSYS, the rest EPERM; x32 and foreign-arch numbers EPERM)",
        filters.programs.len(),
        filters.denied
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prologue_is_patched_to_errno() {
        let ctx = policy::ExpandContext::default();
        let text = policy::testing::policy_toml("1000:1000", "", "", "");
        let p = policy::load_str(&text, "t.toml", &ctx).unwrap();
        let f = compile(&p).unwrap().unwrap();
        for (_, prog) in &f.programs {
            assert!(
                !prog
                    .iter()
                    .any(|i| i.code == BPF_RET_K && i.k == SECCOMP_RET_KILL_PROCESS),
                "no kill action anywhere"
            );
            assert_eq!(prog[2], stmt(BPF_RET_K, SECCOMP_RET_ERRNO | EPERM));
        }
    }
}
