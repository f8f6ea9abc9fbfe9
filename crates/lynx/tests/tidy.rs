//! Tidy checks on the source tree: every Rust file says what it is for, and the crate graph keeps its
//! shape (only lynx-mcp knows rmcp, only lynx-http knows axum, only lynx-store holds SQL, HTTP clients
//! live in lynx-kernel and lynx-store, no crate depends on one above it).

use std::{fs, path::{Path, PathBuf}};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn every_rust_file_opens_with_a_module_comment() {
    let mut files = Vec::new();
    rust_files(&root().join("crates"), &mut files);
    assert!(files.len() > 30);
    for f in files {
        let text = fs::read_to_string(&f).unwrap();
        assert!(text.starts_with("//!"), "{} must open with a //! comment saying what it is for", f.display());
    }
}

/// The normal (non-dev) dependencies a crate's manifest names.
fn dependencies(krate: &str) -> Vec<String> {
    let manifest = fs::read_to_string(root().join("crates").join(krate).join("Cargo.toml")).unwrap();
    let section = manifest.split("[dependencies]").nth(1).unwrap_or("");
    let section = section.split("\n[").next().unwrap_or("");
    section
        .lines()
        .filter_map(|l| l.split(['=', '.']).next())
        .map(|name| name.trim().to_string())
        .filter(|name| !name.is_empty() && !name.starts_with('#'))
        .collect()
}

#[test]
fn the_crate_graph_keeps_its_shape() {
    // Each crate may use the crates listed after it, and nothing above it.
    let allowed: &[(&str, &[&str])] = &[
        ("lynx-model", &[]),
        ("lynx-store", &["lynx-model"]),
        ("lynx-kernel", &["lynx-model"]),
        ("lynx-tlog", &[]),
        ("lynx-governance", &["lynx-model", "lynx-tlog"]),
        ("lynx-tools", &["lynx-model", "lynx-governance"]),
        ("lynx-mcp", &["lynx-model", "lynx-governance"]),
        ("lynx-http", &["lynx-model", "lynx-governance", "lynx-mcp"]),
        ("lynx-notify", &["lynx-model", "lynx-governance"]),
    ];
    // The benchmark stands outside the graph: it measures Lynx against a bare rmcp/axum server, so it
    // uses those itself.
    let outside = ["lynx", "lynx-bench"];
    // A new crate takes its place in the graph before it lands.
    let mut crates: Vec<String> = fs::read_dir(root().join("crates")).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    crates.sort();
    for krate in crates.iter().filter(|c| !outside.contains(&c.as_str())) {
        assert!(allowed.iter().any(|(k, _)| k == krate), "crates/{krate} is not in the crate graph above");
    }
    for (krate, may) in allowed {
        let deps = dependencies(krate);
        for dep in deps.iter().filter(|d| d.starts_with("lynx")) {
            assert!(may.contains(&dep.as_str()), "{krate} must not depend on {dep}");
        }
        let only = |lib: &str, owners: &[&str]| {
            if deps.iter().any(|d| d == lib) {
                assert!(owners.contains(krate), "only {owners:?} may depend on {lib}, not {krate}");
            }
        };
        only("rmcp", &["lynx-mcp"]);
        only("axum", &["lynx-http"]);
        only("sqlx", &["lynx-store"]);
        // The Kernel client, the store's probe of a Supabase project's REST endpoint, webhook delivery.
        only("reqwest", &["lynx-kernel", "lynx-store", "lynx-notify"]);
    }
    for dep in ["rmcp", "axum", "sqlx"] {
        assert!(!dependencies("lynx").contains(&dep.to_string()), "the binary wires crates; it does not use {dep} itself");
    }
}

#[test]
fn only_the_cli_output_module_prints() {
    let mut files = Vec::new();
    rust_files(&root().join("crates"), &mut files);
    // Tests and the benchmark tool print their reports, and so does the scratch-database harness they
    // share (that a PostgreSQL test was skipped); the product never does.
    let prints = |f: &&std::path::PathBuf| {
        let f = f.to_string_lossy();
        f.contains("/tests/") || f.contains("/lynx-bench/") || f.ends_with("lynx-store/src/scratch.rs")
    };
    for f in files.iter().filter(|f| !prints(f)) {
        let text = fs::read_to_string(f).unwrap();
        for needle in ["println!", "print!(", "eprintln!", "dbg!("] {
            assert!(!text.contains(needle), "{} uses {needle}; print through cli/output.rs (stdout is the MCP channel)", f.display());
        }
    }
}

#[test]
fn the_tool_index_lists_every_registered_tool() {
    let index = fs::read_to_string(root().join("docs/MCP/INDEX.md")).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_lynx")).args(["tools", "--json"]).output().unwrap();
    let tools: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let ids: Vec<&str> = tools["tools"].as_array().unwrap().iter().map(|t| t["id"].as_str().unwrap()).collect();
    assert_eq!(ids, lynx_tools::registry().definitions().iter().map(|d| d.id).collect::<Vec<_>>());
    for id in ids {
        assert!(index.contains(&format!("`{id}`")), "docs/MCP/INDEX.md does not list {id}");
    }
}
