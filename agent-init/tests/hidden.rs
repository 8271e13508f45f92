//! Seed sources and `[filesystem] hidden` paths are out of reach of the
//! harness and of every tool once agent-init has read them (the base
//! Landlock layer grants nothing beneath them), while seeding still copies
//! them. Run as root with the harness as nobody; the canary files are
//! world-readable, so only Landlock stands in the way.

mod common;
use common::*;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// `tests/src/c/rawopen.c` built static into `d` (no libc open, no preload):
/// a tool's raw `openat`.
fn rawopen(d: &Dir) -> Option<PathBuf> {
    if !has("/usr/bin/gcc") && declared_skip("gcc", "the static raw-openat reader needs gcc") {
        return None;
    }
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/src/c/rawopen.c");
    let out = d.join("rawopen");
    let o = Command::new("gcc")
        .args(["-static", "-O2"])
        .arg(&src)
        .arg("-o")
        .arg(&out)
        .output()
        .expect("run gcc");
    assert!(
        o.status.success(),
        "gcc rawopen: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    std::fs::set_permissions(&out, std::fs::Permissions::from_mode(0o755)).unwrap();
    Some(out)
}

/// A world-readable file, root's: `text` and a newline.
fn canary(path: &Path, text: &str) {
    std::fs::write(path, format!("{text}\n")).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o644)).unwrap();
}

/// The harness script: its own read (a shell redirection opens in the
/// harness process), then `cat` and the raw reader as tools. One line each.
const ATTACK: &str = r#"
for f in "$@"; do
  if read -r line < "$f"; then echo "harness $f READ $line"; else echo "harness $f DENIED"; fi
  if out=$(cat "$f" 2>&1); then echo "cat $f READ $out"; else echo "cat $f DENIED $out"; fi
  echo "raw $f $("$0" openat "$f")"
done
"#;

fn attack(p: &Path, raw: &Path, files: &[&Path]) -> std::process::Output {
    let mut cmd = vec!["/bin/sh", "-c", ATTACK, raw.to_str().unwrap()];
    cmd.extend(files.iter().map(|f| f.to_str().unwrap()));
    run_expecting(p, &[], &cmd, 0)
}

#[test]
fn seed_sources_and_hidden_paths_are_out_of_reach_of_harness_and_tools() {
    if skip_unless_root("seed_sources_and_hidden_paths_are_out_of_reach_of_harness_and_tools") {
        return;
    }
    let d = Dir::new();
    let Some(raw) = rawopen(&d) else { return };
    // /…/mnt/seed (the seed mount), /…/mnt/other (its sibling), and a
    // secret mount under /…/secrets.
    let mnt = d.join("mnt");
    let seed = mnt.join("seed");
    let other = mnt.join("other");
    let secrets = d.join("secrets");
    for dir in [&seed, &other, &secrets] {
        std::fs::create_dir_all(dir).unwrap();
    }
    let key = format!("CANARY-SEED-{}", std::process::id());
    canary(&seed.join("auth.json"), &key);
    canary(&other.join("readme"), "SIBLING-OK");
    canary(&secrets.join("db"), "CANARY-SECRET");
    let vault = d.join("pi-agent");
    let p = d.policy(
        "65534:65534",
        "required",
        "required",
        &format!(
            "[[vault.entry]]\nname = \"pi\"\ndir = \"{vault}\"\n\n[[seed]]\nsource = \"{seed}\"\ntarget = \"{vault}\"\nmode = \"copy-missing\"\n",
            vault = vault.display(),
            seed = seed.display(),
        ),
    );
    // `[filesystem] hidden`, beside the helper's lists.
    let text = std::fs::read_to_string(&p).unwrap().replace(
        "[filesystem]\n",
        &format!("[filesystem]\nhidden = [\"{}\"]\n", secrets.display()),
    );
    std::fs::write(&p, text).unwrap();

    let seed_key = seed.join("auth.json");
    let secret = secrets.join("db");
    let sibling = other.join("readme");
    let seeded = vault.join("auth.json");
    let o = attack(&p, &raw, &[&seed_key, &secret, &sibling, &seeded]);
    let out = stdout(&o);
    let line = |who: &str, f: &Path| {
        let head = format!("{who} {} ", f.display());
        out.lines()
            .find(|l| l.starts_with(&head))
            .map(|l| l[head.len()..].to_string())
            .unwrap_or_else(|| panic!("no line for {who} {}:\n{out}\n{}", f.display(), stderr(&o)))
    };
    for f in [&seed_key, &secret] {
        let harness = line("harness", f);
        assert!(harness.starts_with("DENIED"), "harness read {f:?}: {out}");
        let cat = line("cat", f);
        assert!(
            cat.starts_with("DENIED") && cat.contains("Permission denied"),
            "cat {f:?}: {out}"
        );
        let raw = line("raw", f);
        assert!(raw.starts_with("DENIED"), "raw openat {f:?}: {out}");
        assert!(raw.contains("Permission denied"), "raw openat {f:?}: {out}");
    }
    assert!(!out.contains("CANARY-SECRET"), "{out}");
    // The harness's in-process read failed with EACCES (the shell says so).
    let err = stderr(&o);
    assert!(
        err.contains(&format!("{}: Permission denied", seed_key.display())),
        "{err}"
    );
    // A sibling of the seed mount keeps its rights.
    assert_eq!(line("harness", &sibling), "READ SIBLING-OK");
    assert_eq!(line("cat", &sibling), "READ SIBLING-OK");
    assert_eq!(line("raw", &sibling), "READ SIBLING-OK");
    // Seeding copied the key into the vault, where the harness reads it.
    assert_eq!(line("harness", &seeded), format!("READ {key}"));
    assert_eq!(std::fs::read_to_string(&seeded).unwrap(), format!("{key}\n"));
    // The log line names what the base layer hides.
    assert!(
        err.contains(&format!("hidden: {}, {}", seed.display(), secrets.display())),
        "{err}"
    );
}

#[test]
fn explain_says_a_seed_source_is_hidden_and_why() {
    let d = Dir::new();
    let seed = d.join("pi-agent-ro");
    let vault = d.join("pi-agent");
    let p = d.policy(
        "65534:65534",
        "required",
        "required",
        &format!(
            "[[vault.entry]]\nname = \"pi\"\ndir = \"{vault}\"\n\n[[seed]]\nsource = \"{seed}\"\ntarget = \"{vault}\"\nmode = \"copy-missing\"\n",
            vault = vault.display(),
            seed = seed.display(),
        ),
    );
    let o = Command::new(BIN)
        .args(["explain", "--policy"])
        .arg(&p)
        .arg(seed.join("auth.json"))
        .output()
        .unwrap();
    assert_exit(&o, 0);
    let out = stdout(&o);
    assert!(out.contains("harness may: nothing"), "{out}");
    assert!(out.contains("a tool may:  nothing"), "{out}");
    let why = format!(
        "because seed source {} (agent-init, as root, copies it into {} before the harness starts): hidden from the harness and every tool",
        seed.display(),
        vault.display()
    );
    assert_eq!(out.matches(&why).count(), 2, "{out}");
}
