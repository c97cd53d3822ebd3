//! Assembles every embedded PTX module (`cnnergy::ptx::MODULES`) with NVIDIA's `ptxas`
//! for its target, fails on assembler errors and on register spills, and prints a
//! per-kernel resource table (registers, shared memory, stack, spills) to the log.
//!
//! No GPU is needed. `ptxas` is found through `$PTXAS`, then `PATH`, then the PyPI wheel
//! `nvidia-cuda-nvcc` of `python3`. Without it the test passes with a loud skip message,
//! except under `CI=true`, where it fails and says how to install the wheel.
//!
//! Spills: a kernel (or device function) may spill only if it is listed in
//! `kernels/spill-allow.txt` (one name per line, `#` starts a comment).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The wheel CI installs; its `ptxas` is the reference assembler for this check.
const WHEEL: &str = "nvidia-cuda-nvcc==13.0.88";

/// Where the `nvidia-cuda-nvcc` wheels put `ptxas`, relative to a `site-packages`
/// directory (12.x wheels: `cuda_nvcc`; 13.x: `cu13`).
const WHEEL_SUBDIRS: &[&str] = &["nvidia/cuda_nvcc/bin", "nvidia/cu13/bin", "nvidia/cu12/bin"];

/// One function of a `ptxas -v` report.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Resources {
    name: String,
    /// `.entry` (a kernel) rather than a `.func` (a non-inlined device function).
    entry: bool,
    registers: u32,
    barriers: u32,
    smem_bytes: u32,
    stack_bytes: u32,
    spill_store_bytes: u32,
    spill_load_bytes: u32,
}

impl Resources {
    fn spills(&self) -> bool {
        self.spill_store_bytes > 0 || self.spill_load_bytes > 0
    }
}

/// Writes to the real stderr, past the test harness's output capture, so the table and
/// skip notices show up in CI logs even when the test passes.
fn log(text: &str) {
    let mut err = std::io::stderr().lock();
    let _ = err.write_all(text.as_bytes());
    let _ = err.flush();
}

fn is_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v.eq_ignore_ascii_case("true") || v == "1")
}

fn is_file(p: &Path) -> bool {
    p.metadata().is_ok_and(|m| m.is_file())
}

/// `ptxas` per `$PTXAS`, `PATH`, or the `nvidia-cuda-nvcc` wheel; `Err` if `$PTXAS`
/// names a missing file (a misconfiguration, never a skip).
fn find_ptxas() -> Result<Option<PathBuf>, String> {
    if let Some(p) = std::env::var_os("PTXAS").filter(|p| !p.is_empty()) {
        let p = PathBuf::from(p);
        return if is_file(&p) { Ok(Some(p)) } else { Err(format!("PTXAS={} is not a file", p.display())) };
    }
    if let Some(path) = std::env::var_os("PATH") {
        if let Some(p) = std::env::split_paths(&path).map(|d| d.join("ptxas")).find(|p| is_file(p)) {
            return Ok(Some(p));
        }
    }
    Ok(wheel_ptxas())
}

/// Asks `python3` where the wheel lives: first the package itself (12.x layout), then
/// every site-packages directory and `sys.path` entry (13.x installs under `nvidia/cu13`).
fn wheel_ptxas() -> Option<PathBuf> {
    const SCRIPT: &str = "import os, site, sys\n\
        try:\n    import nvidia.cuda_nvcc as m; print(os.path.dirname(m.__file__) + '/../..')\n\
        except Exception: pass\n\
        dirs = list(sys.path)\n\
        try: dirs += site.getsitepackages() + [site.getusersitepackages()]\n\
        except Exception: pass\n\
        print('\\n'.join(d for d in dirs if d))\n";
    for python in ["python3", "python"] {
        let Ok(out) = Command::new(python).args(["-c", SCRIPT]).output() else { continue };
        let dirs = String::from_utf8_lossy(&out.stdout).into_owned();
        for dir in dirs.lines().map(str::trim).filter(|d| !d.is_empty()) {
            for sub in WHEEL_SUBDIRS {
                let p = Path::new(dir).join(sub).join("ptxas");
                if is_file(&p) {
                    return Some(p);
                }
            }
        }
    }
    None
}

/// The number right before `unit` in `line` (`"16 bytes stack"` → 16).
fn number_before(line: &str, unit: &str) -> Option<u32> {
    let head = &line[..line.find(unit)?];
    head.trim_end().rsplit(|c: char| !c.is_ascii_digit()).next()?.parse().ok()
}

