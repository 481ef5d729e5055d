//! The binaries' global allocator: mimalloc, asked through its plain entry points whenever
//! the alignment a layout asks for is one every mimalloc block has anyway (a machine word).
//!
//! The `mimalloc` crate's `MiMalloc` passes every allocation to `mi_malloc_aligned`. mimalloc v3
//! serves that from the size's page only while the page's free list holds a block; when it
//! runs dry, the aligned entry point does not collect the blocks freed since (as `mi_malloc`
//! does) but over-allocates from the next size class. A size class that only Rust allocates
//! into then stays on that path for good: about 145 instructions more per allocation, and its
//! freed blocks are not reused. A streamed `content` event's shared text (an `Arc<str>` of
//! about 40 bytes) was one such allocation per event. Rust's layouts nearly all ask for word
//! alignment or less, which mimalloc's blocks always have (its size classes are whole words
//! and its pages start aligned to at least 16 bytes), so those go through `mi_malloc`,
//! `mi_zalloc` and `mi_realloc`; larger alignments keep the aligned entry points.

use std::alloc::{GlobalAlloc, Layout};
use std::ffi::c_void;

use libmimalloc_sys as mi;

/// The alignment of every mimalloc block.
const WORD: usize = std::mem::size_of::<usize>();

/// See the module documentation; `#[global_allocator]` of `flynn-gateway` and `flynn-bench`.
pub struct MiMalloc;

// SAFETY: mimalloc is a thread-safe allocator; every block is freed by `mi_free`, whichever
// entry point allocated it; the alignment is honoured (word-aligned blocks for alignments up to
// a word, the aligned entry points otherwise), and a failure returns null as `GlobalAlloc`
// expects.
unsafe impl GlobalAlloc for MiMalloc {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: plain C allocation calls, no preconditions.
        unsafe {
            if layout.align() <= WORD {
                mi::mi_malloc(layout.size()).cast()
            } else {
                mi::mi_malloc_aligned(layout.size(), layout.align()).cast()
            }
        }
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as in `alloc`.
        unsafe {
            if layout.align() <= WORD {
                mi::mi_zalloc(layout.size()).cast()
            } else {
                mi::mi_zalloc_aligned(layout.size(), layout.align()).cast()
            }
        }
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, _layout: Layout) {
        // SAFETY: `ptr` came from this allocator (the caller's contract), so from mimalloc.
        unsafe { mi::mi_free(ptr.cast::<c_void>()) }
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: `ptr` came from this allocator with `layout` (the caller's contract).
        unsafe {
            if layout.align() <= WORD {
                mi::mi_realloc(ptr.cast::<c_void>(), new_size).cast()
            } else {
                mi::mi_realloc_aligned(ptr.cast::<c_void>(), new_size, layout.align()).cast()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_have_the_alignment_asked_for_and_keep_their_bytes_when_grown() {
        let alloc = MiMalloc;
        for align in [1, 2, 4, 8, 16, 32, 64, 4096] {
            for size in [1, 7, 8, 24, 40, 43, 100, 1000, 5000, 70_000] {
                let layout = Layout::from_size_align(size, align).unwrap();
                // SAFETY: a non-zero size; every block is freed once, with its layout.
                unsafe {
                    let p = alloc.alloc(layout);
                    assert!(!p.is_null());
                    assert_eq!(p as usize % align, 0, "size {size}, align {align}");
                    p.write_bytes(0xab, size);
                    let grown = alloc.realloc(p, layout, size * 3);
                    assert!(!grown.is_null());
                    assert_eq!(
                        grown as usize % align,
                        0,
                        "grown: size {size}, align {align}"
                    );
                    assert!((0..size).all(|i| *grown.add(i) == 0xab));
                    alloc.dealloc(grown, Layout::from_size_align(size * 3, align).unwrap());
                    let zeroed = alloc.alloc_zeroed(layout);
                    assert_eq!(zeroed as usize % align, 0);
                    assert!((0..size).all(|i| *zeroed.add(i) == 0));
                    alloc.dealloc(zeroed, layout);
                }
            }
        }
    }
}
