//! Capped string builders: `repeat`, `lpad` and `rpad` replaced by wrappers that refuse
//! to build a value longer than [`MAX_STRING_BYTES`], so `repeat('x', 2147483647)` is a
//! clean error instead of a failed 2 GB allocation that aborts the process. (Query
//! workers also run under an address-space limit; this keeps the common case polite.)

use std::hash::{Hash, Hasher};
use std::sync::Arc;

use arrow::array::{Array, AsArray};
use arrow::datatypes::{DataType, FieldRef};
use datafusion::common::{DataFusionError, Result, ScalarValue};
use datafusion::logical_expr::{
    ColumnarValue, Documentation, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl,
    Signature,
};

/// The longest string a research query may build in one value.
pub const MAX_STRING_BYTES: i64 = 1 << 20;

/// Which argument is a length, and how it combines with the string.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Kind {
    /// `repeat(s, n)`: length = len(s) × n.
    Repeat,
    /// `lpad(s, n[, fill])`, `rpad`: length = n.
    Pad,
}

#[derive(Debug)]
struct Capped {
    inner: Arc<dyn ScalarUDFImpl>,
    kind: Kind,
}

impl PartialEq for Capped {
    fn eq(&self, o: &Self) -> bool {
        self.inner.name() == o.inner.name() && self.kind == o.kind
    }
}
impl Eq for Capped {}
impl Hash for Capped {
    fn hash<H: Hasher>(&self, h: &mut H) {
        self.inner.name().hash(h);
        self.kind.hash(h);
    }
}

fn max_int(v: &ColumnarValue) -> Option<i64> {
    match v {
        ColumnarValue::Scalar(s) => match s {
            ScalarValue::Int64(x) => *x,
            ScalarValue::Int32(x) => x.map(i64::from),
            ScalarValue::UInt64(x) => x.map(|x| i64::try_from(x).unwrap_or(i64::MAX)),
            _ => None,
        },
        ColumnarValue::Array(a) => {
            let a = arrow::compute::cast(a, &DataType::Int64).ok()?;
            arrow::compute::max(a.as_primitive::<arrow::datatypes::Int64Type>())
        }
    }
}

fn max_len(v: &ColumnarValue) -> i64 {
    let len = |a: &dyn Array| -> i64 {
        match a.data_type() {
            DataType::Utf8 => a.as_string::<i32>().iter().flatten().map(str::len).max(),
            DataType::LargeUtf8 => a.as_string::<i64>().iter().flatten().map(str::len).max(),
            DataType::Utf8View => a.as_string_view().iter().flatten().map(str::len).max(),
            _ => None,
        }
        .map_or(0, |l| i64::try_from(l).unwrap_or(i64::MAX))
    };
    match v {
        ColumnarValue::Scalar(s) => s.to_array().map(|a| len(a.as_ref())).unwrap_or(0),
        ColumnarValue::Array(a) => len(a.as_ref()),
    }
}

impl ScalarUDFImpl for Capped {
    fn name(&self) -> &str {
        self.inner.name()
    }
    fn aliases(&self) -> &[String] {
        self.inner.aliases()
    }
    fn signature(&self) -> &Signature {
        self.inner.signature()
    }
    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        self.inner.return_type(arg_types)
    }
    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        self.inner.return_field_from_args(args)
    }
    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        self.inner.coerce_types(arg_types)
    }
    fn documentation(&self) -> Option<&Documentation> {
        self.inner.documentation()
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        if args.args.len() >= 2 {
            let n = max_int(&args.args[1]).unwrap_or(0);
            let total = match self.kind {
                Kind::Repeat => n.saturating_mul(max_len(&args.args[0]).max(1)),
                Kind::Pad => n,
            };
            if total > MAX_STRING_BYTES {
                return Err(DataFusionError::Execution(format!(
                    "{}() would build a value of {total} characters; the limit is {MAX_STRING_BYTES}",
                    self.inner.name()
                )));
            }
        }
        self.inner.invoke_with_args(args)
    }
}

/// The capped versions of the engine's `repeat`, `lpad` and `rpad`, to register over
/// the built-ins (same names).
pub fn capped_udfs(builtins: &[Arc<ScalarUDF>]) -> Vec<ScalarUDF> {
    builtins
        .iter()
        .filter_map(|f| {
            let kind = match f.name() {
                "repeat" => Kind::Repeat,
                "lpad" | "rpad" => Kind::Pad,
                _ => return None,
            };
            Some(ScalarUDF::new_from_shared_impl(Arc::new(Capped {
                inner: f.inner().clone(),
                kind,
            })))
        })
        .collect()
}
