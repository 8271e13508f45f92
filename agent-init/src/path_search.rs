//! Finding the harness's program as `execvp` would, so agent-init can
//! inspect the file it is about to start (`unhooked`) and name it in errors.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

/// execvp's search: a name with `/` is used as is; otherwise the first PATH
/// entry where it exists (preferring an executable one).
pub fn resolve_command(cmd: &OsStr, path: Option<&OsString>) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    if cmd.as_bytes().contains(&b'/') {
        let p = PathBuf::from(cmd);
        return p.exists().then_some(p);
    }
    if cmd.is_empty() {
        return None;
    }
    let default = OsString::from("/usr/local/bin:/usr/bin:/bin");
    let path = path.unwrap_or(&default);
    let mut first = None;
    for dir in std::env::split_paths(path) {
        let dir = if dir.as_os_str().is_empty() {
            PathBuf::from(".")
        } else {
            dir
        };
        let p = dir.join(cmd);
        if let Ok(md) = std::fs::metadata(&p) {
            if md.is_dir() {
                continue;
            }
            if md.permissions().mode() & 0o111 != 0 {
                return Some(p);
            }
            first.get_or_insert(p);
        }
    }
    first
}
