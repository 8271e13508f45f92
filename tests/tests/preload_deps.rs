//! The preload is mapped into every process of the container: it must not
//! drag other libraries in with it (`libgcc_s.so.1`, which a std build
//! needs for its unwinder, runs a CPUID-probing constructor at every load,
//! a VM exit on virtual machines). It is `no_std`: it needs libc, and names
//! it, so that its imports bind to versioned glibc symbols.

use agent_vault_tests::preload_so;
use std::process::Command;

#[test]
fn the_preload_needs_only_libc_and_the_loader() {
    let so = preload_so();
    let out = Command::new("readelf")
        .args(["-d", "-W"])
        .arg(&so)
        .output()
        .expect("readelf (binutils) runs");
    assert!(out.status.success(), "readelf failed on {}", so.display());
    let text = String::from_utf8_lossy(&out.stdout);
    let needed: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("(NEEDED)"))
        .filter_map(|l| l.split('[').nth(1)?.split(']').next())
        .collect();
    assert!(
        needed.iter().any(|l| l.starts_with("libc.so")),
        "the preload does not name libc (all: {needed:?}):\n{text}"
    );
    for lib in &needed {
        assert!(
            lib.starts_with("libc.so") || lib.starts_with("ld-linux"),
            "the preload needs {lib}: every process would load it too (all: {needed:?})"
        );
    }
}
