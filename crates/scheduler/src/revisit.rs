//! What earlier runs of a recurring scan teach the next one: look first
//! where listed material was found, spend less where none ever was.
//!
//! Pages where listed or confirmed material was seen become the first seeds
//! (so they are visited first, and the full depth is explored from them);
//! a host where no earlier run found any gets half the pages it had in the
//! last run (at least 5). Embedded and cluster mode share this.

use std::collections::{BTreeMap, BTreeSet};

use hashscan_frontier::Scope;
use hashscan_store::{ScanStore, StoreError};
use url::Url;

use crate::ScanPlan;

/// Hotspot pages taken as first seeds, at most.
pub const MAX_HOT_SEEDS: usize = 500;

/// What [`learn`] changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Learned {
    /// Pages with listed material put first among the seeds.
    pub hot_seeds: usize,
    /// Hosts given a smaller page budget.
    pub capped_hosts: usize,
}

/// Adjusts `plan` for the run after `runs` (earlier run ids, oldest first).
pub async fn learn(store: &dyn ScanStore, runs: &[String], plan: &mut ScanPlan) -> Result<Learned, StoreError> {
    let scope = Scope::new(plan.scope, &plan.seeds).with_lists(plan.allow_domains.clone(), plan.deny_domains.clone());
    let hot: Vec<Url> = store
        .hotspot_pages(MAX_HOT_SEEDS)
        .await?
        .iter()
        .filter_map(|p| Url::parse(p).ok())
        .filter(|u| scope.allows(u))
        .collect();
    let mut seeds = hot.clone();
    for s in &plan.seeds {
        if !seeds.contains(s) {
            seeds.push(s.clone());
        }
    }
    plan.seeds = seeds;
    let mut ever_listed = BTreeSet::new();
    let mut last_pages = BTreeMap::new();
    for (k, run) in runs.iter().enumerate() {
        for f in store.host_findings(run).await? {
            if f.listed_pages > 0 {
                ever_listed.insert(f.host.clone());
            }
            if k + 1 == runs.len() {
                last_pages.insert(f.host, f.pages);
            }
        }
    }
    for (host, pages) in last_pages {
        if !ever_listed.contains(&host) {
            plan.host_page_caps.insert(host, pages.div_ceil(2).max(5));
        }
    }
    Ok(Learned { hot_seeds: hot.len(), capped_hosts: plan.host_page_caps.len() })
}
