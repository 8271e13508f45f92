//! What a forked child does between `fork` and `exec` is paid once per
//! spawn: the preload keeps it to the tool layer and the vault fds. In
//! particular the child makes no `dlsym`: looking up a hook's real
//! function there (`execvpe` behind `execvp`, `open` for a redirection)
//! wrote the dynamic loader's state and a deep stack in every child, about
//! 10 copy-on-write page faults and 25 µs a spawn (bench/RESULTS.md, run
//! 10). The parent looks them up before it forks, once.
//!
//! Seen with the dynamic loader's own trace (`LD_DEBUG=symbols`): every
//! lookup is a line that starts with the pid of the process that made it.
//! The program is linked with `-z now`, so that its own calls bind at
//! start-up rather than lazily in the child.

use agent_vault_tests::*;
use std::collections::BTreeSet;

/// The pids printed as `PARENT <pid>` and `CHILD <pid>`.
fn pids(stdout: &str) -> (String, String) {
    let find = |tag: &str| {
        stdout
            .lines()
            .find_map(|l| l.strip_prefix(tag))
            .unwrap_or_else(|| panic!("no {tag:?} line in {stdout:?}"))
            .trim()
            .to_string()
    };
    (find("PARENT "), find("CHILD "))
}

/// The symbols each of `parent` and `child` looked up, from the
/// `LD_DEBUG_OUTPUT` files under `prefix` (the forked child writes to its
/// parent's file until it execs; the program it execs opens its own).
fn lookups(prefix: &std::path::Path, parent: &str, child: &str) -> (BTreeSet<String>, Vec<String>) {
    let text = std::fs::read_to_string(format!("{}.{parent}", prefix.display()))
        .unwrap_or_else(|e| panic!("LD_DEBUG output of pid {parent}: {e}"));
    let mut of_parent = BTreeSet::new();
    let mut of_child = Vec::new();
    for line in text.lines() {
        let Some((pid, rest)) = line.trim_start().split_once(':') else {
            continue;
        };
        let Some(sym) = rest.trim_start().strip_prefix("symbol=") else {
            continue;
        };
        let sym = sym.split(';').next().unwrap_or("").to_string();
        if pid == parent {
            of_parent.insert(sym);
        } else if pid == child {
            of_child.push(line.trim().to_string());
        }
    }
    (of_parent, of_child)
}

fn check(r: &Run, prefix: &std::path::Path) {
    assert_eq!(r.code, 0, "{r:?}");
    let (parent, child) = pids(&r.stdout);
    let (of_parent, of_child) = lookups(prefix, &parent, &child);
    // The trace works and shows the preload's lookups: the parent made them.
    for sym in ["execvpe", "open"] {
        assert!(
            of_parent.contains(sym),
            "parent {parent} looked up {of_parent:?}"
        );
    }
    assert!(
        of_child.is_empty(),
        "the forked child {child} looked up symbols before exec: {of_child:#?}"
    );
}

/// A world whose workspace the harness user owns, the test program, and
/// where `LD_DEBUG_OUTPUT` writes (`<prefix>.<pid>`).
fn setup() -> (World, std::path::PathBuf, std::path::PathBuf) {
    let w = World::new();
    chown_r(&w.ws, HARNESS_UID);
    let prog = c_program("forkexecvp", &["-O2", "-Wl,-z,now"]);
    let prefix = w.ws.join("lddebug");
    (w, prog, prefix)
}

#[test]
fn a_tools_forked_child_makes_no_symbol_lookup_before_exec() {
    let (w, prog, prefix) = setup();
    let r = w.tool(&format!(
        "LD_DEBUG=symbols LD_DEBUG_OUTPUT={} {}",
        prefix.display(),
        prog.display()
    ));
    check(&r, &prefix);
}

#[test]
fn a_harness_forked_child_makes_no_symbol_lookup_before_exec() {
    let (w, prog, prefix) = setup();
    let mut c = w.harness_cmd(&prog, &[]);
    c.env("LD_DEBUG", "symbols").env("LD_DEBUG_OUTPUT", &prefix);
    let r = Run::from(c.output().expect("run forkexecvp as the harness"));
    check(&r, &prefix);
}
