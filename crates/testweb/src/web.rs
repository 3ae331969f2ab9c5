//! Generation of the synthetic web and its ground truth.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use base64::Engine as _;
use hashscan_hash::{CryptoAlgo, Digests};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use hashscan_decode::{DecodeLimits, ImageHasher, Mode};

use crate::images::{self, Format};

/// What to generate. The same spec and port always give the same web,
/// byte for byte.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebSpec {
    /// Seed of every random choice.
    pub seed: u64,
    /// Number of sites (`www.siteN.test` + `img.siteN.test`).
    pub sites: usize,
    /// Pages per site, linked as a tree plus random cross links.
    pub pages_per_site: usize,
    /// Distinct images per site.
    pub images_per_site: usize,
    /// How many of a site's images are listed in the generated reference file.
    pub listed_per_site: usize,
    /// Images on the shared CDN host, used by pages of every site.
    pub cdn_images: usize,
    /// Hosts get consecutive addresses after this one (a /16 inside 127/8).
    pub ip_base: Ipv4Addr,
}

impl Default for WebSpec {
    fn default() -> Self {
        Self {
            seed: 1,
            sites: 4,
            pages_per_site: 10,
            images_per_site: 12,
            listed_per_site: 3,
            cdn_images: 6,
            ip_base: Ipv4Addr::new(127, 77, 0, 0),
        }
    }
}

impl WebSpec {
    /// The range every test-web address falls in: what a scan must allow.
    pub fn allow_net(&self) -> String {
        let o = self.ip_base.octets();
        format!("{}.{}.0.0/16", o[0], o[1])
    }
}

/// What a URL of the test web serves.
#[derive(Clone)]
pub(crate) enum Resource {
    /// An HTML page.
    Html(Arc<str>),
    /// Bytes with a Content-Type (images, or an HTML page dressed as one).
    Bytes { body: Arc<[u8]>, content_type: &'static str },
    /// A 302 to a relative or absolute Location.
    Redirect(String),
}

/// What every URL of a generated web serves, by host and path (with
/// query): the one thing the shared server needs from a web.
#[derive(Clone, Default)]
pub struct Resources {
    map: HashMap<(String, String), Resource>,
}

impl Resources {
    /// Serves `resource` at (host, path).
    pub(crate) fn insert(&mut self, key: (String, String), resource: Resource) {
        self.map.insert(key, resource);
    }

    /// What `host` + `path` serves.
    pub(crate) fn get(&self, host: &str, path: &str) -> Option<&Resource> {
        self.map.get(&(host.to_string(), path.to_string()))
    }

    /// The body an absolute `http://host[:port]/path` URL serves (HTML or
    /// image bytes), without a server: lets tests and evaluations look at
    /// the web offline. `None` for redirects and unknown URLs.
    pub fn body(&self, url: &str) -> Option<&[u8]> {
        match self.get(&host_of(url).to_ascii_lowercase(), path_of(url))? {
            Resource::Html(html) => Some(html.as_bytes()),
            Resource::Bytes { body, .. } => Some(body),
            Resource::Redirect(_) => None,
        }
    }

    /// Number of URLs served.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// True when nothing is served.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

impl crate::server::Lookup for Resources {
    fn lookup(&self, host: &str, path: &str) -> Option<&Resource> {
        self.get(host, path)
    }
}

/// A host of the test web and the loopback address it is served on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostInfo {
    /// Host name, e.g. `www.site0.test`.
    pub name: String,
    /// Its address, inside [`WebSpec::allow_net`].
    pub ip: IpAddr,
}

/// One page of the web, with whether a scan from the seeds reaches it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PageTruth {
    /// Its URL.
    pub url: String,
    /// Linked from the seeds through in-scope pages.
    pub reachable: bool,
    /// Shortest link distance from a seed, when reachable.
    pub depth: Option<u32>,
    /// Why it exists: `site`, `orphan` (never linked) or `outside` (out of scope).
    pub role: String,
}

