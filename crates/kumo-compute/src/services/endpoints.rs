//! Interface VPC endpoints: Kumo's own API served inside a VPC's namespace, over HTTPS on
//! each endpoint interface's address, as AWS serves a service on its endpoint's network
//! interfaces. The certificate is signed by the data directory's local certificate authority
//! ([`Authority`]), which every guest's init adds to its trust store at boot, so `curl` and the
//! SDKs in a guest verify `https://ec2.<region>.amazonaws.com` as they would on AWS.
//!
//! A connection is decrypted here and carried byte for byte to Kumo's API listener (the
//! upstream), which answers it as any other request: the signature the client made for the
//! service's name is checked there.

use openssl::asn1::Asn1Time;
use openssl::bn::{BigNum, MsbOption};
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::ssl::{SslAcceptor, SslMethod};
use openssl::x509::extension::{
    BasicConstraints, ExtendedKeyUsage, KeyUsage, SubjectAlternativeName, SubjectKeyIdentifier,
};
use openssl::x509::{X509Name, X509};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

/// The data directory's certificate authority: an EC P-256 key and a self-signed certificate,
/// made once and kept in `<data>/tls` (`ca.pem`, `ca.key`, the key readable by root only).
pub struct Authority {
    cert: X509,
    key: PKey<Private>,
    pem: String,
}

fn ssl_err(what: &str, e: openssl::error::ErrorStack) -> std::io::Error {
    std::io::Error::other(format!("{what}: {e}"))
}

/// Now, in seconds since the epoch: certificates are valid from a day before, so a guest
/// whose clock runs a little behind still takes them.
fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

fn new_key() -> Result<PKey<Private>, openssl::error::ErrorStack> {
    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1)?;
    PKey::from_ec_key(EcKey::generate(&group)?)
}

fn serial() -> Result<openssl::asn1::Asn1Integer, openssl::error::ErrorStack> {
    let mut bn = BigNum::new()?;
    bn.rand(127, MsbOption::MAYBE_ZERO, false)?;
    bn.to_asn1_integer()
}

