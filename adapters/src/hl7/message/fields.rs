//! Values as the HL7 builders write them (the PCD-01 export, the PCD-04 alarm report).

/// The shortest decimal that reads back as `x`, never with an exponent (HL7 NM has none).
pub fn number(x: f64) -> String {
    if x == 0.0 {
        // -0 is 0 to a clinician.
        return "0".into();
    }
    // f64's Display is the shortest round-tripping form and never uses an exponent.
    x.to_string()
}

/// `YYYY-MM-DD` (or `YYYY-MM`, `YYYY`, or already `YYYYMMDD`) as an HL7 date; `None` when it
/// is not one.
pub fn hl7_date(s: &str) -> Option<String> {
    let s = s.trim();
    let digits: String = s.chars().filter(|c| *c != '-').collect();
    let dashed_ok = match s.len() {
        4 | 8 => !s.contains('-'),
        7 => s.as_bytes()[4] == b'-',
        10 => s.as_bytes()[4] == b'-' && s.as_bytes()[7] == b'-',
        _ => false,
    };
    (dashed_ok && matches!(digits.len(), 4 | 6 | 8) && digits.bytes().all(|b| b.is_ascii_digit()))
        .then_some(digits)
}
