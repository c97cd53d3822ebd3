//! Finding the NVIDIA libraries at run time.
//!
//! cudarc loads libcuda and libcupti with `dlopen` by bare name and panics when that
//! fails; on the GPU machine libcupti sits off the loader path. So before any cudarc
//! call we locate each library ourselves, load it by full path and keep it loaded:
//! glibc then satisfies cudarc's later `dlopen("libcupti.so.13")` from the already
//! loaded object (it matches the soname). When a library is missing the caller gets a
//! [`LibError`] that names it, lists where we looked and the variable that overrides it.

use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// The run-time libraries cnnergy needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Lib {
    /// The CUDA driver API (part of the NVIDIA driver).
    Cuda,
    /// NVML, the management library (part of the NVIDIA driver).
    Nvml,
    /// CUPTI, the profiling interface (part of the CUDA toolkit).
    Cupti,
}

impl Lib {
    pub const ALL: [Lib; 3] = [Lib::Cuda, Lib::Nvml, Lib::Cupti];

    /// Short name used in messages.
    pub fn name(self) -> &'static str {
        match self {
            Lib::Cuda => "libcuda",
            Lib::Nvml => "libnvidia-ml",
            Lib::Cupti => "libcupti",
        }
    }

    /// What provides it, for the error message.
    pub fn provider(self) -> &'static str {
        match self {
            Lib::Cuda => "the NVIDIA driver",
            Lib::Nvml => "the NVIDIA driver",
            Lib::Cupti => "the CUDA toolkit (or the nvidia-cuda-cupti wheel)",
        }
    }

    /// Environment variable naming the file (or a folder holding it).
    pub fn env_var(self) -> &'static str {
        match self {
            Lib::Cuda => "CNNERGY_LIBCUDA",
            Lib::Nvml => "CNNERGY_LIBNVML",
            Lib::Cupti => "CNNERGY_LIBCUPTI",
        }
    }

    /// File names to try, most specific first. The versioned names are the sonames,
    /// which is what lets cudarc's own lookup find our copy.
    pub fn file_names(self) -> &'static [&'static str] {
        match self {
            Lib::Cuda => &["libcuda.so.1", "libcuda.so"],
            Lib::Nvml => &["libnvidia-ml.so.1", "libnvidia-ml.so"],
            Lib::Cupti => &["libcupti.so.13", "libcupti.so.12", "libcupti.so"],
        }
    }
}

/// A library that could not be found or loaded.
#[derive(Debug, Clone)]
pub struct LibError {
    pub lib: Lib,
    /// Folders searched, in order (plus the system loader, always tried first).
    pub searched: Vec<PathBuf>,
    /// Files that exist but failed to load, with the loader's message.
    pub failed: Vec<(PathBuf, String)>,
    /// Set when the override variable pointed somewhere useless.
    pub bad_override: Option<OsString>,
}

impl fmt::Display for LibError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let lib = self.lib;
        write!(f, "{} ({}) not found", lib.name(), lib.provider())?;
        if let Some(v) = &self.bad_override {
            let p = Path::new(v);
            let why = if p.exists() { "holds no loadable copy" } else { "does not exist" };
            write!(f, "; {}={} {why}", lib.env_var(), p.display())?;
        } else {
            write!(f, "; tried the system loader (LD_LIBRARY_PATH, ldconfig)")?;
            if !self.searched.is_empty() {
                let dirs: Vec<String> = self.searched.iter().map(|p| p.display().to_string()).collect();
                write!(f, " and {}", dirs.join(", "))?;
            }
        }
        for (p, e) in self.failed.iter().filter(|(p, _)| p.exists()) {
            write!(f, "; {} did not load: {e}", p.display())?;
        }
        write!(f, ". Set {} to the library's path", lib.env_var())
    }
}

impl std::error::Error for LibError {}

