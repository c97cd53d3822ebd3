//! Special registers: thread and block indices and dimensions.

unsafe extern "C" {
    #[link_name = "llvm.nvvm.read.ptx.sreg.tid.x"]
    fn tid_x_() -> u32;
    #[link_name = "llvm.nvvm.read.ptx.sreg.ctaid.x"]
    fn ctaid_x_() -> u32;
    #[link_name = "llvm.nvvm.read.ptx.sreg.ntid.x"]
    fn ntid_x_() -> u32;
    #[link_name = "llvm.nvvm.read.ptx.sreg.nctaid.x"]
    fn nctaid_x_() -> u32;
}

#[inline(always)]
pub fn thread_idx_x() -> u32 {
    unsafe { tid_x_() }
}
#[inline(always)]
pub fn block_idx_x() -> u32 {
    unsafe { ctaid_x_() }
}
#[inline(always)]
pub fn block_dim_x() -> u32 {
    unsafe { ntid_x_() }
}
#[inline(always)]
pub fn grid_dim_x() -> u32 {
    unsafe { nctaid_x_() }
}
