//! The data planes of a real run: PostgreSQL, Valkey, HTTP and DNS as applications see them.
//!
//! A control plane can say a failover finished while applications still cannot write, so
//! the data-plane gates talk to the endpoints themselves. Every probe opens a fresh
//! connection (no pool, no DNS cache): a connection kept from before a cutover would
//! answer for the old region and let a gate pass on a pretence.
//!
//! Failures are classified for the actions (`actions/dataplane.rs`): an endpoint that
//! does not answer is [`Unreachable`](super::CloudErrorKind::Unreachable) or
//! [`Transient`](super::CloudErrorKind::Transient), which a gate shows and polls again;
//! what polling cannot fix (a rejected password, a missing database, a certificate that
//! does not verify) is non-retryable.
//!
//! Secrets: a password is read from the environment variable the runbook names (or
//! through [`LiveDataPlane::with_secrets`]) at connect time, handed to the driver through
//! its configuration API (never a URL, which drivers echo in errors) and blanked from
//! every message this module returns.
//!
//! TLS verifies the server's certificate against the system's roots (`SSL_CERT_FILE` /
//! `SSL_CERT_DIR` are honoured) or a CA bundle given with
//! [`LiveDataPlane::with_ca_bundle`]. Unlike libpq, whose `sslmode=require` encrypts
//! without verifying, `sslmode = "require"` here verifies: Aurora's certificates are issued
//! by the RDS CAs, so point `SSL_CERT_FILE` at AWS's RDS bundle for Aurora endpoints.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use hickory_resolver::proto::rr::{RData, RecordType};
use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client as HttpClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

use super::{
    CloudError, CloudErrorKind as K, CloudResult, ClusterMode, DataPlane, Endpoint, Heartbeat,
    HeartbeatShard, HeartbeatStore, HeartbeatTarget, HttpObservation, HttpProbe,
    PostgresObservation, ShardBeats, Tls, ValkeyObservation,
};

mod cluster;
mod dns;
mod errors;

use dns::{absolute, build_resolver, dns_error};
use errors::{Secret, chain, pg_error, redis_error, timed_out, tls_failure};

/// Longest wait for a TCP connection plus the protocol's handshake and authentication.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest wait for one query or command.
const QUERY_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest wait for one DNS answer (each resolver is asked at most twice).
const DNS_TIMEOUT: Duration = Duration::from_secs(3);
/// How much of an HTTP body is kept: enough for `body_contains` on a health document,
/// bounded so a probe of a large page cannot exhaust memory.
pub const MAX_HTTP_BODY: usize = 64 * 1024;

const OP_HTTP: &str = "Http";
const OP_PG: &str = "Postgres";
const OP_VALKEY: &str = "Valkey";
const OP_DNS: &str = "Dns";

type Https = hyper_rustls::HttpsConnector<HttpConnector>;

/// Finds the value of the variable a `password_env` field names.
pub type SecretLookup = Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// A URL as it may appear in a message: any credential in it blanked (validation keeps
/// them out of runbooks; this covers one that arrives another way).
fn shown(url: &str) -> String {
    match crate::runbook::catalogue::url_credential(url) {
        Some(secret) => url.replace(secret, "***"),
        None => url.to_string(),
    }
}

/// The real data planes, for runs against AWS.
///
/// Cheap to build: TLS roots are loaded on the first probe that needs them, so a run
/// without data-plane steps never reads the certificate store.
pub struct LiveDataPlane {
    /// Where a `password_env` name is looked up (the process environment by default).
    secrets: SecretLookup,
    /// PEM CA certificates trusted instead of the system's, when given.
    ca_bundle: Option<Arc<Vec<u8>>>,
    /// The TLS client settings, built once (an error is kept and reported per probe).
    tls: OnceLock<Result<Arc<rustls::ClientConfig>, String>>,
    /// The HTTP client (no connection pool; see the module docs).
    http: OnceLock<Result<HttpClient<Https, Empty<Bytes>>, String>>,
}

impl Default for LiveDataPlane {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for LiveDataPlane {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveDataPlane")
            .field("ca_bundle", &self.ca_bundle.is_some())
            .finish_non_exhaustive()
    }
}

impl LiveDataPlane {
    /// Probes that trust the system's certificate roots and read passwords from the
    /// process environment.
    pub fn new() -> Self {
        Self {
            secrets: Arc::new(|name| std::env::var(name).ok()),
            ca_bundle: None,
            tls: OnceLock::new(),
            http: OnceLock::new(),
        }
    }