/// One distinct image content of the web.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContentTruth {
    /// Its digests.
    pub digests: Digests,
    /// Encoded format.
    pub format: Format,
    /// Pixel size.
    pub width: u32,
    /// Pixel size.
    pub height: u32,
    /// Listed in the generated reference file.
    pub listed: bool,
    /// Which column of the reference file lists it (`md5`, `sha1`, …).
    pub listed_by: Option<CryptoAlgo>,
    /// Found by a full scan from the seeds.
    pub reachable: bool,
    /// URLs serving it (`data:` images: the id a crawler gives them).
    pub urls: Vec<String>,
    /// Reachable pages that show or link it (directly or through a redirect).
    pub pages: Vec<String>,
    /// Its PDQ hash (hex) as `hashscan-decode` computes it in exact mode.
    pub pdq: Option<String>,
    /// Its PDQ quality.
    pub pdq_quality: Option<u8>,
    /// Why it has no PDQ hash (the decoder's error code), for a broken image.
    pub pdq_error: Option<String>,
}

/// What a scan of the seeds with domain scope and a depth limit of at
/// least [`Expected::max_depth`] must produce.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Expected {
    /// HTML pages fetched.
    pub pages: u64,
    /// Image URLs fetched and hashed.
    pub images: u64,
    /// `data:` images, counted once per page that carries them.
    pub data_images: u64,
    /// Redirect responses.
    pub redirects: u64,
    /// Failed fetches by reason code.
    pub failed: BTreeMap<String, u64>,
    /// Distinct contents hashed (URL and `data:` images).
    pub contents: u64,
    /// Distinct listed contents found: the hits.
    pub listed: u64,
    /// Deepest reachable page.
    pub max_depth: u32,
}

/// The ground truth of a generated web.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// The spec it was generated from.
    pub spec: WebSpec,
    /// The port every host listens on.
    pub port: u16,
    /// Start URLs: every site's home page.
    pub seeds: Vec<String>,
    /// Every host and its address.
    pub hosts: Vec<HostInfo>,
    /// Every page served.
    pub pages: Vec<PageTruth>,
    /// Every image content served.
    pub contents: Vec<ContentTruth>,
    /// What a full scan finds.
    pub expected: Expected,
}

impl Manifest {
    /// `--resolve` values pinning every host to its address.
    pub fn resolve_flags(&self) -> Vec<String> {
        self.hosts.iter().map(|h| format!("{}={}", h.name, h.ip)).collect()
    }

    /// Contents a full scan must report as hits.
    pub fn expected_hits(&self) -> impl Iterator<Item = &ContentTruth> {
        self.contents.iter().filter(|c| c.listed && c.reachable)
    }

    /// The content with this BLAKE3 (hex), if the web serves it.
    pub fn content_by_blake3(&self, hex: &str) -> Option<&ContentTruth> {
        self.contents.iter().find(|c| c.digests.hex(CryptoAlgo::Blake3) == hex)
    }
}

/// A generated web: what every URL serves, and the truth about it.
pub struct Web {
    pub(crate) resources: Resources,
    pub(crate) manifest: Manifest,
    pub(crate) reference_csv: String,
}

impl Web {
    /// The ground truth.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// The generated reference file (CSV): every listed content plus decoys
    /// that match nothing. Hashes of benign images we chose to list.
    pub fn reference_csv(&self) -> &str {
        &self.reference_csv
    }

    /// Number of URLs served.
    pub fn len(&self) -> usize {
        self.resources.len()
    }

    /// True when nothing is served.
    pub fn is_empty(&self) -> bool {
        self.resources.is_empty()
    }
}

impl crate::server::Lookup for Web {
    fn lookup(&self, host: &str, path: &str) -> Option<&Resource> {
        self.resources.get(host, path)
    }
}

/// How a page refers to something: the truth is kept next to the markup so
/// the two cannot drift apart.
enum Use {
    Image(String),
    Data(usize),
}

struct Page {
    url: String,
    role: &'static str,
    links: Vec<String>,
    uses: Vec<Use>,
}

struct ContentDef {
    body: Arc<[u8]>,
    digests: Digests,
    format: Format,
    width: u32,
    height: u32,
    listed: bool,
    urls: Vec<String>,
}

