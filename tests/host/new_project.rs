//! `glassbox new`: every template, in each language, builds outside the
//! repository with the commands its README shows and passes its own test.

use crate::cli::glassbox;
use crate::support::artifacts;
use std::path::Path;
use std::process::Command;

/// Creates `kind` in `language` under `parent` and runs its `test.sh`; returns what it printed.
fn create_and_test(parent: &Path, kind: &str, language: &str) -> String {
    let name = format!("my-{language}-{kind}");
    let dir = parent.join(&name);
    let repository = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let output = glassbox()
        .args(["new", kind, &name, "--lang", language, "--dir"])
        .arg(&dir)
        .arg("--sdk")
        .arg(&repository)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let python = python_environment();
    let path = format!(
        "{}:{}:{}",
        python.join("bin").display(),
        Path::new(artifacts::COMPONENTIZE_PY)
            .parent()
            .unwrap()
            .display(),
        std::env::var("PATH").unwrap()
    );
    let output = Command::new(dir.join("test.sh"))
        .env("GLASSBOX", env!("CARGO_BIN_EXE_glassbox"))
        .env(
            "GLASSBOX_CACHE_DIR",
            concat!(env!("CARGO_TARGET_TMPDIR"), "/component-cache"),
        )
        .env("PATH", path)
        // The README's activated virtualenv, with the Python SDK installed.
        .env("VIRTUAL_ENV", &python)
        // Rust templates share one build directory across test runs.
        .env(
            "CARGO_TARGET_DIR",
            concat!(env!("CARGO_TARGET_TMPDIR"), "/template-builds"),
        )
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{name}: {stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

/// A virtualenv with the Python SDK installed from its wheel, as the Python
/// template's README has it (componentize-py itself comes from the guest toolchain).
fn python_environment() -> std::path::PathBuf {
    let venv = Path::new(env!("CARGO_TARGET_TMPDIR")).join("template-venv");
    if !venv.join("bin/python").exists() {
        let made = Command::new("python3")
            .arg("-m")
            .arg("venv")
            .arg(&venv)
            .status()
            .unwrap();
        assert!(made.success(), "cannot make a virtualenv");
    }
    let installed = Command::new(venv.join("bin/pip"))
        .args([
            "install",
            "--quiet",
            "--no-deps",
            "--force-reinstall",
            artifacts::PYTHON_SDK_WHEEL,
        ])
        .status()
        .unwrap();
    assert!(installed.success(), "cannot install the Python SDK's wheel");
    venv
}

#[test]
fn every_template_builds_outside_the_repository_and_passes_its_test() {
    let parent = tempfile::tempdir().unwrap();
    for language in ["rust", "python", "js"] {
        let tool = create_and_test(parent.path(), "tool", language);
        assert!(
            tool.ends_with(&format!("ok: my-{language}-tool provides count_words\n")),
            "{tool}"
        );
        let agent = create_and_test(parent.path(), "agent", language);
        assert!(
            agent.ends_with(&format!("ok: my-{language}-agent answered\n")),
            "{agent}"
        );
    }
}

#[test]
fn new_refuses_a_bad_name_and_an_existing_directory() {
    let parent = tempfile::tempdir().unwrap();
    let output = glassbox()
        .args(["new", "tool", "Bad Name", "--lang", "python"])
        .current_dir(parent.path())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("`Bad Name` is not a project name"));
    let output = glassbox()
        .args(["new", "tool", "taken", "--lang", "js", "--dir"])
        .arg(parent.path())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("already exists"));
}
