//! Who is calling and what they may call: the caller's identity (client certificate, a mesh's header, or an unauthenticated name), and the per-rpc access rules from configuration.
//!
//! The identity comes from one configured source, never from a mix: with
//! `access.identity = "tls"` only the verified client certificate counts;
//! with `"header"` only the header a mesh sidecar sets after terminating
//! mTLS (the sidecar must strip the header from what clients send); with
//! `"none"` there is no authenticated identity, and `x-yungate-caller` only
//! names the caller for per-caller rate limits. The resolved [`Caller`]
//! goes into the request's extensions, where the per-caller limit and the
//! notification service's subscriber check read it.
//!
//! With rules configured, a call is allowed only when a rule names both
//! the caller and the rpc; everything else is PERMISSION_DENIED (and, for
//! a caller without identity, UNAUTHENTICATED). Health is always open: the
//! kubelet's probes carry no identity.

use std::sync::Arc;
use std::task::{Context, Poll};

use tower::{Layer, Service};

use super::listener::Peer;
use crate::config::{AccessConfig, AccessRule, ConfigError, IdentitySource};
use crate::error::GatewayError;
use crate::ratelimit::{ANONYMOUS, CALLER_HEADER, caller_name};

/// The header an Envoy-based mesh (Istio and others) sets from the client certificate.
pub const XFCC: &str = "x-forwarded-client-cert";

/// The longest identity accepted (SPIFFE IDs are at most 2048 bytes; ours
/// become part of rate-limit keys and logs).
pub const MAX_IDENTITY: usize = 256;

/// Whether an identity is usable: 1 to 256 visible ASCII characters
/// without `{` `}` (which would break a Redis hash tag in a rate-limit key).
pub fn identity_ok(id: &str) -> bool {
    !id.is_empty() && id.len() <= MAX_IDENTITY && id.bytes().all(|b| b.is_ascii_graphic() && b != b'{' && b != b'}')
}

/// Who is calling, as the access layer established it.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The authenticated identity, when the configured source gave one.
    pub identity: Option<Arc<str>>,
    /// The name rate limits and logs use: the identity, else the
    /// `x-yungate-caller` name (unauthenticated), else `anonymous`.
    pub name: Arc<str>,
}

/// The rules, compiled.
#[derive(Debug, Clone)]
pub struct AccessPolicy {
    source: IdentitySource,
    header: String,
    rules: Arc<[AccessRule]>,
}

/// The only item, if there is exactly one.
fn single<T>(mut items: impl Iterator<Item = T>) -> Option<T> {
    let first = items.next()?;
    items.next().is_none().then_some(first)
}

/// Whether `pattern` matches `value`: exactly, or `*` alone, or a prefix ending in `*`.
fn glob(pattern: &str, value: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => value.starts_with(prefix),
        None => pattern == value,
    }
}

/// Whether an rpc pattern (`*`, `pkg.Service`, `pkg.Service/*`, `pkg.Service/Method`) covers `/pkg.Service/Method`.
fn rpc_matches(pattern: &str, path: &str) -> bool {
    let rpc = path.strip_prefix('/').unwrap_or(path);
    if pattern == "*" {
        return true;
    }
    let (service, _) = rpc.split_once('/').unwrap_or((rpc, ""));
    if !pattern.contains('/') {
        return pattern == service;
    }
    glob(pattern, rpc)
}

/// The services an rpc pattern may name: the API's and reflection's.
fn known_services() -> Vec<String> {
    let mut services: Vec<String> = prost_reflect::DescriptorPool::decode(crate::grpc::DESCRIPTOR_SET)
        .map(|pool| pool.services().map(|s| s.full_name().to_owned()).collect())
        .unwrap_or_default();
    services.push("grpc.reflection.v1.ServerReflection".into());
    services.push("grpc.reflection.v1alpha.ServerReflection".into());
    services
}

/// Whether `method` (a name, or a prefix ending in `*`) names at least one rpc of `service`.
fn known_method(service: &str, method: &str) -> bool {
    let names = |name: &str| glob(method, name);
    prost_reflect::DescriptorPool::decode(crate::grpc::DESCRIPTOR_SET)
        .ok()
        .and_then(|pool| pool.get_service_by_name(service))
        .is_some_and(|s| s.methods().any(|m| names(m.name())))
        || (service.starts_with("grpc.reflection.") && names("ServerReflectionInfo"))
}

