//! The half of agent-vault's policy that the preload runs: `no_std`, no
//! allocation, no dependencies.
//!
//! The `policy` crate parses and validates the TOML and computes everything
//! (the base layer's rules, the probe, the vault); it writes the result as a
//! *policy image* (`policy.bin`). Every process in the container loads the
//! preload, so what the preload does at start-up is paid thousands of times:
//! it reads the image into a static buffer and validates it in one pass
//! ([`image::View::decode`]), and answers every later question from it
//! without allocating: is this path or `(dev, ino)` a vault entry
//! ([`image::View::match_path`]), which rules make the tool layer
//! ([`walk`]).
//!
//! - [`access`]: Landlock file system rights, with the kernel's bit values.
//! - [`pathbuf`]: a fixed-size path buffer and lexical normalization.
//! - [`image`]: the policy image's format and its validated view.
//! - [`layout`]: the state directory's names and modes (the contract
//!   between agent-init, the preload and self-test).
//! - [`walk`]: the tool layer's allocation-free walk.
//! - [`expand`]: `~` and `${VAR:-default}` into a fixed buffer (the preload's
//!   built-in policy, when no agent-init session exists).
//! - [`proxy_path`]: which request paths an OAuth route forwards (the
//!   policy's and vault-proxy's one rule).
//! - [`secret_env`]: which environment variables are secret, unpacked
//!   for the harness's children, which ask for every variable they pass on.

#![no_std]

pub mod access;
pub mod expand;
pub mod image;
pub mod layout;
pub mod pathbuf;
pub mod proxy_path;
pub mod secret_env;
pub mod walk;

pub use access::Access;
pub use image::{FileId, Mode, VaultKind, View};
