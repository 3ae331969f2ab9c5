//! The trap web over real loopback HTTP: every trap behaves as its
//! manifest says, quickly and within bounds.

use std::future::Future;
use std::io::Read as _;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use hashscan_testweb::{TrapSpec, TrapWeb};
use reqwest::header::{HeaderMap, HeaderValue};
use reqwest::redirect::Policy;
use reqwest::{Client, StatusCode};

const SLOW: Duration = Duration::from_millis(300);

fn spec() -> TrapSpec {
    TrapSpec { slow_delay: SLOW, ..TrapSpec::default() }
}

/// Every test runs under a hard time limit.
async fn bounded<F: Future<Output = ()>>(f: F) {
    tokio::time::timeout(Duration::from_secs(60), f).await.expect("test took too long");
}

/// A client that sees the wire as it is: no redirects followed, no
/// decompression, every trap name pinned to its address.
fn client(web: &TrapWeb, timeout: Duration) -> Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut b = Client::builder().no_gzip().no_proxy().redirect(Policy::none()).timeout(timeout);
    for h in &web.manifest().hosts {
        b = b.resolve(&h.name, SocketAddr::new(h.ip, web.port()));
    }
    b.build().unwrap()
}

fn url(web: &TrapWeb, host: &str, path: &str) -> String {
    format!("http://{host}:{}{path}", web.port())
}

async fn get(c: &Client, u: &str) -> (StatusCode, HeaderMap, Vec<u8>) {
    let r = c.get(u).send().await.unwrap_or_else(|e| panic!("{u}: {e}"));
    let status = r.status();
    let headers = r.headers().clone();
    let body = r.bytes().await.unwrap().to_vec();
    (status, headers, body)
}

fn text(body: &[u8]) -> String {
    String::from_utf8_lossy(body).into_owned()
}

fn header<'a>(h: &'a HeaderMap, name: &str) -> &'a str {
    h.get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
}

fn gunzip(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(bytes).read_to_end(&mut out).unwrap();
    out
}