struct Builder {
    rng: ChaCha8Rng,
    port: u16,
    contents: Vec<ContentDef>,
    resources: Resources,
    /// Absolute URL → content, for image URLs (redirect targets included).
    image_content: HashMap<String, usize>,
    redirects: HashMap<String, String>,
    fakes: HashSet<String>,
    broken: HashSet<String>,
    pages: Vec<Page>,
    page_html: Vec<String>,
}

const SIZES: [(u32, u32); 8] =
    [(64, 64), (120, 90), (200, 150), (160, 240), (320, 240), (48, 64), (480, 320), (256, 256)];

impl Builder {
    fn url(&self, host: &str, path: &str) -> String {
        format!("http://{host}:{}{path}", self.port)
    }

    fn add_content(&mut self, format: Format, listed: bool) -> usize {
        let seed = self.rng.random();
        let (width, height) = SIZES[self.rng.random_range(0..SIZES.len())];
        let bytes = images::generate(seed, width, height, format);
        let digests = Digests::of(&bytes);
        self.contents.push(ContentDef { body: bytes.into(), digests, format, width, height, listed, urls: Vec::new() });
        self.contents.len() - 1
    }

    /// Serves `content` at `host` + `path` with its proper media type (or `content_type`).
    fn serve_image(&mut self, content: usize, host: &str, path: &str, content_type: Option<&'static str>) -> String {
        let c = &self.contents[content];
        let resource =
            Resource::Bytes { body: c.body.clone(), content_type: content_type.unwrap_or(c.format.media_type()) };
        self.resources.insert((host.to_string(), path.to_string()), resource);
        let url = self.url(host, path);
        self.contents[content].urls.push(url.clone());
        self.image_content.insert(url.clone(), content);
        url
    }

    fn new_image(&mut self, host: &str, dir: &str, listed: bool) -> String {
        let format = if self.rng.random_bool(0.6) { Format::Jpeg } else { Format::Png };
        let c = self.add_content(format, listed);
        let path = format!("{dir}/{c:04}.{}", format.extension());
        self.serve_image(c, host, &path, None)
    }

    fn data_uri(&self, content: usize) -> String {
        let c = &self.contents[content];
        format!("data:{};base64,{}", c.format.media_type(), base64::engine::general_purpose::STANDARD.encode(&c.body))
    }

    fn data_id(&self, content: usize) -> String {
        let c = &self.contents[content];
        format!("data:{};blake3={}", c.format.media_type(), c.digests.hex(CryptoAlgo::Blake3))
    }

    /// Markup for an image use, in one of the ways pages embed images.
    /// `page_host` decides whether a relative form can be used.
    fn image_markup(&mut self, page_host: &str, urls: &[String]) -> (String, Vec<Use>) {
        let port = self.port;
        let rel = |u: &str| -> String {
            let prefix = format!("http://{page_host}:{port}");
            match u.strip_prefix(&prefix) {
                Some(path) => path.to_string(),
                // Protocol-relative form for other hosts.
                None => u.trim_start_matches("http:").to_string(),
            }
        };
        let a = &urls[0];
        let style = if urls.len() > 1 { self.rng.random_range(2..5) } else { self.rng.random_range(0..2) };
        let uses: Vec<Use> = urls.iter().map(|u| Use::Image(u.clone())).collect();
        let html = match style {
            0 => format!("<img src=\"{a}\" alt=\"picture\">"),
            1 => format!("<img alt=picture src='{}'>", rel(a)),
            2 => format!("<img src=\"{}\" srcset=\"{} 1x, {} 2x\" width=100>", rel(a), rel(a), rel(&urls[1])),
            3 => format!(
                "<picture><source srcset=\"{} 600w\" media=\"(min-width: 600px)\"><img src=\"{}\"></picture>",
                urls[1], a
            ),
            _ => format!("<a href=\"{}\"><img src=\"{}\" alt=thumb></a>", rel(&urls[1]), a),
        };
        (html, uses)
    }
}

pub(crate) fn registrable(host: &str) -> String {
    let labels: Vec<&str> = host.rsplitn(3, '.').collect();
    match labels.as_slice() {
        [tld, name, ..] => format!("{name}.{tld}"),
        _ => host.to_string(),
    }
}

pub(crate) fn host_of(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let end = rest.find(['/', ':']).unwrap_or(rest.len());
    &rest[..end]
}

