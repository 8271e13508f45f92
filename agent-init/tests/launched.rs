//! Trusted launchers, attacked: a runner (the harness agent-init starts)
//! launches a listed harness, which reads its own credential, while
//! everything that harness starts, and every other way to reach the same
//! program, stays a tool. Run as root (agent-init in a private mount
//! namespace with a fresh `/run`), the harness as nobody, the release
//! preload loaded through `LD_PRELOAD`, Landlock and seccomp required.
//!
//! The launchers are copies of the system shell (a binary launcher) and a
//! `#!/bin/sh` script, root-owned in the test's directory; the credential
//! file is world-readable, so only agent-vault stands in the way.

mod common;
use common::*;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// One test's world.
struct World {
    d: Dir,
    /// The listed binary launcher (a copy of `/bin/sh`).
    pi: PathBuf,
    /// The listed script launcher (`#!/bin/sh`, runs [`PROBE`]).
    pi_script: PathBuf,
    /// An unlisted copy of the same shell.
    other: PathBuf,
    /// The static raw-`openat` reader (`tests/src/c/rawopen.c`).
    raw: PathBuf,
    /// The credential, in the vault entry `pi`.
    auth: PathBuf,
    key: String,
    policy: PathBuf,
}

/// What a launched (or not) shell runs: its own read, then tools (`cat`,
/// the raw reader, its `/proc` files, `env`); one line each, prefixed.
const PROBE: &str = r#"
me=$$
if read -r l < "$AUTH"; then echo "$TAG self READ $l"; else echo "$TAG self DENIED"; fi
echo "$TAG self-env ${AV_TEST_SECRET:-unset}"
if out=$(cat "$AUTH" 2>&1); then echo "$TAG cat READ $out"; else echo "$TAG cat DENIED"; fi
echo "$TAG raw $("$RAW" openat "$AUTH")"
echo "$TAG proc-environ $("$RAW" openat /proc/$me/environ | head -c 40 | tr '\0' ' ')"
echo "$TAG proc-mem $("$RAW" openat /proc/$me/mem | head -c 60 | tr "\0" " ")"
echo "$TAG tool-env $(env | grep -c '^AV_TEST_SECRET=')"
echo "$TAG record $(ls /run/agent-vault/launched 2>&1 | tr '\n' ' ')"
echo "$TAG pid $me"
"#;

fn canary(path: &Path, text: &str) {
    std::fs::write(path, format!("{text}\n")).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o644)).unwrap();
}

fn copy_exe(from: &str, to: &Path) {
    std::fs::copy(from, to).unwrap();
    std::fs::set_permissions(to, std::fs::Permissions::from_mode(0o755)).unwrap();
}