impl AccessPolicy {
    /// Checks the configuration: rules need an identity source, and every
    /// rpc they name must exist (a typo would deny a caller in production).
    pub fn new(config: &AccessConfig) -> Result<Self, ConfigError> {
        let invalid = |reason: String| ConfigError::Invalid {
            key: "access.rules",
            reason,
        };
        if !config.rules.is_empty() && config.identity == IdentitySource::None {
            return Err(invalid(
                "rules need an identity: set access.identity to \"tls\" (client certificates) or \"header\" (a mesh)"
                    .into(),
            ));
        }
        let services = known_services();
        for (i, rule) in config.rules.iter().enumerate() {
            if rule.callers.is_empty() || rule.rpcs.is_empty() {
                return Err(invalid(format!("rule {i}: needs callers and rpcs")));
            }
            for rpc in &rule.rpcs {
                let ok = rpc == "*" || {
                    let (service, method) = rpc.split_once('/').unwrap_or((rpc, "*"));
                    services.iter().any(|s| s == service) && known_method(service, method)
                };
                if !ok {
                    return Err(invalid(format!(
                        "rule {i}: {rpc:?} names no rpc (write `*`, `yungate.v1.OrderService`, `yungate.v1.OrderService/*` or `yungate.v1.OrderService/DepositApply`)"
                    )));
                }
            }
        }
        if config.identity == IdentitySource::Header
            && tonic::codegen::http::HeaderName::from_bytes(config.identity_header.as_bytes()).is_err()
        {
            return Err(ConfigError::Invalid {
                key: "access.identity_header",
                reason: format!("{:?} is not a header name", config.identity_header),
            });
        }
        Ok(AccessPolicy {
            source: config.identity,
            header: config.identity_header.to_ascii_lowercase(),
            rules: config.rules.clone().into(),
        })
    }

    /// Whether callers must prove who they are.
    pub fn authenticates(&self) -> bool {
        self.source != IdentitySource::None
    }

    /// The caller of a request, from the configured source.
    fn caller(&self, peer: Option<&Peer>, headers: &tonic::codegen::http::HeaderMap) -> Caller {
        let identity: Option<Arc<str>> = match self.source {
            IdentitySource::None => None,
            IdentitySource::Tls => peer.and_then(|p| p.certificate_identity.clone()),
            // Exactly one value: with two, which one the mesh set is anyone's guess.
            IdentitySource::Header => single(headers.get_all(&self.header).iter())
                .and_then(|v| v.to_str().ok())
                .and_then(|v| {
                    if self.header == XFCC {
                        xfcc_identity(v)
                    } else {
                        Some(v.trim().to_owned())
                    }
                })
                .filter(|id| identity_ok(id))
                .map(Arc::from),
        };
        let name = match &identity {
            Some(id) => Arc::clone(id),
            // Without an identity source, the caller names itself (for rate limits only).
            None if !self.authenticates() => {
                Arc::from(caller_name(headers.get(CALLER_HEADER).and_then(|v| v.to_str().ok())))
            }
            None => Arc::from(ANONYMOUS),
        };
        Caller { identity, name }
    }

    /// Whether `caller` may call the rpc at `path`.
    pub fn check(&self, caller: &Caller, path: &str) -> Result<(), GatewayError> {
        if path.starts_with("/grpc.health.v1.Health/") || !self.authenticates() {
            return Ok(());
        }
        let Some(identity) = &caller.identity else {
            return Err(GatewayError::Unauthenticated(match self.source {
                IdentitySource::Tls => "this gateway requires a client certificate from its client CA, with a usable identity (URI or DNS SAN, or CN)".into(),
                _ => format!("this gateway takes the caller's identity from the {} header, which the request lacks or holds no usable identity in", self.header),
            }));
        };
        if self.rules.is_empty() || self.matching(identity, path).next().is_some() {
            return Ok(());
        }
        Err(GatewayError::PermissionDenied {
            caller: identity.to_string(),
            what: format!("the rpc {}", path.trim_start_matches('/')),
        })
    }

