//! Choosing branches: a seeded sample, without replacement, of the
//! perturbation space — every single perturbation and every pair of
//! perturbations of different kinds.
//!
//! Three branches in four are single perturbations, taken round-robin by
//! kind (so a kind with many variants — one per node — does not drown one
//! with few — one per step) until a kind runs out of singles; the fourth
//! pairs two perturbations of different kinds, led round-robin by kind.
//! When the singles are spent, the rest are pairs. The generator is a SplitMix64 written
//! here, so the same seed gives the same branches on every build.

use std::collections::HashSet;

/// SplitMix64: small, fast, and stable forever (no crate upgrade can
/// change a report).
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n > 0`), without modulo bias worth measuring
    /// at these sizes (Lemire's multiply-shift).
    pub fn below(&mut self, n: usize) -> usize {
        let wide = u128::from(self.next_u64()) * n as u128;
        usize::try_from(wide >> 64).unwrap_or(0)
    }
}

/// A branch: one perturbation, or two of different kinds (sorted).
pub type Branch = Vec<usize>;

/// The sample: the branches, and the size of the space they came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sample {
    /// The branches to run, in order.
    pub branches: Vec<Branch>,
    /// How many distinct branches the space holds.
    pub space: u64,
    /// Whether the sample is the whole space.
    pub exhaustive: bool,
}

/// Picks `count` distinct branches over perturbations of these `kinds`
/// (one kind name per perturbation, in the model's order).
pub fn sample(kinds: &[&'static str], count: usize, seed: u64) -> Sample {
    let mut groups: Vec<(&'static str, Vec<usize>)> = Vec::new();
    for (index, kind) in kinds.iter().enumerate() {
        match groups.iter_mut().find(|(k, _)| k == kind) {
            Some((_, members)) => members.push(index),
            None => groups.push((kind, vec![index])),
        }
    }
    let n = kinds.len() as u64;
    let same_kind_pairs: u64 = groups
        .iter()
        .map(|(_, m)| (m.len() as u64) * (m.len() as u64))
        .sum();
    let space = n + (n * n - same_kind_pairs) / 2;
    if count as u64 >= space {
        return Sample {
            branches: everything(kinds),
            space,
            exhaustive: true,
        };
    }
    let mut rng = Rng::new(seed);
    // Each kind's singles in a seeded order, taken from the front: singles
    // are drawn without replacement by construction.
    let mut singles: Vec<Vec<usize>> = groups
        .iter()
        .map(|(_, members)| {
            let mut order = members.clone();
            for i in (1..order.len()).rev() {
                order.swap(i, rng.below(i + 1));
            }
            order.reverse();
            order
        })
        .collect();
    let mut seen: HashSet<Branch> = HashSet::with_capacity(count);
    let mut branches = Vec::with_capacity(count);
    let (mut single_turn, mut pair_turn, mut misses) = (0usize, 0usize, 0usize);
    while branches.len() < count && misses < count.saturating_mul(64).max(4096) {
        // One branch in four pairs two kinds: coincidences are probed
        // without drowning the single failures a plan must survive.
        let wants_pair = branches.len() % 4 == 3;
        let single = if wants_pair {
            None
        } else {
            // The next kind, round-robin, that still has a single left.
            (0..groups.len()).find_map(|k| {
                let kind = (single_turn + k) % groups.len();
                let next = singles.get_mut(kind).and_then(Vec::pop)?;
                single_turn = kind + 1;
                Some(next)
            })
        };
        let branch = match single {
            Some(atom) => vec![atom],
            None => {
                let kind = pair_turn % groups.len();
                pair_turn += 1;
                match pair(&groups, kind, &mut rng) {
                    Some(branch) => branch,
                    None => {
                        misses += 1;
                        continue;
                    }
                }
            }
        };
        if seen.insert(branch.clone()) {
            branches.push(branch);
        } else {
            misses += 1;
        }
    }
    Sample {
        branches,
        space,
        exhaustive: false,
    }
}

/// A random pair led by kind `lead`, the other of a different kind.
fn pair(groups: &[(&'static str, Vec<usize>)], lead: usize, rng: &mut Rng) -> Option<Branch> {
    let (_, leading) = groups.get(lead)?;
    let others: usize = groups
        .iter()
        .enumerate()
        .filter(|(k, _)| *k != lead)
        .map(|(_, (_, m))| m.len())
        .sum();
    if others == 0 {
        return None;
    }
    let first = *leading.get(rng.below(leading.len()))?;
    let mut pick = rng.below(others);
    let second = groups
        .iter()
        .enumerate()
        .filter(|(k, _)| *k != lead)
        .find_map(|(_, (_, members))| {
            if pick < members.len() {
                members.get(pick).copied()
            } else {
                pick -= members.len();
                None
            }
        })?;
    let mut branch = vec![first, second];
    branch.sort_unstable();
    Some(branch)
}

/// Every single, then every pair of different kinds, in index order.
fn everything(kinds: &[&'static str]) -> Vec<Branch> {
    let mut all: Vec<Branch> = (0..kinds.len()).map(|i| vec![i]).collect();
    for (a, kind_a) in kinds.iter().enumerate() {
        for (b, kind_b) in kinds.iter().enumerate().skip(a + 1) {
            if kind_a != kind_b {
                all.push(vec![a, b]);
            }
        }
    }
    all
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sample_is_distinct_seeded_and_stratified() {
        let kinds: Vec<&'static str> = std::iter::repeat_n("node_lost", 40)
            .chain(std::iter::repeat_n("stale", 3))
            .chain(std::iter::repeat_n("spike", 8))
            .collect();
        let a = sample(&kinds, 300, 7);
        assert_eq!(a, sample(&kinds, 300, 7));
        assert_ne!(a.branches, sample(&kinds, 300, 8).branches);
        assert_eq!(a.branches.len(), 300);
        let distinct: HashSet<&Branch> = a.branches.iter().collect();
        assert_eq!(distinct.len(), 300);
        // Every single of the small kinds is taken before the big kind's run out.
        for stale in 40..43 {
            assert!(a.branches.contains(&vec![stale]), "{stale}");
        }
        let pairs = a.branches.iter().filter(|b| b.len() == 2).count();
        assert_eq!(pairs, 300 - 51, "51 singles, then pairs");
        let small = sample(&kinds, 40, 7);
        assert_eq!(small.branches.iter().filter(|b| b.len() == 2).count(), 10);
        assert!(a.branches.iter().all(|b| b.len() <= 2));
    }

    #[test]
    fn a_small_space_is_run_whole() {
        let kinds = ["a", "a", "b"];
        let s = sample(&kinds, 100, 1);
        assert!(s.exhaustive);
        // 3 singles + (a0,b) + (a1,b); (a0,a1) is not a pair of kinds.
        assert_eq!(s.space, 5);
        assert_eq!(s.branches.len(), 5);
    }

    #[test]
    fn below_stays_in_range() {
        let mut rng = Rng::new(3);
        for n in 1..50 {
            assert!(rng.below(n) < n);
        }
    }
}
