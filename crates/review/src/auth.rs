//! Who is asking: passwords (Argon2id), sessions (cookie + CSRF token), API
//! tokens (Bearer), roles, and the login rate limit.
//!
//! Tokens are 256 random bits from the operating system's generator
//! (through `rand`'s thread generator, a CSPRNG seeded from it); the store
//! keeps only their SHA-256, so a copy of the database opens no session.

use std::net::{IpAddr, SocketAddr};

use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::Argon2;
use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, StatusCode};
use hashscan_store::review::{Actor, NewAudit, User};
use ipnet::IpNet;
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::error::{ApiError, ReviewError};
use crate::{ms, App};

/// Shortest password accepted.
pub const MIN_PASSWORD_LEN: usize = 12;
/// Longest password accepted (bytes): hashing a megabyte per guess would
/// be a cheap way to load the server.
pub const MAX_PASSWORD_LEN: usize = 1024;
/// Name of the session cookie.
pub(crate) const COOKIE: &str = "hashscan_session";

/// Hashes a password with Argon2id (default parameters, random salt) into
/// a PHC string; refuses one shorter than [`MIN_PASSWORD_LEN`] characters
/// or longer than [`MAX_PASSWORD_LEN`] bytes.
pub fn hash_password(password: &str) -> Result<String, ReviewError> {
    if password.chars().count() < MIN_PASSWORD_LEN {
        return Err(ReviewError::Password(format!("the password must have at least {MIN_PASSWORD_LEN} characters")));
    }
    if password.len() > MAX_PASSWORD_LEN {
        return Err(ReviewError::Password(format!("the password must have at most {MAX_PASSWORD_LEN} bytes")));
    }
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| ReviewError::Password(format!("cannot hash the password: {e}")))
}

/// Whether `password` matches a PHC string made by [`hash_password`]
/// (false, too, for a malformed stored hash).
pub fn verify_password(password: &str, phc: &str) -> bool {
    match PasswordHash::new(phc) {
        Ok(parsed) => Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok(),
        Err(_) => false,
    }
}

/// 256 random bits, hex.
pub(crate) fn random_token() -> String {
    let mut b = [0u8; 32];
    rand::rng().fill_bytes(&mut b);
    hex::encode(b)
}

/// A new API token (`hst_` and 64 hex digits) and the hash to store.
pub fn new_api_token() -> (String, [u8; 32]) {
    let t = format!("hst_{}", random_token());
    let h = token_hash(&t);
    (t, h)
}

/// SHA-256 of a session or API token: what the store keeps.
pub fn token_hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// Equality in time independent of where the inputs differ.
pub(crate) fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The client's address, when known: the connection's peer, or — when the
/// peer is a trusted reverse proxy — the address that proxy was reached
/// from, as `X-Forwarded-For` records it. The login rate limit and the
/// audit log use it, so behind a proxy they see analysts, not the proxy.
#[derive(Debug, Clone, Default)]
pub(crate) struct ClientIp(pub Option<String>);

impl FromRequestParts<App> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, Self::Rejection> {
        let peer = parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip());
        let trusted = &app.config().trusted_proxies;
        Ok(Self(peer.map(|p| client_address(p, &parts.headers, trusted).to_string())))
    }
}

/// The client behind `peer`: walking `X-Forwarded-For` from the right (the
/// hop nearest to us), every address a trusted proxy vouches for is taken
/// until one is not itself a trusted proxy. A header from an untrusted
/// peer is ignored (anyone can send one); an entry that is not an address
/// ends the walk at the last proxy that vouched for it.
pub(crate) fn client_address(peer: IpAddr, headers: &HeaderMap, trusted: &[IpNet]) -> IpAddr {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|n| n.contains(ip));
    let mut client = peer;
    if !is_trusted(&client) {
        return client;
    }
    let hops: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect();
    for hop in hops.iter().rev() {
        match hop.parse::<IpAddr>() {
            Ok(ip) => {
                client = ip;
                if !is_trusted(&client) {
                    break;
                }
            }
            Err(_) => break,
        }
    }
    client
}