/// Parses `ptxas -v` output: `Compiling entry function 'K'` opens a kernel, `Function
/// properties for F` (kernels and `.func`s alike) is followed by the stack/spill line,
/// and `Used N registers, ...` belongs to the kernel being compiled.
fn parse_report(text: &str) -> Vec<Resources> {
    let mut out: Vec<Resources> = Vec::new();
    let mut entry: Option<usize> = None;
    let mut props: Option<usize> = None;
    let index_of = |out: &mut Vec<Resources>, name: &str| match out.iter().position(|r| r.name == name) {
        Some(i) => i,
        None => {
            out.push(Resources { name: name.to_string(), ..Resources::default() });
            out.len() - 1
        }
    };
    for line in text.lines() {
        if let Some(rest) = line.split("Compiling entry function '").nth(1) {
            let i = index_of(&mut out, rest.split('\'').next().unwrap_or_default());
            out[i].entry = true;
            entry = Some(i);
        } else if let Some(rest) = line.split("Function properties for ").nth(1) {
            props = Some(index_of(&mut out, rest.trim()));
        } else if line.contains("bytes stack frame") {
            if let Some(i) = props {
                let r = &mut out[i];
                r.stack_bytes = number_before(line, "bytes stack frame").unwrap_or(0);
                r.spill_store_bytes = number_before(line, "bytes spill stores").unwrap_or(0);
                r.spill_load_bytes = number_before(line, "bytes spill loads").unwrap_or(0);
            }
        } else if line.contains("Used ") && line.contains(" registers") {
            if let Some(i) = entry {
                let r = &mut out[i];
                r.registers = number_before(line, " registers").unwrap_or(0);
                r.barriers = number_before(line, " barriers").unwrap_or(0);
                r.smem_bytes = number_before(line, " bytes smem").unwrap_or(0);
            }
        }
    }
    out
}

/// Names from `kernels/spill-allow.txt` (missing file = empty list).
fn spill_allow_list() -> Vec<String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("kernels/spill-allow.txt");
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .map(|l| l.split('#').next().unwrap_or_default().trim())
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect()
}

fn table(arch: &str, rows: &[Resources]) -> String {
    // Long (mangled `.func`) names overflow the column rather than widen the table.
    let width = rows.iter().filter(|r| r.entry).map(|r| r.name.len()).max().unwrap_or(6).clamp(6, 48);
    let mut s = format!(
        "\n{arch}: {} kernels, {} device functions\n{:<width$} {:>5} {:>4} {:>7} {:>6} {:>8} {:>8}\n",
        rows.iter().filter(|r| r.entry).count(),
        rows.iter().filter(|r| !r.entry).count(),
        "kernel",
        "regs",
        "bars",
        "smem",
        "stack",
        "spill-st",
        "spill-ld",
    );
    for r in rows {
        let name = if r.entry { r.name.clone() } else { format!("{} (.func)", r.name) };
        s += &format!(
            "{name:<width$} {:>5} {:>4} {:>7} {:>6} {:>8} {:>8}{}\n",
            r.registers,
            r.barriers,
            r.smem_bytes,
            r.stack_bytes,
            r.spill_store_bytes,
            r.spill_load_bytes,
            if r.spills() { "  <- SPILLS" } else { "" },
        );
    }
    s
}

/// Runs `ptxas -arch=<arch> -v` on `ptx`; `Ok(report)` or `Err(diagnostics)`.
fn assemble(ptxas: &Path, arch: &str, ptx: &str) -> Result<String, String> {
    let stem = format!("cnnergy-ptx-check-{}-{arch}", std::process::id());
    let dir = std::env::temp_dir();
    let (src, cubin) = (dir.join(format!("{stem}.ptx")), dir.join(format!("{stem}.cubin")));
    std::fs::write(&src, ptx).map_err(|e| format!("writing {}: {e}", src.display()))?;
    let run = Command::new(ptxas).arg(format!("-arch={arch}")).arg("-v").arg("-o").arg(&cubin).arg(&src).output();
    let _ = std::fs::remove_file(&src);
    let _ = std::fs::remove_file(&cubin);
    let out = run.map_err(|e| format!("running {}: {e}", ptxas.display()))?;
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    if out.status.success() {
        Ok(text)
    } else {
        Err(format!("ptxas -arch={arch} failed ({}):\n{text}", out.status))
    }
}

