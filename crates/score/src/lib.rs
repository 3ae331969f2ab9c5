//! The risk score of an image hash, from the circumstances where it was seen.
//!
//! Listed material is found by the reference set. The gain of a hotline is
//! in the images that are *not* listed yet but live where listed material
//! lives. This crate turns the evidence about one image — what the reference
//! set said, the pages and hosts it was seen on and what else was found
//! there, analyst decisions — into a score in [0, 1] made of named factors,
//! each with its value and weight, so an analyst sees *why*.
//!
//! It is pure arithmetic: the store gathers [`Evidence`] and the matcher
//! calls [`score`] again whenever the evidence changes, so the result does
//! not depend on the order in which pages and images arrived.
//!
//! How the factors combine (all values in [0, 1]):
//! * **reference** — the reference set's own value (exact 1.0, near less
//!   with distance, × the list's weight), or a near-duplicate of an image an
//!   analyst confirmed.
//! * **co-occurrence** — `1 − Π(1 − s)` over the pages where the image sits
//!   next to listed material, `s = presence + (1 − presence) × share`,
//!   `share` being the listed part of the other images on that page; **listed pages** — `1 − ½ⁿ` for n such
//!   pages; **spread** — the same image next to listed material under
//!   several registrable domains. They combine as independent evidence
//!   (noisy-OR, each × its weight) and are then multiplied by
//! * **ubiquity** — the fraction of the image's pages that carry listed
//!   material. A logo shown on every page of the web also appears next to
//!   listed material; most of its pages are clean, and this keeps it down.
//! * **host** — the share of pages with listed material on the hosts where
//!   the image was seen, raised by analyst confirmations there, decayed by
//!   the age of that material and averaged over the image's pages. Alone it is
//!   a prior that ranks unknown images on bad hosts higher without making
//!   them cases (listed images get none: they count in their host's figures).
//! * **analyst decisions** override: `confirmed` is 1, `not_abuse` is 0
//!   (and the store no longer counts that hash as evidence for others).
#![deny(missing_docs)]

use serde::{Deserialize, Serialize};

/// An analyst's decision on an image hash, as far as scoring cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    /// The analyst confirmed it as abuse material.
    Confirmed,
    /// The analyst found it is not: suppress it.
    NotAbuse,
}

impl Decision {
    /// The decision a case status carries for scoring: `confirmed` and
    /// `not_abuse` do; open, escalated or any other status does not.
    pub fn of_case_status(status: &str) -> Option<Self> {
        match status {
            "confirmed" => Some(Self::Confirmed),
            "not_abuse" => Some(Self::NotAbuse),
            _ => None,
        }
    }
}

/// One page where the image was seen, with what else was there.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PageEvidence {
    /// The page URL.
    pub url: String,
    /// Its registrable domain (public-suffix aware).
    pub domain: String,
    /// Other distinct images on the page (this one excluded).
    pub others: u64,
    /// How many of those are listed, near-matched or confirmed.
    pub listed: u64,
}

impl PageEvidence {
    /// The listed part of the other images on the page.
    pub fn share(&self) -> f64 {
        if self.others == 0 {
            0.0
        } else {
            (self.listed as f64 / self.others as f64).min(1.0)
        }
    }
}

/// A host where the image was seen on a page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HostEvidence {
    /// Host name.
    pub host: String,
    /// Pages of the image being scored on this host.
    #[serde(default)]
    pub seen_on: u64,
    /// Pages with images seen on the host.
    pub pages: u64,
    /// Of those, pages carrying listed, near-matched or confirmed material.
    pub pages_with_listed: u64,
    /// Distinct listed (or near-matched) images on the host.
    pub listed: u64,
    /// Distinct analyst-confirmed images on the host.
    pub confirmed: u64,
    /// When listed material was last seen there (Unix ms).
    pub last_listed_ms: Option<i64>,
}

