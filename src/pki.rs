//! The cluster's public-key infrastructure: one CA and the certificates every component
//! presents, plus the rustls configurations built from them.
//!
//! Every hop of rkind is authenticated by certificate, as in a kubeadm cluster: the API
//! server knows who is calling from the client certificate's subject (CN = user,
//! O = groups), and the kubelet only accepts the API server's client certificate.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};
use rustls::RootCertStore;
use rustls::server::WebPkiClientVerifier;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// Errors while creating, loading or using certificates.
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    /// A file of the PKI directory could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file concerned.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// Certificate generation or parsing failed.
    #[error("certificate error: {0}")]
    Rcgen(#[from] rcgen::Error),
    /// rustls refused a certificate or key.
    #[error("TLS configuration error: {0}")]
    Tls(#[from] rustls::Error),
    /// The client-certificate verifier could not be built.
    #[error("TLS verifier error: {0}")]
    Verifier(#[from] rustls::server::VerifierBuilderError),
    /// A PEM file held no usable certificate or key.
    #[error("{0}: no certificate or key found in PEM data")]
    Pem(String),
}

/// A certificate and its private key, both PEM-encoded.
#[derive(Clone)]
pub struct Identity {
    /// The certificate (PEM).
    pub cert_pem: String,
    /// The PKCS#8 private key (PEM).
    pub key_pem: String,
}

impl Identity {
    /// The certificate chain as rustls wants it.
    pub fn cert_chain(&self) -> Result<Vec<CertificateDer<'static>>, PkiError> {
        let certs: Vec<_> = CertificateDer::pem_slice_iter(self.cert_pem.as_bytes())
            .collect::<Result<_, _>>()
            .map_err(|e| PkiError::Pem(format!("certificate: {e}")))?;
        if certs.is_empty() {
            return Err(PkiError::Pem("certificate".into()));
        }
        Ok(certs)
    }

    /// The private key as rustls wants it.
    pub fn private_key(&self) -> Result<PrivateKeyDer<'static>, PkiError> {
        PrivateKeyDer::from_pem_slice(self.key_pem.as_bytes())
            .map_err(|e| PkiError::Pem(format!("private key: {e}")))
    }
}

/// Every certificate of one cluster. Generated on the first `rkind up`, reused after.
#[derive(Clone)]
pub struct ClusterPki {
    /// The cluster CA (signs everything else; clients trust it).
    pub ca: Identity,
    /// The API server's serving certificate.
    pub apiserver: Identity,
    /// The admin's client certificate (CN kubernetes-admin, O system:masters).
    pub admin: Identity,
    /// The kubelet's client certificate towards the API server (CN system:node:<node>).
    pub kubelet_client: Identity,
    /// The kubelet's serving certificate (its HTTPS port).
    pub kubelet_serving: Identity,
    /// The API server's client certificate towards the kubelet.
    pub apiserver_kubelet_client: Identity,
    /// The scheduler's client certificate (CN system:kube-scheduler).
    pub scheduler: Identity,
    /// The controller-manager's client certificate (CN system:kube-controller-manager).
    pub controller_manager: Identity,
    /// The API server's loopback client certificate (CN system:apiserver, O
    /// system:masters): what its own start-up hooks (bootstrap objects and policy) write
    /// with, as upstream's loopback client.
    pub loopback: Identity,
    /// The service-account signing key (ECDSA P-256, PKCS#8 PEM; `sa.key`): signs the
    /// bearer tokens the API server issues and verifies.
    pub service_account_key: String,
}

/// The user name the kubelet accepts on its port: only the API server may call it.
pub const APISERVER_KUBELET_CLIENT_CN: &str = "kube-apiserver-kubelet-client";

struct Spec {
    file: &'static str,
    cn: String,
    orgs: Vec<&'static str>,
    sans: Vec<String>,
    server: bool,
    client: bool,
}

