//! Harnesses the preload's hooks cannot follow (static, Go, another
//! loader than glibc's, or a script run by one) are refused before
//! anything starts, unless the policy opts in with `unhooked = "allow"`.

mod common;
use common::*;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A C harness that writes a marker into `out` (so a start is visible).
const HARNESS_C: &str = r#"
#include <stdio.h>
int main(int argc, char **argv) {
    FILE *f = fopen(argv[1], "w");
    if (!f) return 3;
    fputs("started\n", f);
    return fclose(f) == 0 ? 0 : 4;
}
"#;

struct Case {
    d: Dir,
    marker: PathBuf,
}

impl Case {
    fn new() -> Case {
        let d = Dir::new();
        let out = d.join("out");
        std::fs::create_dir(&out).unwrap();
        std::fs::set_permissions(&out, std::os::unix::fs::PermissionsExt::from_mode(0o777))
            .unwrap();
        std::fs::write(d.join("harness.c"), HARNESS_C).unwrap();
        let marker = out.join("started");
        Case { d, marker }
    }

    /// Compile the harness with extra gcc flags; returns its path.
    fn build(&self, name: &str, flags: &[&str]) -> PathBuf {
        let bin = self.d.join(name);
        let o = Command::new("gcc")
            .args(flags)
            .arg("-o")
            .arg(&bin)
            .arg(self.d.join("harness.c"))
            .output()
            .unwrap();
        assert!(o.status.success(), "gcc {flags:?}: {}", stderr(&o));
        bin
    }

    fn policy(&self, allow: bool) -> PathBuf {
        let p = self.d.policy("65534:65534", "required", "required", "");
        if allow {
            let t = std::fs::read_to_string(&p).unwrap();
            std::fs::write(
                &p,
                t.replacen("[vault]\n", "unhooked = \"allow\"\n[vault]\n", 1),
            )
            .unwrap();
        }
        p
    }

    fn run(&self, allow: bool, cmd: &Path, code: i32) -> std::process::Output {
        run_expecting(
            &self.policy(allow),
            &[],
            &[cmd.to_str().unwrap(), self.marker.to_str().unwrap()],
            code,
        )
    }
}

fn needs_gcc(test: &str) -> bool {
    skip_unless_root(test) || skip_without("/usr/bin/gcc", "gcc")
}

#[test]
fn static_harness_is_refused_by_agent_init() {
    if needs_gcc("static_harness_is_refused_by_agent_init") {
        return;
    }
    let c = Case::new();
    let bin = c.build("static-harness", &["-static"]);
    let o = c.run(false, &bin, 2);
    let errors = error_lines(&o);
    assert_eq!(errors.len(), 1, "{}", stderr(&o));
    assert!(errors[0].contains("is statically linked"), "{}", errors[0]);
    assert!(errors[0].contains("unhooked = \"allow\""), "{}", errors[0]);
    assert!(!c.marker.exists(), "the refused harness started");
}

#[test]
fn static_harness_runs_with_the_policy_opt_in() {
    if needs_gcc("static_harness_runs_with_the_policy_opt_in") {
        return;
    }
    let c = Case::new();
    let bin = c.build("static-harness", &["-static"]);
    let o = c.run(true, &bin, 0);
    assert_stderr_contains(&o, "UNHOOKED, allowed by the policy");
    assert!(c.marker.exists(), "{}", stderr(&o));
}

#[test]
fn dynamic_glibc_harness_runs() {
    if needs_gcc("dynamic_glibc_harness_runs") {
        return;
    }
    let c = Case::new();
    let bin = c.build("dynamic-harness", &[]);
    let o = c.run(false, &bin, 0);
    assert_stderr_contains(&o, "(loader /lib64/ld-linux");
    assert!(c.marker.exists(), "{}", stderr(&o));
}

#[test]
fn foreign_loader_harness_is_refused_by_agent_init() {
    if needs_gcc("foreign_loader_harness_is_refused_by_agent_init") {
        return;
    }
    let c = Case::new();
    let bin = c.build(
        "musl-harness",
        &["-Wl,--dynamic-linker=/lib/ld-musl-x86_64.so.1"],
    );
    let o = c.run(false, &bin, 2);
    assert_stderr_contains(&o, "run by the loader /lib/ld-musl-x86_64.so.1");
    assert!(!c.marker.exists());
}

#[test]
fn go_harness_is_refused_by_agent_init() {
    if needs_gcc("go_harness_is_refused_by_agent_init")
        || skip_without("/usr/bin/objcopy", "objcopy")
    {
        return;
    }
    let c = Case::new();
    let bin = c.build("go-harness", &[]);
    // What Go's linker writes: a .go.buildinfo section opening with the magic.
    let info = c.d.join("buildinfo");
    std::fs::write(&info, b"\xff Go buildinf:\x08\x02").unwrap();
    let o = Command::new("objcopy")
        .arg(format!("--add-section=.go.buildinfo={}", info.display()))
        .arg(&bin)
        .output()
        .unwrap();
    assert!(o.status.success(), "objcopy: {}", stderr(&o));
    let o = c.run(false, &bin, 2);
    assert_stderr_contains(&o, "is a Go program");
    assert!(!c.marker.exists());
}

#[test]
fn script_for_a_static_interpreter_is_refused_by_agent_init() {
    if needs_gcc("script_for_a_static_interpreter_is_refused_by_agent_init") {
        return;
    }
    let c = Case::new();
    let interp = c.build("static-interp", &["-static"]);
    let script = c.d.join("harness.sh");
    std::fs::write(&script, format!("#!{}\n", interp.display())).unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let o = c.run(false, &script, 2);
    assert_stderr_contains(
        &o,
        &format!(
            "is a #! script for {}, which is statically linked",
            interp.display()
        ),
    );
    assert!(!c.marker.exists());
}