/// Folders to search for `lib`, in order, given the environment `env`.
///
/// Pure (no file system access) so tests can check the order.
pub fn search_dirs(lib: Lib, env: &dyn Fn(&str) -> Option<OsString>) -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    if let Some(v) = env("LD_LIBRARY_PATH") {
        dirs.extend(std::env::split_paths(&v).filter(|p| !p.as_os_str().is_empty()));
    }
    for var in ["CUDA_PATH", "CUDA_HOME"] {
        if let Some(root) = env(var) {
            let root = PathBuf::from(root);
            dirs.push(root.join("lib64"));
            dirs.push(root.join("lib"));
            dirs.push(root.join("targets/x86_64-linux/lib"));
            dirs.push(root.join("targets/sbsa-linux/lib"));
            if lib == Lib::Cupti {
                dirs.push(root.join("extras/CUPTI/lib64"));
            }
        }
    }
    // Globs expanded later, against the real file system.
    dirs.push(PathBuf::from("/usr/local/cuda*/targets/*/lib"));
    dirs.push(PathBuf::from("/usr/local/cuda*/lib64"));
    if lib == Lib::Cupti {
        dirs.push(PathBuf::from("/usr/local/cuda*/extras/CUPTI/lib64"));
    }
    for d in [
        "/usr/local/nvidia/lib64",
        "/usr/lib/x86_64-linux-gnu",
        "/usr/lib/aarch64-linux-gnu",
        "/usr/lib64",
        "/usr/lib",
        "/lib/x86_64-linux-gnu",
        "/usr/lib/wsl/lib",
    ] {
        dirs.push(PathBuf::from(d));
    }
    dirs
}

/// Expands `*` in path components (one level each), sorted newest-looking last-first
/// so `/usr/local/cuda-13.0` is preferred over `/usr/local/cuda-12.4`.
fn expand_glob(pattern: &Path) -> Vec<PathBuf> {
    let mut acc = vec![PathBuf::new()];
    for comp in pattern.components() {
        let s = comp.as_os_str().to_string_lossy();
        if let Some((pre, post)) = s.split_once('*') {
            let mut next = Vec::new();
            for base in &acc {
                let Ok(rd) = std::fs::read_dir(base) else { continue };
                let mut names: Vec<String> = rd
                    .flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| n.starts_with(pre) && n.ends_with(post) && n.len() >= pre.len() + post.len())
                    .collect();
                names.sort();
                names.reverse();
                next.extend(names.into_iter().map(|n| base.join(n)));
            }
            acc = next;
        } else {
            for p in &mut acc {
                p.push(comp);
            }
        }
    }
    acc
}

/// Candidate files for `lib`: the override first, then every search folder.
fn candidates(lib: Lib, dirs: &[PathBuf]) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for d in dirs {
        for dir in expand_glob(d) {
            for name in lib.file_names() {
                let p = dir.join(name);
                if p.is_file() && !out.contains(&p) {
                    out.push(p);
                }
            }
        }
    }
    out
}

/// A library loaded by cnnergy and kept loaded for the life of the process.
#[derive(Debug)]
pub struct Loaded {
    pub lib: Lib,
    /// The file that was loaded, or the soname when the system loader found it.
    pub path: PathBuf,
    _handle: libloading::Library,
}

fn open(p: &Path) -> Result<libloading::Library, String> {
    // SAFETY: these are NVIDIA's own libraries; their initialisers are safe to run.
    unsafe { libloading::Library::new(p) }.map_err(|e| e.to_string())
}

fn locate_and_load(lib: Lib) -> Result<Loaded, LibError> {
    let env = |k: &str| std::env::var_os(k);
    let mut err = LibError { lib, searched: Vec::new(), failed: Vec::new(), bad_override: None };
    if let Some(v) = env(lib.env_var()) {
        let p = PathBuf::from(&v);
        let files = if p.is_dir() { candidates(lib, std::slice::from_ref(&p)) } else { vec![p.clone()] };
        for f in files {
            match open(&f) {
                Ok(h) => return Ok(Loaded { lib, path: f, _handle: h }),
                Err(e) => err.failed.push((f, e)),
            }
        }
        err.bad_override = Some(v);
        return Err(err);
    }
    // The system loader knows the driver's own locations (ldconfig), so ask it first.
    for name in lib.file_names() {
        if let Ok(h) = open(Path::new(name)) {
            let path = resolved_path(name).unwrap_or_else(|| PathBuf::from(name));
            return Ok(Loaded { lib, path, _handle: h });
        }
    }
    let dirs = search_dirs(lib, &env);
    for f in candidates(lib, &dirs) {
        match open(&f) {
            Ok(h) => return Ok(Loaded { lib, path: f, _handle: h }),
            Err(e) => err.failed.push((f, e)),
        }
    }
    err.searched = dirs;
    Err(err)
}

