//! The evaluation web: a second generated loopback web whose ground truth
//! says, for every image content, which [`EvalClass`] it belongs to, so an
//! evaluation can measure the precision and recall of the risk score.
//!
//! The score rates images that are *not* in the reference list by the
//! circumstances where they are found. To judge it fairly the web must look
//! like a real one, not like one formula's favourite input: sites of linked
//! pages, some of them "bad" (carrying listed material), most of them benign,
//! with the hard cases a score meets in practice.
//!
//! | class | where it lives |
//! |---|---|
//! | [`Listed`](EvalClass::Listed) | bad sites' gallery pages; its hashes (MD5, SHA-256, PDQ) are the reference file |
//! | [`Variant`](EvalClass::Variant) | re-encoded, resized, cropped or watermarked copies of listed pictures, mostly on bad sites, some on a benign page |
//! | [`Cooccurring`](EvalClass::Cooccurring) | unlisted, on 1–4 bad pages next to listed material, some on two bad sites: what the score must find |
//! | [`Benign`](EvalClass::Benign) | benign sites' pictures, and bad sites' about/rules/contact pages that carry no listed material |
//! | [`LoneNeighbour`](EvalClass::LoneNeighbour) | benign pictures on 2–5 benign sites that also appear once next to listed material |
//! | [`Popular`](EvalClass::Popular) | logos and banners of `cdn.popular.test` on most pages of every site |
//!
//! Hosts: per bad site `www.badN.test` and `img.badN.test`, per benign site
//! `www.goodN.test` (some also `img.goodN.test`), and `cdn.popular.test`,
//! each on its own address after [`EvalSpec::ip_base`] (127.78.0.0 by
//! default, apart from the main web's 127.77.0.x and the traps' 127.77.1.x).
//! Every site's home page is a seed; pages form a tree at most
//! [`MAX_TREE_DEPTH`] deep under their home, plus cross links, so a
//! domain-scoped scan from the seeds reaches every page.
//!
//! Decisions:
//! * Every picture is a benign generated image ([`images::draw`]). Drawn
//!   pictures are more alike than photographs, so an unlisted picture whose
//!   PDQ hash lands within [`MIN_UNLISTED_DISTANCE`] of a listed one is
//!   redrawn: otherwise the product would near-match it and the truth would
//!   be wrong about its class.
//! * Variants are kept whatever their distance to the original, so the
//!   truth measures near-match recall instead of assuming it.
//! * "Listed material" on a page means a [`Listed`](EvalClass::Listed)
//!   content; a page showing only a variant is `near_listed` in
//!   [`EvalPage`]. Lone neighbours are never placed on near-listed pages,
//!   so they sit next to listed material exactly once either way.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use hashscan_decode::{DecodeLimits, ImageHasher, Mode};
use hashscan_hash::{parse_hex, CryptoAlgo, Digests};
use image::imageops::{self, FilterType};
use image::{Rgb, RgbImage};
use rand::seq::{IndexedRandom, SliceRandom};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::images::{self, Format};
use crate::server::{AccessEntry, Lookup, ServeError, Serving};
use crate::web::{host_of, path_of, registrable, HostInfo, Resource, Resources};

/// Pages sit at most this many links below their site's home page (a
/// seed), well inside the depth limit an evaluation scan uses.
pub const MAX_TREE_DEPTH: u32 = 5;

/// An unlisted picture is redrawn when its PDQ hash is this close to a
/// listed one or closer: far beyond the default near-match radius (31), so
/// an evaluation can sweep the radius without unlisted pictures turning
/// into near matches by accident.
pub const MIN_UNLISTED_DISTANCE: u32 = 48;

/// The ways a variant of a listed picture is made, as a real uploader would.
pub const VARIANT_KINDS: [&str; 4] = ["reencode", "resize", "crop", "watermark"];

/// What to generate; the same spec and port always give the same web,
/// byte for byte. Fields missing from a serialized spec take their default.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct EvalSpec {
    /// Seed of every random choice.
    pub seed: u64,
    /// Sites carrying listed material (`www.badN.test` + `img.badN.test`); at least 1.
    pub bad_sites: usize,
    /// Sites without listed material (`www.goodN.test`, some with `img.goodN.test`); at least 2.
    pub benign_sites: usize,
    /// Pages per site, home included; at least 3.
    pub pages_per_site: usize,
    /// Hosts get consecutive addresses after this one (a /16 inside 127/8).
    pub ip_base: Ipv4Addr,
    /// Listed pictures per bad site.
    pub listed_per_site: usize,
    /// Unlisted pictures per bad site placed next to listed material.
    pub cooccurring_per_site: usize,
    /// Variants of listed pictures per bad site.
    pub variants_per_site: usize,
    /// Benign pictures that also appear once next to listed material.
    pub lone_neighbours: usize,
    /// Pictures on `cdn.popular.test` shown on most pages of every site.
    pub popular: usize,
}

impl Default for EvalSpec {
    /// 16 sites of 12 pages: 192 pages and about 600 image URLs, which a
    /// scan at a high per-host rate finishes in seconds.
    fn default() -> Self {
        Self {
            seed: 1,
            bad_sites: 6,
            benign_sites: 10,
            pages_per_site: 12,
            ip_base: Ipv4Addr::new(127, 78, 0, 0),
            listed_per_site: 8,
            cooccurring_per_site: 8,
            variants_per_site: 4,
            lone_neighbours: 15,
            popular: 4,
        }
    }
}

impl EvalSpec {
    /// The range every evaluation-web address falls in: what a scan must allow.
    pub fn allow_net(&self) -> String {
        let o = self.ip_base.octets();
        format!("{}.{}.0.0/16", o[0], o[1])
    }

    /// The hosts this spec generates, with their addresses: known before
    /// the port is, so the server can bind them first.
    pub fn hosts(&self) -> Vec<HostInfo> {
        host_plan(&self.normalized()).hosts
    }

    /// The spec with its minimums applied: what is really generated.
    fn normalized(&self) -> EvalSpec {
        EvalSpec {
            bad_sites: self.bad_sites.max(1),
            benign_sites: self.benign_sites.max(2),
            pages_per_site: self.pages_per_site.max(3),
            listed_per_site: self.listed_per_site.max(1),
            ..self.clone()
        }
    }
}

/// The ground-truth class of an image content: what the score should say
/// about it, and why it is there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EvalClass {
    /// In the reference file: an exact hit, not the score's business.
    Listed,
    /// A modified copy of a listed picture: a near match at a fitting radius.
    Variant,
    /// Unlisted, found where listed material lives: what the score must find.
    Cooccurring,
    /// Never next to listed material: the score must leave it alone.
    Benign,
    /// Hard negative: once next to listed material, otherwise on benign sites.
    LoneNeighbour,
    /// Hard negative: on most pages of every site, bad or benign.
    Popular,
}

impl EvalClass {
    /// Every class, in a fixed order (for tables and loops).
    pub const ALL: [EvalClass; 6] = [
        EvalClass::Listed,
        EvalClass::Variant,
        EvalClass::Cooccurring,
        EvalClass::Benign,
        EvalClass::LoneNeighbour,
        EvalClass::Popular,
    ];

    /// The snake_case name, as serialized.
    pub fn name(self) -> &'static str {
        match self {
            EvalClass::Listed => "listed",
            EvalClass::Variant => "variant",
            EvalClass::Cooccurring => "cooccurring",
            EvalClass::Benign => "benign",
            EvalClass::LoneNeighbour => "lone_neighbour",
            EvalClass::Popular => "popular",
        }
    }

    /// Whether a scan should make it a case (score above the review
    /// threshold): listed, variant and co-occurring contents are the
    /// positives of an evaluation, the rest its negatives.
    pub fn is_positive(self) -> bool {
        matches!(self, EvalClass::Listed | EvalClass::Variant | EvalClass::Cooccurring)
    }
}

/// One distinct image content a full scan from the seeds finds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EvalContent {
    /// BLAKE3 (hex), as hashscan prints it: the key an evaluation joins on.
    pub blake3: String,
    /// Its class.
    pub class: EvalClass,
    /// Its PDQ hash (hex) as `hashscan-decode` computes it in exact mode.
    pub pdq: Option<String>,
    /// Its PDQ quality (near matching ignores images below the list's minimum).
    pub pdq_quality: Option<u8>,
    /// For a variant: BLAKE3 (hex) of the listed original.
    pub variant_of: Option<String>,
    /// For a variant: `reencode`, `resize`, `crop` or `watermark`.
    pub variant_kind: Option<String>,
    /// For a variant: what exactly was done (e.g. `crop left 1.2% …`).
    pub variant_detail: Option<String>,
    /// For a variant: PDQ Hamming distance to the original.
    pub variant_distance: Option<u32>,
    /// Encoded format.
    pub format: Format,
    /// Pixel width.
    pub width: u32,
    /// Pixel height.
    pub height: u32,
    /// Every URL serving it that a page uses (sorted).
    pub urls: Vec<String>,
    /// Every page that shows or links it (sorted).
    pub pages: Vec<String>,
}

/// One page of the evaluation web: what a score's circumstances are made of.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EvalPage {
    /// Its URL, as the crawler records it.
    pub url: String,
    /// Its site's registrable domain, e.g. `bad0.test`.
    pub site: String,
    /// Whether the site carries listed material.
    pub bad_site: bool,
    /// Link distance from the nearest seed.
    pub depth: u32,
    /// Shows a listed content.
    pub listed: bool,
    /// Shows a variant of a listed content.
    pub near_listed: bool,
    /// BLAKE3 (hex) of every content it shows or links.
    pub contents: Vec<String>,
}

