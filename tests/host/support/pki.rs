//! Certificates for one test, made by openssl in a temporary directory: an
//! authority of its own, a server certificate for localhost and a client
//! certificate, both signed by it.

use std::path::PathBuf;
use std::process::Command;

pub struct Pki {
    dir: tempfile::TempDir,
}

impl Pki {
    pub fn new() -> Self {
        let pki = Pki {
            dir: tempfile::tempdir().unwrap(),
        };
        pki.openssl(
            &["req", "-x509", "-newkey", "ec", "-pkeyopt"],
            &[
                "ec_paramgen_curve:prime256v1",
                "-nodes",
                "-days",
                "1",
                "-subj",
                "/CN=glassbox test authority",
                "-addext",
                "basicConstraints=critical,CA:TRUE",
                "-addext",
                "keyUsage=critical,keyCertSign",
                "-keyout",
                "ca.key",
                "-out",
                "ca.pem",
            ],
        );
        pki.sign(
            "server",
            "/CN=localhost",
            "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n",
        );
        pki.sign(
            "client",
            "/CN=glassbox test client",
            "extendedKeyUsage=clientAuth\n",
        );
        pki
    }

    pub fn path(&self, file: &str) -> PathBuf {
        self.dir.path().join(file)
    }

    pub fn read(&self, file: &str) -> String {
        std::fs::read_to_string(self.path(file)).unwrap()
    }

    /// `{name}.key` and `{name}.pem`, signed by the authority with `extensions`.
    fn sign(&self, name: &str, subject: &str, extensions: &str) {
        std::fs::write(self.path(&format!("{name}.ext")), extensions).unwrap();
        let (key, csr, pem, ext) = (
            format!("{name}.key"),
            format!("{name}.csr"),
            format!("{name}.pem"),
            format!("{name}.ext"),
        );
        self.openssl(
            &["req", "-newkey", "ec", "-pkeyopt"],
            &[
                "ec_paramgen_curve:prime256v1",
                "-nodes",
                "-subj",
                subject,
                "-keyout",
                &key,
                "-out",
                &csr,
            ],
        );
        self.openssl(
            &["x509", "-req", "-in"],
            &[
                &csr,
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-days",
                "1",
                "-extfile",
                &ext,
                "-out",
                &pem,
            ],
        );
    }

    fn openssl(&self, command: &[&str], args: &[&str]) {
        let made = Command::new("openssl")
            .current_dir(self.dir.path())
            .args(command)
            .args(args)
            .output()
            .unwrap();
        assert!(
            made.status.success(),
            "{}",
            String::from_utf8_lossy(&made.stderr)
        );
    }
}
