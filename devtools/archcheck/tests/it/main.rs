//! The architecture checks, one test binary: no import cycles among any crate's modules
//! (`cycles`), and each spec tag's handler trait implemented in its own handler file
//! (`handler_layout`).

mod cycles;
mod handler_layout;