/// The ground truth of an evaluation web.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EvalTruth {
    /// The spec it was generated from (minimums applied).
    pub spec: EvalSpec,
    /// The port every host listens on.
    pub port: u16,
    /// Start URLs: every site's home page.
    pub seeds: Vec<String>,
    /// Every host and its address.
    pub hosts: Vec<HostInfo>,
    /// Every page, in generation order; all reachable from the seeds.
    pub pages: Vec<EvalPage>,
    /// Every content a full scan finds, with its class.
    pub contents: Vec<EvalContent>,
}

impl EvalTruth {
    /// `--resolve` values pinning every host to its address.
    pub fn resolve_flags(&self) -> Vec<String> {
        self.hosts.iter().map(|h| format!("{}={}", h.name, h.ip)).collect()
    }

    /// The class of the content with this BLAKE3 (hex, any case), if the web serves it.
    pub fn class_of(&self, blake3_hex: &str) -> Option<EvalClass> {
        self.content(blake3_hex).map(|c| c.class)
    }

    /// The content with this BLAKE3 (hex, any case).
    pub fn content(&self, blake3_hex: &str) -> Option<&EvalContent> {
        self.contents.iter().find(|c| c.blake3.eq_ignore_ascii_case(blake3_hex))
    }

    /// How many contents each class has (every class present, maybe 0).
    pub fn counts(&self) -> BTreeMap<EvalClass, usize> {
        let mut counts: BTreeMap<EvalClass, usize> = EvalClass::ALL.iter().map(|c| (*c, 0)).collect();
        for c in &self.contents {
            *counts.entry(c.class).or_default() += 1;
        }
        counts
    }

    /// Distinct image URLs a full scan fetches.
    pub fn image_urls(&self) -> usize {
        self.contents.iter().map(|c| c.urls.len()).sum()
    }
}

/// What the shared server serves for an evaluation web.
struct EvalServed {
    resources: Resources,
    truth: EvalTruth,
    reference_csv: String,
}

impl Lookup for EvalServed {
    fn lookup(&self, host: &str, path: &str) -> Option<&Resource> {
        self.resources.get(host, path)
    }
}

/// An evaluation web served on loopback like [`crate::TestWeb`]: one 127.x
/// address per host, one port, an access log. Dropping it stops the servers.
pub struct EvalWeb {
    serving: Serving<EvalServed>,
}

impl EvalWeb {
    /// Generates the web for `spec` and serves it; `port` 0 picks a port
    /// free on every host address.
    pub async fn start(spec: EvalSpec, port: u16) -> Result<Self, ServeError> {
        let addrs: Vec<IpAddr> = spec.hosts().iter().map(|h| h.ip).collect();
        let serving = Serving::start(&addrs, port, |port| {
            let (resources, truth, reference_csv) = generate_eval(&spec, port);
            EvalServed { resources, truth, reference_csv }
        })
        .await?;
        Ok(Self { serving })
    }

    /// The ground truth, with this server's port in every URL.
    pub fn truth(&self) -> &EvalTruth {
        &self.serving.web().truth
    }

    /// The reference file (CSV: `id,label,md5,sha256,pdq`): every listed
    /// content plus decoys that match nothing.
    pub fn reference_csv(&self) -> &str {
        &self.serving.web().reference_csv
    }

    /// The port every host listens on.
    pub fn port(&self) -> u16 {
        self.truth().port
    }

    /// The CIDR a scan must allow to reach this web.
    pub fn allow_net(&self) -> String {
        self.truth().spec.allow_net()
    }

    /// Every request so far, in arrival order.
    pub fn access_log(&self) -> Vec<AccessEntry> {
        self.serving.access_log()
    }

    /// Stops serving and waits for the servers to finish.
    pub async fn shutdown(self) {
        self.serving.shutdown().await
    }
}

/// One site's hosts.
struct SitePlan {
    bad: bool,
    www: String,
    img: Option<String>,
}

struct HostPlan {
    sites: Vec<SitePlan>,
    cdn: String,
    hosts: Vec<HostInfo>,
}

/// Bad sites first, then benign sites, then the CDN, each host on the next
/// address after `ip_base`. Which benign sites have an image host is drawn
/// from the seed on a stream of its own, so it is known before the port.
fn host_plan(spec: &EvalSpec) -> HostPlan {
    let mut rng = ChaCha8Rng::seed_from_u64(spec.seed ^ 0x686f_7374_706c_616e);
    let mut hosts = Vec::new();
    let mut add_host = |name: String| {
        let o = spec.ip_base.octets();
        let n = hosts.len() as u16 + 1;
        let ip = IpAddr::V4(Ipv4Addr::new(o[0], o[1], (n >> 8) as u8, n as u8));
        hosts.push(HostInfo { name: name.clone(), ip });
        name
    };
    let mut sites = Vec::new();
    for i in 0..spec.bad_sites {
        let www = add_host(format!("www.bad{i}.test"));
        let img = add_host(format!("img.bad{i}.test"));
        sites.push(SitePlan { bad: true, www, img: Some(img) });
    }
    for i in 0..spec.benign_sites {
        let www = add_host(format!("www.good{i}.test"));
        let has_img = match i {
            0 => true,
            1 => false,
            _ => rng.random_bool(0.5),
        };
        let img = has_img.then(|| add_host(format!("img.good{i}.test")));
        sites.push(SitePlan { bad: false, www, img });
    }
    let cdn = add_host("cdn.popular.test".to_string());
    HostPlan { sites, cdn, hosts }
}

/// What a page is for; decides its path and what it may show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PageKind {
    Home,
    /// A bad site's page meant to carry listed material.
    Gallery,
    /// About, rules, contact…: no listed material.
    Plain,
    /// A benign site's article, product or photo page.
    Article,
}

/// How a page refers to an image.
enum Use {
    Img(String),
    /// A thumbnail linking to its full-size picture.
    Thumb {
        thumb: String,
        full: String,
    },
}

struct PageDef {
    url: String,
    site: usize,
    kind: PageKind,
    title: String,
    links: Vec<String>,
    uses: Vec<Use>,
    /// Popular pictures in header and footer.
    chrome: Vec<String>,
    contents: BTreeSet<usize>,
}

struct Content {
    body: Arc<[u8]>,
    digests: Digests,
    format: Format,
    width: u32,
    height: u32,
    class: EvalClass,
    pdq: Option<([u8; 32], u8)>,
    variant_of: Option<usize>,
    variant_kind: Option<&'static str>,
    variant_detail: Option<String>,
    variant_distance: Option<u32>,
}

struct SiteState {
    plan: SitePlan,
    pages: Vec<usize>,
    /// Bad sites: pages meant to carry listed material.
    listed_pages: Vec<usize>,
    /// Bad sites: pages without listed material.
    plain_pages: Vec<usize>,
}

struct Gen {
    rng: ChaCha8Rng,
    port: u16,
    sites: Vec<SiteState>,
    cdn: String,
    pages: Vec<PageDef>,
    contents: Vec<Content>,
    resources: Resources,
    url_content: HashMap<String, usize>,
    seen: HashSet<[u8; 32]>,
    listed_pdq: Vec<[u8; 32]>,
    hasher: ImageHasher,
    /// Pages showing a variant: lone neighbours keep away from them.
    near_listed: HashSet<usize>,
}

/// Sizes of photo-like pictures (every class but popular).
const PHOTO_SIZES: [(u32, u32); 9] =
    [(320, 240), (240, 320), (400, 300), (300, 400), (480, 320), (256, 256), (360, 240), (200, 150), (150, 200)];
/// Small pictures only benign pages have (icons, avatars).
const SMALL_SIZES: [(u32, u32); 4] = [(64, 64), (96, 96), (128, 128), (120, 90)];
/// Logos, badges and banners of the popular CDN.
const POPULAR_SIZES: [(u32, u32); 5] = [(160, 64), (468, 64), (88, 88), (120, 120), (300, 100)];

