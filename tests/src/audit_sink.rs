//! The test suite's stand-in for agent-init's audit sink: a [`World`]
//! has no agent-init, so it binds the state directory's audit socket
//! itself and writes what arrives to its audit file with the same format
//! as agent-init (`policy::audit::record_line`, the kernel's
//! `SCM_CREDENTIALS` for the sender). A thread drains the socket as
//! records come (the kernel queues only a few datagrams); [`Sink::drain`]
//! lets a test read the file after every record already sent is in it.
//!
//! [`World`]: crate::World

use policy::audit::{Sender, SenderProc, record_line};
use policy::layout::AUDIT_DATAGRAM_MAX;
use std::fs::File;
use std::io::Write;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// The bound socket and the file its records go to.
pub struct Sink {
    inner: Arc<Inner>,
}

struct Inner {
    socket: OwnedFd,
    file: Mutex<File>,
    stop: AtomicBool,
}

impl Sink {
    /// Bind `socket` (mode 0666) and append records to `file`; start draining.
    pub fn start(socket: &Path, file: &Path) -> Sink {
        let fd = bind(socket);
        std::fs::set_permissions(
            socket,
            std::os::unix::fs::PermissionsExt::from_mode(policy::layout::AUDIT_SOCKET.mode),
        )
        .unwrap();
        let file = std::fs::OpenOptions::new().append(true).open(file).unwrap();
        let inner = Arc::new(Inner {
            socket: fd,
            file: Mutex::new(file),
            stop: AtomicBool::new(false),
        });
        let t = inner.clone();
        std::thread::spawn(move || {
            while !t.stop.load(Ordering::Relaxed) {
                let mut p = libc::pollfd {
                    fd: t.socket.as_raw_fd(),
                    events: libc::POLLIN,
                    revents: 0,
                };
                // SAFETY: `p` is one live pollfd for the call.
                if unsafe { libc::poll(&raw mut p, 1, 50) } > 0 {
                    t.drain();
                }
            }
        });
        Sink { inner }
    }

    /// Write every record already queued.
    pub fn drain(&self) {
        self.inner.drain();
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        self.inner.stop.store(true, Ordering::Relaxed);
    }
}

impl Inner {
    fn drain(&self) {
        let mut file = self.file.lock().unwrap();
        let mut buf = vec![0u8; AUDIT_DATAGRAM_MAX];
        while let Some((n, c)) = recv(&self.socket, &mut buf) {
            let dir = format!("/proc/{}", c.pid);
            let proc_ = SenderProc {
                exe: std::fs::read_link(format!("{dir}/exe"))
                    .ok()
                    .map(|p| p.into_os_string().into_encoded_bytes()),
                comm: std::fs::read(format!("{dir}/comm"))
                    .ok()
                    .map(|c| c.trim_ascii_end().to_vec()),
            };
            let sender = Sender {
                pid: c.pid,
                uid: c.uid,
                gid: c.gid,
            };
            let line = record_line(std::time::SystemTime::now(), sender, &proc_, &buf[..n]);
            file.write_all(line.as_bytes()).unwrap();
        }
    }
}

fn bind(path: &Path) -> OwnedFd {
    // SAFETY: integer arguments only.
    let fd = unsafe { libc::socket(libc::AF_UNIX, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    assert!(fd >= 0, "socket: {}", std::io::Error::last_os_error());
    // SAFETY: `fd` was just returned by socket() and nothing else owns it.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: sockaddr_un is plain data; all zeroes is a valid value.
    let mut addr: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    let bytes = path.as_os_str().as_bytes();
    assert!(
        bytes.len() < addr.sun_path.len(),
        "{}: too long",
        path.display()
    );
    addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
    for (d, &b) in addr.sun_path.iter_mut().zip(bytes) {
        *d = b as libc::c_char;
    }
    let len = std::mem::size_of::<libc::sa_family_t>() + bytes.len() + 1;
    // SAFETY: `addr` is a live, initialised sockaddr_un of at least `len` bytes.
    let r = unsafe {
        libc::bind(
            fd.as_raw_fd(),
            (&raw const addr).cast(),
            len as libc::socklen_t,
        )
    };
    assert_eq!(
        r,
        0,
        "bind {}: {}",
        path.display(),
        std::io::Error::last_os_error()
    );
    let on: libc::c_int = 1;
    // SAFETY: `on` is a live c_int and its size is passed.
    let r = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PASSCRED,
            (&raw const on).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    assert_eq!(r, 0, "SO_PASSCRED: {}", std::io::Error::last_os_error());
    fd
}

/// One queued datagram and its sender's credentials; `None` when the queue is empty.
fn recv(fd: &OwnedFd, buf: &mut [u8]) -> Option<(usize, libc::ucred)> {
    let mut control = [0u64; 8];
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // SAFETY: msghdr is plain data; all zeroes is a valid value.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &raw mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = std::mem::size_of_val(&control);
    // SAFETY: `msg` points at `iov` (into `buf`) and `control`, live and
    // writable for the call.
    let n = unsafe { libc::recvmsg(fd.as_raw_fd(), &raw mut msg, libc::MSG_DONTWAIT) };
    if n < 0 {
        return None;
    }
    // SAFETY: `msg` was filled by recvmsg.
    let mut cmsg = unsafe { libc::CMSG_FIRSTHDR(&raw const msg) };
    while !cmsg.is_null() {
        // SAFETY: a non-null cmsg from CMSG_FIRSTHDR/NXTHDR points into `control`.
        let hdr = unsafe { &*cmsg };
        if hdr.cmsg_level == libc::SOL_SOCKET && hdr.cmsg_type == libc::SCM_CREDENTIALS {
            // SAFETY: `cmsg` is a live control message in `control`.
            let data = unsafe { libc::CMSG_DATA(cmsg) };
            // SAFETY: an SCM_CREDENTIALS message's data is one ucred (in
            // `control`, live), possibly unaligned, so read unaligned.
            let c = unsafe { data.cast::<libc::ucred>().read_unaligned() };
            return Some((n as usize, c));
        }
        // SAFETY: `msg` and `cmsg` are the live header and current message.
        cmsg = unsafe { libc::CMSG_NXTHDR(&raw const msg, cmsg) };
    }
    panic!("a datagram without SCM_CREDENTIALS despite SO_PASSCRED");
}
