//! `[harness] launches`: the harness programs a trusted process may launch
//! as harnesses of their own (a runner that starts Pi or Claude Code per
//! task), and the step that identifies them at start.
//!
//! # What this module does
//!
//! [`identify_step`] runs before the state directory is written: for each
//! path of `launches` it finds the file there (following symlinks, as exec
//! does), refuses one that the harness user or its tools could rewrite in
//! place (it must be a regular file owned by root and writable by no group
//! or other) or delete (its directory, symlinks resolved, must be root's
//! and writable by no group or other unless sticky: a file a tool creates
//! after deleting the launcher can get the freed inode number), and
//! records the file's identity, device and inode, in the policy
//! ([`policy::Policy::set_launcher_files`]); the policy image
//! (`policy.bin`, root-owned) carries it to every preload. A path with
//! nothing there at start is left out, with a warning: a program installed
//! there later is another file, unknown to agent-init, and runs as a tool.
//!
//! The mechanism below is built: agent-init's half is
//! [`crate::launch_registry`], the preload's is its `launch` module, the
//! formats are `policy::layout`'s (`LaunchRequest`, `LaunchedRecord`).
//!
//! # How a launched harness is recognised
//!
//! Trust is never read from a path, `argv`, `comm` or the environment. A
//! process P is a *launched harness* when both hold:
//! 1. agent-init recorded P in `launched/<pid>` of the state directory (a
//!    root-owned directory, 0755, files 0644: `pid start dev ino [fd]`,
//!    `policy::layout::LaunchedRecord`), and the record's start time is P's
//!    own (`/proc/self/stat` field 22);
//! 2. the file P was started from is a launcher: the record also holds the
//!    launcher's (device, inode) that was checked before the exec, and it is
//!    one of the image's ([`policy::View::is_launcher`]).
//!
//! **Recording.** The trusted parent (the harness, or a launched harness)
//! starts a child through the preload's spawn hooks. In the child, before
//! the tool layer would be applied, the hook opens the program it is about
//! to run and compares the open file's `fstat` (device, inode) with the
//! image's launchers. On a match, the child sends one datagram to
//! agent-init's registration socket in the state directory, with
//! `SCM_CREDENTIALS` (the kernel fills in the sender's pid; no process can
//! claim another's without `CAP_SYS_ADMIN`, which no process under
//! agent-init holds) and, as `SCM_RIGHTS`, a freshly opened read descriptor
//! of the tool-layer probe file (`probe/probe`). agent-init accepts only when:
//! - the passed descriptor is the probe file (its `fstat` identity) opened
//!   for reading: only a process outside the tool layer can open it, and
//!   every tool is inside it (Landlock domains only ever narrow, so no tool
//!   can leave it); this is what a tool cannot forge, even though every
//!   tool is also a child of the harness;
//! - the sender's parent (`/proc/<pid>/stat` field 4) is the harness or a
//!   launched harness, each proved by its recorded start time: a process
//!   started by `docker exec` (outside the tool layer until its own preload
//!   runs) is no child of either, and a process reparented to PID 1 is
//!   refused;
//! - the launcher identity in the request is one of the image's.
//!
//! agent-init then writes `launched/<pid>` (pid, start time, launcher
//! identity; temporary name and rename, as every state file) and replies;
//! the child waits for the reply, then execs the descriptor it checked
//! (`execveat(fd, "", AT_EMPTY_PATH)`), so the file checked is the file
//! run. Without a reply (agent-init refused, or is gone) the child applies
//! the tool layer and execs as a tool: fail closed.
//!
//! **PID reuse.** A record names a pid *and* its start time, as
//! `harness.pid` does: a later process that gets the pid of an exited
//! launched harness has another start time and is a tool. agent-init holds
//! a pidfd of every recorded process (`pidfd_open` at registration, while
//! the sender is alive and cannot have been reaped: it is waiting for the
//! reply) and removes the record when the pidfd polls readable (the process
//! exited); the start-time check covers the window before the removal.
//!
//! **Exec retries.** A record is made for one exec of one checked file.
//! If that exec fails, the child does not retry another path (as `execvp`
//! and `posix_spawnp` do along `PATH`): it exits 127, since a later image in
//! the same process would find the record. The second condition above
//! stands behind this: the new image's preload compares the recorded
//! launcher identity with the image's launchers and, for a binary, with
//! `/proc/self/exe`; a mismatch makes it a tool.
//!
//! **A tool that execs a launcher** is already inside the tool layer: the
//! kernel keeps it there whatever it runs, it cannot open the probe to
//! register, and its preload finds no record. **An unlisted program**
//! launched by a trusted process is not a launcher: no registration, and
//! the hook applies the tool layer as for any child.
//!
//! **Through a shell** (`sh -c pi`): the shell is the trusted process's
//! child and a tool, so the launcher it starts is a tool's child and a
//! tool. A runner must spawn the launcher itself.
//!
//! **What a launched harness gets** is what the harness gets: no tool
//! layer, the vault files and the environment it inherits (placeholders
//! only, when the credential proxy holds the real credentials); everything
//! it starts is a tool, except a launcher it launches (the same rules, its
//! record as the parent proof).
//!
//! **What is not checked**: a launcher that is a script runs an interpreter
//! and reads modules that are not the launcher file; those must be kept
//! from tools as the harness's own program files are (`[filesystem]
//! tool_read_only`).

