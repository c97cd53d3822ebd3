//! Self-test cases for the vector kernels.

use cudarc::driver::{LaunchConfig, PushKernelArg};
use rand::{Rng, SeedableRng};

use super::buf::{download, poisoned_f32, upload};
use super::{compare, CaseFn};
use crate::error::Error;
use crate::gpu::Gpu;
use crate::registry;

pub(super) fn cases(v: &mut Vec<(String, CaseFn)>) {
    // Odd sizes, one that is not a multiple of the block, and grids smaller than the
    // data so the grid-stride loop is exercised.
    for &(n, grid_cap) in &[(1usize, 0u32), (31, 0), (257, 1), (1_000_003, 0), (16_777_259, 64)] {
        let cap = if grid_cap > 0 { format!(" grid<={grid_cap}") } else { String::new() };
        v.push((format!("vector/axpy_f32 n={n}{cap}"), Box::new(move |gpu, seed| axpy(gpu, n, grid_cap, seed))));
    }
}

fn axpy(gpu: &Gpu, n: usize, grid_cap: u32, seed: u64) -> Result<String, Error> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let a: f32 = rng.random_range(-2.0..2.0);
    let x: Vec<f32> = (0..n).map(|_| rng.random_range(-1.0..1.0)).collect();
    let y: Vec<f32> = (0..n).map(|_| rng.random_range(-1.0..1.0)).collect();
    let (xd, yd) = (upload(gpu, &x)?, upload(gpu, &y)?);
    let mut od = poisoned_f32(gpu, n)?;
    let f = registry::function(&gpu.module, "axpy_f32")?;
    let block = 256u32;
    let mut grid = (n as u32).div_ceil(block);
    if grid_cap > 0 {
        grid = grid.min(grid_cap);
    }
    let cfg = LaunchConfig { grid_dim: (grid, 1, 1), block_dim: (block, 1, 1), shared_mem_bytes: 0 };
    let n32 = n as u32;
    let mut b = gpu.stream.launch_builder(&f);
    b.arg(&n32).arg(&a).arg(&xd).arg(&yd).arg(&mut od);
    // SAFETY: argument types and order match `axpy_f32`'s signature; buffers hold n f32.
    unsafe { b.launch(cfg) }.map_err(Error::driver("launching axpy_f32"))?;
    let out = download(gpu, &od)?;
    let reference: Vec<f64> = x.iter().zip(&y).map(|(&x, &y)| a as f64 * x as f64 + y as f64).collect();
    let rel = compare(&out, &reference, 1e-6).map_err(Error::Invalid)?;
    Ok(format!("rel_l2={rel:.1e} grid={grid}x{block}"))
}
