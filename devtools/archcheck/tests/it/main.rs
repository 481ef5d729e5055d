//! The architecture checks, one test binary: no import cycles among any crate's modules
//! (`cycles`), each spec tag's handler trait implemented in its own handler file
//! (`handler_layout`), and no hand-written function or module over its size limit unless
//! listed with a reason (`sizes`).

mod cycles;
mod handler_layout;
mod sizes;
