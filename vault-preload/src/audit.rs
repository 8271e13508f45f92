//! Denial records, written with raw system calls and without allocating
//! (stack buffers), according to the policy's audit sink:
//! - a file or `log` (agent-init's stderr): the record goes, as an
//!   [`AuditDatagram`], to agent-init's audit socket in the state directory
//!   ([`layout::AUDIT_SOCKET`]); agent-init writes it to the file or its
//!   stderr with the sender's pid, uid and gid as
//!   the kernel gives them, so a process can claim anything but cannot
//!   pass for another. The send never blocks on agent-init: when its
//!   queue is full the process yields the CPU, then naps, for at most
//!   10 ms in all, then drops the record and counts it ([`DROPPED`]); so
//!   it does at once when there is no socket (no agent-init running);
//! - `stderr`: a JSON line on this process's stderr (what the user sees):
//!   `{"time":"2026-11-24T22:25:28.123Z","pid":42,"exe":"/usr/bin/cat",
//!   "path":"/pi-agent/auth.json","rule":"pi","op":"open","action":"deny",
//!   "layer":"preload"}`;
//! - `off`: nothing. Never to stdout.
//!
//! `layer` names what decided: `preload` when the hooks refused by their own
//! check, `kernel` when the real call failed (the tool layer's `EACCES`) and
//! the record only resolves which rule it was. Only this process knows it,
//! so in the datagram it is one more claimed field.

use crate::guard::{EntryId, INTERNAL};
use crate::state::State;
use crate::sys;
use core::sync::atomic::{AtomicU64, Ordering};
use policy_core::image::Audit;
use policy_core::layout::{self, AUDIT_DATAGRAM_MAX, AuditDatagram};

/// Records this process could not hand to agent-init (queue full, or no
/// socket). Inherited by fork, reset by exec; sent with every record
/// (`dropped`), so the audit file shows what is missing.
pub static DROPPED: AtomicU64 = AtomicU64::new(0);

/// When agent-init's queue is full (the kernel's default queue is 10
/// datagrams), a sender first yields the CPU this many times...
const FULL_QUEUE_YIELDS: u32 = 32;
/// ...then sleeps [`FULL_QUEUE_NAP_US`] at a time, this many times (10 ms
/// in all, on the denial path only), before it drops the record: bounded,
/// so a stalled agent-init never holds a tool up for longer.
const FULL_QUEUE_NAPS: u32 = 50;
const FULL_QUEUE_NAP_US: u32 = 200;

struct Buf {
    b: [u8; 8192],
    n: usize,
}

impl Buf {
    fn raw(&mut self, s: &[u8]) {
        let room = self.b.len() - self.n;
        let k = s.len().min(room);
        self.b[self.n..self.n + k].copy_from_slice(&s[..k]);
        self.n += k;
    }
    fn num(&mut self, v: u64) {
        let mut d = [0u8; 20];
        let s = sys::fmt_u64(v, &mut d);
        let mut tmp = [0u8; 20];
        tmp[..s.len()].copy_from_slice(s);
        self.raw(&tmp[..s.len()]);
    }
    fn num_pad(&mut self, v: u64, width: usize) {
        let mut d = [0u8; 20];
        let s = sys::fmt_u64(v, &mut d);
        for _ in s.len()..width {
            self.raw(b"0");
        }
        let mut tmp = [0u8; 20];
        tmp[..s.len()].copy_from_slice(s);
        self.raw(&tmp[..s.len()]);
    }
    /// A JSON string: quotes, backslashes, control and non-ASCII bytes escaped.
    fn string(&mut self, s: &[u8]) {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        self.raw(b"\"");
        for &c in s.iter().take(4096) {
            match c {
                b'"' => self.raw(b"\\\""),
                b'\\' => self.raw(b"\\\\"),
                0x20..=0x7e => self.raw(&[c]),
                _ => self.raw(&[
                    b'\\',
                    b'u',
                    b'0',
                    b'0',
                    HEX[(c >> 4) as usize],
                    HEX[(c & 15) as usize],
                ]),
            }
        }
        self.raw(b"\"");
    }
}

