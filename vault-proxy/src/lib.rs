//! vault-proxy: agent-vault's credential proxy.
//!
//! The harness is given a per-start placeholder shaped like its provider's
//! credential and a base URL `http://127.0.0.1:PORT/<route>`; the real
//! credential lives only in this process (its own uid, not dumpable,
//! Landlock-confined), which checks the placeholder, swaps in the real
//! credential and streams the request to the provider over TLS. OAuth
//! sessions are refreshed here, never by the harness.
//!
//! Start sequence ([`prepare`] then [`Prepared::serve`]): validate the
//! config, load trust anchors, open the state directory, bind the listener;
//! the binary then confines itself ([`confine`]) and serves.
//!
//! agent-init's side: build a [`config::ProxyConfig`], serialize it with
//! [`config::ProxyConfig::to_toml`], write it to a pipe passed as
//! `--config-fd`, and read `ready 127.0.0.1:PORT` from `--ready-fd`.
//!
//! Feature `server` (default) is the proxy; without it only [`config`], [`headers`],
//! [`jwt`] and [`rewrite`] are built (serde, serde_json, base64, toml, http), for agent-init.

pub mod config;
pub mod headers;
pub mod jwt;
pub mod rewrite;

#[cfg(feature = "server")]
mod server;
#[cfg(feature = "server")]
pub use server::*;
