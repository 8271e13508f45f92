//! Benchmarks of the preload (not a test): run as root from the workspace,
//! `cargo run --release -p agent-vault-tests --bin av-bench`.
//!
//! Prints, from one run:
//! - open+read+close of a file in a tool: nothing, Landlock alone (tool
//!   layer, no preload), preload + Landlock, preload alone
//!   (`landlock = "off"`); for a file in the test world's workspace (a
//!   deeper path) and for a file under `/tmp`, both on the vault's device;
//! - spawn cost from the harness, under a container's fd limit (1024):
//!   1,000 fork+exec and 1,000 posix_spawn of /bin/true with and without
//!   agent-vault; fork+exec again under a limit of 16384 (the child lists
//!   /proc/self/fd instead of polling); fork+exec from a tool (the preload
//!   in the child only, no tool layer to apply); the floor: an empty
//!   preloaded library; and `bwrap --ro-bind / / /bin/true` per command
//!   when bwrap is installed;
//! - the stripped size of libvault_preload.so.

use agent_vault_tests::*;
use std::path::Path;
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

fn plain(program: &Path, args: &[&str], preload: Option<&Path>) -> f64 {
    let mut c = Command::new(program);
    c.args(args).env_clear().env("PATH", PATH);
    if let Some(p) = preload {
        c.env("LD_PRELOAD", p);
    }
    let o = c.output().unwrap();
    String::from_utf8_lossy(&o.stdout)
        .trim()
        .parse::<f64>()
        .unwrap_or_else(|_| panic!("no number: {o:?}"))
}

/// Open-loop timings (ns) for one file: nothing, Landlock alone, preload +
/// Landlock, preload alone.
struct OpenLoop {
    none: f64,
    ll: f64,
    both: f64,
    pre: f64,
}

fn open_loop(
    loop_bin: &Path,
    reps: usize,
    iters: u32,
    file_in: impl Fn(&World) -> String,
) -> OpenLoop {
    let (mut none, mut ll, mut both, mut pre) = (vec![], vec![], vec![], vec![]);
    {
        let w = World::new();
        let f = file_in(&w);
        let cmd = |env: &str| format!("{env} {} {f} {iters}", loop_bin.display());
        for _ in 0..reps {
            // Nothing: a plain process, no preload, no state.
            none.push(plain(loop_bin, &[&f, &iters.to_string()], None));
            ll.push(num(&w.tool(&cmd("env -u LD_PRELOAD"))));
            both.push(num(&w.tool(&cmd(""))));
        }
    }
    {
        let w = World::with_policy_extra("off", "");
        let f = file_in(&w);
        for _ in 0..reps {
            pre.push(num(&w.tool(&format!("{} {f} {iters}", loop_bin.display()))));
        }
    }
    OpenLoop {
        none: best(none),
        ll: best(ll),
        both: best(both),
        pre: best(pre),
    }
}

fn print_open_loop(what: &str, o: &OpenLoop) {
    println!("  {what}:");
    println!("    nothing                         {:8.1}   1.00x", o.none);
    println!(
        "    Landlock tool layer alone       {:8.1}   {:.2}x",
        o.ll,
        o.ll / o.none
    );
    println!(
        "    preload + Landlock              {:8.1}   {:.2}x  ({:+.1}% vs Landlock alone)",
        o.both,
        o.both / o.none,
        (o.both / o.ll - 1.0) * 100.0
    );
    println!(
        "    preload alone (landlock=off)    {:8.1}   {:.2}x",
        o.pre,
        o.pre / o.none
    );
}

/// The fd limit the spawn figures are taken under: a container's (podman
/// here, and Docker's default soft limit). The harness's child finds its
/// open fds with poll(2) under it; one row repeats the fork+exec figure
/// above 4096, where it lists /proc/self/fd instead.
const CONTAINER_NOFILE: u64 = 1024;

fn set_nofile(n: u64) {
    let lim = libc::rlimit {
        rlim_cur: n,
        rlim_max: n,
    };
    // SAFETY: `lim` is a valid rlimit for the call.
    let r = unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) };
    assert_eq!(r, 0, "setrlimit(RLIMIT_NOFILE, {n})");
}