fn world(test: &str, landlock: &str) -> Option<World> {
    if skip_unless_root(test) || skip_without("/usr/bin/unshare", "unshare") {
        return None;
    }
    let d = Dir::new();
    let raw = rawopen(&d)?;
    let bin = d.join("bin");
    std::fs::create_dir(&bin).unwrap();
    let pi = bin.join("pi");
    let other = bin.join("other");
    copy_exe("/bin/sh", &pi);
    copy_exe("/bin/sh", &other);
    let pi_script = bin.join("pi-script");
    std::fs::write(&pi_script, format!("#!/bin/sh\n{PROBE}")).unwrap();
    std::fs::set_permissions(&pi_script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let vault = d.join("pi-agent");
    std::fs::create_dir(&vault).unwrap();
    let auth = vault.join("auth.json");
    let key = format!("CANARY-LAUNCHED-{}", std::process::id());
    canary(&auth, &key);
    let policy = d.policy(
        "65534:65534",
        landlock,
        "required",
        &format!(
            "[[vault.entry]]\nname = \"pi\"\ndir = \"{}\"\n",
            vault.display()
        ),
    );
    let text = std::fs::read_to_string(&policy).unwrap().replacen(
        "user = \"65534:65534\"\n",
        &format!(
            "user = \"65534:65534\"\nlaunches = [\"{}\", \"{}\"]\n",
            pi.display(),
            pi_script.display()
        ),
        1,
    );
    std::fs::write(&policy, text).unwrap();
    Some(World {
        d,
        pi,
        pi_script,
        other,
        raw,
        auth,
        key,
        policy,
    })
}

/// [`world`] with Landlock required, for a test that starts a process
/// outside the harness's tree as the harness user (`setpriv`).
fn world_with_setpriv(test: &str) -> Option<World> {
    let w = world(test, "required")?;
    if skip_without("/usr/bin/setpriv", "setpriv") {
        return None;
    }
    Some(w)
}

/// [`world`] with Landlock required, for a test whose runner is a Python
/// program.
fn world_with_python(test: &str) -> Option<World> {
    let w = world(test, "required")?;
    if skip_without("/usr/bin/python3", "python3") {
        return None;
    }
    Some(w)
}

impl World {
    /// `agent-init run -- /bin/sh -c RUNNER` (the shell is the runner, the
    /// trusted harness), with the preload, `AV_TEST_SECRET` set (a secret
    /// variable), and the environment of [`World::private_mounts`].
    fn run(&self, runner: &str) -> Output {
        let script = format!(
            "exec $BIN run --policy {} -- /bin/sh -c '{}'",
            self.policy.display(),
            runner.replace('\'', r"'\''")
        );
        self.sh(&script)
    }

    /// `sh -c SCRIPT` as root in a private mount namespace (fresh `/run`),
    /// with `AV_TEST_SECRET` set and the environment of
    /// [`World::private_mounts`].
    fn sh(&self, script: &str) -> Output {
        let mut c = self.private_mounts(script);
        c.env("AV_TEST_SECRET", "sk-test-launched");
        c.output().unwrap()
    }

    /// `sh -c SCRIPT` as root in a private mount namespace (fresh `/run`),
    /// with the preload (also as `$SO`) and `$PI`, `$PI_SCRIPT`, `$OTHER`,
    /// `$RAW`, `$AUTH`, `$PROBE` (the shell lines above) in its environment.
    fn private_mounts(&self, script: &str) -> Command {
        let mut c = in_private_mounts(script);
        c.env("AGENT_VAULT_PRELOAD", built_preload())
            .env("AGENT_VAULT_LOG", "debug")
            .env("SO", built_preload())
            .env("PI", &self.pi)
            .env("PI_SCRIPT", &self.pi_script)
            .env("OTHER", &self.other)
            .env("RAW", &self.raw)
            .env("AUTH", &self.auth)
            .env("PROBE", PROBE);
        c
    }

    /// A shell script: a session starts whose harness waits on a fifo;
    /// once its launch socket is up, `during` runs (as root, outside the
    /// harness's tree); then the harness is let go and the session ends.
    fn session_script(&self, during: &str) -> String {
        format!(
            r#"mkfifo {go} && chmod 666 {go}
{bin} run --policy {policy} -- /bin/sh -c "read x < {go}" &
i=0; while [ ! -S /run/agent-vault/launch.sock ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i+1)); done
kill -0 $! || exit 1
{during}
echo go > {go}
wait
"#,
            go = self.d.join("go").display(),
            policy = self.policy.display(),
            bin = BIN,
        )
    }

    /// The launcher's identity, as agent-init records it.
    fn pi_id(&self) -> (u64, u64) {
        let m = std::fs::metadata(&self.pi).unwrap();
        (m.dev(), m.ino())
    }
}

/// The rest of the line `<tag> <what> ...`.
#[track_caller]
fn line(o: &Output, tag: &str, what: &str) -> String {
    let head = format!("{tag} {what} ");
    let out = stdout(o);
    out.lines()
        .find_map(|l| {
            l.strip_prefix(&head)
                .or_else(|| l.strip_prefix(head.trim_end()))
        })
        .map(str::to_string)
        .unwrap_or_else(|| panic!("no line {head:?}:\n{out}\n{}", stderr(o)))
}

/// stdout and stderr, for a failure message.
fn all(o: &Output) -> String {
    format!("{}\n{}", stdout(o), stderr(o))
}

/// `tag` ran as a launched harness: it read its own credential, its tools
/// got nothing, its `/proc` files are closed to them.
#[track_caller]
fn assert_launched(o: &Output, w: &World, tag: &str) {
    assert_eq!(
        line(o, tag, "self"),
        format!("READ {}", w.key),
        "{tag}: {}",
        all(o)
    );
    assert_tools_get_nothing(o, w, tag);
    assert_proc_closed(o, tag);
}