    fn matching<'a>(&'a self, identity: &'a str, path: &'a str) -> impl Iterator<Item = &'a AccessRule> + 'a {
        self.rules
            .iter()
            .filter(move |r| r.callers.iter().any(|c| glob(c, identity)) && r.rpcs.iter().any(|p| rpc_matches(p, path)))
    }

    /// Whether a rule names `caller` for the rpc at `path`: for rpcs that
    /// are never open to everyone (settling an outcome by hand), so an
    /// identity source and a rule are required, whatever else is configured.
    pub fn check_named(&self, caller: Option<&Caller>, path: &str) -> Result<(), GatewayError> {
        let what = format!("the rpc {}", path.trim_start_matches('/'));
        let Some(identity) = caller
            .and_then(|c| c.identity.as_deref())
            .filter(|_| self.authenticates())
        else {
            return Err(GatewayError::PermissionDenied {
                caller: caller.map_or(ANONYMOUS, |c| &c.name).to_owned(),
                what: format!("{what} without an identity (access.identity) and an access rule naming it"),
            });
        };
        if self.matching(identity, path).next().is_some() {
            return Ok(());
        }
        Err(GatewayError::PermissionDenied {
            caller: identity.to_owned(),
            what,
        })
    }

    /// Whether the caller of a NotificationService rpc may act for `subscriber`.
    pub fn check_subscriber(&self, caller: Option<&Caller>, path: &str, subscriber: &str) -> Result<(), GatewayError> {
        if !self.authenticates() || self.rules.is_empty() {
            return Ok(());
        }
        let Some(identity) = caller.and_then(|c| c.identity.as_deref()) else {
            return Err(GatewayError::Unauthenticated("no caller identity".into()));
        };
        if self
            .matching(identity, path)
            .any(|r| r.subscribers.iter().any(|s| glob(s, subscriber)))
        {
            return Ok(());
        }
        Err(GatewayError::PermissionDenied {
            caller: identity.to_owned(),
            what: format!("the subscriber {subscriber:?}"),
        })
    }
}

/// The identity in an `x-forwarded-client-cert` value: of its last element
/// (the one the nearest proxy added), the URI, else the DNS name, else the
/// subject's CN. Parsed strictly: a quote left open or an escape left
/// dangling makes the whole value unusable, since in Envoy's append mode
/// everything before the proxy's element is the client's, and a lenient
/// reading would let it swallow the proxy's separator.
pub fn xfcc_identity(value: &str) -> Option<String> {
    let element = split_unquoted(value, ',')?.pop()?;
    let mut uri = None;
    let mut dns = None;
    let mut subject = None;
    for pair in split_unquoted(&element, ';')? {
        let (key, raw) = pair.split_once('=')?;
        let v = unquote(raw.trim())?;
        match key.trim().to_ascii_lowercase().as_str() {
            "uri" if uri.is_none() => uri = Some(v),
            "dns" if dns.is_none() => dns = Some(v),
            "subject" => subject = Some(v),
            _ => {}
        }
    }
    let cn = || {
        // RFC 4514: RDNs are separated by commas not escaped with a backslash.
        let subject = subject.as_deref()?;
        let mut rdns = vec![String::new()];
        let mut escaped = false;
        for c in subject.chars() {
            match c {
                _ if escaped => {
                    escaped = false;
                    rdns.last_mut()?.push(c);
                }
                '\\' => escaped = true,
                ',' => rdns.push(String::new()),
                _ => rdns.last_mut()?.push(c),
            }
        }
        rdns.iter()
            .find_map(|rdn| rdn.trim().strip_prefix("CN=").map(str::to_owned))
    };
    uri.or(dns).or_else(cn).filter(|id| !id.is_empty())
}

/// A value without its quotes (`\"` and `\\` unescaped inside them), or as it is when unquoted.
fn unquote(raw: &str) -> Option<String> {
    let Some(inner) = raw.strip_prefix('"') else {
        return Some(raw.to_owned());
    };
    let inner = inner.strip_suffix('"')?;
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            out.push(chars.next()?);
        } else {
            out.push(c);
        }
    }
    Some(out)
}

/// Splits on `sep` outside double quotes (XFCC quotes values holding `,` `;`
/// `=`; a backslash escapes only inside quotes). `None` when a quote or an
/// escape is left open.
fn split_unquoted(value: &str, sep: char) -> Option<Vec<String>> {
    let mut parts = vec![String::new()];
    let mut quoted = false;
    let mut escaped = false;
    for c in value.chars() {
        if escaped {
            escaped = false;
        } else if c == '\\' && quoted {
            escaped = true;
        } else if c == '"' {
            quoted = !quoted;
        } else if c == sep && !quoted {
            parts.push(String::new());
            continue;
        }
        parts.last_mut()?.push(c);
    }
    if quoted || escaped {
        return None;
    }
    parts.retain(|p| !p.trim().is_empty());
    Some(parts)
}

