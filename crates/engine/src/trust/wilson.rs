//! Wilson score interval at 95 %: a rate's plausible range given how many
//! samples it rests on, so that 19 of 20 does not pass for 95 of 100.

const Z: f64 = 1.959_963_984_540_054;

fn interval(hits: u64, n: u64) -> Option<(f64, f64)> {
    if n == 0 {
        return None;
    }
    let (n, p) = (n as f64, hits.min(n) as f64 / n as f64);
    let z2 = Z * Z;
    let centre = p + z2 / (2.0 * n);
    let margin = Z * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt();
    let denominator = 1.0 + z2 / n;
    Some((
        ((centre - margin) / denominator).max(0.0),
        ((centre + margin) / denominator).min(1.0),
    ))
}

/// The lower bound of the rate `hits / n`; `None` without samples.
pub fn wilson_lower(hits: u64, n: u64) -> Option<f64> {
    interval(hits, n).map(|(low, _)| low)
}

/// The upper bound of the rate `hits / n`; `None` without samples.
pub fn wilson_upper(hits: u64, n: u64) -> Option<f64> {
    interval(hits, n).map(|(_, high)| high)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_values() {
        // 95 of 100: the usual textbook interval is about [0.888, 0.978].
        let (low, high) = (
            wilson_lower(95, 100).unwrap(),
            wilson_upper(95, 100).unwrap(),
        );
        assert!((low - 0.8882).abs() < 1e-3, "{low}");
        assert!((high - 0.9785).abs() < 1e-3, "{high}");
        assert_eq!(wilson_lower(0, 0), None);
        assert!(wilson_lower(100, 100).unwrap() < 1.0 && wilson_upper(0, 100).unwrap() > 0.0);
    }

    #[test]
    fn more_samples_narrow_the_interval() {
        assert!(wilson_lower(19, 20).unwrap() < wilson_lower(950, 1000).unwrap());
    }
}