/// `tag` ran as a tool: its own read was denied, and so was everything it started.
#[track_caller]
fn assert_a_tool(o: &Output, w: &World, tag: &str) {
    assert_eq!(line(o, tag, "self"), "DENIED", "{tag}: {}", all(o));
    assert_tools_get_nothing(o, w, tag);
}

/// A launched harness's `/proc/<pid>/{environ,mem}` are closed to its
/// tools (it is not dumpable, as the harness).
#[track_caller]
fn assert_proc_closed(o: &Output, tag: &str) {
    let all = all(o);
    assert_eq!(
        line(o, tag, "proc-environ"),
        "DENIED Permission denied",
        "{all}"
    );
    assert_eq!(
        line(o, tag, "proc-mem"),
        "DENIED Permission denied",
        "{all}"
    );
}

/// Everything `tag` started is a tool: cat, the raw reader and the
/// environment give nothing.
#[track_caller]
fn assert_tools_get_nothing(o: &Output, w: &World, tag: &str) {
    let all = all(o);
    assert_eq!(line(o, tag, "cat"), "DENIED", "{all}");
    assert_eq!(line(o, tag, "raw"), "DENIED Permission denied", "{all}");
    assert_eq!(line(o, tag, "tool-env"), "0", "{all}");
    let tool_lines: String = stdout(o)
        .lines()
        .filter(|l| l.starts_with(&format!("{tag} ")) && !l.starts_with(&format!("{tag} self ")))
        .collect();
    assert!(!tool_lines.contains(&w.key), "a tool read the key: {all}");
}

#[test]
fn a_launched_harness_reads_its_credential_while_its_tools_cannot_by_landlock_and_preload() {
    let Some(w) = world(
        "a_launched_harness_reads_its_credential_while_its_tools_cannot_by_landlock_and_preload",
        "required",
    ) else {
        return;
    };
    // The runner forks and execs the launcher (a shell's child); then,
    // after it exited, lists the records (agent-init removes its record).
    let o = w.run(
        r#"TAG=pi "$PI" -c "$PROBE"
for i in 1 2 3 4 5 6 7 8 9 10; do [ -z "$(ls /run/agent-vault/launched)" ] && break; sleep 0.2; done
echo "after $(ls /run/agent-vault/launched | wc -l) records"
echo END"#,
    );
    let all = all(&o);
    assert_exit(&o, 0);
    assert_launched(&o, &w, "pi");
    assert_eq!(
        line(&o, "pi", "self-env"),
        "sk-test-launched",
        "a launched harness keeps its own variables: {all}"
    );
    let pid = line(&o, "pi", "pid");
    assert_eq!(
        line(&o, "pi", "record").trim(),
        pid,
        "its record while it ran: {all}"
    );
    assert!(
        stdout(&o).contains("after 0 records"),
        "the record outlived it: {all}"
    );
    let (dev, ino) = w.pi_id();
    assert!(
        stderr(&o).contains(&format!(
            "pid {pid} recorded as a launched harness (launcher device {dev} inode {ino})"
        )),
        "{all}"
    );
}

#[test]
fn a_script_launcher_is_a_launched_harness_and_its_tools_get_nothing_by_landlock() {
    let Some(w) = world(
        "a_script_launcher_is_a_launched_harness_and_its_tools_get_nothing_by_landlock",
        "required",
    ) else {
        return;
    };
    let o = w.run("TAG=script \"$PI_SCRIPT\"\necho END");
    assert_exit(&o, 0);
    assert_launched(&o, &w, "script");
}

#[test]
fn a_tool_that_execs_the_listed_program_is_still_a_tool_by_landlock_and_preload() {
    let Some(w) = world(
        "a_tool_that_execs_the_listed_program_is_still_a_tool_by_landlock_and_preload",
        "required",
    ) else {
        return;
    };
    // The runner's child is a shell (a tool) that execs the launcher: the
    // way `sh -c pi` reaches it.
    let o = w.run("TAG=viatool /bin/sh -c 'exec \"$PI\" -c \"$PROBE\"'\necho END");
    let all = all(&o);
    assert_exit(&o, 0);
    assert_a_tool(&o, &w, "viatool");
    assert_eq!(line(&o, "viatool", "self-env"), "unset", "{all}");
    assert_eq!(line(&o, "viatool", "record").trim(), "", "{all}");
}

