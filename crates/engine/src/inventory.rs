//! Looking names up in a bundle's inventory: every action and tool, and the
//! names closest to one that is not there — so that an operator who types
//! `AUTO-I` in an incident is told `auto-i` exists rather than being
//! handed a switch that covers nothing.

use crate::bundle::{Action, Bundle};

impl Bundle {
    /// Every `tool:verb` of the inventory, in name order.
    pub fn actions(&self) -> impl Iterator<Item = &Action> {
        let mut actions: Vec<&Action> = self.actions.values().collect();
        actions.sort_by(|a, b| a.name.cmp(&b.name));
        actions.into_iter()
    }

    /// Every tool of the inventory, in name order, each once.
    pub fn tools(&self) -> Vec<&str> {
        let mut tools: Vec<&str> = self.actions.values().map(|a| a.tool.as_str()).collect();
        tools.sort_unstable();
        tools.dedup();
        tools
    }

    /// Whether any agent works in `namespace`.
    pub fn is_any_agents_domain(&self, namespace: &str) -> bool {
        self.agents
            .values()
            .any(|a| a.domains.iter().any(|d| d == namespace))
    }
}

/// The candidates closest to `wanted`: equal ignoring case and surrounding
/// whitespace, or within two edits. Closest first, at most three.
pub fn close_matches<'a>(
    wanted: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Vec<&'a str> {
    let folded = wanted.trim().to_lowercase();
    let mut scored: Vec<(usize, &str)> = candidates
        .into_iter()
        .filter_map(|candidate| {
            let distance = edit_distance(&folded, &candidate.to_lowercase());
            (distance <= 2 || candidate.eq_ignore_ascii_case(wanted.trim()))
                .then_some((distance, candidate))
        })
        .collect();
    scored.sort();
    scored.into_iter().take(3).map(|(_, c)| c).collect()
}

/// Levenshtein distance over characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut current = Vec::with_capacity(b.len() + 1);
        current.push(i + 1);
        for (j, cb) in b.iter().enumerate() {
            let substitution =
                previous.get(j).copied().unwrap_or(usize::MAX) + usize::from(ca != *cb);
            let deletion = previous
                .get(j + 1)
                .copied()
                .unwrap_or(usize::MAX)
                .saturating_add(1);
            let insertion = current
                .get(j)
                .copied()
                .unwrap_or(usize::MAX)
                .saturating_add(1);
            current.push(substitution.min(deletion).min(insertion));
        }
        previous = current;
    }
    previous.last().copied().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_matches_fold_case_and_padding_and_allow_small_typos() {
        let agents = ["auto-i", "incident-bot", "auto-ii"];
        assert_eq!(close_matches(" AUTO-I ", agents), ["auto-i", "auto-ii"]);
        assert_eq!(close_matches("incidnet-bot", agents), ["incident-bot"]);
        assert!(close_matches("payments-db", agents).is_empty());
    }
}