impl ClusterPki {
    /// Loads the PKI from `dir`, generating whatever is missing (a new CA invalidates and
    /// regenerates every leaf). Key files are written 0600 and the directory 0700.
    pub fn load_or_create(dir: &Path, node_name: &str) -> Result<Self, PkiError> {
        create_private_dir(dir)?;
        let ca_crt = dir.join("ca.crt");
        let ca_key = dir.join("ca.key");
        let (ca, fresh_ca) = if ca_crt.exists() && ca_key.exists() {
            (
                Identity {
                    cert_pem: read(&ca_crt)?,
                    key_pem: read(&ca_key)?,
                },
                false,
            )
        } else {
            let key = KeyPair::generate()?;
            let mut params = CertificateParams::new(Vec::<String>::new())?;
            params
                .distinguished_name
                .push(DnType::CommonName, "rkind-ca");
            params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            params.key_usages = vec![
                KeyUsagePurpose::KeyCertSign,
                KeyUsagePurpose::CrlSign,
                KeyUsagePurpose::DigitalSignature,
            ];
            let cert = params.self_signed(&key)?;
            let id = Identity {
                cert_pem: cert.pem(),
                key_pem: key.serialize_pem(),
            };
            write_private(&ca_key, &id.key_pem)?;
            write_public(&ca_crt, &id.cert_pem)?;
            (id, true)
        };
        let issuer = Issuer::from_ca_cert_pem(&ca.cert_pem, KeyPair::from_pem(&ca.key_pem)?)?;

        let local_sans = || {
            vec![
                "localhost".to_string(),
                "127.0.0.1".to_string(),
                "::1".to_string(),
            ]
        };
        let mut apiserver_sans = local_sans();
        apiserver_sans.extend(
            [
                "kubernetes",
                "kubernetes.default",
                "kubernetes.default.svc",
                "kubernetes.default.svc.cluster.local",
            ]
            .map(String::from),
        );
        let mut kubelet_sans = local_sans();
        kubelet_sans.push(node_name.to_string());
        let specs = [
            Spec {
                file: "apiserver",
                cn: "kube-apiserver".into(),
                orgs: vec![],
                sans: apiserver_sans,
                server: true,
                client: false,
            },
            Spec {
                file: "admin",
                cn: "kubernetes-admin".into(),
                orgs: vec!["system:masters"],
                sans: vec![],
                server: false,
                client: true,
            },
            Spec {
                file: "kubelet-client",
                cn: format!("system:node:{node_name}"),
                orgs: vec!["system:nodes"],
                sans: vec![],
                server: false,
                client: true,
            },
            Spec {
                file: "kubelet",
                cn: node_name.to_string(),
                orgs: vec![],
                sans: kubelet_sans,
                server: true,
                client: false,
            },
            Spec {
                file: "apiserver-kubelet-client",
                cn: APISERVER_KUBELET_CLIENT_CN.into(),
                orgs: vec!["kubeadm:cluster-admins"],
                sans: vec![],
                server: false,
                client: true,
            },
            Spec {
                file: "scheduler",
                cn: "system:kube-scheduler".into(),
                orgs: vec![],
                sans: vec![],
                server: false,
                client: true,
            },
            // Added later than the others: older data directories get it on their next
            // start (a missing file is issued by the existing CA, the rest reused).
            Spec {
                file: "controller-manager",
                cn: "system:kube-controller-manager".into(),
                orgs: vec![],
                sans: vec![],
                server: false,
                client: true,
            },
            Spec {
                file: "apiserver-loopback",
                cn: "system:apiserver".into(),
                orgs: vec!["system:masters"],
                sans: vec![],
                server: false,
                client: true,
            },
        ];
        let mut ids = Vec::with_capacity(specs.len());
        for spec in &specs {
            let crt = dir.join(format!("{}.crt", spec.file));
            let key = dir.join(format!("{}.key", spec.file));
            if !fresh_ca && crt.exists() && key.exists() {
                ids.push(Identity {
                    cert_pem: read(&crt)?,
                    key_pem: read(&key)?,
                });
                continue;
            }
            let id = issue(spec, &issuer)?;
            write_private(&key, &id.key_pem)?;
            write_public(&crt, &id.cert_pem)?;
            ids.push(id);
        }
        // Added later still: a data dir without it gets one; kept across restarts, as
        // a new key would invalidate every token already handed out.
        let sa_key = dir.join("sa.key");
        let service_account_key = if sa_key.exists() {
            read(&sa_key)?
        } else {
            let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
            let pem = key.serialize_pem();
            write_private(&sa_key, &pem)?;
            write_public(&dir.join("sa.pub"), &key.public_key_pem())?;
            pem
        };
        let mut it = ids.into_iter();
        let mut next = || it.next().expect("one identity per spec");
        Ok(ClusterPki {
            ca,
            apiserver: next(),
            admin: next(),
            kubelet_client: next(),
            kubelet_serving: next(),
            apiserver_kubelet_client: next(),
            scheduler: next(),
            controller_manager: next(),
            loopback: next(),
            service_account_key,
        })
    }

    /// A root store that trusts only this cluster's CA.
    pub fn roots(&self) -> Result<RootCertStore, PkiError> {
        let mut roots = RootCertStore::empty();
        for cert in self.ca.cert_chain()? {
            roots.add(cert)?;
        }
        Ok(roots)
    }

