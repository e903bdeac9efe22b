//! Kubernetes resource quantities (`500m`, `2`, `1.5`, `512Mi`, `1G`,
//! `1e3`) as integers: CPU in millicores, memory in bytes.

/// CPU: `250m` is 250, `2` is 2000, `0.5` is 500.
pub fn cpu_millis(text: &str) -> Option<i64> {
    let value = parse(text)?;
    let millis = (value * 1000.0).ceil();
    (0.0..9.0e15).contains(&millis).then_some(millis as i64)
}

/// Memory: `512Mi`, `1G`, `128974848`, in bytes.
pub fn bytes(text: &str) -> Option<i64> {
    let value = parse(text)?.ceil();
    (0.0..9.0e18).contains(&value).then_some(value as i64)
}

/// A quantity as a number of base units.
fn parse(text: &str) -> Option<f64> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '+' || c == '-'))
        .unwrap_or(text.len());
    let (number, suffix) = text.split_at(split);
    if number.is_empty() {
        return None;
    }
    let number: f64 = number.parse().ok()?;
    let scale = match suffix {
        "" => 1.0,
        "m" => 1e-3,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "E" => 1e18,
        "Ki" => 1024.0,
        "Mi" => 1024.0 * 1024.0,
        "Gi" => 1024.0 * 1024.0 * 1024.0,
        "Ti" => 1024.0f64.powi(4),
        "Pi" => 1024.0f64.powi(5),
        "Ei" => 1024.0f64.powi(6),
        exponent if exponent.starts_with(['e', 'E']) => {
            10f64.powi(exponent.get(1..)?.parse().ok()?)
        }
        _ => return None,
    };
    let value = number * scale;
    (value >= 0.0).then_some(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_quantities_kubectl_prints_parse() {
        assert_eq!(cpu_millis("250m"), Some(250));
        assert_eq!(cpu_millis("2"), Some(2000));
        assert_eq!(cpu_millis("3920m"), Some(3920));
        assert_eq!(cpu_millis("0.5"), Some(500));
        assert_eq!(bytes("512Mi"), Some(512 * 1024 * 1024));
        assert_eq!(bytes("16248056Ki"), Some(16_248_056 * 1024));
        assert_eq!(bytes("1G"), Some(1_000_000_000));
        assert_eq!(bytes("1e3"), Some(1000));
        assert_eq!(bytes("lots"), None);
        assert_eq!(cpu_millis("2 cores"), None);
        assert_eq!(cpu_millis("-1"), None);
    }
}
