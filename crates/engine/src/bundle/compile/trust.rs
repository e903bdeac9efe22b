//! `gates:` and `demotion:` to [`TrustSettings`]: DESIGN §1's table where a
//! key is absent, every given value checked.

use serde_saphyr::Spanned;

use super::Config;
use crate::{
    bundle::raw::{RawConfig, RawGate, RawRate},
    trust::{Bound, CriterionSpec, Gate, Metric, Statistic, TrustSettings},
};

impl Config<'_> {
    pub(super) fn trust(&mut self, raw: &RawConfig) -> Option<TrustSettings> {
        let mut settings = TrustSettings::default();
        let gates = &raw.gates;
        if let Some(owner) = gates.owner_may_sign {
            settings.owner_may_sign = owner;
        }
        if let Some(ratio) = &gates.max_edit_ratio {
            // Edit ratios are tallied per hundredth.
            let hundredths = ratio.value * 100.0;
            if (hundredths - hundredths.round()).abs() > 1e-9 {
                self.error_at(
                    "invalid-fraction",
                    &ratio.referenced,
                    format!(
                        "gates.max_edit_ratio is counted in hundredths; {} is not",
                        ratio.value
                    ),
                );
            }
            settings.max_edit_ratio = self.fraction("gates.max_edit_ratio", Some(ratio), 0.1)?;
        }
        let [first, second, third] = &mut settings.gates;
        self.gate(
            "gates.shadow_to_assist",
            &gates.shadow_to_assist,
            first,
            &[("accuracy", Metric::DiagnosticAccuracy)],
        );
        self.gate(
            "gates.assist_to_remediate",
            &gates.assist_to_remediate,
            second,
            &[
                ("agreement", Metric::OperatorAgreement),
                ("minimal_edits", Metric::MinimalEditAcceptance),
            ],
        );
        self.gate(
            "gates.remediate_to_autonomous",
            &gates.remediate_to_autonomous,
            third,
            &[
                ("completion", Metric::Completion),
                ("max_rollback_rate", Metric::RollbackRate),
                ("escalation", Metric::EscalationCorrectness),
            ],
        );
        if third.signoffs < 2 {
            let at = gates
                .remediate_to_autonomous
                .signoffs
                .as_ref()
                .map(|s| s.referenced);
            let message =
                "gates.remediate_to_autonomous.signoffs: autonomy needs dual sign-off (at least 2)"
                    .to_owned();
            match at {
                Some(at) => self.error_at("invalid-signoffs", &at, message),
                None => self.problems.push(crate::bundle::Diagnostic::error(
                    "invalid-signoffs",
                    crate::bundle::CONFIG_FILE,
                    message,
                )),
            }
        }
        self.demotion(raw, &mut settings)?;
        Some(settings)
    }

    /// Applies `raw` over the default `gate`. `rates` are the rate keys this
    /// gate takes; a rate key of another gate is refused.
    fn gate(&mut self, key: &str, raw: &RawGate, gate: &mut Gate, rates: &[(&str, Metric)]) {
        if let Some(n) = raw.min_samples {
            gate.min_samples = n;
        }
        if let Some(n) = raw.min_domains {
            gate.min_domains = n;
        }
        if let Some(n) = raw.min_days {
            gate.min_days = n;
        }
        if let Some(signoffs) = &raw.signoffs {
            if signoffs.value == 0 {
                self.error_at(
                    "invalid-signoffs",
                    &signoffs.referenced,
                    format!("{key}.signoffs: a promotion needs at least one operator"),
                );
            }
            gate.signoffs = signoffs.value;
        }
        let default_statistic = raw.statistic.unwrap_or_default();
        for spec in &mut gate.criteria {
            spec.statistic = default_statistic;
        }
        let given: [(&str, Option<&Spanned<RawRate>>); 6] = [
            ("accuracy", raw.accuracy.as_ref()),
            ("agreement", raw.agreement.as_ref()),
            ("minimal_edits", raw.minimal_edits.as_ref()),
            ("completion", raw.completion.as_ref()),
            ("max_rollback_rate", raw.max_rollback_rate.as_ref()),
            ("escalation", raw.escalation.as_ref()),
        ];
        for (name, value) in given {
            let Some(value) = value else { continue };
            match rates.iter().find(|(rate, _)| *rate == name) {
                Some((_, metric)) => self.rate(
                    key,
                    name,
                    value,
                    gate.criteria.iter_mut().find(|c| c.metric == *metric),
                    default_statistic,
                ),
                None => self.error_at(
                    "unknown-criterion",
                    &value.referenced,
                    format!(
                        "{key} has no `{name}` criterion (it takes: {})",
                        rates.iter().map(|(r, _)| *r).collect::<Vec<_>>().join(", ")
                    ),
                ),
            }
        }
        let counts = [
            (raw.max_unsafe_attempts, Metric::UnsafeAttempts),
            (
                raw.max_out_of_scope_recommendations,
                Metric::OutOfScopeRecommendations,
            ),
        ];
        for (limit, metric) in counts {
            if let (Some(limit), Some(spec)) =
                (limit, gate.criteria.iter_mut().find(|c| c.metric == metric))
            {
                spec.bound = Bound::AtMost(limit);
            }
        }
    }

    fn rate(
        &mut self,
        key: &str,
        name: &str,
        raw: &Spanned<RawRate>,
        spec: Option<&mut CriterionSpec>,
        default_statistic: Statistic,
    ) {
        let Some(spec) = spec else { return };
        let (threshold, statistic) = match &raw.value {
            RawRate::Plain(value) => (*value, default_statistic),
            RawRate::Detailed(detail) => (
                detail.threshold,
                detail.statistic.unwrap_or(default_statistic),
            ),
        };
        if !(threshold.is_finite() && (0.0..=1.0).contains(&threshold)) {
            self.error_at(
                "invalid-fraction",
                &raw.referenced,
                format!("{key}.{name} must be a number from 0 to 1, not {threshold}"),
            );
            return;
        }
        spec.bound = match spec.bound {
            Bound::Below(_) => Bound::Below(threshold),
            _ => Bound::Above(threshold),
        };
        spec.statistic = statistic;
    }

    /// A demotion rule's threshold and statistic: a number, or
    /// `{ threshold, statistic }`; `default` when absent.
    fn demotion_rate(
        &mut self,
        key: &str,
        raw: Option<&Spanned<RawRate>>,
        default: (f64, Statistic),
    ) -> Option<(f64, Statistic)> {
        let Some(raw) = raw else {
            return Some(default);
        };
        let (threshold, statistic) = match &raw.value {
            RawRate::Plain(value) => (*value, default.1),
            RawRate::Detailed(detail) => (detail.threshold, detail.statistic.unwrap_or(default.1)),
        };
        if threshold.is_finite() && (0.0..=1.0).contains(&threshold) {
            return Some((threshold, statistic));
        }
        self.error_at(
            "invalid-fraction",
            &raw.referenced,
            format!("{key} must be a number from 0 to 1, not {threshold}"),
        );
        None
    }

    fn demotion(&mut self, raw: &RawConfig, settings: &mut TrustSettings) -> Option<()> {
        let raw = &raw.demotion;
        let demotion = &mut settings.demotion;
        let statistic = raw.statistic.unwrap_or_default();
        (demotion.accuracy_below, demotion.accuracy_statistic) = self.demotion_rate(
            "demotion.accuracy_below",
            raw.accuracy_below.as_ref(),
            (demotion.accuracy_below, statistic),
        )?;
        (demotion.rollback_above, demotion.rollback_statistic) = self.demotion_rate(
            "demotion.rollback_above",
            raw.rollback_above.as_ref(),
            (demotion.rollback_above, statistic),
        )?;
        demotion.accuracy_window = self.duration(
            "demotion.accuracy_window",
            raw.accuracy_window.as_ref(),
            "30d",
        )?;
        demotion.rollback_window = self.duration(
            "demotion.rollback_window",
            raw.rollback_window.as_ref(),
            "30d",
        )?;
        if let Some(n) = raw.accuracy_min_samples {
            demotion.accuracy_min_samples = n;
        }
        if let Some(n) = raw.rollback_min_samples {
            demotion.rollback_min_samples = n;
        }
        if let Some(phase) = raw.out_of_scope_to {
            demotion.out_of_scope_to = phase;
        }
        Some(())
    }
}