#[test]
fn ptx_modules_assemble_without_spills() {
    let ptxas = match find_ptxas() {
        Ok(Some(p)) => p,
        Ok(None) if is_ci() => panic!(
            "ptxas not found (CI=true): install it with `python3 -m pip install {WHEEL}` \
             (or put ptxas on PATH, or set PTXAS=/path/to/ptxas)"
        ),
        Ok(None) => {
            log(&format!(
                "\n==================== SKIPPED: ptx_check ====================\n\
                 ptxas not found ($PTXAS, PATH, python3's nvidia-cuda-nvcc wheel).\n\
                 The embedded PTX was NOT assembled. Install: python3 -m pip install {WHEEL}\n\
                 ============================================================\n\n"
            ));
            return;
        }
        Err(e) => panic!("{e}"),
    };
    let version =
        Command::new(&ptxas).arg("--version").output().map(|o| String::from_utf8_lossy(&o.stdout).into_owned());
    let version = version.unwrap_or_default();
    log(&format!("\nptx_check: {} ({})\n", ptxas.display(), version.lines().last().unwrap_or("?")));

    let allow = spill_allow_list();
    let mut failures = Vec::new();
    let mut seen = Vec::new();
    assert!(!cnnergy::ptx::MODULES.is_empty(), "no PTX modules embedded");
    for &(arch, ptx) in cnnergy::ptx::MODULES {
        let target = ptx.lines().find_map(|l| l.trim().strip_prefix(".target ")).unwrap_or("?");
        if !target.split(',').any(|t| t.trim() == arch) {
            failures.push(format!("{arch}: module declares `.target {target}`"));
        }
        let report = match assemble(&ptxas, arch, ptx) {
            Ok(r) => r,
            Err(e) => {
                failures.push(e);
                continue;
            }
        };
        for w in report.lines().filter(|l| l.contains("warning")) {
            log(&format!("{arch}: ptxas {}\n", w.trim()));
        }
        let rows = parse_report(&report);
        log(&table(arch, &rows));
        if !rows.iter().any(|r| r.entry) {
            failures.push(format!("{arch}: ptxas reported no kernels:\n{report}"));
        }
        for r in rows.iter().filter(|r| r.spills()) {
            if allow.contains(&r.name) {
                log(&format!("{arch}: {} spills (allowed by kernels/spill-allow.txt)\n", r.name));
            } else {
                failures.push(format!(
                    "{arch}: {} spills ({} bytes stored, {} loaded); fix it or add it to kernels/spill-allow.txt",
                    r.name, r.spill_store_bytes, r.spill_load_bytes
                ));
            }
        }
        seen.extend(rows.into_iter().map(|r| r.name));
    }
    for name in allow.iter().filter(|n| !seen.contains(n)) {
        log(&format!("note: kernels/spill-allow.txt lists `{name}`, which no module contains\n"));
    }
    assert!(failures.is_empty(), "ptx_check failed:\n{}", failures.join("\n"));
}

#[test]
fn parses_ptxas_verbose_report() {
    let report = "\
ptxas info    : 0 bytes gmem
ptxas info    : Compiling entry function 'k_spill' for 'sm_80'
ptxas info    : Function properties for k_spill
    24 bytes stack frame, 8 bytes spill stores, 12 bytes spill loads
ptxas info    : Used 255 registers, used 1 barriers, 4096 bytes smem, 388 bytes cmem[0]
ptxas info    : Compile time = 31.705 ms
ptxas info    : Function properties for _RNv_panic_bounds_check
    0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads
ptxas info    : Compiling entry function 'k_plain' for 'sm_90a'
ptxas info    : Function properties for k_plain
    0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads
ptxas info    : Used 18 registers, used 0 barriers
";
    let rows = parse_report(report);
    assert_eq!(rows.len(), 3);
    assert_eq!(
        rows[0],
        Resources {
            name: "k_spill".into(),
            entry: true,
            registers: 255,
            barriers: 1,
            smem_bytes: 4096,
            stack_bytes: 24,
            spill_store_bytes: 8,
            spill_load_bytes: 12,
        }
    );
    assert!(rows[0].spills());
    assert!(!rows[1].entry && !rows[1].spills() && rows[1].name == "_RNv_panic_bounds_check");
    assert_eq!((rows[2].registers, rows[2].smem_bytes, rows[2].entry), (18, 0, true));
}
