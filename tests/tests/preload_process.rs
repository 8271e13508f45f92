//! The harness's side: every spawn path puts the tool under the tool layer
//! (proved with a static binary's raw openat, which only Landlock can stop)
//! and strips the secret environment; the harness itself keeps its access and
//! is closed to its tools (signals, /proc/<pid>/environ and mem).

use agent_vault_tests::scaffold::{PYTHON, PythonHarness, raw_reader, raw_script, script};
use agent_vault_tests::*;

/// A tool command that tries the credential with a raw system call and
/// reports whether the secret variable is in its environment.
fn probe_cmd(w: &World) -> String {
    format!(
        "{raw} openat {s}; env | grep -q {SECRET_ENV} && echo ENV_LEAK || echo ENV_CLEAN",
        raw = c_program("rawopen", &["-static", "-O2"]).display(),
        s = w.secret()
    )
}

fn tool_layer_applied(mode: &str) {
    if skip_without_landlock(1) {
        return;
    }
    let w = World::new();
    let r = w.harness(&[mode, &probe_cmd(&w)]);
    w.assert_no_leak(&r);
    assert!(
        r.stdout.contains("DENIED Permission denied"),
        "{mode}: {r:?}"
    );
    assert!(r.stdout.contains("ENV_CLEAN"), "{mode}: {r:?}");
    assert!(!r.all().contains("sk-test-env-secret"), "{mode}: {r:?}");
}

macro_rules! spawn_path_tests {
    ($($name:ident => $mode:literal,)*) => {$(
        /// Spawn path: the tool layer (Landlock) and env filtering apply.
        #[test]
        fn $name() {
            tool_layer_applied($mode);
        }
    )*};
}

spawn_path_tests! {
    spawn_via_fork_execve_gets_the_tool_layer => "fork",
    spawn_via_vfork_execve_gets_the_tool_layer => "vfork",
    spawn_via_execv_gets_the_tool_layer => "execv",
    spawn_via_execvp_gets_the_tool_layer => "execvp",
    spawn_via_execvpe_gets_the_tool_layer => "execvpe",
    spawn_via_execl_gets_the_tool_layer => "execl",
    spawn_via_execlp_gets_the_tool_layer => "execlp",
    spawn_via_execle_gets_the_tool_layer => "execle",
    spawn_via_fexecve_gets_the_tool_layer => "fexecve",
    spawn_via_execveat_gets_the_tool_layer => "execveat",
    spawn_via_posix_spawn_gets_the_tool_layer => "spawn",
    spawn_via_posix_spawnp_gets_the_tool_layer => "spawnp",
    spawn_via_system_gets_the_tool_layer => "system",
    spawn_via_popen_gets_the_tool_layer => "popen",
}

#[test]
fn node_harness_child_process_gets_the_tool_layer() {
    // Node (libuv: fork + execvp) as the harness: its child cannot read the
    // credential even with a raw syscall, while node itself can.
    if skip_without("node", "nodejs") || skip_without_landlock(1) {
        return;
    }
    let w = World::new();
    let script = format!(
        "const cp=require('child_process'), fs=require('fs');\
         console.log('HARNESS', fs.readFileSync('{s}','utf8'));\
         try {{ console.log(cp.execSync({cmd:?}).toString()) }} catch (e) {{ console.log(e.stdout.toString()) }}",
        s = w.secret(),
        cmd = probe_cmd(&w)
    );
    let node = std::path::Path::new("/usr/bin/node");
    let o = w.harness_cmd(node, &["-e", &script]).output().unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains(&format!("HARNESS {}", w.secret_text)), "{out}");
    assert!(out.contains("DENIED Permission denied"), "{out}");
    assert!(out.contains("ENV_CLEAN"), "{out}");
    assert_eq!(out.matches(&w.secret_text).count(), 1, "{out}");
}