/// The access layer of the server stack (see `serve/stack.rs`).
#[derive(Debug, Clone)]
pub struct AccessLayer {
    policy: AccessPolicy,
}

impl AccessLayer {
    pub fn new(policy: AccessPolicy) -> Self {
        AccessLayer { policy }
    }
}

impl<S> Layer<S> for AccessLayer {
    type Service = Access<S>;

    fn layer(&self, inner: S) -> Access<S> {
        Access {
            inner,
            policy: self.policy.clone(),
        }
    }
}

/// See [`AccessLayer`].
#[derive(Debug, Clone)]
pub struct Access<S> {
    inner: S,
    policy: AccessPolicy,
}

type HttpRequest<B> = tonic::codegen::http::Request<B>;
type HttpResponse = tonic::codegen::http::Response<tonic::body::Body>;

impl<S, B> Service<HttpRequest<B>> for Access<S>
where
    S: Service<HttpRequest<B>, Response = HttpResponse>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = HttpResponse;
    type Error = S::Error;
    type Future = std::pin::Pin<Box<dyn std::future::Future<Output = Result<HttpResponse, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: HttpRequest<B>) -> Self::Future {
        let caller = self
            .policy
            .caller(request.extensions().get::<Peer>(), request.headers());
        tracing::Span::current().record("caller", &*caller.name);
        if let Err(e) = self.policy.check(&caller, request.uri().path()) {
            tracing::info!(caller = %caller.name, rpc = request.uri().path(), error = %e, "call refused by access rules");
            let refused = crate::grpc::status::from_gateway_error(&e).into_http();
            return Box::pin(std::future::ready(Ok(refused)));
        }
        request.extensions_mut().insert(caller);
        Box::pin(self.inner.call(request))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xfcc_as_envoy_writes_it() {
        // Envoy's documented examples: By, Hash, Subject (quoted), URI, DNS; elements separated by commas.
        let one = r#"By=spiffe://cluster.local/ns/pay/sa/yungate;Hash=468ed33be74eee6556d90c0149c1309e9ba61d6425303443c0748a02dd8de688;Subject="/C=US/ST=CA/L=San Francisco/OU=Lyft/CN=Test Client";URI=spiffe://cluster.local/ns/shop/sa/checkout;DNS=checkout.shop"#;
        assert_eq!(
            xfcc_identity(one).as_deref(),
            Some("spiffe://cluster.local/ns/shop/sa/checkout")
        );
        // Two elements: the last is the nearest proxy's.
        let two = "By=a;URI=spiffe://outer/x,By=b;URI=spiffe://inner/y";
        assert_eq!(xfcc_identity(two).as_deref(), Some("spiffe://inner/y"));
        // No URI: the DNS name, else the subject's CN (a quoted subject may hold commas).
        assert_eq!(xfcc_identity("Hash=1;DNS=svc.ns").as_deref(), Some("svc.ns"));
        assert_eq!(
            xfcc_identity(r#"Hash=1;Subject="CN=billing,O=Shop, Inc.""#).as_deref(),
            Some("billing")
        );
        assert_eq!(xfcc_identity("Hash=1"), None);
        assert_eq!(xfcc_identity(""), None);
        // An escaped comma inside an RDN does not start another RDN.
        assert_eq!(
            xfcc_identity(r#"Hash=1;Subject="OU=a\\,CN=admin,CN=real""#).as_deref(),
            Some("real")
        );
    }

    #[test]
    fn xfcc_the_client_wrote_cannot_swallow_the_proxys_element() {
        // Append mode: the client's header, then the proxy's ",By=...;URI=...".
        let proxy = ",By=spiffe://mesh/yungate;URI=spiffe://mesh/real";
        // A quote left open would make the proxy's element part of the client's.
        assert_eq!(xfcc_identity(&format!("URI=spiffe://x/admin;By=\"{proxy}")), None);
        // A backslash outside quotes escapes nothing: the proxy's comma still separates.
        assert_eq!(
            xfcc_identity(&format!("URI=spiffe://x/admin\\{proxy}")).as_deref(),
            Some("spiffe://mesh/real")
        );
        // A value ending inside its quotes is refused.
        assert_eq!(xfcc_identity("URI=\"spiffe://x/admin\\\""), None);
    }

    #[test]
    fn rpc_patterns() {
        let path = "/yungate.v1.OrderService/DepositApply";
        assert!(rpc_matches("*", path));
        assert!(rpc_matches("yungate.v1.OrderService", path));
        assert!(rpc_matches("yungate.v1.OrderService/*", path));
        assert!(rpc_matches("yungate.v1.OrderService/DepositApply", path));
        assert!(rpc_matches("yungate.v1.OrderService/Deposit*", path));
        assert!(!rpc_matches("yungate.v1.OrderService/DepositApplyX", path));
        assert!(!rpc_matches("yungate.v1.Order", path));
        assert!(!rpc_matches("yungate.v1.MemberService/*", path));
    }

    #[test]
    fn identities_are_bounded_and_plain() {
        assert!(identity_ok("spiffe://cluster.local/ns/shop/sa/checkout"));
        assert!(!identity_ok(""));
        assert!(!identity_ok("a b"));
        assert!(!identity_ok("tag{x}"));
        assert!(!identity_ok(&"x".repeat(MAX_IDENTITY + 1)));
        assert!(!identity_ok("caf\u{e9}"));
    }

    fn rule(callers: &[&str], rpcs: &[&str]) -> AccessRule {
        AccessRule {
            callers: callers.iter().map(|s| (*s).to_owned()).collect(),
            rpcs: rpcs.iter().map(|s| (*s).to_owned()).collect(),
            subscribers: vec!["ledger".into()],
        }
    }

    #[test]
    fn rules_are_checked_at_start() {
        let mut config = AccessConfig {
            rules: vec![rule(&["a"], &["*"])],
            ..AccessConfig::default()
        };
        let err = AccessPolicy::new(&config).unwrap_err().to_string();
        assert!(
            err.contains("access.identity"),
            "rules without an identity source: {err}"
        );
        config.identity = IdentitySource::Header;
        assert!(AccessPolicy::new(&config).is_ok());
        config.rules = vec![rule(&["a"], &["yungate.v1.OrderService/DepositAply"])];
        let err = AccessPolicy::new(&config).unwrap_err().to_string();
        assert!(err.contains("DepositAply"), "a typo names no rpc: {err}");
        config.rules = vec![rule(&["a"], &["yungate.v1.OrderService/Deposit*"])];
        assert!(AccessPolicy::new(&config).is_ok(), "a prefix that names rpcs");
        config.rules = vec![rule(&["a"], &["yungate.v1.OrderService/Nothing*"])];
        assert!(AccessPolicy::new(&config).is_err(), "a prefix that names none");
        config.rules = vec![rule(&["a"], &["yungate.v1.OrdersService"])];
        assert!(AccessPolicy::new(&config).is_err());
        config.rules = vec![rule(&["a"], &["grpc.reflection.v1alpha.ServerReflection/*"])];
        assert!(AccessPolicy::new(&config).is_ok());
        config.rules = vec![rule(&[], &["*"])];
        assert!(AccessPolicy::new(&config).is_err());
    }

    #[test]
    fn decisions() {
        let policy = AccessPolicy::new(&AccessConfig {
            identity: IdentitySource::Header,
            rules: vec![rule(&["svc-*"], &["yungate.v1.NotificationService/*"])],
            ..AccessConfig::default()
        })
        .unwrap();
        let caller = |id: Option<&str>| Caller {
            identity: id.map(Arc::from),
            name: Arc::from(id.unwrap_or(ANONYMOUS)),
        };
        let ack = "/yungate.v1.NotificationService/Ack";
        assert!(policy.check(&caller(Some("svc-a")), ack).is_ok());
        assert!(matches!(
            policy.check(&caller(Some("other")), ack),
            Err(GatewayError::PermissionDenied { .. })
        ));
        assert!(matches!(
            policy.check(&caller(None), ack),
            Err(GatewayError::Unauthenticated(_))
        ));
        assert!(policy.check(&caller(None), "/grpc.health.v1.Health/Check").is_ok());
        assert!(
            policy
                .check_subscriber(Some(&caller(Some("svc-a"))), ack, "ledger")
                .is_ok()
        );
        assert!(matches!(
            policy.check_subscriber(Some(&caller(Some("svc-a"))), ack, "ledger-2"),
            Err(GatewayError::PermissionDenied { .. })
        ));
        // Without rules and without an identity source, everything is open.
        let open = AccessPolicy::new(&AccessConfig::default()).unwrap();
        assert!(open.check(&caller(None), ack).is_ok());
        assert!(open.check_subscriber(None, ack, "anyone").is_ok());
    }
}
