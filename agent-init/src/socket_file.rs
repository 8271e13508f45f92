//! The datagram sockets agent-init serves at fixed paths in its state
//! directory (the audit sink's, the launch registry's), bound one way:
//! what an earlier run left at the path is replaced, and the path's mode
//! (who may send) is set before the socket is handed to its server.

use crate::sys;
use std::ffi::CString;
use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// A socket that could not be bound: the call that failed and its error
/// (the caller names the path in its own error).
#[derive(Debug)]
pub struct BindFailed {
    /// `unlink`, `bind` or `chmod`.
    pub call: &'static str,
    pub err: io::Error,
}

/// Bind a close-on-exec datagram socket with `SO_PASSCRED` at `path`
/// ([`sys::bind_unix_dgram`]), replacing an earlier run's, then set the
/// path's mode to `mode`.
pub fn bind(path: &Path, mode: u32) -> Result<OwnedFd, BindFailed> {
    let failed = |call| move |err| BindFailed { call, err };
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(failed("unlink")(e)),
    }
    let c = CString::new(path.as_os_str().as_bytes())
        .map_err(|_| failed("bind")(io::ErrorKind::InvalidInput.into()))?;
    let socket = sys::bind_unix_dgram(&c).map_err(failed("bind"))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(failed("chmod"))?;
    Ok(socket)
}
