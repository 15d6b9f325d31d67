//! The architecture's rules, checked (ARCHITECTURE.md states them):
//! - the workspace has exactly the fixed layout of crates;
//! - dependencies between our crates point one way: `schemas` ← `ledger-adapters`, `fx`,
//!   `compliance` ← `router`; the middle crates never use each other; `loadtest` uses `schemas` only;
//! - no crate pulls in aws-lc or OpenSSL: TLS, when it comes, is rustls with the ring provider.

// Tests fail loudly on any unexpected error; that is what unwrap is for here.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Each crate folder and the Corridor crates it may depend on (normal, dev and build).
const ALLOWED: &[(&str, &[&str])] = &[
    ("schemas", &[]),
    ("ledger-adapters", &["corridor-schemas"]),
    ("fx", &["corridor-schemas"]),
    ("compliance", &["corridor-schemas"]),
    ("router", &["corridor-schemas", "corridor-ledger-adapters", "corridor-fx", "corridor-compliance"]),
    ("loadtest", &["corridor-schemas"]),
];

/// Crates that must never appear anywhere in the dependency graph.
const FORBIDDEN_PACKAGES: &[&str] = &["aws-lc-rs", "aws-lc-sys", "openssl", "openssl-sys", "native-tls"];

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// The Corridor crates a manifest depends on, in any dependency table.
fn corridor_dependencies(manifest: &str) -> BTreeSet<String> {
    let manifest: toml::Table = toml::from_str(manifest).unwrap();
    let mut found = BTreeSet::new();
    for table in ["dependencies", "dev-dependencies", "build-dependencies"] {
        if let Some(dependencies) = manifest.get(table).and_then(|value| value.as_table()) {
            found.extend(dependencies.keys().filter(|name| name.starts_with("corridor-")).cloned());
        }
    }
    found
}

/// The dependencies of `folder` that the rule forbids.
fn violations(folder: &str, manifest: &str) -> Vec<String> {
    let allowed = ALLOWED.iter().find(|(name, _)| *name == folder).map_or(&[][..], |(_, allowed)| *allowed);
    corridor_dependencies(manifest).into_iter().filter(|dependency| !allowed.contains(&dependency.as_str())).collect()
}

#[test]
fn the_rule_catches_a_middle_crate_using_another() {
    let fx_using_compliance =
        "[dependencies]\ncorridor-schemas.workspace = true\ncorridor-compliance.workspace = true\n";
    assert_eq!(violations("fx", fx_using_compliance), ["corridor-compliance"]);
    let schemas_using_router = "[dev-dependencies]\ncorridor-router = { path = \"../router\" }\n";
    assert_eq!(violations("schemas", schemas_using_router), ["corridor-router"]);
    let loadtest_using_router = "[build-dependencies]\ncorridor-router.workspace = true\n";
    assert_eq!(violations("loadtest", loadtest_using_router), ["corridor-router"]);
    assert!(violations("router", "[dependencies]\ncorridor-fx.workspace = true\n").is_empty());
}

#[test]
fn dependencies_point_one_way() {
    let root = workspace_root();
    for (folder, _) in ALLOWED {
        let manifest = std::fs::read_to_string(root.join(folder).join("Cargo.toml")).unwrap();
        assert_eq!(
            violations(folder, &manifest),
            Vec::<String>::new(),
            "{folder}/Cargo.toml breaks the dependency rule"
        );
    }
}

#[test]
fn the_workspace_has_the_fixed_layout() {
    let root = workspace_root();
    let manifest: toml::Table = toml::from_str(&std::fs::read_to_string(root.join("Cargo.toml")).unwrap()).unwrap();
    let members: BTreeSet<&str> =
        manifest["workspace"]["members"].as_array().unwrap().iter().map(|member| member.as_str().unwrap()).collect();
    let expected: BTreeSet<&str> = ALLOWED.iter().map(|(folder, _)| *folder).collect();
    assert_eq!(members, expected);
    for path in [
        "ops",
        "README.md",
        "ARCHITECTURE.md",
        "schemas/proto/corridor/v1/payments.proto",
        "schemas/proto/corridor/v1/ledger.proto",
    ] {
        assert!(root.join(path).exists(), "{path} is missing");
    }
}

#[test]
fn no_tls_stack_but_rustls_with_ring() {
    // Every package any target of any crate can pull in, one per line: "name vX.Y.Z ...".
    let output = Command::new(env!("CARGO"))
        .args(["tree", "--workspace", "--locked", "--target", "all", "--edges", "normal,build,dev", "--prefix", "none"])
        .current_dir(workspace_root())
        .output()
        .unwrap();
    assert!(output.status.success(), "cargo tree failed: {}", String::from_utf8_lossy(&output.stderr));
    let tree = String::from_utf8(output.stdout).unwrap();
    let packages: BTreeSet<&str> = tree.lines().filter_map(|line| line.split(' ').next()).collect();
    assert!(packages.contains("tonic") && packages.contains("ring"), "cargo tree printed an unexpected format");
    for package in FORBIDDEN_PACKAGES {
        assert!(!packages.contains(package), "{package} is in the dependency graph");
    }
}