fn hamming(a: &[u8; 32], b: &[u8; 32]) -> u32 {
    a.iter().zip(b).map(|(x, y)| (x ^ y).count_ones()).sum()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// Picks from `weights` (value, weight) pairs.
fn weighted(rng: &mut ChaCha8Rng, weights: &[(usize, u32)]) -> usize {
    let total: u32 = weights.iter().map(|w| w.1).sum();
    let mut pick = rng.random_range(0..total.max(1));
    for (value, weight) in weights {
        if pick < *weight {
            return *value;
        }
        pick -= weight;
    }
    weights.last().map_or(1, |w| w.0)
}

impl Gen {
    fn url(&self, host: &str, path: &str) -> String {
        format!("http://{host}:{}{path}", self.port)
    }

    fn pdq_of(&mut self, bytes: &[u8]) -> Option<([u8; 32], u8)> {
        let img = self.hasher.pdq(bytes).ok()?;
        let hash = parse_hex::<32>(&img.pdq.hash.to_hex()).ok()?;
        Some((hash, img.pdq.quality))
    }

    fn near_listed_hash(&self, pdq: &Option<([u8; 32], u8)>) -> bool {
        pdq.as_ref().is_some_and(|(h, _)| self.listed_pdq.iter().any(|l| hamming(l, h) < MIN_UNLISTED_DISTANCE))
    }

    fn push(&mut self, content: Content) -> usize {
        self.seen.insert(content.digests.blake3);
        self.contents.push(content);
        self.contents.len() - 1
    }

    /// Draws a new picture of `class`: listed pictures must hash with a
    /// useful quality, unlisted ones must stay clear of every listed hash.
    fn new_picture(&mut self, class: EvalClass, sizes: &[(u32, u32)], jpeg_share: f64) -> usize {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let seed: u64 = self.rng.random();
            let (width, height) = sizes.choose(&mut self.rng).copied().unwrap_or((256, 256));
            let format = if self.rng.random_bool(jpeg_share) { Format::Jpeg } else { Format::Png };
            let bytes = images::encode(&images::draw(seed, width, height), format);
            let digests = Digests::of(&bytes);
            let pdq = self.pdq_of(&bytes);
            let acceptable = !self.seen.contains(&digests.blake3)
                && match class {
                    EvalClass::Listed => pdq.is_some_and(|(_, q)| q >= 70),
                    _ => !self.near_listed_hash(&pdq),
                };
            if acceptable || attempt >= 64 {
                if class == EvalClass::Listed {
                    if let Some((h, _)) = pdq {
                        self.listed_pdq.push(h);
                    }
                }
                return self.push(Content {
                    body: bytes.into(),
                    digests,
                    format,
                    width,
                    height,
                    class,
                    pdq,
                    variant_of: None,
                    variant_kind: None,
                    variant_detail: None,
                    variant_distance: None,
                });
            }
        }
    }

    /// Serves `content` on `host` under `dir` with a random file name.
    fn serve(&mut self, content: usize, host: &str, dir: &str) -> String {
        let c = &self.contents[content];
        let (body, format) = (c.body.clone(), c.format);
        loop {
            let name: u32 = self.rng.random();
            let path = format!("{dir}/{name:08x}.{}", format.extension());
            let url = self.url(host, &path);
            if self.url_content.contains_key(&url) {
                continue;
            }
            self.resources.insert(
                (host.to_string(), path),
                Resource::Bytes { body: body.clone(), content_type: format.media_type() },
            );
            self.url_content.insert(url.clone(), content);
            return url;
        }
    }

    /// Shows `url` on `page`, unless the page already shows that content.
    fn place(&mut self, page: usize, url: &str) -> bool {
        let Some(&content) = self.url_content.get(url) else { return false };
        if !self.pages[page].contents.insert(content) {
            return false;
        }
        self.pages[page].uses.push(Use::Img(url.to_string()));
        true
    }

    /// Shows `thumb` on `page` as a link to `full`.
    fn place_thumb(&mut self, page: usize, thumb: &str, full: &str) -> bool {
        let (Some(&t), Some(&f)) = (self.url_content.get(thumb), self.url_content.get(full)) else { return false };
        if self.pages[page].contents.contains(&t) {
            return false;
        }
        self.pages[page].contents.insert(t);
        self.pages[page].contents.insert(f);
        self.pages[page].uses.push(Use::Thumb { thumb: thumb.to_string(), full: full.to_string() });
        true
    }

    /// The host a site serves its pictures from.
    fn picture_host(&mut self, site: usize, img_share: f64) -> (String, &'static str) {
        let plan = &self.sites[site].plan;
        match &plan.img {
            Some(img) if self.rng.random_bool(img_share) => (img.clone(), if plan.bad { "/i" } else { "/photos" }),
            _ => (plan.www.clone(), if plan.bad { "/media" } else { "/images" }),
        }
    }

    /// A URL of `content` for use on `site`: hotlinking `url`, or a copy
    /// re-hosted on the site (the way re-posted pictures spread).
    fn url_for_site(&mut self, content: usize, url: &str, site: usize) -> String {
        if self.rng.random_bool(0.5) {
            url.to_string()
        } else {
            let (host, dir) = self.picture_host(site, 0.8);
            self.serve(content, &host, dir)
        }
    }

    fn bad_sites(&self) -> Vec<usize> {
        (0..self.sites.len()).filter(|s| self.sites[*s].plan.bad).collect()
    }

    fn benign_sites(&self) -> Vec<usize> {
        (0..self.sites.len()).filter(|s| !self.sites[*s].plan.bad).collect()
    }
}

/// Builds every site's pages: a tree under the home page plus cross links
/// inside the site and a few between sites.
fn build_pages(g: &mut Gen, spec: &EvalSpec) {
    let n = spec.pages_per_site;
    for s in 0..g.sites.len() {
        let bad = g.sites[s].plan.bad;
        let www = g.sites[s].plan.www.clone();
        // Bad sites: 2–4 plain pages (of 12), the rest galleries; the home
        // page shows listed material half the time.
        let mut kinds = vec![PageKind::Home];
        if bad {
            let plain = ((n as f64 * g.rng.random_range(0.15..0.35)).round() as usize).clamp(1, n - 2);
            let mut rest: Vec<PageKind> =
                (1..n).map(|j| if j <= plain { PageKind::Plain } else { PageKind::Gallery }).collect();
            rest.shuffle(&mut g.rng);
            kinds.extend(rest);
        } else {
            kinds.extend((1..n).map(|_| PageKind::Article));
        }
        let home_listed = bad && g.rng.random_bool(0.5);
        let sections: &[&str] = if bad {
            &["gallery", "album", "thread", "set"]
        } else {
            &["post", "article", "shop", "recipes", "photos"]
        };
        let plain_names = ["about", "rules", "contact", "faq", "help", "terms"];
        let mut plain_used = 0;
        let mut depth = vec![0u32; n];
        let first = g.pages.len();
        for (j, kind) in kinds.iter().enumerate() {
            let path = match kind {
                PageKind::Home => "/".to_string(),
                PageKind::Plain => {
                    plain_used += 1;
                    match plain_names.get(plain_used - 1) {
                        Some(name) => format!("/{name}.html"),
                        None => format!("/info/{j}.html"),
                    }
                }
                PageKind::Gallery | PageKind::Article => {
                    let section = sections.choose(&mut g.rng).copied().unwrap_or("page");
                    format!("/{section}/{j}.html")
                }
            };
            let title = match kind {
                PageKind::Home => format!("{www} home"),
                PageKind::Plain => format!("{www} {}", path.trim_start_matches('/').trim_end_matches(".html")),
                _ => format!("{www} page {j}"),
            };
            let url = g.url(&www, &path);
            let page = g.pages.len();
            g.pages.push(PageDef {
                url,
                site: s,
                kind: *kind,
                title,
                links: Vec::new(),
                uses: Vec::new(),
                chrome: Vec::new(),
                contents: BTreeSet::new(),
            });
            g.sites[s].pages.push(page);
            match kind {
                PageKind::Gallery => g.sites[s].listed_pages.push(page),
                PageKind::Home if home_listed => g.sites[s].listed_pages.push(page),
                PageKind::Home | PageKind::Plain if bad => g.sites[s].plain_pages.push(page),
                _ => {}
            }
            // Tree: a parent among the few pages before, not too deep.
            if j > 0 {
                let candidates: Vec<usize> = (j.saturating_sub(5)..j).filter(|p| depth[*p] < MAX_TREE_DEPTH).collect();
                let parent = candidates.choose(&mut g.rng).copied().unwrap_or(0);
                depth[j] = depth[parent] + 1;
                let url = g.pages[page].url.clone();
                g.pages[first + parent].links.push(url);
                // Navigation back home.
                let home = g.pages[first].url.clone();
                g.pages[page].links.push(home);
            }
        }
        // Cross links inside the site.
        for j in 0..n {
            for _ in 0..g.rng.random_range(0..=2) {
                let t = g.rng.random_range(0..n);
                let url = g.pages[first + t].url.clone();
                g.pages[first + j].links.push(url);
            }
        }
    }
    // Between sites: bad homes link each other, some benign sites link
    // each other, and a couple of benign pages link a bad home.
    let bad = g.bad_sites();
    let good = g.benign_sites();
    for &s in &bad {
        let others: Vec<usize> = bad.iter().copied().filter(|t| *t != s).collect();
        let home = g.sites[s].pages[0];
        for _ in 0..g.rng.random_range(1..=2) {
            if let Some(&t) = others.choose(&mut g.rng) {
                let url = g.pages[g.sites[t].pages[0]].url.clone();
                g.pages[home].links.push(url);
            }
        }
        for p in g.sites[s].listed_pages.clone() {
            if g.rng.random_bool(0.15) {
                if let Some(&t) = others.choose(&mut g.rng) {
                    let target = g.sites[t].pages.choose(&mut g.rng).copied().unwrap_or(0);
                    let url = g.pages[target].url.clone();
                    g.pages[p].links.push(url);
                }
            }
        }
    }
    for &s in &good {
        if g.rng.random_bool(0.5) {
            let others: Vec<usize> = good.iter().copied().filter(|t| *t != s).collect();
            if let Some(&t) = others.choose(&mut g.rng) {
                let from = g.sites[s].pages.choose(&mut g.rng).copied().unwrap_or(0);
                let target = g.sites[t].pages.choose(&mut g.rng).copied().unwrap_or(0);
                let url = g.pages[target].url.clone();
                g.pages[from].links.push(url);
            }
        }
    }
    for _ in 0..2 {
        if let (Some(&s), Some(&t)) = (good.choose(&mut g.rng), bad.choose(&mut g.rng)) {
            let from = g.sites[s].pages.choose(&mut g.rng).copied().unwrap_or(0);
            let url = g.pages[g.sites[t].pages[0]].url.clone();
            g.pages[from].links.push(url);
        }
    }
    for p in &mut g.pages {
        let own = p.url.clone();
        let mut seen = HashSet::new();
        p.links.retain(|l| *l != own && seen.insert(l.clone()));
    }
}