/// An authenticated caller.
#[derive(Debug, Clone)]
pub(crate) struct Caller {
    pub user: User,
    /// The session's CSRF token and the hash of its cookie; `None` for an API token.
    pub session: Option<(String, [u8; 32])>,
    pub ip: Option<String>,
}

impl Caller {
    pub fn actor(&self) -> Actor {
        Actor { name: self.user.name.clone(), ip: self.ip.clone() }
    }

    /// A state change by cookie needs the session's CSRF token.
    pub fn check_csrf(&self, given: Option<&str>) -> Result<(), ApiError> {
        match &self.session {
            None => Ok(()),
            Some((csrf, _)) if given.is_some_and(|g| same(g, csrf)) => Ok(()),
            Some(_) => Err(ApiError {
                field: Some("csrf".into()),
                ..ApiError::forbidden("missing or wrong CSRF token (form field `csrf`, or header X-CSRF-Token)")
            }),
        }
    }

    /// The CSRF token to put in forms.
    pub fn csrf(&self) -> &str {
        self.session.as_ref().map_or("", |(c, _)| c.as_str())
    }

    /// Refuses a caller whose role is not one of `roles`.
    pub fn require(&self, roles: &[&str]) -> Result<(), ApiError> {
        if roles.contains(&self.user.role.as_str()) {
            Ok(())
        } else {
            Err(ApiError::forbidden(format!("this needs the role {} (you are {})", roles.join(" or "), self.user.role)))
        }
    }

    pub fn is_lead(&self) -> bool {
        matches!(self.user.role.as_str(), "lead" | "admin")
    }
}

/// The value of the session cookie, if the request has one.
pub(crate) fn session_cookie(headers: &HeaderMap) -> Option<String> {
    cookie(headers, COOKIE)
}

/// Name of the cookie that pairs a login form with its browser.
pub(crate) const LOGIN_COOKIE: &str = "hashscan_login";

/// The value of cookie `name`, if sent.
pub(crate) fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim().to_string())
}

/// The `Set-Cookie` that goes with a login form: the same random value is
/// in the form's `csrf` field, and a login is accepted only when both
/// match (double submit). Another site can make a browser post the form,
/// but can neither read nor set this cookie, so it cannot log a victim
/// into the attacker's account (login CSRF).
pub(crate) fn set_login_cookie(token: &str) -> String {
    format!("{LOGIN_COOKIE}={token}; HttpOnly; Secure; SameSite=Strict; Path=/login; Max-Age=3600")
}

/// The `Set-Cookie` of a new session, and of a logout.
pub(crate) fn set_cookie(token: &str) -> String {
    format!("{COOKIE}={token}; HttpOnly; Secure; SameSite=Strict; Path=/")
}

pub(crate) fn clear_cookie() -> String {
    format!("{COOKIE}=; HttpOnly; Secure; SameSite=Strict; Path=/; Max-Age=0")
}

impl App {
    /// Who is asking: a Bearer token, else the session cookie. A request
    /// with an `Authorization` header that is not a valid token is refused,
    /// not tried as a cookie.
    pub(crate) async fn caller(&self, headers: &HeaderMap, ip: &ClientIp) -> Result<Option<Caller>, ApiError> {
        let now = self.now();
        if let Some(auth) = headers.get(header::AUTHORIZATION) {
            let token = auth
                .to_str()
                .ok()
                .and_then(|v| v.strip_prefix("Bearer "))
                .map(str::trim)
                .filter(|t| !t.is_empty() && t.len() <= 200);
            let Some(token) = token else { return Err(ApiError::unauthorized()) };
            return match self.store().user_for_token(token_hash(token), now).await? {
                Some(user) => Ok(Some(Caller { user, session: None, ip: ip.0.clone() })),
                None => Err(ApiError::unauthorized()),
            };
        }
        let Some(cookie) = session_cookie(headers).filter(|c| !c.is_empty() && c.len() <= 200) else {
            return Ok(None);
        };
        let h = token_hash(&cookie);
        let c = self.config();
        Ok(self.store().session(h, now, ms(c.session_idle), ms(c.session_max)).await?.map(|(user, csrf)| Caller {
            user,
            session: Some((csrf, h)),
            ip: ip.0.clone(),
        }))
    }