    /// Looks the variables that `password_env` fields name up with `lookup` instead of
    /// the process environment: for a caller that holds them elsewhere, and for tests,
    /// which cannot safely change the environment of a multi-threaded process.
    pub fn with_secrets(
        mut self,
        lookup: impl Fn(&str) -> Option<String> + Send + Sync + 'static,
    ) -> Self {
        self.secrets = Arc::new(lookup);
        self
    }

    /// Trusts exactly the CA certificates of this PEM bundle instead of the system's:
    /// AWS's RDS bundle for Aurora, or a test CA. Refuses a bundle without a
    /// certificate, so a wrong file is found before a gate fails on it.
    pub fn with_ca_bundle(self, pem: &[u8]) -> CloudResult<Self> {
        let certs =
            parse_pem(pem).map_err(|m| CloudError::new(K::InvalidRequest, "Tls", None, m))?;
        if certs.is_empty() {
            return Err(CloudError::new(
                K::InvalidRequest,
                "Tls",
                None,
                "the CA bundle holds no PEM certificate",
            ));
        }
        Ok(Self {
            ca_bundle: Some(Arc::new(pem.to_vec())),
            tls: OnceLock::new(),
            http: OnceLock::new(),
            ..self
        })
    }

    /// A fresh connection to PostgreSQL (no pool: an old connection must not make a
    /// gate pass), with where it goes and the password, for messages to blank.
    async fn pg_open(
        &self,
        endpoint: &Endpoint,
        database: &str,
    ) -> CloudResult<(tokio_postgres::Client, AbortOnDrop, String, Secret)> {
        let secret = Secret::from_env(endpoint.password_env.as_deref(), &self.secrets, OP_PG)?;
        let at = format!("{}:{}", endpoint.host, endpoint.port);
        let mut config = tokio_postgres::Config::new();
        config
            .host(&endpoint.host)
            .port(endpoint.port)
            .dbname(database)
            .application_name("drpilot")
            .connect_timeout(CONNECT_TIMEOUT);
        if let Some(user) = &endpoint.user {
            config.user(user);
        }
        if let Some(password) = secret.get() {
            config.password(password);
        }
        let connecting = async {
            // `Prefer` asks for TLS and goes on in plaintext only when the server
            // declines it; a certificate that fails verification is an error, never a
            // reason to fall back.
            let mode = match endpoint.tls {
                Tls::Off => None,
                Tls::Prefer => Some(tokio_postgres::config::SslMode::Prefer),
                Tls::Require => Some(tokio_postgres::config::SslMode::Require),
            };
            match mode {
                Some(mode) => {
                    let tls = self.tls_config(OP_PG)?;
                    config.ssl_mode(mode);
                    pg_connect(
                        &config,
                        tokio_postgres_rustls::MakeRustlsConnect::new((*tls).clone()),
                    )
                    .await
                }
                None => {
                    config.ssl_mode(tokio_postgres::config::SslMode::Disable);
                    pg_connect(&config, tokio_postgres::NoTls).await
                }
            }
            .map_err(|e| pg_error(&e, &at, &secret))
        };
        let (client, connection) = tokio::time::timeout(CONNECT_TIMEOUT, connecting)
            .await
            .map_err(|_| timed_out(OP_PG, &at, "connecting", CONNECT_TIMEOUT))??;
        Ok((client, connection, at, secret))
    }