#[test]
fn an_unlisted_program_launched_by_the_runner_is_a_tool_by_landlock_and_preload() {
    let Some(w) = world(
        "an_unlisted_program_launched_by_the_runner_is_a_tool_by_landlock_and_preload",
        "required",
    ) else {
        return;
    };
    let o = w.run("TAG=other \"$OTHER\" -c \"$PROBE\"\necho END");
    let all = all(&o);
    assert_exit(&o, 0);
    assert_a_tool(&o, &w, "other");
    assert_eq!(line(&o, "other", "record").trim(), "", "{all}");
}

#[test]
fn a_failed_launcher_exec_is_not_retried_along_path_by_preload() {
    let Some(w) = world(
        "a_failed_launcher_exec_is_not_retried_along_path_by_preload",
        "required",
    ) else {
        return;
    };
    // PATH=a:b. a/pi is a listed launcher whose exec fails (its
    // interpreter is missing); b/pi an unlisted shell. The shell's PATH
    // search would go on to b/pi in the recorded process: it must exit 127.
    let a = w.d.join("a");
    let b = w.d.join("b");
    std::fs::create_dir(&a).unwrap();
    std::fs::create_dir(&b).unwrap();
    std::fs::write(a.join("pi"), "#!/nonexistent/interpreter\n").unwrap();
    std::fs::set_permissions(a.join("pi"), std::fs::Permissions::from_mode(0o755)).unwrap();
    copy_exe("/bin/sh", &b.join("pi"));
    let text = std::fs::read_to_string(&w.policy).unwrap().replacen(
        "launches = [",
        &format!("launches = [\"{}\", ", a.join("pi").display()),
        1,
    );
    std::fs::write(&w.policy, text).unwrap();
    let o = w.run(&format!(
        "PATH={}:{}:/usr/bin:/bin TAG=retry pi -c \"$PROBE\"; echo \"status $?\"",
        a.display(),
        b.display()
    ));
    let all = all(&o);
    assert!(stdout(&o).contains("status 127"), "{all}");
    assert!(!stdout(&o).contains("retry self"), "b/pi ran: {all}");
    assert!(!stdout(&o).contains(&w.key), "{all}");
    assert_stderr_contains(
        &o,
        "exec of a launcher agent-init recorded failed; exiting 127",
    );
    assert_stderr_contains(&o, "recorded as a launched harness");
}

#[test]
fn a_stale_launched_record_for_a_reused_pid_is_no_harness_by_start_time() {
    let Some(w) =
        world_with_setpriv("a_stale_launched_record_for_a_reused_pid_is_no_harness_by_start_time")
    else {
        return;
    };
    // In a private pid namespace, while a session runs (its harness waits
    // on a fifo): root plants a record for pid T naming the launcher, with
    // another start time, as one left by an exited launched harness would
    // be; `ns_last_pid` then gives pid T to a process started outside the
    // harness's tree as the harness user (as `docker exec` would: not
    // under the tool layer until its preload applies it), which execs the
    // launcher. Only the start time tells it from the recorded process.
    let (dev, ino) = w.pi_id();
    let during = format!(
        r#"sleep 0.3
read last < /proc/sys/kernel/ns_last_pid
T=$((last + 20))
echo $((T - 1)) > /proc/sys/kernel/ns_last_pid
echo "$T 1 {dev} {ino}" > /run/agent-vault/launched/$T
echo "STALE=$T"
setpriv --reuid=65534 --regid=65534 --clear-groups env TAG=reused LD_PRELOAD="$SO" "$PI" -c "$PROBE""#
    );
    let script = format!(
        "exec unshare --pid --fork --mount-proc /bin/sh -c '\n{}'",
        w.session_script(&during)
    );
    let o = w.private_mounts(&script).output().unwrap();
    let all = all(&o);
    let stale = stdout(&o)
        .lines()
        .find_map(|l| l.strip_prefix("STALE=").map(str::to_string))
        .unwrap_or_else(|| panic!("{all}"));
    assert_eq!(
        line(&o, "reused", "pid"),
        stale,
        "the process did not get the stale record's pid: {all}"
    );
    assert_a_tool(&o, &w, "reused");
}

