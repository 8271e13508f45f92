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

/// A seed mount `mnt/seed` with a key, its sibling `mnt/other`, the vault it
/// seeds, and a policy (with `hidden`, paths in the directory, appended to
/// `[filesystem]`).
struct Seeded {
    d: Dir,
    raw: PathBuf,
    seed: PathBuf,
    key: String,
    sibling: PathBuf,
    vault: PathBuf,
    policy: PathBuf,
}

fn seeded(test: &str, hidden: &[&str]) -> Option<Seeded> {
    if skip_unless_root(test) {
        return None;
    }
    let d = Dir::new();
    let raw = rawopen(&d)?;
    let mnt = d.join("mnt");
    let seed = mnt.join("seed");
    let other = mnt.join("other");
    for dir in [&seed, &other] {
        std::fs::create_dir_all(dir).unwrap();
    }
    let key = format!("CANARY-SEED-{}", std::process::id());
    canary(&seed.join("auth.json"), &key);
    canary(&other.join("readme"), "SIBLING-OK");
    let vault = d.join("pi-agent");
    let policy = d.policy(
        "65534:65534",
        "required",
        "required",
        &format!(
            "[[vault.entry]]\nname = \"pi\"\ndir = \"{vault}\"\n\n[[seed]]\nsource = \"{seed}\"\ntarget = \"{vault}\"\nmode = \"copy-missing\"\n",
            vault = vault.display(),
            seed = seed.display(),
        ),
    );
    if !hidden.is_empty() {
        let list: Vec<String> = hidden
            .iter()
            .map(|h| format!("\"{}\"", d.join(h).display()))
            .collect();
        let text = std::fs::read_to_string(&policy).unwrap().replace(
            "[filesystem]\n",
            &format!("[filesystem]\nhidden = [{}]\n", list.join(", ")),
        );
        std::fs::write(&policy, text).unwrap();
    }
    Some(Seeded {
        sibling: other.join("readme"),
        d,
        raw,
        seed,
        key,
        vault,
        policy,
    })
}

/// The attack's verdict for `who` (harness, cat, raw) on `f`: the rest of its line.
fn verdict(o: &std::process::Output, who: &str, f: &Path) -> String {
    let out = stdout(o);
    let head = format!("{who} {} ", f.display());
    out.lines()
        .find(|l| l.starts_with(&head))
        .map(|l| l[head.len()..].to_string())
        .unwrap_or_else(|| panic!("no line for {who} {}:\n{out}\n{}", f.display(), stderr(o)))
}

/// Neither the harness nor a tool (cat, raw openat) reads `f`: EACCES.
#[track_caller]
fn assert_out_of_reach(o: &std::process::Output, f: &Path) {
    let out = stdout(o);
    assert_eq!(
        verdict(o, "harness", f),
        "DENIED",
        "harness read {f:?}: {out}"
    );
    // The harness's in-process open failed with EACCES (the shell says so).
    assert!(
        stderr(o).contains(&format!("{}: Permission denied", f.display())),
        "{}",
        stderr(o)
    );
    let cat = verdict(o, "cat", f);
    assert!(
        cat.starts_with("DENIED") && cat.contains("Permission denied"),
        "cat {f:?}: {out}"
    );
    assert_eq!(verdict(o, "raw", f), "DENIED Permission denied", "{out}");
}

#[test]
fn seed_sources_are_out_of_reach_of_harness_and_tools() {
    let Some(w) = seeded("seed_sources_are_out_of_reach_of_harness_and_tools", &[]) else {
        return;
    };
    let seed_key = w.seed.join("auth.json");
    let seeded = w.vault.join("auth.json");
    let o = attack(&w.policy, &w.raw, &[&seed_key, &w.sibling, &seeded]);
    assert_out_of_reach(&o, &seed_key);
    // A sibling of the seed mount keeps its rights.
    for who in ["harness", "cat", "raw"] {
        assert_eq!(verdict(&o, who, &w.sibling), "READ SIBLING-OK", "{who}");
    }
    // Seeding copied the key into the vault, where the harness reads it.
    assert_eq!(verdict(&o, "harness", &seeded), format!("READ {}", w.key));
    assert_eq!(
        std::fs::read_to_string(&seeded).unwrap(),
        format!("{}\n", w.key)
    );
    // The log line names what the base layer hides.
    assert_stderr_contains(&o, &format!("hidden: {}", w.seed.display()));
}