impl Authority {
    /// The authority kept in `dir`, made there first if there is none.
    pub fn load_or_make(dir: &Path) -> std::io::Result<Authority> {
        let (cert_path, key_path) = (dir.join("ca.pem"), dir.join("ca.key"));
        if let (Ok(pem), Ok(key)) = (
            std::fs::read_to_string(&cert_path),
            std::fs::read(&key_path),
        ) {
            let cert = X509::from_pem(pem.as_bytes()).map_err(|e| ssl_err("ca.pem", e))?;
            let key = PKey::private_key_from_pem(&key).map_err(|e| ssl_err("ca.key", e))?;
            return Ok(Authority { cert, key, pem });
        }
        let (cert, key) = Self::make().map_err(|e| ssl_err("make the local CA", e))?;
        std::fs::create_dir_all(dir)?;
        let key_pem = key
            .private_key_to_pem_pkcs8()
            .map_err(|e| ssl_err("ca.key", e))?;
        {
            use std::os::unix::fs::OpenOptionsExt;
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&key_path)?;
            std::io::Write::write_all(&mut f, &key_pem)?;
        }
        let pem =
            String::from_utf8_lossy(&cert.to_pem().map_err(|e| ssl_err("ca.pem", e))?).into_owned();
        std::fs::write(&cert_path, &pem)?;
        tracing::info!(path = %cert_path.display(), "made the local certificate authority for VPC endpoints");
        Ok(Authority { cert, key, pem })
    }

    fn make() -> Result<(X509, PKey<Private>), openssl::error::ErrorStack> {
        let key = new_key()?;
        let mut name = X509Name::builder()?;
        name.append_entry_by_nid(Nid::ORGANIZATIONNAME, "Kumo")?;
        name.append_entry_by_nid(Nid::COMMONNAME, "Kumo local CA")?;
        let name = name.build();
        let mut b = X509::builder()?;
        b.set_version(2)?;
        let serial = serial()?;
        b.set_serial_number(&serial)?;
        b.set_subject_name(&name)?;
        b.set_issuer_name(&name)?;
        b.set_pubkey(&key)?;
        let (from, to) = (
            Asn1Time::from_unix(now() - 86_400)?,
            Asn1Time::days_from_now(3650)?,
        );
        b.set_not_before(&from)?;
        b.set_not_after(&to)?;
        b.append_extension(BasicConstraints::new().critical().ca().build()?)?;
        b.append_extension(
            KeyUsage::new()
                .critical()
                .key_cert_sign()
                .crl_sign()
                .build()?,
        )?;
        let ski = SubjectKeyIdentifier::new().build(&b.x509v3_context(None, None))?;
        b.append_extension(ski)?;
        b.sign(&key, MessageDigest::sha256())?;
        Ok((b.build(), key))
    }

    /// The authority's certificate, PEM: what a guest adds to its trust store.
    pub fn pem(&self) -> &str {
        &self.pem
    }

    /// A server certificate for `names` (a fresh key, signed by the authority, valid a year),
    /// as a TLS acceptor.
    pub fn acceptor(&self, names: &[String]) -> std::io::Result<SslAcceptor> {
        self.make_acceptor(names)
            .map_err(|e| ssl_err("make an endpoint certificate", e))
    }

    fn make_acceptor(&self, names: &[String]) -> Result<SslAcceptor, openssl::error::ErrorStack> {
        let key = new_key()?;
        let mut subject = X509Name::builder()?;
        subject.append_entry_by_nid(
            Nid::COMMONNAME,
            names.first().map(String::as_str).unwrap_or("kumo"),
        )?;
        let subject = subject.build();
        let mut b = X509::builder()?;
        b.set_version(2)?;
        let serial = serial()?;
        b.set_serial_number(&serial)?;
        b.set_subject_name(&subject)?;
        b.set_issuer_name(self.cert.subject_name())?;
        b.set_pubkey(&key)?;
        let (from, to) = (
            Asn1Time::from_unix(now() - 86_400)?,
            Asn1Time::days_from_now(365)?,
        );
        b.set_not_before(&from)?;
        b.set_not_after(&to)?;
        b.append_extension(BasicConstraints::new().build()?)?;
        b.append_extension(
            KeyUsage::new()
                .critical()
                .digital_signature()
                .key_agreement()
                .build()?,
        )?;
        b.append_extension(ExtendedKeyUsage::new().server_auth().build()?)?;
        let mut san = SubjectAlternativeName::new();
        for n in names {
            san.dns(n);
        }
        let san = san.build(&b.x509v3_context(Some(&self.cert), None))?;
        b.append_extension(san)?;
        b.sign(&self.key, MessageDigest::sha256())?;
        let cert = b.build();
        let mut a = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls_server())?;
        a.set_private_key(&key)?;
        a.set_certificate(&cert)?;
        a.add_extra_chain_cert(self.cert.clone())?;
        a.check_private_key()?;
        Ok(a.build())
    }
}

/// The address endpoint connections reach Kumo's API from: the API tells them apart by it
/// and refuses them its operator paths (`/_kumo/reset`, `/_kumo/admin`), which only the
/// server's own host may use.
pub const SOURCE: std::net::Ipv4Addr = std::net::Ipv4Addr::new(127, 0, 0, 2);

/// Connections one endpoint address carries at once; more wait for a free one.
const MAX_CONNECTIONS: usize = 512;

/// The acceptor an endpoint serves with, replaced in place when its names change (so its
/// listener stays bound).
pub type Acceptor = Arc<std::sync::Mutex<Arc<SslAcceptor>>>;