    /// [`App::caller`], refusing an anonymous request with 401.
    pub(crate) async fn require_caller(&self, headers: &HeaderMap, ip: &ClientIp) -> Result<Caller, ApiError> {
        self.caller(headers, ip).await?.ok_or_else(ApiError::unauthorized)
    }

    /// Checks a name and password, under the rate limit; on success starts
    /// a session and returns the user, the cookie token and the CSRF token.
    /// Every attempt is audited.
    pub(crate) async fn login(
        &self,
        name: &str,
        password: &str,
        ip: &ClientIp,
    ) -> Result<(User, String, String), ApiError> {
        if name.is_empty() || name.len() > 100 {
            return Err(ApiError::field("name", "give a user name (at most 100 bytes)"));
        }
        if password.is_empty() || password.len() > MAX_PASSWORD_LEN {
            return Err(ApiError::field("password", format!("give a password (at most {MAX_PASSWORD_LEN} bytes)")));
        }
        let now = self.now();
        let cfg = self.config();
        let window = ms(cfg.login_window);
        let user_key = format!("user:{}", name.to_lowercase());
        let mut keys = vec![user_key.clone()];
        if let Some(ip) = &ip.0 {
            keys.push(format!("ip:{ip}"));
        }
        let actor = Actor { name: name.to_string(), ip: ip.0.clone() };
        let counts = self.store().login_failures(keys.clone(), now - window).await?;
        if let Some(oldest) =
            counts.iter().filter(|(n, _)| *n >= cfg.login_max_failures).filter_map(|(_, oldest)| *oldest).min()
        {
            let wait_ms = (oldest + window - now).max(1_000);
            self.audit(&actor, "login_failed", None, Some("refused: too many failed logins")).await?;
            return Err(ApiError {
                retry_after: Some(u64::try_from(wait_ms).unwrap_or(1_000).div_ceil(1_000)),
                ..ApiError::new(StatusCode::TOO_MANY_REQUESTS, "too many failed logins; try again later")
            });
        }
        let user = self.store().user(name).await?;
        // Hash even for an unknown user, so the answer's timing does not
        // tell which names exist.
        let ok = match &user {
            Some(u) => verify_password(password, &u.password_hash),
            None => {
                let _ = verify_password(password, dummy_hash());
                false
            }
        };
        let why = match &user {
            None => Some("unknown user"),
            Some(u) if u.disabled => Some("user disabled"),
            Some(_) if !ok => Some("wrong password"),
            Some(_) => None,
        };
        let (Some(user), None) = (user, why) else {
            self.store().record_login_failure(keys, now, now - window).await?;
            self.audit(&actor, "login_failed", None, why).await?;
            return Err(ApiError::new(StatusCode::UNAUTHORIZED, "wrong user name or password"));
        };
        self.store().clear_login_failures(&user_key).await?;
        let (token, csrf) = (random_token(), random_token());
        self.store().create_session(token_hash(&token), user.id, &csrf, ip.0.clone(), now).await?;
        self.audit(&actor, "login_ok", None, None).await?;
        Ok((user, token, csrf))
    }

    /// Ends the caller's session (if by cookie). Audited.
    pub(crate) async fn logout(&self, caller: &Caller) -> Result<(), ApiError> {
        if let Some((_, h)) = &caller.session {
            self.store().delete_session(*h).await?;
        }
        self.audit(&caller.actor(), "logout", None, None).await
    }

