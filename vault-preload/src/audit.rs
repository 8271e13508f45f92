//! Denial records: one JSON object per line, written with raw system calls
//! to the policy's audit sink (a file agent-init created, or this process's
//! stderr when the policy says `stderr`; nothing when `off`). Never to
//! stdout. Allocation-free: the record is built in a stack buffer.
//!
//! `{"time":"2026-11-24T22:25:28.123Z","pid":42,"exe":"/usr/bin/cat",
//!   "path":"/pi-agent/auth.json","rule":"pi","op":"open","action":"deny",
//!   "layer":"preload"}`
//!
//! `layer` names what decided: `preload` when the hooks refused by their own
//! check, `kernel` when the real call failed (the tool layer's `EACCES`) and
//! the record only resolves which rule it was.

use crate::guard::{EntryId, INTERNAL};
use crate::state::State;
use crate::sys;
use policy_core::image::Audit;

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
    let fd = match &st.policy.audit {
        Audit::Off => return,
        Audit::Stderr => 2,
        Audit::File(p) => {
            let fd = sys::openat(
                libc::AT_FDCWD,
                p.with_nul(),
                libc::O_WRONLY | libc::O_APPEND | libc::O_CLOEXEC | libc::O_NOFOLLOW,
                0,
            );
            if fd < 0 {
                return;
            }
            fd
        }
    };
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
    let mut exe = [0u8; 1024];
    let n = sys::readlinkat(libc::AT_FDCWD, b"/proc/self/exe\0", &mut exe);
    b.string(if n > 0 { &exe[..n as usize] } else { b"?" });
    b.raw(b",\"path\":");
    b.string(path);
    b.raw(b",\"rule\":");
    if rule == INTERNAL {
        b.string(b"(check failed)");
    } else {
        b.string(st.rule_name(rule));
    }
    b.raw(b",\"op\":");
    b.string(op);
    b.raw(b",\"action\":\"deny\",\"layer\":");
    b.string(layer);
    b.raw(b"}\n");
    if b.n == b.b.len() {
        b.b[b.n - 1] = b'\n';
    }
    sys::write_all(fd, &b.b[..b.n]);
    if fd != 2 {
        sys::close(fd);
    }
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
