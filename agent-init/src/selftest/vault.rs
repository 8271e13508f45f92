//! The attacks on one vault entry: read it (libc `open`, raw `openat`,
//! `openat2`, an io_uring ring), hard-link it or rename it out of the vault,
//! create a file in a vault directory. A `dir` entry is attacked through the
//! first regular file inside it (the directory itself stays listable under
//! the tool layer).

use super::cpath;
use super::report::{Report, Status, errno_name};
use crate::sys;
use policy::{VaultEntry, VaultKind};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

/// A name no other run uses: pid and the clock's nanoseconds.
pub(super) fn unique_name(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!(
        ".agent-vault-selftest-{prefix}-{}-{nanos:x}",
        std::process::id()
    )
}

/// The first regular file (by name) directly inside `dir` that `skip` does
/// not exclude (a vault directory's tool exceptions). Listing is allowed
/// under the tool layer; the listing uses a raw `openat` so no preload hook
/// decides.
pub(super) fn first_file(dir: &Path, skip: impl Fn(&Path) -> bool) -> Result<PathBuf, String> {
    let fd = sys::raw_openat(
        libc::AT_FDCWD,
        &cpath(dir),
        libc::O_RDONLY | libc::O_DIRECTORY,
    )
    .map_err(|x| format!("cannot list the directory: {}", errno_name(&x)))?;
    let mut names: Vec<_> = sys::read_dir_fd(fd.as_fd())
        .map_err(|x| format!("cannot list the directory: {}", errno_name(&x)))?
        .into_iter()
        .map(|d| d.name)
        .collect();
    names.sort();
    names
        .into_iter()
        .map(|n| dir.join(n))
        .find(|f| !skip(f) && std::fs::symlink_metadata(f).is_ok_and(|m| m.file_type().is_file()))
        .ok_or_else(|| "the directory holds no regular file".to_string())
}

/// Every attack on one vault entry. A `dir` entry is attacked through the
/// first regular file inside it (the directory itself stays listable under
/// the tool layer) plus a create inside it; a `file` entry directly.
pub(super) fn attack_entry(r: &mut Report, e: &VaultEntry, seccomp_on: bool) {
    let path = &e.path;
    let Ok(md) = std::fs::symlink_metadata(path) else {
        r.add(
            "vault",
            format!("{} {}", e.name, path.display()),
            Status::Skip,
            "does not exist",
        );
        return;
    };
    // Outside the vault, on the same file system: where a link or a rename
    // would move the secret to.
    let outside = path.parent().unwrap_or(Path::new("/"));
    let target = match e.kind {
        VaultKind::File => Ok(path.clone()),
        VaultKind::Dir => first_file(&e.path, |f| {
            e.tool_exceptions.iter().any(|x| f.starts_with(x))
        }),
    };
    match target {
        Ok(f) => attack_file(r, e, &f, outside, seccomp_on),
        Err(why) => r.add(
            "vault",
            format!("file in {} ({})", path.display(), e.name),
            Status::Skip,
            format!("skipped: no file to attack ({why})"),
        ),
    }
    if e.kind == VaultKind::Dir {
        if md.is_dir() {
            attack_create(r, e);
        }
        let moved = outside.join(unique_name("moved"));
        let res = std::fs::rename(path, &moved);
        let detail = restore_after_rename(&res, &moved, path);
        r.attack(
            "vault",
            format!("rename {} ({})", path.display(), e.name),
            res,
        );
        if let Some(d) = detail {
            r.add(
                "vault",
                format!("restore {}", path.display()),
                Status::Fail,
                d,
            );
        }
    }
}

/// After a rename attack that succeeded, put the entry back; `Some` is a
/// message when that failed.
fn restore_after_rename(res: &std::io::Result<()>, moved: &Path, path: &Path) -> Option<String> {
    if res.is_ok()
        && let Err(e) = std::fs::rename(moved, path)
    {
        return Some(format!(
            "could not move {} back from {}: {}",
            path.display(),
            moved.display(),
            errno_name(&e)
        ));
    }
    None
}

/// Read, link and move the vault file `f` (a `file` entry, or a file inside
/// a `dir` entry). Only whether each call succeeded is reported.
fn attack_file(r: &mut Report, e: &VaultEntry, f: &Path, outside: &Path, seccomp_on: bool) {
    let label = |what: &str| format!("{what} {} ({})", f.display(), e.name);
    let c = cpath(f);
    r.attack("vault", label("libc open"), std::fs::File::open(f));
    r.attack(
        "vault",
        label("raw openat"),
        sys::raw_openat(libc::AT_FDCWD, &c, libc::O_RDONLY),
    );
    r.attack(
        "vault",
        label("openat2"),
        sys::raw_openat2(&c, libc::O_RDONLY),
    );
    // An io_uring OPENAT bypasses every libc hook; seccomp denies the ring.
    match sys::raw_io_uring_setup() {
        Err(x) => r.add(
            "vault",
            label("io_uring"),
            Status::Pass,
            format!("blocked: io_uring_setup {}", errno_name(&x)),
        ),
        Ok(_) => r.add(
            "vault",
            label("io_uring"),
            if seccomp_on {
                Status::Fail
            } else {
                Status::Skip
            },
            "io_uring_setup succeeded: opens through a ring bypass the preload",
        ),
    }
    let dst = outside.join(unique_name("link"));
    let res = std::fs::hard_link(f, &dst);
    if res.is_ok() {
        let _ = std::fs::remove_file(&dst);
    }
    r.attack(
        "vault",
        format!("{} -> {}", label("hard link"), outside.display()),
        res,
    );
    let moved = outside.join(unique_name("moved"));
    let res = std::fs::rename(f, &moved);
    let detail = restore_after_rename(&res, &moved, f);
    r.attack(
        "vault",
        format!("{} -> {}", label("rename"), outside.display()),
        res,
    );
    if let Some(d) = detail {
        r.add("vault", label("restore"), Status::Fail, d);
    }
}

/// Create a new file inside the vault directory of `e` (raw `openat`,
/// `O_CREAT|O_EXCL`): the tool layer denies it with `EACCES` (a read-only
/// file system answers `EROFS` first, which blocks it as well).
fn attack_create(r: &mut Report, e: &VaultEntry) {
    let f = e.path.join(unique_name("create"));
    let res = sys::raw_openat(
        libc::AT_FDCWD,
        &cpath(&f),
        libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL,
    );
    let (status, detail) = match res {
        Ok(fd) => {
            drop(fd);
            let cleanup = match std::fs::remove_file(&f) {
                Ok(()) => "removed again".to_string(),
                Err(x) => format!("could not remove {}: {}", f.display(), errno_name(&x)),
            };
            (Status::Fail, format!("succeeded: NOT blocked ({cleanup})"))
        }
        Err(x) if matches!(x.raw_os_error(), Some(libc::EACCES | libc::EROFS)) => {
            (Status::Pass, format!("blocked: {}", errno_name(&x)))
        }
        Err(x) => (Status::Fail, format!("{}: expected EACCES", errno_name(&x))),
    };
    r.add(
        "vault",
        format!("create file in {} ({})", e.path.display(), e.name),
        status,
        detail,
    );
}
