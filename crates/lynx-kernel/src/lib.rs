//! The Kernel port's implementations.
//!
//! `embedded` serves a Kernel file in-process (the built-in demo data by default), so a new user can try
//! every tool with no other service; `http` is the client of the Kernel HTTP contract. `file` parses and validates Kernel files with errors that name the
//! file, the place inside it and the problem.

pub mod embedded;
pub mod file;
pub mod http;

pub use embedded::EmbeddedKernel;
pub use http::HttpKernel;
pub use file::{KernelFile, KernelFileError};

/// The demo data shipped in the repository as `kernel/demo.json`, built into the binary.
pub const DEMO_DATA: &str = include_str!("../../../kernel/demo.json");