pub(crate) fn path_of(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    rest.find('/').map_or("/", |i| &rest[i..])
}

type SiteHosts = Vec<(String, String)>;

/// The hosts of a web: per site `www` and `img`, then the CDN and the
/// out-of-scope site, each on the next address after [`WebSpec::ip_base`].
fn host_plan(spec: &WebSpec) -> (SiteHosts, String, String, Vec<HostInfo>) {
    let mut hosts = Vec::new();
    let mut add_host = |name: String| {
        let o = spec.ip_base.octets();
        let n = hosts.len() as u16 + 1;
        let ip = IpAddr::V4(Ipv4Addr::new(o[0], o[1], (n >> 8) as u8, n as u8));
        hosts.push(HostInfo { name: name.clone(), ip });
        name
    };
    let sites: SiteHosts = (0..spec.sites.max(1))
        .map(|i| (add_host(format!("www.site{i}.test")), add_host(format!("img.site{i}.test"))))
        .collect();
    let cdn = add_host("cdn.shared.test".to_string());
    let outside = add_host("www.outside.test".to_string());
    (sites, cdn, outside, hosts)
}

/// The hosts `spec` generates, with their addresses (known before the port is).
pub fn hosts(spec: &WebSpec) -> Vec<HostInfo> {
    host_plan(spec).3
}