    /// TLS configuration of the API server: serves h2 and HTTP/1.1 (upgrades), asks for a
    /// client certificate but lets anonymous clients connect so that it can answer them
    /// with a proper 401 Status.
    pub fn apiserver_tls(&self) -> Result<Arc<rustls::ServerConfig>, PkiError> {
        let verifier = WebPkiClientVerifier::builder(Arc::new(self.roots()?))
            .allow_unauthenticated()
            .build()?;
        let mut cfg = rustls::ServerConfig::builder()
            .with_client_cert_verifier(verifier)
            .with_single_cert(self.apiserver.cert_chain()?, self.apiserver.private_key()?)?;
        cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Arc::new(cfg))
    }

    /// TLS configuration of the kubelet's port: a client certificate signed by the cluster
    /// CA is mandatory (the handler then checks it is the API server's).
    pub fn kubelet_tls(&self) -> Result<Arc<rustls::ServerConfig>, PkiError> {
        let verifier = WebPkiClientVerifier::builder(Arc::new(self.roots()?)).build()?;
        let mut cfg = rustls::ServerConfig::builder()
            .with_client_cert_verifier(verifier)
            .with_single_cert(
                self.kubelet_serving.cert_chain()?,
                self.kubelet_serving.private_key()?,
            )?;
        cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Arc::new(cfg))
    }

    /// TLS client configuration that trusts the cluster CA and presents no certificate
    /// (for clients that authenticate with a bearer token: a certificate would win).
    pub fn anonymous_client_tls(&self) -> Result<Arc<rustls::ClientConfig>, PkiError> {
        let cfg = rustls::ClientConfig::builder()
            .with_root_certificates(self.roots()?)
            .with_no_client_auth();
        Ok(Arc::new(cfg))
    }

    /// TLS client configuration that trusts the cluster CA and presents `identity`.
    pub fn client_tls(&self, identity: &Identity) -> Result<Arc<rustls::ClientConfig>, PkiError> {
        let cfg = rustls::ClientConfig::builder()
            .with_root_certificates(self.roots()?)
            .with_client_auth_cert(identity.cert_chain()?, identity.private_key()?)?;
        Ok(Arc::new(cfg))
    }
}

/// Who the caller is, as upstream's `user.Info`: from a verified client certificate
/// (CN and O), a bearer token, or impersonation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserInfo {
    /// The user name (a certificate's common name).
    pub name: String,
    /// The user's uid, when the authenticator knows one (service accounts do).
    pub uid: String,
    /// The groups (a certificate's organisations).
    pub groups: Vec<String>,
    /// Extra attributes (`authentication.kubernetes.io/pod-name`, ...).
    pub extra: std::collections::BTreeMap<String, Vec<String>>,
}

/// A certificate's subject as `CN=…, O=…` (for traces: who authenticated as whom).
pub fn subject_of(cert: &CertificateDer<'_>) -> Option<String> {
    let (_, parsed) = x509_parser::parse_x509_certificate(cert.as_ref()).ok()?;
    let subject = parsed.subject();
    let mut parts: Vec<String> = subject
        .iter_common_name()
        .filter_map(|c| c.as_str().ok().map(|v| format!("CN={v}")))
        .collect();
    parts.extend(
        subject
            .iter_organization()
            .filter_map(|o| o.as_str().ok().map(|v| format!("O={v}"))),
    );
    Some(parts.join(", "))
}

/// Reads the user and groups from the first (already verified) peer certificate.
pub fn user_from_cert(cert: &CertificateDer<'_>) -> Option<UserInfo> {
    let (_, parsed) = x509_parser::parse_x509_certificate(cert.as_ref()).ok()?;
    let subject = parsed.subject();
    let name = subject
        .iter_common_name()
        .next()
        .and_then(|cn| cn.as_str().ok())?
        .to_string();
    let groups = subject
        .iter_organization()
        .filter_map(|o| o.as_str().ok().map(String::from))
        .collect();
    Some(UserInfo {
        name,
        groups,
        ..UserInfo::default()
    })
}

fn issue(spec: &Spec, issuer: &Issuer<'_, KeyPair>) -> Result<Identity, PkiError> {
    let key = KeyPair::generate()?;
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params
        .distinguished_name
        .push(DnType::CommonName, spec.cn.clone());
    for org in &spec.orgs {
        params
            .distinguished_name
            .push(DnType::OrganizationName, *org);
    }
    for san in &spec.sans {
        params.subject_alt_names.push(match san.parse() {
            Ok(ip) => SanType::IpAddress(ip),
            Err(_) => SanType::DnsName(san.clone().try_into()?),
        });
    }
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    if spec.server {
        params
            .extended_key_usages
            .push(ExtendedKeyUsagePurpose::ServerAuth);
    }
    if spec.client {
        params
            .extended_key_usages
            .push(ExtendedKeyUsagePurpose::ClientAuth);
    }
    let cert = params.signed_by(&key, issuer)?;
    Ok(Identity {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    })
}