#[test]
fn a_record_does_not_trust_an_image_that_is_not_its_launcher_by_preload() {
    let Some(w) =
        world_with_setpriv("a_record_does_not_trust_an_image_that_is_not_its_launcher_by_preload")
    else {
        return;
    };
    // While a session runs, a process outside the harness's tree (as
    // `docker exec`, not yet under the tool layer) as the harness user
    // waits (without the preload, so nothing has put it under the tool
    // layer yet) until root has planted a record naming it: its pid, its
    // real start time and the launcher. Then it execs a program with the
    // preload. The unlisted
    // shell must stay a tool (its /proc/self/exe is not the launcher); the
    // launcher itself, as the control, is trusted on the same kind of
    // record, so the refusal is the exe check's.
    let (dev, ino) = w.pi_id();
    let one = |tag: &str, prog: &str| {
        format!(
            r#"setpriv --reuid=65534 --regid=65534 --clear-groups env TAG={tag} /bin/sh -c "while [ ! -e /run/agent-vault/launched/\$\$ ]; do :; done; export LD_PRELOAD=\"\$SO\"; exec \"{prog}\" -c \"\$PROBE\"" &
p=$!
read stat < /proc/$p/stat
start=$(echo "${{stat##*)}}" | cut -d" " -f21)
echo "$p $start {dev} {ino}" > /run/agent-vault/launched/$p.tmp && mv /run/agent-vault/launched/$p.tmp /run/agent-vault/launched/$p
wait $p"#
        )
    };
    let script = w.session_script(&format!(
        "{}\n{}",
        one("notlauncher", &w.other.display().to_string()),
        one("control", &w.pi.display().to_string()),
    ));
    let o = w.private_mounts(&script).output().unwrap();
    let all = all(&o);
    assert_eq!(
        line(&o, "control", "self"),
        format!("READ {}", w.key),
        "the control: a record naming the launcher it runs is trusted: {all}"
    );
    assert_a_tool(&o, &w, "notlauncher");
}

#[test]
fn a_launched_harness_launches_a_harness_of_its_own_by_its_record() {
    let Some(w) = world(
        "a_launched_harness_launches_a_harness_of_its_own_by_its_record",
        "required",
    ) else {
        return;
    };
    // runner -> pi (launched) -> pi-script (launched by a launched
    // harness) -> its tools; and pi -> other (a tool).
    let o = w.run(
        r#"TAG=outer "$PI" -c 'TAG=inner "$PI_SCRIPT"; TAG=innerother "$OTHER" -c "$PROBE"; echo "outer pid $$"'
echo END"#,
    );
    let all = all(&o);
    assert_exit(&o, 0);
    assert_launched(&o, &w, "inner");
    assert_a_tool(&o, &w, "innerother");
    let outer = line(&o, "outer", "pid");
    let inner = line(&o, "inner", "pid");
    assert_eq!(
        line(&o, "inner", "record")
            .split_whitespace()
            .collect::<Vec<_>>()
            .len(),
        2,
        "both the outer ({outer}) and the inner ({inner}) launched harness are recorded: {all}"
    );
}

