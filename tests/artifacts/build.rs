//! Compiles every guest component (the example plugins and the test fixtures)
//! for `wasm32-wasip2` into this crate's OUT_DIR, and writes a path constant
//! for each, so tests use components built from the sources they test. Rust
//! guests are built with cargo; Python guests with the Python SDK
//! (`sdk/python`) and componentize-py, from the virtualenv that
//! `scripts/guest-toolchains.sh` makes (`GLASSBOX_GUEST_VENV` names another).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// (package, artifact file stem, constant name)
const GUESTS: &[(&str, &str, &str)] = &[
    ("react-agent", "react_agent", "REACT_AGENT"),
    ("planner-agent", "planner_agent", "PLANNER_AGENT"),
    ("weather", "weather", "WEATHER"),
    ("calculator", "calculator", "CALCULATOR"),
    ("test-tools", "test_tools", "TEST_TOOLS"),
    ("test-agent", "test_agent", "TEST_AGENT"),
];

/// Python guests: (source directory, world, artifact stem, constant name)
const PYTHON_GUESTS: &[(&str, &str, &str, &str)] = &[
    (
        "plugins/python/analyst-agent",
        "agent",
        "analyst_agent",
        "PYTHON_ANALYST_AGENT",
    ),
    (
        "plugins/python/text-tools",
        "tool-plugin",
        "text_tools",
        "PYTHON_TEXT_TOOLS",
    ),
    (
        "plugins/python/code-runner",
        "tool-plugin",
        "code_runner",
        "PYTHON_CODE_RUNNER",
    ),
    (
        "tests/fixtures-python/test-agent",
        "agent",
        "python_test_agent",
        "PYTHON_TEST_AGENT",
    ),
    (
        "tests/fixtures-python/test-tools",
        "tool-plugin",
        "python_test_tools",
        "PYTHON_TEST_TOOLS",
    ),
];

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
        "sdk/python",
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
    build_python_guests(&workspace, &out_dir, &mut constants);
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

/// Installs the Python SDK into OUT_DIR and builds every Python guest with it,
/// two at a time (each takes 10-20 CPU-seconds).
fn build_python_guests(workspace: &Path, out_dir: &Path, constants: &mut String) {
    println!("cargo:rerun-if-env-changed=GLASSBOX_GUEST_VENV");
    let venv = std::env::var_os("GLASSBOX_GUEST_VENV")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME")
                .map(|home| PathBuf::from(home).join(".cache/glassbox/guest-venv"))
        })
        .expect("neither GLASSBOX_GUEST_VENV nor HOME is set");
    let componentize_py = venv.join("bin/componentize-py");
    assert!(
        componentize_py.exists(),
        "componentize-py is not installed in {}: run scripts/guest-toolchains.sh",
        venv.display()
    );
    let sdk = out_dir.join("python-sdk");
    let _ = std::fs::remove_dir_all(&sdk);
    let status = Command::new(venv.join("bin/pip"))
        .args([
            "install",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--target",
        ])
        .arg(&sdk)
        .arg(workspace.join("sdk/python"))
        .status()
        .expect("cannot run pip");
    assert!(
        status.success(),
        "installing the Python SDK (sdk/python) failed"
    );

    for batch in PYTHON_GUESTS.chunks(2) {
        let builds: Vec<_> = batch
            .iter()
            .map(|&(dir, world, stem, constant)| {
                let path = out_dir.join(format!("{stem}.wasm"));
                let child = Command::new(&componentize_py)
                    .args(["-w", world, "componentize", "-p"])
                    .arg(&sdk)
                    .arg("-p")
                    .arg(workspace.join(dir))
                    .args(["app", "-o"])
                    .arg(&path)
                    .stdout(Stdio::null())
                    .spawn()
                    .expect("cannot run componentize-py");
                (dir, stem, constant, path, child)
            })
            .collect();
        for (dir, stem, constant, path, mut child) in builds {
            let status = child.wait().expect("componentize-py did not finish");
            assert!(status.success(), "building the Python guest {dir} failed");
            constants.push_str(&format!(
                "/// `{stem}.wasm`, built from Python source with componentize-py.\npub const {constant}: &str = {:?};\n",
                path.display().to_string()
            ));
        }
    }
}