    /// A fresh connection to Valkey, with where it goes and the password, for messages
    /// to blank.
    async fn valkey_open(
        &self,
        endpoint: &Endpoint,
    ) -> CloudResult<(redis::aio::MultiplexedConnection, String, Secret)> {
        let secret = Secret::from_env(endpoint.password_env.as_deref(), &self.secrets, OP_VALKEY)?;
        let at = format!("{}:{}", endpoint.host, endpoint.port);
        // The Redis protocol has no TLS negotiation: anything but `Off` is TLS.
        let tls = endpoint.tls != Tls::Off;
        let addr = if tls {
            // redis builds its rustls client with the process's default provider: make
            // it the one the rest of drpilot uses (a no-op once installed).
            let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
            redis::ConnectionAddr::TcpTls {
                host: endpoint.host.clone(),
                port: endpoint.port,
                insecure: false,
                tls_params: None,
            }
        } else {
            redis::ConnectionAddr::Tcp(endpoint.host.clone(), endpoint.port)
        };
        let mut settings = redis::RedisConnectionInfo::default().set_skip_set_lib_name();
        if let Some(user) = &endpoint.user {
            settings = settings.set_username(user);
        }
        if let Some(password) = secret.get() {
            settings = settings.set_password(password);
        }
        let fail = |e: redis::RedisError| redis_error(&e, &at, &secret);
        let info = redis::IntoConnectionInfo::into_connection_info(addr)
            .map_err(fail)?
            .set_redis_settings(settings);
        let client = match (&self.ca_bundle, tls) {
            (Some(pem), true) => redis::Client::build_with_tls(
                info,
                redis::TlsCertificates {
                    client_tls: None,
                    root_cert: Some(pem.to_vec()),
                },
            ),
            _ => redis::Client::open(info),
        }
        .map_err(fail)?;
        let config = redis::AsyncConnectionConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(QUERY_TIMEOUT));
        let con = tokio::time::timeout(
            CONNECT_TIMEOUT,
            client.get_multiplexed_async_connection_with_config(&config),
        )
        .await
        .map_err(|_| timed_out(OP_VALKEY, &at, "connecting", CONNECT_TIMEOUT))?
        .map_err(fail)?;
        Ok((con, at, secret))
    }

    /// Runs SQL statements one at a time on a PostgreSQL server (each outside any
    /// transaction block, as `ALTER SYSTEM` needs): the first column of the last
    /// statement's rows. For the simulated world's local lab (`sim/lab.rs`).
    pub(crate) async fn admin_sql(
        &self,
        endpoint: &Endpoint,
        database: &str,
        statements: &[&str],
    ) -> CloudResult<Vec<Option<String>>> {
        let (client, _connection, at, secret) = self.pg_open(endpoint, database).await?;
        let mut last = Vec::new();
        for sql in statements {
            last = pg_query(&client, sql, &at, &secret).await?;
        }
        Ok(last)
    }

    /// Runs one command on a Valkey / redis server; its reply as text. For the local
    /// lab (`sim/lab.rs`).
    pub(crate) async fn admin_redis(
        &self,
        endpoint: &Endpoint,
        args: &[&str],
    ) -> CloudResult<String> {
        let (mut con, at, secret) = self.valkey_open(endpoint).await?;
        let Some((name, rest)) = args.split_first() else {
            return Ok(String::new());
        };
        let mut cmd = redis::cmd(name);
        for a in rest {
            cmd.arg(*a);
        }
        let reply: redis::Value = cmd
            .query_async(&mut con)
            .await
            .map_err(|e| redis_error(&e, &at, &secret))?;
        Ok(match reply {
            redis::Value::SimpleString(s) => s,
            redis::Value::BulkString(b) => String::from_utf8_lossy(&b).into_owned(),
            other => format!("{other:?}"),
        })
    }

    fn tls_config(&self, op: &str) -> CloudResult<Arc<rustls::ClientConfig>> {
        self.tls
            .get_or_init(|| build_tls_config(self.ca_bundle.as_deref().map(Vec::as_slice)))
            .clone()
            .map_err(|m| CloudError::new(K::InvalidRequest, op, None, m))
    }

    fn http_client(&self) -> CloudResult<&HttpClient<Https, Empty<Bytes>>> {
        let built = self.http.get_or_init(|| {
            // Without usable roots (which `http` reports for an https URL before it gets
            // here) plain http still works.
            let tls = match self.tls_config(OP_HTTP) {
                Ok(tls) => tls,
                Err(_) => tls_with_roots(rustls::RootCertStore::empty())?,
            };
            let mut http = HttpConnector::new();
            http.enforce_http(false);
            http.set_connect_timeout(Some(CONNECT_TIMEOUT));
            http.set_nodelay(true);
            let https = hyper_rustls::HttpsConnectorBuilder::new()
                .with_tls_config((*tls).clone())
                .https_or_http()
                .enable_http1()
                .wrap_connector(http);
            Ok(HttpClient::builder(TokioExecutor::new())
                .pool_max_idle_per_host(0)
                .build(https))
        });
        built
            .as_ref()
            .map_err(|m| CloudError::new(K::InvalidRequest, OP_HTTP, None, m.clone()))
    }
}

/// The certificates of a PEM bundle.
fn parse_pem(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, String> {
    CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("the CA bundle is not valid PEM: {e}"))
}

