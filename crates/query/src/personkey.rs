//! `__dhub_person_key(person)`: a 64-bit key per person, for counting the distinct
//! persons behind each output cell (disclosure control) on integers instead of strings.
//!
//! Person columns hold pseudonyms, 32 hex characters of HMAC output: their first 16 hex
//! characters are already a uniformly random 64-bit number, so the key is those bits
//! (any other value is hashed with a fixed-seed 64-bit hash). Two persons sharing a key
//! can only make a count of distinct persons *smaller*, which suppresses more, never
//! less; with 64 bits this happens with probability about n²/2⁶⁵ (under 10⁻⁷ for a
//! million persons in one cell).
//!
//! The function is built into the rewritten plan only; it is not registered in
//! research sessions, so SQL cannot call it.

use std::hash::{BuildHasher, Hasher};
use std::sync::Arc;

use arrow::array::{Array, AsArray, UInt64Array};
use arrow::datatypes::DataType;
use datafusion::common::Result;
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

/// The function's name.
pub const NAME: &str = "__dhub_person_key";

#[derive(Debug, PartialEq, Eq, Hash)]
struct PersonKey {
    signature: Signature,
}

/// The key of one person value.
#[inline]
pub fn key(v: &str) -> u64 {
    let b = v.as_bytes();
    if b.len() == 32 && b.iter().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f')) {
        return b[..16].iter().fold(0u64, |k, &c| {
            let d = if c <= b'9' { c - b'0' } else { c - b'a' + 10 };
            (k << 4) | u64::from(d)
        });
    }
    let mut h = foldhash::fast::FixedState::with_seed(0x64_68_75_62).build_hasher();
    h.write(b);
    h.finish()
}

impl ScalarUDFImpl for PersonKey {
    fn name(&self) -> &str {
        NAME
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::UInt64)
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let a = args.args[0].to_array(args.number_rows)?;
        let out: UInt64Array = match a.data_type() {
            DataType::Utf8View => a.as_string_view().iter().map(|v| v.map(key)).collect(),
            DataType::Utf8 => a.as_string::<i32>().iter().map(|v| v.map(key)).collect(),
            DataType::LargeUtf8 => a.as_string::<i64>().iter().map(|v| v.map(key)).collect(),
            _ => {
                let s = arrow::compute::cast(&a, &DataType::Utf8)?;
                s.as_string::<i32>().iter().map(|v| v.map(key)).collect()
            }
        };
        Ok(ColumnarValue::Array(Arc::new(out)))
    }
}

/// The UDF.
pub fn udf() -> ScalarUDF {
    ScalarUDF::new_from_impl(PersonKey {
        signature: Signature::any(1, Volatility::Immutable),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pseudonyms_key_on_their_first_64_bits_and_others_hash() {
        assert_eq!(
            key("0123456789abcdef0123456789abcdef"),
            0x0123_4567_89ab_cdef
        );
        assert_eq!(key("ffffffffffffffff0000000000000000"), u64::MAX);
        assert_ne!(
            key("0123456789abcdef0123456789abcdeX"),
            key("0123456789abcdef0123456789abcdeY")
        );
        assert_eq!(key("9434765919"), key("9434765919"));
        assert_ne!(key("9434765919"), key("9434765918"));
        // upper-case hex is not a dhub pseudonym: hashed, not parsed
        assert_ne!(
            key("0123456789ABCDEF0123456789ABCDEF"),
            0x0123_4567_89ab_cdef
        );
    }
}
