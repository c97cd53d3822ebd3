//! Special registers: thread/block indices and dimensions, lane, clocks.
//!
//! Read through the `llvm.nvvm.read.ptx.sreg.*` intrinsics rather than inline asm so
//! LLVM knows their ranges (`tid.x < 1024`, `laneid < 32`) and can fold and hoist them.

/// Threads per warp on every NVIDIA GPU so far (also `%warpsize`).
pub const WARP_SIZE: u32 = 32;

unsafe extern "C" {
    #[link_name = "llvm.nvvm.read.ptx.sreg.tid.x"]
    fn tid_x() -> u32;
    #[link_name = "llvm.nvvm.read.ptx.sreg.tid.y"]
    fn tid_y() -> u32;
    #[link_name = "llvm.nvvm.read.ptx.sreg.tid.z"]
    fn tid_z() -> u32;
    #[link_name = "llvm.nvvm.read.ptx.sreg.ntid.x"]
    fn ntid_x() -> u32;
    #[link_name = "llvm.nvvm.read.ptx.sreg.ntid.y"]
    fn ntid_y() -> u32;
    #[link_name = "llvm.nvvm.read.ptx.sreg.ntid.z"]
    fn ntid_z() -> u32;
    #[link_name = "llvm.nvvm.read.ptx.sreg.ctaid.x"]
    fn ctaid_x() -> u32;
    #[link_name = "llvm.nvvm.read.ptx.sreg.ctaid.y"]
    fn ctaid_y() -> u32;
    #[link_name = "llvm.nvvm.read.ptx.sreg.ctaid.z"]
    fn ctaid_z() -> u32;
    #[link_name = "llvm.nvvm.read.ptx.sreg.nctaid.x"]
    fn nctaid_x() -> u32;
    #[link_name = "llvm.nvvm.read.ptx.sreg.nctaid.y"]
    fn nctaid_y() -> u32;
    #[link_name = "llvm.nvvm.read.ptx.sreg.nctaid.z"]
    fn nctaid_z() -> u32;
    #[link_name = "llvm.nvvm.read.ptx.sreg.laneid"]
    fn laneid() -> u32;
    #[link_name = "llvm.nvvm.read.ptx.sreg.clock64"]
    fn clock64_() -> u64;
    #[link_name = "llvm.nvvm.read.ptx.sreg.globaltimer"]
    fn globaltimer_() -> u64;
    #[link_name = "llvm.nvvm.read.ptx.sreg.smid"]
    fn smid_() -> u32;
}

macro_rules! sreg {
    ($($(#[$m:meta])* $name:ident => $f:ident;)*) => {$(
        $(#[$m])*
        #[inline(always)]
        pub fn $name() -> u32 {
            unsafe { $f() }
        }
    )*};
}
sreg! {
    /// `threadIdx.x`.
    thread_idx_x => tid_x;
    /// `threadIdx.y`.
    thread_idx_y => tid_y;
    /// `threadIdx.z`.
    thread_idx_z => tid_z;
    /// `blockDim.x`.
    block_dim_x => ntid_x;
    /// `blockDim.y`.
    block_dim_y => ntid_y;
    /// `blockDim.z`.
    block_dim_z => ntid_z;
    /// `blockIdx.x`.
    block_idx_x => ctaid_x;
    /// `blockIdx.y`.
    block_idx_y => ctaid_y;
    /// `blockIdx.z`.
    block_idx_z => ctaid_z;
    /// `gridDim.x`.
    grid_dim_x => nctaid_x;
    /// `gridDim.y`.
    grid_dim_y => nctaid_y;
    /// `gridDim.z`.
    grid_dim_z => nctaid_z;
    /// Lane of this thread within its warp, `0..32` (`%laneid`).
    lane_id => laneid;
    /// The SM this thread runs on (`%smid`; for diagnostics only, may change).
    sm_id => smid_;
}

/// `blockIdx.x * blockDim.x + threadIdx.x`: the global 1-D thread index.
#[inline(always)]
pub fn global_idx_x() -> u32 {
    block_idx_x() * block_dim_x() + thread_idx_x()
}

/// `gridDim.x * blockDim.x`: the stride of a 1-D grid-stride loop.
#[inline(always)]
pub fn grid_stride_x() -> u32 {
    grid_dim_x() * block_dim_x()
}

/// Linear thread index within the block (`x + y·Dx + z·Dx·Dy`).
#[inline(always)]
pub fn thread_rank() -> u32 {
    (thread_idx_z() * block_dim_y() + thread_idx_y()) * block_dim_x() + thread_idx_x()
}

/// Warp index within the block (`thread_rank() / 32`).
#[inline(always)]
pub fn warp_id() -> u32 {
    thread_rank() / WARP_SIZE
}

/// Per-SM cycle counter (`%clock64`).
#[inline(always)]
pub fn clock64() -> u64 {
    unsafe { clock64_() }
}

/// Global nanosecond timer (`%globaltimer`; ~1 µs resolution on most parts).
#[inline(always)]
pub fn globaltimer() -> u64 {
    unsafe { globaltimer_() }
}
