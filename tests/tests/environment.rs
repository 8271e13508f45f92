//! The sentinel: the kernel features this suite relies on are the real
//! ones. A test that cannot run fails unless its skip is declared in
//! `AGENT_VAULT_ALLOW_SKIP`; this test makes sure the declarations match
//! the kernel (no feature declared missing that is there, none missing that
//! is not declared), and that the kernel has at least the Landlock ABI the
//! environment expects (`AGENT_VAULT_EXPECT_LANDLOCK_ABI`, which `.ci/run`
//! sets).

use agent_vault_tests::*;

/// Landlock ABIs the suite's tests ask for by name (`landlock-abi-N`).
const LANDLOCK_ABIS: &[i64] = &[1, 2, 6];

#[test]
fn declared_kernel_features_are_the_real_ones() {
    let abi = landlock_abi();
    if let Ok(expect) = std::env::var("AGENT_VAULT_EXPECT_LANDLOCK_ABI") {
        let expect: i64 = expect
            .trim()
            .parse()
            .expect("AGENT_VAULT_EXPECT_LANDLOCK_ABI: a number");
        assert!(
            abi >= expect,
            "this kernel's Landlock ABI is {abi}; the environment expects at least {expect}"
        );
    }
    // The suite needs ABI 6 (signal and abstract-socket scoping) unless the
    // skip is declared; a declared skip for an ABI the kernel has is stale.
    for &n in LANDLOCK_ABIS {
        let name = format!("landlock-abi-{n}");
        let declared = skip_declared(&name);
        if abi >= n {
            assert!(
                !declared,
                "AGENT_VAULT_ALLOW_SKIP declares {name}, but this kernel has Landlock ABI {abi}: remove it"
            );
        } else {
            assert!(
                declared,
                "this kernel's Landlock ABI is {abi} < {n}: declare AGENT_VAULT_ALLOW_SKIP={name} to run the suite here"
            );
        }
    }
    // seccomp with filters: the status line, and the filter actions the
    // kernel lists (CONFIG_SECCOMP_FILTER).
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let has_seccomp = status.lines().any(|l| l.starts_with("Seccomp:"))
        && std::fs::read_to_string("/proc/sys/kernel/seccomp/actions_avail")
            .is_ok_and(|a| a.contains("errno"));
    if !has_seccomp {
        assert!(
            skip_declared("seccomp"),
            "this kernel has no seccomp (no Seccomp: line in /proc/self/status, or no errno action in /proc/sys/kernel/seccomp/actions_avail): declare AGENT_VAULT_ALLOW_SKIP=seccomp"
        );
    } else {
        assert!(
            !skip_declared("seccomp"),
            "AGENT_VAULT_ALLOW_SKIP declares seccomp, but this kernel has it: remove it"
        );
    }
}
