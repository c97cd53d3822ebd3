//! Kernel-name interning, done on the collector's background thread (never in a CUPTI
//! callback).

use std::collections::HashMap;
use std::ffi::{c_char, CStr};

/// Maps CUPTI's kernel-name pointers (shared by all records of one kernel) to small ids;
/// two pointers with the same text get the same id.
#[derive(Debug, Default)]
pub struct NameInterner {
    by_addr: HashMap<usize, u32>,
    by_name: HashMap<String, u32>,
    names: Vec<String>,
}

impl NameInterner {
    pub fn new() -> NameInterner {
        NameInterner::default()
    }

    /// Interns the name at `addr` whose text is `text` (callers that have the text).
    /// Returns `(id, true)` the first time the *text* is seen.
    pub fn intern(&mut self, addr: usize, text: &str) -> (u32, bool) {
        if let Some(&id) = self.by_addr.get(&addr) {
            return (id, false);
        }
        let (id, new) = match self.by_name.get(text) {
            Some(&id) => (id, false),
            None => {
                let id = self.names.len() as u32;
                self.names.push(text.to_owned());
                self.by_name.insert(text.to_owned(), id);
                (id, true)
            }
        };
        self.by_addr.insert(addr, id);
        (id, new)
    }

    /// Interns the C string at `addr` (null → `"<unknown>"`), reading it only the first
    /// time this address is seen.
    ///
    /// # Safety
    /// A non-null `addr` must point to a NUL-terminated string that is valid now
    /// (CUPTI's kernel names stay valid while their module is loaded).
    pub unsafe fn intern_c(&mut self, addr: usize) -> (u32, bool) {
        if let Some(&id) = self.by_addr.get(&addr) {
            return (id, false);
        }
        let text = if addr == 0 {
            "<unknown>".into()
        } else {
            unsafe { CStr::from_ptr(addr as *const c_char) }.to_string_lossy()
        };
        self.intern(addr, &text)
    }

    pub fn name(&self, id: u32) -> Option<&str> {
        self.names.get(id as usize).map(String::as_str)
    }
    pub fn len(&self) -> usize {
        self.names.len()
    }
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }
}
