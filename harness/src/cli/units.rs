//! Parsers for human-friendly flag values: durations (`60s`, `1m30s`, `500ms`) and byte
//! sizes (`4GiB`, `512MiB`, `1.5GB`). Small enough to write here rather than depend on
//! two more crates.

use std::time::Duration;

/// `90`, `90s`, `1500ms`, `2m`, `1h30m`, `250us`, `10ns`; a bare number is seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    if s.is_empty() {
        return Err("empty duration: expected e.g. 60s, 1500ms, 2m".into());
    }
    if let Ok(secs) = s.parse::<u64>() {
        return Ok(Duration::from_secs(secs));
    }
    let mut total_ns: u128 = 0;
    let mut rest = s;
    while !rest.is_empty() {
        let num_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (num, after) = rest.split_at(num_end);
        let unit_end = after
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(after.len());
        let (unit, next) = after.split_at(unit_end);
        let value: f64 = num
            .parse()
            .map_err(|_| format!("bad duration {s:?}: expected e.g. 60s, 1500ms, 1m30s"))?;
        let unit_ns: f64 = match unit.trim() {
            "ns" => 1.0,
            "us" | "µs" => 1e3,
            "ms" => 1e6,
            "s" | "sec" | "secs" => 1e9,
            "m" | "min" | "mins" => 60e9,
            "h" | "hr" | "hours" => 3600e9,
            other => {
                return Err(format!(
                    "bad duration unit {other:?} in {s:?}: expected ns, us, ms, s, m or h"
                ))
            }
        };
        let ns = value * unit_ns;
        if !ns.is_finite() || ns > u64::MAX as f64 {
            return Err(format!("duration {s:?} is too long"));
        }
        total_ns += ns as u128;
        rest = next;
    }
    u64::try_from(total_ns)
        .map(Duration::from_nanos)
        .map_err(|_| format!("duration {s:?} is too long"))
}

/// `4GiB`, `512MiB`, `64KiB`, `1000`, `1.5GB` (decimal units), `4G` (binary, like `ulimit`).
pub fn parse_bytes(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let value: f64 = num
        .parse()
        .map_err(|_| format!("bad size {s:?}: expected e.g. 4GiB, 512MiB, 1000000"))?;
    let mult: f64 = match unit.trim() {
        "" | "B" => 1.0,
        "KiB" | "K" | "k" => 1024.0,
        "MiB" | "M" => 1024.0 * 1024.0,
        "GiB" | "G" => 1024.0 * 1024.0 * 1024.0,
        "TiB" | "T" => 1024.0f64.powi(4),
        "kB" | "KB" => 1e3,
        "MB" => 1e6,
        "GB" => 1e9,
        "TB" => 1e12,
        other => {
            return Err(format!(
                "bad size unit {other:?} in {s:?}: expected B, KiB, MiB, GiB, TiB, kB, MB, GB or TB"
            ))
        }
    };
    let bytes = value * mult;
    if !bytes.is_finite() || bytes > u64::MAX as f64 {
        return Err(format!("size {s:?} is too large"));
    }
    Ok(bytes as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("60s"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_duration("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("1500ms"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("1.5h"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        for bad in ["", "s", "10x", "1e400s", "-5s", "5 s s"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_bytes("4GiB"), Ok(4 << 30));
        assert_eq!(parse_bytes("512MiB"), Ok(512 << 20));
        assert_eq!(parse_bytes("4G"), Ok(4 << 30));
        assert_eq!(parse_bytes("1.5GB"), Ok(1_500_000_000));
        assert_eq!(parse_bytes("1000"), Ok(1000));
        for bad in ["", "GiB", "4XB", "-1", "1e30TB"] {
            assert!(parse_bytes(bad).is_err(), "{bad}");
        }
    }
}