use crate::error::Call;
use crate::log::warning;
use std::fmt;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;

/// Why a launcher cannot be trusted as a program file.
#[derive(Debug)]
pub enum LauncherError {
    /// `stat` failed for another reason than a missing file.
    Stat(Call<std::io::Error>),
    /// Not a regular file.
    NotAFile(PathBuf),
    /// Owned by another user than root, or writable by its group or others:
    /// a tool could rewrite the launcher in place and keep its identity.
    Writable { path: PathBuf, uid: u32, mode: u32 },
    /// The directory holding the file (symlinks resolved) is writable by
    /// another user than root and not sticky: a tool could delete the
    /// launcher, and a file it creates could get the freed inode number.
    DirWritable {
        path: PathBuf,
        dir: PathBuf,
        uid: u32,
        mode: u32,
    },
}

impl fmt::Display for LauncherError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LauncherError::Stat(c) => write!(f, "[harness] launches: {c}"),
            LauncherError::NotAFile(p) => write!(
                f,
                "[harness] launches: {} is not a regular file. Fix: name the program file itself",
                p.display()
            ),
            LauncherError::Writable { path, uid, mode } => write!(
                f,
                "[harness] launches: {} is owned by uid {uid} with mode {:o}; a launcher must be owned by root and writable by no one else, or a tool could rewrite it in place. Fix: chown root {0} && chmod go-w {0}",
                path.display(),
                mode & 0o7777
            ),
            LauncherError::DirWritable {
                path,
                dir,
                uid,
                mode,
            } => write!(
                f,
                "[harness] launches: {} is in {}, owned by uid {uid} with mode {:o}; a launcher's directory must be owned by root and writable by no one else (or sticky), or a tool could delete the launcher and put a file of its own under the freed inode number. Fix: install the launcher in a root-owned directory such as /usr/local/bin",
                path.display(),
                dir.display(),
                mode & 0o7777
            ),
        }
    }
}

impl std::error::Error for LauncherError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            LauncherError::Stat(c) => Some(c),
            LauncherError::NotAFile(_)
            | LauncherError::Writable { .. }
            | LauncherError::DirWritable { .. } => None,
        }
    }
}

/// What is at one launcher path now.
#[derive(Debug)]
pub enum Found {
    /// A file fit to be a launcher.
    File(policy::LauncherFile),
    /// Nothing there (it launches nothing trusted).
    Missing,
}

/// Look at one launcher path: `stat` (following symlinks, as exec does),
/// a regular file owned by root and writable by no one else, in a
/// directory only root can change (or a sticky one).
pub fn inspect(path: &std::path::Path) -> Result<Found, LauncherError> {
    let m = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Found::Missing),
        Err(e) => return Err(LauncherError::Stat(Call::at("stat", path, e))),
    };
    if !m.file_type().is_file() {
        return Err(LauncherError::NotAFile(path.to_path_buf()));
    }
    if !policy::layout::launcher_owner_and_mode_fit(m.uid(), m.mode()) {
        return Err(LauncherError::Writable {
            path: path.to_path_buf(),
            uid: m.uid(),
            mode: m.mode(),
        });
    }
    let real = std::fs::canonicalize(path)
        .map_err(|e| LauncherError::Stat(Call::at("realpath", path, e)))?;
    let dir = real.parent().unwrap_or(std::path::Path::new("/"));
    let d = nix::sys::stat::stat(dir)
        .map_err(|e| LauncherError::Stat(Call::at("stat", dir, std::io::Error::from(e))))?;
    if !crate::safe_path::dir_is_trusted(&d) {
        return Err(LauncherError::DirWritable {
            path: path.to_path_buf(),
            dir: dir.to_path_buf(),
            uid: d.st_uid,
            mode: d.st_mode,
        });
    }
    Ok(Found::File(policy::LauncherFile {
        path: path.to_path_buf(),
        id: policy::FileId {
            dev: m.dev(),
            ino: m.ino(),
        },
    }))
}

