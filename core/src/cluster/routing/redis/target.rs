//! Where the routing store's Redis is, read from `--redis`: one server (`redis://`, `rediss://`)
//! or a master found through Sentinel (`redis+sentinel://`, `rediss+sentinel://`), with the
//! credentials and the CA to use. Parsing happens once, at start-up, so a bad URL stops the node
//! with a message naming `--redis`; [`redact`] is the only form of the URL that may be logged.

use ::redis::sentinel::{SentinelClient, SentinelClientBuilder, SentinelServerType};
use ::redis::{Client, IntoConnectionInfo, TlsCertificates, TlsMode};

/// Where to connect, and how. One per process, made at start-up: its size does not matter.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Target {
    /// One Redis server.
    Direct(Client),
    /// The master that the sentinels name `master`, asked again after each failure.
    Sentinel {
        /// The builder's product; asked for the master's address on every (re)connection.
        client: Box<SentinelClient>,
        /// The sentinels' addresses and the master's name, for Debug and logs.
        described: String,
    },
}

impl std::fmt::Debug for Target {
    // Not derived: the clients hold passwords.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Direct(client) => f
                .debug_tuple("Direct")
                .field(&client.get_connection_info().addr().to_string())
                .finish(),
            Self::Sentinel { described, .. } => f.debug_tuple("Sentinel").field(described).finish(),
        }
    }
}

/// Parses `url`; `ca` is a PEM bundle of the certificate authorities a `rediss` server's (and
/// sentinel's) certificate must chain to, instead of the public web roots.
pub(crate) fn parse(url: &str, ca: Option<&[u8]>) -> Result<Target, String> {
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| "expected a URL such as redis://127.0.0.1:6379/0".to_owned())?;
    let certificates = ca.map(|pem| TlsCertificates {
        client_tls: None,
        root_cert: Some(pem.to_vec()),
    });
    match scheme {
        "redis" | "rediss" | "unix" | "redis+unix" => {
            if scheme != "rediss" && ca.is_some() {
                return Err("--redis-ca needs a rediss:// URL".to_owned());
            }
            let client = match (&certificates, scheme) {
                (Some(certs), "rediss") => Client::build_with_tls(url, certs.clone()),
                _ => Client::open(url),
            }
            .map_err(|e| format!("not a Redis URL: {}", scrub(&e.to_string(), url)))?;
            Ok(Target::Direct(client))
        }
        "redis+sentinel" | "rediss+sentinel" => {
            sentinel(scheme == "rediss+sentinel", rest, certificates)
        }
        _ => Err(format!(
            "unknown scheme {scheme:?}: expected redis://, rediss://, redis+sentinel:// or \
             rediss+sentinel://"
        )),
    }
}

/// `[user:pass@]host:port,host:port/master[/db][?sentinel_username=u&sentinel_password=p]`.
/// The credentials before `@` are those of the Redis master and replicas; the sentinels get
/// their own with the query keys (Sentinel's own `requirepass`).
fn sentinel(
    tls: bool,
    rest: &str,
    certificates: Option<TlsCertificates>,
) -> Result<Target, String> {
    let (rest, query) = rest.split_once('?').unwrap_or((rest, ""));
    let (userinfo, rest) = match rest.rsplit_once('@') {
        Some((u, r)) => (Some(u), r),
        None => (None, rest),
    };
    let (hosts, path) = rest
        .split_once('/')
        .ok_or("expected redis+sentinel://host:port,host:port/master-name")?;
    let mut path = path.split('/').filter(|p| !p.is_empty());
    let master = path
        .next()
        .ok_or("expected a master name after the sentinels: redis+sentinel://host:port/mymaster")?;
    let db = match path.next() {
        Some(db) => Some(
            db.parse::<i64>()
                .map_err(|_| format!("database {db:?} is not a number"))?,
        ),
        None => None,
    };
    if path.next().is_some() {
        return Err("expected redis+sentinel://host:port,…/master-name[/db]".to_owned());
    }
    let scheme = if tls { "rediss" } else { "redis" };
    let mut sentinels = Vec::new();
    for host in hosts.split(',').filter(|h| !h.is_empty()) {
        let host = if host
            .rsplit_once(':')
            .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
        {
            host.to_owned()
        } else {
            format!("{host}:26379")
        };
        let info = format!("{scheme}://{host}")
            .into_connection_info()
            .map_err(|_| format!("sentinel address {host:?} is not host:port"))?;
        sentinels.push(info.addr().clone());
    }
    if sentinels.is_empty() {
        return Err(
            "expected at least one sentinel: redis+sentinel://host:port/master-name".into(),
        );
    }
    let described = format!("{hosts}/{master}");
    let mut builder = SentinelClientBuilder::new(sentinels, master, SentinelServerType::Master)
        .map_err(|e| e.to_string())?;
    // The credentials are decoded as the redis crate decodes a plain URL's (percent-escapes).
    if let Some(userinfo) = userinfo {
        let info = format!("redis://{userinfo}@localhost")
            .into_connection_info()
            .map_err(|_| "the user:password before @ is not valid".to_owned())?;
        let redis = info.redis_settings();
        if let Some(user) = redis.username() {
            builder = builder.set_client_to_redis_username(user);
        }
        if let Some(password) = redis.password() {
            builder = builder.set_client_to_redis_password(password);
        }
    }
    if let Some(db) = db {
        builder = builder.set_client_to_redis_db(db);
    }
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let value = decode(value)?;
        builder = match key {
            "sentinel_username" => builder.set_client_to_sentinel_username(value),
            "sentinel_password" => builder.set_client_to_sentinel_password(value),
            _ => {
                return Err(format!(
                    "unknown parameter {key:?}: expected sentinel_username or sentinel_password"
                ));
            }
        };
    }
    if tls {
        builder = builder
            .set_client_to_redis_tls_mode(TlsMode::Secure)
            .set_client_to_sentinel_tls_mode(TlsMode::Secure);
        if let Some(certs) = certificates {
            builder = builder
                .set_client_to_redis_certificates(certs.clone())
                .set_client_to_sentinel_certificates(certs);
        }
    } else if certificates.is_some() {
        return Err("--redis-ca needs a rediss+sentinel:// URL".to_owned());
    }
    let client = builder.build().map_err(|e| e.to_string())?;
    Ok(Target::Sentinel {
        client: Box::new(client),
        described,
    })
}