/// The TLS settings of every probe: the CA bundle's certificates, else the system's.
fn build_tls_config(ca_bundle: Option<&[u8]>) -> Result<Arc<rustls::ClientConfig>, String> {
    let mut roots = rustls::RootCertStore::empty();
    match ca_bundle {
        Some(pem) => {
            for cert in parse_pem(pem)? {
                roots
                    .add(cert)
                    .map_err(|e| format!("a certificate of the CA bundle is unusable: {e}"))?;
            }
        }
        None => {
            // Unreadable entries are skipped (as OpenSSL does) as long as some roots load.
            let found = rustls_native_certs::load_native_certs();
            let (added, _ignored) = roots.add_parsable_certificates(found.certs);
            if added == 0 {
                let why = found
                    .errors
                    .first()
                    .map(|e| format!(": {e}"))
                    .unwrap_or_default();
                return Err(format!(
                    "no trusted root certificates found in the system's store{why} \
                     (install ca-certificates, or set SSL_CERT_FILE)"
                ));
            }
        }
    }
    tls_with_roots(roots)
}

/// The TLS settings of a client trusting the system's roots (the notifier's webhooks).
pub fn system_tls_config() -> Result<Arc<rustls::ClientConfig>, String> {
    build_tls_config(None)
}

/// TLS settings trusting nothing: a client that only speaks plain http, when the
/// system has no roots.
pub fn tls_with_no_roots() -> Result<Arc<rustls::ClientConfig>, String> {
    tls_with_roots(rustls::RootCertStore::empty())
}

/// rustls with the crypto provider the AWS SDK already uses, trusting `roots`.
fn tls_with_roots(roots: rustls::RootCertStore) -> Result<Arc<rustls::ClientConfig>, String> {
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| format!("TLS setup failed: {e}"))?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(Arc::new(config))
}

// ------------------------------------------------------------------------ canaries

/// A canary id no other probe (of this process or another) uses at the same time.
fn canary_id() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!(
        "drpilot-{}-{nanos:x}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

// ------------------------------------------------------------------------ postgres

/// Aborts the driver's connection task when the probe ends (or is cancelled by the
/// step's timeout), so no connection outlives its probe.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

async fn pg_connect<T>(
    config: &tokio_postgres::Config,
    tls: T,
) -> Result<(tokio_postgres::Client, AbortOnDrop), tokio_postgres::Error>
where
    T: tokio_postgres::tls::MakeTlsConnect<tokio_postgres::Socket>,
    T::Stream: Send + 'static,
{
    let (client, connection) = config.connect(tls).await?;
    let task = tokio::spawn(async move {
        // The client sees a broken connection as an error of its next query.
        let _ = connection.await;
    });
    Ok((client, AbortOnDrop(task)))
}

/// One simple-protocol query with the per-query timeout: the first column of each row.
/// The simple protocol needs no prepared statement, so it also works through poolers.
async fn pg_query(
    client: &tokio_postgres::Client,
    sql: &str,
    at: &str,
    secret: &Secret,
) -> CloudResult<Vec<Option<String>>> {
    let messages = tokio::time::timeout(QUERY_TIMEOUT, client.simple_query(sql))
        .await
        .map_err(|_| timed_out(OP_PG, at, "query", QUERY_TIMEOUT))?
        .map_err(|e| pg_error(&e, at, secret))?;
    Ok(messages
        .into_iter()
        .filter_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(row) => Some(row.get(0).map(str::to_string)),
            _ => None,
        })
        .collect())
}

/// Writes a row with a fresh id, reads it back and deletes it (and any canary older
/// than a day, left by a probe that was cancelled half-way). `Ok(false)` when the server
/// refused the write as read-only: the endpoint turned into a reader meanwhile.
async fn pg_canary(
    client: &tokio_postgres::Client,
    at: &str,
    secret: &Secret,
) -> CloudResult<bool> {
    let id = canary_id();
    let steps = [
        "CREATE TABLE IF NOT EXISTS drpilot_canary \
         (id text PRIMARY KEY, written_at timestamptz NOT NULL)"
            .to_string(),
        format!(
            "INSERT INTO drpilot_canary (id, written_at) VALUES ('{id}', now()) \
             ON CONFLICT (id) DO UPDATE SET written_at = excluded.written_at"
        ),
    ];
    for sql in &steps {
        match pg_query(client, sql, at, secret).await {
            Ok(_) => {}
            Err(e) if e.kind == K::InvalidState => return Ok(false),
            Err(e) => return Err(e),
        }
    }
    let read = pg_query(
        client,
        &format!("SELECT id FROM drpilot_canary WHERE id = '{id}'"),
        at,
        secret,
    )
    .await?;
    pg_query(
        client,
        &format!(
            "DELETE FROM drpilot_canary WHERE id = '{id}' \
             OR written_at < now() - interval '1 day'"
        ),
        at,
        secret,
    )
    .await?;
    Ok(read == [Some(id)])
}