/// Crops `fractions` (left, right, top, bottom) of the picture's sides off.
fn crop(img: &RgbImage, fractions: [f64; 4]) -> RgbImage {
    let (w, h) = img.dimensions();
    let px = |side: u32, f: f64| (f64::from(side) * f).round() as u32;
    let (l, r, t, b) = (px(w, fractions[0]), px(w, fractions[1]), px(h, fractions[2]), px(h, fractions[3]));
    let (cw, ch) = (w.saturating_sub(l + r).max(1), h.saturating_sub(t + b).max(1));
    imageops::crop_imm(img, l.min(w - 1), t.min(h - 1), cw, ch).to_image()
}

/// Where and how a watermark is drawn.
#[derive(Debug, Clone, Copy)]
struct Mark {
    /// Share of the picture its bounding box covers.
    area: f64,
    /// An opaque box behind the text, or the text strokes alone.
    boxed: bool,
    /// Right (else left) side.
    right: bool,
    /// Bottom (else top) side.
    bottom: bool,
    /// Light ink on a dark box, or dark ink on a light one.
    light: bool,
    /// Seeds the glyph shapes.
    glyphs: u64,
}

/// Draws a text-like mark in a corner: a row of blocky glyphs, with or
/// without an opaque box behind them.
fn watermark(img: &RgbImage, mark: Mark) -> RgbImage {
    let mut out = img.clone();
    let (w, h) = img.dimensions();
    let area = f64::from(w) * f64::from(h) * mark.area;
    let bh = ((area / 4.0).sqrt().round() as u32).clamp(6, h / 3);
    let bw = ((area / f64::from(bh)).floor() as u32).clamp(6, w / 2);
    let margin = (w.min(h) / 40).max(2);
    let x0 = if mark.right { w - bw - margin } else { margin };
    let y0 = if mark.bottom { h - bh - margin } else { margin };
    let (ink, paper) =
        if mark.light { (Rgb([245, 245, 240]), Rgb([25, 25, 35])) } else { (Rgb([20, 20, 30]), Rgb([240, 240, 235])) };
    let mut rng = ChaCha8Rng::seed_from_u64(mark.glyphs);
    let pad = (bh / 5).max(1);
    let cell = ((bh - 2 * pad) * 3 / 4).max(3);
    let glyphs: Vec<u8> = (0..bw / cell + 1).map(|_| rng.random()).collect();
    for y in y0..y0 + bh {
        for x in x0..x0 + bw {
            let (dx, dy) = (x - x0, y - y0);
            let inside = dy >= pad && dy < bh - pad && dx >= pad && dx + pad < bw;
            // A glyph is a 3×5 grid of blocks, a gap column between glyphs.
            let (gx, gy) = ((dx.saturating_sub(pad)) % cell, dy.saturating_sub(pad));
            let col = gx * 4 / cell;
            let row = (gy * 5 / (bh - 2 * pad).max(1)).min(4);
            let bits = glyphs[(dx.saturating_sub(pad) / cell) as usize];
            let on = inside && col < 3 && (bits >> ((row * 3 + col) % 8)) & 1 == 1;
            if on {
                out.put_pixel(x, y, ink);
            } else if mark.boxed {
                out.put_pixel(x, y, paper);
            }
        }
    }
    out
}

/// A variant of `original`'s pixels made the way `kind` says, and what
/// exactly was done. Most edits are mild, the way re-uploads mostly are;
/// one in eight crops or watermarks is heavy (up to 8% off a side, up to 5%
/// of the picture covered).
fn derive_variant(rng: &mut ChaCha8Rng, original: &RgbImage, format: Format, kind: &str) -> (Vec<u8>, Format, String) {
    let (w, h) = original.dimensions();
    let save = |rng: &mut ChaCha8Rng, img: &RgbImage| -> (Vec<u8>, Format) {
        // An uploader's tool mostly saves JPEG, sometimes keeps PNG.
        if format == Format::Png && rng.random_bool(0.4) {
            (images::encode(img, Format::Png), Format::Png)
        } else {
            (images::encode_jpeg(img, rng.random_range(75..=92)), Format::Jpeg)
        }
    };
    let heavy = rng.random_bool(HEAVY_SHARE);
    match kind {
        "reencode" => {
            let q = rng.random_range(40..=70);
            (images::encode_jpeg(original, q), Format::Jpeg, format!("jpeg quality {q}"))
        }
        "resize" => {
            let min_factor = (64.0 / f64::from(w.min(h).max(1))).clamp(0.5, 1.4);
            let mut factor = rng.random_range(min_factor..1.5);
            if ((f64::from(w) * factor).round() as u32) == w {
                factor += 0.05;
            }
            let nw = ((f64::from(w) * factor).round() as u32).max(64);
            let nh = ((f64::from(h) * factor).round() as u32).max(64);
            let (filter, name) = *[
                (FilterType::Triangle, "triangle"),
                (FilterType::CatmullRom, "catmull-rom"),
                (FilterType::Lanczos3, "lanczos3"),
            ]
            .choose(rng)
            .unwrap_or(&(FilterType::Triangle, "triangle"));
            let (bytes, format) = save(rng, &imageops::resize(original, nw, nh, filter));
            (bytes, format, format!("{w}x{h} to {nw}x{nh} ({name})"))
        }
        "crop" => {
            // Trimming a border: one or two sides (opposite sides when a
            // frame is cut off), mildly unless heavy.
            let max = if heavy { 0.08 } else { LIGHT_CROP };
            let mut f = [0.0; 4];
            let first = rng.random_range(0..4);
            f[first] = rng.random_range(0.2 * max..=max);
            if rng.random_bool(0.4) {
                let second = rng.random_range(0..4);
                f[second] = f64::max(f[second], rng.random_range(0.0..=max));
            }
            let cropped = crop(original, f);
            let (bytes, format) = save(rng, &cropped);
            let pct = f.map(|x| (x * 1000.0).round() / 10.0);
            (bytes, format, format!("crop left {}% right {}% top {}% bottom {}%", pct[0], pct[1], pct[2], pct[3]))
        }
        _ => {
            let boxed = rng.random_bool(0.4);
            let light_max = if boxed { LIGHT_MARK / 2.0 } else { LIGHT_MARK };
            let area = if heavy { rng.random_range(0.02..=0.05) } else { rng.random_range(0.003..=light_max) };
            let mark = Mark {
                area,
                boxed,
                right: rng.random_bool(0.7),
                bottom: rng.random_bool(0.7),
                light: rng.random_bool(0.5),
                glyphs: rng.random(),
            };
            let (bytes, format) = save(rng, &watermark(original, mark));
            let detail = format!(
                "{} mark over {:.1}% at {}-{}",
                if mark.boxed { "boxed" } else { "text" },
                area * 100.0,
                if mark.bottom { "bottom" } else { "top" },
                if mark.right { "right" } else { "left" }
            );
            (bytes, format, detail)
        }
    }
}

/// Share of crops and watermarks made heavy.
const HEAVY_SHARE: f64 = 0.08;
/// Largest share of a side a mild crop trims.
const LIGHT_CROP: f64 = 0.012;
/// Largest share of the picture a mild watermark covers (half that for a boxed one).
const LIGHT_MARK: f64 = 0.008;

/// The kinds of `count` variants: re-encodes and resizes (what platforms
/// and thumbnailers do) 35% each, crops and watermarks 15% each, every
/// kind at least once when there are four or more, in a shuffled order.
fn variant_schedule(rng: &mut ChaCha8Rng, count: usize) -> Vec<&'static str> {
    let share = |p: f64| ((count as f64 * p).round() as usize).max(usize::from(count >= 4));
    let (crops, marks) = (share(0.15), share(0.15));
    let resizes = share(0.35).min(count.saturating_sub(crops + marks));
    let reencodes = count.saturating_sub(crops + marks + resizes);
    let mut kinds: Vec<&'static str> =
        [("reencode", reencodes), ("resize", resizes), ("crop", crops), ("watermark", marks)]
            .iter()
            .flat_map(|(k, n)| std::iter::repeat_n(*k, *n))
            .take(count)
            .collect();
    kinds.shuffle(rng);
    kinds
}