/// Where the system loader found `soname`, read from /proc/self/maps once it is mapped.
fn resolved_path(soname: &str) -> Option<PathBuf> {
    let maps = std::fs::read_to_string("/proc/self/maps").ok()?;
    let stem = soname.split(".so").next()?;
    maps.lines()
        .filter_map(|l| l.split_whitespace().nth(5))
        .find(|p| Path::new(p).file_name().is_some_and(|f| f.to_string_lossy().starts_with(&format!("{stem}.so"))))
        .map(PathBuf::from)
}

static CUDA: OnceLock<Result<Loaded, LibError>> = OnceLock::new();
static NVML: OnceLock<Result<Loaded, LibError>> = OnceLock::new();
static CUPTI: OnceLock<Result<Loaded, LibError>> = OnceLock::new();

/// Locates and loads `lib` once per process; later calls return the same answer.
pub fn load(lib: Lib) -> Result<&'static Loaded, LibError> {
    let cell = match lib {
        Lib::Cuda => &CUDA,
        Lib::Nvml => &NVML,
        Lib::Cupti => &CUPTI,
    };
    cell.get_or_init(|| locate_and_load(lib)).as_ref().map_err(Clone::clone)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn search_order_puts_ld_library_path_then_cuda_home_first() {
        let env = |k: &str| match k {
            "LD_LIBRARY_PATH" => Some(OsString::from("/a:/b")),
            "CUDA_HOME" => Some(OsString::from("/opt/cuda")),
            _ => None,
        };
        let d = search_dirs(Lib::Cupti, &env);
        assert_eq!(d[0], PathBuf::from("/a"));
        assert_eq!(d[1], PathBuf::from("/b"));
        assert_eq!(d[2], PathBuf::from("/opt/cuda/lib64"));
        assert!(d.contains(&PathBuf::from("/opt/cuda/extras/CUPTI/lib64")));
        assert!(d.contains(&PathBuf::from("/usr/local/cuda*/targets/*/lib")));
        // CUPTI's extras folder is only searched for CUPTI.
        let dc = search_dirs(Lib::Cuda, &env);
        assert!(!dc.iter().any(|p| p.to_string_lossy().contains("CUPTI")));
    }

    #[test]
    fn glob_finds_versioned_cuda_folders_newest_first() {
        let root = std::env::temp_dir().join(format!("cnnergy-libs-{}", std::process::id()));
        for v in ["cuda-12.4", "cuda-13.0"] {
            let d = root.join(v).join("targets/x86_64-linux/lib");
            std::fs::create_dir_all(&d).unwrap();
            std::fs::write(d.join("libcupti.so.13"), b"not really a library").unwrap();
        }
        let pat = root.join("cuda*/targets/*/lib");
        let found = candidates(Lib::Cupti, &[pat]);
        assert_eq!(found.len(), 2);
        assert!(found[0].to_string_lossy().contains("cuda-13.0"), "{found:?}");
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn override_pointing_at_garbage_is_a_clear_error() {
        let f = std::env::temp_dir().join(format!("cnnergy-fake-{}.so", std::process::id()));
        std::fs::write(&f, b"garbage").unwrap();
        let e = match open(&f) {
            Ok(_) => panic!("garbage loaded"),
            Err(e) => e,
        };
        let err = LibError {
            lib: Lib::Cupti,
            searched: vec![],
            failed: vec![(f.clone(), e)],
            bad_override: Some(f.clone().into()),
        };
        let msg = err.to_string();
        assert!(msg.starts_with("libcupti (the CUDA toolkit"), "{msg}");
        assert!(msg.contains("CNNERGY_LIBCUPTI="), "{msg}");
        assert!(msg.contains("did not load") && msg.contains("holds no loadable copy"), "{msg}");
        assert!(!msg.contains('\n'));
        std::fs::remove_file(&f).unwrap();
    }
}