// -------------------------------------------------------------------------- valkey

/// The first element of a `ROLE` reply: `master`, `slave` (or `sentinel`).
fn role_of(reply: &redis::Value) -> Option<String> {
    let redis::Value::Array(items) = reply else {
        return None;
    };
    match items.first()? {
        redis::Value::BulkString(b) => Some(String::from_utf8_lossy(b).into_owned()),
        redis::Value::SimpleString(s) => Some(s.clone()),
        _ => None,
    }
}

// ----------------------------------------------------------------------- heartbeats

/// A heartbeat table's name, quoted: `name` or `schema.name`, each an SQL identifier.
fn pg_table(table: &str, op: &str) -> CloudResult<String> {
    crate::heartbeat::quoted_table(table)
        .map_err(|m| CloudError::new(K::InvalidRequest, op, None, m))
}

/// Text for a single-quoted SQL literal.
fn sql_text(text: &str) -> String {
    text.replace('\'', "''")
}

/// `writer:seq:at_ms:prev_at_ms` (`-` for none).
fn parse_valkey_beat(member: &str) -> Option<Heartbeat> {
    let mut parts = member.split(':');
    let writer = parts.next()?.to_string();
    let seq = parts.next()?.parse().ok()?;
    let at_ms = parts.next()?.parse().ok()?;
    let prev_at_ms = match parts.next()? {
        "-" => None,
        p => Some(p.parse().ok()?),
    };
    parts.next().is_none().then_some(Heartbeat {
        writer,
        seq,
        at_ms,
        prev_at_ms,
    })
}

/// The heartbeats of a sorted set's members, read from `key` at `at`.
fn valkey_beats(members: &[String], at: &str, key: &str) -> CloudResult<Vec<Heartbeat>> {
    members
        .iter()
        .map(|m| {
            parse_valkey_beat(m).ok_or_else(|| {
                CloudError::new(
                    K::InvalidState,
                    OP_VALKEY,
                    None,
                    format!("{at}: {key} has a member drpilot did not write"),
                )
            })
        })
        .collect()
}

// ----------------------------------------------------------------------- the trait

#[async_trait]
impl DataPlane for LiveDataPlane {
    async fn http(&self, probe: &HttpProbe) -> CloudResult<HttpObservation> {
        let invalid = |m: String| CloudError::new(K::InvalidRequest, OP_HTTP, None, m);
        let url = shown(&probe.url);
        let uri: hyper::Uri = probe
            .url
            .parse()
            .map_err(|e| invalid(format!("{url} is not a valid URL: {e}")))?;
        if !matches!(uri.scheme_str(), Some("http" | "https")) {
            return Err(invalid(format!("{url} is not an http(s) URL")));
        }
        if uri.authority().is_some_and(|a| a.as_str().contains('@')) {
            // Validation keeps credentials out of runbook URLs; never send one either.
            return Err(invalid(
                "a URL with credentials (user:password@) is never probed".into(),
            ));
        }
        if uri.scheme_str() == Some("https") {
            // No usable roots: say so, rather than "unknown issuer" for every server.
            self.tls_config(OP_HTTP)?;
        }
        let method = match probe.method.to_ascii_uppercase().as_str() {
            "GET" => hyper::Method::GET,
            "HEAD" => hyper::Method::HEAD,
            "POST" => hyper::Method::POST,
            other => return Err(invalid(format!("method {other} is not GET, HEAD or POST"))),
        };
        let request = hyper::Request::builder()
            .method(method)
            .uri(uri)
            .header(
                hyper::header::USER_AGENT,
                concat!("drpilot/", env!("CARGO_PKG_VERSION")),
            )
            .body(Empty::<Bytes>::new())
            .map_err(|e| invalid(format!("{url}: {e}")))?;
        let client = self.http_client()?;
        let started = Instant::now();
        let exchange = async {
            let response = client.request(request).await.map_err(|e| {
                let kind = if tls_failure(&e).is_some() {
                    K::InvalidRequest
                } else if e.is_connect() {
                    K::Unreachable
                } else {
                    K::Transient
                };
                CloudError::new(kind, OP_HTTP, None, format!("{url}: {}", chain(&e)))
            })?;
            let status = response.status().as_u16();
            let mut body = response.into_body();
            let mut kept = Vec::new();
            while kept.len() < MAX_HTTP_BODY {
                match body.frame().await {
                    None => break,
                    Some(Ok(frame)) => {
                        if let Ok(data) = frame.into_data() {
                            let room = MAX_HTTP_BODY - kept.len();
                            kept.extend_from_slice(&data[..data.len().min(room)]);
                        }
                    }
                    Some(Err(e)) => {
                        return Err(CloudError::new(
                            K::Transient,
                            OP_HTTP,
                            None,
                            format!("{url}: reading the body failed: {}", chain(&e)),
                        ));
                    }
                }
            }
            Ok((status, kept))
        };
        let (status, body) = tokio::time::timeout(probe.timeout, exchange)
            .await
            .map_err(|_| timed_out(OP_HTTP, &url, "the request", probe.timeout))??;
        Ok(HttpObservation {
            status,
            body: String::from_utf8_lossy(&body).into_owned(),
            latency: started.elapsed(),
        })
    }