/// Serves one endpoint address: each connection's TLS is ended here and its bytes carried to
/// `upstream` and back, from [`SOURCE`], until either side closes (the API closes idle
/// connections, so none lasts for ever). A failed handshake ends only its connection. The
/// connections belong to this task: aborting it (the endpoint is gone, or its VPC) ends
/// them all.
pub async fn serve(listener: tokio::net::TcpListener, acceptor: Acceptor, upstream: SocketAddr) {
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    let mut tasks = tokio::task::JoinSet::new();
    loop {
        let Ok(permit) = slots.clone().acquire_owned().await else {
            return;
        };
        let (tcp, peer) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                // Out of descriptors, say: wait rather than spin.
                tracing::debug!(error = %e, "a VPC endpoint could not accept a connection");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        while tasks.try_join_next().is_some() {}
        let acceptor = acceptor.lock().unwrap_or_else(|p| p.into_inner()).clone();
        tasks.spawn(async move {
            if let Err(e) = carry(tcp, &acceptor, upstream).await {
                tracing::debug!(%peer, error = %e, "a VPC endpoint connection ended");
            }
            drop(permit);
        });
    }
}

/// Copies `from` to `to` until `from` ends.
async fn pump(
    from: &mut (impl tokio::io::AsyncRead + Unpin),
    to: &mut (impl tokio::io::AsyncWrite + Unpin),
) -> std::io::Result<()> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = from.read(&mut buf).await?;
        if n == 0 {
            return Ok(());
        }
        to.write_all(&buf[..n]).await?;
    }
}

async fn carry(
    tcp: tokio::net::TcpStream,
    acceptor: &SslAcceptor,
    upstream: SocketAddr,
) -> std::io::Result<()> {
    use tokio::io::AsyncWriteExt;
    let within = |secs| std::time::Duration::from_secs(secs);
    let timed_out = || std::io::Error::from(std::io::ErrorKind::TimedOut);
    let ssl = openssl::ssl::Ssl::new(acceptor.context()).map_err(|e| ssl_err("TLS", e))?;
    let mut tls = tokio_openssl::SslStream::new(ssl, tcp).map_err(|e| ssl_err("TLS", e))?;
    // A client that never finishes its handshake does not hold the task for ever.
    tokio::time::timeout(within(10), std::pin::Pin::new(&mut tls).accept())
        .await
        .map_err(|_| timed_out())?
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    let socket = tokio::net::TcpSocket::new_v4()?;
    socket.bind(SocketAddr::from((SOURCE, 0)))?;
    let api = tokio::time::timeout(within(5), socket.connect(upstream))
        .await
        .map_err(|_| timed_out())??;
    let _ = api.set_nodelay(true);
    // Bytes both ways until either side is done: then both close.
    let (mut tr, mut tw) = tokio::io::split(tls);
    let (mut ar, mut aw) = api.into_split();
    let r = tokio::select! {
        r = pump(&mut tr, &mut aw) => r,
        r = pump(&mut ar, &mut tw) => r,
    };
    let _ = tw.shutdown().await;
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_authority_is_made_once_and_signs_its_names() {
        let dir = std::env::temp_dir().join(format!("kumo-ca-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let a = Authority::load_or_make(&dir).unwrap();
        let again = Authority::load_or_make(&dir).unwrap();
        assert_eq!(a.pem(), again.pem(), "the second start reads the same CA");
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.join("ca.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        // The leaf certificate verifies against the CA, for exactly its names.
        let names = vec!["ec2.eu-west-1.amazonaws.com".to_string()];
        let acceptor = a.acceptor(&names).unwrap();
        let leaf = acceptor.context().certificate().unwrap().to_owned();
        assert!(leaf.verify(&a.cert.public_key().unwrap()).unwrap());
        let sans: Vec<String> = leaf
            .subject_alt_names()
            .unwrap()
            .iter()
            .filter_map(|n| n.dnsname().map(str::to_string))
            .collect();
        assert_eq!(sans, names);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