/// Days since 1970-01-01 to (year, month, day) (H. Hinnant's civil_from_days).
fn civil(days: i64) -> (i64, u64, u64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u64;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u64;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// Write one denial record for a refusal by the hooks' own check. `op`
/// names the hooked call.
pub fn deny(st: &State, path: &[u8], rule: EntryId, op: &[u8]) {
    record(st, path, rule, op, b"preload");
}

/// Write one denial record for a refusal by the kernel (the real call
/// failed with `EACCES`/`EPERM` on a vault entry).
pub fn deny_by_kernel(st: &State, path: &[u8], rule: EntryId, op: &[u8]) {
    record(st, path, rule, op, b"kernel");
}

/// One record; `layer` names what decided.
fn record(st: &State, path: &[u8], rule: EntryId, op: &[u8], layer: &[u8]) {
    if st.policy.audit == Audit::Off {
        return;
    }
    let rule_name: &[u8] = if rule == INTERNAL {
        b"(check failed)"
    } else {
        st.rule_name(rule)
    };
    let mut exe = [0u8; 1024];
    let n = sys::readlinkat(libc::AT_FDCWD, b"/proc/self/exe\0", &mut exe);
    let exe: &[u8] = if n > 0 { &exe[..n as usize] } else { b"?" };
    match &st.policy.audit {
        Audit::Off => {}
        Audit::Stderr => stderr_line(path, rule_name, op, exe, layer),
        Audit::File(_) | Audit::Log => send(st, path, rule_name, op, exe, layer),
    }
}

/// Send the record to agent-init's audit socket.
fn send(st: &State, path: &[u8], rule: &[u8], op: &[u8], exe: &[u8], layer: &[u8]) {
    let Some(sock) = &st.audit_socket else {
        DROPPED.fetch_add(1, Ordering::Relaxed);
        return;
    };
    let mut d = [0u8; 20];
    let pid = sys::fmt_u64(sys::getpid() as u64, &mut d);
    let mut dd = [0u8; 20];
    let dropped = sys::fmt_u64(DROPPED.load(Ordering::Relaxed), &mut dd);
    let mut buf = [0u8; AUDIT_DATAGRAM_MAX];
    let bytes = AuditDatagram {
        pid,
        dropped,
        exe,
        op,
        rule,
        path,
        layer,
    }
    .encode(&mut buf);
    let fd = sys::unix_dgram_socket();
    if fd < 0 {
        DROPPED.fetch_add(1, Ordering::Relaxed);
        return;
    }
    let mut waits = 0;
    let sent = loop {
        let r = sys::sendto_unix(fd, bytes, sock.bytes());
        if r != -(libc::EAGAIN as isize) || waits == FULL_QUEUE_YIELDS + FULL_QUEUE_NAPS {
            break r >= 0;
        }
        if waits < FULL_QUEUE_YIELDS {
            // SAFETY: sched_yield has no arguments.
            unsafe { libc::sched_yield() };
        } else {
            sys::sleep_us(FULL_QUEUE_NAP_US);
        }
        waits += 1;
    };
    sys::close(fd);
    if !sent {
        DROPPED.fetch_add(1, Ordering::Relaxed);
    }
}

/// The JSON line on this process's stderr (the `stderr` sink).
fn stderr_line(path: &[u8], rule: &[u8], op: &[u8], exe: &[u8], layer: &[u8]) {
    let mut b = Buf { b: [0; 8192], n: 0 };
    let (secs, nsec) = sys::clock_realtime();
    let (y, mo, d) = civil(secs.div_euclid(86_400));
    let tod = secs.rem_euclid(86_400) as u64;
    b.raw(b"{\"time\":\"");
    b.num(y.max(0) as u64);
    b.raw(b"-");
    b.num_pad(mo, 2);
    b.raw(b"-");
    b.num_pad(d, 2);
    b.raw(b"T");
    b.num_pad(tod / 3600, 2);
    b.raw(b":");
    b.num_pad(tod / 60 % 60, 2);
    b.raw(b":");
    b.num_pad(tod % 60, 2);
    b.raw(b".");
    b.num_pad((nsec / 1_000_000) as u64, 3);
    b.raw(b"Z\",\"pid\":");
    b.num(sys::getpid() as u64);
    b.raw(b",\"exe\":");
    b.string(exe);
    b.raw(b",\"path\":");
    b.string(path);
    b.raw(b",\"rule\":");
    b.string(rule);
    b.raw(b",\"op\":");
    b.string(op);
    b.raw(b",\"action\":\"deny\",\"layer\":");
    b.string(layer);
    b.raw(b"}\n");
    if b.n == b.b.len() {
        b.b[b.n - 1] = b'\n';
    }
    sys::write_all(2, &b.b[..b.n]);
}

/// `<state dir>/audit.sock`, where the file and log sinks send.
pub fn socket_path(dir: &crate::state_dir::StatePath) -> Option<crate::state_dir::StatePath> {
    crate::state_dir::join(dir, layout::AUDIT_SOCKET.name.as_bytes())
}

#[cfg(test)]
mod tests {
    #[test]
    fn civil_dates() {
        assert_eq!(super::civil(0), (1970, 1, 1));
        assert_eq!(super::civil(20_416), (2025, 11, 24));
        assert_eq!(super::civil(11_016), (2000, 2, 29));
    }
}
