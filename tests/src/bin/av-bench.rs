//! Benchmarks of the preload (not a test): run as root from the workspace,
//! `cargo run --release -p agent-vault-tests --bin av-bench`.
//!
//! Prints, from one run:
//! - open+read+close of a workspace file in a tool: nothing, Landlock alone
//!   (tool layer, no preload), preload + Landlock, preload alone
//!   (landlock = "off");
//! - spawn cost from the harness: 1,000 fork+exec and 1,000 posix_spawn of
//!   /bin/true with and without agent-vault, and `bwrap --ro-bind / /
//!   /bin/true` per command when bwrap is installed;
//! - the stripped size of libvault_preload.so.

use agent_vault_tests::*;
use std::process::Command;

/// The fastest run: the least disturbed by other load on the machine.
fn best(v: Vec<f64>) -> f64 {
    v.into_iter().fold(f64::MAX, f64::min)
}

fn num(r: &Run) -> f64 {
    r.stdout
        .trim()
        .lines()
        .last()
        .and_then(|l| l.trim().parse().ok())
        .unwrap_or_else(|| panic!("no number: {r:?}"))
}

fn main() {
    let reps = 7;
    let iters = 100_000;
    let so = preload_so();
    let size = std::fs::metadata(&so).unwrap().len();
    let loop_bin = c_program("openloop", &["-O2"]);

    // open+read+close in a tool.
    let (mut none, mut ll, mut both, mut pre) = (vec![], vec![], vec![], vec![]);
    {
        let w = World::new();
        let f = w.ws.join("bench.txt");
        std::fs::write(&f, "x".repeat(100)).unwrap();
        chown_r(&f, HARNESS_UID);
        let cmd = |env: &str| format!("{env} {} {} {iters}", loop_bin.display(), f.display());
        for _ in 0..reps {
            // Nothing: a plain process as uid 1000, no preload, no state.
            let o = Command::new(&loop_bin)
                .arg(&f)
                .arg(iters.to_string())
                .output()
                .unwrap();
            none.push(
                String::from_utf8_lossy(&o.stdout)
                    .trim()
                    .parse::<f64>()
                    .unwrap(),
            );
            ll.push(num(&w.tool(&cmd("env -u LD_PRELOAD"))));
            both.push(num(&w.tool(&cmd(""))));
        }
    }
    {
        let w = World::with_policy_extra("off", "");
        let f = w.ws.join("bench.txt");
        std::fs::write(&f, "x".repeat(100)).unwrap();
        chown_r(&f, HARNESS_UID);
        for _ in 0..reps {
            pre.push(num(&w.tool(&format!(
                "{} {} {iters}",
                loop_bin.display(),
                f.display()
            ))));
        }
    }
    let (none, ll, both, pre) = (best(none), best(ll), best(both), best(pre));

    // Spawn cost from the harness.
    let n = 1000;
    let spawn_reps = 5;
    let (mut fa, mut sa, mut f0, mut s0) = (vec![], vec![], vec![], vec![]);
    {
        let w = World::new();
        for _ in 0..spawn_reps {
            fa.push(num(&w.harness(&["bench-fork", &n.to_string()])));
            sa.push(num(&w.harness(&["bench-spawn", &n.to_string()])));
            for (mode, v) in [("bench-fork", &mut f0), ("bench-spawn", &mut s0)] {
                let o = Command::new(&w.harness)
                    .args([mode, &n.to_string()])
                    .env_clear()
                    .env("PATH", PATH)
                    .output()
                    .unwrap();
                v.push(
                    String::from_utf8_lossy(&o.stdout)
                        .trim()
                        .parse::<f64>()
                        .unwrap(),
                );
            }
        }
    }
    let (fa, sa, f0, s0) = (best(fa), best(sa), best(f0), best(s0));
    let bwrap = if have("bwrap") {
        let k = 200;
        let t = std::time::Instant::now();
        for _ in 0..k {
            let st = Command::new("bwrap")
                .args(["--ro-bind", "/", "/", "/bin/true"])
                .status()
                .unwrap();
            assert!(st.success(), "bwrap failed");
        }
        Some(t.elapsed().as_secs_f64() * 1e6 / f64::from(k))
    } else {
        None
    };

    println!(
        "open+read+close of a 100-byte workspace file, ns per iteration (best of {reps} x {iters}):"
    );
    println!("  nothing                         {none:8.1}   1.00x");
    println!(
        "  Landlock tool layer alone       {ll:8.1}   {:.2}x",
        ll / none
    );
    println!(
        "  preload + Landlock              {both:8.1}   {:.2}x  ({:+.1}% vs Landlock alone)",
        both / none,
        (both / ll - 1.0) * 100.0
    );
    println!(
        "  preload alone (landlock=off)    {pre:8.1}   {:.2}x",
        pre / none
    );
    println!("spawn of /bin/true from the harness, us per spawn (best of {spawn_reps} x {n}):");
    println!(
        "  fork+exec    without {f0:8.1}   with agent-vault {fa:8.1}   {:+.1}%",
        (fa / f0 - 1.0) * 100.0
    );
    println!(
        "  posix_spawn  without {s0:8.1}   with agent-vault {sa:8.1}   {:+.1}%",
        (sa / s0 - 1.0) * 100.0
    );
    match bwrap {
        Some(b) => println!("  bwrap --ro-bind / / /bin/true          {b:8.1}"),
        None => println!("  bwrap: not installed (apt package bubblewrap)"),
    }
    println!(
        "libvault_preload.so (release, stripped): {size} bytes ({:.0} KiB)",
        size as f64 / 1024.0
    );
}