    /// Appends an audit entry without a before/after.
    pub(crate) async fn audit(
        &self,
        actor: &Actor,
        action: &str,
        case_id: Option<i64>,
        detail: Option<&str>,
    ) -> Result<(), ApiError> {
        self.store()
            .append_audit(NewAudit {
                actor: actor.clone(),
                action: action.into(),
                case_id,
                detail: detail.map(Into::into),
                at_ms: self.now(),
                ..NewAudit::default()
            })
            .await?;
        Ok(())
    }
}

/// An Argon2id hash of a random string, made once, verified against for
/// unknown users so that they take as long as known ones.
fn dummy_hash() -> &'static str {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY.get_or_init(|| hash_password(&random_token()).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_hash_and_verify_and_short_ones_are_refused() {
        let h = hash_password("correct horse battery").unwrap();
        assert!(h.starts_with("$argon2id$"), "{h}");
        assert!(verify_password("correct horse battery", &h));
        assert!(!verify_password("correct horse batterz", &h));
        assert!(!verify_password("x", "not a phc string"));
        assert!(hash_password("short").unwrap_err().to_string().contains("at least 12"));
        assert!(hash_password(&"x".repeat(MAX_PASSWORD_LEN + 1)).is_err());
        assert!(PasswordHash::new(dummy_hash()).is_ok());
    }

    #[test]
    fn tokens_are_random_and_stored_hashed() {
        let (a, ha) = new_api_token();
        let (b, _) = new_api_token();
        assert_ne!(a, b);
        assert_eq!(a.len(), 4 + 64);
        assert_eq!(token_hash(&a), ha);
        assert!(same("abc", "abc") && !same("abc", "abd") && !same("abc", "ab"));
    }

    #[test]
    fn the_session_cookie_is_found_among_others() {
        let mut h = HeaderMap::new();
        h.insert(header::COOKIE, "a=1; hashscan_session=tok; b=2".parse().unwrap());
        assert_eq!(session_cookie(&h).as_deref(), Some("tok"));
        assert!(set_cookie("t").contains("HttpOnly; Secure; SameSite=Strict; Path=/"));
    }

    #[test]
    fn forwarded_addresses_are_believed_only_from_trusted_proxies() {
        let proxies: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap(), "127.0.0.1/32".parse().unwrap()];
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let xff = |values: &[&str]| {
            let mut h = HeaderMap::new();
            for v in values {
                h.append("x-forwarded-for", v.parse().unwrap());
            }
            h
        };
        // No proxy trusted: the header is anyone's to forge.
        assert_eq!(client_address(ip("127.0.0.1"), &xff(&["203.0.113.9"]), &[]), ip("127.0.0.1"));
        // From an untrusted peer, the header is ignored.
        assert_eq!(client_address(ip("198.51.100.1"), &xff(&["203.0.113.9"]), &proxies), ip("198.51.100.1"));
        // Through a trusted proxy: the address it saw.
        assert_eq!(client_address(ip("127.0.0.1"), &xff(&["203.0.113.9"]), &proxies), ip("203.0.113.9"));
        // A forged left part stays unbelieved: the rightmost untrusted hop wins.
        let h = xff(&["6.6.6.6, 203.0.113.9", "10.1.2.3"]);
        assert_eq!(client_address(ip("127.0.0.1"), &h, &proxies), ip("203.0.113.9"));
        // Garbage ends the walk at the last proxy that vouched for it.
        assert_eq!(client_address(ip("127.0.0.1"), &xff(&["not-an-ip, 10.1.2.3"]), &proxies), ip("10.1.2.3"));
        // No header: the proxy itself.
        assert_eq!(client_address(ip("10.9.9.9"), &HeaderMap::new(), &proxies), ip("10.9.9.9"));
        // IPv6 too.
        assert_eq!(client_address(ip("127.0.0.1"), &xff(&["2001:db8::7"]), &proxies), ip("2001:db8::7"));
    }
}