/// Everything known about one image hash that bears on its risk.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Evidence {
    /// The reference set's value for the image itself (0 when not listed).
    pub reference: f64,
    /// An `ignore` list holds it: known benign.
    pub ignored: bool,
    /// An analyst's decision on this very hash.
    pub decision: Option<Decision>,
    /// PDQ distance to the nearest analyst-confirmed image, with the radius
    /// within which that counts.
    pub confirmed_near: Option<(u32, u32)>,
    /// Distinct pages where the image was seen (exact).
    pub pages_total: u64,
    /// Of those, pages with listed material among the other images (exact).
    pub pages_with_listed: u64,
    /// The pages with listed material, most telling first (may be capped).
    pub listed_pages: Vec<PageEvidence>,
    /// Hosts of the pages where the image was seen (may be capped).
    pub hosts: Vec<HostEvidence>,
    /// The time the evidence is judged at (Unix ms), for recency.
    pub now_ms: i64,
}

/// How much each factor counts. The defaults are documented in
/// docs/scoring.md with the evaluation that chose them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Weights {
    /// Weight of the co-occurrence factor.
    pub cooccurrence: f64,
    /// Weight of the number of pages with listed neighbours.
    pub listed_pages: f64,
    /// Weight of the spread over registrable domains.
    pub spread: f64,
    /// Weight of the host factor.
    pub host: f64,
    /// What merely sharing a page with listed material is worth, before the
    /// listed share of the page adds the rest.
    pub page_presence: f64,
    /// Half-life of host evidence, in days.
    pub host_half_life_days: f64,
}

impl Default for Weights {
    fn default() -> Self {
        Self {
            cooccurrence: 0.5,
            listed_pages: 0.4,
            spread: 0.3,
            host: 0.35,
            host_half_life_days: 180.0,
            page_presence: 0.25,
        }
    }
}

/// One named part of a score, as shown to the analyst.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Factor {
    /// Stable name (e.g. `cooccurrence`).
    pub name: String,
    /// Its value in [0, 1].
    pub value: f64,
    /// Its weight (for `ubiquity`: a multiplier, shown as 1).
    pub weight: f64,
    /// A sentence an analyst can check.
    pub note: String,
}

/// A score and the factors it was made of.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Scored {
    /// Risk in [0, 1].
    pub score: f64,
    /// The factors, in a fixed order.
    pub factors: Vec<Factor>,
}

/// The value of a PDQ near match at `distance` within `radius`: 1 at 0,
/// falling to just above 0.5 at the radius (so every match within the
/// radius crosses the default threshold of 0.5).
pub fn near_value(distance: u32, radius: u32) -> f64 {
    1.0 - 0.5 * f64::from(distance) / f64::from(radius + 1)
}

fn factor(name: &str, value: f64, weight: f64, note: String) -> Factor {
    Factor { name: name.to_string(), value, weight, note }
}

