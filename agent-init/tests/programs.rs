//! `[filesystem] tool_read_only`: the harness's own program files. Present
//! at start, they are read-only for tools (a tool that replaced them would
//! run as the trusted harness at the next start); missing or empty (a fresh
//! volume before the first-start install) they are writable by tools for
//! that start only, so the install, a tool of the harness, can fill them.

mod common;
use common::*;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// `agent-init run` with the preload on, `prog` as the only tool_read_only
/// path, and a harness whose tool writes `prog/bin` then says what it got.
fn tool_writes_the_program(d: &Dir, prog: &Path) -> std::process::Output {
    let p = d.policy("65534:65534", "required", "required", "");
    let text = std::fs::read_to_string(&p).unwrap().replacen(
        "read_write = [\"/tmp\", \"/dev\"]",
        &format!(
            "read_write = [\"/tmp\", \"/dev\"]\ntool_read_only = [\"{}\"]",
            prog.display()
        ),
        1,
    );
    std::fs::write(&p, text).unwrap();
    let script = format!(
        "mkdir -p {0}/bin 2>/dev/null; (echo installed > {0}/bin/claude) 2>/dev/null && echo TOOL_WROTE; cat {0}/bin/claude",
        prog.display()
    );
    let mut c = run_cmd(&p, &[], &["/bin/sh", "-c", "/bin/sh -c \"$0\"", &script]);
    c.env("AGENT_VAULT_PRELOAD", built_preload());
    output(c)
}

fn program_dir(d: &Dir) -> std::path::PathBuf {
    let prog = d.join("prog");
    std::fs::create_dir(&prog).unwrap();
    std::fs::set_permissions(&prog, std::fs::Permissions::from_mode(0o777)).unwrap();
    prog
}

#[test]
fn an_installed_program_is_not_replaced_by_a_tool_by_landlock() {
    if skip_unless_root("an_installed_program_is_not_replaced_by_a_tool_by_landlock") {
        return;
    }
    let d = Dir::new();
    let prog = program_dir(&d);
    std::fs::create_dir(prog.join("bin")).unwrap();
    std::fs::write(prog.join("bin/claude"), "real\n").unwrap();
    std::fs::set_permissions(prog.join("bin"), std::fs::Permissions::from_mode(0o777)).unwrap();
    std::fs::set_permissions(
        prog.join("bin/claude"),
        std::fs::Permissions::from_mode(0o666),
    )
    .unwrap();
    let o = tool_writes_the_program(&d, &prog);
    assert_exit(&o, 0);
    assert!(!stdout(&o).contains("TOOL_WROTE"), "{o:?}");
    assert_eq!(
        std::fs::read_to_string(prog.join("bin/claude")).unwrap(),
        "real\n"
    );
}

#[test]
fn an_empty_program_prefix_is_installable_by_a_tool_for_one_start_by_agent_init() {
    if skip_unless_root(
        "an_empty_program_prefix_is_installable_by_a_tool_for_one_start_by_agent_init",
    ) {
        return;
    }
    let d = Dir::new();
    let prog = program_dir(&d);
    let o = tool_writes_the_program(&d, &prog);
    assert_exit(&o, 0);
    assert!(stdout(&o).contains("TOOL_WROTE"), "{o:?}");
    assert!(
        stderr(&o).contains("missing or empty, so tools may write it during this start"),
        "{o:?}"
    );
    // The next start finds the program: read-only for tools again.
    let o = tool_writes_the_program(&d, &prog);
    assert!(!stdout(&o).contains("TOOL_WROTE"), "{o:?}");
}
