//! The policy image: the effective policy as the preload reads it
//! (`policy.bin`). The format and its reader are `policy_core::image`,
//! re-exported here; this module adds the writer, [`Policy::to_image`].
//!
//! Every process in the container loads the preload, and parsing TOML there
//! would cost each of them about as much as the rest of its start-up
//! (hundreds of thousands of instructions and dozens of page faults).
//! agent-init writes this image beside the effective TOML; the preload reads
//! it with `policy_core::View::decode`, which checks it in one pass and
//! keeps slices into it: no parser, no allocation. The layout is documented
//! in `policy_core::image`. The image holds what the preload needs, already
//! computed here: the base layer's rules and hidden paths (the tool layer is
//! derived from them) and the probe directory.

use crate::landlock_plan::base_layer;
use crate::resolved::{AuditSink, EnforceMode, Policy};
pub use policy_core::image::*;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// The image's form of an enforcement mode.
pub fn mode(m: EnforceMode) -> Mode {
    match m {
        EnforceMode::Required => Mode::Required,
        EnforceMode::BestEffort => Mode::BestEffort,
        EnforceMode::Off => Mode::Off,
    }
}

impl Policy {
    /// Encode an expanded policy as the policy image.
    pub fn to_image(&self) -> Vec<u8> {
        let bytes = |p: &Path| p.as_os_str().as_bytes().to_vec();
        let audit_path = match &self.audit {
            AuditSink::File(p) => {
                let mut v = bytes(p);
                v.push(0);
                Some(v)
            }
            _ => None,
        };
        let audit = match (&self.audit, &audit_path) {
            (AuditSink::Stderr, _) => Audit::Stderr,
            (AuditSink::Log, _) => Audit::Log,
            (AuditSink::File(_), Some(p)) => CStr::new(p).map_or(Audit::Off, Audit::File),
            _ => Audit::Off,
        };
        let mut e = Encoder(VecOut(Vec::with_capacity(2048)));
        let probe = self.probe_dir().map(bytes);
        let tools = ToolOptions {
            keep_terminal: self.tools.keep_terminal,
        };
        let launcher_paths: Vec<Vec<u8>> = self
            .harness
            .launcher_files
            .iter()
            .map(|l| bytes(&l.path))
            .collect();
        let launchers: Vec<Launcher<'_>> = self
            .harness
            .launcher_files
            .iter()
            .zip(&launcher_paths)
            .map(|(l, path)| Launcher { path, id: l.id })
            .collect();
        e.header(
            mode(self.landlock),
            audit,
            probe.as_deref(),
            tools,
            &launchers,
        );
        e.count(self.vault.len());
        for v in &self.vault {
            e.entry(v.name.as_bytes(), &bytes(&v.path), v.kind);
            e.count(v.tool_exceptions.len());
            v.tool_exceptions.iter().for_each(|x| e.str(&bytes(x)));
        }
        e.count(self.secret_env.len());
        self.secret_env.iter().for_each(|s| e.str(s.as_bytes()));
        e.count(self.secret_env_patterns.len());
        self.secret_env_patterns
            .iter()
            .for_each(|s| e.str(s.as_bytes()));
        e.count(self.keep_env.len());
        self.keep_env.iter().for_each(|s| e.str(s.as_bytes()));
        e.count(self.filesystem.tool_read_only.len());
        self.filesystem
            .tool_read_only
            .iter()
            .for_each(|p| e.str(&bytes(p)));
        let base = base_layer(self);
        e.count(base.rules.len());
        base.rules
            .iter()
            .for_each(|r| e.rule(&bytes(&r.path), r.access));
        e.count(base.hidden.len());
        base.hidden.iter().for_each(|h| e.str(&bytes(&h.path)));
        e.0.0
    }
}

struct VecOut(Vec<u8>);

