//! The audit record agent-init writes for each denial a process reports:
//! one JSON line. Pure formatting, shared by agent-init's audit sink and
//! the test suite's `World` (which receives records without agent-init),
//! so the two write the same thing. Which fields come from the kernel and
//! which from the sender is the point of the format: see
//! [`record_line`].

use policy_core::layout::AuditDatagram;
use std::fmt::Write;
use std::time::{SystemTime, UNIX_EPOCH};

/// The sender of a datagram, as the kernel says (`SCM_CREDENTIALS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sender {
    pub pid: i32,
    pub uid: u32,
    pub gid: u32,
}

/// What the receiver read about the sender from `/proc/<pid>` at receipt
/// (`None`: gone, or not readable).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SenderProc {
    pub exe: Option<Vec<u8>>,
    pub comm: Option<Vec<u8>>,
}

/// One record:
/// `{"time":…,"pid":…,"uid":…,"gid":…,"exe":…,"comm":…,"action":"deny","claimed":{…}}`.
/// `time` is the receipt time (UTC, milliseconds); `pid`, `uid`, `gid`
/// are the kernel's; `exe` and `comm` were read from `/proc/<pid>` at
/// receipt (`null` when the sender was gone or its `exe` unreadable);
/// `claimed` holds what the sender said about itself (`pid`, `dropped`,
/// `exe`, `op`, `rule`, `path`, `layer`, all strings), or `{"malformed":…}` for a datagram not
/// in the format (the bytes, cut to 256).
pub fn record_line(
    time: SystemTime,
    sender: Sender,
    proc_: &SenderProc,
    datagram: &[u8],
) -> String {
    let mut s = String::with_capacity(256 + datagram.len());
    s.push_str("{\"time\":\"");
    push_time(&mut s, time);
    let _ = write!(
        s,
        "\",\"pid\":{},\"uid\":{},\"gid\":{},\"exe\":",
        sender.pid, sender.uid, sender.gid
    );
    push_opt(&mut s, proc_.exe.as_deref());
    s.push_str(",\"comm\":");
    push_opt(&mut s, proc_.comm.as_deref());
    s.push_str(",\"action\":\"deny\",\"claimed\":{");
    match AuditDatagram::parse(datagram) {
        Some(d) => {
            for (i, (k, v)) in [
                ("pid", d.pid),
                ("dropped", d.dropped),
                ("exe", d.exe),
                ("op", d.op),
                ("rule", d.rule),
                ("path", d.path),
                ("layer", d.layer),
            ]
            .into_iter()
            .enumerate()
            {
                if i > 0 {
                    s.push(',');
                }
                let _ = write!(s, "\"{k}\":");
                push_str(&mut s, v);
            }
        }
        None => {
            s.push_str("\"malformed\":");
            push_str(&mut s, &datagram[..datagram.len().min(256)]);
        }
    }
    s.push_str("}}\n");
    s
}

/// The line the `log` sink writes in place of the records it dropped
/// over its rate limit:
/// `{"time":…,"action":"suppressed","suppressed":N,"limit_per_second":L}`.
/// `time` is when the line is written (UTC, milliseconds).
pub fn suppressed_line(time: SystemTime, suppressed: u64, limit_per_second: u32) -> String {
    let mut s = String::with_capacity(128);
    s.push_str("{\"time\":\"");
    push_time(&mut s, time);
    let _ = writeln!(
        s,
        "\",\"action\":\"suppressed\",\"suppressed\":{suppressed},\"limit_per_second\":{limit_per_second}}}"
    );
    s
}

fn push_opt(s: &mut String, v: Option<&[u8]>) {
    match v {
        Some(v) => push_str(s, v),
        None => s.push_str("null"),
    }
}

/// A JSON string: quotes, backslashes, control and non-ASCII bytes escaped
/// (each byte on its own: the bytes are paths, not text).
fn push_str(s: &mut String, v: &[u8]) {
    s.push('"');
    for &c in v {
        match c {
            b'"' => s.push_str("\\\""),
            b'\\' => s.push_str("\\\\"),
            0x20..=0x7e => s.push(char::from(c)),
            _ => {
                let _ = write!(s, "\\u{c:04x}");
            }
        }
    }
    s.push('"');
}

fn push_time(s: &mut String, t: SystemTime) {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs() as i64;
    let (y, m, day) = civil(secs.div_euclid(86_400));
    let tod = secs.rem_euclid(86_400);
    let _ = write!(
        s,
        "{y:04}-{m:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        tod / 3600,
        tod / 60 % 60,
        tod % 60,
        d.subsec_millis()
    );
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_suppressed_line_is_one_json_object() {
        let l = suppressed_line(UNIX_EPOCH, 80, 20);
        assert_eq!(
            l,
            "{\"time\":\"1970-01-01T00:00:00.000Z\",\"action\":\"suppressed\",\"suppressed\":80,\"limit_per_second\":20}\n"
        );
    }
    use policy_core::layout::AUDIT_DATAGRAM_MAX;
    use std::time::Duration;

    #[test]
    fn the_kernel_fields_lead_and_the_claims_are_labelled() {
        let d = AuditDatagram {
            pid: b"1",
            dropped: b"3",
            exe: b"/usr/bin/\"x",
            op: b"open",
            rule: b"pi",
            path: b"/pi-agent/a\nb",
            layer: b"kernel",
        };
        let mut buf = [0u8; AUDIT_DATAGRAM_MAX];
        let t = UNIX_EPOCH + Duration::from_millis(1_764_000_000_123);
        let line = record_line(
            t,
            Sender {
                pid: 42,
                uid: 1000,
                gid: 1000,
            },
            &SenderProc {
                exe: Some(b"/usr/bin/cat".to_vec()),
                comm: None,
            },
            d.encode(&mut buf),
        );
        assert_eq!(
            line,
            "{\"time\":\"2025-11-24T16:00:00.123Z\",\"pid\":42,\"uid\":1000,\"gid\":1000,\"exe\":\"/usr/bin/cat\",\"comm\":null,\"action\":\"deny\",\"claimed\":{\"pid\":\"1\",\"dropped\":\"3\",\"exe\":\"/usr/bin/\\\"x\",\"op\":\"open\",\"rule\":\"pi\",\"path\":\"/pi-agent/a\\u000ab\",\"layer\":\"kernel\"}}\n"
        );
        let bad = record_line(
            t,
            Sender {
                pid: 7,
                uid: 0,
                gid: 0,
            },
            &SenderProc::default(),
            b"{\"pid\":1}",
        );
        assert!(
            bad.contains("\"pid\":7,")
                && bad.contains("\"claimed\":{\"malformed\":\"{\\\"pid\\\":1}\"}"),
            "{bad}"
        );
    }
}
