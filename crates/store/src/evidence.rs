//! The circumstances of an image, read back for its risk score.
//!
//! Nothing here is stored twice: the circumstances are the joins of the
//! sightings (edges and image records), the reference set's value per
//! content and the analysts' decisions on cases. Reading them is therefore
//! exact and independent of the order in which messages arrived; lists are
//! capped (the most telling first) while counts stay exact.

use async_trait::async_trait;
use hashscan_pdq::PdqHash;
pub use hashscan_score::{Decision, HostEvidence, PageEvidence};
use rusqlite::{params, Connection, OptionalExtension};

use crate::{Reason, SqliteStore, StoreError};

/// Other images on a page count as evidence when the reference set lists
/// them (exactly or near) or an analyst confirmed them, and an analyst has
/// not found them benign. `c` is the content, `k` its case.
pub(crate) const LISTED: &str = "((c.ref_score > 0 OR k.status = 'confirmed') AND k.status IS NOT 'not_abuse')";

/// At most this many pages with listed material are described one by one.
pub const MAX_LISTED_PAGES: usize = 200;
/// At most this many hosts of an image's pages are looked at.
pub const MAX_HOSTS: usize = 20;

/// What the store knows about one content that bears on its risk. Page
/// domains are left empty: the caller knows the public-suffix rules.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RawEvidence {
    /// The reference set's value for the content itself.
    pub reference: f64,
    /// An ignore list holds it.
    pub ignored: bool,
    /// The analyst's decision on its case, if any.
    pub decision: Option<Decision>,
    /// Its PDQ hash, for the distance to confirmed images.
    pub pdq: Option<PdqHash>,
    /// Distinct pages where it was seen (exact).
    pub pages_total: u64,
    /// Pages with listed material among the other images: exact for the
    /// first 4,000 pages of a content (past them only `pages_total` grows,
    /// which only lowers the ubiquity of a picture shown everywhere).
    pub pages_with_listed: u64,
    /// Those pages, most listed share first, at most [`MAX_LISTED_PAGES`].
    pub listed_pages: Vec<PageEvidence>,
    /// Origins (`scheme://host:port`) of its pages with how many of its
    /// pages each has, at most [`MAX_HOSTS`] origins.
    pub origins: Vec<(String, u64)>,
}

impl RawEvidence {
    /// Takes each page's (URL, other images, listed among them) and keeps
    /// the pages with listed material, most listed share first, at most
    /// [`MAX_LISTED_PAGES`]: one rule for every store.
    pub fn set_pages(&mut self, pages: impl IntoIterator<Item = (String, u64, u64)>) {
        for (url, others, listed) in pages {
            if listed > 0 {
                self.pages_with_listed += 1;
                self.listed_pages.push(PageEvidence { url, domain: String::new(), others, listed });
            }
        }
        self.listed_pages.sort_by(|a, b| b.share().total_cmp(&a.share()).then_with(|| a.url.cmp(&b.url)));
        self.listed_pages.truncate(MAX_LISTED_PAGES);
    }
}

/// Reads circumstances and writes risk scores. Every store that holds
/// sightings implements it, so scoring works the same on each.
#[async_trait]
pub trait EvidenceStore: Send + Sync {
    /// The evidence about `blake3`, or `None` when it was never hashed.
    async fn evidence(&self, blake3: [u8; 32]) -> Result<Option<RawEvidence>, StoreError>;
    /// What was found on the pages of one origin (`scheme://host:port`).
    async fn host_evidence(&self, origin: &str) -> Result<HostEvidence, StoreError>;
    /// Contents seen on the same pages as `blake3` (itself excluded), at most `limit`.
    async fn neighbours(&self, blake3: [u8; 32], limit: usize) -> Result<Vec<[u8; 32]>, StoreError>;
    /// Contents shown on `page_url`, at most `limit`.
    async fn contents_on_page(&self, page_url: &str, limit: usize) -> Result<Vec<[u8; 32]>, StoreError>;
    /// Contents shown on pages of one origin (`scheme://host:port`), at most `limit`.
    async fn contents_on_origin(&self, origin: &str, limit: usize) -> Result<Vec<[u8; 32]>, StoreError>;
    /// Every content a scan saw.
    async fn scan_contents(&self, scan: &str) -> Result<Vec<[u8; 32]>, StoreError>;
    /// PDQ hashes of the images analysts confirmed.
    async fn confirmed_pdqs(&self) -> Result<Vec<PdqHash>, StoreError>;
    /// Stores a content's risk score and its factors.
    async fn record_score(&self, blake3: [u8; 32], score: f64, factors: Vec<Reason>) -> Result<(), StoreError>;
}

/// `scheme://authority` of a URL, or `None` for a URL without one.
pub fn origin_of(url: &str) -> Option<&str> {
    let start = url.find("://")? + 3;
    let end = url[start..].find(['/', '?', '#']).map_or(url.len(), |i| start + i);
    (end > start).then(|| &url[..end])
}