impl Out for VecOut {
    fn put(&mut self, b: &[u8]) {
        self.0.extend_from_slice(b);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::expand::ExpandContext;
    use policy_core::View;
    use std::collections::BTreeMap;

    fn sample() -> Policy {
        let mut env = BTreeMap::new();
        env.insert("CLAUDE_CONFIG_DIR".to_string(), "/claude".to_string());
        let ctx = ExpandContext {
            home: Some("/home/agent".into()),
            env,
        };
        let mut p = Policy::builtin(&ctx).unwrap();
        p.add_probe("/run/agent-vault/probe".into());
        p.harness.launches = vec!["/usr/local/bin/pi".into(), "/usr/local/bin/gone".into()];
        // As agent-init leaves it: the second launcher was not found.
        p.set_launcher_files(vec![crate::LauncherFile {
            path: "/usr/local/bin/pi".into(),
            id: FileId {
                dev: 0x803,
                ino: 77,
            },
        }]);
        p
    }

    fn s(b: &[u8]) -> String {
        String::from_utf8(b.to_vec()).unwrap()
    }

    #[test]
    fn the_image_holds_what_the_preload_needs() {
        let p = sample();
        let bytes = p.to_image();
        let v = View::decode(&bytes).unwrap();
        assert_eq!(v.landlock, Mode::Required);
        assert_eq!(v.audit, Audit::Log, "the default sink: agent-init's log");
        assert_eq!(
            v.probe.map(|p| s(p.bytes())).as_deref(),
            Some("/run/agent-vault/probe")
        );
        let vault: Vec<_> = v
            .vault()
            .map(|e| {
                let xs: Vec<_> = e.exceptions.map(|x| s(x.bytes())).collect();
                (s(e.name.bytes()), s(e.path.bytes()), e.kind, xs)
            })
            .collect();
        let want: Vec<_> = p
            .vault
            .iter()
            .map(|e| {
                let xs: Vec<_> = e
                    .tool_exceptions
                    .iter()
                    .map(|x| x.display().to_string())
                    .collect();
                (e.name.clone(), e.path.display().to_string(), e.kind, xs)
            })
            .collect();
        assert_eq!(vault, want);
        let env: Vec<_> = v.secret_env().map(|e| s(e.bytes())).collect();
        assert_eq!(env, p.secret_env);
        let base: Vec<_> = v.base().map(|(p, a)| (s(p.bytes()), a)).collect();
        let want: Vec<_> = base_layer(&p)
            .rules
            .iter()
            .map(|r| (r.path.display().to_string(), r.access))
            .collect();
        assert_eq!(base, want);
        let hidden: Vec<_> = v.hidden().map(|h| s(h.bytes())).collect();
        assert_eq!(
            hidden,
            ["/pi-agent-ro", "/claude-ro"],
            "the seed sources outside the vault"
        );
    }

    #[test]
    fn the_image_carries_the_launchers_agent_init_found() {
        let p = sample();
        let b = p.to_image();
        let v = View::decode(&b).unwrap();
        let got: Vec<_> = v.launchers().map(|(p, id)| (s(p.bytes()), id)).collect();
        assert_eq!(
            got,
            [(
                "/usr/local/bin/pi".to_string(),
                FileId {
                    dev: 0x803,
                    ino: 77
                }
            )],
            "a launcher not found at start is not in the image"
        );
        assert!(v.is_launcher(FileId {
            dev: 0x803,
            ino: 77
        }));
        let mut none = p.clone();
        none.set_launcher_files(Vec::new());
        assert_eq!(
            View::decode(&none.to_image()).unwrap().launchers().count(),
            0
        );
    }

    #[test]
    fn other_modes_and_sinks_round_trip() {
        let mut p = sample();
        p.audit = AuditSink::Stderr;
        p.landlock = EnforceMode::Off;
        let b = p.to_image();
        let v = View::decode(&b).unwrap();
        assert_eq!((v.audit, v.landlock), (Audit::Stderr, Mode::Off));
        p.audit = AuditSink::Off;
        p.landlock = EnforceMode::BestEffort;
        let b = p.to_image();
        let v = View::decode(&b).unwrap();
        assert_eq!((v.audit, v.landlock), (Audit::Off, Mode::BestEffort));
        p.audit = AuditSink::File("/run/agent-vault/audit.jsonl".into());
        let b = p.to_image();
        let v = View::decode(&b).unwrap();
        assert_eq!(
            v.audit,
            Audit::File(policy_core::image::CStr::new(b"/run/agent-vault/audit.jsonl\0").unwrap())
        );
    }

    #[test]
    fn every_truncation_is_an_error() {
        let b = sample().to_image();
        for n in 0..b.len() {
            assert!(
                View::decode(&b[..n]).is_err(),
                "prefix of {n} bytes accepted"
            );
        }
        let mut longer = b.clone();
        longer.push(0);
        assert_eq!(View::decode(&longer).unwrap_err().what, "trailing bytes");
    }

    #[test]
    fn unclean_paths_are_refused() {
        for bad in ["/a/../b", "rel", "/a/", "/a//b"] {
            let mut p = sample();
            p.filesystem.read_only.push(bad.into());
            let e = View::decode(&p.to_image()).unwrap_err();
            assert_eq!(e.what, "a path is not absolute and clean", "{bad}");
        }
    }

    #[test]
    fn oversized_policies_are_refused_at_load() {
        let mut entries = String::new();
        for i in 0..64 {
            entries.push_str(&format!(
                "[[vault.entry]]\nname = \"e{i}\"\ndir = \"/v/{i}\"\n"
            ));
        }
        let text = crate::testing::policy_toml("1000:1000", &entries, "", "");
        let e = crate::load::load_str(&text, "big.toml", &ExpandContext::default()).unwrap_err();
        // The 64th entry's name: line 5 + 3 * 63, after `name = `.
        assert_eq!((e.line, e.column), (194, 8), "{e}");
        assert!(
            e.to_string()
                .contains("64 vault entries; the preload holds at most 63"),
            "{e}"
        );
    }
}
