//! Cluster mode.
#![deny(missing_docs)]
pub mod config;
pub mod http;
pub mod registry;
pub mod roles;
