//! Proto-JSON durations ("300s", "1.5s", "0.250s"), the form Envoy's JSON and YAML configs use.

use std::time::Duration;

/// Parses a non-negative proto-JSON duration: decimal seconds with up to nine fractional digits and an
/// `s` suffix. Negative durations are refused because every duration in this config is a period or a bound.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let seconds_text = text
        .strip_suffix('s')
        .ok_or_else(|| format!("\"{text}\" is not a duration: expected seconds with an 's' suffix, like \"5s\" or \"1.5s\""))?;
    let (whole, fraction) = match seconds_text.split_once('.') {
        Some((whole, fraction)) => (whole, Some(fraction)),
        None => (seconds_text, None),
    };
    let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    let fraction_ok = fraction.is_none_or(|f| !f.is_empty() && f.len() <= 9 && all_digits(f));
    let fraction = fraction.unwrap_or_default();
    if whole.is_empty() || !all_digits(whole) || !fraction_ok {
        return Err(format!(
            "\"{text}\" is not a duration: expected non-negative seconds with at most 9 fractional digits and an 's' suffix, like \"5s\" or \"1.5s\""
        ));
    }
    let seconds: u64 = whole
        .parse()
        .map_err(|_| format!("\"{text}\" is not a duration: seconds out of range"))?;
    let nanos: u32 = if fraction.is_empty() {
        0
    } else {
        let padded = format!("{fraction:0<9}");
        padded
            .parse()
            .map_err(|_| format!("\"{text}\" is not a duration: bad fraction"))?
    };
    Ok(Duration::new(seconds, nanos))
}
