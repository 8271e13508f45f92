//! The last check of step 2: every vault file has exactly one name.
//!
//! A vault file with a second name (a hard link elsewhere, made before
//! agent-init ran) could be read under that name: the tool layer and the
//! preload decide by path. So a `file` entry, and every regular file inside
//! a `dir` entry (at most 32 levels and 100,000 entries deep), with a link
//! count above one stops the run.

use crate::log::warning;
use crate::safe_path::{DIR_FLAGS, is_type};
use crate::sys;
use nix::fcntl::openat;
use nix::sys::stat::{FileStat, Mode, SFlag, fstatat};
use policy::{Policy, VaultKind};
use std::fmt;
use std::os::fd::{AsFd, BorrowedFd};
use std::path::{Path, PathBuf};

/// A vault file has more than one name.
#[derive(Debug)]
pub struct HardLinks {
    pub path: PathBuf,
    pub nlink: u64,
}

impl fmt::Display for HardLinks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let HardLinks { path, nlink } = self;
        write!(
            f,
            "vault file {} has {nlink} names (hard links): a tool could read it under another name. Fix: remove the other links (`find / -xdev -samefile {}`) or copy the file",
            path.display(),
            path.display()
        )
    }
}

impl std::error::Error for HardLinks {}

/// `st_nlink` is u64 on x86_64 and u32 on aarch64.
#[allow(clippy::unnecessary_cast)]
fn nlink(st: &FileStat) -> u64 {
    st.st_nlink as u64
}

/// Refuse a vault file (a `file` entry, or a file inside a `dir` entry) that
/// has more than one link.
pub fn check(policy: &Policy) -> Result<(), HardLinks> {
    for e in &policy.vault {
        match e.kind {
            VaultKind::File => {
                if let Ok(st) = nix::sys::stat::lstat(&e.path)
                    && is_type(&st, SFlag::S_IFREG)
                    && st.st_nlink > 1
                {
                    return Err(HardLinks {
                        path: e.path.clone(),
                        nlink: nlink(&st),
                    });
                }
            }
            VaultKind::Dir => {
                if let Ok(fd) = nix::fcntl::open(&e.path, DIR_FLAGS, Mode::empty()) {
                    let mut budget = 100_000usize;
                    links_in(fd.as_fd(), &e.path, 0, &mut budget)?;
                }
            }
        }
    }
    Ok(())
}

fn links_in(
    dir: BorrowedFd<'_>,
    path: &Path,
    depth: u32,
    budget: &mut usize,
) -> Result<(), HardLinks> {
    if depth > 32 {
        return Ok(());
    }
    let Ok(entries) = sys::read_dir_fd(dir) else {
        return Ok(());
    };
    for e in entries {
        if *budget == 0 {
            warning!(
                "seed: stopped checking hard links in {} after 100000 entries",
                path.display()
            );
            return Ok(());
        }
        *budget -= 1;
        let Ok(st) = fstatat(
            dir,
            e.name.as_os_str(),
            nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
        ) else {
            continue;
        };
        if is_type(&st, SFlag::S_IFREG) && st.st_nlink > 1 {
            return Err(HardLinks {
                path: path.join(&e.name),
                nlink: nlink(&st),
            });
        }
        if is_type(&st, SFlag::S_IFDIR)
            && let Ok(fd) = openat(dir, e.name.as_os_str(), DIR_FLAGS, Mode::empty())
        {
            links_in(fd.as_fd(), &path.join(&e.name), depth + 1, budget)?;
        }
    }
    Ok(())
}