    async fn postgres(
        &self,
        endpoint: &Endpoint,
        database: &str,
        canary: bool,
    ) -> CloudResult<PostgresObservation> {
        let (client, _connection, at, secret) = self.pg_open(endpoint, database).await?;
        let rows = pg_query(&client, "SELECT pg_is_in_recovery()", &at, &secret).await?;
        let in_recovery = match rows.first() {
            Some(Some(v)) if v == "t" => true,
            Some(Some(v)) if v == "f" => false,
            other => {
                return Err(CloudError::new(
                    K::Transient,
                    OP_PG,
                    None,
                    format!("{at}: unexpected answer to pg_is_in_recovery(): {other:?}"),
                ));
            }
        };
        let canary_ok = if !canary {
            None
        } else if in_recovery {
            // A reader refuses writes; the action reports the role.
            Some(false)
        } else {
            Some(pg_canary(&client, &at, &secret).await?)
        };
        Ok(PostgresObservation {
            in_recovery,
            canary_ok,
        })
    }

    async fn valkey(
        &self,
        endpoint: &Endpoint,
        cluster: ClusterMode,
        canary: bool,
    ) -> CloudResult<ValkeyObservation> {
        let (mut con, at, secret) = self.valkey_open(endpoint).await?;
        let fail = |e: redis::RedisError| redis_error(&e, &at, &secret);
        let reply: redis::Value = redis::cmd("ROLE")
            .query_async(&mut con)
            .await
            .map_err(fail)?;
        let role = role_of(&reply).ok_or_else(|| {
            CloudError::new(
                K::Transient,
                OP_VALKEY,
                None,
                format!("{at}: unexpected ROLE reply {reply:?}"),
            )
        })?;
        if Self::is_cluster(&mut con, cluster, &at, &secret).await? {
            let shards = Self::topology(&mut con, endpoint, &at, &secret).await?;
            drop(con);
            let seen = self.valkey_cluster(endpoint, shards, canary).await?;
            let canary_ok = canary.then(|| {
                !seen.shards.is_empty() && seen.shards.iter().all(|s| s.canary_ok == Some(true))
            });
            return Ok(ValkeyObservation {
                role,
                canary_ok,
                cluster: Some(seen),
            });
        }
        let canary_ok = if canary {
            let id = canary_id();
            let key = format!("drpilot:canary:{id}");
            let set: Result<(), _> = redis::cmd("SET")
                .arg(&key)
                .arg(&id)
                .arg("EX")
                .arg(60)
                .query_async(&mut con)
                .await;
            match set {
                Ok(()) => {
                    let got: Option<String> = redis::cmd("GET")
                        .arg(&key)
                        .query_async(&mut con)
                        .await
                        .map_err(fail)?;
                    Some(got.as_deref() == Some(id.as_str()))
                }
                // READONLY: the node is a replica now.
                Err(e) if fail(e.clone()).kind == K::InvalidState => Some(false),
                Err(e) => return Err(fail(e)),
            }
        } else {
            None
        };
        Ok(ValkeyObservation {
            role,
            canary_ok,
            cluster: None,
        })
    }