/// Places every picture class on the pages (see the module documentation).
fn place_pictures(g: &mut Gen, spec: &EvalSpec) {
    let bad = g.bad_sites();
    let good = g.benign_sites();

    // Listed: 1–3 gallery pages each, every gallery page at least one,
    // some re-posted on another bad site.
    let mut site_listed: Vec<Vec<(usize, String)>> = vec![Vec::new(); g.sites.len()];
    for &s in &bad {
        for _ in 0..spec.listed_per_site {
            let c = g.new_picture(EvalClass::Listed, &PHOTO_SIZES, 0.75);
            let (host, dir) = g.picture_host(s, 0.9);
            let url = g.serve(c, &host, dir);
            let m = weighted(&mut g.rng, &[(1, 50), (2, 35), (3, 15)]);
            let pages: Vec<usize> = g.sites[s].listed_pages.choose_multiple(&mut g.rng, m).copied().collect();
            for p in pages {
                g.place(p, &url);
            }
            site_listed[s].push((c, url));
        }
        for p in g.sites[s].listed_pages.clone() {
            if !g.pages[p].contents.iter().any(|c| g.contents[*c].class == EvalClass::Listed) {
                if let Some((_, url)) = site_listed[s].choose(&mut g.rng).cloned() {
                    g.place(p, &url);
                }
            }
        }
    }
    for &s in &bad {
        for (c, url) in site_listed[s].clone() {
            let others: Vec<usize> = bad.iter().copied().filter(|t| *t != s).collect();
            if g.rng.random_bool(0.15) {
                if let Some(&t) = others.choose(&mut g.rng) {
                    let page = g.sites[t].listed_pages.choose(&mut g.rng).copied();
                    if let Some(page) = page {
                        let u = g.url_for_site(c, &url, t);
                        g.place(page, &u);
                    }
                }
            }
        }
    }

    // Popular: the CDN's logos and banners on most pages, every home page.
    let cdn = g.cdn.clone();
    let names = ["logo", "banner", "badge", "share", "partner", "footer", "promo"];
    for k in 0..spec.popular {
        let c = g.new_picture(EvalClass::Popular, &POPULAR_SIZES, 0.3);
        let format = g.contents[c].format;
        let path = format!("/assets/{}-{k}.{}", names[k % names.len()], format.extension());
        g.resources.insert(
            (cdn.clone(), path.clone()),
            Resource::Bytes { body: g.contents[c].body.clone(), content_type: format.media_type() },
        );
        let url = g.url(&cdn, &path);
        g.url_content.insert(url.clone(), c);
        let share = g.rng.random_range(0.6..0.95);
        for p in 0..g.pages.len() {
            if g.pages[p].kind == PageKind::Home || g.rng.random_bool(share) {
                g.pages[p].chrome.push(url.clone());
                g.pages[p].contents.insert(c);
            }
        }
    }

    // Variants: of this site's listed pictures; most on bad galleries
    // (resized ones as thumbnails linking the original), a fifth on a
    // benign page.
    let total = spec.variants_per_site * bad.len();
    let on_benign: BTreeSet<usize> = if total >= 3 {
        let mut all: Vec<usize> = (0..total).collect();
        all.shuffle(&mut g.rng);
        all.into_iter().take((total / 5).max(1)).collect()
    } else {
        BTreeSet::new()
    };
    let kinds = variant_schedule(&mut g.rng, total);
    for (v, kind) in kinds.into_iter().enumerate() {
        let s = bad[v / spec.variants_per_site.max(1)];
        let Some((original, original_url)) = site_listed[s].choose(&mut g.rng).cloned() else { continue };
        let (orig_body, orig_format, orig_pdq) = {
            let o = &g.contents[original];
            (o.body.clone(), o.format, o.pdq)
        };
        // The uploader starts from the decoded listed file.
        let pixels = match image::load_from_memory(&orig_body) {
            Ok(img) => img.to_rgb8(),
            Err(_) => continue,
        };
        let (mut bytes, mut format, mut detail) = derive_variant(&mut g.rng, &pixels, orig_format, kind);
        let mut digests = Digests::of(&bytes);
        if g.seen.contains(&digests.blake3) {
            // Never happens with these recipes; keeps contents distinct if it did.
            (bytes, format, detail) = (images::encode_jpeg(&pixels, 61), Format::Jpeg, "jpeg quality 61".into());
            digests = Digests::of(&bytes);
        }
        let (width, height) = image::load_from_memory(&bytes).map(|i| (i.width(), i.height())).unwrap_or((0, 0));
        let pdq = g.pdq_of(&bytes);
        let distance = match (pdq, orig_pdq) {
            (Some((a, _)), Some((b, _))) => Some(hamming(&a, &b)),
            _ => None,
        };
        let c = g.push(Content {
            body: bytes.into(),
            digests,
            format,
            width,
            height,
            class: EvalClass::Variant,
            pdq,
            variant_of: Some(original),
            variant_kind: Some(kind),
            variant_detail: Some(detail),
            variant_distance: distance,
        });
        if on_benign.contains(&v) {
            let Some(&t) = good.choose(&mut g.rng) else { continue };
            let page = g.sites[t].pages.choose(&mut g.rng).copied().unwrap_or(0);
            let (host, _) = g.picture_host(t, 0.5);
            let url = g.serve(c, &host, "/uploads");
            g.place(page, &url);
            g.near_listed.insert(page);
        } else {
            let others: Vec<usize> = bad.iter().copied().filter(|t| *t != s).collect();
            let t = if g.rng.random_bool(0.7) { s } else { others.choose(&mut g.rng).copied().unwrap_or(s) };
            let (host, dir) = g.picture_host(t, 0.8);
            let url = g.serve(c, &host, dir);
            let m = weighted(&mut g.rng, &[(1, 60), (2, 40)]);
            let pages: Vec<usize> = g.sites[t].listed_pages.choose_multiple(&mut g.rng, m).copied().collect();
            for page in pages {
                let thumb = kind == "resize" && width < g.contents[original].width && g.rng.random_bool(0.7);
                if thumb {
                    g.place_thumb(page, &url, &original_url);
                } else {
                    g.place(page, &url);
                }
                g.near_listed.insert(page);
            }
        }
    }

    // Co-occurring: 1–4 bad pages next to listed material, sometimes on a
    // second bad site, now and then also on a plain page of the site.
    for &s in &bad {
        let others: Vec<usize> = bad.iter().copied().filter(|t| *t != s).collect();
        for _ in 0..spec.cooccurring_per_site {
            let c = g.new_picture(EvalClass::Cooccurring, &PHOTO_SIZES, 0.75);
            let (host, dir) = g.picture_host(s, 0.7);
            let url = g.serve(c, &host, dir);
            let m = weighted(&mut g.rng, &[(1, 15), (2, 40), (3, 30), (4, 15)]);
            let mut pages: Vec<(usize, String)> =
                g.sites[s].listed_pages.choose_multiple(&mut g.rng, m).map(|p| (*p, url.clone())).collect();
            if pages.len() >= 2 && g.rng.random_bool(0.3) {
                if let Some(&t) = others.choose(&mut g.rng) {
                    if let Some(page) = g.sites[t].listed_pages.choose(&mut g.rng).copied() {
                        let u = g.url_for_site(c, &url, t);
                        pages.pop();
                        pages.push((page, u));
                    }
                }
            }
            if pages.len() < 4 && g.rng.random_bool(0.1) {
                if let Some(page) = g.sites[s].plain_pages.choose(&mut g.rng).copied() {
                    pages.push((page, url.clone()));
                }
            }
            for (page, u) in pages {
                g.place(page, &u);
            }
        }
    }

    // Lone neighbours: a benign site's picture, also on 1–4 other benign
    // sites, and once on a bad page with listed material.
    for _ in 0..spec.lone_neighbours {
        let Some(&origin) = good.choose(&mut g.rng) else { break };
        let c = g.new_picture(EvalClass::LoneNeighbour, &PHOTO_SIZES, 0.7);
        let (host, dir) = g.picture_host(origin, 0.7);
        let url = g.serve(c, &host, dir);
        let m = g.rng.random_range(2..=good.len().min(5));
        let mut sites = vec![origin];
        let others: Vec<usize> = good.iter().copied().filter(|t| *t != origin).collect();
        sites.extend(others.choose_multiple(&mut g.rng, m - 1).copied());
        for (k, t) in sites.into_iter().enumerate() {
            let pages: Vec<usize> = g.sites[t].pages.iter().copied().filter(|p| !g.near_listed.contains(p)).collect();
            let Some(&page) = pages.choose(&mut g.rng) else { continue };
            let u = if k == 0 { url.clone() } else { g.url_for_site(c, &url, t) };
            g.place(page, &u);
        }
        let Some(&t) = bad.choose(&mut g.rng) else { continue };
        let pages: Vec<usize> =
            g.sites[t].listed_pages.iter().copied().filter(|p| !g.near_listed.contains(p)).collect();
        let page = pages.choose(&mut g.rng).copied().or_else(|| g.sites[t].listed_pages.first().copied());
        if let Some(page) = page {
            let u = g.url_for_site(c, &url, t);
            g.place(page, &u);
        }
    }

    // Benign sites' own pictures: ~3 per page, 1–3 pages each, a few
    // stock pictures shared with another benign site.
    for &s in &good {
        let mut own = Vec::new();
        for _ in 0..spec.pages_per_site * 3 {
            let small = g.rng.random_bool(0.2);
            let c = g.new_picture(EvalClass::Benign, if small { &SMALL_SIZES } else { &PHOTO_SIZES }, 0.65);
            let (host, dir) = g.picture_host(s, 0.7);
            let url = g.serve(c, &host, dir);
            let m = weighted(&mut g.rng, &[(1, 55), (2, 30), (3, 15)]);
            let pages: Vec<usize> = g.sites[s].pages.choose_multiple(&mut g.rng, m).copied().collect();
            for p in pages {
                g.place(p, &url);
            }
            if g.rng.random_bool(0.08) {
                let others: Vec<usize> = good.iter().copied().filter(|t| *t != s).collect();
                if let Some(&t) = others.choose(&mut g.rng) {
                    let page = g.sites[t].pages.choose(&mut g.rng).copied().unwrap_or(0);
                    let u = g.url_for_site(c, &url, t);
                    g.place(page, &u);
                }
            }
            own.push(url);
        }
        for p in g.sites[s].pages.clone() {
            let shows_own = g.pages[p].contents.iter().any(|c| g.contents[*c].class == EvalClass::Benign);
            if !shows_own {
                if let Some(url) = own.choose(&mut g.rng).cloned() {
                    g.place(p, &url);
                }
            }
        }
    }

    // Bad sites' plain pages: banners, rules graphics, contact pictures.
    for &s in &bad {
        let plain = g.sites[s].plain_pages.clone();
        let mut own = Vec::new();
        for _ in 0..plain.len() * 2 {
            let c = g.new_picture(EvalClass::Benign, &PHOTO_SIZES, 0.6);
            let www = g.sites[s].plan.www.clone();
            let url = g.serve(c, &www, "/static");
            let m = weighted(&mut g.rng, &[(1, 70), (2, 30)]);
            let pages: Vec<usize> = plain.choose_multiple(&mut g.rng, m).copied().collect();
            for p in pages {
                g.place(p, &url);
            }
            own.push(url);
        }
        for p in plain {
            if !g.pages[p].contents.iter().any(|c| g.contents[*c].class == EvalClass::Benign) {
                if let Some(url) = own.choose(&mut g.rng).cloned() {
                    g.place(p, &url);
                }
            }
        }
    }
}

