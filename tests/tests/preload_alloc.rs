//! The open hooks' fast path makes no heap allocation: a counting malloc
//! (`count.so`, preloaded before the agent-vault preload) sees none across
//! 4,000 hooked opens in a tool (reads, creates with O_TRUNC, and denials
//! with their audit records), after a warm-up round that lets the one-time
//! initialisation allocate.

use agent_vault_tests::*;

#[test]
fn open_fast_path_makes_no_heap_allocation_under_the_tool_layer() {
    check(World::new());
}

#[test]
fn open_fast_path_makes_no_heap_allocation_with_userland_checks_only() {
    // landlock = "off": the full check (fstat, /proc/self/fd readlink).
    check(World::with_policy_extra("off", ""));
}

fn check(w: World) {
    let count = c_program("count", &["-shared", "-fPIC", "-O2"]);
    let probe = c_program("allocprobe", &["-O2"]);
    std::fs::write(w.ws.join("r.txt"), "readable").unwrap();
    chown_r(&w.ws, HARNESS_UID);
    let r = w.tool(&format!(
        "LD_PRELOAD={}:$LD_PRELOAD {} {}/r.txt {}/w.txt {}",
        count.display(),
        probe.display(),
        w.ws.display(),
        w.ws.display(),
        w.secret()
    ));
    assert!(
        r.stdout.contains("ALLOCS 0 DENIED 2000 COUNTER WORKS"),
        "{r:?}"
    );
    assert_eq!(r.code, 0, "{r:?}");
    // The denials really went through the preload (audit records written).
    assert!(
        w.audit_denials("test-vault") >= 1000,
        "{}",
        w.audit().lines().count()
    );
}