    async fn heartbeat_shards(&self, target: &HeartbeatTarget) -> CloudResult<Vec<HeartbeatShard>> {
        match &target.store {
            HeartbeatStore::Postgres { .. } => Ok(vec![HeartbeatShard::whole()]),
            HeartbeatStore::Valkey { cluster: mode, .. } => {
                match self.cluster_shards(&target.endpoint, *mode).await? {
                    Some(shards) => Ok(cluster::heartbeat_shards(&shards)),
                    None => Ok(vec![HeartbeatShard::whole()]),
                }
            }
        }
    }

    async fn heartbeat_write(
        &self,
        target: &HeartbeatTarget,
        shard: &HeartbeatShard,
        beat: &Heartbeat,
        keep: Duration,
    ) -> CloudResult<()> {
        let cutoff = crate::heartbeat::before(beat.at_ms, keep);
        match &target.store {
            HeartbeatStore::Postgres { database, table } => {
                let table = pg_table(table, OP_PG)?;
                let (client, _connection, at, secret) =
                    self.pg_open(&target.endpoint, database).await?;
                let prev = beat
                    .prev_at_ms
                    .map_or_else(|| "NULL".to_string(), |p| p.to_string());
                // One implicit transaction: the heartbeat and the trim land together.
                let sql = format!(
                    "CREATE TABLE IF NOT EXISTS {table} (writer text NOT NULL, \
                     seq bigint NOT NULL, at_ms bigint NOT NULL, prev_at_ms bigint, \
                     PRIMARY KEY (writer, seq)); \
                     INSERT INTO {table} (writer, seq, at_ms, prev_at_ms) \
                     VALUES ('{}', {}, {}, {prev}) ON CONFLICT (writer, seq) DO NOTHING; \
                     DELETE FROM {table} WHERE at_ms < {cutoff}",
                    sql_text(&beat.writer),
                    beat.seq,
                    beat.at_ms,
                );
                pg_query(&client, &sql, &at, &secret).await.map(drop)
            }
            HeartbeatStore::Valkey { key, .. } => {
                let member = format!(
                    "{}:{}:{}:{}",
                    beat.writer,
                    beat.seq,
                    beat.at_ms,
                    beat.prev_at_ms
                        .map_or_else(|| "-".to_string(), |p| p.to_string())
                );
                let key = shard.key(key);
                let mut add = redis::cmd("ZADD");
                add.arg(&key).arg(beat.at_ms).arg(&member);
                let mut trim = redis::cmd("ZREMRANGEBYSCORE");
                trim.arg(&key).arg("-inf").arg(format!("({cutoff}"));
                if shard.tag.is_some() {
                    // A cluster's shard: sent to the primary serving the tag's slot.
                    let mut router = cluster::Router::new(self, &target.endpoint);
                    let start = Self::start_of(shard, &target.endpoint);
                    let written = async {
                        let (_, at) = router.routed::<i64>(&start, &add).await?;
                        router.routed::<i64>(&at, &trim).await.map(drop)
                    };
                    return written.await.map_err(|e| cluster::in_shard(e, shard));
                }
                let (mut con, at, secret) = self.valkey_open(&target.endpoint).await?;
                let fail = |e: redis::RedisError| redis_error(&e, &at, &secret);
                let () = add
                    .query_async::<i64>(&mut con)
                    .await
                    .map(drop)
                    .map_err(fail)?;
                trim.query_async::<i64>(&mut con)
                    .await
                    .map(drop)
                    .map_err(fail)
            }
        }
    }

    async fn heartbeat_read(
        &self,
        target: &HeartbeatTarget,
        since_ms: i64,
    ) -> CloudResult<Vec<ShardBeats>> {
        if let HeartbeatStore::Valkey { key, cluster: mode } = &target.store
            && let Some(shards) = self.cluster_shards(&target.endpoint, *mode).await?
        {
            let reads = cluster::heartbeat_shards(&shards)
                .into_iter()
                .map(|shard| async move {
                    let mut router = cluster::Router::new(self, &target.endpoint);
                    let start = Self::start_of(&shard, &target.endpoint);
                    let mut range = redis::cmd("ZRANGEBYSCORE");
                    range.arg(shard.key(key)).arg(since_ms).arg("+inf");
                    let read = async {
                        let (members, at) = router.routed::<Vec<String>>(&start, &range).await?;
                        valkey_beats(&members, &at.to_string(), &shard.key(key))
                    };
                    match read.await {
                        Ok(beats) => Ok(ShardBeats { shard, beats }),
                        Err(e) => Err(cluster::in_shard(e, &shard)),
                    }
                });
            return futures_util::future::join_all(reads)
                .await
                .into_iter()
                .collect();
        }
        let beats = self.heartbeat_read_whole(target, since_ms).await?;
        Ok(vec![ShardBeats {
            shard: HeartbeatShard::whole(),
            beats,
        }])
    }