/// A reference as the page writes it: root-relative on the page's own
/// host, protocol-relative or absolute elsewhere.
fn href(rng: &mut ChaCha8Rng, page_host: &str, url: &str) -> String {
    if host_of(url) == page_host && rng.random_bool(0.8) {
        return path_of(url).to_string();
    }
    if rng.random_bool(0.3) {
        return url.trim_start_matches("http:").to_string();
    }
    url.to_string()
}

fn render(g: &mut Gen, page: usize) -> String {
    let p = &g.pages[page];
    let host = host_of(&p.url).to_string();
    let title = p.title.clone();
    let links = p.links.clone();
    let chrome = p.chrome.clone();
    let uses: Vec<(String, Option<String>)> = p
        .uses
        .iter()
        .map(|u| match u {
            Use::Img(url) => (url.clone(), None),
            Use::Thumb { thumb, full } => (thumb.clone(), Some(full.clone())),
        })
        .collect();
    let rng = &mut g.rng;
    let mut body = String::new();
    let _ = writeln!(body, "<header><a href=\"/\">home</a>");
    let (head_chrome, foot_chrome) = chrome.split_at(chrome.len().div_ceil(2));
    for u in head_chrome {
        let _ = writeln!(body, "<img src=\"{}\" alt=\"\">", href(rng, &host, u));
    }
    let _ =
        writeln!(body, "</header>\n<h1>{title}</h1>\n<p>Generated evaluation page with benign synthetic pictures.</p>");
    let _ = writeln!(body, "<div class=\"items\">");
    for (k, (url, full)) in uses.iter().enumerate() {
        let src = href(rng, &host, url);
        let (w, h) = (rng.random_range(100..400), rng.random_range(80..300));
        let html = match full {
            Some(full) => format!("<a href=\"{}\"><img src=\"{src}\" alt=\"thumb {k}\"></a>", href(rng, &host, full)),
            None => match rng.random_range(0..10) {
                0..=3 => format!("<img src=\"{src}\" alt=\"picture {k}\">"),
                4 => format!("<img alt='picture' width={w} height={h} src='{src}'>"),
                5 => format!("<img class=\"lazy\" data-src=\"{src}\" alt=\"\">"),
                6 => format!("<img src=\"{src}\" srcset=\"{src} 1x\" loading=\"lazy\">"),
                7 => format!("<figure><img src=\"{src}\"><figcaption>item {k}</figcaption></figure>"),
                _ => format!("<a href=\"{src}\"><img src=\"{src}\" width={w}></a>"),
            },
        };
        let _ = writeln!(body, "{html}");
    }
    let _ = writeln!(body, "</div>\n<ul class=\"links\">");
    for l in &links {
        let _ = writeln!(body, "<li><a href=\"{}\">{}</a></li>", href(rng, &host, l), path_of(l));
    }
    let _ = writeln!(body, "</ul>\n<footer>");
    for u in foot_chrome {
        let _ = writeln!(body, "<img src=\"{}\" alt=\"\">", href(rng, &host, u));
    }
    let _ = writeln!(body, "</footer>");
    format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{title}</title></head>\n<body>\n{body}</body></html>\n"
    )
}

/// Generates the evaluation web for `spec` with every URL on `port`: what
/// every URL serves, the ground truth and the reference file (CSV).
/// Deterministic: the same spec and port give the same bytes.
pub fn generate_eval(spec: &EvalSpec, port: u16) -> (Resources, EvalTruth, String) {
    let spec = &spec.normalized();
    let plan = host_plan(spec);
    let hosts = plan.hosts.clone();
    let mut g = Gen {
        rng: ChaCha8Rng::seed_from_u64(spec.seed),
        port,
        sites: plan
            .sites
            .into_iter()
            .map(|plan| SiteState { plan, pages: Vec::new(), listed_pages: Vec::new(), plain_pages: Vec::new() })
            .collect(),
        cdn: plan.cdn,
        pages: Vec::new(),
        contents: Vec::new(),
        resources: Resources::default(),
        url_content: HashMap::new(),
        seen: HashSet::new(),
        listed_pdq: Vec::new(),
        hasher: ImageHasher::new(DecodeLimits::default(), Mode::Exact),
        near_listed: HashSet::new(),
    };
    build_pages(&mut g, spec);
    place_pictures(&mut g, spec);
    for page in 0..g.pages.len() {
        let html = render(&mut g, page);
        let url = &g.pages[page].url;
        g.resources.insert((host_of(url).to_string(), path_of(url).to_string()), Resource::Html(html.into()));
    }
    let seeds: Vec<String> = g.sites.iter().map(|s| g.url(&s.plan.www, "/")).collect();
    let truth = truth_of(&g, spec, seeds, hosts);
    let csv = reference_csv(&g, spec, &truth);
    (g.resources, truth, csv)
}

/// Breadth-first walk of what a domain-scoped crawl from the seeds reaches,
/// and the truth about it.
fn truth_of(g: &Gen, spec: &EvalSpec, seeds: Vec<String>, hosts: Vec<HostInfo>) -> EvalTruth {
    let by_url: HashMap<&str, usize> = g.pages.iter().enumerate().map(|(i, p)| (p.url.as_str(), i)).collect();
    let scope: HashSet<String> = seeds.iter().map(|s| registrable(host_of(s))).collect();
    let mut depth: Vec<Option<u32>> = vec![None; g.pages.len()];
    let mut queue = VecDeque::new();
    for s in &seeds {
        if let Some(&i) = by_url.get(s.as_str()) {
            depth[i] = Some(0);
            queue.push_back(i);
        }
    }
    while let Some(i) = queue.pop_front() {
        let d = depth[i].unwrap_or(0);
        for link in &g.pages[i].links {
            if !scope.contains(&registrable(host_of(link))) {
                continue;
            }
            if let Some(&t) = by_url.get(link.as_str()) {
                if depth[t].is_none() {
                    depth[t] = Some(d + 1);
                    queue.push_back(t);
                }
            }
        }
    }
    let mut pages_of: BTreeMap<usize, BTreeSet<String>> = BTreeMap::new();
    let mut urls_of: BTreeMap<usize, BTreeSet<String>> = BTreeMap::new();
    let mut pages = Vec::new();
    for (i, p) in g.pages.iter().enumerate() {
        let Some(d) = depth[i] else { continue };
        let mut used: Vec<&String> = p.chrome.iter().collect();
        for u in &p.uses {
            match u {
                Use::Img(url) => used.push(url),
                Use::Thumb { thumb, full } => used.extend([thumb, full]),
            }
        }
        for url in used {
            if let Some(&c) = g.url_content.get(url) {
                pages_of.entry(c).or_default().insert(p.url.clone());
                urls_of.entry(c).or_default().insert(url.clone());
            }
        }
        let shows = |class| p.contents.iter().any(|c| g.contents[*c].class == class);
        pages.push(EvalPage {
            url: p.url.clone(),
            site: registrable(host_of(&p.url)),
            bad_site: g.sites[p.site].plan.bad,
            depth: d,
            listed: shows(EvalClass::Listed),
            near_listed: shows(EvalClass::Variant),
            contents: p.contents.iter().map(|c| g.contents[*c].digests.hex(CryptoAlgo::Blake3)).collect(),
        });
    }
    let contents = g
        .contents
        .iter()
        .enumerate()
        .filter_map(|(i, c)| {
            let pages = pages_of.get(&i)?;
            Some(EvalContent {
                blake3: c.digests.hex(CryptoAlgo::Blake3),
                class: c.class,
                pdq: c.pdq.map(|(h, _)| hex(&h)),
                pdq_quality: c.pdq.map(|(_, q)| q),
                variant_of: c.variant_of.map(|o| g.contents[o].digests.hex(CryptoAlgo::Blake3)),
                variant_kind: c.variant_kind.map(str::to_string),
                variant_detail: c.variant_detail.clone(),
                variant_distance: c.variant_distance,
                format: c.format,
                width: c.width,
                height: c.height,
                urls: urls_of.get(&i).map(|u| u.iter().cloned().collect()).unwrap_or_default(),
                pages: pages.iter().cloned().collect(),
            })
        })
        .collect();
    EvalTruth { spec: spec.clone(), port: g.port, seeds, hosts, pages, contents }
}