/// Generates the web for `spec`, with every URL on `port`.
pub fn generate(spec: &WebSpec, port: u16) -> Web {
    // Every site needs one image and one page; listed images are among its images.
    let spec = &WebSpec {
        sites: spec.sites.max(1),
        pages_per_site: spec.pages_per_site.max(1),
        images_per_site: spec.images_per_site.max(1),
        listed_per_site: spec.listed_per_site.min(spec.images_per_site.max(1)),
        ..spec.clone()
    };
    let mut b = Builder {
        rng: ChaCha8Rng::seed_from_u64(spec.seed),
        port,
        contents: Vec::new(),
        resources: Resources::default(),
        image_content: HashMap::new(),
        redirects: HashMap::new(),
        fakes: HashSet::new(),
        broken: HashSet::new(),
        pages: Vec::new(),
        page_html: Vec::new(),
    };
    let (sites, cdn, outside, hosts) = host_plan(spec);

    // Contents shared by every site: CDN images (one listed) and two data: images.
    let cdn_urls: Vec<String> = (0..spec.cdn_images).map(|k| b.new_image(&cdn, "/c", k == 0)).collect();
    let data_listed = b.add_content(Format::Png, true);
    let data_common = b.add_content(Format::Png, false);

    // Per site: images (the first `listed_per_site` listed), pages, special cases.
    let mut site_images: Vec<Vec<String>> = Vec::new();
    for (i, (www, img)) in sites.iter().enumerate() {
        let urls: Vec<String> = (0..spec.images_per_site)
            .map(|k| {
                let listed = k < spec.listed_per_site;
                if b.rng.random_bool(0.7) {
                    b.new_image(img, "/img", listed)
                } else {
                    b.new_image(www, "/static", listed)
                }
            })
            .collect();
        site_images.push(urls);
        let _ = i;
    }

    for (i, (www, img)) in sites.iter().enumerate() {
        let n = spec.pages_per_site.max(1);
        let page_url =
            |b: &Builder, j: usize| if j == 0 { b.url(www, "/") } else { b.url(www, &format!("/page{j}.html")) };
        // Special URLs of this site.
        let redirect_target = {
            let c = b.add_content(Format::Jpeg, i % 2 == 1);
            b.serve_image(c, img, &format!("/img/{c:04}-moved.jpg"), None)
        };
        let redirect = b.url(img, &format!("/r/{i}"));
        b.resources.insert((img.clone(), format!("/r/{i}")), Resource::Redirect(path_of(&redirect_target).to_string()));
        b.redirects.insert(redirect.clone(), redirect_target);
        // A redirect to an image that is also embedded directly: fetched once.
        let redirect_dup = b.url(img, &format!("/r/{i}-dup"));
        b.resources.insert(
            (img.clone(), format!("/r/{i}-dup")),
            Resource::Redirect(site_images[i][spec.listed_per_site.min(site_images[i].len() - 1)].clone()),
        );
        b.redirects
            .insert(redirect_dup.clone(), site_images[i][spec.listed_per_site.min(site_images[i].len() - 1)].clone());
        let broken = b.url(www, &format!("/missing-{i}.html"));
        b.broken.insert(broken.clone());
        // An "image" URL that serves HTML dressed as JPEG: must not be hashed.
        let fake = b.url(img, &format!("/img/fake-{i}.jpg"));
        b.resources.insert(
            (img.clone(), format!("/img/fake-{i}.jpg")),
            Resource::Bytes {
                body: Arc::from(&b"<html><body>not a picture</body></html>"[..]),
                content_type: "image/jpeg",
            },
        );
        b.fakes.insert(fake.clone());
        // A real image served as text/html: hashed all the same.
        let mislabelled = {
            let c = b.add_content(Format::Png, false);
            b.serve_image(c, img, &format!("/img/{c:04}-mislabelled.png"), Some("text/html; charset=utf-8"))
        };
        // A listed image of the previous site, mirrored on the CDN and shown here.
        let prev = (i + spec.sites - 1) % spec.sites;
        let mirror = {
            let source = &site_images[prev][0];
            let c = b.image_content[source];
            b.serve_image(c, &cdn, &format!("/mirror/site{prev}-{c:04}.{}", b.contents[c].format.extension()), None)
        };

        // Distribute the site's images over its pages: image k lives on page k % n.
        let mut uses_per_page: Vec<Vec<String>> = vec![Vec::new(); n];
        for (k, u) in site_images[i].iter().enumerate() {
            uses_per_page[k % n].push(u.clone());
        }
        // CDN image k appears at least on site k % sites; more at random below.
        for (k, u) in cdn_urls.iter().enumerate() {
            if k % spec.sites == i {
                uses_per_page[k % n].push(u.clone());
            }
        }
        for page_uses in uses_per_page.iter_mut() {
            if b.rng.random_bool(0.5) {
                let u = site_images[i][b.rng.random_range(0..site_images[i].len())].clone();
                if !page_uses.contains(&u) {
                    page_uses.push(u);
                }
            }
            if !cdn_urls.is_empty() && b.rng.random_bool(0.6) {
                let u = cdn_urls[b.rng.random_range(0..cdn_urls.len())].clone();
                if !page_uses.contains(&u) {
                    page_uses.push(u);
                }
            }
        }
        uses_per_page[1 % n].push(redirect.clone());
        uses_per_page[(2 % n).min(n - 1)].push(mislabelled);
        uses_per_page[(3 % n).min(n - 1)].push(mirror);
        uses_per_page[0].push(redirect_dup);
        if i == 0 {
            uses_per_page[(4 % n).min(n - 1)].push(fake);
            // A JPEG cut after its first bytes: hashed, but not decodable for PDQ.
            let c = b.add_content(Format::Jpeg, false);
            b.contents[c].body = b.contents[c].body[..64].into();
            b.contents[c].digests = Digests::of(&b.contents[c].body);
            let broken = b.serve_image(c, img, &format!("/img/{c:04}-truncated.jpg"), None);
            uses_per_page[(5 % n).min(n - 1)].push(broken);
        }

        for (j, page_uses) in uses_per_page.iter().enumerate() {
            let url = page_url(&b, j);
            let mut links: Vec<(String, String)> = Vec::new(); // (markup href, absolute target)
            for child in [2 * j + 1, 2 * j + 2] {
                if child < n {
                    let target = page_url(&b, child);
                    let href = match b.rng.random_range(0..4) {
                        0 => target.clone(),
                        1 => format!("/page{child}.html"),
                        2 => format!("page{child}.html#section"),
                        _ => format!("HTTP://{}:{}/./page{child}.html", www.to_uppercase(), port),
                    };
                    links.push((href, target));
                }
            }
            if n > 1 {
                let extra = b.rng.random_range(0..n);
                links.push((format!("/page{extra}.html").replace("/page0.html", "/"), page_url(&b, extra)));
            }
            if j == 0 && spec.sites > 1 {
                let other = &sites[(i + 1) % spec.sites].0;
                let target = b.url(other, "/");
                links.push((target.clone(), target));
            }
            if j == 1 % n {
                let target = b.url(&outside, "/");
                links.push((target.clone(), target));
                links.push((broken.clone(), broken.clone()));
            }
            let mut page = Page {
                url: url.clone(),
                role: "site",
                links: links.iter().map(|l| l.1.clone()).collect(),
                uses: Vec::new(),
            };
            let mut body = String::new();
            let base = j == 2 % n && n > 2;
            let _ = writeln!(body, "<h1>Site {i}, page {j}</h1><p>Generated benign test page.</p>");
            let mut pending = page_uses.clone();
            pending.shuffle(&mut b.rng);
            while let Some(a) = pending.pop() {
                if base
                    && b.image_content.get(&a).is_some_and(|_| a.contains(&format!("//{img}:")))
                    && a.contains("/img/")
                {
                    // Relative to <base href="http://img…/img/">.
                    let name = a.rsplit('/').next().unwrap_or_default().to_string();
                    let _ = writeln!(body, "<img src=\"{name}\" alt=\"based\">");
                    page.uses.push(Use::Image(a));
                    continue;
                }
                let mut group = vec![a];
                if let Some(next) = pending.last() {
                    if b.rng.random_bool(0.4) && !b.redirects.contains_key(next) && !b.fakes.contains(next) {
                        group.push(pending.pop().unwrap_or_default());
                    }
                }
                let (html, uses) = b.image_markup(if base { "" } else { www }, &group);
                body.push_str(&html);
                body.push('\n');
                page.uses.extend(uses);
            }
            if j == 0 {
                let _ = writeln!(body, "<img src=\"{}\" alt=\"inline\">", b.data_uri(data_common));
                page.uses.push(Use::Data(data_common));
            }
            if i == 0 && j == 2 % n {
                let _ = writeln!(body, "<p><img alt=\"inline listed\" src=\"{}\"></p>", b.data_uri(data_listed));
                page.uses.push(Use::Data(data_listed));
            }
            body.push_str("<ul>\n");
            for (href, _) in &links {
                let href = if base && !href.starts_with("http") && !href.starts_with("HTTP") {
                    // Relative links would resolve against the base: write them absolute.
                    format!(
                        "{}{}",
                        b.url(www, ""),
                        if href.starts_with('/') { href.clone() } else { format!("/{href}") }
                    )
                } else {
                    href.clone()
                };
                let _ = writeln!(body, "<li><a href=\"{href}\">{href}</a></li>");
            }
            body.push_str("<li><a href=\"mailto:abuse@site.test\">contact</a> <a href=\"javascript:void(0)\">menu</a></li>\n</ul>\n");
            let head = if base { format!("<base href=\"{}\">", b.url(img, "/img/")) } else { String::new() };
            let html = format!(
                "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>site {i} page {j}</title>{head}</head>\n<body>\n{body}</body></html>\n"
            );
            b.page_html.push(html);
            b.pages.push(page);
        }

        // An orphan page: served, never linked; its listed image must never be found.
        let orphan_img = b.new_image(img, "/hidden", true);
        let html = format!("<!DOCTYPE html><html><body><img src=\"{orphan_img}\"></body></html>");
        b.page_html.push(html);
        b.pages.push(Page {
            url: b.url(www, "/orphan.html"),
            role: "orphan",
            links: Vec::new(),
            uses: vec![Use::Image(orphan_img)],
        });
    }

    // The outside site: linked from in-scope pages, out of scope itself.
    let outside_img = b.new_image(&outside, "/o", true);
    b.page_html.push(format!(
        "<!DOCTYPE html><html><body><img src=\"/o/{}\"></body></html>",
        outside_img.rsplit('/').next().unwrap_or_default()
    ));
    b.pages.push(Page {
        url: b.url(&outside, "/"),
        role: "outside",
        links: Vec::new(),
        uses: vec![Use::Image(outside_img)],
    });

    for (page, html) in b.pages.iter().zip(&b.page_html) {
        b.resources.insert(
            (host_of(&page.url).to_string(), path_of(&page.url).to_string()),
            Resource::Html(html.as_str().into()),
        );
    }

    let seeds: Vec<String> = sites.iter().map(|(www, _)| b.url(www, "/")).collect();
    let (manifest_pages, expected, reached_contents) = crawl_truth(&b, &seeds);
    let mut listed_algos = Vec::new();
    let mut decoder = ImageHasher::new(DecodeLimits::default(), Mode::Exact);
    let contents: Vec<ContentTruth> = b
        .contents
        .iter()
        .enumerate()
        .map(|(idx, c)| {
            let listed_by = c.listed.then(|| {
                let a = CryptoAlgo::ALL[listed_algos.len() % CryptoAlgo::ALL.len()];
                listed_algos.push((idx, a));
                a
            });
            let (reachable, pages) = match reached_contents.get(&idx) {
                Some(p) => (true, p.iter().cloned().collect()),
                None => (false, Vec::new()),
            };
            let mut urls = c.urls.clone();
            if urls.is_empty() {
                urls.push(b.data_id(idx));
            }
            let (pdq, pdq_quality, pdq_error) = match decoder.pdq(&c.body) {
                Ok(img) => (Some(img.pdq.hash.to_hex()), Some(img.pdq.quality), None),
                Err(e) => (None, None, Some(e.code().to_string())),
            };
            ContentTruth {
                pdq,
                pdq_quality,
                pdq_error,
                digests: c.digests,
                format: c.format,
                width: c.width,
                height: c.height,
                listed: c.listed,
                listed_by,
                reachable,
                urls,
                pages,
            }
        })
        .collect();

    let mut csv = String::from("id,label,md5,sha1,sha256,blake3\n");
    for (n, (idx, algo)) in listed_algos.iter().enumerate() {
        let mut cells = [""; 4].map(String::from);
        let pos = CryptoAlgo::ALL.iter().position(|a| a == algo).unwrap_or(0);
        cells[pos] = contents[*idx].digests.hex(*algo);
        let _ = writeln!(csv, "TW-{n:04},generated benign test image,{}", cells.join(","));
    }
    // Decoys: listed hashes that nothing on the web has.
    for d in 0..5u32 {
        let digests = Digests::of(format!("decoy {} {d}", spec.seed).as_bytes());
        let algo = CryptoAlgo::ALL[d as usize % 4];
        let mut cells = [""; 4].map(String::from);
        cells[d as usize % 4] = digests.hex(algo);
        let _ = writeln!(csv, "DECOY-{d},listed hash found nowhere,{}", cells.join(","));
    }

    let manifest = Manifest { spec: spec.clone(), port, seeds, hosts, pages: manifest_pages, contents, expected };
    Web { resources: b.resources, manifest, reference_csv: csv }
}

