//! From what the reference set says about an image to a score with reasons.

use hashscan_bus::PdqResult;
use hashscan_hash::Digests;
use hashscan_refset::{Algo, ListKind, Match, ReferenceSet};
use hashscan_store::{Assessment, MatchKind, Reason};

/// At most this many matches are listed as reasons; the rest are counted.
const MAX_REASONS: usize = 10;

/// The score a near match contributes before the list's weight: 1 at
/// distance 0, falling linearly to just above 0.5 at the list's radius, so
/// that every match within a radius crosses the default threshold of 0.5
/// while closer copies rank higher.
pub fn near_value(distance: u32, radius: u32) -> f64 {
    1.0 - 0.5 * f64::from(distance) / f64::from(radius + 1)
}

fn describe(set: &ReferenceSet, m: &Match<'_>) -> String {
    let item = match (m.item.id, m.item.label) {
        (Some(id), Some(label)) => format!("item {id} ({label})"),
        (Some(id), None) => format!("item {id}"),
        (None, Some(label)) => format!("item at line {} ({label})", m.item.line),
        (None, None) => format!("item at line {}", m.item.line),
    };
    let how = match m.algo {
        Algo::Pdq => format!("PDQ within {} bits (radius {})", m.distance, m.item.list.pdq_radius),
        algo => format!("{algo} listed"),
    };
    format!(
        "{how} in {} list {:?} of reference set {:?} version {}, {item}",
        m.item.list.kind.name(),
        m.item.list.name,
        set.name(),
        set.version()
    )
}

/// Scores an image against the set: exact matches score their list's
/// weight, near matches [`near_value`] × weight, an `ignore` list
/// suppresses the image (score 0), and a PDQ too weak to trust is a reason,
/// not a silent zero.
pub fn assess(set: &ReferenceSet, digests: &Digests, pdq: &PdqResult) -> Assessment {
    let pdq_in = match pdq {
        PdqResult::Hashed { hash, quality, .. } => Some((hash, *quality)),
        PdqResult::Failed { .. } => None,
    };
    let report = set.match_image(digests, pdq_in);
    let value = |m: &Match<'_>| match m.algo {
        Algo::Pdq => near_value(m.distance, m.item.list.pdq_radius),
        _ => 1.0,
    };
    let mut reasons: Vec<Reason> = Vec::new();
    let mut best: Option<(f64, &Match<'_>)> = None;
    for m in report.matches.iter().filter(|m| m.item.list.kind == ListKind::Match) {
        let score = value(m) * m.item.list.weight;
        if best.is_none_or(|(s, b)| score > s || (score == s && m.distance < b.distance)) {
            best = Some((score, m));
        }
    }
    for m in report.matches.iter().take(MAX_REASONS) {
        let factor = match (m.item.list.kind, m.algo) {
            (ListKind::Ignore, _) => "ignore_list",
            (_, Algo::Pdq) => "pdq_near_match",
            _ => "exact_match",
        };
        reasons.push(Reason {
            factor: factor.into(),
            value: value(m),
            weight: m.item.list.weight,
            note: describe(set, m),
        });
    }
    if report.matches.len() > MAX_REASONS {
        reasons.push(Reason {
            factor: "more_matches".into(),
            value: 0.0,
            weight: 0.0,
            note: format!("{} more matches not listed", report.matches.len() - MAX_REASONS),
        });
    }
    for (list, quality, min) in &report.low_quality {
        reasons.push(Reason {
            factor: "pdq_quality_low".into(),
            value: f64::from(*quality) / 100.0,
            weight: 0.0,
            note: format!(
                "PDQ quality {quality} is below list {:?}'s minimum {min}: not near-matched against it",
                list.name
            ),
        });
    }
    let (match_kind, match_algo, distance) = match best {
        Some((_, m)) if m.algo == Algo::Pdq => (MatchKind::Near, Some("pdq".to_string()), Some(m.distance)),
        Some((_, m)) => (MatchKind::Exact, Some(m.algo.to_string()), Some(0)),
        None => (MatchKind::None, None, None),
    };
    let mut score = best.map_or(0.0, |(s, _)| s);
    if report.ignored() && score > 0.0 {
        score = 0.0;
    }
    Assessment { score, match_kind, match_algo, distance, reference_version: Some(set.version().to_string()), reasons }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn near_values_cross_one_half_within_the_radius() {
        assert_eq!(near_value(0, 31), 1.0);
        assert!(near_value(31, 31) > 0.5);
        assert!(near_value(10, 31) > near_value(20, 31));
        assert!(near_value(0, 0) == 1.0);
    }
}
