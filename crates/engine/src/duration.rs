//! [`BundleDuration`]: the durations a bundle writes (`30s`, `5m`, `24h`,
//! `7d`), and nothing fancier, so every reader of a bundle agrees on them.

use std::{fmt, str::FromStr};

use jiff::SignedDuration;
use serde::{Deserialize, Deserializer, Serialize, Serializer, de};

/// A positive whole number of seconds, minutes, hours or days.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BundleDuration {
    seconds: i64,
}

/// Why a duration did not parse.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("`{input}` is not a duration: write a whole number and a unit, such as 30s, 5m, 24h or 7d")]
pub struct DurationError {
    input: String,
}

impl BundleDuration {
    /// A duration of this many seconds (at least one).
    pub fn from_seconds(seconds: i64) -> Option<BundleDuration> {
        (seconds > 0).then_some(BundleDuration { seconds })
    }

    /// One second: the shortest duration.
    pub const ONE_SECOND: BundleDuration = BundleDuration { seconds: 1 };

    /// [`BundleDuration::from_seconds`], usable in constants.
    pub const fn from_seconds_const(seconds: i64) -> Option<BundleDuration> {
        if seconds > 0 {
            Some(BundleDuration { seconds })
        } else {
            None
        }
    }

    /// The length in seconds.
    pub fn seconds(self) -> i64 {
        self.seconds
    }

    /// The length as a signed duration, for arithmetic on timestamps.
    pub fn as_signed(self) -> SignedDuration {
        SignedDuration::from_secs(self.seconds)
    }
}

impl FromStr for BundleDuration {
    type Err = DurationError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let error = || DurationError {
            input: input.to_owned(),
        };
        let split = input
            .find(|c: char| !c.is_ascii_digit())
            .ok_or_else(error)?;
        let (digits, unit) = input.split_at(split);
        let count: i64 = digits.parse().map_err(|_| error())?;
        let unit_seconds = match unit {
            "s" => 1,
            "m" => 60,
            "h" => 3_600,
            "d" => 86_400,
            _ => return Err(error()),
        };
        count
            .checked_mul(unit_seconds)
            .and_then(BundleDuration::from_seconds)
            .ok_or_else(error)
    }
}

impl fmt::Display for BundleDuration {
    /// The largest unit that divides the duration evenly: `300` is `5m`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (count, unit) = [(86_400, "d"), (3_600, "h"), (60, "m")]
            .into_iter()
            .find(|(unit_seconds, _)| self.seconds % unit_seconds == 0)
            .map_or((self.seconds, "s"), |(unit_seconds, unit)| {
                (self.seconds / unit_seconds, unit)
            });
        write!(f, "{count}{unit}")
    }
}

impl Serialize for BundleDuration {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for BundleDuration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(de::Error::custom)
    }
}

/// Renders how long ago something was, for humans: `7m12s`, `3d`.
pub(crate) fn human_age(duration: SignedDuration) -> HumanAge {
    HumanAge(duration)
}

/// A duration as `1d2h3m4s`, written straight into whatever formats it.
pub(crate) struct HumanAge(SignedDuration);

impl fmt::Display for HumanAge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let total = self.0.as_secs();
        let (days, rest) = (total / 86_400, total % 86_400);
        let (hours, rest) = (rest / 3_600, rest % 3_600);
        let (minutes, seconds) = (rest / 60, rest % 60);
        let mut wrote = false;
        for (count, unit) in [(days, "d"), (hours, "h"), (minutes, "m"), (seconds, "s")] {
            if count != 0 {
                write!(f, "{count}{unit}")?;
                wrote = true;
            }
        }
        if !wrote {
            f.write_str("0s")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_units_parse() {
        let cases = [
            ("30s", 30, "30s"),
            ("5m", 300, "5m"),
            ("90m", 5_400, "90m"),
            ("24h", 86_400, "1d"),
            ("7d", 604_800, "7d"),
        ];
        for (text, seconds, shown) in cases {
            let parsed: BundleDuration = text.parse().unwrap();
            assert_eq!(parsed.seconds(), seconds, "{text}");
            assert_eq!(parsed.to_string(), shown);
            assert_eq!(shown.parse::<BundleDuration>().unwrap(), parsed);
        }
    }

    #[test]
    fn anything_else_is_refused() {
        for bad in [
            "",
            "5",
            "m",
            "5 m",
            "5min",
            "1.5h",
            "-5m",
            "0s",
            "5M",
            "99999999999999999999d",
        ] {
            assert!(bad.parse::<BundleDuration>().is_err(), "{bad:?} parsed");
        }
    }

    #[test]
    fn ages_render_compactly() {
        assert_eq!(
            human_age(SignedDuration::from_secs(432)).to_string(),
            "7m12s"
        );
        assert_eq!(human_age(SignedDuration::from_secs(0)).to_string(), "0s");
        assert_eq!(
            human_age(SignedDuration::from_secs(90_000)).to_string(),
            "1d1h"
        );
    }
}