    async fn resolve(
        &self,
        name: &str,
        record_type: &str,
        resolvers: &[String],
    ) -> CloudResult<Vec<String>> {
        let rtype = match record_type.to_ascii_uppercase().as_str() {
            "A" => RecordType::A,
            "AAAA" => RecordType::AAAA,
            "CNAME" => RecordType::CNAME,
            other => {
                return Err(CloudError::new(
                    K::InvalidRequest,
                    OP_DNS,
                    None,
                    format!("record type {other} is not A, AAAA or CNAME"),
                ));
            }
        };
        let resolver = build_resolver(resolvers)?;
        let lookup = match resolver.lookup(absolute(name), rtype).await {
            Ok(l) => l,
            Err(e) => return dns_error(&e, name, record_type),
        };
        let mut answer = Vec::new();
        for record in lookup.answers() {
            let value = match &record.data {
                RData::A(a) if rtype == RecordType::A => a.0.to_string(),
                RData::AAAA(a) if rtype == RecordType::AAAA => a.0.to_string(),
                RData::CNAME(c) if rtype == RecordType::CNAME => {
                    c.0.to_utf8().trim_end_matches('.').to_string()
                }
                // The CNAMEs an A or AAAA answer passed through.
                _ => continue,
            };
            if !answer.contains(&value) {
                answer.push(value);
            }
        }
        Ok(answer)
    }
}

impl LiveDataPlane {
    /// The heartbeats of a store that is not a cluster.
    async fn heartbeat_read_whole(
        &self,
        target: &HeartbeatTarget,
        since_ms: i64,
    ) -> CloudResult<Vec<Heartbeat>> {
        match &target.store {
            HeartbeatStore::Postgres { database, table } => {
                let table = pg_table(table, OP_PG)?;
                let (client, _connection, at, secret) =
                    self.pg_open(&target.endpoint, database).await?;
                let sql = format!(
                    "SELECT writer, seq, at_ms, prev_at_ms FROM {table} WHERE at_ms >= {since_ms}"
                );
                let messages = match tokio::time::timeout(QUERY_TIMEOUT, client.simple_query(&sql))
                    .await
                    .map_err(|_| timed_out(OP_PG, &at, "query", QUERY_TIMEOUT))?
                {
                    Ok(m) => m,
                    // undefined_table: no writer ever wrote here.
                    Err(e) if e.code().is_some_and(|c| c.code() == "42P01") => {
                        return Ok(Vec::new());
                    }
                    Err(e) => return Err(pg_error(&e, &at, &secret)),
                };
                let mut beats = Vec::new();
                for m in messages {
                    let tokio_postgres::SimpleQueryMessage::Row(row) = m else {
                        continue;
                    };
                    let field = |i: usize| row.get(i).map(str::to_string);
                    let parsed = (|| {
                        Some(Heartbeat {
                            writer: field(0)?,
                            seq: field(1)?.parse().ok()?,
                            at_ms: field(2)?.parse().ok()?,
                            prev_at_ms: match field(3) {
                                Some(p) => Some(p.parse().ok()?),
                                None => None,
                            },
                        })
                    })();
                    match parsed {
                        Some(b) => beats.push(b),
                        None => {
                            return Err(CloudError::new(
                                K::InvalidState,
                                OP_PG,
                                None,
                                format!("{at}: {table} has a row drpilot did not write"),
                            ));
                        }
                    }
                }
                Ok(beats)
            }
            HeartbeatStore::Valkey { key, .. } => {
                let (mut con, at, secret) = self.valkey_open(&target.endpoint).await?;
                let members: Vec<String> = redis::cmd("ZRANGEBYSCORE")
                    .arg(key)
                    .arg(since_ms)
                    .arg("+inf")
                    .query_async(&mut con)
                    .await
                    .map_err(|e| redis_error(&e, &at, &secret))?;
                valkey_beats(&members, &at, key)
            }
        }
    }
}

#[cfg(test)]
mod tests;