/// Step 3 (before the state directory is written): identify every launcher
/// and record the files in the policy, so the policy image carries them.
pub fn identify_step(policy: &mut policy::Policy) -> Result<(), LauncherError> {
    let mut files = Vec::new();
    for path in &policy.harness.launches {
        match inspect(path)? {
            Found::File(f) => files.push(f),
            Found::Missing => warning!(
                "[harness] launches: nothing at {} at start; a program installed there later runs as a tool",
                path.display()
            ),
        }
    }
    policy.set_launcher_files(files);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn policy_with(launches: Vec<PathBuf>) -> policy::Policy {
        let ctx = policy::ExpandContext {
            home: Some("/home/agent".into()),
            env: Default::default(),
        };
        let mut p = policy::Policy::builtin(&ctx).unwrap();
        p.harness.launches = launches;
        p
    }

    #[test]
    fn a_launcher_is_identified_by_device_and_inode_and_a_missing_one_is_left_out() {
        let tmp = tempfile_dir("ok");
        let dir = tmp.path();
        let pi = dir.join("pi");
        std::fs::write(&pi, b"#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&pi, std::fs::Permissions::from_mode(0o755)).unwrap();
        let link = dir.join("pi-link");
        std::os::unix::fs::symlink(&pi, &link).unwrap();
        let mut p = policy_with(vec![link.clone(), dir.join("gone")]);
        if !nix::unistd::geteuid().is_root() {
            // Owned by us, not root: refused (tested below); nothing more here.
            assert!(identify_step(&mut p).is_err());
            return;
        }
        identify_step(&mut p).unwrap();
        let m = std::fs::metadata(&pi).unwrap();
        assert_eq!(
            p.harness.launcher_files,
            [policy::LauncherFile {
                path: link,
                id: policy::FileId {
                    dev: m.dev(),
                    ino: m.ino()
                },
            }],
            "the symlink's target, as exec runs it; the missing path is left out"
        );
        let image = p.to_image();
        let v = policy::View::decode(&image).unwrap();
        assert!(v.is_launcher(policy::FileId {
            dev: m.dev(),
            ino: m.ino()
        }));
    }

    #[test]
    fn a_launcher_others_could_rewrite_or_a_directory_is_refused() {
        let tmp = tempfile_dir("bad");
        let dir = tmp.path().to_path_buf();
        let pi = dir.join("pi");
        std::fs::write(&pi, b"#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&pi, std::fs::Permissions::from_mode(0o775)).unwrap();
        let e = identify_step(&mut policy_with(vec![pi.clone()])).unwrap_err();
        assert!(
            matches!(&e, LauncherError::Writable { path, .. } if *path == pi),
            "{e}"
        );
        assert!(e.to_string().contains("chmod go-w"), "{e}");
        if nix::unistd::geteuid().is_root() {
            std::os::unix::fs::chown(&pi, Some(1000), None).unwrap();
            std::fs::set_permissions(&pi, std::fs::Permissions::from_mode(0o755)).unwrap();
            let e = identify_step(&mut policy_with(vec![pi.clone()])).unwrap_err();
            assert!(
                matches!(&e, LauncherError::Writable { uid: 1000, .. }),
                "owned by the harness user: {e}"
            );
        }
        let e = identify_step(&mut policy_with(vec![dir.clone()])).unwrap_err();
        assert!(matches!(e, LauncherError::NotAFile(_)), "{e}");
    }

    #[test]
    fn a_launcher_in_a_directory_a_tool_could_write_is_refused_by_agent_init() {
        // The inode-reuse attack needs the launcher deleted: a directory the
        // harness user owns, or one anyone may write that is not sticky.
        let tmp = tempfile_dir("dir");
        let dir = tmp.path().join("bin");
        std::fs::create_dir(&dir).unwrap();
        let pi = dir.join("pi");
        std::fs::write(&pi, b"#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&pi, std::fs::Permissions::from_mode(0o755)).unwrap();
        let link = tmp.path().join("pi-link");
        std::os::unix::fs::symlink(&pi, &link).unwrap();
        let refused = |mode: u32| {
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(mode)).unwrap();
            identify_step(&mut policy_with(vec![link.clone()])).err()
        };
        let e = refused(0o777).expect("a world-writable directory");
        assert!(
            matches!(&e, LauncherError::DirWritable { dir: d, .. } if *d == dir),
            "the symlink's target's directory is named: {e}"
        );
        assert!(e.to_string().contains("/usr/local/bin"), "{e}");
        if !nix::unistd::geteuid().is_root() {
            return; // the rest needs a root-owned launcher
        }
        assert!(
            refused(0o1777).is_none(),
            "a sticky directory keeps root's file"
        );
        assert!(refused(0o755).is_none());
        std::os::unix::fs::chown(&dir, Some(1000), None).unwrap();
        let e = refused(0o755).expect("a directory the harness user owns");
        assert!(
            matches!(&e, LauncherError::DirWritable { uid: 1000, .. }),
            "{e}"
        );
    }

    /// A fresh directory for one test, root-owned when we are root,
    /// removed when the test ends.
    fn tempfile_dir(name: &str) -> tempfile::TempDir {
        tempfile::Builder::new()
            .prefix(&format!("agent-init-launchers-{name}."))
            .tempdir()
            .unwrap()
    }
}
