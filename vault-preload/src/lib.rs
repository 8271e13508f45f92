//! vault-preload (in progress)