/// Percent-decoding of a query value.
fn decode(value: &str) -> Result<String, String> {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = value
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or("a %-escape in the query is not two hex digits")?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| "the query is not UTF-8".to_owned())
}

/// `url` with every password replaced by `***`: the one in `user:pass@` and the values of query
/// keys naming a password. The only form of a Redis URL that may reach a log or an error.
pub fn redact(url: &str) -> String {
    let (head, query) = match url.split_once('?') {
        Some((h, q)) => (h, Some(q)),
        None => (url, None),
    };
    let mut out = match head.split_once("://") {
        Some((scheme, rest)) => {
            let rest = match rest.rsplit_once('@') {
                Some((userinfo, hosts)) => match userinfo.split_once(':') {
                    Some((user, _)) => format!("{user}:***@{hosts}"),
                    // `redis://secret@host`: the crate reads a lone userinfo as a username; it
                    // is hidden too, since operators write passwords there.
                    None => format!("***@{hosts}"),
                },
                None => rest.to_owned(),
            };
            format!("{scheme}://{rest}")
        }
        None => head.to_owned(),
    };
    if let Some(query) = query {
        let pairs: Vec<String> = query
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((k, _)) if k.to_ascii_lowercase().contains("pass") => format!("{k}=***"),
                _ => pair.to_owned(),
            })
            .collect();
        out.push('?');
        out.push_str(&pairs.join("&"));
    }
    out
}

/// An error message from the redis crate about `url`, with the URL's password removed should
/// the message quote it.
fn scrub(message: &str, url: &str) -> String {
    match password_of(url) {
        Some(p) if !p.is_empty() => message.replace(p, "***"),
        _ => message.to_owned(),
    }
}

fn password_of(url: &str) -> Option<&str> {
    let rest = url.split_once("://")?.1;
    let userinfo = rest.split('?').next()?.rsplit_once('@')?.0;
    Some(userinfo.split_once(':').map_or(userinfo, |(_, p)| p))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redact("redis://user:s3cret@host:6379/0"),
            "redis://user:***@host:6379/0"
        );
        assert_eq!(redact("rediss://:s3cret@host"), "rediss://:***@host");
        assert_eq!(
            redact("redis+sentinel://u:p@a:1,b:2/m?sentinel_password=x&x=1"),
            "redis+sentinel://u:***@a:1,b:2/m?sentinel_password=***&x=1"
        );
        assert_eq!(redact("redis://host:6379"), "redis://host:6379");
        assert_eq!(redact("not a url"), "not a url");
    }

    #[test]
    fn urls_parse_or_say_why_not() {
        assert!(matches!(
            parse("redis://u:p@127.0.0.1:6379/2", None),
            Ok(Target::Direct(_))
        ));
        assert!(matches!(
            parse("rediss://127.0.0.1:6380", None),
            Ok(Target::Direct(_))
        ));
        assert!(matches!(
            parse(
                "redis+sentinel://:p@127.0.0.1:26379,127.0.0.1:26380/mymaster/1",
                None
            ),
            Ok(Target::Sentinel { .. })
        ));
        for bad in [
            "not a url",
            "http://host",
            "redis+sentinel://127.0.0.1:26379",
            "redis+sentinel:///mymaster",
            "redis+sentinel://h:1/m/notanumber",
            "redis+sentinel://h:1/m?what=1",
        ] {
            assert!(parse(bad, None).is_err(), "{bad}");
        }
        let e = parse("redis://127.0.0.1", Some(b"pem")).unwrap_err();
        assert!(e.contains("rediss"), "{e}");
    }

    #[test]
    fn debug_shows_no_password() {
        let t = parse("redis+sentinel://:hunter2@127.0.0.1:26379/m", None).unwrap();
        assert!(!format!("{t:?}").contains("hunter2"));
        let t = parse("redis://:hunter2@127.0.0.1:6379", None).unwrap();
        assert!(!format!("{t:?}").contains("hunter2"));
    }
}