fn gather(c: &Connection, b: &[u8; 32]) -> Result<Option<RawEvidence>, StoreError> {
    let Some((reference, ignored, pdq)) = c
        .prepare_cached("SELECT ref_score, ignored, pdq FROM contents WHERE blake3 = ?1")?
        .query_row(params![&b[..]], |r| {
            Ok((r.get::<_, f64>(0)?, r.get::<_, bool>(1)?, r.get::<_, Option<Vec<u8>>>(2)?))
        })
        .optional()?
    else {
        return Ok(None);
    };
    let decision = c
        .prepare_cached("SELECT status FROM cases WHERE blake3 = ?1")?
        .query_row(params![&b[..]], |r| r.get::<_, String>(0))
        .optional()?
        .and_then(|s| Decision::of_case_status(&s));
    let mut ev = RawEvidence {
        reference,
        ignored,
        decision,
        pdq: pdq.and_then(|p| <[u8; 32]>::try_from(p).ok()).map(PdqHash::from_bytes),
        ..RawEvidence::default()
    };
    // Every page of the content: counted in full, origins kept up to a cap.
    let mut pages = c.prepare_cached(
        "SELECT DISTINCT e.page_url FROM images i JOIN edges e ON e.scan = i.scan AND e.image_id = i.image_id
         WHERE i.blake3 = ?1",
    )?;
    let mut page_urls = Vec::new();
    let mut rows = pages.query(params![&b[..]])?;
    while let Some(r) = rows.next()? {
        let url: String = r.get(0)?;
        ev.pages_total += 1;
        if let Some(o) = origin_of(&url) {
            if let Some((_, n)) = ev.origins.iter_mut().find(|(x, _)| x == o) {
                *n += 1;
            } else if ev.origins.len() < MAX_HOSTS {
                ev.origins.push((o.to_string(), 1));
            }
        }
        page_urls.push(url);
        // Past this many pages only the count goes on; the details below
        // come from the first pages (a content on every page of the web
        // is told apart by its count, not its details).
        if page_urls.len() >= 20 * MAX_LISTED_PAGES {
            while rows.next()?.is_some() {
                ev.pages_total += 1;
            }
            break;
        }
    }
    let mut page = c.prepare_cached(&format!(
        "SELECT count(DISTINCT i.blake3), count(DISTINCT CASE WHEN {LISTED} THEN i.blake3 END)
         FROM edges e JOIN images i ON i.scan = e.scan AND i.image_id = e.image_id
              JOIN contents c ON c.blake3 = i.blake3 LEFT JOIN cases k ON k.blake3 = i.blake3
         WHERE e.page_url = ?1 AND i.blake3 != ?2"
    ))?;
    let mut pages = Vec::with_capacity(page_urls.len());
    for url in page_urls {
        let (others, listed) =
            page.query_row(params![url, &b[..]], |r| Ok((r.get::<_, i64>(0)? as u64, r.get::<_, i64>(1)? as u64)))?;
        pages.push((url, others, listed));
    }
    ev.set_pages(pages);
    Ok(Some(ev))
}

fn host(c: &Connection, origin: &str) -> Result<HostEvidence, StoreError> {
    // Every page URL of the origin sorts between "origin/" and "origin0".
    let (lo, hi) = (format!("{origin}/"), format!("{origin}0"));
    let mut st = c.prepare_cached(&format!(
        "SELECT count(DISTINCT e.page_url),
                count(DISTINCT CASE WHEN {LISTED} THEN e.page_url END),
                count(DISTINCT CASE WHEN c.ref_score > 0 AND k.status IS NOT 'not_abuse' THEN i.blake3 END),
                count(DISTINCT CASE WHEN k.status = 'confirmed' THEN i.blake3 END),
                max(CASE WHEN {LISTED} THEN i.fetched_at END)
         FROM edges e JOIN images i ON i.scan = e.scan AND i.image_id = e.image_id
              JOIN contents c ON c.blake3 = i.blake3 LEFT JOIN cases k ON k.blake3 = i.blake3
         WHERE e.page_url >= ?1 AND e.page_url < ?2"
    ))?;
    let name = origin.split_once("://").map_or(origin, |(_, rest)| rest);
    let name = name.rsplit_once(':').filter(|(_, port)| port.bytes().all(|b| b.is_ascii_digit())).map_or(name, |x| x.0);
    Ok(st.query_row(params![lo, hi], |r| {
        Ok(HostEvidence {
            host: name.to_string(),
            seen_on: 0,
            pages: r.get::<_, i64>(0)? as u64,
            pages_with_listed: r.get::<_, i64>(1)? as u64,
            listed: r.get::<_, i64>(2)? as u64,
            confirmed: r.get::<_, i64>(3)? as u64,
            last_listed_ms: r.get(4)?,
        })
    })?)
}

