//! The attacks on the base layer's hidden paths (seed sources and
//! `[filesystem] hidden`, [`policy::landlock_plan::hidden_paths`]): read each
//! as a tool would, with libc (what `cat` does; the preload's hooks see it)
//! and with a raw `openat` (what a static binary does). A hidden directory
//! stays listable (Landlock's `read_dir` on an ancestor reaches everything
//! beneath it, as for the vault): its names are not the secret, its files
//! are, so the first regular file inside it is attacked.
//!
//! Without Landlock only the file modes guard these paths: the rows say so,
//! and fail when the attack reads anything.

use super::cpath;
use super::report::{Report, Status, errno_name};
use crate::sys;
use policy::landlock_plan::{HiddenPath, hidden_paths};
use policy::{EnforceMode, Policy};
use std::path::Path;

/// One row per attack on every hidden path.
pub(super) fn hidden_rows(r: &mut Report, p: &Policy) {
    let landlock = p.landlock != EnforceMode::Off && sys::landlock_abi() > 0;
    for h in hidden_paths(p) {
        attack_hidden(r, &h, landlock);
    }
}

fn attack_hidden(r: &mut Report, h: &HiddenPath, landlock: bool) {
    let name = format!("{} {}", h.why.noun(), h.path.display());
    let Ok(md) = std::fs::symlink_metadata(&h.path) else {
        r.add("hidden", name, Status::Skip, "does not exist");
        return;
    };
    let note = if landlock {
        ""
    } else {
        "; no Landlock here: only the file modes guard it (mount it root-owned, directories 0700, files 0400; README)"
    };
    if !md.is_dir() {
        read_rows(r, &name, &h.path, note);
        return;
    }
    match super::vault::first_file(&h.path, |_| false) {
        Ok(f) => read_rows(r, &name, &f, note),
        Err(why) => r.add(
            "hidden",
            name,
            Status::Skip,
            format!("skipped: no file to attack ({why})"),
        ),
    }
}

/// Read `f` with libc and with a raw `openat`.
fn read_rows(r: &mut Report, name: &str, f: &Path, note: &str) {
    let shown = f.display();
    let libc_read = std::fs::read(f).map(drop);
    row(
        r,
        format!("{name}: read {shown} (libc, as cat)"),
        libc_read,
        note,
    );
    let raw = sys::raw_openat(libc::AT_FDCWD, &cpath(f), libc::O_RDONLY).map(drop);
    row(r, format!("{name}: read {shown} (raw openat)"), raw, note);
}

fn row(r: &mut Report, check: String, res: std::io::Result<()>, note: &str) {
    let (status, what) = match res {
        Ok(()) => (Status::Fail, "READABLE by this tool".to_string()),
        Err(e) => (Status::Pass, format!("blocked: {}", errno_name(&e))),
    };
    r.add("hidden", check, status, format!("{what}{note}"));
}