/// The reference file: one row per reachable listed content (MD5, SHA-256
/// and PDQ), then five decoys whose hashes match nothing on the web.
fn reference_csv(g: &Gen, spec: &EvalSpec, truth: &EvalTruth) -> String {
    let mut csv = String::from("id,label,md5,sha256,pdq\n");
    let mut n = 0;
    for c in &g.contents {
        if c.class != EvalClass::Listed || truth.content(&c.digests.hex(CryptoAlgo::Blake3)).is_none() {
            continue;
        }
        n += 1;
        let pdq = c.pdq.map(|(h, _)| hex(&h)).unwrap_or_default();
        let _ = writeln!(
            csv,
            "EV-{n:04},generated benign test image,{},{},{pdq}",
            c.digests.hex(CryptoAlgo::Md5),
            c.digests.hex(CryptoAlgo::Sha256)
        );
    }
    let mut rng = ChaCha8Rng::seed_from_u64(spec.seed ^ 0x6465_636f_7973);
    let all_pdq: Vec<[u8; 32]> = g.contents.iter().filter_map(|c| c.pdq.map(|(h, _)| h)).collect();
    for d in 0..5u32 {
        let digests = Digests::of(format!("eval decoy {} {d}", spec.seed).as_bytes());
        let pdq = loop {
            let candidate: [u8; 32] = rng.random();
            if all_pdq.iter().all(|h| hamming(h, &candidate) > 2 * MIN_UNLISTED_DISTANCE) {
                break candidate;
            }
        };
        let _ = writeln!(
            csv,
            "DECOY-{d},listed hash found nowhere,{},{},{}",
            digests.hex(CryptoAlgo::Md5),
            digests.hex(CryptoAlgo::Sha256),
            hex(&pdq)
        );
    }
    csv
}

#[cfg(test)]
mod tests {
    use super::*;

    type Generated = (Resources, EvalTruth, String);