#[test]
fn a_forged_registration_from_a_tool_is_refused_by_agent_init() {
    let Some(w) = world(
        "a_forged_registration_from_a_tool_is_refused_by_agent_init",
        "required",
    ) else {
        return;
    };
    let Some(forge) = static_helper(&w.d, "forge_launch") else {
        return;
    };
    let (dev, ino) = w.pi_id();
    // The runner's child (a tool: the static forger, raw system calls)
    // sends agent-init a request naming the launcher: without a proof
    // descriptor, with an O_PATH descriptor of the probe (Landlock allows
    // O_PATH), with a read descriptor of another file, and tries to
    // read-open the probe itself.
    let f = |mode: &str, path: &str| {
        format!(
            "echo \"{mode} $({} /run/agent-vault/launch.sock {dev} {ino} {mode} {path})\"",
            forge.display()
        )
    };
    let runner = [
        f("none", "-"),
        f("opath", "/run/agent-vault/probe/probe"),
        f("read", "/etc/passwd"),
        f("read", "/run/agent-vault/probe/probe"),
        "echo \"records $(ls /run/agent-vault/launched | wc -l)\"".to_string(),
        "echo END".to_string(),
    ]
    .join("\n");
    let o = w.run(&runner);
    let all = all(&o);
    assert_exit(&o, 0);
    let out = stdout(&o);
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines.contains(&"none REFUSED"), "{all}");
    assert!(lines.contains(&"opath REFUSED"), "{all}");
    assert!(lines.contains(&"read REFUSED"), "another file: {all}");
    assert!(
        lines.contains(&"read OPEN-DENIED Permission denied"),
        "a tool read-opened the probe: {all}"
    );
    assert!(lines.contains(&"records 0"), "{all}");
    assert_stderr_contains(&o, "1 descriptors passed, not 2");
    assert_eq!(
        stderr(&o)
            .matches("no proof of being outside the tool layer")
            .count(),
        2,
        "{all}"
    );
    assert!(
        !stderr(&o).contains("recorded as a launched harness"),
        "{all}"
    );
}

#[test]
fn launchers_without_landlock_are_refused_and_launched_programs_are_tools_by_preload() {
    let Some(w) = world(
        "launchers_without_landlock_are_refused_and_launched_programs_are_tools_by_preload",
        "off",
    ) else {
        return;
    };
    let o = w.run("TAG=pi \"$PI\" -c \"$PROBE\"\necho END");
    let all = all(&o);
    assert_exit(&o, 0);
    assert_stderr_contains(
        &o,
        "[harness] launches: refused, every launched program runs as a tool: Landlock is off (policy)",
    );
    assert_eq!(line(&o, "pi", "self"), "DENIED", "{all}");
    assert_eq!(line(&o, "pi", "cat"), "DENIED", "{all}");
    // `check` says so before any start.
    let c = std::process::Command::new(BIN)
        .args(["check", "--policy"])
        .arg(&w.policy)
        .output()
        .unwrap();
    assert!(
        stdout(&c).contains(
            "WARNING: [landlock] mode is \"off\": agent-init refuses the launchers at start"
        ),
        "{}{}",
        stdout(&c),
        stderr(&c)
    );
}

#[test]
fn every_spawn_path_of_a_python_runner_launches_a_harness_but_a_shell_command_is_a_tool() {
    let Some(w) = world_with_python(
        "every_spawn_path_of_a_python_runner_launches_a_harness_but_a_shell_command_is_a_tool",
    ) else {
        return;
    };
    // subprocess (fork or vfork, then execve), posix_spawn, posix_spawnp
    // over PATH, and env= without LD_PRELOAD (then a tool: the preload
    // would not guard what it starts); os.system goes through `sh -c`
    // (a tool's child).
    let py = w.d.join("runner.py");
    std::fs::write(
        &py,
        r#"import os, subprocess
pi, probe = os.environ["PI"], os.environ["PROBE"]
def env(tag):
    e = dict(os.environ); e["TAG"] = tag; return e
subprocess.run([pi, "-c", probe], env=env("subprocess"))
os.waitpid(os.posix_spawn(pi, ["pi", "-c", probe], env("spawn")), 0)
os.environ["PATH"] = os.path.dirname(pi) + ":" + os.environ["PATH"]
os.waitpid(os.posix_spawnp("pi", ["pi", "-c", probe], env("spawnp")), 0)
bare = {k: v for k, v in env("nopreload").items() if k != "LD_PRELOAD"}
subprocess.run([pi, "-c", probe], env=bare)
os.environ["TAG"] = "system"
os.system(pi + " -c \"$PROBE\"")
print("END")
"#,
    )
    .unwrap();
    let o = w.run(&format!("exec /usr/bin/python3 {}", py.display()));
    let all = all(&o);
    assert_exit(&o, 0);
    for tag in ["subprocess", "spawn", "spawnp"] {
        assert_launched(&o, &w, tag);
    }
    for tag in ["nopreload", "system"] {
        assert_eq!(line(&o, tag, "self"), "DENIED", "{tag}: {all}");
        assert_eq!(line(&o, tag, "cat"), "DENIED", "{tag}: {all}");
    }
    assert_stderr_contains(&o, "its environment drops LD_PRELOAD");
}

