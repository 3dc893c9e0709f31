//! FHIRPath, the subset SQL on FHIR v2 requires and a few functions more: compiled once
//! per view ([`parse::compile`]), evaluated per resource ([`eval`]).
//!
//! Supported: member paths (choice elements such as `value` find `valueQuantity`),
//! indexers, `$this`, `%rowIndex`, `%resource`, the view's constants, literals (string,
//! integer, decimal, boolean, `@date`, `@dateTime`, `@Ttime`, `{}`), the operators
//! `. [] unary- * / div mod + - & | < > <= >= = != ~ !~ in contains and or xor implies is
//! as`, and the functions in [`parse::FUNCTIONS`]. Anything else is refused when the
//! view is compiled, with the list of supported functions. Not supported: `$index`,
//! `$total`, `resolve()`, `memberOf()`, `aggregate()`, date arithmetic with quantities,
//! unit conversion of quantities, and the other functions of FHIRPath N1 not listed.

pub mod eval;
pub mod parse;
pub mod types;

pub use eval::{Ctx, Val};
pub use parse::{Constants, Expr, Lit, compile};
