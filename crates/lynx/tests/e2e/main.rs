//! Black-box tests: the real `lynx` binary on a temporary database, driven through a real MCP client
//! (HTTP and stdio), the JSON API and the CLI.

mod helpers;

mod audit_verify;
mod auth;
mod bad_input;
mod cli;
mod concurrency;
mod domain_tools;
mod kernel_file;
mod lifecycle;
mod refusals;
mod tenancy;