#[test]
fn a_runner_that_searches_path_itself_launches_the_harness_after_missing_candidates_by_preload() {
    let Some(w) = world(
        "a_runner_that_searches_path_itself_launches_the_harness_after_missing_candidates_by_preload",
        "required",
    ) else {
        return;
    };
    if skip_without("/usr/bin/python3", "python3") || skip_without("/usr/bin/node", "node") {
        return;
    }
    // Python's subprocess and Node's spawn look a bare name up on PATH
    // themselves: one execve per PATH entry, in the same child. The
    // entries before the launcher's name nothing (a missing directory, an
    // empty one); those attempts must not put the child under the tool
    // layer, or the launcher found next runs as a tool.
    let empty = w.d.join("empty");
    std::fs::create_dir(&empty).unwrap();
    let path = format!(
        "{}:{}:{}:/usr/bin:/bin",
        w.d.join("missing").display(),
        empty.display(),
        w.pi.parent().unwrap().display()
    );
    let py = w.d.join("runner.py");
    std::fs::write(
        &py,
        r#"import os, subprocess
e = dict(os.environ); e["TAG"] = "python"
subprocess.run(["pi", "-c", os.environ["PROBE"]], env=e)
"#,
    )
    .unwrap();
    let js = w.d.join("runner.js");
    std::fs::write(
        &js,
        r#"require("child_process").spawnSync("pi", ["-c", process.env.PROBE],
  { stdio: "inherit", env: { ...process.env, TAG: "node" } });
"#,
    )
    .unwrap();
    for (tag, runner) in [("python", "/usr/bin/python3"), ("node", "/usr/bin/node")] {
        let file = if tag == "python" { &py } else { &js };
        // The runner is the harness itself (exec), as in a runner image.
        let o = w.run(&format!(
            "export PATH={path}\nexec {runner} {}",
            file.display()
        ));
        assert_exit(&o, 0);
        assert_launched(&o, &w, tag);
    }
}

#[test]
fn a_launcher_given_to_the_harness_user_after_start_runs_as_a_tool_by_preload() {
    let Some(w) = world(
        "a_launcher_given_to_the_harness_user_after_start_runs_as_a_tool_by_preload",
        "required",
    ) else {
        return;
    };
    // Same device and inode as agent-init identified, but no longer
    // root's: the shape of a file a tool made under a freed inode number
    // (the launcher deleted from a directory the tool could write). Only
    // the owner tells them apart.
    let go = w.d.join("go");
    let script = format!(
        r#"mkfifo {go} && chmod 666 {go}
$BIN run --policy {policy} -- /bin/sh -c 'read x < {go}; TAG=chowned "$PI" -c "$PROBE"; echo END' &
i=0; while [ ! -S /run/agent-vault/launch.sock ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i+1)); done
kill -0 $! || exit 1
chown 65534 "$PI"
echo go > {go}
wait $!
"#,
        go = go.display(),
        policy = w.policy.display(),
    );
    let o = w.sh(&script);
    let all = all(&o);
    assert_exit(&o, 0);
    assert_a_tool(&o, &w, "chowned");
    assert_eq!(line(&o, "chowned", "record").trim(), "", "{all}");
}

#[test]
fn a_tool_flooding_the_launch_socket_is_logged_at_the_audit_rate_by_agent_init() {
    let Some(w) = world(
        "a_tool_flooding_the_launch_socket_is_logged_at_the_audit_rate_by_agent_init",
        "required",
    ) else {
        return;
    };
    let Some(forge) = static_helper(&w.d, "forge_launch") else {
        return;
    };
    let (dev, ino) = w.pi_id();
    // A tool sends 200 refused registrations, waits out the window, sends
    // one more: agent-init's log (the container's log) gets at most the
    // audit rate of lines, and a count of the rest.
    let forge = format!(
        "{} /run/agent-vault/launch.sock {dev} {ino} none - >/dev/null",
        forge.display()
    );
    let o = w.run(&format!(
        "i=0; while [ $i -lt 200 ]; do {forge}; i=$((i+1)); done; sleep 1.2; {forge}; echo END"
    ));
    let all = all(&o);
    assert_exit(&o, 0);
    let err = stderr(&o);
    let logged = err.matches("launch registry: refused pid").count();
    let counted: usize = err
        .lines()
        .filter_map(|l| {
            l.split("launch registry: ")
                .nth(1)?
                .strip_suffix(" more refusals in the last second, not logged")?
                .parse::<usize>()
                .ok()
        })
        .sum();
    assert!(logged < 200, "{logged} lines for 201 refusals: {all}");
    assert!(counted > 0, "no count of the lines left out: {all}");
    assert_eq!(
        logged + counted,
        201,
        "every refusal logged or counted: {all}"
    );
}