fn main() {
    // Lowering the hard limit is for good: take the high-limit figure from
    // a child process.
    if std::env::args().nth(1).as_deref() == Some("--high-nofile-fork") {
        set_nofile(16384);
        let w = World::new();
        let v: Vec<f64> = (0..5)
            .map(|_| num(&w.harness(&["bench-fork", "1000"])))
            .collect();
        println!("{:.1}", best(v));
        return;
    }
    let high_nofile = {
        let o = Command::new(std::env::current_exe().unwrap())
            .arg("--high-nofile-fork")
            .output()
            .unwrap();
        String::from_utf8_lossy(&o.stdout)
            .trim()
            .parse::<f64>()
            .unwrap_or_else(|_| panic!("high-nofile run: {o:?}"))
    };
    set_nofile(CONTAINER_NOFILE);
    let reps = 7;
    let iters = 100_000;
    let so = preload_so();
    let size = std::fs::metadata(&so).unwrap().len();
    let loop_bin = c_program("openloop", &["-O2"]);
    let empty_so = c_program("empty", &["-shared", "-fPIC", "-O2"]);

    let write_file = |p: &Path| {
        std::fs::write(p, "x".repeat(100)).unwrap();
        chown_r(p, HARNESS_UID);
        p.display().to_string()
    };
    let ws = open_loop(&loop_bin, reps, iters, |w| {
        write_file(&w.ws.join("bench.txt"))
    });
    let tmp_dir = tempfile::Builder::new()
        .prefix("av-bench-")
        .tempdir_in("/tmp")
        .unwrap();
    chown_r(tmp_dir.path(), HARNESS_UID);
    let tmp = open_loop(&loop_bin, reps, iters, |_| {
        write_file(&tmp_dir.path().join("bench.txt"))
    });

    // Spawn cost.
    let n = 1000;
    let spawn_reps = 5;
    let ns = n.to_string();
    let (mut fa, mut sa, mut f0, mut s0) = (vec![], vec![], vec![], vec![]);
    let (mut ft, mut fe) = (vec![], vec![]);
    {
        let w = World::new();
        let h = w.harness.display().to_string();
        for _ in 0..spawn_reps {
            fa.push(num(&w.harness(&["bench-fork", &ns])));
            sa.push(num(&w.harness(&["bench-spawn", &ns])));
            f0.push(plain(&w.harness, &["bench-fork", &ns], None));
            s0.push(plain(&w.harness, &["bench-spawn", &ns], None));
            // From a tool: the child loads the preload (under the tool's layer).
            ft.push(num(&w.tool(&format!("{h} bench-fork {ns}"))));
            // The floor: any preloaded library, here an empty one.
            fe.push(plain(&w.harness, &["bench-fork", &ns], Some(&empty_so)));
        }
    }
    let (fa, sa, f0, s0, ft, fe) = (best(fa), best(sa), best(f0), best(s0), best(ft), best(fe));
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
        "open+read+close of a 100-byte file in a tool, ns per iteration (best of {reps} x {iters}):"
    );
    print_open_loop("a file in the workspace (a deeper path)", &ws);
    print_open_loop("a file under /tmp", &tmp);
    println!(
        "spawn of /bin/true, us per spawn (best of {spawn_reps} x {n}), fd limit {CONTAINER_NOFILE}:"
    );
    let pct = |x: f64| (x / f0 - 1.0) * 100.0;
    println!(
        "  fork+exec from the harness     without {f0:8.1}   with agent-vault {fa:8.1}   {:+.1}%",
        pct(fa)
    );
    println!(
        "  posix_spawn from the harness   without {s0:8.1}   with agent-vault {sa:8.1}   {:+.1}%",
        (sa / s0 - 1.0) * 100.0
    );
    println!(
        "  fork+exec from the harness, fd limit 16384 (fds listed from /proc) {high_nofile:8.1}   {:+.1}%",
        pct(high_nofile)
    );
    println!(
        "  fork+exec from a tool (preload in the child, no layer to apply)  {ft:8.1}   {:+.1}%",
        pct(ft)
    );
    println!(
        "  fork+exec with an empty preloaded library (the floor)            {fe:8.1}   {:+.1}%",
        pct(fe)
    );
    match bwrap {
        Some(b) => println!("  bwrap --ro-bind / / /bin/true, per command      {b:8.1}"),
        None => println!("  bwrap: not installed (apt package bubblewrap)"),
    }
    println!(
        "libvault_preload.so (release, stripped): {size} bytes ({:.0} KiB)",
        size as f64 / 1024.0
    );
}