/// Creates `dir` (and parents) and makes it 0700.
pub fn create_private_dir(dir: &Path) -> Result<(), PkiError> {
    let io = |source| PkiError::Io {
        path: dir.to_path_buf(),
        source,
    };
    fs::create_dir_all(dir).map_err(io)?;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).map_err(io)
}

fn read(path: &Path) -> Result<String, PkiError> {
    fs::read_to_string(path).map_err(|source| PkiError::Io {
        path: path.to_path_buf(),
        source,
    })
}

fn write_with_mode(path: &Path, data: &str, mode: u32) -> Result<(), PkiError> {
    let io = |source| PkiError::Io {
        path: path.to_path_buf(),
        source,
    };
    let tmp = path.with_extension("tmp");
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(&tmp)
        .map_err(io)?;
    f.write_all(data.as_bytes()).map_err(io)?;
    f.sync_all().map_err(io)?;
    fs::set_permissions(&tmp, fs::Permissions::from_mode(mode)).map_err(io)?;
    fs::rename(&tmp, path).map_err(io)
}

fn write_private(path: &Path, data: &str) -> Result<(), PkiError> {
    write_with_mode(path, data, 0o600)
}

fn write_public(path: &Path, data: &str) -> Result<(), PkiError> {
    write_with_mode(path, data, 0o644)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generates_once_and_reuses() {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let dir = tempfile::tempdir().unwrap();
        let pki_dir = dir.path().join("pki");
        let a = ClusterPki::load_or_create(&pki_dir, "n-control-plane").unwrap();
        let b = ClusterPki::load_or_create(&pki_dir, "n-control-plane").unwrap();
        assert_eq!(a.ca.cert_pem, b.ca.cert_pem);
        assert_eq!(a.admin.cert_pem, b.admin.cert_pem);
        let mode = fs::metadata(pki_dir.join("admin.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let dmode = fs::metadata(&pki_dir).unwrap().permissions().mode();
        assert_eq!(dmode & 0o777, 0o700);
        let admin = &a.admin.cert_chain().unwrap()[0];
        assert_eq!(
            user_from_cert(admin),
            Some(UserInfo {
                name: "kubernetes-admin".into(),
                groups: vec!["system:masters".into()],
                ..UserInfo::default()
            })
        );
        a.apiserver_tls().unwrap();
        a.kubelet_tls().unwrap();
        a.client_tls(&a.admin).unwrap();
    }

    #[test]
    fn each_component_has_its_own_user_and_old_dirs_get_the_new_ones() {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let dir = tempfile::tempdir().unwrap();
        let pki_dir = dir.path().join("pki");
        let a = ClusterPki::load_or_create(&pki_dir, "n-control-plane").unwrap();
        let user = |id: &Identity| user_from_cert(&id.cert_chain().unwrap()[0]).unwrap();
        assert_eq!(user(&a.scheduler).name, "system:kube-scheduler");
        assert_eq!(
            user(&a.controller_manager).name,
            "system:kube-controller-manager"
        );
        assert_eq!(
            user(&a.kubelet_client),
            UserInfo {
                name: "system:node:n-control-plane".into(),
                groups: vec!["system:nodes".into()],
                ..UserInfo::default()
            }
        );
        // A data directory from before the controller-manager identity: it is issued by
        // the existing CA, everything else is reused.
        fs::remove_file(pki_dir.join("controller-manager.crt")).unwrap();
        fs::remove_file(pki_dir.join("controller-manager.key")).unwrap();
        let b = ClusterPki::load_or_create(&pki_dir, "n-control-plane").unwrap();
        assert_eq!(a.ca.cert_pem, b.ca.cert_pem);
        assert_eq!(a.scheduler.cert_pem, b.scheduler.cert_pem);
        assert_ne!(a.controller_manager.cert_pem, b.controller_manager.cert_pem);
        assert_eq!(
            user(&b.controller_manager).name,
            "system:kube-controller-manager"
        );
        b.client_tls(&b.controller_manager).unwrap();
    }

    #[test]
    fn apiserver_cert_has_expected_sans() {
        let dir = tempfile::tempdir().unwrap();
        let pki = ClusterPki::load_or_create(dir.path(), "n").unwrap();
        let der = &pki.apiserver.cert_chain().unwrap()[0];
        let (_, cert) = x509_parser::parse_x509_certificate(der.as_ref()).unwrap();
        let san = cert.subject_alternative_name().unwrap().unwrap();
        let names: Vec<String> = san
            .value
            .general_names
            .iter()
            .map(|n| format!("{n}"))
            .collect();
        let joined = names.join(",");
        for want in [
            "DNSName(localhost)",
            "IPAddress(7f:00:00:01)",
            "DNSName(kubernetes.default.svc)",
        ] {
            assert!(joined.contains(want), "{want} missing from {joined}");
        }
    }
}