#[test]
fn a_launcher_environment_whose_last_ld_preload_is_empty_runs_as_a_tool_by_preload() {
    let Some(w) = world_with_python(
        "a_launcher_environment_whose_last_ld_preload_is_empty_runs_as_a_tool_by_preload",
    ) else {
        return;
    };
    // Two LD_PRELOAD entries: getenv reads the first (the preload), the
    // loader takes the last (empty). Trusted, the launched harness would
    // start its tools with no preload to put them under the tool layer.
    let py = w.d.join("dup.py");
    std::fs::write(
        &py,
        r#"import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
def arr(items):
    return (ctypes.c_char_p * (len(items) + 1))(*items, None)
env = [f"{k}={v}".encode() for k, v in os.environ.items()] + [b"TAG=dup", b"LD_PRELOAD="]
pid = os.fork()
if pid == 0:
    libc.execve(os.environ["PI"].encode(), arr([b"pi", b"-c", os.environ["PROBE"].encode()]), arr(env))
    os._exit(127)
os.waitpid(pid, 0)
print("END")
"#,
    )
    .unwrap();
    let o = w.run(&format!("exec /usr/bin/python3 {}", py.display()));
    assert_exit(&o, 0);
    assert_a_tool(&o, &w, "dup");
    assert_stderr_contains(&o, "its environment drops LD_PRELOAD");
}

/// The preload's constructor takes a process that its probe finds under
/// the tool layer for a tool without reading the harness record
/// (`vault-preload/src/lib.rs`, `under_tool_layer_at_start`). That holds
/// only while the harness and a launched harness may read the probe (a
/// vault entry: their base layer grants it, and the tool layer is never
/// theirs). Both read it here, under agent-init's real base layer, and both
/// start as the harness: not dumpable (their `/proc/<pid>` files are
/// root's), and a tool they start is refused the probe.
#[test]
fn the_harness_and_a_launched_harness_read_their_probe_and_start_as_the_harness_by_preload() {
    let Some(w) = world(
        "the_harness_and_a_launched_harness_read_their_probe_and_start_as_the_harness_by_preload",
        "required",
    ) else {
        return;
    };
    let check = w.d.join("check.sh");
    std::fs::write(
        &check,
        // `true` is a regular builtin: a refused redirection fails it
        // without ending the shell, and the open is the shell's own.
        r#"if true < /run/agent-vault/probe/probe 2>/dev/null; then echo "$TAG probe OPENED"; else echo "$TAG probe REFUSED"; fi
echo "$TAG proc-owner $(stat -c %u /proc/$$/environ)"
if /bin/sh -c 'true < /run/agent-vault/probe/probe' 2>/dev/null; then echo "$TAG tool-probe OPENED"; else echo "$TAG tool-probe REFUSED"; fi
"#,
    )
    .unwrap();
    std::fs::set_permissions(&check, std::fs::Permissions::from_mode(0o644)).unwrap();
    let o = w.run(&format!(
        "TAG=runner . {c}\nTAG=pi \"$PI\" {c}\necho END",
        c = check.display()
    ));
    let all = all(&o);
    for tag in ["runner", "pi"] {
        assert_eq!(line(&o, tag, "probe"), "OPENED", "{tag}: {all}");
        assert_eq!(
            line(&o, tag, "proc-owner"),
            "0",
            "{tag} is dumpable: the preload did not take it for the harness: {all}"
        );
        assert_eq!(line(&o, tag, "tool-probe"), "REFUSED", "{tag}: {all}");
    }
    assert_exit(&o, 0);
}