#[test]
fn harness_reads_its_credential() {
    // Positive control: the recorded harness pid is trusted.
    let w = World::new();
    let r = w.harness(&["read", w.secret()]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(r.stdout, w.secret_text);
    let r = w.harness(&["read", w.cred_file.to_str().unwrap()]);
    assert_eq!(r.stdout, format!("CRED-{}", w.secret_text));
    assert_eq!(w.audit(), "");
}

#[test]
fn harness_keeps_its_access_after_spawning_from_a_restricted_helper_thread() {
    let w = World::new();
    let r = w.harness(&["spawn-read", &probe_cmd(&w), w.secret()]);
    assert!(r.stdout.contains("DENIED Permission denied"), "{r:?}");
    assert!(
        r.stdout
            .contains(&format!("HARNESS_AFTER {}", w.secret_text)),
        "{r:?}"
    );
}

#[test]
fn kill_usr1_of_the_harness_is_denied_by_landlock_signal_scope() {
    // A tool must not send SIGUSR1 to a Node harness (it opens the inspector).
    if skip_without_landlock(6) {
        return;
    }
    let w = World::new();
    let r = w.harness(&["usr1", "kill -USR1 {HPID}; echo kill_rc=$?"]);
    assert!(r.stdout.contains("kill_rc=1"), "{r:?}");
    assert!(
        !r.stdout.contains("GOT_USR1"),
        "the harness got the signal: {r:?}"
    );
}

#[test]
fn reading_harness_proc_environ_is_denied_by_dumpable_and_landlock() {
    let w = World::new();
    let r = w.tool("cat /proc/{HPID}/environ; echo; stat -c 'owner=%u' /proc/{HPID}/environ");
    assert!(!r.all().contains("sk-test-env-secret"), "{r:?}");
    assert!(r.stderr.contains("Permission denied"), "{r:?}");
    // PR_SET_DUMPABLE 0 makes the harness's /proc files root-owned.
    assert!(r.stdout.contains("owner=0"), "{r:?}");
}

#[test]
fn reading_harness_proc_mem_is_denied_by_dumpable_and_landlock() {
    let w = World::new();
    let r = w.tool(
        "/usr/bin/python3 -c 'import sys; f=open(\"/proc/{HPID}/mem\",\"rb\"); print(\"OPENED\")'; \
         cat /proc/{HPID}/maps | head -1",
    );
    assert!(!r.stdout.contains("OPENED"), "{r:?}");
    assert!(r.stderr.contains("PermissionError"), "{r:?}");
    assert!(r.stderr.contains("Permission denied"), "{r:?}");
}

#[test]
fn env_in_a_tool_has_no_secret_variables() {
    let w = World::new();
    let r = w.tool("env; tr '\\0' '\\n' < /proc/self/environ; tr '\\0' '\\n' < /proc/$$/environ");
    assert!(!r.all().contains(SECRET_ENV), "{r:?}");
    assert!(!r.all().contains("sk-test-env-secret"), "{r:?}");
    assert!(r.stdout.contains("PATH="), "{r:?}");
}

#[test]
fn env_of_a_process_started_outside_the_harness_is_scrubbed_in_place() {
    // `docker exec -e TOKEN=...`: the constructor wipes the value in the
    // memory /proc/self/environ shows and removes the variable.
    let w = World::new();
    let r = w.outsider("env | grep AV_TEST || echo ENV_CLEAN; tr '\\0' '\\n' < /proc/$$/environ");
    assert!(r.stdout.contains("ENV_CLEAN"), "{r:?}");
    assert!(!r.all().contains("sk-test-env-secret"), "{r:?}");
}

#[test]
fn process_started_outside_the_harness_gets_the_tool_layer_from_its_constructor() {
    if skip_without_landlock(1) {
        return;
    }
    let w = World::new();
    let r = w.outsider(&probe_cmd(&w));
    w.assert_no_leak(&r);
    assert!(r.stdout.contains("DENIED Permission denied"), "{r:?}");
}

fn chain_script(w: &World) -> std::path::PathBuf {
    let p = w.ws.join("chain.sh");
    std::fs::write(
        &p,
        format!(
            "#!/bin/sh\nn=$1\nif [ \"$n\" -gt 0 ]; then exec /bin/sh {chain} $((n-1)); fi\n{probe}\n{layers}\necho CHAIN_END\n",
            chain = p.display(),
            probe = probe_cmd(w),
            layers = c_program("layers", &["-O2", "-static"]).display()
        ),
    )
    .unwrap();
    chown_r(&p, HARNESS_UID);
    p
}

#[test]
fn exec_chain_40_deep_from_the_harness_adds_one_layer() {
    // Landlock allows 16 stacked domains: a layer per exec would fail at 17.
    if skip_without_landlock(1) {
        return;
    }
    let w = World::new();
    let chain = chain_script(&w);
    let r = w.tool(&format!("/bin/sh {} 40", chain.display()));
    assert!(r.stdout.contains("CHAIN_END"), "{r:?}");
    assert!(
        r.stdout.contains("LAYERS 1\n"),
        "exactly one Landlock domain: {r:?}"
    );
    assert!(r.stdout.contains("DENIED Permission denied"), "{r:?}");
    assert!(!r.stderr.contains("agent-vault"), "{r:?}");
}

#[test]
fn exec_chain_40_deep_outside_the_harness_adds_one_layer() {
    if skip_without_landlock(1) {
        return;
    }
    let w = World::new();
    let chain = chain_script(&w);
    let r = w.outsider(&format!("/bin/sh {} 40", chain.display()));
    assert!(r.stdout.contains("CHAIN_END"), "{r:?}");
    assert!(
        r.stdout.contains("LAYERS 1\n"),
        "exactly one Landlock domain: {r:?}"
    );
    assert!(r.stdout.contains("DENIED Permission denied"), "{r:?}");
}

#[test]
fn tool_layer_failure_with_landlock_required_exits_126() {
    // 16 domains already stacked: the tool layer cannot be added, and the
    // child must not run its program unrestricted.
    if skip_without_landlock(1) {
        return;
    }
    let w = World::new();
    let stack = c_program("stack16", &["-static", "-O2"]);
    let h = w.harness.to_str().unwrap().to_string();
    let o = w
        .harness_cmd(&stack, &[&h, "fork", "echo RAN_UNRESTRICTED"])
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(126), "{out}{err}");
    assert!(!out.contains("RAN_UNRESTRICTED"), "{out}");
    assert!(
        err.contains("agent-vault: cannot apply the tool layer"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    // posix_spawn from the harness: refused with an error, nothing runs.
    let o = w
        .harness_cmd(&stack, &[&h, "spawn", "echo RAN_UNRESTRICTED"])
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(!out.contains("RAN_UNRESTRICTED"), "{out}");
    assert_ne!(o.status.code(), Some(0));
}

#[test]
fn tool_layer_failure_with_landlock_best_effort_runs_with_the_preload_only() {
    if skip_without_landlock(1) {
        return;
    }
    let w = World::with_policy_extra("best-effort", "");
    let stack = c_program("stack16", &["-static", "-O2"]);
    let h = w.harness.to_str().unwrap().to_string();
    let cmd = format!("echo RAN; cat {}", w.secret());
    let o = w.harness_cmd(&stack, &[&h, "fork", &cmd]).output().unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(out.contains("RAN"), "{out}{err}");
    assert!(!out.contains(&w.secret_text), "{out}");
    assert!(err.contains("preload's checks only"), "{err}");
}

// Positive controls: tools work normally.

#[test]
fn tools_read_and_write_workspace_tmp_and_read_usr() {
    let w = World::new();
    let r = w.tool(
        "echo ws-ok > ./w.txt && cat ./w.txt && d=$(mktemp -d /tmp/avpos.XXXXXX) && echo tmp-ok > $d/t && cat $d/t && rm -r $d \
         && head -c 4 /usr/bin/env | od -c | head -1 && ls /usr/share >/dev/null && echo usr-ok \
         && cat /etc/hostname >/dev/null && echo etc-ok && ls / >/dev/null && echo root-ls-ok",
    );
    assert_eq!(r.code, 0, "{r:?}");
    for s in ["ws-ok", "tmp-ok", "usr-ok", "etc-ok", "root-ls-ok"] {
        assert!(r.stdout.contains(s), "{s}: {r:?}");
    }
    assert_eq!(w.audit(), "");
}

#[test]
fn tools_can_list_but_not_read_the_vault_parent() {
    let w = World::new();
    let r = w.tool(&format!("ls {}", w.dir.path().display()));
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.stdout.contains("ws") && r.stdout.contains("vault"),
        "{r:?}"
    );
}

#[test]
fn pty_opens_in_a_tool() {
    let w = World::new();
    let r = w.tool(
        "/usr/bin/python3 -c 'import pty,os; m,s=pty.openpty(); print(\"PTY_OK\", os.ttyname(s))'",
    );
    assert!(r.stdout.contains("PTY_OK /dev/pts/"), "{r:?}");
}

#[test]
fn git_works_in_a_tool() {
    if skip_without("git", "git") {
        return;
    }
    let w = World::new();
    let r = w.tool(
        "git init -q repo && cd repo && git config user.email t@e.st && git config user.name t \
         && echo hi > f && git add f && git commit -qm first && git log --oneline | wc -l && git status --short && echo GIT_OK",
    );
    assert!(r.stdout.contains("GIT_OK"), "{r:?}");
}

#[test]
fn node_works_in_a_tool() {
    if skip_without("node", "nodejs") {
        return;
    }
    let w = World::new();
    let r = w.tool(
        "node -e 'const fs=require(\"fs\"); fs.writeFileSync(\"n.txt\",\"node-ok\"); fs.promises.readFile(\"n.txt\",\"utf8\").then(s=>console.log(s, require(\"child_process\").execSync(\"echo child-ok\").toString().trim()))'",
    );
    assert!(r.stdout.contains("node-ok child-ok"), "{r:?}");
}

#[test]
fn python_works_in_a_tool() {
    let w = World::new();
    let r = w.tool(
        "/usr/bin/python3 -c 'import subprocess,json,tempfile,os; p=tempfile.mkstemp()[1]; open(p,\"w\").write(\"x\"); os.unlink(p); print(json.dumps({\"ok\": subprocess.run([\"echo\",\"py\"],capture_output=True,text=True).stdout.strip()}))'",
    );
    assert!(r.stdout.contains("{\"ok\": \"py\"}"), "{r:?}");
}

#[test]
fn bash_works_in_a_tool() {
    let w = World::new();
    let r = w.tool(
        "bash -c 'for i in 1 2 3; do echo $i; done > b.txt; mapfile -t a < b.txt; echo ${#a[@]}; (cd /tmp && pwd); echo $(( 6*7 ))'",
    );
    assert_eq!(r.stdout, "3\n/tmp\n42\n", "{r:?}");
}

#[test]
fn probe_marker_file_detects_the_tool_layer_with_an_empty_vault() {
    // With a readable file of any name in probe/, detection (by listing)
    // works even when the vault holds no file yet: one layer for a 40-deep
    // chain started outside.
    if skip_without_landlock(1) {
        return;
    }
    let w = World::new();
    std::fs::remove_file(&w.secret).unwrap();
    std::fs::remove_file(&w.cred_file).unwrap();
    w.remove_probe_file();
    w.add_probe_marker();
    let chain = chain_script(&w);
    let r = w.outsider(&format!("/bin/sh {} 40", chain.display()));
    assert!(r.stdout.contains("CHAIN_END"), "{r:?}");
    assert!(r.stdout.contains("LAYERS 1\n"), "{r:?}");
}

#[test]
fn nothing_to_probe_means_no_constructor_layer_but_path_checks_remain() {
    // Documented fallback: an empty probe dir and a vault without files give
    // the constructor nothing to probe, so a process started outside the
    // harness gets no layer (there is nothing on disk to hide); the open
    // hooks still deny vault paths, e.g. a credential created later (which
    // also gives the next process's probe a file: it then applies the layer).
    let w = World::new();
    std::fs::remove_file(&w.secret).unwrap();
    w.remove_probe_file();
    let layers = c_program("layers", &["-O2", "-static"]);
    let r = w.outsider(&format!("{}", layers.display()));
    assert!(r.stdout.contains("LAYERS 0"), "{r:?}");
    std::fs::write(w.vault.join("later.json"), "LATER").unwrap();
    let r = w.outsider(&format!("cat {}/later.json", w.vault.display()));
    assert!(!r.stdout.contains("LATER"), "{r:?}");
    assert!(r.stderr.contains("Permission denied"), "{r:?}");
}

#[test]
fn without_a_session_the_builtin_vault_is_denied_by_preload_and_landlock() {
    // No agent-init session: no state directory anywhere. The preload falls
    // back to the built-in policy (policy/default.toml's vault), expanded
    // with the process's own HOME and environment, and (Landlock "required"
    // there) puts the process under a tool layer that hides that vault.
    let w = World::new();
    let home = w.dir.path().join("home");
    let cfg = w.dir.path().join("cfg");
    let no_pi = w.dir.path().join("no-pi-agent");
    std::fs::create_dir_all(home.join(".claude")).unwrap();
    std::fs::create_dir_all(&cfg).unwrap();
    std::fs::write(home.join(".claude/.credentials.json"), "HOME-CLAUDE-SECRET").unwrap();
    std::fs::write(cfg.join(".credentials.json"), "CFG-CLAUDE-SECRET").unwrap();
    std::fs::write(home.join("notes.txt"), "PLAIN-NOTES").unwrap();
    chown_r(w.dir.path(), HARNESS_UID);
    let static_read = c_program("rawopen", &["-O2", "-static"]);
    let r = run_without_session(
        &w.so,
        &format!(
            "cat $HOME/notes.txt; cat $HOME/.claude/.credentials.json; cat $CLAUDE_CONFIG_DIR/.credentials.json; {} openat $CLAUDE_CONFIG_DIR/.credentials.json; {} openat $HOME/.claude/.credentials.json",
            static_read.display(),
            static_read.display()
        ),
        &[
            ("HOME", home.to_str().unwrap()),
            ("CLAUDE_CONFIG_DIR", cfg.to_str().unwrap()),
            // Not the machine's /pi-agent, whatever is there.
            ("PI_CODING_AGENT_DIR", no_pi.to_str().unwrap()),
        ],
    );
    assert!(r.stdout.contains("PLAIN-NOTES"), "{r:?}");
    assert!(!r.all().contains("HOME-CLAUDE-SECRET"), "{r:?}");
    assert!(!r.all().contains("CFG-CLAUDE-SECRET"), "{r:?}");
    assert!(r.stderr.contains("Permission denied"), "{r:?}");
    if !skip_without_landlock(1) {
        assert_eq!(r.stdout.matches("DENIED").count(), 2, "raw openat: {r:?}");
    }
    // CLAUDE_CONFIG_DIR set to ~/.claude: two built-in entries expand to one
    // path; the preload keeps one, as agent-init merges them.
    let dot_claude = home.join(".claude");
    let r = run_without_session(
        &w.so,
        "cat $HOME/notes.txt; cat $CLAUDE_CONFIG_DIR/.credentials.json",
        &[
            ("HOME", home.to_str().unwrap()),
            ("CLAUDE_CONFIG_DIR", dot_claude.to_str().unwrap()),
        ],
    );
    assert!(r.stdout.contains("PLAIN-NOTES"), "{r:?}");
    assert!(!r.all().contains("HOME-CLAUDE-SECRET"), "{r:?}");
    assert!(r.stderr.contains("Permission denied"), "{r:?}");
}

#[test]
fn a_damaged_policy_image_refuses_to_run_tools() {
    // A session whose policy.bin does not decode: every unprivileged process
    // exits 126 with one line naming the file, rather than guess the vault.
    let w = World::new();
    let mut image = std::fs::read(w.state.join(policy::layout::POLICY_IMAGE.name)).unwrap();
    let n = image.len();
    image[n / 2] ^= 0xff;
    image.truncate(n - 3);
    std::fs::write(w.state.join(policy::layout::POLICY_IMAGE.name), image).unwrap();
    let r = w.outsider(&format!("cat {}", w.secret()));
    assert_eq!(r.code, 126, "{r:?}");
    assert!(
        r.stderr
            .contains("/run/agent-vault/policy.bin: damaged policy image (byte "),
        "{r:?}"
    );
    assert!(r.stderr.contains("refusing to run"), "{r:?}");
    w.assert_no_leak(&r);
}

/// The atomic-save tests' world: `save.tmp` (holding `NEW-CREDENTIAL`)
/// beside the vault file, in a directory the harness user owns; a Python
/// harness; and a reader that opens the vault file with a raw `openat`
/// (`R READ ...` or `R DENIED ...`). Returns the world, that directory,
/// the harness and the reader's script.
fn atomic_save_world() -> (World, std::path::PathBuf, PythonHarness, String) {
    let w = World::new();
    let home = w.cred_file.parent().unwrap().to_path_buf();
    std::fs::write(home.join("save.tmp"), "NEW-CREDENTIAL").unwrap();
    chown_r(&home, HARNESS_UID);
    let py = PythonHarness::new(&w);
    let reader = raw_reader("R", &w.cred_file);
    (w, home, py, reader)
}

#[test]
fn a_harness_fork_child_that_execs_later_gets_a_current_ruleset_from_landlock() {
    // The harness caches the tool layer's ruleset. A sibling of a vault
    // `file` entry gets a rule in it (it is not the vault). If that file is
    // later renamed over the vault file (an atomic save), a ruleset built
    // before the rename would let a tool read the new credential through
    // the sibling's rule. A worker forked by the harness that does the save
    // and then spawns a tool (or execs one itself) must give it a ruleset
    // checked at that moment, not the one validated when the worker was born.
    if skip_without_landlock(1) {
        return;
    }
    let (w, home, py, reader) = atomic_save_world();
    let harness = script(&format!(
        r#"
R = ["{PYTHON}", "{r}"]
run(R + ["first"])
pid = os.fork()
if pid == 0:
    os.rename("{home}/save.tmp", "{cred}")
    run(R + ["grandchild"])
    os.execv(R[0], R + ["worker"])
os.waitpid(pid, 0)
"#,
        r = py.reader().display(),
        home = home.display(),
        cred = w.cred_file.display()
    ));
    let r = py.run(&w, &harness, &reader);
    assert_eq!(r.stdout.matches("R DENIED").count(), 3, "{r:?}");
    assert!(!r.stdout.contains("NEW-CREDENTIAL"), "{r:?}");
}

#[test]
fn an_atomic_save_right_after_a_spawn_is_caught_by_the_next_child_by_landlock() {
    // The harness validates its cached ruleset before a fork only when its
    // last validation is older than 50 ms (a burst of spawns pays for one);
    // the check that counts is each child's own, right before it applies
    // the ruleset. Here the harness spawns, then at once renames a file the
    // walk gave a rule (`save.tmp`, beside the vault file) over the vault
    // file, and spawns a reader: within that window the harness does not
    // look again, so only the child's check keeps the stale ruleset (which
    // grants the renamed file) from giving the reader the new credential.
    if skip_without_landlock(1) {
        return;
    }
    let (w, home, py, reader) = atomic_save_world();
    let harness = script(&format!(
        r#"
t0 = time.monotonic()
first = spawn(["/bin/true"])
os.rename("{home}/save.tmp", "{cred}")
second = spawn(["{PYTHON}", "{r}"])
print("WITHIN_WINDOW", time.monotonic() - t0 < 0.05, flush=True)
os.waitpid(first, 0)
os.waitpid(second, 0)
"#,
        r = py.reader().display(),
        home = home.display(),
        cred = w.cred_file.display()
    ));
    let r = py.run(&w, &harness, &reader);
    assert!(r.stdout.contains("R DENIED"), "{r:?}");
    assert!(!r.stdout.contains("NEW-CREDENTIAL"), "{r:?}");
    // Both spawns fell in one validation window (else the harness would
    // have validated again, and this test would not try the child's check).
    assert!(r.stdout.contains("WITHIN_WINDOW True"), "{r:?}");
}

#[test]
fn a_failed_ruleset_rebuild_is_not_replaced_by_the_stale_one_by_landlock() {
    // When the cached ruleset is stale and its rebuild cannot be cached (a
    // base rule path cannot be opened: here a symlink loop), children must
    // not fall back to the old one: after an atomic save over the vault
    // file, it would grant the credential through the saved file's former
    // rule.
    if skip_without_landlock(1) {
        return;
    }
    let (w, home, py, reader) = atomic_save_world();
    let harness = script(&format!(
        r#"
R = ["{PYTHON}", "{r}"]
run(R + ["first"])
os.chdir("/")
os.rmdir("{ws}")
os.symlink("{ws}", "{ws}")
os.rename("{home}/save.tmp", "{cred}")
run(R + ["second"])
"#,
        r = py.reader().display(),
        ws = w.ws.display(),
        home = home.display(),
        cred = w.cred_file.display()
    ));
    let r = py.run(&w, &harness, &reader);
    assert_eq!(r.stdout.matches("R DENIED").count(), 2, "{r:?}");
    assert!(!r.stdout.contains("NEW-CREDENTIAL"), "{r:?}");
}

#[test]
fn a_foreign_ruleset_at_the_cached_fd_number_is_not_applied_by_landlock() {
    // The harness's cached tool-layer ruleset is an fd number. A harness
    // that closes it (closing every fd, as daemons do) and then creates a
    // Landlock ruleset of its own gets the same number back. Its children
    // must not restrict themselves with that ruleset (here one that handles
    // only device creation, so it would leave the vault readable), and the
    // cache must not close the harness's own fd when it rebuilds. The tool
    // is a static program: no preload constructor of its own would notice
    // the missing layer and apply it.
    if skip_without_landlock(1) {
        return;
    }
    let w = World::new();
    let py = PythonHarness::new(&w);
    let raw = c_program("rawopen", &["-O2", "-static"]);
    let harness = script(&format!(
        r#"
import ctypes, struct
def ruleset_fds():
    out = []
    for f in os.listdir("/proc/self/fd"):
        try:
            if "landlock-ruleset" in os.readlink("/proc/self/fd/" + f):
                out.append(int(f))
        except OSError:
            pass
    return out
R = ["{raw}", "openat", "{cred}"]
run(R)
(cached,) = ruleset_fds()
os.close(cached)
libc = ctypes.CDLL(None, use_errno=True)
attr = ctypes.create_string_buffer(struct.pack("Q", 1 << 6))  # LANDLOCK_ACCESS_FS_MAKE_CHAR
mine = libc.syscall(444, attr, 8, 0)
print("SAME_NUMBER", mine == cached, flush=True)
run(R)
run(R)
print("MINE_STILL_OPEN", "landlock-ruleset" in os.readlink("/proc/self/fd/%d" % mine), flush=True)
"#,
        raw = raw.display(),
        cred = w.secret(),
    ));
    let r = py.run(&w, &harness, "");
    assert!(r.stdout.contains("SAME_NUMBER True"), "{r:?}");
    assert_eq!(r.stdout.matches("DENIED").count(), 3, "{r:?}");
    w.assert_no_leak(&r);
    assert!(r.stdout.contains("MINE_STILL_OPEN True"), "{r:?}");
}

#[test]
fn a_new_entry_beside_the_vault_reaches_the_next_tool_and_the_vault_stays_closed_by_landlock() {
    // A new entry in a directory the walk listed (the harness saves a file
    // next to the vault file, in `~`) makes the cached ruleset stale: the
    // harness rebuilds it once, before its next spawn. The next tool gets a
    // rule for the new entry (it can read it), still none for the vault,
    // and the harness keeps one cached ruleset, not one per change.
    if skip_without_landlock(1) {
        return;
    }
    let w = World::new();
    let home = w.cred_file.parent().unwrap().to_path_buf();
    chown_r(&home, HARNESS_UID);
    let py = PythonHarness::new(&w);
    let reader = raw_script(&format!(
        r#"
raw("R", "{cred}")
raw("N", sys.argv[1])
"#,
        cred = w.secret(),
    ));
    let harness = script(&format!(
        r#"{COUNT_RULESETS}
R = ["{PYTHON}", "{r}"]
run(R + ["/nonexistent"])
for i in range(3):
    p = "{home}/saved-%d.txt" % i
    with open(p, "w") as f:
        f.write("SAVED-%d" % i)
    run(R + [p])
print("CACHED", rulesets(), flush=True)
"#,
        r = py.reader().display(),
        home = home.display(),
    ));
    let r = py.run(&w, &harness, &reader);
    w.assert_no_leak(&r);
    assert_eq!(r.stdout.matches("R DENIED").count(), 4, "{r:?}");
    for i in 0..3 {
        assert!(r.stdout.contains(&format!("N READ b'SAVED-{i}'")), "{r:?}");
    }
    assert!(r.stdout.contains("CACHED 1"), "{r:?}");
}

/// Python: how many Landlock ruleset fds this process holds (the harness's
/// cached tool-layer ruleset is one).
const COUNT_RULESETS: &str = r#"
def rulesets():
    n = 0
    for f in os.listdir("/proc/self/fd"):
        try:
            n += "landlock-ruleset" in os.readlink("/proc/self/fd/" + f)
        except OSError:
            pass
    return n
"#;

#[test]
fn a_ruleset_cached_while_a_base_path_is_missing_is_rebuilt_when_it_appears_by_landlock() {
    // A base rule path that does not exist (a `tool_exceptions` directory
    // not created yet, a policy's /workspace in a container without one)
    // gets no rule. The harness still keeps the ruleset it built (before,
    // it dropped it, and every child walked again); a save over the vault
    // file still invalidates it, and once the missing path appears the next
    // tool gets its rule.
    if skip_without_landlock(1) {
        return;
    }
    std::fs::create_dir_all(TEST_ROOT).unwrap();
    let extra_dir = tempfile::Builder::new()
        .prefix("av-test-extra-")
        .tempdir_in(TEST_ROOT)
        .unwrap();
    let vault2 = extra_dir.path().join("vault2");
    std::fs::create_dir(&vault2).unwrap();
    std::fs::write(vault2.join("secret"), "VAULT2-SECRET").unwrap();
    chown_r(extra_dir.path(), HARNESS_UID);
    let w = World::with_policy_extra(
        "required",
        &format!(
            "[[vault.entry]]\nname = \"test-vault2\"\ndir = \"{}\"\ntool_exceptions = [\"snap\"]\n",
            vault2.display()
        ),
    );
    let home = w.cred_file.parent().unwrap().to_path_buf();
    std::fs::write(home.join("save.tmp"), "NEW-CREDENTIAL").unwrap();
    chown_r(&home, HARNESS_UID);
    let py = PythonHarness::new(&w);
    let snap = vault2.join("snap");
    std::fs::create_dir_all(&py.dir).unwrap();
    let snap_reader = py.dir.join("snap_reader.py");
    std::fs::write(&snap_reader, raw_reader("S", &snap.join("notes"))).unwrap();
    let reader = raw_reader("R", &w.cred_file);
    let harness = script(&format!(
        r#"{COUNT_RULESETS}
R = ["{PYTHON}", "{r}"]
run(R + ["first"])
print("CACHED", rulesets(), flush=True)
os.rename("{home}/save.tmp", "{cred}")
run(R + ["second"])
os.mkdir("{snap}")
with open("{snap}/notes", "w") as f:
    f.write("SNAPSHOT-NOTES")
run(["{PYTHON}", "{sr}"])
run(["{PYTHON}", "{sr}"])
print("CACHED", rulesets(), flush=True)
"#,
        r = py.reader().display(),
        home = home.display(),
        cred = w.cred_file.display(),
        snap = snap.display(),
        sr = snap_reader.display(),
    ));
    let r = py.run(&w, &harness, &reader);
    assert_eq!(r.stdout.matches("CACHED 1").count(), 2, "{r:?}");
    assert_eq!(r.stdout.matches("R DENIED").count(), 2, "{r:?}");
    assert!(!r.stdout.contains("NEW-CREDENTIAL"), "{r:?}");
    assert_eq!(
        r.stdout.matches("S READ b'SNAPSHOT-NOTES'").count(),
        2,
        "{r:?}"
    );
}

#[test]
fn a_vfork_child_of_the_harness_gets_a_current_cached_ruleset_from_landlock() {
    // Python's subprocess spawns with vfork, which runs no pthread_atfork
    // handler: the preload's `vfork` brings the cache up to date in the
    // harness first (before, it was never built, and every child walked),
    // so after an atomic save over the vault file the next tool still
    // cannot read it through the saved file's former rule.
    if skip_without_landlock(1) {
        return;
    }
    let (w, home, py, reader) = atomic_save_world();
    let harness = script(&format!(
        r#"{COUNT_RULESETS}
import subprocess
R = ["{PYTHON}", "{r}"]
subprocess.run(R + ["first"])
print("CACHED", rulesets(), flush=True)
os.rename("{home}/save.tmp", "{cred}")
subprocess.run(R + ["second"])
print("CACHED", rulesets(), flush=True)
"#,
        r = py.reader().display(),
        home = home.display(),
        cred = w.cred_file.display()
    ));
    let r = py.run(&w, &harness, &reader);
    assert_eq!(r.stdout.matches("CACHED 1").count(), 2, "{r:?}");
    assert_eq!(r.stdout.matches("R DENIED").count(), 2, "{r:?}");
    assert!(!r.stdout.contains("NEW-CREDENTIAL"), "{r:?}");
}

#[test]
fn a_subprocess_tool_gets_neither_the_credential_nor_the_kept_ruleset_fd_from_landlock() {
    // Python's subprocess closes every fd but the passed ones in the child
    // (close_range) before it execs; the preload keeps the harness's cached
    // ruleset open through that, so the child need not build its own. That
    // fd is close-on-exec: the tool must not have it, must be under the
    // tool layer, and must get the fd it was passed (the ranges around the
    // kept one are still closed and the passed one left open).
    if skip_without_landlock(1) {
        return;
    }
    let w = World::new();
    let py = PythonHarness::new(&w);
    let notes = w.ws.join("notes.txt");
    std::fs::write(&notes, "PASSED-NOTES").unwrap();
    chown_r(&w.ws, HARNESS_UID);
    let reader = raw_script(&format!(
        r#"{COUNT_RULESETS}
raw("R", "{cred}")
fd = int(sys.argv[1])
print("PASSED", os.read(fd, 100))
print("TOOL_RULESETS", rulesets())
"#,
        cred = w.secret(),
    ));
    let harness = script(&format!(
        r#"{COUNT_RULESETS}
import subprocess
R = ["{PYTHON}", "{r}"]
for i in range(2):
    fd = os.open("{notes}", os.O_RDONLY)
    subprocess.run(R + [str(fd)], pass_fds=[fd])
    os.close(fd)
print("CACHED", rulesets(), flush=True)
"#,
        r = py.reader().display(),
        notes = notes.display(),
    ));
    let r = py.run(&w, &harness, &reader);
    w.assert_no_leak(&r);
    assert_eq!(r.stdout.matches("R DENIED").count(), 2, "{r:?}");
    assert_eq!(
        r.stdout.matches("PASSED b'PASSED-NOTES'").count(),
        2,
        "{r:?}"
    );
    assert_eq!(r.stdout.matches("TOOL_RULESETS 0").count(), 2, "{r:?}");
    assert!(r.stdout.contains("CACHED 1"), "{r:?}");
}

#[test]
fn an_unreadable_policy_image_refuses_to_run_tools() {
    // Unreadable is not missing: a tool that could hide policy.bin from its
    // children (a Landlock layer of its own, an fd limit, permissions) must
    // not get them the built-in vault instead of the session's.
    let w = World::new();
    std::fs::set_permissions(
        w.state.join(policy::layout::POLICY_IMAGE.name),
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    let r = w.outsider(&format!("cat {}", w.secret()));
    assert_eq!(r.code, 126, "{r:?}");
    assert!(
        r.stderr.contains(
            "/run/agent-vault/policy.bin: cannot read the policy image (errno 13); refusing to run"
        ),
        "{r:?}"
    );
    w.assert_no_leak(&r);
}

#[test]
fn a_save_temporary_renamed_over_a_vault_file_stays_closed_by_landlock() {
    // A running tool's Landlock rules follow inodes: had the tool layer
    // granted `.cred.json.tmp` (beside the vault file `.cred.json`), the
    // tool could read the credential once the harness's atomic save renamed
    // the temporary over it. Files named like a vault file (its backups and
    // save temporaries) get no rule; other siblings still do.
    if skip_without_landlock(1) {
        return;
    }
    let w = World::new();
    let home = w.cred_file.parent().unwrap().to_path_buf();
    std::fs::write(home.join(".cred.json.tmp"), "SAVED-CREDENTIAL").unwrap();
    std::fs::write(home.join(".cred.json.backup"), "BACKUP-CREDENTIAL").unwrap();
    std::fs::write(home.join("notes.txt"), "PLAIN-NOTES").unwrap();
    chown_r(&home, HARNESS_UID);
    let py = PythonHarness::new(&w);
    let ws = w.ws.display();
    let reader = raw_script(&format!(
        r#"
open("{ws}/ready", "w").close()
wait_for("{ws}/go")
raw("cred", "{cred}")
raw("backup", "{home}/.cred.json.backup")
raw("notes", "{home}/notes.txt")
"#,
        cred = w.cred_file.display(),
        home = home.display()
    ));
    let harness = script(&format!(
        r#"
pid = spawn(["{PYTHON}", "{r}"])
wait_for("{ws}/ready")
os.rename("{home}/.cred.json.tmp", "{cred}")
open("{ws}/go", "w").close()
os.waitpid(pid, 0)
"#,
        r = py.reader().display(),
        home = home.display(),
        cred = w.cred_file.display()
    ));
    let r = py.run(&w, &harness, &reader);
    assert!(r.stdout.contains("cred DENIED"), "{r:?}");
    assert!(r.stdout.contains("backup DENIED"), "{r:?}");
    assert!(r.stdout.contains("notes READ b'PLAIN-NOTES'"), "{r:?}");
    assert!(!r.stdout.contains("CREDENTIAL"), "{r:?}");
}

#[test]
fn a_harness_child_that_retries_exec_gets_one_layer_by_landlock() {
    // execvp-style loops (Python's subprocess, for one) call execve once per
    // PATH directory. Each attempt must not stack another Landlock layer:
    // the kernel refuses a 17th, and the child would exit 126.
    if skip_without_landlock(1) {
        return;
    }
    let w = World::new();
    let layers = c_program("layers", &["-O2", "-static"]);
    let r = w.harness(&[
        "execloop",
        "40",
        &format!("{}; cat {}", layers.display(), w.secret()),
    ]);
    assert!(r.stdout.contains("LAYERS 1"), "{r:?}");
    w.assert_no_leak(&r);
    assert!(r.stderr.contains("Permission denied"), "{r:?}");
}

#[test]
fn a_secret_by_pattern_is_removed_from_a_tool_by_the_preload_and_a_kept_one_stays() {
    let w = World::with_vault_keys(
        "secret_env_patterns = [\"*_API_KEY\", \"*_SECRET*\"]\nkeep_env = [\"PUBLIC_API_KEY\"]",
    );
    let r = w
        .harness_cmd(
            &harness_bin(),
            &["fork", "env; tr '\\0' '\\n' < /proc/$$/environ"],
        )
        .env("FOO_API_KEY", "sk-foo-by-pattern")
        .env("AWS_SECRET_ACCESS_KEY", "aws-by-pattern")
        .env("PUBLIC_API_KEY", "kept-public-value")
        .output()
        .expect("run harness");
    let r = Run::from(r);
    assert!(!r.all().contains("FOO_API_KEY"), "{r:?}");
    assert!(!r.all().contains("sk-foo-by-pattern"), "{r:?}");
    assert!(!r.all().contains("aws-by-pattern"), "{r:?}");
    assert!(
        r.stdout.contains("PUBLIC_API_KEY=kept-public-value"),
        "{r:?}"
    );
}

/// Run the test harness with `args`, a new pty as its controlling terminal
/// (and stdin, as for an interactive harness), stdout and stderr piped.
fn harness_on_a_pty(w: &World, args: &[&str]) -> Run {
    use std::os::fd::FromRawFd;
    use std::os::unix::process::CommandExt;
    let (mut master, mut slave) = (-1, -1);
    // SAFETY: `master` and `slave` are locals the call fills; no name,
    // termios or window size (null).
    let r = unsafe {
        libc::openpty(
            &mut master,
            &mut slave,
            std::ptr::null_mut(),
            std::ptr::null(),
            std::ptr::null(),
        )
    };
    assert_eq!(r, 0, "openpty: {}", std::io::Error::last_os_error());
    // SAFETY: `master` is the fd openpty just returned, owned here only.
    let master = unsafe { std::os::fd::OwnedFd::from_raw_fd(master) };
    let mut c = w.harness_cmd(&w.harness, args);
    // SAFETY: `slave` is the fd openpty just returned; the Command owns it.
    c.stdin(unsafe { std::process::Stdio::from_raw_fd(slave) });
    let take_the_pty = || {
        // SAFETY: no pointer arguments; async-signal-safe.
        let session = unsafe { libc::setsid() };
        // SAFETY: integer arguments on the child's own fd 0 (the pty); async-signal-safe.
        if session < 0 || unsafe { libc::ioctl(0, libc::TIOCSCTTY, 0) } < 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(())
    };
    // SAFETY: the hook runs in the child between fork and exec and makes only
    // the two async-signal-safe system calls above.
    unsafe { c.pre_exec(take_the_pty) };
    let o = c.output().expect("run harness on a pty");
    drop(master);
    Run::from(o)
}

/// A tool that opens `/dev/tty` and says what it got.
const OPEN_TTY: &str = "python3 -c \"import os,errno\ntry:\n  os.open('/dev/tty', os.O_RDWR); print('TTY_OPENED')\nexcept OSError as e:\n  print('TTY_' + errno.errorcode[e.errno])\"";

#[test]
fn a_tool_opening_dev_tty_gets_enxio_by_the_preload_on_fork_exec() {
    let w = World::new();
    let r = harness_on_a_pty(&w, &["fork", OPEN_TTY]);
    assert!(r.stdout.contains("TTY_ENXIO"), "{r:?}");
}

#[test]
fn a_tool_opening_dev_tty_gets_enxio_by_the_preload_on_posix_spawn_and_system() {
    let w = World::new();
    for mode in ["spawn", "system", "popen"] {
        let r = harness_on_a_pty(&w, &[mode, OPEN_TTY]);
        assert!(r.stdout.contains("TTY_ENXIO"), "{mode}: {r:?}");
    }
}

#[test]
fn tools_keep_the_terminal_when_the_policy_says_so() {
    // Also proves the two tests above start the harness with a terminal.
    let w = World::with_policy(
        if landlock_abi() >= 1 {
            "required"
        } else {
            "best-effort"
        },
        "",
        "[tools]\nkeep_terminal = true",
        "",
    );
    for mode in ["fork", "spawn"] {
        let r = harness_on_a_pty(&w, &[mode, OPEN_TTY]);
        assert!(r.stdout.contains("TTY_OPENED"), "{mode}: {r:?}");
    }
}

#[test]
fn a_tool_keeps_the_harness_process_group_on_fork_exec() {
    // Ctrl-C reaches a forked tool as before: the preload gives up the
    // terminal without a new session or process group.
    let w = World::new();
    let r = harness_on_a_pty(
        &w,
        &[
            "fork",
            "test \"$(cut -d' ' -f5 /proc/$$/stat)\" = \"$(cut -d' ' -f5 /proc/$PPID/stat)\" && echo SAME_PGRP",
        ],
    );
    assert!(r.stdout.contains("SAME_PGRP"), "{r:?}");
}

#[test]
fn a_tools_chmod_chown_utime_and_xattr_on_the_vault_are_refused_by_the_preload() {
    // Landlock has no right for these: a refusal here is the preload's.
    let w = World::new();
    let vault = w.vault.display().to_string();
    let secret = w.secret.display().to_string();
    let script = format!(
        "import os\n\
         def t(name, f):\n\
         \x20   try:\n\
         \x20       f(); print(name, 'DONE')\n\
         \x20   except OSError as e:\n\
         \x20       print(name, 'REFUSED', e.errno)\n\
         t('chmod-dir', lambda: os.chmod('{vault}', 0))\n\
         t('chmod-file', lambda: os.chmod('{secret}', 0))\n\
         t('chown', lambda: os.chown('{vault}', os.getuid(), os.getgid()))\n\
         t('lchown', lambda: os.lchown('{secret}', os.getuid(), os.getgid()))\n\
         t('utime', lambda: os.utime('{secret}', (0, 0)))\n\
         t('setxattr', lambda: os.setxattr('{vault}', 'user.x', b'1'))\n\
         t('removexattr', lambda: os.removexattr('{vault}', 'user.x'))\n\
         t('relative', lambda: os.chmod('{vault}/../{name}', 0))\n\
         os.symlink('{vault}', 'via-link')\n\
         t('symlink', lambda: os.chmod('via-link', 0))\n\
         open('mine', 'w').close()\n\
         t('workspace', lambda: os.chmod('mine', 0o600))\n",
        name = w.vault.file_name().unwrap().to_str().unwrap(),
    );
    std::fs::write(w.ws.join("attrs.py"), script).unwrap();
    let r = w.tool(&format!(
        "chmod 000 {vault}; echo sh-chmod=$?; {PYTHON} attrs.py"
    ));
    for op in [
        "chmod-dir",
        "chmod-file",
        "chown",
        "lchown",
        "utime",
        "setxattr",
        "removexattr",
        "relative",
        "symlink",
    ] {
        assert!(
            r.stdout.contains(&format!("{op} REFUSED {}", libc::EPERM)),
            "{op}: {r:?}"
        );
    }
    assert!(r.stdout.contains("sh-chmod=1"), "{r:?}");
    assert!(r.stdout.contains("workspace DONE"), "{r:?}");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&w.vault).unwrap().permissions().mode() & 0o7777,
        0o700
    );
    assert!(
        w.harness(&["read", &secret])
            .stdout
            .contains(&w.secret_text)
    );
}
