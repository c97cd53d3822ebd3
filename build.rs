//! Compiles the device crate `kernels/` to PTX with rustc's own NVPTX backend and
//! leaves the modules in OUT_DIR for `src/ptx.rs` to embed.
//!
//! Two modules: `sm_80` (PTX 7.x, runs on any GPU of compute capability >= 8.0 through
//! the driver's JIT) and `sm_90a` (PTX 8.0, Hopper-only instructions allowed). The
//! kernel crate is `#![no_core]` on unstable features, so the child rustc alone gets
//! `RUSTC_BOOTSTRAP=1`; the rest of the build stays on stable.

use std::path::{Path, PathBuf};
use std::process::Command;

const TARGETS: &[(&str, &[&str])] =
    &[("sm_80", &["-C", "target-cpu=sm_80"]), ("sm_90a", &["-C", "target-cpu=sm_90a", "-C", "target-feature=+ptx80"])];

fn main() {
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap());
    let out = PathBuf::from(std::env::var_os("OUT_DIR").unwrap());
    let src = manifest.join("kernels/src");
    rerun_on_dir(&src);
    println!("cargo:rerun-if-changed=kernels/Cargo.toml");
    println!("cargo:rerun-if-env-changed=CNNERGY_KERNEL_RUSTFLAGS");

    // The rustc cargo itself uses, i.e. the pinned toolchain's.
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    for (arch, flags) in TARGETS {
        let ptx = out.join(format!("kernels_{arch}.ptx"));
        let mut cmd = Command::new(&rustc);
        cmd.env("RUSTC_BOOTSTRAP", "1")
            // Cargo's wrapper variables and flags belong to the host build, not this one.
            .env_remove("RUSTC_WRAPPER")
            .env_remove("RUSTC_WORKSPACE_WRAPPER")
            .env_remove("CARGO_ENCODED_RUSTFLAGS")
            .args(["--target", "nvptx64-nvidia-cuda", "--crate-type", "cdylib", "--crate-name"])
            .arg("cnnergy_kernels")
            .args(["--edition", "2021", "--emit=asm", "-O", "-A", "unstable_features"])
            .args(["-C", "panic=abort", "-C", "debuginfo=0"])
            .args(*flags)
            .arg("-o")
            .arg(&ptx)
            .arg(src.join("lib.rs"));
        if let Some(extra) = std::env::var_os("CNNERGY_KERNEL_RUSTFLAGS") {
            cmd.args(extra.to_string_lossy().split_whitespace());
        }
        let output = cmd.output().unwrap_or_else(|e| panic!("could not run {rustc:?}: {e}"));
        let stderr = String::from_utf8_lossy(&output.stderr);
        if !output.status.success() {
            panic!("compiling kernels/ for {arch} failed:\n{stderr}");
        }
        // Surface kernel warnings in the host build instead of dropping them.
        // (`+ptx80` always draws an "unstable feature" notice; that one is expected.)
        let unexpected = |l: &&str| !l.contains("unstable feature") && !l.contains("warning emitted");
        for line in stderr.lines().filter(|l| l.starts_with("warning")).filter(unexpected) {
            println!("cargo:warning=kernels ({arch}): {line}");
        }
        let text = std::fs::read_to_string(&ptx).expect("PTX output missing");
        assert!(text.contains(".entry"), "PTX for {arch} has no kernels");
    }
}

fn rerun_on_dir(dir: &Path) {
    println!("cargo:rerun-if-changed={}", dir.display());
    for entry in std::fs::read_dir(dir).expect("kernels/src missing").flatten() {
        let p = entry.path();
        if p.is_dir() {
            rerun_on_dir(&p);
        } else {
            println!("cargo:rerun-if-changed={}", p.display());
        }
    }
}