#[tokio::test]
async fn robots_files_say_what_the_manifest_says() {
    bounded(async {
        let web = TrapWeb::start(spec(), 0).await.unwrap();
        let c = client(&web, Duration::from_secs(5));
        let m = web.manifest();
        let (s, h, body) = get(&c, &url(&web, "robots.trap.test", "/robots.txt")).await;
        assert_eq!(s, 200);
        assert!(header(&h, "content-type").starts_with("text/plain"));
        let body = text(&body);
        assert!(body.contains("User-agent: otherbot\nDisallow: /\n"), "{body}");
        assert!(body.contains("User-agent: *\nDisallow: /private/\n"), "{body}");
        assert!(body.find("otherbot") < body.find("User-agent: *"), "the unrelated group comes first");
        assert_eq!(m.disallowed, vec![("robots.trap.test".to_string(), "/private/".to_string())]);

        let (s, _, body) = get(&c, &url(&web, "slowpoke.trap.test", "/robots.txt")).await;
        assert_eq!((s, text(&body)), (StatusCode::OK, "User-agent: *\nCrawl-delay: 2\n".to_string()));
        assert_eq!(m.crawl_delay, vec![("slowpoke.trap.test".to_string(), 2)]);

        let (s, _, _) = get(&c, &url(&web, "busy.trap.test", "/robots.txt")).await;
        assert_eq!(s, 404, "no robots.txt: everything allowed");
        let (s, _, _) = get(&c, &url(&web, "down.trap.test", "/robots.txt")).await;
        assert_eq!(s, 500);
        assert_eq!(m.robots_unavailable, vec!["down.trap.test".to_string()]);
        // down's pages exist all the same: only robots keeps a crawler out.
        let (s, _, body) = get(&c, &url(&web, "down.trap.test", "/")).await;
        assert_eq!(s, 200);
        assert!(text(&body).contains("/listed.png"));

        // The robots page embeds the private listed pictures and the allowed one.
        let (_, _, body) = get(&c, &url(&web, "robots.trap.test", "/")).await;
        let body = text(&body);
        for src in ["/private/listed-1.png", "/private/listed-2.jpg", "/public-listed.png", "/private/secret.html"] {
            assert!(body.contains(&format!("\"{src}\"")), "{src} in {body}");
        }
        let (s, _, body) = get(&c, &url(&web, "robots.trap.test", "/nothing-here")).await;
        assert_eq!((s, text(&body)), (StatusCode::NOT_FOUND, "not found".to_string()));
        web.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn busy_throttles_then_answers_and_always_busy_never_does() {
    bounded(async {
        let web = TrapWeb::start(TrapSpec { throttle_first: 2, retry_after_secs: 3, ..spec() }, 0).await.unwrap();
        let c = client(&web, Duration::from_secs(5));
        let busy = url(&web, "busy.trap.test", "/busy.html");
        for _ in 0..2 {
            let (s, h, _) = get(&c, &busy).await;
            assert_eq!(s, 429);
            assert_eq!(header(&h, "retry-after"), "3");
        }
        let (s, h, body) = get(&c, &busy).await;
        assert_eq!(s, 200);
        assert!(header(&h, "retry-after").is_empty());
        assert!(text(&body).contains("/busy.png"));
        let (s, h, _) = get(&c, &url(&web, "busy.trap.test", "/busy.png")).await;
        assert_eq!((s, header(&h, "content-type")), (StatusCode::OK, "image/png"));
        for _ in 0..3 {
            let (s, h, _) = get(&c, &url(&web, "busy.trap.test", "/always-busy.html")).await;
            assert_eq!(s, 503);
            assert_eq!(header(&h, "retry-after"), "3");
        }
        let failures = &web.manifest().expected_failures;
        assert!(failures.contains(&(url(&web, "busy.trap.test", "/always-busy.html"), "throttled".to_string())));
        web.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn etag_revalidation_and_generations() {
    bounded(async {
        let web = TrapWeb::start(spec(), 0).await.unwrap();
        let c = client(&web, Duration::from_secs(5));
        let page = url(&web, "etag.trap.test", "/page.html");
        let (s, h, body) = get(&c, &page).await;
        assert_eq!(s, 200);
        assert!(text(&body).contains("/photo.png"));
        let etag = header(&h, "etag").to_string();
        assert!(etag.starts_with("\"g0-"), "{etag}");
        assert!(!header(&h, "last-modified").is_empty());

        let r = c.get(&page).header("if-none-match", &etag).send().await.unwrap();
        assert_eq!(r.status(), 304);
        assert_eq!(r.headers().get("etag").unwrap(), etag.as_str());
        assert!(r.bytes().await.unwrap().is_empty());
        // Another resource's ETag does not match.
        let r = c.get(url(&web, "etag.trap.test", "/photo.png")).header("if-none-match", &etag).send().await.unwrap();
        assert_eq!(r.status(), 200);

        web.set_etag_generation(1);
        let r = c
            .get(&page)
            .header("if-none-match", &etag)
            .header("if-modified-since", "Wed, 01 Jan 2025 00:00:00 GMT")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "a new generation has a new ETag");
        let new_etag = r.headers().get("etag").unwrap().to_str().unwrap().to_string();
        assert!(new_etag.starts_with("\"g1-") && new_etag != etag, "{new_etag}");
        assert_eq!(r.bytes().await.unwrap(), body, "bodies stay the same");

        let log = web.access_log();
        let conditional: Vec<_> = log.iter().filter(|e| e.if_none_match.as_deref() == Some(etag.as_str())).collect();
        assert_eq!(conditional.iter().map(|e| e.status).collect::<Vec<_>>(), vec![304, 200, 200]);
        assert!(log.iter().any(|e| e.if_modified_since.as_deref() == Some("Wed, 01 Jan 2025 00:00:00 GMT")));
        assert_eq!(conditional[0].bytes, 0);
        assert_eq!(conditional[2].bytes, body.len() as u64);
        web.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn gzip_page_and_gzip_bomb() {
    bounded(async {
        let web = TrapWeb::start(spec(), 0).await.unwrap();
        let c = client(&web, Duration::from_secs(10));
        let r = c
            .get(url(&web, "broken.trap.test", "/gzipped.html"))
            .header("accept-encoding", "gzip")
            .send()
            .await
            .unwrap();
        assert_eq!(header(r.headers(), "content-encoding"), "gzip");
        assert!(header(r.headers(), "content-type").starts_with("text/html"));
        let html = text(&gunzip(&r.bytes().await.unwrap()));
        assert!(html.starts_with("<!DOCTYPE html>") && html.contains("<img src=\"/in-gzip.png\""), "{html}");
        let (s, h, png) = get(&c, &url(&web, "broken.trap.test", "/in-gzip.png")).await;
        assert_eq!((s, header(&h, "content-type")), (StatusCode::OK, "image/png"));
        assert!(png.starts_with(b"\x89PNG"));

        let (s, h, bomb) = get(&c, &url(&web, "broken.trap.test", "/bomb.html")).await;
        assert_eq!(s, 200);
        assert_eq!(header(&h, "content-encoding"), "gzip");
        assert!(header(&h, "content-type").starts_with("text/html"));
        assert!(bomb.len() < 200 << 10, "compressed bomb is {} bytes", bomb.len());
        // Decompress as a stream, never holding it: 64 MiB of spaces.
        let mut decoder = flate2::read::GzDecoder::new(&bomb[..]);
        let mut buf = vec![0u8; 1 << 16];
        let mut total = 0usize;
        loop {
            let n = decoder.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            assert!(buf[..n].iter().all(|b| *b == b' '));
            total += n;
        }
        assert_eq!(total, 64 << 20);

        let log = web.access_log();
        let gz = log.iter().find(|e| e.path == "/gzipped.html").unwrap();
        assert_eq!(gz.accept_encoding.as_deref(), Some("gzip"));
        let b = log.iter().find(|e| e.path == "/bomb.html").unwrap();
        assert_eq!(b.bytes, bomb.len() as u64, "bytes as sent, compressed");
        assert!(web
            .manifest()
            .expected_failures
            .contains(&(url(&web, "broken.trap.test", "/bomb.html"), "too_large".into())));
        web.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn broken_images_are_as_advertised() {
    bounded(async {
        let web = TrapWeb::start(spec(), 0).await.unwrap();
        let c = client(&web, Duration::from_secs(5));
        let m = web.manifest();
        let u = |p: &str| url(&web, "broken.trap.test", p);

        let (s, h, png) = get(&c, &u("/huge.png")).await;
        assert_eq!((s, header(&h, "content-type")), (StatusCode::OK, "image/png"));
        assert!(png.len() < 1024, "{} bytes", png.len());
        assert!(png.starts_with(b"\x89PNG\r\n\x1a\n") && &png[12..16] == b"IHDR");
        assert_eq!(u32::from_be_bytes(png[16..20].try_into().unwrap()), 100_000);
        assert_eq!(u32::from_be_bytes(png[20..24].try_into().unwrap()), 100_000);

        let (s, _, _) = get(&c, &u("/missing.png")).await;
        assert_eq!(s, 404);
        let (_, h, jpg) = get(&c, &u("/truncated.jpg")).await;
        assert_eq!(header(&h, "content-type"), "image/jpeg");
        assert!(jpg.starts_with(&[0xFF, 0xD8]) && !jpg.ends_with(&[0xFF, 0xD9]));
        let (_, h, png) = get(&c, &u("/mislabelled.png")).await;
        assert!(header(&h, "content-type").starts_with("text/html"));
        assert!(png.starts_with(b"\x89PNG"));
        let (_, h, fake) = get(&c, &u("/fake.jpg")).await;
        assert_eq!(header(&h, "content-type"), "image/jpeg");
        assert!(text(&fake).starts_with("<!DOCTYPE html>"));

        // Every hashed image's BLAKE3 in the manifest is what is served.
        for i in m.images.iter().filter(|i| i.url.contains("//broken.trap.test:")) {
            let (s, _, body) = get(&c, &i.url).await;
            assert_eq!(s, 200, "{}", i.url);
            assert_eq!(blake3_hex(&body), i.blake3, "{}", i.url);
        }
        assert!(m.pdq_failures.contains(&u("/huge.png")));
        let reasons: Vec<(&str, &str)> =
            m.expected_failures.iter().map(|(u, r)| (u.rsplit('/').next().unwrap(), r.as_str())).collect();
        assert!(reasons.contains(&("missing.png", "http_status")));
        assert!(reasons.contains(&("fake.jpg", "not_an_image")));
        web.shutdown().await;
    })
    .await;
}

fn blake3_hex(bytes: &[u8]) -> String {
    hashscan_hash::Digests::of(bytes).hex(hashscan_hash::CryptoAlgo::Blake3)
}

#[tokio::test]
async fn aliases_share_an_address_and_both_answer() {
    bounded(async {
        let web = TrapWeb::start(spec(), 0).await.unwrap();
        let c = client(&web, Duration::from_secs(5));
        let m = web.manifest();
        let ip_of = |n: &str| m.hosts.iter().find(|h| h.name == n).unwrap().ip;
        let ip = ip_of("alias-a.trap.test");
        assert_eq!(ip, ip_of("alias-b.trap.test"));
        assert_eq!(m.aliases, vec![(vec!["alias-a.trap.test".to_string(), "alias-b.trap.test".to_string()], ip)]);
        let mut ips: Vec<_> = m.hosts.iter().map(|h| h.ip).collect();
        ips.sort();
        ips.dedup();
        assert_eq!(ips.len(), m.hosts.len() - 1, "only the aliases share");

        let (_, _, a) = get(&c, &url(&web, "alias-a.trap.test", "/")).await;
        let (_, _, b) = get(&c, &url(&web, "alias-b.trap.test", "/")).await;
        assert_ne!(a, b);
        let (_, _, a1) = get(&c, &url(&web, "alias-a.trap.test", "/img/1.png")).await;
        let (_, _, b1) = get(&c, &url(&web, "alias-b.trap.test", "/img/1.png")).await;
        assert_ne!(a1, b1, "each name has pictures of its own");
        let (s, _, bare) = get(&c, &format!("http://{ip}:{}/", web.port())).await;
        assert_eq!((s, &bare), (StatusCode::OK, &a), "the bare address serves alias-a");
        let log = web.access_log();
        assert!(log.iter().all(|e| e.local_ip == ip));
        assert_eq!(log.last().unwrap().host, ip.to_string());
        web.shutdown().await;
    })
    .await;
}

/// The `href`s of a page, unescaped.
fn hrefs(html: &str) -> Vec<String> {
    html.split("<a href=\"").skip(1).filter_map(|s| s.split('"').next()).map(|h| h.replace("&amp;", "&")).collect()
}

#[tokio::test]
async fn calendar_and_friends_never_run_out_of_urls() {
    bounded(async {
        let web = TrapWeb::start(spec(), 0).await.unwrap();
        let c = client(&web, Duration::from_secs(5));
        let base = url(&web, "calendar.trap.test", "");
        let (_, _, home) = get(&c, &format!("{base}/")).await;
        let starts = hrefs(&text(&home));
        assert_eq!(starts.iter().map(|s| format!("{base}{s}")).collect::<Vec<_>>(), web.manifest().infinite_spaces);
        let mut seen = std::collections::HashSet::new();
        // Follow the last link of each space 12 times: every step is a new URL.
        for start in &starts {
            let mut path = start.clone();
            for _ in 0..12 {
                assert!(seen.insert(path.clone()), "{path} came back");
                let (s, _, body) = get(&c, &format!("{base}{path}")).await;
                assert_eq!(s, 200, "{path}");
                let body = text(&body);
                assert!(body.contains("<img src=\"/cal.png\""));
                let next = hrefs(&body).pop().unwrap();
                path = match next.strip_prefix('/') {
                    Some(_) => next,
                    // Relative: resolve against the current directory.
                    None => format!("{}{next}", &path[..path.rfind('/').unwrap() + 1]),
                };
            }
        }
        assert!(seen.contains("/calendar?month=2027-10"));
        assert!(seen.iter().any(|p| p.len() > 2000 && p.starts_with("/long/")));
        assert!(seen.contains(&format!("/loop/{}", "x/".repeat(12))));
        let (_, _, search) = get(&c, &format!("{base}/search?q=1")).await;
        assert_eq!(hrefs(&text(&search)).len(), 4, "each search page fans out");
        web.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn redirects_loop_and_chain() {
    bounded(async {
        let web = TrapWeb::start(spec(), 0).await.unwrap();
        let c = client(&web, Duration::from_secs(5));
        let u = |p: &str| url(&web, "loop.trap.test", p);
        let (s, h, _) = get(&c, &u("/redirect/a")).await;
        assert_eq!((s, header(&h, "location")), (StatusCode::FOUND, "/redirect/b"));
        let (_, h, _) = get(&c, &u("/redirect/b")).await;
        assert_eq!(header(&h, "location"), "/redirect/a");
        let mut at = "/chain/0".to_string();
        for k in 1..=30 {
            let (s, h, _) = get(&c, &u(&at)).await;
            assert_eq!(s, 302);
            at = header(&h, "location").to_string();
            assert_eq!(at, format!("/chain/{k}"));
        }
        assert_eq!(web.manifest().redirect_traps, vec![u("/redirect/a"), u("/chain/0")]);
        web.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn slow_host_stalls_but_logs_on_arrival() {
    bounded(async {
        let web = TrapWeb::start(spec(), 0).await.unwrap();
        let patient = client(&web, Duration::from_secs(5));
        let impatient = client(&web, SLOW / 3);
        let headers = url(&web, "slow.trap.test", "/slow-headers.html");
        let body = url(&web, "slow.trap.test", "/slow-body.html");

        // Slow headers: an impatient client times out; the server logged it on arrival.
        let t0 = Instant::now();
        let err = impatient.get(&headers).send().await.unwrap_err();
        assert!(err.is_timeout(), "{err}");
        assert!(t0.elapsed() < SLOW);
        assert!(web.access_log().iter().any(|e| e.path == "/slow-headers.html" && e.status == 200));

        let t0 = Instant::now();
        let (s, _, b) = get(&patient, &headers).await;
        assert_eq!(s, 200);
        assert!(text(&b).contains("Finally"));
        assert!(t0.elapsed() >= SLOW);

        // Slow body: headers at once, the body takes twice the delay.
        let t0 = Instant::now();
        let r = patient.get(&body).send().await.unwrap();
        assert!(t0.elapsed() < SLOW, "headers came after {:?}", t0.elapsed());
        let len = r.content_length().unwrap();
        let b = r.bytes().await.unwrap();
        assert!(t0.elapsed() >= SLOW * 2 * 9 / 10, "body came after {:?}", t0.elapsed());
        assert_eq!(b.len() as u64, len);
        assert!(text(&b).ends_with("</body></html>\n"));
        let entry = web.access_log().into_iter().rfind(|e| e.path == "/slow-body.html").unwrap();
        assert_eq!(entry.bytes, len);

        // The impatient client gives up on the body too.
        let t0 = Instant::now();
        let result = match impatient.get(&body).send().await {
            Ok(r) => r.bytes().await.map(|_| ()),
            Err(e) => Err(e),
        };
        assert!(result.unwrap_err().is_timeout());
        assert!(t0.elapsed() < SLOW * 2);

        // Another host answers at once while slow responses are pending.
        let pending = tokio::spawn({
            let c = patient.clone();
            let body = body.clone();
            async move { c.get(&body).send().await.map(|r| r.status()) }
        });
        let t0 = Instant::now();
        let (s, _, _) = get(&patient, &url(&web, "robots.trap.test", "/")).await;
        assert_eq!(s, 200);
        assert!(t0.elapsed() < SLOW);
        let _ = pending.await;

        let failures = &web.manifest().expected_failures;
        for u in [&headers, &body] {
            assert!(failures.contains(&(u.clone(), "timeout".to_string())), "{u}");
        }
        // Shutdown cuts in-flight slow responses short instead of waiting.
        let stuck = tokio::spawn({
            let c = patient.clone();
            async move { c.get(&headers).send().await.map(|r| r.status()) }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        let t0 = Instant::now();
        web.shutdown().await;
        assert!(t0.elapsed() < SLOW, "shutdown took {:?}", t0.elapsed());
        let _ = stuck.await;
    })
    .await;
}

#[tokio::test]
async fn manifest_and_reference_file_agree() {
    bounded(async {
        let web = TrapWeb::start(spec(), 0).await.unwrap();
        let m = web.manifest();
        assert_eq!(m.seeds.len(), m.hosts.len(), "one seed per host name");
        assert!(m.hosts.iter().all(|h| h.name.ends_with(".trap.test")));
        assert_eq!(web.allow_net(), "127.77.1.0/24");
        assert_eq!(m.resolve_flags().len(), m.hosts.len());
        assert!(m.resolve_flags().contains(&"robots.trap.test=127.77.1.1".to_string()));
        let csv = web.reference_csv();
        assert!(csv.starts_with("id,label,md5,sha1,sha256,blake3\n"));
        let listed: Vec<_> = m.images.iter().filter(|i| i.listed).collect();
        assert_eq!(listed.len(), m.listed_allowed.len() + m.listed_disallowed.len());
        assert_eq!(m.listed_allowed.len(), 1);
        assert!(m.listed_disallowed.len() >= 3);
        assert_eq!(csv.lines().filter(|l| l.starts_with("TRAP-0")).count(), listed.len());
        for (u, reason) in &m.expected_failures {
            let host = u.trim_start_matches("http://").split(':').next().unwrap();
            assert!(m.hosts.iter().any(|h| h.name == host), "{u}");
            let known =
                ["http_status", "not_an_image", "too_large", "timeout", "throttled", "robots", "robots_unavailable"];
            assert!(known.contains(&reason.as_str()), "{reason}");
        }
        let robots: Vec<_> = m.expected_failures.iter().filter(|(_, r)| r == "robots").collect();
        assert_eq!(robots.len(), 3);
        // Seeds answer (except that nothing but robots.txt may be fetched from down; we check it serves anyway).
        let c = client(&web, Duration::from_secs(5));
        for s in &m.seeds {
            let (status, h, _) = get(&c, s).await;
            assert_eq!(status, 200, "{s}");
            assert!(header(&h, "content-type").starts_with("text/html"));
        }
        let mut req = HeaderMap::new();
        req.insert("user-agent", HeaderValue::from_static("trap-test/1"));
        let _ = c.get(&m.seeds[0]).headers(req).send().await.unwrap();
        let last = web.access_log().pop().unwrap();
        assert_eq!(last.user_agent.as_deref(), Some("trap-test/1"));
        assert_eq!(last.local_ip.to_string(), "127.77.1.1");
        web.shutdown().await;
    })
    .await;
}