/// Breadth-first walk of what a crawler with domain scope must reach.
fn crawl_truth(b: &Builder, seeds: &[String]) -> (Vec<PageTruth>, Expected, HashMap<usize, BTreeSet<String>>) {
    let by_url: HashMap<&str, usize> = b.pages.iter().enumerate().map(|(i, p)| (p.url.as_str(), i)).collect();
    let scope: HashSet<String> = seeds.iter().map(|s| registrable(host_of(s))).collect();
    let mut depth: Vec<Option<u32>> = vec![None; b.pages.len()];
    let mut queue = VecDeque::new();
    for s in seeds {
        if let Some(&i) = by_url.get(s.as_str()) {
            if depth[i].is_none() {
                depth[i] = Some(0);
                queue.push_back(i);
            }
        }
    }
    let mut images = BTreeSet::new();
    let mut redirects = BTreeSet::new();
    let mut fakes = BTreeSet::new();
    let mut broken = BTreeSet::new();
    let mut data_images = 0u64;
    let mut reached: HashMap<usize, BTreeSet<String>> = HashMap::new();
    while let Some(i) = queue.pop_front() {
        let page = &b.pages[i];
        let d = depth[i].unwrap_or(0);
        for link in &page.links {
            if !scope.contains(&registrable(host_of(link))) {
                continue;
            }
            if b.broken.contains(link) {
                broken.insert(link.clone());
            } else if let Some(&t) = by_url.get(link.as_str()) {
                if depth[t].is_none() {
                    depth[t] = Some(d + 1);
                    queue.push_back(t);
                }
            }
        }
        for u in &page.uses {
            match u {
                Use::Data(c) => {
                    data_images += 1;
                    reached.entry(*c).or_default().insert(page.url.clone());
                }
                Use::Image(url) => {
                    let target = match b.redirects.get(url) {
                        Some(t) => {
                            redirects.insert(url.clone());
                            t
                        }
                        None => url,
                    };
                    if b.fakes.contains(target) {
                        fakes.insert(target.clone());
                    } else if let Some(&c) = b.image_content.get(target) {
                        images.insert(target.clone());
                        reached.entry(c).or_default().insert(page.url.clone());
                    }
                }
            }
        }
    }
    let pages: Vec<PageTruth> = b
        .pages
        .iter()
        .zip(&depth)
        .map(|(p, d)| PageTruth { url: p.url.clone(), reachable: d.is_some(), depth: *d, role: p.role.to_string() })
        .collect();
    let mut failed = BTreeMap::new();
    if !broken.is_empty() {
        failed.insert("http_status".to_string(), broken.len() as u64);
    }
    if !fakes.is_empty() {
        failed.insert("not_an_image".to_string(), fakes.len() as u64);
    }
    let expected = Expected {
        pages: depth.iter().filter(|d| d.is_some()).count() as u64,
        images: images.len() as u64,
        data_images,
        redirects: redirects.len() as u64,
        failed,
        contents: reached.len() as u64,
        listed: reached.keys().filter(|c| b.contents[**c].listed).count() as u64,
        max_depth: depth.iter().flatten().copied().max().unwrap_or(0),
    };
    (pages, expected, reached)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generation_is_deterministic_and_port_only_changes_urls() {
        let spec = WebSpec::default();
        let a = generate(&spec, 8080);
        let b = generate(&spec, 8080);
        assert_eq!(a.manifest, b.manifest);
        assert_eq!(a.reference_csv, b.reference_csv);
        let c = generate(&spec, 9090);
        assert_eq!(a.manifest.expected, c.manifest.expected);
        let blake = |w: &Web| w.manifest.contents.iter().map(|c| c.digests.blake3).collect::<Vec<_>>();
        assert_eq!(blake(&a), blake(&c));
    }

    #[test]
    fn ground_truth_has_every_class_of_case() {
        let web = generate(&WebSpec::default(), 8080);
        let m = web.manifest();
        let e = &m.expected;
        assert_eq!(e.pages, 4 * 10, "every site page is reachable: {e:?}");
        assert!(e.max_depth >= 1 && e.max_depth <= 3, "a heap of 10 pages is 3 deep at most: {e:?}");
        assert_eq!(e.redirects, 8);
        assert_eq!(e.failed.get("http_status"), Some(&4));
        assert_eq!(e.failed.get("not_an_image"), Some(&1));
        assert_eq!(e.data_images, 4 + 1);
        // 3 per site, the listed CDN image, the listed data: image, 2 redirect targets.
        assert_eq!(e.listed, 4 * 3 + 1 + 1 + 2, "{e:?}");
        // Orphan and outside listed images exist but are unreachable.
        let unreachable_listed = m.contents.iter().filter(|c| c.listed && !c.reachable).count();
        assert_eq!(unreachable_listed, 4 + 1);
        assert!(m.pages.iter().filter(|p| p.role != "site").all(|p| !p.reachable));
        // Every algorithm lists something.
        for a in CryptoAlgo::ALL {
            assert!(m.contents.iter().any(|c| c.listed_by == Some(a) && c.reachable), "{a}");
        }
        // One content is served at two URLs (the CDN mirror).
        assert!(m.contents.iter().any(|c| c.listed && c.urls.len() >= 2));
        assert_eq!(web.reference_csv().lines().count(), 1 + m.contents.iter().filter(|c| c.listed).count() + 5);
    }

    #[test]
    fn registrable_domain_of_test_hosts() {
        assert_eq!(registrable("img.site3.test"), "site3.test");
        assert_eq!(registrable("site3.test"), "site3.test");
        assert_eq!(host_of("http://www.a.test:80/x"), "www.a.test");
        assert_eq!(path_of("http://www.a.test:80/x/y.png"), "/x/y.png");
        assert_eq!(path_of("http://www.a.test:80"), "/");
    }
}