/// Scores `e` with weights `w`. Pure: the same evidence gives the same score.
pub fn score(e: &Evidence, w: &Weights) -> Scored {
    let mut factors = Vec::new();
    match e.decision {
        Some(Decision::Confirmed) => {
            factors.push(factor("analyst_confirmed", 1.0, 1.0, "an analyst confirmed this image".into()));
            return Scored { score: 1.0, factors };
        }
        Some(Decision::NotAbuse) => {
            factors.push(factor(
                "analyst_not_abuse",
                0.0,
                1.0,
                "an analyst decided this image is not abuse material; it is suppressed".into(),
            ));
            return Scored { score: 0.0, factors };
        }
        None => {}
    }
    if e.ignored {
        factors.push(factor("ignore_list", 0.0, 1.0, "an ignore list holds this image as known benign".into()));
        return Scored { score: 0.0, factors };
    }

    // What is known about the image itself.
    let mut reference = e.reference.clamp(0.0, 1.0);
    if e.reference > 0.0 {
        factors.push(factor("reference", reference, 1.0, "the reference set matches it (see the reasons)".into()));
    }
    if let Some((d, radius)) = e.confirmed_near {
        let v = near_value(d, radius);
        reference = reference.max(v);
        factors.push(factor(
            "near_confirmed",
            v,
            1.0,
            format!("PDQ within {d} bits of an image an analyst confirmed (radius {radius})"),
        ));
    }

    // Where it was seen.
    let presence = w.page_presence.clamp(0.0, 1.0);
    let cooc = 1.0 - e.listed_pages.iter().map(|p| 1.0 - (presence + (1.0 - presence) * p.share())).product::<f64>();
    let n = e.pages_with_listed;
    let pages_value = 1.0 - 0.5f64.powi(n.min(64) as i32);
    let mut domains: Vec<&str> = e.listed_pages.iter().map(|p| p.domain.as_str()).collect();
    domains.sort_unstable();
    domains.dedup();
    let spread = (domains.len().saturating_sub(1) as f64 / 2.0).min(1.0);
    let ubiquity = if e.pages_total == 0 { 0.0 } else { (n as f64 / e.pages_total as f64).min(1.0) };
    if n > 0 {
        let best = e.listed_pages.first();
        factors.push(factor(
            "cooccurrence",
            cooc,
            w.cooccurrence,
            match best {
                Some(p) => format!(
                    "seen next to listed material; most on {} ({} of {} other images listed)",
                    p.url, p.listed, p.others
                ),
                None => "seen next to listed material".into(),
            },
        ));
        factors.push(factor(
            "listed_pages",
            pages_value,
            w.listed_pages,
            format!("on {n} page(s) that carry listed material"),
        ));
        factors.push(factor(
            "spread",
            spread,
            w.spread,
            format!("next to listed material under {} registrable domain(s)", domains.len()),
        ));
        factors.push(factor(
            "ubiquity",
            ubiquity,
            1.0,
            format!(
                "{n} of the {} page(s) where it was seen carry listed material (a picture seen mostly \
                 elsewhere counts less)",
                e.pages_total
            ),
        ));
    }
    let evidence =
        1.0 - (1.0 - w.cooccurrence * cooc) * (1.0 - w.listed_pages * pages_value) * (1.0 - w.spread * spread);
    let around = if n > 0 { evidence * ubiquity } else { 0.0 };

    // The hosts it was seen on: a prior for images the reference set does
    // not know (for a listed image the host's figures include the image
    // itself, which would count it twice). Each host counts by the share of
    // the image's pages it holds, so a picture shown across the web takes
    // little from the one bad host among many.
    let rated: Vec<(f64, &HostEvidence)> = e
        .hosts
        .iter()
        .filter(|_| e.reference <= 0.0)
        .filter(|h| h.pages > 0 && (h.pages_with_listed > 0 || h.confirmed > 0))
        .map(|h| {
            let age_days = h.last_listed_ms.map_or(0.0, |t| (e.now_ms - t).max(0) as f64 / 86_400_000.0);
            let decay = 0.5f64.powf(age_days / w.host_half_life_days.max(1e-9));
            let share = (h.pages_with_listed as f64 / h.pages as f64).min(1.0);
            // An analyst's confirmation there is ground truth about the host
            // itself: each one takes 30% off what the share leaves.
            let confirmed = 1.0 - 0.7f64.powi(h.confirmed.min(64) as i32);
            ((1.0 - (1.0 - share) * (1.0 - confirmed)) * decay, h)
        })
        .collect();
    let seen: u64 = e.hosts.iter().map(|h| h.seen_on.max(1)).sum::<u64>().max(e.pages_total).max(1);
    let host_value =
        (rated.iter().map(|(v, h)| v * h.seen_on.max(1) as f64).sum::<f64>() / seen as f64).clamp(0.0, 1.0);
    if let Some((_, h)) = rated.iter().max_by(|a, b| a.0.total_cmp(&b.0)) {
        factors.push(factor(
            "host",
            host_value,
            w.host,
            format!(
                "{}: {} of {} page(s) carry listed material ({} listed, {} confirmed image(s)); {:.0}% of \
                 this image's pages are on such hosts",
                h.host,
                h.pages_with_listed,
                h.pages,
                h.listed,
                h.confirmed,
                100.0 * rated.iter().map(|(_, h)| h.seen_on.max(1)).sum::<u64>() as f64 / seen as f64
            ),
        ));
    }
    let circumstances = 1.0 - (1.0 - around) * (1.0 - w.host * host_value);
    let score = (1.0 - (1.0 - reference) * (1.0 - circumstances)).clamp(0.0, 1.0);
    Scored { score, factors }
}

#[cfg(test)]
mod tests;
