//! The isolation layers: compiled or built in Rust, installed by the
//! harness in every child (seccomp, Landlock) or around every server
//! (namespaces).

pub(crate) mod landlock;
pub(crate) mod namespaces;
pub(crate) mod seccomp;
