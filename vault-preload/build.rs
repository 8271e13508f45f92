//! Link the unwinder that Rust's standard library references statically
//! (`libgcc_eh.a`), so that the preload does not pull `libgcc_s.so.1` into
//! every process of the container: loading it costs a library lookup, four
//! mappings and, at load, a constructor that runs CPUID (a VM exit on
//! virtual machines). With `panic = "abort"` nothing unwinds; the symbols
//! only have to resolve. `--as-needed` (rustc's default) then drops
//! `libgcc_s` from the preload's dependencies.

use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let target = std::env::var("TARGET").unwrap_or_default();
    if !target.contains("linux-gnu") {
        return;
    }
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let out = Command::new(&cc)
        .arg("-print-file-name=libgcc_eh.a")
        .output();
    let path = match out {
        Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout).trim().to_string(),
        _ => String::new(),
    };
    let lib = std::path::Path::new(&path);
    if !lib.is_absolute() || !lib.exists() {
        println!(
            "cargo:warning=libgcc_eh.a not found ({cc} -print-file-name): the preload will load libgcc_s.so.1 in every process"
        );
        return;
    }
    if let Some(dir) = lib.parent() {
        println!("cargo:rustc-link-search=native={}", dir.display());
    }
    println!("cargo:rustc-link-lib=static:-bundle=gcc_eh");
}
