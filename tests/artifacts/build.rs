//! Compiles every guest component (the example plugins and the test fixtures)
//! for `wasm32-wasip2` into this crate's OUT_DIR, and writes a path constant
//! for each, so tests use components built from the sources they test. Rust
//! guests are built with cargo; Python guests with componentize-py, which
//! `scripts/guest-toolchains.sh` installs (or `GLASSBOX_COMPONENTIZE_PY` names).

use std::path::PathBuf;
use std::process::Command;

/// (package, artifact file stem, constant name)
const GUESTS: &[(&str, &str, &str)] = &[
    ("react-agent", "react_agent", "REACT_AGENT"),
    ("planner-agent", "planner_agent", "PLANNER_AGENT"),
    ("weather", "weather", "WEATHER"),
    ("calculator", "calculator", "CALCULATOR"),
    ("test-tools", "test_tools", "TEST_TOOLS"),
    ("test-agent", "test_agent", "TEST_AGENT"),
];

/// Python guests: (directory under `tests/fixtures-python`, world, artifact stem, constant name)
const PYTHON_GUESTS: &[(&str, &str, &str, &str)] = &[(
    "text-tools",
    "tool-plugin",
    "text_tools",
    "PYTHON_TEXT_TOOLS",
)];

fn main() {
    let out_dir = PathBuf::from(std::env::var_os("OUT_DIR").unwrap());
    // Read when the script runs, not when it was compiled: a target dir shared by
    // several checkouts may reuse this script's binary for another checkout.
    let manifest_dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap());
    let workspace = manifest_dir.join("../..");
    let workspace = workspace.canonicalize().unwrap();
    // Relative to this package, so a target dir shared by several checkouts
    // watches the checkout being built.
    println!("cargo:rerun-if-changed=build.rs");
    for watched in [
        "wit",
        "guest-sdk",
        "plugins",
        "tests/fixtures",
        "tests/fixtures-python",
        "Cargo.lock",
    ] {
        println!("cargo:rerun-if-changed=../../{watched}");
    }

    let target_dir = out_dir.join("guests");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    command
        .current_dir(&workspace)
        .args(["build", "--release", "--target", "wasm32-wasip2"])
        .env("CARGO_TARGET_DIR", &target_dir)
        // The host build's flags (coverage, sanitizers) do not apply to guests.
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_BUILD_TARGET");
    for (package, ..) in GUESTS {
        command.args(["-p", package]);
    }
    let status = command
        .status()
        .expect("cannot run cargo to build the guest components");
    assert!(
        status.success(),
        "building the guest components failed; is the target installed? (`rustup target add wasm32-wasip2`)"
    );

    let mut constants = String::new();
    for (_, stem, constant) in GUESTS {
        let path = target_dir
            .join("wasm32-wasip2/release")
            .join(format!("{stem}.wasm"));
        assert!(path.exists(), "{} was not built", path.display());
        constants.push_str(&format!(
            "/// `{stem}.wasm`, built from source.\npub const {constant}: &str = {:?};\n",
            path.display().to_string()
        ));
    }
    let componentize_py = std::env::var_os("GLASSBOX_COMPONENTIZE_PY")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME")
                .map(|home| PathBuf::from(home).join(".cache/glassbox/guest-venv/bin/componentize-py"))
        })
        .filter(|path| path.exists())
        .expect("componentize-py is not installed: run scripts/guest-toolchains.sh (or set GLASSBOX_COMPONENTIZE_PY)");
    println!("cargo:rerun-if-env-changed=GLASSBOX_COMPONENTIZE_PY");
    for (dir, world, stem, constant) in PYTHON_GUESTS {
        let path = out_dir.join(format!("{stem}.wasm"));
        let status = Command::new(&componentize_py)
            .arg("-d")
            .arg(workspace.join("wit"))
            .args(["-w", world, "componentize", "-p"])
            .arg(workspace.join("tests/fixtures-python").join(dir))
            .arg("app")
            .arg("-o")
            .arg(&path)
            .status()
            .expect("cannot run componentize-py");
        assert!(status.success(), "building the Python guest {dir} failed");
        constants.push_str(&format!(
            "/// `{stem}.wasm`, built from Python source with componentize-py.\npub const {constant}: &str = {:?};\n",
            path.display().to_string()
        ));
    }
    let names: Vec<String> = GUESTS
        .iter()
        .map(|(_, _, constant)| constant)
        .chain(PYTHON_GUESTS.iter().map(|(_, _, _, constant)| constant))
        .map(|constant| format!("{constant:?}"))
        .collect();
    constants.push_str(&format!(
        "/// The name of every constant above.\npub const ALL: &[&str] = &[{}];\n",
        names.join(", ")
    ));
    std::fs::write(out_dir.join("artifacts.rs"), constants).unwrap();
}
