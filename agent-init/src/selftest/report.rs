//! self-test's rows and how they print: a table with a verdict line, or one
//! JSON object (`--json`). A row only says whether an operation succeeded,
//! never what it read.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Status {
    Pass,
    Fail,
    Skip,
}

impl Status {
    pub(super) fn word(self) -> &'static str {
        match self {
            Status::Pass => "pass",
            Status::Fail => "FAIL",
            Status::Skip => "skip",
        }
    }
}

pub(super) struct Row {
    layer: &'static str,
    check: String,
    status: Status,
    detail: String,
}

#[derive(Default)]
pub(super) struct Report {
    pub(super) rows: Vec<Row>,
}

impl Report {
    pub(super) fn add(
        &mut self,
        layer: &'static str,
        check: impl Into<String>,
        status: Status,
        detail: impl Into<String>,
    ) {
        self.rows.push(Row {
            layer,
            check: check.into(),
            status,
            detail: detail.into(),
        });
    }

    /// No row failed.
    pub(super) fn ok(&self) -> bool {
        self.rows.iter().all(|row| row.status != Status::Fail)
    }

    /// An attack row: `r` is the attack's outcome; denied is a pass.
    pub(super) fn attack<T>(
        &mut self,
        layer: &'static str,
        check: impl Into<String>,
        r: std::io::Result<T>,
    ) {
        match r {
            Ok(_) => self.add(layer, check, Status::Fail, "succeeded: NOT blocked"),
            Err(e) => self.add(
                layer,
                check,
                Status::Pass,
                format!("blocked: {}", errno_name(&e)),
            ),
        }
    }
}

pub(super) fn errno_name(e: &std::io::Error) -> String {
    let n = match e.raw_os_error() {
        Some(libc::EACCES) => "EACCES",
        Some(libc::EPERM) => "EPERM",
        Some(libc::ENOSYS) => "ENOSYS",
        Some(libc::EXDEV) => "EXDEV",
        Some(libc::ENOENT) => "ENOENT",
        Some(libc::EINVAL) => "EINVAL",
        Some(libc::ESRCH) => "ESRCH",
        Some(libc::EROFS) => "EROFS",
        Some(libc::EEXIST) => "EEXIST",
        _ => return e.to_string(),
    };
    n.to_string()
}

/// One JSON object (`--json`), or a table and a verdict line, on stdout.
pub(super) fn print_report(r: &Report, ok: bool, json: bool) {
    if json {
        let checks = r
            .rows
            .iter()
            .map(|row| {
                crate::json_out::check_row(row.layer, &row.check, row.status.word(), &row.detail)
            })
            .collect();
        println!("{}", crate::json_out::self_test(ok, checks));
    } else {
        for row in &r.rows {
            println!(
                "{:<4}  {:<10}  {:<58}  {}",
                row.status.word(),
                row.layer,
                row.check,
                row.detail
            );
        }
        println!(
            "\n{}",
            if ok {
                "self-test: every enabled layer holds"
            } else {
                "self-test: FAILED (rows marked FAIL)"
            }
        );
    }
}
