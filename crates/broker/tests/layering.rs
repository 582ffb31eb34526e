//! The crate layering of ARCHITECTURE.md, enforced: a crate may depend only on crates below
//! it, and only the binary uses anyhow and clap.

use std::collections::BTreeMap;
use std::process::Command;

/// Each workspace crate and the workspace crates it may depend on.
const ALLOWED: &[(&str, &[&str])] = &[
    ("moldau-storage", &[]),
    ("moldau-metadata", &[]),
    // Kafka's security model without sockets: depends on no other workspace crate.
    ("moldau-security", &[]),
    ("moldau-controller", &["moldau-storage", "moldau-metadata"]),
    ("moldau-coordinator", &["moldau-metadata"]),
    (
        "moldau-broker",
        &[
            "moldau-storage",
            "moldau-metadata",
            "moldau-controller",
            "moldau-coordinator",
            "moldau-security",
        ],
    ),
    // Moldau's own Kafka protocol client (the requests librdkafka lacks): SASL and TLS
    // settings from moldau-security, nothing of the server.
    ("moldau-wire", &["moldau-security"]),
    (
        "moldau",
        &[
            "moldau-broker",
            "moldau-connect",
            "moldau-wire",
            "moldau-storage",
            "moldau-metadata",
            "moldau-controller",
            "moldau-coordinator",
            "moldau-security",
        ],
    ),
    // The Connect runtime: a Kafka client application (librdkafka, and moldau-wire for the
    // group protocol with protocol type `connect`; moldau-security for its client security
    // settings and its https REST listener); its data model, converters and transforms
    // depend on no other workspace crate.
    ("moldau-connect", &["moldau-wire", "moldau-security"]),
    // The simulation drives whole nodes; nothing depends on it.
    (
        "moldau-sim",
        &["moldau-broker", "moldau-storage", "moldau-metadata"],
    ),
];

const BINARY_ONLY: &[&str] = &["anyhow", "clap"];

/// Test-only (dev) dependencies beyond [`ALLOWED`]: Connect's tests start an in-process
/// broker for their workers and connectors, as the broker's own tests do.
const DEV_ALLOWED: &[(&str, &[&str])] = &[("moldau-connect", &["moldau-broker"])];

#[test]
fn crates_depend_only_downwards() {
    let output = Command::new(env!("CARGO"))
        .args(["metadata", "--format-version", "1", "--no-deps"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo metadata runs");
    assert!(output.status.success());
    let metadata: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let allowed: BTreeMap<&str, &[&str]> = ALLOWED.iter().copied().collect();
    for package in metadata["packages"].as_array().unwrap() {
        let name = package["name"].as_str().unwrap();
        let Some(allowed_deps) = allowed.get(name) else {
            panic!(
                "crate {name} is not placed in the layering; add it to ALLOWED and ARCHITECTURE.md"
            );
        };
        for dep in package["dependencies"].as_array().unwrap() {
            let dep_name = dep["name"].as_str().unwrap();
            let is_normal = dep["kind"].is_null();
            let dev_allowed = dep["kind"].as_str() == Some("dev")
                && DEV_ALLOWED
                    .iter()
                    .any(|(n, deps)| *n == name && deps.contains(&dep_name));
            if dep_name.starts_with("moldau") {
                assert!(
                    allowed_deps.contains(&dep_name) || dev_allowed,
                    "{name} must not depend on {dep_name} (see ARCHITECTURE.md)"
                );
            }
            if is_normal && name != "moldau" {
                assert!(
                    !BINARY_ONLY.contains(&dep_name),
                    "{name} must not use {dep_name}: only the binary does"
                );
            }
        }
    }
}
