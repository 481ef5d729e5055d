//! Expected values and their matchers (`$any`, `$type`, `$regex`, `$capture`, `$ref`, `$each`,
//! `$contains`, `$optional`, `$absent`, `$example`, `$literal`, and `$closed` on objects).
//!
//! A transcript's expected frame is compiled once into a [`Pattern`] tree, so a malformed
//! matcher is reported when the transcript is loaded, not in the middle of a run. Matching
//! collects every difference with the JSON path where it occurred, because a report that names
//! only the first one makes people fix failures one run at a time.

mod compile;
mod concrete;
mod matching;
mod model;
mod values;

pub use concrete::{concretize, substitute};
pub use matching::match_value;
pub use model::{Captures, Difference, Matcher, Pattern, PatternError};
pub use values::{TypeName, json_equal, short, type_of};

#[cfg(test)]
mod tests;