    /// The default web, generated once for every test.
    fn web() -> &'static Generated {
        static WEB: std::sync::OnceLock<Generated> = std::sync::OnceLock::new();
        WEB.get_or_init(|| generate_eval(&EvalSpec::default(), 8080))
    }

    fn of_class(truth: &EvalTruth, class: EvalClass) -> impl Iterator<Item = &EvalContent> {
        truth.contents.iter().filter(move |c| c.class == class)
    }

    fn page<'a>(truth: &'a EvalTruth, url: &str) -> &'a EvalPage {
        truth.pages.iter().find(|p| p.url == url).unwrap_or_else(|| panic!("no page {url}"))
    }

    fn pdq_hash(hex_text: &str) -> [u8; 32] {
        parse_hex::<32>(hex_text).unwrap()
    }

    #[test]
    fn same_spec_same_web_and_port_only_changes_urls() {
        let (res_a, a, csv_a) = web();
        let (res_b, b, csv_b) = generate_eval(&EvalSpec::default(), 8080);
        assert_eq!(a, &b);
        assert_eq!(csv_a, &csv_b);
        assert_eq!(res_a.len(), res_b.len());
        for url in a.pages.iter().map(|p| &p.url).chain(a.contents.iter().flat_map(|c| &c.urls)) {
            assert_eq!(res_a.body(url), res_b.body(url), "{url}");
            assert!(res_a.body(url).is_some(), "{url} is served");
        }
        let (_, c, csv_c) = generate_eval(&EvalSpec::default(), 9090);
        let key = |t: &EvalTruth| t.contents.iter().map(|c| (c.blake3.clone(), c.class)).collect::<Vec<_>>();
        assert_eq!(key(a), key(&c));
        assert_eq!(csv_a, &csv_c, "the reference file does not depend on the port");
        assert!(c.pages.iter().all(|p| p.url.contains(":9090/")));
        let (_, other, _) = generate_eval(&EvalSpec { seed: 2, ..EvalSpec::default() }, 8080);
        assert_ne!(key(a), key(&other), "another seed, another web");
    }

    #[test]
    fn default_spec_has_every_class_in_proportion() {
        let (res, truth, csv) = web();
        let counts = truth.counts();
        for class in EvalClass::ALL {
            assert!(counts[&class] > 0, "{} missing: {counts:?}", class.name());
        }
        assert_eq!(counts[&EvalClass::Listed], 6 * 8);
        assert_eq!(counts[&EvalClass::Variant], 6 * 4);
        assert!((40..=60).contains(&counts[&EvalClass::Cooccurring]), "{counts:?}");
        assert_eq!(counts[&EvalClass::LoneNeighbour], 15);
        assert!((3..=5).contains(&counts[&EvalClass::Popular]), "{counts:?}");
        assert!((150..=250).contains(&truth.pages.len()), "{} pages", truth.pages.len());
        assert!((500..=900).contains(&truth.image_urls()), "{} image URLs", truth.image_urls());
        assert_eq!(res.len(), truth.pages.len() + truth.image_urls(), "every served URL is used");
        // Distinct contents, and class_of finds each.
        let blake: HashSet<&str> = truth.contents.iter().map(|c| c.blake3.as_str()).collect();
        assert_eq!(blake.len(), truth.contents.len());
        for c in &truth.contents {
            assert_eq!(truth.class_of(&c.blake3.to_uppercase()), Some(c.class));
            assert!(c.pdq_quality.is_some_and(|q| q > 0), "{} has a PDQ hash", c.blake3);
        }
        assert_eq!(truth.class_of("00"), None);
        // Names are the serialized names.
        for class in EvalClass::ALL {
            assert_eq!(serde_json::to_string(&class).unwrap(), format!("\"{}\"", class.name()));
        }
        // Mixed formats.
        assert!(truth.contents.iter().any(|c| c.format == Format::Png));
        assert!(truth.contents.iter().any(|c| c.format == Format::Jpeg));
        assert!(truth.contents.iter().all(|c| c.width >= 64 && c.height >= 64));
        // Truth survives JSON.
        let json = serde_json::to_string(truth).unwrap();
        assert_eq!(&serde_json::from_str::<EvalTruth>(&json).unwrap(), truth);
        assert!(csv.starts_with("id,label,md5,sha256,pdq\n"));
    }

    #[test]
    fn reference_lists_exactly_the_listed_contents_plus_decoys() {
        let (_, truth, csv) = web();
        let rows: Vec<Vec<&str>> = csv.lines().skip(1).map(|l| l.split(',').collect()).collect();
        assert!(rows.iter().all(|r| r.len() == 5 && r[2].len() == 32 && r[3].len() == 64 && r[4].len() == 64));
        let listed: BTreeSet<&str> = of_class(truth, EvalClass::Listed).filter_map(|c| c.pdq.as_deref()).collect();
        let (decoys, rows): (Vec<_>, Vec<_>) = rows.into_iter().partition(|r| r[0].starts_with("DECOY"));
        assert_eq!(decoys.len(), 5);
        assert_eq!(rows.iter().map(|r| r[4]).collect::<BTreeSet<_>>(), listed);
        assert_eq!(rows.len(), listed.len());
        let all: Vec<[u8; 32]> = truth.contents.iter().filter_map(|c| c.pdq.as_deref()).map(pdq_hash).collect();
        for d in decoys {
            let h = pdq_hash(d[4]);
            assert!(all.iter().all(|c| hamming(c, &h) > 31), "decoy {} matches nothing", d[0]);
        }
    }

    #[test]
    fn unlisted_pictures_stay_clear_of_listed_hashes() {
        let (_, truth, _) = web();
        let listed: Vec<[u8; 32]> =
            of_class(truth, EvalClass::Listed).filter_map(|c| c.pdq.as_deref()).map(pdq_hash).collect();
        for c in truth.contents.iter().filter(|c| !matches!(c.class, EvalClass::Listed | EvalClass::Variant)) {
            let h = pdq_hash(c.pdq.as_deref().unwrap());
            let nearest = listed.iter().map(|l| hamming(l, &h)).min().unwrap();
            assert!(nearest >= MIN_UNLISTED_DISTANCE, "{:?} {} is {nearest} from a listed hash", c.class, c.blake3);
        }
    }

    #[test]
    fn variants_mostly_within_default_radius_with_true_distances() {
        let (res, truth, _) = web();
        let mut hasher = ImageHasher::new(DecodeLimits::default(), Mode::Exact);
        let variants: Vec<&EvalContent> = of_class(truth, EvalClass::Variant).collect();
        let mut kinds = BTreeSet::new();
        for v in &variants {
            let original = truth.content(v.variant_of.as_deref().unwrap()).unwrap();
            assert_eq!(original.class, EvalClass::Listed);
            let a = hasher.pdq(res.body(&v.urls[0]).unwrap()).unwrap();
            let b = hasher.pdq(res.body(&original.urls[0]).unwrap()).unwrap();
            assert_eq!(v.pdq.as_deref(), Some(a.pdq.hash.to_hex().as_str()));
            assert_eq!(v.variant_distance, Some(a.pdq.hash.hamming(&b.pdq.hash)), "{v:?}");
            assert_eq!(blake3_of(res.body(&v.urls[0]).unwrap()), v.blake3);
            kinds.insert(v.variant_kind.clone().unwrap());
            assert!(v.variant_detail.is_some());
        }
        assert_eq!(kinds.len(), VARIANT_KINDS.len(), "every kind: {kinds:?}");
        let within = variants.iter().filter(|v| v.variant_distance.is_some_and(|d| d <= 31)).count();
        assert!(within * 100 >= variants.len() * 95, "{within} of {} variants within 31", variants.len());
        // Mostly on bad sites, some on a benign page.
        let on_benign = variants.iter().filter(|v| v.pages.iter().any(|p| !page(truth, p).bad_site)).count();
        assert!(on_benign >= 1 && on_benign * 3 < variants.len(), "{on_benign} variants on benign pages");
    }

    /// The variant recipe over many pictures, not just the default web's 24.
    #[test]
    fn variant_recipe_keeps_95_percent_within_default_radius() {
        let mut hasher = ImageHasher::new(DecodeLimits::default(), Mode::Exact);
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        let kinds = variant_schedule(&mut rng, 240);
        let mut within = 0;
        for (n, kind) in kinds.iter().enumerate() {
            let (w, h) = PHOTO_SIZES[n % PHOTO_SIZES.len()];
            let format = if n % 4 == 0 { Format::Png } else { Format::Jpeg };
            let bytes = images::encode(&images::draw(n as u64 * 7919 + 3, w, h), format);
            let pixels = image::load_from_memory(&bytes).unwrap().to_rgb8();
            let (variant, _, _) = derive_variant(&mut rng, &pixels, format, kind);
            let (a, b) = (hasher.pdq(&bytes).unwrap(), hasher.pdq(&variant).unwrap());
            within += usize::from(a.pdq.hash.hamming(&b.pdq.hash) <= 31);
        }
        assert!(within * 100 >= kinds.len() * 95, "{within} of {} within 31", kinds.len());
    }

    #[test]
    fn listed_contents_only_on_bad_hosts() {
        let (_, truth, _) = web();
        for c in of_class(truth, EvalClass::Listed) {
            assert!(!c.pages.is_empty());
            assert!(c.pages.iter().all(|p| page(truth, p).bad_site), "{c:?}");
            assert!(c.urls.iter().all(|u| host_of(u).contains(".bad")), "{c:?}");
        }
        // Benign sites never show listed material; bad sites also have pages without.
        assert!(truth.pages.iter().filter(|p| !p.bad_site).all(|p| !p.listed));
        for site in truth.pages.iter().filter(|p| p.bad_site).map(|p| &p.site).collect::<BTreeSet<_>>() {
            let pages: Vec<&EvalPage> = truth.pages.iter().filter(|p| &p.site == site).collect();
            assert!(pages.iter().any(|p| p.listed) && pages.iter().any(|p| !p.listed), "{site}");
        }
    }

    #[test]
    fn cooccurring_lives_next_to_listed_material() {
        let (_, truth, _) = web();
        let co: Vec<&EvalContent> = of_class(truth, EvalClass::Cooccurring).collect();
        let mut two_or_more = 0;
        let mut two_sites = 0;
        for c in &co {
            assert!((1..=4).contains(&c.pages.len()), "{c:?}");
            assert!(c.pages.iter().all(|p| page(truth, p).bad_site));
            assert!(c.pages.iter().any(|p| page(truth, p).listed), "{c:?}");
            two_or_more += usize::from(c.pages.len() >= 2);
            let sites: BTreeSet<&str> = c.pages.iter().map(|p| page(truth, p).site.as_str()).collect();
            two_sites += usize::from(sites.len() >= 2);
        }
        assert!(two_or_more * 10 >= co.len() * 6, "mostly on two pages or more: {two_or_more} of {}", co.len());
        assert!(two_sites >= 3, "some on two bad sites: {two_sites}");
    }

    #[test]
    fn benign_pictures_never_next_to_listed_material() {
        let (_, truth, _) = web();
        let benign: Vec<&EvalContent> = of_class(truth, EvalClass::Benign).collect();
        for c in &benign {
            assert!(c.pages.iter().all(|p| !page(truth, p).listed), "{c:?}");
        }
        let on_bad = benign.iter().filter(|c| c.pages.iter().any(|p| page(truth, p).bad_site)).count();
        assert!(on_bad >= 6, "benign noise on bad sites: {on_bad}");
    }

    #[test]
    fn popular_pictures_appear_on_every_site() {
        let (_, truth, _) = web();
        let sites: BTreeSet<&str> = truth.pages.iter().map(|p| p.site.as_str()).collect();
        for c in of_class(truth, EvalClass::Popular) {
            let on: BTreeSet<&str> = c.pages.iter().map(|p| page(truth, p).site.as_str()).collect();
            assert_eq!(on, sites, "{}", c.urls[0]);
            assert!(c.pages.len() * 2 > truth.pages.len(), "on most pages: {}", c.pages.len());
            assert!(c.urls.iter().all(|u| host_of(u) == "cdn.popular.test"));
        }
    }

    #[test]
    fn lone_neighbours_next_to_listed_material_exactly_once() {
        let (_, truth, _) = web();
        for c in of_class(truth, EvalClass::LoneNeighbour) {
            let pages: Vec<&EvalPage> = c.pages.iter().map(|p| page(truth, p)).collect();
            let next_to_listed: Vec<&&EvalPage> = pages.iter().filter(|p| p.listed || p.near_listed).collect();
            assert_eq!(next_to_listed.len(), 1, "{c:?}");
            assert!(next_to_listed[0].bad_site && next_to_listed[0].listed);
            let benign_sites: BTreeSet<&str> = pages.iter().filter(|p| !p.bad_site).map(|p| p.site.as_str()).collect();
            assert!((2..=5).contains(&benign_sites.len()), "{c:?}");
            assert_eq!(pages.iter().filter(|p| p.bad_site).count(), 1);
        }
    }

    #[test]
    fn every_page_reachable_within_the_depth_limit() {
        let (_, truth, _) = web();
        let spec = &truth.spec;
        let sites = spec.bad_sites + spec.benign_sites;
        assert_eq!(truth.pages.len(), sites * spec.pages_per_site);
        assert_eq!(truth.seeds.len(), sites);
        assert!(truth.pages.iter().all(|p| p.depth <= 6), "max {:?}", truth.pages.iter().map(|p| p.depth).max());
        assert!(truth.seeds.iter().all(|s| page(truth, s).depth == 0));
        let names: BTreeSet<&str> = truth.hosts.iter().map(|h| h.name.as_str()).collect();
        assert_eq!(names.len(), truth.hosts.len());
        assert!(
            names.contains("cdn.popular.test") && names.contains("img.good0.test") && !names.contains("img.good1.test")
        );
        assert!(truth.hosts.iter().all(|h| h.ip.to_string().starts_with("127.78.")));
        assert_eq!(truth.spec.allow_net(), "127.78.0.0/16");
        assert_eq!(truth.resolve_flags()[0], "www.bad0.test=127.78.0.1");
        for c in &truth.contents {
            assert!(!c.pages.is_empty() && !c.urls.is_empty());
            assert!(c.pages.iter().chain(&c.urls).all(|u| u.starts_with("http://") && u.contains(":8080/")));
        }
    }

    #[test]
    fn small_specs_still_generate() {
        let spec = EvalSpec { bad_sites: 1, benign_sites: 0, pages_per_site: 1, popular: 0, ..EvalSpec::default() };
        let (_, truth, csv) = generate_eval(&spec, 1);
        assert_eq!(truth.spec.benign_sites, 2);
        assert!(truth.counts()[&EvalClass::Listed] > 0);
        assert!(csv.lines().count() > 6);
        assert_eq!(truth.hosts, spec.hosts());
    }

    fn blake3_of(bytes: &[u8]) -> String {
        Digests::of(bytes).hex(CryptoAlgo::Blake3)
    }

    #[tokio::test]
    async fn served_over_loopback_as_the_truth_says() {
        let web = EvalWeb::start(EvalSpec::default(), 0).await.unwrap();
        let truth = web.truth();
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut client = reqwest::Client::builder().no_proxy().timeout(std::time::Duration::from_secs(20));
        for h in &truth.hosts {
            client = client.resolve(&h.name, std::net::SocketAddr::new(h.ip, web.port()));
        }
        let client = client.build().unwrap();
        let listed = of_class(truth, EvalClass::Listed).next().unwrap();
        let home = client.get(&truth.seeds[0]).send().await.unwrap();
        assert_eq!(home.status(), 200);
        let html = home.text().await.unwrap();
        assert!(html.contains("<a href"), "{html}");
        for c in [listed, of_class(truth, EvalClass::Popular).next().unwrap()] {
            let response = client.get(&c.urls[0]).send().await.unwrap();
            assert_eq!(response.status(), 200);
            let body = response.bytes().await.unwrap();
            assert_eq!(blake3_of(&body), c.blake3);
        }
        let missing = client.get(format!("{}robots.txt", truth.seeds[0])).send().await.unwrap();
        assert_eq!(missing.status(), 404);
        let log = web.access_log();
        assert_eq!(log.len(), 4);
        assert!(log.iter().all(|e| e.local_ip.to_string().starts_with("127.78.")));
        web.shutdown().await;
    }
}