fn blake3_rows(st: &mut rusqlite::CachedStatement<'_>, p: impl rusqlite::Params) -> Result<Vec<[u8; 32]>, StoreError> {
    let rows = st.query_map(p, |r| r.get::<_, Vec<u8>>(0))?;
    let mut out = Vec::new();
    for row in rows {
        let v = row?;
        let key = <[u8; 32]>::try_from(v.as_slice()).map_err(|_| StoreError::Corrupt {
            table: "images",
            column: "blake3",
            detail: format!("{} bytes, not 32", v.len()),
        })?;
        out.push(key);
    }
    Ok(out)
}

#[async_trait]
impl EvidenceStore for SqliteStore {
    async fn evidence(&self, blake3: [u8; 32]) -> Result<Option<RawEvidence>, StoreError> {
        self.run(move |c| gather(c, &blake3)).await
    }

    async fn host_evidence(&self, origin: &str) -> Result<HostEvidence, StoreError> {
        let origin = origin.to_string();
        self.run(move |c| host(c, &origin)).await
    }

    async fn neighbours(&self, blake3: [u8; 32], limit: usize) -> Result<Vec<[u8; 32]>, StoreError> {
        self.run(move |c| {
            let mut st = c.prepare_cached(
                "SELECT DISTINCT i2.blake3
                 FROM images i JOIN edges e ON e.scan = i.scan AND e.image_id = i.image_id
                      JOIN edges e2 ON e2.page_url = e.page_url
                      JOIN images i2 ON i2.scan = e2.scan AND i2.image_id = e2.image_id
                 WHERE i.blake3 = ?1 AND i2.blake3 != ?1 LIMIT ?2",
            )?;
            blake3_rows(&mut st, params![&blake3[..], limit as i64])
        })
        .await
    }

    async fn contents_on_page(&self, page_url: &str, limit: usize) -> Result<Vec<[u8; 32]>, StoreError> {
        let page_url = page_url.to_string();
        self.run(move |c| {
            let mut st = c.prepare_cached(
                "SELECT DISTINCT i.blake3 FROM edges e JOIN images i ON i.scan = e.scan AND i.image_id = e.image_id
                 WHERE e.page_url = ?1 LIMIT ?2",
            )?;
            blake3_rows(&mut st, params![page_url, limit as i64])
        })
        .await
    }

    async fn contents_on_origin(&self, origin: &str, limit: usize) -> Result<Vec<[u8; 32]>, StoreError> {
        let (lo, hi) = (format!("{origin}/"), format!("{origin}0"));
        self.run(move |c| {
            let mut st = c.prepare_cached(
                "SELECT DISTINCT i.blake3 FROM edges e JOIN images i ON i.scan = e.scan AND i.image_id = e.image_id
                 WHERE e.page_url >= ?1 AND e.page_url < ?2 LIMIT ?3",
            )?;
            blake3_rows(&mut st, params![lo, hi, limit as i64])
        })
        .await
    }

    async fn scan_contents(&self, scan: &str) -> Result<Vec<[u8; 32]>, StoreError> {
        let scan = scan.to_string();
        self.run(move |c| {
            let mut st = c.prepare_cached("SELECT DISTINCT blake3 FROM images WHERE scan = ?1")?;
            blake3_rows(&mut st, params![scan])
        })
        .await
    }

    async fn confirmed_pdqs(&self) -> Result<Vec<PdqHash>, StoreError> {
        self.run(move |c| {
            let mut st = c.prepare_cached(
                "SELECT c.pdq FROM cases k JOIN contents c ON c.blake3 = k.blake3
                 WHERE k.status = 'confirmed' AND c.pdq IS NOT NULL",
            )?;
            let rows = st.query_map([], |r| r.get::<_, Vec<u8>>(0))?;
            let mut out = Vec::new();
            for row in rows {
                if let Ok(b) = <[u8; 32]>::try_from(row?.as_slice()) {
                    out.push(PdqHash::from_bytes(b));
                }
            }
            Ok(out)
        })
        .await
    }

    async fn record_score(&self, blake3: [u8; 32], score: f64, factors: Vec<Reason>) -> Result<(), StoreError> {
        let factors = serde_json::to_string(&factors).map_err(|e| StoreError::Worker(e.to_string()))?;
        self.run(move |c| {
            c.prepare_cached("UPDATE contents SET score = ?2, factors = ?3 WHERE blake3 = ?1")?.execute(params![
                &blake3[..],
                score,
                factors
            ])?;
            Ok(())
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_scheme_and_authority() {
        assert_eq!(origin_of("http://www.a.test:8080/x/y?z"), Some("http://www.a.test:8080"));
        assert_eq!(origin_of("https://b.test"), Some("https://b.test"));
        assert_eq!(origin_of("https://b.test?q"), Some("https://b.test"));
        assert_eq!(origin_of("data:image/png;blake3=00"), None);
        assert_eq!(origin_of("http:///path"), None);
    }
}