#[test]
fn listed_hidden_paths_are_out_of_reach_of_harness_and_tools() {
    let Some(w) = seeded(
        "listed_hidden_paths_are_out_of_reach_of_harness_and_tools",
        &["run/secrets"],
    ) else {
        return;
    };
    // A secret mount, beside a directory that stays readable.
    let secrets = w.d.join("run/secrets");
    std::fs::create_dir_all(&secrets).unwrap();
    std::fs::create_dir_all(w.d.join("run/lock")).unwrap();
    canary(&w.d.join("run/lock/pid"), "LOCK-OK");
    let secret = secrets.join("db");
    canary(&secret, "CANARY-SECRET");
    let lock = w.d.join("run/lock/pid");
    let o = attack(&w.policy, &w.raw, &[&secret, &lock]);
    assert_out_of_reach(&o, &secret);
    assert!(!stdout(&o).contains("CANARY-SECRET"), "{}", stdout(&o));
    assert_eq!(verdict(&o, "raw", &lock), "READ LOCK-OK");
    assert_stderr_contains(
        &o,
        &format!("hidden: {}, {}", w.seed.display(), secrets.display()),
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
    // `check` lists the hidden set, in words and in JSON.
    let o = Command::new(BIN)
        .args(["check", "--policy"])
        .arg(&p)
        .output()
        .unwrap();
    assert_exit(&o, 0);
    assert!(
        stdout(&o).contains(&format!(
            "hidden (seed sources and filesystem.hidden; agent-init reads them as root): {}",
            seed.display()
        )),
        "{}",
        stdout(&o)
    );
    let o = Command::new(BIN)
        .args(["check", "--json", "--policy"])
        .arg(&p)
        .output()
        .unwrap();
    assert_exit(&o, 0);
    assert!(
        stdout(&o).contains(&format!("\"hidden\":[\"{}\"]", seed.display())),
        "{}",
        stdout(&o)
    );
}

/// The JSON row of `self-test --json` whose check starts with `check`.
fn json_row(s: &str, check: &str) -> String {
    let i = s
        .find(&format!("\"check\":\"{check}"))
        .unwrap_or_else(|| panic!("{check} missing: {s}"));
    let j = s[i..].find('}').unwrap();
    s[i..i + j].to_string()
}

#[test]
fn self_test_attacks_each_seed_source() {
    let Some(w) = seeded("self_test_attacks_each_seed_source", &[]) else {
        return;
    };
    let seed = format!("seed source {}", w.seed.display());
    let auth = w.seed.join("auth.json");
    let attacks = [
        format!("read {} (libc, as cat)", auth.display()),
        format!("read {} (raw openat)", auth.display()),
    ];
    // Under the base layer: reading the seed's file is blocked.
    let o = output(run_cmd(&w.policy, &[], &[BIN, "self-test", "--json"]));
    let s = stdout(&o);
    assert!(!s.contains(&w.key), "a secret was printed: {s}");
    for how in &attacks {
        let row = json_row(&s, &format!("{seed}: {how}"));
        assert!(
            row.contains("\"status\":\"pass\"") && row.contains("blocked: EACCES"),
            "{row}"
        );
    }
    // Without Landlock the seed is readable (world-readable here), and
    // self-test says so, naming the file and what guards it then.
    let text = std::fs::read_to_string(&w.policy).unwrap().replace(
        "[landlock]\nmode = \"required\"",
        "[landlock]\nmode = \"off\"",
    );
    std::fs::write(&w.policy, text).unwrap();
    let o = output(run_cmd(&w.policy, &[], &[BIN, "self-test", "--json"]));
    let s = stdout(&o);
    assert!(!s.contains(&w.key), "a secret was printed: {s}");
    for how in &attacks {
        let row = json_row(&s, &format!("{seed}: {how}"));
        assert!(
            row.contains("\"status\":\"FAIL\"")
                && row.contains("READABLE")
                && row.contains("only the file modes guard it"),
            "{row}"
        );
    }
}

#[test]
fn a_policy_path_that_is_a_symlink_to_a_seed_source_grants_nothing() {
    let Some(w) = seeded(
        "a_policy_path_that_is_a_symlink_to_a_seed_source_grants_nothing",
        &[],
    ) else {
        return;
    };
    let link = w.d.join("seed-link");
    std::os::unix::fs::symlink(&w.seed, &link).unwrap();
    let text = std::fs::read_to_string(&w.policy).unwrap().replace(
        "read_only = [\"/\"]",
        &format!("read_only = [\"/\", \"{}\"]", link.display()),
    );
    std::fs::write(&w.policy, text).unwrap();
    let through_link = link.join("auth.json");
    let o = attack(&w.policy, &w.raw, &[&through_link]);
    assert_out_of_reach(&o, &through_link);
    assert_stderr_contains(&o, &format!("{} (a hidden path)", link.display()));
}
