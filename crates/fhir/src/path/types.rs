//! FHIR R4 type names: what a choice element's suffix (`valueQuantity`) may be, and which
//! names `ofType()`, `is` and `as` accept.

/// FHIR R4 primitive types (FHIRPath type names start lower case).
pub const PRIMITIVES: &[&str] = &[
    "base64Binary",
    "boolean",
    "canonical",
    "code",
    "date",
    "dateTime",
    "decimal",
    "id",
    "instant",
    "integer",
    "integer64",
    "markdown",
    "oid",
    "positiveInt",
    "string",
    "time",
    "unsignedInt",
    "uri",
    "url",
    "uuid",
    "xhtml",
];

/// FHIR R4 complex data types (those a choice element can take, and a few more).
pub const COMPLEX: &[&str] = &[
    "Address",
    "Age",
    "Annotation",
    "Attachment",
    "CodeableConcept",
    "CodeableReference",
    "Coding",
    "ContactDetail",
    "ContactPoint",
    "Contributor",
    "Count",
    "DataRequirement",
    "Distance",
    "Dosage",
    "Duration",
    "Expression",
    "Extension",
    "HumanName",
    "Identifier",
    "Meta",
    "Money",
    "Narrative",
    "ParameterDefinition",
    "Period",
    "Quantity",
    "Range",
    "Ratio",
    "RatioRange",
    "Reference",
    "RelatedArtifact",
    "SampledData",
    "Signature",
    "Timing",
    "TriggerDefinition",
    "UsageContext",
];

/// The FHIR type a choice element's member name ends with: `valueQuantity` for the
/// element `value` gives `Quantity`, `deceasedBoolean` gives `boolean`. `None` when the
/// member is not `element` followed by a known type name.
pub fn choice_suffix(member: &str, element: &str) -> Option<&'static str> {
    let suffix = member.strip_prefix(element)?;
    let first = suffix.chars().next()?;
    if !first.is_ascii_uppercase() {
        return None;
    }
    if let Some(t) = COMPLEX.iter().find(|t| **t == suffix) {
        return Some(t);
    }
    PRIMITIVES.iter().copied().find(|p| {
        p.len() == suffix.len()
            && p[..1].eq_ignore_ascii_case(&suffix[..1])
            && p[1..] == suffix[1..]
    })
}

/// Resolves a type specifier as written in a path (`Quantity`, `FHIR.Quantity`,
/// `string`, `FHIR.string`, `System.String`) to a FHIR type name.
pub fn resolve(spec: &str) -> Option<&'static str> {
    let (ns, name) = match spec.split_once('.') {
        Some((ns, name)) => (Some(ns), name),
        None => (None, spec),
    };
    match ns {
        Some("System") => Some(match name {
            "String" => "string",
            "Boolean" => "boolean",
            "Integer" => "integer",
            "Decimal" => "decimal",
            "Date" => "date",
            "DateTime" => "dateTime",
            "Time" => "time",
            "Quantity" => "Quantity",
            _ => return None,
        }),
        Some("FHIR") | None => PRIMITIVES
            .iter()
            .chain(COMPLEX)
            .copied()
            .find(|t| *t == name),
        Some(_) => None,
    }
}

/// Whether a FHIR type is one of the string-like primitives (its JSON form is a string).
pub fn is_stringish(t: &str) -> bool {
    matches!(
        t,
        "base64Binary"
            | "canonical"
            | "code"
            | "date"
            | "dateTime"
            | "id"
            | "instant"
            | "markdown"
            | "oid"
            | "string"
            | "time"
            | "uri"
            | "url"
            | "uuid"
            | "xhtml"
    )
}

/// Whether a FHIR type is an integer primitive.
pub fn is_integer(t: &str) -> bool {
    matches!(t, "integer" | "positiveInt" | "unsignedInt" | "integer64")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn choice_suffixes() {
        assert_eq!(choice_suffix("valueQuantity", "value"), Some("Quantity"));
        assert_eq!(
            choice_suffix("deceasedBoolean", "deceased"),
            Some("boolean")
        );
        assert_eq!(
            choice_suffix("effectiveDateTime", "effective"),
            Some("dateTime")
        );
        assert_eq!(
            choice_suffix("valueBase64Binary", "value"),
            Some("base64Binary")
        );
        assert_eq!(choice_suffix("valueSet", "value"), None);
        assert_eq!(choice_suffix("values", "value"), None);
        assert_eq!(choice_suffix("value", "value"), None);
    }

    #[test]
    fn type_specifiers() {
        assert_eq!(resolve("FHIR.Quantity"), Some("Quantity"));
        assert_eq!(resolve("System.String"), Some("string"));
        assert_eq!(resolve("dateTime"), Some("dateTime"));
        assert_eq!(resolve("Banana"), None);
    }
}
