//! Running NVIDIA's PTX assembler on the embedded modules, offline: it proves a module
//! assembles for its target and reports each kernel's registers, shared memory, stack
//! and spills without a GPU. `ptxas` ships in the PyPI wheel `nvidia-cuda-nvcc`.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Resources of one kernel as ptxas reports them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KernelResources {
    pub name: String,
    pub registers: u32,
    pub smem_bytes: u32,
    pub stack_bytes: u32,
    pub spill_store_bytes: u32,
    pub spill_load_bytes: u32,
}

/// Finds ptxas: `$PTXAS`, then `PATH`, then the `nvidia-cuda-nvcc` wheel of `python3`.
pub fn locate() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("PTXAS") {
        return Some(PathBuf::from(p));
    }
    if let Some(path) = std::env::var_os("PATH") {
        for d in std::env::split_paths(&path) {
            let p = d.join("ptxas");
            if p.is_file() {
                return Some(p);
            }
        }
    }
    // The wheel installs under site-packages/nvidia/<cu13|cuda_nvcc>/bin.
    let out = Command::new("python3")
        .args(["-c", "import nvidia, sys; print('\\n'.join(list(nvidia.__path__)))"])
        .output()
        .ok()?;
    let roots = String::from_utf8_lossy(&out.stdout).into_owned();
    for root in roots.lines() {
        for sub in ["cu13", "cuda_nvcc", "cu12"] {
            let p = Path::new(root).join(sub).join("bin/ptxas");
            if p.is_file() {
                return Some(p);
            }
        }
    }
    None
}

/// Assembles `ptx` for `arch` (e.g. "sm_90a") with `-v`; returns each kernel's
/// resources, or ptxas's error output.
pub fn assemble(ptxas: &Path, arch: &str, ptx: &str) -> Result<Vec<KernelResources>, String> {
    let dir = std::env::temp_dir();
    let file = dir.join(format!("cnnergy-{}-{arch}.ptx", std::process::id()));
    std::fs::write(&file, ptx).map_err(|e| format!("writing {}: {e}", file.display()))?;
    let out = Command::new(ptxas)
        .arg(format!("-arch={arch}"))
        .args(["-v", "-o", "/dev/null"])
        .arg(&file)
        .output()
        .map_err(|e| format!("running {}: {e}", ptxas.display()));
    let _ = std::fs::remove_file(&file);
    let out = out?;
    let text = String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        return Err(text);
    }
    Ok(parse_report(&text))
}

fn number_before(line: &str, unit: &str) -> Option<u32> {
    let i = line.find(unit)?;
    line[..i].split(|c: char| !c.is_ascii_digit()).rfind(|s| !s.is_empty())?.parse().ok()
}

/// Parses `ptxas -v` output.
pub fn parse_report(text: &str) -> Vec<KernelResources> {
    let mut out: Vec<KernelResources> = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.split("Compiling entry function '").nth(1) {
            let name = rest.split('\'').next().unwrap_or_default().to_string();
            out.push(KernelResources { name, ..Default::default() });
        } else if let Some(k) = out.last_mut() {
            if line.contains("bytes stack frame") {
                k.stack_bytes = number_before(line, " bytes stack frame").unwrap_or(0);
                k.spill_store_bytes = number_before(line, " bytes spill stores").unwrap_or(0);
                k.spill_load_bytes = number_before(line, " bytes spill loads").unwrap_or(0);
            } else if line.contains("Used ") && line.contains(" registers") {
                k.registers = number_before(line, " registers").unwrap_or(0);
                k.smem_bytes = number_before(line, " bytes smem").unwrap_or(0);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn parses_a_real_report() {
        // Output of ptxas 13.0.88 -arch=sm_90a -v, trimmed, with a second kernel as ptxas
        // prints one that uses shared memory and spills.
        let text = "ptxas info    : 0 bytes gmem
ptxas info    : Compiling entry function 'axpy_f32' for 'sm_90a'
ptxas info    : Function properties for axpy_f32
    0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads
ptxas info    : Used 18 registers, used 0 barriers
ptxas info    : Compiling entry function 'conv' for 'sm_90a'
ptxas info    : Function properties for conv
    24 bytes stack frame, 8 bytes spill stores, 12 bytes spill loads
ptxas info    : Used 255 registers, used 1 barriers, 33792 bytes smem, 472 bytes cmem[0]
";
        let r = super::parse_report(text);
        assert_eq!(r.len(), 2);
        assert_eq!((r[0].name.as_str(), r[0].registers, r[0].smem_bytes), ("axpy_f32", 18, 0));
        assert_eq!(
            (r[1].registers, r[1].smem_bytes, r[1].stack_bytes, r[1].spill_store_bytes, r[1].spill_load_bytes),
            (255, 33792, 24, 8, 12)
        );
    }
}
